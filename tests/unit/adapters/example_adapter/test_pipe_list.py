"""The pipe-list adapter passes the checks Puente's built-in adapters pass
(adapters/conformance.py, docs/adapters.md §7). Run with the hub's environment:
``python -m pytest test_pipe_list.py`` in this folder."""

from __future__ import annotations

import pytest
from puente_example_adapter import PipeListAdapter

from adapters.conformance import Check, ConformanceCase, GeneratedStream, check_name, checks_for


def line(number: int) -> str:
    """Line ``number`` of a made-up export, valid."""
    return f"F-{number:07d}|Ana María|López|{1 + number % 28:02d}/03/2012|HN\n"


CASE = ConformanceCase(
    name="pipe-list",
    good="".join(line(n) for n in range(1, 4)).encode(),
    # line 2 has three fields, line 4 a date that does not exist
    bad=(
        line(1) + "F-8|Luis|Pérez\n" + line(2) + "F-9|Ana|Ruiz|31/02/2015|GT\n" + line(3)
    ).encode(),
    bad_positions=frozenset({"2", "4"}),
    good_in_bad=3,
    round_trip=True,
    large=lambda count: GeneratedStream("", line, count),
)


@pytest.mark.parametrize("check", checks_for(CASE), ids=check_name)
def test_conformance(check: Check) -> None:
    check(PipeListAdapter(**CASE.options), CASE)
