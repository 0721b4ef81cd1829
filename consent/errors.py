"""Errors raised by the consent package.

Every error is a :class:`ConsentError` carrying its message in Spanish and English and, where
it concerns a place in a JSON document, the JSON pointer of that place. The engine itself never
raises on a well-formed request: a refusal is a :class:`~consent.decision.Decision`, not an
error. Errors say that the *input* is wrong (a malformed consent document, an unknown purpose
code, a record of another child), so the hub can answer 400 with a reason a person can act on.
"""

from __future__ import annotations


class ConsentError(ValueError):
    """Base class of every error raised by :mod:`consent`."""

    def __init__(self, spanish: str, english: str, *, pointer: str = "") -> None:
        super().__init__(f"{english} / {spanish}" + (f" (at {pointer})" if pointer else ""))
        self.message_es = spanish
        self.message_en = english
        self.pointer = pointer


class ConsentFormatError(ConsentError):
    """A consent, grant, view, override or rule document is malformed (``from_json``)."""


class RequestError(ConsentError):
    """A decision request uses an unknown code or mixes records of different children."""
