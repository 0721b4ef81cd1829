"""Reading records: a purpose is required; the owning agency reads its own records; other
agencies read what the consent engine permits (tests/api/test_consent_reads.py); a caller that
does not know of a record gets the very 404 of a record that does not exist; every read is
audited with its purpose and decision."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import (
    PURPOSE,
    AgencyClient,
    add_agency,
    changed,
    envelope,
    example,
    execute,
    issue_token,
    push,
    read,
    rows,
)
from records_support import (
    share as shared,
)
from sqlalchemy import select, update

from exchange.audit_log import AuditEntry
from exchange.children import Child

OWNER = "mx.chp.dif"
OTHER = "mx.tab.dif"


@pytest.fixture
def other(app: Flask) -> AgencyClient:
    return add_agency(app, OTHER, jurisdiction="27")


@pytest.fixture
def record(client: FlaskClient, owner: AgencyClient) -> dict[str, Any]:
    answer = push(client, owner, envelope("EXP-1", example("typical")))
    assert answer.status_code == 201
    return dict(answer.get_json())


def audit_entry(app: Flask, entry_id: str) -> dict[str, Any]:
    [(entry,)] = rows(app, select(AuditEntry.entry).where(AuditEntry.id == entry_id))
    return dict(json.loads(entry))


def share(app: Flask, record_id: str, kind: str, status: str) -> None:
    shared(app, record_id, from_agency=OWNER, to=OTHER, kind=kind, status=status, purpose=PURPOSE)


def comparable(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k not in {"instance", "request_id"}}


def test_the_owner_reads_the_latest_version(
    app: Flask, client: FlaskClient, owner: AgencyClient, record: dict[str, Any]
) -> None:
    data = changed(example("typical"), "v2")
    second = push(client, owner, envelope("EXP-1", data)).get_json()
    response = read(client, owner, record["record_id"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["record_id"] == record["record_id"]
    assert body["version"] == 2
    assert body["child_id"] == record["child_id"]
    assert body["schema"] == "case-record/1"
    assert body["local_id"] == "EXP-1"
    assert body["owner"] == OWNER
    assert body["body_sha256"] == second["body_sha256"]
    assert body["pushed_at"]
    assert body["data"] == data
    decision = response.headers["Puente-Decision"]
    entry = audit_entry(app, decision)
    assert entry["action"] == "record_read"
    assert entry["outcome"] == "success"
    assert entry["purpose"] == PURPOSE
    assert entry["record_id"] == record["record_id"]
    assert entry["record_version"] == 2
    assert entry["decision"]["basis"] == "originating_agency"


@pytest.mark.parametrize("query", [{}, {"purpose": ""}, {"purpose": "curiosity"}])
def test_no_purpose_no_data(
    client: FlaskClient, owner: AgencyClient, record: dict[str, Any], query: dict[str, str]
) -> None:
    record_path = f"/v1/records/{record['record_id']}"
    child_path = f"/v1/children/{record['child_id']}/records"
    for path in (record_path, f"{record_path}/versions", child_path):
        response = client.get(path, query_string=query, headers=owner.headers)
        assert response.status_code == 400
        problem = response.get_json()
        assert problem["type"].endswith("/validation")
        assert problem["errors"][0]["parameter"] == "purpose"
        assert "data" not in problem


def test_other_agencies_get_the_404_of_a_missing_record(
    app: Flask, client: FlaskClient, other: AgencyClient, record: dict[str, Any]
) -> None:
    hidden = read(client, other, record["record_id"])
    missing = read(client, other, "rec_000000000000000000000000")
    assert hidden.status_code == missing.status_code == 404
    assert comparable(hidden.get_json()) == comparable(missing.get_json())
    assert hidden.headers.get("Puente-Decision") is None
    for path in ("versions",):
        assert (
            client.get(
                f"/v1/records/{record['record_id']}/{path}",
                query_string={"purpose": PURPOSE},
                headers=other.headers,
            ).status_code
            == 404
        )
    denied = rows(app, select(AuditEntry.entry).where(AuditEntry.outcome == "denied"))
    assert len(denied) == 2  # the refused reads of an existing record are on the log
    assert json.loads(denied[0][0])["actor"]["agency_id"] == OTHER


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("referral", "accepted"),
        ("transfer", "accepted"),
        ("referral", "pending"),
        ("referral", "rejected"),
    ],
)
def test_a_share_alone_opens_nothing_but_says_why(
    app: Flask,
    client: FlaskClient,
    other: AgencyClient,
    record: dict[str, Any],
    kind: str,
    status: str,
) -> None:
    # Every read by another agency is decided by the consent engine: a referral or transfer
    # row is not consent. The agency knows of the record, so it hears why it may not read it.
    share(app, record["record_id"], kind, status)
    response = read(client, other, record["record_id"])
    assert response.status_code == 403
    problem = response.get_json()
    assert problem["type"].endswith("/consent-denied")
    assert problem["decision"]["result"] == "deny"
    assert problem["decision"]["reasons"]
    entry = audit_entry(app, response.headers["Puente-Decision"])
    assert entry["outcome"] == "denied"
    assert entry["actor"]["agency_id"] == OTHER


def test_the_new_owner_after_a_transfer_reads_it(
    app: Flask, client: FlaskClient, other: AgencyClient, record: dict[str, Any]
) -> None:
    from exchange.records import Record

    execute(app, update(Record).values(owner_agency=OTHER))
    assert read(client, other, record["record_id"]).status_code == 200


def test_people_and_tokens_without_the_scope_do_not_read(
    app: Flask, client: FlaskClient, record: dict[str, Any]
) -> None:
    writer = issue_token(app, OWNER, ["records:write"])
    no_scope = client.get(
        f"/v1/records/{record['record_id']}",
        query_string={"purpose": PURPOSE},
        headers={"Authorization": f"Bearer {writer}"},
    )
    assert no_scope.status_code == 403
    person = issue_token(app, None, ["records:read"], person_id="lawyer-1")
    by_person = client.get(
        f"/v1/records/{record['record_id']}",
        query_string={"purpose": PURPOSE},
        headers={"Authorization": f"Bearer {person}"},
    )
    assert by_person.status_code == 404
    assert client.get(f"/v1/records/{record['record_id']}?purpose={PURPOSE}").status_code == 401


def test_versions_are_listed_without_content(
    app: Flask, client: FlaskClient, owner: AgencyClient, record: dict[str, Any]
) -> None:
    push(client, owner, envelope("EXP-1", changed(example("typical"), "v2")))
    response = client.get(
        f"/v1/records/{record['record_id']}/versions",
        query_string={"purpose": PURPOSE},
        headers=owner.headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert body["versions"][0]["body_sha256"] == record["body_sha256"]
    assert {v["pushed_by"] for v in body["versions"]} == {OWNER}
    assert "Ejemplo" not in response.get_data(as_text=True)
    entry = audit_entry(app, response.headers["Puente-Decision"])
    assert entry["action"] == "record_versions_listed"
    assert entry["purpose"] == PURPOSE


def test_a_childs_records_are_those_the_caller_may_read(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    other: AgencyClient,
    record: dict[str, Any],
) -> None:
    child_id = record["child_id"]
    mine = push(client, owner, envelope("EXP-2", changed(example(), "2"), child_id=child_id))
    # The other agency may not know of the child, so neither its child_id nor the CURP both
    # records carry links its record to her: a person merges the two children.
    theirs = push(client, other, envelope("T-1", changed(example("typical"), "3")))
    assert theirs.status_code == 201
    assert theirs.get_json()["child_id"] != child_id
    execute(
        app,
        update(Child).where(Child.id == theirs.get_json()["child_id"]).values(merged_into=child_id),
    )
    response = client.get(
        f"/v1/children/{child_id}/records",
        query_string={"purpose": PURPOSE},
        headers=owner.headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["child_id"] == child_id
    listed = {r["record_id"] for r in body["records"]}
    assert listed == {record["record_id"], mine.get_json()["record_id"]}
    assert all("data" in r for r in body["records"])
    decisions = response.headers["Puente-Decision"].split(", ")
    assert len(decisions) == 2
    assert {audit_entry(app, d)["record_id"] for d in decisions} == listed


def test_a_childs_records_follow_merges(
    app: Flask, client: FlaskClient, owner: AgencyClient, record: dict[str, Any]
) -> None:
    duplicate = push(client, owner, envelope("EXP-9", example())).get_json()
    assert duplicate["child_id"] != record["child_id"]
    execute(
        app,
        update(Child)
        .where(Child.id == duplicate["child_id"])
        .values(merged_into=record["child_id"]),
    )
    for asked in (record["child_id"], duplicate["child_id"]):
        body = client.get(
            f"/v1/children/{asked}/records",
            query_string={"purpose": PURPOSE},
            headers=owner.headers,
        ).get_json()
        assert {r["record_id"] for r in body["records"]} == {
            record["record_id"],
            duplicate["record_id"],
        }
        assert {r["child_id"] for r in body["records"]} == {record["child_id"]}
        assert body["child_id"] == record["child_id"]  # the child the id asked for is now
    # Reading the merged duplicate's record shows the child it now belongs to.
    assert read(client, owner, duplicate["record_id"]).get_json()["child_id"] == record["child_id"]


def test_an_unknown_or_invisible_child_is_an_empty_list(
    client: FlaskClient, other: AgencyClient, record: dict[str, Any]
) -> None:
    for child_id in (record["child_id"], "nna_00000000000000000000"):
        response = client.get(
            f"/v1/children/{child_id}/records",
            query_string={"purpose": PURPOSE},
            headers=other.headers,
        )
        assert response.status_code == 200
        assert response.get_json() == {"child_id": child_id, "records": []}
        assert "Puente-Decision" not in response.headers


def test_a_refused_read_takes_the_floor_whether_the_record_exists_or_not(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    other: AgencyClient,
    record: dict[str, Any],
) -> None:
    """Deciding and auditing the refused read of a record that exists costs time an unknown id
    does not: every refusal takes at least READ_REFUSAL_FLOOR, a permitted read does not wait."""
    app.config["READ_REFUSAL_FLOOR"] = 0.3

    def timed(agency: AgencyClient, path: str) -> tuple[int, float]:
        started = time.perf_counter()
        response = client.get(path, query_string={"purpose": PURPOSE}, headers=agency.headers)
        return response.status_code, time.perf_counter() - started

    refusals = [
        timed(other, f"/v1/records/{record['record_id']}"),
        timed(other, "/v1/records/rec_000000000000000000000000"),
        timed(other, f"/v1/records/{record['record_id']}/versions"),
        timed(other, f"/v1/children/{record['child_id']}/records"),
        timed(other, "/v1/children/nna_00000000000000000000/records"),
    ]
    # Referring or transferring a record the caller does not own: the same 404, the same floor.
    for record_id in (record["record_id"], "rec_000000000000000000000000"):
        for route, body in (
            ("referrals", {"to": OWNER, "purpose": PURPOSE, "categories": ["health"]}),
            ("transfers", {"to": OWNER, "reason": "Cambio de entidad."}),
        ):
            started = time.perf_counter()
            response = client.post(
                f"/v1/records/{record_id}/{route}", json=body, headers=other.headers
            )
            refusals.append((response.status_code, time.perf_counter() - started))
    assert [status for status, _ in refusals] == [404, 404, 404, 200, 200] + [404] * 4
    assert all(seconds >= 0.3 for _, seconds in refusals), refusals
    # A permitted read never waits the floor: the fastest of three (a stall of the machine or
    # of the database's disk can slow any one of them) is under it.
    permitted = [timed(owner, f"/v1/records/{record['record_id']}") for _ in range(3)]
    assert {status for status, _ in permitted} == {200}
    assert min(seconds for _, seconds in permitted) < 0.3, permitted
