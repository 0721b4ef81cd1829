"""API blueprint: consents, the child's views, "withhold from" entries, decisions (dry run),
access requests, grants and emergency overrides. The services are in :mod:`exchange.consents`;
every route here checks the body, calls one service, commits (the audit entry is in the same
transaction) and answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flask import Blueprint, after_this_request, g, jsonify, request
from sqlalchemy.orm import Session

import consent
from consent import ConsentError, Decision, Reason
from exchange import db
from exchange.access_basis import access_as_of
from exchange.api.record_reads import (
    DECISION_HEADER,
    OUTSIDER,
    answer_in_even_time,
    answer_refusals_in_even_time,
    referred_to,
    told_decision,
    told_to,
)
from exchange.audit_log import record_event
from exchange.auth import (
    Actor,
    as_utc,
    current_actor,
    require_any_scope,
    require_scope,
    utcnow,
)
from exchange.children import resolve_child_id
from exchange.consent_store import AccessRequestRow, GrantRow
from exchange.consents import (
    ACCESS_KEY,
    OVERRIDE_STATES,
    OVERSIGHT_SCOPE,
    ConsentProblem,
    active_grants,
    acts_for_child,
    decide_request,
    find_consent,
    grant_end_as_told,
    list_consents,
    list_views,
    list_withholds,
    may_see_request,
    open_override,
    override_queue,
    party,
    read_override,
    record_consent,
    record_views,
    record_withhold,
    request_access,
    request_access_basis,
    require_acts_for,
    review_override,
    review_views,
    revoke_consent,
    revoke_grant,
    revoke_withhold,
)
from exchange.consents.access import (
    QUEUE_PAGE,
    QueueFilter,
    asked_end_passed,
    child_asked_about,
    decision_now,
    own_requests,
    request_queue,
    request_written,
    stray_record_warnings,
)
from exchange.consents.common import QUEUE_LIMIT, instant_problem, instant_text, read_instant
from exchange.consents.hidden import as_told_to
from exchange.crypto import data_keyring
from exchange.disclosure import (
    ChildContext,
    audit_decision,
    evaluate,
    evaluate_read,
    load_child,
)
from exchange.httpbasics import (
    FHIR_JSON,
    REQUEST_NOT_VALID,
    check_against,
    check_query,
    int_query,
    query_parameters,
    require_json,
    schema_validator,
    wants_fhir,
)
from exchange.problems import Problem, negotiated_language
from schemas.fields import FieldInfo, collect_fields, find_field, pointer_from_tokens

bp = Blueprint("consents", __name__)
# A child outside the caller's jurisdiction, or an access request it may not see, answers 404
# as an unknown id does; loading and weighing what exists costs time an unknown id does not,
# so every 404 here waits out READ_REFUSAL_FLOOR from the request's start, as record reads do.
bp.after_request(answer_refusals_in_even_time)


# -- plumbing ----------------------------------------------------------------------------------


def _errors(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    lang = negotiated_language()
    return [
        {
            "pointer": error.get("pointer", ""),
            "message": error["message_es"] if lang == "es" else error["message_en"],
            **({"code": error["code"]} if "code" in error else {}),
        }
        for error in errors
    ]


@contextmanager
def _answering(session: Session) -> Iterator[None]:
    """Turn the services' refusals into problems (nothing they wrote is kept)."""
    try:
        yield
    except ConsentProblem as problem:
        session.rollback()
        extra: dict[str, Any] = {"errors": _errors(problem.errors)} if problem.errors else {}
        extra.update(problem.extra)
        raise Problem(problem.kind, (problem.es, problem.en), **extra) from problem
    except ConsentError as error:
        session.rollback()
        raise Problem(
            "validation",
            ("La solicitud no es válida.", "The request is not valid."),
            errors=_errors(
                [
                    {
                        "pointer": error.pointer,
                        "message_es": error.message_es,
                        "message_en": error.message_en,
                    }
                ]
            ),
        ) from error
    except LookupError as error:
        session.rollback()
        raise _not_found() from error


def _require_one_of(actor: Actor, scopes: tuple[str, ...]) -> None:
    """Routes several kinds of caller may use: a token with none of ``scopes`` is refused
    whatever the path names, so the refusal tells nothing about what exists."""
    if not set(scopes) & actor.scopes:
        listed = " o ".join(scopes), " or ".join(scopes)
        raise Problem(
            "forbidden",
            (
                f"El token no tiene el alcance requerido para esta operación: {listed[0]}.",
                f"The token lacks the scope this operation requires: {listed[1]}.",
            ),
        )


def _not_found() -> Problem:
    return Problem(
        "not-found",
        ("No existe o no tiene acceso a ello.", "It does not exist, or you have no access to it."),
    )


# Request bodies and query strings that are not registered documents. Titles name the fields
# in the messages. Each schema describes every member whose shape can be wrong, so that one
# problem lists every failure: a check left to the route or service after the schema would
# only be reported once the schema's failures are fixed. What needs the database or the
# child's facts (an unknown agency, a date heard in the future) stays with the services.
API = "https://schemas.puente.mx/api/"
COMMON = "https://schemas.puente.mx/common/1#/$defs/"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

_REASON = {
    # The English title differs from the JSON name on purpose: a title that is the very word
    # is not repeated (schemas.wording.field_name), and "required field 'reason' is missing"
    # would name no field, where the Spanish says «motivo» (reason).
    "x-title": {"es": "Motivo", "en": "Written reason"},
    "type": "string",
    "minLength": 1,
    # Refused beyond, never cut: a reason that lost its end may say something else.
    "maxLength": 2000,
    "pattern": r"\S",
}

