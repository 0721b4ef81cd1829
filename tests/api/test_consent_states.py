"""The state ``GET /v1/children/{id}/consents`` gives each consent now: one whose period has not
started permits nothing yet, so it is ``not_started``, not ``active``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from consent_support import (
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


def _period(start_in_days: int, end_in_days: int) -> dict[str, str]:
    today = datetime.now(UTC).replace(microsecond=0)
    return {
        "start": (today + timedelta(days=start_in_days)).isoformat(),
        "end": (today + timedelta(days=end_in_days)).isoformat(),
    }


def test_a_consent_whose_period_has_not_started_is_not_active(
    app: Flask, client: FlaskClient
) -> None:
    owner = add_agency(app, OWNER)
    child_id = push_child(client, owner)["child_id"]
    procuraduria(app)
    officer = consent_officer(app, "co-chp-004", "mx.chp.procuraduria")
    later: dict[str, Any] = {**consent_document(COMAR), "period": _period(30, 60)}
    now: dict[str, Any] = {**consent_document(COMAR), "period": _period(-30, 60)}
    scheduled = record_consent(client, officer, child_id, later)["id"]
    running = record_consent(client, officer, child_id, now)["id"]

    listed = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
    assert listed.status_code == 200
    states = {found["id"]: found["state"] for found in listed.get_json()["consents"]}
    assert states == {scheduled: "not_started", running: "active"}
