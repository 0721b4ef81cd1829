"""Referring a record to an agency of another hub: the holding hub's side (docs/federation.md §6).

Nothing is copied in advance. A cross-hub referral is a *standing basis to read*, kept on the
hub that holds the record (:class:`PeerReferral`), announced to the peer hub, and read through
the federation, each read decided by this hub's consent engine and audited here:

1. The record's owner refers it (``POST /v1/records/{id}/referrals``) to an agency an active
   pinned peer speaks for (:func:`peer_for_recipient`, under its agency prefixes). It is
   decided as a local referral is (``refer``, for the recipient), except that this hub knows
   the recipient by its id alone (:func:`peer_agency_actor`): a consent or a withhold entry
   naming the agency applies; hard rules and withhold entries that speak of a kind of actor,
   and anything resting on a level or jurisdiction, apply at each read, when the peer says
   what its agency is. Audited ``record.referred`` (target: the agency and its hub) and kept.
2. :func:`refer_to_peer` queues an outbox message to the peer hub (:data:`REFERRAL_NOTICE`,
   ``agency_id`` the peer's agency in its payload); ``puente worker`` decides it again before
   each attempt, as a local referral's notice (:func:`decide_peer_delivery`: consent that no
   longer permits it withholds it, and the referral ends, :func:`end_untold_peer_referral`),
   then sends it as a ``referral`` envelope signed for that attempt (:func:`send_referral`),
   retrying with backoff while the peer cannot be reached. Its body holds identifiers only
   (:data:`BODY_FIELDS`). A refusal by the peer leaves the message ``dead``, which the owner
   sees in ``GET /v1/shares`` (``notice``).
3. The peer's agency reads through a lookup that names the referral
   (``{"referral": <share id>}`` instead of identifiers, :mod:`exchange.federation`). Only the
   referral's own recipient, asking through the referral's hub for the referral's purpose, is
   answered about its record (:func:`referred_record`); for it, as for a local referred agency,
   the referral's categories are decided again as a referral (``refer``) on every read, the
   rest as a read (:func:`peer_referred_to`, used by ``decide_read``). Any other lookup naming
   a referral, or naming an unknown one, decides nothing and answers an empty list.

A revocation of a consent the referral rested on does what it does to a local referral: the
referral stays, and each read through it is decided again, so what the consent permitted is no
longer given; an agency that read under the consent is told (``consent_revoked`` to its hub,
:mod:`exchange.federation_notices`). The peer's side is :mod:`exchange.federation_received`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import g, has_request_context
from sqlalchemy import JSON, DateTime, ForeignKey, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

import consent
from consent import ALL_CATEGORIES
from exchange.audit_log import record_event
from exchange.auth import PEER_CLIENT_PREFIX, UNAFFILIATED_KIND, Actor, as_utc, utcnow
from exchange.db import Base
from exchange.outbox import OutboxMessage, enqueue
from exchange.peers import Peer, speaks_for
from exchange.records import Record, current_child_id
from exchange.sharing import UNTOLD_REASONS, new_share_id, notice_state

#: The outbox message (to a peer hub) that announces a referral, and the envelope it goes as.
REFERRAL_NOTICE = "record.referred"
ENVELOPE_TYPE = "referral"
#: What the envelope's body holds: identifiers, codes and a time; never case content.
BODY_FIELDS = (
    "share_id",
    "record_id",
    "from",
    "to",
    "purpose",
    "categories",
    "created_at",
    "notice_id",
)


class PeerReferral(Base):
    """A referral of one of this hub's records to an agency of a peer hub: the basis on which
    that agency reads the record through the federation. (Not a :class:`RecordShare`, whose
    recipient is an agency registered here.)"""

    __tablename__ = "peer_referral"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_share_id)
    record_id: Mapped[str] = mapped_column(ForeignKey("record.id"), index=True)
    from_agency: Mapped[str] = mapped_column(ForeignKey("agency.id"), index=True)
    #: The recipient: an agency of ``peer_hub``, known here by its id only.
    agency_id: Mapped[str] = mapped_column(String(100))
    peer_hub: Mapped[str] = mapped_column(String(100), index=True)
    purpose: Mapped[str] = mapped_column(String(100))
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: ``accepted`` (in force) or ``cancelled`` (its notice was withheld before it was sent).
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The outbox message that announces it to the peer hub.
    notice_id: Mapped[str | None] = mapped_column(String(40), nullable=True)

    def to_json(self) -> dict[str, Any]:
        """As ``GET /v1/shares`` shows a local referral, with the recipient's ``hub``."""
        return {
            "id": self.id,
            "kind": "referral",
            "status": self.status,
            "record_id": self.record_id,
            "from": self.from_agency,
            "to": self.agency_id,
            "hub": self.peer_hub,
            "purpose": self.purpose,
            "categories": list(self.categories or []),
            "reason": None,
            "created_at": as_utc(self.created_at).isoformat(),
            "decided_at": as_utc(self.decided_at).isoformat() if self.decided_at else None,
            "decided_by": None,
            "decision_reason": self.decision_reason,
        }


