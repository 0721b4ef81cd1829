"""Where the hub keeps what the consent engine decides on: consents, the child's views,
emergency overrides, "withhold from" entries, access requests and the grants made on them.

Each row keeps the document in the pure model's JSON form (``consent.Consent.to_json()`` and
friends), encrypted under the data keyring like record bodies: consents name grantors, views
hold the child's own words and overrides a justification. A few columns repeat what queries
need (child, status, times, who) in clear.

Loading a child's inputs for a decision (:func:`child_inputs`) reads every row of the child
family (merged children included) and parses them back into the pure models.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from consent import ChildView, Consent, Grant, Override, WithholdFrom
from consent.parts import ActorRef
from exchange.auth import as_utc
from exchange.crypto import DataKeyring
from exchange.db import Base


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class _Sealed:
    """A document encrypted under the data keyring (nonce ‖ ciphertext) and its key id."""

    document_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    data_key_id: Mapped[str] = mapped_column(String(64))

    def seal(self, keyring: DataKeyring, document: dict[str, Any]) -> None:
        plaintext = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
        self.data_key_id, self.document_ciphertext = keyring.encrypt(plaintext)

    def open(self, keyring: DataKeyring) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            keyring.decrypt(self.data_key_id, self.document_ciphertext)
        )
        return document


class ConsentRow(_Sealed, Base):
    __tablename__ = "consent"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    recorded_by_agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    recorded_by_person: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ChildViewRow(_Sealed, Base):
    __tablename__ = "child_view"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    position: Mapped[str] = mapped_column(String(30))
    #: The consent the views were recorded with, when they came inside one.
    consent_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    recorded_by_agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OverrideRow(_Sealed, Base):
    __tablename__ = "emergency_override"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    opened_by_agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    opened_by_person: Mapped[str | None] = mapped_column(String(80), nullable=True)
    basis_code: Mapped[str] = mapped_column(String(60))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    upheld: Mapped[bool | None] = mapped_column(nullable=True)


class WithholdRow(_Sealed, Base):
    """A "withhold from" entry: never disclose ``categories`` (all when empty) of the child to
    the target (an agency, a person or a role, every stated part matching) or to every actor
    of ``actor_kind``. Whom and what are codes, kept in clear for the engine; the sealed
    document holds only the free text (``reason``, and ``revocation_reason`` once revoked),
    which may describe the child's situation (an alleged abuser)."""

    __tablename__ = "withhold_entry"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    target_agency_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    target_person_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    target_role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    categories: Mapped[list[Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recorded_by_agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    recorded_by_person: Mapped[str | None] = mapped_column(String(80), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by_agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    revoked_by_person: Mapped[str | None] = mapped_column(String(80), nullable=True)

    def target(self) -> ActorRef | None:
        if not (self.target_agency_id or self.target_person_id or self.target_role):
            return None
        return ActorRef(
            agency_id=self.target_agency_id,
            person_id=self.target_person_id,
            role=self.target_role,
        )

    def as_withhold(self, child_id: str) -> WithholdFrom:
        """The entry as the engine weighs it, for ``child_id`` (the child it now is). A
        revocation ends it at the instant it was made; the written reason stays sealed (the
        engine never uses it)."""
        ends = None if self.ends_at is None else as_utc(self.ends_at)
        if self.revoked_at is not None:
            revoked = as_utc(self.revoked_at)
            ends = revoked if ends is None else min(ends, revoked)
        return WithholdFrom(
            child_id=child_id,
            target=self.target(),
            actor_kind=self.actor_kind,
            categories=frozenset(self.categories or ()),
            id=self.id,
            starts=None if self.starts_at is None else as_utc(self.starts_at),
            ends=ends,
        )


class AccessRequestRow(Base):
    """A legal representative's (or agency's) request for access, and how it was decided."""

    __tablename__ = "access_request"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The child id asked for, as asked — not a reference to ``child``: a request about an id
    #: the hub never issued is kept and answered like any other, so that asking tells nobody
    #: whether a child exists (migration 0024). 80 characters: the longest id the
    #: ``access-request/1`` schema takes.
    child_id: Mapped[str] = mapped_column(String(80), index=True)
    requester_agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requester_person: Mapped[str | None] = mapped_column(String(80), nullable=True)
    purpose: Mapped[str] = mapped_column(String(60))
    categories: Mapped[list[Any]] = mapped_column(JSON)
    #: The records asked for (none: all of the child's); a grant covers only these — an id
    #: that is not one of the child's covers nothing, and is not refused (which would tell
    #: the requester which ids are the child's, or that the child exists).
    record_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Jurisdictions of the agencies responsible for the child's records: the consent
    #: officers of these (or of the enclosing state) see the request in their queue.
    jurisdictions: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)
    #: The engine's decision when the request was made, as ``Decision.to_json()``.
    decision: Mapped[dict[str, Any]] = mapped_column(JSON)
    grant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AccessRequestJustification(_Sealed, Base):
    """What the requester wrote beside an access request, sealed: why they ask
    (``justification``: it may describe the child's situation), on whose behalf
    (``on_behalf_of``) and in which legal proceeding (``proceeding_reference``) — the keys of
    exchange.consents.access.REQUESTER_WORDS, each only when written. Shown to the officers who
    decide and to the requester; never in the audit log."""

    __tablename__ = "access_request_justification"

    #: The request's id (``id``, as every sealed table's key, for key rotation).
    id: Mapped[str] = mapped_column("request_id", ForeignKey("access_request.id"), primary_key=True)


class GrantRow(Base):
    """Access granted on a request: purpose-bound, some categories, until a time."""

    __tablename__ = "access_grant"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("access_request.id"))
    grantee_agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    grantee_person: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    #: ``consent.Grant.to_json()``: codes and times only, nothing to seal.
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The consent officer who revoked it (person id), and why — like an access request's
    #: ``decided_by`` and ``decision_reason``.
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsentDisclosure(Base):
    """An agency received data under a consent: whom to tell when the consent is revoked."""

    __tablename__ = "consent_disclosure"

    consent_id: Mapped[str] = mapped_column(ForeignKey("consent.id"), primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The peer hub the agency belongs to, when it read through a federated lookup; None for
    #: an agency of this hub.
    peer_hub: Mapped[str | None] = mapped_column(String(100), nullable=True)


class OutboxDisclosure(Base):
    """The consents that permitted an outbox message carrying a referral or transfer to its
    agency (``exchange.disclosure.decide_delivery``), as decided before it was sent.

    Unlike :class:`ConsentDisclosure`, this does not by itself say the agency received data:
    that is the message's own ``maybe_reached`` (set before each attempt, given back by one
    that certainly sent nothing — a refused connection) or ``delivered`` state. A revocation
    tells the agency when the two meet (``exchange.consents.records.notify_revocation``), so a
    notice that never arrived does not make the revocation the first the agency hears of the
    child (migration 0026)."""

    __tablename__ = "outbox_disclosure"

    message_id: Mapped[str] = mapped_column(ForeignKey("outbox_message.id"), primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consent.id"), primary_key=True, index=True)


# -- loading a child's inputs ------------------------------------------------------------------


@dataclass(frozen=True)
class ChildInputs:
    """Everything about a child the engine weighs, besides the request, rules and facts."""

    consents: tuple[Consent, ...]
    grants: tuple[Grant, ...]
    views: tuple[ChildView, ...]
    overrides: tuple[Override, ...]
    withholds: tuple[WithholdFrom, ...] = ()


def _as_child(document: dict[str, Any], child_id: str) -> dict[str, Any]:
    # Rows of a child merged into another speak for the surviving child.
    return {**document, "child_id": child_id}


def child_inputs(
    session: Session,
    keyring: DataKeyring,
    child_ids: set[str],
    child_id: str,
    *,
    known_empty: Collection[type[Base]] = (),
) -> ChildInputs:
    """The consents, grants, views, overrides and withhold entries of every child in
    ``child_ids`` (the child ``child_id`` now is and those merged into it), as the pure models
    of ``child_id``. ``known_empty``: tables (:class:`ConsentRow`, :class:`GrantRow`, …) the
    caller has just counted no rows of for these children, so they are not asked again — most
    children have none, and each table asked is a round trip on every read of a child's
    data (:func:`exchange.disclosure.load_child` counts them in its stamp)."""

    def rows(model: Any) -> Any:
        if model in known_empty:
            return ()
        return session.scalars(
            select(model).where(model.child_id.in_(child_ids)).order_by(model.id)
        )

    consents = tuple(
        Consent.from_json(_as_child(row.open(keyring), child_id)) for row in rows(ConsentRow)
    )
    grants = tuple(
        Grant.from_json(
            _as_child(
                {**row.document, "revoked_at": as_utc(row.revoked_at).isoformat()}
                if row.revoked_at is not None
                else row.document,
                child_id,
            )
        )
        for row in rows(GrantRow)
    )
    views = tuple(
        ChildView.from_json(_as_child(row.open(keyring), child_id)) for row in rows(ChildViewRow)
    )
    overrides = tuple(
        Override.from_json(_as_child(row.open(keyring), child_id)) for row in rows(OverrideRow)
    )
    withholds = tuple(row.as_withhold(child_id) for row in rows(WithholdRow))
    return ChildInputs(consents, grants, views, overrides, withholds)
