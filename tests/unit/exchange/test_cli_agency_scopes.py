"""An administrator changes what an existing agency may do (``puente agency set-scopes``): the
way an agency registered before lookups needed it gets ``federation``. And ``agency add``
refuses an id that a pinned peer hub speaks for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from audit import generate_signer_key
from exchange import create_app, db
from exchange.audit_log import AuditEntry
from exchange.auth import AccessToken, store_token

BASE = ["--name", "DIF Chiapas", "--level", "state", "--kind", "state_dif", "--jurisdiction", "07"]


def run(*args: str) -> Result:
    from exchange.cli import main

    return CliRunner().invoke(main, list(args))


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setenv("PUENTE_HUB_ID", "mx.chp.puente")
    assert run("init").exit_code == 0
    added = run("agency", "add", "mx.chp.dif", *BASE, "--scope", "records:read", "--secret")
    assert added.exit_code == 0, added.output
    return tmp_path


def _scopes_and_reasons() -> tuple[list[str], list[str], list[bool]]:
    app = create_app({"TESTING": True})
    try:
        with app.app_context(), db.database(app).sessions() as session:
            scopes = run_json("agency", "list")["agencies"][0]["scopes"]
            reasons = [
                json.loads(bytes(e.entry))["reason_code"]
                for e in session.scalars(select(AuditEntry).order_by(AuditEntry.recorded_at))
            ]
            revoked = [t.revoked for t in session.scalars(select(AccessToken))]
            return scopes, reasons, revoked
    finally:
        app.extensions["puente.db"].engine.dispose()


def _system_token() -> None:
    app = create_app({"TESTING": True})
    try:
        with app.app_context(), db.database(app).sessions() as session:
            store_token(
                session, client_id="mx.chp.dif", scopes=["records:read"], agency_id="mx.chp.dif"
            )
            session.commit()
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_an_agency_gets_the_federation_scope(hub: Path) -> None:
    _system_token()
    answer = run_json(
        "agency", "set-scopes", "mx.chp.dif", "--scope", "records:read", "--scope", "federation"
    )
    assert answer == {
        "agency_id": "mx.chp.dif",
        "scopes": ["records:read", "federation"],
        "changed": True,
    }
    scopes, reasons, revoked = _scopes_and_reasons()
    assert scopes == ["records:read", "federation"]
    assert reasons[-1] == "scopes_changed.mx.chp.dif"
    assert revoked == [False]  # nothing taken away: its systems' tokens stay

    again = run("agency", "set-scopes", "mx.chp.dif", "--scope", "federation", "--scope",
                "records:read", "--lang", "en")  # fmt: skip
    assert again.exit_code == 0 and "already had" in again.output


def test_a_scope_taken_away_ends_the_tokens_of_its_systems(hub: Path) -> None:
    _system_token()
    run_json("agency", "set-scopes", "mx.chp.dif", "--scope", "records:write")
    scopes, _, revoked = _scopes_and_reasons()
    assert scopes == ["records:write"] and revoked == [True]


def test_scopes_the_registry_refuses(hub: Path) -> None:
    oversight_only = run("agency", "set-scopes", "mx.chp.dif", "--scope", "audit:read")
    assert oversight_only.exit_code == 1 and "oversight" in oversight_only.output
    unknown = run("agency", "set-scopes", "mx.nadie.dif", "--scope", "records:read")
    assert unknown.exit_code == 1 and "mx.nadie.dif" in unknown.output
    assert run("agency", "set-scopes", "mx.chp.dif", "--scope", "nope").exit_code == 2
    assert _scopes_and_reasons()[0] == ["records:read"]


def test_an_agency_a_pinned_peer_speaks_for_is_not_registered_here(hub: Path) -> None:
    origin = "mx.fed.puente/audit"
    pinned = run("peer", "add", "mx.fed.puente", "--origin", origin, "--log-vkey",
                 generate_signer_key(origin)[1])  # fmt: skip
    assert pinned.exit_code == 0, pinned.output
    result = run("agency", "add", "mx.fed.comar", *BASE, "--scope", "records:read", "--secret",
                 "--lang", "en")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "lies under the agency prefixes of peer hub mx.fed.puente" in result.output
    assert "puente peer set-agency-prefixes mx.fed.puente" in result.output
