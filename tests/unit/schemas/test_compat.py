"""Backward compatibility of schema versions: additive changes pass, narrowing is caught."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import IncompatibleSchema, check_compatibility, default_registry
from schemas.compat import require_compatible

REGISTRY = default_registry()
COMMON = "https://schemas.puente.mx/common/1#/$defs/"


def _schema(version: int, **properties: Any) -> dict[str, Any]:
    return {
        "$id": f"https://schemas.puente.mx/test-thing/{version}",
        "type": "object",
        "additionalProperties": False,
        "required": ["id"],
        "properties": {"id": {"type": "string", "maxLength": 20}, **properties},
    }


def _old() -> dict[str, Any]:
    return _schema(
        1,
        status={"type": "string", "enum": ["open", "closed"]},
        age={"type": "integer", "minimum": 0, "maximum": 17},
        born={"$ref": COMMON + "date"},
        tags={"type": "array", "items": {"type": "string"}, "maxItems": 3},
        code={"type": "string", "pattern": "^[A-Z]{2}$"},
    )


def _change(change: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    old = _old()
    new = copy.deepcopy(old)
    new["$id"] = "https://schemas.puente.mx/test-thing/2"
    change(new)
    return old, new


COMPATIBLE = {
    "identical": lambda new: None,
    "new optional property": lambda new: new["properties"].update(notes={"type": "string"}),
    "wider enum": lambda new: new["properties"]["status"]["enum"].append("transferred"),
    "wider type": lambda new: new["properties"]["code"].update(type=["string", "null"]),
    "integer to number": lambda new: new["properties"]["age"].update(type="number"),
    "higher maximum": lambda new: new["properties"]["age"].update(maximum=21),
    "no minimum": lambda new: new["properties"]["age"].pop("minimum"),
    "longer maxLength": lambda new: new["properties"]["id"].update(maxLength=40),
    "more items": lambda new: new["properties"]["tags"].update(maxItems=10),
    "no pattern": lambda new: new["properties"]["code"].pop("pattern"),
    "not required": lambda new: new.pop("required"),
    "open object": lambda new: new.update(additionalProperties=True),
    "same ref inline": lambda new: new["properties"].update(
        born={"type": "string", "format": "date", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}
    ),
}

INCOMPATIBLE = {
    "new required": (lambda new: new["required"].append("status"), "/status", "required"),
    "removed property": (lambda new: new["properties"].pop("code"), "/code", "removed"),
    "narrower enum": (
        lambda new: new["properties"]["status"]["enum"].remove("closed"),
        "/status",
        '"closed"',
    ),
    "narrower type": (lambda new: new["properties"]["age"].update(type="string"), "/age", "type"),
    "changed pattern": (
        lambda new: new["properties"]["code"].update(pattern="^[A-Z]{3}$"),
        "/code",
        "pattern",
    ),
    "shorter maxLength": (
        lambda new: new["properties"]["id"].update(maxLength=10),
        "/id",
        "maxLength",
    ),
    "higher minimum": (lambda new: new["properties"]["age"].update(minimum=5), "/age", "minimum"),
    "fewer items": (
        lambda new: new["properties"]["tags"].update(maxItems=2),
        "/tags",
        "maxItems",
    ),
    "narrower items": (
        lambda new: new["properties"]["tags"]["items"].update(maxLength=5),
        "/tags/*",
        "maxLength",
    ),
    "new format": (
        lambda new: new["properties"]["id"].update(format="email"),
        "/id",
        "format",
    ),
    "ref target narrower": (
        lambda new: new["properties"].update(born={"$ref": COMMON + "country_code"}),
        "/born",
        "pattern",
    ),
    "new anyOf": (
        lambda new: new.update(anyOf=[{"required": ["status"]}, {"required": ["age"]}]),
        "/",
        "anyOf",
    ),
    "unique items": (
        lambda new: new["properties"]["tags"].update(uniqueItems=True),
        "/tags",
        "unique",
    ),
}


@pytest.mark.parametrize("name", sorted(COMPATIBLE))
def test_additive_changes_are_compatible(name: str) -> None:
    old, new = _change(COMPATIBLE[name])
    assert check_compatibility(old, new, REGISTRY) == []
    require_compatible(old, new, REGISTRY)


@pytest.mark.parametrize("name", sorted(INCOMPATIBLE))
def test_narrowing_changes_are_reported(name: str) -> None:
    change, pointer, word = INCOMPATIBLE[name]
    old, new = _change(change)
    found = check_compatibility(old, new, REGISTRY)
    assert found, name
    assert any(item.pointer == pointer for item in found), found
    assert any(word in item.reason_en for item in found), found
    assert all(item.reason_es and item.reason_es != item.reason_en for item in found)
    with pytest.raises(IncompatibleSchema) as caught:
        require_compatible(old, new, REGISTRY)
    assert caught.value.incompatibilities == tuple(found)


@pytest.mark.parametrize(
    "name",
    sorted(set(COMPATIBLE) - {"identical", "same ref inline", "integer to number"}),
)
def test_the_reverse_of_a_widening_is_a_narrowing(name: str) -> None:
    old, new = _change(COMPATIBLE[name])
    assert check_compatibility(new, old, REGISTRY), name


def test_number_to_integer_is_a_narrowing() -> None:
    old = _schema(1, score={"type": "number"})
    new = _schema(2, score={"type": "integer"})
    (found,) = check_compatibility(old, new, REGISTRY)
    assert found.pointer == "/score" and "number" in found.reason_en


def test_what_cannot_be_proved_is_reported() -> None:
    # A partial date (YYYY, YYYY-MM or YYYY-MM-DD) accepts every full date, but proving one
    # regular expression contains another is beyond this checker: it says so.
    old, new = _change(
        lambda schema: schema["properties"].update(born={"$ref": COMMON + "partial_date"})
    )
    (found,) = check_compatibility(old, new, REGISTRY)
    assert found.pointer == "/born" and "pattern" in found.reason_en


def test_every_shipped_schema_is_compatible_with_itself() -> None:
    for info in REGISTRY.list():
        document = REGISTRY.document(info.name, info.version)
        assert check_compatibility(document, document, REGISTRY) == [], info.ref


def test_a_recursive_schema_terminates() -> None:
    def tree(version: int, max_length: int) -> dict[str, Any]:
        return {
            "$id": f"https://schemas.puente.mx/test-tree/{version}",
            "type": "object",
            "properties": {
                "label": {"type": "string", "maxLength": max_length},
                "children": {"type": "array", "items": {"$ref": "#"}},
            },
        }

    assert check_compatibility(tree(1, 5), tree(2, 9), REGISTRY) == []
    assert check_compatibility(tree(1, 9), tree(2, 5), REGISTRY)


# -- property: what is judged compatible really is --------------------------------------------

LEAVES: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "string", "maxLength": 3},
    {"type": "string", "minLength": 2},
    {"type": "string", "enum": ["a", "b"]},
    {"type": "string", "enum": ["a", "b", "c"]},
    {"type": "string", "pattern": "^[a-c]+$"},
    {"type": "integer"},
    {"type": "integer", "minimum": 0, "maximum": 5},
    {"type": "integer", "maximum": 3},
    {"type": "number"},
    {"type": ["string", "integer"]},
    {"type": "boolean"},
    {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
    {"type": "array", "items": {"type": "integer", "maximum": 3}},
    {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    {},
]


@st.composite
def schema_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    names = ["a", "b", "c", "d"]

    def object_schema(version: int) -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=4))
        properties = {name: draw(st.sampled_from(LEAVES)) for name in chosen}
        schema: dict[str, Any] = {
            "$id": f"https://schemas.puente.mx/test-random/{version}",
            "type": "object",
            "properties": properties,
            "required": draw(st.lists(st.sampled_from(chosen), unique=True)) if chosen else [],
        }
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    old = object_schema(1)
    if draw(st.booleans()):  # a random independent schema
        return old, object_schema(2)
    new = copy.deepcopy(old)  # or a few small edits of the old one
    new["$id"] = "https://schemas.puente.mx/test-random/2"
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from(["add", "drop", "swap", "require", "unrequire", "open"]))
        name = draw(st.sampled_from(names))
        if edit == "add":
            new["properties"].setdefault(name, draw(st.sampled_from(LEAVES)))
        elif edit == "drop":
            new["properties"].pop(name, None)
            new["required"] = [each for each in new["required"] if each != name]
        elif edit == "swap" and name in new["properties"]:
            new["properties"][name] = draw(st.sampled_from(LEAVES))
        elif edit == "require" and name not in new["required"]:
            new["required"].append(name)
        elif edit == "unrequire":
            new["required"] = [each for each in new["required"] if each != name]
        elif edit == "open":
            new.pop("additionalProperties", None)
    return old, new


SCALARS = st.one_of(
    st.integers(-2, 8),
    st.sampled_from(["a", "b", "c", "ab", "abc", "abcd", "x", ""]),
    st.booleans(),
    st.floats(-1, 6, allow_nan=False),
    st.none(),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
DOCUMENTS = st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), VALUES, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=schema_pairs(), documents=st.lists(DOCUMENTS, min_size=20, max_size=20))
def test_compatible_pairs_accept_everything_the_old_schema_accepted(
    pair: tuple[dict[str, Any], dict[str, Any]], documents: list[dict[str, Any]]
) -> None:
    old, new = pair
    if check_compatibility(old, new, REGISTRY):
        return
    accepts_old = jsonschema_rs.validator_for(old).is_valid
    accepts_new = jsonschema_rs.validator_for(new).is_valid
    for document in documents:
        if accepts_old(document):
            assert accepts_new(document), (old, new, document)
