"""The portal's forms, as a browser uses them: a form that worked answers with a redirect to
the list (Post/Redirect/Get), so a reload or a second click asks, decides or makes nothing
twice; a new token's secret is shown on that next page once, and never in an address; a
refused decision is told beside its request, in plain words, with what was typed kept."""

from __future__ import annotations

import html
import re
from typing import Any

from consent_support import PersonClient, entries
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from records_support import rows
from sqlalchemy import func, select

from exchange.auth import AccessToken
from exchange.consent_store import AccessRequestRow

IN_A_YEAR = "2030-01-01"


def _csrf(browser: FlaskClient, path: str = "/") -> str:
    return csrf_of(browser.get(path).get_data(as_text=True))


def _ask_form(browser: FlaskClient, child_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "csrf_token": _csrf(browser, "/requests"),
        "child_id": child_id,
        "purpose": "legal_representation",
        "category": ["health"],
        "until": IN_A_YEAR,
        **changes,
    }


def _pending(app: Flask) -> list[str]:
    return [
        row_id
        for (row_id,) in rows(
            app, select(AccessRequestRow.id).where(AccessRequestRow.status == "pending")
        )
    ]


def _panel(page: str, request_id: str) -> str:
    """The queue's panel about one request (its summary, errors and form)."""
    found = re.search(
        rf'<section class="panel" id="request-{request_id}">(.*?)</section>', page, re.S
    )
    assert found is not None, page
    return found.group(1)


def _asked(app: Flask, lawyer: PersonClient, child_id: str) -> str:
    browser = logged_in(app, lawyer.id)
    answer = browser.post("/requests?lang=en", data=_ask_form(browser, child_id))
    assert answer.status_code == 303
    [request_id] = _pending(app)
    return request_id


# -- 1. Post/Redirect/Get -------------------------------------------------------------------------


