"""Leases and attempts, as an outside check of several workers found them: a withdrawal waits
for its transfer request only while the request is being delivered, not a whole lease after;
``attempts`` counts the times a message was tried, not the times it was claimed; and
``puente outbox retry`` says only what is true of ids and agencies that name nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update
from test_referrals_transfers import CLINIC, OWNER, Hub, transfer
from test_referrals_transfers import hub as transfers_hub  # noqa: F401 - a fixture

from exchange import db, outbox_delivery, outbox_reading
from exchange.cli import main
from exchange.outbox import OutboxMessage, claim_batch, enqueue
from exchange.outbox_delivery import BatchResult, DeliveryPolicy, deliver_batch, deliver_message
from exchange.transports import TransientDeliveryError

POLICY = DeliveryPolicy(max_attempts=5, backoff_seconds=10, backoff_max_seconds=100)


@pytest.fixture
def hub(transfers_hub: Hub) -> Hub:  # noqa: F811 - the imported fixture, by another name
    """The hub of tests/api/test_referrals_transfers.py: agencies with webhooks, and the
    consent that lets records be transferred among them."""
    return transfers_hub


class Recording:
    """Delivers everything, and says what it was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def deliver(self, agency: Any, message: Any) -> None:
        self.sent.append((agency.id, message.kind))


def deliver(hub: Hub, transport: Any, policy: DeliveryPolicy = POLICY) -> BatchResult:
    """One pass of a worker: claim what is due and try it."""
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        return deliver_batch(session, transport, policy)


def stored(hub: Hub, kind: str) -> OutboxMessage:
    with db.database(hub.app).sessions() as session:
        return session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)).one()


def set_message(hub: Hub, kind: str, **values: Any) -> None:
    with db.database(hub.app).sessions.begin() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.kind == kind).values(**values))


def now() -> datetime:
    return datetime.now(UTC)


# --- 1. a withdrawal follows its request as soon as the request is done ----------------------


def test_a_withdrawal_goes_in_the_next_round_once_its_request_is_delivered(hub: Hub) -> None:
    """One worker sends the request to a slow receiver; another meets the withdrawal meanwhile
    and gives it back to wait. Once the request is delivered the withdrawal is due at once, not
    when the first worker's lease would have run out."""
    share_id = str(transfer(hub, hub.push()).get_json()["id"])
    sending, answer = threading.Event(), threading.Event()
    first = Recording()

    class SlowReceiver(Recording):
        def deliver(self, agency: Any, message: Any) -> None:
            first.deliver(agency, message)
            sending.set()
            assert answer.wait(30), "the test never let the receiver answer"

    with ThreadPoolExecutor(1) as pool:
        first_worker = pool.submit(deliver, hub, SlowReceiver())
        try:
            assert sending.wait(30), "the first worker never sent the request"
            assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
            second = Recording()
            waited = deliver(hub, second)
            assert (second.sent, waited.deferred) == ([], 1)  # the request is being delivered
            withdrawal = stored(hub, "transfer.withdrawn")
            assert withdrawal.attempts == 0  # given back untried
            assert withdrawal.next_attempt_at.replace(tzinfo=UTC) > now() + timedelta(seconds=30)
        finally:
            answer.set()
        assert first_worker.result(30).delivered == 1
    assert first.sent == [(CLINIC, "transfer.requested")]
    assert stored(hub, "transfer.requested").status == "delivered"

    # The next round of the second worker sends it.
    assert stored(hub, "transfer.withdrawn").next_attempt_at.replace(tzinfo=UTC) <= now()
    assert deliver(hub, second).delivered == 1
    assert second.sent == [(CLINIC, "transfer.withdrawn")]
    assert stored(hub, "transfer.withdrawn").attempts == 1


