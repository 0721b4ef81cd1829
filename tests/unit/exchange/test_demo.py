"""``puente demo`` seeds a hub a newcomer can use at once, and a rerun keeps what it made."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from exchange import create_app, db
from exchange.agencies import Agency
from exchange.cli import main
from exchange.cli.hub import puente_command
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


def printed_commands(output: str) -> list[str]:
    """The shell commands among what ``puente demo`` prints (tests/e2e runs them)."""
    starts = re.compile(r"(curl |[A-Z]+=\$\(curl |\S*puente validate )")
    return [line.strip() for line in output.splitlines() if starts.match(line.strip())]


def assert_commands_are_complete(output: str) -> None:
    """No placeholder to fill in: every variable a command uses, an earlier one sets."""
    commands = printed_commands(output)
    assert len(commands) >= 14
    defined: set[str] = set()
    for command in commands:
        assert not re.search(r"RECORD_ID|\bFILE\b|Bearer PAT\b", command), command
        used = set(re.findall(r"\$([A-Z]+)\b", command.split("=$(", 1)[-1]))
        assert used <= defined, command
        if match := re.match(r"([A-Z]+)=\$\(", command):
            defined.add(match.group(1))
    assert any(c.startswith(f"{puente_command()} validate /") for c in commands)


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
    assert_commands_are_complete(first.output)
    pfpnna = secrets["people"]["pfpnna-consentimientos"]
    assert f"pfpnna-consentimientos (consent_officer, mx.fed.pfpnna): {pfpnna['token']}" in (
        first.output
    )
    assert f"Bearer {pfpnna['token']}" in first.output  # the override review

    again = runner.invoke(main, ["demo", "--no-serve"])
    assert again.exit_code == 0, again.output
    app = create_app()
    with db.database(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Agency)) == len(AGENCIES)
        assert session.scalar(select(func.count()).select_from(Record)) == len(demo_records())


def test_demo_json_prints_what_it_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    created = CliRunner().invoke(main, ["demo", "--no-serve", "--json"])
    assert created.exit_code == 0, created.output
    answer = json.loads(created.output)  # one JSON object, nothing else
    secrets = json.loads((tmp_path / "instance" / "demo" / "credentials.json").read_text())
    assert set(answer["agencies"]) == {agency.id for agency in AGENCIES}
    assert answer["agencies"]["mx.chp.dif"] == {
        "client_id": "mx.chp.dif",
        "client_secret": secrets["mx.chp.dif"],
    }
    assert answer["people"] == secrets["people"]
    assert answer["records"] == len(demo_records())
    assert answer["url"] == "http://127.0.0.1:8000"
    assert answer["consent"]["child_id"].startswith("nna_")
    assert Path(answer["sample_push"]).is_file()
