"""An agency's own FHIR export, imported again, gives back exactly the records it holds.

QA found every DIF record re-imported from its FHIR export stored as a new version without
``/case/identified_by``, ``/child/needs_interpreter``, ``/protection_concerns/risk_level``… The
conformance suite's round trip did not see it: it starts from a FHIR fixture (decode → encode →
decode), so what the encoder never writes was never in the first documents either. These
tests start from the documents (encode → decode), for every shipped valid case-record example
and for records read from a generated DIF sheet; the last ones do the same for every adapter
that claims to carry everything a record holds (docs/adapters.md §8).
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from fhir.resources.bundle import Bundle as BundleR5
from generated import DIF_HEADER, dif_row

from adapters import registry
from adapters.base import Item
from adapters.fhir import FhirAdapter
from adapters.fhir_patch import PATCH, apply, diff
from schemas.registry import default_registry

#: What the DIF sheet carries that the FHIR export used to drop (QA's report).
QA_FIELDS = (
    ("case", "identified_by"),
    ("child", "current_location", "location_type"),
    ("child", "entry_to_mexico"),
    ("child", "needs_interpreter"),
    ("health", "needs_medical_attention"),
    ("protection_concerns", "risk_level"),
    ("protection_concerns", "narrative"),
    ("education", "enrolled"),
)


def _examples() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.stem, json.loads(path.read_text()))
        for path in default_registry().example_paths("case-record", "1")
    ]


EXAMPLES = _examples()


def _envelope(local_id: str, data: Mapping[str, Any], child_id: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {"schema": "case-record/1", "local_id": local_id}
    if child_id:
        document["child_id"] = child_id
    document["data"] = copy.deepcopy(dict(data))
    return document


def _dif_documents(rows: int) -> list[dict[str, Any]]:
    """Records as the shipped dif-estatal mapping reads a generated DIF sheet."""
    lines = [DIF_HEADER] + [dif_row(n) for n in range(1, rows + 1)]
    # With the interpreter column the office's own sheet has (the generated rows lack it).
    extra = ["requiere_interprete"] + ["Sí" if n % 2 else "No" for n in range(1, rows + 1)]
    sheet = "".join(
        f"{line.rstrip(chr(10))},{value}\n" for line, value in zip(lines, extra, strict=True)
    ).encode()
    adapter = registry.get("csv", mapping="dif-estatal")
    items = list(adapter.decode(io.BytesIO(sheet)))
    assert items and all(item.ok for item in items), [i.problems for i in items if not i.ok]
    documents: list[dict[str, Any]] = [dict(i.document) for i in items if i.document is not None]
    # As the hub exports them: each names the child it is about.
    for number, document in enumerate(documents):
        document["child_id"] = f"ch-{number:08x}"
    return documents


def _round_trip(
    documents: Iterable[Mapping[str, Any]], adapter: Any = None, reader: Any = None
) -> list[Item]:
    out = io.BytesIO()
    (adapter or FhirAdapter()).encode(documents, out)
    return list((reader or FhirAdapter()).decode(io.BytesIO(out.getvalue())))


def _documents(items: list[Item]) -> list[Any]:
    assert all(item.ok for item in items), [(i.position, i.problems) for i in items if not i.ok]
    assert not [w for i in items for w in getattr(i, "warnings", ())]
    return [item.document for item in items]


def _get(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


@pytest.mark.parametrize(("name", "data"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
@pytest.mark.parametrize("child_id", [None, "ch-41b7c0aa"])
def test_every_shipped_example_comes_back_exactly(
    name: str, data: dict[str, Any], child_id: str | None
) -> None:
    document = _envelope(f"DIF-{name}", data, child_id)
    assert _documents(_round_trip([document])) == [document]


def test_every_shipped_example_in_one_bundle_comes_back_exactly() -> None:
    documents = [
        _envelope(f"L-{name}", data, f"ch-{i:08x}") for i, (name, data) in enumerate(EXAMPLES)
    ]
    assert _documents(_round_trip(documents)) == documents


@pytest.mark.parametrize("bundle_type", ["collection", "transaction"])
def test_records_read_from_a_dif_sheet_come_back_exactly(bundle_type: str) -> None:
    documents = _dif_documents(36)
    # The sheet fills every field QA saw lost (narrative and enrollment in part of the rows).
    for path in QA_FIELDS:
        assert any(_get(d["data"], path) is not None for d in documents), path
    back = _documents(_round_trip(documents, FhirAdapter(bundle_type=bundle_type)))
    assert back == documents
    for path in QA_FIELDS:
        assert [_get(d["data"], path) for d in back] == [
            _get(d["data"], path) for d in documents
        ], path


def test_an_r5_only_reader_takes_the_export_back_whole() -> None:
    documents = [*_dif_documents(6), _envelope("L-typical", dict(EXAMPLES)["typical"], None)]
    assert _documents(_round_trip(documents, reader=FhirAdapter(version="R5"))) == documents


def test_the_export_stays_valid_fhir_r5_and_uses_standard_elements_where_they_exist() -> None:
    documents = _dif_documents(6)
    out = io.BytesIO()
    FhirAdapter().encode(documents, out)
    bundle = json.loads(out.getvalue())
    BundleR5.model_validate(bundle)
    patient = bundle["entry"][0]["resource"]
    urls = [e["url"] for e in patient["extension"]]
    # HL7's own extension for an interpreter; the patch holds only what no element carries.
    interpreter = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
    assert interpreter in urls
    patch = json.loads(next(e["valueString"] for e in patient["extension"] if e["url"] == PATCH))
    assert "needs_interpreter" not in patch and "names" not in patch
    episode = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare"
    )
    assert any(e["url"].endswith("/identified-by") for e in episode["extension"])


def test_an_edit_to_a_standard_element_wins_over_the_export_it_came_from() -> None:
    [document] = _dif_documents(1)
    out = io.BytesIO()
    FhirAdapter().encode([document], out)
    bundle = json.loads(out.getvalue())
    patient = bundle["entry"][0]["resource"]
    patient["birthDate"] = "2010-01-02"
    [item] = FhirAdapter().decode(io.BytesIO(json.dumps(bundle).encode()))
    assert item.ok and item.document is not None
    assert item.document["data"]["child"]["date_of_birth"] == "2010-01-02"
    assert item.document["data"]["protection_concerns"] == document["data"]["protection_concerns"]


@pytest.mark.parametrize("broken", ["{not json", "[1, 2]", None])
def test_a_broken_patch_rejects_its_case_in_two_languages_never_drops_silently(
    broken: str | None,
) -> None:
    [document] = _dif_documents(1)
    out = io.BytesIO()
    FhirAdapter().encode([document], out)
    bundle = json.loads(out.getvalue())
    episode = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare"
    )
    [extension] = [e for e in episode["extension"] if e["url"] == PATCH]
    del extension["valueString"]
    if broken is None:
        extension["valueBoolean"] = True
    else:
        extension["valueString"] = broken
    [item] = FhirAdapter().decode(io.BytesIO(json.dumps(bundle).encode()))
    assert not item.ok
    [problem] = [p for p in item.problems if PATCH in p.en]
    assert problem.pointer == "resource:EpisodeOfCare.extension"
    assert PATCH in problem.es and problem.es != problem.en


@pytest.mark.parametrize(
    ("wanted", "read"),
    [
        ({"a": 1, "b": {"c": [1, 2], "d": "x"}}, {"a": 1, "b": {"c": [1], "e": "y"}}),
        ({"a": {}, "b": []}, {}),
        ({"a": True}, {"a": 1}),
        ({}, {"a": {"b": 1}}),
    ],
)
def test_the_patch_turns_what_is_read_into_what_was_written(
    wanted: dict[str, Any], read: dict[str, Any]
) -> None:
    result = apply(read, diff(wanted, read))
    assert result == wanted
    assert json.dumps(result, sort_keys=True) == json.dumps(wanted, sort_keys=True)


@pytest.mark.parametrize("name", ["ndjson", "json", "fhir"])
def test_adapters_that_carry_everything_give_back_the_documents_they_wrote(name: str) -> None:
    """The check the conformance suite's round trip lacks: encode first, then decode."""
    documents = [
        _envelope(f"L-{n}", data, f"ch-{i:08x}") for i, (n, data) in enumerate(EXAMPLES)
    ] + _dif_documents(6)
    adapter = registry.get(name)
    out = io.BytesIO()
    adapter.encode(documents, out)
    back = list(registry.get(name).decode(io.BytesIO(out.getvalue())))
    assert [item.document for item in back if item.ok] == documents
