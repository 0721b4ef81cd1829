"""Who reads the audit log, and who acts for which child: ``audit:read`` is an oversight body's
alone; a person whose jurisdiction narrows their agency's acts only inside it, for single items
as in the queues; disabling a person ends what they asked for and were given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    PROCURADURIA,
    PersonClient,
    approve,
    consent_officer,
    entries,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency
from sqlalchemy import update
from sqlalchemy.orm import Session

from exchange import db
from exchange.agencies import InvalidAgency, register_agency, set_kind
from exchange.auth import store_token
from exchange.consent_store import AccessRequestRow, GrantRow
from exchange.people import (
    ROLE_SCOPES,
    InvalidPerson,
    Person,
    add_person,
    disable_person,
    issue_token,
)

TAPACHULA = "mx.chp.tapachula.dif"
CNDH = "mx.fed.cndh"


@contextmanager
def admin(app: Flask) -> Iterator[Session]:
    """What the command line does: one transaction inside the hub's app context."""
    with app.app_context(), db.database(app).sessions.begin() as session:
        yield session


def tapachula(app: Flask) -> AgencyClient:
    return add_agency(app, TAPACHULA, level="municipal", jurisdiction="07089", kind="municipal_dif")


def ask(
    client: FlaskClient,
    lawyer: PersonClient,
    child_id: str,
    categories: tuple[str, ...] = ("identity", "legal_status"),
) -> dict[str, Any]:
    body = {
        "child_id": child_id,
        "purpose": "legal_representation",
        "categories": list(categories),
        "until": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
    }
    response = client.post("/v1/access-requests", json=body, headers=lawyer.headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "pending"
    return dict(response.get_json())


def queue(client: FlaskClient, officer: PersonClient) -> list[str]:
    listed = client.get("/v1/access-requests?status=pending", headers=officer.headers)
    assert listed.status_code == 200, listed.get_json()
    return [row["id"] for row in listed.get_json()["access_requests"]]


def decide(
    client: FlaskClient, officer: PersonClient, request_id: str, approve: bool, lang: str = "en"
) -> Any:
    return client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"approve": approve, "reason": "Representación acreditada en el expediente."},
        headers={**officer.headers, "Accept-Language": lang},
    )


# -- 1. audit:read is oversight's alone ----------------------------------------------------------


def test_an_administrator_gets_every_scope_but_the_auditors() -> None:
    assert "audit:read" not in ROLE_SCOPES["administrator"]
    assert {"admin", "consent:write", "access:decide", "override"} <= ROLE_SCOPES["administrator"]


def test_a_municipal_dif_administrator_gets_no_token_that_reads_the_audit_log(app: Flask) -> None:
    tapachula(app)
    with admin(app) as session:
        add_person(
            session,
            person_id="adm-tap",
            name="Administradora Tapachula",
            email="adm@tapachula.example.org",
            agency_id=TAPACHULA,
            roles=["administrator"],
        )
    with admin(app) as session, pytest.raises(InvalidPerson) as refused:
        issue_token(session, "adm-tap", ["audit:read"])
    assert "audit:read" in refused.value.message_en
    with admin(app) as session:  # what the role does allow is issued as before
        assert issue_token(session, "adm-tap", ["admin", "consent:read"]).scopes


def test_an_auditor_whose_agency_is_no_longer_oversight_gets_no_audit_token(app: Flask) -> None:
    add_agency(app, CNDH, jurisdiction="00", kind="oversight", scopes=("records:read",))
    with admin(app) as session:
        add_person(
            session,
            person_id="aud-1",
            name="Auditora",
            email="aud@cndh.example.org",
            agency_id=CNDH,
            roles=["auditor"],
        )
        assert issue_token(session, "aud-1", ["audit:read"]).scopes == ("audit:read",)
        # As a hub upgraded from before kinds were checked might hold it.
        session.execute(update_kind(CNDH, "state_dif"))
    with admin(app) as session, pytest.raises(InvalidPerson) as refused:
        issue_token(session, "aud-1", ["audit:read"])
    assert "oversight" in refused.value.message_en and "oversight" in refused.value.message_es


def update_kind(agency_id: str, kind: str) -> Any:
    from exchange.agencies import Agency

    return update(Agency).where(Agency.id == agency_id).values(kind=kind)


