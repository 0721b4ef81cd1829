"""Who gets access and who never does: grants made on approved access requests, and "withhold
from" entries. Frozen values with strict ``from_json`` and canonical ``to_json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent._time import format_instant
from consent.errors import ConsentFormatError
from consent.parts import (
    ActorRef,
    Json,
    ordered,
    read_categories,
    read_code,
    read_codes,
    read_ids,
    read_instant,
    read_object,
    read_required_instant,
    read_text,
    require_text,
)
from consent.vocabulary import ACTIONS, ACTOR_KINDS, CATEGORIES, PURPOSES, ROLES


@dataclass(frozen=True)
class Grant:
    """Access granted on an approved access request (UMA style): purpose-bound, some
    categories, until a time. It weighs like a permit provision one level deep, so an explicit
    deny provision of a consent at that depth or deeper still wins."""

    child_id: str
    grantee: ActorRef
    purpose: str
    categories: frozenset[str]
    until: datetime
    id: str | None = None
    starts: datetime | None = None
    actions: frozenset[str] = frozenset({"read"})
    record_ids: frozenset[str] = frozenset()
    revoked_at: datetime | None = None

    @classmethod
    def from_json(cls, value: Any, pointer: str = "") -> Grant:
        doc = read_object(
            value,
            pointer,
            required=("child_id", "grantee", "purpose", "categories", "until"),
            optional=("id", "starts", "actions", "record_ids", "revoked_at"),
        )
        return cls(
            child_id=require_text(doc, "child_id", pointer),
            grantee=ActorRef.from_json(doc["grantee"], f"{pointer}/grantee", roles=ROLES),
            purpose=read_code(doc["purpose"], f"{pointer}/purpose", PURPOSES, "finalidad/purpose"),
            categories=read_categories(doc, pointer, required=True),
            until=read_required_instant(doc, "until", pointer),
            id=read_text(doc, "id", pointer),
            starts=read_instant(doc, "starts", pointer),
            actions=read_codes(
                doc.get("actions", ["read"]), f"{pointer}/actions", ACTIONS, "acción/action"
            ),
            record_ids=read_ids(doc.get("record_ids", []), f"{pointer}/record_ids"),
            revoked_at=read_instant(doc, "revoked_at", pointer),
        )

    def to_json(self) -> Json:
        doc: Json = {
            "child_id": self.child_id,
            "grantee": self.grantee.to_json(),
            "purpose": self.purpose,
            "categories": ordered(self.categories, CATEGORIES),
            "until": format_instant(self.until),
            "actions": ordered(self.actions, ACTIONS),
        }
        if self.id is not None:
            doc["id"] = self.id
        if self.starts is not None:
            doc["starts"] = format_instant(self.starts)
        if self.record_ids:
            doc["record_ids"] = sorted(self.record_ids)
        if self.revoked_at is not None:
            doc["revoked_at"] = format_instant(self.revoked_at)
        return doc


@dataclass(frozen=True)
class WithholdFrom:
    """Never disclose ``categories`` (all when empty) of this child to the named agency or
    person, or to any actor of ``actor_kind`` — for example a parent who is the alleged
    abuser, or the agency a child fled from."""

    child_id: str
    target: ActorRef | None = None
    actor_kind: str | None = None
    categories: frozenset[str] = frozenset()
    id: str | None = None
    starts: datetime | None = None
    ends: datetime | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.target is None and self.actor_kind is None:
            raise ValueError("a withhold-from entry names an actor or an actor kind")

    @classmethod
    def from_json(cls, value: Any, pointer: str = "") -> WithholdFrom:
        doc = read_object(
            value,
            pointer,
            required=("child_id",),
            optional=("id", "target", "actor_kind", "categories", "starts", "ends", "reason"),
        )
        kind = doc.get("actor_kind")
        if "target" not in doc and kind is None:
            raise ConsentFormatError(
                "Indique a quién no divulgar: 'target' o 'actor_kind'.",
                "Say whom to withhold from: 'target' or 'actor_kind'.",
                pointer=pointer,
            )
        return cls(
            child_id=require_text(doc, "child_id", pointer),
            target=None
            if "target" not in doc
            else ActorRef.from_json(doc["target"], f"{pointer}/target", roles=ROLES),
            actor_kind=None
            if kind is None
            else read_code(
                kind, f"{pointer}/actor_kind", tuple(ACTOR_KINDS), "tipo de actor/actor kind"
            ),
            categories=read_categories(doc, pointer, required=False),
            id=read_text(doc, "id", pointer),
            starts=read_instant(doc, "starts", pointer),
            ends=read_instant(doc, "ends", pointer),
            reason=read_text(doc, "reason", pointer),
        )

    def to_json(self) -> Json:
        doc: Json = {"child_id": self.child_id}
        if self.id is not None:
            doc["id"] = self.id
        if self.target is not None:
            doc["target"] = self.target.to_json()
        if self.actor_kind is not None:
            doc["actor_kind"] = self.actor_kind
        if self.categories:
            doc["categories"] = ordered(self.categories, CATEGORIES)
        if self.starts is not None:
            doc["starts"] = format_instant(self.starts)
        if self.ends is not None:
            doc["ends"] = format_instant(self.ends)
        if self.reason is not None:
            doc["reason"] = self.reason
        return doc
