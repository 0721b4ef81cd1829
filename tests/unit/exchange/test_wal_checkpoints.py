"""Serving processes checkpoint SQLite's WAL from a thread, not in the commits of pushes."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

from sqlalchemy import text

from exchange.db import Database
from exchange.wal_checkpoints import SERVING_AUTOCHECKPOINT


def _write_two_mib(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS filler (body BLOB)"))
        for _ in range(32):
            connection.execute(text("INSERT INTO filler VALUES (randomblob(65536))"))


def _wait_for(condition, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_thread_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    database = Database(f"sqlite:///{path}")
    database.checkpoint_in_background(interval=0.05)
    try:
        with database.engine.connect() as connection:
            limit = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert limit == SERVING_AUTOCHECKPOINT
        _write_two_mib(database)
        # 2 MiB is ~520 pages, far below the connections' own limit: only the thread copies
        # them into the database file.
        assert _wait_for(lambda: os.path.getsize(path) > 2 * 2**20)
    finally:
        assert database.checkpointer is not None
        database.checkpointer.stop()
        database.engine.dispose()


def test_without_the_thread_the_wal_stays_until_sqlite_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    database = Database(f"sqlite:///{path}")
    database.wal_autocheckpoint = SERVING_AUTOCHECKPOINT  # what serving sets, minus the thread
    _write_two_mib(database)
    time.sleep(0.3)
    assert os.path.getsize(path) < 2**20
    database.engine.dispose()


def test_command_line_processes_keep_sqlites_default(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert database.checkpointer is None
    database.engine.dispose()


def test_one_thread_per_process_and_none_without_a_database_file(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    database.checkpoint_in_background(interval=0.05)
    first = database.checkpointer
    database.checkpoint_in_background(interval=0.05)
    assert database.checkpointer is first
    assert first is not None
    first.stop()
    database.engine.dispose()

    in_memory = Database("sqlite://")
    in_memory.checkpoint_in_background()
    assert in_memory.checkpointer is None


def test_a_gunicorn_worker_starts_the_thread(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from exchange import db, serving
    from exchange.audit_sequencer import stop_integrator
    from tests.conftest import make_hub

    app = make_hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    database = db.database(app)
    serving.post_worker_init(SimpleNamespace(wsgi=app))
    try:
        assert database.checkpointer is not None and database.checkpointer.is_alive()
        assert database.wal_autocheckpoint == SERVING_AUTOCHECKPOINT
    finally:
        gc.unfreeze()
        stop_integrator(app)
        if database.checkpointer is not None:
            database.checkpointer.stop()
        database.engine.dispose()
