"""Pushing case records, one at a time or in bulk: checked, signed, idempotent, append-only.

Each push body is made canonical (RFC 8785) once; those bytes are what the agency signs
(``Puente-Signature``), what ``body_sha256`` digests, and what is encrypted at rest. A push is
checked (signature, then schema), linked to a child, and stored as the record's next version,
together with its audit entry, in one transaction: a push is stored whole or not at all.

Which record a push updates: the one the pushing agency addresses by that ``local_id``
(:class:`exchange.records.RecordAddress`, given to the agency that accepted a transfer of the
record), else the one it created under that ``local_id``, else a new one. A push to a record
another agency now answers for (it was transferred) is refused with ``409 conflict``, naming
the agency the pusher transferred it to. A push to an addressed record is linked to that
record's child, so the recipient of a transfer never starts a second identity for the child.

Concurrency: (agency, local id) and (record, version) are unique in the database, so two
processes racing to create a record or the same version cannot both win; the loser's
transaction rolls back and is tried again from the start (:data:`MAX_ATTEMPTS`). Addresses are
written by accepting a transfer, in another table: on PostgreSQL a push holds its agency's row
(``FOR KEY SHARE``) from before it looks its local ids up until it commits, and the accept
takes that row ``FOR UPDATE`` before it checks that the local id is free, so a push cannot
create a record under a local id that an accept is giving to another record meanwhile (on
SQLite, pushes and accepts are serialised by the one write lock).

Single pushes may carry an ``Idempotency-Key`` (:mod:`exchange.idempotency`); bulk pushes
(:mod:`exchange.record_bulk`) reuse the checks and the storing here.

A record another agency holds and the pushing agency received — referred or transferred to it, or
read by it under a consent — is not the pusher's to push: a push naming such a record's child and
its local id (or its id), as the pusher's own export of it does, is refused with ``409 conflict``
(:mod:`exchange.received_copies`) instead of being stored as a new record of the pusher's, which
would outlive the referral and the consent behind it. This is looked up only for a push that would
create a record naming its child, or that names another child than its record's: the ordinary push
costs nothing more.

A push creating a record may name its child (``child_id``) only if the pushing agency may
know that child (:func:`exchange.child_search.children_known_to`, the rule child search
answers by); any other child id is refused exactly as one that does not exist, so a push is no
existence oracle and cannot attach records to another agency's child. An agency's first record
of a child links by the child's identifiers (CURP, UNHCR number) instead — not to a child the
record clearly is not: then it starts a child of its own for a person to merge or set apart,
and the answer warns of it (``warnings``, with a CURP that contradicts its record; the audit
entry's reason code names the other child: :mod:`exchange.child_linking`). Answers name the
child a record belongs to now, after any merge, as reads do.

Statements on the hot path are plain SQL run on the session's DBAPI connection
(:mod:`exchange.hot_sql`): on a small push SQLAlchemy's per-statement work costs more than the
database itself.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from exchange import audit_log, idempotency
from exchange.agencies import Agency
from exchange.auth import Actor, utcnow
from exchange.child_linking import LinkNote, LinkRequest, follow_merges, link_children
from exchange.child_search import children_known_to
from exchange.crypto import DataKeyring
from exchange.hot_sql import HotSQL, chunks, insert_sql, update_sql, with_in_list
from exchange.lost_parts import note_lost_parts
from exchange.received_copies import received_copies
from exchange.records import Record, RecordVersion, current_child_id, new_record_id
from exchange.signatures import (
    SignatureError,
    VerifiedSignature,
    agency_signing_keys,
    body_sha256,
    canonical_json,
    verify_detached,
)
from exchange.write_turns import write_turn
from schemas.envelope import UNSUPPORTED_SCHEMA, check_envelope
from schemas.registry import SchemaRegistry
from schemas.validation import ValidationFailure

log = logging.getLogger("puente.push")

#: The records endpoints take case records only.
ACCEPTED_SCHEMAS = frozenset({"case-record"})
#: The purpose a push naming a child is weighed for: None, any purpose. The agency may name a
#: child it may know of for some purpose (it holds one of the child's records, or the consent
#: engine permits it ``identity`` for a purpose), as search would show it that child.
PUSH_PURPOSE = None
MAX_ATTEMPTS = 8

_RECORDS = cast(Table, Record.__table__)
_VERSIONS = cast(Table, RecordVersion.__table__)
_PUSH_FLAGS = "SELECT active, require_signature FROM agency WHERE id = ?"
# The records the agency's local ids name: those it created (addressed = 0) and those it
# took over by a transfer (addressed = 1, under the local id it gave when it accepted).
_RECORD_STATES = (
    "SELECT r.id, named.local_id, r.owner_agency, r.child_id, r.latest_version,"
    " r.latest_sha256, named.addressed FROM record r JOIN ("
    "SELECT id AS record_id, local_id, 0 AS addressed FROM record"
    " WHERE source_agency = ? AND local_id IN {0}"
    " UNION ALL SELECT record_id, local_id, 1 FROM record_address"
    " WHERE agency_id = ? AND local_id IN {0}"
    ") named ON r.id = named.record_id ORDER BY r.id"
)
# On PostgreSQL the rows are locked (in id order, so concurrent batches cannot deadlock) until
# the push commits: a concurrent push of the same record waits and then sees the new version.
_RECORD_STATES_LOCKED = _RECORD_STATES + " FOR UPDATE OF r"
# Taken before the records are looked up (PostgreSQL): an accept that gives one of these local
# ids to a transferred record waits for this push, or this push waits for it and then sees it.
_HOLD_AGENCY = "SELECT id FROM agency WHERE id = ? FOR KEY SHARE"
# The body digests of every version of some records, with their version numbers (a bulk line
# equal to any of them is "unchanged", and says which earlier version it equals).
_VERSION_DIGESTS = (
    "SELECT record_id, body_sha256, version FROM record_version WHERE record_id IN {}"
)
_TRANSFERRED_TO = (
    "SELECT agency_id FROM record_share WHERE record_id = ? AND from_agency = ?"
    " AND kind = 'transfer' AND status = 'accepted' ORDER BY decided_at DESC LIMIT 1"
)
_RECORD_COLUMNS = (
    "id",
    "source_agency",
    "local_id",
    "owner_agency",
    "child_id",
    "schema_ref",
    "latest_version",
    "latest_sha256",
    "created_at",
    "updated_at",
)
_INSERT_RECORDS = insert_sql(_RECORDS, _RECORD_COLUMNS)
_UPDATE_RECORDS = update_sql(
    _RECORDS, ("latest_version", "latest_sha256", "schema_ref", "updated_at"), ["id"]
)
_VERSION_COLUMNS = (
    "record_id",
    "version",
    "schema_ref",
    "body_ciphertext",
    "data_key_id",
    "body_sha256",
    "signature",
    "signing_kid",
    "pushed_at",
    "pushed_by",
)
_INSERT_VERSIONS = insert_sql(_VERSIONS, _VERSION_COLUMNS)
#: Local ids per state query (a bulk batch is smaller, so it is one statement).
STATE_CHUNK = 2000
_NO_VERSIONS: Mapping[str, int] = {}


def failure(pointer: str, keyword: str, es: str, en: str) -> ValidationFailure:
    return ValidationFailure(pointer, keyword, es, en)


#: A push naming another child than the one its record is linked to. They may be one child
#: recorded twice (a merge joins them) or two children under one local id (then each record
#: needs its own local id): the hub cannot tell which.
ANOTHER_CHILD = failure(
    "/child_id",
    "child_id",
    "el expediente ya está vinculado a otra niña, niño o adolescente: si es la misma persona, "
    "pida a la administración del nodo que fusione los registros; si es otra, dé a su "
    "expediente un id local propio",
    "the record is already linked to another child: if it is the same child, ask the hub "
    "administrators to merge the two; if it is another child, give its record a local id of "
    "its own",
)


@dataclass
class PushItem:
    """A push that passed its checks, ready to store."""

    line: int
    local_id: str
    child_id: str | None
    schema_ref: str
    data: dict[str, Any]
    canonical: bytes
    body_sha256: str
    signature: VerifiedSignature | None = None


@dataclass
class PushResult:
    """What became of one push (or one bulk line)."""

    line: int
    status: str  # stored | unchanged | rejected
    record_id: str | None = None
    version: int | None = None
    child_id: str | None = None
    body_sha256: str | None = None
    audit_entry: str | None = None
    #: For a rejection: the problem kind (validation, unsupported-schema, bad-signature,
    #: conflict) and every reason, each with its JSON pointer.
    problem: str | None = None
    failures: list[ValidationFailure] = field(default_factory=list)
    #: For a stored version after the first: the parts the version it replaced had and it
    #: lacks (:mod:`exchange.lost_parts`), answered only when there are some.
    lost_parts: tuple[str, ...] = ()
    #: For a bulk line answered ``unchanged`` because it equals an *earlier* version of its
    #: record, not the latest (``version``): that earlier version. The line was not applied:
    #: the record keeps its newer version (a file sent again never brings an older one back).
    older_version: int | None = None
    #: What the push is told about how its record was linked (:class:`LinkNote`: an
    #: identifier naming a child the record clearly is not, a CURP contradicting the record),
    #: each ``{code, pointer, es, en}``; answered only when there are some.
    warnings: list[dict[str, str]] = field(default_factory=list)
    #: The push's audit reason code when its record was linked apart from the child one of its
    #: identifiers names (:attr:`LinkNote.audit_code`).
    linked_apart: str | None = None

    @property
    def http_status(self) -> int:
        return 201 if self.status == "stored" else 200

    def answer(self) -> dict[str, Any]:
        """The body of a single push's answer."""
        answer: dict[str, Any] = {
            "record_id": self.record_id,
            "version": self.version,
            "child_id": self.child_id,
            "body_sha256": self.body_sha256,
            "audit_entry": self.audit_entry,
            "status": self.status,
        }
        if self.lost_parts:
            answer["lost_parts"] = list(self.lost_parts)
        if self.older_version is not None:
            answer["older_version"] = self.older_version
        if self.warnings:
            answer["warnings"] = self.warnings
        return answer

    def line_json(self, lang: str) -> dict[str, Any]:
        """One line of a bulk push's answer."""
        if self.status == "rejected":
            return {
                "line": self.line,
                "status": self.status,
                "problem": self.problem,
                # Both languages besides the asked-for one: a client that files rejects for
                # people (puente import's rejects file) keeps Spanish and English alike.
                "errors": [{**each.to_json(lang), **each.to_json()} for each in self.failures],
            }
        return {"line": self.line, "status": self.status, **self.answer()}