JSON_OBJECT: dict[str, Any] = {"$schema": DIALECT, "$id": API + "json-object/1", "type": "object"}
# Every request body refuses a member it does not take (400, the message naming it and the
# member it may have meant: "untill" → "until"), as the registered documents do: ignored, a
# misspelt "until" would grant the whole period asked for, a misspelt "upheld" would set aside
# the objection the reviewer meant to uphold.
REVOKE_SCHEMA: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": API + "consent-revocation/1",
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {"reason": _REASON},
}
REVIEW_SCHEMA: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": API + "procuraduria-review/1",
    "type": "object",
    "additionalProperties": False,
    "required": ["upheld", "reason"],
    "properties": {
        "upheld": {"x-title": {"es": "Se confirma", "en": "Upheld"}, "type": "boolean"},
        "reason": _REASON,
    },
}
ACCESS_DECISION_SCHEMA: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": API + "access-request-decision/1",
    "type": "object",
    "additionalProperties": False,
    "required": ["approve", "reason"],
    "properties": {
        "approve": {"x-title": {"es": "Aprobar", "en": "Approve"}, "type": "boolean"},
        "reason": _REASON,
        "until": {
            "$ref": COMMON + "date_time",
            "x-title": {"es": "Vigente hasta", "en": "Valid until"},
        },
    },
}
DRY_RUN_SCHEMA: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": API + "decision-dry-run/1",
    "type": "object",
    # A misspelt member ("record_id" as "record_ids") would otherwise be ignored, and the
    # answer be about another question than the one asked.
    "additionalProperties": False,
    "required": ["child_id", "purpose"],
    "properties": {
        "child_id": {
            "x-title": {"es": "Niña, niño o adolescente", "en": "Child"},
            "type": "string",
            "minLength": 1,
        },
        # Whom the question is about; which agency, person or engine actor is worked out by
        # the route (an unknown one is a 404, not a validation failure).
        "actor": {
            "x-title": {"es": "Actor", "en": "Actor"},
            "type": "object",
            # The members an engine actor has (consent.Actor): a misspelt "person_id" beside
            # an "agency_id" would ask about the agency instead, unsaid.
            "additionalProperties": False,
            "properties": {
                "kind": {"x-title": {"es": "Tipo de actor", "en": "Actor kind"}},
                "agency_id": {"x-title": {"es": "Agencia", "en": "Agency"}},
                "person_id": {"x-title": {"es": "Persona", "en": "Person"}},
                "roles": {"x-title": {"es": "Roles", "en": "Roles"}},
                "jurisdiction": {"x-title": {"es": "Jurisdicción", "en": "Jurisdiction"}},
                "country": {"x-title": {"es": "País", "en": "Country"}},
            },
            "anyOf": [
                {"required": ["agency_id"]},
                {"required": ["person_id"]},
                {"required": ["kind"]},
            ],
        },
        "action": {"$ref": COMMON + "action", "x-title": {"es": "Acción", "en": "Action"}},
        "purpose": {"$ref": COMMON + "purpose", "x-title": {"es": "Finalidad", "en": "Purpose"}},
        "categories": {
            "x-title": {"es": "Categorías", "en": "Categories"},
            "type": "array",
            "items": {"$ref": COMMON + "data_category"},
        },
        "record_id": {"x-title": {"es": "Expediente", "en": "Record"}, "type": "string"},
    },
}
#: ``POST /v1/children/{id}/views``: the views are "always recorded with the date heard" and
#: who heard them (DESIGN.md); the rest (a date not in the future, why a child was not heard)
#: is ``check_view``'s, with its codes.
VIEWS_SCHEMA: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": API + "child-views/1",
    "type": "object",
    "additionalProperties": False,
    "required": ["heard_on", "heard_by", "position"],
    "properties": {
        "heard_on": {
            "$ref": COMMON + "date",
            "x-title": {"es": "Escuchada/o el", "en": "Heard on"},
        },
        "heard_by": {
            "$ref": COMMON + "actor",
            "x-title": {"es": "Escuchada/o por", "en": "Heard by"},
        },
        "position": {
            "x-title": {"es": "Opinión", "en": "Position"},
            "type": "string",
            "enum": ["assent", "objection", "no_view_expressed", "not_heard"],
            "x-labels": {
                "assent": {"es": "Está de acuerdo", "en": "Assents"},
                "objection": {"es": "Se opone", "en": "Objects"},
                "no_view_expressed": {"es": "No expresó opinión", "en": "No view expressed"},
                "not_heard": {
                    "es": "No fue escuchada/o (indicar motivo)",
                    "en": "Not heard (state why)",
                },
            },
        },
        "not_heard_reason": {
            "x-title": {"es": "Motivo por el que no fue escuchada/o", "en": "Why not heard"},
            "type": "string",
            "minLength": 1,
            "maxLength": 500,
        },
        "summary": {
            "x-title": {"es": "Resumen de la opinión", "en": "Summary of views"},
            "type": "string",
            "minLength": 1,
            "maxLength": 2000,
        },
        "categories": {
            "x-title": {"es": "Categorías", "en": "Categories"},
            "type": "array",
            "items": {"$ref": COMMON + "data_category"},
        },
        "about": {
            "x-title": {"es": "Respecto de", "en": "About"},
            "type": "array",
            "items": {"$ref": COMMON + "actor"},
        },
    },
}
#: ``POST /v1/children/{id}/withholds``: whom (``target`` and/or ``actor_kind``: an entry naming
#: nobody is refused), what (``categories``, all when none), when, and why. Whether the agency
#: or person named is registered here, and the period, are ``record_withhold``'s.
WITHHOLD_SCHEMA: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": API + "withhold-entry/1",
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "anyOf": [{"required": ["target"]}, {"required": ["actor_kind"]}],
    "properties": {
        "target": {
            "$ref": COMMON + "actor",
            "x-title": {"es": "No divulgar a", "en": "Withhold from"},
        },
        # The pinned peer hub whose agency ``target.agency_id`` is (docs/federation.md).
        "target_hub": {
            "x-title": {"es": "Nodo de la agencia", "en": "Agency's hub"},
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9._-]{0,99}$",
        },
        "actor_kind": {
            "x-title": {"es": "Tipo de actor", "en": "Actor kind"},
            "type": "string",
            "enum": list(consent.ACTOR_KINDS),
            "x-labels": {
                code: {"es": es, "en": en} for code, (es, en) in consent.ACTOR_KINDS.items()
            },
        },
        "categories": {
            "x-title": {"es": "Categorías", "en": "Categories"},
            "type": "array",
            "uniqueItems": True,
            "items": {"$ref": COMMON + "data_category"},
        },
        "starts": {"$ref": COMMON + "date_time", "x-title": {"es": "Desde", "en": "Starts"}},
        "ends": {"$ref": COMMON + "date_time", "x-title": {"es": "Hasta", "en": "Ends"}},
        "reason": _REASON,
    },
}
QUEUE_QUERY_SCHEMA: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": API + "access-request-queue-query/1",
    "type": "object",
    # ``limit`` is read by int_query (a number, within its range); ``after`` by the service
    # (one of the requests listed, else a 400 naming it).
    "properties": {
        "status": {
            "x-title": {"es": "Estado", "en": "Status"},
            "enum": ["pending", "granted", "denied"],
        },
        "child_id": {"$ref": COMMON + "child_id"},
        "purpose": {"$ref": COMMON + "purpose"},
        "requester": {
            "x-title": {"es": "Solicitante", "en": "Requester"},
            "type": "string",
            # An agency id or a person id (common/1 agency_id, person_id).
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,119}$",
        },
    },
}


