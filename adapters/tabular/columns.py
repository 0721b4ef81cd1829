"""Columns of a mapping file, checked against the schema as they are built.

:class:`ColumnBuilder` turns the ``columns`` and ``groups`` parts of a mapping (see
:mod:`adapters.tabular.mapping`) into :class:`Column` and :class:`Group` values: each pointer
must name a field of the schema, each type and code must fit that field, so a mistake in the
mapping is reported once, with its place in the file, instead of on every row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from typing import Any

from adapters.errors import MappingError
from adapters.tabular import cells
from adapters.tabular.pointers import APPEND, Fixed, Tokens, parse_pointer, template
from schemas.fields import FieldInfo

TYPES = ("string", "date", "partial_date", "boolean", "integer", "number")
_COLUMN_KEYS = {"pointer", "type", "values", "split", "with", "required", "date_formats"}
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,), "integer": (int,), "number": (int, float)
}  # fmt: skip
_GROUP_KEYS = {"prefix", "pointer", "repeat", "columns", "constants"}


@dataclass(frozen=True)
class Column:
    """One column: where its value goes, how its text is read and written back."""

    name: str
    key: str
    tokens: Tokens | None  # None: the column only gives the local id
    pointer: str
    convert: cells.Converter | None  # None: the text as it is
    render: cells.Renderer
    split: str | None = None
    fixed: Fixed = ()
    required: bool = False
    # A pointer of object keys only (most of them) is set without walking it: the row builder
    # keeps each parent object it made, by ``parent``, and sets ``leaf`` in it.
    parent: tuple[str, ...] | None = field(init=False, default=None)
    leaf: str = field(init=False, default="")

    def __post_init__(self) -> None:
        tokens = self.tokens or ()
        if tokens and all(type(t) is str and t != APPEND for t in tokens):
            object.__setattr__(self, "parent", tuple(str(t) for t in tokens[:-1]))
            object.__setattr__(self, "leaf", tokens[-1])


@dataclass(frozen=True)
class Group:
    """Numbered column groups (``albergue_1_*``, ``albergue_2_*``) filling one array."""

    prefix: str
    key: str
    tokens: Tokens
    pointer: str
    columns: Mapping[str, Column]  # by normalised suffix; pointers relative to the element
    repeat: int
    constants: tuple[tuple[Tokens, Any], ...]


class ColumnBuilder:
    """Turns the parts of a mapping into columns, checking each against the schema's fields."""

    def __init__(self, fields: Mapping[str, FieldInfo], where: str, spec: Mapping[str, Any]):
        self.fields = fields
        self.where = where
        formats = spec.get("date_formats", ["dd/mm/yyyy"])
        self.date_formats = self._date_formats(formats, "date_formats")
        booleans = as_mapping(spec.get("booleans", {}), f"{where}: booleans")
        booleans = {key.lower(): words for key, words in booleans.items()}  # YAML reads True
        only(booleans, {"true", "false"}, f"{where}: booleans")
        self.true_words = [str(w) for w in booleans.get("true", cells.TRUE_WORDS)]
        self.false_words = [str(w) for w in booleans.get("false", cells.FALSE_WORDS)]

    def fail(self, at: str, es: str, en: str) -> MappingError:
        return MappingError(f"{self.where}: {at}", es, en)

    def _date_formats(self, formats: Any, at: str) -> list[cells.DateFormat]:
        if isinstance(formats, str):
            formats = [formats]
        try:
            return [cells.DateFormat.parse(str(each)) for each in as_list(formats, at)]
        except ValueError as error:
            raise self.fail(
                at,
                f"formato de fecha no válido «{error}» (use dd, mm, yyyy: dd/mm/yyyy)",
                f"invalid date format '{error}' (use dd, mm, yyyy: dd/mm/yyyy)",
            ) from None

    def field(self, pointer: str, base: Tokens, at: str) -> tuple[Tokens, FieldInfo]:
        relative = pointer if pointer.startswith("/") or not base else "/" + pointer
        try:
            tokens = base + parse_pointer(relative)
        except ValueError:
            raise self.fail(
                at,
                f"«{pointer}» no es un puntero JSON (debe empezar con /)",
                f"'{pointer}' is not a JSON pointer (it must start with /)",
            ) from None
        info = self.fields.get(template(tokens))
        if info is None:
            close = get_close_matches(template(tokens), list(self.fields), n=3)
            hint_es = f"; ¿quiso decir {', '.join(close)}?" if close else ""
            hint_en = f"; did you mean {', '.join(close)}?" if close else ""
            raise self.fail(
                at,
                f"el esquema no tiene el campo {template(tokens)}{hint_es}",
                f"the schema has no field {template(tokens)}{hint_en}",
            )
        return tokens, info

    def column(self, name: str, spec: Any, base: Tokens, at: str) -> Column:
        if isinstance(spec, str):
            spec = {"pointer": spec}
        spec = as_mapping(spec, f"{self.where}: {at}")
        only(spec, _COLUMN_KEYS, f"{self.where}: {at}")
        tokens, info = self.field(required_text(spec, "pointer", f"{self.where}: {at}"), base, at)
        split = spec.get("split")
        if split is not None:
            array = self.fields.get(template(tokens) + "/*")
            if array is None or not array.leaf:
                raise self.fail(
                    f"{at}.split",
                    "split solo sirve para un campo que es una lista de valores",
                    "split only works for a field that is a list of values",
                )
            info = array
        elif not info.leaf:
            raise self.fail(
                at,
                f"{info.pointer} no es un valor sino un grupo de campos; indique uno de ellos",
                f"{info.pointer} is not a value but a group of fields; name one of them",
            )
        if APPEND in tokens and (tokens[-1] == APPEND or "with" not in spec):
            raise self.fail(
                at,
                "un puntero con «-» añade un elemento: indique su campo y «with» (lo que lo "
                "identifica), o use split para una lista de valores",
                "a pointer with '-' appends an element: name its field and 'with' (what "
                "identifies it), or use split for a list of values",
            )
        fixed: Fixed = ()
        if "with" in spec:
            append_at = tokens.index(APPEND) if APPEND in tokens else None
            if append_at is None:
                raise self.fail(f"{at}.with", "«with» requiere «-» en el puntero",
                                "'with' needs '-' in the pointer")  # fmt: skip
            fixed = self.constants(spec["with"], tokens[: append_at + 1], f"{at}.with")
            fixed = tuple((t[append_at + 1 :], value) for t, value in fixed)
        convert, render = self.converter(spec, info, at)
        return Column(
            name=name,
            key=cells.normalise(name),
            tokens=tokens,
            pointer=info.pointer,
            convert=convert,
            render=render,
            split=None if split is None else str(split),
            fixed=fixed,
            required=bool(spec.get("required", False)),
        )

    def converter(
        self, spec: Mapping[str, Any], info: FieldInfo, at: str
    ) -> tuple[cells.Converter | None, cells.Renderer]:
        kind = spec.get("type") or _inferred_type(info)
        if kind not in TYPES:
            raise self.fail(
                f"{at}.type",
                f"tipo desconocido «{kind}»; tipos: {', '.join(TYPES)}",
                f"unknown type '{kind}'; types: {', '.join(TYPES)}",
            )
        convert: cells.Converter | None
        render: cells.Renderer = cells.text
        if kind in ("date", "partial_date"):
            formats = self.date_formats
            if "date_formats" in spec:
                formats = self._date_formats(spec["date_formats"], f"{at}.date_formats")
            convert, render = cells.dates(formats, partial=kind == "partial_date")
        elif kind == "boolean":
            convert, render = cells.boolean(self.true_words, self.false_words)
        elif kind == "integer":
            convert = cells.integer
        elif kind == "number":
            convert = cells.number
        else:
            convert = None
        values = spec.get("values")
        if values is None:
            return convert, render
        values = as_mapping(values, f"{self.where}: {at}.values")
        for local, shared in values.items():
            self._check_code(info, kind, shared, f"{at}.values.{local}")
        fallback = None if kind == "string" else convert
        return cells.coded(values, fallback), cells.render_coded(values, render)

    def _check_code(self, info: FieldInfo, kind: str, shared: Any, at: str) -> None:
        if info.labels and shared not in info.labels:
            codes = ", ".join(map(str, info.labels))
            raise self.fail(
                at,
                f"«{shared}» no es un código de {info.pointer} (escriba entre comillas los "
                f'códigos con ceros, como "07"); códigos: {codes}',
                f"'{shared}' is not a code of {info.pointer} (quote codes with leading zeros, "
                f'like "07"); codes: {codes}',
            )
        expected = _PYTHON_TYPES.get(kind, (str,))
        if not isinstance(shared, expected) or (kind != "boolean" and isinstance(shared, bool)):
            raise self.fail(
                at,
                f"el valor {shared!r} no es del tipo {kind} de {info.pointer}",
                f"the value {shared!r} is not of the type {kind} of {info.pointer}",
            )

    def constants(self, spec: Any, base: Tokens, at: str) -> tuple[tuple[Tokens, Any], ...]:
        found = []
        for pointer, value in as_mapping(spec, f"{self.where}: {at}").items():
            tokens, _ = self.field(str(pointer), base, f"{at}.{pointer}")
            found.append((tokens, value))
        return tuple(found)

    def group(self, spec: Any, at: str) -> Group:
        spec = as_mapping(spec, f"{self.where}: {at}")
        only(spec, _GROUP_KEYS, f"{self.where}: {at}")
        prefix = required_text(spec, "prefix", f"{self.where}: {at}")
        tokens, info = self.field(required_text(spec, "pointer", f"{self.where}: {at}"), (), at)
        if template(tokens) + "/*" not in self.fields:
            raise self.fail(f"{at}.pointer", f"{info.pointer} no es una lista",
                            f"{info.pointer} is not a list")  # fmt: skip
        element = (*tokens, 0)
        columns = {
            cells.normalise(str(suffix)): self.column(
                str(suffix), each, element, f"{at}.columns.{suffix}"
            )
            for suffix, each in as_mapping(
                spec.get("columns"), f"{self.where}: {at}.columns"
            ).items()
        }
        repeat = spec.get("repeat", 3)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 100:
            raise self.fail(f"{at}.repeat", "repeat debe ser un entero de 1 a 100",
                            "repeat must be a whole number from 1 to 100")  # fmt: skip
        return Group(
            prefix=prefix,
            key=cells.normalise(prefix),
            tokens=tokens,
            pointer=info.pointer,
            columns={key: _relative(column, len(element)) for key, column in columns.items()},
            repeat=repeat,
            constants=tuple(
                (t[len(element) :], v)
                for t, v in self.constants(spec.get("constants", {}), element, f"{at}.constants")
            ),
        )


def _relative(column: Column, depth: int) -> Column:
    return replace(column, tokens=(column.tokens or ())[depth:])


def _inferred_type(info: FieldInfo) -> str:
    return {"string (date)": "date", "boolean": "boolean", "integer": "integer",
            "number": "number"}.get(info.type, "string")  # fmt: skip


def only(spec: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(map(str, spec)) - allowed)
    if unknown:
        listed = ", ".join(sorted(allowed))
        raise MappingError(
            where,
            f"claves desconocidas {', '.join(unknown)}; se admiten: {listed}",
            f"unknown keys {', '.join(unknown)}; allowed: {listed}",
        )


def as_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MappingError(where, "se esperaba un objeto (clave: valor)",
                           "expected an object (key: value)")  # fmt: skip
    return {str(key): each for key, each in value.items()}


def as_list(value: Any, where: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise MappingError(where, "se esperaba una lista", "expected a list")
    return value


def required_text(spec: Mapping[str, Any], key: str, where: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(where, f"falta «{key}» (texto)", f"'{key}' (text) is missing")
    return value.strip()