def test_a_request_finished_while_its_withdrawal_was_being_given_back_lets_it_go(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's worker writes its outcome (and finds no withdrawal waiting yet) between
    the check that sees it leased and the give-back: the withdrawal is still due at once."""
    share_id = str(transfer(hub, hub.push()).get_json()["id"])
    set_message(
        hub, "transfer.requested", lease_token="other", lease_until=now() + timedelta(seconds=60)
    )
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    decide = outbox_reading.withholding_reason

    def decide_then_request_finishes(session: Any, message: OutboxMessage) -> Any:
        reason = decide(session, message)
        assert isinstance(reason, outbox_reading.NotYet)
        session.commit()  # (as the worker does next: SQLite's one writer would wait for it)
        set_message(hub, "transfer.requested", status="delivered", lease_token=None)
        set_message(hub, "transfer.requested", lease_until=None, attempts=1)
        return reason

    monkeypatch.setattr(outbox_delivery, "withholding_reason", decide_then_request_finishes)
    transport = Recording()
    assert deliver(hub, transport).deferred == 1
    monkeypatch.undo()
    withdrawal = stored(hub, "transfer.withdrawn")
    assert (withdrawal.status, withdrawal.attempts) == ("pending", 0)
    assert withdrawal.next_attempt_at.replace(tzinfo=UTC) <= now()
    assert deliver(hub, transport).delivered == 1
    assert transport.sent == [(CLINIC, "transfer.withdrawn")]


def test_a_finished_request_wakes_only_the_withdrawal_that_waits_for_it(hub: Hub) -> None:
    """A withdrawal waiting out its own backoff keeps it when its request is finished."""
    share_id = str(transfer(hub, hub.push()).get_json()["id"])
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    lease_until = now() + timedelta(seconds=60)
    backoff_until = now() + timedelta(hours=1)
    set_message(hub, "transfer.requested", lease_token="t", lease_until=lease_until, attempts=1)
    set_message(hub, "transfer.withdrawn", status="failed", next_attempt_at=backoff_until)
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        request = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "transfer.requested")
        ).one()
        result = BatchResult()
        deliver_message(session, request, Recording(), POLICY, result)
    assert result.withheld == 1  # the transfer is withdrawn: its request is stale
    withdrawal = stored(hub, "transfer.withdrawn")
    assert abs((withdrawal.next_attempt_at.replace(tzinfo=UTC) - backoff_until).total_seconds()) < 1


# --- 2. attempts count the tries, not the claims ---------------------------------------------


def _revocations(hub: Hub, count: int) -> list[str]:
    """Notifications no consent decision holds back, for CLINIC."""
    with db.database(hub.app).sessions.begin() as session:
        return [
            enqueue(session, CLINIC, "consent.revoked", {"consent_id": f"c{n}"}).id
            for n in range(count)
        ]


def test_a_message_claimed_again_after_its_lease_ran_out_counts_one_attempt(hub: Hub) -> None:
    """The first worker's batch lease runs out while it sends the first message; a second
    worker takes the rest and delivers them. Each was tried once, and says so; the first
    worker, whose turn for them comes too late, neither sends nor counts them."""
    first_id, *rest = _revocations(hub, 3)
    second = Recording()
    sessions = db.database(hub.app).sessions

    class SlowReceiver(Recording):
        def deliver(self, agency: Any, message: Any) -> None:
            super().deliver(agency, message)
            with sessions.begin() as other:
                other.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id != message.id)
                    .values(lease_until=now() - timedelta(seconds=1))
                )
            assert deliver(hub, second).delivered == 2

    slow = SlowReceiver()
    result = deliver(hub, slow)
    assert (result.delivered, result.lost_lease) == (1, 2)
    assert len(slow.sent) == 1 and len(second.sent) == 2
    with sessions() as session:
        attempts = {m.id: (m.status, m.attempts) for m in session.scalars(select(OutboxMessage))}
    assert attempts == {message_id: ("delivered", 1) for message_id in [first_id, *rest]}


def test_a_claim_that_ran_out_does_not_bring_death_closer(hub: Hub) -> None:
    """With two attempts allowed, a message whose first claim ran out untried and whose first
    real try fails is retried, not dead."""
    [message_id] = _revocations(hub, 1)
    policy = DeliveryPolicy(max_attempts=2, backoff_seconds=10, backoff_max_seconds=100)
    with db.database(hub.app).sessions() as session:
        assert len(claim_batch(session, 10, policy.lease_seconds)) == 1  # the worker dies
        session.execute(update(OutboxMessage).values(lease_until=now() - timedelta(seconds=1)))
        session.commit()

    class Down:
        def deliver(self, agency: Any, message: Any) -> None:
            raise TransientDeliveryError("HTTP 503")

    assert deliver(hub, Down(), policy).retrying == 1
    message = stored(hub, "consent.revoked")
    assert (message.id, message.status, message.attempts) == (message_id, "failed", 1)


class WorkerCrash(BaseException):
    """What a worker that dies while sending leaves behind: nothing written."""


def test_a_message_that_crashes_its_worker_each_time_is_dead_after_its_attempts(
    hub: Hub,
) -> None:
    """Each try is counted before it is made, so a message whose delivery kills the worker
    runs out of attempts like any other: dead (kept, to requeue), not tried forever."""
    [message_id] = _revocations(hub, 1)
    policy = DeliveryPolicy(max_attempts=2, backoff_seconds=10, backoff_max_seconds=100)
    tried: list[str] = []

    class Crashes:
        def deliver(self, agency: Any, message: Any) -> None:
            tried.append(message.id)
            raise WorkerCrash

    for attempt in (1, 2):
        with pytest.raises(WorkerCrash):
            deliver(hub, Crashes(), policy)
        assert stored(hub, "consent.revoked").attempts == attempt
        set_message(hub, "consent.revoked", lease_until=now() - timedelta(seconds=1))
    assert deliver(hub, Crashes(), policy).dead == 1
    message = stored(hub, "consent.revoked")
    assert tried == [message_id, message_id]
    assert (message.status, message.attempts, message.lease_token) == ("dead", 2, None)
    assert message.last_error == "no outcome recorded after 2 attempts"


# --- 3. puente outbox retry with names that name nothing ----------------------------------------


def cli(hub: Hub, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", hub.app.config["DATABASE_URL"])
    return CliRunner().invoke(main, list(args))


def test_retrying_only_unknown_ids_prints_only_the_error(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    english = cli(hub, monkeypatch, "outbox", "retry", "msg_doesnotexist", "--lang", "en")
    assert english.exit_code == 1
    assert english.stdout == ""
    assert "There is no outbox message msg_doesnotexist." in english.stderr
    spanish = cli(hub, monkeypatch, "outbox", "retry", "msg_a", "msg_a", "--lang", "es")
    assert spanish.exit_code == 1 and spanish.stdout == ""
    assert "No existe el mensaje msg_a en la bandeja de salida." in spanish.stderr


def test_retrying_the_dead_of_an_unknown_agency_says_it_is_not_registered(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _revocations(hub, 1)
    set_message(hub, "consent.revoked", status="dead", last_error="HTTP 410")
    english = cli(
        hub, monkeypatch, "outbox", "retry", "--all-dead", "--agency", "mx.nope", "--lang", "en"
    )
    assert english.exit_code == 1
    assert english.stdout == ""
    assert "There is no agency 'mx.nope'." in english.stderr
    spanish = cli(
        hub, monkeypatch, "outbox", "retry", "--all-dead", "--agency", "mx.nope", "--lang", "es"
    )
    assert spanish.exit_code == 1
    assert "No existe la agencia 'mx.nope'." in spanish.stderr
    assert stored(hub, "consent.revoked").status == "dead"  # nothing requeued

    known = cli(hub, monkeypatch, "outbox", "retry", "--all-dead", "--agency", CLINIC)
    assert known.exit_code == 0, known.output
    assert known.stdout == "1 reencolados / requeued\n"
    assert stored(hub, "consent.revoked").status == "pending"
