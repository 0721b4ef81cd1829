"""The primero adapter: Primero v2 case JSON ⇄ case-record/1.

Fixtures are fictitious cases written for these tests in the shape ``GET /api/v2/cases``
answers (field names of primeroIMS/primero ``db/configuration/forms/case/``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Adapter, FileProblem, Item, RejectsWriter
from adapters.errors import AdapterError, MappingError
from adapters.primero import PrimeroAdapter
from schemas.envelope import validate_envelope

FIXTURES = Path(__file__).parent / "fixtures" / "primero"
EXPORT = FIXTURES / "cases_export.json"
BAD = FIXTURES / "unknown_fields_bad_codes.json"
CODES = FIXTURES / "codes.yaml"


def decode(adapter: PrimeroAdapter, data: bytes | Path) -> list[Item]:
    raw = data.read_bytes() if isinstance(data, Path) else data
    return list(adapter.decode(io.BytesIO(raw)))


def encoded(adapter: PrimeroAdapter, documents: list[dict[str, Any]]) -> dict[str, Any]:
    out = io.BytesIO()
    adapter.encode(documents, out)
    value: dict[str, Any] = json.loads(out.getvalue())
    return value


@pytest.fixture(scope="module")
def adapter() -> PrimeroAdapter:
    return PrimeroAdapter(mapping=CODES)


@pytest.fixture(scope="module")
def export_items(adapter: PrimeroAdapter) -> list[Item]:
    return decode(adapter, EXPORT)


def by_position(items: list[Item]) -> dict[str, Item]:
    return {item.position: item for item in items}


def pointers(item: Item) -> set[str]:
    return {problem.pointer for problem in item.problems}


def test_is_an_adapter_that_writes_rejects(adapter: PrimeroAdapter) -> None:
    assert isinstance(adapter, Adapter)
    assert isinstance(adapter, RejectsWriter)
    assert adapter.name == "primero"


def test_every_case_of_the_export_becomes_a_valid_case_record(export_items: list[Item]) -> None:
    assert [item.position for item in export_items] == [f"data[{i}]" for i in range(5)]
    for item in export_items:
        assert item.ok, (item.position, item.problems)
        assert item.document is not None
        assert validate_envelope(item.document, allowed={"case-record"}) == []
        assert item.document["local_id"] == item.local_id
        assert not getattr(item, "warnings", ())


def test_honduran_adolescent_maps_identity_case_and_services(export_items: list[Item]) -> None:
    document = export_items[0].document
    assert document is not None
    assert document["local_id"] == "3f6c1d2e-8a41-4b7e-9c55-0d1e2f3a4b5c"
    data = document["data"]
    assert data["case"] == {
        "status": "open",
        "case_number": "DIF-CHP-TAP-2024-0317",
        "opened_on": "2024-03-11",
        "workflow_stage": "implementation",
        # owned_by_agency_id "dif-chiapas-tapachula" through the deployment's code table
        "owner": {"agency_id": "mx.chp.tapachula.dif", "caseworker_id": "cw.chp.0142"},
        "last_updated_at": "2024-04-02T18:30:05.120Z",
    }
    child = data["child"]
    assert child["names"] == {"given_names": "Kevin Josué", "first_surname": "Ejemplo"}
    assert child["date_of_birth"] == "2008-07-02"
    assert "age_estimation" not in child
    assert child["nationality"] == ["HN"]
    assert child["birth_country"] == "HN"
    assert child["languages"] == ["es"]
    assert child["unaccompanied_status"] == "unaccompanied"
    assert child["identifiers"] == [{"type": "unhcr_individual", "value": "MEX-24C011873"}]
    assert child["current_location"]["address"] == {
        "country": "MX",
        "state": "07",
        "municipality": "07089",
        "description": "Albergue temporal DIF, Tapachula (ficticio)",
    }
    assert data["protection_concerns"] == {
        "risk_level": "high",
        "urgent": False,
        "concerns": [
            {"code": "unaccompanied_or_separated"},
            {"code": "criminal_recruitment"},
            {"code": "other", "details": "Amenazas de una pandilla en su colonia (ficticio)."},
        ],
    }
    assert data["related_persons"] == [
        {
            "person_ref": "7a1e0c3b-2d44-4f61-8b2a-5c6d7e8f9a01",
            "relationship": "mother",
            "names": {"given_names": "Reina Isabel Ficticio"},
            "sex": "female",
            "nationality": ["HN"],
            "alive": "alive",
            "contact": {"phone": "+504 9000 0000"},
            "primary_caregiver": False,
        }
    ]
    assert data["placements"] == [
        {
            "type": "dif_cas",
            "operator": {"name": "Sistema DIF Tapachula (ficticio)"},
            "start_date": "2024-03-11",
        }
    ]
    assert data["referrals"] == [
        {
            "service_type": "legal_aid",
            "referred_to": {"name": "Clínica jurídica Ejemplo A.C."},
            "referred_on": "2024-03-12",
            "urgency": "routine",
            "status": "completed",
            "completed_on": "2024-03-20",
            "notes": "Acompañamiento en la solicitud de reconocimiento de la condición de "
            "refugiado.",
        }
    ]


def test_venezuelan_adolescent_transfer_estimated_age_and_placement_history(
    export_items: list[Item],
) -> None:
    document = export_items[2].document
    assert document is not None
    data = document["data"]
    assert data["case"]["status"] == "pending_transfer"  # open + transfer_status in_progress
    assert data["child"]["age_estimation"] == {"estimated_age_years": 16}
    assert "date_of_birth" not in data["child"]
    assert data["child"]["alias"] == "Yoyi"
    assert data["protection_concerns"]["urgent"] is True  # radio button "true"
    # Primero records no end date for a care arrangement, so none is made up (not even the
    # next arrangement's start); the aunt is the caregiver.
    assert data["placements"] == [
        {
            "type": "dif_cas",
            "operator": {"name": "Casa hogar Ejemplo (ficticia)"},
            "start_date": "2024-05-06",
        },
        {"type": "kinship_care", "caregiver_person_ref": "tia", "start_date": "2024-06-01"},
    ]
    aunt = data["related_persons"][0]
    assert (aunt["relationship"], aunt["sex"]) == ("aunt_uncle", "female")
    assert aunt["address"] == {"country": "MX", "state": "09", "municipality": "09015"}
    assert data["best_interest"] == {
        "assessments": [
            {
                "assessed_on": "2024-05-20",
                "recommendation": "family_reunification_mexico",
                "recommendation_details": "Reunificación con su tía en Ciudad de México.",
            }
        ]
    }


def test_closed_salvadoran_case_has_its_closure(export_items: list[Item]) -> None:
    document = export_items[4].document
    assert document is not None
    data = document["data"]
    assert data["case"]["status"] == "closed"
    assert data["case"]["workflow_stage"] == "closure"
    assert data["closure"] == {"closed_on": "2023-09-15", "reason": "assisted_return_completed"}
    assert data["related_persons"][0]["relationship"] == "grandparent"


def test_without_the_deployment_codes_an_unknown_agency_rejects_the_case() -> None:
    items = decode(PrimeroAdapter(), EXPORT)
    first = items[0]
    assert not first.ok
    assert pointers(first) == {"field:owned_by_agency_id"}
    assert "dif-chiapas-tapachula" in first.problems[0].en
    assert "dif-chiapas-tapachula" in first.problems[0].es
    # The other cases name hub agency ids and import as they are.
    assert all(item.ok for item in items[1:])


def test_unknown_fields_are_warnings_and_the_case_is_imported(adapter: PrimeroAdapter) -> None:
    first = decode(adapter, BAD)[0]
    assert first.ok
    assert first.document is not None
    warnings = first.warnings  # type: ignore[attr-defined]
    assert [w.pointer for w in warnings] == [
        "field:dif_chiapas_folio_estatal",
        "field:riesgo_pandillas",
        "field:family_details_section[0].relation_lugar_de_trabajo",
    ]
    assert all(w.es and w.en and w.es != w.en for w in warnings)
    assert "riesgo_pandillas" not in json.dumps(first.document)


def test_bad_codes_and_dates_are_reported_with_position_and_field(
    adapter: PrimeroAdapter,
) -> None:
    items = by_position(decode(adapter, BAD))
    second = items["data[1]"]
    assert not second.ok and second.document is None
    assert {
        "field:sex",
        "field:nationality",
        "field:date_of_birth",
        "field:care_arrangements_section[0].care_arrangements_type",
    } <= pointers(second)
    nationality = next(p for p in second.problems if p.pointer == "field:nationality")
    assert "narnia" in nationality.en and "narnia" in nationality.es
    date = next(p for p in second.problems if p.pointer == "field:date_of_birth")
    assert "31/02/2010" in date.en
    # The rejects file needs the original case and its id.
    assert second.local_id == "22222222-3333-4444-8555-666666666666"
    assert isinstance(second.source, dict) and second.source["sex"] == "hombre"

    assert pointers(items["data[2]"]) == {"field:id"}
    assert items["data[2]"].local_id is None

    # Schema failures point into the shared document.
    assert {"", "/child/age_estimation/estimated_age_years"} <= pointers(items["data[3]"])

    # A refusal to share is recorded in Primero: imported, with an action (not a warning:
    # nothing was left out) to record it in Puente as a deny consent.
    fifth = items["data[4]"]
    assert fifth.ok
    assert fifth.warnings == ()  # type: ignore[attr-defined]
    [action] = fifth.actions  # type: ignore[attr-defined]
    assert action.pointer == "field:disclosure_other_orgs"
    assert "consent with the decision 'deny'" in action.en and "left out" not in action.en
    assert "«denegar»" in action.es


@pytest.mark.parametrize("value", [False, "false"])
def test_consent_for_services_refused_is_an_action_too(value: Any) -> None:
    case = {**json.loads(EXPORT.read_bytes())["data"][1], "consent_for_services": value}
    [item] = PrimeroAdapter().decode(io.BytesIO(json.dumps({"data": [case]}).encode()))
    assert item.ok
    assert [a.pointer for a in item.actions] == ["field:consent_for_services"]  # type: ignore[attr-defined]
    assert "deny" in item.actions[0].en and "denegar" in item.actions[0].es  # type: ignore[attr-defined]


def test_every_problem_is_bilingual(adapter: PrimeroAdapter) -> None:
    for item in decode(adapter, BAD):
        for problem in item.problems:
            assert problem.es and problem.en and problem.es != problem.en


def covered_document() -> dict[str, Any]:
    """A case record that uses only what the Primero mapping carries both ways."""
    return {
        "schema": "case-record/1",
        "local_id": "b9d1e2f3-0a4b-4c5d-8e6f-7a8b9c0d1e2f",
        "data": {
            "case": {
                "status": "pending_transfer",
                "case_number": "DIF-OAX-2024-0051",
                "opened_on": "2024-04-08",
                "workflow_stage": "case_plan",
                "owner": {"agency_id": "mx.chp.tapachula.dif", "caseworker_id": "cw-oax-003"},
            },
            "child": {
                "names": {"given_names": "Brayan Alexis", "first_surname": "Ejemplo"},
                "alias": "Alex",
                "sex": "male",
                "age_estimation": {"estimated_age_years": 14},
                "nationality": ["GT", "MX"],
                "birth_country": "GT",
                "languages": ["quc", "es"],
                "ethnic_group": "K'iche'",
                "identifiers": [
                    {"type": "unhcr_case", "value": "MEX-24C000777"},
                    {"type": "passport", "value": "GT1234567"},
                ],
                "unaccompanied_status": "separated",
                "current_location": {
                    "address": {"country": "MX", "state": "20", "municipality": "20067"},
                    "contact": {"phone": "+52 951 000 0000"},
                },
            },
            "related_persons": [
                {
                    "person_ref": "hermana",
                    "relationship": "sibling",
                    "names": {"given_names": "Glenda"},
                    "sex": "female",
                    "date_of_birth": {"date": "2001", "estimated": True},
                    "nationality": ["GT"],
                    "alive": "alive",
                    "primary_caregiver": True,
                }
            ],
            "protection_concerns": {
                "risk_level": "critical",
                "urgent": True,
                "concerns": [{"code": "trafficking"}, {"code": "gang_threats"}],
            },
            "placements": [
                {"type": "open_door_shelter", "start_date": "2024-04-08"},
                {
                    "type": "kinship_care",
                    "caregiver_person_ref": "hermana",
                    "start_date": "2024-05-02",
                },
            ],
            "referrals": [
                {
                    "service_type": "mental_health",
                    "referred_to": {"agency_id": "mx.chp.tapachula.dif"},
                    "referred_on": "2024-04-10",
                    "urgency": "urgent",
                    "status": "completed",
                    "completed_on": "2024-04-30",
                }
            ],
            "best_interest": {
                "assessments": [{"assessed_on": "2024-04-20", "recommendation": "resettlement"}]
            },
        },
    }


def test_round_trip_shared_to_primero_to_shared_keeps_what_the_mapping_covers(
    adapter: PrimeroAdapter,
) -> None:
    document = covered_document()
    assert validate_envelope(document) == []
    export = encoded(adapter, [document])
    assert export["metadata"]["total"] == 1
    case = export["data"][0]
    # Primero codes on the way out, the deployment's agency code included.
    assert case["owned_by_agency_id"] == "dif-chiapas-tapachula"
    assert case["nationality"] == ["guatemala", "mexico"]
    assert case["protection_concerns"] == ["slavery_sale_abduction", "gang_threats"]
    assert case["family_details_section"][0]["relation"] == "sister"
    assert case["family_details_section"][0]["relation_age"] == 23
    [item] = decode(adapter, json.dumps(export).encode())
    assert item.ok, item.problems
    assert item.document == document


def test_round_trip_primero_to_shared_is_stable(
    adapter: PrimeroAdapter, export_items: list[Item]
) -> None:
    documents = [item.document for item in export_items if item.document is not None]
    again = decode(adapter, json.dumps(encoded(adapter, documents)).encode())
    assert [item.document for item in again] == documents


def test_encode_writes_only_case_records(adapter: PrimeroAdapter) -> None:
    consent = {"schema": "consent/1", "local_id": "c1", "data": {}}
    with pytest.raises(AdapterError) as raised:
        adapter.encode([consent], io.BytesIO())
    assert "consent/1" in raised.value.message_en and "consent/1" in raised.value.message_es


def test_encode_of_nothing_is_an_empty_export(adapter: PrimeroAdapter) -> None:
    assert encoded(adapter, []) == {"data": [], "metadata": {"total": 0, "per": 0, "page": 1}}


def test_rejects_are_the_original_cases_with_errors_and_can_be_resent(
    adapter: PrimeroAdapter,
) -> None:
    items = decode(adapter, BAD)
    rejected = [item for item in items if not item.ok]
    out = io.BytesIO()
    adapter.write_rejects(rejected, out)
    rejects = json.loads(out.getvalue())
    assert len(rejects["data"]) == 3
    assert rejects["metadata"] == {"total": 3}
    first = rejects["data"][0]
    assert first["sex"] == "hombre"  # as it came
    assert {e["pointer"] for e in first["errors"]} >= {"field:sex", "field:nationality"}
    assert all(e["message_es"] and e["message_en"] for e in first["errors"])
    # Sent again as it is, the errors member is not an unknown field: the same reasons.
    again = decode(adapter, out.getvalue())
    assert [pointers(item) for item in again] == [pointers(item) for item in rejected]
    warned = {w.pointer for item in again for w in item.warnings}  # type: ignore[attr-defined]
    assert "field:errors" not in warned


def test_rejects_give_each_case_its_position_and_keep_what_is_not_a_case(
    adapter: PrimeroAdapter,
) -> None:
    export = json.loads(EXPORT.read_bytes())
    raw = json.dumps({"data": [export["data"][0], None, "texto", {"sex": "x"}]}).encode()
    out = io.BytesIO()
    adapter.write_rejects([item for item in decode(adapter, raw) if not item.ok], out)
    rejects = json.loads(out.getvalue())["data"]
    assert [r["errors"][0]["position"] for r in rejects] == ["data[1]", "data[2]", "data[3]"]
    assert rejects[0] == {
        "position": "data[1]",
        "original": None,
        "errors": [
            {
                "position": "data[1]",
                "pointer": "",
                "message_es": "cada elemento de «data» debe ser un caso (un objeto JSON)",
                "message_en": "each element of 'data' must be a case (a JSON object)",
            }
        ],
    }
    assert rejects[1]["original"] == "texto" and rejects[2]["sex"] == "x"


def test_a_break_in_the_export_goes_to_the_rejects_metadata(adapter: PrimeroAdapter) -> None:
    export = json.loads(EXPORT.read_bytes())
    raw = json.dumps({"data": [{"sex": "x"}, export["data"][0]]}).encode()[:-40]
    items = decode(adapter, raw)
    assert isinstance(items[-1], FileProblem) and items[-1].position == "data[1]"
    assert "the cases before it (1) were read" in items[-1].problems[0].en
    out = io.BytesIO()
    adapter.write_rejects([item for item in items if not item.ok], out)
    rejects = json.loads(out.getvalue())
    assert len(rejects["data"]) == 1
    assert rejects["metadata"]["errors"][0]["position"] == "data[1]"
    # The break alone writes no rejects file: puente import prints it.
    alone = io.BytesIO()
    adapter.write_rejects([items[-1]], alone)
    assert alone.getvalue() == b""


@pytest.mark.parametrize("raw", [b"folio,nombre\nF-1,Ana\n", b"[]", b"<xml/>"])
def test_a_file_that_is_no_primero_export_is_one_file_problem(
    adapter: PrimeroAdapter, raw: bytes
) -> None:
    [item] = decode(adapter, raw)
    assert isinstance(item, FileProblem) and item.position == "data"
    assert item.problems[0].en.startswith('not a Primero export ({"data": [...]})')
    assert "cases before it" not in item.problems[0].en


@pytest.mark.parametrize("raw", [b"", b" \n", b'{"data": []}'])
def test_an_empty_file_or_export_holds_no_cases(adapter: PrimeroAdapter, raw: bytes) -> None:
    assert decode(adapter, raw) == []


def test_a_code_table_that_does_not_exist_says_what_mapping_means_here() -> None:
    with pytest.raises(MappingError) as raised:
        PrimeroAdapter(mapping="dif-estatal")
    assert "--mapping of primero is a code table" in raised.value.message_en
    assert "Errno" not in raised.value.message_en + raised.value.message_es


def test_no_rejects_writes_nothing(adapter: PrimeroAdapter, export_items: list[Item]) -> None:
    out = io.BytesIO()
    adapter.write_rejects([item for item in export_items if not item.ok], out)
    assert out.getvalue() == b""


def test_codes_option_and_bad_code_tables() -> None:
    adapter = PrimeroAdapter(codes={"sex": {"hombre": "male"}, "nationality": {"narnia": "XX"}})
    second = decode(adapter, BAD)[1]
    assert "field:sex" not in pointers(second)
    assert "field:nationality" not in pointers(second)
    with pytest.raises(MappingError):
        PrimeroAdapter(codes={"sex": ["male"]})  # type: ignore[dict-item]


def test_mapping_file_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        PrimeroAdapter(mapping=path)
    assert str(path) in raised.value.message_en
