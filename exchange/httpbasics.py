"""What every request and response gets: a request id, body limits, problem responses."""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, current_app, g, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from exchange.db import unavailable_reason
from exchange.problems import (
    STATUS_KINDS,
    Problem,
    localized,
    negotiated_language,
    oauth_error_body,
    problem_response,
)

if TYPE_CHECKING:
    from schemas.validation import DocumentValidator

log = logging.getLogger("puente.http")

REQUEST_ID_HEADER = "X-Request-Id"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

JSON_MEDIA_TYPES = ("application/json", "application/merge-patch+json")


def init_app(app: Flask) -> None:
    app.before_request(_assign_request_id)
    app.before_request(_refuse_nul_characters)
    app.after_request(_add_request_headers)
    app.register_error_handler(Problem, answer_problem)
    app.register_error_handler(HTTPException, http_problem)
    app.register_error_handler(Exception, _unexpected_exception)
    app.register_error_handler(DBAPIError, _database_error)


#: Where an app keeps how a person's browser is shown a problem (exchange.portal sets it for
#: the portal's pages): the problem as an HTML page, or None to answer it as the API does.
PROBLEM_PAGE = "puente.problem_page"
ProblemPage = Callable[[Problem], Response | None]


def answer_problem(problem: Problem) -> Response:
    """``problem`` as problem+json — or, where the app shows problems to people as pages (the
    portal's addresses, for a browser that prefers HTML), as that page."""
    page: ProblemPage | None = current_app.extensions.get(PROBLEM_PAGE)
    if page is not None:
        shown = page(problem)
        if shown is not None:
            return shown
    return problem_response(problem)


def _assign_request_id() -> None:
    # A well-formed id from the client (or a proxy) is kept so a request can be followed
    # across systems; anything else is replaced.
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _CLIENT_REQUEST_ID.match(incoming) else uuid.uuid4().hex


#: Where :func:`_refuse_nul_characters` answers with a problem: the API's routes. Elsewhere an
#: address holding one is a 404 (the portal's pages answer it in HTML), and values are checked
#: where they are used: OAuth in RFC 6749's words (a client id holding one is an unknown
#: client), the portal's form fields and query values by the portal, with a page of its own
#: (exchange.portal.public).
API_PREFIXES = ("/v1/", "/.well-known/")


def _refuse_nul_characters() -> None:
    """U+0000 in an API route's path or a query parameter is a 400 before the route sees it:
    no id, name or note holds one, and PostgreSQL's text cannot (a lookup would fail as a 500
    on PostgreSQL and not on SQLite). JSON bodies are checked as they are parsed.

    A body is never read here, whatever its ``Content-Type``: no API route takes a form, and
    parsing one would consume the body that routes reading it raw (a witness's
    ``add-checkpoint``, which clients such as curl send as a form by default; a federation
    envelope) must get whole. A JSON route refuses a form's media type itself."""
    if not request.path.startswith(API_PREFIXES):
        if "\x00" in request.path:
            abort(404)  # no page has such an address; each area answers its 404 its own way
        return
    where = None
    if "\x00" in request.path:
        where = "/path"
    elif request.environ.get("QUERY_STRING"):  # most API requests have none: nothing to parse
        for name, value in request.args.items(multi=True):
            if "\x00" in name or "\x00" in value:
                where = f"/query/{name.replace(chr(0), '')}"
                break
    if where is None:
        return
    es = "contiene el carácter nulo %00 (\\u0000), que ningún texto puede llevar"
    en = "contains the NUL character %00 (\\u0000), which no text may hold"
    raise Problem(
        "validation",
        (f"{where}: {es}.", f"{where}: {en}."),
        errors=[{"pointer": where, "message": localized(es, en)}],
    )


#: The portal's pages load only the hub's own stylesheet and script (``static/keep-forms.js``;
#: no inline script or style), and no page of the hub is to be framed, given a foreign base
#: URL, or post a form elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors, for browsers without CSP 2
    "Referrer-Policy": "no-referrer",  # a child's or a record's id in a URL stays here
}
HSTS = "max-age=31536000"


