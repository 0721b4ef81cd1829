"""Audit entries as RFC 8785 (JCS) canonical JSON: the bytes the log hashes as leaves.

An entry is a JSON object shaped after FHIR AuditEvent (time, actor, action, outcome,
purpose, child_id pseudonym, record id and body hash, decision basis, consent ids) and
never carries case content. Its shape is checked where entries are made; here an entry
is any JSON object, and this module fixes its one byte representation, so that the hub,
exports and the offline verifier all hash the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import rfc8785

from audit.errors import EntryError, spanish_cause
from audit.merkle import leaf_hash


def canonical_entry(entry: Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of ``entry``.

    Preconditions (else :class:`EntryError`): ``entry`` is a mapping with string keys
    whose values are JSON values: str, int within ±(2**53 - 1), finite float, bool,
    None, lists and string-keyed mappings of those.
    """
    if not isinstance(entry, Mapping):
        raise EntryError(f"an audit entry must be a JSON object, got {type(entry).__name__}")
    try:
        return rfc8785.dumps(entry)
    except (rfc8785.CanonicalizationError, UnicodeError, RecursionError) as e:
        raise EntryError(f"audit entry is not canonicalisable JSON: {e}") from e


def entry_leaf_hash(entry: Mapping[str, Any]) -> bytes:
    """Return the Merkle leaf hash of ``entry``: ``leaf_hash(canonical_entry(entry))``."""
    return leaf_hash(canonical_entry(entry))


def parse_canonical_entry(data: bytes) -> dict[str, Any]:
    """Parse entry bytes from an export; they must be exactly the canonical form.

    Raises :class:`EntryError` for invalid UTF-8 or JSON, duplicate keys, a non-object,
    or any byte differing from :func:`canonical_entry` of the parsed value (so an
    edited-but-equivalent entry is caught, not silently re-canonicalised).
    """
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise EntryError(
            f"audit entry is not valid UTF-8 JSON: {e}",
            es=f"la entrada de auditoría no es JSON UTF-8 válido: {spanish_cause(e)}",
        ) from e
    if not isinstance(value, dict):
        raise EntryError(f"an audit entry must be a JSON object, got {type(value).__name__}")
    canonical = canonical_entry(value)
    if canonical != data:
        raise EntryError("audit entry is not in RFC 8785 canonical form")
    return value


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise EntryError(f"duplicate key {key!r} in audit entry")
        obj[key] = value
    return obj


def _parse_int(text: str) -> int | float:
    # RFC 8785 numbers are IEEE doubles: an integral double beyond 2**53 prints as digits
    # without a fraction (e.g. 2.0**60), so read such digits back as the double they are.
    value = int(text)
    return value if abs(value) < _SAFE_INTEGER_LIMIT else float(value)


_SAFE_INTEGER_LIMIT = 2**53


def _reject_constant(name: str) -> Any:
    raise EntryError(f"{name} is not a JSON value")
