"""Schema-driven redaction: keep only the fields whose data category is permitted.

The only input about the document's shape is the map the schema registry computes —
``schemas.registry.default_registry().leaf_categories(name, version)``, pointer template →
``x-category`` (``"/child/names/given_names": "identity"``, ``"/placements/*/type":
"placement"``; ``*`` stands for every array element and for additional properties). There is no
code per field: a new schema field is redacted by its ``x-category`` alone.

Rules:

- a leaf whose category is permitted is kept as it is (an array of scalars, ``/…/*``, item by
  item); one whose category is not is removed and its category reported as withheld;
- objects and arrays left empty by the removal are removed too (an empty container shows
  nothing, and an empty ``related_persons`` list would still say something);
- a value at a place the map does not know is removed (fail closed; valid documents have none).

The input document is never modified; the result shares the kept scalar values with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consent.vocabulary import CATEGORY_BIT, categories_of, mask_of

STAR = "*"


class FieldTree:
    """The leaf-category map as a tree of property names (compile once per schema)."""

    __slots__ = ("bit", "children", "star")

    def __init__(self) -> None:
        self.bit = 0  # the category bit of a leaf; 0 for an inner node
        self.children: dict[str, FieldTree] = {}
        self.star: FieldTree | None = None

    @classmethod
    def from_leaf_categories(cls, leaf_categories: Mapping[str, str]) -> FieldTree:
        root = cls()
        for pointer, category in leaf_categories.items():
            if category not in CATEGORY_BIT:
                raise ValueError(f"unknown data category {category!r} for {pointer!r}")
            if pointer and not pointer.startswith("/"):
                raise ValueError(f"not a JSON pointer template: {pointer!r}")
            node = root
            for token in pointer.split("/")[1:] if pointer else ():
                if token == STAR:
                    if node.star is None:
                        node.star = cls()
                    node = node.star
                else:
                    name = token.replace("~1", "/").replace("~0", "~")
                    node = node.children.setdefault(name, cls())
            node.bit = CATEGORY_BIT[category]
        return root


_TREES: dict[int, tuple[Mapping[str, str], FieldTree]] = {}
_TREES_LIMIT = 64


def compile_fields(leaf_categories: Mapping[str, str] | FieldTree) -> FieldTree:
    """The :class:`FieldTree` of a map, remembered for the same map object."""
    if isinstance(leaf_categories, FieldTree):
        return leaf_categories
    known = _TREES.get(id(leaf_categories))
    if known is not None and known[0] is leaf_categories:
        return known[1]
    tree = FieldTree.from_leaf_categories(leaf_categories)
    if len(_TREES) >= _TREES_LIMIT:
        _TREES.clear()
    # Keeping a reference to the map keeps its id from being reused by another object.
    _TREES[id(leaf_categories)] = (leaf_categories, tree)
    return tree


def redact(
    document: Any,
    leaf_categories: Mapping[str, str] | FieldTree,
    permitted: Iterable[str],
) -> tuple[Any, tuple[str, ...]]:
    """``document`` with only the fields of ``permitted`` categories, and the categories it
    withheld (those present in the document and not permitted, in vocabulary order).

    An entirely withheld document comes back as ``{}`` (or ``[]`` for an array)."""
    tree = compile_fields(leaf_categories)
    allowed = mask_of(permitted)
    withheld = [0]
    kept = _redact(document, tree, allowed, withheld)
    if kept is _DROP:
        kept = [] if isinstance(document, list) else {}
    return kept, categories_of(withheld[0])


class _Drop:
    __slots__ = ()


_DROP: Any = _Drop()


def _redact(value: Any, node: FieldTree, allowed: int, withheld: list[int]) -> Any:
    bit = node.bit
    if bit:
        if bit & allowed:
            return value
        withheld[0] |= bit
        return _DROP
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        children = node.children
        star = node.star
        for key, item in value.items():
            child = children.get(key, star)
            if child is None:
                continue
            child_bit = child.bit
            if child_bit:  # a leaf, settled here rather than in a call (most fields are leaves)
                if child_bit & allowed:
                    out[key] = item
                else:
                    withheld[0] |= child_bit
                continue
            kept = _redact(item, child, allowed, withheld)
            if kept is not _DROP:
                out[key] = kept
        return out if out else _DROP
    if isinstance(value, list):
        star = node.star
        if star is None or not value:
            return _DROP
        if star.bit:  # an array of scalars: all kept or all withheld
            if star.bit & allowed:
                return list(value)
            withheld[0] |= star.bit
            return _DROP
        items = [_redact(item, star, allowed, withheld) for item in value]
        kept_items = [item for item in items if item is not _DROP]
        return kept_items if kept_items else _DROP
    return _DROP  # a scalar where the schema has an object or array: not a known field
