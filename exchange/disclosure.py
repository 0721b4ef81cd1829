"""Every disclosure of a child's data goes through here: decided, audited, redacted.

Record reads, child record lists, referrals, transfers and outbox deliveries call
:func:`decide_disclosure`, which gathers what the engine weighs (the child's consents, grants,
views, overrides and the facts the child's records state), asks :func:`consent.decide`, and
writes the decision to the audit log in the caller's transaction — permit or deny, with its
basis and the ids it rests on. The audit entry's id is the decision id (``Puente-Decision``).

Consents that permitted something are remembered per receiving agency
(:class:`~exchange.consent_store.ConsentDisclosure`), so a revocation can tell every agency
that received data under the consent — and only those: an agency is remembered when something
about the child may have reached it (it reads or finds the child; it accepts a transfer; the
notice of a referral or a transfer request may have reached it — sent, or handed out by
``GET /v1/notifications`` or by a route that shows it the share — which the outbox message
itself records, :func:`decide_delivery`), not when a referral is made or a transfer asked
for. One rule for both kinds of share (:func:`decide_disclosure`): a referral whose notice was
withheld before it went out (consent revoked meanwhile), like a transfer withdrawn before its
request went out, told the recipient nothing (docs/consent.md §8.7), and a revocation must not
be the first it hears of the child.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context
from sqlalchemy import bindparam, event, func, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import consent
from consent import ALL_CATEGORIES, ChildFacts, ConsentSet, Decision, Request, RuleSet
from exchange.audit_log import record_event
from exchange.auth import PEER_CLIENT_PREFIX, Actor, engine_actor
from exchange.children import merged_child_ids
from exchange.config import SettingError, resolve_instance_file
from exchange.consent_store import (
    ChildInputs,
    ChildViewRow,
    ConsentDisclosure,
    ConsentRow,
    GrantRow,
    OutboxDisclosure,
    OverrideRow,
    WithholdRow,
    child_inputs,
)
from exchange.crypto import DataKeyring, data_keyring
from exchange.records import (
    Record,
    RecordBody,
    latest_bodies,
    latest_body,
    records_of_children,
)
from exchange.sharing import RecordShare
from schemas.registry import default_registry


@dataclass(frozen=True)
class Disclosure:
    """A decision and the audit entry that records it (its id is the decision id)."""

    decision: Decision
    decision_id: str
    #: Set when an action that needs every category (a transfer) was refused because the
    #: engine withheld some: the categories it did cover, which alone do not allow the action.
    #: ``decision`` is then the action's verdict (:func:`whole_record_verdict`), not the
    #: engine's per-category answer.
    covered: tuple[str, ...] | None = None

    @property
    def complete(self) -> bool:
        """False when an all-or-nothing action was refused for want of some categories."""
        return self.covered is None

    @property
    def permitted(self) -> bool:
        return self.decision.permitted


# -- what the engine needs ---------------------------------------------------------------------


def hard_rules() -> RuleSet:
    """The shipped hard legal rules, plus the hub's own from ``CONSENT_RULES_FILE``."""
    if not has_app_context():
        return consent.DEFAULT_RULE_SET
    setting = current_app.config.get("CONSENT_RULES_FILE")
    if not setting:
        return consent.DEFAULT_RULE_SET
    return _rules_from_file(str(resolve_instance_file(Path(current_app.instance_path), setting)))


def check_rules_file(app: Flask) -> None:
    """Read ``CONSENT_RULES_FILE`` now, at start, so that a file that is missing or malformed
    stops the hub with a :class:`~exchange.config.SettingError` rather than failing every
    decision later (closed, but as 500s, with /readyz saying ready)."""
    setting = app.config.get("CONSENT_RULES_FILE")
    if not setting:
        return
    path = resolve_instance_file(Path(app.instance_path), setting)
    try:
        _rules_from_file(str(path))
    except OSError as error:
        cause_es = cause_en = error.strerror or type(error).__name__
    except json.JSONDecodeError as error:
        cause_es = f"no es JSON (línea {error.lineno}, columna {error.colno})"
        cause_en = f"not JSON (line {error.lineno}, column {error.colno})"
    except consent.ConsentError as error:
        at = f" ({error.pointer})" if error.pointer else ""
        cause_es, cause_en = error.message_es + at, error.message_en + at
    except ValueError:  # not a list of rules
        cause_es = "se esperaba una lista JSON de reglas"
        cause_en = "expected a JSON list of rules"
    else:
        return
    raise SettingError(
        f"PUENTE_CONSENT_RULES_FILE = {setting}: no se pueden usar las reglas de {path}: "
        f"{cause_es}. El formato está en docs/consent.md §4.",
        f"PUENTE_CONSENT_RULES_FILE = {setting}: the rules in {path} cannot be used: "
        f"{cause_en}. The format is in docs/consent.md §4.",
    )


