"""Transactional outbox: notifications to agencies, written with the action, delivered later.

An action that must be notified (a referral, a transfer, its acceptance) calls :func:`enqueue`
in its own transaction, so there is no action without its notification and no notification of
an action that was rolled back. ``puente worker`` then delivers what is due.

Message life: ``pending`` → ``delivered``; a transient failure makes it ``failed`` with a
``next_attempt_at`` after an exponential backoff with jitter; after ``OUTBOX_MAX_ATTEMPTS``
attempts (by default about three days of them: :data:`DEFAULT_MAX_ATTEMPTS`), or on a
permanent failure, it is ``dead`` — kept, visible with ``puente outbox list`` and requeued with
``puente outbox retry``, never deleted. A message that died only because its agency could not
be reached — its attempts ran out on failures that may pass (:data:`GAVE_UP`), its workers
never recorded an outcome, or the agency was disabled — is still the agency's to read with
``GET /v1/notifications`` (:func:`dead_but_readable`), decided again when read as a held one
is: nothing is lost while a receiver is down. One its receiver refused (a redirect, a 4xx) is
not.

Claiming: a worker takes a batch of due messages by stamping them with a lease (a random token
and ``lease_until``) in one short transaction — on PostgreSQL the candidate rows are selected
``FOR UPDATE SKIP LOCKED`` so concurrent workers take disjoint batches without waiting; on SQLite,
with its single writer, one ``UPDATE … WHERE id IN (SELECT …)`` claims atomically. Delivery
happens outside any transaction; the result is written only while the lease is still held.
A worker that crashes leaves leases that run out, and its messages are taken again: delivery
is at least once, and the SET ``jti`` (the message id) lets receivers drop a repeat.

Counting: ``attempts`` counts the times a message's turn came, each committed before it is tried
(:func:`_start_attempt`), not the claims: a message whose batch's lease ran out before its turn,
and that another worker then took, is counted once, by the worker that tries it.

Reaching: ``maybe_reached`` says whether the agency may have got the message
(:func:`may_have_reached`, what a share's recipient was told of: :mod:`exchange.sharing`). It is
set before the message is sent, committed, so a worker that dies mid-send leaves it set, and
kept through every later outcome but one that certainly sent nothing (:func:`sent_nothing`: the
connection refused, the name not found, nothing to send to); a held message sets it when it is
handed out. It is never cleared once an attempt may have reached the agency, not even by
``puente outbox retry``. Whether the agency's system may also have *kept* it — what a
transfer's withdrawal must follow — is narrower (:func:`may_have_taken`): a receiver that
answered every attempt that reached it with an error status did not. ``delivered_at`` is when
the agency got the message: delivered, or first handed out (read, or shown in its shares).
"""

from __future__ import annotations

import logging
import os
import random
import re
import secrets
import socket
import threading
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from flask import Flask
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
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from exchange.auth import as_utc, utcnow
from exchange.db import Base, database, unavailable_reason
from exchange.transports import (
    AgencyTransports,
    DeliveryTransport,
    PermanentDeliveryError,
    TransientDeliveryError,
    uses_file_drop,
)

if TYPE_CHECKING:
    from exchange.agencies import Agency

log = logging.getLogger("puente.worker")

#: ``held``: for an agency with no webhook or file drop; never sent, read with
#: ``GET /v1/notifications``.
STATUSES = ("pending", "delivered", "failed", "dead", "withheld", "held")
#: Statuses a worker may claim (when due and not leased).
DUE_STATUSES = ("pending", "failed")

#: Why a message to an agency that is disabled (or gone) is dead at once.
DISABLED_AGENCY = "agency {} is unknown or disabled"
#: Why a message died when its attempts ran out on failures that may pass (no connection, a
#: timeout, 408, 429, 5xx, a full disk): the last failure follows. Its agency may still read it.
GAVE_UP = (
    "gave up after {n} attempts (its agency may still read it: GET /v1/notifications): {error}"
)
#: The same, for a notice to a peer hub (read by no agency of this hub).
GAVE_UP_ON_PEER = "gave up after {n} attempts: {error}"
#: Why a message died whose every attempt ended with its worker (a crash while sending).
NO_OUTCOME = "no outcome recorded after {n} attempts"
#: Added to a receiver's refusal (:func:`refused_by_receiver`) when an earlier attempt may have
#: left the message with the agency's system (no answer, a connection cut after sending).
EARLIER_ATTEMPT = "; an earlier attempt may have reached the agency"
#: Added to the reason a transfer request is withheld for when its receiver answered every
#: attempt that reached it with an error status: it never took the request
#: (:func:`may_have_taken`), so the withdrawal is not sent either.
NOT_TAKEN = "; the receiver did not take it (its last answer: {error})"

