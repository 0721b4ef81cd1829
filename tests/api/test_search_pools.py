"""A name search finds the children the caller works with however many namesakes the hub holds:
a child the caller holds an access grant for, or an accepted referral of, has a pool of its
own, as an agency's own records have (test_child_search_privacy.py). Before, a lawyer with a
grant found nothing once ~200 better-matching namesakes of other agencies filled the pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    OWNER,
    PersonClient,
    adolescent_record,
    approve,
    consent_document,
    procuraduria,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, push, push_bulk, share

from exchange import child_search

NAME = {"given_names": "Juan", "first_surname": "Pérez", "second_surname": "López"}
# Better matches for this query than the child sought (their nationality is stated).
QUERY = {"name": NAME, "date_of_birth": "2015-06-01", "nationality": "HN"}


def namesake(nationality: list[str]) -> dict[str, Any]:
    return {
        "case": {"status": "open"},
        "child": {"names": NAME, "date_of_birth": "2015-06-01", "nationality": nationality},
    }


@pytest.fixture
def sought(
    app: Flask, client: FlaskClient, owner: AgencyClient, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The owner's child, pushed after 15 better-matching namesakes of another agency that fill
    a pool made as small as 10."""
    nl = add_agency(app, "mx.nl.dif", jurisdiction="19")
    lines = [envelope(f"NL-{n}", namesake(["HN"])) for n in range(15)]
    answer, results = push_bulk(client, nl, lines)
    assert answer.status_code == 200 and all(r["status"] == "stored" for r in results)
    # The typical example (an unaccompanied girl: the Procuraduría consents for her), renamed.
    record = adolescent_record("CHP-1")
    record["data"]["child"].update(namesake(["XX"])["child"])
    response = push(client, owner, record)
    assert response.status_code == 201, response.get_json()
    monkeypatch.setattr(child_search, "CANDIDATE_POOL", 10)
    return dict(response.get_json())


def found(client: FlaskClient, caller: Any, purpose: str) -> list[str]:
    response = client.post(
        "/v1/children/search", json={"purpose": purpose, **QUERY}, headers=caller.headers
    )
    assert response.status_code == 200, response.get_json()
    return [c["child_id"] for c in response.get_json()["candidates"]]


def test_a_lawyer_with_a_grant_finds_the_child_among_namesakes(
    client: FlaskClient, sought: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    assert found(client, lawyer, "legal_representation") == []
    asked = client.post(
        "/v1/access-requests",
        json={
            "child_id": sought["child_id"],
            "purpose": "legal_representation",
            "categories": ["identity", "legal_status"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=lawyer.headers,
    )
    assert asked.status_code in (201, 202), asked.get_json()
    approve(client, officer, asked.get_json()["id"])
    assert found(client, lawyer, "legal_representation") == [sought["child_id"]]


def test_an_agency_holding_a_referral_finds_the_child_among_namesakes(
    app: Flask, client: FlaskClient, sought: dict[str, Any]
) -> None:
    receiving = add_agency(app, "mx.tab.dif", jurisdiction="27")
    assert found(client, receiving, "case_management") == []
    record_consent(
        client,
        procuraduria(app),
        sought["child_id"],
        consent_document(receiving.id, actions=["refer"], purposes=["case_management"]),
    )
    share(app, sought["record_id"], from_agency=OWNER, to=receiving.id)
    assert found(client, receiving, "case_management") == [sought["child_id"]]
    # A third agency, with neither, still learns nothing.
    stranger = add_agency(app, "mx.son.dif", jurisdiction="26")
    assert found(client, stranger, "case_management") == []
