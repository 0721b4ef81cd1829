"""``/alerts`` in the portal: what ``GET /v1/audit/alerts`` answers oversight — emergency
overrides, those unreviewed 24 h after they were opened, denial and request spikes — by the same
service, each kind under its name and code, explained in Spanish and English. Oversight used to
need curl for it; nobody else gets it through the portal, as nobody else gets it from the API."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from consent_support import PROCURADURIA, PersonClient, add_person_client, deny
from flask import Flask
from flask.testing import FlaskClient
from portal_support import logged_in, text_of
from records_support import add_agency, execute, rows
from sqlalchemy import select, update

from exchange.agencies import Agency
from exchange.consent_store import OverrideRow
from tests.api.test_access_requests import ask

JUSTIFICATION = (
    "<script>alert('x')</script> Ingreso a urgencias inconsciente; el hospital necesita "
    "antecedentes médicos y el contacto de la madre."
)
_SECTION = re.compile(r'<section class="panel" id="kind-([a-z_]+)">(.*?)</section>', re.S)


@pytest.fixture
def oversight(app: Flask) -> dict[str, Any]:
    """The CNDH (an oversight body) and its auditor."""
    agency = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    person = add_person_client(app, "aud-cndh-001", "mx.fed.cndh", ["auditor"], ["audit:read"])
    return {"agency": agency, "person": person}


@pytest.fixture
def opener(app: Flask, officer: PersonClient) -> PersonClient:
    return add_person_client(
        app, "ov-chp-001", PROCURADURIA, ["override_officer"], ["override", "records:read"]
    )


@pytest.fixture
def opened(
    app: Flask, client: FlaskClient, opener: PersonClient, pushed: dict[str, Any]
) -> list[str]:
    """Two overrides about the child: the first opened 30 h ago and never reviewed."""
    found = []
    for _ in range(2):
        response = client.post(
            "/v1/overrides",
            json={
                "child_id": pushed["child_id"],
                "basis_code": "medical_emergency",
                "justification": JUSTIFICATION,
                "categories": ["health"],
                "hours": 72,
            },
            headers=opener.headers,
        )
        assert response.status_code == 201, response.get_json()
        found.append(str(response.get_json()["id"]))
    [(starts, ends)] = rows(
        app, select(OverrideRow.starts_at, OverrideRow.ends_at).where(OverrideRow.id == found[0])
    )
    back = timedelta(hours=30)
    execute(
        app,
        update(OverrideRow)
        .where(OverrideRow.id == found[0])
        .values(starts_at=starts - back, ends_at=ends - back),
    )
    return found


@pytest.fixture
def spikes(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    """With thresholds of 3: the lawyer refused at once 3 times (a denial spike) and asking 6
    times (a request spike), the officer denying her 3 other requests (a request denial spike)."""
    app.config.update(AUDIT_ALERT_DENIALS=3, AUDIT_ALERT_ACCESS_REQUESTS=3)
    for _ in range(3):
        refused = ask(
            client,
            lawyer,
            pushed["child_id"],
            purpose="migration_procedure",
            categories=["protection_concerns", "placement"],
        )
        assert refused.get_json()["status"] == "denied"
        pending = ask(client, lawyer, pushed["child_id"]).get_json()
        deny(client, officer, pending["id"])


def counted(response: Any) -> dict[str, int]:
    """How many alerts the page shows under each kind."""
    page = response.get_data(as_text=True)
    return {kind: body.count('<dl class="request">') for kind, body in _SECTION.findall(page)}


def test_oversight_sees_what_the_api_answers_each_kind_explained(
    app: Flask,
    client: FlaskClient,
    oversight: dict[str, Any],
    opened: list[str],
    spikes: None,
) -> None:
    api = client.get("/v1/audit/alerts", headers=oversight["agency"].headers).get_json()["alerts"]
    by_kind: dict[str, int] = {}
    for alert in api:
        by_kind[alert["kind"]] = by_kind.get(alert["kind"], 0) + 1
    assert by_kind == {
        "override": 2,
        "override_unreviewed": 1,
        "denial_spike": 1,
        "request_denial_spike": 1,
        "access_request_spike": 1,
    }

    browser = logged_in(app, "aud-cndh-001")
    page = browser.get("/alerts?lang=en")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    shown = counted(page)
    assert {kind: count for kind, count in shown.items() if count} == by_kind
    assert next(iter(shown)) == "override_unreviewed"  # the most urgent first
    words = text_of(page)
    assert "6 alerts in the last hour" in words
    assert "Unreviewed emergency override override_unreviewed — 1" in words
    assert "has still not reviewed 24 hours after it was opened" in words
    assert "Denial spike denial_spike — 1" in words and "Persona lic-ana" in words
    assert "Times in the period 3 (threshold: 3)" in words
    assert "Request denial spike request_denial_spike" in words
    assert "Access request spike access_request_spike" in words
    assert "Times in the period 6 (threshold: 3)" in words
    # The justification is not in the alerts (the API leaves it out); the override's page has it.
    body = page.get_data(as_text=True)
    assert "Ingreso a urgencias" not in body and "<script>" not in body
    assert f'href="/overrides/{opened[0]}?lang=en"' in body

    spanish = text_of(browser.get("/alerts?lang=es"))
    assert "Alertas de supervisión" in spanish and "6 alertas en la última hora" in spanish
    assert "Acceso de emergencia sin revisar override_unreviewed" in spanish
    assert "Pico de denegaciones denial_spike" in spanish and "Urgencia médica" in spanish


def test_the_window_may_be_chosen_within_the_apis_bounds(
    app: Flask, oversight: dict[str, Any], opened: list[str]
) -> None:
    browser = logged_in(app, "aud-cndh-001")
    day = browser.get("/alerts?lang=en&window=86400")
    assert day.status_code == 200 and "in the last 24 hours" in text_of(day)
    assert '<option value="86400" selected>' in day.get_data(as_text=True)
    week = browser.get("/alerts?lang=es&window=604800")
    assert "en los últimos 7 días" in text_of(week)
    two_hours = browser.get("/alerts?lang=en&window=7200")  # not one of the offered periods
    assert '<option value="7200" selected>' in two_hours.get_data(as_text=True)
    for wrong in ("59", "2592001", "una hora", "-3600", "9" * 4301):
        refused = browser.get(f"/alerts?lang=en&window={wrong}")
        assert refused.status_code == 400
        assert "The period asked for is not valid" in text_of(refused)
        assert "in the last hour (" in text_of(refused)  # the default period is shown


def test_no_alerts_is_said_and_every_code_still_explained(
    app: Flask, oversight: dict[str, Any]
) -> None:
    words = text_of(logged_in(app, "aud-cndh-001").get("/alerts?lang=en"))
    assert "No alerts in the last hour" in words
    for code in ("override", "override_unreviewed", "denial_spike", "request_denial_spike"):
        assert f" {code} " in words
    assert words.count("None.") == 7


@pytest.fixture
def others(app: Flask, officer: PersonClient, lawyer: PersonClient) -> None:
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", kind="state_dif")
    add_person_client(
        app, "co-nl-001", "mx.nl.procuraduria", ["consent_officer"], ["consent:write"]
    )


@pytest.mark.parametrize("person", ["co-chp-004", "co-nl-001", "lic-ana", "ov-chp-001"])
def test_anyone_but_oversight_gets_the_portals_403(
    app: Flask, oversight: dict[str, Any], opened: list[str], others: None, person: str
) -> None:
    browser = logged_in(app, person)
    assert "/alerts" not in browser.get("/?lang=en").get_data(as_text=True)
    refused = browser.get("/alerts?lang=en")
    assert refused.status_code == 403
    assert "Your roles do not allow this page." in text_of(refused)
    assert opened[0] not in refused.get_data(as_text=True)


def test_an_auditor_whose_agency_is_no_longer_oversight_is_refused_as_by_the_api(
    app: Flask, client: FlaskClient, oversight: dict[str, Any], opened: list[str]
) -> None:
    browser = logged_in(app, "aud-cndh-001")
    execute(app, update(Agency).where(Agency.id == "mx.fed.cndh").values(kind="state_dif"))
    api = client.get("/v1/audit/alerts", headers=oversight["person"].headers)
    refused = browser.get("/alerts?lang=en")
    assert api.status_code == refused.status_code == 403
    assert "Only an oversight body reads the audit log's alerts." in text_of(refused)
    assert "/alerts" not in browser.get("/?lang=en").get_data(as_text=True)


def test_an_agency_systems_token_opens_no_alerts_page(
    client: FlaskClient, oversight: dict[str, Any], opened: list[str]
) -> None:
    answer = client.get("/alerts", headers=oversight["agency"].headers)
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/login")
