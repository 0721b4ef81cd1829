"""A spreadsheet export imported again, as a DIF office does it: ``puente export --adapter csv
--mapping dif-estatal`` gives the office its case list, the office works on it and sends it
back with ``puente import``. Each column holds what the mapping says it holds (``folio`` the
case number), the record's local id has a column of its own (``id_local``), and closed cases
keep their closure — so the file goes back into the same records, with their case numbers."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import func, select

from adapters.base import FileProblem, Item
from adapters.csv_adapter import CsvAdapter
from adapters.errors import MappingError
from adapters.tabular.mapping import compile_mapping
from exchange import db
from exchange.agencies import register_agency
from exchange.cli import main
from exchange.records import Record
from tests.conftest import make_hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

OFFICE = "mx.chp.dif"
EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "case-record" / "1"
TYPICAL = json.loads((EXAMPLES / "valid" / "typical.json").read_text(encoding="utf-8"))


def record(local_id: str, case_number: str, *, closed: bool = False) -> dict[str, Any]:
    data = copy.deepcopy(TYPICAL)
    data["case"]["case_number"] = case_number
    if closed:
        data["case"]["status"] = "closed"
        data["closure"] = {"closed_on": "2024-05-02", "reason": "assisted_return_completed"}
    return {"schema": "case-record/1", "local_id": local_id, "data": data}


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    with app.app_context(), db.database(app).sessions.begin() as session:
        register_agency(
            session, OFFICE, OFFICE, "state", "07", ["records:write", "records:read"],
            with_secret=True,
        )  # fmt: skip
    yield app
    app.extensions["puente.db"].engine.dispose()


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def records_of(app: Flask) -> int:
    with db.database(app).sessions() as session:
        statement = select(func.count()).select_from(Record).where(Record.source_agency == OFFICE)
        return int(session.scalar(statement) or 0)


def export(out: Path, adapter: str, *mapping: str) -> list[Any]:
    result = run(
        "export", "--adapter", adapter, *mapping, "--agency", OFFICE,
        "--purpose", "case_management", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    if adapter == "csv":
        return list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_a_spreadsheet_export_goes_back_into_the_same_records_with_their_case_numbers(
    hub: Flask, tmp_path: Path
) -> None:
    # Records sent another way (the office's system, the API): their local ids are not their
    # case numbers, and one of them is closed.
    sent = tmp_path / "enviados.ndjson"
    sent.write_text(
        json.dumps(record("CHP-DEMO-0031", "DIF-TAB-2024-0088")) + "\n"
        + json.dumps(record("CHP-DEMO-0032", "DIF-TAB-2024-0089", closed=True)) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    assert run("import", "--adapter", "ndjson", sent, "--agency", OFFICE).exit_code == 0

    rows = export(tmp_path / "casos.csv", "csv", "--mapping", "dif-estatal")
    by_id = {row["id_local"]: row for row in rows}
    assert sorted(by_id) == ["CHP-DEMO-0031", "CHP-DEMO-0032"]
    # The folio column is the case number, as the mapping says; the local id has its own.
    assert by_id["CHP-DEMO-0031"]["folio"] == "DIF-TAB-2024-0088"
    assert by_id["CHP-DEMO-0032"]["folio"] == "DIF-TAB-2024-0089"
    closed = by_id["CHP-DEMO-0032"]
    assert (closed["estatus"], closed["fecha_cierre"], closed["motivo_cierre"]) == (
        "Cerrado",
        "02/05/2024",
        "Retorno asistido",
    )

    # The office sends the sheet back: every row is taken, none is a new record.
    again = run("import", "--adapter", "csv", "--mapping", "dif-estatal", "casos.csv",
                "--agency", OFFICE, "--json")  # fmt: skip
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert summary["rejected"] == 0, summary
    assert not (tmp_path / "casos-rejects.csv").exists()
    assert records_of(hub) == 2

    after = {doc["local_id"]: doc["data"] for doc in export(tmp_path / "d.ndjson", "ndjson")}
    assert sorted(after) == ["CHP-DEMO-0031", "CHP-DEMO-0032"]
    assert after["CHP-DEMO-0031"]["case"]["case_number"] == "DIF-TAB-2024-0088"
    assert after["CHP-DEMO-0032"]["case"]["case_number"] == "DIF-TAB-2024-0089"
    assert after["CHP-DEMO-0032"]["case"]["status"] == "closed"
    assert after["CHP-DEMO-0032"]["closure"] == {
        "closed_on": "2024-05-02",
        "reason": "assisted_return_completed",
    }


# -- the adapter itself -----------------------------------------------------------------------


def decode(adapter: CsvAdapter, text: str) -> list[Item]:
    return list(adapter.decode(io.BytesIO(text.encode("utf-8"))))


def encoded(adapter: CsvAdapter, *documents: dict[str, Any]) -> list[dict[str, str]]:
    out = io.BytesIO()
    adapter.encode(documents, out)
    return list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"))))


HEADER = "folio,nombre(s),primer_apellido,sexo,fecha_nacimiento,nacionalidad"


def test_the_office_sheet_without_id_local_still_names_rows_by_folio() -> None:
    adapter = CsvAdapter("dif-estatal")
    (item,) = decode(adapter, f"{HEADER}\nF-1,Ana,Ruiz,M,01/02/2010,Guatemala\n")
    assert item.ok and item.local_id == "F-1"
    assert item.document is not None
    assert item.document["data"]["case"]["case_number"] == "F-1"


def test_a_row_added_to_an_export_without_id_local_is_named_by_its_folio() -> None:
    adapter = CsvAdapter("dif-estatal")
    text = (
        f"id_local,{HEADER}\n"
        "CHP-1,DIF-1,Ana,Ruiz,M,01/02/2010,Guatemala\n"
        ",DIF-2,Eva,Ruiz,M,01/02/2010,Guatemala\n"
        ",,Luis,Ruiz,H,01/02/2010,Guatemala\n"
    )
    exported, added, nameless = decode(adapter, text)
    assert (exported.local_id, added.local_id) == ("CHP-1", "DIF-2")
    assert exported.document is not None
    assert exported.document["data"]["case"]["case_number"] == "DIF-1"
    assert [(p.pointer, p.en) for p in nameless.problems] == [
        ("column:id_local", "the columns 'id_local' and 'folio' (local id) are empty")
    ]
    assert "las columnas «id_local» y «folio» (identificador local) están vacías" in (
        nameless.problems[0].es
    )


def test_a_closed_case_round_trips_through_the_shipped_mapping() -> None:
    adapter = CsvAdapter("dif-estatal")
    document = record("CHP-9", "DIF-9", closed=True)
    document["data"]["closure"]["reason"] = "other"
    document["data"]["closure"]["reason_other"] = "Adopción"
    (row,) = encoded(adapter, document)
    assert (row["motivo_cierre"], row["otro_motivo_cierre"]) == ("Otro", "Adopción")
    text = io.BytesIO()
    adapter.encode([document], text)
    (item,) = list(CsvAdapter("dif-estatal").decode(io.BytesIO(text.getvalue())))
    assert item.ok, item.problems
    assert item.local_id == "CHP-9" and item.document is not None
    assert item.document["data"]["closure"] == document["data"]["closure"]
    assert item.document["data"]["case"]["case_number"] == "DIF-9"


def test_a_column_both_local_id_and_field_holds_the_field() -> None:
    # An office's own mapping where the folio is the local id and the case number too.
    mapping = {
        "schema": "case-record/1",
        "local_id": "folio",
        "columns": {
            "folio": "/case/case_number",
            "nombre": "/child/names/given_names",
            "nacionalidad": "/child/nationality/0",
            "fecha_nacimiento": "/child/date_of_birth",
        },
    }
    adapter = CsvAdapter(mapping)
    with_number = record("CHP-1", "DIF-1")
    without = record("CHP-2", "DIF-2")
    del without["data"]["case"]["case_number"]
    rows = encoded(adapter, with_number, without)
    # What the mapping says the column holds; the local id only where there is no case number,
    # so that the row can still be imported.
    assert [row["folio"] for row in rows] == ["DIF-1", "CHP-2"]


def test_a_sheet_with_none_of_the_local_id_columns_is_one_file_problem() -> None:
    mapping = {
        "schema": "case-record/1",
        "local_id": ["id_local", "clave"],
        "constants": {"/case/status": "open"},
        "columns": {"alias": "/child/alias"},
    }
    (problem,) = decode(CsvAdapter(mapping), "alias\nLa Güera\n")
    assert isinstance(problem, FileProblem)
    assert [(p.pointer, p.en) for p in problem.problems] == [
        ("column:id_local", "the local id column is missing: 'id_local' or 'clave'")
    ]
    (item,) = decode(CsvAdapter(mapping), "clave,alias\nK-1,La Güera\n")
    assert item.local_id == "K-1"


@pytest.mark.parametrize(
    ("local_id", "english"),
    [
        ([], "local_id is a column name, or a list of column names"),
        (["folio", ""], "local_id is a column name, or a list of column names"),
        (["Folio", "folio"], "local_id names the same column twice"),
    ],
)
def test_a_wrong_local_id_list_fails_at_load(local_id: Any, english: str) -> None:
    spec = {"schema": "case-record/1", "local_id": local_id, "columns": {}}
    with pytest.raises(MappingError) as caught:
        compile_mapping(spec, "mapping")
    assert caught.value.where == "mapping: local_id"
    assert caught.value.message_en == f"mapping: local_id: {english}"


def test_text_a_spreadsheet_would_run_as_a_formula_is_exported_inert_and_imports_back() -> None:
    adapter = CsvAdapter("dif-estatal")
    document = record("CHP-10", "DIF-10", closed=True)
    document["data"]["closure"]["reason"] = "other"
    document["data"]["closure"]["reason_other"] = '=HYPERLINK("http://x.example","clic")'
    (row,) = encoded(adapter, document)
    assert row["otro_motivo_cierre"] == '\'=HYPERLINK("http://x.example","clic")'
    text = io.BytesIO()
    adapter.encode([document], text)
    (item,) = list(CsvAdapter("dif-estatal").decode(io.BytesIO(text.getvalue())))
    assert item.ok, item.problems
    assert item.document is not None
    assert item.document["data"]["closure"]["reason_other"] == (
        '=HYPERLINK("http://x.example","clic")'
    )
