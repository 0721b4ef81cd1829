"""Which columns of a sheet give a field the schema requires and a row left out.

The schema's reason for a missing field names the field (``required field 'closure' is
missing``), which the office does not see in its sheet: it sees columns. :func:`columns_to_fill`
finds the mapping's columns that would have given that field (``fecha_cierre``,
``motivo_cierre`` for ``/closure``), named as the sheet's header names them, and the ones the
mapping has but the sheet lacks (add them); :func:`naming_columns` adds them to the reason, in
Spanish and English. Generally: a required field anywhere (``/closure``, ``/closure/reason``,
``/placements/1/type``), and the fields of "at least one of" (a date of birth or an age
estimate). Only rejected rows get here, so none of this is on the import's hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.base import Problem
from adapters.tabular import cells
from adapters.tabular.columns import Group
from adapters.tabular.mapping import ColumnMapping
from adapters.tabular.pointers import APPEND, MISSING, Token, Tokens, get, parse_pointer
from adapters.tabular.rows import HeaderPlan
from schemas.fields import FieldInfo, find_field
from schemas.validation import ValidationFailure
from schemas.wording import field_name

#: Reasons of a missing field (a required one; "at least one of" some fields).
MISSING_KEYWORDS = ("required", "dependentRequired")
ONE_OF_KEYWORDS = ("anyOf", "oneOf")
#: Columns named in one reason (a whole group of columns would make it unreadable).
NAMED_COLUMNS = 8


@dataclass(frozen=True)
class Feeding:
    """A column that gives a field: as the sheet's header names it, or as the mapping does
    when the sheet lacks it (``in_sheet`` false)."""

    label: str
    in_sheet: bool
    #: Where its value goes below the field (``("reason",)`` for ``/closure``).
    below: Tokens = ()


def naming_columns(
    failure: ValidationFailure,
    mapping: ColumnMapping,
    plan: HeaderPlan,
    row: list[str],
    data: Any,
    fields: Mapping[str, FieldInfo],
) -> Problem | None:
    """``failure`` — a field missing — said with the columns that give that field (``fields``:
    the schema's, :meth:`~schemas.registry.SchemaRegistry.fields`); None when it is no such
    failure, or no column of the mapping gives the field. Of the columns that give it, those
    that give what the field itself requires (a closure's date and reason, not its summary)
    are named, when there are any."""
    if failure.keyword not in MISSING_KEYWORDS + ONE_OF_KEYWORDS:
        return None
    try:
        at = parse_pointer(failure.pointer)
    except ValueError:
        return None
    found: list[Feeding] = []
    for name in _missing_names(failure, mapping, at, data, fields):
        feeding = columns_to_fill(mapping, plan, row, (*at, name))
        needed = [each for each in feeding if _required_below(fields, (*at, name), each.below)]
        for each in needed or feeding:
            if each.label not in {known.label for known in found}:
                found.append(each)
    if not found:
        return None
    one_of = failure.keyword in ONE_OF_KEYWORDS
    listed_es, listed_en = _listed(found)
    if one_of:
        es = f"llene al menos una de las columnas que los dan: {listed_es}"
        en = f"fill in at least one of the columns that give them: {listed_en}"
    elif len(found) == 1:
        es = f"llene la columna que lo da: {listed_es}"
        en = f"fill in the column that gives it: {listed_en}"
    else:
        es = f"llene las columnas que lo dan: {listed_es}"
        en = f"fill in the columns that give it: {listed_en}"
    return Problem(failure.pointer, f"{failure.message_es}; {es}", f"{failure.message_en}; {en}")


def _missing_names(
    failure: ValidationFailure,
    mapping: ColumnMapping,
    at: Tokens,
    data: Any,
    fields: Mapping[str, FieldInfo],
) -> list[str]:
    """The fields under ``at`` the failure says are missing: of the names the mapping's
    columns give there and the row did not, those the failure's message names (as the schema's
    own wording names a field, :func:`~schemas.wording.field_name`)."""
    names: list[str] = []
    for tokens in _pointers(mapping):
        name = _next_name(tokens, at)
        if name is None or name in names or get(data, (*at, name)) is not MISSING:
            continue
        info = find_field(fields, (*at, name))
        _, named_en = field_name(name, info.title if info is not None else None)
        if named_en in failure.message_en:
            names.append(name)
    return names


def _required_below(fields: Mapping[str, FieldInfo], at: Tokens, below: Tokens) -> bool:
    """Whether each field from ``at`` down ``below`` is one its object requires (an element
    of a list counts as its list)."""
    path = list(at)
    for token in below:
        path.append(0 if token == APPEND else token)
        if isinstance(token, int) or token == APPEND:
            continue
        info = find_field(fields, path)
        if info is None or not info.required:
            return False
    return True


def _pointers(mapping: ColumnMapping) -> list[Tokens]:
    """Where the mapping's columns put values, a group's columns in its first element."""
    pointers = [column.tokens for column in mapping.columns if column.tokens]
    for group in mapping.groups:
        pointers.extend((*group.tokens, 0, *(c.tokens or ())) for c in group.columns.values())
    return pointers


def _next_name(tokens: Tokens, at: Tokens) -> str | None:
    """The key right after ``at`` in ``tokens``, when ``tokens`` goes through ``at``."""
    if len(tokens) <= len(at) or not _through(tokens[: len(at)], at):
        return None
    token = tokens[len(at)]
    return token if isinstance(token, str) and token != APPEND else None


def _through(tokens: Sequence[Token], at: Sequence[Token]) -> bool:
    """Whether a column's pointer (``-`` for any element, ``0`` for a group's) leads to the
    place ``at`` names (``/placements/1``): element indexes match any element."""
    for token, wanted in zip(tokens, at, strict=True):
        if isinstance(wanted, int):
            if not (isinstance(token, int) or token == APPEND):
                return False
        elif token != wanted:
            return False
    return True


def columns_to_fill(
    mapping: ColumnMapping, plan: HeaderPlan, row: list[str], target: Tokens
) -> list[Feeding]:
    """The columns that give the field at ``target`` (``("closure",)``, ``("placements", 1,
    "type")``), in the mapping's order."""
    in_sheet = {id(column): plan.header[index].strip() for index, column in plan.simple}
    found = [
        Feeding(
            in_sheet.get(id(column), column.name),
            id(column) in in_sheet,
            column.tokens[len(target) :],
        )
        for column in mapping.columns
        if column.tokens and _feeds(column.tokens, target)
    ]
    for group_index, group in enumerate(mapping.groups):
        found.extend(_group_columns(plan, row, group_index, group, target))
    return found


