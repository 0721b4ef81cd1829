"""API blueprint: reading case records for a purpose, each read decided by the consent engine.

Reads need ``records:read`` and a ``purpose``. Every read is a decision (permit or deny)
written to the audit log; the answer holds only the fields of the permitted categories and
names the withheld ones, and ``Puente-Decision`` carries the decision id.

A denied read answers ``403 consent-denied`` with the reasons only to a caller that already
knows of the record (it was referred or transferred to it and told so, or it asked for access
to the child); anyone else gets the same ``404`` as for a record that does not exist, so the
API never says whether a record exists. A referral or transfer whose notice was withheld
before it reached its recipient (consent revoked meanwhile, the transfer withdrawn first) told
it nothing of the child, and counts for nothing here (:func:`records_held`).

Permitted or refused, a reader is told only the reasons that tell them nothing about the child
they may not know (:func:`decision_for_reader`): a withhold entry is never told to the reader
it names; a rule that applies because the child seeks asylum or comes from the reader's country
only to those acting for the child; an objection or an emergency override's ground also to the
agencies holding the record. Every refused category but those a told hard rule or objection
refuses — a consent's deny, nothing permitting, a reason not told — is refused by one plain
"nothing in force permits you this" reason (:func:`told_decision`), so a refusal for a hidden
reason reads like any other. A referral adds to what a read permission gives, never narrows it
(:func:`referred_to`). The audit log keeps every decision whole.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import bindparam, select, true
from sqlalchemy.orm import Session

from consent import ALL_CATEGORIES, Reason
from consent.messages import default_deny
from consent.vocabulary import ALL_CATEGORIES_MASK, categories_of, mask_of
from exchange import db
from exchange.auth import Actor, as_utc, current_actor, require_scope
from exchange.consent_store import AccessRequestRow
from exchange.consents import acts_for_child
from exchange.disclosure import (
    ChildContext,
    Disclosure,
    body_of,
    decide_disclosure,
    hard_rules,
    load_child,
    redact,
    told_explanation,
)
from exchange.httpbasics import FHIR_JSON, query_parameters, wants_fhir
from exchange.problems import Problem, localized
from exchange.records import (
    Record,
    RecordAddress,
    describe_record,
    describe_version,
    list_versions,
)
from exchange.sharing import purpose_codes, told_shares

bp = Blueprint("record_reads", __name__)

DECISION_HEADER = "Puente-Decision"
#: Bases whose reasons tell a requester nothing about the child.
OPEN_BASES = ("default_deny", "consent", "grant")


def read_purpose() -> str:
    """The ``purpose`` query parameter: no purpose, no data; one purpose per read (a repeated
    one is refused rather than one of them picked: each read is decided for one purpose)."""
    given = request.args.getlist("purpose")
    if len(given) > 1:
        message = (
            "Indique una sola finalidad (?purpose=…); se recibieron "
            f"{len(given)}: {', '.join(given)}.",
            f"State one purpose (?purpose=…); got {len(given)}: {', '.join(given)}.",
        )
        raise Problem(
            "validation",
            message,
            errors=[{"pointer": "", "parameter": "purpose", "message": localized(*message)}],
        )
    value = given[0] if given else None
    if value in purpose_codes():
        return value  # type: ignore[return-value]
    known = ", ".join(purpose_codes())
    if not value:
        message = (
            f"Indique la finalidad de la consulta (?purpose=…): {known}.",
            f"State the purpose of the read (?purpose=…): {known}.",
        )
    else:
        message = (
            f"Finalidad desconocida «{value}»; las finalidades son: {known}.",
            f"Unknown purpose '{value}'; the purposes are: {known}.",
        )
    raise Problem(
        "validation",
        message,
        errors=[{"pointer": "", "parameter": "purpose", "message": localized(*message)}],
    )


def answer_refusals_in_even_time(response: Response) -> Response:
    """A record the caller may not know of and one that does not exist answer alike (404), and
    a child with nothing the caller may read answers like an unknown child (an empty list):
    their time must not differ either. Deciding and auditing the refused read of a record that
    exists costs milliseconds that an unknown id does not, so every such answer takes at least
    ``READ_REFUSAL_FLOOR`` seconds from the request's start. Also the sharing routes' 404s: a
    referral or transfer of a record the caller does not own is decided and audited too."""
    if response.status_code == 404 or g.get("nothing_read", False):
        _wait_out_refusal_floor()
    return response


def answer_in_even_time(response: Response) -> Response:
    """Every answer of the route takes at least ``READ_REFUSAL_FLOOR`` seconds, found or not:
    a child search (weighing children the caller may not know of costs time that a search
    matching nobody does not) and an access request (one about a child the hub holds costs
    time that one about an unknown id does not); the difference would tell such children
    exist."""
    _wait_out_refusal_floor()
    return response


def _wait_out_refusal_floor() -> None:
    floor = float(current_app.config.get("READ_REFUSAL_FLOOR") or 0)
    if floor and "started" in g:
        time.sleep(max(0.0, g.started + floor - time.perf_counter()))


bp.after_request(answer_refusals_in_even_time)


def not_found() -> Problem:
    # The same answer whether the record does not exist or the caller may not know of it.
    return Problem(
        "not-found",
        (
            "No existe ese expediente o no tiene acceso a él.",
            "There is no such record, or you have no access to it.",
        ),
    )


def consent_denied(disclosure: Disclosure, told: dict[str, Any] | None = None) -> Problem:
    """``403 consent-denied`` with the decision: ``told`` when the caller hears only part of
    it (:func:`decision_for_reader`), else whole."""
    told = decision_json(disclosure) if told is None else told
    return Problem(
        "consent-denied",
        (
            "La decisión de consentimiento no permite esta divulgación. "
            + told_explanation(told, "es"),
            "The consent decision does not permit this disclosure. " + told_explanation(told, "en"),
        ),
        decision=told,
        headers={DECISION_HEADER: disclosure.decision_id},
    )


def decision_json(disclosure: Disclosure) -> dict[str, Any]:
    return {"id": disclosure.decision_id, **disclosure.decision.to_json()}


#: How a reader stands to the child, from who is told least to who is told most.
OUTSIDER, HOLDER, ACTS_FOR_CHILD = "outsider", "holder", "acts_for_child"


def reader_standing(session: Session, actor: Actor, record: Record, child: ChildContext) -> str:
    """:data:`ACTS_FOR_CHILD` (a consent authority for the child), :data:`HOLDER` (the
    caller's agency owns the record, or holds a referral or a transfer of it, taken or still
    offered, that it was told of), or :data:`OUTSIDER` (a requester, a grantee; an agency that
    refused the record's transfer, or whose offer was withdrawn: it knows the record exists,
    and holds nothing)."""
    if actor.audit_client is not None:
        # An agency of a peer hub (exchange.federation) never acts for this hub's child nor
        # holds its records here, whatever kind and jurisdiction its hub says it has.
        return OUTSIDER
    if acts_for_child(session, actor, child):
        return ACTS_FOR_CHILD
    if records_held(session, actor, [record]):
        return HOLDER
    return OUTSIDER


def told_to(reason: Reason, standing: str) -> bool:
    """Whether a reader of ``standing`` is told ``reason``. Reasons resting on a consent, a
    grant or nothing permitting (:data:`OPEN_BASES`), and hard rules that look only at who
    asks and why, are told to anyone. A withhold entry is told to nobody it applies to: the
    reader is the one it names. A rule that applies because the child seeks asylum or comes
    from the reader's country only to those acting for the child (a consulate holding a
    referral must not learn of an asylum claim from it). An objection (and the day the
    adolescent was heard) or an emergency override's ground also to the agencies holding the
    record."""
    if reason.code in OPEN_BASES:
        return True
    if reason.code == "withhold":
        return False
    if reason.code == "hard_rule":
        return not _about_the_child(reason) or standing == ACTS_FOR_CHILD
    return standing != OUTSIDER


def _about_the_child(reason: Reason) -> bool:
    """A hard rule that applies because the child seeks asylum or comes from the reader's
    country (or one no longer known): told only to those acting for the child."""
    if reason.code != "hard_rule":
        return False
    rule = next((rule for rule in hard_rules() if rule.id == reason.ref), None)
    return rule is None or bool(
        rule.child_international_protection or rule.actor_from_country_of_origin
    )


#: Steps whose refusals a reader is told as such, when it may hear them (:func:`told_to`).
#: Every other refusal — a consent's deny, nothing permitting, a reason not told — is told as
#: the one plain "nothing in force permits you this request" (:func:`told_decision`).
_TOLD_REFUSALS = ("hard_rule", "objection")


def decision_for_reader(
    session: Session,
    actor: Actor,
    record: Record,
    child: ChildContext,
    disclosure: Disclosure,
    purpose: str,
) -> dict[str, Any]:
    """The decision as ``actor`` is told it (:func:`told_decision`). The audit log keeps the
    decision whole."""
    reasons = disclosure.decision.reasons
    # Open reasons are told to anyone: how the reader stands matters only for the others.
    open_only = all(reason.code in OPEN_BASES for reason in reasons)
    if open_only:
        return told_decision(decision_json(disclosure), reasons, OUTSIDER, purpose)
    from exchange.consents.hidden import entries_naming_caller_in

    if _owner_told_alike(actor, record, reasons):
        standing = HOLDER
    else:
        standing = reader_standing(session, actor, record, child)
    # An objection about the reader's own agency does not exist for it (docs/consent.md §8).
    hidden = entries_naming_caller_in(session, actor, child)
    return told_decision(decision_json(disclosure), reasons, standing, purpose, hidden=hidden)


def _owner_told_alike(actor: Actor, record: Record, reasons: Iterable[Reason]) -> bool:
    """Whether ``actor`` is told ``reasons`` as a holder without asking whether it also acts
    for the child: it owns the record (so it holds it, :func:`records_held`), and no reason is
    one told to those acting for the child alone (:func:`told_to`). Whether it acts for the
    child costs a query, on every read by an owner (a permit by ``originating_agency``)."""
    return (
        actor.audit_client is None
        and actor.agency_id is not None
        and actor.agency_id == record.owner_agency
        and not any(_about_the_child(reason) for reason in reasons)
    )


def told_decision(
    whole: dict[str, Any],
    reasons: Iterable[Reason],
    standing: Any,
    purpose: str,
    *,
    hidden: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``whole`` (a decision as JSON, with its ``reasons``) as a reader of ``standing`` is told
    it: the result, the permitted and withheld categories and the id always; the permit
    reasons it may hear (:func:`told_to`), the refusals by a hard rule or an objection it may
    hear, and every other refused category — refused by a consent, by nothing permitting, or
    for a reason it may not hear — in one plain "nothing in force permits you this request"
    reason; the ids of the reasons told.

    Why one reason for all the rest: a refusal for a hidden reason (a withhold entry naming
    the reader) takes categories before the consent step, so that step's reasons would no
    longer name them, and a plain refusal beside a consent's base decision that speaks to the
    reader would show that something hidden came first. Told this way, a refusal for a hidden
    reason and one by a consent's deny read alike, and what is hidden leaves no mark.
    Also what a legal representative is told of the decision on an access request
    (exchange.api.consents). ``hidden``: ids of withhold entries and objections that name the
    reader's agency, never told whatever its standing."""
    shown: list[Reason] = []
    plain = 0
    for reason in reasons:
        told = told_to(reason, standing) and reason.ref not in hidden
        if reason.result == "deny" and not (told and reason.code in _TOLD_REFUSALS):
            plain |= mask_of(reason.categories)
        elif told:
            shown.append(reason)
    # A category a told reason already refuses needs no second reason: adding one would show
    # that something else refused it too (an asylum rule beside a rule about who asks).
    for reason in shown:
        if reason.result == "deny":
            plain &= ~mask_of(reason.categories)
    if plain:
        shown.append(default_deny(purpose, plain))
    told = {**whole, "reasons": [reason.to_json() for reason in shown]}
    if whole.get("result") == "deny":
        told["basis"] = next(
            (
                code
                for code in _TOLD_REFUSALS
                if any(r.code == code and r.result == "deny" for r in shown)
            ),
            "default_deny",
        )
    refs = {reason.ref for reason in shown}
    for key in ("consent_ids", "grant_ids", "rule_ids", "override_ids", "withhold_ids", "view_ids"):
        kept = [ref for ref in whole.get(key, ()) if ref in refs]
        if kept:
            told[key] = kept
        else:
            told.pop(key, None)
    return told


