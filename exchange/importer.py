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

Resending never duplicates. A bulk line whose body equals any version of its record stored
before the request is answered ``unchanged`` by the hub and stores nothing, so a whole file sent
twice adds no version and brings no older one back. A line equal to an *earlier* version than
the record's latest also names it (``older_version``): the summary counts such items apart and
names them (:meth:`ImportSummary.older`), since what the office's file says was not applied.
With ``--batch 1`` each record is pushed alone (a single push, compared with the latest version
only: it may set a record back to an earlier state — the way to apply such items on purpose)
under an ``Idempotency-Key`` derived from the agency, the local id and the SHA-256 of the
canonical body (:func:`idempotency_key`): within ``IDEMPOTENCY_KEY_HOURS`` the hub replays its
first answer to the same content, even if the record changed since.

One local id names one child. Items of the file sharing a local id (their documents', which
the hub stores the record under, whatever the adapter's ``Item.local_id`` says) are versions
of one record, unless they describe different children (another name, sex or date of birth,
weighed as child search weighs them: :mod:`exchange.import_siblings`): then the later ones are
rejected, not stored as versions of the first, and the first is never taken for an older
version of them. Only a short identity fingerprint is kept per local id of the file.

Memory stays bounded: one batch of items is held at a time, and the rejects wait in a
temporary file until the input ends (the engine is the generator the adapter's
``write_rejects`` consumes). Then a rejected item whose record a later item of the file stored
is left out: it is an older version, which sent again would become the record's latest
(:func:`without_superseded`; only the rejected items' local ids are remembered meanwhile).

What a person must read reaches the summary, each with its position in the input: problems
of the file as a whole (:class:`~adapters.base.FileProblem`: not records, never counted as
read), actions and warnings of imported items (:class:`~adapters.items.WarnedItem`), rejected
items, and an adapter that raised (:func:`guarded`: what came before is stored and its
rejects written; the exception is reported, not raised). So are the records stored as a new
version without parts the version they replaced had (:attr:`Outcome.lost`: a Patient sent
without its Encounters), where the sink can tell.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import IO, Any, Protocol

from adapters.base import (
    Adapter,
    FileProblem,
    Item,
    Problem,
    RejectsWriter,
    contract_breach,
    problems_as_json,
)
from exchange.batch_collections import batch_collections, collect_young
from exchange.hub_client import HubError
from exchange.import_siblings import LocalIdChildren, labelled_alike, local_id_of

#: How long, in all, one batch is sent again to a hub that answers 5xx, 429 or not at all —
#: a restart or a deploy (gunicorn took about 8 s to come back) — before the rest of the file
#: is written to the rejects file as not sent (:class:`Patience`).
RETRY_SECONDS = 120.0
#: The wait after the first failed try, doubled after each one up to the longest.
FIRST_WAIT = 0.5
LONGEST_WAIT = 15.0
#: Tries of one batch at most, whatever the clock says (the waits reach RETRY_SECONDS first).
SEND_ATTEMPTS = 30
#: A batch of good items is sent when it is full, or when this many items (good and bad) wait.
WINDOW_FACTOR = 4
#: Distinct warnings counted (an export where every case has fields of its own stays small).
MAX_WARNING_KINDS = 50
#: Seconds below which the summary says "< 0.1 s" (its one decimal would say 0.0 s).
SHORTEST_TIMED = 0.1


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
    #: For a new version of a record already on the hub: the parts (pointer templates,
    #: ``/placements/*``) the version it replaced had and it lacks, as the hub answers them
    #: (:mod:`exchange.lost_parts`).
    lost: tuple[str, ...] = ()
    #: The record's version the hub answered: the one stored, or for ``unchanged`` its latest.
    version: int | None = None
    #: For ``unchanged``: the earlier version (not the latest) the document equals, as the hub
    #: answers it — the document was not applied, the record keeps ``version``.
    older_version: int | None = None
    #: The hub's warnings about a stored document (``warnings`` of its answer: its CURP names
    #: a child it clearly is not, so it was linked apart; its CURP contradicts it), counted
    #: and listed with the adapter's warnings.
    warnings: tuple[Problem, ...] = ()


class RecordSink(Protocol):
    """Where good documents go: one outcome per document, in order. Raises
    :class:`~exchange.hub_client.HubError` when the batch could not be sent at all."""

    def push(self, documents: list[Mapping[str, Any]]) -> list[Outcome]: ...


#: Items listed one by one in the summary (``--json``): actions, warnings, rejects, each.
MAX_LISTED = 1000
#: Of those, how many the terminal shows (the rest: ``--json``, and the rejects file).
MAX_SHOWN = 10


def _listed(item: Item, problem: Problem) -> dict[str, Any]:
    return {"position": item.position, "local_id": item.local_id, **problem.to_json()}


@dataclass
class ImportSummary:
    """The counts ``puente import`` prints (and ``--json`` gives as one object), and what a
    person must read item by item: problems of the whole file, actions to take in Puente,
    warnings, rejects — each with its position in the input."""

    adapter: str
    file: str
    agency: str
    mode: str
    read: int = 0
    stored: int = 0
    unchanged: int = 0
    replayed: int = 0
    #: Items equal to an earlier version of their record than its latest: not applied (a file
    #: sent again never brings an older version back), and named (``older_version_items``).
    older_versions: int = 0
    older_version_items: list[dict[str, Any]] = field(default_factory=list)
    rejected_by_adapter: int = 0
    rejected_by_hub: int = 0
    #: The hub refused records for want of the agency's signature (run again with --key).
    unsigned: bool = False
    not_sent: int = 0
    seconds: float = 0.0
    rejects_file: str | None = None
    stopped: str | None = None
    #: Items imported with warnings (what the adapter left out), and how often each pointer
    #: (``field:nationality_other``) was left out.
    warned: int = 0
    warnings: Counter[str] = field(default_factory=Counter)
    warning_items: list[dict[str, Any]] = field(default_factory=list)
    warning_total: int = 0
    #: What the office must do in Puente for items that were imported (record a refusal).
    actions: int = 0
    action_items: list[dict[str, Any]] = field(default_factory=list)
    action_total: int = 0
    #: Problems of the file as a whole (:class:`~adapters.base.FileProblem`): not records.
    file_problems: list[dict[str, Any]] = field(default_factory=list)
    rejected_items: list[dict[str, Any]] = field(default_factory=list)
    #: The adapter raised instead of yielding an item: where it was and what it said.
    adapter_failure: dict[str, str] | None = None
    #: Why the hub stopped answering, in Spanish and English (``stopped`` says both).
    stop_reasons: tuple[str, str] | None = None
    #: Rejected items a later item of the file with the same local id stored: older versions,
    #: left out of the rejects file (sent again, they would become the record's latest).
    superseded: int = 0
    superseded_items: list[dict[str, Any]] = field(default_factory=list)
    #: Off once the rejects can no longer wait for the end of the input (see write_rejects).
    superseding: bool = True
    #: Local id → (position, "adapter" | "hub", known by the adapter's local id only) of each
    #: rejected item, until a later item of the same record is stored. Only rejected items
    #: are kept here: few, and small.
    _rejected_ids: dict[str, list[tuple[str, str, bool]]] = field(default_factory=dict, repr=False)
    _superseded_positions: set[str] = field(default_factory=set, repr=False)
    #: Items rejected for describing another child than an earlier item of their local id
    #: (counted with the adapter's rejects: the file's own fault).
    other_children: int = 0
    #: Items the hub refused as records another agency referred or transferred to this one
    #: (counted with the hub's rejects): the agency reads them in Puente, they are not its own.
    received_copies: int = 0
    #: Records stored as a new version without parts their previous version had (a Patient
    #: sent without its Encounters, a sheet without the relatives' columns): how many, how
    #: many records lost each part, and each record with its parts.
    lost_parts_records: int = 0
    lost_parts: Counter[str] = field(default_factory=Counter)
    lost_parts_items: list[dict[str, Any]] = field(default_factory=list)
    children: LocalIdChildren = field(default_factory=lambda: LocalIdChildren(), repr=False)

    def warn(self, item: Item, hub: tuple[Problem, ...] = ()) -> None:
        """Count and list the warnings of an imported item: the adapter's, and the hub's
        (``hub``, :attr:`Outcome.warnings`)."""
        found = (*getattr(item, "warnings", ()), *hub)
        if found:
            self.warned += 1
        self.warning_total += len(found)
        for warning in found:
            if warning.pointer in self.warnings or len(self.warnings) < MAX_WARNING_KINDS:
                self.warnings[warning.pointer] += 1
            if len(self.warning_items) < MAX_LISTED:
                self.warning_items.append(_listed(item, warning))
        actions = getattr(item, "actions", ())
        if actions:
            self.actions += 1
        self.action_total += len(actions)
        for action in actions:
            if len(self.action_items) < MAX_LISTED:
                self.action_items.append(_listed(item, action))

    def lost(self, item: Item, parts: tuple[str, ...]) -> None:
        """``item`` was stored as a new version of its record without ``parts``, which the
        version it replaced had."""
        self.lost_parts_records += 1
        for part in parts:
            if part in self.lost_parts or len(self.lost_parts) < MAX_WARNING_KINDS:
                self.lost_parts[part] += 1
        if len(self.lost_parts_items) < MAX_LISTED:
            named = ", ".join(parts)
            self.lost_parts_items.append(
                {
                    "position": item.position,
                    "local_id": item.local_id,
                    "parts": list(parts),
                    "message_es": (
                        f"guardado como nueva versión sin partes que tenía la anterior: {named}"
                    ),
                    "message_en": (
                        f"stored as a new version without parts the previous one had: {named}"
                    ),
                }
            )

    def older(self, item: Item, older_version: int, latest: int | None) -> None:
        """``item`` equals version ``older_version`` of its record, whose latest is
        ``latest``: the hub kept the newer one and did not apply the item."""
        self.older_versions += 1
        if len(self.older_version_items) < MAX_LISTED:
            holds_es = f"; el nodo tiene la versión {latest}" if latest else ""
            holds_en = f"; the hub holds version {latest}" if latest else ""
            self.older_version_items.append(
                {
                    "position": item.position,
                    "local_id": item.local_id,
                    "older_version": older_version,
                    "version": latest,
                    "message_es": f"igual a la versión {older_version}{holds_es}",
                    "message_en": f"equal to version {older_version}{holds_en}",
                }
            )

    def reject(self, item: Item) -> None:
        if len(self.rejected_items) < MAX_LISTED:
            self.rejected_items.append(
                {
                    "position": item.position,
                    "local_id": item.local_id,
                    "errors": problems_as_json(item.problems),
                }
            )

    def rejected_for_now(self, item: Item, by: str) -> None:
        """``item`` was rejected (``by`` the adapter or the hub), unless a later item of its
        record is stored (:meth:`stored_now`)."""
        local_id = local_id_of(item)
        if self.superseding and local_id is not None:
            entry = (item.position, by, item.document is None)
            self._rejected_ids.setdefault(local_id, []).append(entry)

    def stored_now(self, item: Item) -> None:
        """``item`` was stored (or was already there): rejected items of its record earlier
        in the file are older versions of it, superseded. The record is the one the hub
        stored, named by the document's local id (:func:`local_id_of`); a rejected item with
        no document, known only by the adapter's local id, is of it only if this item's
        adapter local id is its document's too (:func:`labelled_alike`) — else the adapter's
        local ids are labels of its own, and that one may name another record."""
        local_id = local_id_of(item)
        if local_id is None:
            return
        earlier = self._rejected_ids.pop(local_id, [])
        if earlier and not labelled_alike(item):
            kept = [entry for entry in earlier if entry[2]]
            earlier = [entry for entry in earlier if not entry[2]]
            if kept:
                self._rejected_ids[local_id] = kept
        for position, by, _by_label in earlier if self.superseding else ():
            if by == "adapter":
                self.rejected_by_adapter -= 1
            else:
                self.rejected_by_hub -= 1
            self.superseded += 1
            self._superseded_positions.add(position)
            self.rejected_items = [e for e in self.rejected_items if e["position"] != position]
            if len(self.superseded_items) < MAX_LISTED:
                self.superseded_items.append(_superseded(position, local_id, item.position))

    def is_superseded(self, item: Item) -> bool:
        return not isinstance(item, FileProblem) and item.position in self._superseded_positions

    def file_problem(self, item: Item) -> None:
        for problem in item.problems:
            if len(self.file_problems) < MAX_LISTED:
                self.file_problems.append({"position": item.position, **problem.to_json()})

    @property
    def rejected(self) -> int:
        return self.rejected_by_adapter + self.rejected_by_hub + self.not_sent

    @property
    def unreadable(self) -> bool:
        """The adapter could not read a single record of the file: nothing to import."""
        return self.read == 0 and bool(self.file_problems or self.adapter_failure)

    @property
    def empty(self) -> bool:
        """The file was read and holds no records at all."""
        return self.read == 0 and not self.file_problems and not self.adapter_failure

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def count(self, outcome: Outcome) -> None:
        if outcome.status == "rejected":
            self.rejected_by_hub += 1
            if any(_is_received_copy(problem) for problem in outcome.problems):
                self.received_copies += 1
            # A spreadsheet has no signature to fix: the office must sign with the agency's key.
            if any(problem.pointer == "/signature" for problem in outcome.problems):
                self.unsigned = True
        elif outcome.older_version is None:  # one equal to an older version: older()
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
            "older_versions": self.older_versions,
            "rejected": self.rejected,
            "rejected_by_adapter": self.rejected_by_adapter,
            "rejected_by_hub": self.rejected_by_hub,
            "needs_signing_key": self.unsigned,
            "not_sent": self.not_sent,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rate, 1),
            "rejects_file": self.rejects_file,
            "stopped": self.stopped,
            "empty": self.empty,
            "file_problems": self.file_problems,
            "adapter_failure": self.adapter_failure,
            "actions": self.actions,
            "action_items": self.action_items,
            "warned": self.warned,
            "warnings": dict(self.warnings.most_common()),
            "warning_items": self.warning_items,
            "rejected_items": self.rejected_items,
            "superseded": self.superseded,
            "superseded_items": self.superseded_items,
            "other_children": self.other_children,
            "received_copies": self.received_copies,
            "lost_parts_records": self.lost_parts_records,
            "lost_parts": dict(self.lost_parts.most_common()),
            "lost_parts_items": self.lost_parts_items,
            "older_version_items": self.older_version_items,
        }

    def _lost_parts_warning(self) -> tuple[str, str]:
        """The records stored as a new version without parts their previous version had, the
        commonest parts, and how the office gets the earlier versions back (docs/adapters.md
        §2, §8): the hub keeps them, but gives back only the latest, so only the whole records
        sent again one by one make them the latest again."""
        n = self.lost_parts_records
        counted = ", ".join(f"{part} ({k})" for part, k in self.lost_parts.most_common(10))
        more = max(0, len(self.lost_parts) - 10)
        more_es = f" y {more} más (todas en lost_parts de --json)" if more else ""
        more_en = f" and {more} more (all in --json's lost_parts)" if more else ""
        return (
            f"Aviso: {n} {plural(n, 'expediente se guardó', 'expedientes se guardaron')} como "
            f"nueva versión sin partes que su versión anterior tenía: {counted}{more_es}. El "
            "archivo no las traía (una hoja lleva solo las columnas de su correspondencia, un "
            "caso de Primero solo los campos de Primero, un Patient FHIR solo los recursos "
            "enviados con él). No se borró nada: el nodo guarda la versión anterior, pero "
            "entrega solo la última; para que la anterior vuelva a serlo, importe de nuevo los "
            "expedientes completos (una exportación en NDJSON, JSON o FHIR hecha antes de esta "
            "importación, o un Bundle FHIR con los Encounter, RelatedPerson y EpisodeOfCare de "
            "cada Patient) con --batch 1: en lotes, un expediente igual a una versión anterior "
            "no se aplica y no devuelve nada",
            f"Warning: {n} {plural(n, 'record was', 'records were')} stored as a new version "
            f"without parts {plural(n, 'its', 'their')} previous version had: "
            f"{counted}{more_en}. The file did not carry them (a spreadsheet holds only its "
            "mapping's columns, a Primero case only Primero's fields, a FHIR Patient only the "
            "resources sent with it). Nothing was deleted: the hub keeps the earlier version, "
            "but gives back only the latest; to make the earlier one the latest again, import "
            "the whole records again (an export in NDJSON, JSON or FHIR made before this "
            "import, or a FHIR Bundle with each Patient's Encounters, RelatedPersons and "
            "EpisodeOfCare) with --batch 1: in batches, a record equal to an earlier version "
            "is not applied and puts nothing back",
        )

    def lines(self, lang: str) -> list[str]:
        """The summary in Spanish and in English, ``lang`` first."""

        def both(es: str, en: str) -> str:
            return f"{es} / {en}" if lang == "es" else f"{en} / {es}"

        def each(listed: list[dict[str, Any]], total: int) -> list[str]:
            shown = []
            for entry in listed[:MAX_SHOWN]:
                where = entry["position"] + (
                    f" ({entry['local_id']})" if entry.get("local_id") else ""
                )
                shown.append(
                    f"  {both('posición', 'position')} {where}: "
                    f"{both(entry['message_es'], entry['message_en'])}"
                )
            if total > len(shown):
                shown.append(
                    "  "
                    + both(
                        f"… y {total - len(shown)} más (--json da hasta {MAX_LISTED})",
                        f"… and {total - len(shown)} more (--json gives up to {MAX_LISTED})",
                    )
                )
            return shown

        older_es = older_en = ""
        if self.older_versions:
            older_es = f", iguales a una versión anterior (no aplicados) {self.older_versions}"
            older_en = f", equal to an older version (not applied) {self.older_versions}"
        # Not "in 0.0 s": a duration the summary's one decimal cannot show is said as such.
        took = f"< {SHORTEST_TIMED}" if self.seconds < SHORTEST_TIMED else f"{self.seconds:.1f}"
        took_es = f"{self.rate:,.0f} registros/s en {took} s"
        took_en = f"{self.rate:,.0f} records/s in {took} s"
        spanish = (
            f"Importación: leídos {self.read}, guardados {self.stored}, sin cambios "
            f"{self.unchanged + self.replayed}{older_es}, rechazados {self.rejected} (adaptador "
            f"{self.rejected_by_adapter}, nodo {self.rejected_by_hub}, no enviados "
            f"{self.not_sent}); {took_es}."
        )
        english = (
            f"Import: read {self.read}, stored {self.stored}, unchanged "
            f"{self.unchanged + self.replayed}{older_en}, rejected {self.rejected} (adapter "
            f"{self.rejected_by_adapter}, hub {self.rejected_by_hub}, not sent {self.not_sent}); "
            f"{took_en}."
        )
        lines = [spanish, english] if lang == "es" else [english, spanish]
        if self.file_problems:
            lines.append(
                both(
                    "No se pudo leer el archivo; nada se importó"
                    if self.unreadable
                    else "Problemas del archivo",
                    "The file could not be read; nothing was imported"
                    if self.unreadable
                    else "Problems with the file",
                )
                + ":"
            )
            lines.extend(each(self.file_problems, len(self.file_problems)))
        if self.adapter_failure:
            failure = self.adapter_failure
            lines.append(both(failure["message_es"], failure["message_en"]))
        if self.empty:
            lines.append(
                both(
                    "el archivo no tiene ningún registro: nada que importar",
                    "the file holds no records: nothing to import",
                )
            )
        if self.rejects_file:
            lines.append(f"Rechazos / rejects: {self.rejects_file}")
        if self.other_children:
            lines.append(
                both(
                    f"Con el id local de una fila anterior pero otra niña, niño o adolescente: "
                    f"{self.other_children} (rechazados; dé a cada uno su propio id local)",
                    f"With the local id of an earlier row but another child: "
                    f"{self.other_children} (rejected; give each child its own local id)",
                )
            )
        if self.received_copies:
            lines.append(
                both(
                    f"Recibidos de otra institución, no importados como propios: "
                    f"{self.received_copies} (otra institución los tiene: se los remitió o "
                    "transfirió, o su institución los leyó con un consentimiento; los lee en "
                    "Puente mientras pueda, y sus propios expedientes llevan sus propios ids "
                    "locales)",
                    f"Received from another agency, not imported as its own: "
                    f"{self.received_copies} (another agency holds them: it referred or "
                    "transferred them to your agency, or your agency read them under a consent; "
                    "your agency reads them in Puente while it may, and its own records carry "
                    "its own local ids)",
                )
            )
        if self.superseded:
            lines.append(
                both(
                    f"Versiones anteriores, fuera del archivo de rechazos: {self.superseded}",
                    f"Older versions, left out of the rejects file: {self.superseded}",
                )
                + ":"
            )
            lines.extend(each(self.superseded_items, self.superseded))
        if self.older_versions:
            lines.append(both(*older_versions_warning(self.older_versions)) + ":")
            lines.extend(each(self.older_version_items, self.older_versions))
        if self.lost_parts_records:
            lines.append(both(*self._lost_parts_warning()) + ":")
            lines.extend(each(self.lost_parts_items, self.lost_parts_records))
        if self.unsigned:
            lines.append(
                both(
                    "la institución debe firmar sus envíos: repita con --key y el archivo de "
                    "su llave privada (nada de la hoja hay que corregir por esto)",
                    "the agency must sign its pushes: run again with --key and its private "
                    "key file (nothing in the sheet needs fixing for this)",
                )
            )
        if self.actions:
            lines.append(
                both(
                    f"Acción necesaria en Puente para {self.actions} "
                    + plural(self.actions, "registro importado", "registros importados"),
                    f"Action needed in Puente for {self.actions} "
                    + plural(self.actions, "imported record", "imported records"),
                )
                + ":"
            )
            lines.extend(each(self.action_items, self.action_total))
        if self.warned:
            # By pointer (what was left out, mostly); each item's own line says what happened.
            counted = ", ".join(
                f"{pointer or both('fila', 'row')} ({n})"
                for pointer, n in self.warnings.most_common(10)
            )
            lines.append(
                f"{both('Importados con avisos', 'imported with warnings')}: {self.warned} — "
                f"{counted}"
            )
            lines.extend(each(self.warning_items, self.warning_total))
        if self.stopped:
            lines.append(f"Detenido / stopped: {self.stopped}")
        return lines

    def rejected_lines(self, lang: str) -> list[str]:
        """The first :data:`MAX_SHOWN` rows not stored, each with its position and its
        reasons in ``lang``; then how many more, and where they all are. ``puente import``
        prints them before :meth:`lines`, which end the report."""
        if not self.rejected_items:
            return []

        def both(es: str, en: str) -> str:
            return f"{es} / {en}" if lang == "es" else f"{en} / {es}"

        message = "message_es" if lang == "es" else "message_en"
        shown = self.rejected_items[:MAX_SHOWN]
        lines = [both("Rechazados", "Rejected") + ":"]
        for entry in shown:
            where = entry["position"] + (f" ({entry['local_id']})" if entry.get("local_id") else "")
            reasons = " | ".join(_with_pointer(error, error[message]) for error in entry["errors"])
            lines.append(f"  {both('posición', 'position')} {where}: {reasons}")
        more = self.rejected - len(shown)
        if more > 0:
            where = self.rejects_file or "--json"
            lines.append(
                "  "
                + both(
                    f"… y {more} más, vea {where}",
                    f"… and {more} more, see {where}",
                )
            )
        return lines


def plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def older_versions_warning(count: int) -> tuple[str, str]:
    """What the office reads, in Spanish and English, of ``count`` items equal to an earlier
    version of their record than its latest (not applied), and how to apply them on purpose:
    ``--batch 1`` pushes each alone, and a single push is compared with the latest version only
    — save that a single push of the same content within ``IDEMPOTENCY_KEY_HOURS`` is answered
    as the first was (:func:`idempotency_key`)."""
    records_es = plural(count, "expediente igual", "expedientes iguales")
    applied_es = plural(count, "no aplicado", "no aplicados")
    records_en = plural(count, "record", "records")
    return (
        f"Aviso: {count} {records_es} a una versión anterior, {applied_es}: el nodo tiene una "
        "más nueva y la conserva (un archivo enviado de nuevo nunca devuelve una versión "
        "anterior). Si lo que dice el archivo es lo correcto, impórtelo de nuevo con --batch 1: "
        "cada expediente se envía solo, y un envío individual sí vuelve un expediente a una "
        "versión anterior (salvo el mismo contenido ya enviado con --batch 1 en las últimas "
        "PUENTE_IDEMPOTENCY_KEY_HOURS horas, 24 por omisión, al que el nodo responde como la "
        "primera vez: cambie entonces algo en la fila, como una fecha de actualización)",
        f"Warning: {count} {records_en} equal to an older version, not applied: the hub holds a "
        "newer one and keeps it (a file sent again never brings an older version back). If what "
        "the file says is right, import it again with --batch 1: each record is pushed alone, "
        "and a single push does set a record back to an earlier version (except the same "
        "content already sent with --batch 1 within PUENTE_IDEMPOTENCY_KEY_HOURS, 24 by "
        "default, which the hub answers as it did the first time: then change something in "
        "the row, such as an update date)",
    )


