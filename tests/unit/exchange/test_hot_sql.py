"""The push path's plain SQL (exchange.hot_sql) and SQLite write turns (exchange.write_turns)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.agencies import Agency
from exchange.db import Base
from exchange.hot_sql import HotSQL, insert_sql
from exchange.records import IdempotencyKey
from exchange.write_turns import lock_file, write_turn

KEYS = IdempotencyKey.__table__
INSERT_KEY = insert_sql(KEYS, ("agency_id", "key", "request_sha256", "created_at"))


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = create_engine(f"sqlite:///{tmp_path / 'hot.db'}")
    # Only the table under test (and the one its foreign key names).
    Base.metadata.create_all(engine, tables=[Agency.__table__, KEYS])
    return Session(engine)


def test_values_are_stored_as_the_orm_stores_them(session: Session) -> None:
    sql = HotSQL(session)
    moment = datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=UTC)
    sql.execute(INSERT_KEY, ("mx.chp.dif", "k-1", "ab" * 32, sql.binder(KEYS.c.created_at)(moment)))
    session.commit()
    stored = session.scalars(select(IdempotencyKey)).one()
    assert stored.created_at.replace(tzinfo=UTC) == moment  # SQLite keeps no zone
    [(raw,)] = HotSQL(session).rows(
        "SELECT created_at FROM idempotency_key WHERE key = ?", ("k-1",)
    )
    assert HotSQL(session).reader(KEYS.c.created_at)(raw) == stored.created_at


def test_driver_errors_are_sqlalchemy_errors(session: Session) -> None:
    row = ("mx.chp.dif", "k-1", "ab" * 32, "2026-11-23 01:02:03.000000")
    HotSQL(session).execute(INSERT_KEY, row)
    with pytest.raises(IntegrityError):  # what the push path's retries catch
        HotSQL(session).executemany(INSERT_KEY, [row, row])


def test_in_lists_are_split_into_chunks(session: Session) -> None:
    sql = HotSQL(session)
    rows = [("mx.chp.dif", f"k-{n}", "ab" * 32, "2026-11-23 01:02:03.000000") for n in range(25)]
    sql.executemany(INSERT_KEY, rows)
    keys = [f"k-{n}" for n in range(30)]  # five of them unknown
    found = sql.rows_in("SELECT key FROM idempotency_key WHERE key IN {}", (), keys, chunk=7)
    assert sorted(key for (key,) in found) == sorted(f"k-{n}" for n in range(25))


def test_only_file_databases_take_turns(tmp_path: Path) -> None:
    def lock_of(url: str) -> str | None:
        return lock_file(Session(create_engine(url)))

    assert lock_of(f"sqlite:///{tmp_path / 'a.db'}") == str(tmp_path / "a.db") + ".push-lock"
    assert lock_of("sqlite://") is None
    assert lock_of("postgresql+psycopg://postgres@127.0.0.1/test") is None


#: Another process trying the turn's lock without waiting: exit 1 when it is taken.
_TRY_LOCK = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(1)
"""


def _try_lock(path: str) -> int:
    # A new interpreter, not a fork of this one: a fork of a process with threads (the test
    # runner's, a hub's checkpoint thread) can inherit a lock another thread held and hang.
    return subprocess.run([sys.executable, "-c", _TRY_LOCK, path], timeout=60).returncode


def test_a_turn_excludes_other_processes_until_it_ends(session: Session) -> None:
    path = lock_file(session)
    assert path is not None
    with write_turn(session):
        assert _try_lock(path) == 1  # another process cannot have it now
    assert _try_lock(path) == 0  # and can once the turn has ended


def test_threads_take_turns_one_at_a_time(session: Session) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def push(number: int) -> None:
        with write_turn(session):
            if inside:
                overlaps.append(number)
            inside.append(number)
            time.sleep(0.01)
            inside.remove(number)

    threads = [threading.Thread(target=push, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_a_turn_is_given_back_when_the_block_fails(session: Session) -> None:
    with pytest.raises(RuntimeError), write_turn(session):
        raise RuntimeError("push failed")
    path = lock_file(session)
    assert path is not None and _try_lock(path) == 0
