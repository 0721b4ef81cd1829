"""Two consequences of taking access requests about ids the hub never issued (docs/consent.md
§8.5): the officers' queue must not bind one parameter per child its requests name — enough
requests about distinct unknown ids would push it past PostgreSQL's 65,535 and answer every
officer 503 — and a pending request, which proves nothing, must not turn a refused read from
404 into 403 (that would link a record id to the child id asked about)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import PersonClient, consent_officer, deny
from flask import Flask
from flask.testing import FlaskClient
from portal_support import logged_in, text_of
from records_support import add_agency, read
from sqlalchemy import event, insert

import exchange.consents.access
from exchange import db
from exchange.consent_store import AccessRequestRow

#: Requests about unknown ids in the queue's table: more than any statement of the queue may
#: bind (:data:`MOST_PARAMETERS`), few enough to insert quickly on both backends.
UNKNOWN_REQUESTS = 300
MOST_PARAMETERS = 20


def ask(client: FlaskClient, requester: PersonClient, child_id: str) -> dict[str, Any]:
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": "legal_representation",
            "categories": ["identity"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=requester.headers,
    )
    assert response.status_code == 201, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


def file_unknown_requests(app: Flask, count: int, start: datetime, first: int = 0) -> None:
    """``count`` pending requests, each about a distinct id the hub never issued, as
    ``POST /v1/access-requests`` stores them (no jurisdictions), the oldest at ``start``;
    numbered from ``first``."""
    with app.app_context():
        session = db.session()
        session.execute(
            insert(AccessRequestRow),
            [
                {
                    "id": f"acr_unknown{n:013d}",
                    "child_id": f"nna_{n:020d}",
                    "requester_agency": "mx.osc.clinica",
                    "requester_person": "lic-ana",
                    "purpose": "legal_representation",
                    "categories": ["identity"],
                    "record_ids": [],
                    "until": start + timedelta(days=30),
                    "jurisdictions": [],
                    "status": "pending",
                    "decision": {"result": "deny", "basis": "default_deny"},
                    "created_at": start + timedelta(microseconds=n - first),
                }
                for n in range(first, first + count)
            ],
        )
        session.commit()


@contextmanager
def statements(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    """The statements run meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    engine = db.database(app).engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def queue_ids(client: FlaskClient, officer: PersonClient) -> list[str]:
    response = client.get("/v1/access-requests", headers=officer.headers)
    assert response.status_code == 200, response.get_json()
    return [found["id"] for found in response.get_json()["access_requests"]]


# -- 1. the queue --------------------------------------------------------------------------------


def test_requests_about_unknown_ids_neither_fill_nor_break_the_queue(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    file_unknown_requests(app, UNKNOWN_REQUESTS, datetime.now(UTC) - timedelta(hours=1))
    real = ask(client, lawyer, pushed["child_id"])
    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    national = consent_officer(app, "co-fed-001", "mx.fed.pfpnna")

    for deciding in (officer, national):
        with statements(app) as seen:
            assert queue_ids(client, deciding) == [real["id"]]
        # Nothing bound per child a request names: 65,536 distinct unknown ids would
        # otherwise make every officer's queue a PostgreSQL error.
        widest = max(seen, key=lambda run: len(run[1] or ()))
        assert len(widest[1] or ()) <= MOST_PARAMETERS, widest[0]

    page = logged_in(app, officer.id).get("/requests?lang=en")
    assert page.status_code == 200
    assert real["id"] in text_of(page) and "acr_unknown" not in text_of(page)


def test_the_queue_is_still_the_oldest_requests_up_to_its_limit(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unknown ids older than, and between, the real requests take no place in the limit."""
    file_unknown_requests(app, 50, datetime.now(UTC) - timedelta(hours=1))
    first, second = (ask(client, lawyer, pushed["child_id"]) for _ in range(2))
    file_unknown_requests(app, 50, datetime.now(UTC), first=50)
    third = ask(client, lawyer, pushed["child_id"])

    monkeypatch.setattr(exchange.consents.access, "QUEUE_LIMIT", 2)
    assert queue_ids(client, officer) == [first["id"], second["id"]]
    monkeypatch.setattr(exchange.consents.access, "QUEUE_LIMIT", 500)
    assert queue_ids(client, officer) == [first["id"], second["id"], third["id"]]


# -- 2. what a request tells of a record -----------------------------------------------------------


def test_a_pending_request_does_not_tell_whose_a_record_is(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    """Filing is answered 201 about any id, so a pending request proves nothing: the refused
    read stays 404. Once an officer has decided it (here, denied), the requester has been told
    the child exists, and the refusal is 403 with the decision, as before."""
    request = ask(client, lawyer, pushed["child_id"])
    refused = read(client, lawyer, pushed["record_id"], purpose="legal_representation")
    assert refused.status_code == 404
    assert "decision" not in (refused.get_json() or {})

    deny(client, officer, request["id"])
    refused = read(client, lawyer, pushed["record_id"], purpose="legal_representation")
    assert refused.status_code == 403
    assert refused.get_json()["decision"]["result"] == "deny"
