"""Portal sessions end on the hub, not only in the browser: a copy of the session cookie stops
working when its person logs out, is disabled and enabled again (or their agency is), or gets
a new password. And failed logins slow guessing without letting anyone who knows a person's
e-mail lock that person out; ``PORTAL_SESSION_HOURS`` has one rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner, Result
from consent_support import CLINIC, PersonClient, legal_representative
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, give_password, log_in, logged_in, text_of
from records_support import add_agency
from werkzeug.test import TestResponse

from exchange import create_app, db
from exchange.agencies import disable_agency, enable_agency
from exchange.cli import main
from exchange.config import SettingError
from exchange.people import end_agency_sessions, list_tokens
from exchange.portal import sessions

EMAIL = "lic-ana@example.org"
COOKIE = "puente_portal"
ATTACKER = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
PERSON_AT_HOME = {"environ_base": {"REMOTE_ADDR": "192.0.2.7"}}
WRONG_PASSWORD = "no es la contraseña de nadie"


def puente(app: Flask, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """The command line, on this hub."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def copy_of(app: Flask, browser: FlaskClient) -> tuple[FlaskClient, str]:
    """Another browser holding a copy of ``browser``'s session cookie (as one copied out of
    it would), and that cookie's value, to put back whenever it is wanted again."""
    cookie = browser.get_cookie(COOKIE)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie.value)
    return thief, cookie.value


def logged_out(answer: TestResponse) -> bool:
    return answer.status_code == 303 and "/login" in answer.headers["Location"]


def token_count(app: Flask, person_id: str) -> int:
    with app.app_context():
        session = db.database(app).sessions()
        try:
            return len(list_tokens(session, person_id))
        finally:
            session.close()


# --- 1. sessions that end on the hub --------------------------------------------------------


