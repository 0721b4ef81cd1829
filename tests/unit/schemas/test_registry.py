"""The registry lists, finds, resolves and compiles the shipped schema documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import SchemaRegistry, UnknownSchema, default_registry
from schemas.fields import find_field
from schemas.registry import DOCUMENTS_DIR, SchemaInfo

NAMES = [
    "access-request",
    "audit-event",
    "case-record",
    "child",
    "common",
    "consent",
    "override",
    "related-person",
]


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return default_registry()


def test_lists_every_shipped_document_sorted(registry: SchemaRegistry) -> None:
    infos = registry.list()
    on_disk = sorted((path.parent.name, path.stem) for path in DOCUMENTS_DIR.glob("*/*.json"))
    assert [(info.name, info.version) for info in infos] == on_disk
    assert registry.names() == sorted({name for name, _ in on_disk})
    assert set(NAMES) <= set(registry.names())


def test_schema_info_is_frozen_with_bilingual_title(registry: SchemaRegistry) -> None:
    info = next(info for info in registry.list() if info.name == "case-record")
    assert info == SchemaInfo(
        "case-record", "1", "https://schemas.puente.mx/case-record/1", info.title
    )
    assert info.ref == "case-record/1"
    assert info.title["es"] == "Expediente de caso" and info.title["en"] == "Case record"
    with pytest.raises(AttributeError):
        info.name = "other"  # type: ignore[misc]
    assert json.loads(json.dumps(info.to_json()))["version"] == "1"


def test_versions_sort_numerically_and_latest_is_last() -> None:
    documents = [
        {"$id": f"https://schemas.puente.mx/thing/{version}", "type": "object"}
        for version in (10, 2, 1)
    ]
    registry = SchemaRegistry(documents)
    assert registry.versions("thing") == ["1", "2", "10"]
    assert registry.latest("thing") == "10"
    assert registry.parse_schema_ref("thing") == ("thing", "10")


def test_document_is_a_copy_and_accepts_int_or_str_versions(registry: SchemaRegistry) -> None:
    document = registry.document("case-record", "1")
    assert document["$id"] == "https://schemas.puente.mx/case-record/1"
    document["type"] = "tampered"
    assert registry.document("case-record", 1)["type"] == "object"


@pytest.mark.parametrize(
    "ref", ["case-record/99", "no-such-schema/1", "case-record/01", "Case-Record/1", "", "a/b/c"]
)
def test_unknown_refs_raise_a_bilingual_error_naming_what_exists(
    registry: SchemaRegistry, ref: str
) -> None:
    with pytest.raises(UnknownSchema) as caught:
        registry.parse_schema_ref(ref)
    error = caught.value
    assert "case-record/1" in error.message_en and "case-record/1" in error.message_es
    assert error.message("es").startswith("esquema desconocido")
    assert error.message("en").startswith("unknown schema")
    assert ref in str(error)


def test_document_and_validator_raise_unknown_schema(registry: SchemaRegistry) -> None:
    with pytest.raises(UnknownSchema):
        registry.document("case-record", "2")
    with pytest.raises(UnknownSchema):
        registry.validator("nope", 1)
    with pytest.raises(UnknownSchema):
        registry.versions("nope")


def test_parse_schema_ref_with_and_without_version(registry: SchemaRegistry) -> None:
    assert registry.parse_schema_ref("case-record/1") == ("case-record", "1")
    assert registry.parse_schema_ref(" case-record ") == ("case-record", "1")
    with pytest.raises(UnknownSchema, match="version"):
        registry.parse_schema_ref("case-record", require_version=True)
    assert "case-record/1" in registry
    assert "case-record/7" not in registry


def test_validators_are_compiled_once_and_cached(registry: SchemaRegistry) -> None:
    first = registry.validator("case-record", "1")
    assert registry.validator("case-record", 1) is first
    assert first.reference is first.reference


def test_both_resolution_registries_hold_every_document(registry: SchemaRegistry) -> None:
    for info in registry.list():
        resolved = registry.referencing_registry.resolver().lookup(info.id)
        assert resolved.contents["$id"] == info.id
        assert registry.rs_registry.resolver(info.id).lookup(info.id).contents["$id"] == info.id


def test_leaf_categories_use_pointer_templates(registry: SchemaRegistry) -> None:
    categories = registry.leaf_categories("case-record", "1")
    allowed = set(registry.document("common", "1")["$defs"]["data_category"]["enum"])
    assert set(categories.values()) <= allowed
    assert categories["/child/date_of_birth"] == "identity"
    assert categories["/child/nationality/*"] == "identity"
    assert any(pointer.startswith("/placements/*/") for pointer in categories)
    assert "/child" not in categories  # objects are not leaves


def test_every_leaf_of_every_schema_has_a_category(registry: SchemaRegistry) -> None:
    for info in registry.list():
        if info.name == "common":
            continue
        fields = registry.fields(info.name, info.version)
        uncategorised = [
            pointer
            for pointer, field in fields.items()
            if field.leaf and pointer and field.category is None
        ]
        assert uncategorised == [], info.ref


def test_field_lookup_maps_concrete_pointers_to_templates(registry: SchemaRegistry) -> None:
    fields = registry.fields("case-record", "1")
    field = find_field(fields, ("child", "nationality", 0))
    assert field is not None and field.pointer == "/child/nationality/*"
    assert find_field(fields, ("child", "no_such_field")) is None
    title = find_field(fields, ("child", "date_of_birth")).title  # type: ignore[union-attr]
    assert title == {"es": "Fecha de nacimiento", "en": "Date of birth"}


def test_load_rejects_a_file_whose_id_does_not_match_its_path(tmp_path: Path) -> None:
    folder = tmp_path / "thing"
    folder.mkdir()
    (folder / "1.json").write_text(json.dumps({"$id": "https://schemas.puente.mx/other/1"}))
    with pytest.raises(ValueError, match="does not match"):
        SchemaRegistry.load(tmp_path)


def test_an_unsupported_format_is_refused_at_load() -> None:
    document = {"$id": "https://schemas.puente.mx/thing/1", "format": "uri"}
    with pytest.raises(ValueError, match="formats"):
        SchemaRegistry([document])


def test_shipped_examples_are_found(registry: SchemaRegistry) -> None:
    valid = registry.example_paths("case-record", "1")
    assert any(path.name == "typical.json" for path in valid)
    assert registry.example_paths("case-record", "1", "invalid")


def test_a_shipped_document_read_alone_is_the_registrys(registry: SchemaRegistry) -> None:
    from schemas.registry import shipped_document

    for info in registry.list():
        assert shipped_document(info.name, int(info.version)) == registry.document(
            info.name, int(info.version)
        )
