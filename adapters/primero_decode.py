"""One Primero v2 case → the data of a ``case-record/1`` push.

What goes where (Primero field → shared pointer):

- ``id`` (else ``case_id``, else ``unique_identifier``) → the envelope's ``local_id``;
  ``case_id_display`` → ``/case/case_number``; ``status`` (+ ``transfer_status`` in progress →
  ``pending_transfer``; ``duplicate`` → closed with closure reason ``duplicate``);
  ``registration_date`` → ``/case/opened_on``; ``workflow`` → ``/case/workflow_stage``;
  ``owned_by_agency_id`` / ``owned_by`` → ``/case/owner``; ``last_updated_at``.
- ``name_first`` + ``name_middle`` → ``/child/names/given_names``; ``name_last`` →
  ``first_surname`` (Primero has one surname field: both Mexican surnames stay in it), unless
  ``name_last_second`` — a field Puente writes, not a stock one — names its second surname:
  then ``name_last`` is split into ``first_surname`` and ``second_surname``;
  ``name_nickname`` → ``alias``; ``sex``; ``date_of_birth`` when not ``estimated``, else
  ``age`` → ``age_estimation``; ``nationality``, ``country_of_birth``, ``place_of_birth``,
  ``ethnicity``, ``language``; ``location_current`` (INEGI code, or the deployment's location
  code mapped to one), ``address_current``, ``telephone_current`` → ``current_location``;
  ``unhcr_individual_no``, ``unhcr_id_no``, ``national_id_no``, ``cpims_id``,
  ``other_id_type``/``other_id_no``, ``other_agency_id`` (its type in ``other_agency_name``
  when that is a shared identifier type, else ``other`` issued by that agency) →
  ``identifiers``; ``protection_status`` (else
  ``unaccompanied_separated_status``) → ``unaccompanied_status``.
- ``risk_level``, ``urgent_protection_concern``, ``protection_concerns`` (+ ``_other``) →
  ``/protection_concerns``.
- ``family_details_section`` → ``/related_persons`` (``unique_id`` → ``person_ref``; a gendered
  relation word also gives the person's sex; ``relation_name`` is the given names, less the
  surnames ``relation_name_last`` / ``relation_name_last_second`` name when Puente wrote
  them).
- ``care_arrangements_section`` → ``/placements``. Primero's care arrangements have no end
  date, so a placement never gets one here: the next arrangement's start is not the end of
  this one (a child can be out of care in between), and inventing it would change the record.
- ``services_section`` → ``/referrals``; ``closure_reason``, ``date_closure`` → ``/closure``;
  ``best_interest_recommendation`` (+ date, proposed support) → a best-interest assessment.

Problems (the case is rejected): a code no table knows (pointer ``field:<name>``), a date
that is not a date, and whatever the schema says of the result (pointers into the data).
Warnings (the case is still imported): unknown fields, left out. Actions (the case is still
imported, and the office must act in Puente): ``disclosure_other_orgs`` or
``consent_for_services`` refused — a refusal must be recorded as a consent with the decision
"deny" in Puente, which a tick box carried in the record is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Problem
from adapters.primero_fields import (
    CASE_FIELDS,
    KNOWN_NOT_CARRIED,
    SUBFORM_FIELDS,
    CodeBook,
)
from adapters.primero_reader import CaseReader, compact, joined, subform

_MUNICIPALITY = re.compile(r"^(?:MX)?((\d{2})(\d{3})?)$")
_IDENTIFIER_FIELDS = (
    ("unhcr_individual_no", "unhcr_individual"),
    ("unhcr_id_no", "unhcr_case"),
    ("national_id_no", "national_id"),
    ("cpims_id", "agency_local"),
)


@dataclass
class DecodedCase:
    """The shared data of one case, what stopped it, and what was left out of it."""

    local_id: str | None
    data: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    actions: list[Problem] = field(default_factory=list)


def local_id_of(case: Mapping[str, Any]) -> str | None:
    for name in ("id", "case_id", "unique_identifier"):
        value = case.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def decode_case(case: Any, book: CodeBook) -> DecodedCase:
    """The shared data of one element of ``data``, with its problems and warnings."""
    if not isinstance(case, Mapping):
        problem = Problem(
            "",
            "cada elemento de «data» debe ser un caso (un objeto JSON)",
            "each element of 'data' must be a case (a JSON object)",
        )
        return DecodedCase(None, {}, [problem])
    reader = CaseReader(case, book)
    local_id = local_id_of(case)
    if local_id is None:
        reader.problem(
            "field:id",
            "el caso no tiene «id» ni «case_id»: sin él no se puede reenviar sin duplicar",
            "the case has no 'id' nor 'case_id': without one it cannot be resent safely",
        )
    data = compact(
        {
            "case": _case_section(reader),
            "child": _child(reader),
            "related_persons": _related_persons(reader),
            "protection_concerns": _protection_concerns(reader),
            "placements": _placements(reader),
            "referrals": _referrals(reader),
            "best_interest": _best_interest(reader),
            "closure": _closure(reader),
        }
    )
    return DecodedCase(local_id, data, reader.problems, _warnings(case), _actions(case))


def _warnings(case: Mapping[str, Any]) -> list[Problem]:
    warnings = [
        _unknown_field(name)
        for name in case
        if name not in CASE_FIELDS and name not in KNOWN_NOT_CARRIED
    ]
    for section, known in SUBFORM_FIELDS.items():
        for index, row in subform(case, section):
            warnings.extend(
                _unknown_field(f"{section}[{index}].{name}") for name in row if name not in known
            )
    return warnings


# A Primero tick box that records a refusal: (field, what was refused, es, en).
_REFUSALS = (
    (
        "disclosure_other_orgs",
        "compartir la información del caso con otras organizaciones",
        "sharing the case's information with other organisations",
    ),
    (
        "consent_for_services",
        "el consentimiento para recibir servicios",
        "consent to receive services",
    ),
)


def _actions(case: Mapping[str, Any]) -> list[Problem]:
    """What the office must do in Puente for this case: each refusal Primero records must
    become a consent with the decision "deny" (the hub decides sharing by consents only)."""
    actions = []
    for name, refused_es, refused_en in _REFUSALS:
        if case.get(name) in (False, "false", "no"):
            actions.append(
                Problem(
                    f"field:{name}",
                    f"en Primero se negó {refused_es} ({name}: false): registre esa negativa "
                    "en Puente como un consentimiento con la decisión «denegar» (deny); "
                    "hasta entonces Puente no la conoce",
                    f"Primero records that {refused_en} was refused ({name}: false): record "
                    "that refusal in Puente as a consent with the decision 'deny'; until "
                    "then Puente does not know of it",
                )
            )
    return actions


def _unknown_field(name: str) -> Problem:
    return Problem(
        f"field:{name}",
        f"campo desconocido «{name}»: se ignoró y el caso se importa sin él",
        f"unknown field '{name}' was ignored; the case is imported without it",
    )


def _case_section(r: CaseReader) -> dict[str, Any]:
    status = r.code("status", "field:status")
    if status == "open" and r.text("transfer_status") == "in_progress":
        status = "pending_transfer"
    owner: dict[str, Any] = {}
    agency = r.code("owned_by_agency_id", "field:owned_by_agency_id")
    if agency is not None:
        owner = compact({"agency_id": agency, "caseworker_id": r.text("owned_by")})
    return compact(
        {
            "status": status,
            "case_number": r.text("case_id_display"),
            "opened_on": r.date("registration_date", "field:registration_date"),
            "workflow_stage": r.code("workflow", "field:workflow"),
            "owner": owner,
            "last_updated_at": r.text("last_updated_at"),
        }
    )


def _child(r: CaseReader) -> dict[str, Any]:
    given = joined(r.text("name_first"), r.text("name_middle"))
    first_surname, second_surname = _surnames(r.text("name_last"), r.text("name_last_second"))
    names = compact(
        {"given_names": given, "first_surname": first_surname, "second_surname": second_surname}
    )
    date_of_birth = r.date("date_of_birth", "field:date_of_birth")
    estimated = r.flag("estimated")
    age = r.integer("age", "field:age")
    child = {
        "names": names,
        "alias": r.text("name_nickname"),
        "sex": r.code("sex", "field:sex"),
        "date_of_birth": None if estimated else date_of_birth,
        "age_estimation": (
            {"estimated_age_years": age}
            if age is not None and (estimated or date_of_birth is None)
            else None
        ),
        "birth_country": r.code("country_of_birth", "field:country_of_birth"),
        "birth_place": r.text("place_of_birth"),
        "nationality": r.codes("nationality", "field:nationality"),
        "languages": r.codes("language", "field:language"),
        "ethnic_group": _ethnic_group(r),
        "identifiers": _identifiers(r),
        "unaccompanied_status": (
            r.code("protection_status", "field:protection_status")
            or r.code("unaccompanied_separated_status", "field:unaccompanied_separated_status")
        ),
        "current_location": compact(
            {
                "address": _address(
                    r, "location_current", "field:location_current", r.text("address_current")
                ),
                "contact": compact({"phone": r.text("telephone_current")}),
            }
        ),
    }
    return compact(child)


def _surnames(last: str | None, second: str | None) -> tuple[str | None, str | None]:
    """``name_last`` as the first and second surname: ``name_last_second`` (which Puente
    writes) names the second, the end of ``name_last``; without it, ``name_last`` is all the
    first surname (Primero has one surname field)."""
    if second is None:
        return last, None
    if last is None or last == second:
        return None, second
    if last.endswith(" " + second):
        return last[: -len(second) - 1].strip() or None, second
    return last, second


def _ethnic_group(r: CaseReader) -> str | None:
    # Ethnicity options are each deployment's own; the shared field is free text.
    raw = r.case.get("ethnicity")
    values = raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []
    table = r.book.lookup
    names = [table("ethnicity", v) or v for v in values if isinstance(v, str) and v]
    return ", ".join(names) or None


def _identifiers(r: CaseReader) -> list[dict[str, str]]:
    found = [
        {"type": kind, "value": value}
        for name, kind in _IDENTIFIER_FIELDS
        if (value := r.text(name)) is not None
    ]
    other = r.text("other_id_no")
    if other is not None:
        kind = r.book.lookup("other_id_type", r.text("other_id_type")) or "other"
        found.append({"type": kind, "value": other})
    agency_id = r.text("other_agency_id")
    if agency_id is not None:
        # Puente writes the identifier's type in other_agency_name; a Primero user writes the
        # name of the agency that issued the id there.
        name = r.text("other_agency_name")
        issued = r.book.lookup("other_id_type", name)
        if issued:
            found.append({"type": issued, "value": agency_id})
        else:
            found.append(compact({"type": "other", "value": agency_id, "issuer_name": name}))
    return found


def _address(
    r: CaseReader,
    name: str,
    where: str,
    description: str | None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Primero location (an INEGI state or municipality code, ``MX`` prefix allowed, or
    a deployment location code its table maps to one) as a shared address."""
    code = r.text(name, source)
    address: dict[str, Any] = {"description": description}
    if code is not None:
        mapped = r.book.lookup(name, code) or code
        match = _MUNICIPALITY.match(mapped)
        if match is None:
            r.problem(
                where,
                f"ubicación desconocida «{code}»: use la clave INEGI del municipio o agréguela "
                "a la tabla de códigos «location_current»",
                f"unknown location '{code}': use the INEGI municipality key or add it to the "
                "'location_current' code table",
            )
        else:
            address.update(country="MX", state=match.group(2))
            if match.group(3):
                address["municipality"] = match.group(1)
    return compact(address)


