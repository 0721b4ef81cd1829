"""Gunicorn's settings for ``puente serve`` (``exchange.serving``) and the public URL default.

Both are read once, when gunicorn (or the app) imports them with the environment
``puente serve`` sets, so each is checked in a fresh interpreter with that environment.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config

from exchange.cli import hub as hub_cli
from exchange.cli.hub import metrics_folder, metrics_root
from exchange.config import public_url_for_bind
from exchange.serving import JsonLogger, control_socket_path


def run_python(code: str, **environment: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env.update(environment)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def gunicorn_settings(instance: Path) -> dict[str, object]:
    """``exchange.serving`` as gunicorn reads it: every name that is a gunicorn setting."""
    code = (
        "import json, exchange.serving as s; from gunicorn.config import Config; "
        "names = Config().settings; "
        "print(json.dumps({k: v for k, v in vars(s).items() if k in names}, default=str))"
    )
    loaded: dict[str, object] = json.loads(run_python(code, PUENTE_INSTANCE_PATH=str(instance)))
    return loaded


def test_the_control_socket_is_in_the_instance_folder(tmp_path: Path) -> None:
    # Gunicorn ignores names in a config module that are not its settings: these must be.
    assert {"control_socket", "control_socket_disable"} <= set(Config().settings)
    settings = gunicorn_settings(tmp_path / "instance")
    socket = Path(str(settings["control_socket"]))
    assert socket.parent == tmp_path / "instance"
    assert socket.name.startswith("gunicorn-") and socket.name.endswith(".ctl")
    assert settings["control_socket_disable"] is False
    other = gunicorn_settings(tmp_path / "other")
    assert other["control_socket"] != settings["control_socket"]  # two hubs, two sockets


def test_no_control_socket_when_its_path_is_too_long(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    assert control_socket_path(deep) is None
    settings = gunicorn_settings(deep)
    assert settings["control_socket_disable"] is True


def detach(logger: JsonLogger) -> None:
    """Take gunicorn's handlers off the process-wide ``gunicorn.*`` loggers again."""
    for log in (logger.access_log, logger.error_log):
        for handler in list(log.handlers):
            if getattr(handler, "_gunicorn", False):
                log.removeHandler(handler)
                handler.close()


def test_access_log_dash_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    config = Config()
    config.set("accesslog", "-")
    logger = JsonLogger(config)
    try:
        response = SimpleNamespace(status="200 OK", headers=[("X-Request-Id", "r-1")], sent=2)
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "REMOTE_ADDR": "127.0.0.1"}
        logger.access(response, None, environ, timedelta(milliseconds=3))
        captured = capsys.readouterr()
        assert captured.out == ""
        entry = json.loads(captured.err.strip().splitlines()[-1])
        assert (entry["path"], entry["status"], entry["request_id"]) == ("/healthz", 200, "r-1")
    finally:
        detach(logger)


def test_access_log_lines_are_ascii_whatever_the_client_sends(tmp_path: Path) -> None:
    # A client's U+0085 (NEL) or U+2028 in a path or user agent, raw in a line, would split it
    # for readers that use str.splitlines(); and an ASCII locale could not write it at all.
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    logger = JsonLogger(config)
    try:
        response = SimpleNamespace(status="404 NOT FOUND", headers=[], sent=2)
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/v1/a\x85b\u2028c",
            "HTTP_USER_AGENT": "ua\x85tail",
            "REMOTE_ADDR": "127.0.0.1",
        }
        logger.access(response, None, environ, timedelta(milliseconds=3))
        for handler in logger.access_log.handlers:
            handler.flush()
        written = (tmp_path / "access.log").read_bytes()
        assert written.isascii()
        [line] = written.decode().splitlines()
        entry = json.loads(line)
        assert (entry["path"], entry["user_agent"]) == ("/v1/a\x85b\u2028c", "ua\x85tail")
    finally:
        detach(logger)


def test_access_log_to_a_file_stays_a_file(tmp_path: Path) -> None:
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    logger = JsonLogger(config)
    handlers = [h for h in logger.access_log.handlers if getattr(h, "_gunicorn", False)]
    try:
        assert [type(h) for h in handlers] == [logging.FileHandler]
    finally:
        detach(logger)


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),  # every address: loopback works here
        ("[::]:9000", "http://[::1]:9000"),
        ("[::1]:8765", "http://[::1]:8765"),
        ("localhost", "http://localhost:8000"),
        ("unix:/run/puente.sock", "http://127.0.0.1:8000"),
    ],
)
def test_public_url_follows_the_bind_address(bind: str, url: str) -> None:
    assert public_url_for_bind(bind) == url


