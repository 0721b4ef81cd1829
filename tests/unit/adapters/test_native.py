"""The native adapters: push envelopes as NDJSON (streamed) and as JSON (whole)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from adapters.base import FileProblem
from adapters.native import JsonAdapter, NdjsonAdapter
from schemas.registry import EXAMPLES_DIR

TYPICAL = json.loads((EXAMPLES_DIR / "case-record/1/valid/typical.json").read_text("utf-8"))
MINIMAL = json.loads((EXAMPLES_DIR / "case-record/1/valid/minimal.json").read_text("utf-8"))


def envelope(local_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"schema": "case-record/1", "local_id": local_id, "data": data or MINIMAL}


def line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode() + b"\n"


def decode_ndjson(data: bytes, **options: Any) -> list[Any]:
    return list(NdjsonAdapter(**options).decode(io.BytesIO(data)))


def test_ndjson_positions_are_editor_lines_blank_lines_counted() -> None:
    data = b"\xef\xbb\xbf" + line(envelope("a")) + b"\n   \n" + line(envelope("b"))
    items = decode_ndjson(data)
    assert [(i.position, i.local_id, i.ok) for i in items] == [("1", "a", True), ("4", "b", True)]
    assert items[0].document == envelope("a")


def test_ndjson_reports_each_bad_line_and_keeps_going() -> None:
    wrong = envelope("c", {**TYPICAL, "child": {**TYPICAL["child"], "date_of_birth": "2/7/2008"}})
    data = b"".join(
        [
            line(envelope("a")),
            b'{"schema": \n',
            b"\xff\xfe\n",
            line([1]),
            line(wrong),
            line(envelope("d")),
        ]
    )
    items = decode_ndjson(data)
    assert [i.position for i in items] == ["1", "2", "3", "4", "5", "6"]
    assert [i.ok for i in items] == [True, False, False, False, False, True]
    assert "line 2" in items[1].problems[0].en and "línea 2" in items[1].problems[0].es
    assert "UTF-8" in items[2].problems[0].en
    assert "array" in items[3].problems[0].en
    assert [p.pointer for p in items[4].problems] == ["/data/child/date_of_birth"]
    assert items[4].local_id == "c"


def test_ndjson_a_line_over_the_limit_is_one_problem_in_bounded_memory() -> None:
    huge = b'{"x": "' + b"a" * 5000 + b'"}\n'
    items = decode_ndjson(line(envelope("a")) + huge + line(envelope("b")), max_line_bytes=1000)
    assert [(i.position, i.ok) for i in items] == [("1", True), ("2", False), ("3", True)]
    assert "too large" in items[1].problems[0].en


def test_ndjson_rejects_keep_the_line_and_add_the_errors() -> None:
    wrong = envelope("c", {**MINIMAL, "case": {"status": "archived"}})
    items = decode_ndjson(line(wrong) + b"{oops\n" + line(envelope("ok")))
    out = io.BytesIO()
    NdjsonAdapter().write_rejects([i for i in items if not i.ok], out)
    first, second = (json.loads(text) for text in out.getvalue().splitlines())
    assert {k: v for k, v in first.items() if k != "errors"} == wrong
    assert first["errors"][0]["pointer"] == "/data/case/status"
    assert first["errors"][0]["message_es"] and first["errors"][0]["message_en"]
    assert second["original"] == "{oops"
    assert "malformed JSON" in second["errors"][0]["message_en"]


def test_ndjson_a_fixed_rejects_line_imports_as_it_is() -> None:
    """The office fixes the value and sends the rejects file back: ``errors`` is ignored."""
    fixed = {**envelope("c"), "errors": [{"pointer": "/data/case/status", "message_en": "…"}]}
    (item,) = decode_ndjson(line(fixed))
    assert item.ok and item.document == envelope("c")


def test_ndjson_encode_writes_one_envelope_per_line() -> None:
    out = io.BytesIO()
    NdjsonAdapter().encode([envelope("a"), envelope("ñ")], out)
    lines = out.getvalue().splitlines()
    assert [json.loads(each) for each in lines] == [envelope("a"), envelope("ñ")]
    assert "ñ".encode() in lines[1]


def test_json_a_single_envelope_or_an_array() -> None:
    (single,) = JsonAdapter().decode(io.BytesIO(json.dumps(envelope("a")).encode()))
    assert single.position == "$" and single.ok
    items = list(JsonAdapter().decode(io.BytesIO(json.dumps([envelope("a"), 3]).encode())))
    assert [(i.position, i.ok) for i in items] == [("$[0]", True), ("$[1]", False)]


def test_json_an_unusable_file_is_one_file_problem() -> None:
    # Nothing of it can be read: no record, and no rejects file in JSON over the input's name.
    (item,) = JsonAdapter().decode(io.BytesIO(b"[{]"))
    assert isinstance(item, FileProblem) and item.position == "$"
    assert "malformed JSON at line 1" in item.problems[0].en


def test_json_a_document_that_is_no_envelope_is_one_rejected_item() -> None:
    (item,) = JsonAdapter().decode(io.BytesIO(b'"just text"'))
    assert item.position == "$" and not item.ok and not isinstance(item, FileProblem)
    assert "object" in item.problems[0].en


@pytest.mark.parametrize("data", [b"", b"  \n", b"[]"])
def test_json_an_empty_file_holds_no_records(data: bytes) -> None:
    assert list(JsonAdapter().decode(io.BytesIO(data))) == []


def test_ndjson_a_file_of_another_kind_is_one_file_problem() -> None:
    sheet = b"folio,nombre\nF-1,Ana\n"
    (item,) = NdjsonAdapter().decode(io.BytesIO(sheet))
    assert isinstance(item, FileProblem) and item.position == "1"
    assert item.problems[0].en == (
        "not an NDJSON file (one JSON object per line): line 1 starts with 'folio,nombre'"
    )
    # A broken envelope on the first line is a bad line like any other: the rest is read.
    items = list(NdjsonAdapter().decode(io.BytesIO(b'{"schema": \n' + line(envelope("a")))))
    assert [(i.position, i.ok) for i in items] == [("1", False), ("2", True)]


def test_ndjson_rejects_give_each_line_number() -> None:
    data = line(envelope("a")) + b"{not json\n" + b"[1, 2]\n"
    adapter = NdjsonAdapter()
    out = io.BytesIO()
    adapter.write_rejects((i for i in adapter.decode(io.BytesIO(data)) if not i.ok), out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["errors"][0]["position"] for line in lines] == ["2", "3"]
    assert lines[0]["original"] == "{not json"


def test_json_a_file_over_max_bytes_is_refused_without_reading_it_all() -> None:
    stream = io.BytesIO(json.dumps([envelope(str(n)) for n in range(100)]).encode())
    (item,) = JsonAdapter(max_bytes=1000).decode(stream)
    assert "too large" in item.problems[0].en
    assert stream.tell() == 1001


def test_json_encode_and_rejects_are_arrays() -> None:
    out = io.BytesIO()
    JsonAdapter().encode([envelope("a"), envelope("b")], out)
    assert json.loads(out.getvalue()) == [envelope("a"), envelope("b")]
    empty = io.BytesIO()
    JsonAdapter().encode([], empty)
    assert json.loads(empty.getvalue()) == []
    items = list(JsonAdapter().decode(io.BytesIO(json.dumps([envelope("a"), {"x": 1}]).encode())))
    rejects = io.BytesIO()
    JsonAdapter().write_rejects([i for i in items if not i.ok], rejects)
    (rejected,) = json.loads(rejects.getvalue())
    assert rejected["x"] == 1 and rejected["errors"]
