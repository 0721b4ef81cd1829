"""A bulk push collects garbage once per batch, and leaves the collector as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

from exchange.record_bulk import push_lines
from exchange.record_push import PushResult
from schemas import DocumentError


class _StoresNothing:
    """A pusher whose batches hold only rejected lines (so nothing is stored)."""

    def store_committed(self, items: list[Any], refused: list[Any], **_: Any) -> list[Any]:
        assert items == []
        return []


def _bad_lines(count: int, seen: list[bool]) -> Iterator[tuple[int, Any]]:
    for number in range(1, count + 1):
        seen.append(gc.isenabled())
        yield number, DocumentError("malformed-json", "mal", "bad")


def test_the_collector_is_paused_while_lines_are_read_and_stored() -> None:
    assert gc.isenabled()
    seen: list[bool] = []
    results = list(push_lines(_StoresNothing(), _bad_lines(2_500, seen), max_lines=10_000))  # type: ignore[arg-type]
    assert len(results) == 2_500 and all(isinstance(r, PushResult) for r in results)
    assert seen and not any(seen)
    assert gc.isenabled()


def test_a_push_abandoned_halfway_turns_the_collector_back_on() -> None:
    seen: list[bool] = []
    answers = push_lines(_StoresNothing(), _bad_lines(5_000, seen), max_lines=10_000)  # type: ignore[arg-type]
    next(answers)
    assert not gc.isenabled()
    answers.close()  # the client went away
    assert gc.isenabled()


def test_a_collector_turned_off_elsewhere_stays_off() -> None:
    gc.disable()
    try:
        list(push_lines(_StoresNothing(), _bad_lines(10, []), max_lines=100))  # type: ignore[arg-type]
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_import_reads_and_sends_its_batches_with_the_collector_paused() -> None:
    from adapters.base import Item
    from exchange.importer import ImportSummary, Outcome, pushed_and_rejected

    seen: list[bool] = []

    class Sink:
        def push(self, documents: list[Any]) -> list[Outcome]:
            seen.append(gc.isenabled())
            return [Outcome("stored") for _ in documents]

    def items() -> Iterator[Item]:
        for number in range(1, 1_201):
            seen.append(gc.isenabled())
            yield Item(str(number), document={"local_id": str(number)})

    summary = ImportSummary("test", "file", "mx.chp.dif", "direct")
    left = list(pushed_and_rejected(items(), Sink(), summary, batch=500))  # type: ignore[arg-type]
    assert left == [] and summary.stored == 1_200
    assert len(seen) == 1_203 and not any(seen)
    assert gc.isenabled()
