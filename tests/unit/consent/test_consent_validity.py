"""Whether a consent, override, grant or views record may be recorded: problems with a stable
code, a pointer and an actionable message in Spanish and English."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from consent import (
    ActorRef,
    ChildFacts,
    ChildView,
    Consent,
    Custodian,
    Grant,
    Grantor,
    Override,
    Period,
    Problem,
    Provision,
    check_consent,
    check_grant,
    check_override,
    check_view,
)
from schemas.registry import EXAMPLES_DIR

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)

UNACCOMPANIED = ChildFacts(
    child_id="ch-7f3a9d2e",
    date_of_birth=date(2008, 7, 2),
    accompaniment="unaccompanied",
    custodians=(Custodian("rp1", "parent"),),
    representing_procuradurias=frozenset({"mx.chp.procuraduria"}),
)
WITH_MOTHER = ChildFacts(
    child_id="ch-41b7c0aa",
    date_of_birth=date(2016, 5, 14),
    accompaniment="accompanied",
    custodians=(Custodian("madre", "parent"), Custodian("abuela", "guardian")),
)


def example(name: str) -> Consent:
    return Consent.from_json(
        json.loads((EXAMPLES_DIR / f"consent/1/valid/{name}.json").read_text("utf-8"))
    )


SUPLENCIA = example("procuraduria_suplencia_unaccompanied")
MOTHER = example("mother_health_care")


def codes(problems: list[Problem]) -> list[str]:
    for problem in problems:
        assert problem.es and problem.en and problem.es != problem.en
        assert problem.pointer == "" or problem.pointer.startswith("/")
    return [problem.code for problem in problems]


def grantor(consent: Consent, **changes: object) -> Consent:
    return dataclasses.replace(consent, grantor=dataclasses.replace(consent.grantor, **changes))


def test_the_shipped_examples_are_valid_for_their_children() -> None:
    assert check_consent(SUPLENCIA, UNACCOMPANIED, NOW) == []
    assert check_consent(MOTHER, WITH_MOTHER, datetime(2024, 2, 20, tzinfo=UTC)) == []


def test_a_parent_does_not_grant_for_an_unaccompanied_child() -> None:
    consent = grantor(MOTHER, related_person_ref="rp1")
    consent = dataclasses.replace(consent, child_id=UNACCOMPANIED.child_id)
    assert codes(check_consent(consent, UNACCOMPANIED)) == ["procuraduria_grants_for_unaccompanied"]


def test_the_grantor_must_hold_custody() -> None:
    consent = grantor(MOTHER, related_person_ref="tio")
    problems = check_consent(consent, WITH_MOTHER)
    assert codes(problems) == ["grantor_not_custodian"]
    assert "madre (parent)" in problems[0].en  # tells who does hold custody
    assert codes(check_consent(grantor(MOTHER, type="guardian"), WITH_MOTHER)) == [
        "grantor_not_custodian"
    ]
    assert (
        check_consent(grantor(MOTHER, type="guardian", related_person_ref="abuela"), WITH_MOTHER)
        == []
    )


def test_unknown_custody_entitles_no_parent() -> None:
    child = dataclasses.replace(WITH_MOTHER, custodians=None)
    assert codes(check_consent(MOTHER, child)) == ["custody_unknown"]


def test_a_conflict_of_interest_moves_the_grant_to_the_procuraduria() -> None:
    child = dataclasses.replace(WITH_MOTHER, conflict_of_interest=True)
    assert codes(check_consent(MOTHER, child)) == ["conflict_of_interest"]
    by_procuraduria = dataclasses.replace(
        SUPLENCIA,
        child_id=child.child_id,
        period=Period(datetime(2024, 3, 14, tzinfo=UTC), datetime(2025, 3, 14, tzinfo=UTC)),
    )
    assert check_consent(by_procuraduria, child) == []


def test_the_procuraduria_does_not_grant_for_a_child_with_a_custodian() -> None:
    consent = dataclasses.replace(SUPLENCIA, child_id=WITH_MOTHER.child_id)
    assert codes(check_consent(consent, WITH_MOTHER)) == ["procuraduria_not_entitled"]
    no_one = dataclasses.replace(WITH_MOTHER, custodians=())  # on record: no one holds custody
    assert check_consent(consent, no_one) == []


def test_the_procuraduria_must_be_named_and_represent_the_child() -> None:
    assert codes(check_consent(grantor(SUPLENCIA, agency_id=None), UNACCOMPANIED)) == [
        "procuraduria_agency_missing"
    ]
    assert codes(
        check_consent(grantor(SUPLENCIA, agency_id="mx.oax.procuraduria"), UNACCOMPANIED)
    ) == ["procuraduria_not_representing"]


def test_an_adolescent_may_only_restrict() -> None:
    restricting = Consent(
        "active",
        UNACCOMPANIED.child_id or "",
        Grantor("child", identity_verified=True),
        "deny",
        grantees=(ActorRef(agency_id="mx.fed.inm"),),
        period=Period(NOW, NOW + timedelta(days=30)),
        provisions=(Provision("deny", categories=frozenset({"contact_location"})),),
    )
    assert check_consent(restricting, UNACCOMPANIED, NOW) == []
    opening = dataclasses.replace(
        restricting, provisions=(Provision("permit", actors=(ActorRef(agency_id="mx.fed.comar"),)),)
    )
    assert codes(check_consent(opening, UNACCOMPANIED, NOW)) == ["child_grantor_permits"]


def test_the_grantor_must_be_verified() -> None:
    assert codes(check_consent(grantor(SUPLENCIA, identity_verified=None), UNACCOMPANIED)) == [
        "grantor_not_verified"
    ]


def test_a_period_past_the_18th_birthday_is_refused() -> None:
    late = dataclasses.replace(SUPLENCIA, period=Period(NOW, datetime(2026, 7, 3, tzinfo=UTC)))
    problems = check_consent(late, UNACCOMPANIED, NOW)
    assert codes(problems) == ["period_after_18th_birthday"]
    assert "2026-07-02" in problems[0].en
    on_time = dataclasses.replace(
        SUPLENCIA, period=Period(NOW, datetime(2026, 7, 2, 5, tzinfo=UTC))
    )
    assert check_consent(on_time, UNACCOMPANIED, NOW) == []


def test_an_unknown_age_needs_an_end() -> None:
    ageless = dataclasses.replace(UNACCOMPANIED, date_of_birth=None)
    open_ended = dataclasses.replace(SUPLENCIA, period=Period(NOW, None))
    assert codes(check_consent(open_ended, ageless, NOW)) == ["age_unknown_no_end"]
    assert check_consent(SUPLENCIA, ageless, NOW) == []


def test_no_consent_is_recorded_for_an_adult_and_no_empty_period() -> None:
    assert "already_adult" in codes(
        check_consent(SUPLENCIA, UNACCOMPANIED, datetime(2026, 7, 2, 12, tzinfo=UTC))
    )
    backwards = dataclasses.replace(SUPLENCIA, period=Period(NOW, NOW - timedelta(days=1)))
    assert codes(check_consent(backwards, UNACCOMPANIED, NOW)) == ["period_empty"]


def test_a_permit_to_anyone_is_refused() -> None:
    anyone = dataclasses.replace(SUPLENCIA, grantees=(), decision="permit")
    assert codes(check_consent(anyone, UNACCOMPANIED, NOW)) == ["permit_to_anyone"]
    open_provision = dataclasses.replace(
        SUPLENCIA,
        grantees=(),
        provisions=(Provision("permit", purposes=frozenset({"health_care"})),),
    )
    problems = check_consent(open_provision, UNACCOMPANIED, NOW)
    assert codes(problems) == ["permit_to_anyone"] and problems[0].pointer == "/provision/0"
    # Nested under a provision that names its actors, an actor-less permit is fine.
    assert check_consent(dataclasses.replace(SUPLENCIA, grantees=()), UNACCOMPANIED, NOW) == []


def test_a_permit_to_a_role_alone_is_refused() -> None:
    """A role alone is every lawyer on the hub, not the child's: a permit must say whose."""
    anyone_of_the_role = ActorRef(role="legal_representative")
    the_clinics = ActorRef(role="legal_representative", agency_id="mx.chp.clinica-juridica")
    lawyers = dataclasses.replace(
        SUPLENCIA,
        grantees=(ActorRef(agency_id="mx.fed.comar"), anyone_of_the_role),
        provisions=(
            Provision(
                "permit",
                actors=(anyone_of_the_role,),
                purposes=frozenset({"legal_representation"}),
                provisions=(Provision("permit", actors=(ActorRef(role="caseworker"),)),),
            ),
        ),
    )
    problems = check_consent(lawyers, UNACCOMPANIED, NOW)
    assert codes(problems) == ["role_without_agency"] * 3
    assert [p.pointer for p in problems] == [
        "/grantee/1",
        "/provision/0/actor/0",
        "/provision/0/provision/0/actor/0",
    ]
    assert "any lawyer of any state" in problems[0].en and "agency_id" in problems[0].es
    named = dataclasses.replace(
        lawyers,
        grantees=(ActorRef(agency_id="mx.fed.comar"), the_clinics),
        provisions=(Provision("permit", actors=(the_clinics,)),),
    )
    assert check_consent(named, UNACCOMPANIED, NOW) == []
    # A role alone may still be refused something: a restriction protects the child from all.
    denies = dataclasses.replace(
        named, provisions=(*named.provisions, Provision("deny", actors=(anyone_of_the_role,)))
    )
    assert check_consent(denies, UNACCOMPANIED, NOW) == []


