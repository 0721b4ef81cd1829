"""Consent documents (``consent/1``, after FHIR R5 Consent) as frozen values.

One class per object of the schema, field for field: :class:`Consent` (status, subject
``child_id``, grantor, grantees, base decision, period, policy basis, provisions, the child's
views, evidence, revocation) and :class:`Provision` (decision, period, actors, actions,
purposes, data categories, records, nested provisions). Unlike R5, where a nested provision
flips its parent's decision, each provision states its own decision (as R4 ``provision.type``);
absent lists match everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent._time import format_instant
from consent.errors import ConsentFormatError
from consent.measures import ChildView
from consent.parts import (
    ALWAYS,
    ActorRef,
    Json,
    Period,
    ordered,
    read_bool,
    read_code,
    read_codes,
    read_ids,
    read_instant,
    read_list,
    read_object,
    read_text,
    require_text,
)
from consent.vocabulary import (
    ACTIONS,
    CATEGORIES,
    CONSENT_STATUSES,
    DECISIONS,
    GRANTOR_TYPES,
    PURPOSES,
    ROLES,
)

REPRESENTATIONS = ("originaria", "coadyuvante", "suplencia")
POLICY_BASIS_CODES = (
    "lgdnna_parental_authority",
    "lgdnna_art_106_suplencia",
    "lgdnna_art_106_coadyuvancia",
    "lgdnna_art_122_restitution",
    "lgpdppso_consent",
    "court_order",
    "other",
)
EVIDENCE_TYPES = ("signed_form", "verbal_recorded", "procuraduria_resolution", "court_order")
MAX_PROVISION_DEPTH = 8  # the engine's depth order needs a bound; real consents use 2 or 3


@dataclass(frozen=True)
class Grantor:
    """Who grants: a parent or guardian with custody, the Procuraduría, a court, or (only to
    restrict) the adolescent."""

    type: str
    representation: str | None = None
    related_person_ref: str | None = None
    agency_id: str | None = None
    person_id: str | None = None
    identity_verified: bool | None = None

    @classmethod
    def from_json(cls, value: Any, pointer: str) -> Grantor:
        doc = read_object(
            value,
            pointer,
            required=("type",),
            optional=(
                "representation",
                "related_person_ref",
                "agency_id",
                "person_id",
                "identity_verified",
            ),
        )
        representation = doc.get("representation")
        return cls(
            type=read_code(doc["type"], f"{pointer}/type", GRANTOR_TYPES, "otorgante/grantor"),
            representation=None
            if representation is None
            else read_code(
                representation,
                f"{pointer}/representation",
                REPRESENTATIONS,
                "representación/representation",
            ),
            related_person_ref=read_text(doc, "related_person_ref", pointer),
            agency_id=read_text(doc, "agency_id", pointer),
            person_id=read_text(doc, "person_id", pointer),
            identity_verified=read_bool(doc, "identity_verified", pointer),
        )

    def to_json(self) -> Json:
        doc: Json = {"type": self.type}
        for key in ("representation", "related_person_ref", "agency_id", "person_id"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        if self.identity_verified is not None:
            doc["identity_verified"] = self.identity_verified
        return doc


#: A provision's lists that narrow what it covers; leaving one out covers everything.
NARROWING_LISTS = ("actor", "action", "purpose", "data_category", "record_ids")


@dataclass(frozen=True)
class Provision:
    """A rule within a consent; nested provisions are narrower rules inside it."""

    decision: str
    period: Period = ALWAYS
    actors: tuple[ActorRef, ...] = ()
    actions: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    record_ids: frozenset[str] = frozenset()
    provisions: tuple[Provision, ...] = ()

    @classmethod
    def from_json(cls, value: Any, pointer: str, depth: int = 1) -> Provision:
        if depth > MAX_PROVISION_DEPTH:
            raise ConsentFormatError(
                f"Disposiciones anidadas a más de {MAX_PROVISION_DEPTH} niveles.",
                f"Provisions nested deeper than {MAX_PROVISION_DEPTH} levels.",
                pointer=pointer,
            )
        doc = read_object(
            value,
            pointer,
            required=("decision",),
            optional=(
                "period",
                "actor",
                "action",
                "purpose",
                "data_category",
                "record_ids",
                "provision",
            ),
        )
        for key in NARROWING_LISTS:
            if doc.get(key) == []:
                # An absent list means "any"; an empty one would mean the same to the engine,
                # so a form whose every box was cleared would permit everything: refused.
                raise ConsentFormatError(
                    "Una lista vacía no se acepta aquí: omítala para abarcar todo, o nombre "
                    "al menos un elemento.",
                    "An empty list is not accepted here: leave it out to cover everything, or "
                    "name at least one item.",
                    pointer=f"{pointer}/{key}",
                )
        actors = read_list(doc.get("actor", []), f"{pointer}/actor")
        nested = read_list(doc.get("provision", []), f"{pointer}/provision")
        return cls(
            decision=read_code(
                doc["decision"], f"{pointer}/decision", DECISIONS, "decisión/decision"
            ),
            period=Period.from_json(doc.get("period", {}), f"{pointer}/period"),
            actors=tuple(
                ActorRef.from_json(item, f"{pointer}/actor/{index}", roles=ROLES)
                for index, item in enumerate(actors)
            ),
            actions=read_codes(
                doc.get("action", []), f"{pointer}/action", ACTIONS, "acción/action"
            ),
            purposes=read_codes(
                doc.get("purpose", []), f"{pointer}/purpose", PURPOSES, "finalidad/purpose"
            ),
            categories=read_codes(
                doc.get("data_category", []),
                f"{pointer}/data_category",
                CATEGORIES,
                "categoría/category",
            ),
            record_ids=read_ids(doc.get("record_ids", []), f"{pointer}/record_ids"),
            provisions=tuple(
                cls.from_json(item, f"{pointer}/provision/{index}", depth + 1)
                for index, item in enumerate(nested)
            ),
        )

    def to_json(self) -> Json:
        doc: Json = {"decision": self.decision}
        if self.period.start is not None or self.period.end is not None:
            doc["period"] = self.period.to_json()
        if self.actors:
            doc["actor"] = [actor.to_json() for actor in self.actors]
        if self.actions:
            doc["action"] = ordered(self.actions, ACTIONS)
        if self.purposes:
            doc["purpose"] = ordered(self.purposes, PURPOSES)
        if self.categories:
            doc["data_category"] = ordered(self.categories, CATEGORIES)
        if self.record_ids:
            doc["record_ids"] = sorted(self.record_ids)
        if self.provisions:
            doc["provision"] = [provision.to_json() for provision in self.provisions]
        return doc


@dataclass(frozen=True)
class PolicyBasis:
    code: str
    reference: str | None = None


@dataclass(frozen=True)
class SourceDocument:
    type: str
    reference: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Revocation:
    revoked_at: datetime
    revoked_by: ActorRef | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Consent:
    """A consent to disclose a child's data (``consent/1``)."""

    status: str
    child_id: str
    grantor: Grantor
    decision: str
    id: str | None = None
    grantees: tuple[ActorRef, ...] = ()
    period: Period = ALWAYS
    policy_basis: tuple[PolicyBasis, ...] = ()
    provisions: tuple[Provision, ...] = ()
    recorded_at: datetime | None = None
    recorded_by: ActorRef | None = None
    child_views: ChildView | None = None
    source_document: SourceDocument | None = None
    revocation: Revocation | None = None

    def revoked_by(self, moment: datetime) -> bool:
        """Whether a revocation has taken effect at ``moment`` (it does at once)."""
        return self.revocation is not None and self.revocation.revoked_at <= moment

    @classmethod
    def from_json(cls, value: Any, pointer: str = "") -> Consent:
        doc = read_object(
            value,
            pointer,
            required=("status", "child_id", "grantor", "decision"),
            optional=(
                "id",
                "recorded_at",
                "recorded_by",
                "grantee",
                "period",
                "policy_basis",
                "provision",
                "child_views",
                "source_document",
                "revocation",
            ),
        )
        child_id = require_text(doc, "child_id", pointer)
        grantees = read_list(doc.get("grantee", []), f"{pointer}/grantee")
        provisions = read_list(doc.get("provision", []), f"{pointer}/provision")
        return cls(
            status=read_code(doc["status"], f"{pointer}/status", CONSENT_STATUSES, "estado/status"),
            child_id=child_id,
            grantor=Grantor.from_json(doc["grantor"], f"{pointer}/grantor"),
            decision=read_code(
                doc["decision"], f"{pointer}/decision", DECISIONS, "decisión/decision"
            ),
            id=read_text(doc, "id", pointer),
            grantees=tuple(
                ActorRef.from_json(item, f"{pointer}/grantee/{index}", roles=ROLES)
                for index, item in enumerate(grantees)
            ),
            period=Period.from_json(doc.get("period", {}), f"{pointer}/period"),
            policy_basis=_policy_basis(doc.get("policy_basis", []), f"{pointer}/policy_basis"),
            provisions=tuple(
                Provision.from_json(item, f"{pointer}/provision/{index}")
                for index, item in enumerate(provisions)
            ),
            recorded_at=read_instant(doc, "recorded_at", pointer),
            recorded_by=None
            if "recorded_by" not in doc
            else ActorRef.from_json(doc["recorded_by"], f"{pointer}/recorded_by", roles=ROLES),
            child_views=None
            if "child_views" not in doc
            else ChildView.from_json(
                doc["child_views"], f"{pointer}/child_views", child_id=child_id
            ),
            source_document=None
            if "source_document" not in doc
            else _source_document(doc["source_document"], f"{pointer}/source_document"),
            revocation=None
            if "revocation" not in doc
            else _revocation(doc["revocation"], f"{pointer}/revocation"),
        )

    def to_json(self) -> Json:
        doc: Json = {}
        if self.id is not None:
            doc["id"] = self.id
        doc["status"] = self.status
        doc["child_id"] = self.child_id
        if self.recorded_at is not None:
            doc["recorded_at"] = format_instant(self.recorded_at)
        if self.recorded_by is not None:
            doc["recorded_by"] = self.recorded_by.to_json()
        doc["grantor"] = self.grantor.to_json()
        if self.grantees:
            doc["grantee"] = [grantee.to_json() for grantee in self.grantees]
        doc["decision"] = self.decision
        if self.period.start is not None or self.period.end is not None:
            doc["period"] = self.period.to_json()
        if self.policy_basis:
            doc["policy_basis"] = [
                {"code": basis.code, **({"reference": basis.reference} if basis.reference else {})}
                for basis in self.policy_basis
            ]
        if self.provisions:
            doc["provision"] = [provision.to_json() for provision in self.provisions]
        if self.child_views is not None:
            views = self.child_views.to_json()
            views.pop("child_id")
            if "id" in views:
                views["views_id"] = views.pop("id")
            doc["child_views"] = views
        if self.source_document is not None:
            source = self.source_document
            doc["source_document"] = {
                key: value
                for key, value in (
                    ("type", source.type),
                    ("reference", source.reference),
                    ("sha256", source.sha256),
                )
                if value is not None
            }
        if self.revocation is not None:
            revocation: Json = {"revoked_at": format_instant(self.revocation.revoked_at)}
            if self.revocation.revoked_by is not None:
                revocation["revoked_by"] = self.revocation.revoked_by.to_json()
            if self.revocation.reason is not None:
                revocation["reason"] = self.revocation.reason
            doc["revocation"] = revocation
        return doc


