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
            "identifier": {"kind": "passport"},
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
