"""A schema field by field, for people: what the portal's schema pages show.

:func:`field_outline` lists every field of a schema in document order — pointer template
(``/placements/*/type``), title, type, data category, whether it is required, and the
labels of its codes — computed once per schema by :mod:`schemas.fields`.
"""

from __future__ import annotations

from schemas.fields import FieldInfo
from schemas.registry import SchemaRegistry, Version


def field_outline(registry: SchemaRegistry, name: str, version: Version) -> list[FieldInfo]:
    """Every field of ``name/version`` except the document itself, in document order.
    Raises :class:`~schemas.errors.UnknownSchema`."""
    return [info for pointer, info in registry.fields(name, version).items() if pointer]
