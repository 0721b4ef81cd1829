"""Pages a single push writes to SQLite's WAL, counted by B-tree (table or index).

A push's commit writes one WAL frame (a 4 KiB page and its header, two ``pwrite`` calls) for
every page it changed, and every table and index it touches has at least one. This counts
them: a SQLite file hub made by ``puente init`` and ``puente agency add``, ``--warm-up`` demo
pushes through the Flask test client (integrator thread off, so only the pushes write), a
checkpoint that empties the WAL, then ``--pushes`` more while a reader holds a snapshot (so no
checkpoint can restart the WAL under them); the WAL's frame headers give each frame's page
number, and SQLite's ``dbstat`` table names the B-tree that owns it::

    .venv/bin/python bench/wal_frames.py                  # 2,000 warm-up pushes, 100 counted
    PYTHONPATH=/tmp/other-tree .venv/bin/python /tmp/other-tree/bench/wal_frames.py
"""

from __future__ import annotations

import argparse
import collections
import os
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

# push_inproc first: importing it puts the repository before bench/ on the path, so that
# ``audit`` is the package and not bench/audit.py.
from push_inproc import hub_client, push_bodies  # noqa: E402

WAL_HEADER = 32
FRAME_HEADER = 24


def frames_by_btree(database: str) -> tuple[int, collections.Counter[str]]:
    """The WAL's frames, and how many belong to each B-tree of ``database``."""
    wal = Path(database + "-wal").read_bytes()
    page_size = struct.unpack(">I", wal[8:12])[0]
    pages: collections.Counter[int] = collections.Counter()
    offset = WAL_HEADER
    while offset + FRAME_HEADER <= len(wal):
        pages[struct.unpack(">I", wal[offset : offset + 4])[0]] += 1
        offset += FRAME_HEADER + page_size
    reader = sqlite3.connect(database)
    owners = dict((page, name) for name, page in reader.execute("SELECT name, pageno FROM dbstat"))
    reader.close()
    counts: collections.Counter[str] = collections.Counter()
    for page, frames in pages.items():
        counts[owners.get(page, f"page {page} (free)")] += frames
    return sum(pages.values()), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--warm-up", type=int, default=2000, help="pushes before counting")
    parser.add_argument("--pushes", type=int, default=100, help="pushes counted")
    args = parser.parse_args()

    folder = tempfile.TemporaryDirectory(prefix="puente-wal-frames-")
    database = f"{folder.name}/puente.db"
    client, headers = hub_client(folder.name)
    bodies = push_bodies(args.warm_up + args.pushes, "frames")
    for body in bodies[: args.warm_up]:
        assert client.post("/v1/records", data=body, headers=headers).status_code == 201
    emptier = sqlite3.connect(database)
    emptier.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    emptier.close()
    snapshot = sqlite3.connect(database, isolation_level=None)
    snapshot.execute("BEGIN")
    snapshot.execute("SELECT count(*) FROM child").fetchone()
    for body in bodies[args.warm_up :]:
        assert client.post("/v1/records", data=body, headers=headers).status_code == 201
    snapshot.execute("COMMIT")
    total, counts = frames_by_btree(database)
    print(f"{total / args.pushes:.1f} WAL frames a push, over {len(counts)} B-trees")
    for name, frames in counts.most_common():
        print(f"{frames / args.pushes:7.2f}  {name}")
    os.environ.pop("PUENTE_DATABASE_URL", None)
    folder.cleanup()


if __name__ == "__main__":
    main()
