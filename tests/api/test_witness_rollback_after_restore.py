"""A hub restored from an old backup that grows past what its witness cosigned: its log now
holds another tree at that size, and both hubs say so, once, as they do for the neighbouring
cases (the restored log still below the witnessed size; a fork of the witnessed size itself).

The witness catches it in the consistency proof: the proof rebuilds the new signed root from
another root at the cosigned size (``peer_log_forked``, a ``peer_log_fork`` alert); the
witnessed hub, whose own proof verifies against its own tree, is told 422 and records
``own_log_conflict_reported`` (an ``own_log_conflict`` alert). A proof that proves nothing — a
replayed checkpoint with a bad proof, or the hub's own wrong proof — is no fork on either side.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from audit import (
    AddCheckpointRequest,
    Checkpoint,
    MemoryTree,
    consistency_proof,
    leaf_hash,
    sign_checkpoint,
)
from exchange import db, witnessing
from exchange.audit_log import AuditCheckpoint, AuditEntry
from exchange.auth import utcnow
from exchange.peers import add_peer
from exchange.witness_service import WitnessState
from tests.api.test_audit_api import oversight_token
from tests.api.test_cosignatures import (
    PEER,
    PEER_URL,
    WitnessRoute,
    conflicts,
    grow,
    outcome,
    peer_hub,  # noqa: F401 - a fixture route needs
)
from tests.api.test_cosignatures import route as witness_route  # noqa: F401 - a fixture
from tests.api.test_witness import ORIGIN, ROUTE, PeerLog, pin, post, stored_state
from tests.conftest import make_hub

RESTORED = "mx.fed.puente"


@pytest.fixture
def route(witness_route: WitnessRoute) -> WitnessRoute:  # noqa: F811 - the imported fixture
    return witness_route


def forks(hub: Flask) -> list[dict[str, Any]]:
    with db.database(hub).sessions() as session:
        rows = session.scalars(
            select(AuditEntry.entry).where(AuditEntry.action == "peer_log_forked")
        )
        return [json.loads(row) for row in rows]


def alerts(hub: Flask, kind: str) -> list[tuple[str, int]]:
    """``GET /v1/audit/alerts`` as an oversight body reads it: (peer, size) of each ``kind``."""
    answer = hub.test_client().get("/v1/audit/alerts", headers=oversight_token(hub))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return [(a["peer"], a["size"]) for a in answer.get_json()["alerts"] if a["kind"] == kind]


def is_power_of_two(size: int) -> bool:
    return size & (size - 1) == 0


# -- the witness: a proof that opens another tree at the cosigned size ------------------------


def rewritten(kept: int, size: int) -> MemoryTree:
    """A :class:`PeerLog`'s tree with its first ``kept`` leaves and other ones after, ``size``
    in all: what a log restored from a backup of ``kept`` entries and grown again holds."""
    tree = MemoryTree()
    for index in range(size):
        history = b"entry %d" if index < kept else b"after the restore %d"
        tree.append(leaf_hash(history % index))
    return tree


def request_from(log: PeerLog, tree: MemoryTree, old: int, size: int | None = None) -> str:
    """``add-checkpoint`` for ``tree`` of ``size`` (all of it by default), signed with the
    log's own key, with ``tree``'s proof from ``old``."""
    size = tree.size if size is None else size
    signed = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), [log.signer])
    return AddCheckpointRequest(old, tuple(tree.consistency_proof(old, size)), signed).to_text()


@pytest.fixture
def peer_log(app: Flask) -> PeerLog:
    log = PeerLog(leaves=20)  # 20: not a power of two, so the proof carries its subtree
    pin(app, log)
    return log


def test_a_log_rewritten_below_the_cosigned_size_and_grown_is_a_fork_audited_once(
    app: Flask, client: FlaskClient, peer_log: PeerLog, caplog: pytest.LogCaptureFixture
) -> None:
    assert post(client, peer_log.request(0))[0] == 200
    tree = rewritten(kept=15, size=25)
    with caplog.at_level(logging.CRITICAL, logger="puente.witness"):
        response = client.post(
            ROUTE, data=request_from(peer_log, tree, 20), headers={"Accept-Language": "en"}
        )
    assert response.status_code == 422
    assert "The log forked" in response.get_json()["detail"]
    (record,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert record.__dict__["origin"] == ORIGIN and record.__dict__["size"] == 20
    (fork,) = forks(app)
    assert fork["outcome"] == "failure"
    assert fork["object"] == {"type": "peer", "id": PEER}
    # Named by the rewritten tree's root at the cosigned size, as a same-size fork is.
    assert fork["reason_code"] == f"size.20.root.{tree.root(20)[:16].hex()}"
    assert stored_state(app) == (20, peer_log.tree.root(20))  # nothing cosigned

    spanish = client.post(
        ROUTE, data=request_from(peer_log, tree, 20), headers={"Accept-Language": "es"}
    )
    assert "La bitácora se bifurcó" in spanish.get_json()["detail"]
    # The same rewritten tree, grown further, and its checkpoint of the cosigned size itself:
    # one fork, already audited.
    tree.append(leaf_hash(b"later"))
    assert post(client, request_from(peer_log, tree, 20))[0] == 422
    same_size = sign_checkpoint(Checkpoint(ORIGIN, 20, tree.root(20)), [peer_log.signer])
    assert post(client, AddCheckpointRequest(20, (), same_size).to_text())[0] == 409
    assert len(forks(app)) == 1
    assert alerts(app, "peer_log_fork") == [(PEER, 20)]
    # The genuine log is still cosigned from the size the witness keeps.
    peer_log.grow(5)
    assert post(client, peer_log.request(20))[0] == 200


def test_a_proof_that_opens_no_signed_tree_is_no_fork(
    app: Flask, client: FlaskClient, peer_log: PeerLog
) -> None:
    # Anyone may send the log's genuine checkpoint with a proof of their choosing (the route
    # needs no token): another tree's proof, or a damaged one, shows a wrong first root but
    # does not rebuild the signed root, so it proves nothing of the log.
    assert post(client, peer_log.request(0))[0] == 200
    peer_log.grow(5)
    other = rewritten(kept=15, size=25)
    genuine = AddCheckpointRequest.from_text(peer_log.request(20))
    for proof in (
        tuple(other.consistency_proof(20, 25)),
        (bytes(32), *genuine.consistency_proof[1:]),
        genuine.consistency_proof[:-1],
    ):
        body = AddCheckpointRequest(20, proof, genuine.checkpoint).to_text()
        response = client.post(ROUTE, data=body, headers={"Accept-Language": "en"})
        assert response.status_code == 422
        assert "consistency proof does not verify" in response.get_json()["detail"]
    assert forks(app) == []
    assert alerts(app, "peer_log_fork") == []


def test_a_power_of_two_cosigned_size_shows_no_other_root(app: Flask, client: FlaskClient) -> None:
    # RFC 9162 leaves the subtree of a power-of-two size out of the proof (the witness knows
    # it): a rewritten tree's proof then fails on the signed root alone, like a bad proof.
    log = PeerLog(leaves=16)
    pin(app, log)
    assert post(client, log.request(0))[0] == 200
    assert post(client, request_from(log, rewritten(kept=10, size=20), 16))[0] == 422
    assert forks(app) == []


# -- the witnessed hub: a refusal of its own proof -------------------------------------------


def plant_other_tree(app: Flask, witness: Flask, size: int) -> None:
    """``witness`` (B) has cosigned size ``size`` of another tree of A's (``app``'s) log."""
    with db.database(witness).sessions.begin() as session:
        session.add(
            WitnessState(
                origin=f"{app.config['HUB_ID']}/audit",
                size=size,
                root=b"\x07" * 32,
                updated_at=utcnow(),
            )
        )


def test_a_witness_refusing_our_own_proof_is_a_conflict_audited_once(
    app: Flask,
    peer_hub: Flask,  # noqa: F811 - the imported fixture
    route: WitnessRoute,
    caplog: pytest.LogCaptureFixture,
) -> None:
    witnessed = grow(app, 3)
    if is_power_of_two(witnessed):
        witnessed = grow(app, 1)
    plant_other_tree(app, peer_hub, witnessed)
    size = grow(app, 4)
    with caplog.at_level(logging.CRITICAL, logger="puente.witness"):
        peer = outcome(app, route)
    assert (peer.outcome, peer.status) == ("conflict", 422)
    assert "written to the audit log" in (peer.reason or "")
    assert "registrado en la bitácora de auditoría" in (peer.said("es") or "")
    # Told the witness's size by a 409, A proved its checkpoint from it; the witness refused.
    assert [body.split("\n", 1)[0] for body in route.bodies] == ["old 0", f"old {witnessed}"]
    assert any(
        r.levelno == logging.CRITICAL and "another tree" in r.getMessage() for r in caplog.records
    )
    (entry,) = conflicts(app)
    assert entry["object"] == {"type": "peer", "id": PEER}
    assert entry["reason_code"] == f"size.{witnessed}"
    assert alerts(app, "own_log_conflict") == [(PEER, witnessed)]
    # The witness saw the same: A's tree has another root at the size it cosigned.
    (fork,) = forks(peer_hub)
    assert fork["reason_code"].startswith(f"size.{witnessed}.root.")
    assert size > witnessed

    for _ in range(2):
        grow(app, 1)
        peer = outcome(app, route)
        assert peer.outcome == "conflict"
        assert f"already in the audit log (size {witnessed})" in (peer.reason or "")
    assert len(conflicts(app)) == 1
    assert len(forks(peer_hub)) == 1


def test_at_a_power_of_two_cosigned_size_the_hub_still_reports_it(
    app: Flask,
    peer_hub: Flask,  # noqa: F811 - the imported fixture
    route: WitnessRoute,
) -> None:
    witnessed = grow(app, 1)
    while not is_power_of_two(witnessed):
        witnessed = grow(app, (1 << witnessed.bit_length()) - witnessed)
    plant_other_tree(app, peer_hub, witnessed)
    grow(app, 3)
    peer = outcome(app, route)
    assert (peer.outcome, peer.status) == ("conflict", 422)
    assert [entry["reason_code"] for entry in conflicts(app)] == [f"size.{witnessed}"]
    assert forks(peer_hub) == []  # the proof could not show the witness another root


def test_our_own_wrong_proof_is_not_called_a_conflict(
    app: Flask,
    peer_hub: Flask,  # noqa: F811 - the imported fixture
    route: WitnessRoute,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = grow(app, 3)
    assert outcome(app, route).outcome == "cosigned"
    grow(app, 4)

    def wrong_proof(*args: Any) -> list[bytes]:
        proof = consistency_proof(*args)
        return [bytes(32), *proof[1:]]

    # A bug of this hub's: the witness refuses the proof, and rightly finds no fork in it.
    monkeypatch.setattr(witnessing, "consistency_proof", wrong_proof)
    with caplog.at_level(logging.ERROR, logger="puente.witness"):
        peer = outcome(app, route)
    assert (peer.outcome, peer.status) == ("refused", 422)
    assert any(
        r.levelno == logging.ERROR and "own consistency proof" in r.getMessage()
        for r in caplog.records
    )
    assert conflicts(app) == [] and forks(peer_hub) == []
    with db.database(app).sessions() as session:
        state = session.get(witnessing.PeerCosigning, PEER)
        assert state is not None and (state.cosigned_size, state.conflict_size) == (first, None)


# -- the whole story: a real backup, a restore, growth past the witness ------------------------


class Restorable:
    """A hub on a SQLite file (hub A of the finding) that can be backed up, stopped and
    restored, as an operator would with ``puente.db``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.database = folder / "puente.db"
        self.hub = self._start()

    def _start(self) -> Flask:
        url = f"sqlite:///{self.database}"
        return make_hub(self.folder, url, HUB_ID=RESTORED, AUDIT_INTEGRATOR_THREAD=False)

    def back_up(self, to: Path) -> None:
        _copy_database(self.database, to)

    def restore(self, backup: Path) -> None:
        """Stop the hub, put the backup back, start it again (fresh caches)."""
        self.stop()
        _copy_database(backup, self.database)
        self.hub = self._start()

    def stop(self) -> None:
        self.hub.extensions["puente.db"].engine.dispose()


