"""The shared JSON Schemas (schemas/documents) and their examples (schemas/examples).

Checks every document against the draft 2020-12 metaschema and against Puente's own
conventions (data categories on every leaf, bilingual titles and enum labels, bounded
strings and arrays, ids that match paths), then validates every example: valid ones
must pass, invalid ones must fail at exactly the JSON pointers they list.

Uses only jsonschema and referencing, so it does not depend on the schemas package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
DOCUMENTS_DIR = SCHEMAS_DIR / "documents"
EXAMPLES_DIR = SCHEMAS_DIR / "examples"

BASE_URI = "https://schemas.puente.mx"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

DOCUMENT_NAMES = frozenset(
    {
        "common",
        "child",
        "related-person",
        "case-record",
        "consent",
        "access-request",
        "override",
        "audit-event",
    }
)
CATEGORIES = frozenset(
    {
        "identity",
        "contact_location",
        "family",
        "health",
        "education",
        "protection_concerns",
        "legal_status",
        "placement",
        "best_interest",
        "legal_representation",
    }
)
REQUIRED_PURPOSES = frozenset(
    {
        "case_management",
        "best_interest_determination",
        "legal_representation",
        "family_tracing_reunification",
        "health_care",
        "education",
        "asylum_procedure",
        "migration_procedure",
        "protection_measure",
        "oversight",
        "statistics",
    }
)
SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean", "null"})
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
FORBIDDEN_KEYWORDS = frozenset(
    {"$dynamicRef", "$dynamicAnchor", "unevaluatedProperties", "unevaluatedItems"}
)

# Keywords whose value is one subschema, a list of subschemas, or a map of subschemas.
SINGLE = ("items", "contains", "if", "then", "else", "not", "additionalProperties", "propertyNames")
LISTS = ("prefixItems", "allOf", "anyOf", "oneOf")
MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


DOCUMENT_PATHS = sorted(DOCUMENTS_DIR.glob("*/*.json"))
DOCUMENTS = {path: _load(path) for path in DOCUMENT_PATHS}
BY_ID = {doc["$id"]: doc for doc in DOCUMENTS.values()}
REGISTRY: Registry = Registry().with_resources(
    (uri, Resource.from_contents(doc, default_specification=DRAFT202012))
    for uri, doc in BY_ID.items()
)

EXAMPLE_PATHS = sorted(EXAMPLES_DIR.glob("*/*/*/*.json"))
VALID_EXAMPLES = [p for p in EXAMPLE_PATHS if p.parent.name == "valid"]
INVALID_EXAMPLES = [p for p in EXAMPLE_PATHS if p.parent.name == "invalid"]


def _doc_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _example_id(path: Path) -> str:
    return "/".join(path.relative_to(EXAMPLES_DIR).with_suffix("").parts)


def _schema_uri_for_example(path: Path) -> str:
    name, version = path.relative_to(EXAMPLES_DIR).parts[:2]
    return f"{BASE_URI}/{name}/{version}"


def _validator(uri: str) -> Draft202012Validator:
    return Draft202012Validator(BY_ID[uri], registry=REGISTRY)


def _walk(schema: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Yield (pointer, subschema, is_property) for each inline subschema; $ref is not followed."""
    if not isinstance(schema, dict):
        return
    yield pointer, schema, False
    for key in SINGLE:
        if isinstance(schema.get(key), dict):
            yield from _walk(schema[key], f"{pointer}/{key}")
    for key in LISTS:
        for index, sub in enumerate(schema.get(key, [])):
            yield from _walk(sub, f"{pointer}/{key}/{index}")
    for key in MAPS:
        for name, sub in schema.get(key, {}).items():
            sub_root = f"{pointer}/{key}/{name}"
            for sub_pointer, sub_schema, is_property in _walk(sub, sub_root):
                yield (
                    sub_pointer,
                    sub_schema,
                    is_property or (key == "properties" and sub_pointer == sub_root),
                )


def _resolve(schema: dict[str, Any], base_uri: str) -> tuple[dict[str, Any], str]:
    """Follow a chain of $ref from schema; answer the target and its base URI."""
    seen = set()
    while "$ref" in schema:
        target_uri = urljoin(base_uri, schema["$ref"])
        if target_uri in seen:
            break
        seen.add(target_uri)
        schema = REGISTRY.resolver(base_uri=base_uri).lookup(schema["$ref"]).contents
        base_uri = urldefrag(target_uri).url
    return schema, base_uri


