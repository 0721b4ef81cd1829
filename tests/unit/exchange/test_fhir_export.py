"""Consents exported as FHIR R5 Consent and audit entries as FHIR R5 AuditEvent.

Every resource is checked with the ``fhir.resources`` R5 models, and the mapped values are
checked one by one: validity alone would pass an export that says the wrong thing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.auditevent import AuditEvent
from fhir.resources.consent import Consent as FhirConsent

from adapters.fhir_terms import EXTENSION_BASE, TRANSLATION
from consent.model import Consent
from consent.vocabulary import CATEGORIES, CATEGORY_LABELS, PURPOSE_LABELS, PURPOSES
from exchange.audit_log import build_entry
from exchange.fhir_export import audit_entry_to_fhir, consent_to_fhir
from schemas.registry import default_registry

EXAMPLES = Path(__file__).parents[3] / "schemas" / "examples" / "consent" / "1" / "valid"
DECISION_EXT = EXTENSION_BASE + "provision-decision"
ACTION_LABELS = default_registry().document("common", "1")["$defs"]["action"]["x-labels"]
SHA = "ab" * 32


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def export_consent(document: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Parse through the consent model, export, and check with the R5 model."""
    resource = consent_to_fhir(Consent.from_json(document), **options)
    FhirConsent.model_validate(resource)
    json.dumps(resource)  # plain JSON, nothing a route would have to convert
    return resource


def export_entry(entry: dict[str, Any], **options: Any) -> dict[str, Any]:
    validator = default_registry().validator("audit-event", "1")
    assert validator.is_valid(entry), list(validator.errors(entry))
    resource = audit_entry_to_fhir(entry, **options)
    AuditEvent.model_validate(resource)
    json.dumps(resource)
    return resource


def codes(codings: list[dict[str, Any]], system: str) -> list[str]:
    return [c["code"] for c in codings if c["system"] == system]


def english(element: dict[str, Any]) -> str:
    (translation,) = element["extension"]
    assert translation["url"] == TRANSLATION
    parts = {part["url"]: part for part in translation["extension"]}
    assert parts["lang"]["valueCode"] == "en"
    return str(parts["content"]["valueString"])


