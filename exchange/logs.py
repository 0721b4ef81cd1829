"""JSON-lines logging to stderr, one object per event, with the request id when there is one.

The hub's own loggers (``puente.*``) and the libraries' that may write to its log
(:data:`LIBRARY_LOGGERS`: psycopg, SQLAlchemy, and Python's warnings — SQLAlchemy's
``SAWarning`` among them — once :func:`logging.captureWarnings` makes them log records) all go
through :class:`JsonFormatter`: no line of the log is anything but JSON. The libraries log at
``WARNING`` and above whatever ``PUENTE_LOG_LEVEL`` says (SQLAlchemy's ``INFO`` would log every
statement, with its values). One message of psycopg is expected and said lower, with context
(:class:`ExpectedPipelineAbort`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from flask import Flask, g, has_request_context

if TYPE_CHECKING:
    from exchange.config import UnknownSetting

_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" not in record.__dict__:
            entry["request_id"] = g.get("request_id")
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


#: Loggers of libraries the hub uses, sent to its log as JSON lines too (``py.warnings``: the
#: warnings Python would print, SQLAlchemy's among them).
LIBRARY_LOGGERS = ("psycopg", "sqlalchemy", "py.warnings")


class ExpectedPipelineAbort(logging.Filter):
    """psycopg's ``error ignored terminating <psycopg.Pipeline …>: pipeline aborted``, logged when
    a statement sent in a pipeline (``executemany``) raised: the pipeline then cannot end
    cleanly, and psycopg logs that while the statement's own error goes on to the caller. On
    the push path that error is a concurrent push's unique key winning a race, and the push is
    tried again (:mod:`exchange.record_push` logs that, at ``INFO``): so this line is said at
    ``DEBUG``, in words that say why, with the pipeline it was about."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if (
            record.msg == "error ignored terminating %r: %s"
            and len(args) == 2
            and type(args[0]).__name__ == "Pipeline"
            and type(args[1]).__name__ == "PipelineAborted"
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg = (
                "psycopg: canalización (pipeline) abortada por el error de una de sus "
                "sentencias, que se atiende aparte (un envío que perdió una carrera con otro "
                "se intenta de nuevo) / psycopg: pipeline aborted by the error of one of its "
                "statements, which is handled on its own (a push that lost a race to another "
                "is tried again)"
            )
            record.args = ()
            record.pipeline = repr(args[0])
        return True


def configure(level: str = "INFO", *, capture_warnings: bool = False) -> None:
    """Send the ``puente`` loggers and :data:`LIBRARY_LOGGERS` to stderr as JSON lines
    (idempotent). ``capture_warnings``: Python's warnings too (not under tests, where pytest
    records them)."""
    level = level.upper()
    logger = logging.getLogger("puente")
    logger.setLevel(level)
    _json_to_stderr(logger, level)
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        # At least WARNING: a library's INFO and DEBUG are its own business (SQLAlchemy's
        # would be every statement). What a filter says lower is kept or not by the handler.
        library.setLevel(max(logging.WARNING, logging.getLevelName(level)))
        _json_to_stderr(library, level)
        if name == "psycopg" and not any(
            isinstance(f, ExpectedPipelineAbort) for f in library.filters
        ):
            library.addFilter(ExpectedPipelineAbort())
    if capture_warnings:
        logging.captureWarnings(True)


def _json_to_stderr(logger: logging.Logger, level: str) -> None:
    handlers: list[logging.Handler] = [h for h in logger.handlers if getattr(h, "_puente", False)]
    if not handlers:
        made = logging.StreamHandler(sys.stderr)
        made.setFormatter(JsonFormatter())
        made._puente = True  # type: ignore[attr-defined]
        logger.addHandler(made)
        handlers = [made]
    for each in handlers:
        each.setLevel(level)
    logger.propagate = False


#: What ``PUENTE_LOG_LEVEL`` takes.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def init_app(app: Flask) -> None:
    from exchange.config import SettingError

    level = str(app.config.get("LOG_LEVEL", "INFO"))
    if level.upper() not in LEVELS:
        raise SettingError(
            f"PUENTE_LOG_LEVEL = {level}: debe ser uno de {', '.join(LEVELS)}.",
            f"PUENTE_LOG_LEVEL = {level}: must be one of {', '.join(LEVELS)}.",
        )
    configure(level, capture_warnings=not app.testing)


def warn_unknown_settings(unknown: list[UnknownSetting]) -> None:
    """Say, once per process start, which settings the hub ignores (a misspelt name), and
    where each was written: the environment or puente.cfg."""
    logging.getLogger("puente.config").warning(
        "configuración desconocida, ignorada: %s / unknown settings, ignored: %s",
        ", ".join(setting.described("es") for setting in unknown),
        ", ".join(setting.described("en") for setting in unknown),
        extra={"unknown_settings": [setting.described("en") for setting in unknown]},
    )
