"""The portal's pages as a person reads them: an address with no page is a page in the chosen
language (the API keeps its problems); a request's reasons say what holds now, for whoever
reads them; buttons and radios say what they act on; roles and dates are words; the language
chosen with the switch is remembered."""

from __future__ import annotations

import re
from typing import Any

from consent_support import (
    CLINIC,
    PersonClient,
    consent_document,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from records_support import rows
from sqlalchemy import select

from exchange.auth import AccessToken
from exchange.consent_store import AccessRequestRow

IN_A_YEAR = "2030-01-01"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _csrf(browser: FlaskClient, path: str = "/") -> str:
    return csrf_of(browser.get(path).get_data(as_text=True))


def _request_ids(app: Flask) -> set[str]:
    return {str(found) for (found,) in rows(app, select(AccessRequestRow.id))}


def _ask(browser: FlaskClient, child_id: str, categories: list[str]) -> str:
    app = browser.application
    before = _request_ids(app)
    answer = browser.post(
        "/requests?lang=en",
        data={
            "csrf_token": _csrf(browser, "/requests"),
            "child_id": child_id,
            "purpose": "legal_representation",
            "category": categories,
            "until": IN_A_YEAR,
        },
    )
    assert answer.status_code == 303, text_of(answer)
    [request_id] = _request_ids(app) - before
    return request_id


def _decide(browser: FlaskClient, request_id: str, decision: str, reason: str) -> None:
    answer = browser.post(
        f"/requests/{request_id}/decision?lang=en",
        data={"csrf_token": _csrf(browser), "decision": decision, "reason": reason},
    )
    assert answer.status_code == 303, text_of(answer)


def _entry(page: str, request_id: str) -> str:
    """The words the page says about one request (its description list)."""
    found = re.search(rf"<code>{request_id}</code>.*?</dl>", page, re.S)
    assert found is not None, page
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0)))


# -- 2. an address with no page -----------------------------------------------------------------


def test_a_browser_gets_a_page_for_an_unknown_portal_address(client: FlaskClient) -> None:
    answer = client.get("/no/such/page?lang=en", headers={**BROWSER, "Accept-Language": "es"})
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert "Page not found" in text_of(answer) and "There is no page at /no/such/page" in text_of(
        answer
    )
    spanish = client.get("/no/such/page", headers={**BROWSER, "Accept-Language": "es"})
    assert spanish.status_code == 404 and "Página no encontrada" in text_of(spanish)


def test_a_browser_opening_a_forms_address_gets_a_page_in_the_chosen_language(
    client: FlaskClient,
) -> None:
    # As after a decision, when the language link led to the form's address.
    answer = client.get(
        "/requests/acr_0123/decision?lang=en", headers={**BROWSER, "Accept-Language": "es"}
    )
    assert answer.status_code == 405 and answer.mimetype == "text/html"
    assert answer.headers["Allow"].split(", ") == ["OPTIONS", "POST"]
    assert "This address is not a page" in text_of(answer)
    assert "only receives the portal's forms" in text_of(answer)
    assert "application/problem+json" not in answer.headers["Content-Type"]


def test_programs_and_the_api_keep_their_problems(client: FlaskClient) -> None:
    for path in ("/v1/no-such-thing", "/oauth/nothing", "/.well-known/nothing"):
        answer = client.get(path, headers=BROWSER)
        assert answer.status_code == 404 and answer.mimetype == "application/problem+json", path
    assert client.post("/v1/schemas", headers=BROWSER).mimetype == "application/problem+json"
    # A program (no Accept, or */*) on a portal address: the problem, as before.
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        answer = client.get("/no/such/page", headers=headers)
        assert answer.status_code == 404 and answer.mimetype == "application/problem+json"
    refused = client.get("/requests/acr_0123/decision", headers={"Accept": "*/*"})
    assert refused.status_code == 405 and refused.mimetype == "application/problem+json"


# -- 3. reasons that say what holds, for whoever reads them --------------------------------------


