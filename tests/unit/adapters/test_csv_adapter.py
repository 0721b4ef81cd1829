"""The csv adapter as an office meets it: exports from Excel in whatever encoding and
delimiter, rows with mistakes, and a rejects file to fix and import again."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.base import FileProblem, Item
from adapters.csv_adapter import REJECTS_COLUMN, ROW_COLUMN, CsvAdapter
from adapters.errors import AdapterError
from adapters.tabular.rows import CsvRow

FIXTURE = Path(__file__).parent / "fixtures" / "csv" / "dif-estatal.csv"
HEADER = "folio,nombre(s),primer_apellido,sexo,fecha_nacimiento,nacionalidad"


@pytest.fixture(scope="module")
def dif() -> CsvAdapter:
    return CsvAdapter("dif-estatal")


def decode(adapter: CsvAdapter, text: str | bytes, encoding: str = "utf-8") -> list[Item]:
    data = text.encode(encoding) if isinstance(text, str) else text
    return list(adapter.decode(io.BytesIO(data)))


def data_of(item: Item) -> Any:
    assert item.ok, item.problems
    assert item.document is not None
    return item.document["data"]


def problems_of(item: Item) -> list[tuple[str, str]]:
    return [(p.pointer, p.en) for p in item.problems]


def test_the_sample_export_becomes_valid_case_records(dif: CsvAdapter) -> None:
    items = decode(dif, FIXTURE.read_bytes())
    # Rows as a spreadsheet program numbers them: the header is row 1.
    assert [i.position for i in items] == ["2", "3", "4", "5", "6"]
    first = data_of(items[0])
    assert items[0].local_id == "DIF-CHP-2024-0101"
    assert first["case"] == {
        "case_number": "DIF-CHP-2024-0101",
        "opened_on": "2024-03-11",
        "status": "open",
        "identified_by": "inm_channelling",
    }
    child = first["child"]
    assert child["names"] == {
        "given_names": "Kevin Josué",
        "first_surname": "Ejemplo",
        "second_surname": "Ficticio",
    }
    assert (child["sex"], child["date_of_birth"], child["nationality"]) == (
        "male",
        "2008-07-02",
        ["HN"],
    )
    assert child["identifiers"] == [
        {"type": "curp", "value": "EEFK080702HNEJCVA9"},
        {"type": "inm_file", "value": "INM-TAP-2024-5531"},
        {"type": "comar_case", "value": "COMAR-TAP-2024-011873"},
    ]
    assert child["entry_to_mexico"] == {"date": {"date": "2024-01"}}
    assert child["current_location"]["address"] == {
        "state": "07",
        "municipality": "07089",
        "locality": "Tapachula de Córdova y Ordóñez",
    }
    assert [p["type"] for p in first["placements"]] == ["dif_transit_shelter", "open_door_shelter"]
    assert first["placements"][0]["end_reason"] == "moved_placement"
    # Lists from one cell, an age estimate instead of a date of birth, a leap day.
    assert data_of(items[1])["child"]["languages"] == ["es", "mam"]
    assert data_of(items[2])["child"]["age_estimation"] == {"estimated_age_years": 4}
    assert data_of(items[2])["child"]["nationality"] == ["XX"]
    assert data_of(items[4])["child"]["nationality"] == ["VE", "CO"]
    assert data_of(items[4])["child"]["date_of_birth"] == "2008-02-29"


def test_bom_and_semicolons(dif: CsvAdapter) -> None:
    text = f"{HEADER}\nF-1,Ana,Ruiz,M,01/02/2010,Guatemala\n".replace(",", ";")
    (item,) = decode(dif, text, "utf-8-sig")
    assert data_of(item)["child"]["names"]["given_names"] == "Ana"
    assert dif.source_encoding == "utf-8-sig" and dif.source_delimiter == ";"


def test_latin1_is_read_even_when_the_first_accent_comes_late() -> None:
    adapter = CsvAdapter("dif-estatal")
    rows = "".join(f"F-{n},Ana,Ruiz,M,01/02/2010,Guatemala\n" for n in range(5000))
    text = f"{HEADER}\n{rows}F-X,José Ángel,Núñez,H,02/07/2008,Hondureño\n"
    items = decode(adapter, text, "cp1252")
    assert len(items) == 5001 and all(item.ok for item in items)
    assert data_of(items[-1])["child"]["names"] == {
        "given_names": "José Ángel",
        "first_surname": "Núñez",
    }
    assert adapter.source_encoding == "cp1252"


def test_a_missing_required_column_is_one_file_problem_and_no_row_is_read(
    dif: CsvAdapter,
) -> None:
    text = (
        "folio,nombre(s),sexo,fecha_nacimeinto,nacionalidad\n"
        "F-1,Ana,M,01/02/2010,Guatemala\nF-2,Luis,H,02/03/2011,Honduras\n"
    )
    # Every row would fail for it the same way: the header is fixed once, nothing is read.
    (header,) = decode(dif, text)
    assert isinstance(header, FileProblem)
    assert header.position == "1" and header.source is None
    assert problems_of(header) == [
        (
            "column:fecha_nacimiento",
            "the required column 'fecha_nacimiento' is missing; is it fecha_nacimeinto?",
        )
    ]


def test_a_column_the_mapping_reads_named_twice_stops_the_sheet(dif: CsvAdapter) -> None:
    # Two "fecha_nacimiento" columns (one pasted from another sheet): only one would be read,
    # and nobody could tell which holds the child's real date of birth.
    text = (
        "folio,nombre(s),primer_apellido,sexo,Fecha Nacimiento,nacionalidad,fecha_nacimiento\n"
        "F-1,Ana,Ruiz,M,01/02/2010,Guatemala,01/02/2011\n"
    )
    (header,) = decode(dif, text)
    assert isinstance(header, FileProblem) and header.position == "1"
    assert problems_of(header) == [
        (
            "column:Fecha Nacimiento",
            "the column 'Fecha Nacimiento' appears more than once (columns 5, 7): only one "
            "would be read; keep one, or rename the others",
        )
    ]
    # A repeated column the mapping does not read (nor empty header cells) is no problem.
    extra = f"{HEADER},notas,notas,,\nF-1,Ana,Ruiz,M,01/02/2010,Guatemala,a,b,,\n"
    (row,) = decode(dif, extra)
    assert row.ok, problems_of(row)


def test_header_names_match_as_the_docs_promise(dif: CsvAdapter) -> None:
    # Case, accents, spaces and underscores, and then small connecting words ("de").
    text = (
        "FOLIO;Nombre(s);Primer Apellido;Sexo;Fecha de nacimiento;Nacionalidad\n"
        "F-1;Ana;Ruiz;M;01/02/2010;Guatemala\n"
    )
    (item,) = decode(dif, text)
    assert data_of(item)["child"]["date_of_birth"] == "2010-02-01"
    grouped = f"{HEADER},Albergue 1 Tipo,Albergue 1 Fecha de ingreso\n"
    (item,) = decode(dif, grouped + "F-1,Ana,Ruiz,M,01/02/2010,Guatemala,CAS DIF,01/03/2024\n")
    assert data_of(item)["placements"] == [{"type": "dif_cas", "start_date": "2024-03-01"}]


def test_a_connecting_word_match_must_be_unambiguous(dif: CsvAdapter) -> None:
    text = (
        "folio,nombre(s),fecha de nacimiento,fecha del nacimiento,nacionalidad\n"
        "F-1,Ana,01/02/2010,02/02/2010,Guatemala\n"
    )
    (header,) = decode(dif, text)
    assert isinstance(header, FileProblem)
    assert header.problems[0].pointer == "column:fecha_nacimiento"


@pytest.mark.parametrize(
    ("start", "says"),
    [
        (b"PK\x03\x04" + bytes(range(256)) * 20, "Excel or OpenDocument workbook (.xlsx, .ods)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "Excel 97-2003 workbook (.xls)"),
        (b"%PDF-1.7\n", "a PDF document"),
        ("folio,nombre\n".encode("utf-16"), "UTF-16 text"),
        (b"folio\x00,nombre\n", "NUL bytes"),
    ],
)
def test_a_file_that_is_not_csv_text_is_one_file_problem(
    dif: CsvAdapter, start: bytes, says: str
) -> None:
    (problem,) = decode(dif, start)
    assert isinstance(problem, FileProblem) and problem.position == "1"
    assert says in problem.problems[0].en and "CSV UTF-8" in problem.problems[0].en
    assert "CSV UTF-8" in problem.problems[0].es


def test_a_header_with_no_column_of_the_mapping_is_one_file_problem(dif: CsvAdapter) -> None:
    (problem,) = decode(dif, '{"data": [{"id": "x"}]}\n{"id": "y"}\n')
    assert isinstance(problem, FileProblem)
    assert "no column of the header" in problem.problems[0].en


def test_unknown_codes_and_impossible_dates_name_the_column_and_value(dif: CsvAdapter) -> None:
    text = f"{HEADER}\nF-1,Ana,Ruiz,Z,31/02/2015,Atlántida\n"
    (item,) = decode(dif, text)
    found = dict(problems_of(item))
    assert found["column:sexo"].startswith("column 'sexo' = 'Z': unknown code 'Z'; accepted: H, ")
    assert found["column:fecha_nacimiento"] == (
        "column 'fecha_nacimiento' = '31/02/2015': '31/02/2015' is not a date that exists: "
        "February 2015 has 28 days"
    )
    assert "column:nacionalidad" in found
    spanish = {p.pointer: p.es for p in item.problems}
    assert "febrero de 2015 tiene 28 días" in spanish["column:fecha_nacimiento"]


def test_codes_match_without_case_accents_or_spaces(dif: CsvAdapter) -> None:
    text = f"{HEADER},no_acompanado\nF-1,Ana,Ruiz, mujer ,1/2/2010,GUATEMALTECA,SI\n"
    child = data_of(decode(dif, text)[0])["child"]
    assert (child["sex"], child["nationality"], child["unaccompanied_status"]) == (
        "female",
        ["GT"],
        "unaccompanied",
    )
    # A shared code is accepted as it is.
    text = f"{HEADER}\nF-1,Ana,Ruiz,female,2010-02-01,GT\n"
    assert data_of(decode(dif, text)[0])["child"]["sex"] == "female"


def test_validation_failures_name_the_column(dif: CsvAdapter) -> None:
    text = f"{HEADER},curp,albergue_1_tipo\nF-1,Ana,Ruiz,M,01/02/2010,Guatemala,XXX,CAS DIF\n"
    (item,) = decode(dif, text)
    by_pointer = {p.pointer: p.en for p in item.problems}
    assert by_pointer["/child/identifiers/0/value"].startswith("column 'curp': ")
    assert "start_date" in by_pointer["/placements/0"]  # a shelter without its start date


def test_repeated_groups_fill_the_list_in_order_skipping_empty_ones(dif: CsvAdapter) -> None:
    text = (
        f"{HEADER},albergue_2_tipo,albergue_2_fecha_ingreso,albergue_1_tipo,albergue_1_fecha_ingreso,"
        "albergue_3_tipo,albergue_3_fecha_ingreso\n"
        "F-1,Ana,Ruiz,M,01/02/2010,Guatemala,Puertas abiertas,05/05/2024,CAS DIF,01/03/2024,,\n"
        "F-2,Luis,Ruiz,H,01/02/2010,Guatemala,,,,,Familia extensa,07/07/2024\n"
    )
    first, second = decode(dif, text)
    assert data_of(first)["placements"] == [
        {"type": "dif_cas", "start_date": "2024-03-01"},
        {"type": "open_door_shelter", "start_date": "2024-05-05"},
    ]
    assert data_of(second)["placements"] == [{"type": "kinship_care", "start_date": "2024-07-07"}]


def test_row_level_problems(dif: CsvAdapter) -> None:
    text = (
        f"{HEADER}\n"
        ",Ana,Ruiz,M,01/02/2010,Guatemala\n"
        ",,,,,\n"
        'F-3,"Ana\nMaría",Ruiz,M,01/02/2010,Guatemala\n'
        "F-4,Eva,Ruiz,M,01/02/2010,Guatemala,sobra\n"
        f"{'F' * 201},Eva,Ruiz,M,01/02/2010,Guatemala\n"
    )
    items = decode(dif, text)
    assert [i.position for i in items] == ["2", "4", "5", "6"]  # the empty row 3 is skipped
    assert problems_of(items[0]) == [("column:folio", "the column 'folio' (local id) is empty")]
    assert data_of(items[1])["child"]["names"]["given_names"] == "Ana\nMaría"
    assert "the row has 7 cells and the header 6 columns" in items[2].problems[0].en
    assert problems_of(items[3]) == [
        ("column:folio", "the column 'folio' (local id) has 201 characters; at most 200"),
        (
            "/case/case_number",
            "column 'folio': The field 'agency case number' (case_number) must be at most 60 "
            "characters long (it has 201)",
        ),
    ]


def test_rejects_keep_delimiter_encoding_and_cells_after_an_errors_column() -> None:
    adapter = CsvAdapter("dif-estatal")
    text = (
        f"{HEADER}\nF-1,Ana,Ruiz,Z,01/02/2010,Guatemala\n"
        'F-2,"Luis; ""el güero""",Ruiz,H,02/03/2011,Honduras\n'
        "F-3,Eva,Ruiz,M,31/02/2015,Guatemala,extra\n"
    ).replace(",", ";")
    items = decode(adapter, text, "cp1252")
    out = io.BytesIO()
    adapter.write_rejects((item for item in items if not item.ok), out)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("cp1252")), delimiter=";"))
    assert rows[0] == [REJECTS_COLUMN, ROW_COLUMN, *HEADER.split(",")]
    assert rows[1][1:] == ["2", "F-1", "Ana", "Ruiz", "Z", "01/02/2010", "Guatemala"]
    assert "unknown code 'Z'" in rows[1][0] and "código desconocido «Z»" in rows[1][0]
    assert rows[2][1:] == ["4", "F-3", "Eva", "Ruiz", "M", "31/02/2015", "Guatemala", "extra"]
    # Fixed in the spreadsheet and imported again: the errors and row columns are ignored.
    fixed = (
        out.getvalue().decode("cp1252").replace(";Z;", ";M;").replace("31/02/2015", "28/02/2015")
    )
    fixed = fixed.replace(";extra", "")
    again = decode(CsvAdapter("dif-estatal"), fixed, "cp1252")
    assert [(i.local_id, i.ok) for i in again] == [("F-1", True), ("F-3", True)]


