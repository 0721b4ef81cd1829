"""A withhold entry or an objection about an agency does not exist for that agency's people,
even when they act for the child (docs/consent.md §8.2, §8.8): they never see it — in the
child's lists, in a dry run, in the access-request queue — and cannot revoke or review it;
asking about its id is answered exactly as for an id that does not exist. Another institution
acting for the child (here the federal Procuraduría, PFPNNA) sees it and lifts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    LAWYER_SCOPES,
    OWNER,
    PROCURADURIA,
    PersonClient,
    add_person_client,
    consent_officer,
    procuraduria,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency

PFPNNA = "mx.fed.pfpnna"
REASON = "La Procuraduría estatal mantiene contacto con el presunto agresor."
OBJECTION = "No quiere que la Procuraduría de Chiapas conozca su salud."


@pytest.fixture
def people(app: Flask, client: FlaskClient) -> dict[str, Any]:
    """The child's record (the Chiapas DIF's), the Chiapas Procuraduría's two officers and a
    lawyer of theirs, and PFPNNA's officer: all act for the child."""
    pushed = push_child(client, add_agency(app, OWNER))
    system = procuraduria(app)
    add_agency(
        app, PFPNNA, jurisdiction="00", kind="federal_child_protection", scopes=("consent:read",)
    )
    return {
        "child_id": pushed["child_id"],
        "system": system,
        "chiapas": consent_officer(app, "co-chp-004"),
        "colleague": consent_officer(app, "co-chp-005"),
        "chiapas_lawyer": add_person_client(
            app, "abogada-chp", PROCURADURIA, ["legal_representative"], LAWYER_SCOPES
        ),
        "pfpnna": consent_officer(app, "co-pfpnna-001", PFPNNA),
    }


def post(client: FlaskClient, caller: PersonClient, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, json=body, headers={**caller.headers, "Accept-Language": "en"})


def withhold_of(client: FlaskClient, people: dict[str, Any], **body: Any) -> str:
    recorded = post(
        client,
        people["pfpnna"],
        f"/v1/children/{people['child_id']}/withholds",
        {"categories": ["health"], "reason": REASON, **body},
    )
    assert recorded.status_code == 201, recorded.get_json()
    return str(recorded.get_json()["id"])


def listed_withholds(client: FlaskClient, caller: PersonClient, child_id: str) -> list[str]:
    response = client.get(f"/v1/children/{child_id}/withholds", headers=caller.headers)
    assert response.status_code == 200, response.get_json()
    return [entry["id"] for entry in response.get_json()["withholds"]]


def dry_run(client: FlaskClient, caller: PersonClient, child_id: str, **body: Any) -> Any:
    response = post(
        client,
        caller,
        "/v1/decisions",
        {"child_id": child_id, "purpose": "legal_representation", **body},
    )
    assert response.status_code == 200, response.get_json()
    return response


def same_problem(response: Any) -> dict[str, Any]:
    """A problem without what differs between any two answers (where, which request)."""
    return {
        key: value
        for key, value in response.get_json().items()
        if key not in {"instance", "request_id"}
    }


