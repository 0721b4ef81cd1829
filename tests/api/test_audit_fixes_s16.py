"""``/v1/audit`` never answers less than it was asked for without saying so: a range of
entries with an index missing from the database is a 500 naming it, not a page that skips it;
a query parameter given twice is a 400 naming it, not answered for one of its values; and an
``until`` before ``since`` is a 400, not an empty page."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from exchange import db
from exchange.audit_log import AuditEntry
from tests.api.test_audit_api import _log, _token


@pytest.fixture
def auditor(app: Flask) -> dict[str, str]:
    _log(app, 50)
    return {**_token(app, ["audit:read"]), "Accept-Language": "en"}


def _delete_entry(app: Flask, index: int) -> None:
    with db.database(app).sessions() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.idx == index))
        session.commit()


def _indices(body: str) -> list[int]:
    return [json.loads(line)["index"] for line in body.splitlines()]


@pytest.mark.parametrize(
    ("query", "first_missing"),
    [
        ("start=38&end=42", 40),  # in the middle of the page
        ("start=40&end=42", 40),  # the page's first index
        ("start=36&end=41", 40),  # its last
        ("start=40&end=41", 40),  # the page is that index alone
    ],
)
def test_a_range_with_an_index_missing_from_the_database_is_a_500_naming_it(
    app: Flask, client: FlaskClient, auditor: dict[str, str], query: str, first_missing: int
) -> None:
    _delete_entry(app, 40)
    response = client.get(f"/v1/audit/entries?{query}", headers=auditor)
    assert response.status_code == 500, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("/internal")
    assert problem["missing_index"] == first_missing
    assert (
        f"Entry {first_missing} of the log is missing from the hub's database"
        in (problem["detail"])
    )
    spanish = client.get(
        f"/v1/audit/entries?{query}", headers={**auditor, "Accept-Language": "es"}
    ).get_json()
    assert f"Falta la entrada {first_missing} del registro" in spanish["detail"]


def test_the_pages_around_a_missing_index_are_served_whole(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    _delete_entry(app, 40)
    before = client.get("/v1/audit/entries?start=30&end=40", headers=auditor)
    assert before.status_code == 200
    assert _indices(before.get_data(as_text=True)) == list(range(30, 40))
    after = client.get("/v1/audit/entries?start=41&end=100", headers=auditor)
    assert after.status_code == 200  # cut at the log's size, 50
    assert _indices(after.get_data(as_text=True)) == list(range(41, 50))


def test_the_first_of_several_missing_indices_is_named(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    for index in (45, 42, 47):
        _delete_entry(app, index)
    problem = client.get("/v1/audit/entries?start=38&end=50", headers=auditor).get_json()
    assert problem["missing_index"] == 42


def test_the_last_entries_missing_are_named_too(
    app: Flask, client: FlaskClient, auditor: dict[str, str]
) -> None:
    with db.database(app).sessions() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.idx >= 48))
        session.commit()
    problem = client.get("/v1/audit/entries?start=40", headers=auditor).get_json()
    assert (problem["status"], problem["missing_index"]) == (500, 48)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/audit/events?child_id=ch-0001&child_id=ch-0002", "child_id"),
        ("/v1/audit/events?actor=mx.fed.comar&actor=mx.other", "actor"),
        ("/v1/audit/events?outcome=success&outcome=denied", "outcome"),
        ("/v1/audit/events?since=2026-01-01T00:00:00Z&since=2027-01-01T00:00:00Z", "since"),
        ("/v1/audit/events?format=json&format=fhir", "format"),
        ("/v1/audit/entries?start=0&start=3&end=4", "start"),
        ("/v1/audit/entries?start=0&end=4&end=5", "end"),
        ("/v1/audit/proofs/inclusion?index=1&index=2", "index"),
        ("/v1/audit/proofs/consistency?first=1&first=2&second=50", "first"),
        ("/v1/audit/alerts?window=60&window=3600", "window"),
    ],
)
def test_a_repeated_query_parameter_is_refused_naming_it(
    client: FlaskClient, auditor: dict[str, str], path: str, name: str
) -> None:
    response = client.get(path, headers=auditor)
    assert response.status_code == 400, response.get_data(as_text=True)
    problem = response.get_json()
    assert problem["type"].endswith("/validation")
    assert problem["detail"] == f"Parameter {name}: was given 2 times; give one value."
    assert problem["errors"] == [
        {
            "pointer": f"/query/{name}",
            "parameter": name,
            "message": "was given 2 times; give one value",
        }
    ]
    spanish = client.get(path, headers={**auditor, "Accept-Language": "es"}).get_json()
    assert spanish["detail"] == f"Parámetro {name}: se indicó 2 veces; indique un solo valor."


def test_a_repeated_parameter_is_checked_after_the_token(app: Flask, client: FlaskClient) -> None:
    path = "/v1/audit/events?child_id=a&child_id=b"
    assert client.get(path).status_code == 401
    assert client.get(path, headers=_token(app, ["records:read"])).status_code == 403


def test_one_child_id_still_answers_its_history(
    client: FlaskClient, auditor: dict[str, str]
) -> None:
    response = client.get("/v1/audit/events?child_id=ch-0001", headers=auditor)
    assert response.status_code == 200
    assert [e["entry"]["child_id"] for e in response.get_json()["events"]] == ["ch-0001"]


def test_until_before_since_is_refused(client: FlaskClient, auditor: dict[str, str]) -> None:
    path = "/v1/audit/events?since=2026-11-24T10:00:45Z&until=2026-11-24T10:00:40Z"
    response = client.get(path, headers=auditor)
    assert response.status_code == 400, response.get_data(as_text=True)
    problem = response.get_json()
    assert problem["errors"][0]["pointer"] == "/query/until"
    assert problem["detail"] == (
        "Parameter until: must not be before since (2026-11-24T10:00:45Z)."
    )
    spanish = client.get(path, headers={**auditor, "Accept-Language": "es"}).get_json()
    assert "debe ser igual o posterior a since" in spanish["detail"]
    # Offsets count: 10:00:40+05:00 is 05:00:40Z, before 10:00:45Z.
    offset = client.get(
        "/v1/audit/events?since=2026-11-24T10:00:45Z&until=2026-11-24T10:00:40%2B05:00",
        headers=auditor,
    )
    assert offset.status_code == 400


def test_an_empty_or_ordered_window_is_still_answered(
    client: FlaskClient, auditor: dict[str, str]
) -> None:
    same = "/v1/audit/events?since=2026-11-24T10:00:40Z&until=2026-11-24T10:00:40Z"
    assert client.get(same, headers=auditor).get_json()["events"] == []  # [t, t) is empty
    ordered = client.get(
        "/v1/audit/events?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z&limit=5",
        headers=auditor,
    )
    assert ordered.status_code == 200 and len(ordered.get_json()["events"]) == 5


def test_openapi_says_what_the_audit_routes_refuse(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    entries = spec["paths"]["/v1/audit/entries"]["get"]
    assert "missing_index" in json.dumps(entries["responses"]["500"])
    assert "never a page that skips it" in entries["description"]
    events = {p["name"]: p for p in spec["paths"]["/v1/audit/events"]["get"]["parameters"]}
    assert "Before `since` is `400`" in events["until"]["description"]
    assert "given twice is `400`" in events["child_id"]["description"]
    (tag,) = [t for t in spec["tags"] if t["name"] == "audit"]
    assert "a parameter given twice" in tag["description"]
