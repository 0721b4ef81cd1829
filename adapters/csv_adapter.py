"""Spreadsheet exports (CSV), read and written through a mapping file.

``decode`` streams: bytes are decoded as they arrive (UTF-8 with or without a byte-order mark,
else Windows-1252; see :mod:`adapters.tabular.text`), the delimiter is taken from the header
line unless the mapping or the caller fixes it, and rows are read one at a time, so a 1 GB
export needs no more memory than a small one. Positions are data rows, 1-based (the header
is row 0; a spreadsheet program shows data row *n* as row *n + 1*).

The header is checked once: a required column that is missing is one problem at position
``0`` (the rows are still read and reported). Each row becomes a ``case-record`` (or whatever
schema the mapping names) and is validated; a cell that cannot be read is a problem at
``column:<name>``, a document that is not valid has problems at JSON pointers into it, each
naming the column its value came from.

``write_rejects`` writes rejected rows as they came — same delimiter and encoding, the cells
in their order — after an ``errores/errors`` column with the reasons, so the office can fix
them in the spreadsheet and import the file again (the extra column is ignored on import).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import IO, Any

from adapters.base import Item, Problem, problems_as_text
from adapters.envelopes import data_validator
from adapters.errors import AdapterError, MappingError
from adapters.tabular.mapping import ColumnMapping, load_mapping, shipped
from adapters.tabular.rows import (
    CsvRow,
    HeaderPlan,
    build_document,
    column_for,
    export_header,
    export_row,
    plan_header,
    value_sources,
)
from adapters.tabular.text import UTF8, TextLines, sniff_delimiter
from schemas.envelope import ENVELOPE_SCHEMA
from schemas.registry import SchemaRegistry

REJECTS_COLUMN = "errores/errors"
MAX_LOCAL_ID: int = ENVELOPE_SCHEMA["properties"]["local_id"]["maxLength"]


class CsvAdapter:
    """CSV spreadsheet exports through a mapping of columns to schema fields."""

    name = "csv"
    media_types = ("text/csv",)

    def __init__(
        self,
        mapping: str | Path | Mapping[str, Any] | ColumnMapping | None = None,
        *,
        registry: SchemaRegistry | None = None,
        delimiter: str | None = None,
    ) -> None:
        if mapping is None:
            known = ", ".join(shipped())
            raise MappingError(
                "csv",
                f"indique el archivo de correspondencia de columnas (--mapping ARCHIVO, o uno "
                f"de los incluidos: {known}); «puente adapters template csv» crea uno",
                f"give the column mapping file (--mapping FILE, or a shipped one: {known}); "
                "'puente adapters template csv' writes one",
            )
        self.mapping = (
            mapping if isinstance(mapping, ColumnMapping) else load_mapping(mapping, registry)
        )
        self.registry = registry
        self.delimiter = delimiter or self.mapping.delimiter
        self._validator = data_validator(self.mapping.schema, registry)
        # What the last decode found, for write_rejects: the rows go back as they came.
        self.source_delimiter = self.delimiter or ","
        self._text: TextLines | None = None

    @property
    def source_encoding(self) -> str:
        return self._text.encoding if self._text is not None else UTF8

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        self._text = text = TextLines(stream)
        lines = iter(text)
        first = next(lines, None)
        if first is None:
            return
        delimiter = self.source_delimiter = self.delimiter or sniff_delimiter(first)
        reader = csv.reader(chain((first,), lines), delimiter=delimiter)
        try:
            header = next(reader)
        except csv.Error as error:
            yield Item("0", problems=(_unreadable(error),))
            return
        plan = plan_header(self.mapping, header)
        if plan.problems:
            yield Item("0", problems=tuple(plan.problems))
        number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                number += 1
                yield Item(str(number), problems=(_unreadable(error),))
                continue
            number += 1
            if not "".join(row).strip():
                continue  # an empty row, as spreadsheets leave at the end
            yield self._item(str(number), plan, row)

    def _item(self, position: str, plan: HeaderPlan, row: list[str]) -> Item:
        source = CsvRow(plan.header, row)
        data, problems = build_document(self.mapping, plan, row)
        local_id = (
            row[plan.local_id].strip()
            if plan.local_id is not None and plan.local_id < len(row)
            else ""
        )
        if len(local_id) > MAX_LOCAL_ID:
            problems.append(
                Problem(
                    f"column:{self.mapping.local_id}",
                    f"la columna «{self.mapping.local_id}» (identificador local) tiene "
                    f"{len(local_id)} caracteres; el máximo es {MAX_LOCAL_ID}",
                    f"the column '{self.mapping.local_id}' (local id) has {len(local_id)} "
                    f"characters; at most {MAX_LOCAL_ID}",
                )
            )
        elif not local_id:
            problems.append(
                Problem(
                    f"column:{self.mapping.local_id}",
                    f"la columna «{self.mapping.local_id}» (identificador local) está vacía",
                    f"the column '{self.mapping.local_id}' (local id) is empty",
                )
            )
        if len(row) > len(plan.header) and "".join(row[len(plan.header) :]).strip():
            problems.append(
                Problem(
                    "",
                    f"la fila tiene {len(row)} celdas y el encabezado {len(plan.header)} "
                    "columnas (¿un separador dentro de un valor sin comillas?)",
                    f"the row has {len(row)} cells and the header {len(plan.header)} columns "
                    "(a delimiter inside an unquoted value?)",
                )
            )
        if not problems and self._validator.is_valid(data):
            document = {"schema": self.mapping.schema, "local_id": local_id, "data": data}
            return Item(position, document=document, source=source, local_id=local_id)
        problems.extend(self._explain(plan, row, data))
        return Item(position, problems=tuple(problems), source=source, local_id=local_id or None)

    def _explain(self, plan: HeaderPlan, row: list[str], data: Any) -> list[Problem]:
        """Validation failures, each naming the column its value came from."""
        failures = self._validator.errors(data)
        if not failures:
            return []
        where = value_sources(self.mapping, plan, row)
        problems = []
        for failure in failures:
            column = column_for(where, failure.pointer)
            if column is None:
                problems.append(Problem(failure.pointer, failure.message_es, failure.message_en))
                continue
            problems.append(
                Problem(
                    failure.pointer,
                    f"columna «{column}»: {failure.message_es}",
                    f"column '{column}': {failure.message_en}",
                )
            )
        return problems

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        """Documents of the mapping's schema as rows, UTF-8 with a byte-order mark (so Excel
        reads the accents) unless the mapping names another ``encoding``."""
        with _text_writer(out, self.mapping.encoding) as text:
            writer = csv.writer(text, delimiter=self.delimiter or ",")
            writer.writerow(export_header(self.mapping))
            for document in documents:
                if document.get("schema") != self.mapping.schema:
                    raise AdapterError(
                        f"el documento «{document.get('local_id')}» es {document.get('schema')}; "
                        f"la correspondencia es para {self.mapping.schema}",
                        f"the document '{document.get('local_id')}' is "
                        f"{document.get('schema')}; the mapping is for {self.mapping.schema}",
                    )
                writer.writerow(
                    export_row(self.mapping, str(document.get("local_id", "")), document["data"])
                )

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None:
        """Rejected rows in the delimiter and encoding of the last decoded file. Items without
        a row (the header's problems) are not rows and are left out."""
        writer = None
        with _text_writer(out, self.source_encoding) as text:
            for item in items:
                if not isinstance(item.source, CsvRow):
                    continue
                if writer is None:
                    writer = csv.writer(text, delimiter=self.source_delimiter)
                    writer.writerow([REJECTS_COLUMN, *item.source.header])
                writer.writerow([problems_as_text(item.problems), *item.source.cells])


@contextmanager
def _text_writer(out: IO[bytes], encoding: str) -> Iterator[io.TextIOWrapper]:
    """A text layer over ``out`` that is detached, not closed, when done: the caller owns
    ``out``. Characters the encoding lacks (Windows-1252 has no «→») become ``?``."""
    text = io.TextIOWrapper(out, encoding=encoding, errors="replace", newline="")
    try:
        yield text
    finally:
        text.flush()
        text.detach()


def _unreadable(error: csv.Error) -> Problem:
    return Problem(
        "",
        f"la fila no se puede leer como CSV: {error}",
        f"the row cannot be read as CSV: {error}",
    )