@pytest.mark.parametrize(
    ("named", "about"),
    [
        ({"target": {"agency_id": PROCURADURIA}}, {"agency_id": PROCURADURIA}),
        # A colleague: the agency lifting it would be lifting it for one of its own.
        ({"target": {"person_id": "co-chp-005"}}, {"person_id": "co-chp-005"}),
        # Every state DIF, the Chiapas Procuraduría among them.
        ({"actor_kind": "state_dif"}, {"agency_id": PROCURADURIA}),
    ],
    ids=["agency", "colleague", "kind"],
)
def test_the_agency_a_withhold_entry_names_never_sees_it_nor_revokes_it(
    client: FlaskClient, people: dict[str, Any], named: dict[str, Any], about: dict[str, str]
) -> None:
    child_id, chiapas = people["child_id"], people["chiapas"]
    entry_id = withhold_of(client, people, **named)

    # The child's list: PFPNNA's officer sees the entry; the Chiapas officers do not.
    assert listed_withholds(client, people["pfpnna"], child_id) == [entry_id]
    for officer in (chiapas, people["colleague"]):
        assert listed_withholds(client, officer, child_id) == []

    # A dry run about whom it names tells them "nothing in force permits this", as a reader
    # who does not act for the child is told it; PFPNNA's names the entry.
    asked = {"actor": about, "categories": ["health"]}
    told = dry_run(client, chiapas, child_id, **asked)
    assert entry_id not in told.get_data(as_text=True) and REASON not in told.get_data(as_text=True)
    decision = told.get_json()
    assert decision["result"] == "deny" and decision["basis"] == "default_deny"
    assert [reason["code"] for reason in decision["reasons"]] == ["default_deny"]
    assert "withhold_ids" not in decision
    assert dry_run(client, people["pfpnna"], child_id, **asked).get_json()["withhold_ids"] == [
        entry_id
    ]

    # Revoking it is answered exactly as for an id that does not exist.
    reason = {"reason": "Ya no procede."}
    missing = post(client, chiapas, "/v1/withholds/wth_000000000000000000000000/revoke", reason)
    for officer in (chiapas, people["colleague"]):
        refused = post(client, officer, f"/v1/withholds/{entry_id}/revoke", reason)
        assert refused.status_code == 404, refused.get_json()
        assert same_problem(refused) == same_problem(missing)
    # So for the Procuraduría's own system, which is no officer: not a 403 that would tell
    # an entry is there.
    by_system = client.post(
        f"/v1/withholds/{entry_id}/revoke",
        json=reason,
        headers={**people["system"].headers, "Accept-Language": "en"},
    )
    assert by_system.status_code == 404, by_system.get_json()

    revoked = post(client, people["pfpnna"], f"/v1/withholds/{entry_id}/revoke", reason)
    assert revoked.status_code == 200, revoked.get_json()
    assert listed_withholds(client, chiapas, child_id) == []  # revoked: still not theirs


def test_an_entry_naming_someone_else_is_seen_and_revoked_as_before(
    client: FlaskClient, people: dict[str, Any]
) -> None:
    add_agency(client.application, "mx.fed.comar", jurisdiction="00", kind="refugee_commission")
    entry_id = withhold_of(client, people, target={"agency_id": "mx.fed.comar"})
    assert listed_withholds(client, people["chiapas"], people["child_id"]) == [entry_id]
    revoked = post(
        client, people["chiapas"], f"/v1/withholds/{entry_id}/revoke", {"reason": "Ya no."}
    )
    assert revoked.status_code == 200, revoked.get_json()


def test_an_objection_about_an_agency_is_not_shown_to_it_nor_reviewed_by_it(
    client: FlaskClient, people: dict[str, Any]
) -> None:
    child_id, chiapas = people["child_id"], people["chiapas"]
    recorded = post(
        client,
        people["pfpnna"],
        f"/v1/children/{child_id}/views",
        {
            "heard_on": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
            "heard_by": {"person_id": "co-pfpnna-001"},
            "position": "objection",
            "categories": ["health"],
            "about": [{"agency_id": PROCURADURIA}],
            "summary": OBJECTION,
        },
    )
    assert recorded.status_code == 201, recorded.get_json()
    view_id = recorded.get_json()["id"]

    def views(caller: PersonClient) -> list[str]:
        response = client.get(f"/v1/children/{child_id}/views", headers=caller.headers)
        assert response.status_code == 200, response.get_json()
        return [found["id"] for found in response.get_json()["views"]]

    assert views(people["pfpnna"]) == [view_id]
    assert views(chiapas) == []

    told = dry_run(client, chiapas, child_id, categories=["health"])
    assert view_id not in told.get_data(as_text=True) and OBJECTION not in told.get_data(
        as_text=True
    )
    assert "view_ids" not in told.get_json()
    assert {reason["code"] for reason in told.get_json()["reasons"]} == {"default_deny"}

    review = {"upheld": False, "reason": "Se escuchó de nuevo."}
    missing = post(client, chiapas, "/v1/views/vw_000000000000000000000000/review", review)
    refused = post(client, chiapas, f"/v1/views/{view_id}/review", review)
    assert refused.status_code == 404, refused.get_json()
    assert same_problem(refused) == same_problem(missing)
    reviewed = post(client, people["pfpnna"], f"/v1/views/{view_id}/review", review)
    assert reviewed.status_code == 200, reviewed.get_json()


