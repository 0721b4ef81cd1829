"""Getting this hub's checkpoints cosigned by its peers' witnesses (c2sp.org/tlog-witness,
the log's side of ``add-checkpoint``).

For the latest signed checkpoint, each active peer pinned with a witness key and a URL
(:mod:`exchange.peers`) is sent ``POST {url}/v1/witness/add-checkpoint``: ``old`` is the size
that peer's witness last cosigned for this log (:class:`PeerCosigning`), with the consistency
proof from it read from the stored tiles. A 200 answer's cosignature lines are verified with the
pinned witness key over this checkpoint before they are kept (:class:`CheckpointCosignature`);
``GET /v1/audit/checkpoint`` and ``puente audit export`` add them to the checkpoint, so an
oversight body can require a quorum of witnesses offline.

A 409 names the size the witness last cosigned: a smaller one (a lost answer, a witness that
started afresh) is adopted and the request sent again once. A larger one than this log has
signed, or a conflict at this checkpoint's own size, means the witness was shown another tree
of this log: it is logged at critical level and written to the audit log once per peer until
that witness cosigns again. So does a 422 to a consistency proof that this hub checked
against its own tree: the witness cosigned another tree of this log at the proof's old size
(a hub restored from an old backup that grew past what was witnessed), see
:func:`_proof_holds`. A 409 carries nothing but a number, which proves nothing (nor does a
422, to this hub): a hostile or broken witness answering a new size at every run must not
fill the audit log and the alerts with conflicts and bury a real fork among them. Later runs
still say it (the log line, ``puente audit witness``). Any other failure (the peer down, a
timeout, another status) is one log line; the next run tries again. Requests carry an
``Accept-Language`` (that of ``puente audit witness --lang``; English for the worker, whose
log is English), so a witness's refusal reads in it. Nothing waits on a witness: runs come
from ``puente worker`` (:class:`CosigningThread`) and ``puente audit witness``, and only write
what they received.

Successful cosignatures are not audited, as the witness does not audit giving them: two hubs
witnessing each other would otherwise grow each other's logs without end.
"""

from __future__ import annotations

import errno
import http
import http.client
import json
import logging
import os
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit import (
    AddCheckpointRequest,
    Checkpoint,
    CompactRange,
    Cosignature,
    CosignatureVerifier,
    FormatError,
    Note,
    NoteSignature,
    ProofError,
    SignatureError,
    checkpoint_of,
    consistency_proof,
    parse_cosignature_response,
    verified_signatures,
    verify_consistency,
)
from audit.errors import spanish_cause
from audit.prover import perfect_cover
from exchange import db
from exchange.audit_log import AuditCheckpoint
from exchange.audit_sequencer import TileStore, tile_cache
from exchange.auth import utcnow
from exchange.db import Base
from exchange.peers import Peer
from exchange.transports import NoRedirects, printable
from exchange.witness_service import log_conflict_code, record_log_conflict

log = logging.getLogger("puente.witness")

ADD_CHECKPOINT_PATH = "/v1/witness/add-checkpoint"
TLOG_SIZE_MEDIA_TYPE = "text/x.tlog.size"
DEFAULT_TIMEOUT = 10.0  # seconds for one request to one witness
DEFAULT_INTERVAL = 5.0  # least seconds between two runs of the worker's thread
#: Largest answer read: 100 cosignature lines fit in a few KiB.
MAX_ANSWER_BYTES = 64 * 1024


class CheckpointCosignature(Base):
    """A peer witness's verified cosignature on one of this hub's checkpoints."""

    __tablename__ = "checkpoint_cosignature"

    checkpoint_size: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("audit_checkpoint.size"), primary_key=True
    )
    peer_hub_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("peer.hub_id"), primary_key=True
    )
    key_name: Mapped[str] = mapped_column(Text)
    key_id: Mapped[int] = mapped_column(BigInteger)
    #: The cosignature's own timestamp (POSIX seconds), part of what the witness signed.
    timestamp: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def note_signature(self) -> NoteSignature:
        cosignature = Cosignature(self.key_name, self.key_id, self.timestamp, self.signature)
        return cosignature.to_note_signature()