def test_a_copied_cookie_stops_working_when_its_person_logs_out(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    thief, cookie = copy_of(app, browser)
    tokens_before = token_count(app, lawyer.id)
    page = thief.get("/tokens")
    assert page.status_code == 200  # the copy works while the session does
    csrf = csrf_of(page.get_data(as_text=True))
    assert logged_out(browser.post("/logout", data={"csrf_token": csrf}))
    assert logged_out(browser.get("/tokens"))
    answer = thief.get("/tokens?lang=en")
    assert logged_out(answer) and "ended=1" in answer.headers["Location"]
    # Nor does the copy make a token with its CSRF value (the cookie as it was, once more).
    thief.set_cookie(COOKIE, cookie)
    made = thief.post("/tokens", data={"csrf_token": csrf, "scope": "records:read", "days": "365"})
    assert logged_out(made)
    assert token_count(app, lawyer.id) == tokens_before


def test_logging_out_ends_the_persons_sessions_in_every_browser_and_a_new_login_works(
    app: Flask, lawyer: PersonClient
) -> None:
    phone = logged_in(app, lawyer.id)
    laptop = app.test_client()
    assert log_in(laptop, EMAIL).status_code == 303
    assert phone.get("/tokens").status_code == 200  # two sessions at once
    csrf = csrf_of(laptop.get("/tokens").get_data(as_text=True))
    assert logged_out(laptop.post("/logout", data={"csrf_token": csrf}))
    assert logged_out(phone.get("/tokens"))
    assert log_in(laptop, EMAIL).status_code == 303
    assert laptop.get("/tokens").status_code == 200


def test_disabling_and_enabling_a_person_does_not_bring_a_copied_cookie_back(
    app: Flask, lawyer: PersonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = logged_in(app, lawyer.id)
    thief, _cookie = copy_of(app, browser)
    puente(app, monkeypatch, "person", "disable", lawyer.id)
    puente(app, monkeypatch, "person", "enable", lawyer.id)
    assert logged_out(thief.get("/tokens"))
    assert logged_out(browser.get("/tokens"))
    assert log_in(app.test_client(), EMAIL).status_code == 303  # the person logs in again


def test_a_new_password_ends_a_copied_cookie(app: Flask, lawyer: PersonClient) -> None:
    browser = logged_in(app, lawyer.id)
    thief, _cookie = copy_of(app, browser)
    give_password(app, lawyer.id, "una contraseña nueva y bastante larga")
    assert logged_out(thief.get("/tokens"))


def test_ending_an_agencys_sessions_ends_those_of_each_of_its_people(
    app: Flask, lawyer: PersonClient
) -> None:
    """What ``agency disable`` and ``enable`` call (exchange.agencies), so that sessions opened
    before a disable stay ended once the agency is enabled again."""
    browser = logged_in(app, lawyer.id)
    thief, _cookie = copy_of(app, browser)
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            disable_agency(session, CLINIC)
            end_agency_sessions(session, CLINIC)
        with session.begin():
            enable_agency(session, CLINIC)
        session.close()
    assert logged_out(thief.get("/tokens"))
    assert logged_out(browser.get("/tokens"))
    assert log_in(app.test_client(), EMAIL).status_code == 303


def test_disabling_and_enabling_an_agency_does_not_bring_a_copied_cookie_back(
    app: Flask, lawyer: PersonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = logged_in(app, lawyer.id)
    thief, cookie = copy_of(app, browser)
    puente(app, monkeypatch, "agency", "disable", CLINIC)
    assert logged_out(thief.get("/tokens"))  # while disabled: as before
    puente(app, monkeypatch, "agency", "enable", CLINIC)
    thief.set_cookie(COOKIE, cookie)  # the copy as it was (the answer above emptied it)
    assert logged_out(thief.get("/tokens"))


def test_a_cookie_from_before_sessions_were_counted_is_logged_out(
    app: Flask, lawyer: PersonClient
) -> None:
    browser = logged_in(app, lawyer.id)
    with browser.session_transaction() as cookie:
        del cookie[sessions.GENERATION_KEY]
    assert logged_out(browser.get("/tokens"))


# --- 2. failed logins that lock nobody out ---------------------------------------------------


def retry_after(answer: TestResponse) -> int:
    assert answer.status_code == 429, answer.status_code
    seconds = answer.headers.get("Retry-After", "")
    assert seconds.isdigit(), answer.headers
    return int(seconds)


def test_an_attacker_at_one_address_cannot_lock_out_the_person_at_another(
    app: Flask, lawyer: PersonClient
) -> None:
    """With the shipped limits: 10 failures per e-mail at one address in 15 minutes."""
    give_password(app, lawyer.id)
    attacker = app.test_client()
    for _ in range(10):
        assert log_in(attacker, EMAIL, WRONG_PASSWORD, **ATTACKER).status_code == 401
    refused = log_in(attacker, EMAIL, lang="en", **ATTACKER)  # even the right password
    assert 0 < retry_after(refused) <= 15 * 60
    assert "Too many failed attempts. Try again in" in text_of(refused)
    person = app.test_client()
    assert log_in(person, EMAIL, **PERSON_AT_HOME).status_code == 303
    assert person.get("/tokens", **PERSON_AT_HOME).status_code == 200


def test_an_address_past_its_own_limit_is_refused_with_retry_after(
    tmp_path: Path, database_url: str, hub_factory: Callable[..., Flask]
) -> None:
    app = hub_factory(
        tmp_path,
        database_url,
        PORTAL_LOGIN_FAILURES="2 per minute",
        PORTAL_LOGIN_FAILURES_ADDRESS="3 per minute",
    )
    try:
        add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
        legal_representative(app, "lic-ana")
        give_password(app, "lic-ana")
        attacker = app.test_client()
        for _ in range(2):
            assert log_in(attacker, EMAIL, WRONG_PASSWORD, **ATTACKER).status_code == 401
        assert 0 < retry_after(log_in(attacker, EMAIL, **ATTACKER)) <= 60
        # Other e-mails from that address, until the address's own limit.
        assert log_in(attacker, "otra@example.org", WRONG_PASSWORD, **ATTACKER).status_code == 401
        spanish = log_in(attacker, "tercera@example.org", WRONG_PASSWORD, lang="es", **ATTACKER)
        assert 0 < retry_after(spanish) <= 60
        assert "Demasiados intentos fallidos" in text_of(spanish)
        assert log_in(app.test_client(), EMAIL, **PERSON_AT_HOME).status_code == 303
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_guessing_spread_over_addresses_gets_one_try_per_address_and_the_person_gets_in(
    tmp_path: Path, database_url: str, hub_factory: Callable[..., Flask]
) -> None:
    app = hub_factory(tmp_path, database_url, PORTAL_LOGIN_FAILURES_EMAIL="3 per minute")
    try:
        add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
        legal_representative(app, "lic-ana")
        give_password(app, "lic-ana")
        guessers = [{"environ_base": {"REMOTE_ADDR": f"198.51.100.{n}"}} for n in range(1, 5)]
        for where in guessers[:3]:
            assert log_in(app.test_client(), EMAIL, WRONG_PASSWORD, **where).status_code == 401
        # Past the e-mail's limit over every address: an address that failed at it waits...
        assert 0 < retry_after(log_in(app.test_client(), EMAIL, **guessers[0])) <= 60
        # ...one that did not gets one try...
        fresh = guessers[3]
        assert log_in(app.test_client(), EMAIL, WRONG_PASSWORD, **fresh).status_code == 401
        retry_after(log_in(app.test_client(), EMAIL, WRONG_PASSWORD, **fresh))
        # ...and the person, who failed nowhere, logs in.
        assert log_in(app.test_client(), EMAIL, **PERSON_AT_HOME).status_code == 303
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_the_addresses_of_one_ipv6_network_count_as_one(
    tmp_path: Path, database_url: str, hub_factory: Callable[..., Flask]
) -> None:
    app = hub_factory(tmp_path, database_url, PORTAL_LOGIN_FAILURES="2 per minute")
    try:
        client = app.test_client()
        for host in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"):
            where = {"environ_base": {"REMOTE_ADDR": host}}
            assert log_in(client, EMAIL, WRONG_PASSWORD, **where).status_code == 401
        same_network = {"environ_base": {"REMOTE_ADDR": "2001:db8:1:2::77"}}
        retry_after(log_in(client, EMAIL, WRONG_PASSWORD, **same_network))
        other_network = {"environ_base": {"REMOTE_ADDR": "2001:db8:1:3::1"}}
        assert log_in(client, EMAIL, WRONG_PASSWORD, **other_network).status_code == 401
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_unknown_emails_are_counted_and_cost_as_known_ones(
    tmp_path: Path,
    database_url: str,
    hub_factory: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The limits tell nobody which e-mails have accounts: the same answers, in the same
    order, with one verification per try that is let through and none for a refused one."""
    app = hub_factory(tmp_path, database_url, PORTAL_LOGIN_FAILURES="2 per minute")
    try:
        add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
        legal_representative(app, "lic-ana")
        give_password(app, "lic-ana")
        verified: list[bytes] = []
        real_verify = nacl.pwhash.verify

        def counting(stored: bytes, password: bytes) -> bool:
            verified.append(stored)
            return bool(real_verify(stored, password))

        monkeypatch.setattr(nacl.pwhash, "verify", counting)
        answers = {}
        for email, where in ((EMAIL, ATTACKER), ("nadie@example.org", PERSON_AT_HOME)):
            client = app.test_client()
            before = len(verified)
            tries = [log_in(client, email, WRONG_PASSWORD, **where) for _ in range(3)]
            answers[email] = ([answer.status_code for answer in tries], len(verified) - before)
            assert "Retry-After" in tries[-1].headers
        assert answers[EMAIL] == answers["nadie@example.org"] == ([401, 401, 429], 2)
    finally:
        app.extensions["puente.db"].engine.dispose()


# --- 3. PORTAL_SESSION_HOURS ----------------------------------------------------------------


@pytest.mark.parametrize("hours", [1.5, -1, "8", 0, None, True])
def test_session_hours_are_a_whole_number_of_hours_from_one(tmp_path: Path, hours: object) -> None:
    with pytest.raises(SettingError) as refused:
        create_app({"TESTING": True, "INSTANCE_PATH": tmp_path, "PORTAL_SESSION_HOURS": hours})
    assert f"PUENTE_PORTAL_SESSION_HOURS = {hours!r} (must be a whole number of hours ≥ 1)" in (
        refused.value.message("en")
    )
    assert "(debe ser un número entero de horas ≥ 1)" in refused.value.message("es")


def test_session_hours_from_the_environment_follow_the_same_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_PORTAL_SESSION_HOURS", "1.5")
    with pytest.raises(SettingError, match="must be a whole number of hours ≥ 1"):
        create_app({"TESTING": True, "INSTANCE_PATH": tmp_path})
    monkeypatch.setenv("PUENTE_PORTAL_SESSION_HOURS", "1")
    app = create_app({"TESTING": True, "INSTANCE_PATH": tmp_path})
    assert app.permanent_session_lifetime.total_seconds() == 3600
