"""Where ``puente import`` stores records: straight into the hub's database through its own
push service (:class:`DirectSink`), or through the API with the agency's token
(:class:`ApiSink`). Both answer one :class:`~exchange.importer.Outcome` per document, in order,
and raise :class:`~exchange.hub_client.HubError` when a batch could not be sent at all.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from flask import Flask
from joserfc.jwk import OKPKey
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from adapters.base import Problem
from exchange.canonical_errors import canonical_failure
from exchange.db import database
from exchange.hub_client import HubClient, HubError
from exchange.importer import Outcome, idempotency_key
from exchange.signatures import sign_detached
from schemas.errors import BilingualError
from schemas.validation import ValidationFailure

if TYPE_CHECKING:
    from exchange.record_push import PushResult

# -- signing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordSigner:
    """Signs each record with the agency's private key (``Puente-Signature``, or the bulk
    line's ``signature`` member), for hubs that require signed pushes."""

    key: OKPKey
    kid: str = field(default="")

    def __post_init__(self) -> None:
        if not self.kid:
            object.__setattr__(self, "kid", self.key.thumbprint())

    def sign(self, canonical: bytes) -> str:
        return sign_detached(canonical, self.key, self.kid)


# -- straight into the hub's database ----------------------------------------------------------

#: SQLite page cache of a direct import's connection: 32 MiB (a negative size is in KiB).
SQLITE_IMPORT_CACHE = "PRAGMA cache_size=-32768"

#: The tables a push grows and looks each batch up in (exchange.record_push,
#: exchange.child_linking), analysed as a direct import on PostgreSQL grows them.
GROWN_TABLES = (
    "record",
    "record_version",
    "record_address",
    "child",
    "child_identifier",
    "child_profile",
    "child_name_key",
    "child_case_number",
)
#: Records a direct import stores before it first analyses the tables (a few batches), unless
#: they need it at once; after that, each time it stored as many records as there were
#: versions when they were last analysed (the tables doubled).
ANALYZE_AFTER = 2000
#: The table whose rows count what the import stores: one version a record stored.
GAUGE_TABLE = "record_version"

_TABLE_STATISTICS = (
    "SELECT c.relname, c.reltuples, COALESCE(s.n_mod_since_analyze, 0)"
    " FROM unnest(CAST(:names AS text[])) AS wanted(name)"
    " JOIN pg_class c ON c.oid = to_regclass(wanted.name)"
    " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
)
log = logging.getLogger("puente.import")


class PlannerStatistics:
    """PostgreSQL's statistics of the tables a direct import grows (:data:`GROWN_TABLES`), kept
    from falling far behind what the tables hold, with ``ANALYZE``.

    Without statistics, or with those of a table a fraction of its size (autovacuum off, or
    not yet run after a bulk load), the planner takes a batch's lookups for a few rows and walks
    a whole agency's rows in each: an import slowed from 1,100 to 250 records a second as the
    hub grew from 30,000 to 80,000 records, and kept its pace once the tables were analysed.

    When the import starts, a table changed by as many rows as it had when last analysed (or
    never analysed, with :data:`ANALYZE_AFTER` rows or more: PostgreSQL's own count,
    ``n_mod_since_analyze``) has them all analysed before the first batch. Then they are
    analysed once the import stored :data:`ANALYZE_AFTER` records, and again each time it stored
    as many as :data:`GAUGE_TABLE` had rows when last analysed. Nothing on SQLite. ``ANALYZE``
    does not block pushes; one that fails is logged and not tried again, and the import goes
    on (a role that does not own the tables is told so by PostgreSQL and skipped silently)."""

    def __init__(self, session: Session, *, first: int | None = None) -> None:
        self.session = session
        self.first = first = ANALYZE_AFTER if first is None else first
        self.enabled = session.get_bind().dialect.name == "postgresql"
        #: Versions when last analysed, and records stored since.
        self.rows = self.since = 0.0
        self.analyses = 0
        if not self.enabled:
            return
        tables = self._read()
        self.rows, self.since = tables.get(GAUGE_TABLE, (0.0, 0.0))
        if any(changed >= max(first, rows) for rows, changed in tables.values()):
            self.analyze()

    def _read(self) -> dict[str, tuple[float, float]]:
        """table -> (rows when last analysed, rows changed since), as PostgreSQL counts them."""
        found = self.session.execute(text(_TABLE_STATISTICS), {"names": list(GROWN_TABLES)})
        tables = {name: (max(float(rows), 0.0), float(changed)) for name, rows, changed in found}
        self.session.commit()
        return tables

    def stored(self, count: int) -> None:
        """``count`` more records were stored: analyse the tables if they grew enough."""
        if not self.enabled or not count:
            return
        self.since += count
        if self.since >= max(self.first, self.rows):
            self.analyze()

    def analyze(self) -> None:
        try:
            self.session.execute(text("ANALYZE " + ", ".join(GROWN_TABLES)))
            self.session.commit()
            self.rows = self._read().get(GAUGE_TABLE, (0.0, 0.0))[0]
        except DBAPIError as error:
            self.session.rollback()
            self.enabled = False
            log.warning(
                "no se pudieron actualizar las estadísticas de las tablas (ANALYZE): %s / "
                "could not update the tables' statistics (ANALYZE): %s",
                error.orig,
                error.orig,
            )
            return
        self.since = 0.0
        self.analyses += 1


