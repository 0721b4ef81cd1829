"""People log into the portal with their e-mail and password: one answer for every failure,
failed logins limited, sessions that end (disable, new password, hours), CSRF on every form,
no open redirect, and an API that keeps to bearer tokens. (Copies of the session cookie, and
limits that lock nobody out: test_portal_fix_sessions.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nacl.pwhash
import pytest
from consent_support import PersonClient
from flask import Flask
from flask.testing import FlaskClient
from portal_support import PASSWORD, csrf_of, give_password, log_in, logged_in, page_csrf, text_of

from exchange import create_app, db
from exchange.config import SettingError
from exchange.demo import demo_folder, people_example, seed_demo
from exchange.people import disable_person, enable_person
from exchange.portal import sessions

EMAIL = "lic-ana@example.org"
WRONG = "Wrong e-mail or password, or the account is not active."


def _change(app: Flask, change: Callable[..., object], *args: object) -> None:
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            change(session, *args)
        session.close()


def test_a_person_logs_in_and_out(client: FlaskClient, lawyer: PersonClient, app: Flask) -> None:
    give_password(app, lawyer.id)
    assert client.get("/tokens").status_code == 303  # not logged in: to the login page
    answer = log_in(client, "  Lic-Ana@Example.org ")  # addresses are kept lower-case
    assert answer.status_code == 303 and answer.headers["Location"] == "/?lang=es"
    home = client.get("/?lang=en")
    assert "Logged in as" in text_of(home) and "Persona lic-ana" in text_of(home)
    assert client.get("/tokens").status_code == 200
    logout = client.post("/logout", data={"csrf_token": csrf_of(home.get_data(as_text=True))})
    assert logout.status_code == 303
    assert client.get("/tokens").status_code == 303
    assert "Iniciar sesión" in text_of(client.get("/?lang=es"))


def test_every_failure_gets_the_same_answer(
    client: FlaskClient, lawyer: PersonClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    give_password(app, lawyer.id)
    verified: list[bytes] = []
    real_verify = nacl.pwhash.verify

    def counting(stored: bytes, password: bytes) -> bool:
        verified.append(stored)
        return bool(real_verify(stored, password))

    monkeypatch.setattr(nacl.pwhash, "verify", counting)
    wrong = log_in(client, EMAIL, "not the password at all", lang="en")
    unknown = log_in(client, "nadie@example.org", PASSWORD, lang="en")
    assert wrong.status_code == unknown.status_code == 401
    assert WRONG in text_of(wrong) and WRONG in text_of(unknown)
    # The unknown address cost a verification too (against a dummy hash): no timing oracle.
    assert len(verified) == 2 and verified[0] != verified[1]
    spanish = log_in(client, EMAIL, "otra cosa equivocada", lang="es")
    assert "Correo o contraseña incorrectos" in text_of(spanish)


def test_a_disabled_person_cannot_log_in_and_is_logged_out_at_once(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    _change(app, disable_person, lawyer.id)
    answer = browser.get("/tokens?lang=en")
    assert answer.status_code == 303
    assert "ended=1" in answer.headers["Location"]
    assert "Your session ended" in text_of(browser.get(answer.headers["Location"]))
    refused = log_in(app.test_client(), EMAIL, lang="en")
    assert refused.status_code == 401 and WRONG in text_of(refused)
    _change(app, enable_person, lawyer.id)
    assert log_in(app.test_client(), EMAIL).status_code == 303


def test_a_new_password_ends_open_sessions(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    give_password(app, lawyer.id, "una contraseña nueva y larga")
    assert browser.get("/tokens").status_code == 303


def test_sessions_end_after_the_configured_hours(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    with browser.session_transaction() as cookie:
        cookie[sessions.LOGIN_AT_KEY] -= 8 * 3600 - 60  # a minute before the end
    assert browser.get("/tokens").status_code == 200
    with browser.session_transaction() as cookie:
        cookie[sessions.LOGIN_AT_KEY] -= 120
    assert browser.get("/tokens").status_code == 303


def test_failed_logins_are_limited_per_email_at_an_address_and_per_address(
    tmp_path: Path, database_url: str, hub_factory: Callable[..., Flask]
) -> None:
    from consent_support import CLINIC, legal_representative
    from records_support import add_agency

    app = hub_factory(
        tmp_path,
        database_url,
        PORTAL_LOGIN_FAILURES="3 per minute",
        PORTAL_LOGIN_FAILURES_ADDRESS="5 per minute",
    )
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    legal_representative(app, "lic-ana")
    give_password(app, "lic-ana")
    client = app.test_client()
    for _ in range(3):
        assert log_in(client, EMAIL, "equivocada equivocada").status_code == 401
    # Past the limit of the e-mail at this address even the right password is refused here,
    # without being verified.
    locked = log_in(client, EMAIL, lang="en")
    assert locked.status_code == 429 and locked.headers["Retry-After"].isdigit()
    assert "Too many failed attempts. Try again in" in text_of(locked)
    assert "Demasiados intentos fallidos" in text_of(log_in(client, EMAIL, lang="es"))
    # Another e-mail from the same address still gets tries, until the address's own limit.
    for _ in range(2):
        assert log_in(client, "otra@example.org", "equivocada equivocada").status_code == 401
    assert log_in(client, "tercera@example.org", "equivocada").status_code == 429
    # From another client address nothing is locked: the person logs in.
    elsewhere = {"environ_base": {"REMOTE_ADDR": "192.0.2.7"}}
    other = app.test_client()
    assert log_in(other, "otra@example.org", "equivocada", **elsewhere).status_code == 401
    assert log_in(app.test_client(), EMAIL, **elsewhere).status_code == 303
    app.extensions["puente.db"].engine.dispose()


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/tokens",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/tokens\r\nSet-Cookie: x=1",
    ],
)
def test_next_never_leaves_the_hub(
    app: Flask, lawyer: PersonClient, client: FlaskClient, target: str
) -> None:
    give_password(app, lawyer.id)
    answer = log_in(client, EMAIL, next_page=target)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/?lang=es"


def test_next_returns_to_the_page_asked_for(
    app: Flask, lawyer: PersonClient, client: FlaskClient
) -> None:
    give_password(app, lawyer.id)
    sent = client.get("/tokens?lang=en")
    assert sent.headers["Location"] == "/login?lang=en&next=/tokens?lang%3Den"
    form = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/tokens?lang=en"' in form
    answer = log_in(client, EMAIL, next_page="/tokens?lang=en")
    assert answer.headers["Location"] == "/tokens?lang=en"


def test_every_portal_post_needs_the_session_csrf_token(app: Flask, lawyer: PersonClient) -> None:
    give_password(app, lawyer.id)
    client = app.test_client()
    page_csrf(client)
    refused = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert refused.status_code == 400
    assert "Formulario no válido" in text_of(refused)
    browser = logged_in(app, lawyer.id)
    other_session_token = page_csrf(app.test_client())
    for data in ({}, {"csrf_token": "x"}, {"csrf_token": other_session_token}):
        for path in ("/logout?lang=en", "/tokens?lang=en", "/tokens/1/revoke?lang=en"):
            answer = browser.post(path, data={**data, "scope": "records:read"})
            assert answer.status_code == 400, (path, data)
            assert "Form not valid" in text_of(answer)
    assert browser.get("/tokens").status_code == 200  # still logged in: nothing happened


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(app: Flask) -> None:
    plain = app.test_client().get("/login").headers["Set-Cookie"]
    assert plain.startswith("puente_portal=")
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    https = app.test_client().get("/login", base_url="https://hub.example")
    assert "Secure" in https.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in https.headers


def test_the_api_keeps_to_bearer_tokens(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    # A portal session is no API credential, and API answers set no cookie.
    answer = browser.get("/v1/grants")
    assert answer.status_code == 401 and "Set-Cookie" not in answer.headers
    with_token = browser.get("/v1/grants", headers=lawyer.headers)
    assert with_token.status_code == 200 and "Set-Cookie" not in with_token.headers
    # And API posts need no CSRF token (bearer tokens are not sent by browsers on their own):
    # the API answers them itself, as always.
    posted = browser.post("/v1/access-requests", json={}, headers=lawyer.headers)
    assert posted.status_code == 400 and posted.mimetype == "application/problem+json"
    assert "Set-Cookie" not in posted.headers


def test_without_a_secret_the_portal_refuses_logins_but_serves_pages(
    tmp_path: Path, database_url: str
) -> None:
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": tmp_path / "bare", "DATABASE_URL": database_url}
    )
    client = app.test_client()
    assert client.get("/?lang=en").status_code == 200
    refused = client.get("/login?lang=en")
    assert refused.status_code == 503 and "puente init" in text_of(refused)
    assert client.post("/login").status_code == 503
    assert client.get("/tokens").status_code == 303  # to the login page, which says why


def test_a_short_configured_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="PORTAL_SECRET_KEY"):
        create_app({"TESTING": True, "INSTANCE_PATH": tmp_path, "PORTAL_SECRET_KEY": "corta"})
    app = create_app({"TESTING": True, "INSTANCE_PATH": tmp_path, "PORTAL_SECRET_KEY": "s" * 40})
    assert app.secret_key == "s" * 40
    with pytest.raises(SettingError, match="PORTAL_LOGIN_FAILURES"):
        create_app({"TESTING": True, "INSTANCE_PATH": tmp_path, "PORTAL_LOGIN_FAILURES": "muchos"})
    with pytest.raises(SettingError, match="PORTAL_SESSION_HOURS"):
        create_app({"TESTING": True, "INSTANCE_PATH": tmp_path, "PORTAL_SESSION_HOURS": 0})


def test_the_demo_people_log_in_with_the_printed_logins(app: Flask) -> None:
    with app.app_context():
        hub = seed_demo(app)
    lawyer = hub.people["chp-clinica-representante"]
    assert lawyer["password"].startswith("demo-")
    assert len({person["password"] for person in hub.people.values()}) == len(hub.people)
    lines = people_example("http://127.0.0.1:8000", hub)
    assert lines[0].startswith("# portal: http://127.0.0.1:8000/login")
    assert f"    portal: {lawyer['email']}  {lawyer['password']}" in lines
    client = app.test_client()
    assert log_in(client, lawyer["email"], lawyer["password"]).status_code == 303
    assert "Renata" in text_of(client.get("/"))
    # A demo folder seeded before the portal had logins gets them on the next run.
    credentials = demo_folder(app) / "credentials.json"
    stored = json.loads(credentials.read_text())
    for person in stored["people"].values():
        del person["email"], person["password"]
    credentials.write_text(json.dumps(stored))
    with app.app_context():
        rerun = seed_demo(app)
    renewed = rerun.people["chp-clinica-representante"]
    assert renewed["password"] != lawyer["password"]
    assert json.loads(credentials.read_text())["people"] == rerun.people
    assert log_in(app.test_client(), renewed["email"], renewed["password"]).status_code == 303
