"""HL7 FHIR Bundles (R4 and R5) ⇄ ``case-record/1`` and ``consent/1``.

**Reading.** The Bundle's ``entry`` array is read entry by entry (:mod:`adapters.json_array`),
never whole. Each resource is validated with the ``fhir.resources`` models: R5 first
(``fhir.resources.<type>``), then R4 (``fhir.resources.R4B.<type>``: R4B is R4 for every
resource read here). An adapter built with ``version="R4"`` or ``"R5"`` accepts only that one.

Entries become items like this:

- each **Patient**, with the RelatedPersons, EpisodeOfCare and Encounters that refer to it
  (by ``fullUrl``, ``Patient/<id>`` or a logical identifier reference), is **one case-record
  envelope**, at the Patient's position ``entry[i]``; its ``local_id`` is the Patient's
  ``urn:puente:local-id`` identifier (another system with ``local_id_system=``), else
  ``Patient.id``; a ``urn:puente:child`` identifier becomes the envelope's ``child_id``.
  The mapping is :mod:`adapters.fhir_case`.
- each **Consent** is **one consent/1 envelope** at its own position (:mod:`adapters.fhir_consent`).
  A consent names the child by hub id, so its Patient must carry ``urn:puente:child`` (or the
  Consent must reference that identifier): push the case first.
- a resource of any **other type** is a problem at its position with pointer
  ``resource:<Type>``; so is an entry that is not an object, has no resource, or whose
  resource has no ``resourceType``; an invalid resource is a problem with the FHIR path of
  each fault; a resource whose Patient is not in the Bundle is a problem; a ``gender``
  outside FHIR's codes rejects its case. Parts of two children never make one case: two
  Patients under one fullUrl are both problems, and so is a resource whose reference matches
  more than one Patient (:class:`~adapters.fhir_grouping.Index`), each at its position. An
  entry nested too deep to decode is a problem at its position
  (:class:`~adapters.json_array.TooDeep`). The rest is imported.
- what a resource read carries that the adapter does not read (an element, an extension,
  an item) is a warning of its case or consent naming its entry and FHIR path; a
  ``modifierExtension`` it does not read, or ``implicitRules``, is a fault of the resource
  like an invalid one's: it changes what the resource means (:mod:`adapters.fhir_unread`).
- a file that is not a Bundle, or JSON that breaks off, is a
  :class:`~adapters.base.FileProblem`. After a break every case is held back, a problem at its
  Patient's position: any of them may have entries after it (see **Memory**), and stored
  without them a case would lose the placements or relatives the hub already has. A Consent
  that refers to an entry not read is held back too; the rest (problems found before the
  break, consents complete in themselves) is still reported or imported.
  ``OperationOutcome`` entries are skipped: rejects files carry them.

**Memory.** A Bundle puts no order on its entries (a server's search answer lists every
Patient first, then what it includes), so a case is complete only when the Bundle ends.
Resources therefore wait in a temporary file (:mod:`adapters.fhir_grouping`); memory holds
an index row per resource — about 350 bytes measured, whatever the resource's size — plus one
case at a time. A Bundle of a million resources (a gigabyte or more) needs some 350 MB; split
larger ones (FHIR servers page their answers anyway). Problems that need no grouping are
reported as they are read.

**Writing** gives an R5 Bundle of type ``collection`` (or ``transaction``, with conditional
``PUT`` by each record's ``urn:puente:record-key`` identifier so resending does not duplicate,
and two agencies' records of one local id stay two; see :mod:`adapters.fhir_case_write`):
Patient, RelatedPerson, EpisodeOfCare and one Encounter per placement for each case record,
a Consent for each consent. Standard elements and extensions are used where they exist; what
they do not hold (protection concerns, health, education, legal proceedings, referrals, best
interest, restitution plan, and fields of the other sections no element has) rides in each
resource's ``case-record-patch`` extension (:mod:`adapters.fhir_patch`), so reading an export
back gives exactly the documents written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import IO, Any
from urllib.parse import quote

from fhir.resources import get_fhir_model_class as r5_model
from fhir.resources.R4B import get_fhir_model_class as r4_model

from adapters import fhir_terms as t
from adapters.base import FileProblem, Item, Problem
from adapters.envelopes import check_data, data_validator, envelope
from adapters.errors import AdapterError
from adapters.fhir_case import CaseData, Entry, Group, read_case
from adapters.fhir_case_write import full_url, record_key, write_case
from adapters.fhir_consent import read_consent
from adapters.fhir_consent_write import write_consent
from adapters.fhir_faults import in_english, in_spanish
from adapters.fhir_grouping import (
    Index,
    Spool,
    Waiting,
    consent_held_back_by_break,
    held_back_by_break,
    literal_keys,
    patient_keys,
    reference_keys,
    subject_of,
    unread_references,
)
from adapters.fhir_unread import CONSENT, modifier_faults, unread_in, unread_in_case
from adapters.items import WarnedItem
from adapters.json_array import TOO_DEEP_EN, TOO_DEEP_ES, ArrayReader, JsonStreamError, TooDeep
from schemas.registry import SchemaRegistry, default_registry

CASE_SCHEMA = "case-record/1"
CONSENT_SCHEMA = "consent/1"
GROUPED = ("RelatedPerson", "EpisodeOfCare", "Encounter", "Consent")
#: The resources a case record is read from beside its Patient.
CASE_PARTS = ("RelatedPerson", "EpisodeOfCare", "Encounter")
SKIPPED = ("OperationOutcome",)
MODELS: Mapping[str, Callable[[str], Any]] = {"R5": r5_model, "R4": r4_model}
MAX_REPORTED_FAULTS = 20


class FhirAdapter:
    """FHIR R4/R5 Bundle JSON ⇄ case-record and consent push envelopes."""

    name = "fhir"
    media_types = ("application/fhir+json",)
    #: Its items can be handed to another process (exchange.decode_process).
    picklable_items = True

    def __init__(
        self,
        *,
        version: str | None = None,
        bundle_type: str = "collection",
        local_id_system: str = t.LOCAL_ID,
        registry: SchemaRegistry | None = None,
    ) -> None:
        if version not in (None, "R4", "R5"):
            raise AdapterError(
                f"versión FHIR «{version}» no admitida: R4 o R5",
                f"FHIR version '{version}' is not supported: R4 or R5",
            )
        if bundle_type not in ("collection", "transaction"):
            raise AdapterError(
                f"tipo de Bundle «{bundle_type}» no admitido: collection o transaction",
                f"Bundle type '{bundle_type}' is not supported: collection or transaction",
            )
        self.versions = (version,) if version else ("R5", "R4")
        # The version of the Bundle being read, once a resource of it is valid in one only.
        self._bundle_version: str | None = None
        # The Patients of the Bundle being read rejected as invalid: reference key hash → entry.
        self._rejected_patients: dict[int, int] = {}
        self.bundle_type = bundle_type
        self.local_id_system = local_id_system
        self.registry = registry or default_registry()
        self._case_validator = data_validator(CASE_SCHEMA, self.registry)
        self._consent_validator = data_validator(CONSENT_SCHEMA, self.registry)

    # -- reading -------------------------------------------------------------------------

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        self._bundle_version = None
        self._rejected_patients = {}
        spool = Spool()
        try:
            yield from self._decode(stream, spool)
        finally:
            spool.close()

    def _decode(self, stream: IO[bytes], spool: Spool) -> Iterator[Item]:
        reader = ArrayReader(stream, "entry", too_deep=True)
        known = Index()
        index = 0  # the entry being read, for the position of a break in the JSON
        cut: str | None = None
        try:
            for index, raw in reader:
                try:
                    problem_item = self._admit(index, raw, spool, known)
                except RecursionError:  # decoded, but too deep for the models or the spool
                    problem_item = _too_deep_item(index, None)
                if problem_item is not None:
                    yield problem_item
                index += 1
        except JsonStreamError as error:
            # The entries before the break are still read, but every case among them is held
            # back: any may have resources after it (resending the fixed Bundle stores them).
            cut = f"entry[{index}]" if reader.found else "entry"
            if reader.found and index:
                after_es = (
                    f"; las entradas anteriores ({index}) se leyeron, esta y las siguientes no: "
                    "corrija el Bundle e impórtelo de nuevo (nada se duplica)"
                )
                after_en = (
                    f"; the entries before it ({index}) were read, this one and those after it "
                    "were not: fix the Bundle and import it again (nothing is stored twice)"
                )
            else:
                after_es = ": no es un Bundle FHIR en JSON"
                after_en = ": not a FHIR Bundle in JSON"
            yield FileProblem(
                cut,
                problems=(
                    Problem(
                        "",
                        f"{error.es} (carácter {error.offset}){after_es}",
                        f"{error.en} (character {error.offset}){after_en}",
                    ),
                ),
            )
        else:
            kind = reader.members.get("resourceType")
            if not reader.blank and (kind != "Bundle" or not reader.found):
                shown = "ninguno" if kind is None else repr(kind)
                yield FileProblem(
                    "resourceType",
                    problems=(
                        Problem(
                            "resource:" + str(kind),
                            f"se esperaba un Bundle con «entry»; resourceType: {shown}",
                            f"expected a Bundle with 'entry'; resourceType: "
                            f"{'none' if kind is None else repr(kind)}",
                        ),
                    ),
                )
        yield from self._grouped(spool, known, cut)

    def _admit(
        self,
        index: int,
        raw: Any,
        spool: Spool,
        known: Index,
    ) -> Item | None:
        """Check one entry; keep it for grouping (None) or say why not (an item)."""
        position = f"entry[{index}]"
        if isinstance(raw, TooDeep):
            return _too_deep_item(index, raw)
        if not isinstance(raw, Mapping):
            return _problem_item(
                position,
                "",
                f"la entrada no es un objeto JSON sino {_json_kind(raw, 'es')}",
                f"the entry is not a JSON object but {_json_kind(raw, 'en')}",
                raw,
            )
        resource = raw.get("resource")
        if resource is None:
            return _problem_item(
                position,
                "resource:",
                "la entrada no tiene «resource»",
                "the entry has no 'resource'",
                raw,
            )
        if not isinstance(resource, Mapping):
            return _problem_item(
                position,
                "resource:",
                f"«resource» debe ser un recurso FHIR (un objeto JSON), no "
                f"{_json_kind(resource, 'es')}",
                f"'resource' must be a FHIR resource (a JSON object), not "
                f"{_json_kind(resource, 'en')}",
                raw,
            )
        if not isinstance(resource.get("resourceType"), str):
            return _problem_item(
                position,
                "resource:",
                f"el recurso no tiene «resourceType» (se leen Patient, {', '.join(GROUPED)})",
                f"the resource has no 'resourceType' (Patient, {', '.join(GROUPED)} are read)",
                raw,
            )
        kind = str(resource["resourceType"])
        if kind in SKIPPED:
            return None
        if kind != "Patient" and kind not in GROUPED:
            return _problem_item(
                position,
                f"resource:{kind}",
                f"tipo de recurso «{kind}» no admitido (se leen Patient, "
                f"{', '.join(GROUPED)}); el resto del Bundle se importa",
                f"resource type '{kind}' is not supported (Patient, {', '.join(GROUPED)} are "
                "read); the rest of the Bundle is imported",
                raw,
            )
        # A modifier the adapter does not read changes what the resource means (FHIR): it
        # stops the resource as an invalid one does.
        faults = self._faults(resource) + modifier_faults(resource)
        if faults and kind == "Patient":
            # Rejected: its parts are told so, rather than that it is not in the Bundle.
            self._note_rejected_patient(index, raw, resource, known)
        if faults and kind not in CASE_PARTS:
            return WarnedItem(position, problems=faults, source=[raw])
        # A faulty part of a case (a placement, a relative) holds its whole case back: stored
        # without it, the case would lose what the hub already had of it, and the part alone
        # in the rejects file could not be sent again without its Patient.
        offset, length = spool.put(raw)
        if kind == "Patient":
            entry = Entry(index, raw.get("fullUrl"), dict(resource))
            row = Waiting(index, offset, length, kind)
            known.add_patient(row, patient_keys(entry), raw.get("fullUrl"))
            return None
        subject = subject_of(resource)
        keys = tuple(reference_keys(subject))
        if not keys:
            if faults:
                return WarnedItem(position, problems=faults, source=[raw])
            return _problem_item(
                position,
                f"resource:{kind}",
                f"el recurso {kind} no dice a qué Patient se refiere",
                f"the {kind} resource does not say which Patient it is about",
                raw,
            )
        if kind == "RelatedPerson" and _refers_to_itself(raw, subject):
            return _problem_item(
                position,
                "resource:RelatedPerson.patient",
                f"RelatedPerson.patient se refiere a este mismo RelatedPerson ({keys[0]}), no a "
                "un Patient: debe nombrar al Patient de la niña, niño o adolescente",
                f"RelatedPerson.patient refers to this RelatedPerson itself ({keys[0]}), not to "
                "a Patient: it must name the child's Patient",
                raw,
            )
        literal = len(literal_keys(subject)) if isinstance(subject, Mapping) else 0
        known.waiting.append(
            Waiting(
                index, offset, length, kind, tuple(map(hash, keys)), faults=faults, literal=literal
            )
        )
        return None

    def _note_rejected_patient(
        self, index: int, raw: Mapping[str, Any], resource: Mapping[str, Any], known: Index
    ) -> None:
        """Remember how a Patient rejected as invalid FHIR could be referred to (its keys,
        hashed), with its position, so that a resource referring to it hears that it was
        rejected (:meth:`_grouped`)."""
        full_url = raw.get("fullUrl")
        entry = Entry(index, full_url if isinstance(full_url, str) else None, dict(resource))
        try:
            keys = patient_keys(entry)
        except TypeError:  # an identifier too malformed to be a key
            keys = set()
        for key in keys:
            self._rejected_patients.setdefault(hash(key), index)

    def _faults(self, resource: Mapping[str, Any]) -> tuple[Problem, ...]:
        """Nothing when a model of an accepted version takes the resource; else the faults of
        the Bundle's version, as far as its resources have shown it, or of the version with
        the fewest, each with its FHIR path."""
        kind = str(resource["resourceType"])
        failures: list[tuple[str, ValueError]] = []
        for version in self.versions:
            try:
                MODELS[version](kind).model_validate(resource)
            except ValueError as error:  # pydantic's ValidationError is a ValueError
                failures.append((version, error))
                continue
            if failures:  # valid in this version only (R5 is tried first): the Bundle's
                self._bundle_version = version
            return ()
        faults = {
            version: getattr(error, "errors", lambda e=error: [{"loc": (), "msg": str(e)}])()
            for version, error in failures
        }
        # A fault of both versions (a date that does not exist) is said of the Bundle's;
        # else of the version the resource comes closest to: an R4 resource with one bad date
        # should hear about the date, not about every element R5 renamed.
        bundles = self._bundle_version
        version = bundles if bundles in faults else min(faults, key=lambda v: len(faults[v]))
        errors = faults[version]
        return tuple(
            Problem(
                f"resource:{kind}"
                + "".join(
                    f"[{part}]" if isinstance(part, int) else f".{part}" for part in e["loc"]
                ),
                f"no es válido en FHIR {version}: {in_spanish(e)}",
                f"not valid FHIR {version}: {in_english(e)}",
            )
            for e in errors[:MAX_REPORTED_FAULTS]
        )

    def _grouped(self, spool: Spool, known: Index, cut: str | None) -> Iterator[Item]:
        members: dict[int, list[Waiting]] = {}
        for row in known.waiting:
            owners = known.owners(row)
            found = owners[0] if owners else None
            if len(owners) > 1:
                yield _ambiguous_item(row, spool.get(row.offset, row.length), owners, known)
            elif found is not None and found in known.clashes:
                raw = spool.get(row.offset, row.length)
                yield _rejected_patient_item(row, raw, known.patients[found].index)
            elif found is not None:
                members.setdefault(found, []).append(row)
            elif row.kind == "Consent":
                raw = spool.get(row.offset, row.length)
                yield self._consent_item(row, raw, None, None, cut)
            elif row.faults:
                raw = spool.get(row.offset, row.length)
                yield WarnedItem(f"entry[{row.index}]", problems=row.faults, source=[raw])
            else:
                raw = spool.get(row.offset, row.length)
                target = reference_keys(subject_of(raw["resource"]))[0]
                rejected = next(
                    (self._rejected_patients[k] for k in row.keys if k in self._rejected_patients),
                    None,
                )
                if rejected is not None:
                    yield _rejected_patient_item(row, raw, rejected)
                    continue
                yield _problem_item(
                    f"entry[{row.index}]",
                    f"resource:{row.kind}",
                    f"se refiere a {target}, que no está en el Bundle",
                    f"it refers to {target}, which is not in the Bundle",
                    raw,
                )
        for number, patient in enumerate(known.patients):
            if number in known.clashes:
                raw = spool.get(patient.offset, patient.length)
                yield _clash_item(patient, raw, known.patients[known.clashes[number]].index)
                continue
            rows = members.get(number, [])
            yield from self._case_items(spool, patient, rows, cut)

    def _case_items(
        self, spool: Spool, patient: Waiting, rows: list[Waiting], cut: str | None
    ) -> Iterator[Item]:
        raw_patient = spool.get(patient.offset, patient.length)
        group = Group(_entry(patient, raw_patient))
        sources = [raw_patient]
        consents: list[tuple[Waiting, dict[str, Any]]] = []
        for row in rows:
            raw = spool.get(row.offset, row.length)
            if row.kind == "Consent":
                consents.append((row, raw))
                continue
            sources.append(raw)
            entry = _entry(row, raw)
            {
                "RelatedPerson": group.related,
                "EpisodeOfCare": group.episodes,
                "Encounter": group.encounters,
            }[row.kind].append(entry)
        case = read_case(group, self.local_id_system)
        # Faults of the case's parts, each named by its entry (the case's position is its
        # Patient's).
        parts = [
            replace(fault, pointer=f"entry[{row.index}].{fault.pointer}")
            for row in rows
            for fault in row.faults
        ]
        checked = [_of_entry(p, case) for p in check_data(self._case_validator, case.data)]
        problems = [*parts, *case.problems, *checked]
        warnings = (*case.warnings, *unread_in_case(group, self.local_id_system))
        if cut is not None:  # any case may have entries after the break (fhir_grouping)
            problems.insert(0, held_back_by_break(cut))
        position = group.patient.position
        if problems or case.local_id is None:
            yield WarnedItem(
                position,
                problems=tuple(problems),
                source=sources,
                local_id=case.local_id,
                warnings=warnings,
            )
        else:
            document = envelope(CASE_SCHEMA, case.local_id, case.data)
            if case.child_id:
                document["child_id"] = case.child_id
            yield WarnedItem(
                position,
                document=document,
                source=sources,
                local_id=case.local_id,
                warnings=warnings,
            )
        for row, raw in consents:
            yield self._consent_item(row, raw, case.child_id, group, cut)

    def _consent_item(
        self,
        row: Waiting,
        raw: Mapping[str, Any],
        child_id: str | None,
        group: Group | None,
        cut: str | None,
    ) -> Item:
        resource = raw["resource"]
        related = {
            key: e.resource for e in (group.related if group else []) for key in e.references()
        }

        def person_ref_of(reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
            return next((related[k] for k in reference_keys(reference) if k in related), None)

        data, problems = read_consent(resource, child_id, person_ref_of)
        local_id = (
            t.identifier_value(resource, self.local_id_system)
            or t.identifier_value(resource, t.CONSENT)
            or resource.get("id")
        )
        # Without the child id, check the rest as if it were known: the office then sees every
        # other fault at once (the missing id is already a problem).
        checked = data if child_id or "child_id" in data else {**data, "child_id": "ch-unknown"}
        problems += check_data(self._consent_validator, checked)
        unread = unread_references(resource, group) if cut is not None else []
        if cut is not None and unread:
            problems.insert(0, consent_held_back_by_break(cut, unread))
        position = f"entry[{row.index}]"
        if problems or not local_id:
            if not local_id:
                problems.append(
                    Problem(
                        "resource:Consent.identifier",
                        "el Consent no tiene identificador ni «id»",
                        "the Consent has no identifier nor 'id'",
                    )
                )
            return WarnedItem(position, problems=tuple(problems), source=[raw], local_id=local_id)
        return WarnedItem(
            position,
            document=envelope(CONSENT_SCHEMA, local_id, data),
            source=[raw],
            local_id=local_id,
            warnings=tuple(unread_in(resource, position, self.local_id_system, CONSENT)),
        )

    # -- writing -------------------------------------------------------------------------

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        """An R5 Bundle of the case-record and consent envelopes, entry by entry. Asked for
        R4 (``version=R4``), it refuses rather than write R5 under that name."""
        if self.versions == ("R4",):
            raise AdapterError(
                "el adaptador fhir escribe FHIR R5 (lo lee también este adaptador); quite "
                "--option version=R4 de la exportación",
                "the fhir adapter writes FHIR R5 (which this adapter also reads); drop "
                "--option version=R4 from the export",
            )
        out.write(b'{"resourceType":"Bundle","type":"' + self.bundle_type.encode() + b'",')
        out.write(b'"entry":[')
        patients: dict[str, str] = {}
        keys = _Keys()
        first = True
        for document in documents:
            for url, resource, identifier in self._resources(document, patients, keys):
                entry: dict[str, Any] = {"fullUrl": url, "resource": resource}
                if self.bundle_type == "transaction":
                    entry["request"] = _request(resource["resourceType"], identifier)
                out.write((b"\n" if first else b",\n") + _dumps(entry))
                first = False
        out.write(b"\n]}\n" if not first else b"]}\n")

    def _resources(
        self, document: Mapping[str, Any], patients: dict[str, str], keys: _Keys
    ) -> list[tuple[str, dict[str, Any], tuple[str, str] | None]]:
        schema = document.get("schema")
        if schema == CASE_SCHEMA:
            written = write_case(document, keys.new(record_key(document)))
            if document.get("child_id"):
                patients[str(document["child_id"])] = written[0].full_url
            return [(w.full_url, w.resource, w.identifier) for w in written]
        if schema == CONSENT_SCHEMA:
            child_id = str((document.get("data") or {}).get("child_id"))
            subject = t.child_reference(child_id)
            if child_id in patients:
                subject["reference"] = patients[child_id]
            local_id = str(document.get("local_id"))
            resource = write_consent(document.get("data") or {}, subject=subject, local_id=local_id)
            # Consents of two agencies may share a local id too: keyed by child and local id.
            key = keys.new(f"consent/{child_id}/{local_id}")
            identifier = {"system": t.RECORD_KEY, "value": key}
            resource["identifier"] = [*t.as_list(resource.get("identifier")), identifier]
            return [(full_url(key, "Consent"), resource, (t.RECORD_KEY, key))]
        raise AdapterError(
            f"el adaptador fhir escribe documentos {CASE_SCHEMA} y {CONSENT_SCHEMA}, no «{schema}»",
            f"the fhir adapter writes {CASE_SCHEMA} and {CONSENT_SCHEMA} documents, not '{schema}'",
        )

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None:
        """A collection Bundle: each rejected item's entries as they came, then an
        OperationOutcome with its reasons (skipped when the fixed Bundle is read again).
        Problems of the file as a whole (the Bundle breaks off) are an OperationOutcome
        each, written only with rejected entries: alone, they are printed by ``puente
        import`` and no rejects file is written."""
        first = True
        waiting: list[Item] = []  # file problems, until an entry is rejected
        for item in items:
            if isinstance(item, FileProblem):
                if first:
                    waiting.append(item)
                    continue
                entries: list[Any] = [{"resource": _outcome(item)}]
            else:
                sources = item.source if isinstance(item.source, list) else []
                entries = [*sources, {"resource": _outcome(item)}]
                if first and waiting:
                    entries = [{"resource": _outcome(each)} for each in waiting] + entries
            for raw in entries:
                if first:
                    out.write(b'{"resourceType":"Bundle","type":"collection","entry":[\n')
                else:
                    out.write(b",\n")
                # A collection's entries carry no request (FHIR bdl-3): a transaction's
                # entries are kept without theirs, so the rejects file is a valid Bundle.
                if isinstance(raw, Mapping) and "request" in raw:
                    raw = {key: value for key, value in raw.items() if key != "request"}
                # An entry too deep to decode is written back as its text.
                out.write(raw.text.encode("utf-8") if isinstance(raw, TooDeep) else _dumps(raw))
                first = False
        if not first:
            out.write(b"\n]}\n")


class _Keys:
    """The record keys written in one Bundle (:func:`~adapters.fhir_case_write.record_key`),
    each once: a key met again (two records the documents do not tell apart) is numbered,
    ``…#2``. Hashes only, so a large export costs a few bytes a record."""

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def new(self, base: str) -> str:
        key, number = base, 1
        while hash(key) in self._seen:
            number += 1
            key = f"{base}#{number}"
        self._seen.add(hash(key))
        return key


