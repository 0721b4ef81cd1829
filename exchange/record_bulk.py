"""Bulk pushes: NDJSON lines in, one result per line out, in order.

Lines come parsed from ``schemas.parsing.iter_ndjson`` (fed by ``bounded_lines``, so memory
stays bounded however large the request); :class:`RawLines` between the two keeps each line's
text at hand, which makes its canonical form cheaper (``canonical_json(source=…)``), and stops
at a line the request's byte limit cut. Each line
is checked like a single push; good lines are stored in batches (``BULK_BATCH_SIZE`` lines or
8 MiB of bodies per transaction), and a batch's results are given out only once it is
committed. A line is stored whole (version, child link, audit entry) or rejected with its line
number and pointers.

A line may carry its own signature as the member ``"signature"`` (the detached JWS over the
canonical line *without* that member); it is taken off before the envelope is checked.

A line of a record another agency referred or transferred to the pushing agency (its local id
or id, and its child, as the agency's own export writes it) is rejected with ``conflict`` and
the other lines are stored: it is not the agency's record to push
(:data:`exchange.received_copies.RECEIVED_COPY`).

There are no per-line idempotency keys: a line whose body equals any version its record holds
answers ``unchanged`` (naming the latest version), so sending a whole file again, or part of
it, stores nothing twice and brings no older version back, even after newer pushes and while
others push (two uploads of one file at once, or a caseworker's push during an upload). When
the version it equals is an earlier one, the line also names it (``older_version``): it was
not applied, and a client tells its user so (``puente import`` does). A line
of a record an earlier line of the same push stored is compared with its latest version only
(a file changing a record to x and back ends at what its last line says): the push remembers
the ids of the records it stored (one short string a record, at most ``BULK_MAX_LINES``).
Setting a record back to an earlier state takes a single push, or a change (an update date).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError, OperationalError

from exchange.batch_collections import batch_collections, collect_young
from exchange.lost_parts import note_lost_parts
from exchange.record_push import (
    Pusher,
    PushItem,
    PushResult,
    canonical_body,
    failure,
    rejected,
    retryable,
)
from schemas.errors import DocumentError
from schemas.parsing import not_object_error

log = logging.getLogger("puente.push")

BATCH_BYTES = 8 * 1024 * 1024
#: Tries of a whole batch before it is stored line by line (rows are locked while a batch is
#: stored, so races are rare: only two pushes creating the same record at once).
BATCH_ATTEMPTS = 3


class LineSources(Protocol):
    def text(self, number: int) -> bytes | None: ...


class RawLines:
    """The raw NDJSON lines on their way to ``iter_ndjson``, remembering the latest one: when
    ``iter_ndjson`` yields line ``n``, :meth:`text` gives that line's bytes (line numbers count
    every line, as ``iter_ndjson``'s do). ``number`` is how many lines were passed on.

    ``cut_off``: whether the stream stopped at the request's byte limit. The unfinished line
    it stopped in (no newline yet) was not read whole, so it is not passed on — it would read
    as malformed JSON — and nothing after it is: the caller answers line ``number + 1``
    ``payload-too-large`` (:func:`too_many_bytes`).
    """

    def __init__(
        self, lines: Iterable[bytes], *, cut_off: Callable[[], bool] | None = None
    ) -> None:
        self.lines = lines
        self.cut_off = cut_off
        self.number = 0
        self.latest = b""

    def __iter__(self) -> Iterator[bytes]:
        for line in self.lines:
            if self.cut_off is not None and not line.endswith(b"\n") and self.cut_off():
                return
            self.number += 1
            self.latest = line
            yield line

    def text(self, number: int) -> bytes | None:
        return self.latest if number == self.number else None


def push_lines(
    pusher: Pusher,
    lines: Iterable[tuple[int, Any]],
    *,
    max_lines: int,
    batch_size: int = 500,
    batch_bytes: int = BATCH_BYTES,
    sources: LineSources | None = None,
) -> Iterator[PushResult]:
    """Push parsed NDJSON lines; yield one result per line, in order, batch by batch.

    ``sources``: where the text of each line can be found (:class:`RawLines`), if anywhere.
    """
    pending: list[PushItem | PushResult] = []
    items = size = 0
    # The records earlier lines of this push stored a version of: they are compared with their
    # latest version only, whichever batch each fell in (Pusher.store).
    stored: set[str] = set()
    with batch_collections():
        for number, value in lines:
            if number > max_lines:
                yield from _flush(pusher, pending, stored)
                yield too_many_lines(number, max_lines)
                return
            source = sources.text(number) if sources is not None else None
            checked = check_line(pusher, number, value, source)
            pending.append(checked)
            if isinstance(checked, PushItem):
                items += 1
                size += len(checked.canonical)
            # Rejected lines count too (4x), so a file of bad lines does not pile up in memory.
            if items >= batch_size or size >= batch_bytes or len(pending) >= 4 * batch_size:
                yield from _flush(pusher, pending, stored)
                pending, items, size = [], 0, 0
                collect_young()
        yield from _flush(pusher, pending, stored)


def too_many_lines(number: int, max_lines: int) -> PushResult:
    return rejected(
        number,
        "payload-too-large",
        failure(
            "",
            "max_lines",
            f"un envío masivo admite a lo sumo {max_lines} líneas; desde esta no se leyó "
            "nada: envíe el resto en otra solicitud",
            f"a bulk push takes at most {max_lines} lines; nothing from this line on was "
            "read: send the rest in another request",
        ),
    )


def too_many_bytes(number: int, max_bytes: int) -> PushResult:
    """The answer for the line a body sent without ``Content-Length`` passed ``max_bytes`` in
    (or, when the limit fell between two lines, the line after it)."""
    return rejected(
        number,
        "payload-too-large",
        failure(
            "",
            "max_bytes",
            f"un envío masivo admite a lo sumo {max_bytes} bytes y esta línea pasa del límite; "
            "desde esta no se leyó nada: envíe el resto en otra solicitud",
            f"a bulk push takes at most {max_bytes} bytes and this line goes past the limit; "
            "nothing from this line on was read: send the rest in another request",
        ),
    )


def check_line(
    pusher: Pusher, number: int, value: Any, source: bytes | None = None
) -> PushItem | PushResult:
    if isinstance(value, DocumentError):
        return rejected(
            number, "validation", failure("", value.code, value.message_es, value.message_en)
        )
    if not isinstance(value, dict):  # nothing to sign or check: say what it is, first
        shape = not_object_error(value)
        return rejected(
            number, "validation", failure("", shape.code, shape.message_es, shape.message_en)
        )
    signature = None
    if "signature" in value:
        signature = value.pop("signature")
        if not isinstance(signature, str):
            return rejected(
                number,
                "bad-signature",
                failure(
                    "/signature",
                    "signature",
                    "la firma debe ser un texto (JWS compacto separado)",
                    "the signature must be a string (detached compact JWS)",
                ),
            )
    try:
        canonical, sha256 = canonical_body(value, source=source)
    except ValueError:
        from exchange.canonical_errors import canonical_failure

        return rejected(number, "validation", canonical_failure(value))
    return pusher.check(
        value, canonical, sha256, signature, line=number, signature_pointer="/signature"
    )


def _flush(
    pusher: Pusher, pending: list[PushItem | PushResult], stored: set[str]
) -> Iterator[PushResult]:
    """Store the batch's items, then give out every line's result in order; the records it
    stored a version of join ``stored`` once committed."""
    if not pending:
        return
    items = [each for each in pending if isinstance(each, PushItem)]
    refused = [
        each for each in pending if isinstance(each, PushResult) and each.problem == "bad-signature"
    ]
    try:
        results = iter(
            pusher.store_committed(items, refused, attempts=BATCH_ATTEMPTS, bulk_stored=stored)
        )
    except (IntegrityError, OperationalError) as error:
        if not retryable(error):
            raise
        # A batch that keeps losing races is stored line by line, so one contended record
        # does not hold back the others.
        log.info(
            "un lote de %d líneas perdió %d carreras seguidas; se guarda línea por línea / a "
            "batch of %d lines lost %d races in a row; storing it line by line",
            len(items),
            BATCH_ATTEMPTS,
            len(items),
            BATCH_ATTEMPTS,
            extra=pusher.log_context(lines=len(items)),
        )
        results = iter(_store_one_by_one(pusher, items, refused, stored))
    answered = [next(results) if isinstance(each, PushItem) else each for each in pending]
    # New versions of records the hub had: compared with the ones they replaced (lost_parts).
    updates = [
        (result, each.data)
        for each, result in zip(pending, answered, strict=True)
        if isinstance(each, PushItem) and result.status == "stored" and (result.version or 0) > 1
    ]
    if updates and note_lost_parts(pusher.session, pusher.keyring, updates):
        pusher.session.commit()  # ends the read: the next batch begins its own write
    for result in answered:
        if result.status == "stored" and result.record_id is not None:
            stored.add(result.record_id)
        yield result


def _store_one_by_one(
    pusher: Pusher, items: list[PushItem], refused: list[PushResult], stored: set[str]
) -> list[PushResult]:
    results = []
    for index, item in enumerate(items):
        try:
            [result] = pusher.store_committed(
                [item], refused if index == 0 else [], bulk_stored=stored
            )
            if result.status == "stored" and result.record_id is not None:
                stored.add(result.record_id)  # a later item of the batch may be of it
            results.append(result)
        except (IntegrityError, OperationalError) as error:
            if not retryable(error):
                raise
            results.append(
                rejected(
                    item.line,
                    "conflict",
                    failure(
                        "/local_id",
                        "conflict",
                        "otro envío actualizaba este expediente al mismo tiempo; no se "
                        "guardó: envíe la línea de nuevo",
                        "another push was updating this record at the same time; nothing "
                        "was stored: send the line again",
                    ),
                )
            )
    return results
