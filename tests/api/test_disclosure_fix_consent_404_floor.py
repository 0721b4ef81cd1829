"""The consent routes answer 404 alike for a child outside the officer's jurisdiction and for an
unknown id — and take as long: loading and weighing a child that exists costs time an unknown
id does not, so both 404s wait out ``READ_REFUSAL_FLOOR`` from the request's start, as record
reads do. Checked by the padding asked for (the floor's sleep is faked), not by timing. On both
backends (the ``app`` fixture)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from consent_support import (
    PROCURADURIA,
    PersonClient,
    add_person_client,
    push_child,
)
from flask import Flask, g
from flask.testing import FlaskClient
from records_support import add_agency

from exchange.api import record_reads
from tests.api.test_access_requests import ask

FLOOR = 30.0
UNKNOWN_CHILD = "nna_00000000000000000000"

Call = Callable[[FlaskClient, str], Any]


def paddings(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each sleep the floor asks for, as the instant it waits for, from the request's start."""
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(time.perf_counter() + seconds - g.started)

    fake = SimpleNamespace(perf_counter=time.perf_counter, sleep=sleep)
    monkeypatch.setattr(record_reads, "time", fake)
    return asked


def decisions(child_id: str) -> dict[str, Any]:
    return {
        "actor": {"agency_id": "mx.fed.comar"},
        "child_id": child_id,
        "action": "read",
        "purpose": "asylum_procedure",
        "categories": ["identity"],
    }


WITHHOLD = {
    "target": {"agency_id": "mx.osc.clinica"},
    "categories": ["health"],
    "reason": "El despacho representa también al presunto agresor.",
}
OVERRIDE = {
    "basis_code": "medical_emergency",
    "justification": "Ingreso a urgencias inconsciente; se necesitan antecedentes médicos.",
    "categories": ["health"],
    "hours": 6,
}

#: (route, how the officer — or the override officer — calls it about ``child_id``).
ROUTES: list[tuple[str, bool, Call]] = [
    ("GET consents", False, lambda c, child: ("GET", f"/v1/children/{child}/consents", None)),
    ("GET views", False, lambda c, child: ("GET", f"/v1/children/{child}/views", None)),
    ("GET withholds", False, lambda c, child: ("GET", f"/v1/children/{child}/withholds", None)),
    ("POST decisions", False, lambda c, child: ("POST", "/v1/decisions", decisions(child))),
    (
        "POST withholds",
        False,
        lambda c, child: ("POST", f"/v1/children/{child}/withholds", WITHHOLD),
    ),
    (
        "POST overrides",
        True,
        lambda c, child: ("POST", "/v1/overrides", OVERRIDE | {"child_id": child}),
    ),
]


@pytest.fixture
def nuevo_leon_child(app: Flask, client: FlaskClient) -> str:
    """A child whose only record Nuevo León's DIF holds: outside the Chiapas officer's reach."""
    nuevo_leon = add_agency(app, "mx.nl.dif", jurisdiction="19")
    return str(push_child(client, nuevo_leon, "NL-1")["child_id"])


@pytest.mark.parametrize(("route", "overriding", "call"), ROUTES, ids=[r[0] for r in ROUTES])
def test_a_child_outside_the_jurisdiction_and_an_unknown_one_wait_the_same_floor(
    app: Flask,
    client: FlaskClient,
    officer: PersonClient,
    nuevo_leon_child: str,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
    overriding: bool,
    call: Call,
) -> None:
    caller = officer
    if overriding:
        caller = add_person_client(
            app, "ov-chp-001", PROCURADURIA, ["override_officer"], ["override", "records:read"]
        )
    app.config["READ_REFUSAL_FLOOR"] = FLOOR
    asked = paddings(monkeypatch)
    for child_id in (nuevo_leon_child, UNKNOWN_CHILD):
        method, path, body = call(client, child_id)
        response = client.open(path, method=method, json=body, headers=caller.headers)
        assert response.status_code == 404, (route, child_id, response.get_json())
    assert asked == [pytest.approx(FLOOR, abs=1e-3)] * 2, route


def test_an_access_request_the_officer_may_not_see_waits_the_floor_as_an_unknown_one(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    nuevo_leon_child: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = ask(client, lawyer, nuevo_leon_child).get_json()
    assert request["status"] == "pending"
    app.config["READ_REFUSAL_FLOOR"] = FLOOR
    asked = paddings(monkeypatch)
    for request_id in (request["id"], "acr_00000000000000000000"):
        response = client.get(f"/v1/access-requests/{request_id}", headers=officer.headers)
        assert response.status_code == 404, response.get_json()
    assert asked == [pytest.approx(FLOOR, abs=1e-3)] * 2


def test_an_answer_the_officer_may_have_waits_for_no_floor(
    app: Flask,
    client: FlaskClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app.config["READ_REFUSAL_FLOOR"] = FLOOR
    asked = paddings(monkeypatch)
    response = client.get(f"/v1/children/{pushed['child_id']}/consents", headers=officer.headers)
    assert response.status_code == 200, response.get_json()
    assert asked == []
