"""Reading emergency overrides: the reviewers' queue (``GET /v1/overrides``) and one override
with its written justification (``GET /v1/overrides/{id}``), for the Procuraduría officers who
review it and for oversight (whose ``GET /v1/audit/alerts`` leaves the justification out: it
is case content, read one override at a time, audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from consent_support import (
    OWNER,
    PROCURADURIA,
    PersonClient,
    add_person_client,
    audit_entry,
    consent_officer,
    legal_representative,
    procuraduria,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency

from exchange import db
from exchange.consent_store import OverrideRow

JUSTIFICATION = (
    "Ingreso a urgencias inconsciente; el hospital necesita antecedentes médicos y el "
    "contacto de la madre."
)


@pytest.fixture
def pushed(app: Flask, client: FlaskClient) -> dict[str, Any]:
    return push_child(client, add_agency(app, OWNER))


@pytest.fixture
def people(app: Flask) -> dict[str, PersonClient]:
    """The opener and a colleague (Procuraduría Chiapas), a federal reviewer (PFPNNA), an
    officer of another state (Nuevo León) and a lawyer."""
    procuraduria(app)
    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", kind="state_dif")
    add_agency(app, "mx.osc.clinica", kind="civil_society")
    return {
        "opener": add_person_client(
            app, "ov-chp-001", PROCURADURIA, ["override_officer"], ["override", "records:read"]
        ),
        "colleague": consent_officer(app, "co-chp-001"),
        "reviewer": consent_officer(app, "co-fed-001", "mx.fed.pfpnna"),
        "elsewhere": consent_officer(app, "co-nl-001", "mx.nl.procuraduria"),
        "lawyer": legal_representative(app, "lic-ana"),
    }


@pytest.fixture
def oversight(app: Flask) -> AgencyClient:
    return add_agency(
        app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )


@pytest.fixture
def opened(
    client: FlaskClient, people: dict[str, PersonClient], pushed: dict[str, Any]
) -> dict[str, Any]:
    response = client.post(
        "/v1/overrides",
        json={
            "child_id": pushed["child_id"],
            "basis_code": "medical_emergency",
            "justification": JUSTIFICATION,
            "categories": ["health", "family"],
            "hours": 6,
        },
        headers=people["opener"].headers,
    )
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def queue(client: FlaskClient, caller: Any, status: str | None = None) -> Any:
    query = f"?status={status}" if status else ""
    return client.get(f"/v1/overrides{query}", headers=caller.headers)


def test_the_reviewer_finds_the_override_reads_its_justification_and_reviews_it(
    app: Flask,
    client: FlaskClient,
    people: dict[str, PersonClient],
    opened: dict[str, Any],
    pushed: dict[str, Any],
) -> None:
    reviewer = people["reviewer"]
    listed = queue(client, reviewer)
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["status"] == "open"
    [item] = body["overrides"]
    assert item["id"] == opened["id"] and item["child_id"] == pushed["child_id"]
    assert item["basis_code"] == "medical_emergency"
    assert item["categories"] == ["family", "health"]
    assert item["opened_by"] == {"agency_id": PROCURADURIA, "person_id": "ov-chp-001"}
    assert item["status"] == "open" and item["in_force"] is True and item["upheld"] is None
    # The queue is no place for the child's situation: the justification is read one at a time.
    assert "justification" not in item and JUSTIFICATION not in listed.get_data(as_text=True)

    read = client.get(f"/v1/overrides/{opened['id']}", headers=reviewer.headers)
    assert read.status_code == 200
    answer = read.get_json()
    assert answer["override"]["justification"] == JUSTIFICATION
    assert answer["may_review"] is True and answer["status"] == "open"
    entry = audit_entry(app, answer["audit_entry"])
    assert entry["action"] == "consents_read"
    assert entry["actor"]["person_id"] == "co-fed-001"
    assert entry["object"] == {"type": "override", "id": opened["id"]}
    assert JUSTIFICATION not in str(entry)  # the log keeps ids, never the text

    reviewed = client.post(
        f"/v1/overrides/{opened['id']}/review",
        json={"upheld": True, "reason": "Urgencia acreditada por el hospital."},
        headers=reviewer.headers,
    )
    assert reviewed.status_code == 200
    assert queue(client, reviewer).get_json()["overrides"] == []
    [done] = queue(client, reviewer, "reviewed").get_json()["overrides"]
    assert done["id"] == opened["id"] and done["status"] == "reviewed" and done["upheld"] is True
    again = client.get(f"/v1/overrides/{opened['id']}", headers=reviewer.headers).get_json()
    assert again["may_review"] is False
    assert again["override"]["review"]["reason"] == "Urgencia acreditada por el hospital."


def test_the_openers_agency_reads_it_but_does_not_get_it_to_review(
    client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    colleague = people["colleague"]
    assert queue(client, colleague).get_json()["overrides"] == []
    answer = client.get(f"/v1/overrides/{opened['id']}", headers=colleague.headers).get_json()
    assert answer["override"]["justification"] == JUSTIFICATION
    assert answer["may_review"] is False


def test_outside_the_jurisdiction_an_override_does_not_exist(
    client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    elsewhere = people["elsewhere"]
    assert queue(client, elsewhere).get_json()["overrides"] == []
    theirs = client.get(f"/v1/overrides/{opened['id']}", headers=elsewhere.headers)
    missing = client.get("/v1/overrides/ovr_000000000000000000000000", headers=elsewhere.headers)
    assert theirs.status_code == missing.status_code == 404
    assert {k: v for k, v in theirs.get_json().items() if k not in ("instance", "request_id")} == {
        k: v for k, v in missing.get_json().items() if k not in ("instance", "request_id")
    }
    assert JUSTIFICATION not in theirs.get_data(as_text=True)


def test_without_a_reviewers_or_oversight_scope_the_answer_is_403_whatever_the_id(
    client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    for caller in (people["lawyer"], people["opener"]):
        assert queue(client, caller).status_code == 403
        for override_id in (opened["id"], "ovr_000000000000000000000000"):
            refused = client.get(
                f"/v1/overrides/{override_id}",
                headers={**caller.headers, "Accept-Language": "en"},
            )
            assert refused.status_code == 403
            assert "consent:write or audit:read" in refused.get_json()["detail"]
            assert JUSTIFICATION not in refused.get_data(as_text=True)


def test_oversight_reads_every_override_and_its_justification_one_at_a_time(
    app: Flask,
    client: FlaskClient,
    oversight: AgencyClient,
    opened: dict[str, Any],
) -> None:
    [item] = queue(client, oversight).get_json()["overrides"]
    assert item["id"] == opened["id"]
    answer = client.get(f"/v1/overrides/{opened['id']}", headers=oversight.headers).get_json()
    assert answer["override"]["justification"] == JUSTIFICATION
    assert answer["may_review"] is False  # the review is the Procuraduría's
    assert audit_entry(app, answer["audit_entry"])["actor"]["agency_id"] == "mx.fed.cndh"

    alerts = client.get("/v1/audit/alerts", headers=oversight.headers).get_json()["alerts"]
    [alert] = [a for a in alerts if a.get("override_id") == opened["id"]]
    assert alert["kind"] == "override"
    assert "justification" not in alert and JUSTIFICATION not in str(alerts)


def test_an_unknown_status_is_a_400(
    client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    response = queue(client, people["reviewer"], "pending")
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["parameter"] == "status"


def test_oversight_sees_every_override_in_force_during_the_window(
    app: Flask,
    client: FlaskClient,
    people: dict[str, PersonClient],
    oversight: AgencyClient,
    pushed: dict[str, Any],
) -> None:
    """Not only those opened in the window (the last hour by default): one opened two hours ago
    and still in force, or reviewed meanwhile, is there too; one that ended before is not."""

    def open_override(hours_ago: int, hours: int) -> str:
        response = client.post(
            "/v1/overrides",
            json={
                "child_id": pushed["child_id"],
                "basis_code": "medical_emergency",
                "justification": JUSTIFICATION,
                "categories": ["health"],
                "hours": hours,
            },
            headers=people["opener"].headers,
        )
        assert response.status_code == 201, response.get_json()
        override_id = str(response.get_json()["id"])
        earlier = timedelta(hours=hours_ago)
        with app.app_context(), db.database(app).sessions() as session:
            row = session.get(OverrideRow, override_id)
            assert row is not None
            row.starts_at, row.ends_at = row.starts_at - earlier, row.ends_at - earlier
            session.commit()
        return override_id

    in_force = open_override(hours_ago=2, hours=6)
    reviewed = open_override(hours_ago=3, hours=6)
    ended = open_override(hours_ago=5, hours=2)
    not_upheld = client.post(
        f"/v1/overrides/{reviewed}/review",
        json={"upheld": False, "reason": "No se acreditó la urgencia."},
        headers=people["reviewer"].headers,
    )
    assert not_upheld.status_code == 200, not_upheld.get_json()

    alerts = client.get("/v1/audit/alerts", headers=oversight.headers).get_json()["alerts"]
    listed = {a["override_id"]: a for a in alerts if a["kind"] == "override"}
    assert set(listed) == {in_force, reviewed}
    assert (listed[reviewed]["reviewed"], listed[reviewed]["upheld"]) == (True, False)
    assert ended not in str(alerts)
