"""How a FHIR element is compared with what the ``fhir`` adapter reads of it: the rules
:mod:`adapters.fhir_shapes` states each resource in, and what they find
(:class:`Found`), for :mod:`adapters.fhir_unread` to say.

An element is:

- read whole (:data:`WHOLE`): a CodeableConcept, a Period, a Reference;
- read in part (a nested :class:`Shape`, with the extension URLs read on it): any other
  element, or extension, is *left out*;
- read from its first item only (:class:`First`): the others are left out;
- quiet (:class:`Quiet`): not read, but it carries nothing a record holds, always or for
  some values;
- read by system (:class:`Identifiers`) or by resource type (:class:`Contained`).

A ``modifierExtension`` changes the meaning of the element that carries it (FHIR's rule):
one whose URL is not read on that element is a *modifier* (and so is ``implicitRules``,
:class:`Modifier`), which stops the resource rather than import it meaning something else.
One inside an element left out is not looked for: that element is left out, and said.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters import fhir_terms as t

Reason = tuple[str, str]
"""Why a part of a resource was left out: (Spanish, English)."""

NOT_READ: Reason = ("Puente no lee este elemento", "Puente does not read this element")
UNKNOWN_EXTENSION: Reason = (
    "extensión que Puente no conoce",
    "an extension Puente does not know",
)
ONLY_FIRST: Reason = ("solo se lee el primero", "only the first one is read")
UNKNOWN_MODIFIER: Reason = (
    "extensión modificadora (modifierExtension) que Puente no conoce: según FHIR cambia el "
    "significado de lo que la lleva, y leído sin ella diría otra cosa, así que no se importa",
    "a modifier extension (modifierExtension) Puente does not know: by FHIR's rules it "
    "changes the meaning of what carries it, and read without it this would say something "
    "else, so it is not imported",
)
IMPLICIT_RULES: Reason = (
    "el recurso dice seguir reglas propias (implicitRules) que Puente no conoce: según FHIR "
    "cambian su significado, así que no se importa",
    "the resource says it follows rules of its own (implicitRules) Puente does not know: by "
    "FHIR's rules they change its meaning, so it is not imported",
)


@dataclass
class Found:
    """What one resource carries that is not read (path → reason, each path once), and the
    modifiers that stop it."""

    local_id_system: str = t.LOCAL_ID
    left_out: dict[str, Reason] = field(default_factory=dict)
    modifiers: dict[str, Reason] = field(default_factory=dict)

    def leave_out(self, path: str, reason: Reason = NOT_READ) -> None:
        self.left_out.setdefault(path, reason)

    def modifier(self, path: str, reason: Reason = UNKNOWN_MODIFIER) -> None:
        self.modifiers.setdefault(path, reason)


class Rule(Protocol):
    def check(self, value: Any, path: str, found: Found) -> None: ...


def items_of(value: Any) -> Iterator[Mapping[str, Any]]:
    """The objects of an element given once or as a list."""
    yield from (item for item in t.as_list(value) if isinstance(item, Mapping))


class _Whole:
    """Read whole. A modifierExtension anywhere inside is not read, so it is a fault."""

    def check(self, value: Any, path: str, found: Found) -> None:
        waiting = [(value, path)]  # a loop, not recursion: a value may nest deep
        while waiting:
            node, where = waiting.pop()
            if isinstance(node, list):
                waiting.extend((item, where) for item in node)
            elif isinstance(node, Mapping):
                for key, each in node.items():
                    if key == "modifierExtension":
                        for extension in items_of(each):
                            found.modifier(f"{where}.modifierExtension[url={extension.get('url')}]")
                    else:
                        waiting.append((each, f"{where}.{key}"))


WHOLE: Rule = _Whole()


@dataclass(frozen=True)
class Quiet:
    """Not read, and nothing to tell: always, or when ``carries_nothing(value)``."""

    carries_nothing: Callable[[Any], bool] | None = None

    def check(self, value: Any, path: str, found: Found) -> None:
        if self.carries_nothing is not None and not self.carries_nothing(value):
            found.leave_out(path)


def quiet_when_in(*values: Any) -> Quiet:
    return Quiet(lambda value: value in values)


@dataclass(frozen=True)
class Modifier:
    """An element that changes the meaning of its resource (``implicitRules``)."""

    reason: Reason

    def check(self, value: Any, path: str, found: Found) -> None:
        found.modifier(path, self.reason)


@dataclass(frozen=True)
class First:
    """A list of which only the first item is read (by ``rule``)."""

    rule: Rule

    def check(self, value: Any, path: str, found: Found) -> None:
        items = t.as_list(value)
        if items:
            self.rule.check(items[0], path, found)
        if len(items) > 1:
            found.leave_out(path, ONLY_FIRST)


#: Extensions on a primitive element (``_birthDate``) that say nothing a record holds: why
#: the value is absent, and the English of a Spanish text Puente wrote (its own label).
QUIET_PRIMITIVE_EXTENSIONS = frozenset({t.DATA_ABSENT_REASON, t.TRANSLATION})


@dataclass(frozen=True)
class Shape:
    """An element read in part: these elements, and extensions of these URLs.
    ``elements`` is a dict so that a shape can hold itself (nested Consent provisions)."""

    elements: dict[str, Rule]
    extensions: frozenset[str] = frozenset()

    def check(self, value: Any, path: str, found: Found) -> None:
        for element in items_of(value):
            for key, each in element.items():
                rule = self.elements.get(key)
                if key in ("extension", "modifierExtension"):
                    self._extensions(key, each, path, found)
                elif rule is not None:
                    rule.check(each, f"{path}.{key}", found)
                elif key.startswith("_"):
                    self._companion(element, key, each, path, found)
                else:
                    found.leave_out(f"{path}.{key}")

    def _extensions(self, key: str, value: Any, path: str, found: Found) -> None:
        for extension in items_of(value):
            url = extension.get("url")
            if isinstance(url, str) and url in self.extensions:
                continue
            if key == "modifierExtension":
                found.modifier(f"{path}.modifierExtension[url={url}]")
            else:
                found.leave_out(f"{path}.extension[url={url}]", UNKNOWN_EXTENSION)

    def _companion(
        self, element: Mapping[str, Any], key: str, value: Any, path: str, found: Found
    ) -> None:
        """``_name``, the extensions of a primitive element, when no rule names it."""
        if key[1:] in element and key[1:] not in self.elements:
            return  # the element itself is left out, and said so
        for part in items_of(value):
            for extension in items_of(part.get("extension")):
                url = extension.get("url")
                if not isinstance(url, str) or url not in QUIET_PRIMITIVE_EXTENSIONS:
                    found.leave_out(f"{path}.{key}.extension[url={url}]", UNKNOWN_EXTENSION)


@dataclass(frozen=True)
class Identifiers:
    """Identifiers read by system (the others are left out, named by theirs); the local id's
    system is the adapter's ``local_id_system`` when ``local_id``."""

    systems: frozenset[str]
    local_id: bool = False

    def check(self, value: Any, path: str, found: Found) -> None:
        for identifier in items_of(value):
            system = identifier.get("system")
            if not isinstance(system, str):
                system = None  # malformed: the models say so
            if system in self.systems or (self.local_id and system == found.local_id_system):
                continue
            found.leave_out(
                f"{path}[system={system}]",
                (
                    "identificador de un sistema que Puente no lee aquí",
                    "an identifier of a system Puente does not read here",
                ),
            )


@dataclass(frozen=True)
class Contained:
    """``contained``: the resources of these types are read as their shapes say."""

    shapes: Mapping[str, Shape]

    def check(self, value: Any, path: str, found: Found) -> None:
        for number, resource in enumerate(t.as_list(value)):
            kind = resource.get("resourceType") if isinstance(resource, Mapping) else None
            shape = self.shapes.get(str(kind))
            if shape is not None:
                shape.check(resource, f"{path}[{number}]", found)
            else:
                found.leave_out(
                    f"{path}[{number}]",
                    (
                        f"recurso {kind} contenido, que Puente no lee aquí",
                        f"a contained {kind} resource, which Puente does not read here",
                    ),
                )
