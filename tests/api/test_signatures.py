"""Puente-Signature: a detached JWS (EdDSA, b64:false, RFC 7797) over the RFC 8785 canonical
body, by one of the agency's active keys. A present signature is always checked; agencies set
to require one cannot push without it. Every refusal is a 401 bad-signature that stores
nothing but an audit entry."""

from __future__ import annotations

import base64
import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws
from joserfc.jwk import OctKey, OKPKey
from records_support import (
    AgencyClient,
    add_agency,
    changed,
    envelope,
    example,
    issue_token,
    push,
    push_bulk,
    read,
    rows,
)
from sqlalchemy import func, select

from exchange import db
from exchange.agencies import retire_key
from exchange.audit_log import AuditEntry
from exchange.records import RecordVersion
from exchange.signatures import canonical_json, sign_detached

SIGNER = "mx.chp.dif"
STRICT = "mx.tab.dif"


@pytest.fixture
def signer(app: Flask) -> AgencyClient:
    return add_agency(app, SIGNER, signing=True)


@pytest.fixture
def strict(app: Flask) -> AgencyClient:
    return add_agency(app, STRICT, require_signature=True, jurisdiction="27")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def versions(app: Flask) -> int:
    return int(rows(app, select(func.count()).select_from(RecordVersion))[0][0])


def refused_signatures(app: Flask) -> list[dict]:
    entries = rows(app, select(AuditEntry.entry).where(AuditEntry.outcome == "failure"))
    return [json.loads(entry) for (entry,) in entries]


def assert_bad_signature(app: Flask, response, stored_before: int = 0) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["type"].endswith("/bad-signature")
    assert versions(app) == stored_before


def test_a_signed_push_is_stored_with_its_signature(
    app: Flask, client: FlaskClient, signer: AgencyClient
) -> None:
    body = envelope("EXP-1", example("typical"))
    signature = signer.sign(body)
    response = push(client, signer, body, **{"Puente-Signature": signature})
    assert response.status_code == 201, response.get_json()
    [(stored, kid)] = rows(app, select(RecordVersion.signature, RecordVersion.signing_kid))
    assert stored == signature and kid == signer.kid
    listed = client.get(
        f"/v1/records/{response.get_json()['record_id']}/versions",
        query_string={"purpose": "case_management"},
        headers=signer.headers,
    ).get_json()["versions"]
    assert listed[0]["signed"] is True and listed[0]["signing_kid"] == signer.kid
    # The stored signature still verifies the stored body: the hub can prove who sent what.
    record = read(client, signer, response.get_json()["record_id"]).get_json()
    assert record["data"] == body["data"]


def test_the_signature_is_over_the_canonical_form_not_the_bytes_sent(
    client: FlaskClient, signer: AgencyClient
) -> None:
    body = envelope("EXP-1")
    signature = signer.sign(body)
    spaced = json.dumps(dict(reversed(list(body.items()))), indent=2, ensure_ascii=True)
    response = client.post(
        "/v1/records",
        data=spaced,
        headers={
            **signer.headers,
            "Content-Type": "application/json",
            "Puente-Signature": signature,
        },
    )
    assert response.status_code == 201


def test_a_signature_over_a_different_body_is_refused_and_audited(
    app: Flask, client: FlaskClient, signer: AgencyClient
) -> None:
    signature = signer.sign(envelope("EXP-1"))
    tampered = envelope("EXP-1", changed(example(), "tampered"))
    response = push(client, signer, tampered, **{"Puente-Signature": signature})
    assert_bad_signature(app, response)
    [entry] = refused_signatures(app)
    assert entry["action"] == "record_pushed"
    assert entry["actor"]["agency_id"] == SIGNER
    assert entry["reason_code"] == "bad_signature"


def test_a_signature_by_a_key_the_agency_does_not_hold_is_refused(
    app: Flask, client: FlaskClient, signer: AgencyClient
) -> None:
    body = envelope("EXP-1")
    stranger = OKPKey.generate_key("Ed25519")
    forged = sign_detached(canonical_json(body), stranger, signer.kid or "")
    assert_bad_signature(app, push(client, signer, body, **{"Puente-Signature": forged}))
    unknown_kid = sign_detached(canonical_json(body), stranger, stranger.thumbprint())
    assert_bad_signature(app, push(client, signer, body, **{"Puente-Signature": unknown_kid}))


def test_another_agencys_key_does_not_sign_for_this_one(
    app: Flask, client: FlaskClient, signer: AgencyClient, strict: AgencyClient
) -> None:
    body = envelope("EXP-1")
    response = push(client, signer, body, **{"Puente-Signature": strict.sign(body)})
    assert_bad_signature(app, response)


def test_a_retired_key_no_longer_signs(
    app: Flask, client: FlaskClient, signer: AgencyClient
) -> None:
    with app.app_context(), db.database(app).sessions.begin() as session:
        retire_key(session, SIGNER, signer.kid or "", even_if_last=True)
    # Retiring the key ended the agency's tokens; with a new one, the key's signature fails.
    assert push(client, signer, envelope("EXP-0")).status_code == 401
    signer.token = issue_token(app, SIGNER, ("records:write", "records:read"))
    body = envelope("EXP-1")
    assert_bad_signature(app, push(client, signer, body, **{"Puente-Signature": signer.sign(body)}))


