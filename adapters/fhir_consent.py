"""FHIR ``Consent`` ⇄ ``consent/1``.

Written by :mod:`adapters.fhir_consent_write`, which the hub's own export uses too, so a
Consent the hub wrote reads back here and one written here reads like the hub's: subject by
``urn:puente:child`` identifier, grantor with the ``grantor-type`` and
``grantor-representation`` extensions, a relative as a contained RelatedPerson
(``urn:puente:related-person`` = ``<child id>/<person_ref>``), agencies and people as logical
references (a contained PractitionerRole when a person acts at an agency or in a role),
``regulatoryBasis`` for the policy basis, ``securityLabel`` for data categories, and each
provision's own decision in the ``provision-decision`` extension (R5 provisions only flip
their parent's). Revocation and the child's views ride in the ``consent-revocation`` and
``child-views`` extensions; the views' free-text summary and who heard them stay in Puente
and are not written. ``recorded_at`` keeps only its date (``Consent.date``), so it is not read back.

A period given by dates only (``"start": "2024-03-01"``, as FHIR allows) means those days
whole: from the start of its first day to the end of its last, in Mexico's central time
(UTC−06:00, :data:`DAY_OFFSET`), as ``consent/1`` states instants with their offset.

R4 Consents are read too: ``patient``, ``performer`` (the grantor), ``policyRule``, and one
base ``provision`` whose ``type`` is the decision, whose actors are the grantees and whose
nested provisions state their own ``type``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from adapters import fhir_terms as t
from adapters.base import Problem

Resolve = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]

#: The offset a date-only period is read in: Mexico's central time (no daylight saving).
DAY_OFFSET = "-06:00"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _period(period: Any) -> dict[str, Any]:
    """A Period as ``consent/1`` states it: a date alone is the start of that day (``start``)
    or its end (``end``)."""
    found = dict(period) if isinstance(period, Mapping) else {}
    for name, time in (("start", "00:00:00"), ("end", "23:59:59")):
        value = found.get(name)
        if isinstance(value, str) and _DATE.match(value):
            found[name] = f"{value}T{time}{DAY_OFFSET}"
    return t.compact(found)


class _Actors:
    """Reads actors from references: logical ones, and those to contained resources."""

    def __init__(self, resource: Mapping[str, Any]) -> None:
        self.contained = {
            c.get("id"): c for c in t.as_list(resource.get("contained")) if isinstance(c, Mapping)
        }

    def resolve(self, reference: Any) -> Mapping[str, Any] | None:
        if isinstance(reference, Mapping):
            target = reference.get("reference")
            if isinstance(target, str) and target.startswith("#"):
                return self.contained.get(target[1:])
        return None

    def actor(self, reference: Any) -> dict[str, Any]:
        target = self.resolve(reference)
        if target is not None and target.get("resourceType") == "PractitionerRole":
            return t.compact(
                {
                    "agency_id": t.reference_identifier(target.get("organization"), t.AGENCY),
                    "person_id": t.reference_identifier(target.get("practitioner"), t.PERSON),
                    "role": t.code_in(target.get("code"), t.ROLE),
                }
            )
        return t.compact(
            {
                "agency_id": t.reference_identifier(reference, t.AGENCY),
                "person_id": t.reference_identifier(reference, t.PERSON),
            }
        )


def read_consent(
    resource: Mapping[str, Any],
    child_id: str | None,
    person_ref_of: Resolve,
) -> tuple[dict[str, Any], list[Problem]]:
    """The consent/1 data of a Consent (R4 or R5) and what could not be read.

    ``child_id`` is the hub child id of the Consent's Patient when the Bundle holds it;
    ``person_ref_of`` finds the RelatedPerson a grantor reference points to in the Bundle.
    """
    problems: list[Problem] = []
    actors = _Actors(resource)
    r4 = "decision" not in resource and isinstance(resource.get("provision"), Mapping)
    subject = resource.get("patient") if r4 else resource.get("subject")
    child_id = child_id or t.reference_identifier(subject, t.CHILD)
    if child_id is None:
        problems.append(
            Problem(
                "/child_id",
                "el Consent no nombra a la niña, niño o adolescente por su identificador del "
                f"nodo ({t.CHILD}): envíe primero su expediente y agregue ese identificador al "
                "Patient",
                "the Consent does not name the child by hub id "
                f"({t.CHILD}): push the case record first and add that identifier to the Patient",
            )
        )
    status = resource.get("status")
    data: dict[str, Any] = {
        "id": t.identifier_value(resource, t.CONSENT),
        "status": t.CONSENT_STATUS_BACK.get(str(status), status),
        "child_id": child_id,
    }
    grantors = resource.get("performer") if r4 else resource.get("grantor")
    data["grantor"] = _grantor(
        next(iter(t.as_list(grantors)), None), resource, actors, person_ref_of, problems
    )
    base = resource.get("provision") if r4 else resource
    base = base if isinstance(base, Mapping) else {}
    data["decision"] = base.get("type") if r4 else resource.get("decision")
    data["period"] = _period(base.get("period"))
    if r4:
        data["grantee"] = [_provision_actor(a, actors) for a in t.as_list(base.get("actor"))]
        data["policy_basis"] = [
            {"code": code} for code in t.codes_in(resource.get("policyRule"), t.POLICY_BASIS)
        ]
    else:
        data["grantee"] = [actors.actor(g) for g in t.as_list(resource.get("grantee"))]
        data["recorded_by"] = actors.actor(next(iter(t.as_list(resource.get("manager"))), None))
        data["policy_basis"] = [
            t.compact({"code": t.code_in(basis, t.POLICY_BASIS), "reference": basis.get("text")})
            for basis in t.as_list(resource.get("regulatoryBasis"))
            if isinstance(basis, Mapping) and t.code_in(basis, t.POLICY_BASIS)
        ]
    data["provision"] = [
        _provision(p, data["decision"], actors, r4, problems)
        for p in t.as_list(base.get("provision"))
        if isinstance(p, Mapping)
    ]
    data["child_views"] = _child_views(resource)
    data["source_document"] = _source(resource)
    data["revocation"] = _revocation(resource, actors)
    return t.compact(data), problems


def _grantor(
    reference: Any,
    resource: Mapping[str, Any],
    actors: _Actors,
    person_ref_of: Resolve,
    problems: list[Problem],
) -> dict[str, Any]:
    if not isinstance(reference, Mapping):
        return {}
    kind = t.code_in(t.extension_value(reference, t.GRANTOR_TYPE_EXT, "Coding"), t.GRANTOR_TYPE)
    target = actors.resolve(reference) or person_ref_of(reference)
    target_type = (target or {}).get("resourceType") or reference.get("type")
    if kind is None and target_type == "Patient":
        kind = "child"
    elif kind is None and target_type == "RelatedPerson":
        kind = "parent" if _is_parent(target) else "guardian"
    if kind is None:
        problems.append(
            Problem(
                "resource:Consent.grantor",
                "no se sabe quién otorgó: falta la extensión grantor-type",
                "who granted is unknown: the grantor-type extension is missing",
            )
        )
    related = None
    if target is not None and target.get("resourceType") == "RelatedPerson":
        ref = t.identifier_value(target, t.RELATED_PERSON)
        related = ref.rsplit("/", 1)[-1] if ref else target.get("id")
    verified = next(
        (
            v.get("verified")
            for v in t.as_list(resource.get("verification"))
            if isinstance(v, Mapping)
        ),
        None,
    )
    representation = t.extension_value(reference, t.REPRESENTATION_EXT, "Coding")
    authority = {}
    if kind not in ("child", "parent", "guardian"):
        found = actors.actor(reference)
        authority = {k: v for k, v in found.items() if k in ("agency_id", "person_id")}
    return t.compact(
        {
            "type": kind,
            "representation": t.code_in(representation, t.REPRESENTATION),
            "related_person_ref": related,
            **authority,
            "identity_verified": verified,
        }
    )


_PARENTS = frozenset({"mother", "father", "stepmother", "stepfather"})


def _is_parent(person: Mapping[str, Any] | None) -> bool:
    """Whether a RelatedPerson is the child's parent (else a grantor is a guardian)."""
    concepts = (person or {}).get("relationship")
    own = t.codes_in(concepts, t.RELATIONSHIP)
    roles = [t.ROLE_CODE_BACK.get(code, "") for code in t.codes_in(concepts, t.V3_ROLE)]
    return any(code in _PARENTS for code in own + roles)


