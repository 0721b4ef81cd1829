"""``/v1/audit``: the signed log for oversight bodies (scope ``audit:read``).

Checkpoints, entries, inclusion and consistency proofs let anyone holding the hub's public log
key check the log offline; ``events`` and ``alerts`` are the query views. Entries hold ids,
codes and digests only, never case content, so nothing here is redacted.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, json, jsonify, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy import select

from audit import consistency_proof, inclusion_proof, make_proof_file
from exchange import db
from exchange.audit_log import AuditCheckpoint, AuditEntry, action_code, format_time, parse_entry
from exchange.audit_queries import (
    AlertWindow,
    child_family,
    collect_alerts,
    find_events,
    known_actions,
    latest_checkpoint,
    latest_checkpoint_size,
    log_size,
)
from exchange.audit_sequencer import TileStore, ensure_integrator, tile_cache
from exchange.auth import current_actor, require_scope, utcnow
from exchange.consents import is_oversight
from exchange.httpbasics import (
    FHIR_JSON,
    int_query,
    invalid_query,
    query_parameters,
    wants_fhir,
)
from exchange.problems import Problem, localized
from exchange.witnessing import with_cosignatures
from schemas.formats import is_date_time

bp = Blueprint("audit", __name__, url_prefix="/v1/audit")
log = logging.getLogger("puente.audit")

TLOG_PROOF_MEDIA_TYPE = "text/x.tlog-proof"
NDJSON_MEDIA_TYPE = "application/x-ndjson"
DEFAULT_ENTRIES_PAGE = 1000
DEFAULT_EVENTS_PAGE = 100
MAX_EVENTS_PAGE = 1000
DEFAULT_ALERT_WINDOW = 3600
DEFAULT_ALERT_DENIALS = 10
DEFAULT_ALERT_ACCESS_REQUESTS = 50


def oversight_only(view: Callable[..., Response]) -> Callable[..., Response]:
    """The log names every child's readers, whatever the state: only an oversight body reads
    it. The registry gives ``audit:read`` to no other kind, and this keeps a token issued
    before that rule (or before its agency's kind changed) from reading it."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        if not is_oversight(current_actor()):
            raise Problem(
                "forbidden",
                (
                    "Solo un órgano de supervisión lee la bitácora de auditoría.",
                    "Only an oversight body reads the audit log.",
                ),
            )
        return view(*args, **kwargs)

    return guarded


@bp.record_once
def _start_integrator_with_the_app(state: BlueprintSetupState) -> None:
    # `puente serve` workers start the integrator thread from gunicorn's post_worker_init;
    # with AUDIT_INTEGRATOR_THREAD = True any serving process starts it at its first request.
    app: Flask = state.app
    app.before_request(lambda: ensure_integrator(app) and None)


@bp.get("/checkpoint")
@require_scope("audit:read")
@oversight_only
@query_parameters()
def checkpoint() -> Response:
    latest = latest_checkpoint(db.session())
    if latest is None:
        raise Problem(
            "not-found",
            ("Aún no hay un punto de control firmado.", "No checkpoint has been signed yet."),
        )
    # The peers' witnesses' cosignatures on it, verified when received, as extra signature
    # lines: a client that trusts those witnesses can require a quorum of them.
    return Response(with_cosignatures(db.session(), latest.note), mimetype="text/plain")


@bp.get("/entries")
@require_scope("audit:read")
@oversight_only
@query_parameters("start", "end")
def entries() -> Response:
    session = db.session()
    size = log_size(session)
    page = int(current_app.config.get("AUDIT_ENTRIES_PAGE_MAX") or DEFAULT_ENTRIES_PAGE)
    start = _int_query("start", minimum=0)
    end = _int_query("end", minimum=1, default=None)
    if end is None:
        end = start + page
    if end <= start:
        raise invalid_query(
            "end", f"debe ser mayor que start ({start})", f"must exceed start ({start})"
        )
    if end - start > page:
        raise invalid_query(
            "end", f"a lo más {page} entradas por página", f"at most {page} per page"
        )
    _within_log(start, size, "start")
    stop = min(end, size)
    rows = session.execute(
        select(AuditEntry.idx, AuditEntry.entry)
        .where(AuditEntry.idx >= start, AuditEntry.idx < stop)
        .order_by(AuditEntry.idx)
    ).all()
    _check_contiguous(rows, start, stop)
    return Response(_ndjson_lines(rows), mimetype=NDJSON_MEDIA_TYPE)


def _check_contiguous(rows: Sequence[Any], start: int, stop: int) -> None:
    """Every index from ``start`` to ``stop - 1`` is in ``rows`` (ordered by index), or the
    hub's database lost an entry of its signed log: a 500 naming the first one missing, never
    a page that skips it (a client reading page after page would take the log as whole)."""
    expected = start
    for index, _entry in rows:
        if index != expected:
            break
        expected += 1
    else:
        if expected == stop:
            return
    log.error(
        "audit log entry %d is missing from the database (GET /v1/audit/entries?start=%d&end=%d)",
        expected,
        start,
        stop,
    )
    raise Problem(
        "internal",
        (
            f"Falta la entrada {expected} del registro en la base de datos del nodo: el registro "
            "firmado está dañado. La página no se entrega para no ocultar el hueco; avise a los "
            "operadores del nodo.",
            f"Entry {expected} of the log is missing from the hub's database: the signed log is "
            "damaged. The page is not served, so as not to hide the gap; tell the hub's "
            "operators.",
        ),
        missing_index=expected,
    )


def _ndjson_lines(rows: list[Any]) -> Iterator[str]:
    for index, entry in rows:
        yield json.dumps({"index": index, "entry": bytes(entry).decode()}) + "\n"


@bp.get("/proofs/inclusion")
@require_scope("audit:read")
@oversight_only
@query_parameters("index", "tree_size")
def inclusion() -> Response:
    session = db.session()
    wants_file = _wants_tlog_proof()
    latest_size = latest_checkpoint_size(session)
    index = _int_query("index", minimum=0)
    tree_size = _int_query("tree_size", minimum=1, default=latest_size)
    if tree_size is None:
        raise Problem(
            "not-found",
            ("Aún no hay un punto de control firmado.", "No checkpoint has been signed yet."),
        )
    if tree_size != latest_size:
        _within_log(tree_size - 1, log_size(session), "tree_size")
    if index >= tree_size:
        raise Problem(
            "not-found",
            (
                f"La entrada {index} no está en el árbol de tamaño {tree_size}.",
                f"Entry {index} is not in the tree of size {tree_size}.",
            ),
            errors=[
                {
                    "pointer": "/query/index",
                    "message": localized("fuera del árbol", "outside the tree"),
                }
            ],
        )
    hashes = inclusion_proof(index, tree_size, TileStore(session, tile_cache(current_app)))
    if not wants_file:
        return jsonify(leaf_index=index, tree_size=tree_size, hashes=_b64(hashes))
    signed = session.get(AuditCheckpoint, tree_size)
    if signed is None:
        latest_size = latest_size or 0
        raise Problem(
            "not-found",
            (
                f"No hay punto de control de tamaño {tree_size}; el último es {latest_size}.",
                f"No checkpoint was signed at size {tree_size}; the latest is {latest_size}.",
            ),
            latest_checkpoint_size=latest_size,
        )
    # The entry itself rides in the proof's (unauthenticated) extra data, so the file alone
    # lets `puente audit verify --proof` show and check it; the checkpoint carries the peers'
    # cosignatures, as GET /v1/audit/checkpoint does, so `--quorum` can be met with it alone.
    entry = session.scalar(select(AuditEntry.entry).where(AuditEntry.idx == index))
    note = with_cosignatures(session, signed.note)
    text = make_proof_file(index, hashes, note, extra=bytes(entry) if entry else None)
    return Response(text, mimetype=TLOG_PROOF_MEDIA_TYPE)


@bp.get("/proofs/consistency")
@require_scope("audit:read")
@oversight_only
@query_parameters("first", "second")
def consistency() -> Response:
    session = db.session()
    first = _int_query("first", minimum=1)
    latest_size = latest_checkpoint_size(session)
    second = _int_query("second", minimum=1, default=latest_size)
    if second is None:
        raise invalid_query("second", "es obligatorio", "is required")
    if "second" not in request.args and first > second:
        # second left out means the latest signed size: the caller asked about first alone.
        raise Problem(
            "not-found",
            (
                f"El último punto de control firmado tiene {second} entradas; first ({first}) "
                "está más allá.",
                f"The latest signed checkpoint has {second} entries; first ({first}) is beyond it.",
            ),
        )
    if second < first:
        raise invalid_query(
            "second", f"debe ser al menos first ({first})", f"must be at least first ({first})"
        )
    if second != latest_size:
        _within_log(second - 1, log_size(session), "second")
    hashes = consistency_proof(first, second, TileStore(session, tile_cache(current_app)))
    return jsonify(first=first, second=second, hashes=_b64(hashes))


@bp.get("/events")
@require_scope("audit:read")
@oversight_only
@query_parameters(
    "limit", "cursor", "action", "outcome", "since", "until", "child_id", "actor", "format"
)
def events() -> Response:
    limit = _int_query("limit", minimum=1, default=DEFAULT_EVENTS_PAGE, maximum=MAX_EVENTS_PAGE)
    cursor = _int_query("cursor", minimum=0, default=None)
    action = request.args.get("action")
    if action is not None:
        action = action_code(action) if action else ""
        actions = known_actions()
        if action not in actions:
            # Which ones there are, here rather than only in the schema: the person who typed
            # the wrong one is reading this answer.
            listed = ", ".join(actions)
            raise invalid_query(
                "action",
                f"acción desconocida; las del esquema audit-event/1 (GET "
                f"/v1/schemas/audit-event/1) son: {listed}",
                f"unknown action; those of schema audit-event/1 (GET /v1/schemas/audit-event/1) "
                f"are: {listed}",
            )
    outcome = request.args.get("outcome")
    if outcome is not None and outcome not in ("success", "failure", "denied"):
        raise invalid_query("outcome", "success, failure o denied", "success, failure or denied")
    since, until = _time_param("since"), _time_param("until")
    if since is not None and until is not None and until < since:
        # [since, until) with until first is no window at all: a mistake to say, not an
        # empty page that reads as "nothing happened".
        raise invalid_query(
            "until",
            f"debe ser igual o posterior a since ({request.args['since']})",
            f"must not be before since ({request.args['since']})",
        )
    session = db.session()
    child_id = request.args.get("child_id")
    # A child's history includes what was written about the children later merged into it.
    child_ids = None if child_id is None else child_family(session, child_id)
    rows = find_events(
        session,
        child_ids=child_ids,
        actor=request.args.get("actor"),
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        after_index=-1 if cursor is None else cursor,
        limit=limit,
    )
    next_cursor = str(rows[-1].idx) if len(rows) == limit else None
    if wants_fhir():
        return _fhir_bundle(rows, next_cursor)
    return jsonify(
        events=[
            {"index": row.idx, "id": row.id, "entry": parse_entry(bytes(row.entry))} for row in rows
        ],
        next_cursor=next_cursor,
        **({} if child_ids is None else {"child_ids": child_ids}),
    )


def _fhir_bundle(rows: list[AuditEntry], next_cursor: str | None) -> Response:
    """The events as a FHIR R5 ``searchset`` Bundle of AuditEvent resources."""
    from exchange.fhir_export import audit_entry_to_fhir

    hub_id = current_app.config["HUB_ID"]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        # No "total": it is the number of matches over every page (optional in FHIR), which
        # a page of the log does not know; the next link says whether more follow.
        "entry": [
            {
                "resource": audit_entry_to_fhir(
                    parse_entry(bytes(row.entry)), index=row.idx, hub_id=hub_id
                )
            }
            for row in rows
        ],
    }
    if next_cursor is not None:
        query = {**request.args.to_dict(), "cursor": next_cursor, "format": "fhir"}
        bundle["link"] = [{"relation": "next", "url": f"{request.base_url}?{urlencode(query)}"}]
    response = jsonify(bundle)
    response.mimetype = FHIR_JSON
    return response


