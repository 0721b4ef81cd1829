"""Gunicorn settings for ``puente serve``, and a JSON access log.

Gunicorn reads this module as its config file (``-c python:exchange.serving``). Settings come
from ``PUENTE_*`` environment variables set by ``puente serve``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import logging.handlers
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from exchange.config import DEFAULT_BIND, instance_path_from_env
from exchange.logs import JsonFormatter

#: Longest path a Unix socket may have, with its terminating NUL (sun_path is 104 bytes on
#: macOS and the BSDs, 108 on Linux).
UNIX_SOCKET_PATH_MAX = 104


def control_socket_path(instance_path: Path, pid: int | None = None) -> str | None:
    """Where gunicorn's control socket (``gunicornc``) goes: in the hub's instance folder, one
    per running server (``gunicorn-<pid of its master>.ctl``), so neither two hubs on one
    machine nor two servers of one hub (a blue/green restart) share a socket, and stopping one
    never removes another's. None when the path is too long for a socket."""
    path = instance_path / f"gunicorn-{pid or os.getpid()}.ctl"
    return str(path) if len(os.fsencode(path)) < UNIX_SOCKET_PATH_MAX else None


def packages_before_working_directory() -> None:
    """Gunicorn puts the folder it was started from first on ``sys.path``; a file there named
    like one of Puente's packages (``consent.py``, ``audit.py``) would then be imported in
    their place when a worker (re)starts, and the hub would stop. That folder is taken off
    ``sys.path`` (Puente is installed, its packages are found without it) — unless it is the
    folder Puente's own packages are in (started from the source checkout)."""
    here = {"", os.getcwd()}
    source = str(Path(__file__).resolve().parent.parent)
    if source in {str(Path(entry or ".").resolve()) for entry in here}:
        return
    sys.path[:] = [entry for entry in sys.path if entry not in here]


def post_fork(_server: Any, _worker: Any) -> None:
    packages_before_working_directory()  # before the worker imports the app


def main() -> None:
    """Gunicorn for ``puente serve`` (``python -P -m exchange.serving ...``). Gunicorn puts
    the working directory first on ``sys.path`` before it reads this config; Puente's packages
    are imported first, so a stray ``schemas.py`` there cannot take their place (their
    modules are found through the packages from then on, never through ``sys.path``)."""
    from gunicorn.app.wsgiapp import run

    import adapters  # noqa: F401
    import audit  # noqa: F401
    import consent  # noqa: F401
    import schemas  # noqa: F401

    run(prog="puente serve")


if __name__ == "__main__":
    main()


#: Seconds a request may take before its (sync) worker is killed, unless
#: ``PUENTE_WORKER_TIMEOUT`` says: a bulk push at the limits (``BULK_MAX_LINES`` lines of
#: about 4 KB, 400 MB) took ~42 s on a 2-core machine with PostgreSQL beside the hub; two at
#: once share its cores. Gunicorn's own 60 s cut such a push, and its client got a 500.
DEFAULT_WORKER_TIMEOUT = 180

bind = os.environ.get("PUENTE_BIND", DEFAULT_BIND)
workers = int(os.environ.get("PUENTE_WORKERS", "2"))
threads = int(os.environ.get("PUENTE_THREADS", "1"))
timeout = int(os.environ.get("PUENTE_WORKER_TIMEOUT") or DEFAULT_WORKER_TIMEOUT)
# How long a stopping server (SIGTERM) lets the requests under way finish: as long as one may
# take, so that a stop or restart does not cut a push that would have been answered.
graceful_timeout = int(os.environ.get("PUENTE_GRACEFUL_TIMEOUT") or timeout)
keepalive = 5
# Limits on the request line and headers; bodies are limited by the app.
limit_request_line = 8190
limit_request_fields = 100
# "-" is stderr, as for the error log (gunicorn's own "-" for the access log is stdout;
# JsonLogger.setup moves it), so stdout stays free for what a command prints.
accesslog = os.environ.get("PUENTE_ACCESS_LOG", "-")
errorlog = "-"
# The instance folder is the one the app will use (``puente serve`` passes it on).
_control_socket = control_socket_path(instance_path_from_env())
control_socket = _control_socket or "gunicorn.ctl"  # not used when disabled
control_socket_disable = _control_socket is None
loglevel = os.environ.get("PUENTE_LOG_LEVEL", "info").lower()
logger_class = "exchange.serving.JsonLogger"
proc_name = "puente"