def test_only_an_oversight_body_is_registered_with_audit_read(app: Flask) -> None:
    with admin(app) as session, pytest.raises(InvalidAgency) as refused:
        register_agency(
            session, "mx.chp.x.dif", "DIF X", "state", "07", ["audit:read"], kind="state_dif"
        )
    [error] = refused.value.errors
    assert error.field == "scopes"
    assert "oversight" in error.message_en and "state_dif" in error.message_en
    assert "supervisión" in error.message_es
    with admin(app) as session:
        register_agency(session, CNDH, "CNDH", "federal", "00", ["audit:read"], kind="oversight")


def test_an_oversight_body_with_audit_read_or_auditors_keeps_its_kind(app: Flask) -> None:
    with admin(app) as session:
        register_agency(session, CNDH, "CNDH", "federal", "00", ["audit:read"], kind="oversight")
    with admin(app) as session, pytest.raises(InvalidAgency) as refused:
        set_kind(session, CNDH, "state_dif")
    assert "audit:read" in refused.value.message_en and "agency disable" in refused.value.message_en
    # Without the scope, its active auditors keep it an oversight body until disabled.
    add_agency(app, "mx.fed.sipinna", jurisdiction="00", kind="oversight", scopes=("records:read",))
    with admin(app) as session:
        add_person(
            session,
            person_id="aud-2",
            name="Auditor",
            email="aud2@sipinna.example.org",
            agency_id="mx.fed.sipinna",
            roles=["auditor"],
        )
    with admin(app) as session, pytest.raises(InvalidAgency) as refused:
        set_kind(session, "mx.fed.sipinna", "other")
    assert "aud-2" in refused.value.message_en and "Desactívelos" in refused.value.message_es
    with admin(app) as session:
        disable_person(session, "aud-2")
    with admin(app) as session:
        set_kind(session, "mx.fed.sipinna", "other")


def test_an_audit_read_token_outside_oversight_reads_no_childs_views_or_overrides(
    app: Flask, client: FlaskClient, owner: AgencyClient, pushed: dict[str, Any]
) -> None:
    """A token issued before these rules (or before its agency's kind changed) is not
    oversight: the child's own words and override justifications stay its jurisdiction's."""
    nuevo_leon = add_agency(app, "mx.nl.dif", jurisdiction="19", kind="state_dif")
    with admin(app) as session:
        secret, _ = store_token(
            session, client_id=nuevo_leon.id, scopes=["audit:read"], agency_id=nuevo_leon.id
        )
    headers = {"Authorization": f"Bearer {secret}"}
    views = client.get(f"/v1/children/{pushed['child_id']}/views", headers=headers)
    assert views.status_code == 404, views.get_json()
    # Oversight itself still reads them, whatever its jurisdiction.
    cndh = add_agency(app, CNDH, jurisdiction="00", kind="oversight", scopes=("audit:read",))
    read = client.get(f"/v1/children/{pushed['child_id']}/views", headers=cndh.headers)
    assert read.status_code == 200, read.get_json()


# -- 2. a person's narrower jurisdiction counts for single items as in the queue -------------


@pytest.fixture
def procuraduria_record(app: Flask, client: FlaskClient) -> dict[str, Any]:
    """A child whose record the Chiapas Procuraduría (07) itself is responsible for."""
    procuraduria = add_agency(
        app,
        PROCURADURIA,
        scopes=("records:write", "records:read", "consent:read", "access:decide"),
        kind="state_dif",
    )
    return push_child(client, procuraduria, "PRO-1")


def test_an_officer_narrowed_to_a_municipality_acts_for_no_child_outside_it(
    app: Flask, client: FlaskClient, procuraduria_record: dict[str, Any], lawyer: PersonClient
) -> None:
    child_id = procuraduria_record["child_id"]
    narrowed = consent_officer(app, "of-tap", PROCURADURIA, jurisdiction="07089")
    whole_state = consent_officer(app, "of-chp", PROCURADURIA)
    request = ask(client, lawyer, child_id)

    assert queue(client, narrowed) == []
    assert queue(client, whole_state) == [request["id"]]
    # Nor one at a time: what is not in the queue answers as if it did not exist.
    for path in (f"/v1/access-requests/{request['id']}", f"/v1/children/{child_id}/consents"):
        seen = client.get(path, headers=narrowed.headers)
        assert seen.status_code == 404, (path, seen.get_json())
        assert client.get(path, headers=whole_state.headers).status_code == 200
    assert decide(client, narrowed, request["id"], approve=True).status_code == 404
    assert decide(client, narrowed, request["id"], approve=False).status_code == 404
    assert approve(client, whole_state, request["id"])["status"] == "granted"