# -- sending -----------------------------------------------------------------------------------


def peer_for_recipient(session: Session, agency_id: str) -> Peer | None:
    """The pinned peer, active or not, that speaks for ``agency_id`` (the caller has checked
    that no agency of this hub bears it): whom a referral to it would go to."""
    for peer in session.scalars(select(Peer).order_by(Peer.hub_id)):
        if speaks_for(peer, agency_id):
            return peer
    return None


def peer_agency_actor(agency_id: str) -> consent.Actor:
    """The consent engine's view of a peer hub's agency when only its id is known (making or
    delivering a referral): no kind, level or jurisdiction, so only what names the agency
    itself applies to it here; what speaks of its kind applies at each read, when its hub
    describes it (:mod:`this module <.>`)."""
    return consent.Actor(kind=UNAFFILIATED_KIND, agency_id=agency_id)


def open_referral(
    session: Session, record_id: str, agency_id: str, peer_hub: str, purpose: str
) -> str | None:
    """The id of the referral in force of the record to that agency for that purpose, if any:
    a record is referred to an agency for a purpose once."""
    return session.scalars(
        select(PeerReferral.id).where(
            PeerReferral.record_id == record_id,
            PeerReferral.agency_id == agency_id,
            PeerReferral.peer_hub == peer_hub,
            PeerReferral.purpose == purpose,
            PeerReferral.status == "accepted",
        )
    ).first()


def refer_to_peer(
    session: Session,
    record: Record,
    peer: Peer,
    *,
    to: str,
    purpose: str,
    categories: list[str],
) -> PeerReferral:
    """Keep the referral (the consent engine permitted ``categories``, and its decision is the
    referral's audit entry) and queue its announcement to ``peer``, in the caller's
    transaction."""
    referral = PeerReferral(
        id=new_share_id(),
        record_id=record.id,
        from_agency=record.owner_agency,
        agency_id=to,
        peer_hub=peer.hub_id,
        purpose=purpose,
        categories=list(categories),
        status="accepted",
        created_at=utcnow(),
    )
    session.add(referral)
    payload = {
        "event": REFERRAL_NOTICE,
        # The peer's agency, as `puente outbox list` shows a notice to a peer (<hub>/<agency>).
        "agency_id": to,
        "share_id": referral.id,
        "record_id": record.id,
        "from": referral.from_agency,
        "to": to,
        "purpose": purpose,
        "categories": list(categories),
        "created_at": as_utc(referral.created_at).isoformat(),
    }
    message = enqueue(session, None, REFERRAL_NOTICE, payload)
    message.peer_hub = peer.hub_id
    referral.notice_id = message.id
    return referral


# -- announcing --------------------------------------------------------------------------------


def send_referral(session: Session, message: OutboxMessage) -> None:
    """One attempt at announcing a referral to its peer hub, as a ``referral`` envelope signed
    now (:func:`exchange.federation_notices.send_envelope`); the notice id is the message's,
    the same in every attempt, so the peer keeps the referral once."""
    from exchange.federation_notices import send_envelope

    payload = message.payload or {}
    body = {name: payload.get(name) for name in BODY_FIELDS if name != "notice_id"}
    body["notice_id"] = message.id
    send_envelope(session, message, ENVELOPE_TYPE, body)


def _announced(session: Session, message: OutboxMessage) -> PeerReferral | None:
    if message.peer_hub is None or message.kind != REFERRAL_NOTICE:
        return None
    share_id = (message.payload or {}).get("share_id")
    referral = session.get(PeerReferral, share_id) if isinstance(share_id, str) else None
    if referral is None or referral.notice_id != message.id:
        return None
    return referral


def decide_peer_delivery(session: Session, message: OutboxMessage, attempt: int) -> Any:
    """Decide again, before an attempt, the referral ``message`` announces to a peer hub's
    agency, as a local referral's notice is decided (``exchange.disclosure.decide_delivery``):
    audited in ``session``'s transaction, the attempt and recipient in its reason code. None
    for a message that announces no referral in force (a revocation notice)."""
    from exchange.disclosure import decide_disclosure, load_child

    referral = _announced(session, message)
    if referral is None or referral.status != "accepted":
        return None
    record = session.get(Record, referral.record_id)
    if record is None:
        return None
    return decide_disclosure(
        session,
        Actor.hub(),
        load_child(session, record.child_id),
        action="refer",
        purpose=referral.purpose,
        categories=referral.categories or ALL_CATEGORIES,
        audit_action="record.referred",
        record=record,
        recipient=referral.agency_id,
        recipient_hub=referral.peer_hub,
        detail=f"delivery.attempt_{attempt}.to.{referral.agency_id}",
        remember=False,
    )


