"""Decoding in a second process (exchange.decode_process): the same items in the same order
as decoding in this one, an adapter's failure reported with its position, a decoding process
that dies or cannot hand its items over reported, and never more than a few chunks ahead."""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
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
        # The inbox's chunks, the one being read, the one being decoded, and what the pipe's
        # buffer holds (64 KiB on Linux) of chunks this small.
        chunk = [Item(str(n), {"local_id": str(n)}, local_id=str(n)) for n in range(CHUNK_ITEMS)]
        in_the_pipe = 65536 // len(pickle.dumps((chunk, 0), pickle.HIGHEST_PROTOCOL)) + 1
        assert ahead <= (CHUNKS_AHEAD + 3 + in_the_pipe) * CHUNK_ITEMS
        time.sleep(0.5)
        assert counter.value == ahead
        process = decoding._process
    assert process is not None and not process.is_alive()


def test_items_are_handed_over_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Smaller chunks than the default are still given out whole and in order.
    monkeypatch.setattr(decode_process, "CHUNK_ITEMS", 3)
    with Decoding(PidAdapter(), lines(10)) as decoding:
        assert [item.position for item in decoding] == [str(n) for n in range(1, 11)]


class BigItemsAdapter(PidAdapter):
    """Items too big for a pipe's buffer: the child is always in the middle of writing one."""

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        for item in super().decode(stream):
            yield Item(item.position, item.document, source="x" * 200_000)


def test_a_child_killed_in_the_middle_of_a_chunk_ends_the_items_without_a_hang() -> None:
    def read_all(decoding: Decoding, into: list[Item]) -> None:
        into.extend(decoding)

    with Decoding(BigItemsAdapter(), lines(CHUNK_ITEMS * 40)) as decoding:
        time.sleep(0.5)  # the inbox fills; the child blocks half-way through a chunk
        os.kill(decoding._process.pid, signal.SIGKILL)
        items: list[Item] = []
        reading = threading.Thread(target=read_all, args=(decoding, items), daemon=True)
        reading.start()
        reading.join(timeout=30)
        assert not reading.is_alive(), "the import waited for ever on a dead child"
    assert len(items) % CHUNK_ITEMS == 0 and len(items) < CHUNK_ITEMS * 40
    assert decoding.failure is not None
    assert decoding.failure["exception"] == f"exit code {-signal.SIGKILL}"


ORPHAN = """
import io, os, sys, time
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from test_decode_process import BigItemsAdapter, lines
from exchange.decode_process import Decoding
decoding = Decoding(BigItemsAdapter(), lines(4000)).__enter__()
print(decoding._process.pid, flush=True)
time.sleep(0.5)
os._exit(0)  # the importing process dies without stopping its child
"""


def test_a_child_whose_importing_process_died_stops_at_its_next_write(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    script = ORPHAN.format(root=str(root), tests=str(Path(__file__).parent))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _running(child):
        time.sleep(0.1)
    assert not _running(child), "the decoding process outlived its importing process"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


class NoWayBack(Exception):
    """Pickles, but cannot be unpickled (two required arguments)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(first)
        self.second = second


class UnloadableAdapter(PidAdapter):
    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        for item in super().decode(stream):
            if item.position == str(CHUNK_ITEMS + 1):
                item = Item(item.position, item.document, source=NoWayBack("a", "b"))
            yield item


def test_an_item_that_cannot_be_unpickled_is_reported_not_raised() -> None:
    with Decoding(UnloadableAdapter(), lines(CHUNK_ITEMS * 3)) as decoding:
        items = list(decoding)
    assert len(items) == CHUNK_ITEMS
    assert decoding.failure is not None and "TypeError" in decoding.failure["exception"]


class BrokenStateAdapter(PidAdapter):
    def decoding_state(self) -> int:
        raise ValueError("no state to give")


def test_an_adapter_whose_state_cannot_be_given_is_reported_with_the_reason() -> None:
    with Decoding(BrokenStateAdapter(), lines(10)) as decoding:
        items = list(decoding)
    assert items == []
    assert decoding.failure is not None
    assert decoding.failure["exception"] == "ValueError: no state to give"
    assert "no state to give" in decoding.failure["message_en"]


def test_the_bytes_read_follow_the_items_given_out_not_the_decoding_ahead(
    tmp_path: Path,
) -> None:
    # A progress bar shows how far the stored items reach, though the child reads ahead.
    path = tmp_path / "cases.txt"
    path.write_bytes(lines(CHUNK_ITEMS * 30).getvalue())
    line_bytes = len(b"case-1000\n")
    with path.open("rb") as stream, Decoding(PidAdapter(), stream) as decoding:
        assert decoding.bytes_read() == 0
        iterator = iter(decoding)
        for _ in range(CHUNK_ITEMS + 1):  # the first chunk, and the first item of the next
            next(iterator)
        time.sleep(0.3)  # the child is chunks ahead by now
        first_chunk = decoding.bytes_read()
        assert 0 < first_chunk <= CHUNK_ITEMS * line_bytes + 8192  # a read buffer at most
        rest = list(iterator)
        assert decoding.bytes_read() == path.stat().st_size
    assert len(rest) == CHUNK_ITEMS * 29 - 1
