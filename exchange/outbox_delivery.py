"""Delivering the outbox: each due message tried once a turn, its outcome written with it.

``puente worker`` (:func:`run_worker`) claims batches of due messages
(:func:`exchange.outbox.claim_batch`) and tries each (:func:`deliver_message`): decided again
first (:func:`exchange.outbox_reading.withholding_reason`), then sent with the agency's
transport, or as a signed notice to a peer hub. A failure that may pass makes it ``failed``,
due again after a backoff (:func:`backoff_seconds`), until its attempts run out (``dead``,
still the agency's to read: :data:`GAVE_UP`); a permanent one makes it ``dead`` at once.

What the outcome means is written with it, as columns (``maybe_reached``,
``readable_when_dead``, ``refused_by_receiver``: :class:`exchange.outbox.OutboxMessage`), and
never read back from ``last_error``, the reason as people read it.
"""

from __future__ import annotations

import logging
import os
import random
import re
import socket
import threading
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask
from sqlalchemy import DateTime, func, literal, select, update
from sqlalchemy.orm import Session, aliased

from exchange.auth import as_utc, utcnow
from exchange.db import database, unavailable_reason
from exchange.outbox import (
    DEFAULT_LEASE_SECONDS,
    DISABLED_AGENCY,
    OutboxMessage,
    claim_batch,
    may_have_taken,
    release,
    start_attempt,
    write_outcome,
)
from exchange.outbox_reading import (
    NotYet,
    end_withheld_share,
    withheld,
    withholding_reason,
)
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

#: Why a message died when its attempts ran out on failures that may pass (no connection, a
#: timeout, 408, 429, 5xx, a full disk): the last failure follows. Its agency may still read it
#: (``readable_when_dead``).
GAVE_UP = (
    "gave up after {n} attempts (its agency may still read it: GET /v1/notifications): {error}"
)
#: The same, for a notice to a peer hub (read by no agency of this hub).
GAVE_UP_ON_PEER = "gave up after {n} attempts: {error}"
#: Why a message died whose every attempt ended with its worker (a crash while sending). Its
#: agency may still read it.
NO_OUTCOME = "no outcome recorded after {n} attempts"
#: Added to a receiver's refusal (``refused_by_receiver``) when an earlier attempt may have
#: left the message with the agency's system (no answer, a connection cut after sending): the
#: refusal then does not count as one.
EARLIER_ATTEMPT = "; an earlier attempt may have reached the agency"

#: Attempts before a message is dead: with the default backoff (5 s doubling to the 1 h
#: ceiling, jitter 0.5–1), about three days of them — two to four — so a receiver down over a
#: weekend gets what waits for it when it comes back.
DEFAULT_MAX_ATTEMPTS = 110
DEFAULT_BACKOFF_SECONDS = 5.0
DEFAULT_BACKOFF_MAX_SECONDS = 3600.0
#: Longest pause between passes while they keep failing (the database is down, …), unless
#: ``poll_seconds`` is longer.
MAX_FAILURE_BACKOFF_SECONDS = 60.0

#: How a transport says the receiver answered with an error status (a redirect, 4xx, 408,
#: 429, 5xx): its error begins so (:mod:`exchange.transports`, :mod:`exchange.federation_notices`).
_ERROR_ANSWER = re.compile(r"HTTP [3-5]\d\d\b")


class _AgencyDisabled(PermanentDeliveryError):
    """The message's agency is unknown or disabled: nothing is sent, and it may still read the
    message (``readable_when_dead``)."""


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
        _dead_without_outcome(session, message, token, result)
        return None
    if not start_attempt(session, message, token, policy.lease_seconds):
        # Our turn came too late: another worker took it meanwhile. Leave it alone.
        result.lost_lease += 1
        return None
    agency = session.get(Agency, message.agency_id) if message.agency_id else None
    # Decided again as the agency's own would be; a referral to a peer hub's agency too
    # (exchange.federation_referrals), a revocation notice to a peer hub has nothing to decide.
    reason = withholding_reason(session, message)
    reached_before = bool(message.maybe_reached)
    taken_before = may_have_taken(message)
    if reason is None:
        # From here on the agency may get it, whatever becomes of this worker: committed before
        # anything is sent, and given back only by an outcome that certainly sent nothing. The
        # error of the attempt before goes, and its refusal with it: a worker that dies
        # mid-send leaves none, and no refusal then stands for this attempt (may_have_taken).
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.lease_token == token)
            .values(maybe_reached=True, last_error=None, refused_by_receiver=False)
            .execution_options(synchronize_session=False)
        )
    session.commit()  # end the read transaction: nothing is held while we talk to the network
    if isinstance(reason, NotYet):
        # The transfer request this withdrawal follows is being delivered: try again after.
        _wait_for_request(session, message, token, reason)
        result.deferred += 1
        return None
    if reason is not None:
        _withhold(session, message, token, reason, result)
        return None
    outcome, values, failure, unreachable = _attempt(session, message, agency, transport, policy)
    if failure is not None and sent_nothing(failure, message, agency):
        # This attempt told the agency nothing: it counts for what it was before.
        values["maybe_reached"] = reached_before
    if taken_before and values["refused_by_receiver"]:
        # The receiver refused this attempt, but may have kept an earlier one: said so, and
        # not counted a refusal, for a later withdrawal of its transfer (may_have_taken).
        values["last_error"] += EARLIER_ATTEMPT
        values["refused_by_receiver"] = False
    if not write_outcome(session, message, token, **values):
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