#: What gunicorn itself answers, before or after the app (a request line or headers over the
#: limits above, a malformed request, a worker killed at ``timeout``), as the hub's other
#: errors: status -> (problem type, Spanish detail, English detail). No request was parsed, so
#: there is no language to choose: both are given.
_SERVER_PROBLEMS: dict[int, tuple[str, str, str]] = {
    500: (
        "internal",
        "El servidor no terminó la solicitud: tardó más de lo permitido o falló. Lo que no "
        "recibió respuesta puede enviarse de nuevo (con la misma Idempotency-Key, nada se "
        "duplica).",
        "The server did not finish the request: it took longer than allowed or failed. What "
        "got no answer may be sent again (with the same Idempotency-Key, nothing is "
        "duplicated).",
    ),
    403: (
        "forbidden",
        "Solicitud rechazada por el servidor.",
        "Request refused by the server.",
    ),
}
_MALFORMED = (
    "validation",
    "La solicitud HTTP no es válida o excede los límites del servidor (línea de solicitud de "
    f"{limit_request_line} bytes, {limit_request_fields} encabezados).",
    "The HTTP request is malformed or over the server's limits (a request line of "
    f"{limit_request_line} bytes, {limit_request_fields} header fields).",
)


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Gunicorn's error page (``gunicorn.util.write_error``) as ``application/problem+json``
    in Spanish and English: an agency's client reads every error of the hub the same way,
    and gunicorn's HTML page was English only. ``mesg`` is gunicorn's own English words for
    a malformed request; it is kept as ``server_message``."""
    from gunicorn.util import write_nonblock

    from exchange.problems import KINDS, PROBLEM_BASE

    kind, spanish, english = _SERVER_PROBLEMS.get(status_int, _MALFORMED)
    _status, title_es, title_en = KINDS[kind]
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": f"{title_es} / {title_en}",
        "status": status_int,
        "detail": f"{spanish} / {english}",
    }
    if mesg:
        body["server_message"] = mesg
    if kind == "validation":
        body["errors"] = [{"pointer": "", "message": body["detail"]}]
    payload = json.dumps(body, ensure_ascii=False).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Language: es, en\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    write_nonblock(sock, head.encode("latin-1") + payload)


def post_worker_init(worker: Any) -> None:
    # Gunicorn looks its error page up by name on each error (workers/base.py handle_error);
    # it has no setting for it.
    import gunicorn.util

    gunicorn.util.write_error = write_problem  # type: ignore[assignment]

    # Each worker runs the audit integrator thread (sequencing, checkpoints); one at a time
    # does the work, by the lock on the log's state row (exchange/audit_sequencer.py).
    from flask import Flask

    from exchange import db
    from exchange.audit_sequencer import ensure_integrator

    if isinstance(worker.wsgi, Flask):
        ensure_integrator(worker.wsgi, serving=True)
        # SQLite: WAL checkpoints from a thread, not inside pushes (exchange/wal_checkpoints.py).
        db.database(worker.wsgi).checkpoint_in_background()
    # The app, its compiled schemas and validators are loaded now and live as long as the
    # worker. Frozen, the collector stops walking them on every full collection: a bulk push
    # allocates enough to trigger many, and they cost ~5-10 % of its CPU otherwise.
    gc.freeze()


def child_exit(_server: Any, worker: Any) -> None:
    # prometheus-client multiprocess mode: forget the metrics files of a worker that died.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(_server: Any) -> None:
    # The server's metric files (in shared memory, exchange/cli/hub.py:metrics_root) go with
    # it, and their folder too once no other server of the instance folder uses it.
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and Path(folder).name.startswith("serve-"):
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            Path(folder).parent.rmdir()  # only when empty


class GunicornJsonFormatter(JsonFormatter):
    """Gunicorn's own lines (starting, workers booting and exiting, a worker timeout and its
    traceback) as JSON objects like the hub's, with the process that wrote them."""

    def format(self, record: logging.LogRecord) -> str:
        record.pid = record.process
        return super().format(record)


class JsonLogger(Logger):
    """Gunicorn's logger with access lines and its own lines written as JSON objects, ``-``
    meaning stderr: the log is JSON lines only (a traceback is the ``exception`` field)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            # Syslog keeps its own format: its lines carry gunicorn's prefix there.
            if getattr(handler, "_gunicorn", False) and not isinstance(
                handler, logging.handlers.SysLogHandler
            ):
                handler.setFormatter(GunicornJsonFormatter())
        if cfg.accesslog == "-":
            for handler in self.access_log.handlers:
                if getattr(handler, "_gunicorn", False) and not isinstance(
                    handler, logging.FileHandler
                ):
                    handler.setStream(sys.stderr)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.syslog):
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        request_id = next(
            (value for name, value in resp.headers if name.lower() == "x-request-id"), None
        )
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "level": "info",
            "logger": "puente.access",
            "remote": environ.get("REMOTE_ADDR"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "request_id": request_id,
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        try:
            # ASCII (json's default): a client's U+0085 or U+2028 in a path or user agent
            # would otherwise split the line for readers, and an ASCII locale would drop it.
            self.access_log.info(json.dumps(entry))
        except Exception:  # noqa: BLE001 - logging must never fail a request
            self.exception("access log failed")
