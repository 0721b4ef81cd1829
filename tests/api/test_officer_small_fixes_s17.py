"""Small faults an outside check of consent officers found, on each database backend.

1. ``puente person disable`` says (and ``--json`` gives) how many pending access requests it
   denied and grants it revoked, in Spanish and English, each count in its singular or plural.
2. The hub's own denials when it disables a person or an agency (reason
   ``requester_disabled``) raise no ``denial_spike`` alert; an officer's denials still do.
3. A blank reason in an access decision gets one plain message, never the regular expression
   ``\\S`` it fails.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from consent_support import CLINIC, PersonClient, approve, deny, legal_representative
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency

from exchange.cli import main

PURPOSE = "legal_representation"


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


@pytest.fixture
def auditor(app: Flask) -> AgencyClient:
    """An oversight body, which reads the alerts."""
    return add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )


def spikes(
    client: FlaskClient, auditor: AgencyClient, threshold: int, kind: str = "denial_spike"
) -> list[dict[str, Any]]:
    """The alerts of ``kind`` the oversight body is shown."""
    answer = client.get(f"/v1/audit/alerts?threshold={threshold}", headers=auditor.headers)
    assert answer.status_code == 200, answer.get_json()
    return [alert for alert in answer.get_json()["alerts"] if alert["kind"] == kind]


# -- 1. person disable tells what it ended --------------------------------------------------


def test_person_disable_counts_the_requests_it_denied_and_the_grants_it_revoked(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    child_id = pushed["child_id"]
    approve(client, officer, ask(client, lawyer, child_id, ["identity", "legal_status"]))
    for _ in range(2):
        ask(client, lawyer, child_id, ["health"])

    disabled = puente(app, monkeypatch, "person", "disable", lawyer.id, "--json")
    assert disabled.exit_code == 0, disabled.output
    answer = json.loads(disabled.stdout)
    assert answer["id"] == lawyer.id and answer["active"] is False
    assert (answer["access_requests_denied"], answer["grants_revoked"]) == (2, 1)
    assert answer["tokens_revoked"] == 1

    # Enabled and disabled again: only what this disable ended is counted, not the first's.
    assert puente(app, monkeypatch, "person", "enable", lawyer.id).exit_code == 0
    again = legal_representative_token(app, monkeypatch, lawyer.id)
    ask(client, again, child_id, ["health"])
    english = puente(app, monkeypatch, "person", "disable", lawyer.id, "--lang", "en")
    assert english.exit_code == 0, english.output
    assert english.stdout.strip() == (
        f"Person {lawyer.id} disabled; 1 token(s) revoked. 1 pending access request denied "
        "and 0 grants revoked. Enabling the person again brings none back: new requests will "
        "be needed."
    )


def legal_representative_token(
    app: Flask, monkeypatch: pytest.MonkeyPatch, person_id: str
) -> PersonClient:
    """A new token for a person enabled again (their old ones stay revoked)."""
    issued = puente(
        app, monkeypatch, "person", "token", person_id, "--scope", "access:request", "--json"
    )
    assert issued.exit_code == 0, issued.output
    return PersonClient(person_id, json.loads(issued.stdout)["token"], CLINIC)


@pytest.mark.parametrize(
    ("pending", "grants", "spanish", "english"),
    [
        (
            1,
            2,
            "1 solicitud de acceso pendiente denegada y 2 autorizaciones revocadas. Reactivar "
            "a la persona no las devuelve: harán falta solicitudes nuevas.",
            "1 pending access request denied and 2 grants revoked. Enabling the person again "
            "brings none back: new requests will be needed.",
        ),
        (
            3,
            1,
            "3 solicitudes de acceso pendientes denegadas y 1 autorización revocada.",
            "3 pending access requests denied and 1 grant revoked.",
        ),
        (
            0,
            0,
            "0 solicitudes de acceso pendientes denegadas y 0 autorizaciones revocadas.",
            "0 pending access requests denied and 0 grants revoked.",
        ),
    ],
)
def test_person_disable_says_each_count_in_its_singular_or_plural(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    officer: PersonClient,
    pushed: dict[str, Any],
    pending: int,
    grants: int,
    spanish: str,
    english: str,
) -> None:
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    child_id = pushed["child_id"]
    for person_id, lang in (("lic-es", "es"), ("lic-en", "en")):
        person = legal_representative(app, person_id)
        for category in ["legal_status", "identity"][:grants]:  # one each: none covered
            approve(client, officer, ask(client, person, child_id, [category]))
        for _ in range(pending):
            ask(client, person, child_id, ["health"])
        said = puente(app, monkeypatch, "person", "disable", person_id, "--lang", lang)
        assert said.exit_code == 0, said.output
        assert (spanish if lang == "es" else english) in said.stdout, said.stdout
        if lang == "es":
            assert said.stdout.startswith(f"Persona {person_id} desactivada; 1 token(s)")


# -- 2. no denial alert for the hub's own denials on disabling ------------------------------


def test_the_hubs_denials_on_disabling_raise_no_alert_but_an_officers_do(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    auditor: AgencyClient,
) -> None:
    child_id = pushed["child_id"]
    for _ in range(4):
        ask(client, lawyer, child_id, ["health"])
    assert puente(app, monkeypatch, "person", "disable", lawyer.id).exit_code == 0
    # An agency's system and a person of it: disabling the agency denies theirs too.
    clinic = add_agency(
        app, "mx.osc.otra", scopes=("records:read", "access:request"), kind="civil_society"
    )
    other = legal_representative(app, "lic-otra", "mx.osc.otra")
    for requester in (clinic, other, clinic, other):
        ask(client, requester, child_id, ["health"])
    assert puente(app, monkeypatch, "agency", "disable", "mx.osc.otra").exit_code == 0
    assert spikes(client, auditor, threshold=3) == []
    assert spikes(client, auditor, threshold=3, kind="request_denial_spike") == []

    # An officer who denies as many is still one to look at: not as someone refused
    # (denial_spike), but as one turning requests down (request_denial_spike).
    add_agency(app, "mx.osc.tercera", scopes=("records:read",), kind="civil_society")
    third = legal_representative(app, "lic-tercera", "mx.osc.tercera")
    for _ in range(3):
        deny(client, officer, ask(client, third, child_id, ["health"]))
    assert spikes(client, auditor, threshold=3) == []
    (spike,) = spikes(client, auditor, threshold=3, kind="request_denial_spike")
    assert spike["actor"] == {"agency_id": officer.agency_id, "person_id": officer.id}
    assert spike["denied_requests"] == 3


def test_an_agencys_own_denials_still_count(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], auditor: AgencyClient
) -> None:
    """Denials with no person acting that are not the hub's disabling ones (here an agency's
    refused reads) keep counting for that agency."""
    outsider = add_agency(app, "mx.osc.curiosa", scopes=("records:read",), kind="civil_society")
    for _ in range(3):
        answer = client.get(
            f"/v1/records/{pushed['record_id']}?purpose={PURPOSE}", headers=outsider.headers
        )
        assert answer.status_code in (403, 404), answer.get_json()
    assert [spike["actor"] for spike in spikes(client, auditor, threshold=3)] == [
        {"agency_id": "mx.osc.curiosa"}
    ]


# -- 3. a blank reason, said plainly and once ----------------------------------------------


@pytest.mark.parametrize(
    ("reason", "lang", "expected"),
    [
        ("   ", "en", "The field 'written reason' (reason) must not be blank"),
        ("\t\n", "es", "El campo «motivo» (reason) no puede estar en blanco"),
        ("", "en", "The field 'written reason' (reason) must not be empty"),
        ("", "es", "El campo «motivo» (reason) no puede estar vacío"),
    ],
)
def test_a_blank_reason_gets_one_plain_message(
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    reason: str,
    lang: str,
    expected: str,
) -> None:
    request_id = ask(client, lawyer, pushed["child_id"], ["health"])
    answer = client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"approve": False, "reason": reason},
        headers={**officer.headers, "Accept-Language": lang},
    )
    assert answer.status_code == 400, answer.get_json()
    errors = answer.get_json()["errors"]
    assert [(error["pointer"], error["message"]) for error in errors] == [("/reason", expected)]
    said = json.dumps(answer.get_json(), ensure_ascii=False)
    assert "\\\\S" not in said and "patrón" not in said and "pattern" not in said
