"""``POST /v1/children/search``: child ids by identifier or by name, date of birth and
nationality — with scores, never names — on both backends; answered only to a caller that may
know the child (its agency holds one of the child's records, or consent permits ``identity``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    COMAR,
    INM,
    OWNER,
    audit_entry,
    consent_document,
    legal_representative,
    procuraduria,
    push_child,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency
from sqlalchemy import select

from exchange import db
from exchange.agencies import Agency
from exchange.audit_log import AuditEntry
from exchange.auth import store_token, utcnow
from exchange.child_duplicates import merge_children
from exchange.child_search import IDENTIFIER_SEARCH_KINDS, search_by_identifier
from exchange.records import Record
from exchange.sharing import RecordShare
from tests.conftest import BACKENDS, backend_database, make_hub

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas/examples/case-record/1/valid"
#: The seeded agencies and their kinds (what the hard rules look at).
AGENCIES = {
    "mx.chp.dif": "state_dif",
    "mx.fed.comar": "refugee_commission",
    "mx.fed.inm": "immigration_enforcement",
    "mx.fed.cndh": "oversight",
}


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def named(
    given: str, first: str, second: str | None, dob: str, nationality: str, **extra: Any
) -> dict[str, Any]:
    names = {"given_names": given, "first_surname": first}
    if second:
        names["second_surname"] = second
    return {
        "case": {"status": "open"},
        "child": {"names": names, "date_of_birth": dob, "nationality": [nationality], **extra},
    }


def seed(app: Flask) -> dict[str, str]:
    """A few children pushed by three agencies (records stored as a push stores them, so each
    agency holds its own); returns their ids and the tokens."""
    with app.app_context(), db.database(app).sessions() as session:
        for agency, kind in AGENCIES.items():
            session.add(
                Agency(id=agency, name=agency, level="federal", jurisdiction="00", kind=kind)
            )
        session.flush()
        writers = {
            agency: store_token(
                session, client_id=agency, scopes=["records:write"], agency_id=agency
            )[0]
            for agency in AGENCIES
        }
        session.commit()
    client = app.test_client()

    def push(agency: str, local_id: str, document: dict[str, Any]) -> str:
        response = client.post(
            "/v1/records",
            json={"schema": "case-record/1", "local_id": local_id, "data": document},
            headers={"Authorization": f"Bearer {writers[agency]}"},
        )
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["child_id"])

    with app.app_context(), db.database(app).sessions() as session:
        ids = {
            "kevin": push("mx.chp.dif", "EXP-1", example("typical")),
            "valentina": push(
                "mx.chp.dif", "EXP-2", example("venezuelan_adolescent_transferred_between_states")
            ),
            "jean": push(
                "mx.fed.inm", "INM-1", example("haitian_infant_father_alternative_to_detention")
            ),
            "chepe": push(
                "mx.fed.inm", "INM-2", example("salvadoran_child_closed_assisted_return")
            ),
            "ana": push(
                "mx.fed.comar", "COM-1", example("guatemalan_child_with_mother_dif_shelter")
            ),
            "luc": push(
                "mx.fed.comar",
                "COM-2",
                named(
                    "Luc",
                    "Exemple",
                    None,
                    "2019-04-02",
                    "HT",
                    identifiers=[{"type": "unhcr_case", "value": "MEX-24C000451"}],
                ),
            ),
            "marie": push(
                "mx.fed.comar",
                "COM-3",
                named(
                    "Marie",
                    "Exemple",
                    None,
                    "2021-09-09",
                    "HT",
                    identifiers=[{"type": "unhcr_case", "value": "MEX-24C000451"}],
                ),
            ),
            "jose_hn": push(
                "mx.chp.dif", "EXP-3", named("José Luis", "Hernández", "García", "2010-05-14", "HN")
            ),
            "jose_gt": push(
                "mx.fed.inm", "INM-3", named("Jose Luis", "Hernandez", None, "2010-05-14", "GT")
            ),
            "jose_old": push(
                "mx.fed.inm", "INM-4", named("José Luis", "Hernández", "García", "2003-05-14", "HN")
            ),
            # Another agency's copy of Kevin, merged into him by a person.
            "kevin_copy": push(
                "mx.fed.inm", "INM-9", named("Kebin", "Ejemplo", None, "2008-07-02", "HN")
            ),
            # The child's own identifiers: the agency's local id for the child (not the
            # record's local_id), a document, and an agency-local id another agency issued.
            "trece_dif": push(
                "mx.chp.dif",
                "CHP-DEMO-0013",
                named(
                    "Trece",
                    "Demostración",
                    None,
                    "2012-03-13",
                    "GT",
                    identifiers=[
                        {"type": "agency_local", "value": "DEMO-0013"},
                        {"type": "passport", "value": "G1234567", "issuer_country": "GT"},
                    ],
                ),
            ),
            "catorce_comar": push(
                "mx.fed.comar",
                "COMAR-DEMO-0014",
                named(
                    "Catorce",
                    "Muestrario",
                    None,
                    "2013-04-14",
                    "SV",
                    identifiers=[
                        {"type": "agency_local", "value": "DEMO-0013"},
                        {
                            "type": "agency_local",
                            "value": "INM-EXP-77",
                            "issuer_agency": "mx.fed.inm",
                        },
                    ],
                ),
            ),
        }
        merge_children(session, ids["kevin"], ids["kevin_copy"], reason="same child")
        # INM referred its copy of the Guatemalan José Luis to the DIF (written straight in:
        # no consent in force permits the referral now, as after a revocation).
        referred = session.scalars(
            select(Record.id).where(
                Record.source_agency == "mx.fed.inm", Record.local_id == "INM-3"
            )
        ).one()
        session.add(
            RecordShare(
                record_id=referred,
                from_agency="mx.fed.inm",
                agency_id="mx.chp.dif",
                kind="referral",
                status="accepted",
                purpose="case_management",
                categories=["identity"],
            )
        )
        for agency in AGENCIES:
            ids[f"token:{agency}"], _ = store_token(
                session, client_id=agency, scopes=["records:read"], agency_id=agency
            )
        ids["token:write-only"], _ = store_token(
            session, client_id="mx.chp.dif", scopes=["records:write"], agency_id="mx.chp.dif"
        )
        session.commit()
    return ids


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, dict[str, str]]]:
    """One seeded hub per backend for the module: the searches below only read."""
    folder = tmp_path_factory.mktemp("search")
    with backend_database(request.param, folder) as url:
        app = make_hub(folder, url)
        yield app, seed(app)
        app.extensions["puente.db"].engine.dispose()


@pytest.fixture
def ids(seeded: tuple[Flask, dict[str, str]]) -> dict[str, str]:
    return seeded[1]


@pytest.fixture
def hub_client(seeded: tuple[Flask, dict[str, str]]) -> FlaskClient:
    return seeded[0].test_client()


def search(
    client: FlaskClient,
    ids: dict[str, str],
    body: dict[str, Any],
    agency: str = "mx.chp.dif",
    lang: str = "en",
) -> Any:
    return client.post(
        "/v1/children/search",
        json={"purpose": "case_management", **body},
        headers={"Authorization": f"Bearer {ids['token:' + agency]}", "Accept-Language": lang},
    )


def candidates(response: Any) -> list[tuple[str, float, list[str]]]:
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert set(answer) == {"candidates", "min_score", "max_candidates"}
    for candidate in answer["candidates"]:
        assert set(candidate) == {"child_id", "score", "matched_on"}  # never names
    return [(c["child_id"], c["score"], c["matched_on"]) for c in answer["candidates"]]


# -- by identifier ------------------------------------------------------------------------------


def test_by_curp_ignoring_case_and_spaces(hub_client: FlaskClient, ids: dict[str, str]) -> None:
    response = search(
        hub_client, ids, {"identifier": {"kind": "curp", "value": " eefk080702hnejcva9"}}
    )
    assert candidates(response) == [(ids["kevin"], 1.0, ["curp"])]
    body = response.get_data(as_text=True)
    assert "Kevin" not in body and "Ejemplo" not in body and "EEFK" not in body
    unknown = search(
        hub_client, ids, {"identifier": {"kind": "curp", "value": "XAXX010101HNEXXXA0"}}
    )
    assert candidates(unknown) == []


def test_by_unhcr_individual_and_case_numbers(hub_client: FlaskClient, ids: dict[str, str]) -> None:
    # Each searched as the agency that holds the children's records (INM, COMAR).
    individual = search(
        hub_client,
        ids,
        {"identifier": {"kind": "unhcr", "value": "MEX-23C045120"}},
        agency="mx.fed.inm",
    )
    assert candidates(individual) == [(ids["jean"], 1.0, ["unhcr"])]
    family = candidates(
        search(
            hub_client,
            ids,
            {"identifier": {"kind": "unhcr", "value": "mex-24c000451"}},
            agency="mx.fed.comar",
        )
    )
    assert sorted(family) == sorted(
        [(ids["luc"], 0.9, ["unhcr_case"]), (ids["marie"], 0.9, ["unhcr_case"])]
    )


def test_by_comar_case_number(hub_client: FlaskClient, ids: dict[str, str]) -> None:
    response = search(
        hub_client, ids, {"identifier": {"kind": "comar", "value": "COMAR-TAP-2024-011873"}}
    )
    assert candidates(response) == [(ids["kevin"], 0.9, ["comar_case"])]


def test_agency_local_ids_are_the_callers_own_and_follow_merges(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    own = search(hub_client, ids, {"identifier": {"kind": "agency_local", "value": "EXP-1"}})
    assert candidates(own) == [(ids["kevin"], 1.0, ["agency_local"])]
    elsewhere = search(
        hub_client,
        ids,
        {"identifier": {"kind": "agency_local", "value": "EXP-1"}},
        agency="mx.fed.comar",
    )
    assert candidates(elsewhere) == []
    merged = search(
        hub_client,
        ids,
        {"identifier": {"kind": "agency_local", "value": "INM-9"}},
        agency="mx.fed.inm",
    )
    assert candidates(merged) == [(ids["kevin"], 1.0, ["agency_local"])]


def test_the_childs_own_agency_local_identifiers_are_found_within_the_issuing_agency(
    seeded: tuple[Flask, dict[str, str]], hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    def found(value: str, agency: str) -> list[tuple[str, float, list[str]]]:
        body = {"identifier": {"type": "agency_local", "value": value}}
        return candidates(search(hub_client, ids, body, agency=agency))

    # Two agencies each call a different child DEMO-0013: each finds its own.
    assert found("DEMO-0013", "mx.chp.dif") == [(ids["trece_dif"], 1.0, ["agency_local"])]
    assert found(" demo-0013", "mx.chp.dif") == [(ids["trece_dif"], 1.0, ["agency_local"])]
    assert found("DEMO-0013", "mx.fed.comar") == [(ids["catorce_comar"], 1.0, ["agency_local"])]
    assert found("DEMO-0013", "mx.fed.inm") == []
    # The record's local_id still finds its child, for its agency only.
    assert found("CHP-DEMO-0013", "mx.chp.dif") == [(ids["trece_dif"], 1.0, ["agency_local"])]
    assert found("CHP-DEMO-0013", "mx.fed.comar") == []
    # An agency-local identifier belongs to the agency that issued it, not to the pusher: the
    # index finds COMAR's Catorce for INM's own file number...
    with db.database(seeded[0]).sessions() as session:
        indexed = search_by_identifier(
            session, "agency_local", "INM-EXP-77", agency_id="mx.fed.inm"
        )
    assert [(c.child_id, c.score) for c in indexed] == [(ids["catorce_comar"], 1.0)]
    # ...but INM holds no record of Catorce and has no consent, so it is not answered: that
    # COMAR knows the child is no business of immigration enforcement.
    assert found("INM-EXP-77", "mx.fed.inm") == []
    assert found("INM-EXP-77", "mx.fed.comar") == []


def test_documents_on_the_record_are_searchable(
    seeded: tuple[Flask, dict[str, str]], hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    passport = search(hub_client, ids, {"identifier": {"type": "passport", "value": "g1234567"}})
    assert candidates(passport) == [(ids["trece_dif"], 0.9, ["passport"])]
    # Not agency-local: the index finds the child for any agency...
    with db.database(seeded[0]).sessions() as session:
        indexed = search_by_identifier(session, "passport", "G1234567", agency_id="mx.fed.comar")
    assert [(c.child_id, c.score) for c in indexed] == [(ids["trece_dif"], 0.9)]
    # ...and the answer goes only to one that may know the child (COMAR holds no record of
    # Trece and has no consent).
    other_agency = search(
        hub_client,
        ids,
        {"identifier": {"type": "passport", "value": "G1234567"}},
        agency="mx.fed.comar",
    )
    assert candidates(other_agency) == []
    elsewhere = search(
        hub_client, ids, {"identifier": {"type": "national_id", "value": "G1234567"}}
    )
    assert candidates(elsewhere) == []


@pytest.mark.parametrize(
    ("agency", "record_spelling", "older_spelling"),
    [
        (
            "mx.chp.dif",
            {"identifier": {"type": "curp", "value": "EEFK080702HNEJCVA9"}},
            {"identifier": {"kind": "curp", "value": "EEFK080702HNEJCVA9"}},
        ),
        (
            "mx.fed.inm",
            {"identifier": {"type": "unhcr_individual", "value": "MEX-23C045120"}},
            {"identifier": {"kind": "unhcr", "value": "MEX-23C045120"}},
        ),
        (
            "mx.fed.comar",
            {"identifier": {"type": "unhcr_case", "value": "MEX-24C000451"}},
            {"identifier": {"kind": "unhcr", "value": "MEX-24C000451"}},
        ),
        (
            "mx.chp.dif",
            {"identifier": {"type": "comar_case", "value": "COMAR-TAP-2024-011873"}},
            {"identifier": {"kind": "comar", "value": "COMAR-TAP-2024-011873"}},
        ),
        (
            "mx.chp.dif",
            {"identifier": {"type": "agency_local", "value": "DEMO-0013"}},
            {"identifier": {"kind": "agency_local", "value": "DEMO-0013"}},
        ),
        (
            "mx.chp.dif",
            {
                "name": {
                    "given_names": "José Luis",
                    "first_surname": "Hernández",
                    "second_surname": "García",
                },
                "date_of_birth": "2010-05-14",
            },
            {
                "name": {"given": "José Luis", "family": "Hernández García"},
                "date_of_birth": "2010-05-14",
            },
        ),
        (
            "mx.chp.dif",
            {"name": {"given_names": "Valentina", "first_surname": "Prueba"}, "nationality": "VE"},
            {"name": {"given": "Valentina", "family": "Prueba"}, "nationality": "VE"},
        ),
        (
            "mx.fed.comar",
            {"name": {"first_surname": "Exemple"}},
            {"name": {"family": "Exemple"}},
        ),
    ],
)
def test_the_records_field_names_and_the_older_ones_find_the_same_children(
    hub_client: FlaskClient,
    ids: dict[str, str],
    agency: str,
    record_spelling: dict[str, Any],
    older_spelling: dict[str, Any],
) -> None:
    # Searched as an agency that holds the children's records, so there is an answer.
    found = candidates(search(hub_client, ids, record_spelling, agency=agency))
    assert found, "the example must find someone to compare"
    assert candidates(search(hub_client, ids, older_spelling, agency=agency)) == found


def test_a_search_copied_from_a_record_finds_its_child(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    child = example("typical")["child"]
    [curp] = [item for item in child["identifiers"] if item["type"] == "curp"]
    by_identifier = search(
        hub_client, ids, {"identifier": {"type": curp["type"], "value": curp["value"]}}
    )
    assert candidates(by_identifier) == [(ids["kevin"], 1.0, ["curp"])]
    by_name = candidates(
        search(
            hub_client,
            ids,
            {"name": child["names"], "date_of_birth": child["date_of_birth"]},
        )
    )
    assert by_name[0][0] == ids["kevin"]


def test_a_field_named_both_ways_is_a_validation_problem(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    def pointers(body: dict[str, Any]) -> set[str]:
        response = search(hub_client, ids, body, lang="es")
        assert response.status_code == 400, response.get_json()
        return {error["pointer"] for error in response.get_json()["errors"]}

    twice = {"identifier": {"type": "curp", "kind": "curp", "value": "EEFK080702HNEJCVA9"}}
    assert pointers(twice) == {"/identifier/kind"}
    assert pointers({"identifier": {"value": "EEFK080702HNEJCVA9"}}) == {"/identifier"}
    assert pointers({"name": {"given": "Ana", "given_names": "Ana"}}) == {"/name/given"}
    assert pointers({"name": {"family": "Muestra", "second_surname": "López"}}) == {"/name/family"}


def test_the_openapi_description_takes_the_same_fields(hub_client: FlaskClient) -> None:
    from exchange.api.children import SEARCH_REQUEST_SCHEMA

    described = hub_client.get("/openapi.json").get_json()["components"]["schemas"]
    request = described["ChildSearchRequest"]["properties"]
    served = SEARCH_REQUEST_SCHEMA["properties"]
    assert described["ChildSearchIdentifierType"]["enum"] == list(IDENTIFIER_SEARCH_KINDS)
    assert list(request["identifier"]["properties"]) == list(served["identifier"]["properties"])
    assert list(request["name"]["properties"]) == list(served["name"]["properties"])
    # The record's names come first.
    assert list(request["name"]["properties"])[:3] == [
        "given_names",
        "first_surname",
        "second_surname",
    ]
    assert next(iter(request["identifier"]["properties"])) == "type"


# -- by name, date of birth and nationality -------------------------------------------------------


def test_by_name_date_of_birth_and_nationality(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    response = search(
        hub_client,
        ids,
        {
            "name": {"given": "KEVIN JOSUE", "family": "Ejemplo-Ficticio"},
            "date_of_birth": "2008-07-02",
            "nationality": "HN",
        },
    )
    found = candidates(response)
    assert found[0] == (ids["kevin"], 1.0, ["name", "date_of_birth", "nationality"])
    assert ids["kevin_copy"] not in {
        child_id for child_id, _, _ in found
    }  # merged: never a candidate


def test_day_and_month_swapped(hub_client: FlaskClient, ids: dict[str, str]) -> None:
    found = candidates(
        search(hub_client, ids, {"full_name": "kevin ejemplo", "date_of_birth": "2008-02-07"})
    )
    assert found[0][0] == ids["kevin"]
    assert "date_of_birth_swapped" in found[0][2]


def test_accents_compound_surnames_and_nationality_order_the_candidates(
    seeded: tuple[Flask, dict[str, str]], ids: dict[str, str]
) -> None:
    """The scoring itself, before who may know of which child is applied: no agency may know
    of both José Luis (each is another agency's child)."""
    from exchange.api.children import query_profile
    from exchange.child_search import search_by_profile

    query = {
        "purpose": "case_management",
        "name": {"given": "jose luis", "family": "Hernandez-Garcia"},
        "date_of_birth": "2010-05-14",
        "nationality": ["HN"],
    }
    app = seeded[0]
    with app.app_context(), db.database(app).sessions() as session:
        found = [
            (c.child_id, c.score)
            for c in search_by_profile(session, query_profile(query, utcnow().date()))
        ]
    order = [child_id for child_id, _ in found]
    assert order[:2] == [ids["jose_hn"], ids["jose_gt"]]  # same person data but nationality
    assert found[0][1] == 1.0 and found[1][1] < found[0][1]
    assert ids["jose_old"] not in order  # born seven years earlier: ruled out
    assert all(score >= 0.5 for _, score in found)
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)