def _with_pointer(error: Mapping[str, Any], message: str) -> str:
    """A reason after where it is, whatever form the place has (``/child/sex``,
    ``entry[5].resource:Encounter.class``, ``column:fecha``), unless the reason already
    names it (a column's reason names its column)."""
    pointer = str(error.get("pointer") or "")
    named = pointer.partition(":")[2] if pointer.startswith(("column:", "field:")) else pointer
    if not pointer or named in message:
        return message
    return f"{pointer}: {message}"


def _is_received_copy(problem: Problem) -> bool:
    """Whether the hub refused a record as one another agency referred or transferred to
    the importing agency (:data:`exchange.received_copies.RECEIVED_COPY`). Through the API with
    one language asked for, both halves of ``problem`` hold that language."""
    from exchange.received_copies import RECEIVED_COPY

    return any(text.startswith(RECEIVED_COPY) for text in (problem.es, problem.en))


# -- the engine --------------------------------------------------------------------------------


def pushed_and_rejected(
    items: Iterable[Item],
    sink: RecordSink,
    summary: ImportSummary,
    *,
    batch: int,
    progress: Callable[[ImportSummary], None] = lambda _summary: None,
    patience: Patience | None = None,
) -> Iterator[Item]:
    """Push the good items in batches of ``batch``; yield every item that was not stored,
    in input order, with the hub's reasons added to the adapter's.

    Once the hub cannot be reached (a batch sent again for ``patience``'s time, about
    :data:`RETRY_SECONDS`), the rest of the input is still read and yielded as not sent, so
    the rejects file holds everything not stored.
    """
    patience = patience or Patience()
    window: list[Item] = []
    good = 0
    with batch_collections(), contextlib.closing(summary.children):
        for item in items:
            if isinstance(item, FileProblem):
                # Not a record: said once, and given to the rejects writer in its place.
                summary.file_problem(item)
                yield item
                continue
            summary.read += 1
            window.append(item)
            good += item.ok
            if good >= batch or len(window) >= WINDOW_FACTOR * batch:
                yield from _send(window, sink, summary, patience)
                progress(summary)
                window, good = [], 0
                collect_young()
        yield from _send(window, sink, summary, patience)
        progress(summary)


