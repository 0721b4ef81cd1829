"""A ``consent/1`` envelope → an R5 ``Consent`` in the shape the hub exports (see
:mod:`adapters.fhir_consent`, which reads it back, for the shape and what is not carried)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters import fhir_terms as t

CONSENT_POLICY = "https://schemas.puente.mx/consent/1"
"""``policyBasis.url``: the rules the hub enforces are those of the ``consent/1`` document."""

_FHIR_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


class _Contained:
    """Resources carried inside the Consent, each once (as the hub writes them)."""

    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = []
        self._ids: dict[tuple[Any, ...], str] = {}

    def add(self, key: tuple[Any, ...], resource: dict[str, Any]) -> dict[str, Any]:
        local = self._ids.get(key)
        if local is None:
            local = self._ids[key] = f"{resource['resourceType'].lower()}-{len(self._ids) + 1}"
            self.resources.append(
                {
                    "resourceType": resource["resourceType"],
                    "id": local,
                    **{k: v for k, v in resource.items() if k != "resourceType"},
                }
            )
        return {"reference": f"#{local}", "type": resource["resourceType"]}

    def actor(self, actor: Mapping[str, Any], *, with_role: bool = True) -> dict[str, Any] | None:
        agency, person = actor.get("agency_id"), actor.get("person_id")
        role = actor.get("role") if with_role else None
        if role is None and (agency is None or person is None):
            if person is not None:
                return t.identified("Practitioner", t.PERSON, person)
            if agency is not None:
                return t.identified("Organization", t.AGENCY, agency)
            return None
        resource: dict[str, Any] = {"resourceType": "PractitionerRole"}
        if person is not None:
            resource["practitioner"] = t.identified("Practitioner", t.PERSON, person)
        if agency is not None:
            resource["organization"] = t.identified("Organization", t.AGENCY, agency)
        if role is not None:
            resource["code"] = [t.concept(t.ROLE, role)]
        return self.add(("actor", agency, person, role), resource)


def write_consent(envelope: Mapping[str, Any], subject: Mapping[str, Any]) -> dict[str, Any]:
    """The R5 Consent of a consent/1 envelope; ``subject`` references the child's Patient."""
    consent = envelope.get("data") or {}
    contained = _Contained()
    identifiers = [{"system": t.LOCAL_ID, "value": envelope.get("local_id")}]
    if consent.get("id"):
        identifiers.insert(0, {"system": t.CONSENT, "value": consent["id"]})
    revoked = "revocation" in consent
    grantor = _write_grantor(consent, subject, contained)
    grantees = [contained.actor(g) for g in consent.get("grantee") or []]
    recorder = consent.get("recorded_by")
    resource = {
        "resourceType": "Consent",
        "id": consent["id"] if _FHIR_ID.match(str(consent.get("id", ""))) else None,
        "extension": _write_extensions(consent, contained),
        "identifier": identifiers,
        "status": "inactive" if revoked else t.CONSENT_STATUS.get(consent.get("status", "")),
        "category": [t.concept(t.LOINC, "59284-0")],
        "subject": dict(subject),
        "date": str(consent["recorded_at"])[:10] if consent.get("recorded_at") else None,
        "period": consent.get("period"),
        "grantor": [grantor],
        "grantee": [g for g in grantees if g is not None],
        "manager": [contained.actor(recorder)] if recorder else None,
        **_write_source(consent.get("source_document")),
        "policyBasis": {"url": CONSENT_POLICY},
        "regulatoryBasis": [
            t.compact({**t.concept(t.POLICY_BASIS, b["code"]), "text": b.get("reference")})
            for b in consent.get("policy_basis") or []
        ],
        "verification": [
            {
                "verified": consent["grantor"]["identity_verified"],
                "verificationType": t.concept("urn:puente:verification", "grantor_identity"),
            }
        ]
        if "identity_verified" in (consent.get("grantor") or {})
        else None,
        "decision": consent.get("decision"),
        "provision": [
            _write_provision(p, consent.get("decision"), contained)
            for p in consent.get("provision") or []
        ],
    }
    resource = t.compact(resource)
    if contained.resources:
        resource["contained"] = contained.resources
    return resource


