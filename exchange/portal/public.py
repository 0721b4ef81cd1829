"""The pages anyone may read: what Puente is, the shared schemas field by field, and the page
a person's browser gets for an address that has no page, or when something fails (a form too
large, the database out of reach, an unexpected error)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, g, make_response, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response

from consent import CATEGORY_LABELS

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


def problem_page(problem: Problem) -> Response | None:
    """``problem`` as a page in the page's language (?lang=, the cookie, Accept-Language) for a
    person's browser on one of the portal's addresses, with the problem's status and headers
    (``Retry-After``, ``Allow``); None for everyone else, who get the problem as before."""
    if not _wants_a_page():
        return None
    title, message = _problem_words(problem)
    try:
        body, status = message_page(problem.status, title, message)
    except Exception:  # a page that cannot be drawn must not hide the error it was to show
        log.exception("error page failed", extra={"request_id": g.get("request_id")})
        return None
    response = make_response(body, status)
    response.headers.extend(problem.headers)
    response.headers["Content-Language"] = page_language()
    return response


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
