"""Every ``puente agency`` verb that changes an agency takes ``--json``: scripts read one JSON
object on stdout (the agency and its new state), as the verbs that create something print it.
Warnings stay on stderr, so the JSON is parseable even when one is given."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from joserfc.jwk import OKPKey
from sqlalchemy import select

from exchange import db
from exchange.agencies import Agency, AgencyKey
from exchange.agency_keys import public_jwk
from exchange.cli import main

AGENCY = "mx.chp.dif"


@pytest.fixture
def puente(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``puente …`` against the test hub, as an administrator runs it."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), prog_name="puente")

    return run


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "agency.jwk"
    path.write_text(json.dumps(public_jwk(OKPKey.generate_key("Ed25519"))), encoding="utf-8")
    return path


@pytest.fixture
def registered(puente: Any, key_file: Path) -> str:
    """The agency, with a key and a secret; its key id."""
    added = puente(
        "agency", "add", AGENCY, "--name", "DIF Chiapas", "--level", "state",
        "--kind", "state_dif", "--jurisdiction", "07", "--scope", "records:read",
        "--public-key", str(key_file), "--secret", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return str(json.loads(added.stdout)["key_id"])


def answer(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)  # one object, nothing else on stdout
    return parsed


def stored(app: Flask) -> Agency:
    with db.database(app).sessions() as session:
        agency = session.scalars(select(Agency).where(Agency.id == AGENCY)).one()
        session.expunge(agency)
        return agency


def test_set_webhook_json_names_the_address_and_its_removal(
    app: Flask, puente: Any, registered: str
) -> None:
    url = "https://dif.chiapas.example/puente"
    assert answer(puente("agency", "set-webhook", AGENCY, url, "--json")) == {
        "agency_id": AGENCY,
        "webhook_url": url,
        "notifications_held": 0,
        "notifications_queued": 0,
    }
    assert stored(app).webhook_url == url
    assert answer(puente("agency", "set-webhook", AGENCY, "-", "--json")) == {
        "agency_id": AGENCY,
        "webhook_url": None,
        "notifications_held": 0,
        "notifications_queued": 0,
    }
    assert stored(app).webhook_url is None


def test_set_webhook_json_keeps_its_warning_on_stderr(puente: Any, registered: str) -> None:
    result = puente(
        "agency", "set-webhook", AGENCY, "http://127.0.0.1:8799/h", "--json", "--lang", "en"
    )
    assert answer(result)["webhook_url"] == "http://127.0.0.1:8799/h"
    assert "this machine" in result.stderr


def test_retire_key_json_says_the_key_no_longer_verifies(
    app: Flask, puente: Any, registered: str
) -> None:
    retired = answer(puente("agency", "retire-key", AGENCY, "--json", "--", registered))
    assert retired["agency_id"] == AGENCY and retired["key_id"] == registered
    assert retired["valid"] is False
    when = datetime.fromisoformat(retired["retired_at"])
    with db.database(app).sessions() as session:
        key = session.get_one(AgencyKey, registered)
        assert key.active is False and key.retired_at is not None
        assert when.timestamp() == pytest.approx(key.retired_at.timestamp(), abs=1)


def test_disable_and_enable_json_give_the_new_state(
    app: Flask, puente: Any, registered: str
) -> None:
    assert answer(puente("agency", "disable", AGENCY, "--json")) == {
        "agency_id": AGENCY,
        "active": False,
        # What the disable ended of the agency's and its people's access (none here).
        "access_requests_denied": 0,
        "grants_revoked": 0,
    }
    assert stored(app).active is False
    assert answer(puente("agency", "enable", AGENCY, "--json")) == {
        "agency_id": AGENCY,
        "active": True,
        "dead_notifications": 0,
    }
    assert stored(app).active is True


def test_remove_secret_json_says_the_agency_has_none(
    app: Flask, puente: Any, registered: str
) -> None:
    assert answer(puente("agency", "remove-secret", AGENCY, "--json")) == {
        "agency_id": AGENCY,
        "has_secret": False,
    }
    assert stored(app).client_secret_hash is None


def test_a_refusal_with_json_is_still_a_message_and_exit_code_1(
    puente: Any, registered: str
) -> None:
    assert answer(puente("agency", "disable", AGENCY, "--json"))["active"] is False
    again = puente("agency", "disable", AGENCY, "--json", "--lang", "en")
    assert again.exit_code == 1
    assert "already disabled" in again.output
