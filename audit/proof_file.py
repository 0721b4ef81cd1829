"""Offline inclusion proofs in the C2SP ``.tlog-proof`` format (c2sp.org/tlog-proof)::

    c2sp.org/tlog-proof@v1
    [extra <base64 opaque data>]
    index <leaf index>
    <base64 proof hash, leaf's sibling first>   (zero or more lines)
    <empty line>
    <signed checkpoint, verbatim, with any cosignatures>

:func:`verify_proof_file` checks it with public keys only: the log's signature on the
checkpoint, an optional witness quorum, and the RFC 9162 inclusion of the entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audit._encoding import MAX_UINT64, b64decode_strict, b64encode, parse_decimal
from audit.checkpoint import Checkpoint, open_checkpoint
from audit.cosignature import Cosignature, CosignatureVerifier, verify_cosignatures
from audit.errors import FormatError, ProofError, ProofFileFormatError, in_spanish
from audit.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from audit.note import Note, NoteVerifier

PROOF_FILE_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64
"""An inclusion proof in a tree of at most 2**64 - 1 leaves has at most 64 hashes."""


@dataclass(frozen=True)
class TlogProof:
    """A parsed ``.tlog-proof``: entry index, inclusion proof, signed checkpoint, extra data.

    ``checkpoint`` is the signed note text exactly as the log (and witnesses) signed it.
    ``extra`` is unauthenticated application data; never trust it implicitly.
    """

    index: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.index <= MAX_UINT64:
            raise ProofFileFormatError(f"index {self.index} is outside 0..2**64-1")
        if len(self.inclusion_proof) > MAX_PROOF_HASHES:
            raise ProofFileFormatError(
                f"proof has {len(self.inclusion_proof)} hashes, at most {MAX_PROOF_HASHES} allowed"
            )
        for i, h in enumerate(self.inclusion_proof):
            if len(h) != HASH_SIZE:
                raise ProofFileFormatError(f"proof hash {i} has {len(h)} bytes, want {HASH_SIZE}")
        if self.extra is not None and not self.extra:
            raise ProofFileFormatError("extra data, when present, must not be empty")
        try:
            Checkpoint.from_text(Note.from_text(self.checkpoint).text)
        except FormatError as e:
            raise ProofFileFormatError(f"invalid checkpoint in proof: {e}") from e

    @classmethod
    def from_text(cls, text: str) -> TlogProof:
        """Parse a ``.tlog-proof`` file strictly (the checkpoint is parsed, not verified)."""
        split = text.find("\n\n")
        if split < 0:
            raise ProofFileFormatError("no empty line before the checkpoint")
        lines = text[:split].split("\n")
        checkpoint = text[split + 2 :]
        if lines[0] != PROOF_FILE_HEADER:
            raise ProofFileFormatError(
                f"first line must be {PROOF_FILE_HEADER!r}, got {lines[0]!r}"
            )
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = b64decode_strict(rest[0][len("extra ") :], "extra data", ProofFileFormatError)
            rest = rest[1:]
        if not rest or not rest[0].startswith("index "):
            raise ProofFileFormatError("missing 'index <n>' line")
        index = parse_decimal(rest[0][len("index ") :], "index", ProofFileFormatError)
        hashes = tuple(
            b64decode_strict(line, f"proof hash {i}", ProofFileFormatError)
            for i, line in enumerate(rest[1:])
        )
        return cls(index, hashes, checkpoint, extra)

    def to_text(self) -> str:
        """Return the ``.tlog-proof`` text."""
        lines = [PROOF_FILE_HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64encode(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.inclusion_proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint


class EntryNotProven(ProofError):
    """A proof file's inclusion proof does not prove its entry at its index under its signed
    checkpoint: the entry, the index or a proof hash is wrong. Names the entry (``index``) and
    the checkpoint (``checkpoint``); the cause (e.g. :class:`~audit.errors.RootMismatch`) is
    chained as ``__cause__`` and its text ends the message."""

    def __init__(self, index: int, checkpoint: Checkpoint, cause: ProofError) -> None:
        where = f"checkpoint {checkpoint.size} of {checkpoint.origin}"
        where_es = f"el punto de control {checkpoint.size} de {checkpoint.origin}"
        super().__init__(
            f"entry {index} is not proven to be in {where}: {cause}",
            es=f"la entrada {index} no queda probada en {where_es}: {in_spanish(cause)}",
        )
        self.index = index
        self.checkpoint = checkpoint


@dataclass(frozen=True)
class VerifiedProof:
    """What a verified ``.tlog-proof`` establishes."""

    index: int
    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]
    extra: bytes | None


def make_proof_file(
    index: int, inclusion_proof: Sequence[bytes], signed_checkpoint: str, extra: bytes | None = None
) -> str:
    """Return a ``.tlog-proof`` text for leaf ``index`` under ``signed_checkpoint``."""
    return TlogProof(index, tuple(inclusion_proof), signed_checkpoint, extra).to_text()


def verify_proof_file(
    text: str,
    entry: bytes | None,
    log_verifiers: Iterable[NoteVerifier],
    *,
    leaf: bytes | None = None,
    origin: str | None = None,
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
) -> VerifiedProof:
    """Verify a ``.tlog-proof`` offline, with public keys only.

    ``entry`` is the logged bytes (for Puente, the canonical entry JSON); pass ``None``
    and ``leaf=`` to check a known leaf hash instead. Exactly one must be given (else
    :class:`ValueError`). Checks, in order, raising the first failure:

    1. the file parses strictly (:class:`~audit.errors.FormatError`);
    2. the checkpoint is signed by a log key, for ``origin`` if given
       (:class:`~audit.errors.SignatureError`);
    3. at least ``quorum`` of ``witnesses`` cosigned it (:class:`~audit.errors.QuorumError`);
    4. the proof includes the leaf at ``index`` under the checkpoint's root
       (:class:`EntryNotProven`, a :class:`~audit.errors.ProofError` naming the entry and the
       checkpoint, caused by e.g. :class:`~audit.errors.RootMismatch`).
    """
    if (entry is None) == (leaf is None):
        raise ValueError("give exactly one of entry and leaf")
    if not 0 <= quorum <= len(witnesses):
        raise ValueError(f"quorum {quorum} is outside 0..{len(witnesses)}")
    if entry is not None:
        leaf = leaf_hash(entry)
    proof = TlogProof.from_text(text)
    checkpoint = open_checkpoint(proof.checkpoint, log_verifiers, origin=origin)
    cosignatures = verify_cosignatures(proof.checkpoint, witnesses, quorum)
    try:
        verify_inclusion(
            proof.index, checkpoint.size, leaf or b"", proof.inclusion_proof, checkpoint.root_hash
        )
    except ProofError as e:
        raise EntryNotProven(proof.index, checkpoint, e) from e
    return VerifiedProof(proof.index, checkpoint, cosignatures, proof.extra)
