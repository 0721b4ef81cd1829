"""The portal's blueprint and what every page shares: the page's language, the helpers its
templates use, and the bilingual page that answers a refusal."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from exchange.problems import negotiated_language

bp = Blueprint("portal", __name__)

Text = tuple[str, str]  # (Spanish, English)


def page_language() -> str:
    chosen = request.args.get("lang")
    return chosen if chosen in ("es", "en") else negotiated_language()


@bp.app_context_processor
def _page_helpers() -> dict[str, Any]:
    from exchange.portal.sessions import csrf_token  # sessions registers on this blueprint

    lang = page_language() if request else "es"
    actor = g.get("portal_actor")
    return {
        "lang": lang,
        "t": lambda es, en: es if lang == "es" else en,
        "portal_person": g.get("portal_person"),
        "portal_scopes": actor.scopes if actor is not None else frozenset(),
        "csrf_token": csrf_token,
    }


def message_page(status: int, title: Text, message: Text) -> tuple[str, int]:
    """A page that says, in the page's language, why something was refused or went wrong."""
    return render_template("portal_message.html", title=title, message=message), status


def go(endpoint: str, **values: Any) -> Response:
    """A redirect (303: the browser follows with a GET) to a portal page, in this language."""
    return redirect(url_for(endpoint, lang=page_language(), **values), code=303)
