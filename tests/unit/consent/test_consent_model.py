"""Consent documents and the other inputs as frozen values: strict from_json, canonical to_json,
and the engine's vocabulary kept equal to the shared schemas."""

from __future__ import annotations

import ast
import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import consent
from consent import (
    BASES,
    CATEGORIES,
    CATEGORY_LABELS,
    DEFAULT_RULES,
    DEFAULT_RULES_JSON,
    PURPOSE_LABELS,
    Actor,
    ChildFacts,
    ChildView,
    Consent,
    ConsentFormatError,
    Grant,
    Override,
    Request,
    RequestError,
    Rule,
    WithholdFrom,
    model,
    vocabulary,
)
from schemas import default_registry
from schemas.registry import EXAMPLES_DIR

PACKAGE = Path(consent.__file__).resolve().parent
REGISTRY = default_registry()
COMMON = REGISTRY.document("common", "1")["$defs"]
CONSENT_SCHEMA = REGISTRY.document("consent", "1")


def examples(name: str, kind: str) -> list[Path]:
    return sorted((EXAMPLES_DIR / name / "1" / kind).glob("*.json"))


@pytest.mark.parametrize("path", examples("consent", "valid"), ids=lambda p: p.stem)
def test_valid_consent_examples_parse_and_round_trip(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    parsed = Consent.from_json(document)
    assert Consent.from_json(parsed.to_json()) == parsed
    # The canonical form is itself a valid consent/1 document.
    assert REGISTRY.validator("consent", "1").validate(parsed.to_json()) == []
    assert parsed.child_id == document["child_id"]
    assert len(parsed.provisions) == len(document.get("provision", []))


def test_the_parsed_consent_mirrors_the_document() -> None:
    document = json.loads(
        (EXAMPLES_DIR / "consent/1/valid/procuraduria_suplencia_unaccompanied.json").read_text(
            "utf-8"
        )
    )
    parsed = Consent.from_json(document)
    assert parsed.grantor.type == "procuraduria" and parsed.grantor.representation == "suplencia"
    assert parsed.decision == "deny"
    lawyer = parsed.provisions[1]
    assert lawyer.actors[0].role == "legal_representative"
    assert lawyer.categories >= {"identity", "contact_location"}
    assert lawyer.provisions[0].decision == "deny"
    assert lawyer.provisions[0].categories == {"contact_location"}
    assert parsed.provisions[2].period.end == datetime(
        2024, 9, 30, 23, 59, 59, tzinfo=timezone(timedelta(hours=-6))
    )
    assert parsed.child_views is not None and parsed.child_views.id == "vw-2024-0091"
    revoked = Consent.from_json(
        json.loads((EXAMPLES_DIR / "consent/1/valid/revoked.json").read_text("utf-8"))
    )
    assert revoked.revocation is not None
    assert revoked.revoked_by(revoked.revocation.revoked_at)
    assert not revoked.revoked_by(revoked.revocation.revoked_at - timedelta(seconds=1))


EXPECTED_POINTERS = {
    "bad_decision_code": "/decision",
    "bad_heard_on_date": "/child_views/heard_on",
    "bad_nested_purpose": "/provision/1/provision/0/purpose/0",
    "missing_grantor": "",
    "period_start_without_time": "/period/start",
    "provision_without_decision": "/provision/0",
    "unknown_property": "/subject",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_POINTERS))
def test_malformed_consents_are_refused_with_the_place_and_a_bilingual_reason(name: str) -> None:
    example = json.loads((EXAMPLES_DIR / f"consent/1/invalid/{name}.json").read_text("utf-8"))
    with pytest.raises(ConsentFormatError) as caught:
        Consent.from_json(example["document"])
    assert caught.value.pointer == EXPECTED_POINTERS[name]
    assert caught.value.message_es and caught.value.message_en
    assert caught.value.message_es != caught.value.message_en


def test_an_unknown_category_names_the_allowed_codes() -> None:
    document = {
        "status": "active",
        "child_id": "ch-1",
        "grantor": {"type": "court"},
        "decision": "deny",
        "provision": [{"decision": "permit", "data_category": ["biometrics"]}],
    }
    with pytest.raises(ConsentFormatError) as caught:
        Consent.from_json(document)
    assert caught.value.pointer == "/provision/0/data_category/0"
    assert "identity" in caught.value.message_en and "biometrics" in caught.value.message_es


