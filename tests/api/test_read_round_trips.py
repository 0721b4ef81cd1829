"""A record read asks the database a few times, however many records the child has and
whatever the child has no rows of (consents, grants, views, overrides, withhold entries) — on
PostgreSQL each statement is a round trip, and reads and ``puente export`` decide one record
at a time — and answers exactly as before: a consent recorded or revoked counts at once, each
record reads its own latest body, a merged child reads through its survivor, and the owner is
told the decision it was told before."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from consent_support import (
    COMAR,
    PersonClient,
    adolescent_record,
    consent_document,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, changed, push, read
from sqlalchemy import event, select

from exchange import db
from exchange.api import record_reads
from exchange.child_duplicates import merge_children
from exchange.crypto import data_keyring
from exchange.disclosure import hard_rules
from exchange.records import Record, latest_bodies, latest_body

#: SELECTs of one read by the owner of a child's only record — six: the record, the child
#: (merged or not, in one), its records, the stamp of its consent rows, the record's latest
#: version, the reader's own address of it — and one to spare, so that one more lookup
#: elsewhere does not fail this test. Before, 13, and one more for each further record of the
#: child (the token is looked up on the driver's connection, not counted here).
MOST_SELECTS = 7


@contextmanager
def selects(app: Flask) -> Iterator[list[str]]:
    """The SELECT statements run while the block runs."""
    seen: list[str] = []
    engine = db.database(app).engine

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def push_ok(client: FlaskClient, agency: AgencyClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = push(client, agency, body)
    assert answer.status_code in (200, 201), answer.get_json()
    return dict(answer.get_json())


def with_case_number(
    local_id: str, child_id: str | None, case_number: str, *, linked: bool = True
) -> dict[str, Any]:
    """The typical adolescent's record under another case number; not ``linked``: without the
    identifiers that would link it to her child (a new child)."""
    body = adolescent_record(local_id)
    body["data"] = changed(body["data"], case_number)
    if not linked:
        child = body["data"]["child"]
        child["identifiers"] = [
            i for i in child["identifiers"] if i["type"] not in ("curp", "unhcr_individual")
        ]
    if child_id is not None:
        body["child_id"] = child_id
    return body


def test_a_read_asks_the_same_few_times_however_many_records_the_child_has(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    first = push_ok(client, owner, with_case_number("EXP-1", None, "CASO-1"))
    read(client, owner, first["record_id"])  # the token's first use is looked up once
    with selects(app) as alone:
        assert read(client, owner, first["record_id"]).status_code == 200
    for number in range(2, 6):
        push_ok(client, owner, with_case_number(f"EXP-{number}", first["child_id"], f"C-{number}"))
    with selects(app) as among_five:
        answer = read(client, owner, first["record_id"])
    assert answer.status_code == 200
    assert answer.get_json()["data"]["case"]["case_number"] == "CASO-1"
    assert len(alone) <= MOST_SELECTS, alone
    # The child's five records: their latest versions in one statement, not one each.
    assert len(among_five) == len(alone), among_five


#: The tables of what the engine weighs about a child, besides its records.
INPUT_TABLES = ("consent", "access_grant", "child_view", "emergency_override", "withhold_entry")


def listed_tables(statements: list[str]) -> set[str]:
    """The input tables whose rows ``statements`` list (the stamp only counts them)."""
    return {
        table
        for table in INPUT_TABLES
        for statement in statements
        if statement.lstrip().startswith(f"SELECT {table}.id,")
    }


def test_no_table_the_stamp_counted_empty_is_listed(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    pushed: dict[str, Any],
    officer: PersonClient,
) -> None:
    with selects(app) as seen:
        assert read(client, owner, pushed["record_id"]).status_code == 200
    assert listed_tables(seen) == set()
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(COMAR, actions=["read"], purposes=["asylum_procedure"]),
    )
    with selects(app) as seen:
        assert read(client, owner, pushed["record_id"]).status_code == 200
    # The stamp changed: the child is worked out again, its consents listed, nothing else.
    assert listed_tables(seen) == {"consent"}


def test_a_consent_recorded_or_revoked_counts_for_the_very_next_read(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> None:
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    record_id = pushed["record_id"]
    assert read(client, comar, record_id, purpose="asylum_procedure").status_code == 404
    document = consent_document(
        COMAR, actions=["read"], purposes=["asylum_procedure"], categories=["identity"]
    )
    consent = record_consent(client, officer, pushed["child_id"], document)
    permitted = read(client, comar, record_id, purpose="asylum_procedure")
    assert permitted.status_code == 200, permitted.get_json()
    assert permitted.get_json()["decision"]["consent_ids"] == [consent["id"]]
    assert permitted.get_json()["decision"]["categories"] == ["identity"]
    revoked = client.post(
        f"/v1/consents/{consent['id']}/revoke",
        json={"reason": "La niña lo pidió."},
        headers=officer.headers,
    )
    assert revoked.status_code == 200, revoked.get_json()
    assert read(client, comar, record_id, purpose="asylum_procedure").status_code == 404


def test_each_record_reads_its_own_latest_body(client: FlaskClient, owner: AgencyClient) -> None:
    first = push_ok(client, owner, with_case_number("EXP-1", None, "CASO-1"))
    child_id = first["child_id"]
    second = push_ok(client, owner, with_case_number("EXP-2", child_id, "CASO-2"))
    third = push_ok(client, owner, with_case_number("EXP-3", child_id, "CASO-3"))
    ids = {
        first["record_id"]: "CASO-1",
        second["record_id"]: "CASO-2",
        third["record_id"]: "CASO-3",
    }

    def listed() -> dict[str, tuple[int, str]]:
        answer = client.get(
            f"/v1/children/{child_id}/records?purpose=case_management", headers=owner.headers
        )
        assert answer.status_code == 200
        return {
            row["record_id"]: (row["version"], row["data"]["case"]["case_number"])
            for row in answer.get_json()["records"]
        }

    assert listed() == {record_id: (1, number) for record_id, number in ids.items()}
    for record_id, number in ids.items():
        assert read(client, owner, record_id).get_json()["data"]["case"]["case_number"] == number
    # A new version of one record: the next read of any of them has it, the others as they were.
    push_ok(client, owner, with_case_number("EXP-2", child_id, "CASO-2-B"))
    assert read(client, owner, first["record_id"]).get_json()["version"] == 1
    newer = read(client, owner, second["record_id"]).get_json()
    assert (newer["version"], newer["data"]["case"]["case_number"]) == (2, "CASO-2-B")
    assert listed()[second["record_id"]] == (2, "CASO-2-B")
    assert listed()[third["record_id"]] == (1, "CASO-3")


def test_a_stale_record_reads_the_version_it_names(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    first = push_ok(client, owner, with_case_number("EXP-1", None, "CASO-1"))
    with app.app_context(), db.database(app).sessions() as session:
        stale = session.scalars(select(Record).where(Record.id == first["record_id"])).one()
        session.expunge(stale)
        push_ok(client, owner, with_case_number("EXP-1", first["child_id"], "CASO-1-B"))
        keyring = data_keyring(app)
        [(record_id, body)] = latest_bodies(session, keyring, [stale]).items()
        assert record_id == stale.id and body.version.version == stale.latest_version == 1
        assert body.data == latest_body(session, keyring, stale).data
        assert body.data["case"]["case_number"] == "CASO-1"
        fresh = session.get(Record, first["record_id"])
        assert fresh is not None
        assert latest_bodies(session, keyring, [fresh])[fresh.id].version.version == 2
        assert latest_bodies(session, keyring, []) == {}


def test_a_merged_child_reads_through_its_survivor(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    kept = push_ok(client, owner, with_case_number("EXP-1", None, "CASO-1", linked=False))
    gone = push_ok(client, owner, with_case_number("EXP-2", None, "CASO-2", linked=False))
    assert kept["child_id"] != gone["child_id"]
    with app.app_context(), db.database(app).sessions() as session:
        merge_children(session, kept["child_id"], gone["child_id"], reason="la misma niña")
        session.commit()
    for record in (kept, gone):
        answer = read(client, owner, record["record_id"])
        assert answer.status_code == 200
        assert answer.get_json()["child_id"] == kept["child_id"]
    for child_id in (kept["child_id"], gone["child_id"]):
        listed = client.get(
            f"/v1/children/{child_id}/records?purpose=case_management", headers=owner.headers
        ).get_json()
        assert listed["child_id"] == kept["child_id"]
        assert {row["record_id"] for row in listed["records"]} == {
            kept["record_id"],
            gone["record_id"],
        }
    unknown = client.get(
        "/v1/children/nna_000000000000000000000000/records?purpose=case_management",
        headers=owner.headers,
    )
    assert unknown.get_json()["records"] == []


def without_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    never: Callable[..., bool] = lambda *_args: False  # noqa: E731
    monkeypatch.setattr(record_reads, "_owner_told_alike", never)


def told(answer: Any) -> dict[str, Any]:
    decision = copy.deepcopy(answer.get_json()["decision"])
    decision.pop("id")
    return dict(decision)


def test_the_owner_is_told_the_decision_as_it_was(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    pushed: dict[str, Any],
    officer: PersonClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The owner (Chiapas DIF, a child-protection agency of the child's state) acts for the
    # child too: told as a holder, it hears what it heard when its standing was worked out.
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(COMAR, actions=["read"], purposes=["asylum_procedure"]),
    )
    record_id = pushed["record_id"]
    purposes = ("case_management", "asylum_procedure", "statistics")
    quick = {purpose: told(read(client, owner, record_id, purpose=purpose)) for purpose in purposes}
    without_shortcut(monkeypatch)
    worked_out = {
        purpose: told(read(client, owner, record_id, purpose=purpose)) for purpose in purposes
    }
    assert quick == worked_out
    assert quick["case_management"]["basis"] == "originating_agency"


def test_a_hard_rule_about_the_child_still_asks_how_the_reader_stands() -> None:
    from consent import Reason

    about = next(
        rule
        for rule in hard_rules()
        if rule.child_international_protection or rule.actor_from_country_of_origin
    )
    other = next(
        rule
        for rule in hard_rules()
        if not (rule.child_international_protection or rule.actor_from_country_of_origin)
    )

    def reason(code: str, ref: str | None) -> Reason:
        return Reason(code, "deny", ("health",), "", "", ref)

    assert record_reads._about_the_child(reason("hard_rule", about.id))
    assert record_reads._about_the_child(reason("hard_rule", "regla-que-ya-no-existe"))
    assert not record_reads._about_the_child(reason("hard_rule", other.id))
    assert not record_reads._about_the_child(reason("consent", "cns_1"))
