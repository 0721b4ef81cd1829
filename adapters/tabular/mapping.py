"""The mapping file: how the columns of a spreadsheet become a shared document, and back.

A mapping is YAML (or JSON) like this (``adapters/mappings/dif-estatal.yaml`` is a full one)::

    schema: case-record/1            # the shared schema every row becomes
    local_id: folio                  # the column that identifies the row in the agency's system
                                     # (or a list, [id_local, folio]: the first a row fills)
    date_formats: [dd/mm/yyyy]       # how dates are written (ISO yyyy-mm-dd is always read)
    constants:                       # set in every document unless a column set it
      /case/status: open
    columns:
      folio: /case/case_number       # short form: column: pointer
      fecha_nacimiento: /child/date_of_birth          # a date field: read as a date
      sexo:
        pointer: /child/sex
        values: {H: male, Hombre: male, M: female, Mujer: female}   # local code: shared code
      nacionalidad: {pointer: /child/nationality, split: ",", values: {Guatemala: GT}}
      curp: {pointer: /child/identifiers/-/value, with: {type: curp}, required: true}
    groups:
      - prefix: albergue_            # albergue_1_nombre, albergue_2_nombre, …
        pointer: /placements         # → /placements/0/facility_name, /placements/1/…
        repeat: 3                    # how many groups an export writes
        columns:
          nombre: facility_name
          fecha_ingreso: start_date

``local_id`` names the column whose text is the record's local id — how the agency addresses
the record, so that importing the sheet again updates it instead of adding another. The column
may also fill a field (``folio`` above is the case number too); then an export writes the
field's value there (the local id where the field is empty), and the local id survives the
round trip only where the two are equal. A list gives the local id a column of its own:
``local_id: [id_local, folio]`` reads the first of those columns that a row fills, and an
export writes the local id into ``id_local`` (a column that fills no field) and the case
number into ``folio``.

Column names are matched without regard to case, accents, spaces or underscores. A column's
``type`` (string, date, partial_date, boolean, integer, number) is taken from the schema when
not given. ``values`` maps local codes to shared ones (a shared code is also accepted as it is);
a boolean field reads Sí/No unless ``booleans`` says otherwise. ``split`` fills an array of
codes from one cell. ``-`` in a pointer appends an element identified by ``with``. Every pointer,
type and code is checked against the schema when the mapping loads, so a typo fails at once,
with the place in the file, rather than on every row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapters.errors import MappingError
from adapters.tabular import cells
from adapters.tabular.columns import (
    Column,
    ColumnBuilder,
    Group,
    as_list,
    as_mapping,
    only,
    required_text,
)
from adapters.tabular.pointers import Tokens
from schemas.errors import UnknownSchema
from schemas.registry import SchemaRegistry, default_registry

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "mappings"
_TOP_KEYS = {"schema", "local_id", "description", "delimiter", "encoding", "date_formats",
             "booleans", "constants", "columns", "groups"}  # fmt: skip


@dataclass(frozen=True)
class ColumnMapping:
    """A checked mapping: the schema, the local id columns, columns, groups and constants."""

    source: str
    schema: str
    local_ids: tuple[str, ...]  # the local id's columns, in the order a row is read
    columns: tuple[Column, ...]
    groups: tuple[Group, ...]
    constants: tuple[tuple[Tokens, Any], ...]
    delimiter: str | None
    encoding: str


class _Loader(yaml.SafeLoader):
    """YAML without the 1.1 booleans: ``No`` and ``Sí`` are codes in a spreadsheet, not false
    and true (only ``true`` and ``false`` are booleans)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def shipped() -> list[str]:
    """Names of the mappings shipped with Puente (``dif-estatal``)."""
    return sorted(path.stem for path in SHIPPED_DIR.glob("*.yaml"))


