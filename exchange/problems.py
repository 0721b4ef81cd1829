"""RFC 9457 problem details: every error the hub answers is ``application/problem+json``.

Each problem has a stable ``type`` (``https://puente.mx/problems/<kind>``), a title and detail in
the language the client asked for (Spanish or English), the request id, and for validation
problems the list of failures with their JSON pointers.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, json, request

PROBLEM_BASE = "https://puente.mx/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

#: kind -> (status, Spanish title, English title)
KINDS: dict[str, tuple[int, str, str]] = {
    "validation": (400, "Datos no válidos", "Invalid data"),
    "unauthenticated": (401, "Autenticación requerida", "Authentication required"),
    "forbidden": (403, "Acceso prohibido", "Forbidden"),
    "consent-denied": (403, "Consentimiento denegado", "Consent denied"),
    "not-found": (404, "No encontrado", "Not found"),
    "method-not-allowed": (405, "Método no permitido", "Method not allowed"),
    "not-acceptable": (406, "Formato no disponible", "Not acceptable"),
    "conflict": (409, "Conflicto", "Conflict"),
    "payload-too-large": (413, "Cuerpo demasiado grande", "Payload too large"),
    "unsupported-media-type": (415, "Tipo de contenido no admitido", "Unsupported media type"),
    "unsupported-schema": (422, "Esquema no admitido", "Unsupported schema"),
    "bad-signature": (401, "Firma no válida", "Bad signature"),
    "replayed": (409, "Solicitud repetida", "Replayed request"),
    "rate-limited": (429, "Demasiadas solicitudes", "Rate limited"),
    "internal": (500, "Error interno", "Internal error"),
    "unavailable": (503, "Servicio no disponible", "Service unavailable"),
}

#: Kinds answered under another kind's ``type``: API.md fixes the list of types clients switch
#: on, so a wrong method, like an unusable media type, is a request not valid as sent (the
#: route is there: "not found" would send a client looking for another address); the status,
#: the title and, for 405, the ``Allow`` header still say exactly what happened. Only a fault
#: of the hub itself (``internal``, ``unavailable``) has a type of its own outside that list.
PUBLISHED_TYPE = {
    "method-not-allowed": "validation",
    "not-acceptable": "validation",
    "unsupported-media-type": "validation",
}

#: HTTP status -> kind, for errors raised by Werkzeug or Flask themselves.
STATUS_KINDS = {
    400: "validation",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    429: "rate-limited",
    503: "unavailable",
}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem response.

    ``detail`` is a pair (Spanish, English) or a single string used for both.
    """

    def __init__(
        self,
        kind: str,
        detail: tuple[str, str] | str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown problem kind {kind!r}")
        super().__init__(kind, detail)
        self.kind = kind
        self.status = status or KINDS[kind][0]
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def negotiated_language() -> str:
    default = current_app.config.get("DEFAULT_LANGUAGE", "es")
    try:
        return request.accept_languages.best_match(["es", "en"], default=default) or default
    except RuntimeError:  # outside a request
        return default


def localized(spanish: str, english: str) -> str:
    """Pick the text in the language of the current request."""
    return spanish if negotiated_language() == "es" else english


def oauth_error_body(error: str, spanish: str, english: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 error as the hub's OAuth routes answer it: ``error``, the RFC's ASCII
    ``error_description`` (in English), and what a person reads, ``detail`` in the client's
    language, with the ``request_id`` (see ``exchange.oauth``)."""
    return {
        "error": error,
        "error_description": english.encode("ascii", "replace").decode("ascii"),
        "detail": localized(spanish, english),
        "request_id": g.get("request_id"),
    }


def problem_response(problem: Problem) -> Response:
    lang = negotiated_language()
    _status, title_es, title_en = KINDS[problem.kind]
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + PUBLISHED_TYPE.get(problem.kind, problem.kind),
        "title": title_es if lang == "es" else title_en,
        "status": problem.status,
    }
    if problem.detail is not None:
        detail = problem.detail
        body["detail"] = detail if isinstance(detail, str) else detail[0 if lang == "es" else 1]
    body["instance"] = request.path
    body["request_id"] = g.get("request_id")
    body.update(problem.extra)
    if body["type"].endswith("/validation") and "errors" not in body:
        # API.md: validation problems carry errors; one about the request as a whole has
        # the empty pointer.
        body["errors"] = [{"pointer": "", "message": body.get("detail") or body["title"]}]
    response = Response(
        json.dumps(body, ensure_ascii=False), status=problem.status, mimetype=PROBLEM_MEDIA_TYPE
    )
    response.headers["Content-Language"] = lang
    response.headers.extend(problem.headers)
    return response
