"""Routes every kind of caller once reached with any valid token need a fitting scope:
``GET /v1/notifications`` (``records:read`` or ``federation``), ``GET /v1/grants``
(``access:request``, ``access:decide`` or ``consent:read``) and ``GET /v1/access-requests/{id}``
(``access:request`` or ``access:decide``). A token with none of them gets the same 403
``forbidden`` problem as any other route's, before anything is looked up; the rightful callers
still get their answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from consent_support import (
    CLINIC,
    COMAR,
    OWNER,
    PersonClient,
    add_person_client,
    approve,
    consent_document,
    procuraduria,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, issue_token, read


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: Any, *scopes: str) -> None:
    """The 403 every scoped route gives, naming the scopes the route takes."""
    assert response.status_code == 403, response.get_json()
    assert response.content_type.startswith("application/problem+json")
    problem = response.get_json()
    assert problem["type"].endswith("/forbidden")
    assert problem["status"] == 403
    detail = problem["detail"]
    text = " ".join(detail.values()) if isinstance(detail, dict) else detail
    for scope in scopes:
        assert scope in text


def ask(client: FlaskClient, headers: dict[str, str], child_id: str) -> dict[str, Any]:
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": "legal_representation",
            "categories": ["identity"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


# --- GET /v1/notifications -------------------------------------------------------------------


def test_notifications_need_records_read(
    app: Flask, client: FlaskClient, owner: AgencyClient, pushed: dict[str, Any]
) -> None:
    # COMAR read the record under a consent and has no webhook: its system reads the notice
    # of the revocation here.
    officer = procuraduria(app)
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    consent = record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"]),
    )
    assert read(client, comar, pushed["record_id"], purpose="asylum_procedure").status_code == 200
    revoked = client.post(
        f"/v1/consents/{consent['id']}/revoke",
        json={"reason": "Revocado."},
        headers=officer.headers,
    )
    assert revoked.get_json()["notified"] == [COMAR]
    inbox = client.get("/v1/notifications", headers=comar.headers)
    assert inbox.status_code == 200
    [notice] = inbox.get_json()["notifications"]
    assert notice["event"] == "consent.revoked"
    reader = issue_token(app, COMAR, ["records:read"])
    assert client.get("/v1/notifications", headers=bearer(reader)).get_json() == inbox.get_json()

    # COMAR's tokens without records:read (or federation) are refused, with or without
    # `after`, before the notifications are looked up.
    for scopes in (["records:write"], ["audit:read"], ["consent:read", "access:request"]):
        token = issue_token(app, COMAR, scopes)
        for path in ("/v1/notifications", f"/v1/notifications?after={notice['id']}"):
            assert_refused(client.get(path, headers=bearer(token)), "records:read")
    assert client.get("/v1/notifications").status_code == 401


# --- GET /v1/access-requests/{id} -------------------------------------------------------------


def test_an_access_request_is_read_with_access_request_or_access_decide(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    asked = ask(client, lawyer.headers, pushed["child_id"])
    path = f"/v1/access-requests/{asked['id']}"
    mine = client.get(path, headers=lawyer.headers)
    assert mine.status_code == 200
    assert mine.get_json()["id"] == asked["id"]
    assert client.get(path, headers=officer.headers).status_code == 200

    # The requester's own token without access:request, the owner's system, oversight: 403,
    # for a request that exists and for one that does not alike.
    narrow = issue_token(app, CLINIC, ["records:read"], person_id=lawyer.id)
    oversight = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    writer = issue_token(app, OWNER, ["records:write"])
    for headers in (bearer(narrow), oversight.headers, bearer(writer)):
        for target in (path, "/v1/access-requests/acr_000000000000000000000000"):
            assert_refused(client.get(target, headers=headers), "access:request", "access:decide")
    assert client.get(path).status_code == 401


# --- GET /v1/grants ---------------------------------------------------------------------------


def test_grants_are_listed_with_access_request_access_decide_or_consent_read(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    asked = ask(client, lawyer.headers, pushed["child_id"])
    grant_id = approve(client, officer, asked["id"])["grant_id"]

    listed = client.get("/v1/grants", headers=lawyer.headers)
    assert listed.status_code == 200
    assert [g["id"] for g in listed.get_json()["grants"]] == [grant_id]
    assert client.get("/v1/grants", headers=officer.headers).get_json()["grants"] == []
    consent_reader = issue_token(app, "mx.chp.procuraduria", ["consent:read"])
    assert client.get("/v1/grants", headers=bearer(consent_reader)).status_code == 200

    narrow = issue_token(app, CLINIC, ["records:read"], person_id=lawyer.id)
    add_agency(app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",))
    auditor = add_person_client(app, "aud-001", "mx.fed.cndh", ["auditor"], ["audit:read"])
    writer = issue_token(app, OWNER, ["records:write"])
    for headers in (bearer(narrow), auditor.headers, bearer(writer)):
        assert_refused(
            client.get("/v1/grants", headers=headers),
            "access:request",
            "access:decide",
            "consent:read",
        )
    assert client.get("/v1/grants").status_code == 401


# --- the description ----------------------------------------------------------------------------


def test_openapi_names_the_scopes_of_these_routes(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]

    def scopes(path: str) -> list[list[str]]:
        operation = paths[path]["get"]
        assert "403" in operation["responses"]
        return [requirement["bearer"] for requirement in operation["security"]]

    assert scopes("/v1/notifications") == [["records:read"], ["federation"]]
    assert scopes("/v1/access-requests/{request_id}") == [["access:request"], ["access:decide"]]
    assert scopes("/v1/grants") == [["access:request"], ["access:decide"], ["consent:read"]]
