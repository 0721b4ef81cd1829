"""Turns at SQLite's one write lock for pushes, handed over at once instead of polled for.

SQLite lets one transaction write at a time. A writer that finds the lock taken polls it,
sleeping 1, 2, 5, 10, 15, 20, 25 … ms between tries (the busy handler behind
``busy_timeout``): with two gunicorn workers pushing at once, a push often slept longer than it
worked. So a push first takes an exclusive ``flock`` on a file beside the database
(``<database>.push-lock``), which the kernel hands to the next waiting process the moment it
is released, and keeps it until its transaction has ended. Threads of one process queue on a
``threading.Lock`` first: an ``flock`` belongs to the open file, which the threads share.

Only pushes take turns. Other writers (the audit integrator, other routes) still meet SQLite's
own lock and its busy handler, so nothing waits for a turn while holding the write lock, and
nothing can deadlock on the two locks. PostgreSQL, an in-memory database or a database named
by a ``file:`` URI need no turns.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
from collections.abc import Iterator

from sqlalchemy.orm import Session

_guard = threading.Lock()
# (process id, lock file) -> the thread lock and the open lock file: each process opens its
# own (a descriptor inherited across fork would share one lock between the processes).
_turns: dict[tuple[int, str], tuple[threading.Lock, int]] = {}


def lock_file(session: Session) -> str | None:
    """The lock file of the session's SQLite database, or ``None`` when there is none."""
    url = session.get_bind().engine.url  # the bind may be an engine or a connection
    if url.get_backend_name() != "sqlite":
        return None
    return _lock_file(url.database)


@functools.lru_cache(maxsize=64)
def _lock_file(database: str | None) -> str | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + ".push-lock"


def _turn(path: str) -> tuple[threading.Lock, int]:
    key = (os.getpid(), path)
    found = _turns.get(key)
    if found is None:
        with _guard:
            found = _turns.get(key)
            if found is None:
                descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                found = _turns[key] = (threading.Lock(), descriptor)
    return found


@contextlib.contextmanager
def write_turn(session: Session) -> Iterator[None]:
    """Wait for this push's turn to write (SQLite), and keep it until the block ends: begin,
    write and commit or roll back inside the block."""
    path = lock_file(session)
    if path is None:
        yield
        return
    lock, descriptor = _turn(path)
    with lock:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
