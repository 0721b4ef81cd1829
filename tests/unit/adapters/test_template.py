"""``puente adapters template csv`` and ``puente adapters list``: a blank spreadsheet and its
mapping derived from the schema, usable as they come."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from adapters.csv_adapter import CsvAdapter
from adapters.template import csv_template
from exchange.cli import main
from schemas.registry import default_registry


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_every_field_outside_nested_lists_has_a_column() -> None:
    template = csv_template("case-record/1", repeat=2)
    header = template.header
    assert header[0] == "local_id"
    assert len(header) == len(set(header))
    for column in ("case.status", "child.names.given_names", "child.date_of_birth",
                   "child.nationality", "child.current_location.address.state",
                   "placements_1_type", "placements_2_start_date",
                   "placements_1_location.state", "legal_representation_1_scope"):  # fmt: skip
        assert column in header
    assert "placements_3_type" not in header
    fields = default_registry().fields("case-record", "1")
    plain = [p for p, info in fields.items() if info.leaf and p and "*" not in p]
    code_lists = [
        p for p, info in fields.items() if info.leaf and p.count("*") == 1 and p.endswith("/*")
    ]
    assert "/child/nationality/*" in code_lists
    ungrouped = [c for c in header if "_1_" not in c and "_2_" not in c]
    assert len(ungrouped) == 1 + len(plain) + len(code_lists)


def test_the_mapping_reads_a_filled_in_template() -> None:
    template = csv_template("case-record/1", repeat=2)
    adapter = CsvAdapter(json.loads(json.dumps(_yaml(template.mapping_yaml))))
    row = dict.fromkeys(template.header, "")
    row.update(
        {
            "local_id": "EXP-1",
            "case.status": "Abierto",
            "child.names.given_names": "Ana",
            "child.date_of_birth": "01/02/2012",
            "child.nationality": "GT|HN",
            "child.sex": "Mujer",
            "placements_1_type": "Familia de acogida",
            "placements_1_start_date": "03/04/2024",
            "placements_1_alternative_to_detention": "Sí",
        }
    )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=template.header)
    writer.writeheader()
    writer.writerow(row)
    (item,) = adapter.decode(io.BytesIO(text.getvalue().encode("utf-8-sig")))
    assert item.ok, item.problems
    assert item.document is not None
    data = item.document["data"]
    assert data["case"] == {"status": "open"}
    assert data["child"] == {
        "names": {"given_names": "Ana"},
        "sex": "female",
        "date_of_birth": "2012-02-01",
        "nationality": ["GT", "HN"],
    }
    assert data["placements"] == [
        {"type": "foster_family", "alternative_to_detention": True, "start_date": "2024-04-03"}
    ]


def _yaml(text: str) -> object:
    import yaml

    return yaml.safe_load(text)


def test_cli_writes_the_header_and_the_mapping(tmp_path: Path) -> None:
    result = run("adapters", "template", "csv", "--out", str(tmp_path / "nuevo"), "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    sheet, mapping = Path(written["csv"]), Path(written["mapping"])
    assert sheet.name == "case-record-1.csv" and mapping.name == "case-record-1.yaml"
    raw = sheet.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\n") == 1
    assert next(csv.reader(io.StringIO(raw.decode("utf-8-sig")))) == csv_template().header
    assert written["columns"] == len(csv_template().header)
    # The mapping file loads as puente import would load it.
    (item,) = CsvAdapter(mapping).decode(io.BytesIO(raw + b"X-1,Abierto\n"))
    assert item.local_id == "X-1" and not item.ok  # no child yet: rejected, not crashed


def test_cli_keeps_existing_files_unless_forced(tmp_path: Path) -> None:
    assert run("adapters", "template", "csv", "--out", str(tmp_path)).exit_code == 0
    again = run("adapters", "template", "csv", "--out", str(tmp_path), "--lang", "es")
    assert again.exit_code == 2 and "use --force" in again.output
    forced = run("adapters", "template", "csv", "--out", str(tmp_path), "--force", "--repeat", "1")
    assert forced.exit_code == 0
    assert "placements_2_type" not in (tmp_path / "case-record-1.csv").read_text("utf-8-sig")


def test_cli_unknown_schema(tmp_path: Path) -> None:
    result = run("adapters", "template", "csv", "--schema", "case-record/7", "--out", str(tmp_path))
    assert result.exit_code == 2 and "case-record/7" in result.output


def test_cli_lists_the_adapters() -> None:
    listed = json.loads(run("adapters", "list", "--json", "--lang", "en").output)
    assert {"json", "ndjson", "csv", "primero", "fhir"} <= set(listed)
    text = run("adapters", "list", "--lang", "es").output
    assert any(line.startswith("csv ") and "Hoja de cálculo" in line for line in text.splitlines())
