"""``puente export --portable``: a file another hub, or another agency of the same hub, can
import (without the child ids and hub referral ids only this hub knows); a spreadsheet export
that says what its mapping cannot carry; and the export's progress line. On both backends,
through the real command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from exchange import db
from exchange.agencies import register_agency
from exchange.cli import exports
from exchange.records import Record
from tests.api import test_import
from tests.api.test_import import OTHER, OWNER, SCOPES, Hub, envelope, run, write_ndjson
from tests.conftest import backend_database, make_hub

hub = test_import.hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

SUFFIX = {"ndjson": "ndjson", "json": "json", "fhir": "json"}


def referred_case(local_id: str) -> dict[str, Any]:
    """A case whose referral names this hub's referral by its id."""
    document = envelope(local_id, "C-77")
    document["data"]["referrals"] = [
        {
            "service_type": "legal_aid",
            "referred_to": {"agency_id": "mx.fed.comar"},
            "referred_on": "2024-03-20",
            "hub_referral_id": "ref_0123456789abcdef",
        }
    ]
    return document


def child_of(hub: Hub, agency_id: str, local_id: str) -> str | None:
    with db.database(hub.app).sessions() as session:
        return session.scalar(
            select(Record.child_id).where(
                Record.source_agency == agency_id, Record.local_id == local_id
            )
        )


def export(adapter: str, out: Path, *extra: str) -> Any:
    return run("export", "--adapter", adapter, "--agency", OWNER, "--purpose",
               "case_management", "--out", out, *extra)  # fmt: skip


