"""Helpers for the consent tests: a child under 18 with a record, people with roles, consents."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, example, push, rows
from sqlalchemy import select

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.auth import store_token
from exchange.people import add_person

OWNER = "mx.chp.dif"  # pushes the record (jurisdiction 07, Chiapas)
PROCURADURIA = "mx.chp.procuraduria"
COMAR = "mx.fed.comar"
INM = "mx.fed.inm"
CLINIC = "mx.osc.clinica"

#: What a consent officer's token carries in these tests; a legal representative's.
OFFICER_SCOPES = ["consent:read", "consent:write", "access:decide", "records:read"]
LAWYER_SCOPES = ["records:read", "access:request"]


@dataclass
class PersonClient:
    id: str
    token: str
    agency_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def adolescent_record(local_id: str = "EXP-1") -> dict[str, Any]:
    """The typical example, about a 14-year-old unaccompanied girl from Honduras."""
    data = copy.deepcopy(example("typical"))
    data["child"]["date_of_birth"] = "2012-05-10"
    return envelope(local_id, data)


def push_child(client: FlaskClient, owner: AgencyClient, local_id: str = "EXP-1") -> dict[str, Any]:
    response = push(client, owner, adolescent_record(local_id))
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def add_person_client(
    app: Flask,
    person_id: str,
    agency_id: str,
    roles: list[str],
    scopes: list[str],
    jurisdiction: str | None = None,
) -> PersonClient:
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            add_person(
                session,
                person_id=person_id,
                name=f"Persona {person_id}",
                email=f"{person_id}@example.org",
                agency_id=agency_id,
                roles=roles,
                jurisdiction=jurisdiction,
            )
            secret, _row = store_token(
                session,
                client_id=f"person:{person_id}",
                scopes=scopes,
                agency_id=agency_id,
                person_id=person_id,
            )
        session.close()
    return PersonClient(person_id, secret, agency_id)


def consent_officer(
    app: Flask, person_id: str, agency_id: str = PROCURADURIA, jurisdiction: str | None = None
) -> PersonClient:
    """A consent officer of ``agency_id`` (registered already), with :data:`OFFICER_SCOPES`."""
    return add_person_client(
        app, person_id, agency_id, ["consent_officer"], OFFICER_SCOPES, jurisdiction
    )


def legal_representative(app: Flask, person_id: str, agency_id: str = CLINIC) -> PersonClient:
    """A lawyer of ``agency_id`` (registered already), with :data:`LAWYER_SCOPES`."""
    return add_person_client(app, person_id, agency_id, ["legal_representative"], LAWYER_SCOPES)


def procuraduria(app: Flask) -> AgencyClient:
    return add_agency(
        app,
        PROCURADURIA,
        scopes=("records:read", "consent:read", "consent:write", "access:decide"),
        kind="state_dif",
    )


def consent_document(
    grantee: str,
    *,
    actions: list[str] | None = None,
    purposes: list[str] | None = None,
    categories: list[str] | None = None,
    decision: str = "deny",
) -> dict[str, Any]:
    """A Procuraduría's consent (suplencia: the child is unaccompanied) permitting ``grantee``."""
    provision: dict[str, Any] = {"decision": "permit", "actor": [{"agency_id": grantee}]}
    if actions:
        provision["action"] = actions
    if purposes:
        provision["purpose"] = purposes
    if categories:
        provision["data_category"] = categories
    return {
        "status": "active",
        "grantor": {
            "type": "procuraduria",
            "representation": "suplencia",
            "agency_id": PROCURADURIA,
            "identity_verified": True,
        },
        "grantee": [{"agency_id": grantee}],
        "decision": decision,
        "period": {"start": "2026-01-01T00:00:00-06:00", "end": "2029-01-01T00:00:00-06:00"},
        "policy_basis": [{"code": "lgdnna_art_106_suplencia"}],
        "provision": [provision],
    }


def approve(
    client: FlaskClient,
    officer: Any,
    request_id: str,
    reason: str = "Representación acreditada en el expediente.",
) -> dict[str, Any]:
    """``officer`` approves the access request ``request_id``; the answer (with its grant)."""
    return _decide(client, officer, request_id, approve=True, reason=reason)


def deny(
    client: FlaskClient, officer: Any, request_id: str, reason: str = "No procede."
) -> dict[str, Any]:
    """``officer`` denies the access request ``request_id``; the answer."""
    return _decide(client, officer, request_id, approve=False, reason=reason)


def _decide(
    client: FlaskClient, officer: Any, request_id: str, *, approve: bool, reason: str
) -> dict[str, Any]:
    response = client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"approve": approve, "reason": reason},
        headers=officer.headers,
    )
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def honduran_consulate(
    app: Flask, scopes: tuple[str, ...] = ("records:read", "access:request")
) -> AgencyClient:
    """Honduras's consulate in Tapachula: a foreign authority, the country of origin of the
    typical example's child (who seeks asylum)."""
    return add_agency(
        app,
        "hn.consulado.tapachula",
        jurisdiction="07",
        kind="foreign_authority",
        country="HN",
        scopes=scopes,
    )


def record_consent(
    client: FlaskClient, officer: Any, child_id: str, document: dict[str, Any]
) -> dict[str, Any]:
    response = client.post(
        f"/v1/children/{child_id}/consents", json=document, headers=officer.headers
    )
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def audit_entry(app: Flask, entry_id: str) -> dict[str, Any]:
    [(entry,)] = rows(app, select(AuditEntry.entry).where(AuditEntry.id == entry_id))
    return dict(json.loads(entry))


def entries(app: Flask, action: str) -> list[dict[str, Any]]:
    found = rows(app, select(AuditEntry.entry).where(AuditEntry.action == action))
    return [json.loads(entry) for (entry,) in found]
