"""The portal's blueprint and what every page shares: the page's language (remembered in a
cookie), the helpers its templates use (dates and role names in that language), the one-time
notice a page leaves for the next one, and the bilingual page that answers a refusal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from exchange.auth import as_utc
from exchange.problems import negotiated_language
from exchange.written_dates import readable_day

bp = Blueprint("portal", __name__)

Text = tuple[str, str]  # (Spanish, English)

#: The cookie that remembers the language a person chose with the switch on any page.
LANG_COOKIE = "lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
LANGUAGES = ("es", "en")


def page_language() -> str:
    """``?lang=`` when given; else the language chosen before (the cookie); else the
    browser's Accept-Language."""
    for chosen in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if chosen in LANGUAGES:
            return str(chosen)
    return negotiated_language()


@bp.after_request
def _remember_language(response: Response) -> Response:
    chosen = request.args.get("lang")
    if chosen in LANGUAGES and request.cookies.get(LANG_COOKIE) != chosen:
        response.set_cookie(
            LANG_COOKIE,
            str(chosen),
            max_age=LANG_COOKIE_SECONDS,
            secure=request.is_secure,
            httponly=True,
            samesite="Lax",
        )
    return response


# -- dates and roles as a person reads them ------------------------------------------------------

#: An RFC 3339 instant inside a sentence (the API's messages carry them).
_INSTANT = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")

#: Roles by name (the codes of exchange.people.PERSON_ROLES).
ROLE_LABELS: dict[str, Text] = {
    "legal_representative": ("Representante legal", "Legal representative"),
    "consent_officer": ("Oficial de consentimiento", "Consent officer"),
    "override_officer": ("Oficial de acceso de emergencia", "Emergency override officer"),
    "auditor": ("Auditoría", "Auditor"),
    "administrator": ("Administración del nodo", "Hub administrator"),
}


#: The time the portal reads and shows dates in: central Mexico's, which has kept UTC−06:00 all
#: year since Mexico ended daylight saving time in 2022 (most of the country; the northern
#: border's cities, Sonora and Quintana Roo keep their own). A date alone in a form is the end
#: of that day in this time, so that a person anywhere in the centre sees the day they chose.
PAGE_TIME = timezone(timedelta(hours=-6))
#: How a page names that time after each instant it shows (the pages that show times say
#: "hora del centro de México (UTC−06:00)" / "central Mexico time (UTC−06:00)").
PAGE_TIME_SHORT = "UTC−06:00"


def readable_instant(moment: datetime | str, lang: str) -> str:
    """``2030-01-02T05:59:59Z`` as «1 de enero de 2030, 23:59 UTC−06:00» or "1 January 2030,
    23:59 UTC−06:00": in central Mexico time (:data:`PAGE_TIME`), the time a date chosen in a
    form is read in, so that the day shown is the day chosen. The hub keeps every instant in
    UTC; the offset is said with each one."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    when = as_utc(when).astimezone(PAGE_TIME)
    return f"{readable_day(when.date(), lang)}, {when:%H:%M} {PAGE_TIME_SHORT}"


def page_date(moment: datetime) -> date:
    """The date ``moment`` falls on in central Mexico time."""
    return as_utc(moment).astimezone(PAGE_TIME).date()


def readable_text(text: str, lang: str) -> str:
    """``text`` with every instant in it written as :func:`readable_instant` writes it."""
    return _INSTANT.sub(lambda found: readable_instant(found.group(0), lang), text)


def role_names(roles: Iterable[str], lang: str) -> str:
    pick = 0 if lang == "es" else 1
    return ", ".join(ROLE_LABELS[role][pick] if role in ROLE_LABELS else role for role in roles)


def _language_link(lang: str) -> str:
    """The address of this page in the other language. A page answering a form shows at the
    address it was posted to, which may have no page of its own (its GET is a 405): such a
    page names its page in ``g.page_path``, or the link leads home; other query parameters
    (``next=``) are kept."""
    other = "en" if lang == "es" else "es"
    kept: list[tuple[str, str]] = []
    path = g.get("page_path")
    if path is None and _has_a_page(request.path):
        path = request.path
        kept = [(key, value) for key, value in request.args.items(multi=True) if key != "lang"]
    return f"{path or url_for('portal.index')}?{urlencode([*kept, ('lang', other)])}"


def _has_a_page(path: str) -> bool:
    """Whether a GET of ``path`` reaches a route (a refused form's address may have none)."""
    if request.method in ("GET", "HEAD"):
        return True
    adapter = current_app.create_url_adapter(request)
    if adapter is None:
        return False
    try:
        adapter.match(path, method="GET")
    except HTTPException:
        return False
    return True


@bp.app_context_processor
def _page_helpers() -> dict[str, Any]:
    from exchange.consents import is_oversight
    from exchange.portal.sessions import csrf_token  # sessions registers on this blueprint

    lang = page_language() if request else "es"
    actor = g.get("portal_actor")
    return {
        "lang": lang,
        "t": lambda es, en: es if lang == "es" else en,
        "when": lambda moment: readable_instant(moment, lang) if moment else "",
        "day": lambda day: readable_day(day, lang),
        "readable": lambda text: readable_text(text, lang),
        "role_names": lambda roles: role_names(roles, lang),
        "language_link": _language_link(lang) if request else "",
        "portal_person": g.get("portal_person"),
        "portal_scopes": actor.scopes if actor is not None else frozenset(),
        # Oversight's pages (/alerts) follow the API's test, kind included, not the scope alone.
        "portal_oversight": actor is not None and is_oversight(actor),
        "csrf_token": csrf_token,
    }


# -- a notice for the next page (Post/Redirect/Get) ---------------------------------------------

NOTICE_KEY = "notice"


def leave_notice(kind: str, **values: Any) -> None:
    """Tell the page a form redirects to what was done (``kind`` and ids), once: in the
    session, so that neither the address nor a reload shows it again."""
    session[NOTICE_KEY] = {"kind": kind, **values}


def notice(kind: str) -> dict[str, Any] | None:
    """The notice of ``kind`` left for this page, if any. Every portal page takes the notice
    left for it, whichever it is, so a notice never waits in the cookie for a later page."""
    taken: dict[str, Any] | None = g.get("portal_notice")
    return taken if taken is not None and taken.get("kind") == kind else None


@bp.before_request
def _take_notice() -> None:
    # A hub without a portal secret has no session to write to (and no forms, hence no notice).
    g.portal_notice = session.pop(NOTICE_KEY, None) if NOTICE_KEY in session else None


def message_page(status: int, title: Text, message: Text) -> tuple[str, int]:
    """A page that says, in the page's language, why something was refused or went wrong."""
    return render_template("portal_message.html", title=title, message=message), status


def go(endpoint: str, **values: Any) -> Response:
    """A redirect (303: the browser follows with a GET) to a portal page, in this language."""
    return redirect(url_for(endpoint, lang=page_language(), **values), code=303)
