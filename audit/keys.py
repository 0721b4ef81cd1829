"""Note keys in the golang ``sumdb/note`` text format, and Ed25519 note signers/verifiers.

::

    verifier key   <name>+<hex key ID>+base64(<type> || 32-byte public key)
    signer key     PRIVATE+KEY+<name>+<hex key ID>+base64(<type> || 32-byte seed)
    key ID         SHA-256(name || 0x0A || <type> || public key)[:4], big-endian

Type 0x01 is a plain Ed25519 note key (:class:`Signer`, :class:`Verifier`); type 0x04
witness cosignature keys (:mod:`audit.cosignature`) reuse the same encoding helpers.
Key texts are parsed strictly: strip a key file's trailing newline before parsing.
Key names are non-empty and contain no Unicode spaces and no ``+`` (c2sp.org/signed-note).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import ClassVar, Self

import nacl.exceptions
import nacl.signing

from audit._encoding import b64decode_strict, b64encode
from audit.errors import KeyFormatError

ED25519_KEY_TYPE = 0x01
"""Signature type byte of plain Ed25519 note signatures."""

_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}", re.ASCII)
# Unicode White_Space, as Go's unicode.IsSpace, plus what str.isspace() adds.
_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)


def is_valid_key_name(name: str) -> bool:
    """Key names are non-empty, with no Unicode spaces, no ``+`` and no control characters."""
    return bool(name) and "+" not in name and not any(_bad_name_char(c) for c in name)


def _bad_name_char(c: str) -> bool:
    return c in _SPACES or c.isspace() or c < " " or "\ud800" <= c <= "\udfff"


def compute_key_id(name: str, key_type: int, public_key: bytes) -> int:
    """Return ``SHA-256(name || 0x0A || key_type || public_key)[:4]`` as a big-endian int."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


def encode_vkey(name: str, key_type: int, public_key: bytes) -> str:
    """Return the verifier key string ``<name>+<hex key ID>+base64(type || key)``."""
    if not is_valid_key_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")
    key_id = compute_key_id(name, key_type, public_key)
    return f"{name}+{key_id:08x}+{b64encode(bytes([key_type]) + public_key)}"


def decode_vkey(text: str, key_type: int) -> tuple[str, int, bytes]:
    """Parse a verifier key of ``key_type`` into ``(name, key_id, 32-byte public key)``.

    Strict: lowercase 8-digit hex key ID, canonical base64, the expected type byte, and a
    key ID equal to the one computed from name and key (else :class:`KeyFormatError`).
    """
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("verifier key must be <name>+<key ID>+<key>")
    name, hex_id, b64 = parts
    return name, *_decode_key_parts(name, hex_id, b64, key_type, "verifier key")


def encode_private_key(name: str, key_type: int, seed: bytes) -> str:
    """Return ``PRIVATE+KEY+<name>+<hex key ID>+base64(type || seed)`` for an Ed25519 seed."""
    public_key = bytes(nacl.signing.SigningKey(seed).verify_key)
    vkey = encode_vkey(name, key_type, public_key)
    hex_id = vkey.split("+")[1]
    return f"PRIVATE+KEY+{name}+{hex_id}+{b64encode(bytes([key_type]) + seed)}"


def decode_private_key(text: str, key_type: int) -> tuple[str, int, bytes]:
    """Parse a signer key of ``key_type`` into ``(name, key_id, 32-byte Ed25519 seed)``.

    The key ID is checked against the public key derived from the seed.
    """
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise KeyFormatError("signer key must be PRIVATE+KEY+<name>+<key ID>+<key>")
    name, hex_id, b64 = parts[2:]
    key_id, seed = _decode_key_parts(name, hex_id, b64, key_type, "signer key", private=True)
    return name, key_id, seed


