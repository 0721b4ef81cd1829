"""No character is lost on the way back to the office: a rejects file holds every row exactly
as it came, and an export every value, whatever encoding the sheet was saved in (QA: a UTF-8
sheet with one Windows-1252 line got its rejects in Windows-1252, and "Nguyễn 李" came back
as "Nguy?n ?" — fixed and resent, the child would have been stored so)."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from adapters.base import FileProblem, Item, Problem
from adapters.csv_adapter import CsvAdapter
from adapters.errors import AdapterError

# QA's bytes: line 1 in UTF-8, line 2 in Windows-1252, CRLF, the shipped dif-estatal mapping.
QA_SHEET = (
    b"folio,nombre(s),fecha_nacimiento,nacionalidad,observaciones\r\n"
    + "MY-1,Nguyễn 李,31/02/2015,Hondureña,x\r\n".encode()
    + "MY-2,Sofía,01/01/2012,Hondureña,y\r\n".encode("cp1252")
)
BOM = b"\xef\xbb\xbf"


def rejects_of(adapter: CsvAdapter, data: bytes) -> tuple[list[Item], bytes]:
    items = list(adapter.decode(io.BytesIO(data)))
    out = io.BytesIO()
    adapter.write_rejects((i for i in items if not i.ok and not isinstance(i, FileProblem)), out)
    return items, out.getvalue()


def test_qa_sheet_rejects_keep_every_character_in_utf8_with_a_byte_order_mark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    adapter = CsvAdapter("dif-estatal")
    items, written = rejects_of(adapter, QA_SHEET)
    assert adapter.source_encoding == "cp1252"  # what the sheet was read as, for the rest
    assert [i.position for i in items if i.ok] == ["3"]
    assert written.startswith(BOM)
    rows = list(csv.reader(io.StringIO(written.decode("utf-8-sig"))))
    assert rows[1][1:] == ["2", "MY-1", "Nguyễn 李", "31/02/2015", "Hondureña", "x"]
    # The person hears of it, in both languages, naming a character the sheet's encoding lacks.
    note = capsys.readouterr().err
    assert "UTF-8" in note and "Windows-1252" in note and "«ễ»" in note and "'ễ'" in note
    assert "archivo de rechazos" in note and "rejects file" in note

    # Fixed and imported again, the child keeps her name.
    fixed = written.replace(b"31/02/2015", b"28/02/2015")
    [again] = [i for i in CsvAdapter("dif-estatal").decode(io.BytesIO(fixed)) if i.ok]
    assert again.document is not None
    assert again.document["data"]["child"]["names"]["given_names"] == "Nguyễn 李"


def test_rejects_the_files_encoding_holds_stay_in_it_and_nothing_is_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sheet = QA_SHEET.replace("Nguyễn 李".encode(), "Peña".encode())
    adapter = CsvAdapter("dif-estatal")
    _, written = rejects_of(adapter, sheet)
    assert not written.startswith(BOM)
    assert "MY-1,Peña,31/02/2015,Hondureña,x" in written.decode("cp1252")
    assert capsys.readouterr().err == ""


def test_a_reason_the_files_encoding_lacks_is_kept_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The hub's reasons go into the same file: one quoting "→" (not in Windows-1252).
    adapter = CsvAdapter("dif-estatal")
    sheet = QA_SHEET.splitlines(keepends=True)[0] + "F-1,Peña,01/01/2012,GT,x\r\n".encode("cp1252")
    items = list(adapter.decode(io.BytesIO(sheet)))
    refused = [
        dataclasses.replace(item, problems=(Problem("", "a → b", "a → b"),))
        for item in items
        if not isinstance(item, FileProblem)
    ]
    out = io.BytesIO()
    adapter.write_rejects(refused, out)
    assert out.getvalue().startswith(BOM)
    assert "a → b / a → b,2,F-1,Peña,01/01/2012,GT,x" in out.getvalue().decode("utf-8-sig")
    assert "UTF-8" in capsys.readouterr().err


def export(adapter: CsvAdapter, given_names: str) -> bytes:
    out = io.BytesIO()
    document = {
        "schema": "case-record/1",
        "local_id": "MY-1",
        "data": {"case": {"case_number": "MY-1"}, "child": {"names": {"given_names": given_names}}},
    }
    adapter.encode([document], out)
    return out.getvalue()


def test_an_export_in_an_encoding_that_lacks_a_character_names_the_record_and_column() -> None:
    mapping = CsvAdapter("dif-estatal").mapping
    windows = CsvAdapter(dataclasses.replace(mapping, encoding="cp1252"))
    assert "Peña" in export(windows, "Peña").decode("cp1252")
    with pytest.raises(AdapterError) as raised:
        export(windows, "Nguyễn 李")
    assert "«MY-1»" in raised.value.message("es") and "«nombre(s)»" in raised.value.message("es")
    assert "«ễ»" in raised.value.message("es")
    assert "'MY-1'" in raised.value.message("en") and "'nombre(s)'" in raised.value.message("en")
    assert "cp1252" in raised.value.message("en") and "'ễ'" in raised.value.message("en")
    # The default (UTF-8 with a byte-order mark) holds every character.
    assert "Nguyễn 李" in export(CsvAdapter(mapping), "Nguyễn 李").decode("utf-8-sig")
