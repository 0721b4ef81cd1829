"""The audit log names who really acted, and what they acted on, so that an oversight body
reading it alone learns the truth: the hub for what it does by itself, an administrator's
agency with them, and the request an officer decided."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from consent_support import PersonClient, approve, audit_entry
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_access_requests import ask
from test_audit_api import oversight_token
from test_referrals_transfers import CLINIC, OWNER, Hub, hub, transfer

from exchange import db
from exchange.agencies import register_agency
from exchange.audit_log import AuditEntry
from exchange.audit_sequencer import integrate_pending
from exchange.children import link_child
from exchange.cli import main
from exchange.people import add_person

__all__ = ["hub"]  # the fixture this module uses


def events(client: FlaskClient, app: Flask, query: str) -> list[dict[str, Any]]:
    """What an oversight body finds with ``GET /v1/audit/events?<query>``."""
    integrate_pending(app, force_checkpoint=True)
    response = client.get(f"/v1/audit/events?{query}", headers=oversight_token(app))
    assert response.status_code == 200, response.get_json()
    return [event["entry"] for event in response.get_json()["events"]]


# -- the continuity referral a transfer leaves the previous owner --------------------------------


def test_the_referral_a_transfer_leaves_the_previous_owner_is_the_hubs_not_the_new_owners(
    hub: Hub,
) -> None:
    record_id = hub.push()
    share = transfer(hub, record_id).get_json()
    accepted = hub.post(CLINIC, f"/v1/transfers/{share['id']}/accept")
    assert accepted.status_code == 200, accepted.get_json()

    with db.database(hub.app).sessions() as session:
        logged = [
            json.loads(entry)
            for entry in session.scalars(
                select(AuditEntry.entry).where(AuditEntry.action == "record_referred")
            )
        ]
    [continuity] = [e for e in logged if e.get("reason_code") == f"continuity.to.{OWNER}"]
    # The hub made it, as part of the acceptance, as it names itself for the deliveries it
    # decides again: the new owner referred nothing.
    assert continuity["actor"] == {"agency_id": hub.app.config["HUB_ID"], "role": "system"}
    assert continuity["actor"]["agency_id"] != CLINIC
    assert continuity["target"] == {"agency_id": OWNER}
    assert continuity["record_id"] == record_id
    # No consent decision was taken then (reads through it are decided when they happen).
    assert "decision" not in continuity
    accepted_entry = hub.audit(accepted.get_json()["audit_entry"])
    assert continuity["request_id"] == accepted_entry["request_id"]

    # Oversight asking what the new owner referred does not find it.
    by_new_owner = events(hub.client, hub.app, f"actor={CLINIC}&action=record_referred")
    assert all(e.get("reason_code") != f"continuity.to.{OWNER}" for e in by_new_owner)
    by_hub = events(hub.client, hub.app, f"actor={hub.app.config['HUB_ID']}&action=record_referred")
    assert [e["reason_code"] for e in by_hub] == [f"continuity.to.{OWNER}"]


# -- a merge decided from the command line ------------------------------------------------------

PFPNNA = "mx.fed.pfpnna"
ADMINISTRATOR = "pfpnna-admin"


def _two_records_of_one_boy(app: Flask) -> tuple[str, str]:
    """An administrator of the PFPNNA, and the same boy indexed twice by two agencies."""

    def boy(surname: str) -> dict[str, Any]:
        names = {"given_names": "Jonathan", "first_surname": surname}
        return {"child": {"names": names, "date_of_birth": "2011-02-03", "nationality": ["HN"]}}

    with app.app_context(), db.database(app).sessions.begin() as session:
        register_agency(
            session, PFPNNA, "PFPNNA", "federal", "00", ["admin"], kind="federal_child_protection"
        )
        add_person(
            session,
            name="Administración PFPNNA",
            email="admin@pfpnna.example",
            agency_id=PFPNNA,
            roles=["administrator"],
            person_id=ADMINISTRATOR,
        )
        first = link_child(
            session,
            agency_id="mx.chp.dif",
            local_id="A-1",
            child_id=None,
            document=boy("Hernández López"),
        )
        second = link_child(
            session,
            agency_id="mx.fed.inm",
            local_id="I-1",
            child_id=None,
            document=boy("Hernandes"),
        )
    assert first != second
    return first, second


def test_a_merge_from_the_command_line_names_the_administrators_agency(
    app: Flask, client: FlaskClient
) -> None:
    keep, gone = _two_records_of_one_boy(app)
    environment = {
        "PUENTE_INSTANCE_PATH": str(app.config["INSTANCE_PATH"]),
        "PUENTE_DATABASE_URL": app.config["DATABASE_URL"],
        "PUENTE_LANG": "en",
    }
    result = CliRunner().invoke(
        main,
        [
            "children",
            "merge",
            keep,
            gone,
            "--reason",
            "misma acta",
            "--by",
            ADMINISTRATOR,
            "--json",
        ],
        env=environment,
    )
    assert result.exit_code == 0, result.output
    merged = json.loads(result.output)

    expected_actor = {"agency_id": PFPNNA, "person_id": ADMINISTRATOR, "role": "administrator"}
    assert audit_entry(app, merged["audit_entry"])["actor"] == expected_actor
    found = events(client, app, f"actor={PFPNNA}&action=child_merged")
    assert [(e["child_id"], e["actor"]) for e in found] == [(keep, expected_actor)]
    # The person still finds their own acts by their id.
    assert events(client, app, f"actor={ADMINISTRATOR}&action=child_merged") == found


# -- an officer's decision on an access request -------------------------------------------------


def test_an_approval_names_the_request_it_decided_as_a_denial_does(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    approved_request = ask(client, lawyer, pushed["child_id"]).get_json()
    answer = approve(client, officer, approved_request["id"])
    grant_id = answer["grant"]["id"]
    granted = audit_entry(app, answer["audit_entry"])
    assert granted["action"] == "access_granted"
    assert granted["object"] == {"type": "access_request", "id": approved_request["id"]}
    assert granted["decision"]["grant_ids"] == [grant_id]
    assert granted["decision"]["basis"] == "grant"

    denied_request = ask(client, lawyer, pushed["child_id"], categories=["family"]).get_json()
    assert denied_request["status"] == "pending", denied_request
    denial = client.post(
        f"/v1/access-requests/{denied_request['id']}/decision",
        json={"approve": False, "reason": "No acredita la representación."},
        headers=officer.headers,
    )
    assert denial.status_code == 200, denial.get_json()
    denied = audit_entry(app, denial.get_json()["audit_entry"])
    assert denied["action"] == "access_denied"
    assert denied["object"] == {"type": "access_request", "id": denied_request["id"]}

    # What oversight reads: the approval leads to the request it decided.
    [logged] = events(client, app, "action=access_granted")
    assert logged["object"] == {"type": "access_request", "id": approved_request["id"]}
