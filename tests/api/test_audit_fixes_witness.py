"""``POST /v1/witness/add-checkpoint``: a fork is audited once, whoever replays it and however
often; its refusals speak one language at a time; a wrong method is not "not found".

The peer log is :class:`tests.api.test_witness.PeerLog` (a log key and a Merkle tree).
"""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency
from sqlalchemy import select

from audit import AddCheckpointRequest, Checkpoint, Note, leaf_hash, sign_checkpoint
from exchange import db
from exchange.audit_log import AuditEntry
from exchange.auth import utcnow
from tests.api.test_witness import ORIGIN, ROUTE, PeerLog, pin, post

PEER = "mx.oax.puente"


@pytest.fixture
def peer_log(app: Flask) -> PeerLog:
    log = PeerLog(leaves=20)
    pin(app, log)
    return log


def _fork_request(peer_log: PeerLog, history: bytes = b"another history") -> str:
    """``old 20`` and a size-20 checkpoint, validly signed by the peer, with another root."""
    forked = Checkpoint(ORIGIN, peer_log.tree.size, leaf_hash(history))
    signed = sign_checkpoint(forked, [peer_log.signer])
    return AddCheckpointRequest(peer_log.tree.size, (), signed).to_text()


def _fork_entries(app: Flask) -> list[dict[str, Any]]:
    with db.database(app).sessions() as session:
        rows = session.scalars(
            select(AuditEntry.entry).where(AuditEntry.action == "peer_log_forked")
        )
        return [json.loads(row) for row in rows]


def _fork_alerts(app: Flask, client: FlaskClient) -> list[dict[str, Any]]:
    auditor = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    alerts = client.get("/v1/audit/alerts", headers=auditor.headers).get_json()["alerts"]
    return [alert for alert in alerts if alert["kind"] == "peer_log_fork"]


def test_a_replayed_fork_is_audited_once(
    app: Flask, client: FlaskClient, peer_log: PeerLog
) -> None:
    assert post(client, peer_log.request(0))[0] == 200
    body = _fork_request(peer_log)
    for _ in range(3):
        assert post(client, body) == (409, "text/x.tlog.size", "20\n")
    (fork,) = _fork_entries(app)
    assert fork["object"] == {"type": "peer", "id": PEER}
    assert fork["reason_code"].startswith("size.20.root.")
    (alert,) = _fork_alerts(app, client)
    assert (alert["peer"], alert["size"]) == (PEER, 20)


def test_another_forked_root_of_the_same_size_is_audited_too(
    app: Flask, client: FlaskClient, peer_log: PeerLog
) -> None:
    assert post(client, peer_log.request(0))[0] == 200
    first, second = _fork_request(peer_log, b"one"), _fork_request(peer_log, b"two")
    for body in (first, second, first, second):
        assert post(client, body)[0] == 409
    codes = sorted(entry["reason_code"] for entry in _fork_entries(app))
    assert len(codes) == 2 and codes[0] != codes[1]
    # The root the entry names is the forked checkpoint's (a prefix of its hex).
    forked_root = Note.from_text(AddCheckpointRequest.from_text(first).checkpoint).text
    root = Checkpoint.from_text(forked_root).root_hash.hex()
    assert f"size.20.root.{root[:32]}" in codes


def test_a_recosigned_checkpoint_does_not_reopen_an_audited_fork(
    app: Flask, client: FlaskClient, peer_log: PeerLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The genuine checkpoint again (anyone may replay it), a day later, is cosigned again;
    # the fork sent after it is still the one already audited.
    assert post(client, peer_log.request(0))[0] == 200
    body = _fork_request(peer_log)
    assert post(client, body)[0] == 409
    a_day_later = utcnow() + timedelta(days=1)
    monkeypatch.setattr("exchange.witness_service.utcnow", lambda: a_day_later)
    assert post(client, peer_log.request(20))[0] == 200
    assert post(client, body)[0] == 409
    assert len(_fork_entries(app)) == 1


def test_two_identical_forks_at_once_are_audited_once(
    app: Flask, peer_log: PeerLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post(app.test_client(), peer_log.request(0))[0] == 200
    body = _fork_request(peer_log)
    # Both requests wait for each other after checking the signature and before taking the
    # witness state's lock: without the lock around "already audited?" both would write.
    both_verified = threading.Barrier(2, timeout=2)
    import exchange.witness_service as witness_service

    real_open = witness_service.open_checkpoint

    def open_when_both_verified(*args: Any, **kwargs: Any) -> Any:
        opened = real_open(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_verified.wait()
        return opened

    monkeypatch.setattr(witness_service, "open_checkpoint", open_when_both_verified)
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(post(app.test_client(), body)[0]))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [409, 409]
    assert len(_fork_entries(app)) == 1


def test_a_malformed_request_is_said_in_spanish_words(
    client: FlaskClient, peer_log: PeerLog
) -> None:
    note = Note.from_text(peer_log.checkpoint())
    short = f"{note.text}\n— mx.nobody/audit AAAA\n"  # 3 bytes of signature
    body = f"old 0\n\n{short}"
    spanish = client.post(ROUTE, data=body, headers={"Accept-Language": "es"}).get_json()
    assert spanish["detail"] == (
        "La solicitud add-checkpoint está mal formada: punto de control no válido en la "
        "solicitud: la firma de 'mx.nobody/audit' tiene 3 bytes; se esperaban al menos 5"
    )
    english = client.post(ROUTE, data=body, headers={"Accept-Language": "en"}).get_json()
    assert english["detail"] == (
        "The add-checkpoint request is malformed: invalid checkpoint in request: signature by "
        "'mx.nobody/audit' has 3 bytes, want at least 5"
    )


def test_too_many_proof_lines_are_said_in_spanish(client: FlaskClient, peer_log: PeerLog) -> None:
    body = "old 1\n" + "AAAA\n" * 64 + "\n" + peer_log.checkpoint()
    spanish = client.post(ROUTE, data=body, headers={"Accept-Language": "es"}).get_json()
    assert "64 líneas de prueba de consistencia; se permiten como máximo 63" in spanish["detail"]


def test_a_wrong_method_is_not_called_not_found(client: FlaskClient) -> None:
    response = client.get(ROUTE, headers={"Accept-Language": "en"})
    assert response.status_code == 405
    problem = response.get_json()
    assert not problem["type"].endswith("/not-found")
    assert problem["type"] == "https://puente.mx/problems/validation"
    assert problem["title"] == "Method not allowed"
    assert response.headers["Allow"].split(", ") == ["OPTIONS", "POST"]
    assert "use OPTIONS, POST" in problem["detail"]
