"""Liveness, readiness and Prometheus metrics.

Under gunicorn every worker is a process; ``puente serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so
``/metrics`` adds up all workers (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

from exchange import db
from exchange.crypto import data_key_problem
from exchange.keys import hub_keys

bp = Blueprint("ops", __name__)

HTTP_REQUESTS = Counter(
    "puente_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"]
)
HTTP_DURATION = Histogram(
    "puente_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_record_request)


def _start_timer() -> None:
    g.started = time.perf_counter()


def _record_request(response: Response) -> Response:
    # The endpoint name, not the path, so ids in URLs do not explode the label set.
    endpoint = request.endpoint or "unmatched"
    HTTP_REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    if "started" in g:
        HTTP_DURATION.labels(endpoint).observe(time.perf_counter() - g.started)
    return response


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Any:
    checks: dict[str, str] = {}
    try:
        db.database().ping()
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"unreachable: {type(error).__name__}"
    else:
        from flask import current_app

        revision = db.current_revision(current_app._get_current_object())  # type: ignore[attr-defined]
        head = db.head_revision()
        checks["migrations"] = (
            "ok" if revision == head else f"at {revision}, want {head} (run 'puente db upgrade')"
        )
    keys = hub_keys()
    problems = [*keys.problems, *filter(None, [data_key_problem()])]  # hub and data keys
    checks["keys"] = "ok" if keys.loaded and not problems else "; ".join(problems)
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "not-ready", checks=checks), 200 if ready else 503


@bp.get("/metrics")
def metrics() -> Response:
    registry: CollectorRegistry = DEFAULT_REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    # content_type, not mimetype: CONTENT_TYPE_LATEST already names its charset, and Flask
    # adds one more to a text/* mimetype.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
