"""Liveness, readiness and Prometheus metrics.

Under gunicorn every worker is a process; ``puente serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so
``/metrics`` adds up all workers (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import logging
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
from exchange.crypto import data_key_problem, unloadable_keys_problem
from exchange.keys import hub_keys
from exchange.problems import localized

#: Under "puente", so its lines are JSON like the rest (exchange.logs).
_log = logging.getLogger("puente.readiness")

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

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_record_request)


def _start_timer() -> None:
    g.started = time.perf_counter()


def _record_request(response: Response) -> Response:
    # The endpoint name, not the path, so ids in URLs do not explode the label set.
    endpoint = request.endpoint or "unmatched"
    # Likewise any method name a client invents counts as "other", or anyone could add series.
    method = request.method if request.method in KNOWN_METHODS else "other"
    HTTP_REQUESTS.labels(method, endpoint, str(response.status_code)).inc()
    if "started" in g:
        HTTP_DURATION.labels(endpoint).observe(time.perf_counter() - g.started)
    return response


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


#: The hub's keys, as /readyz names them to a person (Spanish, English).
KEY_NAMES = {
    "log": ("la del registro de auditoría", "the audit log key"),
    "witness": ("la de testigo", "the witness key"),
    "data": ("la de cifrado de datos", "the data encryption key"),
    "signing": ("la de firma de notificaciones", "the notification signing key"),
}


#: The setting that gives each hub key in the environment instead of a file.
KEY_SETTINGS = {
    "log": "AUDIT_LOG_KEY",
    "witness": "AUDIT_WITNESS_KEY",
    "data": "DATA_KEY",
    "signing": "HUB_SIGNING_KEY",
}


def _key_advice(
    missing: list[str], config: Any, *, restore_data: bool
) -> tuple[list[tuple[str, str]], bool]:
    """What to do about each missing or unreadable key — correct the setting that gives it
    (``puente init`` writes files, and would not read it better); restore the data key folder
    when rows are under keys the hub lacks (already advised; a new key would not read them);
    else ``puente init``, which makes a key that is simply not there yet — and whether
    ``puente init`` is the fix for all of them."""
    given = [role for role in missing if config.get(KEY_SETTINGS[role])]
    to_make = [
        role for role in missing if role not in given and not (role == "data" and restore_data)
    ]
    advice = []
    if given:
        settings = ", ".join(f"PUENTE_{KEY_SETTINGS[role]}" for role in given)
        advice.append(
            (
                f"no se puede leer la llave dada en {settings}: corríjala; el registro del "
                "servidor dice por qué",
                f"the key given in {settings} cannot be read: correct it; the server's log "
                "says why",
            )
        )
    if to_make:
        advice.append(
            (
                "faltan llaves del nodo o no se pueden leer ("
                + ", ".join(KEY_NAMES[role][0] for role in to_make)
                + "): ejecute 'puente init' con el mismo PUENTE_INSTANCE_PATH; el registro del "
                "servidor dice qué archivo falta",
                "hub keys are missing or unreadable ("
                + ", ".join(KEY_NAMES[role][1] for role in to_make)
                + "): run 'puente init' with the same PUENTE_INSTANCE_PATH; the server's log "
                "names the missing file",
            )
        )
    return advice, to_make == missing


def _signing_key_problem() -> str | None:
    """Why webhook notifications cannot be signed (the worker would deliver nothing), or
    ``None``."""
    from flask import current_app

    from exchange.transports import load_hub_signing_key

    try:
        load_hub_signing_key(current_app)
    except (OSError, ValueError) as error:
        return str(error)
    return None


@bp.get("/readyz")
def readyz() -> Any:
    """200 only when the database answers at the newest schema revision and every key is
    loaded; else 503 with each check's state and ``detail``: what to do, in the client's
    language."""
    checks: dict[str, str] = {}
    advice: list[tuple[str, str]] = []
    try:
        db.database().ping()
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"unreachable: {type(error).__name__}"
        advice.append(
            (
                "la base de datos no responde (revise PUENTE_DATABASE_URL)",
                "the database does not answer (check PUENTE_DATABASE_URL)",
            )
        )
    else:
        from flask import current_app

        revision = db.current_revision(current_app._get_current_object())  # type: ignore[attr-defined]
        head = db.head_revision()
        schema = db.schema_advice(revision)
        if schema is None:
            checks["migrations"] = "ok"
        else:
            if revision is None:
                checks["migrations"] = f"none, want {head} (run 'puente init')"
            elif revision not in db.known_revisions():
                checks["migrations"] = f"at {revision}, newer than this code's {head}"
            else:
                checks["migrations"] = f"at {revision}, want {head} (run 'puente db upgrade')"
            advice.append(schema)
    unloadable: Any = None
    if checks.get("migrations") == "ok":
        from flask import current_app

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        unloadable = unloadable_keys_problem(app, db.database().sessions)
        if unloadable:
            _log.error("not ready: rows under data keys not loaded: %s", unloadable)
            checks["data_keys"] = f"rows under keys this hub does not hold: {unloadable}"
            advice.append(
                (
                    "hay datos cifrados con llaves que el nodo no tiene: restaure la carpeta de "
                    "llaves desde la copia de seguridad (no ejecute 'puente init', que crearía "
                    "llaves nuevas que no los descifran)",
                    "data is encrypted under keys this hub does not hold: restore the key folder "
                    "from the backup (do not run 'puente init', which would make new keys that "
                    "do not decrypt it)",
                )
            )
    keys = hub_keys()
    data_problem = data_key_problem()
    missing = [role for role, key in (("log", keys.log), ("witness", keys.witness)) if key is None]
    missing += ["data"] if data_problem else []
    signing_problem = _signing_key_problem()
    missing += ["signing"] if signing_problem else []
    if not missing:
        checks["keys"] = "ok"
    else:
        # Which keys, not where: anyone may ask /readyz, and the instance folder's layout is
        # the operator's to read, in the server's log.
        from flask import current_app

        problems = "; ".join([*keys.problems, *filter(None, [data_problem, signing_problem])])
        _log.warning("not ready: hub keys: %s", problems)
        told, init_makes_all = _key_advice(
            missing, current_app.config, restore_data=bool(unloadable)
        )
        checks["keys"] = f"missing or unreadable: {', '.join(missing)}" + (
            " (run 'puente init')" if init_makes_all else ""
        )
        advice += told
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not-ready", "checks": checks}
    if advice:
        body["detail"] = "; ".join(localized(es, en) for es, en in advice)
    return jsonify(body), 200 if ready else 503


@bp.get("/metrics")
def metrics() -> Response:
    registry: CollectorRegistry = DEFAULT_REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    from exchange.hub_metrics import HubState

    hub = CollectorRegistry()
    hub.register(HubState(db.database().sessions))
    # content_type, not mimetype: CONTENT_TYPE_LATEST already names its charset, and Flask
    # adds one more to a text/* mimetype.
    return Response(
        generate_latest(registry) + generate_latest(hub), content_type=CONTENT_TYPE_LATEST
    )