def test_a_pending_request_waits_and_asks_nothing_of_the_requester(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    request_id = _ask(browser, pushed["child_id"], ["identity", "health"])
    for lang, waiting, not_told in (
        ("en", "Waiting for a consent officer's decision.", "ask the Procuraduría"),
        ("es", "Espera la decisión de un oficial de consentimiento.", "solicitar acceso a la"),
    ):
        said = _entry(browser.get(f"/requests?lang={lang}").get_data(as_text=True), request_id)
        assert waiting in said.replace("&#39;", "'")
        assert not_told not in said and "Nothing in force" not in said

    # The officer reads the automatic check as made when it was asked, worded for them.
    queue = logged_in(app, officer.id).get("/requests?lang=en").get_data(as_text=True)
    said = _entry(queue, request_id)
    assert "Automatic check when it was asked" in said
    assert "Nothing in force (consent, grant or emergency override) permitted" in said
    assert "permits you" not in said and "may ask the Procuraduría" not in said
    assert "Waiting for a decision by a consent officer of your jurisdiction." in said


def test_a_granted_request_shows_the_decision_not_the_refusal_when_asked(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    request_id = _ask(browser, pushed["child_id"], ["identity", "health"])
    officer_browser = logged_in(app, officer.id)
    answer = officer_browser.post(
        f"/requests/{request_id}/decision?lang=es",
        data={
            "csrf_token": _csrf(officer_browser),
            "decision": "approve",
            "reason": "Poder notarial en el expediente.",
        },
        follow_redirects=True,
    )
    decided = _entry(answer.get_data(as_text=True), request_id)
    assert "concedida" in decided
    assert "Motivo de la decisión Poder notarial en el expediente." in decided
    assert "Revisión automática al pedirse" in decided  # labelled as of the asking
    assert "le permita" not in decided and "Puede solicitar acceso" not in decided

    for lang, granted, refused in (
        ("es", "Acceso concedido por la oficina de consentimiento", "No hay nada vigente"),
        ("en", "Access granted by the consent office", "Nothing in force"),
    ):
        said = _entry(browser.get(f"/requests?lang={lang}").get_data(as_text=True), request_id)
        assert granted in said and refused not in said
        assert "Procuraduría" not in said
        # The officer's written reason stays the officer's (the API never tells it).
        assert "Poder notarial" not in said


def test_a_request_granted_at_once_tells_its_basis_as_of_the_asking(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(CLINIC, purposes=["legal_representation"]),
    )
    browser = logged_in(app, lawyer.id)
    request_id = _ask(browser, pushed["child_id"], ["identity"])
    said = _entry(browser.get("/requests?lang=en").get_data(as_text=True), request_id)
    assert "granted" in said and "Access granted at once" in said
    assert "Automatic check when you asked" in said and "Consent " in said


# -- 5. what each control acts on; words, not codes ----------------------------------------------


def test_the_home_page_has_a_title_that_says_what_it_is(client: FlaskClient) -> None:
    for lang, words in (
        ("es", "Intercambio de datos y consentimiento"),
        ("en", "Data exchange and consent"),
    ):
        page = client.get(f"/?lang={lang}").get_data(as_text=True)
        [title] = re.findall(r"<title>(.*?)</title>", page)
        assert title.startswith("Puente · ") and words in title


def test_each_decision_groups_its_choice_and_names_its_request(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient, officer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    first = _ask(browser, pushed["child_id"], ["health"])
    second = _ask(browser, pushed["child_id"], ["family"])
    page = logged_in(app, officer.id).get("/requests?lang=en").get_data(as_text=True)
    for request_id in (first, second):
        legend = f"<legend>Decision on request <code>{request_id}</code></legend>"
        fieldset = re.search(rf"<fieldset>\s*{re.escape(legend)}(.*?)</fieldset>", page, re.S)
        assert fieldset is not None, page
        assert 'value="approve"' in fieldset.group(1) and 'value="deny"' in fieldset.group(1)
        hidden = f'<span class="visually-hidden"> request {request_id}</span></button>'
        assert f"Decide{hidden}" in page


def test_each_revoke_button_names_its_token(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    for name in ("laptop", "servidor"):
        browser.post(
            "/tokens",
            data={"csrf_token": _csrf(browser), "scope": "records:read", "name": name},
        )
    page = browser.get("/tokens?lang=en").get_data(as_text=True)
    for (token_id,) in rows(app, select(AccessToken.id).where(AccessToken.label == "laptop")):
        assert f'<span class="visually-hidden"> token #{token_id} (laptop)</span>' in page
    assert page.count('class="visually-hidden"> token #') == 3  # and the fixture's own


def test_roles_and_dates_read_as_words_in_the_pages_language(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    home = text_of(browser.get("/?lang=es"))
    assert "Representante legal" in home and "legal_representative" not in home
    assert "Legal representative" in text_of(browser.get("/?lang=en"))

    _ask(browser, pushed["child_id"], ["health"])
    for lang, until in (
        ("es", "1 de enero de 2030, 23:59 UTC"),
        ("en", "1 January 2030, 23:59 UTC"),
    ):
        said = text_of(browser.get(f"/requests?lang={lang}"))
        assert f"{'Hasta' if lang == 'es' else 'Until'} {until}" in said
        assert not ISO_INSTANT.search(said), said
        tokens = text_of(browser.get(f"/tokens?lang={lang}"))
        assert " UTC" in tokens and not ISO_INSTANT.search(tokens), tokens


def test_the_chosen_language_is_remembered(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    spanish_browser = {"Accept-Language": "es-MX,es;q=0.9"}
    chosen = browser.get("/tokens?lang=en", headers=spanish_browser)
    [cookie] = [c for c in chosen.headers.getlist("Set-Cookie") if c.startswith("lang=")]
    assert cookie.startswith("lang=en;") and "SameSite=Lax" in cookie
    # Later pages without ?lang= follow the choice, not Accept-Language; so do redirects.
    assert "My personal access tokens" in text_of(browser.get("/tokens", headers=spanish_browser))
    assert browser.get("/requests", headers=spanish_browser).status_code == 200
    assert "Page not found" in text_of(
        browser.get("/nothing/here", headers={**BROWSER, **spanish_browser})
    )
    back = browser.get("/tokens?lang=es")
    assert "Mis tokens de acceso personal" in text_of(back)
    assert "Mis tokens" in text_of(browser.get("/tokens", headers={"Accept-Language": "en"}))
    # The API answers in Accept-Language and sets no cookie.
    api = browser.get("/v1/nothing", headers={"Accept-Language": "es"})
    assert api.get_json()["title"] == "No encontrado" and "Set-Cookie" not in api.headers


def test_the_language_link_keeps_the_page_and_its_other_parameters(client: FlaskClient) -> None:
    page = client.get("/login?lang=es&next=/tokens").get_data(as_text=True)
    assert 'href="/login?next=%2Ftokens&amp;lang=en"' in page


def test_a_page_answering_a_form_switches_language_to_a_page(
    app: Flask, officer: PersonClient
) -> None:
    browser = logged_in(app, officer.id)
    # A refused form whose address has no page of its own: the switch leads to a page.
    no_csrf = browser.post("/requests/acr_0123/decision?lang=es", data={"decision": "deny"})
    assert no_csrf.status_code == 400
    assert 'href="/?lang=en"' in no_csrf.get_data(as_text=True)
    not_yours = browser.post("/tokens/999999/revoke?lang=es", data={"csrf_token": _csrf(browser)})
    assert not_yours.status_code == 404
    assert 'href="/tokens?lang=en" lang="en"' in not_yours.get_data(as_text=True)
    # A refused form whose address is a page too: the switch stays there.
    refused = browser.post("/tokens?lang=es", data={"csrf_token": _csrf(browser), "days": "0"})
    assert refused.status_code == 400
    assert 'href="/tokens?lang=en" lang="en"' in refused.get_data(as_text=True)
