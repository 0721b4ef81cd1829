"""SQLite WAL checkpoints off the push path, for serving processes.

In WAL mode every commit appends pages to ``<database>-wal``; a checkpoint copies them back
into the database file and syncs it. By default the commit that takes the WAL past 1,000
pages runs the checkpoint itself, and a push commits while it holds its turn at the write
lock (exchange/write_turns.py), so every other push waited for that copy and ``fsync``: about
0.4 ms of each push on average, and the p99. A serving process instead runs a PASSIVE
checkpoint every ``interval`` seconds from a thread of its own (it never blocks writers or
readers, and does nothing when the WAL is already copied), and its request connections only
checkpoint themselves past a much larger WAL, as a safety net. A direct ``puente import`` does
the same (its copies and syncs then overlap with reading the file); other command-line
processes keep SQLite's default.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

log = logging.getLogger("puente.wal")  # under "puente": JSON lines (exchange.logs)

DEFAULT_INTERVAL = 0.1
"""Seconds between background checkpoints."""

SERVING_AUTOCHECKPOINT = 10_000
"""WAL pages (4 KiB each) past which a serving process's own commit checkpoints anyway."""

FAILING_INTERVAL = 5.0
"""Seconds between checkpoints while they keep failing: the interval doubles up to this."""

FAILING_LOG_SECONDS = 60.0
"""While checkpoints keep failing, one log line at most this often. A full or read-only disk
fails every one: a line (and a traceback) ten times a second from each worker would bury the
log, and fill the disk the log is on, which may be the full one."""


class WalCheckpointer(threading.Thread):
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``interval`` seconds (less
    often while it fails, see :meth:`checkpoint`)."""

    def __init__(
        self,
        path: str,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name="puente-wal-checkpoints", daemon=True)
        self.path = path
        self.interval = interval
        self._clock = clock
        self._stopped = threading.Event()
        self.failures = 0  # in a row, since the last checkpoint that worked
        self._delay = interval
        self._logged_at = 0.0
        self._unlogged = 0  # failures since the last line about them

    def run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            delay = self.interval
            while not self._stopped.wait(delay):
                delay = self.checkpoint(connection)
        finally:
            connection.close()

    def checkpoint(self, connection: sqlite3.Connection) -> float:
        """One checkpoint; returns the seconds to wait before the next. A failure (a busy,
        vanished, full or read-only database: tried again later) is logged with its reason
        the first time, then once per :data:`FAILING_LOG_SECONDS` with how many failed, while
        the wait doubles up to :data:`FAILING_INTERVAL`; the first that works again says so."""
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as error:
            self.failures += 1
            self._unlogged += 1
            now = self._clock()
            if self.failures == 1:
                log.warning(
                    "WAL checkpoint of %s failed: %s (tried again, logged at most once a "
                    "minute while it keeps failing)",
                    self.path,
                    error,
                )
                self._logged_at, self._unlogged = now, 0
            elif now - self._logged_at >= FAILING_LOG_SECONDS:
                log.warning(
                    "WAL checkpoint of %s still failing: %s (%d failures in a row, %d since "
                    "the last line)",
                    self.path,
                    error,
                    self.failures,
                    self._unlogged,
                )
                self._logged_at, self._unlogged = now, 0
            self._delay = max(min(self._delay * 2, FAILING_INTERVAL), self.interval)
            return self._delay
        if self.failures:
            log.info("WAL checkpoint of %s works again after %d failures", self.path, self.failures)
            self.failures, self._unlogged, self._delay = 0, 0, self.interval
        return self.interval

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stopped.set()
        self.join(timeout)
