"""OAuth2 for agency systems: every flow, and every refusal the issue lists.

An agency gets a token with ``client_secret_basic`` or ``private_key_jwt`` (an EdDSA assertion
built here with joserfc), uses it on routes that need a scope, introspects and revokes it.
Each bad input gets OAuth's own error (RFC 6749 §5.2) and leaves no token behind.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import OKPKey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from exchange import db
from exchange.agencies import disable_agency, register_agency, retire_key, rotate_key
from exchange.agency_keys import public_jwk
from exchange.audit_log import AuditEntry
from exchange.auth import AccessToken, current_actor, require_scope, utcnow
from exchange.oauth import UsedAssertion, consume_assertion_id
from exchange.people import add_person, issue_token
from tests.conftest import make_hub

# joserfc warns on every EdDSA use (RFC 9864 prefers "Ed25519"); the hub mandates EdDSA.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

PUBLIC_TOKEN_URL = "http://127.0.0.1:8000/oauth/token"  # PUBLIC_URL default + /oauth/token
LOCAL_TOKEN_URL = "http://localhost/oauth/token"  # as the test client's requests see it
HTTPS_HUB = "https://puente.example"  # PUBLIC_URL of a hub behind TLS
LAN_HUB = "http://10.0.0.5:8151"  # a hub reached over plain http on a local network
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@contextmanager
def admin(app: Flask) -> Iterator[Session]:
    """What the command line does: one transaction inside the hub's app context."""
    with app.app_context(), db.database(app).sessions.begin() as session:
        yield session


@dataclass
class Agency:
    id: str
    secret: str | None
    key: OKPKey


def register(
    app: Flask,
    agency_id: str = "mx.chp.dif",
    scopes: tuple[str, ...] = ("records:write", "records:read"),
    with_secret: bool = True,
) -> Agency:
    key = OKPKey.generate_key("Ed25519")
    with admin(app) as session:
        result = register_agency(
            session,
            agency_id,
            f"Agencia {agency_id}",
            "state",
            "07",
            list(scopes),
            public_jwk=public_jwk(key),
            with_secret=with_secret,
        )
    return Agency(agency_id, result.client_secret, key)


@pytest.fixture
def hub(app: Flask) -> Flask:
    # Two tiny routes, each needing one scope, stand in for the API.
    @app.get("/test/records")
    @require_scope("records:read")
    def _records() -> Any:
        return {"agency": current_actor().agency_id}

    @app.get("/test/audit")
    @require_scope("audit:read")
    def _audit() -> Any:
        return {"ok": True}

    return app


@pytest.fixture
def web(hub: Flask) -> FlaskClient:
    return hub.test_client()


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def assertion(
    key: OKPKey,
    client_id: str,
    *,
    aud: str | list[str] = PUBLIC_TOKEN_URL,
    lifetime: int = 60,
    jti: str | None = None,
    kid: str | None = "own",
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti or uuid.uuid4().hex,
        **claims,
    }
    for name in drop:
        body.pop(name)
    header = {"alg": "EdDSA"}
    if kid is not None:
        header["kid"] = key.thumbprint() if kid == "own" else kid
    return jwt.encode(header, body, key, algorithms=["EdDSA"])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A JWT made by hand, as an attacker would: ``alg`` none, or HMAC with a chosen key."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if hmac_key is None:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[header["alg"]]
    signature = hmac.new(hmac_key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims_for(client_id: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": PUBLIC_TOKEN_URL,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }


def token_with_assertion(web: FlaskClient, client_assertion: str, **form: str) -> Any:
    return web.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion,
            **form,
        },
    )


def token_with_secret(web: FlaskClient, agency: Agency, **form: str) -> Any:
    assert agency.secret
    return web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(agency.id, agency.secret),
    )


def refused(response: Any, error: str = "invalid_client", status: int | None = None) -> str:
    """Assert an OAuth error answer (RFC 6749 §5.2) and return its description."""
    body = response.get_json()
    assert body["error"] == error, body
    assert response.headers["X-Request-Id"]
    assert response.mimetype == "application/json"
    assert "access_token" not in body
    if status is not None:
        assert response.status_code == status
    else:
        assert response.status_code in (400, 401)
    # Every OAuth error says what went wrong: the RFC's ASCII text, and detail for a person.
    assert body["error_description"] and body["error_description"].isascii(), body
    assert body["detail"]
    return str(body["error_description"])


