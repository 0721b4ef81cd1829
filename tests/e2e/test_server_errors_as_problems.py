"""What gunicorn answers itself — a request over its limits, a malformed request, a worker
killed at its timeout — is a bilingual ``application/problem+json`` like every other error of
the hub, not gunicorn's English HTML page."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_serve import PUENTE, running_hub

pytestmark = pytest.mark.e2e


def _served(tmp_path: Path, **settings: str) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env["PUENTE_INSTANCE_PATH"] = str(tmp_path / "instance")
    env.update(settings)
    subprocess.run([*PUENTE, "init"], env=env, check=True, capture_output=True)
    with running_hub(env, PUENTE, workers=1) as (base, _process):
        yield base.removeprefix("http://")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _served(tmp_path_factory.mktemp("hub"))


def _exchange(
    address: str, request: bytes, *, wait: float = 10
) -> tuple[int, dict[str, str], bytes]:
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


def _problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, object]:
    assert status == expected
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Content-Language"] == "es, en"
    problem = json.loads(body)
    assert problem["status"] == expected
    assert " / " in problem["detail"]  # Spanish, then English
    return dict(problem)


@pytest.mark.parametrize(
    ("request_bytes", "status", "words"),
    [
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Extra: 1\r\n" * 120 + b"\r\n",
            431,
            "fields",
        ),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "too large"),
        (b"GARBAGE\r\n\r\n", 400, "GARBAGE"),
    ],
)
def test_a_request_gunicorn_refuses_is_a_validation_problem(
    hub: str, request_bytes: bytes, status: int, words: str
) -> None:
    problem = _problem(*_exchange(hub, request_bytes), status)
    assert problem["type"] == "https://puente.mx/problems/validation"
    assert problem["title"] == "Datos no válidos / Invalid data"
    assert "límites del servidor" in str(problem["detail"])
    assert "server's limits" in str(problem["detail"])
    assert words in str(problem["server_message"])
    assert problem["errors"] == [{"pointer": "", "message": problem["detail"]}]


def test_a_worker_killed_at_its_timeout_answers_an_internal_problem(tmp_path: Path) -> None:
    for address in _served(tmp_path, PUENTE_WORKER_TIMEOUT="2"):
        # A form body that never arrives keeps the worker reading until gunicorn kills it.
        began = time.monotonic()
        answer = _exchange(
            address,
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            b"grant_type",
            wait=30,
        )
        assert time.monotonic() - began >= 2
        problem = _problem(*answer, 500)
        assert problem["type"] == "https://puente.mx/problems/internal"
        assert "Idempotency-Key" in str(problem["detail"])
        assert "tardó más de lo permitido" in str(problem["detail"])
