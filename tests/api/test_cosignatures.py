"""This hub's checkpoints cosigned by a peer's witness (c2sp.org/tlog-witness, the log's side).

Two hubs made as ``puente init`` makes them: hub A (the one under test, on each backend) pins
hub B with B's witness key and a URL; B pins A's log. A's requests to B's witness go to B's
test client instead of the network.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update

from audit import (
    CosignatureVerifier,
    Note,
    NoteSignature,
    Verifier,
    generate_cosigner_key,
    open_checkpoint,
    verify_cosignatures,
)
from exchange import audit_log, db, witnessing
from exchange.audit_export import export_log
from exchange.audit_log import AuditCheckpoint, AuditEntry
from exchange.audit_queries import AlertWindow, collect_alerts
from exchange.audit_sequencer import integrate_pending
from exchange.auth import utcnow
from exchange.cli import main
from exchange.peers import Peer, add_peer
from exchange.witness_service import WitnessState
from exchange.witnessing import (
    CheckpointCosignature,
    CosigningThread,
    HttpAnswer,
    PeerCosigning,
    request_cosignatures,
)
from tests.api.test_audit_api import oversight_token
from tests.conftest import make_hub

PEER = "mx.oax.puente"
PEER_URL = "https://puente.oax.example"


class WitnessRoute:
    """``post`` for :func:`request_cosignatures`: B's test client, or a peer that is down."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.down = False
        self.bodies: list[str] = []

    def __call__(self, url: str, body: bytes, timeout: float) -> HttpAnswer:
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        assert url == PEER_URL + "/v1/witness/add-checkpoint"
        self.bodies.append(body.decode())
        response = self.client.post(urlsplit(url).path, data=body)
        return HttpAnswer(response.status_code, response.mimetype or "", response.get_data())


@pytest.fixture
def peer_hub(tmp_path: Path) -> Iterator[Flask]:
    hub = make_hub(
        tmp_path / "peer",
        f"sqlite:///{tmp_path / 'peer.db'}",
        HUB_ID=PEER,
        AUDIT_INTEGRATOR_THREAD=False,
    )
    yield hub
    hub.extensions["puente.db"].engine.dispose()


@pytest.fixture
def route(app: Flask, client: FlaskClient, peer_hub: Flask) -> WitnessRoute:
    """A pins B (and its witness), B pins A's log, as `puente peer add` on each would."""
    theirs = peer_hub.test_client().get("/.well-known/puente-hub").get_json()
    ours = client.get("/.well-known/puente-hub").get_json()
    with app.app_context(), db.database(app).sessions.begin() as session:
        add_peer(
            session,
            theirs["hub_id"],
            origin=theirs["audit_origin"],
            log_vkey=theirs["log_vkey"],
            witness_vkey=theirs["witness_vkey"],
            base_url=PEER_URL,
        )
    with peer_hub.app_context(), db.database(peer_hub).sessions.begin() as session:
        add_peer(session, ours["hub_id"], origin=ours["audit_origin"], log_vkey=ours["log_vkey"])
    return WitnessRoute(peer_hub.test_client())


def grow(app: Flask, entries: int) -> int:
    """Record entries on ``app`` and sign a checkpoint of them; returns its size."""
    with app.app_context(), db.database(app).sessions.begin() as session:
        for _ in range(entries):
            audit_log.record_event(session, action="child_index_rebuilt", outcome="success")
    integrate_pending(app, force_checkpoint=True)
    with db.database(app).sessions() as session:
        size = session.scalar(select(AuditCheckpoint.size).order_by(AuditCheckpoint.size.desc()))
    assert size is not None
    return size


def witness_key(hub: Flask) -> str:
    vkey = hub.test_client().get("/.well-known/puente-hub").get_json()["witness_vkey"]
    assert isinstance(vkey, str)
    return vkey


def log_key(hub: Flask) -> str:
    vkey = hub.test_client().get("/.well-known/puente-hub").get_json()["log_vkey"]
    assert isinstance(vkey, str)
    return vkey