def token_count(app: Flask) -> int:
    with db.database(app).sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AccessToken)) or 0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- client_secret_basic ------------------------------------------------------------------------


def test_client_secret_basic_gets_a_short_lived_token_that_opens_routes(
    hub: Flask, web: FlaskClient
) -> None:
    agency = register(hub)
    response = token_with_secret(web, agency)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 15 * 60
    assert body["scope"] == "records:write records:read"  # default: every scope of the agency
    assert "refresh_token" not in body
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]

    answer = web.get("/test/records", headers=bearer(body["access_token"]))
    assert answer.status_code == 200
    assert answer.get_json() == {"agency": "mx.chp.dif"}

    with db.database(hub).sessions() as session:
        row = session.scalars(select(AccessToken)).one()
        assert row.token_hash != body["access_token"]  # only the hash is stored
        assert row.client_id == row.agency_id == "mx.chp.dif"
        assert (row.expires_at - row.issued_at) <= timedelta(minutes=15)


def test_token_lifetime_is_capped_at_15_minutes_and_expired_tokens_fail(
    tmp_path: Path, database_url: str
) -> None:
    capped = make_hub(tmp_path, database_url, OAUTH2_TOKEN_SECONDS=3600)
    try:
        agency = register(capped)
        web = capped.test_client()
        body = token_with_secret(web, agency).get_json()
        assert body["expires_in"] == 15 * 60
        # Move the token's expiry into the past: it must stop working.
        with admin(capped) as session:
            session.execute(update(AccessToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        introspected = web.post(
            "/oauth/introspect",
            data={"token": body["access_token"]},
            headers=basic(agency.id, agency.secret or ""),
        )
        assert introspected.get_json() == {"active": False}
    finally:
        capped.extensions["puente.db"].engine.dispose()


def test_expired_token_is_refused_on_routes(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    token = token_with_secret(web, agency).get_json()["access_token"]
    with admin(hub) as session:
        session.execute(update(AccessToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = web.get("/test/records", headers=bearer(token))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_unknown_disabled_and_wrong_secret_answers_are_identical(
    hub: Flask, web: FlaskClient
) -> None:
    # Nothing in the answer tells whether an agency id exists: an unknown id, a disabled
    # agency, a wrong secret and a secret for a key-only agency read the same, in both
    # languages (only the request id differs).
    agency = register(hub)
    key_only = register(hub, "mx.chp.tapachula.dif", with_secret=False)
    disabled = register(hub, "mx.nl.dif")
    with admin(hub) as session:
        disable_agency(session, disabled.id)
    attempts = [
        (agency.id, "not-the-secret"),
        ("mx.nadie.dif", agency.secret or ""),
        (disabled.id, disabled.secret or ""),
        (key_only.id, "anything"),
    ]
    for lang in ("es", "en"):
        answers = []
        for client_id, secret in attempts:
            for route in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
                response = web.post(
                    route,
                    data={"grant_type": "client_credentials", "token": "x"},
                    headers={**basic(client_id, secret), "Accept-Language": lang},
                )
                refused(response, status=401)
                body = response.get_json()
                del body["request_id"]
                answers.append((response.status_code, response.headers["Content-Language"], body))
        assert all(answer == answers[0] for answer in answers), answers
        assert "The client does not exist" not in json.dumps(answers[0])
    # The same with assertions: an unknown agency's reads as a real agency's forged one.
    forger = OKPKey.generate_key("Ed25519")
    for kid in ("own", None):
        unknown = token_with_assertion(web, assertion(forger, "mx.nadie.dif", kid=kid))
        forged = token_with_assertion(web, assertion(forger, agency.id, kid=kid))
        bodies = [unknown.get_json(), forged.get_json()]
        for body in bodies:
            del body["request_id"]
        assert bodies[0]["error"] == "invalid_client"
        assert (unknown.status_code, bodies[0]) == (forged.status_code, bodies[1])
    assert token_count(hub) == 0


def test_wrong_secret_unknown_and_disabled_agencies_are_invalid_client(
    hub: Flask, web: FlaskClient
) -> None:
    agency = register(hub)
    refused(
        web.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic(agency.id, "not-the-secret"),
        ),
        status=401,
    )
    refused(
        web.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic("mx.nadie.dif", agency.secret or ""),
        ),
        status=401,
    )
    refused(web.post("/oauth/token", data={"grant_type": "client_credentials"}), status=401)
    with admin(hub) as session:
        disable_agency(session, agency.id)
    refused(token_with_secret(web, agency), status=401)
    refused(token_with_assertion(web, assertion(agency.key, agency.id)))
    assert token_count(hub) == 0


def test_agency_without_secret_cannot_use_basic_auth(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub, with_secret=False)
    assert agency.secret is None
    refused(
        web.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic(agency.id, "anything"),
        ),
        status=401,
    )


# --- scopes -------------------------------------------------------------------------------------


def test_requested_scopes_narrow_the_token_and_routes_enforce_them(
    hub: Flask, web: FlaskClient
) -> None:
    agency = register(hub)
    body = token_with_secret(web, agency, scope="records:read").get_json()
    assert body["scope"] == "records:read"
    assert web.get("/test/records", headers=bearer(body["access_token"])).status_code == 200

    narrow = token_with_secret(web, agency, scope="records:write").get_json()["access_token"]
    missing = web.get("/test/records", headers=bearer(narrow))
    assert missing.status_code == 403
    assert missing.get_json()["type"].endswith("/forbidden")
    assert web.get("/test/audit", headers=bearer(narrow)).status_code == 403
    assert web.get("/test/records").status_code == 401


def test_unknown_or_unallowed_scope_is_invalid_scope(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    refused(token_with_secret(web, agency, scope="audit:read"), "invalid_scope", 400)
    refused(token_with_secret(web, agency, scope="records:read nonsense"), "invalid_scope", 400)
    assert token_count(hub) == 0


def test_oauth_errors_explain_themselves_in_the_clients_language(
    hub: Flask, web: FlaskClient
) -> None:
    agency = register(hub)
    spanish = web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={**basic(agency.id, "not-the-secret"), "Accept-Language": "es"},
    )
    body = spanish.get_json()
    assert body["error"] == "invalid_client"  # what OAuth libraries read, unchanged
    assert body["detail"].startswith("No se pudo autenticar a la institución")
    assert body["request_id"] == spanish.headers["X-Request-Id"]
    assert spanish.headers["Content-Language"] == "es"
    english = web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "records:read audit:read nonsense"},
        headers={**basic(agency.id, agency.secret or ""), "Accept-Language": "en"},
    )
    assert english.get_json()["error"] == "invalid_scope"
    assert english.get_json()["detail"] == (
        "Scope not granted to this agency, or not a scope at all: audit:read, nonsense."
    )
    kid = web.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(agency.key, agency.id, kid="no-such-key"),
        },
        headers={"Accept-Language": "es"},
    ).get_json()
    assert "Causa: la llave 'no-such-key' no es una llave vigente" in kid["detail"]
    grant = web.post(
        "/oauth/token",
        data={"grant_type": "password"},
        headers={**basic(agency.id, agency.secret or ""), "Accept-Language": "en"},
    ).get_json()
    assert grant["detail"] == "Unsupported grant type: use grant_type=client_credentials."
    # Every error carries the RFC's ASCII error_description too, as agencies.md documents.
    assert grant["error_description"] == grant["detail"]


