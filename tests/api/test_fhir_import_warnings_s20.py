"""``puente import --adapter fhir``: what a Bundle carries that the adapter does not read
reaches the import summary's warnings, and the hub's own FHIR export imported again warns of
nothing (adapters/fhir_unread.py).

The outside check's Bundle: one Patient with ``deceasedBoolean``, a ``contact`` naming an
uncle with his phone, a ``generalPractitioner`` and an alert in an extension of another
system — read 1, stored 1, ``warned 0``. Now each is a warning item of the summary, and a
resource with a ``modifierExtension`` the adapter does not read is rejected, not stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from adapters import fhir_terms as t
from exchange import db
from exchange.agencies import register_agency
from exchange.cli import main
from tests.conftest import make_hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

AGENCY = "mx.chp.dif"
ALERT_URL = "https://sistema-estatal.example/fhir/alerta"


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    with app.app_context(), db.database(app).sessions.begin() as session:
        register_agency(
            session, AGENCY, AGENCY, "state", "07", ["records:write", "records:read"],
            with_secret=True,
        )  # fmt: skip
    yield app
    app.extensions["puente.db"].engine.dispose()


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def imported(path: Path) -> tuple[int, dict[str, Any]]:
    result = run("import", "--adapter", "fhir", path, "--agency", AGENCY, "--json")
    return result.exit_code, json.loads(result.output)


def reported_patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": t.LOCAL_ID, "value": "EXP-77"}],
        "name": [{"use": "official", "given": ["Ana"], "family": "Ejemplo"}],
        "gender": "female",
        "birthDate": "2015-04-02",
        "deceasedBoolean": True,
        "contact": [
            {
                "relationship": [{"text": "tío"}],
                "name": {"family": "Ejemplo", "given": ["Tomás"]},
                "telecom": [{"system": "phone", "value": "+52 961 000 0000"}],
            }
        ],
        "generalPractitioner": [{"display": "Dra. Ejemplo"}],
        "extension": [
            {
                "url": t.NATIONALITY,
                "extension": [{"url": "code", "valueCodeableConcept": t.concept(t.ISO_3166, "GT")}],
            },
            {"url": ALERT_URL, "valueString": "No entregar a su tío: amenaza"},
        ],
        **extra,
    }


def bundle_file(path: Path, *resources: dict[str, Any]) -> Path:
    entries = [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}", "resource": resource}
        for n, resource in enumerate(resources)
    ]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    return path


def test_elements_left_out_are_warning_items_of_the_summary(hub: Flask, tmp_path: Path) -> None:
    code, summary = imported(bundle_file(tmp_path / "b2.json", reported_patient()))
    assert code == 0, summary
    assert (summary["read"], summary["stored"], summary["warned"]) == (1, 1, 1), summary
    listed = {item["pointer"]: item for item in summary["warning_items"]}
    assert set(listed) == {
        "resource:Patient.deceasedBoolean",
        "resource:Patient.contact",
        "resource:Patient.generalPractitioner",
        f"resource:Patient.extension[url={ALERT_URL}]",
    }
    for item in listed.values():
        assert item["position"] == "entry[0]" and item["local_id"] == "EXP-77"
        assert item["message_es"].startswith("entry[0]: ") and "se dejó fuera" in item["message_es"]
        assert item["message_en"].startswith("entry[0]: ") and "left out" in item["message_en"]


def test_the_hubs_own_fhir_export_imported_again_warns_of_nothing(
    hub: Flask, tmp_path: Path
) -> None:
    code, first = imported(bundle_file(tmp_path / "b2.json", reported_patient()))
    assert code == 0 and first["stored"] == 1, first
    export = tmp_path / "export.json"
    result = run(
        "export", "--adapter", "fhir", "--agency", AGENCY,
        "--purpose", "case_management", "--out", export,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    code, again = imported(export)
    assert code == 0, again
    assert again["read"] == 1 and again["rejected_by_adapter"] == 0, again
    assert (again["warned"], again["warning_items"]) == (0, []), again


def test_an_unknown_modifier_extension_is_rejected_not_stored(hub: Flask, tmp_path: Path) -> None:
    modifier = {"url": "https://otro.example/no-vigente", "valueBoolean": True}
    path = bundle_file(tmp_path / "mod.json", reported_patient(modifierExtension=[modifier]))
    code, summary = imported(path)
    assert code != 0, summary
    assert (summary["stored"], summary["rejected_by_adapter"]) == (0, 1), summary
    [rejected] = summary["rejected_items"]
    pointers = [error["pointer"] for error in rejected["errors"]]
    assert pointers == [f"resource:Patient.modifierExtension[url={modifier['url']}]"], rejected
