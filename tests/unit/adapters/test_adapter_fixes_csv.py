"""The csv adapter where an outside tester found it losing or leaking data: a quote left open
that swallows the rows after it, a cell longer than the csv module reads, formula-like cells
in a rejects file, and an export with more list items than the mapping has columns for."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from adapters.base import FileProblem, Item
from adapters.csv_adapter import CsvAdapter
from adapters.errors import AdapterError
from adapters.template import csv_template

HEADER = "folio,nombre(s),fecha_nacimiento,nacionalidad,alias"


@pytest.fixture(scope="module")
def dif() -> CsvAdapter:
    return CsvAdapter("dif-estatal")


def decode(adapter: CsvAdapter, *lines: str) -> list[Item]:
    return list(adapter.decode(io.BytesIO("".join(lines).encode("utf-8"))))


def rejects_of(adapter: CsvAdapter, items: list[Item]) -> list[list[str]]:
    out = io.BytesIO()
    adapter.write_rejects([item for item in items if not item.ok], out)
    limit = csv.field_size_limit(1 << 24)  # to read back the long cells of these tests
    try:
        return list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"), newline="")))
    finally:
        csv.field_size_limit(limit)


# -- a quote left open --------------------------------------------------------------------------

OPEN_AT_THE_END = (
    f"{HEADER}\r\n",
    "Q-1,Ana,01/01/2012,Hondureña,ok\r\n",
    'Q-2,Bea,01/01/2012,Hondureña,"La Güera\r\n',
    "Q-3,Cira,01/01/2012,Hondureña,ok\r\n",
    "Q-4,Dora,01/01/2012,Hondureña,ok\r\n",
)


def test_a_quote_open_at_the_end_of_the_file_is_a_file_problem_not_a_stored_row(
    dif: CsvAdapter,
) -> None:
    items = decode(dif, *OPEN_AT_THE_END)
    stored = [item for item in items if item.ok]
    assert [item.local_id for item in stored] == ["Q-1"]  # nothing of in Q-2
    [problem] = [item for item in items if isinstance(item, FileProblem)]
    assert problem.position == "3"  # the row where the quote opened
    [said] = problem.problems
    assert "row 3" in said.en and "'alias'" in said.en and "never closed" in said.en
    assert "the 2 lines after it were read into that cell" in said.en
    assert "fila 3" in said.es and "«alias»" in said.es and "never" not in said.es
    # The row is rejected too, its text kept whole: nothing is lost from a rejects file that
    # is itself being imported.
    [row] = [item for item in items if not item.ok and not isinstance(item, FileProblem)]
    assert (row.position, row.local_id) == ("3", "Q-2")
    [back] = rejects_of(dif, items)[1:]
    assert back[1:6] == ["3", "Q-2", "Bea", "01/01/2012", "Hondureña"]
    assert "Q-3,Cira" in back[6] and "Q-4,Dora" in back[6]


def test_a_quote_closed_rows_later_swallows_no_row_silently(dif: CsvAdapter) -> None:
    items = decode(
        dif,
        f"{HEADER}\r\n",
        'Q-2,Bea,01/01/2012,Hondureña,"La Güera\r\n',
        "Q-3,Cira,01/01/2012,Hondureña,ok\r\n",
        'Q-4,Dora,01/01/2012,Hondureña,"Dorita"\r\n',
        "Q-5,Eva,01/01/2012,Hondureña,ok\r\n",
    )
    assert not any(item.ok and item.local_id == "Q-2" for item in items)
    [swallowing] = [item for item in items if item.local_id == "Q-2"]
    [reason] = swallowing.problems
    assert reason.pointer == "column:alias"
    assert "Q-3,Cira" in reason.en and "quote" in reason.en
    assert "comillas" in reason.es and "quote" not in reason.es
    assert [item.local_id for item in items if item.ok] == ["Q-5"]


def test_a_legitimate_cell_with_line_breaks_is_still_read(dif: CsvAdapter) -> None:
    items = decode(
        dif,
        f"{HEADER}\r\n",
        'M-1,Ana,01/01/2012,Hondureña,"La Güera\r\nLa Flaca, la de Tapachula"\r\n',
        "M-2,Bea,01/01/2012,Hondureña,ok\r\n",
    )
    assert [item.ok for item in items] == [True, True]
    assert items[0].document is not None
    assert items[0].document["data"]["child"]["alias"].startswith("La Güera\r\nLa Flaca")


# -- a cell longer than the csv module reads -----------------------------------------------------


def test_a_row_with_an_overlong_cell_keeps_its_cells_in_the_rejects_file(dif: CsvAdapter) -> None:
    long = "x" * 200_000
    quoted = "y" * 140_000
    items = decode(
        dif,
        "folio,nombre(s),fecha_nacimiento,nacionalidad,observaciones\r\n",
        f"L-1,Pedro,01/01/2012,Hondureña,{long}\r\n",
        "L-2,Juan,01/01/2012,Hondureña,corto\r\n",
        f'L-3,María,01/01/2012,Hondureña,"{quoted}\r\nsegunda línea"\r\n',
        "L-4,Rosa,01/01/2012,Hondureña,corto\r\n",
    )
    assert [(item.position, item.ok) for item in items] == [
        ("2", False),
        ("3", True),
        ("4", False),
        ("5", True),  # the rest of L-3's cell is not read as a row of its own
    ]
    [reason] = items[0].problems
    assert reason.pointer == "column:observaciones"
    assert "200,000 characters" in reason.en and "shorten" in reason.en
    assert "200 000 caracteres" in reason.es and "acorte" in reason.es
    assert "field" not in reason.es and "limit" not in reason.es  # no Python English
    back = rejects_of(dif, items)[1:]
    assert back[0][1:] == ["2", "L-1", "Pedro", "01/01/2012", "Hondureña", long]
    assert back[1][1:] == ["4", "L-3", "María", "01/01/2012", "Hondureña",
                           f"{quoted}\r\nsegunda línea"]  # fmt: skip


# -- formula-like cells in a rejects file --------------------------------------------------------


def test_rejects_keep_the_apostrophe_before_formula_like_text(dif: CsvAdapter) -> None:
    items = decode(
        dif,
        "folio,nombre(s),primer_apellido,fecha_nacimiento,nacionalidad,observaciones\r\n",
        "A-1,'+cmd,'-Gómez,31/02/2011,Haití,'-2+3\r\n",  # as an export writes them
        'A-2,"=HYPERLINK(""http://evil.example"")",@SUM(1+1),31/02/2013,Haití,ok\r\n',  # raw
    )
    assert not any(item.ok for item in items)
    back = rejects_of(dif, items)[1:]
    assert back[0][2:] == ["A-1", "'+cmd", "'-Gómez", "31/02/2011", "Haití", "'-2+3"]
    assert back[1][3:5] == ['\'=HYPERLINK("http://evil.example")', "'@SUM(1+1)"]
    # Imported again, the values are those the rows held: the apostrophe comes off.
    out = io.BytesIO()
    dif.write_rejects([item for item in items if not item.ok], out)
    fixed = out.getvalue().decode("utf-8-sig").replace("31/02/2011", "01/02/2011")
    [first, _second] = list(dif.decode(io.BytesIO(fixed.encode("utf-8-sig"))))
    assert first.ok and first.document is not None
    assert first.document["data"]["child"]["names"]["given_names"] == "+cmd"


# -- an export with more list items than the mapping writes --------------------------------------


def record(placements: int) -> dict[str, Any]:
    data = {
        "case": {"case_number": "DIF-1", "status": "open"},
        "child": {"given_names": "Ana", "date_of_birth": "2012-01-01", "nationality": ["HN"]},
        "placements": [
            {"type": "dif_cas", "start_date": f"2024-0{n + 1}-01"} for n in range(placements)
        ],
    }
    return {"schema": "case-record/1", "local_id": "DIF-1", "data": data}


def test_an_export_never_drops_list_items_beyond_the_mappings_repeat(dif: CsvAdapter) -> None:
    out = io.BytesIO()
    dif.encode([record(3)], out)  # as many as the columns: written
    with pytest.raises(AdapterError) as raised:
        dif.encode([record(3), copy.deepcopy(record(5))], io.BytesIO())
    error = raised.value
    assert "'DIF-1'" in error.message_en and "/placements" in error.message_en
    assert "5" in error.message_en and "repeat" in error.message_en
    assert "«DIF-1»" in error.message_es and "repeat" in error.message_es


def test_the_template_mapping_says_so_too() -> None:
    template = csv_template("case-record/1", repeat=2)
    import yaml

    adapter = CsvAdapter(yaml.safe_load(template.mapping_yaml))
    with pytest.raises(AdapterError, match="repeat"):
        adapter.encode([record(3)], io.BytesIO())


# -- an installed package that takes a built-in name ---------------------------------------------


def test_an_installed_package_that_names_a_builtin_is_told_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters import registry
    from tests.unit.adapters.test_adapter_registry import install

    monkeypatch.syspath_prepend(str(tmp_path))
    install(tmp_path, "impostor", "1.0", {"csv": "impostor:Csv"})
    assert registry.registered()["csv"].builtin  # the built-in still wins
    registry.registered()
    told = capsys.readouterr().err
    assert (
        told.count("warning: the installed package impostor 1.0 registers the adapter 'csv'") == 1
    )
    assert "cannot be overridden" in told and "no se puede reemplazar" in told
