"""What each built-in adapter supplies to the conformance checks (adapters/conformance.py),
which test_conformance.py runs on every entry of :data:`CASES`.

A built-in adapter brings its case here, under its registered name (test_conformance.py fails
for a built-in without one). An adapter in a package of its own — the example in
example_adapter/, or an agency's — keeps its case in that package's tests
(example_adapter/test_pipe_list.py, docs/adapters.md §7). ``large(n)`` must give a stream of
``n`` valid positions; the check calls it once with 1,000 to learn the size of a position, then
with as many as make 8 MB, and checks tracemalloc's peak stays under 2 MB.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generated import DIF_HEADER, dif_row, envelope_line

from adapters.conformance import ConformanceCase, GeneratedStream
from schemas.registry import default_registry

FIXTURES = Path(__file__).parent / "fixtures"


def _envelopes() -> list[dict[str, Any]]:
    registry = default_registry()
    return [
        {"schema": "case-record/1", "local_id": path.stem, "data": json.loads(path.read_text())}
        for path in registry.example_paths("case-record", "1")
    ]


def _invalid_envelope() -> dict[str, Any]:
    document = _envelopes()[0]
    document["data"]["child"]["sex"] = "boy"
    return document


def _lines(values: list[Any]) -> bytes:
    return b"".join(
        (value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode())
        + b"\n"
        for value in values
    )


_GOOD = _envelopes()
_NDJSON_BAD = _lines([_GOOD[0], b"{not json", _GOOD[1], _invalid_envelope(), b"[1, 2]", _GOOD[2]])

_CSV_GOOD = (FIXTURES / "csv" / "dif-estatal.csv").read_bytes()
# Windows-1252, semicolons, as "Guardar como CSV" writes on a Spanish Windows; rows 2 and 4
# are bad (an impossible date, an unknown code), rows 1, 3 and 5 are good.
_CSV_BAD = (
    "folio;nombre(s);primer_apellido;sexo;fecha_nacimiento;nacionalidad;curp;no_acompanado\n"
    "F-1;José Ángel;Núñez;H;02/07/2008;Hondureño;;Sí\n"
    "F-2;María;Peña;M;31/02/2015;Guatemalteca;;No\n"
    "F-3;Wilner;Exemple;H;30/11/2010;Haití;;Separado\n"
    "F-4;Dayana;Ruiz;Z;01/01/2012;Salvadoreña;;Sí\n"
    "F-5;Brayan;Ríos;H;15/05/2009;Hondureño, Guatemalteco;;No\n"
).encode("cp1252")

CASES: dict[str, ConformanceCase] = {
    "ndjson": ConformanceCase(
        name="ndjson",
        good=_lines(_GOOD),
        bad=_NDJSON_BAD,
        bad_positions=frozenset({"2", "4", "5"}),
        good_in_bad=3,
        round_trip=True,
        large=lambda count: GeneratedStream("", envelope_line, count),
    ),
    "json": ConformanceCase(
        name="json",
        good=json.dumps(_GOOD, ensure_ascii=False).encode(),
        bad=json.dumps([_GOOD[0], _invalid_envelope(), "x", _GOOD[1]]).encode(),
        bad_positions=frozenset({"$[1]", "$[2]"}),
        good_in_bad=2,
        round_trip=True,
        large=None,  # a JSON array is parsed whole: use ndjson for large files
    ),
    "csv": ConformanceCase(
        name="csv",
        options={"mapping": "dif-estatal"},
        good=_CSV_GOOD,
        bad=_CSV_BAD,
        bad_positions=frozenset({"3", "5"}),  # rows as a spreadsheet numbers them
        good_in_bad=3,
        round_trip=True,
        large=lambda count: GeneratedStream(DIF_HEADER, dif_row, count),
    ),
}

# primero and fhir: fixtures in fixtures/primero and fixtures/fhir (fictitious cases). Neither
# runs the 200,000-position check: a Primero case costs about a millisecond to map and check, a
# FHIR resource a few milliseconds to validate with fhir.resources, so it would take minutes.
# Primero streams case by case: test_primero_stream.py checks its memory on a large export.
# A FHIR Bundle keeps an index row per resource until it ends (adapters/fhir.py says why):
# test_fhir_encode.py checks that row's size.
_PRIMERO = FIXTURES / "primero"
_FHIR = FIXTURES / "fhir"
CASES["primero"] = ConformanceCase(
    name="primero",
    options={"mapping": _PRIMERO / "codes.yaml"},
    good=(_PRIMERO / "cases_export.json").read_bytes(),
    bad=(_PRIMERO / "unknown_fields_bad_codes.json").read_bytes(),
    bad_positions=frozenset({"data[1]", "data[2]", "data[3]"}),
    good_in_bad=2,  # data[0] with unknown fields (warnings), data[4]
    round_trip=True,
    large=None,
)
CASES["fhir"] = ConformanceCase(
    name="fhir",
    good=(_FHIR / "bundle_r5_collection.json").read_bytes(),
    bad=(_FHIR / "bundle_bad_entries.json").read_bytes(),
    bad_positions=frozenset({f"entry[{i}]" for i in range(6)}),
    good_in_bad=1,
    round_trip=True,
    large=None,
)
