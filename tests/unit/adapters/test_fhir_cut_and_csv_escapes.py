"""Two ways an import could change what the hub holds without saying so.

A FHIR Bundle that breaks off: a Bundle puts no order on its entries, so any case read before
the break may have entries after it. Every case is held back (a problem at its Patient's
position), never stored without the placements or relatives the hub already has of it.

A CSV export imported again: every value comes back as it was stored, a value that starts
with an apostrophe included (``'=HYPERLINK(…)`` must not come back as a formula).
"""

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

from adapters.base import FileProblem, Item
from adapters.csv_adapter import CsvAdapter
from adapters.fhir import FhirAdapter
from exchange import db
from exchange.agencies import register_agency
from exchange.cli import main
from tests.conftest import make_hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
R5 = FIXTURES / "bundle_r5_collection.json"
EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "case-record" / "1"
TYPICAL = json.loads((EXAMPLES / "valid" / "typical.json").read_text(encoding="utf-8"))
PROCURADURIA = "mx.chp.procuraduria"
CHILD = {"system": "urn:puente:child", "value": "ch-7Kq2mX9pR4tV"}


def decoded(raw: bytes) -> list[Item]:
    return list(FhirAdapter().decode(io.BytesIO(raw)))


def by_position(items: list[Item]) -> dict[str, Item]:
    return {item.position: item for item in items if not isinstance(item, FileProblem)}


def cut_inside_entry_5() -> bytes:
    raw = R5.read_bytes()
    return raw[: raw.index(b'"resourceType": "Encounter"')]


def bundle(*resources: dict[str, Any]) -> bytes:
    entries = [{"fullUrl": f"urn:uuid:{n}", "resource": r} for n, r in enumerate(resources)]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


# --- FHIR: a Bundle that breaks off ---------------------------------------------------------


def test_every_case_read_before_the_break_is_held_back_with_the_reason() -> None:
    items = decoded(cut_inside_entry_5())
    [cut] = [item for item in items if isinstance(item, FileProblem)]
    assert cut.position == "entry[5]"
    cases = by_position(items)
    # Both Patients (entry[0], entry[1]) were read; the Encounters of both come after the
    # break (entry[5], entry[6]): neither case is stored.
    for position in ("entry[0]", "entry[1]"):
        case = cases[position]
        assert not case.ok and case.document is None
        first = case.problems[0]
        assert first.pointer == "resource:Bundle"
        assert "the Bundle breaks at entry[5]" in first.en and "held back" in first.en
        assert "el Bundle se corta en entry[5]" in first.es and "se retiene" in first.es
        # The rejects Bundle gets the case's entries (Patient and what was read of it).
        assert isinstance(case.source, list) and case.source[0]["resource"]["resourceType"] == (
            "Patient"
        )
    assert {item.local_id for item in cases.values()} == {
        "DIF-CHP-TAP-2024-0317",
        "DIF-TAB-2024-0088",
    }


def test_the_rejects_bundle_of_a_cut_bundle_holds_the_break_and_the_cases() -> None:
    items = decoded(cut_inside_entry_5())
    out = io.BytesIO()
    FhirAdapter().write_rejects([item for item in items if not item.ok], out)
    written = json.loads(out.getvalue())
    kinds = [entry["resource"]["resourceType"] for entry in written["entry"]]
    assert kinds.count("Patient") == 2
    diagnostics = [
        issue["diagnostics"]
        for entry in written["entry"]
        if entry["resource"]["resourceType"] == "OperationOutcome"
        for issue in entry["resource"]["issue"]
    ]
    assert diagnostics[0].startswith("entry[5] ")  # the break itself, first
    assert sum("the Bundle breaks at entry[5] and this case" in d for d in diagnostics) == 2


def test_a_whole_bundle_is_not_held_back() -> None:
    items = decoded(R5.read_bytes())
    assert not [item for item in items if isinstance(item, FileProblem)]
    assert all(p.pointer != "resource:Bundle" for item in items for p in item.problems)
    assert by_position(items)["entry[1]"].ok


