"""Transactional outbox: notifications to agencies, written with the action, delivered later.

An action that must be notified (a referral, a transfer, its acceptance) calls :func:`enqueue`
in its own transaction, so there is no action without its notification and no notification of
an action that was rolled back. ``puente worker`` then delivers what is due.

Message life: ``pending`` → ``delivered``; a transient failure makes it ``failed`` with a
``next_attempt_at`` after an exponential backoff with jitter; after ``OUTBOX_MAX_ATTEMPTS``
attempts, or on a permanent failure, it is ``dead`` — kept, visible with ``puente outbox list``
and requeued with ``puente outbox retry``, never deleted.

Claiming: a worker takes a batch of due messages by stamping them with a lease (a random token
and ``lease_until``) in one short transaction — on PostgreSQL the candidate rows are selected
``FOR UPDATE SKIP LOCKED`` so concurrent workers take disjoint batches without waiting; on SQLite,
with its single writer, one ``UPDATE … WHERE id IN (SELECT …)`` claims atomically. Delivery
happens outside any transaction; the result is written only while the lease is still held.
A worker that crashes leaves leases that run out, and its messages are taken again: delivery
is at least once, and the SET ``jti`` (the message id) lets receivers drop a repeat.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from exchange.auth import as_utc, utcnow
from exchange.db import Base, database, unavailable_reason
from exchange.transports import (
    AgencyTransports,
    DeliveryTransport,
    PermanentDeliveryError,
    TransientDeliveryError,
)

log = logging.getLogger("puente.worker")

#: ``held``: for an agency with no webhook or file drop; never sent, read with
#: ``GET /v1/notifications``.
STATUSES = ("pending", "delivered", "failed", "dead", "withheld", "held")
#: Statuses a worker may claim (when due and not leased).
DUE_STATUSES = ("pending", "failed")

DEFAULT_MAX_ATTEMPTS = 12
DEFAULT_BACKOFF_SECONDS = 5.0
DEFAULT_BACKOFF_MAX_SECONDS = 3600.0
DEFAULT_LEASE_SECONDS = 60.0
#: Longest pause between passes while they keep failing (the database is down, …), unless
#: ``poll_seconds`` is longer.
MAX_FAILURE_BACKOFF_SECONDS = 60.0


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


class OutboxMessage(Base):
    """One notification waiting for (or done with) delivery to an agency."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_message_id)
    #: The agency of this hub it is for; None for a message to a peer hub (``peer_hub``), whose
    #: payload names the peer's agency.
    agency_id: Mapped[str | None] = mapped_column(
        ForeignKey("agency.id"), index=True, nullable=True
    )
    #: A peer hub the message goes to, as a signed federation envelope
    #: (:mod:`exchange.federation_notices`).
    peer_hub: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: Event name, e.g. ``record.referred``; the SET event URI ends with it.
    kind: Mapped[str] = mapped_column(String(50))
    #: Identifiers only (record, version, child, share, purpose): never case content.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Set while a worker holds the message; a claim whose lease ran out may be taken again.
    lease_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def to_json(self) -> dict[str, Any]:
        def moment(value: datetime | None) -> str | None:
            return as_utc(value).isoformat() if value else None

        return {
            "id": self.id,
            "agency_id": self.agency_id,
            "peer_hub": self.peer_hub,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": moment(self.next_attempt_at),
            "last_error": self.last_error,
            "lease_until": moment(self.lease_until),
            "created_at": moment(self.created_at),
            "delivered_at": moment(self.delivered_at),
            "payload": self.payload,
        }


def enqueue(
    session: Session,
    agency_id: str | None,
    kind: str,
    payload: dict[str, Any],
    *,
    held: bool = False,
) -> OutboxMessage:
    """Add a notification for ``agency_id`` to the caller's transaction (not committed here);
    ``held``: kept for the agency to read (``GET /v1/notifications``), never sent. ``None``:
    a message to a peer hub, which the caller names (``peer_hub``)."""
    message = OutboxMessage(
        id=new_message_id(),
        agency_id=agency_id,
        kind=kind,
        payload=payload,
        status="held" if held else "pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(message)
    return message


# --- claiming ------------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    return (
        OutboxMessage.status.in_(DUE_STATUSES)
        & (OutboxMessage.next_attempt_at <= now)
        & or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now)
    )


