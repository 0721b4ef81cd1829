"""The hint for a missing required column names only a header cell no other column of the
mapping reads: a sheet without ``fecha_nacimiento`` but with ``pais_nacimiento`` (a column of
its own) is not asked "is it pais_nacimiento?"."""

from __future__ import annotations

import io

from adapters.base import FileProblem
from adapters.csv_adapter import CsvAdapter
from adapters.tabular.mapping import compile_mapping
from adapters.tabular.rows import plan_header


def problems(text: str, adapter: CsvAdapter | None = None) -> list[str]:
    [header] = (adapter or CsvAdapter("dif-estatal")).decode(io.BytesIO(text.encode("utf-8")))
    assert isinstance(header, FileProblem)
    return [problem.en for problem in header.problems]


def test_a_column_the_mapping_reads_further_down_is_not_offered_as_the_missing_one() -> None:
    sheet = "folio,nombre(s),pais_nacimiento,nacionalidad\r\nF-1,Ana,Guatemala,Guatemalteca\r\n"
    assert problems(sheet) == ["the required column 'fecha_nacimiento' is missing"]


def test_a_cell_no_column_reads_is_still_offered() -> None:
    sheet = "folio,nombre(s),pais_nacimiento,fecha_nacimeinto,nacionalidad\r\nF-1,Ana,GT,1,GT\r\n"
    assert problems(sheet) == [
        "the required column 'fecha_nacimiento' is missing; is it fecha_nacimeinto?"
    ]


def test_a_cell_a_group_reads_is_not_offered_either() -> None:
    mapping = compile_mapping(
        {
            "schema": "case-record/1",
            "local_id": "folio",
            "columns": {
                "folio": {"pointer": "/case/case_number", "required": True},
                "fecha_ingreso": {"pointer": "/case/opened_on", "required": True},
            },
            "groups": [
                {
                    "prefix": "albergue_",
                    "pointer": "/placements",
                    "columns": {"fecha_ingreso": "start_date"},
                }
            ],
        },
        "test",
    )
    # The admission date of the first shelter is the group's, not the case's opening date.
    plan = plan_header(mapping, ["folio", "albergue_1_fecha_ingreso"])
    [problem] = plan.problems
    assert problem.en == "the required column 'fecha_ingreso' is missing"
    plan = plan_header(mapping, ["folio", "albergue_1_fecha_ingreso", "fecha_ingres"])
    [problem] = plan.problems
    assert problem.en == "the required column 'fecha_ingreso' is missing; is it fecha_ingres?"
