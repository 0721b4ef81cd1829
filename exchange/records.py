"""Case records: append-only versions, encrypted at rest, and who may read them.

A record is the hub's copy of one agency's case file: the hub assigns ``record_id``, and
(pushing agency, ``local_id``) names the source's copy. An agency that takes a record over by
accepting a transfer gets an address for it in its own system (:class:`RecordAddress`: its own
local id, by default the record's), so its pushes update the record it now answers for. Every
push that changes the body adds a version (1, 2, …); nothing is ever updated in place. A
version stores the RFC 8785 canonical push body (``{"schema", "local_id", "child_id"?,
"data"}``) encrypted under the current data key, its SHA-256 in clear (for de-duplication and
the audit log), and the agency's ``Puente-Signature`` when there was one.

De-duplication: a push whose body equals the record's latest version (same ``body_sha256``)
stores nothing and answers that version (``unchanged``). Only the *latest* version counts, so
an agency that sets a record back to an earlier state is never ignored.

Pushing is in :mod:`exchange.record_push`; this module holds the tables and the reads. Who
may read what is decided by the consent engine (:mod:`exchange.disclosure`).
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from exchange.auth import as_utc
from exchange.children import merged_child_ids, resolve_child_id
from exchange.crypto import DataKeyError, DataKeyring
from exchange.db import Base
from exchange.signatures import body_sha256

RECORD_ID_PREFIX = "rec_"


def new_record_id() -> str:
    # Random, like child ids: the id says nothing about the agency or the order of arrival.
    return RECORD_ID_PREFIX + secrets.token_hex(12)


class Record(Base):
    """The hub's copy of one agency's case file; its content lives in its versions."""

    __tablename__ = "record"
    __table_args__ = (UniqueConstraint("source_agency", "local_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The agency that pushes it; with ``local_id`` it names the source's copy.
    source_agency: Mapped[str] = mapped_column(ForeignKey("agency.id"))
    local_id: Mapped[str] = mapped_column(String(200))
    #: The agency responsible for the case: the source, until a transfer is accepted.
    owner_agency: Mapped[str] = mapped_column(ForeignKey("agency.id"), index=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    #: Schema of the latest version (``case-record/1``).
    schema_ref: Mapped[str] = mapped_column(String(100))
    latest_version: Mapped[int] = mapped_column(Integer)
    latest_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecordAddress(Base):
    """The local id under which an agency that accepted a transfer of a record pushes it.

    Each agency names its records by its own case ids; the recipient of a transfer names the
    record it took over by the ``local_id`` it gave when it accepted (by default the record's
    own). Its pushes with that local id are versions of this record: the push path looks
    addresses up before (agency, ``local_id``) of the records the agency created itself, and
    accepting refuses a local id that already names another of the agency's records, so a
    local id names one record per agency. An address is kept when the record moves on: the
    agency's later pushes under it are refused (the record was transferred), never stored as
    a new record of a new child.
    """

    __tablename__ = "record_address"

    agency_id: Mapped[str] = mapped_column(ForeignKey("agency.id"), primary_key=True)
    local_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("record.id"))
    #: The accepted transfer that gave the address.
    transfer_id: Mapped[str] = mapped_column(ForeignKey("record_share.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecordVersion(Base):
    """One pushed body, encrypted; never changed except to re-encrypt it under a new key."""

    __tablename__ = "record_version"
    __table_args__ = (UniqueConstraint("record_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("record.id"))
    version: Mapped[int] = mapped_column(Integer)
    schema_ref: Mapped[str] = mapped_column(String(100))
    #: SecretBox output (nonce ‖ ciphertext) of the canonical push body.
    body_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    data_key_id: Mapped[str] = mapped_column(String(64), index=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    #: The detached JWS the agency sent (``Puente-Signature``), and the key it named.
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    signing_kid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pushed_by: Mapped[str] = mapped_column(ForeignKey("agency.id"))


class IdempotencyKey(Base):
    """The first answer to a push sent with an ``Idempotency-Key``, replayed to retries."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("agency_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agency.id"))
    key: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of the canonical body: a retry must send the same body.
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordBody:
    """A decrypted version: the push envelope as the agency sent it (canonical form)."""

    version: RecordVersion
    envelope: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.envelope.get("data")


def decrypt_version(keyring: DataKeyring, version: RecordVersion) -> RecordBody:
    """Decrypt and check a stored body against its digest (which also catches a ciphertext
    copied from another row: SecretBox has no associated data)."""
    canonical = keyring.decrypt(version.data_key_id, version.body_ciphertext)
    if body_sha256(canonical) != version.body_sha256:
        raise DataKeyError(
            f"body of {version.record_id} v{version.version} does not match its digest"
        )
    return RecordBody(version, json.loads(canonical))


def latest_body(session: Session, keyring: DataKeyring, record: Record) -> RecordBody:
    version = session.scalars(
        select(RecordVersion).where(
            RecordVersion.record_id == record.id,
            RecordVersion.version == record.latest_version,
        )
    ).one()
    return decrypt_version(keyring, version)


