"""The fast copy of a schema (schemas.fastpath) accepts exactly what the schema does.

test_differential.py already holds the fast validator's verdict (which uses the copy) to the
reference one on mutated and generated documents; here each rewrite is checked on its own,
against ``jsonschema_rs`` compiling the schema as written, over instances built to hit the
edge the rewrite relies on.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import default_registry
from schemas.fastpath import DATE_SHAPE, fast_copy
from schemas.formats import is_date
from schemas.registry import EXAMPLES_DIR

REGISTRY = default_registry()


def _compile(schema: Any) -> Any:
    return jsonschema_rs.validator_for(schema, validate_formats=True).is_valid


def _same_verdicts(schema: dict[str, Any], instances: list[Any]) -> None:
    as_written, rewritten = _compile(schema), _compile(dict(fast_copy(schema)))
    for instance in instances:
        assert as_written(instance) == rewritten(instance), instance


KEYS = st.sampled_from(["agency_id", "name", "other", "type"])
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(["", "x", "mx.dif"]))
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=4)
INSTANCES = st.one_of(OBJECTS, VALUES, st.lists(VALUES, max_size=2))


# -- each rewrite ------------------------------------------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(text=st.one_of(st.text(alphabet="0123456789-T :Z٣１\n", max_size=12), st.text(max_size=12)))
def test_a_date_format_only_accepts_the_date_shape(text: str) -> None:
    # Why the pattern beside format: date can go: whatever the format accepts, it matches.
    shape = jsonschema_rs.validator_for({"pattern": DATE_SHAPE}).is_valid
    if _compile({"format": "date"})(text) or is_date(text):
        assert shape(text), text


def test_the_date_pattern_goes_only_beside_format_date() -> None:
    dated = {"type": "string", "format": "date", "pattern": DATE_SHAPE}
    assert fast_copy(dated) == {"type": "string", "format": "date"}
    for kept in ({"type": "string", "pattern": DATE_SHAPE}, {"format": "date", "pattern": "^2"}):
        assert fast_copy(kept) == kept
    _same_verdicts(dated, ["2024-02-29", "2023-02-29", "2024-2-01", "٢٠٢٤-01-01", 5, None])


@settings(max_examples=300, deadline=None)
@given(instance=INSTANCES)
def test_type_string_goes_beside_an_enum_of_strings(instance: Any) -> None:
    codes = {"type": "string", "enum": ["x", "mx.dif"]}
    assert "type" not in fast_copy(codes)
    _same_verdicts(codes, [instance])
    _same_verdicts({"type": "string", "const": "x"}, [instance])
    mixed = {"type": "string", "enum": ["x", 1]}
    assert fast_copy(mixed) == mixed


CLOSED = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"agency_id": {"type": "string"}, "name": {"type": "string"}},
}


@settings(max_examples=500, deadline=None)
@given(instance=INSTANCES)
def test_any_of_every_property_becomes_min_properties_in_a_closed_object(instance: Any) -> None:
    either = {**CLOSED, "anyOf": [{"required": ["agency_id"]}, {"required": ["name"]}]}
    assert fast_copy(either)["minProperties"] == 1 and "anyOf" not in fast_copy(either)
    both = {**CLOSED, "required": ["name", "agency_id"]}
    assert fast_copy(both)["minProperties"] == 2 and "required" not in fast_copy(both)
    for schema in (either, both, {**either, "minProperties": 2}):
        _same_verdicts(schema, [instance])


@pytest.mark.parametrize(
    "schema",
    [
        {**CLOSED, "additionalProperties": True, "anyOf": [{"required": ["agency_id"]}]},
        {**CLOSED, "anyOf": [{"required": ["agency_id"]}]},  # not every property
        {**CLOSED, "patternProperties": {"^x": {}}, "required": ["agency_id", "name"]},
        {**CLOSED, "minProperties": 1.0, "required": ["agency_id", "name"]},
        {**CLOSED, "required": ["agency_id"]},
        {"additionalProperties": False, "properties": {"a": {}}, "required": ["a"]},  # no type
    ],
)
def test_other_objects_keep_their_keywords(schema: dict[str, Any]) -> None:
    assert fast_copy(schema) == schema


def test_annotations_go_and_names_and_values_stay() -> None:
    schema = {
        "title": "t",
        "description": "d",
        "x-title": {"es": "t", "en": "t"},
        "properties": {"title": {"enum": [{"title": "kept"}], "x-category": "identity"}},
        "$defs": {"description": {"const": {"x-labels": 1}, "$comment": "c"}},
    }
    assert fast_copy(schema) == {
        "properties": {"title": {"enum": [{"title": "kept"}]}},
        "$defs": {"description": {"const": {"x-labels": 1}}},
    }


def test_position_dependent_keywords_leave_the_document_as_it_is() -> None:
    schema = {"title": "t", "unevaluatedProperties": False, "properties": {"a": {}}}
    assert fast_copy(schema) is schema


# -- on the shipped documents ----------------------------------------------------------------


def test_the_shipped_documents_are_rewritten_and_left_untouched() -> None:
    common = REGISTRY.by_id("https://schemas.puente.mx/common/1")
    before = copy.deepcopy(common)
    fast = fast_copy(common)
    assert common == before
    assert "pattern" not in fast["$defs"]["date"] and common["$defs"]["date"]["pattern"]
    assert fast["$defs"]["agency_ref"]["minProperties"] == 1
    assert "anyOf" not in fast["$defs"]["agency_ref"]
    assert "x-title" not in json.dumps(fast)


EXAMPLES = sorted(EXAMPLES_DIR.glob("*/*/*/*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: "/".join(path.parts[-4:]))
def test_fast_and_as_written_agree_on_every_shipped_example(path: Any) -> None:
    name, version, kind = path.parts[-4:-1]
    validator = REGISTRY.validator(name, version)
    document = json.loads(path.read_text("utf-8"))
    verdict = validator.is_valid(document)
    assert verdict == validator._compiled.is_valid(document) == (kind == "valid")