def _copy_database(source: Path, target: Path) -> None:
    # SQLite's backup API, not a file copy: it reads a consistent database whatever the journal.
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


@pytest.fixture
def restorable(app: Flask, tmp_path: Path) -> Iterator[Restorable]:
    """Hub A (SQLite, restorable) pins ``app``'s witness; ``app`` (each backend) pins A's
    log: ``app`` is the witness of the finding (Chiapas)."""
    hub_a = Restorable(tmp_path / "restorable")
    witness = app.test_client().get("/.well-known/puente-hub").get_json()
    ours = hub_a.hub.test_client().get("/.well-known/puente-hub").get_json()
    with hub_a.hub.app_context(), db.database(hub_a.hub).sessions.begin() as session:
        add_peer(
            session,
            witness["hub_id"],
            origin=witness["audit_origin"],
            log_vkey=witness["log_vkey"],
            witness_vkey=witness["witness_vkey"],
            base_url=PEER_URL,
        )
    with app.app_context(), db.database(app).sessions.begin() as session:
        add_peer(session, RESTORED, origin=ours["audit_origin"], log_vkey=ours["log_vkey"])
    yield hub_a
    hub_a.stop()


def ask(hub_a: Restorable, witness: Flask) -> Any:
    (peer,) = witnessing.request_cosignatures(
        hub_a.hub, post=WitnessRoute(witness.test_client())
    ).peers
    return peer