def _check_query(schema: dict[str, Any]) -> None:
    """:func:`check_query`, each failure pointing at its parameter (``/query/status``, which
    ``parameter`` names too), where every other query error of these lists points — ``limit``
    (int_query), ``after`` (the services), a repeated parameter — rather than at ``""``, the
    pointer of the body these routes do not take."""
    try:
        check_query(schema)
    except Problem as problem:
        for error in problem.extra.get("errors", ()):
            if error.get("parameter"):
                error["pointer"] = f"/query/{error['parameter']}"
        raise


def _body(
    schema: tuple[str, int] | dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object sent, with ``defaults`` for members it left out, checked against
    ``schema`` (a registered document, or a request schema above) when one is named — and
    every instant it holds (a ``date-time`` member of the schema, however deep) checked to be
    one the hub can store (:func:`not_an_instant`). One problem lists every failure found,
    never only the first."""
    body = require_json()
    check_against(JSON_OBJECT, body, ("Se esperaba un objeto JSON.", "Expected a JSON object."))
    body = {**(defaults or {}), **body}
    detail = REQUEST_NOT_VALID
    lang = negotiated_language()
    errors: list[dict[str, str]] = []
    if schema is not None:
        if isinstance(schema, tuple):
            detail = ("El documento no es válido.", "The document is not valid.")
        errors = [
            {"pointer": failure.pointer, "message": failure.message(lang)}
            for failure in schema_validator(schema).validate(body)
        ]
        failed = {error["pointer"] for error in errors}
        for pointer, value in _instants_in(body, _fields_of(schema)):
            message = not_an_instant(value, pointer.rsplit("/", 1)[-1])
            if message is not None and pointer not in failed:
                errors.append({"pointer": pointer, "message": message[0 if lang == "es" else 1]})
    if errors:
        raise Problem("validation", detail, errors=errors)
    return body


#: The field maps of the request schemas above, by ``$id`` (registered documents keep theirs).
_REQUEST_FIELDS: dict[str, Mapping[str, FieldInfo]] = {}


def _fields_of(schema: tuple[str, int] | dict[str, Any]) -> Mapping[str, FieldInfo]:
    from schemas.registry import default_registry

    registry = default_registry()
    if isinstance(schema, tuple):
        return registry.fields(*schema)
    key = str(schema["$id"])
    if key not in _REQUEST_FIELDS:
        _REQUEST_FIELDS[key] = collect_fields(schema, registry.by_id)
    return _REQUEST_FIELDS[key]


def _instants_in(body: Any, fields: Mapping[str, FieldInfo]) -> Iterator[tuple[str, str]]:
    """(pointer, text) of every text in ``body`` that the schema's field map says is an
    instant (format ``date-time``), at any depth: a consent's nested provisions' periods as
    much as a request's ``until``."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), body)]
    while stack:
        tokens, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*tokens, str(key)), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*tokens, index), item) for index, item in enumerate(value))
        elif isinstance(value, str) and tokens:
            info = find_field(fields, tokens)
            if info is not None and info.type.endswith("(date-time)"):
                yield pointer_from_tokens(tokens), value


def _text(body: dict[str, Any], key: str) -> str:
    """A text member the request schema already requires (and bounds)."""
    return str(body[key]).strip()


def not_an_instant(value: Any, key: str) -> tuple[str, str] | None:
    """Why a text member is not an instant the hub takes — RFC 3339 with an offset (a time
    without one is refused, never read as UTC), a real moment, within years 1 to 9999 once in
    UTC — in Spanish and English; ``None`` when it is one, or is no text (the schema says so).
    The one check every instant of a request goes through (``_body`` applies it to each
    ``date-time`` member; the portal's forms call it too)."""
    return instant_problem(value, key)


def body_instant(body: dict[str, Any], key: str) -> datetime | None:
    """An instant member already checked (``_body``, or :func:`not_an_instant`), in UTC;
    ``ValueError`` for one that is not an instant the hub takes."""
    value = body.get(key)
    if value is None:
        return None
    try:
        return read_instant(str(value), f"/{key}")
    except ConsentProblem as problem:
        raise ValueError(problem.errors[0]["message_en"]) from problem


def _child(session: Session, child_id: str) -> ChildContext:
    try:
        return load_child(session, child_id)
    except LookupError:
        raise _not_found() from None


def _created(answer: dict[str, Any], entry: str, status: int = 201) -> Any:
    response = jsonify({**answer, "audit_entry": entry})
    response.status_code = status
    return response


def _in(session: Session, run: Callable[[], tuple[dict[str, Any], str]], status: int = 201) -> Any:
    with _answering(session):
        answer, entry = run()
    session.commit()
    return _created(answer, entry, status)


# -- consents and views ------------------------------------------------------------------------


@bp.post("/v1/children/<child_id>/consents")
@require_scope("consent:write")
def create_consent(child_id: str) -> Any:
    session, actor = db.session(), current_actor()
    body = _body(("consent", 1), defaults={"child_id": child_id})
    child = _child(session, child_id)

    def run() -> tuple[dict[str, Any], str]:
        stored = record_consent(session, actor, child, body)
        answer: dict[str, Any] = {"id": stored.id, "consent": stored.document}
        if stored.warnings:  # recorded as written, but it may not say what was meant
            answer["warnings"] = list(stored.warnings)
        return answer, stored.audit_entry

    return _in(session, run)


