"""``POST /v1/witness/add-checkpoint`` as c2sp.org/tlog-witness says a witness answers.

A peer's log is played by :class:`PeerLog` (a log key and a Merkle tree made with ``audit``'s
own functions); one test uses a second hub, made as ``puente init`` makes one, as the peer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency
from sqlalchemy import select

from audit import (
    AddCheckpointRequest,
    Checkpoint,
    CosignatureVerifier,
    MemoryTree,
    Note,
    Signer,
    consistency_proof,
    generate_signer_key,
    leaf_hash,
    parse_cosignature_response,
    sign_checkpoint,
    verify_checkpoint_consistency,
    verify_cosignatures,
)
from exchange import audit_log, db
from exchange.audit_log import AuditCheckpoint, AuditEntry
from exchange.audit_sequencer import TileStore, integrate_pending, tile_cache
from exchange.peers import add_peer, disable_peer
from exchange.witness_service import MAX_REQUEST_BYTES, WitnessState
from tests.conftest import make_hub

ROUTE = "/v1/witness/add-checkpoint"
ORIGIN = "mx.oax.puente/audit"


class PeerLog:
    """A peer hub's audit log: its log key and its tree, growing by whole leaves."""

    def __init__(self, origin: str = ORIGIN, leaves: int = 0) -> None:
        private_key, self.vkey = generate_signer_key(origin)
        self.signer = Signer.from_private_key(private_key)
        self.origin = origin
        self.tree = MemoryTree()
        self.grow(leaves)

    def grow(self, leaves: int) -> None:
        for _ in range(leaves):
            self.tree.append(leaf_hash(b"entry %d" % self.tree.size))

    def checkpoint(self, size: int | None = None, signer: Signer | None = None) -> str:
        size = self.tree.size if size is None else size
        head = Checkpoint(self.origin, size, self.tree.root(size))
        return sign_checkpoint(head, [signer or self.signer])

    def request(self, old: int, size: int | None = None) -> str:
        size = self.tree.size if size is None else size
        proof = self.tree.consistency_proof(old, size) if old else []
        return AddCheckpointRequest(old, tuple(proof), self.checkpoint(size)).to_text()


@pytest.fixture
def peer_log(app: Flask) -> PeerLog:
    log = PeerLog(leaves=3)
    pin(app, log)
    return log


def pin(app: Flask, log: PeerLog, hub_id: str = "mx.oax.puente") -> None:
    with app.app_context(), db.database(app).sessions.begin() as session:
        add_peer(session, hub_id, origin=log.origin, log_vkey=log.vkey)


def post(client: FlaskClient, body: str | bytes, **headers: str) -> tuple[int, str, str]:
    response = client.post(ROUTE, data=body, headers=headers)
    return response.status_code, response.content_type, response.get_data(as_text=True)


def witness_verifier(client: FlaskClient) -> CosignatureVerifier:
    return CosignatureVerifier.from_vkey(
        client.get("/.well-known/puente-hub").get_json()["witness_vkey"]
    )


def cosigned(signed_checkpoint: str, answer: str) -> str:
    note = Note.from_text(signed_checkpoint)
    return note.with_signatures(parse_cosignature_response(answer)).to_text()


def stored_state(app: Flask, origin: str = ORIGIN) -> tuple[int, bytes] | None:
    with db.database(app).sessions() as session:
        state = session.get(WitnessState, origin)
        return None if state is None else (state.size, state.root)


def test_first_checkpoint_and_growth_are_cosigned(
    app: Flask, client: FlaskClient, peer_log: PeerLog
) -> None:
    before = int(time.time())
    status, content_type, answer = post(client, peer_log.request(0))
    assert status == 200, answer
    assert content_type.startswith("text/plain")
    # What a log does with the answer: add the lines to its checkpoint, verify with the
    # witness key the hub publishes.
    verifier = witness_verifier(client)
    (cosignature,) = verify_cosignatures(
        cosigned(peer_log.checkpoint(), answer), [verifier], quorum=1
    )
    assert before <= cosignature.timestamp <= int(time.time())
    assert stored_state(app) == (3, peer_log.tree.root(3))

    peer_log.grow(5)
    status, _, answer = post(client, peer_log.request(3))
    assert status == 200, answer
    verify_cosignatures(cosigned(peer_log.checkpoint(), answer), [verifier], quorum=1)
    assert stored_state(app) == (8, peer_log.tree.root(8))

    # The same checkpoint again (old = its size, no proof) is cosigned again.
    status, _, answer = post(client, peer_log.request(8))
    assert status == 200, answer


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]
)
def test_a_request_is_read_raw_whatever_its_content_type(
    app: Flask, client: FlaskClient, peer_log: PeerLog, content_type: str
) -> None:
    """curl sends ``--data-binary @request.txt`` as a form unless told otherwise: the body is
    still the request, not a form to parse (which would leave the route an empty body)."""
    status, _, answer = post(client, peer_log.request(0), **{"Content-Type": content_type})
    assert status == 200, answer
    verify_cosignatures(
        cosigned(peer_log.checkpoint(), answer), [witness_verifier(client)], quorum=1
    )