def _decode_key_parts(
    name: str, hex_id: str, b64: str, key_type: int, what: str, private: bool = False
) -> tuple[int, bytes]:
    if not is_valid_key_name(name):
        raise KeyFormatError(f"{what} has an invalid name {name!r}")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise KeyFormatError(f"{what} ID must be 8 lowercase hex digits, got {hex_id!r}")
    raw = b64decode_strict(b64, what, KeyFormatError)
    if len(raw) != 33 or raw[0] != key_type:
        found = f"type {raw[0]:#04x}, " if raw else ""
        raise KeyFormatError(
            f"{what} must be type {key_type:#04x} with 32 key bytes, "
            f"got {found}{max(len(raw) - 1, 0)} bytes"
        )
    key = raw[1:]
    public_key = bytes(nacl.signing.SigningKey(key).verify_key) if private else key
    want = compute_key_id(name, key_type, public_key)
    if int(hex_id, 16) != want:
        raise KeyFormatError(f"{what} ID {hex_id} does not match the key, want {want:08x}")
    return want, key


def check_verifier_fields(name: str, key_id: int, key_type: int, public_key: bytes) -> None:
    """Raise :class:`KeyFormatError` unless the fields make a consistent Ed25519 key."""
    if not is_valid_key_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")
    if len(public_key) != 32:
        raise KeyFormatError(f"Ed25519 public key has {len(public_key)} bytes, want 32")
    want = compute_key_id(name, key_type, public_key)
    if key_id != want:
        raise KeyFormatError(f"key ID {key_id:08x} does not match the key, want {want:08x}")


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 (type 0x01) note verifier key."""

    name: str
    key_id: int
    public_key: bytes

    def __post_init__(self) -> None:
        check_verifier_fields(self.name, self.key_id, ED25519_KEY_TYPE, self.public_key)

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        """Parse ``<name>+<hex key ID>+base64(0x01 || public key)``."""
        return cls(*decode_vkey(text, ED25519_KEY_TYPE))

    @property
    def vkey(self) -> str:
        """The verifier key string."""
        return encode_vkey(self.name, ED25519_KEY_TYPE, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether ``signature`` is a valid Ed25519 signature over ``message``."""
        return ed25519_verify(self.public_key, message, signature)


class NoteSigningKey:
    """What every note signing key has, whatever its signature type (``KEY_TYPE``): a valid
    name, an Ed25519 seed and the key ID of that type. Its repr never shows the private key."""

    KEY_TYPE: ClassVar[int]
    __slots__ = ("_key", "_key_id", "_name")

    def __init__(self, name: str, seed: bytes) -> None:
        """Precondition: ``name`` is a valid key name and ``seed`` is 32 bytes."""
        if not is_valid_key_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        self._name = name
        self._key = nacl.signing.SigningKey(seed)
        self._key_id = compute_key_id(name, self.KEY_TYPE, bytes(self._key.verify_key))

    @classmethod
    def from_private_key(cls, text: str) -> Self:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+base64(<KEY_TYPE> || seed)``."""
        name, _, seed = decode_private_key(text, cls.KEY_TYPE)
        return cls(name, seed)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def vkey(self) -> str:
        """The verifier key string to publish."""
        return encode_vkey(self._name, self.KEY_TYPE, bytes(self._key.verify_key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, key_id={self._key_id:08x})"


class Signer(NoteSigningKey):
    """An Ed25519 (type 0x01) note signer. Its repr never shows the private key."""

    KEY_TYPE = ED25519_KEY_TYPE
    __slots__ = ()

    def verifier(self) -> Verifier:
        """The matching :class:`Verifier`."""
        return Verifier(self._name, self._key_id, bytes(self._key.verify_key))

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature over ``message``."""
        return self._key.sign(message).signature


def generate_signer_key(name: str) -> tuple[str, str]:
    """Return a new ``(private key text, verifier key text)`` pair for ``name``."""
    seed = bytes(nacl.signing.SigningKey.generate())
    signer = Signer(name, seed)
    return encode_private_key(name, ED25519_KEY_TYPE, seed), signer.vkey


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Report whether ``signature`` is a valid 64-byte Ed25519 signature (RFC 8032)."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True