def nul_failures(document: Any, pointer: str = "") -> list[ValidationFailure]:
    """Where ``document`` holds U+0000: text no field may hold (PostgreSQL's text cannot).
    Documents parsed from JSON never do (schemas.parsing refuses it); an adapter's may."""
    if isinstance(document, str):
        if "\x00" not in document:
            return []
        return [
            failure(
                pointer or "/",
                "nul-character",
                "contiene el carácter nulo \\u0000, que ningún texto puede llevar",
                "contains the NUL character \\u0000, which no text may hold",
            )
        ]
    found: list[ValidationFailure] = []
    if isinstance(document, dict):
        for key, value in document.items():
            child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            found += nul_failures(key, child) + nul_failures(value, child)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += nul_failures(value, f"{pointer}/{index}")
    return found


def rejected(line: int, problem: str, *failures: ValidationFailure) -> PushResult:
    return PushResult(line, "rejected", problem=problem, failures=list(failures))


def canonical_body(document: Any, *, source: bytes | None = None) -> tuple[bytes, str]:
    """The canonical bytes of a push body and their SHA-256 (raises ``ValueError``).
    ``source``: the JSON text ``document`` was parsed from, if at hand (it saves time)."""
    canonical = canonical_json(document, source=source)
    return canonical, body_sha256(canonical)