def end_untold_peer_referral(session: Session, message: OutboxMessage) -> PeerReferral | None:
    """``message`` was just withheld (consent no longer permitted it): the referral it
    announced ends, as a local referral whose notice was withheld does
    (:func:`exchange.sharing.end_untold_share`): ``cancelled``, with the reason its sender
    reads, audited as the hub's. A withheld notice is never sent, and the referral must not
    stand in the way of making it again once consent permits it."""
    referral = _announced(session, message)
    if referral is None:
        return None
    ended = session.execute(
        update(PeerReferral)
        .where(PeerReferral.id == referral.id, PeerReferral.status == "accepted")
        .values(status="cancelled", decided_at=utcnow(), decision_reason=UNTOLD_REASONS["referral"])
        .execution_options(synchronize_session=False)
    )
    if not ended.rowcount:  # type: ignore[attr-defined]
        return None
    session.refresh(referral)
    record = session.get_one(Record, referral.record_id)
    record_event(
        session,
        action="record.referred",
        outcome="failure",
        actor_role=Actor.hub().audit_role,
        target_agency=referral.agency_id,
        target_hub=referral.peer_hub,
        purpose=referral.purpose,
        child_id=current_child_id(session, record.child_id),
        record_id=record.id,
        record_version=record.latest_version,
        detail="notice_withheld",
    )
    return referral


# -- what the sender sees ----------------------------------------------------------------------


def referrals_sent(
    session: Session, agency_id: str, *, status: str | None = None, limit: int = 100
) -> list[PeerReferral]:
    """The referrals to peer hubs' agencies ``agency_id`` made, newest first."""
    query = select(PeerReferral).where(PeerReferral.from_agency == agency_id)
    if status:
        query = query.where(PeerReferral.status == status)
    query = query.order_by(PeerReferral.created_at.desc(), PeerReferral.id).limit(limit)
    return list(session.scalars(query))


def peer_notice_states(session: Session, referrals: list[PeerReferral]) -> dict[str, str | None]:
    """Where the notice announcing each referral to its peer hub stands
    (:func:`exchange.sharing.notice_state`: ``delivered`` once the peer hub took it)."""
    ids = [referral.notice_id for referral in referrals if referral.notice_id]
    messages = {
        message.id: message
        for message in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    }
    return {
        referral.id: notice_state(messages[referral.notice_id])
        if referral.notice_id in messages
        else None
        for referral in referrals
    }


# -- reading through a referral ----------------------------------------------------------------


def _asking_hub(actor: Actor) -> str | None:
    client = actor.audit_client
    return client[len(PEER_CLIENT_PREFIX) :] if client else None


def peer_referred_to(
    session: Session, actor: Actor, record: Record, purpose: str
) -> frozenset[str]:
    """The categories the referrals in force of ``record`` to ``actor`` (an agency of a peer
    hub, asking through it) for ``purpose`` named, once the peer hub took their notice: what
    ``exchange.api.record_reads.referred_to`` is for a local agency. Nothing for another
    agency, another hub or another purpose."""
    hub = _asking_hub(actor)
    if hub is None or actor.agency_id is None:
        return frozenset()
    referred = _told_referrals(session, hub, actor.agency_id).get((record.id, purpose))
    if not referred:
        return frozenset()
    if not all(referred):
        return ALL_CATEGORIES
    return frozenset(category for categories in referred for category in categories)


def _told_referrals(
    session: Session, hub: str, agency_id: str
) -> dict[tuple[str, str], list[list[str]]]:
    """The categories of the referrals in force to ``agency_id`` of ``hub`` that hub took, by
    (record id, purpose): one query for a lookup however many records it decides (kept for
    the request: a lookup of a child with hundreds of records asks once)."""
    cache: dict[tuple[str, str], Any] | None = (
        g.setdefault("puente_peer_referrals", {}) if has_request_context() else None
    )
    if cache is not None and (hub, agency_id) in cache:
        return cache[(hub, agency_id)]  # type: ignore[no-any-return]
    rows = session.execute(
        select(PeerReferral.record_id, PeerReferral.purpose, PeerReferral.categories)
        .join(OutboxMessage, OutboxMessage.id == PeerReferral.notice_id)
        .where(
            PeerReferral.agency_id == agency_id,
            PeerReferral.peer_hub == hub,
            PeerReferral.status == "accepted",
            # Told, as a local referral counts once told: here, once its hub took the envelope.
            # An attempt the peer refused may have reached it, but gave it nothing.
            OutboxMessage.status == "delivered",
        )
    ).all()
    found: dict[tuple[str, str], list[list[str]]] = {}
    for row in rows:
        found.setdefault((row.record_id, row.purpose), []).append(list(row.categories or []))
    if cache is not None:
        cache[(hub, agency_id)] = found
    return found


def referred_record(
    session: Session, actor: Actor, referral_id: str, purpose: str
) -> Record | None:
    """The record a lookup naming ``referral_id`` asks about: only for the referral's own
    recipient, asking through the referral's hub, for the referral's purpose. Any other
    lookup — another agency's referral, another purpose, an id that names nothing — gets
    None alike, and nothing is decided: no answer tells a referral exists."""
    referral = session.get(PeerReferral, referral_id)
    if (
        referral is None
        or referral.agency_id != actor.agency_id
        or referral.peer_hub != _asking_hub(actor)
        or referral.purpose != purpose
    ):
        return None
    return session.get(Record, referral.record_id)
