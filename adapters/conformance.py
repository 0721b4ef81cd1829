"""The checks every adapter passes, built-in or installed (STYLE.md point 7).

Each check takes an adapter and a :class:`ConformanceCase` (the sample inputs the adapter's
author supplies) and returns nothing or raises :class:`AssertionError` saying, in Spanish and
English, what was expected and what was found; a check may decode more than once with the
adapter it is given. Plain functions, so any test runner calls them: Puente's own suite
(``tests/unit/adapters/test_conformance.py``) runs them on the built-in adapters, and a
package that brings an adapter runs them from its own tests (docs/adapters.md §7)::

    CASE = ConformanceCase(name="sigeca", good=..., bad=..., ...)

    @pytest.mark.parametrize("check", checks_for(CASE), ids=check_name)
    def test_conformance(check):
        check(SigecaAdapter(**CASE.options), CASE)

The checks: the adapter satisfies the Protocol (:class:`~adapters.base.Adapter` and
:class:`~adapters.base.RejectsWriter`); every item ``decode`` yields keeps the contract
``puente import`` checks (:func:`~adapters.base.contract_breach`); good input decodes to valid
push envelopes; bad input gives problems (Spanish and English) at exactly the expected
positions while the rest is still decoded; decode → encode → decode gives the same documents,
where the format can hold them; the rejects file is in the adapter's own format and reads back
as the same rejected positions; and, where the format streams, decoding an input four times
:data:`MEMORY_BOUND` stays under it.
"""

from __future__ import annotations

import gc
import io
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

from adapters.base import Adapter, Item, RejectsWriter, contract_breach
from schemas.envelope import validate_envelope

#: Most bytes an adapter may hold at once while it decodes (tracemalloc's peak); the streaming
#: check's input is four times as large, so an adapter that holds it fails. Measured peaks:
#: about 0.5 MB for csv, 0.3 MB for ndjson.
MEMORY_BOUND = 2 * 1024 * 1024


@dataclass(frozen=True)
class ConformanceCase:
    """What an adapter is checked with.

    ``name`` is the name it is registered under (its ``puente.adapters`` entry point), which
    its ``name`` attribute repeats. ``good``: every position decodes to a valid document.
    ``bad``: exactly the positions in ``bad_positions`` have problems, and ``good_in_bad``
    others still decode. ``round_trip``: decode → encode → decode gives equal documents (False
    for a format that cannot hold what it reads). ``large(n)`` gives a stream of ``n`` valid
    positions, best made as it is read (:class:`GeneratedStream`); None when the format cannot
    stream. ``options`` are the adapter's options (``registry.get(name, **options)``).
    """

    name: str
    good: bytes
    bad: bytes
    bad_positions: frozenset[str]
    good_in_bad: int
    round_trip: bool
    large: Callable[[int], IO[bytes]] | None
    options: Mapping[str, Any] = field(default_factory=dict)


Check = Callable[[Adapter, ConformanceCase], None]
_NO_REJECTS_WRITER = (
    "el adaptador necesita write_rejects(items, out) (adapters.base.RejectsWriter)",
    "the adapter needs write_rejects(items, out) (adapters.base.RejectsWriter)",
)


def checks_for(case: ConformanceCase) -> tuple[Check, ...]:
    """Every check that applies to ``case``: the round trip only where the format allows it,
    the streaming check only with a ``large`` input."""
    checks: list[Check] = [check_protocol, check_good_input, check_bad_input, check_rejects]
    if case.round_trip:
        checks.append(check_round_trip)
    if case.large is not None:
        checks.append(check_bounded_memory)
    return tuple(checks)


def check_name(check: Check) -> str:
    """A check's name without ``check_``, for test ids (``round_trip``)."""
    return getattr(check, "__name__", str(check)).removeprefix("check_")


def check_protocol(adapter: Adapter, case: ConformanceCase) -> None:
    """The adapter has what ``puente import`` and ``puente export`` call."""
    _expect(
        isinstance(adapter, Adapter),
        "el adaptador necesita name, media_types, decode(stream) y encode(documents, out)",
        "the adapter needs name, media_types, decode(stream) and encode(documents, out)",
    )
    _expect(isinstance(adapter, RejectsWriter), *_NO_REJECTS_WRITER)
    _expect(
        adapter.name == case.name,
        f"name es {adapter.name!r}; se esperaba {case.name!r}, su nombre registrado",
        f"name is {adapter.name!r}, want {case.name!r}, its registered name",
    )
    media_types = adapter.media_types
    _expect(
        isinstance(media_types, tuple)
        and bool(media_types)
        and all(isinstance(each, str) and "/" in each for each in media_types),
        f"media_types debe ser una tupla de tipos como 'text/csv', no {media_types!r}",
        f"media_types must be a tuple of types such as 'text/csv', not {media_types!r}",
    )


