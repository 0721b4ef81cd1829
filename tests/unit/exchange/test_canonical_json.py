"""The fast canonical JSON gives exactly the bytes of the reference RFC 8785 implementation
(``rfc8785``): on every shipped example, and on generated documents with the awkward parts
(floats, large integers, non-ASCII and astral member names, control characters)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.signatures import _fast_path_applies, canonical_json

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"


def shipped_examples() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.json"))


@pytest.mark.parametrize("path", shipped_examples(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_shipped_examples(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    envelope = {"schema": "case-record/1", "local_id": "EXP-1", "data": document}
    for value in (document, envelope):
        assert canonical_json(value) == rfc8785.dumps(value)
    assert _fast_path_applies(envelope)  # the common case takes the fast path


def test_there_are_examples() -> None:
    assert len(shipped_examples()) > 20


def _text(**kwargs: Any) -> st.SearchStrategy[str]:
    # Any Unicode scalar value (no lone surrogates: parsing refuses them before this point).
    return st.text(st.characters(exclude_categories=["Cs"]), **kwargs)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _text(max_size=20),
    st.sampled_from(["\u0000", "\u001f", "\u007f", "\u2028", '"\\/', "é", "\U0001f600", "\ue000"]),
)
KEYS = st.one_of(
    _text(max_size=8), st.sampled_from(["a", "b", "\ue000", "\U0001f600", "é", "A", "\u0080"])
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_generated_documents(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_text(max_size=8), _text(max_size=30), max_size=8))
def test_generated_string_documents_without_floats(value: dict[str, str]) -> None:
    # The shape of case records: strings everywhere; the fast path whenever names are ASCII.
    assert canonical_json(value) == rfc8785.dumps(value)
    assert _fast_path_applies(value) == "".join(value).isascii()


@pytest.mark.parametrize(
    "value",
    [{"n": 2**53}, {"n": -(2**60)}, {"x": math.nan}, {"x": math.inf}, ["\ud800"]],
)
def test_what_jcs_cannot_represent_is_a_value_error(value: Any) -> None:
    with pytest.raises(ValueError):
        canonical_json(value)


def test_member_names_sort_by_utf16_units() -> None:
    # In UTF-16, U+1F600 is the pair D83D DE00 and sorts before U+E000; by code point it is
    # the other way round, which is why such names leave the fast path.
    value = {"\ue000": 1, "\U0001f600": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).decode().index("\U0001f600") < canonical_json(
        value
    ).decode().index("\ue000")