def _feeds(tokens: Tokens, target: Tokens) -> bool:
    return len(tokens) >= len(target) and _through(tokens[: len(target)], target)


def _group_columns(
    plan: HeaderPlan, row: list[str], group_index: int, group: Group, target: Tokens
) -> list[Feeding]:
    """The columns of a group (``albergue_N_*``) that give ``target``: those of its first
    numbered set when the target holds the list; those of the element's own set when it is in
    one element (``/placements/1/type``: the second set the row filled, as the row builder
    counts them)."""
    numbers: dict[int, dict[int, str]] = {}  # set number → column → its header
    for index, each_group, number, column in plan.grouped:
        if each_group == group_index:
            numbers.setdefault(number, {})[id(column)] = plan.header[index].strip()
    array = group.tokens
    if len(target) <= len(array):
        if not _through(array[: len(target)], target):
            return []
        number = min(numbers, default=1)
        relative: Tokens = ()
        lead: Tokens = (*array[len(target) :], 0)  # from the target down to an element
    elif _through(target[: len(array)], array) and isinstance(target[len(array)], int):
        filled = [n for n in sorted(numbers) if _fills(row, plan, group_index, n)]
        element = int(target[len(array)])
        if element >= len(filled):
            return []
        number, relative, lead = filled[element], target[len(array) + 1 :], ()
    else:
        return []
    present = numbers.get(number, {})
    return [
        Feeding(
            present.get(id(column), f"{group.prefix}{number}_{column.name}"),
            id(column) in present,
            (*lead, *(column.tokens or ())[len(relative) :]),
        )
        for column in group.columns.values()
        if _feeds(column.tokens or (), relative)
    ]


def _fills(row: list[str], plan: HeaderPlan, group_index: int, number: int) -> bool:
    """Whether a numbered set of a group's cells gives its element a value, as the row
    builder decides it: a cell with text that reads."""
    for index, each_group, each_number, column in plan.grouped:
        if (each_group, each_number) != (group_index, number):
            continue
        text = row[index].strip() if index < len(row) else ""
        parts = text.split(column.split) if column.split is not None else [text]
        try:
            for part in parts:
                if part.strip() and column.convert is not None:
                    column.convert(part.strip())
        except cells.CellError:
            continue  # a cell that does not read gives nothing
        if any(part.strip() for part in parts):
            return True
    return False


def _listed(found: list[Feeding]) -> tuple[str, str]:
    shown = found[:NAMED_COLUMNS]
    es = ", ".join(
        f"«{each.label}»" + ("" if each.in_sheet else " (no está en la hoja: agréguela)")
        for each in shown
    )
    en = ", ".join(
        f"'{each.label}'" + ("" if each.in_sheet else " (not in the sheet: add it)")
        for each in shown
    )
    more = len(found) - len(shown)
    if more:
        es, en = f"{es} y {more} más", f"{en} and {more} more"
    return es, en
