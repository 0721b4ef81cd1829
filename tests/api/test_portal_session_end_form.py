"""A form sent after the portal session ended (a new password, a disable, the session's hours, a
logout in another tab): nothing is recorded, the login page says so in the page's language —
the form was not sent — and logging in leads back to the form's page, never elsewhere; the
page's script keeps what was typed (not passwords, not the CSRF token) for when it is back,
under the hub's Content-Security-Policy as it was."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from consent_support import CLINIC, PersonClient, legal_representative
from flask import Flask
from flask.testing import FlaskClient
from portal_support import PASSWORD, csrf_of, give_password, log_in, logged_in, text_of
from records_support import add_agency

from exchange.consent_store import AccessRequestRow
from exchange.httpbasics import CONTENT_SECURITY_POLICY
from exchange.portal import sessions

NOT_SENT_ES = "Su sesión terminó antes de que se enviara el formulario: no se registró nada."
NOT_SENT_EN = "Your session ended before the form was sent: nothing was recorded."
SEND_AGAIN_ES = "Inicie sesión y vuelva a enviarlo. Al entrar volverá a la página del formulario"
SEND_AGAIN_EN = "Log in and send it again. Logging in takes you back to the form’s page"
REASON = "Motivo largo de la decisión, escrito con cuidado. " * 20
SCRIPT = Path(__file__).resolve().parents[2] / "exchange" / "static" / "keep-forms.js"
IN_A_YEAR = "2030-01-01"


@pytest.fixture
def asked(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> tuple[str, PersonClient]:
    """A pending request in the officer's queue, and the lawyer who asked it."""
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    lawyer = legal_representative(app, "lic-ana")
    made = client.post(
        "/v1/access-requests",
        json={
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "categories": ["family"],
            "until": f"{IN_A_YEAR}T00:00:00Z",
        },
        headers=lawyer.headers,
    )
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"], lawyer


def _status(client: FlaskClient, request_id: str, officer: PersonClient) -> str:
    seen = client.get(f"/v1/access-requests/{request_id}", headers=officer.headers)
    return str(seen.get_json()["status"])


def _request_count(app: Flask) -> int:
    from sqlalchemy import func, select

    from exchange import db

    with app.app_context():
        session = db.database(app).sessions()
        try:
            return int(session.scalar(select(func.count()).select_from(AccessRequestRow)) or 0)
        finally:
            session.close()


# -- 1. the officer's decision -------------------------------------------------------------------


def test_a_decision_sent_after_a_new_password_is_not_recorded_and_login_leads_back(
    app: Flask,
    client: FlaskClient,
    officer: PersonClient,
    asked: tuple[str, PersonClient],
) -> None:
    request_id, _lawyer = asked
    browser = logged_in(app, officer.id)
    page = browser.get("/requests?lang=es")
    assert request_id in page.get_data(as_text=True)
    csrf = csrf_of(page.get_data(as_text=True))
    # `puente person set-password` ends every session of the person (as this does).
    give_password(app, officer.id, PASSWORD)

    sent = browser.post(
        f"/requests/{request_id}/decision?lang=es",
        data={"csrf_token": csrf, "decision": "deny", "reason": REASON},
    )
    assert sent.status_code == 303
    assert sent.headers["Location"] == "/login?lang=es&next=/requests?lang%3Des&ended=form"
    assert _status(client, request_id, officer) == "pending"  # nothing was recorded

    login_page = browser.get(sent.headers["Location"])
    said = text_of(login_page)
    assert NOT_SENT_ES in said and SEND_AGAIN_ES in said
    assert "Su sesión terminó; inicie sesión de nuevo." not in said
    assert 'name="next" value="/requests?lang=es"' in login_page.get_data(as_text=True)
    assert "data-form-not-sent" in login_page.get_data(as_text=True)

    # A mistyped password keeps the notice (and where to go back to).
    wrong = browser.post(
        "/login?lang=es&ended=form",
        data={
            "email": f"{officer.id}@example.org",
            "password": "no es la contraseña",
            "csrf_token": csrf_of(login_page.get_data(as_text=True)),
            "next": "/requests?lang=es",
        },
    )
    assert wrong.status_code == 401 and NOT_SENT_ES in text_of(wrong)

    back = log_in(browser, f"{officer.id}@example.org", next_page="/requests?lang=es")
    assert back.status_code == 303 and back.headers["Location"] == "/requests?lang=es"
    again = browser.get(back.headers["Location"])
    assert again.status_code == 200 and request_id in again.get_data(as_text=True)