class PeerCosigning(Base):
    """What one peer's witness has cosigned of this hub's log."""

    __tablename__ = "peer_cosigning"

    peer_hub_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("peer.hub_id"), primary_key=True
    )
    #: The size the witness last cosigned for this log: the next request's ``old``.
    cosigned_size: Mapped[int] = mapped_column(BigInteger)
    #: The witness's size in the conflict written to the audit log, until a cosignature ends
    #: it: while it is set, no other conflict with this peer is audited (see _conflict).
    conflict_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    content_type: str
    body: bytes


#: ``post(url, body, timeout)``: one HTTP POST; raises :class:`OSError` (or
#: :class:`http.client.HTTPException`) when no answer came. Tests route it to a test client.
Post = Callable[[str, bytes, float], HttpAnswer]


_OPENER = urllib.request.build_opener(NoRedirects)

#: The language a cosigning run asks its witnesses to refuse in, sent by :func:`http_post` as
#: ``Accept-Language``. A context variable rather than an argument, because ``post`` (which
#: tests replace) takes the URL, body and timeout only.
_WITNESS_LANGUAGE: ContextVar[str | None] = ContextVar("puente_witness_language", default=None)


def http_post(
    url: str,
    body: bytes,
    timeout: float,
    *,
    content_type: str = "text/plain; charset=utf-8",
    max_bytes: int = MAX_ANSWER_BYTES,
    headers: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """POST ``body`` to a peer hub, never following a redirect; at most ``max_bytes`` of the
    answer are read (also what :mod:`exchange.federation` sends envelopes with, ``headers``
    adding, e.g., the ``Accept-Language`` of the agency that asks)."""
    language = _WITNESS_LANGUAGE.get()
    sent = {"Accept-Language": language} if language else {}
    sent.update(headers or {})
    sent["Content-Type"] = content_type
    # The URL is the peer's base URL, which exchange.peers accepts only as http(s).
    request = urllib.request.Request(url, data=body, method="POST", headers=sent)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return HttpAnswer(
                response.status, response.headers.get_content_type(), response.read(max_bytes)
            )
    except urllib.error.HTTPError as error:
        with error:
            return HttpAnswer(error.code, error.headers.get_content_type(), error.read(max_bytes))


# --- one run ---------------------------------------------------------------------------------

#: What happened with one peer: ``cosigned``, ``up_to_date``, ``unreachable`` (no answer),
#: ``refused`` (another status, or a second 409), ``bad_cosignature`` (200 without a
#: cosignature that verifies), ``behind`` (another run got a newer checkpoint cosigned), or
#: ``conflict`` (the witness saw another tree of this log).
OUTCOMES = (
    "cosigned",
    "up_to_date",
    "unreachable",
    "refused",
    "bad_cosignature",
    "behind",
    "conflict",
)


@dataclass(frozen=True)
class PeerOutcome:
    hub_id: str
    outcome: str
    #: The size this peer's witness has cosigned for this log, as far as this hub knows.
    cosigned_size: int
    #: What went wrong, in English, for the log and the operator (None when nothing did).
    reason: str | None = None
    #: The status of the witness's last answer, if one came.
    status: int | None = None
    #: ``reason`` in Spanish (what the witness itself said stays in the language it said it).
    reason_es: str | None = None

    def said(self, lang: str) -> str | None:
        """What went wrong, in ``lang`` (``es`` or ``en``)."""
        return self.reason_es if lang == "es" and self.reason_es else self.reason

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "peer": self.hub_id,
            "outcome": self.outcome,
            "cosigned_size": self.cosigned_size,
            "status": self.status,
            "reason": self.said(lang),
        }


@dataclass(frozen=True)
class CosigningRun:
    #: The checkpoint the cosignatures were asked for (None: no checkpoint signed yet).
    checkpoint_size: int | None
    peers: list[PeerOutcome] = field(default_factory=list)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "checkpoint_size": self.checkpoint_size,
            "peers": [peer.to_json(lang) for peer in self.peers],
        }


