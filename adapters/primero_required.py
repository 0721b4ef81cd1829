"""Which Primero fields give a field the shared record requires and a case left out.

The schema's reason for a missing field names the shared field (``required field
'nationality(ies)' (nationality) is missing``; ``'child' must include at least one of: 'date of
birth', 'age estimation'``), which a caseworker does not see in Primero: they see Primero's
fields. :func:`naming_primero_fields` adds the Primero fields the adapter reads that field from
(``date_of_birth``, ``age``), in Spanish and English, with the subform row for a field of a
list (``care_arrangements_section[1].care_arrangement_started_date``). Only rejected cases get
here, so none of this is on the import's hot path. The CSV adapter does the same with a
mapping's columns (:mod:`adapters.csv_required`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapters.base import Problem
from adapters.csv_required import MISSING_KEYWORDS, ONE_OF_KEYWORDS
from schemas.fields import FieldInfo, unescape_token
from schemas.validation import ValidationFailure
from schemas.wording import field_name

#: The shared record's fields a case can leave out though required (by pointer template),
#: and the Primero fields :mod:`adapters.primero_decode` reads each from.
PRIMERO_FIELDS: Mapping[str, tuple[str, ...]] = {
    "/case/status": ("status",),
    "/child/nationality": ("nationality",),
    "/child/date_of_birth": ("date_of_birth",),
    "/child/age_estimation": ("age",),
    "/child/names": ("name_first",),
    "/child/names/given_names": ("name_first",),
    "/placements/*/type": ("care_arrangements_type",),
    "/placements/*/start_date": ("care_arrangement_started_date",),
    "/referrals/*/service_type": ("service_type",),
    "/referrals/*/referred_to": ("service_implementing_agency", "service_provider"),
    "/best_interest/assessments/*/assessed_on": ("best_interest_recommendation_date",),
    # A closed case without its closure at all: both fields give it, and both are needed.
    "/closure": ("date_closure", "closure_reason"),
    "/closure/closed_on": ("date_closure",),
    "/closure/reason": ("closure_reason",),
}
#: Fields given by *all* the Primero fields listed for them (a closure needs its date and its
#: reason), not by any one of them (a referral names its agency in either field).
ALL_NEEDED = frozenset({"/closure"})

#: The shared lists whose elements come from a Primero subform's rows, in order.
SUBFORMS: Mapping[str, str] = {
    "placements": "care_arrangements_section",
    "referrals": "services_section",
}


def naming_primero_fields(
    failures: Iterable[ValidationFailure], data: Any, fields: Mapping[str, FieldInfo]
) -> tuple[Problem, ...]:
    """Each failure as a problem, a missing field's reason ending with the Primero fields that
    give it (``fields``: the schema's, to name fields as its reasons do)."""
    return tuple(_problem(failure, data, fields) for failure in failures)


def _problem(failure: ValidationFailure, data: Any, fields: Mapping[str, FieldInfo]) -> Problem:
    plain = Problem(failure.pointer, failure.message_es, failure.message_en)
    if failure.keyword not in MISSING_KEYWORDS + ONE_OF_KEYWORDS:
        return plain
    tokens = [unescape_token(token) for token in failure.pointer.split("/")[1:]]
    template = "".join("/*" if token.isdigit() else f"/{token}" for token in tokens)
    named: list[str] = []
    every = False
    for pointer, primero_fields in PRIMERO_FIELDS.items():
        parent, _, name = pointer.rpartition("/")
        if parent != template or _present(data, [*tokens, name]):
            continue
        info = fields.get(pointer)
        _, named_en = field_name(name, info.title if info is not None else None)
        if named_en not in failure.message_en:
            continue
        every = every or pointer in ALL_NEEDED
        for each in primero_fields:
            label = _in_subform(tokens, each)
            if label not in named:
                named.append(label)
    if not named:
        return plain
    listed_es = ", ".join(f"«{each}»" for each in named)
    listed_en = ", ".join(f"'{each}'" for each in named)
    if failure.keyword in ONE_OF_KEYWORDS:
        es = f"llene en Primero al menos uno de los campos que los dan: {listed_es}"
        en = f"fill in at least one of the Primero fields that give them: {listed_en}"
    elif len(named) == 1:
        es = f"llene en Primero el campo que lo da: {listed_es}"
        en = f"fill in the Primero field that gives it: {listed_en}"
    elif every:
        es = f"llene en Primero los campos que lo dan: {listed_es}"
        en = f"fill in the Primero fields that give it: {listed_en}"
    else:
        es = f"llene en Primero uno de los campos que lo dan: {listed_es}"
        en = f"fill in one of the Primero fields that give it: {listed_en}"
    return Problem(failure.pointer, f"{failure.message_es}; {es}", f"{failure.message_en}; {en}")


def _in_subform(tokens: list[str], primero_field: str) -> str:
    """``care_arrangement_started_date`` as a field of the subform row the element at
    ``tokens`` (``placements``, ``1``) came from: ``care_arrangements_section[1]. …``."""
    if len(tokens) >= 2 and tokens[0] in SUBFORMS and tokens[1].isdigit():
        return f"{SUBFORMS[tokens[0]]}[{tokens[1]}].{primero_field}"
    return primero_field


def _present(data: Any, tokens: list[str]) -> bool:
    for token in tokens:
        if isinstance(data, list) and token.isdigit() and int(token) < len(data):
            data = data[int(token)]
        elif isinstance(data, Mapping) and token in data:
            data = data[token]
        else:
            return False
    return data not in (None, "", [], {})
