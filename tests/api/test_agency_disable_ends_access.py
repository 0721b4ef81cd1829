"""Disabling an agency (``puente agency disable``) ends what it and its people asked for and
were given, as disabling a person does (docs/consent.md §8.5): their pending access requests are
denied and their grants revoked, each audited (reason ``requester_disabled``, by the hub's
administrator), in the same transaction as the disable, and the command says how many.
Enabling the agency again brings none back: no grant comes back into force, nothing waits in the
officers' queues, and a new request is needed. Its people's tokens and portal sessions end too,
and stay ended."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from consent_support import (
    CLINIC,
    PersonClient,
    add_person_client,
    approve,
    entries,
    legal_representative,
)
from flask import Flask
from flask.testing import FlaskClient
from portal_support import logged_in
from records_support import AgencyClient, add_agency, issue_token, read, rows
from sqlalchemy import select

from exchange.agencies import Agency
from exchange.cli import main
from exchange.consent_store import AccessRequestRow, GrantRow

PURPOSE = "legal_representation"
#: Another civil-society agency, whose lawyer's requests and grants disabling the clinic leaves.
OTHER = "mx.osc.otra"


@pytest.fixture
def clinic(app: Flask) -> AgencyClient:
    """The legal clinic, whose system asks for access too."""
    return add_agency(app, CLINIC, scopes=("records:read", "access:request"), kind="civil_society")


def puente(app: Flask, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """The command line, on this hub."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])
    return CliRunner().invoke(main, list(args))


def ask(client: FlaskClient, requester: Any, child_id: str, categories: list[str]) -> str:
    body = {
        "child_id": child_id,
        "purpose": PURPOSE,
        "categories": categories,
        "until": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
    }
    answer = client.post("/v1/access-requests", json=body, headers=requester.headers)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["status"] == "pending"
    return str(answer.get_json()["id"])


def granted(
    client: FlaskClient, officer: PersonClient, requester: Any, child_id: str
) -> tuple[str, str]:
    """A request of ``requester`` approved: (its id, the grant's id)."""
    request_id = ask(client, requester, child_id, ["identity", "legal_status"])
    return request_id, str(approve(client, officer, request_id)["grant"]["id"])


def permitted(client: FlaskClient, reader: Any, record_id: str) -> list[str]:
    """The categories a read of the record under ``PURPOSE`` is given (none when refused)."""
    answer = read(client, reader, record_id, purpose=PURPOSE)
    if answer.status_code != 200:
        return []
    return list(answer.get_json()["decision"]["categories"])


def request_rows(app: Flask) -> dict[str, tuple[str, str | None, str | None]]:
    found = rows(
        app,
        select(
            AccessRequestRow.id,
            AccessRequestRow.status,
            AccessRequestRow.decided_by,
            AccessRequestRow.decision_reason,
        ),
    )
    return {row_id: (status, by, reason) for row_id, status, by, reason in found}


def grant_rows(app: Flask) -> dict[str, tuple[bool, str | None, str | None]]:
    found = rows(
        app,
        select(GrantRow.id, GrantRow.revoked_at, GrantRow.revoked_by, GrantRow.revocation_reason),
    )
    return {row_id: (at is not None, by, reason) for row_id, at, by, reason in found}


def pending_queue(client: FlaskClient, officer: PersonClient) -> list[str]:
    answer = client.get("/v1/access-requests?status=pending", headers=officer.headers)
    assert answer.status_code == 200, answer.get_json()
    return [row["id"] for row in answer.get_json()["access_requests"]]