@dataclass(frozen=True)
class _Witness:
    """A peer's witness as read before any request (no session is held during one)."""

    hub_id: str
    url: str
    verifier: CosignatureVerifier
    cosigned_size: int


def request_cosignatures(
    app: Flask, *, post: Post | None = None, timeout: float | None = None, language: str = "en"
) -> CosigningRun:
    """Ask every active peer's witness to cosign the latest checkpoint; store what verifies.

    Peers whose witness has already cosigned it are left alone. Returns what happened with
    each peer; never raises for a peer's failure (only for this hub's database). The requests
    ask for refusals in ``language`` (``Accept-Language``).
    """
    post = post or http_post
    timeout = timeout or float(app.config.get("AUDIT_WITNESS_TIMEOUT") or DEFAULT_TIMEOUT)
    asked_in = _WITNESS_LANGUAGE.set(language)
    try:
        # The worker's thread has no app context; an audit entry needs one (its hub and actor).
        with app.app_context():
            return _request_cosignatures(app, post, timeout)
    finally:
        _WITNESS_LANGUAGE.reset(asked_in)


def _request_cosignatures(app: Flask, post: Post, timeout: float) -> CosigningRun:
    with db.database(app).sessions() as session:
        latest = session.scalars(
            select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
        ).first()
        if latest is None:
            return CosigningRun(None)
        signed_note = latest.note
        witnesses = _witnesses(session)
    size = checkpoint_of(signed_note).size
    run = CosigningRun(size)
    for witness in witnesses:
        if witness.cosigned_size >= size:
            run.peers.append(PeerOutcome(witness.hub_id, "up_to_date", witness.cosigned_size))
            continue
        run.peers.append(_ask(app, witness, signed_note, post, timeout))
    return run


def _asked() -> tuple[Any, ...]:
    """Which peers' witnesses are asked to cosign: active ones pinned with a witness key and a
    URL."""
    return (Peer.active.is_(True), Peer.witness_vkey.is_not(None), Peer.base_url.is_not(None))


def _witnesses(session: Session) -> list[_Witness]:
    rows = session.execute(
        select(Peer, PeerCosigning.cosigned_size)
        .outerjoin(PeerCosigning, PeerCosigning.peer_hub_id == Peer.hub_id)
        .where(*_asked())
        .order_by(Peer.hub_id)
    )
    return [
        _Witness(
            peer.hub_id,
            (peer.base_url or "").rstrip("/") + ADD_CHECKPOINT_PATH,
            CosignatureVerifier.from_vkey(peer.witness_vkey or ""),
            cosigned or 0,
        )
        for peer, cosigned in rows
    ]


def _ask(
    app: Flask, witness: _Witness, signed_note: str, post: Post, timeout: float
) -> PeerOutcome:
    checkpoint = checkpoint_of(signed_note)
    size = checkpoint.size
    old = witness.cosigned_size
    for attempt in (1, 2):
        proof = _proof(app, old, size)
        body = AddCheckpointRequest(old, tuple(proof), signed_note).to_text()
        try:
            answer = post(witness.url, body.encode("utf-8"), timeout)
        except (OSError, http.client.HTTPException) as error:
            why_es, why_en = network_failure(error, timeout)
            return _failed(
                witness,
                "unreachable",
                (
                    f"sin respuesta de {witness.url}: {why_es}",
                    f"no answer from {witness.url}: {why_en}",
                ),
                detail=f"{type(error).__name__}: {error}",
            )
        if answer.status == 200:
            return _keep_cosignature(app, witness, signed_note, answer.body)
        if answer.status == 422 and _proof_holds(app, old, checkpoint, proof):
            return _conflict(app, witness, signed_note, old, 422)
        if answer.status != 409:
            said = peer_refusal_text(answer)
            if said:  # the witness's own words, in the language asked for
                words = (f": {said}", f": {said}")
            else:
                meaning_es, meaning_en = status_words(answer)
                words = (f" ({meaning_es})", f" ({meaning_en})")
            return _failed(
                witness,
                "refused",
                (
                    f"{witness.url} respondió {answer.status}{words[0]}",
                    f"{witness.url} answered {answer.status}{words[1]}",
                ),
                answer.status,
            )
        theirs = _conflict_size(answer)
        if theirs is None:
            return _failed(
                witness,
                "refused",
                (
                    f"{witness.url} respondió 409 sin un tamaño de árbol",
                    f"{witness.url} answered 409 without a tree size",
                ),
                409,
            )
        if theirs > size:
            return _behind(app, witness, theirs) or _conflict(app, witness, signed_note, theirs)
        if theirs == size and old == size:
            return _conflict(app, witness, signed_note, theirs)
        if attempt == 2:
            break
        # The witness cosigned another size of this log than we recorded (an answer lost on
        # the way, or a witness that started afresh): prove our checkpoint from that one.
        old = theirs
    return _failed(
        witness,
        "refused",
        (
            f"{witness.url} respondió 409 dos veces (tamaño {old})",
            f"{witness.url} answered 409 twice (size {old})",
        ),
        409,
    )