def test_a_consent_that_refers_to_an_entry_not_read_is_held_back() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [CHILD],
        "gender": "female",
        "birthDate": "2012-01-02",
    }
    grantor = [{"reference": "RelatedPerson/madre"}]
    consent = {
        "resourceType": "Consent",
        "id": "c1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "grantor": grantor,
        "decision": "permit",
    }
    related = {
        "resourceType": "RelatedPerson",
        "id": "madre",
        "patient": {"reference": "Patient/p1"},
    }
    raw = bundle(patient, consent, related)
    cut = raw[: raw.index(b'"id": "madre"')]  # the grantor, entry[2], is not read
    items = by_position(decoded(cut))
    first = items["entry[1]"].problems[0]
    assert not items["entry[1]"].ok
    assert first.pointer == "resource:Bundle"
    assert "the Consent refers to RelatedPerson/madre, which was not read" in first.en
    assert "el Consent se refiere a RelatedPerson/madre, que no se leyó" in first.es
    # Whole, the same Consent is not held back for the break.
    whole = by_position(decoded(raw))
    assert all(p.pointer != "resource:Bundle" for p in whole["entry[1]"].problems)


def test_a_consent_complete_in_itself_is_still_read_after_a_break() -> None:
    # Named by hub child id and granted by a contained PractitionerRole, as the hub writes it
    # (and naming an Organization, which no Bundle entry stands for): nothing it needs can
    # come after the break.
    consent = json.loads(R5.read_bytes())["entry"][7]["resource"]
    grantors = [*consent["grantor"], {"reference": "Organization/dif-chiapas"}]
    consent = {**consent, "subject": {"identifier": CHILD}, "grantor": grantors}
    raw = bundle(consent, {"resourceType": "Patient", "id": "later"})
    cut = raw[: raw.index(b'"id": "later"')]
    items = by_position(decoded(cut))
    assert items["entry[0]"].ok, items["entry[0]"].problems


