"""The fhir adapter reading Bundles: R5 and R4, grouping by Patient, consents, bad entries.

Fixtures are fictitious Bundles written for these tests: a DIF export (R5 collection), a
state FHIR server's search answer (R4 searchset, Patients first, included resources after)
and a Bundle with faults.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fhir.resources.bundle import Bundle as BundleR5
from fhir.resources.R4B.bundle import Bundle as BundleR4

from adapters.base import Adapter, FileProblem, Item, RejectsWriter
from adapters.errors import AdapterError
from adapters.fhir import FhirAdapter
from schemas.envelope import validate_envelope

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
R5 = FIXTURES / "bundle_r5_collection.json"
R4 = FIXTURES / "bundle_r4_searchset.json"
BAD = FIXTURES / "bundle_bad_entries.json"
R4_LOCAL_IDS = "https://fhir.dif-bc.example/sid/expediente"


def decode(adapter: FhirAdapter, data: bytes | Path) -> dict[str, Item]:
    raw = data.read_bytes() if isinstance(data, Path) else data
    items = list(adapter.decode(io.BytesIO(raw)))
    positions = [item.position for item in items]
    assert len(set(positions)) == len(positions), positions
    return {item.position: item for item in items}


def pointers(item: Item) -> set[str]:
    return {problem.pointer for problem in item.problems}


def test_is_an_adapter_that_writes_rejects() -> None:
    adapter = FhirAdapter()
    assert isinstance(adapter, Adapter)
    assert isinstance(adapter, RejectsWriter)
    assert adapter.name == "fhir"


def test_fixtures_are_valid_fhir_of_their_version() -> None:
    BundleR5.model_validate_json(R5.read_bytes())
    BundleR4.model_validate_json(R4.read_bytes())


def test_r5_bundle_gives_one_case_per_patient_and_one_consent() -> None:
    items = decode(FhirAdapter(), R5)
    assert sorted(items) == ["entry[0]", "entry[1]", "entry[7]"]
    for item in items.values():
        assert item.ok, item.problems
        assert item.document is not None
        assert validate_envelope(item.document) == []

    case = items["entry[0]"].document
    assert case is not None
    assert (case["schema"], case["local_id"]) == ("case-record/1", "DIF-CHP-TAP-2024-0317")
    assert case["child_id"] == "ch-7f3a9d2e"
    data = case["data"]
    assert data["case"] == {
        "status": "open",
        "case_number": "DIF-CHP-TAP-2024-0317",
        "opened_on": "2024-03-11",
        "workflow_stage": "implementation",
        "owner": {"agency_id": "mx.chp.dif", "caseworker_id": "cw-chp-0142"},
    }
    child = data["child"]
    # The two surnames come from the HL7 fathers-family / mothers-family extensions.
    assert child["names"] == {
        "given_names": "Kevin Josué",
        "first_surname": "Ejemplo",
        "second_surname": "Ficticio",
    }
    assert child["nationality"] == ["HN"]
    assert (child["birth_country"], child["birth_place"]) == ("HN", "San Pedro Sula, Cortés")
    assert child["identifiers"] == [
        {"type": "comar_case", "value": "COMAR-TAP-2024-011873", "issuer_agency": "mx.fed.comar"}
    ]
    assert child["unaccompanied_status"] == "unaccompanied"
    assert child["current_location"]["address"]["municipality"] == "07089"
    [mother] = data["related_persons"]
    assert mother["person_ref"] == "rp1"
    assert (mother["relationship"], mother["custody"]) == ("mother", "patria_potestad")
    assert data["placements"] == [
        {
            "type": "dif_cas",
            "facility_name": "CAS Tapachula (ficticio)",
            "operator": {"agency_id": "mx.chp.tapachula.dif"},
            "start_date": "2024-03-11",
            "reason": "inm_channelling",
        }
    ]


def test_references_by_type_and_id_group_and_name_the_caregiver() -> None:
    case = decode(FhirAdapter(), R5)["entry[1]"].document
    assert case is not None
    data = case["data"]
    assert "child_id" not in case  # the Patient has no urn:puente:child identifier
    assert data["case"] == {"status": "open"}  # no EpisodeOfCare
    [mother] = data["related_persons"]
    assert mother["relationship"] == "mother"  # from v3 RoleCode MTH alone
    assert mother["date_of_birth"] == {"date": "1994", "estimated": True}
    assert data["child"]["primary_language"] == "mam"
    assert data["placements"][0]["caregiver_person_ref"] == "madre"


def test_consent_reads_the_hub_shape() -> None:
    consent = decode(FhirAdapter(), R5)["entry[7]"].document
    assert consent is not None
    assert (consent["schema"], consent["local_id"]) == ("consent/1", "cons-chp-2024-0211")
    assert consent["data"] == {
        "id": "cons-chp-2024-0211",
        "status": "active",
        "child_id": "ch-7f3a9d2e",  # from the Patient it refers to
        "grantor": {
            "type": "procuraduria",
            "representation": "suplencia",
            "agency_id": "mx.chp.procuraduria",
            "person_id": "pp-chp-021",
        },
        "grantee": [{"agency_id": "mx.fed.comar"}],
        "decision": "deny",
        "period": {"start": "2024-03-14T00:00:00-06:00", "end": "2025-03-14T00:00:00-06:00"},
        "policy_basis": [
            {"code": "lgdnna_art_106_suplencia", "reference": "LGDNNA art. 106 (ficticio)"}
        ],
        "provision": [
            {
                "decision": "permit",
                "actor": [{"agency_id": "mx.fed.comar"}],
                "action": ["read"],
                "purpose": ["asylum_procedure"],
                "data_category": ["identity", "legal_status"],
            }
        ],
    }


def test_r4_search_answer_is_read_with_r4_models() -> None:
    items = decode(FhirAdapter(local_id_system=R4_LOCAL_IDS), R4)
    assert sorted(items) == ["entry[0]", "entry[4]", "entry[5]"]

    case = items["entry[0]"]
    assert case.ok, case.problems
    assert case.local_id == "DIF-BC-TIJ-2023-1102"  # the server's own identifier system
    assert case.document is not None
    data = case.document["data"]
    # The identifier taken as the local id stays the child's too (an agency's own number).
    assert data["child"]["identifiers"] == [
        {"type": "agency_local", "value": "DIF-BC-TIJ-2023-1102"},
        {"type": "unhcr_individual", "value": "MEX-23C045120"},
    ]
    [father] = data["related_persons"]
    assert (father["person_ref"], father["relationship"]) == ("tij-1102-padre", "father")
    # R4 Encounter: period, participant.individual.
    assert data["placements"] == [
        {
            "type": "open_door_shelter",
            "alternative_to_detention": True,
            "facility_name": "Casa Ejemplo de Familias Migrantes",
            "operator": {"name": "Casa Ejemplo de Familias Migrantes A.C."},
            "caregiver_person_ref": "tij-1102-padre",
            "start_date": "2023-11-03",
        }
    ]
    # A clinical Encounter is not a placement: left out, said in a warning.
    [warning] = case.warnings  # type: ignore[attr-defined]
    assert warning.pointer == "resource:Encounter"
    assert "entry[3]" in warning.en and "entry[3]" in warning.es

    observation = items["entry[4]"]
    assert not observation.ok
    assert pointers(observation) == {"resource:Observation"}

    consent = items["entry[5]"].document
    assert consent is not None
    assert consent["data"] == {
        "status": "active",
        "child_id": "ch-5b8e21c0",
        "grantor": {"type": "parent", "related_person_ref": "tij-1102-padre"},
        "decision": "permit",
        "period": {"start": "2023-11-03T00:00:00-07:00"},
        "grantee": [{"agency_id": "mx.bc.salud"}],
        "policy_basis": [{"code": "lgdnna_parental_authority"}],
        "provision": [{"decision": "deny", "purpose": ["statistics"]}],
    }


def test_forcing_r5_refuses_r4_resources_with_their_fhir_paths() -> None:
    items = decode(FhirAdapter(version="R5", local_id_system=R4_LOCAL_IDS), R4)
    consent = items["entry[5]"]
    assert not consent.ok
    assert "resource:Consent.provision" in pointers(consent)
    assert all("FHIR R5" in p.en and "FHIR R5" in p.es for p in consent.problems)
    # The R4 Encounter (class as a Coding) fails R5 too: its case waits for it, whole.
    assert "entry[2]" not in items
    assert not items["entry[0]"].ok
    assert any(
        p.pointer.startswith("entry[2].resource:Encounter") for p in items["entry[0]"].problems
    )


def test_a_fault_is_reported_against_the_version_the_resource_is_closest_to() -> None:
    bundle = json.loads(R4.read_bytes())
    bundle["entry"][2]["resource"]["period"]["start"] = "2023-13-03"  # an R4 Encounter
    items = decode(FhirAdapter(local_id_system=R4_LOCAL_IDS), json.dumps(bundle).encode())
    # A faulty part of a case holds the case back, whole: stored without its placement it
    # would lose the one the hub has; the rejects file then carries the Patient and its parts.
    case = items["entry[0]"]
    assert not case.ok and "entry[2]" not in items
    problem = case.problems[0]
    assert problem.pointer == "entry[2].resource:Encounter.period.start"
    assert "FHIR R4" in problem.en and "FHIR R4" in problem.es
    # pydantic says it in English; the office reads it in Spanish too.
    assert problem.es == (
        "no es válido en FHIR R4: debe ser una fecha y hora FHIR (AAAA-MM-DD, o con hora y zona "
        "horaria)"
    )
    assert problem.en == (
        "not valid FHIR R4: must be a FHIR dateTime (YYYY-MM-DD, or with a time and time zone)"
    )
    kinds = [entry["resource"]["resourceType"] for entry in case.source]
    assert kinds == ["Patient", "RelatedPerson", "Encounter", "Encounter"]  # the broken one too


@pytest.mark.parametrize(("fixture", "version"), [(R4, "R4"), (R5, "R5")], ids=["R4", "R5"])
def test_a_fault_names_the_version_of_the_bundle_in_plain_words(
    fixture: Path, version: str
) -> None:
    # QA: in an R4 Bundle, a Patient born on 2015-02-31 was "not valid FHIR R5: Input should be
    # a valid date or datetime, day value is outside expected range". The date is wrong in
    # both versions; the Bundle is R4 (its Encounter has R4's class), so it is said of R4.
    bundle = json.loads(fixture.read_bytes())
    bundle["entry"].append(
        {"resource": {"resourceType": "Patient", "id": "c3", "birthDate": "2015-02-31"}}
    )
    items = decode(FhirAdapter(local_id_system=R4_LOCAL_IDS), json.dumps(bundle).encode())
    [problem] = items[f"entry[{len(bundle['entry']) - 1}]"].problems
    assert problem.pointer == "resource:Patient.birthDate"
    assert problem.en == (
        f"not valid FHIR {version}: must be a valid date (that day does not exist in that month)"
    )
    assert problem.es == (
        f"no es válido en FHIR {version}: debe ser una fecha válida (ese día no existe en ese mes)"
    )


def test_bad_entries_are_reported_where_they_are_and_the_rest_is_imported() -> None:
    items = decode(FhirAdapter(), BAD)
    assert pointers(items["entry[1]"]) == {"resource:Observation"}
    assert pointers(items["entry[4]"]) == {"resource:Organization"}
    assert pointers(items["entry[2]"]) == {"resource:Patient.birthDate"}
    orphan = items["entry[3]"]
    assert pointers(orphan) == {"resource:RelatedPerson"}
    assert "urn:uuid:11111111-aaaa-4bbb-8ccc-000000000099" in orphan.problems[0].en
    # An unknown relationship code rejects the case, naming the entry it is in.
    case = items["entry[0]"]
    assert "resource:RelatedPerson.relationship" in pointers(case)
    assert any("entry[6]" in p.en and "['C']" in p.en for p in case.problems)
    # A consent for a child without a hub id waits until the case has one.
    consent = items["entry[5]"]
    assert pointers(consent) == {"/child_id"}
    assert consent.local_id == "nl-0211-tutela"
    assert items["entry[7]"].ok
    for item in items.values():
        for problem in item.problems:
            assert problem.es and problem.en and problem.es != problem.en
        assert item.ok or item.source, item.position  # a rejects file can be written


def test_resources_may_come_before_their_patient() -> None:
    bundle = json.loads(R5.read_bytes())
    bundle["entry"].reverse()
    items = decode(FhirAdapter(), json.dumps(bundle).encode())
    # Same documents at the mirrored positions.
    original = decode(FhirAdapter(), R5)
    assert items["entry[7]"].document == original["entry[0]"].document
    assert items["entry[6]"].document == original["entry[1]"].document
    assert items["entry[0]"].document == original["entry[7]"].document


def test_a_cut_bundle_reports_the_break_and_holds_back_every_case() -> None:
    raw = R5.read_bytes()
    cut = raw[: raw.index(b'"resourceType": "Encounter"')]  # inside entry[5]
    items = decode(FhirAdapter(), cut)
    [problem] = items["entry[5]"].problems
    assert "invalid JSON" in problem.en and "JSON inválido" in problem.es
    # A Bundle has no order: any case may have had resources after the break.
    case = items["entry[0]"]
    assert not case.ok and case.document is None
    assert case.problems[0].pointer == "resource:Bundle"
    assert "the Bundle breaks at entry[5]" in case.problems[0].en


@pytest.mark.parametrize(
    ("raw", "position", "english"),
    [
        (b'{"resourceType": "Patient", "id": "x"}', "resourceType", "expected a Bundle"),
        (
            b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Pat',
            "entry[0]",
            "invalid JSON",
        ),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "x"}]}',
            "entry[0]",
            "no 'resource'",
        ),
    ],
)
def test_inputs_that_are_not_bundles(raw: bytes, position: str, english: str) -> None:
    items = decode(FhirAdapter(), raw)
    assert position in items
    assert any(english in p.en for p in items[position].problems)


def _bundle(*resources: object) -> bytes:
    entries = [
        {"resource": r} if isinstance(r, dict) and "resourceType" in r else r for r in resources
    ]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def test_a_gender_outside_the_fhir_codes_rejects_the_case() -> None:
    patient = {"resourceType": "Patient", "id": "p3", "gender": "alien", "birthDate": "2012-01-02"}
    related = {
        "resourceType": "RelatedPerson",
        "id": "r1",
        "patient": {"reference": "Patient/ok"},
        "gender": "femenino",
    }
    good = {"resourceType": "Patient", "id": "ok", "gender": "female", "birthDate": "2012-01-02"}
    items = decode(FhirAdapter(), _bundle(patient, good, related))
    assert not items["entry[0]"].ok
    [problem] = [p for p in items["entry[0]"].problems if p.pointer.endswith(".gender")]
    assert problem.pointer == "resource:Patient.gender"
    assert problem.en == (
        "entry[0]: unknown code 'alien' in Patient.gender; accepted: female, male, other, unknown"
    )
    assert "código desconocido «alien»" in problem.es
    # A related person's gender too: its case is rejected, naming the entry.
    assert any(
        p.pointer == "resource:RelatedPerson.gender" and "entry[2]" in p.en
        for p in items["entry[1]"].problems
    )


@pytest.mark.parametrize(
    ("entry", "english", "spanish"),
    [
        ({"resource": {"id": "x"}}, "the resource has no 'resourceType'",
         "no tiene «resourceType»"),
        ({"resource": "hola"}, "'resource' must be a FHIR resource (a JSON object), not a string",
         "no un texto"),
        ("hola", "the entry is not a JSON object but a string", "sino un texto"),
        ({"fullUrl": "x"}, "the entry has no 'resource'", "no tiene «resource»"),
    ],
)  # fmt: skip
def test_entries_that_are_no_resource_say_what_they_are(
    entry: object, english: str, spanish: str
) -> None:
    items = decode(FhirAdapter(), _bundle(entry))
    [problem] = items["entry[0]"].problems
    assert problem.en.startswith(english) and spanish in problem.es
    assert "None" not in problem.en + problem.es


def test_a_break_in_the_bundle_is_a_file_problem_written_with_the_rejects() -> None:
    patient = {"resourceType": "Patient", "id": "p", "gender": "alien", "birthDate": "2012-01-02"}
    raw = _bundle(patient, {"resourceType": "Observation"})[:-30]
    items = list(FhirAdapter().decode(io.BytesIO(raw)))
    breaks = [item for item in items if isinstance(item, FileProblem)]
    assert [item.position for item in breaks] == ["entry[1]"]
    assert "the entries before it (1) were read" in breaks[0].problems[0].en
    out = io.BytesIO()
    FhirAdapter().write_rejects([item for item in items if not item.ok], out)
    written = json.loads(out.getvalue())
    outcomes = [
        e["resource"]
        for e in written["entry"]
        if e["resource"]["resourceType"] == "OperationOutcome"
    ]
    assert [o["issue"][0]["diagnostics"].split(" ")[0] for o in outcomes] == [
        "entry[1]",
        "entry[0]",
    ]
    # The break alone writes no rejects file: puente import prints it.
    alone = io.BytesIO()
    FhirAdapter().write_rejects(breaks, alone)
    assert alone.getvalue() == b""


@pytest.mark.parametrize("raw", [b"", b"  "])
def test_an_empty_file_holds_no_resources(raw: bytes) -> None:
    assert list(FhirAdapter().decode(io.BytesIO(raw))) == []


def test_options_are_checked() -> None:
    with pytest.raises(AdapterError):
        FhirAdapter(version="STU3")
    with pytest.raises(AdapterError):
        FhirAdapter(bundle_type="batch")