def _proof(app: Flask, old: int, size: int) -> list[bytes]:
    if not 0 < old < size:
        return []
    with db.database(app).sessions() as session:
        return consistency_proof(old, size, TileStore(session, tile_cache(app)))


def _proof_holds(app: Flask, old: int, checkpoint: Checkpoint, proof: Sequence[bytes]) -> bool:
    """Whether ``proof``, sent for ``checkpoint``, shows this hub's own tree of ``old`` leaves
    growing into it: a witness that still finds it does not verify (422) holds another tree of
    this log at ``old``. Otherwise this hub computed a wrong proof, its own bug and no fork."""
    if not 0 < old < checkpoint.size:
        return False
    with db.database(app).sessions() as session:
        cover = TileStore(session, tile_cache(app)).get_nodes(perfect_cover(0, old))
    old_root = CompactRange(old, cover).root()  # the root of this hub's first `old` leaves
    try:
        verify_consistency(old, checkpoint.size, old_root, checkpoint.root_hash, proof)
    except ProofError as error:
        log.error(
            "this hub's own consistency proof from size %d to %d does not verify: %s",
            old,
            checkpoint.size,
            error,
        )
        return False
    return True


def _conflict_size(answer: HttpAnswer) -> int | None:
    text = answer.body.decode("ascii", "replace")
    if answer.content_type != TLOG_SIZE_MEDIA_TYPE or not text.endswith("\n"):
        return None
    digits = text[:-1]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        return None
    return int(digits)


def peer_refusal_text(answer: HttpAnswer) -> str:
    """What a peer's refusal says, on one line: a problem document's (RFC 9457) title and
    detail, in the language asked for; at most 300 characters, control characters escaped (it
    is printed to a terminal and a log). Nothing of any other body (a proxy's or a crashed
    server's HTML page, in no language asked for): "" (see :func:`status_words`)."""
    text = answer.body.decode("utf-8", "replace")
    try:
        problem = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(problem, dict):
        return ""  # JSON, but no problem: nothing of it is passed on raw
    parts = [problem.get(name) for name in ("title", "detail")]
    shown = [part for part in parts if isinstance(part, str) and part]
    return printable(": ".join(dict.fromkeys(shown)))[:300]


#: What a status a witness (or whatever stands in front of it) may answer means, in Spanish;
#: the English is the status's own reason phrase.
_STATUS_ES = {
    400: "solicitud no válida",
    401: "autenticación requerida",
    403: "acceso prohibido",
    404: "no encontrado",
    405: "método no permitido",
    408: "se agotó el tiempo de espera de la solicitud",
    413: "cuerpo demasiado grande",
    415: "tipo de contenido no admitido",
    422: "no se pudo procesar",
    429: "demasiadas solicitudes",
    500: "error interno del servidor",
    501: "no implementado",
    502: "puerta de enlace errónea",
    503: "servicio no disponible",
    504: "se agotó el tiempo de espera de la puerta de enlace",
}


