"""A ``case-record/1`` push → one Primero v2 case, the reverse of :mod:`adapters.primero_decode`.

Every field :mod:`~adapters.primero_decode` reads is written back, so decoding what this
writes gives the same shared data for what the mapping covers. What Primero has no field for
is not written; the main losses, stated so nobody is surprised:

- the second surname joins the first in ``name_last`` (Primero has one surname field, and
  its users see the whole surname there); ``name_last_second`` — not a stock Primero field,
  a deployment may add it — repeats the second surname so that reading the case back splits
  ``name_last`` again. A related person's names become one ``relation_name``, its surnames
  repeated in ``relation_name_last`` and ``relation_name_last_second`` (Puente's, likewise);
- of the identifiers only UNHCR, national id, the agency-local id and two more
  (``other_id_type``/``other_id_no`` and ``other_agency_name``/``other_agency_id``, the
  name holding the shared type) fit; issuing country, authority and validity do not;
- an address keeps only its INEGI state or municipality (``location_current``) and
  description; placements keep type, operator name, caregiver, start date and notes — Primero
  has no field for a placement's end date, facility, reason or end reason, so they are not
  written (and never made up when read back);
- referral statuses other than completed are written as not implemented;
- case identification, health, education, custody, legal representation, restitution plan,
  migration and asylum proceedings, the child's views are not written at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.primero_codes import RELATIONSHIP_BY_SEX
from adapters.primero_fields import CodeBook


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _compact(value: dict[str, Any]) -> dict[str, Any]:
    return {key: each for key, each in value.items() if each not in (None, "", [], {})}


def _joined(*parts: Any) -> str | None:
    text = " ".join(part for part in parts if isinstance(part, str) and part)
    return text or None


def encode_case(envelope: Mapping[str, Any], book: CodeBook) -> dict[str, Any]:
    """The Primero case of a push envelope (``{"schema", "local_id", "data"}``)."""
    data = envelope.get("data") or {}
    case = {"id": envelope.get("local_id")}
    case.update(_case_section(data, book))
    case.update(_child(_get(data, "child") or {}, book))
    case.update(_protection_concerns(_get(data, "protection_concerns") or {}, book))
    persons = _get(data, "related_persons") or []
    case["family_details_section"] = [_related_person(p, data, book) for p in persons]
    names = {p.get("person_ref"): _person_name(p) for p in persons}
    case["care_arrangements_section"] = [
        _placement(p, names, book) for p in _get(data, "placements") or []
    ]
    case["services_section"] = [_referral(r, book) for r in _get(data, "referrals") or []]
    case.update(_best_interest(_get(data, "best_interest", "assessments") or [], book))
    case.update(_closure(_get(data, "closure") or {}, book))
    return _compact(case)


def _case_section(data: Mapping[str, Any], book: CodeBook) -> dict[str, Any]:
    section = _get(data, "case") or {}
    status = section.get("status")
    transfer = None
    if status == "pending_transfer":
        status, transfer = "open", "in_progress"
    if status == "closed" and _get(data, "closure", "reason") == "duplicate":
        status = "duplicate"
    owner = section.get("owner") or {}
    agency = owner.get("agency_id")
    stage = section.get("workflow_stage")
    return {
        "status": book.primero_code("status", status) if status else None,
        "transfer_status": transfer,
        "case_id_display": section.get("case_number"),
        "registration_date": section.get("opened_on"),
        "workflow": book.primero_code("workflow", stage) if stage else None,
        "owned_by_agency_id": book.primero_code("owned_by_agency_id", agency) if agency else None,
        "owned_by": owner.get("caseworker_id"),
        "last_updated_at": section.get("last_updated_at"),
    }


def _codes(field: str, values: Any, book: CodeBook) -> list[str]:
    return [book.primero_code(field, v) for v in values or [] if isinstance(v, str)]


def _child(child: Mapping[str, Any], book: CodeBook) -> dict[str, Any]:
    names = child.get("names") or {}
    age = _get(child, "age_estimation", "estimated_age_years")
    status = child.get("unaccompanied_status")
    sex = child.get("sex")
    country = child.get("birth_country")
    written = {
        "name_first": names.get("given_names"),
        "name_last": _joined(names.get("first_surname"), names.get("second_surname")),
        "name_last_second": names.get("second_surname"),
        "name_nickname": child.get("alias"),
        "sex": book.primero_code("sex", sex) if sex else None,
        "date_of_birth": child.get("date_of_birth"),
        "age": age,
        "estimated": True if age is not None and not child.get("date_of_birth") else None,
        "nationality": _codes("nationality", child.get("nationality"), book),
        "country_of_birth": book.primero_code("country_of_birth", country) if country else None,
        "place_of_birth": child.get("birth_place"),
        "language": _codes("language", child.get("languages"), book),
        "ethnicity": [child["ethnic_group"]] if child.get("ethnic_group") else None,
        "telephone_current": _get(child, "current_location", "contact", "phone"),
        **_location(_get(child, "current_location", "address") or {}, "", book),
        **_identifiers(child.get("identifiers") or [], book),
    }
    if status in ("unaccompanied", "separated", "unknown"):
        written["protection_status"] = book.primero_code("protection_status", status)
    elif status == "accompanied":
        written["unaccompanied_separated_status"] = book.primero_code(
            "unaccompanied_separated_status", status
        )
    return written


def _location(address: Mapping[str, Any], prefix: str, book: CodeBook) -> dict[str, Any]:
    inegi = address.get("municipality") or address.get("state")
    field = prefix + "location_current"
    return {
        field: book.primero_code(field, inegi) if inegi else None,
        prefix + "address_current": address.get("description"),
    }


_IDENTIFIER_FIELD = {
    "unhcr_individual": "unhcr_individual_no",
    "unhcr_case": "unhcr_id_no",
    "national_id": "national_id_no",
    "agency_local": "cpims_id",
}


def _identifiers(identifiers: list[Any], book: CodeBook) -> dict[str, Any]:
    written: dict[str, Any] = {}
    for identifier in identifiers:
        kind, value = _get(identifier, "type"), _get(identifier, "value")
        field = _IDENTIFIER_FIELD.get(kind)
        if field is not None and field not in written:
            written[field] = value
        elif "other_id_no" not in written:
            written["other_id_type"] = kind
            written["other_id_no"] = value
        elif "other_agency_id" not in written:
            written["other_agency_name"] = kind
            written["other_agency_id"] = value
    return written


def _protection_concerns(section: Mapping[str, Any], book: CodeBook) -> dict[str, Any]:
    concerns = [c for c in section.get("concerns") or [] if isinstance(c, Mapping)]
    codes = _codes("protection_concerns", [c.get("code") for c in concerns], book)
    other = next((c.get("details") for c in concerns if c.get("code") == "other"), None)
    risk = section.get("risk_level")
    return {
        "risk_level": book.primero_code("risk_level", risk) if risk else None,
        "urgent_protection_concern": section.get("urgent"),
        "protection_concerns": list(dict.fromkeys(codes)),
        "protection_concerns_other": other,
    }


def _person_name(person: Mapping[str, Any]) -> str | None:
    names = person.get("names") or {}
    return _joined(
        names.get("given_names"), names.get("first_surname"), names.get("second_surname")
    )


def _relation_surnames(person: Mapping[str, Any]) -> dict[str, Any]:
    """The surnames ``relation_name`` ends with, each on its own (fields Puente adds to the
    subform), so that reading the row back splits the name again."""
    names = person.get("names") or {}
    if not names.get("given_names"):
        return {}
    return {
        "relation_name_last": names.get("first_surname"),
        "relation_name_last_second": names.get("second_surname"),
    }


def _relation(person: Mapping[str, Any], book: CodeBook) -> str | None:
    relationship = person.get("relationship")
    if not relationship:
        return None
    gendered = RELATIONSHIP_BY_SEX.get((str(relationship), str(person.get("sex"))))
    if gendered:
        return gendered
    code = book.primero_code("relation", relationship)
    if code != relationship and book.lookup("relation_sex", code):
        # The stock word is gendered ("aunt") but the person's sex is not known: the shared
        # code, which Primero's lookup reads back without a sex.
        return str(relationship)
    return code


def _related_person(
    person: Mapping[str, Any], data: Mapping[str, Any], book: CodeBook
) -> dict[str, Any]:
    alive = person.get("alive")
    row = {
        "unique_id": person.get("person_ref"),
        "relation": _relation(person, book),
        "relation_name": _person_name(person),
        **_relation_surnames(person),
        "relation_nickname": person.get("alias"),
        **_relation_birth(person.get("date_of_birth"), _get(data, "case", "opened_on")),
        "relation_nationality": _codes("relation_nationality", person.get("nationality"), book),
        "relation_language": _codes("relation_language", person.get("languages"), book),
        "relation_is_alive": book.primero_code("relation_is_alive", alive) if alive else None,
        "relation_telephone": _get(person, "contact", "phone"),
        "relation_is_caregiver": person.get("primary_caregiver"),
        "relation_death_details": person.get("notes"),
        **_location(person.get("address") or {}, "relation_", book),
    }
    return _compact(row)


def _relation_birth(born: Any, opened_on: Any) -> dict[str, Any]:
    """A full, known date of birth as such; an estimated or partial one as the age at
    registration (Primero's date fields take full dates only)."""
    if not isinstance(born, Mapping) or not isinstance(born.get("date"), str):
        return {}
    date = born["date"]
    if len(date) == 10 and not born.get("estimated"):
        return {"relation_date_of_birth": date}
    if isinstance(opened_on, str) and len(opened_on) >= 4:
        return {"relation_age": int(opened_on[:4]) - int(date[:4])}
    return {}


def _placement(
    placement: Mapping[str, Any], names: Mapping[Any, str | None], book: CodeBook
) -> dict[str, Any]:
    kind = placement.get("type")
    caregiver = placement.get("caregiver_person_ref")
    row = {
        "care_arrangements_type": book.primero_code("care_arrangements_type", kind)
        if kind
        else None,
        "care_agency_name": _get(placement, "operator", "name"),
        "name_caregiver": names.get(caregiver) if caregiver else None,
        "care_arrangement_started_date": placement.get("start_date"),
        "care_arrangements_type_notes": placement.get("reason_details"),
    }
    return _compact(row)


def _referral(referral: Mapping[str, Any], book: CodeBook) -> dict[str, Any]:
    kind = referral.get("service_type")
    urgency = referral.get("urgency")
    agency = _get(referral, "referred_to", "agency_id")
    completed = referral.get("status") == "completed"
    row = {
        "service_type": book.primero_code("service_type", kind) if kind else None,
        "service_implementing_agency": (
            book.primero_code("service_implementing_agency", agency) if agency else None
        ),
        "service_provider": _get(referral, "referred_to", "name"),
        "service_response_day_time": referral.get("referred_on"),
        "service_response_timeframe": (
            book.primero_code("service_response_timeframe", urgency) if urgency else None
        ),
        "service_implemented": "implemented" if completed else "not_implemented",
        "service_implemented_day_time": referral.get("completed_on"),
        "service_referral_notes": referral.get("notes"),
    }
    return _compact(row)


def _best_interest(assessments: list[Any], book: CodeBook) -> dict[str, Any]:
    chosen = next(
        (a for a in assessments if isinstance(a, Mapping) and a.get("recommendation")), None
    )
    if chosen is None:
        return {}
    return {
        "best_interest_recommendation": book.primero_code(
            "best_interest_recommendation", chosen["recommendation"]
        ),
        "best_interest_recommendation_date": chosen.get("assessed_on"),
        "best_interest_proposed_support": chosen.get("recommendation_details"),
    }


def _closure(closure: Mapping[str, Any], book: CodeBook) -> dict[str, Any]:
    reason = closure.get("reason")
    return {
        "closure_reason": (
            book.primero_code("closure_reason", reason)
            if reason and reason != "duplicate"
            else None
        ),
        "closure_reason_other": closure.get("reason_other"),
        "date_closure": closure.get("closed_on"),
    }
