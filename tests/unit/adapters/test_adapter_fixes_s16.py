"""A field a spreadsheet row leaves out is named by the columns that give it (docs/adapters.md
§1, *Closed cases*): a closed case without its closure names ``fecha_cierre`` and
``motivo_cierre``, in Spanish and English, in the reason and in the rejects file — and so does
any other missing field, in any mapping, not only the closure."""

from __future__ import annotations

import csv
import io
from typing import Any

from adapters.base import Item, Problem
from adapters.csv_adapter import CsvAdapter

SAMPLE = "tests/unit/adapters/fixtures/csv/dif-estatal.csv"


def sample() -> tuple[list[str], list[str]]:
    """The header and first row of the sample sheet the guide points to."""
    with open(SAMPLE, encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    return rows[0], rows[1]


def decoded(header: list[str], row: list[str], mapping: Any = "dif-estatal") -> Item:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerow(row)
    [item] = CsvAdapter(mapping).decode(io.BytesIO(text.getvalue().encode("utf-8")))
    return item


def with_cells(header: list[str], row: list[str], **cells: str) -> list[str]:
    changed = list(row)
    for name, value in cells.items():
        changed[header.index(name)] = value
    return changed


def missing(item: Item, field: str) -> Problem:
    assert item.document is None
    [problem] = [p for p in item.problems if f"required field '{field}'" in p.en]
    return problem


def test_a_closed_case_without_its_closure_names_the_columns_to_fill() -> None:
    header, row = sample()
    header = [*header, "fecha_cierre", "motivo_cierre"]
    item = decoded(header, [*with_cells(header, row, estatus="Cerrado"), "", ""])
    problem = missing(item, "closure")
    assert problem.en == (
        "required field 'closure' is missing; fill in the columns that give it: "
        "'fecha_cierre', 'motivo_cierre'"
    )
    assert problem.es == (
        "falta el campo obligatorio «cierre» (closure); llene las columnas que lo dan: "
        "«fecha_cierre», «motivo_cierre»"
    )
    # Not the closure's optional parts (otro_motivo_cierre gives /closure/reason_other).
    assert "otro_motivo_cierre" not in problem.en


def test_columns_the_sheet_lacks_are_named_to_be_added() -> None:
    header, row = sample()  # the sample sheet has no closure columns at all
    problem = missing(decoded(header, with_cells(header, row, estatus="Cerrado")), "closure")
    assert "'fecha_cierre' (not in the sheet: add it)" in problem.en
    assert "'motivo_cierre' (not in the sheet: add it)" in problem.en
    assert "«fecha_cierre» (no está en la hoja: agréguela)" in problem.es


def test_a_closure_with_its_date_only_names_the_reasons_column() -> None:
    header, row = sample()
    header = [*header, "Fecha de cierre", "MOTIVO CIERRE"]  # as the office's sheet writes them
    item = decoded(header, [*with_cells(header, row, estatus="Cerrado"), "01/05/2024", ""])
    problem = missing(item, "reason for closure")
    assert problem.pointer == "/closure"
    assert problem.en.endswith("; fill in the column that gives it: 'MOTIVO CIERRE'")
    assert problem.es.endswith("; llene la columna que lo da: «MOTIVO CIERRE»")


def test_an_element_of_a_group_names_its_own_numbered_column() -> None:
    header, row = sample()
    # The first shelter left empty: the second one the row fills is the list's first element.
    emptied = {name: "" for name in header if name.startswith("albergue_1_")}
    item = decoded(header, with_cells(header, row, albergue_2_tipo="", **emptied))
    problem = missing(item, "type of placement")
    assert problem.pointer == "/placements/0"
    assert problem.en.endswith("fill in the column that gives it: 'albergue_2_tipo'")


def test_at_least_one_of_names_each_columns() -> None:
    header, row = sample()
    item = decoded(header, with_cells(header, row, fecha_nacimiento="", edad_estimada=""))
    [problem] = [p for p in item.problems if "at least one of" in p.en]
    assert problem.en.endswith(
        "; fill in at least one of the columns that give them: 'fecha_nacimiento', 'edad_estimada'"
    )
    assert problem.es.endswith(
        "; llene al menos una de las columnas que los dan: «fecha_nacimiento», «edad_estimada»"
    )


def test_any_mapping_not_only_the_shipped_one() -> None:
    mapping = {
        "schema": "case-record/1",
        "local_id": "exp",
        "columns": {
            "exp": "/case/case_number",
            "situacion": {"pointer": "/case/status", "values": {"C": "closed", "A": "open"}},
            "nombre": "/child/names/given_names",
            "pais": {"pointer": "/child/nationality", "split": ","},
            "nacio": "/child/date_of_birth",
            "cerrado_el": "/closure/closed_on",
            "por": "/closure/reason",
        },
    }
    header = ["exp", "situacion", "nombre", "pais", "nacio", "cerrado_el", "por"]
    item = decoded(header, ["E-1", "C", "Ana", "", "2012-01-02", "", ""], mapping)
    assert missing(item, "nationality(ies)").en.endswith("fill in the column that gives it: 'pais'")
    assert missing(item, "closure").en.endswith(
        "fill in the columns that give it: 'cerrado_el', 'por'"
    )


def test_a_field_no_column_gives_is_said_as_the_schema_says_it() -> None:
    mapping = {
        "schema": "case-record/1",
        "local_id": "exp",
        "columns": {
            "exp": "/case/case_number",
            "situacion": {"pointer": "/case/status", "values": {"C": "closed"}},
            "nombre": "/child/names/given_names",
            "pais": {"pointer": "/child/nationality", "split": ","},
            "nacio": "/child/date_of_birth",
        },
    }
    header = ["exp", "situacion", "nombre", "pais", "nacio"]
    item = decoded(header, ["E-1", "C", "Ana", "GT", "2012-01-02"], mapping)
    assert missing(item, "closure").en == "required field 'closure' is missing"


def test_the_rejects_file_carries_the_columns_in_both_languages() -> None:
    header, row = sample()
    header = [*header, "fecha_cierre", "motivo_cierre"]
    adapter = CsvAdapter("dif-estatal")
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerow([*with_cells(header, row, estatus="Cerrado"), "", ""])
    items = list(adapter.decode(io.BytesIO(text.getvalue().encode("utf-8"))))
    out = io.BytesIO()
    adapter.write_rejects(items, out)
    rejects = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    reasons = rejects[1][0]
    assert "llene las columnas que lo dan: «fecha_cierre», «motivo_cierre»" in reasons
    assert "fill in the columns that give it: 'fecha_cierre', 'motivo_cierre'" in reasons