def push_flags(session: Session, agency_id: str) -> tuple[bool, bool] | None:
    """``(active, require_signature)`` of an agency, or ``None`` if there is no such agency."""
    row = HotSQL(session).first(_PUSH_FLAGS, (agency_id,))
    return (bool(row[0]), bool(row[1])) if row else None


@dataclass
class _RecordState:
    id: str
    owner: str
    child_id: str
    version: int
    sha256: str
    new: bool
    schema_ref: str = ""
    touched: bool = False

    def result(
        self, item: PushItem, status: str, *, older_version: int | None = None
    ) -> PushResult:
        # "unchanged" answers the latest version, with its digest: the body sent may differ
        # from it by a child_id naming the record's own child (_version_holding), or equal an
        # earlier version (``older_version``), which is not brought back.
        digest = self.sha256 if status == "unchanged" else item.body_sha256
        return PushResult(
            item.line,
            status,
            self.id,
            self.version,
            self.child_id,
            digest,
            older_version=older_version,
        )


def retryable(error: Exception) -> bool:
    if isinstance(error, IntegrityError):
        return True  # a concurrent push created the same record, version or child link
    code = getattr(getattr(error, "orig", None), "sqlstate", None)
    return code in {"40001", "40P01"} or "database is locked" in str(error)


class Pusher:
    """Pushes by one agency within one request (or one bulk request)."""

    def __init__(
        self,
        session: Session,
        agency_id: str,
        *,
        require_signature: bool,
        keyring: DataKeyring,
        registry: SchemaRegistry,
        actor_person: str | None = None,
        request_id: str | None = None,
        idempotency_hours: float = 24,
        actor: Actor | None = None,
    ) -> None:
        """``actor``: the caller as the consent engine sees it (by default the agency's own
        system), weighed when a push names a child."""
        self.session = session
        self.agency_id = agency_id
        self._actor = actor
        self.require_signature = require_signature
        self.keyring = keyring
        self.registry = registry
        self.actor_person = actor_person
        self.request_id = request_id
        self.idempotency_ttl = timedelta(hours=idempotency_hours)
        #: record id -> why this agency may no longer push it (it transferred the record).
        self._transfer_refusals: dict[str, ValidationFailure] = {}

    @cached_property
    def signing_keys(self) -> dict[str, dict[str, Any]]:
        # Loaded only when a push carries a signature.
        return agency_signing_keys(self.session.get_one(Agency, self.agency_id))

    @cached_property
    def actor(self) -> Actor:
        # Built only when a push names a child.
        if self._actor is not None:
            return self._actor
        return Actor.for_agency(self.session.get_one(Agency, self.agency_id), scopes=())

    # -- checks ------------------------------------------------------------------------------

    def check(
        self,
        document: Any,
        canonical: bytes,
        sha256: str,
        signature: str | None,
        *,
        line: int = 0,
        signature_pointer: str = "",
    ) -> PushItem | PushResult:
        """Signature first (an unauthenticated body's content is not examined), then schema."""
        verified = self.check_signature(
            canonical, signature, line=line, signature_pointer=signature_pointer
        )
        if isinstance(verified, PushResult):
            return verified
        outcome = check_envelope(document, self.registry, allowed=ACCEPTED_SCHEMAS)
        failures = outcome.failures
        if not failures and b"\\u0000" in canonical:  # how RFC 8785 writes U+0000
            failures = nul_failures(document)
        if failures:
            unsupported = any(f.keyword == UNSUPPORTED_SCHEMA for f in failures)
            return rejected(line, "unsupported-schema" if unsupported else "validation", *failures)
        assert outcome.schema is not None
        return PushItem(
            line=line,
            local_id=document["local_id"],
            child_id=document.get("child_id"),
            schema_ref="/".join(outcome.schema),
            data=document["data"],
            canonical=canonical,
            body_sha256=sha256,
            signature=verified,
        )

    def check_signature(
        self,
        canonical: bytes,
        signature: str | None,
        *,
        line: int = 0,
        signature_pointer: str = "",
    ) -> VerifiedSignature | PushResult | None:
        """The verified signature (``None``: unsigned, and the agency need not sign), or the
        ``bad-signature`` rejection."""
        if signature is not None:
            try:
                return verify_detached(signature, canonical, self.signing_keys)
            except SignatureError as error:
                return rejected(
                    line,
                    "bad-signature",
                    failure(signature_pointer, "signature", error.message_es, error.message_en),
                )
        if self.require_signature:
            # Where the signature goes: the header of a single push, the member of a bulk line.
            where_es, where_en = (
                ("el miembro «signature» de la línea", "the line's 'signature' member")
                if signature_pointer
                else ("el encabezado Puente-Signature", "the Puente-Signature header")
            )
            return rejected(
                line,
                "bad-signature",
                failure(
                    signature_pointer,
                    "signature",
                    f"esta institución debe firmar sus envíos: falta la firma en {where_es}",
                    f"this agency must sign its pushes: the signature is missing from {where_en}",
                ),
            )
        return None

    def audit_rejection(self, result: PushResult) -> None:
        """Refused signatures are recorded: a forged push is something oversight must see."""
        audit_log.record_event(
            self.session,
            action="record.pushed",
            outcome="failure",
            actor_agency=self.agency_id,
            actor_person=self.actor_person,
            request_id=self.request_id,
            detail="bad_signature",
        )

    # -- storing -----------------------------------------------------------------------------

    def store(
        self, items: list[PushItem], *, bulk_stored: Collection[str] | None = None
    ) -> list[PushResult]:
        """Store ``items`` in the session's transaction (no commit): one result per item.

        An item equal to its record's latest version stores nothing and answers
        ``unchanged``. The lines of a bulk push (``bulk_stored``: the records earlier batches
        of the push stored a version of) also answer ``unchanged``, naming the latest version,
        when they equal *any* version their record holds: a file sent again, whole or in part,
        never brings an older version back — neither while nor after others push newer ones.
        A record an earlier line of the same push stored is compared with its latest version
        only, so a file changing a record to x and back ends at what its last line says. (A
        single push may set a record back to an earlier state; its retries are told apart by
        ``Idempotency-Key``.) A line equal to an earlier version but not to the latest says
        which (``older_version``): it was not applied, which its sender must be told.

        Raises ``IntegrityError`` when a concurrent push won a race; the caller rolls back
        and tries again.
        """
        session, agency_id, now = self.session, self.agency_id, utcnow()
        session.flush()  # ORM changes first: the statements below bypass the ORM
        sql = HotSQL(session)
        if sql.is_sqlite:
            sql.hold_sqlite_write_lock()  # before reading the records' state
        else:
            sql.first(_HOLD_AGENCY, (agency_id,))
        states, addressed = _record_states(sql, agency_id, {item.local_id for item in items})
        # A record keeps the child id it was linked to; after a merge, answers (and the push's
        # audit entry) name the child it is now, as reads do.
        survivors = follow_merges(sql, session, {state.child_id for state in states.values()})
        for state in states.values():
            state.child_id = survivors.get(state.child_id, state.child_id)
        held: dict[str, dict[str, int]] = {}
        if bulk_stored is not None:
            held = _bodies_held(sql, states, items, bulk_stored)
        results: list[PushResult | None] = []
        # Local ids an earlier item of this batch may store a version of: a later item of the
        # same record is compared with that version, not with the ones before the batch (a
        # batch changing a record to x and back must end at y, not answer y "unchanged").
        pending: set[str] = set()
        for item in items:
            state = states.get(item.local_id)
            refusal = self._refuse_update(item, state) if state is not None else None
            equal = None
            if refusal is None and state is not None and item.local_id not in pending:
                equal = _version_holding(state, item, held.get(state.id, {}))
            if refusal is not None:
                results.append(refusal)
            elif state is not None and equal is not None:
                older = equal if equal != state.version else None
                results.append(state.result(item, "unchanged", older_version=older))
            else:
                results.append(None)
                pending.add(item.local_id)
        self._refuse_received_copies(sql, items, results, states)
        # A new record may name only a child its agency may know of (an existing record's
        # child_id must be its own child: _refuse_update).
        named = [
            (position, item)
            for position, item in enumerate(items)
            if results[position] is None and item.child_id and item.local_id not in states
        ]
        if named:
            known = children_known_to(
                session,
                self.actor,
                PUSH_PURPOSE,
                [item.child_id for _, item in named if item.child_id],
                keyring=self.keyring,
            )
            for position, item in named:
                if item.child_id not in known:
                    results[position] = _unknown_child(item)
        to_link = [item for item, result in zip(items, results, strict=True) if result is None]
        # Also for a new version of a known record: the child index keeps each source
        # record's identifiers and profile current for search and duplicate detection.
        # One call for the whole batch: linking one record at a time dominates a bulk push.
        # A record taken over by a transfer is linked to its own child: the recipient's local
        # id is new to the child index, and must not start a new child.
        linked_to = {local_id: states[local_id].child_id for local_id in addressed}
        notes: dict[int, list[LinkNote]] = {}
        children = iter(
            link_children(
                session,
                agency_id=agency_id,
                requests=[
                    LinkRequest(i.local_id, i.child_id or linked_to.get(i.local_id), i.data)
                    for i in to_link
                ],
                may_know=self._children_it_may_know,
                sql=sql,
                notes=notes,
            )
        )
        pushed_at = sql.binder(_VERSIONS.c.pushed_at)(now)
        versions: list[tuple[Any, ...]] = []
        linked = -1  # the position in to_link, which notes are keyed by
        for position, item in enumerate(items):
            if results[position] is not None:
                continue
            child_id = next(children)
            linked += 1
            if isinstance(child_id, LookupError):
                results[position] = _unknown_child(item)
                continue
            state = states.get(item.local_id)
            if state is None:
                state = _RecordState(new_record_id(), agency_id, child_id, 0, "", new=True)
                states[item.local_id] = state
            elif _version_holding(state, item) is not None:  # what an earlier item stored
                results[position] = state.result(item, "unchanged")
                continue
            state.version += 1
            state.sha256, state.schema_ref, state.touched = item.body_sha256, item.schema_ref, True
            key_id, ciphertext = self.keyring.encrypt(item.canonical)
            signature = item.signature
            versions.append(
                (  # in the order of _VERSION_COLUMNS
                    state.id,
                    state.version,
                    item.schema_ref,
                    ciphertext,
                    key_id,
                    item.body_sha256,
                    signature.jws if signature else None,
                    signature.kid if signature else None,
                    pushed_at,
                    agency_id,
                )
            )
            results[position] = stored = state.result(item, "stored")
            for note in notes.get(linked, ()):
                stored.warnings.append(note.warning("/data"))
                stored.linked_apart = stored.linked_apart or note.audit_code
        self._write(sql, states, versions, now)
        done = [result for result in results if result is not None]
        for result in done:
            if result.status != "rejected":
                result.audit_entry = self._audit_push(result)
        return done

    def _children_it_may_know(self, child_ids: set[str]) -> set[str]:
        """Of ``child_ids``, those the pushing agency may know (the rule child search uses).

        Most are its own children (a CURP seen in its earlier records): one query finds
        those; only the others are loaded and decided, which costs milliseconds a child."""
        sql = HotSQL(self.session)
        own = {
            child_id
            for (child_id,) in sql.rows_in(
                "SELECT DISTINCT child_id FROM record WHERE owner_agency = ? AND child_id IN {}",
                (self.agency_id,),
                sorted(child_ids),
                chunk=STATE_CHUNK,
            )
        }
        others = child_ids - own
        if not others:
            return own
        return own | set(
            children_known_to(self.session, self.actor, PUSH_PURPOSE, others, keyring=self.keyring)
        )

    def _refuse_update(self, item: PushItem, state: _RecordState) -> PushResult | None:
        if state.owner != self.agency_id:
            return rejected(item.line, "conflict", self._transferred(state))
        if item.child_id and item.child_id != state.child_id:
            session = self.session
            try:
                same_child = current_child_id(session, item.child_id) == current_child_id(
                    session, state.child_id
                )
            except LookupError:  # an unknown child_id cannot be this record's child
                same_child = False
            if not same_child:
                return rejected(item.line, "validation", ANOTHER_CHILD)
        return None

    def _refuse_received_copies(
        self,
        sql: HotSQL,
        items: list[PushItem],
        results: list[PushResult | None],
        states: dict[str, _RecordState],
    ) -> None:
        """Refuse, in ``results``, the items that would store a record another agency holds
        and this one received — referred or transferred to it, or read by it — as this
        agency's own (:mod:`exchange.received_copies`): a new record naming its child, or a
        push naming another child than its record's (the line of an export of the received
        record, its local id being one this agency also uses).

        Only those items are looked at, so the ordinary push costs nothing more."""
        looked = []
        for position, (item, result) in enumerate(zip(items, results, strict=True)):
            if not item.child_id:
                continue
            if (result is None and item.local_id not in states) or (
                result is not None and result.failures == [ANOTHER_CHILD]
            ):
                looked.append(position)
        if not looked:
            return
        refusals = received_copies(
            sql,
            self.session,
            self.agency_id,
            [(items[position].local_id, items[position].child_id) for position in looked],
        )
        for position, refusal in zip(looked, refusals, strict=True):
            if refusal is not None:
                results[position] = rejected(items[position].line, "conflict", refusal)

    def _transferred(self, state: _RecordState) -> ValidationFailure:
        """Why an agency may no longer push a record: it transferred it. The agency it
        transferred the record to is named (it chose it); the agency answering for it now only
        when that is the same one (a later transfer was not the pusher's to know of)."""
        known = self._transfer_refusals.get(state.id)
        if known is not None:  # a file sent again may hold many lines of one record
            return known
        row = HotSQL(self.session).first(_TRANSFERRED_TO, (state.id, self.agency_id))
        to = row[0] if row else None
        if to is None:
            es = "el expediente fue transferido a otra institución, que ahora lo actualiza"
            en = "the record was transferred to another agency, which now updates it"
        elif to == state.owner:
            es = f"el expediente fue transferido a {to}, que ahora lo actualiza"
            en = f"the record was transferred to {to}, which now updates it"
        else:
            es = f"el expediente fue transferido a {to}; su institución ya no lo actualiza"
            en = f"the record was transferred to {to}; your agency no longer updates it"
        refusal = self._transfer_refusals[state.id] = failure("/local_id", "conflict", es, en)
        return refusal

    def _write(
        self,
        sql: HotSQL,
        states: dict[str, _RecordState],
        versions: list[tuple[Any, ...]],
        now: Any,
    ) -> None:
        stamp = sql.binder(_RECORDS.c.updated_at)(now)
        new_rows = [
            (  # in the order of _RECORD_COLUMNS
                s.id,
                self.agency_id,
                local_id,
                self.agency_id,
                s.child_id,
                s.schema_ref,
                s.version,
                s.sha256,
                stamp,
                stamp,
            )
            for local_id, s in states.items()
            if s.new and s.touched
        ]
        # Sorted, so concurrent batches lock rows in the same order (no deadlock).
        # (Two local ids of one agency may name one record: each record once.)
        touched = {s.id: s for s in states.values() if s.touched and not s.new}
        changed = [
            (s.version, s.sha256, s.schema_ref, stamp, s.id)
            for s in sorted(touched.values(), key=lambda s: s.id)
        ]
        for statement, rows in (
            (_INSERT_RECORDS, new_rows),
            (_UPDATE_RECORDS, changed),
            (_INSERT_VERSIONS, versions),
        ):
            if rows:
                sql.executemany(statement, rows)

    def _audit_push(self, result: PushResult) -> str | None:
        return audit_log.record_event(
            self.session,
            action="record.pushed",
            outcome="success",
            actor_agency=self.agency_id,
            actor_person=self.actor_person,
            child_id=result.child_id,
            record_id=result.record_id,
            record_version=result.version,
            body_sha256=result.body_sha256,
            request_id=self.request_id,
            detail="unchanged" if result.status == "unchanged" else result.linked_apart,
        )

    def store_committed(
        self,
        items: list[PushItem],
        refused_signatures: Sequence[PushResult] = (),
        attempts: int = MAX_ATTEMPTS,
        *,
        bulk_stored: Collection[str] | None = None,
    ) -> list[PushResult]:
        """:meth:`store` and commit, trying again when a concurrent push won a race."""
        for attempt in range(attempts):
            try:
                with write_turn(self.session):
                    try:
                        results = self.store(items, bulk_stored=bulk_stored) if items else []
                        for refusal in refused_signatures:
                            self.audit_rejection(refusal)
                        self.session.commit()
                        return results
                    except BaseException:
                        self.session.rollback()
                        raise
            except (IntegrityError, OperationalError) as error:
                if not retryable(error) or attempt == attempts - 1:
                    raise
                self._retrying(error, attempt, attempts, len(items))
                _back_off(attempt)
        raise AssertionError("unreachable")

    def _retrying(self, error: Exception, attempt: int, attempts: int, items: int) -> None:
        """Say, in the hub's log, that a push lost a race and is tried again (psycopg's own line
        about the pipeline the error aborted is said at DEBUG: exchange.logs)."""
        log.info(
            "un envío concurrente ganó la carrera (%s); se intenta de nuevo, intento %d de %d "
            "/ a concurrent push won the race (%s); trying again, attempt %d of %d",
            type(getattr(error, "orig", error)).__name__,
            attempt + 2,
            attempts,
            type(getattr(error, "orig", error)).__name__,
            attempt + 2,
            attempts,
            extra=self.log_context(items=items),
        )

    def log_context(self, **more: Any) -> dict[str, Any]:
        """What a log line of this push names: its agency, and its request id (in a request,
        the log names the request's own anyway)."""
        named = {"agency": self.agency_id, **more}
        if self.request_id is not None:
            named["request_id"] = self.request_id
        return named

    # -- single push with Idempotency-Key ----------------------------------------------------

    def find_answer(self, key: str) -> idempotency.StoredAnswer | None:
        return idempotency.find_answer(self.session, self.agency_id, key, self.idempotency_ttl)

    def push_one(
        self, item: PushItem, idempotency_key: str | None
    ) -> PushResult | idempotency.StoredAnswer:
        """Store one push and commit. With a key, the answer of an earlier push holding that
        key instead (the caller replays it, or refuses a different body)."""
        session, key = self.session, idempotency_key
        if key:
            idempotency.prune(session, self.idempotency_ttl)
        for attempt in range(MAX_ATTEMPTS):
            try:
                with write_turn(session):
                    try:
                        return self._push_one(item, key)
                    except BaseException:
                        session.rollback()
                        raise
            except (IntegrityError, OperationalError) as error:
                if not retryable(error) or attempt == MAX_ATTEMPTS - 1:
                    raise
                self._retrying(error, attempt, MAX_ATTEMPTS, 1)
                _back_off(attempt)
        raise AssertionError("unreachable")

    def _push_one(self, item: PushItem, key: str | None) -> PushResult | idempotency.StoredAnswer:
        session = self.session
        if key:
            earlier = idempotency.reserve(
                session, self.agency_id, key, item.body_sha256, self.idempotency_ttl
            )
            if earlier is not None:
                return earlier
        [result] = self.store([item])
        if result.status == "rejected":
            session.rollback()
            return result
        note_lost_parts(session, self.keyring, [(result, item.data)])
        if key:
            answer = json.dumps(result.answer())
            idempotency.save_answer(session, self.agency_id, key, result.http_status, answer)
        session.commit()
        return result