def _policy_basis(value: Any, pointer: str) -> tuple[PolicyBasis, ...]:
    result = []
    for index, item in enumerate(read_list(value, pointer)):
        where = f"{pointer}/{index}"
        doc = read_object(item, where, required=("code",), optional=("reference",))
        result.append(
            PolicyBasis(
                read_code(doc["code"], f"{where}/code", POLICY_BASIS_CODES, "fundamento/basis"),
                read_text(doc, "reference", where),
            )
        )
    return tuple(result)


def _source_document(value: Any, pointer: str) -> SourceDocument:
    doc = read_object(value, pointer, required=("type",), optional=("reference", "sha256"))
    return SourceDocument(
        read_code(doc["type"], f"{pointer}/type", EVIDENCE_TYPES, "constancia/evidence"),
        read_text(doc, "reference", pointer),
        read_text(doc, "sha256", pointer),
    )


def _revocation(value: Any, pointer: str) -> Revocation:
    doc = read_object(value, pointer, required=("revoked_at",), optional=("revoked_by", "reason"))
    revoked_at = read_instant(doc, "revoked_at", pointer)
    assert revoked_at is not None  # required above
    return Revocation(
        revoked_at,
        None
        if "revoked_by" not in doc
        else ActorRef.from_json(doc["revoked_by"], f"{pointer}/revoked_by", roles=ROLES),
        read_text(doc, "reason", pointer),
    )