@bp.get("/v1/children/<child_id>/consents")
@require_scope("consent:read")
def child_consents(child_id: str) -> Any:
    session, actor = db.session(), current_actor()
    child = _child(session, child_id)
    with _answering(session):
        found = list_consents(session, actor, child)
    # Consents hold the grantor and the child's own words: oversight sees who read them.
    audit_consent_read(session, actor, child.child_id)
    session.commit()
    return jsonify({"child_id": child.child_id, "consents": found})


def audit_consent_read(
    session: Session,
    actor: Actor,
    child_id: str,
    object_id: str | None = None,
    object_type: str = "consent",
) -> str:
    return record_event(
        session,
        action="consents_read",
        outcome="success",
        actor_agency=actor.agency_id,
        actor_person=actor.person_id,
        actor_role=actor.audit_role,
        child_id=child_id,
        object_type=object_type if object_id else None,
        object_id=object_id,
    )


@bp.get("/v1/consents/<consent_id>")
@require_scope("consent:read")
def get_consent(consent_id: str) -> Any:
    """One consent; ``?format=fhir`` (or ``Accept: application/fhir+json``) answers it as a
    FHIR R5 Consent resource."""
    session, actor = db.session(), current_actor()
    with _answering(session):
        row, child = find_consent(session, consent_id)
        require_acts_for(session, actor, child)
        document = row.open(data_keyring())
    audit_consent_read(session, actor, child.child_id, row.id)
    session.commit()
    if wants_fhir():
        from exchange.fhir_export import consent_to_fhir

        resource = consent_to_fhir(consent.Consent.from_json(document))
        response = jsonify(resource)
        response.mimetype = FHIR_JSON
        return response
    return jsonify({"id": row.id, "consent": document})


@bp.post("/v1/consents/<consent_id>/revoke")
@require_scope("consent:write")
def revoke(consent_id: str) -> Any:
    session, actor = db.session(), current_actor()
    reason = _text(_body(REVOKE_SCHEMA), "reason")

    def run() -> tuple[dict[str, Any], str]:
        document, notified, entry = revoke_consent(session, actor, consent_id, reason)
        return {"id": consent_id, "consent": document, "notified": notified}, entry

    return _in(session, run, 200)


@bp.post("/v1/children/<child_id>/views")
@require_scope("consent:write")
def create_views(child_id: str) -> Any:
    session, actor = db.session(), current_actor()
    body = _body(VIEWS_SCHEMA)
    child = _child(session, child_id)

    def run() -> tuple[dict[str, Any], str]:
        view, entry = record_views(session, actor, child, body)
        return {"id": view.id, "views": view.to_json()}, entry

    return _in(session, run)


def _reviewed(service: Callable[..., tuple[dict[str, Any], str]], row_id: str, key: str) -> Any:
    """A Procuraduría review (``{upheld, reason}``) of a views record or an override."""
    session, actor = db.session(), current_actor()
    body = _body(REVIEW_SCHEMA)
    upheld, reason = body["upheld"], _text(body, "reason")

    def run() -> tuple[dict[str, Any], str]:
        document, entry = service(session, actor, row_id, upheld, reason)
        return {"id": row_id, key: document}, entry

    return _in(session, run, 200)


#: Who reads a child's views: callers with a consent scope who act for the child (those who
#: record and review them) and oversight, whatever its jurisdiction.
VIEWS_READERS = ("consent:read", "consent:write", OVERSIGHT_SCOPE)


@bp.get("/v1/children/<child_id>/views")
@require_scope()
def child_views(child_id: str) -> Any:
    """The child's views, newest first, with their review state; each reading is audited."""
    session, actor = db.session(), current_actor()
    _require_one_of(actor, VIEWS_READERS)
    child = _child(session, child_id)
    with _answering(session):
        found, entry = list_views(session, actor, child)
    session.commit()
    return jsonify({"child_id": child.child_id, "views": found, "audit_entry": entry})


@bp.post("/v1/views/<view_id>/review")
@require_scope("consent:write")
def review_child_views(view_id: str) -> Any:
    return _reviewed(review_views, view_id, "views")


# -- "withhold from" entries -------------------------------------------------------------------


@bp.post("/v1/children/<child_id>/withholds")
@require_scope("consent:write")
def create_withhold(child_id: str) -> Any:
    session, actor = db.session(), current_actor()
    body = _body(WITHHOLD_SCHEMA)
    body["reason"] = _text(body, "reason")
    child = _child(session, child_id)

    def run() -> tuple[dict[str, Any], str]:
        stored, entry = record_withhold(session, actor, child, body)
        return {"id": stored["id"], "withhold": stored}, entry

    return _in(session, run)


@bp.get("/v1/children/<child_id>/withholds")
@require_scope("consent:read")
def child_withholds(child_id: str) -> Any:
    """The child's withhold entries, newest first, active and past; each reading is audited."""
    session, actor = db.session(), current_actor()
    child = _child(session, child_id)
    with _answering(session):
        found, entry = list_withholds(session, actor, child)
    session.commit()
    return jsonify({"child_id": child.child_id, "withholds": found, "audit_entry": entry})


@bp.post("/v1/withholds/<withhold_id>/revoke")
@require_scope("consent:write")
def revoke_withhold_entry(withhold_id: str) -> Any:
    session, actor = db.session(), current_actor()
    reason = _text(_body(REVOKE_SCHEMA), "reason")

    def run() -> tuple[dict[str, Any], str]:
        stored, entry = revoke_withhold(session, actor, withhold_id, reason)
        return {"id": withhold_id, "withhold": stored}, entry

    return _in(session, run, 200)


# -- decisions (dry run) -----------------------------------------------------------------------


