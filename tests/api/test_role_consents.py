"""A consent may not permit a role alone: ``{"role": "legal_representative"}`` would be every
lawyer on the hub, of any state, not the child's. The grantor names whose lawyers."""

from __future__ import annotations

from typing import Any

from consent_support import (
    CLINIC,
    COMAR,
    OWNER,
    consent_document,
    consent_officer,
    procuraduria,
    push_child,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency


def test_a_permit_to_a_role_alone_is_refused_and_the_clinics_lawyers_are_named(
    app: Flask, client: FlaskClient
) -> None:
    owner = add_agency(app, OWNER)
    child_id = push_child(client, owner)["child_id"]
    procuraduria(app)
    officer = consent_officer(app, "co-chp-004", "mx.chp.procuraduria")
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    document: dict[str, Any] = consent_document(COMAR)
    document["provision"].append(
        {
            "decision": "permit",
            "actor": [{"role": "legal_representative"}],
            "purpose": ["legal_representation"],
        }
    )
    for language, words in (("en", "any lawyer of any state"), ("es", "cualquier abogada")):
        refused = client.post(
            f"/v1/children/{child_id}/consents",
            json=document,
            headers={**officer.headers, "Accept-Language": language},
        )
        assert refused.status_code == 400, refused.get_json()
        [error] = refused.get_json()["errors"]
        assert (error["code"], error["pointer"]) == ("role_without_agency", "/provision/1/actor/0")
        assert words in error["message"]
    listed = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
    assert listed.get_json()["consents"] == []  # nothing was recorded

    document["provision"][1]["actor"] = [{"role": "legal_representative", "agency_id": CLINIC}]
    assert record_consent(client, officer, child_id, document)["id"].startswith("cns_")
