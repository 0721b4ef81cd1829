"""The state ``GET /v1/children/{id}/consents`` gives each consent now: one whose period has not
started permits nothing yet, so it is ``not_started``, not ``active``; one that stopped counting
at the child's 18th birthday is ``expired``."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
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
from records_support import add_agency, envelope, example, push

import exchange.consents.records


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
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    later: dict[str, Any] = {**consent_document(COMAR), "period": _period(30, 60)}
    now: dict[str, Any] = {**consent_document(COMAR), "period": _period(-30, 60)}
    scheduled = record_consent(client, officer, child_id, later)["id"]
    running = record_consent(client, officer, child_id, now)["id"]

    listed = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
    assert listed.status_code == 200
    states = {found["id"]: found["state"] for found in listed.get_json()["consents"]}
    assert states == {scheduled: "not_started", running: "active"}


def test_a_consent_ends_at_the_childs_18th_birthday_whatever_its_period_says(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A consent with no end counts only until the 18th birthday (docs/consent.md §2): once the
    # child is an adult the list says it ended, as the engine already treats it.
    today = datetime.now(UTC).date()
    birthday = today + timedelta(days=40)
    if (birthday.month, birthday.day) == (2, 29):
        birthday += timedelta(days=1)
    data = copy.deepcopy(example("typical"))
    data["child"]["date_of_birth"] = birthday.replace(year=birthday.year - 18).isoformat()
    owner = add_agency(app, OWNER)
    pushed = push(client, owner, envelope("EXP-17", data))
    assert pushed.status_code == 201, pushed.get_json()
    child_id = pushed.get_json()["child_id"]
    procuraduria(app)
    officer = consent_officer(app, "co-chp-004", "mx.chp.procuraduria")
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    open_ended: dict[str, Any] = {
        **consent_document(COMAR),
        "period": {"start": "2026-01-01T00:00:00-06:00"},
    }
    consent_id = record_consent(client, officer, child_id, open_ended)["id"]

    def state() -> str:
        listed = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
        assert listed.status_code == 200, listed.get_json()
        [found] = listed.get_json()["consents"]
        assert found["id"] == consent_id
        return str(found["state"])

    assert state() == "active"
    # The 18th birthday begins at midnight in UTC−05:00.
    majority = datetime(birthday.year, birthday.month, birthday.day, 5, tzinfo=UTC)
    monkeypatch.setattr(
        exchange.consents.records, "utcnow", lambda: majority - timedelta(seconds=1)
    )
    assert state() == "active"
    monkeypatch.setattr(exchange.consents.records, "utcnow", lambda: majority)
    assert state() == "expired"