def test_an_alias_and_a_stated_age_find_an_estimated_child(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    # Chepe's age was estimated at 13 on 2023-06-03 (born mid-2009 to mid-2010, give or take).
    age_now = (utcnow().date() - date(2010, 1, 1)).days // 365
    # Searched as INM, which holds Chepe's record.
    found = candidates(
        search(
            hub_client,
            ids,
            {"full_name": "Chepe", "age_years": age_now, "nationality": "SV"},
            agency="mx.fed.inm",
        )
    )
    assert found[0][0] == ids["chepe"]
    assert "date_of_birth_estimated" in found[0][2] and "nationality" in found[0][2]
    too_young = candidates(
        search(
            hub_client,
            ids,
            {"full_name": "Chepe", "age_years": max(age_now - 8, 0)},
            agency="mx.fed.inm",
        )
    )
    assert ids["chepe"] not in {child_id for child_id, _, _ in too_young}


# -- refusals and the audit log -----------------------------------------------------------------


def test_invalid_bodies_are_validation_problems_with_pointers(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    response = hub_client.post(
        "/v1/children/search",
        json={
            "purpose": "curiosity",
            "identifier": {"kind": "shoe_size"},
            "age_years": -1,
            "colour": "red",
        },
        headers={"Authorization": f"Bearer {ids['token:mx.chp.dif']}", "Accept-Language": "es"},
    )
    assert response.status_code == 400
    problem = response.get_json()
    assert problem["type"].endswith("/validation")
    pointers = {error["pointer"] for error in problem["errors"]}
    assert {"", "/purpose", "/identifier", "/identifier/kind", "/age_years"} <= pointers
    assert any("campo" in error["message"] for error in problem["errors"])  # Spanish

    mixed = search(
        hub_client,
        ids,
        {
            "identifier": {"kind": "curp", "value": "EEFK080702HNEJCVA9"},
            "full_name": "Ana",
            "date_of_birth": "2010-01-01",
        },
    )
    assert mixed.status_code == 400
    assert {e["pointer"] for e in mixed.get_json()["errors"]} == {"/full_name", "/date_of_birth"}
    both = search(
        hub_client,
        ids,
        {
            "name": {"given": "Ana"},
            "full_name": "Ana",
            "date_of_birth": "2999-01-01",
            "age_years": 3,
        },
    )
    assert {e["pointer"] for e in both.get_json()["errors"]} == {
        "/full_name",
        "/age_years",
        "/date_of_birth",
    }
    nothing = search(hub_client, ids, {"nationality": "HN"})
    assert [e["pointer"] for e in nothing.get_json()["errors"]] == [""]
    no_purpose = hub_client.post(
        "/v1/children/search",
        json={"full_name": "Ana"},
        headers={"Authorization": f"Bearer {ids['token:mx.chp.dif']}"},
    )
    assert no_purpose.status_code == 400


def test_a_token_with_records_read_is_required(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    body = {"purpose": "case_management", "full_name": "Ana"}
    assert hub_client.post("/v1/children/search", json=body).status_code == 401
    wrong_scope = hub_client.post(
        "/v1/children/search",
        json=body,
        headers={"Authorization": f"Bearer {ids['token:write-only']}"},
    )
    assert wrong_scope.status_code == 403


def search_entries(app: Flask, request_id: str) -> list[dict[str, Any]]:
    """The audit entries of the search made with ``request_id``, the search's own first."""
    with db.database(app).sessions() as session:
        found = session.scalars(
            select(AuditEntry.entry).where(AuditEntry.action == "child_searched")
        ).all()
    logged = [json.loads(entry) for entry in found if request_id.encode() in entry]
    return sorted(logged, key=lambda entry: "child_id" in entry)


def test_each_search_is_audited_with_the_children_answered_but_not_its_terms(
    seeded: tuple[Flask, dict[str, str]], hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    app = seeded[0]
    response = hub_client.post(
        "/v1/children/search",
        json={
            "purpose": "family_tracing_reunification",
            "name": {"given": "Valentina", "family": "Prueba"},
            "nationality": "VE",
        },
        headers={
            "Authorization": f"Bearer {ids['token:mx.chp.dif']}",
            "X-Request-Id": "search-audit-0001",
        },
    )
    assert candidates(response)[0][0] == ids["valentina"]
    answered = [child_id for child_id, _, _ in candidates(response)]
    search_entry, *per_child = search_entries(app, "search-audit-0001")
    assert search_entry["purpose"] == "family_tracing_reunification"
    assert search_entry["outcome"] == "success"
    assert search_entry["actor"]["agency_id"] == "mx.chp.dif"
    assert search_entry["reason_code"] == f"name.nationality.candidates_{len(answered)}"
    assert "child_id" not in search_entry
    # One entry per answered child, naming it and why the caller may know it.
    assert [entry["child_id"] for entry in per_child] == answered
    [valentina] = [entry for entry in per_child if entry["child_id"] == ids["valentina"]]
    assert valentina["reason_code"] == "name.nationality.record_held"
    assert valentina["decision"]["basis"] == "originating_agency"
    assert valentina["decision"]["categories"] == ["identity"]
    assert valentina["purpose"] == "family_tracing_reunification"
    for entry in (search_entry, *per_child):
        text = json.dumps(entry)
        assert "alentina" not in text and "rueba" not in text


def test_a_child_nobody_may_know_of_is_answered_as_if_it_did_not_exist(
    seeded: tuple[Flask, dict[str, str]], hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    valentina = {"identifier": {"type": "curp", "value": "PUMV071030MNERSLA5"}}
    nobody = {"identifier": {"type": "curp", "value": "XAXX010101HNEXXXA0"}}
    # The DIF holds Valentina's record: it finds her.
    assert candidates(search(hub_client, ids, valentina)) == [(ids["valentina"], 1.0, ["curp"])]
    for agency, purpose in [
        ("mx.fed.inm", "migration_procedure"),
        ("mx.fed.inm", "case_management"),
        ("mx.fed.comar", "asylum_procedure"),
        ("mx.fed.cndh", "oversight"),
    ]:
        body = {**valentina, "purpose": purpose}
        existing = search(hub_client, ids, body, agency=agency)
        missing = search(hub_client, ids, {**nobody, "purpose": purpose}, agency=agency)
        # Same status, same body: nothing tells a CURP that exists from one that does not.
        assert existing.status_code == missing.status_code == 200
        assert existing.get_json() == missing.get_json()
        assert candidates(existing) == []
    inm = hub_client.post(
        "/v1/children/search",
        json={"purpose": "migration_procedure", **valentina},
        headers={
            "Authorization": f"Bearer {ids['token:mx.fed.inm']}",
            "X-Request-Id": "search-audit-inm",
        },
    )
    assert candidates(inm) == []
    [entry] = search_entries(seeded[0], "search-audit-inm")
    assert entry["reason_code"] == "identifier.curp.candidates_0"
    assert "child_id" not in entry and "PUMV" not in json.dumps(entry)


@pytest.mark.parametrize("purpose", ["statistics", "oversight"])
def test_statistics_and_oversight_searches_answer_no_one(
    hub_client: FlaskClient, ids: dict[str, str], purpose: str
) -> None:
    kevin = {"identifier": {"type": "curp", "value": "EEFK080702HNEJCVA9"}}
    assert candidates(search(hub_client, ids, kevin)) == [(ids["kevin"], 1.0, ["curp"])]
    # Not even the agency holding the record: the hard rules withhold identity for these
    # purposes, whoever asks.
    for agency in ("mx.chp.dif", "mx.fed.inm", "mx.fed.cndh"):
        response = search(hub_client, ids, {**kevin, "purpose": purpose}, agency=agency)
        assert candidates(response) == []
    by_name = search(hub_client, ids, {"full_name": "kevin ejemplo", "purpose": purpose})
    assert candidates(by_name) == []


def test_a_referral_consent_no_longer_permits_finds_nothing(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    guatemalan = {
        "name": {"given_names": "José Luis", "first_surname": "Hernández"},
        "date_of_birth": "2010-05-14",
        "nationality": "GT",
    }

    def found(agency: str) -> set[str]:
        return {
            child_id
            for child_id, _, _ in candidates(search(hub_client, ids, guatemalan, agency=agency))
        }

    # INM pushed the Guatemalan José Luis and referred him to the DIF; COMAR holds neither.
    # The referral names identity, but no consent in force permits it any longer: the DIF
    # could not read it, so its searches do not answer him either (test_push_child_links
    # shows a referral that consent permits doing so).
    assert ids["jose_gt"] in found("mx.fed.inm")
    assert ids["jose_hn"] not in found("mx.fed.inm")
    assert found("mx.chp.dif") == {ids["jose_hn"]}
    assert found("mx.fed.comar") == set()


# -- consent opens a search to another agency ----------------------------------------------------


def test_consent_for_identity_under_the_purpose_lets_another_agency_find_the_child(
    app: Flask, client: FlaskClient
) -> None:
    owner = add_agency(app, OWNER)
    officer = procuraduria(app)
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    inm = add_agency(app, INM, jurisdiction="00", kind="immigration_enforcement")
    child_id = push_child(client, owner)["child_id"]
    body = {"identifier": {"type": "curp", "value": "EEFK080702HNEJCVA9"}}

    def found(agency: Any, purpose: str, request_id: str = "") -> list[str]:
        headers = {**agency.headers, **({"X-Request-Id": request_id} if request_id else {})}
        response = client.post(
            "/v1/children/search", json={"purpose": purpose, **body}, headers=headers
        )
        return [child_id for child_id, _, _ in candidates(response)]

    assert found(owner, "case_management") == [child_id]
    assert found(comar, "asylum_procedure") == []
    consent = record_consent(
        client,
        officer,
        child_id,
        consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"]),
    )
    assert found(comar, "asylum_procedure", "search-consent-0001") == [child_id]
    # The consent is bound to its purpose and to COMAR.
    assert found(comar, "case_management") == []
    assert found(inm, "migration_procedure") == []
    entries = search_entries(app, "search-consent-0001")
    assert [entry.get("child_id") for entry in entries] == [None, child_id]
    decided = entries[1]
    assert decided["reason_code"] == "identifier.curp.identity_permitted"
    assert decided["decision"]["basis"] == "consent"
    assert decided["decision"]["consent_ids"] == [consent["id"]]
    assert "EEFK" not in json.dumps(entries)
    assert audit_entry(app, consent["audit_entry"])["action"] == "consent_granted"

    # A revocation closes the search at once, and COMAR is told (it received the child's id
    # under the consent).
    revoked = client.post(
        f"/v1/consents/{consent['id']}/revoke",
        json={"reason": "La Procuraduría retira el consentimiento."},
        headers=officer.headers,
    )
    assert revoked.status_code == 200, revoked.get_json()
    assert revoked.get_json()["notified"] == [COMAR]
    assert found(comar, "asylum_procedure") == []


def test_a_person_finds_a_child_only_through_the_engine(app: Flask, client: FlaskClient) -> None:
    owner = add_agency(app, OWNER)
    officer = procuraduria(app)
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    lawyer = legal_representative(app, "lic-ana")
    child_id = push_child(client, owner)["child_id"]

    def found() -> list[str]:
        response = client.post(
            "/v1/children/search",
            json={"purpose": "legal_representation", "full_name": "Kevin Ejemplo"},
            headers=lawyer.headers,
        )
        return [child_id for child_id, _, _ in candidates(response)]

    assert found() == []
    record_consent(
        client,
        officer,
        child_id,
        consent_document(CLINIC, purposes=["legal_representation"], categories=["identity"]),
    )
    assert found() == [child_id]


def test_children_the_caller_may_not_know_of_do_not_crowd_out_one_it_may(
    hub_client: FlaskClient, ids: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange import child_search
    from exchange.api import children

    # One answer at most, children weighed one at a time: the best-scored José Luis is the
    # DIF's, which INM may not know of; the next one is INM's own, and must still be found.
    monkeypatch.setattr(children, "MAX_CANDIDATES", 1)
    monkeypatch.setattr(child_search, "WEIGH_BATCH", 1)
    found = candidates(
        search(
            hub_client,
            ids,
            {
                "name": {"given": "jose luis", "family": "Hernandez-Garcia"},
                "date_of_birth": "2010-05-14",
                "nationality": ["HN"],
            },
            agency="mx.fed.inm",
        )
    )
    assert [child_id for child_id, _, _ in found] == [ids["jose_gt"]]


def test_a_person_of_the_holding_agency_finds_the_child_only_through_the_engine(
    app: Flask, client: FlaskClient
) -> None:
    # As for reads: the agency's own system knows its children; its people know what
    # consent, grants and overrides give them.
    owner = add_agency(app, OWNER)
    officer = procuraduria(app)
    staff = legal_representative(app, "dif-abogada", OWNER)
    child_id = push_child(client, owner)["child_id"]
    body = {"purpose": "legal_representation", "full_name": "Kevin Ejemplo"}

    def found(headers: dict[str, str]) -> list[str]:
        response = client.post("/v1/children/search", json=body, headers=headers)
        return [child_id for child_id, _, _ in candidates(response)]

    assert found(owner.headers) == [child_id]
    assert found(staff.headers) == []
    record_consent(
        client,
        officer,
        child_id,
        consent_document(OWNER, purposes=["legal_representation"], categories=["identity"]),
    )
    assert found(staff.headers) == [child_id]


@pytest.mark.parametrize("value", ["XYZ", "EEFK080732HNEJCVA9", "EEFK08070HNEJCVA9"])
def test_a_malformed_curp_is_a_typo_to_fix_not_an_unknown_child(
    hub_client: FlaskClient, ids: dict[str, str], value: str
) -> None:
    response = search(hub_client, ids, {"identifier": {"type": "curp", "value": value}})
    assert response.status_code == 400, response.get_json()
    [error] = response.get_json()["errors"]
    assert error["pointer"] == "/identifier/value" and "CURP" in error["message"]


def test_the_purpose_may_be_given_as_a_query_parameter(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {ids['token:mx.chp.dif']}", "Accept-Language": "en"}
    body = {"identifier": {"type": "curp", "value": "EEFK080702HNEJCVA9"}}
    by_query = hub_client.post(
        "/v1/children/search?purpose=case_management", json=body, headers=headers
    )
    in_body = search(hub_client, ids, body)
    assert by_query.status_code == 200, by_query.get_json()
    assert candidates(by_query) == candidates(in_body) != []
    # Neither: no purpose, no search. Both, differing: which one was meant is not guessed.
    neither = hub_client.post("/v1/children/search", json=body, headers=headers)
    assert neither.status_code == 400
    differing = hub_client.post(
        "/v1/children/search?purpose=statistics",
        json={**body, "purpose": "case_management"},
        headers=headers,
    )
    assert differing.status_code == 400
    assert differing.get_json()["errors"][0]["pointer"] == "/purpose"
    unknown = hub_client.post("/v1/children/search?purpose=curiosity", json=body, headers=headers)
    assert unknown.status_code == 400