def _problems_from_failures(failures: Iterable[ValidationFailure]) -> tuple[Problem, ...]:
    return tuple(Problem(f.pointer, f.message_es, f.message_en) for f in failures)


class DirectSink:
    """Stores through the hub's own push service (the one ``POST /v1/records[/bulk]`` uses),
    as the agency, on the hub's database: for an administrator on the hub's machine.

    Run inside the hub's app context. Raises :class:`ImportRefused` for an unknown or
    disabled agency.
    """

    def __init__(
        self,
        app: Flask,
        agency_id: str,
        *,
        signer: RecordSigner | None = None,
        keyed: bool = False,
    ) -> None:
        from exchange.crypto import data_keyring
        from exchange.record_push import Pusher, push_flags
        from schemas.registry import default_registry

        # A long single writer: WAL checkpoints from a thread overlap with reading the file.
        self.database = database(app)
        self.database.checkpoint_in_background()
        self.session = self.database.sessions()
        flags = push_flags(self.session, agency_id)
        self.session.commit()
        if flags is None or not flags[0]:
            self.close()
            raise ImportRefused(
                f"no existe la institución activa «{agency_id}» en este nodo",
                f"there is no active agency '{agency_id}' on this hub",
            )
        self.agency_id = agency_id
        self.signer = signer
        self.keyed = keyed
        self.pusher = Pusher(
            self.session,
            agency_id,
            require_signature=flags[1],
            keyring=data_keyring(app),
            registry=default_registry(),
            request_id=f"import-{uuid.uuid4().hex[:16]}",
            idempotency_hours=float(app.config["IDEMPOTENCY_KEY_HOURS"]),
        )
        self.statistics = PlannerStatistics(self.session)

    def close(self) -> None:
        self.session.close()
        if self.database.checkpointer is not None:
            self.database.checkpointer.stop()

    def push(self, documents: list[Mapping[str, Any]]) -> list[Outcome]:
        try:
            if self.database.engine.dialect.name == "sqlite":
                # A batch dirties index pages all over the child index (its keys are random):
                # a page cache that holds them (SQLite's default is 2 MiB) spares writing them
                # to the WAL more than once a batch. Set on each batch's connection.
                self.session.connection().exec_driver_sql(SQLITE_IMPORT_CACHE)
            if self.keyed:
                pushed = [self._push_one(document) for document in documents]
            else:
                pushed = self._push_bulk(documents)
            outcomes = [
                replace(
                    outcome,
                    lost=result.lost_parts,
                    version=result.version,
                    older_version=result.older_version,
                    warnings=hub_warnings(result.warnings),
                )
                if result is not None
                else outcome
                for outcome, result in pushed
            ]
        except OperationalError as error:
            # The database went away or stayed locked: like a hub that does not answer, the
            # batch is tried again (what was committed answers "unchanged"), then reported.
            self.session.rollback()
            raise HubError(
                f"la base de datos del nodo no respondió: {error.orig}",
                f"the hub's database did not answer: {error.orig}",
                transient=True,
            ) from error
        # After the batch is committed and counted: a failure here is no batch's.
        self.statistics.stored(sum(outcome.status == "stored" for outcome in outcomes))
        return unsigned_in_office_words(outcomes, self.signer)

    def _push_bulk(
        self, documents: list[Mapping[str, Any]]
    ) -> list[tuple[Outcome, PushResult | None]]:
        from exchange.record_bulk import push_lines

        lines: list[tuple[int, Any]] = []
        for number, document in enumerate(documents, 1):
            line = dict(document)
            if self.signer is not None:
                signature = _signature(self.signer, document)
                if signature is not None:
                    line["signature"] = signature
            lines.append((number, line))
        results = push_lines(
            self.pusher, lines, max_lines=len(lines), batch_size=max(1, len(lines))
        )
        return [(_outcome(result.status, result.failures), result) for result in results]

    def _push_one(self, document: Mapping[str, Any]) -> tuple[Outcome, PushResult | None]:
        from exchange.record_push import PushResult, canonical_body

        try:
            canonical, sha256 = canonical_body(dict(document))
        except ValueError:
            return _outcome("rejected", [canonical_failure(document)]), None
        signature = self.signer.sign(canonical) if self.signer else None
        checked = self.pusher.check(dict(document), canonical, sha256, signature)
        if isinstance(checked, PushResult):
            if checked.problem == "bad-signature":
                self.pusher.audit_rejection(checked)
                self.session.commit()
            return _outcome("rejected", checked.failures), None
        key = idempotency_key(self.agency_id, checked.local_id, sha256)
        result = self.pusher.push_one(checked, key)
        if not isinstance(result, PushResult):
            return Outcome("replayed"), None  # the first answer under this key, stored nothing
        return _outcome(result.status, result.failures), result