def test_grants_views_overrides_and_withholds_round_trip() -> None:
    grant = Grant.from_json(
        {
            "id": "gr-1",
            "child_id": "ch-1",
            "grantee": {"person_id": "lr-1"},
            "purpose": "legal_representation",
            "categories": ["legal_status", "identity"],
            "until": "2024-07-31T23:59:59-06:00",
        }
    )
    assert grant.actions == {"read"}
    assert Grant.from_json(grant.to_json()) == grant
    view = ChildView.from_json(
        {
            "id": "vw-1",
            "child_id": "ch-1",
            "heard_on": "2024-05-20",
            "position": "objection",
            "categories": ["contact_location"],
            "about": [{"agency_id": "mx.fed.inm"}],
            "review": {
                "reviewed_at": "2024-05-30T10:00:00Z",
                "upheld": True,
                "by": {"person_id": "pp-1"},
            },
        }
    )
    assert ChildView.from_json(view.to_json()) == view
    override = Override.from_json(
        {
            "id": "ovr-1",
            "child_id": "ch-1",
            "basis_code": "medical_emergency",
            "justification": "Ingreso a urgencias inconsciente; el hospital necesita antecedentes.",
            "categories": ["health"],
            "starts": "2024-06-01T10:00:00Z",
            "hours": 6,
            "by": {"agency_id": "mx.chp.procuraduria", "person_id": "ov-1"},
            "by_roles": ["override_officer"],
        }
    )
    assert override.ends - override.starts == timedelta(hours=6)
    assert override.beneficiary.agency_id == "mx.chp.procuraduria"
    assert Override.from_json(override.to_json()) == override
    entry = WithholdFrom.from_json(
        {"child_id": "ch-1", "actor_kind": "foreign_authority", "categories": ["family"]}
    )
    assert WithholdFrom.from_json(entry.to_json()) == entry


def test_the_override_schema_examples_become_overrides_once_the_hub_adds_who_and_when() -> None:
    for path in examples("override", "valid"):
        document = json.loads(path.read_text("utf-8"))
        stored = {
            **document,
            "starts": "2024-06-01T10:00:00Z",
            "by": {"agency_id": "mx.chp.procuraduria", "person_id": "ov-1"},
            "by_roles": ["override_officer"],
        }
        override = Override.from_json(stored)
        assert override.ends - override.starts == timedelta(hours=document["hours"])


@pytest.mark.parametrize(
    ("document", "pointer"),
    [
        (
            {
                "child_id": "ch-1",
                "basis_code": "hunch",
                "justification": "x",
                "categories": ["health"],
                "starts": "2024-06-01T10:00:00Z",
                "hours": 1,
                "by": {"person_id": "p"},
                "by_roles": ["override_officer"],
            },
            "/basis_code",
        ),
        (
            {
                "child_id": "ch-1",
                "basis_code": "missing_child",
                "justification": "x",
                "categories": [],
                "starts": "2024-06-01T10:00:00Z",
                "hours": 1,
                "by": {"person_id": "p"},
                "by_roles": ["override_officer"],
            },
            "/categories",
        ),
        (
            {
                "child_id": "ch-1",
                "basis_code": "missing_child",
                "justification": "x",
                "categories": ["health"],
                "starts": "2024-06-01T10:00:00Z",
                "by": {"person_id": "p"},
                "by_roles": ["override_officer"],
            },
            "/hours",
        ),
        (
            {
                "child_id": "ch-1",
                "basis_code": "missing_child",
                "justification": "x",
                "categories": ["health"],
                "starts": "2024-06-01",
                "hours": 1,
                "by": {"person_id": "p"},
                "by_roles": ["override_officer"],
            },
            "/starts",
        ),
    ],
)
def test_malformed_overrides_are_refused(document: dict[str, Any], pointer: str) -> None:
    with pytest.raises(ConsentFormatError) as caught:
        Override.from_json(document)
    assert caught.value.pointer == pointer


def test_requests_refuse_unknown_codes() -> None:
    with pytest.raises(RequestError):
        Actor("immigration", agency_id="mx.fed.inm")  # a misspelt kind must not slip past the rules
    actor = Actor("state_dif", agency_id="mx.chp.dif")
    with pytest.raises(RequestError):
        Request(actor, "ch-1", "deliver", "case_management")
    with pytest.raises(RequestError):
        Request(actor, "ch-1", "read", "immigration_enforcement")
    with pytest.raises(RequestError):
        Request(actor, "ch-1", "read", "case_management", categories=frozenset({"biometrics"}))
    with pytest.raises(RequestError):
        Request(actor, "ch-1", "read", "case_management", categories=frozenset())
    with pytest.raises(RequestError):
        Actor("state_dif")  # neither agency nor person
    request = Request.from_json(
        {
            "actor": {
                "kind": "legal_representative",
                "person_id": "lr-1",
                "roles": ["legal_representative"],
            },
            "child_id": "ch-1",
            "action": "read",
            "purpose": "legal_representation",
            "categories": ["identity"],
        }
    )
    assert Request.from_json(request.to_json()) == request
    every = {key: value for key, value in request.to_json().items() if key != "categories"}
    assert Request.from_json(every).categories == set(CATEGORIES)