def claim_batch(
    session: Session, limit: int, lease_seconds: float = DEFAULT_LEASE_SECONDS
) -> list[OutboxMessage]:
    """Lease up to ``limit`` due messages to the caller and commit the claim.

    Each claim counts as an attempt, so a message that makes workers crash still ends up
    ``dead`` instead of looping forever.
    """
    now = utcnow()
    token = secrets.token_hex(16)
    candidates = (
        select(OutboxMessage.id)
        .where(_due(now))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Rows another worker is claiming are skipped, not waited for; the ids are locked
        # until this transaction commits the lease.
        ids: Any = list(session.scalars(candidates.with_for_update(skip_locked=True)))
        if not ids:
            session.commit()
            return []
    else:
        # SQLite: one UPDATE whose subquery picks the rows. Starting the transaction with the
        # write (no SELECT first) takes the database's single write lock at once, waiting for
        # it, so no other worker can claim the same rows in between.
        ids = candidates.scalar_subquery()
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), _due(now))
        .values(
            lease_token=token,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    claimed = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.lease_token == token)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .execution_options(populate_existing=True)
    ).all()
    session.commit()
    return list(claimed)


def backoff_seconds(
    attempts: int,
    base: float = DEFAULT_BACKOFF_SECONDS,
    ceiling: float = DEFAULT_BACKOFF_MAX_SECONDS,
    rng: Callable[[], float] = random.random,
) -> float:
    """Delay before attempt ``attempts + 1``: ``base·2^(attempts-1)`` capped at ``ceiling``,
    scaled by a random factor in [0.5, 1) so receivers that come back are not stampeded."""
    exponential = min(ceiling, base * 2 ** max(0, attempts - 1))
    return exponential * (0.5 + rng() / 2)


def _renew_lease(session: Session, message: OutboxMessage, token: str, seconds: float) -> bool:
    """Hold ``message`` for ``seconds`` more, from now, while no other worker took it: the claim
    covers a whole batch, and each delivery renews the lease for itself, so a lease need only
    outlast one delivery and a crashed worker's messages come back after one lease."""
    until = utcnow() + timedelta(seconds=seconds)
    renewed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == token)
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if not renewed.rowcount:  # type: ignore[attr-defined]
        return False
    message.lease_until = until
    return True