#: Attempts before a message is dead: with the default backoff (5 s doubling to the 1 h
#: ceiling, jitter 0.5–1), about three days of them — two to four — so a receiver down over a
#: weekend gets what waits for it when it comes back.
DEFAULT_MAX_ATTEMPTS = 110
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
    (:func:`_start_attempt`), so a message claimed in a batch whose lease runs out before its
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


def _start_attempt(session: Session, message: OutboxMessage, token: str, seconds: float) -> bool:
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


def _finish(
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
    # wait for this request either reads it finished or is woken here (:func:`_wait_for_request`).
    _wake_withdrawals(session, message)
    return True


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
    #: Given back untried, for later: the agency's receiver did not answer an earlier message
    #: of the batch, or a withdrawal waits for its transfer request.
    deferred: int = 0

    @property
    def handled(self) -> int:
        return self.delivered + self.retrying + self.dead + self.lost_lease + self.withheld


def deliver_message(
    session: Session,
    message: OutboxMessage,
    transport: DeliveryTransport,
    policy: DeliveryPolicy,
    result: BatchResult,
) -> datetime | None:
    """Try ``message`` once (it is claimed) and write the outcome. Returns, when the agency's
    receiver could not be reached (a timeout, no connection), when the message is due again:
    the batch holds the agency's other messages until then."""
    from exchange.agencies import Agency

    token = message.lease_token or ""
    if message.attempts >= policy.max_attempts:
        # Its attempts are used up and none wrote an outcome: each ended with its worker (a
        # crash while sending, a stop). It is not tried again, but kept, to be requeued.
        error = NO_OUTCOME.format(n=message.attempts)
        if _finish(session, message, token, status="dead", last_error=error):
            result.dead += 1
            _log_outcome(message, "dead", {"status": "dead", "last_error": error})
        else:
            result.lost_lease += 1
        return None
    if not _start_attempt(session, message, token, policy.lease_seconds):
        # Our turn came too late: another worker took it meanwhile. Leave it alone.
        result.lost_lease += 1
        return None
    agency = session.get(Agency, message.agency_id) if message.agency_id else None
    # A message to a peer hub (a revocation notice) discloses nothing to decide.
    reason = withholding_reason(session, message)
    reached_before = bool(message.maybe_reached)
    taken_before = may_have_taken(message)
    if reason is None:
        # From here on the agency may get it, whatever becomes of this worker: committed before
        # anything is sent, and given back only by an outcome that certainly sent nothing. The
        # error of the attempt before goes: a worker that dies mid-send leaves none, and no
        # refusal then stands for this attempt (:func:`may_have_taken`).
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == token)
            .values(maybe_reached=True, last_error=None)
            .execution_options(synchronize_session=False)
        )
    session.commit()  # end the read transaction: nothing is held while we talk to the network
    if isinstance(reason, NotYet):
        # The transfer request this withdrawal follows is being delivered: try again after.
        _wait_for_request(session, message, token, reason)
        result.deferred += 1
        return None
    if reason is not None:
        # Stale transfer news (telling the recipient of a pending transfer that is not would
        # only mislead it), or consent that no longer permits it: the recipient is not told.
        withheld = {"status": "withheld", "last_error": _withheld_because(message, reason)}
        if _finish(
            session,
            message,
            token,
            also=lambda current: _end_untold_share(current, message),
            **withheld,
        ):
            result.withheld += 1
            _log_outcome(message, "withheld", withheld)
        else:
            result.lost_lease += 1
        return None
    unreachable: datetime | None = None
    failure: BaseException | None = None
    values: dict[str, Any]
    try:
        if message.peer_hub is not None:
            from exchange.federation_notices import send_revocation

            send_revocation(session, message)  # its audit entry commits with the result
        elif agency is None or not agency.active:
            raise PermanentDeliveryError(DISABLED_AGENCY.format(message.agency_id))
        else:
            transport.deliver(agency, message)
    except TransientDeliveryError as error:
        failure = error
        delay = backoff_seconds(
            message.attempts, policy.backoff_seconds, policy.backoff_max_seconds
        )
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, policy.backoff_max_seconds))
        retry_at = utcnow() + timedelta(seconds=delay)
        if error.unreachable:
            unreachable = retry_at
        outcome, values = _failed_or_given_up(message, policy, str(error)[:1000], retry_at=retry_at)
    except PermanentDeliveryError as error:
        failure = error
        outcome, values = "dead", {"status": "dead", "last_error": str(error)[:1000]}
    except Exception as error:
        failure = error
        log.exception("transport error", extra={"message_id": message.id})
        delay = backoff_seconds(
            message.attempts, policy.backoff_seconds, policy.backoff_max_seconds
        )
        outcome, values = _failed_or_given_up(
            message,
            policy,
            f"{type(error).__name__}: {error}"[:1000],
            retry_at=utcnow() + timedelta(seconds=delay),
        )
    else:
        outcome, values = "delivered", {"status": "delivered", "delivered_at": utcnow()}
        values["last_error"] = None
    if failure is not None and sent_nothing(failure, message, agency):
        # This attempt told the agency nothing: it counts for what it was before.
        values["maybe_reached"] = reached_before
    if taken_before and refused_by_receiver(values.get("last_error")):
        # The receiver refused this attempt, but may have kept an earlier one: said so, for a
        # later withdrawal of its transfer (:func:`may_have_taken`).
        values["last_error"] += EARLIER_ATTEMPT
    if not _finish(session, message, token, **values):
        result.lost_lease += 1
        log.warning("lease lost before the result was written", extra={"message_id": message.id})
        return unreachable
    status = values["status"]
    if status == "delivered":
        result.delivered += 1
    elif status == "dead":
        result.dead += 1
    else:
        result.retrying += 1
    _log_outcome(message, outcome, values)
    return unreachable