def signed_sizes(hub: Flask) -> set[int]:
    with db.database(hub).sessions() as session:
        return set(session.scalars(select(AuditCheckpoint.size)))


def test_a_hub_restored_from_an_old_backup_that_grows_past_its_witness(
    app: Flask, restorable: Restorable, tmp_path: Path
) -> None:
    backed_up = grow(restorable.hub, 3)
    assert ask(restorable, app).outcome == "cosigned"
    restorable.back_up(tmp_path / "backup.db")
    witnessed = grow(restorable.hub, 3)
    if is_power_of_two(witnessed):
        witnessed = grow(restorable.hub, 1)
    assert ask(restorable, app).outcome == "cosigned"

    restorable.restore(tmp_path / "backup.db")
    assert max(signed_sizes(restorable.hub)) == backed_up
    size = grow(restorable.hub, witnessed - backed_up + 2)
    assert size > witnessed
    peer = ask(restorable, app)
    assert (peer.outcome, peer.status) == ("conflict", 422)

    # The witnessed hub: its own log does not extend what the witness cosigned.
    (entry,) = conflicts(restorable.hub)
    assert entry["object"] == {"type": "peer", "id": app.config["HUB_ID"]}
    assert entry["reason_code"] == f"size.{witnessed}"
    assert alerts(restorable.hub, "own_log_conflict") == [(app.config["HUB_ID"], witnessed)]
    # The witness: the log it witnessed was rewritten.
    (fork,) = forks(app)
    assert fork["object"] == {"type": "peer", "id": RESTORED}
    assert fork["reason_code"].startswith(f"size.{witnessed}.root.")
    assert alerts(app, "peer_log_fork") == [(RESTORED, witnessed)]
    with db.database(app).sessions() as session:
        state = session.get(WitnessState, f"{RESTORED}/audit")
        assert state is not None and state.size == witnessed  # nothing cosigned over it

    # Every later run says it again, and writes nothing more on either side.
    for _ in range(2):
        grow(restorable.hub, 1)
        assert ask(restorable, app).outcome == "conflict"
    assert len(conflicts(restorable.hub)) == 1
    assert len(forks(app)) == 1


