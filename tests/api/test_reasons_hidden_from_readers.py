"""A read permitted in part tells a requester or grantee what it may read, not why the rest is
withheld when the reason is a fact about the child: an adolescent's objection, a withhold entry,
an emergency override's ground or a rule about asylum. The agency holding the record and those
acting for the child are told every reason, as for a refused read; the audit log keeps them all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    COMAR,
    OWNER,
    PersonClient,
    audit_entry,
    consent_document,
    consent_officer,
    legal_representative,
    procuraduria,
    push_child,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, read, share

FEDERAL = "mx.fed.pfpnna"
HEARD_ON = "2025-03-14"  # the girl (born 2012-05-10) was 12: her objection counts
OBJECTION_WORDS = ("objection", "objected", "oposición", "opuso", HEARD_ON)


@pytest.fixture
def owner(app: Flask) -> AgencyClient:
    return add_agency(app, OWNER)


@pytest.fixture
def pushed(client: FlaskClient, owner: AgencyClient) -> dict[str, Any]:
    return push_child(client, owner)


@pytest.fixture
def officer(app: Flask) -> PersonClient:
    procuraduria(app)
    return consent_officer(app, "co-chp-004")


@pytest.fixture
def lawyer(app: Flask) -> PersonClient:
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    return legal_representative(app, "lic-ana")


def object_to_family(
    client: FlaskClient, officer: PersonClient, child_id: str, about: dict[str, str]
) -> dict[str, Any]:
    response = client.post(
        f"/v1/children/{child_id}/views",
        json={
            "heard_on": HEARD_ON,
            "position": "objection",
            "heard_by": {"person_id": officer.id},
            "categories": ["family"],
            "about": [about],
            "summary": "No quiere que vean datos de su familia.",
        },
        headers=officer.headers,
    )
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def grant_identity_and_family(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, child_id: str
) -> str:
    """The lawyer asks for identity and family; the officer approves: a grant."""
    asked = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": "legal_representation",
            "categories": ["identity", "family"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=lawyer.headers,
    ).get_json()
    assert asked["status"] == "pending", asked
    approved = client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        json={"approve": True, "reason": "Representación acreditada en el juicio."},
        headers=officer.headers,
    )
    assert approved.status_code == 200, approved.get_json()
    return str(approved.get_json()["grant"]["id"])


def fhir_identifiers(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The identifiers of the entities of ``entry`` as a FHIR AuditEvent."""
    from exchange.fhir_audit import audit_entry_to_fhir

    entities = audit_entry_to_fhir(entry)["entity"]
    return [
        entity["what"]["identifier"]
        for entity in entities
        if "identifier" in entity.get("what", {})
    ]


def codes(decision: dict[str, Any]) -> set[str]:
    return {reason["code"] for reason in decision["reasons"]}