# -- what a read carries out -------------------------------------------------------------------


def referred_to(
    session: Session, agency_id: str | None, record: Record, purpose: str
) -> frozenset[str]:
    """The categories the accepted referrals of ``record`` to ``agency_id`` for ``purpose``
    named (every category when one named none): a read by that agency is permitted for these
    as the referral is decided again (``refer``), and for the rest as consent lets it read
    (:func:`exchange.disclosure.evaluate_read`). A referral adds to what a read permission
    gives, never narrows it; one for another purpose says nothing here."""
    if agency_id is None or agency_id == record.owner_agency:
        return frozenset()
    referred = (
        session.connection()
        .execute(
            _referral_statement(),
            {"record_id": record.id, "agency_id": agency_id, "purpose": purpose},
        )
        .scalars()
        .all()
    )
    if not referred:
        return frozenset()
    if not all(referred):
        return ALL_CATEGORIES
    return frozenset(category for categories in referred for category in categories)


@functools.cache
def _referral_statement() -> Any:
    # Built once: it runs on every read by an agency that does not own the record. Only a
    # referral its recipient was told of counts (exchange.sharing.told_shares): one whose notice
    # consent withheld told the agency nothing, and permits nothing even once a new consent
    # would permit the referral again. The told condition runs for the few referral rows of
    # this one record only.
    from exchange.child_search import told_to_recipient
    from exchange.sharing import RecordShare

    return select(RecordShare.categories).where(
        RecordShare.record_id == bindparam("record_id"),
        RecordShare.agency_id == bindparam("agency_id"),
        RecordShare.kind == "referral",
        RecordShare.status == "accepted",
        RecordShare.purpose == bindparam("purpose"),
        told_to_recipient(),
    )


