"""Consents as FHIR R5 ``Consent`` and audit entries as FHIR R5 ``AuditEvent`` resources.

Both return plain JSON dicts (``resourceType`` first) that ``fhir.resources`` 8.x (R5) accepts;
the tests check them with it. Codes and references are built in :mod:`exchange.fhir_terms`;
the audit mapping lives in :mod:`exchange.fhir_audit` and is exported from here.

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
"""

from __future__ import annotations

import re
from typing import Any

from consent._time import format_instant
from consent.model import Consent, Grantor, Provision
from consent.parts import ActorRef, ordered
from consent.vocabulary import ACTIONS, CATEGORIES, PURPOSES
from exchange import fhir_terms as t
from exchange.fhir_audit import audit_entry_to_fhir

__all__ = ["audit_entry_to_fhir", "consent_to_fhir"]

Json = dict[str, Any]

CONSENT_POLICY = "https://schemas.puente.mx/consent/1"
"""``policyBasis.url``: the rules the hub enforces are those of the ``consent/1`` document."""

_FHIR_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_LOINC = "http://loinc.org"
_CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"

#: R5 Consent.status spells the hub's statuses with hyphens.
_CONSENT_STATUS = {
    "draft": "draft",
    "active": "active",
    "inactive": "inactive",
    "not_done": "not-done",
    "entered_in_error": "entered-in-error",
}

#: The nearest HL7 consent action, for readers that know only HL7's: reading is ``access``,
#: referring and transferring both hand data to another party, ``disclose``.
_HL7_ACTION = {"read": "access", "refer": "disclose", "transfer": "disclose"}


# --- Consent ------------------------------------------------------------------------------------


def consent_to_fhir(consent: Consent, *, hub_base_url: str | None = None) -> dict[str, Any]:
    """The FHIR R5 ``Consent`` resource of ``consent``.

    ``hub_base_url`` (the hub's public origin) becomes ``meta.source``. A revoked consent is
    ``inactive`` whatever its stored status. Ids are identifiers (``urn:puente:*``); the hub
    serves no FHIR endpoint, so references are logical or to contained resources.
    """
    contained = t.Contained()
    subject = t.child_reference(consent.child_id)
    resource: Json = {"resourceType": "Consent"}
    if consent.id is not None and _FHIR_ID.match(consent.id):
        resource["id"] = consent.id
    if hub_base_url:
        resource["meta"] = {"source": hub_base_url}
    resource["language"] = "es"
    extensions = _consent_extensions(consent, contained)
    if extensions:
        resource["extension"] = extensions
    if consent.id is not None:
        resource["identifier"] = [{"system": t.CONSENT, "value": consent.id}]
    revoked = consent.revocation is not None
    resource["status"] = "inactive" if revoked else _CONSENT_STATUS[consent.status]
    resource["category"] = [
        {"coding": [{"system": _LOINC, "code": "59284-0", "display": "Patient Consent"}]}
    ]
    resource["subject"] = subject
    if consent.recorded_at is not None:
        resource["date"] = consent.recorded_at.date().isoformat()
    period = consent.period.to_json()
    if period:
        resource["period"] = period
    grantor = _grantor(consent.grantor, consent.child_id, subject, contained)
    resource["grantor"] = [grantor]
    grantees = [contained.actor(grantee) for grantee in consent.grantees]
    if grantees:
        resource["grantee"] = grantees
    if consent.recorded_by is not None:
        # R5 has no recorder; the consent officer who recorded it manages it afterwards.
        resource["manager"] = [contained.actor(consent.recorded_by)]
    if consent.source_document is not None:
        resource.update(_source(consent))
    resource["policyBasis"] = {"url": CONSENT_POLICY}
    if consent.policy_basis:
        resource["regulatoryBasis"] = [
            _regulatory_basis(b.code, b.reference) for b in consent.policy_basis
        ]
    if consent.grantor.identity_verified is not None:
        resource["verification"] = [
            _grantor_verification(consent.grantor.identity_verified, grantor)
        ]
    resource["decision"] = consent.decision
    if consent.provisions:
        resource["provision"] = [
            _provision(p, consent.decision, contained) for p in consent.provisions
        ]
    return contained.attach(resource)


def _grantor(grantor: Grantor, child_id: str, subject: Json, contained: t.Contained) -> Json:
    """Who granted: the child (the subject itself), a relative (a contained RelatedPerson of
    the child), or an authority (its agency and officer)."""
    if grantor.type == "child":
        reference = dict(subject)
    elif grantor.type in ("parent", "guardian"):
        person: Json = {"resourceType": "RelatedPerson", "patient": dict(subject)}
        if grantor.related_person_ref is not None:
            # The reference names the relative within the child's record, hence per child.
            person["identifier"] = [
                {"system": t.RELATED_PERSON, "value": f"{child_id}/{grantor.related_person_ref}"}
            ]
        reference = contained.add(("grantor",), person)
    elif grantor.agency_id is not None or grantor.person_id is not None:
        actor = ActorRef(agency_id=grantor.agency_id, person_id=grantor.person_id)
        reference = contained.actor(actor) or {}
    else:
        reference = {}
    reference["display"] = t.label_of("grantor_type", grantor.type)[0]
    extension = [
        {
            "url": t.extension_url("grantor-type"),
            "valueCoding": t.coding("urn:puente:grantor-type", grantor.type, "grantor_type"),
        }
    ]
    if grantor.representation is not None:
        extension.append(
            {
                "url": t.extension_url("grantor-representation"),
                "valueCoding": t.coding(
                    "urn:puente:representation", grantor.representation, "representation"
                ),
            }
        )
    reference["extension"] = extension
    return reference


