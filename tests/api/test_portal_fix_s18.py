"""What an outside check of the portal found (session 18), fixed:

1. every logout form (the home page's too) forgets the tab's copies of unsent forms;
2. a refused decision or token form marks each field it names, ties it to its own message and
   the form to its list of errors, which the page shows first and moves to (by the form's
   address, and with the script by focus); the request form comes before the requests made;
3. the officer reads who asks, and who decided, by name (their ids beside);
4. a date alone is the end of that day in central Mexico time (UTC−06:00), the time every
   instant is shown in: choosing today in the evening there is no longer "in the past";
5. someone who both asks and decides (an administrator) sees their own request in the queue
   without a form that always failed, under an id of its own; their agency's, and a child
   who is now 18, only with Deny; the refusals say so, the birthday in words;
6. what people type wraps rather than widening the page (CSS);
7. the login's wait in minutes, the justification's shortest length, which requests a page
   of a list shows.
"""

from __future__ import annotations

import copy
import html
import json
import math
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    OWNER,
    PROCURADURIA,
    PersonClient,
    add_person_client,
    legal_representative,
)
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, give_password, log_in, logged_in, text_of
from records_support import add_agency, envelope, example, push
from sqlalchemy import update
from test_access_queue_paging import ask, copies

import exchange.consents.access as access_service
import exchange.portal.access_requests as portal_requests
from exchange import db
from exchange.consent_store import AccessRequestRow
from exchange.people import Person
from exchange.portal.blueprint import readable_instant

STATIC = Path(__file__).resolve().parents[2] / "exchange" / "static"
PURPOSE = "legal_representation"
IN_A_YEAR = "2030-01-01"
_IDS = re.compile(r'\sid="([^"]+)"')


def _ids_repeated(page: str) -> list[str]:
    return [found for found, count in Counter(_IDS.findall(page)).items() if count > 1]


def _panel(page: str, request_id: str) -> str:
    found = re.search(
        rf'<section class="panel" id="request-{request_id}">(.*?)</section>', page, re.S
    )
    assert found is not None, page
    return found.group(1)


def _ask_in_portal(browser: FlaskClient, child_id: str, until: str = IN_A_YEAR) -> Any:
    return browser.post(
        "/requests?lang=en",
        data={
            "csrf_token": csrf_of(browser.get("/requests?lang=en").get_data(as_text=True)),
            "child_id": child_id,
            "purpose": PURPOSE,
            "category": ["family"],
            "until": until,
        },
    )


def _decide(browser: FlaskClient, request_id: str, lang: str = "en", **form: str) -> Any:
    page = browser.get(f"/requests?lang={lang}").get_data(as_text=True)
    return browser.post(
        f"/requests/{request_id}/decision?lang={lang}",
        data={"csrf_token": csrf_of(page), **form},
    )


def _set_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """The hub's clock, for the portal's checks of a form and the services' own."""
    for module in (portal_requests, access_service):
        monkeypatch.setattr(module, "utcnow", lambda: moment)


# -- 1. every logout form forgets the copies of unsent forms -------------------------------------


def test_every_logout_form_is_marked_to_forget_the_copies(
    app: Flask, lawyer: PersonClient, officer: PersonClient
) -> None:
    for person in (lawyer, officer):
        browser = logged_in(app, person.id)
        for path in ("/?lang=es", "/requests?lang=en", "/tokens?lang=en"):
            page = browser.get(path).get_data(as_text=True)
            logouts = re.findall(r'<form[^>]*action="/logout[^"]*"[^>]*>', page)
            assert logouts, path
            assert all("data-logout" in form for form in logouts), (path, logouts)
        # The home page has two: the menu's and the one beside who is logged in.
        home = browser.get("/?lang=es").get_data(as_text=True)
        assert len(re.findall(r'<form[^>]*action="/logout', home)) == 2


