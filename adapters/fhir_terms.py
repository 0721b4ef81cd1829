"""The FHIR vocabulary Puente writes and reads: code systems, extensions, labels, small helpers.

One module for every FHIR resource Puente writes or reads — the ``fhir`` adapter's Bundles and
the hub's own exports (``GET /v1/consents/{id}?format=fhir`` and the AuditEvents of
``exchange/fhir_audit.py``) — so a resource one side writes reads back on the other.

Puente's own codes travel under ``urn:puente:*`` systems and its extensions under
``https://schemas.puente.mx/fhir/StructureDefinition/``, so a FHIR reader can tell them apart
from HL7's. Where HL7 has a standard way, it is used instead: ``patient-nationality``,
``patient-birthPlace`` and ``patient-interpreterRequired`` extensions,
``humanname-fathers-family`` / ``-mothers-family`` for the two Mexican surnames, ISO 3166
and BCP 47 codes, v3 RoleCode for relationships. What no element carries rides in the
``case-record-patch`` extension (:mod:`adapters.fhir_patch`).

A coding written with a ``kind`` has its ``display`` in Spanish and the English label in the
core ``translation`` extension, which is how FHIR states one text in two languages. Labels
come from the ``x-labels`` of the shipped schemas, the one place that names a code.

Identifiers (``Identifier.system``):

- ``urn:puente:local-id`` — the source system's id of the case: the envelope's ``local_id``
  (on the Patient; a Patient without one is pushed under its ``Patient.id``);
- ``urn:puente:child`` — the hub's pseudonymous ``child_id``;
- ``urn:puente:related-person`` — ``<local id or child id>/<person_ref>`` on a RelatedPerson;
- ``urn:puente:record-key`` — on each resource an export writes for a case record (and on its
  Consents): the record it belongs to, from the owner agency (when the reader was given it),
  the child id and the local id, so two agencies' records with one local id never share a
  fullUrl nor a conditional update (``PUT Patient?identifier=urn:puente:record-key|…``);
  never read back as data;
- a child's other identifiers keep their own system and say their kind in ``Identifier.type``
  (system ``urn:puente:identifier-type``, codes of ``/child/identifiers/*/type``); a CURP is
  written, and recognised without a type, under RENAPO's OID (:data:`IDENTIFIER_SYSTEMS`);
- ``urn:puente:agency`` / ``urn:puente:person`` name agencies and caseworkers in references;
- ``urn:puente:<object kind>`` (:func:`object_system`) names the hub's other objects.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from schemas.registry import default_registry

Json = dict[str, Any]
Text = tuple[str, str]
"""A text a person reads: (Spanish, English)."""

EXTENSION_BASE = "https://schemas.puente.mx/fhir/StructureDefinition/"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"

LOCAL_ID = "urn:puente:local-id"
CHILD = "urn:puente:child"
AGENCY = "urn:puente:agency"
PERSON = "urn:puente:person"
RELATED_PERSON = "urn:puente:related-person"
RECORD_KEY = "urn:puente:record-key"
CONSENT = "urn:puente:consent"
RECORD = "urn:puente:record"
DECISION = "urn:puente:decision"
HUB = "urn:puente:hub"
OAUTH_CLIENT = "urn:puente:oauth-client"
ROLE = "urn:puente:role"
ACTION = "urn:puente:action"
PURPOSE = "urn:puente:purpose"
DATA_CATEGORY = "urn:puente:data-category"
IDENTIFIER_TYPE = "urn:puente:identifier-type"
RELATIONSHIP = "urn:puente:relationship"
PLACEMENT_TYPE = "urn:puente:placement-type"
PLACEMENT_REASON = "urn:puente:placement-reason"
GRANTOR_TYPE = "urn:puente:grantor-type"
REPRESENTATION = "urn:puente:representation"
POLICY_BASIS = "urn:puente:policy-basis"
EVIDENCE = "urn:puente:evidence"
EVIDENCE_REFERENCE = "urn:puente:evidence-reference"
VERIFICATION = "urn:puente:verification"
VIEW_POSITION = "urn:puente:view-position"
CHILD_VIEWS_ID = "urn:puente:child-views"

ISO_3166 = "urn:iso:std:iso:3166"
BCP_47 = "urn:ietf:bcp:47"
V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
LOINC = "http://loinc.org"
HL7_CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"

DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
#: The identifier system of an identifier type that has a well-known one (written on export,
#: and enough on reading when the identifier has no type): the CURP under RENAPO's OID. No
#: UNHCR (proGres) number has a published FHIR system.
IDENTIFIER_SYSTEMS = {"curp": "urn:oid:2.16.840.1.113883.4.629"}
IDENTIFIER_SYSTEMS_BACK = {system: kind for kind, system in IDENTIFIER_SYSTEMS.items()}

NATIONALITY = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
FATHERS_FAMILY = "http://hl7.org/fhir/StructureDefinition/humanname-fathers-family"
MOTHERS_FAMILY = "http://hl7.org/fhir/StructureDefinition/humanname-mothers-family"
INTERPRETER_REQUIRED = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"


def extension_url(name: str) -> str:
    return EXTENSION_BASE + name


def object_system(kind: str) -> str:
    """An object kind's identifier system: ``access_request`` → ``urn:puente:access-request``."""
    return "urn:puente:" + kind.replace("_", "-")


