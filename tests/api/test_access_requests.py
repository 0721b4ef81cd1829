"""Access requests (UMA style), grants, emergency overrides, the child's views and dry-run
decisions, through the API, each checked against the audit entry it wrote."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from consent_support import (
    CLINIC,
    COMAR,
    OWNER,
    PersonClient,
    add_person_client,
    approve,
    audit_entry,
    consent_document,
    consent_officer,
    deny,
    entries,
    honduran_consulate,
    legal_representative,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, example, push, read
from sqlalchemy import select

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.child_duplicates import merge_children


def until(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def ask(client: FlaskClient, lawyer: PersonClient, child_id: str, **extra: Any) -> Any:
    body = {
        "child_id": child_id,
        "purpose": "legal_representation",
        "categories": ["identity", "legal_status"],
        "until": until(),
        **extra,
    }
    return client.post("/v1/access-requests", json=body, headers=lawyer.headers)


def consent_to_represent(
    client: FlaskClient, officer: PersonClient, child_id: str
) -> dict[str, Any]:
    """The Procuraduría's consent to the lawyer's clinic reading the child's record for legal
    representation: what grants the lawyer's requests at once."""
    document = consent_document(CLINIC, purposes=["legal_representation"])
    return record_consent(client, officer, child_id, document)


def test_a_request_made_before_a_merge_names_the_child_it_is_now_to_those_who_may_know(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    merged = pushed["child_id"]
    asked = ask(client, lawyer, merged).get_json()
    survivor = push(client, owner, envelope("EXP-2", example())).get_json()["child_id"]
    assert survivor != merged
    with app.app_context(), db.database(app).sessions() as session:
        merge_children(session, survivor, merged, reason="la misma niña")
        session.commit()

    def seen_by(person: PersonClient) -> str:
        path = f"/v1/access-requests/{asked['id']}"
        return str(client.get(path, headers=person.headers).get_json()["child_id"])

    # Pending: the requester may know nothing of the merge; the officer acting for the child
    # sees the child it is now. A new request for the merged id tells nothing either.
    assert (seen_by(lawyer), seen_by(officer)) == (merged, survivor)
    assert ask(client, lawyer, merged).get_json()["child_id"] == merged
    approved = client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        json={"approve": True, "reason": "Representación en el juicio de amparo."},
        headers=officer.headers,
    )
    assert approved.status_code == 200, approved.get_json()
    assert seen_by(lawyer) == survivor  # granted: it reads the child under that id


def test_uncovered_request_waits_for_the_officer_who_approves_it(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    created = ask(client, lawyer, pushed["child_id"])
    assert created.status_code == 201
    request = created.get_json()
    assert request["status"] == "pending"
    asked = audit_entry(app, request["audit_entry"])
    assert asked["action"] == "access_requested"
    assert asked["actor"]["person_id"] == "lic-ana"
    assert asked["reason_code"] == "pending"
    assert asked["outcome"] == "success"  # filed, not refused: no denial for oversight to count

    # Not yet: the lawyer reads nothing, and a pending request proves nothing (one is taken
    # about any id): the refusal is the 404 of a record they do not know of.
    assert (
        read(client, lawyer, pushed["record_id"], purpose="legal_representation").status_code == 404
    )

    queue = client.get("/v1/access-requests?status=pending", headers=officer.headers).get_json()
    assert [r["id"] for r in queue["access_requests"]] == [request["id"]]

    body = approve(client, officer, request["id"])
    assert body["status"] == "granted"
    grant_id = body["grant"]["id"]
    entry = audit_entry(app, body["audit_entry"])
    assert entry["action"] == "access_granted"
    assert entry["decision"]["grant_ids"] == [grant_id]

    response = read(client, lawyer, pushed["record_id"], purpose="legal_representation")
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["decision"]["basis"] == "grant"
    assert "placements" not in answer["data"]
    # The grant is purpose-bound.
    assert read(client, lawyer, pushed["record_id"], purpose="statistics").status_code == 403

    grants = client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"]
    assert [g["id"] for g in grants] == [grant_id]
    assert (
        client.get(f"/v1/access-requests/{request['id']}", headers=lawyer.headers).get_json()[
            "status"
        ]
        == "granted"
    )

    twice = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": False, "reason": "no"},
        headers=officer.headers,
    )
    assert twice.status_code == 409


def test_covered_request_is_granted_at_once(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    document = consent_document(CLINIC, purposes=["legal_representation"])
    record_consent(client, officer, pushed["child_id"], document)
    response = ask(client, lawyer, pushed["child_id"])
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "granted"
    # The decision as a reader is told it: a consent's reasons tell nothing about the child.
    told = body["decision"]
    assert (told["result"], told["basis"], told["id"]) == ("permit", "consent", body["audit_entry"])
    assert told["categories"] == ["identity", "legal_status"] and told["withheld"] == []
    assert {reason["code"] for reason in told["reasons"]} == {"consent"}
    assert audit_entry(app, body["audit_entry"])["decision"]["basis"] == "consent"
    followed = client.get(f"/v1/access-requests/{body['id']}", headers=lawyer.headers)
    assert followed.get_json()["decision"] == told


def test_denied_requests_and_other_jurisdictions(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    request = ask(client, lawyer, pushed["child_id"]).get_json()
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", scopes=("consent:read",))
    stranger = consent_officer(app, "co-nl-001", "mx.nl.procuraduria")
    queue = client.get("/v1/access-requests", headers=stranger.headers).get_json()
    assert queue["access_requests"] == []
    refused = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": True, "reason": "x"},
        headers=stranger.headers,
    )
    assert refused.status_code == 404

    denied = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": False, "reason": "No acredita la representación."},
        headers=officer.headers,
    )
    assert denied.get_json()["status"] == "denied"
    assert audit_entry(app, denied.get_json()["audit_entry"])["outcome"] == "denied"
    assert client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"] == []


