"""What a FHIR resource carries that the ``fhir`` adapter does not read: told, not dropped.

Each resource a case or a consent is read from is compared with what the adapter reads of it
(:mod:`adapters.fhir_shapes`): an element, an extension or an item left out is a warning
naming its entry and FHIR path (``entry[0]: Patient.contact``,
``Patient.extension[url=…]``), in Spanish and English, as the Primero adapter warns of a field
it does not know. A Patient's ``deceasedBoolean``, its ``contact`` (a relative who must not
take the child), an alert in an extension of another system: the office hears that they were
not imported, and keeps them where they are known.

A ``modifierExtension`` the adapter does not read (or ``implicitRules``) is not a warning but
a fault (:func:`modifier_faults`): FHIR says it changes the meaning of what carries it, so the
entry is rejected rather than imported meaning something else.

Resources are compared one at a time, as they are read: nothing is kept for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapters import fhir_terms as t
from adapters.base import Problem
from adapters.fhir_case import Group
from adapters.fhir_elements import Found
from adapters.fhir_shapes import shape_of

#: What is imported without what was left out: (Spanish, English).
CASE = ("el caso", "the case")
CONSENT = ("el consentimiento", "the consent")


def modifier_faults(resource: Mapping[str, Any]) -> tuple[Problem, ...]:
    """Why a resource must not be imported: the modifiers it carries that are not read,
    each at its FHIR path (``resource:Patient.modifierExtension[url=…]``)."""
    found = _found(resource, t.LOCAL_ID)
    return tuple(
        Problem(f"resource:{path}", f"{path}: {es}", f"{path}: {en}")
        for path, (es, en) in found.modifiers.items()
    )


def unread_in_case(group: Group, local_id_system: str = t.LOCAL_ID) -> list[Problem]:
    """What the resources a case is read from carry and the case leaves out. An entry left
    out whole (an Encounter that is no placement, an EpisodeOfCare after the first) is
    already a warning of its own."""
    placements = [
        entry
        for entry in group.encounters
        if t.code_in(entry.resource.get("type"), t.PLACEMENT_TYPE) is not None
    ]
    entries = [group.patient, *group.related, *group.episodes[:1], *placements]
    return [
        warning
        for entry in entries
        for warning in unread_in(entry.resource, entry.position, local_id_system, CASE)
    ]


def unread_in(
    resource: Mapping[str, Any],
    position: str,
    local_id_system: str = t.LOCAL_ID,
    imported: tuple[str, str] = CASE,
) -> list[Problem]:
    """A warning for each part of ``resource`` (at ``position``) that is not read."""
    found = _found(resource, local_id_system)
    return list(_warnings(found.left_out.items(), position, imported))


def _found(resource: Mapping[str, Any], local_id_system: str) -> Found:
    found = Found(local_id_system)
    shape = shape_of(resource)
    if shape is not None:
        shape.check(resource, str(resource.get("resourceType")), found)
    return found


def _warnings(
    left_out: Iterable[tuple[str, tuple[str, str]]], position: str, imported: tuple[str, str]
) -> Iterable[Problem]:
    what_es, what_en = imported
    for path, (es, en) in left_out:
        yield Problem(
            f"resource:{path}",
            f"{position}: {path}: {es}; se dejó fuera y {what_es} se importa sin ello",
            f"{position}: {path}: {en}; it was left out and {what_en} is imported without it",
        )
