"""The pages anyone may read: what Puente is, the shared schemas field by field, and the page
a person's browser gets for an address that has no page, or when something fails (a form too
large, the database out of reach, an unexpected error)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, g, make_response, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response

import exchange.portal.sessions  # noqa: F401  (registers first: see _refuse_nul_characters)
from consent import CATEGORY_LABELS
from exchange import db

# The hub's own answer to a routing error (problem+json), for every caller but a person's
# browser on the portal's addresses.
from exchange.httpbasics import PROBLEM_PAGE
from exchange.httpbasics import http_problem as problem_answer
from exchange.portal.blueprint import Text, bp, message_page, page_language
from exchange.problems import KINDS, PROBLEM_MEDIA_TYPE, Problem
from schemas.errors import UnknownSchema
from schemas.outline import field_outline
from schemas.registry import default_registry


@bp.get("/")
def index() -> str:
    return render_template("index.html")


@bp.get("/schemas")
def schema_list() -> str:
    return render_template("schemas.html", schemas=default_registry().list())


@bp.get("/schemas/<name>/<version>")
def schema_fields(name: str, version: str) -> str | tuple[str, int]:
    registry = default_registry()
    try:
        document = registry.document(name, version)
    except UnknownSchema as error:
        # A person's browser gets a page in its language, not the API's problem+json.
        lang = page_language()
        return render_template("not_found.html", message=error.message(lang)), 404
    fields = field_outline(registry, name, version)
    return render_template(
        "schema.html",
        name=name,
        version=version,
        document=document,
        fields=fields,
        # A document of shared definitions only (common/1) has no fields of its own: its
        # definitions are what a person looks up.
        definitions=[] if fields else _definitions(document),
        category_labels=CATEGORY_LABELS,
    )


def _definitions(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "title": node.get("x-title"),
            "type": node.get("type") or ("object" if "properties" in node else ""),
            "category": node.get("x-category"),
            "labels": node.get("x-labels") or {},
        }
        for name, node in (document.get("$defs") or {}).items()
        if isinstance(node, Mapping)
    ]


#: First path segments of the routes for programs (the API, OAuth, discovery, operations):
#: whatever asks there gets problem+json, a browser too.
MACHINE_SEGMENTS = frozenset(
    {"v1", "oauth", ".well-known", "openapi.json", "healthz", "readyz", "metrics"}
)


def init_app(app: Flask) -> None:
    # By status, so they come before the hub's handler of every HTTPException (Flask looks
    # for a handler of the status first).
    app.register_error_handler(NotFound, _no_such_page)
    app.register_error_handler(MethodNotAllowed, _no_such_page)
    # Every other error (a form too large, the database out of reach, an unexpected error):
    # the hub's handlers (exchange.httpbasics) ask here first whether a person reads it.
    app.extensions[PROBLEM_PAGE] = problem_page


def _wants_a_page() -> bool:
    """A person's browser on one of the portal's addresses: it prefers HTML to JSON (a
    program's ``*/*`` or no Accept header gets the problem, as before)."""
    if request.path.split("/")[1] in MACHINE_SEGMENTS:
        return False
    offered = (PROBLEM_MEDIA_TYPE, "application/json", "text/html")
    return request.accept_mimetypes.best_match(offered) == "text/html"


def _no_such_page(error: HTTPException) -> Response | tuple[str, int, dict[str, str]]:
    if not _wants_a_page():
        return problem_answer(error)
    path = request.path
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(error.valid_methods or ()))
        if request.method in ("GET", "HEAD"):
            message = (
                f"La dirección {path} solo recibe formularios del portal; no es una página. "
                "Vuelva a la página anterior o use el menú.",
                f"The address {path} only receives the portal's forms; it is not a page. Go "
                "back to the page before, or use the menu.",
            )
        else:
            message = (
                f"La página {path} no recibe formularios.",
                f"The page {path} does not receive forms.",
            )
        title = ("Esta dirección no es una página", "This address is not a page")
    else:
        title = ("Página no encontrada", "Page not found")
        message = (
            f"No hay ninguna página en {path}. Use el menú o vuelva al inicio.",
            f"There is no page at {path}. Use the menu, or go back to the home page.",
        )
    body, status = message_page(error.code or 404, title, message)
    return body, status, headers


log = logging.getLogger("puente.portal")


