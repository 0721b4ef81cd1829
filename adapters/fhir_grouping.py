"""Where the entries of a Bundle wait until every reference to a Patient is known.

A Bundle puts no order on its entries, so :class:`~adapters.fhir.FhirAdapter` keeps each
resource it accepts in a temporary file (:class:`Spool`) and only an index row in memory
(:class:`Waiting`: positions, offsets and hashes of reference keys — a few hundred bytes
whatever the size of the resource). :class:`Index` matches references to Patients by every
way FHIR lets a reference be written.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters import fhir_terms as t
from adapters.fhir_case import Entry


def subject_of(resource: Mapping[str, Any]) -> Any:
    """The reference to the Patient a grouped resource is about."""
    kind = resource.get("resourceType")
    if kind in ("RelatedPerson", "EpisodeOfCare"):
        return resource.get("patient")
    if kind == "Consent":
        return resource.get("subject") or resource.get("patient")
    return resource.get("subject")


def reference_keys(reference: Any) -> list[str]:
    """The strings a reference can be matched by: as written, ``Type/id`` of an absolute or
    versioned URL, and ``system|value`` of a logical (identifier) reference."""
    if not isinstance(reference, Mapping):
        return []
    keys = []
    target = reference.get("reference")
    if isinstance(target, str) and target:
        target = target.split("/_history/")[0]
        keys.append(target)
        parts = target.rsplit("/", 2)
        if len(parts) == 3:
            keys.append(f"{parts[1]}/{parts[2]}")
    identifier = reference.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("value"):
        keys.append(f"{identifier.get('system')}|{identifier['value']}")
    return keys


def patient_keys(entry: Entry) -> set[str]:
    keys = entry.references()
    for identifier in t.as_list(entry.resource.get("identifier")):
        if isinstance(identifier, Mapping) and identifier.get("value"):
            keys.add(f"{identifier.get('system')}|{identifier['value']}")
    return keys


class Spool:
    """Entries waiting for the end of the Bundle, in a temporary file (see module docs)."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()

    def put(self, raw: Mapping[str, Any]) -> tuple[int, int]:
        data = json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        offset = self.file.seek(0, 2)
        self.file.write(data)
        return offset, len(data)

    def get(self, offset: int, length: int) -> dict[str, Any]:
        self.file.seek(offset)
        value: dict[str, Any] = json.loads(self.file.read(length))
        return value

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True, slots=True)
class Waiting:
    """One spooled resource: where it was, where it waits, and (not for a Patient) the
    reference keys of the Patient it is about."""

    index: int
    offset: int
    length: int
    kind: str
    keys: tuple[int, ...] = ()  # hashes of the reference keys: a few bytes each, not strings
    #: What the FHIR models found wrong with it (a part of a case: the case waits for it).
    faults: tuple[Any, ...] = ()


@dataclass
class Index:
    """What is known of the spooled resources while the Bundle is read."""

    patients: list[Waiting] = field(default_factory=list)
    owner: dict[int, int] = field(default_factory=dict)  # reference key hash → patient number
    waiting: list[Waiting] = field(default_factory=list)

    def add_patient(self, row: Waiting, keys: Iterable[str]) -> None:
        for key in keys:
            self.owner.setdefault(hash(key), len(self.patients))
        self.patients.append(row)
