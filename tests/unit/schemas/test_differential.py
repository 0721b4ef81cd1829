"""The fast validator (jsonschema_rs) against the reference one (jsonschema).

Documents come from two sources: shipped valid examples with random mutations (the errors a
sending system really makes: a field dropped, a wrong type, a typo in a code or a key, an
impossible date), and hypothesis strategies built from the schemas themselves. Both
validators must agree on validity and report exactly the same failures.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import default_registry
from schemas.fields import resolve_uri
from schemas.formats import ecma_pattern, is_date, is_date_time
from schemas.registry import EXAMPLES_DIR

REGISTRY = default_registry()
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLES = sorted(EXAMPLES_DIR.glob("*/*/valid/*.json"))
SCHEMAS = sorted({(path.parents[2].name, path.parents[1].name) for path in EXAMPLES})


def _agree(name: str, version: str, document: Any) -> None:
    validator = REGISTRY.validator(name, version)
    fast_valid = validator.is_valid(document)
    assert fast_valid == validator.reference.is_valid(document), document
    fast, reference = validator.errors(document), validator.reference.errors(document)
    assert fast == reference, document
    assert (fast == []) == fast_valid
    assert validator.validate(document) == fast


# -- mutations of real documents --------------------------------------------------------------


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*path, index)))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for token in path:
        value = value[token]
    return value


def _broken_string(text: str, draw: st.DrawFn) -> Any:
    return draw(
        st.sampled_from(
            [
                text.lower(),
                text.upper(),
                text + "x",
                text[:-1],
                "",
                " " + text,
                text + "\n",
                "2023-02-29",
                "2024-13-01",
                "2024-01-01T25:00:00Z",
                "02/07/2008",
                "٢٠٢٤-٠١-٠١",
                "x" * 10_001,
                "nombre@@dominio",
            ]
        )
    )


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.just([]),
    st.just({}),
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str, Any]:
    path = draw(st.sampled_from(EXAMPLES))
    document = json.loads(path.read_text("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(_paths(document)))
        value = _get(document, target)
        action = draw(st.sampled_from(["drop", "junk", "string", "extra", "duplicate", "empty"]))
        if action == "drop" and target:
            parent = _get(document, target[:-1])
            del parent[target[-1]]
        elif action == "junk" and target:
            _get(document, target[:-1])[target[-1]] = draw(JUNK)
        elif action == "string" and target and isinstance(value, str):
            _get(document, target[:-1])[target[-1]] = _broken_string(value, draw)
        elif action == "extra" and isinstance(value, dict):
            key = draw(st.sampled_from(["notes", "nationalty", "a/b~c", "", "status"]))
            value[key] = draw(JUNK)
        elif action == "duplicate" and isinstance(value, list) and value:
            value.append(copy.deepcopy(value[0]))
        elif action == "empty" and isinstance(value, (dict, list)):
            value.clear()
    return path.parents[2].name, path.parents[1].name, document


@SETTINGS
@given(case=mutated())
def test_mutated_examples_get_the_same_verdict_and_failures(case: tuple[str, str, Any]) -> None:
    _agree(*case)


# -- documents generated from the schemas -----------------------------------------------------


def _strategy(node: Any, base: str, depth: int = 0) -> st.SearchStrategy[Any]:
    if node is True or not isinstance(node, Mapping):
        return JUNK
    if node is False:
        return st.just(None)
    if "$ref" in node:
        target = urljoin(base, node["$ref"])
        return st.deferred(
            lambda: _strategy(resolve_uri(REGISTRY.by_id, target), target.partition("#")[0], depth)
        )
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kinds = node.get("type")
    if isinstance(kinds, list):
        return st.one_of([_strategy({**node, "type": kind}, base, depth) for kind in kinds])
    if kinds == "object" or (kinds is None and "properties" in node):
        properties = node.get("properties", {})
        if depth > 6:
            return st.just({})
        required = {
            n: _strategy(s, base, depth + 1)
            for n, s in properties.items()
            if n in node.get("required", ())
        }
        optional = {
            n: _strategy(s, base, depth + 1) for n, s in properties.items() if n not in required
        }
        return st.fixed_dictionaries(required, optional=optional)
    if kinds == "array":
        items = _strategy(node.get("items", True), base, depth + 1)
        low = node.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, min(node.get("maxItems", 3), 3)))
    if kinds == "string":
        if node.get("format") == "date":
            return st.dates().map(datetime.date.isoformat)
        if node.get("format") == "date-time":
            return st.datetimes(timezones=st.just(datetime.UTC)).map(
                lambda moment: moment.isoformat().replace("+00:00", "Z")
            )
        if "pattern" in node:
            return st.from_regex(ecma_pattern(node["pattern"]), fullmatch=True)
        low = node.get("minLength", 0)
        return st.text(min_size=low, max_size=max(low, min(node.get("maxLength", 20), 20)))
    if kinds == "integer":
        return st.integers(node.get("minimum", -5), node.get("maximum", 100))
    if kinds == "number":
        return st.floats(node.get("minimum", -5), node.get("maximum", 100))
    if kinds == "boolean":
        return st.booleans()
    return JUNK


@pytest.mark.parametrize(("name", "version"), SCHEMAS, ids=["/".join(s) for s in SCHEMAS])
def test_generated_documents_get_the_same_verdict_and_failures(name: str, version: str) -> None:
    info = next(info for info in REGISTRY.list() if (info.name, info.version) == (name, version))
    documents = _strategy(REGISTRY.by_id(info.id), info.id)
    outcomes: list[bool] = []

    @settings(SETTINGS, max_examples=60)
    @given(document=documents)
    def check(document: Any) -> None:
        _agree(name, version, document)
        outcomes.append(REGISTRY.validator(name, version).is_valid(document))

    check()
    assert outcomes


# -- the two format implementations -----------------------------------------------------------

RS_DATE = jsonschema_rs.validator_for({"format": "date"}, validate_formats=True).is_valid
RS_DATE_TIME = jsonschema_rs.validator_for({"format": "date-time"}, validate_formats=True).is_valid
DIGITS = st.sampled_from(
    ["00", "01", "02", "09", "12", "13", "23", "24", "28", "29", "30", "31", "59", "60", "61", "99"]
)
YEARS = st.sampled_from(["0000", "0400", "1900", "2000", "2023", "2024", "9999", "٢٠٢٤"])


@st.composite
def date_like(draw: st.DrawFn) -> str:
    date = f"{draw(YEARS)}-{draw(DIGITS)}-{draw(DIGITS)}"
    if draw(st.booleans()):
        return date
    separator = draw(st.sampled_from(["T", "t", " ", "_"]))
    fraction = draw(st.sampled_from(["", ".5", ".123456789", "."]))
    offset = draw(st.sampled_from(["Z", "z", "", "+00:00", "-08:00", "+05:30", "+24:00", "-00:60"]))
    time = f"{draw(DIGITS)}:{draw(DIGITS)}:{draw(DIGITS)}"
    return f"{date}{separator}{time}{fraction}{offset}"


@settings(max_examples=1500, deadline=None)
@given(text=st.one_of(date_like(), st.text(max_size=30)))
def test_python_formats_match_jsonschema_rs(text: str) -> None:
    assert is_date(text) == RS_DATE(text), text
    assert is_date_time(text) == RS_DATE_TIME(text), text


def test_leap_seconds_and_year_zero_follow_jsonschema_rs() -> None:
    for text in ("2016-12-31T23:59:60Z", "2016-12-31T15:59:60-08:00", "0000-01-01T00:00:00Z"):
        assert is_date_time(text) and RS_DATE_TIME(text)
    assert not is_date_time("2016-12-31T22:59:60Z") and not RS_DATE_TIME("2016-12-31T22:59:60Z")


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="09aZ_-.@ \n\u00a0\ufeff\u2028٣é", max_size=10))
def test_ecma_patterns_match_jsonschema_rs(text: str) -> None:
    for pattern in (r"^\d{2}$", r"^[^@\s]+@[^@\s]+$", r"^\w+$", r"^\S*$", r"a$"):
        expected = jsonschema_rs.validator_for({"pattern": pattern}).is_valid(text)
        assert bool(ecma_pattern(pattern).search(text)) == expected, (pattern, text)