def _entry(row: Waiting, raw: Mapping[str, Any]) -> Entry:
    return Entry(row.index, raw.get("fullUrl"), dict(raw["resource"]))


def _json_kind(value: Any, lang: str) -> str:
    """What a JSON value is, for a message: «un texto» / "a string"."""
    kinds = {
        str: ("un texto", "a string"),
        list: ("una lista", "a list"),
        bool: ("un valor lógico", "a boolean"),
        int: ("un número", "a number"),
        float: ("un número", "a number"),
        type(None): ("null", "null"),
    }
    es, en = kinds.get(type(value), ("otro valor", "another value"))
    return es if lang == "es" else en


def _problem_item(position: str, pointer: str, es: str, en: str, raw: Any) -> Item:
    return WarnedItem(position, problems=(Problem(pointer, es, en),), source=[raw])


def _too_deep_item(index: int, raw: TooDeep | None) -> Item:
    """An entry nested too deep to read: its problem alone; the rest of the Bundle is read.
    The rejects file carries it as it came (its text), when that is known."""
    return WarnedItem(
        f"entry[{index}]",
        problems=(
            Problem(
                "",
                f"{TOO_DEEP_ES}: la entrada no se leyó; el resto del Bundle se importa",
                f"{TOO_DEEP_EN}: the entry was not read; the rest of the Bundle is imported",
            ),
        ),
        source=[raw] if raw is not None else [],
    )