def _send(
    window: list[Item], sink: RecordSink, summary: ImportSummary, patience: Patience
) -> Iterator[Item]:
    window, other_children = summary.children.checked(window)
    good = [item for item in window if item.ok]
    outcomes: Iterator[Outcome] = iter(())
    if good and summary.stopped is None:
        try:
            documents = [item.document for item in good]
            outcomes = iter(_with_retries(sink, documents, patience))  # type: ignore[arg-type]
        except HubError as error:
            summary.stopped = f"{error.message_es} / {error.message_en}"
            summary.stop_reasons = (error.message_es, error.message_en)
    for item in window:
        if not item.ok:
            summary.rejected_by_adapter += 1
            summary.reject(item)
            if item.position in other_children:
                # Another child's row: no later version of the first child supersedes it.
                summary.other_children += 1
            else:
                summary.rejected_for_now(item, "adapter")
            yield item
            continue
        outcome = next(outcomes, None)
        if outcome is None:
            summary.not_sent += 1
            unsent = replace(item, problems=(_not_sent(summary.stop_reasons),))
            summary.reject(unsent)
            yield unsent
            continue
        summary.count(outcome)
        if outcome.status != "rejected":
            summary.warn(item, outcome.warnings)
            # An item equal to an older version still supersedes the file's rejected earlier
            # items of its record: sent again, one of those would become the latest.
            summary.stored_now(item)
            if outcome.lost:
                summary.lost(item, outcome.lost)
            if outcome.older_version is not None:
                summary.older(item, outcome.older_version, outcome.version)
        else:
            refused = replace(item, problems=item.problems + outcome.problems)
            summary.reject(refused)
            summary.rejected_for_now(refused, "hub")
            yield refused


