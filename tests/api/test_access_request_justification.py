"""An access request's ``justification`` reaches the consent officers who decide (it was taken
and dropped): kept encrypted at rest, as it may describe the child's situation, re-encrypted by
a data key rotation, shown to the requester and the officers, and asked for in the portal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from consent_support import PersonClient
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from records_support import rows
from sqlalchemy import select

from exchange import db
from exchange.consent_store import AccessRequestJustification

WHY = "Localizar a la familia para la solicitud de asilo."


def ask(client: FlaskClient, lawyer: PersonClient, child_id: str, **extra: Any) -> Any:
    body = {
        "child_id": child_id,
        "purpose": "legal_representation",
        "categories": ["identity", "legal_status"],
        "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        **extra,
    }
    response = client.post("/v1/access-requests", json=body, headers=lawyer.headers)
    assert response.status_code in (201, 202), response.get_json()
    return response.get_json()


def test_the_officer_and_the_requester_read_the_justification(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    asked = ask(client, lawyer, pushed["child_id"], justification=WHY)
    assert asked["status"] == "pending" and asked["justification"] == WHY
    queue = client.get("/v1/access-requests?status=pending", headers=officer.headers)
    assert [r["justification"] for r in queue.get_json()["access_requests"]] == [WHY]
    again = client.get(f"/v1/access-requests/{asked['id']}", headers=lawyer.headers)
    assert again.get_json()["justification"] == WHY
    # Stored encrypted, never as text.
    [(ciphertext,)] = rows(app, select(AccessRequestJustification.document_ciphertext))
    assert WHY.encode() not in ciphertext and b"familia" not in ciphertext


def test_a_request_without_one_says_null_and_stores_nothing(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    assert ask(client, lawyer, pushed["child_id"])["justification"] is None
    assert rows(app, select(AccessRequestJustification.id)) == []


def test_a_data_key_rotation_reencrypts_the_justification(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    from exchange.crypto import data_keyring, generate_data_key, reencrypt_batches, rows_per_key

    asked = ask(client, lawyer, pushed["child_id"], justification=WHY)
    with app.app_context():
        old_key = data_keyring(app).current().id
        new_key, _path = generate_data_key(app)
        assert sum(reencrypt_batches(db.database(app).sessions, data_keyring(app))) >= 2
        with db.database(app).sessions() as session:
            stored = session.get_one(AccessRequestJustification, asked["id"])
            assert stored.data_key_id == new_key
            assert old_key not in rows_per_key(session)
    again = client.get(f"/v1/access-requests/{asked['id']}", headers=lawyer.headers)
    assert again.get_json()["justification"] == WHY


def test_the_portal_asks_for_it_and_shows_it_to_the_officer(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    form = browser.get("/requests?lang=en").get_data(as_text=True)
    assert 'name="justification"' in form
    answer = browser.post(
        "/requests?lang=en",
        data={
            "csrf_token": csrf_of(form),
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "category": ["identity", "legal_status"],
            "until": "2030-01-01",
            "justification": f"  {WHY}  ",
        },
    )
    assert answer.status_code == 303, text_of(answer)
    queue = logged_in(app, officer.id).get("/requests?lang=es").get_data(as_text=True)
    assert re.search(r"Justificación</dt>\s*<dd[^>]*>" + re.escape(WHY) + "</dd>", queue), queue
    # Too short is told in the form's own words, with what was typed kept.
    short = browser.post(
        "/requests?lang=en",
        data={
            "csrf_token": csrf_of(form),
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "category": ["identity"],
            "until": "2030-01-01",
            "justification": "Porque sí",
        },
    )
    assert short.status_code == 400
    said = short.get_data(as_text=True)
    assert "The justification, if you write one, must be 10 to 2000 characters long." in said
    assert "Porque sí" in said