CASE_NUMBER = "urn:puente:case-number"
WORKFLOW_STAGE = "urn:puente:workflow-stage"

ESTIMATED_AGE = extension_url("estimated-age")
CASE_STATUS_EXT = extension_url("case-status")
CLOSURE_REASON_EXT = extension_url("closure-reason")
ESTIMATED_DATE = extension_url("estimated-date")
UNACCOMPANIED = extension_url("unaccompanied-status")
ISSUER_COUNTRY = extension_url("issuer-country")
CUSTODY = extension_url("custody")
ALTERNATIVE_TO_DETENTION = extension_url("alternative-to-detention")
LOCATION_TYPE = extension_url("location-type")
IDENTIFIED_BY = extension_url("identified-by")
REFERRED_BY = extension_url("referred-by")
GRANTOR_TYPE_EXT = extension_url("grantor-type")
REPRESENTATION_EXT = extension_url("grantor-representation")
PROVISION_DECISION = extension_url("provision-decision")
REVOCATION = extension_url("consent-revocation")
CHILD_VIEWS = extension_url("child-views")
EVIDENCE_TYPE = extension_url("evidence-type")
SHA256 = extension_url("sha256")

# Shared sex ↔ FHIR administrative gender. FHIR has no "intersex": "other" is the nearest on
# writing (the case-record-patch restores "intersex"). Read, "other" says only that the gender
# is none of the others, which is not that the child is intersex: it is "unknown" (the
# schema's value for a sex not recorded), with a warning (adapters.fhir_case).
GENDER = {"female": "female", "male": "male", "intersex": "other", "unknown": "unknown"}
GENDER_BACK = {"female": "female", "male": "male", "other": "unknown", "unknown": "unknown"}

# Shared relationship → v3 RoleCode (for readers that know only HL7's codes). The Puente
# coding is written alongside and wins on reading; these are read when it is absent.
ROLE_CODE = {
    "mother": "MTH",
    "father": "FTH",
    "stepmother": "STPMTH",
    "stepfather": "STPFTH",
    "sibling": "SIB",
    "half_sibling": "HSIB",
    "grandparent": "GRPRN",
    "cousin": "COUSN",
    "other_relative": "EXT",
    "legal_guardian": "GUARD",
    "partner": "SIGOTHR",
    "own_child": "CHILD",
}
ROLE_CODE_BACK = {
    **{code: shared for shared, code in ROLE_CODE.items()},
    "NMTH": "mother",
    "NFTH": "father",
    "BRO": "sibling",
    "SIS": "sibling",
    "NBRO": "sibling",
    "NSIS": "sibling",
    "HBRO": "half_sibling",
    "HSIS": "half_sibling",
    "GRMTH": "grandparent",
    "GRFTH": "grandparent",
    "MGRMTH": "grandparent",
    "MGRFTH": "grandparent",
    "PGRMTH": "grandparent",
    "PGRFTH": "grandparent",
    "AUNT": "aunt_uncle",
    "UNCLE": "aunt_uncle",
    "MAUNT": "aunt_uncle",
    "PAUNT": "aunt_uncle",
    "MUNCLE": "aunt_uncle",
    "PUNCLE": "aunt_uncle",
    "MCOUSN": "cousin",
    "PCOUSN": "cousin",
    "FAMMEMB": "other_relative",
    "SPS": "partner",
    "HUSB": "partner",
    "WIFE": "partner",
    "DOMPART": "partner",
    "SON": "own_child",
    "DAU": "own_child",
    "NBOR": "community_member",
    "FRND": "community_member",
}

# Case status → EpisodeOfCare.status; the exact status rides in the ``case-status`` extension.
EPISODE_STATUS = {
    "open": "active",
    "pending_transfer": "onhold",
    "transferred": "finished",
    "closed": "finished",
}
EPISODE_STATUS_BACK = {
    "planned": "open",
    "waitlist": "open",
    "active": "open",
    "onhold": "open",
    "finished": "closed",
    "cancelled": "closed",
}

CONSENT_STATUS = {
    "draft": "draft",
    "active": "active",
    "inactive": "inactive",
    "not_done": "not-done",
    "entered_in_error": "entered-in-error",
}
# R4 adds "proposed" (not yet agreed: a draft) and "rejected" (asked, not given: not done).
CONSENT_STATUS_BACK = {
    **{fhir: shared for shared, fhir in CONSENT_STATUS.items()},
    "proposed": "draft",
    "rejected": "not_done",
}
HL7_ACTION = {"read": "access", "refer": "disclose", "transfer": "disclose"}


# -- labels ------------------------------------------------------------------------------

