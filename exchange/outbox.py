"""Transactional outbox: notifications to agencies, written with the action, delivered later.

An action that must be notified (a referral, a transfer, its acceptance) calls :func:`enqueue`
in its own transaction, so there is no action without its notification and no notification of
an action that was rolled back. ``puente worker`` then delivers what is due
(:mod:`exchange.outbox_delivery`); what an agency reads with ``GET /v1/notifications``, and why
a message is withheld, is :mod:`exchange.outbox_reading`. This module keeps the message, its
queueing and claiming, what its stored state says (:func:`may_have_reached`,
:func:`may_have_taken`, :func:`dead_but_readable`), and what an operator does with it.

Message life: ``pending`` → ``delivered``; a transient failure makes it ``failed`` with a
``next_attempt_at`` after an exponential backoff with jitter; after ``OUTBOX_MAX_ATTEMPTS``
attempts (by default about three days of them), or on a permanent failure, it is ``dead`` —
kept, visible with ``puente outbox list`` and requeued with ``puente outbox retry``, never
deleted. A message that died only because its agency could not be reached — its attempts ran
out on failures that may pass, its workers never recorded an outcome, or the agency was
disabled — is still the agency's to read with ``GET /v1/notifications``
(:func:`dead_but_readable`), decided again when read as a held one is: nothing is lost while a
receiver is down. One its receiver refused (a redirect, a 4xx) is not.

Claiming: a worker takes a batch of due messages by stamping them with a lease (a random token
and ``lease_until``) in one short transaction — on PostgreSQL the candidate rows are selected
``FOR UPDATE SKIP LOCKED`` so concurrent workers take disjoint batches without waiting; on SQLite,
with its single writer, one ``UPDATE … WHERE id IN (SELECT …)`` claims atomically. Delivery
happens outside any transaction; the result is written only while the lease is still held.
A worker that crashes leaves leases that run out, and its messages are taken again: delivery
is at least once, and the SET ``jti`` (the message id) lets receivers drop a repeat.

Counting: ``attempts`` counts the times a message's turn came, each committed before it is tried
(:func:`start_attempt`), not the claims: a message whose batch's lease ran out before its turn,
and that another worker then took, is counted once, by the worker that tries it.

Reaching: ``maybe_reached`` says whether the agency may have got the message
(:func:`may_have_reached`, what a share's recipient was told of: :mod:`exchange.sharing`). It is
set before the message is sent, committed, so a worker that dies mid-send leaves it set, and
kept through every later outcome but one that certainly sent nothing
(:func:`exchange.outbox_delivery.sent_nothing`: the connection refused, the name not found,
nothing to send to); a held message sets it when it is handed out. It is never cleared once an
attempt may have reached the agency, not even by ``puente outbox retry``. Whether the agency's
system may also have *kept* it — what a transfer's withdrawal must follow — is narrower
(:func:`may_have_taken`): a receiver that answered every attempt that reached it with an error
status did not (``refused_by_receiver``). ``delivered_at`` is when the agency got the message:
delivered, or first handed out (read, or shown in its shares).

The outcome's facts are columns, written with it, never read back from ``last_error``: that is
the reason as people read it (``puente outbox list``, the API), cut to a length and worded to be
understood, and its wording may change.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from exchange.auth import as_utc, utcnow
from exchange.db import Base

#: ``held``: for an agency with no webhook or file drop; never sent, read with
#: ``GET /v1/notifications``.
STATUSES = ("pending", "delivered", "failed", "dead", "withheld", "held")
#: Statuses a worker may claim (when due and not leased).
DUE_STATUSES = ("pending", "failed")

#: Why a message to an agency that is disabled (or gone) is dead at once. Its agency may still
#: read it (``readable_when_dead``).
DISABLED_AGENCY = "agency {} is unknown or disabled"

DEFAULT_LEASE_SECONDS = 60.0


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


class OutboxMessage(Base):
    """One notification waiting for (or done with) delivery to an agency."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),)
    # ``seq`` is set by the database after the INSERT (a trigger on SQLite): read it back then,
    # not from the INSERT's RETURNING, which SQLite answers before its triggers run.
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": False}

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_message_id)
    #: The order messages were committed in, the cursor of ``GET /v1/notifications``: ids are
    #: random and ``created_at`` may tie. The database assigns it (migration 0020): on
    #: PostgreSQL a sequence, taken under :func:`enqueue`'s lock; on SQLite a trigger, under its
    #: one write lock. Either way a message never gets a lower number than one already visible.
    seq: Mapped[int | None] = mapped_column(
        BigInteger, server_default=FetchedValue(), index=True, unique=True, nullable=True
    )
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
    #: Whether the agency may have got it (:func:`may_have_reached`): an attempt was about to
    #: send it, and did not certainly send nothing, or it was handed out (migration 0025).
    maybe_reached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Dead only because its agency could not be reached — its attempts ran out on failures
    #: that may pass, its workers never recorded an outcome, or the agency was disabled — so
    #: still the agency's to read (:func:`dead_but_readable`; migration 0027). Written with the
    #: outcome (:mod:`exchange.outbox_delivery`), never read from ``last_error``.
    readable_when_dead: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The receiver answered the attempt ``last_error`` tells of with an error status, and no
    #: earlier attempt may have left the message with it; or the message was withheld after
    #: such answers (:func:`refused_by_receiver`, :func:`may_have_taken`; migration 0027). It
    #: qualifies ``last_error``: a message whose error is cleared was refused by no one.
    refused_by_receiver: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Set while a worker holds the message; a claim whose lease ran out may be taken again.
    lease_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set here, to the microsecond (SQLite's CURRENT_TIMESTAMP keeps whole seconds).
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
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


#: The PostgreSQL advisory lock that orders the numbering of outbox messages (any constant
#: the hub uses for nothing else).
_SEQ_LOCK = 0x70756E74


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
    if session.get_bind().dialect.name == "postgresql":
        # Messages are numbered (``seq``) when inserted but seen when committed: without this
        # lock, held until the caller's commit, a transaction could commit number 7 after a
        # reader had paged past 8, and the reader would never see 7. SQLite's single writer
        # gives the same order by itself.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEQ_LOCK})
    message = OutboxMessage(
        id=new_message_id(),
        agency_id=agency_id,
        kind=kind,
        payload=payload,
        status="held" if held else "pending",
        attempts=0,
        maybe_reached=False,
        readable_when_dead=False,
        refused_by_receiver=False,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
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

    A claim is not an attempt: each message's attempt is counted when its turn comes
    (:func:`start_attempt`), so a message claimed in a batch whose lease runs out before its
    turn, and taken by another worker, is not counted twice.
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


# --- leases: an attempt counted, its outcome written, a claim given back ----------------


def start_attempt(session: Session, message: OutboxMessage, token: str, seconds: float) -> bool:
    """Count an attempt of ``message`` and hold it for ``seconds`` more, from now, while no other
    worker took it (False if one did: nothing is counted). The claim covers a whole batch, and
    each delivery renews the lease for itself, so a lease need only outlast one delivery and a
    crashed worker's messages come back after one lease. The count is committed before the
    message is tried, so a message that makes workers crash still runs out of attempts."""
    until = utcnow() + timedelta(seconds=seconds)
    attempts = session.scalar(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == token)
        .values(lease_until=until, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.attempts)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if attempts is None:
        return False
    message.lease_until, message.attempts = until, attempts
    return True


def write_outcome(
    session: Session,
    message: OutboxMessage,
    token: str,
    *,
    also: Callable[[Session], None] | None = None,
    **values: Any,
) -> bool:
    """Write a delivery result while our lease holds; False if another worker took over.
    ``also``: what follows from the result, written in its transaction (only when it is)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == token)
        .values(lease_token=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    written = bool(result.rowcount)  # type: ignore[attr-defined]
    if written and also is not None:
        also(session)
    session.commit()
    if not written:
        return False
    # In a transaction of its own, after the result is visible: a withdrawal given back to
    # wait for this request either reads it finished or is woken here
    # (exchange.outbox_delivery._wait_for_request).
    _wake_withdrawals(session, message)
    return True


def release(session: Session, messages: list[OutboxMessage], until: datetime | None = None) -> None:
    """Give back claimed messages whose turn has not come (no attempt was counted); ``until``:
    not due again before then."""
    later = {} if until is None else {"next_attempt_at": until}
    for message in messages:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == message.lease_token)
            .values(lease_token=None, lease_until=None, **later)
            .execution_options(synchronize_session=False)
        )
    session.commit()


def _wake_withdrawals(session: Session, request: OutboxMessage) -> None:
    """``request`` is no longer being delivered (its outcome is written): a withdrawal of its
    transfer that was given back to wait for it
    (:func:`exchange.outbox_delivery._wait_for_request`) is due now, not when the request's
    lease would have run out. Only a wait that lease explains is cut short: a withdrawal
    waiting out its own backoff keeps it."""
    if request.kind != "transfer.requested" or request.lease_until is None:
        return
    share_id = (request.payload or {}).get("share_id")
    now = utcnow()
    waiting = [
        withdrawal.id
        for withdrawal in session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.agency_id == request.agency_id,
                OutboxMessage.kind == "transfer.withdrawn",
                OutboxMessage.status.in_(DUE_STATUSES),
                OutboxMessage.next_attempt_at > now,
                OutboxMessage.next_attempt_at <= request.lease_until,
            )
        )
        if (withdrawal.payload or {}).get("share_id") == share_id
    ]
    if waiting:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(waiting), OutboxMessage.status.in_(DUE_STATUSES))
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()


# --- what a stored message says ------------------------------------------------------------


def dead_but_readable(message: OutboxMessage) -> bool:
    """Whether ``message`` is dead only because its agency could not be reached: its attempts
    ran out on failures that may pass (:data:`exchange.outbox_delivery.GAVE_UP`: the receiver
    down, overloaded, unreachable), its workers never recorded an outcome
    (:data:`exchange.outbox_delivery.NO_OUTCOME`), or the agency was disabled when its turn
    came (``readable_when_dead``). The agency may still read it, and it is decided again when
    read, as a held message is (:func:`exchange.outbox_reading.hand_out`). Not one its receiver
    or address refused (a redirect, a 4xx, no usable webhook). :func:`readable_dead` is the
    same rule in SQL."""
    return message.status == "dead" and bool(message.readable_when_dead)


def readable_dead() -> ColumnElement[bool]:
    """SQL, on ``outbox_message``: :func:`dead_but_readable`."""
    return (OutboxMessage.status == "dead") & OutboxMessage.readable_when_dead.is_(True)


def refused_by_receiver(message: Any) -> bool:
    """Whether the receiver answered ``message``'s last attempt (a stored message's
    ``refused_by_receiver`` and ``last_error``) with an error status (a redirect, 4xx, 408,
    429, 5xx; also once its attempts ran out on such answers), and no earlier attempt may have
    left it there (:data:`exchange.outbox_delivery.EARLIER_ATTEMPT`); or whether the message
    was withheld after such answers (:data:`exchange.outbox_reading.NOT_TAKEN`). A refusal is
    the one its ``last_error`` tells of: a message whose error was cleared since (an attempt
    under way, ``exchange.agencies`` keeping it for its agency to read) was refused by no
    one."""
    return bool(message.refused_by_receiver) and bool(message.last_error)


def may_have_taken(request: Any) -> bool:
    """Whether the agency's system may have kept ``request`` (a stored message's ``status``,
    ``maybe_reached``, ``refused_by_receiver``, ``last_error`` and ``delivered_at``) — what
    decides whether a transfer's withdrawal is sent
    (:func:`exchange.outbox_reading.withholding_reason`). Narrower than
    :func:`may_have_reached`, which decides what the agency may know (disclosure): delivered;
    handed out (read, or shown in its shares); or tried by an attempt that did not certainly
    send nothing, unless the receiver answered every such attempt with an error status
    (:func:`refused_by_receiver`). A receiver answers 2xx once it has stored a notification,
    and 2xx to a repeat of one it has (docs/agencies.md §4), so one whose answers were all
    errors did not keep it; a timeout, a connection cut after sending, or a worker that died
    mid-send (it leaves no error) may have left it there."""
    if request.status == "delivered" or request.delivered_at is not None:
        return True
    return bool(request.maybe_reached) and not refused_by_receiver(request)


def may_have_reached(request: Any) -> bool:
    """Whether the agency may have got ``request`` (a stored message's ``status`` and
    ``maybe_reached``): delivered; handed out (by ``GET /v1/notifications``, or a route that
    shows its share); or tried by an attempt that did not certainly send nothing — a timeout or
    an error answer may come after the receiver took it, a worker that died mid-send may have
    sent it. Not an attempt that refused it (withheld), nor one that certainly sent nothing
    (:func:`exchange.outbox_delivery.sent_nothing`: connection refused, name not found, no
    address, agency disabled). (A claim is no attempt: a request claimed with this withdrawal,
    its turn still to come, counts as untried.) ``exchange.child_search.told_to_recipient`` is
    the same rule in SQL."""
    return request.status == "delivered" or bool(request.maybe_reached)


# --- operators -----------------------------------------------------------------------------


def dead_while_disabled(session: Session, agency_id: str) -> int:
    """How many of ``agency_id``'s messages died because it was disabled when their turn came
    (``puente outbox retry --all-dead --agency`` sends them once it is enabled again)."""
    return dead_because(
        session, OutboxMessage.agency_id == agency_id, DISABLED_AGENCY.format(agency_id)
    )


def dead_because(session: Session, whose: Any, reason: str) -> int:
    """How many messages matching ``whose`` (a column condition) died with ``reason``."""
    return int(
        session.scalar(
            select(func.count()).where(
                whose, OutboxMessage.status == "dead", OutboxMessage.last_error == reason
            )
        )
        or 0
    )


def unknown_message_ids(session: Session, message_ids: list[str]) -> list[str]:
    """The ids in ``message_ids`` that name no outbox message, in the order given."""
    known = set(session.scalars(select(OutboxMessage.id).where(OutboxMessage.id.in_(message_ids))))
    return [message_id for message_id in dict.fromkeys(message_ids) if message_id not in known]


def requeue(
    session: Session, message_ids: list[str] | None = None, *, agency_id: str | None = None
) -> int:
    """Make dead (or failed) messages due again with a fresh attempt count; None = all dead
    (of ``agency_id`` only, when given). Whether an earlier attempt may have reached the
    agency (``maybe_reached``) is kept: it did, whatever comes next; so is whether the receiver
    refused the last one (``refused_by_receiver``, with the ``last_error`` that says so), until
    the next attempt. A requeued message is no longer dead: what made a dead one readable goes
    (``readable_when_dead``), decided again by how it ends."""
    statement = update(OutboxMessage).values(
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        lease_token=None,
        lease_until=None,
        readable_when_dead=False,
    )
    if message_ids is None:
        statement = statement.where(OutboxMessage.status == "dead")
        if agency_id is not None:
            statement = statement.where(OutboxMessage.agency_id == agency_id)
    else:
        statement = statement.where(
            OutboxMessage.id.in_(message_ids), OutboxMessage.status.in_(("dead", "failed"))
        )
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
