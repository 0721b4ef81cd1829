"""Errors raised by the ``adapters`` package.

A bad row, line or case never raises: it becomes an :class:`~adapters.base.Item` with
problems. These errors are for what stops an adapter from starting at all — an unknown adapter
name, a mapping file that cannot be used. Like :class:`schemas.errors.SchemaError` they carry
the explanation in Spanish and English.
"""

from __future__ import annotations

from schemas.errors import BilingualError


class AdapterError(BilingualError):
    """Base class of every error the ``adapters`` package raises."""


class UnknownAdapter(AdapterError, LookupError):
    """No built-in or installed adapter has this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known)
        super().__init__(
            f"no hay un adaptador «{name}»; los disponibles son: {listed}",
            f"there is no adapter '{name}'; the available ones are: {listed}",
        )
        self.name = name


class AdapterUnavailable(AdapterError, ImportError):
    """The adapter is registered but its module cannot be loaded (a missing dependency)."""


class MappingError(AdapterError, ValueError):
    """A mapping file (CSV columns to schema pointers) that cannot be used: where and why."""

    def __init__(self, where: str, message_es: str, message_en: str) -> None:
        super().__init__(f"{where}: {message_es}", f"{where}: {message_en}")
        self.where = where