def _is_leaf(schema: dict[str, Any], base_uri: str) -> bool:
    """A scalar-typed schema, an enum or const, or an array of leaves (following $ref)."""
    target, target_base = _resolve(schema, base_uri)
    types = target.get("type")
    types = set(types) if isinstance(types, list) else {types} if types else set()
    if "enum" in target or "const" in target or (types and types <= SCALAR_TYPES):
        return True
    if types == {"array"} and isinstance(target.get("items"), dict):
        return _is_leaf(target["items"], target_base)
    return False


def _leaf_categories(schema: dict[str, Any], base_uri: str, seen: set[int]) -> set[str]:
    """Categories of every leaf at or below schema, following $ref once per target."""
    if _is_leaf(schema, base_uri):
        if "x-category" in schema:
            return {schema["x-category"]}
        target, _ = _resolve(schema, base_uri)
        return {target.get("x-category", "<missing>")}
    if "$ref" in schema:
        target, target_base = _resolve(schema, base_uri)
        if id(target) in seen:
            return set()
        return _leaf_categories(target, target_base, seen | {id(target)})
    found: set[str] = set()
    for _, sub, _ in _walk(schema):
        if sub is not schema and _is_leaf(sub, base_uri):
            found |= _leaf_categories(sub, base_uri, seen)
        elif sub is not schema and "$ref" in sub:
            found |= _leaf_categories(sub, base_uri, seen)
    return found


def _pointer(error: ValidationError) -> str:
    parts = (str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path)
    return "".join("/" + part for part in parts)


def _leaf_count(instance: Any) -> int:
    if isinstance(instance, dict):
        return sum(_leaf_count(value) for value in instance.values())
    if isinstance(instance, list):
        return sum(_leaf_count(value) for value in instance)
    return 1


documents = pytest.mark.parametrize("path", DOCUMENT_PATHS, ids=_doc_id)


def test_every_document_is_present() -> None:
    assert {path.parent.name for path in DOCUMENT_PATHS} == DOCUMENT_NAMES
    assert {path.name for path in DOCUMENT_PATHS} == {"1.json"}


@documents
def test_document_is_a_valid_2020_12_schema(path: Path) -> None:
    Draft202012Validator.check_schema(DOCUMENTS[path])


@documents
def test_document_header(path: Path) -> None:
    doc = DOCUMENTS[path]
    assert doc["$schema"] == DRAFT_2020_12
    assert doc["$id"] == f"{BASE_URI}/{path.parent.name}/{path.stem}"
    assert doc["title"] and doc["description"]
    assert doc["x-title"]["es"] and doc["x-title"]["en"]
    # What the schema page tells a person, in each language (``description`` is for developers).
    assert doc["x-description"]["es"] and doc["x-description"]["en"]


@documents
def test_no_features_fast_validators_handle_badly(path: Path) -> None:
    for pointer, schema, _ in _walk(DOCUMENTS[path]):
        assert not FORBIDDEN_KEYWORDS & schema.keys(), pointer
        if "pattern" in schema:
            pattern = schema["pattern"]
            re.compile(pattern)
            assert "(?<" not in pattern and "(?P" not in pattern and "(?=" not in pattern, pointer
            assert "(?!" not in pattern and "\\Z" not in pattern and "\\A" not in pattern, pointer


@documents
def test_every_leaf_has_a_data_category(path: Path) -> None:
    doc = DOCUMENTS[path]
    missing = []
    for pointer, schema, _ in _walk(doc):
        if _is_leaf(schema, doc["$id"]) and schema.get("x-category") not in CATEGORIES:
            missing.append(pointer)
        if "x-category" in schema:
            assert schema["x-category"] in CATEGORIES, pointer
    assert not missing, f"leaves without a valid x-category: {missing}"


@documents
def test_object_categories_agree_with_their_leaves(path: Path) -> None:
    doc = DOCUMENTS[path]
    disagreements = []
    for pointer, schema, _ in _walk(doc):
        if "x-category" in schema and not _is_leaf(schema, doc["$id"]):
            below = _leaf_categories(schema, doc["$id"], set())
            if not below <= {schema["x-category"]}:
                disagreements.append(f"{pointer}: {schema['x-category']} over {sorted(below)}")
    assert not disagreements