def _compact(header: dict, payload: bytes, key: object) -> str:
    return jws.serialize_compact(header, payload, key, algorithms=[header["alg"]])


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")  # making forgeries
@pytest.mark.parametrize(
    "variant",
    ["hmac", "none", "b64-true", "no-crit", "embedded-payload", "garbage", "no-kid", "two-dots"],
)
def test_malformed_or_weak_signatures_are_refused(
    app: Flask, client: FlaskClient, signer: AgencyClient, variant: str
) -> None:
    body = envelope("EXP-1")
    canonical = canonical_json(body)
    assert signer.key is not None
    header = {"alg": "EdDSA", "b64": False, "crit": ["b64"], "kid": signer.kid}
    if variant == "hmac":
        # HMAC keyed with the agency's public key: the classic algorithm-confusion forgery.
        secret = OctKey.import_key(json.dumps(signer.key.as_dict(private=False)).encode())
        value = _compact({**header, "alg": "HS256"}, canonical, secret)
        value = value.split(".")[0] + ".." + value.split(".")[2]
    elif variant == "none":
        value = b64(json.dumps({"alg": "none", "kid": signer.kid}).encode()) + ".."
    elif variant == "b64-true":
        value = _compact({"alg": "EdDSA", "kid": signer.kid}, canonical, signer.key)
        value = value.split(".")[0] + ".." + value.split(".")[2]
    elif variant == "no-crit":
        value = b64(json.dumps({"alg": "EdDSA", "b64": False, "kid": signer.kid}).encode())
        value += ".." + signer.sign(body).split("..")[1]
    elif variant == "embedded-payload":
        head, _, signature = signer.sign(body).partition("..")
        value = f"{head}.{b64(canonical)}.{signature}"
    elif variant == "no-kid":
        value = b64(json.dumps({k: v for k, v in header.items() if k != "kid"}).encode())
        value += ".." + signer.sign(body).split("..")[1]
    elif variant == "two-dots":
        value = "a.b"
    else:
        value = "not a jws at all"
    response = push(client, signer, body, **{"Puente-Signature": value})
    assert_bad_signature(app, response)


def test_an_agency_that_must_sign_cannot_push_unsigned(
    app: Flask, client: FlaskClient, strict: AgencyClient
) -> None:
    body = envelope("EXP-1")
    assert_bad_signature(app, push(client, strict, body))
    signed = push(client, strict, body, **{"Puente-Signature": strict.sign(body)})
    assert signed.status_code == 201


def test_an_agency_that_need_not_sign_may_push_unsigned(
    client: FlaskClient, signer: AgencyClient
) -> None:
    assert push(client, signer, envelope("EXP-1")).status_code == 201


def test_bulk_lines_carry_their_own_signatures(
    app: Flask, client: FlaskClient, strict: AgencyClient
) -> None:
    good = envelope("EXP-1")
    other = envelope("EXP-2", changed(example(), "2"))
    lines = [
        {**good, "signature": strict.sign(good)},
        {**other, "signature": strict.sign(good)},  # signs another line's body
        envelope("EXP-3"),  # unsigned, but this agency must sign
        {**envelope("EXP-4"), "signature": 42},
    ]
    response, results = push_bulk(client, strict, lines)
    assert response.status_code == 200
    assert [r["status"] for r in results] == ["stored", "rejected", "rejected", "rejected"]
    assert {r["problem"] for r in results[1:]} == {"bad-signature"}
    assert {r["errors"][0]["pointer"] for r in results[1:]} == {"/signature"}
    [(stored, kid)] = rows(app, select(RecordVersion.signature, RecordVersion.signing_kid))
    assert stored == lines[0]["signature"] and kid == strict.kid
    assert len(refused_signatures(app)) == 3


# -- a retry under an Idempotency-Key is checked like a first push ------------------------------


def test_a_retry_with_a_bad_signature_is_refused_not_replayed(
    app: Flask, client: FlaskClient, signer: AgencyClient
) -> None:
    body = envelope("EXP-1")
    key = {"Idempotency-Key": "retry-signed"}
    first = push(client, signer, body, **key, **{"Puente-Signature": signer.sign(body)})
    assert first.status_code == 201
    forged = signer.sign(envelope("EXP-1", changed(example(), "another")))
    retry = push(client, signer, body, **key, **{"Puente-Signature": forged})
    assert_bad_signature(app, retry, stored_before=1)
    assert "Idempotent-Replayed" not in retry.headers
    [entry] = refused_signatures(app)
    assert entry["reason_code"] == "bad_signature"
    good = push(client, signer, body, **key, **{"Puente-Signature": signer.sign(body)})
    assert good.status_code == 201 and good.headers["Idempotent-Replayed"] == "true"
    assert good.get_json() == first.get_json()


def test_an_unsigned_retry_is_refused_when_the_agency_must_sign(
    app: Flask, client: FlaskClient, strict: AgencyClient
) -> None:
    body = envelope("EXP-1")
    key = {"Idempotency-Key": "retry-strict"}
    first = push(client, strict, body, **key, **{"Puente-Signature": strict.sign(body)})
    assert first.status_code == 201
    retry = push(client, strict, body, **key)
    assert_bad_signature(app, retry, stored_before=1)
    assert "Idempotent-Replayed" not in retry.headers
    assert len(refused_signatures(app)) == 1
    good = push(client, strict, body, **key, **{"Puente-Signature": strict.sign(body)})
    assert good.status_code == 201 and good.headers["Idempotent-Replayed"] == "true"