LOGOUT_HARNESS = r"""
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
function form(action, fields) {
  const on = {};
  return {
    method: "post", action: "http://hub.example" + action, elements: fields,
    querySelector() { return null; },
    addEventListener(kind, handler) { (on[kind] = on[kind] || []).push(handler); },
    fire(kind) { (on[kind] || []).forEach((handler) => handler()); },
    get parentNode() { return { insertBefore() {} }; },
  };
}
function reasonForm() {
  return form("/requests/acr_1/decision?lang=es", [
    { name: "reason", type: "textarea", value: "", disabled: false, autocomplete: "" },
  ]);
}
function load(options) {
  const attributes = { "data-person": "co-1" };
  if (options.answer) attributes["data-form-answer"] = "";
  const forms = options.forms || [];
  const main = { querySelectorAll() { return forms; } };
  const document = {
    documentElement: { lang: "es" },
    body: { getAttribute: (n) => attributes[n] ?? null, hasAttribute: (n) => n in attributes },
    querySelector(selector) {
      if (selector === "main") return main;
      if (selector === "[data-form-errors]") return options.errors || null;
      return null;
    },
    querySelectorAll(selector) {
      return selector === "form[data-logout]" ? options.logouts || [] : [];
    },
    createElement() { return { setAttribute() {} }; },
  };
  const window = { sessionStorage: storage, location: { href: "http://hub.example/" } };
  vm.runInNewContext(source, { window, document, URL, JSON, Object, Array });
  return forms;
}
const out = {};
// A reason typed, not sent; then the home page's logout (the second of its two logout forms).
let [typing] = load({ forms: [reasonForm()] });
typing.elements[0].value = "Borrador"; typing.fire("input");
out.kept = data.size;
const menu = form("/logout?lang=es", []);
const home = form("/logout?lang=es", []);
load({ logouts: [menu, home] });
home.fire("submit");
out.afterHomeLogout = data.size;
// A page answering a refused form focuses its list of errors.
let focused = 0;
load({ answer: true, errors: { focus() { focused += 1; } } });
out.focusedOnAnswer = focused;
load({ errors: { focus() { focused += 1; } } });
out.focusedOnAPage = focused;
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_home_pages_logout_forgets_the_copies_and_a_refusal_gets_the_focus() -> None:
    ran = subprocess.run(
        ["node", "-", str(STATIC / "keep-forms.js")],
        input=LOGOUT_HARNESS,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(ran.stdout) == {
        "kept": 1,
        "afterHomeLogout": 0,
        "focusedOnAnswer": 1,
        "focusedOnAPage": 1,  # a page that answers no form moves nothing
    }


# -- 2. a refused form: each field tied to its message, the errors first and moved to ------------


def test_a_refused_decision_marks_each_field_and_is_moved_to(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient,
    officer: PersonClient,
) -> None:  # fmt: skip
    request_id = ask(client, lawyer, pushed["child_id"])
    other = ask(client, lawyer, pushed["child_id"])
    browser = logged_in(app, officer.id)
    page = browser.get("/requests?lang=en").get_data(as_text=True)
    # The form's address names the list of errors it would show, so the browser goes there.
    assert f'action="/requests/{request_id}/decision?lang=en#errors-{request_id}"' in page

    refused = _decide(browser, request_id, decision="", reason=" ")
    assert refused.status_code == 400
    panel = _panel(refused.get_data(as_text=True), request_id)
    box = re.search(r'<div class="errors inline"[^>]*>', panel)
    assert box is not None
    for wanted in (
        'role="alert"',
        f'id="errors-{request_id}"',
        'tabindex="-1"',
        "data-form-errors",
    ):
        assert wanted in box.group(0), wanted
    assert f'aria-describedby="errors-{request_id}"' in panel
    choice = f"error-{request_id}-decision"
    assert f'<fieldset aria-describedby="{choice}">' in panel
    assert f'id="{choice}">Choose approve or deny.</span>' in panel
    assert len(re.findall(r'name="decision" value="\w+"[^>]*aria-invalid="true"', panel)) == 2
    reason = f"error-{request_id}-reason"
    assert re.search(
        rf'<textarea name="reason"[^>]*aria-invalid="true" aria-describedby="{reason}"', panel
    )
    assert f'id="{reason}">Write the reason for your decision.</span>' in panel
    assert not re.search(r'name="until"[^>]*aria-invalid', panel)
    # The other request's form says nothing.
    assert "aria-invalid" not in _panel(refused.get_data(as_text=True), other)

    past = _decide(browser, request_id, decision="approve", reason="Motivo.", until="2001-01-01")
    panel = _panel(past.get_data(as_text=True), request_id)
    until = f"error-{request_id}-until"
    assert re.search(rf'name="until"[^>]*aria-invalid="true" aria-describedby="{until}"', panel)
    assert f'id="{until}">“Valid until” has passed' in panel
    assert "aria-invalid" not in panel.split("<textarea", 1)[0].split("</legend>", 1)[1]


def test_a_refused_token_form_marks_its_fields_and_names_its_errors(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    page = browser.get("/tokens?lang=en").get_data(as_text=True)
    assert 'action="/tokens?lang=en#errors"' in page
    assert '<td class="typed">' in page  # a token's name wraps anywhere (CSS)
    assert 'id="errors"' not in page and "aria-invalid" not in page

    days = browser.post("/tokens?lang=en", data={"csrf_token": csrf_of(page), "days": "many"})
    assert days.status_code == 400
    said = days.get_data(as_text=True)
    box = re.search(r'<div class="errors"[^>]*>', said)
    assert box is not None and 'id="errors" tabindex="-1" data-form-errors' in box.group(0)
    assert said.index('id="errors"') < said.index("<table")  # first on the page
    form = '<form class="stacked" method="post" action="/tokens?lang=en#errors"'
    assert f'{form} aria-describedby="errors">' in said
    assert re.search(r'name="days"[^>]*aria-invalid="true" aria-describedby="error-days"', said)
    assert 'id="error-days">The lifetime must be a number of days' in said

    scopes = browser.post(
        "/tokens?lang=en", data={"csrf_token": csrf_of(page), "days": "7", "name": "x"}
    )
    said = scopes.get_data(as_text=True)
    assert scopes.status_code == 400
    assert '<fieldset aria-describedby="error-scopes">' in said
    assert 'id="error-scopes">Give at least one scope.</span>' in said
    assert re.search(r'name="scope"[^>]*aria-invalid="true"', said)
    assert not re.search(r'name="(days|name)"[^>]*aria-invalid', said)


def test_the_request_forms_errors_come_before_the_requests_made(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient
) -> None:
    copies(app, ask(client, lawyer, pushed["child_id"]), 100, datetime.now(UTC), "mine")
    browser = logged_in(app, lawyer.id)
    page = browser.get("/requests?lang=en").get_data(as_text=True)
    assert 'action="/requests?lang=en#request-errors"' in page
    refused = _ask_in_portal(browser, "not a child")
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    box = re.search(r'<div class="errors inline"[^>]*id="request-errors"[^>]*>', page)
    assert (
        box is not None and 'tabindex="-1"' in box.group(0) and "data-form-errors" in box.group(0)
    )
    assert page.index('id="request-errors"') < page.index('id="mine"')
    assert page.index('id="request-errors"') < page.index('id="my-request-')


# -- 3. who asks, and who decided, by name -----------------------------------------------------


def _rename(app: Flask, person_id: str, name: str) -> None:
    with app.app_context():
        session = db.session()
        session.execute(update(Person).where(Person.id == person_id).values(name=name))
        session.commit()


def test_the_officer_reads_who_asks_and_who_decided_by_name(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient,
    officer: PersonClient,
) -> None:  # fmt: skip
    _rename(app, lawyer.id, "Lic. Ana <b>Pérez</b>")
    _rename(app, officer.id, "Oficial Rosa Díaz")
    named = ask(client, lawyer, pushed["child_id"])
    gone = ask(client, lawyer, pushed["child_id"])
    with app.app_context():
        session = db.session()
        session.execute(
            update(AccessRequestRow)
            .where(AccessRequestRow.id == gone)
            .values(requester_person="per_no_longer_here", requester_agency="mx.no.existe")
        )
        session.commit()
    browser = logged_in(app, officer.id)
    page = browser.get("/requests?lang=en").get_data(as_text=True)

    requester = re.search(r"<dt>Requester</dt><dd>(.*?)</dd>", _panel(page, named), re.S)
    assert requester is not None
    assert requester.group(1) == (
        f"Lic. Ana &lt;b&gt;Pérez&lt;/b&gt; <small><code>{lawyer.id}</code></small>, "
        f"Agencia {CLINIC} <small><code>{CLINIC}</code></small>"
    )
    assert "<b>Pérez" not in page  # escaped
    # Nobody registered by those ids now: the ids alone.
    unknown = re.search(r"<dt>Requester</dt><dd>(.*?)</dd>", _panel(page, gone), re.S)
    assert unknown is not None
    assert unknown.group(1) == "<code>per_no_longer_here</code>, <code>mx.no.existe</code>"

    decided = _decide(browser, named, decision="deny", reason="No procede.")
    assert decided.status_code == 303
    shown = browser.get(decided.headers["Location"]).get_data(as_text=True)
    panel = shown.split('id="decided"', 1)[1].split("</section>", 1)[0]
    assert f"— Oficial Rosa Díaz <small><code>{officer.id}</code></small></dd>" in panel


# -- 4. a date alone is the end of that day in central Mexico time ---------------------------------


def _evening_in_mexico() -> tuple[datetime, date]:
    """The latest 21:00 in central Mexico (03:00 UTC) before now, and the date there then."""
    now = datetime.now(UTC)
    moment = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if moment > now:
        moment -= timedelta(days=1)
    return moment, (moment - timedelta(hours=6)).date()


def test_a_date_alone_is_the_end_of_that_day_in_central_mexico_time() -> None:
    assert portal_requests._until("2030-01-01") == "2030-01-01T23:59:59-06:00"
    assert portal_requests._until(" 2030-02-30 ") == "2030-02-30"  # no such day: refused later
    assert portal_requests._until("2030-01-01T00:00:00Z") == "2030-01-01T00:00:00Z"
    # Shown in that time, so the day chosen is the day shown, in either language.
    assert readable_instant("2030-01-02T05:59:59Z", "es") == "1 de enero de 2030, 23:59 UTC−06:00"
    assert readable_instant("2030-01-02T05:59:59Z", "en") == "1 January 2030, 23:59 UTC−06:00"


def test_today_chosen_in_the_evening_in_mexico_is_taken(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient,
    officer: PersonClient, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    moment, today = _evening_in_mexico()
    _set_clock(monkeypatch, moment)
    browser = logged_in(app, lawyer.id)
    page = browser.get("/requests?lang=en").get_data(as_text=True)
    assert f'<input type="date" name="until" value="" min="{today.isoformat()}" required>' in page

    made = _ask_in_portal(browser, pushed["child_id"], until=today.isoformat())
    assert made.status_code == 303, text_of(made)
    months = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]  # fmt: skip
    day = f"{today.day} {months[today.month - 1]} {today.year}"
    assert f"Until {day}, 23:59 UTC−06:00" in text_of(browser.get("/requests?lang=en"))

    # Yesterday there is past; the message says which day today is there.
    yesterday = (today - timedelta(days=1)).isoformat()
    past = _ask_in_portal(browser, pushed["child_id"], until=yesterday)
    assert past.status_code == 400
    assert (
        "The end date is in the past: choose today or a later date. "
        f"Today is {day} in central Mexico time (UTC−06:00)."
    ) in text_of(past)

    # The officer grants until today, there, as well.
    request_id = ask(client, lawyer, pushed["child_id"])
    decided = _decide(
        logged_in(app, officer.id), request_id, decision="approve", reason="Procede.",
        until=today.isoformat(),
    )  # fmt: skip
    assert decided.status_code == 303, text_of(decided)


def test_the_pages_say_which_time_they_show(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    for lang, label, sentence in (
        (
            "es",
            "Hasta (fecha; vale hasta el fin de ese día en hora del centro de México, UTC−06:00)",
            "Las fechas y horas de esta página están en hora del centro de México (UTC−06:00).",
        ),
        (
            "en",
            "Until (date; valid to the end of that day in central Mexico time, UTC−06:00)",
            "Dates and times on this page are in central Mexico time (UTC−06:00).",
        ),
    ):
        requests_page = text_of(browser.get(f"/requests?lang={lang}"))
        assert label in requests_page and sentence in requests_page
        assert " UTC " not in requests_page and "UTC)" not in requests_page.replace(
            "UTC−06:00)", ""
        )
        assert sentence in text_of(browser.get(f"/tokens?lang={lang}"))


# -- 5. one's own request, one's agency's, and a child who is now 18 -------------------------------


def _administrator(app: Flask) -> PersonClient:
    """Someone who both asks and decides: an administrator of the Procuraduría."""
    return add_person_client(
        app, "admin-chp", PROCURADURIA, ["administrator"], ["access:request", "access:decide"]
    )


def test_an_administrators_own_request_is_in_the_queue_without_a_form(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], officer: PersonClient
) -> None:
    admin = _administrator(app)
    request_id = ask(client, admin, pushed["child_id"])
    browser = logged_in(app, admin.id)
    for lang, said in (
        ("en", "This is your own request, and nobody decides their own"),
        ("es", "Es su propia solicitud, y nadie resuelve las suyas"),
    ):
        page = browser.get(f"/requests?lang={lang}").get_data(as_text=True)
        assert _ids_repeated(page) == []
        assert f'id="my-request-{request_id}"' in page
        panel = _panel(page, request_id)
        assert said in text_of_html(panel)
        assert "<form" not in panel

    # Denying it through a form of their own making is refused as deciding, not approving.
    for lang, said in (
        ("en", "Nobody decides their own request, whether to approve or to deny it"),
        ("es", "Nadie resuelve su propia solicitud, ni para aprobarla ni para denegarla"),
    ):
        refused = _decide(browser, request_id, lang, decision="deny", reason="Me retiro.")
        assert refused.status_code == 403
        assert said in text_of(refused)
        assert "approves their own" not in text_of(refused)

    # A colleague of the same agency may deny it, not approve it: the form says so.
    page = logged_in(app, officer.id).get("/requests?lang=en").get_data(as_text=True)
    panel = _panel(page, request_id)
    assert "This request is your agency’s, and nobody approves their own agency’s" in (
        text_of_html(panel)
    )
    assert 'value="approve"' not in panel and 'value="deny" required' in panel
    assert 'name="until"' not in panel


def test_a_request_about_a_child_now_18_offers_only_a_denial_and_says_the_day(
    app: Flask, client: FlaskClient, lawyer: PersonClient, officer: PersonClient
) -> None:
    data = copy.deepcopy(example("typical"))
    born = date(datetime.now(UTC).year - 19, 3, 15)
    data["child"]["date_of_birth"] = born.isoformat()
    response = push(client, add_agency(app, OWNER), envelope("EXP-19", data))
    assert response.status_code == 201, response.get_json()
    request_id = ask(client, lawyer, response.get_json()["child_id"])
    birthday = born.replace(year=born.year + 18)

    browser = logged_in(app, officer.id)
    for lang, said in (
        ("en", f"The child is now an adult: they turned 18 on 15 March {birthday.year}."),
        ("es", f"ya es mayor de edad: cumplió 18 años el 15 de marzo de {birthday.year}."),
    ):
        panel = _panel(browser.get(f"/requests?lang={lang}").get_data(as_text=True), request_id)
        assert said in text_of_html(panel)
        assert 'value="approve"' not in panel and 'value="deny" required' in panel

    # Approving anyway (a form of the page before): the day written out, not 2025-03-15.
    for lang, said in (
        ("en", f"The person turned 18 on 15 March {birthday.year}: access is no longer granted"),
        ("es", f"La persona cumplió 18 años el 15 de marzo de {birthday.year}: ya no se autoriza"),
    ):
        refused = _decide(browser, request_id, lang, decision="approve", reason="Procede.")
        assert refused.status_code == 400
        assert said in text_of(refused) and birthday.isoformat() not in text_of(refused)
    api = client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"approve": True, "reason": "Procede."},
        headers={**officer.headers, "Accept-Language": "en"},
    )
    [error] = api.get_json()["errors"]
    assert f"turned 18 on 15 March {birthday.year}:" in error["message"]


# -- 6. what people type wraps --------------------------------------------------------------------


def _rules(css: str) -> dict[str, str]:
    return {selector.strip(): body for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)}


def test_what_people_type_wraps_and_hidden_words_stay_in_their_button() -> None:
    css = (STATIC / "puente.css").read_text(encoding="utf-8")
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    everywhere = _rules(re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", css))
    # At every width, not only on a phone: a 2,000-character word, a long token name.
    assert "overflow-wrap: anywhere" in everywhere["main"]
    assert "white-space: pre-wrap" in everywhere[".reason"]
    # A table's own words stay whole (it scrolls within itself on a phone), but for a name.
    assert "overflow-wrap: anywhere" in everywhere["td.typed"]
    hidden = everywhere[".visually-hidden"]
    assert "position: absolute" in hidden and "clip-path: inset(50%)" in hidden
    # Placed within what holds it, so that a button or cell off-screen does not widen the page.
    holders = [set(selector.split(", ")) for selector, body in everywhere.items()
               if "position: relative" in body]  # fmt: skip
    assert any({"button", "th", "td", "label"} <= found for found in holders), holders


# -- 7. the login's wait, the justification's length, which requests a page shows -----------------


def test_the_login_wait_is_said_in_minutes(
    tmp_path: Path, database_url: str, hub_factory: Callable[..., Flask]
) -> None:
    app = hub_factory(tmp_path, database_url, PORTAL_LOGIN_FAILURES="2 per hour")
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    legal_representative(app, "lic-ana")
    give_password(app, "lic-ana")
    client = app.test_client()
    for _ in range(2):
        assert log_in(client, "lic-ana@example.org", "equivocada equivocada").status_code == 401
    for lang, said in (("en", "Try again in {} minutes."), ("es", "Reintente en {} minutos.")):
        locked = log_in(client, "lic-ana@example.org", lang=lang)
        assert locked.status_code == 429
        minutes = math.ceil(int(locked.headers["Retry-After"]) / 60)
        assert minutes > 1 and said.format(minutes) in text_of(locked)
        assert " s." not in text_of(locked)


def test_the_justifications_shortest_length_is_said_and_checked(
    app: Flask, lawyer: PersonClient
) -> None:
    page = logged_in(app, lawyer.id).get("/requests?lang=en")
    assert "if you write one, 10 to 2000 characters" in text_of(page)
    assert re.search(
        r'<textarea name="justification" minlength="10" maxlength="2000"', page.get_data(True)
    )


_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


def test_each_page_of_a_list_says_which_requests_it_shows(
    app: Flask, client: FlaskClient, pushed: dict[str, Any], lawyer: PersonClient,
    officer: PersonClient,
) -> None:  # fmt: skip
    model = ask(client, lawyer, pushed["child_id"])
    copies(app, model, 206, datetime.now(UTC) - timedelta(days=2), "q")
    browser = logged_in(app, officer.id)
    said, path = [], "/requests?lang=es"
    while path:
        answer = browser.get(path)
        said.append(text_of(answer))
        found = _NEXT.findall(answer.get_data(as_text=True))
        path = html.unescape(found[0]) if found else ""
    assert len(said) == 3
    for words, (first, last) in zip(said, ((1, 100), (101, 200), (201, 207)), strict=True):
        assert f"207 solicitudes esperan decisión en su jurisdicción, las más antiguas primero; " \
            f"esta página muestra de la {first} a la {last}." in words  # fmt: skip
    assert "Primera página" not in said[0] and "Primera página" in said[2]
    # An address whose place does not fit the list says only how many the page shows.
    second = html.unescape(_NEXT.findall(browser.get("/requests?lang=en").get_data(True))[0])
    assert "from=101" in second
    wrong = browser.get(second.replace("from=101", "from=999"))
    assert "this page shows 100." in text_of(wrong)
    # A requester with a few requests: all on one page.
    mine = text_of(logged_in(app, lawyer.id).get("/requests?lang=en"))
    assert "You have made 207 requests, newest first; this page shows numbers 1 to 100." in mine


def text_of_html(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))