def test_the_app_takes_its_public_url_from_the_bind_address_unless_set(tmp_path: Path) -> None:
    code = "from exchange import create_app; print(create_app().config['PUBLIC_URL'])"
    instance = str(tmp_path / "instance")
    assert run_python(code, PUENTE_INSTANCE_PATH=instance) == "http://127.0.0.1:8000"
    bound = run_python(code, PUENTE_INSTANCE_PATH=instance, PUENTE_BIND="127.0.0.1:8765")
    assert bound == "http://127.0.0.1:8765"
    (tmp_path / "instance").mkdir(exist_ok=True)
    (tmp_path / "instance" / "puente.cfg").write_text('PUBLIC_URL = "https://cfg.example.org"\n')
    from_file = run_python(code, PUENTE_INSTANCE_PATH=instance, PUENTE_BIND="127.0.0.1:8765")
    assert from_file == "https://cfg.example.org"
    explicit = run_python(
        code,
        PUENTE_INSTANCE_PATH=instance,
        PUENTE_BIND="127.0.0.1:8765",
        PUENTE_PUBLIC_URL="https://puente.example.org",
    )
    assert explicit == "https://puente.example.org"


def test_two_servers_of_one_hub_have_their_own_control_sockets(tmp_path: Path) -> None:
    assert control_socket_path(tmp_path, 101) != control_socket_path(tmp_path, 102)


def test_a_file_named_like_a_package_in_the_working_directory_does_not_replace_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "consent.py").write_text("raise SystemExit('the wrong consent')\n")
    code = (
        "import os, sys; sys.path.insert(0, os.getcwd()); "
        "from exchange.serving import packages_before_working_directory; "
        "packages_before_working_directory(); import consent.request; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr
    # Without it, the stray file wins: this is what a worker restart used to hit.
    stray = subprocess.run(
        [sys.executable, "-c", "import os, sys; sys.path.insert(0, os.getcwd()); import consent"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "the wrong consent" in stray.stderr


def test_each_server_counts_in_its_own_metrics_folder(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = tmp_path / "prometheus"
    (root / f"serve-{dead.pid}").mkdir(parents=True)
    (root / f"serve-{dead.pid}" / "counter_1.db").write_bytes(b"x")
    running = root / f"serve-{os.getpid()}"
    running.mkdir()
    (running / "counter_2.db").write_bytes(b"x")
    (root / "counter_3.db").write_bytes(b"x")  # the shared folder of earlier versions

    folder = metrics_folder(root, 424242)
    assert folder == root / "serve-424242" and folder.is_dir()
    assert (running / "counter_2.db").exists()  # a running server's counters stay
    assert not (root / f"serve-{dead.pid}").exists()
    assert not (root / "counter_3.db").exists()


def test_serve_runs_gunicorn_without_the_working_directory_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        hub_cli.os, "execvpe", lambda file, argv, env: seen.update(argv=argv, env=env)
    )
    monkeypatch.setattr(hub_cli, "SHARED_MEMORY", tmp_path / "shm")
    (tmp_path / "shm").mkdir()
    hub_cli.exec_gunicorn("127.0.0.1:8000", None, str(tmp_path))
    assert seen["argv"][1:4] == ["-P", "-m", "exchange.serving"]
    assert seen["env"]["PROMETHEUS_MULTIPROC_DIR"] == str(
        metrics_root(tmp_path) / f"serve-{os.getpid()}"
    )


def test_metric_files_live_in_shared_memory_not_on_the_instance_disk(tmp_path: Path) -> None:
    # On a full or read-only disk, growing a mapped metrics file kills the worker (SIGBUS).
    shared = tmp_path / "shm"
    shared.mkdir()
    root = metrics_root(tmp_path / "instance", shared)
    assert root.parent == shared and root.name.startswith("puente-metrics-")
    assert metrics_root(tmp_path / "instance", shared) == root  # one per instance folder
    assert metrics_root(tmp_path / "other", shared) != root
    folder = metrics_folder(root, 424242)
    assert folder.is_dir() and (root.stat().st_mode & 0o777) == 0o700
    # A machine without a writable shared memory keeps them in the instance folder.
    assert metrics_root(tmp_path / "instance", tmp_path / "no-shm") == (
        tmp_path / "instance" / "prometheus"
    )
