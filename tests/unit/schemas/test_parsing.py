"""Parsing untrusted bytes: every bad input is a typed, bilingual DocumentError."""

from __future__ import annotations

import io
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import MAX_DEPTH, MAX_DOCUMENT_BYTES, DocumentError, SchemaError
from schemas.parsing import (
    _NOT_PROVEN,
    _parse_fast,
    _parse_strict,
    bounded_lines,
    iter_ndjson,
    parse_document,
)


def _error(data: bytes, **options: object) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        parse_document(data, **options)  # type: ignore[arg-type]
    error = caught.value
    assert isinstance(error, SchemaError) and isinstance(error, ValueError)
    assert error.message_es and error.message_en and error.message_es != error.message_en
    return error


def test_parses_objects_arrays_and_scalars() -> None:
    assert parse_document(b'{"a": [1, 2.5, "\xc3\xb1", null, true]}') == {
        "a": [1, 2.5, "ñ", None, True]
    }
    assert parse_document(b"[]") == []
    assert parse_document(b'\xef\xbb\xbf{"bom": 1}') == {"bom": 1}


def test_malformed_json_gives_line_and_column() -> None:
    error = _error(b'{\n  "a": 1,\n  "b": tru\n}')
    assert (error.code, error.line, error.column) == ("malformed-json", 3, 8)
    assert "línea 3, columna 8" in error.message_es and "se esperaba un valor" in error.message_es
    assert "line 3, column 8" in error.message_en


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "malformed-json"),
        (b"   \n ", "malformed-json"),
        (b'{"a": 1,}', "malformed-json"),
        (b'{"a": 1} {"b": 2}', "malformed-json"),
        (b"{'a': 1}", "malformed-json"),
        (b'{"a": 1, "a": 2}', "duplicate-key"),
        (b"NaN", "invalid-number"),
        (b"[Infinity]", "invalid-number"),
        (b"1e999", "invalid-number"),
        (b"1" * 5000, "invalid-number"),
        (b'"\\ud800"', "invalid-string"),
        (b'{"\\udc00": 1}', "invalid-string"),
    ],
)
def test_bad_json_is_rejected_with_a_code(data: bytes, code: str) -> None:
    assert _error(data).code == code


def test_paired_surrogate_escapes_are_fine() -> None:
    assert parse_document(b'"\\ud83d\\ude00"') == "\U0001f600"


def test_invalid_utf8_is_located() -> None:
    error = _error(b'{"a": "ok",\n "b": "\xff"}')
    assert (error.code, error.line, error.column) == ("invalid-utf8", 2, 8)
    assert "UTF-8" in error.message_es and "UTF-8" in error.message_en


def test_non_object_top_level_when_an_object_is_required() -> None:
    error = _error(b"[1, 2]", require_object=True)
    assert error.code == "not-object"
    assert "lista" in error.message_es and "array" in error.message_en
    assert _error(b'"text"', require_object=True).code == "not-object"


def test_a_50_mib_input_is_rejected_at_once() -> None:
    data = b"[" + b"1," * (25 * 1024 * 1024) + b"1]"
    started = time.perf_counter()
    error = _error(data)
    assert time.perf_counter() - started < 0.05  # only the length is looked at
    assert error.code == "too-large"
    assert f"{MAX_DOCUMENT_BYTES:,}" in error.message_en
    assert "2.097.152" in error.message_es


def test_size_limit_is_configurable() -> None:
    assert _error(b'{"a": "' + b"x" * 100 + b'"}', max_bytes=50).code == "too-large"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 10_000, 100_000])
def test_deep_nesting_is_rejected_without_recursion_errors(depth: int) -> None:
    for opening, closing in ((b"[", b"]"), (b'{"a":', b"}")):
        error = _error(opening * depth + b"1" + closing * depth, max_bytes=10**7)
        assert error.code == "too-deep"
        assert str(MAX_DEPTH) in error.message_en