@functools.cache
def _rules_from_file(path: str) -> RuleSet:
    documents = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(documents, list):
        raise ValueError(f"{path}: expected a JSON list of rules")
    extra = [consent.Rule.from_json(doc, f"/{index}") for index, doc in enumerate(documents)]
    return RuleSet((*consent.DEFAULT_RULES, *extra))


def merge_facts(child_id: str, facts: list[ChildFacts]) -> ChildFacts:
    """One child's facts from what each of its records states, newest first.

    Where records disagree the protective reading wins: the child is unaccompanied or
    separated if any record says so, seeks international protection if any record says so,
    every stated country of origin counts (the hard rules then protect against all), and the
    child is as young as any record makes them — the latest date of birth stated or estimated
    (LGDNNA art. 5 presumes the younger age while it is in doubt), so one record with an
    adult's date of birth does not end a child's consents — while rights that come with age
    go by the oldest (``earliest_date_of_birth``): an objection counts if any record makes
    the child an adolescent. Custody is the newest record's.
    """
    if not facts:
        return ChildFacts(child_id=child_id)
    order = ("unaccompanied", "separated", "accompanied", "unknown")
    accompaniment = min((f.accompaniment for f in facts), key=order.index)
    stated = [f.international_protection for f in facts if f.international_protection is not None]
    dated = [f for f in facts if f.nominal_date_of_birth is not None]
    # max() keeps the first of equals: the newest record's date when records agree.
    born = max(dated, key=lambda f: f.nominal_date_of_birth or date.min) if dated else None
    earliest = min(
        (f.nominal_date_of_birth for f in dated if f.nominal_date_of_birth), default=None
    )
    custodians = next((f.custodians for f in facts if f.custodians is not None), None)
    return ChildFacts(
        child_id=child_id,
        date_of_birth=born.date_of_birth if born else None,
        estimated_age_years=born.estimated_age_years if born else None,
        age_assessed_on=born.age_assessed_on if born else None,
        accompaniment=accompaniment,
        international_protection=any(stated) if stated else None,
        countries_of_origin=frozenset().union(*(f.countries_of_origin for f in facts)),
        custodians=custodians,
        conflict_of_interest=any(f.conflict_of_interest for f in facts),
        representing_procuradurias=frozenset().union(
            *(f.representing_procuradurias for f in facts)
        ),
        earliest_date_of_birth=(
            earliest if born is not None and earliest != born.nominal_date_of_birth else None
        ),
    )


@dataclass(frozen=True)
class ChildContext:
    """A child as the engine sees it: current id, merged family, facts, inputs, records."""

    child_id: str
    family: frozenset[str]
    facts: ChildFacts
    inputs: ChildInputs
    records: tuple[Record, ...]
    consent_set: ConsentSet
    #: The records' latest versions, decrypted, by record id, when this load decrypted them
    #: to work the facts out (not when they came from the cache): a read of one of them uses
    #: the body rather than fetching and decrypting it again (:func:`body_of`).
    bodies: Mapping[str, RecordBody] = field(default_factory=dict, compare=False, repr=False)


def body_of(session: Session, child: ChildContext, record: Record) -> RecordBody:
    """The latest version of ``record``, one of ``child``'s, as :func:`latest_body` gives it."""
    body = child.bodies.get(record.id)
    if body is not None and body.version.version == record.latest_version:
        return body
    return latest_body(session, data_keyring(), record)


