"""``POST /v1/children/{child_id}/consents``: a consent whose base decision is ``permit`` with a
``permit`` provision is recorded as written (valid FHIR), and the 201 answer warns, in Spanish
and English, that the provision limits nothing — the grantee reads every category for every
purpose, as the read shows. A consent with a ``deny`` base has no ``warnings``. On both
backends (the ``app`` fixture)."""

from __future__ import annotations

from typing import Any

from consent_support import PersonClient, consent_document, record_consent
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency

from consent import CATEGORIES

TAPACHULA = "mx.chp.tapachula.dif"


def identity_and_health(decision: str) -> dict[str, Any]:
    return consent_document(
        TAPACHULA,
        actions=["read"],
        purposes=["case_management"],
        categories=["identity", "health"],
        decision=decision,
    )


def test_a_permit_provision_under_a_permit_base_is_recorded_with_a_warning(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    tapachula = add_agency(app, TAPACHULA)
    answer = record_consent(client, officer, pushed["child_id"], identity_and_health("permit"))
    [warning] = answer["warnings"]
    assert (warning["code"], warning["pointer"]) == ("permit_under_permit", "/provision/0")
    assert "limita nada" in warning["es"] and "limits nothing" in warning["en"]
    assert answer["consent"]["decision"] == "permit"  # stored as written
    # What it warns of: the grantee reads every category, for a purpose no provision names.
    read = client.get(
        f"/v1/records/{pushed['record_id']}",
        query_string={"purpose": "family_tracing_reunification"},
        headers=tapachula.headers,
    )
    assert read.status_code == 200, read.get_json()
    assert set(read.get_json()["decision"]["categories"]) == set(CATEGORIES)


def test_a_deny_base_has_no_warnings(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    add_agency(app, TAPACHULA)
    answer = record_consent(client, officer, pushed["child_id"], identity_and_health("deny"))
    assert "warnings" not in answer
