"""What a spreadsheet export leaves out: the parts of a record its mapping has no column for.

A sheet holds only what its mapping covers, so importing an exported sheet again stores a new
version of each record without the rest (relatives, protection concerns, the case owner…).
:class:`Uncarried` notes, record by record as the export writes them, the parts of each that no
column (nor constant) of the mapping carries, so that ``puente export`` can say which, and of
how many records, before the office imports that file back.

It is cheap: the mapping becomes a tree of the pointers its columns fill, walked together with
each record, and a part no column reaches is counted where it starts (``/related_persons``,
``/case/owner``, ``/placements/*/operator``) without walking into it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.tabular.columns import Column
from adapters.tabular.mapping import ColumnMapping
from adapters.tabular.pointers import APPEND, Fixed, Tokens, get, template

#: The parts listed by name (the rest are counted).
SHOWN_PARTS = 40


@dataclass
class _Node:
    """Where the mapping's pointers lead: a column ends here (``whole``: everything under it
    is written), or goes on by key, by index, to any element (a group), or to the first
    element with some fields (a column with ``-`` and ``with``)."""

    whole: bool = False
    constants: list[Any] = field(default_factory=list)
    keys: dict[str, _Node] = field(default_factory=dict)
    index: dict[int, _Node] = field(default_factory=dict)
    any: _Node | None = None
    appended: list[tuple[Fixed, _Node]] = field(default_factory=list)

    def at(self, token: str | int, fixed: Fixed = ()) -> _Node:
        if token == APPEND:
            for known, node in self.appended:
                if known == fixed:
                    return node
            node = _Node()
            self.appended.append((fixed, node))
            return node
        if isinstance(token, int):
            return self.index.setdefault(token, _Node())
        return self.keys.setdefault(token, _Node())

    def element(self) -> _Node:
        if self.any is None:
            self.any = _Node()
        return self.any


def _tree(mapping: ColumnMapping) -> _Node:
    root = _Node()

    def add(base: _Node, column: Column) -> None:
        node = base
        for token in column.tokens or ():
            node = node.at(token, column.fixed)
            if token == APPEND:
                # The fields that identify the element come back with it.
                for tokens, _value in column.fixed:
                    _path(node, tokens).whole = True
        node.whole = True

    for column in mapping.columns:
        if column.tokens:
            add(root, column)
    for tokens, value in mapping.constants:
        _path(root, tokens).constants.append(value)
    for group in mapping.groups:
        element = _path(root, group.tokens).element()
        for column in group.columns.values():
            add(element, column)
        for tokens, value in group.constants:
            _path(element, tokens).constants.append(value)
    return root


def _path(node: _Node, tokens: Tokens) -> _Node:
    for token in tokens:
        node = node.at(token)
    return node


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


class Uncarried:
    """The parts of the records noted (:meth:`note`) that ``mapping`` has no column for:
    :attr:`records` how many records had any, :attr:`parts` how many records had each (by
    pointer template, ``*`` for an index)."""

    def __init__(self, mapping: ColumnMapping) -> None:
        self.mapping = mapping
        self._root = _tree(mapping)
        self.records = 0
        self.parts: Counter[str] = Counter()

    def note(self, data: Mapping[str, Any]) -> None:
        found: set[str] = set()
        self._walk(data, [self._root], [], found)
        if found:
            self.records += 1
            self.parts.update(found)

    def _walk(
        self, value: Any, nodes: Sequence[_Node], path: list[str | int], found: set[str]
    ) -> None:
        if _empty(value) or any(node.whole for node in nodes):
            return
        if any(value == constant for node in nodes for constant in node.constants):
            return  # imported again, the constant gives it back
        if isinstance(value, Mapping):
            for key, inner in value.items():
                children = [node.keys[key] for node in nodes if key in node.keys]
                if children:
                    self._walk(inner, children, [*path, key], found)
                elif not _empty(inner):
                    found.add(template([*path, key]))
        elif isinstance(value, list):
            firsts: dict[int, list[_Node]] = {}
            for node in nodes:
                for fixed, child in node.appended:  # the first element with those fields
                    number = next(
                        (n for n, each in enumerate(value) if _matches(each, fixed)), None
                    )
                    if number is not None:
                        firsts.setdefault(number, []).append(child)
            for number, inner in enumerate(value):
                children = [node.index[number] for node in nodes if number in node.index]
                children += [node.any for node in nodes if node.any is not None]
                children += firsts.get(number, [])
                if children:
                    self._walk(inner, children, [*path, number], found)
                elif not _empty(inner):
                    found.add(template([*path, number]))
        else:
            found.add(template(path))  # a value where the mapping has only deeper columns

    def shown(self) -> tuple[list[str], int]:
        """The parts to name, most records first, and how many more there are."""
        ranked = sorted(self.parts, key=lambda part: (-self.parts[part], part))
        return ranked[:SHOWN_PARTS], max(0, len(ranked) - SHOWN_PARTS)

    def warning(self, written: int) -> tuple[str, str]:
        """Said in Spanish and English: which parts of how many of the ``written`` records the
        sheet does not hold, and what importing it back would do."""
        parts, more = self.shown()
        listed = ", ".join(f"{part} ({self.parts[part]})" for part in parts)
        more_es = f" y {more} más" if more else ""
        more_en = f" and {more} more" if more else ""
        name = self.mapping.source
        return (
            f"aviso: la correspondencia {name} no tiene columnas para partes de "
            f"{self.records} de los {written} expedientes exportados: {listed}{more_es} "
            "(entre paréntesis, cuántos expedientes las tienen); si importa este archivo de "
            "nuevo, esos expedientes se reemplazan por versiones sin ellas. Para mover "
            "expedientes completos use --adapter ndjson (o json, fhir), o agregue columnas a "
            "la correspondencia",
            f"warning: the mapping {name} has no columns for parts of {self.records} of the "
            f"{written} records exported: {listed}{more_en} (in brackets, how many records "
            "hold them); imported back, this file would replace those records with versions "
            "without them. To move whole records use --adapter ndjson (or json, fhir), or add "
            "columns to the mapping",
        )


def _matches(element: Any, fixed: Fixed) -> bool:
    return all(get(element, tokens) == value for tokens, value in fixed)


def uncarried_of(adapter: Any) -> Uncarried | None:
    """An :class:`Uncarried` for a spreadsheet adapter with a mapping, else None."""
    mapping = getattr(adapter, "mapping", None)
    return Uncarried(mapping) if isinstance(mapping, ColumnMapping) else None


__all__ = ["SHOWN_PARTS", "Uncarried", "uncarried_of"]