def test_a_lawyer_reading_in_part_is_not_told_of_the_adolescents_objection(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    child_id, record_id = pushed["child_id"], pushed["record_id"]
    grant_id = grant_identity_and_family(client, lawyer, officer, child_id)
    views = object_to_family(client, officer, child_id, {"person_id": lawyer.id})

    for language in ("es", "en"):
        response = client.get(
            f"/v1/records/{record_id}",
            query_string={"purpose": "legal_representation"},
            headers={**lawyer.headers, "Accept-Language": language},
        )
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        decision = body["decision"]
        # What the lawyer may read, and that family is withheld — not why.
        assert (decision["result"], decision["basis"]) == ("permit", "grant")
        assert decision["categories"] == ["identity"]
        assert "family" in decision["withheld"] and "family" in body["withheld_categories"]
        assert decision["id"] == response.headers["Puente-Decision"]
        assert decision["grant_ids"] == [grant_id]
        assert "objection" not in codes(decision) and "grant" in codes(decision)
        assert "view_ids" not in decision
        text = response.get_data(as_text=True)
        assert views["id"] not in text
        for word in OBJECTION_WORDS:
            assert word not in text, word

        listed = client.get(
            f"/v1/children/{child_id}/records",
            query_string={"purpose": "legal_representation"},
            headers={**lawyer.headers, "Accept-Language": language},
        )
        assert listed.status_code == 200
        [entry] = listed.get_json()["records"]
        assert entry["decision"]["categories"] == ["identity"]
        assert "objection" not in codes(entry["decision"])
        assert listed.headers["Puente-Decision"] == entry["decision"]["id"]
        listed_text = listed.get_data(as_text=True)
        for word in OBJECTION_WORDS:
            assert word not in listed_text, word

    # The audit log keeps the decision as the engine made it: oversight sees that the child's
    # objection is what withheld her family, by its id (never her words), also as FHIR.
    entry = audit_entry(app, decision["id"])
    audited = entry["decision"]
    assert (audited["basis"], audited["grant_ids"]) == ("grant", [grant_id])
    assert audited["categories"] == ["identity"]
    assert audited["view_ids"] == [views["id"]]
    assert "withhold_ids" not in audited
    for word in OBJECTION_WORDS:
        assert word not in str(entry), word
    assert {"system": "urn:puente:view", "value": views["id"]} in fhir_identifiers(entry)


def test_a_consent_officer_acting_for_the_child_is_told_of_the_objection(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # A federal consent officer (PFPNNA acts for every child) reads under the Procuraduría's
    # consent; the girl objected to the PFPNNA seeing her family.
    child_id = pushed["child_id"]
    add_agency(app, FEDERAL, jurisdiction="00", kind="federal_child_protection")
    federal = consent_officer(app, "co-fed-001", FEDERAL)
    document = consent_document(
        FEDERAL, purposes=["protection_measure"], categories=["identity", "family"]
    )
    record_consent(client, officer, child_id, document)
    views = object_to_family(client, officer, child_id, {"agency_id": FEDERAL})
    response = client.get(
        f"/v1/records/{pushed['record_id']}",
        query_string={"purpose": "protection_measure"},
        headers=federal.headers,
    )
    assert response.status_code == 200, response.get_json()
    decision = response.get_json()["decision"]
    assert decision["categories"] == ["identity"]
    assert "objection" in codes(decision)
    assert decision["view_ids"] == [views["id"]]
    assert HEARD_ON in response.get_data(as_text=True)


def test_an_agency_holding_the_record_is_told_of_the_objection(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    shelter = add_agency(app, "mx.chp.albergue", scopes=("records:read",), kind="civil_society")
    share(app, pushed["record_id"], from_agency=OWNER, to=shelter.id, purpose="health_care")
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(shelter.id, purposes=["health_care"], categories=["identity", "family"]),
    )
    views = object_to_family(client, officer, pushed["child_id"], {"agency_id": shelter.id})
    response = read(client, shelter, pushed["record_id"], purpose="health_care")
    assert response.status_code == 200, response.get_json()
    decision = response.get_json()["decision"]
    assert decision["categories"] == ["identity"]
    assert "objection" in codes(decision) and decision["view_ids"] == [views["id"]]
    # The owner reads its own record as its originating agency, and is told so.
    own = read(client, owner, pushed["record_id"]).get_json()["decision"]
    assert codes(own) == {"originating_agency"}


def test_a_rule_about_asylum_is_not_told_to_a_reader_it_withholds_from(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # A hub's own rule that applies because the child seeks asylum (the typical example does):
    # naming it to the reader would tell them so. A rule about who asks is told (see
    # test_consent_reads.test_a_hub_adds_its_own_hard_rules).
    rule_id = "no_legal_status_to_refugee_commission_for_asylum_seekers"
    rule = {
        "id": rule_id,
        "title": {"es": "Regla de prueba sobre asilo.", "en": "A test rule about asylum."},
        "legal_basis": "Acuerdo local de prueba.",
        "categories": ["legal_status"],
        "actor_kinds": ["refugee_commission"],
        "when": {"child_international_protection": True},
    }
    Path(app.instance_path, "rules.json").write_text(json.dumps([rule]), encoding="utf-8")
    app.config["CONSENT_RULES_FILE"] = "rules.json"
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(
            COMAR, purposes=["asylum_procedure"], categories=["identity", "legal_status"]
        ),
    )
    response = read(client, comar, pushed["record_id"], purpose="asylum_procedure")
    assert response.status_code == 200, response.get_json()
    decision = response.get_json()["decision"]
    assert decision["categories"] == ["identity"]
    assert "legal_status" in decision["withheld"]
    assert "hard_rule" not in codes(decision) and "rule_ids" not in decision
    assert rule_id not in response.get_data(as_text=True)
    # The audit log keeps the rule the engine applied.
    audited = audit_entry(app, decision["id"])["decision"]
    assert rule_id in audited["rule_ids"]
