"""Audit entries: RFC 8785 canonical JSON bytes, hashed as Merkle leaves."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import EntryError, canonical_entry, entry_leaf_hash, parse_canonical_entry

ENTRY = {
    "time": "2026-05-09T10:00:00Z",
    "actor": {"agency": "dif-jalisco", "person": "p-17", "role": "case-worker"},
    "action": "record.read",
    "outcome": "granted",
    "purpose": "best-interest-determination",
    "child_id": "c-4f1e9a",
    "record": {"id": "r-88", "body_sha256": "ab" * 32},
    "basis": {"decision": "consent", "consent_ids": ["k-1", "k-2"]},
}


def test_canonical_form_sorts_keys_and_drops_whitespace() -> None:
    assert (
        canonical_entry({"b": 1, "a": [True, None, "é"]}) == b'{"a":[true,null,"\xc3\xa9"],"b":1}'
    )
    data = canonical_entry(ENTRY)
    assert data.startswith(b'{"action":"record.read","actor":{"agency"')
    assert b" " not in data
    assert entry_leaf_hash(ENTRY) == hashlib.sha256(b"\x00" + data).digest()


def test_key_order_does_not_change_the_bytes() -> None:
    assert canonical_entry(dict(reversed(list(ENTRY.items())))) == canonical_entry(ENTRY)


def test_parse_accepts_only_canonical_bytes() -> None:
    data = canonical_entry(ENTRY)
    assert parse_canonical_entry(data) == ENTRY
    for bad in [
        data.replace(b'"action":', b'"action": '),  # whitespace
        b'{"b":1,"a":2}',  # key order
        b'{"a":1.0}',  # number form
        b'{"a":"\\u00e9"}',  # escaped non-ASCII
        b'{"a":1,"a":1}',  # duplicate key
        b"[1]",  # not an object
        b'{"a":NaN}',
        b"\xff",
        b"",
    ]:
        with pytest.raises(EntryError):
            parse_canonical_entry(bad)


@pytest.mark.parametrize(
    "value",
    [{"n": float("nan")}, {"n": 2**60}, {1: "x"}, {"b": b"bytes"}, {"s": "\ud800"}, ["list"]],
)
def test_non_json_values_are_refused(value: Any) -> None:
    with pytest.raises(EntryError):
        canonical_entry(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_canonical_bytes_parse_back_to_the_same_bytes(entry: dict[str, Any]) -> None:
    data = canonical_entry(entry)
    assert canonical_entry(parse_canonical_entry(data)) == data