def test_in_english_after_the_sessions_hours(
    app: Flask, officer: PersonClient, asked: tuple[str, PersonClient]
) -> None:
    request_id, _lawyer = asked
    browser = logged_in(app, officer.id)
    csrf = csrf_of(browser.get("/requests?lang=en").get_data(as_text=True))
    with browser.session_transaction() as cookie:
        cookie[sessions.LOGIN_AT_KEY] -= 8 * 3600 + 60  # PORTAL_SESSION_HOURS (8) have passed
    sent = browser.post(
        f"/requests/{request_id}/decision?lang=en",
        data={"csrf_token": csrf, "decision": "approve", "reason": REASON},
    )
    assert sent.headers["Location"] == "/login?lang=en&next=/requests?lang%3Den&ended=form"
    said = text_of(browser.get(sent.headers["Location"]))
    assert NOT_SENT_EN in said and SEND_AGAIN_EN in said
    assert "Your session ended; please log in again." not in said


# -- 2. the legal representative's new request ---------------------------------------------------


def test_a_new_request_sent_after_the_session_ended_is_not_made(
    app: Flask, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    csrf = csrf_of(browser.get("/requests?lang=en").get_data(as_text=True))
    give_password(app, lawyer.id, PASSWORD)
    before = _request_count(app)
    sent = browser.post(
        "/requests?lang=en",
        data={
            "csrf_token": csrf,
            "child_id": pushed["child_id"],
            "purpose": "legal_representation",
            "category": ["identity"],
            "until": IN_A_YEAR,
            "justification": REASON,
        },
    )
    assert sent.headers["Location"] == "/login?lang=en&next=/requests?lang%3Den&ended=form"
    assert _request_count(app) == before
    assert NOT_SENT_EN in text_of(browser.get(sent.headers["Location"]))
    back = log_in(browser, f"{lawyer.id}@example.org", next_page="/requests?lang=en")
    assert back.headers["Location"] == "/requests?lang=en"


def test_a_form_sent_once_the_cookie_is_gone_says_the_same(
    app: Flask, lawyer: PersonClient
) -> None:
    """The browser drops the cookie when the session's hours pass idle, and a logout in another
    tab makes a new one: the form's token is not the session's, and nobody is logged in."""
    browser = logged_in(app, lawyer.id)
    csrf = csrf_of(browser.get("/tokens").get_data(as_text=True))
    browser.delete_cookie("puente_portal")
    for path, page in (
        ("/tokens?lang=es", "/tokens?lang%3Des"),
        ("/tokens/1/revoke?lang=es", "/tokens?lang%3Des"),
    ):
        sent = browser.post(path, data={"csrf_token": csrf, "days": "7"})
        assert sent.status_code == 303
        assert sent.headers["Location"] == f"/login?lang=es&next={page}&ended=form"
    # Another tab logged out (a new session, a new token): the same.
    other = logged_in(app, lawyer.id)
    stale = csrf_of(other.get("/tokens").get_data(as_text=True))
    other.post("/logout", data={"csrf_token": stale})
    sent = other.post("/tokens?lang=en", data={"csrf_token": stale, "days": "7"})
    assert sent.headers["Location"] == "/login?lang=en&next=/tokens?lang%3Den&ended=form"
    # A form without any token came from no page of the portal: refused as before.
    assert app.test_client().post("/tokens?lang=en", data={"days": "7"}).status_code == 400


# -- 3. next= never leaves the portal -----------------------------------------------------------


@pytest.mark.parametrize(
    ("posted", "page"),
    [
        ("/requests/acr_1/decision", "/requests?lang=es"),
        ("/requests", "/requests?lang=es"),
        ("/tokens/7/revoke", "/tokens?lang=es"),
        ("/requests/%5C%5Cevil.example/decision", "/requests?lang=es"),
        ("/requests/%2F%2Fevil.example/decision", "/requests?lang=es"),
        ("//evil.example/tokens", None),
        ("/logout", None),
        ("/v1/access-requests", None),
        # The page's own parameters (a later page of the queue) are kept, encoded.
        ("/requests/acr_1/decision?after=acr_9&lang=en", "/requests?lang=en&after=acr_9"),
        ("/requests?x=%0D%0A//evil.example", "/requests?lang=es&x=%0D%0A%2F%2Fevil.example"),
    ],
)
def test_the_form_page_is_a_page_of_the_portal(app: Flask, posted: str, page: str | None) -> None:
    path, _, query = posted.partition("?")
    with app.test_request_context(
        "/", method="POST", query_string=query, environ_overrides={"PATH_INFO": _decoded(path)}
    ):
        assert sessions.form_page() == page


def _decoded(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path)


def test_the_login_page_takes_no_foreign_next(app: Flask, lawyer: PersonClient) -> None:
    give_password(app, lawyer.id)
    client = app.test_client()
    for target in ("//evil.example/requests", "https://evil.example/", "/\\evil.example"):
        page = client.get("/login", query_string={"lang": "en", "next": target, "ended": "form"})
        assert NOT_SENT_EN in text_of(page)
        assert 'name="next"' not in page.get_data(as_text=True)
        assert "takes you back" not in text_of(page)
        answer = log_in(client, f"{lawyer.id}@example.org", next_page=target)
        assert answer.headers["Location"] == "/?lang=en"  # home, in the language chosen
        client.post("/logout", data={"csrf_token": csrf_of(client.get("/").get_data(as_text=True))})


# -- 4. the script that keeps what was typed, under the CSP ---------------------------------------


def test_every_page_loads_the_script_and_the_policy_still_holds(
    app: Flask, officer: PersonClient, asked: tuple[str, PersonClient]
) -> None:
    browser = logged_in(app, officer.id)
    page = browser.get("/requests?lang=en")
    html = page.get_data(as_text=True)
    assert '<script src="/static/keep-forms.js" defer></script>' in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/keep-forms.js" defer>']
    assert re.search(r"<[^>]+\son[a-z]+=", html) is None  # no inline handlers either
    assert f'data-person="{officer.id}"' in html and "data-logout" in html
    assert "data-form-answer" not in html
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'self';")
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "script-src" not in CONTENT_SECURITY_POLICY
    script = browser.get("/static/keep-forms.js")
    assert script.status_code == 200 and "javascript" in script.mimetype
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in script.headers
    # A page answering a form (refused: what was typed is shown) keeps the copy.
    refused = browser.post(
        "/requests/acr_nope/decision?lang=en",
        data={"csrf_token": csrf_of(html), "decision": "", "reason": ""},
    )
    assert "data-form-answer" in refused.get_data(as_text=True)
    # The login page saying a form was not sent runs it (to keep the copy); public pages,
    # with nothing to keep, load no script at all.
    visitor = app.test_client()
    assert "keep-forms.js" in visitor.get("/login?ended=form").get_data(as_text=True)
    for path in ("/", "/login", "/login?ended=1", "/schemas"):
        assert "<script" not in visitor.get(path).get_data(as_text=True), path


HARNESS = r"""
const vm = require("vm");
const fs = require("fs");
const source = fs.readFileSync(process.argv[2], "utf8");
const data = new Map();
const storage = {
  get length() { return data.size; },
  key(i) { return Array.from(data.keys())[i] ?? null; },
  getItem(k) { return data.has(k) ? data.get(k) : null; },
  setItem(k, v) { data.set(k, String(v)); },
  removeItem(k) { data.delete(k); },
};
function field(name, type, extra) {
  return Object.assign({ name, type, value: "", checked: false, disabled: false,
    autocomplete: "" }, extra || {});
}
function form(action, fields, password) {
  const on = {};
  return {
    method: "post", action: "http://hub.example" + action, elements: fields, notes: [],
    querySelector() { return password ? {} : null; },
    addEventListener(kind, handler) { (on[kind] = on[kind] || []).push(handler); },
    fire(kind) { (on[kind] || []).forEach((handler) => handler()); },
    get parentNode() { const self = this;
      return { insertBefore(note) { self.notes.push(note.textContent); } }; },
  };
}
function decisionForm() {
  return form("/requests/acr_1/decision?lang=es", [
    field("csrf_token", "hidden", { value: "token-" + Math.random() }),
    field("decision", "radio", { value: "approve" }),
    field("decision", "radio", { value: "deny" }),
    field("reason", "textarea"),
    field("until", "date"),
    field("", "submit"),
  ]);
}
function load(options) {
  const forms = options.forms || [];
  const attributes = Object.assign({}, options.body || {});
  if (options.person) attributes["data-person"] = options.person;
  const main = { querySelectorAll() { return forms; } };
  const document = {
    documentElement: { lang: options.lang || "es" },
    body: { getAttribute: (n) => attributes[n] ?? null, hasAttribute: (n) => n in attributes },
    querySelector(selector) {
      if (selector === "main") return main;
      if (selector === "[data-form-not-sent]") return options.notSent ? {} : null;
      return null;
    },
    querySelectorAll(selector) {
      return selector === "form[data-logout]" && options.logout ? [options.logout] : [];
    },
    createElement() { return { setAttribute() {} }; },
  };
  const window = { sessionStorage: storage, location: { href: "http://hub.example/requests" } };
  vm.runInNewContext(source, { window, document, URL, JSON, Object, Array });
  return forms;
}
const out = {};
// An officer types a reason and a choice; the session ends; they send it.
let [typing] = load({ person: "co-1", forms: [decisionForm()] });
typing.elements[2].checked = true; typing.fire("change");
typing.elements[3].value = "Un motivo largo"; typing.fire("input");
typing.fire("submit");
out.stored = Array.from(data.entries());
load({ notSent: true, forms: [form("/login?lang=es", [field("email", "email"),
  field("password", "password", { value: "secreta" })], true)] });
let [back] = load({ person: "co-1", forms: [decisionForm()] });
out.restored = { deny: back.elements[2].checked, approve: back.elements[1].checked,
  reason: back.elements[3].value, csrf: back.elements[0].value.startsWith("token-"),
  notes: back.notes };
// Refused (a page answering the POST): kept; sent and redirected to a GET page: dropped.
back.fire("submit");
load({ person: "co-1", body: { "data-form-answer": "" }, forms: [decisionForm()] });
out.keptAfterRefusal = data.size;
let [answered] = load({ person: "co-1", forms: [decisionForm()] });
answered.fire("submit");
let [done] = load({ person: "co-1", forms: [decisionForm()] });
out.afterSuccess = { size: data.size, reason: done.elements[3].value, notes: done.notes };
// Someone else logs in in this tab: the first person's copy is gone.
done.elements[3].value = "Otro"; done.fire("input");
load({ person: "co-2", forms: [] });
out.otherPerson = data.size;
// Logout forgets every copy.
let [mine] = load({ person: "co-2", forms: [decisionForm()] });
mine.elements[3].value = "Borrador"; mine.fire("input");
const logout = form("/logout", []);
load({ person: "co-2", logout, forms: [] });
logout.fire("submit");
out.afterLogout = data.size;
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_script_keeps_what_was_typed_until_the_form_is_sent() -> None:
    ran = subprocess.run(
        ["node", "-", str(SCRIPT)],
        input=HARNESS,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = json.loads(ran.stdout)
    stored = dict(out["stored"])
    key = "puente.form.co-1|/requests/acr_1/decision"
    assert stored == {key: stored[key], "puente.form-sent": key}
    assert json.loads(stored[key]) == {
        "decision": ["deny"],
        "reason": ["Un motivo largo"],
        "until": [""],
    }
    assert "token-" not in json.dumps(out["stored"]) and "secreta" not in json.dumps(out)
    assert out["restored"] == {
        "deny": True,
        "approve": False,
        "reason": "Un motivo largo",
        "csrf": True,
        "notes": [
            "Se recuperó lo que había escrito en este formulario y aún no se había enviado. "
            "Revíselo antes de enviarlo."
        ],
    }
    assert out["keptAfterRefusal"] == 1
    assert out["afterSuccess"] == {"size": 0, "reason": "", "notes": []}
    assert out["otherPerson"] == 0
    assert out["afterLogout"] == 0
