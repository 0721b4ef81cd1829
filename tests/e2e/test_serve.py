"""``puente serve`` runs real gunicorn workers that answer over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PUENTE = [sys.executable, "-m", "exchange.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(base: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=10) as response:
                if response.status == 200:
                    return
        except OSError:  # refused while starting, or slow on a busy machine
            time.sleep(0.2)
    raise AssertionError("server did not become ready")


@contextlib.contextmanager
def running_hub(
    env: dict[str, str], cli: list[str], *, workers: int, cwd: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``puente serve`` on a free port until the block ends; its stderr is kept in ``env``'s
    instance folder as gunicorn.log."""
    port = free_port()
    process = subprocess.Popen(
        [*cli, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process)
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _out, err = process.communicate()
        (Path(env["PUENTE_INSTANCE_PATH"]) / "gunicorn.log").write_bytes(err)


@pytest.fixture
def served_hub(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env["PUENTE_INSTANCE_PATH"] = str(tmp_path / "instance")
    env["PUENTE_ACCESS_LOG"] = str(tmp_path / "access.log")
    subprocess.run([*PUENTE, "init"], env=env, check=True, capture_output=True)
    with running_hub(env, PUENTE, workers=2) as (base, _process):
        yield base


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_gunicorn_serves_the_schema_list(served_hub: str, tmp_path: Path) -> None:
    status, headers, body = get(served_hub + "/v1/schemas")
    assert status == 200
    assert headers["X-Request-Id"]
    names = {item["name"] for item in json.loads(body)["schemas"]}
    assert "case-record" in names

    status, headers, body = get(served_hub + "/v1/schemas/case-record/99")
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"

    status, _headers, body = get(served_hub + "/metrics")
    assert status == 200
    assert b"puente_http_requests_total" in body  # summed over workers


def test_access_log_is_json(served_hub: str, tmp_path: Path) -> None:
    _status, headers, _body = get(served_hub + "/healthz")
    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline and not lines:
        log = tmp_path / "access.log"
        text = log.read_text() if log.exists() else ""
        lines = [json.loads(line) for line in text.splitlines() if '"/healthz"' in line]
        time.sleep(0.1)
    entry = lines[-1]
    assert entry["path"] == "/healthz"
    assert entry["status"] == 200
    assert entry["request_id"] == headers["X-Request-Id"]


def test_stray_files_named_like_puentes_packages_do_not_stop_the_hub(tmp_path: Path) -> None:
    # An operator starts the hub from a folder holding scripts of their own.
    work = tmp_path / "work"
    work.mkdir()
    for name in ("schemas", "consent", "audit", "adapters"):
        (work / f"{name}.py").write_text(f"raise SystemExit('a stray {name}.py was imported')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env["PUENTE_INSTANCE_PATH"] = str(tmp_path / "instance")
    env["PUENTE_ACCESS_LOG"] = str(tmp_path / "access.log")
    cli = [sys.executable, "-P", "-m", "exchange.cli"]  # as the installed `puente` script runs
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True, cwd=work)
    with running_hub(env, cli, workers=1, cwd=work) as (base, process):
        # A worker that dies is replaced, and the replacement imports the app too.
        [worker] = [
            int(pid)
            for pid in subprocess.run(
                ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
        ]
        os.kill(worker, signal.SIGKILL)
        time.sleep(1)
        wait_until_ready(base, process)
        assert get(base + "/v1/schemas")[0] == 200
    err = (tmp_path / "instance" / "gunicorn.log").read_text(errors="replace")
    assert "a stray" not in err, err[-2000:]