class FailureRecord(Protocol):
    """Where :func:`guarded` records an adapter that raised (an :class:`ImportSummary`)."""

    adapter_failure: dict[str, str] | None


def guarded(
    decode: Callable[[], Iterable[Item]], adapter_name: str, summary: FailureRecord
) -> Iterator[Item]:
    """The items of ``decode()`` (an adapter's decode) until it raises, or yields something
    that is no :class:`~adapters.base.Item` as that module describes
    (:func:`~adapters.base.contract_breach`: a dict, a document as JSON text, a number for a
    position); then the exception or the breach is recorded in ``summary`` with the last
    position reached, and the items simply end — so what was read before is still stored and
    its rejects written whole, and ``puente import`` prints no traceback. An item with
    neither a document nor problems is given a reason (:func:`_no_reason`)."""
    last: str | None = None
    try:
        iterator = iter(decode())
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            # A few isinstance calls a row, so that what the engine does with an item (its
            # position in a fingerprint, its document copied) never fails in Puente's code.
            breach = contract_breach(item)
            if breach is not None:
                summary.adapter_failure = _breach_failure(adapter_name, last, item, breach)
                return
            if item.document is None and not item.problems:
                item = replace(item, problems=(_no_reason(adapter_name),))
            elif type(item.problems) is not tuple:
                item = replace(item, problems=tuple(item.problems))
            last = item.position
            yield item
    except GeneratorExit:
        raise
    except Exception as error:  # noqa: BLE001 (an installed adapter may raise anything)
        summary.adapter_failure = _adapter_failure(adapter_name, last, error)


