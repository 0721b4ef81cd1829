"""Message formats of the tlog-witness ``add-checkpoint`` call (c2sp.org/tlog-witness).

Request body::

    old <size of the last checkpoint the witness cosigned>
    <base64 consistency proof hash>      (0 to 63 lines; none when old is 0)
    <empty line>
    <signed checkpoint>

Response body (200): one or more cosignature lines (``— <name> <base64>``), which the
log appends to its checkpoint (see :meth:`audit.note.Note.with_signatures`).
The HTTP exchange and the witness's stored state belong to the hub; this module only
prints and parses, strictly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from audit._encoding import b64decode_strict, b64encode, parse_decimal
from audit.checkpoint import Checkpoint
from audit.errors import FormatError, NoteFormatError, ProofFileFormatError
from audit.merkle import HASH_SIZE
from audit.note import MAX_SIGNATURES, Note, NoteSignature

MAX_CONSISTENCY_HASHES = 63
"""Clients MUST NOT send more consistency proof lines than this."""


@dataclass(frozen=True)
class AddCheckpointRequest:
    """An ``add-checkpoint`` request: old size, consistency proof, signed checkpoint."""

    old_size: int
    consistency_proof: tuple[bytes, ...]
    checkpoint: str

    def __post_init__(self) -> None:
        if self.old_size < 0:
            raise ProofFileFormatError(f"old size {self.old_size} is negative")
        if len(self.consistency_proof) > MAX_CONSISTENCY_HASHES:
            raise ProofFileFormatError(
                f"consistency proof has {len(self.consistency_proof)} hashes, "
                f"at most {MAX_CONSISTENCY_HASHES} allowed"
            )
        for i, h in enumerate(self.consistency_proof):
            if len(h) != HASH_SIZE:
                raise ProofFileFormatError(f"proof hash {i} has {len(h)} bytes, want {HASH_SIZE}")
        try:
            Checkpoint.from_text(Note.from_text(self.checkpoint).text)
        except FormatError as e:
            raise ProofFileFormatError(f"invalid checkpoint in request: {e}") from e

    @classmethod
    def from_text(cls, text: str) -> AddCheckpointRequest:
        """Parse a request body strictly (the checkpoint is parsed, not verified)."""
        split = text.find("\n\n")
        if split < 0:
            raise ProofFileFormatError("no empty line before the checkpoint")
        first, *proof_lines = text[:split].split("\n")
        if not first.startswith("old "):
            raise ProofFileFormatError(f"first line must be 'old <size>', got {first!r}")
        old_size = parse_decimal(first[len("old ") :], "old size", ProofFileFormatError)
        if len(proof_lines) > MAX_CONSISTENCY_HASHES:
            raise ProofFileFormatError(
                f"{len(proof_lines)} consistency proof lines, at most {MAX_CONSISTENCY_HASHES}"
            )
        proof = tuple(
            b64decode_strict(line, f"proof hash {i}", ProofFileFormatError)
            for i, line in enumerate(proof_lines)
        )
        return cls(old_size, proof, text[split + 2 :])

    def to_text(self) -> str:
        """Return the request body."""
        lines = [f"old {self.old_size}", *(b64encode(h) for h in self.consistency_proof)]
        return "\n".join(lines) + "\n\n" + self.checkpoint


def format_cosignature_response(signatures: Iterable[NoteSignature]) -> str:
    """Return a 200 response body: one signature line per cosignature."""
    lines = [s.to_line() + "\n" for s in signatures]
    if not lines:
        raise ValueError("a response carries at least one cosignature")
    return "".join(lines)


def parse_cosignature_response(body: str) -> tuple[NoteSignature, ...]:
    """Parse a 200 response body into signature lines (not verified).

    To verify, add them to the checkpoint note and verify with the witness keys.
    """
    if not body.endswith("\n"):
        raise NoteFormatError("response must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(f"{len(lines)} signature lines, at most {MAX_SIGNATURES}")
    return tuple(NoteSignature.from_line(line) for line in lines)
