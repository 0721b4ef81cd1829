"""The emergency-override queue pages through every override (``GET /v1/overrides`` with
``limit``, ``after``, ``next_after`` and ``total``) — it used to list the 500 oldest and say
nothing of the others, so once there were more, oversight and the reviewers never saw the newest
reviewed ones. Open ones come oldest first, reviewed ones newest review first; who sees which is
as before (oversight all, a reviewer those of their jurisdiction they may review), counted and
paged after that choice; a repeated parameter or an unknown ``after`` is a 400."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    PROCURADURIA,
    PersonClient,
    add_person_client,
    consent_officer,
    procuraduria,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, example, push
from sqlalchemy import insert

from exchange import db
from exchange.consent_store import OverrideRow

#: More than the 500 the queue used to stop at.
MANY = 505
NUEVO_LEON = "mx.nl.procuraduria"


@pytest.fixture
def hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def people(app: Flask) -> dict[str, Any]:
    """The opener (Procuraduría Chiapas), a federal reviewer (PFPNNA), a Nuevo León officer,
    the opener's colleague and oversight (CNDH)."""
    procuraduria(app)
    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    add_agency(app, NUEVO_LEON, jurisdiction="19", kind="state_dif")
    return {
        "opener": add_person_client(
            app, "ov-chp-001", PROCURADURIA, ["override_officer"], ["override", "records:read"]
        ),
        "reviewer": consent_officer(app, "co-fed-001", "mx.fed.pfpnna"),
        "elsewhere": consent_officer(app, "co-nl-001", NUEVO_LEON),
        "colleague": consent_officer(app, "co-chp-001"),
        "oversight": add_agency(
            app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
        ),
    }


