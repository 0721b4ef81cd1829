"""What a FHIR resource carries that the fhir adapter does not read is said, never dropped
silently (adapters/fhir_unread.py, adapters/fhir_shapes.py).

An outside check imported a Patient with ``deceasedBoolean``, a ``contact`` naming an uncle
with his phone, a ``generalPractitioner`` and an extension of another system saying "No
entregar a su tío: amenaza": read 1, stored 1, warned 0. Each left-out element is now a
warning naming its entry and FHIR path, in Spanish and English; an unknown
``modifierExtension`` (or ``implicitRules``), which by FHIR's rule changes what the resource
means, rejects its entry. The hub's own export, imported again, says nothing.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from adapters import fhir_terms as t
from adapters.base import Item
from adapters.fhir import FhirAdapter
from adapters.fhir_consent_write import write_consent
from schemas.registry import default_registry

ALERT_URL = "https://sistema-estatal.example/fhir/alerta"
ALERT = "No entregar a su tío: amenaza"
UNCLE_PHONE = "+52 961 000 0000"
FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
SUBJECT = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}


def bundle_of(*resources: dict[str, Any]) -> bytes:
    entries = [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}", "resource": resource}
        for n, resource in enumerate(resources)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def decode(raw: bytes, **options: Any) -> dict[str, Item]:
    return {item.position: item for item in FhirAdapter(**options).decode(io.BytesIO(raw))}


def patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": t.LOCAL_ID, "value": "EXP-77"}],
        "name": [{"use": "official", "given": ["Ana"], "family": "Ejemplo"}],
        "gender": "female",
        "birthDate": "2015-04-02",
        "extension": [
            {
                "url": t.NATIONALITY,
                "extension": [{"url": "code", "valueCodeableConcept": t.concept(t.ISO_3166, "GT")}],
            }
        ],
        **extra,
    }


def related(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "id": "madre",
        "patient": SUBJECT,
        "relationship": [t.concept(t.V3_ROLE, "MTH")],
        **extra,
    }


def episode(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "EpisodeOfCare", "status": "active", "patient": SUBJECT, **extra}


def encounter(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "in-progress",
        "type": [t.concept(t.PLACEMENT_TYPE, "dif_cas")],
        "subject": SUBJECT,
        "actualPeriod": {"start": "2024-03-01"},
        **extra,
    }


def consent(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": "c1",
        "status": "active",
        "subject": {"identifier": {"system": t.CHILD, "value": "ch-41b7c0aa"}},
        "grantor": [
            {
                "reference": "#rp",
                "extension": [
                    t.extension(t.GRANTOR_TYPE_EXT, "Coding", t.coding(t.GRANTOR_TYPE, "parent"))
                ],
            }
        ],
        "contained": [{"resourceType": "RelatedPerson", "id": "rp", "patient": SUBJECT}],
        "grantee": [t.identified("Organization", t.AGENCY, "mx.tab.salud")],
        "decision": "permit",
        **extra,
    }


def warnings_of(item: Item) -> dict[str, Any]:
    return {w.pointer: w for w in getattr(item, "warnings", ())}


def left_out(item: Item) -> set[str]:
    """The element paths of the warnings that say something was left out."""
    return {p for p, w in warnings_of(item).items() if "left out" in w.en}


# -- 1. the outside check's Bundle ---------------------------------------------------------


def test_the_reported_patient_is_imported_with_a_warning_for_each_element_left_out() -> None:
    reported = patient(
        deceasedBoolean=True,
        contact=[
            {
                "relationship": [{"text": "tío"}],
                "name": {"family": "Ejemplo", "given": ["Tomás"]},
                "telecom": [{"system": "phone", "value": UNCLE_PHONE}],
            }
        ],
        generalPractitioner=[{"display": "Dra. Ejemplo"}],
    )
    reported["extension"].append({"url": ALERT_URL, "valueString": ALERT})
    [item] = decode(bundle_of(reported)).values()
    assert item.ok, item.problems  # still imported: what is read is right
    warned = warnings_of(item)
    assert set(warned) == {
        "resource:Patient.deceasedBoolean",
        "resource:Patient.contact",
        "resource:Patient.generalPractitioner",
        f"resource:Patient.extension[url={ALERT_URL}]",
    }
    for warning in warned.values():
        assert warning.es.startswith("entry[0]: Patient.")
        assert warning.en.startswith("entry[0]: Patient.")
        assert "se dejó fuera" in warning.es and "left out" in warning.en
        # A warning is printed and listed: it names elements, never the child's data.
        for said in (warning.es, warning.en):
            assert ALERT not in said and UNCLE_PHONE not in said and "Tomás" not in said
    unknown = warned[f"resource:Patient.extension[url={ALERT_URL}]"]
    assert "extensión que Puente no conoce" in unknown.es
    assert "an extension Puente does not know" in unknown.en


# -- 2. each resource, in part -------------------------------------------------------------


def test_parts_of_elements_read_in_part_are_said_with_the_entry_they_came_from() -> None:
    child = patient(
        telecom=[
            {"system": "phone", "value": "+52 961 111 1111"},
            {"system": "phone", "value": "+52 961 222 2222", "period": {"end": "2020-01-01"}},
            {"system": "phone", "value": "+52 961 333 3333"},
            {"system": "fax", "value": "+52 961 444 4444"},
            {"system": "email", "value": "a@example.org", "use": "old"},
        ],
        address=[{"city": "Tapachula", "use": "old"}, {"city": "Tuxtla"}],
        identifier=[
            {"system": t.LOCAL_ID, "value": "EXP-77", "use": "official"},
            {"system": "urn:x", "value": "9", "period": {"start": "2020-01-01"}},
        ],
        communication=[{"language": t.concept(t.BCP_47, "es"), "preferred": True}],
    )
    child["name"].append({"use": "old", "family": "Anterior"})
    child["name"].append({"use": "nickname", "text": "Anita"})
    resources = [
        child,
        related(
            photo=[{"contentType": "image/png"}],
            communication=[{"language": t.concept(t.BCP_47, "es"), "preferred": True}],
        ),
        episode(statusHistory=[{"status": "planned", "period": {}}]),
        encounter(
            status="cancelled",
            plannedStartDate="2024-02-01",
            participant=[{"type": [{"text": "cuidadora"}]}],
            location=[{"location": {"display": "Albergue"}}, {"location": {"display": "Otro"}}],
        ),
    ]
    [item] = decode(bundle_of(*resources)).values()
    assert item.ok, item.problems
    assert left_out(item) == {
        "resource:Patient.telecom.period",
        "resource:Patient.telecom[system=phone]",  # the third phone
        "resource:Patient.telecom[system=fax]",
        "resource:Patient.telecom.use",  # an old email, read as current
        "resource:Patient.address",  # the second: only the first is read
        "resource:Patient.address.use",
        "resource:Patient.identifier.period.start",
        "resource:Patient.name[use=old]",
        "resource:RelatedPerson.photo",
        "resource:RelatedPerson.communication.preferred",
        "resource:EpisodeOfCare.statusHistory",
        "resource:Encounter.status",  # cancelled: stored as a placement all the same
        "resource:Encounter.plannedStartDate",
        "resource:Encounter.participant.type",
        "resource:Encounter.location",
    }
    warned = warnings_of(item)
    assert warned["resource:RelatedPerson.photo"].en.startswith("entry[1]: ")
    assert warned["resource:EpisodeOfCare.statusHistory"].es.startswith("entry[2]: ")
    assert warned["resource:Encounter.status"].en.startswith("entry[3]: ")
    assert "only the first one is read" in warned["resource:Patient.address"].en
    assert "solo se lee el primero" in warned["resource:Patient.address"].es
    assert "only two phones and one email" in warned["resource:Patient.telecom[system=fax]"].en


def test_extensions_on_values_and_contained_resources_are_checked_too() -> None:
    child = patient(
        _birthDate={
            "extension": [{"url": "http://example.org/birth-time", "valueTime": "10:00:00"}]
        },
        _gender={"extension": [{"url": t.DATA_ABSENT_REASON, "valueCode": "unknown"}]},
        contained=[
            {
                "resourceType": "RelatedPerson",
                "id": "tio",
                "patient": {"reference": "Patient/p1"},
                "relationship": [t.concept(t.V3_ROLE, "UNCLE")],
                "period": {"start": "2020-01-01"},
            },
            {
                "resourceType": "Flag",
                "id": "alerta",
                "status": "active",
                "code": {"text": "!"},
                "subject": {"reference": "Patient/p1"},
            },
        ],
    )
    del child["gender"]
    [item] = decode(bundle_of(child)).values()
    assert item.ok, item.problems
    assert left_out(item) == {
        "resource:Patient._birthDate.extension[url=http://example.org/birth-time]",
        "resource:Patient.contained[0].period",
        "resource:Patient.contained[1]",
    }
    assert "Flag" in warnings_of(item)["resource:Patient.contained[1]"].en


def test_what_carries_nothing_a_record_holds_is_not_said() -> None:
    child = patient(
        meta={"versionId": "3", "lastUpdated": "2024-05-02T10:00:00-07:00"},
        text={"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>Ana</div>"},
        language="es-MX",
        active=True,
        telecom=[{"system": "phone", "value": "+52 961 111 1111", "use": "mobile", "rank": 1}],
        address=[{"city": "Tapachula", "use": "home", "type": "physical"}],
    )
    child["name"][0]["text"] = "Ana Ejemplo"
    child["identifier"][0]["use"] = "official"
    resources = [
        child,
        episode(_status={"extension": [{"url": t.DATA_ABSENT_REASON, "valueCode": "unknown"}]}),
        # R4's required class, the episode the export names, a status that says it goes on.
        encounter(episodeOfCare=[{"reference": "urn:uuid:x"}]),
    ]
    resources[2]["class"] = [{"text": "home health"}]
    [item] = decode(bundle_of(*resources)).values()
    assert item.ok, item.problems
    assert warnings_of(item) == {}


def test_a_patient_no_longer_active_is_said() -> None:
    [item] = decode(bundle_of(patient(active=False))).values()
    assert left_out(item) == {"resource:Patient.active"}


def test_consent_elements_left_out_are_warnings_of_the_consent() -> None:
    given = consent(
        controller=[t.identified("Organization", t.AGENCY, "mx.tab.dif")],
        extension=[{"url": ALERT_URL, "valueString": "x"}],
        policyBasis={"url": "https://otra.example/politica"},
        provision=[{"code": [{"text": "x"}], "purpose": [t.coding(t.PURPOSE, "health_care")]}],
    )
    given["contained"][0]["name"] = [{"family": "Ejemplo"}]
    items = decode(bundle_of(given))
    assert items["entry[0]"].ok, items["entry[0]"].problems
    assert left_out(items["entry[0]"]) == {
        "resource:Consent.controller",
        f"resource:Consent.extension[url={ALERT_URL}]",
        "resource:Consent.policyBasis",
        "resource:Consent.provision.code",
        "resource:Consent.contained[0].name",
    }
    warning = warnings_of(items["entry[0]"])["resource:Consent.controller"]
    assert "the consent is imported without it" in warning.en
    assert "el consentimiento se importa sin ello" in warning.es


def test_an_r4_consent_of_another_scope_is_said_and_the_shipped_r4_bundle_says_nothing_new() -> (
    None
):
    fixture = json.loads((FIXTURES / "bundle_r4_searchset.json").read_text(encoding="utf-8"))
    options = {"local_id_system": "https://fhir.dif-bc.example/sid/expediente"}
    items = decode(json.dumps(fixture).encode(), **options)
    assert warnings_of(items["entry[5]"]) == {}
    # The case's only warning is the Encounter that is no placement (test_fhir.py).
    assert set(warnings_of(items["entry[0]"])) == {"resource:Encounter"}
    r4 = fixture["entry"][5]["resource"]
    r4["scope"] = t.concept("http://terminology.hl7.org/CodeSystem/consentscope", "research")
    r4["provision"]["purpose"] = [t.coding(t.PURPOSE, "statistics")]
    again = decode(json.dumps(fixture).encode(), **options)
    # The base provision's own purpose is not read (only its provisions').
    assert left_out(again["entry[5]"]) == {
        "resource:Consent.scope",
        "resource:Consent.provision.purpose",
    }


# -- 3. a modifier the adapter does not read rejects its entry -----------------------------

MODIFIER = {"url": "https://otro.example/no-vigente", "valueBoolean": True}


def test_an_unknown_modifier_extension_on_a_patient_rejects_it_and_its_parts_say_so() -> None:
    items = decode(bundle_of(patient(modifierExtension=[MODIFIER]), related()))
    child = items["entry[0]"]
    assert not child.ok and child.document is None
    [problem] = child.problems
    assert problem.pointer == f"resource:Patient.modifierExtension[url={MODIFIER['url']}]"
    assert "modifierExtension" in problem.es and "no se importa" in problem.es
    assert "changes the meaning" in problem.en and "not imported" in problem.en
    assert problem.es != problem.en
    # Its relative is told the Patient was rejected, not that it is missing.
    assert "which was rejected" in items["entry[1]"].problems[0].en


@pytest.mark.parametrize(
    ("resources", "pointer"),
    [
        (
            [patient(), encounter(modifierExtension=[MODIFIER])],
            "entry[1].resource:Encounter.modifierExtension",
        ),
        (
            [patient(), related(modifierExtension=[MODIFIER])],
            "entry[1].resource:RelatedPerson.modifierExtension",
        ),
        (
            [patient(), episode(modifierExtension=[MODIFIER])],
            "entry[1].resource:EpisodeOfCare.modifierExtension",
        ),
        (
            [
                patient(
                    communication=[{"language": {"text": "es"}, "modifierExtension": [MODIFIER]}]
                )
            ],
            "resource:Patient.communication.modifierExtension",
        ),
        (
            [patient(contained=[related(modifierExtension=[MODIFIER])])],
            "resource:Patient.contained[0].modifierExtension",
        ),
    ],
)
def test_an_unknown_modifier_on_a_part_holds_the_whole_case_back(
    resources: list[dict[str, Any]], pointer: str
) -> None:
    items = decode(bundle_of(*resources))
    case = items["entry[0]"]
    assert not case.ok and case.document is None
    assert [p.pointer for p in case.problems] == [f"{pointer}[url={MODIFIER['url']}]"]


def test_an_unknown_modifier_on_a_consent_or_its_provision_rejects_the_consent() -> None:
    for given in (
        consent(modifierExtension=[MODIFIER]),
        consent(provision=[{"modifierExtension": [MODIFIER]}]),
    ):
        [item] = decode(bundle_of(given)).values()
        assert not item.ok
        assert any(".modifierExtension[url=" in p.pointer for p in item.problems)


def test_implicit_rules_reject_the_resource() -> None:
    [item] = decode(bundle_of(patient(implicitRules="https://otro.example/reglas"))).values()
    assert not item.ok
    [problem] = item.problems
    assert problem.pointer == "resource:Patient.implicitRules"
    assert "implicitRules" in problem.es and "implicitRules" in problem.en


def test_a_modifier_the_adapter_reads_is_no_fault() -> None:
    status = t.extension(t.CASE_STATUS_EXT, "Code", "closed")
    reason = t.extension(t.CLOSURE_REASON_EXT, "Code", "family_reunification")
    decision = t.extension(t.PROVISION_DECISION, "Code", "permit")
    items = decode(
        bundle_of(
            patient(),
            episode(
                modifierExtension=[status],
                extension=[reason],
                period={"start": "2024-01-01", "end": "2024-02-01"},
            ),
            consent(provision=[{"modifierExtension": [decision]}]),
        )
    )
    assert items["entry[0]"].ok, items["entry[0]"].problems
    assert items["entry[0]"].document is not None
    assert items["entry[0]"].document["data"]["case"]["status"] == "closed"
    assert items["entry[2]"].ok, items["entry[2]"].problems


def test_a_modifier_inside_an_element_left_out_is_told_with_the_element() -> None:
    contact = {"name": {"family": "Ejemplo"}, "modifierExtension": [MODIFIER]}
    [item] = decode(bundle_of(patient(contact=[contact]))).values()
    assert item.ok, item.problems
    assert left_out(item) == {"resource:Patient.contact"}


# -- 4. the hub's own export says nothing --------------------------------------------------


def _examples(schema: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.stem, json.loads(path.read_text(encoding="utf-8")))
        for path in default_registry().example_paths(schema, "1")
    ]


def _every_consent_feature() -> dict[str, Any]:
    """A consent with what consent/1 holds that the examples lack: a provision of its
    parent's decision (a modifierExtension), record ids, evidence digest, views id."""
    data = copy.deepcopy(dict(_examples("consent"))["mother_health_care"])
    data["id"] = "cons-todo-1"
    data["provision"][0]["provision"] = [
        {"decision": "permit", "record_ids": ["rec-1"], "period": {"end": "2024-05-01T00:00:00Z"}}
    ]
    data["source_document"]["sha256"] = "a" * 64
    data["child_views"]["views_id"] = "vw-1"
    data["recorded_by"] = {
        "agency_id": "mx.tab.dif",
        "person_id": "co-1",
        "role": "consent_officer",
    }
    return data


