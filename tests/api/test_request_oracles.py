"""What the answer to ``POST /v1/access-requests`` may not tell: the status (granted, pending,
denied at once), the message and the decision as told depend on the request and on what the
requester may hear, never on facts about the child the requester may not learn — that the
child seeks asylum, or that a withhold entry names the requester."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    OWNER,
    adolescent_record,
    consent_officer,
    honduran_consulate,
    legal_representative,
    procuraduria,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, push


def without_asylum(local_id: str) -> dict[str, Any]:
    """The typical example's Honduran girl as another child who never asked for asylum: no
    asylum proceedings, no COMAR case number, a migration file regularised without a claim."""
    record = copy.deepcopy(adolescent_record(local_id))
    data = record["data"]
    del data["asylum_proceedings"]
    data["child"]["names"] = {"given_names": "Otra", "first_surname": "Ejemplo"}
    data["child"]["identifiers"] = [
        identifier
        for identifier in data["child"]["identifiers"]
        if identifier["type"] not in ("comar_case", "curp")
    ]
    for proceeding in data["migration_proceedings"]:
        proceeding["status"] = "regularized"
    return record


def ask(
    client: FlaskClient, requester: Any, child_id: str, purpose: str, categories: list[str]
) -> Any:
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": purpose,
            "categories": categories,
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=requester.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def as_seen(answer: dict[str, Any]) -> dict[str, Any]:
    """What a requester reads of an answer's outcome: its status, message and the decision as
    told to it (without the ids that differ from request to request)."""
    told = {k: v for k, v in answer["decision"].items() if k not in ("id", "consent_ids")}
    return {"status": answer["status"], "message": answer["message"], "decision": told}


@pytest.fixture
def owner(app: Flask) -> AgencyClient:
    return add_agency(app, OWNER)


@pytest.mark.parametrize(
    ("purpose", "categories", "status"),
    [
        # A rule about the request alone forbids family: denied at once, asylum or not.
        ("migration_procedure", ["family"], "denied"),
        ("statistics", ["family"], "denied"),
        # Identity is refused by the asylum rule for one child and by nothing permitting it
        # for the other: both wait for an officer.
        ("migration_procedure", ["identity", "family"], "pending"),
        ("family_tracing_reunification", ["identity"], "pending"),
    ],
)
def test_a_consulate_gets_the_same_answer_whether_or_not_the_child_seeks_asylum(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    purpose: str,
    categories: list[str],
    status: str,
) -> None:
    seeking = push_child(client, owner)["child_id"]
    other = push(client, owner, without_asylum("EXP-2"))
    assert other.status_code == 201, other.get_json()
    not_seeking = other.get_json()["child_id"]
    consulate = honduran_consulate(app, scopes=("records:read", "access:request"))

    answers = [
        ask(client, consulate, child, purpose, categories) for child in (seeking, not_seeking)
    ]
    assert [answer["status"] for answer in answers] == [status, status]
    assert as_seen(answers[0]) == as_seen(answers[1])
    for word in ("no_asylum_data_to_country_of_origin", "asilo", "asylum"):
        assert word not in str(answers[0]), word


def test_a_withhold_entry_leaves_the_request_waiting_like_any_other(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    procuraduria(app)
    officer = consent_officer(app, "co-chp-004")
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    lawyer = legal_representative(app, "lic-ana")
    entry = client.post(
        f"/v1/children/{child_id}/withholds",
        json={
            "target": {"agency_id": CLINIC},
            "categories": ["contact_location"],
            "reason": "La clínica representa también al padre denunciado.",
        },
        headers=officer.headers,
    )
    assert entry.status_code == 201, entry.get_json()

    withheld = ask(client, lawyer, child_id, "legal_representation", ["contact_location"])
    not_withheld = ask(client, lawyer, child_id, "legal_representation", ["identity"])
    assert [withheld["status"], not_withheld["status"]] == ["pending", "pending"]
    assert withheld["message"] == not_withheld["message"]
    told = withheld["decision"]
    assert told["basis"] == "default_deny" and "withhold_ids" not in told
    assert entry.get_json()["id"] not in str(withheld)