def test_a_rejects_file_imported_again_keeps_one_errors_and_one_row_column() -> None:
    adapter = CsvAdapter("dif-estatal")
    first = io.BytesIO()
    text = f"{HEADER}\nF-1,Ana,Ruiz,Z,01/02/2010,Guatemala\nF-2,Eva,Ruiz,Z,01/02/2010,Guatemala\n"
    adapter.write_rejects(iter(decode(adapter, text)), first)
    again = CsvAdapter("dif-estatal")
    second = io.BytesIO()
    again.write_rejects(iter(decode(again, first.getvalue())), second)
    rows = list(csv.reader(io.StringIO(second.getvalue().decode("utf-8"))))
    assert rows[0] == [REJECTS_COLUMN, ROW_COLUMN, *HEADER.split(",")]
    # The row numbers are those of the file imported (the rejects file) now.
    assert [row[1:3] for row in rows[1:]] == [["2", "F-1"], ["3", "F-2"]]
    assert rows[1][0].count("unknown code 'Z'") == 1


@pytest.mark.parametrize(
    ("encoding", "starts"),
    [("cp1252", b"errores/errors,fila/row"), ("utf-8-sig", b"\xef\xbb\xbferrores/errors")],
)
def test_rejects_are_in_the_encoding_of_the_file_even_when_it_shows_late(
    encoding: str, starts: bytes
) -> None:
    # The import writes rejects while it reads: the first rejected rows come before the first
    # byte that tells Windows-1252 from UTF-8. The whole rejects file is in the file's encoding.
    adapter = CsvAdapter("dif-estatal")
    rows = "".join(f"F-{n},Ana,Ruiz,Z,01/02/2010,Guatemala\n" for n in range(3))
    text = f"{HEADER}\n{rows}F-X,José,Núñez,Z,02/07/2008,Hondureño\n"
    out = io.BytesIO()
    adapter.write_rejects(adapter.decode(io.BytesIO(text.encode(encoding))), out)
    written = out.getvalue()
    assert written.startswith(starts)
    back = written.decode(encoding)
    assert "José,Núñez" in back and "código desconocido «Z»" in back