def _record_states(
    sql: HotSQL, agency_id: str, local_ids: set[str]
) -> tuple[dict[str, _RecordState], set[str]]:
    """local id -> the state of the record it names for ``agency_id``, and the local ids that
    name a record through an address. An address wins over a record the agency created under
    the same local id (accepting a transfer refuses such a local id; this only settles it
    should both ever exist). Local ids that name one record share its state."""
    statement = _RECORD_STATES if sql.is_sqlite else _RECORD_STATES_LOCKED
    found: list[Any] = []
    for part in chunks(sorted(local_ids), STATE_CHUNK):
        found.extend(sql.rows(with_in_list(statement, len(part)), (agency_id, *part) * 2))
    records: dict[str, _RecordState] = {}
    states: dict[str, _RecordState] = {}
    addressed: set[str] = set()
    for record_id, local_id, owner, child_id, version, sha256, by_address in sorted(
        found, key=lambda row: row[6]
    ):
        state = records.get(record_id)
        if state is None:
            state = records[record_id] = _RecordState(
                record_id, owner, child_id, version, sha256, new=False
            )
        states[local_id] = state
        if by_address:
            addressed.add(local_id)
    return states, addressed


def _bodies_held(
    sql: HotSQL, states: dict[str, _RecordState], items: list[PushItem], stored: Collection[str]
) -> dict[str, dict[str, int]]:
    """record id -> the body digests of all its versions, each with the latest version that
    has it, for the records of ``items`` whose latest version differs from what the item
    carries, but not those in ``stored`` (an earlier line of the push stored them), one query
    per :data:`STATE_CHUNK`."""
    differing = sorted(
        {
            state.id
            for item in items
            if (state := states.get(item.local_id)) is not None
            and state.sha256 != item.body_sha256
            and state.id not in stored
        }
    )
    bodies: dict[str, dict[str, int]] = {}
    found = sql.rows_in(_VERSION_DIGESTS, (), differing, chunk=STATE_CHUNK)
    for record_id, digest, version in found:
        versions = bodies.setdefault(record_id, {})
        versions[digest] = max(version, versions.get(digest, 0))
    return bodies


