"""``decide`` beyond the scenario table: its guards, remembered verdicts across time, the audit
form of a decision, configurable rules and the explanation a person reads."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from consent import (
    DEFAULT_RULE_SET,
    DEFAULT_RULES,
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
    RequestError,
    Revocation,
    Rule,
    RuleSet,
    WithholdFrom,
    decide,
)
from schemas import default_registry

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
CHILD = ChildFacts(
    child_id="ch-1",
    date_of_birth=date(2009, 1, 1),
    accompaniment="unaccompanied",
    international_protection=True,
    countries_of_origin=frozenset({"HN"}),
)
COMAR = Actor("refugee_commission", agency_id="mx.fed.comar")
INM = Actor("immigration_enforcement", agency_id="mx.fed.inm")
CMX = Actor("state_dif", agency_id="mx.cmx.dif")
LAWYER = Actor(
    "legal_representative",
    person_id="lr-1",
    agency_id="mx.ngo.a",
    roles=frozenset({"legal_representative"}),
)
END = datetime(2024, 6, 30, tzinfo=UTC)

COMAR_CONSENT = Consent(
    "active",
    "ch-1",
    Grantor("procuraduria", agency_id="mx.chp.procuraduria", identity_verified=True),
    "deny",
    id="cons-1",
    grantees=(ActorRef(agency_id="mx.fed.comar"),),
    period=Period(datetime(2024, 1, 1, tzinfo=UTC), END),
    provisions=(
        Provision(
            "permit",
            actors=(ActorRef(agency_id="mx.fed.comar"),),
            purposes=frozenset({"asylum_procedure"}),
            categories=frozenset({"identity", "legal_status"}),
        ),
    ),
)


def ask(actor: Actor = COMAR, purpose: str = "asylum_procedure", **changes: object) -> Request:
    return dataclasses.replace(
        Request(actor, "ch-1", "read", purpose, frozenset({"identity", "legal_status"})), **changes
    )


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        decide(ask(), [COMAR_CONSENT], (), (), DEFAULT_RULE_SET, datetime(2024, 6, 1), child=CHILD)


def test_inputs_about_another_child_are_refused() -> None:
    other = dataclasses.replace(ask(), child_id="ch-2")
    with pytest.raises(RequestError):
        decide(other, [COMAR_CONSENT], (), (), DEFAULT_RULE_SET, NOW)
    view = ChildView("ch-2", date(2024, 5, 1), "objection")
    with pytest.raises(RequestError):
        decide(ask(), [COMAR_CONSENT], [view], (), DEFAULT_RULE_SET, NOW, child=CHILD)
    with pytest.raises(RequestError):
        decide(
            ask(),
            [],
            (),
            (),
            DEFAULT_RULE_SET,
            NOW,
            child=CHILD,
            withholds=[WithholdFrom("ch-2", actor_kind="oversight")],
        )
    with pytest.raises(RequestError):
        ConsentSet([COMAR_CONSENT, dataclasses.replace(COMAR_CONSENT, child_id="ch-2")])
    compiled = ConsentSet([COMAR_CONSENT], child=CHILD)
    with pytest.raises(RequestError):  # capped at another 18th birthday
        decide(
            ask(),
            compiled,
            (),
            (),
            DEFAULT_RULE_SET,
            NOW,
            child=dataclasses.replace(CHILD, date_of_birth=date(2010, 1, 1)),
        )


def test_remembered_verdicts_follow_the_clock() -> None:
    compiled = ConsentSet([COMAR_CONSENT], child=CHILD)
    before, at_end = END - timedelta(microseconds=1), END
    for moment, result in [
        (before, "permit"),
        (at_end, "deny"),
        (before, "permit"),
        (NOW, "permit"),
        (at_end + timedelta(days=1), "deny"),
    ]:
        assert decide(ask(), compiled, (), (), DEFAULT_RULE_SET, moment).result == result, moment


def test_a_revocation_takes_effect_at_the_instant_recorded() -> None:
    revoked = dataclasses.replace(COMAR_CONSENT, revocation=Revocation(NOW))
    compiled = ConsentSet([revoked], child=CHILD)
    assert (
        decide(ask(), compiled, (), (), DEFAULT_RULE_SET, NOW - timedelta(seconds=1)).result
        == "permit"
    )
    assert decide(ask(), compiled, (), (), DEFAULT_RULE_SET, NOW).result == "deny"


def test_the_audit_form_fits_the_audit_event_schema() -> None:
    validator = default_registry().validator("audit-event", "1")
    override = Override(
        "ch-1",
        "missing_child",
        "El adolescente salió del albergue y hay indicios de trata (ficticio).",
        frozenset({"identity"}),
        NOW - timedelta(hours=1),
        NOW + timedelta(hours=5),
        ActorRef(agency_id="mx.chp.procuraduria", person_id="ov-1"),
        by_roles=frozenset({"override_officer"}),
        id="ovr-1",
    )
    decisions = [
        decide(ask(), [COMAR_CONSENT], (), (), DEFAULT_RULE_SET, NOW, child=CHILD),
        decide(
            ask(INM, "migration_procedure", categories=frozenset({"health"})),
            [],
            (),
            (),
            DEFAULT_RULE_SET,
            NOW,
            child=CHILD,
        ),
        decide(
            ask(Actor("state_dif", agency_id="mx.chp.procuraduria")),
            [],
            (),
            [override],
            DEFAULT_RULE_SET,
            NOW,
            child=CHILD,
        ),
        decide(ask(CMX), [], (), (), DEFAULT_RULE_SET, NOW, child=CHILD),
    ]
    assert [d.basis for d in decisions] == ["consent", "hard_rule", "override", "default_deny"]
    for decision in decisions:
        entry = {
            "time": "2024-06-01T12:00:00Z",
            "action": "record_read",
            "outcome": "success" if decision.permitted else "denied",
            "actor": {"agency_id": "mx.fed.comar"},
            "child_id": "ch-1",
            "decision": {"id": "dec-1", **decision.to_audit_json()},
        }
        assert validator.validate(entry) == [], decision
    assert decisions[2].to_audit_json()["override_id"] == "ovr-1"
    assert decisions[1].to_audit_json()["rule_ids"] == [
        "no_protection_data_to_immigration_enforcement",
        "no_protection_data_for_migration_procedure",
    ]


def test_reasons_explain_in_both_languages() -> None:
    decision = decide(
        ask(categories=frozenset({"identity", "health"})),
        [COMAR_CONSENT],
        (),
        (),
        DEFAULT_RULE_SET,
        NOW,
        child=CHILD,
    )
    assert (
        decision.result == "permit"
        and decision.categories == ("identity",)
        and decision.withheld == ("health",)
    )
    assert "Identidad" in decision.explanation("es") and "Salud" in decision.explanation("es")
    assert "Identity" in decision.explanation("en") and "cons-1" in decision.explanation("en")
    assert decision.basis_of("identity") == "consent" and decision.basis_of("health") == "consent"
    assert decision.basis_of("family") is None
    assert Decision.from_json(decision.to_json()) == decision


def test_a_grant_alone_is_the_basis_and_a_consent_beside_it_takes_precedence() -> None:
    grant = Grant(
        "ch-1",
        ActorRef(agency_id="mx.fed.comar"),
        "asylum_procedure",
        frozenset({"identity", "family"}),
        END,
        id="gr-1",
    )
    only_grant = decide(
        ask(categories=frozenset({"family"})),
        [COMAR_CONSENT, grant],
        (),
        (),
        DEFAULT_RULE_SET,
        NOW,
        child=CHILD,
    )
    assert (only_grant.basis, only_grant.grant_ids, only_grant.categories) == (
        "grant",
        ("gr-1",),
        ("family",),
    )
    both = decide(
        ask(categories=frozenset({"identity", "family"})),
        [COMAR_CONSENT, grant],
        (),
        (),
        DEFAULT_RULE_SET,
        NOW,
        child=CHILD,
    )
    assert both.basis == "consent" and both.categories == ("identity", "family")
    assert both.consent_ids == ("cons-1",) and both.grant_ids == ("gr-1",)


def test_overrides_respect_their_purpose_and_records() -> None:
    override = Override(
        "ch-1",
        "medical_emergency",
        "Ingreso a urgencias inconsciente; se necesitan antecedentes médicos.",
        frozenset({"health"}),
        NOW - timedelta(hours=1),
        NOW + timedelta(hours=5),
        ActorRef(agency_id="mx.chp.procuraduria", person_id="ov-1"),
        by_roles=frozenset({"override_officer"}),
        purpose="health_care",
        record_ids=frozenset({"rec-1"}),
    )
    officer = Actor("state_dif", agency_id="mx.chp.procuraduria")

    def result(purpose: str, record: str | None) -> str:
        request = Request(officer, "ch-1", "read", purpose, frozenset({"health"}), record_id=record)
        return decide(request, [], (), [override], DEFAULT_RULE_SET, NOW, child=CHILD).result

    assert result("health_care", "rec-1") == "permit"
    assert result("case_management", "rec-1") == "deny"
    assert result("health_care", "rec-2") == "deny"


def test_a_deny_without_actors_binds_everyone_but_a_permit_only_the_grantees() -> None:
    consent = Consent(
        "active",
        "ch-1",
        Grantor("parent", related_person_ref="madre", identity_verified=True),
        "deny",
        id="cons-m",
        grantees=(ActorRef(agency_id="mx.tab.salud"),),
        period=Period(None, END),
        provisions=(
            Provision("deny", purposes=frozenset({"statistics"})),
            Provision("permit", purposes=frozenset({"education"})),
        ),
    )
    statistics = decide(
        ask(CMX, "statistics", categories=frozenset({"education"})),
        [consent],
        (),
        (),
        DEFAULT_RULE_SET,
        NOW,
        child=CHILD,
    )
    assert (statistics.result, statistics.basis) == ("deny", "consent")
    education = decide(
        ask(CMX, "education", categories=frozenset({"education"})),
        [consent],
        (),
        (),
        DEFAULT_RULE_SET,
        NOW,
        child=CHILD,
    )
    assert (education.result, education.basis) == ("deny", "default_deny")
    salud = Actor("health_service", agency_id="mx.tab.salud")
    assert decide(
        ask(salud, "education", categories=frozenset({"education"})),
        [consent],
        (),
        (),
        DEFAULT_RULE_SET,
        NOW,
        child=CHILD,
    ).permitted


def test_rules_are_configurable() -> None:
    extra = Rule(
        "no_health_to_civil_society",
        ("Sin salud para OSC.", "No health data to NGOs."),
        "Política local.",
        categories=frozenset({"health"}),
        actor_kinds=frozenset({"civil_society"}),
        applies_to_originating_agency=False,
    )
    rules = RuleSet([*DEFAULT_RULES, extra])
    shelter = Actor("civil_society", agency_id="mx.chp.casa")
    everything = Consent(
        "active",
        "ch-1",
        Grantor("court"),
        "permit",
        id="cons-x",
        grantees=(ActorRef(agency_id="mx.chp.casa"),),
        period=Period(None, END),
    )
    request = Request(
        shelter, "ch-1", "read", "alternative_care", frozenset({"health", "identity"})
    )
    decision = decide(request, [everything], (), (), rules, NOW, child=CHILD)
    assert decision.categories == ("identity",) and decision.rule_ids == (
        "no_health_to_civil_society",
    )
    assert decide(request, [everything], (), (), DEFAULT_RULES, NOW, child=CHILD).categories == (
        "identity",
        "health",
    )
    own = dataclasses.replace(request, owner_agency_id="mx.chp.casa")
    assert decide(own, [], (), (), rules, NOW, child=CHILD).categories == ("identity", "health")
    with pytest.raises(ValueError, match="duplicate"):
        RuleSet([extra, extra])


def test_a_child_of_unknown_age_objecting_is_heard() -> None:
    ageless = dataclasses.replace(CHILD, date_of_birth=None)
    view = ChildView("ch-1", date(2024, 5, 1), "objection", id="vw-1")
    decision = decide(ask(), [COMAR_CONSENT], [view], (), DEFAULT_RULE_SET, NOW, child=ageless)
    assert (decision.result, decision.basis, decision.view_ids) == ("deny", "objection", ("vw-1",))


def test_an_objection_made_before_turning_12_does_not_block() -> None:
    child = dataclasses.replace(CHILD, date_of_birth=date(2012, 6, 1))  # 12 on 2024-06-01
    early = ChildView("ch-1", date(2024, 5, 31), "objection")
    later = ChildView("ch-1", date(2024, 6, 1), "objection")
    assert decide(ask(), [COMAR_CONSENT], [early], (), DEFAULT_RULE_SET, NOW, child=child).permitted
    assert not decide(
        ask(), [COMAR_CONSENT], [later], (), DEFAULT_RULE_SET, NOW, child=child
    ).permitted


def test_an_objection_counts_when_any_record_made_the_child_12_when_heard() -> None:
    # The records disagree: one says 11 when heard, another 12.
    child = dataclasses.replace(
        CHILD, date_of_birth=date(2013, 1, 1), earliest_date_of_birth=date(2012, 1, 1)
    )
    heard = ChildView("ch-1", date(2024, 6, 1), "objection")
    assert not decide(
        ask(), [COMAR_CONSENT], [heard], (), DEFAULT_RULE_SET, NOW, child=child
    ).permitted
    agreed = dataclasses.replace(child, earliest_date_of_birth=None)
    assert decide(
        ask(), [COMAR_CONSENT], [heard], (), DEFAULT_RULE_SET, NOW, child=agreed
    ).permitted


def test_an_override_without_the_officers_roles_fails_closed() -> None:
    opened = Override(
        "ch-1",
        "missing_child",
        "El adolescente salió del albergue y hay indicios de trata (ficticio).",
        frozenset({"identity"}),
        NOW - timedelta(hours=1),
        NOW + timedelta(hours=5),
        ActorRef(agency_id="mx.chp.procuraduria", person_id="ov-1"),
    )  # by_roles not given: the hub did not say the person holds the override role
    officer = Actor("state_dif", agency_id="mx.chp.procuraduria")
    request = Request(officer, "ch-1", "read", "protection_measure", frozenset({"identity"}))
    assert not decide(request, [], (), [opened], DEFAULT_RULE_SET, NOW, child=CHILD).permitted
    with_role = dataclasses.replace(opened, by_roles=frozenset({"override_officer"}))
    assert decide(request, [], (), [with_role], DEFAULT_RULE_SET, NOW, child=CHILD).permitted
