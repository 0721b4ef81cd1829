"""``/metrics`` tells an operator what waits: notifications by status (a backlog, or ones that
died), audit entries not yet in the log's tree, and the log against its latest checkpoint."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency

from exchange import db
from exchange.audit_log import record_event
from exchange.audit_sequencer import integrate_pending
from exchange.outbox import STATUSES, enqueue


def _gauges(client: FlaskClient) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        name: float(value)
        for name, value in re.findall(r"^(puente_(?:outbox|audit)_[^ ]+) (\S+)$", text, re.M)
    }


def test_outbox_and_audit_log_gauges(app: Flask, client: FlaskClient) -> None:
    add_agency(app, "mx.chp.dif")
    empty = _gauges(client)
    for status in STATUSES:
        assert empty[f'puente_outbox_messages{{status="{status}"}}'] == 0
    with app.app_context():
        session = db.database(app).sessions()
        for _ in range(3):
            enqueue(session, "mx.chp.dif", "referral.created", {"record_id": "rec_x"})
        dead = enqueue(session, "mx.chp.dif", "referral.created", {"record_id": "rec_y"})
        dead.status = "dead"
        for _ in range(2):
            record_event(session, action="record.read", outcome="success")
        session.commit()
        session.close()
    gauges = _gauges(client)
    assert gauges['puente_outbox_messages{status="pending"}'] == 3
    assert gauges['puente_outbox_messages{status="dead"}'] == 1
    assert (
        gauges["puente_audit_entries_unsequenced"] == empty["puente_audit_entries_unsequenced"] + 2
    )

    integrate_pending(app, force_checkpoint=True)
    sequenced = _gauges(client)
    assert sequenced["puente_audit_entries_unsequenced"] == 0
    assert sequenced["puente_audit_log_size"] == sequenced["puente_audit_checkpoint_size"] > 0
