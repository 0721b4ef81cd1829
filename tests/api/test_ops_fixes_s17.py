"""What a hub administrator met outside in (README "Operations"): ``db upgrade`` on a mistyped
instance path, /readyz on a disk the hub cannot write, WAL checkpoints failing there, the words
of a full or read-only disk, the restore drill's advice, and a broken ``PUENTE_DATA_KEY``."""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from consent_support import adolescent_record
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, ndjson, push
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from exchange import create_app, crypto, db
from exchange.audit_sequencer import integrate_pending
from exchange.cli import main
from exchange.crypto import DataKeyring, DataKeySettingBroken, data_keyring, data_keys_dir
from exchange.keys import key_paths, load_keys
from exchange.record_push import Pusher
from exchange.wal_checkpoints import FAILING_INTERVAL, FAILING_LOG_SECONDS, WalCheckpointer


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="puente")


@pytest.fixture
def records() -> Iterator[logging.handlers.BufferingHandler]:
    """What the hub's loggers (``puente.*``) write."""
    logger = logging.getLogger("puente")
    handler = logging.handlers.BufferingHandler(10_000)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def _lines(handler: logging.handlers.BufferingHandler) -> list[str]:
    return [record.getMessage() for record in handler.buffer]


def _readiness(client: FlaskClient, lang: str = "en") -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz", headers={"Accept-Language": lang})
    return response.status_code, response.get_json()


# -- 1. db upgrade refuses a SQLite database that is not there ----------------------------------


def test_db_upgrade_refuses_a_sqlite_hub_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: the restore's "db upgrade, then serve" on a mistyped path made an empty
    hub, which serve then served."""
    missing = tmp_path / "x" / "nonexistent"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(missing))
    english = _run("db", "upgrade", "--lang", "en")
    assert english.exit_code == 1, english.output
    assert english.output.strip() == (
        f"Error: There is no hub in {missing}: the database puente.db is missing. Check "
        "PUENTE_INSTANCE_PATH (or PUENTE_DATABASE_URL), or create the hub with 'puente init'."
    )
    spanish = _run("db", "upgrade", "--lang", "es")
    assert spanish.exit_code == 1, spanish.output
    assert spanish.output.startswith(f"Error: No hay un hub en {missing}: falta la base")
    assert "'puente init'" in spanish.output and "PUENTE_INSTANCE_PATH" in spanish.output
    assert not missing.exists() and not (tmp_path / "x").exists()
    assert _run("serve").exit_code == 1  # nothing to serve either

    # A folder put back without its database is refused too, whatever else it holds.
    missing.mkdir(parents=True)
    assert _run("db", "upgrade", "--lang", "en").exit_code == 1
    assert not (missing / "puente.db").exists()


def test_db_upgrade_still_upgrades_an_existing_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """An existing SQLite file (even an empty one) and an empty PostgreSQL database, which
    its server made, are upgraded; a hub made by init is upgraded again."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    if database_url.startswith("sqlite"):
        # An empty file, owner-only as the hub's are (else db upgrade warns of it).
        os.close(os.open(tmp_path / "puente.db", os.O_WRONLY | os.O_CREAT, 0o600))
    head = db.head_revision()
    first = _run("db", "upgrade", "--revision", "0012", "--lang", "en")
    assert first.exit_code == 0, first.output
    assert first.output == "database at revision 0012\n"
    upgraded = _run("db", "upgrade", "--lang", "es")
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.output.startswith(f"base de datos en la revisión {head}\n")
    assert _run("init").exit_code == 0
    assert _run("db", "upgrade").exit_code == 0


# -- 2. /readyz: a database that cannot take writes is not ready -------------------------------


def _statvfs(
    monkeypatch: pytest.MonkeyPatch, *, flag: int = 0, free_blocks: int | None = None
) -> None:
    """The file system as ``os.statvfs`` tells it: read-only (``flag``) or nearly full."""
    real = os.statvfs

    def statvfs(path: Any) -> os.statvfs_result:
        fields = list(real(path))
        if free_blocks is not None:
            fields[3] = fields[4] = free_blocks  # f_bfree, f_bavail
        fields[8] |= flag  # f_flag
        return os.statvfs_result(fields)

    monkeypatch.setattr(os, "statvfs", statvfs)


def _sqlite_only(app: Flask) -> Path:
    if not db.database(app).is_sqlite:
        pytest.skip("a SQLite file's disk: PostgreSQL's is the server's")
    return Path(str(db.database(app).url.database))


