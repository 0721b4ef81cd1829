"""Why a push body has no canonical (RFC 8785) form, said so a person can fix it.

:func:`exchange.signatures.canonical_json` raises a technical, English ``ValueError``; the push
routes (one record, and each line of a bulk push) answer with :func:`canonical_failure`
instead: a validation failure in Spanish and English, pointing at the offending value when
there is one. In practice that is an integer JSON numbers cannot carry exactly (beyond
±(2^53 − 1)): the parser already refuses what else JCS cannot represent (non-finite numbers,
lone surrogates, excessive depth).
"""

from __future__ import annotations

from typing import Any

from schemas.validation import ValidationFailure

#: The integers RFC 8785 (through I-JSON, RFC 7493) can represent: those an IEEE 754 double
#: holds exactly.
SAFE_INTEGER = 2**53 - 1


def canonical_failure(document: Any) -> ValidationFailure:
    """The failure to report for ``document``, whose canonical form raised ``ValueError``."""
    found = _first_unsafe_integer(document)
    if found is not None:
        pointer, number = found
        return ValidationFailure(
            pointer,
            "canonical",
            f"el número {number} es demasiado grande para intercambiarse con exactitud "
            "(pasa de 2^53); envíelo como texto",
            f"the number {number} is too large to be exchanged exactly (over 2^53); "
            "send it as text",
        )
    return ValidationFailure(
        "",
        "canonical",
        "el documento no tiene forma canónica JSON (RFC 8785), que es la que se firma y se guarda",
        "the document has no canonical JSON form (RFC 8785), which is what is signed and stored",
    )


def _first_unsafe_integer(document: Any) -> tuple[str, int] | None:
    """The JSON pointer and value of the first integer beyond the safe range, in document
    order, if any."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        pointer, value = stack.pop()
        if isinstance(value, dict):
            members = [(f"{pointer}/{_escaped(str(key))}", item) for key, item in value.items()]
            stack.extend(reversed(members))
        elif isinstance(value, list):
            stack.extend(
                reversed([(f"{pointer}/{index}", item) for index, item in enumerate(value)])
            )
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -SAFE_INTEGER <= value <= SAFE_INTEGER:
                return pointer, value
    return None


def _escaped(token: str) -> str:
    # RFC 6901: "~" and "/" inside a member name.
    return token.replace("~", "~0").replace("/", "~1")
