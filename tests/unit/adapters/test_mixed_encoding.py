"""A spreadsheet that mixes encodings: a UTF-8 export with a cell pasted from another program
(Windows-1252). Each line is read in its own encoding, so one stray byte does not garble the
rows after it, and the import says which rows were read as Windows-1252 (QA: names such as
"José Muñoz" were stored as "JosÃ© MuÃ±oz", and codes such as "Hondureño" rejected)."""

from __future__ import annotations

import io
import multiprocessing
import sys
from typing import cast

import pytest

from adapters.base import Adapter, FileProblem, Item
from adapters.csv_adapter import NAMED_ROWS, CsvAdapter
from adapters.tabular.text import MAX_LINE_CHARACTERS, TextLines

# QA's repro: row 2 was saved in Windows-1252, row 3 in UTF-8.
REPRO = (
    b"folio,nombre(s),primer_apellido,fecha_nacimiento,nacionalidad\r\n"
    b"MOJ-1,Ren\xe9,Ascii,01/01/2012,GT\r\n"
    b"MOJ-2,Jos\xc3\xa9,Mu\xc3\xb1oz,02/02/2012,GT\r\n"
)
HEADER = "folio,nombre(s),primer_apellido,sexo,fecha_nacimiento,nacionalidad\n"


def lines(data: bytes, chunk_size: int = 1 << 16) -> tuple[list[str], TextLines]:
    reader = TextLines(io.BytesIO(data), chunk_size=chunk_size)
    return list(reader), reader


def decode(data: bytes) -> tuple[CsvAdapter, list[Item]]:
    adapter = CsvAdapter("dif-estatal")
    return adapter, list(adapter.decode(io.BytesIO(data)))


def names(item: Item) -> dict[str, str]:
    assert item.ok, item.problems
    assert item.document is not None
    found: dict[str, str] = item.document["data"]["child"]["names"]
    return found


def file_problems(items: list[Item]) -> list[FileProblem]:
    return [item for item in items if isinstance(item, FileProblem)]


# -- the lines --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 64, 1 << 16])
def test_each_line_is_read_in_its_own_encoding_however_the_reads_split_it(
    chunk_size: int,
) -> None:
    found, reader = lines(REPRO, chunk_size)
    assert found == [
        "folio,nombre(s),primer_apellido,fecha_nacimiento,nacionalidad\r\n",
        "MOJ-1,René,Ascii,01/01/2012,GT\r\n",
        "MOJ-2,José,Muñoz,02/02/2012,GT\r\n",
    ]
    assert reader.mixed and reader.windows_1252_lines == 1
    assert reader.encoding == "cp1252"  # the rejects file, as before for such a file


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 1 << 16])
def test_utf8_after_a_windows_1252_line_and_windows_1252_after_utf8(chunk_size: int) -> None:
    data = (
        "ñandú “x”\n".encode()
        + "Peña ‰\n".encode("cp1252")
        + "Muñoz 😀\n".encode()
        + b"\x81\x8d"  # unassigned in Windows-1252: read as Latin-1, and no line break
    )
    found, reader = lines(data, chunk_size)
    assert found == ["ñandú “x”\n", "Peña ‰\n", "Muñoz 😀\n", "\x81\x8d"]
    assert reader.mixed and reader.windows_1252_lines == 2


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 1 << 16])
def test_a_windows_1252_file_reads_as_before(chunk_size: int) -> None:
    text = "abc\r\nJosé “Pepe” Núñez ‰ €\r\nÑandú,¿sí?\r\n"
    found, reader = lines(text.encode("cp1252"), chunk_size)
    assert found == text.splitlines(keepends=True)
    assert reader.encoding == "cp1252" and not reader.mixed and reader.windows_1252_lines == 2


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 1 << 16])
def test_a_utf8_file_with_or_without_a_byte_order_mark_reads_as_before(chunk_size: int) -> None:
    text = "folio,nombre\r\nF-1,José Muñoz 😀\r\nF-2,“Ana”\r\n"
    found, reader = lines(text.encode("utf-8-sig"), chunk_size)
    assert found == text.splitlines(keepends=True)
    assert reader.encoding == "utf-8-sig" and not reader.mixed
    found, reader = lines(text.encode(), chunk_size)
    assert found == text.splitlines(keepends=True)
    assert reader.encoding == "utf-8" and not reader.mixed


def test_a_byte_order_mark_then_lines_that_are_not_utf8_is_mixed() -> None:
    found, reader = lines("a\nJosé\n".encode("utf-8-sig") + "Peña\n".encode("cp1252"))
    assert found == ["a\n", "José\n", "Peña\n"]
    # Written back with the byte-order mark: UTF-8 holds every character the file had.
    assert reader.mixed and reader.encoding == "utf-8-sig"


def test_a_utf8_replacement_character_is_still_utf8() -> None:
    text = "F-1,Jos\ufffd\nF-2,Muñoz\n"  # a program already lost a character: kept as it is
    found, reader = lines(text.encode())
    assert found == text.splitlines(keepends=True)
    assert reader.encoding == "utf-8" and reader.windows_1252_lines == 0


def test_an_overlong_utf8_line_is_cut_between_characters() -> None:
    text = "é" * MAX_LINE_CHARACTERS + "x\n"  # twice as many bytes as the limit
    found, reader = lines(text.encode(), chunk_size=1 << 15)
    assert len(found) > 1 and all(len(piece) <= MAX_LINE_CHARACTERS for piece in found)
    assert "".join(found) == text and reader.windows_1252_lines == 0 and not reader.mixed


