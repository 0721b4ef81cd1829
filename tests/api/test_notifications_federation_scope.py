"""An agency that reads only through other hubs (scope ``federation``, docs/federation.md §2)
reads its notifications: a peer hub's ``consent.revoked`` is held for it there, and telling
it to stop using the data is the point. A token with neither scope is refused."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency, issue_token

from exchange import db
from exchange.outbox import enqueue

COMAR = "mx.fed.comar"


def test_an_agency_with_the_federation_scope_alone_reads_a_held_revocation(
    app: Flask, client: FlaskClient
) -> None:
    comar = add_agency(app, COMAR, scopes=("federation",), jurisdiction="00")
    with app.app_context(), db.database(app).sessions.begin() as session:
        payload = {"event": "consent.revoked", "consent_id": "cns_1", "hub": "mx.chp.puente"}
        enqueue(session, COMAR, "consent.revoked", payload, held=True)

    answer = client.get("/v1/notifications", headers={"Authorization": f"Bearer {comar.token}"})
    assert answer.status_code == 200, answer.get_json()
    assert [each["event"] for each in answer.get_json()["notifications"]] == ["consent.revoked"]


def test_a_token_with_neither_scope_is_refused(app: Flask, client: FlaskClient) -> None:
    add_agency(app, COMAR, scopes=("federation",), jurisdiction="00")
    token = issue_token(app, COMAR, ["records:write"])
    answer = client.get("/v1/notifications", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert "records:read" in answer.get_json()["detail"]
    assert "federation" in answer.get_json()["detail"]
