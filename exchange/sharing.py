"""Referrals and transfers of records between agencies of this hub.

A **referral** shares a copy of a record with another agency for a service: a purpose and the
data categories the service needs. It is usable at once — the share is created ``accepted`` —
because a referral is the owner's decision to disclose, not a request the recipient answers.

A **transfer** moves responsibility for a record to another agency. It is created ``pending``
and gives the recipient nothing yet; responsibility (``Record.owner_agency``) moves only when
the recipient accepts. Only the recipient may accept or reject, and only once. On acceptance
the hub makes the previous owner an accepted referral of the record (purpose
``case_management``, every category), so the agency that looked after the child is named as
holding it; like any referral it gives access only as far as the consent engine permits it
(``refer``) when read, so with no consent speaking for it the previous owner's reads are
refused. The new owner may refer further as owners do.

Accepting also gives the recipient an address for the record in its own system
(:class:`exchange.records.RecordAddress`): the ``local_id`` it names in the accept (its own case
id), by default the record's own. Its pushes with that local id, single or bulk, then add
versions to the transferred record, linked to the same child. A local id that already names
another of the recipient's records is refused (:class:`LocalIdTaken`; nothing changes, the
transfer stays pending), so a local id names one record per agency. The previous owner's pushes
of the record are refused from then on, naming the agency it transferred it to.

Only the owner agency may refer or transfer a record; at most one transfer of a record is
pending at a time, and a record is referred to an agency for a purpose once. Creating a share
and accepting a transfer take their turn on the record first (:func:`hold_record`), so two
requests at once cannot both find the way clear. Accepting a transfer withdraws any other
transfer of the record still pending (none, unless it was made before that turn was taken):
its sender no longer holds the record.

A recipient sees a share — in its list, in the answers about a transfer, and as knowing the
record it names (a refusal is then ``403``, not ``404``) — only once it was told of it
(:func:`told_shares`): a share whose notice was withheld before it reached the recipient
(consent revoked meanwhile, the transfer withdrawn before its turn) told it nothing of the
child, and its view says nothing either. The sender sees every share it made, and where the
notice that announces it to the recipient stands (:func:`notice_states`: delivered, pending,
failing, dead or withheld) — so it knows when the recipient has not been told yet.

A share still in force whose notice was withheld before it may have reached the recipient
(consent no longer permitted it) ends then (:func:`end_untold_share`: ``cancelled``, with a
reason the sender reads), so that it does not stand in the way of the same referral, or of
another transfer, once consent permits it again: the recipient was given nothing, and a
withheld notice is never sent.

The access rule :func:`exchange.records.may_read` applies on top of these rows: an agency may
read a record when it owns it, or holds an ``accepted`` share of it. (The categories of a
referral are recorded here; redacting reads to them is the consent engine's work.)

Every action is audited (``record.referred``, ``record.transferred``, ``transfer.accepted``,
``transfer.rejected``) and, when the agency that must hear of it has a webhook, notified
through the outbox — both in the action's own transaction, so there is no action without its
entry and its notification. A notification carries identifiers, never case content.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import JSON, DateTime, ForeignKey, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from exchange.audit_log import record_event
from exchange.auth import Actor, as_utc, utcnow
from exchange.db import Base
from exchange.hot_sql import HotSQL
from exchange.outbox import (
    DUE_STATUSES,
    OutboxMessage,
    dead_but_readable,
    enqueue,
    may_have_reached,
)
from exchange.outbox_reading import hand_out
from exchange.records import Record, RecordAddress, current_child_id, record_named
from schemas.registry import shipped_document

KINDS = ("referral", "transfer")
STATUSES = ("pending", "accepted", "rejected", "cancelled")
#: What a transfer (and the continuity referral that follows it) is for.
TRANSFER_PURPOSE = "case_management"


def new_share_id() -> str:
    return "shr_" + secrets.token_hex(12)


class RecordShare(Base):
    """One referral or transfer of a record from one agency to another."""

    __tablename__ = "record_share"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_share_id)
    record_id: Mapped[str] = mapped_column(ForeignKey("record.id"), index=True)
    from_agency: Mapped[str] = mapped_column(ForeignKey("agency.id"))
    #: The recipient.
    agency_id: Mapped[str] = mapped_column(ForeignKey("agency.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str | None] = mapped_column(String(100), nullable=True)
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Agency that accepted or rejected, and why (optional, short).
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "record_id": self.record_id,
            "from": self.from_agency,
            "to": self.agency_id,
            "purpose": self.purpose,
            "categories": list(self.categories or []),
            "reason": self.reason,
            "created_at": as_utc(self.created_at).isoformat(),
            "decided_at": as_utc(self.decided_at).isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "decision_reason": self.decision_reason,
        }


class ShareConflict(Exception):
    """The share is not in a state that allows the action (already decided, owner changed)."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class SenderNoLongerOwns(ShareConflict):
    """The transfer is still pending, but the agency that offered it no longer holds the record
    (another transfer of it was accepted): it can never be accepted."""

    def __init__(self) -> None:
        super().__init__("the record is no longer owned by the sender", "pending")