def test_bad_access_requests(
    client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    past = ask(client, lawyer, pushed["child_id"], until="2020-01-01T00:00:00Z")
    assert past.status_code == 400
    # An id the hub never issued is asked about like any child (test_access_request_no_oracle).
    unknown = ask(client, lawyer, "nna_00000000000000000000")
    assert (unknown.status_code, unknown.get_json()["status"]) == (201, "pending")
    bad = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "curiosity",
            "categories": [],
            "until": until(),
        },
        headers=lawyer.headers,
    )
    assert bad.status_code == 400
    assert bad.get_json()["errors"]


def test_override_opens_access_for_72h_at_most_and_oversight_sees_it(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    override_officer = add_person_client(
        app, "ov-fed-001", "mx.fed.pfpnna", ["override_officer"], ["override", "records:read"]
    )
    body = {
        "child_id": pushed["child_id"],
        "basis_code": "imminent_risk_life_integrity",
        "justification": "Reportada desaparecida del albergue; se requiere su ubicación.",
        "categories": ["identity", "contact_location", "placement"],
        "hours": 24,
    }
    too_long = client.post(
        "/v1/overrides", json={**body, "hours": 100}, headers=override_officer.headers
    )
    assert too_long.status_code == 400
    short = client.post(
        "/v1/overrides", json={**body, "justification": "urgente"}, headers=override_officer.headers
    )
    assert short.status_code == 400
    # A consent officer holds no override role.
    assert client.post("/v1/overrides", json=body, headers=officer.headers).status_code == 403

    opened = client.post("/v1/overrides", json=body, headers=override_officer.headers)
    assert opened.status_code == 201, opened.get_json()
    override = opened.get_json()
    entry = audit_entry(app, override["audit_entry"])
    assert entry["action"] == "override_used"
    assert entry["decision"]["override_id"] == override["id"]

    response = read(client, override_officer, pushed["record_id"], purpose="protection_measure")
    assert response.status_code == 200
    assert response.get_json()["decision"]["basis"] == "override"
    assert "placements" in response.get_json()["data"]

    auditor = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    alerts = client.get("/v1/audit/alerts", headers=auditor.headers).get_json()
    kinds = {(a["kind"], a.get("override_id")) for a in alerts["alerts"]}
    assert ("override", override["id"]) in kinds
    (alert,) = [a for a in alerts["alerts"] if a.get("override_id") == override["id"]]
    assert set(alert["actor"]) <= {"agency_id", "person_id"} and alert["actor"]["agency_id"]
    # The written justification is case content: not in the alerts, but read one override at
    # a time, and that read is audited.
    assert "justification" not in alert and "albergue" not in json.dumps(alerts)
    one = client.get(f"/v1/overrides/{override['id']}", headers=auditor.headers)
    assert one.status_code == 200
    assert one.get_json()["override"]["justification"] == body["justification"]
    with db.database(app).sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor_agency == "mx.fed.cndh")
        ).all()
    assert "consents_read" in actions

    reviewed = client.post(
        f"/v1/overrides/{override['id']}/review",
        json={"upheld": False, "reason": "La niña fue localizada; no subsiste la urgencia."},
        headers=officer.headers,
    )
    assert reviewed.status_code == 200
    assert audit_entry(app, reviewed.get_json()["audit_entry"])["action"] == "override_reviewed"
    after = read(client, override_officer, pushed["record_id"], purpose="protection_measure")
    assert after.status_code in (403, 404)


def test_unreviewed_override_raises_an_alert_after_24h(
    app: Flask, client: FlaskClient, pushed: dict[str, Any]
) -> None:
    from records_support import execute
    from sqlalchemy import update

    from exchange.consent_store import OverrideRow

    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    officer = add_person_client(
        app, "ov-fed-002", "mx.fed.pfpnna", ["override_officer"], ["override", "records:read"]
    )
    opened = client.post(
        "/v1/overrides",
        json={
            "child_id": pushed["child_id"],
            "basis_code": "imminent_risk_life_integrity",
            "justification": "Riesgo inminente: posible reclutamiento por una red de trata.",
            "categories": ["identity"],
            "hours": 72,
        },
        headers=officer.headers,
    ).get_json()
    execute(
        app,
        update(OverrideRow)
        .where(OverrideRow.id == opened["id"])
        .values(starts_at=datetime.now(UTC) - timedelta(hours=25)),
    )
    auditor = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    alerts = client.get("/v1/audit/alerts", headers=auditor.headers).get_json()["alerts"]
    assert any(
        a["kind"] == "override_unreviewed" and a["override_id"] == opened["id"] for a in alerts
    )


def test_an_adolescents_objection_blocks_until_reviewed(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"]),
    )
    assert read(client, comar, pushed["record_id"], purpose="asylum_procedure").status_code == 200
    views = client.post(
        f"/v1/children/{pushed['child_id']}/views",
        json={
            "heard_on": datetime.now(UTC).date().isoformat(),
            "position": "objection",
            "heard_by": {"person_id": "co-chp-004"},
            "summary": "No quiere que COMAR vea su expediente todavía.",
            "about": [{"agency_id": COMAR}],
        },
        headers=officer.headers,
    )
    assert views.status_code == 201, views.get_json()
    view = views.get_json()
    assert audit_entry(app, view["audit_entry"])["action"] == "child_views_recorded"

    dry = client.post(
        "/v1/decisions",
        json={
            "actor": {"agency_id": COMAR},
            "child_id": pushed["child_id"],
            "action": "read",
            "purpose": "asylum_procedure",
            "categories": ["identity"],
        },
        headers=officer.headers,
    )
    assert dry.status_code == 200
    decision = dry.get_json()
    assert decision["result"] == "deny"
    assert decision["basis"] == "objection"
    assert decision["reasons"][0]["es"] and decision["reasons"][0]["en"]
    evaluated = audit_entry(app, decision["id"])
    assert evaluated["action"] == "decision_evaluated"
    assert evaluated["decision"]["basis"] == "objection"
    # Oversight sees whom the officer asked about, not only who asked.
    assert evaluated["object"] == {"type": "agency", "id": COMAR}
    assert read(client, comar, pushed["record_id"], purpose="asylum_procedure").status_code == 404

    reviewed = client.post(
        f"/v1/views/{view['id']}/review",
        json={"upheld": False, "reason": "Se le explicó el procedimiento y está de acuerdo."},
        headers=officer.headers,
    )
    assert reviewed.status_code == 200
    assert read(client, comar, pushed["record_id"], purpose="asylum_procedure").status_code == 200