def _version_holding(
    state: _RecordState, item: PushItem, earlier: Mapping[str, int] = _NO_VERSIONS
) -> int | None:
    """The version of the record that already holds what ``item`` carries: its latest
    (``state.version``), else one whose body digest is in ``earlier`` (digest -> version);
    ``None`` when none does. The latest is looked at first: a record set back to an earlier
    state holds that state as its latest.

    Its body hash answers when the envelope is the one sent before. An envelope that names
    the record's child (``_refuse_update`` has checked that it is the record's own) says
    nothing the version does not hold, and an export writes ``child_id`` into every envelope:
    so a record pushed without it, exported and imported again, is compared without it too
    and is not stored a second time."""
    if item.body_sha256 == state.sha256:
        return state.version
    without_child = None
    if item.child_id is not None:
        envelope = {"schema": item.schema_ref, "local_id": item.local_id, "data": item.data}
        without_child = canonical_body(envelope)[1]
        if without_child == state.sha256:
            return state.version
    for digest in (item.body_sha256, without_child):
        if digest is not None and digest in earlier:
            return earlier[digest]
    return None


def _unknown_child(item: PushItem) -> PushResult:
    # The same answer for a child that does not exist and for one the agency may not know of.
    return rejected(
        item.line,
        "validation",
        failure(
            "/child_id",
            "child_id",
            f"no hay en este nodo una niña, niño o adolescente «{item.child_id}» que su "
            "institución pueda conocer (un child_id solo vale en el nodo que lo emitió); envíe "
            "el expediente sin child_id: se vincula por su identificador local y los "
            "identificadores de la niña, niño o adolescente (CURP, número ACNUR). Un archivo "
            "exportado de otro nodo o institución: expórtelo de nuevo con "
            "'puente export --portable'",
            f"there is no child '{item.child_id}' on this hub that your agency may know of (a "
            "child_id links only on the hub that issued it); push the record without child_id: "
            "it is linked by its local id and the child's identifiers (CURP, UNHCR number). A "
            "file exported from another hub or agency: export it again with "
            "'puente export --portable'",
        ),
    )


def _back_off(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.005 * (2**attempt)))  # noqa: S311 - jitter, not secrets