@pytest.fixture
def model(client: FlaskClient, owner: AgencyClient, people: dict[str, Any]) -> str:
    """An override opened through the API on a Chiapas child, that the copies repeat."""
    child_id = push_child(client, owner)["child_id"]
    response = client.post(
        "/v1/overrides",
        json={
            "child_id": child_id,
            "basis_code": "medical_emergency",
            "justification": "Ingreso a urgencias inconsciente; se necesitan antecedentes "
            "médicos y el contacto de la madre.",
            "categories": ["health", "family"],
            "hours": 6,
        },
        headers=people["opener"].headers,
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def copies(
    app: Flask,
    model_id: str,
    count: int,
    start: datetime,
    prefix: str,
    each: Callable[[int], dict[str, Any]] = lambda n: {},
    **changes: Any,
) -> list[str]:
    """``count`` copies of the override ``model_id`` made straight in the database (for speed),
    opened one second apart from ``start``, with ``changes`` and ``each(n)``; their ids."""
    with app.app_context():
        session = db.session()
        row = session.get(OverrideRow, model_id)
        assert row is not None
        columns = {c.key: getattr(row, c.key) for c in OverrideRow.__table__.columns}
        ids = [f"ovr_{prefix}{n:06d}" for n in range(count)]
        made = []
        for n in range(count):
            starts = start + timedelta(seconds=n)
            made.append(
                {
                    **columns,
                    "id": ids[n],
                    "starts_at": starts,
                    "ends_at": starts + timedelta(hours=6),
                    **changes,
                    **each(n),
                }
            )
        session.execute(insert(OverrideRow), made)
        session.commit()
    return ids


def queue(client: FlaskClient, caller: Any, language: str = "en", **query: Any) -> Any:
    return client.get(
        "/v1/overrides",
        query_string=query,
        headers={**caller.headers, "Accept-Language": language},
    )


def listed(client: FlaskClient, caller: Any, **query: Any) -> dict[str, Any]:
    response = queue(client, caller, **query)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def every_page(client: FlaskClient, caller: Any, **query: Any) -> Iterator[dict[str, Any]]:
    after = None
    while True:
        page = listed(client, caller, **query, **({"after": after} if after else {}))
        yield page
        after = page["next_after"]
        if after is None:
            return


def ids(page: dict[str, Any]) -> list[str]:
    return [found["id"] for found in page["overrides"]]


def everything(client: FlaskClient, caller: Any, **query: Any) -> list[str]:
    return [found for page in every_page(client, caller, **query) for found in ids(page)]


def test_oversight_pages_through_every_open_override_oldest_first(
    app: Flask,
    client: FlaskClient,
    people: dict[str, Any],
    model: str,
    hour_ago: datetime,
) -> None:
    older = copies(app, model, MANY, hour_ago - timedelta(days=1), "old")
    # Opened at the same instant: the id orders them.
    tied = copies(app, model, 3, hour_ago, "tie", starts_at=hour_ago)
    expected = [*older, *tied, model]
    oversight = people["oversight"]

    first = listed(client, oversight)
    assert first["status"] == "open" and first["total"] == len(expected)
    assert ids(first) == expected[:100] and first["next_after"] == expected[99]

    pages = list(every_page(client, oversight, limit=500))
    assert [len(page["overrides"]) for page in pages] == [500, len(expected) - 500]
    assert {page["total"] for page in pages} == {len(expected)}
    assert [found for page in pages for found in ids(page)] == expected
    # A page exactly full is the last when nothing follows.
    last = listed(client, oversight, limit=2, after=expected[-3])
    assert ids(last) == expected[-2:] and last["next_after"] is None
    # The federal reviewer (another agency than the opener's, jurisdiction 00) too.
    assert everything(client, people["reviewer"], limit=300) == expected


def test_reviewed_overrides_come_newest_review_first(
    app: Flask,
    client: FlaskClient,
    people: dict[str, Any],
    model: str,
    hour_ago: datetime,
) -> None:
    """The last reviewed was opened last too: listed oldest first and stopped at 500, as it
    was, nobody ever saw it."""
    reviewed = copies(
        app,
        model,
        MANY,
        hour_ago,
        "rev",
        lambda n: {
            "starts_at": hour_ago - timedelta(minutes=n),
            "reviewed_at": hour_ago - timedelta(hours=n),
            "upheld": n % 2 == 0,
        },
    )
    # Reviewed at the same instant, before every other: the id orders them, the greater first.
    long_ago = hour_ago - timedelta(days=60)
    same = copies(app, model, 2, long_ago, "same", reviewed_at=long_ago, upheld=True)
    expected = [*reviewed, *reversed(same)]

    for caller in (people["oversight"], people["reviewer"]):
        first = listed(client, caller, status="reviewed")
        assert first["status"] == "reviewed" and first["total"] == len(expected)
        assert ids(first)[0] == reviewed[0]
        assert {found["status"] for found in first["overrides"]} == {"reviewed"}
        assert everything(client, caller, status="reviewed", limit=250) == expected
    # The open queue holds only the model.
    assert listed(client, people["oversight"])["total"] == 1


def test_an_override_reviewed_meanwhile_still_marks_the_place(
    app: Flask,
    client: FlaskClient,
    people: dict[str, Any],
    model: str,
    hour_ago: datetime,
) -> None:
    reviewer = people["reviewer"]
    waiting = [*copies(app, model, 4, hour_ago, "wait"), model]
    first = listed(client, reviewer, limit=2)
    assert ids(first) == waiting[:2] and first["total"] == 5
    done = client.post(
        f"/v1/overrides/{first['next_after']}/review",
        json={"upheld": True, "reason": "Urgencia acreditada por el hospital."},
        headers=reviewer.headers,
    )
    assert done.status_code == 200, done.get_json()
    rest = listed(client, reviewer, limit=2, after=first["next_after"])
    assert ids(rest) == waiting[2:4] and rest["total"] == 4
    # An open override is no place in the reviewed list.
    refused = queue(client, reviewer, status="reviewed", after=waiting[0])
    assert refused.status_code == 400
    assert refused.get_json()["errors"][0]["pointer"] == "/query/after"
    assert ids(listed(client, reviewer, status="reviewed")) == [waiting[1]]


def test_a_reviewer_pages_only_through_what_they_may_review(
    app: Flask,
    client: FlaskClient,
    people: dict[str, Any],
    model: str,
    hour_ago: datetime,
) -> None:
    """Chosen before counting and paging: overrides of another state's children, or opened by
    the reviewer or their agency, are neither on a page nor in ``total``."""
    nuevo_leon_dif = add_agency(app, "mx.nl.dif", jurisdiction="19")
    other = envelope("EXP-2", example("venezuelan_adolescent_transferred_between_states"))
    answer = push(client, nuevo_leon_dif, other)
    assert answer.status_code == 201, answer.get_json()
    theirs = answer.get_json()["child_id"]
    start = hour_ago - timedelta(days=2)
    # Chiapas's, many and older than every Nuevo León one.
    chiapas = copies(app, model, MANY, start, "chp")
    later = start + timedelta(days=1)

    def nuevo_leon(prefix: str, count: int, **opener: Any) -> list[str]:
        return copies(app, model, count, later, prefix, child_id=theirs, **opener)

    mine = nuevo_leon("nla", 7, opened_by_agency="mx.nl.dif", opened_by_person=None)
    # Opened by no agency or person the hub knows now (NULL): not the reviewer's either.
    nobody = nuevo_leon("nlb", 2, opened_by_agency=None, opened_by_person=None)
    own_agency = nuevo_leon("nlc", 3, opened_by_agency=NUEVO_LEON, opened_by_person="x-1")
    themselves = nuevo_leon("nld", 3, opened_by_agency="mx.nl.dif", opened_by_person="co-nl-001")
    expected = sorted([*mine, *nobody], key=lambda i: (int(i[-6:]), i))
    elsewhere = people["elsewhere"]

    first = listed(client, elsewhere, limit=3)
    assert first["total"] == len(expected) == 9
    assert ids(first) == expected[:3] and first["next_after"] == expected[2]
    assert everything(client, elsewhere, limit=4) == expected
    for hidden in (chiapas[0], own_agency[0], themselves[0], "ovr_000000000000000000000000"):
        refused = queue(client, elsewhere, after=hidden)
        assert refused.status_code == 400, hidden
        assert refused.get_json()["errors"][0]["pointer"] == "/query/after"

    # The opener's colleague reviews none of their agency's; the federal reviewer all;
    # oversight every one.
    assert listed(client, people["colleague"])["total"] == 0
    assert queue(client, people["colleague"], after=chiapas[0]).status_code == 400
    every = 1 + MANY + len(mine) + len(nobody) + len(own_agency) + len(themselves)
    assert listed(client, people["reviewer"])["total"] == every
    assert listed(client, people["oversight"])["total"] == every


def test_parameters_are_one_each_and_checked(
    client: FlaskClient, people: dict[str, Any], model: str
) -> None:
    reviewer: PersonClient = people["reviewer"]
    for language, words in (("en", "was given 2 times"), ("es", "se indicó 2 veces")):
        twice = client.get(
            "/v1/overrides?status=open&status=reviewed",
            headers={**reviewer.headers, "Accept-Language": language},
        )
        assert twice.status_code == 400
        [error] = twice.get_json()["errors"]
        assert error["pointer"] == "/query/status" and words in error["message"]

    for limit in ("0", "501", "ten", ""):
        refused = queue(client, reviewer, limit=limit)
        assert refused.status_code == 400, limit
        assert refused.get_json()["errors"][0]["pointer"] == "/query/limit"
    assert queue(client, reviewer, status="pending").status_code == 400

    for language, words in (
        ("es", "no es un acceso de emergencia de esta lista"),
        ("en", "is not an emergency override in this list"),
    ):
        refused = queue(client, reviewer, language, after="ovr_000000000000000000000000")
        assert refused.status_code == 400
        problem = refused.get_json()
        assert words in problem["detail"]
        [error] = problem["errors"]
        assert error["pointer"] == "/query/after"
    whole = listed(client, reviewer, limit=500)
    assert ids(whole) == [model] and whole["total"] == 1 and whole["next_after"] is None
