"""What an administrator may do for children: only at an agency of a kind that acts for a child,
and only for the children of their jurisdiction — in the queues as for one item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    INM,
    OFFICER_SCOPES,
    PROCURADURIA,
    PersonClient,
    add_person_client,
    consent_officer,
    entries,
    honduran_consulate,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency

from exchange import db
from exchange.agencies import set_kind
from exchange.people import InvalidPerson

ADMIN_SCOPES = [*OFFICER_SCOPES, "override"]
NUEVO_LEON = "mx.nl.procuraduria"
PFPNNA = "mx.fed.pfpnna"


def admin(app: Flask, person_id: str, agency_id: str) -> PersonClient:
    return add_person_client(app, person_id, agency_id, ["administrator"], ADMIN_SCOPES)


@pytest.fixture
def agencies(app: Flask) -> None:
    add_agency(app, PROCURADURIA, jurisdiction="07", kind="state_dif")
    add_agency(app, NUEVO_LEON, jurisdiction="19", kind="state_dif")
    add_agency(app, PFPNNA, jurisdiction="00", kind="federal_child_protection")
    add_agency(app, INM, jurisdiction="00", kind="immigration_enforcement")


@pytest.fixture
def pending(
    client: FlaskClient, agencies: None, lawyer: PersonClient, pushed: dict[str, Any]
) -> dict[str, Any]:
    """The lawyer's request about the Chiapas child, which no consent covers yet."""
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "categories": ["identity", "legal_status"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=lawyer.headers,
    )
    assert response.status_code == 201 and response.get_json()["status"] == "pending"
    return dict(response.get_json())


def queued(client: FlaskClient, caller: PersonClient) -> list[str]:
    response = client.get("/v1/access-requests", headers=caller.headers)
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["access_requests"]]


def one(client: FlaskClient, caller: PersonClient, request_id: str) -> int:
    return client.get(f"/v1/access-requests/{request_id}", headers=caller.headers).status_code


def test_an_administrator_is_refused_at_an_agency_that_never_acts_for_a_child(
    app: Flask, agencies: None
) -> None:
    honduran_consulate(app)
    for agency_id in (INM, "hn.consulado.tapachula"):
        with pytest.raises(InvalidPerson) as refused:
            admin(app, f"adm-{agency_id}", agency_id)
        [error] = refused.value.errors
        assert error.field == "roles"
        assert "administrator" in error.message_en and "Procuradurías" in error.message_en
        assert "administrator" in error.message_es and "Procuradurías" in error.message_es
    # Where children are acted for, an administrator is registered as before.
    assert admin(app, "adm-chp", PROCURADURIA).agency_id == PROCURADURIA


def test_an_administrator_whose_agency_is_no_longer_a_child_protection_one_acts_for_nobody(
    app: Flask, client: FlaskClient, pending: dict[str, Any], pushed: dict[str, Any]
) -> None:
    national = admin(app, "adm-fed", PFPNNA)
    child = f"/v1/children/{pushed['child_id']}"
    assert client.get(f"{child}/consents", headers=national.headers).status_code == 200
    assert queued(client, national) == [pending["id"]]
    with app.app_context(), db.database(app).sessions.begin() as session:
        set_kind(session, PFPNNA, "immigration_enforcement")
    for what in ("consents", "views", "withholds"):
        assert client.get(f"{child}/{what}", headers=national.headers).status_code == 404
    assert (queued(client, national), one(client, national, pending["id"])) == ([], 404)


def test_an_administrator_queues_only_the_requests_of_their_jurisdiction(
    app: Flask, client: FlaskClient, pending: dict[str, Any]
) -> None:
    chiapas, nuevo_leon = admin(app, "adm-chp", PROCURADURIA), admin(app, "adm-nl", NUEVO_LEON)
    national = admin(app, "adm-fed", PFPNNA)
    for caller in (chiapas, national):
        assert (queued(client, caller), one(client, caller, pending["id"])) == (
            [pending["id"]],
            200,
        )
    # Another state's administrator: the list agrees with the single item, which is a 404.
    assert (queued(client, nuevo_leon), one(client, nuevo_leon, pending["id"])) == ([], 404)


def test_an_administrator_queues_only_the_overrides_of_their_jurisdiction(
    app: Flask, client: FlaskClient, agencies: None, pushed: dict[str, Any]
) -> None:
    opener = add_person_client(
        app, "ov-chp-001", PROCURADURIA, ["override_officer"], ["override", "records:read"]
    )
    opened = client.post(
        "/v1/overrides",
        json={
            "child_id": pushed["child_id"],
            "basis_code": "medical_emergency",
            "justification": "Ingreso a urgencias inconsciente; el hospital necesita "
            "antecedentes médicos.",
            "categories": ["health"],
            "hours": 6,
        },
        headers=opener.headers,
    )
    assert opened.status_code == 201, opened.get_json()
    override_id = opened.get_json()["id"]

    def overrides(caller: PersonClient) -> tuple[list[str], int]:
        listed = client.get("/v1/overrides", headers=caller.headers).get_json()["overrides"]
        single = client.get(f"/v1/overrides/{override_id}", headers=caller.headers)
        return [item["id"] for item in listed], single.status_code

    assert overrides(admin(app, "adm-fed", PFPNNA)) == ([override_id], 200)
    assert overrides(admin(app, "adm-nl", NUEVO_LEON)) == ([], 404)


def test_reading_access_requests_for_the_child_is_audited_the_requesters_own_reads_are_not(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    pending: dict[str, Any],
) -> None:
    officer = consent_officer(app, "co-chp-004", PROCURADURIA)
    before = len(entries(app, "consents_read"))
    assert queued(client, officer) == [pending["id"]]
    assert one(client, officer, pending["id"]) == 200
    written = entries(app, "consents_read")[before:]
    assert [(e["object"], e["child_id"], e["actor"]["person_id"]) for e in written] == [
        ({"type": "access_request", "id": pending["id"]}, pending["child_id"], officer.id)
    ] * 2
    assert one(client, lawyer, pending["id"]) == 200
    assert len(entries(app, "consents_read")) == before + 2
