"""The fast canonical JSON gives exactly the bytes of the reference RFC 8785 implementation
(``rfc8785``): on every shipped example, and on generated documents with the awkward parts
(floats, large integers, non-ASCII and astral member names, control characters), whether the
fast path is decided by walking the value or by scanning the JSON text it was parsed from."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.signatures import _fast_path_applies, _text_proves_fast_path, canonical_json
from schemas.errors import DocumentError
from schemas.parsing import parse_document

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
    text = json.dumps(envelope, ensure_ascii=False).encode()
    assert canonical_json(parse_document(text), source=text) == rfc8785.dumps(envelope)


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


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS, st.booleans(), st.booleans())
def test_generated_documents_with_their_source_text(
    value: Any, ensure_ascii: bool, spaced: bool
) -> None:
    # The push path passes the request's own text; escapes, spacing and key order vary.
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(value, ensure_ascii=ensure_ascii, separators=separators).encode()
    if _holds_nul(value):  # U+0000 somewhere: no text may hold it
        with pytest.raises(DocumentError) as refused:
            parse_document(text)
        assert refused.value.code == "invalid-string"
        return
    parsed = parse_document(text)
    assert canonical_json(parsed, source=text) == rfc8785.dumps(value)


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_text(max_size=8), _text(max_size=30), max_size=8))
def test_generated_string_documents_without_floats(value: dict[str, str]) -> None:
    # The shape of case records: strings everywhere; the fast path whenever no member name
    # holds a character beyond U+FFFF (UTF-16 and code point order agree below it).
    assert canonical_json(value) == rfc8785.dumps(value)
    assert _fast_path_applies(value) == all(ord(c) <= 0xFFFF for c in "".join(value))


@pytest.mark.parametrize(
    "text",
    [
        b'{"n": 1.0}',
        b'{"n": 1e3}',
        b'{"n": 2E-1}',
        b'{"n": 9007199254740993}',
        '{"\U0001f600": 1, "\ue000": 2}'.encode(),
        b'{"\\ud83d\\ude00": 1, "\\ue000": 2}',
    ],
)
def test_source_text_that_may_leave_the_fast_path_is_looked_at(text: bytes) -> None:
    # Floats, long integers and astral characters are always seen in the text.
    assert not _text_proves_fast_path(text)
    value = parse_document(text)
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ValueError):
            canonical_json(value, source=text)
    else:
        assert canonical_json(value, source=text) == expected


def test_plain_source_text_skips_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    import exchange.signatures

    def no_walk(value: Any) -> bool:
        raise AssertionError("the text alone proves the fast path applies")

    text = '{"local_id": "EXP-1", "data": {"nombre": "José Ñandú", "edad": 12}}'.encode()
    value = parse_document(text)
    monkeypatch.setattr(exchange.signatures, "_fast_path_applies", no_walk)
    assert canonical_json(value, source=text) == rfc8785.dumps(value)


def test_plain_values_without_source_text_skip_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    # What an adapter builds from a spreadsheet row has no source text: orjson's is scanned.
    import exchange.signatures

    def no_walk(value: Any) -> bool:
        raise AssertionError("orjson's text alone proves the fast path applies")

    value = {"local_id": "EXP-1", "data": {"nombre": "José Ñandú", "edad": 12, "x": [True]}}
    monkeypatch.setattr(exchange.signatures, "_fast_path_applies", no_walk)
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a": None, "b": 1},  # a null leaves the text scan (orjson writes NaN as null)
        {"n": 9007199254740991, "m": -9007199254740991},  # 16 digits: looked at, still safe
        {"s": "1.5 años", "e": "3e"},  # digits before . or e inside strings
        {"😀": "astral name", "v": "😀"},
    ],
)
def test_values_the_text_scan_cannot_prove_are_walked(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"id": "EXP-1", "x": math.nan},  # orjson writes null for these: never accepted
        {"id": "EXP-1", "x": [-math.inf]},
        {"n": 2**53},
        {"n": -(2**60)},
        {"x": math.nan},
        {"x": math.inf},
        ["\ud800"],
        {"when": datetime(2026, 11, 23, tzinfo=UTC)},  # not JSON: refused, not written
        {"when": date(2026, 11, 23)},
    ],
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
