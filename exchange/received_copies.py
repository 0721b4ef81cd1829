"""Records an agency received are not its own to push.

A record another agency referred or transferred to the pushing agency is not the pusher's: a
push naming such a record's child and its local id (or its id), as the pusher's own export of it
does, is refused with ``409 conflict`` instead of being stored as a new record of the pusher's,
which would outlive the referral and the consent behind it. The push path
(:mod:`exchange.record_push`) asks only for a push that would create a record naming its child,
or that names another child than its record's, so the ordinary push costs nothing more.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from exchange.child_linking import follow_merges
from exchange.hot_sql import HotSQL, chunks, with_in_list
from schemas.validation import ValidationFailure

#: Local ids per lookup.
CHUNK = 2000

# Records shared with an agency (referred or transferred to it: a share in any state) that it
# did not create, named by their local id or by their id (what an export writes for a reader
# not given the local id); and the local id the agency updates the record under, when it
# accepted a transfer of it under one of its own. Newest share first.
_SHARED_WITH_AGENCY = (
    "SELECT r.id, r.local_id, r.child_id, s.from_agency, s.kind, s.status, a.local_id"
    " FROM record_share s JOIN record r ON r.id = s.record_id"
    " LEFT JOIN record_address a ON a.record_id = r.id AND a.agency_id = s.agency_id"
    " WHERE s.agency_id = ? AND r.source_agency <> ? AND (r.local_id IN {0} OR r.id IN {0})"
    " ORDER BY s.created_at DESC, s.id"
)
#: How the refusal of a record the pusher received begins, in Spanish and English (``puente
#: import`` counts these rows apart: referred to the agency, not imported as its own).
RECEIVED_COPY = (
    "copia de un expediente que su institución recibió: ",
    "a copy of a record your agency received: ",
)


def received_copies(
    sql: HotSQL, session: Session, agency_id: str, items: list[tuple[str, str | None]]
) -> list[ValidationFailure | None]:
    """For each of ``items`` ((local id, child id) of a push naming a child), why it is
    refused when its local id names a record that another agency referred or transferred to
    ``agency_id`` (by the record's local id, or its id) and that record's child is the child
    the item names, or one merged with it; else None. One query per :data:`CHUNK` local ids,
    and one for merges."""
    named = sorted({local_id for local_id, _child in items})
    rows: list[Any] = []
    for part in chunks(named, CHUNK):
        statement = with_in_list(_SHARED_WITH_AGENCY, len(part))
        rows.extend(sql.rows(statement, (agency_id, agency_id, *part, *part)))
    if not rows:
        return [None] * len(items)
    children = {row[2] for row in rows} | {child for _local, child in items if child}
    survivors = follow_merges(sql, session, children)
    by_name: dict[str, list[Any]] = {}
    for row in rows:  # newest share first
        for name in {row[0], row[1]}:
            by_name.setdefault(name, []).append(row)
    refusals: list[ValidationFailure | None] = []
    for local_id, child_id in items:
        child = survivors.get(child_id or "", child_id)
        found = next(
            (row for row in by_name.get(local_id, ()) if survivors.get(row[2], row[2]) == child),
            None,
        )
        if found is None:
            refusals.append(None)
            continue
        record_id, _local_id, _child, from_agency, kind, status, address = found
        refusals.append(_received_copy(record_id, from_agency, kind, status, address))
    return refusals


def _received_copy(
    record_id: str, from_agency: str, kind: str, status: str, address: str | None
) -> ValidationFailure:
    """Why an agency may not push, as its own, a record it was referred or transferred."""
    if kind == "referral":
        how_es, how_en = "remitió", "referred"
    elif status == "accepted":
        how_es, how_en = "transfirió", "transferred"
    else:
        how_es, how_en = "ofreció transferir", "offered to transfer"
    es = f"{RECEIVED_COPY[0]}es el expediente {record_id}, que {from_agency} {how_es}"
    es += " a su institución"
    en = f"{RECEIVED_COPY[1]}it is the record {record_id}, which {from_agency} {how_en}"
    en += " to your agency"
    if address is not None:  # it accepted the transfer under a local id of its own
        es += f", y su institución lo actualiza con su id local «{address}»: envíelo con ese id"
        en += f", and your agency updates it under its local id '{address}': push it under that id"
    else:
        es += (
            ", y no le corresponde a su institución enviarlo como propio: el expediente propio "
            "de su institución sobre esta niña, niño o adolescente necesita un id local de su "
            "institución"
        )
        en += (
            ", and it is not your agency's to push as its own: your agency's own record of this "
            "child needs a local id of your agency's own"
        )
    return ValidationFailure("/local_id", "conflict", es, en)
