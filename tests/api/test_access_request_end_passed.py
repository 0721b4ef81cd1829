"""A pending request whose asked-for end has passed can only be denied, and everyone is told so:
the officer's approval used to fail as a grant "whose end is in the past" (an ``until`` they
never sent, and cannot extend), the portal offered Approve, and the requester read that their
request still waited for a decision that could no longer grant anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from consent_support import PersonClient
from flask import Flask
from flask.testing import FlaskClient
from portal_support import logged_in
from sqlalchemy import update
from test_access_queue_paging import ask
from test_portal_fix_s18 import _decide, _panel, text_of_html

from exchange import db
from exchange.consent_store import AccessRequestRow


def _end_passes(app: Flask, request_id: str) -> None:
    with app.app_context():
        session = db.session()
        session.execute(
            update(AccessRequestRow)
            .where(AccessRequestRow.id == request_id)
            .values(until=datetime.now(UTC) - timedelta(minutes=5))
        )
        session.commit()


def _decision(client: FlaskClient, officer: PersonClient, request_id: str, **body: Any) -> Any:
    return client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"reason": "Revisado.", **body},
        headers={**officer.headers, "Accept-Language": "en"},
    )


def test_an_ended_request_is_refused_approval_as_such_and_may_be_denied(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    request_id = ask(client, lawyer, pushed["child_id"])
    _end_passes(app, request_id)

    refused = _decision(client, officer, request_id, approve=True)
    assert refused.status_code == 409, refused.get_json()
    assert "it can no longer be approved. Deny it instead" in refused.get_json()["detail"]
    spanish = client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"approve": True, "reason": "Revisado."},
        headers={**officer.headers, "Accept-Language": "es"},
    ).get_json()
    assert "ya no puede aprobarse. Deniéguela" in spanish["detail"]
    # Nothing was decided by the refusal.
    seen = client.get(f"/v1/access-requests/{request_id}", headers=lawyer.headers).get_json()
    assert seen["status"] == "pending"
    assert (
        "it can no longer be granted. If you still need it, make a new request"
        in (seen["message"]["en"])
    )
    assert "ya no puede concederse" in seen["message"]["es"]

    denied = _decision(client, officer, request_id, approve=False)
    assert denied.status_code == 200, denied.get_json()
    assert denied.get_json()["status"] == "denied"


def test_a_request_still_within_its_end_reads_as_waiting(
    client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    request_id = ask(client, lawyer, pushed["child_id"])
    seen = client.get(f"/v1/access-requests/{request_id}", headers=lawyer.headers).get_json()
    assert "awaits a consent officer's decision" in seen["message"]["en"]


def test_the_portal_offers_only_a_denial_and_says_why(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    request_id = ask(client, lawyer, pushed["child_id"])
    _end_passes(app, request_id)
    browser = logged_in(app, officer.id)
    for lang, said in (
        ("en", "The access this request asked for has already ended"),
        ("es", "El acceso que pedía esta solicitud ya terminó"),
    ):
        panel = _panel(browser.get(f"/requests?lang={lang}").get_data(as_text=True), request_id)
        assert said in text_of_html(panel)
        assert 'value="approve"' not in panel and 'value="deny" required' in panel
    refused = _decide(browser, request_id, "en", decision="approve", reason="Procede.")
    assert refused.status_code == 409
