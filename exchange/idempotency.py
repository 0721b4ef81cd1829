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

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.auth import as_utc, utcnow
from exchange.records import IdempotencyKey

#: 1 to 200 printable ASCII characters, not starting or ending with a space.
KEY_PATTERN = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$")
PRUNE_EVERY_SECONDS = 600.0
_last_prune = 0.0

_KEYS = IdempotencyKey.__table__
# Parameter names differ from column names: SQLAlchemy reserves those in UPDATE statements.
_THIS_KEY = (_KEYS.c.agency_id == bindparam("b_agency")) & (_KEYS.c.key == bindparam("b_key"))
_FIND = select(
    _KEYS.c.request_sha256, _KEYS.c.status_code, _KEYS.c.response, _KEYS.c.created_at
).where(_THIS_KEY)
_RESERVE = insert(_KEYS)
_ANSWER = (
    update(_KEYS)
    .where(_THIS_KEY)
    .values(status_code=bindparam("b_status"), response=bindparam("b_response"))
)
_FORGET = delete(_KEYS).where(_THIS_KEY)
_PRUNE = delete(_KEYS).where(_KEYS.c.created_at < bindparam("cutoff"))


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
    row = session.connection().execute(_FIND, {"b_agency": agency_id, "b_key": key}).first()
    if row is None or row.response is None or as_utc(row.created_at) < utcnow() - ttl:
        return None
    return StoredAnswer(row.request_sha256, int(row.status_code), row.response)


def reserve(
    session: Session, agency_id: str, key: str, sha256: str, ttl: timedelta, attempts: int = 5
) -> StoredAnswer | None:
    """Insert the key row (first write of the transaction): ``None`` when the key is now this
    push's, else the answer of the push that holds it. An expired row is forgotten."""
    for _ in range(attempts):
        try:
            session.connection().execute(
                _RESERVE,
                {
                    "agency_id": agency_id,
                    "key": key,
                    "request_sha256": sha256,
                    "created_at": utcnow(),
                },
            )
            return None
        except IntegrityError:
            session.rollback()
        earlier = find_answer(session, agency_id, key, ttl)
        if earlier is not None:
            return earlier
        session.connection().execute(_FORGET, {"b_agency": agency_id, "b_key": key})
        session.commit()
    raise IntegrityError("Idempotency-Key contended", None, Exception(key))


def save_answer(
    session: Session, agency_id: str, key: str, status_code: int, response: str
) -> None:
    """Write the answer into the reserved row, in the push's transaction."""
    session.connection().execute(
        _ANSWER,
        {"b_agency": agency_id, "b_key": key, "b_status": status_code, "b_response": response},
    )


def prune(session: Session, ttl: timedelta, *, force: bool = False) -> None:
    """Delete expired keys, at most every few minutes per process; commits."""
    global _last_prune
    now = time.monotonic()
    if not force and now - _last_prune < PRUNE_EVERY_SECONDS:
        return
    _last_prune = now
    session.connection().execute(_PRUNE, {"cutoff": utcnow() - ttl})
    session.commit()