def _dead_without_outcome(
    session: Session, message: OutboxMessage, token: str, result: BatchResult
) -> None:
    """``message``'s attempts are used up and none wrote an outcome: each ended with its worker
    (a crash while sending, a stop). It is not tried again, but kept, to be requeued; its
    agency was never refused it, and may still read it."""
    values: dict[str, Any] = {
        "status": "dead",
        "last_error": NO_OUTCOME.format(n=message.attempts),
        "readable_when_dead": True,
        "refused_by_receiver": False,
    }
    if write_outcome(session, message, token, **values):
        result.dead += 1
        _log_outcome(message, "dead", values)
    else:
        result.lost_lease += 1


def _withhold(
    session: Session, message: OutboxMessage, token: str, reason: str, result: BatchResult
) -> None:
    """Stale transfer news (telling the recipient of a pending transfer that is not would only
    mislead it), or consent that no longer permits it (``reason``): the recipient is not told,
    and a share it announced and was never told of ends with it."""
    values = withheld(message, reason)
    if write_outcome(
        session, message, token, also=lambda current: end_withheld_share(current, message), **values
    ):
        result.withheld += 1
        _log_outcome(message, "withheld", values)
    else:
        result.lost_lease += 1


def _attempt(
    session: Session,
    message: OutboxMessage,
    agency: Agency | None,
    transport: DeliveryTransport,
    policy: DeliveryPolicy,
) -> tuple[str, dict[str, Any], BaseException | None, datetime | None]:
    """Send ``message`` once. Returns the outcome, the values to write, the failure (None when
    delivered), and, when the agency's receiver could not be reached, when it is due again."""
    try:
        if message.peer_hub is not None:
            from exchange.federation_notices import send_to_peer

            # A revocation notice or a referral: its audit entry commits with the result.
            send_to_peer(session, message)
        elif agency is None or not agency.active:
            raise _AgencyDisabled(DISABLED_AGENCY.format(message.agency_id))
        else:
            transport.deliver(agency, message)
    except TransientDeliveryError as error:
        delay = backoff_seconds(
            message.attempts, policy.backoff_seconds, policy.backoff_max_seconds
        )
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, policy.backoff_max_seconds))
        retry_at = utcnow() + timedelta(seconds=delay)
        outcome, values = _failed_or_given_up(message, policy, str(error)[:1000], retry_at=retry_at)
        return outcome, values, error, retry_at if error.unreachable else None
    except PermanentDeliveryError as error:
        reason = str(error)[:1000]
        return (
            "dead",
            {
                "status": "dead",
                "last_error": reason,
                "readable_when_dead": isinstance(error, _AgencyDisabled),
                "refused_by_receiver": _answered_with_error(reason),
            },
            error,
            None,
        )
    except Exception as error:
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
        return outcome, values, error, None
    delivered = {
        "status": "delivered",
        "delivered_at": utcnow(),
        "last_error": None,
        "readable_when_dead": False,
        "refused_by_receiver": False,
    }
    return "delivered", delivered, None, None


def _failed_or_given_up(
    message: OutboxMessage, policy: DeliveryPolicy, error: str, *, retry_at: datetime
) -> tuple[str, dict[str, Any]]:
    """The outcome of an attempt that failed in a way that may pass: ``failed``, due again at
    ``retry_at``, or, its attempts used up, ``dead`` saying so (:data:`GAVE_UP`: its agency
    may still read it)."""
    refused = _answered_with_error(error)
    if message.attempts < policy.max_attempts:
        return "failed", {
            "status": "failed",
            "next_attempt_at": retry_at,
            "last_error": error,
            "readable_when_dead": False,
            "refused_by_receiver": refused,
        }
    if message.peer_hub is not None:
        # A notice to a peer hub: read by no agency here, followed by no withdrawal.
        given_up = GAVE_UP_ON_PEER.format(n=message.attempts, error=error)
        return "dead", {
            "status": "dead",
            "last_error": given_up,
            "readable_when_dead": False,
            "refused_by_receiver": False,
        }
    return "dead", {
        "status": "dead",
        "last_error": GAVE_UP.format(n=message.attempts, error=error),
        "readable_when_dead": True,
        "refused_by_receiver": refused,
    }


def _answered_with_error(error: str) -> bool:
    """Whether the transport's ``error`` says the receiver answered with an error status."""
    return _ERROR_ANSWER.match(error) is not None


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


def worker_lease_seconds(app: Flask, configured: float) -> float:
    """The lease a worker takes: ``OUTBOX_LEASE_SECONDS``, but at least one delivery's longest
    wait (the webhook's or a peer hub's timeout) and 30 s more, or a second worker would retake
    a message still being delivered. Each delivery renews it
    (:func:`exchange.outbox.start_attempt`)."""
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