#: Denials (or access requests) in the window that make a spike: more than any window could
#: hold in practice, and within every database's integers.
MAX_ALERT_THRESHOLD = 1_000_000


#: The shortest and longest window of alerts, in seconds (the route's and the portal's).
SHORTEST_ALERT_WINDOW, LONGEST_ALERT_WINDOW = 60, 30 * 86400


def alert_settings() -> tuple[int, int, int]:
    """The configured window (seconds), denial threshold and access-request threshold of the
    alerts, for the route and the portal's page alike: an empty setting is the default."""
    config = current_app.config
    return (
        int(config.get("AUDIT_ALERT_WINDOW_SECONDS") or DEFAULT_ALERT_WINDOW),
        int(config.get("AUDIT_ALERT_DENIALS") or DEFAULT_ALERT_DENIALS),
        int(config.get("AUDIT_ALERT_ACCESS_REQUESTS") or DEFAULT_ALERT_ACCESS_REQUESTS),
    )


@bp.get("/alerts")
@require_scope("audit:read")
@oversight_only
@query_parameters("window", "threshold", "request_threshold")
def alerts() -> Response:
    window_default, threshold_default, request_default = alert_settings()
    window_seconds = _int_query(
        "window",
        minimum=SHORTEST_ALERT_WINDOW,
        maximum=LONGEST_ALERT_WINDOW,
        default=window_default,
    )
    threshold = _int_query(
        "threshold", minimum=1, maximum=MAX_ALERT_THRESHOLD, default=threshold_default
    )
    request_threshold = _int_query(
        "request_threshold", minimum=1, maximum=MAX_ALERT_THRESHOLD, default=request_default
    )
    now = utcnow()
    window = AlertWindow(now - timedelta(seconds=window_seconds), now, threshold, request_threshold)
    return jsonify(
        generated_at=format_time(now),
        window_seconds=window_seconds,
        alerts=collect_alerts(db.session(), window),
    )


