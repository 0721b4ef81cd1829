"""An adapter's decoding in a second process, alongside the import that stores its items.

Reading a spreadsheet row, mapping it and checking it costs about a third of a direct
``puente import``'s CPU, and the hub's writes cost the rest. Both can run at once on a
machine with two cores: a child process decodes the file and hands its items over in
chunks, while this process stores the batch before. The order of the items, their
positions, the rejects file and the summary are the same as when one process does both.

Only adapters that say their items can be handed over do this (``picklable_items = True``,
as every built-in adapter does): an installed adapter may carry anything in an item's
``source``. The child is forked (the adapter and the open file come with it, nothing is
pickled but the items), so this needs the ``fork`` start method (Linux; elsewhere the
adapter decodes in this process as before). It is forked before the hub's database is
opened, so it holds no connection and no thread but its own.

Memory stays bounded: at most :data:`CHUNKS_AHEAD` chunks of :data:`CHUNK_ITEMS` items wait
between the two processes, and the child blocks until this process takes one.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import pickle
import queue as queues
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from adapters.base import Adapter, Item

#: Items handed over at once (fewer messages; each chunk is pickled once).
CHUNK_ITEMS = 100
#: Chunks that may wait between the processes: about two batches of the default 500, so the
#: child decodes the next batch while this process stores the one before.
CHUNKS_AHEAD = 12
#: How often a waiting import looks whether the child is still alive (seconds).
POLL_SECONDS = 0.5

#: What a decoding ends with: the adapter's failure (see ``exchange.importer.guarded``) or None.
Failure = dict[str, str] | None


def in_a_second_process(adapter: Adapter) -> bool:
    """Whether ``adapter`` decodes in a child process here."""
    return bool(getattr(adapter, "picklable_items", False)) and (
        "fork" in multiprocessing.get_all_start_methods()
    )


class Decoding:
    """``adapter.decode(stream)`` as items, each decoded once, in input order, guarded as
    :func:`exchange.importer.guarded` guards it: when the adapter raises, the items end and
    :attr:`failure` says where and what.

    Use as a context manager, entered before the hub's database is opened: the child starts
    on entry (when the adapter allows, :func:`in_a_second_process`) and is stopped on exit,
    also when the import ends early.
    """

    def __init__(self, adapter: Adapter, stream: IO[bytes]) -> None:
        self.adapter = adapter
        self.stream = stream
        self.failure: Failure = None
        self._queue: Any = None
        self._process: Any = None

    def __enter__(self) -> Decoding:
        if in_a_second_process(self.adapter):
            context = multiprocessing.get_context("fork")
            self._queue = context.Queue(maxsize=CHUNKS_AHEAD)
            self._process = context.Process(
                target=_decode_and_hand_over,
                args=(self.adapter, self.stream, self._queue),
                name=f"puente-decode-{self.adapter.name}",
                daemon=True,
            )
            self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.is_alive():
            # The import stopped before the end of the file: nothing more is wanted.
            process.terminate()
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        self._queue.close()
        self._queue.cancel_join_thread()

    def __iter__(self) -> Iterator[Item]:
        if self._process is None:
            return self._in_this_process()
        return self._handed_over()

    def _in_this_process(self) -> Iterator[Item]:
        from exchange.importer import guarded

        holder = _FailureHolder()
        yield from guarded(lambda: self.adapter.decode(self.stream), self.adapter.name, holder)
        self.failure = holder.adapter_failure

    def _handed_over(self) -> Iterator[Item]:
        while True:
            message = self._next_message()
            if message is None:
                self._stopped_unexpectedly()
                return
            # From the child this process forked, through its own pipe: not outside input.
            kind, payload, state = pickle.loads(message)  # noqa: S301
            if state is not None:
                self.adapter.adopt_decoding_state(state)  # type: ignore[attr-defined]
            if kind == "items":
                yield from payload
            else:
                self.failure = payload
                return

    def _next_message(self) -> bytes | None:
        """The child's next message; None once it has ended without sending one (or died in
        the middle of one)."""
        while True:
            alive = self._process is not None and self._process.is_alive()
            try:
                # Whatever the child wrote before it ended is still read, after it ended.
                message: bytes = self._queue.get(timeout=POLL_SECONDS)
                return message
            except queues.Empty:
                if not alive:
                    return None
            except (EOFError, OSError):
                return None

    def _stopped_unexpectedly(self) -> None:
        code = self._process.exitcode
        self.failure = {
            "position": "",
            "exception": f"exit code {code}",
            "message_es": (
                f"el proceso que leía el archivo con el adaptador «{self.adapter.name}» terminó "
                f"sin terminar el archivo (código {code}); lo leído antes se guardó o está en el "
                "archivo de rechazos: importe de nuevo (lo ya guardado no se duplica)"
            ),
            "message_en": (
                f"the process reading the file with the adapter '{self.adapter.name}' ended "
                f"before the end of the file (exit code {code}); what was read before is "
                "stored or in the rejects file: import again (what is stored is not stored "
                "twice)"
            ),
        }


class _FailureHolder:
    """What :func:`exchange.importer.guarded` records a failure on."""

    adapter_failure: Failure = None


def _decode_and_hand_over(adapter: Adapter, stream: IO[bytes], queue: Any) -> None:
    """The child: decode, and put pickled ``("items", [...], state)`` chunks, then one
    ``("end", failure, state)`` (``state``: the adapter's ``decoding_state()``, or None)."""
    from exchange.importer import guarded

    gc.freeze()  # what came with the fork stays shared with the parent, unscanned
    holder = _FailureHolder()
    chunk: list[Item] = []
    put = _putter(queue, adapter, holder)
    for item in guarded(lambda: adapter.decode(stream), adapter.name, holder):
        chunk.append(item)
        if len(chunk) >= CHUNK_ITEMS:
            if not put("items", chunk):
                break
            chunk = []
    else:
        if chunk:
            put("items", chunk)
    with contextlib.suppress(Exception):
        queue.put(
            pickle.dumps(("end", holder.adapter_failure, _state(adapter)), pickle.HIGHEST_PROTOCOL)
        )
    queue.close()
    queue.join_thread()


def _state(adapter: Adapter) -> Any:
    """The adapter's ``decoding_state()``, if it has one (see :class:`adapters.base.Adapter`)."""
    state = getattr(adapter, "decoding_state", None)
    return state() if state is not None else None


def _putter(
    queue: Any, adapter: Adapter, holder: _FailureHolder
) -> Callable[[str, Iterable[Item]], bool]:
    def put(kind: str, items: Iterable[Item]) -> bool:
        try:
            message = pickle.dumps((kind, list(items), _state(adapter)), pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 (an item's source may be anything)
            last = next(reversed(list(items)), None)
            holder.adapter_failure = _not_handed_over(adapter.name, last, error)
            return False
        queue.put(message)
        return True

    return put


def _not_handed_over(name: str, last: Item | None, error: Exception) -> dict[str, str]:
    raised = f"{type(error).__name__}: {error}"
    where = last.position if last is not None else ""
    return {
        "position": where,
        "exception": raised,
        "message_es": (
            f"el adaptador «{name}» dice que sus elementos pasan entre procesos, pero el de la "
            f"posición {where} o uno anterior no pudo ({raised}); lo anterior a ese grupo se "
            "guardó: quite picklable_items del adaptador e importe de nuevo"
        ),
        "message_en": (
            f"the adapter '{name}' says its items can pass between processes, but the one at "
            f"position {where} or one shortly before could not ({raised}); what came before "
            "that chunk is stored: take picklable_items off the adapter and import again"
        ),
    }
