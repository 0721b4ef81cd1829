"""Linking pushed records to children: one record (``exchange.children.link_child``) or a batch
(:func:`link_children`, for bulk pushes) in a handful of statements.

For each record, in order: the ``child_id`` the agency sent (must exist; a merged child
resolves to the child it was merged into), the agency's earlier link for this local id, the
child a CURP or UNHCR individual number of the record already names, else a new child. An
identifier that names another child than the one chosen stays where it is and leaves a
"conflict" suggestion for a person (never a silent merge). UNHCR/COMAR case numbers are kept
for search only. The record's identity profile and name keys are kept current
(:mod:`exchange.child_matching`): identity-category data only, no case content.

Cost: a batch reads the links of all its identifiers in one query and the profiles of its
known local ids in another, then writes with one multi-row statement per table. A re-push
whose identity data did not change writes nothing. A concurrent push that linked one of the
same identifiers first makes the insert fail with ``IntegrityError``: roll back and retry
(the retry sees the committed links).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange.auth import utcnow
from exchange.child_matching import IdentityProfile, index_keys, profile_from_child
from exchange.children import (
    CASE_NUMBER_KINDS,
    PERSONAL_IDENTIFIER_KINDS,
    UNKNOWN_YEAR_FROM,
    UNKNOWN_YEAR_TO,
    Child,
    ChildDuplicateSuggestion,
    ChildIdentifier,
    ChildNameKey,
    ChildProfile,
    new_child_id,
    normalize_identifier,
    resolve_child_id,
)
from exchange.db import Base

#: Values per ``IN`` list (well under SQLite's 32,766 parameters).
LOOKUP_CHUNK = 2000

Lookup = tuple[str, str, str]  # (kind, scope, value)


@dataclass(frozen=True)
class LinkRequest:
    """One pushed record to link: its local id, the ``child_id`` it names (if any) and its
    data (a ``case-record/1`` document, or a ``child/1`` document)."""

    local_id: str
    child_id: str | None
    document: Mapping[str, Any]


def child_part(document: Mapping[str, Any]) -> Mapping[str, Any]:
    # A case record carries the child under "child"; a child/1 document is the child itself.
    child = document.get("child")
    return child if isinstance(child, Mapping) else document


def identifiers_in(child: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(personal identifiers as (stored kind, value), case numbers as (type, value))."""
    personal: list[tuple[str, str]] = []
    cases: list[tuple[str, str]] = []
    items = child.get("identifiers")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping) or not isinstance(item.get("value"), str):
            continue
        value, kind = normalize_identifier(item["value"]), item.get("type")
        if not value:
            continue
        if kind in PERSONAL_IDENTIFIER_KINDS:
            pair = (PERSONAL_IDENTIFIER_KINDS[kind], value)
            if pair not in personal:
                personal.append(pair)
        elif kind in CASE_NUMBER_KINDS and (kind, value) not in cases:
            cases.append((kind, value))
    return personal, cases


