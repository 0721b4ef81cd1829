"""What a developer integrating an agency system from the docs alone ran into: a notification's
``record_url`` that could not be read as given, a disabled agency's assertion answered unlike
the documented "unknown or disabled", a JSON body to the token endpoint answered as an
unsupported grant type, and a description whose ``webhooks`` said nothing of notifications. The
receiver docs/agencies.md §4 now prints is run here, as printed, on a notification the hub signs."""

from __future__ import annotations

import base64
import email.message
import io
import re
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from consent_support import (
    PROCURADURIA,
    adolescent_record,
    consent_document,
    consent_officer,
    procuraduria,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import OKPKey
from records_support import AgencyClient, add_agency, push
from sqlalchemy import func, select

from exchange import db
from exchange.agencies import Agency, disable_agency, register_agency
from exchange.agency_keys import public_jwk
from exchange.auth import AccessToken, utcnow
from exchange.federation_notices import revocation_payload
from exchange.outbox import OutboxMessage
from exchange.transports import EVENT_BASE, NotificationSigner

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

RECIPIENT = "mx.chp.tapachula.dif"
TOKEN_URL = "http://127.0.0.1:8000/oauth/token"  # the default PUBLIC_URL + /oauth/token
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

SHARING_EVENTS = (
    "record.referred",
    "transfer.requested",
    "transfer.accepted",
    "transfer.rejected",
    "transfer.withdrawn",
)


# --- record_url: readable as given ---------------------------------------------------------


@pytest.fixture
def recipient(app: Flask, client: FlaskClient, owner: AgencyClient) -> tuple[AgencyClient, str]:
    """A municipal DIF with no webhook (it reads GET /v1/notifications), the owner's record of
    a child, and a consent of the Procuraduría that lets the municipal DIF read, be referred
    and take over the child's records."""
    agency = add_agency(
        app, RECIPIENT, jurisdiction="07089", level="municipal", kind="municipal_dif"
    )
    procuraduria(app)
    officer = consent_officer(app, "co-chp-004", PROCURADURIA)
    pushed = push(client, owner, adolescent_record("EXP-1"))
    assert pushed.status_code == 201, pushed.get_json()
    document = consent_document(RECIPIENT, actions=["read", "refer", "transfer"])
    record_consent(client, officer, pushed.get_json()["child_id"], document)
    return agency, str(pushed.get_json()["record_id"])


def only_notification(client: FlaskClient, agency: AgencyClient, event: str) -> dict[str, Any]:
    listed = client.get("/v1/notifications", headers=agency.headers)
    assert listed.status_code == 200, listed.get_json()
    [notification] = [n for n in listed.get_json()["notifications"] if n["event"] == event]
    return dict(notification["payload"])


def get_as_given(client: FlaskClient, agency: AgencyClient, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}", headers=agency.headers)


def test_a_referrals_record_url_reads_the_record_for_the_referrals_purpose(
    client: FlaskClient, owner: AgencyClient, recipient: tuple[AgencyClient, str]
) -> None:
    agency, record_id = recipient
    referred = client.post(
        f"/v1/records/{record_id}/referrals",
        json={"to": RECIPIENT, "purpose": "health_care", "categories": ["identity", "health"]},
        headers=owner.headers,
    )
    assert referred.status_code == 201, referred.get_json()
    payload = only_notification(client, agency, "record.referred")
    assert payload["record_url"] == (
        f"http://127.0.0.1:8000/v1/records/{record_id}?purpose=health_care"
    )
    read = get_as_given(client, agency, payload["record_url"])
    assert read.status_code == 200, read.get_json()
    assert read.get_json()["record_id"] == record_id


def test_a_pending_transfers_record_url_reads_for_case_management(
    client: FlaskClient, owner: AgencyClient, recipient: tuple[AgencyClient, str]
) -> None:
    agency, record_id = recipient
    offered = client.post(
        f"/v1/records/{record_id}/transfers",
        json={"to": RECIPIENT, "reason": "La familia se trasladó a Tapachula."},
        headers=owner.headers,
    )
    assert offered.status_code == 201, offered.get_json()
    payload = only_notification(client, agency, "transfer.requested")
    assert payload["status"] == "pending"
    assert payload["record_url"].endswith(f"/v1/records/{record_id}?purpose=case_management")
    read = get_as_given(client, agency, payload["record_url"])
    assert read.status_code == 200, read.get_json()
    assert read.get_json()["record_id"] == record_id


# --- a disabled agency's assertion: "unknown or disabled", as an unknown one's ---------------


def assertion(key: OKPKey, client_id: str, kid: str | None) -> str:
    now = int(time.time())
    header = {"alg": "EdDSA"} | ({"kid": kid} if kid else {})
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(header, claims, key, algorithms=["EdDSA"])


def token_answer(client: FlaskClient, client_assertion: str, lang: str) -> tuple[int, Any]:
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion,
        },
        headers={"Accept-Language": lang},
    )
    body = response.get_json()
    body.pop("request_id")
    return response.status_code, body


