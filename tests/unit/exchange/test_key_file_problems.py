"""Key files the hub cannot use, and secrets others may read, as the command line meets them.

A key file the user running ``puente`` may not read is simulated by making reads of that path
fail as the system would (``PermissionError``): chmod does not stop root, who runs tests in CI.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from exchange.cli import main
from exchange.crypto import data_keys_dir
from exchange.keys import key_paths, portal_secret_path
from exchange.transports import signing_key_path

DenyReading = Callable[[Path], None]


@pytest.fixture
def deny_reading(monkeypatch: pytest.MonkeyPatch) -> DenyReading:
    """Make a file (or folder) unreadable to this process: reading or listing it fails with
    EACCES, while it still exists (``stat`` works), as for a file owned by another user."""
    denied: set[Path] = set()
    read_bytes, read_text, scandir = Path.read_bytes, Path.read_text, os.scandir

    def refuse(path: object) -> None:
        if Path(str(path)) in denied:
            raise PermissionError(13, "Permission denied", str(path))

    def denied_read_bytes(self: Path) -> bytes:
        refuse(self)
        return read_bytes(self)

    def denied_read_text(self: Path, *args: object, **kwargs: object) -> str:
        refuse(self)
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    def denied_scandir(path: object = ".") -> object:
        refuse(path)
        return scandir(path)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "read_bytes", denied_read_bytes)
    monkeypatch.setattr(Path, "read_text", denied_read_text)
    monkeypatch.setattr(os, "scandir", denied_scandir)
    return denied.add


def puente(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def key_files(app: Flask) -> dict[str, Path]:
    [data_key] = data_keys_dir(app).glob("*.key")
    return {
        "log": key_paths(app)["log"],
        "witness": key_paths(app)["witness"],
        "portal": portal_secret_path(app),
        "signing": signing_key_path(app),
        "data key": data_key,
        "data folder": data_keys_dir(app),
    }


def key_folder(app: Flask) -> list[str]:
    """What the key folder holds (with os.listdir, which deny_reading leaves alone)."""
    keys = Path(app.instance_path, "keys")
    return sorted([*os.listdir(keys), *(f"data/{name}" for name in os.listdir(keys / "data"))])


# -- a key file this user may not read ----------------------------------------------------------


@pytest.mark.parametrize(
    "which", ["log", "witness", "portal", "signing", "data key", "data folder"]
)
def test_init_names_a_key_file_it_cannot_read_and_makes_nothing(
    hub_env: Flask, deny_reading: DenyReading, which: str
) -> None:
    path = key_files(hub_env)[which]
    before = key_folder(hub_env)
    deny_reading(path)
    english = puente("init", "--lang", "en")
    assert english.exit_code == 1, english.output
    assert english.exception is None or isinstance(english.exception, SystemExit)
    assert f"{path}: cannot be read (Permission denied)" in english.output
    assert "No key was created" in english.output
    # Not "the folder is empty": the key is there, this user may not read it.
    assert "empty" not in english.output and "restore" not in english.output
    # A hub already running reads the data keys again by itself, the others as it starts.
    restart = "then restart the hub if it runs (serve and workers)" in english.output
    assert restart == (not which.startswith("data"))
    spanish = puente("init", "--lang", "es")
    assert spanish.exit_code == 1
    assert f"{path}: no se puede leer (permiso denegado)" in spanish.output
    assert key_folder(hub_env) == before


@pytest.mark.parametrize("which", ["log", "witness", "portal"])
def test_commands_that_do_not_need_the_key_still_run(
    hub_env: Flask, deny_reading: DenyReading, which: str
) -> None:
    # The keys are loaded as every command builds the hub: an unreadable one crashed them all.
    deny_reading(key_files(hub_env)[which])
    current = puente("db", "current")
    assert current.exit_code == 0, current.output
    assert current.exception is None


def test_serve_warns_of_a_key_it_cannot_read_and_serves(
    hub_env: Flask, deny_reading: DenyReading, exec_calls: list[object]
) -> None:
    path = key_files(hub_env)["log"]
    deny_reading(path)
    served = puente("serve")
    assert served.exit_code == 0, served.output
    assert len(exec_calls) == 1  # /readyz tells the balancer (tests/api/test_key_file_readiness)
    assert served.stderr.startswith("aviso / warning: Estas llaves del nodo existen pero")
    assert f"These hub keys are there but cannot be used: {path}" in served.stderr
    assert "chown" in served.stderr


# -- a key file that is not a key -----------------------------------------------------------------


@pytest.mark.parametrize("which", ["log", "witness", "signing", "data key"])
def test_init_refuses_a_damaged_key_file_instead_of_reporting_ready(
    hub_env: Flask, which: str
) -> None:
    path = key_files(hub_env)[which]
    path.write_text("garbage\n", encoding="ascii")
    result = puente("init", "--json", "--lang", "en")
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{path}: not a valid key (" in result.output
    assert "restore the damaged files from the backup" in result.output.lower()
    assert ("restart the hub" in result.output) == (which != "data key")
    assert "log_vkey" not in result.output


def test_init_refuses_a_log_key_setting_that_holds_no_key(
    hub_env: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_AUDIT_LOG_KEY", "not a key")
    result = puente("init", "--lang", "en")
    assert result.exit_code == 1, result.output
    assert "PUENTE_AUDIT_LOG_KEY: not a valid key (" in result.output
    assert "correct the setting that gives the key" in result.output.lower()


def test_a_binary_key_file_is_damaged_not_a_crash(hub_env: Flask) -> None:
    path = key_files(hub_env)["log"]
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = puente("init", "--lang", "es")
    assert result.exit_code == 1, result.output
    assert f"{path}: no es una llave válida (no es texto ASCII)" in result.output


# -- secrets other users may read ------------------------------------------------------------


def opened(app: Flask, mode: int) -> list[Path]:
    """Give the database file and the data key files ``mode``, as a careless restore does."""
    paths = list(data_keys_dir(app).glob("*.key"))
    if app.config["DATABASE_URL"].startswith("sqlite"):
        paths.append(Path(app.config["DATABASE_URL"].removeprefix("sqlite:///")))
    for path in paths:
        path.chmod(mode)
    return paths


@pytest.mark.parametrize("mode", [0o644, 0o640])  # init's rule: group-readable too
def test_serve_worker_and_db_upgrade_warn_of_secrets_others_may_read(
    hub_env: Flask, exec_calls: list[object], mode: int
) -> None:
    paths = opened(hub_env, mode)
    for command in (["serve"], ["worker", "--once"], ["db", "upgrade"]):
        result = puente(*command)
        assert result.exit_code == 0, (command, result.output)
        warning = [line for line in result.stderr.splitlines() if "other users" in line]
        assert len(warning) == 1, (command, result.stderr)
        assert "otros usuarios de esta máquina pueden leer" in warning[0]
        assert "run 'puente init'" in warning[0]
        # The command to run, naming each file.
        assert "chmod 600 " in warning[0]
        assert all(str(path) in warning[0] for path in paths), warning[0]
    assert len(exec_calls) == 1


def test_nothing_is_said_of_secrets_only_their_owner_reads(
    hub_env: Flask, exec_calls: list[object]
) -> None:
    opened(hub_env, 0o600)
    for command in (["serve"], ["worker", "--once"], ["db", "upgrade"]):
        result = puente(*command)
        assert result.exit_code == 0, result.output
        assert "warning" not in result.stderr, result.stderr


def test_init_still_makes_them_private_and_then_nothing_is_said(
    hub_env: Flask, exec_calls: list[object]
) -> None:
    paths = opened(hub_env, 0o644)
    made = puente("init", "--json")
    assert made.exit_code == 0, made.output
    assert set(map(str, paths)) <= set(json.loads(made.output)["made_private"])
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in paths)
    assert "warning" not in puente("serve").stderr


def test_init_names_a_secret_another_user_owns_and_exits_without_a_traceback(
    hub_env: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Restored as root, 0644, while the hub runs as its own user: only root may chmod it.
    [theirs] = data_keys_dir(hub_env).glob("*.key")
    ours = key_paths(hub_env)["log"]
    theirs.chmod(0o644)
    ours.chmod(0o644)
    chmod = Path.chmod

    def not_permitted(self: Path, mode: int, **kwargs: bool) -> None:
        if self == theirs:
            raise PermissionError(1, "Operation not permitted", str(self))
        chmod(self, mode, **kwargs)

    monkeypatch.setattr(Path, "chmod", not_permitted)
    english = puente("init", "--lang", "en")
    assert english.exit_code == 1, english.output
    assert english.exception is None or isinstance(english.exception, SystemExit)
    user = pwd.getpwuid(os.geteuid()).pw_name  # the file's owner here too: no other user
    assert f"{theirs} (owned by {user})" in english.output
    assert f"chown them to the user the hub runs as ({user})" in english.output.lower()
    assert f"chown {user} {theirs}; chmod 600 {theirs}" in english.output
    spanish = puente("init", "--lang", "es")
    assert spanish.exit_code == 1
    assert f"Déselos al usuario que ejecuta el nodo ({user})" in spanish.output
    # The others were made private all the same.
    assert stat.S_IMODE(ours.stat().st_mode) == 0o600
