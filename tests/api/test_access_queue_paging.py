"""The officers' access-request queue pages through every request (``GET /v1/access-requests``
with ``limit``, ``after``, ``next_after`` and ``total``), narrows to a child, a purpose or a
requester, lists decided ones newest decision first, refuses a repeated parameter or an unknown
``after`` — it used to show the 500 oldest requests and say nothing of the others — and an
approval a withhold entry blocks names the entry (it used to say ``/v1/withholds/{id}``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    OWNER,
    PersonClient,
    consent_officer,
    deny,
    entries,
    legal_representative,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, example, push
from sqlalchemy import insert

from exchange import db
from exchange.child_duplicates import merge_children
from exchange.consent_store import AccessRequestRow

PURPOSE = "legal_representation"
#: More than the 500 the queue used to stop at.
MANY = 505


def ask(
    client: FlaskClient,
    requester: PersonClient,
    child_id: str,
    categories: tuple[str, ...] = ("family",),
) -> str:
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": PURPOSE,
            "categories": list(categories),
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=requester.headers,
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "pending"
    return str(response.get_json()["id"])


def copies(
    app: Flask, model_id: str, count: int, start: datetime, prefix: str, **changes: Any
) -> list[str]:
    """``count`` copies of the request ``model_id`` made straight in the database (for speed),
    one second apart from ``start``, with ``changes``; their ids, oldest first."""
    with app.app_context():
        session = db.session()
        model = session.get(AccessRequestRow, model_id)
        assert model is not None
        columns = {c.key: getattr(model, c.key) for c in AccessRequestRow.__table__.columns}
        ids = [f"acr_{prefix}{n:06d}" for n in range(count)]
        session.execute(
            insert(AccessRequestRow),
            [
                {**columns, "id": ids[n], "created_at": start + timedelta(seconds=n), **changes}
                for n in range(count)
            ],
        )
        session.commit()
    return ids


def queue(client: FlaskClient, officer: PersonClient, language: str = "en", **query: Any) -> Any:
    return client.get(
        "/v1/access-requests",
        query_string=query,
        headers={**officer.headers, "Accept-Language": language},
    )


def listed(client: FlaskClient, officer: PersonClient, **query: Any) -> dict[str, Any]:
    response = queue(client, officer, **query)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def every_page(
    client: FlaskClient, officer: PersonClient, **query: Any
) -> Iterator[dict[str, Any]]:
    after = None
    while True:
        page = listed(client, officer, **query, **({"after": after} if after else {}))
        yield page
        after = page["next_after"]
        if after is None:
            return


def read_entries(app: Flask) -> Counter[str]:
    """The requests read, each as many times as an audit entry (consents_read) records it."""
    return Counter(entry["object"]["id"] for entry in entries(app, "consents_read"))


def ids(page: dict[str, Any]) -> list[str]:
    return [found["id"] for found in page["access_requests"]]


@pytest.fixture
def owner(app: Flask) -> AgencyClient:
    return add_agency(app, OWNER)


@pytest.fixture
def hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def test_the_officer_pages_through_every_pending_request_oldest_first(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    hour_ago: datetime,
) -> None:
    model = ask(client, lawyer, pushed["child_id"])
    older = copies(app, model, MANY, hour_ago - timedelta(days=1), "old")
    newest = ask(client, lawyer, pushed["child_id"])
    everything = [*older, model, newest]

    first = listed(client, officer)
    assert first["status"] == "pending" and first["total"] == len(everything)
    assert ids(first) == everything[:100] and first["next_after"] == everything[99]

    before = read_entries(app)
    pages = list(every_page(client, officer, limit=500))
    assert [len(page["access_requests"]) for page in pages] == [500, len(everything) - 500]
    assert [page["total"] for page in pages] == [len(everything)] * 2
    assert pages[-1]["next_after"] is None
    assert [found for page in pages for found in ids(page)] == everything
    # One audit entry per request listed, no more (the count is none).
    assert read_entries(app) - before == Counter(everything)

    # A page exactly full is the last when nothing follows.
    last = listed(client, officer, limit=2, after=everything[-3])
    assert ids(last) == everything[-2:] and last["next_after"] is None


def test_a_request_decided_meanwhile_still_marks_the_place(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    hour_ago: datetime,
) -> None:
    model = ask(client, lawyer, pushed["child_id"])
    waiting = [*copies(app, model, 4, hour_ago, "wait"), model]
    first = listed(client, officer, limit=2)
    assert ids(first) == waiting[:2]
    deny(client, officer, first["next_after"])
    rest = listed(client, officer, limit=2, after=first["next_after"])
    assert ids(rest) == waiting[2:4] and rest["total"] == 4


def test_decided_requests_newest_decision_first(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    hour_ago: datetime,
) -> None:
    model = ask(client, lawyer, pushed["child_id"])
    asked = hour_ago - timedelta(days=10)
    # Asked oldest first, decided in the opposite order: the first asked was decided last.
    denied = [
        copies(
            app,
            model,
            1,
            asked + timedelta(days=n),
            f"den{n}",
            status="denied",
            decided_at=hour_ago - timedelta(days=n),
            decided_by="co-chp-004",
        )[0]
        for n in range(MANY - 500 + 2)
    ]
    copies(app, model, 3, asked, "grt", status="granted", decided_at=hour_ago)

    pages = list(every_page(client, officer, status="denied", limit=2))
    assert [found for page in pages for found in ids(page)] == denied
    assert {page["total"] for page in pages} == {len(denied)}
    assert listed(client, officer, status="granted")["total"] == 3
    # A decided request marks no place in another status's list.
    refused = queue(client, officer, status="granted", after=denied[0])
    assert refused.status_code == 400


def test_the_queue_narrows_to_a_child_a_purpose_or_a_requester(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    hour_ago: datetime,
) -> None:
    other = envelope("EXP-2", example("venezuelan_adolescent_transferred_between_states"))
    other_child = push(client, owner, other).get_json()["child_id"]
    assert other_child != pushed["child_id"]
    beto = legal_representative(app, "lic-beto")
    add_agency(app, "mx.osc.otra", scopes=("records:read",), kind="civil_society")
    model = ask(client, lawyer, pushed["child_id"])
    about_other = copies(app, model, 3, hour_ago, "kid", child_id=other_child)
    for_care = copies(app, model, 2, hour_ago, "care", purpose="case_management")
    by_beto = copies(app, model, 2, hour_ago, "beto", requester_person=beto.id)
    by_other_agency = copies(
        app, model, 2, hour_ago, "agency", requester_agency="mx.osc.otra", requester_person=None
    )

    def only(**query: str) -> set[str]:
        found = listed(client, officer, **query)
        assert found["total"] == len(found["access_requests"])
        return set(ids(found))

    assert only(child_id=other_child) == set(about_other)
    assert only(purpose="case_management") == set(for_care)
    assert only(requester=beto.id) == set(by_beto)
    assert only(requester="mx.osc.otra") == set(by_other_agency)
    # An agency's requests are its people's too.
    assert only(requester=CLINIC) == {model, *about_other, *for_care, *by_beto}
    assert only(requester="lic-ana", purpose=PURPOSE, child_id=pushed["child_id"]) == {model}
    assert only(child_id="nna_00000000000000000000") == set()


def test_a_child_filter_follows_a_merge(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    """Requests about a child merged into another are that child's, under either id, as the
    queue names them (the survivor)."""
    other = envelope("EXP-2", example("venezuelan_adolescent_transferred_between_states"))
    merged = push(client, owner, other).get_json()["child_id"]
    about_survivor, about_merged = (
        ask(client, lawyer, pushed["child_id"]),
        ask(client, lawyer, merged),
    )
    with app.app_context(), db.database(app).sessions() as session:
        merge_children(session, pushed["child_id"], merged, reason="la misma niña")
        session.commit()
    for child_id in (pushed["child_id"], merged):
        found = listed(client, officer, child_id=child_id)
        assert set(ids(found)) == {about_survivor, about_merged} and found["total"] == 2
        assert {seen["child_id"] for seen in found["access_requests"]} == {pushed["child_id"]}


def test_parameters_are_one_each_and_checked(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    mine = ask(client, lawyer, pushed["child_id"])
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", kind="state_dif")
    elsewhere = consent_officer(app, "co-nl-001", "mx.nl.procuraduria")

    for language, words in (("en", "was given 2 times"), ("es", "se indicó 2 veces")):
        twice = client.get(
            "/v1/access-requests?status=pending&status=granted",
            headers={**officer.headers, "Accept-Language": language},
        )
        assert twice.status_code == 400
        [error] = twice.get_json()["errors"]
        assert error["pointer"] == "/query/status" and words in error["message"]

    def refused(name: str, language: str = "en", **query: Any) -> str:
        response = queue(client, officer, language, **query)
        assert response.status_code == 400, response.get_json()
        problem = response.get_json()
        assert any(name in str(error) for error in problem["errors"]), problem
        return str(problem["detail"])

    for limit in ("0", "501", "ten", ""):
        refused("limit", limit=limit)
    refused("purpose", purpose="curiosity")
    refused("child_id", child_id="!")
    assert "no es una solicitud de esta lista" in refused(
        "/query/after", "es", after="acr_000000000000000000000000"
    )
    # Another state's request is no place in this officer's list, nor this one in theirs.
    assert listed(client, elsewhere)["total"] == 0
    response = queue(client, elsewhere, after=mine)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["pointer"] == "/query/after"


def test_an_approval_a_withhold_entry_blocks_names_the_entry(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    entry = client.post(
        f"/v1/children/{pushed['child_id']}/withholds",
        json={
            "target": {"agency_id": CLINIC},
            "categories": ["contact_location"],
            "reason": "El padre denunciado contrató a este despacho.",
        },
        headers=officer.headers,
    )
    assert entry.status_code == 201, entry.get_json()
    entry_id = entry.get_json()["id"]
    request_id = ask(client, lawyer, pushed["child_id"], ("contact_location",))
    colleague = consent_officer(app, "co-chp-005")

    for language in ("es", "en"):
        refused = client.post(
            f"/v1/access-requests/{request_id}/decision",
            json={"approve": True, "reason": "Representación acreditada."},
            headers={**colleague.headers, "Accept-Language": language},
        )
        assert refused.status_code == 409
        problem = refused.get_json()
        assert problem["withhold_ids"] == [entry_id]
        detail = problem["detail"]
        assert "{id}" not in detail
        route = f"POST /v1/withholds/{entry_id}/revoke"
        # Named for a person to read, and in the route an API client calls.
        assert route in detail and entry_id in detail.replace(route, "")
        assert ("oficial de consentimiento" if language == "es" else "consent officer") in detail