@dataclass(frozen=True)
class _Known:
    """What was worked out about a child, and the stamp of the rows it was worked out from."""

    stamp: tuple[Any, ...]
    facts: ChildFacts
    inputs: ChildInputs
    consent_set: ConsentSet


#: Per process, by child id: decrypting the child's records and consents and compiling its
#: ConsentSet costs milliseconds, and is redone only when the stamp of the rows changes (a
#: push, a consent recorded or revoked, a view, an override, a grant, a review, a withhold
#: entry recorded or revoked). The stamp is read on every load, so another process's change
#: counts at once.
_KNOWN: dict[str, _Known] = {}
_KNOWN_LIMIT = 4096
_KNOWN_LOCK = threading.Lock()


#: The tables the stamp counts, in its order, with when a row was made and last changed.
_STAMPED = (
    (ConsentRow, ConsentRow.created_at, ConsentRow.revoked_at),
    (GrantRow, GrantRow.created_at, GrantRow.revoked_at),
    (ChildViewRow, ChildViewRow.created_at, ChildViewRow.reviewed_at),
    (OverrideRow, OverrideRow.starts_at, OverrideRow.reviewed_at),
    (WithholdRow, WithholdRow.recorded_at, WithholdRow.revoked_at),
)


@functools.cache
def _stamp_statement() -> Any:
    # Built once: building a statement costs more than running it (this is on every read).
    ids = bindparam("ids", expanding=True)
    return union_all(
        *(
            # count(changed) grows with every revocation or review, whatever the clocks say
            select(func.count(), func.max(made), func.max(changed), func.count(changed)).where(
                model.child_id.in_(ids)
            )
            for model, made, changed in _STAMPED
        )
    )


def _consent_stamp(session: Session, family: frozenset[str]) -> tuple[Any, ...]:
    rows = session.connection().execute(_stamp_statement(), {"ids": sorted(family)}).all()
    return tuple(tuple(row) for row in rows)


def load_child(session: Session, child_id: str, keyring: DataKeyring | None = None) -> ChildContext:
    """Everything the engine weighs about ``child_id`` (``LookupError`` for an unknown child).

    Cached for an HTTP request (a child records list decides once per record), and across
    requests by the stamp of the child's rows, so a revocation counts for the very next
    request and for the outbox worker's next delivery, in any process."""
    cache: dict[str, ChildContext] | None = (
        g.setdefault("puente_children", {}) if has_request_context() else None
    )
    if cache is not None and child_id in cache:
        return cache[child_id]
    ids = merged_child_ids(session, child_id)  # the child it now is first; LookupError if unknown
    current, family = ids[0], frozenset(ids)
    records = tuple(
        sorted(records_of_children(session, set(family)), key=lambda r: r.updated_at, reverse=True)
    )
    stamp = (
        tuple((record.id, record.latest_version) for record in records),
        _consent_stamp(session, family),
    )
    known = _KNOWN.get(current)
    bodies: Mapping[str, RecordBody] = {}
    if known is None or known.stamp != stamp:
        known, bodies = _work_out(
            session, keyring or data_keyring(), current, family, records, stamp
        )
        with _KNOWN_LOCK:
            if len(_KNOWN) >= _KNOWN_LIMIT:
                _KNOWN.pop(next(iter(_KNOWN)))
            _KNOWN[current] = known
    context = ChildContext(
        child_id=current,
        family=family,
        facts=known.facts,
        inputs=known.inputs,
        records=records,
        consent_set=known.consent_set,
        bodies=bodies,
    )
    if cache is not None:
        cache[child_id] = context
        cache[current] = context
    return context


def _work_out(
    session: Session,
    keyring: DataKeyring,
    child_id: str,
    family: frozenset[str],
    records: tuple[Record, ...],
    stamp: tuple[Any, ...],
) -> tuple[_Known, dict[str, RecordBody]]:
    """What the engine weighs about the child, and the bodies decrypted to work it out."""
    bodies = latest_bodies(session, keyring, records)
    facts = []
    for record in records:  # newest first, as merge_facts wants them
        data = bodies[record.id].data
        if isinstance(data, Mapping):
            facts.append(ChildFacts.from_record(data, child_id=child_id))
    merged = merge_facts(child_id, facts)
    # The stamp has just counted each table's rows of the family: those with none need no
    # second look.
    counted = zip((model for model, _made, _changed in _STAMPED), stamp[1], strict=True)
    empty = frozenset(model for model, row in counted if row[0] == 0)
    inputs = child_inputs(session, keyring, set(family), child_id, known_empty=empty)
    consent_set = ConsentSet((*inputs.consents, *inputs.grants), child=merged)
    return _Known(stamp, merged, inputs, consent_set), bodies


