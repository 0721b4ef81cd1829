"""Reading a child's recorded views (``GET /v1/children/{child_id}/views``): the consent officers
who act for the child find an objection and review it; oversight reads them too; anyone else
learns nothing, not even that the child exists. Every reading is an audit entry."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from consent_support import (
    COMAR,
    OWNER,
    PROCURADURIA,
    PersonClient,
    adolescent_record,
    audit_entry,
    consent_document,
    consent_officer,
    entries,
    legal_representative,
    procuraduria,
    push_child,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency, envelope, example, push

OBJECTION = "No quiere que COMAR vea su expediente todavía."


@pytest.fixture
def pushed(app: Flask, client: FlaskClient) -> dict[str, Any]:
    return push_child(client, add_agency(app, OWNER))


@pytest.fixture
def people(app: Flask) -> dict[str, Any]:
    """The officer who heard the girl and a colleague (Procuraduría Chiapas), an officer of
    another state (Nuevo León) and that state's DIF system, a lawyer and oversight (CNDH)."""
    procuraduria(app)
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", kind="state_dif")
    add_agency(app, "mx.osc.clinica", kind="civil_society")
    return {
        "officer": consent_officer(app, "co-chp-004"),
        "colleague": consent_officer(app, "co-chp-005"),
        "elsewhere": consent_officer(app, "co-nl-001", "mx.nl.procuraduria"),
        "lawyer": legal_representative(app, "lic-ana"),
        "nl_system": add_agency(
            app,
            "mx.nl.dif",
            jurisdiction="19",
            kind="state_dif",
            scopes=("records:read", "consent:read", "consent:write"),
        ),
        "oversight": add_agency(
            app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
        ),
    }


def record_views(
    client: FlaskClient, officer: PersonClient, child_id: str, **views: Any
) -> dict[str, Any]:
    body = {
        "heard_on": datetime.now(UTC).date().isoformat(),
        "heard_by": {"person_id": officer.id},
        **views,
    }
    response = client.post(f"/v1/children/{child_id}/views", json=body, headers=officer.headers)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def views_of(client: FlaskClient, caller: Any, child_id: str, **headers: str) -> Any:
    return client.get(f"/v1/children/{child_id}/views", headers={**caller.headers, **headers})


