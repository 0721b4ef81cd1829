"""The import engine behind ``puente import``: an adapter's items in, records stored, the rest
written back in the original format with the reasons.

The adapter decodes the file as a stream; good items are pushed in batches to a
:class:`RecordSink` — :class:`~exchange.import_sinks.DirectSink` (the hub's own push service on
its database, for an administrator) or :class:`~exchange.import_sinks.ApiSink`
(``POST /v1/records/bulk`` with the agency's token). Every
item that was not stored — the adapter's problems, the hub's refusals, and what could not be
sent because the hub went away — goes to the rejects file, written by the adapter itself
(:class:`adapters.base.RejectsWriter`) so the office opens it in the tool it already uses,
fixes those rows and sends the file again.

Resending never duplicates. A bulk line whose body equals the record's latest version is
answered ``unchanged`` by the hub and stores nothing, so a whole file sent twice adds no
version. With ``--batch 1`` each record is pushed alone under an ``Idempotency-Key`` derived
from the agency, the local id and the SHA-256 of the canonical body (:func:`idempotency_key`):
within ``IDEMPOTENCY_KEY_HOURS`` the hub replays its first answer even if the record changed
since, so an old file sent again cannot bring back an old version.

Memory stays bounded: one batch of items is held at a time, and the rejects are written as
they are found (the engine is the generator the adapter's ``write_rejects`` consumes).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import IO, Any, Protocol

from adapters.base import Adapter, Item, Problem, RejectsWriter, problems_as_json
from exchange.batch_collections import batch_collections, collect_young
from exchange.hub_client import HubError

#: Tries of one batch against a hub that answers 5xx, 429 or not at all; then the rest of the
#: file is written to the rejects file as not sent.
SEND_ATTEMPTS = 5
#: A batch of good items is sent when it is full, or when this many items (good and bad) wait.
WINDOW_FACTOR = 4
#: Distinct warnings counted (an export where every case has fields of its own stays small).
MAX_WARNING_KINDS = 50


def idempotency_key(agency_id: str, local_id: str, body_sha256: str) -> str:
    """The ``Idempotency-Key`` of one record: the same agency, local id and content always
    give the same key, and anything else a different one."""
    material = json.dumps([agency_id, local_id, body_sha256], ensure_ascii=True)
    return "puente-import-" + hashlib.sha256(material.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What became of one pushed document."""

    status: str  # stored | unchanged | replayed | rejected
    problems: tuple[Problem, ...] = ()


class RecordSink(Protocol):
    """Where good documents go: one outcome per document, in order. Raises
    :class:`~exchange.hub_client.HubError` when the batch could not be sent at all."""

    def push(self, documents: list[Mapping[str, Any]]) -> list[Outcome]: ...


@dataclass
class ImportSummary:
    """The counts ``puente import`` prints (and ``--json`` gives as one object)."""

    adapter: str
    file: str
    agency: str
    mode: str
    read: int = 0
    stored: int = 0
    unchanged: int = 0
    replayed: int = 0
    rejected_by_adapter: int = 0
    rejected_by_hub: int = 0
    not_sent: int = 0
    seconds: float = 0.0
    rejects_file: str | None = None
    stopped: str | None = None
    #: Items imported with warnings (what the adapter left out), and how often each pointer
    #: (``field:nationality_other``) was left out.
    warned: int = 0
    warnings: Counter[str] = field(default_factory=Counter)

    def warn(self, item: Item) -> None:
        found = getattr(item, "warnings", ())
        if not found:
            return
        self.warned += 1
        for warning in found:
            if warning.pointer in self.warnings or len(self.warnings) < MAX_WARNING_KINDS:
                self.warnings[warning.pointer] += 1

    @property
    def rejected(self) -> int:
        return self.rejected_by_adapter + self.rejected_by_hub + self.not_sent

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def count(self, outcome: Outcome) -> None:
        if outcome.status == "rejected":
            self.rejected_by_hub += 1
        else:
            setattr(self, outcome.status, getattr(self, outcome.status) + 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "file": self.file,
            "agency": self.agency,
            "mode": self.mode,
            "read": self.read,
            "stored": self.stored,
            "unchanged": self.unchanged,
            "replayed": self.replayed,
            "rejected": self.rejected,
            "rejected_by_adapter": self.rejected_by_adapter,
            "rejected_by_hub": self.rejected_by_hub,
            "not_sent": self.not_sent,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rate, 1),
            "rejects_file": self.rejects_file,
            "stopped": self.stopped,
            "warned": self.warned,
            "warnings": dict(self.warnings.most_common()),
        }

    def lines(self, lang: str) -> list[str]:
        """The summary in Spanish and in English, ``lang`` first."""
        spanish = (
            f"Importación: leídos {self.read}, guardados {self.stored}, sin cambios "
            f"{self.unchanged + self.replayed}, rechazados {self.rejected} (adaptador "
            f"{self.rejected_by_adapter}, nodo {self.rejected_by_hub}, no enviados "
            f"{self.not_sent}); {self.rate:,.0f} registros/s en {self.seconds:.1f} s."
        )
        english = (
            f"Import: read {self.read}, stored {self.stored}, unchanged "
            f"{self.unchanged + self.replayed}, rejected {self.rejected} (adapter "
            f"{self.rejected_by_adapter}, hub {self.rejected_by_hub}, not sent {self.not_sent}); "
            f"{self.rate:,.0f} records/s in {self.seconds:.1f} s."
        )
        both = [spanish, english] if lang == "es" else [english, spanish]
        if self.rejects_file:
            both.append(f"Rechazos / rejects: {self.rejects_file}")
        if self.warned:
            left_out = ", ".join(f"{pointer} ({n})" for pointer, n in self.warnings.most_common(10))
            both.append(
                f"Importados con avisos / imported with warnings: {self.warned} — "
                f"se omitió / left out: {left_out}"
            )
        if self.stopped:
            both.append(f"Detenido / stopped: {self.stopped}")
        return both


