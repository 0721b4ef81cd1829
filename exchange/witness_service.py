"""The hub as a witness of its peers' audit logs (c2sp.org/tlog-witness, ``add-checkpoint``).

For each pinned peer log (:mod:`exchange.peers`) the hub keeps one row, :class:`WitnessState`:
the size and root hash of the latest checkpoint it cosigned. A submitted checkpoint is
cosigned (c2sp.org/tlog-cosignature, cosignature/v1, with the hub's witness key) only when it
is signed by the log key pinned for its origin, the client's ``old`` size is that stored size,
and a consistency proof shows the new tree extends the stored one. Checking the stored size
and storing the new one happen under a lock on the row, in the transaction that answers the
cosignature: two requests from the same old size cannot both succeed, and the stored size
never goes back (the race the spec describes under "add-checkpoint").

A checkpoint of the stored size with another root hash means the log signed two different
trees of one size: it shows different logs to different parties, which is what witnesses are
there to catch. So is a larger checkpoint whose consistency proof rebuilds its signed root
from another root at the cosigned size (a log restored from an old backup that grew again):
the log's tree no longer holds what was cosigned (see :func:`_root_at_cosigned_size`). Either
is logged at critical level, written to the hub's own audit log (``peer_log_forked``) and
reported by ``GET /v1/audit/alerts`` (``peer_log_fork``) — once per forked tree, known by its
root at the cosigned size: the signed checkpoint is the request's only authentication, so
anyone holding a copy could otherwise replay it to fill the log (see :func:`_record_fork`).
Successful cosignatures are not audited: two hubs witnessing each other would otherwise each
add an entry for every checkpoint of the other, so each log's growth would grow the other's
without end.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, DateTime, LargeBinary, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit import (
    EMPTY_ROOT,
    AddCheckpointRequest,
    Checkpoint,
    CosignatureSigner,
    FormatError,
    InconsistentCheckpoints,
    Note,
    ProofError,
    RootMismatch,
    SignatureError,
    checkpoint_of,
    format_cosignature_response,
    open_checkpoint,
    root_from_consistency_proof,
    verify_checkpoint_consistency,
)
from audit.errors import in_spanish
from exchange import audit_log
from exchange.audit_log import AuditEntry, format_time
from exchange.audit_queries import AlertWindow, register_alert_source
from exchange.auth import as_utc, utcnow
from exchange.db import Base
from exchange.peers import MAX_ORIGIN, Peer, active_peer_for_origin
from schemas.errors import BilingualError

log = logging.getLogger("puente.witness")

#: Largest request body: an old size line, at most 63 proof lines and a checkpoint with up to
#: 100 signature lines fit in a few KiB.
MAX_REQUEST_BYTES = 64 * 1024


class WitnessState(Base):
    """The latest checkpoint this hub cosigned for one log origin."""

    __tablename__ = "witness_state"

    origin: Mapped[str] = mapped_column(String(MAX_ORIGIN), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WitnessRefusal(BilingualError):
    """A checkpoint the witness does not cosign; ``status`` is the spec's HTTP status."""

    status = 400


class MalformedRequest(WitnessRefusal):
    status = 400


class UnknownLog(WitnessRefusal):
    status = 404


class UntrustedCheckpoint(WitnessRefusal):
    status = 403


class InconsistentProof(WitnessRefusal):
    status = 422


class RewrittenLog(InconsistentProof):
    """422: the proof shows the checkpoint's tree has another root at the cosigned size. Its
    audit entry is in the session: the caller commits it, as for a :class:`SizeConflict`."""


class SizeConflict(WitnessRefusal):
    """409: the answer body is the size of the latest checkpoint cosigned for the origin."""

    status = 409

    def __init__(self, message_es: str, message_en: str, *, latest_size: int) -> None:
        super().__init__(message_es, message_en)
        self.latest_size = latest_size


class RootConflict(SizeConflict):
    """409: same size as the cosigned checkpoint, another root hash. When something was
    cosigned at that size, this is a fork and an audit entry records it in the session."""


