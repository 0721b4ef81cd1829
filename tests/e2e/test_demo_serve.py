"""``puente demo --bind`` serves what it prints: every printed command works as printed, the
hub names the address it was bound to, and the terminal keeps the instructions."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_serve import free_port, get, wait_until_ready
from tests.unit.exchange.test_demo import printed_commands

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the demo prints curl commands"),
]


@dataclass
class Demo:
    base: str
    instance: Path
    process: subprocess.Popen[str]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    instance = tmp_path / "instance"
    env["PUENTE_INSTANCE_PATH"] = str(instance)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "demo", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_until_ready(base, process)  # type: ignore[arg-type]
        yield Demo(base, instance, process)
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> str:
    """Stop the demo; what it printed after the instructions."""
    if process.poll() is not None:
        return ""
    process.send_signal(signal.SIGTERM)
    try:
        out, _err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _err = process.communicate()
    return out


def printed_so_far(demo: Demo) -> str:
    """What the demo printed before gunicorn took over (it prints, then execs gunicorn)."""
    assert demo.process.stdout is not None
    lines = []
    for line in demo.process.stdout:
        lines.append(line)
        if "validate" in line:  # the last instruction
            break
    return "".join(lines)


def test_every_printed_command_works_and_the_hub_knows_its_address(demo: Demo) -> None:
    printed = printed_so_far(demo)
    commands = printed_commands(printed)
    # Each command as printed; curl fails on an HTTP error, and so does the whole script.
    script = "\n".join(
        ["set -euo pipefail", 'curl() { command curl --fail-with-body "$@"; }', *commands]
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert '"upheld":true' in done.stdout.replace(" ", "")  # the override review went through

    _status, _headers, body = get(demo.base + "/.well-known/puente-hub")
    hub = json.loads(body)
    assert hub["origin"] == demo.base
    assert hub["endpoints"]["token"] == f"{demo.base}/oauth/token"
    _status, _headers, body = get(demo.base + "/openapi.json")
    assert json.loads(body)["servers"] == [{"url": demo.base}]

    status, headers, _body = get(demo.base + "/metrics")
    assert status == 200
    from prometheus_client import CONTENT_TYPE_LATEST

    assert headers["Content-Type"] == CONTENT_TYPE_LATEST

    [control] = demo.instance.glob("gunicorn-*.ctl")  # the running server's own socket
    assert stat.S_ISSOCK(control.stat().st_mode)
    access_log = (demo.instance / "access.log").read_text()
    assert '"/oauth/token"' in access_log and '"puente.access"' in access_log
    assert f"registro de accesos / access log:         {demo.instance / 'access.log'}" in printed
    assert "puente.access" not in stop(demo.process)  # the terminal keeps the instructions
