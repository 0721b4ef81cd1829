"""The export engine behind ``puente export``: the records an agency may read, decided one by
one exactly as the API decides them, handed to an adapter to write in its format.

Both ways read through the same decision as ``GET /v1/children/{child_id}/records``:

- through the API (``--hub``): that route itself, with the agency's token, one child at a time;
- on the hub's machine (administrator): the route's own service functions
  (:func:`exchange.disclosure.load_child` and :func:`exchange.api.record_reads.record_json`),
  so each record is decided by the consent engine, redacted to what the decision permits and
  audited as a read by the agency, for the purpose given.

Without ``--child`` (on the hub's machine only) the children are those the agency holds a
record of, or was referred or transferred a record of; each of their records is then decided
as the child's records list would decide it.

Such an export holds the records other agencies referred or transferred to the agency too,
each named by its owner's local id: imported again, the hub refuses them as the agency's own
(:data:`exchange.received_copies.RECEIVED_COPY`), and :class:`HeldElsewhere` counts them so that
``puente export`` can say so.

A **portable** export (``puente export --portable``) is for another hub, or another agency: it
leaves out what only this hub knows (:func:`portable_envelope`: the ``child_id``, a referral's
``hub_referral_id``), so each record is linked there by the agency's local id and the child's
identifiers, as a first push is; and it leaves out the records another agency holds
(:class:`HeldElsewhere` counts them), which are not the agency's to take elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask
from sqlalchemy import select, union

from exchange.children import resolve_child_id
from exchange.db import database
from exchange.hub_client import HubClient

if TYPE_CHECKING:
    from exchange.auth import Actor


def envelope_of(answer: dict[str, Any]) -> dict[str, Any]:
    """A read answer as a push envelope, the shape every adapter encodes."""
    # A record taken over by a transfer under the agency's own case id is written with that
    # id, so importing the file again updates the record instead of starting another.
    # A reader refused identity gets no local id (it can be the case number): the record id
    # stands in, so the line is still a valid envelope.
    local_id = answer.get("your_local_id") or answer["local_id"] or answer["record_id"]
    document = {"schema": answer["schema"], "local_id": local_id}
    if answer.get("child_id"):
        document["child_id"] = answer["child_id"]
    document["data"] = answer.get("data") or {}
    return document


def portable_envelope(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` without what only this hub knows: its ``child_id`` (the hub's pseudonymous
    id of the child, which no other hub issued and another agency may not know of) and each
    referral's ``hub_referral_id`` (a referral of this hub). Imported elsewhere, the record is
    linked by its local id and the child's identifiers (CURP, UNHCR number), as a first push
    is. ``document`` itself is left as it was."""
    portable = {key: value for key, value in document.items() if key != "child_id"}
    data = document.get("data")
    referrals = data.get("referrals") if isinstance(data, dict) else None
    if isinstance(referrals, list) and any(
        isinstance(referral, dict) and "hub_referral_id" in referral for referral in referrals
    ):
        portable["data"] = {
            **data,
            "referrals": [
                {key: value for key, value in referral.items() if key != "hub_referral_id"}
                if isinstance(referral, dict)
                else referral
                for referral in referrals
            ],
        }
    return portable


@dataclass
class HeldElsewhere:
    """Counts the records written that another agency than ``agency_id`` holds (referred or
    transferred to it, or transferred away by it): imported again, they are not stored as the
    agency's own. A reader not given a record's owner is not its owner (the owner is given
    every envelope field).

    ``portable``: each record is written as :func:`portable_envelope` gives it, and those
    another agency holds are left out (None) instead, still counted: not the agency's to
    take to another hub or agency."""

    agency_id: str
    count: int = 0
    portable: bool = False

    def envelope(self, answer: dict[str, Any]) -> dict[str, Any] | None:
        if answer.get("owner") != self.agency_id:
            self.count += 1
            if self.portable:
                return None
        document = envelope_of(answer)
        return portable_envelope(document) if self.portable else document


def purposes() -> tuple[str, ...]:
    from exchange.sharing import purpose_codes

    return purpose_codes()


