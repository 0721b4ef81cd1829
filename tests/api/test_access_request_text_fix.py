"""What ``POST /v1/access-requests`` takes and tells, as the portal's form does.

A justification with control characters (Unicode category C*, but tab, LF and CR) is refused
with a 400 naming the field and the characters, in Spanish and English, with the portal's own
words (one check for both, exchange.consents.access), and nothing is stored. And a pending
request promises no decision — one about an id the hub never issued reaches no officer — but
says what to do when none comes, in the same words for a known child and an unknown id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import PersonClient
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from records_support import rows
from sqlalchemy import select

from exchange.consent_store import AccessRequestRow

WHY = "Representación en el recurso de revisión ante COMAR"


def body(child_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "child_id": child_id,
        "purpose": "legal_representation",
        "categories": ["identity", "legal_status"],
        "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        **extra,
    }


def stored(app: Flask) -> list[str]:
    return [row_id for (row_id,) in rows(app, select(AccessRequestRow.id))]


@pytest.mark.parametrize(
    ("written", "named"),
    [
        (f"{WHY}\x01", "U+0001"),
        (f"\x1b[2J{WHY}", "U+001B"),
        (f"{WHY}\x7f", "U+007F"),
        (f"{WHY} \u202eFCA", "U+202E"),
        (f"{WHY}\x85\u200b", "U+0085"),  # a zero-width space is pasted text, not refused
        (f"\u202e{WHY}\x1b\x01\x1b", "U+0001, U+001B, U+202E"),
    ],
)
def test_the_api_refuses_control_characters_in_a_justification_naming_them(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    written: str,
    named: str,
) -> None:
    said = {
        "es": f"La justificación contiene caracteres de control ({named}): bórrelos y vuelva "
        "a enviar el texto (los saltos de línea y los tabuladores sí se admiten).",
        "en": f"The justification contains control characters ({named}): delete them and "
        "send it again (line breaks and tabs are fine).",
    }
    for lang, message in said.items():
        refused = client.post(
            "/v1/access-requests",
            json=body(pushed["child_id"], justification=written),
            headers={**lawyer.headers, "Accept-Language": lang},
        )
        assert refused.status_code == 400, refused.get_json()
        problem = refused.get_json()
        assert refused.mimetype == "application/problem+json"
        assert problem["type"].endswith("/validation")
        assert problem["errors"] == [{"pointer": "/justification", "message": message}]
    assert stored(app) == []

    # The portal's form says the same, in the same words.
    browser = logged_in(app, lawyer.id)
    page = browser.get("/requests?lang=en").get_data(as_text=True)
    form = {
        "csrf_token": csrf_of(page),
        "child_id": pushed["child_id"],
        "purpose": "legal_representation",
        "category": ["identity", "legal_status"],
        "until": (datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
        "justification": written,
    }
    portal = browser.post("/requests?lang=en", data=form)
    assert portal.status_code == 400
    assert said["en"] in text_of(portal)
    assert stored(app) == []


def test_line_breaks_and_tabs_are_text(
    client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    written = f"{WHY}:\r\n\t- audiencia el lunes\n\t- expediente completo"
    answer = client.post(
        "/v1/access-requests",
        json=body(pushed["child_id"], justification=written),
        headers=lawyer.headers,
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["justification"] == written


def test_a_pending_request_promises_no_decision_and_says_what_to_do_alike_for_any_id(
    client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    told: dict[str, list[dict[str, str]]] = {}
    for child_id in (pushed["child_id"], "nna_00000000000000000000"):
        asked = client.post("/v1/access-requests", json=body(child_id), headers=lawyer.headers)
        assert asked.status_code == 201, asked.get_json()
        assert asked.get_json()["status"] == "pending"
        again = client.get(f"/v1/access-requests/{asked.get_json()['id']}", headers=lawyer.headers)
        told[child_id] = [asked.get_json()["message"], again.get_json()["message"]]
    known, unknown = told.values()
    assert known == unknown  # no existence oracle
    message = known[0]
    assert "the hub cannot say when" in message["en"]
    assert "check the child's id with the agency or the Procuraduría" in message["en"]
    assert "reaches no officer" in message["en"]
    assert "el nodo no puede decir cuándo" in message["es"]
    assert "confirme el id de la niña, niño o adolescente" in message["es"]
    assert "no llega a ningún oficial" in message["es"]
