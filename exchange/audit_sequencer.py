"""Sequencing the audit log: indices, tree tiles and signed checkpoints (like Tessera).

Actions write unsequenced entries (:func:`exchange.audit_log.record_event`). The integrator
takes them in insertion order, gives each the next index, extends the Merkle tree with
:class:`audit.CompactRange`, stores every tree node in C2SP tlog-tiles tiles (256 hashes of
one tree level per row, so any proof reads O(log n) rows) and signs a checkpoint with the hub's
log key, all in one transaction. It runs:

- in a daemon thread of every hub process (:func:`ensure_integrator`, started at the first
  request), every ``AUDIT_INTEGRATE_INTERVAL`` seconds when there is work;
- on demand, :func:`integrate_pending` (tests, ``puente audit export``, ``puente worker``).

Only one integrator works at a time: the single ``audit_log_state`` row is locked
(``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so others skip; on SQLite the first write
takes the database's one write lock). A checkpoint is signed only after checking, with a
consistency proof from the stored tiles, that the new tree extends the last signed one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256

from flask import Flask
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit import (
    Checkpoint,
    CompactRange,
    InconsistentCheckpoints,
    NodeId,
    checkpoint_of,
    consistency_proof,
    sign_checkpoint,
    verify_checkpoint_consistency,
)
from audit.merkle import EMPTY_ROOT, HASH_SIZE, leaf_hash
from exchange import db
from exchange.audit_log import AuditCheckpoint, AuditEntry, AuditLogState, AuditTile
from exchange.auth import as_utc, utcnow
from exchange.keys import audit_origin, hub_keys

log = logging.getLogger("puente.audit")

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # hashes per tile (C2SP tlog-tiles)
STATE_ID = 1

DEFAULT_INTERVAL = 0.25  # seconds between integrator runs (Tessera: 250 ms)
DEFAULT_BATCH = 256  # entries per index-assignment batch (Tessera: 256)
DEFAULT_MAX_PER_RUN = 16 * DEFAULT_BATCH
DEFAULT_CHECKPOINT_INTERVAL = 0.25  # least seconds between checkpoints: at most one per run


class LogIntegrityError(RuntimeError):
    """The stored tree does not extend the last signed checkpoint: nothing is signed."""


@dataclass(frozen=True)
class Integration:
    """What one integrator run did."""

    sequenced: int = 0
    size: int | None = None
    checkpoint: int | None = None  # size of the checkpoint signed by this run
    skipped: bool = False  # another integrator held the lock


class TileStore:
    """:class:`audit.HashSource` over ``audit_tile`` rows (C2SP tlog-tiles layout).

    Nodes at tree levels ``8k`` are stored; a node at level ``8k + r`` is the hash of ``2**r``
    consecutive stored nodes of one tile. ``cache`` (optional) keeps full tiles, which never
    change, between calls; the integrator never uses one, so it always reads what is stored.
    """

    def __init__(self, session: Session, cache: TileCache | None = None):
        self.session = session
        self.cache = cache

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        plan = []
        for node in ids:
            tile_level, height = divmod(node.level, TILE_HEIGHT)
            first = node.index << height
            plan.append(((tile_level, first >> TILE_HEIGHT), first % TILE_WIDTH, 1 << height))
        tiles = self.tiles({key for key, _, _ in plan})
        out = []
        for (key, offset, count), node in zip(plan, ids, strict=True):
            data = tiles.get(key, b"")
            if len(data) < (offset + count) * HASH_SIZE:
                raise KeyError(f"node {node} is not stored (tile {key} has {len(data)} bytes)")
            start, end = offset * HASH_SIZE, (offset + count) * HASH_SIZE
            hashes = [data[i : i + HASH_SIZE] for i in range(start, end, HASH_SIZE)]
            while len(hashes) > 1:  # RFC 9162 node hashes, level by level, inlined for speed
                hashes = [
                    sha256(b"\x01" + left + right).digest()
                    for left, right in zip(hashes[::2], hashes[1::2], strict=True)
                ]
            out.append(hashes[0])
        return out

    def tiles(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        missing = set(keys)
        if self.cache is not None:
            for key in keys:
                cached = self.cache.get(key)
                if cached is not None:
                    found[key] = cached
            missing -= found.keys()
        if missing:
            rows = self.session.execute(
                select(AuditTile.level, AuditTile.tile_index, AuditTile.hashes).where(
                    # One primary-key range per tile level (a row-value IN is not indexed
                    # by SQLite).
                    or_(
                        *(
                            and_(AuditTile.level == level, AuditTile.tile_index.in_(indices))
                            for level, indices in _by_level(missing).items()
                        )
                    )
                )
            )
            for level, index, hashes in rows:
                found[(level, index)] = bytes(hashes)
                if self.cache is not None and len(hashes) == TILE_WIDTH * HASH_SIZE:
                    self.cache.put((level, index), found[(level, index)])
        return found


class TileCache:
    """A bounded least-recently-used map of full tiles (which never change once full)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._tiles: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> bytes | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
            return tile

    def put(self, key: tuple[int, int], tile: bytes) -> None:
        with self._lock:
            self._tiles[key] = tile
            self._tiles.move_to_end(key)
            while len(self._tiles) > self.capacity:
                self._tiles.popitem(last=False)


