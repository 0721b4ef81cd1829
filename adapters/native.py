"""The native shared format: push envelopes ``{"schema", "local_id", "data"}`` as JSON.

- ``ndjson``: one envelope per line, read line by line (a line is at most
  :data:`schemas.parsing.MAX_DOCUMENT_BYTES`), so memory stays bounded for a file of any size.
  Positions are 1-based line numbers, blank lines counted, as an editor shows them.
- ``json``: one envelope, or an array of envelopes. The whole input is parsed at once (JSON
  has no record boundaries to stream on), up to ``max_bytes``; for large exports use ndjson.
  Positions are ``$`` for a single envelope and ``$[3]`` for the fourth element of an array.

Problems point into the envelope (``/data/child/sex``, ``/local_id``), as the hub's bulk push
reports them. A file of another kind — an NDJSON file whose first line is not even meant as
a JSON object (a spreadsheet), a JSON file that is not JSON — is one
:class:`~adapters.base.FileProblem`, and nothing is read; an empty file holds no records.
Rejects carry each error with the item's ``position``. A top-level ``errors`` member is
ignored on input: it is what a rejects file adds, so the office can fix a rejected line and
send the file again as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from adapters.base import FileProblem, Item, Problem, problems_as_json
from adapters.envelopes import check_envelope
from schemas.errors import DocumentError
from schemas.parsing import MAX_DOCUMENT_BYTES, bounded_lines, iter_ndjson, parse_document
from schemas.registry import SchemaRegistry

REJECTS_MEMBER = "errors"
ORIGINAL_MEMBER = "original"


def _item(position: str, value: Any, source: Any, registry: SchemaRegistry | None) -> Item:
    if isinstance(value, DocumentError):
        problem = Problem("", value.message_es, value.message_en)
        return Item(position, problems=(problem,), source=source)
    if isinstance(value, dict) and REJECTS_MEMBER in value:
        value = {key: each for key, each in value.items() if key != REJECTS_MEMBER}
    local_id = value.get("local_id") if isinstance(value, dict) else None
    local_id = local_id if isinstance(local_id, str) else None
    problems = check_envelope(value, registry)
    if problems:
        return Item(position, problems=problems, source=source, local_id=local_id)
    return Item(position, document=value, source=source, local_id=local_id)


def _rejected(item: Item) -> dict[str, Any]:
    """The original envelope with the reasons (each with the item's position: the line, or
    ``$[3]``), or the text that was not JSON."""
    errors = problems_as_json(item.problems, item.position)
    if isinstance(item.source, Mapping):
        return {**item.source, REJECTS_MEMBER: errors}
    original = item.source
    if isinstance(original, bytes):
        original = original.decode("utf-8", "replace")
    return {ORIGINAL_MEMBER: original, REJECTS_MEMBER: errors}


def _looks_like_json(line: Any) -> bool:
    """Whether a line that failed to parse was meant as a JSON object (a broken envelope),
    not a line of another kind of file."""
    text = line.lstrip() if isinstance(line, bytes) else b""
    return text.startswith(b"{")


def _not_ndjson(number: int, line: Any) -> Problem:
    start = line[:40].decode("utf-8", "replace") if isinstance(line, bytes) else ""
    return Problem(
        "",
        f"no es un archivo NDJSON (un objeto JSON por línea): la línea {number} empieza con "
        f"«{start}»",
        f"not an NDJSON file (one JSON object per line): line {number} starts with '{start}'",
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class NdjsonAdapter:
    """Push envelopes, one per line (NDJSON), streamed."""

    name = "ndjson"
    media_types = ("application/x-ndjson", "application/jsonl")
    #: Its items can be handed to another process (exchange.decode_process).
    picklable_items = True

    def __init__(
        self, *, registry: SchemaRegistry | None = None, max_line_bytes: int = MAX_DOCUMENT_BYTES
    ) -> None:
        self.registry = registry
        self.max_line_bytes = max_line_bytes

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        current = b""

        def remembered(lines: Iterator[bytes]) -> Iterator[bytes]:
            # iter_ndjson yields a line's result before it reads the next line, so ``current``
            # is the raw text of the line being reported: a rejects file needs it.
            nonlocal current
            for current in lines:  # noqa: UP028 (``yield from`` would not set ``current``)
                yield current

        lines = remembered(bounded_lines(stream.read, max_line_bytes=self.max_line_bytes))
        numbered = iter_ndjson(lines, max_line_bytes=self.max_line_bytes, require_object=True)
        first = True
        for number, value in numbered:
            source = value if isinstance(value, dict) else current.rstrip(b"\r\n")
            if first and isinstance(value, DocumentError) and not _looks_like_json(source):
                # Not one JSON line but another kind of file (a spreadsheet, a JSON array):
                # said once, and no rejects file in this format written over it.
                yield FileProblem(str(number), problems=(_not_ndjson(number, source),))
                return
            first = False
            yield _item(str(number), value, source, self.registry)

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        for document in documents:
            out.write(_dumps(document) + b"\n")

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None:
        for item in items:
            if item.source is not None:
                out.write(_dumps(_rejected(item)) + b"\n")


class JsonAdapter:
    """One push envelope, or a JSON array of them, parsed whole."""

    name = "json"
    media_types = ("application/json",)
    #: Its items can be handed to another process (exchange.decode_process).
    picklable_items = True

    def __init__(
        self, *, registry: SchemaRegistry | None = None, max_bytes: int = 256 * 1024 * 1024
    ) -> None:
        self.registry = registry
        self.max_bytes = max_bytes

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        data = stream.read(self.max_bytes + 1)
        if not data.strip():
            return  # an empty file holds no records
        try:
            value = parse_document(data, max_bytes=self.max_bytes)
        except DocumentError as error:
            # The file is one document: when it is not JSON, nothing of it can be read.
            yield FileProblem("$", problems=(Problem("", error.message_es, error.message_en),))
            return
        del data
        if isinstance(value, list):
            for index, element in enumerate(value):
                yield _item(f"$[{index}]", element, element, self.registry)
        else:
            yield _item("$", value, value, self.registry)

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        _write_array((dict(document) for document in documents), out)

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None:
        rejected = (_rejected(item) for item in items if item.source is not None)
        _write_array(rejected, out, empty_writes_nothing=True)


def _write_array(
    values: Iterable[Any], out: IO[bytes], *, empty_writes_nothing: bool = False
) -> None:
    """A JSON array written element by element (never held whole), one element per line."""
    separator = b"[\n"
    for value in values:
        out.write(separator + _dumps(value))
        separator = b",\n"
    if separator == b"[\n":
        if not empty_writes_nothing:
            out.write(b"[]\n")
        return
    out.write(b"\n]\n")
