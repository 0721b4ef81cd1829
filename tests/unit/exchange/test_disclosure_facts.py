"""What the hub works out for the consent engine and from its decisions: one child's facts
from several records (where they disagree, the protective reading), and which consents a
disclosure rests on."""

from __future__ import annotations

from datetime import date

from consent import ChildFacts, Decision, Reason
from exchange.disclosure import consents_that_permitted, merge_facts


def test_the_youngest_date_of_birth_any_record_states_counts() -> None:
    newest_says_adult = ChildFacts(child_id="c", date_of_birth=date(1990, 1, 1))
    older_says_thirteen = ChildFacts(child_id="c", date_of_birth=date(2013, 5, 5))
    merged = merge_facts("c", [newest_says_adult, older_says_thirteen])
    assert merged.date_of_birth == date(2013, 5, 5)


def test_an_age_estimate_younger_than_a_stated_date_wins() -> None:
    stated = ChildFacts(child_id="c", date_of_birth=date(2008, 1, 1))
    estimated = ChildFacts(child_id="c", estimated_age_years=12, age_assessed_on=date(2026, 1, 1))
    merged = merge_facts("c", [stated, estimated])
    assert merged.date_of_birth is None
    assert (merged.estimated_age_years, merged.age_assessed_on) == (12, date(2026, 1, 1))


def test_records_that_agree_keep_the_newest_records_reading() -> None:
    newest = ChildFacts(child_id="c", date_of_birth=date(2012, 3, 4))
    older = ChildFacts(child_id="c", date_of_birth=date(2012, 3, 4), accompaniment="separated")
    merged = merge_facts("c", [newest, older])
    assert merged.date_of_birth == date(2012, 3, 4) and merged.accompaniment == "separated"


def test_no_dates_at_all_leave_the_age_unknown() -> None:
    assert merge_facts("c", [ChildFacts(child_id="c")]).nominal_date_of_birth is None


# -- which consents a disclosure rests on ---------------------------------------------------------


def reason(code: str, result: str, categories: tuple[str, ...], ref: str | None) -> Reason:
    return Reason(code, result, categories, "es", "en", ref)


def test_only_consents_that_permitted_what_was_disclosed_count() -> None:
    decision = Decision(
        "permit",
        "grant",
        ("identity",),
        ("health",),
        (
            reason("consent", "deny", ("identity", "health"), "cns_deny"),  # outweighed
            reason("grant", "permit", ("identity",), "grt_1"),
            reason("consent", "permit", ("identity",), "cns_permit"),
            reason("consent", "permit", ("health",), "cns_withheld_anyway"),
        ),
        consent_ids=("cns_deny", "cns_permit", "cns_withheld_anyway"),
        grant_ids=("grt_1",),
    )
    assert consents_that_permitted(decision) == ("cns_permit",)


def test_a_grant_alone_rests_on_no_consent() -> None:
    decision = Decision(
        "permit",
        "grant",
        ("identity",),
        (),
        (
            reason("consent", "deny", ("identity",), "cns_base_deny"),
            reason("grant", "permit", ("identity",), "grt_1"),
        ),
        consent_ids=("cns_base_deny",),
        grant_ids=("grt_1",),
    )
    assert consents_that_permitted(decision) == ()


def test_an_objection_counts_if_any_record_makes_the_child_an_adolescent() -> None:
    thirteen = ChildFacts(child_id="c", date_of_birth=date(2013, 1, 1))
    ten = ChildFacts(child_id="c", date_of_birth=date(2016, 1, 1))
    merged = merge_facts("c", [ten, thirteen])
    heard = date(2026, 6, 1)
    assert merged.age_on(heard) == 10  # consents run until the latest 18th birthday
    assert merged.oldest_age_on(heard) == 13  # but her objection is an adolescent's
    assert merge_facts("c", [thirteen, thirteen]).earliest_date_of_birth is None
