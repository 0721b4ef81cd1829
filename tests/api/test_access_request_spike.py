"""Oversight is alerted to one actor filing many access requests in a short time
(``access_request_spike`` in ``GET /v1/audit/alerts``): filing is never refused for being
many, so a requester asking about child after child — fishing for which children the hub
holds, or burying the officers' queue — used to show nowhere."""

from __future__ import annotations

from typing import Any

from consent_support import PersonClient, legal_representative
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency

from tests.api.test_access_requests import ask


def _auditor(app: Flask) -> AgencyClient:
    return add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )


def _spikes(client: FlaskClient, auditor: AgencyClient, query: str = "") -> list[Any]:
    response = client.get(f"/v1/audit/alerts{query}", headers=auditor.headers)
    assert response.status_code == 200, response.get_json()
    return [a for a in response.get_json()["alerts"] if a["kind"] == "access_request_spike"]


def test_many_requests_of_one_person_are_an_alert_naming_them(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    app.config["AUDIT_ALERT_ACCESS_REQUESTS"] = 3
    colleague = legal_representative(app, "lr-spike-002", lawyer.agency_id)
    auditor = _auditor(app)
    for _ in range(2):
        assert ask(client, lawyer, pushed["child_id"]).status_code == 201
    assert _spikes(client, auditor) == []  # two are not many

    assert ask(client, lawyer, pushed["child_id"]).status_code == 201
    assert ask(client, lawyer, pushed["child_id"]).status_code == 201
    assert ask(client, colleague, pushed["child_id"]).status_code == 201
    [spike] = _spikes(client, auditor)
    assert spike["actor"] == {"agency_id": lawyer.agency_id, "person_id": lawyer.id}
    assert (spike["requests"], spike["threshold"]) == (4, 3)
    assert spike["first_at"] <= spike["last_at"]
    # No denial alert: the requests wait for an officer, nobody was refused.
    alerts = client.get("/v1/audit/alerts", headers=auditor.headers).get_json()["alerts"]
    assert [a for a in alerts if a["kind"] == "denial_spike"] == []


def test_the_threshold_is_a_parameter_and_a_setting(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    auditor = _auditor(app)
    for _ in range(3):
        assert ask(client, lawyer, pushed["child_id"]).status_code == 201
    assert _spikes(client, auditor) == []  # the default, 50
    assert len(_spikes(client, auditor, "?request_threshold=3")) == 1
    assert _spikes(client, auditor, "?request_threshold=4") == []
    app.config["AUDIT_ALERT_ACCESS_REQUESTS"] = 2
    assert _spikes(client, auditor)[0]["threshold"] == 2
    # A threshold that is no count at all is a 400 naming it.
    bad = client.get("/v1/audit/alerts?request_threshold=0", headers=auditor.headers)
    assert bad.status_code == 400
    assert bad.get_json()["errors"][0]["pointer"] == "/query/request_threshold"