def status_words(answer: HttpAnswer) -> tuple[str, str]:
    """An answer that is no problem document, said by its status's meaning and its content type
    (Spanish, English), never its body: a proxy's or a failing server's page is in no language
    asked for, and may carry anything (docs/audit.md §6)."""
    try:
        phrase = http.HTTPStatus(answer.status).phrase
    except ValueError:
        phrase = ""
    server = answer.status >= 500
    meaning_es = _STATUS_ES.get(answer.status) or ("error del servidor" if server else "rechazo")
    meaning_en = phrase or ("Server error" if server else "Refused")
    kind = printable(answer.content_type or "")[:100] or "?"
    return (
        f"{meaning_es}; el cuerpo, {kind}, no se muestra: no es un documento de problema con "
        "título o detalle",
        f"{meaning_en}; the body, {kind}, is not shown: it is no problem document with a title "
        "or detail",
    )


def network_failure(error: BaseException, timeout: float) -> tuple[str, str]:
    """Why no answer came, in plain words (Spanish, English) for the person who reads
    ``puente audit witness``: connection refused, timed out, name not found, TLS failed, the
    connection cut, or not HTTP. The exception itself, Python's words, goes to the log only."""
    # urllib wraps what the socket raised in a URLError; a read that times out raises bare.
    cause = getattr(error, "reason", None)
    if isinstance(cause, BaseException):
        error = cause
    if isinstance(error, ConnectionRefusedError):
        return (
            "conexión rechazada (el nodo par no está en servicio o no escucha en esa dirección)",
            "Connection refused (the peer's hub is down, or not listening at that address)",
        )
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return (
            f"se agotó el tiempo de espera ({timeout:g} s)",
            f"Timed out after {timeout:g} s",
        )
    if isinstance(error, socket.gaierror):
        return (
            "no se encontró el nombre del servidor (DNS)",
            "Name not found: the server's name does not resolve (DNS)",
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            "el certificado TLS del servidor no es válido para esa dirección",
            "TLS failed: the server's certificate is not valid for that address",
        )
    if isinstance(error, ssl.SSLError):
        return (
            "falló la conexión segura (TLS)",
            "TLS failed: the secure connection could not be set up",
        )
    if isinstance(error, ConnectionResetError | http.client.RemoteDisconnected):
        return (
            "el servidor cortó la conexión sin responder",
            "Connection cut: the server closed it without answering",
        )
    if isinstance(error, http.client.HTTPException):
        return (
            "la respuesta no es HTTP válido",
            "Not HTTP: the answer is not valid HTTP",
        )
    if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return (
            "no hay ruta de red hasta el servidor",
            "Unreachable: no network route to the server",
        )
    return ("no se pudo conectar", "Could not connect")


def _failed(
    witness: _Witness,
    outcome: str,
    reason: tuple[str, str],
    status: int | None = None,
    *,
    detail: str | None = None,
) -> PeerOutcome:
    """``reason`` in Spanish and English; ``detail``, the technical one, for the log only."""
    # One line, no traceback: a peer that is down is the peer's to fix, and the next run
    # tries again.
    log.warning(
        "witness of peer %s did not cosign: %s%s; next run tries again",
        witness.hub_id,
        reason[1],
        f" ({printable(detail)})" if detail else "",
    )
    return PeerOutcome(
        witness.hub_id, outcome, witness.cosigned_size, reason[1], status, reason_es=reason[0]
    )


