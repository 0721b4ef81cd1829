"""``puente audit export``: the whole log, its checkpoints and public keys, for offline checking.

The files are described in :mod:`audit.verify_export` (the verifier reads them with nothing but
the ``audit`` package) and in docs/audit.md. The export is taken from one consistent snapshot
after sequencing everything pending and signing a fresh checkpoint, so it covers every entry
committed before it started. Before writing, the peers' witnesses are asked to cosign that
checkpoint (:func:`exchange.witnessing.request_cosignatures`), and every exported checkpoint
carries the cosignatures stored for it, so ``puente audit verify --witness … --quorum N`` can
require them.

The export checks what it writes as it writes it: an index missing from the database, or an
entry whose bytes no longer hash to the leaf hash stored beside them, is named in the result
(:class:`IndexList`), so the operator learns at once that ``puente audit verify --full`` will
reject the export, rather than from the oversight body later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import Note, consistency_proof, leaf_hash
from audit.merkle import HASH_SIZE
from audit.verify_export import checkpoint_line
from exchange import db
from exchange.audit_log import AuditCheckpoint, AuditEntry, AuditTile, format_time
from exchange.audit_sequencer import TILE_WIDTH, TileCache, TileStore, integrate_pending
from exchange.auth import utcnow
from exchange.keys import audit_origin, hub_keys
from exchange.witnessing import (
    CheckpointCosignature,
    PeerOutcome,
    Post,
    all_cosignatures,
    request_cosignatures,
)
from schemas.errors import BilingualError

log = logging.getLogger("puente.audit")

EXPORT_FORMAT = "puente-audit-export/1"
ENTRIES_FILE = "entries.ndjson"
CHECKPOINTS_FILE = "checkpoints.ndjson"
LEAVES_FILE = "leaves.bin"
VKEY_FILE = "log.vkey"
KEYS_FILE = "keys.json"
MANIFEST_FILE = "manifest.json"
EXPORT_FILES = (ENTRIES_FILE, CHECKPOINTS_FILE, LEAVES_FILE, VKEY_FILE, KEYS_FILE, MANIFEST_FILE)


#: How many indices of each kind a result lists (it counts them all).
LISTED_INDICES = 100


@dataclass
class IndexList:
    """Indices of the log found wrong while exporting: how many in all, and the first
    :data:`LISTED_INDICES` of them as ranges ``(first, last)``, so a log cut short by a
    million entries costs one range, not a million numbers."""

    count: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)
    listed: int = 0

    def add(self, first: int, last: int | None = None) -> None:
        """Add the indices ``first`` to ``last`` (inclusive; ``last`` defaults to ``first``)."""
        last = first if last is None else last
        self.count += last - first + 1
        room = LISTED_INDICES - self.listed
        if room <= 0:
            return
        last = min(last, first + room - 1)
        self.listed += last - first + 1
        if self.ranges and self.ranges[-1][1] == first - 1:
            self.ranges[-1] = (self.ranges[-1][0], last)
        else:
            self.ranges.append((first, last))

    def indices(self) -> list[int]:
        """The listed indices, one by one."""
        return [i for first, last in self.ranges for i in range(first, last + 1)]

    def text(self) -> str:
        """``40, 550–599``, with ``, …`` when more were found than are listed."""
        shown = [str(a) if a == b else f"{a}–{b}" for a, b in self.ranges]
        return ", ".join(shown) + (", …" if self.count > self.listed else "")

    def __bool__(self) -> bool:
        return self.count > 0


@dataclass
class ExportResult:
    directory: Path
    entries: int = 0
    checkpoints: int = 0
    latest_checkpoint: int | None = None
    #: Indices below the latest checkpoint with no row in the database.
    missing: IndexList = field(default_factory=IndexList)
    #: Indices whose stored entry does not hash to their stored leaf hash.
    mismatched: IndexList = field(default_factory=IndexList)
    #: What each configured witness (an active peer with a witness key and a URL) answered
    #: when asked to cosign the checkpoint the export ends with.
    witnesses: list[PeerOutcome] = field(default_factory=list)
    #: The peers whose cosignature on that checkpoint is in the export.
    cosigned_by: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every entry up to the latest checkpoint was written as it was logged:
        otherwise ``puente audit verify --full`` rejects the export."""
        return not self.missing and not self.mismatched

    def missing_cosigners(self) -> list[PeerOutcome]:
        """The configured witnesses whose cosignature the exported checkpoint lacks."""
        return [peer for peer in self.witnesses if peer.hub_id not in self.cosigned_by]

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "complete": self.complete,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "latest_checkpoint": self.latest_checkpoint,
            "missing_count": self.missing.count,
            "missing_indices": self.missing.indices(),
            "leaf_hash_mismatch_count": self.mismatched.count,
            "leaf_hash_mismatches": self.mismatched.indices(),
            "witnesses_configured": len(self.witnesses),
            "cosigned_by": self.cosigned_by,
            "witnesses": [peer.to_json(lang) for peer in self.witnesses],
        }