def _of_entry(problem: Problem, case: CaseData) -> Problem:
    """A problem the schema found in a part of a case record, said of the entry the part came
    from (the Encounter of a placement, the EpisodeOfCare of /case or /closure)."""
    entry = case.entry_of(problem.pointer)
    if entry is None:
        return problem
    said = f"{entry.position} ({entry.resource.get('resourceType')})"
    return replace(problem, es=f"{said}: {problem.es}", en=f"{said}: {problem.en}")


def _refers_to_itself(raw: Mapping[str, Any], subject: Any) -> bool:
    """Whether a RelatedPerson's ``patient`` names that RelatedPerson (its fullUrl or id)."""
    if not isinstance(subject, Mapping):
        return False
    url = raw.get("fullUrl")
    entry = Entry(0, url if isinstance(url, str) else None, dict(raw["resource"]))
    return bool(entry.references().intersection(literal_keys(subject)))


def _rejected_patient_item(row: Waiting, raw: Mapping[str, Any], patient: int) -> Item:
    target = reference_keys(subject_of(raw["resource"]))[0]
    return _problem_item(
        f"entry[{row.index}]",
        f"resource:{row.kind}",
        f"se refiere a {target}, el Patient de entry[{patient}], que se rechazó (vea su "
        "motivo): corrija ese Patient e importe de nuevo el Bundle; este recurso se guarda con "
        "su caso",
        f"it refers to {target}, the Patient at entry[{patient}], which was rejected (see its "
        "reason): fix that Patient and import the Bundle again; this resource is stored with "
        "its case",
        raw,
    )


