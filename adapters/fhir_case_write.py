"""A ``case-record/1`` envelope → the R5 resources :mod:`adapters.fhir_case` reads back.

Patient, a RelatedPerson per related person, an EpisodeOfCare for the case and an Encounter per
placement, each with a stable ``urn:uuid`` fullUrl (the same input gives the same URLs, so a
resent transaction updates instead of duplicating) and the identifier a transaction updates it
by. What their elements cannot hold rides in each resource's ``case-record-patch`` extension
(:mod:`adapters.fhir_patch`), computed by reading the resource back: the round trip is exact.

Both the URLs and those identifiers come from the record's key (:func:`record_key`), not from
its local id alone: an export holds other agencies' records too, under their owners' local ids,
and two agencies may use the same one. Sharing a fullUrl, the two children would be read back
as one (their relatives and placements mixed); sharing an identifier, a transaction would
write one over the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters import fhir_terms as t
from adapters.fhir_case import Entry, read_child, read_episode, read_placement, read_related_person
from adapters.fhir_patch import add_patch

_NAMESPACE = uuid.UUID("5f0c6e7a-2b1d-4c3e-9a8f-70b1c2d3e4f5")


def full_url(key: str, kind: str, index: int = 0) -> str:
    """A stable ``urn:uuid`` for a resource written for a record of key ``key`` (same input,
    same URL)."""
    return "urn:uuid:" + str(uuid.uuid5(_NAMESPACE, f"{key}/{kind}/{index}"))


def record_key(envelope: Mapping[str, Any]) -> str:
    """What tells a record from another agency's with the same local id, as far as the
    document says: ``<owner agency>/<child id>/<local id>``, each part empty when the reader
    was not given it (a redacted owner, a portable export). The Bundle writer numbers a key
    met twice (``…#2``): the records are then told apart in that Bundle only."""
    data = envelope.get("data") or {}
    case = data.get("case") if isinstance(data, Mapping) else None
    owner = (case or {}).get("owner") if isinstance(case, Mapping) else None
    agency = owner.get("agency_id") if isinstance(owner, Mapping) else None
    parts = (agency, envelope.get("child_id"), envelope.get("local_id"))
    return "/".join(str(part or "") for part in parts)


@dataclass(frozen=True)
class Written:
    """A resource written for a Bundle, and the identifier a transaction updates it by."""

    full_url: str
    resource: dict[str, Any]
    identifier: tuple[str, str] | None


def write_names(names: Mapping[str, Any], alias: str | None) -> list[dict[str, Any]]:
    written: list[dict[str, Any]] = []
    if names:
        first, second = names.get("first_surname"), names.get("second_surname")
        name: dict[str, Any] = {"use": "official"}
        if first or second:
            name["family"] = " ".join(part for part in (first, second) if part)
            parts = [
                t.extension(url, "String", part)
                for url, part in ((t.FATHERS_FAMILY, first), (t.MOTHERS_FAMILY, second))
                if part
            ]
            name["_family"] = {"extension": parts}
        if names.get("given_names"):
            # The schema holds the given names as one text ("María de los Ángeles"): one part,
            # not a word each.
            name["given"] = [str(names["given_names"])]
        written.append(name)
    if alias:
        written.append({"use": "nickname", "text": alias})
    return written


def write_address(address: Mapping[str, Any]) -> list[dict[str, Any]]:
    written = t.compact(
        {
            "text": address.get("description"),
            "line": [address["street"]] if address.get("street") else None,
            "city": address.get("locality"),
            "district": address.get("municipality"),
            "state": address.get("state"),
            "postalCode": address.get("postal_code"),
            "country": address.get("country"),
        }
    )
    return [written] if written else []


def write_contact(contact: Mapping[str, Any]) -> list[dict[str, Any]]:
    kinds = (("phone", "phone"), ("alternate_phone", "phone"), ("email", "email"))
    return [{"system": system, "value": contact[key]} for key, system in kinds if contact.get(key)]


def write_languages(languages: Sequence[str], preferred: str | None) -> list[dict[str, Any]]:
    return [
        t.compact(
            {
                "language": t.concept(t.BCP_47, code),
                "preferred": True if code == preferred else None,
            }
        )
        for code in languages
    ]


def write_case(envelope: Mapping[str, Any], key: str | None = None) -> list[Written]:
    """The Patient, RelatedPersons, EpisodeOfCare and Encounters of a case-record envelope;
    ``key`` (default :func:`record_key`) names the record in their URLs and identifiers."""
    local_id = str(envelope.get("local_id"))
    key = key or record_key(envelope)
    data = envelope.get("data") or {}
    patient_url = full_url(key, "Patient")
    subject = {"reference": patient_url}
    patient = _keyed(_patient(envelope), key)
    written = [Written(patient_url, patient, (t.RECORD_KEY, key))]
    owner_ref = envelope.get("child_id") or local_id
    person_urls: dict[str, str] = {}
    for index, person in enumerate(data.get("related_persons") or []):
        url = full_url(key, "RelatedPerson", index)
        ref = person.get("person_ref")
        if ref:
            person_urls[ref] = url
        resource = _write_related_person(person, subject, f"{owner_ref}/{ref}" if ref else None)
        add_patch(resource, person, read_related_person(Entry(index, url, resource), []))
        person_key = f"{key}/related_persons/{ref}" if ref else None
        updated_by = (t.RECORD_KEY, person_key) if person_key else None
        written.append(Written(url, _keyed(resource, person_key), updated_by))
    episode_url = full_url(key, "EpisodeOfCare")
    episode = _keyed(_episode(data, subject, local_id), key)
    written.append(Written(episode_url, episode, (t.RECORD_KEY, key)))
    refs = {url: ref for ref, url in person_urls.items()}
    for index, placement in enumerate(data.get("placements") or []):
        placement_key = f"{key}/placements/{index}"
        resource = _encounter(placement, subject, {"reference": episode_url}, person_urls)
        add_patch(resource, placement, read_placement(resource, refs))
        written.append(
            Written(
                full_url(key, "Encounter", index),
                _keyed(resource, placement_key),
                (t.RECORD_KEY, placement_key),
            )
        )
    return written


def _keyed(resource: dict[str, Any], key: str | None) -> dict[str, Any]:
    """``resource`` with its ``urn:puente:record-key`` identifier (none without a key)."""
    if key is not None:
        identifier = {"system": t.RECORD_KEY, "value": key}
        resource["identifier"] = [*t.as_list(resource.get("identifier")), identifier]
    return resource


def _patient(envelope: Mapping[str, Any]) -> dict[str, Any]:
    child = (envelope.get("data") or {}).get("child") or {}
    identifiers = [{"system": t.LOCAL_ID, "value": envelope.get("local_id")}]
    if envelope.get("child_id"):
        identifiers.append({"system": t.CHILD, "value": envelope["child_id"]})
    identifiers += [_write_identifier(i) for i in child.get("identifiers") or []]
    extensions = [
        {
            "url": t.NATIONALITY,
            "extension": [{"url": "code", "valueCodeableConcept": t.concept(t.ISO_3166, code)}],
        }
        for code in child.get("nationality") or []
    ]
    if child.get("birth_country") or child.get("birth_place"):
        place = t.compact({"country": child.get("birth_country"), "text": child.get("birth_place")})
        extensions.append(t.extension(t.BIRTH_PLACE, "Address", place))
    age = (child.get("age_estimation") or {}).get("estimated_age_years")
    if age is not None:
        extensions.append(t.extension(t.ESTIMATED_AGE, "Integer", age))
    if child.get("unaccompanied_status"):
        extensions.append(t.extension(t.UNACCOMPANIED, "Code", child["unaccompanied_status"]))
    if isinstance(child.get("needs_interpreter"), bool):
        extensions.append(
            t.extension(t.INTERPRETER_REQUIRED, "Boolean", child["needs_interpreter"])
        )
    location = child.get("current_location") or {}
    if location.get("location_type"):
        extensions.append(t.extension(t.LOCATION_TYPE, "Code", location["location_type"]))
    patient = t.compact(
        {
            "resourceType": "Patient",
            "extension": extensions,
            "identifier": identifiers,
            "name": write_names(child.get("names") or {}, child.get("alias")),
            "telecom": write_contact(location.get("contact") or {}),
            "gender": t.GENDER.get(child.get("sex", "")),
            "birthDate": child.get("date_of_birth"),
            "address": write_address(location.get("address") or {}),
            "communication": write_languages(
                child.get("languages") or [], child.get("primary_language")
            ),
        }
    )
    return add_patch(patient, child, read_child(patient))


def _write_identifier(identifier: Mapping[str, Any]) -> dict[str, Any]:
    assigner = t.compact(
        {
            "identifier": {"system": t.AGENCY, "value": identifier["issuer_agency"]}
            if identifier.get("issuer_agency")
            else None,
            "display": identifier.get("issuer_name"),
        }
    )
    country = identifier.get("issuer_country")
    return t.compact(
        {
            "extension": [t.extension(t.ISSUER_COUNTRY, "Code", country)] if country else None,
            "system": t.IDENTIFIER_SYSTEMS.get(identifier["type"]),
            "type": t.concept(t.IDENTIFIER_TYPE, identifier["type"]),
            "value": identifier.get("value"),
            "period": {"end": identifier["valid_until"]} if identifier.get("valid_until") else None,
            "assigner": assigner,
        }
    )


def _write_related_person(
    person: Mapping[str, Any], subject: Mapping[str, Any], identifier: str | None
) -> dict[str, Any]:
    relationship = person.get("relationship", "other")
    codings = [t.coding(t.RELATIONSHIP, relationship)]
    if relationship in t.ROLE_CODE:
        codings.append(t.coding(t.V3_ROLE, t.ROLE_CODE[relationship]))
    born = person.get("date_of_birth") or {}
    languages = person.get("languages") or []
    return t.compact(
        {
            "resourceType": "RelatedPerson",
            "extension": [t.extension(t.CUSTODY, "Code", person["custody"])]
            if person.get("custody")
            else None,
            "identifier": [{"system": t.RELATED_PERSON, "value": identifier}]
            if identifier
            else None,
            "patient": dict(subject),
            "relationship": [{"coding": codings}],
            "name": write_names(person.get("names") or {}, person.get("alias")),
            "telecom": write_contact(person.get("contact") or {}),
            "gender": t.GENDER.get(person.get("sex", "")),
            "birthDate": born.get("date"),
            "_birthDate": {
                "extension": [t.extension(t.ESTIMATED_DATE, "Boolean", born["estimated"])]
            }
            if "estimated" in born
            else None,
            "address": write_address(person.get("address") or {}),
            "communication": write_languages(languages, None),
        }
    )


def _episode(data: Mapping[str, Any], subject: Mapping[str, Any], local_id: str) -> dict[str, Any]:
    case = data.get("case") or {}
    closure = data.get("closure") or {}
    status = case.get("status")
    owner = case.get("owner") or {}
    # A status withheld from the reader is not known: no case-status extension, and the
    # required FHIR status says so (data-absent-reason "unknown") rather than claim "active".
    extensions = [t.extension(t.CASE_STATUS_EXT, "Code", status)] if status else []
    if case.get("identified_by"):
        extensions.append(t.extension(t.IDENTIFIED_BY, "Code", case["identified_by"]))
    referred_by = _agency_reference(case.get("referred_by") or {})
    if referred_by:
        extensions.append(t.extension(t.REFERRED_BY, "Reference", referred_by))
    if closure.get("reason"):
        extensions.append(t.extension(t.CLOSURE_REASON_EXT, "Code", closure["reason"]))
    period = t.compact({"start": case.get("opened_on"), "end": closure.get("closed_on")})
    identifiers = [{"system": t.LOCAL_ID, "value": local_id}]
    if case.get("case_number"):
        identifiers.append({"system": t.CASE_NUMBER, "value": case["case_number"]})
    episode = t.compact(
        {
            "resourceType": "EpisodeOfCare",
            "extension": extensions,
            "identifier": identifiers,
            "status": t.EPISODE_STATUS.get(status) if status else None,
            "_status": None if status else _unknown(),
            "type": [t.concept(t.WORKFLOW_STAGE, case["workflow_stage"])]
            if case.get("workflow_stage")
            else None,
            "patient": dict(subject),
            "managingOrganization": t.identified("Organization", t.AGENCY, owner["agency_id"])
            if owner.get("agency_id")
            else None,
            "period": period,
            "careManager": t.identified("Practitioner", t.PERSON, owner["caseworker_id"])
            if owner.get("caseworker_id")
            else None,
        }
    )
    # The episode stands for the record but for /child and the items of /related_persons and
    # /placements (each patched on its own resource).
    read_case, read_closure = read_episode(episode, [])
    wanted = {key: value for key, value in data.items() if key != "child"}
    read = t.compact(
        {
            "case": read_case,
            "related_persons": data.get("related_persons"),
            "placements": data.get("placements"),
            "closure": read_closure,
        }
    )
    return add_patch(episode, wanted, read)


def _unknown() -> dict[str, Any]:
    """The companion of a required element whose value the document does not give."""
    return {"extension": [t.extension(t.DATA_ABSENT_REASON, "Code", "unknown")]}


def _agency_reference(agency: Mapping[str, Any]) -> dict[str, Any] | None:
    """An ``agency_ref`` as a Reference: a hub agency by identifier, else a name."""
    if agency.get("agency_id"):
        return t.identified("Organization", t.AGENCY, agency["agency_id"])
    if agency.get("name"):
        return {"display": agency["name"]}
    return None


def _encounter(
    placement: Mapping[str, Any],
    subject: Mapping[str, Any],
    episode: Mapping[str, Any],
    person_urls: Mapping[str, str],
) -> dict[str, Any]:
    provider = _agency_reference(placement.get("operator") or {})
    caregiver = person_urls.get(placement.get("caregiver_person_ref") or "")
    atd = placement.get("alternative_to_detention")
    return t.compact(
        {
            "resourceType": "Encounter",
            "extension": [t.extension(t.ALTERNATIVE_TO_DETENTION, "Boolean", atd)]
            if atd is not None
            else None,
            "status": "completed" if placement.get("end_date") else "in-progress",
            "type": [t.concept(t.PLACEMENT_TYPE, placement["type"])],
            "subject": dict(subject),
            "episodeOfCare": [dict(episode)],
            "participant": [{"actor": {"reference": caregiver}}] if caregiver else None,
            "actualPeriod": t.compact(
                {"start": placement.get("start_date"), "end": placement.get("end_date")}
            ),
            "reason": [{"value": [{"concept": t.concept(t.PLACEMENT_REASON, placement["reason"])}]}]
            if placement.get("reason")
            else None,
            "location": [{"location": {"display": placement["facility_name"]}}]
            if placement.get("facility_name")
            else None,
            "serviceProvider": provider,
        }
    )
