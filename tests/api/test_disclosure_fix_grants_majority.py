"""``GET /v1/grants`` lists the caller's grants in force: once a corrected date of birth shows
the child is already 18, the grant is no longer listed — as reads refuse under it and the
access request says ``active: false``, ``ended_because: "majority"``. On both backends (the
``app`` fixture)."""

from __future__ import annotations

import copy
from typing import Any

from consent_support import PersonClient, approve
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, envelope, example, push

from tests.api.test_access_requests import ask


def grants_of(client: FlaskClient, caller: PersonClient, child_id: str) -> list[str]:
    response = client.get("/v1/grants", headers=caller.headers)
    assert response.status_code == 200, response.get_json()
    return [grant["id"] for grant in response.get_json()["grants"] if grant["child_id"] == child_id]


def test_a_grant_is_no_longer_listed_once_the_child_is_known_to_be_18(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    child_id = pushed["child_id"]
    request = ask(client, lawyer, child_id, categories=["family"]).get_json()
    grant = approve(client, officer, request["id"])["grant"]
    assert grants_of(client, lawyer, child_id) == [grant["id"]]

    # The owner corrects the date of birth: the child turned 18 years ago.
    data = copy.deepcopy(example("typical"))
    data["child"]["date_of_birth"] = "2004-05-10"
    response = push(client, owner, envelope("EXP-1", data))
    assert response.status_code in (200, 201), response.get_json()

    read = client.get(
        f"/v1/records/{pushed['record_id']}",
        query_string={"purpose": "legal_representation"},
        headers=lawyer.headers,
    )
    assert read.status_code == 403, read.get_json()
    access = client.get(f"/v1/access-requests/{request['id']}", headers=lawyer.headers)
    assert access.get_json()["access"]["active"] is False
    assert grants_of(client, lawyer, child_id) == []


def test_a_requester_told_the_birthday_also_sees_the_access_end_when_it_is_corrected(
    client: FlaskClient,
    owner: AgencyClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    # Asked with identity: the requester is told the 18th birthday (the grant's end is that
    # date, not "at majority at the latest"); a corrected date of birth moves it into the past.
    request = ask(client, lawyer, pushed["child_id"], categories=["identity", "family"])
    approve(client, officer, request.get_json()["id"])
    data = copy.deepcopy(example("typical"))
    data["child"]["date_of_birth"] = "2004-05-10"
    assert push(client, owner, envelope("EXP-1", data)).status_code in (200, 201)
    answer = client.get(f"/v1/access-requests/{request.get_json()['id']}", headers=lawyer.headers)
    access = answer.get_json()["access"]
    assert access["active"] is False
    assert access["ended_because"] == "majority"
