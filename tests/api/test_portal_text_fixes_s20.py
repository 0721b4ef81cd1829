"""What an outside check of the portal found about the texts people send (session 20), fixed:

1. U+0000 in a form field or a query value of any portal page is a 400 page (the portal's own,
   in the page's language, whatever the browser accepts), before the page sees it: nothing is
   done or recorded, on SQLite as on PostgreSQL (where it was a 500, and problem+json);
2. so is one in the address of a page of a list (``after``, ``mine_after``);
3. the error page after a failed write is a page, not problem+json: the session, which waits
   for a rollback, is rolled back before the page reads who is logged in;
4. every free text of the consent area that a person reads refuses control characters but
   line breaks and tabs, as the access request's justification did: the decision's reason (the
   API's and the portal's form, which says it beside the field), a grant's and a consent's
   revocation reason, a withhold entry's reason and its revocation's, the child's views (their
   summary and why they were not heard, alone or with a consent), an override's justification
   and the reviews' reasons;
5. a token's lifetime in days written with a digit that is not ASCII (²) is the form's own
   refusal, not a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    PROCURADURIA,
    PersonClient,
    add_person_client,
    approve,
    consent_document,
    consent_officer,
    entries,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from records_support import add_agency, rows
from sqlalchemy import func, select
from test_access_queue_paging import ask
from werkzeug.test import TestResponse

from exchange.auth import AccessToken
from exchange.consent_store import AccessRequestRow
from exchange.people import Person

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
#: An escape sequence and a right-to-left override: where an officer reads it, "b" would show
#: in red and "c" reversed, hiding or forging what follows.
FORGED = "a\u001b[31mb\u202ec"
NAMED = "U+001B, U+202E"


def _status(app: Flask, request_id: str) -> str:
    [(status,)] = rows(
        app, select(AccessRequestRow.status).where(AccessRequestRow.id == request_id)
    )
    return str(status)


def _csrf(browser: FlaskClient, path: str = "/requests") -> str:
    return csrf_of(browser.get(path).get_data(as_text=True))


def _refused_nul(response: TestResponse, lang: str = "en") -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    said = text_of(response)
    if lang == "en":
        assert "Character not allowed · Puente" in said and "NUL character" in said
    else:
        assert "Carácter no admitido · Puente" in said and "carácter nulo" in said


# -- 1. NUL in a portal form field or query value -------------------------------------------------


@pytest.mark.parametrize("accept", [BROWSER, {"Accept": "*/*"}, {}])
def test_nul_in_a_decision_reason_is_a_400_page_and_nothing_is_recorded(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
    accept: dict[str, str],
) -> None:
    request_id = ask(client, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    for lang in ("en", "es"):
        refused = browser.post(
            f"/requests/{request_id}/decision?lang={lang}",
            data={"csrf_token": _csrf(browser), "decision": "deny", "reason": "a\x00b"},
            headers=accept,
        )
        # The portal's own page, as for every refusal of its forms, whatever is accepted.
        _refused_nul(refused, lang)
        assert f'data-person="{officer.id}"' in refused.get_data(as_text=True)
    assert _status(app, request_id) == "pending"
    assert entries(app, "access_denied") == []


def _filled(rule: Any) -> str:
    """The rule's address with a value for each of its parts."""
    path = str(rule.rule)
    for name in rule.arguments:
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", "x1", path)
    return path


def test_every_portal_page_and_form_refuses_nul_before_it_acts(
    app: Flask, officer: PersonClient
) -> None:
    browser = logged_in(app, officer.id)
    portal = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("portal.")]
    pages = [rule for rule in portal if "GET" in (rule.methods or ())]
    forms = [rule for rule in portal if "POST" in (rule.methods or ())]
    assert len(pages) >= 5 and len(forms) >= 5, (pages, forms)
    for rule in pages:
        for query in ("lang=en&q=a%00b", "lang=en&a%00b=1"):
            answer = browser.get(f"{_filled(rule)}?{query}", headers=BROWSER)
            _refused_nul(answer)
    for rule in forms:  # /logout among them, last: it must not log out either
        answer = browser.post(
            f"{_filled(rule)}?lang=en",
            data={"csrf_token": _csrf(browser, "/tokens"), "note": "a\x00b", "name": "x"},
            headers=BROWSER,
        )
        _refused_nul(answer)
    # Still logged in: the logout form did nothing.
    assert f'data-person="{officer.id}"' in browser.get("/tokens").get_data(as_text=True)


