"""Helpers for the portal tests: passwords for test people, logging in through the form, and
reading the CSRF token a page carries."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from exchange import db
from exchange.people import set_password

#: A password each test person gets (long enough, not guessable by the policy's rules).
PASSWORD = "mango lluvioso sobre el puente"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def give_password(app: Flask, person_id: str, password: str = PASSWORD) -> None:
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            set_password(session, person_id, password)
        session.close()


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, page
    return found.group(1)


def page_csrf(client: FlaskClient, path: str = "/login", **options: object) -> str:
    response = client.get(path, **options)  # type: ignore[arg-type]
    return csrf_of(response.get_data(as_text=True))


def log_in(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    next_page: str | None = None,
    lang: str | None = None,
    **options: object,
) -> TestResponse:
    """Post the login form as a browser does: with the CSRF token of the page it came from."""
    path = f"/login?lang={lang}" if lang else "/login"
    data = {"email": email, "password": password, "csrf_token": page_csrf(client, path, **options)}
    if next_page is not None:
        data["next"] = next_page
    return client.post(path, data=data, **options)  # type: ignore[arg-type]


def logged_in(app: Flask, person_id: str) -> FlaskClient:
    """A browser logged in as ``person_id`` (who gets :data:`PASSWORD`)."""
    give_password(app, person_id)
    client = app.test_client()
    answer = log_in(client, f"{person_id}@example.org")
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client


def text_of(response: TestResponse) -> str:
    """The page's words, tags dropped, entities read and spaces collapsed (for asserting on
    sentences; never for escaping, which needs the raw page)."""
    page = response.get_data(as_text=True)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
