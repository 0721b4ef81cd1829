"""Audit log throughput, offline verification and proof latency.

    .venv/bin/python bench/audit.py appends [--entries 100000] [--per-commit 100]
                                            [--integrator thread|process]
    .venv/bin/python bench/audit.py verify  [--entries 1000000] [--export-dir DIR]
    .venv/bin/python bench/audit.py proofs  [--entries 1000000] [--queries 500] [--hub-dir DIR]

``appends``: entries written with ``record_event`` (``--per-commit`` per transaction) while the
integrator sequences them and signs checkpoints, on SQLite; reports the sustained rate (from
the first write until a checkpoint covers the last entry) and the checkpoint lag (commit to the
first checkpoint covering the entry) of a sample of entries.
``verify``: ``puente audit verify --full`` of an export of ``--entries`` entries, one core,
wall time and peak RSS, for the pure verifier and for the whole command.
``proofs``: inclusion and consistency proofs from the stored tiles at ``--entries`` entries,
through ``TileStore`` and through the HTTP API.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _hub(folder: Path, **config: Any) -> Any:
    from exchange import create_app
    from exchange.cli.hub import initialise

    app = create_app(
        {"INSTANCE_PATH": folder, "DATABASE_URL": f"sqlite:///{folder / 'puente.db'}", **config}
    )
    initialise(app)
    return app


def _fields(i: int) -> dict[str, Any]:
    return {
        "action": "record.pushed",
        "outcome": "success",
        "actor_agency": "mx.chp.dif",
        "actor_role": "system",
        "child_id": f"ch-{i:08x}",
        "record_id": f"rec-{i:09d}",
        "record_version": 1 + i % 7,
        "body_sha256": f"{i:064x}",
        "request_id": f"req-{i:012x}",
    }


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# --- appends ---------------------------------------------------------------------------------


def _integrator_process(folder: str, stop: Any) -> None:
    from exchange import create_app
    from exchange.audit_sequencer import integrate_pending

    app = create_app(
        {"INSTANCE_PATH": Path(folder), "DATABASE_URL": f"sqlite:///{folder}/puente.db"}
    )
    while not stop.is_set():
        time.sleep(0.25)
        integrate_pending(app)
    integrate_pending(app)


def appends(entries: int, per_commit: int, mode: str) -> None:
    from sqlalchemy import select

    from exchange import db
    from exchange.audit_log import AuditCheckpoint, AuditEntry, record_event
    from exchange.audit_sequencer import ensure_integrator, stop_integrator

    folder = Path(tempfile.mkdtemp(prefix="puente-bench-"))
    app = _hub(
        folder,
        AUDIT_INTEGRATOR_THREAD=mode == "thread",
        AUDIT_INTEGRATE_INTERVAL=0.25,
    )
    stop = multiprocessing.Event()
    worker = None
    if mode == "process":
        worker = multiprocessing.Process(target=_integrator_process, args=(str(folder), stop))
        worker.start()
    samples: list[tuple[str, float]] = []
    with app.app_context():
        ensure_integrator(app)
        session = db.database(app).sessions()
        started = time.time()
        cpu_started = time.process_time()
        for i in range(entries):
            entry_id = record_event(session, **_fields(i))
            if (i + 1) % per_commit == 0 or i + 1 == entries:
                session.commit()
                if (i // per_commit) % 10 == 0:
                    samples.append((entry_id, time.time()))
        written = time.time()
        while True:  # until a checkpoint covers everything
            session.expire_all()
            covered = session.scalar(
                select(AuditCheckpoint.size).order_by(AuditCheckpoint.size.desc())
            )
            if covered == entries:
                break
            time.sleep(0.05)
        done = time.time()
        cpu = time.process_time() - cpu_started  # writer and integrator thread together
        stop_integrator(app)
        stop.set()
        if worker is not None:
            worker.join()
        checkpoints = [
            (
                size,
                signed_at.replace(tzinfo=UTC).timestamp()
                if signed_at.tzinfo is None
                else signed_at.timestamp(),
            )
            for size, signed_at in session.execute(
                select(AuditCheckpoint.size, AuditCheckpoint.signed_at).order_by(
                    AuditCheckpoint.size
                )
            )
        ]
        index_of = dict(
            session.execute(
                select(AuditEntry.id, AuditEntry.idx).where(
                    AuditEntry.id.in_([s[0] for s in samples])
                )
            ).all()
        )
        session.close()
    lags = []
    for entry_id, committed in samples:
        idx = index_of[entry_id]
        signed = next(t for size, t in checkpoints if size > idx)
        lags.append(signed - committed)
    print(
        json.dumps(
            {
                "bench": "appends",
                "entries": entries,
                "per_commit": per_commit,
                "integrator": mode,
                "write_rate_per_s": round(entries / (written - started)),
                "sustained_rate_per_s": round(entries / (done - started)),
                # CPU seconds of this process: what one dedicated core would sustain (the
                # benchmark machine is shared, so wall-clock rates vary with other work).
                "cpu_seconds": round(cpu, 2),
                "rate_per_cpu_second": round(entries / cpu),
                "checkpoints": len(checkpoints),
                "lag_s": {
                    "p50": round(_pct(lags, 0.5), 3),
                    "p99": round(_pct(lags, 0.99), 3),
                    "max": round(max(lags), 3),
                },
            }
        )
    )


# --- offline verification --------------------------------------------------------------------


def _make_export(folder: Path, entries: int, every: int) -> str:
    """An export of ``entries`` entries with a checkpoint every ``every`` entries."""
    from audit import (
        Checkpoint,
        MemoryTree,
        Signer,
        generate_signer_key,
        leaf_hash,
        sign_checkpoint,
    )
    from audit.verify_export import checkpoint_line
    from exchange.audit_log import build_entry, canonical_bytes

    origin = "mx.bench.puente/audit"
    private, vkey = generate_signer_key(origin)
    signer = Signer.from_private_key(private)
    tree = MemoryTree()
    moment = datetime(2026, 11, 22, tzinfo=UTC)
    with (
        (folder / "entries.ndjson").open("wb") as out,
        (folder / "leaves.bin").open("wb") as leaves,
    ):
        for i in range(entries):
            data = canonical_bytes(build_entry(**_fields(i), time=moment))
            out.write(data + b"\n")
            h = leaf_hash(data)
            leaves.write(h)
            tree.append(h)
    with (folder / "checkpoints.ndjson").open("w") as out:
        previous = 0
        for size in [*range(every, entries, every), entries]:
            note = sign_checkpoint(Checkpoint(origin, size, tree.root(size)), [signer])
            proof = tree.consistency_proof(previous, size) if previous else []
            out.write(checkpoint_line(note, proof) + "\n")
            previous = size
    (folder / "log.vkey").write_text(vkey + "\n")
    (folder / "manifest.json").write_text(json.dumps({"entries": entries, "origin": origin}))
    return vkey


_PURE = """
import sys, time
from pathlib import Path
from audit import Verifier
from audit.verify_export import verify_export
folder = Path(sys.argv[1])
started = time.perf_counter()
with open(folder / "checkpoints.ndjson", "rb") as checkpoints:
    summary = verify_export(
        lambda: open(folder / "entries.ndjson", "rb", buffering=1 << 20),
        checkpoints,
        [Verifier.from_vkey(sys.argv[2])],
    )
