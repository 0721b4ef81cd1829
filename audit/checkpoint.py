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
    SignatureError,
)
from audit.merkle import HASH_SIZE, verify_consistency
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


def _is_line(text: str) -> bool:
    """Non-empty, and no newline or other control character."""
    return bool(text) and not any(c < " " for c in text)