def test_the_hubs_own_fhir_export_imported_again_gives_no_warning() -> None:
    cases = [
        {"schema": "case-record/1", "local_id": f"L-{n}", "child_id": f"ch-{i:08x}", "data": d}
        for i, (n, d) in enumerate(_examples("case-record"))
    ]
    consents = [
        {"schema": "consent/1", "local_id": f"C-{n}", "data": d}
        for n, d in [*_examples("consent"), ("todo", _every_consent_feature())]
    ]
    for bundle_type in ("collection", "transaction"):
        out = io.BytesIO()
        FhirAdapter(bundle_type=bundle_type).encode([*cases, *consents], out)
        items = list(FhirAdapter().decode(io.BytesIO(out.getvalue())))
        bundle = json.loads(out.getvalue())
        positions = {
            f"entry[{n}]"
            for n, entry in enumerate(bundle["entry"])
            if entry["resource"]["resourceType"] == "Patient"
        }
        assert len(items) == len(cases) + len(consents)
        assert all(item.ok for item in items), [(i.position, i.problems) for i in items]
        assert [w for item in items for w in getattr(item, "warnings", ())] == []
        # The cases come back whole (consents keep what consent/1 writes to FHIR).
        assert [item.document for item in items if item.position in positions] == cases


def test_the_hubs_consent_answer_in_fhir_read_back_gives_no_warning() -> None:
    """GET /v1/consents/{id}?format=fhir: the same writer, with meta.source and the date."""
    data = {**_every_consent_feature(), "recorded_at": "2024-02-20T09:00:00-06:00"}
    written = write_consent(data, meta_source="https://puente.example", local_id="C-1")
    [item] = decode(bundle_of(written)).values()
    assert item.ok, item.problems
    assert warnings_of(item) == {}
