"""What an export leaves out: the parts of each record its format does not carry.

A sheet holds only what its mapping covers, and a Primero case only what Primero has fields
for, so importing such an export again stores a new version of each record without the rest
(relatives, protection concerns, the case owner…; health, education, a placement's facility…).
:class:`Uncarried` notes, record by record as the export writes them, the parts of each that
the format does not carry, so that ``puente export`` can say which, and of how many records,
before the office imports that file back. Any adapter says what it does not carry through
:class:`adapters.base.PartialFormat`; a spreadsheet adapter's mapping is read for it
(:class:`MappingCoverage`).

It is cheap: the mapping becomes a tree of the pointers its columns fill, walked together with
each record, and a part no column reaches is counted where it starts (``/related_persons``,
``/case/owner``, ``/placements/*/operator``) without walking into it. The same walk, over a
tree of what a record gives back once written and read again (:func:`parts_lacking`), names
what another format loses, in the same terms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.base import PartialFormat
from adapters.tabular.columns import Column
from adapters.tabular.mapping import ColumnMapping
from adapters.tabular.pointers import APPEND, Fixed, Tokens, get, template

#: The parts listed by name (the rest are counted).
SHOWN_PARTS = 40


@dataclass
class _Node:
    """Where the mapping's pointers (or a record's values, read back) lead: a column ends here
    (``whole``: everything under it is written), or goes on by key, by index, to any element
    (a group), or to the first element with some fields (a column with ``-`` and ``with``)."""

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


def _carried_tree(value: Any) -> _Node:
    """The tree of what ``value`` (a record as read back) holds: each value it has is whole,
    each element of a list read against the element at its index (so a list that shrank is
    named, ``/placements/*``)."""
    node = _Node()
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if not _empty(inner):
                node.keys[key] = _carried_tree(inner)
    elif isinstance(value, list):
        for number, inner in enumerate(value):
            if not _empty(inner):
                node.index[number] = _carried_tree(inner)
    else:
        node.whole = True
    return node


def _parts_beyond(data: Mapping[str, Any], root: _Node) -> set[str]:
    """The parts of ``data`` that no pointer of the tree ``root`` reaches, where each starts."""
    found: set[str] = set()
    _walk(data, [root], [], found)
    return found


def _walk(value: Any, nodes: Sequence[_Node], path: list[str | int], found: set[str]) -> None:
    if _empty(value) or any(node.whole for node in nodes):
        return
    if any(value == constant for node in nodes for constant in node.constants):
        return  # imported again, the constant gives it back
    if isinstance(value, Mapping):
        for key, inner in value.items():
            children = [node.keys[key] for node in nodes if key in node.keys]
            if children:
                _walk(inner, children, [*path, key], found)
            elif not _empty(inner):
                found.add(template([*path, key]))
    elif isinstance(value, list):
        firsts: dict[int, list[_Node]] = {}
        for node in nodes:
            for fixed, child in node.appended:  # the first element with those fields
                number = next((n for n, each in enumerate(value) if _matches(each, fixed)), None)
                if number is not None:
                    firsts.setdefault(number, []).append(child)
        for number, inner in enumerate(value):
            children = [node.index[number] for node in nodes if number in node.index]
            children += [node.any for node in nodes if node.any is not None]
            children += firsts.get(number, [])
            if children:
                _walk(inner, children, [*path, number], found)
            elif not _empty(inner):
                found.add(template([*path, number]))
    else:
        found.add(template(path))  # a value where the tree has only deeper pointers


def parts_lacking(data: Mapping[str, Any], read_back: Mapping[str, Any]) -> set[str]:
    """The parts of a record's ``data`` that ``read_back`` (the same record written in a
    format and read again) lacks, by pointer template where each starts — as the hub's
    ``lost_parts`` names what a new version lacks. A value that came back changed is not
    lacking."""
    return _parts_beyond(data, _carried_tree(read_back))


class MappingCoverage:
    """A spreadsheet mapping as a :class:`~adapters.base.PartialFormat`: the parts of a record
    that no column (nor constant) of ``mapping`` carries."""

    def __init__(self, mapping: ColumnMapping) -> None:
        self.mapping = mapping
        self._root = _tree(mapping)

    def uncarried(self, data: Mapping[str, Any]) -> set[str]:
        return _parts_beyond(data, self._root)


class Uncarried:
    """The parts of the records noted (:meth:`note`) that ``source`` does not carry:
    :attr:`records` how many records had any, :attr:`parts` how many records had each (by
    pointer template, ``*`` for an index). ``holder`` says, in Spanish and English, what
    lacks them (``the mapping dif-estatal has no columns for``); ``remedy``, what else the
    office may do besides exporting whole records."""

    def __init__(
        self,
        source: PartialFormat,
        holder: tuple[str, str],
        remedy: tuple[str, str] = ("", ""),
    ) -> None:
        self.source = source
        self.holder = holder
        self.remedy = remedy
        self.records = 0
        self.parts: Counter[str] = Counter()

    def note(self, data: Mapping[str, Any]) -> None:
        found = set(self.source.uncarried(data))
        if found:
            self.records += 1
            self.parts.update(found)

    def shown(self) -> tuple[list[str], int]:
        """The parts to name, most records first, and how many more there are."""
        ranked = sorted(self.parts, key=lambda part: (-self.parts[part], part))
        return ranked[:SHOWN_PARTS], max(0, len(ranked) - SHOWN_PARTS)

    def warning(self, written: int) -> tuple[str, str]:
        """Said in Spanish and English: which parts of how many of the ``written`` records the
        file does not hold, and what importing it back would do."""
        parts, more = self.shown()
        listed = ", ".join(f"{part} ({self.parts[part]})" for part in parts)
        more_es = f" y {more} más" if more else ""
        more_en = f" and {more} more" if more else ""
        (holder_es, holder_en), (remedy_es, remedy_en) = self.holder, self.remedy
        return (
            f"aviso: {holder_es} partes de {self.records} de los {written} expedientes "
            f"exportados: {listed}{more_es} (entre paréntesis, cuántos expedientes las "
            "tienen); si importa este archivo de nuevo, esos expedientes se reemplazan por "
            "versiones sin ellas. Para mover expedientes completos use --adapter ndjson (o "
            f"json, fhir){remedy_es}",
            f"warning: {holder_en} parts of {self.records} of the {written} records exported: "
            f"{listed}{more_en} (in brackets, how many records hold them); imported back, this "
            "file would replace those records with versions without them. To move whole "
            f"records use --adapter ndjson (or json, fhir){remedy_en}",
        )


def _matches(element: Any, fixed: Fixed) -> bool:
    return all(get(element, tokens) == value for tokens, value in fixed)


def uncarried_of(adapter: Any) -> Uncarried | None:
    """An :class:`Uncarried` for an adapter whose format holds only part of a record: a
    spreadsheet adapter with a mapping, or a :class:`~adapters.base.PartialFormat` (Primero);
    None for one that carries whole records."""
    mapping = getattr(adapter, "mapping", None)
    if isinstance(mapping, ColumnMapping):
        source = adapter if isinstance(adapter, PartialFormat) else MappingCoverage(mapping)
        return Uncarried(
            source,
            (
                f"la correspondencia {mapping.source} no tiene columnas para",
                f"the mapping {mapping.source} has no columns for",
            ),
            (", o agregue columnas a la correspondencia", ", or add columns to the mapping"),
        )
    if isinstance(adapter, PartialFormat):
        name = getattr(adapter, "name", type(adapter).__name__)
        return Uncarried(
            adapter,
            (f"el formato {name} no tiene lugar para", f"the {name} format has no place for"),
        )
    return None


__all__ = ["SHOWN_PARTS", "MappingCoverage", "Uncarried", "parts_lacking", "uncarried_of"]