def test_an_officer_narrowed_to_a_municipality_acts_for_its_children(
    app: Flask, client: FlaskClient, lawyer: PersonClient
) -> None:
    add_agency(app, PROCURADURIA, scopes=("consent:read",), kind="state_dif")
    child_id = push_child(client, tapachula(app), "TAP-1")["child_id"]
    narrowed = consent_officer(app, "of-tap", PROCURADURIA, jurisdiction="07089")
    request = ask(client, lawyer, child_id)
    assert queue(client, narrowed) == [request["id"]]
    consents = client.get(f"/v1/children/{child_id}/consents", headers=narrowed.headers)
    assert consents.status_code == 200
    assert approve(client, narrowed, request["id"])["status"] == "granted"


# -- 3. disabling a person ends their requests and grants ----------------------------------------


def test_disabling_a_lawyer_denies_their_pending_requests_and_revokes_their_grants(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    child_id = pushed["child_id"]
    granted = ask(client, lawyer, child_id)
    grant_id = approve(client, officer, granted["id"])["grant"]["id"]
    pending = ask(client, lawyer, child_id, ("health",))  # beyond what the grant covers
    assert queue(client, officer) == [pending["id"]]

    with admin(app) as session:
        disable_person(session, lawyer.id)

    assert queue(client, officer) == []
    seen = client.get(f"/v1/access-requests/{pending['id']}", headers=officer.headers).get_json()
    assert seen["status"] == "denied"
    assert (seen["decided_by"], seen["decision_reason"]) == ("hub", "requester_disabled")
    with admin(app) as session:
        grant = session.get(GrantRow, grant_id)
        assert grant is not None and grant.revoked_at is not None
        assert grant.revocation_reason == "requester_disabled"
    [denied] = [e for e in entries(app, "access_denied") if e["object"]["id"] == pending["id"]]
    [revoked] = [e for e in entries(app, "consent_revoked") if e["object"]["id"] == grant_id]
    for entry in (denied, revoked):
        assert entry["reason_code"] == "requester_disabled"
        assert entry["actor"]["role"] == "administrator"
        assert entry["child_id"] == child_id
    assert denied["outcome"] == "denied" and revoked["outcome"] == "success"
    # Deciding it now is a conflict, said in each language's own words.
    again = decide(client, officer, pending["id"], approve=False, lang="es")
    assert again.status_code == 409
    assert "(denegada)" in again.get_json()["detail"]


def test_a_request_left_pending_by_a_disabled_person_is_denied_not_granted(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    """One disabled before requests were ended with their person (or straight in the
    database): approving it would grant a disabled person; denying it clears the queue."""
    request = ask(client, lawyer, pushed["child_id"])
    with admin(app) as session:
        session.execute(update(Person).where(Person.id == lawyer.id).values(active=False))

    refused = decide(client, officer, request["id"], approve=True)
    assert refused.status_code == 409, refused.get_json()
    assert "no longer active" in refused.get_json()["detail"]
    spanish = decide(client, officer, request["id"], approve=True, lang="es")
    assert "ya no está activo" in spanish.get_json()["detail"]
    assert entries(app, "access_granted") == []
    with admin(app) as session:
        row = session.get(AccessRequestRow, request["id"])
        assert row is not None and row.status == "pending" and row.grant_id is None

    assert decide(client, officer, request["id"], approve=False).status_code == 200
    assert queue(client, officer) == []


# -- 4. the Spanish text says the status in Spanish ---------------------------------------------


def test_a_second_decision_names_the_status_in_each_language(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    request = ask(client, lawyer, pushed["child_id"])
    approve(client, officer, request["id"])
    spanish = decide(client, officer, request["id"], approve=True, lang="es")
    assert spanish.status_code == 409
    assert spanish.get_json()["detail"] == "La solicitud ya fue resuelta (concedida)."
    english = decide(client, officer, request["id"], approve=True, lang="en")
    assert english.get_json()["detail"] == "The request was already decided (granted)."
