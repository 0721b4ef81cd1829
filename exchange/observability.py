"""Liveness, readiness and Prometheus metrics.

Under gunicorn every worker is a process; ``puente serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so
``/metrics`` adds up all workers (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import functools
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
from exchange.crypto import unloadable_keys_problem
from exchange.key_safety import (
    exposed_secrets,
    exposed_secrets_message,
    key_faults,
    loose_settings,
    signed_checkpoints,
)
from exchange.keys import (
    INVALID,
    LOADED_AT_START,
    MISSING,
    UNREADABLE,
    KeyFault,
    MisnamedKey,
    hub_keys,
)
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
    _series(HTTP_REQUESTS, method, endpoint, str(response.status_code)).inc()
    if "started" in g:
        _series(HTTP_DURATION, endpoint).observe(time.perf_counter() - g.started)
    return response


@functools.lru_cache(maxsize=4096)
def _series(metric: Any, *labels: str) -> Any:
    # ``labels()`` takes a lock and checks its arguments on every call; the series of a
    # metric are few (endpoints × methods × statuses) and live as long as the process.
    return metric.labels(*labels)


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


#: The hub's keys, as /readyz names them to a person (Spanish, English).
KEY_NAMES = {
    "log": ("la del registro de auditoría", "the audit log key"),
    "witness": ("la de testigo", "the witness key"),
    "data": ("la de cifrado de datos", "the data encryption key"),
    "signing": ("la de firma de notificaciones", "the notification signing key"),
    "portal": ("la secreta del portal", "the portal's secret key"),
}


def _names(roles: list[str], lang: int) -> str:
    return ", ".join(KEY_NAMES[role][lang] for role in roles)


def _roles(faults: list[KeyFault], wanted: Any) -> list[str]:
    """The roles (in :data:`KEY_NAMES` order) of the faults for which ``wanted`` holds."""
    chosen = {fault.role for fault in faults if wanted(fault)}
    return [role for role in KEY_NAMES if role in chosen]


def _once_mended(roles: list[str]) -> tuple[str, str]:
    """What follows mending the key files of ``roles``: a restart for those a process reads
    only as it starts (:data:`~exchange.keys.LOADED_AT_START`), none for the data keys."""
    if any(role in LOADED_AT_START for role in roles):
        return (
            "; después reinicie el nodo (serve y los workers), que lee esas llaves solo al "
            "arrancar",
            "; then restart the hub (serve and workers), which reads these keys only as it starts",
        )
    return (
        "; el nodo vuelve a leer la llave de datos en segundos, sin reiniciar",
        "; the hub reads the data key again within seconds, without a restart",
    )


def _key_advice(
    faults: list[KeyFault], *, restore_data: bool, log_signed: bool
) -> tuple[list[tuple[str, str]], list[str]]:
    """What to do about each key that is not there to use, as ``puente init`` would take it:
    correct the setting that gives it (``init`` writes files, and would not read it better);
    let the hub's user read a file it may not (``init`` refuses too); restore a damaged file,
    the data key folder when rows are under keys the hub lacks (already advised: a new key would
    not read them) and the log key once the log has signed checkpoints (a new one would sign a
    log oversight cannot verify); else ``puente init``, which makes a key that is simply not
    there yet — once nothing above makes it refuse. Returns the advice and the roles
    ``puente init`` would make."""
    # "PUENTE_DATA_KEY (dk_…)": the setting, once.
    given = list(dict.fromkeys(fault.source.split(" ")[0] for fault in faults if fault.given))
    denied = _roles(faults, lambda f: f.kind == UNREADABLE and not f.given)
    damaged = _roles(faults, lambda f: f.kind == INVALID and not f.given)
    renamed = _roles(faults, lambda f: _renamed_by(f) == "PUENTE_HUB_ID")
    new_origin = _roles(faults, lambda f: _renamed_by(f) == "PUENTE_AUDIT_ORIGIN")
    missing = _roles(faults, lambda f: f.kind == MISSING)
    restore_log = "log" in missing and log_signed
    to_make = [
        role
        for role in missing
        if not (role == "data" and restore_data) and not (role == "log" and restore_log)
    ]
    advice = []
    if given:
        settings = ", ".join(given)
        advice.append(
            (
                f"no se puede leer la llave dada en {settings}: corríjala; el registro del "
                "servidor dice por qué",
                f"the key given in {settings} cannot be read: correct it; the server's log "
                "says why",
            )
        )
    if denied:
        then_es, then_en = _once_mended(denied)
        advice.append(
            (
                f"el nodo no tiene permiso para leer el archivo de llaves ({_names(denied, 0)}): "
                "deben ser del usuario que ejecuta el nodo, con modo 600 ('puente init' no lo "
                f"arregla){then_es}; el registro del servidor nombra los archivos",
                f"the hub may not read key files ({_names(denied, 1)}): they must belong to "
                f"the user running the hub, mode 600 ('puente init' does not fix this){then_en}; "
                "the server's log names the files",
            )
        )
    if damaged:
        then_es, then_en = _once_mended(damaged)
        advice.append(
            (
                f"hay archivos de llaves dañados ({_names(damaged, 0)}): restáurelos desde la "
                f"copia de seguridad{then_es}; el registro del servidor los nombra y dice por qué",
                f"key files are damaged ({_names(damaged, 1)}): restore them from the "
                f"backup{then_en}; the server's log names them and says why",
            )
        )
    if renamed:
        advice.append(
            (
                f"las llaves ({_names(renamed, 0)}) se crearon para otro id de nodo: "
                "PUENTE_HUB_ID cambió desde 'puente init'; vuelva a poner el id con que se "
                "creó el nodo (el registro del servidor lo dice): el origen del registro no "
                "cambia nunca",
                f"keys ({_names(renamed, 1)}) were made for another hub id: PUENTE_HUB_ID "
                "changed since 'puente init'; set back the id the hub was made with (the "
                "server's log says which): the log's origin never changes",
            )
        )
    if new_origin:
        advice.append(
            (
                "la llave del registro de auditoría se creó para otro origen: "
                "PUENTE_AUDIT_ORIGIN cambió desde 'puente init'; vuelva a poner el origen con "
                "que se creó el registro (el registro del servidor lo dice): el origen del "
                "registro no cambia nunca",
                "the audit log key was made for another origin: PUENTE_AUDIT_ORIGIN changed "
                "since 'puente init'; set back the origin the log was made with (the server's "
                "log says which): the log's origin never changes",
            )
        )
    if restore_log:
        advice.append(
            (
                "falta la llave del registro de auditoría y el registro ya tiene puntos de "
                "control firmados: restáurela desde la copia de seguridad (no ejecute 'puente "
                "init', que crearía una llave nueva que los órganos de supervisión no "
                "reconocen)",
                "the audit log key is missing and the log has signed checkpoints: restore it "
                "from the backup (do not run 'puente init', which would make a new key that "
                "oversight bodies do not recognise)",
            )
        )
    if to_make and (advice or ("data" in missing and restore_data)):
        # init refuses while any of the above (or the data key folder) stands, making nothing.
        advice.append(
            (
                f"después, 'puente init' (con el mismo PUENTE_INSTANCE_PATH) crea las que faltan "
                f"({_names(to_make, 0)})",
                f"after that, 'puente init' (with the same PUENTE_INSTANCE_PATH) makes the "
                f"missing ones ({_names(to_make, 1)})",
            )
        )
    elif to_make:
        advice.append(
            (
                f"faltan llaves del nodo o no se pueden leer ({_names(to_make, 0)}): ejecute "
                "'puente init' con el mismo PUENTE_INSTANCE_PATH; el registro del servidor dice "
                "qué archivo falta",
                f"hub keys are missing or unreadable ({_names(to_make, 1)}): run 'puente init' "
                "with the same PUENTE_INSTANCE_PATH; the server's log names the missing file",
            )
        )
    return advice, to_make


def _renamed_by(fault: KeyFault) -> str | None:
    """The setting that changed since a misnamed key was made (exchange.keys.MisnamedKey)."""
    return fault.setting if isinstance(fault, MisnamedKey) else None


def _log_on_change(topic: str, message: str | None, level: int = logging.WARNING) -> None:
    """Log ``message`` unless it is the one this process logged last for ``topic``: /readyz
    is asked every few seconds, and a state that lasts is worth one line, not one a poll."""
    from flask import current_app

    logged = current_app.extensions.setdefault("puente.readiness_logged", {})
    if logged.get(topic) != message:
        logged[topic] = message
        if message is not None:
            _log.log(level, message)


def _check_keys(
    checks: dict[str, str], advice: list[tuple[str, str]], *, restore_data: bool, migrated: bool
) -> bool:
    """The ``keys`` check: the keys not there to use (a file the hub may not read apart, as
    "permission denied"), with what to do. Returns whether ``puente init`` would refuse to
    run (then it is advice for nothing else either: a restore drill's copy, say)."""
    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    faults = [
        fault
        for fault in key_faults(app, hub_keys())
        if fault.role in KEY_NAMES and not (fault.role == "portal" and fault.kind == MISSING)
    ]
    if not faults:
        checks["keys"] = "ok"
        _log_on_change("keys", None)
        return restore_data
    log_signed = False
    if migrated and any(f.role == "log" and f.kind == MISSING for f in faults):
        with db.database().sessions() as session:
            log_signed = bool(signed_checkpoints(session))
    told, to_make = _key_advice(faults, restore_data=restore_data, log_signed=log_signed)
    denied = _roles(faults, lambda f: f.kind == UNREADABLE and not f.given)
    # Which keys, not where: anyone may ask /readyz, and the instance folder's layout is the
    # operator's to read, in the server's log.
    states = []
    renamed = _roles(faults, lambda f: _renamed_by(f) == "PUENTE_HUB_ID")
    new_origin = _roles(faults, lambda f: _renamed_by(f) == "PUENTE_AUDIT_ORIGIN")
    unusable = [
        role for role in _roles(faults, lambda f: True) if role not in denied + renamed + new_origin
    ]
    if unusable:
        init_makes_all = to_make == unusable and not denied
        states.append(
            f"missing or unreadable: {', '.join(unusable)}"
            + (" (run 'puente init')" if init_makes_all else "")
        )
    if denied:
        states.append(f"permission denied: {', '.join(denied)}")
    if renamed:
        states.append(f"made for another hub id: {', '.join(renamed)}")
    if new_origin:
        states.append(f"made for another audit origin: {', '.join(new_origin)}")
    checks["keys"] = "; ".join(states)
    advice += told
    reasons = "; ".join(fault.reason for fault in faults)
    _log_on_change("keys", f"not ready: hub keys: {reasons}; {'; '.join(en for _, en in told)}")
    # init stops at a key it cannot use, or one it must not make again (_key_advice).
    return restore_data or log_signed or any(fault.kind != MISSING for fault in faults)


def _exposed_secrets_warning(init_refuses: bool) -> tuple[str, tuple[str, str]] | None:
    """Secrets other users of the machine may read, for /readyz: a warning, not "not ready"
    (serving or not, the files are as readable), with what ``puente init`` would close — or,
    when it would refuse to run (``init_refuses``: a restore drill's copy, whose log is signed
    but whose log key is not there), the ``chmod`` that does."""
    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    exposed = exposed_secrets(app)
    logged = exposed_secrets_message(exposed, app=app)[1] if exposed else None
    if exposed and init_refuses:  # that message advises init first
        files = " ".join(map(str, exposed))
        logged = (
            "other users of this machine can read the hub's secrets: make them readable by "
            f"their owner only (chmod 600, folders 700): {files}"
        )
    _log_on_change("exposed_secrets", logged)
    if not exposed:
        return None
    database = db.database(app)
    main = str(database.url.database) if database.is_sqlite else None
    settings = set(loose_settings(app))  # puente.cfg, the instance folder
    what = sorted(
        {
            "configuration"
            if path in settings
            else "database"
            if main and str(path).startswith(main)
            else "keys"
            for path in exposed
        }
    )
    if init_refuses:
        return (
            f"readable by other users: {', '.join(what)} (chmod 600, folders 700)",
            (
                "otros usuarios de esta máquina pueden leer la base de datos o las llaves del "
                "nodo: déjelos solo para su dueño (chmod 600; las carpetas, 700); el registro "
                "del servidor los nombra",
                "other users of this machine can read the hub's database or keys: make them "
                "readable by their owner only (chmod 600; folders, 700); the server's log "
                "names them",
            ),
        )
    return (
        f"readable by other users: {', '.join(what)} (run 'puente init')",
        (
            "otros usuarios de esta máquina pueden leer la base de datos o las llaves del nodo: "
            "ejecute 'puente init', que los deja solo para su dueño; el registro del servidor "
            "los nombra",
            "other users of this machine can read the hub's database or keys: run 'puente "
            "init', which makes them readable by their owner only; the server's log names them",
        ),
    )


@bp.get("/readyz")
def readyz() -> Any:
    """200 only when the database answers at the newest schema revision, can take writes
    (:meth:`~exchange.db.Database.write_problem`) and every key is loaded; else 503 with
    each check's state and ``detail``: what to do, in the client's language. Secrets other
    users may read are a ``warnings`` member, ready or not."""
    checks: dict[str, str] = {}
    advice: list[tuple[str, str]] = []
    try:
        db.database().ping()
        cannot_write = db.database().write_problem()
    except Exception as error:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"unreachable: {type(error).__name__}"
        advice.append(
            (
                "la base de datos no responde (revise PUENTE_DATABASE_URL)",
                "the database does not answer (check PUENTE_DATABASE_URL)",
            )
        )
    else:
        # Answering is not enough: a hub that cannot store a push is not ready either.
        checks["database"] = cannot_write.state if cannot_write else "ok"
        if cannot_write:
            advice.append((cannot_write.es, cannot_write.en))
        logged = cannot_write.logged if cannot_write else None
        _log_on_change("database_writes", logged, logging.ERROR)
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
        _log_on_change(
            "unloadable",
            f"not ready: rows under data keys not loaded: {unloadable}" if unloadable else None,
            logging.ERROR,
        )
        if unloadable:
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
    init_refuses = _check_keys(
        checks, advice, restore_data=bool(unloadable), migrated=checks.get("migrations") == "ok"
    )
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not-ready", "checks": checks}
    exposed = _exposed_secrets_warning(init_refuses)
    if exposed is not None:
        body["warnings"] = {"file_permissions": exposed[0]}
        advice.append(exposed[1])
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