def _protection_concerns(r: CaseReader) -> dict[str, Any]:
    concerns = []
    for code in r.codes("protection_concerns", "field:protection_concerns"):
        details = r.text("protection_concerns_other") if code == "other" else None
        concerns.append(compact({"code": code, "details": details}))
    return compact(
        {
            "risk_level": r.code("risk_level", "field:risk_level"),
            "urgent": r.flag("urgent_protection_concern"),
            "concerns": concerns,
        }
    )


def _related_persons(r: CaseReader) -> list[dict[str, Any]]:
    persons = []
    for index, row in subform(r.case, "family_details_section"):
        where = f"field:family_details_section[{index}]."
        born = _relation_birth(r, row, where)
        person = {
            "person_ref": r.text("unique_id", row),
            "relationship": r.code("relation", where + "relation", row),
            "names": _relation_names(r, row),
            "alias": r.text("relation_nickname", row),
            "sex": r.book.lookup("relation_sex", row.get("relation")),
            "date_of_birth": born,
            "nationality": r.codes("relation_nationality", where + "relation_nationality", row),
            "languages": r.codes("relation_language", where + "relation_language", row),
            "alive": r.code("relation_is_alive", where + "relation_is_alive", row),
            "address": _address(
                r,
                "relation_location_current",
                where + "relation_location_current",
                r.text("relation_address_current", row),
                row,
            ),
            "contact": compact({"phone": r.text("relation_telephone", row)}),
            "primary_caregiver": r.flag("relation_is_caregiver", row),
            "notes": r.text("relation_death_details", row),
        }
        persons.append(compact(person))
    return persons


