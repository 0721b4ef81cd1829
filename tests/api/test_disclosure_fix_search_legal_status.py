"""``POST /v1/children/search`` by an identifier whose type tells legal status (a COMAR case,
a UNHCR number, an INM file, a migration document: the case record's ``x-value-categories``)
finds a child only for a reader the decision also permits ``legal_status`` — the rule a read
applies to that identifier. A reader permitted ``identity`` alone gets the answer a number no
child carries gets, so the search cannot tell it of an asylum claim or a migration file the
read withholds. On both backends (the ``app`` fixture)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from consent_support import OWNER, PersonClient, consent_document, record_consent
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, example, push

TAPACHULA = "mx.chp.tapachula.dif"
CURP = "IEDB110203HNERDR05"
#: Identifiers that say the child is in an asylum or migration procedure, as searched for:
#: (search type, value, what an answer's ``matched_on`` names for it).
TELLING = [
    ("comar_case", "COMAR-TAP-2026-QA77", ["comar_case"]),
    ("comar", "COMAR-TAP-2026-QA77", ["comar_case"]),
    ("unhcr_individual", "123-26C77777", ["unhcr"]),
    ("unhcr", "123-26C77777", ["unhcr"]),
    ("unhcr_case", "123-26C00777", ["unhcr_case"]),
    ("unhcr", "123-26C00777", ["unhcr_case"]),
    ("inm_file", "INM-07-2026-7777", ["inm_file"]),
    ("migration_document", "FMM-7777-QA", ["migration_document"]),
]


def record_with_identifiers() -> dict[str, Any]:
    data = copy.deepcopy(example("typical"))
    data["child"]["date_of_birth"] = "2011-02-03"
    data["child"]["identifiers"] = [
        {"type": "curp", "value": CURP},
        {"type": "comar_case", "value": "COMAR-TAP-2026-QA77"},
        {"type": "unhcr_individual", "value": "123-26C77777"},
        {"type": "unhcr_case", "value": "123-26C00777"},
        {"type": "inm_file", "value": "INM-07-2026-7777"},
        {"type": "migration_document", "value": "FMM-7777-QA"},
    ]
    return envelope("EXP-ID-1", data)


def search(
    client: FlaskClient, caller: AgencyClient, kind: str, value: str
) -> list[dict[str, Any]]:
    response = client.post(
        "/v1/children/search",
        json={"purpose": "case_management", "identifier": {"type": kind, "value": value}},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["candidates"])


@pytest.fixture
def child_id(client: FlaskClient, owner: AgencyClient) -> str:
    response = push(client, owner, record_with_identifiers())
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["child_id"])


def permit_tapachula(
    client: FlaskClient, officer: PersonClient, child_id: str, categories: list[str]
) -> None:
    document = consent_document(
        TAPACHULA, actions=["read"], purposes=["case_management"], categories=categories
    )
    record_consent(client, officer, child_id, document)


def test_an_identity_reader_cannot_confirm_an_asylum_or_migration_number(
    app: Flask, client: FlaskClient, child_id: str, officer: PersonClient
) -> None:
    tapachula = add_agency(app, TAPACHULA)
    permit_tapachula(client, officer, child_id, ["identity"])
    # Tapachula may know the child: its CURP finds it...
    assert search(client, tapachula, "curp", CURP) == [
        {"child_id": child_id, "score": 1.0, "matched_on": ["curp"]}
    ]
    # ...and reading its record shows none of the numbers that tell legal status.
    read = client.get(
        f"/v1/children/{child_id}/records",
        query_string={"purpose": "case_management"},
        headers=tapachula.headers,
    )
    [record] = read.get_json()["records"]
    assert [i["type"] for i in record["data"]["child"]["identifiers"]] == ["curp"]
    # So the search answers for those numbers exactly what it answers for a wrong one.
    for kind, value, _matched_on in TELLING:
        assert search(client, tapachula, kind, value) == [], kind
        assert search(client, tapachula, kind, value[:-1] + "8") == [], kind


def test_a_reader_permitted_legal_status_finds_the_child_by_those_numbers(
    app: Flask, client: FlaskClient, child_id: str, officer: PersonClient
) -> None:
    tapachula = add_agency(app, TAPACHULA)
    permit_tapachula(client, officer, child_id, ["identity", "legal_status"])
    for kind, value, matched_on in TELLING:
        [candidate] = search(client, tapachula, kind, value)
        assert candidate["child_id"] == child_id, kind
        assert candidate["matched_on"] == matched_on, kind


def test_legal_status_alone_does_not_let_a_reader_find_the_child(
    app: Flask, client: FlaskClient, child_id: str, officer: PersonClient
) -> None:
    # Knowing the child at all still takes identity.
    tapachula = add_agency(app, TAPACHULA)
    permit_tapachula(client, officer, child_id, ["legal_status"])
    for kind, value, _matched_on in TELLING:
        assert search(client, tapachula, kind, value) == [], kind


def test_the_owner_finds_its_own_child_by_every_number_its_record_states(
    client: FlaskClient, child_id: str, owner: AgencyClient
) -> None:
    assert owner.id == OWNER
    for kind, value, matched_on in TELLING:
        [candidate] = search(client, owner, kind, value)
        assert (candidate["child_id"], candidate["matched_on"]) == (child_id, matched_on), kind


def test_a_name_search_names_no_identifier(
    app: Flask, client: FlaskClient, child_id: str, officer: PersonClient
) -> None:
    tapachula = add_agency(app, TAPACHULA)
    permit_tapachula(client, officer, child_id, ["identity"])
    names = example("typical")["child"]["names"]
    response = client.post(
        "/v1/children/search",
        json={"purpose": "case_management", "name": names, "date_of_birth": "2011-02-03"},
        headers=tapachula.headers,
    )
    assert response.status_code == 200, response.get_json()
    [candidate] = response.get_json()["candidates"]
    assert candidate["child_id"] == child_id
    assert set(candidate) == {"child_id", "score", "matched_on"}
    telling = {kind for kind, _value, _matched_on in TELLING} | {"curp", "unhcr_case"}
    assert not telling & set(candidate["matched_on"])
