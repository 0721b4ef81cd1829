"""POST /v1/records: a push is checked, linked to a child, stored as the next version (whole or
not at all), encrypted at rest, audited, and idempotent under an Idempotency-Key."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import (
    AgencyClient,
    add_agency,
    changed,
    envelope,
    example,
    execute,
    issue_token,
    push,
    rows,
)
from sqlalchemy import func, select, update

from exchange.audit_log import AuditEntry
from exchange.auth import utcnow
from exchange.children import Child
from exchange.crypto import data_keyring
from exchange.records import IdempotencyKey, Record, RecordVersion
from exchange.signatures import canonical_json
from schemas import validate_envelope

DIF = "mx.chp.dif"


@pytest.fixture
def dif(app: Flask) -> AgencyClient:
    return add_agency(app, DIF)


def count(app: Flask, model: type) -> int:
    return int(rows(app, select(func.count()).select_from(model))[0][0])


def test_a_push_is_stored_as_version_one(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    body = envelope("EXP-1", example("typical"))
    response = push(client, dif, body)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["record_id"].startswith("rec_")
    assert answer["version"] == 1
    assert answer["child_id"].startswith("nna_")
    assert answer["status"] == "stored"
    # The digest is over the RFC 8785 form of the body, whatever spacing the client used.
    assert answer["body_sha256"] == hashlib.sha256(canonical_json(body)).hexdigest()
    assert response.headers["Location"] == f"/v1/records/{answer['record_id']}"
    entry = rows(app, select(AuditEntry.entry).where(AuditEntry.id == answer["audit_entry"]))
    audited = json.loads(entry[0][0])
    assert audited["action"] == "record_pushed"
    assert audited["record_id"] == answer["record_id"]
    assert audited["body_sha256"] == answer["body_sha256"]
    assert "Ejemplo" not in entry[0][0].decode()  # no case content in the log


def test_a_second_push_of_the_same_local_id_adds_a_version(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    first = push(client, dif, envelope("EXP-1")).get_json()
    second = push(client, dif, envelope("EXP-1", changed(example(), "v2")))
    assert second.status_code == 201
    assert second.get_json()["record_id"] == first["record_id"]
    assert second.get_json()["child_id"] == first["child_id"]
    assert second.get_json()["version"] == 2
    versions = rows(app, select(RecordVersion.version).order_by(RecordVersion.version))
    assert [v for (v,) in versions] == [1, 2]
    latest = rows(app, select(Record.latest_version, Record.latest_sha256))
    assert latest == [(2, second.get_json()["body_sha256"])]


def test_the_same_body_again_stores_nothing(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    first = push(client, dif, envelope("EXP-1")).get_json()
    # Other spacing and member order: the same canonical body.
    again = client.post(
        "/v1/records",
        data=json.dumps(dict(reversed(list(envelope("EXP-1").items()))), indent=3),
        headers={**dif.headers, "Content-Type": "application/json"},
    )
    assert again.status_code == 200
    assert again.get_json()["status"] == "unchanged"
    assert again.get_json()["version"] == 1
    assert again.get_json()["record_id"] == first["record_id"]
    assert count(app, RecordVersion) == 1


def test_going_back_to_an_earlier_body_is_a_new_version(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    push(client, dif, envelope("EXP-1"))
    push(client, dif, envelope("EXP-1", changed(example(), "v2")))
    back = push(client, dif, envelope("EXP-1"))
    assert back.status_code == 201
    assert back.get_json()["version"] == 3


def test_bodies_are_encrypted_at_rest(app: Flask, client: FlaskClient, dif: AgencyClient) -> None:
    data = example("typical")
    answer = push(client, dif, envelope("EXP-1", data)).get_json()
    [(ciphertext, key_id, digest)] = rows(
        app,
        select(RecordVersion.body_ciphertext, RecordVersion.data_key_id, RecordVersion.body_sha256),
    )
    assert b"Ejemplo" not in ciphertext and b"case-record" not in ciphertext
    keyring = data_keyring(app)
    assert key_id == keyring.current().id
    plaintext = keyring.decrypt(key_id, ciphertext)
    assert plaintext == canonical_json(envelope("EXP-1", data))
    assert digest == answer["body_sha256"] == hashlib.sha256(plaintext).hexdigest()


@pytest.mark.parametrize(
    "name", ["several_errors", "missing_child", "bad_curp", "unknown_property_typo"]
)
def test_an_invalid_record_lists_every_failure_with_its_pointer(
    app: Flask, client: FlaskClient, dif: AgencyClient, name: str
) -> None:
    body = envelope("EXP-1", example(name, "invalid"))
    response = push(client, dif, body, **{"Accept-Language": "en"})
    assert response.status_code == 400
    problem = response.get_json()
    assert problem["type"].endswith("/validation")
    expected = [(f.pointer, f.message("en")) for f in validate_envelope(body)]
    assert expected
    assert [(e["pointer"], e["message"]) for e in problem["errors"]] == expected
    assert all(e["pointer"].startswith("/data") for e in problem["errors"])
    assert count(app, Record) == 0 and count(app, Child) == 0  # nothing partial


@pytest.mark.parametrize("schema", ["case-record/99", "child/1", "case-record", "nope/1"])
def test_an_unknown_or_unaccepted_schema_is_unsupported(
    app: Flask, client: FlaskClient, dif: AgencyClient, schema: str
) -> None:
    response = push(client, dif, {**envelope("EXP-1"), "schema": schema})
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["type"].endswith("/unsupported-schema")
    assert "/schema" in [e["pointer"] for e in problem["errors"]]
    assert count(app, Record) == 0


def test_envelope_mistakes_point_into_the_envelope(client: FlaskClient, dif: AgencyClient) -> None:
    response = push(client, dif, {"schema": "case-record/1", "data": {}, "extra": 1})
    assert response.status_code == 400
    pointers = {e["pointer"] for e in response.get_json()["errors"]}
    assert "" in pointers  # local_id missing and "extra" not allowed, at the top level


@pytest.mark.parametrize("local_id", ["   ", "\t", " EXP-1", "EXP-1 "])
def test_a_blank_or_padded_local_id_is_refused_like_an_empty_one(
    app: Flask, client: FlaskClient, dif: AgencyClient, local_id: str
) -> None:
    empty = push(client, dif, envelope(""))
    for lang, words in (("es", "no puede estar en blanco"), ("en", "must not be blank")):
        response = push(client, dif, envelope(local_id), **{"Accept-Language": lang})
        assert response.status_code == empty.status_code == 400
        problem = response.get_json()
        assert problem["type"] == empty.get_json()["type"]
        assert [e["pointer"] for e in problem["errors"]] == ["/local_id"]
        assert words in problem["errors"][0]["message"]
    assert count(app, Record) == 0


def test_an_unknown_child_id_is_refused_and_nothing_is_stored(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    response = push(client, dif, envelope("EXP-1", child_id="nna_doesnotexist00"))
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["pointer"] == "/child_id"
    assert count(app, Record) == 0 and count(app, RecordVersion) == 0


def test_a_known_child_id_links_the_record_to_that_child(
    client: FlaskClient, dif: AgencyClient
) -> None:
    child_id = push(client, dif, envelope("EXP-1")).get_json()["child_id"]
    other = push(client, dif, envelope("EXP-2", changed(example(), "x"), child_id=child_id))
    assert other.status_code == 201
    assert other.get_json()["child_id"] == child_id


def test_a_record_cannot_be_moved_to_another_child_by_a_push(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    push(client, dif, envelope("EXP-1"))
    elsewhere = push(client, dif, envelope("EXP-2", changed(example(), "y"))).get_json()
    response = push(
        client, dif, envelope("EXP-1", changed(example(), "z"), child_id=elsewhere["child_id"])
    )
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["pointer"] == "/child_id"
    assert count(app, RecordVersion) == 2


def test_a_transferred_record_takes_no_pushes_from_its_former_owner(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    add_agency(app, "mx.tab.dif", jurisdiction="27")
    record_id = push(client, dif, envelope("EXP-1")).get_json()["record_id"]
    execute(app, update(Record).where(Record.id == record_id).values(owner_agency="mx.tab.dif"))
    response = push(client, dif, envelope("EXP-1", changed(example(), "late")))
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("/conflict")
    assert count(app, RecordVersion) == 1


def test_bad_bodies(client: FlaskClient, dif: AgencyClient) -> None:
    not_json = client.post(
        "/v1/records", data=b"{", headers={**dif.headers, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.get_json()["type"].endswith("/validation")
    wrong_type = client.post(
        "/v1/records", data=b"{}", headers={**dif.headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    huge = envelope("EXP-1", {**example(), "notes": "x" * (3 * 1024 * 1024)})
    too_large = push(client, dif, huge)
    assert too_large.status_code == 413
    assert too_large.get_json()["type"].endswith("/payload-too-large")
    # Sent in chunks (no Content-Length), the same body is still too large, not malformed JSON
    # cut at the limit.
    chunked = client.post(
        "/v1/records",
        input_stream=io.BytesIO(json.dumps(huge).encode()),
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn does
        headers={
            **dif.headers,
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
    )
    assert chunked.status_code == 413
    assert chunked.get_json()["type"].endswith("/payload-too-large")


def test_who_may_push(app: Flask, client: FlaskClient, dif: AgencyClient) -> None:
    body = envelope("EXP-1")
    assert client.post("/v1/records", json=body).status_code == 401
    reader = issue_token(app, DIF, ["records:read"])
    refused = client.post("/v1/records", json=body, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    person = issue_token(app, None, ["records:write"], person_id="lawyer-1")
    by_person = client.post("/v1/records", json=body, headers={"Authorization": f"Bearer {person}"})
    assert by_person.status_code == 403
    assert count(app, Record) == 0


# -- Idempotency-Key ---------------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_first_answer(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    body = envelope("EXP-1")
    first = push(client, dif, body, **{"Idempotency-Key": "retry-1"})
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = push(client, dif, body, **{"Idempotency-Key": "retry-1"})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert first.headers["Location"] == f"/v1/records/{first.get_json()['record_id']}"
    assert count(app, RecordVersion) == 1 and count(app, AuditEntry) >= 1


def test_the_same_key_with_another_body_is_refused(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    push(client, dif, envelope("EXP-1"), **{"Idempotency-Key": "k"})
    other = push(
        client, dif, envelope("EXP-1", changed(example(), "v2")), **{"Idempotency-Key": "k"}
    )
    assert other.status_code == 422
    assert other.get_json()["type"].endswith("/conflict")
    assert count(app, RecordVersion) == 1


def test_keys_belong_to_one_agency(app: Flask, client: FlaskClient, dif: AgencyClient) -> None:
    other = add_agency(app, "mx.tab.dif", jurisdiction="27")
    push(client, dif, envelope("EXP-1"), **{"Idempotency-Key": "shared"})
    theirs = push(client, other, envelope("EXP-1"), **{"Idempotency-Key": "shared"})
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert count(app, Record) == 2


def test_a_refused_push_does_not_use_up_its_key(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    bad = push(client, dif, envelope("EXP-1", example("missing_child", "invalid")),
               **{"Idempotency-Key": "fix-and-retry"})  # fmt: skip
    assert bad.status_code == 400
    good = push(client, dif, envelope("EXP-1"), **{"Idempotency-Key": "fix-and-retry"})
    assert good.status_code == 201
    assert count(app, IdempotencyKey) == 1


def test_keys_expire(app: Flask, client: FlaskClient, dif: AgencyClient) -> None:
    push(client, dif, envelope("EXP-1"), **{"Idempotency-Key": "old"})
    long_ago = utcnow() - timedelta(hours=25)
    execute(app, update(IdempotencyKey).values(created_at=long_ago))
    fresh = push(
        client, dif, envelope("EXP-1", changed(example(), "v2")), **{"Idempotency-Key": "old"}
    )
    assert fresh.status_code == 201
    assert fresh.get_json()["version"] == 2


@pytest.mark.parametrize("key", ["", " padded ", "x" * 201, "ñandú"])
def test_malformed_keys_are_refused(client: FlaskClient, dif: AgencyClient, key: str) -> None:
    response = push(client, dif, envelope("EXP-1"), **{"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["header"] == "Idempotency-Key"


def test_a_200_character_key_is_fine(client: FlaskClient, dif: AgencyClient) -> None:
    assert push(client, dif, envelope("EXP-1"), **{"Idempotency-Key": "k" * 200}).status_code == 201