def _failed_or_given_up(
    message: OutboxMessage, policy: DeliveryPolicy, error: str, *, retry_at: datetime
) -> tuple[str, dict[str, Any]]:
    """The outcome of an attempt that failed in a way that may pass: ``failed``, due again at
    ``retry_at``, or, its attempts used up, ``dead`` saying so (:data:`GAVE_UP`: its agency
    may still read it)."""
    if message.attempts >= policy.max_attempts:
        given_up = GAVE_UP if message.peer_hub is None else GAVE_UP_ON_PEER
        return "dead", {
            "status": "dead",
            "last_error": given_up.format(n=message.attempts, error=error),
        }
    return "failed", {"status": "failed", "next_attempt_at": retry_at, "last_error": error}


def _log_outcome(message: OutboxMessage, outcome: str, values: dict[str, Any]) -> None:
    """One line per attempt: why it failed (``error``) or was withheld (``reason``), and when
    it is tried again; a message given up on is a warning."""
    extra: dict[str, Any] = {
        "message_id": message.id,
        "agency_id": message.agency_id,
        "peer_hub": message.peer_hub,
        "kind": message.kind,
        "outcome": outcome,
        "status": values["status"],
        "attempts": message.attempts,
    }
    if values["status"] == "withheld":
        extra["reason"] = values.get("last_error")
    elif values["status"] != "delivered":
        extra["error"] = values.get("last_error")
    if values.get("next_attempt_at") is not None and values["status"] == "failed":
        extra["next_attempt_at"] = as_utc(values["next_attempt_at"]).isoformat()
    level = logging.WARNING if values["status"] == "dead" else logging.INFO
    log.log(level, "outbox delivery", extra=extra)


