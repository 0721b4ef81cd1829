"""Rows of a CSV file that the csv module reads wrong or not at all, found and explained.

Python's reader is lenient: a quote left open (``"La Güera`` never closed) takes every line
after it into one cell, up to a later quote or the end of the file, and says nothing. And a
cell longer than its field limit (131,072 characters) is an error after which the row's cells
are gone. Both lose rows silently, or put one child's data in another's record. This module
keeps the lines of the row being read (:class:`RecordedLines`; the reader never reads ahead,
so they are exactly that row's), which tells for certain when the file ended inside a quote,
and lets an unreadable row be read again for its rejects file.

What is certain and what is a guess:

- the file ending inside a quoted cell is certain (a program that writes CSV never leaves one
  open): :func:`open_at_the_end`;
- a quote closed rows later is not (a cell may hold line breaks): a cell that holds a line
  with as many cells as the header (at least three) is taken for rows the quote swallowed
  (:func:`swallowed_rows`), and the row is refused, its text kept, rather than stored.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence

from adapters.base import Problem

#: A row read again for its rejects file may be this many times the field limit long, at
#: most: enough for a long cell, and memory stays bounded when a quote runs on for megabytes
#: (the rows after that are read as rows again).
REREAD_FACTOR = 4
#: How much of a swallowed line a reason quotes.
QUOTED_CHARACTERS = 40


class RecordedLines:
    """The lines a csv reader takes from ``lines``, as it takes them: :attr:`row` holds those
    of the row being read (the caller clears it before each row) and :attr:`ended` says the
    lines ran out. A row the reader gives back after the lines ran out ended inside a quoted
    cell: a row that ends on its line never asks for another."""

    __slots__ = ("_lines", "ended", "row")

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.row: list[str] = []
        self.ended = False

    def __iter__(self) -> RecordedLines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.ended = True
            raise
        self.row.append(line)
        return line


def open_at_the_end(
    position: str, header: Sequence[str], cells: Sequence[str]
) -> tuple[Problem, Problem]:
    """The row whose last cell a quote opened and the file ended in: the reason the row is
    refused, and the problem of the file (its rows after that one were never read as rows)."""
    column = _column(header, len(cells) - 1)
    after = len(cells[-1].splitlines()) - 1 if cells else 0
    read_es = f"las {after} líneas siguientes se leyeron dentro de esa celda, no como filas, y "
    read_en = f"the {after} lines after it were read into that cell, not as rows, and "
    row = Problem(
        f"column:{column}",
        f"la columna «{column}» abre comillas que no se cierran: el resto del archivo quedó "
        "dentro de esta celda; cierre (o quite) las comillas e importe el archivo de nuevo",
        f"the column '{column}' opens a quote that is never closed: the rest of the file went "
        "into this cell; close (or remove) the quote and import the file again",
    )
    whole = Problem(
        f"column:{column}",
        f"la fila {position} abre comillas en la columna «{column}» que no se cierran antes "
        f"del final del archivo: {read_es if after > 0 else ''}nada desde la fila {position} "
        "se importó; cierre (o quite) esas comillas e importe el archivo de nuevo (lo ya "
        "guardado no se duplica)",
        f"row {position} opens a quote in the column '{column}' that is never closed before "
        f"the end of the file: {read_en if after > 0 else ''}nothing from row {position} on "
        "was imported; close (or remove) that quote and import the file again (what is "
        "stored is not stored twice)",
    )
    return row, whole


def swallowed_rows(header: Sequence[str], cells: Sequence[str], delimiter: str) -> Problem | None:
    """Why a row whose cells hold line breaks seems to hold rows of the sheet too (a quote
    closed only rows later); None when no cell looks so."""
    for index, cell in enumerate(cells):
        if "\n" in cell and (problem := _rows_in(header, index, cell, delimiter)):
            return problem
    return None


def _rows_in(header: Sequence[str], index: int, cell: str, delimiter: str) -> Problem | None:
    """The lines of a cell (after its first) that have as many cells as the header."""
    width = max(len(header), 3)
    lines = cell.splitlines()[1:]
    shaped = [line for line in lines if len(_cells_of(line, delimiter)) >= width]
    return _swallowed(_column(header, index), len(shaped), shaped[0]) if shaped else None


def _cells_of(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # a line longer than the field limit: a cell's text, not a row
        return []


def _swallowed(column: str, count: int, first: str) -> Problem:
    shown = first if len(first) <= QUOTED_CHARACTERS else first[:QUOTED_CHARACTERS] + "…"
    return Problem(
        f"column:{column}",
        f"la columna «{column}» tiene saltos de línea y {count} línea(s) con tantas celdas "
        f"como el encabezado (la primera: «{shown}»): unas comillas abiertas en esta celda "
        "parecen cerrarse solo filas más abajo, y esas filas se leyeron dentro de ella; "
        "revise las comillas de esta fila (en un editor de texto) e importe de nuevo",
        f"the column '{column}' has line breaks and {count} line(s) with as many cells as the "
        f"header (the first: '{shown}'): a quote opened in this cell seems closed only rows "
        "later, and those rows were read into it; check the quotes of this row (in a text "
        "editor) and import again",
    )


def reread(recorded: RecordedLines, delimiter: str) -> list[str] | None:
    """The cells of a row the reader refused (its lines in ``recorded.row``), read again
    with a higher field limit; a cell still open at the end of those lines takes the lines
    after it, as the reader would have. None when it cannot be read even so.

    The field limit is the csv module's, for the whole process: it is raised only for this
    one row, in the thread that decodes, and put back at once."""
    limit = csv.field_size_limit()
    feed = _Feed(list(recorded.row), recorded, REREAD_FACTOR * limit)
    csv.field_size_limit(REREAD_FACTOR * limit)
    try:
        return next(csv.reader(feed, delimiter=delimiter), [])
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)


class _Feed:
    """``first`` lines, then more from ``rest`` until ``budget`` characters in all."""

    def __init__(self, first: list[str], rest: Iterator[str], budget: int) -> None:
        self._first = iter(first)
        self._rest = rest
        self._left = budget - sum(map(len, first))

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        line = next(self._first, None)
        if line is not None:
            return line
        if self._left <= 0:
            raise StopIteration
        line = next(self._rest)
        self._left -= len(line)
        return line


def unreadable(
    error: csv.Error, recorded: RecordedLines, header: Sequence[str], delimiter: str
) -> tuple[list[str], tuple[Problem, ...]]:
    """The cells a rejects file keeps of a row the reader refused (its lines in
    ``recorded.row``), and why it was refused: a cell longer than the reader takes (named,
    with its length), a quote that ran over the rows after it, or else the row as CSV (its
    text then split at the delimiter, so that it is kept)."""
    limit = csv.field_size_limit()
    cells = reread(recorded, delimiter)
    for index, cell in enumerate(cells or ()):
        if len(cell) > limit:
            swallowed = _rows_in(header, index, cell, delimiter)
            too_long = _too_long(_column(header, index), len(cell), limit)
            return cells or [], (swallowed or too_long,)
    problem = Problem(
        "",
        "la fila no se puede leer como CSV: revise sus comillas y separadores (p. ej. unas "
        "comillas dentro de una celda sin comillas, o un salto de línea suelto)",
        f"the row cannot be read as CSV ({error}): check its quotes and delimiters",
    )
    if cells is None:
        cells = "".join(recorded.row).rstrip("\r\n").split(delimiter)
    return cells, (problem,)


def _too_long(column: str, length: int, limit: int) -> Problem:
    return Problem(
        f"column:{column}",
        f"la columna «{column}» tiene {_es(length)} caracteres, más de los {_es(limit)} que "
        "se leen de una celda: acorte el texto de la celda (o guárdelo en otro lugar) e "
        "importe la fila de nuevo",
        f"the column '{column}' has {length:,} characters, more than the {limit:,} read from "
        "one cell: shorten the cell's text (or keep it elsewhere) and import the row again",
    )


def _es(number: int) -> str:
    return f"{number:,}".replace(",", " ")


def _column(header: Sequence[str], index: int) -> str:
    return header[index] if 0 <= index < len(header) else f"{index + 1}"