def add_checkpoint(
    session: Session, body: bytes, witness: CosignatureSigner, *, sqlite: bool
) -> str:
    """Check an ``add-checkpoint`` request body and cosign it; returns the 200 answer body.

    Works in the caller's session: the caller commits the stored state with the answer, and
    also after a :class:`RootConflict` or a :class:`RewrittenLog` (their audit entry is the
    evidence of a fork); every other refusal it rolls back. Raises a :class:`WitnessRefusal`
    subclass for every refusal the spec names.
    """
    request = _parse(body)
    checkpoint = checkpoint_of(request.checkpoint)
    peer = active_peer_for_origin(session, checkpoint.origin)
    if peer is None:
        raise UnknownLog(
            f"Este nodo no atestigua la bitácora {checkpoint.origin!r}.",
            f"This hub does not witness the log {checkpoint.origin!r}.",
        )
    try:
        open_checkpoint(request.checkpoint, [peer.log_verifier()], origin=peer.origin)
    except SignatureError as error:
        raise UntrustedCheckpoint(
            "El punto de control no está firmado por la llave registrada para "
            f"{peer.origin!r}: {in_spanish(error)}",
            f"The checkpoint is not signed by the key pinned for {peer.origin!r}: {error}",
        ) from error
    if request.old_size > checkpoint.size:
        raise MalformedRequest(
            f"old {request.old_size} es mayor que el tamaño del punto de control "
            f"{checkpoint.size}.",
            f"old {request.old_size} exceeds the checkpoint's size {checkpoint.size}.",
        )
    state = _locked_state(session, checkpoint.origin, sqlite)
    if request.old_size != state.size:
        raise SizeConflict(
            f"old {request.old_size} no es el tamaño del último punto de control cofirmado "
            f"para {checkpoint.origin!r}, que es {state.size}.",
            f"old {request.old_size} is not the size of the latest checkpoint cosigned for "
            f"{checkpoint.origin!r}, which is {state.size}.",
            latest_size=state.size,
        )
    if checkpoint.size == state.size and checkpoint.root_hash != state.root:
        # The empty tree has one root: a log that claims another is broken, not forked.
        if state.size > 0:
            _record_fork(session, peer, state, checkpoint.root_hash, request.checkpoint)
        raise RootConflict(
            f"El punto de control tiene el tamaño {state.size} del último cofirmado para "
            f"{checkpoint.origin!r}, pero otra raíz: la bitácora se bifurcó.",
            f"The checkpoint has the size {state.size} of the latest one cosigned for "
            f"{checkpoint.origin!r}, but another root hash: the log forked.",
            latest_size=state.size,
        )
    cosigned = Checkpoint(checkpoint.origin, state.size, state.root)
    try:
        verify_checkpoint_consistency(cosigned, checkpoint, request.consistency_proof)
    except InconsistentCheckpoints as error:
        forked_root = _root_at_cosigned_size(cosigned, checkpoint, request.consistency_proof)
        if forked_root is not None:
            _record_fork(session, peer, state, forked_root, request.checkpoint)
            raise RewrittenLog(
                f"El punto de control no extiende el de tamaño {state.size} cofirmado para "
                f"{checkpoint.origin!r}: la prueba de consistencia muestra que su árbol tiene "
                "otra raíz en ese tamaño. La bitácora se bifurcó.",
                f"The checkpoint does not extend the one of size {state.size} cosigned for "
                f"{checkpoint.origin!r}: the consistency proof shows its tree has another root "
                "hash at that size. The log forked.",
            ) from error
        # The spec lets a witness keep such a request as possible evidence; it is in the log
        # line, and a signed checkpoint that no proof can reach from the cosigned one is what
        # an operator compares with the peer's published checkpoints.
        log.warning(
            "consistency proof refused",
            extra={"origin": checkpoint.origin, "reason": str(error)},
        )
        raise InconsistentProof(
            f"La prueba de consistencia no verifica: {in_spanish(error)}",
            f"The consistency proof does not verify: {error}",
        ) from error
    if checkpoint.size != state.size:
        # Only a new size moves updated_at: it marks since when forks of this size can have
        # been audited (_record_fork), and cosigning the same tree again changes nothing.
        state.size, state.root, state.updated_at = checkpoint.size, checkpoint.root_hash, utcnow()
        session.flush()
    note_text = Note.from_text(request.checkpoint).text
    cosignature = witness.cosign(note_text, int(time.time()))
    return format_cosignature_response([cosignature.to_note_signature()])


