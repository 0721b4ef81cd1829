"""What /readyz and the API say of keys the hub cannot use, and of secrets others may read.

The hub starts whatever its key files are (``puente serve`` warns): /readyz tells a file this
user may not read ("permission denied") apart from one that is missing or damaged, and advises
what ``puente init`` would do — never to run it where it would refuse.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from consent_support import adolescent_record
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, push, read

from exchange import crypto
from exchange.audit_sequencer import integrate_pending
from exchange.crypto import RELOAD_SECONDS, DataKeyError, data_keyring, data_keys_dir
from exchange.keys import key_paths, load_keys, portal_secret_path
from exchange.transports import signing_key_path

DenyReading = Callable[[Path], None]


@pytest.fixture
def denied(monkeypatch: pytest.MonkeyPatch) -> set[Path]:
    """Files unreadable to this process while in this set (EACCES on reading; they still
    exist), as files owned by another user are: chmod does not stop root, who runs CI."""
    denied: set[Path] = set()
    read_bytes, read_text = Path.read_bytes, Path.read_text

    def refuse(path: Path) -> None:
        if path in denied:
            raise PermissionError(13, "Permission denied", str(path))

    def denied_read_bytes(self: Path) -> bytes:
        refuse(self)
        return read_bytes(self)

    def denied_read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        refuse(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", denied_read_bytes)
    monkeypatch.setattr(Path, "read_text", denied_read_text)
    return denied


@pytest.fixture
def deny_reading(denied: set[Path]) -> DenyReading:
    return denied.add


def restarted(app: Flask) -> None:
    """Load the keys again, as a server starting on the instance folder does."""
    app.extensions["puente.keys"] = load_keys(app)
    data_keyring(app).reload()


def readiness(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz", headers={"Accept-Language": "en"})
    return response.status_code, response.get_json()


@pytest.fixture
def readiness_log() -> Iterator[logging.handlers.BufferingHandler]:
    logger = logging.getLogger("puente.readiness")
    handler = logging.handlers.BufferingHandler(1000)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# -- a key file this user may not read --------------------------------------------------------


@pytest.mark.parametrize("role", ["log", "witness", "data", "signing", "portal"])
def test_a_key_file_the_hub_may_not_read_is_told_apart_from_a_missing_one(
    app: Flask, client: FlaskClient, deny_reading: DenyReading, role: str
) -> None:
    paths = {
        **key_paths(app),
        "data": next(data_keys_dir(app).glob("*.key")),
        "signing": signing_key_path(app),
        "portal": portal_secret_path(app),
    }
    deny_reading(paths[role])
    restarted(app)
    if role == "portal":
        app.secret_key = None  # as the portal's set-up leaves it (load_portal_secret)
    status, body = readiness(client)
    assert status == 503
    assert body["checks"]["keys"] == f"permission denied: {role}"
    assert "the hub may not read key files" in body["detail"]
    assert "'puente init' does not fix this" in body["detail"]
    assert "run 'puente init'" not in body["detail"]
    # The data keys are read again as they change; the others only as a process starts.
    if role == "data":
        assert (
            "the hub reads the data key again within seconds, without a restart" in (body["detail"])
        )
        assert "restart the hub" not in body["detail"]
    else:
        assert "then restart the hub (serve and workers)" in body["detail"]
    # Which key, not where: anyone may ask /readyz.
    assert str(app.instance_path) not in str(body)


def test_a_data_key_file_made_readable_is_used_without_a_restart(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    denied: set[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [key] = data_keys_dir(app).glob("*.key")
    denied.add(key)
    restarted(app)
    assert push(client, owner, adolescent_record()).status_code == 503
    with pytest.raises(DataKeyError) as error:
        data_keyring(app).current()
    # The file is there: not "'puente init' makes the first one", which init would refuse.
    assert f"data key file {key} cannot be read: Permission denied" in str(error.value)
    assert "puente init" not in str(error.value)
    assert "without a restart" in str(error.value)
    assert readiness(client)[1]["checks"]["keys"] == "permission denied: data"
    # chown and chmod of the file leave the folder's mtime as it was: the keyring looks again
    # while a key did not load, once the reload interval has passed.
    denied.discard(key)
    real = time.monotonic
    monkeypatch.setattr(crypto.time, "monotonic", lambda: real() + RELOAD_SECONDS + 1)
    status, body = readiness(client)
    assert status == 200, body
    assert data_keyring(app).current().id == key.stem
    assert push(client, owner, adolescent_record()).status_code == 201


def test_readiness_lists_missing_and_unreadable_keys_each_as_what_they_are(
    app: Flask, client: FlaskClient, deny_reading: DenyReading
) -> None:
    deny_reading(key_paths(app)["log"])
    signing_key_path(app).unlink()
    restarted(app)
    status, body = readiness(client)
    assert status == 503
    # init would refuse while the log key cannot be read: it is not the fix for both.
    assert body["checks"]["keys"] == "missing or unreadable: signing; permission denied: log"
    assert body["detail"].endswith(
        "after that, 'puente init' (with the same PUENTE_INSTANCE_PATH) makes the missing ones "
        "(the notification signing key)"
    )


# -- a key file that is no key ---------------------------------------------------------------


def test_a_damaged_key_file_says_restore_it_not_run_init(app: Flask, client: FlaskClient) -> None:
    key_paths(app)["log"].write_text("garbage\n", encoding="ascii")
    restarted(app)
    status, body = readiness(client)
    assert status == 503
    assert body["checks"]["keys"] == "missing or unreadable: log"  # no "(run 'puente init')"
    assert (
        "key files are damaged (the audit log key): restore them from the backup"
        in (body["detail"])
    )
    assert "then restart the hub (serve and workers)" in body["detail"]
    assert "puente init" not in body["detail"]


# -- what 'puente init' would do ---------------------------------------------------------------


def test_a_lost_log_key_is_to_restore_once_the_log_has_signed_checkpoints(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], tmp_path: Path
) -> None:
    log_key = key_paths(app)["log"]
    shutil.move(log_key, tmp_path / "log.key")
    restarted(app)
    status, body = readiness(client)
    assert status == 503
    assert body["checks"]["keys"] == "missing or unreadable: log (run 'puente init')"
    shutil.move(tmp_path / "log.key", log_key)
    restarted(app)
    assert integrate_pending(app, force_checkpoint=True).checkpoint
    shutil.move(log_key, tmp_path / "log.key")
    restarted(app)
    status, body = readiness(client)
    assert status == 503
    assert body["checks"]["keys"] == "missing or unreadable: log"  # init would refuse
    assert (
        "the audit log key is missing and the log has signed checkpoints: restore it"
        in (body["detail"])
    )
    assert "do not run 'puente init'" in body["detail"]
    # The restore drill's copy: no witness or signing key either, and init refuses for all.
    key_paths(app)["witness"].unlink()
    restarted(app)
    body = readiness(client)[1]
    assert body["checks"]["keys"] == "missing or unreadable: log, witness"
    assert "after that, 'puente init'" in body["detail"]
    assert "run 'puente init' with" not in body["detail"]


def test_no_key_is_to_make_with_init_while_rows_need_the_lost_data_keys(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], tmp_path: Path
) -> None:
    shutil.move(data_keys_dir(app), tmp_path / "data")
    key_paths(app)["witness"].unlink()
    restarted(app)
    body = readiness(client)[1]
    assert body["checks"]["keys"] == "missing or unreadable: witness, data"
    assert "restore the key folder from the backup" in body["detail"]
    # init refuses while the rows' keys are lost: it makes the witness key after that.
    assert (
        "after that, 'puente init' (with the same PUENTE_INSTANCE_PATH) makes the missing ones "
        "(the witness key)"
    ) in body["detail"]
    assert "run 'puente init' with" not in body["detail"]


def test_the_log_of_a_hub_without_data_keys_does_not_just_say_run_init(app: Flask) -> None:
    for path in data_keys_dir(app).glob("*.key"):
        path.unlink()
    keyring = data_keyring(app)
    keyring.reload()
    with pytest.raises(DataKeyError) as error:
        keyring.current()
    # What init does: make the first key, or refuse while rows are under a lost one.
    assert "'puente init' makes the first one, unless rows are encrypted already" in str(
        error.value
    )
    assert "restore the key folder from the backup" in str(error.value)


# -- the 503 of a missing key ------------------------------------------------------------------


def test_a_read_that_needs_a_missing_data_key_is_503_with_retry_after(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    pushed: dict[str, Any],
    tmp_path: Path,
) -> None:
    folder = data_keys_dir(app)
    shutil.move(folder, tmp_path / "data")
    data_keyring(app).reload()
    response = read(client, owner, pushed["record_id"])
    assert response.status_code == 503
    assert response.get_json()["type"].endswith("/unavailable")
    assert response.headers["Retry-After"] == "30"  # as for a database that cannot be used


# -- secrets other users may read --------------------------------------------------------------


def test_secrets_others_may_read_are_a_warning_of_a_ready_hub(
    app: Flask, client: FlaskClient
) -> None:
    [key] = data_keys_dir(app).glob("*.key")
    key.chmod(0o644)
    status, body = readiness(client)
    # Serving or not, the file is as readable: not a reason to send the hub no traffic.
    assert status == 200
    assert body["status"] == "ready"
    assert body["warnings"] == {
        "file_permissions": "readable by other users: keys (run 'puente init')"
    }
    assert "other users of this machine can read the hub's database or keys" in body["detail"]
    assert str(app.instance_path) not in str(body)
    if app.config["DATABASE_URL"].startswith("sqlite"):
        os.chmod(app.config["DATABASE_URL"].removeprefix("sqlite:///"), 0o640)  # group: too
        assert readiness(client)[1]["warnings"]["file_permissions"].startswith(
            "readable by other users: database, keys"
        )
    key.chmod(0o600)
    if app.config["DATABASE_URL"].startswith("sqlite"):
        os.chmod(app.config["DATABASE_URL"].removeprefix("sqlite:///"), 0o600)
    status, body = readiness(client)
    assert status == 200 and "warnings" not in body and "detail" not in body


# -- the server's log ---------------------------------------------------------------------------


def test_readiness_logs_a_problem_once_not_at_every_poll(
    app: Flask,
    client: FlaskClient,
    denied: set[Path],
    readiness_log: logging.handlers.BufferingHandler,
) -> None:
    log_key = key_paths(app)["log"]
    denied.add(log_key)
    restarted(app)
    for _ in range(5):
        assert readiness(client)[0] == 503
    [line] = [record.getMessage() for record in readiness_log.buffer]
    # The operator's log names the file, and says what to do.
    assert f"log key file {log_key} cannot be read: Permission denied" in line
    assert "the hub may not read key files" in line
    # Mended, then broken again: a line again.
    denied.discard(log_key)
    restarted(app)
    assert readiness(client)[0] == 200
    denied.add(log_key)
    restarted(app)
    assert readiness(client)[0] == 503
    assert len(readiness_log.buffer) == 2


def test_without_the_log_key_the_integrator_says_so_once_not_at_every_run(
    app: Flask, pushed: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_key = key_paths(app)["log"]
    shutil.move(log_key, tmp_path / "log.key")
    restarted(app)
    with caplog.at_level(logging.ERROR, logger="puente"):
        for _ in range(3):
            assert integrate_pending(app, force_checkpoint=True).checkpoint is None
    said = [r for r in caplog.records if "audit log key not loaded" in r.getMessage()]
    assert len(said) == 1
    shutil.move(tmp_path / "log.key", log_key)
    restarted(app)
    assert integrate_pending(app, force_checkpoint=True).checkpoint
