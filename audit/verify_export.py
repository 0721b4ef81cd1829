"""Offline verification of a whole exported log, with the log's public key only.

An export (written by ``puente audit export``) is, besides a manifest and the public keys:

- ``entries.ndjson`` — line ``i`` is entry ``i``, exactly the bytes hashed as leaf ``i``
  (RFC 8785 canonical JSON never contains a newline);
- ``checkpoints.ndjson`` — every signed checkpoint, by size, one JSON object per line:
  ``{"size": N, "note": "<signed note>", "consistency": ["<base64 hash>", ...]}`` where
  ``consistency`` is the RFC 9162 consistency proof from the previous line's checkpoint;
- ``leaves.bin`` — the hub's stored leaf hashes, 32 bytes each, by index. Never trusted: used
  only to say WHICH entry is wrong, after checking they hash to a signed root.

The exporter signs a fresh checkpoint and ends the export there, so the last checkpoint
covers every entry: an export without a signed checkpoint, or with entries after the last one,
is refused.

:func:`verify_export` streams the entries once (memory stays O(log n)), recomputes the tree,
and checks, checkpoint by checkpoint, the log's signature and the recomputed root at its size;
plus any checkpoints the auditor kept from earlier. The caller opens the files and passes
iterables: this module does no I/O.

Only signed data can accuse the hub. The consistency proofs, the order of the lines and the
leaf hashes are not signed, and anyone who handled the file can damage them, so:

- a checkpoint whose signed root matches the recomputed tree is consistent with every earlier
  one that also matches, whatever its stored proof says: a failing proof there, or a line out
  of order, means the file is damaged (:class:`DamagedExport`);
- a checkpoint that does not match is a *suspect*: the entries may be wrong, or the checkpoint
  a fork. A later signed checkpoint that does match vouches for the entries, so the suspect
  contradicts it (:class:`ForkedCheckpoints`, both named); if none does, the entries are
  reported (:class:`BadEntry`, the first wrong one from the first suspect).

Every error carries its message in Spanish as well (``error.es``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from audit._encoding import b64decode_strict, b64encode
from audit.checkpoint import (
    Checkpoint,
    checkpoint_of,
    judge_consistency_proof,
    open_checkpoint,
    verify_checkpoint_consistency,
)
from audit.compact import CompactRange
from audit.cosignature import Cosignature, CosignatureVerifier, verify_cosignatures
from audit.entry import parse_canonical_entry
from audit.errors import (
    EntryError,
    FormatError,
    InconsistentCheckpoints,
    SignatureError,
    in_spanish,
    spanish_cause,
)
from audit.merkle import HASH_SIZE
from audit.note import NoteVerifier

LeafReader = Callable[[int, int], bytes]
"""``leaves(start, end)``: the export's stored leaf hashes of entries ``[start, end)``."""

Text = tuple[str, str]
"""A message in Spanish and English, in that order."""

_CHUNK = 8192  # entries read at a time: a few MB of lines


class BadEntry(EntryError):
    """An exported entry is not the one the log signed; ``index`` names the first such entry."""

    def __init__(self, index: int, reason: Text) -> None:
        spanish, english = reason
        super().__init__(f"entry {index}: {english}", es=f"entrada {index}: {spanish}")
        self.index = index


class ForkedCheckpoints(InconsistentCheckpoints):
    """Two signed checkpoints cannot both be right: the log forked, or was rolled back.

    ``first`` and ``second`` name them in English, ``first_es`` and ``second_es`` in Spanish;
    ``between`` holds the two checkpoints (for a rollback, the kept one and the export's
    latest).
    """

    def __init__(
        self, first: Text, second: Text, reason: Text, *, between: tuple[Checkpoint, Checkpoint]
    ) -> None:
        (self.first_es, self.first), (self.second_es, self.second) = first, second
        self.between = between
        super().__init__(
            f"{self.first} and {self.second} are inconsistent: {reason[1]}",
            es=f"{self.first_es} y {self.second_es} son inconsistentes: {reason[0]}",
        )