def _finish(session: Session, message: OutboxMessage, token: str, **values: Any) -> bool:
    """Write a delivery result while our lease holds; False if another worker took over."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == token)
        .values(lease_token=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- delivering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_SECONDS
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    @classmethod
    def from_config(cls, app: Flask) -> DeliveryPolicy:
        config = app.config
        return cls(
            max_attempts=int(config.get("OUTBOX_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS),
            backoff_seconds=float(config.get("OUTBOX_BACKOFF_SECONDS") or DEFAULT_BACKOFF_SECONDS),
            backoff_max_seconds=float(
                config.get("OUTBOX_BACKOFF_MAX_SECONDS") or DEFAULT_BACKOFF_MAX_SECONDS
            ),
            lease_seconds=float(config.get("OUTBOX_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS),
        )


@dataclass
class BatchResult:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    lost_lease: int = 0
    withheld: int = 0

    @property
    def handled(self) -> int:
        return self.delivered + self.retrying + self.dead + self.lost_lease + self.withheld


def deliver_message(
    session: Session,
    message: OutboxMessage,
    transport: DeliveryTransport,
    policy: DeliveryPolicy,
    result: BatchResult,
) -> None:
    from exchange.agencies import Agency
    from exchange.disclosure import decide_delivery  # disclosure builds on records and sharing

    token = message.lease_token or ""
    if not _renew_lease(session, message, token, policy.lease_seconds):
        # Our turn came too late: another worker took it meanwhile. Leave it alone.
        result.lost_lease += 1
        return
    agency = session.get(Agency, message.agency_id) if message.agency_id else None
    # Claiming the message counted this attempt already. A message to a peer hub (a revocation
    # notice) discloses nothing to decide.
    gate = None
    if message.agency_id is not None:
        gate = decide_delivery(
            session,
            message.kind,
            message.agency_id,
            message.payload,
            attempt=max(message.attempts, 1),
        )
    stale = _stale_transfer_request(session, message)
    session.commit()  # end the read transaction: nothing is held while we talk to the network
    if stale is not None:
        # A transfer request answered or withdrawn before its notification went out: telling
        # the recipient of a pending transfer that is not would only mislead it.
        if _finish(session, message, token, status="withheld", last_error=stale):
            result.withheld += 1
        else:
            result.lost_lease += 1
        return
    if gate is not None and not gate.permitted:
        # Consent changed since the message was queued (a revocation, an objection): the
        # recipient is not told. The decision is in the audit log.
        if _finish(
            session,
            message,
            token,
            status="withheld",
            last_error=f"withheld by consent decision {gate.decision_id} ({gate.decision.basis})",
        ):
            result.withheld += 1
        else:
            result.lost_lease += 1
        return
    try:
        if message.peer_hub is not None:
            from exchange.federation_notices import send_revocation

            send_revocation(session, message)  # its audit entry commits with the result
        elif agency is None or not agency.active:
            raise PermanentDeliveryError(f"agency {message.agency_id} is unknown or disabled")
        else:
            transport.deliver(agency, message)
    except TransientDeliveryError as error:
        if message.attempts >= policy.max_attempts:
            outcome, values = "dead", {"status": "dead"}
        else:
            delay = backoff_seconds(
                message.attempts, policy.backoff_seconds, policy.backoff_max_seconds
            )
            if error.retry_after is not None:
                delay = max(delay, min(error.retry_after, policy.backoff_max_seconds))
            outcome = "failed"
            values = {"status": "failed", "next_attempt_at": utcnow() + timedelta(seconds=delay)}
        values["last_error"] = str(error)[:1000]
    except PermanentDeliveryError as error:
        outcome, values = "dead", {"status": "dead", "last_error": str(error)[:1000]}
    except Exception as error:
        log.exception("transport error", extra={"message_id": message.id})
        delay = backoff_seconds(
            message.attempts, policy.backoff_seconds, policy.backoff_max_seconds
        )
        outcome = "dead" if message.attempts >= policy.max_attempts else "failed"
        values = {
            "status": outcome,
            "next_attempt_at": utcnow() + timedelta(seconds=delay),
            "last_error": f"{type(error).__name__}: {error}"[:1000],
        }
    else:
        outcome, values = "delivered", {"status": "delivered", "delivered_at": utcnow()}
        values["last_error"] = None
    if not _finish(session, message, token, **values):
        result.lost_lease += 1
        log.warning("lease lost before the result was written", extra={"message_id": message.id})
        return
    status = values["status"]
    if status == "delivered":
        result.delivered += 1
    elif status == "dead":
        result.dead += 1
    else:
        result.retrying += 1
    log.info(
        "outbox delivery",
        extra={
            "message_id": message.id,
            "agency_id": message.agency_id,
            "peer_hub": message.peer_hub,
            "outcome": outcome,
            "status": status,
            "attempts": message.attempts,
        },
    )


def deliver_batch(
    session: Session,
    transport: DeliveryTransport,
    policy: DeliveryPolicy,
    batch: int = 50,
    stop_event: threading.Event | None = None,
) -> BatchResult:
    """Claim up to ``batch`` due messages and try each once.

    When ``stop_event`` is set midway, the messages not yet tried are released at once (not
    left leased until their lease runs out), so another worker can deliver them now.
    """
    result = BatchResult()
    claimed = claim_batch(session, batch, policy.lease_seconds)
    for position, message in enumerate(claimed):
        if stop_event is not None and stop_event.is_set():
            release(session, claimed[position:])
            break
        deliver_message(session, message, transport, policy, result)
    return result


def release(session: Session, messages: list[OutboxMessage]) -> None:
    """Give back claimed messages untried (the claim's attempt does not count)."""
    for message in messages:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == message.lease_token)
            .values(lease_token=None, lease_until=None, attempts=OutboxMessage.attempts - 1)
            .execution_options(synchronize_session=False)
        )
    session.commit()


def worker_lease_seconds(app: Flask, configured: float) -> float:
    """The lease a worker takes: ``OUTBOX_LEASE_SECONDS``, but at least one delivery's longest
    wait (the webhook's or a peer hub's timeout) and 30 s more, or a second worker would retake
    a message still being delivered. Each delivery renews it (:func:`_renew_lease`)."""
    timeouts = (
        float(app.config.get("WEBHOOK_TIMEOUT_SECONDS") or 10),
        float(app.config.get("FEDERATION_TIMEOUT") or 10),
    )
    return max(configured, max(timeouts) + 30)


