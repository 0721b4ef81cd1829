"""Properties of ``decide`` over generated consents, grants, views, overrides and requests, and a
cross-check against a naive reference written straight from the rules in docs/consent.md."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import (
    ACTIONS,
    CATEGORIES,
    DEFAULT_RULE_SET,
    DEFAULT_RULES,
    PURPOSES,
    Actor,
    ActorRef,
    ChildFacts,
    ChildView,
    Consent,
    ConsentSet,
    Decision,
    Grant,
    Grantor,
    Override,
    Period,
    Provision,
    Request,
    Review,
    Revocation,
    WithholdFrom,
    decide,
)

CHILD = "ch-1"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
# CONSENT_EXAMPLES=1000 for a long run; the default keeps the suite to a few seconds.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("CONSENT_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ACTORS = [
    Actor("state_dif", agency_id="mx.chp.dif", person_id="cw-1", roles=frozenset({"caseworker"})),
    Actor("state_dif", agency_id="mx.cmx.dif"),
    Actor(
        "state_dif",
        agency_id="mx.chp.procuraduria",
        person_id="ov-1",
        roles=frozenset({"override_officer"}),
    ),
    Actor("immigration_enforcement", agency_id="mx.fed.inm"),
    Actor("refugee_commission", agency_id="mx.fed.comar"),
    Actor("foreign_authority", agency_id="hn.consulado", country="HN"),
    Actor("foreign_authority", agency_id="gt.consulado", country="GT"),
    Actor("oversight", agency_id="mx.fed.cndh"),
    Actor(
        "legal_representative",
        agency_id="mx.ngo.clinica",
        person_id="lr-1",
        roles=frozenset({"legal_representative"}),
    ),
    Actor(
        "legal_representative",
        agency_id="mx.ngo.otra",
        person_id="lr-2",
        roles=frozenset({"legal_representative"}),
    ),
]
AGENCIES = sorted({a.agency_id for a in ACTORS if a.agency_id})
REFS = (
    [ActorRef(agency_id=a) for a in AGENCIES]
    + [ActorRef(person_id=p) for p in ("cw-1", "lr-1", "lr-2", "ov-1")]
    + [ActorRef(role=r) for r in ("legal_representative", "caseworker")]
)

moments = st.integers(min_value=0, max_value=400).map(lambda days: T0 + timedelta(days=days))
hours = st.integers(min_value=0, max_value=400 * 24).map(lambda h: T0 + timedelta(hours=h))
category_sets = st.frozensets(st.sampled_from(CATEGORIES), max_size=4)


@st.composite
def periods(draw: Any) -> Period:
    start = draw(st.none() | moments)
    end = draw(st.none() | moments)
    return Period(start, end)


def _provision_strategy(children: Any) -> Any:
    return st.builds(
        Provision,
        decision=st.sampled_from(["permit", "deny"]),
        period=st.just(Period()) | periods(),
        actors=st.lists(st.sampled_from(REFS), max_size=2).map(tuple),
        actions=st.frozensets(st.sampled_from(ACTIONS), max_size=2),
        purposes=st.frozensets(st.sampled_from(PURPOSES), max_size=3),
        categories=category_sets,
        record_ids=st.sampled_from([frozenset(), frozenset({"rec-1"})]),
        provisions=children,
    )


# Built once: strategies made afresh on every draw are what makes generation slow.
_LEAF_PROVISIONS = _provision_strategy(st.just(()))
_MIDDLE_PROVISIONS = _provision_strategy(st.lists(_LEAF_PROVISIONS, max_size=2).map(tuple))
_TOP_PROVISIONS = _provision_strategy(st.lists(_MIDDLE_PROVISIONS, max_size=2).map(tuple))


def provisions(depth: int = 1) -> Any:
    """Provisions nested at most three deep, starting at ``depth``."""
    return {1: _TOP_PROVISIONS, 2: _MIDDLE_PROVISIONS}.get(depth, _LEAF_PROVISIONS)


@st.composite
def consents(draw: Any, index: int) -> Consent:
    revocation = draw(st.none() | hours.map(lambda t: Revocation(t)))
    return Consent(
        status=draw(st.sampled_from(["active", "active", "active", "inactive"])),
        child_id=CHILD,
        grantor=Grantor("procuraduria", agency_id="mx.chp.procuraduria", identity_verified=True),
        decision=draw(st.sampled_from(["permit", "deny"])),
        id=f"cons-{index}",
        grantees=tuple(draw(st.lists(st.sampled_from(REFS), max_size=3))),
        period=draw(periods()),
        provisions=tuple(draw(st.lists(provisions(), max_size=3))),
        revocation=revocation,
    )


@st.composite
def grants(draw: Any, index: int) -> Grant:
    return Grant(
        child_id=CHILD,
        grantee=draw(st.sampled_from(REFS)),
        purpose=draw(st.sampled_from(PURPOSES)),
        categories=draw(category_sets.filter(bool)),
        until=draw(moments),
        id=f"grant-{index}",
        starts=draw(st.none() | moments),
        revoked_at=draw(st.none() | hours),
    )


@st.composite
def views(draw: Any, index: int) -> ChildView:
    review = draw(st.none() | st.builds(Review, reviewed_at=hours, upheld=st.booleans()))
    return ChildView(
        child_id=CHILD,
        heard_on=draw(moments).date(),
        position=draw(st.sampled_from(["objection", "assent"])),
        id=f"vw-{index}",
        categories=draw(category_sets),
        about=tuple(draw(st.lists(st.sampled_from(REFS), max_size=1))),
        review=review,
    )


@st.composite
def overrides(draw: Any, index: int) -> Override:
    starts = draw(hours)
    return Override(
        child_id=CHILD,
        basis_code="missing_child",
        justification=draw(
            st.sampled_from(
                ["", "Riesgo inminente documentado en el expediente del caso (ficticio)."]
            )
        ),
        categories=draw(category_sets.filter(bool)),
        starts=starts,
        ends=starts + timedelta(hours=draw(st.integers(min_value=1, max_value=120))),
        by=ActorRef(agency_id="mx.chp.procuraduria", person_id="ov-1"),
        by_roles=draw(
            st.sampled_from([frozenset({"override_officer"}), frozenset({"caseworker"})])
        ),
        id=f"ovr-{index}",
        for_actor=draw(st.none() | st.sampled_from(REFS)),
        review=draw(st.none() | st.builds(Review, reviewed_at=hours, upheld=st.booleans())),
    )


@st.composite
def withholds(draw: Any, index: int) -> WithholdFrom:
    return WithholdFrom(
        child_id=CHILD,
        target=draw(st.sampled_from(REFS)),
        categories=draw(category_sets),
        id=f"wh-{index}",
        ends=draw(st.none() | moments),
    )


children = st.builds(
    ChildFacts,
    child_id=st.just(CHILD),
    date_of_birth=st.sampled_from([date(2008, 7, 2), date(2013, 3, 1), date(2006, 3, 10), None]),
    accompaniment=st.sampled_from(["unaccompanied", "accompanied", "unknown"]),
    international_protection=st.sampled_from([True, False, None]),
    countries_of_origin=st.sampled_from([frozenset({"HN"}), frozenset({"GT"}), frozenset()]),
)


@st.composite
def requests(draw: Any) -> Request:
    actor = draw(st.sampled_from(ACTORS))
    return Request(
        actor=actor,
        child_id=CHILD,
        action=draw(st.sampled_from(ACTIONS)),
        purpose=draw(st.sampled_from(PURPOSES)),
        categories=draw(st.frozensets(st.sampled_from(CATEGORIES), min_size=1)),
        owner_agency_id=draw(st.sampled_from([None, "mx.chp.dif", actor.agency_id])),
        record_id=draw(st.sampled_from([None, "rec-1", "rec-2"])),
    )


def numbered(draw: Any, strategy: Any, most: int) -> list[Any]:
    count = draw(st.integers(min_value=0, max_value=most))
    return [draw(strategy(index)) for index in range(count)]


@st.composite
def situations(draw: Any) -> dict[str, Any]:
    return {
        "request": draw(requests()),
        "consents": numbered(draw, consents, 3) + numbered(draw, grants, 2),
        "views": numbered(draw, views, 2),
        "overrides": numbered(draw, overrides, 2),
        "withholds": numbered(draw, withholds, 2),
        "child": draw(children),
        "now": draw(hours),
    }


def run(s: dict[str, Any], consent_items: Any = None) -> Decision:
    return decide(
        s["request"],
        s["consents"] if consent_items is None else consent_items,
        s["views"],
        s["overrides"],
        DEFAULT_RULE_SET,
        s["now"],
        child=s["child"],
        withholds=s["withholds"],
    )


def hard_rule_categories(s: dict[str, Any]) -> set[str]:
    return {
        category
        for rule in DEFAULT_RULES
        if rule.applies(s["request"], s["child"])
        for category in (rule.categories or CATEGORIES)
    }


# --- properties ---------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(situations(), st.data())
def test_adding_a_deny_provision_never_widens_access(s: dict[str, Any], data: Any) -> None:
    before = run(s)
    items = s["consents"]
    deny = data.draw(provisions(depth=3).map(lambda p: dataclasses.replace(p, decision="deny")))
    position = data.draw(st.integers(min_value=0, max_value=len(items)))
    if position == len(items) or not isinstance(items[position], Consent):
        changed = [
            *items,
            Consent(
                "active", CHILD, Grantor("procuraduria"), "deny", id="cons-new", provisions=(deny,)
            ),
        ]
    else:
        target: Consent = items[position]
        changed = list(items)
        changed[position] = dataclasses.replace(
            target, provisions=_insert(target.provisions, deny, data)
        )
    after = run(s, changed)
    assert set(after.categories) <= set(before.categories)


def _insert(tree: tuple[Provision, ...], deny: Provision, data: Any) -> tuple[Provision, ...]:
    """``tree`` with ``deny`` added at a drawn place: top level or nested anywhere."""
    if not tree or data.draw(st.booleans()):
        return (*tree, deny)
    index = data.draw(st.integers(min_value=0, max_value=len(tree) - 1))
    nested = dataclasses.replace(
        tree[index], provisions=_insert(tree[index].provisions, deny, data)
    )
    return (*tree[:index], nested, *tree[index + 1 :])


@PROPERTY_SETTINGS
@given(situations(), st.data())
def test_revocation_never_widens_access(s: dict[str, Any], data: Any) -> None:
    if not s["consents"]:
        return
    before = run(s)
    index = data.draw(st.integers(min_value=0, max_value=len(s["consents"]) - 1))
    revoked_at = data.draw(hours)
    item = s["consents"][index]
    changed = list(s["consents"])
    # Revoking what was already revoked earlier changes nothing: the earlier instant stands.
    if isinstance(item, Consent):
        if item.revocation is not None:
            revoked_at = min(revoked_at, item.revocation.revoked_at)
        changed[index] = dataclasses.replace(item, revocation=Revocation(revoked_at))
    else:
        if item.revoked_at is not None:
            revoked_at = min(revoked_at, item.revoked_at)
        changed[index] = dataclasses.replace(item, revoked_at=revoked_at)
    after = run(s, changed)
    assert set(after.categories) <= set(before.categories)
    if revoked_at <= s["now"]:  # it permits nothing any more (a consent's denies stay)
        assert not any(r.ref == item.id and r.result == "permit" for r in after.reasons)


@PROPERTY_SETTINGS
@given(situations(), st.randoms())
def test_a_decision_is_deterministic(s: dict[str, Any], rng: Any) -> None:
    first = run(s)
    assert run(s) == first
    compiled = ConsentSet(s["consents"], child=s["child"])
    assert run(s, compiled) == first
    assert run(s, compiled) == first  # remembered
    assert run(s, ConsentSet(s["consents"], child=s["child"], remember=False)) == first
    shuffled = list(s["consents"])
    rng.shuffle(shuffled)
    assert run(s, shuffled) == first  # the order consents are handed over does not matter
    assert Decision.from_json(first.to_json()) == first


@PROPERTY_SETTINGS
@given(situations())
def test_hard_rules_always_win(s: dict[str, Any]) -> None:
    decision = run(s)
    forbidden = hard_rule_categories(s)
    assert not forbidden & set(decision.categories)
    for category in forbidden & s["request"].categories:
        assert decision.basis_of(category) == "hard_rule"


@PROPERTY_SETTINGS
@given(situations())
def test_the_originating_agency_reading_is_limited_only_by_hard_rules(s: dict[str, Any]) -> None:
    request = dataclasses.replace(
        s["request"], action="read", owner_agency_id=s["request"].actor.agency_id
    )
    s = {**s, "request": request}
    decision = run(s)
    assert set(decision.categories) == set(request.categories) - hard_rule_categories(s)


@PROPERTY_SETTINGS
@given(situations())
def test_agrees_with_the_naive_reference(s: dict[str, Any]) -> None:
    decision = run(s)
    expected = reference_decide(s)
    assert {c: decision.basis_of(c) for c in s["request"].categories} == expected


# --- a naive reference, straight from the rules -------------------------------------------------


def reference_decide(s: dict[str, Any]) -> dict[str, str]:
    """The basis each requested category is settled by (permit or deny follows from it)."""
    request: Request = s["request"]
    now: datetime = s["now"]
    child: ChildFacts = s["child"]
    actor = request.actor
    roles = actor.roles
    result: dict[str, str] = {}

    def who(ref: ActorRef) -> bool:
        return ref.matches(actor.agency_id, actor.person_id, roles)

    for category in request.categories:
        if category in hard_rule_categories(s):
            result[category] = "hard_rule"
        elif (
            request.action == "read"
            and request.owner_agency_id == actor.agency_id
            and actor.agency_id
        ):
            result[category] = "originating_agency"
        elif any(
            (w.ends is None or now < w.ends)
            and (w.target is None or who(w.target))
            and (not w.categories or category in w.categories)
            for w in s["withholds"]
        ):
            result[category] = "withhold"
        elif any(
            o.starts <= now < min(o.ends, o.starts + timedelta(hours=72))
            and not (o.review and not o.review.upheld and o.review.reviewed_at <= now)
            and "override_officer" in o.by_roles
            and o.justification.strip()
            and category in o.categories
            and who(o.for_actor or ActorRef(agency_id=o.by.agency_id))
            for o in s["overrides"]
        ):
            result[category] = "override"
        elif any(
            v.position == "objection"
            and _adolescent_or_unknown(child, v.heard_on)
            and not (v.review and not v.review.upheld and v.review.reviewed_at <= now)
            and (not v.categories or category in v.categories)
            and (not v.about or any(who(r) for r in v.about))
            for v in s["views"]
        ):
            result[category] = "objection"
        else:
            result[category] = _reference_consents(s, category, who)
    return result


def _adolescent_or_unknown(child: ChildFacts, day: date) -> bool:
    age = child.age_on(day)
    return age is None or age >= 12


def _reference_consents(s: dict[str, Any], category: str, who: Any) -> str:
    request: Request = s["request"]
    now: datetime = s["now"]
    adult = s["child"].eighteenth_birthday
    matches: list[tuple[int, str, str]] = []  # depth, decision, kind

    def in_period(period: Period) -> bool:
        return period.contains(now)

    def walk(
        provision: Provision,
        depth: int,
        ancestors_named: bool,
        scope: tuple[ActorRef, ...],
        revoked: bool,
    ) -> None:
        if not in_period(provision.period):
            return
        if provision.actors and not any(who(r) for r in provision.actors):
            return
        if provision.actions and request.action not in provision.actions:
            return
        if provision.purposes and request.purpose not in provision.purposes:
            return
        if provision.categories and category not in provision.categories:
            return
        if provision.record_ids and request.record_id not in provision.record_ids:
            return
        named = ancestors_named or bool(provision.actors)
        applies = named or provision.decision == "deny" or not scope or any(who(r) for r in scope)
        if applies and not (revoked and provision.decision == "permit"):
            matches.append((depth, provision.decision, "consent"))
        for nested in provision.provisions:
            walk(nested, depth + 1, named, scope, revoked)

    for item in s["consents"]:
        if isinstance(item, Grant):
            end = min(item.until, adult) if adult else item.until
            if item.revoked_at is not None:
                end = min(end, item.revoked_at)
            if (
                (item.starts is None or item.starts <= now)
                and now < end
                and who(item.grantee)
                and request.purpose == item.purpose
                and request.action in item.actions
                and category in item.categories
                and (not item.record_ids or request.record_id in item.record_ids)
            ):
                matches.append((1, "permit", "grant"))
            continue
        if item.status != "active" and not (item.status == "inactive" and item.revocation):
            continue
        end = item.period.end
        if adult is not None:
            end = adult if end is None else min(end, adult)
        if not Period(item.period.start, end).contains(now):
            continue
        # Once revoked (or marked inactive with a revocation) only its denies count.
        revoked = item.revoked_by(now) or item.status == "inactive"
        if (not item.grantees or any(who(r) for r in item.grantees)) and not (
            revoked and item.decision == "permit"
        ):
            matches.append((0, item.decision, "consent"))
        for provision in item.provisions:
            walk(provision, 1, False, item.grantees, revoked)
    # A nested provision inside an out-of-scope, actor-less permit is still reached: the
    # scope applies to each node on its own, as in the engine.
    if not matches:
        return "default_deny"
    deepest = max(depth for depth, _, _ in matches)
    top = [(decision, kind) for depth, decision, kind in matches if depth == deepest]
    if any(decision == "deny" for decision, _ in top):
        return "consent"
    return "consent" if any(kind == "consent" for _, kind in top) else "grant"