def _adapter_failure(name: str, last: str | None, error: Exception) -> dict[str, str]:
    raised = f"{type(error).__name__}: {error}"
    if last is None:
        where_es, where_en = "antes de la primera posición", "before its first position"
    else:
        where_es, where_en = f"después de la posición {last}", f"after position {last}"
    return {
        "position": last or "",
        "exception": raised,
        "message_es": (
            f"el adaptador «{name}» falló {where_es} ({raised}); lo anterior se guardó o está "
            "en el archivo de rechazos, lo posterior no se leyó: corrija el adaptador o el "
            "archivo e importe de nuevo (lo ya guardado no se duplica)"
        ),
        "message_en": (
            f"the adapter '{name}' failed {where_en} ({raised}); what came before is stored or "
            "in the rejects file, what came after was not read: fix the adapter or the file "
            "and import again (what is stored is not stored twice)"
        ),
    }


def _breach_failure(
    name: str, last: str | None, item: object, breach: tuple[str, str]
) -> dict[str, str]:
    """An adapter whose decode yielded something that is not an Item as adapters.base says:
    the adapter's fault, said with the position of the item when it has one."""
    position = getattr(item, "position", None) if isinstance(item, Item) else None
    if isinstance(position, str | int):
        where_es, where_en = f"en la posición {position}", f"at position {position}"
    elif last is None:
        where_es, where_en = "en su primer elemento", "at its first item"
    else:
        where_es = f"en el elemento que siguió a la posición {last}"
        where_en = f"at the item after position {last}"
    what_es, what_en = breach
    return {
        "position": str(position) if isinstance(position, str | int) else (last or ""),
        "exception": what_en,
        "message_es": (
            f"el adaptador «{name}» no cumple el contrato de adapters.base {where_es}: "
            f"{what_es}; lo anterior se guardó o está en el archivo de rechazos, lo posterior "
            "no se leyó: corrija el adaptador e importe de nuevo (lo ya guardado no se duplica)"
        ),
        "message_en": (
            f"the adapter '{name}' broke the adapters.base contract {where_en}: {what_en}; "
            "what came before is stored or in the rejects file, what came after was not "
            "read: fix the adapter and import again (what is stored is not stored twice)"
        ),
    }