# --- parameters ------------------------------------------------------------------------------


def _wants_tlog_proof() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", TLOG_PROOF_MEDIA_TYPE])
    return best == TLOG_PROOF_MEDIA_TYPE


#: The largest value a query parameter may take: indices and sizes are 64-bit signed
#: integers in the database.
MAX_QUERY_INTEGER = 2**63 - 1


def _int_query(name: str, **limits: Any) -> Any:
    """:func:`int_query`, saying "out of range" of a number too large for any index or size
    (rather than "not a non-negative integer", which it is)."""
    digits = (request.args.get(name) or "").lstrip("0")
    # By length first: int() refuses strings of thousands of digits.
    if (
        digits.isascii()
        and digits.isdigit()
        and (len(digits) > len(str(MAX_QUERY_INTEGER)) or int(digits) > MAX_QUERY_INTEGER)
    ):
        raise invalid_query(
            name,
            f"está fuera de rango: no cabe en 64 bits (a lo más {MAX_QUERY_INTEGER})",
            f"is out of range: it does not fit in 64 bits (at most {MAX_QUERY_INTEGER})",
        )
    return int_query(name, **limits)


def _time_param(name: str) -> datetime | None:
    text = request.args.get(name)
    if text is None:
        return None
    moment = None
    if is_date_time(text):  # RFC 3339 only: fromisoformat alone takes ISO 8601's week dates
        try:
            # Far offsets at the ends of the calendar overflow when the filter turns the time
            # into UTC: refused like any other bad value, not a 500.
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            moment.astimezone(UTC)
        except (ValueError, OverflowError):
            moment = None
    if moment is None or moment.tzinfo is None:
        # A "+05:00" offset written as such in the URL arrives as " 05:00": a + in a query
        # string means a space.
        plus_es, plus_en = (
            (
                "; el signo + de la zona debe escribirse %2B en la dirección",
                "; the + of the offset must be written %2B in the URL",
            )
            if " " in text
            else ("", "")
        )
        raise invalid_query(
            name,
            f"debe ser fecha y hora RFC 3339 con zona (2024-05-20T22:42:01Z){plus_es}",
            f"must be an RFC 3339 date-time with offset (2024-05-20T22:42:01Z){plus_en}",
        )
    return moment


def _within_log(index: int, size: int, name: str) -> None:
    if index >= size:
        raise Problem(
            "not-found",
            (
                f"El registro tiene {size} entradas; {name} está fuera.",
                f"The log has {size} entries; {name} is beyond it.",
            ),
            log_size=size,
            errors=[
                {
                    "pointer": f"/query/{name}",
                    "message": localized("fuera del registro", "beyond the log"),
                }
            ],
        )


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]