def sequence_everything(app: Flask, *, patience: float = 30.0) -> None:
    """Integrate every pending entry and sign a checkpoint covering them.

    Waits (up to ``patience`` seconds) while another integrator holds the log.
    """
    deadline = time.monotonic() + patience
    force = False
    while time.monotonic() < deadline:
        result = integrate_pending(app, force_checkpoint=force)
        if result.skipped:
            time.sleep(0.05)
        elif result.sequenced:
            continue
        elif force:
            return
        else:
            force = True
    log.warning("audit export: the log stayed busy; exporting up to the latest checkpoint")


class FolderNotEmpty(BilingualError):
    """The export's folder holds files already, and ``force`` was not given."""


def check_export_folder(directory: Path, *, force: bool) -> None:
    """Refuse a folder that exists and is not empty, unless ``force``.

    An earlier export is evidence (a checkpoint in it can prove a later fork or rollback) and
    other files are someone's own: neither is overwritten or mixed with an export by mistake.
    A path that is not a folder is left to the writing, which says so.
    """
    if force or not directory.is_dir() or next(directory.iterdir(), None) is None:
        return
    raise FolderNotEmpty(
        f"la carpeta {directory} no está vacía: una exportación anterior es evidencia (puede "
        "probar una bifurcación o una reversión del registro) y no se sobrescribe. Elija una "
        "carpeta nueva, o use --force para escribir ahí de todos modos (los archivos de una "
        "exportación anterior se reemplazan; los demás se dejan).",
        f"the folder {directory} is not empty: an earlier export is evidence (it can prove a "
        "fork or a rollback of the log) and is not overwritten. Choose a new folder, or pass "
        "--force to write there anyway (an earlier export's files are replaced; others are "
        "left alone).",
    )


def export_log(
    app: Flask,
    directory: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    post: Post | None = None,
    force: bool = False,
) -> ExportResult:
    """Write the export to ``directory``: created, or an empty folder; with ``force`` any
    folder, whose files of an earlier export are replaced (:func:`check_export_folder`).

    ``progress(done, total)`` is called as entries are written; ``post`` makes the requests to
    the witnesses (:func:`exchange.witnessing.request_cosignatures`). The export ends with the
    checkpoint the witnesses were asked to cosign, even if another process signs a newer one
    meanwhile. Files are written under
    ``.partial`` names and take their own names only once the whole export is written, the
    manifest last: an export cut short (the database went away) leaves an earlier export in
    the folder as it was, never half of a new one.
    """
    check_export_folder(directory, force=force)
    sequence_everything(app)
    run = request_cosignatures(app, post=post)
    directory.mkdir(parents=True, exist_ok=True)
    digests: dict[str, dict[str, Any]] = {}
    try:
        result = _write_export(app, directory, digests, progress, run.checkpoint_size)
        result.witnesses = run.peers
        for name in [*digests, MANIFEST_FILE]:
            os.replace(_partial(directory / name), directory / name)
    finally:
        # The export's own partial files, if it stopped before renaming them; nothing else
        # in the folder is touched.
        for name in EXPORT_FILES:
            _partial(directory / name).unlink(missing_ok=True)
    return result


PARTIAL_SUFFIX = ".partial"