class LocalIdTaken(Exception):
    """The recipient already names another record by the local id it gave for the transfer."""

    def __init__(self, local_id: str) -> None:
        super().__init__(f"local id {local_id} already names another record")
        self.local_id = local_id


@functools.cache
def _common_enum(definition: str) -> tuple[str, ...]:
    return tuple(shipped_document("common", 1)["$defs"][definition]["enum"])


def purpose_codes() -> tuple[str, ...]:
    return _common_enum("purpose")


def data_categories() -> tuple[str, ...]:
    return _common_enum("data_category")


# --- actions -------------------------------------------------------------------------------


def refer(
    session: Session,
    actor: Actor,
    record: Record,
    *,
    to: str,
    purpose: str,
    categories: list[str],
    decision_entry: str | None = None,
) -> tuple[RecordShare, str | None]:
    """Share ``record`` with ``to`` at once; returns the share and its audit entry id.

    The caller has checked that ``actor`` owns the record and that ``to`` is another active
    agency, and has had the consent engine decide the referral: ``categories`` are those it
    permitted and ``decision_entry`` the audit entry of that decision, which is the
    referral's own entry.
    """
    share = RecordShare(
        id=new_share_id(),
        record_id=record.id,
        from_agency=record.owner_agency,
        agency_id=to,
        kind="referral",
        status="accepted",
        purpose=purpose,
        categories=list(categories),
        created_at=utcnow(),
    )
    session.add(share)
    entry = decision_entry or _audit(session, actor, record, "record.referred", purpose, f"to.{to}")
    _notify(session, to, "record.referred", share, record)
    return share, entry


def request_transfer(
    session: Session,
    actor: Actor,
    record: Record,
    *,
    to: str,
    reason: str,
    decision_entry: str | None = None,
) -> tuple[RecordShare, str | None]:
    """Propose that ``to`` takes responsibility for ``record``; nothing moves until it accepts.
    ``decision_entry``: the audit entry of the consent decision that permitted it."""
    share = RecordShare(
        id=new_share_id(),
        record_id=record.id,
        from_agency=record.owner_agency,
        agency_id=to,
        kind="transfer",
        status="pending",
        purpose=TRANSFER_PURPOSE,
        categories=list(data_categories()),
        reason=reason,
        created_at=utcnow(),
    )
    session.add(share)
    entry = decision_entry or _audit(
        session, actor, record, "record.transferred", TRANSFER_PURPOSE, f"to.{to}"
    )
    _notify(session, to, "transfer.requested", share, record)
    return share, entry


