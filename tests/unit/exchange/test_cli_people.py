"""``puente person …`` as a hub administrator runs it, on each database backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from exchange import create_app, db
from exchange.audit_log import AuditEntry
from exchange.auth import AccessToken, token_hash
from exchange.cli import main


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert run("init").exit_code == 0
    added = run(
        "agency", "add", "mx.fed.cndh", "--name", "CNDH", "--level", "federal",
        "--kind", "oversight", "--jurisdiction", "00", "--scope", "audit:read", "--secret",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def refused(result: Result, *fragments: str) -> None:
    """Exit code 1 with a message, never a traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


AUDITOR = ["--name", "Julia Ejemplo", "--email", "Julia@Example.org", "--agency", "mx.fed.cndh"]


def call(path: str, token: str) -> int:
    """A request to the hub with a bearer token, as a person's script makes it."""
    app = create_app({"TESTING": True})
    try:
        headers = {"Authorization": f"Bearer {token}"}
        return app.test_client().get(path, headers=headers).status_code
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_add_list_token_revoke_disable(hub: Path) -> None:
    created = run_json("person", "add", *AUDITOR, "--role", "auditor", "--jurisdiction", "09")
    assert created["id"].startswith("per_")
    assert {k: created[k] for k in ("email", "agency_id", "roles", "jurisdiction", "active")} == {
        "email": "julia@example.org",
        "agency_id": "mx.fed.cndh",
        "roles": ["auditor"],
        "jurisdiction": "09",
        "active": True,
    }
    person_id = created["id"]

    issued = run_json("person", "token", person_id, "--scope", "audit:read", "--name", "informes")
    assert set(issued) == {"token_id", "token", "person_id", "scopes", "expires_at", "name"}
    assert issued["token"].startswith("pat_") and issued["scopes"] == ["audit:read"]
    # The token works on the API; a route needing another scope refuses it.
    assert call("/v1/audit/events", issued["token"]) == 200
    assert call("/v1/audit/checkpoint", "pat_not-a-token") == 401

    listed = run_json("person", "list")["people"]
    assert [p["id"] for p in listed] == [person_id]
    assert [t["token_id"] for t in listed[0]["tokens"]] == [issued["token_id"]]
    assert issued["token"] not in json.dumps(listed)
    assert "Julia Ejemplo" in run("person", "list").output

    revoked = run("person", "revoke-token", str(issued["token_id"]))
    assert revoked.exit_code == 0, revoked.output
    assert call("/v1/audit/events", issued["token"]) == 401
    assert run_json("person", "list")["people"][0]["tokens"] == []

    second = run_json("person", "token", person_id, "--scope", "audit:read", "--days", "365")
    assert call("/v1/audit/events", second["token"]) == 200
    disabled = run("person", "disable", person_id)
    assert disabled.exit_code == 0 and "1 token(s) revoked" in disabled.output
    assert call("/v1/audit/events", second["token"]) == 401
    assert run_json("person", "list")["people"][0]["active"] is False
    assert "DISABLED" in run("person", "list").output

    app = create_app({"TESTING": True})
    try:
        with db.database(app).sessions() as session:
            hashes = set(session.scalars(select(AccessToken.token_hash)))
            assert token_hash(second["token"]) in hashes
            codes = [
                json.loads(e)["reason_code"] for e in session.scalars(select(AuditEntry.entry))
            ]
    finally:
        app.extensions["puente.db"].engine.dispose()
    assert f"registered.{person_id}" in codes
    assert f"token_revoked.{person_id}.{issued['token_id']}" in codes
    assert f"disabled.{person_id}" in codes


