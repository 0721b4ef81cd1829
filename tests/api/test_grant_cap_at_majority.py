"""A grant an officer approves never runs past the child's 18th birthday: a later end is cut
there, not refused — and a requester who may not see ``identity`` is not told the birthday
(docs/consent.md §8.5), while the grant still ends on it.

The child turns 18 a few weeks from today, so these tests never expire."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    OWNER,
    PersonClient,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency, envelope, example, push
from sqlalchemy import select

from exchange import db
from exchange.consent_store import GrantRow
from exchange.disclosure import evaluate, load_child, person_actor


def _eighteenth_birthday_in(days: int) -> date:
    """A day ``days`` from today that has an 18-years-earlier twin (not 29 February)."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    return day + timedelta(days=1) if (day.month, day.day) == (2, 29) else day


BIRTHDAY = _eighteenth_birthday_in(40)
BORN = BIRTHDAY.replace(year=BIRTHDAY.year - 18)
#: The 18th birthday begins at midnight in UTC−05:00 (docs/consent.md §2).
MAJORITY = datetime(BIRTHDAY.year, BIRTHDAY.month, BIRTHDAY.day, 5, tzinfo=UTC)


def _later(days: int) -> str:
    """An instant well past the birthday, with whole seconds (as answers repeat it)."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


@pytest.fixture
def pushed(client: FlaskClient, app: Flask) -> dict[str, Any]:
    owner = add_agency(app, OWNER)
    data = copy.deepcopy(example("typical"))
    data["child"]["date_of_birth"] = BORN.isoformat()
    response = push(client, owner, envelope("EXP-17", data))
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def _ask(
    client: FlaskClient, lawyer: PersonClient, child_id: str, categories: list[str], until: str
) -> dict[str, Any]:
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": "legal_representation",
            "categories": categories,
            "until": until,
        },
        headers=lawyer.headers,
    )
    assert response.status_code == 201, response.get_json()
    body = dict(response.get_json())
    assert body["status"] == "pending"
    return body


def _decide(client: FlaskClient, officer: PersonClient, request_id: str, **extra: Any) -> Any:
    return client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"approve": True, "reason": "Necesario para el juicio.", **extra},
        headers=officer.headers,
    )


def test_an_approval_past_the_birthday_is_cut_there_and_the_birthday_is_not_told(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    asked = _later(200)
    request = _ask(client, lawyer, pushed["child_id"], ["legal_status"], asked)

    # No "until" from the officer: nothing for a 400 to point at, and nothing to refuse.
    decided = _decide(client, officer, request["id"])
    assert decided.status_code == 200, decided.get_json()
    body = decided.get_json()
    grant_id = body["grant_id"]
    # The officer acts for the child: the grant is shown with its real end.
    assert datetime.fromisoformat(body["grant"]["until"]) == MAJORITY
    told = {
        "basis": "grant",
        "grant_ids": [grant_id],
        "until": asked,
        "ends_at_majority_at_latest": True,
        "active": True,
    }
    assert body["access"] == told

    # The clinic may read legal_status only: it is told the end it asked for, and that the
    # access ends at the child's majority at the latest — never the birthday.
    seen = client.get(f"/v1/access-requests/{request['id']}", headers=lawyer.headers)
    grants = client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"]
    for answer in (seen.get_json(), grants):
        dumped = json.dumps(answer)
        assert BIRTHDAY.isoformat() not in dumped and BORN.isoformat() not in dumped
    assert seen.get_json()["access"] == told
    assert "cumpla 18 años" in seen.get_json()["message"]["es"]
    assert "when the child turns 18" in seen.get_json()["message"]["en"]
    [listed] = grants
    assert listed["id"] == grant_id
    assert (listed["until"], listed["ends_at_majority_at_latest"]) == (asked, True)
    response = client.get(
        f"/v1/records/{pushed['record_id']}",
        query_string={"purpose": "legal_representation"},
        headers=lawyer.headers,
    )
    assert response.status_code == 200
    assert response.get_json()["decision"]["grant_ids"] == [grant_id]

    # The grant itself ends when the birthday begins.
    with app.app_context(), db.database(app).sessions() as session:
        [stored] = session.scalars(select(GrantRow).where(GrantRow.id == grant_id)).all()
        assert stored.until.replace(tzinfo=UTC) == MAJORITY
        child = load_child(session, pushed["child_id"])
        actor = person_actor(session, "lic-ana")
        for moment, permitted in (
            (MAJORITY - timedelta(seconds=1), True),
            (MAJORITY, False),
        ):
            decision = evaluate(
                child, actor, "read", "legal_representation", ["legal_status"], now=moment
            )
            assert decision.permitted is permitted, moment


def test_a_requester_permitted_identity_is_told_the_birthday_the_grant_is_cut_at(
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    request = _ask(client, lawyer, pushed["child_id"], ["identity", "legal_status"], _later(200))
    # An officer's own "until" past the birthday is cut there too, not refused.
    decided = _decide(client, officer, request["id"], until=_later(300))
    assert decided.status_code == 200, decided.get_json()
    body = decided.get_json()
    assert datetime.fromisoformat(body["grant"]["until"]) == MAJORITY
    access = client.get(f"/v1/access-requests/{request['id']}", headers=lawyer.headers).get_json()[
        "access"
    ]
    assert datetime.fromisoformat(access["until"]) == MAJORITY
    assert "ends_at_majority_at_latest" not in access
    [listed] = client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"]
    assert datetime.fromisoformat(listed["until"]) == MAJORITY
    assert "ends_at_majority_at_latest" not in listed


def test_an_officers_until_in_the_past_or_malformed_is_still_refused(
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    request = _ask(client, lawyer, pushed["child_id"], ["legal_status"], _later(200))
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for until in (yesterday, "mañana"):
        refused = _decide(client, officer, request["id"], until=until)
        assert refused.status_code == 400, refused.get_json()
        assert [e["pointer"] for e in refused.get_json()["errors"]] == ["/until"]
    still = client.get(f"/v1/access-requests/{request['id']}", headers=officer.headers)
    assert still.get_json()["status"] == "pending"


def test_an_access_told_it_ends_at_majority_says_so_once_the_child_comes_of_age(
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the birthday the request no longer claims access it does not give (reads are
    refused then), and still does not say when it ended: that instant is the birthday."""
    request = _ask(client, lawyer, pushed["child_id"], ["legal_status"], _later(200))
    assert _decide(client, officer, request["id"]).status_code == 200

    import exchange.api.consents as consents_api

    for moment, active in ((MAJORITY - timedelta(seconds=1), True), (MAJORITY, False)):
        monkeypatch.setattr(consents_api, "utcnow", lambda moment=moment: moment)
        seen = client.get(f"/v1/access-requests/{request['id']}", headers=lawyer.headers)
        access = seen.get_json()["access"]
        assert access["active"] is active, moment
        dumped = json.dumps(seen.get_json())
        assert BIRTHDAY.isoformat() not in dumped and BORN.isoformat() not in dumped
    assert (access["ended_because"], access["ended_at"], access["ended_by"]) == (
        "majority",
        None,
        [],
    )
    message = seen.get_json()["message"]
    assert "terminó: la niña, niño o adolescente alcanzó la mayoría de edad" in message["es"]
    assert message["en"].startswith("The access granted ended: the child came of age.")