_COMMON = ("common", "$defs")
_CONSENT = ("consent", "properties")
_GRANTOR = (*_CONSENT, "grantor", "properties")
_AUDIT = ("audit-event", "properties")
#: Where each kind of code has its ``x-labels``: schema name, then the path within it.
_LABELS: Mapping[str, tuple[str, ...]] = {
    "data_category": (*_COMMON, "data_category"),
    "purpose": (*_COMMON, "purpose"),
    "action": (*_COMMON, "action"),
    "role": (*_COMMON, "role"),
    "decision": (*_COMMON, "decision"),
    "grantor_type": (*_GRANTOR, "type"),
    "representation": (*_GRANTOR, "representation"),
    "policy_basis": (*_CONSENT, "policy_basis", "items", "properties", "code"),
    "evidence": (*_CONSENT, "source_document", "properties", "type"),
    "view_position": (*_CONSENT, "child_views", "properties", "position"),
    "audit_action": (*_AUDIT, "action"),
    "audit_outcome": (*_AUDIT, "outcome"),
    "object_type": (*_AUDIT, "object", "properties", "type"),
    "decision_basis": (*_AUDIT, "decision", "properties", "basis"),
}


@functools.cache
def labels(kind: str) -> Mapping[str, Text]:
    """The (Spanish, English) labels of the codes of ``kind``."""
    schema, *path = _LABELS[kind]
    node: Any = default_registry().document(schema, "1")
    for key in path:
        node = node[key]
    return {code: (label["es"], label["en"]) for code, label in node["x-labels"].items()}


def label_of(kind: str, code: str) -> Text:
    return labels(kind).get(code, (code, code))


# -- reading helpers ---------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def codings(concepts: Any) -> Iterable[Mapping[str, Any]]:
    """Every coding of a CodeableConcept, a list of them, a Coding or a list of Codings."""
    for concept in as_list(concepts):
        if not isinstance(concept, Mapping):
            continue
        if "coding" in concept:
            yield from (c for c in as_list(concept["coding"]) if isinstance(c, Mapping))
        elif "code" in concept:
            yield concept


def code_in(concepts: Any, system: str) -> str | None:
    """The first code of ``system`` in ``concepts``."""
    return next((c.get("code") for c in codings(concepts) if c.get("system") == system), None)


def codes_in(concepts: Any, system: str) -> list[str]:
    """Every code of ``system`` in ``concepts``, in order, once each."""
    found = (c.get("code") for c in codings(concepts) if c.get("system") == system)
    return list(dict.fromkeys(code for code in found if isinstance(code, str)))


def extensions(element: Any, url: str) -> list[Mapping[str, Any]]:
    if not isinstance(element, Mapping):
        return []
    every = as_list(element.get("extension")) + as_list(element.get("modifierExtension"))
    return [e for e in every if isinstance(e, Mapping) and e.get("url") == url]


def extension_value(element: Any, url: str, kind: str) -> Any:
    """``value<kind>`` of the first extension ``url`` of ``element``."""
    found = extensions(element, url)
    return found[0].get("value" + kind) if found else None


def identifier_value(resource: Mapping[str, Any], system: str) -> str | None:
    for identifier in as_list(resource.get("identifier")):
        if isinstance(identifier, Mapping) and identifier.get("system") == system:
            value = identifier.get("value")
            if isinstance(value, str) and value:
                return value
    return None


def reference_identifier(reference: Any, system: str) -> str | None:
    """The value of a logical reference's identifier of ``system``."""
    if not isinstance(reference, Mapping):
        return None
    identifier = reference.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("system") == system:
        value = identifier.get("value")
        return value if isinstance(value, str) else None
    return None


# -- writing helpers ---------------------------------------------------------------------


def translated(spanish: str, english: str) -> Json:
    """The ``_element`` companion that gives ``english`` as the translation of a Spanish text."""
    return {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "en"},
                    {"url": "content", "valueString": english},
                ],
            }
        ]
    }


def coding(system: str, code: str, kind: str | None = None) -> Json:
    """A coding; with ``kind``, its display in Spanish with the English translation."""
    result: Json = {"system": system, "code": code}
    label = labels(kind).get(code) if kind else None
    if label is not None:
        result["display"] = label[0]
        result["_display"] = translated(*label)
    return result


def concept(system: str, code: str, kind: str | None = None) -> Json:
    return {"coding": [coding(system, code, kind)]}


def extension(url: str, kind: str, value: Any) -> Json:
    return {"url": url, "value" + kind: value}


def identified(resource_type: str, system: str, value: str, display: str | None = None) -> Json:
    """A logical reference: a resource named by its identifier (the hub serves no FHIR
    endpoint, and a Bundle's reader may not hold the resource)."""
    reference: Json = {"type": resource_type, "identifier": {"system": system, "value": value}}
    if display:
        reference["display"] = display
    return reference


def child_reference(child_id: str) -> Json:
    return identified("Patient", CHILD, child_id)


def hub_reference(hub_id: str | None) -> Json:
    if hub_id is None:
        return {"type": "Device", "display": "Puente"}
    return identified("Device", HUB, hub_id)


def compact(value: Json) -> Json:
    return {key: each for key, each in value.items() if each not in (None, "", [], {})}
