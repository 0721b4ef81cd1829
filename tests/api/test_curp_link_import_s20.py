"""``puente import`` tells the office what the hub warned of for a stored row: a row whose
CURP names a child it clearly is not (linked to a child of its own, for a person to decide)
and a CURP that codes another date of birth or sex than its row. Both ways in (straight into
the database, through the API) and both pushes (bulk, one at a time under idempotency keys)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api import test_import
from tests.api.records_support import envelope
from tests.api.test_import import OWNER, Hub, api, run, write_ndjson

hub = test_import.hub
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

CURP = "EEFK161117MNEJCVA5"


def row(local_id: str, given: str, surname: str, sex: str = "female") -> dict[str, Any]:
    child = {
        "names": {"given_names": given, "first_surname": surname},
        "sex": sex,
        "date_of_birth": "2016-11-17",
        "nationality": ["MX"],
        "identifiers": [{"type": "curp", "value": CURP}],
    }
    return envelope(local_id, {"case": {"status": "open"}, "child": child})


@pytest.mark.parametrize("batch", ["500", "1"])
@pytest.mark.parametrize("mode", ["direct", "api"])
def test_the_import_summary_lists_the_hubs_linking_warnings(
    hub: Hub, tmp_path: Path, mode: str, batch: str
) -> None:
    file = write_ndjson(
        tmp_path / "expedientes.ndjson",
        [
            row("DIF-07-2024-0001825", "Keila", "Cruz"),
            row("DIF-07-2024-0024105", "María José", "Ficticio", sex="male"),
        ],
    )
    extra = api(hub) if mode == "api" else []
    args = ("import", "--adapter", "ndjson", file, "--agency", OWNER, "--batch", batch)
    summary = json.loads(run(*args, "--json", *extra).output)
    assert summary["stored"] == 2 and summary["warned"] == 1
    listed = {item["message_en"].split(" ")[0]: item for item in summary["warning_items"]}
    linked, contradicted = listed["this"], listed["the"]
    assert linked["position"] == "2" and linked["local_id"] == "DIF-07-2024-0024105"
    assert linked["pointer"] == "/data/child/identifiers/0/value"
    assert "claramente" in linked["message_es"] and "clearly differ" in linked["message_en"]
    assert "la CURP indica sexo mujer" in contradicted["message_es"]
    assert summary["warnings"] == {"/data/child/identifiers/0/value": 2}
    # The terminal says so too, in both languages.
    again = write_ndjson(
        tmp_path / "otros.ndjson", [row("DIF-07-2024-0030003", "Luis", "Prueba", sex="male")]
    )
    printed = run(*args[:3], again, *args[4:], *extra).output
    assert "Importados con avisos" in printed and "imported with warnings" in printed
    assert "DIF-07-2024-0030003" in printed and "clearly differ" in printed