def forget_child(child_id: str) -> None:
    """Drop the request's cached view of a child after its consents or views changed."""
    if has_request_context():
        cache = g.get("puente_children") or {}
        for key, context in list(cache.items()):
            if context.child_id == child_id or key == child_id:
                del cache[key]


def evaluate(
    child: ChildContext,
    actor: consent.Actor,
    action: str,
    purpose: str,
    categories: Iterable[str] = ALL_CATEGORIES,
    *,
    owner_agency_id: str | None = None,
    record_id: str | None = None,
    now: datetime | None = None,
) -> Decision:
    """The engine's decision, nothing written (``POST /v1/decisions`` and the callers below)."""
    request = Request(
        actor=actor,
        child_id=child.child_id,
        action=action,
        purpose=purpose,
        categories=frozenset(categories),
        owner_agency_id=owner_agency_id,
        record_id=record_id,
    )
    return consent.decide(
        request,
        child.consent_set,
        child.inputs.views,
        child.inputs.overrides,
        hard_rules(),
        now or datetime.now(UTC),
        withholds=child.inputs.withholds,
    )


def evaluate_read(
    child: ChildContext,
    actor: consent.Actor,
    purpose: str,
    categories: Iterable[str] = ALL_CATEGORIES,
    *,
    referred: Iterable[str] = (),
    owner_agency_id: str | None = None,
    record_id: str | None = None,
    now: datetime | None = None,
) -> Decision:
    """A read of a record by ``actor``, who may hold live referrals of it for ``purpose``
    naming ``referred``: permitted for what a read permission gives and what the referrals
    give. The referrals' categories are decided again for the referral (``refer``: a
    revocation or an objection recorded since stops it), the rest for reading; a referral
    never narrows what consent lets the reader read. Also what ``POST /v1/decisions`` answers
    for a read of a record, so the dry run and the read agree."""
    requested = frozenset(categories)
    now = now or datetime.now(UTC)
    ask = functools.partial(evaluate, child, actor, purpose=purpose, record_id=record_id, now=now)
    through_referral = requested & frozenset(referred)
    if not through_referral:
        return ask(action="read", categories=requested, owner_agency_id=owner_agency_id)
    by_referral = ask(action="refer", categories=through_referral)
    rest = requested - frozenset(by_referral.categories)
    if not rest:
        return by_referral
    by_reading = ask(action="read", categories=rest, owner_agency_id=owner_agency_id)
    return merge_read(by_reading, by_referral, requested)


#: Bases of a permit, in the engine's order of precedence.
_PERMIT_BASES = ("originating_agency", "override", "consent", "grant")


def merge_read(by_reading: Decision, by_referral: Decision, requested: frozenset[str]) -> Decision:
    """One decision from a read's (every category the referral did not permit) and a
    referral's (what it permitted): its permit reasons, then the read's reasons, which
    explain every category refused."""
    permits = tuple(reason for reason in by_referral.reasons if reason.result == "permit")
    granted = set(by_reading.categories) | set(by_referral.categories)
    bases = {by_reading.basis if by_reading.permitted else None, by_referral.basis}
    refs = {reason.ref for reason in permits}

    def ids(key: str) -> tuple[str, ...]:
        extra = [ref for ref in getattr(by_referral, key) if ref in refs]
        return tuple(dict.fromkeys((*getattr(by_reading, key), *extra)))

    return Decision(
        "permit" if granted else "deny",
        next((basis for basis in _PERMIT_BASES if basis in bases), by_reading.basis)
        if granted
        else by_reading.basis,
        tuple(code for code in consent.CATEGORIES if code in granted),
        tuple(code for code in consent.CATEGORIES if code in requested and code not in granted),
        (*permits, *by_reading.reasons),
        ids("consent_ids"),
        ids("grant_ids"),
        by_reading.rule_ids,
        ids("override_ids"),
        by_reading.withhold_ids,
        by_reading.view_ids,
    )


