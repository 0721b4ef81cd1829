"""``puente children reindex``: the child index brought up to date with records pushed before it
kept what it keeps now.

A push stores what search finds the record's child by (:func:`exchange.child_linking.
store_search_index`): its search-only identifiers, its identity profile and name keys. When a
hub's upgrade widens that (say, more :data:`~exchange.children.SEARCH_ONLY_IDENTIFIER_TYPES`),
records pushed earlier are not found by the new kinds until they are pushed again. Bodies are
encrypted at rest, so no database migration can read them: this walks every record's latest
version with the data keyring, one committed batch at a time, and stores for it what a push
would store today — through the same function.

It never changes which child a record belongs to: no identifier is linked or moved, no child
made or merged, no conflict suggested. A record's index entries stay with the child they are
on (the child of its profile, else of the record, merges followed). Missing search-only rows
are added (stale ones are kept, as a push keeps them); a profile that differs from its latest
version is rewritten, name keys included, and so is one written before profiles kept the
record's CURP and UNHCR numbers (after that, a value the record's next version no longer states
stops linking: :func:`exchange.child_linking.unlink_dropped_identifiers`). Running it again
changes nothing.

A batch holds its records against concurrent pushes of them (PostgreSQL: ``FOR UPDATE``;
SQLite: the write lock), so a push that lands meanwhile is never overwritten by an older
version. One audit entry records the run and its counts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from exchange.audit_log import record_event
from exchange.auth import as_utc, utcnow
from exchange.child_linking import (
    LOOKUP_CHUNK,
    child_part,
    existing_children,
    identifiers_in,
    source_profile,
    store_search_index,
)
from exchange.child_matching import IdentityProfile
from exchange.crypto import DataKeyring
from exchange.hot_sql import HotSQL
from exchange.records import Record, RecordAddress, RecordVersion, decrypt_version

BATCH_SIZE = 500
#: A batch that deadlocks with a concurrent push (PostgreSQL) or waits too long for SQLite's
#: write lock is run again: it is idempotent.
MAX_ATTEMPTS = 5


@dataclass
class ReindexSummary:
    """What a run (or one batch) did."""

    records_read: int = 0
    identifiers_added: int = 0
    profiles_refreshed: int = 0
    audit_entry: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.identifiers_added or self.profiles_refreshed)

    def add(self, batch: ReindexSummary) -> None:
        self.records_read += batch.records_read
        self.identifiers_added += batch.identifiers_added
        self.profiles_refreshed += batch.profiles_refreshed

    def reason_code(self) -> str:
        # Audit entries carry codes, not text: the counts go into the reason code.
        return (
            f"children_reindexed.read_{self.records_read}"
            f".added_{self.identifiers_added}.refreshed_{self.profiles_refreshed}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "records_read": self.records_read,
            "identifiers_added": self.identifiers_added,
            "profiles_refreshed": self.profiles_refreshed,
            "changed": self.changed,
            "audit_entry": self.audit_entry,
        }


@dataclass(frozen=True)
class _Entry:
    """What one record's latest version gives the index."""

    local_id: str
    record_child: str
    search_only: list[tuple[str, str]]
    profile: IdentityProfile


def records_to_read(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Record)) or 0)