def latest_bodies(
    session: Session, keyring: DataKeyring, records: Iterable[Record]
) -> dict[str, RecordBody]:
    """The latest version of each of ``records``, decrypted, by record id: one statement for
    them all (a child's records are read together on every read of one of them). A record
    whose stored latest version is not the one ``record`` names (a push committed meanwhile)
    is read as :func:`latest_body` reads it, so each body is the version its record names."""
    wanted = {record.id: record for record in records}
    if not wanted:
        return {}
    found = {
        version.record_id: version
        for version in session.scalars(_latest_versions_statement(), {"ids": sorted(wanted)})
    }
    bodies = {}
    for record_id, record in wanted.items():
        version = found.get(record_id)
        bodies[record_id] = (
            decrypt_version(keyring, version)
            if version is not None and version.version == record.latest_version
            else latest_body(session, keyring, record)
        )
    return bodies


@functools.cache
def _latest_versions_statement() -> Any:
    # Built once: it runs on every read of a child's data.
    return (
        select(RecordVersion)
        .join(
            Record,
            (Record.id == RecordVersion.record_id)
            & (Record.latest_version == RecordVersion.version),
        )
        .where(Record.id.in_(bindparam("ids", expanding=True)))
    )


def list_versions(session: Session, record: Record) -> list[RecordVersion]:
    return list(
        session.scalars(
            select(RecordVersion)
            .where(RecordVersion.record_id == record.id)
            .order_by(RecordVersion.version)
        )
    )


def current_child_id(session: Session, child_id: str) -> str:
    """The child a record's ``child_id`` now is, after any merges (the child index's rule)."""
    return resolve_child_id(session, child_id)


def child_family(session: Session, child_id: str) -> set[str]:
    """The child ``child_id`` now is and every child merged into it; empty when unknown, so a
    caller cannot tell an unknown child from one with nothing it may read."""
    try:
        return set(merged_child_ids(session, child_id))
    except LookupError:
        return set()


def records_of_children(session: Session, child_ids: set[str]) -> list[Record]:
    return list(session.scalars(_records_of_children_statement(), {"ids": sorted(child_ids)}))


@functools.cache
def _records_of_children_statement() -> Any:
    # Built once: this runs on every read of a child's data.
    ids = bindparam("ids", expanding=True)
    return select(Record).where(Record.child_id.in_(ids)).order_by(Record.created_at)


def record_named(session: Session, agency_id: str, local_id: str) -> str | None:
    """The id of the record an agency's push with ``local_id`` updates, if any: the record
    addressed so for the agency (:class:`RecordAddress`), else the one it created under it.
    The push path (:mod:`exchange.record_push`) decides in the same order."""
    addressed = session.scalars(
        select(RecordAddress.record_id).where(
            RecordAddress.agency_id == agency_id, RecordAddress.local_id == local_id
        )
    ).first()
    if addressed is not None:
        return addressed
    return session.scalars(
        select(Record.id).where(Record.source_agency == agency_id, Record.local_id == local_id)
    ).first()


#: The record data each envelope field repeats, so that it is disclosed under that field's
#: category: the local id is the agency's case number (``identity``); the owner, the source
#: and the agency that pushed a version (and the key it signed with) name who handles the case, like
#: ``/case/owner/agency_id`` (``protection_concerns``) — after a transfer they say which state
#: now has the child.
ENVELOPE_MIRRORS = {
    "local_id": "/case/case_number",
    "owner": "/case/owner/agency_id",
    "source": "/case/owner/agency_id",
    "pushed_by": "/case/owner/agency_id",
    # The key that signed a push names the agency that pushed it.
    "signing_kid": "/case/owner/agency_id",
}


@functools.cache
def envelope_categories(schema_ref: str) -> dict[str, str | None]:
    """Each envelope field's category under ``schema_ref`` (None, withheld from every reader
    but the owner, when the schema has no such field)."""
    from schemas.registry import default_registry

    name, _, version = schema_ref.partition("/")
    leaves = default_registry().leaf_categories(name, int(version))
    return {field: leaves.get(pointer) for field, pointer in ENVELOPE_MIRRORS.items()}


def _disclosed(
    schema_ref: str, described: dict[str, Any], permitted: frozenset[str] | None
) -> dict[str, Any]:
    """``described`` with each envelope field the reader is not given set to null."""
    if permitted is None:
        return described
    categories = envelope_categories(schema_ref)
    return {
        key: None if key in categories and categories[key] not in permitted else value
        for key, value in described.items()
    }


def describe_record(
    record: Record,
    child_id: str,
    *,
    permitted: frozenset[str] | None = None,
    local_id: str | None = None,
) -> dict[str, Any]:
    """The record's envelope. ``permitted``: the categories the reader is given, for a reader
    other than the owner (None: the owner, given every field); ``local_id``: the owner's own
    case id for the record, when it took it over under one."""
    described = {
        "record_id": record.id,
        "version": record.latest_version,
        "child_id": child_id,
        "schema": record.schema_ref,
        "local_id": local_id or record.local_id,
        "owner": record.owner_agency,
        "source": record.source_agency,
    }
    return _disclosed(record.schema_ref, described, permitted)


def describe_version(
    version: RecordVersion, *, permitted: frozenset[str] | None = None
) -> dict[str, Any]:
    """A version's envelope; ``permitted`` as for :func:`describe_record`."""
    described = {
        "version": version.version,
        "schema": version.schema_ref,
        "body_sha256": version.body_sha256,
        "pushed_at": as_utc(version.pushed_at).isoformat(),
        "pushed_by": version.pushed_by,
        "signed": version.signature is not None,
        "signing_kid": version.signing_kid,
    }
    return _disclosed(version.schema_ref, described, permitted)