def hold_record(session: Session, record_id: str) -> None:
    """Take the record's turn: until the transaction ends, no other request can create a share
    of ``record_id`` or accept a transfer of it, so what is checked first (no pending transfer,
    no such referral yet) is still true when the share is written. Call it before reading what
    is checked, and before anything of the transaction refers to an agency's row (an accept
    then locks its recipient's: :func:`decide_transfer`).

    PostgreSQL: the record's row is locked (``FOR UPDATE``). SQLite: its one write lock is
    taken now (:meth:`~exchange.hot_sql.HotSQL.hold_sqlite_write_lock`): audit entries are
    written only at the commit, so both requests would otherwise read before either wrote."""
    sql = HotSQL(session)
    if sql.is_sqlite:
        sql.hold_sqlite_write_lock()
        return
    session.execute(select(Record.id).where(Record.id == record_id).with_for_update())


def pending_transfer(session: Session, record_id: str) -> RecordShare | None:
    """The record's pending transfer, offered by the agency that holds it now. (A transfer
    left pending by an agency that no longer holds the record can never be accepted, and does
    not stand in the new owner's way.)"""
    return session.scalars(
        select(RecordShare)
        .join(Record, Record.id == RecordShare.record_id)
        .where(
            RecordShare.record_id == record_id,
            RecordShare.kind == "transfer",
            RecordShare.status == "pending",
            RecordShare.from_agency == Record.owner_agency,
        )
        .limit(1)
    ).first()


