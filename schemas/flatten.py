"""Schema nodes merged for comparison: a node, what its ``$ref`` names and its ``allOf``
members, as one intersection of keyword values (used by :mod:`schemas.compat`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from schemas.fields import resolve_uri

# Keywords that never change which documents are valid.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$anchor", "$defs", "title", "description", "default"}
    | {"examples", "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding"}
)
Lookup = Callable[[str], Mapping[str, Any]]


@dataclass
class Flat:
    """One schema node with its ``$ref`` targets and ``allOf`` members merged (intersection)."""

    keywords: dict[str, list[tuple[Any, str]]] = field(default_factory=dict)
    nodes: int = 0

    def values(self, keyword: str) -> list[Any]:
        return [value for value, _ in self.keywords.get(keyword, ())]


def flatten(node: Any, base: str, lookup: Lookup) -> Flat | None:
    """``None`` for a schema that accepts nothing (``false``)."""
    flat = Flat()
    stack: list[tuple[Any, str]] = [(node, base)]
    seen: set[str] = set()
    while stack:
        current, current_base = stack.pop()
        if current is True:
            continue
        if current is False:
            return None
        current_base = current.get("$id", current_base)
        flat.nodes += 1
        for keyword, value in current.items():
            if keyword == "$ref":
                target = urljoin(current_base, value)
                if target not in seen:
                    seen.add(target)
                    stack.append((resolve_uri(lookup, target), target.partition("#")[0]))
            elif keyword == "allOf":
                stack.extend((member, current_base) for member in value)
            elif keyword == "const":
                flat.keywords.setdefault("enum", []).append(([value], current_base))
            elif keyword not in ANNOTATIONS and not keyword.startswith("x-"):
                flat.keywords.setdefault(keyword, []).append((value, current_base))
    return flat


BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "maxLength": lambda a, b: a < b,
    "minLength": lambda a, b: a > b,
    "maximum": lambda a, b: a < b,
    "minimum": lambda a, b: a > b,
    "exclusiveMaximum": lambda a, b: a < b,
    "exclusiveMinimum": lambda a, b: a > b,
    "maxItems": lambda a, b: a < b,
    "minItems": lambda a, b: a > b,
    "maxProperties": lambda a, b: a < b,
    "minProperties": lambda a, b: a > b,
}


def tightest(flat: Flat, keyword: str, tighter: Callable[[Any, Any], bool]) -> Any:
    best = None
    for value in flat.values(keyword):
        if best is None or tighter(value, best):
            best = value
    return best


def divides(divisor: Any, number: Any) -> bool:
    try:
        return bool(number == divisor or (number / divisor).is_integer())
    except (TypeError, ZeroDivisionError):
        return False


def types(flat: Flat) -> set[str] | None:
    result: set[str] | None = None
    for value in flat.values("type"):
        each = {value} if isinstance(value, str) else set(value)
        if "number" in each:
            each.add("integer")
        result = each if result is None else result & each
    return result


def properties(flat: Flat) -> dict[str, list[tuple[Any, str]]]:
    result: dict[str, list[tuple[Any, str]]] = {}
    for properties, base in flat.keywords.get("properties", ()):
        for name, schema in properties.items():
            result.setdefault(name, []).append((schema, base))
    return result


def extra(flat: Flat) -> tuple[Any, str]:
    found = flat.keywords.get("additionalProperties")
    return found[0] if found else (True, "")


def canonical(flat: Flat, keyword: str) -> str:
    values = [absolute(value, base) for value, base in flat.keywords.get(keyword, ())]
    return json.dumps(values, sort_keys=True, default=str)


def absolute(value: Any, base: str) -> Any:
    """``value`` with every ``$ref`` made absolute against ``base``."""
    if isinstance(value, Mapping):
        base = value.get("$id", base) if isinstance(value.get("$id"), str) else base
        return {
            key: urljoin(base, item)
            if key == "$ref" and isinstance(item, str)
            else absolute(item, base)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [absolute(item, base) for item in value]
    return value


def ref_documents(value: Any) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            if isinstance(item.get("$ref"), str):
                found.add(item["$ref"].partition("#")[0])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def reference_validator(schema: Any, base: str, lookup: Lookup) -> Any:
    """A reference validator of ``schema`` resolving references through ``lookup``."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    from schemas.registry import without_dialect
    from schemas.validation import FORMAT_CHECKER, ReferenceDraft202012

    def retrieve(uri: str) -> Resource[Any]:
        return DRAFT202012.create_resource(without_dialect(lookup(uri)))

    registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    return ReferenceDraft202012(
        absolute(schema, base), registry=registry, format_checker=FORMAT_CHECKER
    )


def document_lookup(registry: Any, *documents: Mapping[str, Any]) -> Lookup:
    own = {str(document.get("$id", "")): document for document in documents}

    def lookup(uri: str) -> Mapping[str, Any]:
        return own[uri] if uri in own else registry.by_id(uri)

    return lookup