# --- FHIR: the hub keeps what it had ----------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    with app.app_context(), db.database(app).sessions.begin() as session:
        for agency in (PROCURADURIA, "mx.chp.dif"):
            register_agency(
                session, agency, agency, "state", "07", ["records:write", "records:read"],
                with_secret=True,
            )  # fmt: skip
    yield app
    app.extensions["puente.db"].engine.dispose()


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def exported(out: Path, agency: str, adapter: str = "ndjson", *options: str) -> str:
    result = run(
        "export", "--adapter", adapter, *options, "--agency", agency,
        "--purpose", "case_management", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8-sig")


def test_a_cut_bundle_imported_again_leaves_the_stored_cases_as_they_were(
    hub: Flask, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.json"
    whole.write_bytes(R5.read_bytes())
    first = json.loads(run("import", "--adapter", "fhir", whole, "--agency", PROCURADURIA,
                           "--json").output)  # fmt: skip
    # DIF-TAB-2024-0088 is stored (the other case names a child this hub does not have).
    assert first["stored"] == 1, first
    before = exported(tmp_path / "before.ndjson", PROCURADURIA)
    (stored,) = map(json.loads, before.splitlines())
    assert stored["local_id"] == "DIF-TAB-2024-0088"
    assert stored["data"]["placements"][0]["type"] == "dif_cas"

    cut = tmp_path / "cut.json"
    cut.write_bytes(cut_inside_entry_5())
    again = run("import", "--adapter", "fhir", cut, "--agency", PROCURADURIA, "--json")
    assert again.exit_code == 1, again.output
    summary = json.loads(again.output)
    assert (summary["stored"], summary["rejected_by_adapter"]) == (0, 2), summary
    assert [each["position"] for each in summary["file_problems"]] == ["entry[5]"], summary
    assert exported(tmp_path / "after.ndjson", PROCURADURIA) == before
    rejects = json.loads((tmp_path / "cut-rejects.json").read_text(encoding="utf-8"))
    assert [e["resource"]["resourceType"] for e in rejects["entry"]].count("Patient") == 2


# --- CSV: values that start with an apostrophe --------------------------------------------------

APOSTROPHES = [
    '\'=HYPERLINK("x")',
    "'Chepe'",
    "''doble",
    "'",
    "'+52 1",
    '=HYPERLINK("x")',
    "-Juan",
    "@mención",
    "sin escape",
]


def with_alias(alias: str, number: int) -> dict[str, Any]:
    data = copy.deepcopy(TYPICAL)
    data["case"]["case_number"] = f"DIF-{number}"
    data["child"]["alias"] = alias
    return {"schema": "case-record/1", "local_id": f"CHP-{number}", "data": data}


def exported_rows(documents: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    CsvAdapter("dif-estatal").encode(documents, out)
    return out.getvalue()


def test_a_value_that_starts_with_an_apostrophe_is_exported_after_another() -> None:
    raw = exported_rows([with_alias(alias, n) for n, alias in enumerate(APOSTROPHES)])
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [row["alias"] for row in rows] == [
        "''=HYPERLINK(\"x\")",
        "''Chepe'",
        "'''doble",
        "''",
        "''+52 1",
        '\'=HYPERLINK("x")',  # formula-like text keeps its escape
        "'-Juan",
        "'@mención",
        "sin escape",
    ]


def test_an_exported_sheet_imports_back_every_value_as_stored() -> None:
    raw = exported_rows([with_alias(alias, n) for n, alias in enumerate(APOSTROPHES)])
    items = list(CsvAdapter("dif-estatal").decode(io.BytesIO(raw)))
    assert all(item.ok for item in items), [item.problems for item in items]
    assert [item.document["data"]["child"]["alias"] for item in items if item.document] == (
        APOSTROPHES
    )


def test_a_rejects_file_imports_again_to_the_values_first_read() -> None:
    # A sheet with the values as an export writes them, and a row that is rejected (no sex):
    # its rejects file must read back to what the first import read, apostrophes included.
    raw = exported_rows([with_alias(alias, n) for n, alias in enumerate(APOSTROPHES)])
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    sex = rows[0].index("sexo")
    for row in rows[1:]:
        row[sex] = "?"
    sheet = io.StringIO()
    csv.writer(sheet).writerows(rows)
    adapter = CsvAdapter("dif-estatal")
    first = list(adapter.decode(io.BytesIO(sheet.getvalue().encode("utf-8"))))
    assert not any(item.ok for item in first)
    out = io.BytesIO()
    adapter.write_rejects(first, out)
    rejected = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    # The cells as they came.
    alias = rows[0].index("alias")
    assert [reject["alias"] for reject in rejected] == [row[alias] for row in rows[1:]]
    fixed = io.StringIO()
    writer = csv.DictWriter(fixed, fieldnames=list(rejected[0]))
    writer.writeheader()
    for reject in rejected:
        writer.writerow({**reject, "sexo": "H"})
    again = list(CsvAdapter("dif-estatal").decode(io.BytesIO(fixed.getvalue().encode("utf-8"))))
    assert [item.document["data"]["child"]["alias"] for item in again if item.document] == (
        APOSTROPHES
    )


def test_a_stored_alias_with_an_apostrophe_survives_an_export_and_import(
    hub: Flask, tmp_path: Path
) -> None:
    sent = tmp_path / "enviados.ndjson"
    sent.write_text(
        "".join(json.dumps(with_alias(alias, n)) + "\n" for n, alias in enumerate(APOSTROPHES)),
        encoding="utf-8",
    )
    assert run("import", "--adapter", "ndjson", sent, "--agency", "mx.chp.dif").exit_code == 0
    exported(tmp_path / "casos.csv", "mx.chp.dif", "csv", "--mapping", "dif-estatal")
    again = run(
        "import", "--adapter", "csv", "--mapping", "dif-estatal", "casos.csv",
        "--agency", "mx.chp.dif", "--json",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    after = exported(tmp_path / "after.ndjson", "mx.chp.dif").splitlines()
    aliases = {
        document["local_id"]: document["data"]["child"]["alias"]
        for document in map(json.loads, after)
    }
    assert aliases == {f"CHP-{n}": alias for n, alias in enumerate(APOSTROPHES)}
