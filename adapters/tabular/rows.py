"""A spreadsheet row to a shared document (and back), by a :class:`ColumnMapping`.

The header is matched to the mapping once (:func:`plan_header`); each row then costs one pass
over the cells it has (:func:`build_document`). A cell that cannot be read is a problem naming
the column and the text; the row's other cells are still read, so one pass reports everything
wrong with it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from adapters.base import Problem
from adapters.tabular import cells
from adapters.tabular.columns import Column
from adapters.tabular.mapping import ColumnMapping
from adapters.tabular.pointers import APPEND, MISSING, Token, Tokens, format_pointer, get, put


class CsvRow(Mapping[str, str]):
    """The original row: column → text, as a mapping, and the cells in their order (a row can
    have more cells than the header; a rejects file writes them all)."""

    __slots__ = ("cells", "header")

    def __init__(self, header: Sequence[str], cells: list[str]) -> None:
        self.header = header
        self.cells = cells

    def __getitem__(self, column: str) -> str:
        try:
            index = self.header.index(column)
        except ValueError:
            raise KeyError(column) from None
        return self.cells[index] if index < len(self.cells) else ""

    def __iter__(self) -> Iterator[str]:
        return iter(self.header)

    def __len__(self) -> int:
        return len(self.header)

    def __repr__(self) -> str:
        return f"CsvRow({dict(self)!r})"


# The cells whose values go into one object, by how each value is placed there:
#   texts:     (cell, key) — the text as it is
#   converted: (cell, key, converter)
#   lists:     (cell, key, converter or None, separator) — ``split``
#   appended:  (cell, list key, converter or None, leaf, fixed fields) — ``-`` with ``with``
Block = tuple[
    tuple[str, ...],  # the object's key path
    list[tuple[int, str]],
    list[tuple[int, str, cells.Converter]],
    list[tuple[int, str, cells.Converter | None, str]],
    list[tuple[int, str, cells.Converter | None, str, dict[str, Any]]],
]


@dataclass
class Fill:
    """The cells that fill one object, grouped by the object (key path) each value goes in,
    and the few columns that need the general :func:`~adapters.tabular.pointers.put`
    (array indexes, ``-`` followed by a deeper pointer)."""

    columns: list[tuple[int, Column]]
    blocks: list[Block] = field(default_factory=list)
    general: list[tuple[int, Column]] = field(default_factory=list)

    @classmethod
    def of(cls, columns: list[tuple[int, Column]]) -> Fill:
        fill = cls(columns)
        by_parent: dict[tuple[str, ...], Block] = {}
        for index, column in columns:
            parent = _parent_of(column)
            if parent is None:
                fill.general.append((index, column))
                continue
            block = by_parent.setdefault(parent, (parent, [], [], [], []))
            tokens = column.tokens or ()
            if column.parent is None:
                fixed = {str(tokens[0]): value for tokens, value in column.fixed}
                block[4].append((index, str(tokens[-3]), column.convert, str(tokens[-1]), fixed))
            elif column.split is not None:
                block[3].append((index, column.leaf, column.convert, column.split))
            elif column.convert is not None:
                block[2].append((index, column.leaf, column.convert))
            else:
                block[1].append((index, column.leaf))
        fill.blocks = list(by_parent.values())
        return fill


def _parent_of(column: Column) -> tuple[str, ...] | None:
    """The object a column's value goes in, or None when only the general ``put`` can place
    it. ``/child/identifiers/-/value`` with ``{type: curp}`` goes in ``/child`` (as a new
    element of its ``identifiers`` list)."""
    if column.parent is not None:
        return column.parent
    tokens = column.tokens or ()
    appends = (
        len(tokens) >= 3
        and tokens[-2] == APPEND
        and all(isinstance(token, str) and token != APPEND for token in (*tokens[:-2], tokens[-1]))
        and column.split is None
        and all(len(fixed) == 1 and isinstance(fixed[0], str) for fixed, _ in column.fixed)
    )
    return tuple(str(token) for token in tokens[:-3]) if appends else None


@dataclass
class HeaderPlan:
    """Which cell of a row feeds which column of the mapping."""

    header: list[str]
    simple: list[tuple[int, Column]] = field(default_factory=list)
    grouped: list[tuple[int, int, int, Column]] = field(default_factory=list)  # cell, group, n
    # The cells that may give the local id, in the mapping's order, each with its column's
    # name in the mapping: a row's local id is the first of them it fills.
    local_ids: list[tuple[int, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    document: Fill = field(default_factory=lambda: Fill([]))
    elements: list[tuple[int, Fill]] = field(default_factory=list)  # group index, its cells

    def prepare(self) -> None:
        self.document = Fill.of(self.simple)
        by_element: dict[tuple[int, int], list[tuple[int, Column]]] = {}
        for index, group_index, number, column in sorted(self.grouped, key=lambda g: g[1:3]):
            by_element.setdefault((group_index, number), []).append((index, column))
        self.elements = [(key[0], Fill.of(columns)) for key, columns in by_element.items()]


def plan_header(mapping: ColumnMapping, header: list[str]) -> HeaderPlan:
    """Which cell feeds which column. A header cell matches a mapping column when their names
    are equal after :func:`cells.normalise` (case, accents, spaces and underscores), or else
    after :func:`cells.loose` too (``Fecha de nacimiento`` is ``fecha_nacimiento``) when that
    finds exactly one header cell."""
    plan = HeaderPlan(header)
    by_key: dict[str, int] = {}
    for index, name in enumerate(header):
        by_key.setdefault(cells.normalise(name), index)
    local_keys = [cells.normalise(name) for name in mapping.local_ids]
    local_ids: dict[str, tuple[int, str]] = {}
    # The required columns the header lacks, said once every column has taken its cell: a
    # hint names only a header cell no column of the mapping reads.
    missing: list[str] = []
    for column in mapping.columns:
        key = column.key if column.key in by_key else _loosely(column.key, by_key)
        if key is None:
            if column.required:
                missing.append(column.name)
            continue
        index = by_key.pop(key)
        if column.key in local_keys:
            local_ids[column.key] = (index, column.name)
        if column.tokens is not None:
            plan.simple.append((index, column))
    plan.local_ids = [local_ids[key] for key in local_keys if key in local_ids]
    no_local_id = not plan.local_ids and not any(
        column.required for column in mapping.columns if column.key in local_keys
    )
    for group_index, group in enumerate(mapping.groups):
        pattern = re.compile(re.escape(group.key) + r"(\d+)_(.+)")
        found = set()
        by_loose_suffix = {cells.loose(suffix): suffix for suffix in group.columns}
        for key, index in list(by_key.items()):
            match = pattern.fullmatch(key)
            suffix = match[2] if match else None
            if suffix is not None and suffix not in group.columns:
                suffix = by_loose_suffix.get(cells.loose(suffix))
            if match and suffix is not None:
                plan.grouped.append((index, group_index, int(match[1]), group.columns[suffix]))
                found.add(suffix)
                del by_key[key]
        for column in group.columns.values():
            if column.required and column.key not in found:
                missing.append(f"{group.prefix}1_{column.name}")
    if no_local_id:
        plan.problems.append(_missing_local_id(mapping.local_ids, by_key))
    plan.problems.extend(_missing_column(name, by_key) for name in missing)
    plan.problems.extend(_repeated_columns(plan))
    plan.prepare()
    return plan


def _repeated_columns(plan: HeaderPlan) -> list[Problem]:
    """A column the mapping reads that the header names twice: only one of them would be read
    and the other silently left out, and nobody can tell which one holds the right data."""
    used = {index for index, _ in plan.simple} | {entry[0] for entry in plan.grouped}
    used |= {index for index, _ in plan.local_ids}
    seen: dict[str, list[int]] = {}
    for index, name in enumerate(plan.header):
        key = cells.normalise(name)
        if key:
            seen.setdefault(key, []).append(index)
    problems = []
    for indexes in seen.values():
        if len(indexes) > 1 and indexes[0] in used:
            name = plan.header[indexes[0]].strip()
            where = ", ".join(str(index + 1) for index in indexes)
            problems.append(
                Problem(
                    f"column:{name}",
                    f"la columna «{name}» aparece más de una vez (columnas {where}): solo se "
                    "leería una; deje una sola, o cambie el nombre de las demás",
                    f"the column '{name}' appears more than once (columns {where}): only one "
                    "would be read; keep one, or rename the others",
                )
            )
    return problems


def _loosely(key: str, unused: Mapping[str, int]) -> str | None:
    """The one unused header key that is ``key`` but for connecting words, if exactly one."""
    wanted = cells.loose(key)
    found = [each for each in unused if cells.loose(each) == wanted]
    return found[0] if len(found) == 1 else None


def _missing_column(name: str, unused: Mapping[str, int]) -> Problem:
    close = get_close_matches(cells.normalise(name), list(unused), n=2)
    hint_es = f"; ¿es {' o '.join(close)}?" if close else ""
    hint_en = f"; is it {' or '.join(close)}?" if close else ""
    return Problem(
        f"column:{name}",
        f"falta la columna obligatoria «{name}»{hint_es}",
        f"the required column '{name}' is missing{hint_en}",
    )


def _missing_local_id(names: Sequence[str], unused: Mapping[str, int]) -> Problem:
    if len(names) == 1:
        return _missing_column(names[0], unused)
    return Problem(
        f"column:{names[0]}",
        "falta la columna del identificador local: «" + "» o «".join(names) + "»",
        "the local id column is missing: '" + "' or '".join(names) + "'",
    )


def column_problem(column: str, text: str, error: cells.CellError) -> Problem:
    return Problem(
        f"column:{column}",
        f"columna «{column}» = «{text}»: {error.message_es}",
        f"column '{column}' = '{text}': {error.message_en}",
    )


def build_document(
    mapping: ColumnMapping, plan: HeaderPlan, row: list[str]
) -> tuple[dict[str, Any], list[Problem]]:
    """The shared document a row gives, and the problems of its cells."""
    if len(row) < len(plan.header):
        row = row + [""] * (len(plan.header) - len(row))
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    _fill(data, plan.document, plan.header, row, problems)
    for group_index, fill in plan.elements:
        element: dict[str, Any] = {}
        _fill(element, fill, plan.header, row, problems)
        if element:
            group = mapping.groups[group_index]
            _set_missing(element, group.constants)
            array = get(data, group.tokens)
            if array is MISSING:
                array = []
                put(data, group.tokens, array)
            array.append(element)
    _set_missing(data, mapping.constants)
    return data, problems


def _fill(
    target: dict[str, Any], fill: Fill, header: list[str], row: list[str], problems: list[Problem]
) -> None:
    """Convert the cells of ``fill`` and put their values into ``target``.

    This is the per-cell hot path of an import, hence its shape: one plain loop per way of
    placing a value, and the values of one object gathered first so the object is made (or
    found) once, only when it gets a value.
    """
    for parent, texts, converted, lists, appended in fill.blocks:
        values: dict[str, Any] = {}
        for index, key in texts:
            text = row[index]
            if text:
                text = text.strip()
                if text:
                    values[key] = text
        for index, key, convert in converted:
            text = row[index]
            if text:
                text = text.strip()
                if text:
                    try:
                        values[key] = convert(text)
                    except cells.CellError as error:
                        problems.append(column_problem(header[index], text, error))
        for index, key, maybe_convert, separator in lists:
            text = row[index].strip()
            if text:
                try:
                    parts = [part.strip() for part in text.split(separator)]
                    values[key] = [
                        maybe_convert(part) if maybe_convert else part for part in parts if part
                    ]
                except cells.CellError as error:
                    problems.append(column_problem(header[index], text, error))
        for index, key, maybe_convert, leaf, fixed in appended:
            text = row[index].strip()
            if text:
                try:
                    element = {**fixed, leaf: maybe_convert(text) if maybe_convert else text}
                except cells.CellError as error:
                    problems.append(column_problem(header[index], text, error))
                    continue
                values.setdefault(key, []).append(element)
        if values:
            node = target
            for name in parent:
                child = node.get(name)
                if child is None:
                    child = node[name] = {}
                node = child
            node.update(values)
    for index, column in fill.general:
        text = row[index].strip()
        if text:
            try:
                value = _value(column, text)
            except cells.CellError as error:
                problems.append(column_problem(header[index], text, error))
                continue
            put(target, column.tokens or (), value, column.fixed)


def _value(column: Column, text: str) -> Any:
    convert = column.convert or str
    if column.split is None:
        return convert(text)
    return [convert(part.strip()) for part in text.split(column.split) if part.strip()]


def _set_missing(target: dict[str, Any], constants: Iterable[tuple[Tokens, Any]]) -> None:
    for tokens, constant in constants:
        if get(target, tokens) is MISSING:
            if isinstance(constant, (dict, list)):
                constant = copy.deepcopy(constant)
            put(target, tokens, constant)


def value_sources(mapping: ColumnMapping, plan: HeaderPlan, row: list[str]) -> dict[str, str]:
    """Concrete pointer of each value a row gives → the column it came from, to say which
    column a validation failure is about. Built the slow, general way: only for rejected rows.
    """
    where: dict[str, str] = {}
    width = len(row)
    data: dict[str, Any] = {}

    def place(target: Any, column: Column, index: int, base: Sequence[Token]) -> bool:
        text = row[index].strip() if index < width else ""
        try:
            value = _value(column, text) if text else None
        except cells.CellError:
            return False
        if value is None:
            return False
        path: list[Token] = []
        put(target, column.tokens or (), value, column.fixed, path)
        where[format_pointer([*base, *path])] = plan.header[index]
        return True

    for index, column in plan.simple:
        place(data, column, index, ())
    counts: dict[int, int] = {}
    for group_index, fill in plan.elements:
        group = mapping.groups[group_index]
        position = counts.get(group_index, 0)
        element: dict[str, Any] = {}
        placed = [place(element, column, index, (*group.tokens, position))
                  for index, column in fill.columns]  # fmt: skip
        if any(placed):
            counts[group_index] = position + 1
    return where


def column_for(where: Mapping[str, str], pointer: str) -> str | None:
    """The column whose value is at ``pointer`` or contains it (``/child/nationality/1`` is in
    the value of the column mapped to ``/child/nationality``)."""
    while pointer:
        if pointer in where:
            return where[pointer]
        pointer = pointer.rpartition("/")[0]
    return None


def export_header(mapping: ColumnMapping) -> list[str]:
    header = [column.name for column in mapping.columns]
    for group in mapping.groups:
        for number in range(1, group.repeat + 1):
            header.extend(
                f"{group.prefix}{number}_{column.name}" for column in group.columns.values()
            )
    return header


def export_row(mapping: ColumnMapping, local_id: str, data: Mapping[str, Any]) -> list[str]:
    """The cells of one document, in :func:`export_header` order: each column holds what the
    mapping says it holds. A column that fills a field holds the field's value, even when it
    is the local id column too; a local id column that fills no field holds ``local_id``.
    When every local id column fills a field, one whose field is empty holds ``local_id``,
    so that the row can be imported again. What the mapping does not cover is left out;
    array elements beyond a group's ``repeat`` too."""
    local_keys = {cells.normalise(name) for name in mapping.local_ids}
    own_column = any(
        column.tokens is None for column in mapping.columns if column.key in local_keys
    )
    row = []
    for column in mapping.columns:
        if column.tokens is None:
            row.append(local_id if column.key in local_keys else "")
            continue
        cell = _cell(column, get(data, column.tokens, column.fixed))
        if not cell and not own_column and column.key in local_keys:
            cell = local_id
        row.append(cell)
    for group in mapping.groups:
        array = get(data, group.tokens)
        elements = array if isinstance(array, list) else []
        for number in range(group.repeat):
            element = elements[number] if number < len(elements) else {}
            row.extend(
                _cell(column, get(element, column.tokens or (), column.fixed))
                for column in group.columns.values()
            )
    return row


def _cell(column: Column, value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    if column.split is not None and isinstance(value, list):
        return column.split.join(column.render(each) for each in value)
    return column.render(value)
