"""Who may act as a child's consent authority: child-protection agencies only, never for their
own benefit — the holes an adversarial review found (a consulate acting for every child; an
agency recording a "court" consent to itself; an agency's officer approving its own agency's
request)."""

from __future__ import annotations

from typing import Any

from consent_support import (
    CLINIC,
    INM,
    PROCURADURIA,
    add_person_client,
    consent_document,
    consent_officer,
    deny,
    legal_representative,
    procuraduria,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency

from exchange import db
from exchange.child_duplicates import merge_children

CONSULATE = "gt.minex.consulado"
NUEVO_LEON = "mx.nl.dif"
CONSENT_SCOPES = ("records:read", "records:write", "consent:read", "consent:write")


def court_consent(grantee: str, grantor_agency: str | None = None) -> dict[str, Any]:
    document = consent_document(grantee, categories=["identity", "legal_status"])
    document["grantor"] = {"type": "court", "identity_verified": True}
    if grantor_agency:
        document["grantor"]["agency_id"] = grantor_agency
    document["policy_basis"] = [{"code": "court_order"}]
    return document


def test_a_foreign_authority_is_no_consent_authority_whatever_its_reach(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    consulate = add_agency(
        app,
        CONSULATE,
        scopes=CONSENT_SCOPES,
        jurisdiction="00",
        kind="foreign_authority",
        country="GT",
    )
    for path in (f"/v1/children/{child_id}/consents", f"/v1/children/{child_id}/views"):
        answer = client.get(path, headers=consulate.headers)
        assert answer.status_code == 404, (path, answer.get_json())  # as for no such child
    recorded = client.post(
        f"/v1/children/{child_id}/consents",
        json=court_consent(INM),
        headers=consulate.headers,
    )
    assert recorded.status_code == 404


def test_an_agency_does_not_record_a_consent_that_lets_itself_in(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    # Nuevo León holds a record of its own of the child (its record with her CURP, merged by
    # a person into her): it now handles her case, but a consent it records may not open the
    # child's other records to itself.
    child_id = push_child(client, owner)["child_id"]
    nuevo_leon = add_agency(app, NUEVO_LEON, scopes=CONSENT_SCOPES, jurisdiction="19")
    own = push_child(client, nuevo_leon, "NL-STUB")["child_id"]
    with app.app_context(), db.database(app).sessions() as session:
        merge_children(session, child_id, own, reason="la misma niña (CURP)")
        session.commit()
    for lang, words in (
        ("en", "does not record a consent that lets itself or its own people in"),
        ("es", "no registra un consentimiento que le da acceso a ella misma ni a su personal"),
    ):
        refused = client.post(
            f"/v1/children/{child_id}/consents",
            json=court_consent(NUEVO_LEON),
            headers={**nuevo_leon.headers, "Accept-Language": lang},
        )
        assert refused.status_code == 403, refused.get_json()
        assert words in refused.get_json()["detail"]
    assert (
        client.get(f"/v1/children/{child_id}/consents", headers=nuevo_leon.headers).get_json()[
            "consents"
        ]
        == []
    )
    # The Procuraduría may still record a consent for Nuevo León, as before.
    officer = procuraduria(app)
    granted = client.post(
        f"/v1/children/{child_id}/consents",
        json=consent_document(NUEVO_LEON),
        headers=officer.headers,
    )
    assert granted.status_code == 201, granted.get_json()


def consent_for_person(person_id: str) -> dict[str, Any]:
    """The Procuraduría's consent letting one person read the child's health data."""
    document = consent_document(PROCURADURIA, categories=["health"])
    document["grantee"] = [{"person_id": person_id}]
    document["provision"][0]["actor"] = [{"person_id": person_id}]
    return document


def test_an_officer_does_not_record_a_consent_that_lets_in_themselves_or_a_colleague(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    procuraduria(app)
    officer = consent_officer(app, "chp-oficial")
    consent_officer(app, "chp-colega")  # same Procuraduría
    add_agency(app, CLINIC, scopes=("records:read",), kind="legal_representative")
    lawyer = legal_representative(app, "abogada-clinica")
    for person_id in ("chp-oficial", "chp-colega"):
        refused = client.post(
            f"/v1/children/{child_id}/consents",
            json=consent_for_person(person_id),
            headers={**officer.headers, "Accept-Language": "en"},
        )
        assert refused.status_code == 403, refused.get_json()
        problem = refused.get_json()
        assert problem["type"].endswith("forbidden")
        assert "lets itself or its own people in" in problem["detail"]
        [error] = problem["errors"]
        assert person_id in error["message"] and PROCURADURIA in error["message"]
    # Nothing was stored, so the officer's own read stays refused.
    listed = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
    assert listed.get_json()["consents"] == []
    # A person of another agency (the clinic's lawyer) may be let in by the officer.
    granted = client.post(
        f"/v1/children/{child_id}/consents",
        json=consent_for_person("abogada-clinica"),
        headers=officer.headers,
    )
    assert granted.status_code == 201, granted.get_json()
    assert lawyer.id == "abogada-clinica"


def test_a_permit_with_an_empty_list_is_refused_rather_than_covering_everything(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    # A form whose every category box was cleared must not grant every category.
    child_id = push_child(client, owner)["child_id"]
    officer = procuraduria(app)
    for key in ("actor", "action", "purpose", "data_category", "record_ids"):
        document = consent_document(INM, categories=["identity"])
        document["provision"][0][key] = []
        refused = client.post(
            f"/v1/children/{child_id}/consents", json=document, headers=officer.headers
        )
        assert refused.status_code == 400, (key, refused.get_json())
        pointers = [error["pointer"] for error in refused.get_json()["errors"]]
        assert f"/provision/0/{key}" in pointers, (key, pointers)
    listed = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
    assert listed.get_json()["consents"] == []


def test_an_agencys_officer_does_not_approve_its_own_agencys_request(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    procuraduria(app)
    asking = add_agency(
        app, "mx.chp.otra.dif", scopes=("access:request", "records:read"), jurisdiction="07"
    )
    officer = add_person_client(
        app,
        "oficial-otra",
        "mx.chp.otra.dif",
        ["consent_officer"],
        ["access:decide", "consent:read"],
    )
    request = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": "case_management",
            "categories": ["identity"],
            "until": "2027-01-01T00:00:00Z",
        },
        headers=asking.headers,
    )
    assert request.status_code == 201, request.get_json()
    body = request.get_json()
    assert body["status"] == "pending", body
    approve = client.post(
        f"/v1/access-requests/{body['id']}/decision",
        json={"approve": True, "reason": "Es nuestro caso."},
        headers={**officer.headers, "Accept-Language": "en"},
    )
    assert approve.status_code == 403, approve.get_json()
    assert "or their agency's" in approve.get_json()["detail"]
    # Another agency's officer decides it; denying one's own agency's request stays possible.
    deny(client, officer, body["id"])
    assert PROCURADURIA  # the Procuraduría exists: the request is not left without authority


def test_a_consent_is_not_recorded_already_revoked_nor_with_a_provision_that_never_applies(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    officer = procuraduria(app)
    # Revoked on arrival would skip the revocation's audit entry and notifications.
    revoked = consent_document(INM, categories=["identity"])
    revoked["revocation"] = {"revoked_at": "2026-02-01T00:00:00-06:00", "reason": "x"}
    refused = client.post(
        f"/v1/children/{child_id}/consents", json=revoked, headers=officer.headers
    )
    assert refused.status_code == 400, refused.get_json()
    assert [e["pointer"] for e in refused.get_json()["errors"]] == ["/revocation"]
    # A nested period that ends before it starts would make the provision a dead letter.
    backwards = consent_document(INM, categories=["identity"])
    backwards["provision"][0]["period"] = {
        "start": "2027-01-01T00:00:00-06:00",
        "end": "2026-06-01T00:00:00-06:00",
    }
    refused = client.post(
        f"/v1/children/{child_id}/consents", json=backwards, headers=officer.headers
    )
    assert refused.status_code == 400, refused.get_json()
    assert "/provision/0/period/end" in [e["pointer"] for e in refused.get_json()["errors"]]
    listed = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
    assert listed.get_json()["consents"] == []


def test_an_administrator_acts_for_the_children_of_their_jurisdiction_only(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    chiapas_child = push_child(client, owner)["child_id"]
    nuevo_leon = add_agency(app, NUEVO_LEON, jurisdiction="19")
    nl_child = push_child(client, nuevo_leon, "NL-1")["child_id"]
    procuraduria(app)
    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    scopes = ["consent:read", "consent:write"]
    state_admin = add_person_client(app, "adm-chp", PROCURADURIA, ["administrator"], scopes)
    national_admin = add_person_client(app, "adm-fed", "mx.fed.pfpnna", ["administrator"], scopes)

    def consents(admin: Any, child_id: str) -> int:
        path = f"/v1/children/{child_id}/consents"
        return client.get(path, headers=admin.headers).status_code

    assert consents(state_admin, chiapas_child) == 200
    assert consents(state_admin, nl_child) == 404  # another state's child: as if none
    assert (consents(national_admin, chiapas_child), consents(national_admin, nl_child)) == (
        200,
        200,
    )