def test_the_page_refusing_an_address_links_the_other_language_without_the_value(
    app: Flask, officer: PersonClient
) -> None:
    browser = logged_in(app, officer.id)
    refused = browser.get("/tokens?lang=en&q=a%00b", headers=BROWSER)
    _refused_nul(refused)
    assert 'href="/tokens?lang=es"' in refused.get_data(as_text=True)


# -- 2. NUL in the address of a page of a list ----------------------------------------------------


def test_nul_in_the_place_of_a_list_is_a_400_on_either_database(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    ask(client, lawyer, pushed["child_id"])
    for person, parameter in ((officer, "after"), (lawyer, "mine_after")):
        browser = logged_in(app, person.id)
        for headers in (BROWSER, {}):
            refused = browser.get(f"/requests?lang=en&{parameter}=acr_%00", headers=headers)
            _refused_nul(refused)
        assert browser.get(f"/requests?lang=en&{parameter}=acr_x").status_code == 400  # stale


# -- 3. the error page after a failed write -------------------------------------------------------


def _failing_write(session: Any, *_args: Any, **_kwargs: Any) -> None:
    """A write the database refuses (a person with nothing that a person requires), as a NUL
    in a text once was on PostgreSQL: the session then waits for a rollback."""
    session.add(Person(id="sin-datos"))
    session.flush()


def test_the_error_page_after_a_failed_write_is_a_page_showing_who_is_logged_in(
    app: Flask, lawyer: PersonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = logged_in(app, lawyer.id)
    monkeypatch.setattr("exchange.portal.tokens.issue_token", _failing_write)
    failed = browser.post(
        "/tokens?lang=en", data={"csrf_token": _csrf(browser, "/tokens"), "days": "7"},
        headers=BROWSER,
    )  # fmt: skip
    assert failed.status_code == 500 and failed.mimetype == "text/html"
    assert "Unexpected error · Puente" in text_of(failed)
    assert failed.headers["X-Request-Id"] in text_of(failed)
    assert f'data-person="{lawyer.id}"' in failed.get_data(as_text=True)


def test_an_error_page_that_cannot_read_who_is_logged_in_is_drawn_without_them(
    app: Flask, lawyer: PersonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = logged_in(app, lawyer.id)
    monkeypatch.setattr("exchange.portal.tokens.issue_token", _failing_write)
    # As when the database is out of reach by then: the person cannot be read again.
    monkeypatch.setattr(
        "exchange.portal.public._roll_back_a_failed_flush", lambda: None, raising=False
    )
    failed = browser.post(
        "/tokens?lang=en", data={"csrf_token": _csrf(browser, "/tokens"), "days": "7"},
        headers=BROWSER,
    )  # fmt: skip
    assert failed.status_code == 500 and failed.mimetype == "text/html"
    assert "Unexpected error · Puente" in text_of(failed)
    assert "data-person" not in failed.get_data(as_text=True)


# -- 4. control characters in the free texts of the consent area ----------------------------------

REASON = ("El motivo", "The reason")


def _said(field: tuple[str, str], lang: str, named: str = NAMED) -> str:
    if lang == "es":
        return (
            f"{field[0]} contiene caracteres de control ({named}): bórrelos y vuelva a enviar el "
            "texto (los saltos de línea y los tabuladores sí se admiten)."
        )
    return (
        f"{field[1]} contains control characters ({named}): delete them and send it again "
        "(line breaks and tabs are fine)."
    )


def _refused_text(
    send: Callable[[dict[str, str]], TestResponse],
    pointer: str,
    field: tuple[str, str] = REASON,
) -> None:
    """``send`` (given the headers) is refused in both languages, naming ``pointer``."""
    for lang in ("es", "en"):
        refused = send({"Accept-Language": lang})
        assert refused.status_code == 400, refused.get_json()
        problem = refused.get_json()
        assert problem["type"].endswith("/validation")
        assert problem["errors"] == [{"pointer": pointer, "message": _said(field, lang)}]


def test_a_decision_reason_with_control_characters_is_refused_and_nothing_decided(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    request_id = ask(client, lawyer, pushed["child_id"])

    def decide(reason: str, headers: dict[str, str]) -> TestResponse:
        return client.post(
            f"/v1/access-requests/{request_id}/decision",
            json={"approve": False, "reason": reason},
            headers={**officer.headers, **headers},
        )

    _refused_text(lambda headers: decide(FORGED, headers), "/reason")
    assert _status(app, request_id) == "pending" and entries(app, "access_denied") == []
    # Line breaks and tabs are text.
    written = "Sin poder notarial:\r\n\t- falta la firma"
    denied = decide(written, {})
    assert denied.status_code == 200, denied.get_json()
    assert denied.get_json()["decision_reason"] == written


def test_the_portals_decision_form_says_it_beside_the_reason(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    request_id = ask(client, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    for lang in ("es", "en"):
        refused = browser.post(
            f"/requests/{request_id}/decision?lang={lang}",
            data={"csrf_token": _csrf(browser), "decision": "deny", "reason": FORGED},
            headers=BROWSER,
        )
        assert refused.status_code == 400
        page = refused.get_data(as_text=True)
        beside = f"error-{request_id}-reason"
        assert re.search(
            rf'<textarea name="reason"[^>]*aria-invalid="true" aria-describedby="{beside}"', page
        )
        found = re.search(rf'id="{beside}">([^<]*)</span>', page)
        assert found is not None, page
        assert found.group(1) == _said(REASON, lang)
    assert _status(app, request_id) == "pending" and entries(app, "access_denied") == []


def test_a_grants_and_a_consents_revocation_reason(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    lawyer: PersonClient,
    officer: PersonClient,
) -> None:
    grant_id = approve(client, officer, ask(client, lawyer, pushed["child_id"]))["grant"]["id"]
    consent_id = record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(CLINIC, purposes=["legal_representation"]),
    )["id"]
    for path in (f"/v1/grants/{grant_id}/revoke", f"/v1/consents/{consent_id}/revoke"):

        def revoke(headers: dict[str, str], path: str = path, reason: str = FORGED) -> Any:
            return client.post(
                path, json={"reason": reason}, headers={**officer.headers, **headers}
            )

        _refused_text(revoke, "/reason")
        # Nothing was revoked: a reason without them revokes now.
        assert revoke({}, reason="Revocado.\n\tPor error.").status_code == 200, path


def test_a_withhold_entrys_reason_and_its_revocations(
    client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> None:
    child_id = pushed["child_id"]

    def record(headers: dict[str, str], reason: str = FORGED) -> TestResponse:
        return client.post(
            f"/v1/children/{child_id}/withholds",
            json={"actor_kind": "immigration_enforcement", "reason": reason},
            headers={**officer.headers, **headers},
        )

    _refused_text(record, "/reason")
    listed = client.get(f"/v1/children/{child_id}/withholds", headers=officer.headers)
    assert listed.get_json()["withholds"] == []
    made = record({}, "Riesgo de detención.")
    assert made.status_code == 201, made.get_json()

    def revoke(headers: dict[str, str], reason: str = FORGED) -> TestResponse:
        return client.post(
            f"/v1/withholds/{made.get_json()['id']}/revoke",
            json={"reason": reason},
            headers={**officer.headers, **headers},
        )

    _refused_text(revoke, "/reason")
    assert revoke({}, "Ya no aplica.").status_code == 200


VIEWS_SUMMARY = ("El resumen de la opinión", "The summary of views")
NOT_HEARD = ("El motivo por el que no fue escuchada/o", "Why the child was not heard")


def test_the_childs_views_alone_or_with_a_consent(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> None:
    child_id = pushed["child_id"]
    today = datetime.now(UTC).date().isoformat()
    heard = {"heard_on": today, "heard_by": {"person_id": officer.id}}
    alone = [
        ({**heard, "position": "assent", "summary": FORGED}, "/summary", VIEWS_SUMMARY),
        ({**heard, "position": "not_heard", "not_heard_reason": FORGED}, "/not_heard_reason",
         NOT_HEARD),
    ]  # fmt: skip
    for body, pointer, field in alone:

        def send(headers: dict[str, str], body: dict[str, Any] = body) -> TestResponse:
            return client.post(
                f"/v1/children/{child_id}/views", json=body, headers={**officer.headers, **headers}
            )

        _refused_text(send, pointer, field)
    document = consent_document(CLINIC, purposes=["legal_representation"])
    document["child_views"] = {"heard_on": today, "position": "assent", "summary": FORGED}

    def consent(headers: dict[str, str]) -> TestResponse:
        return client.post(
            f"/v1/children/{child_id}/consents",
            json=document,
            headers={**officer.headers, **headers},
        )

    _refused_text(consent, "/child_views/summary", VIEWS_SUMMARY)
    listed = client.get(f"/v1/children/{child_id}/views", headers=officer.headers)
    assert listed.get_json()["views"] == []
    consents = client.get(f"/v1/children/{child_id}/consents", headers=officer.headers)
    assert consents.get_json()["consents"] == []
    # Line breaks and tabs are the child's words too.
    kept = client.post(
        f"/v1/children/{child_id}/views",
        json={**heard, "position": "objection", "summary": "No quiere.\n\tDijo: «todavía no»."},
        headers=officer.headers,
    )
    assert kept.status_code == 201, kept.get_json()


@pytest.fixture
def reviewer(app: Flask) -> PersonClient:
    """A federal Procuraduría's officer: reviews what Chiapas's people opened."""
    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    return consent_officer(app, "co-fed-001", "mx.fed.pfpnna")


def test_an_overrides_justification_and_the_reviews_reasons(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    officer: PersonClient,
    reviewer: PersonClient,
) -> None:
    child_id = pushed["child_id"]
    opener = add_person_client(
        app, "ov-chp-001", PROCURADURIA, ["override_officer"], ["override", "records:read"]
    )

    forged = f"Ingreso a urgencias {FORGED}: el hospital necesita antecedentes médicos."

    def open_one(headers: dict[str, str], justification: str = forged) -> TestResponse:
        return client.post(
            "/v1/overrides",
            json={
                "child_id": child_id,
                "basis_code": "medical_emergency",
                "justification": justification,
                "categories": ["health"],
                "hours": 6,
            },
            headers={**opener.headers, **headers},
        )

    _refused_text(open_one, "/justification", ("La justificación", "The justification"))
    assert entries(app, "override_used") == []
    opened = open_one({}, "Ingreso a urgencias:\n\tel hospital necesita antecedentes médicos.")
    assert opened.status_code == 201, opened.get_json()

    views = client.post(
        f"/v1/children/{child_id}/views",
        json={
            "heard_on": datetime.now(UTC).date().isoformat(),
            "heard_by": {"person_id": officer.id},
            "position": "objection",
        },
        headers=officer.headers,
    )
    assert views.status_code == 201, views.get_json()
    for path in (
        f"/v1/overrides/{opened.get_json()['id']}/review",
        f"/v1/views/{views.get_json()['id']}/review",
    ):

        def review(headers: dict[str, str], path: str = path, reason: str = FORGED) -> Any:
            return client.post(
                path,
                json={"upheld": True, "reason": reason},
                headers={**reviewer.headers, **headers},
            )

        _refused_text(review, "/reason")
        assert review({}, reason="Procede.").status_code == 200, path


# -- 5. a lifetime in days with a digit that is not ASCII -----------------------------------------


@pytest.mark.parametrize("days", ["²", "1²", "٣", "9" * 4301])
def test_a_tokens_lifetime_in_other_digits_is_the_forms_own_refusal(
    app: Flask, lawyer: PersonClient, days: str
) -> None:
    browser = logged_in(app, lawyer.id)
    before = rows(app, select(func.count()).select_from(AccessToken))
    refused = browser.post(
        "/tokens?lang=en", data={"csrf_token": _csrf(browser, "/tokens"), "days": days},
        headers=BROWSER,
    )  # fmt: skip
    assert refused.status_code == 400, text_of(refused)
    page = refused.get_data(as_text=True)
    assert re.search(r'name="days"[^>]*aria-invalid="true" aria-describedby="error-days"', page)
    assert 'id="error-days">The lifetime must be a number of days' in page
    assert rows(app, select(func.count()).select_from(AccessToken)) == before
