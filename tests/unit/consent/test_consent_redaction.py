"""Schema-driven redaction: the disclosed document keeps only the fields whose x-category is
permitted, driven by the registry's leaf-category map alone."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import CATEGORIES, FieldTree, compile_fields, redact
from schemas import default_registry
from schemas.fields import find_field
from schemas.registry import EXAMPLES_DIR

REGISTRY = default_registry()
LEAVES = REGISTRY.leaf_categories("case-record", "1")
FIELDS = REGISTRY.fields("case-record", "1")
RECORDS = {
    path.stem: json.loads(path.read_text("utf-8"))
    for path in sorted((EXAMPLES_DIR / "case-record/1/valid").glob("*.json"))
}
TYPICAL = RECORDS["typical"]


def leaves(
    document: Any, path: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every scalar in ``document`` with its location."""
    if isinstance(document, dict):
        return [leaf for key, value in document.items() for leaf in leaves(value, (*path, key))]
    if isinstance(document, list):
        return [
            leaf for index, value in enumerate(document) for leaf in leaves(value, (*path, index))
        ]
    return [(path, document)]


def category_at(path: tuple[str | int, ...]) -> str:
    info = find_field(FIELDS, path)
    assert info is not None and info.category is not None, path
    return info.category


def empty_containers(document: Any) -> list[Any]:
    found = []
    if isinstance(document, dict | list):
        if not document:
            found.append(document)
        for value in document.values() if isinstance(document, dict) else document:
            found.extend(empty_containers(value))
    return found


def test_everything_permitted_gives_the_document_back() -> None:
    for document in RECORDS.values():
        kept, withheld = redact(document, LEAVES, CATEGORIES)
        assert kept == document
        assert withheld == ()


def test_nothing_permitted_withholds_every_present_category() -> None:
    kept, withheld = redact(TYPICAL, LEAVES, [])
    assert kept == {}
    present = {category_at(path) for path, _ in leaves(TYPICAL)}
    assert set(withheld) == present
    assert list(withheld) == [c for c in CATEGORIES if c in present]  # vocabulary order


def test_identity_only() -> None:
    kept, withheld = redact(TYPICAL, LEAVES, ["identity"])
    assert kept["child"]["names"] == TYPICAL["child"]["names"]
    assert kept["child"]["nationality"] == ["HN"]
    assert "current_location" not in kept["child"]  # contact_location
    assert "related_persons" not in kept  # family
    assert "protection_concerns" not in kept
    assert kept["case"] == {
        "case_number": "DIF-CHP-TAP-2024-0317"
    }  # the rest of case is protection
    assert "identity" not in withheld and "protection_concerns" in withheld


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(RECORDS)), st.frozensets(st.sampled_from(CATEGORIES)))
def test_redaction_keeps_exactly_the_permitted_leaves(name: str, permitted: frozenset[str]) -> None:
    document = RECORDS[name]
    before = copy.deepcopy(document)
    kept, withheld = redact(document, LEAVES, permitted)
    assert document == before  # the input is never modified
    original = leaves(document)
    expected = [(path, value) for path, value in original if category_at(path) in permitted]
    got = leaves(kept)
    # Same permitted values, nothing else; array positions may close up where items went.
    assert sorted(map(repr, (v for _, v in got))) == sorted(map(repr, (v for _, v in expected)))
    assert all(category_at(path) in permitted for path, _ in got)
    assert not empty_containers(kept) or kept == {}
    assert set(withheld) == {category_at(path) for path, _ in original} - permitted


def test_array_items_left_empty_are_removed() -> None:
    fields = {"/people/*/name": "identity", "/people/*/health": "health", "/note": "identity"}
    document = {"people": [{"health": "asma"}, {"name": "Ana", "health": "ok"}], "note": "x"}
    kept, withheld = redact(document, fields, ["identity"])
    assert kept == {"people": [{"name": "Ana"}], "note": "x"}
    assert withheld == ("health",)
    kept, _ = redact(document, fields, ["health"])
    assert kept == {"people": [{"health": "asma"}, {"health": "ok"}]}


def test_unknown_fields_are_dropped_fail_closed() -> None:
    fields = {"/a": "identity", "/b/c": "identity"}
    kept, withheld = redact(
        {"a": 1, "zzz": "secret", "b": "scalar-where-object-expected"}, fields, CATEGORIES
    )
    assert kept == {"a": 1}
    assert withheld == ()


def test_escaped_pointer_tokens_and_additional_properties() -> None:
    fields = {"/a~1b/c": "family", "/extra/*": "health", "/list/*": "identity"}
    document = {"a/b": {"c": 1}, "extra": {"x": 1, "y": 2}, "list": ["p", "q"]}
    assert redact(document, fields, ["family"])[0] == {"a/b": {"c": 1}}
    assert redact(document, fields, ["health"])[0] == {"extra": {"x": 1, "y": 2}}
    assert redact(document, fields, ["identity"])[0] == {"list": ["p", "q"]}


def test_the_compiled_tree_is_remembered_and_reusable() -> None:
    tree = compile_fields(LEAVES)
    assert compile_fields(LEAVES) is tree
    assert isinstance(tree, FieldTree)
    assert redact(TYPICAL, tree, ["legal_status"]) == redact(TYPICAL, LEAVES, ["legal_status"])


def test_a_map_with_an_unknown_category_is_refused() -> None:
    with pytest.raises(ValueError, match="biometrics"):
        compile_fields({"/x": "biometrics"})


def test_an_entirely_withheld_array_document() -> None:
    assert redact([{"a": 1}], {"/*/a": "health"}, ["identity"]) == ([], ("health",))


def test_redaction_is_driven_by_the_map_only() -> None:
    # Recategorising one field in the map moves it, with no code change.
    moved = {**LEAVES, "/child/names/given_names": "health"}
    kept, _ = redact(TYPICAL, moved, ["identity"])
    assert "given_names" not in kept["child"]["names"]
    assert kept["child"]["names"]["first_surname"] == "Ejemplo"
