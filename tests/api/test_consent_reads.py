"""Reads go through the consent engine: what another agency sees is what a consent permits,
redacted by category; revocation stops it at once; hard rules win; every decision is audited."""

from __future__ import annotations

from typing import Any

import pytest
from consent_support import (
    COMAR,
    INM,
    audit_entry,
    consent_document,
    entries,
    procuraduria,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, example, push, read
from sqlalchemy import select

from exchange.outbox import OutboxMessage


@pytest.fixture
def officer(app: Flask) -> AgencyClient:
    return procuraduria(app)


@pytest.fixture
def comar(app: Flask) -> AgencyClient:
    return add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")


def read_as(client: FlaskClient, agency: AgencyClient, record_id: str, purpose: str) -> Any:
    return read(client, agency, record_id, purpose=purpose)


def test_without_consent_another_agency_learns_nothing(
    app: Flask, client: FlaskClient, comar: AgencyClient, pushed: dict[str, Any]
) -> None:
    response = read_as(client, comar, pushed["record_id"], "asylum_procedure")
    assert response.status_code == 404
    [entry] = [e for e in entries(app, "record_read") if e["outcome"] == "denied"]
    assert entry["decision"]["basis"] == "default_deny"
    assert entry["actor"]["agency_id"] == COMAR


def test_a_consent_opens_the_permitted_categories_only(
    app: Flask,
    client: FlaskClient,
    officer: AgencyClient,
    comar: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    consent = record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(
            COMAR,
            actions=["read"],
            purposes=["asylum_procedure"],
            categories=["identity", "legal_status"],
        ),
    )
    granted = audit_entry(app, consent["audit_entry"])
    assert granted["action"] == "consent_granted"
    assert granted["object"] == {"type": "consent", "id": consent["id"]}

    response = read_as(client, comar, pushed["record_id"], "asylum_procedure")
    assert response.status_code == 200
    body = response.get_json()
    data = body["data"]
    assert "date_of_birth" in data["child"]  # identity
    assert "placements" not in data and "health" not in data
    assert "placement" in body["withheld_categories"]
    assert body["decision"]["basis"] == "consent"
    assert body["decision"]["categories"] == ["identity", "legal_status"]
    # No digest of the whole body to a partial reader (it would confirm guesses offline),
    # in the read and in the version list alike.
    assert body["body_sha256"] is None
    versions = client.get(
        f"/v1/records/{pushed['record_id']}/versions",
        query_string={"purpose": "asylum_procedure"},
        headers=comar.headers,
    ).get_json()["versions"]
    assert [version["body_sha256"] for version in versions] == [None]
    entry = audit_entry(app, response.headers["Puente-Decision"])
    assert entry["outcome"] == "success"
    assert entry["decision"]["consent_ids"] == [consent["id"]]
    assert entry["decision"]["categories"] == ["identity", "legal_status"]

    # Another purpose is not covered: COMAR now knows of nothing more than before.
    assert read_as(client, comar, pushed["record_id"], "statistics").status_code == 404


def test_revocation_stops_reads_at_once_and_tells_who_received_data(
    app: Flask,
    client: FlaskClient,
    officer: AgencyClient,
    comar: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    from exchange import db
    from exchange.agencies import Agency

    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            session.get_one(Agency, COMAR).webhook_url = "https://comar.example.org/puente"
        session.close()
    consent = record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"]),
    )
    assert read_as(client, comar, pushed["record_id"], "asylum_procedure").status_code == 200

    response = client.post(
        f"/v1/consents/{consent['id']}/revoke",
        json={"reason": "La Procuraduría retira el consentimiento."},
        headers=officer.headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["notified"] == [COMAR]
    assert body["consent"]["revocation"]["reason"]
    assert audit_entry(app, body["audit_entry"])["action"] == "consent_revoked"

    assert read_as(client, comar, pushed["record_id"], "asylum_procedure").status_code == 404
    listed = client.get(
        f"/v1/children/{pushed['child_id']}/consents", headers=officer.headers
    ).get_json()
    assert [c["state"] for c in listed["consents"]] == ["revoked"]

    from records_support import rows

    [(payload,)] = rows(
        app, select(OutboxMessage.payload).where(OutboxMessage.kind == "consent.revoked")
    )
    assert payload["consent_id"] == consent["id"]
    assert "data" not in payload

    again = client.post(
        f"/v1/consents/{consent['id']}/revoke", json={"reason": "otra vez"}, headers=officer.headers
    )
    assert again.status_code == 409


def test_hard_rules_win_over_any_consent(
    app: Flask, client: FlaskClient, officer: AgencyClient, pushed: dict[str, Any]
) -> None:
    inm = add_agency(app, INM, jurisdiction="00", kind="immigration_enforcement")
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(INM, purposes=["migration_procedure"]),
    )
    response = read_as(client, inm, pushed["record_id"], "migration_procedure")
    if response.status_code == 200:
        body = response.get_json()
        assert "protection_concerns" not in body["data"]
        assert "protection_concerns" in body["decision"]["withheld"]
        assert any(r["code"] == "hard_rule" for r in body["decision"]["reasons"])
    else:
        assert response.status_code == 404
    decided = [e for e in entries(app, "record_read") if e["actor"].get("agency_id") == INM]
    assert decided and decided[-1]["decision"]["rule_ids"]


def test_a_consent_that_outlives_the_18th_birthday_is_refused(
    client: FlaskClient, officer: AgencyClient, pushed: dict[str, Any]
) -> None:
    document = consent_document(COMAR)
    document["period"]["end"] = "2031-01-01T00:00:00-06:00"  # she turns 18 on 2030-05-10
    response = client.post(
        f"/v1/children/{pushed['child_id']}/consents", json=document, headers=officer.headers
    )
    assert response.status_code == 400
    problem = response.get_json()
    assert problem["type"].endswith("/validation")
    assert any(error["pointer"].startswith("/period") for error in problem["errors"])


def test_a_consent_about_another_child_is_refused_not_recorded_for_the_path_child(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: AgencyClient,
    comar: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    document = consent_document(COMAR)
    other = push(client, owner, envelope("EXP-OTRO", example("minimal")))
    assert other.status_code == 201, other.get_json()
    other_child = other.get_json()["child_id"]
    assert other_child != pushed["child_id"]
    # Another child of the hub, or an id no child has: the document is not about this child.
    for named in (other_child, "nna_00000000000000000000"):
        response = client.post(
            f"/v1/children/{pushed['child_id']}/consents",
            json={**document, "child_id": named},
            headers={**officer.headers, "Accept-Language": "en"},
        )
        assert response.status_code == 400, response.get_json()
        problem = response.get_json()
        assert problem["type"].endswith("/validation")
        [error] = [e for e in problem["errors"] if e.get("code") == "other_child"]
        assert error["pointer"] == "/child_id"
        assert named in error["message"] and pushed["child_id"] in error["message"]
    assert entries(app, "consent_granted") == []
    for child_id in (pushed["child_id"], other_child):
        listed = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
        assert listed.get_json()["consents"] == []
    # Naming the path's child is what a consent about it does.
    same = client.post(
        f"/v1/children/{pushed['child_id']}/consents",
        json={**document, "child_id": pushed["child_id"]},
        headers=officer.headers,
    )
    assert same.status_code == 201
    assert same.get_json()["consent"]["child_id"] == pushed["child_id"]


def test_consents_of_another_jurisdiction_are_not_ours_to_record(
    app: Flask, client: FlaskClient, pushed: dict[str, Any]
) -> None:
    elsewhere = add_agency(
        app, "mx.nl.procuraduria", jurisdiction="19", scopes=("consent:write", "consent:read")
    )
    response = client.post(
        f"/v1/children/{pushed['child_id']}/consents",
        json=consent_document(COMAR),
        headers=elsewhere.headers,
    )
    assert response.status_code == 404  # as if the child did not exist
    listing = client.get(f"/v1/children/{pushed['child_id']}/consents", headers=elsewhere.headers)
    assert listing.status_code == 404


def test_child_records_list_only_what_each_decision_permits(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: AgencyClient,
    comar: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"]),
    )
    response = client.get(
        f"/v1/children/{pushed['child_id']}/records",
        query_string={"purpose": "asylum_procedure"},
        headers=comar.headers,
    )
    assert response.status_code == 200
    [listed] = response.get_json()["records"]
    assert "child" in listed["data"]
    assert not {"placements", "health", "custody"} & set(listed["data"])
    assert listed["decision"]["categories"] == ["identity"]


def test_key_rotation_reencrypts_consents_too(
    app: Flask,
    client: FlaskClient,
    officer: AgencyClient,
    comar: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    from exchange import db
    from exchange.crypto import data_keyring, generate_data_key, reencrypt_batches, rows_per_key

    consent = record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"]),
    )
    with app.app_context():
        new_key, _path = generate_data_key(app)
        keyring = data_keyring(app)
        keyring.reload()
        moved = sum(reencrypt_batches(db.database(app).sessions, keyring, batch_size=1))
        with db.database(app).sessions() as session:
            assert rows_per_key(session) == {new_key: moved}
    assert moved == 2  # the record's body and the consent
    shown = client.get(f"/v1/consents/{consent['id']}", headers=officer.headers).get_json()
    assert shown["consent"]["grantee"] == [{"agency_id": COMAR}]
    assert read_as(client, comar, pushed["record_id"], "asylum_procedure").status_code == 200


def test_a_hub_adds_its_own_hard_rules(
    app: Flask,
    client: FlaskClient,
    officer: AgencyClient,
    comar: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    import json
    from pathlib import Path

    rule = {
        "id": "no_legal_status_to_refugee_commission_demo",
        "title": {"es": "Regla de prueba.", "en": "A test rule."},
        "legal_basis": "Acuerdo local de prueba.",
        "categories": ["legal_status"],
        "actor_kinds": ["refugee_commission"],
    }
    Path(app.instance_path, "rules.json").write_text(json.dumps([rule]), encoding="utf-8")
    app.config["CONSENT_RULES_FILE"] = "rules.json"
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(
            COMAR, purposes=["asylum_procedure"], categories=["identity", "legal_status"]
        ),
    )
    body = read_as(client, comar, pushed["record_id"], "asylum_procedure").get_json()
    assert body["decision"]["categories"] == ["identity"]
    assert "legal_status" in body["decision"]["withheld"]
    assert rule["id"] in body["decision"]["rule_ids"]


def test_reading_consents_is_on_the_audit_log(
    app: Flask,
    client: FlaskClient,
    officer: AgencyClient,
    comar: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    consent = record_consent(client, officer, pushed["child_id"], consent_document(COMAR))
    listed = client.get(f"/v1/children/{pushed['child_id']}/consents", headers=officer.headers)
    assert listed.status_code == 200
    one = client.get(f"/v1/consents/{consent['id']}?format=fhir", headers=officer.headers)
    assert one.status_code == 200
    reads = entries(app, "consents_read")
    assert len(reads) == 2
    assert {e["actor"]["agency_id"] for e in reads} == {officer.id}
    assert {e["child_id"] for e in reads} == {pushed["child_id"]}
    assert reads[-1]["object"] == {"type": "consent", "id": consent["id"]}


def test_a_missing_reason_is_named_by_its_label_in_both_languages(
    client: FlaskClient, officer: AgencyClient, comar: AgencyClient, pushed: dict[str, Any]
) -> None:
    consent = record_consent(client, officer, pushed["child_id"], consent_document(COMAR))
    # Every route that asks for a written reason: a revocation, a review, a decision.
    for path, body in (
        (f"/v1/consents/{consent['id']}/revoke", {}),
        ("/v1/views/vw_000000000000000000000000/review", {"upheld": True}),
        ("/v1/access-requests/acr_000000000000000000000000/decision", {"approve": False}),
    ):
        said = {}
        for language in ("es", "en"):
            response = client.post(
                path, json=body, headers={**officer.headers, "Accept-Language": language}
            )
            assert response.status_code == 400, response.get_json()
            [error] = response.get_json()["errors"]
            assert error["pointer"] == ""
            said[language] = error["message"]
        assert said == {
            "es": "falta el campo obligatorio «motivo» (reason)",
            "en": "required field 'written reason' (reason) is missing",
        }


def test_an_agency_without_a_webhook_reads_the_revocation_in_its_notifications(
    app: Flask,
    client: FlaskClient,
    officer: AgencyClient,
    comar: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    consent = record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"]),
    )
    assert read_as(client, comar, pushed["record_id"], "asylum_procedure").status_code == 200
    revoked = client.post(
        f"/v1/consents/{consent['id']}/revoke",
        json={"reason": "Revocado."},
        headers=officer.headers,
    ).get_json()
    assert revoked["notified"] == [COMAR]
    inbox = client.get("/v1/notifications", headers=comar.headers)
    assert inbox.status_code == 200
    [notice] = inbox.get_json()["notifications"]
    assert notice["event"] == "consent.revoked"
    assert notice["payload"]["consent_id"] == consent["id"]
    later = client.get(f"/v1/notifications?after={notice['id']}", headers=comar.headers)
    assert later.get_json()["notifications"] == []
    # Held for reading, never sent: the worker has nothing to deliver.
    from records_support import rows

    [(status,)] = rows(app, select(OutboxMessage.status))
    assert status == "held"
    # Nobody else reads COMAR's notifications.
    assert (
        client.get("/v1/notifications", headers=officer.headers).get_json()["notifications"] == []
    )
    unknown = client.get(f"/v1/notifications?after={notice['id']}", headers=officer.headers)
    assert unknown.status_code == 400