def test_wrong_old_size_answers_409_with_the_cosigned_size(
    app: Flask, client: FlaskClient, peer_log: PeerLog
) -> None:
    assert post(client, peer_log.request(0))[0] == 200
    peer_log.grow(2)
    response = client.post(ROUTE, data=peer_log.request(1))
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "text/x.tlog.size"
    assert response.get_data(as_text=True) == "3\n"
    # A client that knows nothing sends old 0 and learns the size the same way.
    status, content_type, body = post(client, peer_log.request(0))
    assert (status, content_type, body) == (409, "text/x.tlog.size", "3\n")
    assert stored_state(app) == (3, peer_log.tree.root(3))


def test_a_proof_that_does_not_verify_answers_422(
    app: Flask, client: FlaskClient, peer_log: PeerLog
) -> None:
    assert post(client, peer_log.request(0))[0] == 200
    peer_log.grow(4)
    proof = list(peer_log.tree.consistency_proof(3, 7))
    proof[0] = bytes(32)
    body = AddCheckpointRequest(3, tuple(proof), peer_log.checkpoint()).to_text()
    response = client.post(ROUTE, data=body, headers={"Accept-Language": "en"})
    assert response.status_code == 422
    problem = response.get_json()
    assert response.content_type == "application/problem+json"
    assert problem["type"].endswith("/validation")
    assert "consistency proof does not verify" in problem["detail"]
    spanish = client.post(ROUTE, data=body, headers={"Accept-Language": "es"}).get_json()
    assert "La prueba de consistencia no verifica" in spanish["detail"]
    # A proof from the empty tree must be empty.
    other = PeerLog("mx.gro.puente/audit", leaves=2)
    pin(app, other, "mx.gro.puente")
    with_proof = AddCheckpointRequest(0, (bytes(32),), other.checkpoint()).to_text()
    assert post(client, with_proof)[0] == 422
    # Nothing was stored: the right proof still works from the old size.
    assert stored_state(app) == (3, peer_log.tree.root(3))
    assert post(client, peer_log.request(3))[0] == 200