@documents
def test_every_property_has_a_bilingual_title(path: Path) -> None:
    for pointer, schema, is_property in _walk(DOCUMENTS[path]):
        if is_property:
            title = schema.get("x-title", {})
            assert isinstance(title.get("es"), str) and title["es"].strip(), pointer
            assert isinstance(title.get("en"), str) and title["en"].strip(), pointer


@documents
def test_every_enum_value_has_bilingual_labels(path: Path) -> None:
    for pointer, schema, _ in _walk(DOCUMENTS[path]):
        if "enum" in schema:
            labels = schema.get("x-labels", {})
            assert set(labels) == {str(value) for value in schema["enum"]}, pointer
            for code, label in labels.items():
                assert re.fullmatch(r"[a-z0-9][a-z0-9_]*", code), f"{pointer}: {code}"
                assert label["es"].strip() and label["en"].strip(), f"{pointer}: {code}"


@documents
def test_documents_are_bounded_and_strict(path: Path) -> None:
    doc = DOCUMENTS[path]
    for pointer, schema, _ in _walk(doc):
        types = schema.get("type")
        if types == "object" and "properties" in schema:
            assert schema.get("additionalProperties") is False, pointer
        if types == "array":
            assert 0 < schema.get("maxItems", 0) <= 200, pointer
        if types == "string" and not {"enum", "const", "maxLength"} & schema.keys():
            pattern = schema.get("pattern", "")
            assert pattern.startswith("^") and pattern.endswith("$"), pointer
            assert not re.search(r"(?<!\\)[*+]|\{\d+,\}", pattern), (
                f"{pointer}: unbounded {pattern}"
            )
        if schema.get("format") == "date":
            assert schema.get("pattern") == DATE_PATTERN, pointer
        if schema.get("format") == "date-time":
            assert "pattern" in schema, pointer


def test_data_categories_and_purposes_are_the_agreed_codes() -> None:
    defs = BY_ID[f"{BASE_URI}/common/1"]["$defs"]
    assert set(defs["data_category"]["enum"]) == CATEGORIES
    assert REQUIRED_PURPOSES <= set(defs["purpose"]["enum"])


def test_every_schema_has_examples() -> None:
    for name in DOCUMENT_NAMES - {"common"}:
        assert len(list((EXAMPLES_DIR / name / "1" / "valid").glob("*.json"))) >= 2, name
        assert len(list((EXAMPLES_DIR / name / "1" / "invalid").glob("*.json"))) >= 4, name
    assert len(list((EXAMPLES_DIR / "case-record" / "1" / "valid").glob("*.json"))) >= 4


def test_typical_case_record_is_mid_size() -> None:
    typical = _load(EXAMPLES_DIR / "case-record" / "1" / "valid" / "typical.json")
    assert 60 <= _leaf_count(typical) <= 120


@pytest.mark.parametrize("path", VALID_EXAMPLES, ids=_example_id)
def test_valid_example_validates(path: Path) -> None:
    errors = [
        f"{_pointer(e)}: {e.message}"
        for e in _validator(_schema_uri_for_example(path)).iter_errors(_load(path))
    ]
    assert not errors


@pytest.mark.parametrize("path", INVALID_EXAMPLES, ids=_example_id)
def test_invalid_example_fails_where_it_says(path: Path) -> None:
    case = _load(path)
    assert set(case) == {"description", "expected_pointers", "document"}
    assert case["description"] and case["expected_pointers"]
    errors = list(_validator(_schema_uri_for_example(path)).iter_errors(case["document"]))
    assert {_pointer(error) for error in errors} == set(case["expected_pointers"]), [
        f"{_pointer(e)}: {e.message[:120]}" for e in errors
    ]


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_example_id)
def test_fast_validator_agrees(path: Path) -> None:
    """jsonschema-rs (the hub's fast path) agrees: same verdicts, same error pointers."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    registry = jsonschema_rs.Registry(list(BY_ID.items()))
    validator = jsonschema_rs.validator_for(BY_ID[_schema_uri_for_example(path)], registry=registry)
    example = _load(path)
    if path.parent.name == "valid":
        assert validator.is_valid(example)
        return
    pointers = {
        "".join(
            "/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.instance_path
        )
        for error in validator.iter_errors(example["document"])
    }
    assert pointers == set(example["expected_pointers"])