#: Shares through which the receiving agency holds a record: a referral, a transfer it took
#: or is being offered. A transfer it refused, or the sender withdrew, gives it nothing.
HOLDING_SHARE_STATES = ("accepted", "pending")


def records_held(
    session: Session, actor: Actor, records: Iterable[Record], *, offered_too: bool = False
) -> set[str]:
    """The ids of ``records`` the caller's agency holds — it owns them, or they were referred
    or transferred to it (:data:`HOLDING_SHARE_STATES`) and it was told so — and so already
    knows exist (one query for any number of records, and one more when it received shares of
    them). ``offered_too``: also records it was offered and refused, or whose offer was
    withdrawn — it knows they exist, but holds nothing of them.

    A share counts only once its recipient was told of it
    (:func:`exchange.sharing.told_shares`): one whose notice was withheld before it reached
    the agency (consent revoked meanwhile, the transfer withdrawn before its turn) told it
    nothing of the child (docs/consent.md §8.7), so a refusal must answer it as if no such
    record existed (§8.4), as ``GET /v1/shares`` and the transfer routes do.

    A notice kept for the agency to read (``held``) and never handed out is decided here as
    ``GET /v1/notifications`` would decide it, and that decision is audited in ``session``'s
    transaction (the caller commits): a ``403`` with the reasons, or a holder's reasons in a
    read, tells the agency it holds the share, so the hub must count the notice as handed out
    — a later withdrawal or revocation is then announced to it, and every route answers it
    alike (the list, the transfer routes and a referral of the record decide it the same
    way). Not deciding it would have to answer ``404`` until the agency read its
    notifications. The usual case costs what it did: an owner, or a reader holding no share of
    the record, runs no more queries; a recipient runs one more (its notices of the shares) and
    decides nothing once its notice was delivered or handed out. Reads ask this only to refuse
    or to choose which reasons to tell (:func:`reader_standing`), not on every permitted read."""
    from exchange.sharing import RecordShare

    if actor.agency_id is None:
        return set()
    records = list(records)
    held = {record.id for record in records if record.owner_agency == actor.agency_id}
    others = sorted({record.id for record in records} - held)
    if others:
        shares = session.scalars(
            select(RecordShare).where(
                RecordShare.record_id.in_(others),
                RecordShare.agency_id == actor.agency_id,
                true() if offered_too else RecordShare.status.in_(HOLDING_SHARE_STATES),
            )
        ).all()
        if shares:
            told = told_shares(session, actor.agency_id, shares)
            held.update(share.record_id for share in shares if share.id in told)
    return held