def _no_reason(name: str) -> Problem:
    """The reason of an item the adapter gave neither a document nor a reason for."""
    return Problem(
        "",
        f"el adaptador «{name}» no dio un documento ni el motivo de no darlo para esta "
        "posición: corrija el adaptador o revise esta fila",
        f"the adapter '{name}' gave neither a document nor a reason for this position: fix "
        "the adapter or look at this row",
    )


@dataclass
class Patience:
    """How a batch is sent again while the hub answers 5xx, 429 or not at all: after a
    capped exponential wait (:data:`FIRST_WAIT` doubled up to :data:`LONGEST_WAIT`), each
    between half of it and all of it at random, so that importers a restart stopped together
    do not all come back at the same instant — for up to ``seconds`` after the first failure.
    Any other answer stops at once. ``waiting(es, en)`` is told before each wait, and once
    the hub answers again; ``sleep``, ``clock`` and ``jitter`` (0 to 1) are the real ones
    unless a test gives its own."""

    seconds: float = RETRY_SECONDS
    waiting: Callable[[str, str], None] = lambda _es, _en: None
    sleep: Callable[[float], None] = lambda seconds: time.sleep(seconds)
    clock: Callable[[], float] = lambda: time.monotonic()
    jitter: Callable[[], float] = random.random

    def wait(self, failures: int) -> float:
        longest = min(LONGEST_WAIT, FIRST_WAIT * 2.0 ** (failures - 1))
        return longest / 2 + self.jitter() * longest / 2