def test_a_disabled_agency_with_its_valid_key_is_told_unknown_or_disabled_as_an_unknown_one(
    app: Flask, client: FlaskClient
) -> None:
    disabled = add_agency(app, "mx.nl.dif", signing=True, jurisdiction="19")
    with app.app_context(), db.database(app).sessions.begin() as session:
        disable_agency(session, disabled.id)
    assert disabled.key is not None
    for lang, words in (
        ("en", "or the client is unknown or disabled"),
        ("es", "o la institución es desconocida o está deshabilitada"),
    ):
        # With the kid of the disabled agency's own (valid) key, and without a kid: each
        # answer names the cause, and an unknown id signed with the same kid reads the same.
        for kid in (disabled.kid, None):
            status, body = token_answer(client, assertion(disabled.key, disabled.id, kid), lang)
            assert (status, body["error"]) == (400, "invalid_client")
            assert words in body["detail"]
            assert "unknown or disabled" in body["error_description"]
            unknown = token_answer(client, assertion(disabled.key, "mx.nadie.dif", kid), lang)
            assert unknown == (status, body)


# --- a JSON body to the OAuth endpoints ----------------------------------------------------


@pytest.fixture
def secret(app: Flask) -> str:
    with app.app_context(), db.database(app).sessions.begin() as session:
        registered = register_agency(
            session,
            "mx.chp.dif-pruebas",
            "Pruebas",
            "state",
            "07",
            ["records:read"],
            public_jwk=public_jwk(OKPKey.generate_key("Ed25519")),
            with_secret=True,
        )
    assert registered.client_secret
    return registered.client_secret


def basic(secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"mx.chp.dif-pruebas:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def tokens(app: Flask) -> int:
    with db.database(app).sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AccessToken)) or 0)


@pytest.mark.parametrize("route", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_a_json_body_is_told_to_send_a_form(
    app: Flask, client: FlaskClient, secret: str, route: str
) -> None:
    before = tokens(app)
    for lang, words in (
        ("en", "OAuth parameters are sent as a form"),
        ("es", "Los parámetros OAuth van como formulario"),
    ):
        response = client.post(
            route,
            json={"grant_type": "client_credentials", "token": "x"},
            headers={**basic(secret), "Accept-Language": lang},
        )
        assert response.status_code == 400
        body = response.get_json()
        assert body["error"] == "invalid_request", body  # not unsupported_grant_type
        assert "application/x-www-form-urlencoded" in body["error_description"]
        assert "not as application/json" in body["error_description"]
        assert body["error_description"].isascii()
        assert body["detail"].startswith(words)
        assert "Cause" not in body["detail"] and "Causa" not in body["detail"]
        assert response.headers["Content-Language"] == lang
    assert tokens(app) == before


def test_a_body_with_no_media_type_is_told_too_and_a_form_still_works(
    app: Flask, client: FlaskClient, secret: str
) -> None:
    untyped = client.post(
        "/oauth/token",
        data=b"grant_type=client_credentials",
        headers={**basic(secret), "Accept-Language": "en"},
    )
    assert untyped.status_code == 400
    assert untyped.get_json()["error"] == "invalid_request"
    assert "names no Content-Type" in untyped.get_json()["error_description"]
    form = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(secret)
    )
    assert form.status_code == 200, form.get_json()


