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

Such an export holds the records other agencies referred or transferred to the agency, or that it
may read under a consent, too, each named by its owner's local id: imported again, the hub refuses
them as the agency's own (:data:`exchange.received_copies.RECEIVED_COPY`), and
:class:`HeldElsewhere` counts them so that ``puente export`` can say so.

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
from sqlalchemy import select

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
    transferred to it, read by it under a consent, or transferred away by it): imported again,
    they are not stored as the agency's own. A reader not given a record's owner is not its
    owner (the owner is given every envelope field).

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


#: How many of an agency's shares :func:`children_of_agency` decides at once: each batch is one
#: query for the shares' announcing notices (their ids bound in it).
TOLD_BATCH = 500


def children_of_agency(app: Flask, agency_id: str) -> list[str]:
    """Children the agency holds, or was referred or transferred, a record of — each as the
    child it now is: a merged child's records are read through the child it was merged into,
    so listing both would export (and audit) them twice.

    A referral or transfer counts only once the agency was told of it
    (:func:`exchange.sharing.told_shares`), as for its reads and searches: one whose notice
    was withheld before it reached the agency (consent revoked meanwhile, the transfer
    withdrawn before its turn) told it nothing of the child (docs/consent.md §8.7), so the
    export neither decides nor audits reads of the child's records as the agency's, nor
    counts the child. A notice kept for the agency to read (``held``) and never handed out is
    decided here as ``GET /v1/notifications`` would decide it, and that is committed with its
    audit entry: permitted, the export hands the share's record out, so the notice counts as
    handed out (a later withdrawal or revocation is announced to the agency); refused, it is
    withheld for good."""
    from exchange.api.record_reads import HOLDING_SHARE_STATES
    from exchange.children import Child
    from exchange.records import Record
    from exchange.sharing import RecordShare, told_shares

    owned = select(Record.child_id).where(Record.owner_agency == agency_id)
    with app.app_context(), database(app).sessions() as session:
        linked = set(session.scalars(owned))
        # The rule applied in Python, a batch of shares at a time, rather than as SQL
        # (exchange.child_search.told_to_recipient in this statement's where): that form looks
        # through the agency's notices once for each share, which is quick on PostgreSQL but
        # grows with shares x notices on SQLite — measured with one notice of the share and one
        # other per share, 0.4 s for 1,000 shares, 3.6 s for 3,000, 56 s for 10,000 — while a
        # batch looks through them once for 500 shares (0.02 s, 0.14 s and 0.55 s on SQLite;
        # 0.5 s for 10,000 on PostgreSQL, where the SQL form took 0.05 s). The batches also
        # decide held notices as the read of the share's record would (the SQL form counts
        # them told without deciding), so the export and a read of the record agree.
        shares = session.scalars(
            select(RecordShare)
            .where(
                RecordShare.agency_id == agency_id,
                # Not a transfer refused or withdrawn: it gives the agency nothing.
                RecordShare.status.in_(HOLDING_SHARE_STATES),
                # Shares of its own records add no child (the previous owner's referral of a
                # record it took back, say).
                RecordShare.record_id.not_in(
                    select(Record.id).where(Record.owner_agency == agency_id)
                ),
            )
            .order_by(RecordShare.id)
        ).all()
        for start in range(0, len(shares), TOLD_BATCH):
            batch = shares[start : start + TOLD_BATCH]
            told = told_shares(session, agency_id, batch)
            records = sorted({share.record_id for share in batch if share.id in told})
            if records:
                linked.update(
                    session.scalars(select(Record.child_id).where(Record.id.in_(records)))
                )
        session.commit()  # held notices handed out or withheld, and their decisions' entries
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
