"""Fixes from an outside check of the legal representative's and consent officer's API:

- every request body of the consent area refuses a member it does not take (a misspelt
  ``until`` granted the whole period asked for; a misspelt ``upheld`` was ignored);
- the child's views refuse an agency or person the hub does not know (``about``, ``heard_by``),
  as consents and withhold entries do: an objection about a misspelt agency protects nobody;
- an access request's ``on_behalf_of`` and ``proceeding_reference`` are kept (sealed, with the
  justification) and shown to the officers who decide and to the requester, never audited;
- the access-request queue's query errors point at their parameter (``/query/status``);
- a legal representative lists their own requests with ``GET /v1/access-requests``;
- an officer approving ``record_ids`` that are not the child's is told so, the requester not.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    COMAR,
    OWNER,
    PROCURADURIA,
    PersonClient,
    consent_document,
    legal_representative,
)
from flask import Flask
from flask.testing import FlaskClient
from portal_support import logged_in
from records_support import AgencyClient, add_agency, envelope, example, push, rows
from sqlalchemy import select

from exchange.audit_log import AuditEntry
from exchange.consent_store import AccessRequestJustification

ES, EN = {"Accept-Language": "es"}, {"Accept-Language": "en"}
PROCEEDING = "Juicio de amparo 1234/2026, Juzgado Tercero de Distrito, Tapachula"
CLINIC_NAME = "Clínica Jurídica del Soconusco"


def ask(client: FlaskClient, lawyer: PersonClient, child_id: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": "legal_representation",
            "categories": ["identity", "legal_status"],
            "until": (datetime.now(UTC) + timedelta(days=60)).isoformat(),
            **extra,
        },
        headers=lawyer.headers,
    )
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def refused(response: Any, pointer: str) -> dict[str, Any]:
    """The only error of a 400 ``validation`` problem, which must point at ``pointer``."""
    assert response.status_code == 400, response.get_json()
    problem = response.get_json()
    assert problem["type"].endswith("/validation")
    [error] = problem["errors"]
    assert error["pointer"] == pointer, problem
    return dict(error)


# -- 1. unknown members ----------------------------------------------------------------------


def test_a_misspelt_until_in_a_decision_is_refused_in_both_languages(
    client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    asked = ask(client, lawyer, pushed["child_id"])
    assert asked["status"] == "pending"
    body = {"approve": True, "reason": "Una semana basta.", "untill": "2030-01-01T00:00:00Z"}
    url = f"/v1/access-requests/{asked['id']}/decision"
    said = {}
    for language in (ES, EN):
        answer = client.post(url, json=body, headers={**officer.headers, **language})
        said[language["Accept-Language"]] = refused(answer, "")["message"]
    assert "«untill»" in said["es"] and "¿quiso decir «until»?" in said["es"]
    assert "'untill'" in said["en"] and "did you mean 'until'?" in said["en"]
    # Nothing was decided: the request still waits, and the right member decides it.
    again = client.get(f"/v1/access-requests/{asked['id']}", headers=lawyer.headers)
    assert again.get_json()["status"] == "pending"
    one_week = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    decided = client.post(
        url,
        json={"approve": True, "reason": "Una semana basta.", "until": one_week.isoformat()},
        headers=officer.headers,
    )
    assert decided.status_code == 200, decided.get_json()
    assert decided.get_json()["grant"]["until"] == one_week.isoformat()


def test_a_misspelt_member_of_a_review_or_a_revocation_is_refused(
    client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> None:
    views = client.post(
        f"/v1/children/{pushed['child_id']}/views",
        json={
            "heard_on": datetime.now(UTC).date().isoformat(),
            "heard_by": {"person_id": officer.id},
            "position": "objection",
        },
        headers=officer.headers,
    )
    assert views.status_code == 201, views.get_json()
    review = client.post(
        f"/v1/views/{views.get_json()['id']}/review",
        json={"upheld": False, "reason": "Se deja sin efecto.", "upheldd": True},
        headers={**officer.headers, **EN},
    )
    assert "did you mean 'upheld'?" in refused(review, "")["message"]
    for url in ("/v1/consents/cns_x/revoke", "/v1/withholds/wth_x/revoke", "/v1/grants/g/revoke"):
        revoked = client.post(
            url,
            json={"reason": "Ya no procede.", "reasons": "Ya no procede."},
            headers={**officer.headers, **EN},
        )
        assert "'reasons'" in refused(revoked, "")["message"], url


def test_a_misspelt_member_of_a_dry_runs_actor_is_refused(
    client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> None:
    body = {
        "child_id": pushed["child_id"],
        "purpose": "case_management",
        "actor": {"agency_id": OWNER, "persn_id": "lic-ana"},
    }
    answer = client.post("/v1/decisions", json=body, headers={**officer.headers, **EN})
    assert "did you mean 'person_id'?" in refused(answer, "/actor")["message"]
    # Every member an engine actor has is still taken.
    body["actor"] = {"kind": "civil_society", "agency_id": CLINIC, "roles": [], "country": "MX"}
    assert client.post("/v1/decisions", json=body, headers=officer.headers).status_code == 200


# -- 2. the child's views name only agencies and people the hub knows --------------------------


def test_views_about_or_heard_by_an_unknown_id_are_refused(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> None:
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    url = f"/v1/children/{pushed['child_id']}/views"
    objection = {
        "heard_on": datetime.now(UTC).date().isoformat(),
        "heard_by": {"person_id": officer.id},
        "position": "objection",
        "about": [{"agency_id": COMAR}, {"agency_id": "mx.xx.nada"}],
    }
    said = refused(
        client.post(url, json=objection, headers={**officer.headers, **EN}), "/about/1/agency_id"
    )
    assert said["message"] == "This hub has no agency 'mx.xx.nada' (nor is it a pinned peer hub's)."
    answer = client.post(url, json=objection, headers={**officer.headers, **ES})
    spanish = refused(answer, "/about/1/agency_id")
    assert "En este nodo no hay ninguna agencia 'mx.xx.nada'" in spanish["message"]

    nobody = {**objection, "about": [{"agency_id": COMAR}], "heard_by": {"person_id": "nobody"}}
    said = refused(
        client.post(url, json=nobody, headers={**officer.headers, **EN}), "/heard_by/person_id"
    )
    assert said["message"] == "This hub has no person 'nobody'."
    elsewhere = {**nobody, "heard_by": {"agency_id": COMAR, "person_id": officer.id}}
    said = refused(
        client.post(url, json=elsewhere, headers={**officer.headers, **EN}),
        "/heard_by/person_id",
    )
    assert f"belongs to '{PROCURADURIA}', not '{COMAR}'" in said["message"]

    assert client.post(url, json={**nobody, "heard_by": {"person_id": officer.id}},
                       headers=officer.headers).status_code == 201  # fmt: skip


def test_views_recorded_with_a_consent_are_checked_alike(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> None:
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    document = consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"])
    document["child_views"] = {
        "heard_on": datetime.now(UTC).date().isoformat(),
        "heard_by": {"person_id": "co-chp-999"},
        "position": "assent",
    }
    answer = client.post(
        f"/v1/children/{pushed['child_id']}/consents",
        json=document,
        headers={**officer.headers, **EN},
    )
    said = refused(answer, "/child_views/heard_by/person_id")
    assert said["message"] == "This hub has no person 'co-chp-999'."


# -- 3. on whose behalf, in which proceeding -----------------------------------------------------


def test_on_behalf_of_and_the_proceeding_are_kept_and_shown(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    on_behalf_of = {"agency_id": CLINIC, "name": CLINIC_NAME}
    asked = ask(
        client,
        lawyer,
        pushed["child_id"],
        on_behalf_of=on_behalf_of,
        proceeding_reference=PROCEEDING,
    )
    assert asked["on_behalf_of"] == on_behalf_of
    assert asked["proceeding_reference"] == PROCEEDING
    assert asked["justification"] is None
    mine = client.get(f"/v1/access-requests/{asked['id']}", headers=lawyer.headers).get_json()
    theirs = client.get(f"/v1/access-requests/{asked['id']}", headers=officer.headers).get_json()
    queue = client.get("/v1/access-requests", headers=officer.headers).get_json()
    for seen in (mine, theirs, queue["access_requests"][0]):
        assert seen["on_behalf_of"] == on_behalf_of
        assert seen["proceeding_reference"] == PROCEEDING
    # The portal shows them, under their labels, to the officer and to the requester.
    for person, language, labels in (
        (officer.id, "es", ("En representación de", "Procedimiento (expediente, juicio)")),
        (lawyer.id, "en", ("On behalf of", "Proceeding (file, case number)")),
    ):
        page = logged_in(app, person).get(f"/requests?lang={language}").get_data(as_text=True)
        assert re.search(rf"{re.escape(labels[1])}</dt>\s*<dd[^>]*>{re.escape(PROCEEDING)}", page)
        assert f"{labels[0]}</dt>" in page and CLINIC_NAME in page and CLINIC in page
    decided = client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        json={"approve": False, "reason": "Falta acreditar la representación."},
        headers=officer.headers,
    ).get_json()
    assert decided["proceeding_reference"] == PROCEEDING

    # Sealed with the justification, never as text; and never in the audit log.
    [(ciphertext,)] = rows(app, select(AccessRequestJustification.document_ciphertext))
    assert b"amparo" not in ciphertext and b"Soconusco" not in ciphertext
    logged = b"".join(bytes(entry) for (entry,) in rows(app, select(AuditEntry.entry)))
    assert b"amparo" not in logged and b"Soconusco" not in logged
    assert b"proceeding_reference" not in logged and b"on_behalf_of" not in logged

    # A request without them says null, as for the justification.
    plain = ask(client, lawyer, pushed["child_id"])
    assert plain["on_behalf_of"] is None and plain["proceeding_reference"] is None


def test_control_characters_and_unknown_agencies_are_refused(
    client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    def asking(**extra: Any) -> Any:
        return client.post(
            "/v1/access-requests",
            json={
                "child_id": pushed["child_id"],
                "purpose": "legal_representation",
                "categories": ["identity"],
                "until": (datetime.now(UTC) + timedelta(days=60)).isoformat(),
                **extra,
            },
            headers={**lawyer.headers, **EN},
        )

    said = refused(asking(proceeding_reference="Amparo \u202e4321"), "/proceeding_reference")
    assert said["message"].startswith("The proceeding reference contains control characters")
    said = refused(asking(on_behalf_of={"name": "Clínica\x1b[2J"}), "/on_behalf_of/name")
    assert "control characters" in said["message"]
    said = refused(asking(on_behalf_of={"agency_id": "mx.xx.nada"}), "/on_behalf_of/agency_id")
    assert said["message"] == "This hub has no agency 'mx.xx.nada' (nor is it a pinned peer hub's)."
    # Line breaks are text, as in a justification.
    assert asking(proceeding_reference="Amparo 1234/2026\nJuzgado Tercero").status_code == 201


# -- 5. where a query error points --------------------------------------------------------------


def test_the_queues_query_errors_point_at_their_parameter(
    client: FlaskClient, officer: PersonClient, lawyer: PersonClient
) -> None:
    for caller in (officer, lawyer):
        for query, name in (("status=bogus", "status"), ("purpose=curiosity", "purpose")):
            answer = client.get(f"/v1/access-requests?{query}", headers=caller.headers)
            error = refused(answer, f"/query/{name}")
            assert error["parameter"] == name
    overrides = client.get("/v1/overrides?status=bogus", headers=officer.headers)
    assert refused(overrides, "/query/status")["parameter"] == "status"


# -- 6. a legal representative lists their own requests ---------------------------------------


@pytest.fixture
def second_lawyer(app: Flask, lawyer: PersonClient) -> PersonClient:
    return legal_representative(app, "lic-beto")


def test_a_legal_representative_lists_only_their_own_requests(
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    second_lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    child_id = pushed["child_id"]
    first = ask(client, lawyer, child_id, justification="Representación en el asilo.")
    second = ask(client, lawyer, child_id, purpose="asylum_procedure")
    third = ask(client, lawyer, child_id)
    other = ask(client, second_lawyer, child_id)
    client.post(
        f"/v1/access-requests/{first['id']}/decision",
        json={"approve": False, "reason": "No procede."},
        headers=officer.headers,
    )

    listed = client.get("/v1/access-requests", headers=lawyer.headers)
    assert listed.status_code == 200, listed.get_json()
    page = listed.get_json()
    assert page["status"] is None and page["total"] == 3 and page["next_after"] is None
    # Newest first, as the portal lists them, each as the requester reads it alone.
    assert [seen["id"] for seen in page["access_requests"]] == [
        third["id"],
        second["id"],
        first["id"],
    ]
    alone = client.get(f"/v1/access-requests/{first['id']}", headers=lawyer.headers).get_json()
    assert page["access_requests"][2] == alone
    assert "decision_reason" not in alone and "decided_by" not in alone

    def ids(query: str) -> list[str]:
        answer = client.get(f"/v1/access-requests?{query}", headers=lawyer.headers)
        assert answer.status_code == 200, answer.get_json()
        return [seen["id"] for seen in answer.get_json()["access_requests"]]

    assert ids("status=denied") == [first["id"]]
    assert ids("status=pending") == [third["id"], second["id"]]
    assert ids("purpose=asylum_procedure") == [second["id"]]
    assert ids(f"child_id={child_id}") == [third["id"], second["id"], first["id"]]
    assert ids("child_id=nna_00000000000000000000") == []
    paged = client.get("/v1/access-requests?limit=2", headers=lawyer.headers).get_json()
    assert paged["next_after"] == second["id"] and paged["total"] == 3
    assert ids(f"limit=2&after={second['id']}") == [first["id"]]
    # Another requester's request is no place in their list.
    foreign = client.get(f"/v1/access-requests?after={other['id']}", headers=lawyer.headers)
    assert refused(foreign, "/query/after")
    assert ids("") == ids("limit=500")
    assert [s["id"] for s in client.get("/v1/access-requests", headers=second_lawyer.headers)
            .get_json()["access_requests"]] == [other["id"]]  # fmt: skip

    # The officer's queue is as it was: pending ones, oldest first, audited.
    queue = client.get("/v1/access-requests", headers=officer.headers).get_json()
    assert queue["status"] == "pending"
    assert [seen["id"] for seen in queue["access_requests"]] == [
        second["id"],
        third["id"],
        other["id"],
    ]


def test_an_agency_system_lists_the_requests_it_made(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    system = add_agency(
        app, "mx.osc.otra", kind="civil_society", scopes=("records:read", "access:request")
    )
    made = ask(client, system, pushed["child_id"])  # type: ignore[arg-type]
    ask(client, lawyer, pushed["child_id"])
    listed = client.get("/v1/access-requests", headers=system.headers).get_json()
    assert [seen["id"] for seen in listed["access_requests"]] == [made["id"]]


def test_a_token_with_neither_scope_is_refused(app: Flask, client: FlaskClient) -> None:
    reader: AgencyClient = add_agency(app, "mx.chp.salud", scopes=("records:read",))
    answer = client.get("/v1/access-requests", headers={**reader.headers, **EN})
    assert answer.status_code == 403
    assert "access:request or access:decide" in answer.get_json()["detail"]


# -- 7. record ids that are not the child's -------------------------------------------------------


def test_the_officer_is_told_of_record_ids_that_are_not_the_childs(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    another_child = envelope("EXP-2", example("venezuelan_adolescent_transferred_between_states"))
    elsewhere = push(client, owner, another_child).get_json()
    assert elsewhere["child_id"] != pushed["child_id"]
    gone = "rec_000000000000000000000000"
    asked_for = sorted([pushed["record_id"], elsewhere["record_id"], gone])
    asked = ask(client, lawyer, pushed["child_id"], record_ids=asked_for)
    assert asked["record_ids"] == asked_for and "warnings" not in asked
    answer = client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        json={"approve": True, "reason": "Representación acreditada."},
        headers=officer.headers,
    )
    assert answer.status_code == 200, answer.get_json()
    decided = answer.get_json()
    stray = sorted([elsewhere["record_id"], gone])
    [warning] = decided["warnings"]
    assert warning["code"] == "records_not_the_childs" and warning["record_ids"] == stray
    assert all(record_id in warning["es"] and record_id in warning["en"] for record_id in stray)
    assert pushed["record_id"] not in warning["en"]
    assert "no son de esta niña, niño o adolescente" in warning["es"]
    assert "are not this child's" in warning["en"]
    # What is granted is what was asked; the requester reads no warning.
    assert sorted(decided["grant"]["record_ids"]) == asked_for
    seen = client.get(f"/v1/access-requests/{asked['id']}", headers=lawyer.headers).get_json()
    assert "warnings" not in seen and seen["record_ids"] == asked_for


def test_no_warning_when_every_record_is_the_childs(
    client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    asked = ask(client, lawyer, pushed["child_id"], record_ids=[pushed["record_id"]])
    decided = client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        json={"approve": True, "reason": "Representación acreditada."},
        headers=officer.headers,
    ).get_json()
    assert "warnings" not in decided and decided["status"] == "granted"