def test_a_restored_hub_below_then_past_its_witness_is_audited_once_on_each_side(
    app: Flask, restorable: Restorable, tmp_path: Path
) -> None:
    backed_up = grow(restorable.hub, 3)
    assert ask(restorable, app).outcome == "cosigned"
    restorable.back_up(tmp_path / "backup.db")
    witnessed = grow(restorable.hub, 6)
    if is_power_of_two(witnessed):
        witnessed = grow(restorable.hub, 1)
    assert ask(restorable, app).outcome == "cosigned"
    restorable.restore(tmp_path / "backup.db")

    # Still below the witnessed size: a 409 with a larger size, as before.
    below = grow(restorable.hub, 1)
    assert backed_up < below < witnessed
    peer = ask(restorable, app)
    assert (peer.outcome, peer.status) == ("conflict", 409)
    assert forks(app) == []  # a 409 is all the witness said; it saw no signed fork yet

    # Past it: the witness now sees the rewritten tree; the hub's conflict is already audited.
    grow(restorable.hub, witnessed - below + 2)
    peer = ask(restorable, app)
    assert (peer.outcome, peer.status) == ("conflict", 422)
    assert [e["reason_code"] for e in conflicts(restorable.hub)] == [f"size.{witnessed}"]
    (fork,) = forks(app)
    assert fork["reason_code"].startswith(f"size.{witnessed}.root.")
