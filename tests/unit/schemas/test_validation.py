"""Validation: shipped examples, pointers, messages in both languages, push envelopes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import (
    SchemaRegistry,
    ValidationFailure,
    check_envelope,
    default_registry,
    validate_envelope,
)
from schemas.registry import EXAMPLES_DIR
from schemas.validation import sort_failures

REGISTRY = default_registry()
VALID = sorted(EXAMPLES_DIR.glob("*/*/valid/*.json"))
INVALID = sorted(EXAMPLES_DIR.glob("*/*/invalid/*.json"))
TYPICAL = json.loads((EXAMPLES_DIR / "case-record/1/valid/typical.json").read_text("utf-8"))


def _schema_of(path: Path) -> tuple[str, str]:
    return path.parents[2].name, path.parents[1].name


def _example_id(path: Path) -> str:
    return str(path.relative_to(EXAMPLES_DIR))


def test_there_are_examples_for_every_schema_but_common() -> None:
    covered = {_schema_of(path)[0] for path in VALID} & {_schema_of(path)[0] for path in INVALID}
    assert covered == set(REGISTRY.names()) - {"common"}


@pytest.mark.parametrize("path", VALID, ids=_example_id)
def test_valid_examples_are_valid_for_both_validators(path: Path) -> None:
    validator = REGISTRY.validator(*_schema_of(path))
    document = json.loads(path.read_text("utf-8"))
    assert validator.is_valid(document)
    assert validator.validate(document) == []
    assert validator.errors(document) == []
    assert validator.reference.is_valid(document)
    assert validator.reference.errors(document) == []


@pytest.mark.parametrize("path", INVALID, ids=_example_id)
def test_invalid_examples_fail_at_the_expected_pointers(path: Path) -> None:
    wrapper = json.loads(path.read_text("utf-8"))
    validator = REGISTRY.validator(*_schema_of(path))
    document = wrapper["document"]
    expected = set(wrapper["expected_pointers"])
    assert not validator.is_valid(document)
    assert not validator.reference.is_valid(document)
    fast = validator.validate(document)
    reference = validator.reference.errors(document)
    assert {failure.pointer for failure in fast} == expected, wrapper["description"]
    assert {failure.pointer for failure in reference} == expected
    assert fast == reference  # same failures, same messages
    for failure in fast:
        assert failure.message_es and failure.message_en
        assert failure.message_es != failure.message_en


# -- messages ---------------------------------------------------------------------------------

TITLE = {"es": "Fecha de nacimiento", "en": "Date of birth"}
COMMON = "https://schemas.puente.mx/common/1#/$defs/"


def _failures(
    properties: dict[str, Any], document: dict[str, Any], **extra: Any
) -> list[ValidationFailure]:
    """Failures of ``document`` under a small schema, checked to be the same for both
    validators."""
    schema = {
        "$id": f"https://schemas.puente.mx/test-{abs(hash(json.dumps(properties)))}/1",
        "type": "object",
        "properties": properties,
        **extra,
    }
    validator = REGISTRY.compile(schema)
    fast, reference = validator.errors(document), validator.reference.errors(document)
    assert fast == reference
    assert fast and not validator.is_valid(document)
    return fast


def test_required_names_the_missing_field_by_its_title() -> None:
    (failure,) = _failures(
        {"date_of_birth": {"type": "string", "x-title": TITLE}}, {}, required=["date_of_birth"]
    )
    assert failure.pointer == "" and failure.keyword == "required"
    assert (
        failure.message("es") == "falta el campo obligatorio «fecha de nacimiento» (date_of_birth)"
    )
    assert failure.message("en") == "required field 'date of birth' (date_of_birth) is missing"


def test_required_without_title_uses_the_json_name() -> None:
    (failure,) = _failures({}, {}, required=["local_id"])
    assert failure.message_es == "falta el campo obligatorio «local_id»"
    assert failure.message_en == "required field 'local_id' is missing"


def test_type_says_what_was_expected_and_found() -> None:
    (failure,) = _failures({"urgent": {"type": "boolean"}}, {"urgent": "sí"})
    assert failure.pointer == "/urgent"
    assert "verdadero o falso" in failure.message_es and "un texto" in failure.message_es
    assert "true or false" in failure.message_en and '"sí"' in failure.message_en


def test_enum_lists_allowed_codes_with_labels_capped() -> None:
    codes = [f"code_{number:02}" for number in range(15)]
    labels = {code: {"es": f"Etiqueta {code}", "en": f"Label {code}"} for code in codes}
    (failure,) = _failures({"kind": {"enum": codes, "x-labels": labels}}, {"kind": "code_99"})
    assert '"code_00" (Etiqueta code_00)' in failure.message_es
    assert '"code_00" (Label code_00)' in failure.message_en
    assert "(y 5 más)" in failure.message_es and "(and 5 more)" in failure.message_en
    assert "code_14" not in failure.message_en


def test_enum_suggests_a_close_code() -> None:
    (failure,) = _failures({"sex": {"$ref": COMMON + "sex"}}, {"sex": "femal"})
    assert '¿quiso decir "female"?' in failure.message_es
    assert 'did you mean "female"?' in failure.message_en


def test_date_pattern_says_yyyy_mm_dd() -> None:
    (failure,) = _failures(
        {"date_of_birth": {"$ref": COMMON + "date", "x-title": TITLE}},
        {"date_of_birth": "15/03/2009"},
    )
    assert failure.keyword == "pattern"  # the format failure adds nothing and is dropped
    assert "AAAA-MM-DD" in failure.message_es and "«fecha de nacimiento»" in failure.message_es
    assert "YYYY-MM-DD" in failure.message_en and "'date of birth'" in failure.message_en


def test_impossible_calendar_date_is_a_format_failure() -> None:
    (failure,) = _failures({"day": {"$ref": COMMON + "date"}}, {"day": "2023-02-29"})
    assert failure.keyword == "format"
    assert "fecha válida del calendario" in failure.message_es
    assert "valid calendar date" in failure.message_en


@pytest.mark.parametrize("value", ["ABCD123", "EEFK080702HNEJCVA9XX"])
def test_a_fixed_length_value_of_the_wrong_length_gets_one_message(value: str) -> None:
    # The CURP's message names its 18 characters and its form; its length is not said again.
    (failure,) = _failures({"curp": {"$ref": COMMON + "curp"}}, {"curp": value})
    assert failure.keyword == "pattern"
    assert "CURP de 18 caracteres" in failure.message_es and "18-character" in failure.message_en


def test_a_length_is_still_said_where_the_form_does_not_fix_it() -> None:
    failures = _failures({"code": {"pattern": "^[a-z ]+$", "maxLength": 3}}, {"code": "ABCDE"})
    assert sorted(failure.keyword for failure in failures) == ["maxLength", "pattern"]


def test_unknown_pattern_shows_the_pattern() -> None:
    (failure,) = _failures({"code": {"pattern": "^[A-Z]{3}$"}}, {"code": "ab"})
    assert "^[A-Z]{3}$" in failure.message_es and "^[A-Z]{3}$" in failure.message_en


@pytest.mark.parametrize(
    ("schema", "value", "es", "en"),
    [
        ({"minLength": 1}, "", "no puede estar vacío", "must not be empty"),
        ({"minLength": 3}, "ab", "al menos 3 caracteres (tiene 2)", "at least 3 characters"),
        ({"maxLength": 3}, "abcd", "como máximo 3 caracteres (tiene 4)", "at most 3 characters"),
        ({"minimum": 1}, 0, "mayor o igual que 1", "at least 1"),
        ({"maximum": 72}, 96, "menor o igual que 72", "at most 72"),
        ({"exclusiveMinimum": 0}, 0, "mayor que 0", "greater than 0"),
        ({"exclusiveMaximum": 5}, 5, "menor que 5", "less than 5"),
        ({"multipleOf": 2}, 3, "múltiplo de 2", "a multiple of 2"),
        ({"minItems": 1}, [], "no puede ser una lista vacía", "must not be an empty list"),
        ({"minItems": 2}, [1], "al menos 2 elementos", "at least 2 items"),
        ({"maxItems": 1}, [1, 2], "como máximo 1 elementos", "at most 1 items"),
        ({"uniqueItems": True}, [1, 1], "elementos repetidos", "repeated items"),
        ({"const": "x"}, "y", 'exactamente "x"', 'exactly "x"'),
        ({"minProperties": 1}, {}, "al menos 1 campos", "at least 1 fields"),
        ({"not": {"type": "string"}}, "s", "no está permitido", "is not allowed here"),
        ({"format": "email"}, "not-an-email", "correo electrónico válido", "valid email"),
        ({"format": "date-time"}, "2024-01-01T25:00:00Z", "fecha y hora", "date and time"),
    ],
)
def test_each_keyword_has_a_message_in_both_languages(
    schema: dict[str, Any], value: Any, es: str, en: str
) -> None:
    titled = {**schema, "x-title": {"es": "Valor", "en": "Value"}}
    (failure,) = _failures({"the_value": titled}, {"the_value": value})
    assert failure.pointer == "/the_value"
    assert es in failure.message_es and "«valor» (the_value)" in failure.message_es
    assert en in failure.message_en and "'value' (the_value)" in failure.message_en


def test_additional_properties_names_the_unknown_field_and_suggests() -> None:
    failures = _failures(
        {"nationality": {"type": "array"}, "names": {"type": "object"}},
        {"nationalty": [], "zzz": 1},
        additionalProperties=False,
    )
    assert [failure.pointer for failure in failures] == ["", ""]
    typo, unknown = sorted(failures, key=lambda failure: failure.message_en)
    assert "«nationalty»" in typo.message_es and "¿quiso decir «nationality»?" in typo.message_es
    assert "did you mean 'nationality'?" in typo.message_en
    assert "«zzz»" in unknown.message_es and "names, nationality" in unknown.message_en


def test_any_of_required_lists_the_alternatives() -> None:
    (failure,) = _failures(
        {"agency_id": {"type": "string", "x-title": {"es": "Agencia", "en": "Agency"}}},
        {},
        anyOf=[{"required": ["agency_id"]}, {"required": ["name"]}],
    )
    assert failure.keyword == "anyOf"
    assert "al menos uno" in failure.message_es and "«agencia» (agency_id)" in failure.message_es
    assert "at least one of" in failure.message_en and "'name'" in failure.message_en


def test_one_of_explains_no_match_and_several_matches() -> None:
    (none,) = _failures({"v": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}, {"v": 1.5})
    assert "ninguna de las opciones" in none.message_es
    assert "option 1:" in none.message_en
    (several,) = _failures({"v": {"oneOf": [{"type": "string"}, {"maxLength": 5}]}}, {"v": "abc"})
    assert "más de una" in several.message_es and "more than one" in several.message_en


def test_false_schema_and_library_fallback() -> None:
    (failure,) = _failures({"gone": False}, {"gone": 1})
    assert failure.keyword == "false" and "is not allowed here" in failure.message_en
    schema = {"$id": "https://schemas.puente.mx/test-names/1", "propertyNames": {"maxLength": 2}}
    (fallback,) = REGISTRY.compile(schema).errors({"abc": 1})
    assert "propertyNames" in fallback.message_en and "abc" in fallback.message_en


def test_pointers_escape_tilde_and_slash_and_sort_numerically() -> None:
    failures = _failures(
        {"items": {"type": "array", "items": {"type": "integer"}}},
        {"a/b~c": "x", "items": ["a"] * 11},
        additionalProperties={"type": "integer"},
    )
    pointers = [failure.pointer for failure in failures]
    assert "/a~1b~0c" in pointers
    item_pointers = [pointer for pointer in pointers if pointer.startswith("/items/")]
    assert item_pointers == [f"/items/{index}" for index in range(11)]


def test_every_error_is_reported_not_just_the_first() -> None:
    document = json.loads(json.dumps(TYPICAL))
    document["child"]["sex"] = "F"
    document["child"]["date_of_birth"] = "02/07/2008"
    document["case"]["status"] = "pending"
    failures = REGISTRY.validator("case-record", "1").validate(document)
    assert [failure.pointer for failure in failures] == [
        "/case/status",
        "/child/date_of_birth",
        "/child/sex",
    ]


def test_failures_serialise_for_problem_details() -> None:
    failure = ValidationFailure("/a", "type", "mal", "bad")
    assert failure.to_json("es") == {"pointer": "/a", "keyword": "type", "message": "mal"}
    assert failure.to_json()["message_en"] == "bad"
    assert failure.prefixed("/data").pointer == "/data/a"
    assert sort_failures([failure, failure]) == [failure]


# -- push envelopes ---------------------------------------------------------------------------


def _envelope(**changes: Any) -> dict[str, Any]:
    envelope = {"schema": "case-record/1", "local_id": "DIF-CHP-2024-0142", "data": TYPICAL}
    envelope.update(changes)
    return {key: value for key, value in envelope.items() if value is not None}


def test_a_good_envelope_has_no_failures() -> None:
    assert validate_envelope(_envelope()) == []
    check = check_envelope(_envelope(child_id="ch-7f3a9c"), REGISTRY)
    assert check.valid and check.schema == ("case-record", "1")


def test_data_failures_point_into_the_envelope() -> None:
    data = json.loads(json.dumps(TYPICAL))
    data["child"]["date_of_birth"] = "2008/07/02"
    (failure,) = validate_envelope(_envelope(data=data))
    assert failure.pointer == "/data/child/date_of_birth"


@pytest.mark.parametrize("ref", ["case-record/9", "no-such/1", "case-record", "CASE"])
def test_unknown_schema_is_unsupported_schema_at_schema(ref: str) -> None:
    (failure,) = validate_envelope(_envelope(schema=ref))
    assert (failure.pointer, failure.keyword) == ("/schema", "unsupported-schema")
    assert "case-record/1" in failure.message_en


def test_schema_names_can_be_limited() -> None:
    envelope = _envelope(schema="child/1", data=TYPICAL["child"])
    assert validate_envelope(envelope) == []
    (failure,) = validate_envelope(envelope, allowed={"case-record"})
    assert failure.keyword == "unsupported-schema" and "case-record" in failure.message_en


def test_envelope_shape_is_checked() -> None:
    failures = validate_envelope(
        {"schema": "case-record/1", "local_id": "x" * 201, "data": [], "extra": 1}
    )
    assert {(f.pointer, f.keyword) for f in failures} == {
        ("", "additionalProperties"),
        ("/data", "type"),
        ("/local_id", "maxLength"),
    }
    assert {f.keyword for f in validate_envelope({"data": {}})} == {"required"}
    assert validate_envelope([])[0].keyword == "type"
    bad_child = validate_envelope(_envelope(child_id="has space"))
    assert [f.pointer for f in bad_child] == ["/child_id"]


def test_a_custom_registry_is_used(tmp_path: Path) -> None:
    registry = SchemaRegistry(
        [
            REGISTRY.document("common", "1"),
            {"$id": "https://schemas.puente.mx/case-record/1", "type": "object"},
        ]
    )
    assert validate_envelope(_envelope(data={"anything": True}), registry) == []
