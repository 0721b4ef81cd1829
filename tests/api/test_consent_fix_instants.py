"""Instants the consent routes take and answer.

Taken: every instant in a body — a request's or a decision's ``until``, a consent's and its
provisions' periods, a withhold entry's ``starts`` and ``ends`` — must carry an offset (never
read as UTC) and fall within years 1 to 9999 once in UTC, or the body is a ``400 validation``
pointing at it, in Spanish and English. ``9999-12-31T23:59:59-12:00`` is in year 10000 in
UTC: stored, PostgreSQL would fail to hand it back (every later queue read a 500), SQLite
would cut it.

Answered: every instant in UTC (``+00:00``), whatever offset it was sent with, so the same
moment always reads the same — in the request, its message, its ``access`` and the grants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    PersonClient,
    consent_document,
    record_consent,
)
from flask.testing import FlaskClient

BEYOND = "9999-12-31T23:59:59-12:00"  # year 10000 in UTC
BEFORE = "0001-01-01T00:00:00+01:00"  # year 0 in UTC
NAIVE = "2027-01-01T00:00:00"


def soon(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


def refused_at(response: Any, pointer: str) -> dict[str, str]:
    """The one failure of a validation problem, at ``pointer``."""
    assert response.status_code == 400, response.get_json()
    problem = response.get_json()
    assert problem["type"].endswith("/validation")
    [error] = [error for error in problem["errors"] if error["pointer"] == pointer]
    return dict(error)


def ask(client: FlaskClient, lawyer: PersonClient, child_id: str, until: str, **more: Any) -> Any:
    return client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": "legal_representation",
            "categories": ["identity", "legal_status"],
            "until": until,
            **more,
        },
        headers={**lawyer.headers, "Accept-Language": "en"},
    )


@pytest.mark.parametrize("language", ["es", "en"])
def test_a_request_until_beyond_year_9999_in_utc_is_refused_and_the_queue_still_answers(
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    language: str,
) -> None:
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "categories": ["identity"],
            "until": BEYOND,
        },
        headers={**lawyer.headers, "Accept-Language": language},
    )
    error = refused_at(response, "/until")
    words = {"es": "años 1 a 9999", "en": "years 1 to 9999"}[language]
    assert words in error["message"] and BEYOND in error["message"]
    queue = client.get("/v1/access-requests?status=pending", headers=officer.headers)
    assert queue.status_code == 200, queue.get_json()
    assert queue.get_json()["access_requests"] == []


@pytest.mark.parametrize(
    ("until", "words"),
    [
        (BEFORE, "years 1 to 9999"),
        ("0000-06-01T00:00:00Z", "years 1 to 9999"),
        ("2026-12-31T23:59:60Z", "leap second"),  # the schema's format lets it through
    ],
)
def test_other_instants_python_cannot_hold_are_a_400_not_a_500(
    client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any], until: str, words: str
) -> None:
    error = refused_at(ask(client, lawyer, pushed["child_id"], until), "/until")
    assert words in error["message"]


def test_a_withhold_entry_ending_beyond_year_9999_is_refused(
    client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    response = client.post(
        f"/v1/children/{pushed['child_id']}/withholds",
        json={
            "target": {"agency_id": CLINIC},
            "starts": BEFORE,
            "ends": BEYOND,
            "reason": "Protección de la niña.",
        },
        headers={**officer.headers, "Accept-Language": "en"},
    )
    for pointer in ("/starts", "/ends"):
        assert "years 1 to 9999" in refused_at(response, pointer)["message"]


def test_a_consent_period_or_provision_period_beyond_year_9999_is_refused(
    client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    document = consent_document(CLINIC, purposes=["legal_representation"])
    document["provision"][0]["period"] = {"start": soon(0), "end": BEYOND}
    document["provision"][0]["provision"] = [
        {"decision": "deny", "data_category": ["health"], "period": {"end": BEYOND}}
    ]
    response = client.post(
        f"/v1/children/{pushed['child_id']}/consents",
        json=document,
        headers={**officer.headers, "Accept-Language": "en"},
    )
    for pointer in ("/provision/0/period/end", "/provision/0/provision/0/period/end"):
        assert "years 1 to 9999" in refused_at(response, pointer)["message"]
    document = consent_document(CLINIC, purposes=["legal_representation"])
    document["period"]["end"] = BEYOND
    response = client.post(
        f"/v1/children/{pushed['child_id']}/consents", json=document, headers=officer.headers
    )
    refused_at(response, "/period/end")


@pytest.mark.parametrize(
    ("until", "es", "en"),
    [
        # As a request's until without an offset is refused (the shared date_time).
        (NAIVE, "(con zona horaria o Z)", "(with a time zone or Z)"),
        (BEYOND, "años 1 a 9999", "years 1 to 9999"),
    ],
)
def test_the_officers_until_is_an_instant_like_any_other(
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    until: str,
    es: str,
    en: str,
) -> None:
    """A time without an offset was read as UTC here alone; every other instant is refused
    without one (the shared date_time definition). Refused now, in both languages."""
    request = ask(client, lawyer, pushed["child_id"], soon()).get_json()
    for language, words in (("es", es), ("en", en)):
        response = client.post(
            f"/v1/access-requests/{request['id']}/decision",
            json={"approve": True, "reason": "Representación acreditada.", "until": until},
            headers={**officer.headers, "Accept-Language": language},
        )
        assert words in refused_at(response, "/until")["message"]
    seen = client.get(f"/v1/access-requests/{request['id']}", headers=officer.headers)
    assert seen.get_json()["status"] == "pending"
    assert en in refused_at(ask(client, lawyer, pushed["child_id"], until), "/until")["message"]


def test_not_an_instant_refuses_a_time_without_an_offset() -> None:
    """The check the portal's forms share with the routes: no time is read as UTC."""
    from exchange.api.consents import body_instant, not_an_instant

    es, en = not_an_instant(NAIVE, "until") or ("", "")
    assert "necesita zona horaria" in es and "needs a time zone" in en
    assert not_an_instant(BEYOND, "until") is not None
    assert not_an_instant("2027-01-01T00:00:00-06:00", "until") is None
    assert body_instant({"until": "2027-01-01T00:00:00-06:00"}, "until") == datetime(
        2027, 1, 1, 6, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="time zone"):
        body_instant({"until": NAIVE}, "until")