def _with_retries(
    sink: RecordSink, documents: list[Mapping[str, Any]], patience: Patience
) -> list[Outcome]:
    first_failure: float | None = None
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            outcomes = sink.push(documents)
        except HubError as error:
            if not error.transient or attempt == SEND_ATTEMPTS:
                raise
            now = patience.clock()
            first_failure = now if first_failure is None else first_failure
            wait = patience.wait(attempt)
            if now + wait - first_failure > patience.seconds:
                raise
            patience.waiting(*_waiting_for_the_hub(error, wait, attempt + 1, patience.seconds))
            # Sending a batch again is safe: what was stored answers "unchanged".
            patience.sleep(wait)
            continue
        if first_failure is not None:
            patience.waiting(
                "el nodo responde de nuevo: la importación sigue",
                "the hub answers again: the import goes on",
            )
        if len(outcomes) != len(documents):
            raise HubError(
                f"el nodo respondió {len(outcomes)} resultados a {len(documents)} registros",
                f"the hub answered {len(outcomes)} results to {len(documents)} records",
            )
        return outcomes
    raise AssertionError("unreachable")


def _waiting_for_the_hub(
    error: HubError, wait: float, attempt: int, seconds: float
) -> tuple[str, str]:
    return (
        f"esperando al nodo ({error.message_es}): el lote se envía de nuevo en {wait:.1f} s "
        f"(intento {attempt}; tras {seconds:.0f} s sin respuesta, lo que falta va al archivo "
        "de rechazos)",
        f"waiting for the hub ({error.message_en}): sending the batch again in {wait:.1f} s "
        f"(try {attempt}; after {seconds:.0f} s without an answer, the rest goes to the "
        "rejects file)",
    )


def _not_sent(reasons: tuple[str, str] | None) -> Problem:
    es, en = reasons or ("el nodo no respondió", "the hub did not answer")
    return Problem(
        "",
        f"no se envió: {es}; envíe este archivo de nuevo",
        f"not sent: {en}; send this file again",
    )


def _superseded(position: str, local_id: str | None, by: str) -> dict[str, Any]:
    return {
        "position": position,
        "local_id": local_id,
        "superseded_by": by,
        "message_es": (
            f"rechazado, pero la posición {by}, más adelante en el archivo, guardó el mismo "
            "expediente: es una versión anterior y no va al archivo de rechazos (no la envíe "
            "de nuevo: sería la última versión del expediente)"
        ),
        "message_en": (
            f"rejected, but position {by}, later in the file, stored the same record: it is an "
            "older version and is left out of the rejects file (do not send it again: it "
            "would become the record's latest version)"
        ),
    }


def write_rejects(
    adapter: Adapter,
    rejected: Iterable[Item],
    out: IO[bytes],
    summary: ImportSummary | None = None,
) -> int:
    """The adapter writes its own rejects format; an installed adapter that cannot gets NDJSON
    lines ``{"position", "source", "errors"}``. With the import's ``summary``, the rejects
    wait until the input ends and those a later item superseded are left out
    (:func:`without_superseded`). Returns how many rejected items the writer left unread."""
    items = iter(rejected) if summary is None else without_superseded(rejected, summary)
    if isinstance(adapter, RejectsWriter):
        adapter.write_rejects(items, out)
        return sum(1 for _ in items)
    for item in items:
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
    return 0


def without_superseded(rejected: Iterable[Item], summary: ImportSummary) -> Iterator[Item]:
    """The rejected items once the whole input is read, less those a later item of the same
    record superseded: whether one did is known only at the end. They wait in a temporary
    file, pickled one by one, so memory does not grow with them. An item that cannot be
    pickled (an installed adapter's) ends the waiting: what waited is given, then the rest as
    it comes, and nothing more is taken for superseded (it may already be written)."""
    with tempfile.TemporaryFile() as spool:
        rest = iter(rejected)
        for item in rest:
            try:
                spool.write(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception:  # noqa: BLE001 (pickle raises several kinds)
                summary.superseding = False
                yield from _waited(spool, summary)
                yield item
                yield from rest
                return
        yield from _waited(spool, summary)


def _waited(spool: IO[bytes], summary: ImportSummary) -> Iterator[Item]:
    end = spool.tell()
    spool.seek(0)
    while spool.tell() < end:
        item = pickle.load(spool)  # noqa: S301 (our own temporary file, written just now)
        if not summary.is_superseded(item):
            yield item
