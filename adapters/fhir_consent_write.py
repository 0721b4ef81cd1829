"""A ``consent/1`` document → an R5 ``Consent``: the one writer of FHIR consents.

The ``fhir`` adapter writes its Bundles' Consents with it and the hub answers
``GET /v1/consents/{id}?format=fhir`` with it (``exchange/fhir_export.py``);
:mod:`adapters.fhir_consent` reads the result back and says what is not carried. The output is
plain JSON (``resourceType`` first) that ``fhir.resources`` (R5) accepts. Ids are identifiers
(``urn:puente:*``); references are logical or to contained resources.

Two places where Puente says more than R5 can:

- **Provision decisions.** In R5 a provision has no decision of its own: each level is an
  exception that flips its parent (base ``deny``, provision = permit, nested = deny …). A Puente
  provision states its decision (see ``docs/consent.md``). Every provision therefore carries
  its decision in the ``provision-decision`` extension; where that decision is *not* the flip
  R5 would infer (a ``permit`` inside a ``permit``) the extension is a ``modifierExtension``,
  so an R5 reader that does not know it must not apply the provision rather than apply it
  backwards. Where it is the flip, a plain ``extension`` suffices: both readings agree.
- **Revocation** has no R5 element: the consent is ``inactive`` and the ``consent-revocation``
  extension says when, by whom and why.

Codes, actions and record ids are written in the document's order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters import fhir_terms as t
from adapters.fhir_contained import Contained

Json = dict[str, Any]

CONSENT_POLICY = "https://schemas.puente.mx/consent/1"
"""``policyBasis.url``: the rules the hub enforces are those of the ``consent/1`` document."""

PATIENT_CONSENT = {"system": t.LOINC, "code": "59284-0", "display": "Patient Consent"}

_FHIR_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


def write_consent(
    consent: Mapping[str, Any],
    *,
    subject: Mapping[str, Any] | None = None,
    local_id: str | None = None,
    meta_source: str | None = None,
) -> Json:
    """The R5 Consent of ``consent`` (the data of a ``consent/1`` document).

    ``subject`` references the child's Patient (by default by its ``urn:puente:child``
    identifier); ``local_id`` (the sending system's id) becomes a ``urn:puente:local-id``
    identifier; ``meta_source`` (the hub's public origin) becomes ``meta.source``. A revoked
    consent is ``inactive`` whatever its stated status.
    """
    contained = Contained()
    subject = dict(subject or t.child_reference(str(consent.get("child_id"))))
    consent_id = consent.get("id")
    identifiers = [
        {"system": system, "value": value}
        for system, value in ((t.CONSENT, consent_id), (t.LOCAL_ID, local_id))
        if value
    ]
    revocation = consent.get("revocation")
    status = "inactive" if revocation else t.CONSENT_STATUS.get(str(consent.get("status")))
    # Contained resources are numbered in the order they appear: extensions come first.
    extensions = _extensions(consent, contained)
    grantor = _grantor(consent, subject, contained)
    verified = (consent.get("grantor") or {}).get("identity_verified")
    grantees = [contained.actor(grantee) for grantee in consent.get("grantee") or []]
    recorder = consent.get("recorded_by")
    recorded_at = consent.get("recorded_at")
    resource = {
        "resourceType": "Consent",
        "id": consent_id if isinstance(consent_id, str) and _FHIR_ID.match(consent_id) else None,
        "meta": {"source": meta_source} if meta_source else None,
        "language": "es",  # every display is Spanish, with its English translation
        "extension": extensions,
        "identifier": identifiers,
        "status": status,
        "category": [{"coding": [dict(PATIENT_CONSENT)]}],
        "subject": subject,
        # The day as written where it was recorded, not the UTC day.
        "date": str(recorded_at)[:10] if recorded_at else None,
        "period": consent.get("period"),
        "grantor": [grantor],
        "grantee": [grantee for grantee in grantees if grantee is not None],
        # R5 has no recorder; the consent officer who recorded it manages it afterwards.
        "manager": [contained.actor(recorder)] if recorder else None,
        **_source(consent.get("source_document")),
        "policyBasis": {"url": CONSENT_POLICY},
        "regulatoryBasis": [_regulatory_basis(b) for b in consent.get("policy_basis") or []],
        "verification": [_verification(verified, grantor)] if verified is not None else None,
        "decision": consent.get("decision"),
        "provision": [
            _provision(p, consent.get("decision"), contained)
            for p in consent.get("provision") or []
        ],
    }
    return contained.attach(t.compact(resource))


def _grantor(consent: Mapping[str, Any], subject: Json, contained: Contained) -> Json:
    """Who granted: the child (the subject itself), a relative (a contained RelatedPerson of
    the child), or an authority (its agency and officer), named by its kind."""
    grantor = consent.get("grantor") or {}
    kind = str(grantor.get("type"))
    if kind == "child":
        reference = dict(subject)
    elif kind in ("parent", "guardian"):
        person: Json = {"resourceType": "RelatedPerson", "patient": dict(subject)}
        if grantor.get("related_person_ref"):
            # The reference names the relative within the child's record, hence per child.
            value = f"{consent.get('child_id')}/{grantor['related_person_ref']}"
            person["identifier"] = [{"system": t.RELATED_PERSON, "value": value}]
        reference = contained.add(("grantor",), person)
    else:
        reference = contained.actor(grantor, with_role=False) or {}
    reference["display"] = t.label_of("grantor_type", kind)[0]
    reference["extension"] = [
        t.extension(t.GRANTOR_TYPE_EXT, "Coding", t.coding(t.GRANTOR_TYPE, kind, "grantor_type"))
    ]
    if grantor.get("representation"):
        coding = t.coding(t.REPRESENTATION, grantor["representation"], "representation")
        reference["extension"].append(t.extension(t.REPRESENTATION_EXT, "Coding", coding))
    return reference


def _verification(verified: bool, grantor: Json) -> Json:
    text = (
        "Verificación de la identidad de quien otorga",
        "Verification of the grantor's identity",
    )
    verification: Json = {
        "verified": verified,
        "verificationType": {
            **t.concept(t.VERIFICATION, "grantor_identity"),
            "text": text[0],
            "_text": t.translated(*text),
        },
    }
    if grantor.get("type") in ("Patient", "RelatedPerson"):  # what verifiedWith may name
        verification["verifiedWith"] = {k: v for k, v in grantor.items() if k != "extension"}
    return verification


def _regulatory_basis(basis: Mapping[str, Any]) -> Json:
    concept = t.concept(t.POLICY_BASIS, basis["code"], "policy_basis")
    if basis.get("reference"):
        concept["text"] = basis["reference"]
    return concept


def _source(source: Any) -> Json:
    """The evidence: an attachment naming its kind and digest, and the document by folio.

    The digest is SHA-256, which ``Attachment.hash`` (SHA-1) cannot hold: it is an extension.
    """
    if not isinstance(source, Mapping):
        return {}
    kind, reference = source["type"], source.get("reference")
    spanish, english = t.label_of("evidence", kind)
    extensions = [t.extension(t.EVIDENCE_TYPE, "Coding", t.coding(t.EVIDENCE, kind, "evidence"))]
    if source.get("sha256"):
        extensions.append(t.extension(t.SHA256, "String", source["sha256"]))
    title = (
        (f"{spanish} {reference}", f"{english} {reference}") if reference else (spanish, english)
    )
    written: Json = {
        "sourceAttachment": [
            {"extension": extensions, "title": title[0], "_title": t.translated(*title)}
        ]
    }
    if reference:
        written["sourceReference"] = [
            t.identified("DocumentReference", t.EVIDENCE_REFERENCE, reference, spanish)
        ]
    return written


def _extensions(consent: Mapping[str, Any], contained: Contained) -> list[Json]:
    extensions = []
    revocation = consent.get("revocation")
    if revocation:
        parts = [t.extension("revokedAt", "DateTime", revocation["revoked_at"])]
        by = revocation.get("revoked_by") or {}
        reference = contained.actor(by, with_role=False)
        if reference is not None:
            parts.append(t.extension("revokedBy", "Reference", reference))
        if by.get("role"):
            role = t.coding(t.ROLE, by["role"], "role")
            parts.append(t.extension("revokedByRole", "Coding", role))
        if revocation.get("reason"):
            parts.append(t.extension("reason", "String", revocation["reason"]))
        extensions.append({"url": t.REVOCATION, "extension": parts})
    views = consent.get("child_views")
    if views:
        # The child's position and when it was heard; the free-text summary stays in Puente.
        position = t.coding(t.VIEW_POSITION, views["position"], "view_position")
        parts = [
            t.extension("heardOn", "Date", views["heard_on"]),
            t.extension("position", "Coding", position),
        ]
        if views.get("views_id"):
            identifier = {"system": t.CHILD_VIEWS_ID, "value": views["views_id"]}
            parts.append(t.extension("views", "Identifier", identifier))
        extensions.append({"url": t.CHILD_VIEWS, "extension": parts})
    return extensions


def _provision(provision: Mapping[str, Any], parent_decision: Any, contained: Contained) -> Json:
    """One provision and those nested in it (see the module docstring on decisions)."""
    decision = provision.get("decision")
    stated = [t.extension(t.PROVISION_DECISION, "Code", decision)]
    flips = decision != parent_decision
    return t.compact(
        {
            "extension": stated if flips else None,
            "modifierExtension": None if flips else stated,
            "period": provision.get("period"),
            "actor": [_provision_actor(actor, contained) for actor in provision.get("actor") or []],
            "action": [_action(code) for code in provision.get("action") or []],
            # A category is a sensitivity class of fields in any record (``x-category``) and
            # redaction keeps or drops fields by it: R5's securityLabel ("privacy tags which
            # define which resources are controlled") says exactly that. documentType would say
            # which kind of document (a schema) and data which instances: those are record_ids.
            "securityLabel": [
                t.coding(t.DATA_CATEGORY, code, "data_category")
                for code in provision.get("data_category") or []
            ],
            "purpose": [
                t.coding(t.PURPOSE, code, "purpose") for code in provision.get("purpose") or []
            ],
            "data": [
                {
                    "meaning": "instance",
                    "reference": {"identifier": {"system": t.RECORD, "value": record_id}},
                }
                for record_id in provision.get("record_ids") or []
            ],
            "provision": [
                _provision(nested, decision, contained)
                for nested in provision.get("provision") or []
            ],
        }
    )


def _provision_actor(actor: Mapping[str, Any], contained: Contained) -> Json:
    return t.compact(
        {
            "role": t.concept(t.ROLE, actor["role"], "role") if actor.get("role") else None,
            "reference": contained.actor(actor, with_role=False),
        }
    )


def _action(code: str) -> Json:
    """Puente's action, and the nearest HL7 consent action for readers that know only HL7's:
    reading is ``access``; referring and transferring both hand data to another party,
    ``disclose``."""
    action = t.concept(t.ACTION, code, "action")
    action["coding"].append(t.coding(t.HL7_CONSENT_ACTION, t.HL7_ACTION[code]))
    return action