def test_consent_as_fhir(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    from fhir.resources.consent import Consent as FhirConsent

    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    stored = record_consent(
        client, officer, pushed["child_id"], consent_document(COMAR, purposes=["asylum_procedure"])
    )
    response = client.get(f"/v1/consents/{stored['id']}?format=fhir", headers=officer.headers)
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    resource = FhirConsent.model_validate(response.get_json())
    assert resource.status == "active"
    negotiated = client.get(
        f"/v1/consents/{stored['id']}",
        headers={**officer.headers, "Accept": "application/fhir+json"},
    )
    assert negotiated.mimetype == "application/fhir+json"
    plain = client.get(f"/v1/consents/{stored['id']}", headers=officer.headers).get_json()
    assert plain["consent"]["id"] == stored["id"]


def test_oversight_reads_the_events_as_fhir_audit_events(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    from fhir.resources.bundle import Bundle

    from exchange.audit_sequencer import integrate_pending

    ask(client, lawyer, pushed["child_id"])
    with app.app_context():
        integrate_pending(app)
    auditor = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    response = client.get(
        "/v1/audit/events",
        query_string={"child_id": pushed["child_id"], "format": "fhir"},
        headers=auditor.headers,
    )
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    bundle = Bundle.model_validate(response.get_json())
    assert bundle.type == "searchset"
    codes = [entry.resource.code.coding[0].code for entry in bundle.entry]
    assert "access_requested" in codes and "record_pushed" in codes
    # Bundle.total counts the matches over every page: a page cannot tell, so it is left out.
    page = client.get(
        "/v1/audit/events",
        query_string={"child_id": pushed["child_id"], "format": "fhir", "limit": 1},
        headers=auditor.headers,
    ).get_json()
    assert "total" not in page and len(page["entry"]) == 1
    assert [link["relation"] for link in page["link"]] == ["next"]


def test_a_purpose_a_hard_rule_forbids_is_denied_at_once_with_the_reason(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    response = ask(
        client,
        lawyer,
        pushed["child_id"],
        purpose="migration_procedure",
        categories=["protection_concerns", "placement"],
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "denied"
    # The rule looks only at who asks and why: the lawyer is told it, and can ask otherwise.
    rule = "no_protection_data_for_migration_procedure"
    assert body["message"]["en"].startswith("The request was denied. Hard legal rule")
    assert rule in body["message"]["en"] and rule in body["message"]["es"]
    told = body["decision"]
    assert (told["result"], told["basis"]) == ("deny", "hard_rule")
    assert rule in told["rule_ids"] and "decided_by" not in body
    entry = audit_entry(app, body["audit_entry"])
    assert entry["outcome"] == "denied"
    assert entry["decision"]["basis"] == "hard_rule"
    assert "no_protection_data_for_migration_procedure" in entry["decision"]["rule_ids"]


def test_a_grantor_who_is_not_entitled_is_refused(
    client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    document = consent_document(COMAR)
    # The child is unaccompanied: no parent has custody here, the Procuraduría represents her.
    document["grantor"] = {
        "type": "parent",
        "representation": "originaria",
        "related_person_ref": "madre",
        "identity_verified": True,
    }
    response = client.post(
        f"/v1/children/{pushed['child_id']}/consents", json=document, headers=officer.headers
    )
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert any(error["pointer"].startswith("/grantor") for error in errors)
    assert all(error["message"] for error in errors)


def test_a_consulate_learns_nothing_about_asylum_from_its_request(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # The child (from Honduras, unaccompanied) has an asylum procedure in the typical example.
    consulate = honduran_consulate(app)
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "family_tracing_reunification",
            "categories": ["identity", "family"],
            "until": until(),
        },
        headers=consulate.headers,
    )
    assert response.status_code == 201
    body = response.get_json()
    # Not "denied at once": that would say the asylum rule applies to her.
    assert body["status"] == "pending"
    # Told as a read would tell it: nothing in force permits it, no rule named.
    told = body["decision"]
    assert (told["result"], told["basis"]) == ("deny", "default_deny")
    assert "rule_ids" not in told and told["withheld"] == ["identity", "family"]
    assert [reason["code"] for reason in told["reasons"]] == ["default_deny"]
    for word in ("no_asylum_data_to_country_of_origin", "hard_rule", "refugi", "asilo"):
        assert word not in response.get_data(as_text=True), word
    entry = audit_entry(app, body["audit_entry"])
    assert "no_asylum_data_to_country_of_origin" in entry["decision"]["rule_ids"]
    read_back = read(client, consulate, pushed["record_id"], purpose="family_tracing_reunification")
    assert read_back.status_code == 404  # pending, it proves nothing (docs/consent.md)
    # The officer sees why.
    queue = client.get("/v1/access-requests", headers=officer.headers).get_json()
    [queued] = queue["access_requests"]
    assert "no_asylum_data_to_country_of_origin" in queued["decision"]["rule_ids"]
    # Once an officer has denied it, the consulate knows of the child: the refusal is 403.
    deny(client, officer, body["id"])
    read_back = read(client, consulate, pushed["record_id"], purpose="family_tracing_reunification")
    assert read_back.status_code == 403
    # Refused as when nothing permits it: the rule's categories are among those "nothing in
    # force permits", and neither the rule nor its basis is named.
    told = read_back.get_json()["decision"]
    assert told["basis"] == "default_deny" and "rule_ids" not in told
    assert [reason["code"] for reason in told["reasons"]] == ["default_deny"]
    assert told["reasons"][0]["categories"] == told["withheld"]
    for word in ("no_asylum_data_to_country_of_origin", "hard_rule", "refugi", "asilo"):
        assert word not in read_back.get_data(as_text=True), word


def test_an_approval_a_hard_rule_forbids_is_refused_and_the_request_stays_pending(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # The child (from Honduras) has an asylum procedure: nothing goes to Honduras's consulate.
    consulate = honduran_consulate(app)
    request = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "family_tracing_reunification",
            "categories": ["identity"],
            "until": until(),
        },
        headers=consulate.headers,
    ).get_json()
    assert request["status"] == "pending"
    granted_before = len(entries(app, "access_granted"))

    approval = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": True, "reason": "Localizar a la familia."},
        headers={**officer.headers, "Accept-Language": "en"},
    )
    assert approval.status_code == 409
    problem = approval.get_json()
    assert problem["type"].endswith("/conflict")
    assert problem["rule_ids"] == ["no_asylum_data_to_country_of_origin"]
    assert problem["categories"] == ["identity"]
    assert "no_asylum_data_to_country_of_origin" in problem["detail"]
    assert "Deny the request instead" in problem["detail"]
    in_spanish = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": True, "reason": "Localizar a la familia."},
        headers={**officer.headers, "Accept-Language": "es"},
    ).get_json()
    assert "Deniegue la solicitud" in in_spanish["detail"]

    # Nothing was granted or written; the requester is not told "granted".
    assert len(entries(app, "access_granted")) == granted_before
    assert client.get("/v1/grants", headers=consulate.headers).get_json()["grants"] == []
    seen = client.get(f"/v1/access-requests/{request['id']}", headers=consulate.headers)
    assert seen.get_json()["status"] == "pending"
    assert seen.get_json()["grant_id"] is None

    # The officer denies it instead.
    denied = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": False, "reason": "La regla de asilo lo impide."},
        headers=officer.headers,
    )
    assert denied.status_code == 200
    assert denied.get_json()["status"] == "denied"


