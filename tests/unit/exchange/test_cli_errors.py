"""Folders the commands cannot create: one line naming the folder and why, exit 1, nothing
left half-made (``keys generate``, ``agency add --generate-key``, ``init``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from exchange.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def refused(result: Result, *fragments: str) -> None:
    """Exit code 1 with a message, never a traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """A folder that cannot be made: one of its parents is a file."""
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "keys"


def unmakeable_folders(blocked: Path) -> list[Path]:
    # /proc takes no new folders, even for root (who ignores file modes).
    return [blocked, *([Path("/proc/puente-test")] if Path("/proc/self").exists() else [])]


def test_keys_generate_into_a_folder_that_cannot_be_made(blocked: Path) -> None:
    for folder in unmakeable_folders(blocked):
        refused(
            run("keys", "generate", "--out", str(folder), "--name", "a", "--lang", "en"),
            f"Cannot create the folder {folder}: ",
        )
        assert not folder.exists()
    refused(
        run("keys", "generate", "--out", str(blocked), "--lang", "es"),
        f"No se puede crear la carpeta {blocked}: una parte de la ruta es un archivo.",
    )


def test_keys_generate_removes_the_parent_folders_it_made_when_it_fails(tmp_path: Path) -> None:
    # "new" can be made, its child cannot (a name longer than any file system takes).
    folder = tmp_path / "new" / ("x" * 300)
    refused(run("keys", "generate", "--out", str(folder)), f"Cannot create the folder {folder}: ")
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_keys_generate_into_a_folder_that_takes_no_files() -> None:
    refused(
        run("keys", "generate", "--out", "/proc", "--name", "puente-test", "--lang", "en"),
        "Cannot write to the folder /proc: ",
    )
    assert not Path("/proc/puente-test.key").exists()


def test_agency_add_with_a_key_folder_that_cannot_be_made(
    tmp_path: Path, blocked: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    assert run("init").exit_code == 0
    for folder in unmakeable_folders(blocked):
        add = [
            "agency", "add", "mx.qa.z", "--name", "Z", "--level", "state",
            "--kind", "state_dif", "--jurisdiction", "07", "--scope", "records:write",
            "--generate-key", str(folder), "--json", "--lang", "en",
        ]  # fmt: skip
        refused(run(*add), f"Cannot create the folder {folder}: ")
    listed = run("agency", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["agencies"] == []  # nothing registered


def test_init_with_an_instance_folder_that_cannot_be_made(
    blocked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in unmakeable_folders(blocked):
        monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(folder))
        # The SQLite file lives in the instance folder by default: its folder fails first.
        refused(run("init", "--lang", "en"), f"Cannot create the folder {folder}: ")
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(blocked))
    refused(
        run("init", "--lang", "es"),
        f"No se puede crear la carpeta {blocked}: ",
        "PUENTE_DATABASE_URL",
    )


def test_init_with_a_sqlite_folder_that_cannot_be_made(
    tmp_path: Path, blocked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", f"sqlite:///{blocked / 'puente.db'}")
    refused(run("init", "--lang", "en"), f"Cannot create the folder {blocked}: ")
    assert not (tmp_path / "instance").exists()


def test_init_on_postgresql_with_an_instance_folder_that_cannot_be_made(
    blocked: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("the instance folder on its own: the database is elsewhere")
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(blocked))
    refused(run("init", "--lang", "en"), f"Cannot create the folder {blocked}: ")
    refused(run("init", "--lang", "es"), f"No se puede crear la carpeta {blocked}: ")


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_init_with_an_instance_folder_that_takes_no_files(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On SQLite (by default inside the instance folder) the database file fails first; on
    # PostgreSQL, the hub's key files.
    if not database_url.startswith("sqlite"):
        monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", "/proc")
    refused(run("init", "--lang", "en"), "Cannot write to the folder /proc: ")
