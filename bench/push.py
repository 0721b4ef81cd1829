"""Push throughput through real gunicorn: a trivial endpoint, single pushes, one bulk push.

Starts ``puente init`` + ``puente serve`` on a temporary instance folder (SQLite, or a fresh
PostgreSQL schema with ``--postgres URL``, dropped afterwards), registers an agency with the
CLI, gets a token with the client credentials grant, and then measures from this machine, to
127.0.0.1 only:

(a) ``GET /healthz``, the ceiling of what gunicorn + Flask answer here;
(b) ``POST /v1/records`` of distinct records (pushes/s, p50, p99);
(c) ``POST /v1/records/bulk`` of ``--bulk`` NDJSON lines in one request (records/s end to end)
    and the peak RSS (``VmHWM``) of the worker that served it.

Each phase also reports the CPU time gunicorn (master and workers, the audit integrator
threads included) spent per request or record, from ``/proc``: on a machine shared with
other work the rates move with the neighbours' load, the CPU cost much less.

The load generator is a few processes each running asyncio over raw sockets. Gunicorn's sync
workers close the connection after every answer, so each request opens a new connection; a
client that kept connections alive would not measure what agencies get.

    .venv/bin/python bench/push.py                  # SQLite
    .venv/bin/python bench/push.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PUENTE = [sys.executable, "-m", "exchange.cli"]
HOST = "127.0.0.1"
AGENCY = "mx.chp.dif"
MARK = "@@N@@"


# -- load generator ----------------------------------------------------------------------------


async def _one(request: bytes, port: int) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        return status
    finally:
        writer.close()


async def _load(requests: list[bytes], port: int, connections: int, seconds: float) -> Any:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    position = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal position
        while position < len(requests) and time.perf_counter() < deadline:
            request = requests[position]
            position += 1
            start = time.perf_counter()
            status = await _one(request, port)
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, statuses, time.perf_counter() - start


def _load_process(args: tuple[list[bytes], int, int, float]) -> Any:
    return asyncio.run(_load(*args))


def run_load(
    requests: list[bytes], port: int, *, processes: int, connections: int, seconds: float
) -> dict[str, Any]:
    """Spread ``requests`` over ``processes`` x ``connections`` concurrent clients."""
    shares = [requests[index::processes] for index in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        start = time.perf_counter()
        parts = pool.map(_load_process, [(s, port, connections, seconds) for s in shares])
        elapsed = time.perf_counter() - start
    latencies = sorted(value for part in parts for value in part[0])
    statuses: dict[int, int] = {}
    for part in parts:
        for status, count in part[1].items():
            statuses[status] = statuses.get(status, 0) + count
    wall = max(part[2] for part in parts)
    done = len(latencies)
    return {
        "requests": done,
        "seconds": wall,
        "per_second": done / wall if wall else 0.0,
        "p50_ms": latencies[done // 2] * 1000 if done else 0.0,
        "p99_ms": latencies[min(done - 1, int(done * 0.99))] * 1000 if done else 0.0,
        "statuses": statuses,
        "overhead_s": elapsed - wall,
    }


def http_request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# -- the hub under test ------------------------------------------------------------------------


def push_bodies(count: int, prefix: str) -> list[bytes]:
    """``count`` distinct valid envelopes (distinct local ids and child identifiers)."""
    from exchange.demo_data import demo_records

    templates = []
    for _, envelope in demo_records(12):
        envelope["local_id"] = MARK
        envelope["data"]["child"]["identifiers"] = [{"type": "agency_local", "value": MARK}]
        templates.append(json.dumps(envelope, ensure_ascii=False).encode())
    return [
        templates[n % len(templates)].replace(MARK.encode(), f"{prefix}-{n:07d}".encode())
        for n in range(count)
    ]


class Hub:
    def __init__(self, database_url: str | None, workers: int, access_log: bool) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="puente-bench-")
        self.port = _free_port()
        # SQLite: a database file in the temporary folder, removed with it.
        database_url = database_url or f"sqlite:///{self.folder.name}/puente.db"
        self.env = {
            **os.environ,
            "PUENTE_INSTANCE_PATH": str(Path(self.folder.name) / "instance"),
            "PUENTE_DATABASE_URL": database_url,
            "PUENTE_LOG_LEVEL": "warning",
        }
        if not access_log:
            self.env["PUENTE_ACCESS_LOG"] = "/dev/null"
        self.workers = workers
        self.server: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [*PUENTE, *args], env=self.env, cwd=ROOT, capture_output=True, check=False
        )
        if done.returncode:
            raise SystemExit(f"puente {' '.join(args)} failed:\n{done.stderr.decode()}")
        return done.stdout.decode()

    def start(self) -> None:
        self.cli("init")
        self.server = subprocess.Popen(
            [*PUENTE, "serve", "--bind", f"{HOST}:{self.port}", "--workers", str(self.workers)],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(self.folder.name) / "serve.log", "wb"),
        )
        for _ in range(300):
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        log = (Path(self.folder.name) / "serve.log").read_text()[-2000:]
        raise SystemExit(f"puente serve did not answer /healthz within 30 s:\n{log}")

    def token(self) -> str:
        added = json.loads(
            self.cli(
                "agency", "add", AGENCY, "--name", "DIF Chiapas (bench)", "--level", "state",
                "--kind", "state_dif", "--jurisdiction", "07", "--scope", "records:write",
                "--scope", "records:read", "--secret", "--json",
            )
        )  # fmt: skip
        basic = base64.b64encode(f"{added['client_id']}:{added['client_secret']}".encode())
        status, body = self.send(
            "POST",
            "/oauth/token",
            b"grant_type=client_credentials&scope=records%3Awrite",
            {
                "Authorization": f"Basic {basic.decode()}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        if status != 200:
            raise SystemExit(f"token request failed: {status} {body[:300]!r}")
        return str(json.loads(body)["access_token"])

    def get(self, path: str) -> tuple[int, bytes]:
        return self.send("GET", path, b"", {})

    def send(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float = 30
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def worker_peak_rss_mib(self) -> dict[int, float]:
        """VmHWM (peak resident set) of each gunicorn worker, in MiB."""
        assert self.server is not None
        peaks = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields["PPid"]) == self.server.pid and "VmHWM" in fields:
                peaks[int(entry.name)] = int(fields["VmHWM"].split()[0]) / 1024
        return peaks

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by gunicorn: its master and its workers."""
        assert self.server is not None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the command name: state, ppid, …; utime and stime are fields 14 and 15.
            if int(entry.name) == self.server.pid or int(fields[1]) == self.server.pid:
                total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def stop(self) -> None:
        if self.server is not None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
        self.folder.cleanup()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def fresh_schema(url: str) -> tuple[str, Any]:
    """A new PostgreSQL schema (like tests/conftest.py) and a function that drops it."""
    from sqlalchemy import create_engine, make_url, text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop


# -- the benchmark -----------------------------------------------------------------------------


def bench(backend: str, database_url: str | None, options: argparse.Namespace) -> list[list[str]]:
    hub = Hub(database_url, options.workers, options.access_log)
    rows = []
    try:
        hub.start()
        token = hub.token()
        load = {
            "processes": options.client_processes,
            "connections": options.connections,
            "seconds": options.seconds,
        }
        health = http_request("GET", "/healthz", b"", {})
        run_load([health] * 200, hub.port, **load)  # warm-up
        ceiling = measured(hub, [health] * options.requests, load)
        rows.append(_row(backend, "GET /healthz (ceiling)", ceiling))

        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        pushes = [
            http_request("POST", "/v1/records", body, headers)
            for body in push_bodies(options.requests + 200, "S")
        ]
        run_load(pushes[:200], hub.port, **load)  # warm-up: first records, caches, JIT-less
        single = measured(hub, pushes[200:], load)
        rows.append(_row(backend, "POST /v1/records", single))

        if options.bulk:
            rows.append(bulk_row(backend, hub, token, options.bulk))
    finally:
        hub.stop()
    return rows


def measured(hub: Hub, requests: list[bytes], load: dict[str, Any]) -> dict[str, Any]:
    """``run_load`` plus the server's CPU time per answered request: on a shared machine the
    rates move with the neighbours' load, the CPU a request costs much less."""
    before = hub.cpu_seconds()
    result = run_load(requests, hub.port, **load)
    spent = hub.cpu_seconds() - before
    result["cpu_ms"] = 1000 * spent / result["requests"] if result["requests"] else 0.0
    return result


def bulk_row(backend: str, hub: Hub, token: str, count: int) -> list[str]:
    """One bulk push of ``count`` lines: records/s end to end and the workers' peak RSS."""
    before = max(hub.worker_peak_rss_mib().values())
    body = b"\n".join(push_bodies(count, "B")) + b"\n"
    cpu_before = hub.cpu_seconds()
    start = time.perf_counter()
    status, answer = hub.send(
        "POST",
        "/v1/records/bulk",
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        timeout=600,
    )
    seconds = time.perf_counter() - start
    cpu = hub.cpu_seconds() - cpu_before
    stored = answer.count(b'"status": "stored"')
    after = max(hub.worker_peak_rss_mib().values())
    return [
        backend,
        f"POST /v1/records/bulk ({count:,} lines, {len(body) / 2**20:.0f} MiB)",
        f"{stored / seconds:,.0f} records/s",
        f"{seconds:.1f} s total",
        f"peak RSS {after:.0f} MiB (before {before:.0f})",
        f"server CPU {1e6 * cpu / max(stored, 1):,.0f} µs/record",
        f"HTTP {status}, stored {stored:,}",
    ]


def _row(backend: str, what: str, result: dict[str, Any]) -> list[str]:
    statuses = ", ".join(f"{k}×{v}" for k, v in sorted(result["statuses"].items()))
    return [
        backend,
        what,
        f"{result['per_second']:,.0f} req/s",
        f"p50 {result['p50_ms']:.1f} ms",
        f"p99 {result['p99_ms']:.1f} ms",
        f"server CPU {result['cpu_ms']:.2f} ms/req",
        f"{result['requests']:,} in {result['seconds']:.1f} s ({statuses})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", help="Also measure on this PostgreSQL.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--requests", type=int, default=6000, help="requests per load phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="time cap per load phase")
    parser.add_argument("--connections", type=int, default=8, help="concurrent per client proc")
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--bulk", type=int, default=20_000, help="lines in the bulk push")
    parser.add_argument("--access-log", action="store_true", help="keep gunicorn's access log")
    parser.add_argument("--skip-sqlite", action="store_true")
    options = parser.parse_args()

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    rows = []
    if not options.skip_sqlite:
        rows += bench("sqlite", None, options)
    if options.postgres:
        url, drop = fresh_schema(options.postgres)
        try:
            rows += bench("postgresql", url, options)
        finally:
            drop()
    print(
        f"gunicorn workers: {options.workers}; client: {options.client_processes} process(es) x "
        f"{options.connections} connections; load average before: {load}"
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