def _engine_actor_for(session: Session, caller: Actor, doc: Any) -> consent.Actor:
    """The actor a dry run is about: the caller, or an agency or person registered here."""
    if doc is None:
        return caller.for_consent()
    if not isinstance(doc, dict):
        raise ConsentError("Se esperaba un objeto.", "Expected an object.", pointer="/actor")
    if "kind" in doc:
        return consent.Actor.from_json(doc)
    from exchange.disclosure import person_actor, recipient_actor

    for field, noun_es, noun_en, lookup in (
        ("person_id", "ninguna persona activa", "no active person", person_actor),
        ("agency_id", "ninguna agencia", "no agency", recipient_actor),
    ):
        if doc.get(field):
            try:
                return lookup(session, str(doc[field]))
            except LookupError:
                # The caller acts for the child already: saying the actor is the mistake
                # hides nothing, and a 404 would read as "no such child".
                raise ConsentError(
                    f"En este nodo no hay {noun_es} con el identificador {doc[field]!r}.",
                    f"This hub has {noun_en} with the id {doc[field]!r}.",
                    pointer=f"/actor/{field}",
                ) from None
    raise ConsentError(
        "Indique agency_id, person_id o kind.",
        "Give agency_id, person_id or kind.",
        pointer="/actor",
    )


def _decision_answer(decision: Decision, decision_id: str) -> dict[str, Any]:
    return {"id": decision_id, **decision.to_json()}


@bp.post("/v1/decisions")
@require_scope("consent:read")
def dry_run() -> Any:
    session, caller = db.session(), current_actor()
    body = _body(DRY_RUN_SCHEMA)
    child = _child(session, body["child_id"])
    with _answering(session):
        require_acts_for(session, caller, child)
        engine_for = _engine_actor_for(session, caller, body.get("actor"))
        categories = body.get("categories")
        record_id = body.get("record_id")
        owner = None
        if isinstance(record_id, str):
            owner = next((r.owner_agency for r in child.records if r.id == record_id), None)
        action = str(body.get("action", "read"))
        record = next((r for r in child.records if r.id == record_id), None)
        if action == "read" and record is not None:
            # As the read itself is decided: with what live referrals gave the agency.
            decision = evaluate_read(
                child,
                engine_for,
                body["purpose"],
                categories or consent.ALL_CATEGORIES,
                referred=referred_to(session, engine_for.agency_id, record, body["purpose"]),
                owner_agency_id=owner,
                record_id=record.id,
            )
        else:
            decision = evaluate(
                child,
                engine_for,
                action,
                body["purpose"],
                categories or consent.ALL_CATEGORIES,
                owner_agency_id=owner,
                record_id=record_id if isinstance(record_id, str) else None,
            )
        # Whom the officer asked about, so oversight sees what was asked (ids only).
        asked_about = (
            {"object_type": "person", "object_id": engine_for.person_id}
            if engine_for.person_id
            else {"object_type": "agency", "object_id": engine_for.agency_id}
            if engine_for.agency_id
            else {}
        )
        entry = audit_decision(
            session,
            caller,
            decision,
            audit_action="decision_evaluated",
            purpose=decision_purpose(body),
            child_id=child.child_id,
            detail="dry_run",
            **asked_about,
        )
        # The whole decision, but for the entries naming the caller's own agency.
        told = as_told_to(session, caller, _decision_answer(decision, entry), body["purpose"])
    session.commit()
    response = jsonify({"request": {"actor": engine_for.to_json()}, **told})
    response.headers[DECISION_HEADER] = entry
    return response


def decision_purpose(body: dict[str, Any]) -> str | None:
    purpose = body.get("purpose")
    return purpose if purpose in consent.PURPOSES else None


# -- access requests and grants ----------------------------------------------------------------


#: What a requester reads about its own request, by status: never the decision's reasons,
#: which could tell facts about the child (asylum, an objection, a withhold entry).
_STATUS_TEXT = {
    # Requests granted before their basis was kept: no end date to state.
    "granted": (
        "Acceso concedido para esta finalidad.",
        "Access granted for this purpose.",
    ),
    # The same words for every pending request, as the portal's: one about a child id the hub
    # never issued reaches no officer's queue and stays pending (docs/consent.md §8.5, so that
    # asking tells nobody whether a child exists), so no decision is promised, and what to do
    # when none comes is said to everyone alike.
    "pending": (
        "La solicitud espera la decisión de un oficial de consentimiento. Si se decide, la "
        "decisión aparecerá al consultar de nuevo la solicitud; el nodo no puede decir cuándo. "
        "Si tras varios días no hay decisión, confirme el id de la niña, niño o adolescente con "
        "la institución o la Procuraduría que se lo dio: una solicitud sobre un id que el nodo "
        "no conoce no llega a ningún oficial.",
        "The request awaits a consent officer's decision. If one is made, it will show when the "
        "request is read again; the hub cannot say when. If none has come after several days, "
        "check the child's id with the agency or the Procuraduría that gave it to you: a "
        "request about an id the hub does not know reaches no officer.",
    ),
    "denied": ("La solicitud fue denegada.", "The request was denied."),
}


#: How each basis of a granted request is named to its requester (one, several).
_BASIS_NAMES = {
    "consent_ids": (("el consentimiento", "los consentimientos"), ("consent", "consents")),
    "grant_ids": (("la autorización", "las autorizaciones"), ("grant", "grants")),
    "override_ids": (
        ("el acceso de emergencia", "los accesos de emergencia"),
        ("emergency override", "emergency overrides"),
    ),
}


