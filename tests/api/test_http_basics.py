"""Every error is an RFC 9457 problem; every response has a request id; bodies are limited."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from exchange.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, Problem


def assert_problem(response, status: int, kind: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    body = response.get_json(force=True)
    assert body["type"] == PROBLEM_BASE + kind
    assert body["status"] == status
    assert body["title"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body  # type: ignore[no-any-return]


def test_unknown_route_is_a_not_found_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/no/such/route"), 404, "not-found")


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/v1/schemas")
    assert_problem(response, 405, "validation")  # API.md's list of types has no 405
    assert "GET" in response.headers["Allow"]


def test_every_response_has_a_request_id(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert first and second and first != second


def test_a_well_formed_client_request_id_is_kept(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": "dif-chiapas-0001"})
    assert response.headers["X-Request-Id"] == "dif-chiapas-0001"
    forged = client.get("/healthz", headers={"X-Request-Id": "bad id <script>"})
    assert forged.headers["X-Request-Id"] != "bad id <script>"


def test_titles_follow_accept_language(client: FlaskClient) -> None:
    es = assert_problem(client.get("/nada", headers={"Accept-Language": "es-MX"}), 404, "not-found")
    en = assert_problem(client.get("/nada", headers={"Accept-Language": "en"}), 404, "not-found")
    assert es["title"] == "No encontrado"
    assert en["title"] == "Not found"


def _echo_app(app: Flask) -> Flask:
    from exchange.httpbasics import require_json

    @app.post("/_test/echo")
    def echo():  # type: ignore[no-untyped-def]
        return {"received": require_json()}

    @app.get("/_test/boom")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail: password=hunter2")

    @app.get("/_test/conflict")
    def conflict():  # type: ignore[no-untyped-def]
        raise Problem("conflict", ("ya existe", "already exists"))

    return app


def test_malformed_json_is_a_validation_problem(app: Flask) -> None:
    client = _echo_app(app).test_client()
    body = assert_problem(
        client.post("/_test/echo", data=b'{"a": ', content_type="application/json"),
        400,
        "validation",
    )
    assert body["errors"][0]["pointer"] == ""


def test_invalid_utf8_is_a_validation_problem(app: Flask) -> None:
    client = _echo_app(app).test_client()
    response = client.post("/_test/echo", data=b'{"a": "\xff"}', content_type="application/json")
    assert_problem(response, 400, "validation")


def test_deep_nesting_is_refused_clearly(app: Flask) -> None:
    client = _echo_app(app).test_client()
    deep = b"[" * 10_000 + b"]" * 10_000
    response = client.post("/_test/echo", data=deep, content_type="application/json")
    assert_problem(response, 400, "validation")


def test_wrong_content_type_is_415(app: Flask) -> None:
    client = _echo_app(app).test_client()
    response = client.post("/_test/echo", data="a=1", content_type="text/plain")
    body = assert_problem(response, 415, "validation")
    # API.md: validation problems carry errors; this one is about the request as a whole.
    assert body["errors"] == [{"pointer": "", "message": body["detail"]}]


def test_body_over_the_limit_is_413(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    client = _echo_app(app).test_client()
    response = client.post("/_test/echo", data=b" " * 4096, content_type="application/json")
    body = assert_problem(response, 413, "payload-too-large")
    assert body["limit"] == 1024


def test_unexpected_errors_leak_nothing(app: Flask) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = _echo_app(app).test_client()
    response = client.get("/_test/boom")
    body = assert_problem(response, 500, "internal")
    assert "hunter2" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["detail"]


def test_raised_problems_keep_their_kind(app: Flask) -> None:
    client = _echo_app(app).test_client()
    body = assert_problem(
        client.get("/_test/conflict", headers={"Accept-Language": "en"}), 409, "conflict"
    )
    assert body["detail"] == "already exists"


def test_every_client_problem_type_is_one_api_md_lists() -> None:
    from exchange.problems import KINDS, PUBLISHED_TYPE

    api_md_types = {
        "validation", "unauthenticated", "forbidden", "consent-denied", "not-found", "conflict",
        "payload-too-large", "rate-limited", "bad-signature", "replayed", "unsupported-schema",
    }  # fmt: skip
    for kind, (status, _es, _en) in KINDS.items():
        if status < 500:
            assert PUBLISHED_TYPE.get(kind, kind) in api_md_types, kind


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def test_api_and_portal_answers_carry_the_security_headers(client: FlaskClient) -> None:
    # The portal has no inline script or style: its one stylesheet comes from the hub itself.
    portal = client.get("/")
    assert portal.status_code == 200 and portal.mimetype == "text/html"
    assert "<script" not in portal.get_data(as_text=True)
    for response in (client.get("/v1/schemas"), portal, client.get("/no/such/route")):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.path, name)
        # Over plain http, HSTS means nothing (and must not pin a development hub to https).
        assert "Strict-Transport-Security" not in response.headers


def test_hsts_only_when_the_request_came_over_https(client: FlaskClient) -> None:
    # Behind a proxy, gunicorn (FORWARDED_ALLOW_IPS) makes a forwarded https request secure.
    for path in ("/v1/schemas", "/"):
        secure = client.get(path, base_url="https://puente.example")
        assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    spoofed = client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in spoofed.headers