def test_unknown_origin_answers_404(client: FlaskClient, peer_log: PeerLog) -> None:
    stranger = PeerLog("mx.zac.puente/audit", leaves=1)
    response = client.post(ROUTE, data=stranger.request(0), headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert response.get_json()["type"].endswith("/not-found")
    assert "'mx.zac.puente/audit'" in response.get_json()["detail"]


def test_a_checkpoint_not_signed_by_the_pinned_key_answers_403(
    app: Flask, client: FlaskClient, peer_log: PeerLog
) -> None:
    # Same origin and key name, another key: signatures by unknown keys are ignored, and
    # then no trusted key signed it.
    impostor = Signer.from_private_key(generate_signer_key(ORIGIN)[0])
    body = AddCheckpointRequest(0, (), peer_log.checkpoint(signer=impostor)).to_text()
    response = client.post(ROUTE, data=body)
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("/bad-signature")
    # A signature by the pinned key over another text fails the same way.
    genuine = Note.from_text(peer_log.checkpoint())
    forged = Note(genuine.text.replace("\n3\n", "\n4\n"), genuine.signatures).to_text()
    assert client.post(ROUTE, data=f"old 0\n\n{forged}").status_code == 403
    assert stored_state(app) is None


def test_a_disabled_peer_is_no_longer_witnessed(
    app: Flask, client: FlaskClient, peer_log: PeerLog
) -> None:
    assert post(client, peer_log.request(0))[0] == 200
    with app.app_context(), db.database(app).sessions.begin() as session:
        disable_peer(session, "mx.oax.puente")
    peer_log.grow(1)
    response = client.post(ROUTE, data=peer_log.request(3))
    assert response.status_code == 404
    assert stored_state(app) == (3, peer_log.tree.root(3))  # kept, never forgotten


def test_a_fork_is_refused_logged_and_audited(
    app: Flask, client: FlaskClient, peer_log: PeerLog, caplog: pytest.LogCaptureFixture
) -> None:
    assert post(client, peer_log.request(0))[0] == 200
    # The log signs another tree of the same size: the split view a witness exists to catch.
    forked = Checkpoint(ORIGIN, 3, leaf_hash(b"another history"))
    body = AddCheckpointRequest(3, (), sign_checkpoint(forked, [peer_log.signer])).to_text()
    with caplog.at_level(logging.CRITICAL, logger="puente.witness"):
        status, content_type, answer = post(client, body)
    assert (status, content_type, answer) == (409, "text/x.tlog.size", "3\n")
    assert stored_state(app) == (3, peer_log.tree.root(3))
    (record,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert record.__dict__["origin"] == ORIGIN
    assert record.__dict__["signed_checkpoint"] == sign_checkpoint(forked, [peer_log.signer])
    with db.database(app).sessions() as session:
        entries = [json.loads(row) for row in session.scalars(select(AuditEntry.entry))]
    (fork,) = [e for e in entries if e["action"] == "peer_log_forked"]
    assert fork["outcome"] == "failure"
    assert fork["object"] == {"type": "peer", "id": "mx.oax.puente"}
    # The forked root, by its leading 16 bytes: another forked root is another entry.
    assert fork["reason_code"] == f"size.3.root.{forked.root_hash[:16].hex()}"

    auditor = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    alerts = client.get("/v1/audit/alerts", headers=auditor.headers).get_json()["alerts"]
    (alert,) = [a for a in alerts if a["kind"] == "peer_log_fork"]
    assert (alert["peer"], alert["size"]) == ("mx.oax.puente", 3) and alert["detected_at"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello\n", id="not-a-request"),
        pytest.param(b"old 01\n\n", id="leading-zero"),
        pytest.param(b"old 0\nnot base64!\n\n", id="bad-proof-line"),
        pytest.param(b"old 0\n\n" + "\u00e9".encode("latin-1"), id="not-utf8"),
        pytest.param(b"old 0\n\nmx.oax.puente/audit\n3\n", id="unsigned-checkpoint"),
        pytest.param(b"old -1\n\n", id="negative"),
    ],
)
def test_malformed_bodies_answer_400(client: FlaskClient, peer_log: PeerLog, body: bytes) -> None:
    response = client.post(ROUTE, data=body, headers={"Accept-Language": "en"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["type"].endswith("/validation")
    assert response.get_json()["detail"]


def test_old_size_beyond_the_checkpoint_answers_400(client: FlaskClient, peer_log: PeerLog) -> None:
    body = AddCheckpointRequest(5, (), peer_log.checkpoint()).to_text()
    response = client.post(ROUTE, data=body, headers={"Accept-Language": "es"})
    assert response.status_code == 400
    assert "old 5 es mayor que el tamaño del punto de control 3" in response.get_json()["detail"]


def test_bodies_over_the_limit_answer_413(client: FlaskClient, peer_log: PeerLog) -> None:
    body = peer_log.request(0).encode() + b"x" * MAX_REQUEST_BYTES
    response = client.post(ROUTE, data=body)
    assert response.status_code == 413
    assert response.get_json()["type"].endswith("/payload-too-large")


def test_requests_from_the_same_old_size_do_not_both_succeed(
    app: Flask, peer_log: PeerLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post(app.test_client(), peer_log.request(0))[0] == 200
    peer_log.grow(6)
    bodies = [peer_log.request(3, 5), peer_log.request(3, 9)]
    # Between reading the stored size and storing the new one, each request waits (a while)
    # for the other: without the row lock both would read size 3 and both be cosigned; with
    # it the second reads only after the first committed, and is told the new size.
    both_checked = threading.Barrier(len(bodies), timeout=1)

    def verify_when_both_checked(*args: object) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        verify_checkpoint_consistency(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(
        "exchange.witness_service.verify_checkpoint_consistency", verify_when_both_checked
    )
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda b=body: statuses.append(post(app.test_client(), b)[0]))
        for body in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]
    state = stored_state(app)
    assert state is not None and state[0] in (5, 9)


@pytest.fixture
def peer_hub(tmp_path: Path) -> Iterator[Flask]:
    hub = make_hub(
        tmp_path / "peer",
        f"sqlite:///{tmp_path / 'peer.db'}",
        HUB_ID="mx.oax.puente",
        AUDIT_INTEGRATOR_THREAD=False,
    )
    yield hub
    hub.extensions["puente.db"].engine.dispose()


def _grow_and_sign(hub: Flask, entries: int) -> AuditCheckpoint:
    with hub.app_context(), db.database(hub).sessions.begin() as session:
        for _ in range(entries):
            audit_log.record_event(session, action="child_index_rebuilt", outcome="success")
    integrate_pending(hub, force_checkpoint=True)
    with db.database(hub).sessions() as session:
        return session.scalars(
            select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
        ).one()


def test_a_second_hub_gets_its_checkpoints_cosigned(
    app: Flask, client: FlaskClient, peer_hub: Flask
) -> None:
    document = peer_hub.test_client().get("/.well-known/puente-hub").get_json()
    with app.app_context(), db.database(app).sessions.begin() as session:
        add_peer(
            session,
            document["hub_id"],
            origin=document["audit_origin"],
            log_vkey=document["log_vkey"],
            base_url="https://puente.oax.example",
        )
    first = _grow_and_sign(peer_hub, 2)
    status, _, answer = post(client, f"old 0\n\n{first.note}")
    assert status == 200, answer
    second = _grow_and_sign(peer_hub, 3)
    with peer_hub.app_context(), db.database(peer_hub).sessions() as session:
        proof = consistency_proof(first.size, second.size, TileStore(session, tile_cache(peer_hub)))
    body = AddCheckpointRequest(first.size, tuple(proof), second.note).to_text()
    status, _, answer = post(client, body)
    assert status == 200, answer
    verify_cosignatures(cosigned(second.note, answer), [witness_verifier(client)], quorum=1)
    assert stored_state(app, document["audit_origin"]) == (second.size, second.root)
