"""Parts a new version of a record lacks that the version it replaced had.

A case sent in part — a spreadsheet without some columns, a FHIR Patient without its
Encounters — is still valid, so it is stored, as a new version without those parts. The hub
says so in the push's answer (``lost_parts``, by pointer template: ``/placements``,
``/related_persons``, ``/child/nationality/*``), for an agency system and for ``puente import``
alike, straight into the database or through the API. Only stored versions after the first are
compared, and the versions they replaced are read in one query: a first push, or a record sent
again unchanged, reads nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from exchange.crypto import DataKeyError, DataKeyring
from exchange.records import RecordVersion, decrypt_version
from schemas.fields import escape_token

if TYPE_CHECKING:
    from exchange.record_push import PushResult


def note_lost_parts(
    session: Session, keyring: DataKeyring, pushed: Iterable[tuple[PushResult, Any]]
) -> bool:
    """Set ``lost_parts`` on each stored result (paired with the data it stored) whose new
    version lacks parts of the version it replaced. Reads in ``session``'s transaction, and
    says whether it read anything (nothing for first versions)."""
    replaced = {
        (result.record_id, result.version - 1): (result, data)
        for result, data in pushed
        if result.status == "stored"
        and result.record_id is not None
        and result.version is not None
        and result.version > 1
    }
    if not replaced:
        return False
    versions = session.scalars(
        select(RecordVersion).where(
            tuple_(RecordVersion.record_id, RecordVersion.version).in_(list(replaced))
        )
    ).all()
    for version in versions:
        result, data = replaced[(version.record_id, version.version)]
        try:
            before = decrypt_version(keyring, version).data
        except DataKeyError:
            continue  # a warning only: the new version is stored, whatever the old one holds
        result.lost_parts = lost_parts(before, data)
    return True


def lost_parts(before: Any, after: Any) -> tuple[str, ...]:
    """The parts of ``before`` (a record's data) that ``after`` lacks, by pointer template
    (``/placements/*``, ``/related_persons``, ``/child/nationality/*``): where ``before`` has
    more values than ``after``, counting each element of a list, so a list that shrank is
    named, and a value that merely changed is not. Only the outermost of a lost part is named
    (``/related_persons``, not each of its fields)."""
    had: Counter[str] = Counter()
    has: Counter[str] = Counter()
    _count_values(before, "", had)
    _count_values(after, "", has)
    lost = sorted(part for part, count in had.items() if count > has[part])
    outermost: list[str] = []
    for part in lost:
        if not any(part.startswith(kept + "/") for kept in outermost):
            outermost.append(part)
    return tuple(outermost)


def _count_values(value: Any, at: str, counts: Counter[str]) -> None:
    if value is None or value == "" or value == [] or value == {}:
        return
    if at:
        counts[at] += 1
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _count_values(inner, f"{at}/{escape_token(key)}", counts)
    elif isinstance(value, list):
        for inner in value:
            _count_values(inner, f"{at}/*", counts)