def _signature(signer: RecordSigner, document: Mapping[str, Any]) -> str | None:
    """The document's signature; None when it has no canonical form, which the hub then
    reports for that row in both languages (:func:`canonical_failure`)."""
    from exchange.signatures import canonical_json

    try:
        return signer.sign(canonical_json(document))
    except ValueError:
        return None


#: A record refused for want of a signature, as an office reads it in its rejects file: the
#: hub's words speak of a request header or a line's member, which a spreadsheet has not.
UNSIGNED = Problem(
    "/signature",
    "esta institución debe firmar sus expedientes: ejecute puente import otra vez con --key "
    "(la llave privada de la institución)",
    "this agency must sign its records: run puente import again with --key (the agency's "
    "private key)",
)


def unsigned_in_office_words(outcomes: list[Outcome], signer: RecordSigner | None) -> list[Outcome]:
    """Outcomes with a missing signature (no ``--key`` given) said as :data:`UNSIGNED`."""
    if signer is not None:
        return outcomes
    return [
        Outcome(
            outcome.status,
            tuple(UNSIGNED if p.pointer == "/signature" else p for p in outcome.problems),
        )
        if any(p.pointer == "/signature" for p in outcome.problems)
        else outcome
        for outcome in outcomes
    ]


def _outcome(status: str, failures: Iterable[ValidationFailure]) -> Outcome:
    if status == "rejected":
        return Outcome("rejected", _problems_from_failures(failures))
    return Outcome(status)


class ImportRefused(BilingualError):
    """The import cannot start (unknown agency, credentials refused); Spanish and English."""


# -- through the HTTP API ----------------------------------------------------------------------


