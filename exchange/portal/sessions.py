"""Who is logged into the portal: the session cookie, its expiry, and the CSRF token of forms.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure over https) holding the
person's id, the time of login, the person's session generation and the forms' CSRF token; it
is signed with the hub's portal secret (``PORTAL_SECRET_KEY``, or the file ``puente init``
makes). Every request reads the person again, and the cookie works only while its generation
is the person's (``Person.session_generation``): a cookie can be copied out of the browser,
so clearing the browser's copy would end nothing. Logging out, a disable or an enable of the
person or their agency, and a new password count the generation up (exchange.people), which
ends for good every session opened before and every copy of its cookie; a disabled person or
agency, or the end of ``PORTAL_SESSION_HOURS`` after login, ends a session too. A form sent
once its session has ended does nothing: the login page says it was not sent, and after login
leads back to the form's page (exchange/static/keep-forms.js keeps what was typed). The API
(``/v1``, ``/oauth``) never reads the session: it takes bearer tokens only, and no cookie is
set on its answers.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from flask import Flask, current_app, g, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Request, Response
from limits import parse_many
from werkzeug.exceptions import HTTPException

from exchange import db
from exchange.agencies import Agency
from exchange.auth import Actor
from exchange.config import SettingError
from exchange.keys import load_portal_secret
from exchange.people import Person, allowed_scopes, end_sessions
from exchange.portal.blueprint import bp, go, message_page, page_language

PERSON_KEY = "person"
LOGIN_AT_KEY = "login_at"
GENERATION_KEY = "generation"
CSRF_KEY = "csrf"
#: The hidden field every portal form carries.
CSRF_FIELD = "csrf_token"
#: A secret shorter than this is refused at start: it signs every session.
MIN_SECRET_LENGTH = 32


class PortalSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over https (as HSTS is
    sent then, exchange.httpbasics), so a hub on plain http in development still works; and
    written on the portal's answers only (Flask would refresh it on every answer, the API's
    too, which must carry no cookie)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        secure = bool(super().get_cookie_secure(app))
        return secure or (has_request_context() and request.is_secure)

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        # A request without the cookie (every API request) gets the empty session Flask
        # would give it, without building the cookie's signer first.
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if has_request_context() and request.blueprint != bp.name:
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    configured = app.config.get("PORTAL_SECRET_KEY")
    if configured and len(str(configured)) < MIN_SECRET_LENGTH:
        raise SettingError(
            f"PUENTE_PORTAL_SECRET_KEY es demasiado corta ({len(str(configured))} caracteres): "
            f"use al menos {MIN_SECRET_LENGTH} caracteres aleatorios.",
            f"PUENTE_PORTAL_SECRET_KEY is too short ({len(str(configured))} characters): use "
            f"at least {MIN_SECRET_LENGTH} random characters.",
        )
    for name in (
        "PORTAL_LOGIN_FAILURES",
        "PORTAL_LOGIN_FAILURES_ADDRESS",
        "PORTAL_LOGIN_FAILURES_EMAIL",
    ):
        try:
            parse_many(str(app.config.get(name) or "") or "1 per second")
        except ValueError:
            raise SettingError(
                f"PUENTE_{name} = {app.config.get(name)!r} (debe ser un límite como "
                '"10 per 15 minutes", o "" para ninguno)',
                f"PUENTE_{name} = {app.config.get(name)!r} (must be a limit such as "
                '"10 per 15 minutes", or "" for none)',
            ) from None
    app.secret_key = load_portal_secret(app)
    app.config.update(
        SESSION_COOKIE_NAME="puente_portal",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # A whole number of hours ≥ 1: exchange.config.check_settings refused anything else.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=app.config["PORTAL_SESSION_HOURS"]),
    )
    app.session_interface = PortalSessionInterface()


def sessions_available() -> bool:
    """Whether the portal can keep sessions (a secret is configured or was made by init)."""
    return bool(current_app.secret_key)


def begin(person: Person) -> None:
    """Log ``person`` in: a new session (a new CSRF token too) that ends within the hours."""
    session.clear()
    session.permanent = True
    session[PERSON_KEY] = person.id
    session[LOGIN_AT_KEY] = int(time.time())
    session[GENERATION_KEY] = person.session_generation
    session[CSRF_KEY] = secrets.token_urlsafe(32)


def end(person: Person | None) -> None:
    """Log out: the browser's cookie is cleared, and every session of ``person`` ends on the
    hub, so that no copy of the cookie (nor the person's sessions in other browsers) works."""
    session.clear()
    if person is not None:
        end_sessions(db.session(), person.id)
        db.session().commit()


def _logged_in() -> tuple[Person, Actor] | None:
    """The person of this session and the actor they act as (every scope their roles allow,
    as a token of theirs would carry at most); None when nobody is logged in or the session
    has ended (its keys are then dropped, the CSRF token kept)."""
    person_id = session.get(PERSON_KEY)
    if not person_id:
        return None
    found = db.session().get(Person, person_id)
    agency = db.session().get(Agency, found.agency_id) if found is not None else None
    started = session.get(LOGIN_AT_KEY)
    hours = int(current_app.config["PORTAL_SESSION_HOURS"])
    if (
        found is None
        or agency is None
        or not (found.active and agency.active)
        or not isinstance(started, int)
        or time.time() - started >= hours * 3600
        or session.get(GENERATION_KEY) != found.session_generation
    ):
        for key in (PERSON_KEY, LOGIN_AT_KEY, GENERATION_KEY):
            session.pop(key, None)
        g.portal_session_ended = True
        return None
    return found, Actor.for_person(found, agency, scopes=allowed_scopes(found.role_list))


def csrf_token() -> str:
    """This session's CSRF token (made on first use: the login form needs one too)."""
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return str(token)


def _csrf_matches() -> bool:
    expected = session.get(CSRF_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    return bool(expected) and hmac.compare_digest(
        sent.encode("utf-8"), str(expected).encode("utf-8")
    )


def _csrf_refused() -> Any:
    """The answer to a POST without this session's CSRF token: nothing it asked is done.

    Two such forms most likely come from the person's own tabs, and get a page that
    helps: a logout with no session to end (already logged out, in another tab or by the end
    of the session) lands on the login page, as it would have; a login form opened before a
    login or logout in another tab (each starts a new session, with a new token) shows the
    login page again, with a fresh form. Neither does anything a forged form could use: the
    logout ends nothing, the login form logs nobody in; a form of a page for logged-in people,
    sent once nobody is logged in, goes to the login page saying it was not sent, as when the
    session ended with its token still in the cookie (:func:`login_required`). (Every form of
    the portal carries a token: one without any is refused, as any other form.)"""
    if request.form.get(CSRF_FIELD):  # a form without any token came from no page of ours
        if request.endpoint == "portal.logout" and g.get("portal_person") is None:
            return go("portal.login", ended="1" if g.get("portal_session_ended") else None)
        if g.get("portal_person") is None and _needs_login(request.endpoint):
            # A form of a logged-in page sent with nobody logged in: the session ended in the
            # meantime (by its hours, once the browser dropped the cookie, or by a logout in
            # another tab, which made a new token). Nothing is done: told so on the login page.
            return _form_not_sent()
        if request.endpoint == "portal.login_post":
            from exchange.portal.login import stale_form  # login imports this module

            return stale_form()
    return message_page(
        400,
        ("Formulario no válido", "Form not valid"),
        (
            "El formulario no llevaba la marca de seguridad de esta sesión (quizá venció la "
            "sesión o la página se abrió desde otro sitio). Vuelva a la página, recárguela e "
            "inténtelo de nuevo.",
            "The form did not carry this session's security token (the session may have ended, "
            "or the page came from another site). Go back, reload the page and try again.",
        ),
    )


@bp.before_request
def _who_and_csrf() -> Any:
    """Before every portal page: who is logged in; and every POST must carry the session's
    CSRF token (the API's routes are other blueprints, and never pass here)."""
    if not sessions_available():
        g.portal_person = g.portal_actor = None
        if request.method == "POST" or request.endpoint in LOGIN_PAGES:
            return _not_set_up()
        return None
    found = _logged_in()
    g.portal_person, g.portal_actor = found if found is not None else (None, None)
    if request.method == "POST" and not _csrf_matches():
        return _csrf_refused()
    return None


#: Pages that need a session even before login (their forms carry a CSRF token).
LOGIN_PAGES = frozenset({"portal.login"})


def _not_set_up() -> tuple[str, int]:
    return message_page(
        503,
        ("Inicio de sesión no disponible", "Login not available"),
        (
            "Este nodo aún no tiene la clave del portal: quien lo administra debe ejecutar "
            "«puente init» (o definir PUENTE_PORTAL_SECRET_KEY).",
            "This hub has no portal secret yet: its administrator must run 'puente init' (or "
            "set PUENTE_PORTAL_SECRET_KEY).",
        ),
    )


def login_required(*any_scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A page for logged-in people (a visitor is sent to the login page and back; a form sent
    with nobody logged in, to the login page saying it was not sent, and back to the form's
    page); with ``any_scope``, only for people whose roles allow one of those scopes (others
    get 403)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            actor: Actor | None = g.get("portal_actor")
            if actor is None:
                if request.method != "GET":
                    return _form_not_sent()
                ended = "1" if g.get("portal_session_ended") else None
                return go("portal.login", next=request.full_path.rstrip("?"), ended=ended)
            if any_scope and not set(any_scope) & actor.scopes:
                return message_page(
                    403,
                    ("Sin acceso", "No access"),
                    (
                        "Sus roles no permiten usar esta página.",
                        "Your roles do not allow this page.",
                    ),
                )
            return view(*args, **kwargs)

        setattr(guarded, NEEDS_LOGIN, True)
        return guarded

    return decorator


#: The mark :func:`login_required` leaves on a view (how a refused form knows its page needs one).
NEEDS_LOGIN = "portal_needs_login"
#: ``ended=`` on the login page when a form was sent after the session ended.
FORM_NOT_SENT = "form"


def _needs_login(endpoint: str | None) -> bool:
    view = current_app.view_functions.get(endpoint or "")
    return bool(getattr(view, NEEDS_LOGIN, False))


def _form_not_sent() -> Response:
    """The answer to a form sent once the session had ended: nothing it asked is done, and the
    login page says so (the form was not sent, nothing was recorded), then leads back to the
    form's page, where the person sends it again (keep-forms.js puts back what was typed)."""
    return go("portal.login", next=form_page(), ended=FORM_NOT_SENT)


def form_page() -> str | None:
    """The page a posted form was on, as a path on this hub (in the page's language), or None.

    Browsers send no Referer here (``Referrer-Policy: no-referrer``), and the form's own fields
    are not to be trusted for a redirect; so the page is read off the address the form was
    posted to: that address, or the nearest one above it, that is a page of the portal
    (``/requests/<id>/decision`` → ``/requests``; ``/tokens`` → ``/tokens``), with the
    address's parameters. Only a route of the portal can come out, never another site, and
    :func:`safe_next` checks it once more."""
    adapter = current_app.create_url_adapter(request)
    parts = request.path.split("/")
    for end in range(len(parts), 1, -1):
        path = "/".join(parts[:end])
        if adapter is None or not path.strip("/"):
            break  # never home: login leads there anyway
        try:
            endpoint, _values = adapter.match(path, method="GET")
        except HTTPException:  # no page there (a RequestRedirect is one too)
            continue
        if str(endpoint).startswith(f"{bp.name}."):
            # The form's address keeps its page's parameters (the list's page, say), as a
            # GET's ``next=`` does.
            query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
            return safe_next(f"{quote(path)}?{urlencode([('lang', page_language()), *query])}")
    return None


def current_actor() -> Actor:
    """The logged-in person as an actor (only inside :func:`login_required` pages)."""
    actor: Actor = g.portal_actor
    return actor


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this hub, else None: ``next=`` never sends a person to
    another site (``//evil.example``, ``/\\evil.example``, ``https://…``) after login."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if any(character in target for character in "\\\r\n\t") or not target.isprintable():
        return None
    parts = urlsplit(target)
    return target if not (parts.scheme or parts.netloc) else None
