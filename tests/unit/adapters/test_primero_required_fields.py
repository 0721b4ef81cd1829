"""A Primero case that leaves out a field the shared record requires is rejected with the
Primero fields that give it, in Spanish and English — a caseworker sees Primero's fields, not
the shared record's — including the subform row for a field of a list."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from adapters.primero import PrimeroAdapter

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "primero" / "cases_export.json"


def a_case() -> dict[str, Any]:
    cases: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    case: dict[str, Any] = copy.deepcopy(cases["data"][0])
    case["owned_by_agency_id"] = None  # its code is the fixture's own code table's
    return case


def reasons(case: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    [item] = PrimeroAdapter().decode(io.BytesIO(json.dumps({"data": [case]}).encode()))
    assert item.document is None
    found: dict[str, list[tuple[str, str]]] = {}
    for problem in item.problems:
        found.setdefault(problem.pointer, []).append((problem.es, problem.en))
    return found


def test_a_case_without_nationality_names_primeros_field() -> None:
    case = a_case()
    del case["nationality"]
    [(es, en)] = reasons(case)["/child"]
    assert en.endswith("is missing; fill in the Primero field that gives it: 'nationality'")
    assert es.endswith("llene en Primero el campo que lo da: «nationality»")


def test_a_case_without_date_of_birth_or_age_names_both() -> None:
    case = a_case()
    del case["date_of_birth"], case["age"]
    [(es, en)] = reasons(case)["/child"]
    assert en.endswith(
        "fill in at least one of the Primero fields that give them: 'date_of_birth', 'age'"
    )
    assert es.endswith(
        "llene en Primero al menos uno de los campos que los dan: «date_of_birth», «age»"
    )


def test_a_care_arrangement_without_its_start_names_its_row() -> None:
    case = a_case()
    case["care_arrangements_section"].append(
        {"unique_id": "c-2", "care_arrangements_type": "foster_care"}
    )
    [(_, en)] = reasons(case)["/placements/1"]
    assert en.endswith(
        "fill in the Primero field that gives it: "
        "'care_arrangements_section[1].care_arrangement_started_date'"
    )


def test_a_closed_case_without_its_date_names_date_closure() -> None:
    case = a_case()
    case.update(status="closed", closure_reason="other")
    case.pop("date_closure", None)
    [(_, en)] = reasons(case)["/closure"]
    assert en.endswith("fill in the Primero field that gives it: 'date_closure'")


def test_other_reasons_are_as_the_schema_says() -> None:
    case = a_case()
    case["care_arrangements_section"][0]["care_arrangement_started_date"] = "2024-02-31"
    found = reasons(case)
    assert all("Primero field" not in en for each in found.values() for _, en in each)
