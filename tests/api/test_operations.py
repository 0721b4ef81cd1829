"""Liveness, readiness, metrics and the OpenAPI description."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from exchange import create_app


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_when_everything_is_there(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "migrations": "ok", "keys": "ok"}


def test_readyz_names_what_is_missing(tmp_path: Path) -> None:
    # A hub whose folder was never initialised: no keys, no schema.
    app = create_app({"INSTANCE_PATH": tmp_path, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == "ok"
    assert "puente init" in checks["migrations"]
    assert checks["keys"] == (
        "missing or unreadable: log, witness, data, signing (run 'puente init')"
    )
    # No path of the instance folder to whoever asks.
    assert str(tmp_path) not in response.get_data(as_text=True)
    spanish = app.test_client().get("/readyz", headers={"Accept-Language": "es"}).get_json()
    assert spanish["detail"].startswith("la base de datos está vacía: ejecute 'puente init'")
    assert (
        "faltan llaves del nodo o no se pueden leer (la del registro de auditoría, la de "
        in (spanish["detail"])
    )
    english = app.test_client().get("/readyz", headers={"Accept-Language": "en"}).get_json()
    assert english["detail"].startswith("the database is empty: run 'puente init'")


def test_readyz_is_not_ready_without_the_key_that_signs_notifications(app: Flask) -> None:
    # Without it the worker can sign no webhook or file drop: nothing would be delivered.
    Path(app.instance_path, "keys", "hub-signing.key").unlink()
    response = app.test_client().get("/readyz", headers={"Accept-Language": "en"})
    assert response.status_code == 503
    assert response.get_json()["checks"]["keys"] == (
        "missing or unreadable: signing (run 'puente init')"
    )
    assert "the notification signing key" in response.get_json()["detail"]


def test_readyz_when_the_database_is_unreachable(tmp_path: Path) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": tmp_path,
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
        }
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("unreachable")


def test_an_unreachable_database_is_503_to_retry_not_a_500(tmp_path: Path) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": tmp_path,
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
        }
    )
    client = app.test_client()
    read = client.get(
        "/v1/records/rec_x?purpose=case_management", headers={"Authorization": "Bearer x"}
    )
    assert read.status_code == 503
    assert read.get_json()["type"].endswith("/unavailable")
    assert read.headers["Retry-After"]
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic eDp5", "Accept-Language": "en"},
    )
    assert token.status_code == 503
    assert token.get_json()["error"] == "temporarily_unavailable"  # what OAuth clients read
    assert (
        token.get_json()["detail"] == "The hub cannot use its database right now; try again later."
    )


def test_a_database_without_tables_is_503_too(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": tmp_path, "DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"})
    response = app.test_client().get(
        "/v1/records/rec_x?purpose=case_management", headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 503


def test_metrics_count_requests(client: FlaskClient) -> None:
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "puente_http_requests_total" in text
    assert 'endpoint="ops.healthz"' in text


def test_invented_methods_add_no_series(client: FlaskClient) -> None:
    for method in ("FOOBAR1", "FOOBAR2", "M12345"):
        assert client.open("/x", method=method).status_code in (404, 405)
    text = client.get("/metrics").get_data(as_text=True)
    assert "FOOBAR" not in text and "M12345" not in text
    assert 'method="other"' in text


def test_metrics_content_type_names_its_charset_once(client: FlaskClient) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST

    response = client.get("/metrics")
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert response.headers["Content-Type"].count("charset") == 1


def test_openapi_is_a_valid_3_1_document(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_bearer_route_lists_429_and_every_body_413(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    operations = [
        (path, operation)
        for path, item in document["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]
    for path, operation in operations:
        if any("bearer" in scheme for scheme in operation.get("security", [])):
            assert "429" in operation["responses"], path
        if "requestBody" in operation:
            assert "413" in operation["responses"], path
    # (That they really answer so: tests/api/test_rate_limits.py, test_http_basics.py.)


def _openapi_path(rule: str) -> str:
    # Werkzeug's /v1/schemas/<name>/<version> is OpenAPI's /v1/schemas/{name}/{version}.
    import re

    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule)


def test_openapi_lists_exactly_the_routes_the_app_serves(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    served = {
        (_openapi_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert served - described == set(), "routes missing from openapi.yaml"
    assert described - served == set(), "openapi.yaml describes routes the app does not serve"


def test_two_requests_that_collide_are_a_409_to_try_again_not_an_outage(
    app: Flask, client: FlaskClient
) -> None:
    """PostgreSQL gives up one of two transactions that deadlock (an accept racing the
    withdrawal of the same transfer): the loser is told to check and try again."""
    from sqlalchemy.exc import OperationalError

    class Deadlock(Exception):
        sqlstate = "40P01"

    @app.get("/collide")
    def collide() -> None:
        raise OperationalError("UPDATE record_share …", {}, Deadlock("deadlock detected"))

    response = client.get("/collide", headers={"Accept-Language": "en"})
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("/conflict")
    assert "at the same time" in response.get_json()["detail"]
    assert "Retry-After" not in response.headers