def test_rules_are_data_that_round_trips() -> None:
    for document, rule in zip(DEFAULT_RULES_JSON, DEFAULT_RULES, strict=True):
        assert Rule.from_json(rule.to_json()) == rule
        assert rule.to_json()["id"] == document["id"]
        assert rule.title[0] and rule.title[1] and rule.legal_basis
    with pytest.raises(ConsentFormatError):
        Rule.from_json({"id": "everything", "title": {"es": "x", "en": "x"}, "legal_basis": "x"})
    with pytest.raises(ConsentFormatError):
        Rule.from_json(
            {
                "id": "Bad Id",
                "title": {"es": "x", "en": "x"},
                "legal_basis": "x",
                "purposes": ["statistics"],
            }
        )


def test_child_facts_from_the_shipped_case_records() -> None:
    typical = json.loads((EXAMPLES_DIR / "case-record/1/valid/typical.json").read_text("utf-8"))
    facts = ChildFacts.from_record(typical, child_id="ch-7f3a9d2e")
    assert facts.accompaniment == "unaccompanied" and facts.unaccompanied_or_separated
    assert facts.international_protection is True
    assert facts.countries_of_origin == {"HN"}
    assert facts.representing_procuradurias == {"mx.chp.procuraduria"}
    assert facts.age_on(date(2024, 7, 1)) == 15 and facts.age_on(date(2024, 7, 2)) == 16
    assert facts.eighteenth_birthday == datetime(2026, 7, 2, tzinfo=timezone(timedelta(hours=-5)))
    returned = json.loads(
        (
            EXAMPLES_DIR / "case-record/1/valid/salvadoran_child_closed_assisted_return.json"
        ).read_text("utf-8")
    )
    estimated = ChildFacts.from_record(returned)
    assert estimated.international_protection is False  # a migration file and no claim
    assert estimated.nominal_date_of_birth == date(2010, 6, 3)  # assessed 13 on 2023-06-03
    minimal = ChildFacts.from_record(
        json.loads((EXAMPLES_DIR / "case-record/1/valid/minimal.json").read_text("utf-8"))
    )
    assert minimal.international_protection is None and minimal.custodians is None
    assert minimal.eighteenth_birthday is None


def test_a_29_february_birthday_turns_18_on_28_february() -> None:
    facts = ChildFacts(date_of_birth=date(2008, 2, 29))
    assert facts.eighteenth_birthday is not None
    assert facts.eighteenth_birthday.date() == date(2026, 2, 28)


# --- the vocabulary is the schemas' ------------------------------------------------------------


def test_codes_equal_the_shared_schema_enums() -> None:
    assert list(CATEGORIES) == COMMON["data_category"]["enum"]
    assert list(consent.PURPOSES) == COMMON["purpose"]["enum"]
    assert list(consent.ACTIONS) == COMMON["action"]["enum"]
    assert list(consent.ROLES) == COMMON["role"]["enum"]
    assert {k: tuple(v.values()) for k, v in COMMON["data_category"]["x-labels"].items()} == dict(
        CATEGORY_LABELS
    )
    assert {k: tuple(v.values()) for k, v in COMMON["purpose"]["x-labels"].items()} == dict(
        PURPOSE_LABELS
    )
    properties = CONSENT_SCHEMA["properties"]
    assert list(vocabulary.GRANTOR_TYPES) == properties["grantor"]["properties"]["type"]["enum"]
    assert list(vocabulary.CONSENT_STATUSES) == properties["status"]["enum"]
    assert (
        list(vocabulary.VIEW_POSITIONS)
        == properties["child_views"]["properties"]["position"]["enum"]
    )
    assert (
        list(model.POLICY_BASIS_CODES)
        == properties["policy_basis"]["items"]["properties"]["code"]["enum"]
    )
    assert list(model.EVIDENCE_TYPES) == properties["source_document"]["properties"]["type"]["enum"]
    assert (
        list(model.REPRESENTATIONS) == properties["grantor"]["properties"]["representation"]["enum"]
    )
    override = REGISTRY.document("override", "1")["properties"]
    assert list(vocabulary.OVERRIDE_BASIS_CODES) == override["basis_code"]["enum"]
    audit = REGISTRY.document("audit-event", "1")["properties"]["decision"]["properties"]
    assert set(BASES) == set(audit["basis"]["enum"])


def test_rule_ids_fit_the_audit_log() -> None:
    pattern = REGISTRY.document("audit-event", "1")["properties"]["decision"]["properties"][
        "rule_ids"
    ]["items"]["pattern"]
    assert pattern == consent.rules.RULE_ID_PATTERN
    assert "no_protection_data_to_immigration_enforcement" in {rule.id for rule in DEFAULT_RULES}
    assert "no_asylum_data_to_country_of_origin" in {rule.id for rule in DEFAULT_RULES}


# --- purity -------------------------------------------------------------------------------------


def test_consent_imports_only_the_standard_library_and_itself() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            for name in names:
                assert name == "consent" or name in sys.stdlib_module_names, (
                    f"{path.name} imports {name}"
                )


def test_public_api_is_exported() -> None:
    for name in consent.__all__:
        assert hasattr(consent, name), name
    assert (PACKAGE / "py.typed").exists()