def _ambiguous_item(row: Waiting, raw: Mapping[str, Any], owners: list[int], known: Index) -> Item:
    """A resource whose reference matches more than one Patient: joined to none, since the
    parts of two children must never make one case."""
    target = reference_keys(subject_of(raw["resource"]))[0]
    named = ", ".join(f"entry[{known.patients[n].index}]" for n in owners)
    problem = Problem(
        f"resource:{row.kind}",
        f"se refiere a {target}, que en este Bundle nombra a más de un Patient ({named}): no "
        "se sabe de cuál es, así que no se une a ninguno; haga que nombre a uno solo (su "
        "fullUrl, o un identificador que solo él tenga)",
        f"it refers to {target}, which names more than one Patient in this Bundle ({named}): "
        "which one is not known, so it joins none; make it name only one (its fullUrl, or an "
        "identifier only that one has)",
    )
    return WarnedItem(f"entry[{row.index}]", problems=(problem, *row.faults), source=[raw])


def _clash_item(patient: Waiting, raw: Mapping[str, Any], other: int) -> Item:
    """A Patient under the fullUrl of another Patient of the Bundle: neither is imported."""
    url = raw.get("fullUrl")
    problem = Problem(
        "resource:Patient",
        f"su fullUrl {url} es también el del Patient de entry[{other}]: un Bundle da a cada "
        "recurso su propio fullUrl, y no se sabe de cuál de los dos son las entradas que se "
        "refieren a él; ninguno de los dos se importa: dé a cada uno su propio fullUrl",
        f"its fullUrl {url} is also that of the Patient at entry[{other}]: a Bundle gives each "
        "resource its own fullUrl, and which of the two the entries referring to it are about "
        "is not known; neither is imported: give each its own fullUrl",
    )
    return WarnedItem(f"entry[{patient.index}]", problems=(problem,), source=[raw])


def _outcome(item: Item) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "details": {"text": f"{item.position} {p.pointer}: {p.es}"},
                "diagnostics": f"{item.position} {p.pointer}: {p.en}",
            }
            for p in item.problems
        ],
    }


def _request(kind: str, identifier: tuple[str, str] | None) -> dict[str, str]:
    if identifier is None:
        return {"method": "POST", "url": kind}
    system, value = identifier
    token = quote(system + "|" + value, safe=":/")  # "/" is a query's own character
    return {"method": "PUT", "url": f"{kind}?identifier={token}"}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