def test_other_grant_types_are_refused(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    response = web.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "x", "password": "y"},
        headers=basic(agency.id, agency.secret or ""),
    )
    refused(response, "unsupported_grant_type", 400)


def test_a_client_id_other_than_the_assertions_subject_is_refused(
    hub: Flask, web: FlaskClient
) -> None:
    agency = register(hub, with_secret=False)
    register(hub, "mx.chp.tapachula.dif")
    response = token_with_assertion(
        web, assertion(agency.key, agency.id), client_id="mx.chp.tapachula.dif"
    )
    refused(response, "invalid_client", 400)
    assert "'sub'" in response.get_json()["detail"]
    # The assertion was not spent: the same request without the contradiction works.
    fine = token_with_assertion(web, assertion(agency.key, agency.id), client_id=agency.id)
    assert fine.status_code == 200, fine.get_json()


def test_two_client_authentications_in_one_request_are_refused(
    hub: Flask, web: FlaskClient
) -> None:
    with_key = register(hub, with_secret=False)
    with_secret = register(hub, "mx.chp.tapachula.dif")
    response = web.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(with_key.key, with_key.id),
        },
        headers={**basic(with_secret.id, with_secret.secret or ""), "Accept-Language": "es"},
    )
    refused(response, "invalid_request", 400)
    assert "un solo método" in response.get_json()["detail"]
    assert "access_token" not in response.get_json()


# --- private_key_jwt ----------------------------------------------------------------------------