elapsed = time.perf_counter() - started
print(summary.entries, summary.checkpoints, round(elapsed, 3), peak_rss_mb())
"""

_COMMAND = """
import sys, time
started = time.perf_counter()
from exchange.cli import main
try:
    main(["audit", "verify", "--full", sys.argv[1], "--vkey", sys.argv[2]])
except SystemExit as stop:
    code = stop.code
elapsed = time.perf_counter() - started
print(code, round(elapsed, 3), peak_rss_mb(), file=sys.stderr)
"""

# VmHWM, not getrusage's ru_maxrss: the latter survives exec, so a child forked from this
# (large) benchmark process would report the parent's memory.
_PEAK_RSS = """
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
"""


def verify(entries: int, every: int, reuse: Path | None) -> None:
    started = time.perf_counter()
    if reuse is not None and (reuse / "log.vkey").is_file():
        folder = reuse  # an export made by an earlier run (generating 1M entries takes a minute)
        vkey = (folder / "log.vkey").read_text().strip()
    else:
        folder = reuse or Path(tempfile.mkdtemp(prefix="puente-bench-export-"))
        folder.mkdir(parents=True, exist_ok=True)
        vkey = _make_export(folder, entries, every)
    made = time.perf_counter() - started
    size_mb = (folder / "entries.ndjson").stat().st_size / 1e6
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pin = ["taskset", "-c", "0"] if _have("taskset") else []
    pure = subprocess.run(
        [*pin, sys.executable, "-c", _PEAK_RSS + _PURE, str(folder), vkey],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    command = subprocess.run(
        [*pin, sys.executable, "-c", _PEAK_RSS + _COMMAND, str(folder), vkey],
        capture_output=True,
        text=True,
        env=env,
    ).stderr.split()[-3:]
    print(
        json.dumps(
            {
                "bench": "verify",
                "entries": int(pure[0]),
                "checkpoints": int(pure[1]),
                "entries_mb": round(size_mb, 1),
                "generated_in_s": round(made, 1),
                "pure_verifier": {"seconds": float(pure[2]), "peak_rss_mb": int(pure[3])},
                "puente_audit_verify": {
                    "exit": int(command[0]),
                    "seconds": float(command[1]),
                    "peak_rss_mb": int(command[2]),
                },
            }
        )
    )


def _have(program: str) -> bool:
    return any((Path(p) / program).exists() for p in os.environ.get("PATH", "").split(":"))


# --- proofs ----------------------------------------------------------------------------------


def proofs(entries: int, queries: int, reuse: Path | None) -> None:
    import base64

    from sqlalchemy import select

    import audit
    from exchange import db
    from exchange.audit_log import AuditCheckpoint, AuditEntry, build_entry, canonical_bytes
    from exchange.audit_sequencer import TileStore, integrate_pending, tile_cache
    from exchange.auth import store_token

    existing = reuse is not None and (reuse / "puente.db").is_file()
    folder = reuse or Path(tempfile.mkdtemp(prefix="puente-bench-proofs-"))
    app = _hub(folder, AUDIT_MAX_PER_RUN=65536, TESTING=True)
    moment = datetime(2026, 11, 22, tzinfo=UTC)
    started = time.perf_counter()
    with app.app_context():
        session = db.database(app).sessions()
        table = AuditEntry.__table__
        for start in range(0, 0 if existing else entries, 50_000):
            rows = []
            for i in range(start, min(entries, start + 50_000)):
                data = canonical_bytes(build_entry(**_fields(i), time=moment))
                rows.append(
                    {
                        "id": f"{i:032d}",
                        "entry": data,
                        "leaf_hash": audit.leaf_hash(data),
                        "recorded_at": moment,
                        "action": "record_pushed",
                        "outcome": "success",
                    }
                )
            session.execute(table.insert(), rows)
            session.commit()
        loaded = time.perf_counter()
        while integrate_pending(app).sequenced:
            pass
        integrate_pending(app, force_checkpoint=True)
        sequenced = time.perf_counter()
        secret, _ = store_token(session, client_id="bench", scopes=["audit:read"])
        session.commit()
        root = audit.checkpoint_of(
            session.scalar(select(AuditCheckpoint.note).order_by(AuditCheckpoint.size.desc()))
        ).root_hash
        store = TileStore(session)
        cached = TileStore(session, tile_cache(app))
        rng = random.Random(7)
        inclusion, consistency, warm = [], [], []
        for _ in range(queries):
            index = rng.randrange(entries)
            t = time.perf_counter()
            path = audit.inclusion_proof(index, entries, store)
            inclusion.append(time.perf_counter() - t)
            t = time.perf_counter()
            audit.inclusion_proof(rng.randrange(entries), entries, cached)
            warm.append(time.perf_counter() - t)
            leaf = session.scalar(select(AuditEntry.leaf_hash).where(AuditEntry.idx == index))
            audit.verify_inclusion(index, entries, leaf, path, root)
            first = rng.randrange(1, entries)
            t = time.perf_counter()
            audit.consistency_proof(first, entries, store)
            consistency.append(time.perf_counter() - t)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {secret}"}
        http_inclusion, http_consistency = [], []
        for _ in range(queries // 2):
            t = time.perf_counter()
            body = client.get(
                f"/v1/audit/proofs/inclusion?index={rng.randrange(entries)}", headers=headers
            ).get_json()
            http_inclusion.append(time.perf_counter() - t)
            assert body["hashes"] and base64.b64decode(body["hashes"][0]), body
            t = time.perf_counter()
            client.get(
                f"/v1/audit/proofs/consistency?first={rng.randrange(1, entries)}", headers=headers
            )
            http_consistency.append(time.perf_counter() - t)
        session.close()

    def ms(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values) * 1000, 2),
            "p99": round(_pct(values, 0.99) * 1000, 2),
            "max": round(max(values) * 1000, 2),
        }

    loading = (
        {}
        if existing
        else {
            "loaded_in_s": round(loaded - started, 1),
            "integrated_in_s": round(sequenced - loaded, 1),
            "integrator_rate_per_s": round(entries / (sequenced - loaded)),
        }
    )
    print(
        json.dumps(
            {
                "bench": "proofs",
                "entries": entries,
                **loading,
                "inclusion_ms": ms(inclusion),
                "inclusion_with_tile_cache_ms": ms(warm),
                "consistency_ms": ms(consistency),
                "http_inclusion_ms": ms(http_inclusion),
                "http_consistency_ms": ms(http_consistency),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    a = sub.add_parser("appends")
    a.add_argument("--entries", type=int, default=100_000)
    a.add_argument("--per-commit", type=int, default=100)
    a.add_argument("--integrator", choices=["thread", "process"], default="thread")
    v = sub.add_parser("verify")
    v.add_argument("--entries", type=int, default=1_000_000)
    v.add_argument("--checkpoint-every", type=int, default=5_000)
    v.add_argument("--export-dir", type=Path, help="reuse (or keep) the generated export here")
    p = sub.add_parser("proofs")
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--hub-dir", type=Path, help="reuse (or keep) the loaded hub here")
    options = parser.parse_args()
    print(f"# python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    if options.bench == "appends":
        appends(options.entries, options.per_commit, options.integrator)
    elif options.bench == "verify":
        verify(options.entries, options.checkpoint_every, options.export_dir)
    else:
        proofs(options.entries, options.queries, options.hub_dir)


if __name__ == "__main__":
    main()