def test_the_queue_does_not_name_an_entry_about_the_officers_own_agency(
    client: FlaskClient, people: dict[str, Any]
) -> None:
    """A request by someone of the agency an entry names waits in that agency's officers'
    queue too (they cannot approve it, but may deny it): its decision must not name the entry
    to them, there nor in the request read alone, nor in the answer to their denial."""
    child_id = people["child_id"]
    entry_id = withhold_of(client, people, target={"agency_id": PROCURADURIA})
    asked = post(
        client,
        people["chiapas_lawyer"],
        "/v1/access-requests",
        {
            "child_id": child_id,
            "purpose": "legal_representation",
            "categories": ["health"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
    )
    assert asked.status_code == 201, asked.get_json()
    request_id = asked.get_json()["id"]
    assert asked.get_json()["status"] == "pending"

    def queued(officer: PersonClient) -> dict[str, Any]:
        response = client.get("/v1/access-requests?status=pending", headers=officer.headers)
        [found] = [r for r in response.get_json()["access_requests"] if r["id"] == request_id]
        return dict(found)

    assert queued(people["pfpnna"])["decision"]["withhold_ids"] == [entry_id]
    mine = queued(people["chiapas"])
    assert entry_id not in str(mine) and "withhold" not in str(mine["decision"])
    assert mine["decision"]["basis"] == "default_deny"
    alone = client.get(f"/v1/access-requests/{request_id}", headers=people["chiapas"].headers)
    assert alone.status_code == 200 and entry_id not in alone.get_data(as_text=True)

    denied = post(
        client,
        people["colleague"],
        f"/v1/access-requests/{request_id}/decision",
        {"approve": False, "reason": "No corresponde a esta institución."},
    )
    assert denied.status_code == 200, denied.get_json()
    assert entry_id not in denied.get_data(as_text=True)


def test_an_approval_an_unseen_entry_blocks_is_refused_without_naming_it(
    app: Flask, client: FlaskClient, people: dict[str, Any]
) -> None:
    """An entry withholding from every legal representative names the Chiapas Procuraduría
    too (its own lawyer holds that role): an approval it blocks is still refused (a grant
    could not take effect), but the conflict does not name it to the Chiapas officer."""
    from consent_support import CLINIC, legal_representative

    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    lawyer = legal_representative(app, "lic-ana")
    entry_id = withhold_of(client, people, target={"role": "legal_representative"})
    asked = post(
        client,
        lawyer,
        "/v1/access-requests",
        {
            "child_id": people["child_id"],
            "purpose": "legal_representation",
            "categories": ["health"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
    )
    assert asked.get_json()["status"] == "pending"
    approval = {"approve": True, "reason": "Representación acreditada."}
    path = f"/v1/access-requests/{asked.get_json()['id']}/decision"

    refused = post(client, people["chiapas"], path, approval)
    assert refused.status_code == 409, refused.get_json()
    assert (
        entry_id not in refused.get_data(as_text=True) and "withhold_ids" not in refused.get_json()
    )
    assert "A restriction you cannot consult withholds: Health." in refused.get_json()["detail"]
    assert refused.get_json()["categories"] == ["health"]
    by_pfpnna = post(client, people["pfpnna"], path, approval)
    assert by_pfpnna.status_code == 409 and by_pfpnna.get_json()["withhold_ids"] == [entry_id]