def contained(resource: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    local_id = reference["reference"].removeprefix("#")
    (found,) = [r for r in resource["contained"] if r["id"] == local_id]
    return found


def stated_decision(provision: dict[str, Any]) -> tuple[str, bool]:
    """The provision's own decision and whether it is a modifier (not R5's implied flip)."""
    for key, modifier in (("extension", False), ("modifierExtension", True)):
        for ext in provision.get(key, []):
            if ext["url"] == DECISION_EXT:
                return ext["valueCode"], modifier
    raise AssertionError("provision without its decision")


# --- Consent ------------------------------------------------------------------------------------


def test_parent_consent_maps_subject_grantor_period_and_provisions() -> None:
    resource = export_consent(example("mother_health_care"))

    assert resource["resourceType"] == "Consent"
    assert resource["status"] == "active"
    assert resource["decision"] == "deny"
    assert resource["subject"]["identifier"] == {
        "system": "urn:puente:child",
        "value": "ch-41b7c0aa",
    }
    assert resource["period"] == {"start": "2024-02-20T15:00:00Z", "end": "2024-08-20T15:00:00Z"}
    (grantee,) = resource["grantee"]
    assert grantee["type"] == "Organization"
    assert grantee["identifier"] == {"system": "urn:puente:agency", "value": "mx.tab.salud"}

    (grantor,) = resource["grantor"]
    relative = contained(resource, grantor)
    assert relative["resourceType"] == "RelatedPerson"
    assert relative["patient"] == resource["subject"]
    assert relative["identifier"] == [
        {"system": "urn:puente:related-person", "value": "ch-41b7c0aa/madre"}
    ]
    (verification,) = resource["verification"]
    assert verification["verified"] is True
    assert verification["verifiedWith"]["reference"] == grantor["reference"]
    basis_codes = codes(resource["regulatoryBasis"][0]["coding"], "urn:puente:policy-basis")
    assert basis_codes == ["lgdnna_parental_authority"]
    assert resource["sourceReference"][0]["identifier"]["value"] == "F-CONS-TAB-0088"

    health, no_statistics = resource["provision"]
    assert health["actor"][0]["reference"]["identifier"]["value"] == "mx.tab.salud"
    assert [codes(a["coding"], "urn:puente:action") for a in health["action"]] == [["read"]]
    hl7_action = "http://terminology.hl7.org/CodeSystem/consentaction"
    assert codes(health["action"][0]["coding"], hl7_action) == ["access"]
    assert codes(health["purpose"], "urn:puente:purpose") == ["health_care"]
    assert codes(health["securityLabel"], "urn:puente:data-category") == ["identity", "health"]
    assert codes(no_statistics["purpose"], "urn:puente:purpose") == ["statistics"]
    assert "securityLabel" not in no_statistics  # absent list: every category
    # A permit inside the base deny is R5's flip; a deny inside it is not, so it is a modifier
    # and R5 readers stop there.
    assert stated_decision(health) == ("permit", False)
    assert stated_decision(no_statistics) == ("deny", True)


def test_procuraduria_grantor_nested_provisions_and_evidence() -> None:
    document = example("procuraduria_suplencia_unaccompanied")
    resource = export_consent(document, hub_base_url="https://hub.chp.example")

    assert resource["meta"] == {"source": "https://hub.chp.example"}
    assert resource["date"] == "2024-03-14"
    assert resource["decision"] == "deny"
    (grantor,) = resource["grantor"]
    officer = contained(resource, grantor)
    assert officer["resourceType"] == "PractitionerRole"
    assert officer["organization"]["identifier"]["value"] == "mx.chp.procuraduria"
    assert officer["practitioner"]["identifier"] == {
        "system": "urn:puente:person",
        "value": "pp-chp-021",
    }
    grantor_codes = {ext["url"]: ext["valueCoding"]["code"] for ext in grantor["extension"]}
    assert grantor_codes == {
        EXTENSION_BASE + "grantor-type": "procuraduria",
        EXTENSION_BASE + "grantor-representation": "suplencia",
    }
    assert "verifiedWith" not in resource["verification"][0]  # an authority, not a relative
    manager = contained(resource, resource["manager"][0])
    assert codes(manager["code"][0]["coding"], "urn:puente:role") == ["consent_officer"]
    # The lawyers of one organisation: a role with the agency it belongs to.
    role_grantee = contained(resource, resource["grantee"][1])
    assert set(role_grantee) == {"resourceType", "id", "code", "organization"}
    assert codes(role_grantee["code"][0]["coding"], "urn:puente:role") == ["legal_representative"]
    assert resource["regulatoryBasis"][0]["text"].startswith("LGDNNA art. 106")
    (attachment,) = resource["sourceAttachment"]
    assert {
        "url": EXTENSION_BASE + "sha256",
        "valueString": document["source_document"]["sha256"],
    } in attachment["extension"]
    assert attachment["title"] == "Acuerdo de la Procuraduría PP-CHP-2024-0211"
    assert english(attachment["_title"]) == "Procuraduría resolution PP-CHP-2024-0211"

    comar, lawyer, dif = resource["provision"]
    assert all(stated_decision(p) == ("permit", False) for p in (comar, lawyer, dif))
    (clinics_lawyers,) = lawyer["actor"]  # the role, and the organisation holding it
    assert clinics_lawyers["reference"] == {
        "type": "Organization",
        "identifier": {"system": "urn:puente:agency", "value": "mx.chp.clinica-juridica"},
    }
    assert clinics_lawyers["role"]["coding"][0]["code"] == "legal_representative"
    (nested,) = lawyer["provision"]
    assert stated_decision(nested) == ("deny", False)
    assert codes(nested["securityLabel"], "urn:puente:data-category") == ["contact_location"]
    assert codes(nested["purpose"], "urn:puente:purpose") == ["legal_representation"]
    assert [codes(a["coding"], "urn:puente:action") for a in dif["action"]] == [
        ["refer"],
        ["transfer"],
    ]
    assert dif["period"] == {"end": "2024-10-01T05:59:59Z"}


def test_revoked_consent_is_inactive_with_its_revocation() -> None:
    resource = export_consent(example("revoked"))

    assert resource["status"] == "inactive"
    assert resource["id"] == "cons-2023-00412"
    assert resource["identifier"] == [{"system": "urn:puente:consent", "value": "cons-2023-00412"}]
    (revocation,) = [e for e in resource["extension"] if e["url"].endswith("consent-revocation")]
    parts = {part["url"]: part for part in revocation["extension"]}
    assert parts["revokedAt"]["valueDateTime"] == "2023-07-01T19:00:00Z"
    assert parts["revokedBy"]["valueReference"]["identifier"]["value"] == "co-chh-001"
    assert parts["revokedByRole"]["valueCoding"]["code"] == "consent_officer"
    assert parts["reason"]["valueString"].startswith("La tutora revocó")
    (views,) = [e for e in resource["extension"] if e["url"].endswith("child-views")]
    view_parts = {part["url"]: part for part in views["extension"]}
    assert view_parts["position"]["valueCoding"]["code"] == "objection"
    assert view_parts["heardOn"]["valueDate"] == "2023-06-05"


def test_a_revocation_makes_even_an_active_consent_inactive() -> None:
    document = example("mother_health_care")
    assert export_consent(document)["status"] == "active"
    document["revocation"] = {"revoked_at": "2024-03-01T10:00:00-06:00"}
    assert export_consent(document)["status"] == "inactive"


@pytest.mark.parametrize(
    ("status", "fhir_status"),
    [("draft", "draft"), ("not_done", "not-done"), ("entered_in_error", "entered-in-error")],
)
def test_statuses_use_the_r5_spelling(status: str, fhir_status: str) -> None:
    document = example("mother_health_care")
    document["status"] = status
    assert export_consent(document)["status"] == fhir_status


def test_deep_nesting_records_and_decisions_that_flip_each_level() -> None:
    document = {
        "id": "cons_2024_7",  # an underscore: a fine Puente id, not a FHIR resource id
        "status": "active",
        "child_id": "ch-00000001",
        "grantor": {"type": "child"},
        "decision": "deny",
        "provision": [
            {
                "decision": "permit",
                "actor": [
                    {"agency_id": "mx.son.dif", "person_id": "cw-son-1", "role": "caseworker"}
                ],
                "provision": [
                    {
                        "decision": "deny",
                        "data_category": ["health"],
                        "provision": [
                            {"decision": "permit", "record_ids": ["rec-9", "rec-2"]},
                            {"decision": "deny", "purpose": ["statistics"]},
                        ],
                    }
                ],
            }
        ],
    }
    resource = export_consent(document)

    assert "id" not in resource
    assert resource["identifier"][0]["value"] == "cons_2024_7"
    assert resource["grantor"][0]["identifier"] == resource["subject"]["identifier"]
    (top,) = resource["provision"]
    actor = top["actor"][0]
    assert actor["role"]["coding"][0]["code"] == "caseworker"
    person_at_agency = contained(resource, actor["reference"])
    assert person_at_agency["practitioner"]["identifier"]["value"] == "cw-son-1"
    assert "code" not in person_at_agency  # the role is stated once, on the provision actor
    (middle,) = top["provision"]
    records, same = middle["provision"]
    assert [stated_decision(p) for p in (top, middle, records)] == [
        ("permit", False),
        ("deny", False),
        ("permit", False),
    ]
    assert stated_decision(same) == ("deny", True)  # deny inside deny: not R5's flip
    assert records["data"] == [
        {
            "meaning": "instance",
            "reference": {"identifier": {"system": "urn:puente:record", "value": rid}},
        }
        for rid in ("rec-2", "rec-9")
    ]


def test_court_grantor_without_agency_is_named_by_its_kind() -> None:
    document = example("mother_health_care")
    document["grantor"] = {"type": "court"}
    (grantor,) = export_consent(document)["grantor"]
    assert grantor["display"] == "Autoridad judicial"
    assert "reference" not in grantor and "identifier" not in grantor


def test_codes_carry_the_vocabulary_labels_in_spanish_and_english() -> None:
    document = example("mother_health_care")
    document["provision"] = [
        {
            "decision": "deny",
            "purpose": list(PURPOSES),
            "data_category": list(CATEGORIES),
            "action": list(ACTION_LABELS),
        }
    ]
    (provision,) = export_consent(document)["provision"]

    assert codes(provision["purpose"], "urn:puente:purpose") == list(PURPOSES)
    assert codes(provision["securityLabel"], "urn:puente:data-category") == list(CATEGORIES)
    for coding in provision["purpose"]:
        assert (coding["display"], english(coding["_display"])) == PURPOSE_LABELS[coding["code"]]
    for coding in provision["securityLabel"]:
        assert (coding["display"], english(coding["_display"])) == CATEGORY_LABELS[coding["code"]]
    # A display stands alone, so actions carry the schema's capitalised labels ("Consultar"),
    # not the vocabulary's lower-case ones, which are written to go inside a sentence.
    assert [a["coding"][0]["code"] for a in provision["action"]] == list(ACTION_LABELS)
    for action in provision["action"]:
        coding = action["coding"][0]
        label = ACTION_LABELS[coding["code"]]
        assert (coding["display"], english(coding["_display"])) == (label["es"], label["en"])
    assert provision["action"][0]["coding"][0]["display"] == "Consultar"


def test_export_is_repeatable() -> None:
    # Contained ids are numbered per export, and no export alters what the next one sees.
    consent = Consent.from_json(example("procuraduria_suplencia_unaccompanied"))
    assert consent_to_fhir(consent) == consent_to_fhir(consent)


# --- AuditEvent ---------------------------------------------------------------------------------


def test_record_push_maps_agent_entity_digest_and_log_index() -> None:
    entry = build_entry(
        action="record.pushed",
        outcome="success",
        actor_agency="mx.chp.dif",
        actor_person="cw-chp-0142",
        actor_role="caseworker",
        child_id="ch-7f3a9d2e",
        record_id="rec-00017",
        record_version=1,
        body_sha256=SHA,
        request_id="req-42",
        time=None,
    )
    resource = export_entry(entry, index=2**40, hub_id="mx.chp")

    assert resource["id"] == str(2**40)
    extensions = {e["url"]: e for e in resource["extension"]}
    assert extensions[EXTENSION_BASE + "audit-log-index"]["valueInteger64"] == 2**40
    assert extensions[EXTENSION_BASE + "request-id"]["valueString"] == "req-42"
    assert resource["action"] == "C"
    assert resource["severity"] == "informational"
    assert resource["recorded"] == entry["time"]
    assert resource["category"][0]["coding"][0]["code"] == "110107"  # Import
    assert resource["code"]["coding"][0]["code"] == "record_pushed"
    assert resource["code"]["coding"][0]["display"] == "Expediente enviado"
    assert english(resource["code"]["coding"][0]["_display"]) == "Record pushed"
    assert resource["outcome"]["code"]["code"] == "0"
    assert resource["patient"]["identifier"]["value"] == "ch-7f3a9d2e"
    assert resource["source"]["observer"]["identifier"] == {
        "system": "urn:puente:hub",
        "value": "mx.chp",
    }

    (agent,) = resource["agent"]
    assert agent["requestor"] is True
    assert agent["role"][0]["coding"][0]["code"] == "caseworker"
    who = contained(resource, agent["who"])
    assert who["organization"]["identifier"]["value"] == "mx.chp.dif"
    assert who["practitioner"]["identifier"]["value"] == "cw-chp-0142"

    child, record = resource["entity"]
    assert child["what"]["identifier"]["value"] == "ch-7f3a9d2e"
    assert record["what"]["identifier"] == {"system": "urn:puente:record", "value": "rec-00017"}
    details = {d["type"]["coding"][0]["code"]: d for d in record["detail"]}
    assert details["body_sha256"]["valueString"] == SHA
    assert details["record_version"]["valueInteger"] == 1


def test_a_later_version_push_is_an_update_and_the_entry_hub_is_the_observer() -> None:
    entry = build_entry(
        action="record.pushed",
        outcome="success",
        actor_agency="mx.chp.dif",
        record_id="rec-00017",
        record_version=3,
        body_sha256=SHA,
    )
    entry["hub"] = "mx.fed"
    resource = export_entry(entry, hub_id="ignored.when.entry.says")
    assert resource["action"] == "U"
    assert "id" not in resource and "extension" not in resource
    assert resource["source"]["observer"]["identifier"]["value"] == "mx.fed"
    (agent,) = resource["agent"]
    assert agent["who"]["type"] == "Organization"  # an agency alone is a logical reference


def test_denied_read_carries_basis_purpose_and_severity() -> None:
    entry = build_entry(
        action="record.read",
        outcome="denied",
        actor_agency="mx.fed.inm",
        actor_person="of-inm-3",
        purpose="migration_procedure",
        child_id="ch-7f3a9d2e",
        record_id="rec-00017",
        decision_basis="hard_rule",
        rule_ids=["no_protection_data_to_immigration"],
    )
    resource = export_entry(entry)

    assert resource["action"] == "R"
    assert resource["severity"] == "notice"
    assert resource["outcome"]["code"]["code"] == "4"
    detail = resource["outcome"]["detail"]
    assert codes(detail[0]["coding"], "urn:puente:audit-outcome") == ["denied"]
    assert english(detail[0]["coding"][0]["_display"]) == "Denied"
    assert codes(detail[1]["coding"], "urn:puente:decision-basis") == ["hard_rule"]
    assert codes(detail[2]["coding"], "urn:puente:rule") == ["no_protection_data_to_immigration"]
    (purpose,) = resource["authorization"]
    assert codes(purpose["coding"], "urn:puente:purpose") == ["migration_procedure"]
    assert purpose["coding"][0]["display"] == PURPOSE_LABELS["migration_procedure"][0]
    verdict = resource["entity"][2]
    result = verdict["detail"][0]["valueCodeableConcept"]["coding"][0]
    assert result["code"] == "deny"
    assert resource["source"]["observer"] == {"type": "Device", "display": "Puente"}


def test_permitted_read_names_the_consents_it_rests_on() -> None:
    entry = build_entry(
        action="record.read",
        outcome="success",
        actor_agency="mx.tab.salud",
        purpose="health_care",
        record_id="rec-1",
        decision_basis="consent",
        consent_ids=["cons-b", "cons-a"],
    )
    resource = export_entry(entry)
    consents = [e["what"] for e in resource["entity"] if e.get("what", {}).get("type") == "Consent"]
    assert [c["identifier"] for c in consents] == [
        {"system": "urn:puente:consent", "value": "cons-a"},
        {"system": "urn:puente:consent", "value": "cons-b"},
    ]


def test_failure_is_an_error() -> None:
    entry = build_entry(
        action="federation.envelope_sent",
        outcome="failure",
        actor_agency="mx.chp.dif",
        detail="peer unreachable",
    )
    resource = export_entry(entry)
    assert resource["severity"] == "error"
    assert resource["outcome"]["code"]["code"] == "8"
    assert codes(resource["outcome"]["detail"][1]["coding"], "urn:puente:reason") == [
        "peer_unreachable"
    ]
    assert resource["action"] == "E"
    assert resource["category"][0]["coding"][0]["code"] == "110106"  # Export


@pytest.mark.parametrize(
    ("action", "crude"),
    [
        ("agency.registered", "C"),
        ("agency.updated", "U"),
        ("agency.key_added", "C"),
        ("agency.key_revoked", "U"),
        ("consent.revoked", "U"),
        ("child.searched", "E"),
    ],
)
def test_crude_action_of_administrative_and_consent_changes(action: str, crude: str) -> None:
    entry = build_entry(action=action, outcome="success", actor_agency="mx.fed.sndif")
    assert export_entry(entry)["action"] == crude


def test_object_target_client_and_decision_parts_of_a_handwritten_entry() -> None:
    entry = {
        "time": "2024-05-01T12:00:00Z",
        "hub": "mx.chp",
        "action": "record_referred",
        "outcome": "success",
        "actor": {"agency_id": "mx.chp.dif", "role": "caseworker", "client_id": "sigcas-chp"},
        "purpose": "alternative_care",
        "child_id": "ch-7f3a9d2e",
        "record_id": "rec-00017",
        "record_version": 2,
        "schema": "case/1",
        "body_sha256": SHA,
        "object": {"type": "referral", "id": "ref-88"},
        "target": {"hub": "mx.cmx"},
        "decision": {
            "id": "dec-5",
            "result": "permit",
            "basis": "override",
            "categories": ["identity", "placement"],
            "grant_ids": ["gr-1"],
            "override_id": "ov-3",
        },
    }
    resource = export_entry(entry, index=7)

    requestor, client, recipient = resource["agent"]
    # An agency without a person is the agency itself; the role is the agent's role.
    assert requestor["who"]["identifier"] == {"system": "urn:puente:agency", "value": "mx.chp.dif"}
    assert requestor["role"][0]["coding"][0]["code"] == "caseworker"
    assert client["who"]["identifier"] == {
        "system": "urn:puente:oauth-client",
        "value": "sigcas-chp",
    }
    assert client["requestor"] is False
    assert recipient["type"]["coding"][0]["code"] == "IRCP"
    assert recipient["who"]["identifier"] == {"system": "urn:puente:hub", "value": "mx.cmx"}

    by_system = {e["what"]["identifier"]["system"]: e for e in resource["entity"] if "what" in e}
    record = by_system["urn:puente:record"]
    details = {d["type"]["coding"][0]["code"]: d for d in record["detail"]}
    assert details["schema"]["valueString"] == "case/1"
    assert by_system["urn:puente:referral"]["what"]["display"] == "Canalización"
    verdict = by_system["urn:puente:decision"]
    assert [c["coding"][0]["code"] for c in verdict["securityLabel"]] == ["identity", "placement"]
    assert by_system["urn:puente:grant"]["what"]["type"] == "Consent"
    assert "type" not in by_system["urn:puente:override"]["what"]


ACTIONS = default_registry().document("audit-event", "1")["properties"]["action"]


@pytest.mark.parametrize("action", ACTIONS["enum"])
def test_every_action_of_the_schema_exports_with_its_labels(action: str) -> None:
    entry = build_entry(action=action, outcome="success", actor_agency="mx.fed.sndif")
    coding = export_entry(entry)["code"]["coding"][0]
    label = ACTIONS["x-labels"][action]
    assert (coding["code"], coding["display"], english(coding["_display"])) == (
        action,
        label["es"],
        label["en"],
    )