def _partial(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _write_export(
    app: Flask,
    directory: Path,
    digests: dict[str, dict[str, Any]],
    progress: Callable[[int, int], None] | None,
    last_size: int | None,
) -> ExportResult:
    result = ExportResult(directory)
    with db.database(app).sessions() as session:
        _snapshot(session)
        query = select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
        if last_size is not None:
            query = query.where(AuditCheckpoint.size <= last_size)
        latest = session.scalars(query).first()
        size = latest.size if latest is not None else 0
        result.latest_checkpoint = size if latest is not None else None
        with _HashingWriter(directory / ENTRIES_FILE, digests) as out:
            result.entries = _write_entries(session, size, out, progress, result)
        with _HashingWriter(directory / CHECKPOINTS_FILE, digests) as out:
            result.checkpoints = _write_checkpoints(session, size, out)
        result.cosigned_by = list(
            session.scalars(
                select(CheckpointCosignature.peer_hub_id)
                .where(CheckpointCosignature.checkpoint_size == size)
                .order_by(CheckpointCosignature.peer_hub_id)
            )
        )
        with _HashingWriter(directory / LEAVES_FILE, digests) as out:
            _write_leaves(session, size, out)
        session.rollback()
    signer = hub_keys(app).log
    witness = hub_keys(app).witness
    keys = {
        "origin": audit_origin(app),
        "log_vkey": signer.vkey if signer else None,
        "witness_vkey": witness.vkey if witness else None,
    }
    if keys["log_vkey"] is not None:
        # Without the log key the hub cannot say what it is: no log.vkey rather than a wrong
        # one (its stored checkpoints still verify with the key oversight pinned).
        with _HashingWriter(directory / VKEY_FILE, digests) as out:
            out.write(f"{keys['log_vkey']}\n".encode())
    else:
        (directory / VKEY_FILE).unlink(missing_ok=True)
    with _HashingWriter(directory / KEYS_FILE, digests) as out:
        out.write((json.dumps(keys, indent=2) + "\n").encode())
    manifest = {
        "format": EXPORT_FORMAT,
        "hub_id": app.config["HUB_ID"],
        "origin": audit_origin(app),
        "exported_at": format_time(utcnow()),
        "entries": result.entries,
        "checkpoints": result.checkpoints,
        "latest_checkpoint_size": result.latest_checkpoint,
        "files": digests,
        **({} if result.complete else {"incomplete": _damage(result)}),
        "note": (
            "Verify with: puente audit verify --full DIR --vkey <the hub's log key, obtained "
            "independently>. log.vkey here is the exporting hub's own claim."
        ),
    }
    _partial(directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return result


def _snapshot(session: Session) -> None:
    # Every query of the export must see the same log: one repeatable-read transaction on
    # PostgreSQL; a SQLite read transaction already reads one snapshot until it ends.
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _damage(result: ExportResult) -> dict[str, Any]:
    """What the manifest says of an incomplete export (unsigned, like all of it: a hint for
    whoever opens the folder, never what the verifier decides on)."""
    return {
        "missing_count": result.missing.count,
        "missing_indices": result.missing.indices(),
        "leaf_hash_mismatch_count": result.mismatched.count,
        "leaf_hash_mismatches": result.mismatched.indices(),
    }


def _write_entries(
    session: Session,
    size: int,
    out: _HashingWriter,
    progress: Callable[[int, int], None] | None,
    result: ExportResult,
) -> int:
    """Write entries ``0 .. size-1``; note in ``result`` the indices missing from the database
    and the entries whose bytes do not hash to their stored leaf hash. Both are written as
    they are (the export shows the damage, and the verifier names it); neither is hidden."""
    rows = session.execute(
        select(AuditEntry.idx, AuditEntry.entry, AuditEntry.leaf_hash)
        .where(AuditEntry.idx < size)
        .order_by(AuditEntry.idx)
        .execution_options(yield_per=5000)
    )
    expected = 0
    for index, entry, stored_hash in rows:
        if index > expected:
            result.missing.add(expected, index - 1)
            log.error("audit export: entries %d..%d missing from the database", expected, index - 1)
        data = bytes(entry)
        if leaf_hash(data) != bytes(stored_hash):
            result.mismatched.add(index)
        out.write(data + b"\n")
        expected = index + 1
        if progress is not None and expected % 10000 == 0:
            progress(expected, size)
    if progress is not None:
        progress(expected, size)
    if expected != size:
        result.missing.add(expected, size - 1)
        log.error("audit export: entries %d..%d missing from the database", expected, size - 1)
    if result.mismatched:
        log.error(
            "audit export: %d entries do not match their stored leaf hash (first: %s)",
            result.mismatched.count,
            result.mismatched.text(),
        )
    return out.lines


def _write_checkpoints(session: Session, size: int, out: _HashingWriter) -> int:
    store = TileStore(session, TileCache(capacity=64))
    previous = None
    count = 0
    rows = session.scalars(
        select(AuditCheckpoint).where(AuditCheckpoint.size <= size).order_by(AuditCheckpoint.size)
    )
    cosignatures = all_cosignatures(session, up_to=size)
    for checkpoint in rows:
        proof: list[bytes] = []
        if previous is not None and 0 < previous < checkpoint.size:
            proof = consistency_proof(previous, checkpoint.size, store)
        note = checkpoint.note
        if checkpoint.size in cosignatures:
            note = Note.from_text(note).with_signatures(cosignatures[checkpoint.size]).to_text()
        out.write((checkpoint_line(note, proof) + "\n").encode())
        previous = checkpoint.size
        count += 1
    return count


def _write_leaves(session: Session, size: int, out: _HashingWriter) -> None:
    tiles = session.execute(
        select(AuditTile.tile_index, AuditTile.hashes)
        .where(AuditTile.level == 0, AuditTile.tile_index * TILE_WIDTH < size)
        .order_by(AuditTile.tile_index)
        .execution_options(yield_per=256)
    )
    written = 0
    for _index, hashes in tiles:
        data = bytes(hashes)[: (size - written) * HASH_SIZE]
        out.write(data)
        written += len(data) // HASH_SIZE


class _HashingWriter:
    """A binary file that records its SHA-256, size and line count for the manifest."""

    def __init__(self, path: Path, digests: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self.digests = digests
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.lines = 0

    def __enter__(self) -> _HashingWriter:
        self.handle = _partial(self.path).open("wb")  # renamed by export_log at the end
        return self

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        self.lines += data.count(b"\n")
        return self.handle.write(data)

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
        self.digests[self.path.name] = {"sha256": self.sha256.hexdigest(), "bytes": self.bytes}
