"""A list or search route refuses a query parameter it does not know (400, naming it and the
ones it takes, in Spanish and English) instead of ignoring it: a misspelt filter
(``chid_id``) used to list everything, and the officer or auditor reading the answer took it
for the child they asked about. Known parameters are still answered, and a repeated one is
still refused."""

from __future__ import annotations

import pytest
from consent_support import PROCURADURIA, consent_officer, procuraduria
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency

from tests.api.test_audit_api import _log, _token

#: route, the misspelt parameter, a query it answers, the parameters it names as accepted.
ROUTES = [
    ("/v1/access-requests", "chid_id", "status=pending&limit=5", "status, limit, after"),
    ("/v1/overrides", "estado", "status=open&limit=5", "status, limit, after"),
    ("/v1/notifications", "since", "limit=5", "limit, after"),
    ("/v1/shares", "child_id", "role=sent&limit=5", "role, kind, status, limit"),
    ("/v1/audit/events", "chid_id", "limit=5&outcome=success", "limit, cursor, action"),
    ("/v1/audit/entries", "begin", "start=0&end=5", "start, end"),
    ("/v1/audit/alerts", "windw", "window=3600", "window, threshold"),
    ("/v1/audit/proofs/consistency", "size", "first=1&second=5", "first, second"),
    ("/v1/audit/proofs/inclusion", "leaf", "index=1&tree_size=5", "index, tree_size"),
]


@pytest.fixture
def callers(app: Flask) -> dict[str, dict[str, str]]:
    _log(app, 10)
    procuraduria(app)
    officer = consent_officer(app, "co-qp-001", PROCURADURIA)
    reader = add_agency(app, "mx.qp.dif")
    return {
        "/v1/access-requests": officer.headers,
        "/v1/overrides": officer.headers,
        "/v1/notifications": reader.headers,
        "/v1/shares": reader.headers,
        "audit": _token(app, ["audit:read"]),
    }


def _headers(callers: dict[str, dict[str, str]], route: str, language: str) -> dict[str, str]:
    caller = callers["audit"] if route.startswith("/v1/audit/") else callers[route]
    return {**caller, "Accept-Language": language}


@pytest.mark.parametrize(("route", "unknown", "known", "accepted"), ROUTES)
def test_an_unknown_parameter_is_refused_naming_it_and_the_known_ones_are_answered(
    client: FlaskClient,
    callers: dict[str, dict[str, str]],
    route: str,
    unknown: str,
    known: str,
    accepted: str,
) -> None:
    answered = client.get(f"{route}?{known}", headers=_headers(callers, route, "en"))
    assert answered.status_code == 200, answered.get_data(as_text=True)

    refused = client.get(f"{route}?{known}&{unknown}=x", headers=_headers(callers, route, "en"))
    assert refused.status_code == 400, refused.get_data(as_text=True)
    problem = refused.get_json()
    assert problem["type"].endswith("/validation")
    assert problem["detail"].startswith(
        f"Parameter {unknown}: is not one of this route's; it takes {accepted}"
    )
    assert problem["errors"][0]["pointer"] == f"/query/{unknown}"

    spanish = client.get(f"{route}?{unknown}=x", headers=_headers(callers, route, "es"))
    assert spanish.status_code == 400
    assert spanish.get_json()["detail"].startswith(
        f"Parámetro {unknown}: no existe en esta ruta; acepta {accepted}"
    )


def test_a_route_without_parameters_says_it_takes_none(
    client: FlaskClient, callers: dict[str, dict[str, str]]
) -> None:
    headers = _headers(callers, "/v1/audit/checkpoint", "en")
    assert client.get("/v1/audit/checkpoint", headers=headers).status_code in (200, 404)
    problem = client.get("/v1/audit/checkpoint?size=5", headers=headers).get_json()
    assert problem["detail"] == "Parameter size: is not one of this route's; it takes none."


def test_the_token_is_checked_before_the_parameters(app: Flask, client: FlaskClient) -> None:
    assert client.get("/v1/access-requests?chid_id=x").status_code == 401
    reader = add_agency(app, "mx.qp.lector")
    assert client.get("/v1/audit/events?chid_id=x", headers=reader.headers).status_code == 403