def decide_transfer(
    session: Session,
    actor: Actor,
    share: RecordShare,
    *,
    accept: bool,
    reason: str | None,
    decision_entry: str | None = None,
    local_id: str | None = None,
) -> str | None:
    """The recipient's answer to a pending transfer; returns the audit entry id.

    ``local_id``: on acceptance, the local id under which the recipient will push the record
    (by default the record's own).

    The caller holds the record (:func:`hold_record`) for an acceptance, which withdraws any
    other transfer of the record still pending (:func:`_withdraw_other_transfers`).

    Raises :class:`ShareConflict` when the transfer was already decided (also by a concurrent
    request: the status changes only from ``pending``, checked in the UPDATE itself),
    :class:`SenderNoLongerOwns` when the record changed hands meanwhile, and
    :class:`LocalIdTaken` when the local id already names another of the recipient's records;
    the session is rolled back then.
    """
    now = utcnow()
    status = "accepted" if accept else "rejected"
    if accept:
        # First after the record's own row, before anything of this transaction refers to the
        # recipient's row (a lock taken later could deadlock with another accept): pushes of
        # the recipient hold it while they look their local ids up, so the check below sees
        # every record they made.
        _hold_agency(session, share.agency_id)
    decided = session.execute(
        update(RecordShare)
        .where(RecordShare.id == share.id, RecordShare.status == "pending")
        .values(status=status, decided_at=now, decided_by=actor.agency_id, decision_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if not decided.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        current = session.get(RecordShare, share.id, populate_existing=True)
        raise ShareConflict("transfer already decided", current.status if current else None)
    record = session.get_one(Record, share.record_id)
    if accept:
        moved = session.execute(
            update(Record)
            .where(Record.id == record.id, Record.owner_agency == share.from_agency)
            .values(owner_agency=share.agency_id)
            .execution_options(synchronize_session=False)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            session.rollback()
            raise SenderNoLongerOwns()
        session.refresh(record)
        _give_address(session, share, record, local_id or record.local_id, now)
        _keep_previous_owner_informed(session, share, record, now)
        _withdraw_other_transfers(session, actor, share, record, now)
    session.refresh(share)
    action = "transfer.accepted" if accept else "transfer.rejected"
    entry = decision_entry or _audit(
        session, actor, record, action, TRANSFER_PURPOSE, f"from.{share.from_agency}"
    )
    _notify(session, share.from_agency, action, share, record)
    return entry


def withdraw_transfer(
    session: Session, actor: Actor, share: RecordShare, *, reason: str | None
) -> str | None:
    """The sender takes back a transfer still pending (status ``cancelled``): a transfer the
    recipient cannot accept (consent revoked since) would otherwise block every other
    transfer of the record. Returns the audit entry id; raises :class:`ShareConflict` when
    the transfer is no longer pending (checked in the UPDATE itself)."""
    withdrawn = session.execute(
        update(RecordShare)
        .where(RecordShare.id == share.id, RecordShare.status == "pending")
        .values(
            status="cancelled",
            decided_at=utcnow(),
            decided_by=actor.agency_id,
            decision_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )
    if not withdrawn.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        current = session.get(RecordShare, share.id, populate_existing=True)
        raise ShareConflict("transfer already decided", current.status if current else None)
    session.refresh(share)
    record = session.get_one(Record, share.record_id)
    entry = _audit(
        session, actor, record, "transfer.withdrawn", TRANSFER_PURPOSE, f"to.{share.agency_id}"
    )
    _notify(session, share.agency_id, "transfer.withdrawn", share, record)
    return entry


def _withdraw_other_transfers(
    session: Session, actor: Actor, accepted: RecordShare, record: Record, now: datetime
) -> None:
    """Other transfers of the record still pending could never be accepted now (their sender
    no longer holds it) and would stand in the way of the new owner's: each is withdrawn as its
    sender would withdraw it, audited, and its recipient told (the outbox withholds that from
    one that never got the request). Only transfers made before creation took the record's
    turn can be left: one at a time is pending otherwise."""
    others = session.scalars(
        select(RecordShare.id).where(
            RecordShare.record_id == record.id,
            RecordShare.kind == "transfer",
            RecordShare.status == "pending",
            RecordShare.id != accepted.id,
        )
    ).all()
    for other_id in others:
        withdrawn = session.execute(
            update(RecordShare)
            .where(RecordShare.id == other_id, RecordShare.status == "pending")
            .values(
                status="cancelled",
                decided_at=now,
                decided_by=actor.agency_id,
                decision_reason=(
                    f"Se aceptó otra transferencia del expediente ({accepted.id}). / "
                    f"Another transfer of the record was accepted ({accepted.id})."
                ),
            )
            .execution_options(synchronize_session=False)
        )
        if not withdrawn.rowcount:  # type: ignore[attr-defined]
            continue  # its sender withdrew it meanwhile
        other = session.get_one(RecordShare, other_id, populate_existing=True)
        _audit(
            session,
            actor,
            record,
            "transfer.withdrawn",
            TRANSFER_PURPOSE,
            f"superseded.to.{other.agency_id}",
        )
        _notify(session, other.agency_id, "transfer.withdrawn", other, record)


def _hold_agency(session: Session, agency_id: str) -> None:
    """PostgreSQL: lock the agency's row until the transaction ends (SQLite ignores it: its one
    write lock, held from the transaction's first write, already keeps pushes out)."""
    from exchange.agencies import Agency

    session.execute(select(Agency.id).where(Agency.id == agency_id).with_for_update())


def _give_address(
    session: Session, transfer: RecordShare, record: Record, local_id: str, now: datetime
) -> None:
    """Let the recipient push ``record`` under ``local_id`` (unless that already names it)."""
    named = record_named(session, transfer.agency_id, local_id)
    if named == record.id:
        return  # the recipient created it, or had it before, under this local id
    if named is not None:
        session.rollback()
        raise LocalIdTaken(local_id)
    session.add(
        RecordAddress(
            agency_id=transfer.agency_id,
            local_id=local_id,
            record_id=record.id,
            transfer_id=transfer.id,
            created_at=now,
        )
    )


def _keep_previous_owner_informed(
    session: Session, transfer: RecordShare, record: Record, now: datetime
) -> None:
    """The previous owner keeps a referral of the case it handed over (continuity of care);
    reads through it are decided by the consent engine like any referral's.

    The hub makes it, as part of the acceptance: the entry names the hub as the actor, as the
    deliveries it decides again do (:meth:`Actor.hub`) — not the new owner, who referred
    nothing — and carries no decision, since no engine decided anything here (each read
    through the referral is decided and audited when it happens). The reason code
    (``continuity.to.<previous owner>``) and the request id tie it to the acceptance's
    ``transfer_accepted`` entry."""
    continuity = RecordShare(
        id=new_share_id(),
        record_id=record.id,
        from_agency=transfer.agency_id,
        agency_id=transfer.from_agency,
        kind="referral",
        status="accepted",
        purpose=TRANSFER_PURPOSE,
        categories=list(data_categories()),
        reason=f"continuity after transfer {transfer.id}",
        created_at=now,
    )
    session.add(continuity)
    record_event(
        session,
        action="record.referred",
        outcome="success",
        # No agency or person: the log names the hub itself (its HUB_ID), as a system.
        actor_role=Actor.hub().audit_role,
        target_agency=transfer.from_agency,
        purpose=TRANSFER_PURPOSE,
        child_id=current_child_id(session, record.child_id),
        record_id=record.id,
        record_version=record.latest_version,
        detail=f"continuity.to.{transfer.from_agency}",
    )


#: The notice that tells a share's recipient of it (:func:`_notify`), by kind of share.
ANNOUNCING_NOTICES = {"referral": "record.referred", "transfer": "transfer.requested"}
#: The status in which a share gives its recipient something, by kind: a referral in force, a
#: transfer it may still accept.
IN_FORCE = {"referral": "accepted", "transfer": "pending"}
#: What the sender reads (``decision_reason``) of a share that ended because its notice was
#: withheld before it reached the recipient (:func:`end_untold_share`), by kind.
UNTOLD_REASONS = {
    "referral": (
        "Se retuvo el aviso de la canalización: el consentimiento ya no la permitía cuando iba "
        "a enviarse, y la agencia destinataria no recibió nada. La canalización terminó; puede "
        "canalizar de nuevo el expediente cuando un consentimiento lo permita. / "
        "The referral's notice was withheld: consent no longer permitted it when it was due to "
        "go out, and the recipient received nothing. The referral has ended; you may refer the "
        "record again once a consent permits it."
    ),
    "transfer": (
        "Se retuvo el aviso de la transferencia: el consentimiento ya no la permitía cuando iba "
        "a enviarse, y la agencia destinataria no recibió nada. La transferencia terminó sin "
        "entregarse; puede pedir otra cuando un consentimiento lo permita. / "
        "The transfer's request was withheld: consent no longer permitted it when it was due to "
        "go out, and the recipient received nothing. The transfer has ended undelivered; you may "
        "ask for another once a consent permits it."
    ),
}


def end_untold_share(session: Session, notice: OutboxMessage) -> RecordShare | None:
    """End the share ``notice`` announced, now that the notice was withheld (in ``session``'s
    transaction, the caller's, which wrote that and commits), when its recipient was never told
    of it; returns the share it ended.

    A share whose announcing notice was withheld before it could reach the recipient gave the
    recipient nothing (:func:`told_shares`), and it must not stand in the way of making it again:
    left in force, a referral would refuse a new referral of the record to that agency for that
    purpose, and a transfer every other transfer of the record, with nothing that could ever
    tell the recipient (a withheld notice is withheld for good). So it ends — ``cancelled``, no
    agency named as having decided it (the hub did), and a written reason for the sender
    (:data:`UNTOLD_REASONS`) — and the end is audited as the hub's (``record.referred`` or
    ``record.transferred``, outcome ``failure``, the recipient as target, reason code
    ``notice_withheld``; the decision that withheld the notice has its own entry). The
    recipient is told nothing: it never heard of the share.

    Nothing ends unless the share is still in force (a referral ``accepted``, a transfer
    ``pending``: checked in the UPDATE itself, so a transfer answered or withdrawn meanwhile
    stays as it is), every notice announcing it is withheld and none may have reached the
    recipient (:func:`exchange.outbox.may_have_reached`), and the recipient did not answer it
    itself. The only reason a notice of a share in force is withheld is consent: a transfer's
    request withheld as no longer pending belongs to a transfer already ended."""
    share_id = (notice.payload or {}).get("share_id")
    share = session.get(RecordShare, share_id) if isinstance(share_id, str) else None
    if (
        share is None
        or notice.agency_id != share.agency_id
        or notice.kind != ANNOUNCING_NOTICES.get(share.kind)
        or share.decided_by == share.agency_id
    ):
        return None
    # Columns, as stored now: the notice's outcome was written by an UPDATE in this transaction.
    announcing = session.execute(
        select(OutboxMessage.status, OutboxMessage.maybe_reached).where(
            OutboxMessage.agency_id == share.agency_id,
            OutboxMessage.kind == notice.kind,
            OutboxMessage.payload["share_id"].as_string() == share.id,
        )
    ).all()
    if not announcing or any(
        row.status != "withheld" or may_have_reached(row) for row in announcing
    ):
        return None
    ended = session.execute(
        update(RecordShare)
        .where(RecordShare.id == share.id, RecordShare.status == IN_FORCE[share.kind])
        .values(
            status="cancelled",
            decided_at=utcnow(),
            decided_by=None,
            decision_reason=UNTOLD_REASONS[share.kind],
        )
        .execution_options(synchronize_session=False)
    )
    if not ended.rowcount:  # type: ignore[attr-defined]
        return None
    session.refresh(share)
    record = session.get_one(Record, share.record_id)
    record_event(
        session,
        action="record.referred" if share.kind == "referral" else "record.transferred",
        outcome="failure",
        # No agency or person: the log names the hub itself, which withheld the notice.
        actor_role=Actor.hub().audit_role,
        target_agency=share.agency_id,
        purpose=share.purpose or TRANSFER_PURPOSE,
        child_id=current_child_id(session, record.child_id),
        record_id=record.id,
        record_version=record.latest_version,
        detail="notice_withheld",
    )
    return share


def told_shares(session: Session, agency_id: str, shares: Iterable[RecordShare]) -> set[str]:
    """The ids of those of ``shares`` received by ``agency_id`` that it was told of — what its
    view of shares (``GET /v1/shares``, a transfer it answers) shows, and what makes it know
    the record (a refusal it gets is ``403``, not the ``404`` of a record that does not
    exist). The rule is the one the outbox and ``GET /v1/notifications`` apply to the share's
    announcing notice (``record.referred``, ``transfer.requested``):

    * told when the notice was delivered, or may have reached it (handed out, or tried by an
      attempt that did not certainly send nothing — a refused connection sends nothing, a
      timeout may have: as a withdrawal of a transfer is announced only to a recipient the
      request may have reached, :func:`exchange.outbox.may_have_reached`), or is still queued
      for ``puente worker`` (``pending``, or ``failed`` and due again), which decides it on its
      turn (its webhook may be called before the outcome is written: the agency's system may
      answer the transfer at once);
    * a notice kept for the agency to read (``held``, no webhook) and never handed out, or
      dead without ever reaching it but still the agency's to read (its receiver down longer
      than the attempts lasted, the agency disabled meanwhile:
      :func:`exchange.outbox.dead_but_readable`), is decided now, as reading it with
      ``GET /v1/notifications`` would decide it (:func:`exchange.outbox_reading.withholding_reason`,
      audited): permitted, it is handed out (an attempt is counted, so a later withdrawal is
      announced); refused, it is ``withheld`` for good;
    * not told when the notice was withheld, or refused by the agency's receiver, before it
      may have reached the agency: consent no longer permitted it (the share then ended:
      :func:`end_untold_share`), or the transfer was no longer pending (withdrawn by its
      sender, or by the acceptance of another transfer of the record) when its turn came.
      That agency was told
      nothing of the child (docs/consent.md §8.7), so its view must not tell it either: not
      the share, not its record id, not the sender's written reason, and refusals about the
      record answer it as if no such record existed (§8.4).

    A share the agency answered itself (accepted or rejected) is told, whatever became of the
    notice (answered before its turn, it is withheld as no longer pending). A share announced
    by no notice is told: the referral the previous owner keeps after a transfer
    (:func:`_keep_previous_owner_informed`) goes to the agency that held the record, and rows
    older than their notices have none.

    The sender's view is not filtered: it wrote the share and held the record, so it learns
    nothing from it, and it needs the share whatever its recipient heard — a transfer still
    pending blocks every other transfer of the record until its sender withdraws it.

    Writes (held notices handed out or withheld, their decisions' audit entries) go into
    ``session``'s transaction; the caller commits."""
    received = [share for share in shares if share.agency_id == agency_id]
    notices = _announcing_notices(session, agency_id, received)
    return {
        share.id for share in received if _told(session, agency_id, share, notices.get(share.id))
    }


def _announcing_notices(
    session: Session, agency_id: str, shares: Sequence[RecordShare]
) -> dict[str, list[OutboxMessage]]:
    """The notices to ``agency_id`` announcing each of ``shares``, by share id."""
    if not shares:
        return {}
    share_id = OutboxMessage.payload["share_id"].as_string()
    found: dict[str, list[OutboxMessage]] = {}
    for notice in session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.agency_id == agency_id,
            OutboxMessage.kind.in_(sorted(set(ANNOUNCING_NOTICES.values()))),
            share_id.in_(sorted({share.id for share in shares})),
        )
        .order_by(OutboxMessage.seq)
    ):
        found.setdefault(str((notice.payload or {}).get("share_id")), []).append(notice)
    return found


def _told(
    session: Session,
    agency_id: str,
    share: RecordShare,
    notices: list[OutboxMessage] | None,
) -> bool:
    """Whether ``agency_id``, the share's recipient, was told of it (:func:`told_shares`)."""
    if share.agency_id != agency_id:
        return False
    if share.decided_by == agency_id:
        return True  # it answered it
    announcing = [n for n in notices or () if n.kind == ANNOUNCING_NOTICES.get(share.kind)]
    if not announcing:
        return True
    if any(notice.status in DUE_STATUSES or may_have_reached(notice) for notice in announcing):
        return True
    # Handed out now, as GET /v1/notifications hands a held notice, or one dead but still the
    # agency's to read, out.
    return any(
        ((notice.status == "held" and notice.attempts == 0) or dead_but_readable(notice))
        and hand_out(session, notice)
        for notice in announcing
    )


#: What a share's sender is shown of the notice that announces it to the recipient (``notice``
#: in its ``GET /v1/shares``), best first: of several notices, the best speaks.
NOTICE_STATES = ("delivered", "pending", "failing", "dead", "withheld")


def notice_state(notice: OutboxMessage) -> str:
    """Where the notice announcing a share stands, for its sender: ``delivered`` (delivered, or
    handed out: the recipient read it or was shown the share), ``pending`` (queued for
    ``puente worker``, or kept for a recipient without webhook to read), ``failing`` (tried,
    and to be tried again), ``dead`` (given up: the recipient may still read it, unless its
    receiver refused it), ``withheld`` (never to be sent: consent no longer permitted it, or
    the transfer was no longer pending)."""
    if notice.status == "delivered" or notice.delivered_at is not None:
        return "delivered"
    if notice.status in ("pending", "held"):
        return "pending"
    if notice.status == "failed":
        return "failing"
    return "dead" if notice.status == "dead" else "withheld"


def notice_states(session: Session, shares: Iterable[RecordShare]) -> dict[str, str | None]:
    """For each of ``shares`` (by id), where the notice announcing it to its recipient stands
    (:func:`notice_state`), or ``None`` when no notice announces it (the referral the previous
    owner keeps after a transfer, rows older than their notices). Reads only: nothing is handed
    out."""
    shares = list(shares)
    states: dict[str, str | None] = {share.id: None for share in shares}
    if not shares:
        return states
    recipients = {
        share.id: (share.agency_id, ANNOUNCING_NOTICES.get(share.kind)) for share in shares
    }
    share_id = OutboxMessage.payload["share_id"].as_string()
    for notice in session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.kind.in_(sorted(set(ANNOUNCING_NOTICES.values()))),
            share_id.in_(sorted(states)),
        )
    ):
        shared = str((notice.payload or {}).get("share_id"))
        if recipients.get(shared) != (notice.agency_id, notice.kind):
            continue
        state = notice_state(notice)
        known = states[shared]
        if known is None or NOTICE_STATES.index(state) < NOTICE_STATES.index(known):
            states[shared] = state
    return states


