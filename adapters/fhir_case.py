"""A Patient and the resources about it ⇄ the data of a ``case-record/1`` push.

- **Patient** → ``/child``: names (the ``official`` name, else ``usual``, else one without a
  use, ``temp`` or ``anonymous`` last, never ``old``; the father's and mother's surnames from
  the HL7 ``humanname-*-family`` extensions, else ``family`` as first surname; a ``nickname``
  name → ``alias``), gender (``other`` → ``unknown``, with a warning), birth date (or the
  ``estimated-age`` extension, an integer, decimal or Age → ``age_estimation``),
  ``patient-nationality``, ``patient-birthPlace``, communication languages, address and
  telecom → ``current_location``, identifiers (see :mod:`adapters.fhir_terms`; one read as
  ``other`` is a warning), ``unaccompanied-status`` extension. Its contained RelatedPersons
  are relatives of the case like those of their own entries.
- **RelatedPerson** (``patient`` = the Patient) → ``/related_persons``: relationship (Puente
  coding, else v3 RoleCode; none at all → ``other``, its text a warning), names, gender,
  birth date (partial allowed, ``estimated-date`` extension), languages, address, telecom,
  ``custody`` extension.
- **EpisodeOfCare** → ``/case``: status (``case-status`` extension, else from the FHIR status),
  ``urn:puente:case-number`` identifier, period → opened on / closed on, managing
  organisation and care manager → owner, ``closure-reason`` extension → ``/closure``. A
  Patient without one is an open case.
- **Encounter** with a ``urn:puente:placement-type`` type → ``/placements``: period, location
  → facility, service provider → operator, reason, a RelatedPerson participant → caregiver.
  An Encounter without that type is not a placement: it is left out with a warning.

R4 and R5 spellings are both read (``period``/``actualPeriod``, ``reasonCode``/``reason``,
``participant.individual``/``.actor``). Where the schema needs a full date (a placement's
start and end, the case's opening and closing, an identifier's validity) a partial FHIR date
(``2024``, ``2024-02``) is a problem naming the entry and element, never dropped. Problems the
schema finds in a part of the record are said of the entry it came from. Writing, in R5, is
:mod:`adapters.fhir_case_write`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters import fhir_terms as t
from adapters.base import Problem
from adapters.fhir_patch import apply, read_patch


@dataclass
class Entry:
    """One Bundle entry the adapter read: where it was, its fullUrl and resource."""

    index: int
    full_url: str | None
    resource: dict[str, Any]

    @property
    def position(self) -> str:
        return f"entry[{self.index}]"

    def references(self) -> set[str]:
        """Every string a reference to this resource may be written as."""
        keys = set()
        if self.resource.get("id") is not None:  # "Patient/None" would match every id-less one
            keys.add(f"{self.resource.get('resourceType')}/{self.resource.get('id')}")
        if self.full_url:
            keys.add(self.full_url)
        return keys


@dataclass
class Group:
    """A Patient and the entries that refer to it."""

    patient: Entry
    related: list[Entry] = field(default_factory=list)
    episodes: list[Entry] = field(default_factory=list)
    encounters: list[Entry] = field(default_factory=list)
    consents: list[Entry] = field(default_factory=list)


@dataclass
class CaseData:
    local_id: str | None
    child_id: str | None
    data: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: Which entry each part of the record came from: (pointer, entry), e.g.
    #: ("/placements/0", the Encounter's); the rest of the record but /child is the
    #: EpisodeOfCare's (``""``), when there is one.
    parts: list[tuple[str, Entry]] = field(default_factory=list)

    def entry_of(self, pointer: str) -> Entry | None:
        """The entry a pointer into the record names a part of (None: the Patient's)."""
        if pointer == "/child" or pointer.startswith("/child/"):
            return None
        whole = None
        for prefix, entry in self.parts:
            if not prefix:
                whole = entry
            elif pointer == prefix or pointer.startswith(prefix + "/"):
                return entry
        return whole


@dataclass
class Notes:
    """Where the problems and warnings found reading one resource go, said of its entry."""

    position: str
    problems: list[Problem]
    warnings: list[Problem] = field(default_factory=list)

    def problem(self, element: str, es: str, en: str) -> None:
        self.problems.append(
            Problem(f"resource:{element}", f"{self.position}: {es}", f"{self.position}: {en}")
        )

    def warning(self, element: str, es: str, en: str) -> None:
        self.warnings.append(
            Problem(f"resource:{element}", f"{self.position}: {es}", f"{self.position}: {en}")
        )


def _date(value: Any, element: str = "", notes: Notes | None = None) -> str | None:
    """The calendar date of a FHIR date or dateTime where the schema needs a full date. A
    partial one (a year, a year and month) is a problem: dropped, a placement would read as
    still going on."""
    if not isinstance(value, str):
        return None
    if len(value) >= 10:
        return value[:10]
    if notes is not None:
        notes.problem(
            element,
            f"{element} = «{value}»: se necesita una fecha completa (AAAA-MM-DD)",
            f'{element} = "{value}": needs a full date (YYYY-MM-DD)',
        )
    return None


def _agency(reference: Any) -> dict[str, Any]:
    """An ``agency_ref``: a hub agency named by identifier, or an organisation by name."""
    if not isinstance(reference, Mapping):
        return {}
    agency_id = t.reference_identifier(reference, t.AGENCY)
    if agency_id:
        return {"agency_id": agency_id}
    display = reference.get("display")
    return {"name": display} if isinstance(display, str) and display else {}


#: Which HumanName gives the names, best first (a use not listed, as ``old``, never does).
_NAME_USES = ("official", "usual", None, "maiden", "temp", "anonymous")


def chosen_names(names: Any) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """Which HumanNames of a list are read: the one the names come from, the best by its use
    (:data:`_NAME_USES`), and the one the alias comes from, a ``nickname`` (else an
    ``anonymous`` name not taken for the names). The others are not read."""
    found = [name for name in t.as_list(names) if isinstance(name, Mapping)]
    ranked = sorted(
        (name for name in found if name.get("use") in _NAME_USES),
        key=lambda name: _NAME_USES.index(name.get("use")),
    )
    official: Mapping[str, Any] | None = next(
        (name for name in ranked if name.get("family") or name.get("given")), None
    )
    alias = next(
        (
            name
            for use in ("nickname", "anonymous")
            for name in found
            if name.get("use") == use and name is not official and _name_text(name)
        ),
        None,
    )
    return official, alias


def read_names(names: Any) -> tuple[dict[str, Any], str | None]:
    """The shared ``names`` and ``alias`` of a list of HumanName (:func:`chosen_names`)."""
    official, alias_name = chosen_names(names)
    alias = _name_text(alias_name) if alias_name is not None else None
    if official is None:
        return {}, alias
    family_parts = official.get("_family")
    fathers = t.extension_value(family_parts, t.FATHERS_FAMILY, "String")
    mothers = t.extension_value(family_parts, t.MOTHERS_FAMILY, "String")
    given = " ".join(g for g in t.as_list(official.get("given")) if isinstance(g, str))
    result = t.compact(
        {
            "given_names": given or None,
            "first_surname": fathers or (official.get("family") if not mothers else None),
            "second_surname": mothers,
        }
    )
    return result, alias


def _name_text(name: Mapping[str, Any]) -> str | None:
    given = [g for g in t.as_list(name.get("given")) if isinstance(g, str)]
    return name.get("text") or " ".join(given) or None


def read_address(addresses: Any) -> dict[str, Any]:
    address = next((a for a in t.as_list(addresses) if isinstance(a, Mapping)), None)
    if address is None:
        return {}
    lines = [line for line in t.as_list(address.get("line")) if isinstance(line, str)]
    return t.compact(
        {
            "country": address.get("country"),
            "state": address.get("state"),
            "municipality": address.get("district"),
            "locality": address.get("city"),
            "street": ", ".join(lines) or None,
            "postal_code": address.get("postalCode"),
            "description": address.get("text"),
        }
    )


def read_contact(telecom: Any) -> dict[str, Any]:
    phones = [c.get("value") for c in t.as_list(telecom) if _system(c) == "phone"]
    emails = [c.get("value") for c in t.as_list(telecom) if _system(c) == "email"]
    return t.compact(
        {
            "phone": phones[0] if phones else None,
            "alternate_phone": phones[1] if len(phones) > 1 else None,
            "email": emails[0] if emails else None,
        }
    )


def _system(contact: Any) -> Any:
    return contact.get("system") if isinstance(contact, Mapping) else None


def read_languages(communication: Any) -> tuple[list[str], str | None]:
    languages: list[str] = []
    preferred = None
    for item in t.as_list(communication):
        if not isinstance(item, Mapping):
            continue
        code = t.code_in(item.get("language"), t.BCP_47)
        if code and code not in languages:
            languages.append(code)
            if item.get("preferred") is True and preferred is None:
                preferred = code
    return languages, preferred


def read_case(group: Group, local_id_system: str = t.LOCAL_ID) -> CaseData:
    """The shared data of a Patient and the resources that refer to it."""
    patient = group.patient.resource
    problems: list[Problem] = []
    warnings: list[Problem] = []
    episode = group.episodes[0].resource if group.episodes else None
    local_id = (
        t.identifier_value(patient, local_id_system)
        or (t.identifier_value(episode, local_id_system) if episode else None)
        or patient.get("id")
    )
    if not local_id:
        problems.append(
            Problem(
                "resource:Patient.identifier",
                f"el Patient no tiene identificador «{local_id_system}» ni «id»: sin él no se "
                "puede reenviar sin duplicar",
                f"the Patient has no '{local_id_system}' identifier nor 'id': without one it "
                "cannot be resent safely",
            )
        )
    for extra in group.episodes[1:]:
        warnings.append(
            _left_out(
                extra, "solo se lee el primer EpisodeOfCare", "only the first EpisodeOfCare is read"
            )
        )
    parts: list[tuple[str, Entry]] = []
    related = [*group.related, *_contained_relatives(group.patient)]
    persons: list[dict[str, Any]] = []
    for entry in related:
        parts.append((f"/related_persons/{len(persons)}", entry))
        notes = Notes(entry.position, problems, warnings)
        person = apply(
            read_related_person(entry, problems, notes),
            read_patch(entry.resource, entry.position, problems),
        )
        _other_gender(entry, person, notes)
        persons.append(person)
    refs = {
        key: person.get("person_ref")
        for entry, person in zip(related, persons, strict=True)
        for key in entry.references()
    }
    placements: list[dict[str, Any]] = []
    for entry in group.encounters:
        placement = read_placement(entry.resource, refs, Notes(entry.position, problems))
        if placement is None:
            warnings.append(
                _left_out(
                    entry,
                    "el Encounter no tiene tipo de acogimiento (urn:puente:placement-type)",
                    "the Encounter has no placement type (urn:puente:placement-type)",
                )
            )
        else:
            parts.append((f"/placements/{len(placements)}", entry))
            placements.append(
                apply(placement, read_patch(entry.resource, entry.position, problems))
            )
    episode_notes = Notes(group.episodes[0].position, problems) if group.episodes else None
    case, closure = read_episode(episode, problems, episode_notes)
    _check_gender(group.patient, problems)
    notes = Notes(group.patient.position, problems, warnings)
    child = apply(
        read_child(patient, local_id_system, notes),
        read_patch(patient, group.patient.position, problems),
    )
    _other_gender(group.patient, child, notes)
    rest = t.compact(
        {"case": case, "related_persons": persons, "placements": placements, "closure": closure}
    )
    if episode is not None:
        # The episode's patch carries the rest of the record: what /case and /closure lack and
        # every section no FHIR element holds (:mod:`adapters.fhir_patch`).
        rest = apply(rest, read_patch(episode, group.episodes[0].position, problems))
        parts.append(("", group.episodes[0]))
    data = {"case": rest.pop("case", None), "child": child, **rest}
    if data["case"] is None:
        del data["case"]
    child_id = t.identifier_value(patient, t.CHILD)
    return CaseData(local_id, child_id, data, problems, warnings, parts)


def _contained_relatives(patient: Entry) -> list[Entry]:
    """The RelatedPersons a Patient contains, as entries at the Patient's position: relatives
    of the case like those of their own entries (FHIR lets a Patient carry them inside)."""
    return [
        Entry(patient.index, None, dict(resource))
        for resource in t.as_list(patient.resource.get("contained"))
        if isinstance(resource, Mapping) and resource.get("resourceType") == "RelatedPerson"
    ]


def _other_gender(entry: Entry, read: Mapping[str, Any], notes: Notes) -> None:
    """FHIR's gender ``other`` read as the schema's ``unknown`` is said: the schema has no
    "other" (its ``intersex`` is not what ``other`` says)."""
    if entry.resource.get("gender") == "other" and read.get("sex") == "unknown":
        kind = entry.resource.get("resourceType")
        notes.warning(
            f"{kind}.gender",
            f"{kind}.gender «other» no tiene equivalente en el esquema (female, male, "
            "intersex, unknown): se guardó como «unknown» (sin dato)",
            f"{kind}.gender 'other' has no equivalent in the schema (female, male, intersex, "
            "unknown): stored as 'unknown'",
        )


def _left_out(entry: Entry, es: str, en: str) -> Problem:
    kind = entry.resource.get("resourceType")
    return Problem(
        f"resource:{kind}",
        f"{entry.position}: {es}; se dejó fuera",
        f"{entry.position}: {en}; it was left out",
    )


def read_child(
    patient: Mapping[str, Any], local_id_system: str = t.LOCAL_ID, notes: Notes | None = None
) -> dict[str, Any]:
    """``/child`` as a Patient's elements carry it (without its merge patch)."""
    names, alias = read_names(patient.get("name"))
    languages, preferred = read_languages(patient.get("communication"))
    age = _estimated_age(patient, notes)
    nationality = [
        code
        for ext in t.extensions(patient, t.NATIONALITY)
        for part in t.as_list(ext.get("extension"))
        if isinstance(part, Mapping) and part.get("url") == "code"
        for code in t.codes_in(part.get("valueCodeableConcept"), t.ISO_3166)
    ]
    birth_place = t.extension_value(patient, t.BIRTH_PLACE, "Address") or {}
    return t.compact(
        {
            "names": names,
            "alias": alias,
            "sex": t.GENDER_BACK.get(patient.get("gender", "")),
            "date_of_birth": patient.get("birthDate"),
            "age_estimation": {"estimated_age_years": age} if age is not None else None,
            "birth_country": birth_place.get("country"),
            "birth_place": birth_place.get("text"),
            "nationality": list(dict.fromkeys(nationality)),
            "languages": languages,
            "primary_language": preferred,
            "identifiers": _identifiers(patient, local_id_system, notes),
            "unaccompanied_status": t.extension_value(patient, t.UNACCOMPANIED, "Code"),
            "needs_interpreter": t.extension_value(patient, t.INTERPRETER_REQUIRED, "Boolean"),
            "current_location": t.compact(
                {
                    "address": read_address(patient.get("address")),
                    "location_type": t.extension_value(patient, t.LOCATION_TYPE, "Code"),
                    "contact": read_contact(patient.get("telecom")),
                }
            ),
        }
    )


_V2_IDENTIFIER_TYPE = {"PPN": "passport", "NI": "national_id", "BCT": "birth_certificate"}
#: Identifiers that name the envelope or the record, not the child.
_ENVELOPE_SYSTEMS = (t.LOCAL_ID, t.CHILD, t.RECORD_KEY)
#: Years in one unit of UCUM's time units (an Age's code).
_UCUM_YEARS = {"a": 1, "mo": 12, "wk": 52.1775, "d": 365.25}


def _estimated_age(patient: Mapping[str, Any], notes: Notes | None) -> int | None:
    """The ``estimated-age`` extension in whole years: ``valueInteger``, ``valueDecimal``
    (14.5 → 14) or ``valueAge`` in a UCUM time unit (``a``, ``mo``, ``wk``, ``d``)."""
    found = t.extensions(patient, t.ESTIMATED_AGE)
    if not found:
        return None
    extension = found[0]
    if "valueInteger" in extension:
        value: Any = extension["valueInteger"]
        return value if isinstance(value, int) else None
    years: Any = extension.get("valueDecimal")
    age = extension.get("valueAge")
    if isinstance(age, Mapping):
        per_year = _UCUM_YEARS.get(str(age.get("code")))
        value = age.get("value")
        years = value / per_year if per_year and isinstance(value, int | float) else None
        if years is None and notes is not None:
            notes.problem(
                "Patient.extension.valueAge",
                f"la edad estimada {age.get('value')} {age.get('code')} no está en años, "
                "meses, semanas ni días de UCUM (a, mo, wk, d)",
                f"the estimated age {age.get('value')} {age.get('code')} is not in UCUM years, "
                "months, weeks or days (a, mo, wk, d)",
            )
    if isinstance(years, int | float) and not isinstance(years, bool) and math.isfinite(years):
        return math.floor(years)
    return None


def _identifiers(
    patient: Mapping[str, Any], local_id_system: str, notes: Notes | None
) -> list[dict[str, Any]]:
    """The child's identifiers, less those that name the envelope (Puente's local id, child
    id, record key). An identifier of another system taken as the local id
    (``local_id_system``) stays: it is the child's too (a CURP), and without it the hub
    would not know the child by it."""
    found = []
    for identifier in t.as_list(patient.get("identifier")):
        if not isinstance(identifier, Mapping) or identifier.get("system") in _ENVELOPE_SYSTEMS:
            continue
        kind = _identifier_type(identifier, local_id_system, notes)
        assigner = identifier.get("assigner") or {}
        found.append(
            t.compact(
                {
                    "type": kind,
                    "value": identifier.get("value"),
                    "issuer_country": t.extension_value(identifier, t.ISSUER_COUNTRY, "Code"),
                    "issuer_agency": t.reference_identifier(assigner, t.AGENCY),
                    "issuer_name": assigner.get("display"),
                    "valid_until": _date(
                        (identifier.get("period") or {}).get("end"),
                        "Patient.identifier.period.end",
                        notes,
                    ),
                }
            )
        )
    return found


def _identifier_type(
    identifier: Mapping[str, Any], local_id_system: str, notes: Notes | None
) -> str:
    """An identifier's kind: Puente's coding, else HL7 v2's, else its system's (a CURP under
    RENAPO's OID), else ``agency_local`` for the local id's own system; else ``other``, said
    in a warning (unless the coding says ``other`` itself)."""
    system = identifier.get("system")
    kind = t.code_in(identifier.get("type"), t.IDENTIFIER_TYPE) or next(
        (
            _V2_IDENTIFIER_TYPE[c["code"]]
            for c in t.codings(identifier.get("type"))
            if c.get("code") in _V2_IDENTIFIER_TYPE
        ),
        None,
    )
    kind = kind or t.IDENTIFIER_SYSTEMS_BACK.get(str(system))
    if kind is None and system == local_id_system:
        kind = "agency_local"
    if kind is None and notes is not None:
        notes.warning(
            "Patient.identifier",
            f"el identificador «{identifier.get('value')}» (sistema {system}) no dice su tipo "
            f"({t.IDENTIFIER_TYPE}) ni tiene un sistema conocido: se guardó como «other»",
            f"the identifier '{identifier.get('value')}' (system {system}) does not say its "
            f"type ({t.IDENTIFIER_TYPE}) nor has a known system: stored as 'other'",
        )
    return kind or "other"


def _check_gender(entry: Entry, problems: list[Problem]) -> None:
    """A gender outside FHIR's administrative-gender codes is a problem, as an unknown code
    is in a spreadsheet or a Primero case: never read as "no sex recorded"."""
    gender = entry.resource.get("gender")
    if gender is None or gender in t.GENDER_BACK:
        return
    kind = entry.resource.get("resourceType")
    accepted = ", ".join(t.GENDER_BACK)
    problems.append(
        Problem(
            f"resource:{kind}.gender",
            f"{entry.position}: código desconocido «{gender}» en {kind}.gender; se aceptan: "
            f"{accepted}",
            f"{entry.position}: unknown code '{gender}' in {kind}.gender; accepted: {accepted}",
        )
    )


def read_related_person(
    entry: Entry, problems: list[Problem], notes: Notes | None = None
) -> dict[str, Any]:
    """A ``/related_persons`` item as a RelatedPerson's elements carry it (without its merge
    patch); ``notes`` hears what is left out."""
    _check_gender(entry, problems)
    resource = entry.resource
    names, alias = read_names(resource.get("name"))
    languages, _ = read_languages(resource.get("communication"))
    ref = t.identifier_value(resource, t.RELATED_PERSON)
    born = resource.get("birthDate")
    estimated = t.extension_value(resource.get("_birthDate"), t.ESTIMATED_DATE, "Boolean")
    return t.compact(
        {
            "person_ref": ref.rsplit("/", 1)[-1] if ref else resource.get("id"),
            "relationship": _relationship(entry, problems, notes),
            "names": names,
            "alias": alias,
            "sex": t.GENDER_BACK.get(resource.get("gender", "")),
            "date_of_birth": t.compact({"date": born, "estimated": estimated}) if born else None,
            "languages": languages,
            "address": read_address(resource.get("address")),
            "contact": read_contact(resource.get("telecom")),
            "custody": t.extension_value(resource, t.CUSTODY, "Code"),
        }
    )


def _relationship(entry: Entry, problems: list[Problem], notes: Notes | None) -> str | None:
    concepts = entry.resource.get("relationship")
    own = t.code_in(concepts, t.RELATIONSHIP)
    if own:
        return own
    role = next(
        (
            t.ROLE_CODE_BACK[c["code"]]
            for c in t.codings(concepts)
            if c.get("code") in t.ROLE_CODE_BACK
        ),
        None,
    )
    if role:
        return role
    written = [c.get("code") for c in t.codings(concepts)]
    if not written:
        texts = [
            c["text"]
            for c in t.as_list(concepts)
            if isinstance(c, Mapping) and isinstance(c.get("text"), str)
        ]
        if texts and notes is not None:
            # The schema's relationship is a code and no field holds its wording.
            notes.warning(
                "RelatedPerson.relationship.text",
                f"el parentesco viene solo como texto ({', '.join(texts)}): se guardó como "
                "«other» y el texto se dejó fuera; use v3 RoleCode o "
                f"{t.RELATIONSHIP}",
                f"the relationship is given only as text ({', '.join(texts)}): stored as "
                f"'other' and the text was left out; use v3 RoleCode or {t.RELATIONSHIP}",
            )
        return "other"
    problems.append(
        Problem(
            "resource:RelatedPerson.relationship",
            f"{entry.position}: parentesco desconocido {written}: use v3 RoleCode o "
            f"{t.RELATIONSHIP}",
            f"{entry.position}: unknown relationship {written}: use v3 RoleCode or "
            f"{t.RELATIONSHIP}",
        )
    )
    return None


def read_placement(
    encounter: Mapping[str, Any], refs: Mapping[str, Any], notes: Notes | None = None
) -> dict[str, Any] | None:
    """A ``/placements`` item as an Encounter's elements carry it (without its merge patch);
    None for an Encounter that is not a placement. ``notes`` hears a partial date."""
    kind = t.code_in(encounter.get("type"), t.PLACEMENT_TYPE)
    if kind is None:
        return None
    named = "actualPeriod" if encounter.get("actualPeriod") else "period"
    period = encounter.get(named) or {}
    reasons = [
        v.get("concept")
        for r in t.as_list(encounter.get("reason"))
        for v in t.as_list(r.get("value"))
    ] + t.as_list(encounter.get("reasonCode"))
    caregiver = None
    for participant in t.as_list(encounter.get("participant")):
        actor = participant.get("actor") or participant.get("individual") or {}
        caregiver = caregiver or refs.get(actor.get("reference", ""))
    location: Mapping[str, Any] = next(iter(t.as_list(encounter.get("location"))), {})
    return t.compact(
        {
            "type": kind,
            "alternative_to_detention": t.extension_value(
                encounter, t.ALTERNATIVE_TO_DETENTION, "Boolean"
            ),
            "facility_name": (location.get("location") or {}).get("display"),
            "operator": _agency(encounter.get("serviceProvider")),
            "caregiver_person_ref": caregiver,
            "start_date": _date(period.get("start"), f"Encounter.{named}.start", notes),
            "end_date": _date(period.get("end"), f"Encounter.{named}.end", notes),
            "reason": t.code_in(reasons, t.PLACEMENT_REASON),
        }
    )


def read_episode(
    episode: Mapping[str, Any] | None, problems: list[Problem], notes: Notes | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``/case`` and ``/closure`` as an EpisodeOfCare's elements carry them (without its
    merge patch). A status not given (``_status`` with a data-absent-reason: an export
    that withheld it) is not read as any status."""
    if episode is None:
        return {"status": "open"}, {}
    status = t.extension_value(episode, t.CASE_STATUS_EXT, "Code") or t.EPISODE_STATUS_BACK.get(
        episode.get("status", "")
    )
    if status is None and episode.get("status") is not None:
        problems.append(
            Problem(
                "resource:EpisodeOfCare.status",
                f"estado «{episode.get('status')}» sin equivalente en un caso",
                f"status '{episode.get('status')}' has no case equivalent",
            )
        )
    period = episode.get("period") or {}
    owner = t.compact(
        {
            "agency_id": t.reference_identifier(episode.get("managingOrganization"), t.AGENCY),
            "caseworker_id": next(
                (
                    t.reference_identifier(r, t.PERSON)
                    for r in t.as_list(episode.get("careManager"))
                ),
                None,
            ),
        }
    )
    case = t.compact(
        {
            "status": status,
            "case_number": t.identifier_value(episode, t.CASE_NUMBER),
            "opened_on": _date(period.get("start"), "EpisodeOfCare.period.start", notes),
            "workflow_stage": t.code_in(episode.get("type"), t.WORKFLOW_STAGE),
            "identified_by": t.extension_value(episode, t.IDENTIFIED_BY, "Code"),
            "referred_by": _agency(t.extension_value(episode, t.REFERRED_BY, "Reference")),
            "owner": owner if "agency_id" in owner else None,
        }
    )
    closure = t.compact(
        {
            "closed_on": _date(period.get("end"), "EpisodeOfCare.period.end", notes)
            if status == "closed"
            else None,
            "reason": t.extension_value(episode, t.CLOSURE_REASON_EXT, "Code"),
        }
    )
    return case, closure
