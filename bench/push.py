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

The load generator is ``wrk`` when it is installed (``apt-get install wrk``; the script is
``bench/push_wrk.lua``), else a few processes each running asyncio over raw sockets, which
cost the server a good part of a core on a 2-core machine (``--load-generator python`` to
compare). Gunicorn's sync workers close the connection after every answer, so each request
opens a new connection, as agencies' requests do. wrk runs for ``--seconds``; the pushes it
sends are distinct records, and the benchmark says so if it had to send one twice.

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
import shutil
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


WRK_SCRIPT = Path(__file__).with_name("push_wrk.lua")


def run_wrk(
    port: int,
    *,
    path: str,
    connections: int,
    seconds: float,
    bodies: Path | None = None,
    authorization: str = "",
    threads: int = 1,
) -> dict[str, Any]:
    """``wrk`` against ``path``: a plain GET, or a POST of each line of ``bodies`` in turn."""
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "-s", str(WRK_SCRIPT), f"http://{HOST}:{port}{path}",
    ]  # fmt: skip
    if bodies is not None:
        command += ["--", str(bodies), str(threads)]
    env = {**os.environ, "WRK_AUTHORIZATION": authorization}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if bodies is not None and result["sent"] > result["bodies"]:
        print(
            f"warning: wrk sent {result['sent']:,} pushes of {result['bodies']:,} distinct bodies"
        )
    good = result["requests"] - result["bad_status"]
    statuses = (
        {"2xx/3xx": good, "other": result["bad_status"]}
        if result["bad_status"]
        else {"2xx/3xx": good}
    )
    if result["socket_errors"]:
        statuses["socket errors"] = result["socket_errors"]
    return {
        "requests": result["requests"],
        "seconds": result["seconds"],
        "per_second": result["requests"] / result["seconds"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "statuses": statuses,
        "overhead_s": 0.0,
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
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        warm_up = [http_request("POST", "/v1/records", b, headers) for b in push_bodies(200, "W")]
        run_load([health] * 200, hub.port, **load)  # warm-up: first records, caches
        run_load(warm_up, hub.port, **load)
        if options.load_generator == "wrk":
            wrk = {"connections": options.connections, "seconds": options.seconds}
            ceiling = measured(hub, lambda: run_wrk(hub.port, path="/healthz", **wrk))
            bodies = Path(hub.folder.name) / "bodies.ndjson"
            # Enough distinct records for wrk's whole run at the 1,500 pushes/s aimed for.
            count = max(options.requests, int(1500 * options.seconds))
            bodies.write_bytes(b"\n".join(push_bodies(count, "S")) + b"\n")
            single = measured(
                hub,
                lambda: run_wrk(
                    hub.port, path="/v1/records", bodies=bodies,
                    authorization=f"Bearer {token}", **wrk,
                ),
            )  # fmt: skip
        else:
            ceiling = measured(hub, lambda: run_load([health] * options.requests, hub.port, **load))
            pushes = [
                http_request("POST", "/v1/records", body, headers)
                for body in push_bodies(options.requests, "S")
            ]
            single = measured(hub, lambda: run_load(pushes, hub.port, **load))
        rows.append(_row(backend, "GET /healthz (ceiling)", ceiling))
        rows.append(_row(backend, "POST /v1/records", single))

        if options.bulk:
            rows.append(bulk_row(backend, hub, token, options.bulk))
    finally:
        hub.stop()
    return rows


def measured(hub: Hub, run: Any) -> dict[str, Any]:
    """``run()`` (a load phase) plus the server's CPU time per answered request: on a shared
    machine the rates move with the neighbours' load, the CPU a request costs much less."""
    before = hub.cpu_seconds()
    result = run()
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
    parser.add_argument(
        "--load-generator",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="wrk if installed (the default then), else asyncio client processes",
    )
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
    client = (
        f"wrk, 1 thread x {options.connections} connections, {options.seconds:.0f} s a phase"
        if options.load_generator == "wrk"
        else f"{options.client_processes} process(es) x {options.connections} connections"
    )
    print(f"gunicorn workers: {options.workers}; client: {client}; load average before: {load}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
