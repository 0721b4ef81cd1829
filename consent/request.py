"""A decision request: who asks, about which child and record, to do what, for which purpose,
for which data categories.

Codes are checked when the request is made: an unknown actor kind, action, purpose or category
raises :class:`~consent.errors.RequestError` rather than quietly escaping the hard rules (a
misspelt ``"immigration"`` must not slip past the rule about immigration enforcement).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from consent.errors import RequestError
from consent.parts import Json, ordered, read_code, read_codes, read_object, read_text
from consent.vocabulary import (
    ACTIONS,
    ACTOR_KINDS,
    ALL_CATEGORIES,
    CATEGORIES,
    PURPOSES,
    mask_of,
    unknown,
)


@dataclass(frozen=True)
class Actor:
    """Who asks: an agency (its system) or a person affiliated with an agency.

    ``kind`` is what the hard rules speak about; ``country`` is the country a foreign authority
    acts for (ISO 3166-1 alpha-2), ``None`` for Mexican bodies or when not known.
    """

    kind: str
    agency_id: str | None = None
    person_id: str | None = None
    roles: frozenset[str] = frozenset()
    jurisdiction: str | None = None
    country: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise RequestError(
                f"Tipo de actor desconocido {self.kind!r}; use uno de: {', '.join(ACTOR_KINDS)}.",
                f"Unknown actor kind {self.kind!r}; use one of: {', '.join(ACTOR_KINDS)}.",
                pointer="/actor/kind",
            )
        if self.agency_id is None and self.person_id is None:
            raise RequestError(
                "El actor debe ser una agencia o una persona.",
                "The actor must be an agency or a person.",
                pointer="/actor",
            )
        if not isinstance(self.roles, frozenset):
            object.__setattr__(self, "roles", frozenset(self.roles))

    def to_json(self) -> Json:
        doc: Json = {"kind": self.kind}
        for key in ("agency_id", "person_id", "jurisdiction", "country"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        if self.roles:
            doc["roles"] = sorted(self.roles)
        return doc

    @classmethod
    def from_json(cls, value: Any, pointer: str = "/actor") -> Actor:
        doc = read_object(
            value,
            pointer,
            required=("kind",),
            optional=("agency_id", "person_id", "roles", "jurisdiction", "country"),
        )
        roles = doc.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise RequestError(
                "Se esperaba una lista de roles.",
                "Expected a list of roles.",
                pointer=f"{pointer}/roles",
            )
        return cls(
            kind=read_code(
                doc["kind"], f"{pointer}/kind", tuple(ACTOR_KINDS), "tipo de actor/actor kind"
            ),
            agency_id=read_text(doc, "agency_id", pointer),
            person_id=read_text(doc, "person_id", pointer),
            roles=frozenset(roles),
            jurisdiction=read_text(doc, "jurisdiction", pointer),
            country=read_text(doc, "country", pointer),
        )


@dataclass(frozen=True)
class Request:
    """A question for the engine: may ``actor`` ``action`` these ``categories`` of the child's
    record for ``purpose``?

    ``owner_agency_id`` is the agency the record comes from (its originating agency): when the
    actor belongs to it and only reads, nothing is disclosed and only hard rules apply. For a
    referral or transfer the actor is the *recipient*.
    """

    actor: Actor
    child_id: str
    action: str
    purpose: str
    categories: frozenset[str] = ALL_CATEGORIES
    owner_agency_id: str | None = None
    record_id: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise RequestError(
                f"Acción desconocida {self.action!r}; use una de: {', '.join(ACTIONS)}.",
                f"Unknown action {self.action!r}; use one of: {', '.join(ACTIONS)}.",
                pointer="/action",
            )
        if self.purpose not in PURPOSES:
            raise RequestError(
                f"Finalidad desconocida {self.purpose!r}; use una de: {', '.join(PURPOSES)}.",
                f"Unknown purpose {self.purpose!r}; use one of: {', '.join(PURPOSES)}.",
                pointer="/purpose",
            )
        if not isinstance(self.categories, frozenset):
            object.__setattr__(self, "categories", frozenset(self.categories))
        wrong = unknown(self.categories, CATEGORIES)
        if wrong:
            raise RequestError(
                f"Categoría desconocida {wrong[0]!r}; use una de: {', '.join(CATEGORIES)}.",
                f"Unknown category {wrong[0]!r}; use one of: {', '.join(CATEGORIES)}.",
                pointer="/categories",
            )
        if not self.categories:
            raise RequestError(
                "Pida al menos una categoría de datos.",
                "Ask for at least one data category.",
                pointer="/categories",
            )

    @cached_property
    def category_mask(self) -> int:
        return mask_of(self.categories)

    @cached_property
    def by_originating_agency(self) -> bool:
        """The originating agency reading its own record (not a disclosure)."""
        return (
            self.action == "read"
            and self.owner_agency_id is not None
            and self.actor.agency_id == self.owner_agency_id
        )

    def to_json(self) -> Json:
        doc: Json = {
            "actor": self.actor.to_json(),
            "child_id": self.child_id,
            "action": self.action,
            "purpose": self.purpose,
            "categories": ordered(self.categories, CATEGORIES),
        }
        if self.owner_agency_id is not None:
            doc["owner_agency_id"] = self.owner_agency_id
        if self.record_id is not None:
            doc["record_id"] = self.record_id
        return doc

    @classmethod
    def from_json(cls, value: Any, pointer: str = "") -> Request:
        """The ``POST /v1/decisions`` body, with the actor as the hub knows it."""
        doc = read_object(
            value,
            pointer,
            required=("actor", "child_id", "action", "purpose"),
            optional=("categories", "owner_agency_id", "record_id"),
        )
        categories = doc.get("categories")
        return cls(
            actor=Actor.from_json(doc["actor"], f"{pointer}/actor"),
            child_id=_text(doc, "child_id", pointer),
            action=read_code(doc["action"], f"{pointer}/action", ACTIONS, "acción/action"),
            purpose=read_code(doc["purpose"], f"{pointer}/purpose", PURPOSES, "finalidad/purpose"),
            categories=ALL_CATEGORIES
            if categories is None
            else read_codes(categories, f"{pointer}/categories", CATEGORIES, "categoría/category"),
            owner_agency_id=read_text(doc, "owner_agency_id", pointer),
            record_id=read_text(doc, "record_id", pointer),
        )


def _text(doc: Any, key: str, pointer: str) -> str:
    value = read_text(doc, key, pointer)
    assert value is not None  # required by read_object
    return value