def test_an_approval_the_childs_objection_blocks_is_refused_until_the_review_sets_it_aside(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    # The girl (14) objects to her record going to the clinic; nobody has reviewed it yet. An
    # approval would tell the lawyer "granted" while every read is refused (the objection
    # comes before grants), so it is refused and the request stays pending.
    child_id = pushed["child_id"]

    def objection(**about: Any) -> str:
        views = client.post(
            f"/v1/children/{child_id}/views",
            json={
                "heard_on": datetime.now(UTC).date().isoformat(),
                "heard_by": {"person_id": officer.id},
                "position": "objection",
                **about,
            },
            headers=officer.headers,
        )
        assert views.status_code == 201, views.get_json()
        return str(views.get_json()["id"])

    def review(view_id: str, upheld: bool) -> None:
        reviewed = client.post(
            f"/v1/views/{view_id}/review",
            json={"upheld": upheld, "reason": "Se escuchó de nuevo a la adolescente."},
            headers=officer.headers,
        )
        assert reviewed.status_code == 200, reviewed.get_json()

    def decide(request_id: str, language: str = "en") -> Any:
        return client.post(
            f"/v1/access-requests/{request_id}/decision",
            json={"approve": True, "reason": "Representación acreditada."},
            headers={**officer.headers, "Accept-Language": language},
        )

    blocking = objection(categories=["legal_status"])
    request = ask(client, lawyer, child_id).get_json()
    granted_before = len(entries(app, "access_granted"))
    refused = decide(request["id"])
    assert refused.status_code == 409, refused.get_json()
    problem = refused.get_json()
    assert problem["type"].endswith("/conflict")
    assert problem["view_ids"] == [blocking] and problem["categories"] == ["legal_status"]
    assert "reviewed by the Procuraduría" in problem["detail"]
    assert "Procuraduría la revise" in decide(request["id"], "es").get_json()["detail"]
    assert len(entries(app, "access_granted")) == granted_before
    seen = client.get(f"/v1/access-requests/{request['id']}", headers=lawyer.headers).get_json()
    assert (seen["status"], seen["grant_id"]) == ("pending", None)
    # Upheld, it still blocks.
    review(blocking, upheld=True)
    assert decide(request["id"]).status_code == 409

    # Set aside by the review, it no longer does: the grant counts.
    lifted = objection(categories=["family"])
    family = ask(client, lawyer, child_id, categories=["family"]).get_json()
    assert decide(family["id"]).status_code == 409
    review(lifted, upheld=False)
    approved = decide(family["id"])
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["access"]["active"] is True

    # An objection about another agency does not cover what the grant would give.
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    objection(categories=["health"], about=[{"agency_id": COMAR}])
    health = ask(client, lawyer, child_id, categories=["health"]).get_json()
    assert decide(health["id"]).status_code == 200


def test_only_consent_officers_decide_and_review(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    system = add_agency(
        app,
        "mx.chp.procuraduria",
        scopes=("consent:read", "consent:write", "access:decide", "access:request"),
    )
    request = ask(client, lawyer, pushed["child_id"]).get_json()
    by_system = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": True, "reason": "sistema"},
        headers=system.headers,
    )
    assert by_system.status_code == 403
    views = client.post(
        f"/v1/children/{pushed['child_id']}/views",
        json={
            "heard_on": "2026-11-01",
            "heard_by": {"agency_id": "mx.chp.procuraduria"},
            "position": "objection",
        },
        headers=system.headers,
    ).get_json()
    review = client.post(
        f"/v1/views/{views['id']}/review",
        json={"upheld": False, "reason": "sistema"},
        headers=system.headers,
    )
    assert review.status_code == 403


def test_people_of_the_owning_agency_read_what_consent_gives_them(
    app: Flask, client: FlaskClient, owner: AgencyClient, pushed: dict[str, Any]
) -> None:
    # The agency's own system reads its record in full; a legal representative employed
    # there is not the agency's system: consent decides for them.
    staff = add_person_client(app, "lic-dif-001", OWNER, ["legal_representative"], ["records:read"])
    assert read(client, owner, pushed["record_id"]).get_json()["decision"]["basis"] == (
        "originating_agency"
    )
    response = read(client, staff, pushed["record_id"], purpose="legal_representation")
    assert response.status_code == 403  # their agency's record: they hear why not
    assert response.get_json()["decision"]["basis"] == "default_deny"
    entry = [e for e in entries(app, "record_read") if e["actor"].get("person_id") == "lic-dif-001"]
    assert entry[-1]["actor"]["role"] == "legal_representative"
    assert entry[-1]["decision"]["basis"] == "default_deny"


def test_overrides_stay_within_the_officers_jurisdiction(
    app: Flask, client: FlaskClient, pushed: dict[str, Any]
) -> None:
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19")
    elsewhere = add_person_client(
        app, "ov-nl-001", "mx.nl.procuraduria", ["override_officer"], ["override", "records:read"]
    )
    response = client.post(
        "/v1/overrides",
        json={
            "child_id": pushed["child_id"],
            "basis_code": "missing_child",
            "justification": "Reportada como desaparecida en Monterrey; se busca su ubicación.",
            "categories": ["identity"],
            "hours": 12,
        },
        headers=elsewhere.headers,
    )
    assert response.status_code == 404


def test_a_dry_run_with_malformed_categories_is_a_400(
    client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    response = client.post(
        "/v1/decisions",
        json={"child_id": pushed["child_id"], "purpose": "case_management", "categories": [["x"]]},
        headers=officer.headers,
    )
    assert response.status_code == 400
    assert {e["pointer"] for e in response.get_json()["errors"]} == {"/categories/0"}


def test_a_dry_run_about_an_actor_the_hub_does_not_know_points_at_the_actor(
    client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    """The officer acts for the child: a 404 would read as "no such child"."""
    for actor, pointer in (
        ({"agency_id": "mx.nope"}, "/actor/agency_id"),
        ({"person_id": "nobody"}, "/actor/person_id"),
    ):
        for language, words in (("en", "This hub has no"), ("es", "En este nodo no hay")):
            response = client.post(
                "/v1/decisions",
                json={"child_id": pushed["child_id"], "purpose": "health_care", "actor": actor},
                headers={**officer.headers, "Accept-Language": language},
            )
            [(found, message)] = pointers_and_messages(response)
            assert found == pointer and words in message
    full = client.post(
        "/v1/decisions",
        json={
            "child_id": pushed["child_id"],
            "purpose": "family_tracing_reunification",
            "actor": {
                "kind": "foreign_authority",
                "agency_id": "mx.ext.consulado-hn",
                "country": "HN",
            },
        },
        headers=officer.headers,
    )
    assert full.status_code == 200, full.get_json()
    assert full.get_json()["request"]["actor"]["kind"] == "foreign_authority"


def pointers_and_messages(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["type"].endswith("/validation")
    return [(error["pointer"], error["message"]) for error in response.get_json()["errors"]]


def test_a_dry_run_lists_every_failure_of_its_body(
    client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    response = client.post(
        "/v1/decisions",
        json={"action": "fly", "purpose": "fun", "categories": ["secrets"]},
        headers={**officer.headers, "Accept-Language": "en"},
    )
    found = pointers_and_messages(response)
    assert [pointer for pointer, _ in found] == ["", "/action", "/categories/0", "/purpose"]
    assert "(child_id)" in found[0][1]
    assert '"fly"' in found[1][1] and '"read"' in found[1][1]
    assert '"secrets"' in found[2][1] and '"identity"' in found[2][1]
    assert '"fun"' in found[3][1]
    actor = client.post(
        "/v1/decisions",
        json={"child_id": pushed["child_id"], "purpose": "fun", "actor": {"name": "COMAR"}},
        headers=officer.headers,
    )
    # No actor named, and a member an actor does not take ("name"): both said.
    assert [pointer for pointer, _ in pointers_and_messages(actor)] == [
        "/actor",
        "/actor",
        "/purpose",
    ]


def test_views_list_every_missing_field(
    client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    for language, words in (("en", "required field"), ("es", "falta el campo obligatorio")):
        response = client.post(
            f"/v1/children/{pushed['child_id']}/views",
            json={"position": "objection"},
            headers={**officer.headers, "Accept-Language": language},
        )
        found = pointers_and_messages(response)
        assert [pointer for pointer, _ in found] == ["", ""]
        assert all(words in message for _, message in found)
        assert "(heard_by)" in found[0][1] and "(heard_on)" in found[1][1]
    several = client.post(
        f"/v1/children/{pushed['child_id']}/views",
        json={"heard_on": "20/11/2026", "position": "angry", "heard_by": {}, "colour": "red"},
        headers=officer.headers,
    )
    assert [pointer for pointer, _ in pointers_and_messages(several)] == [
        "",
        "/heard_by",
        "/heard_on",
        "/position",
    ]


def test_a_decision_on_a_request_lists_every_failure_of_its_body(
    client: FlaskClient, officer: PersonClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    request = ask(client, lawyer, pushed["child_id"]).get_json()
    response = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": "yes", "until": "mañana"},
        headers={**officer.headers, "Accept-Language": "en"},
    )
    found = pointers_and_messages(response)
    assert [pointer for pointer, _ in found] == ["", "/approve", "/until"]
    # The until is checked as every instant is (the shared date_time definition).
    assert "(reason)" in found[0][1] and '"mañana"' in found[2][1]
    assert "with a time zone" in found[2][1]
    # Nothing was decided.
    seen = client.get(f"/v1/access-requests/{request['id']}", headers=lawyer.headers)
    assert seen.get_json()["status"] == "pending"


# -- what a request granted at once rests on, and until when ----------------------------------

FAR_FUTURE = "9999-12-31T23:59:59Z"
#: consent_document's period ends 2029-01-01T00:00:00-06:00; the girl turns 18 in 2030.
CONSENT_END = "2029-01-01T06:00:00+00:00"


def test_a_request_granted_at_once_names_its_consent_and_when_it_really_ends(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    consent = consent_to_represent(client, officer, pushed["child_id"])
    response = ask(client, lawyer, pushed["child_id"], until=FAR_FUTURE)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "granted"
    assert body["until"].startswith("9999-12-31")  # what was asked for, not what was granted
    assert body["grant_id"] is None
    assert body["access"] == {
        "basis": "consent",
        "consent_ids": [consent["id"]],
        "until": CONSENT_END,
        "active": True,
    }
    for text in (body["message"]["es"], body["message"]["en"]):
        assert consent["id"] in text
        assert CONSENT_END in text
    assert "date given" not in body["message"]["en"]
    assert "fecha indicada" not in body["message"]["es"]
    assert body["requester"] == {"agency_id": CLINIC, "person_id": "lic-ana"}
    assert "no new grant" in body["message"]["en"]
    assert "no se creó una autorización" in body["message"]["es"]

    # The same answer later, to the requester and to the officer (whose decision stays the
    # engine's, with the basis beside it).
    again = client.get(f"/v1/access-requests/{body['id']}", headers=lawyer.headers).get_json()
    assert again["access"] == body["access"] and again["message"] == body["message"]
    seen = client.get(f"/v1/access-requests/{body['id']}", headers=officer.headers).get_json()
    assert seen["access"] == body["access"]
    assert "access" not in seen["decision"]
    assert seen["decision"]["consent_ids"] == [consent["id"]]

    # No grant is made: the consent is what permits, so revoking it ends this access too.
    assert client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"] == []
    revoked = client.post(
        f"/v1/consents/{consent['id']}/revoke",
        json={"reason": "La Procuraduría dejó de representarla."},
        headers=officer.headers,
    )
    assert revoked.status_code == 200
    assert (
        read(client, lawyer, pushed["record_id"], purpose="legal_representation").status_code == 403
    )

    # The request no longer claims the access: still "granted" (how it was decided), but its
    # access says when and why it ended, to the requester and to the officer alike.
    revoked_at = revoked.get_json()["consent"]["revocation"]["revoked_at"]
    for viewer in (lawyer, officer):
        after = client.get(f"/v1/access-requests/{body['id']}", headers=viewer.headers).get_json()
        assert after["status"] == "granted"
        assert after["access"] == {
            **body["access"],
            "active": False,
            "ended_at": after["access"]["ended_at"],
            "ended_because": "revoked",
            "ended_by": [consent["id"]],
        }
        ended = datetime.fromisoformat(after["access"]["ended_at"])
        assert ended == datetime.fromisoformat(revoked_at.replace("Z", "+00:00"))
        assert "terminó" in after["message"]["es"] and consent["id"] in after["message"]["es"]
        assert "ended" in after["message"]["en"] and "was revoked" in after["message"]["en"]
        assert "Acceso concedido" not in after["message"]["es"]
        assert "Access granted" not in after["message"]["en"]
    listed = client.get("/v1/access-requests?status=granted", headers=officer.headers).get_json()
    [queued] = [r for r in listed["access_requests"] if r["id"] == body["id"]]
    assert queued["access"]["active"] is False


def test_a_request_granted_at_once_until_a_date_before_its_basis_ends_says_so(
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    consent_to_represent(client, officer, pushed["child_id"])
    asked = "2027-06-30T00:00:00Z"  # before the consent ends (CONSENT_END)
    body = ask(client, lawyer, pushed["child_id"], until=asked).get_json()
    assert body["status"] == "granted"
    es, en = body["message"]["es"], body["message"]["en"]
    assert "2027-06-30T00:00:00+00:00, the date asked for" in en
    assert "2027-06-30T00:00:00+00:00, la fecha pedida" in es
    # Not "when that basis ends": the consent runs longer than the date asked for.
    assert "when that basis ends" not in en and "cuando termina esa base" not in es


def test_an_officers_grant_that_ran_out_no_longer_claims_access(
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    request = ask(client, lawyer, pushed["child_id"]).get_json()
    grant_end = datetime.now(UTC) + timedelta(seconds=1)
    approved = client.post(
        f"/v1/access-requests/{request['id']}/decision",
        json={"approve": True, "reason": "Audiencia mañana.", "until": grant_end.isoformat()},
        headers=officer.headers,
    ).get_json()
    assert approved["access"]["active"] is True
    time.sleep(max(0.0, (grant_end - datetime.now(UTC)).total_seconds()) + 0.1)
    after = client.get(f"/v1/access-requests/{request['id']}", headers=lawyer.headers).get_json()
    assert after["status"] == "granted" and after["grant_id"] == approved["grant_id"]
    assert after["access"]["active"] is False
    assert after["access"]["ended_because"] == "expired"
    assert after["access"]["ended_by"] == []
    assert after["access"]["ended_at"] == after["access"]["until"]
    assert "llegó a su fin" in after["message"]["es"] and "ran out" in after["message"]["en"]
    assert client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"] == []


def test_an_override_a_review_did_not_uphold_ends_the_access_it_gave(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    pfpnna = add_agency(
        app,
        "mx.fed.pfpnna",
        jurisdiction="00",
        kind="federal_child_protection",
        scopes=("records:read", "access:request"),
    )
    override_officer = add_person_client(
        app, "ov-fed-003", "mx.fed.pfpnna", ["override_officer"], ["override", "records:read"]
    )
    opened = client.post(
        "/v1/overrides",
        json={
            "child_id": pushed["child_id"],
            "basis_code": "missing_child",
            "justification": "Salió del albergue anoche sin aviso; se necesita saber dónde está.",
            "categories": ["identity", "placement"],
            "hours": 24,
        },
        headers=override_officer.headers,
    ).get_json()
    request = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "protection_measure",
            "categories": ["identity", "placement"],
            "until": until(),
        },
        headers=pfpnna.headers,
    ).get_json()
    assert request["status"] == "granted"
    assert request["access"]["override_ids"] == [opened["id"]]
    assert request["access"]["active"] is True
    reviewed = client.post(
        f"/v1/overrides/{opened['id']}/review",
        json={"upheld": False, "reason": "Fue localizada; no subsiste la urgencia."},
        headers=officer.headers,
    )
    assert reviewed.status_code == 200
    after = client.get(f"/v1/access-requests/{request['id']}", headers=pfpnna.headers).get_json()
    assert after["access"]["active"] is False
    assert after["access"]["ended_because"] == "not_upheld"
    assert after["access"]["ended_by"] == [opened["id"]]
    assert "did not uphold" in after["message"]["en"]


def test_a_provision_period_ends_the_access_before_the_consent_does(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    document = consent_document(CLINIC, purposes=["legal_representation"])
    document["provision"][0]["period"] = {
        "start": "2026-01-01T00:00:00-06:00",
        "end": "2027-06-30T00:00:00-06:00",
    }
    record_consent(client, officer, pushed["child_id"], document)
    body = ask(client, lawyer, pushed["child_id"], until=FAR_FUTURE).get_json()
    assert body["status"] == "granted"
    assert body["access"]["until"] == "2027-06-30T06:00:00+00:00"


def test_a_request_asking_less_than_its_basis_keeps_its_own_end(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    consent_to_represent(client, officer, pushed["child_id"])
    body = ask(client, lawyer, pushed["child_id"], until="2027-02-01T00:00:00Z").get_json()
    assert body["access"]["until"] == "2027-02-01T00:00:00+00:00"
    assert "before the date asked for" not in body["message"]["en"]


def test_a_request_covered_by_an_earlier_grant_ends_when_that_grant_does(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    first = ask(client, lawyer, pushed["child_id"]).get_json()
    assert first["status"] == "pending"
    grant_end = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    approved = client.post(
        f"/v1/access-requests/{first['id']}/decision",
        json={
            "approve": True,
            "reason": "Representación acreditada.",
            "until": grant_end.isoformat(),
        },
        headers=officer.headers,
    ).get_json()
    grant_id = approved["grant_id"]
    # The officer's answer tells the grant's own end, not the request's.
    assert approved["access"] == {
        "basis": "grant",
        "grant_ids": [grant_id],
        "until": grant_end.isoformat(),
        "active": True,
    }
    assert (
        grant_id in approved["message"]["en"]
        and grant_end.isoformat() in (approved["message"]["es"])
    )

    second = ask(client, lawyer, pushed["child_id"], until=FAR_FUTURE).get_json()
    assert second["status"] == "granted"
    assert second["grant_id"] is None
    assert second["access"] == {
        "basis": "grant",
        "grant_ids": [grant_id],
        "until": grant_end.isoformat(),
        "active": True,
    }
    assert grant_id in second["message"]["es"] and grant_id in second["message"]["en"]
    assert [
        g["id"] for g in client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"]
    ] == [grant_id]


def test_a_person_lists_the_grants_made_to_their_agency(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    clinic = add_agency(
        app,
        "mx.osc.defensoria",
        scopes=("records:read", "access:request"),
        kind="civil_society",
    )
    staff = legal_representative(app, "lic-def-001", "mx.osc.defensoria")
    asked = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "categories": ["identity"],
            "until": until(),
        },
        headers=clinic.headers,
    ).get_json()
    approved = client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        json={"approve": True, "reason": "Defensoría acreditada."},
        headers=officer.headers,
    ).get_json()
    # The grant to the agency covers its lawyer, who reads under it and sees it listed.
    response = read(client, staff, pushed["record_id"], purpose="legal_representation")
    assert response.status_code == 200
    assert response.get_json()["decision"]["grant_ids"] == [approved["grant_id"]]
    listed = client.get("/v1/grants", headers=staff.headers).get_json()["grants"]
    assert [g["id"] for g in listed] == [approved["grant_id"]]


def test_the_demos_access_request_names_its_consent_and_real_end(app: Flask) -> None:
    import json

    from exchange.demo import seed_demo
    from exchange.demo_consents import consent_example

    with app.app_context():
        hub = seed_demo(app)
    assert hub.consent is not None
    printed = consent_example("", hub.consent, "secret", hub.people)
    [asking] = [line for line in printed if line.endswith("/v1/access-requests")]
    token = asking.split("Bearer ", 1)[1].split('"', 1)[0]
    body = json.loads(asking.split("-d '", 1)[1].split("'", 1)[0])
    client = app.test_client()
    answer = client.post(
        "/v1/access-requests", json=body, headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert answer["status"] == "granted"
    assert answer["access"]["consent_ids"] == [hub.consent["consent_id"]]
    # The consent runs a year (or to the 18th birthday); the month asked for ends first.
    assert answer["access"]["until"] == answer["until"]
    assert hub.consent["consent_id"] in answer["message"]["en"]


def test_an_access_lasting_to_the_18th_birthday_does_not_reveal_the_date_of_birth(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # A consent with no end of its own lapses at the 18th birthday (2030-05-10 here). A
    # requester who may not see identity must not learn it — not from one answer, nor by
    # asking again with an "until" on the other side of the birthday.
    document = consent_document(CLINIC, purposes=["legal_representation"])
    del document["period"]["end"]
    record_consent(client, officer, pushed["child_id"], document)
    legal = ["legal_status"]
    before = ask(
        client, lawyer, pushed["child_id"], categories=legal, until="2030-05-01T00:00:00Z"
    ).get_json()
    after = ask(
        client, lawyer, pushed["child_id"], categories=legal, until="2030-06-01T00:00:00Z"
    ).get_json()
    for body, asked in ((before, "2030-05-01"), (after, "2030-06-01")):
        assert body["status"] == "granted"
        assert body["access"]["until"].startswith(asked)  # what was asked, either side
        assert body["access"]["ends_at_majority_at_latest"] is True
        assert "2030-05-10" not in json.dumps(body)
        assert "cumpla 18 años" in body["message"]["es"]
        assert "when the child turns 18" in body["message"]["en"]
    assert set(before["access"]) == set(after["access"])


def test_a_requester_who_may_see_identity_is_told_the_real_end(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    document = consent_document(CLINIC, purposes=["legal_representation"])
    del document["period"]["end"]
    record_consent(client, officer, pushed["child_id"], document)
    body = ask(client, lawyer, pushed["child_id"], until="2031-01-01T00:00:00Z").get_json()
    assert body["access"]["until"] == "2030-05-10T05:00:00+00:00"  # the 18th birthday begins
    assert "ends_at_majority_at_latest" not in body["access"]


def test_requests_waiting_for_the_officer_raise_no_denial_alert(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    """A lawyer filing many requests that wait for the officer is not probing records."""
    app.config["AUDIT_ALERT_DENIALS"] = 3
    for _ in range(4):
        assert ask(client, lawyer, pushed["child_id"]).get_json()["status"] == "pending"
    auditor = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    alerts = client.get("/v1/audit/alerts", headers=auditor.headers).get_json()["alerts"]
    assert [a for a in alerts if a["kind"] == "denial_spike"] == []


def test_a_consent_officer_revokes_a_grant_and_it_stops_at_once(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    asked = ask(client, lawyer, pushed["child_id"]).get_json()
    grant_id = approve(client, officer, asked["id"])["grant"]["id"]
    record = pushed["record_id"]
    assert read(client, lawyer, record, purpose="legal_representation").status_code == 200

    # Not the lawyer, not an officer of another state (as if the grant did not exist), not an
    # agency system: a consent officer acting for the child.
    reason = {"reason": "La abogada dejó de representar a la niña."}
    path = f"/v1/grants/{grant_id}/revoke"
    assert client.post(path, json=reason, headers=lawyer.headers).status_code == 403
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", kind="state_dif")
    elsewhere = consent_officer(app, "co-nl-001", "mx.nl.procuraduria")
    assert client.post(path, json=reason, headers=elsewhere.headers).status_code == 404
    assert (
        client.post("/v1/grants/grt_nope/revoke", json=reason, headers=officer.headers).status_code
        == 404
    )
    assert client.post(path, json={}, headers=officer.headers).status_code == 400

    revoked = client.post(path, json=reason, headers=officer.headers)
    assert revoked.status_code == 200, revoked.get_json()
    grant = revoked.get_json()["grant"]
    assert grant["id"] == grant_id and grant["revoked_by"] == officer.id and "revoked_at" in grant
    # At once: the lawyer's next read is refused, the grant is gone from its list, and the
    # request says the access was revoked.
    assert read(client, lawyer, record, purpose="legal_representation").status_code == 403
    assert client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"] == []
    state = client.get(f"/v1/access-requests/{asked['id']}", headers=lawyer.headers).get_json()
    assert state["access"]["ended_because"] == "revoked"
    again = client.post(path, json=reason, headers=officer.headers)
    assert again.status_code == 409 and again.get_json()["type"].endswith("conflict")

    entry = audit_entry(app, revoked.get_json()["audit_entry"])
    assert (entry["action"], entry["reason_code"]) == ("consent_revoked", "grant_revoked")
    assert entry["object"] == {"type": "grant", "id": grant_id}
    assert entry["actor"]["person_id"] == officer.id
    assert "dejó" not in json.dumps(entry)  # the reason stays out of the log


def test_the_requesters_answer_and_the_examples_are_what_the_openapi_says(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    from jsonschema import Draft202012Validator

    document = client.get("/openapi.json").get_json()
    schema = {"$ref": "#/components/schemas/AccessRequest", "components": document["components"]}
    validator = Draft202012Validator(schema)
    pending = ask(client, lawyer, pushed["child_id"]).get_json()
    consent_to_represent(client, officer, pushed["child_id"])
    granted = ask(client, lawyer, pushed["child_id"]).get_json()
    assert (pending["status"], granted["status"]) == ("pending", "granted")
    for answer in (pending, granted):
        validator.validate(answer)
        assert "decision" in answer and "decided_by" not in answer
    operation = document["paths"]["/v1/access-requests"]["post"]
    examples = operation["responses"]["201"]["content"]["application/json"]["examples"]
    for example_answer in examples.values():
        validator.validate(example_answer["value"])
        assert "decision" in example_answer["value"]
        assert "decided_by" not in example_answer["value"]  # to officers only