# --- the OpenAPI webhooks section ----------------------------------------------------------


def test_the_description_has_the_notification_webhook_with_every_event(
    client: FlaskClient,
) -> None:
    document = client.get("/openapi.json").get_json()
    webhook = document["webhooks"]["notification"]["post"]
    assert list(webhook["requestBody"]["content"]) == ["application/secevent+jwt"]
    assert {"202", "400", "429", "503"} <= set(webhook["responses"])
    schemas = document["components"]["schemas"]
    events = schemas["NotificationClaims"]["properties"]["events"]["properties"]
    assert set(events) == {EVENT_BASE + event for event in (*SHARING_EVENTS, "consent.revoked")}
    assert events[EVENT_BASE + "consent.revoked"] == {
        "$ref": "#/components/schemas/ConsentRevokedNotification"
    }
    assert set(schemas["SharingNotification"]["properties"]["event"]["enum"]) == set(SHARING_EVENTS)
    # The consent.revoked schema names every member the hub sends (and the peer hub's "hub").
    revoked = schemas["ConsentRevokedNotification"]
    sent = revocation_payload("cns_1", "nna_1", utcnow())
    assert set(sent) <= set(revoked["properties"]) and set(revoked["required"]) <= set(sent)
    assert "hub" in revoked["properties"]


# --- docs/agencies.md §4: the receiver as printed --------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "agencies.md"


def doc_receiver(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The receiver of docs/agencies.md §4, run as printed up to its last line (the server
    itself), with its one request to the hub (the hub document) answered by the test client."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## 4. Receiving notifications") :]
    [code] = [
        b for b in re.findall(r"^```python\n(.*?)^```", section, re.M | re.S) if "do_POST" in b
    ]
    code, serve = code.rstrip().rsplit("\n", 1)
    assert serve.startswith("ThreadingHTTPServer(")
    discovery = client.get("/.well-known/puente-hub").get_data()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url: io.BytesIO(discovery))
    namespace: dict[str, Any] = {"__name__": "receiver"}
    exec(compile(code, str(DOC), "exec"), namespace)  # the guide's own code
    return namespace


def post_to(receiver: type, body: bytes, media_type: str = "application/secevent+jwt") -> int:
    """One POST handled by the receiver class, without a socket; the status it answered."""
    handler = receiver.__new__(receiver)
    headers = email.message.Message()
    headers["Content-Type"], headers["Content-Length"] = media_type, str(len(body))
    handler.headers, handler.rfile, handler.wfile = headers, io.BytesIO(body), io.BytesIO()
    handler.request_version, handler.requestline, handler.command = "HTTP/1.1", "POST", "POST"
    handler.client_address = ("127.0.0.1", 0)
    handler.log_message = lambda *args: None
    handler.do_POST()
    return int(handler.wfile.getvalue().split(b" ", 2)[1])


def test_the_guides_receiver_verifies_a_real_notification_and_drops_a_repeat(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    recipient: tuple[AgencyClient, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _agency, record_id = recipient
    referred = client.post(
        f"/v1/records/{record_id}/referrals",
        json={"to": RECIPIENT, "purpose": "health_care", "categories": ["identity"]},
        headers=owner.headers,
    )
    assert referred.status_code == 201, referred.get_json()
    with app.app_context(), db.database(app).sessions() as session:
        [message] = session.scalars(select(OutboxMessage)).all()
        token = NotificationSigner(app).token(session.get_one(Agency, RECIPIENT), message)
    receiver = doc_receiver(client, monkeypatch)["Receiver"]
    assert post_to(receiver, token.encode()) == 202
    assert post_to(receiver, token.encode()) == 202  # the same jti: not handled again
    [printed] = capsys.readouterr().out.splitlines()
    assert printed.startswith(f"record.referred {message.id} ")
    assert "?purpose=health_care" in printed
    # Signed by another key, or sent as something else: refused for good (400).
    forged = token.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1][::-1]
    assert post_to(receiver, forged.encode()) == 400
    assert post_to(receiver, token.encode(), "application/json") == 400