def _provision_actor(actor: Any, actors: _Actors) -> dict[str, Any]:
    if not isinstance(actor, Mapping):
        return {}
    found = actors.actor(actor.get("reference"))
    role = t.code_in(actor.get("role"), t.ROLE)
    return t.compact({**found, "role": role or found.get("role")})


def _provision(
    provision: Mapping[str, Any],
    parent_decision: Any,
    actors: _Actors,
    r4: bool,
    problems: list[Problem],
) -> dict[str, Any]:
    stated = t.extension_value(provision, t.PROVISION_DECISION, "Code")
    if r4:
        decision = provision.get("type") or stated
    else:
        # An R5 provision is an exception to its parent: the opposite decision.
        decision = stated or {"permit": "deny", "deny": "permit"}.get(str(parent_decision))
    actions = t.codes_in(provision.get("action"), t.ACTION) or [
        shared
        for code in t.codes_in(provision.get("action"), t.HL7_CONSENT_ACTION)
        for shared in {"access": ["read"], "disclose": ["refer"]}.get(code, [])
    ]
    return t.compact(
        {
            "decision": decision,
            "period": _period(provision.get("period")),
            "actor": [_provision_actor(a, actors) for a in t.as_list(provision.get("actor"))],
            "action": actions,
            "purpose": t.codes_in(provision.get("purpose"), t.PURPOSE),
            "data_category": t.codes_in(provision.get("securityLabel"), t.DATA_CATEGORY),
            "record_ids": [
                value
                for d in t.as_list(provision.get("data"))
                if (value := t.reference_identifier(d.get("reference"), t.RECORD))
            ],
            "provision": [
                _provision(p, decision, actors, r4, problems)
                for p in t.as_list(provision.get("provision"))
                if isinstance(p, Mapping)
            ],
        }
    )


