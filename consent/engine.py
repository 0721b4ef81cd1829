"""``decide``: every disclosure of a child's data, decided in one fixed order.

For each requested category, the first step that speaks about it settles it:

1. **hard legal rules** (:mod:`consent.rules`) withhold it, whoever asks;
2. the **originating agency reading its own record** gets it — that is not a disclosure, so
   only hard rules limit it;
3. a **withhold-from** entry naming the actor (or its kind) withholds it;
4. an active **emergency override** serving the actor permits it;
5. an adolescent's (12+) recorded **objection** withholds it until a Procuraduría review sets
   the objection aside;
6. **consent provisions and grants** (:mod:`consent.compiled`): the deepest matching
   provision decides, deny wins between equals;
7. otherwise it is **denied**.

The decision permits when at least one category is permitted. It is a pure function of its
arguments: the same request, consents, views, overrides, rules, facts and time always give the
same decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from consent import messages
from consent.access import Grant, WithholdFrom
from consent.compiled import NO_VERDICT, ConsentSet
from consent.decision import Decision, Reason
from consent.errors import RequestError
from consent.facts import ChildFacts
from consent.measures import OVERRIDE_ROLE, ChildView, Override
from consent.model import Consent
from consent.request import Request
from consent.rules import Rule, RuleSet
from consent.vocabulary import ALL_CATEGORIES_MASK, categories_of, mask_of

ADOLESCENCE = 12  # LGDNNA art. 5: adolescents are 12 to 17


def decide(
    request: Request,
    consents: ConsentSet | Iterable[Consent | Grant],
    views: Iterable[ChildView],
    overrides: Iterable[Override],
    rules: RuleSet | Iterable[Rule],
    now: datetime,
    *,
    child: ChildFacts | None = None,
    withholds: Iterable[WithholdFrom] = (),
) -> Decision:
    """Decide ``request`` (see the module documentation for the order of the steps).

    ``consents`` is the child's :class:`ConsentSet` (compile it once per child and reuse it) or
    the consents and grants themselves. ``child`` defaults to the facts the set was compiled
    with. Views, overrides and withhold entries must concern the requested child.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    moment = now.timestamp()
    if not isinstance(consents, ConsentSet):
        consents = ConsentSet(consents, child=child)
    facts = child if child is not None else consents.child
    if (
        facts is not consents.child
        and facts.eighteenth_birthday != consents.child.eighteenth_birthday
    ):
        # The set caps consents at the 18th birthday it was compiled with.
        raise RequestError(
            "El conjunto de consentimientos se compiló con otra fecha de nacimiento.",
            "The consent set was compiled with another date of birth.",
        )
    if consents.child_id is not None and consents.child_id != request.child_id:
        raise _other_child("consentimientos", "consents", consents.child_id, request.child_id)
    rule_set = rules if isinstance(rules, RuleSet) else RuleSet(rules)

    requested = request.category_mask
    remaining = requested
    reasons: list[Reason] = []
    # Categories settled by each step (plain ints: this function runs 100,000 times a second).
    by_rule = by_withhold = by_objection = 0
    to_owner = by_override = 0
    rule_ids: tuple[str, ...] = ()
    withhold_ids: tuple[str, ...] = ()
    override_ids: tuple[str, ...] = ()
    view_ids: tuple[str, ...] = ()

    # 1. Hard legal rules.
    applicable = rule_set.applicable(request, facts)
    # Every rule that forbids a requested category is named, even where an earlier rule
    # already forbade it: the audit log shows all the law that stood in the way.
    for rule, mask in applicable:
        hit = mask & requested
        if hit:
            remaining &= ~hit
            by_rule |= hit
            reasons.append(messages.hard_rule(rule, hit))
            rule_ids += (rule.id,)

    # 2. The originating agency reading its own record.
    if remaining and request.by_originating_agency:
        to_owner = remaining
        reasons.append(messages.originating_agency(remaining))
        remaining = 0

    # 3. Withhold-from entries.
    for entry in withholds:
        _same_child(entry.child_id, request, "reserva", "withhold entry")
        if remaining and _withholds(entry, request, now):
            hit = _mask_or_all(entry.categories) & remaining
            if hit:
                remaining &= ~hit
                by_withhold |= hit
                reasons.append(messages.withhold(entry.id, hit))
                withhold_ids += (entry.id,) if entry.id else ()

    # 4. Active emergency overrides serving this actor.
    for item in sorted(overrides, key=_override_order) if overrides else ():
        _same_child(item.child_id, request, "acceso de emergencia", "override")
        if remaining and _override_serves(item, request, now):
            hit = mask_of(item.categories) & remaining
            if hit:
                remaining &= ~hit
                by_override |= hit
                reasons.append(
                    messages.override(item.id, item.basis_code, item.effective_end(), hit)
                )
                override_ids += (item.id,) if item.id else ()

    # 5. An adolescent's objection, until a Procuraduría review sets it aside.
    for view in views:
        _same_child(view.child_id, request, "opinión", "views record")
        if remaining and _objection_blocks(view, request, facts, now):
            hit = _mask_or_all(view.categories) & remaining
            if hit:
                remaining &= ~hit
                by_objection |= hit
                review = view.review
                upheld = review is not None and review.upheld and review.reviewed_at <= now
                reasons.append(messages.objection(view.id, view.heard_on, upheld, hit))
                view_ids += (view.id,) if view.id else ()

    # 6. Consent provisions and grants.
    verdict = consents.evaluate(request, moment, remaining) if remaining else NO_VERDICT
    if verdict.reasons:
        remaining &= ~(verdict.permit | verdict.deny)
        reasons.extend(verdict.reasons)

    # The same question asked again gets the same (immutable) decision back, when only the
    # rules, the originating-agency step and the consents spoke.
    plain = consents.remember and not (by_withhold or by_override or by_objection)
    if plain:
        key = (requested, to_owner, request.purpose)
        known = consents.recall(key, applicable, verdict)
        if known is not None:
            return known

    # 7. Nothing else: deny.
    if remaining:
        reasons.append(messages.default_deny(request.purpose, remaining))

    granted = to_owner | by_override | verdict.permit
    if granted:
        result = "permit"
        if to_owner:
            basis = "originating_agency"
        elif by_override:
            basis = "override"
        else:
            basis = verdict.permit_basis
    else:
        result = "deny"
        if by_rule:
            basis = "hard_rule"
        elif by_withhold:
            basis = "withhold"
        elif by_objection:
            basis = "objection"
        elif verdict.deny:
            basis = "consent"
        else:
            basis = "default_deny"
    decision = Decision(
        result,
        basis,
        categories_of(granted),
        categories_of(requested & ~granted),
        tuple(reasons),
        verdict.consent_ids,
        verdict.grant_ids,
        rule_ids,
        override_ids,
        withhold_ids,
        view_ids,
    )
    if plain:
        consents.keep(key, applicable, verdict, decision)
    return decision


