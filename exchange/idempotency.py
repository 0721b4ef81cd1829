"""``Idempotency-Key`` for single pushes: the first answer, kept and replayed to retries.

Insert-first: the key row is inserted as the *first* write of the push's transaction, and the
answer is written into it before that transaction commits. A concurrent request with the same
key blocks on the key's unique index (PostgreSQL) or on the database's write lock (SQLite)
until the first commits, then finds the row and replays its answer; if the first rolled back,
the key is free again. So however many times a key arrives at once, one push is stored.

Keys belong to one agency, live at least ``IDEMPOTENCY_KEY_HOURS`` (24 by default) and are
pruned after that. Only successful answers are kept: a refused push stores nothing, and its
retry is checked afresh.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.auth import as_utc, utcnow
from exchange.hot_sql import HotSQL, insert_sql, update_sql
from exchange.records import IdempotencyKey

#: 1 to 200 printable ASCII characters, not starting or ending with a space.
KEY_PATTERN = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$")
PRUNE_EVERY_SECONDS = 600.0
_last_prune = 0.0

_KEYS = cast(Table, IdempotencyKey.__table__)
# Plain SQL on the session's connection (exchange.hot_sql): a keyed push runs three of these.
_FIND = (
    "SELECT request_sha256, status_code, response, created_at FROM idempotency_key"
    " WHERE agency_id = ? AND key = ?"
)
_RESERVE = insert_sql(_KEYS, ("agency_id", "key", "request_sha256", "created_at"))
_ANSWER = update_sql(_KEYS, ("status_code", "response"), ("agency_id", "key"))
_FORGET = "DELETE FROM idempotency_key WHERE agency_id = ? AND key = ?"
_PRUNE = "DELETE FROM idempotency_key WHERE created_at < ?"


def check_key(value: str) -> None:
    if not KEY_PATTERN.match(value):
        raise ValueError("Idempotency-Key must be 1 to 200 printable ASCII characters")


@dataclass(frozen=True)
class StoredAnswer:
    """The answer given to the first push with a key, and the digest of its body."""

    request_sha256: str
    status_code: int
    response: str


def find_answer(session: Session, agency_id: str, key: str, ttl: timedelta) -> StoredAnswer | None:
    """The agency's stored answer for ``key``, unless there is none or it expired."""
    sql = HotSQL(session)
    row = sql.first(_FIND, (agency_id, key))
    if row is None:
        return None
    request_sha256, status_code, response, created_at = row
    created_at = sql.reader(_KEYS.c.created_at)(created_at)
    if response is None or as_utc(created_at) < utcnow() - ttl:
        return None
    return StoredAnswer(request_sha256, int(status_code), response)


def reserve(
    session: Session, agency_id: str, key: str, sha256: str, ttl: timedelta, attempts: int = 5
) -> StoredAnswer | None:
    """Insert the key row (first write of the transaction): ``None`` when the key is now this
    push's, else the answer of the push that holds it. An expired row is forgotten."""
    for _ in range(attempts):
        sql = HotSQL(session)
        try:
            created_at = sql.binder(_KEYS.c.created_at)(utcnow())
            sql.execute(_RESERVE, (agency_id, key, sha256, created_at))
            return None
        except IntegrityError:
            session.rollback()
        earlier = find_answer(session, agency_id, key, ttl)
        if earlier is not None:
            return earlier
        HotSQL(session).execute(_FORGET, (agency_id, key))
        session.commit()
    raise IntegrityError("Idempotency-Key contended", None, Exception(key))


def save_answer(
    session: Session, agency_id: str, key: str, status_code: int, response: str
) -> None:
    """Write the answer into the reserved row, in the push's transaction."""
    HotSQL(session).execute(_ANSWER, (status_code, response, agency_id, key))


def prune(session: Session, ttl: timedelta, *, force: bool = False) -> None:
    """Delete expired keys, at most every few minutes per process; commits."""
    global _last_prune
    now = time.monotonic()
    if not force and now - _last_prune < PRUNE_EVERY_SECONDS:
        return
    _last_prune = now
    sql = HotSQL(session)
    sql.execute(_PRUNE, (sql.binder(_KEYS.c.created_at)(utcnow() - ttl),))
    session.commit()
