"""C2SP transparency-log checkpoints (c2sp.org/tlog-checkpoint).

A checkpoint is the text of a signed note::

    <origin>
    <tree size, ASCII decimal, no leading zeroes>
    <base64 root hash>
    [extension lines, each non-empty]

signed by the log's note key (see :mod:`audit.note`), and possibly cosigned by
witnesses (see :mod:`audit.cosignature`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audit._encoding import MAX_UINT64, b64decode_strict, b64encode, parse_decimal
from audit.errors import (
    CheckpointFormatError,
    InconsistentCheckpoints,
    ProofError,
    RootMismatch,
    SignatureError,
    in_spanish,
)
from audit.merkle import EMPTY_ROOT, HASH_SIZE, root_from_consistency_proof, verify_consistency
from audit.note import Note, NoteSigner, NoteVerifier, open_note, sign_note


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, RFC 6962 root hash and extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_line(self.origin):
            raise CheckpointFormatError(f"origin must be one non-empty line, got {self.origin!r}")
        if not 0 <= self.size <= MAX_UINT64:
            raise CheckpointFormatError(f"tree size {self.size} is outside 0..2**64-1")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointFormatError(
                f"root hash has {len(self.root_hash)} bytes, want {HASH_SIZE}"
            )
        for line in self.extensions:
            if not _is_line(line):
                raise CheckpointFormatError(f"extension must be one non-empty line, got {line!r}")

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text (without signatures) strictly."""
        if not text.endswith("\n"):
            raise CheckpointFormatError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError(f"checkpoint has {len(lines)} lines, want at least 3")
        origin, size_line, root_line, *extensions = lines
        if not origin:
            raise CheckpointFormatError("checkpoint origin line is empty")
        size = parse_decimal(size_line, "tree size", CheckpointFormatError)
        root = b64decode_strict(root_line, "root hash", CheckpointFormatError)
        return cls(origin, size, root, tuple(extensions))

    def to_text(self) -> str:
        """Return the checkpoint note text, ending in a newline."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[NoteSigner]) -> str:
    """Return ``checkpoint`` as a signed note (the log key first, by convention)."""
    return sign_note(checkpoint.to_text(), signers)


def open_checkpoint(
    signed_text: str, log_verifiers: Iterable[NoteVerifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint against the log's key(s) and parse it.

    Signatures by other keys (witnesses, rotated-out keys) are ignored. If ``origin`` is
    given, the checkpoint must be from that log. Raises :class:`~audit.errors.FormatError`
    subclasses for malformed text and :class:`SignatureError` when no log key signed.
    """
    note = open_note(signed_text, log_verifiers)
    checkpoint = Checkpoint.from_text(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise SignatureError(f"checkpoint origin is {checkpoint.origin!r}, want {origin!r}")
    return checkpoint


def checkpoint_of(signed_text: str) -> Checkpoint:
    """Parse the checkpoint in a signed note WITHOUT verifying it (for display only)."""
    return Checkpoint.from_text(Note.from_text(signed_text).text)


def verify_checkpoint_consistency(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that ``new`` extends ``old`` append-only, by an RFC 9162 consistency proof.

    Precondition: both checkpoints are already verified as signed by the log. Checkpoints
    of equal size must have equal roots; a consistency proof from size 0 is accepted
    only when empty (every tree extends the empty tree). Raises
    :class:`InconsistentCheckpoints`, naming both tree heads and the reason.
    """
    if old.origin != new.origin:
        raise InconsistentCheckpoints(
            f"checkpoints are from different logs: {old.origin!r} and {new.origin!r}"
        )
    try:
        if old.size == 0 and new.size > 0:
            if proof:
                raise ProofError(f"wrong proof size {len(proof)}, want 0 from the empty tree")
            verify_consistency(0, 0, old.root_hash, old.root_hash, [])
        else:
            verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    except ProofError as e:
        raise InconsistentCheckpoints(
            f"checkpoint {new.size} {b64encode(new.root_hash)} does not extend "
            f"checkpoint {old.size} {b64encode(old.root_hash)}: {e}"
        ) from e


class ConsistencyNotProven(ProofError):
    """A consistency proof between two signed checkpoints proves nothing, either way: it is
    malformed, of the wrong length, or does not rebuild the newer checkpoint's signed root.
    The proof is not signed, so this says nothing against the log (see
    :func:`judge_consistency_proof`). ``old`` and ``new`` are the two checkpoints."""

    def __init__(self, old: Checkpoint, new: Checkpoint, cause: ProofError) -> None:
        first = f"{old.size} ({b64encode(old.root_hash)})"
        second = f"{new.size} ({b64encode(new.root_hash)})"
        super().__init__(
            f"the consistency proof from checkpoint {first} to checkpoint {second} proves "
            f"nothing: {cause}; the proof is not signed, so a damaged or wrong one says nothing "
            "against the log",
            es=f"la prueba de consistencia del punto de control {first} al {second} no prueba "
            f"nada: {in_spanish(cause)}; la prueba no está firmada, así que una dañada o "
            "equivocada no dice nada contra el registro",
        )
        self.old, self.new = old, new


def judge_consistency_proof(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that ``new`` extends ``old`` by a consistency proof anyone may have handled,
    blaming the log only for what its signatures show.

    Precondition: both checkpoints are verified as signed by the log, and ``old.size <=
    new.size``. RFC 9162 §2.1.4.2 computes two roots from the proof: the tree's at
    ``old.size`` and at ``new.size``. Unlike :func:`verify_checkpoint_consistency` (for a
    proof the caller computed from its own tree, where any failure is an inconsistency),
    this raises:

    - :class:`InconsistentCheckpoints` only on signed evidence: equal sizes with different
      roots; a signed empty tree whose root is not MTH({}); or a proof that rebuilds
      ``new``'s signed root from another root at ``old.size`` — the log's own signed tree has
      another history there (forging such a proof takes a SHA-256 collision);
    - :class:`ConsistencyNotProven` (a :class:`ProofError`) when the proof is malformed, of
      the wrong length, or does not rebuild ``new``'s signed root: it proves nothing, either
      way. When ``old.size`` is a power of two the proof carries no root at that size (RFC
      9162 leaves it out: the verifier has it), so a fork there also shows only as this;
    - :class:`ProofError` when the checkpoints are of different logs (nothing to compare).
    """
    if old.origin != new.origin:
        raise ProofError(f"checkpoints are from different logs: {old.origin!r} and {new.origin!r}")
    if old.size == 0 and old.root_hash != EMPTY_ROOT:
        raise _inconsistent(
            old,
            new,
            (
                "un árbol vacío firmado con una raíz que no es la del árbol vacío",
                "a signed empty tree whose root is not the empty tree's",
            ),
        )
    if old.size == new.size:
        if old.root_hash != new.root_hash:
            raise _inconsistent(
                old, new, ("mismo tamaño, raíces distintas", "same size, different roots")
            )
        return  # the signatures agree; a proof between equal sizes adds nothing
    if old.size == 0:
        if proof:
            raise ConsistencyNotProven(
                old, new, ProofError(f"wrong proof size {len(proof)}, want 0 from the empty tree")
            )
        return  # every tree extends the empty tree
    try:
        first, second = _proof_roots(old.size, new.size, old.root_hash, proof)
    except ProofError as error:
        raise ConsistencyNotProven(old, new, error) from error
    if second != new.root_hash:
        raise ConsistencyNotProven(old, new, RootMismatch(second, new.root_hash, "second root"))
    if first != old.root_hash:
        # The proof rebuilds the newer signed root from another root at old.size: not damage
        # (short of a hash collision) but the log's signed tree, holding another history.
        raise _inconsistent(
            old,
            new,
            (
                f"la prueba reconstruye la raíz firmada del {new.size} a partir de otra raíz en "
                f"el tamaño {old.size}: {b64encode(first)}",
                f"the proof rebuilds the signed root of checkpoint {new.size} from another root "
                f"at size {old.size}: {b64encode(first)}",
            ),
        )


def _proof_roots(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The two roots a consistency proof yields, at ``size1`` and at ``size2``. ``root1`` is
    used only where the proof leaves that root out (``size1`` a power of two)."""
    try:
        return root1, root_from_consistency_proof(size1, size2, root1, proof)
    except RootMismatch as mismatch:
        first = mismatch.calculated
        return first, root_from_consistency_proof(size1, size2, first, proof)


def _inconsistent(
    old: Checkpoint, new: Checkpoint, reason: tuple[str, str]
) -> InconsistentCheckpoints:
    """``reason`` in Spanish and English."""
    old_root, new_root = b64encode(old.root_hash), b64encode(new.root_hash)
    return InconsistentCheckpoints(
        f"checkpoint {new.size} {new_root} does not extend checkpoint {old.size} {old_root}: "
        f"{reason[1]}",
        es=f"el punto de control {new.size} {new_root} no extiende el punto de control "
        f"{old.size} {old_root}: {reason[0]}",
    )


def _is_line(text: str) -> bool:
    """Non-empty, and no newline or other control character."""
    return bool(text) and not any(c < " " for c in text)