def test_asking_redirects_so_a_reload_asks_nothing_twice(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    form = _ask_form(browser, pushed["child_id"])
    answer = browser.post("/requests?lang=es", data=form)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/requests?lang=es"
    [request_id] = _pending(app)
    listed = browser.get(answer.headers["Location"])
    assert listed.status_code == 200
    assert f"Solicitud registrada: {request_id}" in text_of(listed)
    page = listed.get_data(as_text=True)
    # The form is empty again: nothing to send a second time by mistake.
    assert pushed["child_id"] not in re.findall(r'name="child_id" value="([^"]*)"', page)
    assert 'value="health" checked' not in page
    # A reload is the GET: no second request, and the confirmation is gone.
    again = browser.get(answer.headers["Location"])
    assert "Solicitud registrada" not in text_of(again) and _pending(app) == [request_id]
    assert len(entries(app, "access_requested")) == 1


def test_a_new_token_is_shown_once_after_the_redirect_and_never_in_an_address(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    before = rows(app, select(func.count(AccessToken.id)))[0][0]
    answer = browser.post(
        "/tokens?lang=en",
        data={"csrf_token": _csrf(browser, "/tokens"), "scope": "records:read", "days": "3"},
    )
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/tokens?lang=en")
    assert rows(app, select(func.count(AccessToken.id)))[0][0] == before + 1
    # The secret is in no address, and not readable in the cookie (sealed).
    shown = browser.get(answer.headers["Location"])
    [secret] = set(re.findall(r"pat_[A-Za-z0-9_-]{20,}", shown.get_data(as_text=True)))
    assert secret not in answer.headers["Location"]
    assert secret not in answer.headers.get("Set-Cookie", "")
    assert "Store it now: it is not shown again." in text_of(shown)
    # Shown once: a reload (the GET) shows it no more, and makes no token.
    reloaded = browser.get(answer.headers["Location"])
    assert secret not in reloaded.get_data(as_text=True)
    assert rows(app, select(func.count(AccessToken.id)))[0][0] == before + 1
    # The form is empty again.
    assert 'value="records:read" checked' not in reloaded.get_data(as_text=True)


def test_a_new_token_not_looked_at_on_the_next_page_is_gone(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    answer = browser.post(
        "/tokens?lang=en",
        data={"csrf_token": _csrf(browser, "/tokens"), "scope": "records:read", "days": "3"},
    )
    assert answer.status_code == 303
    browser.get("/?lang=en")  # another page first: it takes the secret out of the cookie
    later = browser.get("/tokens?lang=en").get_data(as_text=True)
    assert not re.findall(r"pat_[A-Za-z0-9_-]{20,}", later)


def test_revoking_redirects_and_says_which_token_once(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    [(token_id,)] = rows(app, select(AccessToken.id).where(AccessToken.person_id == lawyer.id))
    answer = browser.post(f"/tokens/{token_id}/revoke?lang=en", data={"csrf_token": _csrf(browser)})
    assert answer.status_code == 303
    told = text_of(browser.get(answer.headers["Location"]))
    assert f"Token revoked: #{token_id}" in told
    assert "Token revoked" not in text_of(browser.get("/tokens?lang=en"))


def test_deciding_redirects_and_shows_the_decision_once(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    request_id = _asked(app, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    answer = browser.post(
        f"/requests/{request_id}/decision?lang=es",
        data={"csrf_token": _csrf(browser), "decision": "deny", "reason": "Sin poder notarial."},
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/requests?lang=es"
    page = browser.get(answer.headers["Location"])
    told = text_of(page)
    assert "Solicitud resuelta" in told and request_id in told
    assert "Motivo de la decisión Sin poder notarial." in told
    # The language switch of that page is the list's, not the decision's address.
    assert 'href="/requests?lang=en"' in page.get_data(as_text=True)
    # A reload decides nothing again, and no longer shows the decision.
    assert "Solicitud resuelta" not in text_of(browser.get(answer.headers["Location"]))
    assert len(entries(app, "access_denied")) == 1


# -- 4. a refused decision, beside its request ------------------------------------------------


def test_a_refused_decision_is_told_beside_its_request_with_what_was_typed(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    first = _asked(app, lawyer, pushed["child_id"])
    browser = logged_in(app, lawyer.id)
    browser.post(
        "/requests?lang=en", data=_ask_form(browser, pushed["child_id"], category="family")
    )
    [second] = [found for found in _pending(app) if found != first]

    officer_browser = logged_in(app, officer.id)
    typed = "Representación acreditada, pero solo hasta la audiencia.\nVer expediente."
    refused = officer_browser.post(
        f"/requests/{first}/decision?lang=en",
        data={
            "csrf_token": _csrf(officer_browser),
            "decision": "approve",
            "reason": typed,
            "until": "2020-01-01",
        },
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    panel = _panel(page, first)
    assert "“Valid until” has passed" in text_of_html(panel)
    assert f"Request {first} was not decided" in text_of_html(panel)
    assert f">{typed}</textarea>" in panel  # what was typed comes back
    assert 'value="approve" required checked' in panel and 'value="2020-01-01"' in panel
    # Only beside that request: the other one's form is empty and says nothing.
    other = _panel(page, second)
    assert 'class="errors' not in other and "aria-invalid" not in other
    assert "></textarea>" in other and " checked" not in other
    # The language switch leads to the list, not to the form's address (which has no page).
    assert 'href="/requests?lang=es"' in page
    assert _pending(app) and first in _pending(app)


def test_each_problem_with_a_decision_gets_one_plain_message(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    request_id = _asked(app, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    for lang, expected in (
        ("en", ["Choose approve or deny.", "Write the reason for your decision."]),
        ("es", ["Elija aprobar o denegar.", "Escriba el motivo de su decisión."]),
    ):
        refused = browser.post(
            f"/requests/{request_id}/decision?lang={lang}",
            data={"csrf_token": _csrf(browser), "reason": "   "},
        )
        assert refused.status_code == 400
        panel = _panel(refused.get_data(as_text=True), request_id)
        assert _errors_in(panel) == expected
        assert "pattern" not in panel and "patrón" not in panel
    too_long = browser.post(
        f"/requests/{request_id}/decision?lang=en",
        data={"csrf_token": _csrf(browser), "decision": "deny", "reason": "x" * 2001},
    )
    assert too_long.status_code == 400
    assert _errors_in(_panel(too_long.get_data(as_text=True), request_id)) == [
        "The reason is too long: 2001 characters, and at most 2000 fit."
    ]
    not_a_date = browser.post(
        f"/requests/{request_id}/decision?lang=es",
        data={"csrf_token": _csrf(browser), "decision": "approve", "reason": "Sí.", "until": "x"},
    )
    assert not_a_date.status_code == 400
    assert "«Vigente hasta» debe ser una fecha" in text_of(not_a_date)
    assert _pending(app) == [request_id]


def test_a_decision_on_a_request_decided_meanwhile_names_it(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    request_id = _asked(app, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    form = {"csrf_token": _csrf(browser), "decision": "deny", "reason": "No."}
    assert browser.post(f"/requests/{request_id}/decision?lang=en", data=form).status_code == 303
    again = browser.post(f"/requests/{request_id}/decision?lang=en", data=form)
    assert again.status_code == 409
    assert f"Request {request_id}: The request was already decided (denied)." in text_of(again)


def test_the_request_form_says_one_plain_thing_per_field(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    refused = browser.post(
        "/requests?lang=en",
        data=_ask_form(browser, "not a child", category=[], until="", purpose="nope"),
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert re.findall(r"<li>(.*?)</li>", page) == [
        "Tick at least one data category.",
        "Type the child&#39;s id (it begins with nna_), without spaces.",
        "Choose a purpose from the list.",
        "Pick from the calendar the date until which you need access.",
    ]
    # What was typed stays in the form.
    assert 'name="child_id" value="not a child"' in page


def _errors_in(panel: str) -> list[str]:
    found = re.search(r'<div class="errors inline"[^>]*>(.*?)</div>', panel, re.S)
    assert found is not None, panel
    return re.findall(r"<li>(.*?)</li>", found.group(1))


def text_of_html(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


def test_a_hand_made_valid_until_the_api_would_refuse_is_refused_on_the_page(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    # A date field sends a date; a hand-made post may send anything. Beyond year 9999 once in
    # UTC (a 500 before), or without an offset (read as UTC before): refused, nothing decided.
    asked = _asked(app, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    for until in ("9999-12-31T23:59:59-12:00", "2027-01-01T00:00:00", "0000-01-01"):
        refused = browser.post(
            f"/requests/{asked}/decision?lang=en",
            data={
                "csrf_token": _csrf(browser),
                "decision": "approve",
                "reason": "Acreditada.",
                "until": until,
            },
        )
        assert refused.status_code == 400, until
        assert f"Request {asked} was not decided" in text_of_html(
            _panel(refused.get_data(as_text=True), asked)
        )
    assert asked in _pending(app)