# -- the engine --------------------------------------------------------------------------------


def pushed_and_rejected(
    items: Iterable[Item],
    sink: RecordSink,
    summary: ImportSummary,
    *,
    batch: int,
    progress: Callable[[ImportSummary], None] = lambda _summary: None,
) -> Iterator[Item]:
    """Push the good items in batches of ``batch``; yield every item that was not stored,
    in input order, with the hub's reasons added to the adapter's.

    Once the hub cannot be reached (after :data:`SEND_ATTEMPTS`), the rest of the input is
    still read and yielded as not sent, so the rejects file holds everything not stored.
    """
    window: list[Item] = []
    good = 0
    with batch_collections():
        for item in items:
            summary.read += 1
            window.append(item)
            good += item.ok
            if good >= batch or len(window) >= WINDOW_FACTOR * batch:
                yield from _send(window, sink, summary)
                progress(summary)
                window, good = [], 0
                collect_young()
        yield from _send(window, sink, summary)
        progress(summary)


def _send(window: list[Item], sink: RecordSink, summary: ImportSummary) -> Iterator[Item]:
    good = [item for item in window if item.ok]
    outcomes: Iterator[Outcome] = iter(())
    if good and summary.stopped is None:
        try:
            outcomes = iter(_with_retries(sink, [item.document for item in good]))  # type: ignore[misc]
        except HubError as error:
            summary.stopped = f"{error.message_es} / {error.message_en}"
    for item in window:
        if not item.ok:
            summary.rejected_by_adapter += 1
            yield item
            continue
        outcome = next(outcomes, None)
        if outcome is None:
            summary.not_sent += 1
            yield replace(item, problems=(_not_sent(summary.stopped),))
            continue
        summary.count(outcome)
        if outcome.status != "rejected":
            summary.warn(item)
        else:
            yield replace(item, problems=item.problems + outcome.problems)


def _with_retries(sink: RecordSink, documents: list[Mapping[str, Any]]) -> list[Outcome]:
    for attempt in range(SEND_ATTEMPTS):
        try:
            outcomes = sink.push(documents)
        except HubError as error:
            if not error.transient or attempt == SEND_ATTEMPTS - 1:
                raise
            # Sending a batch again is safe: what was stored answers "unchanged".
            time.sleep(min(30.0, 0.5 * 2**attempt))
            continue
        if len(outcomes) != len(documents):
            raise HubError(
                f"el nodo respondió {len(outcomes)} resultados a {len(documents)} registros",
                f"the hub answered {len(outcomes)} results to {len(documents)} records",
            )
        return outcomes
    raise AssertionError("unreachable")


def _not_sent(reason: str | None) -> Problem:
    return Problem(
        "",
        f"no se envió: {reason or 'el nodo no respondió'}; envíe este archivo de nuevo",
        f"not sent: {reason or 'the hub did not answer'}; send this file again",
    )


def write_rejects(adapter: Adapter, rejected: Iterable[Item], out: IO[bytes]) -> None:
    """The adapter writes its own rejects format; an installed adapter that cannot gets NDJSON
    lines ``{"position", "source", "errors"}``."""
    if isinstance(adapter, RejectsWriter):
        adapter.write_rejects(rejected, out)
        return
    for item in rejected:
        try:
            source = json.loads(json.dumps(item.source))
        except (TypeError, ValueError):
            source = repr(item.source)
        line = {
            "position": item.position,
            "source": source,
            "errors": problems_as_json(item.problems),
        }
        out.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
