"""``/metrics`` turns red when a peer's witness refuses this hub's log (a hub restored from an
old backup that forked it) and shows how far behind each witness's cosignature is: gauges
labelled by the peer's hub id only, read from the database like the others."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from audit import generate_cosigner_key
from audit.note import generate_signer_key
from exchange import db
from exchange.audit_log import record_event
from exchange.audit_sequencer import integrate_pending
from exchange.auth import utcnow
from exchange.peers import add_peer
from exchange.witnessing import (
    TLOG_SIZE_MEDIA_TYPE,
    HttpAnswer,
    PeerCosigning,
    request_cosignatures,
)

PEERS = ("mx.oax.puente", "mx.son.puente", "mx.yuc.puente")


def _witness_gauges(client: FlaskClient) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        name: float(value)
        for name, value in re.findall(r"^(puente_witness_[^ ]+) (\S+)$", text, re.M)
    }


def _pin(app: Flask, hub_id: str, *, witness: bool = True) -> None:
    with app.app_context(), db.database(app).sessions.begin() as session:
        add_peer(
            session,
            hub_id,
            origin=f"{hub_id}/audit",
            log_vkey=generate_signer_key(f"{hub_id}/audit")[1],
            witness_vkey=generate_cosigner_key(f"{hub_id}/witness")[1] if witness else None,
            base_url=f"https://{hub_id}.example",
        )


def test_no_peer_is_no_conflict(client: FlaskClient) -> None:
    # Given even then: an alert on it never meets a gap.
    assert _witness_gauges(client) == {"puente_witness_conflicts": 0.0}


def test_witness_conflicts_and_cosigned_sizes(app: Flask, client: FlaskClient) -> None:
    for hub_id in PEERS:
        _pin(app, hub_id)
    _pin(app, "mx.ags.puente", witness=False)  # no witness: never asked, not listed
    with db.database(app).sessions.begin() as session:
        now = utcnow()
        # One cosigned up to 40 and then refused the log (it saw another tree at 55); one
        # cosigned up to 60; the third has not cosigned yet.
        session.add(
            PeerCosigning(peer_hub_id=PEERS[0], cosigned_size=40, conflict_size=55, updated_at=now)
        )
        session.add(PeerCosigning(peer_hub_id=PEERS[1], cosigned_size=60, updated_at=now))
    assert _witness_gauges(client) == {
        "puente_witness_conflicts": 1.0,
        f'puente_witness_cosigned_size{{peer="{PEERS[0]}"}}': 40.0,
        f'puente_witness_cosigned_size{{peer="{PEERS[1]}"}}': 60.0,
        f'puente_witness_cosigned_size{{peer="{PEERS[2]}"}}': 0.0,
    }
    # A cosignature ends the conflict (exchange.witnessing._record_size).
    with db.database(app).sessions.begin() as session:
        state = session.get(PeerCosigning, PEERS[0])
        assert state is not None
        state.conflict_size, state.cosigned_size = None, 70
    gauges = _witness_gauges(client)
    assert gauges["puente_witness_conflicts"] == 0
    assert gauges[f'puente_witness_cosigned_size{{peer="{PEERS[0]}"}}'] == 70


def test_a_witness_refusing_the_log_turns_the_gauge_red(app: Flask, client: FlaskClient) -> None:
    """Through the cosigning run itself: a witness answering 409 with a size larger than this
    log has signed saw another tree of it."""
    _pin(app, PEERS[0])
    with app.app_context(), db.database(app).sessions.begin() as session:
        record_event(session, action="child_index_rebuilt", outcome="success")
    integrate_pending(app, force_checkpoint=True)

    def forked_witness(url: str, body: bytes, timeout: float) -> HttpAnswer:
        return HttpAnswer(409, TLOG_SIZE_MEDIA_TYPE, b"100000\n")

    [outcome] = request_cosignatures(app, post=forked_witness).peers
    assert outcome.outcome == "conflict"
    gauges = _witness_gauges(client)
    assert gauges["puente_witness_conflicts"] == 1
    assert gauges[f'puente_witness_cosigned_size{{peer="{PEERS[0]}"}}'] == 0
