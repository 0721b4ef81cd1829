"""Small values shared by consents, grants, views and overrides, and the strict JSON readers.

``from_json`` everywhere parses strictly (unknown keys, wrong types and unknown codes raise
:class:`~consent.errors.ConsentFormatError` with the JSON pointer of the fault) and ``to_json``
prints canonically (codes in vocabulary order, instants in UTC with ``Z``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent._time import format_instant, parse_instant
from consent.errors import ConsentFormatError
from consent.vocabulary import CATEGORIES, ROLES

Json = dict[str, Any]


@dataclass(frozen=True)
class ActorRef:
    """An agency, a person or a role, as consents name them; every stated part must match."""

    agency_id: str | None = None
    person_id: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if self.agency_id is None and self.person_id is None and self.role is None:
            raise ValueError("an actor reference names an agency, a person or a role")

    def matches(self, agency_id: str | None, person_id: str | None, roles: Collection[str]) -> bool:
        return (
            (self.agency_id is None or self.agency_id == agency_id)
            and (self.person_id is None or self.person_id == person_id)
            and (self.role is None or self.role in roles)
        )

    @classmethod
    def from_json(cls, value: Any, pointer: str, *, roles: Collection[str] = ()) -> ActorRef:
        doc = read_object(value, pointer, optional=("agency_id", "person_id", "role"))
        if not doc:
            raise ConsentFormatError(
                "Indique una agencia, una persona o un rol.",
                "Name an agency, a person or a role.",
                pointer=pointer,
            )
        role = doc.get("role")
        return cls(
            agency_id=read_text(doc, "agency_id", pointer),
            person_id=read_text(doc, "person_id", pointer),
            role=None if role is None else read_code(role, f"{pointer}/role", roles, "rol/role"),
        )

    def to_json(self) -> Json:
        return {
            key: value
            for key, value in (
                ("agency_id", self.agency_id),
                ("person_id", self.person_id),
                ("role", self.role),
            )
            if value is not None
        }


@dataclass(frozen=True)
class Period:
    """A half-open interval [start, end); a missing bound is open."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (
            self.end is None or moment < self.end
        )

    @classmethod
    def from_json(cls, value: Any, pointer: str) -> Period:
        doc = read_object(value, pointer, optional=("start", "end"))
        start = doc.get("start")
        end = doc.get("end")
        return cls(
            None if start is None else parse_instant(start, f"{pointer}/start"),
            None if end is None else parse_instant(end, f"{pointer}/end"),
        )

    def to_json(self) -> Json:
        doc: Json = {}
        if self.start is not None:
            doc["start"] = format_instant(self.start)
        if self.end is not None:
            doc["end"] = format_instant(self.end)
        return doc


ALWAYS = Period()
"""The open period: no start, no end."""


# --- strict readers -----------------------------------------------------------------------------


def read_object(
    value: Any,
    pointer: str,
    *,
    required: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> Mapping[str, Any]:
    """``value`` as an object with only the named keys, the required ones present."""
    if not isinstance(value, Mapping):
        raise ConsentFormatError(
            f"Se esperaba un objeto JSON, se recibió {type(value).__name__}.",
            f"Expected a JSON object, got {type(value).__name__}.",
            pointer=pointer,
        )
    for key in required:
        if key not in value:
            raise ConsentFormatError(
                f"Falta el campo obligatorio {key!r}.",
                f"Missing required field {key!r}.",
                pointer=pointer,
            )
    allowed = set(required) | set(optional)
    extra = sorted(str(key) for key in value if key not in allowed)
    if extra:
        raise ConsentFormatError(
            f"Campo desconocido {extra[0]!r}; se admiten: {', '.join(sorted(allowed))}.",
            f"Unknown field {extra[0]!r}; allowed: {', '.join(sorted(allowed))}.",
            pointer=f"{pointer}/{extra[0]}",
        )
    return value


def read_text(doc: Mapping[str, Any], key: str, pointer: str) -> str | None:
    """An optional non-empty string field."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConsentFormatError(
            "Se esperaba un texto no vacío.",
            "Expected a non-empty string.",
            pointer=f"{pointer}/{key}",
        )
    return value


def require_text(doc: Mapping[str, Any], key: str, pointer: str) -> str:
    value = read_text(doc, key, pointer)
    if value is None:
        raise ConsentFormatError(
            f"Falta el campo obligatorio {key!r}.",
            f"Missing required field {key!r}.",
            pointer=pointer,
        )
    return value


def read_bool(doc: Mapping[str, Any], key: str, pointer: str) -> bool | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, bool):
        raise ConsentFormatError(
            "Se esperaba true o false.", "Expected true or false.", pointer=f"{pointer}/{key}"
        )
    return value


def read_code(value: Any, pointer: str, allowed: Collection[str], what: str) -> str:
    """One code out of ``allowed``; the message lists the codes a person may use."""
    if not isinstance(value, str) or value not in allowed:
        listed = ", ".join(allowed)
        spanish, english = what.split("/") if "/" in what else (what, what)
        raise ConsentFormatError(
            f"Código de {spanish} desconocido {value!r}; use uno de: {listed}.",
            f"Unknown {english} code {value!r}; use one of: {listed}.",
            pointer=pointer,
        )
    return value


def read_codes(value: Any, pointer: str, allowed: Collection[str], what: str) -> frozenset[str]:
    """A list of codes out of ``allowed``."""
    items = read_list(value, pointer)
    return frozenset(
        read_code(item, f"{pointer}/{i}", allowed, what) for i, item in enumerate(items)
    )


def read_list(value: Any, pointer: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise ConsentFormatError("Se esperaba una lista.", "Expected a list.", pointer=pointer)
    return value


def read_ids(value: Any, pointer: str) -> frozenset[str]:
    items = read_list(value, pointer)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise ConsentFormatError(
                "Se esperaba un identificador.",
                "Expected an identifier.",
                pointer=f"{pointer}/{index}",
            )
    return frozenset(items)


def read_instant(doc: Mapping[str, Any], key: str, pointer: str) -> datetime | None:
    value = doc.get(key)
    return None if value is None else parse_instant(value, f"{pointer}/{key}")


def ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    """``values`` in vocabulary order (canonical output)."""
    present = set(values)
    return [code for code in order if code in present]


def read_required_instant(doc: Any, key: str, pointer: str) -> datetime:
    moment = read_instant(doc, key, pointer)
    if moment is None:
        raise ConsentFormatError(
            f"Falta el campo obligatorio {key!r}.",
            f"Missing required field {key!r}.",
            pointer=pointer,
        )
    return moment


def read_categories(doc: Any, pointer: str, *, required: bool) -> frozenset[str]:
    codes = read_codes(
        doc.get("categories", []), f"{pointer}/categories", CATEGORIES, "categoría/category"
    )
    if required and not codes:
        raise ConsentFormatError(
            "Indique al menos una categoría de datos.",
            "Name at least one data category.",
            pointer=f"{pointer}/categories",
        )
    return codes


def read_actors(doc: Any, key: str, pointer: str) -> tuple[ActorRef, ...]:
    items = read_list(doc.get(key, []), f"{pointer}/{key}")
    return tuple(
        ActorRef.from_json(item, f"{pointer}/{key}/{index}", roles=ROLES)
        for index, item in enumerate(items)
    )