# -- deciding and recording --------------------------------------------------------------------


def audit_decision(
    session: Session,
    actor: Actor,
    decision: Decision,
    *,
    audit_action: str,
    purpose: str | None,
    child_id: str,
    outcome: str | None = None,
    **fields: Any,
) -> str:
    """Write ``decision`` as an audit entry of ``audit_action`` (outcome ``denied`` when it
    denies, unless ``outcome`` says otherwise); returns the entry id."""
    return record_event(
        session,
        action=audit_action,
        outcome=outcome or ("success" if decision.permitted else "denied"),
        actor_agency=actor.agency_id,
        actor_person=actor.person_id,
        actor_role=actor.audit_role,
        actor_client=actor.audit_client,
        purpose=purpose,
        child_id=child_id,
        decision_basis=decision.basis,
        decision_result="permit" if decision.permitted else "deny",
        decision_categories=list(decision.categories),
        consent_ids=list(decision.consent_ids),
        rule_ids=list(decision.rule_ids),
        grant_ids=list(decision.grant_ids),
        override_id=decision.override_ids[0] if decision.override_ids else None,
        withhold_ids=list(decision.withhold_ids),
        view_ids=list(decision.view_ids),
        **fields,
    )


def decide_disclosure(
    session: Session,
    actor: Actor,
    child: ChildContext,
    *,
    action: str,
    purpose: str,
    audit_action: str,
    categories: Iterable[str] = ALL_CATEGORIES,
    record: Record | None = None,
    recipient: str | None = None,
    all_or_nothing: bool = False,
    referred: Iterable[str] = (),
    remember: bool = True,
    recipient_hub: str | None = None,
    **audit_fields: Any,
) -> Disclosure:
    """Decide, audit (in ``session``'s transaction) and remember consents that permitted
    (unless ``remember`` is false, or the decision is a sender's referral or transfer —
    :func:`reaches_recipient`: nothing reaches the recipient yet).

    ``actor`` is who asks; for a referral or transfer the decision is made for the recipient
    (``recipient``, an agency id) and the audit entry names the actor who sent it. With
    ``all_or_nothing`` (transfers) a decision that withholds any category refuses the action:
    the decision audited and returned is then :func:`whole_record_verdict`'s deny.
    ``referred``: for a read, the categories live referrals of the record gave the reader
    (:func:`evaluate_read`). ``recipient_hub``: the recipient is an agency of that peer hub,
    known here by its id only (:func:`exchange.federation_referrals.peer_agency_actor`); the
    audit entry names it and its hub as the target.
    """
    if recipient is None:
        engine_for = actor.for_consent()
    elif recipient_hub is not None:
        from exchange.federation_referrals import peer_agency_actor

        engine_for = peer_agency_actor(recipient)
        audit_fields = {**audit_fields, "target_agency": recipient, "target_hub": recipient_hub}
    else:
        engine_for = recipient_actor(session, recipient)
    # Reading its own record is not a disclosure for the agency's system; a person of that
    # agency (a lawyer, an officer) reads what consent, grants and overrides give them.
    # An agency of a peer hub asking through it (exchange.federation) is never the owner here,
    # whatever id it bears.
    own_system = recipient is not None or (actor.person_id is None and actor.audit_client is None)
    owner = record.owner_agency if record is not None and own_system else None
    record_id = record.id if record is not None else None
    if action == "read":
        decision = evaluate_read(
            child,
            engine_for,
            purpose,
            categories,
            referred=referred,
            owner_agency_id=owner,
            record_id=record_id,
        )
    else:
        decision = evaluate(
            child,
            engine_for,
            action,
            purpose,
            categories,
            owner_agency_id=owner,
            record_id=record_id,
        )
    covered = None
    if all_or_nothing and decision.withheld:
        # What is audited and answered is the action's verdict, so neither says "permit"
        # for a transfer that was refused.
        covered = decision.categories
        decision = whole_record_verdict(decision)
    entry = audit_decision(
        session,
        actor,
        decision,
        audit_action=audit_action,
        purpose=purpose,
        child_id=child.child_id,
        record_id=record.id if record is not None else None,
        **audit_fields,
    )
    disclosure = Disclosure(decision, entry, covered)
    receiver = recipient or actor.agency_id
    permitting = consents_that_permitted(decision)
    if recipient is not None and not reaches_recipient(actor, recipient):
        remember = False
    if remember and disclosure.permitted and permitting and receiver is not None:
        # An agency of a peer hub (a federated lookup) is told of a revocation through its hub.
        client = actor.audit_client if recipient is None else None
        peer_hub = client[len(PEER_CLIENT_PREFIX) :] if client else None
        remember_disclosure(session, permitting, receiver, peer_hub=peer_hub)
    return disclosure


