"""Strict decoders shared by the text formats (note, checkpoint, tlog-proof, tlog-witness)."""

from __future__ import annotations

import base64
import binascii
import re

from audit.errors import FormatError

MAX_UINT64 = 2**64 - 1

_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4) with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: str, what: str, error: type[FormatError]) -> bytes:
    """Decode canonical standard base64: alphabet, padding and zero trailing bits enforced."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise error(f"{what} is not valid base64: {text!r}") from None
    if b64encode(data) != text:
        raise error(f"{what} is not canonical base64: {text!r}")
    return data


def parse_decimal(text: str, what: str, error: type[FormatError]) -> int:
    """Parse an ASCII decimal with no sign and no leading zeroes, at most 2**64 - 1."""
    if not _DECIMAL.fullmatch(text):
        raise error(f"{what} must be an ASCII decimal without leading zeroes, got {text!r}")
    value = int(text)
    if value > MAX_UINT64:
        raise error(f"{what} {value} does not fit in 64 bits")
    return value