def check_good_input(adapter: Adapter, case: ConformanceCase) -> None:
    """Good input decodes to valid push envelopes, each at its own position."""
    items = _decode(adapter, case.good)
    _expect(bool(items), "la entrada buena no dio nada", "the good input gave nothing")
    for item in items:
        _expect(
            item.ok,
            f"posición {item.position} de la entrada buena rechazada: {_reasons(item, 'es')}",
            f"position {item.position} of the good input rejected: {_reasons(item, 'en')}",
        )
        assert item.document is not None
        failures = [f"{f.pointer}: {f.message_en}" for f in validate_envelope(item.document)]
        _expect(
            not failures,
            f"posición {item.position}: el documento no es un envío válido: {failures}",
            f"position {item.position}: the document is no valid push envelope: {failures}",
        )
        _expect(
            item.local_id == item.document["local_id"],
            f"posición {item.position}: local_id {item.local_id!r}, el documento dice "
            f"{item.document['local_id']!r}",
            f"position {item.position}: local_id {item.local_id!r}, the document says "
            f"{item.document['local_id']!r}",
        )
        _expect(
            item.source is not None,
            f"posición {item.position}: sin source (lo que write_rejects escribe de nuevo)",
            f"position {item.position}: no source (what write_rejects writes back)",
        )
    positions = [item.position for item in items]
    _expect(
        all(positions) and len(set(positions)) == len(positions),
        f"cada posición debe ser única y no vacía: {positions}",
        f"every position must be unique and not empty: {positions}",
    )


def check_bad_input(adapter: Adapter, case: ConformanceCase) -> None:
    """Bad input gives problems at exactly the bad positions, in Spanish and English, and the
    good positions among them still decode."""
    items = _decode(adapter, case.bad)
    rejected = [item for item in items if not item.ok]
    found = sorted(item.position for item in rejected)
    _expect(
        set(found) == case.bad_positions,
        f"rechazadas las posiciones {found}; se esperaban {sorted(case.bad_positions)}",
        f"rejected positions {found}, want {sorted(case.bad_positions)}",
    )
    decoded = len(items) - len(rejected)
    _expect(
        decoded == case.good_in_bad,
        f"{decoded} posiciones buenas decodificadas; se esperaban {case.good_in_bad}",
        f"{decoded} good positions decoded, want {case.good_in_bad}",
    )
    for item in rejected:
        _expect(
            item.document is None and bool(item.problems),
            f"posición {item.position}: un rechazo lleva problemas y ningún documento",
            f"position {item.position}: a rejected item has problems and no document",
        )
        for problem in item.problems:
            _expect(
                bool(problem.es and problem.en) and problem.es != problem.en,
                f"posición {item.position}, {problem.pointer!r}: falta el mensaje en español "
                "o en inglés",
                f"position {item.position}, {problem.pointer!r}: the Spanish or the English "
                "message is missing",
            )
    for item in items:
        if item.ok:
            assert item.document is not None
            _expect(
                not validate_envelope(item.document),
                f"posición {item.position}: aceptada sin ser un envío válido",
                f"position {item.position}: accepted but no valid push envelope",
            )


def check_round_trip(adapter: Adapter, case: ConformanceCase) -> None:
    """decode → encode → decode gives the same documents."""
    first = _documents(_decode(adapter, case.good))
    out = io.BytesIO()
    adapter.encode(first, out)
    second = _documents(_decode(adapter, out.getvalue()))
    for index, (before, after) in enumerate(zip(first, second, strict=False)):
        if before != after:
            where, was, now = _difference(before, after)
            _fail(
                f"el documento {index} cambió en la ida y vuelta, en {where}: {was!r} → {now!r}",
                f"document {index} changed in the round trip at {where}: {was!r} → {now!r}",
            )
    _expect(
        len(second) == len(first),
        f"{len(first)} documentos escritos, {len(second)} leídos de nuevo",
        f"{len(first)} documents written, {len(second)} read back",
    )


def check_rejects(adapter: Adapter, case: ConformanceCase) -> None:
    """The rejects file is in the adapter's own format: read back, it gives as many rejected
    positions as were written, none of them accepted; no rejects, no bytes."""
    if not isinstance(adapter, RejectsWriter):
        _fail(*_NO_REJECTS_WRITER)
    rejected = [item for item in _decode(adapter, case.bad) if not item.ok]
    out = io.BytesIO()
    adapter.write_rejects(rejected, out)
    rows = [item for item in _decode(adapter, out.getvalue()) if item.source is not None]
    _expect(
        len(rows) == len(rejected),
        f"{len(rejected)} rechazos escritos, {len(rows)} leídos de nuevo",
        f"{len(rejected)} rejects written, {len(rows)} read back",
    )
    accepted = [item.position for item in rows if item.ok]
    _expect(
        not accepted,
        f"rechazos aceptados al leerlos de nuevo: {accepted} (escriba cada uno como llegó)",
        f"rejects accepted when read back: {accepted} (write each one as it came)",
    )
    empty = io.BytesIO()
    adapter.write_rejects([], empty)
    _expect(
        empty.getvalue() == b"",
        f"sin rechazos se escribió {empty.getvalue()[:40]!r}; se esperaba nada",
        f"no rejects wrote {empty.getvalue()[:40]!r}, want nothing",
    )


