"""A rate-limit refusal at ``/oauth/*`` is an OAuth error (RFC 6749 §5.2), as every other error
there is: OAuth clients read ``error``, not a problem's ``type``. ``temporarily_unavailable``,
with ``Retry-After``, the ASCII ``error_description`` the RFC asks for, ``detail`` in the
client's language, the request id and the limit reached. Elsewhere it stays the
``rate-limited`` problem.

Addresses are set in the WSGI environ (documentation ranges): no traffic leaves the test client.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency
from werkzeug.test import TestResponse

from exchange import db
from exchange.agencies import register_agency
from exchange.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from tests.conftest import make_hub

DIF = "mx.chp.dif"
ATTACKER = "192.0.2.66"  # TEST-NET-1
AGENCY_HOST = "198.51.100.7"  # TEST-NET-2
LIMIT = "3 per minute"


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url, RATE_LIMIT_AUTH_FAILURES=LIMIT)
    yield app
    app.extensions["puente.db"].engine.dispose()


@pytest.fixture
def web(hub: Flask) -> FlaskClient:
    return hub.test_client()


def register(app: Flask, agency_id: str) -> str:
    with app.app_context(), db.database(app).sessions.begin() as session:
        registered = register_agency(
            session,
            agency_id,
            f"Agencia {agency_id}",
            "state",
            "07",
            ["records:read"],
            with_secret=True,
        )
    assert registered.client_secret
    return registered.client_secret


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post(
    web: FlaskClient,
    path: str,
    secret: str,
    address: str = ATTACKER,
    lang: str = "es",
    **form: str,
) -> TestResponse:
    return web.post(
        path,
        data=form or {"grant_type": "client_credentials"},
        headers={"Authorization": basic(DIF, secret), "Accept-Language": lang},
        environ_base={"REMOTE_ADDR": address},
    )


def assert_oauth_rate_limited(response: TestResponse, limit: str) -> dict[str, Any]:
    """The 429 an OAuth client understands: RFC 6749's members, no problem's."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"].isascii()
    assert "type" not in body and "title" not in body
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert body["retry_after"] == retry_after
    assert body["limit"] == limit
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert response.headers["Cache-Control"] == "no-store"
    return body


def test_too_many_failed_token_requests_answer_an_oauth_error_in_both_languages(
    hub: Flask, web: FlaskClient
) -> None:
    secret = register(hub, DIF)
    for _ in range(3):
        assert post(web, "/oauth/token", "wrong").get_json()["error"] == "invalid_client"

    spanish = post(web, "/oauth/token", "wrong", lang="es")
    body = assert_oauth_rate_limited(spanish, "3 per 1 minute")
    assert spanish.headers["Content-Language"] == "es"
    assert "intentos de autenticación fallidos" in body["detail"]
    assert "Límite: 3 por minuto." in body["detail"]
    assert "failed authentication attempts" in body["error_description"]

    english = post(web, "/oauth/token", "wrong", lang="en")
    body = assert_oauth_rate_limited(english, "3 per 1 minute")
    assert english.headers["Content-Language"] == "en"
    assert "failed authentication attempts" in body["detail"]

    # The address is refused before its credentials are looked at, at every OAuth route.
    assert_oauth_rate_limited(post(web, "/oauth/token", secret), "3 per 1 minute")
    assert_oauth_rate_limited(
        post(web, "/oauth/introspect", secret, token="anything"), "3 per 1 minute"
    )
    assert_oauth_rate_limited(
        post(web, "/oauth/revoke", secret, token="anything"), "3 per 1 minute"
    )


def test_a_client_id_past_its_failures_gets_the_oauth_error_from_any_address(
    hub: Flask, web: FlaskClient
) -> None:
    secret = register(hub, DIF)
    for number in range(3):
        post(web, "/oauth/token", "guess", address=f"192.0.2.{number + 1}")
    body = assert_oauth_rate_limited(
        post(web, "/oauth/token", "guess", address="192.0.2.100", lang="en"), "3 per 1 minute"
    )
    assert "for this client" in body["detail"]
    assert post(web, "/oauth/token", secret, address=AGENCY_HOST).status_code == 200


def test_a_spent_request_budget_is_an_oauth_error_at_oauth_and_a_problem_elsewhere(
    tmp_path: Path, database_url: str
) -> None:
    app = make_hub(tmp_path, database_url, RATE_LIMIT="2 per minute")
    web = app.test_client()
    secret = register(app, DIF)
    token = post(web, "/oauth/token", secret, address=AGENCY_HOST).get_json()["access_token"]
    assert post(web, "/oauth/token", secret, address=AGENCY_HOST).status_code == 200
    # The budget is spent: a third token is refused as OAuth clients expect...
    assert_oauth_rate_limited(
        post(web, "/oauth/token", secret, address=AGENCY_HOST), "2 per 1 minute"
    )
    # ...and a read with the token it has as the API's problem.
    read = web.get(
        "/v1/records/rec_nonexistent",
        query_string={"purpose": "case_management"},
        headers={"Authorization": f"Bearer {token}"},
        environ_base={"REMOTE_ADDR": AGENCY_HOST},
    )
    assert read.status_code == 429
    assert read.mimetype == PROBLEM_MEDIA_TYPE
    assert read.get_json()["type"] == PROBLEM_BASE + "rate-limited"
    app.extensions["puente.db"].engine.dispose()


def test_unknown_bearer_tokens_past_the_limit_stay_a_problem(hub: Flask, web: FlaskClient) -> None:
    add_agency(hub, DIF)
    for number in range(4):
        answer = web.get(
            "/v1/records/rec_nonexistent",
            query_string={"purpose": "case_management"},
            headers={"Authorization": f"Bearer garbage-{number}"},
            environ_base={"REMOTE_ADDR": ATTACKER},
        )
    assert answer.status_code == 429
    assert answer.mimetype == PROBLEM_MEDIA_TYPE
    body = answer.get_json()
    assert body["type"] == PROBLEM_BASE + "rate-limited" and "error" not in body
    assert int(answer.headers["Retry-After"]) == body["retry_after"]