def run_worker(
    app: Flask,
    *,
    once: bool = False,
    stop_event: threading.Event | None = None,
    batch: int = 50,
    poll_seconds: float = 1.0,
    transport: DeliveryTransport | None = None,
) -> BatchResult:
    """Deliver due messages until ``stop_event`` is set (or one pass, with ``once``).

    A full batch is followed at once by the next; otherwise the worker sleeps ``poll_seconds``
    (waking early when ``stop_event`` is set). While passes keep failing (the database is
    down, …) it backs off: ``poll_seconds``, then twice as long after each failure, up to
    :data:`MAX_FAILURE_BACKOFF_SECONDS`, and back to normal after a pass that works. An
    unusable database is logged as one line per failed pass; any other error with its
    traceback. Returns the totals. Without ``transport``, each agency gets the one its
    ``webhook_url`` chooses (webhook or file drop).
    """
    stop_event = stop_event or threading.Event()
    transport = transport or AgencyTransports.for_hub(app)
    policy = DeliveryPolicy.from_config(app)
    policy = DeliveryPolicy(
        policy.max_attempts,
        policy.backoff_seconds,
        policy.backoff_max_seconds,
        worker_lease_seconds(app, policy.lease_seconds),
    )
    totals = BatchResult()
    sessions = database(app).sessions
    ceiling = max(poll_seconds, MAX_FAILURE_BACKOFF_SECONDS)
    failures = 0
    while not stop_event.is_set():
        pause = poll_seconds
        # Deliveries are decided again by the consent engine, which reads the hub's
        # configuration and data keys: each pass runs in a fresh application context.
        with app.app_context(), sessions() as session:
            try:
                result = deliver_batch(session, transport, policy, batch, stop_event)
            except Exception as error:
                session.rollback()
                result = BatchResult()
                failures += 1
                pause = min(ceiling, poll_seconds * 2 ** min(failures - 1, 30))
                reason = unavailable_reason(error)
                if reason is None:
                    log.exception("outbox pass failed; next attempt in %.1f s", pause)
                else:
                    log.warning("outbox pass failed: %s; next attempt in %.1f s", reason[1], pause)
                if once:
                    raise
            else:
                failures = 0
        for field in ("delivered", "retrying", "dead", "withheld", "lost_lease"):
            setattr(totals, field, getattr(totals, field) + getattr(result, field))
        if once:
            break
        if failures or result.handled < batch:
            stop_event.wait(pause)
    return totals


# --- operators -----------------------------------------------------------------------------


def notifications_for(
    session: Session, agency_id: str, *, after: str | None = None, limit: int = 100
) -> list[OutboxMessage]:
    """Every notification addressed to ``agency_id`` (sent or not), oldest first, after the
    message ``after``: what an agency reads when it has no webhook, or missed one."""
    query = select(OutboxMessage).where(OutboxMessage.agency_id == agency_id)
    if after is not None:
        previous = session.get(OutboxMessage, after)
        if previous is None or previous.agency_id != agency_id:
            raise LookupError(after)
        query = query.where(
            or_(
                OutboxMessage.created_at > previous.created_at,
                (OutboxMessage.created_at == previous.created_at) & (OutboxMessage.id > after),
            )
        )
    return list(
        session.scalars(query.order_by(OutboxMessage.created_at, OutboxMessage.id).limit(limit))
    )


def _stale_transfer_request(session: Session, message: OutboxMessage) -> str | None:
    """Why a queued transfer notice should not go out, or ``None``: a ``transfer.requested``
    whose transfer is no longer pending; a ``transfer.withdrawn`` to a recipient that was never
    told of the request (its notice was withheld, or has not gone out), which would learn of a
    transfer only to hear it is off."""
    if message.kind not in ("transfer.requested", "transfer.withdrawn"):
        return None
    from exchange.sharing import RecordShare

    share_id = (message.payload or {}).get("share_id")
    if message.kind == "transfer.withdrawn":
        told = session.scalars(
            select(OutboxMessage.payload).where(
                OutboxMessage.agency_id == message.agency_id,
                OutboxMessage.kind == "transfer.requested",
                OutboxMessage.status == "delivered",
            )
        )
        if any((payload or {}).get("share_id") == share_id for payload in told):
            return None
        return f"withheld: the request of transfer {share_id} never reached the recipient"
    share = session.get(RecordShare, share_id) if share_id else None
    if share is None or share.status == "pending":
        return None
    return f"withheld: transfer {share.id} is {share.status}, no longer pending"


def unknown_message_ids(session: Session, message_ids: list[str]) -> list[str]:
    """The ids in ``message_ids`` that name no outbox message, in the order given."""
    known = set(session.scalars(select(OutboxMessage.id).where(OutboxMessage.id.in_(message_ids))))
    return [message_id for message_id in dict.fromkeys(message_ids) if message_id not in known]


def requeue(session: Session, message_ids: list[str] | None = None) -> int:
    """Make dead (or failed) messages due again with a fresh attempt count; None = all dead."""
    statement = update(OutboxMessage).values(
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        lease_token=None,
        lease_until=None,
    )
    if message_ids is None:
        statement = statement.where(OutboxMessage.status == "dead")
    else:
        statement = statement.where(
            OutboxMessage.id.in_(message_ids), OutboxMessage.status.in_(("dead", "failed"))
        )
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
