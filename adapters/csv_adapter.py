"""Spreadsheet exports (CSV), read and written through a mapping file.

``decode`` streams: bytes are decoded as they arrive, line by line (UTF-8 with or without a
byte-order mark, else Windows-1252; see :mod:`adapters.tabular.text`), the delimiter is taken
from the header line unless the mapping or the caller fixes it, and rows are read one at a
time, so a 1 GB export needs no more memory than a small one. Positions are rows as a
spreadsheet program numbers them: the header is row 1, the first data row is row 2.

A file that is not CSV text at all (an Excel workbook, a PDF, UTF-16 text) is one
:class:`~adapters.base.FileProblem` and nothing is read. The header is checked once: a required
column that is missing, or a header with no column of the mapping, is one file problem at row
1 (with a did-you-mean) and no row is read — every row would fail the same way. Each row
becomes a ``case-record`` (or whatever schema the mapping names) and is validated; a cell that
cannot be read is a problem at ``column:<name>``, a document that is not valid has problems at
JSON pointers into it, each naming the column its value came from. A row with more cells than
the header is a problem; one with fewer is read with the missing cells empty, a warning when
the row is otherwise good and the first reason when it is not. A file that mixes UTF-8 text
with lines that are not UTF-8 (a cell pasted from another program) is imported, and ends with
a file problem naming the rows read as Windows-1252, so the office checks their accents. A
quote left open, and a cell longer than the csv module reads, are found and explained by
:mod:`adapters.csv_reading`: never a row silently swallowed, nor a row's cells lost.

``write_rejects`` writes rejected rows as they came — same delimiter and encoding (a
byte-order mark too; UTF-8 with one when the rows hold a character that encoding lacks), the
cells in their order — after an ``errores/errors`` column with the reasons and a ``fila/row``
column with the row's number in the file read, so the office can fix them in the spreadsheet
and import the file again (both columns are ignored on import). Formula-like text gets the
apostrophe an export gives it (:func:`_inert_as_read`), which importing takes off again. An
export puts one before a value that starts with an apostrophe too (:func:`_inert`), so
importing it gives back exactly the value stored. Cells are read trimmed (spreadsheets add
spaces), so a value's own leading or trailing white space does not come back.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import IO, Any

from adapters.base import FileProblem, Item, Problem, problems_as_text
from adapters.csv_reading import RecordedLines, open_at_the_end, swallowed_rows, unreadable
from adapters.csv_required import naming_columns
from adapters.envelopes import data_validator
from adapters.errors import AdapterError, MappingError
from adapters.items import WarnedItem
from adapters.tabular.cells import normalise
from adapters.tabular.mapping import ColumnMapping, load_mapping, shipped
from adapters.tabular.pointers import get as value_at
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
from adapters.tabular.text import UTF8, UTF8_BOM, WINDOWS_1252, TextLines, sniff_delimiter
from schemas.envelope import ENVELOPE_SCHEMA
from schemas.fields import FieldInfo
from schemas.registry import SchemaRegistry, default_registry

REJECTS_COLUMN = "errores/errors"
ROW_COLUMN = "fila/row"
MAX_LOCAL_ID: int = ENVELOPE_SCHEMA["properties"]["local_id"]["maxLength"]


class CsvAdapter:
    """CSV spreadsheet exports through a mapping of columns to schema fields."""

    name = "csv"
    media_types = ("text/csv",)
    #: Its items can be handed to another process (exchange.decode_process).
    picklable_items = True

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
        self._handed_encoding = UTF8

    @property
    def source_encoding(self) -> str:
        return self._text.encoding if self._text is not None else self._handed_encoding

    def decoding_state(self) -> tuple[str, str]:
        """What decoding found that the rejects writer needs, when another process decodes
        (``exchange.decode_process``): the file's delimiter and encoding."""
        return self.source_delimiter, self.source_encoding

    def adopt_decoding_state(self, state: tuple[str, str]) -> None:
        self.source_delimiter, self._handed_encoding = state

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        head = stream.read(SNIFF_BYTES)
        not_text = _not_a_spreadsheet_text(head)
        if not_text is not None:
            yield FileProblem("1", problems=(not_text,))
            return
        self._text = text = TextLines(_Replayed(head, stream))
        lines = iter(text)
        first = next(lines, None)
        if first is None:
            return
        delimiter = self.source_delimiter = self.delimiter or sniff_delimiter(first)
        recorded = RecordedLines(chain((first,), lines))
        reader = csv.reader(recorded, delimiter=delimiter)
        try:
            header = next(reader)
        except csv.Error as error:
            yield FileProblem("1", problems=(_unreadable(error),))
            return
        plan = plan_header(self.mapping, header)
        if not plan.simple and not plan.grouped and not plan.local_ids:
            plan.problems.insert(0, _no_column_matches(self.mapping.local_ids, header))
        if plan.problems:
            # A required column that is missing would fail every row the same way: the office
            # fixes the header once, and no row is stored from a sheet read the wrong way.
            yield FileProblem("1", problems=tuple(plan.problems))
            return
        number = 1  # the header's row, as a spreadsheet program numbers rows
        guessed = _GuessedRows(text)
        guessed.note(number)
        while True:
            recorded.row.clear()
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                number += 1
                cells, problems = unreadable(error, recorded, header, delimiter)
                guessed.note(number)
                if recorded.ended:  # read again, its quote took the rest of the file
                    yield from self._quoted_lines(str(number), plan, cells, at_the_end=True)
                    continue
                yield Item(
                    str(number),
                    problems=problems,
                    source=CsvRow(header, cells),
                    local_id=_read_local_id(plan, cells),
                )
                continue
            number += 1
            guessed.note(number)
            if len(recorded.row) > 1 or recorded.ended:
                # Line breaks in a cell: rows a quote left open may be in it (see csv_reading).
                yield from self._quoted_lines(str(number), plan, row, at_the_end=recorded.ended)
                continue
            if not "".join(row).strip():
                continue  # an empty row, as spreadsheets leave at the end
            yield self._item(str(number), plan, row)
        if text.mixed:
            yield FileProblem(guessed.first, problems=(guessed.warning(),))

    def _quoted_lines(
        self, position: str, plan: HeaderPlan, row: list[str], *, at_the_end: bool
    ) -> Iterator[Item]:
        """A row read over several lines: refused when a quote took the rest of the file
        (``at_the_end``, certain: a file problem too) or rows of the sheet (a guess), else
        read as any row."""
        if at_the_end:
            refused, whole = open_at_the_end(position, plan.header, row)
        else:
            swallowed = swallowed_rows(plan.header, row, self.source_delimiter)
            if swallowed is None:
                yield self._item(position, plan, row)
                return
            refused, whole = swallowed, None
        local_id = _local_id(plan, row)[0] or None
        yield Item(
            position, problems=(refused,), source=CsvRow(plan.header, row), local_id=local_id
        )
        if whole is not None:
            yield FileProblem(position, problems=(whole,))

    def _item(self, position: str, plan: HeaderPlan, cells: list[str]) -> Item:
        # The rejects file gets the cells as they came (an export's apostrophes too); the
        # document, the values an export's apostrophes stood for.
        source = CsvRow(plan.header, cells)
        row = [_as_written(cell) for cell in cells]
        data, problems = build_document(self.mapping, plan, row)
        local_id, column = _local_id(plan, row)
        if len(local_id) > MAX_LOCAL_ID:
            problems.append(
                Problem(
                    f"column:{column}",
                    f"la columna «{column}» (identificador local) tiene "
                    f"{len(local_id)} caracteres; el máximo es {MAX_LOCAL_ID}",
                    f"the column '{column}' (local id) has {len(local_id)} "
                    f"characters; at most {MAX_LOCAL_ID}",
                )
            )
        elif not local_id:
            problems.append(
                _no_local_id([name for _, name in plan.local_ids] or self.mapping.local_ids)
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
        short = _too_few_cells(len(row), len(plan.header))
        if not problems and self._validator.is_valid(data):
            document = {"schema": self.mapping.schema, "local_id": local_id, "data": data}
            if short is None:
                return Item(position, document=document, source=source, local_id=local_id)
            # Some programs leave out a row's empty cells at the end: the row is complete as
            # it stands, but the office hears of it, in case a delimiter went missing.
            return WarnedItem(
                position, document=document, source=source, local_id=local_id, warnings=(short,)
            )
        if short is not None:
            problems.insert(0, short)  # often the reason for the rest: say it first
        problems.extend(self._explain(plan, row, data))
        return Item(position, problems=tuple(problems), source=source, local_id=local_id or None)

    def _explain(self, plan: HeaderPlan, row: list[str], data: Any) -> list[Problem]:
        """Validation failures, each naming the column its value came from."""
        failures = self._validator.errors(data)
        if not failures:
            return []
        where = value_sources(self.mapping, plan, row)
        fields = self._fields()
        problems = []
        for failure in failures:
            # A field the row left out is named by the columns that give it: the office sees
            # columns, not the schema's fields.
            named = naming_columns(failure, self.mapping, plan, row, data, fields)
            if named is not None:
                problems.append(named)
                continue
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

    def _fields(self) -> Mapping[str, FieldInfo]:
        registry = self.registry or default_registry()
        return registry.fields(*registry.parse_schema_ref(self.mapping.schema))

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        """Documents of the mapping's schema as rows, UTF-8 with a byte-order mark (so Excel
        reads the accents) unless the mapping names another ``encoding``. A value that
        encoding cannot hold is an :class:`AdapterError` naming the record and the column:
        the system that asked for that encoding would store a ``?`` in its place. So is a list
        with more items than its group of columns has room for (``repeat``): the sheet
        imported again would drop the rest (a child's current placement, say)."""
        encoding = self.mapping.encoding
        checked = not _holds_every_character(encoding)
        header = export_header(self.mapping)
        with _text_writer(out, encoding) as text:
            writer = csv.writer(text, delimiter=self.delimiter or ",")
            writer.writerow(header)
            for document in documents:
                if document.get("schema") != self.mapping.schema:
                    raise AdapterError(
                        f"el documento «{document.get('local_id')}» es {document.get('schema')}; "
                        f"la correspondencia es para {self.mapping.schema}",
                        f"the document '{document.get('local_id')}' is "
                        f"{document.get('schema')}; the mapping is for {self.mapping.schema}",
                    )
                local_id = str(document.get("local_id", ""))
                _check_repeats(self.mapping, local_id, document["data"])
                row = [
                    _inert(cell) for cell in export_row(self.mapping, local_id, document["data"])
                ]
                for column, cell in zip(header, row, strict=False) if checked else ():
                    lacking = _first_lacking(cell, encoding)
                    if lacking is not None:
                        raise _cannot_encode(local_id, column, lacking, encoding)
                writer.writerow(row)

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None:
        """Rejected rows in the delimiter and encoding of the last decoded file, each after
        its reasons and its row number in that file. A file problem (the header's) is not a
        row and is left out: ``puente import`` prints it.

        The encoding is known only once the file has been read (a Windows-1252 file may be
        plain ASCII for its first thousand rows), and rows are written while it is read: they
        wait in a temporary file, as UTF-8, and are copied into ``out`` in the file's own
        encoding at the end. A rejects file imported again keeps one reasons column and one
        row-number column: the old ones are replaced.

        Rows come back as they came, every character: when the text holds one the file's
        encoding lacks (a UTF-8 line in a sheet read as Windows-1252, a reason quoting one),
        the rejects file is UTF-8 with a byte-order mark instead (spreadsheet programs read
        it as UTF-8), and a line on stderr says so.
        """
        with tempfile.SpooledTemporaryFile(
            max_size=SPOOL_IN_MEMORY, mode="w+", encoding=UTF8, newline=""
        ) as spool:
            if not self._write_rows(items, spool):
                return
            spool.seek(0)
            encoding = self.source_encoding
            lacking = None
            if not _holds_every_character(encoding):
                found = (_first_lacking(chunk, encoding) for chunk in _chunks(spool))
                lacking = next(filter(None, found), None)
            if lacking is not None:
                _say_rejects_in_utf8(encoding, lacking)
                encoding = UTF8_BOM
            spool.seek(0)
            with _text_writer(out, encoding) as copied:
                for chunk in _chunks(spool):
                    copied.write(chunk)

    def _write_rows(self, items: Iterable[Item], text: IO[str]) -> bool:
        """The rejected rows as CSV text; whether there was any."""
        writer: Any = None
        kept: list[int] = []
        for item in items:
            source = item.source
            if not isinstance(source, CsvRow):
                continue
            if writer is None:
                kept = _columns_kept(source.header)
                writer = csv.writer(text, delimiter=self.source_delimiter)
                header = [source.header[index] for index in kept]
                writer.writerow([REJECTS_COLUMN, ROW_COLUMN, *header])
            cells = source.cells  # as they came: a short row stays short, extra cells stay
            kept_cells = [cells[index] for index in kept if index < len(cells)]
            extra = cells[len(source.header) :]
            reasons = problems_as_text(item.problems)
            # Formula-like text gets the apostrophe an export gives it (import takes it off):
            # the office opens this file in a spreadsheet program too.
            written = [_inert_as_read(cell) for cell in (reasons, *kept_cells, *extra)]
            writer.writerow([written[0], item.position, *written[1:]])
        return writer is not None


def _columns_kept(header: Sequence[str]) -> list[int]:
    """The columns of ``header`` a rejects file writes back: all but the reasons and row
    columns an earlier rejects file added (they are written anew)."""
    added = {normalise(REJECTS_COLUMN), normalise(ROW_COLUMN)}
    return [index for index, name in enumerate(header) if normalise(name) not in added]


class _GuessedRows:
    """The rows of a file that had lines read as Windows-1252 (:class:`TextLines` reads a line
    that is not UTF-8 so): the first :data:`NAMED_ROWS` of them, and how many in all. The csv
    reader takes one line at a time, so the lines read for a row are those read since the row
    before."""

    def __init__(self, text: TextLines) -> None:
        self._text = text
        self._seen = 0
        self.rows: list[int] = []
        self.total = 0

    def note(self, number: int) -> None:
        """Row ``number`` has just been read."""
        seen = self._text.windows_1252_lines
        if seen > self._seen:
            self._seen = seen
            self.total += 1
            if len(self.rows) < NAMED_ROWS:
                self.rows.append(number)

    @property
    def first(self) -> str:
        return str(self.rows[0]) if self.rows else "1"

    def warning(self) -> Problem:
        """A file that mixes encodings, in words: which rows were read as Windows-1252."""
        shown = ", ".join(map(str, self.rows))
        more = self.total - len(self.rows)
        if self.total == 1:
            es = f"la fila {shown} no lo es y se leyó"
            en = f"row {shown} is not and was read"
        else:
            es = f"las filas {shown}{f' y {more} más' if more else ''} no lo son y se leyeron"
            en = f"rows {shown}{f' and {more} more' if more else ''} are not and were read"
        return Problem(
            "",
            f"aviso: el archivo mezcla codificaciones; parte es UTF-8, pero {es} como "
            "Windows-1252 (ANSI): revise sus acentos y eñes (p. ej. en los nombres) en la hoja "
            "y en Puente, y guarde la hoja como «CSV UTF-8»",
            f"warning: the file mixes encodings; part of it is UTF-8, but {en} as Windows-1252 "
            "(ANSI): check their accents (in the names, say) in the sheet and in Puente, and "
            "save the sheet as 'CSV UTF-8'",
        )


class _Replayed:
    """A byte stream that gives ``head`` (already read) first, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if 0 <= size < len(self._head):
            head, self._head = self._head[:size], self._head[size:]
            return head
        head, self._head = self._head, b""
        return head  # a short read: the caller reads again


# The first bytes of files offices save by mistake instead of a CSV: (signature, es, en).
_NOT_CSV = (
    (b"PK\x03\x04", "un libro de Excel u OpenDocument (.xlsx, .ods)",
     "an Excel or OpenDocument workbook (.xlsx, .ods)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "un libro de Excel 97-2003 (.xls)",
     "an Excel 97-2003 workbook (.xls)"),
    (b"%PDF", "un documento PDF", "a PDF document"),
    (b"\xff\xfe", "texto UTF-16 («Texto Unicode» de Excel)",
     "UTF-16 text (Excel's 'Unicode Text')"),
    (b"\xfe\xff", "texto UTF-16", "UTF-16 text"),
)  # fmt: skip
SNIFF_BYTES = 4096
#: Rows of a file that mixes encodings named one by one in its warning (then: "and N more").
NAMED_ROWS = 20
SPOOL_IN_MEMORY = 1 << 20


def _not_a_spreadsheet_text(head: bytes) -> Problem | None:
    """Why the file is not CSV text at all, from its first bytes; None when it may be."""
    save_as_es = "ábralo en la hoja de cálculo y guárdelo como «CSV UTF-8 (delimitado por comas)»"
    save_as_en = "open it in the spreadsheet program and save it as 'CSV UTF-8 (Comma delimited)'"
    for signature, what_es, what_en in _NOT_CSV:
        if head.startswith(signature):
            return Problem(
                "",
                f"el archivo es {what_es}, no un CSV: {save_as_es}",
                f"the file is {what_en}, not a CSV: {save_as_en}",
            )
    if b"\x00" in head:
        return Problem(
            "",
            f"el archivo no es texto (tiene bytes nulos): no es un CSV; {save_as_es}",
            f"the file is not text (it has NUL bytes): not a CSV; {save_as_en}",
        )
    return None


def _local_id(plan: HeaderPlan, row: list[str]) -> tuple[str, str]:
    """The row's local id — the first of its local id cells it fills — and that cell's
    column (the first local id column when it fills none)."""
    for index, column in plan.local_ids:
        text = row[index].strip() if index < len(row) else ""
        if text:
            return text, column
    return "", plan.local_ids[0][1] if plan.local_ids else ""


def _read_local_id(plan: HeaderPlan, cells: list[str]) -> str | None:
    """The local id of a row refused for a cell longer than the reader takes, when its other
    cells were read whole and its local id cell is one of them and fits a local id: the row
    is then known by it (its label, the older-version and other-child checks), as any
    rejected row. None for a row whose cells could not be read (split at the delimiter)."""
    limit = csv.field_size_limit()
    if not any(len(cell) > limit for cell in cells):
        return None
    local_id = _local_id(plan, [_as_written(cell) for cell in cells])[0]
    return local_id if 0 < len(local_id) <= MAX_LOCAL_ID else None


def _no_local_id(columns: Sequence[str]) -> Problem:
    if len(columns) == 1:
        return Problem(
            f"column:{columns[0]}",
            f"la columna «{columns[0]}» (identificador local) está vacía",
            f"the column '{columns[0]}' (local id) is empty",
        )
    return Problem(
        f"column:{columns[0]}",
        "las columnas «" + "» y «".join(columns) + "» (identificador local) están vacías",
        "the columns '" + "' and '".join(columns) + "' (local id) are empty",
    )


def _no_column_matches(local_ids: Sequence[str], header: Sequence[str]) -> Problem:
    shown = ", ".join(header[:5]) + (" …" if len(header) > 5 else "")
    named_es = "«" + "» o «".join(local_ids) + "»"
    named_en = "'" + "' or '".join(local_ids) + "'"
    return Problem(
        "",
        f"ninguna columna del encabezado ({shown}) está en el archivo de correspondencia "
        f"(p. ej. {named_es}): ¿es el archivo o la correspondencia correcta?",
        f"no column of the header ({shown}) is in the mapping file (such as {named_en}): "
        "is it the right file, or the right mapping?",
    )


def _too_few_cells(width: int, columns: int) -> Problem | None:
    if width >= columns:
        return None
    return Problem(
        "",
        f"la fila tiene {width} celdas y el encabezado {columns} columnas; las que faltan se "
        "leyeron vacías (¿falta un separador, o un salto de línea parte la fila?)",
        f"the row has {width} cells and the header {columns} columns; the missing ones were "
        "read as empty (a delimiter missing, or a line break splitting the row?)",
    )


#: What makes a spreadsheet program read a cell as a formula (OWASP "CSV injection"): a text
#: another agency typed (``=HYPERLINK(…)``) must not run in the office that opens the export.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: What an export puts an apostrophe before: formula-like text, and text that starts with an
#: apostrophe itself (``'=x`` stored would else import back as ``=x``).
ESCAPED_STARTS = (*FORMULA_STARTS, "'")


def _inert(value: str) -> str:
    """A value as exported: text that a spreadsheet would run as a formula, or that starts
    with an apostrophe, gets a leading apostrophe, which shows it as text and which
    :func:`_as_written` takes off on import: every value imports back as it was."""
    return "'" + value if value.startswith(ESCAPED_STARTS) else value


def _inert_as_read(cell: str) -> str:
    """A cell of a rejects file: the cell as it came, formula-like text after an apostrophe
    (which :func:`_as_written` takes off), so it imports again to the value it was read as."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _as_written(cell: str) -> str:
    """A cell as read: the apostrophe an export put before formula-like text, or before an
    apostrophe, comes off, so an exported sheet imports back to the same values."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(ESCAPED_STARTS) else cell


@contextmanager
def _text_writer(out: IO[bytes], encoding: str) -> Iterator[io.TextIOWrapper]:
    """A text layer over ``out`` that is detached, not closed, when done: the caller owns
    ``out``. Nothing is replaced: the callers check first (:func:`_first_lacking`)."""
    text = io.TextIOWrapper(out, encoding=encoding, newline="")
    try:
        yield text
    finally:
        text.flush()
        text.detach()


def _chunks(text: IO[str]) -> Iterator[str]:
    return iter(lambda: text.read(SPOOL_IN_MEMORY), "")


def _holds_every_character(encoding: str) -> bool:
    return codecs.lookup(encoding).name.startswith("utf")


def _first_lacking(text: str, encoding: str) -> str | None:
    """The first character of ``text`` that ``encoding`` cannot hold (Windows-1252 has no
    «ễ», no «李», no «→»); None when it holds them all."""
    try:
        text.encode(encoding)
    except UnicodeEncodeError as error:
        return text[error.start]
    return None


def _cannot_encode(local_id: str, column: str, lacking: str, encoding: str) -> AdapterError:
    return AdapterError(
        f"el expediente «{local_id}», columna «{column}», tiene «{lacking}», que la codificación "
        f"{encoding} de la correspondencia no tiene: corrija el valor o quite «encoding» de la "
        "correspondencia (se escribe entonces UTF-8 con BOM, que Excel lee)",
        f"the record '{local_id}', column '{column}', has '{lacking}', which the mapping's "
        f"encoding {encoding} lacks: fix the value or drop 'encoding' from the mapping (the "
        "sheet is then UTF-8 with a byte-order mark, which Excel reads)",
    )


def _check_repeats(mapping: ColumnMapping, local_id: str, data: Mapping[str, Any]) -> None:
    for group in mapping.groups:
        items = value_at(data, group.tokens)
        if isinstance(items, list) and len(items) > group.repeat:
            raise AdapterError(
                f"el expediente «{local_id}» tiene {len(items)} elementos en {group.pointer} y "
                f"la correspondencia escribe {group.repeat} (columnas {group.prefix}1_… a "
                f"{group.prefix}{group.repeat}_…): suba «repeat» de ese grupo a {len(items)} o "
                "más en la correspondencia, o exporte ese expediente en otro formato (--adapter "
                "ndjson); nada se omite en silencio",
                f"the record '{local_id}' has {len(items)} items in {group.pointer} and the "
                f"mapping writes {group.repeat} (columns {group.prefix}1_… to "
                f"{group.prefix}{group.repeat}_…): raise that group's 'repeat' to "
                f"{len(items)} or more in the mapping, or export that record in another format "
                "(--adapter ndjson); nothing is left out silently",
            )


def _say_rejects_in_utf8(encoding: str, lacking: str) -> None:
    """The one line this adapter writes to stderr: the rejects file is not in the encoding of
    the file read (``puente import`` names the file at the end of its summary)."""
    name = "Windows-1252 (ANSI)" if codecs.lookup(encoding).name == WINDOWS_1252 else encoding
    print(
        f"aviso: el archivo de rechazos se escribió en UTF-8 (con BOM), no en {name} como el "
        f"archivo leído, porque tiene caracteres que {name} no tiene (p. ej. «{lacking}») / "
        f"warning: the rejects file was written in UTF-8 (with a byte-order mark), not in "
        f"{name} like the file read, as it holds characters {name} lacks (such as '{lacking}')",
        file=sys.stderr,
    )


def _unreadable(error: csv.Error) -> Problem:
    return Problem(
        "",
        "el encabezado (fila 1) no se puede leer como CSV: revise sus comillas y separadores",
        f"the header (row 1) cannot be read as CSV ({error}): check its quotes and delimiters",
    )
