"""``/v1/audit`` query parameters: numbers too large for any index are "out of range", a
time whose ``+`` arrived as a space says how to write it, and the OpenAPI says what the
``since``/``until`` window is."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.test_audit_api import _log, _token


@pytest.fixture
def auditor(app: Flask) -> dict[str, str]:
    _log(app, 3)
    return {**_token(app, ["audit:read"]), "Accept-Language": "en"}


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/audit/entries?start=0&end=99999999999999999999999", "end"),
        ("/v1/audit/entries?start=9223372036854775808", "start"),
        ("/v1/audit/proofs/inclusion?index=0&tree_size=999999999999999999999", "tree_size"),
        ("/v1/audit/proofs/consistency?first=1&second=99999999999999999999", "second"),
        ("/v1/audit/events?cursor=9999999999999999999", "cursor"),
        ("/v1/audit/events?cursor=" + "9" * 5000, "cursor"),
    ],
)
def test_numbers_beyond_64_bits_are_out_of_range(
    client: FlaskClient, auditor: dict[str, str], path: str, name: str
) -> None:
    response = client.get(path, headers=auditor)
    assert response.status_code == 400, response.get_data(as_text=True)
    problem = response.get_json()
    assert "non-negative integer" not in problem["detail"]
    assert problem["detail"].startswith(f"Parameter {name}: is out of range")
    assert problem["errors"][0]["pointer"] == f"/query/{name}"
    spanish = client.get(path, headers={**auditor, "Accept-Language": "es"}).get_json()
    assert "está fuera de rango: no cabe en 64 bits" in spanish["detail"]


def test_the_largest_64_bit_number_is_still_a_number(
    client: FlaskClient, auditor: dict[str, str]
) -> None:
    response = client.get("/v1/audit/entries?start=9223372036854775807", headers=auditor)
    assert response.status_code == 404  # beyond the log, not a bad number
    leading_zeros = client.get("/v1/audit/entries?start=00000000000000000000001", headers=auditor)
    assert "out of range" not in leading_zeros.get_json()["detail"]


def test_a_plus_that_arrived_as_a_space_is_explained(
    client: FlaskClient, auditor: dict[str, str]
) -> None:
    raw = client.get("/v1/audit/events?since=2026-11-24T10:00:00+05:00", headers=auditor)
    assert raw.status_code == 400
    assert "+ of the offset must be written %2B" in raw.get_json()["detail"]
    spanish = client.get(
        "/v1/audit/events?since=2026-11-24T10:00:00+05:00",
        headers={**auditor, "Accept-Language": "es"},
    ).get_json()
    assert "el signo + de la zona debe escribirse %2B" in spanish["detail"]
    encoded = client.get("/v1/audit/events?since=2026-11-24T10:00:00%2B05:00", headers=auditor)
    assert encoded.status_code == 200
    # No space, no hint: the hint is about what a space stands for.
    other = client.get("/v1/audit/events?until=yesterday", headers=auditor).get_json()
    assert "%2B" not in other["detail"]


def test_openapi_describes_the_events_window(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    parameters = {p["name"]: p for p in spec["paths"]["/v1/audit/events"]["get"]["parameters"]}
    assert "[since, until)" in parameters["since"]["description"]
    assert "inclusive" in parameters["since"]["description"]
    assert "[since, until)" in parameters["until"]["description"]
    assert "exclusive" in parameters["until"]["description"]
    assert "%2B" in parameters["since"]["description"]