def load_mapping(
    source: str | Path | Mapping[str, Any], registry: SchemaRegistry | None = None
) -> ColumnMapping:
    """Read and check a mapping: a file (``.yaml``, ``.yml`` or ``.json``), the name of a
    shipped one (``dif-estatal``) or an already parsed mapping. Raises :class:`MappingError`."""
    if isinstance(source, Mapping):
        return compile_mapping(source, "mapping", registry)
    path = Path(source)
    if not path.exists() and isinstance(source, str) and "/" not in source and "." not in source:
        path = SHIPPED_DIR / f"{source}.yaml"
    where = str(source)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        known = ", ".join(shipped())
        raise MappingError(
            where,
            f"no se puede leer el archivo de correspondencia ({error.strerror}); "
            f"los incluidos son: {known}",
            f"cannot read the mapping file ({error.strerror}); the shipped ones are: {known}",
        ) from None
    try:
        parsed = json.loads(text) if path.suffix == ".json" else yaml.load(text, _Loader)  # noqa: S506
    except (ValueError, yaml.YAMLError) as error:
        raise MappingError(
            where, f"no es YAML ni JSON válido: {error}", f"not valid YAML or JSON: {error}"
        ) from None
    if not isinstance(parsed, Mapping):
        raise MappingError(where, "se esperaba un objeto", "expected an object")
    return compile_mapping(parsed, where, registry)


def _local_ids(spec: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The ``local_id`` columns: one name, or a list of names tried in order."""
    names = spec.get("local_id")
    if not isinstance(names, list):
        return (required_text(spec, "local_id", where),)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise MappingError(
            f"{where}: local_id",
            "local_id es el nombre de una columna, o una lista de nombres de columna",
            "local_id is a column name, or a list of column names",
        )
    found = tuple(name.strip() for name in names)
    keys = [cells.normalise(name) for name in found]
    if len(set(keys)) != len(keys):
        raise MappingError(
            f"{where}: local_id",
            "local_id nombra la misma columna dos veces",
            "local_id names the same column twice",
        )
    return found


def compile_mapping(
    spec: Mapping[str, Any], where: str, registry: SchemaRegistry | None = None
) -> ColumnMapping:
    registry = registry or default_registry()
    only(spec, _TOP_KEYS, where)
    schema = required_text(spec, "schema", where)
    try:
        name, version = registry.parse_schema_ref(schema, require_version=True)
    except UnknownSchema as error:
        raise MappingError(f"{where}: schema", error.message_es, error.message_en) from None
    builder = ColumnBuilder(registry.fields(name, version), where, spec)
    columns = tuple(
        builder.column(str(column), each, (), f"columns.{column}")
        for column, each in as_mapping(spec.get("columns", {}), f"{where}: columns").items()
    )
    groups = tuple(
        builder.group(each, f"groups[{index}]")
        for index, each in enumerate(as_list(spec.get("groups", []), f"{where}: groups"))
    )
    local_ids = _local_ids(spec, where)
    # A local id column need not map to a field. The only one is always required; of several,
    # the sheet must have one (checked with the header).
    only_one = len(local_ids) == 1
    added = tuple(
        Column(name, cells.normalise(name), None, "", None, cells.text, required=only_one)
        for name in local_ids
        if not any(column.key == cells.normalise(name) for column in columns)
    )
    columns = (*added, *columns)
    delimiter = spec.get("delimiter")
    if delimiter not in (None, "auto", ",", ";", "\t", "|"):
        raise MappingError(
            f"{where}: delimiter",
            "el separador debe ser «,», «;», tabulador, «|» o auto",
            "the delimiter must be ',', ';', tab, '|' or auto",
        )
    return ColumnMapping(
        source=where,
        schema=f"{name}/{version}",
        local_ids=local_ids,
        columns=columns,
        groups=groups,
        constants=builder.constants(spec.get("constants", {}), (), "constants"),
        delimiter=None if delimiter in (None, "auto") else delimiter,
        encoding=str(spec.get("encoding", "utf-8-sig")),
    )
