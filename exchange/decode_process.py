"""An adapter's decoding in a second process, alongside the import that stores its items.

Reading a spreadsheet row, mapping it and checking it costs about a third of a direct
``puente import``'s CPU, and the hub's writes cost the rest. Both can run at once on a
machine with two cores: a child process decodes the file and hands its items over in
chunks, while this process stores the batch before. The order of the items, their
positions, the rejects file and the summary are the same as when one process does both.

Only adapters that say their items can be handed over do this (``picklable_items = True``,
as every built-in adapter does): an installed adapter may carry anything in an item's
``source``. The child is forked (the adapter and the open file come with it, nothing is
pickled but the items), on Linux only (elsewhere the adapter decodes in this process as
before). It is forked before the hub's database is opened, so it holds no connection.

The items travel through a pipe whose only write end the child holds, and whose read end only
this process holds. So a child that dies, even in the middle of a chunk, ends the reading
(end of file) instead of leaving it waiting; and a child whose importing process died (killed,
out of memory) stops at its next write (broken pipe) instead of waiting for ever. A thread of
this process reads the pipe into a queue of :data:`CHUNKS_AHEAD` chunks of :data:`CHUNK_ITEMS`
items: memory stays bounded, the child blocks while that queue is full, and it decodes the next
batch while this process stores the one before.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import queue as queues
import signal
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

from adapters.base import Adapter, Item

#: Items handed over at once (fewer messages; each chunk is pickled once).
CHUNK_ITEMS = 100
#: Chunks that may wait between the processes: about two batches of the default 500, so the
#: child decodes the next batch while this process stores the one before.
CHUNKS_AHEAD = 12
#: The first byte of each message: a chunk of items, or the end.
ITEMS, END = b"I", b"E"

#: What a decoding ends with: the adapter's failure (see ``exchange.importer.guarded``) or None.
Failure = dict[str, str] | None


def in_a_second_process(adapter: Adapter) -> bool:
    """Whether ``adapter`` decodes in a child process here."""
    return bool(getattr(adapter, "picklable_items", False)) and sys.platform.startswith("linux")


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
        self._process: Any = None
        self._inbox: queues.Queue[bytes | None] = queues.Queue(maxsize=CHUNKS_AHEAD)
        self._stopping = threading.Event()
        self._receiver: threading.Thread | None = None
        self._handed_offset: int | None = None

    def __enter__(self) -> Decoding:
        if in_a_second_process(self.adapter):
            context = multiprocessing.get_context("fork")
            # Out of the collector's reach from now on: its scans write to every object they
            # visit, and each page written is copied for one of the two processes, which
            # would no longer share it (a third more memory for the child).
            gc.freeze()
            reader, writer = context.Pipe(duplex=False)
            self._process = context.Process(
                target=_decode_and_hand_over,
                args=(self.adapter, self.stream, reader, writer),
                name=f"puente-decode-{self.adapter.name}",
                daemon=True,
            )
            self._process.start()
            self._handed_offset = 0  # nothing given out yet, however far the child reads
            writer.close()  # the child's is the only write end now
            self._receiver = threading.Thread(
                target=self._receive, args=(reader,), name="puente-decode-receiver", daemon=True
            )
            self._receiver.start()
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        self._stopping.set()
        if process.is_alive():
            # The import stopped before the end of the file: nothing more is wanted.
            process.terminate()
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        if self._receiver is not None:
            self._receiver.join(timeout=5)

    def _receive(self, reader: Any) -> None:
        """The receiving thread: the child's messages into the inbox, then None at the end of
        the pipe (the child ended, perhaps in the middle of a message)."""
        try:
            while True:
                try:
                    message: bytes | None = reader.recv_bytes()
                except (EOFError, OSError):
                    message = None
                while not self._stopping.is_set():
                    try:
                        self._inbox.put(message, timeout=0.1)
                        break
                    except queues.Full:
                        continue
                if message is None or message[:1] == END or self._stopping.is_set():
                    return
        finally:
            reader.close()

    def __iter__(self) -> Iterator[Item]:
        if self._process is None:
            return self._in_this_process()
        return self._handed_over()

    def bytes_read(self) -> int:
        """How far into the file the items given out so far reach, in bytes: what a progress
        bar shows. (The decoding process reads ahead; the file's offset says how far.)"""
        if self._handed_offset is not None:
            return self._handed_offset
        return _offset(getattr(self.stream, "raw", self.stream)) or 0

    def _in_this_process(self) -> Iterator[Item]:
        from exchange.importer import guarded

        holder = _FailureHolder()
        yield from guarded(lambda: self.adapter.decode(self.stream), self.adapter.name, holder)
        self.failure = holder.adapter_failure

    def _handed_over(self) -> Iterator[Item]:
        while True:
            message = self._inbox.get()
            if message is None:
                self._stopped_unexpectedly()
                return
            try:
                # From the child this process forked, through its own pipe: not outside input.
                payload, state, offset = pickle.loads(message[1:])  # noqa: S301
                if state is not None:
                    self.adapter.adopt_decoding_state(state)  # type: ignore[attr-defined]
            except Exception as error:  # noqa: BLE001 (an installed adapter's item or state)
                self.failure = _not_handed_over(self.adapter.name, None, error)
                return
            if message[:1] == ITEMS:
                yield from payload
                self._handed_offset = offset
            else:
                self.failure = payload
                return

    def _stopped_unexpectedly(self) -> None:
        process = self._process
        process.join(timeout=5)  # the pipe's end came with its death, or just before it
        code = process.exitcode
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


def _decode_and_hand_over(adapter: Adapter, stream: IO[bytes], reader: Any, writer: Any) -> None:
    """The child: decode, and send ``ITEMS + pickle((items, state, offset))`` chunks, then
    one ``END + pickle((failure, state, offset))`` (``state``: the adapter's
    ``decoding_state()`` or None; ``offset``: how far into the file the items reach)."""
    from exchange.importer import guarded

    reader.close()  # so that the pipe breaks if the importing process dies
    # Ctrl-C reaches the whole process group: the importing process decides, and stops this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()  # what came with the fork stays shared with the parent, unscanned
    holder = _FailureHolder()
    chunk: list[Item] = []
    failure: Failure = None
    try:
        try:
            for item in guarded(lambda: adapter.decode(stream), adapter.name, holder):
                chunk.append(item)
                if len(chunk) >= CHUNK_ITEMS:
                    _send(writer, ITEMS, chunk, adapter, stream)
                    chunk = []
            if chunk:
                _send(writer, ITEMS, chunk, adapter, stream)
        except _NotHandedOver as stopped:
            failure = stopped.failure
        # What the adapter raised comes first: a chunk that could not pass after it is a
        # consequence.
        failure = holder.adapter_failure or failure
        try:
            _send(writer, END, failure, adapter)
        except _NotHandedOver as stopped:
            _send(writer, END, failure or stopped.failure, None)
    except BrokenPipeError:
        return  # the importing process is gone: nobody wants the rest
    finally:
        writer.close()


class _NotHandedOver(Exception):
    def __init__(self, failure: dict[str, str]) -> None:
        super().__init__(failure["exception"])
        self.failure = failure


def _offset(stream: Any) -> int | None:
    """Where ``stream`` is (None for a stream that cannot tell, such as a pipe)."""
    try:
        return int(stream.tell())
    except (OSError, ValueError, AttributeError):
        return None


def _send(
    writer: Any, kind: bytes, payload: Any, adapter: Adapter | None, stream: Any = None
) -> None:
    """One message; :class:`_NotHandedOver` when it cannot be made (the adapter's state or an
    item cannot be pickled)."""
    try:
        state = getattr(adapter, "decoding_state", None)
        message = kind + pickle.dumps(
            (payload, state() if state is not None else None, _offset(stream)),
            pickle.HIGHEST_PROTOCOL,
        )
    except Exception as error:  # an item's source, or the adapter's state, may be anything
        last = payload[-1] if kind == ITEMS and payload else None
        raise _NotHandedOver(
            _not_handed_over(getattr(adapter, "name", "?"), last, error)
        ) from error
    writer.send_bytes(message)


def _not_handed_over(name: str, last: Item | None, error: Exception) -> dict[str, str]:
    raised = f"{type(error).__name__}: {error}"
    where_es = f" (hasta la posición {last.position})" if last is not None else ""
    where_en = f" (up to position {last.position})" if last is not None else ""
    return {
        "position": last.position if last is not None else "",
        "exception": raised,
        "message_es": (
            f"el adaptador «{name}» dice que sus elementos pasan entre procesos "
            f"(picklable_items), pero no pudo entregar un grupo de ellos{where_es} al proceso "
            f"que importa ({raised}); lo anterior se guardó o está en el archivo de rechazos: "
            "quite picklable_items del adaptador e importe de nuevo (nada se duplica)"
        ),
        "message_en": (
            f"the adapter '{name}' says its items can pass between processes (picklable_items), "
            f"but a group of them{where_en} could not be handed to the importing process "
            f"({raised}); what came before is stored or in the rejects file: take "
            "picklable_items off the adapter and import again (nothing is stored twice)"
        ),
    }
