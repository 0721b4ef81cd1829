"""Format adapters (native JSON, CSV, Primero, FHIR) behind one interface.

:mod:`adapters.base` states the interface (:class:`Adapter`, :class:`Item`, :class:`Problem`,
the optional :class:`RejectsWriter`); :mod:`adapters.registry` finds adapters by name, the
built-in ones and those installed packages declare in the ``puente.adapters`` entry-point
group. Adapters depend only on ``schemas``.
"""

from adapters.base import Adapter, Item, Problem, RejectsWriter
from adapters.errors import AdapterError, MappingError, UnknownAdapter
from adapters.registry import available, get

__all__ = [
    "Adapter",
    "AdapterError",
    "Item",
    "MappingError",
    "Problem",
    "RejectsWriter",
    "UnknownAdapter",
    "available",
    "get",
]