def _add_request_headers(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or uuid.uuid4().hex
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Only over https (also forwarded by a proxy gunicorn trusts, FORWARDED_ALLOW_IPS): a hub
    # on plain http (development, a local network) must not be pinned to https.
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def http_problem(error: HTTPException) -> Response:
    """An HTTP error raised by Flask or a route (404, 405, 413…) as the API's problem; the
    portal's pages use it for the callers that are not browsers."""
    status = error.code or 500
    kind = STATUS_KINDS.get(status, "internal" if status >= 500 else "validation")
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(sorted(error.valid_methods or ()))
    if isinstance(error, RequestEntityTooLarge):
        limit = request.max_content_length
        detail: tuple[str, str] | str = (
            f"El cuerpo supera el límite de {limit} bytes.",
            f"The body exceeds the limit of {limit} bytes.",
        )
        extra["limit"] = limit
    elif error.description and error.description != type(error).description:
        detail = error.description  # written for this error by whoever raised it
    else:
        # Werkzeug's stock descriptions are English only: say it in both languages ourselves.
        detail = _stock_detail(status, headers.get("Allow"))
    return answer_problem(Problem(kind, detail, status=status, headers=headers, **extra))


def _stock_detail(status: int, allowed: str | None) -> tuple[str, str]:
    if status == 404:
        return (
            f"No hay nada en {request.path}; la lista de rutas está en /openapi.json.",
            f"There is nothing at {request.path}; the routes are listed at /openapi.json.",
        )
    if status == 405:
        use = f"; use {allowed}" if allowed else ""  # the same word in both languages
        return (
            f"El método {request.method} no se admite en {request.path}{use}.",
            f"Method {request.method} is not allowed on {request.path}{use}.",
        )
    if status == 400:
        return ("La solicitud está mal formada.", "The request is malformed.")
    if status == 406:
        return (
            "No se puede responder en el formato pedido (cabecera Accept).",
            "Cannot answer in the format asked for (Accept header).",
        )
    if status == 415:
        return ("El tipo de contenido no se admite.", "The content type is not supported.")
    return (
        f"No se pudo atender la solicitud (HTTP {status}).",
        f"The request could not be served (HTTP {status}).",
    )


def _unexpected_exception(error: Exception) -> Response:
    # Never leak internals: the log has the traceback under the request id, the client has the id.
    log.exception("unhandled error", extra={"request_id": g.get("request_id")})
    return answer_problem(
        Problem(
            "internal",
            (
                "Error inesperado. Indique el identificador de la solicitud al soporte.",
                "Unexpected error. Quote the request id to support.",
            ),
        )
    )


#: PostgreSQL's deadlock_detected and serialization_failure.
COLLISIONS = frozenset({"40P01", "40001"})


def _database_error(error: DBAPIError) -> Response:
    """503 with Retry-After when the database is unreachable, busy or not set up (clients
    try again later; the operator reads the log), 500 for anything else."""
    if getattr(error.orig, "sqlstate", None) in COLLISIONS:
        # Two requests changed the same rows at once and the database gave up one of them
        # (PostgreSQL: a deadlock or a serialization failure). Not an outage: the request can
        # be sent again, and will see what the other one did.
        log.warning("transaction collided with another: %s", error.orig)
        return answer_problem(
            Problem(
                "conflict",
                (
                    "Otra solicitud cambió lo mismo al mismo tiempo; consulte el estado y vuelva "
                    "a intentarlo si aún procede.",
                    "Another request changed the same thing at the same time; check the state "
                    "and try again if it still applies.",
                ),
            )
        )
    reason = unavailable_reason(error)
    if reason is None:
        return _unexpected_exception(error)
    log.error("database unavailable: %s", reason[1], extra={"request_id": g.get("request_id")})
    spanish = "El nodo no puede usar su base de datos en este momento; intente más tarde."
    english = "The hub cannot use its database right now; try again later."
    headers = {"Retry-After": "30"}
    if request.path.startswith("/oauth/"):
        # OAuth clients read RFC 6749 errors there, not problems.
        body = oauth_error_body("temporarily_unavailable", spanish, english)
        return Response(
            json.dumps(body, ensure_ascii=False),
            status=503,
            mimetype="application/json",
            headers=headers,
        )
    return answer_problem(Problem("unavailable", (spanish, english), headers=headers))


FHIR_JSON = "application/fhir+json"


#: ``int_query``'s default for a parameter that must be given.
REQUIRED: Any = object()


def invalid_query(name: str, spanish: str, english: str) -> Problem:
    """A validation problem about the query parameter ``name``."""
    return Problem(
        "validation",
        (f"Parámetro {name}: {spanish}.", f"Parameter {name}: {english}."),
        errors=[
            {
                "pointer": f"/query/{name}",
                "parameter": name,
                "message": localized(spanish, english),
            }
        ],
    )


def query_parameters(*known: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A route whose query parameters are ``known``, each taking one value. A repeated one is
    refused (400, naming it), never answered for the first value alone
    (``child_id=A&child_id=B`` would show A's history as if it were all); so is one the route
    does not know: a misspelt filter (``chid_id``) would otherwise list everything, and the
    person reading the answer would take it for what they asked."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            for name, values in request.args.lists():
                if name not in known:
                    accepted = ", ".join(known) if known else None
                    raise invalid_query(
                        name,
                        "no existe en esta ruta"
                        + (f"; acepta {accepted}" if accepted else "; no acepta ninguno"),
                        "is not one of this route's"
                        + (f"; it takes {accepted}" if accepted else "; it takes none"),
                    )
                if len(values) > 1:
                    raise invalid_query(
                        name,
                        f"se indicó {len(values)} veces; indique un solo valor",
                        f"was given {len(values)} times; give one value",
                    )
            return view(*args, **kwargs)

        return checked

    return decorate


def int_query(
    name: str, *, minimum: int, maximum: int | None = None, default: Any = REQUIRED
) -> Any:
    """The integer query parameter ``name`` within [``minimum``, ``maximum``]; ``default``
    when it is absent. Given empty, not a number or out of range is a 400 saying so, never a
    quiet fallback."""
    text = request.args.get(name)
    if text is None:
        if default is REQUIRED:
            raise invalid_query(name, "es obligatorio", "is required")
        return default
    if text == "":
        # Given empty is a mistake to say, not a way to ask for the default.
        raise invalid_query(name, "está vacío", "is empty")
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise invalid_query(
            name, "debe ser un entero no negativo", "must be a non-negative integer"
        )
    value = int(text)
    if value < minimum:
        raise invalid_query(name, f"debe ser al menos {minimum}", f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise invalid_query(name, f"debe ser a lo más {maximum}", f"must be at most {maximum}")
    return value


def wants_fhir() -> bool:
    """Whether the client asks for FHIR: ``?format=fhir``, or ``Accept`` preferring
    ``application/fhir+json`` to ``application/json``. Any other ``format`` is a 400."""
    chosen = request.args.get("format")
    if chosen not in (None, "fhir", "json"):
        raise invalid_query(
            "format",
            f"«{chosen}» no está disponible; use fhir o json",
            f"'{chosen}' is not available; use fhir or json",
        )
    if chosen == "fhir":
        return True
    accepted = request.accept_mimetypes
    return accepted.best_match(["application/json", FHIR_JSON]) == FHIR_JSON and (
        accepted[FHIR_JSON] > accepted["application/json"]
    )


def request_body(limit: int | None = None, *, cache: bool = False) -> bytes:
    """The request's body, at most ``limit`` bytes (default: the request's own limit); more is
    413. A body sent in chunks (no Content-Length) is cut at the limit by Werkzeug, not
    refused: what arrived is then the first ``limit`` bytes of something larger, refused too."""
    if limit is not None:
        request.max_content_length = limit
    data = request.get_data(cache=cache)
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def require_json() -> Any:
    """The request body as JSON, or a problem naming what is wrong with it."""
    from schemas.errors import DocumentError
    from schemas.parsing import parse_document

    if request.mimetype not in JSON_MEDIA_TYPES:
        raise Problem(
            "unsupported-media-type",
            (
                f"Se esperaba application/json, se recibió {request.mimetype or 'nada'}.",
                f"Expected application/json, got {request.mimetype or 'nothing'}.",
            ),
        )
    data = request_body(cache=True)
    limit = request.max_content_length
    try:
        return parse_document(data, max_bytes=limit or len(data))
    except DocumentError as error:
        message = localized(error.message_es, error.message_en)
        raise Problem(
            "validation",
            (error.message_es, error.message_en),
            # Where the parser found it (a text holding NUL: /reason), else the body itself.
            errors=[{"pointer": error.pointer or "", "message": message}],
        ) from error


REQUEST_NOT_VALID = ("La solicitud no es válida.", "The request is not valid.")


def schema_validator(schema: Mapping[str, Any] | tuple[str, int]) -> DocumentValidator:
    """The validator of a registered schema (``("consent", 1)``) or of a request schema
    written in an API module (a mapping with its own ``$id``)."""
    from schemas.registry import default_registry

    registry = default_registry()
    if isinstance(schema, tuple):
        return registry.validator(*schema)
    return registry.compile(schema)


def check_against(
    schema: Mapping[str, Any] | tuple[str, int],
    document: Any,
    detail: tuple[str, str] = REQUEST_NOT_VALID,
) -> None:
    """A validation problem listing every failure of ``document`` (each with its JSON pointer
    and a readable message in the client's language), unless ``schema`` accepts it."""
    failures = schema_validator(schema).validate(document)
    if failures:
        lang = negotiated_language()
        raise Problem(
            "validation",
            detail,
            errors=[{"pointer": f.pointer, "message": f.message(lang)} for f in failures],
        )


def check_query(schema: Mapping[str, Any], detail: tuple[str, str] = REQUEST_NOT_VALID) -> None:
    """Like :func:`check_against` for the query string (``schema`` describes it as an object
    of text values): each failure names its ``parameter``, with the pointer ``""``."""
    failures = schema_validator(schema).validate(request.args.to_dict())
    if failures:
        lang = negotiated_language()
        raise Problem(
            "validation",
            detail,
            errors=[
                {
                    "pointer": "",
                    **({"parameter": failure.pointer.split("/")[1]} if failure.pointer else {}),
                    "message": failure.message(lang),
                }
                for failure in failures
            ],
        )