def test_the_same_moment_is_always_written_in_utc(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    child_id = pushed["child_id"]
    # Granted at once (a consent covers it), asked until a local date before the consent ends.
    record_consent(
        client,
        officer,
        child_id,
        consent_document(
            CLINIC, purposes=["legal_representation"], categories=["identity", "legal_status"]
        ),
    )
    asked = ask(client, lawyer, child_id, "2027-06-01T00:00:00-06:00").get_json()
    assert asked["status"] == "granted"
    assert asked["until"] == asked["access"]["until"] == "2027-06-01T06:00:00+00:00"
    assert "2027-06-01T06:00:00+00:00" in asked["message"]["en"]
    assert "-06:00" not in str(asked)

    # Approved by an officer, cut to an earlier local date: the request, the message, the
    # access, the grant and the grantee's list all write it in UTC.
    pending = ask(
        client, lawyer, child_id, "2027-06-01T00:00:00-06:00", categories=["family"]
    ).get_json()
    assert pending["status"] == "pending"
    decided = client.post(
        f"/v1/access-requests/{pending['id']}/decision",
        json={
            "approve": True,
            "reason": "Localizar a la familia.",
            "until": "2027-03-01T00:00:00-06:00",
        },
        headers=officer.headers,
    ).get_json()
    cut = "2027-03-01T06:00:00+00:00"
    assert decided["until"] == "2027-06-01T06:00:00+00:00"
    assert decided["access"]["until"] == decided["grant"]["until"] == cut
    assert f"(before the date asked for, {decided['until']})" in decided["message"]["en"]
    assert decided["grant"]["starts"].endswith("+00:00")  # not the engine's own "Z"
    [listed] = client.get("/v1/grants", headers=lawyer.headers).get_json()["grants"]
    assert listed["until"] == cut and listed["starts"] == decided["grant"]["starts"]
    seen = client.get(f"/v1/access-requests/{pending['id']}", headers=lawyer.headers).get_json()
    assert seen["access"]["until"] == cut and "-06:00" not in str(seen)


def test_the_decision_answer_carries_the_decision_as_it_stands_after_it(
    client: FlaskClient, lawyer: PersonClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    """Next to ``status: granted`` the answer used to carry the decision made when the lawyer
    asked, with what was then withheld: it now carries the decision as it stands with the
    grant, and the one made when asked under its own name."""
    asked = ask(
        client, lawyer, pushed["child_id"], soon(), categories=["family", "health"]
    ).get_json()
    assert asked["status"] == "pending"
    decided = client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        json={"approve": True, "reason": "Necesario para el juicio."},
        headers=officer.headers,
    ).get_json()
    assert decided["status"] == "granted"
    assert decided["decision"]["result"] == "permit"
    assert decided["decision"]["categories"] == ["family", "health"]
    assert decided["decision"]["withheld"] == [] and decided["decision"]["basis"] == "grant"
    assert decided["decision"]["grant_ids"] == [decided["grant_id"]]
    when_asked = decided["decision_when_asked"]
    assert when_asked["result"] == "deny" and when_asked["withheld"] == ["family", "health"]
    assert when_asked["id"] == asked["decision"]["id"]
    # As /openapi.json describes the answer, where both are named.
    from jsonschema import Draft202012Validator

    components = client.get("/openapi.json").get_json()["components"]
    described = components["schemas"]["AccessRequest"]
    assert {"decision", "decision_when_asked"} <= set(described["properties"])
    schema = {"$ref": "#/components/schemas/AccessRequest", "components": components}
    Draft202012Validator(schema).validate(decided)

    refused = ask(client, lawyer, pushed["child_id"], soon(), categories=["education"])
    denied = client.post(
        f"/v1/access-requests/{refused.get_json()['id']}/decision",
        json={"approve": False, "reason": "No es necesario."},
        headers=officer.headers,
    ).get_json()
    assert denied["status"] == "denied" and denied["decision"]["result"] == "deny"
    assert denied["decision_when_asked"]["withheld"] == ["education"]