def test_a_short_row_is_said_to_be_short(dif: CsvAdapter) -> None:
    text = (
        "folio,nombre(s),primer_apellido,sexo,fecha_nacimiento,nacionalidad,entidad\n"
        "F-1,Ana,Ruiz,M,01/02/2010,Guatemala\n"  # the empty last cell left out
        "F-2,María\n"
    )
    whole, short = decode(dif, text)
    assert whole.ok
    assert [w.en for w in whole.warnings] == [  # type: ignore[attr-defined]
        "the row has 6 cells and the header 7 columns; the missing ones were read as empty "
        "(a delimiter missing, or a line break splitting the row?)"
    ]
    assert not short.ok
    assert short.problems[0].en.startswith("the row has 2 cells and the header 7 columns")


def test_source_is_the_original_row(dif: CsvAdapter) -> None:
    (item,) = decode(dif, f"{HEADER}\nF-1, Ana ,Ruiz,M,01/02/2010,Guatemala\n")
    assert isinstance(item.source, CsvRow)
    assert item.source["nombre(s)"] == " Ana " and len(item.source) == 6
    assert dict(item.source)["folio"] == "F-1"


def test_encode_writes_what_the_mapping_covers_with_local_codes(dif: CsvAdapter) -> None:
    (item,) = decode(dif, FIXTURE.read_bytes())[:1]
    out = io.BytesIO()
    dif.encode([item.document], out)
    assert out.getvalue().startswith(b"\xef\xbb\xbf")
    header, row = csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig")))
    cells = dict(zip(header, row, strict=True))
    assert cells["folio"] == "DIF-CHP-2024-0101"
    assert (cells["sexo"], cells["fecha_nacimiento"], cells["nacionalidad"]) == (
        "H",
        "02/07/2008",
        "Honduras",
    )
    assert (cells["curp"], cells["folio_inm"]) == ("EEFK080702HNEJCVA9", "INM-TAP-2024-5531")
    assert (cells["requiere_atencion_medica"], cells["entidad"]) == ("No", "Chiapas")
    assert (cells["albergue_1_tipo"], cells["albergue_1_fecha_egreso"]) == (
        "Albergue de tránsito",
        "02/04/2024",
    )
    assert cells["albergue_2_tipo"] == "Puertas abiertas"
    assert cells["albergue_3_tipo"] == ""


