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

log = logging.getLogger("puente.wal")  # under "puente": JSON lines (exchange.logs)

DEFAULT_INTERVAL = 0.1
"""Seconds between background checkpoints."""

SERVING_AUTOCHECKPOINT = 10_000
"""WAL pages (4 KiB each) past which a serving process's own commit checkpoints anyway."""


class WalCheckpointer(threading.Thread):
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``interval`` seconds."""

    def __init__(self, path: str, interval: float = DEFAULT_INTERVAL) -> None:
        super().__init__(name="puente-wal-checkpoints", daemon=True)
        self.path = path
        self.interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            while not self._stopped.wait(self.interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # a busy or vanished database: try again next time
                    log.warning("WAL checkpoint failed", exc_info=True)
        finally:
            connection.close()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stopped.set()
        self.join(timeout)