def _parts(resource: Mapping[str, Any], url: str) -> dict[str, Mapping[str, Any]]:
    found = t.extensions(resource, url)
    parts = t.as_list(found[0].get("extension")) if found else []
    return {p["url"]: p for p in parts if isinstance(p, Mapping) and "url" in p}


def _child_views(resource: Mapping[str, Any]) -> dict[str, Any]:
    parts = _parts(resource, t.CHILD_VIEWS)
    if not parts:
        return {}
    views = parts.get("views", {}).get("valueIdentifier") or {}
    return t.compact(
        {
            "views_id": views.get("value"),
            "heard_on": parts.get("heardOn", {}).get("valueDate"),
            "position": t.code_in(parts.get("position", {}).get("valueCoding"), t.VIEW_POSITION),
        }
    )


def _revocation(resource: Mapping[str, Any], actors: _Actors) -> dict[str, Any]:
    parts = _parts(resource, t.REVOCATION)
    if not parts:
        return {}
    by = actors.actor(parts.get("revokedBy", {}).get("valueReference"))
    role = t.code_in(parts.get("revokedByRole", {}).get("valueCoding"), t.ROLE)
    return t.compact(
        {
            "revoked_at": parts.get("revokedAt", {}).get("valueDateTime"),
            "revoked_by": t.compact({**by, "role": role}),
            "reason": parts.get("reason", {}).get("valueString"),
        }
    )


def _source(resource: Mapping[str, Any]) -> dict[str, Any]:
    attachment = next(iter(t.as_list(resource.get("sourceAttachment"))), None)
    if not isinstance(attachment, Mapping):
        return {}
    kind = t.code_in(t.extension_value(attachment, t.EVIDENCE_TYPE, "Coding"), t.EVIDENCE)
    reference = next(iter(t.as_list(resource.get("sourceReference"))), None)
    return t.compact(
        {
            "type": kind,
            "reference": t.reference_identifier(reference, t.EVIDENCE_REFERENCE),
            "sha256": t.extension_value(attachment, t.SHA256, "String"),
        }
    )