def _grantor_verification(verified: bool, grantor: Json) -> Json:
    verification: Json = {
        "verified": verified,
        "verificationType": {
            **t.concept("urn:puente:verification", "grantor_identity"),
            "text": "Verificación de la identidad de quien otorga",
            "_text": t.translated(
                "Verificación de la identidad de quien otorga",
                "Verification of the grantor's identity",
            ),
        },
    }
    if grantor.get("type") in ("Patient", "RelatedPerson"):  # what verifiedWith may name
        verification["verifiedWith"] = {k: v for k, v in grantor.items() if k != "extension"}
    return verification


def _regulatory_basis(code: str, reference: str | None) -> Json:
    basis = t.concept("urn:puente:policy-basis", code, "policy_basis")
    if reference is not None:
        basis["text"] = reference
    return basis


def _source(consent: Consent) -> Json:
    """The evidence: an attachment naming its kind and digest, and the document by folio.

    The digest is SHA-256, which ``Attachment.hash`` (SHA-1) cannot hold: it is an extension.
    """
    source = consent.source_document
    assert source is not None
    spanish, english = t.label_of("evidence", source.type)
    if source.reference is not None:
        spanish, english = f"{spanish} {source.reference}", f"{english} {source.reference}"
    attachment: Json = {
        "extension": [
            {
                "url": t.extension_url("evidence-type"),
                "valueCoding": t.coding("urn:puente:evidence", source.type, "evidence"),
            }
        ],
        "title": spanish,
        "_title": t.translated(spanish, english),
    }
    if source.sha256 is not None:
        attachment["extension"].append(
            {"url": t.extension_url("sha256"), "valueString": source.sha256}
        )
    result: Json = {"sourceAttachment": [attachment]}
    if source.reference is not None:
        result["sourceReference"] = [
            t.identified(
                "DocumentReference",
                "urn:puente:evidence-reference",
                source.reference,
                t.label_of("evidence", source.type)[0],
            )
        ]
    return result


def _consent_extensions(consent: Consent, contained: t.Contained) -> list[Json]:
    extensions: list[Json] = []
    if consent.revocation is not None:
        revocation = consent.revocation
        parts: list[Json] = [
            {"url": "revokedAt", "valueDateTime": format_instant(revocation.revoked_at)}
        ]
        if revocation.revoked_by is not None:
            by = contained.actor(revocation.revoked_by, with_role=False)
            if by is not None:
                parts.append({"url": "revokedBy", "valueReference": by})
            if revocation.revoked_by.role is not None:
                parts.append(
                    {
                        "url": "revokedByRole",
                        "valueCoding": t.coding(t.ROLE, revocation.revoked_by.role, "role"),
                    }
                )
        if revocation.reason is not None:
            parts.append({"url": "reason", "valueString": revocation.reason})
        extensions.append({"url": t.extension_url("consent-revocation"), "extension": parts})
    views = consent.child_views
    if views is not None:
        # The child's position and when it was heard; the free-text summary stays in Puente.
        parts = [
            {"url": "heardOn", "valueDate": views.heard_on.isoformat()},
            {
                "url": "position",
                "valueCoding": t.coding(
                    "urn:puente:view-position", views.position, "view_position"
                ),
            },
        ]
        if views.id is not None:
            parts.append(
                {
                    "url": "views",
                    "valueIdentifier": {
                        "system": t.object_system("child_views"),
                        "value": views.id,
                    },
                }
            )
        extensions.append({"url": t.extension_url("child-views"), "extension": parts})
    return extensions


def _provision(provision: Provision, parent_decision: str, contained: t.Contained) -> Json:
    """One provision and those nested in it (see the module docstring on decisions)."""
    result: Json = {}
    decision = {"url": t.extension_url("provision-decision"), "valueCode": provision.decision}
    flips = provision.decision != parent_decision
    result["extension" if flips else "modifierExtension"] = [decision]
    period = provision.period.to_json()
    if period:
        result["period"] = period
    actors = [_provision_actor(actor, contained) for actor in provision.actors]
    if actors:
        result["actor"] = actors
    if provision.actions:
        result["action"] = [_action(code) for code in ordered(provision.actions, ACTIONS)]
    if provision.categories:
        # A category is a sensitivity class of fields in any record (``x-category``) and
        # redaction keeps or drops fields by it: R5's securityLabel ("privacy tags which define
        # which resources are controlled") says exactly that. documentType would say which
        # kind of document (a schema) and data which instances: those are record_ids below.
        result["securityLabel"] = [
            t.coding(t.DATA_CATEGORY, code, "data_category")
            for code in ordered(provision.categories, CATEGORIES)
        ]
    if provision.purposes:
        result["purpose"] = [
            t.coding(t.PURPOSE, code, "purpose") for code in ordered(provision.purposes, PURPOSES)
        ]
    if provision.record_ids:
        result["data"] = [
            {"meaning": "instance", "reference": {"identifier": {"system": t.RECORD, "value": rid}}}
            for rid in sorted(provision.record_ids)
        ]
    if provision.provisions:
        result["provision"] = [
            _provision(nested, provision.decision, contained) for nested in provision.provisions
        ]
    return result


def _provision_actor(actor: ActorRef, contained: t.Contained) -> Json:
    result: Json = {}
    if actor.role is not None:
        result["role"] = t.concept(t.ROLE, actor.role, "role")
    reference = contained.actor(actor, with_role=False)
    if reference is not None:
        result["reference"] = reference
    return result


def _action(code: str) -> Json:
    action = t.concept(t.ACTION, code, "action")
    action["coding"].append({"system": _CONSENT_ACTION, "code": _HL7_ACTION[code]})
    return action
