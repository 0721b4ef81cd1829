"""``/v1/children``: finding a child's pseudonymous id (``POST /v1/children/search``).

The answer names candidate ``child_id``s with a score and what agreed — no names, no case
content; the caller then reads records under the normal rules.

A candidate is answered only to a caller that may know the child exists, and only by what a
record whose ``identity`` the caller may read states
(:func:`~exchange.child_search.readable_candidates`): otherwise it is left out, exactly as if
no such child existed, so the search is no existence oracle for immigration enforcement, a
consulate or anyone else holding ``records:read`` — nor a way to confirm what another
agency's record says of a child (its asylum case number, a nationality, an alias). Every
answer takes at least ``READ_REFUSAL_FLOOR`` seconds (:func:`answer_in_even_time`).
Every search is audited as ``child.searched`` without its search terms: one entry for the search,
and one per answered candidate naming its ``child_id``, so oversight sees who looked for whom.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, g, jsonify, request

from exchange import db
from exchange.api.record_reads import answer_in_even_time, read_purpose
from exchange.audit_log import record_event
from exchange.auth import current_actor, require_scope, utcnow
from exchange.child_matching import (
    SEARCH_MIN_SCORE,
    BirthWindow,
    IdentityProfile,
    name_tokens,
    nationality_set,
)
from exchange.child_search import (
    IDENTIFIER_SEARCH_KINDS,
    MAX_CANDIDATES,
    children_granted_or_referred,
    identifier_matches,
    identifier_shape_error,
    profile_matches,
    readable_candidates,
)
from exchange.disclosure import audit_decision, remember_disclosure
from exchange.httpbasics import require_json
from exchange.problems import Problem, localized, negotiated_language
from schemas.registry import default_registry

bp = Blueprint("children", __name__, url_prefix="/v1/children")

COMMON = "https://schemas.puente.mx/common/1#/$defs/"


def _text(es: str, en: str, max_length: int) -> dict[str, Any]:
    return {
        "x-title": {"es": es, "en": en},
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": r"\S",
    }


#: The request body (also in openapi/children.yaml); field titles name fields in messages.
SEARCH_REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.puente.mx/api/children-search/1",
    "x-title": {"es": "Búsqueda de niña, niño o adolescente", "en": "Child search"},
    "type": "object",
    "additionalProperties": False,
    "required": ["purpose"],
    "properties": {
        "purpose": {"$ref": COMMON + "purpose", "x-title": {"es": "Finalidad", "en": "Purpose"}},
        # Field names as in the case record (child.identifiers[], child.names); "kind",
        # "given" and "family" are the older names, still taken (see IDENTIFIER_TYPE_FIELDS,
        # NAME_FIELD_ALIASES).
        "identifier": {
            "x-title": {"es": "Identificador", "en": "Identifier"},
            "type": "object",
            "additionalProperties": False,
            "required": ["value"],
            "properties": {
                "type": {
                    "x-title": {"es": "Tipo de identificador", "en": "Identifier type"},
                    "type": "string",
                    "enum": list(IDENTIFIER_SEARCH_KINDS),
                },
                "kind": {
                    "x-title": {"es": "Tipo de identificador", "en": "Identifier kind"},
                    "type": "string",
                    "enum": list(IDENTIFIER_SEARCH_KINDS),
                },
                "value": _text("Número o clave", "Number or key", 200),
            },
        },
        "name": {
            "x-title": {"es": "Nombre", "en": "Name"},
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "given_names": _text("Nombre(s)", "Given names", 100),
                "first_surname": _text("Primer apellido", "First surname", 100),
                "second_surname": _text("Segundo apellido", "Second surname", 100),
                "given": _text("Nombre(s)", "Given names", 100),
                "family": _text("Apellidos", "Surnames", 200),
            },
        },
        "full_name": _text("Nombre completo", "Full name", 300),
        "date_of_birth": {
            "$ref": COMMON + "date",
            "x-title": {"es": "Fecha de nacimiento", "en": "Date of birth"},
        },
        "age_years": {
            "x-title": {"es": "Edad (años)", "en": "Age (years)"},
            "type": "integer",
            "minimum": 0,
            "maximum": 30,
        },
        "nationality": {
            "x-title": {"es": "Nacionalidad", "en": "Nationality"},
            "anyOf": [
                {"$ref": COMMON + "country_code"},
                {
                    "type": "array",
                    "items": {"$ref": COMMON + "country_code"},
                    "minItems": 1,
                    "maxItems": 5,
                },
            ],
        },
        "sex": {"$ref": COMMON + "sex", "x-title": {"es": "Sexo", "en": "Sex"}},
    },
}

#: Fields that only make sense with a name search.
ATTRIBUTE_FIELDS = ("date_of_birth", "age_years", "nationality", "sex")
#: The identifier's type: the record's field name first, then the older one.
IDENTIFIER_TYPE_FIELDS = ("type", "kind")
#: Older name fields -> the record's fields they stand for (one spelling per part).
NAME_FIELD_ALIASES = {"given": ("given_names",), "family": ("first_surname", "second_surname")}


def _error(pointer: str, es: str, en: str) -> dict[str, str]:
    return {"pointer": pointer, "message": localized(es, en)}


def _validated_body() -> dict[str, Any]:
    body = require_json()
    _take_query_purpose(body)
    failures = default_registry().compile(SEARCH_REQUEST_SCHEMA).validate(body)
    lang = negotiated_language()
    errors = [{"pointer": f.pointer, "message": f.message(lang)} for f in failures]
    if not errors:
        errors = _combination_errors(body)
    if errors:
        raise Problem(
            "validation",
            ("La búsqueda no es válida.", "The search is not valid."),
            errors=errors,
        )
    return body  # type: ignore[no-any-return]


def _take_query_purpose(body: Any) -> None:
    """Reads of case data take ``purpose`` as a query parameter (API.md); a search also takes it
    in its body. Given in both places, the two must agree."""
    repeated = request.args.getlist("purpose")
    if len(repeated) > 1:  # one search, one purpose: none of them is picked
        read_purpose()
    given = request.args.get("purpose")
    if given is None or not isinstance(body, dict):
        return
    if "purpose" not in body:
        body["purpose"] = given
    elif body["purpose"] != given:
        raise Problem(
            "validation",
            ("La búsqueda no es válida.", "The search is not valid."),
            errors=[
                _error(
                    "/purpose",
                    f"La finalidad del cuerpo ({body['purpose']!r}) no coincide con la de "
                    f"?purpose= ({given!r}).",
                    f"The body's purpose ({body['purpose']!r}) differs from ?purpose= ({given!r}).",
                )
            ],
        )


def _combination_errors(body: dict[str, Any]) -> list[dict[str, str]]:
    """Which fields go together: an identifier alone, or a name with optional attributes."""
    errors = _spelling_errors(body)
    by_name = [key for key in ("name", "full_name") if key in body]
    if "identifier" in body:
        for key in by_name + [k for k in ATTRIBUTE_FIELDS if k in body]:
            errors.append(
                _error(
                    f"/{key}",
                    f"«{key}» no se combina con «identifier»: "
                    "busque por identificador o por nombre.",
                    f"'{key}' cannot go with 'identifier': search by identifier or by name.",
                )
            )
    elif not by_name:
        errors.append(
            _error(
                "",
                "Indique «identifier», o «name» o «full_name».",
                "Give 'identifier', or 'name' or 'full_name'.",
            )
        )
    if len(by_name) == 2:
        errors.append(
            _error(
                "/full_name",
                "Indique «name» o «full_name», no ambos.",
                "Give 'name' or 'full_name', not both.",
            )
        )
    if "date_of_birth" in body and "age_years" in body:
        errors.append(
            _error(
                "/age_years",
                "Indique «date_of_birth» o «age_years», no ambos.",
                "Give 'date_of_birth' or 'age_years', not both.",
            )
        )
    today = utcnow().date()
    if "date_of_birth" in body and date.fromisoformat(body["date_of_birth"]) > today:
        errors.append(
            _error(
                "/date_of_birth",
                "La fecha de nacimiento está en el futuro.",
                "The date of birth is in the future.",
            )
        )
    return errors


def _spelling_errors(body: dict[str, Any]) -> list[dict[str, str]]:
    """A field named both ways (the record's name and the older one) is ambiguous."""
    errors = []
    named = [field for field in IDENTIFIER_TYPE_FIELDS if field in body.get("identifier", {})]
    if "identifier" in body and len(named) != 1:
        errors.append(
            _error(
                "/identifier/kind" if len(named) == 2 else "/identifier",
                "Indique el tipo del identificador en «type» (o «kind»), una sola vez.",
                "Give the identifier's type in 'type' (or 'kind'), once.",
            )
        )
    if len(named) == 1:
        shape = identifier_shape_error(
            identifier_type(body["identifier"]), body["identifier"]["value"]
        )
        if shape is not None:
            errors.append(_error("/identifier/value", *shape))
    name = body.get("name", {})
    for alias, fields in NAME_FIELD_ALIASES.items():
        record_spelling = [field for field in fields if field in name]
        if alias in name and record_spelling:
            errors.append(
                _error(
                    f"/name/{alias}",
                    f"«{alias}» no se combina con «{record_spelling[0]}»: "
                    "use un solo nombre de campo.",
                    f"'{alias}' cannot go with '{record_spelling[0]}': use one field name.",
                )
            )
    return errors


def identifier_type(identifier: dict[str, Any]) -> str:
    """The identifier's type, however the body named the field."""
    kind: str = next(identifier[f] for f in IDENTIFIER_TYPE_FIELDS if f in identifier)
    return kind


def query_profile(body: dict[str, Any], today: date) -> IdentityProfile:
    """The search body as a profile to score children's profiles against."""
    birth = None
    if "date_of_birth" in body:
        birth = BirthWindow.on(date.fromisoformat(body["date_of_birth"]))
    elif "age_years" in body:
        # A stated age is an estimate like any other: the same slack applies.
        birth = BirthWindow.from_age(int(body["age_years"]), today)  # 4.0 is an integer too
    nationality = body.get("nationality", [])
    nationalities = [nationality] if isinstance(nationality, str) else nationality
    name = body.get("name", {})
    # As exchange.child_matching.profile_from_child reads a record's names, so a search with
    # the record's fields compares like with like; "given"/"family" are the older spellings.
    surnames = name_tokens(name.get("first_surname")) + name_tokens(name.get("second_surname"))
    return IdentityProfile(
        given=name_tokens(name.get("given_names") or name.get("given"), given=True),
        surnames=surnames or name_tokens(name.get("family")),
        unplaced=name_tokens(body.get("full_name")),
        birth=birth,
        sex=body.get("sex") if body.get("sex") in ("female", "male") else None,
        nationalities=nationality_set(nationalities),
    )


bp.after_request(answer_in_even_time)


@bp.post("/search")
@require_scope("records:read")
def search() -> Any:
    body = _validated_body()
    actor = current_actor()
    session = db.session()
    identifier = body.get("identifier")
    if identifier is not None:
        kind = identifier_type(identifier)
        if kind == "agency_local" and actor.agency_id is None:
            field = next(f for f in IDENTIFIER_TYPE_FIELDS if f in identifier)
            raise Problem(
                "validation",
                (
                    "Solo un sistema de una agencia puede buscar por su identificador local.",
                    "Only an agency system can search by its local identifier.",
                ),
                errors=[
                    _error(
                        f"/identifier/{field}",
                        "«agency_local» requiere un token de agencia.",
                        "'agency_local' needs an agency token.",
                    )
                ],
            )
        matches = identifier_matches(session, kind, identifier["value"], agency_id=actor.agency_id)
        used = f"identifier.{kind}"
    else:
        # The caller's own profiles, and those of the children it was granted or referred,
        # have pools of their own, so other children of the same name cannot push them out.
        own = actor.agency_id if actor.person_id is None else None
        matches = profile_matches(
            session,
            query_profile(body, utcnow().date()),
            own_agency=own,
            children=children_granted_or_referred(session, actor),
        )
        used = ".".join(key for key in ("name", "full_name", *ATTRIBUTE_FIELDS) if key in body)
    purpose = body["purpose"]
    # Only children the caller may know of, and only by what records it may read state.
    answered = readable_candidates(session, actor, purpose, matches, limit=MAX_CANDIDATES)
    # Which fields were used and how many answered — never the values searched for, nor how
    # many children matched but were left out.
    record_event(
        session,
        action="child.searched",
        outcome="success",
        actor_agency=actor.agency_id,
        actor_person=actor.person_id,
        purpose=purpose,
        request_id=g.get("request_id"),
        detail=f"{used}.candidates_{len(answered)}",
    )
    # The audit-event schema has one child_id per entry: one entry per answered child, with
    # the decision that let the caller know of it.
    for candidate, known in answered:
        decision, holds = known.decision, known.holds
        audit_decision(
            session,
            actor,
            decision,
            audit_action="child.searched",
            purpose=purpose,
            child_id=candidate.child_id,
            request_id=g.get("request_id"),
            detail=f"{used}.{'record_held' if holds else 'identity_permitted'}",
        )
        if decision.consent_ids and actor.agency_id is not None:
            # So a revocation tells this agency too (as for a read under the consent).
            remember_disclosure(session, decision.consent_ids, actor.agency_id)
    session.commit()
    return jsonify(
        candidates=[candidate.to_json() for candidate, _ in answered],
        min_score=SEARCH_MIN_SCORE,
        max_candidates=MAX_CANDIDATES,
    )
