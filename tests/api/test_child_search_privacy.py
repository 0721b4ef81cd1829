"""``POST /v1/children/search`` after merges: a caller matches a child only by what records it
may read the ``identity`` of state (never by another agency's identifiers, nationality or
alias), a consulate keeps its own record when an asylum claim is merged in, another agency's
children cannot push an agency's own child out of its answer, and every answer takes the
floor. On both backends (the ``app`` fixture)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, push, push_bulk

from exchange import db
from exchange.child_duplicates import merge_children

INM, COMAR, CONSULATE = "mx.fed.inm", "mx.fed.comar", "gt.minex.consulado-tapachula"
DOB = "2014-03-03"


def boy(nationality: str, identifiers: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "case": {"status": "open"},
        "child": {
            "names": {
                "given_names": "Mario José",
                "first_surname": "Prueba",
                "second_surname": "Cruz",
            },
            "date_of_birth": DOB,
            "sex": "male",
            "nationality": [nationality],
            "identifiers": identifiers,
            **extra,
        },
    }


def pushed(client: FlaskClient, agency: AgencyClient, local_id: str, data: Any) -> dict[str, Any]:
    response = push(client, agency, envelope(local_id, data))
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def merge(app: Flask, into: str, merged: str) -> None:
    with app.app_context(), db.database(app).sessions() as session:
        merge_children(session, into, merged, reason="the same boy")
        session.commit()


def found(
    client: FlaskClient, agency: AgencyClient, purpose: str, body: dict[str, Any]
) -> list[tuple[str, float, list[str]]]:
    response = client.post(
        "/v1/children/search", json={"purpose": purpose, **body}, headers=agency.headers
    )
    assert response.status_code == 200, response.get_json()
    return [(c["child_id"], c["score"], c["matched_on"]) for c in response.get_json()["candidates"]]


def records_of(
    client: FlaskClient, agency: AgencyClient, child_id: str, purpose: str
) -> list[dict[str, Any]]:
    response = client.get(
        f"/v1/children/{child_id}/records",
        query_string={"purpose": purpose},
        headers=agency.headers,
    )
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["records"])


# -- 1. another agency's identifiers, nationality and alias ---------------------------------------


def test_immigration_enforcement_cannot_confirm_what_only_comars_record_states(
    app: Flask, client: FlaskClient
) -> None:
    inm = add_agency(app, INM, jurisdiction="00", kind="immigration_enforcement")
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    inm_file = [{"type": "inm_file", "value": "INM-TAP-2026-0777"}]
    asylum = [
        {"type": "unhcr_individual", "value": "MEX-26C000777"},
        {"type": "comar_case", "value": "TAP-2026-0777"},
    ]
    child_id = pushed(client, inm, "INM-77", boy("HN", inm_file))["child_id"]
    comars = pushed(client, comar, "COM-77", boy("HN", asylum))
    merge(app, child_id, comars["child_id"])
    pushed(client, comar, "COM-77", boy("SV", asylum, alias="Chepe"))

    purpose = "migration_procedure"
    [own] = records_of(client, inm, child_id, purpose)
    assert own["local_id"] == "INM-77"
    # INM finds the boy by what its own record states...
    assert found(
        client, inm, purpose, {"identifier": {"type": "inm_file", "value": "inm-tap-2026-0777"}}
    ) == [(child_id, 0.9, ["inm_file"])]
    # ...but not by COMAR's case number or UNHCR number: those tell of an asylum claim.
    for kind, value in [
        ("comar_case", "TAP-2026-0777"),
        ("comar_case", "TAP-2026-0778"),
        ("unhcr_individual", "MEX-26C000777"),
        ("unhcr", "MEX-26C000777"),
    ]:
        assert found(client, inm, purpose, {"identifier": {"type": kind, "value": value}}) == []
    # Nor by COMAR's nationality or alias for him: the answer is the one its own record gives.
    by_name = {
        "name": {"given_names": "Mario José", "first_surname": "Prueba", "second_surname": "Cruz"},
        "date_of_birth": DOB,
    }
    answers = {
        country: found(client, inm, purpose, {**by_name, "nationality": country})
        for country in ("SV", "GT", "NI")
    }
    assert answers["SV"] == answers["GT"] == answers["NI"]
    [(answered, _score, matched_on)] = answers["SV"]
    assert answered == child_id and "nationality" not in matched_on
    assert found(client, inm, purpose, {"full_name": "Chepe"}) == []
    # COMAR itself finds him by all of it.
    for body in (
        {"identifier": {"type": "comar_case", "value": "TAP-2026-0777"}},
        {"identifier": {"type": "unhcr_individual", "value": "MEX-26C000777"}},
        {"full_name": "Chepe Prueba Cruz", "date_of_birth": DOB},
    ):
        assert [c[0] for c in found(client, comar, "asylum_procedure", body)] == [child_id]


# -- 2. a consulate keeps its own record ----------------------------------------------------------


def test_a_consulate_still_reads_its_own_record_after_an_asylum_claim_is_merged_in(
    app: Flask, client: FlaskClient
) -> None:
    consulate = add_agency(
        app,
        CONSULATE,
        kind="foreign_authority",
        country="GT",
        scopes=("records:write", "records:read"),
    )
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    passport = [{"type": "passport", "value": "G7654321", "issuer_country": "GT"}]
    own = pushed(client, consulate, "CON-1", boy("GT", passport))
    child_id = own["child_id"]
    asylum = [
        {"type": "unhcr_individual", "value": "MEX-26C000888"},
        {"type": "comar_case", "value": "TAP-2026-0888"},
    ]
    comars = pushed(client, comar, "COM-88", boy("GT", asylum, alias="Memo"))
    merge(app, child_id, comars["child_id"])

    purpose = "family_tracing_reunification"
    read = client.get(
        f"/v1/records/{own['record_id']}",
        query_string={"purpose": purpose},
        headers=consulate.headers,
    )
    assert read.status_code == 200, read.get_json()
    answer = read.get_json()
    assert answer["data"]["child"]["identifiers"] == passport
    assert answer["decision"]["basis"] == "originating_agency"
    text = read.get_data(as_text=True)
    # (The category labels name "asylum legal status"; no rule, nothing of COMAR's.)
    for word in ("no_asylum", "hard_rule", "refugi", "COMAR", "MEX-26C", "TAP-2026", "Memo"):
        assert word not in text
    versions = client.get(
        f"/v1/records/{own['record_id']}/versions",
        query_string={"purpose": purpose},
        headers=consulate.headers,
    )
    assert versions.status_code == 200, versions.get_json()
    assert {v["pushed_by"] for v in versions.get_json()["versions"]} == {CONSULATE}
    # Its own record only: nothing of COMAR's.
    assert [r["record_id"] for r in records_of(client, consulate, child_id, purpose)] == [
        own["record_id"]
    ]
    for path in (
        f"/v1/records/{comars['record_id']}",
        f"/v1/records/{comars['record_id']}/versions",
    ):
        refused = client.get(path, query_string={"purpose": purpose}, headers=consulate.headers)
        assert refused.status_code == 404
    # Search by its own passport still finds the child; COMAR's identifiers and alias do not.
    by_passport = {"identifier": {"type": "passport", "value": "g7654321"}}
    assert found(client, consulate, purpose, by_passport) == [(child_id, 0.9, ["passport"])]
    for body in (
        {"identifier": {"type": "unhcr_individual", "value": "MEX-26C000888"}},
        {"identifier": {"type": "comar_case", "value": "TAP-2026-0888"}},
        {"full_name": "Memo"},
    ):
        assert found(client, consulate, purpose, body) == []


# -- 4. another agency's children do not crowd out the caller's own --------------------------------


def namesake(nationality: list[str]) -> dict[str, Any]:
    return {
        "case": {"status": "open"},
        "child": {
            "names": {"given_names": "Juan", "first_surname": "Pérez", "second_surname": "López"},
            "date_of_birth": "2015-06-01",
            "nationality": nationality,
        },
    }


def test_an_agencys_own_child_is_found_among_many_namesakes_it_may_not_know(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange import child_search

    nl = add_agency(app, "mx.nl.dif", jurisdiction="19")
    chiapas = add_agency(app, "mx.chp.dif")
    # 65 Nuevo León children match better (their nationality is stated) than Chiapas's own.
    lines = [envelope(f"NL-{n}", namesake(["HN"])) for n in range(65)]
    response, results = push_bulk(client, nl, lines)
    assert response.status_code == 200 and all(r["status"] == "stored" for r in results), results
    own = pushed(client, chiapas, "CHP-1", namesake(["XX"]))["child_id"]
    query = {
        "name": {"given_names": "Juan", "first_surname": "Pérez", "second_surname": "López"},
        "date_of_birth": "2015-06-01",
        "nationality": "HN",
    }
    assert [c[0] for c in found(client, chiapas, "case_management", query)] == [own]
    # However small the pool, the agency's own profiles are drawn into it.
    monkeypatch.setattr(child_search, "CANDIDATE_POOL", 10)
    assert [c[0] for c in found(client, chiapas, "case_management", query)] == [own]
    assert (
        found(client, add_agency(app, "mx.son.dif", jurisdiction="26"), "case_management", query)
        == []
    )


# -- 3. every answer takes the floor --------------------------------------------------------------


def test_every_search_answer_takes_the_floor_found_or_not(app: Flask, client: FlaskClient) -> None:
    """Weighing children the caller may not know of costs time a search matching nobody does
    not: every answer, found or not, takes at least READ_REFUSAL_FLOOR."""
    inm = add_agency(app, INM, jurisdiction="00", kind="immigration_enforcement")
    dif = add_agency(app, "mx.chp.dif")
    pushed(client, dif, "EXP-1", namesake(["HN"]))
    app.config["READ_REFUSAL_FLOOR"] = 0.3
    by_name = {"full_name": "Juan Pérez López", "date_of_birth": "2015-06-01"}

    def timed(agency: AgencyClient, body: dict[str, Any]) -> tuple[int, float]:
        started = time.perf_counter()
        answer = found(client, agency, "case_management", body)
        return len(answer), time.perf_counter() - started

    answers = [
        timed(dif, by_name),  # found
        timed(inm, by_name),  # a child it may not know of
        timed(inm, {"full_name": "Nadie Nunca Jamás"}),  # nobody
        timed(inm, {"identifier": {"type": "passport", "value": "X0000000"}}),
    ]
    assert [count for count, _ in answers] == [1, 0, 0, 0]
    assert all(seconds >= 0.3 for _, seconds in answers), answers
    app.config["READ_REFUSAL_FLOOR"] = 0
    count, seconds = timed(dif, by_name)
    assert count == 1 and seconds < 0.3


def test_a_search_with_two_purposes_is_refused(app: Flask, client: FlaskClient) -> None:
    """One search, one purpose, as for reads: none of two is picked."""
    owner = add_agency(app, "mx.chp.dif")
    answer = client.post(
        "/v1/children/search?purpose=case_management&purpose=statistics",
        json={"identifier": {"type": "curp", "value": "GOCM120305MCSNRR09"}},
        headers=owner.headers,
    )
    assert answer.status_code == 400
    assert "purpose" in answer.get_json()["detail"]
