"""``denial_spike`` in ``GET /v1/audit/alerts`` counts actors who were refused something. A
consent officer denying access requests decided what someone else gets: those
``access_denied`` entries name the officer as actor and the request as object, and count
against nobody — not against the officer. A requester whose requests a hard rule refuses at once
is still counted. On both backends (the ``app`` fixture)."""

from __future__ import annotations

from typing import Any

from consent_support import PersonClient, deny, entries
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency

from tests.api.test_access_requests import ask


def denial_spikes(client: FlaskClient, auditor: AgencyClient) -> list[dict[str, Any]]:
    response = client.get("/v1/audit/alerts?threshold=3", headers=auditor.headers)
    assert response.status_code == 200, response.get_json()
    return [a for a in response.get_json()["alerts"] if a["kind"] == "denial_spike"]


def auditor_of(app: Flask) -> AgencyClient:
    return add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )


def test_an_officer_denying_requests_is_not_a_denial_spike(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    auditor = auditor_of(app)
    for _ in range(4):
        request = ask(client, lawyer, pushed["child_id"]).get_json()
        assert request["status"] == "pending"
        assert deny(client, officer, request["id"])["status"] == "denied"
    denied = entries(app, "access_denied")
    assert [(e["outcome"], e["actor"]["person_id"]) for e in denied] == [("denied", officer.id)] * 4
    assert denial_spikes(client, auditor) == []


def test_a_requester_refused_at_once_is_still_a_denial_spike(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    auditor = auditor_of(app)
    for _ in range(3):
        refused = ask(
            client,
            lawyer,
            pushed["child_id"],
            purpose="migration_procedure",
            categories=["protection_concerns", "placement"],
        )
        assert refused.get_json()["status"] == "denied"
    request = ask(client, lawyer, pushed["child_id"]).get_json()
    deny(client, officer, request["id"])
    [spike] = denial_spikes(client, auditor)
    assert spike["actor"] == {"agency_id": lawyer.agency_id, "person_id": lawyer.id}
    assert spike["denials"] == 3  # the officer's denial is not one of hers, nor the officer's
