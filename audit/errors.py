"""Errors raised by the audit package.

Every error is an :class:`AuditError`. Verification functions return nothing (or the
verified value) and raise one of these, with a message that says what was expected and
what was found. The ``puente audit verify`` exit codes map onto the hierarchy:

- 1, bad proof or entry: :class:`ProofError` (and :class:`RootMismatch`), :class:`EntryError`,
  :class:`FormatError`;
- 2, signature or quorum failure: :class:`SignatureError` (and :class:`QuorumError`);
- 3, inconsistent checkpoints: :class:`InconsistentCheckpoints`.
"""

from __future__ import annotations

import base64


class AuditError(Exception):
    """Base class of every error raised by :mod:`audit`."""


class ProofError(AuditError):
    """A Merkle proof is malformed or does not prove what it claims."""


class RootMismatch(ProofError):
    """A proof computed a root hash different from the expected one."""

    def __init__(self, calculated: bytes, expected: bytes, what: str = "root") -> None:
        self.calculated = calculated
        self.expected = expected
        super().__init__(f"{what} mismatch: calculated {_b64(calculated)}, want {_b64(expected)}")


class InconsistentCheckpoints(AuditError):
    """Two checkpoints of one log cannot both be right: the log forked or rolled back."""


class SignatureError(AuditError):
    """A signature by a known key failed, or no known key signed."""


class QuorumError(SignatureError):
    """Fewer witnesses than required cosigned a checkpoint."""


class FormatError(AuditError):
    """Text or bytes do not follow the format strictly (parse strictly, print canonically)."""


class NoteFormatError(FormatError):
    """A C2SP signed note, or a signature line in one, is malformed."""


class KeyFormatError(FormatError):
    """A signer (private) key or verifier key string is malformed."""


class CheckpointFormatError(FormatError):
    """A C2SP tlog-checkpoint body is malformed."""


class ProofFileFormatError(FormatError):
    """A C2SP ``.tlog-proof`` file or a tlog-witness request is malformed."""


class EntryError(AuditError):
    """An audit entry cannot be canonicalised, or its bytes are not canonical JSON."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
