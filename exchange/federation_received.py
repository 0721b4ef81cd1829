"""Referrals a peer hub made to this hub's agencies: the receiving side (docs/federation.md §6).

A peer hub that holds a child's record refers it to one of this hub's agencies
(:mod:`exchange.federation_referrals` is that hub's side) and announces it with a signed
``referral`` envelope, whose body holds identifiers only: ``{"share_id", "record_id", "from",
"to", "purpose", "categories", "created_at", "notice_id"}``. Nothing of the record comes with
it: the agency reads it through a lookup that names the referral, decided on the holding hub.

:func:`receive_referral` checks it (``to`` one of this hub's active agencies; ``from`` an agency
the sending peer speaks for, under its agency prefixes, and none of this hub's), keeps it once
per (sending hub, ``notice_id``) — the sender signs a new envelope for every attempt, so one
whose answer came too late arrives again — audits it (``federation_envelope_received``, reason
``referral``) and passes it on to the agency through its own outbox as a ``record.referred``
notification naming the ``hub``: its webhook, file drop or ``GET /v1/notifications``.
``GET /v1/federation/referrals`` lists what an agency received (:func:`received_by`).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, UniqueConstraint, select, tuple_
from sqlalchemy.orm import Mapped, Session, mapped_column

from exchange.agencies import Agency
from exchange.auth import PEER_CLIENT_PREFIX, Actor, as_utc, utcnow
from exchange.db import Base
from exchange.federation import EnvelopeRefused, Opened, audit_envelope
from exchange.federation_notices import notice_message_id
from exchange.federation_referrals import BODY_FIELDS, ENVELOPE_TYPE, REFERRAL_NOTICE
from exchange.outbox import enqueue
from exchange.peers import speaks_for
from exchange.sharing import data_categories, purpose_codes

#: Ids a referral carries (the sending hub's ``shr_…``, ``rec_…``, ``msg_…``; agency ids):
#: checked loosely, so that a peer's next id format passes, but never free text.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
#: How far ahead of this hub's clock a referral may say it was made.
_SKEW_SECONDS = 300


class ReceivedReferral(Base):
    """A referral a peer hub made to one of this hub's agencies: what it announced, ids only."""

    __tablename__ = "received_referral"
    __table_args__ = (UniqueConstraint("peer_hub", "notice_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    peer_hub: Mapped[str] = mapped_column(String(100))
    notice_id: Mapped[str] = mapped_column(String(100))
    #: The holding hub's ids: its share (the referral), its record, its agency that referred.
    share_id: Mapped[str] = mapped_column(String(100))
    record_id: Mapped[str] = mapped_column(String(100))
    from_agency: Mapped[str] = mapped_column(String(100))
    agency_id: Mapped[str] = mapped_column(ForeignKey("agency.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(100))
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hub": self.peer_hub,
            "share_id": self.share_id,
            "record_id": self.record_id,
            "from": self.from_agency,
            "to": self.agency_id,
            "purpose": self.purpose,
            "categories": list(self.categories or []),
            "created_at": as_utc(self.created_at).isoformat(),
            "received_at": as_utc(self.received_at).isoformat(),
        }


def _invalid(name: str, es: str, en: str) -> EnvelopeRefused:
    return EnvelopeRefused("validation", es, en, pointer=f"/body/{name}")


def _checked(body: dict[str, Any]) -> datetime:
    """The body's fields checked (their shapes, the purpose and categories known here);
    returns when the referral was made."""
    unknown = sorted(set(body) - set(BODY_FIELDS))
    if unknown:
        name = unknown[0]
        raise _invalid(name, f"Campo desconocido {name!r}.", f"Unknown field {name!r}.")
    for name in ("share_id", "record_id", "from", "to", "notice_id"):
        if not isinstance(body.get(name), str) or not _ID.match(body[name]):
            raise _invalid(
                name,
                f"{name} es obligatorio: un identificador sin espacios.",
                f"{name} is required: an identifier without spaces.",
            )
    if body.get("purpose") not in purpose_codes():
        raise _invalid(
            "purpose",
            f"Finalidad {body.get('purpose')!r} desconocida.",
            f"Unknown purpose {body.get('purpose')!r}.",
        )
    categories = body.get("categories")
    if (
        not isinstance(categories, list)
        or not categories
        or len(set(map(str, categories))) != len(categories)
        or not set(categories) <= set(data_categories())
    ):
        raise _invalid(
            "categories",
            "categories es una lista, sin repetir, de categorías de datos conocidas.",
            "categories is a list of known data categories, none repeated.",
        )
    try:
        made = datetime.fromisoformat(str(body.get("created_at")))
    except ValueError:
        made = None
    if made is None or made.tzinfo is None:
        raise _invalid(
            "created_at",
            "created_at es obligatorio: una fecha y hora ISO 8601 con zona horaria.",
            "created_at is required: an ISO 8601 date and time with a time zone.",
        )
    if (made - utcnow()).total_seconds() > _SKEW_SECONDS:
        raise _invalid(
            "created_at",
            "created_at está en el futuro (revise el reloj del nodo que la envía).",
            "created_at is in the future (check the sending hub's clock).",
        )
    return made


def receive_referral(session: Session, opened: Opened) -> dict[str, Any]:
    """A peer's referral of one of its records to an agency of this hub: checked, audited,
    kept and queued for the agency (in ``session``; the caller commits)."""
    body = opened.body
    hub = opened.peer.hub_id
    made = _checked(body)
    agency = session.get(Agency, body["to"])
    if agency is None or not agency.active:
        # Final for the sender (a 4xx): its referral stays undelivered there, where its owner
        # sees it; `puente outbox retry` sends it again once the agency is enabled here.
        raise EnvelopeRefused(
            "not-found",
            f"Este nodo no tiene una agencia activa {body['to']}: no hay a quién canalizar.",
            f"This hub has no active agency {body['to']}: there is no one to refer to.",
            status=404,
            pointer="/body/to",
        )
    if session.get(Agency, body["from"]) is not None or not speaks_for(opened.peer, body["from"]):
        prefixes = ", ".join(opened.peer.agency_prefixes) or "—"
        raise EnvelopeRefused(
            "forbidden",
            f"{body['from']} no es una agencia por la que hable el nodo {hub} (sus prefijos de "
            f"agencia: {prefixes}).",
            f"{body['from']} is not an agency hub {hub} speaks for (its agency prefixes: "
            f"{prefixes}).",
            pointer="/body/from",
        )
    kept = session.scalars(
        select(ReceivedReferral).where(
            ReceivedReferral.peer_hub == hub, ReceivedReferral.notice_id == body["notice_id"]
        )
    ).first()
    if kept is None:
        kept = ReceivedReferral(
            id="frf_" + secrets.token_hex(12),
            peer_hub=hub,
            notice_id=body["notice_id"],
            share_id=body["share_id"],
            record_id=body["record_id"],
            from_agency=body["from"],
            agency_id=agency.id,
            purpose=body["purpose"],
            categories=list(body["categories"]),
            created_at=made,
            received_at=utcnow(),
        )
        session.add(kept)
        message = enqueue(
            session,
            agency.id,
            REFERRAL_NOTICE,
            notification(kept),
            held=not agency.webhook_url,
        )
        # The same for every copy of the notice: the agency is told once.
        message.id = notice_message_id(hub, body["notice_id"])
    sender = Actor.from_fields(
        client_id=PEER_CLIENT_PREFIX + hub,
        scopes=(),
        agency_id=body["from"],
        kind=None,
        country=None,
        agency_jurisdiction=None,
    )
    audit_envelope(
        session, "received", hub, opened.jti, ENVELOPE_TYPE, actor=sender, purpose=body["purpose"]
    )
    return {"envelope_id": opened.jti, "type": ENVELOPE_TYPE, "status": "accepted"}


#: What the agency is told it can do with a referral from another hub.
HOW_TO_READ = {
    "es": "Lea el expediente con POST /v1/federation/lookups en este nodo, nombrando el nodo, "
    "la finalidad y la canalización (referral: share_id).",
    "en": "Read the record with POST /v1/federation/lookups on this hub, naming the hub, the "
    "purpose and the referral (referral: share_id).",
}


def notification(referral: ReceivedReferral) -> dict[str, Any]:
    """The ``record.referred`` notification the agency receives: ids and codes, never case
    content, with the ``hub`` whose ids they are."""
    return {
        "event": REFERRAL_NOTICE,
        "hub": referral.peer_hub,
        "share_id": referral.share_id,
        "kind": "referral",
        "record_id": referral.record_id,
        "purpose": referral.purpose,
        "categories": list(referral.categories),
        "from": referral.from_agency,
        "to": referral.agency_id,
        "occurred_at": as_utc(referral.created_at).isoformat(),
        "how_to_read": dict(HOW_TO_READ),
    }


def received_by(
    session: Session, agency_id: str, *, after: str | None = None, limit: int = 100
) -> list[ReceivedReferral]:
    """The referrals ``agency_id`` received from peer hubs, oldest first, after the one
    ``after`` names (one of its own: ``LookupError`` otherwise)."""
    query = select(ReceivedReferral).where(ReceivedReferral.agency_id == agency_id)
    if after is not None:
        previous = session.get(ReceivedReferral, after)
        if previous is None or previous.agency_id != agency_id:
            raise LookupError(after)
        query = query.where(
            tuple_(ReceivedReferral.received_at, ReceivedReferral.id)
            > tuple_(previous.received_at, previous.id)
        )
    query = query.order_by(ReceivedReferral.received_at, ReceivedReferral.id).limit(limit)
    return list(session.scalars(query))