class DamagedExport(FormatError):
    """An unsigned part of the export (a stored proof, the order of the checkpoint lines) is
    wrong while the signed checkpoints agree with the entries: the file was damaged or edited
    in transit, which says nothing against the hub. ``line`` is the checkpoints line."""

    def __init__(self, line: int, reason: Text) -> None:
        super().__init__(
            f"checkpoints line {line}: {reason[1]}",
            es=f"línea {line} de checkpoints.ndjson: {reason[0]}",
        )
        self.line = self.checkpoints_line = line


class MalformedCheckpointLine(FormatError):
    """A ``checkpoints.ndjson`` line that is not ``{"size", "note", "consistency"}`` JSON."""

    def __init__(self, line: int, reason: Text) -> None:
        super().__init__(
            f"checkpoints line {line} is malformed: {reason[1]}",
            es=f"la línea {line} de checkpoints.ndjson está mal formada: {reason[0]}",
        )
        self.checkpoints_line = line


class UnsignedExport(SignatureError):
    """No checkpoint in the export is signed by the log: nothing in it is vouched for."""


@dataclass(frozen=True)
class ExportSummary:
    """What a successful :func:`verify_export` established. ``cosignatures``: those of the
    ``witnesses`` given that cosigned the latest checkpoint (the only one whose cosignatures
    are checked)."""

    entries: int
    checkpoints: int
    latest: Checkpoint
    kept: tuple[Checkpoint, ...] = ()
    cosignatures: tuple[Cosignature, ...] = ()


def checkpoint_line(note: str, consistency: Sequence[bytes]) -> str:
    """One ``checkpoints.ndjson`` line (without newline), as the exporter writes it."""
    size = checkpoint_of(note).size
    proof = [b64encode(h) for h in consistency]
    return json.dumps({"size": size, "note": note, "consistency": proof}, ensure_ascii=False)


@dataclass(frozen=True)
class ExportedCheckpoint:
    """One parsed ``checkpoints.ndjson`` line (signature not yet checked)."""

    line: int
    note: str
    consistency: tuple[bytes, ...]

    @classmethod
    def from_line(cls, text: str | bytes, line: int) -> ExportedCheckpoint:
        """Parse line number ``line``; raises :class:`MalformedCheckpointLine`."""
        try:
            value = json.loads(text)  # also UnicodeDecodeError, a ValueError, for bytes
        except (ValueError, RecursionError) as e:
            raise MalformedCheckpointLine(line, (spanish_cause(e), str(e))) from e
        note = value.get("note") if isinstance(value, dict) else None
        proof = value.get("consistency") if isinstance(value, dict) else None
        if (
            not isinstance(note, str)
            or not isinstance(proof, list)
            or not all(isinstance(h, str) for h in proof)
        ):
            raise MalformedCheckpointLine(line, _LINE_SHAPE)
        try:
            hashes = tuple(
                b64decode_strict(h, f"consistency hash {i}", FormatError)
                for i, h in enumerate(proof)
            )
        except FormatError as e:
            raise MalformedCheckpointLine(line, (in_spanish(e), str(e))) from e
        _check_stated_size(value.get("size"), note, line)
        return cls(line, note, hashes)


def _check_stated_size(size: object, note: str, line: int) -> None:
    """The line's ``size`` is a copy of the note's, for readers' scripts; one that differs is
    a damaged line (the signed note governs, and its own damage is reported when it is read)."""
    if size is None:
        return
    try:
        signed = checkpoint_of(note).size
    except FormatError:
        return
    if type(size) is not int or size != signed:
        raise MalformedCheckpointLine(
            line,
            (
                f'"size" es {size!r}, pero el punto de control firmado es de tamaño {signed}',
                f'"size" is {size!r}, but the signed checkpoint has size {signed}',
            ),
        )


_LINE_SHAPE: Text = (
    'se esperaba un objeto JSON con "note" (el punto de control firmado, texto) y '
    '"consistency" (una lista de hashes en base64)',
    'want a JSON object with "note" (the signed checkpoint, a string) and "consistency" '
    "(a list of base64 hashes)",
)


def describe(checkpoint: Checkpoint) -> str:
    return names(checkpoint)[1]