def test_refusals_in_both_languages(hub: Path) -> None:
    run_json("person", "add", *AUDITOR, "--role", "auditor", "--id", "cndh-auditoria")
    refused(
        run("person", "token", "cndh-auditoria", "--scope", "consent:write"),
        "do not allow: consent:write",
        "allowed: audit:read",
    )
    refused(
        run("person", "token", "cndh-auditoria", "--scope", "consent:write", "--lang", "es"),
        "no permiten: consent:write",
    )
    refused(
        run("person", "add", *AUDITOR, "--role", "auditor", "--lang", "es"),
        "Ya hay una persona con el correo julia@example.org",
    )
    refused(
        run("person", "add", *AUDITOR[:4], "--agency", "mx.nadie", "--role", "auditor"),
        "no agency 'mx.nadie'",
    )
    refused(run("person", "disable", "nadie"), "There is no person 'nadie'")
    refused(run("person", "revoke-token", "999", "--lang", "es"), "No existe el token personal")
    assert (
        run("person", "token", "cndh-auditoria", "--scope", "audit:read", "--days", "366").exit_code
        == 2
    )
    assert run("person", "add", *AUDITOR, "--role", "judge").exit_code == 2
    assert [p["id"] for p in run_json("person", "list")["people"]] == ["cndh-auditoria"]


@pytest.mark.parametrize(
    "token_id",
    [
        "99999999999999999999999",  # beyond any database integer
        str(2**63),  # beyond SQLite's
        str(2**31),  # beyond the PostgreSQL column (an INTEGER)
        "0",  # ids start at 1
    ],
)
def test_a_token_id_no_token_can_have_is_a_usage_error(hub: Path, token_id: str) -> None:
    result = run("person", "revoke-token", token_id)
    assert result.exit_code == 2, result.output
    assert "not in the range" in result.output
    assert "Traceback" not in result.output
    spanish = run("person", "revoke-token", token_id, "--lang", "es")
    assert spanish.exit_code == 2 and "no está en el intervalo" in spanish.output
    refused(run("person", "revoke-token", str(2**31 - 1)), "There is no personal access token")


def test_listing_the_people_of_an_unknown_agency_is_refused(hub: Path) -> None:
    refused(run("person", "list", "--agency", "mx.nope"), "There is no agency 'mx.nope'.")
    refused(run("person", "list", "--agency", "mx.nope", "--json"), "no agency 'mx.nope'")
    refused(
        run("person", "list", "--agency", "mx.nope", "--lang", "es"),
        "No existe la agencia 'mx.nope'.",
    )
    # The same words as adding a person to it.
    refused(
        run("person", "add", *AUDITOR[:4], "--agency", "mx.nope", "--role", "auditor"),
        "There is no agency 'mx.nope'.",
    )
    # A known agency without people is no mistake.
    assert run_json("person", "list", "--agency", "mx.fed.cndh") == {"people": []}
    listed = run("person", "list", "--agency", "mx.fed.cndh")
    assert listed.exit_code == 0 and "No people registered." in listed.output


def test_repeating_a_revocation_or_a_disable_changes_and_logs_nothing(hub: Path) -> None:
    run_json("person", "add", *AUDITOR, "--role", "auditor", "--id", "cndh-auditoria")
    issued = run_json("person", "token", "cndh-auditoria", "--scope", "audit:read")
    token_id = str(issued["token_id"])
    assert run("person", "revoke-token", token_id).exit_code == 0
    refused(
        run("person", "revoke-token", token_id),
        f"token {token_id} of cndh-auditoria was already revoked",
    )
    refused(run("person", "revoke-token", token_id, "--lang", "es"), "ya estaba revocado")
    assert run("person", "disable", "cndh-auditoria").exit_code == 0
    refused(run("person", "disable", "cndh-auditoria"), "cndh-auditoria was already disabled")
    refused(run("person", "disable", "cndh-auditoria", "--lang", "es"), "ya estaba desactivada")

    app = create_app({"TESTING": True})
    try:
        with db.database(app).sessions() as session:
            codes = [
                json.loads(e)["reason_code"] for e in session.scalars(select(AuditEntry.entry))
            ]
    finally:
        app.extensions["puente.db"].engine.dispose()
    assert codes.count(f"token_revoked.cndh-auditoria.{token_id}") == 1
    assert codes.count("disabled.cndh-auditoria") == 1