def test_encode_refuses_a_document_of_another_schema(dif: CsvAdapter) -> None:
    with pytest.raises(AdapterError, match="consent/1"):
        dif.encode([{"schema": "consent/1", "local_id": "x", "data": {}}], io.BytesIO())


def test_an_empty_file_gives_nothing(dif: CsvAdapter) -> None:
    assert decode(dif, b"") == []


def test_mapping_given_as_a_json_file(tmp_path: Path) -> None:
    mapping = {
        "schema": "case-record/1",
        "local_id": "id",
        "constants": {"/child/nationality": ["XX"], "/case/status": "open"},
        "columns": {"alias": "/child/alias", "age": "/child/age_estimation/estimated_age_years"},
    }
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping))
    (item,) = decode(CsvAdapter(path), "id\talias\tage\nA1\tLa Güera\t9\n")
    assert data_of(item)["child"] == {
        "alias": "La Güera",
        "age_estimation": {"estimated_age_years": 9},
        "nationality": ["XX"],
    }
    assert data_of(item)["case"] == {"status": "open"}


def test_broken_quoting_and_missing_line_breaks_stay_bounded(dif: CsvAdapter) -> None:
    good = "F-{n},Ana,Ruiz,M,01/02/2010,Guatemala\n"
    unclosed = 'F-X,"Ana,Ruiz,M,01/02/2010,Guatemala\n' + ("x" * 200 + "\n") * 1000
    text = HEADER + "\n" + good.format(n=1) + unclosed + good.format(n=2)
    items = decode(dif, text)
    assert items[0].ok and items[0].local_id == "F-1"
    assert items[1].position == "3"
    # The quote is never closed: what follows it is not read as rows, nor stored.
    assert "opens a quote that is never closed" in items[1].problems[0].en
    assert isinstance(items[-1], FileProblem) and items[-1].position == "3"
    assert not any(item.ok and item.local_id == "F-2" for item in items)
    # Closed before the end, after more than the reader takes: the row is refused (its
    # lines kept) and the rows after it are read.
    closing = 'F-Y,Ana,Ruiz,M,01/02/2010,"Guatemala\n' + ("x" * 200 + "\n") * 1000 + '"\n'
    items = decode(dif, HEADER + "\n" + closing + good.format(n=2))
    assert [(item.position, item.ok) for item in items] == [("2", False), ("3", True)]
    assert "the column 'nacionalidad' has 201,010 characters" in items[0].problems[0].en
    # No line break at all for megabytes: read in pieces, reported, never held whole.
    items = decode(dif, HEADER + "\n" + "F-1,Ana" + "," * 3_000_000)
    assert items and not any(item.ok for item in items)