def reindex_children(
    sessions: sessionmaker[Session],
    keyring: DataKeyring,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ReindexSummary:
    """Reindex every record (see the module); ``progress`` gets each batch's record count.

    Writes one audit entry for the run, a failure entry if it stops on an error (the batches
    committed until then stay: run it again to finish).
    """
    summary = ReindexSummary()
    try:
        for batch in reindex_batches(sessions, keyring, batch_size):
            summary.add(batch)
            if progress is not None:
                progress(batch.records_read)
    except BaseException:
        # The error that stopped the run matters more than a failure to record it.
        with contextlib.suppress(Exception):
            _audit(sessions, summary, "failure")
        raise
    summary.audit_entry = _audit(sessions, summary, "success")
    return summary


def reindex_batches(
    sessions: sessionmaker[Session], keyring: DataKeyring, batch_size: int = BATCH_SIZE
) -> Iterator[ReindexSummary]:
    """One committed batch at a time, in record id order; yields what each batch did."""
    after = ""
    while True:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with sessions() as session:
                    batch, last = _reindex_batch(session, keyring, after, batch_size)
                    session.commit()
                break
            except OperationalError:
                if attempt == MAX_ATTEMPTS:
                    raise
        if not batch.records_read:
            return
        after = last
        yield batch


def _reindex_batch(
    session: Session, keyring: DataKeyring, after: str, batch_size: int
) -> tuple[ReindexSummary, str]:
    sql = HotSQL(session)
    # Pushes take the write lock before reading; so does this, so neither writes over what
    # the other read.
    sql.hold_sqlite_write_lock()
    # Entries go under the agency that pushed the latest version, by the local id it pushes
    # the record under: after a transfer, the recipient's address, never the previous owner's.
    # (An agency the record came back to has more than one address for it: the latest.)
    address = (
        select(RecordAddress.local_id)
        .where(
            RecordAddress.record_id == Record.id,
            RecordAddress.agency_id == RecordVersion.pushed_by,
        )
        .order_by(RecordAddress.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Record.id,
            RecordVersion.pushed_by,
            func.coalesce(address, Record.local_id),
            Record.child_id,
            RecordVersion,
        )
        .join(
            RecordVersion,
            and_(
                RecordVersion.record_id == Record.id,
                RecordVersion.version == Record.latest_version,
            ),
        )
        .where(Record.id > after)
        .order_by(Record.id)
        .limit(batch_size)
        .with_for_update(of=Record)  # a push of one of these waits for the batch (PostgreSQL)
    ).all()
    batch = ReindexSummary(records_read=len(rows))
    if not rows:
        return batch, after
    by_agency: dict[str, list[_Entry]] = {}
    for _record_id, agency_id, local_id, child_id, version in rows:
        data = decrypt_version(keyring, version).data
        child = child_part(data if isinstance(data, Mapping) else {})
        personal, search_only = identifiers_in(child, agency_id=agency_id)
        # An age estimate is as of the push (as the push computed it), not as of today.
        profile = source_profile(child, personal, as_utc(version.pushed_at).date())
        by_agency.setdefault(agency_id, []).append(_Entry(local_id, child_id, search_only, profile))
    _store(sql, session, by_agency, batch)
    return batch, rows[-1][0]


def _store(
    sql: HotSQL, session: Session, by_agency: Mapping[str, Sequence[_Entry]], batch: ReindexSummary
) -> None:
    profile_children = {
        agency_id: _profile_children(sql, agency_id, [e.local_id for e in entries])
        for agency_id, entries in by_agency.items()
    }
    named = {e.record_child for entries in by_agency.values() for e in entries}
    named.update(c for children in profile_children.values() for c in children.values())
    current = existing_children(sql, session, named)
    # The child each record's entries belong to: where its last push put them (its profile),
    # else the record's own child; merges followed either way. Never another child.
    targets = {
        (agency_id, e.local_id): current[profiled.get(e.local_id, e.record_child)]
        for agency_id, entries in by_agency.items()
        for profiled in [profile_children[agency_id]]
        for e in entries
    }
    have = _case_numbers(sql, set(targets.values()))
    now = utcnow()
    for agency_id, entries in sorted(by_agency.items()):
        missing: set[tuple[str, str, str]] = set()
        for entry in entries:
            child_id = targets[(agency_id, entry.local_id)]
            missing.update((child_id, kind, value) for kind, value in entry.search_only)
        missing -= have
        have |= missing  # two agencies' records of one child may carry the same document
        profiles = {e.local_id: (targets[(agency_id, e.local_id)], e.profile) for e in entries}
        batch.identifiers_added += len(missing)
        stored = store_search_index(
            sql,
            agency_id,
            missing,
            profiles,
            known=set(profiles),
            now=now,
            check_name_keys=True,
        )
        batch.profiles_refreshed += stored.profiles_written


def _profile_children(sql: HotSQL, agency_id: str, local_ids: list[str]) -> dict[str, str]:
    """local id -> the child of the agency's profile of it, for those that have one."""
    rows = sql.rows_in(
        "SELECT local_id, child_id FROM child_profile WHERE agency_id = ? AND local_id IN {}",
        (agency_id,),
        sorted(local_ids),
        chunk=LOOKUP_CHUNK,
    )
    return {local_id: child_id for local_id, child_id in rows}


def _case_numbers(sql: HotSQL, child_ids: set[str]) -> set[tuple[str, str, str]]:
    rows = sql.rows_in(
        "SELECT child_id, kind, value FROM child_case_number WHERE child_id IN {}",
        (),
        sorted(child_ids),
        chunk=LOOKUP_CHUNK,
    )
    return {(child_id, kind, value) for child_id, kind, value in rows}


def _audit(sessions: sessionmaker[Session], summary: ReindexSummary, outcome: str) -> str:
    # One entry for the run, its counts as the reason code.
    with sessions() as session:
        entry = record_event(
            session,
            action="child_index_rebuilt",
            outcome=outcome,
            actor_role="administrator",
            detail=summary.reason_code(),
        )
        session.commit()
    return entry
