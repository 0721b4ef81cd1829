"""Referrals and transfers asked for at the same moment: each record has at most one pending
transfer and one referral per recipient and purpose, however many requests arrive at once
(the API answers ``409`` to the others); accepting a transfer leaves no other transfer of the
record pending; a transfer its sender can no longer give says so."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from test_referrals_transfers import CLINIC, OWNER, SHELTER, Hub, transfer
from test_referrals_transfers import hub as transfers_hub  # noqa: F401 - a fixture

from exchange import db
from exchange.outbox import OutboxMessage
from exchange.sharing import RecordShare, new_share_id

#: Rounds of each race: one lost race is enough to break the rule, and each round is a new
#: record, so a round that happens to run one request after the other proves nothing alone.
ROUNDS = 3


@pytest.fixture
def hub(transfers_hub: Hub) -> Hub:  # noqa: F811 - the imported fixture, by another name
    """The hub of tests/api/test_referrals_transfers.py: the owner, a clinic with a webhook,
    a shelter without, and the consent that lets records be referred and transferred."""
    return transfers_hub


def at_once(hub: Hub, calls: list[Callable[[Any], Any]]) -> list[Any]:
    """Run each call (given a test client of its own) in a thread of its own, all released
    together; their answers, in the order given."""
    answers: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        client = hub.app.test_client()
        barrier.wait(timeout=30)
        answers[index] = calls[index](client)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(answer is not None for answer in answers), "a request did not finish"
    return answers


def post(hub: Hub, agency: str, path: str, body: Any = None) -> Callable[[Any], Any]:
    def call(client: Any) -> Any:
        return client.post(path, json=body, headers=hub.headers(agency))

    return call


def shares(hub: Hub, record_id: str, **where: str) -> list[RecordShare]:
    with db.database(hub.app).sessions() as session:
        query = select(RecordShare).where(RecordShare.record_id == record_id)
        for column, value in where.items():
            query = query.where(getattr(RecordShare, column) == value)
        return list(session.scalars(query.order_by(RecordShare.created_at)))


def notices(hub: Hub, kind: str, share_ids: set[str]) -> list[OutboxMessage]:
    return [m for m in hub.outbox() if m.kind == kind and m.payload["share_id"] in share_ids]


def test_two_transfers_of_a_record_at_once_leave_one_pending(hub: Hub) -> None:
    for round_ in range(ROUNDS):
        record_id = hub.push(local_id=f"EXP-T{round_}")
        path = f"/v1/records/{record_id}/transfers"
        answers = at_once(
            hub,
            [
                post(hub, OWNER, path, {"to": to, "reason": "La familia se trasladó."})
                for to in (CLINIC, SHELTER)
            ],
        )
        assert sorted(a.status_code for a in answers) == [201, 409], [a.get_json() for a in answers]
        [created] = [a.get_json() for a in answers if a.status_code == 201]
        [refused] = [a.get_json() for a in answers if a.status_code == 409]
        # The refusal names the transfer that is pending, one the owner can see.
        assert refused["share_id"] == created["id"]
        seen = hub.client.get("/v1/shares?role=sent&status=pending", headers=hub.headers(OWNER))
        assert created["id"] in [s["id"] for s in seen.get_json()["shares"]]
        [pending] = shares(hub, record_id, kind="transfer", status="pending")
        assert pending.id == created["id"]
        assert len(notices(hub, "transfer.requested", {pending.id})) == 1


def test_identical_referrals_at_once_make_one(hub: Hub) -> None:
    body = {"to": CLINIC, "purpose": "health_care", "categories": ["identity"]}
    for round_ in range(ROUNDS):
        record_id = hub.push(local_id=f"EXP-R{round_}")
        path = f"/v1/records/{record_id}/referrals"
        answers = at_once(hub, [post(hub, OWNER, path, body) for _ in range(3)])
        assert sorted(a.status_code for a in answers) == [201, 409, 409], [
            a.get_json() for a in answers
        ]
        [created] = [a.get_json() for a in answers if a.status_code == 201]
        assert {a.get_json()["share_id"] for a in answers if a.status_code == 409} == {
            created["id"]
        }
        [referral] = shares(hub, record_id, kind="referral")
        assert referral.id == created["id"]
        assert [m.agency_id for m in hub.outbox() if m.kind == "record.referred"].count(
            CLINIC
        ) == round_ + 1  # one notice per record


def test_a_referral_and_an_accept_of_the_record_at_once_both_finish(hub: Hub) -> None:
    """The owner refers the record to the clinic while the clinic accepts its transfer: one
    after the other, never a deadlock (PostgreSQL) or a lock error (SQLite)."""
    for round_ in range(ROUNDS):
        record_id = hub.push(local_id=f"EXP-A{round_}")
        share_id = transfer(hub, record_id).get_json()["id"]
        referral = {"to": CLINIC, "purpose": "health_care", "categories": ["identity"]}
        accepted, referred = at_once(
            hub,
            [
                post(hub, CLINIC, f"/v1/transfers/{share_id}/accept"),
                post(hub, OWNER, f"/v1/records/{record_id}/referrals", referral),
            ],
        )
        assert accepted.status_code == 200, accepted.get_json()
        # Before the acceptance the owner refers it; after, it no longer owns it.
        assert referred.status_code in (201, 403), referred.get_json()
        assert hub.owner_of(record_id) == CLINIC


# --- transfers left pending side by side before creation took turns -------------------------


def _left_pending(hub: Hub, record_id: str, to: str = SHELTER) -> str:
    """A transfer of the record from its first owner, pending beside another, as two requests
    at once could leave it before creation took turns (written directly: the API no longer
    makes one)."""
    with db.database(hub.app).sessions.begin() as session:
        share = RecordShare(
            id=new_share_id(),
            record_id=record_id,
            from_agency=OWNER,
            agency_id=to,
            kind="transfer",
            status="pending",
            purpose="case_management",
            categories=[],
            reason="Otra.",
        )
        session.add(share)
    return share.id


def test_accepting_a_transfer_withdraws_another_left_pending(hub: Hub) -> None:
    record_id = hub.push()
    first = transfer(hub, record_id).get_json()["id"]
    stale = _left_pending(hub, record_id)

    accepted = hub.post(CLINIC, f"/v1/transfers/{first}/accept", {})
    assert accepted.status_code == 200, accepted.get_json()

    [other] = shares(hub, record_id, id=stale)
    assert other.status == "cancelled" and other.decided_by == CLINIC
    assert first in (other.decision_reason or "")
    # Its recipient is told as of a withdrawal (withheld if the request never reached it).
    [withdrawn] = notices(hub, "transfer.withdrawn", {stale})
    assert withdrawn.agency_id == SHELTER
    # Its accept now says what is true.
    late = hub.post(SHELTER, f"/v1/transfers/{stale}/accept", {})
    assert late.status_code == 409
    assert (late.get_json()["share_status"], late.get_json()["detail"]) == (
        "cancelled",
        "The transfer is no longer pending (cancelled).",
    )
    # The new owner may transfer the record on.
    onward = transfer(hub, record_id, to=SHELTER, by=CLINIC)
    assert onward.status_code == 201, onward.get_json()


def test_a_transfer_its_sender_no_longer_holds_says_so_and_blocks_nothing(hub: Hub) -> None:
    record_id = hub.push()
    first = transfer(hub, record_id).get_json()["id"]
    assert hub.post(CLINIC, f"/v1/transfers/{first}/accept", {}).status_code == 200
    # A transfer the previous owner left pending, untouched by that acceptance (the state an
    # acceptance left before it withdrew the others).
    stale_id = _left_pending(hub, record_id)

    late = hub.post(SHELTER, f"/v1/transfers/{stale_id}/accept", {})
    assert late.status_code == 409
    problem = late.get_json()
    assert problem["share_status"] == "pending"
    assert "no longer responsible for the record" in problem["detail"]
    assert "no longer pending" not in problem["detail"]
    assert hub.owner_of(record_id) == CLINIC
    # It does not stand in the way of the new owner's own transfer.
    onward = transfer(hub, record_id, to=SHELTER, by=CLINIC)
    assert onward.status_code == 201, onward.get_json()