def _granted_text(access: dict[str, Any], row: AccessRequestRow) -> tuple[str, str]:
    """What a granted request truly rests on and when that ends, never "the date given":
    the end is the earliest end of its basis, which may come before the date asked for."""
    named: list[tuple[str, str]] = []
    for key, (es_names, en_names) in _BASIS_NAMES.items():
        ids = access.get(key) or []
        if ids:
            several = int(len(ids) > 1)
            named.append(
                (f"{es_names[several]} {', '.join(ids)}", f"{en_names[several]} {', '.join(ids)}")
            )
    named_es = " y ".join(es for es, _ in named)
    named_en = " and ".join(en for _, en in named)
    asked = as_utc(row.until)
    ends_at = as_utc(datetime.fromisoformat(access["until"])) if access.get("until") else asked
    ends = instant_text(ends_at)
    earlier = ends_at < asked
    cut_es = f" (antes de la fecha pedida, {instant_text(asked)})" if earlier else ""
    cut_en = f" (before the date asked for, {instant_text(asked)})" if earlier else ""
    if access.get("ends_at_majority_at_latest"):  # the exact birthday is not told (privacy)
        cut_es += " y, a más tardar, cuando la persona cumpla 18 años"
        cut_en += " and, at the latest, when the child turns 18"
    if row.grant_id is not None:
        return (
            f"Acceso concedido por la oficina de consentimiento: {named_es}, para esta "
            f"finalidad, hasta {ends}{cut_es}.",
            f"Access granted by the consent office: {named_en}, for this purpose, "
            f"until {ends}{cut_en}.",
        )
    if earlier:
        return (
            f"Acceso concedido de inmediato con base en {named_es}; no se creó una "
            f"autorización nueva. Vale hasta {ends}{cut_es}, cuando termina esa base, y "
            "termina antes si se revoca.",
            f"Access granted at once on the basis of {named_en}; no new grant was made. It "
            f"holds until {ends}{cut_en}, when that basis ends, and ends earlier if it is "
            "revoked.",
        )
    return (
        f"Acceso concedido de inmediato con base en {named_es}; no se creó una autorización "
        f"nueva. Vale hasta {ends}, la fecha pedida{cut_es}, y termina antes si esa base se "
        "revoca.",
        f"Access granted at once on the basis of {named_en}; no new grant was made. It holds "
        f"until {ends}, the date asked for{cut_en}, and ends earlier if that basis is revoked.",
    )


#: Why a granted access ended, as its requester reads it (``access.ended_because``).
#: (Spanish, English), then the same when several ids ended it.
_ENDED_TEXT = {
    "expired": (("llegó a su fin", "it ran out"),) * 2,
    "majority": (
        (
            "la niña, niño o adolescente alcanzó la mayoría de edad",
            "the child came of age",
        ),
    )
    * 2,
    "revoked": (
        ("se revocó {ids}", "{ids} was revoked"),
        ("se revocaron {ids}", "{ids} were revoked"),
    ),
    "not_upheld": (
        (
            "la revisión de la Procuraduría no confirmó {ids}",
            "the Procuraduría's review did not uphold {ids}",
        ),
    )
    * 2,
}


def _ended_text(access: dict[str, Any]) -> tuple[str, str]:
    """A granted request whose access has ended: when and why, and what to do now."""
    ended_by = set(access.get("ended_by") or ())
    named_es, named_en = [], []
    for key, ((es_one, es_many), (en_one, en_many)) in _BASIS_NAMES.items():
        ids = [found for found in access.get(key) or () if found in ended_by]
        if ids:
            several = len(ids) > 1
            named_es.append(f"{es_many if several else es_one} {', '.join(ids)}")
            named_en.append(f"{en_many if several else en_one} {', '.join(ids)}")
    why_es, why_en = _ENDED_TEXT[access["ended_because"]][int(len(ended_by) > 1)]
    why_es = why_es.format(ids=" y ".join(named_es))
    why_en = why_en.format(ids=" and ".join(named_en))
    # An end at the child's majority has no date: that instant is the date of birth.
    at_es = f" el {access['ended_at']}" if access["ended_at"] else ""
    at_en = f" at {access['ended_at']}" if access["ended_at"] else ""
    return (
        f"El acceso concedido terminó{at_es}: {why_es}. "
        "Ya no da acceso; si aún lo necesita, presente una nueva solicitud.",
        f"The access granted ended{at_en}: {why_en}. "
        "It no longer gives access; if you still need it, make a new request.",
    )


def _denied_at_once_text(row: AccessRequestRow, es: str, en: str) -> tuple[str, str]:
    """A request the engine denied at once, with the reasons anyone may hear: a hard rule on
    who asks and why (statistics never get identity, immigration enforcement no protection
    data) is something the requester can act on; a withhold entry or a rule about the child's
    facts is never told (exchange.api.record_reads.told_to)."""
    told = [
        reason
        for reason in map(Reason.from_json, (row.decision or {}).get("reasons", ()))
        # Only a hard rule: the rest is told as "nothing in force permits you" (record_reads.
        # told_decision), so that a refusal for a hidden reason reads like any other.
        if reason.result == "deny" and reason.code == "hard_rule" and told_to(reason, OUTSIDER)
    ]
    if not told:
        return es, en
    return (
        " ".join([es, *(reason.es for reason in told)]),
        " ".join([en, *(reason.en for reason in told)]),
    )


#: Bases of a refusal in the engine's order of precedence (consent/engine.py), for naming the
#: basis of what a requester is told.


def _decision_as_told(row: AccessRequestRow) -> dict[str, Any]:
    """The engine's decision on the request as its requester is told it — what a record read
    tells a reader who neither acts for the child nor holds the record
    (exchange.api.record_reads.decision_for_reader, standing ``OUTSIDER``): the result, the
    permitted and withheld categories and the decision id; the reasons the requester may hear
    (:func:`told_to`) and the ids they rest on. Categories refused for a reason not told (an
    objection, a withhold entry, a rule about asylum or the country of origin) are refused by
    the plain "nothing in force permits this", so what is hidden leaves no mark."""
    whole = {key: value for key, value in (row.decision or {}).items() if key != ACCESS_KEY}
    reasons = [Reason.from_json(reason) for reason in whole.get("reasons", ())]
    return told_decision(whole, reasons, OUTSIDER, row.purpose)


