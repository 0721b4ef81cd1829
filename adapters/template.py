"""A blank spreadsheet and its mapping, derived from a schema: the start for an office that
has no export yet (``puente adapters template csv``).

Every field of the schema becomes a column named after its pointer
(``/child/names/given_names`` → ``child.names.given_names``), with its Spanish and English
title as a comment in the mapping. A list of codes (``/child/nationality``) is one column,
its values separated by ``|``. A list of objects (``/placements``) becomes numbered column
groups (``placements_1_type``, ``placements_2_type``); lists inside those are left out. Codes
are written with their Spanish labels ("Abierto" for ``open``), and the codes themselves are
accepted too. The office deletes the columns it does not use and renames the rest at will,
changing the mapping to match.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas.fields import FieldInfo
from schemas.registry import SchemaRegistry, default_registry

LOCAL_ID_COLUMN = "local_id"
LIST_SEPARATOR = "|"


@dataclass
class _Group:
    pointer: str
    prefix: str
    columns: list[tuple[str, FieldInfo, bool]] = field(default_factory=list)  # suffix, field, split


@dataclass(frozen=True)
class CsvTemplate:
    header: list[str]
    mapping_yaml: str


def csv_template(
    schema: str = "case-record/1", *, repeat: int = 2, registry: SchemaRegistry | None = None
) -> CsvTemplate:
    """The header and the mapping (YAML text) of a blank spreadsheet for ``schema``.
    Raises :class:`~schemas.errors.UnknownSchema`."""
    registry = registry or default_registry()
    name, version = registry.parse_schema_ref(schema, require_version=True)
    fields = registry.fields(name, version)
    columns: list[tuple[str, FieldInfo, bool, bool]] = []  # name, field, split, required
    groups: dict[str, _Group] = {}
    for pointer, info in fields.items():
        if not info.leaf or not pointer:
            continue
        head, star, rest = pointer.partition("/*")
        if not star:
            columns.append((_column_name(pointer), info, False, _always_required(pointer, fields)))
        elif rest == "":
            columns.append((_column_name(head), info, True, _always_required(head, fields)))
        elif rest.count("/*") == 0 or (rest.endswith("/*") and rest.count("/*") == 1):
            split = rest.endswith("/*")
            suffix = rest[: -len("/*")] if split else rest
            group = groups.setdefault(head, _Group(head, _column_name(head) + "_"))
            group.columns.append((_column_name(suffix), info, split))
    header = [LOCAL_ID_COLUMN, *(name for name, *_ in columns)]
    for group in groups.values():
        for number in range(1, repeat + 1):
            header.extend(f"{group.prefix}{number}_{suffix}" for suffix, *_ in group.columns)
    return CsvTemplate(header, _mapping_text(f"{name}/{version}", columns, groups, repeat))


def _column_name(pointer: str) -> str:
    return pointer.strip("/").replace("/", ".").replace("~1", "/").replace("~0", "~")


def _always_required(pointer: str, fields: Mapping[str, FieldInfo]) -> bool:
    """Required, and so is every object above it: a column the schema always needs."""
    path = pointer
    while path:
        info = fields.get(path)
        if info is None or not info.required:
            return False
        path = path.rpartition("/")[0]
    return True


def _title(info: FieldInfo) -> str:
    title = info.title or {}
    return f"{title.get('es', '')} / {title.get('en', '')}".strip(" /")


def _values(info: FieldInfo) -> dict[str, str]:
    """Spanish label → code; a label two codes share keeps the code in brackets."""
    labels = {code: str(label.get("es", code)) for code, label in info.labels.items()}
    seen = [label.casefold() for label in labels.values()]
    return {
        (label if seen.count(label.casefold()) == 1 else f"{label} ({code})"): code
        for code, label in labels.items()
    }


def _entry(
    indent: str, name: str, pointer: str, info: FieldInfo, split: bool, required: bool
) -> str:
    spec: dict[str, object] = {"pointer": pointer}
    if split:
        spec["split"] = LIST_SEPARATOR
    if required:
        spec["required"] = True
    if info.labels:
        spec["values"] = _values(info)
    flow = json.dumps(spec, ensure_ascii=False)
    return f"{indent}# {_title(info)}\n{indent}{json.dumps(name, ensure_ascii=False)}: {flow}\n"


def _mapping_text(
    schema: str,
    columns: Iterable[tuple[str, FieldInfo, bool, bool]],
    groups: Mapping[str, _Group],
    repeat: int,
) -> str:
    lines = [
        f"# Correspondencia de columnas para {schema}, generada a partir del esquema.\n",
        f"# Column mapping for {schema}, generated from the schema.\n",
        "# Borre las columnas que no use / delete the columns you do not use.\n",
        f"schema: {schema}\n",
        f"local_id: {LOCAL_ID_COLUMN}\n",
        "date_formats: [dd/mm/yyyy]\n",
        "columns:\n",
    ]
    for name, info, split, required in columns:
        pointer = info.pointer[: -len("/*")] if split else info.pointer
        lines.append(_entry("  ", name, pointer, info, split, required))
    if groups:
        lines.append("groups:\n")
    for group in groups.values():
        lines.append(f"  - prefix: {json.dumps(group.prefix)}\n")
        lines.append(f"    pointer: {group.pointer}\n")
        lines.append(f"    repeat: {repeat}\n")
        lines.append("    columns:\n")
        for suffix, info, split in group.columns:
            relative = info.pointer[len(group.pointer) + len("/*") :]
            relative = relative[: -len("/*")] if split else relative
            lines.append(_entry("      ", suffix, relative, info, split, False))
    return "".join(lines)