class ApiSink:
    """Pushes through the hub's API with the agency's own token: NDJSON batches to
    ``POST /v1/records/bulk``, or (``keyed``) one ``POST /v1/records`` per record with its
    :func:`idempotency_key`."""

    def __init__(
        self, client: HubClient, *, signer: RecordSigner | None = None, keyed: bool = False
    ) -> None:
        self.client = client
        self.signer = signer
        self.keyed = keyed

    def push(self, documents: list[Mapping[str, Any]]) -> list[Outcome]:
        if self.keyed:
            return unsigned_in_office_words(
                [self._push_one(document) for document in documents], self.signer
            )
        lines = []
        # A document JSON cannot carry (a date object, a set, NaN: an installed adapter's) is
        # refused here, as the direct import's push refuses it, and the others are sent.
        unwritten: dict[int, Outcome] = {}
        for index, document in enumerate(documents):
            line = dict(document)
            if self.signer is not None:
                signature = _signature(self.signer, document)
                if signature is not None:
                    line["signature"] = signature
            try:
                text = json.dumps(line, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError):
                unwritten[index] = _outcome("rejected", [canonical_failure(document)])
                continue
            lines.append(text.encode("utf-8") + b"\n")
        answered = [
            _api_outcome(
                result.get("status"),
                result.get("errors"),
                result.get("lost_parts"),
                version=result.get("version"),
                older_version=result.get("older_version"),
                warnings=result.get("warnings"),
            )
            for result in (self.client.push_bulk(b"".join(lines)) if lines else [])
        ]
        if len(answered) != len(lines):
            return answered  # too few or too many: the engine says so (_with_retries)
        sent = iter(answered)
        outcomes = [
            unwritten[index] if index in unwritten else next(sent)
            for index in range(len(documents))
        ]
        return unsigned_in_office_words(outcomes, self.signer)

    def _push_one(self, document: Mapping[str, Any]) -> Outcome:
        from exchange.record_push import canonical_body

        try:
            canonical, sha256 = canonical_body(dict(document))
        except ValueError:
            return _outcome("rejected", [canonical_failure(document)])
        local_id = str(document.get("local_id", ""))  # the hub says what is wrong with it
        key = idempotency_key(self.client.credentials.agency_id, local_id, sha256)
        status, answer, replayed = self.client.push_one(
            canonical, key, self.signer.sign(canonical) if self.signer else None
        )
        if replayed:
            return Outcome("replayed")  # the first answer under this key: nothing stored
        if status in (200, 201) and isinstance(answer, dict):
            return _api_outcome(
                answer.get("status") or "stored",
                None,
                answer.get("lost_parts"),
                version=answer.get("version"),
                warnings=answer.get("warnings"),
            )
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if not errors and isinstance(answer, dict):
            errors = [{"pointer": "", "message": answer.get("detail") or answer.get("title")}]
        return _api_outcome("rejected", errors)


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def hub_warnings(found: Any) -> tuple[Problem, ...]:
    """The warnings of a push's answer (``[{code, pointer, es, en}]``) as the import summary
    lists an adapter's."""
    return tuple(
        Problem(str(each.get("pointer") or ""), str(each.get("es")), str(each.get("en")))
        for each in (found if isinstance(found, list) else ())
        if isinstance(each, Mapping) and each.get("es") and each.get("en")
    )


def _api_outcome(
    status: Any,
    errors: Any,
    lost: Any = None,
    *,
    version: Any = None,
    older_version: Any = None,
    warnings: Any = None,
) -> Outcome:
    if status in ("stored", "unchanged"):
        # The parts a new version lacks that the one it replaced had (exchange.lost_parts).
        parts = tuple(str(part) for part in lost) if isinstance(lost, list) else ()
        # An unchanged line equal to an earlier version than the latest names it: not applied.
        older = older_version if _whole_number(older_version) and status == "unchanged" else None
        latest = version if _whole_number(version) else None
        return Outcome(
            status,
            lost=parts,
            version=latest,
            older_version=older,
            warnings=hub_warnings(warnings),
        )
    problems = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict):
            # The hub gives both languages (message_es, message_en); an older hub answers in
            # the language asked for only, and then that text serves for both.
            message = str(error.get("message") or error.get("keyword") or "")
            problems.append(
                Problem(
                    str(error.get("pointer") or ""),
                    str(error.get("message_es") or message),
                    str(error.get("message_en") or message),
                )
            )
    return Outcome("rejected", tuple(problems))