def names(checkpoint: Checkpoint, label: Text = ("", "")) -> Text:
    """``checkpoint 600 (<root>)`` in Spanish and English; ``label`` qualifies it (:data:`KEPT`)."""
    root = b64encode(checkpoint.root_hash)
    spanish = f"el punto de control {checkpoint.size} ({root})"
    english = f"checkpoint {checkpoint.size} ({root})"
    if label[0]:
        spanish = f"{spanish} {label[0]}"
    if label[1]:
        english = f"{label[1]} {english}"
    return spanish, english


def _of(spanish: str) -> str:
    """``de`` before a Spanish noun phrase, contracted with ``el`` as Spanish requires."""
    return f"del {spanish[3:]}" if spanish.startswith("el ") else f"de {spanish}"


KEPT: Text = ("que usted conservó", "the kept")
EXPORTED: Text = ("exportado", "the exported")


def verify_export(
    entries: Callable[[], Iterable[bytes]],
    checkpoints: Iterable[str | bytes],
    log_verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    leaves: LeafReader | None = None,
    kept: Sequence[str] = (),
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Verify an export; return what was verified or raise the first failure, in log order.

    ``entries()`` returns a fresh iterator of the entry lines each time it is called (it is
    called again only to explain a failure). ``kept`` are signed checkpoints the auditor
    obtained earlier; the export must be consistent with each. ``witnesses``/``quorum``
    apply to the latest checkpoint. Without ``origin``, the first checkpoint's origin is the
    log's. Raises:

    - :class:`UnsignedExport` (a :class:`SignatureError`) — the export has no checkpoint;
    - :class:`SignatureError` — a checkpoint (exported or kept) is not signed by a log key,
      or the latest lacks the witness quorum;
    - :class:`ForkedCheckpoints` — two signed checkpoints disagree (naming both);
    - :class:`BadEntry` — an entry changed, missing, reordered or inserted (naming the first),
      or lines after the latest checkpoint;
    - :class:`DamagedExport` — a stored consistency proof or the order of the checkpoint lines
      is wrong, although the signed checkpoints agree with the entries;
    - :class:`MalformedCheckpointLine` (a :class:`~audit.errors.FormatError`) — a malformed
      checkpoints line.

    An error about one line of ``checkpoints`` names it in ``checkpoints_line`` (a damaged or
    malformed line, or a checkpoint there that does not open).
    """
    pending_kept = sorted(
        (_open(text, log_verifiers, origin, _KEPT_WHERE) for text in kept),
        key=lambda c: c.size,
    )
    walker = _TreeWalker(entries, leaves, progress)
    anchor: Checkpoint | None = None  # the latest checkpoint that matched the recomputed tree
    suspects: list[Checkpoint] = []  # signed checkpoints after it that do not: undecided
    previous: Checkpoint | None = None  # the previous line's
    latest_note = ""
    furthest = 0  # the largest size reached, to which the recomputed tree has advanced
    count = 0
    for number, line in enumerate(checkpoints, 1):
        record = ExportedCheckpoint.from_line(line, number)
        checkpoint = _open(record.note, log_verifiers, origin, _line_where(number), number)
        origin = origin or checkpoint.origin  # one export is one log
        count = number
        if (
            previous is not None
            and previous.size == checkpoint.size
            and previous.root_hash != checkpoint.root_hash
        ):
            # Two signed roots for one size: no unsigned data is involved.
            raise ForkedCheckpoints(
                names(previous), names(checkpoint), _SAME_SIZE, between=(previous, checkpoint)
            )
        if checkpoint.size < furthest:
            # The tree has already passed this size: recompute it once, for this failure.
            if walker.root_at(checkpoint.size) == checkpoint.root_hash:
                raise DamagedExport(number, _out_of_order(checkpoint, furthest))
            if anchor is not None and checkpoint.size <= anchor.size:
                raise _contradicts(checkpoint, anchor)
            suspects.append(checkpoint)
        else:
            while pending_kept and pending_kept[0].size <= checkpoint.size:
                walker.check_kept(pending_kept.pop(0), checkpoint)
            furthest = checkpoint.size
            if not walker.matches(checkpoint):
                suspects.append(checkpoint)
            elif suspects:
                raise _contradicts(suspects[0], checkpoint)
            else:
                if previous is not None:  # the anchor: it matched too
                    _check_stored_proof(previous, checkpoint, record)
                walker.accept(checkpoint)
                anchor = checkpoint
        previous, latest_note = checkpoint, record.note
    if previous is None:
        raise UnsignedExport(
            "the export has no checkpoint signed by the hub's log key (checkpoints.ndjson is "
            "empty), so nothing in it is vouched for and nothing was verified: an export "
            "always ends with a checkpoint the hub signs when exporting",
            es="la exportación no tiene ningún punto de control firmado con la llave del "
            "registro del nodo (checkpoints.ndjson está vacío), así que la llave no respalda "
            "nada de su contenido y no se verificó nada: toda exportación termina con un punto "
            "de control que el nodo firma al exportar",
        )
    if suspects:
        raise walker.explain(suspects)
    # Only the latest checkpoint's cosignatures are checked: it covers every entry, and a
    # witness that cosigned it vouches for every earlier tree it extends.
    cosignatures = verify_cosignatures(latest_note, witnesses, quorum) if witnesses else ()
    walker.finish(previous, pending_kept)
    return ExportSummary(
        entries=previous.size,
        checkpoints=count,
        latest=previous,
        kept=tuple(sorted(walker.kept_verified, key=lambda c: c.size)),
        cosignatures=cosignatures,
    )


_KEPT_WHERE: Text = ("el punto de control que usted conservó", "the checkpoint you kept")
_SAME_SIZE: Text = ("mismo tamaño, raíces distintas", "same size, different roots")


def _line_where(number: int) -> Text:
    return f"línea {number} de checkpoints.ndjson", f"checkpoints line {number}"


def _open(
    text: str,
    verifiers: Sequence[NoteVerifier],
    origin: str | None,
    where: Text,
    line: int | None = None,
) -> Checkpoint:
    """Open a signed checkpoint; a failure names ``where`` it is (and its ``line`` of
    checkpoints.ndjson, if it is one)."""
    try:
        return open_checkpoint(text, verifiers, origin=origin)
    except (SignatureError, FormatError) as e:
        kind = SignatureError if isinstance(e, SignatureError) else type(e)
        error = kind(f"{where[1]}: {e}", es=f"{where[0]}: {in_spanish(e)}")
        error.checkpoints_line = line
        raise error from e


def _contradicts(suspect: Checkpoint, voucher: Checkpoint) -> ForkedCheckpoints:
    """``suspect`` does not match the entries that the later signed ``voucher`` matches."""
    return ForkedCheckpoints(
        names(suspect),
        names(voucher),
        (
            f"el registro que firma el punto de control {voucher.size}, recalculado con las "
            f"entradas exportadas, tiene otro árbol en el tamaño {suspect.size}",
            f"the log that checkpoint {voucher.size} signs, recomputed from the exported "
            f"entries, has another tree at size {suspect.size}",
        ),
        between=(suspect, voucher),
    )


def _check_stored_proof(old: Checkpoint, new: Checkpoint, record: ExportedCheckpoint) -> None:
    """Both checkpoints match the recomputed tree: a stored proof that fails is damage."""
    try:
        verify_checkpoint_consistency(old, new, record.consistency)
    except InconsistentCheckpoints as e:
        raise DamagedExport(
            record.line,
            (
                f"la prueba de consistencia guardada del punto de control {old.size} (el de la "
                f"línea anterior) al {new.size} no se verifica, pero las dos raíces firmadas "
                "coinciden con el árbol recalculado a partir de las entradas, así que esos "
                "puntos de control son consistentes: el archivo se dañó o se editó (una prueba "
                "alterada o una línea quitada); pida una exportación nueva",
                f"the stored consistency proof from checkpoint {old.size} (the line before) to "
                f"checkpoint {new.size} does not verify, but both signed roots match the tree "
                "recomputed from the entries, so the two checkpoints are consistent: the file "
                "was damaged or edited (a proof altered or a line removed); ask for a fresh "
                "export",
            ),
        ) from e


def _out_of_order(checkpoint: Checkpoint, furthest: int) -> Text:
    return (
        f"el punto de control {checkpoint.size} viene después del {furthest}, pero el "
        "exportador los escribe por tamaño; coincide con las entradas, así que se reordenó o "
        "editó el archivo, no el registro",
        f"checkpoint {checkpoint.size} comes after checkpoint {furthest}, but the exporter "
        "writes checkpoints by size; it matches the entries, so the file was reordered or "
        "edited, not the log",
    )


class _TreeWalker:
    """Streams entry lines into a compact range, up to each checkpoint's size in turn."""

    def __init__(
        self,
        entries: Callable[[], Iterable[bytes]],
        leaves: LeafReader | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.entries = entries
        self.lines: Iterator[bytes] = iter(entries())
        self.leaves = leaves
        self.progress = progress
        self.tree = CompactRange()
        self.verified = CompactRange()  # the tree at the last checkpoint that matched
        self.kept_roots: list[tuple[Checkpoint, bytes | None]] = []
        self.kept_verified: list[Checkpoint] = []

    def advance(self, size: int) -> None:
        """Append entries until the tree has ``size`` leaves or the entries run out."""
        sha256 = hashlib.sha256
        while self.tree.size < size:
            chunk = list(itertools.islice(self.lines, min(_CHUNK, size - self.tree.size)))
            if not chunk:
                return
            if not chunk[-1].endswith(b"\n"):  # only the file's last line can lack it
                chunk[-1] += b"\n"
            self.tree = _append_leaves(
                self.tree, [sha256(b"\x00" + x[:-1]).digest() for x in chunk]
            )
            if self.progress is not None:
                self.progress(len(chunk))

    def root_at(self, size: int) -> bytes | None:
        """The root recomputed at a size the tree has passed (reads the entries again), or
        ``None`` if there are fewer entries."""
        tree = CompactRange()
        lines = iter(self.entries())
        while tree.size < size:
            chunk = list(itertools.islice(lines, min(_CHUNK, size - tree.size)))
            if not chunk:
                return None
            tree = _append_leaves(tree, [_leaf(x) for x in chunk])
        return tree.root()

    def check_kept(self, kept: Checkpoint, upcoming: Checkpoint) -> None:
        """Remember the recomputed root at a kept checkpoint's size (judged at ``upcoming``)."""
        if kept.size == upcoming.size:
            if kept.root_hash != upcoming.root_hash:
                raise ForkedCheckpoints(
                    names(kept, KEPT),
                    names(upcoming, EXPORTED),
                    _SAME_SIZE,
                    between=(kept, upcoming),
                )
            self.kept_verified.append(kept)
            return
        self.advance(kept.size)
        root = self.tree.root() if self.tree.size == kept.size else None
        self.kept_roots.append((kept, root))

    def matches(self, checkpoint: Checkpoint) -> bool:
        """Whether the entries up to the checkpoint's size hash to its signed root."""
        self.advance(checkpoint.size)
        return self.tree.size == checkpoint.size and self.tree.root() == checkpoint.root_hash

    def accept(self, checkpoint: Checkpoint) -> None:
        """The checkpoint matched: the entries up to it are proven; judge the kept ones."""
        for kept, root in self.kept_roots:
            # A kept root that differs from theirs means the hub signed two histories.
            if root != kept.root_hash:
                raise ForkedCheckpoints(
                    names(kept, KEPT),
                    names(checkpoint, EXPORTED),
                    (
                        f"el registro que firmó el punto de control {checkpoint.size} tiene "
                        f"otro árbol en el tamaño {kept.size}",
                        f"the log that {describe(checkpoint)} signed has a different tree at "
                        f"size {kept.size}",
                    ),
                    between=(kept, checkpoint),
                )
            self.kept_verified.append(kept)
        self.kept_roots.clear()
        self.verified = self.tree.copy()

    def finish(self, latest: Checkpoint, later_kept: list[Checkpoint]) -> None:
        """Refuse lines after the latest checkpoint; judge kept checkpoints beyond it."""
        if next(self.lines, None) is not None:
            raise BadEntry(
                latest.size,
                (
                    "ninguna firma la cubre: el último punto de control de la exportación, "
                    f"{names(latest)[0]}, cubre {latest.size} entradas y el exportador termina "
                    f"ahí toda exportación, así que la línea {latest.size + 1} de "
                    "entries.ndjson y las siguientes se agregaron a la exportación",
                    "not covered by any signature: the export's latest "
                    f"{describe(latest)} covers {latest.size} entries and the exporter ends "
                    f"every export there, so line {latest.size + 1} of entries.ndjson and any "
                    "after it were added to the export",
                ),
            )
        for kept in later_kept:
            raise ForkedCheckpoints(
                names(kept, KEPT),
                (
                    f"la exportación ({latest.size} entradas)",
                    f"the export ({latest.size} entries)",
                ),
                (
                    "el registro se truncó o se revirtió a un estado anterior a un punto de "
                    "control que usted tiene (o la exportación es anterior a ese punto de "
                    "control: pida una nueva)",
                    "the log was truncated or rolled back behind a checkpoint you hold (or the "
                    "export is older than that checkpoint: ask for a fresh one)",
                ),
                between=(kept, latest),
            )

    # --- saying which entry is wrong -------------------------------------------------------

    def explain(self, suspects: Sequence[Checkpoint]) -> BadEntry:
        """Name the first entry, after the last matching checkpoint, that the first suspect
        did not sign, and how it differs.

        The later suspects' signed roots let the stored leaf hashes speak past the first
        suspect's size: a tampering at the last entry it covers involves the entry after it.
        """
        checkpoint = suspects[0]
        start, end = self.verified.size, checkpoint.size
        signed = self._signed_leaves(suspects)
        lines = itertools.islice(iter(self.entries()), max(start - 1, 0), None)
        previous = _leaf(next(lines)) if start else None  # the last verified entry
        if signed is None:
            return _explain_without_leaves(start, end, lines, checkpoint, self.leaves is not None)
        for first in range(start, end, _CHUNK):
            stored = _split(signed.read(first, min(first + _CHUNK, end)))
            for index, want in enumerate(stored, first):
                line = next(lines, None)
                if line is None:
                    return BadEntry(
                        index,
                        (
                            f"falta: la exportación termina con {index} entradas pero "
                            f"{names(checkpoint)[0]} cubre {end} (entradas quitadas o registro "
                            "truncado)",
                            f"missing: the export ends with {index} entries but "
                            f"{describe(checkpoint)} covers {end} (entries removed or the log "
                            "truncated)",
                        ),
                    )
                got = _leaf(line)
                if got != want:
                    following = next(lines, None)
                    after = _leaf(following) if following is not None else None
                    return BadEntry(index, _why(line, got, after, previous, index, signed))
                previous = got
        return BadEntry(
            end,
            (
                f"{names(checkpoint)[0]} cubre {end} entradas",
                f"{describe(checkpoint)} covers {end} entries",
            ),
        )

    def _signed_leaves(self, suspects: Sequence[Checkpoint]) -> _SignedLeaves | None:
        """The stored leaf hashes after the last matching checkpoint, as far as they hash
        (with the verified prefix) to the signed roots of the first suspect and then, by size,
        of the later ones; ``None`` if they do not match the first suspect's."""
        if self.leaves is None:
            return None
        first = suspects[0]
        # sorted() is stable: the first suspect stays ahead of another of the same size.
        targets = sorted((c for c in suspects if c.size >= first.size), key=lambda c: c.size)
        tree = self.verified.copy()
        vouchers: list[Checkpoint] = []
        for target in targets:
            while tree.size < target.size:
                upto = min(tree.size + _CHUNK, target.size)
                try:
                    stored = self.leaves(tree.size, upto)
                except (OSError, ValueError):
                    break
                if len(stored) != (upto - tree.size) * HASH_SIZE:
                    break
                tree = _append_leaves(tree, _split(stored))
            if tree.size != target.size or tree.root() != target.root_hash:
                break
            vouchers.append(target)
        if not vouchers:
            return None
        return _SignedLeaves(
            self.leaves, self.verified.size, tuple(vouchers), ends_log=vouchers[-1] is targets[-1]
        )


@dataclass(frozen=True)
class _SignedLeaves:
    """Stored leaf hashes of the entries ``[start, vouchers[-1].size)`` that hash to the signed
    roots of ``vouchers`` (by size): the hashes the log signed. ``ends_log``: the last voucher
    is the export's latest checkpoint, so no entry follows its last one."""

    read: LeafReader
    start: int
    vouchers: tuple[Checkpoint, ...]
    ends_log: bool

    def at(self, index: int) -> bytes | None:
        """The signed leaf hash at ``index``, or ``None`` past the last voucher."""
        if index >= self.vouchers[-1].size:
            return None
        return self.read(index, index + 1)

    def voucher(self, index: int) -> Checkpoint:
        """The first voucher that covers entry ``index``."""
        return next(c for c in self.vouchers if c.size > index)

    def find(self, leaf: bytes) -> int | None:
        """The index the log signed ``leaf`` at, if within these hashes."""
        end = self.vouchers[-1].size
        for first in range(self.start, end, _CHUNK):
            for index, stored in enumerate(
                _split(self.read(first, min(first + _CHUNK, end))), first
            ):
                if stored == leaf:
                    return index
        return None


def _explain_without_leaves(
    start: int, end: int, lines: Iterable[bytes], checkpoint: Checkpoint, leaves_given: bool
) -> BadEntry:
    count = 0
    for offset, line in enumerate(itertools.islice(lines, end - start)):
        count += 1
        try:
            parse_canonical_entry(_strip(line))
        except EntryError as e:
            return BadEntry(start + offset, (f"cambiada: {in_spanish(e)}", f"changed: {e}"))
    where_es, where = names(checkpoint)
    if start + count < end:
        return BadEntry(
            start + count,
            (
                f"falta: {where_es} cubre {end} entradas",
                f"missing: {where} covers {end} entries",
            ),
        )
    if leaves_given:
        unnamed = (
            "los hashes de hoja guardados (leaves.bin) tampoco coinciden con él, así que no se "
            "puede nombrar la primera incorrecta",
            "the stored leaf hashes (leaves.bin) do not match it either, so the first wrong "
            "one cannot be named",
        )
    else:
        unnamed = (
            "sin los hashes de hoja guardados (leaves.bin) no se puede nombrar la primera "
            "incorrecta",
            "without the stored leaf hashes (leaves.bin) the first wrong one cannot be named",
        )
    return BadEntry(
        start,
        (
            f"las entradas {start}..{end - 1} no dan el hash {_of(where_es)}; {unnamed[0]}",
            f"the entries {start}..{end - 1} do not hash to {where}; {unnamed[1]}",
        ),
    )


def _why(
    line: bytes,
    got: bytes,
    after: bytes | None,
    previous: bytes | None,
    index: int,
    signed: _SignedLeaves,
) -> Text:
    """Say how entry ``index`` (hash ``got``; the next line's hash ``after``) went wrong, given
    the leaf hashes the log signed. Past the last voucher the signed hashes are unknown: then
    only what the evidence shows is said, with the kinds it leaves open."""
    want = signed.at(index)
    following = signed.at(index + 1)
    unknown_next = following is None and not signed.ends_log
    where_es, where = names(signed.voucher(index))
    if following is not None and got == following:
        if after == want:
            return (
                "intercambiada con la entrada siguiente (reordenada)",
                "swapped with the entry after it (reordered)",
            )
        next_es, next_en = names(signed.voucher(index + 1))
        return (
            f"falta en la exportación: aquí está la entrada que {next_es} pone a continuación "
            "(quitada)",
            f"missing from the export: the entry {next_en} puts next is here instead (removed)",
        )
    if previous is not None and got == previous:
        return (
            "duplicado de la entrada anterior (insertada)",
            "a duplicate of the entry before it (inserted)",
        )
    elsewhere = signed.find(got)
    if elsewhere is not None:
        other_es, other = names(signed.voucher(elsewhere))
        return (
            f"fuera de orden: {other_es} tiene esta entrada en el índice {elsewhere} (reordenada)",
            f"out of order: {other} has this entry at index {elsewhere} (reordered)",
        )
    unknown_es, unknown = (
        "los hashes de hoja guardados (leaves.bin) no coinciden con ningún punto de control "
        "posterior, así que no se sabe cuál es la entrada siguiente",
        "the stored leaf hashes (leaves.bin) match no later checkpoint, so the entry after it "
        "is not known",
    )
    if after == want:
        if unknown_next:
            return (
                f"no es la que {where_es} firmó aquí, que es la de la línea siguiente: se "
                f"insertó una entrada antes de ella, o se intercambiaron las dos ({unknown_es})",
                f"not what {where} signed here, which is the next line's entry: an entry was "
                f"inserted before it, or the two were swapped ({unknown})",
            )
        return (
            f"insertada: {where_es} pone aquí la entrada que la sigue",
            f"inserted: {where} puts the entry that follows it here",
        )
    try:
        parse_canonical_entry(_strip(line))
    except EntryError as e:
        return f"cambiada: {in_spanish(e)}", f"changed: {e}"
    if unknown_next:
        return (
            f"no es la que {where_es} firmó aquí, la última que cubre: cambiada, o quitada y "
            f"ahora ocupa su lugar una posterior ({unknown_es})",
            f"not what {where} signed here, the last entry it covers: changed, or removed with "
            f"a later one now in its place ({unknown})",
        )
    return (
        f"cambiada: {where_es} firmó otra entrada en este índice",
        f"changed: {where} signed another entry at this index",
    )


def _leaf(line: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + _strip(line)).digest()


def _append_leaves(tree: CompactRange, leaves: list[bytes]) -> CompactRange:
    """``tree`` extended by ``leaves``, hashing whole aligned perfect subtrees level by level.

    Same result as :meth:`CompactRange.extend`, about twice as fast on large inputs: a list
    comprehension per level instead of a Python loop step per node.
    """
    sha256 = hashlib.sha256
    done, count = 0, len(leaves)
    while done < count:
        size = tree.size
        level = (count - done).bit_length() - 1
        if size:
            level = min(level, (size & -size).bit_length() - 1)
        if level == 0:
            tree.append(leaves[done])
            done += 1
            continue
        nodes = leaves[done : done + (1 << level)]
        while len(nodes) > 1:
            nodes = [
                sha256(b"\x01" + a + b).digest()
                for a, b in zip(nodes[::2], nodes[1::2], strict=True)
            ]
        tree = _append_subtree(tree, nodes[0], level)
        done += 1 << level
    return tree


def _append_subtree(tree: CompactRange, root: bytes, level: int) -> CompactRange:
    """Append the root of a perfect subtree of ``2**level`` leaves at ``tree.size``.

    Precondition: ``tree.size`` is a multiple of ``2**level`` (the subtree is aligned).
    """
    hashes = list(tree.hashes)
    carry = tree.size >> level
    h = root
    while carry & 1:
        h = hashlib.sha256(b"\x01" + hashes.pop() + h).digest()
        carry >>= 1
    hashes.append(h)
    return CompactRange(tree.size + (1 << level), hashes)


def _split(stored: bytes) -> list[bytes]:
    """Concatenated 32-byte hashes, one by one."""
    return [stored[i : i + HASH_SIZE] for i in range(0, len(stored), HASH_SIZE)]


def _strip(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\n") else line


def verify_kept_against(
    kept: Checkpoint, other: Checkpoint, proof: Sequence[bytes], *, kept_label: Text = KEPT
) -> None:
    """Check a checkpoint the auditor kept against another (e.g. a proof file's), either order.

    ``proof`` is the RFC 9162 consistency proof from the smaller to the larger tree (empty for
    equal sizes); it is not signed, so only a proof that rebuilds the larger checkpoint's
    signed root counts against the log (:func:`~audit.checkpoint.judge_consistency_proof`).
    Raises :class:`ForkedCheckpoints` naming both when the signed checkpoints disagree, and
    :class:`~audit.checkpoint.ConsistencyNotProven` (a ProofError: exit 1, not 3) when the
    proof proves nothing.
    """
    kept_names, other_names = names(kept, kept_label), names(other)
    if kept.size <= other.size:
        old, new, first, second = kept, other, kept_names, other_names
    else:
        old, new, first, second = other, kept, other_names, kept_names
    try:
        judge_consistency_proof(old, new, proof)
    except InconsistentCheckpoints as e:
        raise ForkedCheckpoints(first, second, (in_spanish(e), str(e)), between=(old, new)) from e
