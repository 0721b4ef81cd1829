"""The consent example the OpenAPI description gives for ``POST /v1/children/{id}/consents`` is
one the route takes, for a child like the one it describes (an unaccompanied adolescent the
Procuraduría acts for), once the agencies and people it names are registered."""

from __future__ import annotations

import copy

from consent_support import (
    CLINIC,
    COMAR,
    OWNER,
    PROCURADURIA,
    add_person_client,
    consent_officer,
    procuraduria,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency

from exchange.openapi import description


def test_the_documented_consent_example_is_recorded(app: Flask, client: FlaskClient) -> None:
    pushed = push_child(client, add_agency(app, OWNER))
    procuraduria(app)
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    add_agency(app, CLINIC, kind="civil_society", scopes=("records:read",))
    officer = consent_officer(app, "co-chp-004")
    for person_id in ("pp-chp-021", "cw-chp-0142"):
        add_person_client(app, person_id, PROCURADURIA, ["consent_officer"], ["consent:read"])
    operation = description(app)["paths"]["/v1/children/{child_id}/consents"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    for name, example in examples.items():
        body = copy.deepcopy(example["value"])
        response = client.post(
            f"/v1/children/{pushed['child_id']}/consents", json=body, headers=officer.headers
        )
        assert response.status_code == 201, (name, response.get_json())