def reaches_recipient(actor: Actor, recipient: str) -> bool:
    """Whether a referral or transfer decided for ``recipient`` at ``actor``'s asking may reach
    the recipient as it is decided, so that the consents permitting it may be remembered as
    disclosed to it: when the recipient acts on it itself (accepts a transfer), or when the hub
    decides its notice for delivery (``puente worker``'s turn; a held notice handed out by
    ``GET /v1/notifications`` or by a route that shows the share,
    :func:`exchange.sharing.told_shares`) — which keeps the consents with the message instead,
    counted once the message may have reached the recipient (:func:`decide_delivery`). Not
    when its sender makes it: the share is only a row until its notice goes out.

    The same rule for a referral as for a transfer. A referral is usable from the moment it is
    made, but its recipient learns of it only from its ``record.referred`` notice, and that
    notice may be withheld (consent revoked while it waits, docs/consent.md §8.7): remembered
    when made, the referral would have the revocation's own ``consent.revoked`` notice tell the
    recipient the child's id — the first it ever heard of the child. A recipient that reads
    the record, or finds the child, before the notice goes out is remembered by that read or
    search. (Skipping such recipients when the revocation is notified instead could not tell
    them apart: a remembered disclosure does not say what it came from, and the same agency
    may have read the child's records under the consent too.)"""
    return actor.agency_id == recipient or actor == Actor.hub()


def consents_that_permitted(decision: Decision) -> tuple[str, ...]:
    """The consents a permit rests on — not those that only denied a category, nor those a
    grant or override outweighed: a revocation tells only who received data under it."""
    return tuple(
        sorted(
            {
                reason.ref
                for reason in decision.reasons
                if reason.code == "consent"
                and reason.result == "permit"
                and reason.ref
                and set(reason.categories) & set(decision.categories)
            }
        )
    )


def whole_record_verdict(decision: Decision) -> Decision:
    """The verdict on an action that needs every category (a transfer moves responsibility
    for the whole record): when the engine withheld any category, deny with nothing
    permitted, on the basis of the first step (in the engine's order) that withheld one. The
    reasons and ids stay the engine's, so the categories consent did cover are still
    explained; ``withheld`` stays the categories that were missing."""
    if not decision.withheld:
        return decision
    missing = set(decision.withheld)
    refusing = {
        reason.code
        for reason in decision.reasons
        if reason.result == "deny" and missing.intersection(reason.categories)
    }
    basis = next((code for code in consent.BASES if code in refusing), "default_deny")
    return replace(decision, result="deny", basis=basis, categories=())


def told_explanation(told: Mapping[str, Any], language: str) -> str:
    """The reasons of a decision as given to a caller (``Decision.to_json()``, or the part of
    it the caller may hear) as one text, in Spanish (``es``) or English (``en``)."""
    return " ".join(reason[language] for reason in told["reasons"])


