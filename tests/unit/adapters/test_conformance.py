"""The conformance checks (adapters/conformance.py, STYLE.md point 7) on every built-in adapter,
got from the registry as ``puente import`` gets it, with the cases in conformance_cases.py;
the example package (example_adapter/) found through its entry point; and the checks
themselves, on adapters broken on purpose.

An adapter installed from elsewhere is its own package's to test: its tests call
adapters/conformance.py (docs/adapters.md §7, example_adapter/test_pipe_list.py, which pytest
collects here too). This suite neither needs nor runs a case for it, so installing one next
to Puente does not break Puente's tests.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest
from conformance_cases import CASES
from test_adapter_registry import example_installed, install, site  # noqa: F401 (fixtures)

from adapters import conformance, registry
from adapters.base import Item, Problem
from adapters.conformance import Check, ConformanceCase
from adapters.native import NdjsonAdapter

# The example's case is in the test file its package carries; pytest imports that file with
# its folder on sys.path (no __init__.py), and so does this module.
EXAMPLE = Path(__file__).parent / "example_adapter"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))
from test_pipe_list import CASE as EXAMPLE_CASE  # noqa: E402


def adapters_with_cases_here() -> set[str]:
    """The registered adapters this suite must have a case for: the built-ins and the
    example package."""
    return {
        name
        for name, info in registry.registered().items()
        if info.builtin or name == EXAMPLE_CASE.name
    }


@pytest.mark.usefixtures("example_installed")
def test_every_builtin_adapter_and_the_example_have_a_case() -> None:
    missing = adapters_with_cases_here() - {*CASES, EXAMPLE_CASE.name}
    assert not missing, f"add a ConformanceCase for {sorted(missing)} to conformance_cases.py"
    assert set(registry.BUILTINS) <= set(CASES)


def test_an_adapter_installed_from_elsewhere_needs_no_case_here(site: Path) -> None:  # noqa: F811
    """A developer's own adapter installed in the same environment (docs/adapters.md §7) is
    tested by its package, and leaves this suite passing."""
    install(site, "sigeca-puente", "1.0.0", {"sigeca": "sigeca_puente:SigecaAdapter"})
    assert "sigeca" in registry.registered()
    assert "sigeca" not in adapters_with_cases_here()


@pytest.mark.parametrize(
    ("name", "check"),
    [
        pytest.param(name, check, id=f"{name}-{conformance.check_name(check)}")
        for name, case in sorted(CASES.items())
        for check in conformance.checks_for(case)
    ],
)
def test_builtin_adapter(name: str, check: Check) -> None:
    case = CASES[name]
    check(registry.get(name, **case.options), case)


@pytest.mark.usefixtures("example_installed")
def test_the_example_is_found_through_its_entry_point() -> None:
    """Its every check runs in its own test file; here, what only an installed package shows:
    the entry point gives the adapter, under its name, with write_rejects."""
    adapter = registry.get(EXAMPLE_CASE.name, **EXAMPLE_CASE.options)
    conformance.check_protocol(adapter, EXAMPLE_CASE)
    assert registry.registered()[EXAMPLE_CASE.name].builtin is False


def test_checks_for_leaves_out_what_the_format_cannot_do() -> None:
    names = [conformance.check_name(check) for check in conformance.checks_for(CASES["json"])]
    assert names == ["protocol", "good_input", "bad_input", "rejects", "round_trip"]
    streaming = dataclasses.replace(CASES["json"], round_trip=False, large=lambda n: io.BytesIO())
    assert conformance.check_bounded_memory in conformance.checks_for(streaming)
    assert conformance.check_round_trip not in conformance.checks_for(streaming)


# -- the checks catch what they are for ------------------------------------------------------


class _WithoutRejects:
    """An adapter as the example package was: everything but write_rejects."""

    def __init__(self) -> None:
        self._inner = NdjsonAdapter()
        self.name = "ndjson"
        self.media_types = self._inner.media_types

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        return self._inner.decode(stream)

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        self._inner.encode(documents, out)


class _EnglishOnly(NdjsonAdapter):
    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        for item in super().decode(stream):
            problems = tuple(Problem(p.pointer, p.en, p.en) for p in item.problems)
            yield dataclasses.replace(item, problems=problems)


class _DropsTheSex(NdjsonAdapter):
    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        kept = []
        for document in documents:
            child = {k: v for k, v in document["data"]["child"].items() if k != "sex"}
            kept.append({**document, "data": {**document["data"], "child": child}})
        super().encode(kept, out)


class _PositionsAsNumbers(NdjsonAdapter):
    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        for item in super().decode(stream):
            yield dataclasses.replace(item, position=int(item.position))  # type: ignore[arg-type]


class _ReadsItAll(NdjsonAdapter):
    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        return super().decode(io.BytesIO(stream.read()))


def _fails(check: Check, adapter: Any, case: ConformanceCase) -> str:
    with pytest.raises(AssertionError) as caught:
        check(adapter, case)
    return str(caught.value)


def test_an_adapter_without_write_rejects_fails_the_protocol_and_rejects_checks() -> None:
    case = CASES["ndjson"]
    for check in (conformance.check_protocol, conformance.check_rejects):
        said = _fails(check, _WithoutRejects(), case)
        assert "the adapter needs write_rejects(items, out)" in said
        assert "el adaptador necesita write_rejects" in said


def test_an_item_that_breaks_the_contract_is_caught_as_puente_import_would() -> None:
    said = _fails(conformance.check_good_input, _PositionsAsNumbers(), CASES["ndjson"])
    assert "item 1 of decode: position must be text (a str, such as '2' or 'data[3]')" in said


def test_a_name_other_than_the_registered_one_is_caught() -> None:
    said = _fails(conformance.check_protocol, NdjsonAdapter(), CASES["json"])
    assert "name is 'ndjson', want 'json', its registered name" in said


def test_problems_in_one_language_only_are_caught() -> None:
    said = _fails(conformance.check_bad_input, _EnglishOnly(), CASES["ndjson"])
    assert "the Spanish or the English message is missing" in said
    assert said.startswith("posición 2")


def test_a_round_trip_that_loses_a_field_names_where() -> None:
    said = _fails(conformance.check_round_trip, _DropsTheSex(), CASES["ndjson"])
    assert "document 0 changed in the round trip at /data/child/sex: " in said
    assert "→ (missing)" in said


def test_wrong_positions_are_said_with_both_lists() -> None:
    case = dataclasses.replace(CASES["ndjson"], bad_positions=frozenset({"2", "3"}))
    said = _fails(conformance.check_bad_input, NdjsonAdapter(), case)
    assert "rejected positions ['2', '4', '5'], want ['2', '3']" in said


def test_an_adapter_that_reads_the_whole_input_fails_the_memory_check() -> None:
    bound = 512 * 1024  # a quarter of the usual bound, for speed (ndjson's peak is ~0.35 MB)
    said = _fails(
        lambda adapter, case: conformance.check_bounded_memory(adapter, case, bound),
        _ReadsItAll(),
        CASES["ndjson"],
    )
    assert "bytes read, bound 524,288" in said and said.startswith("pico de ")
    conformance.check_bounded_memory(NdjsonAdapter(), CASES["ndjson"], bound)