@bp.before_request
def _refuse_nul_characters() -> tuple[str, int] | None:
    """U+0000 in a form field or a query value of any portal page is a 400 page before the page
    sees it, whatever the browser accepts (the API refuses it too, exchange.httpbasics): no
    text a person types holds one, and PostgreSQL's text cannot, so a lookup or a write with it
    would fail as a 500 there and be stored on SQLite. Nothing is done or recorded.

    Registered after exchange.portal.sessions' check (imported above for that: a blueprint
    runs these in the order they were registered), so the page shows who is logged in, and a
    form without the session's CSRF token is refused as such first."""
    in_address = _holds_nul(request.args.items(multi=True))
    if not in_address and not _holds_nul(request.form.items(multi=True)):
        return None
    if request.method in ("GET", "HEAD"):
        g.page_path = request.path  # the language link leads to the page without the value
    title = ("Carácter no admitido", "Character not allowed")
    if in_address:
        message = (
            "La dirección contiene el carácter nulo (%00), que ningún texto puede llevar. Use "
            "el menú o vuelva a la página anterior.",
            "The address contains the NUL character (%00), which no text may hold. Use the "
            "menu, or go back to the page before.",
        )
    else:
        message = (
            "Lo que se envió contiene el carácter nulo (U+0000), que ningún texto puede "
            "llevar, y no se hizo ni se guardó nada. Vuelva a la página anterior, bórrelo del "
            "campo donde está y envíe el formulario de nuevo.",
            "What was sent contains the NUL character (U+0000), which no text may hold, and "
            "nothing was done or saved. Go back to the page before, delete it from the field "
            "it is in and send the form again.",
        )
    return message_page(400, title, message)


def _holds_nul(items: Iterable[tuple[str, str]]) -> bool:
    return any("\x00" in name or "\x00" in value for name, value in items)


def problem_page(problem: Problem) -> Response | None:
    """``problem`` as a page in the page's language (?lang=, the cookie, Accept-Language) for a
    person's browser on one of the portal's addresses, with the problem's status and headers
    (``Retry-After``, ``Allow``); None for everyone else, who get the problem as before."""
    if not _wants_a_page():
        return None
    title, message = _problem_words(problem)
    _roll_back_a_failed_flush()
    try:
        body, status = _drawn(problem.status, title, message)
    except Exception:  # a page that cannot be drawn must not hide the error it was to show
        log.exception("error page failed", extra={"request_id": g.get("request_id")})
        return None
    response = make_response(body, status)
    response.headers.extend(problem.headers)
    response.headers["Content-Language"] = page_language()
    return response


def _roll_back_a_failed_flush() -> None:
    """After a database error while writing, the request's session refuses every query until
    it is rolled back (PendingRollbackError), the page's own reading of who is logged in among
    them. Nothing the failed request did is to be kept anyway."""
    session = db.session()
    if session.is_active:
        return  # no failed write: what the page reads is still loaded, even with no database
    try:
        session.rollback()
    except Exception:  # the database out of reach: _drawn draws the page without it
        log.warning("rollback before the error page failed", exc_info=True)


def _drawn(status: int, title: Text, message: Text) -> tuple[str, int]:
    """The error page; drawn as for nobody logged in when the person logged in cannot be read
    again (the database out of reach since the failure), rather than not at all."""
    try:
        return message_page(status, title, message)
    except Exception:
        log.warning("error page drawn without the person logged in", exc_info=True)
        g.portal_person = g.portal_actor = None
        return message_page(status, title, message)


def _problem_words(problem: Problem) -> tuple[Text, Text]:
    """The title and sentence a person reads for ``problem``: plain words for what a browser
    meets (a form too large, a database out of reach, a fault of the hub), else the problem's
    own title and detail."""
    request_id = g.get("request_id") or ""
    if problem.kind == "payload-too-large":
        limit = problem.extra.get("limit")
        size_es = f" de {limit} bytes" if limit else ""
        size_en = f" of {limit} bytes" if limit else ""
        return (
            ("Formulario demasiado grande", "Form too large"),
            (
                f"Lo enviado supera el límite{size_es} que acepta el nodo, y no se guardó. "
                "Vuelva a la página anterior, acorte lo que escribió y envíelo de nuevo.",
                f"What was sent exceeds the hub's limit{size_en}, and was not saved. Go back "
                "to the page before, shorten what you typed and send it again.",
            ),
        )
    if problem.kind == "unavailable":
        wait = problem.headers.get("Retry-After", "30")
        return (
            ("Servicio no disponible por ahora", "Service unavailable for now"),
            (
                "El nodo no puede usar su base de datos en este momento. Espere unos "
                f"{wait} segundos y vuelva a intentarlo (recargue la página o envíe de nuevo el "
                f"formulario). Si sigue así, avise a quien administra el nodo, con el "
                f"identificador de la solicitud: {request_id}.",
                f"The hub cannot use its database right now. Wait about {wait} seconds and try "
                "again (reload the page, or send the form again). If it goes on, tell the "
                f"hub's administrator, quoting the request id: {request_id}.",
            ),
        )
    if problem.kind == "internal":
        return (
            ("Error inesperado", "Unexpected error"),
            (
                "Algo falló en el nodo y no se pudo completar la solicitud. Vuelva a "
                "intentarlo; si se repite, avise a quien administra el nodo, con el "
                f"identificador de la solicitud: {request_id}.",
                "Something went wrong on the hub and the request could not be completed. Try "
                "again; if it happens again, tell the hub's administrator, quoting the request "
                f"id: {request_id}.",
            ),
        )
    _status, title_es, title_en = KINDS[problem.kind]
    detail = problem.detail
    if detail is None:
        message: Text = (title_es, title_en)
    elif isinstance(detail, str):
        message = (detail, detail)
    else:
        message = detail
    return (title_es, title_en), message
