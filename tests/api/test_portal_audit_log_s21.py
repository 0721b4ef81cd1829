"""``/audit`` in the portal: the audit log's entries for oversight, as ``GET /v1/audit/events``
finds them, newest first, filtered by child, actor, action, outcome and days in central Mexico
time, each under the schema's own words and with its signed text. Oversight used to need curl
or an export for it; nobody else gets it through the portal, as nobody else gets it from the
API, and reading it does not grow the log."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from consent_support import add_person_client
from flask import Flask
from flask.testing import FlaskClient
from portal_support import logged_in, text_of
from records_support import add_agency

from exchange import db
from exchange.audit_queries import log_size
from tests.api.test_audit_api import _log

_ENTRY = re.compile(r"<strong>#(\d+)</strong>")


@pytest.fixture
def oversight(app: Flask) -> dict[str, Any]:
    """The CNDH (an oversight body) and its auditor."""
    agency = add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    person = add_person_client(app, "aud-cndh-001", "mx.fed.cndh", ["auditor"], ["audit:read"])
    return {"agency": agency, "person": person}


def shown(response: Any) -> list[int]:
    """The indexes of the entries the page shows, in its order."""
    return [int(index) for index in _ENTRY.findall(response.get_data(as_text=True))]


def size_of_log(app: Flask) -> int:
    with app.app_context(), db.database(app).sessions() as session:
        return log_size(session)


def api_indexes(client: FlaskClient, headers: dict[str, str], query: str) -> list[int]:
    answer = client.get(f"/v1/audit/events?limit=1000&{query}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return [event["index"] for event in answer.get_json()["events"]]


def test_oversight_reads_what_the_api_finds_newest_first(
    app: Flask, client: FlaskClient, oversight: dict[str, Any]
) -> None:
    _log(app, 3)
    _log(app, 2, action="record.pushed", actor_agency="mx.fed.cndh", actor_role="system")
    _log(
        app,
        2,
        outcome="denied",
        actor_agency="mx.fed.inm",
        purpose="migration_procedure",
        decision_basis="hard_rule",
        consent_ids=None,
        rule_ids=["no_protection_to_inm"],
    )
    headers = oversight["agency"].headers
    browser = logged_in(app, "aud-cndh-001")
    size = size_of_log(app)

    page = browser.get("/audit?lang=en")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    everything = api_indexes(client, headers, "")
    assert shown(page) == list(reversed(everything)) and len(everything) == size
    for query in (
        "child_id=ch-0001",
        "actor=mx.fed.inm",
        "action=record_pushed",
        "outcome=denied",
        "actor=mx.fed.comar&outcome=success",
    ):
        filtered = browser.get(f"/audit?lang=en&{query}")
        assert filtered.status_code == 200, query
        assert shown(filtered) == list(reversed(api_indexes(client, headers, query))), query
        assert shown(filtered) and len(shown(filtered)) < len(everything), query

    words = text_of(browser.get("/audit?lang=en&outcome=denied"))
    assert "2 entries." in words
    assert "Record read record_read" in words and "Denied denied" in words
    assert "Purpose migration_procedure" in words and "basis hard_rule" in words
    # An agency registered here is named; another is shown by its id alone.
    pushes = text_of(browser.get("/audit?lang=en&action=record_pushed"))
    assert "Record pushed record_pushed" in pushes and "mx.fed.cndh" in pushes
    inm = browser.get("/audit?lang=en&actor=mx.fed.inm")
    # The signed text, as the log holds it.
    assert '"rule_ids":["no_protection_to_inm"]' in text_of(inm)
    assert 'href="/audit?child_id=ch-0001&amp;lang=en"' in inm.get_data(as_text=True)

    spanish = text_of(browser.get("/audit?lang=es&outcome=denied"))
    assert "Bitácora de auditoría" in spanish and "2 entradas." in spanish
    assert "Expediente consultado record_read" in spanish and "Denegado denied" in spanish

    # Reading the log through the page does not grow it.
    assert size_of_log(app) == size


def test_days_are_read_in_central_mexico_time(app: Flask, oversight: dict[str, Any]) -> None:
    # 05:59Z is 23:59 on the 22nd in central Mexico (UTC−06:00); 06:01Z is 00:01 on the 23rd.
    for moment in ("2026-11-23T05:59:00+00:00", "2026-11-23T06:01:00+00:00"):
        _log(app, 1, time=datetime.fromisoformat(moment))
    browser = logged_in(app, "aud-cndh-001")

    def reads(days: str) -> Any:
        return browser.get(f"/audit?lang=en&action=record_read&{days}")

    assert shown(reads("since=2026-11-23")) == [3]
    assert shown(reads("until=2026-11-22")) == [2]
    assert shown(reads("since=2026-11-22&until=2026-11-23")) == [3, 2]
    assert shown(reads("since=2026-11-24")) == []
    assert "No entry with these filters." in text_of(reads("since=2026-11-24"))


def test_pages_of_fifty_go_back_through_older_entries(
    app: Flask, client: FlaskClient, oversight: dict[str, Any]
) -> None:
    _log(app, 60)
    reads = api_indexes(client, oversight["agency"].headers, "action=record_read")[::-1]
    assert len(reads) == 60
    browser = logged_in(app, "aud-cndh-001")
    first = browser.get("/audit?lang=en&action=record_read")
    assert shown(first) == reads[:50]
    older = re.search(r'href="([^"]+)" rel="next"', first.get_data(as_text=True))
    assert older is not None
    link = older.group(1).replace("&amp;", "&")
    assert f"before={reads[49]}" in link and "action=record_read" in link  # filters kept
    second = browser.get(link)
    assert shown(second) == reads[50:]
    assert 'rel="next"' not in second.get_data(as_text=True)
    assert f"10 entries before entry #{reads[49]}." in text_of(second)


@pytest.mark.parametrize(
    "query",
    [
        "action=record.eaten",
        "outcome=maybe",
        "since=yesterday",
        "since=2026-02-31",
        "until=20261123",
        "since=2026-11-23&until=2026-11-22",
        "child_id=ch-0001%1b%5B2J",
        "actor=" + "x" * 201,
    ],
)
def test_a_wrong_filter_is_said_and_left_out(
    app: Flask, oversight: dict[str, Any], query: str
) -> None:
    _log(app, 3)
    browser = logged_in(app, "aud-cndh-001")
    everything = shown(browser.get("/audit?lang=en"))
    refused = browser.get(f"/audit?lang=en&{query}")
    assert refused.status_code == 400
    assert "not applied" in text_of(refused)
    assert shown(refused) == everything  # the wrong filter left out


def test_a_page_marker_of_thousands_of_digits_is_no_error(
    app: Flask, oversight: dict[str, Any]
) -> None:
    _log(app, 2)
    browser = logged_in(app, "aud-cndh-001")
    everything = shown(browser.get("/audit?lang=en"))
    assert shown(browser.get("/audit?lang=en&before=" + "9" * 4301)) == everything
    assert shown(browser.get(f"/audit?lang=en&before={everything[0]}")) == everything[1:]


@pytest.mark.parametrize("person", ["co-chp-004", "lic-ana"])
def test_anyone_but_oversight_gets_the_portals_403(
    app: Flask, oversight: dict[str, Any], officer: Any, lawyer: Any, person: str
) -> None:
    _log(app, 2)
    browser = logged_in(app, person)
    assert "/audit" not in browser.get("/?lang=en").get_data(as_text=True)
    refused = browser.get("/audit?lang=en")
    assert refused.status_code == 403
    assert "Your roles do not allow this page." in text_of(refused)
    assert "ch-0001" not in refused.get_data(as_text=True)


def test_oversight_finds_the_page_from_home(app: Flask, oversight: dict[str, Any]) -> None:
    home = logged_in(app, "aud-cndh-001").get("/?lang=es")
    assert 'href="/audit?lang=es"' in home.get_data(as_text=True)
    assert "Bitácora de auditoría" in text_of(home)
