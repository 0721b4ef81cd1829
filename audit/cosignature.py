"""Ed25519 witness cosignatures on checkpoints (c2sp.org/tlog-cosignature, cosignature/v1).

A cosignature is a note signature line on a checkpoint, by a key of signature type 0x04::

    key ID     SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]
    signature  u64 big-endian timestamp || Ed25519 signature (72 bytes)
    message    "cosignature/v1\\n" "time <timestamp>\\n" || checkpoint note text

It states that, as of ``timestamp`` (POSIX seconds), the largest consistent tree head the
witness has seen for that origin has this root hash. Keys use the note key formats with
type byte 0x04 (``PRIVATE+KEY+<name>+<id>+base64(0x04 || seed)`` and
``<name>+<id>+base64(0x04 || public key)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nacl.signing

from audit.checkpoint import Checkpoint
from audit.errors import NoteFormatError, QuorumError
from audit.keys import (
    NoteSigningKey,
    check_verifier_fields,
    decode_vkey,
    ed25519_verify,
    encode_private_key,
    encode_vkey,
)
from audit.note import Note, NoteSignature, NoteSigner, verified_signatures

COSIGNATURE_KEY_TYPE = 0x04
"""Signature type byte of timestamped Ed25519 cosignatures."""

MAX_TIMESTAMP = 2**63 - 1
"""Cosignature timestamps must not exceed this."""

_HEADER = b"cosignature/v1\n"


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Return the cosignature/v1 signed message for a checkpoint note text.

    Preconditions: ``checkpoint_text`` is the note text (ending in a newline, without
    signature lines); ``0 <= timestamp <= MAX_TIMESTAMP``.
    """
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp} is outside 0..2**63-1")
    return _HEADER + b"time %d\n" % timestamp + checkpoint_text.encode("utf-8")


@dataclass(frozen=True)
class Cosignature:
    """A decoded cosignature: who, when, and the 64-byte Ed25519 signature."""

    name: str
    key_id: int
    timestamp: int
    signature: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.timestamp <= MAX_TIMESTAMP:
            raise NoteFormatError(f"cosignature timestamp {self.timestamp} exceeds 2**63-1")
        if len(self.signature) != 64:
            raise NoteFormatError(f"cosignature has {len(self.signature)} signature bytes, want 64")

    @classmethod
    def from_note_signature(cls, sig: NoteSignature) -> Cosignature:
        """Decode ``timestamp || signature`` from a note signature (not verified)."""
        if len(sig.signature) != 72:
            raise NoteFormatError(
                f"cosignature by {sig.name} has {len(sig.signature)} bytes, want 72"
            )
        timestamp = int.from_bytes(sig.signature[:8], "big")
        return cls(sig.name, sig.key_id, timestamp, sig.signature[8:])

    def to_note_signature(self) -> NoteSignature:
        """Encode as a note signature line value."""
        return NoteSignature(
            self.name, self.key_id, self.timestamp.to_bytes(8, "big") + self.signature
        )


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's cosignature/v1 verifier key; a :class:`~audit.note.NoteVerifier`."""

    name: str
    key_id: int
    public_key: bytes

    def __post_init__(self) -> None:
        check_verifier_fields(self.name, self.key_id, COSIGNATURE_KEY_TYPE, self.public_key)

    @classmethod
    def from_vkey(cls, text: str) -> CosignatureVerifier:
        """Parse ``<name>+<hex key ID>+base64(0x04 || public key)``."""
        return cls(*decode_vkey(text, COSIGNATURE_KEY_TYPE))

    @property
    def vkey(self) -> str:
        """The verifier key string."""
        return encode_vkey(self.name, COSIGNATURE_KEY_TYPE, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether ``signature`` (timestamp || Ed25519) cosigns note text ``message``."""
        if len(signature) != 72:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        signed = _HEADER + b"time %d\n" % timestamp + message
        return ed25519_verify(self.public_key, signed, signature[8:])


class CosignatureSigner(NoteSigningKey):
    """A witness's cosignature/v1 signing key. Its repr never shows the private key."""

    KEY_TYPE = COSIGNATURE_KEY_TYPE
    __slots__ = ()

    def verifier(self) -> CosignatureVerifier:
        """The matching :class:`CosignatureVerifier`."""
        return CosignatureVerifier.from_vkey(self.vkey)

    def cosign(self, checkpoint_text: str, timestamp: int) -> Cosignature:
        """Cosign a checkpoint note text at ``timestamp`` (POSIX seconds).

        Precondition: the caller (the witness) has verified the checkpoint's log
        signature and its consistency with the last checkpoint it cosigned.
        """
        Checkpoint.from_text(checkpoint_text)
        signature = self._key.sign(cosigned_message(checkpoint_text, timestamp)).signature
        return Cosignature(self._name, self._key_id, timestamp, signature)

    def at(self, timestamp: int) -> NoteSigner:
        """Return a :class:`~audit.note.NoteSigner` that cosigns at ``timestamp``."""
        return _TimestampedSigner(self, timestamp)


@dataclass(frozen=True)
class _TimestampedSigner:
    signer: CosignatureSigner
    timestamp: int

    @property
    def name(self) -> str:
        return self.signer.name

    @property
    def key_id(self) -> int:
        return self.signer.key_id

    def sign(self, message: bytes) -> bytes:
        cosig = self.signer.cosign(message.decode("utf-8"), self.timestamp)
        return cosig.to_note_signature().signature


def generate_cosigner_key(name: str) -> tuple[str, str]:
    """Return a new ``(private key text, verifier key text)`` witness key pair."""
    seed = bytes(nacl.signing.SigningKey.generate())
    return encode_private_key(name, COSIGNATURE_KEY_TYPE, seed), CosignatureSigner(name, seed).vkey


def verify_cosignatures(
    signed_checkpoint: str, witnesses: Sequence[CosignatureVerifier], quorum: int
) -> tuple[Cosignature, ...]:
    """Verify witness cosignatures on a signed checkpoint; require ``quorum`` witnesses.

    Signatures by keys not in ``witnesses`` (the log's own, unknown witnesses) are
    ignored. Witnesses sharing a public key count once. Does NOT verify the log's
    signature: use :func:`~audit.checkpoint.open_checkpoint` for that. Precondition:
    ``0 <= quorum <= len(witnesses)`` (else :class:`ValueError`). Raises
    :class:`~audit.errors.SignatureError` for a bad cosignature by a known witness and
    :class:`QuorumError` when fewer than ``quorum`` witnesses cosigned.
    """
    if not 0 <= quorum <= len(witnesses):
        raise ValueError(f"quorum {quorum} is outside 0..{len(witnesses)}")
    note = Note.from_text(signed_checkpoint)
    Checkpoint.from_text(note.text)
    good = [Cosignature.from_note_signature(s) for s in verified_signatures(note, witnesses)]
    by_id = {(w.name, w.key_id): w.public_key for w in witnesses}
    distinct = {by_id[(c.name, c.key_id)] for c in good}
    if len(distinct) < quorum:
        names = ", ".join(c.name for c in good) or "none"
        raise QuorumError(
            f"{len(distinct)} witness cosignatures verified ({names}), want at least {quorum}"
        )
    return tuple(good)