def test_readyz_is_not_ready_on_a_read_only_disk(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, records: Any
) -> None:
    path = _sqlite_only(app)
    assert _readiness(client)[0] == 200
    _statvfs(monkeypatch, flag=os.ST_RDONLY)
    status, body = _readiness(client)
    assert status == 503 and body["status"] == "not-ready"
    assert body["checks"]["database"] == "not writable: read-only file system"
    assert body["checks"]["migrations"] == "ok" and body["checks"]["keys"] == "ok"
    assert "the disk holding the SQLite database is read-only" in body["detail"]
    spanish = _readiness(client, "es")[1]["detail"]
    assert "el disco que guarda la base de datos SQLite es de solo lectura" in spanish
    assert str(path) not in str(body)  # anyone may ask /readyz; the log names the file
    assert f"not ready: the disk holding the database {path} is read-only" in _lines(records)
    monkeypatch.undo()
    assert _readiness(client)[0] == 200


def test_readyz_is_not_ready_on_a_nearly_full_disk(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, records: Any
) -> None:
    path = _sqlite_only(app)
    block = os.statvfs(path.parent).f_frsize
    _statvfs(monkeypatch, free_blocks=5 * 2**20 // block)
    status, body = _readiness(client)
    assert status == 503
    assert body["checks"]["database"] == (
        "not writable: disk nearly full (5 MiB free, needs 32 MiB)"
    )
    assert (
        "is nearly full (5 MiB free; the hub needs at least 32 MiB): free some" in (body["detail"])
    )
    assert "casi lleno (5 MiB libres" in _readiness(client, "es")[1]["detail"]
    assert any(str(path) in line and "5 MiB free" in line for line in _lines(records))
    # Logged once while it lasts, not at every poll.
    _readiness(client)
    assert sum("5 MiB free" in line for line in _lines(records)) == 1


def test_readyz_is_not_ready_when_the_hubs_user_may_not_write_the_database(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _sqlite_only(app)
    real = os.access
    # As a file of another user is (chmod does not stop root, who runs CI).
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != path and real(p, mode, **kw))
    status, body = _readiness(client)
    assert status == 503
    assert body["checks"]["database"] == "not writable: permission denied"
    assert "the user running the hub may not write the SQLite database" in body["detail"]


def test_readyz_is_not_ready_on_a_postgresql_server_that_takes_no_writes(
    app: Flask, tmp_path: Path
) -> None:
    """PostgreSQL only: a standby, or default_transaction_read_only (as here)."""
    url = make_url(app.config["DATABASE_URL"])
    if url.get_backend_name() != "postgresql":
        pytest.skip("a PostgreSQL server's mode")
    options = f"{url.query.get('options', '')} -cdefault_transaction_read_only=on".strip()
    read_only = url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    standby = create_app(
        {"TESTING": True, "INSTANCE_PATH": app.instance_path, "DATABASE_URL": read_only}
    )
    try:
        status, body = _readiness(standby.test_client())
        assert status == 503
        assert body["checks"]["database"] == "not writable: the server is read-only"
        assert "the PostgreSQL server takes no writes" in body["detail"]
        # And a write there is a 503 to retry with that reason, not a 500.
        with standby.app_context(), pytest.raises(DBAPIError) as refused:
            with db.database(standby).engine.begin() as connection:
                connection.execute(text("CREATE TABLE t_read_only (x int)"))
        assert db.unavailable_reason(refused.value) == db._READ_ONLY_SERVER
    finally:
        db.database(standby).engine.dispose()
    assert _readiness(app.test_client())[0] == 200


# -- 3. WAL checkpoints that keep failing -------------------------------------------------------


class _FailingConnection:
    def __init__(self) -> None:
        self.failing = True

    def execute(self, _sql: str) -> Any:
        if self.failing:
            raise sqlite3.OperationalError("database or disk is full")
        return self

    def fetchall(self) -> list[Any]:
        return [(0, 0, 0)]


def test_failing_checkpoints_are_logged_once_a_minute_and_back_off(records: Any) -> None:
    now = [1000.0]
    checkpointer = WalCheckpointer("/srv/puente/puente.db", 0.1, clock=lambda: now[0])
    connection = _FailingConnection()
    delays = []
    for _ in range(300):  # a full disk: every checkpoint fails
        delays.append(checkpointer.checkpoint(connection))  # type: ignore[arg-type]
        now[0] += 0.1
    lines = _lines(records)
    assert lines == [
        "WAL checkpoint of /srv/puente/puente.db failed: database or disk is full (tried "
        "again, logged at most once a minute while it keeps failing)"
    ]
    assert all(record.exc_info is None for record in records.buffer)  # no traceback each
    assert delays[:3] == [0.2, 0.4, 0.8] and delays[-1] == FAILING_INTERVAL
    now[0] += FAILING_LOG_SECONDS
    checkpointer.checkpoint(connection)  # type: ignore[arg-type]
    assert _lines(records)[1] == (
        "WAL checkpoint of /srv/puente/puente.db still failing: database or disk is full "
        "(301 failures in a row, 300 since the last line)"
    )
    connection.failing = False
    assert checkpointer.checkpoint(connection) == 0.1  # type: ignore[arg-type]
    assert _lines(records)[2] == (
        "WAL checkpoint of /srv/puente/puente.db works again after 301 failures"
    )
    assert checkpointer.checkpoint(connection) == 0.1  # type: ignore[arg-type]
    assert len(records.buffer) == 3
    connection.failing = True  # a new spell of failures is told again at once
    checkpointer.checkpoint(connection)  # type: ignore[arg-type]
    assert "failed: database or disk is full" in _lines(records)[3]


# -- 4. a full or read-only SQLite disk, in words ----------------------------------------------


def _failed_write(app: Flask, pragma: str) -> DBAPIError:
    """A real SQLite error from the hub's engine: ``query_only`` refuses writes as a
    read-only database does (SQLITE_READONLY), ``max_page_count`` as a full disk does."""
    engine = db.database(app).engine
    with pytest.raises(DBAPIError) as failed, engine.connect() as connection:
        connection.exec_driver_sql(pragma)
        connection.exec_driver_sql("CREATE TABLE filler (body BLOB)")
        for _ in range(64):
            connection.exec_driver_sql("INSERT INTO filler VALUES (randomblob(65536))")
    return failed.value


def test_a_full_or_read_only_sqlite_disk_is_named_not_a_server_to_start(app: Flask) -> None:
    path = _sqlite_only(app)
    full = db.unavailable_reason(_failed_write(app, "PRAGMA max_page_count = 1"))
    assert full == (
        f"el disco que guarda la base de datos {path} está lleno: libere espacio",
        f"the disk holding the database {path} is full: free some space",
    )
    read_only = db.unavailable_reason(_failed_write(app, "PRAGMA query_only = 1"))
    assert read_only is not None
    assert read_only[1].startswith(f"the database {path}, or the disk holding it, is read-only")
    assert read_only[0].startswith(f"la base de datos {path}, o el disco que la guarda, es de")
    for words in (*full, *read_only):
        assert "PUENTE_DATABASE_URL" not in words and "server" not in words


def test_a_full_postgresql_disk_is_said_as_such() -> None:
    class DiskFull(Exception):
        sqlstate = "53100"

    error = OperationalError("INSERT", {}, DiskFull("could not extend file: No space left"))
    assert db.unavailable_reason(error) == (
        "el disco del servidor PostgreSQL está lleno: libere espacio en él",
        "the PostgreSQL server's disk is full: free some space on it",
    )


def test_a_bulk_push_cut_by_a_full_disk_is_not_a_lost_database(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    monkeypatch: pytest.MonkeyPatch,
    records: Any,
) -> None:
    app.config["BULK_BATCH_SIZE"] = 1
    store, calls = Pusher.store, []

    def store_until_full(self: Pusher, items: list[Any], **options: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            error = OperationalError(
                "INSERT", {}, sqlite3.OperationalError("database or disk is full")
            )
            db.remember_engine(error, db.database(app).engine)
            raise error
        return store(self, items, **options)

    monkeypatch.setattr(Pusher, "store", store_until_full)
    lines = [adolescent_record(f"FULL-{n}") for n in range(3)]
    for lang in ("en", "es"):
        calls.clear()
        response = client.post(
            "/v1/records/bulk",
            data=ndjson(lines),
            headers={
                **owner.headers,
                "Content-Type": "application/x-ndjson",
                "Accept-Language": lang,
            },
        )
        assert response.status_code == 503, response.get_data(as_text=True)
        detail = response.get_json()["detail"]
        assert "lost" not in detail and "perdió" not in detail
        assert detail.startswith(
            "The hub could no longer use its database during the push. The first 1 lines"
            if lang == "en"
            else "El nodo dejó de poder usar su base de datos durante el envío. Las primeras 1"
        )
    logged = [line for line in _lines(records) if "during a bulk push" in line]
    if db.database(app).is_sqlite:
        assert (
            f"the disk holding the database {db.database(app).url.database} is full" in (logged[0])
        )
    else:
        assert "the disk holding the database is full" in logged[0]


# -- 5. the restore drill: no 'puente init' where it would refuse --------------------------------


def test_a_drill_copy_is_not_told_to_run_init_for_readable_keys(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], tmp_path: Path, records: Any
) -> None:
    assert integrate_pending(app, force_checkpoint=True).checkpoint
    keys = key_paths(app)["log"].parent
    os.chmod(keys, 0o700)
    status, body = _readiness(client)
    assert status == 200 and "warnings" not in body
    os.chmod(keys, 0o755)  # mkdir outside the umask, as the README's drill did
    body = _readiness(client)[1]
    assert (
        body["warnings"]["file_permissions"] == "readable by other users: keys (run 'puente init')"
    )
    # The drill's copy: the log is signed, its key is not there; init would refuse.
    shutil.move(key_paths(app)["log"], tmp_path / "log.key")
    app.extensions["puente.keys"] = load_keys(app)
    status, body = _readiness(client)
    assert status == 503
    assert body["warnings"]["file_permissions"] == (
        "readable by other users: keys (chmod 600, folders 700)"
    )
    assert "run 'puente init', which makes them" not in body["detail"]
    assert "make them readable by their owner only (chmod 600; folders, 700)" in body["detail"]
    spanish = _readiness(client, "es")[1]["detail"]
    assert "déjelos solo para su dueño (chmod 600; las carpetas, 700)" in spanish
    logged = [line for line in _lines(records) if "can read the hub's secrets" in line]
    assert "run 'puente init'" in logged[0]  # the hub itself: init would close them
    assert logged[-1] == (
        "other users of this machine can read the hub's secrets: make them readable by their "
        f"owner only (chmod 600, folders 700): {keys}"
    )


# -- 6. PUENTE_DATA_KEY and data keys the hub cannot use ---------------------------------------


def test_a_broken_data_key_setting_is_said_in_spanish_too(tmp_path: Path) -> None:
    keyring = DataKeyring(tmp_path, "bad,dk_x:bm8=")
    spanish = [fault.described()[0] for fault in keyring.faults]
    assert spanish == [
        "PUENTE_DATA_KEY (entrada 1): no es una llave válida (cada entrada es "
        "id_de_llave:llave_en_base64)",
        "PUENTE_DATA_KEY (entrada 2, dk_x): no es una llave válida (2 bytes, se esperaban 32)",
    ]
    english = [fault.described()[1] for fault in keyring.faults]
    assert english[0] == (
        "PUENTE_DATA_KEY (entry 1): not a valid key (entries are key_id:base64key)"
    )
    (tmp_path / "dk_y.key").write_text("###\n")
    keyring.reload()
    assert (
        "dk_y.key: no es una llave válida (no está en base64)"
        in (keyring.faults[-1].described()[0])
    )


def test_init_says_a_broken_data_key_setting_in_spanish(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("PUENTE_DATA_KEY", "bad")
    result = _run("init", "--lang", "es")
    assert result.exit_code == 1
    assert "PUENTE_DATA_KEY (entrada 1): no es una llave válida (cada entrada es id_de_llave:" in (
        result.output
    )
    assert "entries are" not in result.output


def test_no_data_key_is_made_while_the_setting_is_broken(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sorted(data_keys_dir(app).glob("*"))
    app.config["DATA_KEY"] = "bad"
    app.extensions.pop("puente.data_keys")  # made again from the setting
    with pytest.raises(DataKeySettingBroken) as refused:
        crypto.generate_data_key(app)
    assert refused.value.message("en").startswith(
        "PUENTE_DATA_KEY gives no usable key (PUENTE_DATA_KEY (entry 1): not a valid key"
    )
    assert "Corrija PUENTE_DATA_KEY (o quítelo)" in refused.value.message("es")
    assert sorted(data_keys_dir(app).glob("*")) == before

    # The command: it stops before making a key (exchange/cli/keys.py says it on one line
    # once it catches DataKeySettingBroken).
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("PUENTE_DATA_KEY", "bad")
    rotated = _run("keys", "rotate-data-key")
    assert rotated.exit_code != 0
    assert "current data key" not in rotated.output
    assert sorted(data_keys_dir(app).glob("*")) == before


def test_a_push_on_a_data_key_the_hub_may_not_read_says_so(
    app: Flask, client: FlaskClient, owner: AgencyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    [key] = data_keys_dir(app).glob("*.key")
    read_bytes = Path.read_bytes

    def denied(path: Path) -> bytes:
        if path == key:  # chmod 000 does not stop root, who runs CI
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", denied)
    data_keyring(app).reload()
    response = push(client, owner, adolescent_record(), **{"Accept-Language": "en"})
    assert response.status_code == 503
    detail = response.get_json()["detail"]
    assert detail.startswith("The hub cannot use its data encryption key: it may not read")
    assert "decrypt" not in detail
    spanish = push(client, owner, adolescent_record(), **{"Accept-Language": "es"})
    assert "no tiene permiso para leer su archivo" in spanish.get_json()["detail"]

    # A body that does not decrypt is still said as such.
    error = crypto.DataKeyError("data key dk_x is not available", key_id="dk_x", missing=True)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        answer = crypto.unreadable_problem(error)
    assert "cannot decrypt this data" in answer.get_json()["detail"]
