"""The parts of the csv adapter: reading text of unknown encoding, cells, pointers, and the
mapping file with its checks against the schema."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import MappingError
from adapters.tabular import cells
from adapters.tabular.mapping import compile_mapping, load_mapping, shipped
from adapters.tabular.pointers import MISSING, get, parse_pointer, put
from adapters.tabular.text import TextLines, sniff_delimiter

# -- text -------------------------------------------------------------------------------------


def lines(data: bytes, chunk_size: int = 4) -> tuple[list[str], TextLines]:
    reader = TextLines(io.BytesIO(data), chunk_size=chunk_size)
    return list(reader), reader


def test_utf8_with_a_byte_order_mark_split_across_reads() -> None:
    found, reader = lines("ñandú\r\nü\n".encode("utf-8-sig"), chunk_size=1)
    assert found == ["ñandú\r\n", "ü\n"] and reader.encoding == "utf-8-sig"


def test_windows_1252_from_the_first_byte_that_is_not_utf8() -> None:
    # Curly quotes and ‰ exist in Windows-1252, not Latin-1; 0x81 is unassigned (read as Latin-1).
    data = "abc\nJosé “Pepe” ‰\n".encode("cp1252") + b"\x81"
    found, reader = lines(data)
    assert found == ["abc\n", "José “Pepe” ‰\n", "\x81"]
    assert reader.encoding == "cp1252" and not reader.mixed


def test_a_file_that_changes_encoding_is_marked_mixed() -> None:
    found, reader = lines("ñ\n".encode() + "é\n".encode("cp1252"))
    assert found == ["ñ\n", "é\n"] and reader.encoding == "cp1252" and reader.mixed


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("a,b,c", ","),
        ("a;b;c", ";"),
        ("a\tb\tc", "\t"),
        ('"nombre, completo";edad;sexo', ";"),
        ("solo", ","),
    ],
)
def test_delimiter_is_the_most_frequent_outside_quotes(header: str, delimiter: str) -> None:
    assert sniff_delimiter(header + "\n") == delimiter


# -- cells ------------------------------------------------------------------------------------


def test_normalise_ignores_case_accents_spaces_and_underscores() -> None:
    assert cells.normalise("  Fecha de  Nacimiento ") == "fecha_de_nacimiento"
    assert cells.normalise("NO_ACOMPAÑADO") == cells.normalise("no acompanado")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("02/07/2008", "2008-07-02"), ("2/7/2008", "2008-07-02"), ("2008-07-02", "2008-07-02"),
     ("29/02/2024", "2024-02-29")],
)  # fmt: skip
def test_dates(text: str, expected: str) -> None:
    convert, render = cells.dates([cells.DateFormat.parse("dd/mm/yyyy")], partial=False)
    assert convert(text) == expected
    assert render(expected) == "/".join(reversed(expected.split("-")))


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("31/02/2015", "'31/02/2015' is not a date that exists: February 2015 has 28 days"),
        ("29/02/2023", "'29/02/2023' is not a date that exists: February 2023 has 28 days"),
        ("31/04/2024", "'31/04/2024' is not a date that exists: April 2024 has 30 days"),
        ("01/13/2024", "'01/13/2024' is not a date: there is no month 13"),
        ("07/2024", "'07/2024' is not a date written as dd/mm/yyyy"),
        ("ayer", "'ayer' is not a date written as dd/mm/yyyy"),
    ],
)
def test_impossible_or_unreadable_dates(text: str, english: str) -> None:
    convert, _ = cells.dates([cells.DateFormat.parse("dd/mm/yyyy")], partial=False)
    with pytest.raises(cells.CellError) as caught:
        convert(text)
    assert caught.value.message_en == english


def test_partial_dates() -> None:
    layouts = [cells.DateFormat.parse(each) for each in ("dd/mm/yyyy", "mm/yyyy", "yyyy")]
    convert, render = cells.dates(layouts, partial=True)
    assert [convert(t) for t in ("05/01/2024", "1/2024", "2023")] == [
        "2024-01-05",
        "2024-01",
        "2023",
    ]
    assert [render(v) for v in ("2024-01-05", "2024-01", "2023")] == [
        "05/01/2024",
        "01/2024",
        "2023",
    ]


@pytest.mark.parametrize("layout", ["dd/mm", "dd/yyyy", "yyyy/yyyy"])
def test_date_layouts_need_a_year_and_a_month_for_a_day(layout: str) -> None:
    with pytest.raises(ValueError, match=layout):
        cells.DateFormat.parse(layout)


def test_booleans_and_codes() -> None:
    convert, render = cells.boolean()
    assert [convert(t) for t in ("Sí", "SI", "x", "No", "0")] == [True, True, True, False, False]
    assert (render(True), render(False)) == ("Sí", "No")
    with pytest.raises(cells.CellError, match="neither yes nor no"):
        convert("tal vez")
    coded = cells.coded({"H": "male", "Hombre": "male", "M": "female"}, None)
    assert (coded("hombre"), coded("male"), coded(" m ")) == ("male", "male", "female")
    with pytest.raises(cells.CellError, match="unknown code 'Q'; accepted: H, Hombre, M"):
        coded("Q")
    render_coded = cells.render_coded({"H": "male", "Hombre": "male", "Sí": True}, cells.text)
    assert (render_coded("male"), render_coded(True), render_coded("other")) == ("H", "Sí", "other")


def test_numbers() -> None:
    assert cells.integer("1 200") == 1200
    assert cells.number("3,5") == 3.5 and cells.number("7") == 7
    with pytest.raises(cells.CellError, match="whole number"):
        cells.integer("doce")


# -- pointers ---------------------------------------------------------------------------------


def test_put_creates_objects_and_lists_and_appends_identified_elements() -> None:
    document: dict[str, Any] = {}
    put(document, parse_pointer("/child/names/given_names"), "Ana")
    put(document, parse_pointer("/child/identifiers/-/value"), "C1", ((("type",), "curp"),))
    put(document, parse_pointer("/child/identifiers/-/value"), "I1", ((("type",), "inm_file"),))
    put(document, parse_pointer("/child/nationality/1"), "GT")
    assert document == {
        "child": {
            "names": {"given_names": "Ana"},
            "identifiers": [{"type": "curp", "value": "C1"}, {"type": "inm_file", "value": "I1"}],
            "nationality": [None, "GT"],
        }
    }
    fixed = ((("type",), "inm_file"),)
    assert get(document, parse_pointer("/child/identifiers/-/value"), fixed) == "I1"
    assert (
        get(document, parse_pointer("/child/identifiers/-/value"), ((("type",), "x"),)) is MISSING
    )
    assert get(document, parse_pointer("/child/alias")) is MISSING
    assert parse_pointer("/a~1b/c~0d/007") == ("a/b", "c~d", "007")


# -- mapping files ----------------------------------------------------------------------------


def mapping(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema": "case-record/1",
        "local_id": "folio",
        "columns": {"sexo": {"pointer": "/child/sex", "values": {"H": "male"}}},
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("spec", "where", "english"),
    [
        (mapping(schema="case-record/9"), "schema", "unknown schema 'case-record/9'"),
        (mapping(colums={}), "mapping", "unknown keys colums"),
        (
            mapping(columns={"n": "/child/names/given_name"}),
            "columns.n",
            "the schema has no field /child/names/given_name; did you mean "
            "/child/names/given_names",
        ),
        (mapping(columns={"n": "child/alias"}), "columns.n", "is not a JSON pointer"),
        (mapping(columns={"n": "/child/names"}), "columns.n", "is not a value but a group"),
        (
            mapping(
                columns={
                    "e": {
                        "pointer": "/child/current_location/address/state",
                        "values": {"Chiapas": 7},
                    }
                }
            ),
            "columns.e.values.Chiapas",
            "'7' is not a code of /child/current_location/address/state (quote codes",
        ),
        (
            mapping(columns={"s": {"pointer": "/child/sex", "values": {"H": "hombre"}}}),
            "columns.s.values.H",
            "'hombre' is not a code of /child/sex",
        ),
        (
            mapping(columns={"u": {"pointer": "/case/urgent", "values": {"Sí": "yes"}}}),
            "columns.u.values.Sí",
            "is not of the type boolean",
        ),
        (
            mapping(columns={"a": {"pointer": "/child/alias", "split": ","}}),
            "columns.a.split",
            "list",
        ),
        (mapping(columns={"c": "/child/identifiers/-/value"}), "columns.c", "'with'"),
        (
            mapping(columns={"t": {"pointer": "/child/sex", "type": "fecha"}}),
            "columns.t.type",
            "unknown type",
        ),
        (mapping(date_formats=["dd.mm"]), "date_formats", "invalid date format 'dd.mm'"),
        (mapping(delimiter=":"), "delimiter", "the delimiter must be"),
        (
            mapping(groups=[{"prefix": "a_", "pointer": "/child/alias", "columns": {}}]),
            "groups[0].pointer",
            "is not a list",
        ),
        (mapping(local_id=""), "mapping", "'local_id' (text) is missing"),
    ],
)
def test_mapping_mistakes_fail_at_load_with_their_place(
    spec: Any, where: str, english: str
) -> None:
    with pytest.raises(MappingError) as caught:
        compile_mapping(spec, "mapping")
    assert caught.value.where.startswith("mapping")
    assert where in caught.value.where
    assert english in caught.value.message_en
    assert caught.value.message_es != caught.value.message_en


def test_yaml_no_and_si_stay_codes(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "schema: case-record/1\nlocal_id: folio\ncolumns:\n"
        "  acompanado: {pointer: /child/unaccompanied_status, values: {No: unaccompanied, "
        "Sí: accompanied, Yes: accompanied, off: unknown}}\n"
        "  urgente: {pointer: /case/urgent, values: {Urgente: true, Normal: false}}\n"
        "  medico: /health/needs_medical_attention\n"
        "booleans: {true: [Afirmativo], false: [Negativo]}\n",
        encoding="utf-8",
    )
    loaded = load_mapping(path)
    column = next(c for c in loaded.columns if c.name == "acompanado")
    assert column.convert is not None
    assert [column.convert(t) for t in ("No", "sí", "yes", "OFF")] == [
        "unaccompanied",
        "accompanied",
        "accompanied",
        "unknown",
    ]
    urgent = next(c for c in loaded.columns if c.name == "urgente")
    assert urgent.convert is not None and urgent.convert("urgente") is True
    medical = next(c for c in loaded.columns if c.name == "medico")
    assert medical.convert is not None and medical.convert("afirmativo") is True
    assert medical.render(False) == "Negativo"


def test_unreadable_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="dif-estatal"):
        load_mapping(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: [unclosed\n")
    with pytest.raises(MappingError, match="not valid YAML or JSON"):
        load_mapping(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n")
    with pytest.raises(MappingError, match="expected an object"):
        load_mapping(listed)


def test_the_shipped_mapping_loads_by_name() -> None:
    assert "dif-estatal" in shipped()
    loaded = load_mapping("dif-estatal")
    assert loaded.schema == "case-record/1" and loaded.local_ids == ("id_local", "folio")
    assert [group.prefix for group in loaded.groups] == ["albergue_"]
    required = {column.name for column in loaded.columns if column.required}
    assert required == {"folio", "nombre(s)", "fecha_nacimiento", "nacionalidad"}
