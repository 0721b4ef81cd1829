"""What an agency reads of the outbox, and why a message may not go to it.

``GET /v1/notifications`` lists what an agency was sent, what is kept for it to read (``held``:
it has no webhook or file drop), and what died only because it could not be reached
(:func:`exchange.outbox.dead_but_readable`) — each held or dead one decided again when it is
handed out (:func:`hand_out`), as the worker decides each message before sending it
(:func:`withholding_reason`: consent that no longer permits it, transfer news gone stale). A
message that may not go out is ``withheld`` for good, by whichever decides first
(:func:`withheld`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from exchange.auth import as_utc, utcnow
from exchange.outbox import (
    OutboxMessage,
    may_have_reached,
    may_have_taken,
    readable_dead,
)

#: What ``GET /v1/notifications`` hands out: what the agency was sent, and what is kept for it
#: to read — with the dead messages its receiver never refused
#: (:func:`exchange.outbox.dead_but_readable`). Never a message withheld, refused by its
#: receiver, or still on its way.
READABLE_STATUSES = ("delivered", "held")
#: Added to the reason a transfer request is withheld for when its receiver answered every
#: attempt that reached it with an error status: it never took the request
#: (:func:`exchange.outbox.may_have_taken`), so the withdrawal is not sent either.
NOT_TAKEN = "; the receiver did not take it (its last answer: {error})"
#: Why a referral or transfer notice is withheld when consent no longer permits it, as an
#: administrator reads it in ``puente outbox list``: the decision (in the audit log) and its
#: basis code, and what that means.
CONSENT_WITHHELD = (
    "withheld by consent decision {decision} ({basis}): consent no longer permits telling "
    "this agency (revoked, expired or changed since the notice was queued); it is not sent"
)
#: How the reasons a transfer's own news gives begin (:func:`_stale_transfer_request`).
_STALE_NEWS = "withheld: "


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
    never refused (:func:`~exchange.outbox.dead_but_readable`: down longer than the attempts
    lasted, or the agency disabled meanwhile) that may still go out — each held or dead one
    decided again now, as :func:`~exchange.outbox_delivery.deliver_message` decides before
    sending (consent revoked, a transfer no longer pending). One that may not is marked
    ``withheld`` for good, as the worker would mark it. Reading one counts as an attempt: that
    it was handed out is what a later withdrawal of its transfer needs to know. The decisions
    are audited in ``session``'s transaction; the caller commits."""
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
    """Hand a ``held`` message, or a dead one its agency may read
    (:func:`~exchange.outbox.dead_but_readable`),
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
    for name, value in withheld(message, reason).items():
        setattr(message, name, value)
    session.flush()  # a withdrawal decided after it in the same transaction reads it
    end_withheld_share(session, message)
    return False


@dataclass(frozen=True)
class NotYet:
    """The message must wait: the transfer request it follows (``request_id``) is being
    delivered now, under a lease that runs out at ``until``."""

    until: datetime
    request_id: str


def withholding_reason(session: Session, message: OutboxMessage) -> str | NotYet | None:
    """Why ``message`` may not go to its agency now, or ``None``: a referral (also one to a peer
    hub's agency) or transfer that consent no longer permits (decided again, and audited, as
    each delivery attempt is), or transfer news gone stale (:func:`_stale_transfer_request`)."""
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
    elif message.peer_hub is not None:
        # A referral to a peer hub's agency is decided again as a local one's notice is.
        from exchange.federation_referrals import decide_peer_delivery

        gate = decide_peer_delivery(session, message, max(message.attempts, 1))
    stale = _stale_transfer_request(session, message)
    if stale is not None:
        return stale
    if gate is not None and not gate.permitted:
        # Consent changed since the message was queued (a revocation, an objection): the
        # recipient is not told. The decision is in the audit log.
        return CONSENT_WITHHELD.format(decision=gate.decision_id, basis=gate.decision.basis)
    return None


def _stale_transfer_request(session: Session, message: OutboxMessage) -> str | NotYet | None:
    """Why a queued transfer notice should not go out, or ``None``: a ``transfer.requested``
    whose transfer is no longer pending; a ``transfer.withdrawn`` to a recipient whose system
    never took the request (:func:`~exchange.outbox.may_have_taken`: it never got it, or
    answered every attempt that reached it with an error status), which would learn of a
    transfer only to hear it is off. While the request is being delivered the withdrawal waits
    (:class:`NotYet`), so it never overtakes the request."""
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
                    OutboxMessage.refused_by_receiver,
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


def withheld(message: OutboxMessage, reason: str) -> dict[str, Any]:
    """What ``message``, withheld for ``reason``, is written with: ``withheld``, the reason as
    its ``last_error``, and for a transfer request that reached its receiver only to be
    refused, that it was not taken (:data:`NOT_TAKEN`, ``refused_by_receiver``), so its
    withdrawal is withheld too whichever goes first."""
    values: dict[str, Any] = {
        "status": "withheld",
        "last_error": reason,
        "readable_when_dead": False,
        "refused_by_receiver": False,
    }
    if (
        message.kind == "transfer.requested"
        and message.maybe_reached
        and not may_have_taken(message)
        and message.last_error
    ):
        values["last_error"] = reason + NOT_TAKEN.format(error=message.last_error)
        # Only after the transfer's own news, not after consent's withholding: the rule that
        # read this from the text until migration 0027 (see it) did so, and it is kept.
        values["refused_by_receiver"] = reason.startswith(_STALE_NEWS)
    return values


def end_withheld_share(session: Session, message: OutboxMessage) -> None:
    """``message`` was just withheld: if it announced a share its recipient was never told of,
    the share ends (:func:`exchange.sharing.end_untold_share`), in the same transaction."""
    from exchange.federation_referrals import end_untold_peer_referral
    from exchange.sharing import end_untold_share  # sharing builds on the outbox

    if message.peer_hub is not None:
        end_untold_peer_referral(session, message)
    else:
        end_untold_share(session, message)