def test_private_key_jwt_gets_a_token(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub, with_secret=False)
    response = token_with_assertion(web, assertion(agency.key, agency.id, aud=PUBLIC_TOKEN_URL))
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["access_token"]
    assert web.get("/test/records", headers=bearer(token)).get_json() == {"agency": agency.id}
    # Without a kid the hub tries each valid key of the agency.
    response = token_with_assertion(web, assertion(agency.key, agency.id, kid=None))
    assert response.status_code == 200, response.get_json()


def test_expired_assertion_is_refused(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    description = refused(
        token_with_assertion(web, assertion(agency.key, agency.id, lifetime=-120))
    )
    assert "expired" in description
    assert token_count(hub) == 0


def test_long_lived_or_exp_less_assertion_is_refused(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    description = refused(
        token_with_assertion(web, assertion(agency.key, agency.id, lifetime=3600))
    )
    assert "exp" in description
    refused(token_with_assertion(web, assertion(agency.key, agency.id, drop=("exp",))))
    refused(token_with_assertion(web, assertion(agency.key, agency.id, drop=("jti",))))
    assert token_count(hub) == 0


def test_replayed_assertion_is_refused(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    once = assertion(agency.key, agency.id)
    assert token_with_assertion(web, once).status_code == 200
    assert "used before" in refused(token_with_assertion(web, once))
    # A Spanish reader is told the cause too, not only the general sentence.
    spanish = web.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": once,
        },
        headers={"Accept-Language": "es"},
    ).get_json()
    assert "Causa" in spanish["detail"] and "used before" in spanish["detail"]
    # A fresh assertion reusing the jti is a replay too.
    jti = "reused-" + uuid.uuid4().hex
    assert token_with_assertion(web, assertion(agency.key, agency.id, jti=jti)).status_code == 200
    refused(token_with_assertion(web, assertion(agency.key, agency.id, jti=jti)))
    assert token_count(hub) == 2


def test_concurrent_replays_get_exactly_one_token(hub: Flask) -> None:
    agency = register(hub)
    # One request first, so the threads race on the assertion and not on Flask's lazy set-up.
    assert token_with_secret(hub.test_client(), agency).status_code == 200
    once = assertion(agency.key, agency.id)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        status = token_with_assertion(hub.test_client(), once).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [400] * 7
    assert token_count(hub) == 2


def test_used_assertion_ids_are_kept_per_client_until_they_expire(hub: Flask) -> None:
    later = utcnow() + timedelta(minutes=5)
    with hub.app_context():
        assert consume_assertion_id("mx.chp.dif", "old", utcnow() - timedelta(seconds=1))
        assert consume_assertion_id("mx.chp.dif", "new", later)
        assert not consume_assertion_id("mx.chp.dif", "new", later)
        assert consume_assertion_id("mx.chp.tapachula.dif", "new", later)  # per client
        # An expired id is forgotten (the assertion it came with can no longer be accepted).
        assert consume_assertion_id("mx.chp.dif", "old", later)
    with db.database(hub).sessions() as session:
        rows = session.execute(select(UsedAssertion.client_id, UsedAssertion.jti)).all()
    assert sorted(rows) == [
        ("mx.chp.dif", "new"),
        ("mx.chp.dif", "old"),
        ("mx.chp.tapachula.dif", "new"),
    ]


def test_forged_assertion_is_refused(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    forger = OKPKey.generate_key("Ed25519")
    # Signed by another key but naming the agency's kid: the signature does not verify.
    description = refused(
        token_with_assertion(web, assertion(forger, agency.id, kid=agency.key.thumbprint()))
    )
    assert "does not verify" in description
    # Signed by another key without a kid: no key of the agency verifies it.
    refused(token_with_assertion(web, assertion(forger, agency.id, kid=None)))
    # Signed by another agency's key, claiming to come from this one: sub names the key's
    # owner (and the signature verifies) but iss does not match it.
    other = register(hub, "mx.chp.tapachula.dif")
    description = refused(token_with_assertion(web, assertion(other.key, agency.id, sub=other.id)))
    assert "Issuer and Subject" in description
    assert token_count(hub) == 0


def test_wrong_audience_is_refused(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    for aud in ("https://otro-hub.example/oauth/token", "http://127.0.0.1:8000/", "puente"):
        assert "aud" in refused(
            token_with_assertion(web, assertion(agency.key, agency.id, aud=aud))
        )
    assert token_count(hub) == 0


def test_an_audience_list_is_refused_even_when_it_names_this_hub(
    hub: Flask, web: FlaskClient
) -> None:
    # An assertion that also names another server may have been handed to it, and that
    # server could replay it here: one audience, a string, only.
    agency = register(hub)
    for aud in ([PUBLIC_TOKEN_URL, "https://otro-hub.example/oauth/token"], [PUBLIC_TOKEN_URL]):
        description = refused(token_with_assertion(web, assertion(agency.key, agency.id, aud=aud)))
        assert "single string" in description
    assert token_count(hub) == 0
    assert token_with_assertion(web, assertion(agency.key, agency.id)).status_code == 200


def test_audience_is_public_url_never_the_host_a_request_names(
    hub: Flask, web: FlaskClient
) -> None:
    # The address a request says it reached (Host, X-Forwarded-Proto) is the client's to
    # choose: an assertion made for that address is refused; only PUBLIC_URL counts.
    agency = register(hub)
    spoofed = {"Host": "puente.example", "X-Forwarded-Proto": "https"}
    for base_url, aud in (
        ("https://puente.example", "https://puente.example/oauth/token"),
        ("http://localhost", LOCAL_TOKEN_URL),  # the test client's own address
    ):
        response = web.post(
            "/oauth/token",
            base_url=base_url,
            headers=spoofed if base_url.startswith("https") else {},
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion(agency.key, agency.id, aud=aud),
            },
        )
        assert "aud" in refused(response, status=400)
    assert token_count(hub) == 0


def test_audience_follows_the_configured_public_url(tmp_path: Path, database_url: str) -> None:
    https_hub = make_hub(tmp_path, database_url, PUBLIC_URL=HTTPS_HUB + "/")
    try:
        agency = register(https_hub)
        web = https_hub.test_client()
        # Reached at its public address or on the loopback one, the aud is PUBLIC_URL's.
        for base_url in (HTTPS_HUB, "http://localhost"):
            good = web.post(
                "/oauth/token",
                base_url=base_url,
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion(
                        agency.key, agency.id, aud=HTTPS_HUB + "/oauth/token"
                    ),
                },
            )
            assert good.status_code == 200, good.get_json()
        # The default PUBLIC_URL's endpoint is not this hub's audience any more.
        refused(token_with_assertion(web, assertion(agency.key, agency.id)))
    finally:
        https_hub.extensions["puente.db"].engine.dispose()


def test_alg_none_and_hmac_with_the_public_key_are_refused(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    kid = agency.key.thumbprint()
    description = refused(
        token_with_assertion(
            web, unsigned_jwt({"alg": "none", "kid": kid}, claims_for(agency.id), None)
        )
    )
    assert "EdDSA" in description
    public_pem = agency.key.as_pem(private=False)
    public_json = json.dumps(public_jwk(agency.key)).encode()
    x = base64.urlsafe_b64decode(public_jwk(agency.key)["x"] + "==")
    for secret in (public_pem, public_json, x):
        for alg in ("HS256", "HS512"):
            forged = unsigned_jwt({"alg": alg, "kid": kid}, claims_for(agency.id), secret)
            assert "EdDSA" in refused(token_with_assertion(web, forged))
    assert token_count(hub) == 0


def test_wrong_or_retired_key_id_is_refused(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    description = refused(
        token_with_assertion(web, assertion(agency.key, agency.id, kid="no-such-key"))
    )
    assert "no-such-key" in description
    # Another agency's key id is not this agency's.
    other = register(hub, "mx.chp.tapachula.dif")
    refused(token_with_assertion(web, assertion(agency.key, agency.id, kid=other.key.thumbprint())))
    with admin(hub) as session:
        retire_key(session, agency.id, agency.key.thumbprint())
    refused(token_with_assertion(web, assertion(agency.key, agency.id)))
    assert token_count(hub) == 0


def test_key_rotation_keeps_the_old_key_for_the_grace_period(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    new_key = OKPKey.generate_key("Ed25519")
    with admin(hub) as session:
        rotate_key(session, agency.id, public_jwk(new_key))
    for key in (agency.key, new_key):
        assert token_with_assertion(web, assertion(key, agency.id)).status_code == 200
        assert token_with_assertion(web, assertion(key, agency.id, kid=None)).status_code == 200

    held = token_with_assertion(web, assertion(new_key, agency.id)).get_json()["access_token"]
    assert web.get("/test/records", headers=bearer(held)).status_code == 200
    newest = OKPKey.generate_key("Ed25519")
    with admin(hub) as session:
        rotate_key(session, agency.id, public_jwk(newest), grace=timedelta(0))
    # Given up at once (perhaps compromised): what it obtained ends with it.
    assert web.get("/test/records", headers=bearer(held)).status_code == 401
    refused(token_with_assertion(web, assertion(new_key, agency.id)))
    refused(token_with_assertion(web, assertion(agency.key, agency.id, kid=None)))
    assert token_with_assertion(web, assertion(newest, agency.id)).status_code == 200


def test_unknown_agency_with_assertion_is_invalid_client(hub: Flask, web: FlaskClient) -> None:
    key = OKPKey.generate_key("Ed25519")
    refused(token_with_assertion(web, assertion(key, "mx.nadie.dif")))
    refused(token_with_assertion(web, "not.a.jwt"))


# --- disabled agencies, introspection, revocation ------------------------------------------------


def test_disabled_agency_token_stops_working_at_once(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    token = token_with_secret(web, agency).get_json()["access_token"]
    assert web.get("/test/records", headers=bearer(token)).status_code == 200
    with admin(hub) as session:
        disable_agency(session, agency.id)
    response = web.get("/test/records", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["type"].endswith("/unauthenticated")


def test_disabled_agency_is_refused_even_if_its_tokens_were_not_revoked(
    hub: Flask, web: FlaskClient
) -> None:
    # The resource side checks the agency itself, not only the token's revoked flag.
    from exchange.agencies import Agency as AgencyRow

    agency = register(hub)
    token = token_with_secret(web, agency).get_json()["access_token"]
    with admin(hub) as session:
        session.get(AgencyRow, agency.id).active = False  # type: ignore[union-attr]
    assert web.get("/test/records", headers=bearer(token)).status_code == 401


def test_introspection_shows_own_tokens_only(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    other = register(hub, "mx.chp.tapachula.dif")
    token = token_with_secret(web, agency, scope="records:read").get_json()["access_token"]
    others_token = token_with_secret(web, other).get_json()["access_token"]

    own = web.post(
        "/oauth/introspect", data={"token": token}, headers=basic(agency.id, agency.secret or "")
    )
    assert own.status_code == 200
    body = own.get_json()
    assert body["active"] is True
    assert body["client_id"] == body["sub"] == agency.id
    assert body["scope"] == "records:read"
    assert 0 < body["exp"] - body["iat"] <= 15 * 60
    assert own.headers["X-Request-Id"]

    # Another agency's token, and a token that never existed, look the same.
    for candidate in (others_token, "no-such-token"):
        answer = web.post(
            "/oauth/introspect",
            data={"token": candidate},
            headers=basic(agency.id, agency.secret or ""),
        )
        assert answer.get_json() == {"active": False}

    # Introspection with a private_key_jwt assertion works as well.
    with_assertion = web.post(
        "/oauth/introspect",
        data={
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(agency.key, agency.id),
        },
    )
    assert with_assertion.get_json()["active"] is True

    refused(web.post("/oauth/introspect", data={"token": token}), status=401)
    refused(
        web.post("/oauth/introspect", data={}, headers=basic(agency.id, agency.secret or "")),
        "invalid_request",
        400,
    )


def test_revocation(hub: Flask, web: FlaskClient) -> None:
    agency = register(hub)
    other = register(hub, "mx.chp.tapachula.dif")
    token = token_with_secret(web, agency).get_json()["access_token"]
    others_token = token_with_secret(web, other).get_json()["access_token"]

    # Nobody revokes another agency's token: the answer is the unknown token's (below).
    not_theirs = web.post(
        "/oauth/revoke",
        data={"token": others_token},
        headers=basic(agency.id, agency.secret or ""),
    )
    assert (not_theirs.status_code, not_theirs.get_json()) == (200, {})
    assert web.get("/test/records", headers=bearer(others_token)).status_code == 200

    revoked = web.post(
        "/oauth/revoke",
        data={
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(agency.key, agency.id),
        },
    )
    assert revoked.status_code == 200
    assert revoked.headers["X-Request-Id"]
    assert web.get("/test/records", headers=bearer(token)).status_code == 401
    introspected = web.post(
        "/oauth/introspect", data={"token": token}, headers=basic(agency.id, agency.secret or "")
    )
    assert introspected.get_json() == {"active": False}
    # Unknown tokens: nothing to do, still 200 (RFC 7009 §2.2).
    unknown = web.post(
        "/oauth/revoke",
        data={"token": "no-such-token"},
        headers=basic(agency.id, agency.secret or ""),
    )
    assert unknown.status_code == 200
    refused(web.post("/oauth/revoke", data={"token": token}), status=401)


def test_revoking_a_token_not_the_callers_answers_as_an_unknown_token(
    hub: Flask, web: FlaskClient
) -> None:
    # RFC 7009 §2.2: 200 for a token the server will not revoke, so the answer does not tell
    # whether a leaked string is a real token; and the token keeps working.
    agency = register(hub)
    other = register(hub, "mx.chp.tapachula.dif")
    others_token = token_with_secret(web, other).get_json()["access_token"]
    with admin(hub) as session:
        add_person(
            session,
            person_id="tapachula-representante",
            name="Representante",
            email="representante@example.org",
            agency_id=other.id,
            roles=["legal_representative"],
        )
        pat = issue_token(session, "tapachula-representante", ["records:read"]).token
    assert pat.startswith("pat_")

    def answer(candidate: str) -> tuple[int, Any, str, str]:
        response = web.post(
            "/oauth/revoke",
            data={"token": candidate},
            headers=basic(agency.id, agency.secret or ""),
        )
        return (
            response.status_code,
            response.get_data(as_text=True),
            response.headers["Content-Type"],
            response.headers.get("Cache-Control", ""),
        )

    unknown = answer("no-such-token")
    assert unknown[:2] == (200, "{}")
    for candidate in (others_token, pat, "pat_" + "x" * 43):
        assert answer(candidate) == unknown
    assert web.get("/test/records", headers=bearer(others_token)).status_code == 200
    assert web.get("/test/records", headers=bearer(pat)).status_code == 200
    own = web.post(
        "/oauth/introspect",
        data={"token": others_token},
        headers=basic(other.id, other.secret or ""),
    )
    assert own.get_json()["active"] is True
    # The person's own agency may end it (a caseworker who left), as it may introspect it.
    ended = web.post(
        "/oauth/revoke", data={"token": pat}, headers=basic(other.id, other.secret or "")
    )
    assert ended.status_code == 200
    assert web.get("/test/records", headers=bearer(pat)).status_code == 401


def audit_entries(app: Flask, action: str) -> list[dict[str, Any]]:
    with db.database(app).sessions() as session:
        rows = session.scalars(
            select(AuditEntry.entry)
            .where(AuditEntry.action == action)
            .order_by(AuditEntry.recorded_at)
        )
        return [json.loads(row) for row in rows]


def test_an_agency_revoking_its_persons_token_is_an_audit_entry(
    hub: Flask, web: FlaskClient
) -> None:
    # As `puente person revoke-token` writes: person_changed, token_revoked.<person>.<token id>;
    # the actor is the agency's system, not the hub's administrator.
    agency = register(hub)
    with admin(hub) as session:
        add_person(
            session,
            person_id="chp-representante",
            name="Representante",
            email="representante@example.org",
            agency_id=agency.id,
            roles=["legal_representative"],
        )
        issued = issue_token(session, "chp-representante", ["records:read"])
    before = len(audit_entries(hub, "person_changed"))

    def revoke(token: str) -> None:
        answer = web.post(
            "/oauth/revoke", data={"token": token}, headers=basic(agency.id, agency.secret or "")
        )
        assert answer.status_code == 200

    revoke(issued.token)
    assert web.get("/test/records", headers=bearer(issued.token)).status_code == 401
    written = audit_entries(hub, "person_changed")[before:]
    assert [e["reason_code"] for e in written] == [
        f"token_revoked.chp-representante.{issued.token_id}"
    ]
    assert written[0]["outcome"] == "success"
    assert written[0]["actor"]["agency_id"] == agency.id
    assert written[0]["actor"]["role"] == "system"
    assert issued.token not in json.dumps(written)
    # A token already revoked is not revoked again, nor logged again; and an agency system's
    # own token (issued without an entry, gone in 15 minutes) is no person's change.
    revoke(issued.token)
    revoke(token_with_secret(web, agency).get_json()["access_token"])
    assert len(audit_entries(hub, "person_changed")) == before + 1


def chunked_form(web: FlaskClient, route: str, body: bytes, agency: Agency) -> Any:
    """``body`` sent as a chunked request would come: no Content-Length."""
    return web.post(
        route,
        input_stream=io.BytesIO(body),
        content_type="application/x-www-form-urlencoded",
        headers={**basic(agency.id, agency.secret or ""), "Transfer-Encoding": "chunked"},
        environ_base={"wsgi.input_terminated": True},
    )


def test_a_chunked_form_over_the_limit_is_refused_not_cut(
    tmp_path: Path, database_url: str
) -> None:
    # Werkzeug cuts a chunked body at the limit; its first bytes alone would be a good form.
    # A per-client rate limit makes Flask-Limiter read the form's client id first of all.
    hub = make_hub(tmp_path, database_url, MAX_CONTENT_LENGTH=1024, RATE_LIMIT="100 per minute")
    web = hub.test_client()
    agency = register(hub)
    token = token_with_secret(web, agency).get_json()["access_token"]
    padding = b"&padding=" + b"a" * 4096
    before = token_count(hub)
    for route, form in (
        ("/oauth/token", b"grant_type=client_credentials"),
        ("/oauth/introspect", b"token=" + token.encode()),
        ("/oauth/revoke", b"token=" + token.encode()),
    ):
        answer = chunked_form(web, route, form + padding, agency)
        assert answer.status_code == 413, (route, answer.get_data(as_text=True))
        assert answer.mimetype == "application/problem+json"
        assert answer.get_json()["limit"] == 1024
    assert token_count(hub) == before
    # Nothing was revoked; and a chunked form within the limit is read as any other.
    still = chunked_form(web, "/oauth/introspect", b"token=" + token.encode(), agency)
    assert still.get_json()["active"] is True
    issued = chunked_form(web, "/oauth/token", b"grant_type=client_credentials", agency)
    assert issued.status_code == 200 and issued.get_json()["access_token"]


# --- transport ----------------------------------------------------------------------------------


def test_plain_http_hub_issues_tokens_on_any_host_name(hub: Flask, web: FlaskClient) -> None:
    # PUBLIC_URL http:// (the default, `puente demo`, a hub on a local network): OAuth over
    # plain http works whatever host name the client used, not only localhost.
    agency = register(hub)
    lan = {"base_url": LAN_HUB, "headers": basic(agency.id, agency.secret or "")}
    issued = web.post("/oauth/token", data={"grant_type": "client_credentials"}, **lan)
    assert issued.status_code == 200, issued.get_json()
    token = issued.get_json()["access_token"]
    assert web.post("/oauth/introspect", data={"token": token}, **lan).get_json()["active"]
    assert web.post("/oauth/revoke", data={"token": token}, **lan).status_code == 200
    assert web.get("/test/records", headers=bearer(token)).status_code == 401
    # The loopback address, as before, with an assertion.
    with_key = token_with_assertion(hub.test_client(), assertion(agency.key, agency.id))
    assert with_key.status_code == 200


def test_https_hub_reached_over_plain_http_says_how_to_configure_it(
    tmp_path: Path, database_url: str
) -> None:
    # PUBLIC_URL https://: OAuth over plain http to anything but a loopback address is a clear
    # invalid_request (never a 500), in the client's language; nothing is issued.
    https_hub = make_hub(tmp_path, database_url, PUBLIC_URL=HTTPS_HUB)
    try:
        agency = register(https_hub)
        web = https_hub.test_client()
        for base_url in (LAN_HUB, "http://puente.example"):
            for route in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
                for lang in ("es", "en"):
                    response = web.post(
                        route,
                        base_url=base_url,
                        data={"grant_type": "client_credentials", "token": "x"},
                        headers={
                            **basic(agency.id, agency.secret or ""),
                            "Accept-Language": lang,
                        },
                    )
                    description = refused(response, "invalid_request", 400)
                    assert "https" in description and "X-Forwarded-Proto" in description
                    assert HTTPS_HUB + "/oauth/token" in description
                    detail = response.get_json()["detail"]
                    assert detail.startswith(
                        "OAuth necesita https" if lang == "es" else "OAuth needs https"
                    )
        assert token_count(https_hub) == 0
        # Over https, and over plain http to the loopback address, it works.
        for base_url in (HTTPS_HUB, "http://localhost", "http://127.0.0.1:8000"):
            ok = web.post(
                "/oauth/token",
                base_url=base_url,
                data={"grant_type": "client_credentials"},
                headers=basic(agency.id, agency.secret or ""),
            )
            assert ok.status_code == 200, (base_url, ok.get_json())
    finally:
        https_hub.extensions["puente.db"].engine.dispose()


def test_token_endpoint_answers_only_post(web: FlaskClient) -> None:
    response = web.get("/oauth/token")
    assert response.status_code == 405
    assert response.headers["X-Request-Id"]
