"""``check_view`` refuses views heard before the child was born also when the child's age is
only estimated: it read ``date_of_birth`` alone, which an estimate leaves None, so views heard
on 2000-01-01 were taken for a child nominally born in 2010."""

from __future__ import annotations

from datetime import date

from consent import ChildFacts, ChildView, check_view

#: 14 years old when assessed on 2024-01-15: born 2009-01-16 to 2010-01-15.
ESTIMATED = ChildFacts(child_id="nna_1", estimated_age_years=14, age_assessed_on=date(2024, 1, 15))
TODAY = date(2024, 6, 1)


def views_heard_on(day: date) -> ChildView:
    return ChildView(child_id="nna_1", heard_on=day, position="assent")


def codes(day: date, child: ChildFacts = ESTIMATED) -> list[str]:
    return [problem.code for problem in check_view(views_heard_on(day), TODAY, child)]


def test_views_heard_long_before_an_estimated_birth_are_refused() -> None:
    assert ESTIMATED.date_of_birth is None and ESTIMATED.earliest_date_of_birth is None
    assert codes(date(2000, 1, 1)) == ["heard_before_birth"]


def test_an_estimate_refuses_only_a_day_clearly_before_it() -> None:
    # Within a year before the latest possible birthday the estimate allows: it may be right.
    assert codes(date(2009, 6, 1)) == []
    assert codes(date(2009, 1, 14)) == []
    assert codes(date(2009, 1, 13)) == ["heard_before_birth"]
    assert codes(date(2024, 5, 31)) == []


def test_a_stated_date_of_birth_is_read_as_before() -> None:
    born = ChildFacts(child_id="nna_1", date_of_birth=date(2010, 3, 1))
    assert codes(date(2010, 2, 28), born) == ["heard_before_birth"]
    assert codes(date(2010, 3, 1), born) == []
    assert codes(date(2000, 1, 1), ChildFacts(child_id="nna_1")) == []