def children_of_agency(app: Flask, agency_id: str) -> list[str]:
    """Children the agency holds, or was referred or transferred, a record of — each as the
    child it now is: a merged child's records are read through the child it was merged into,
    so listing both would export (and audit) them twice."""
    from exchange.api.record_reads import HOLDING_SHARE_STATES
    from exchange.children import Child
    from exchange.records import Record
    from exchange.sharing import RecordShare

    owned = select(Record.child_id).where(Record.owner_agency == agency_id)
    shared = (
        select(Record.child_id)
        .join(RecordShare, RecordShare.record_id == Record.id)
        .where(
            RecordShare.agency_id == agency_id,
            RecordShare.status.in_(HOLDING_SHARE_STATES),  # not a transfer refused or withdrawn
        )
    )
    with database(app).sessions() as session:
        linked = set(session.scalars(union(owned, shared)))
        # Merges are few hub-wide: list them, rather than bind every linked id in one query.
        merged = linked & set(
            session.scalars(select(Child.id).where(Child.merged_into.is_not(None)))
        )
        return sorted((linked - merged) | {resolve_child_id(session, c) for c in merged})


def agency_actor(app: Flask, agency_id: str) -> Actor | None:
    """The agency's system as a caller, as its own token would make it (``current_actor``):
    None when there is no such active agency."""
    from exchange.agencies import Agency
    from exchange.auth import Actor

    with database(app).sessions() as session:
        agency = session.get(Agency, agency_id)
        if agency is None or not agency.active:
            return None
        return Actor.for_agency(agency, scopes=agency.scopes)


def readable_directly(
    app: Flask,
    actor: Actor,
    purpose: str,
    child_ids: Iterable[str],
    held: HeldElsewhere | None = None,
) -> Iterator[dict[str, Any]]:
    """Each record of each child that ``actor`` may read for ``purpose``, redacted; every
    decision is committed to the audit log child by child. Run inside the app context.
    ``held`` counts those another agency holds."""
    written = held.envelope if held is not None else envelope_of
    from exchange.api.record_reads import record_json
    from exchange.disclosure import forget_child, load_child

    with database(app).sessions() as session:
        for child_id in child_ids:
            try:
                child = load_child(session, child_id)
            except LookupError:
                continue  # no such child: nothing to give, as for one the agency may not read
            reads = [
                record_json(session, actor, record, purpose, child) for record in child.records
            ]
            session.commit()
            forget_child(child.child_id)  # keep memory flat over many children
            for answer, _disclosure in reads:
                document = written(answer) if answer is not None else None
                if document is not None:
                    yield document


def readable_through_api(
    client: HubClient,
    purpose: str,
    child_ids: Iterable[str],
    held: HeldElsewhere | None = None,
) -> Iterator[dict[str, Any]]:
    written = held.envelope if held is not None else envelope_of
    for child_id in child_ids:
        for answer in client.child_records(child_id, purpose):
            document = written(answer)
            if document is not None:
                yield document


def encode_failure(adapter_name: str, records: int, error: Exception) -> tuple[str, str]:
    """An adapter whose ``encode`` raised (an installed one's fault), in Spanish and English,
    as ``puente import`` reports one that fails to decode (:func:`exchange.importer.guarded`):
    how far it got and what it raised. ``records`` it was handed, the last being the one it
    failed on (those before it written). The output file is replaced only once complete, so
    none was written."""
    raised = f"{type(error).__name__}: {error}"
    if records:
        where_es = f"en el expediente {records}, tras escribir {records - 1}"
        where_en = f"on record {records}, after writing {records - 1}"
    else:
        where_es, where_en = "antes del primer expediente", "before its first record"
    return (
        f"el adaptador «{adapter_name}» falló {where_es} ({raised}); no se escribió ningún "
        "archivo: corrija el adaptador y exporte de nuevo",
        f"the adapter '{adapter_name}' failed {where_en} ({raised}); no file was written: "
        "fix the adapter and export again",
    )