def tile_cache(app: Flask) -> TileCache:
    """This process's cache of full tiles for ``app`` (1024 tiles: 8 MiB at most)."""
    cache: TileCache | None = app.extensions.get("puente.audit_tiles")
    if cache is None:
        cache = app.extensions.setdefault("puente.audit_tiles", TileCache())
    return cache


def _by_level(keys: set[tuple[int, int]]) -> dict[int, list[int]]:
    levels: dict[int, list[int]] = {}
    for level, index in sorted(keys):
        levels.setdefault(level, []).append(index)
    return levels


class _TileWriter:
    """Collects the nodes a batch completes into tiles, then writes the tiles it touched."""

    def __init__(self, session: Session, size: int) -> None:
        self.session = session
        self.tiles: dict[tuple[int, int], bytearray] = {}
        self.existing: set[tuple[int, int]] = set()
        partial = []
        level = 0
        while size >> (TILE_HEIGHT * level):
            nodes = size >> (TILE_HEIGHT * level)
            if nodes % TILE_WIDTH:
                partial.append((level, nodes // TILE_WIDTH))
            level += 1
        for key, hashes in TileStore(session).tiles(set(partial)).items():
            self.tiles[key] = bytearray(hashes)
            self.existing.add(key)
        if len(self.existing) != len(partial):
            raise LogIntegrityError(f"partial tiles {sorted(set(partial) - self.existing)} missing")

    def visit(self, node: NodeId, h: bytes) -> None:
        tile_level, height = divmod(node.level, TILE_HEIGHT)
        if height:
            return
        key = (tile_level, node.index >> TILE_HEIGHT)
        tile = self.tiles.setdefault(key, bytearray())
        if len(tile) != (node.index % TILE_WIDTH) * HASH_SIZE:
            raise LogIntegrityError(f"tile {key} has {len(tile) // HASH_SIZE} hashes before {node}")
        tile += h

    def write(self) -> None:
        for key, hashes in self.tiles.items():
            if key in self.existing:
                self.session.execute(
                    update(AuditTile)
                    .where(AuditTile.level == key[0], AuditTile.tile_index == key[1])
                    .values(hashes=bytes(hashes))
                )
            else:
                self.session.add(AuditTile(level=key[0], tile_index=key[1], hashes=bytes(hashes)))


def integrate_pending(app: Flask, *, force_checkpoint: bool = False) -> Integration:
    """Sequence the entries waiting, store their tree nodes and sign a checkpoint if due.

    A checkpoint is due when the tree grew and ``AUDIT_CHECKPOINT_INTERVAL`` has passed since
    the last one, or at once with ``force_checkpoint`` (exports). Returns what was done;
    ``skipped`` when another integrator (thread or process) is at work.
    """
    if not _PROCESS_LOCK.acquire(blocking=False):
        return Integration(skipped=True)
    try:
        database = db.database(app)
        with database.sessions() as session:
            if not force_checkpoint and not _has_work(app, session):
                session.rollback()
                return Integration()
            state = _lock_state(session, database.is_sqlite)
            if state is None:
                session.rollback()
                return Integration(skipped=True)
            try:
                result = _integrate(app, session, state, force_checkpoint)
            except Exception:
                session.rollback()
                raise
            session.commit()
            return result
    finally:
        _PROCESS_LOCK.release()


_PROCESS_LOCK = threading.Lock()


def _has_work(app: Flask, session: Session) -> bool:
    pending = session.scalar(select(AuditEntry.id).where(AuditEntry.idx.is_(None)).limit(1))
    if pending is not None:
        return True
    size = session.scalar(select(AuditLogState.size).where(AuditLogState.id == STATE_ID))
    latest = session.execute(
        select(AuditCheckpoint.size, AuditCheckpoint.signed_at)
        .order_by(AuditCheckpoint.size.desc())
        .limit(1)
    ).first()
    if latest is None:
        return True  # sign the first checkpoint, even of the empty tree
    return (size or 0) > latest.size and _checkpoint_due(app, latest.signed_at)


def _checkpoint_due(app: Flask, last_signed_at: datetime) -> bool:
    interval = float(app.config.get("AUDIT_CHECKPOINT_INTERVAL") or DEFAULT_CHECKPOINT_INTERVAL)
    return utcnow() - as_utc(last_signed_at) >= timedelta(seconds=interval)


def _lock_state(session: Session, is_sqlite: bool) -> AuditLogState | None:
    """Lock the state row (creating it for a new log); ``None`` if another integrator has it."""
    if is_sqlite:
        # The first write of a SQLite transaction takes the database's single write lock,
        # which serialises integrators across processes (BEGIN IMMEDIATE semantics).
        session.execute(
            update(AuditLogState)
            .where(AuditLogState.id == STATE_ID)
            .values(updated_at=AuditLogState.updated_at)
        )
        query = select(AuditLogState).where(AuditLogState.id == STATE_ID)
    else:
        query = (
            select(AuditLogState)
            .where(AuditLogState.id == STATE_ID)
            .with_for_update(skip_locked=True)
        )
    state = session.scalars(query).one_or_none()
    if state is not None:
        return state
    exists = session.scalar(select(func.count()).select_from(AuditLogState))
    if exists:
        return None  # locked by another integrator (PostgreSQL SKIP LOCKED)
    state = AuditLogState(
        id=STATE_ID, size=0, compact_hashes=b"", root=EMPTY_ROOT, updated_at=utcnow()
    )
    session.add(state)
    try:
        session.flush()
    except IntegrityError:  # created meanwhile by another integrator: let it work
        session.rollback()
        return None
    return state


def _integrate(
    app: Flask, session: Session, state: AuditLogState, force_checkpoint: bool
) -> Integration:
    hashes = bytes(state.compact_hashes)
    tree = CompactRange(
        state.size, [hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)]
    )
    if tree.root() != bytes(state.root):
        raise _refuse(f"stored root of size {state.size} does not match the stored compact range")
    max_entries = int(app.config.get("AUDIT_MAX_PER_RUN") or DEFAULT_MAX_PER_RUN)
    batch = int(app.config.get("AUDIT_BATCH_SIZE") or DEFAULT_BATCH)
    pending = session.execute(
        select(AuditEntry.id, AuditEntry.entry)
        .where(AuditEntry.idx.is_(None))
        .order_by(AuditEntry.id)
        .limit(max_entries)
    ).all()
    if pending:
        writer = _TileWriter(session, tree.size)
        connection = session.connection()
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        assign = f"UPDATE audit_entry SET idx = {mark} WHERE id = {mark}"  # noqa: S608
        for start in range(0, len(pending), batch):
            rows = []
            for entry_id, entry in pending[start : start + batch]:
                rows.append((tree.size, entry_id))
                # The tree commits to the entry bytes themselves, not to a stored hash.
                tree.append(leaf_hash(bytes(entry)), writer.visit)
            connection.exec_driver_sql(assign, rows)
        writer.write()
        state.size = tree.size
        state.compact_hashes = b"".join(tree.hashes)
        state.root = tree.root()
        state.updated_at = utcnow()
        session.flush()
    signed = _sign_if_due(app, session, tree, force_checkpoint)
    return Integration(sequenced=len(pending), size=tree.size, checkpoint=signed)


#: Set while this process has said that it signs no checkpoint for want of the log key.
_UNSIGNED_SAID = "puente.audit_unsigned_said"


def _sign_if_due(app: Flask, session: Session, tree: CompactRange, force: bool) -> int | None:
    latest = session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
    ).first()
    if latest is not None:
        if tree.size < latest.size:
            raise _refuse(f"tree of size {tree.size} is behind checkpoint {latest.size}")
        if tree.size == latest.size:
            if tree.root() != bytes(latest.root):
                raise _refuse(f"tree root at size {tree.size} differs from its checkpoint")
            return None
        if not force and not _checkpoint_due(app, latest.signed_at):
            return None
    signer = hub_keys(app).log
    if signer is None:
        # Said once until a key is loaded again, not at every run (several a second).
        if not app.extensions.get(_UNSIGNED_SAID):
            app.extensions[_UNSIGNED_SAID] = True
            log.error(
                "audit log key not loaded: checkpoints are not signed (log size %d); "
                "said once until the key is loaded",
                tree.size,
            )
        return None
    app.extensions.pop(_UNSIGNED_SAID, None)
    new = Checkpoint(audit_origin(app), tree.size, tree.root())
    if latest is not None:
        old = checkpoint_of(latest.note)
        proof = consistency_proof(old.size, new.size, TileStore(session)) if old.size else []
        try:
            verify_checkpoint_consistency(old, new, proof)
        except InconsistentCheckpoints as error:
            raise _refuse(str(error)) from error
    session.add(
        AuditCheckpoint(
            size=new.size,
            root=new.root_hash,
            note=sign_checkpoint(new, [signer]),
            signed_at=utcnow(),
        )
    )
    return new.size