def check_bounded_memory(
    adapter: Adapter, case: ConformanceCase, memory_bound: int = MEMORY_BOUND
) -> None:
    """An input of four times ``memory_bound`` bytes — ``case.large``, made as it is read —
    decodes with at most ``memory_bound`` bytes allocated at any moment (tracemalloc's peak)."""
    if case.large is None:
        raise ValueError(f"the case {case.name!r} has no large input (large=None)")
    sample = len(case.large(1000).read())
    count = 4 * memory_bound * 1000 // sample + 1
    stream = _Counting(case.large(count))
    buffered = io.BufferedReader(stream)  # as open(path, "rb") gives it to the adapter
    gc.collect()
    tracemalloc.start()
    try:
        decoded = ok = 0
        for item in adapter.decode(buffered):
            decoded += 1
            ok += item.ok
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _expect(
        decoded == ok == count,
        f"{count} posiciones generadas, {decoded} decodificadas, {ok} válidas",
        f"{count} positions generated, {decoded} decoded, {ok} valid",
    )
    _expect(
        stream.bytes_read >= 4 * memory_bound,
        f"solo se leyeron {stream.bytes_read:,} bytes",
        f"only {stream.bytes_read:,} bytes were read",
    )
    _expect(
        peak < memory_bound,
        f"pico de {peak:,} bytes para {stream.bytes_read:,} bytes leídos; límite {memory_bound:,}",
        f"peak {peak:,} bytes for {stream.bytes_read:,} bytes read, bound {memory_bound:,}",
    )


class GeneratedStream(io.RawIOBase):
    """A read-only binary stream of ``header`` then ``line(1)`` … ``line(count)``, encoded as
    it is read: never more than one ``read`` worth of it exists at a time (for ``large``)."""

    def __init__(
        self, header: str, line: Callable[[int], str], count: int, encoding: str = "utf-8"
    ) -> None:
        self._pieces: Iterator[bytes] = (
            piece.encode(encoding)
            for piece in _chain(header, (line(n) for n in range(1, count + 1)))
        )
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            rest, self._buffer = self._buffer + b"".join(self._pieces), b""
            return rest
        pieces, held = [self._buffer], len(self._buffer)
        while held < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            pieces.append(piece)
            held += len(piece)
        joined = b"".join(pieces)
        chunk, self._buffer = joined[:size], joined[size:]
        return chunk

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


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

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _decode(adapter: Adapter, data: bytes) -> list[Item]:
    """Every item ``decode`` yields, each checked as ``puente import`` checks it (an item that
    breaks the contract stops an import)."""
    items = list(adapter.decode(io.BytesIO(data)))
    for index, item in enumerate(items):
        breach = contract_breach(item)
        if breach is not None:
            _fail(
                f"el elemento {index + 1} de decode: {breach[0]}",
                f"item {index + 1} of decode: {breach[1]}",
            )
    return items


def _documents(items: Iterable[Item]) -> list[Any]:
    return [item.document for item in items if item.ok]


def _reasons(item: Item, lang: str) -> str:
    said = [f"{p.pointer} {p.es if lang == 'es' else p.en}".strip() for p in item.problems]
    return "; ".join(said) or ("sin problemas" if lang == "es" else "no problems given")


def _difference(before: Any, after: Any, pointer: str = "") -> tuple[str, Any, Any]:
    """The JSON pointer of the first place ``before`` and ``after`` differ, and both values
    there (:data:`_MISSING` where one has nothing)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in [*before, *(k for k in after if k not in before)]:
            if before.get(key, _MISSING) != after.get(key, _MISSING):
                return _difference(
                    before.get(key, _MISSING), after.get(key, _MISSING), f"{pointer}/{key}"
                )
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (one, other) in enumerate(zip(before, after, strict=True)):
            if one != other:
                return _difference(one, other, f"{pointer}/{index}")
    return pointer, before, after


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING = _Missing()


def _expect(condition: bool, es: str, en: str) -> None:
    if not condition:
        _fail(es, en)


def _fail(es: str, en: str) -> NoReturn:
    raise AssertionError(f"{es} / {en}")
