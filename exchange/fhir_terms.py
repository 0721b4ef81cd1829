"""The FHIR R5 building blocks :mod:`exchange.fhir_export` writes: code systems, bilingual
codings, identifier references and contained actors.

Puente's own codes travel under ``urn:puente:*`` systems (``urn:puente:purpose``,
``urn:puente:agency`` …) so that a FHIR reader can tell them apart from HL7's; extensions live
under the schemas' domain. A coding's ``display`` is the Spanish label and carries the English
one in the core ``translation`` extension, which is how FHIR states one text in two languages.
Labels come from the vocabulary (categories, purposes, actions) and otherwise from the
``x-labels`` of the shipped schemas, so there is one place that names a code.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from consent.parts import ActorRef
from consent.vocabulary import ACTION_LABELS, CATEGORY_LABELS, PURPOSE_LABELS, Text
from schemas.registry import default_registry

Json = dict[str, Any]

EXTENSION_BASE = "https://schemas.puente.mx/fhir/StructureDefinition/"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"

CHILD = "urn:puente:child"
AGENCY = "urn:puente:agency"
PERSON = "urn:puente:person"
HUB = "urn:puente:hub"
OAUTH_CLIENT = "urn:puente:oauth-client"
RELATED_PERSON = "urn:puente:related-person"
ROLE = "urn:puente:role"
ACTION = "urn:puente:action"
PURPOSE = "urn:puente:purpose"
DATA_CATEGORY = "urn:puente:data-category"
RECORD = "urn:puente:record"
CONSENT = "urn:puente:consent"
DECISION = "urn:puente:decision"


def object_system(kind: str) -> str:
    """An object kind's identifier system: ``access_request`` → ``urn:puente:access-request``."""
    return "urn:puente:" + kind.replace("_", "-")


def extension_url(name: str) -> str:
    return EXTENSION_BASE + name


# --- labels -------------------------------------------------------------------------------------


@functools.cache
def _schema_labels(name: str, *path: str) -> Mapping[str, Text]:
    node: Any = default_registry().document(name, "1")
    for key in path:
        node = node[key]
    return {code: (label["es"], label["en"]) for code, label in node["x-labels"].items()}


def labels(kind: str) -> Mapping[str, Text]:
    """The (Spanish, English) labels of the codes of ``kind``."""
    if kind in _VOCABULARY_LABELS:
        return _VOCABULARY_LABELS[kind]
    return _schema_labels(*_SCHEMA_LABEL_PATHS[kind])


_VOCABULARY_LABELS: Mapping[str, Mapping[str, Text]] = {
    "data_category": CATEGORY_LABELS,
    "purpose": PURPOSE_LABELS,
    "action": ACTION_LABELS,
}
_GRANTOR = ("consent", "properties", "grantor", "properties")
_AUDIT = ("audit-event", "properties")
_SCHEMA_LABEL_PATHS: Mapping[str, tuple[str, ...]] = {
    "role": ("common", "$defs", "role"),
    "decision": ("common", "$defs", "decision"),
    "grantor_type": (*_GRANTOR, "type"),
    "representation": (*_GRANTOR, "representation"),
    "policy_basis": ("consent", "properties", "policy_basis", "items", "properties", "code"),
    "evidence": ("consent", "properties", "source_document", "properties", "type"),
    "view_position": ("consent", "properties", "child_views", "properties", "position"),
    "audit_action": (*_AUDIT, "action"),
    "audit_outcome": (*_AUDIT, "outcome"),
    "object_type": (*_AUDIT, "object", "properties", "type"),
    "decision_basis": (*_AUDIT, "decision", "properties", "basis"),
}


# --- codings ------------------------------------------------------------------------------------


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


def label_of(kind: str, code: str) -> Text:
    return labels(kind).get(code, (code, code))


# --- references ---------------------------------------------------------------------------------


def identified(resource_type: str, system: str, value: str, display: str | None = None) -> Json:
    """A logical reference: the hub has no FHIR endpoint, so resources are named by identifier."""
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


class Contained:
    """The resources a Consent or AuditEvent carries inside itself, each added once.

    An actor that names both a person and an agency, or a role, is a ``PractitionerRole``:
    FHIR's way to say "this person, at this agency, in this role" (a role alone means anyone
    holding it). A bare agency or person is a logical reference and needs nothing contained.
    """

    def __init__(self) -> None:
        self.resources: list[Json] = []
        self._ids: dict[tuple[Any, ...], str] = {}

    def add(self, key: tuple[Any, ...], resource: Json) -> Json:
        """Contain ``resource`` (once per ``key``) and return the local reference to it."""
        local_id = self._ids.get(key)
        if local_id is None:
            local_id = self._ids[key] = f"{resource['resourceType'].lower()}-{len(self._ids) + 1}"
            self.resources.append(
                {
                    "resourceType": resource["resourceType"],
                    "id": local_id,
                    **{k: v for k, v in resource.items() if k != "resourceType"},
                }
            )
        return {"reference": f"#{local_id}", "type": resource["resourceType"]}

    def actor(self, actor: ActorRef, *, with_role: bool = True) -> Json | None:
        """A reference to ``actor``; ``with_role=False`` leaves the role to the caller (a
        provision actor states it in ``role``) and returns None for a role alone."""
        role = actor.role if with_role else None
        if role is None and (actor.agency_id is None or actor.person_id is None):
            if actor.person_id is not None:
                return identified("Practitioner", PERSON, actor.person_id)
            if actor.agency_id is not None:
                return identified("Organization", AGENCY, actor.agency_id)
            return None
        resource: Json = {"resourceType": "PractitionerRole"}
        if actor.person_id is not None:
            resource["practitioner"] = identified("Practitioner", PERSON, actor.person_id)
        if actor.agency_id is not None:
            resource["organization"] = identified("Organization", AGENCY, actor.agency_id)
        if role is not None:
            resource["code"] = [concept(ROLE, role, "role")]
        return self.add(("actor", actor.agency_id, actor.person_id, role), resource)

    def attach(self, resource: Json) -> Json:
        """``resource`` with the contained list, if anything was contained."""
        if self.resources:
            resource["contained"] = self.resources
        return resource
