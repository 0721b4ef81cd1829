"""The demo's agencies have their kinds, and its people personal access tokens that work."""

from __future__ import annotations

import json
import os
import stat

from flask import Flask

from consent.vocabulary import ACTOR_KINDS, ROLES
from exchange import db
from exchange.agencies import Agency
from exchange.demo import DemoHub, demo_folder, people_example, register_demo_agencies, seed_demo
from exchange.demo_consents import OVERRIDE_OFFICER, OVERRIDE_REVIEWER, override_example
from exchange.demo_data import AGENCIES, PEOPLE
from exchange.people import Person, allowed_scopes

EXPECTED_KINDS = {
    "mx.fed.pfpnna": "federal_child_protection",
    "mx.fed.inm": "immigration_enforcement",
    "mx.fed.comar": "refugee_commission",
    "mx.chp.dif": "state_dif",
    "mx.chp.procuraduria": "state_dif",
    "mx.nl.dif": "state_dif",
    "mx.chp.tapachula.dif": "municipal_dif",
    "mx.fed.cndh": "oversight",
    "mx.chp.clinica-juridica": "civil_society",
}


def test_demo_data_is_consistent() -> None:
    assert {agency.id: agency.kind for agency in AGENCIES} == EXPECTED_KINDS
    assert all(agency.kind in ACTOR_KINDS for agency in AGENCIES)
    agencies = {agency.id for agency in AGENCIES}
    roles = {role for person in PEOPLE for role in person.roles}
    assert roles == {"legal_representative", "consent_officer", "override_officer", "auditor"}
    assert roles <= set(ROLES)
    for person in PEOPLE:
        assert person.agency_id in agencies
        assert set(person.scopes) <= allowed_scopes(person.roles)
    by_role = {(role, person.agency_id) for person in PEOPLE for role in person.roles}
    assert by_role == {
        ("legal_representative", "mx.chp.clinica-juridica"),
        ("consent_officer", "mx.chp.procuraduria"),
        ("consent_officer", "mx.fed.pfpnna"),  # reviews the Chiapas Procuraduría's overrides
        ("override_officer", "mx.chp.procuraduria"),
        ("auditor", "mx.fed.cndh"),
    }


def test_demo_people_tokens_work_and_survive_a_rerun(app: Flask) -> None:
    with app.app_context():  # as ``puente demo`` runs it
        hub = seed_demo(app)
    with db.database(app).sessions() as session:
        kinds = {agency.id: agency.kind for agency in session.query(Agency)}
        people = {p.id: (p.agency_id, p.role_list, p.active) for p in session.query(Person)}
    assert kinds == EXPECTED_KINDS
    assert people == {p.id: (p.agency_id, list(p.roles), True) for p in PEOPLE}

    credentials_file = demo_folder(app) / "credentials.json"
    assert stat.S_IMODE(os.stat(credentials_file).st_mode) == 0o600
    stored = json.loads(credentials_file.read_text())
    assert set(stored) == {*EXPECTED_KINDS, "people"}
    assert set(stored["people"]) == {p.id for p in PEOPLE}
    assert stored["people"] == hub.people

    client = app.test_client()
    for person in PEOPLE:
        token = hub.people[person.id]["token"]
        assert token.startswith("pat_")
        headers = {"Authorization": f"Bearer {token}"}
        audit = client.get("/v1/audit/events", headers=headers).status_code
        assert audit == (200 if "auditor" in person.roles else 403), person.id

    lines = people_example("http://127.0.0.1:8000", hub)
    auditor = hub.people["cndh-auditoria"]["token"]
    assert any(line.startswith("cndh-auditoria (auditor, mx.fed.cndh): pat_") for line in lines)
    assert lines[-1] == (
        f'curl -s -H "Authorization: Bearer {auditor}" http://127.0.0.1:8000/v1/audit/checkpoint'
    )

    with app.app_context():
        again = seed_demo(app)
    assert again.people == hub.people and again.credentials == hub.credentials


def test_a_demo_seeded_before_people_gets_them_on_rerun(app: Flask) -> None:
    # An instance seeded by an earlier demo: agencies (no clinic) and an agency-only file.
    earlier = [agency for agency in AGENCIES if agency.id != "mx.chp.clinica-juridica"]
    with app.app_context(), db.database(app).sessions() as session:
        credentials = register_demo_agencies(session, earlier)
        session.commit()
    folder = demo_folder(app)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "credentials.json").write_text(json.dumps(credentials))

    with app.app_context():
        hub: DemoHub = seed_demo(app)
    assert set(hub.people) == {p.id for p in PEOPLE}
    assert hub.credentials.keys() == EXPECTED_KINDS.keys()
    assert {k: v for k, v in hub.credentials.items() if k in credentials} == credentials
    stored = json.loads((folder / "credentials.json").read_text())
    assert stored["people"] == hub.people


def test_a_demo_override_is_reviewed_by_the_pfpnna(app: Flask) -> None:
    with app.app_context():
        hub = seed_demo(app)
    assert hub.consent is not None
    client = app.test_client()

    def bearer(person_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {hub.people[person_id]['token']}"}

    # The body the demo prints is the one sent here.
    printed = override_example("", hub.consent, hub.people)
    [opening] = [line for line in printed if line.startswith("OVERRIDE=")]
    body = json.loads(opening.split("-d '", 1)[1].split("'", 1)[0])
    opened = client.post("/v1/overrides", json=body, headers=bearer(OVERRIDE_OFFICER))
    assert opened.status_code == 201, opened.get_json()
    review_url = f"/v1/overrides/{opened.get_json()['id']}/review"
    review = {"upheld": True, "reason": "Urgencia acreditada por el albergue."}

    # The opener's agency (the Chiapas Procuraduría) may not review it; the PFPNNA may.
    refused = client.post(
        review_url, json=review, headers=bearer("chp-procuraduria-consentimientos")
    )
    assert refused.status_code == 403
    reviewed = client.post(review_url, json=review, headers=bearer(OVERRIDE_REVIEWER))
    assert reviewed.status_code == 200, reviewed.get_json()
    assert reviewed.get_json()["override"]["review"]["upheld"] is True


def test_a_demo_seeded_before_the_pfpnna_officer_gets_them_on_rerun(app: Flask) -> None:
    with app.app_context():
        hub = seed_demo(app)
    credentials_file = demo_folder(app) / "credentials.json"
    earlier = json.loads(credentials_file.read_text())
    del earlier["people"][OVERRIDE_REVIEWER]
    credentials_file.write_text(json.dumps(earlier))
    with db.database(app).sessions() as session:  # as an earlier demo left the database
        session.delete(session.get(Person, OVERRIDE_REVIEWER))
        session.commit()

    with app.app_context():
        again = seed_demo(app)
    assert set(again.people) == {p.id for p in PEOPLE}
    assert again.people[OVERRIDE_REVIEWER]["token"] != hub.people[OVERRIDE_REVIEWER]["token"]
    assert {k: v for k, v in again.people.items() if k != OVERRIDE_REVIEWER} == {
        k: v for k, v in hub.people.items() if k != OVERRIDE_REVIEWER
    }
    assert json.loads(credentials_file.read_text())["people"] == again.people