def knows_of(session: Session, actor: Actor, record: Record, child: ChildContext) -> str | None:
    """How ``actor`` already knows the record exists: ``"record"`` when its agency owns it or
    was referred or transferred it and told so (:func:`records_held`), ``"request"`` when an
    access request of the caller's about the child was granted or decided by an officer; None
    when it does not.

    A pending request, or one denied at once, proves nothing: it is taken about any id, issued
    or not (:func:`exchange.consents.access.child_asked_about`). Counting it would let a caller
    holding a record id file a request about a guessed child id and learn from 403 rather
    than 404 whether the record is that child's."""
    if records_held(session, actor, [record], offered_too=True):
        return "record"
    asked = select(AccessRequestRow.id).where(
        AccessRequestRow.child_id.in_(child.family),
        (AccessRequestRow.status == "granted") | AccessRequestRow.decided_by.is_not(None),
    )
    if actor.person_id is not None:
        asked = asked.where(AccessRequestRow.requester_person == actor.person_id)
    elif actor.agency_id is not None:
        asked = asked.where(
            AccessRequestRow.requester_agency == actor.agency_id,
            AccessRequestRow.requester_person.is_(None),
        )
    return "request" if session.scalars(asked.limit(1)).first() is not None else None


def referred_by_basis(
    session: Session, actor: Actor, record: Record, purpose: str
) -> frozenset[str]:
    """What referrals give ``actor`` of ``record`` for ``purpose``: an agency of this hub, its
    referrals here (:func:`referred_to`); an agency of a peer hub asking through it, only the
    referrals made to it on that hub's behalf (``exchange.federation_referrals``) — never a
    local referral, whatever id it bears."""
    if actor.audit_client is None:
        return referred_to(session, actor.agency_id, record, purpose)
    from exchange.federation_referrals import peer_referred_to

    return peer_referred_to(session, actor, record, purpose)


