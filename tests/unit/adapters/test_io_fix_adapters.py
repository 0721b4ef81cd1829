"""Adapter fixes after a QA pass: the parts of a FHIR case whose Patient was rejected hear that
it was rejected (not that it is missing); a CSV row refused for a cell longer than the reader
takes keeps its local id; what a spreadsheet mapping cannot carry of a record is found."""

from __future__ import annotations

import copy
import csv
import io
import json
from typing import Any

import pytest

from adapters.base import Item
from adapters.csv_adapter import CsvAdapter
from adapters.csv_adapter_coverage import Uncarried, uncarried_of
from adapters.fhir import FhirAdapter
from adapters.native import NdjsonAdapter
from tests.api.records_support import example

# -- FHIR: a rejected Patient -------------------------------------------------------------------


def bundle_with_a_bad_patient() -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "qa-r4-0001", "birthDate": "2015-02-31",
               "identifier": [{"system": "urn:puente:local-id", "value": "QA-1"}]}  # fmt: skip
    subject = {"reference": "Patient/qa-r4-0001"}
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "http://example.org/fhir/Patient/qa-r4-0001", "resource": patient},
            {"resource": {"resourceType": "RelatedPerson", "id": "rp1", "patient": subject,
                          "name": [{"family": "López", "given": ["Rosa"]}]}},
            {"resource": {"resourceType": "EpisodeOfCare", "id": "ep1", "status": "active",
                          "patient": subject}},
            {"resource": {"resourceType": "RelatedPerson", "id": "rp2",
                          "patient": {"reference": "Patient/nobody"}}},
        ],
    }  # fmt: skip


def test_the_parts_of_a_rejected_patient_say_it_was_rejected() -> None:
    raw = json.dumps(bundle_with_a_bad_patient()).encode()
    items = {item.position: item for item in FhirAdapter().decode(io.BytesIO(raw))}
    assert [p.pointer for p in items["entry[0]"].problems] == ["resource:Patient.birthDate"]
    for position in ("entry[1]", "entry[2]"):
        [problem] = items[position].problems
        assert "not in the Bundle" not in problem.en, problem.en
        assert problem.en.startswith(
            "it refers to Patient/qa-r4-0001, the Patient at entry[0], which was rejected"
        )
        assert problem.es.startswith(
            "se refiere a Patient/qa-r4-0001, el Patient de entry[0], que se rechazó"
        )
    # A Patient that is nowhere in the Bundle is still said to be so.
    [missing] = items["entry[3]"].problems
    assert missing.en == "it refers to Patient/nobody, which is not in the Bundle"


# -- CSV: a cell too long to read -------------------------------------------------------------


def test_a_row_with_a_cell_too_long_keeps_its_local_id() -> None:
    adapter = CsvAdapter("dif-estatal")
    long = "x" * (csv.field_size_limit() + 10)
    sheet = (
        "folio,nombre(s),fecha_nacimiento,nacionalidad,alias\r\n"
        f"L-1,Ana,01/01/2012,Hondureña,{long}\r\n"
        f"{long},Bea,01/01/2012,Hondureña,ok\r\n"  # the local id cell is the long one
        "L-3,Cira,01/01/2012,Hondureña,ok\r\n"
    )
    items: list[Item] = list(adapter.decode(io.BytesIO(sheet.encode("utf-8"))))
    assert [(item.position, item.local_id, item.ok) for item in items] == [
        ("2", "L-1", False),
        ("3", None, False),
        ("4", "L-3", True),
    ]
    assert items[0].problems[0].pointer == "column:alias"
    assert items[1].problems[0].pointer == "column:folio"


# -- CSV: what a mapping cannot carry ---------------------------------------------------------


@pytest.fixture(scope="module")
def uncarried() -> Uncarried:
    found = uncarried_of(CsvAdapter("dif-estatal"))
    assert found is not None
    return found


def test_a_record_the_mapping_covers_has_nothing_uncarried(uncarried: Uncarried) -> None:
    sheet = "folio,nombre(s),fecha_nacimiento,nacionalidad,curp\r\nS-1,Ana,01/01/2012,Hondureña,"
    sheet += "EEFK080702HNEJCVA9\r\n"
    [item] = CsvAdapter("dif-estatal").decode(io.BytesIO(sheet.encode()))
    assert item.document is not None
    before = uncarried.records
    uncarried.note(item.document["data"])
    assert uncarried.records == before  # the CURP comes back by its column, /case/status too


def test_what_the_mapping_cannot_carry_is_named_where_it_starts() -> None:
    found = uncarried_of(CsvAdapter("dif-estatal"))
    assert found is not None
    data = copy.deepcopy(example("typical"))
    found.note(data)
    assert found.records == 1
    parts = set(found.parts)
    assert {"/related_persons", "/case/owner", "/protection_concerns/concerns",
            "/placements/*/operator"} <= parts  # fmt: skip
    # The CURP has a column; the COMAR case number's value has one too, its issuer none.
    assert "/child/identifiers/*/issuer_agency" in parts
    assert not any(part.startswith("/child/identifiers/*/value") for part in parts)
    assert "/child/names/given_names" not in parts and "/child/names" not in parts
    # A second CURP would not come back: only the first element with those fields is read.
    data["child"]["identifiers"].append({"type": "curp", "value": "AAAA000000HNEXXX01"})
    again = uncarried_of(CsvAdapter("dif-estatal"))
    assert again is not None
    again.note(data)
    assert "/child/identifiers/*" in again.parts
    es, en = again.warning(3)
    assert en.startswith("warning: the mapping dif-estatal has no columns for parts of 1 of the 3")
    assert es.startswith("aviso: la correspondencia dif-estatal no tiene columnas para partes de 1")
    assert uncarried_of(NdjsonAdapter()) is None  # only a spreadsheet's mapping
