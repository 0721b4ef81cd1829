"""The checks every adapter passes, built-in or installed (STYLE.md point 7).

Cases come from conformance_cases.py (its docstring says how to add one). For each adapter:
it satisfies the Protocol; good input decodes to valid push envelopes; bad input gives
problems (Spanish and English) at the expected positions while the rest is still decoded;
decode → encode → decode gives the same documents; the rejects file is in the adapter's own
format and reads back as the same rejected positions; and, where the format streams, decoding
an input far larger than the memory bound stays under it.
"""

from __future__ import annotations

import gc
import importlib.util
import io
import tracemalloc
from collections.abc import Iterable
from typing import IO, Any

import pytest
from conformance_cases import CASES, ConformanceCase

from adapters import registry
from adapters.base import Adapter, Item, RejectsWriter
from schemas.envelope import validate_envelope

NAMES = sorted(CASES)
STREAMING = sorted(name for name, case in CASES.items() if case.large is not None)
MEMORY_BOUND = 2 * 1024 * 1024
LARGE_BYTES = 4 * MEMORY_BOUND  # measured peaks: about 0.5 MB for csv, 0.3 MB for ndjson


def adapter_for(name: str) -> Adapter:
    return registry.get(name, **CASES[name].options)


def decode(adapter: Adapter, data: bytes) -> list[Item]:
    return list(adapter.decode(io.BytesIO(data)))


def documents(items: Iterable[Item]) -> list[Any]:
    return [item.document for item in items if item.ok]


def test_every_registered_adapter_has_a_case() -> None:
    """An adapter whose module exists must bring its case; one still being written need not."""
    missing = [
        name
        for name, info in registry.registered().items()
        if name not in CASES and importlib.util.find_spec(info.target.partition(":")[0])
    ]
    assert not missing, f"add a ConformanceCase for {missing} to conformance_cases.py"


@pytest.mark.parametrize("name", NAMES)
def test_satisfies_the_protocol(name: str) -> None:
    adapter = adapter_for(name)
    assert isinstance(adapter, Adapter)
    assert isinstance(adapter, RejectsWriter)
    assert adapter.name == name
    assert adapter.media_types and all("/" in each for each in adapter.media_types)


@pytest.mark.parametrize("name", NAMES)
def test_good_input_gives_valid_envelopes(name: str) -> None:
    items = decode(adapter_for(name), CASES[name].good)
    assert items and all(item.ok for item in items), [i.problems for i in items if not i.ok]
    for item in items:
        assert item.document is not None
        assert validate_envelope(item.document) == []
        assert item.local_id == item.document["local_id"]
        assert item.source is not None
    positions = [item.position for item in items]
    assert all(positions) and len(set(positions)) == len(positions)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_reports_positions_and_decodes_the_rest(name: str) -> None:
    case: ConformanceCase = CASES[name]
    items = decode(adapter_for(name), case.bad)
    rejected = [item for item in items if not item.ok]
    assert {item.position for item in rejected} == case.bad_positions
    assert len([item for item in items if item.ok]) == case.good_in_bad
    for item in rejected:
        assert item.document is None and item.problems
        for problem in item.problems:
            assert problem.es and problem.en and problem.es != problem.en
    for item in items:
        if item.ok:
            assert validate_envelope(item.document) == []


@pytest.mark.parametrize("name", [name for name in NAMES if CASES[name].round_trip])
def test_round_trip(name: str) -> None:
    adapter = adapter_for(name)
    first = documents(decode(adapter, CASES[name].good))
    out = io.BytesIO()
    adapter.encode(first, out)
    second = documents(decode(adapter_for(name), out.getvalue()))
    assert second == first


@pytest.mark.parametrize("name", NAMES)
def test_rejects_are_written_in_the_format_and_read_back(name: str) -> None:
    adapter = adapter_for(name)
    rejected = [item for item in decode(adapter, CASES[name].bad) if not item.ok]
    assert isinstance(adapter, RejectsWriter)
    out = io.BytesIO()
    adapter.write_rejects(rejected, out)
    again = decode(adapter_for(name), out.getvalue())
    rows = [item for item in again if item.source is not None]
    assert len(rows) == len(rejected)
    assert not any(item.ok for item in rows)
    empty = io.BytesIO()
    adapter.write_rejects([], empty)
    assert empty.getvalue() == b""


@pytest.mark.parametrize("name", STREAMING)
def test_streams_a_large_input_in_bounded_memory(name: str) -> None:
    """An input of LARGE_BYTES — four times MEMORY_BOUND, produced only as it is read — decodes
    with at most MEMORY_BOUND bytes allocated at any moment (tracemalloc's peak)."""
    adapter = adapter_for(name)
    large = CASES[name].large
    assert large is not None
    sample = len(large(1000).read())
    count = LARGE_BYTES * 1000 // sample + 1
    stream = _Counting(large(count))
    gc.collect()
    tracemalloc.start()
    try:
        decoded = ok = 0
        for item in adapter.decode(stream):
            decoded += 1
            ok += item.ok
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded == ok == count
    assert stream.bytes_read >= LARGE_BYTES
    assert peak < MEMORY_BOUND, f"peak {peak:,} bytes for {stream.bytes_read:,} bytes read"


class _Counting(io.RawIOBase):
    """Counts the bytes an adapter reads from the stream it wraps."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        chunk = self.stream.read(-1 if size is None else size)
        self.bytes_read += len(chunk)
        return chunk
