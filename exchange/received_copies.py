"""Records an agency received are not its own to push.

A record another agency holds is not the pusher's when the pusher received it: another agency
referred or transferred it to the pusher, or the pusher read it (under a consent, a granted
access request, an emergency override — any read the hub permitted). A push naming such a
record's child and its local id (or its id), as the pusher's own export of it does, is refused
with ``409 conflict`` instead of being stored as a new record of the pusher's, which would
outlive the referral, and the consent behind the referral or the read.

A read counts once the hub has recorded it: the permitted ``record_read`` entries of the audit
log, written in the read's own transaction and never deleted, so they still hold once the
consent is revoked — exactly when a copy must not appear. (``consent_disclosure`` says only
that an agency received some data of the child under a consent, not which record: refusing on
it would refuse local ids of records the pusher never saw.) A record the pusher never read is
never refused for that, and neither is its local id when every read of it withheld the local
id: the refusal would tell the pusher that another agency holds a record of the child under
that local id. For the same reason the refusal names the agency that holds the record only
when the pusher's reads were given it.

The push path (:mod:`exchange.record_push`) asks only for a push that would create a record
naming its child, or that names another child than its record's, so the ordinary push costs
nothing more; and the audit log is looked at only for an item naming a record of its child
that another agency holds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy.orm import Session

from exchange.auth import PEER_CLIENT_PREFIX
from exchange.child_linking import follow_merges
from exchange.hot_sql import HotSQL, chunks, placeholders, with_in_list
from exchange.records import envelope_categories
from schemas.validation import ValidationFailure

#: Local ids per lookup.
CHUNK = 2000

# The records the pushed local ids name (by their local id, or by their id, which an export
# writes for a reader not given the local id) that the pushing agency did not create:
# - those shared with it (referred or transferred to it: a share in any state), with the local
#   id it updates the record under when it accepted a transfer of it under one of its own,
#   newest share first;
# - then those of the children the items name, or merged with them (merges are flattened: a
#   child is merged at most one hop), that another agency holds: ones the pusher may have
#   read. Found through the index on the records' child, not by every agency's local ids.
# Columns: record id, local id, child, the agency that shared it (or holds it), share kind,
# share status, address, source agency, schema, 1 for a share, share time, tiebreak.
_NAMED_RECORDS = (
    "SELECT r.id, r.local_id, r.child_id, s.from_agency, s.kind, s.status, a.local_id,"
    " r.source_agency, r.schema_ref, 1, s.created_at, s.id"
    " FROM record_share s JOIN record r ON r.id = s.record_id"
    " LEFT JOIN record_address a ON a.record_id = r.id AND a.agency_id = s.agency_id"
    " WHERE s.agency_id = ? AND r.source_agency <> ? AND (r.local_id IN {0} OR r.id IN {0})"
    " UNION ALL SELECT r.id, r.local_id, r.child_id, r.owner_agency, NULL, NULL, NULL,"
    " r.source_agency, r.schema_ref, 0, NULL, r.id FROM record r"
    " WHERE r.child_id IN (SELECT c.id FROM child n JOIN child c ON c.id = n.id"
    " OR c.id = n.merged_into OR c.merged_into = COALESCE(n.merged_into, n.id)"
    " WHERE n.id IN {1})"
    " AND r.source_agency <> ? AND r.owner_agency <> ? AND (r.local_id IN {0} OR r.id IN {0})"
    " ORDER BY 10 DESC, 11 DESC, 12"
)
# The reads the hub permitted the agency (its system or any of its people) of the records of
# some children, or of children merged with them: a read keeps the child id it was made
# under, which a later merge leaves as it was. Found through the index on the entries' child
# (a few entries a child), never the one on their agency (every push of the agency writes
# one): SQLite, without statistics, would take the latter — 170 ms for an agency of 200,000
# entries — so the agency is compared as an expression no index serves.
_READ_BY_AGENCY = (
    "SELECT entry FROM audit_entry WHERE actor_agency || '' = ? AND action = 'record_read'"
    " AND outcome = 'success'"
    " AND child_id IN (SELECT id FROM child WHERE id IN {0} OR merged_into IN {0})"
)
#: How the refusal of a record the pusher received begins, in Spanish and English (``puente
#: import`` counts these rows apart: received by the agency, not imported as its own).
RECEIVED_COPY = (
    "copia de un expediente que su institución recibió: ",
    "a copy of a record your agency received: ",
)


def received_copies(
    sql: HotSQL, session: Session, agency_id: str, items: list[tuple[str, str | None]]
) -> list[ValidationFailure | None]:
    """For each of ``items`` ((local id, child id) of a push naming a child), why it is
    refused when its local id names a record of the child the item names, or of one merged
    with it, that ``agency_id`` received: another agency referred or transferred it to
    ``agency_id`` (named by the record's local id, or its id), or it is another agency's and
    ``agency_id`` read it (named by its id, or by its local id when a read gave it); else
    None. One query per :data:`CHUNK` local ids and one for merges; the audit log only for
    items naming another agency's record of their child not shared with ``agency_id``."""
    named = sorted({local_id for local_id, child in items if child})
    rows: list[Any] = []
    for part in chunks(named, CHUNK):
        wanted = set(part)
        named_children = sorted({c for local_id, c in items if c and local_id in wanted})
        statement = _named_records(len(part), len(named_children))
        params = (agency_id, agency_id, *part, *part, *named_children, agency_id, agency_id)
        rows.extend(sql.rows(statement, (*params, *part, *part)))
    if not rows:
        return [None] * len(items)
    children = {row[2] for row in rows} | {child for _local, child in items if child}
    survivors = follow_merges(sql, session, children)
    by_name: dict[str, list[Any]] = {}
    for row in rows:  # shares first, newest first
        for name in {row[0], row[1]}:
            by_name.setdefault(name, []).append(row)
    refusals: list[ValidationFailure | None] = []
    held: dict[int, list[Any]] = {}  # position -> another agency's records it names
    for position, (local_id, child_id) in enumerate(items):
        child = survivors.get(child_id or "", child_id)
        found = [row for row in by_name.get(local_id, ()) if survivors.get(row[2], row[2]) == child]
        refusals.append(None)
        if not found:
            continue
        if found[0][9]:  # shared with the agency
            record_id, _local_id, _child, from_agency, kind, status, address = found[0][:7]
            refusals[-1] = _received_copy(record_id, from_agency, kind, status, address)
        else:
            held[position] = found
    if held:
        read = _records_read(
            sql,
            agency_id,
            {row[0] for found in held.values() for row in found},
            {survivors.get(row[2], row[2]) for found in held.values() for row in found},
        )
        for position, found in held.items():
            refusals[position] = _read_refusal(items[position][0], found, read)
    return refusals


@functools.lru_cache(maxsize=256)
def _named_records(names: int, children: int) -> str:
    return _NAMED_RECORDS.format(placeholders(names), placeholders(children))


def _records_read(
    sql: HotSQL, agency_id: str, record_ids: set[str], children: Iterable[str]
) -> dict[str, set[str]]:
    """Of ``record_ids`` (records of ``children``, each the child it now is), those
    ``agency_id`` read on this hub, each with every category its reads were given. A read
    through a peer hub, by an agency of that hub bearing the same id, is not this agency's."""
    read: dict[str, set[str]] = {}
    entries: list[Any] = []
    for part in chunks(sorted(children), CHUNK):
        statement = with_in_list(_READ_BY_AGENCY, len(part))
        entries.extend(sql.rows(statement, (agency_id, *part, *part)))
    for (stored,) in entries:
        entry = orjson.loads(bytes(stored))
        record_id = entry.get("record_id")
        client = entry.get("actor", {}).get("client_id") or ""
        if record_id not in record_ids or client.startswith(PEER_CLIENT_PREFIX):
            continue
        categories = entry.get("decision", {}).get("categories", ())
        read.setdefault(record_id, set()).update(categories)
    return read


def _read_refusal(
    local_id: str, found: list[Any], read: dict[str, set[str]]
) -> ValidationFailure | None:
    """Why ``local_id`` is refused, when one of ``found`` (another agency's records of the
    item's child that it names) is a record the pusher read under that name: its id, or its
    local id when a read gave the local id. None when it read none: nothing is told of them."""
    for record_id, record_local_id, _child, owner, *_share, source, schema_ref in (
        row[:9] for row in found
    ):
        given = read.get(record_id)
        if given is None:
            continue
        envelope = envelope_categories(schema_ref)
        if local_id != record_id and (
            local_id != record_local_id or not _in(envelope, "local_id", given)
        ):
            continue
        # The holder as the reads gave it: the owner was given only with its category, and a
        # record transferred since (owner no longer its source) may have another owner than
        # the one a read gave.
        holder = owner if owner == source and _in(envelope, "owner", given) else None
        return _read_copy(record_id, holder)
    return None


def _in(envelope: dict[str, str | None], field: str, given: set[str]) -> bool:
    """Whether a reader given ``given`` categories was given the envelope ``field``."""
    category = envelope.get(field)
    return category is not None and category in given


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
        es += _NOT_ITS_OWN[0]
        en += _NOT_ITS_OWN[1]
    return ValidationFailure("/local_id", "conflict", es, en)


def _read_copy(record_id: str, holder: str | None) -> ValidationFailure:
    """Why an agency may not push, as its own, another agency's record it read. ``holder``:
    that agency, when the agency's reads were given it."""
    es = (
        f"{RECEIVED_COPY[0]}es el expediente {record_id}, que tiene "
        f"{holder or 'otra institución'} y que su institución consultó"
    )
    en = (
        f"{RECEIVED_COPY[1]}it is the record {record_id}, held by {holder or 'another agency'}, "
        "which your agency read"
    )
    return ValidationFailure("/local_id", "conflict", es + _NOT_ITS_OWN[0], en + _NOT_ITS_OWN[1])


_NOT_ITS_OWN = (
    ", y no le corresponde a su institución enviarlo como propio: el expediente propio de su "
    "institución sobre esta niña, niño o adolescente necesita un id local de su institución",
    ", and it is not your agency's to push as its own: your agency's own record of this child "
    "needs a local id of your agency's own",
)