def _chunks(items: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def owners_of(session: Session, lookups: Iterable[Lookup]) -> dict[Lookup, str]:
    """(kind, scope, value) -> the child each identifier links to (merges followed).

    One query per (kind, scope) — ``kind = ? AND scope = ? AND value IN (...)`` walks the
    unique index; a row-value ``IN`` over all three columns made SQLite scan the table.
    """
    by_prefix: dict[tuple[str, str], list[str]] = {}
    for kind, scope, value in set(lookups):
        by_prefix.setdefault((kind, scope), []).append(value)
    owners: dict[Lookup, str] = {}
    for (kind, scope), values in sorted(by_prefix.items()):
        for chunk in _chunks(sorted(values)):
            rows = session.execute(
                select(ChildIdentifier.value, ChildIdentifier.child_id).where(
                    ChildIdentifier.kind == kind,
                    ChildIdentifier.scope == scope,
                    ChildIdentifier.value.in_(chunk),
                )
            )
            owners.update(((kind, scope, value), child_id) for value, child_id in rows)
    if owners:
        # A merge moves identifiers to the surviving child, so this rarely finds any.
        survivors = _follow_merges(session, set(owners.values()))
        owners = {key: survivors.get(child_id, child_id) for key, child_id in owners.items()}
    return owners


def _follow_merges(session: Session, child_ids: set[str]) -> dict[str, str]:
    """merged child id -> the child it now is, for those of ``child_ids`` that were merged
    (found through the index on ``merged_into``, not by reading every child)."""
    merged: dict[str, str] = {}
    for chunk in _chunks(sorted(child_ids)):
        for (child_id,) in session.execute(
            select(Child.id).where(Child.merged_into.is_not(None), Child.id.in_(chunk))
        ):
            merged[child_id] = resolve_child_id(session, child_id)
    return merged


def _existing_children(session: Session, child_ids: set[str]) -> dict[str, str]:
    """child id -> the child it is now, for the ids that exist."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(child_ids)):
        for child_id, merged in session.execute(
            select(Child.id, Child.merged_into).where(Child.id.in_(chunk))
        ):
            found[child_id] = resolve_child_id(session, child_id) if merged else child_id
    return found


def suggest_conflict(
    session: Session, child_id: str, other_child_id: str, *, kind: str, agency_id: str
) -> None:
    """Leave a "conflict" suggestion for a person, once per open pair and identifier kind."""
    pair = or_(
        and_(
            ChildDuplicateSuggestion.child_id == child_id,
            ChildDuplicateSuggestion.other_child_id == other_child_id,
        ),
        and_(
            ChildDuplicateSuggestion.child_id == other_child_id,
            ChildDuplicateSuggestion.other_child_id == child_id,
        ),
    )
    open_already = session.scalars(
        select(ChildDuplicateSuggestion.id).where(
            pair,
            ChildDuplicateSuggestion.identifier_kind == kind,
            ChildDuplicateSuggestion.resolved_at.is_(None),
        )
    ).first()
    if open_already is None:
        session.add(
            ChildDuplicateSuggestion(
                child_id=child_id,
                other_child_id=other_child_id,
                reason="conflict",
                identifier_kind=kind,
                agency_id=agency_id,
                created_at=utcnow(),
            )
        )


@functools.cache
def _insert_ignoring_conflicts(dialect: str, table_name: str) -> Any:
    # Case numbers and name keys have no owner to decide: a row already there is fine.
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(Child.metadata.tables[table_name]).on_conflict_do_nothing()


def link_children(
    session: Session, *, agency_id: str, requests: Sequence[LinkRequest]
) -> list[str | LookupError]:
    """The ``child_id`` of each pushed record, in order (a ``LookupError`` in place of a
    record naming an unknown ``child_id``). Writes in ``session``'s transaction; no commit.

    Records of one batch see each other: the same local id twice is one child, and a CURP
    first seen earlier in the batch links a later record to the same child.
    """
    now = utcnow()
    parsed = []
    lookups: set[Lookup] = set()
    for request in requests:
        child = child_part(request.document)
        personal, cases = identifiers_in(child)
        parsed.append((request, child, personal, cases))
        lookups.add(("agency_local", agency_id, request.local_id))
        lookups.update((kind, "", value) for kind, value in personal)
    owners = owners_of(session, lookups)
    known_local_ids = {value for kind, _, value in owners if kind == "agency_local"}
    explicit = _existing_children(session, {r.child_id for r in requests if r.child_id})

    results: list[str | LookupError] = []
    new_children: list[dict[str, Any]] = []
    new_identifiers: list[dict[str, Any]] = []
    new_cases: set[tuple[str, str, str]] = set()
    conflicts: dict[tuple[str, str, str], None] = {}
    latest: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for request, child, personal, cases in parsed:
        local_key = ("agency_local", agency_id, request.local_id)
        local_owner = owners.get(local_key)
        if request.child_id is not None:
            if request.child_id not in explicit:
                results.append(LookupError(request.child_id))
                continue
            chosen = explicit[request.child_id]
        elif local_owner is not None:
            chosen = local_owner
        else:
            named = (owners.get((kind, "", value)) for kind, value in personal)
            chosen = next((owner for owner in named if owner), "")
            if not chosen:
                chosen = new_child_id()
                new_children.append({"id": chosen, "created_at": now})
        claims = [(local_key, "agency_local")] + [((k, "", v), k) for k, v in personal]
        for key, kind in claims:
            owner = owners.get(key)
            if owner is None:
                owners[key] = chosen
                new_identifiers.append(
                    {"child_id": chosen, "kind": key[0], "scope": key[1], "value": key[2]}
                )
            elif owner != chosen:
                conflicts[(chosen, owner, kind)] = None
        new_cases.update((chosen, kind, value) for kind, value in cases)
        latest[request.local_id] = (chosen, child)
        results.append(chosen)

    if new_children:
        _insert_rows(session, Child, new_children)
    if new_identifiers:
        _insert_rows(session, ChildIdentifier, new_identifiers)
    if new_cases:
        statement = _insert_ignoring_conflicts(_dialect(session), "child_case_number")
        rows = [{"child_id": c, "kind": k, "value": v} for c, k, v in sorted(new_cases)]
        session.execute(statement, rows)
    for child_id, other, kind in conflicts:
        suggest_conflict(session, child_id, other, kind=kind, agency_id=agency_id)
    profiles = {
        local_id: (child_id, profile_from_child(child, now.date()))
        for local_id, (child_id, child) in latest.items()
    }
    store_profiles(session, agency_id, profiles, known=known_local_ids, now=now)
    return results


def _insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    # RETURNING makes SQLAlchemy send multi-row INSERT … VALUES statements ("insertmanyvalues",
    # up to 1,000 rows each) on both backends, instead of one statement per row with psycopg.
    table = _table(model)
    session.execute(insert(table).returning(*table.primary_key.columns), rows).all()


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def profile_columns(profile: IdentityProfile) -> dict[str, Any]:
    birth = profile.birth
    return {
        "given_names": " ".join(profile.given)[:300],
        "surnames": " ".join(profile.surnames)[:300],
        "alias": " ".join(profile.alias)[:300],
        "birth_earliest": birth.earliest if birth else None,
        "birth_latest": birth.latest if birth else None,
        "birth_exact": birth.exact if birth else None,
        "sex": profile.sex,
        "nationalities": " ".join(sorted(profile.nationalities)),
    }


PROFILE_COLUMN_NAMES = tuple(profile_columns(IdentityProfile()))


def store_profiles(
    session: Session,
    agency_id: str,
    profiles: Mapping[str, tuple[str, IdentityProfile]],
    *,
    known: set[str],
    now: datetime,
) -> None:
    """Keep each source record's profile and name keys current; no writes when unchanged.

    ``profiles``: local id -> (child id, profile). ``known``: the local ids that were linked
    before this push (only those can have a profile already).
    """
    table = _table(ChildProfile)
    stored: dict[str, Any] = {}
    for chunk in _chunks(sorted(known & profiles.keys())):
        for found in session.execute(
            select(table.c.id, table.c.local_id, table.c.child_id)
            .add_columns(*(table.c[name] for name in PROFILE_COLUMN_NAMES))
            .where(table.c.agency_id == agency_id, table.c.local_id.in_(chunk))
        ):
            stored[found.local_id] = found
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    rekeyed: dict[int, IdentityProfile] = {}
    for local_id, (child_id, profile) in profiles.items():
        columns = profile_columns(profile)
        current = stored.get(local_id)
        if current is None:
            inserts.append(
                {
                    "child_id": child_id,
                    "agency_id": agency_id,
                    "local_id": local_id,
                    "updated_at": now,
                    **columns,
                }
            )
        elif current.child_id != child_id or any(
            getattr(current, k) != v for k, v in columns.items()
        ):
            updates.append(
                {"profile_id": current.id, "child_id": child_id, "updated_at": now, **columns}
            )
            rekeyed[current.id] = profile
    if updates:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("profile_id"))
            .values({name: bindparam(name) for name in updates[0] if name != "profile_id"}),
            updates,
        )
        session.execute(delete(ChildNameKey).where(ChildNameKey.profile_id.in_(list(rekeyed))))
    if inserts:
        returned = session.execute(
            insert(table).returning(table.c.id, table.c.local_id),
            inserts,
        )
        for profile_id, local_id in returned:
            rekeyed[profile_id] = profiles[local_id][1]
    keys = [
        {"profile_id": profile_id, "key": key, "birth_year_from": start, "birth_year_to": end}
        for profile_id, profile in rekeyed.items()
        for start, end in [_birth_years(profile)]
        for key in sorted(index_keys(profile))
    ]
    if keys:
        _insert_rows(session, ChildNameKey, keys)


def _birth_years(profile: IdentityProfile) -> tuple[int, int]:
    birth = profile.birth
    if birth is None:
        return UNKNOWN_YEAR_FROM, UNKNOWN_YEAR_TO
    return birth.earliest.year, birth.latest.year