def access_request_answer(
    session: Session, row: AccessRequestRow, *, officer: bool, actor: Actor | None = None
) -> dict[str, Any]:
    """The request as its requester sees it (the decision as told to them), or with the whole
    decision and reasons for an officer who acts for the child — but for the withhold entries
    and objections naming the officer's own agency, which to them do not exist
    (:func:`~exchange.consents.hidden.as_told_to`). ``actor`` is that officer: the caller of
    the API route or the portal page when not given. A granted request's ``access`` says
    whether it still holds."""
    access = request_access_basis(row) if row.status == "granted" else None
    if access is not None:
        majority = load_child(session, row.child_id).facts.eighteenth_birthday
        access = access_as_of(session, access, utcnow(), majority)
        es, en = _granted_text(access, row) if access["active"] else _ended_text(access)
    else:
        es, en = _STATUS_TEXT.get(row.status, ("", ""))
        if row.status == "pending" and asked_end_passed(row, utcnow()):
            # Depends on what was asked alone, as the pending words do: it tells the requester
            # nothing of the child.
            end = instant_text(row.until)
            es = (
                f"El acceso pedido terminaba el {end}, que pasó sin que se decidiera la "
                "solicitud: ya no puede concederse. Si aún lo necesita, haga una solicitud nueva."
            )
            en = (
                f"The access asked for ended on {end}, which passed before the request was "
                "decided: it can no longer be granted. If you still need it, make a new request."
            )
        elif row.status == "denied" and row.decided_by is None:
            es, en = _denied_at_once_text(row, es, en)
    seen = {
        "id": row.id,
        # After a merge, the child the request is about now — to an officer who acts for it,
        # or a requester who was granted access (and reads it under that id); to anyone else
        # the id asked for, which tells nothing (as GET /v1/children/{id}/records does).
        "child_id": (
            resolve_child_id(session, row.child_id)
            if officer or row.status == "granted"
            else row.child_id
        ),
        "status": row.status,
        "purpose": row.purpose,
        "categories": list(row.categories),
        "until": instant_text(row.until),
        "requester": party(row.requester_agency, row.requester_person),
        "record_ids": list(row.record_ids or ()),
        "message": {"es": es, "en": en},
        "access": access,
        "grant_id": row.grant_id,
        # The requester's own words, to them and to the officers who decide: why, on whose
        # behalf, in which proceeding (request_written).
        **request_written(session, row.id),
        "created_at": instant_text(row.created_at),
        "decided_at": instant_text(row.decided_at) if row.decided_at else None,
    }
    if officer:
        whole = {k: v for k, v in row.decision.items() if k != ACCESS_KEY}
        seen["decision"] = as_told_to(session, actor or _caller(), whole, row.purpose)
        seen["decided_by"] = row.decided_by
        seen["decision_reason"] = row.decision_reason
    else:
        seen["decision"] = _decision_as_told(row)
    return seen


def _caller() -> Actor:
    """Who is asking: the person logged into the portal, or the API token's holder."""
    portal_actor = g.get("portal_actor")
    return portal_actor if isinstance(portal_actor, Actor) else current_actor()


def _officer_of(session: Session, actor: Actor, row: AccessRequestRow) -> bool:
    return (
        "access:decide" in actor.scopes
        and actor.person_id != row.requester_person
        and acts_for_child(session, actor, load_child(session, row.child_id))
    )


#: The instants of a grant's document, which the engine writes with ``Z``: answered as every
#: other instant is (:func:`~exchange.consents.common.instant_text`).
_GRANT_INSTANTS = ("starts", "until", "revoked_at")


def _grant_json(row: GrantRow) -> dict[str, Any]:
    answer = {"id": row.id, "request_id": row.request_id, **row.document}
    for key in _GRANT_INSTANTS:
        if isinstance(answer.get(key), str):
            answer[key] = instant_text(datetime.fromisoformat(answer[key]))
    answer["until"] = instant_text(row.until)
    if row.revoked_at is not None:
        answer["revoked_at"] = instant_text(row.revoked_at)
    return answer


@bp.post("/v1/access-requests")
@require_scope("access:request")
def create_access_request() -> Any:
    """No existence oracle (docs/consent.md §8.5): an id the hub never issued is asked about
    like a child the requester has no basis for (:func:`child_asked_about`) — the same status,
    answer and audit entry — and every answer takes at least ``READ_REFUSAL_FLOOR``, as a
    search does: deciding about a child with records costs time an unknown id does not."""
    after_this_request(answer_in_even_time)
    session, actor = db.session(), current_actor()
    body = _body(("access-request", 1))

    def run() -> tuple[dict[str, Any], str]:
        child = child_asked_about(session, body["child_id"])
        row, entry = request_access(session, actor, child, body)
        return access_request_answer(session, row, officer=False), entry

    return _in(session, run)


#: Who reads one access request: its requester (who asked with ``access:request``) and the
#: consent officers who decide it (``access:decide``); whom else it is shown to is then
#: decided by :func:`may_see_request` (404 to anyone else).
REQUEST_READERS = ("access:request", "access:decide")
#: Who lists their own grants: those who ask for access, those who decide it, and
#: consent-authority systems (``consent:read``) that may hold grants too.
GRANT_READERS = ("access:request", "access:decide", "consent:read")


@bp.get("/v1/access-requests/<request_id>")
@require_any_scope(*REQUEST_READERS)
def get_access_request(request_id: str) -> Any:
    session, actor = db.session(), current_actor()
    row = session.get(AccessRequestRow, request_id)
    if row is None or not may_see_request(session, actor, row):
        raise _not_found()
    officer = _officer_of(session, actor, row)
    seen = access_request_answer(session, row, officer=officer, actor=actor)
    if officer:
        # The child and the whole decision, as in the child's consents: oversight sees who
        # read them. A requester following its own request is not audited (it reads no more
        # than it was answered when it asked, which access_requested recorded).
        audit_consent_read(session, actor, seen["child_id"], row.id, "access_request")
        session.commit()
    return jsonify(seen)


@bp.get("/v1/access-requests")
@require_any_scope(*REQUEST_READERS)
@query_parameters("status", "limit", "after", "child_id", "purpose", "requester")
def access_request_queue() -> Any:
    """A page of the queue (:func:`request_queue`): ``limit`` requests (1 to 500, 100 unless
    said) after ``after``, the last id of the page before; ``next_after`` is that id for the
    next page (null on the last), ``total`` how many the whole list holds. To a caller who asks
    for access and does not decide (``access:request`` without ``access:decide``), the requests
    they made instead (:func:`own_requests`), as the portal lists them."""
    session, actor = db.session(), current_actor()
    _check_query(QUEUE_QUERY_SCHEMA)
    limit = int_query("limit", minimum=1, maximum=QUEUE_LIMIT, default=QUEUE_PAGE)
    only = QueueFilter(
        child_id=request.args.get("child_id"),
        purpose=request.args.get("purpose"),
        requester=request.args.get("requester"),
    )
    if "access:decide" not in actor.scopes:
        return _own_requests(session, actor, limit, only)
    status = request.args.get("status", "pending")
    with _answering(session):
        page = request_queue(
            session, actor, status, limit=limit, after=request.args.get("after"), only=only
        )
    listed = [access_request_answer(session, row, officer=True, actor=actor) for row in page.rows]
    # One entry per request listed, the same as reading it alone writes; none for the count.
    for row, seen in zip(page.rows, listed, strict=True):
        audit_consent_read(session, actor, seen["child_id"], row.id, "access_request")
    session.commit()
    return jsonify(
        {
            "status": status,
            "access_requests": listed,
            "total": page.total,
            "next_after": page.next_after,
        }
    )


