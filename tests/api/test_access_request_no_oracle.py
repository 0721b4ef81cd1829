"""``POST /v1/access-requests`` is no existence oracle (docs/consent.md §8.5): a request about a
child id the hub never issued is answered, kept, audited and followed exactly as one about a
child the requester has no basis for — the same status, answer and messages, in the same time —
and reaches no officer. Migration 0024 lets the request keep an id that names no child."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from consent_support import PersonClient, consent_officer, entries, honduran_consulate
from flask import Flask
from flask.testing import FlaskClient
from portal_support import logged_in, text_of
from records_support import add_agency
from sqlalchemy import MetaData, Table, inspect, select, update

import exchange.api.record_reads
from exchange import create_app, db
from exchange.consent_store import AccessRequestRow
from exchange.db import Base

UNKNOWN = "nna_00000000000000000000"
#: What differs from one request to another, whoever it is about.
PER_REQUEST = ("id", "child_id", "created_at", "decided_at", "audit_entry")


def ask(client: FlaskClient, requester: Any, child_id: str, **extra: Any) -> Any:
    body = {
        "child_id": child_id,
        "purpose": "legal_representation",
        "categories": ["identity"],
        "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        **extra,
    }
    return client.post("/v1/access-requests", json=body, headers=requester.headers)


def same_for_anyone(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what names this request (its ids and instants): what must not differ
    between a child that exists and one that does not."""
    seen = {key: value for key, value in answer.items() if key not in PER_REQUEST}
    seen["decision"] = {k: v for k, v in answer["decision"].items() if k != "id"}
    return seen


def asked_about_both(
    client: FlaskClient, requester: Any, child_id: str, **extra: Any
) -> tuple[Any, Any]:
    """The answers about a child that exists and about :data:`UNKNOWN`, asked alike (the same
    ``until``)."""
    extra.setdefault("until", (datetime.now(UTC) + timedelta(days=30)).isoformat())
    return ask(client, requester, child_id, **extra), ask(client, requester, UNKNOWN, **extra)


# -- 1. the same answer --------------------------------------------------------------------------