def sent_nothing(error: BaseException, message: OutboxMessage, agency: Agency | None) -> bool:
    """Whether the failed attempt that raised ``error`` certainly sent ``message`` nowhere, so
    that the agency cannot have got it (:func:`may_have_reached`). Only what is certain counts:
    a timeout, a connection cut after sending, any HTTP answer, or an error not recognised here
    may come after the receiver took the message.

    Certain: the error says so itself (a ``nothing_sent`` attribute, true or false, which a
    transport may set); nothing could be sent (the agency is unknown, disabled, or has no
    webhook or file drop — the outbox refuses or the transport has no address); the
    connection was refused, or the receiver's name not found (``ConnectionRefusedError``,
    ``socket.gaierror``, however the transport wrapped them); for the file drop, the write
    failed on a path that is no folder now — the hidden temporary file (removed when its write
    fails) or a drop folder that could not be made — before the notification was renamed into
    place (a failure syncing the folder itself comes after, and counts)."""
    said = getattr(error, "nothing_sent", None)
    if isinstance(said, bool):
        return said
    if message.peer_hub is None and (agency is None or not agency.active or not agency.webhook_url):
        return True
    causes = _causes(error)
    if any(isinstance(cause, ConnectionRefusedError | socket.gaierror) for cause in causes):
        return True
    if agency is not None and uses_file_drop(agency.webhook_url):
        return any(
            isinstance(cause, OSError)
            and isinstance(cause.filename, str | bytes)
            and not os.path.isdir(cause.filename)
            for cause in causes
        )
    return False


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from or while handling, and the ``reason`` urllib
    wraps, each once."""
    found: list[BaseException] = []
    waiting: list[BaseException] = [error]
    while waiting:
        current = waiting.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        reason = current.reason if isinstance(current, urllib.error.URLError) else None
        for cause in (current.__cause__, current.__context__, reason):
            if isinstance(cause, BaseException):
                waiting.append(cause)
    return found


def _end_untold_share(session: Session, message: OutboxMessage) -> None:
    """``message`` was just withheld: if it announced a share its recipient was never told of,
    the share ends (:func:`exchange.sharing.end_untold_share`), in the same transaction."""
    from exchange.sharing import end_untold_share  # sharing builds on the outbox

    end_untold_share(session, message)


def deliver_batch(
    session: Session,
    transport: DeliveryTransport,
    policy: DeliveryPolicy,
    batch: int = 50,
    stop_event: threading.Event | None = None,
) -> BatchResult:
    """Claim up to ``batch`` due messages and try each once.

    Once an agency's receiver does not answer (a timeout, no connection), its other messages in
    the batch are given back untried until that message's next attempt: one receiver that
    hangs costs the batch one timeout, not one per message, and the other agencies' messages
    go now. When ``stop_event`` is set midway, the messages not yet tried are released at once
    (not left leased until their lease runs out), so another worker can deliver them now.
    """
    result = BatchResult()
    claimed = claim_batch(session, batch, policy.lease_seconds)
    unreachable: dict[str, datetime] = {}
    for position, message in enumerate(claimed):
        if stop_event is not None and stop_event.is_set():
            release(session, claimed[position:])
            break
        if message.agency_id in unreachable:
            release(session, [message], until=unreachable[message.agency_id])
            result.deferred += 1
            continue
        retry_at = deliver_message(session, message, transport, policy, result)
        if retry_at is not None and message.agency_id is not None:
            unreachable[message.agency_id] = retry_at
    return result


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


def _wait_for_request(session: Session, message: OutboxMessage, token: str, wait: NotYet) -> None:
    """Give back ``message`` untried, its attempt not counted, until the transfer request it
    follows (``wait``) is no longer being delivered: when its lease runs out (its worker died),
    unless its worker writes the outcome first (:func:`_wake_withdrawals` then makes it due).
    The lease is read again in this statement: a request that was finished since it was
    checked lets the message go at once."""
    request = aliased(OutboxMessage)
    now = utcnow()
    still_leased = (
        select(request.lease_until)
        .where(
            request.id == wait.request_id,
            request.lease_token.is_not(None),
            request.lease_until > now,
        )
        .scalar_subquery()
    )
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == token)
        .values(
            lease_token=None,
            lease_until=None,
            attempts=OutboxMessage.attempts - 1,
            next_attempt_at=func.coalesce(still_leased, literal(now, DateTime(timezone=True))),
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _wake_withdrawals(session: Session, request: OutboxMessage) -> None:
    """``request`` is no longer being delivered (its outcome is written): a withdrawal of its
    transfer that was given back to wait for it (:func:`_wait_for_request`) is due now, not
    when the request's lease would have run out. Only a wait that lease explains is cut short:
    a withdrawal waiting out its own backoff keeps it."""
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
        for field in ("delivered", "retrying", "dead", "withheld", "lost_lease", "deferred"):
            setattr(totals, field, getattr(totals, field) + getattr(result, field))
        if once:
            break
        if failures or result.handled < batch:
            stop_event.wait(pause)
    return totals


# --- operators -----------------------------------------------------------------------------


#: What ``GET /v1/notifications`` hands out: what the agency was sent, and what is kept for it
#: to read — with the dead messages its receiver never refused (:func:`dead_but_readable`).
#: Never a message withheld, refused by its receiver, or still on its way.
READABLE_STATUSES = ("delivered", "held")

#: :data:`GAVE_UP` up to the last failure, and :data:`NO_OUTCOME`, as patterns.
_GAVE_UP_HEAD = (
    r"gave up after \d+ attempts \(its agency may still read it: GET /v1/notifications\): "
)
_GAVE_UP_TEXT = re.compile(_GAVE_UP_HEAD + r".*", re.DOTALL)
_NO_OUTCOME_TEXT = re.compile(r"no outcome recorded after \d+ attempts")


def dead_but_readable(message: OutboxMessage) -> bool:
    """Whether ``message`` is dead only because its agency could not be reached: its attempts
    ran out on failures that may pass (:data:`GAVE_UP`: the receiver down, overloaded,
    unreachable), its workers never recorded an outcome (:data:`NO_OUTCOME`), or the agency
    was disabled when its turn came. The agency may still read it, and it is decided again
    when read, as a held message is (:func:`hand_out`). Not one its receiver or address refused
    (a redirect, a 4xx, no usable webhook). :func:`readable_dead` is the same rule in SQL."""
    error = message.last_error or ""
    return message.status == "dead" and (
        _GAVE_UP_TEXT.fullmatch(error) is not None
        or _NO_OUTCOME_TEXT.fullmatch(error) is not None
        or error == DISABLED_AGENCY.format(message.agency_id)
    )


def readable_dead() -> ColumnElement[bool]:
    """SQL, on ``outbox_message``: :func:`dead_but_readable`."""
    error = OutboxMessage.last_error
    return (OutboxMessage.status == "dead") & or_(
        error.like("gave up after % attempts (its agency may still read it: %): %"),
        error.like("no outcome recorded after % attempts"),
        error == func.replace(DISABLED_AGENCY, "{}", OutboxMessage.agency_id),
    )


def readable() -> ColumnElement[bool]:
    """SQL, on ``outbox_message``: what ``GET /v1/notifications`` may list (decided again,
    for held and dead ones, as it is listed)."""
    return OutboxMessage.status.in_(READABLE_STATUSES) | readable_dead()


def notifications_for(
    session: Session,
    agency_id: str,
    *,
    after: str | None = None,
    limit: int = 100,
    statuses: tuple[str, ...] | None = None,
    where: ColumnElement[bool] | None = None,
) -> list[OutboxMessage]:
    """Notifications addressed to ``agency_id`` (in ``statuses``, default any, and matching
    ``where``), in the order they were committed (``seq``), after the message ``after`` (any of
    the agency's own)."""
    query = select(OutboxMessage).where(OutboxMessage.agency_id == agency_id)
    if statuses is not None:
        query = query.where(OutboxMessage.status.in_(statuses))
    if where is not None:
        query = query.where(where)
    if after is not None:
        previous = session.get(OutboxMessage, after)
        if previous is None or previous.agency_id != agency_id:
            raise LookupError(after)
        query = query.where(OutboxMessage.seq > previous.seq)
    return list(session.scalars(query.order_by(OutboxMessage.seq).limit(limit)))


def readable_notifications(
    session: Session, agency_id: str, *, after: str | None = None, limit: int = 100
) -> list[OutboxMessage]:
    """What ``agency_id`` may read now with ``GET /v1/notifications``, oldest first: the
    messages it was sent, the held ones (it has no webhook), and the dead ones its receiver
    never refused (:func:`dead_but_readable`: down longer than the attempts lasted, or the
    agency disabled meanwhile) that may still go out — each held or dead one decided again now,
    as :func:`deliver_message` decides before sending (consent revoked, a transfer no longer
    pending). One that may not is marked ``withheld`` for good, as the worker would mark it.
    Reading one counts as an attempt: that it was handed out is what a later withdrawal of its
    transfer needs to know. The decisions are audited in ``session``'s transaction; the caller
    commits."""
    listed: list[OutboxMessage] = []
    cursor = after
    while len(listed) < limit:
        page = notifications_for(session, agency_id, after=cursor, limit=limit, where=readable())
        for message in page:
            if message.status in ("held", "dead") and not hand_out(session, message):
                continue
            listed.append(message)
            if len(listed) == limit:
                break
        if len(page) < limit:
            break
        cursor = page[-1].id
    session.flush()
    return listed


def hand_out(session: Session, message: OutboxMessage) -> bool:
    """Hand a ``held`` message, or a dead one its agency may read (:func:`dead_but_readable`),
    to its agency now (it reads it, or is shown what it announces), deciding it again as the
    worker would before sending it: an attempt is counted, and a message handed out may have
    reached the agency (``maybe_reached``: what a later withdrawal of its transfer, and its
    share's recipient's view, need to know) and got to it (``delivered_at``, the first time:
    what its share's sender is shown); a message that may no longer go out is marked
    ``withheld`` for good — ending the share it announced, which its recipient was then never
    told of (:func:`exchange.sharing.end_untold_share`) — and False is returned. The decision
    is audited in ``session``'s transaction; the caller commits."""
    message.attempts += 1
    reason = withholding_reason(session, message)
    if not isinstance(reason, str):
        message.maybe_reached = True
        if message.delivered_at is None:
            message.delivered_at = utcnow()
        return True
    message.status, message.last_error = "withheld", _withheld_because(message, reason)
    session.flush()  # a withdrawal decided after it in the same transaction reads it
    _end_untold_share(session, message)
    return False


@dataclass(frozen=True)
class NotYet:
    """The message must wait: the transfer request it follows (``request_id``) is being
    delivered now, under a lease that runs out at ``until``."""

    until: datetime
    request_id: str


def withholding_reason(session: Session, message: OutboxMessage) -> str | NotYet | None:
    """Why ``message`` may not go to its agency now, or ``None``: a referral or transfer that
    consent no longer permits (decided again, and audited, as each delivery attempt is), or
    transfer news gone stale (:func:`_stale_transfer_request`)."""
    from exchange.disclosure import decide_delivery  # disclosure builds on records and sharing

    gate = None
    if message.agency_id is not None:
        gate = decide_delivery(
            session,
            message.id,
            message.kind,
            message.agency_id,
            message.payload,
            attempt=max(message.attempts, 1),
        )
    stale = _stale_transfer_request(session, message)
    if stale is not None:
        return stale
    if gate is not None and not gate.permitted:
        # Consent changed since the message was queued (a revocation, an objection): the
        # recipient is not told. The decision is in the audit log.
        return CONSENT_WITHHELD.format(decision=gate.decision_id, basis=gate.decision.basis)
    return None


#: Why a referral or transfer notice is withheld when consent no longer permits it, as an
#: administrator reads it in ``puente outbox list``: the decision (in the audit log) and its
#: basis code, and what that means.
CONSENT_WITHHELD = (
    "withheld by consent decision {decision} ({basis}): consent no longer permits telling "
    "this agency (revoked, expired or changed since the notice was queued); it is not sent"
)


def _stale_transfer_request(session: Session, message: OutboxMessage) -> str | NotYet | None:
    """Why a queued transfer notice should not go out, or ``None``: a ``transfer.requested``
    whose transfer is no longer pending; a ``transfer.withdrawn`` to a recipient whose system
    never took the request (:func:`may_have_taken`: it never got it, or answered every attempt
    that reached it with an error status), which would learn of a transfer only to hear it is
    off. While the request is being delivered the withdrawal waits (:class:`NotYet`), so it
    never overtakes the request."""
    if message.kind not in ("transfer.requested", "transfer.withdrawn"):
        return None
    from exchange.sharing import RecordShare

    share_id = (message.payload or {}).get("share_id")
    if message.kind == "transfer.withdrawn":
        # Columns, not entities: the request as stored now, not as this session last loaded it
        # (a request of this same batch whose outcome was written since, by an UPDATE).
        requests = [
            request
            for request in session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.payload,
                    OutboxMessage.status,
                    OutboxMessage.maybe_reached,
                    OutboxMessage.last_error,
                    OutboxMessage.delivered_at,
                    OutboxMessage.lease_token,
                    OutboxMessage.lease_until,
                ).where(
                    OutboxMessage.agency_id == message.agency_id,
                    OutboxMessage.kind == "transfer.requested",
                    OutboxMessage.id != message.id,
                )
            )
            if (request.payload or {}).get("share_id") == share_id
        ]
        now = utcnow()
        for request in requests:
            if (
                request.lease_until is not None
                and as_utc(request.lease_until) > now
                and request.lease_token != message.lease_token
            ):
                return NotYet(as_utc(request.lease_until), request.id)
        if any(may_have_taken(request) for request in requests):
            return None
        if any(may_have_reached(request) for request in requests):
            return f"withheld: the recipient did not take the request of transfer {share_id}"
        return f"withheld: the request of transfer {share_id} never reached the recipient"
    share = session.get(RecordShare, share_id) if share_id else None
    if share is None or share.status == "pending":
        return None
    return f"withheld: transfer {share.id} is {share.status}, no longer pending"