def _mask_or_all(categories: frozenset[str]) -> int:
    return mask_of(categories) if categories else ALL_CATEGORIES_MASK


def _withholds(entry: WithholdFrom, request: Request, now: datetime) -> bool:
    if entry.starts is not None and now < entry.starts:
        return False
    if entry.ends is not None and now >= entry.ends:
        return False
    actor = request.actor
    if entry.actor_kind is not None and actor.kind != entry.actor_kind:
        return False
    return entry.target is None or entry.target.matches(
        actor.agency_id, actor.person_id, actor.roles
    )


def _override_serves(item: Override, request: Request, now: datetime) -> bool:
    """An override counts while in force, if opened by someone in the override role with a
    written justification, for the actor it serves, its purpose and records."""
    if not (item.starts <= now < item.effective_end()):
        return False
    if OVERRIDE_ROLE not in item.by_roles or not item.justification.strip():
        return False
    if item.purpose is not None and item.purpose != request.purpose:
        return False
    if item.record_ids and request.record_id not in item.record_ids:
        return False
    actor = request.actor
    return item.beneficiary.matches(actor.agency_id, actor.person_id, actor.roles)


def _objection_blocks(view: ChildView, request: Request, child: ChildFacts, now: datetime) -> bool:
    if view.position != "objection":
        return False
    # The oldest age any record gives: an objection counts if any record makes the child an
    # adolescent when heard. Age unknown: it counts too (the Procuraduría reviews it).
    age = child.oldest_age_on(view.heard_on)
    if age is not None and age < ADOLESCENCE:
        return False
    review = view.review
    if review is not None and review.reviewed_at <= now and not review.upheld:
        return False
    actor = request.actor
    return not view.about or any(
        ref.matches(actor.agency_id, actor.person_id, actor.roles) for ref in view.about
    )


def _override_order(item: Override) -> tuple[str, float]:
    return (item.id or "", item.starts.timestamp())


def _same_child(child_id: str, request: Request, spanish: str, english: str) -> None:
    if child_id != request.child_id:
        raise _other_child(spanish, english, child_id, request.child_id)


def _other_child(spanish: str, english: str, found: str, wanted: str) -> RequestError:
    return RequestError(
        f"Se recibieron {spanish} de {found!r} para decidir sobre {wanted!r}.",
        f"Got {english} of {found!r} to decide about {wanted!r}.",
    )
