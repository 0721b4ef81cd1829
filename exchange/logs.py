"""JSON-lines logging to stderr, one object per event, with the request id when there is one."""

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


def configure(level: str = "INFO") -> None:
    """Send the ``puente`` loggers to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger("puente")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_puente", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._puente = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
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
    configure(level)


def warn_unknown_settings(unknown: list[UnknownSetting]) -> None:
    """Say, once per process start, which settings the hub ignores (a misspelt name), and
    where each was written: the environment or puente.cfg."""
    logging.getLogger("puente.config").warning(
        "configuración desconocida, ignorada: %s / unknown settings, ignored: %s",
        ", ".join(setting.described("es") for setting in unknown),
        ", ".join(setting.described("en") for setting in unknown),
        extra={"unknown_settings": [setting.described("en") for setting in unknown]},
    )
