"""The fhir adapter writing R5 Bundles, round trips, rejects files, and memory on a large
Bundle."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.bundle import Bundle as BundleR5
from generated import GeneratedStream

from adapters.base import Item
from adapters.errors import AdapterError
from adapters.fhir import FhirAdapter
from consent.model import Consent
from exchange.fhir_export import consent_to_fhir
from schemas.envelope import validate_envelope

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"
FIXTURES = Path(__file__).parent / "fixtures" / "fhir"

# What the FHIR mapping does not carry, by design (see adapters/fhir_consent.py).
CONSENT_NOT_CARRIED = ("recorded_at",)
VIEWS_NOT_CARRIED = ("summary", "heard_by")


def example(kind: str, name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((EXAMPLES / kind / "1" / "valid" / name).read_text())
    return value


def examples(kind: str) -> list[tuple[str, dict[str, Any]]]:
    folder = EXAMPLES / kind / "1" / "valid"
    return [(path.stem, json.loads(path.read_text())) for path in sorted(folder.glob("*.json"))]


def encoded(adapter: FhirAdapter, documents: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    adapter.encode(documents, out)
    return out.getvalue()


def decoded(adapter: FhirAdapter, raw: bytes) -> dict[str | None, Item]:
    return {item.local_id: item for item in adapter.decode(io.BytesIO(raw))}


def case_envelopes() -> list[dict[str, Any]]:
    return [
        {
            "schema": "case-record/1",
            "local_id": f"DIF-{name}",
            "child_id": f"ch-{i:04d}x",
            "data": d,
        }
        for i, (name, d) in enumerate(examples("case-record"))
    ]


def consent_envelopes() -> list[dict[str, Any]]:
    return [
        {"schema": "consent/1", "local_id": f"CONS-{name}", "data": data}
        for name, data in examples("consent")
    ]


def without_not_carried(consent: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in consent.items() if k not in CONSENT_NOT_CARRIED}
    if "child_views" in kept:
        kept["child_views"] = {
            k: v for k, v in kept["child_views"].items() if k not in VIEWS_NOT_CARRIED
        }
    return kept


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {
            k: v for key, each in value.items() for k, v in flatten(each, f"{prefix}/{key}").items()
        }
    if isinstance(value, list):
        return {
            k: v for i, each in enumerate(value) for k, v in flatten(each, f"{prefix}/{i}").items()
        }
    return {prefix: value}


def test_the_written_bundle_is_valid_fhir_r5() -> None:
    raw = encoded(FhirAdapter(), case_envelopes() + consent_envelopes())
    bundle = BundleR5.model_validate_json(raw)
    assert bundle.type == "collection"
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds.count("Patient") == len(examples("case-record"))
    assert kinds.count("Consent") == len(examples("consent"))
    assert {"RelatedPerson", "EpisodeOfCare", "Encounter"} <= set(kinds)
    # Same input, same fullUrls: a resent export updates instead of duplicating.
    assert raw == encoded(FhirAdapter(), case_envelopes() + consent_envelopes())


def test_asked_to_write_r4_it_refuses_rather_than_write_r5_under_that_name() -> None:
    with pytest.raises(AdapterError) as refused:
        encoded(FhirAdapter(version="R4"), case_envelopes())
    assert "R5" in refused.value.message_en and "version=R4" in refused.value.message_es
    assert encoded(FhirAdapter(version="R5"), case_envelopes())  # R5 asked for: written


def test_every_shared_example_reads_back_valid_and_unchanged_where_carried() -> None:
    documents = case_envelopes() + consent_envelopes()
    back = decoded(FhirAdapter(), encoded(FhirAdapter(), documents))
    for document in documents:
        item = back[document["local_id"]]
        assert item.ok, (document["local_id"], item.problems)
        assert item.document is not None
        assert validate_envelope(item.document) == []
        # Nothing read back differs from what was written; what FHIR does not carry is absent.
        written, read = flatten(document["data"]), flatten(item.document["data"])
        assert {k: v for k, v in read.items() if written.get(k) != v} == {}, document["local_id"]


def test_what_the_mapping_covers_round_trips_exactly() -> None:
    document = {
        "schema": "case-record/1",
        "local_id": "DIF-TAB-2024-0088",
        "child_id": "ch-41b7c0aa",
        "data": example("case-record", "guatemalan_child_with_mother_dif_shelter.json"),
    }
    data = document["data"]
    # Keep what the FHIR resources hold (Patient, RelatedPerson, EpisodeOfCare, Encounter).
    covered = {
        "case": {
            k: v for k, v in data["case"].items() if k not in ("identified_by", "referred_by")
        },
        "child": {
            k: v
            for k, v in data["child"].items()
            if k
            not in (
                "date_of_birth_verified",
                "age_group",
                "needs_interpreter",
                "ethnic_group",
                "entry_to_mexico",
            )
        },
        "related_persons": [
            {
                k: v
                for k, v in person.items()
                if k
                in (
                    "person_ref",
                    "relationship",
                    "names",
                    "sex",
                    "date_of_birth",
                    "languages",
                    "custody",
                )
            }
            for person in data["related_persons"]
        ],
        "placements": [
            {k: v for k, v in p.items() if k not in ("location", "reason_details")}
            for p in data["placements"]
        ],
    }
    covered["child"]["current_location"] = {"address": data["child"]["current_location"]["address"]}
    document["data"] = covered
    assert validate_envelope(document) == []
    [item] = FhirAdapter().decode(io.BytesIO(encoded(FhirAdapter(), [document])))
    assert item.document == document


@pytest.mark.parametrize(("name", "consent"), examples("consent"))
def test_consents_round_trip_but_for_what_fhir_does_not_carry(
    name: str, consent: dict[str, Any]
) -> None:
    document = {"schema": "consent/1", "local_id": f"CONS-{name}", "data": consent}
    [item] = FhirAdapter().decode(io.BytesIO(encoded(FhirAdapter(), [document])))
    assert item.document is not None
    expected = without_not_carried(consent)
    if "revocation" in consent:
        expected["status"] = "inactive"  # as the hub writes a revoked consent
    assert item.document["data"] == expected


@pytest.mark.parametrize(("name", "consent"), examples("consent"))
def test_a_consent_the_hub_exported_reads_back(name: str, consent: dict[str, Any]) -> None:
    resource = consent_to_fhir(Consent.from_json(consent))
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}
    if "id" not in resource:
        resource["id"] = "cons-from-hub"
    [item] = FhirAdapter().decode(io.BytesIO(json.dumps(bundle).encode()))
    assert item.ok, item.problems
    assert item.document is not None
    expected = without_not_carried(consent)
    if "revocation" in consent:
        expected["status"] = "inactive"
    # The hub writes instants in UTC and codes in canonical order: compare what they mean.
    assert Consent.from_json(item.document["data"]) == Consent.from_json(expected)


def test_a_written_consent_names_its_local_id_and_labels_its_codes_in_two_languages() -> None:
    document = {
        "schema": "consent/1",
        "local_id": "CONS-7",
        "data": {**example("consent", "mother_health_care.json"), "id": "cons-7"},
    }
    [entry] = json.loads(encoded(FhirAdapter(), [document]))["entry"]
    consent = entry["resource"]
    assert consent["id"] == "cons-7"
    assert consent["identifier"] == [
        {"system": "urn:puente:consent", "value": "cons-7"},
        {"system": "urn:puente:local-id", "value": "CONS-7"},
        # What a transaction updates it by: another agency's consent may be CONS-7 too.
        {"system": "urn:puente:record-key", "value": "consent/ch-41b7c0aa/CONS-7"},
    ]
    assert "meta" not in consent  # meta.source names a hub, and the adapter is none
    assert consent["language"] == "es"
    purpose = consent["provision"][0]["purpose"][0]
    assert (purpose["code"], purpose["display"]) == ("health_care", "Atención a la salud")
    [translation] = purpose["_display"]["extension"]
    assert {"url": "content", "valueString": "Health care"} in translation["extension"]
    # The evidence's title is for people: its kind's label and folio, not the code.
    [attachment] = consent["sourceAttachment"]
    assert attachment["title"] == "Formato firmado F-CONS-TAB-0088"


def test_a_transaction_bundle_updates_by_identifier() -> None:
    adapter = FhirAdapter(bundle_type="transaction")
    raw = encoded(adapter, case_envelopes()[:1] + consent_envelopes()[:1])
    bundle = json.loads(raw)
    assert bundle["type"] == "transaction"
    BundleR5.model_validate(bundle)
    requests = [entry["request"] for entry in bundle["entry"]]
    # By the record's key (owner agency, child, local id): two agencies' records with one
    # local id are two Patients.
    assert requests[0] == {
        "method": "PUT",
        "url": "Patient?identifier=urn:puente:record-key%7C"
        "mx.tab.dif/ch-0000x/DIF-guatemalan_child_with_mother_dif_shelter",
    }
    assert all(r["method"] == "PUT" and "?identifier=" in r["url"] for r in requests)
    # Reading a transaction Bundle back gives the same documents.
    assert all(item.ok for item in FhirAdapter().decode(io.BytesIO(raw)))


def test_a_consent_for_a_child_in_the_bundle_references_its_patient() -> None:
    case = case_envelopes()[0]
    consent = {
        "schema": "consent/1",
        "local_id": "CONS-1",
        "data": {**example("consent", "mother_health_care.json"), "child_id": case["child_id"]},
    }
    bundle = json.loads(encoded(FhirAdapter(), [case, consent]))
    patient_url = bundle["entry"][0]["fullUrl"]
    subject = bundle["entry"][-1]["resource"]["subject"]
    assert subject["reference"] == patient_url
    assert subject["identifier"] == {"system": "urn:puente:child", "value": case["child_id"]}


def test_only_case_records_and_consents_are_written() -> None:
    with pytest.raises(AdapterError) as raised:
        encoded(FhirAdapter(), [{"schema": "override/1", "local_id": "o1", "data": {}}])
    assert "override/1" in raised.value.message_en and "override/1" in raised.value.message_es


def test_rejects_are_a_bundle_of_the_rejected_entries_with_their_reasons() -> None:
    adapter = FhirAdapter()
    items = list(adapter.decode(io.BytesIO((FIXTURES / "bundle_bad_entries.json").read_bytes())))
    rejected = [item for item in items if not item.ok]
    out = io.BytesIO()
    adapter.write_rejects(rejected, out)
    bundle = json.loads(out.getvalue())
    assert bundle["resourceType"] == "Bundle"
    outcomes = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "OperationOutcome"
    ]
    assert len(outcomes) == len(rejected)
    assert "entry[1] resource:Observation" in outcomes[0]["issue"][0]["diagnostics"]
    # The rejected case travels whole: its Patient and the RelatedPerson at fault.
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 2  # the invalid one and the one with a bad relative
    # Read again as it is, the same reasons come back (OperationOutcomes are skipped).
    again = [item for item in adapter.decode(io.BytesIO(out.getvalue())) if not item.ok]
    assert sorted(p.pointer for i in again for p in i.problems) == sorted(
        p.pointer for i in rejected for p in i.problems
    )
    nothing = io.BytesIO()
    adapter.write_rejects([], nothing)
    assert nothing.getvalue() == b""


def test_rejects_of_a_transaction_are_a_valid_collection() -> None:
    adapter = FhirAdapter(bundle_type="transaction")
    written = io.BytesIO()
    adapter.encode(case_envelopes()[:1], written)
    bundle = json.loads(written.getvalue())
    assert all("request" in entry for entry in bundle["entry"])
    bundle["entry"][0]["resource"]["gender"] = "hombre"  # not a FHIR code: the case is rejected
    items = list(FhirAdapter().decode(io.BytesIO(json.dumps(bundle).encode())))
    out = io.BytesIO()
    adapter.write_rejects([item for item in items if not item.ok], out)
    rejects = json.loads(out.getvalue())
    assert rejects["type"] == "collection"
    assert not any("request" in entry for entry in rejects["entry"])  # FHIR bdl-3
    BundleR5.model_validate(rejects)


def _generated_bundle(patients: int) -> tuple[io.RawIOBase, int]:
    """A Bundle of ``patients`` Patients each with a RelatedPerson and an Encounter listed
    before it, produced as it is read; and its size in bytes."""
    entries = json.loads((FIXTURES / "bundle_r5_collection.json").read_bytes())["entry"]
    patient, relative, encounter = entries[0], entries[2], entries[5]

    def line(number: int) -> str:
        if number > patients:
            return "]}"
        url = f"urn:uuid:00000000-0000-4000-8000-{number:012d}"
        own = {
            "fullUrl": url,
            "resource": {
                **patient["resource"],
                "id": f"p{number}",
                "identifier": [{"system": "urn:puente:local-id", "value": f"L{number}"}],
            },
        }
        rel = {"resource": {**relative["resource"], "patient": {"reference": url}}}
        enc = {"resource": {**encounter["resource"], "subject": {"reference": url}}}
        text = ",".join(json.dumps(each, ensure_ascii=False) for each in (rel, enc, own))
        return ("," if number > 1 else "") + text + "\n"

    head = '{"resourceType":"Bundle","type":"collection","entry":[\n'
    size = len(head) + sum(len(line(n).encode()) for n in range(1, patients + 2))
    return GeneratedStream(head, line, patients + 1), size


def _peak_while_decoding(adapter: FhirAdapter, patients: int) -> tuple[int, int]:
    stream, size = _generated_bundle(patients)
    tracemalloc.start()
    try:
        cases = sum(1 for item in adapter.decode(stream) if item.ok)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cases == patients
    return peak, size


def test_memory_grows_by_an_index_row_per_resource_not_by_the_bundle() -> None:
    adapter = FhirAdapter()
    list(adapter.decode(io.BytesIO((FIXTURES / "bundle_r5_collection.json").read_bytes())))
    small_peak, small_size = _peak_while_decoding(adapter, 60)
    large_peak, large_size = _peak_while_decoding(adapter, 240)
    resources = 3 * (240 - 60)
    # Resources wait in a temporary file; memory keeps a few hundred bytes of index for each
    # (about 350 measured), whatever the size of the resource.
    assert (large_peak - small_peak) / resources < 600
    assert large_size - small_size > 400_000
