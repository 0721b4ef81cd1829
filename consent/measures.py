"""The child's views and emergency overrides, with the Procuraduría's review of either.

Each is a frozen value with strict ``from_json`` and canonical ``to_json``; the hub stores the
JSON and hands the values back to :func:`consent.decide`. Grants and "withhold from" entries
are in :mod:`consent.access`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from consent._time import format_instant, parse_date
from consent.errors import ConsentFormatError
from consent.parts import (
    ActorRef,
    Json,
    ordered,
    read_actors,
    read_bool,
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
from consent.vocabulary import (
    CATEGORIES,
    OVERRIDE_BASIS_CODES,
    PURPOSES,
    ROLES,
    VIEW_POSITIONS,
)

MAX_OVERRIDE = timedelta(hours=72)
OVERRIDE_REVIEW_DUE = timedelta(hours=24)
OVERRIDE_ROLE = "override_officer"
MIN_JUSTIFICATION = 40  # characters, as override/1 requires


@dataclass(frozen=True)
class Review:
    """A Procuraduría's review of an objection or an override.

    For an objection, ``upheld`` keeps it blocking (now as the Procuraduría's own measure) and
    not upheld lifts it; for an override, not upheld ends it at ``reviewed_at``.
    """

    reviewed_at: datetime
    upheld: bool
    by: ActorRef | None = None
    reason: str | None = None

    @classmethod
    def from_json(cls, value: Any, pointer: str) -> Review:
        doc = read_object(
            value, pointer, required=("reviewed_at", "upheld"), optional=("by", "reason")
        )
        upheld = read_bool(doc, "upheld", pointer)
        assert upheld is not None  # required above
        return cls(
            reviewed_at=read_required_instant(doc, "reviewed_at", pointer),
            upheld=upheld,
            by=None
            if "by" not in doc
            else ActorRef.from_json(doc["by"], f"{pointer}/by", roles=ROLES),
            reason=read_text(doc, "reason", pointer),
        )

    def to_json(self) -> Json:
        doc: Json = {"reviewed_at": format_instant(self.reviewed_at), "upheld": self.upheld}
        if self.by is not None:
            doc["by"] = self.by.to_json()
        if self.reason is not None:
            doc["reason"] = self.reason
        return doc


@dataclass(frozen=True)
class ChildView:
    """The child's own views, heard on a date (LGDNNA arts. 71–72).

    An ``objection`` by an adolescent (12 or older when heard) blocks disclosure of
    ``categories`` (all when empty) to ``about`` (anyone when empty) until a Procuraduría
    review; a review that upholds it keeps it in force.
    """

    child_id: str
    heard_on: date
    position: str
    id: str | None = None
    heard_by: ActorRef | None = None
    not_heard_reason: str | None = None
    summary: str | None = None
    categories: frozenset[str] = frozenset()
    about: tuple[ActorRef, ...] = ()
    review: Review | None = None

    @classmethod
    def from_json(cls, value: Any, pointer: str = "", *, child_id: str | None = None) -> ChildView:
        """A views record. Inside a consent (``child_views``, given ``child_id``) only the
        fields ``consent/1`` allows there are accepted."""
        embedded = ("views_id", "heard_by", "not_heard_reason", "summary")
        doc = read_object(
            value,
            pointer,
            required=("heard_on", "position"),
            optional=embedded
            if child_id is not None
            else (*embedded, "id", "child_id", "categories", "about", "review"),
        )
        owner = read_text(doc, "child_id", pointer) or child_id
        if owner is None:
            raise ConsentFormatError(
                "Falta el campo obligatorio 'child_id'.",
                "Missing required field 'child_id'.",
                pointer=pointer,
            )
        return cls(
            child_id=owner,
            heard_on=parse_date(doc["heard_on"], f"{pointer}/heard_on"),
            position=read_code(
                doc["position"], f"{pointer}/position", VIEW_POSITIONS, "opinión/position"
            ),
            id=read_text(doc, "id", pointer) or read_text(doc, "views_id", pointer),
            heard_by=None
            if "heard_by" not in doc
            else ActorRef.from_json(doc["heard_by"], f"{pointer}/heard_by", roles=ROLES),
            not_heard_reason=read_text(doc, "not_heard_reason", pointer),
            summary=read_text(doc, "summary", pointer),
            categories=read_categories(doc, pointer, required=False),
            about=read_actors(doc, "about", pointer),
            review=None
            if "review" not in doc
            else Review.from_json(doc["review"], f"{pointer}/review"),
        )

    def to_json(self) -> Json:
        doc: Json = {
            "child_id": self.child_id,
            "heard_on": self.heard_on.isoformat(),
            "position": self.position,
        }
        if self.id is not None:
            doc["id"] = self.id
        if self.heard_by is not None:
            doc["heard_by"] = self.heard_by.to_json()
        if self.not_heard_reason is not None:
            doc["not_heard_reason"] = self.not_heard_reason
        if self.summary is not None:
            doc["summary"] = self.summary
        if self.categories:
            doc["categories"] = ordered(self.categories, CATEGORIES)
        if self.about:
            doc["about"] = [actor.to_json() for actor in self.about]
        if self.review is not None:
            doc["review"] = self.review.to_json()
        return doc


@dataclass(frozen=True)
class Override:
    """An emergency best-interest override: a person with the override role opens some
    categories of the child's data, for at most 72 hours, on a basis code and a written
    justification. It serves ``for_actor`` (by default the officer's agency); a review that does
    not uphold it ends it."""

    child_id: str
    basis_code: str
    justification: str
    categories: frozenset[str]
    starts: datetime
    ends: datetime
    by: ActorRef
    #: The roles the person held when opening it; without the override role it counts for
    #: nothing (the hub passes them; an empty default fails closed).
    by_roles: frozenset[str] = frozenset()
    id: str | None = None
    purpose: str | None = None
    record_ids: frozenset[str] = frozenset()
    for_actor: ActorRef | None = None
    review: Review | None = None

    @property
    def beneficiary(self) -> ActorRef:
        if self.for_actor is not None:
            return self.for_actor
        if self.by.agency_id is not None:
            return ActorRef(agency_id=self.by.agency_id)
        return self.by

    def effective_end(self) -> datetime:
        """When it stops: its end, capped at 72 hours, or the review that set it aside."""
        end = min(self.ends, self.starts + MAX_OVERRIDE)
        if self.review is not None and not self.review.upheld:
            end = min(end, self.review.reviewed_at)
        return end

    @classmethod
    def from_json(cls, value: Any, pointer: str = "") -> Override:
        """The stored form: ``override/1`` fields plus ``id``, ``starts``, ``ends`` (or
        ``hours``), ``by`` ({agency_id, person_id}), ``by_roles``, ``for_actor``, ``review``."""
        doc = read_object(
            value,
            pointer,
            required=(
                "child_id",
                "basis_code",
                "justification",
                "categories",
                "starts",
                "by",
                "by_roles",
            ),
            optional=(
                "id",
                "ends",
                "hours",
                "purpose",
                "record_ids",
                "for_actor",
                "review",
            ),
        )
        starts = read_required_instant(doc, "starts", pointer)
        ends = read_instant(doc, "ends", pointer)
        hours = doc.get("hours")
        if ends is None:
            if not isinstance(hours, int) or isinstance(hours, bool) or hours < 1:
                raise ConsentFormatError(
                    "Indique 'ends' o 'hours' (entero de 1 a 72).",
                    "Give 'ends' or 'hours' (an integer from 1 to 72).",
                    pointer=f"{pointer}/hours",
                )
            ends = starts + timedelta(hours=hours)
        purpose = doc.get("purpose")
        return cls(
            child_id=require_text(doc, "child_id", pointer),
            basis_code=read_code(
                doc["basis_code"], f"{pointer}/basis_code", OVERRIDE_BASIS_CODES, "fundamento/basis"
            ),
            justification=require_text(doc, "justification", pointer),
            categories=read_categories(doc, pointer, required=True),
            starts=starts,
            ends=ends,
            by=ActorRef.from_json(doc["by"], f"{pointer}/by", roles=ROLES),
            by_roles=read_codes(doc["by_roles"], f"{pointer}/by_roles", ROLES, "rol/role"),
            id=read_text(doc, "id", pointer),
            purpose=None
            if purpose is None
            else read_code(purpose, f"{pointer}/purpose", PURPOSES, "finalidad/purpose"),
            record_ids=read_ids(doc.get("record_ids", []), f"{pointer}/record_ids"),
            for_actor=None
            if "for_actor" not in doc
            else ActorRef.from_json(doc["for_actor"], f"{pointer}/for_actor", roles=ROLES),
            review=None
            if "review" not in doc
            else Review.from_json(doc["review"], f"{pointer}/review"),
        )

    def to_json(self) -> Json:
        doc: Json = {
            "child_id": self.child_id,
            "basis_code": self.basis_code,
            "justification": self.justification,
            "categories": ordered(self.categories, CATEGORIES),
            "starts": format_instant(self.starts),
            "ends": format_instant(self.ends),
            "by": self.by.to_json(),
            "by_roles": sorted(self.by_roles),
        }
        if self.id is not None:
            doc["id"] = self.id
        if self.purpose is not None:
            doc["purpose"] = self.purpose
        if self.record_ids:
            doc["record_ids"] = sorted(self.record_ids)
        if self.for_actor is not None:
            doc["for_actor"] = self.for_actor.to_json()
        if self.review is not None:
            doc["review"] = self.review.to_json()
        return doc
