"""No request is approved for someone no longer active on the hub (docs/consent.md §8.5): not
for a disabled agency's system, nor for a person of a disabled agency — the grant would come
back into force when the agency is enabled again. The approval is a conflict (409) that says
why in Spanish and English, through the API and the portal alike; denying stays possible.

``puente agency disable`` denies such requests itself (test_agency_disable_ends_access.py);
these are left pending from before it did, or by an agency switched off in the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import CLINIC, PersonClient, deny, entries, legal_representative
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from records_support import AgencyClient, add_agency, rows
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from exchange import db
from exchange.agencies import Agency, enable_agency
from exchange.consent_store import AccessRequestRow, GrantRow


@contextmanager
def admin(app: Flask) -> Iterator[Session]:
    """What the command line does (``puente agency disable …``): one transaction."""
    with app.app_context(), db.database(app).sessions.begin() as session:
        yield session


@pytest.fixture
def clinic(app: Flask) -> AgencyClient:
    """The legal clinic, whose system files requests too."""
    return add_agency(app, CLINIC, scopes=("records:read", "access:request"), kind="civil_society")


def ask(client: FlaskClient, requester: Any, child_id: str) -> str:
    body = {
        "child_id": child_id,
        "purpose": "legal_representation",
        "categories": ["identity", "legal_status"],
        "until": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
    }
    answer = client.post("/v1/access-requests", json=body, headers=requester.headers)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["status"] == "pending"
    return str(answer.get_json()["id"])


def approving(client: FlaskClient, officer: PersonClient, request_id: str, lang: str) -> Any:
    return client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"approve": True, "reason": "Representación acreditada en el expediente."},
        headers={**officer.headers, "Accept-Language": lang},
    )


def switch_off(session: Session) -> None:
    """The clinic made inactive without its requests being ended: as one disabled before
    ``puente agency disable`` denied them, or straight in the database."""
    session.execute(update(Agency).where(Agency.id == CLINIC).values(active=False))


def statuses(app: Flask) -> dict[str, str]:
    return dict(rows(app, select(AccessRequestRow.id, AccessRequestRow.status)))


def test_no_approval_for_a_disabled_agency_or_its_people(
    app: Flask,
    client: FlaskClient,
    clinic: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    lawyer = legal_representative(app, "lic-ana")
    by_system = ask(client, clinic, pushed["child_id"])
    by_person = ask(client, lawyer, pushed["child_id"])
    with admin(app) as session:
        switch_off(session)

    said = {
        by_system: ("The agency that asked for access", "La institución que pidió el acceso"),
        by_person: (
            "The agency of whoever asked for access",
            "La institución de quien pidió el acceso",
        ),
    }
    for request_id, (english, spanish) in said.items():
        refused = approving(client, officer, request_id, "en")
        assert refused.status_code == 409, refused.get_json()
        assert refused.get_json()["detail"].startswith(f"{english} ({CLINIC}) is no longer active")
        refused = approving(client, officer, request_id, "es")
        assert refused.status_code == 409, refused.get_json()
        assert refused.get_json()["detail"].startswith(f"{spanish} ({CLINIC}) ya no está activa")
    assert entries(app, "access_granted") == []
    assert rows(app, select(GrantRow.id)) == []
    assert statuses(app) == {by_system: "pending", by_person: "pending"}

    # Enabled again, nothing was granted meanwhile to come back into force.
    with admin(app) as session:
        enable_agency(session, CLINIC)
    assert rows(app, select(GrantRow.id)) == []
    # Denying is always possible (while disabled too: it grants nothing).
    with admin(app) as session:
        switch_off(session)
    assert deny(client, officer, by_system)["status"] == "denied"
    assert deny(client, officer, by_person)["status"] == "denied"


def test_the_portal_refuses_it_as_the_api_does(
    app: Flask,
    client: FlaskClient,
    clinic: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    lawyer = legal_representative(app, "lic-ana")
    request_id = ask(client, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    with admin(app) as session:
        switch_off(session)
    page = browser.get("/requests?lang=en").get_data(as_text=True)
    refused = browser.post(
        f"/requests/{request_id}/decision?lang=en",
        data={
            "csrf_token": csrf_of(page),
            "decision": "approve",
            "reason": "Representación acreditada.",
        },
    )
    assert refused.status_code == 409
    told = text_of(refused)
    assert f"The agency of whoever asked for access ({CLINIC}) is no longer active" in told
    assert "Deny the request instead, with a reason." in told
    assert entries(app, "access_granted") == []
    assert statuses(app) == {request_id: "pending"}