def test_disabling_an_agency_ends_its_and_its_peoples_requests_and_grants_for_good(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    clinic: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    child_id, record_id = pushed["child_id"], pushed["record_id"]
    lawyer = legal_representative(app, "lic-ana")
    add_agency(app, OTHER, scopes=("records:read",), kind="civil_society")
    other = legal_representative(app, "lic-beto", OTHER)

    # The person's first: a grant to the agency covers its people too.
    person_request, person_grant = granted(client, officer, lawyer, child_id)
    system_request, system_grant = granted(client, officer, clinic, child_id)
    other_request, other_grant = granted(client, officer, other, child_id)
    # Beyond what the grants cover: these wait for an officer.
    system_pending = ask(client, clinic, child_id, ["health"])
    person_pending = ask(client, lawyer, child_id, ["health"])
    other_pending = ask(client, other, child_id, ["health"])
    assert sorted(pending_queue(client, officer)) == sorted(
        [system_pending, person_pending, other_pending]
    )
    for reader in (clinic, lawyer, other):
        assert permitted(client, reader, record_id) == ["identity", "legal_status"]
    browser = logged_in(app, lawyer.id)
    assert browser.get("/requests").status_code == 200

    disabled = puente(app, monkeypatch, "agency", "disable", CLINIC, "--json")
    assert disabled.exit_code == 0, disabled.output
    assert json.loads(disabled.stdout) == {
        "agency_id": CLINIC,
        "active": False,
        "access_requests_denied": 2,
        "grants_revoked": 2,
    }

    # Denied and revoked by the hub, for the reason that its requester was disabled...
    ended = ("hub", "requester_disabled")
    requests = request_rows(app)
    assert requests[system_pending] == ("denied", *ended)
    assert requests[person_pending] == ("denied", *ended)
    grants = grant_rows(app)
    assert grants[system_grant] == (True, *ended)
    assert grants[person_grant] == (True, *ended)
    # ...while another agency's lawyer keeps theirs.
    assert requests[other_pending][0] == "pending"
    assert grants[other_grant] == (False, None, None)
    assert pending_queue(client, officer) == [other_pending]
    # One audit entry each, by the hub's administrator, with the reason code.
    denials = {
        e["object"]["id"]: e
        for e in entries(app, "access_denied")
        if e.get("reason_code") == "requester_disabled"
    }
    revocations = {
        e["object"]["id"]: e
        for e in entries(app, "consent_revoked")
        if e.get("reason_code") == "requester_disabled"
    }
    assert set(denials) == {system_pending, person_pending}
    assert set(revocations) == {system_grant, person_grant}
    for entry in [*denials.values(), *revocations.values()]:
        assert entry["actor"]["role"] == "administrator"
        assert entry["child_id"] == child_id
    assert {e["outcome"] for e in denials.values()} == {"denied"}
    assert {e["outcome"] for e in revocations.values()} == {"success"}
    # Its people's tokens and portal sessions ended with it.
    assert read(client, lawyer, record_id).status_code == 401
    assert read(client, clinic, record_id).status_code == 401
    assert browser.get("/requests").status_code == 303

    enabled = puente(app, monkeypatch, "agency", "enable", CLINIC, "--json")
    assert enabled.exit_code == 0, enabled.output

    # Enabled again, nothing comes back: new tokens read under no grant, nothing is pending,
    # and the old session and tokens stay ended.
    system_again = AgencyClient(CLINIC, issue_token(app, CLINIC, ("records:read",)), None, None)
    lawyer_again = PersonClient(
        lawyer.id, issue_token(app, CLINIC, ("records:read",), lawyer.id), CLINIC
    )
    assert permitted(client, system_again, record_id) == []
    assert permitted(client, lawyer_again, record_id) == []
    assert permitted(client, other, record_id) == ["identity", "legal_status"]
    assert grant_rows(app)[system_grant][0] and grant_rows(app)[person_grant][0]
    assert pending_queue(client, officer) == [other_pending]
    assert {
        row_id
        for row_id, (status, _by, _reason) in request_rows(app).items()
        if status == "pending"
    } == {other_pending}
    assert read(client, lawyer, record_id).status_code == 401
    assert browser.get("/requests").status_code == 303
    # The requests answered before still say what they said (nothing about the disable).
    assert {system_request, person_request, other_request} <= set(request_rows(app))


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        (
            "es",
            "Solicitudes de acceso pendientes denegadas: 1; autorizaciones revocadas: 1. "
            "Reactivarla no las devuelve: harán falta solicitudes nuevas.",
        ),
        (
            "en",
            "Pending access requests denied: 1; grants revoked: 1. Enabling it again brings "
            "none back: new requests will be needed.",
        ),
    ],
)
def test_the_command_says_how_many_it_ended_in_each_language(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    clinic: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    lang: str,
    said: str,
) -> None:
    # A grant to a person of the agency, and a request of its system.
    person = add_person_client(
        app, "aux-1", CLINIC, ["legal_representative"], ["records:read", "access:request"]
    )
    granted(client, officer, person, pushed["child_id"])
    ask(client, clinic, pushed["child_id"], ["health"])
    disabled = puente(app, monkeypatch, "agency", "disable", CLINIC, "--lang", lang)
    assert disabled.exit_code == 0, disabled.output
    assert said in disabled.stdout


def test_the_disable_and_the_ending_are_one_transaction(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    clinic: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    """If ending the requests fails, the agency is not disabled either (nor anything else
    written): the command is done again, whole."""
    pending = ask(client, clinic, pushed["child_id"], ["health"])

    def fails(*_args: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("exchange.consents.access._audit_ended", fails)
    refused = puente(app, monkeypatch, "agency", "disable", CLINIC)
    assert refused.exit_code != 0
    assert rows(app, select(Agency.active).where(Agency.id == CLINIC)) == [(True,)]
    assert request_rows(app)[pending] == ("pending", None, None)
    assert pending_queue(client, officer) == [pending]
