"""Decoding in a second process (exchange.decode_process): the same items in the same order
as decoding in this one, an adapter's failure reported with its position, a decoding process
that dies or cannot hand its items over reported, and never more than a few chunks ahead."""

from __future__ import annotations

import io
import multiprocessing
import os
import queue as queues
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import pytest

from adapters.base import FileProblem, Item, Problem
from exchange import decode_process
from exchange.decode_process import CHUNK_ITEMS, CHUNKS_AHEAD, Decoding, in_a_second_process

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)


class PidAdapter:
    """Yields one item per line of the input; each item's source is the decoding pid."""

    name = "pid"
    media_types = ("text/plain",)
    picklable_items = True

    def __init__(self, fail_at: int | None = None, die_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.die_at = die_at
        self.lines_seen = 0

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        for number, line in enumerate(stream, 1):
            if number == self.fail_at:
                raise RuntimeError("the adapter broke")
            if number == self.die_at:
                os._exit(3)
            self.lines_seen = number
            text = line.decode().strip()
            if text == "bad":
                yield Item(str(number), problems=(Problem("", "mala", "bad"),), source=text)
            elif text == "file":
                yield FileProblem(str(number), problems=(Problem("", "archivo", "file"),))
            else:
                yield Item(str(number), {"local_id": text}, source=os.getpid(), local_id=text)

    def encode(self, documents: Any, out: IO[bytes]) -> None:
        raise NotImplementedError

    def decoding_state(self) -> int:
        return self.lines_seen

    def adopt_decoding_state(self, state: int) -> None:
        self.lines_seen = state


class InProcessAdapter(PidAdapter):
    picklable_items = False


def lines(count: int, **special: str) -> io.BytesIO:
    text = [special.get(str(n), f"case-{n}") for n in range(1, count + 1)]
    return io.BytesIO("".join(f"{line}\n" for line in text).encode())


def test_items_come_from_a_second_process_in_input_order() -> None:
    adapter = PidAdapter()
    count = CHUNK_ITEMS * 3 + 7
    with Decoding(adapter, lines(count, **{"5": "bad", "9": "file"})) as decoding:
        items = list(decoding)
    assert [item.position for item in items] == [str(n) for n in range(1, count + 1)]
    assert {item.source for item in items if item.ok} - {os.getpid()}  # another pid
    assert os.getpid() not in {item.source for item in items}
    assert items[4].problems[0].en == "bad" and not items[4].ok
    assert isinstance(items[8], FileProblem)
    assert decoding.failure is None
    # What decoding found reached this process's adapter (its rejects writer needs it).
    assert adapter.lines_seen == count


def test_an_adapter_that_does_not_say_so_decodes_in_this_process() -> None:
    adapter = InProcessAdapter()
    assert not in_a_second_process(adapter)
    with Decoding(adapter, lines(30)) as decoding:
        items = list(decoding)
    assert {item.source for item in items} == {os.getpid()}
    assert len(items) == 30


def test_an_adapter_that_raises_in_the_second_process_is_reported_where_it_stopped() -> None:
    with Decoding(PidAdapter(fail_at=CHUNK_ITEMS + 11), lines(CHUNK_ITEMS * 2)) as decoding:
        items = list(decoding)
    assert len(items) == CHUNK_ITEMS + 10  # everything before it still comes
    assert decoding.failure is not None
    assert decoding.failure["position"] == str(CHUNK_ITEMS + 10)
    assert "RuntimeError: the adapter broke" in decoding.failure["exception"]
    assert "pid" in decoding.failure["message_es"] and "pid" in decoding.failure["message_en"]


def test_a_decoding_process_that_dies_is_reported_not_waited_for() -> None:
    with Decoding(PidAdapter(die_at=CHUNK_ITEMS * 2 + 1), lines(CHUNK_ITEMS * 4)) as decoding:
        items = list(decoding)
    # At most the chunks handed over before it died, in order (one still in its pipe's
    # buffer dies with it).
    assert len(items) <= CHUNK_ITEMS * 2
    assert [item.position for item in items] == [str(n) for n in range(1, len(items) + 1)]
    assert decoding.failure is not None
    assert decoding.failure["exception"] == "exit code 3"
    assert "importe de nuevo" in decoding.failure["message_es"]
    assert "import again" in decoding.failure["message_en"]


class UnpicklableAdapter(PidAdapter):
    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        for item in super().decode(stream):
            if item.position == str(CHUNK_ITEMS + 3):
                yield Item(item.position, item.document, source=threading.Lock())
            else:
                yield item


def test_items_that_cannot_be_handed_over_are_reported() -> None:
    with Decoding(UnpicklableAdapter(), lines(CHUNK_ITEMS * 3)) as decoding:
        items = list(decoding)
    assert len(items) == CHUNK_ITEMS  # the first chunk; the one holding the lock is not
    assert decoding.failure is not None
    assert "picklable_items" in decoding.failure["message_en"]
    assert "picklable_items" in decoding.failure["message_es"]


class EndlessAdapter(PidAdapter):
    def __init__(self, counter: Any) -> None:
        super().__init__()
        self.counter = counter

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        number = 0
        while True:
            number += 1
            with self.counter.get_lock():
                self.counter.value = number
            yield Item(str(number), {"local_id": str(number)}, local_id=str(number))


def test_the_decoding_process_stays_a_few_chunks_ahead_and_stops_with_the_import() -> None:
    counter = multiprocessing.get_context("fork").Value("q", 0)
    with Decoding(EndlessAdapter(counter), io.BytesIO()) as decoding:
        first = next(iter(decoding))
        assert first.position == "1"
        time.sleep(1.0)
        # Bounded memory: it waits for this process instead of decoding the whole input.
        ahead = counter.value
        assert ahead <= (CHUNKS_AHEAD + 3) * CHUNK_ITEMS
        time.sleep(0.5)
        assert counter.value == ahead
        process = decoding._process
    assert process is not None and not process.is_alive()


def test_items_are_handed_over_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Smaller chunks than the default are still given out whole and in order.
    monkeypatch.setattr(decode_process, "CHUNK_ITEMS", 3)
    with Decoding(PidAdapter(), lines(10)) as decoding:
        assert [item.position for item in decoding] == [str(n) for n in range(1, 11)]


def test_what_the_child_sent_before_it_ended_is_read_after_it_ended() -> None:
    # The first wait finds nothing; the child then writes its items and its end, and ends,
    # before this process looks at whether it is alive: what it sent is read, not lost.
    with Decoding(PidAdapter(), lines(10)) as decoding:
        real_get = decoding._queue.get
        waits: list[float] = []

        def get(timeout: float) -> Any:
            if not waits:
                waits.append(timeout)
                decoding._process.join()
                raise queues.Empty
            return real_get(timeout=timeout)

        decoding._queue.get = get
        items = list(decoding)
    assert waits and decoding.failure is None
    assert [item.position for item in items] == [str(n) for n in range(1, 11)]