def same_problem(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem without what differs between any two answers (where, which request)."""
    return {k: v for k, v in problem.items() if k not in {"instance", "request_id"}}


def test_a_second_officer_finds_the_objection_and_reviews_it(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id = pushed["child_id"]
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    assent = record_views(client, people["officer"], child_id, position="assent")
    objection = record_views(
        client,
        people["officer"],
        child_id,
        position="objection",
        summary=OBJECTION,
        categories=["health"],
        about=[{"agency_id": COMAR}],
    )

    colleague = people["colleague"]
    response = views_of(client, colleague, child_id)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["child_id"] == child_id
    newest, oldest = body["views"]  # newest first
    assert (newest["id"], oldest["id"]) == (objection["id"], assent["id"])
    assert newest["review_state"] == "awaiting_review" and newest["may_review"] is True
    assert newest["views"]["summary"] == OBJECTION
    assert newest["views"]["position"] == "objection"
    assert newest["views"]["about"] == [{"agency_id": COMAR}]
    assert newest["recorded_by"] == {"agency_id": PROCURADURIA}
    assert newest["consent_id"] is None
    assert oldest["review_state"] == "not_required"

    # The reading is audited with ids only: never the child's words.
    entry = audit_entry(app, body["audit_entry"])
    assert entry["action"] == "consents_read"
    assert entry["child_id"] == child_id
    assert entry["reason_code"] == "child_views"
    assert entry["actor"]["person_id"] == colleague.id
    assert OBJECTION not in str(entry)

    reviewed = client.post(
        f"/v1/views/{newest['id']}/review",
        json={"upheld": False, "reason": "Se le explicó el procedimiento y está de acuerdo."},
        headers=colleague.headers,
    )
    assert reviewed.status_code == 200, reviewed.get_json()
    after, _ = views_of(client, colleague, child_id).get_json()["views"]
    assert after["review_state"] == "set_aside" and after["may_review"] is False
    assert after["views"]["review"]["upheld"] is False
    assert len([e for e in entries(app, "consents_read") if e.get("reason_code")]) == 2

    # An assent blocks nothing: there is nothing to uphold or set aside (and no
    # objection_set_aside entry about no objection).
    not_an_objection = client.post(
        f"/v1/views/{assent['id']}/review",
        json={"upheld": False, "reason": "Revisión por error."},
        headers=colleague.headers,
    )
    assert not_an_objection.status_code == 409, not_an_objection.get_json()
    _, still = views_of(client, colleague, child_id).get_json()["views"]
    assert still["review_state"] == "not_required" and "review" not in still["views"]


def test_views_heard_before_the_child_was_born_are_refused(
    client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    # The girl was born on 2012-05-10 (push_child): a date before that is a typing mistake.
    officer = people["officer"]
    response = client.post(
        f"/v1/children/{pushed['child_id']}/views",
        json={
            "heard_on": "1990-11-20",
            "heard_by": {"person_id": officer.id},
            "position": "assent",
        },
        headers={**officer.headers, "Accept-Language": "en"},
    )
    assert response.status_code == 400, response.get_json()
    [error] = response.get_json()["errors"]
    assert error["pointer"] == "/heard_on" and "before the child was born" in error["message"]


def test_views_heard_once_the_child_was_an_adult_are_refused(
    app: Flask, client: FlaskClient, people: dict[str, Any]
) -> None:
    # Born on 2008-02-11: 18 on 2026-02-11. Views heard from then on are no child's views.
    data = copy.deepcopy(example("typical"))
    data["child"]["date_of_birth"] = "2008-02-11"
    response = push(client, add_agency(app, OWNER), envelope("EXP-18", data))
    assert response.status_code == 201, response.get_json()
    child_id, officer = response.get_json()["child_id"], people["officer"]

    def heard_on(day: str, language: str = "en") -> Any:
        return client.post(
            f"/v1/children/{child_id}/views",
            json={"heard_on": day, "heard_by": {"person_id": officer.id}, "position": "assent"},
            headers={**officer.headers, "Accept-Language": language},
        )

    for day in ("2026-11-01", "2026-02-11"):
        refused = heard_on(day)
        assert refused.status_code == 400, refused.get_json()
        [error] = refused.get_json()["errors"]
        assert error["pointer"] == "/heard_on" and "already 18" in error["message"], error
    [error] = heard_on("2026-02-11", "es").get_json()["errors"]
    assert "ya tenía 18 años" in error["message"]
    assert heard_on("2026-02-10").status_code == 201  # the day before: still a child


def test_only_an_objection_may_be_reviewed(
    client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id = pushed["child_id"]
    for position in ("assent", "not_heard", "objection"):
        extra = (
            {"not_heard_reason": "Dormía al momento de la visita."}
            if position == "not_heard"
            else {}
        )
        record_views(client, people["officer"], child_id, position=position, **extra)
    listed = views_of(client, people["colleague"], child_id).get_json()["views"]
    assert {item["views"]["position"]: item["may_review"] for item in listed} == {
        "assent": False,
        "not_heard": False,
        "objection": True,
    }


def test_an_upheld_objection_and_views_recorded_with_a_consent(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    officer, child_id = people["officer"], pushed["child_id"]
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    document = consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"])
    document["child_views"] = {
        "heard_on": datetime.now(UTC).date().isoformat(),
        "heard_by": {"person_id": officer.id},
        "position": "assent",
    }
    consent = record_consent(client, officer, child_id, document)
    objection = record_views(client, officer, child_id, position="objection")
    upheld = client.post(
        f"/v1/views/{objection['id']}/review",
        json={"upheld": True, "reason": "Se confirma la objeción."},
        headers=people["colleague"].headers,
    )
    assert upheld.status_code == 200

    listed = views_of(client, officer, child_id).get_json()["views"]
    assert [item["review_state"] for item in listed] == ["upheld", "not_required"]
    assert listed[1]["consent_id"] == consent["id"]
    assert listed[1]["id"] == consent["consent"]["child_views"]["views_id"]


def test_oversight_reads_the_views_but_may_not_review_them(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    record_views(
        client, people["officer"], pushed["child_id"], position="objection", summary=OBJECTION
    )
    record_views(
        client,
        people["officer"],
        pushed["child_id"],
        position="not_heard",
        not_heard_reason="Dormía durante la visita.",
    )
    response = views_of(client, people["oversight"], pushed["child_id"])
    assert response.status_code == 200, response.get_json()
    not_heard, item = response.get_json()["views"]
    assert item["review_state"] == "awaiting_review" and item["may_review"] is False
    # What was heard, when and by whom, and its review — never the child's own words, which
    # are case content: oversight sees the audit log's kind of facts.
    assert item["views"]["position"] == "objection" and "summary" not in item["views"]
    assert not_heard["views"]["position"] == "not_heard"
    assert "not_heard_reason" not in not_heard["views"]
    colleague = views_of(client, people["colleague"], pushed["child_id"]).get_json()
    assert colleague["views"][1]["views"]["summary"] == OBJECTION
    entry = audit_entry(app, response.get_json()["audit_entry"])
    assert entry["actor"]["agency_id"] == "mx.fed.cndh"


def test_nobody_else_learns_whether_the_child_exists(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    record_views(client, people["officer"], pushed["child_id"], position="objection")
    missing = "nna_00000000000000000000"
    before = len(entries(app, "consents_read"))
    # An officer and an agency system of another state (with the consent scopes, but not
    # responsible for the child): the same 404, word for word, as for a missing child.
    for caller in (people["elsewhere"], people["nl_system"]):
        for language in ("es", "en"):
            seen = views_of(client, caller, pushed["child_id"], **{"Accept-Language": language})
            unknown = views_of(client, caller, missing, **{"Accept-Language": language})
            assert seen.status_code == unknown.status_code == 404
            assert same_problem(seen.get_json()) == same_problem(unknown.get_json())
            assert OBJECTION not in seen.get_data(as_text=True)
    # A token with no consent or oversight scope is refused whatever the child.
    for child_id in (pushed["child_id"], missing):
        refused = views_of(client, people["lawyer"], child_id)
        assert refused.status_code == 403
        assert "consent:read" in refused.get_json()["detail"]
    assert len(entries(app, "consents_read")) == before  # nothing was read


def test_the_views_of_a_child_merged_into_another_follow_it(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    from exchange import db
    from exchange.child_duplicates import merge_children

    # Another agency's copy of the girl, without the identifiers that would link it at once.
    document = adolescent_record("EXP-2")
    document["data"]["child"]["identifiers"] = []
    pushed_copy = push(client, add_agency(app, "mx.chp.tapachula.dif"), document)
    assert pushed_copy.status_code == 201, pushed_copy.get_json()
    copy = pushed_copy.get_json()
    assert copy["child_id"] != pushed["child_id"]
    officer = people["officer"]
    first = record_views(client, officer, copy["child_id"], position="objection")
    second = record_views(client, officer, pushed["child_id"], position="assent")
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            merge_children(session, pushed["child_id"], copy["child_id"], reason="same child")
        session.close()

    for asked in (pushed["child_id"], copy["child_id"]):
        body = views_of(client, officer, asked).get_json()
        assert body["child_id"] == pushed["child_id"]
        assert [item["id"] for item in body["views"]] == [second["id"], first["id"]]
