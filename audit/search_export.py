"""Searching a verified export offline: a child's history from the signed entries alone.

The hub's ``GET /v1/audit/events`` filters on copies of a few fields kept beside each entry
(its child, action, actor), which no signature covers: an operator who edits a copy hides that
entry from the view while the log still verifies. :func:`search_export` answers the same
questions from an export instead, reading only the bytes the hub's log key signed:

1. it verifies the export as ``puente audit verify --full`` does (:func:`verify_export`),
   noting on the way the ``child_merged`` entries and a digest of every line verified;
2. it resolves the child asked about through those merges, as the hub does (the child it now
   is, then every child merged into it);
3. it reads the entries once more, checks they are the very lines verified (same digest),
   and keeps those that match.

A ``child_merged`` entry names the child kept as its ``child_id`` and the child merged into it
in its ``reason_code``, ``merged_<id>`` (exchange.child_duplicates writes it so). No I/O here:
the caller passes the files as iterables, as for :func:`verify_export`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from audit.cosignature import CosignatureVerifier
from audit.errors import FormatError
from audit.note import NoteVerifier
from audit.verify_export import ExportSummary, LeafReader, verify_export

#: The action codes of the schema audit-event/1 (``properties.action.enum``), which the
#: offline verifier cannot read (it is installed without the schemas); a test keeps them equal.
AUDIT_ACTIONS: tuple[str, ...] = (
    "record_pushed",
    "record_read",
    "record_versions_listed",
    "child_records_listed",
    "child_searched",
    "record_referred",
    "record_transferred",
    "transfer_accepted",
    "transfer_rejected",
    "transfer_withdrawn",
    "consent_granted",
    "consent_changed",
    "consent_revoked",
    "consents_read",
    "child_views_recorded",
    "decision_evaluated",
    "access_requested",
    "access_granted",
    "access_denied",
    "override_used",
    "override_reviewed",
    "agency_changed",
    "person_changed",
    "key_changed",
    "schema_changed",
    "peer_changed",
    "peer_log_forked",
    "own_log_conflict_reported",
    "federation_envelope_sent",
    "federation_envelope_received",
    "child_merged",
    "child_distinct_recorded",
    "child_distinct_withdrawn",
    "child_index_rebuilt",
)
OUTCOMES = ("success", "denied", "failure")

MERGE_ACTION = "child_merged"
MERGED_PREFIX = "merged_"


@dataclass(frozen=True)
class EventQuery:
    """What to look for; every filter given must match. ``actor`` is an agency or a person id;
    ``since`` is inclusive and ``until`` exclusive, aware datetimes compared with each entry's
    signed ``time``."""

    child_id: str | None = None
    action: str | None = None
    actor: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Merge:
    """A signed ``child_merged`` entry: at ``index``, ``merged`` became part of ``into``."""

    index: int
    into: str
    merged: str


@dataclass(frozen=True)
class FoundEvent:
    """A matching entry: its index and its bytes, exactly as the log signed them."""

    index: int
    entry: bytes


@dataclass(frozen=True)
class SearchResult:
    """What :func:`search_export` found in a verified export. ``child_ids`` (with a child
    asked about) are the ids searched, the child it now is first; ``merges`` the signed
    merges that joined them; ``unreadable`` the indices of signed entries that are not JSON
    objects with the fields searched (none from a Puente hub), which no filter could match."""

    summary: ExportSummary
    events: tuple[FoundEvent, ...]
    child_ids: tuple[str, ...] | None = None
    merges: tuple[Merge, ...] = ()
    unreadable: tuple[int, ...] = ()


class ExportChanged(FormatError):
    """The entries read for the search are not the lines just verified: the file changed."""


def child_family(
    child_id: str, merges: Sequence[Merge]
) -> tuple[tuple[str, ...], tuple[Merge, ...]]:
    """The ids a child's entries may carry, after the signed ``merges`` (in log order): the
    child ``child_id`` now is (following merges of it into others), then every child merged
    into that one, however indirectly — the hub's own rule (``GET /v1/audit/events``). Also the
    merges that joined them."""
    into_of = {m.merged: m.into for m in merges}
    survivor, seen = child_id, {child_id}
    while survivor in into_of and into_of[survivor] not in seen:
        survivor = into_of[survivor]
        seen.add(survivor)
    family, frontier = [survivor], [survivor]
    members = {survivor}
    used: list[Merge] = []
    while frontier:
        joined = [m for m in merges if m.into in frontier and m.merged not in members]
        used.extend(joined)
        frontier = list(dict.fromkeys(m.merged for m in joined))
        members.update(frontier)
        family.extend(frontier)
    return tuple(family), tuple(sorted(used, key=lambda m: m.index))


def matches(entry: dict[str, Any], query: EventQuery, child_ids: Collection[str] | None) -> bool:
    """Whether a parsed entry matches every filter of ``query`` (the child by ``child_ids``,
    the family searched). Raises ``ValueError`` for an entry whose ``time`` is not RFC 3339."""
    if child_ids is not None and entry.get("child_id") not in child_ids:
        return False
    if query.action is not None and entry.get("action") != query.action:
        return False
    if query.outcome is not None and entry.get("outcome") != query.outcome:
        return False
    if query.actor is not None:
        actor = entry.get("actor")
        if not isinstance(actor, dict) or query.actor not in (
            actor.get("agency_id"),
            actor.get("person_id"),
        ):
            return False
    if query.since is not None or query.until is not None:
        moment = parse_time(entry.get("time"))
        if query.since is not None and moment < query.since:
            return False
        if query.until is not None and moment >= query.until:
            return False
    return True


def parse_time(value: object) -> datetime:
    """An RFC 3339 date-time with an offset (``2026-11-25T03:35:15.626Z``) as an aware
    datetime; ``ValueError`` for anything else."""
    if not isinstance(value, str) or len(value) < 20 or value[10] not in "Tt":
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    if moment.tzinfo is None:
        raise ValueError(f"an RFC 3339 date-time needs an offset: {value!r}")
    return moment


def search_export(
    entries: Callable[[], Iterable[bytes]],
    checkpoints: Iterable[str | bytes],
    log_verifiers: Sequence[NoteVerifier],
    query: EventQuery,
    *,
    origin: str | None = None,
    leaves: LeafReader | None = None,
    kept: Sequence[str] = (),
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
    progress: Callable[[int], None] | None = None,
) -> SearchResult:
    """Verify an export, then return the entries matching ``query``, from the signed bytes.

    ``entries`` and the other arguments are those of :func:`verify_export`, whose errors this
    raises unchanged: nothing is searched in an export that does not verify. Raises
    :class:`ExportChanged` when the entries read for the search are not the ones verified.
    """
    first_pass = _FirstPass(entries)
    summary = verify_export(
        first_pass,
        checkpoints,
        log_verifiers,
        origin=origin,
        leaves=leaves,
        kept=kept,
        witnesses=witnesses,
        quorum=quorum,
        progress=progress,
    )
    child_ids: tuple[str, ...] | None = None
    merges: tuple[Merge, ...] = ()
    if query.child_id is not None:
        child_ids, merges = child_family(query.child_id, first_pass.merges)
    wanted = None if child_ids is None else frozenset(child_ids)
    needles = _needles(query, child_ids)
    found: list[FoundEvent] = []
    unreadable: list[int] = []
    digest = hashlib.sha256()
    count = 0
    for index, line in enumerate(entries()):
        digest.update(line)
        count += 1
        if index >= summary.entries or not _may_match(line, needles):
            continue
        entry = _strip(line)
        try:
            document = json.loads(entry)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            if matches(document, query, wanted):
                found.append(FoundEvent(index, entry))
        except (ValueError, RecursionError):
            unreadable.append(index)
    if not first_pass.complete or (count, digest.digest()) != first_pass.seen():
        raise ExportChanged(
            "entries.ndjson changed while it was searched: the entries read are not the ones "
            "just verified; search it again, and keep the export where nothing else writes",
            es="entries.ndjson cambió mientras se buscaba en él: las entradas leídas no son las "
            "que se acaban de verificar; busque de nuevo, con la exportación donde nada más "
            "escriba",
        )
    return SearchResult(summary, tuple(found), child_ids, merges, tuple(unreadable))


@dataclass
class _FirstPass:
    """The entries for :func:`verify_export`: the first reading also digests every line and
    notes the signed merges (the verifier reads the entries again only to explain a failure)."""

    entries: Callable[[], Iterable[bytes]]
    merges: list[Merge] = field(default_factory=list)
    complete: bool = False
    _digest: Any = field(default_factory=hashlib.sha256)
    _count: int = 0
    _called: bool = False

    def __call__(self) -> Iterable[bytes]:
        if self._called:
            return self.entries()
        self._called = True
        return self._read()

    def _read(self) -> Iterator[bytes]:
        for index, line in enumerate(self.entries()):
            self._digest.update(line)
            self._count += 1
            if _MERGE_NEEDLE in line:
                merge = _merge(index, line)
                if merge is not None:
                    self.merges.append(merge)
            yield line
        self.complete = True

    def seen(self) -> tuple[int, bytes]:
        return self._count, self._digest.digest()


# RFC 8785 writes no space after the colon, and a quote inside a string value is escaped, so
# these bytes occur in a canonical entry only as its own member.
_MERGE_NEEDLE = b'"action":"child_merged"'


def _merge(index: int, line: bytes) -> Merge | None:
    try:
        entry = json.loads(_strip(line))
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or entry.get("action") != MERGE_ACTION:
        return None
    into, reason = entry.get("child_id"), entry.get("reason_code")
    if not isinstance(into, str) or not isinstance(reason, str):
        return None
    if not reason.startswith(MERGED_PREFIX) or len(reason) == len(MERGED_PREFIX):
        return None
    return Merge(index, into, reason[len(MERGED_PREFIX) :])


def _needles(query: EventQuery, child_ids: Sequence[str] | None) -> list[tuple[bytes, ...]]:
    """Byte strings a matching line must hold (one of each group): a quick pass over the
    lines before any is parsed. Each is a member as RFC 8785 writes it."""
    groups: list[tuple[bytes, ...]] = []
    if child_ids is not None:
        groups.append(tuple(_member("child_id", c) for c in child_ids))
    if query.action is not None:
        groups.append((_member("action", query.action),))
    if query.outcome is not None:
        groups.append((_member("outcome", query.outcome),))
    return groups


def _member(name: str, value: str) -> bytes:
    return f'"{name}":{json.dumps(value, ensure_ascii=False)}'.encode()


def _may_match(line: bytes, needles: list[tuple[bytes, ...]]) -> bool:
    return all(any(n in line for n in group) for group in needles)


def _strip(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\n") else line
