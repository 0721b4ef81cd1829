"""What the ``fhir`` adapter reads of each resource, element by element: the one place that
says it, so that what a resource carries beyond it is told (:mod:`adapters.fhir_unread`),
never dropped silently. The rules it is written in are :mod:`adapters.fhir_elements`.

Each shape lists what the readers (:mod:`adapters.fhir_case`, :mod:`adapters.fhir_consent`)
read; what is *quiet* — not read, and nothing to tell — is :data:`COMMON` for every resource
and a ``Quiet`` rule with its reason for the rest: what carries nothing a record holds, and
what the export writes from what it does hold (so an export read back warns of nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import fhir_terms as t
from adapters.fhir_case import chosen_names
from adapters.fhir_consent_write import CONSENT_POLICY
from adapters.fhir_elements import (
    IMPLICIT_RULES,
    WHOLE,
    Contained,
    First,
    Found,
    Identifiers,
    Modifier,
    Quiet,
    Rule,
    Shape,
    items_of,
    quiet_when_in,
)
from adapters.fhir_patch import PATCH

_TELECOM = Shape(
    {
        "system": WHOLE,
        "value": WHOLE,
        # Whose line it is (home, work, mobile) is no field of a record; an "old" or "temp"
        # one is said, since it is read as current.
        "use": quiet_when_in("home", "work", "mobile"),
        "rank": Quiet(),  # an order of preference: the order read is the order given
    }
)


class _Telecoms:
    """``telecom``: the first two phones and the first email are read."""

    def check(self, value: Any, path: str, found: Found) -> None:
        room = {"phone": 2, "email": 1}
        for contact in items_of(value):
            system = contact.get("system")
            if room.get(str(system), 0) > 0:
                room[str(system)] -= 1
                _TELECOM.check(contact, path, found)
            else:
                found.leave_out(
                    f"{path}[system={system}]",
                    (
                        "solo se leen dos teléfonos y un correo",
                        "only two phones and one email are read",
                    ),
                )


_NAME = Shape(
    {
        "use": WHOLE,
        "family": WHOLE,
        "_family": Shape({}, frozenset({t.FATHERS_FAMILY, t.MOTHERS_FAMILY})),
        "given": WHOLE,
        # The name as written whole: the parts read say it (a nickname's text is read).
        "text": Quiet(),
    }
)


class _Names:
    """``name``: the one the names come from and the alias (:func:`chosen_names`)."""

    def check(self, value: Any, path: str, found: Found) -> None:
        official, alias = chosen_names(value)
        for name in items_of(value):
            if name is official or name is alias:
                _NAME.check(name, path, found)
            else:
                use = name.get("use")
                found.leave_out(
                    f"{path}[use={use}]" if use else path,
                    (
                        "solo se leen un nombre y un alias (nickname)",
                        "only one name and an alias (nickname) are read",
                    ),
                )


#: On every resource: what carries nothing a record holds.
COMMON: dict[str, Rule] = {
    "resourceType": Quiet(),
    "id": WHOLE,  # read: a reference's target, a local id when no identifier gives one
    # The server's bookkeeping (version, last update, profiles, tags, the hub's address).
    "meta": Quiet(),
    # The narrative is a reading of the structured elements for people (FHIR dom-6): what it
    # says is in the elements, each read or told here.
    "text": Quiet(),
    "language": Quiet(),  # the language of the texts, not the child's (communication is)
    "implicitRules": Modifier(IMPLICIT_RULES),
}


def resource(elements: dict[str, Rule], extensions: frozenset[str] = frozenset()) -> Shape:
    return Shape({**COMMON, **elements}, extensions)


_ADDRESS = Shape(
    {
        **{part: WHOLE for part in ("text", "line", "city", "district", "state")},
        "postalCode": WHOLE,
        "country": WHOLE,
        # A home address that is a place is what the record's address is; an old, temporary
        # or work one, or a postal box, is said.
        "use": quiet_when_in("home"),
        "type": quiet_when_in("physical", "both"),
    }
)
_ACTIVE = Quiet(lambda value: value is True)  # in use, as every record read is

RELATED_PERSON = resource(
    {
        "identifier": Identifiers(frozenset({t.RELATED_PERSON, t.RECORD_KEY})),
        "active": _ACTIVE,
        "patient": WHOLE,
        "relationship": WHOLE,
        "name": _Names(),
        "telecom": _Telecoms(),
        "gender": WHOLE,
        "birthDate": WHOLE,
        "_birthDate": Shape({}, frozenset({t.ESTIMATED_DATE})),
        "address": First(_ADDRESS),
        "communication": Shape({"language": WHOLE}),
    },
    frozenset({t.CUSTODY, PATCH}),
)

PATIENT = resource(
    {
        "identifier": Shape(
            {
                "system": WHOLE,
                "value": WHOLE,
                "type": WHOLE,
                # Usual, official, secondary: an identifier of the child's all the same; an
                # old or temporary one is said, since it is stored as current.
                "use": quiet_when_in("usual", "official", "secondary"),
                "period": Shape({"end": WHOLE}),
                "assigner": WHOLE,
            },
            frozenset({t.ISSUER_COUNTRY}),
        ),
        "active": _ACTIVE,
        "name": _Names(),
        "telecom": _Telecoms(),
        "gender": WHOLE,
        "birthDate": WHOLE,
        "address": First(_ADDRESS),
        "communication": Shape({"language": WHOLE, "preferred": WHOLE}),
        "contained": Contained({"RelatedPerson": RELATED_PERSON}),
    },
    frozenset(
        {
            t.NATIONALITY,
            t.BIRTH_PLACE,
            t.ESTIMATED_AGE,
            t.UNACCOMPANIED,
            t.INTERPRETER_REQUIRED,
            t.LOCATION_TYPE,
            PATCH,
        }
    ),
)

EPISODE_OF_CARE = resource(
    {
        "identifier": Identifiers(frozenset({t.CASE_NUMBER, t.RECORD_KEY}), local_id=True),
        "status": WHOLE,
        "type": WHOLE,
        "patient": WHOLE,
        "managingOrganization": WHOLE,
        "period": WHOLE,
        "careManager": First(WHOLE),
    },
    frozenset({t.CASE_STATUS_EXT, t.IDENTIFIED_BY, t.REFERRED_BY, t.CLOSURE_REASON_EXT, PATCH}),
)

#: Statuses of an Encounter that say the placement took place or goes on (its dates say
#: when); the export writes "in-progress" or "completed" from its end. A planned, cancelled
#: or mistaken one is said: it is stored as a placement all the same.
_PLACEMENT_STATUSES = (
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "on-hold",
    "finished",
    "completed",
    "discharged",
    "unknown",
)

ENCOUNTER = resource(
    {
        "identifier": Identifiers(frozenset({t.RECORD_KEY})),
        "status": quiet_when_in(*_PLACEMENT_STATUSES),
        # Inpatient, ambulatory, home health…: a placement's kind is its placement type, and
        # R4 requires a class of every Encounter.
        "class": Quiet(),
        "type": WHOLE,
        "subject": WHOLE,
        # The case the placement belongs to is its Patient's: the export writes this from it.
        "episodeOfCare": Quiet(),
        "participant": Shape({"actor": WHOLE, "individual": WHOLE}),
        "period": WHOLE,
        "actualPeriod": WHOLE,
        "reason": Shape({"value": WHOLE}),
        "reasonCode": WHOLE,
        "location": First(Shape({"location": WHOLE})),
        "serviceProvider": WHOLE,
    },
    frozenset({t.ALTERNATIVE_TO_DETENTION, PATCH}),
)

# -- Consent -------------------------------------------------------------------------------

_GRANTOR = Shape(
    {
        "reference": WHOLE,
        "type": WHOLE,
        "identifier": WHOLE,
        "display": Quiet(),  # the grantor type's label, written from its code
    },
    frozenset({t.GRANTOR_TYPE_EXT, t.REPRESENTATION_EXT}),
)
_DATA = Shape({"reference": WHOLE, "meaning": quiet_when_in("instance")})


def _provision(own_decision: bool, nested: bool = True) -> Shape:
    """A provision: R4 states its decision (``type``); its base provision's own actions,
    purposes and data are not read (only those of the provisions it holds)."""
    elements: dict[str, Rule] = {"period": WHOLE, "actor": WHOLE}
    if own_decision:
        elements["type"] = WHOLE
    if nested:
        elements.update({"action": WHOLE, "purpose": WHOLE, "securityLabel": WHOLE, "data": _DATA})
    shape = Shape(elements, frozenset({t.PROVISION_DECISION}))
    shape.elements["provision"] = shape if nested else _provision(own_decision)
    return shape


#: Consent elements the hub writes and does not read back.
_CONSENT_COMMON: dict[str, Rule] = {
    "identifier": Identifiers(frozenset({t.CONSENT, t.RECORD_KEY}), local_id=True),
    "status": WHOLE,
    # Every consent/1 is a consent to share a child's data: the export writes LOINC 59284-0
    # (Patient Consent), and R4 requires a category.
    "category": Quiet(),
    # When it was recorded: the hub keeps when it recorded the consent (consent/1's
    # recorded_at is not read back; docs/consent.md).
    "date": Quiet(),
    "dateTime": Quiet(),
    "verification": First(
        Shape(
            {
                "verified": WHOLE,
                # Written from the grantor by the export: what was verified is the grantor.
                "verificationType": Quiet(),
                "verifiedWith": Quiet(),
            }
        )
    ),
    "sourceAttachment": First(
        Shape({"title": Quiet()}, frozenset({t.EVIDENCE_TYPE, t.SHA256}))  # title: its label
    ),
    "sourceReference": First(WHOLE),
    "contained": Contained(
        {
            "PractitionerRole": resource(
                {"organization": WHOLE, "practitioner": WHOLE, "code": WHOLE}
            ),
            "RelatedPerson": resource(
                {"identifier": WHOLE, "patient": WHOLE, "relationship": WHOLE}
            ),
        }
    ),
}
_CONSENT_EXTENSIONS = frozenset({t.REVOCATION, t.CHILD_VIEWS})

CONSENT_R5 = resource(
    {
        **_CONSENT_COMMON,
        "subject": WHOLE,
        "grantor": First(_GRANTOR),
        "grantee": WHOLE,
        "manager": First(WHOLE),
        # The rules are those of consent/1 when it names them; other rules are said.
        "policyBasis": Quiet(lambda value: value == {"url": CONSENT_POLICY}),
        "regulatoryBasis": WHOLE,
        "decision": WHOLE,
        "period": WHOLE,
        "provision": _provision(own_decision=False),
    },
    _CONSENT_EXTENSIONS,
)

CONSENT_R4 = resource(
    {
        **_CONSENT_COMMON,
        # A consent to share data (patient-privacy) is what consent/1 holds; another scope
        # (treatment, research) is said.
        "scope": Quiet(
            lambda value: (
                t.code_in(value, "http://terminology.hl7.org/CodeSystem/consentscope")
                == "patient-privacy"
            )
        ),
        "patient": WHOLE,
        "performer": First(_GRANTOR),
        "policyRule": WHOLE,
        "provision": _provision(own_decision=True, nested=False),
    },
    _CONSENT_EXTENSIONS,
)


def shape_of(found: Mapping[str, Any]) -> Shape | None:
    """The shape of a resource the adapter reads (None for another type)."""
    kind = found.get("resourceType")
    if kind == "Consent":
        # As adapters.fhir_consent tells them apart.
        r4 = "decision" not in found and isinstance(found.get("provision"), Mapping)
        return CONSENT_R4 if r4 else CONSENT_R5
    return {
        "Patient": PATIENT,
        "RelatedPerson": RELATED_PERSON,
        "EpisodeOfCare": EPISODE_OF_CARE,
        "Encounter": ENCOUNTER,
    }.get(str(kind))