def shares_of(
    session: Session,
    agency_id: str,
    *,
    role: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[RecordShare]:
    """Shares the agency sent (``role="sent"``), received (``"received"``) or either, newest
    first: of those it received, only those it was told of (:func:`told_shares`; a held
    notice is handed out only for a share listed). Writes as :func:`told_shares` does; the
    caller commits."""
    query = select(RecordShare).order_by(RecordShare.created_at.desc(), RecordShare.id)
    if role == "sent":
        query = query.where(RecordShare.from_agency == agency_id)
    elif role == "received":
        query = query.where(RecordShare.agency_id == agency_id)
    else:
        query = query.where(
            (RecordShare.from_agency == agency_id) | (RecordShare.agency_id == agency_id)
        )
    if kind:
        query = query.where(RecordShare.kind == kind)
    if status:
        query = query.where(RecordShare.status == status)
    listed: list[RecordShare] = []
    offset = 0
    while len(listed) < limit:
        page = list(session.scalars(query.offset(offset).limit(limit)))
        received = [share for share in page if share.from_agency != agency_id]
        notices = _announcing_notices(session, agency_id, received)
        for share in page:
            # In order, and no further than the list goes: a held notice is handed out only
            # for a share the agency is shown.
            if share.from_agency == agency_id or _told(
                session, agency_id, share, notices.get(share.id)
            ):
                listed.append(share)
                if len(listed) == limit:
                    break
        if len(page) < limit:
            break
        offset += limit
    return listed


# --- audit and notification ----------------------------------------------------------------


def _audit(
    session: Session, actor: Actor, record: Record, action: str, purpose: str, detail: str
) -> str | None:
    # A referral or transfer request is the owner's own decision to disclose; the recipient's
    # answer to a transfer is not a disclosure and carries no decision.
    basis = "originating_agency" if action in ("record.referred", "record.transferred") else None
    return record_event(
        session,
        decision_basis=basis,
        action=action,
        outcome="success",
        actor_agency=actor.agency_id,
        actor_person=actor.person_id,
        # As the accept's decision entry names it: ``system`` for an agency's own system, a
        # person's role for a person.
        actor_role=actor.audit_role,
        purpose=purpose,
        child_id=current_child_id(session, record.child_id),
        record_id=record.id,
        record_version=record.latest_version,
        detail=detail,
    )


def notification(event: str, share: RecordShare, record: Record, child_id: str) -> dict[str, Any]:
    """What the agency is told: identifiers and codes only, never case content; it reads
    the record through the API, where the access rules apply.

    ``record_url`` names the purpose the share was made for (a transfer and the referral
    left after it: ``case_management``): a read must say why it is made, and that is the
    purpose the share lets its recipient read under, so the address works as given. (Purpose
    codes are ``[a-z_]`` words from the shared schema: nothing to escape.)"""
    base = str(current_app.config.get("PUBLIC_URL", "")).rstrip("/")
    purpose = share.purpose or TRANSFER_PURPOSE
    return {
        "event": event,
        "share_id": share.id,
        "kind": share.kind,
        "status": share.status,
        "record_id": record.id,
        "record_version": record.latest_version,
        "child_id": child_id,
        "purpose": share.purpose,
        "categories": list(share.categories or []),
        "from": share.from_agency,
        "to": share.agency_id,
        "occurred_at": utcnow().isoformat(),
        "record_url": f"{base}/v1/records/{record.id}?purpose={purpose}",
    }


def _notify(
    session: Session, agency_id: str, event: str, share: RecordShare, record: Record
) -> None:
    from exchange.agencies import Agency

    agency = session.get(Agency, agency_id)
    if agency is None:
        return
    child_id = current_child_id(session, record.child_id)
    # An agency with no webhook or file drop reads it with GET /v1/notifications (held).
    enqueue(
        session,
        agency_id,
        event,
        notification(event, share, record, child_id),
        held=not agency.webhook_url,
    )
