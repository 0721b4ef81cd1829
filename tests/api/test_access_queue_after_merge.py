"""The decision queues follow a merge of two children (docs/consent.md §8.5): a request waits "in
the queue of the consent officers whose jurisdiction covers the child's records now", and the
queue shows what ``GET /v1/access-requests/{id}`` would show. After ``puente children merge A
B`` the child is one, with the records of both: the officers of every state holding one of
them see the requests about A and about B alike — pending and decided — as they see each one
alone, and so the reviewers of the emergency overrides. A merge of the survivor in turn (A
into C) carries them on."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from consent_support import (
    CLINIC,
    PersonClient,
    add_person_client,
    adolescent_record,
    approve,
    consent_officer,
    legal_representative,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, push

from exchange import db
from exchange.child_duplicates import merge_children

NUEVO_LEON = "mx.nl.dif"
TAPACHULA = "mx.chp.tapachula.dif"
VERACRUZ = "mx.ver.dif"
NATIONAL = "mx.fed.pfpnna"


def push_without_curp(client: FlaskClient, agency: AgencyClient, local_id: str) -> str:
    """The typical adolescent's record without her CURP (a new child, not linked by it); her
    child id."""
    body = copy.deepcopy(adolescent_record(local_id))
    child = body["data"]["child"]
    child["identifiers"] = [i for i in child["identifiers"] if i["type"] != "curp"]
    answer = push(client, agency, body)
    assert answer.status_code == 201, answer.get_json()
    return str(answer.get_json()["child_id"])


def ask(client: FlaskClient, lawyer: PersonClient, child_id: str) -> str:
    body = {
        "child_id": child_id,
        "purpose": "legal_representation",
        "categories": ["identity", "legal_status"],
        "until": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
    }
    answer = client.post("/v1/access-requests", json=body, headers=lawyer.headers)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["status"] == "pending"
    return str(answer.get_json()["id"])


def queue(client: FlaskClient, officer: PersonClient, status: str = "pending") -> list[str]:
    listed = client.get(f"/v1/access-requests?status={status}", headers=officer.headers)
    assert listed.status_code == 200, listed.get_json()
    return [row["id"] for row in listed.get_json()["access_requests"]]


def seen_alone(client: FlaskClient, officer: PersonClient, request_id: str) -> int:
    answer = client.get(f"/v1/access-requests/{request_id}", headers=officer.headers)
    return answer.status_code


def merge(app: Flask, into: str, merged: str) -> None:
    """What ``puente children merge INTO MERGED --reason …`` does."""
    with app.app_context(), db.database(app).sessions() as session:
        merge_children(session, into, merged, reason="la misma niña")
        session.commit()


def state(app: Flask, agency_id: str, jurisdiction: str, **extra: Any) -> AgencyClient:
    return add_agency(app, agency_id, jurisdiction=jurisdiction, **extra)


def test_the_queues_follow_a_merge_and_a_merge_of_the_survivor(
    app: Flask, client: FlaskClient
) -> None:
    nuevo_leon = state(app, NUEVO_LEON, "19")
    tapachula = state(app, TAPACHULA, "07089", level="municipal", kind="municipal_dif")
    veracruz = state(app, VERACRUZ, "30")
    add_agency(app, NATIONAL, jurisdiction="00", kind="federal_child_protection")
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    officers = {
        "nl": consent_officer(app, "co-nl", NUEVO_LEON),
        "tap": consent_officer(app, "co-tap", TAPACHULA),
        "ver": consent_officer(app, "co-ver", VERACRUZ),
        "fed": consent_officer(app, "co-fed", NATIONAL),
    }
    lawyers = [legal_representative(app, "lic-ana"), legal_representative(app, "lic-beto")]

    a = push_without_curp(client, nuevo_leon, "NL-1")
    b = push_without_curp(client, tapachula, "TAP-1")
    assert a != b
    about_a = ask(client, lawyers[0], a)
    about_b = [ask(client, lawyer, b) for lawyer in lawyers]
    unknown = ask(client, lawyers[0], "nna_00000000000000000000")
    assert queue(client, officers["nl"]) == [about_a]
    assert queue(client, officers["tap"]) == about_b

    merge(app, a, b)
    everything = [about_a, *about_b]
    for name in ("nl", "tap"):
        # The queue shows what each request read alone shows: all of them, to each.
        assert queue(client, officers[name]) == everything, name
        assert [seen_alone(client, officers[name], i) for i in everything] == [200] * 3
    assert queue(client, officers["ver"]) == []
    # A request about an id the hub never issued reaches no officer, a national one neither.
    assert queue(client, officers["fed"]) == everything
    assert unknown not in queue(client, officers["fed"])

    # Decided by Tapachula (whose record is B's): in the granted queue of both states.
    approve(client, officers["tap"], about_a)
    approve(client, officers["nl"], about_b[0])
    for name in ("nl", "tap"):
        assert queue(client, officers[name], "granted") == [about_b[0], about_a], name
        assert queue(client, officers[name]) == [about_b[1]], name

    # A merged into C (B, merged into A, now points at C too): Veracruz, holding C's record,
    # sees them all, and so do the states holding A's and B's records, still C's.
    c = push_without_curp(client, veracruz, "VER-1")
    about_c = ask(client, lawyers[1], c)
    merge(app, c, a)
    for name in ("nl", "tap", "ver"):
        assert queue(client, officers[name]) == [about_b[1], about_c], name
        assert queue(client, officers[name], "granted") == [about_b[0], about_a], name
        assert seen_alone(client, officers[name], about_b[1]) == 200


def test_the_override_queue_follows_a_merge(app: Flask, client: FlaskClient) -> None:
    """An emergency override opened on A waits for the reviewers of the states of every record
    of the child A is now, including those of a child merged into it later."""
    nuevo_leon = state(app, NUEVO_LEON, "19")
    tapachula = state(app, TAPACHULA, "07089", level="municipal", kind="municipal_dif")
    opener = add_person_client(
        app, "ov-nl", NUEVO_LEON, ["override_officer"], ["override", "records:read"]
    )
    reviewer = consent_officer(app, "co-tap", TAPACHULA)
    a = push_without_curp(client, nuevo_leon, "NL-1")
    b = push_without_curp(client, tapachula, "TAP-1")
    opened = client.post(
        "/v1/overrides",
        json={
            "child_id": a,
            "basis_code": "medical_emergency",
            "justification": "Ingreso a urgencias inconsciente; se necesitan antecedentes "
            "médicos y el contacto de la madre.",
            "categories": ["health", "family"],
            "hours": 6,
        },
        headers=opener.headers,
    )
    assert opened.status_code == 201, opened.get_json()
    override_id = opened.get_json()["id"]

    def overrides() -> list[str]:
        listed = client.get("/v1/overrides", headers=reviewer.headers)
        assert listed.status_code == 200, listed.get_json()
        return [row["id"] for row in listed.get_json()["overrides"]]

    assert overrides() == []
    merge(app, a, b)
    assert client.get(f"/v1/overrides/{override_id}", headers=reviewer.headers).status_code == 200
    assert overrides() == [override_id]
