"""When an access ends, as its requester is told it, and approvals once the child is 18.

A withhold entry is never told to the reader it refuses (docs/consent.md §8.8), so it must not
shorten the ``until`` a request granted at once is told either: asking one category at a time
would give away which category an entry covers, and the second it starts. The entry still
refuses every read from its start — reads are decided then.

Once the child is 18 no grant is made, and the officer is told that, as ``check_consent``
tells it (``already_adult``) — not that a grant cannot run past the birthday at an ``until``
they never sent.
"""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from consent_support import (
    CLINIC,
    OWNER,
    PersonClient,
    consent_document,
    push_child,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency, envelope, example, push, read

PURPOSE = "legal_representation"
ASKED = "2028-06-01T00:00:00+00:00"  # before the consent's end (2029) and the 18th birthday


def ask(client: FlaskClient, lawyer: PersonClient, child_id: str, categories: list[str]) -> Any:
    response = client.post(
        "/v1/access-requests",
        json={"child_id": child_id, "purpose": PURPOSE, "categories": categories, "until": ASKED},
        headers=lawyer.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_withhold_entry_starting_later_does_not_shorten_the_until_told_but_refuses_reads(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    child_id = pushed["child_id"]
    categories = ["identity", "legal_representation"]
    record_consent(
        client,
        officer,
        child_id,
        consent_document(CLINIC, purposes=[PURPOSE], categories=categories),
    )
    starts = datetime.now(UTC) + timedelta(seconds=4)
    recorded = client.post(
        f"/v1/children/{child_id}/withholds",
        json={
            "target": {"agency_id": CLINIC},
            "categories": ["legal_representation"],
            "starts": starts.isoformat(),
            "reason": "El despacho representa también al presunto agresor.",
        },
        headers=officer.headers,
    )
    assert recorded.status_code == 201, recorded.get_json()

    # Granted at once, and told the date asked for: nothing about the entry, nor its start.
    for asked_for in (categories, ["legal_representation"], ["identity"]):
        granted = ask(client, lawyer, child_id, asked_for)
        assert granted["status"] == "granted"
        assert granted["access"]["until"] == ASKED, asked_for
        assert starts.isoformat()[:19] not in str(granted)
        assert "the date asked for" in granted["message"]["en"]
    request_id = granted["id"]
    both = ask(client, lawyer, child_id, categories)

    # From its start the entry refuses legal_representation on every read...
    time.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.2)
    answer = read(client, lawyer, pushed["record_id"], purpose=PURPOSE)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["decision"]["categories"] == ["identity"]
    # ...while the requests still show the access they were told of, not "expired" at the
    # entry's start (that would tell it too).
    for seen_id in (request_id, both["id"]):
        seen = client.get(f"/v1/access-requests/{seen_id}", headers=lawyer.headers).get_json()
        assert seen["access"]["active"] is True and "ended_because" not in seen["access"]
        assert seen["access"]["until"] == ASKED


def test_approving_once_the_child_is_18_says_the_person_is_an_adult(
    app: Flask, client: FlaskClient, lawyer: PersonClient, officer: PersonClient
) -> None:
    data = copy.deepcopy(example("typical"))
    born = datetime.now(UTC).date() - timedelta(days=19 * 366)
    data["child"]["date_of_birth"] = born.isoformat()
    owner = add_agency(app, OWNER)
    response = push(client, owner, envelope("EXP-19", data))
    assert response.status_code == 201, response.get_json()
    child_id = response.get_json()["child_id"]
    request = ask(client, lawyer, child_id, ["legal_status"])
    assert request["status"] == "pending"

    for extra in ({}, {"until": "2027-01-01T00:00:00Z"}):
        for language, words in (("es", "cumplió 18 años"), ("en", "turned 18")):
            decided = client.post(
                f"/v1/access-requests/{request['id']}/decision",
                json={"approve": True, "reason": "Necesario para el juicio.", **extra},
                headers={**officer.headers, "Accept-Language": language},
            )
            assert decided.status_code == 400, decided.get_json()
            [error] = decided.get_json()["errors"]
            assert (error["pointer"], error["code"]) == ("", "already_adult")
            assert words in error["message"]
    # Nothing was decided: the officer denies it instead.
    denied = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": False, "reason": "La persona ya es mayor de edad."},
        headers=officer.headers,
    )
    assert denied.status_code == 200, denied.get_json()


def test_a_minor_is_still_approved(
    client: FlaskClient, owner: Any, lawyer: PersonClient, officer: PersonClient
) -> None:
    child_id = push_child(client, owner, "EXP-7")["child_id"]
    request = ask(client, lawyer, child_id, ["legal_status"])
    decided = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": True, "reason": "Necesario para el juicio."},
        headers=officer.headers,
    )
    assert decided.status_code == 200, decided.get_json()