def _withheld_because(message: OutboxMessage, reason: str) -> str:
    """What a message withheld for ``reason`` keeps as its ``last_error``: the reason, and for
    a transfer request that reached its receiver only to be refused, that it was not taken
    (:data:`NOT_TAKEN`), so its withdrawal is withheld too whichever goes first."""
    if (
        message.kind == "transfer.requested"
        and message.maybe_reached
        and not may_have_taken(message)
        and message.last_error
    ):
        return reason + NOT_TAKEN.format(error=message.last_error)
    return reason


_HTTP_REFUSAL = re.compile(f"(?:{_GAVE_UP_HEAD})?" + r"HTTP [3-5]\d\d\b.*", re.DOTALL)
_NOT_TAKEN_TEXT = re.compile(
    r"withheld: .*; the receiver did not take it \(its last answer: .*\)", re.DOTALL
)


def refused_by_receiver(last_error: str | None) -> bool:
    """Whether ``last_error`` says the receiver answered the message's last attempt with an
    error status (a redirect, 4xx, 408, 429, 5xx; also once its attempts ran out on such
    answers), and no earlier attempt may have left it there (:data:`EARLIER_ATTEMPT`); or that
    the message was withheld after such answers (:data:`NOT_TAKEN`)."""
    if not last_error or last_error.endswith(EARLIER_ATTEMPT):
        return False
    return bool(_HTTP_REFUSAL.fullmatch(last_error) or _NOT_TAKEN_TEXT.fullmatch(last_error))