def _keep_cosignature(app: Flask, witness: _Witness, signed_note: str, body: bytes) -> PeerOutcome:
    size = checkpoint_of(signed_note).size
    try:
        lines = parse_cosignature_response(body.decode("utf-8"))
        # Lines by other keys are ignored (the spec's "MUST ignore"); a line by the pinned
        # witness key that does not verify over this checkpoint raises.
        note = Note.from_text(signed_note).with_signatures(lines)
        good = verified_signatures(note, [witness.verifier])
        if not good:
            raise SignatureError(f"no cosignature by {witness.verifier.name} in the answer")
        cosignature = Cosignature.from_note_signature(good[0])
    except (UnicodeDecodeError, FormatError, SignatureError) as error:
        return _failed(
            witness,
            "bad_cosignature",
            (
                f"la cofirma no verifica: {spanish_cause(error)}",
                f"the cosignature does not verify: {error}",
            ),
            200,
        )
    with db.database(app).sessions() as session:
        if session.get(CheckpointCosignature, (size, witness.hub_id)) is None:
            session.add(
                CheckpointCosignature(
                    checkpoint_size=size,
                    peer_hub_id=witness.hub_id,
                    key_name=cosignature.name,
                    key_id=cosignature.key_id,
                    timestamp=cosignature.timestamp,
                    signature=cosignature.signature,
                    received_at=utcnow(),
                )
            )
        _record_size(session, witness.hub_id, size, conflict_over=True)
        try:
            session.commit()
        except IntegrityError:
            # Another run stored this peer's cosignature (or its first state) at the same
            # moment: what it stored is as good.
            session.rollback()
    log.info("witness of peer %s cosigned checkpoint %d", witness.hub_id, size)
    return PeerOutcome(witness.hub_id, "cosigned", size, status=200)


def _record_size(session: Session, hub_id: str, size: int, *, conflict_over: bool) -> None:
    state = session.get(PeerCosigning, hub_id, with_for_update=True)
    if state is None:
        session.add(PeerCosigning(peer_hub_id=hub_id, cosigned_size=size, updated_at=utcnow()))
        return
    # Runs may overlap (the worker, `puente audit witness`): the size only goes forward.
    state.cosigned_size = max(state.cosigned_size, size)
    if conflict_over:
        state.conflict_size = None
    state.updated_at = utcnow()


def _behind(app: Flask, witness: _Witness, theirs: int) -> PeerOutcome | None:
    """A witness ahead of this run at a size this hub signed: another run got a newer
    checkpoint of ours cosigned meanwhile, not a fork."""
    with db.database(app).sessions() as session:
        if session.get(AuditCheckpoint, theirs) is None:
            return None
        _record_size(session, witness.hub_id, theirs, conflict_over=False)
        session.commit()
    return PeerOutcome(witness.hub_id, "behind", theirs, status=409)


def _conflict(
    app: Flask, witness: _Witness, signed_note: str, theirs: int, status: int = 409
) -> PeerOutcome:
    """The witness cosigned size ``theirs`` of another tree of this log (``status``: what it
    answered, 409 naming that size or 422 to our proof from it)."""
    size = checkpoint_of(signed_note).size
    with db.database(app).sessions() as session:
        state = session.get(PeerCosigning, witness.hub_id, with_for_update=True)
        reported = state.conflict_size if state is not None else None
        if reported is None:
            log.critical(
                "the witness of peer %s saw another tree of this hub's log: it cosigned size "
                "%d, this checkpoint of size %d is refused",
                witness.hub_id,
                theirs,
                size,
                extra={
                    "peer": witness.hub_id,
                    "witness_size": theirs,
                    "signed_checkpoint": signed_note,
                },
            )
            # Reported to oversight by GET /v1/audit/alerts (own_log_conflict). The witness
            # tells only its size (a 409's number, or our proof's old size), not its root: the
            # conflict is known by that size alone, and proved by nothing; so once per peer
            # until its witness cosigns again, however many sizes it names meanwhile (a real
            # fork, peer_log_forked, is not buried).
            record_log_conflict(
                session, "own_log_conflict_reported", witness.hub_id, log_conflict_code(theirs)
            )
            if state is None:
                state = PeerCosigning(
                    peer_hub_id=witness.hub_id, cosigned_size=witness.cosigned_size
                )
                session.add(state)
            state.conflict_size, state.updated_at = theirs, utcnow()
            reason = (
                f"el testigo cofirmó el tamaño {theirs} de otro árbol de esta bitácora; "
                "registrado en la bitácora de auditoría",
                f"the witness cosigned size {theirs} of another tree of this log; written to "
                "the audit log",
            )
        else:
            log.warning(
                "the witness of peer %s still refuses this hub's log (size %d now, conflict "
                "at size %d already audited): not audited again until it cosigns",
                witness.hub_id,
                theirs,
                reported,
                extra={"peer": witness.hub_id, "witness_size": theirs, "reported": reported},
            )
            reason = (
                f"el testigo dice haber cofirmado el tamaño {theirs} de otro árbol de esta "
                f"bitácora; el conflicto con este nodo par ya está en la bitácora de auditoría "
                f"(tamaño {reported}) y no se registra de nuevo hasta que cofirme",
                f"the witness says it cosigned size {theirs} of another tree of this log; the "
                f"conflict with this peer is already in the audit log (size {reported}) and is "
                "not written again until it cosigns",
            )
        session.commit()
    return PeerOutcome(
        witness.hub_id, "conflict", witness.cosigned_size, reason[1], status, reason_es=reason[0]
    )


