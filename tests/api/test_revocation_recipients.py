"""Whom a revocation tells: an agency is told that a consent was revoked only if something
about the child reached it under the consent — it was sent, or read, the notice of a referral or
of a transfer's request; it accepted a transfer; it read the record. A referral or transfer
withdrawn (or made impossible by the revocation) before its notice went out told the recipient
nothing, and a revocation notice must not be the first it hears of the child."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from test_referrals_transfers import CLINIC, OWNER, SHELTER, Hub, refer, transfer
from test_referrals_transfers import hub as transfers_hub  # noqa: F401 - a fixture

from exchange import db
from exchange.outbox import OutboxMessage
from exchange.outbox_delivery import BatchResult, DeliveryPolicy, deliver_batch

POLICY = DeliveryPolicy(max_attempts=5, backoff_seconds=10, backoff_max_seconds=100)


@pytest.fixture
def hub(transfers_hub: Hub) -> Hub:  # noqa: F811 - the imported fixture, by another name
    """The hub of tests/api/test_referrals_transfers.py: the owner, a clinic with a webhook,
    a shelter without, and the consent that lets records be referred and transferred."""
    return transfers_hub


class Recording:
    """A transport that takes every message and remembers to whom it went."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def deliver(self, agency: Any, message: Any) -> None:
        self.sent.append((agency.id, message.kind))


def run_worker(hub: Hub) -> tuple[Recording, BatchResult]:
    """One pass of ``puente worker --once``."""
    transport = Recording()
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        result = deliver_batch(session, transport, POLICY, 50)
    return transport, result


def statuses(hub: Hub, agency: str) -> dict[str, str]:
    with db.database(hub.app).sessions() as session:
        found = session.scalars(select(OutboxMessage).where(OutboxMessage.agency_id == agency))
        return {message.kind: message.status for message in found}


def inbox(hub: Hub, agency: str) -> list[str]:
    answer = hub.client.get("/v1/notifications", headers=hub.headers(agency))
    assert answer.status_code == 200, answer.get_json()
    return [notice["event"] for notice in answer.get_json()["notifications"]]


def revoke(hub: Hub, record_id: str) -> list[str]:
    answer = hub.revoke_consent(record_id)
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["notified"])


def withdraw(hub: Hub, share_id: str) -> None:
    answer = hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {})
    assert answer.status_code == 200, answer.get_json()


# --- told nothing: not told of the revocation -----------------------------------------------


def test_a_transfer_withdrawn_before_its_request_went_out_is_not_told_of_the_revocation(
    hub: Hub,
) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    withdraw(hub, share_id)
    sent, result = run_worker(hub)
    assert sent.sent == [] and result.withheld == 2  # the request never reached the clinic

    assert CLINIC not in revoke(hub, record_id)
    sent, _ = run_worker(hub)
    assert (CLINIC, "consent.revoked") not in sent.sent
    assert "consent.revoked" not in statuses(hub, CLINIC)


def test_a_held_transfer_withdrawn_unread_is_not_told_of_the_revocation(hub: Hub) -> None:
    """An agency without a webhook that never read the request (it reads after the
    withdrawal: both are withheld) is not told either."""
    record_id = hub.push()
    share_id = transfer(hub, record_id, to=SHELTER).get_json()["id"]
    withdraw(hub, share_id)
    assert inbox(hub, SHELTER) == []

    assert SHELTER not in revoke(hub, record_id)
    assert inbox(hub, SHELTER) == []


def test_a_transfer_the_revocation_stops_before_its_request_went_out_tells_nothing(
    hub: Hub,
) -> None:
    """Revoked while the request waits to go: the request is then withheld by consent, so
    nothing about the child ever reaches the clinic, the revocation included."""
    record_id = hub.push()
    assert transfer(hub, record_id).status_code == 201

    assert CLINIC not in revoke(hub, record_id)
    sent, result = run_worker(hub)
    assert sent.sent == [] and result.withheld == 1
    assert statuses(hub, CLINIC) == {"transfer.requested": "withheld"}


# --- something reached it: told of the revocation -------------------------------------------


def test_a_transfer_withdrawn_after_its_request_was_delivered_is_told(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    sent, _ = run_worker(hub)
    assert sent.sent == [(CLINIC, "transfer.requested")]
    withdraw(hub, share_id)

    assert CLINIC in revoke(hub, record_id)
    sent, _ = run_worker(hub)
    assert (CLINIC, "consent.revoked") in sent.sent


def test_a_held_transfer_request_read_then_withdrawn_is_told(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id, to=SHELTER).get_json()["id"]
    assert inbox(hub, SHELTER) == ["transfer.requested"]
    withdraw(hub, share_id)

    assert SHELTER in revoke(hub, record_id)
    assert inbox(hub, SHELTER)[-1] == "consent.revoked"


def test_an_accepted_transfer_is_told(hub: Hub) -> None:
    """Accepted before its request went out (the recipient found it in GET /v1/shares)."""
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept", {}).status_code == 200

    assert CLINIC in revoke(hub, record_id)


def test_a_referral_is_told(hub: Hub) -> None:
    """A referral whose notice went out: the recipient holds it."""
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    sent, _ = run_worker(hub)
    assert sent.sent == [(CLINIC, "record.referred")]

    assert CLINIC in revoke(hub, record_id)
