"""One local id, one child: rows of one import file that share a local id but describe
different children (siblings under one case number) are not stored as versions of one record;
the later ones are rejected with the reason, and an earlier rejected row is then no older
version of them. Corrections of one child (a typo, an accent, a day and month swapped) are
still versions. Also: the terminal shows a reason's place whatever its form, and counts the
records the hub refused as referred or transferred to the agency."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from adapters import registry
from adapters.base import Item, Problem
from exchange.import_siblings import LocalIdChildren
from exchange.importer import ImportSummary, Outcome, pushed_and_rejected
from exchange.importer import write_rejects as write_rejects_file
from exchange.received_copies import RECEIVED_COPY
from tests.unit.exchange.test_adapter_fixes_engine import imported
from tests.unit.exchange.test_import_engine import RecordingSink


def child(
    given: str, surname: str, sex: str = "male", born: str | None = "2013-03-01"
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "names": {"given_names": given, "first_surname": surname},
        "sex": sex,
        "nationality": ["HN"],
    }
    if born is not None:
        found["date_of_birth"] = born
    return found


def row(n: int, local_id: str, described: dict[str, Any]) -> Item:
    document = {"schema": "case-record/1", "local_id": local_id, "data": {"child": described}}
    return Item(f"{n}", document=document, source={"n": str(n)}, local_id=local_id)


def bad_date(n: int, local_id: str, given: str, surname: str) -> Item:
    """A spreadsheet row the adapter refused: no document, only its cells."""
    cells = {"folio": local_id, "nombre(s)": given, "primer_apellido": surname, "sexo": "H"}
    problem = Problem("column:fecha_nacimiento", "fecha inexistente", "no such date")
    return Item(
        f"{n}",
        problems=(problem,),
        source={**cells, "fecha_nacimiento": "31/02/2013"},
        local_id=local_id,
    )


@pytest.mark.parametrize("batch", [1, 500])
def test_a_second_child_under_one_local_id_is_rejected_not_stored_as_a_version(
    batch: int,
) -> None:
    items = [
        row(2, "SIB-02", child("Ernesto", "Primo")),
        row(3, "SIB-02", child("Fabiola", "Primo", "female", "2015-06-05")),
    ]
    sink = RecordingSink()
    given, totals = imported(items, sink, batch=batch)
    assert [local_id for each in sink.batches for local_id in each] == ["SIB-02"]  # Ernesto
    assert given == ["3"]
    assert (totals.stored, totals.rejected, totals.other_children) == (1, 1, 1)
    [entry] = totals.rejected_items
    [error] = entry["errors"]
    assert error["message_en"].startswith("the same local id 'SIB-02' as position 2, but")
    assert "give each child its own local id" in error["message_en"]
    assert "dé a cada niña, niño o adolescente su propio id local" in error["message_es"]
    said = "\n".join(totals.lines("en"))
    assert "With the local id of an earlier row but another child: 1" in said
    assert totals.to_json()["other_children"] == 1


def test_a_rejected_row_of_another_child_is_no_older_version_of_the_next() -> None:
    # Carlos (a date that does not exist), then Daniela under the same folio: neither is lost.
    items = [
        bad_date(2, "SIB-01", "Carlos", "Hermano"),
        row(3, "SIB-01", child("Daniela", "Hermano", "female", "2015-06-05")),
    ]
    sink = RecordingSink()
    given, totals = imported(items, sink)
    assert sink.batches == []  # nothing stored: Daniela is not a version of Carlos's record
    assert given == ["2", "3"]
    assert (totals.stored, totals.rejected, totals.superseded) == (0, 2, 0)


def test_the_same_child_fixed_later_in_the_file_still_supersedes_the_bad_row() -> None:
    items = [
        bad_date(2, "DUP-1", "Carlos", "Hermano"),
        row(3, "DUP-1", child("Carlos", "Hermano", born="2013-02-28")),
        row(4, "DUP-1", child("Carlos", "Hermano", born="2013-02-27")),
    ]
    given, totals = imported(items, RecordingSink())
    assert given == []
    assert (totals.stored, totals.superseded, totals.other_children) == (2, 1, 0)


@pytest.mark.parametrize(
    "later",
    [
        child("Ernseto", "Primo"),  # two letters swapped
        child("Ernésto", "Primo"),  # an accent
        child("Ernesto", "Primo", born="2013-01-03"),  # day and month swapped
        child("Ernesto", "Primo", born="2014-03-01"),  # the year mistyped
        child("Ernesto Adán", "Primo García"),  # a second name, a second surname
        child("E.", "Primo"),  # an initial
        child("Ernesto", "Primo", sex="unknown", born=None),  # less known
    ],
)
def test_corrections_of_one_child_are_versions_of_its_record(later: dict[str, Any]) -> None:
    items = [row(2, "L-1", child("Ernesto", "Primo")), row(3, "L-1", later)]
    given, totals = imported(items, RecordingSink())
    assert given == [] and totals.stored == 2 and totals.other_children == 0


@pytest.mark.parametrize(
    "later",
    [
        child("Ernesto", "Primo", sex="female"),  # a sister given the same name
        child("José", "Primo"),  # a twin brother
        child("Ernesto", "Ramírez"),  # another family
        child("Ernesto", "Primo", born="2009-11-20"),  # four years apart
    ],
)
def test_another_child_under_the_same_local_id_is_said(later: dict[str, Any]) -> None:
    items = [row(2, "L-1", child("Ernesto", "Primo")), row(3, "L-1", later)]
    given, totals = imported(items, RecordingSink())
    assert given == ["3"] and totals.stored == 1 and totals.other_children == 1


def test_a_rejected_row_of_another_child_is_not_superseded_by_the_first_childs_next() -> None:
    items = [
        row(2, "SIB-03", child("Ernesto", "Primo")),
        bad_date(3, "SIB-03", "Fabiola", "Primo"),  # a sister, with a date that does not exist
        row(4, "SIB-03", child("Ernesto", "Primo", born="2013-03-02")),  # Ernesto's next version
    ]
    given, totals = imported(items, RecordingSink())
    assert given == ["3"]  # Fabiola stays, to be given her own local id
    assert (totals.stored, totals.superseded, totals.other_children) == (2, 0, 1)
    [entry] = totals.rejected_items
    assert [error["pointer"] for error in entry["errors"]] == [
        "column:fecha_nacimiento",
        "/local_id",
    ]


def test_a_row_naming_no_one_after_a_named_one_is_a_version() -> None:
    nameless = Item(
        "3", document={"schema": "case-record/1", "local_id": "N", "data": {}}, local_id="N"
    )
    given, totals = imported([row(2, "N", child("Ana", "Ruiz")), nameless], RecordingSink())
    assert given == [] and totals.stored == 2


def test_rows_without_a_child_are_versions_as_before() -> None:
    nameless = Item(
        "2", document={"schema": "case-record/1", "local_id": "N", "data": {}}, local_id="N"
    )
    items = [nameless, row(3, "N", child("Ana", "Ruiz")), row(4, "N", child("Ana", "Ruiz"))]
    given, totals = imported(items, RecordingSink())
    assert given == [] and totals.stored == 3


def test_a_native_line_refused_by_the_adapter_is_known_by_its_child() -> None:
    envelope = {
        "schema": "case-record/1",
        "local_id": "E-1",
        "data": {"child": child("Ana", "Ruiz", "female")},
    }
    refused = Item(
        "1", problems=(Problem("/data/x", "mal", "bad"),), source=envelope, local_id="E-1"
    )
    items = [refused, row(2, "E-1", child("Ana", "Ruiz", "male"))]
    given, totals = imported(items, RecordingSink())
    assert given == ["1", "2"] and totals.other_children == 1


def test_what_is_kept_per_local_id_is_short_and_not_in_memory() -> None:
    children = LocalIdChildren()
    items = [row(n, f"DIF-07-2024-{n:07d}", child("María José", "García López")) for n in range(3)]
    children.checked(items)
    fingerprint = children.fingerprint("DIF-07-2024-0000002")
    assert fingerprint is not None and len(fingerprint) < 60
    assert children.fingerprint("DIF-07-2024-0000009") is None
    many = {f"c{n}": f"palabra{'x' * n} otra" for n in range(200)}
    children.checked([Item("9", problems=(Problem("", "mal", "bad"),), source=many, local_id="X")])
    words = children.fingerprint("X")
    assert words is not None and len(words.split("\x1f")[2].split()) <= 24
    children.close()
    assert children.fingerprint("X") is None  # the temporary file went with it


def sheet(tmp_path: Path, name: str, *rows: str) -> Path:
    header = "folio,nombre(s),primer_apellido,sexo,fecha_nacimiento,nacionalidad"
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("rows", "stored", "rejected"),
    [
        # Carlos with a date that does not exist, then Daniela, one folio.
        (
            [
                "SIB-2025-01,Carlos,Hermano,H,31/02/2013,Hondureña",
                "SIB-2025-01,Daniela,Hermano,M,05/06/2015,Hondureña",
            ],
            [],
            ["Carlos", "Daniela"],
        ),
        # Ernesto then Fabiola, one folio, both valid.
        (
            [
                "SIB-2025-02,Ernesto,Primo,H,01/03/2013,Hondureña",
                "SIB-2025-02,Fabiola,Primo,M,05/06/2015,Hondureña",
            ],
            ["Ernesto"],
            ["Fabiola"],
        ),
    ],
)
def test_siblings_sharing_a_folio_in_a_spreadsheet(
    tmp_path: Path, rows: list[str], stored: list[str], rejected: list[str]
) -> None:
    adapter = registry.get("csv", mapping="dif-estatal")
    file = sheet(tmp_path, "hermanos.csv", *rows)
    totals = ImportSummary("csv", str(file), "mx.chp.dif", "direct")

    class Keeping(RecordingSink):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def push(self, documents: Any) -> list[Outcome]:
            self.names.extend(d["data"]["child"]["names"]["given_names"] for d in documents)
            return super().push(documents)

    sink = Keeping()
    out = io.BytesIO()
    with file.open("rb") as stream:
        items = pushed_and_rejected(adapter.decode(stream), sink, totals, batch=500)
        write_rejects_file(adapter, items, out, totals)
    assert sink.names == stored
    text = out.getvalue().decode("utf-8-sig", "replace")
    assert [name for name in ("Carlos", "Daniela", "Ernesto", "Fabiola") if name in text] == (
        rejected
    )
    assert totals.rejected == len(rejected) and totals.superseded == 0


def test_the_terminal_shows_where_whatever_the_form_of_the_place() -> None:
    totals = ImportSummary("fhir", "b.json", "mx.chp.dif", "direct")
    fhir = Problem(
        "entry[5].resource:Encounter.class",
        "no es FHIR R4 válido: falta",
        "not valid FHIR R4: Field required",
    )
    column = Problem(
        "column:fecha", "columna «fecha» = «x»: no es fecha", "column 'fecha' = 'x': not a date"
    )
    pointer = Problem("/child/sex", "código desconocido", "unknown code")
    totals.reject(Item("entry[0]", problems=(fhir, column, pointer), local_id="P-1"))
    totals.rejected_by_adapter = 1
    [_title, line] = totals.rejected_lines("en")
    assert line == (
        "  position / posición entry[0] (P-1): entry[5].resource:Encounter.class: not valid "
        "FHIR R4: Field required | column 'fecha' = 'x': not a date | /child/sex: unknown code"
    )


@pytest.mark.parametrize("languages", ["both", "english only"])
def test_records_referred_to_the_agency_are_counted_apart(languages: str) -> None:
    es = RECEIVED_COPY[0] + "es el expediente rec_1, que mx.chp.tapachula.dif remitió"
    en = RECEIVED_COPY[1] + "it is the record rec_1, which mx.chp.tapachula.dif referred"
    refusal = Problem("/local_id", es if languages == "both" else en, en)

    class Refusing(RecordingSink):
        def push(self, documents: Any) -> list[Outcome]:
            super().push(documents)
            return [
                Outcome("rejected", (refusal,)) if d["local_id"] == "TAP-R1" else Outcome("stored")
                for d in documents
            ]

    items = [
        row(2, "TAP-R1", child("Kenia", "Pruebas", "female")),
        row(3, "DIF-1", child("Ana", "Ruiz")),
    ]
    given, totals = imported(items, Refusing())
    assert given == ["2"]
    assert (totals.stored, totals.rejected_by_hub, totals.received_copies) == (1, 1, 1)
    said = "\n".join(totals.lines("en"))
    assert "Received from another agency, not imported as its own: 1" in said
    assert totals.to_json()["received_copies"] == 1
