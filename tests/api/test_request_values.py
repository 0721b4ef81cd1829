"""Values the OpenAPI fuzzing found mishandled: each is refused with a 400 that names it, or
read as the integer it is, never a 500 or a quiet fallback."""

from __future__ import annotations

import pytest
from consent_support import (
    consent_document,
    consent_officer,
    procuraduria,
    push_child,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency

from exchange.api.audit import MAX_ALERT_THRESHOLD


@pytest.fixture
def oversight(app: Flask) -> AgencyClient:
    return add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )


def refused(response: object, parameter: str) -> None:
    assert response.status_code == 400, response.get_json()  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert body["type"].endswith("/validation")
    assert body["errors"][0]["pointer"] == parameter


@pytest.mark.parametrize(
    ("route", "parameter"),
    [
        ("/v1/audit/events?action=", "/query/action"),
        ("/v1/audit/events?since=", "/query/since"),
        ("/v1/audit/events?until=", "/query/until"),
        ("/v1/audit/events?format=xml", "/query/format"),
        ("/v1/audit/alerts?threshold=", "/query/threshold"),
        (f"/v1/audit/alerts?threshold={MAX_ALERT_THRESHOLD + 1}", "/query/threshold"),
        ("/v1/audit/alerts?threshold=9223372036854775808", "/query/threshold"),
    ],
)
def test_audit_query_values(
    client: FlaskClient, oversight: AgencyClient, route: str, parameter: str
) -> None:
    refused(client.get(route, headers=oversight.headers), parameter)


@pytest.mark.parametrize("value", ["501", "0", "x", ""])
def test_listing_limits(app: Flask, client: FlaskClient, value: str) -> None:
    agency = add_agency(app, "mx.chp.dif", scopes=("records:read", "records:write"))
    for route in ("/v1/shares", "/v1/notifications"):
        refused(client.get(f"{route}?limit={value}", headers=agency.headers), "/query/limit")
    assert client.get("/v1/shares?limit=500", headers=agency.headers).status_code == 200


def test_an_age_given_as_4_point_0_is_the_integer_4(app: Flask, client: FlaskClient) -> None:
    agency = add_agency(app, "mx.chp.dif", scopes=("records:read", "records:write"))
    response = client.post(
        "/v1/children/search",
        json={"purpose": "case_management", "full_name": "ana", "age_years": 4.0},
        headers=agency.headers,
    )
    assert response.status_code == 200, response.get_json()


def test_a_reason_over_2000_characters_is_refused_not_cut(app: Flask, client: FlaskClient) -> None:
    owner = add_agency(app, "mx.chp.dif")
    child_id = push_child(client, owner)["child_id"]
    add_agency(app, "mx.fed.comar", jurisdiction="00", kind="refugee_commission")
    consent = record_consent(
        client, procuraduria(app), child_id, consent_document("mx.fed.comar", decision="deny")
    )
    officer = consent_officer(app, "oficial-1")
    too_long = client.post(
        f"/v1/consents/{consent['id']}/revoke", json={"reason": "x" * 2001}, headers=officer.headers
    )
    refused(too_long, "/reason")
    exact = client.post(
        f"/v1/consents/{consent['id']}/revoke", json={"reason": "x" * 2000}, headers=officer.headers
    )
    assert exact.status_code == 200, exact.get_json()
