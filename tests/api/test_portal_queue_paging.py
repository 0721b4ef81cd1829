"""The portal's ``/requests`` pages through the officer's queue and through a requester's own
requests (it used to show 500 of each and say nothing of the others), says how many each
holds, keeps a refused decision on its page, and names the withhold entry that blocks an
approval (it used to say ``POST /v1/withholds/{id}/revoke``)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from consent_support import CLINIC, PersonClient, consent_officer
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from test_access_queue_paging import MANY, ask, copies

_PANEL = re.compile(r'<section class="panel" id="request-(acr_[^"]+)">')
_MINE = re.compile(r'<div id="my-request-(acr_[^"]+)">')
_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


def walk(browser: FlaskClient, path: str, found: re.Pattern[str]) -> list[tuple[str, list[str]]]:
    """Every page from ``path`` on, following its "next page" links: each page's words and
    the requests ``found`` on it."""
    pages = []
    while True:
        response = browser.get(path)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        pages.append((text_of(response), found.findall(page)))
        further = _NEXT.findall(page)
        if not further:
            return pages
        path = html.unescape(further[0])


def test_the_officer_pages_through_the_whole_queue(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    model = ask(client, lawyer, pushed["child_id"])
    older = copies(app, model, MANY, datetime.now(UTC) - timedelta(days=2), "old")
    newest = ask(client, lawyer, pushed["child_id"])
    everything = [*older, model, newest]
    browser = logged_in(app, officer.id)

    pages = walk(browser, "/requests?lang=en", _PANEL)
    assert [found for _, found in pages for found in found] == everything
    assert [len(found) for _, found in pages] == [100] * 5 + [7]
    words = pages[0][0]
    assert f"{len(everything)} requests await a decision in your jurisdiction" in words
    assert "this page shows numbers 1 to 100" in words and "First page" not in words
    assert "First page" in pages[-1][0] and "this page shows numbers 501 to 507" in pages[-1][0]
    for number, (words, _found) in enumerate(pages[1:-1], start=1):
        assert f"this page shows numbers {number}01 to {number + 1}00." in words

    spanish = browser.get("/requests?lang=es")
    assert f"{len(everything)} solicitudes esperan decisión en su jurisdicción" in text_of(spanish)
    assert "Página siguiente" in text_of(spanish)


def test_a_requester_is_told_of_older_requests_and_pages_to_them(
    app: Flask, client: FlaskClient, lawyer: PersonClient, pushed: dict[str, Any]
) -> None:
    model = ask(client, lawyer, pushed["child_id"])
    older = copies(app, model, 150, datetime.now(UTC) - timedelta(days=2), "mine")
    newest_first = [model, *reversed(older)]
    browser = logged_in(app, lawyer.id)

    pages = walk(browser, "/requests?lang=en", _MINE)
    assert [found for _, found in pages for found in found] == newest_first
    said = "You have made 151 requests, newest first; this page shows numbers 1 to 100."
    assert said in pages[0][0] and "this page shows numbers 101 to 151." in pages[1][0]
    assert "Ha hecho 151 solicitudes" in text_of(browser.get("/requests?lang=es"))


def test_a_page_address_naming_no_request_starts_over(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    waiting = ask(client, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    answer = browser.get("/requests?lang=en&after=acr_000000000000000000000000")
    assert answer.status_code == 400
    assert "The page of the list asked for does not exist" in text_of(answer)
    assert _PANEL.findall(answer.get_data(as_text=True)) == [waiting]


def test_a_refused_decision_on_a_later_page_is_told_there(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    model = ask(client, lawyer, pushed["child_id"])
    everything = [*copies(app, model, 120, datetime.now(UTC) - timedelta(days=2), "p"), model]
    browser = logged_in(app, officer.id)
    second = browser.get(f"/requests?lang=en&after={everything[99]}").get_data(as_text=True)
    target = everything[110]
    [action] = re.findall(rf'action="(/requests/{target}/decision[^"]*)"', second)
    refused = browser.post(
        html.unescape(action),
        data={"csrf_token": csrf_of(second), "decision": "deny", "reason": ""},
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert f'id="errors-{target}"' in page
    assert _PANEL.findall(page) == everything[100:]


def test_an_approval_a_withhold_entry_blocks_names_the_entry_in_the_portal(
    app: Flask,
    client: FlaskClient,
    lawyer: PersonClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    entry = client.post(
        f"/v1/children/{pushed['child_id']}/withholds",
        json={
            "target": {"agency_id": CLINIC},
            "categories": ["contact_location"],
            "reason": "El padre denunciado contrató a este despacho.",
        },
        headers=officer.headers,
    )
    assert entry.status_code == 201, entry.get_json()
    entry_id = entry.get_json()["id"]
    request_id = ask(client, lawyer, pushed["child_id"], ("contact_location",))
    colleague = logged_in(app, consent_officer(app, "co-chp-005").id)

    for language, words in (("es", "la reserva"), ("en", "withhold entry first")):
        page = colleague.get(f"/requests?lang={language}").get_data(as_text=True)
        refused = colleague.post(
            f"/requests/{request_id}/decision?lang={language}",
            data={"csrf_token": csrf_of(page), "decision": "approve", "reason": "Acreditada."},
        )
        assert refused.status_code == 409
        said = text_of(refused)
        assert words in said and entry_id in said and "{id}" not in said
