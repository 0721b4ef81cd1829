"""Streaming: the incremental JSON array reader under the primero and fhir adapters, and the
primero adapter on broken, single-case and large exports."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from generated import GeneratedStream

from adapters.base import FileProblem
from adapters.json_array import ArrayReader, JsonStreamError
from adapters.primero import PrimeroAdapter

EXPORT = Path(__file__).parent / "fixtures" / "primero" / "cases_export.json"
CODES = Path(__file__).parent / "fixtures" / "primero" / "codes.yaml"

DOCUMENT: dict[str, Any] = {
    "metadata": {"total": 6, "per": 20},
    "data": [
        {"id": "a", "age": 123456789, "name": "Dayana Ñandú"},
        12345,
        -0.5e-3,
        True,
        None,
        'texto con \\ y " y \u00e9 y \U0001f600',
        [],
        {},
    ],
    "after": [1, 2, 3],
}


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 64, 1 << 16])
def test_reader_yields_every_element_whatever_the_chunk_size(chunk_size: int) -> None:
    raw = json.dumps(DOCUMENT, ensure_ascii=False, indent=1).encode("utf-8")
    reader = ArrayReader(io.BytesIO(raw), "data", chunk_size)
    assert [value for _, value in reader] == DOCUMENT["data"]
    assert reader.found and not reader.single
    assert reader.members == {"metadata": DOCUMENT["metadata"], "after": [1, 2, 3]}


def test_reader_does_not_take_a_number_cut_at_a_chunk_boundary() -> None:
    # With chunks of 9 bytes the first read ends inside 123456.
    reader = ArrayReader(io.BytesIO(b'{"data":[123456,7]}'), "data", 9)
    assert [value for _, value in reader] == [123456, 7]


def test_reader_accepts_a_byte_order_mark_and_an_empty_array() -> None:
    reader = ArrayReader(io.BytesIO(b'\xef\xbb\xbf {"data" : [ ] }'), "data")
    assert list(reader) == []
    assert reader.found


def test_reader_reads_a_single_object_member() -> None:
    reader = ArrayReader(io.BytesIO(b'{"data": {"id": "x"}}'), "data")
    assert list(reader) == [(0, {"id": "x"})]
    assert reader.single


@pytest.mark.parametrize(
    ("raw", "english"),
    [
        (b'{"data":[{"a":1},{"a":2,}]}', "invalid JSON"),
        (b'{"data":[{"a":1} {"a":2}]}', "expected ',' or ']'"),
        (b'[{"a":1}]', "expected a JSON object"),
        (b'{"data":[1]} trailing', "text after the JSON document"),
        (b'{"data":["\xff"]}', "not UTF-8"),
        (b'{"data":[{"a":', "invalid JSON"),
    ],
)
def test_reader_errors_say_what_and_where(raw: bytes, english: str) -> None:
    reader = ArrayReader(io.BytesIO(raw), "data", 4)
    seen = []
    with pytest.raises(JsonStreamError) as raised:
        seen.extend(reader)
    assert english in raised.value.en
    assert raised.value.es and raised.value.es != raised.value.en
    assert 0 <= raised.value.offset <= len(raw)
    if raw.startswith(b'{"data":[{"a":1}'):
        assert seen == [(0, {"a": 1})]  # what came before the fault was read


def test_a_broken_export_keeps_the_cases_before_the_break() -> None:
    raw = EXPORT.read_bytes()
    third = raw.rindex(b"{", 0, raw.index(b'"id": "0d9e8f7a'))  # where the third case starts
    broken = raw[:third] + b'{"id": "x", "sex": '  # the export stops in the middle of it
    items = list(PrimeroAdapter(mapping=CODES).decode(io.BytesIO(broken)))
    assert [item.position for item in items] == ["data[0]", "data[1]", "data[2]"]
    assert items[0].ok and items[1].ok
    assert not items[2].ok and isinstance(items[2], FileProblem)  # not a record
    [problem] = items[2].problems
    assert "invalid JSON" in problem.en and "JSON inválido" in problem.es


def test_a_single_case_answer_is_read_at_position_data() -> None:
    case = json.loads(EXPORT.read_bytes())["data"][1]
    raw = json.dumps({"data": case}).encode()
    [item] = PrimeroAdapter().decode(io.BytesIO(raw))
    assert item.position == "data"
    assert item.ok
    assert item.local_id == case["id"]


def test_a_file_without_data_is_one_problem() -> None:
    [item] = PrimeroAdapter().decode(io.BytesIO(b'{"errors": [{"code": 403}]}'))
    assert item.position == "data"
    assert [p.pointer for p in item.problems] == ["field:data"]


def _generated_export(count: int) -> tuple[io.RawIOBase, int]:
    """An export of ``count`` cases, produced as it is read; and its size in bytes."""
    case = json.loads(EXPORT.read_bytes())["data"][2]

    def line(number: int) -> str:
        if number > count:
            return "]}"
        text = json.dumps({**case, "id": f"gen-{number:07d}"}, ensure_ascii=False)
        return ("," if number > 1 else "") + text + "\n"

    size = sum(len(line(n).encode()) for n in range(1, count + 2)) + len('{"data":[\n')
    return GeneratedStream('{"data":[\n', line, count + 1), size


def test_memory_stays_bounded_on_a_large_export() -> None:
    adapter = PrimeroAdapter()
    list(adapter.decode(io.BytesIO(EXPORT.read_bytes())))  # load what loads once
    stream, size = _generated_export(1500)
    tracemalloc.start()
    try:
        count = 0
        for item in adapter.decode(stream):  # type: ignore[arg-type]
            assert item.ok, item.problems
            count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 1500
    assert size > 1_900_000
    # One case (about 1.3 kB) and one 64 kB chunk at a time, not the 2 MB export.
    assert peak < 600_000, peak