def test_a_consent_for_another_child() -> None:
    assert "other_child" in codes(check_consent(SUPLENCIA, WITH_MOTHER, NOW))


# --- overrides, grants, views -------------------------------------------------------------------

OVERRIDE = Override(
    child_id="ch-7f3a9d2e",
    basis_code="missing_child",
    justification="El adolescente salió del albergue hace 6 horas y hay indicios de trata.",
    categories=frozenset({"identity", "contact_location"}),
    starts=NOW,
    ends=NOW + timedelta(hours=24),
    by=ActorRef(agency_id="mx.chp.procuraduria", person_id="ov-chp-001"),
    by_roles=frozenset({"override_officer"}),
)


def test_a_proper_override_has_no_problem() -> None:
    assert check_override(OVERRIDE) == []
    assert check_override(dataclasses.replace(OVERRIDE, ends=NOW + timedelta(hours=72))) == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"justification": "   urgente   "}, "justification_required"),
        ({"ends": NOW + timedelta(hours=73)}, "override_too_long"),
        ({"ends": NOW}, "period_empty"),
        ({"by_roles": frozenset({"caseworker"})}, "override_role_required"),
        ({"by": ActorRef(agency_id="mx.chp.procuraduria")}, "override_person_required"),
    ],
)
def test_override_problems(changes: dict[str, object], code: str) -> None:
    assert codes(check_override(dataclasses.replace(OVERRIDE, **changes))) == [code]


def test_grant_problems() -> None:
    grant = Grant(
        "ch-7f3a9d2e",
        ActorRef(person_id="lr-1"),
        "legal_representation",
        frozenset({"identity"}),
        NOW + timedelta(days=30),
    )
    assert check_grant(grant, UNACCOMPANIED, NOW) == []
    assert codes(check_grant(grant, UNACCOMPANIED, NOW + timedelta(days=31))) == ["until_past"]
    late = dataclasses.replace(grant, until=datetime(2027, 1, 1, tzinfo=UTC))
    assert codes(check_grant(late, UNACCOMPANIED, NOW)) == ["period_after_18th_birthday"]


def test_view_problems() -> None:
    heard = ChildView("ch-1", date(2024, 5, 20), "assent")
    assert check_view(heard, date(2024, 6, 1)) == []
    assert codes(check_view(heard, date(2024, 5, 1))) == ["heard_in_future"]
    unheard = ChildView("ch-1", date(2024, 5, 20), "not_heard")
    assert codes(check_view(unheard)) == ["not_heard_reason_required"]
    assert check_view(dataclasses.replace(unheard, not_heard_reason="Lactante de 8 meses.")) == []