def decide_read(
    session: Session,
    actor: Actor,
    record: Record,
    purpose: str,
    audit_action: str,
    child: ChildContext | None = None,
    **audit_fields: Any,
) -> Disclosure:
    child = child or load_child(session, record.child_id)
    return decide_disclosure(
        session,
        actor,
        child,
        action="read",
        purpose=purpose,
        audit_action=audit_action,
        record=record,
        referred=referred_by_basis(session, actor, record, purpose),
        **audit_fields,
    )


def refuse(
    session: Session, actor: Actor, record: Record, disclosure: Disclosure, purpose: str
) -> Problem:
    """Commit the denied decision's audit entry and say no, as :mod:`this module <.>` explains.
    What telling the caller decides (a held notice of a share of the record, :func:`records_held`)
    is committed with it."""
    child = load_child(session, record.child_id)
    known = knows_of(session, actor, record, child)
    told = (
        None
        if known is None
        else decision_for_reader(session, actor, record, child, disclosure, purpose)
    )
    session.commit()
    if told is None:
        return not_found()
    return consent_denied(disclosure, told)


def _answered(
    answer: dict[str, Any], decision_ids: list[str], records: list[dict[str, Any]] | None = None
) -> Any:
    """``answer`` as JSON; or, given ``records`` (the route was asked for FHIR: see
    :func:`wants_fhir`, called before the read so that a format it cannot answer is refused
    before anything is read), those read answers — already cut to what the reader may see — as
    the FHIR R5 Bundle ``puente export --adapter fhir`` writes for them."""
    response = _fhir_bundle(records) if records is not None else jsonify(answer)
    if decision_ids:
        response.headers[DECISION_HEADER] = ", ".join(decision_ids)
    return response


def _fhir_bundle(records: list[dict[str, Any]]) -> Response:
    # Imported when asked for: the FHIR adapter loads fhir.resources' models.
    from adapters.errors import AdapterError
    from adapters.fhir import FhirAdapter
    from exchange.exporter import envelope_of

    bundle = io.BytesIO()
    try:
        FhirAdapter().encode((envelope_of(answer) for answer in records), bundle)
    except AdapterError as error:  # a record of a schema FHIR has no form for
        raise Problem(
            "not-acceptable",
            (error.message_es, error.message_en),
            status=406,
        ) from error
    return Response(bundle.getvalue(), mimetype=FHIR_JSON)


def record_json(
    session: Session, actor: Actor, record: Record, purpose: str, child: ChildContext
) -> tuple[dict[str, Any] | None, Disclosure]:
    """The latest version of ``record`` redacted to what the decision permits (``None`` when
    it permits nothing), and the decision (its audit entry is in the session)."""
    body = body_of(session, child, record)
    disclosure = decide_read(
        session,
        actor,
        record,
        purpose,
        "record.read",
        child,
        record_version=record.latest_version,
        body_sha256=body.version.body_sha256,
    )
    if not disclosure.permitted:
        return None, disclosure
    # What the decision withheld, not what was cut from this document: the difference would
    # tell the reader which categories the record does not hold.
    data, _cut = redact(record.schema_ref, body.data, disclosure.decision)
    own_id = _own_local_id(session, actor, record)
    answer = {
        **describe_record(
            record,
            child.child_id,
            permitted=envelope_permitted(actor, record, disclosure),
            local_id=own_id,
        ),
        "pushed_at": as_utc(body.version.pushed_at).isoformat(),
        "body_sha256": digest_for(disclosure, body.version.body_sha256),
        "data": data,
        "withheld_categories": list(withheld_categories(disclosure)),
        "decision": decision_for_reader(session, actor, record, child, disclosure, purpose),
    }
    if own_id is not None:
        answer["your_local_id"] = own_id
    return answer, disclosure