def _parse(body: bytes) -> AddCheckpointRequest:
    try:
        return AddCheckpointRequest.from_text(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise MalformedRequest(
            f"El cuerpo no es UTF-8 válido (byte {error.start}).",
            f"The body is not valid UTF-8 (byte {error.start}).",
        ) from error
    except FormatError as error:
        raise MalformedRequest(
            f"La solicitud add-checkpoint está mal formada: {in_spanish(error)}",
            f"The add-checkpoint request is malformed: {error}",
        ) from error


def _locked_state(session: Session, origin: str, sqlite: bool) -> WitnessState:
    """The origin's state row, locked for this transaction (created at size 0 if new)."""
    query = (
        select(WitnessState)
        .where(WitnessState.origin == origin)
        .execution_options(populate_existing=True)
    )
    if sqlite:
        # The first write of a SQLite transaction takes the database's one write lock (as the
        # audit sequencer does), so the size read next is the one this request replaces.
        session.execute(
            update(WitnessState)
            .where(WitnessState.origin == origin)
            .values(updated_at=WitnessState.updated_at)
        )
    else:
        query = query.with_for_update()
    state = session.scalars(query).one_or_none()
    if state is not None:
        return state
    try:
        with session.begin_nested():
            state = WitnessState(origin=origin, size=0, root=EMPTY_ROOT, updated_at=utcnow())
            session.add(state)
    except IntegrityError:
        # A concurrent first request created it (PostgreSQL made this one wait for its commit).
        return session.scalars(query).one()
    return state


#: Forked roots are named in the audit entry by this many leading bytes (hex): enough to tell
#: trees apart, and short enough for a reason code (at most 80 characters with the size).
FORK_ROOT_PREFIX = 16
#: How far before the state's ``updated_at`` earlier fork entries are looked for: the clocks of
#: the hub's processes may differ by this much.
CLOCK_LEEWAY = timedelta(minutes=10)


def _root_at_cosigned_size(
    cosigned: Checkpoint, checkpoint: Checkpoint, proof: Sequence[bytes]
) -> bytes | None:
    """The root hash the tree ``checkpoint`` signs has at the cosigned size, when ``proof``
    shows it is not the cosigned one; None when the proof shows nothing.

    A proof that rebuilds the signed root from another first root opens the log's own signed
    tree: forging one takes a hash collision, so it is the log's word that it rewrote what was
    cosigned. A proof that does not rebuild the signed root proves nothing (garbage, a bug, or
    anyone replaying the checkpoint: the route needs no token), and is no fork. When the
    cosigned size is a power of two the proof leaves its subtree out (RFC 9162: the witness
    knows it), so no other first root can show: such a fork is refused as a bad proof.
    """
    if not 0 < cosigned.size < checkpoint.size:
        return None
    try:
        root_from_consistency_proof(cosigned.size, checkpoint.size, cosigned.root_hash, proof)
        return None  # the first root is the cosigned one: the proof fails on the second
    except RootMismatch as mismatch:
        first_root = mismatch.calculated
    except ProofError:
        return None
    try:
        second_root = root_from_consistency_proof(cosigned.size, checkpoint.size, first_root, proof)
    except ProofError:
        return None
    return first_root if second_root == checkpoint.root_hash else None


def _record_fork(
    session: Session, peer: Peer, state: WitnessState, root: bytes, signed_checkpoint: str
) -> None:
    """Audit a fork once per (peer, size, root): a copy of the same checkpoint adds nothing.
    ``root`` is the forked tree's at the cosigned size: a checkpoint of that size and a larger
    one grown from the same rewritten tree are one fork.

    The caller holds the lock on ``state`` (:func:`_locked_state`) until it commits, so two
    copies sent at once are decided one after the other and the second sees the first's entry.
    Earlier entries of this size are all newer than the state's ``updated_at``, which only a
    new size moves: an indexed range of the log, not a scan of it (and only a checkpoint the
    peer's own key signed gets this far).
    """
    code = log_conflict_code(state.size, root)
    since = as_utc(state.updated_at) - CLOCK_LEEWAY
    if _conflict_audited(session, "peer_log_forked", peer.hub_id, code, since):
        log.warning(
            "peer log fork already audited: the same forked tree was sent again",
            extra={"peer": peer.hub_id, "origin": peer.origin, "size": state.size},
        )
        return
    log.critical(
        "peer log forked: a signed checkpoint whose tree has another root hash at the cosigned "
        "size",
        extra={
            "peer": peer.hub_id,
            "origin": peer.origin,
            "size": state.size,
            "forked_root": base64.b64encode(root).decode("ascii"),
            "cosigned_root": base64.b64encode(state.root).decode("ascii"),
            "signed_checkpoint": signed_checkpoint,
        },
    )
    record_log_conflict(session, "peer_log_forked", peer.hub_id, code)


def log_conflict_code(size: int, root: bytes | None = None) -> str:
    """The reason code of a log conflict entry: ``size.<size>``, and ``.root.<hex prefix>``
    when the conflicting tree's root is known (a fork this hub saw itself)."""
    code = f"size.{size}"
    return f"{code}.root.{root[:FORK_ROOT_PREFIX].hex()}" if root is not None else code


def record_log_conflict(session: Session, action: str, peer_hub_id: str, code: str) -> None:
    """Write the audit entry of two logs shown where there must be one (``peer_log_forked``,
    ``own_log_conflict_reported``): what :func:`log_fork_alerts` reports to oversight."""
    audit_log.record_event(
        session,
        action=action,
        outcome="failure",
        object_type="peer",
        object_id=peer_hub_id,
        detail=code,
    )


def _conflict_audited(
    session: Session, action: str, peer_hub_id: str, code: str, since: datetime
) -> bool:
    rows = session.scalars(
        select(AuditEntry.entry).where(AuditEntry.recorded_at >= since, AuditEntry.action == action)
    )
    for entry in rows:
        logged = json.loads(entry)
        if logged.get("reason_code") == code and logged.get("object", {}).get("id") == peer_hub_id:
            return True
    return False


#: Audit action -> alert kind: two logs shown where there must be one. ``peer_log_fork``: this
#: hub, as a peer's witness, was sent two trees of one size; ``own_log_conflict``: a peer's
#: witness cosigned a tree of this hub's log that this hub did not sign (see
#: :mod:`exchange.witnessing`). Oversight must hear of either at once.
_FORK_ALERTS = {"peer_log_forked": "peer_log_fork", "own_log_conflict_reported": "own_log_conflict"}


@register_alert_source
def log_fork_alerts(session: Session, window: AlertWindow) -> list[dict[str, Any]]:
    """Every fork this hub caught, or was told of by a witness, in the window."""
    rows = session.execute(
        select(AuditEntry.action, AuditEntry.entry, AuditEntry.recorded_at)
        .where(
            AuditEntry.action.in_(_FORK_ALERTS),
            *window.entries_within(),
        )
        .order_by(AuditEntry.recorded_at)
    )
    alerts = []
    for action, entry, recorded_at in rows:
        logged = json.loads(entry)
        alerts.append(
            {
                "kind": _FORK_ALERTS[action],
                "peer": logged.get("object", {}).get("id"),
                "size": _conflict_size(logged.get("reason_code", "")),
                "detected_at": format_time(as_utc(recorded_at)),
            }
        )
    return alerts


def _conflict_size(code: str) -> int:
    """The size in a reason code of :func:`log_conflict_code` (0 if it names none)."""
    _, _, rest = code.partition("size.")
    digits = rest.partition(".")[0]
    return int(digits) if digits.isdigit() else 0