def test_nesting_at_the_limit_is_accepted() -> None:
    value = parse_document(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


def test_unclosed_deep_nesting_is_still_too_deep_not_a_crash() -> None:
    assert _error(b"[" * 100_000).code == "too-deep"


# -- NDJSON -----------------------------------------------------------------------------------


def test_ndjson_numbers_lines_and_skips_blank_ones() -> None:
    lines = [b'{"a": 1}\n', b"\n", b"  \r\n", b'{"b": 2}\r\n', b'{"c": 3}']
    assert list(iter_ndjson(lines)) == [(1, {"a": 1}), (4, {"b": 2}), (5, {"c": 3})]


def test_ndjson_bad_lines_are_reported_and_parsing_goes_on() -> None:
    lines = [
        b'{"ok": 1}\n',
        b'{"broken": \n',
        b"\xff\xfe\n",
        b"[1]\n",
        b"[" * 200 + b"]" * 200 + b"\n",
        b'{"ok": 2}\n',
    ]
    results = list(iter_ndjson(lines, require_object=True))
    assert [number for number, _ in results] == [1, 2, 3, 4, 5, 6]
    errors = {number: item for number, item in results if isinstance(item, DocumentError)}
    assert {number: error.code for number, error in errors.items()} == {
        2: "malformed-json",
        3: "invalid-utf8",
        4: "not-object",
        5: "too-deep",
    }
    assert all(error.line == number for number, error in errors.items())
    assert "línea 2" in errors[2].message_es and "line 2" in errors[2].message_en
    assert results[-1] == (6, {"ok": 2})


def test_ndjson_overlong_lines_are_cut_and_reported() -> None:
    stream = io.BytesIO(b'{"a": 1}\n{"big": "' + b"x" * 5000 + b'"}\n{"b": 2}')
    lines = bounded_lines(stream.read, max_line_bytes=100, chunk_size=64)
    results = list(iter_ndjson(lines, max_line_bytes=100))
    assert results[0] == (1, {"a": 1})
    assert isinstance(results[1][1], DocumentError) and results[1][1].code == "too-large"
    assert results[2] == (3, {"b": 2})


def test_bounded_lines_never_holds_more_than_a_line_and_a_chunk() -> None:
    held: list[int] = []
    data = io.BytesIO((b"y" * 10_000 + b"\n") * 3 + json.dumps({"z": 1}).encode())

    def read(size: int) -> bytes:
        chunk = data.read(size)
        held.append(size)
        return chunk

    lines = list(bounded_lines(read, max_line_bytes=1000, chunk_size=256))
    assert [len(line) for line in lines] == [1001, 1001, 1001, 8]
    assert max(held) == 256


def test_bounded_lines_keeps_line_endings_and_last_line() -> None:
    data = io.BytesIO(b"a\r\nb\n\nc")
    assert list(bounded_lines(data.read, chunk_size=2)) == [b"a\r\n", b"b\n", b"\n", b"c"]


# -- the fast parser (orjson) and the strict parser agree ------------------------------------


def _typed(value: object) -> object:
    """``value`` with every scalar's type spelled out (so 1 != 1.0 and -0.0 != 0.0)."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def _strict_outcome(data: bytes) -> object:
    try:
        return _typed(_parse_strict(data, MAX_DEPTH, None))
    except DocumentError as error:
        return error.code


def _outcome(data: bytes) -> object:
    try:
        return _typed(parse_document(data))
    except DocumentError as error:
        return error.code


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": {"b": 1, "b": 2}}',
        b'[{"a": 1}, {"a": 1, "c": {"a": 2}, "a": 3}]',
        b'{"x": "a:b:c", "a": 1, "a": "::"}',
        b'{"x": "\\u003a", "a": 1, "a": 2}',  # an escaped ":" must not hide a duplicate
        b'{"a": 12345678901234567890123}',  # beyond 64 bits: kept exact
        b"18446744073709551616",
        b"-9223372036854775809",
        b"9007199254740993",
        b"[1e20, 1E+16, 2.5e-300, -0.0, 0, 1.0]",
        b'{"time": "12:30", "url": "https://x:8080/"}',
        b'\xef\xbb\xbf{"bom": true}',
        b'"\\ud83d\\ude00 \\u00e9"',
        b'{"a": "\x7f\xe2\x80\xa8"}',
    ],
)
def test_the_fast_parser_gives_what_the_strict_parser_gives(data: bytes) -> None:
    assert _outcome(data) == _strict_outcome(data)


def test_duplicates_are_found_by_both_parsers() -> None:
    assert _error(b'{"x": "\\u003a", "a": 1, "a": 2}').code == "duplicate-key"
    assert _error(b'{"a": {"b": "x:y", "b": 2}}').code == "duplicate-key"
    assert _parse_fast(b'{"a": {"b": "x:y", "b": 2}}') is _NOT_PROVEN


def test_plain_documents_take_the_fast_path() -> None:
    assert _parse_fast(b'{"a": [1, "b:c", {"d": null}], "e": 2.5}') == {
        "a": [1, "b:c", {"d": None}],
        "e": 2.5,
    }


_KEYS = st.sampled_from(["a", "b", "é", "a:b", ":", "\\", '"', "ñ:", "\U0001f600"])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.sampled_from(["a", ":", "\\", '"', "\n", "\x7f", "é", "\u2028", "😀"])),
)


def _json_text(ascii_only: bool) -> st.SearchStrategy[str]:
    """JSON text whose objects may repeat a name (written out pair by pair)."""

    def dump(value: object) -> str:
        return json.dumps(value, ensure_ascii=ascii_only)

    def as_object(pairs: list[tuple[str, str]]) -> str:
        return "{" + ", ".join(f"{dump(key)}: {value}" for key, value in pairs) + "}"

    return st.recursive(
        _SCALARS.map(dump),
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(_KEYS, children), max_size=4).map(as_object),
        ),
        max_leaves=12,
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans().flatmap(_json_text))
def test_fast_and_strict_parsers_agree_on_generated_text(text: str) -> None:
    data = text.encode("utf-8")
    assert _outcome(data) == _strict_outcome(data)