def _own_requests(session: Session, actor: Actor, limit: int, only: QueueFilter) -> Any:
    """The requests ``actor`` made, newest first, each as ``GET /v1/access-requests/{id}``
    tells them to its requester; every status unless ``status`` names one (``status`` is then
    null in the answer). Paged and filtered as the queue is. Not audited, as a requester
    following their own request is not: it reads no more than it was answered when it asked."""
    status = request.args.get("status")
    with _answering(session):
        page = own_requests(
            session, actor, limit=limit, after=request.args.get("after"), status=status, only=only
        )
    return jsonify(
        {
            "status": status,
            "access_requests": [
                access_request_answer(session, row, officer=False) for row in page.rows
            ],
            "total": page.total,
            "next_after": page.next_after,
        }
    )


@bp.post("/v1/access-requests/<request_id>/decision")
@require_scope("access:decide")
def decide_access_request(request_id: str) -> Any:
    session, actor = db.session(), current_actor()
    body = _body(ACCESS_DECISION_SCHEMA)
    approve, reason = body["approve"], _text(body, "reason")
    until = body_instant(body, "until")

    def run() -> tuple[dict[str, Any], str]:
        row, grant, entry = decide_request(session, actor, request_id, approve, reason, until)
        answer = access_request_answer(session, row, officer=True, actor=actor)
        # What the request asked was decided when it was made; what the officer's decision
        # leaves the requester is the decision now (with the grant, when one was made).
        answer["decision_when_asked"] = answer["decision"]
        now = decision_now(session, row)
        if now is not None:
            answer["decision"] = as_told_to(
                session, actor, {"id": entry, **now.to_json()}, row.purpose
            )
        if grant is not None:
            answer["grant"] = _grant_json(grant)
            # To the officer alone: what was granted stays as asked.
            if warnings := stray_record_warnings(session, row):
                answer["warnings"] = warnings
        return answer, entry

    return _in(session, run, 200)


@bp.post("/v1/grants/<grant_id>/revoke")
@require_scope("access:decide")
def revoke_access_grant(grant_id: str) -> Any:
    session, actor = db.session(), current_actor()
    reason = _text(_body(REVOKE_SCHEMA), "reason")

    def run() -> tuple[dict[str, Any], str]:
        row, entry = revoke_grant(session, actor, grant_id, reason)
        return {
            "grant": {**_grant_json(row), "revoked_by": row.revoked_by, "reason": reason}
        }, entry

    return _in(session, run, 200)


@bp.get("/v1/grants")
@require_any_scope(*GRANT_READERS)
def my_grants() -> Any:
    session, actor = db.session(), current_actor()
    return jsonify(
        {
            "grants": [
                {**_grant_json(row), **grant_end_as_told(session, row)}
                for row in active_grants(session, actor)
            ]
        }
    )


# -- emergency overrides -----------------------------------------------------------------------


@bp.post("/v1/overrides")
@require_scope("override")
def create_override() -> Any:
    session, actor = db.session(), current_actor()
    body = _body(("override", 1))
    if actor.person_id is None or "override_officer" not in actor.roles:
        raise Problem(
            "forbidden",
            (
                "Solo una persona con el rol de oficial de acceso de emergencia puede abrirlo.",
                "Only a person with the override officer role can open an emergency override.",
            ),
        )
    child = _child(session, body["child_id"])

    def run() -> tuple[dict[str, Any], str]:
        document, entry = open_override(session, actor, child, body)
        return {"id": document["id"], "override": document}, entry

    return _in(session, run)


@bp.post("/v1/overrides/<override_id>/review")
@require_scope("consent:write")
def review(override_id: str) -> Any:
    return _reviewed(review_override, override_id, "override")


#: Who reads overrides: their reviewers (``consent:write``, as for the review) and oversight.
OVERRIDE_READERS = ("consent:write", OVERSIGHT_SCOPE)

OVERRIDE_QUEUE_QUERY_SCHEMA: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": API + "override-queue-query/1",
    "type": "object",
    # As the access-request queue's: ``limit`` is read by int_query, ``after`` by the service.
    "properties": {
        "status": {"x-title": {"es": "Estado", "en": "Status"}, "enum": list(OVERRIDE_STATES)}
    },
}


@bp.get("/v1/overrides")
@require_scope()
@query_parameters("status", "limit", "after")
def override_list() -> Any:
    """A page of the reviewers' queue (``status=open``, the default) or of the reviewed
    overrides (:func:`override_queue`), paged as the access-request queue is: ``limit``
    overrides (1 to 500, 100 unless said) after ``after``, the last id of the page before;
    ``next_after`` is that id for the next page (null on the last), ``total`` how many the
    whole list holds."""
    session, actor = db.session(), current_actor()
    _require_one_of(actor, OVERRIDE_READERS)
    _check_query(OVERRIDE_QUEUE_QUERY_SCHEMA)
    limit = int_query("limit", minimum=1, maximum=QUEUE_LIMIT, default=QUEUE_PAGE)
    status = request.args.get("status", "open")
    with _answering(session):
        page = override_queue(session, actor, status, limit=limit, after=request.args.get("after"))
    return jsonify(
        {
            "status": status,
            "overrides": page.rows,
            "total": page.total,
            "next_after": page.next_after,
        }
    )


@bp.get("/v1/overrides/<override_id>")
@require_scope()
def get_override(override_id: str) -> Any:
    """One override with its written justification; each reading is audited."""
    session, actor = db.session(), current_actor()
    _require_one_of(actor, OVERRIDE_READERS)
    with _answering(session):
        answer, entry = read_override(session, actor, override_id)
    session.commit()
    return jsonify({**answer, "audit_entry": entry})