def test_an_unknown_child_is_answered_like_a_child_without_basis(
    client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    """No officer acts in the child's jurisdiction here, and nothing permits the lawyer: the
    request about the real child waits, and so does the one about an id never issued."""
    known, unknown = asked_about_both(client, lawyer, pushed["child_id"])
    assert (known.status_code, unknown.status_code) == (201, 201), unknown.get_json()
    assert known.get_json().keys() == unknown.get_json().keys()
    assert same_for_anyone(known.get_json()) == same_for_anyone(unknown.get_json())
    assert unknown.get_json()["status"] == "pending"
    assert unknown.get_json()["child_id"] == UNKNOWN


@pytest.mark.parametrize(
    ("purpose", "categories", "status"),
    [
        # Hard rules on who asks and why forbid every category: denied at once, for both.
        ("migration_procedure", ["family"], "denied"),
        ("statistics", ["identity"], "denied"),
        # Not every category: both wait.
        ("migration_procedure", ["identity", "family"], "pending"),
    ],
)
def test_a_hard_rule_answers_alike_whether_the_child_exists_or_not(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    purpose: str,
    categories: list[str],
    status: str,
) -> None:
    """The typical child seeks asylum: rules about that never show in the status, and an
    unknown id has no facts for them to look at, so both read the same."""
    consulate = honduran_consulate(app)
    known, unknown = asked_about_both(
        client, consulate, pushed["child_id"], purpose=purpose, categories=categories
    )
    assert (known.status_code, unknown.status_code) == (201, 201), unknown.get_json()
    assert [known.get_json()["status"], unknown.get_json()["status"]] == [status, status]
    assert same_for_anyone(known.get_json()) == same_for_anyone(unknown.get_json())
    outcomes = {
        entry["object"]["id"]: entry["outcome"] for entry in entries(app, "access_requested")
    }
    assert outcomes[known.get_json()["id"]] == outcomes[unknown.get_json()["id"]]


# -- 2. kept, followed, audited, in no queue -----------------------------------------------------


def test_the_unknown_request_is_kept_audited_and_reaches_no_officer(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    known, unknown = (
        answer.get_json() for answer in asked_about_both(client, lawyer, pushed["child_id"])
    )

    # Its requester follows it as any other.
    followed = client.get(f"/v1/access-requests/{unknown['id']}", headers=lawyer.headers)
    assert followed.status_code == 200
    assert followed.get_json() == {k: v for k, v in unknown.items() if k != "audit_entry"}

    # Audited as every request is: oversight sees the probing.
    [entry] = [e for e in entries(app, "access_requested") if e["object"]["id"] == unknown["id"]]
    assert entry["child_id"] == UNKNOWN and entry["reason_code"] == "pending"
    assert entry["outcome"] == "success"

    # No officer's queue holds it — neither the state's nor a national one's — and no officer
    # can decide it; the real child's request is in the state officer's queue.
    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    national = consent_officer(app, "co-fed-001", "mx.fed.pfpnna")
    for deciding in (officer, national):
        queue = client.get("/v1/access-requests", headers=deciding.headers)
        assert queue.status_code == 200
        listed = [found["id"] for found in queue.get_json()["access_requests"]]
        assert known["id"] in listed and unknown["id"] not in listed
        decided = client.post(
            f"/v1/access-requests/{unknown['id']}/decision",
            json={"approve": False, "reason": "No procede."},
            headers=deciding.headers,
        )
        assert decided.status_code == 404
    assert all(e["object"]["id"] != unknown["id"] for e in entries(app, "consents_read"))

    # The portal: the lawyer sees it waiting like the other; the officer's queue is without it.
    page = text_of(logged_in(app, lawyer.id).get("/requests?lang=en"))
    assert unknown["id"] in page and known["id"] in page
    queue_page = text_of(logged_in(app, officer.id).get("/requests?lang=en"))
    assert known["id"] in queue_page and unknown["id"] not in queue_page


def test_once_its_until_passes_it_reads_as_the_real_child_s_does(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    """With no officer to decide, a pending request stays pending past its ``until`` — for a
    child that exists as for one that does not."""
    known, unknown = (
        answer.get_json() for answer in asked_about_both(client, lawyer, pushed["child_id"])
    )
    past = datetime.now(UTC) - timedelta(days=1)
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            session.execute(
                update(AccessRequestRow)
                .where(AccessRequestRow.id.in_([known["id"], unknown["id"]]))
                .values(until=past)
            )
        session.close()
    later = [
        client.get(f"/v1/access-requests/{answer['id']}", headers=lawyer.headers).get_json()
        for answer in (known, unknown)
    ]
    assert [answer["status"] for answer in later] == ["pending", "pending"]
    assert same_for_anyone(later[0]) == same_for_anyone(later[1])


# -- 3. record ids ---------------------------------------------------------------------------------


def test_record_ids_that_are_not_the_child_s_are_kept_as_for_an_unknown_child(
    client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    """A record id that is not the child's is not refused (a grant covers only the child's
    records named, so it covers nothing): refusing it for a known child and not for an unknown
    one would be the same oracle. Only the shape is checked, for everyone alike."""
    asked = ["rec_000000000000000000000000", pushed["record_id"]]
    known, unknown = asked_about_both(client, lawyer, pushed["child_id"], record_ids=asked)
    assert (known.status_code, unknown.status_code) == (201, 201), unknown.get_json()
    assert known.get_json()["record_ids"] == unknown.get_json()["record_ids"] == sorted(asked)
    assert same_for_anyone(known.get_json()) == same_for_anyone(unknown.get_json())

    known, unknown = asked_about_both(client, lawyer, pushed["child_id"], record_ids=["rec 1"])
    assert (known.status_code, unknown.status_code) == (400, 400)
    assert known.get_json()["errors"] == unknown.get_json()["errors"]
    assert known.get_json()["errors"][0]["pointer"] == "/record_ids/0"


# -- 4. in even time -------------------------------------------------------------------------------


class _Clock:
    """Stands in for the ``time`` module of the floor's helper: real perf_counter, and the
    waits it is asked for recorded instead of slept."""

    def __init__(self) -> None:
        import time

        self.perf_counter = time.perf_counter
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_every_answer_waits_for_the_read_refusal_floor(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    pushed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deciding about a child with records costs time an unknown id does not: every answer —
    about either, and a refusal of the body — waits until READ_REFUSAL_FLOOR has passed since
    the request began (the helper child search uses)."""
    clock = _Clock()
    monkeypatch.setattr(exchange.api.record_reads, "time", clock)
    app.config["READ_REFUSAL_FLOOR"] = 30
    known, unknown = asked_about_both(client, lawyer, pushed["child_id"])
    malformed = ask(client, lawyer, pushed["child_id"], record_ids=["rec 1"])
    assert [r.status_code for r in (known, unknown, malformed)] == [201, 201, 400]
    assert len(clock.waits) == 3
    assert all(25 < wait <= 30 for wait in clock.waits), clock.waits


# -- 5. the migration ------------------------------------------------------------------------------


def test_0024_keeps_existing_requests_and_lets_a_request_name_an_unknown_child(
    tmp_path: Path, database_url: str
) -> None:
    """A hub at 0023 holding a request, its justification and the grant made on it (which
    SQLite's rebuild of the table must not lose) upgrades; afterwards a request may name an
    id that is no child's, and the column keeps its index."""
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": tmp_path / "instance", "DATABASE_URL": database_url}
    )
    engine = db.database(app).engine
    moment = datetime(2026, 11, 20, tzinfo=UTC)
    request = {
        "id": "acr_1",
        "child_id": "nna_aaaaaaaaaaaaaaaaaaaa",
        "requester_person": "lic-ana",
        "purpose": "legal_representation",
        "categories": ["identity"],
        "record_ids": [],
        "until": moment + timedelta(days=30),
        "jurisdictions": ["07"],
        "status": "granted",
        "decision": {"result": "deny"},
        "grant_id": "grt_1",
        "created_at": moment,
    }
    try:
        db.upgrade(app, "0023")
        with engine.begin() as connection:
            tables = MetaData()

            def table(name: str) -> Table:
                return Table(name, tables, autoload_with=connection)

            connection.execute(table("child").insert(), {"id": request["child_id"]})
            connection.execute(table("access_request").insert(), request)
            connection.execute(
                table("access_request_justification").insert(),
                {"request_id": "acr_1", "document_ciphertext": b"sealed", "data_key_id": "k1"},
            )
            connection.execute(
                table("access_grant").insert(),
                {
                    "id": "grt_1",
                    "child_id": request["child_id"],
                    "request_id": "acr_1",
                    "grantee_person": "lic-ana",
                    "document": {"purpose": "legal_representation"},
                    "until": moment + timedelta(days=30),
                    "created_at": moment,
                },
            )
        db.upgrade(app)
        with engine.begin() as connection:
            tables = MetaData()
            requests = Table("access_request", tables, autoload_with=connection)
            kept = connection.execute(select(requests)).mappings().one()
            assert {key: kept[key] for key in ("id", "child_id", "status", "categories")} == {
                key: request[key] for key in ("id", "child_id", "status", "categories")
            }
            grants = Table("access_grant", tables, autoload_with=connection)
            assert connection.execute(select(grants.c.request_id)).scalars().all() == ["acr_1"]
            sealed = Table("access_request_justification", tables, autoload_with=connection)
            assert connection.execute(select(sealed.c.document_ciphertext)).scalars().all() == [
                b"sealed"
            ]
            unknown = {**request, "id": "acr_2", "child_id": "nna_" + "0" * 76, "grant_id": None}
            connection.execute(requests.insert(), unknown)
            schema = inspect(connection)
            assert not any(
                key["referred_table"] == "child"
                for key in schema.get_foreign_keys("access_request")
            )
            assert any(
                index["column_names"] == ["child_id"]
                for index in schema.get_indexes("access_request")
            )
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_an_officer_reading_the_unknown_request_is_told_it_does_not_exist(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient
) -> None:
    """No officer acts for a child the hub does not know: 404, as outside the jurisdiction."""
    asked = ask(client, lawyer, UNKNOWN).get_json()
    read = client.get(f"/v1/access-requests/{asked['id']}", headers=officer.headers)
    assert read.status_code == 404


def test_disabling_the_requester_denies_the_unknown_request_too(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    """``puente person disable`` ends every pending request of the person, whatever child."""
    from exchange.people import disable_person

    asked = [ask(client, lawyer, child).get_json()["id"] for child in (pushed["child_id"], UNKNOWN)]
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            disable_person(session, lawyer.id)
        statuses = {
            row.id: (row.status, row.decision_reason)
            for row in session.scalars(select(AccessRequestRow))
        }
        session.close()
    assert statuses == {request: ("denied", "requester_disabled") for request in asked}
    denied = [e for e in entries(app, "access_denied") if e["object"]["id"] in asked]
    assert sorted(e["child_id"] for e in denied) == sorted([pushed["child_id"], UNKNOWN])