def whole_record_detail(
    disclosure: Disclosure, told: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """Why an all-or-nothing action (a transfer) was refused, in Spanish and English: it
    needs consent for every category; which were withheld and which alone were covered; then
    the reasons — those of ``told`` (the decision as the caller may hear it) when given."""
    decision = disclosure.decision
    withheld_es = ", ".join(consent.CATEGORY_LABELS[code][0] for code in decision.withheld)
    withheld_en = ", ".join(consent.CATEGORY_LABELS[code][1] for code in decision.withheld)
    es = (
        "Una transferencia traslada la responsabilidad de todo el expediente, por eso necesita "
        f"consentimiento para cada categoría de datos. Se retienen: {withheld_es}."
    )
    en = (
        "A transfer moves responsibility for the whole record, so it needs consent for every "
        f"data category. Withheld: {withheld_en}."
    )
    if disclosure.covered:
        covered_es = ", ".join(consent.CATEGORY_LABELS[code][0] for code in disclosure.covered)
        covered_en = ", ".join(consent.CATEGORY_LABELS[code][1] for code in disclosure.covered)
        es += f" Que solo una parte esté cubierta ({covered_es}) no basta."
        en += f" Covering only part of it ({covered_en}) is not enough."
    told = decision.to_json() if told is None else told
    return (
        f"{es} {told_explanation(told, 'es')}".strip(),
        f"{en} {told_explanation(told, 'en')}".strip(),
    )


def recipient_actor(session: Session, agency_id: str, *, active: bool = False) -> consent.Actor:
    """The engine's view of an agency receiving a referral, transfer or delivery; with
    ``active``, only while the agency is active on the hub (``LookupError`` once disabled), as
    for someone who would hold a grant: a disabled agency's systems cannot use one, and it
    would come back into force if the agency were enabled again."""
    from exchange.agencies import Agency

    agency = session.get(Agency, agency_id)
    if agency is None or (active and not agency.active):
        raise LookupError(agency_id)
    return engine_actor(agency)


def person_actor(session: Session, person_id: str) -> consent.Actor:
    """The engine's view of a registered person who is active on the hub (a dry run about
    someone else, an access request's requester): ``LookupError`` for one disabled, or whose
    agency is — as for their tokens and their login, their agency's being disabled ends
    theirs."""
    from exchange.agencies import Agency
    from exchange.people import Person

    person = session.get(Person, person_id)
    agency = session.get(Agency, person.agency_id) if person is not None else None
    if person is None or agency is None or not person.active or not agency.active:
        raise LookupError(person_id)
    return engine_actor(agency, person)


#: (consent id, agency id) pairs known to be stored, so a read does not ask again.
_DISCLOSED: set[tuple[str, str]] = set()


def remember_disclosure(
    session: Session, consent_ids: Iterable[str], agency_id: str, *, peer_hub: str | None = None
) -> None:
    """Note that ``agency_id`` (of ``peer_hub``, when it is another hub's) received data under
    these consents (once per pair)."""
    wanted = {(consent_id, agency_id) for consent_id in consent_ids} - _DISCLOSED
    if not wanted:
        return
    known = set(
        session.scalars(
            select(ConsentDisclosure.consent_id).where(
                ConsentDisclosure.agency_id == agency_id,
                ConsentDisclosure.consent_id.in_([consent_id for consent_id, _ in wanted]),
            )
        )
    )
    now = datetime.now(UTC)
    for consent_id, _agency in sorted(wanted):
        if consent_id not in known:
            try:
                with session.begin_nested():
                    session.add(
                        ConsentDisclosure(
                            consent_id=consent_id,
                            agency_id=agency_id,
                            first_at=now,
                            peer_hub=peer_hub,
                        )
                    )
            except IntegrityError:
                pass  # a concurrent read noted it first
    _remember_after_commit(session, {(consent_id, agency_id) for consent_id, _ in wanted})


def _remember_after_commit(session: Session, pairs: set[tuple[str, str]]) -> None:
    """Skip these pairs in later reads once this transaction commits (a rollback takes the
    rows with it, and a later revocation must still find who received data)."""
    waiting: set[tuple[str, str]] | None = session.info.get("puente_disclosed")
    if waiting is None:
        waiting = session.info["puente_disclosed"] = set()

        def committed(_session: Session) -> None:
            _DISCLOSED.update(session.info.pop("puente_disclosed", ()))

        def rolled_back(_session: Session, _previous: Any) -> None:
            session.info.pop("puente_disclosed", None)

        event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_soft_rollback", rolled_back, once=True)
    waiting.update(pairs)


# -- redaction ---------------------------------------------------------------------------------


@functools.cache
def _leaf_categories(schema_ref: str) -> Mapping[str, str]:
    name, _, version = schema_ref.partition("/")
    return default_registry().leaf_categories(name, int(version))


@functools.cache
def _value_categories(schema_ref: str) -> Mapping[str, Mapping[str, str]]:
    name, _, version = schema_ref.partition("/")
    return default_registry().value_categories(name, int(version))


def redact(schema_ref: str, data: Any, decision: Decision) -> tuple[Any, tuple[str, ...]]:
    """``data`` with only the fields whose ``x-category`` the decision permits — and without
    the objects whose codes need a category it does not permit (an asylum case number to a
    reader not given legal status: the schema's ``x-value-categories``) — and the categories
    withheld from it."""
    return consent.redact(
        data,
        _leaf_categories(schema_ref),
        decision.categories,
        _value_categories(schema_ref),
    )


# -- deliveries --------------------------------------------------------------------------------

#: Outbox messages that carry data to their recipient, and the action each carries out.
DECIDED_DELIVERIES = {"record.referred": "refer", "transfer.requested": "transfer"}


def decide_delivery(
    session: Session, message_id: str, kind: str, agency_id: str, payload: Any, attempt: int = 1
) -> Disclosure | None:
    """Decide again, at delivery time, a notification that carries a referral or transfer to
    ``agency_id`` (``None`` for messages that disclose nothing). The decision is audited in
    ``session``'s transaction; the caller commits. Each delivery attempt is decided (consent
    may change between two), so the entry's reason code names the attempt and the recipient
    (``delivery.attempt_2.to.mx.nl.dif``): it records the decision to send, taken before the
    network is tried; whether the receiver got it is the outbox message's state.

    Permitted, the decision keeps the consents it rests on with the message
    (:class:`~exchange.consent_store.OutboxDisclosure`; making the share remembered nothing,
    :func:`reaches_recipient`). They count as disclosed to the recipient once the message may
    have reached it (``maybe_reached``, set before each attempt and given back by one that
    certainly sent nothing, such as a refused connection) or was delivered: a notice that never
    arrived leaves a revocation nothing to tell. A transfer request that is no longer pending
    is still decided, but keeps nothing: the outbox withholds it."""
    action = DECIDED_DELIVERIES.get(kind)
    # A referral a peer hub made (``hub``: exchange.federation_received) names a record of that
    # hub, decided there; none of this hub's.
    if action is None or not isinstance(payload, Mapping) or "hub" in payload:
        return None
    record_id = payload.get("record_id")
    record = session.get(Record, record_id) if isinstance(record_id, str) else None
    if record is None:
        return None
    remember = True
    if action == "transfer":
        # The status as stored now (a column, not an entity this session may hold from before).
        status = session.scalar(
            select(RecordShare.status).where(RecordShare.id == payload.get("share_id"))
        )
        remember = status == "pending"
    disclosure = decide_disclosure(
        session,
        Actor.hub(),
        load_child(session, record.child_id),
        action=action,
        purpose=payload.get("purpose") or "case_management",
        categories=payload.get("categories") or ALL_CATEGORIES,
        audit_action="record.referred" if action == "refer" else "record.transferred",
        record=record,
        recipient=agency_id,
        all_or_nothing=action == "transfer",
        detail=f"delivery.attempt_{attempt}.to.{agency_id}",
        remember=False,
    )
    if remember and disclosure.permitted:
        _keep_with_message(session, message_id, consents_that_permitted(disclosure.decision))
    return disclosure


def _keep_with_message(session: Session, message_id: str, consent_ids: Iterable[str]) -> None:
    """Keep ``consent_ids`` with the outbox message (once each: every attempt decides again)."""
    wanted = set(consent_ids)
    if not wanted:
        return
    kept = set(
        session.scalars(
            select(OutboxDisclosure.consent_id).where(OutboxDisclosure.message_id == message_id)
        )
    )
    for consent_id in sorted(wanted - kept):
        session.add(OutboxDisclosure(message_id=message_id, consent_id=consent_id))
    session.flush()
