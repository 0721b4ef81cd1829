"""The portal's pages for logged-in people: their own tokens (made, shown once, used on the API,
revoked at once; scopes bounded by their roles), and access requests — a legal
representative's own, a consent officer's queue — through the API's own services."""

from __future__ import annotations

import re
from typing import Any

from consent_support import (
    CLINIC,
    PersonClient,
    add_person_client,
    consent_officer,
    entries,
    legal_representative,
)
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from records_support import AgencyClient, add_agency, rows
from sqlalchemy import select

from exchange.auth import AccessToken

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
IN_A_YEAR = "2030-01-01"


def _csrf(browser: FlaskClient, path: str) -> str:
    return csrf_of(browser.get(path).get_data(as_text=True))


def _make_token(browser: FlaskClient, **form: Any) -> Any:
    return browser.post(
        "/tokens?lang=en", data={"csrf_token": _csrf(browser, "/tokens"), "days": "7", **form}
    )


# -- tokens ------------------------------------------------------------------------------------


def test_a_token_is_shown_once_works_on_the_api_and_revokes_at_once(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    listed = browser.get("/tokens?lang=en")
    assert listed.status_code == 200 and "Working tokens" in text_of(listed)
    assert lawyer.token not in listed.get_data(as_text=True)  # no secret is ever listed

    posted = _make_token(browser, scope=["access:request"], name=XSS)
    assert posted.status_code == 303, text_of(posted)  # a reload makes no second token
    made = browser.get(posted.headers["Location"])
    page = made.get_data(as_text=True)
    [secret] = set(re.findall(r"pat_[A-Za-z0-9_-]{20,}", page))
    assert secret not in posted.headers["Location"]
    assert "Store it now: it is not shown again." in text_of(made)
    assert ESCAPED in page and XSS not in page
    assert made.headers["Cache-Control"] == "no-store"
    again = browser.get("/tokens").get_data(as_text=True)
    assert secret not in again and ESCAPED in again

    bearer = {"Authorization": f"Bearer {secret}"}
    assert browser.get("/v1/grants", headers=bearer).status_code == 200
    assert browser.get("/v1/audit/events", headers=bearer).status_code == 403  # only its scope

    [(token_id,)] = rows(
        app, select(AccessToken.id).where(AccessToken.label == XSS, AccessToken.revoked.is_(False))
    )
    revoke = browser.post(f"/tokens/{token_id}/revoke", data={"csrf_token": _csrf(browser, "/")})
    assert revoke.status_code == 303
    assert browser.get("/v1/grants", headers=bearer).status_code == 401
    assert browser.get("/v1/grants", headers=lawyer.headers).status_code == 200  # the other

    # Audited as the command line's token verbs, naming the person as the one who acted.
    changes = [e for e in entries(app, "person_changed") if e["actor"].get("person_id")]
    details = [(e["reason_code"], e["actor"]) for e in changes]
    actor = {"agency_id": CLINIC, "person_id": lawyer.id, "role": "legal_representative"}
    assert (f"token_issued.{lawyer.id}.{token_id}", actor) in details
    assert (f"token_revoked.{lawyer.id}.{token_id}", actor) in details


def test_scopes_and_lifetime_are_bounded_as_on_the_command_line(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    form = browser.get("/tokens").get_data(as_text=True)
    offered = set(re.findall(r'name="scope" value="([^"]+)"', form))
    assert offered == {"records:read", "access:request"}  # what the role allows, no more
    before = len(rows(app, select(AccessToken.id)))
    beyond = _make_token(browser, scope=["audit:read"])
    assert beyond.status_code == 400 and "do not allow: audit:read" in text_of(beyond)
    assert _make_token(browser, scope=["records:write"]).status_code == 400
    assert _make_token(browser, scope=[]).status_code == 400
    for days in ("0", "366", "abc", "-1"):
        refused = _make_token(browser, scope=["records:read"], days=days)
        assert refused.status_code == 400, days
        assert "1" in text_of(refused) and "365" in text_of(refused)
    assert len(rows(app, select(AccessToken.id))) == before


def test_nobody_revokes_another_persons_token(
    app: Flask, lawyer: PersonClient, officer: PersonClient
) -> None:
    browser = logged_in(app, officer.id)
    [(lawyer_token,)] = rows(app, select(AccessToken.id).where(AccessToken.person_id == lawyer.id))
    for token_id in (lawyer_token, 999999, 99999999999, "abc", "²"):
        answer = browser.post(
            f"/tokens/{token_id}/revoke?lang=en", data={"csrf_token": _csrf(browser, "/")}
        )
        assert answer.status_code == 404 and "You have no token with that number." in text_of(
            answer
        )
    assert browser.get("/v1/grants", headers=lawyer.headers).status_code == 200


def test_other_roles_get_their_tokens_but_no_requests(app: Flask) -> None:
    add_agency(app, "mx.fed.cndh", scopes=("audit:read",), kind="oversight", jurisdiction="00")
    add_person_client(app, "auditora", "mx.fed.cndh", ["auditor"], ["audit:read"])
    browser = logged_in(app, "auditora")
    form = browser.get("/tokens").get_data(as_text=True)
    assert set(re.findall(r'name="scope" value="([^"]+)"', form)) == {"audit:read"}
    refused = browser.get("/requests?lang=en")
    assert refused.status_code == 403 and "Your roles do not allow this page." in text_of(refused)
    assert "/requests" not in browser.get("/").get_data(as_text=True)


# -- access requests ---------------------------------------------------------------------------


def _ask(browser: FlaskClient, child_id: str, categories: list[str], lang: str = "en") -> Any:
    """The form posted, and the page it redirects to followed (as a browser does)."""
    return browser.post(
        f"/requests?lang={lang}",
        data={
            "csrf_token": _csrf(browser, "/requests"),
            "child_id": child_id,
            "purpose": "legal_representation",
            "category": categories,
            "until": IN_A_YEAR,
        },
        follow_redirects=True,
    )


def _decide(browser: FlaskClient, request_id: str, decision: str, reason: str) -> Any:
    return browser.post(
        f"/requests/{request_id}/decision?lang=en",
        data={"csrf_token": _csrf(browser, "/"), "decision": decision, "reason": reason},
        follow_redirects=True,
    )


def _redirected(response: Any) -> bool:
    """The form worked: answered with a 303 to the list (Post/Redirect/Get)."""
    return [step.status_code for step in response.history] == [303] and (
        response.status_code == 200
    )


def _request_id(response: Any) -> str:
    found = re.search(r"acr_[0-9a-f]+", response.get_data(as_text=True))
    assert found is not None, text_of(response)
    return found.group(0)


def test_a_legal_representative_asks_and_sees_only_their_own_requests(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    other = legal_representative(app, "lic-beto")
    by_api = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "categories": ["family"],
            "until": f"{IN_A_YEAR}T00:00:00Z",
        },
        headers=other.headers,
    )
    assert by_api.status_code == 201
    browser = logged_in(app, lawyer.id)
    made = _ask(browser, pushed["child_id"], ["identity", "family"])
    assert _redirected(made), text_of(made)
    request_id = _request_id(made)
    # What the API tells the requester about it: pending, waiting for an officer.
    told = client.get(f"/v1/access-requests/{request_id}?lang=en", headers=lawyer.headers)
    assert told.get_json()["status"] == "pending"
    waiting = "Waiting for a consent officer's decision."
    assert f"Request made: {request_id} — pending . {waiting}" in text_of(made)
    page = browser.get("/requests?lang=en")
    assert request_id in page.get_data(as_text=True) and waiting in text_of(page)
    assert "Request made" not in text_of(page)  # the confirmation is shown once
    assert by_api.get_json()["id"] not in page.get_data(as_text=True)
    spanish = browser.get("/requests?lang=es")
    assert "Mis solicitudes" in text_of(spanish)
    assert "Espera la decisión de un oficial de consentimiento." in text_of(spanish)


def test_what_the_api_refuses_the_portal_refuses(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    invalid = _ask(browser, "not a child id", [])
    assert invalid.status_code == 400
    # An id the hub never issued is asked about like any child (test_access_request_no_oracle):
    # the request is made and waits, as one about a child the lawyer has no basis for.
    unknown = _ask(browser, "nna_00000000000000000000", ["identity"])
    assert unknown.status_code == 200
    assert "It does not exist" not in text_of(unknown)
    assert "Waiting for a consent officer's decision." in text_of(unknown)
    past = browser.post(
        "/requests?lang=en",
        data={
            "csrf_token": _csrf(browser, "/requests"),
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "category": ["identity"],
            "until": "2001-01-01",
        },
    )
    assert past.status_code == 400
    assert "The end date is in the past: choose today or a later date." in text_of(past)
    # A legal representative decides nothing.
    assert _decide(browser, "acr_x", "approve", "Yo mismo.").status_code == 403
    asked = entries(app, "access_requested")
    assert [entry["child_id"] for entry in asked] == ["nna_00000000000000000000"]


def test_an_officer_sees_their_jurisdictions_queue_and_decides_as_the_api_does(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", kind="state_dif")
    elsewhere = consent_officer(app, "co-nl-001", "mx.nl.procuraduria")
    asked = logged_in(app, lawyer.id)
    first = _request_id(_ask(asked, pushed["child_id"], ["family"]))
    second = _request_id(_ask(asked, pushed["child_id"], ["health"]))

    browser = logged_in(app, officer.id)
    queue = browser.get("/requests?lang=en")
    assert queue.status_code == 200
    assert first in queue.get_data(as_text=True) and second in queue.get_data(as_text=True)
    # The queue is the API's, audited the same: one consents_read entry per request listed.
    api_queue = client.get("/v1/access-requests?status=pending", headers=officer.headers)
    assert {r["id"] for r in api_queue.get_json()["access_requests"]} == {first, second}
    reads = [e for e in entries(app, "consents_read") if e["actor"].get("person_id") == officer.id]
    assert len(reads) == 4
    other_state = logged_in(app, elsewhere.id).get("/requests?lang=en")
    assert first not in other_state.get_data(as_text=True)
    assert "No requests await a decision in your jurisdiction." in text_of(other_state)
    # Nor can that officer decide it: the API's 404, "as if it did not exist".
    assert _decide(logged_in(app, elsewhere.id), first, "deny", "No.").status_code == 404

    missing_reason = _decide(browser, first, "deny", "   ")
    assert missing_reason.status_code == 400
    no_choice = _decide(browser, first, "", "Un motivo.")
    assert no_choice.status_code == 400 and "Choose approve or deny." in text_of(no_choice)

    denied = _decide(browser, first, "deny", f"{XSS} representación no acreditada")
    assert _redirected(denied), text_of(denied)
    assert ESCAPED in denied.get_data(as_text=True)
    assert XSS not in denied.get_data(as_text=True)
    seen = client.get(f"/v1/access-requests/{first}", headers=officer.headers).get_json()
    assert seen["status"] == "denied" and seen["decided_by"] == officer.id
    assert seen["decision_reason"] == f"{XSS} representación no acreditada"
    [entry] = entries(app, "access_denied")
    assert entry["actor"]["person_id"] == officer.id
    again = _decide(browser, first, "approve", "Cambio de opinión.")
    assert again.status_code == 409 and "already decided" in text_of(again)

    approved = _decide(browser, second, "approve", "Representación acreditada.")
    assert _redirected(approved), text_of(approved)
    seen = client.get(f"/v1/access-requests/{second}", headers=officer.headers).get_json()
    assert seen["status"] == "granted" and seen["grant_id"]
    assert f"Access granted by the consent office: grant {seen['grant_id']}" in text_of(approved)
    assert "Representación acreditada." in text_of(approved)
    # The requester reads it as the API tells it, and never the officer's reason.
    lawyer_page = asked.get("/requests?lang=en")
    told = client.get(f"/v1/access-requests/{first}?lang=en", headers=lawyer.headers).get_json()
    assert told["message"]["en"] in text_of(lawyer_page)
    assert "representación no acreditada" not in text_of(lawyer_page)


def test_the_portal_pages_are_bilingual(app: Flask, officer: PersonClient) -> None:
    browser = logged_in(app, officer.id)
    assert "Pendientes de decisión en su jurisdicción" in text_of(browser.get("/requests?lang=es"))
    assert "Awaiting a decision in your jurisdiction" in text_of(browser.get("/requests?lang=en"))
    assert "Mis tokens de acceso personal" in text_of(browser.get("/tokens?lang=es"))
    assert "My personal access tokens" in text_of(browser.get("/tokens?lang=en"))
    home = text_of(browser.get("/?lang=es"))
    assert "Sesión iniciada como" in home and "Solicitudes pendientes de decisión" in home


def test_a_persons_name_is_escaped(app: Flask, owner: AgencyClient) -> None:
    add_agency(app, "mx.osc.otra", scopes=("records:read",), kind="civil_society")
    from exchange import db
    from exchange.people import add_person

    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            add_person(
                session,
                person_id="lic-xss",
                name=f"Lic. {XSS}",
                email="lic-xss@example.org",
                agency_id="mx.osc.otra",
                roles=["legal_representative"],
            )
        session.close()
    page = logged_in(app, "lic-xss").get("/").get_data(as_text=True)
    assert ESCAPED in page and XSS not in page
