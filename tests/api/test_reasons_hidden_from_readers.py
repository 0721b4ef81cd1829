"""A reader is told what it may read, not why the rest is withheld when the reason is a fact
about the child: an adolescent's objection or an emergency override's ground (told only to the
agencies holding the record and those acting for the child), a rule about asylum or the reader's
country (only to those acting for the child), a withhold entry (to nobody it names). What is not
told reads as "nothing in force permits this"; the audit log keeps every reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from consent_support import (
    COMAR,
    OWNER,
    PersonClient,
    approve,
    audit_entry,
    consent_document,
    consent_officer,
    honduran_consulate,
    procuraduria,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, read, rows, share
from sqlalchemy import select

from consent import CATEGORIES
from exchange.sharing import RecordShare

FEDERAL = "mx.fed.pfpnna"
HEARD_ON = "2025-03-14"  # the girl (born 2012-05-10) was 12: her objection counts
OBJECTION_WORDS = ("objection", "objected", "oposición", "opuso", HEARD_ON)


@pytest.fixture
def officer(app: Flask) -> PersonClient:
    procuraduria(app)
    return consent_officer(app, "co-chp-004")


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
    return str(approve(client, officer, asked["id"])["grant"]["id"])


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


@pytest.mark.parametrize("about_the_reader", [False, True])
def test_a_consent_officer_acting_for_the_child_is_told_of_the_objection(
    app: Flask,
    client: FlaskClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    about_the_reader: bool,
) -> None:
    # A federal consent officer (PFPNNA acts for every child) reads under the Procuraduría's
    # consent; the girl objected to anyone seeing her family — or to the PFPNNA itself, and
    # then that objection does not exist for the PFPNNA (docs/consent.md §8).
    child_id = pushed["child_id"]
    add_agency(app, FEDERAL, jurisdiction="00", kind="federal_child_protection")
    federal = consent_officer(app, "co-fed-001", FEDERAL)
    document = consent_document(
        FEDERAL, purposes=["protection_measure"], categories=["identity", "family"]
    )
    record_consent(client, officer, child_id, document)
    response = client.post(
        f"/v1/children/{child_id}/views",
        json={
            "heard_on": HEARD_ON,
            "position": "objection",
            "heard_by": {"person_id": officer.id},
            "categories": ["family"],
            **({"about": [{"agency_id": FEDERAL}]} if about_the_reader else {}),
            "summary": "No quiere que vean datos de su familia.",
        },
        headers=officer.headers,
    )
    assert response.status_code == 201, response.get_json()
    views = response.get_json()
    response = client.get(
        f"/v1/records/{pushed['record_id']}",
        query_string={"purpose": "protection_measure"},
        headers=federal.headers,
    )
    assert response.status_code == 200, response.get_json()
    decision = response.get_json()["decision"]
    assert decision["categories"] == ["identity"]
    if about_the_reader:
        assert codes(decision) == {"consent", "default_deny"}
        assert "view_ids" not in decision and views["id"] not in response.get_data(as_text=True)
        assert not any(word in response.get_data(as_text=True) for word in OBJECTION_WORDS)
        audited = audit_entry(app, response.headers["Puente-Decision"])["decision"]
        assert audited["view_ids"] == [views["id"]]  # the log keeps the decision whole
    else:
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
    # An objection naming the shelter does not exist for it; one naming its kind's readers
    # (here: anyone) it is told, as an agency holding the record.
    named = object_to_family(client, officer, pushed["child_id"], {"agency_id": shelter.id})
    response = read(client, shelter, pushed["record_id"], purpose="health_care")
    assert response.status_code == 200, response.get_json()
    decision = response.get_json()["decision"]
    assert decision["categories"] == ["identity"]
    assert "objection" not in codes(decision) and "view_ids" not in decision
    assert named["id"] not in response.get_data(as_text=True)
    client.post(
        f"/v1/views/{named['id']}/review",
        json={"upheld": False, "reason": "Escuchada de nuevo."},
        headers=officer.headers,
    )
    response = client.post(
        f"/v1/children/{pushed['child_id']}/views",
        json={
            "heard_on": HEARD_ON,
            "position": "objection",
            "heard_by": {"person_id": officer.id},
            "categories": ["family"],
            "summary": "No quiere que nadie vea datos de su familia.",
        },
        headers=officer.headers,
    )
    assert response.status_code == 201, response.get_json()
    views = response.get_json()
    response = read(client, shelter, pushed["record_id"], purpose="health_care")
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


def test_a_consulate_holding_a_referral_is_not_told_the_child_seeks_asylum(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # The child of the typical example is from Honduras and has an asylum procedure. Her
    # record was referred to Honduras's consulate (for family tracing) before anyone knew: the
    # hard rule now refuses it everything, and the refusal must read like any other.
    consulate = honduran_consulate(app, scopes=("records:read",))
    purpose = "family_tracing_reunification"
    share(app, pushed["record_id"], from_agency=OWNER, to=consulate.id, purpose=purpose)
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(consulate.id, purposes=[purpose], categories=["identity", "family"]),
    )
    refused = read(client, consulate, pushed["record_id"], purpose=purpose)
    assert refused.status_code == 403, refused.get_json()
    told = refused.get_json()["decision"]
    assert (told["result"], told["basis"]) == ("deny", "default_deny")
    assert "rule_ids" not in told
    [plain] = told["reasons"]
    assert plain["code"] == "default_deny" and plain["categories"] == told["withheld"]
    for word in ("no_asylum_data_to_country_of_origin", "hard_rule", "asylum-seeking", "asilo"):
        assert word not in refused.get_data(as_text=True), word
    # The audit log keeps the rule the engine applied.
    audited = audit_entry(app, told["id"])["decision"]
    assert (audited["basis"], audited["rule_ids"]) == (
        "hard_rule",
        ["no_asylum_data_to_country_of_origin"],
    )


def test_a_withhold_entry_is_not_told_to_the_agency_it_names_though_it_holds_the_record(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    # The girl fled a shelter that holds a referral of her record and has been offered its
    # transfer: a withhold entry now keeps her family and whereabouts from it. Neither its
    # reads nor its accepting the transfer may tell it so.
    shelter = add_agency(
        app, "mx.chp.albergue", scopes=("records:read", "records:write"), kind="civil_society"
    )
    record_id = pushed["record_id"]
    share(app, record_id, from_agency=OWNER, to=shelter.id)
    share(app, record_id, from_agency=OWNER, to=shelter.id, kind="transfer", status="pending")
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(shelter.id, categories=["identity", "family", "contact_location"]),
    )
    entry = client.post(
        f"/v1/children/{pushed['child_id']}/withholds",
        json={
            "target": {"agency_id": shelter.id},
            "categories": ["family", "contact_location"],
            "reason": "La niña denunció maltrato en el albergue.",
        },
        headers=officer.headers,
    )
    assert entry.status_code == 201, entry.get_json()
    hidden = (entry.get_json()["id"], "withhold", "reserva", "albergue.")

    response = read(client, shelter, record_id)
    assert response.status_code == 200, response.get_json()
    told = response.get_json()["decision"]
    assert told["categories"] == ["identity"] and "withhold_ids" not in told
    assert "family" in told["withheld"] and "contact_location" in told["withheld"]
    plain = [reason for reason in told["reasons"] if reason["code"] == "default_deny"]
    assert len(plain) == 1 and {"family", "contact_location"} <= set(plain[0]["categories"])
    assert "withhold" not in codes(told)
    for word in hidden:
        assert word not in response.get_data(as_text=True), word

    [(transfer_id,)] = rows(
        app,
        select(RecordShare.id).where(
            RecordShare.record_id == record_id, RecordShare.kind == "transfer"
        ),
    )
    accepted = client.post(f"/v1/transfers/{transfer_id}/accept", json={}, headers=shelter.headers)
    assert accepted.status_code == 403, accepted.get_json()
    refusal = accepted.get_json()["decision"]
    assert refusal["basis"] != "withhold" and "withhold_ids" not in refusal
    assert "withhold" not in codes(refusal)
    for word in hidden:
        assert word not in accepted.get_data(as_text=True), word


def test_a_referral_read_names_every_category_it_cut_and_gives_no_digest(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # Referred for education with identity only: the rest of the record is cut from what the
    # school reads, so it is withheld, and the whole body's digest would let the school confirm
    # guesses of it (a risk level) offline.
    school = add_agency(app, "mx.chp.escuela", scopes=("records:read",), kind="education_service")
    share(
        app,
        pushed["record_id"],
        from_agency=OWNER,
        to=school.id,
        purpose="education",
        categories=["identity"],
    )
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(school.id, purposes=["education"], categories=["identity"]),
    )
    response = read(client, school, pushed["record_id"], purpose="education")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["decision"]["categories"] == ["identity"]
    assert body["body_sha256"] is None
    assert body["withheld_categories"] == [c for c in CATEGORIES if c != "identity"]
    versions = client.get(
        f"/v1/records/{pushed['record_id']}/versions",
        query_string={"purpose": "education"},
        headers=school.headers,
    )
    assert versions.status_code == 200, versions.get_json()
    assert all(version["body_sha256"] is None for version in versions.get_json()["versions"])


def test_an_agency_that_refused_the_transfer_is_not_told_of_the_objection(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # It was offered the record and said no: it knows the record exists (403, not 404) but
    # holds nothing of it, so it hears what a requester hears.
    shelter = add_agency(app, "mx.chp.albergue", scopes=("records:read",), kind="civil_society")
    share(
        app,
        pushed["record_id"],
        from_agency=OWNER,
        to=shelter.id,
        kind="transfer",
        status="rejected",
    )
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(shelter.id, categories=["family"]),
    )
    views = object_to_family(client, officer, pushed["child_id"], {"agency_id": shelter.id})
    response = read(client, shelter, pushed["record_id"])
    assert response.status_code == 403, response.get_json()
    told = response.get_json()["decision"]
    assert "objection" not in codes(told) and "view_ids" not in told
    assert told["basis"] != "objection"
    text = response.get_data(as_text=True)
    assert views["id"] not in text
    for word in OBJECTION_WORDS:
        assert word not in text, word