def stored(app: Flask) -> tuple[list[int], int | None]:
    """The sizes of A's stored cosignatures, and the size B's witness cosigned, as A knows."""
    with db.database(app).sessions() as session:
        sizes = list(
            session.scalars(
                select(CheckpointCosignature.checkpoint_size).order_by(
                    CheckpointCosignature.checkpoint_size
                )
            )
        )
        state = session.get(PeerCosigning, PEER)
        return sizes, None if state is None else state.cosigned_size


def outcome(app: Flask, route: WitnessRoute) -> Any:
    (peer,) = request_cosignatures(app, post=route).peers
    assert peer.hub_id == PEER
    return peer


def auditor(app: Flask) -> dict[str, str]:
    """A token of an oversight body: only one reads the audit log."""
    return oversight_token(app)


def test_first_cosignature_then_a_later_one_with_a_consistency_proof(
    app: Flask, client: FlaskClient, peer_hub: Flask, route: WitnessRoute
) -> None:
    first = grow(app, 3)
    assert outcome(app, route).outcome == "cosigned"
    assert route.bodies[0].startswith("old 0\n\n")  # no proof from the empty tree
    assert stored(app) == ([first], first)

    second = grow(app, 5)
    peer = outcome(app, route)
    assert (peer.outcome, peer.cosigned_size) == ("cosigned", second)
    head, _, _ = route.bodies[1].partition("\n\n")
    old_line, *proof = head.split("\n")
    assert old_line == f"old {first}" and proof  # a consistency proof from the first
    assert stored(app) == ([first, second], second)
    with db.database(peer_hub).sessions() as session:
        state = session.get(WitnessState, f"{app.config['HUB_ID']}/audit")
        assert state is not None and state.size == second

    # Nothing newer: the witness is not asked again.
    assert outcome(app, route).outcome == "up_to_date"
    assert len(route.bodies) == 2

    # GET /v1/audit/checkpoint carries B's cosignature, which verifies with B's published key.
    answer = client.get("/v1/audit/checkpoint", headers=auditor(app))
    assert answer.status_code == 200
    note = answer.get_data(as_text=True)
    checkpoint = open_checkpoint(note, [Verifier.from_vkey(log_key(app))])
    assert checkpoint.size == second
    (cosignature,) = verify_cosignatures(
        note, [CosignatureVerifier.from_vkey(witness_key(peer_hub))], quorum=1
    )
    assert cosignature.name == f"{PEER}/witness"
    assert abs(cosignature.timestamp - time.time()) < 60


def test_a_new_checkpoint_is_served_without_cosignatures_until_cosigned(
    app: Flask, client: FlaskClient, route: WitnessRoute
) -> None:
    grow(app, 2)
    request_cosignatures(app, post=route)
    grow(app, 1)
    note = client.get("/v1/audit/checkpoint", headers=auditor(app)).get_data(as_text=True)
    assert len(Note.from_text(note).signatures) == 1  # the log's own


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_export_carries_cosignatures_and_verify_requires_the_quorum(
    app: Flask, peer_hub: Flask, route: WitnessRoute, tmp_path: Path
) -> None:
    grow(app, 4)
    request_cosignatures(app, post=route)
    grow(app, 3)  # the export signs no newer checkpoint than it has asked the witness about
    out = tmp_path / "export"
    export_log(app, out, post=route)
    lines = (out / "checkpoints.ndjson").read_text().splitlines()
    assert all(len(Note.from_text(json.loads(line)["note"]).signatures) == 2 for line in lines)

    verify = ("audit", "verify", "--full", str(out), "--vkey", log_key(app), "--lang", "en")
    witness = witness_key(peer_hub)
    passed = run_cli(*verify, "--witness", witness, "--quorum", "1")
    assert passed.exit_code == 0, passed.output

    stranger = generate_cosigner_key(f"{PEER}/witness")[1]
    wrong_key = run_cli(*verify, "--witness", stranger, "--quorum", "1")
    assert wrong_key.exit_code == 2, wrong_key.output
    assert "1 witness cosignatures verified" not in wrong_key.output
    short = run_cli(*verify, "--witness", witness, "--witness", stranger, "--quorum", "2")
    assert short.exit_code == 2, short.output
    assert "want at least 2" in short.output