def _refuse(reason: str) -> LogIntegrityError:
    log.critical("AUDIT LOG INTEGRITY FAILURE: refusing to sign a checkpoint: %s", reason)
    return LogIntegrityError(reason)


# --- the integrator thread -------------------------------------------------------------------

EXTENSION_KEY = "puente.audit_integrator"
_START_LOCK = threading.Lock()
MAX_BACKOFF = 60.0  # seconds between attempts while runs keep failing (database down, …)


def integrator_enabled(app: Flask, *, serving: bool) -> bool:
    """Whether this process runs the integrator thread (``AUDIT_INTEGRATOR_THREAD``).

    Unset: yes in ``puente serve`` workers (gunicorn's ``post_worker_init``), unless
    ``TESTING``; no in other processes (commands, tests, scripts). ``True``: also in any
    process that serves a request (another WSGI server). ``False``: never.
    """
    setting = app.config.get("AUDIT_INTEGRATOR_THREAD")
    if setting is None:
        return serving and not app.config.get("TESTING")
    return bool(setting)


class IntegratorThread(threading.Thread):
    """Runs :func:`integrate_pending` every ``interval`` seconds until stopped."""

    def __init__(self, app: Flask, interval: float) -> None:
        super().__init__(name="puente-audit-integrator", daemon=True)
        self.app = app
        self.interval = interval
        self.pid = os.getpid()
        self._stopped = threading.Event()

    def run(self) -> None:
        wait = self.interval
        while not self._stopped.wait(wait):
            try:
                done = integrate_pending(self.app)
                # Like Tessera: a full batch waiting is sequenced at once; a partial one waits
                # for the interval, so a burst of writes never leaves the log behind.
                wait = 0 if done.sequenced >= DEFAULT_BATCH else self.interval
            except Exception as error:
                # After a full batch the wait was 0: back off from the interval, never spin.
                wait = min(MAX_BACKOFF, max(wait, self.interval) * 2)
                reason = db.unavailable_reason(error)
                if reason is not None:  # the operator's to fix: one line, not a traceback
                    log.warning(
                        "audit integrator run failed: %s; next attempt in %.1f s", reason[1], wait
                    )
                else:
                    log.exception("audit integrator run failed; next attempt in %.1f s", wait)

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


def ensure_integrator(app: Flask, *, serving: bool = False) -> IntegratorThread | None:
    """Start this process's integrator thread once (after a fork too), if enabled."""
    current = app.extensions.get(EXTENSION_KEY)
    if current is not None and current.pid == os.getpid():
        return current  # type: ignore[no-any-return]
    if not integrator_enabled(app, serving=serving):
        return None
    with _START_LOCK:
        current = app.extensions.get(EXTENSION_KEY)
        if current is not None and current.pid == os.getpid():
            return current  # type: ignore[no-any-return]
        interval = float(app.config.get("AUDIT_INTEGRATE_INTERVAL") or DEFAULT_INTERVAL)
        thread = IntegratorThread(app, interval)
        thread.start()
        app.extensions[EXTENSION_KEY] = thread
        return thread


def stop_integrator(app: Flask) -> None:
    thread = app.extensions.pop(EXTENSION_KEY, None)
    if thread is not None:
        thread.stop()
