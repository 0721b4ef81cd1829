"""Items that carry warnings: what an adapter left out of a position it still imported.

A warning never stops a position: :attr:`~adapters.base.Item.ok` looks at ``problems`` only.
``puente import`` can list warnings in its summary (``getattr(item, "warnings", ())``).
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import Item, Problem


@dataclass(frozen=True)
class WarnedItem(Item):
    """An :class:`~adapters.base.Item` with warnings (pointer and reason, in both languages)."""

    warnings: tuple[Problem, ...] = ()