def test_an_inclusion_proof_file_carries_the_cosignatures_and_meets_the_quorum(
    app: Flask, client: FlaskClient, peer_hub: Flask, route: WitnessRoute, tmp_path: Path
) -> None:
    size = grow(app, 4)
    assert outcome(app, route).outcome == "cosigned"
    answer = client.get(
        f"/v1/audit/proofs/inclusion?index=2&tree_size={size}",
        headers={**auditor(app), "Accept": "text/x.tlog-proof"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    proof = tmp_path / "entry-2.tlog-proof"
    proof.write_bytes(answer.get_data())

    verify = ("audit", "verify", "--proof", str(proof), "--vkey", log_key(app), "--lang", "en")
    passed = run_cli(*verify, "--witness", witness_key(peer_hub), "--quorum", "1")
    assert passed.exit_code == 0, passed.output
    stranger = generate_cosigner_key(f"{PEER}/witness")[1]
    refused = run_cli(*verify, "--witness", stranger, "--quorum", "1")
    assert refused.exit_code == 2, refused.output


def test_the_witness_size_ahead_of_what_we_recorded_is_adopted(
    app: Flask, route: WitnessRoute
) -> None:
    first = grow(app, 3)
    request_cosignatures(app, post=route)
    # The answer was lost on its way back: A does not know B cosigned `first`.
    with db.database(app).sessions.begin() as session:
        session.execute(delete(PeerCosigning))
    second = grow(app, 2)
    peer = outcome(app, route)
    assert (peer.outcome, peer.cosigned_size) == ("cosigned", second)
    assert [body.split("\n", 1)[0] for body in route.bodies[1:]] == ["old 0", f"old {first}"]
    assert stored(app) == ([first, second], second)


def test_a_witness_that_started_afresh_is_sent_the_whole_log(
    app: Flask, peer_hub: Flask, route: WitnessRoute
) -> None:
    first = grow(app, 3)
    request_cosignatures(app, post=route)
    with db.database(peer_hub).sessions.begin() as session:
        session.execute(delete(WitnessState))  # B's witness is behind what A recorded
    second = grow(app, 2)
    peer = outcome(app, route)
    assert (peer.outcome, peer.cosigned_size) == ("cosigned", second)
    assert [body.split("\n", 1)[0] for body in route.bodies[1:]] == [f"old {first}", "old 0"]


def conflicts(app: Flask) -> list[dict[str, Any]]:
    with db.database(app).sessions() as session:
        rows = session.scalars(
            select(AuditEntry.entry).where(AuditEntry.action == "own_log_conflict_reported")
        )
        return [json.loads(row) for row in rows]


def test_a_witness_that_cosigned_a_larger_tree_is_a_conflict_audited_once(
    app: Flask, peer_hub: Flask, route: WitnessRoute, caplog: pytest.LogCaptureFixture
) -> None:
    size = grow(app, 3)
    with db.database(peer_hub).sessions.begin() as session:
        session.add(
            WitnessState(
                origin=f"{app.config['HUB_ID']}/audit",
                size=size + 100,
                root=b"\x07" * 32,
                updated_at=utcnow(),
            )
        )
    with caplog.at_level(logging.CRITICAL, logger="puente.witness"):
        peer = outcome(app, route)
    assert peer.outcome == "conflict" and peer.status == 409
    assert any(
        r.levelno == logging.CRITICAL and "another tree" in r.getMessage() for r in caplog.records
    )
    (entry,) = conflicts(app)
    assert entry["outcome"] == "failure"
    assert entry["object"] == {"type": "peer", "id": PEER}
    assert entry["reason_code"] == f"size.{size + 100}"
    assert stored(app)[0] == []
    with db.database(app).sessions() as session:
        window = AlertWindow(utcnow() - timedelta(hours=1), utcnow() + timedelta(seconds=1), 10)
        alerts = [a for a in collect_alerts(session, window) if a["kind"] == "own_log_conflict"]
    assert [(a["peer"], a["size"]) for a in alerts] == [(PEER, size + 100)]

    grow(app, 1)
    assert outcome(app, route).outcome == "conflict"
    assert len(conflicts(app)) == 1  # a conflict that lasts is audited once


def test_a_conflict_at_our_own_size_is_another_tree(
    app: Flask, peer_hub: Flask, route: WitnessRoute
) -> None:
    size = grow(app, 3)
    with db.database(peer_hub).sessions.begin() as session:
        session.add(
            WitnessState(
                origin=f"{app.config['HUB_ID']}/audit",
                size=size,
                root=b"\x07" * 32,
                updated_at=utcnow(),
            )
        )
    peer = outcome(app, route)
    assert peer.outcome == "conflict"
    # Told the witness had cosigned size `size`, A proved its checkpoint from that size.
    assert [body.split("\n", 1)[0] for body in route.bodies] == ["old 0", f"old {size}"]
    (entry,) = conflicts(app)
    assert entry["reason_code"] == f"size.{size}"
    assert stored(app)[0] == []


def test_a_peer_that_is_down_is_tried_again_at_the_next_run(
    app: Flask, route: WitnessRoute, caplog: pytest.LogCaptureFixture
) -> None:
    size = grow(app, 3)
    route.down = True
    with caplog.at_level(logging.WARNING, logger="puente.witness"):
        peer = outcome(app, route)
    assert peer.outcome == "unreachable" and "Connection refused" in (peer.reason or "")
    (record,) = [r for r in caplog.records if r.name == "puente.witness"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert PEER in record.getMessage()
    assert stored(app) == ([], None)

    route.down = False
    assert outcome(app, route).outcome == "cosigned"
    assert stored(app) == ([size], size)


def test_other_refusals_are_logged_and_store_nothing(
    app: Flask, peer_hub: Flask, route: WitnessRoute
) -> None:
    grow(app, 3)
    with db.database(peer_hub).sessions.begin() as session:
        session.execute(update(Peer).values(active=False))  # B no longer pins A
    peer = outcome(app, route)
    assert (peer.outcome, peer.status) == ("refused", 404)
    assert stored(app) == ([], None)


def tampered(route: WitnessRoute, change: Any) -> Any:
    def post(url: str, body: bytes, timeout: float) -> HttpAnswer:
        answer = route(url, body, timeout)
        return HttpAnswer(answer.status, answer.content_type, change(answer.body))

    return post


def flip_last_signature_byte(body: bytes) -> bytes:
    line = NoteSignature.from_line(body.decode().rstrip("\n"))
    broken = line.signature[:-1] + bytes([line.signature[-1] ^ 1])
    return (NoteSignature(line.name, line.key_id, broken).to_line() + "\n").encode()


def signed_by_a_stranger(body: bytes) -> bytes:
    line = NoteSignature.from_line(body.decode().rstrip("\n"))
    return (NoteSignature(f"{PEER}/other", line.key_id, line.signature).to_line() + "\n").encode()


@pytest.mark.parametrize("change", [flip_last_signature_byte, signed_by_a_stranger])
def test_a_cosignature_that_does_not_verify_is_not_stored(
    app: Flask, route: WitnessRoute, change: Any
) -> None:
    size = grow(app, 3)
    (peer,) = request_cosignatures(app, post=tampered(route, change)).peers
    assert peer.outcome == "bad_cosignature"
    assert stored(app) == ([], None)
    # The witness did cosign: the next run learns its size from a 409 and gets a good one.
    assert outcome(app, route).outcome == "cosigned"
    assert stored(app) == ([size], size)


def test_puente_audit_witness(
    app: Flask,
    route: WitnessRoute,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setattr(witnessing, "http_post", route)
    size = grow(app, 3)
    result = run_cli("audit", "witness", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "ok": True,
        "checkpoint_size": size,
        "peers": [
            {
                "peer": PEER,
                "outcome": "cosigned",
                "cosigned_size": size,
                "status": 200,
                "reason": None,
            }
        ],
    }
    again = run_cli("audit", "witness", "--lang", "es")
    assert again.exit_code == 0, again.output
    assert f"{PEER}: ya lo había cofirmado" in again.output

    grow(app, 1)
    route.down = True
    down = run_cli("audit", "witness", "--lang", "en")
    assert down.exit_code == 1
    assert f"{PEER}: no answer; will be retried" in down.output


def test_the_worker_thread_gets_new_checkpoints_cosigned(app: Flask, route: WitnessRoute) -> None:
    size = grow(app, 3)
    thread = CosigningThread(app, interval=0.05, post=route)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while stored(app)[1] != size and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        thread.stop()
    assert stored(app) == ([size], size)
