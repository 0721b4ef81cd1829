"""The fhir adapter: records of two agencies with one local id, partial dates, which name and
identifier type is read, entries nested too deep, an unknown case status, where problems are
said, and the smaller mappings (gender other, relationship text, estimated age, contained
relatives, date-only consent periods, given names)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from fhir.resources.bundle import Bundle as BundleR5
from fhir.resources.episodeofcare import EpisodeOfCare

from adapters import fhir_terms as t
from adapters.base import Item
from adapters.fhir import FhirAdapter
from adapters.json_array import ArrayReader, JsonStreamError

CURP_SYSTEM = "urn:oid:2.16.840.1.113883.4.629"
CURP = "PEGL120512MNESRC02"
PATCH = t.extension_url("case-record-patch")


def case(
    local_id: str,
    child_id: str | None = None,
    owner: str | None = None,
    given: str = "Ana",
    relative: str = "madre",
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "case": {"status": "open", **({"owner": {"agency_id": owner}} if owner else {})},
        "child": {
            "names": {"given_names": given, "first_surname": "López"},
            "date_of_birth": "2012-05-12",
            "nationality": ["HN"],
        },
        "related_persons": [{"person_ref": relative, "relationship": "mother"}],
        "placements": [{"type": "dif_cas", "start_date": "2024-03-01"}],
    }
    document = {"schema": "case-record/1", "local_id": local_id, "data": data}
    if child_id:
        document["child_id"] = child_id
    return document


def encoded(documents: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    out = io.BytesIO()
    FhirAdapter(**options).encode(documents, out)
    bundle: dict[str, Any] = json.loads(out.getvalue())
    return bundle


def decode(bundle: dict[str, Any] | bytes, **options: Any) -> list[Item]:
    raw = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    return list(FhirAdapter(**options).decode(io.BytesIO(raw)))


def by_position(items: list[Item]) -> dict[str, Item]:
    return {item.position: item for item in items}


def bundle_of(*resources: dict[str, Any], urls: list[str | None] | None = None) -> dict[str, Any]:
    entries = []
    for index, resource in enumerate(resources):
        entry: dict[str, Any] = {"resource": resource}
        url = urls[index] if urls else f"urn:uuid:00000000-0000-4000-8000-{index:012d}"
        if url:
            entry["fullUrl"] = url
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def patient(local_id: str = "L-1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": t.LOCAL_ID, "value": local_id}],
        "name": [{"use": "official", "given": ["Ana"], "family": "López"}],
        "birthDate": "2012-05-12",
        "extension": [
            {
                "url": t.NATIONALITY,
                "extension": [{"url": "code", "valueCodeableConcept": t.concept(t.ISO_3166, "HN")}],
            }
        ],
        **extra,
    }


def encounter(subject: dict[str, Any], **period: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "in-progress",
        "type": [t.concept(t.PLACEMENT_TYPE, "dif_cas")],
        "subject": subject,
        "actualPeriod": {"start": "2024-03-01", **period},
    }


def episode(subject: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "EpisodeOfCare", "status": "active", "patient": subject, **extra}


def related(subject: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "id": "rp",
        "patient": subject,
        "relationship": [t.concept(t.V3_ROLE, "MTH")],
        **extra,
    }


def document_of(item: Item) -> dict[str, Any]:
    assert item.ok, item.problems
    assert item.document is not None
    data: dict[str, Any] = item.document["data"]
    return data


def texts(item: Item) -> str:
    return " | ".join(f"{p.pointer} {p.es} {p.en}" for p in item.problems)


def warned(item: Item) -> str:
    return " | ".join(f"{p.pointer} {p.es} {p.en}" for p in getattr(item, "warnings", ()))


# -- 1. two agencies, one local id -------------------------------------------------------


def test_two_agencies_records_with_one_local_id_keep_their_own_parts() -> None:
    own = case("EXP-1", "nna_aaaaaaaaaaaaaaaaaaaa", "mx.chp.dif", "Ana", "madre")
    # Another agency's record, its owner withheld from the reader.
    other = case("EXP-1", "nna_bbbbbbbbbbbbbbbbbbbb", None, "Yénifer", "tio")
    bundle = encoded([own, other], bundle_type="transaction")
    BundleR5.model_validate(bundle)
    urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(urls) == len(set(urls))
    requests = [entry["request"]["url"] for entry in bundle["entry"]]
    assert len(requests) == len(set(requests)), requests
    assert requests[0] == (
        "Patient?identifier=urn:puente:record-key%7Cmx.chp.dif/nna_aaaaaaaaaaaaaaaaaaaa/EXP-1"
    )

    cases = [item for item in decode(bundle) if item.document]
    assert len(cases) == 2
    read = {document_of(item)["child"]["names"]["given_names"]: item for item in cases}
    for given, ref in (("Ana", "madre"), ("Yénifer", "tio")):
        data = document_of(read[given])
        assert [p["person_ref"] for p in data["related_persons"]] == [ref]
        assert len(data["placements"]) == 1
        assert read[given].local_id == "EXP-1"


def test_records_the_documents_do_not_tell_apart_are_numbered_in_the_bundle() -> None:
    first, second = (
        case("EXP-1", "nna_aaaaaaaaaaaaaaaaaaaa"),
        case("EXP-1", "nna_aaaaaaaaaaaaaaaaaaaa"),
    )
    second["data"]["child"]["names"]["given_names"] = "Otra"
    bundle = encoded([first, second], bundle_type="transaction")
    requests = [entry["request"]["url"] for entry in bundle["entry"]]
    assert len(requests) == len(set(requests))
    assert requests[len(requests) // 2].endswith("/nna_aaaaaaaaaaaaaaaaaaaa/EXP-1%232")
    names = {document_of(i)["child"]["names"]["given_names"] for i in decode(bundle) if i.document}
    assert names == {"Ana", "Otra"}


def test_two_patients_under_one_full_url_are_rejected_with_their_parts() -> None:
    shared = "urn:uuid:11111111-1111-4111-8111-111111111111"
    bundle = bundle_of(
        patient("A-1"),
        patient("B-1"),
        related({"reference": shared}),
        patient("C-1"),
        related({"reference": "urn:uuid:third"}),
        urls=[shared, shared, None, "urn:uuid:third", None],
    )
    items = by_position(decode(bundle))
    for position, other in (("entry[0]", "entry[1]"), ("entry[1]", "entry[0]")):
        assert not items[position].ok
        said = texts(items[position])
        assert f"también el del Patient de {other}" in said and f"at {other}" in said
    assert not items["entry[2]"].ok
    assert "entry[0], entry[1]" in texts(items["entry[2]"])
    # The rest is imported.
    assert document_of(items["entry[3]"])["related_persons"][0]["relationship"] == "mother"


def test_a_reference_by_an_identifier_two_patients_carry_joins_neither() -> None:
    shared = {"identifier": {"system": t.LOCAL_ID, "value": "X-1"}}
    bundle = bundle_of(patient("X-1"), patient("X-1", id="dos"), encounter(shared))
    items = by_position(decode(bundle))
    assert not items["entry[2]"].ok
    said = texts(items["entry[2]"])
    assert "más de un Patient (entry[0], entry[1])" in said
    assert "more than one Patient in this Bundle (entry[0], entry[1])" in said
    assert "placements" not in document_of(items["entry[0]"])
    # A literal reference decides over the identifier.
    literal = {"reference": "Patient/dos", **shared}
    items = by_position(
        decode(bundle_of(patient("X-1"), patient("X-1", id="dos"), encounter(literal)))
    )
    assert "placements" not in document_of(items["entry[0]"])
    assert len(document_of(items["entry[1]"])["placements"]) == 1


# -- 2. partial dates --------------------------------------------------------------------


def test_a_partial_date_where_a_full_one_is_needed_is_rejected_naming_entry_and_element() -> None:
    subject = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    bundle = bundle_of(
        patient(),
        encounter(subject, end="2024-02"),
        episode(subject, period={"start": "2024"}),
    )
    [item] = decode(bundle)
    assert not item.ok
    said = texts(item)
    assert 'entry[1]: Encounter.actualPeriod.end = "2024-02": needs a full date' in said
    assert (
        "entry[1]: Encounter.actualPeriod.end = «2024-02»: se necesita una fecha completa" in said
    )
    assert 'entry[2]: EpisodeOfCare.period.start = "2024": needs a full date' in said
    assert "required" not in said


# -- 3. names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "given"),
    [
        (
            [{"use": "old", "given": ["Vieja"]}, {"use": "official", "given": ["Oficial"]}],
            "Oficial",
        ),
        ([{"use": "old", "given": ["Vieja"]}, {"use": "usual", "given": ["Usual"]}], "Usual"),
        ([{"use": "temp", "given": ["Temporal"]}, {"given": ["Sin uso"]}], "Sin uso"),
        (
            [{"use": "usual", "given": ["Usual"]}, {"use": "official", "given": ["Oficial"]}],
            "Oficial",
        ),
        ([{"use": "old", "given": ["Vieja"]}, {"use": "temp", "given": ["Temporal"]}], "Temporal"),
    ],
)
def test_the_best_name_is_read_never_an_old_one(names: list[Any], given: str) -> None:
    [item] = decode(bundle_of(patient(name=names)))
    assert document_of(item)["child"]["names"]["given_names"] == given


def test_an_old_name_alone_gives_no_names() -> None:
    old = [{"use": "old", "given": ["Vieja"]}, {"use": "nickname", "text": "Anita"}]
    [item] = decode(bundle_of(patient(name=old)))
    child = document_of(item)["child"]
    assert "names" not in child and child["alias"] == "Anita"


# -- 4, 5. identifiers -------------------------------------------------------------------


def test_a_curp_is_known_by_renapos_system_and_written_with_it() -> None:
    identifiers = [
        {"system": t.LOCAL_ID, "value": "L-1"},
        {"system": CURP_SYSTEM, "value": CURP},
    ]
    [item] = decode(bundle_of(patient(identifier=identifiers)))
    assert document_of(item)["child"]["identifiers"] == [{"type": "curp", "value": CURP}]
    assert not warned(item)

    exported = encoded([{"schema": "case-record/1", "local_id": "L-1", "data": document_of(item)}])
    written = exported["entry"][0]["resource"]["identifier"]
    assert {"system": CURP_SYSTEM, "type": t.concept(t.IDENTIFIER_TYPE, "curp"), "value": CURP} in (
        written
    )
    [again] = decode(exported)
    assert document_of(again) == document_of(item)


def test_an_identifier_of_unknown_kind_is_other_with_a_warning() -> None:
    identifiers = [{"system": t.LOCAL_ID, "value": "L-1"}, {"system": "urn:x", "value": "Z9"}]
    [item] = decode(bundle_of(patient(identifier=identifiers)))
    assert document_of(item)["child"]["identifiers"] == [{"type": "other", "value": "Z9"}]
    assert "Z9" in warned(item) and "stored as 'other'" in warned(item)


def test_the_identifier_taken_as_local_id_stays_the_childs() -> None:
    identifiers = [{"system": CURP_SYSTEM, "value": CURP}]
    [item] = decode(bundle_of(patient(identifier=identifiers)), local_id_system=CURP_SYSTEM)
    assert item.local_id == CURP
    assert document_of(item)["child"]["identifiers"] == [{"type": "curp", "value": CURP}]


# -- 6. nested too deep ------------------------------------------------------------------


def test_an_entry_nested_too_deep_is_rejected_alone() -> None:
    deep = "[" * 20000 + '"x"' + "]" * 20000
    good = json.dumps({"resource": patient()})
    raw = f'{{"resourceType":"Bundle","type":"collection","entry":[{{"resource":{deep}}},{good}]}}'
    items = by_position(decode(raw.encode()))
    assert not items["entry[0]"].ok
    said = texts(items["entry[0]"])
    assert "nested too deep" in said and "anidado demasiado profundo" in said
    assert items["entry[1]"].ok
    # The rejects file carries the entry as it came.
    out = io.BytesIO()
    FhirAdapter().write_rejects([items["entry[0]"]], out)
    assert deep in out.getvalue().decode()


def test_a_reader_not_asking_for_too_deep_elements_gets_a_json_error() -> None:
    raw = '{"data":[' + "[" * 20000 + "]" * 20000 + "]}"
    with pytest.raises(JsonStreamError) as raised:
        list(ArrayReader(io.BytesIO(raw.encode()), "data"))
    assert "nested too deep" in raised.value.en


def test_a_patch_nested_too_deep_rejects_its_case() -> None:
    deep = '{"a":' * 3000 + "1" + "}" * 3000
    [item] = decode(bundle_of(patient(extension=[{"url": PATCH, "valueString": deep}])))
    assert not item.ok and "nested too deep" in texts(item)


# -- 7. unknown case status --------------------------------------------------------------


def test_a_withheld_case_status_is_written_as_unknown_not_open() -> None:
    document = case("EXP-9", "nna_aaaaaaaaaaaaaaaaaaaa")
    del document["data"]["case"]["status"]
    bundle = encoded([document])
    [episode_entry] = [
        e for e in bundle["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare"
    ]
    resource = episode_entry["resource"]
    EpisodeOfCare.model_validate(resource)
    assert "status" not in resource
    assert resource["_status"]["extension"] == [
        {"url": t.DATA_ABSENT_REASON, "valueCode": "unknown"}
    ]
    assert t.CASE_STATUS_EXT not in json.dumps(resource)
    [item] = [i for i in decode(bundle) if i.position == "entry[0]"]
    # Read back: no status claimed (the schema then says it is missing).
    assert "/case" in texts(item) and "status" in texts(item)


# -- 8. where problems are said ----------------------------------------------------------


def test_a_placement_problem_names_its_encounter() -> None:
    subject = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    wrong = encounter(subject)
    wrong["reason"] = [{"value": [{"concept": t.concept(t.PLACEMENT_REASON, "no-such-reason")}]}]
    [item] = decode(bundle_of(patient(), wrong))
    [problem] = item.problems
    assert problem.pointer.startswith("/placements/0")
    assert problem.es.startswith("entry[1] (Encounter): ")
    assert problem.en.startswith("entry[1] (Encounter): ")


def test_an_invalid_r4_consent_is_said_in_spanish_of_our_own() -> None:
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"text": "x"},
        "category": [{"text": "x"}],
        "patient": {"reference": "Patient/1"},
        "provision": [{"type": "permit"}],
    }
    [item] = decode(bundle_of(consent), version="R4")
    [problem] = item.problems
    assert "Value is expected" not in problem.es and "<class" not in problem.es
    assert "debe ser un objeto ConsentProvision, no una lista" in problem.es
    assert "must be a ConsentProvision object, not a list" in problem.en


def test_a_related_person_naming_itself_is_told_so() -> None:
    itself = related({"reference": "RelatedPerson/rp"})
    items = by_position(decode(bundle_of(patient(), itself)))
    said = texts(items["entry[1]"])
    assert "refers to this RelatedPerson itself" in said and "no a un Patient" in said
    assert "not in the Bundle" not in said


# -- 9. smaller mappings -----------------------------------------------------------------


def test_gender_other_is_unknown_with_a_warning_and_intersex_still_round_trips() -> None:
    [item] = decode(bundle_of(patient(gender="other")))
    assert document_of(item)["child"]["sex"] == "unknown"
    assert "'other' has no equivalent" in warned(item)
    document = case("EXP-2")
    document["data"]["child"]["sex"] = "intersex"
    [again] = [i for i in decode(encoded([document])) if i.document]
    assert document_of(again)["child"]["sex"] == "intersex"
    assert not warned(again)


def test_a_relationship_given_only_as_text_is_other_with_a_warning() -> None:
    subject = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    person = related(subject, relationship=[{"text": "madrina"}])
    [item] = decode(bundle_of(patient(), person))
    assert document_of(item)["related_persons"][0]["relationship"] == "other"
    assert "madrina" in warned(item) and "entry[1]" in warned(item)


@pytest.mark.parametrize(
    ("value", "years"),
    [
        ({"valueDecimal": 14.5}, 14),
        ({"valueAge": {"value": 14, "code": "a", "system": "http://unitsofmeasure.org"}}, 14),
        ({"valueAge": {"value": 30, "code": "mo", "system": "http://unitsofmeasure.org"}}, 2),
    ],
)
def test_an_estimated_age_as_decimal_or_age_is_read(value: dict[str, Any], years: int) -> None:
    extensions = [*patient()["extension"], {"url": t.ESTIMATED_AGE, **value}]
    [item] = decode(bundle_of(patient(birthDate=None, extension=extensions)))
    assert document_of(item)["child"]["age_estimation"] == {"estimated_age_years": years}


def test_contained_related_persons_are_relatives_of_the_case() -> None:
    mother = {
        "resourceType": "RelatedPerson",
        "id": "m",
        "patient": {"reference": "#"},
        "relationship": [t.concept(t.V3_ROLE, "MTH")],
    }
    [item] = decode(bundle_of(patient(contained=[mother])))
    assert document_of(item)["related_persons"] == [{"person_ref": "m", "relationship": "mother"}]


def test_a_consent_period_of_dates_means_whole_days() -> None:
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "identifier": [{"system": t.LOCAL_ID, "value": "C-1"}],
        "subject": t.child_reference("nna_aaaaaaaaaaaaaaaaaaaa"),
        "grantor": [
            {
                **t.child_reference("nna_aaaaaaaaaaaaaaaaaaaa"),
                "extension": [
                    t.extension(t.GRANTOR_TYPE_EXT, "Coding", t.coding(t.GRANTOR_TYPE, "child"))
                ],
            }
        ],
        "period": {"start": "2024-03-01", "end": "2024-12-31"},
        "decision": "permit",
        "provision": [
            {
                "action": [t.concept(t.ACTION, "read")],
                "purpose": [t.coding(t.PURPOSE, "case_management")],
                "actor": [{"reference": t.identified("Organization", t.AGENCY, "mx.chp.dif")}],
            }
        ],
    }
    [item] = decode(bundle_of(consent))
    assert item.document is not None, texts(item)
    assert item.document["data"]["period"] == {
        "start": "2024-03-01T00:00:00-06:00",
        "end": "2024-12-31T23:59:59-06:00",
    }


def test_given_names_are_written_as_the_record_holds_them() -> None:
    bundle = encoded([case("EXP-3", given="María de los Ángeles")])
    [name] = bundle["entry"][0]["resource"]["name"]
    assert name["given"] == ["María de los Ángeles"]
    [item] = [i for i in decode(bundle) if i.document]
    assert document_of(item)["child"]["names"]["given_names"] == "María de los Ángeles"
