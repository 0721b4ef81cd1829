"""Where the entries of a Bundle wait until every reference to a Patient is known.

A Bundle puts no order on its entries, so :class:`~adapters.fhir.FhirAdapter` keeps each
resource it accepts in a temporary file (:class:`Spool`) and only an index row in memory
(:class:`Waiting`: positions, offsets and hashes of reference keys — a few hundred bytes
whatever the size of the resource). :class:`Index` matches references to Patients by every
way FHIR lets a reference be written.

**A Bundle that breaks off.** For the same reason (no order), a resource after the break may
belong to any Patient read before it: no case is known complete. :func:`held_back_by_break`
is the reason each case is then held back (stored without the missing resources, a case
would lose the placements or relatives the hub already has of it); a Consent is held back
when it refers to an entry that was not read (:func:`unread_references`), since what it takes
from it (the grantor) would be missing. Resending the fixed Bundle stores nothing twice.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters import fhir_terms as t
from adapters.base import Problem
from adapters.fhir_case import Entry, Group


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
    versioned URL, and ``system|value`` of a logical (identifier) reference — literal ones
    first (:func:`literal_keys` counts them)."""
    if not isinstance(reference, Mapping):
        return []
    keys = literal_keys(reference)
    identifier = reference.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("value"):
        keys.append(f"{identifier.get('system')}|{identifier['value']}")
    return keys


def literal_keys(reference: Mapping[str, Any]) -> list[str]:
    """The keys of a reference's ``reference`` (as written, and ``Type/id``)."""
    target = reference.get("reference")
    if not isinstance(target, str) or not target:
        return []
    target = target.split("/_history/")[0]
    keys = [target]
    parts = target.rsplit("/", 2)
    if len(parts) == 3:
        keys.append(f"{parts[1]}/{parts[2]}")
    return keys


def patient_keys(entry: Entry) -> set[str]:
    keys = entry.references()
    for identifier in t.as_list(entry.resource.get("identifier")):
        if isinstance(identifier, Mapping) and identifier.get("value"):
            keys.add(f"{identifier.get('system')}|{identifier['value']}")
    return keys


def held_back_by_break(cut: str) -> Problem:
    """Why a case read from a Bundle that breaks at ``cut`` is not imported."""
    return Problem(
        "resource:Bundle",
        f"el Bundle se corta en {cut} y las entradas de este caso pueden seguir después (un "
        "Bundle no ordena sus entradas): el caso se retiene, porque guardado sin ellas perdería "
        "lo que el nodo ya tiene de él (una ubicación, un familiar); corrija el Bundle e "
        "impórtelo de nuevo (nada se duplica)",
        f"the Bundle breaks at {cut} and this case's entries may go on after it (a Bundle puts "
        "no order on its entries): the case is held back, since stored without them it would "
        "lose what the hub already has of it (a placement, a relative); fix the Bundle and "
        "import it again (nothing is stored twice)",
    )


def consent_held_back_by_break(cut: str, unread: list[str]) -> Problem:
    """Why a Consent that refers to entries not read (``unread``) is not imported."""
    named = ", ".join(unread)
    return Problem(
        "resource:Bundle",
        f"el Bundle se corta en {cut} y el Consent se refiere a {named}, que no se leyó: se "
        "retiene; corrija el Bundle e impórtelo de nuevo (nada se duplica)",
        f"the Bundle breaks at {cut} and the Consent refers to {named}, which was not read: "
        "it is held back; fix the Bundle and import it again (nothing is stored twice)",
    )


def unread_references(consent: Mapping[str, Any], group: Group | None) -> list[str]:
    """The references of a Consent's subject and grantors (R5 ``subject``/``grantor``, R4
    ``patient``/``performer``) to a Patient or RelatedPerson that was not read: neither
    contained in it, nor its Patient or one of that Patient's RelatedPersons. A subject that
    names the child by ``urn:puente:child`` needs no entry."""
    read: set[str] = set()
    if group is not None:
        read = patient_keys(group.patient).union(*(e.references() for e in group.related))
    unread = []
    for name in ("subject", "patient", "grantor", "performer"):
        for reference in t.as_list(consent.get(name)):
            if not isinstance(reference, Mapping):
                continue
            target = reference.get("reference")
            if not isinstance(target, str) or not target or target.startswith("#"):
                continue
            if name in ("subject", "patient") and t.reference_identifier(reference, t.CHILD):
                continue
            if _reference_type(reference) not in (None, "Patient", "RelatedPerson"):
                continue  # an Organization, a Practitioner: not read from a Bundle anyway
            if not read.intersection(reference_keys(reference)):
                unread.append(target)
    return unread


def _reference_type(reference: Mapping[str, Any]) -> str | None:
    """The resource type a reference states (its ``type``, or ``Type/id``), if any."""
    if isinstance(reference.get("type"), str):
        return str(reference["type"])
    parts = str(reference.get("reference")).split("/_history/")[0].rsplit("/", 2)
    return parts[-2] if len(parts) >= 2 and parts[-2][:1].isupper() else None


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
    #: How many of ``keys`` (the first) are of the literal reference: they decide first.
    literal: int = 0


@dataclass
class Index:
    """What is known of the spooled resources while the Bundle is read.

    A key two Patients share (one identifier, one ``Patient/id`` from two servers) names
    neither: a resource that refers by it is matched to no Patient but rejected
    (:meth:`owners`), since parts of two children must never make one case. Two Patients
    under one fullUrl are both rejected (:attr:`clashes`): FHIR gives each resource of a
    Bundle its own."""

    patients: list[Waiting] = field(default_factory=list)
    owner: dict[int, int] = field(default_factory=dict)  # reference key hash → patient number
    #: The keys of more than one Patient: key hash → every patient number (rare, so apart).
    shared: dict[int, list[int]] = field(default_factory=dict)
    urls: dict[int, int] = field(default_factory=dict)  # fullUrl hash → patient number
    #: Patients whose fullUrl another Patient has too: patient number → the other's number.
    clashes: dict[int, int] = field(default_factory=dict)
    waiting: list[Waiting] = field(default_factory=list)

    def add_patient(self, row: Waiting, keys: Iterable[str], full_url: Any = None) -> None:
        number = len(self.patients)
        if isinstance(full_url, str) and full_url:
            first = self.urls.setdefault(hash(full_url), number)
            if first != number:
                self.clashes[number] = first
                self.clashes.setdefault(first, number)
        for key in keys:
            first = self.owner.setdefault(hash(key), number)
            if first != number:
                every = self.shared.setdefault(hash(key), [first])
                if number not in every:
                    every.append(number)
        self.patients.append(row)

    def owners(self, row: Waiting) -> list[int]:
        """The Patients a resource's reference matches: by its literal reference when that
        matches any, else by its identifier. More than one: the reference is ambiguous."""
        for keys in (row.keys[: row.literal], row.keys[row.literal :]):
            found: list[int] = []
            for key in keys:
                matched = self.shared.get(key) or ([self.owner[key]] if key in self.owner else [])
                found += [number for number in matched if number not in found]
            if found:
                return found
        return []
