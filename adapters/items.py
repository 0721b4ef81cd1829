"""Items that carry warnings or actions: what an adapter left out of a position it still
imported, and what the office must still do in Puente for it.

Neither stops a position: :attr:`~adapters.base.Item.ok` looks at ``problems`` only.
``puente import`` lists both in its summary, each with the item's position and local id
(``getattr(item, "warnings", ())``, ``getattr(item, "actions", ())``).
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import Item, Problem


@dataclass(frozen=True)
class WarnedItem(Item):
    """An :class:`~adapters.base.Item` with warnings (pointer and reason, in both languages):
    something of the input left out of the shared document.

    ``actions`` are not things left out: they say what the office must do in Puente because
    of what the input holds — a Primero case where sharing was refused is imported, and that
    refusal must be recorded in Puente as a consent with the decision "deny".
    """

    warnings: tuple[Problem, ...] = ()
    actions: tuple[Problem, ...] = ()