# -- the import -------------------------------------------------------------------------------


def test_qa_repro_stores_both_names_right_and_warns_about_row_2() -> None:
    adapter, items = decode(REPRO)
    rows = [item for item in items if not isinstance(item, FileProblem)]
    assert [item.position for item in rows] == ["2", "3"]
    assert names(rows[0]) == {"given_names": "René", "first_surname": "Ascii"}
    assert names(rows[1]) == {"given_names": "José", "first_surname": "Muñoz"}
    [warning] = file_problems(items)
    assert items[-1] is warning and warning.position == "2"
    [problem] = warning.problems
    assert "mezcla codificaciones" in problem.es and "la fila 2 no lo es" in problem.es
    assert "Windows-1252" in problem.es
    assert "mixes encodings" in problem.en and "row 2 is not" in problem.en
    assert "Windows-1252" in problem.en
    assert adapter.source_encoding == "cp1252"


def test_rows_after_a_stray_line_keep_their_names_and_codes() -> None:
    data = (
        HEADER.encode()
        + "F-1,José,Muñoz,M,01/02/2010,Hondureño\n".encode()
        + "F-2,René,Peña,M,01/02/2011,Guatemala\n".encode("cp1252")
        + "F-3,Iñaki,Núñez,M,01/02/2012,Hondureño\n".encode()
        + b"F-4,Ana,Ruiz,M,01/02/2013,Guatemala\n"
        + "F-5,Sofía,Ordóñez,M,01/02/2014,Guatemala\n".encode("cp1252")
    )
    _, items = decode(data)
    rows = [item for item in items if not isinstance(item, FileProblem)]
    given = [names(item)["given_names"] for item in rows]
    assert given == ["José", "René", "Iñaki", "Ana", "Sofía"]
    assert names(rows[2])["first_surname"] == "Núñez"
    [warning] = file_problems(items)
    assert warning.position == "3"
    assert "las filas 3, 6 no lo son" in warning.problems[0].es
    assert "rows 3, 6 are not" in warning.problems[0].en


def test_rows_are_named_as_the_spreadsheet_numbers_them_not_by_line() -> None:
    # Row 2 holds a quoted cell with a line break: two lines, one row.
    data = (
        HEADER.encode()
        + 'F-1,"José\nMaría",Muñoz,M,01/02/2010,Guatemala\n'.encode()
        + "F-2,René,Peña,M,01/02/2011,Guatemala\n".encode("cp1252")
    )
    _, items = decode(data)
    [warning] = file_problems(items)
    assert "la fila 3 no lo es" in warning.problems[0].es


def test_a_long_list_of_rows_is_cut_short() -> None:
    data = HEADER.encode() + "F-0,José,Muñoz,M,01/02/2010,Guatemala\n".encode()
    total = NAMED_ROWS + 5
    for n in range(1, total + 1):
        data += f"F-{n},René,Peña,M,01/02/2011,Guatemala\n".encode("cp1252")
    _, items = decode(data)
    [warning] = file_problems(items)
    shown = ", ".join(str(n) for n in range(3, 3 + NAMED_ROWS))
    assert f"las filas {shown} y 5 más no lo son" in warning.problems[0].es
    assert f"rows {shown} and 5 more are not" in warning.problems[0].en


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig", "utf-8"])
def test_a_file_in_one_encoding_imports_as_before_without_a_warning(encoding: str) -> None:
    text = HEADER + "F-1,José,Muñoz,M,01/02/2010,Hondureño\nF-2,Ana,Ruiz,M,01/02/2011,Guatemala\n"
    adapter, items = decode(text.encode(encoding))
    assert not file_problems(items)
    assert [names(item)["given_names"] for item in items] == ["José", "Ana"]
    assert adapter.source_encoding == encoding


def test_the_rejects_of_a_mixed_file_keep_every_row_readable() -> None:
    data = (
        HEADER.encode()
        + "F-1,José,Muñoz,Z,01/02/2010,Guatemala\n".encode()
        + "F-2,René,Peña,Z,01/02/2011,Guatemala\n".encode("cp1252")
    )
    adapter = CsvAdapter("dif-estatal")
    out = io.BytesIO()
    adapter.write_rejects(adapter.decode(io.BytesIO(data)), out)
    back = out.getvalue().decode("cp1252")
    assert "F-1,José,Muñoz" in back and "F-2,René,Peña" in back
    assert "mezcla" not in back  # the warning is not a row: the import prints it


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods(),
    reason="decoding in a second process needs Linux and fork",
)
def test_decoding_in_a_second_process_hands_over_the_warning_and_the_encoding() -> None:
    from exchange.decode_process import Decoding, in_a_second_process

    adapter = CsvAdapter("dif-estatal")
    as_adapter = cast("Adapter", adapter)
    assert in_a_second_process(as_adapter)
    with Decoding(as_adapter, io.BytesIO(REPRO)) as decoding:
        items = list(decoding)
    assert decoding.failure is None
    assert [item.position for item in items] == ["2", "3", "2"]
    assert names(items[1]) == {"given_names": "José", "first_surname": "Muñoz"}
    assert "row 2 is not" in file_problems(items)[0].problems[0].en
    assert adapter.source_encoding == "cp1252"  # adopted from the decoding process
