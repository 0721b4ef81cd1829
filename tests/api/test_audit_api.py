"""`/v1/audit`: checkpoints, entries and proofs that verify with the public log key."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

import audit
from exchange import db
from exchange.agencies import Agency
from exchange.audit_log import record_event
from exchange.audit_sequencer import integrate_pending
from exchange.auth import store_token
from exchange.keys import audit_origin, hub_keys


def oversight_token(app: Flask) -> dict[str, str]:
    return _token(app, ["audit:read"])


def _token(app: Flask, scopes: list[str], kind: str = "oversight") -> dict[str, str]:
    """A token of an agency of ``kind`` (an oversight body unless said otherwise)."""
    agency_id = f"mx.{kind.replace('_', '')}.{'-'.join(s.replace(':', '') for s in scopes)}"
    with app.app_context():
        session = db.database(app).sessions()
        if session.get(Agency, agency_id) is None:
            session.add(
                Agency(
                    id=agency_id,
                    name=agency_id,
                    level="federal",
                    jurisdiction="00",
                    kind=kind,
                    scope=" ".join(scopes),
                )
            )
            session.flush()
        secret, _ = store_token(session, client_id=agency_id, scopes=scopes, agency_id=agency_id)
        session.commit()
        session.close()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def auditor(app: Flask) -> dict[str, str]:
    return _token(app, ["audit:read"])


def _log(app: Flask, count: int, **fields: object) -> None:
    """Record ``count`` read events and sequence them, signing a checkpoint."""
    with app.app_context():
        session = db.database(app).sessions()
        for i in range(count):
            defaults: dict[str, object] = {
                "action": "record.read",
                "outcome": "success",
                "actor_agency": "mx.fed.comar",
                "actor_role": "caseworker",
                "purpose": "asylum_procedure",
                "child_id": f"ch-{i:04d}",
                "record_id": f"rec-{i}",
                "decision_basis": "consent",
                "consent_ids": ["cons-1"],
            }
            record_event(session, **{**defaults, **fields})
        session.commit()
        session.close()
        integrate_pending(app, force_checkpoint=True)


def _verifier(app: Flask) -> audit.Verifier:
    signer = hub_keys(app).log
    assert signer is not None
    return audit.Verifier.from_vkey(signer.vkey)


def _hashes(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_audit_routes_need_the_audit_read_scope(app: Flask, client: FlaskClient) -> None:
    assert client.get("/v1/audit/checkpoint").status_code == 401
    other = _token(app, ["records:read"])
    response = client.get("/v1/audit/events", headers=other)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_checkpoint_is_signed_by_the_hub_log_key(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    assert client.get("/v1/audit/checkpoint", headers=auditor).status_code == 404
    _log(app, 3)
    response = client.get("/v1/audit/checkpoint", headers=auditor)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    checkpoint = audit.open_checkpoint(
        response.get_data(as_text=True), [_verifier(app)], origin=audit_origin(app)
    )
    assert checkpoint.size == 3


def test_entries_hash_to_the_checkpoint_root(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    _log(app, 5)
    checkpoint = audit.checkpoint_of(client.get("/v1/audit/checkpoint", headers=auditor).text)
    response = client.get("/v1/audit/entries?start=0&end=10", headers=auditor)
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2, 3, 4]
    leaves = [audit.leaf_hash(line["entry"].encode()) for line in lines]
    assert audit.root_hash(leaves) == checkpoint.root_hash
    entry = audit.parse_canonical_entry(lines[2]["entry"].encode())
    assert entry["child_id"] == "ch-0002"
    decision = entry["decision"]
    # The decision id a reader is given (Puente-Decision) is the entry's own id, kept in the
    # signed entry: the query view names the same entry by it.
    events = client.get("/v1/audit/events?child_id=ch-0002", headers=auditor).get_json()
    (event,) = events["events"]
    assert decision.pop("id") == event["id"]
    assert decision == {"basis": "consent", "consent_ids": ["cons-1"], "result": "permit"}

    page = client.get("/v1/audit/entries?start=4", headers=auditor)
    assert [json.loads(x)["index"] for x in page.get_data(as_text=True).splitlines()] == [4]
    beyond = client.get("/v1/audit/entries?start=5", headers=auditor)
    assert beyond.status_code == 404
    assert beyond.get_json()["log_size"] == 5
    bad = client.get("/v1/audit/entries?start=-1", headers=auditor)
    assert bad.status_code == 400
    assert bad.get_json()["errors"][0]["pointer"] == "/query/start"
    too_many = client.get("/v1/audit/entries?start=0&end=5000", headers=auditor)
    assert too_many.status_code == 400
    assert too_many.get_json()["errors"][0]["pointer"] == "/query/end"


def test_inclusion_proofs_verify_against_the_checkpoint(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    _log(app, 300)
    note = client.get("/v1/audit/checkpoint", headers=auditor).text
    checkpoint = audit.checkpoint_of(note)
    entries = client.get("/v1/audit/entries?start=0&end=300", headers=auditor).text.splitlines()
    for index in (0, 7, 255, 256, 299):
        response = client.get(f"/v1/audit/proofs/inclusion?index={index}", headers=auditor)
        assert response.status_code == 200
        body = response.get_json()
        assert body["leaf_index"] == index and body["tree_size"] == 300
        leaf = audit.leaf_hash(json.loads(entries[index])["entry"].encode())
        audit.verify_inclusion(index, 300, leaf, _hashes(body["hashes"]), checkpoint.root_hash)

    smaller = client.get("/v1/audit/proofs/inclusion?index=3&tree_size=10", headers=auditor)
    leaves = [audit.leaf_hash(json.loads(x)["entry"].encode()) for x in entries[:10]]
    audit.verify_inclusion(
        3, 10, leaves[3], _hashes(smaller.get_json()["hashes"]), audit.root_hash(leaves)
    )


def test_inclusion_proof_as_a_tlog_proof_file(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    _log(app, 20)
    entry = json.loads(client.get("/v1/audit/entries?start=11&end=12", headers=auditor).text)[
        "entry"
    ].encode()
    headers = {**auditor, "Accept": "text/x.tlog-proof"}
    response = client.get("/v1/audit/proofs/inclusion?index=11", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/x.tlog-proof"
    verified = audit.verify_proof_file(
        response.get_data(as_text=True), entry, [_verifier(app)], origin=audit_origin(app)
    )
    assert verified.index == 11 and verified.checkpoint.size == 20
    with pytest.raises(audit.ProofError):
        audit.verify_proof_file(response.get_data(as_text=True), entry + b" ", [_verifier(app)])

    # A size at which no checkpoint was signed cannot be a proof file; JSON still works.
    unsigned = client.get("/v1/audit/proofs/inclusion?index=1&tree_size=15", headers=headers)
    assert unsigned.status_code == 404
    assert unsigned.get_json()["latest_checkpoint_size"] == 20


def test_inclusion_proof_parameters(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    assert client.get("/v1/audit/proofs/inclusion?index=0", headers=auditor).status_code == 404
    _log(app, 4)
    cases = {
        "index=x": "/query/index",
        "": "/query/index",
        "index=1&tree_size=0": "/query/tree_size",
    }
    for query, pointer in cases.items():
        response = client.get(f"/v1/audit/proofs/inclusion?{query}", headers=auditor)
        assert response.status_code == 400, query
        assert response.get_json()["errors"][0]["pointer"] == pointer
    for query in ("index=4", "index=0&tree_size=5"):
        response = client.get(f"/v1/audit/proofs/inclusion?{query}", headers=auditor)
        assert response.status_code == 404, query


def test_consistency_proof_between_checkpoints(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    _log(app, 37)
    old = audit.checkpoint_of(client.get("/v1/audit/checkpoint", headers=auditor).text)
    _log(app, 300)
    new = audit.checkpoint_of(client.get("/v1/audit/checkpoint", headers=auditor).text)
    response = client.get("/v1/audit/proofs/consistency?first=37", headers=auditor)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["first"], body["second"]) == (37, 337)
    audit.verify_checkpoint_consistency(old, new, _hashes(body["hashes"]))
    assert (
        client.get("/v1/audit/proofs/consistency?first=40&second=20", headers=auditor).get_json()[
            "errors"
        ][0]["pointer"]
        == "/query/second"
    )
    assert (
        client.get("/v1/audit/proofs/consistency?first=1&second=338", headers=auditor).status_code
        == 404
    )
    # second left out is the latest signed size: a first beyond it is beyond the log, not a
    # complaint about a second the caller never sent.
    beyond = client.get("/v1/audit/proofs/consistency?first=338", headers=auditor)
    assert beyond.status_code == 404 and "337" in beyond.get_json()["detail"]


def test_events_filter_and_paginate(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    _log(app, 5)
    _log(
        app,
        3,
        action="record.pushed",
        actor_agency="mx.chp.dif",
        actor_role="system",
        purpose=None,
        decision_basis=None,
        consent_ids=None,
    )
    _log(
        app,
        2,
        outcome="denied",
        actor_agency="mx.fed.inm",
        purpose="migration_procedure",
        decision_basis="hard_rule",
        consent_ids=None,
        rule_ids=["no_protection_to_inm"],
    )

    def events(query: str) -> dict:
        response = client.get(f"/v1/audit/events?{query}", headers=auditor)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    pushed = events("action=record.pushed")["events"]
    assert [e["index"] for e in pushed] == [5, 6, 7]
    assert events("action=record_pushed")["events"] == pushed
    assert pushed[0]["entry"]["actor"] == {"agency_id": "mx.chp.dif", "role": "system"}
    assert [e["index"] for e in events("actor=mx.fed.inm")["events"]] == [8, 9]
    assert [e["index"] for e in events("child_id=ch-0001")["events"]] == [1, 6, 9]
    assert [e["index"] for e in events("outcome=denied")["events"]] == [8, 9]

    first = events("limit=4")
    assert [e["index"] for e in first["events"]] == [0, 1, 2, 3]
    second = events(f"limit=4&cursor={first['next_cursor']}")
    assert [e["index"] for e in second["events"]] == [4, 5, 6, 7]
    last = events(f"limit=4&cursor={second['next_cursor']}")
    assert [e["index"] for e in last["events"]] == [8, 9] and last["next_cursor"] is None

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert events(f"since={future.replace('+00:00', 'Z')}")["events"] == []
    assert len(events(f"until={future.replace('+', '%2B')}")["events"]) == 10
    for query, pointer in {
        "action=record.eaten": "/query/action",
        "since=yesterday": "/query/since",
        "until=2024-05-20T10:00:00": "/query/until",
        "limit=0": "/query/limit",
        "limit=5000": "/query/limit",
        "outcome=maybe": "/query/outcome",
        # ISO 8601 forms that are not RFC 3339, and offsets that overflow the calendar.
        "since=20261123T202000Z": "/query/since",
        "since=2026-W47-1T00:00Z": "/query/since",
        "since=2026-11-23T20Z": "/query/since",
        "until=2026-11-23T20:20:00%2B0530": "/query/until",
        "since=0001-01-01T00:00:00%2B14:00": "/query/since",
        "until=9999-12-31T23:59:59-12:00": "/query/until",
        "format=xml": "/query/format",
    }.items():
        response = client.get(f"/v1/audit/events?{query}", headers=auditor)
        assert response.status_code == 400, query
        assert response.get_json()["errors"][0]["pointer"] == pointer


def test_events_since_and_until_count_the_utc_offset(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    # An office in Mexico asks in its own time (UTC-6): 05:37-06:00 is 11:37Z, on either backend.
    for moment in ("11:33:57", "11:37:04", "11:40:03"):
        _log(app, 1, time=datetime.fromisoformat(f"2026-11-23T{moment}+00:00"))

    def indexes(query: str) -> list[int]:
        response = client.get(f"/v1/audit/events?{query}", headers=auditor)
        assert response.status_code == 200, response.get_json()
        return [event["index"] for event in response.get_json()["events"]]

    assert indexes("since=2026-11-23T11:37:00Z") == [1, 2]
    assert indexes("since=2026-11-23T05:37:00-06:00") == [1, 2]
    assert indexes("since=2026-11-23T12:37:00%2B01:00") == [1, 2]
    assert indexes("until=2026-11-23T05:37:04-06:00") == [0]
    assert indexes("until=2026-11-23T12:37:04.000001%2B01:00") == [0, 1]
    assert indexes("since=2026-11-23T05:37:00-06:00&until=2026-11-23T05:40:00-06:00") == [1]


def test_alerts_report_denial_spikes(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    _log(
        app,
        4,
        outcome="denied",
        actor_agency="mx.fed.inm",
        actor_person="inm-0451",
        purpose="migration_procedure",
        decision_basis="hard_rule",
        consent_ids=None,
        rule_ids=["no_protection_to_inm"],
    )
    _log(
        app,
        2,
        outcome="denied",
        actor_agency="mx.fed.comar",
        decision_basis="default_deny",
        consent_ids=None,
    )
    _log(app, 20)  # permitted reads are not alerts
    response = client.get("/v1/audit/alerts?threshold=3", headers=auditor)
    assert response.status_code == 200
    alerts = response.get_json()["alerts"]
    assert [(a["kind"], a["actor"], a["denials"]) for a in alerts] == [
        ("denial_spike", {"agency_id": "mx.fed.inm", "person_id": "inm-0451"}, 4)
    ]
    assert client.get("/v1/audit/alerts", headers=auditor).get_json()["alerts"] == []
    both = client.get("/v1/audit/alerts?threshold=2", headers=auditor).get_json()["alerts"]
    assert {a["actor"]["agency_id"] for a in both} == {"mx.fed.inm", "mx.fed.comar"}
    bad = client.get("/v1/audit/alerts?window=5", headers=auditor)
    assert bad.status_code == 400
    assert bad.get_json()["errors"][0]["pointer"] == "/query/window"


def test_only_an_oversight_body_reads_the_log(app: Flask, client: FlaskClient) -> None:
    """A token carrying audit:read from before the registry kept it for oversight bodies (a
    state DIF's, here) reads nothing: the log names every state's children and readers."""
    _log(app, 3)
    state = _token(app, ["audit:read"], kind="state_dif")
    for route in (
        "/v1/audit/checkpoint",
        "/v1/audit/entries?start=0&end=1",
        "/v1/audit/proofs/inclusion?index=0&tree_size=1",
        "/v1/audit/proofs/consistency?first=1&second=2",
        "/v1/audit/events",
        "/v1/audit/alerts",
    ):
        refused = client.get(route, headers=state)
        assert refused.status_code == 403, route
        assert refused.get_json()["type"].endswith("/forbidden")
    assert client.get("/v1/audit/events", headers=oversight_token(app)).status_code == 200
