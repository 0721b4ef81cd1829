"""What a QA pass in a real browser found in the portal: a pending request promised a decision
that one about an unknown child id never gets; errors reached a browser as problem+json; a
justification took control characters; a second logout, or a login form left open in another
tab, was "Form not valid"; the pages did not fit a phone; the request form's errors were far
from the form and not tied to its fields."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, NoReturn

import pytest
from consent_support import PersonClient
from flask import Flask
from flask.testing import FlaskClient
from portal_support import (
    PASSWORD,
    csrf_of,
    give_password,
    log_in,
    logged_in,
    page_csrf,
    text_of,
)
from records_support import rows
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from exchange.consent_store import AccessRequestRow

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
IN_A_YEAR = "2030-01-01"
UNKNOWN_CHILD = "nna_00000000000000000000"
STYLESHEET = Path(__file__).resolve().parents[2] / "exchange" / "static" / "puente.css"


def _request_ids(app: Flask) -> set[str]:
    return {str(found) for (found,) in rows(app, select(AccessRequestRow.id))}


def _ask_form(browser: FlaskClient, child_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "csrf_token": csrf_of(browser.get("/requests").get_data(as_text=True)),
        "child_id": child_id,
        "purpose": "legal_representation",
        "category": ["identity"],
        "until": IN_A_YEAR,
        **fields,
    }


def _ask(browser: FlaskClient, child_id: str) -> str:
    before = _request_ids(browser.application)
    answer = browser.post("/requests?lang=en", data=_ask_form(browser, child_id))
    assert answer.status_code == 303, text_of(answer)
    [request_id] = _request_ids(browser.application) - before
    return request_id


def _state(page: str, request_id: str) -> str:
    """What the page says of where one request stands (its Status line)."""
    entry = re.search(rf"<code>{request_id}</code>.*?</dl>", page, re.S)
    assert entry is not None, page
    found = re.search(r"<dt>(?:Status|Estado)</dt><dd>(.*?)</dd>", entry.group(0), re.S)
    assert found is not None, entry.group(0)
    return re.sub(r"\s+", " ", found.group(1)).replace("&#39;", "'")


# -- 1. a pending request promises no decision ---------------------------------------------------


def test_a_pending_request_says_what_to_do_when_no_decision_comes_alike_for_any_child_id(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    known, unknown = _ask(browser, pushed["child_id"]), _ask(browser, UNKNOWN_CHILD)
    for lang, told, promise in (
        ("en", "check the child's id with the agency or the Procuraduría", "nothing more for"),
        ("es", "confirme el id de la niña, niño o adolescente", "No tiene que hacer nada"),
    ):
        page = browser.get(f"/requests?lang={lang}").get_data(as_text=True)
        said = _state(page, known)
        # The same words whether or not the child exists: the hub is no existence oracle.
        assert _state(page, unknown) == said
        assert told in said
        assert promise not in said


# -- 2. errors on the portal's pages are pages ---------------------------------------------------


def _fails(error: Exception) -> Any:
    def raising(*_args: object, **_kwargs: object) -> NoReturn:
        raise error

    return raising


def _database_locked() -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (RuntimeError("boom"), 500, "Unexpected error"),
        (_database_locked(), 503, "Service unavailable for now"),
    ],
)
def test_an_error_on_a_portal_page_is_a_page_in_the_chosen_language(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    title: str,
) -> None:
    monkeypatch.setattr("exchange.portal.public.default_registry", _fails(error))
    monkeypatch.setattr("exchange.api.schemas.default_registry", _fails(error))
    client.set_cookie("lang", "en")
    page = client.get("/schemas", headers={**BROWSER, "Accept-Language": "es"})
    assert page.status_code == status and page.mimetype == "text/html"
    assert page.headers["Content-Language"] == "en"
    assert f"{title} · Puente" in text_of(page) and page.headers["X-Request-Id"] in text_of(page)
    if status == 503:
        assert page.headers["Retry-After"] == "30"
    # ?lang= first, then the cookie, then Accept-Language.
    spanish = client.get("/schemas?lang=es", headers=BROWSER)
    assert spanish.status_code == status and spanish.mimetype == "text/html"
    assert ("Error inesperado" if status == 500 else "Servicio no disponible") in text_of(spanish)

    # A program on the portal, and anyone on the API, get the problem as before.
    for path, headers in (("/schemas", {"Accept": "*/*"}), ("/v1/schemas", BROWSER)):
        problem = client.get(path, headers={**headers, "Accept-Language": "en"})
        assert problem.status_code == status, path
        assert problem.mimetype == "application/problem+json", path
        body = problem.get_json()
        assert body["title"] == ("Internal error" if status == 500 else "Service unavailable")
        assert body["instance"] == path and body["request_id"] == problem.headers["X-Request-Id"]
        assert ("Retry-After" in problem.headers) == (status == 503)


def test_a_form_too_large_is_a_page_in_the_chosen_language(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    browser.set_cookie("lang", "en")
    token = csrf_of(browser.get("/tokens").get_data(as_text=True))
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = {"csrf_token": token, "name": "x" * (3 * 1024 * 1024), "days": "30"}
    page = browser.post("/tokens", data=big, headers={**BROWSER, "Accept-Language": "es"})
    assert page.status_code == 413 and page.mimetype == "text/html"
    said = text_of(page)
    assert "Form too large · Puente" in said and f"limit of {limit} bytes" in said
    assert "Formulario" not in said
    # A program gets the problem, as the API does for a browser.
    problem = browser.post("/tokens", data=big, headers={"Accept": "*/*"})
    assert problem.status_code == 413 and problem.mimetype == "application/problem+json"
    assert problem.get_json()["limit"] == limit
    # The API answers a browser as it answers any client, with a problem: the portal's cookie
    # is no API credential, so the body (no API route takes a form) is never read.
    api = browser.post("/v1/access-requests", data=big, headers=BROWSER)
    assert api.status_code == 401 and api.mimetype == "application/problem+json"


# -- 3. no control characters in a justification -------------------------------------------------


def test_a_justification_with_control_characters_is_a_form_error_keeping_what_was_typed(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    before = _request_ids(app)
    form = _ask_form(browser, pushed["child_id"], justification="j\x1b[2Justificación larga\u202e")
    refused = browser.post("/requests?lang=en", data=form, headers=BROWSER)
    assert refused.status_code == 400, text_of(refused)
    assert "The justification contains control characters (U+001B, U+202E)" in text_of(refused)
    page = refused.get_data(as_text=True)
    assert f'name="child_id" value="{pushed["child_id"]}"' in page
    assert "ustificación larga" in page
    # NUL, in any field of any portal form, is refused before the page sees it, with a page
    # of its own (tests/api/test_portal_text_fixes_s20.py); the API refuses it too.
    form = _ask_form(browser, pushed["child_id"], justification="j\x00ustificación larga")
    refused = browser.post("/requests?lang=en", data=form, headers=BROWSER)
    assert refused.status_code == 400 and "NUL character (U+0000)" in text_of(refused)
    assert _request_ids(app) == before
    body = {
        "child_id": pushed["child_id"],
        "purpose": "legal_representation",
        "categories": ["identity"],
        "until": f"{IN_A_YEAR}T00:00:00Z",
    }
    refused_by_api = client.post(
        "/v1/access-requests",
        json={**body, "justification": "j\x00ustificación larga"},
        headers=lawyer.headers,
    )
    assert refused_by_api.status_code == 400

    # Line breaks and tabs are text, for the portal as for the API.
    lines = "Primera línea:\tuna razón\r\nsegunda línea."
    made = browser.post(
        "/requests?lang=en", data=_ask_form(browser, pushed["child_id"], justification=lines)
    )
    assert made.status_code == 303, text_of(made)
    [request_id] = _request_ids(app) - before
    told = client.get(f"/v1/access-requests/{request_id}", headers=lawyer.headers).get_json()
    by_api = client.post(
        "/v1/access-requests", json={**body, "justification": lines}, headers=lawyer.headers
    )
    assert by_api.status_code == 201
    assert by_api.get_json()["justification"] == lines
    # A browser's CRLF is one line break, kept as LF (exchange.portal.form_fields.typed_text).
    assert told["justification"] == lines.replace("\r\n", "\n")


# -- 4. a second logout, a login form from another tab -------------------------------------------


def test_logging_out_again_lands_on_the_login_page(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    stale = csrf_of(browser.get("/tokens").get_data(as_text=True))  # another tab's page
    first = browser.post("/logout?lang=en", data={"csrf_token": stale})
    assert first.status_code == 303 and first.headers["Location"].startswith("/login")
    again = browser.post("/logout?lang=en", data={"csrf_token": stale})
    assert again.status_code == 303 and again.headers["Location"] == "/login?lang=en"
    # Nobody logged in, a form from a page of an earlier session: nothing to end either.
    nobody = app.test_client().post("/logout?lang=en", data={"csrf_token": stale})
    assert nobody.status_code == 303 and nobody.headers["Location"] == "/login?lang=en"
    # A form carrying no token at all came from no page of the portal: refused as before.
    assert app.test_client().post("/logout?lang=en").status_code == 400


def test_a_login_form_left_open_in_another_tab_shows_a_fresh_login_form(
    app: Flask, lawyer: PersonClient
) -> None:
    give_password(app, lawyer.id)
    email = f"{lawyer.id}@example.org"
    browser = app.test_client()
    old = page_csrf(browser, "/login?lang=en")  # the other tab's form
    assert log_in(browser, email, lang="en").status_code == 303
    assert browser.post("/logout", data={"csrf_token": page_csrf(browser, "/")}).status_code == 303

    # The right password on the old form logs nobody in (login CSRF stays refused)...
    stale = browser.post(
        "/login?lang=en",
        data={"email": email, "password": PASSWORD, "csrf_token": old},
        headers=BROWSER,
    )
    assert stale.status_code == 400
    said = text_of(stale)
    assert "This login page was old" in said and "Form not valid" not in said
    page = stale.get_data(as_text=True)
    assert f'name="email" value="{email}"' in page
    fresh = csrf_of(page)
    assert fresh != old
    assert browser.get("/tokens").headers["Location"].startswith("/login")  # not logged in
    # ...and the fresh form works.
    again = browser.post(
        "/login?lang=en", data={"email": email, "password": PASSWORD, "csrf_token": fresh}
    )
    assert again.status_code == 303
    assert browser.get("/tokens").status_code == 200
    spanish = browser.post("/login?lang=es", data={"email": email, "csrf_token": old})
    assert "Esta página de inicio de sesión era antigua" in text_of(spanish)


# -- 5. on a phone -------------------------------------------------------------------------------


def _rules(css: str) -> dict[str, str]:
    return {selector.strip(): body for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)}


def test_the_pages_fit_a_phone() -> None:
    css = STYLESHEET.read_text(encoding="utf-8")
    everywhere = _rules(re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", css))
    assert "flex-wrap: wrap" in everywhere["header"] and "flex-wrap: wrap" in everywhere["nav"]
    assert "max-content" in everywhere["dl.request"]  # the desktop look is kept
    phone = re.search(r"@media \(max-width: (\d+)rem\) \{((?:[^{}]*\{[^{}]*\})*)\s*\}", css)
    assert phone is not None and int(phone.group(1)) * 16 >= 390
    narrow = _rules(phone.group(2))
    assert "grid-template-columns: 1fr;" in narrow["dl.request"]
    assert "margin-left: 0" in narrow["nav"]
    assert "overflow-x: auto" in narrow["table"]


# -- 6. the request form's errors, and a skip link -----------------------------------------------


def test_the_request_forms_errors_are_beside_it_and_tied_to_its_fields(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    refused = browser.post(
        "/requests?lang=en",
        data=_ask_form(browser, "not a child", category=[], justification="short"),
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    box = page.index('role="alert" id="request-errors"')
    assert page.index('id="new-request"') < box < page.index('aria-describedby="request-errors"')
    for field, said in (
        ("child_id", "Type the child&#39;s id"),
        ("categories", "Tick at least one data category."),
        ("justification", "The justification, if you write one, must be"),
    ):
        assert f'id="error-{field}">{said}' in page, field
        assert f'aria-describedby="error-{field}"' in page, field
    assert re.search(r'name="child_id"[^>]*aria-invalid="true"', page)
    assert re.search(r'<textarea name="justification"[^>]*aria-invalid="true"', page)
    assert not re.search(r'name="until"[^>]*aria-invalid', page)
    # Said at the top too, as a link to the form, not a second alert.
    assert 'href="#new-request">The request was not made' in page


def test_every_page_has_a_skip_link_to_its_content(app: Flask, client: FlaskClient) -> None:
    for path in ("/?lang=en", "/login?lang=en", "/schemas?lang=en"):
        page = client.get(path).get_data(as_text=True)
        assert '<a class="skip-link" href="#main">Skip to content</a>' in page, path
        assert '<main id="main"' in page, path
    assert "Ir al contenido" in client.get("/?lang=es").get_data(as_text=True)