@pytest.fixture
def second_hub(tmp_path: Path, database_url: str) -> Iterator[Hub]:
    """Another hub, on the same backend, where OWNER is registered too."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    folder = tmp_path / "second"
    folder.mkdir()
    with backend_database(backend, folder) as url:
        app = make_hub(folder, url)
        with app.app_context(), db.database(app).sessions.begin() as session:
            register_agency(session, OWNER, OWNER, "state", "07", SCOPES, with_secret=True)
        yield Hub(app, {}, folder / "none.key")
        app.extensions["puente.db"].engine.dispose()


@pytest.mark.parametrize("adapter", ["ndjson", "json", "fhir"])
def test_a_portable_export_is_imported_by_another_agency_and_on_another_hub(
    hub: Hub,
    second_hub: Hub,
    tmp_path: Path,
    adapter: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = write_ndjson(tmp_path / "uno.ndjson", [referred_case("P-1")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    child = child_of(hub, OWNER, "P-1")
    assert child is not None

    # The plain export names this hub's child: another agency cannot import it.
    plain = tmp_path / f"plano.{SUFFIX[adapter]}"
    assert export(adapter, plain).exit_code == 0
    assert child in plain.read_text(encoding="utf-8")
    refused = run("import", "--adapter", adapter, plain, "--agency", OTHER, "--json")
    assert refused.exit_code == 1, refused.output
    assert json.loads(refused.stdout)["rejected_by_hub"] == 1
    assert "puente export --portable" in refused.stderr + refused.stdout  # what to do instead

    # The portable export leaves out what only this hub knows ...
    out = tmp_path / f"portable.{SUFFIX[adapter]}"
    exported = export(adapter, out, "--portable", "--json")
    assert exported.exit_code == 0, exported.output
    summary = json.loads(exported.stdout)
    assert summary["portable"] is True and summary["records"] == 1
    text = out.read_text(encoding="utf-8")
    assert child not in text and "child_id" not in text and "urn:puente:child" not in text
    assert "ref_0123456789abcdef" not in text and "EEFK080702HNEJCVA9" in text

    # ... so another agency of this hub imports it, linked as a first push is (by its CURP
    # only to a child it may know of: this one it may not, so a child of its own) ...
    other = run("import", "--adapter", adapter, out, "--agency", OTHER, "--json")
    assert other.exit_code == 0, other.output
    assert json.loads(other.stdout)["stored"] == 1
    assert child_of(hub, OTHER, "P-1") is not None

    # ... and so does the agency on another hub.
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", second_hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", _url_of(second_hub))
    elsewhere = run("import", "--adapter", adapter, out, "--agency", OWNER, "--json")
    assert elsewhere.exit_code == 0, elsewhere.output
    assert json.loads(elsewhere.stdout)["stored"] == 1
    assert child_of(second_hub, OWNER, "P-1") not in (None, child)  # that hub's own child


def _url_of(hub: Hub) -> str:
    engine = hub.app.extensions["puente.db"].engine
    return str(engine.url.render_as_string(hide_password=False))


def test_a_csv_export_says_what_its_mapping_cannot_carry(hub: Hub, tmp_path: Path) -> None:
    # One record with relatives, protection concerns, a case owner …; one from a sheet,
    # which holds only what the mapping covers.
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("W-1", "C-1")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    sheet = tmp_path / "hoja.csv"
    sheet.write_text(
        "folio,nombre(s),fecha_nacimiento,nacionalidad\r\nS-1,Ana,01/01/2012,Hondureña\r\n",
        encoding="utf-8",
    )
    csv = ["--adapter", "csv", "--mapping", "dif-estatal"]
    assert run("import", *csv, sheet, "--agency", OWNER).exit_code == 0

    out = tmp_path / "casos.csv"
    told = run("export", *csv, "--agency", OWNER, "--purpose", "case_management",
               "--out", out, "--lang", "en")  # fmt: skip
    assert told.exit_code == 0, told.output
    english = next(line for line in told.stderr.splitlines() if line.startswith("warning:"))
    assert "the mapping dif-estatal has no columns for parts of 1 of the 2 records" in english
    for part in ("/related_persons (1)", "/case/owner (1)", "/protection_concerns/concerns (1)",
                 "/placements/*/operator (1)"):  # fmt: skip
        assert part in told.stderr, told.stderr
    assert "imported back, this file would replace those records" in english
    spanish = told.stderr.index("aviso: la correspondencia dif-estatal no tiene columnas")
    assert told.stderr.index("warning:") < spanish
    assert "se reemplazan por versiones sin ellas" in told.stderr

    as_json = run("export", *csv, "--agency", OWNER, "--purpose", "case_management",
                  "--out", out, "--json")  # fmt: skip
    without = json.loads(as_json.stdout)["without_columns"]
    assert without["records"] == 1 and without["parts"]["/related_persons"] == 1

    # Every format that carries whole records says nothing of the kind.
    whole = run("export", "--adapter", "ndjson", "--agency", OWNER, "--purpose",
                "case_management", "--out", tmp_path / "casos.ndjson")  # fmt: skip
    assert whole.exit_code == 0 and "warning" not in whole.stderr


def test_the_export_shows_its_progress_on_a_terminal_only(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write_ndjson(tmp_path / "tres.ndjson", [envelope(f"G-{n}", f"C-{n}") for n in range(3)])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    out = tmp_path / "casos.ndjson"
    monkeypatch.setattr(exports._Progress, "INTERVAL", 0.0)
    # Not a terminal (the test's stderr): nothing.
    quiet = export("ndjson", out, "--lang", "en")
    assert quiet.exit_code == 0 and "exporting:" not in quiet.stderr
    # A terminal: the records read and their rate, in the language asked, on stderr.
    monkeypatch.setattr(exports, "_is_a_terminal", lambda stream: True)
    shown = export("ndjson", out, "--lang", "en")
    assert shown.exit_code == 0, shown.output
    assert "\rexporting: 3 records read, " in shown.stderr and "/s" in shown.stderr
    assert "exporting:" not in shown.stdout
    spanish = export("ndjson", out, "--lang", "es")
    assert "exportando: 3 expedientes leídos" in spanish.stderr
    # With --json, or --no-progress, nothing; --progress shows it anywhere.
    assert "exporting:" not in export("ndjson", out, "--json").stderr
    assert "exporting:" not in export("ndjson", out, "--no-progress", "--lang", "en").stderr
    monkeypatch.setattr(exports, "_is_a_terminal", lambda stream: False)
    assert "exporting:" in export("ndjson", out, "--progress", "--json", "--lang", "en").stderr
