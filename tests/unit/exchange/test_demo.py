"""``puente demo`` seeds a hub a newcomer can use at once, and a rerun keeps what it made."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from exchange import create_app, db
from exchange.agencies import Agency
from exchange.cli import main
from exchange.demo_data import AGENCIES, demo_records
from exchange.records import Record
from schemas.envelope import validate_envelope


def test_every_demo_record_is_valid_and_fictitious() -> None:
    records = demo_records()
    assert len(records) >= 24
    assert {agency for agency, _ in records} <= {agency.id for agency in AGENCIES}
    for _agency, envelope in records:
        assert validate_envelope(envelope) == []
        names = envelope["data"]["child"].get("names", {})
        assert not names or {
            "Ejemplo",
            "Ficticio",
            "Muestra",
            "Prueba",
            "Demostración",
            "Inventado",
            "Simulado",
            "Modelo",
            "Supuesto",
            "Imaginario",
        } & {names.get("first_surname"), names.get("second_surname")}
    local_ids = [envelope["local_id"] for _agency, envelope in records]
    assert len(set(local_ids)) == len(local_ids)


def test_demo_seeds_once_and_prints_a_working_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "--no-serve"])
    assert first.exit_code == 0, first.output
    assert "/oauth/token" in first.output and "/v1/records" in first.output

    credentials = tmp_path / "instance" / "demo" / "credentials.json"
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
    secrets = json.loads(credentials.read_text())
    assert set(secrets) == {agency.id for agency in AGENCIES} | {"people"}
    assert secrets["mx.chp.dif"] in first.output

    again = runner.invoke(main, ["demo", "--no-serve"])
    assert again.exit_code == 0, again.output
    app = create_app()
    with db.database(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Agency)) == len(AGENCIES)
        assert session.scalar(select(func.count()).select_from(Record)) == len(demo_records())
