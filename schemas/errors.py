"""Errors raised by the ``schemas`` package.

Every error carries the same explanation in Spanish and English (``message_es``,
``message_en``); ``str(error)`` shows both so a log line is readable by either reader, and
:meth:`SchemaError.message` picks one for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.compat import Incompatibility


class BilingualError(Exception):
    """An error explained in Spanish and English: what the hub, the CLI and the adapters raise
    when a person will read why (``message(lang)``); ``str()`` gives both."""

    def __init__(self, message_es: str, message_en: str) -> None:
        super().__init__(f"{message_en} / {message_es}")
        self.message_es = message_es
        self.message_en = message_en

    def message(self, lang: str = "en") -> str:
        """The explanation in ``lang`` (``"es"`` or ``"en"``)."""
        return self.message_es if lang == "es" else self.message_en


class SchemaError(BilingualError):
    """Base class of every error the ``schemas`` package raises."""


class UnknownSchema(SchemaError, LookupError):
    """A schema name, version or reference that the registry does not hold."""

    def __init__(self, message_es: str, message_en: str, *, ref: str = "") -> None:
        super().__init__(message_es, message_en)
        self.ref = ref


class DocumentError(SchemaError, ValueError):
    """Input that is not a usable JSON document: bad UTF-8, malformed, too large, too deep…

    ``code`` is stable and machine-readable (see :mod:`schemas.parsing` for the list);
    ``line`` and ``column`` (1-based) locate the problem in the input when known, ``pointer``
    (a JSON pointer) the value it is about once the input was parsed (a string that no text
    may hold), else None.
    """

    def __init__(
        self,
        code: str,
        message_es: str,
        message_en: str,
        line: int | None = None,
        column: int | None = None,
        pointer: str | None = None,
    ) -> None:
        super().__init__(message_es, message_en)
        self.code = code
        self.line = line
        self.column = column
        self.pointer = pointer

    def __repr__(self) -> str:
        return (
            f"DocumentError(code={self.code!r}, line={self.line!r}, column={self.column!r}, "
            f"message_en={self.message_en!r})"
        )


class IncompatibleSchema(SchemaError):
    """A new schema version rejects documents that the previous version accepted."""

    def __init__(self, incompatibilities: Sequence[Incompatibility]) -> None:
        count = len(incompatibilities)
        first_es = incompatibilities[0].reason_es if incompatibilities else ""
        first_en = incompatibilities[0].reason_en if incompatibilities else ""
        super().__init__(
            f"la nueva versión no es compatible ({count} diferencias; primera: {first_es})",
            f"the new version is not compatible ({count} differences; first: {first_en})",
        )
        self.incompatibilities = tuple(incompatibilities)