def _relation_names(r: CaseReader, row: Mapping[str, Any]) -> dict[str, Any]:
    """``relation_name``, split into given names and surnames when ``relation_name_last`` /
    ``relation_name_last_second`` (which Puente writes) name the surnames it ends with."""
    name = r.text("relation_name", row)
    first = r.text("relation_name_last", row)
    second = r.text("relation_name_last_second", row)
    surnames = joined(first, second)
    if name and surnames and name.endswith(" " + surnames):
        given = name[: -len(surnames) - 1].strip()
        if given:
            return compact({"given_names": given, "first_surname": first, "second_surname": second})
    return compact({"given_names": name})


def _relation_birth(r: CaseReader, row: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    """The date of birth, or the birth year estimated from ``relation_age`` at registration."""
    born = r.date("relation_date_of_birth", where + "relation_date_of_birth", row)
    if born:
        return {"date": born}
    age = row.get("relation_age")
    registered = r.date("registration_date", "field:registration_date")
    if isinstance(age, int) and not isinstance(age, bool) and registered:
        return {"date": f"{int(registered[:4]) - age:04d}", "estimated": True}
    return None


def _placements(r: CaseReader) -> list[dict[str, Any]]:
    rows = subform(r.case, "care_arrangements_section")
    caregivers = {
        (name.casefold(), ref)
        for _, person in subform(r.case, "family_details_section")
        if (name := r.text("relation_name", person)) and (ref := r.text("unique_id", person))
    }
    placements = []
    for index, row in rows:
        where = f"field:care_arrangements_section[{index}]."
        caregiver = (r.text("name_caregiver", row) or "").casefold()
        placement = {
            "type": r.code("care_arrangements_type", where + "care_arrangements_type", row),
            "operator": compact({"name": r.text("care_agency_name", row)}),
            "caregiver_person_ref": next((ref for n, ref in caregivers if n == caregiver), None),
            "start_date": r.date(
                "care_arrangement_started_date", where + "care_arrangement_started_date", row
            ),
            "reason_details": r.text("care_arrangements_type_notes", row)
            or r.text("care_arrangements_type_other", row),
        }
        placements.append(compact(placement))
    return placements


def _referrals(r: CaseReader) -> list[dict[str, Any]]:
    referrals = []
    for index, row in subform(r.case, "services_section"):
        where = f"field:services_section[{index}]."
        agency = r.text("service_implementing_agency", row)
        agency_id = r.book.lookup("service_implementing_agency", agency) if agency else None
        implemented = r.text("service_implemented", row) == "implemented"
        referral = {
            "service_type": r.code("service_type", where + "service_type", row),
            "referred_to": compact(
                {
                    "agency_id": agency_id,
                    "name": r.text("service_provider", row) or (agency if not agency_id else None),
                }
            ),
            "referred_on": r.date(
                "service_response_day_time", where + "service_response_day_time", row
            ),
            "urgency": r.code(
                "service_response_timeframe", where + "service_response_timeframe", row
            ),
            "status": "completed" if implemented else "pending",
            "completed_on": r.date(
                "service_implemented_day_time", where + "service_implemented_day_time", row
            ),
            "notes": r.text("service_referral_notes", row),
        }
        referrals.append(compact(referral))
    return referrals


def _best_interest(r: CaseReader) -> dict[str, Any]:
    recommendation = r.text("best_interest_recommendation")
    if recommendation is None:
        return {}
    assessment = compact(
        {
            "assessed_on": r.date(
                "best_interest_recommendation_date", "field:best_interest_recommendation_date"
            ),
            "recommendation": r.code(
                "best_interest_recommendation", "field:best_interest_recommendation"
            ),
            "recommendation_details": r.text("best_interest_proposed_support"),
        }
    )
    return {"assessments": [assessment]}


def _closure(r: CaseReader) -> dict[str, Any]:
    reason = r.code("closure_reason", "field:closure_reason")
    if r.text("status") == "duplicate":
        reason = "duplicate"
    closed_on = r.date("date_closure", "field:date_closure")
    if reason is None and closed_on is None:
        return {}
    return compact(
        {"closed_on": closed_on, "reason": reason, "reason_other": r.text("closure_reason_other")}
    )
