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
- a value at a place the map does not know is removed (fail closed; valid documents have none);
- some codes say more than their field's category: an identifier of type ``comar_case`` says
  the child seeks asylum (``legal_status``) though identifiers are ``identity``. The optional
  second map, ``value_categories`` (``schemas.registry.SchemaRegistry.value_categories``:
  pointer template of a leaf → value → category), names them: an object whose leaf holds such
  a value is kept only when that category is permitted too, and is removed whole otherwise
  (keeping the rest of an asylum case number would still say it is one).

The input document is never modified; the result shares the kept scalar values with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consent.vocabulary import CATEGORY_BIT, categories_of, mask_of

STAR = "*"


class FieldTree:
    """The leaf-category map as a tree of property names (compile once per schema)."""

    __slots__ = ("bit", "children", "guards", "star")

    def __init__(self) -> None:
        self.bit = 0  # the category bit of a leaf; 0 for an inner node
        self.children: dict[str, FieldTree] = {}
        self.star: FieldTree | None = None
        #: For an object: (member, value → category bit) of its leaves whose value needs a
        #: category of its own (see ``value_categories``); empty for nearly every node.
        self.guards: tuple[tuple[str, Mapping[Any, int]], ...] = ()

    @classmethod
    def from_leaf_categories(
        cls,
        leaf_categories: Mapping[str, str],
        value_categories: Mapping[str, Mapping[str, str]] | None = None,
    ) -> FieldTree:
        root = cls()
        for pointer, category in leaf_categories.items():
            cls._node(root, pointer, create=True).bit = _bit(category, pointer)
        for pointer, by_value in (value_categories or {}).items():
            if pointer not in leaf_categories:
                raise ValueError(f"value categories for {pointer!r}, which is not a leaf")
            parent_pointer, _, member = pointer.rpartition("/")
            parent = cls._node(root, parent_pointer, create=False)
            bits = {value: _bit(category, pointer) for value, category in by_value.items()}
            name = member.replace("~1", "/").replace("~0", "~")
            parent.guards = (*parent.guards, (name, bits))
        return root

    @classmethod
    def _node(cls, root: FieldTree, pointer: str, *, create: bool) -> FieldTree:
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
        return node


def _bit(category: str, pointer: str) -> int:
    if category not in CATEGORY_BIT:
        raise ValueError(f"unknown data category {category!r} for {pointer!r}")
    return CATEGORY_BIT[category]


_TREES: dict[tuple[int, int], tuple[object, object, FieldTree]] = {}
_TREES_LIMIT = 64


def compile_fields(
    leaf_categories: Mapping[str, str] | FieldTree,
    value_categories: Mapping[str, Mapping[str, str]] | None = None,
) -> FieldTree:
    """The :class:`FieldTree` of the maps, remembered for the same map objects."""
    if isinstance(leaf_categories, FieldTree):
        return leaf_categories
    key = (id(leaf_categories), id(value_categories))
    known = _TREES.get(key)
    if known is not None and known[0] is leaf_categories and known[1] is value_categories:
        return known[2]
    tree = FieldTree.from_leaf_categories(leaf_categories, value_categories)
    if len(_TREES) >= _TREES_LIMIT:
        _TREES.clear()
    # Keeping references to the maps keeps their ids from being reused by other objects.
    _TREES[key] = (leaf_categories, value_categories, tree)
    return tree


def redact(
    document: Any,
    leaf_categories: Mapping[str, str] | FieldTree,
    permitted: Iterable[str],
    value_categories: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[Any, tuple[str, ...]]:
    """``document`` with only the fields of ``permitted`` categories, and the categories it
    withheld (those present in the document and not permitted, in vocabulary order).
    ``value_categories``: see the module documentation.

    An entirely withheld document comes back as ``{}`` (or ``[]`` for an array)."""
    tree = compile_fields(leaf_categories, value_categories)
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
        for member, bits in node.guards:
            needed = bits.get(value.get(member)) if isinstance(value.get(member), str) else None
            if needed and not needed & allowed:
                withheld[0] |= needed
                return _DROP
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