@dataclass(frozen=True)
class WitnessStanding:
    """Where one peer's witness stands with this hub's log, for ``/metrics``: the size it last
    cosigned (0: never yet) and whether it refuses the log (a conflict written to the audit
    log, which only a cosignature ends)."""

    peer_hub_id: str
    cosigned_size: int
    refuses: bool


def witness_standings(session: Session) -> list[WitnessStanding]:
    """Each peer whose witness is asked to cosign (:func:`_asked`), by hub id."""
    rows = session.execute(
        select(Peer.hub_id, PeerCosigning.cosigned_size, PeerCosigning.conflict_size)
        .outerjoin(PeerCosigning, PeerCosigning.peer_hub_id == Peer.hub_id)
        .where(*_asked())
        .order_by(Peer.hub_id)
    )
    return [
        WitnessStanding(hub_id, cosigned or 0, conflict is not None)
        for hub_id, cosigned, conflict in rows
    ]


def cosignatures_of(session: Session, size: int) -> list[NoteSignature]:
    """The stored cosignatures on this hub's checkpoint of ``size``, as signature lines."""
    rows = session.scalars(
        select(CheckpointCosignature)
        .where(CheckpointCosignature.checkpoint_size == size)
        .order_by(CheckpointCosignature.peer_hub_id)
    )
    return [row.note_signature() for row in rows]


def with_cosignatures(session: Session, signed_note: str) -> str:
    """``signed_note`` (one of this hub's checkpoints) with the cosignatures stored for it."""
    lines = cosignatures_of(session, checkpoint_of(signed_note).size)
    if not lines:
        return signed_note
    return Note.from_text(signed_note).with_signatures(lines).to_text()


def all_cosignatures(session: Session, *, up_to: int) -> dict[int, list[NoteSignature]]:
    """The stored cosignatures of the checkpoints up to size ``up_to``, by size (the export)."""
    found: dict[int, list[NoteSignature]] = {}
    rows = session.scalars(
        select(CheckpointCosignature)
        .where(CheckpointCosignature.checkpoint_size <= up_to)
        .order_by(CheckpointCosignature.peer_hub_id)
    )
    for row in rows:
        found.setdefault(row.checkpoint_size, []).append(row.note_signature())
    return found


# --- the worker's thread ---------------------------------------------------------------------


class CosigningThread(threading.Thread):
    """Runs :func:`request_cosignatures` every ``interval`` seconds until stopped."""

    def __init__(self, app: Flask, interval: float, post: Post | None = None) -> None:
        super().__init__(name="puente-cosigning", daemon=True)
        self.app = app
        self.interval = interval
        self.post = post
        self.pid = os.getpid()
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                request_cosignatures(self.app, post=self.post)
            except Exception as error:
                reason = db.unavailable_reason(error)
                if reason is not None:
                    log.warning("cosigning run failed: %s", reason[1])
                else:
                    log.exception("cosigning run failed")

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


def start_cosigning(app: Flask) -> CosigningThread:
    interval = float(app.config.get("AUDIT_WITNESS_INTERVAL") or DEFAULT_INTERVAL)
    thread = CosigningThread(app, interval)
    thread.start()
    return thread