def _write_grantor(
    consent: Mapping[str, Any], subject: Mapping[str, Any], contained: _Contained
) -> dict[str, Any]:
    grantor = consent.get("grantor") or {}
    kind = grantor.get("type")
    if kind == "child":
        reference: dict[str, Any] = dict(subject)
    elif kind in ("parent", "guardian"):
        person: dict[str, Any] = {"resourceType": "RelatedPerson", "patient": dict(subject)}
        if grantor.get("related_person_ref"):
            value = f"{consent.get('child_id')}/{grantor['related_person_ref']}"
            person["identifier"] = [{"system": t.RELATED_PERSON, "value": value}]
        reference = contained.add(("grantor",), person)
    else:
        reference = contained.actor(grantor) or {}
    reference["extension"] = [
        t.extension(t.GRANTOR_TYPE_EXT, "Coding", t.coding(t.GRANTOR_TYPE, str(kind)))
    ]
    if grantor.get("representation"):
        coding = t.coding(t.REPRESENTATION, grantor["representation"])
        reference["extension"].append(t.extension(t.REPRESENTATION_EXT, "Coding", coding))
    return reference


def _write_provision(
    provision: Mapping[str, Any], parent_decision: Any, contained: _Contained
) -> dict[str, Any]:
    decision = provision.get("decision")
    # Where the decision is not the flip R5 infers, an R5 reader that does not know the
    # extension must not apply the provision: a modifier extension (as the hub writes it).
    stated = [t.extension(t.PROVISION_DECISION, "Code", decision)]
    flips = decision != parent_decision
    actors = []
    for actor in provision.get("actor") or []:
        reference = contained.actor(actor, with_role=False)
        actors.append(
            t.compact(
                {
                    "role": t.concept(t.ROLE, actor["role"]) if actor.get("role") else None,
                    "reference": reference,
                }
            )
        )
    return t.compact(
        {
            "extension": stated if flips else None,
            "modifierExtension": None if flips else stated,
            "period": provision.get("period"),
            "actor": actors,
            "action": [
                {"coding": [t.coding(t.ACTION, a), t.coding(t.HL7_CONSENT_ACTION, t.HL7_ACTION[a])]}
                for a in provision.get("action") or []
            ],
            "securityLabel": [
                t.coding(t.DATA_CATEGORY, c) for c in provision.get("data_category") or []
            ],
            "purpose": [t.coding(t.PURPOSE, p) for p in provision.get("purpose") or []],
            "data": [
                {
                    "meaning": "instance",
                    "reference": {"identifier": {"system": t.RECORD, "value": rid}},
                }
                for rid in provision.get("record_ids") or []
            ],
            "provision": [
                _write_provision(p, decision, contained) for p in provision.get("provision") or []
            ],
        }
    )


def _write_extensions(consent: Mapping[str, Any], contained: _Contained) -> list[dict[str, Any]]:
    extensions = []
    revocation = consent.get("revocation")
    if revocation:
        parts: list[dict[str, Any]] = [
            t.extension("revokedAt", "DateTime", revocation["revoked_at"])
        ]
        by = revocation.get("revoked_by") or {}
        reference = contained.actor(by, with_role=False)
        if reference is not None:
            parts.append(t.extension("revokedBy", "Reference", reference))
        if by.get("role"):
            parts.append(t.extension("revokedByRole", "Coding", t.coding(t.ROLE, by["role"])))
        if revocation.get("reason"):
            parts.append(t.extension("reason", "String", revocation["reason"]))
        extensions.append({"url": t.REVOCATION, "extension": parts})
    views = consent.get("child_views")
    if views:
        parts = [
            t.extension("heardOn", "Date", views["heard_on"]),
            t.extension("position", "Coding", t.coding(t.VIEW_POSITION, views["position"])),
        ]
        if views.get("views_id"):
            identifier = {"system": "urn:puente:child-views", "value": views["views_id"]}
            parts.append(t.extension("views", "Identifier", identifier))
        extensions.append({"url": t.CHILD_VIEWS, "extension": parts})
    return extensions


def _write_source(source: Any) -> dict[str, Any]:
    if not isinstance(source, Mapping):
        return {}
    extensions = [t.extension(t.EVIDENCE_TYPE, "Coding", t.coding(t.EVIDENCE, source["type"]))]
    if source.get("sha256"):
        extensions.append(t.extension(t.SHA256, "String", source["sha256"]))
    written: dict[str, Any] = {
        "sourceAttachment": [{"extension": extensions, "title": source["type"]}]
    }
    if source.get("reference"):
        written["sourceReference"] = [
            t.identified("DocumentReference", "urn:puente:evidence-reference", source["reference"])
        ]
    return written
