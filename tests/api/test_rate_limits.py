"""Rate limits: failed client authentication and unknown bearer tokens answer 429 ``rate-limited``
(with ``Retry-After``, in Spanish and English) past the limit, per address and per client id,
while well-behaved agency traffic (token refreshes, bulk pushes) is never limited.

Addresses are set in the WSGI environ (``REMOTE_ADDR``, documentation ranges): no traffic leaves
the test client. The window's end is reached with a clock moved forward, not with sleeps.
"""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import limits.storage.memory
import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import OKPKey
from records_support import AgencyClient, add_agency, envelope, ndjson, push_bulk
from werkzeug.test import TestResponse

import exchange.ratelimit
from exchange import db
from exchange.agencies import register_agency
from exchange.agency_keys import public_jwk
from exchange.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from tests.conftest import make_hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

DIF = "mx.chp.dif"
COMAR = "mx.fed.comar"
ATTACKER = "192.0.2.66"  # TEST-NET-1: only ever a string in the WSGI environ
AGENCY_HOST = "198.51.100.7"  # TEST-NET-2
OTHER_HOST = "203.0.113.9"  # TEST-NET-3
TOKEN_URL = "http://127.0.0.1:8000/oauth/token"  # PUBLIC_URL default + /oauth/token
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIMITED = {"RATE_LIMIT_AUTH_FAILURES": "10 per minute"}


