"""C2SP signed notes (c2sp.org/signed-note), as in golang.org/x/mod ``sumdb/note``.

A signed note is a text ending in a newline, a blank line, then one or more lines
``— <key name> base64(key ID || signature)``. Verifiers ignore signatures by unknown
keys, reject the note if a known key's signature fails, and reject it if no known key
signed (:func:`open_note`).

Keys are any :class:`NoteSigner` / :class:`NoteVerifier`: the Ed25519 note keys
:class:`~audit.keys.Signer` and :class:`~audit.keys.Verifier` (re-exported here), or
witness cosignature keys from :mod:`audit.cosignature`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from audit._encoding import b64decode_strict, b64encode
from audit.errors import NoteFormatError, SignatureError
from audit.keys import (
    ED25519_KEY_TYPE,
    Signer,
    Verifier,
    generate_signer_key,
    is_valid_key_name,
)

__all__ = [
    "ED25519_KEY_TYPE",
    "MAX_SIGNATURES",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "Signer",
    "Verifier",
    "generate_signer_key",
    "open_note",
    "sign_note",
    "verified_signatures",
]

MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (the spec requires accepting at least 16)."""

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space


class NoteVerifier(Protocol):
    """Checks signatures by one key, identified by ``(name, key_id)``."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether ``signature`` (without the key ID) is valid over ``message``."""
        ...


class NoteSigner(Protocol):
    """Signs note texts with one key, identified by ``(name, key_id)``."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, message: bytes) -> bytes:
        """Return the signature (without the key ID) over ``message``."""
        ...


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: int
    signature: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise NoteFormatError(f"invalid key name {self.name!r} in signature")
        if not 0 <= self.key_id < 2**32:
            raise NoteFormatError(f"key ID {self.key_id} does not fit in 32 bits")
        if not self.signature:
            raise NoteFormatError("empty signature")

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse ``— <name> base64(key ID || signature)`` (without the newline)."""
        if not line.startswith(_SIGNATURE_PREFIX):
            raise NoteFormatError(
                f"signature line must start with an em dash and a space: {line!r}"
            )
        name, sep, b64 = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        if not sep:
            raise NoteFormatError(f"signature line has no signature: {line!r}")
        raw = b64decode_strict(b64, f"signature by {name!r}", NoteFormatError)
        if len(raw) < 5:
            raise NoteFormatError(f"signature by {name!r} has {len(raw)} bytes, want at least 5")
        return cls(name, int.from_bytes(raw[:4], "big"), raw[4:])

    def to_line(self) -> str:
        """Return the signature line, without the newline."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIGNATURE_PREFIX}{self.name} {b64encode(raw)}"


@dataclass(frozen=True)
class Note:
    """A note text (ending in a newline) and its signature lines, verified or not."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        if not self.text.endswith("\n"):
            raise NoteFormatError("note text must end with a newline")
        _check_characters(self.text)
        if not self.signatures:
            raise NoteFormatError("a signed note needs at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise NoteFormatError(
                f"note has {len(self.signatures)} signatures, at most {MAX_SIGNATURES} allowed"
            )

    @classmethod
    def from_text(cls, text: str) -> Note:
        """Parse a signed note strictly, without verifying any signature.

        The text is separated from the signatures by the last blank line; the note must
        be valid UTF-8 with no control characters but newline, and end with a newline.
        """
        _check_characters(text)
        split = text.rfind("\n\n")
        if split < 0:
            raise NoteFormatError("no blank line between note text and signatures")
        body, block = text[: split + 1], text[split + 2 :]
        if not block:
            raise NoteFormatError("note has no signature lines")
        if not block.endswith("\n"):
            raise NoteFormatError("last signature line must end with a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteFormatError(
                f"note has {len(lines)} signatures, at most {MAX_SIGNATURES} allowed"
            )
        return cls(body, tuple(NoteSignature.from_line(line) for line in lines))

    def to_text(self) -> str:
        """Return the signed note: text, blank line, one line per signature."""
        return self.text + "\n" + "".join(s.to_line() + "\n" for s in self.signatures)

    def with_signatures(self, signatures: Iterable[NoteSignature]) -> Note:
        """Return this note with ``signatures`` added, replacing any by the same key."""
        new = tuple(signatures)
        keys = {(s.name, s.key_id) for s in new}
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) not in keys)
        return Note(self.text, kept + new)


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """Sign ``text`` (ending in a newline) with each signer; return the signed note text."""
    if not signers:
        raise ValueError("sign_note needs at least one signer")
    message = text.encode("utf-8")
    sigs = tuple(NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers)
    return Note(text, sigs).to_text()


def verified_signatures(note: Note, verifiers: Iterable[NoteVerifier]) -> tuple[NoteSignature, ...]:
    """Return the signatures in ``note`` by known keys, each checked; possibly none.

    Signatures whose ``(name, key_id)`` matches no verifier are ignored; repeated ones
    by the same key are dropped. Raises :class:`SignatureError` if a known key's
    signature does not verify, or if two verifiers claim the same ``(name, key_id)``.
    """
    known: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        if (v.name, v.key_id) in known:
            raise SignatureError(f"ambiguous verifier keys for {v.name}+{v.key_id:08x}")
        known[(v.name, v.key_id)] = v
    message = note.text.encode("utf-8")
    seen: set[tuple[str, int]] = set()
    good = []
    for sig in note.signatures:
        key = (sig.name, sig.key_id)
        verifier = known.get(key)
        if verifier is None or key in seen:
            continue
        seen.add(key)
        if not verifier.verify(message, sig.signature):
            raise SignatureError(f"invalid signature by known key {sig.name}+{sig.key_id:08x}")
        good.append(sig)
    return tuple(good)


def open_note(note_text: str, verifiers: Iterable[NoteVerifier]) -> Note:
    """Parse and verify a signed note; return it with only its verified signatures.

    Raises :class:`NoteFormatError` if malformed and :class:`SignatureError` if a known
    key's signature fails or no known key signed it.
    """
    note = Note.from_text(note_text)
    good = verified_signatures(note, verifiers)
    if not good:
        found = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures)
        raise SignatureError(f"no signature by a known key; found {found}")
    return Note(note.text, good)


def _check_characters(text: str) -> None:
    for i, c in enumerate(text):
        if (c < " " and c != "\n") or "\ud800" <= c <= "\udfff":
            raise NoteFormatError(f"control character or invalid UTF-8 {c!r} at offset {i}")