def may_have_taken(request: Any) -> bool:
    """Whether the agency's system may have kept ``request`` (a stored message's ``status``,
    ``maybe_reached``, ``last_error`` and ``delivered_at``) — what decides whether a transfer's
    withdrawal is sent (:func:`_stale_transfer_request`). Narrower than
    :func:`may_have_reached`, which decides what the agency may know (disclosure): delivered;
    handed out (read, or shown in its shares); or tried by an attempt that did not certainly
    send nothing, unless the receiver answered every such attempt with an error status
    (:func:`refused_by_receiver`). A receiver answers 2xx once it has stored a notification,
    and 2xx to a repeat of one it has (docs/agencies.md §4), so one whose answers were all
    errors did not keep it; a timeout, a connection cut after sending, or a worker that died
    mid-send (it leaves no error) may have left it there."""
    if request.status == "delivered" or request.delivered_at is not None:
        return True
    return bool(request.maybe_reached) and not refused_by_receiver(request.last_error)


def may_have_reached(request: Any) -> bool:
    """Whether the agency may have got ``request`` (a stored message's ``status`` and
    ``maybe_reached``): delivered; handed out (by ``GET /v1/notifications``, or a route that
    shows its share); or tried by an attempt that did not certainly send nothing — a timeout or
    an error answer may come after the receiver took it, a worker that died mid-send may have
    sent it. Not an attempt that refused it (withheld), nor one that certainly sent nothing
    (:func:`sent_nothing`: connection refused, name not found, no address, agency disabled).
    (A claim is no attempt: a request claimed with this withdrawal, its turn still to come,
    counts as untried.) ``exchange.child_search.told_to_recipient`` is the same rule in SQL."""
    return request.status == "delivered" or bool(request.maybe_reached)


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
    agency (``maybe_reached``) is kept: it did, whatever comes next."""
    statement = update(OutboxMessage).values(
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        lease_token=None,
        lease_until=None,
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
