"""Referrals and transfers between agencies of this hub (rules in :mod:`exchange.sharing`).

``POST /v1/records/{id}/referrals`` and ``/transfers`` (the owner agency), ``POST
/v1/transfers/{id}/accept`` (optionally naming the ``local_id`` the recipient will push the
record under) and ``/reject`` (the recipient), ``GET /v1/shares`` (what an agency sent or
received — how an agency without a webhook learns of a pending transfer).

A record the caller may not read answers 404 exactly like a record that does not exist, so
these routes reveal nothing about records the caller does not know. A recipient knows of a
share, and so of its record, only once it was told of it
(:func:`exchange.sharing.told_shares`): a share whose notice was withheld before it reached
the recipient is not listed to it, and a transfer of it, or the record, answers the recipient
404 as if neither existed. The sender's view is whole: it made the share.

``GET /v1/shares`` shows the sender of each share where the notice announcing it to the
recipient stands (``notice``: :func:`exchange.sharing.notice_states`). It is not audited as a
read of case data: it gives the two parties of each share what the hub told them — the
identifiers its notices carry, which ``GET /v1/notifications`` hands out unaudited too — and
the written reasons they gave each other; no record content passes here (reading the record
is decided and audited). What it decides is audited as that route audits it: a held notice it
hands out (or a dead one still the recipient's to read) is decided again for its recipient
(:func:`exchange.outbox_reading.withholding_reason`), and the decision is an entry.

Creating a share and accepting a transfer first take the record's turn
(:func:`exchange.sharing.hold_record`): two at once are decided one after the other, so a
record never has two pending transfers nor two referrals to one agency for one purpose.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import ALL_CATEGORIES
from exchange import db
from exchange.agencies import Agency
from exchange.api.record_reads import (
    answer_refusals_in_even_time,
    consent_denied,
    decision_for_reader,
)
from exchange.audit_log import record_event
from exchange.auth import Actor, as_utc, current_actor, require_any_scope, require_scope
from exchange.disclosure import (
    Disclosure,
    decide_disclosure,
    load_child,
    whole_record_detail,
)
from exchange.federation_referrals import (
    open_referral,
    peer_for_recipient,
    peer_notice_states,
    refer_to_peer,
    referrals_sent,
)
from exchange.httpbasics import check_against, int_query, query_parameters, require_json
from exchange.outbox_reading import readable_notifications
from exchange.peers import Peer, unreachable_reason
from exchange.problems import Problem, localized
from exchange.records import Record, current_child_id, record_named
from exchange.sharing import (
    KINDS,
    STATUSES,
    TRANSFER_PURPOSE,
    LocalIdTaken,
    RecordShare,
    SenderNoLongerOwns,
    ShareConflict,
    decide_transfer,
    hold_record,
    notice_states,
    pending_transfer,
    refer,
    request_transfer,
    shares_of,
    told_shares,
    withdraw_transfer,
)
from schemas.envelope import ENVELOPE_SCHEMA

bp = Blueprint("sharing", __name__)
# Whether a record exists must not show in how long its refusal takes (as for reads).
bp.after_request(answer_refusals_in_even_time)

COMMON = "https://schemas.puente.mx/common/1#/$defs/"
MAX_SHARES_LISTED = 500


def _reason(es: str, en: str) -> dict[str, Any]:
    return {
        "x-title": {"es": es, "en": en},
        "type": "string",
        "minLength": 1,
        "maxLength": 1000,
        "pattern": r"\S",
    }


_TO = {"$ref": COMMON + "agency_id", "x-title": {"es": "Agencia destinataria", "en": "Recipient"}}

#: Request bodies (also in openapi/sharing.yaml); titles name the fields in messages.
REFERRAL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.puente.mx/api/referral/1",
    "x-title": {"es": "Canalización", "en": "Referral"},
    "type": "object",
    "additionalProperties": False,
    "required": ["to", "purpose", "categories"],
    "properties": {
        "to": _TO,
        "purpose": {"$ref": COMMON + "purpose", "x-title": {"es": "Finalidad", "en": "Purpose"}},
        "categories": {
            "x-title": {"es": "Categorías de datos", "en": "Data categories"},
            "type": "array",
            "items": {"$ref": COMMON + "data_category"},
            "minItems": 1,
            "uniqueItems": True,
        },
    },
}
TRANSFER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.puente.mx/api/transfer/1",
    "x-title": {"es": "Transferencia", "en": "Transfer"},
    "type": "object",
    "additionalProperties": False,
    "required": ["to", "reason"],
    "properties": {"to": _TO, "reason": _reason("Motivo", "Written reason")},
}
DECISION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.puente.mx/api/transfer-decision/1",
    "x-title": {"es": "Respuesta a la transferencia", "en": "Transfer decision"},
    "type": "object",
    "additionalProperties": False,
    "properties": {"reason": _reason("Motivo", "Written reason")},
}
#: Accepting may also name the recipient's own case id for the record (pushed as ``local_id``).
ACCEPTANCE_SCHEMA: dict[str, Any] = {
    **DECISION_SCHEMA,
    "$id": "https://schemas.puente.mx/api/transfer-acceptance/1",
    "x-title": {"es": "Aceptación de la transferencia", "en": "Transfer acceptance"},
    "properties": {
        **DECISION_SCHEMA["properties"],
        "local_id": ENVELOPE_SCHEMA["properties"]["local_id"],
    },
}


def _validated(schema: dict[str, Any], body: Any) -> dict[str, Any]:
    check_against(schema, body)
    return body  # type: ignore[no-any-return]


def _record_not_found() -> Problem:
    # Word for word what the records routes answer: whether the record does not exist or the
    # caller may not read it, nobody can tell.
    return Problem(
        "not-found",
        (
            "No existe ese expediente o no tiene acceso a él.",
            "There is no such record, or you have no access to it.",
        ),
    )


def _owned_record(actor: Actor, record_id: str, action: str, purpose: str) -> Record:
    """The record, if the caller is responsible for it, held until the request's transaction
    ends (:func:`~exchange.sharing.hold_record`: what the caller checks next is still true
    when it writes); 404 if it does not know of it (no existence oracle), 403 if it was
    referred the record but does not own it. Refusals are audited, and let the record go."""
    session = db.session()
    # Held before it is read: the owner read here is still the owner when the share is
    # written (an accept of a transfer of it waits, or went first and moved it).
    hold_record(session, record_id)
    record = session.get(Record, record_id)
    if record is None:
        session.rollback()  # not held through the even-time wait of a 404
        raise _record_not_found()
    if record.owner_agency == actor.agency_id:
        return record
    # Knowing the record takes a share of it the caller was told of: not one whose notice was
    # withheld before it reached it (it was told nothing of the child).
    shared = actor.agency_id is not None and bool(
        told_shares(
            session,
            actor.agency_id,
            session.scalars(
                select(RecordShare).where(
                    RecordShare.record_id == record.id, RecordShare.agency_id == actor.agency_id
                )
            ).all(),
        )
    )
    record_event(
        session,
        action=action,
        outcome="denied",
        actor_agency=actor.agency_id,
        actor_person=actor.person_id,
        purpose=purpose,
        child_id=current_child_id(session, record.child_id),
        record_id=record.id,
        decision_basis="default_deny",
        detail="not_owner",
    )
    session.commit()
    if not shared:
        raise _record_not_found()
    raise Problem(
        "forbidden",
        (
            "Solo la agencia responsable del expediente puede canalizarlo o transferirlo.",
            "Only the agency responsible for the record may refer or transfer it.",
        ),
    )


def _decided(
    actor: Actor,
    record: Record,
    *,
    to: str,
    action: str,
    purpose: str,
    audit_action: str,
    categories: Any = None,
    detail: str,
    remember: bool = True,
    recipient_hub: str | None = None,
) -> Disclosure:
    """The consent decision for the recipient; refused decisions are committed and answered
    ``403 consent-denied`` with the reasons (the caller owns the record: it knows it exists).
    ``remember``: note the consents that permitted it as disclosed to the recipient
    (:func:`~exchange.disclosure.decide_disclosure`). ``recipient_hub``: the recipient is an
    agency of that peer hub, known here by its id only."""
    session = db.session()
    child = load_child(session, record.child_id)
    disclosure = decide_disclosure(
        session,
        actor,
        child,
        action=action,
        purpose=purpose,
        audit_action=audit_action,
        categories=categories or ALL_CATEGORIES,
        record=record,
        recipient=to,
        all_or_nothing=action == "transfer",
        record_version=record.latest_version,
        detail=detail,
        remember=remember,
        recipient_hub=recipient_hub,
    )
    if not disclosure.permitted:
        session.commit()
        told = None
        if actor.agency_id == to:
            # The recipient accepting a transfer hears only the reasons a reader of the record
            # may hear: not, say, that a withhold entry names it.
            told = decision_for_reader(session, actor, record, child, disclosure, purpose)
        problem = consent_denied(disclosure, told)
        if not disclosure.complete:
            # A transfer takes every category or none: say so, with what was withheld and
            # what alone was covered (the decision is the transfer's deny, as audited).
            problem.detail = whole_record_detail(disclosure, told)
            problem.extra["decision"] = {
                **problem.extra["decision"],
                "needs_every_category": True,
                "covered": list(disclosure.covered or ()),
            }
            problem.extra["withheld_categories"] = list(disclosure.decision.withheld)
        raise problem
    return disclosure


def _check_recipient(record: Record, to: str, *, kind: str = "transfer") -> Peer | None:
    """Refuse a recipient that cannot take a ``kind`` share (400 at ``/to``). Returns the
    peer hub of a referral's recipient that is another hub's agency (None for one of this
    hub's): its hub must be pinned, active and reachable."""
    session = db.session()
    recipient = session.get(Agency, to)
    peer = peer_for_recipient(session, to) if recipient is None else None
    if peer is not None and kind == "referral":
        unreachable = unreachable_reason(peer)
        if unreachable is None:
            return peer
        # Disabled, or no URL to announce it at: nothing would ever reach the agency.
        message = localized(
            f"La agencia {to} es de otro nodo, {peer.hub_id}, al que no se puede canalizar "
            f"ahora: {unreachable[0]}",
            f"The agency {to} belongs to another hub, {peer.hub_id}, to which nothing can be "
            f"referred now: {unreachable[1]}",
        )
    elif peer is not None:
        # Not a mistyped agency of this hub: one a pinned peer hub speaks for, and
        # responsibility for a case does not move between hubs yet (transfer envelopes are
        # not built); a referral does.
        message = localized(
            f"La agencia {to} es del nodo {peer.hub_id}; aún no se pueden transferir "
            "expedientes a otro nodo, pero sí canalizarlos (POST /v1/records/{id}/referrals): "
            "esa agencia lo lee desde su nodo, según el consentimiento.",
            f"The agency {to} belongs to the hub {peer.hub_id}; records cannot be transferred "
            "to another hub yet, but they can be referred (POST /v1/records/{id}/referrals): "
            "that agency reads it from its own hub, as consent allows.",
        )
    elif recipient is None or not recipient.active:
        message = localized(
            f"No hay una agencia activa registrada con el id {to}.",
            f"There is no active registered agency {to}.",
        )
    elif to == record.owner_agency:
        message = localized(
            "La agencia destinataria es la responsable del expediente.",
            "The recipient is the agency responsible for the record.",
        )
    else:
        return None
    raise Problem(
        "validation",
        ("Destinatario no válido.", "Invalid recipient."),
        errors=[{"pointer": "/to", "message": message}],
    )


def _created(share: RecordShare, audit_entry: str | None) -> Any:
    return jsonify({**share.to_json(), "audit_entry": audit_entry}), 201


@bp.post("/v1/records/<record_id>/referrals")
@require_scope("records:write")
def create_referral(record_id: str) -> Any:
    body = _validated(REFERRAL_SCHEMA, require_json())
    actor = current_actor()
    session = db.session()
    record = _owned_record(actor, record_id, "record.referred", body["purpose"])
    peer = _check_recipient(record, body["to"], kind="referral")
    if peer is not None:
        return _refer_to_peer(actor, record, peer, body)
    existing = session.scalars(
        select(RecordShare.id).where(
            RecordShare.record_id == record.id,
            RecordShare.agency_id == body["to"],
            RecordShare.kind == "referral",
            RecordShare.status == "accepted",
            RecordShare.purpose == body["purpose"],
        )
    ).first()
    if existing:
        raise _already_referred(existing)
    disclosure = _decided(
        actor,
        record,
        to=body["to"],
        action="refer",
        purpose=body["purpose"],
        audit_action="record.referred",
        categories=body["categories"],
        detail=f"to.{body['to']}",
    )
    share, entry = refer(
        session,
        actor,
        record,
        to=body["to"],
        purpose=body["purpose"],
        categories=list(disclosure.decision.categories),
        decision_entry=disclosure.decision_id,
    )
    session.commit()
    # The categories asked for that the decision withheld: the referral carries only the rest,
    # and the sender must not believe the recipient got them (the owner hears the decision
    # whole, as when the referral is refused).
    withheld = list(disclosure.decision.withheld)
    answer = {**share.to_json(), "audit_entry": entry, "withheld_categories": withheld}
    return jsonify(answer), 201


def _already_referred(share_id: str) -> Problem:
    return Problem(
        "conflict",
        (
            "El expediente ya está canalizado a esa agencia para esa finalidad.",
            "The record is already referred to that agency for that purpose.",
        ),
        share_id=share_id,
    )


def _refer_to_peer(actor: Actor, record: Record, peer: Peer, body: dict[str, Any]) -> Any:
    """A referral to an agency of ``peer`` (:mod:`exchange.federation_referrals`): decided for
    the recipient as a local referral is, by its id alone, audited with its hub as the
    target, kept, and queued for the peer hub."""
    session = db.session()
    to, purpose = body["to"], body["purpose"]
    existing = open_referral(session, record.id, to, peer.hub_id, purpose)
    if existing:
        raise _already_referred(existing)
    disclosure = _decided(
        actor,
        record,
        to=to,
        action="refer",
        purpose=purpose,
        audit_action="record.referred",
        categories=body["categories"],
        detail=f"to.{to}",
        recipient_hub=peer.hub_id,
    )
    referral = refer_to_peer(
        session,
        record,
        peer,
        to=to,
        purpose=purpose,
        categories=list(disclosure.decision.categories),
    )
    session.commit()
    answer = {
        **referral.to_json(),
        "audit_entry": disclosure.decision_id,
        "withheld_categories": list(disclosure.decision.withheld),
    }
    return jsonify(answer), 201


@bp.post("/v1/records/<record_id>/transfers")
@require_scope("records:write")
def create_transfer(record_id: str) -> Any:
    body = _validated(TRANSFER_SCHEMA, require_json())
    actor = current_actor()
    session = db.session()
    record = _owned_record(actor, record_id, "record.transferred", TRANSFER_PURPOSE)
    _check_recipient(record, body["to"])
    pending = pending_transfer(session, record.id)
    if pending is not None:
        raise Problem(
            "conflict",
            (
                "El expediente ya tiene una transferencia pendiente.",
                "The record already has a pending transfer.",
            ),
            share_id=pending.id,
        )
    # Asking discloses nothing yet: the recipient learns of the child when the request reaches
    # it (exchange.disclosure.decide_delivery) or it accepts, and only then is told of a
    # revocation of the consent.
    disclosure = _decided(
        actor,
        record,
        to=body["to"],
        action="transfer",
        purpose=TRANSFER_PURPOSE,
        audit_action="record.transferred",
        detail=f"to.{body['to']}",
        remember=False,
    )
    share, entry = request_transfer(
        session,
        actor,
        record,
        to=body["to"],
        reason=body["reason"],
        decision_entry=disclosure.decision_id,
    )
    session.commit()
    return _created(share, entry)


def _transfer_seen_by(session: Session, actor: Actor, share_id: str) -> RecordShare:
    """The transfer ``share_id`` if the caller's agency sent it, or received it and was told
    of it (:func:`~exchange.sharing.told_shares`); otherwise the answer of a transfer that does
    not exist. What deciding a held notice wrote is committed here, before the transfer's
    record is held: the decision stands whatever the caller asks next."""
    share = session.get(RecordShare, share_id)
    involved = False
    if share is not None and share.kind == "transfer" and actor.agency_id is not None:
        involved = actor.agency_id == share.from_agency
        if not involved and actor.agency_id == share.agency_id:
            involved = share.id in told_shares(session, actor.agency_id, [share])
            session.commit()
    if share is None or share.kind != "transfer" or not involved:
        raise Problem(
            "not-found",
            (f"No existe la transferencia {share_id}.", f"There is no transfer {share_id}."),
        )
    return share


#: A share's status as a Spanish sentence says it.
_STATUS_ES = {
    "pending": "pendiente",
    "accepted": "aceptada",
    "rejected": "rechazada",
    "cancelled": "retirada",
}


def _no_longer_pending(share_id: str, conflict: ShareConflict) -> Problem:
    if isinstance(conflict, SenderNoLongerOwns):
        return Problem(
            "conflict",
            (
                "La agencia que ofreció la transferencia ya no es la responsable del "
                "expediente (se aceptó otra transferencia): esta ya no puede aceptarse.",
                "The agency that offered the transfer is no longer responsible for the record "
                "(another transfer of it was accepted): this one can no longer be accepted.",
            ),
            share_id=share_id,
            share_status=conflict.status,
        )
    status_es = _STATUS_ES.get(conflict.status, conflict.status)
    return Problem(
        "conflict",
        (
            f"La transferencia ya no está pendiente: fue {status_es} ({conflict.status}).",
            f"The transfer is no longer pending ({conflict.status}).",
        ),
        share_id=share_id,
        share_status=conflict.status,
    )


def _transfer_for(
    share_id: str,
    schema: dict[str, Any],
    *,
    party: Literal["recipient", "sender"],
    refusal: tuple[str, str],
) -> tuple[dict[str, Any], Actor, Session, RecordShare]:
    """The optional body (checked against ``schema`` before anything is looked up), the caller,
    the session and the transfer ``share_id``, which only its ``party`` may act on: 404 if the
    caller's agency neither sent nor received it, ``403 forbidden`` saying ``refusal`` if it is
    the other party."""
    body: dict[str, Any] = {}
    if request.content_length:
        body = _validated(schema, require_json())
    actor = current_actor()
    session = db.session()
    share = _transfer_seen_by(session, actor, share_id)
    acting_agency = share.agency_id if party == "recipient" else share.from_agency
    if actor.agency_id != acting_agency:
        raise Problem("forbidden", refusal)
    return body, actor, session, share


def _decide(share_id: str, accept: bool) -> Any:
    body, actor, session, share = _transfer_for(
        share_id,
        ACCEPTANCE_SCHEMA if accept else DECISION_SCHEMA,
        party="recipient",
        refusal=(
            "Solo la agencia destinataria puede aceptar o rechazar la transferencia.",
            "Only the recipient agency may accept or reject the transfer.",
        ),
    )
    reason = body.get("reason")
    decision_entry = None
    local_id = None
    if accept:
        # One accept of the record at a time, and none while a share of it is being created;
        # then the transfer as it is now (another request may have decided it meanwhile).
        hold_record(session, share.record_id)
        session.refresh(share)
    if accept and share.status == "pending":
        record = session.get_one(Record, share.record_id)
        local_id = body.get("local_id") or record.local_id
        # Checked before the consent decision, which is recorded: a refused local id leaves
        # nothing behind. (decide_transfer checks again, holding off the recipient's pushes.)
        if record_named(session, share.agency_id, local_id) not in (None, record.id):
            raise _local_id_taken(share_id, local_id)
        # Decided again when the data actually moves: a revocation since the request stops it.
        decision_entry = _decided(
            actor,
            record,
            to=share.agency_id,
            action="transfer",
            purpose=TRANSFER_PURPOSE,
            audit_action="transfer.accepted",
            detail=f"from.{share.from_agency}",
        ).decision_id
    try:
        if share.status != "pending":
            raise ShareConflict("already decided", share.status)
        entry = decide_transfer(
            session,
            actor,
            share,
            accept=accept,
            reason=reason,
            decision_entry=decision_entry,
            local_id=local_id,
        )
    except ShareConflict as conflict:
        raise _no_longer_pending(share_id, conflict) from conflict
    except LocalIdTaken as taken:
        raise _local_id_taken(share_id, taken.local_id) from taken
    session.commit()
    answer = {**share.to_json(), "audit_entry": entry}
    if accept:
        # The recipient's pushes with this local id now add versions to the record.
        answer["local_id"] = local_id
    return jsonify(answer)


def _local_id_taken(share_id: str, local_id: str) -> Problem:
    message = (
        f"Su institución ya tiene otro expediente con el identificador local «{local_id}». "
        "Acepte la transferencia indicando en «local_id» el identificador con el que su "
        "sistema llevará este expediente; la transferencia sigue pendiente.",
        f"Your agency already has another record with the local id '{local_id}'. Accept the "
        "transfer giving in 'local_id' the id your system will keep this record under; the "
        "transfer is still pending.",
    )
    return Problem(
        "conflict",
        message,
        share_id=share_id,
        share_status="pending",
        errors=[{"pointer": "/local_id", "message": localized(*message)}],
    )


@bp.post("/v1/transfers/<share_id>/accept")
@require_scope("records:write")
def accept_transfer(share_id: str) -> Any:
    return _decide(share_id, accept=True)


@bp.post("/v1/transfers/<share_id>/reject")
@require_scope("records:write")
def reject_transfer(share_id: str) -> Any:
    return _decide(share_id, accept=False)


@bp.post("/v1/transfers/<share_id>/withdraw")
@require_scope("records:write")
def withdraw_transfer_route(share_id: str) -> Any:
    """The sender takes back its pending transfer (the recipient is told)."""
    body, actor, session, share = _transfer_for(
        share_id,
        DECISION_SCHEMA,
        party="sender",
        refusal=(
            "Solo la agencia que pidió la transferencia puede retirarla.",
            "Only the agency that asked for the transfer may withdraw it.",
        ),
    )
    try:
        entry = withdraw_transfer(session, actor, share, reason=body.get("reason"))
    except ShareConflict as conflict:
        raise _no_longer_pending(share_id, conflict) from conflict
    session.commit()
    return jsonify({**share.to_json(), "audit_entry": entry})


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is not None and value not in allowed:
        raise Problem(
            "validation",
            (f"Valor no válido para «{name}».", f"Invalid value for '{name}'."),
            errors=[
                {
                    "pointer": f"/{name}",
                    "message": localized(
                        f"Use uno de: {', '.join(allowed)}.", f"Use one of: {', '.join(allowed)}."
                    ),
                }
            ],
        )
    return value


@bp.get("/v1/notifications")
@require_any_scope("records:read", "federation")
@query_parameters("limit", "after")
def list_notifications() -> Any:
    """The caller's agency's notifications (referrals, transfers, revoked consents): those it
    was sent, those held for it to read (an agency without a webhook reads them only here),
    and those that died while its receiver was down or it was disabled (nothing is lost: it
    catches up here), each held or dead one decided again as the worker decides before sending
    (:func:`exchange.outbox_reading.readable_notifications`): none that consent or a transfer's news
    no longer allows. ``after``: the last id it has seen. ``records:read``, as for
    ``GET /v1/shares``: they tell what the agency received (a referral, a transfer, data a
    consent no longer covers), and the held ones, the only notices an agency without a
    webhook gets, go to agencies that read under a consent. Or ``federation``: an agency that
    reads only through other hubs (docs/federation.md §2) is told here that a consent it read
    under was revoked, and must be able to read that."""
    actor = current_actor()
    if actor.agency_id is None or actor.person_id is not None:
        return jsonify(notifications=[], next_after=None)
    limit = int_query("limit", minimum=1, maximum=500, default=100)
    session = db.session()
    try:
        found = readable_notifications(
            session, actor.agency_id, after=request.args.get("after"), limit=limit
        )
    except LookupError:
        message = (
            "«after» no es una notificación suya.",
            "'after' is not one of your notifications.",
        )
        raise Problem(
            "validation",
            message,
            # The query parameter's pointer, as int_query gives ``limit``'s; ``parameter``
            # stays for clients that read it.
            errors=[
                {"pointer": "/query/after", "parameter": "after", "message": localized(*message)}
            ],
        ) from None
    listed = [
        {
            "id": message.id,
            "event": message.kind,
            "created_at": as_utc(message.created_at).isoformat(),
            "payload": message.payload,
        }
        for message in found
    ]
    session.commit()  # the decisions' audit entries, and what was withheld
    return jsonify(
        notifications=listed, next_after=listed[-1]["id"] if len(listed) == limit else None
    )


@bp.get("/v1/shares")
@require_scope("records:read")
@query_parameters("role", "kind", "status", "limit")
def list_shares() -> Any:
    actor = current_actor()
    role = _choice("role", ("sent", "received"))
    kind = _choice("kind", KINDS)
    status = _choice("status", STATUSES)
    limit = int_query("limit", minimum=1, maximum=MAX_SHARES_LISTED, default=100)
    if actor.agency_id is None:
        return jsonify(shares=[])
    session = db.session()
    # Of the shares it received, only those it was told of (exchange.sharing.told_shares).
    shares = shares_of(
        session,
        actor.agency_id,
        role=role,
        kind=kind,
        status=status,
        limit=limit,
    )
    # The sender is shown where each share's notice to the recipient stands (``notice``):
    # not told yet while it is pending, failing or dead. Read after the recipient's shares are
    # decided above, in the same transaction.
    states = notice_states(session, [s for s in shares if s.from_agency == actor.agency_id])
    listed = [
        {**share.to_json(), "notice": states[share.id]} if share.id in states else share.to_json()
        for share in shares
    ]
    if role != "received" and kind in (None, "referral") and status in (None, *PEER_STATUSES):
        listed = _with_peer_referrals(session, actor.agency_id, listed, status, limit)
    session.commit()  # held notices handed out or withheld, and their decisions' entries
    return jsonify(shares=listed)


#: The statuses a referral to a peer hub's agency may have.
PEER_STATUSES = ("accepted", "cancelled")


def _with_peer_referrals(
    session: Session, agency_id: str, listed: list[dict[str, Any]], status: str | None, limit: int
) -> list[dict[str, Any]]:
    """``listed`` with the referrals the agency made to peer hubs' agencies, newest first as
    the rest, no more than ``limit`` in all: each names its ``hub``, and its ``notice`` says
    whether that hub took it (``delivered``) or not yet."""
    sent = referrals_sent(session, agency_id, status=status, limit=limit)
    if not sent:
        return listed
    states = peer_notice_states(session, sent)
    merged = listed + [{**referral.to_json(), "notice": states[referral.id]} for referral in sent]
    merged.sort(key=lambda share: (share["created_at"], share["id"]), reverse=True)
    return merged[:limit]
