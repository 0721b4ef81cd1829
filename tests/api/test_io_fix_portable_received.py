"""``puente export --portable`` leaves out the records another agency referred or transferred
to the exporting one: they are not its to take to another hub or agency (on this hub they are
refused as received copies; elsewhere, without their child id, they would become its own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from consent.vocabulary import ALL_CATEGORIES
from exchange.cli import main
from tests.api import test_referrals_transfers
from tests.api.test_referrals_transfers import CLINIC, Hub, refer

hub = test_referrals_transfers.hub

PURPOSE = "health_care"  # what refer() refers the record for


def test_a_portable_export_leaves_out_what_another_agency_holds(
    hub: Hub, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_id = hub.push()
    assert refer(hub, record_id, categories=sorted(ALL_CATEGORIES)).status_code == 201
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    out = tmp_path / "clinica.ndjson"
    args = ["export", "--adapter", "ndjson", "--agency", CLINIC, "--purpose", PURPOSE,
            "--out", str(out), "--lang", "en"]  # fmt: skip
    plain = CliRunner().invoke(main, [*args, "--json"])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["records"] == 1  # the referred record, as ever

    out.unlink()
    portable = CliRunner().invoke(main, [*args, "--portable", "--json"])
    assert portable.exit_code == 0, portable.output
    summary = json.loads(portable.stdout)
    assert summary["records"] == 0 and summary["left_out_held_by_other_agencies"] == 1
    assert not out.exists()  # nothing to write
    assert "1 records held by another agency" in portable.stderr
    assert "were left out: --portable exports only the agency's own records" in portable.stderr
    assert "1 expedientes que tiene otra institución" in portable.stderr
