"""``POST /v1/children/search``: child ids by identifier or by name, date of birth and
nationality — with scores, never names — on both backends."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from exchange import db
from exchange.agencies import Agency
from exchange.audit_log import AuditEntry
from exchange.auth import store_token, utcnow
from exchange.child_duplicates import merge_children
from exchange.child_search import IDENTIFIER_SEARCH_KINDS
from exchange.children import link_child
from tests.conftest import BACKENDS, _postgres_or_skip, make_hub

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas/examples/case-record/1/valid"
AGENCIES = ("mx.chp.dif", "mx.fed.comar", "mx.fed.inm")


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def named(
    given: str, first: str, second: str | None, dob: str, nationality: str, **extra: Any
) -> dict[str, Any]:
    names = {"given_names": given, "first_surname": first}
    if second:
        names["second_surname"] = second
    return {"child": {"names": names, "date_of_birth": dob, "nationality": [nationality], **extra}}


def seed(app: Flask) -> dict[str, str]:
    """A few children pushed by three agencies; returns their ids and the tokens."""
    with app.app_context(), db.database(app).sessions() as session:
        for agency in AGENCIES:
            session.add(Agency(id=agency, name=agency, level="federal", jurisdiction="00"))
        session.flush()

        def push(agency: str, local_id: str, document: dict[str, Any]) -> str:
            return link_child(
                session, agency_id=agency, local_id=local_id, child_id=None, document=document
            )

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
    if request.param == "sqlite":
        app = make_hub(folder, f"sqlite:///{folder / 'puente.db'}")
        yield app, seed(app)
        app.extensions["puente.db"].engine.dispose()
        return
    base = _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    app = make_hub(folder, url.render_as_string(hide_password=False))
    yield app, seed(app)
    app.extensions["puente.db"].engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


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
        hub_client, ids, {"identifier": {"kind": "curp", "value": "XXXX000000HNEXXXA0"}}
    )
    assert candidates(unknown) == []


def test_by_unhcr_individual_and_case_numbers(hub_client: FlaskClient, ids: dict[str, str]) -> None:
    individual = search(
        hub_client, ids, {"identifier": {"kind": "unhcr", "value": "MEX-23C045120"}}
    )
    assert candidates(individual) == [(ids["jean"], 1.0, ["unhcr"])]
    family = candidates(
        search(hub_client, ids, {"identifier": {"kind": "unhcr", "value": "mex-24c000451"}})
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
    hub_client: FlaskClient, ids: dict[str, str]
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
    # An agency-local identifier belongs to the agency that issued it, not to the pusher.
    assert found("INM-EXP-77", "mx.fed.inm") == [(ids["catorce_comar"], 1.0, ["agency_local"])]
    assert found("INM-EXP-77", "mx.fed.comar") == []


def test_documents_on_the_record_are_searchable(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    passport = search(hub_client, ids, {"identifier": {"type": "passport", "value": "g1234567"}})
    assert candidates(passport) == [(ids["trece_dif"], 0.9, ["passport"])]
    other_agency = search(
        hub_client,
        ids,
        {"identifier": {"type": "passport", "value": "G1234567"}},
        agency="mx.fed.comar",
    )
    assert candidates(other_agency) == candidates(passport)  # not agency-local
    elsewhere = search(
        hub_client, ids, {"identifier": {"type": "national_id", "value": "G1234567"}}
    )
    assert candidates(elsewhere) == []


@pytest.mark.parametrize(
    ("record_spelling", "older_spelling"),
    [
        (
            {"identifier": {"type": "curp", "value": "EEFK080702HNEJCVA9"}},
            {"identifier": {"kind": "curp", "value": "EEFK080702HNEJCVA9"}},
        ),
        (
            {"identifier": {"type": "unhcr_individual", "value": "MEX-23C045120"}},
            {"identifier": {"kind": "unhcr", "value": "MEX-23C045120"}},
        ),
        (
            {"identifier": {"type": "unhcr_case", "value": "MEX-24C000451"}},
            {"identifier": {"kind": "unhcr", "value": "MEX-24C000451"}},
        ),
        (
            {"identifier": {"type": "comar_case", "value": "COMAR-TAP-2024-011873"}},
            {"identifier": {"kind": "comar", "value": "COMAR-TAP-2024-011873"}},
        ),
        (
            {"identifier": {"type": "agency_local", "value": "DEMO-0013"}},
            {"identifier": {"kind": "agency_local", "value": "DEMO-0013"}},
        ),
        (
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
            {"name": {"given_names": "Valentina", "first_surname": "Prueba"}, "nationality": "VE"},
            {"name": {"given": "Valentina", "family": "Prueba"}, "nationality": "VE"},
        ),
        ({"name": {"first_surname": "Exemple"}}, {"name": {"family": "Exemple"}}),
    ],
)
def test_the_records_field_names_and_the_older_ones_find_the_same_children(
    hub_client: FlaskClient,
    ids: dict[str, str],
    record_spelling: dict[str, Any],
    older_spelling: dict[str, Any],
) -> None:
    found = candidates(search(hub_client, ids, record_spelling))
    assert found, "the example must find someone to compare"
    assert candidates(search(hub_client, ids, older_spelling)) == found


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
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    found = candidates(
        search(
            hub_client,
            ids,
            {
                "name": {"given": "jose luis", "family": "Hernandez-Garcia"},
                "date_of_birth": "2010-05-14",
                "nationality": ["HN"],
            },
        )
    )
    order = [child_id for child_id, _, _ in found]
    assert order[:2] == [ids["jose_hn"], ids["jose_gt"]]  # same person data but nationality
    assert found[0][1] == 1.0 and found[1][1] < found[0][1]
    assert ids["jose_old"] not in order  # born seven years earlier: ruled out
    assert all(score >= 0.5 for _, score, _ in found)
    assert [score for _, score, _ in found] == sorted(
        (score for _, score, _ in found), reverse=True
    )


def test_an_alias_and_a_stated_age_find_an_estimated_child(
    hub_client: FlaskClient, ids: dict[str, str]
) -> None:
    # Chepe's age was estimated at 13 on 2023-06-03 (born mid-2009 to mid-2010, give or take).
    age_now = (utcnow().date() - date(2010, 1, 1)).days // 365
    found = candidates(
        search(hub_client, ids, {"full_name": "Chepe", "age_years": age_now, "nationality": "SV"})
    )
    assert found[0][0] == ids["chepe"]
    assert "date_of_birth_estimated" in found[0][2] and "nationality" in found[0][2]
    too_young = candidates(
        search(hub_client, ids, {"full_name": "Chepe", "age_years": max(age_now - 8, 0)})
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
            "identifier": {"kind": "curp", "value": "X"},
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


def test_each_search_is_audited_without_its_terms(
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
            "Authorization": f"Bearer {ids['token:mx.fed.comar']}",
            "X-Request-Id": "search-audit-0001",
        },
    )
    assert candidates(response)[0][0] == ids["valentina"]
    with db.database(app).sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "child_searched", AuditEntry.actor_agency == "mx.fed.comar"
            )
        ).all()
    [entry] = [e for e in entries if b"search-audit-0001" in e.entry]
    logged = json.loads(entry.entry)
    assert logged["purpose"] == "family_tracing_reunification"
    assert logged["outcome"] == "success"
    assert logged["reason_code"] == "name.nationality.candidates_1"
    assert "child_id" not in logged
    assert b"alentina" not in entry.entry and b"rueba" not in entry.entry