def envelope_permitted(
    actor: Actor, record: Record, disclosure: Disclosure
) -> frozenset[str] | None:
    """The categories under which a reader is given the record's envelope fields (its local
    id, owner, source, who pushed: :data:`exchange.records.ENVELOPE_MIRRORS`): those the
    decision permits; None — every field — for the owner agency, which knows them."""
    if actor.audit_client is None and actor.agency_id == record.owner_agency:
        return None
    return frozenset(disclosure.decision.categories)


def withheld_categories(disclosure: Disclosure) -> tuple[str, ...]:
    """Every category the reader is not given, whether or not this document holds data of
    it (the difference would tell the reader which categories the record lacks)."""
    return categories_of(ALL_CATEGORIES_MASK & ~mask_of(disclosure.decision.categories))


def digest_for(disclosure: Disclosure, body_sha256: str) -> str | None:
    """The stored version's digest, only for a reader given the whole record: with any
    category withheld, the digest of the whole body would let the reader confirm a guess of
    what was withheld (a yes/no health field) offline."""
    return None if withheld_categories(disclosure) else body_sha256


def _own_local_id(session: Session, actor: Actor, record: Record) -> str | None:
    """The case id under which the reading agency's system pushes ``record``, when it took the
    record over by a transfer under an id of its own (the record's ``local_id`` stays its
    creator's): what it should push, and what ``puente export`` writes for it."""
    if actor.person_id is not None or actor.agency_id is None:
        return None
    own = session.scalar(
        select(RecordAddress.local_id).where(
            RecordAddress.agency_id == actor.agency_id, RecordAddress.record_id == record.id
        )
    )
    return own if own is not None and own != record.local_id else None


@bp.get("/v1/records/<record_id>")
@require_scope("records:read")
@query_parameters("purpose", "format")
def read_record(record_id: str) -> Any:
    as_fhir = wants_fhir()
    purpose = read_purpose()
    session, actor = db.session(), current_actor()
    record = session.get(Record, record_id)
    if record is None:
        raise not_found()
    child = load_child(session, record.child_id)
    answer, disclosure = record_json(session, actor, record, purpose, child)
    if answer is None:
        raise refuse(session, actor, record, disclosure, purpose)
    session.commit()
    return _answered(answer, [disclosure.decision_id], [answer] if as_fhir else None)


@bp.get("/v1/records/<record_id>/versions")
@require_scope("records:read")
@query_parameters("purpose")
def record_versions(record_id: str) -> Any:
    purpose = read_purpose()
    session, actor = db.session(), current_actor()
    record = session.get(Record, record_id)
    if record is None:
        raise not_found()
    disclosure = decide_read(session, actor, record, purpose, "record.versions_listed")
    if not disclosure.permitted:
        raise refuse(session, actor, record, disclosure, purpose)
    child = load_child(session, record.child_id)
    permitted = envelope_permitted(actor, record, disclosure)
    versions = [
        {**described, "body_sha256": digest_for(disclosure, described["body_sha256"])}
        for described in (
            describe_version(version, permitted=permitted)
            for version in list_versions(session, record)
        )
    ]
    answer = {"record_id": record.id, "child_id": child.child_id, "versions": versions}
    session.commit()
    return _answered(answer, [disclosure.decision_id])


@bp.get("/v1/children/<child_id>/records")
@require_scope("records:read")
@query_parameters("purpose", "format")
def child_records(child_id: str) -> Any:
    as_fhir = wants_fhir()
    purpose = read_purpose()
    session, actor = db.session(), current_actor()
    # Follows merges both ways: the child this id now is, and every child merged into it.
    # A child with nothing the caller may read answers an empty list, never 404, so the
    # answer does not say whether the child exists. Every record is decided (and audited).
    try:
        child = load_child(session, child_id)
    except LookupError:
        g.nothing_read = True
        return _answered({"child_id": child_id, "records": []}, [], [] if as_fhir else None)
    reads = [record_json(session, actor, record, purpose, child) for record in child.records]
    session.commit()
    records = [answer for answer, _ in reads if answer is not None]
    g.nothing_read = not records
    # The child the id is now (after a merge), as every record in the answer says; to a
    # caller who may read none of them, the id asked for, which tells nothing.
    answer = {"child_id": child.child_id if records else child_id, "records": records}
    decisions = [disclosure.decision_id for answer, disclosure in reads if answer]
    return _answered(answer, decisions, records if as_fhir else None)