class Clock:
    """``time.time`` plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    # The in-memory storage of ``limits`` and the hub's Retry-After both read ``time.time``.
    moved = Clock()
    monkeypatch.setattr(limits.storage.memory, "time", moved)
    monkeypatch.setattr(exchange.ratelimit, "time", moved)
    return moved


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url, **LIMITED)
    yield app
    app.extensions["puente.db"].engine.dispose()


@pytest.fixture
def web(hub: Flask) -> FlaskClient:
    return hub.test_client()


def register(app: Flask, agency_id: str) -> tuple[str, OKPKey]:
    """An agency with a client secret and an Ed25519 key; returns both."""
    key = OKPKey.generate_key("Ed25519")
    with app.app_context(), db.database(app).sessions.begin() as session:
        result = register_agency(
            session,
            agency_id,
            f"Agencia {agency_id}",
            "state",
            "07",
            ["records:write", "records:read"],
            public_jwk=public_jwk(key),
            with_secret=True,
        )
    assert result.client_secret
    return result.client_secret, key


def token_request(
    web: FlaskClient, client_id: str, secret: str, address: str, lang: str = "es"
) -> TestResponse:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}", "Accept-Language": lang},
        environ_base={"REMOTE_ADDR": address},
    )


def assertion_request(web: FlaskClient, client_id: str, key: OKPKey, address: str) -> TestResponse:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    signed = jwt.encode({"alg": "EdDSA"}, claims, key, algorithms=["EdDSA"])
    return web.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        },
        environ_base={"REMOTE_ADDR": address},
    )


def api_get(web: FlaskClient, token: str, address: str) -> TestResponse:
    """A read that needs ``records:read``; a good token gets past authentication to a 404."""
    return web.get(
        "/v1/records/rec_nonexistent",
        query_string={"purpose": "case_management"},
        headers={"Authorization": f"Bearer {token}"},
        environ_base={"REMOTE_ADDR": address},
    )


def authenticated(response: TestResponse) -> bool:
    return response.status_code == 404 and response.get_json()["type"].endswith("/not-found")


def assert_rate_limited(response: TestResponse, window_seconds: int = 60) -> dict[str, Any]:
    assert response.status_code == 429, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    if response.request.path.startswith("/oauth/"):  # an OAuth error, as OAuth clients expect
        assert response.mimetype == "application/json"
        assert body["error"] == "temporarily_unavailable"
    else:
        assert response.mimetype == PROBLEM_MEDIA_TYPE
        assert body["type"] == PROBLEM_BASE + "rate-limited"
        assert body["status"] == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window_seconds
    assert body["retry_after"] == retry_after
    assert response.headers["X-Request-Id"] == body["request_id"]
    return body


def test_the_eleventh_failed_token_request_is_rate_limited_in_both_languages(
    hub: Flask, web: FlaskClient
) -> None:
    secret, _key = register(hub, DIF)
    for _ in range(10):
        response = token_request(web, DIF, "not-the-secret", ATTACKER)
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_client"

    spanish = assert_rate_limited(token_request(web, DIF, "not-the-secret", ATTACKER, "es"))
    assert "intentos de autenticación fallidos" in spanish["detail"]
    assert "Reintente en" in spanish["detail"]
    assert "Límite: 10 por minuto." in spanish["detail"]  # not the library's English

    english = assert_rate_limited(token_request(web, DIF, "not-the-secret", ATTACKER, "en"))
    assert "failed authentication attempts" in english["detail"]
    assert english["limit"] == "10 per 1 minute"
    assert "Limit: 10 per minute." in english["detail"]

    # The address is refused before its credentials are looked at, even good ones.
    assert_rate_limited(token_request(web, DIF, secret, ATTACKER))


def test_bad_assertions_count_as_failures(hub: Flask, web: FlaskClient) -> None:
    register(hub, DIF)
    stranger_key = OKPKey.generate_key("Ed25519")  # not a key of the agency
    for _ in range(10):
        response = assertion_request(web, DIF, stranger_key, ATTACKER)
        assert response.status_code == 400  # invalid_client without an Authorization header
        assert response.get_json()["error"] == "invalid_client"
    assert_rate_limited(assertion_request(web, DIF, stranger_key, ATTACKER))


def test_a_good_client_keeps_getting_tokens_while_a_bad_one_is_limited(
    hub: Flask, web: FlaskClient
) -> None:
    dif_secret, _ = register(hub, DIF)
    register(hub, COMAR)
    for _ in range(12):
        token_request(web, COMAR, "wrong", ATTACKER)
    assert_rate_limited(token_request(web, COMAR, "wrong", ATTACKER))

    # Refreshing far more often than the failure limit, from its own address: never limited.
    for _ in range(25):
        response = token_request(web, DIF, dif_secret, AGENCY_HOST)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert authenticated(api_get(web, response.get_json()["access_token"], AGENCY_HOST))


def test_failures_from_many_addresses_never_lock_the_agency_out(
    hub: Flask, web: FlaskClient
) -> None:
    # Someone who knows the agency's id fails from a new address each time: no address reaches
    # its limit, the client id does, and its failures get 429, but its real secret still works.
    secret, key = register(hub, DIF)
    for number in range(10):
        assert token_request(web, DIF, "guess", f"192.0.2.{number + 1}").status_code == 401
    body = assert_rate_limited(token_request(web, DIF, "guess", "192.0.2.100", "en"))
    assert "for this client" in body["detail"]
    assert token_request(web, DIF, secret, AGENCY_HOST).status_code == 200
    assert assertion_request(web, DIF, key, OTHER_HOST).status_code == 200


def test_unknown_bearer_tokens_are_limited_per_address(hub: Flask, web: FlaskClient) -> None:
    secret, _ = register(hub, DIF)
    token = token_request(web, DIF, secret, ATTACKER).get_json()["access_token"]
    for number in range(10):
        response = api_get(web, f"garbage-{number}", ATTACKER)
        assert response.status_code == 401
        assert response.get_json()["type"] == PROBLEM_BASE + "unauthenticated"
    body = assert_rate_limited(api_get(web, "garbage-10", ATTACKER))
    assert "tokens de acceso no válidos" in body["detail"]
    # Counted only once a token fails: a valid token from the same address still works, and
    # another address's bad token is its own first failure.
    assert authenticated(api_get(web, token, ATTACKER))
    assert api_get(web, "garbage-11", OTHER_HOST).status_code == 401


def test_a_bulk_push_of_many_lines_and_many_pushes_are_not_limited(
    tmp_path: Path, database_url: str
) -> None:
    # Both limits on and small: a bulk push is one request, whatever its number of lines.
    app = make_hub(tmp_path, database_url, RATE_LIMIT="30 per minute", **LIMITED)
    web = app.test_client()
    dif: AgencyClient = add_agency(app, DIF)
    total = 1500 if database_url.startswith("sqlite") else 400
    response, results = push_bulk(web, dif, [envelope(f"L{n}") for n in range(total)])
    assert response.status_code == 200
    assert len(results) == total
    assert {result["status"] for result in results} == {"stored"}, results[:3]
    for batch in range(12):  # more pushes than failures allowed: successes never count
        response = web.post(
            "/v1/records/bulk",
            data=ndjson([envelope(f"B{batch}-{n}") for n in range(5)]),
            headers={**dif.headers, "Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 200
    app.extensions["puente.db"].engine.dispose()


def test_the_limit_resets_when_the_window_ends(hub: Flask, web: FlaskClient, clock: Clock) -> None:
    secret, _ = register(hub, DIF)
    for _ in range(10):
        token_request(web, DIF, "wrong", ATTACKER)
    response = token_request(web, DIF, secret, ATTACKER)
    assert_rate_limited(response)
    clock.offset += int(response.headers["Retry-After"]) + 1
    assert token_request(web, DIF, secret, ATTACKER).status_code == 200
    # A new window: ten more failures before the next 429.
    for _ in range(10):
        assert token_request(web, DIF, "wrong", ATTACKER).status_code == 401
    assert_rate_limited(token_request(web, DIF, "wrong", ATTACKER))


def test_overall_per_client_limit(tmp_path: Path, database_url: str) -> None:
    app = make_hub(tmp_path, database_url, RATE_LIMIT="5 per minute")
    web = app.test_client()
    secret, _ = register(app, DIF)
    other = add_agency(app, COMAR)
    token = token_request(web, DIF, secret, AGENCY_HOST).get_json()["access_token"]  # 1st
    for _ in range(4):  # 2nd to 5th
        assert authenticated(api_get(web, token, AGENCY_HOST))
    body = assert_rate_limited(api_get(web, token, OTHER_HOST), window_seconds=60)
    assert body["limit"] == "5 per 1 minute"
    assert "límite de solicitudes" in body["detail"]
    # Its budget covers new tokens too; other clients have their own.
    assert_rate_limited(token_request(web, DIF, secret, AGENCY_HOST))
    assert authenticated(api_get(web, other.token, AGENCY_HOST))
    app.extensions["puente.db"].engine.dispose()


def test_limits_are_off_in_tests_unless_asked_and_on_in_a_served_hub(
    tmp_path: Path, database_url: str
) -> None:
    app = make_hub(tmp_path / "testing", database_url)
    web = app.test_client()
    register(app, DIF)
    for _ in range(15):
        assert token_request(web, DIF, "wrong", ATTACKER).status_code == 401
    for number in range(15):
        assert api_get(web, f"garbage-{number}", ATTACKER).status_code == 401
    app.extensions["puente.db"].engine.dispose()

    served = make_hub(tmp_path / "served", database_url, TESTING=False)
    state = served.extensions["puente.ratelimit"]
    assert [str(item) for item in state.auth_failures] == ["10 per 1 minute"]
    assert state.per_client == []
    served.extensions["puente.db"].engine.dispose()


def test_forwarded_address_is_used_behind_trusted_proxies(tmp_path: Path) -> None:
    app = make_hub(
        tmp_path, f"sqlite:///{tmp_path / 'puente.db'}", RATE_LIMIT_PROXY_HOPS=1, **LIMITED
    )
    web = app.test_client()
    secret, _ = register(app, DIF)
    proxy = "127.0.0.1"
    for _ in range(11):
        web.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic eDp5", "X-Forwarded-For": f"203.0.113.50, {ATTACKER}"},
            environ_base={"REMOTE_ADDR": proxy},
        )
    # The client behind the same proxy, with another forwarded address, is not limited.
    raw = base64.b64encode(f"{DIF}:{secret}".encode()).decode()
    response = web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}", "X-Forwarded-For": AGENCY_HOST},
        environ_base={"REMOTE_ADDR": proxy},
    )
    assert response.status_code == 200
    assert_rate_limited(
        web.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {raw}", "X-Forwarded-For": ATTACKER},
            environ_base={"REMOTE_ADDR": proxy},
        )
    )
    app.extensions["puente.db"].engine.dispose()


def _redis_listening() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_listening(), reason="no Redis at 127.0.0.1:6379")
def test_redis_storage_counts_across_workers(tmp_path: Path) -> None:
    # Two apps stand for two gunicorn workers (or hosts) of one hub sharing Redis.
    hub_id = f"mx.test-{uuid.uuid4().hex[:12]}"  # keys of its own, expiring with the window
    url = f"sqlite:///{tmp_path / 'puente.db'}"
    config = {"RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0", "HUB_ID": hub_id, **LIMITED}
    first = make_hub(tmp_path, url, **config)
    second = make_hub(tmp_path, url, **config)
    register(first, DIF)
    for worker in (first, second) * 5:
        assert token_request(worker.test_client(), DIF, "wrong", ATTACKER).status_code == 401
    assert_rate_limited(token_request(second.test_client(), DIF, "wrong", ATTACKER))
    assert_rate_limited(token_request(first.test_client(), DIF, "wrong", ATTACKER))
    for app in (first, second):
        app.extensions["puente.db"].engine.dispose()


def test_unreachable_storage_lets_requests_through(tmp_path: Path) -> None:
    # Nothing listens on port 1: every counter fails, is logged, and the request goes on.
    app = make_hub(
        tmp_path,
        f"sqlite:///{tmp_path / 'puente.db'}",
        RATE_LIMIT_STORAGE="redis://127.0.0.1:1/0",
        RATE_LIMIT="5 per minute",
        **LIMITED,
    )
    web = app.test_client()
    secret, _ = register(app, DIF)
    for _ in range(12):
        assert token_request(web, DIF, "wrong", ATTACKER).status_code == 401
        assert api_get(web, "garbage", ATTACKER).status_code == 401
    token = token_request(web, DIF, secret, ATTACKER).get_json()["access_token"]
    for _ in range(8):
        assert authenticated(api_get(web, token, ATTACKER))
    app.extensions["puente.db"].engine.dispose()
