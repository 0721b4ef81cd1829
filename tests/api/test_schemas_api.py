"""Integrators fetch the shared schemas from the hub."""

from __future__ import annotations

from flask.testing import FlaskClient

from schemas.registry import default_registry


def test_list_names_every_schema_and_version(client: FlaskClient) -> None:
    body = client.get("/v1/schemas").get_json()
    listed = {(item["name"], item["version"]) for item in body["schemas"]}
    expected = {(info.name, info.version) for info in default_registry().list()}
    assert listed == expected
    assert ("case-record", "1") in listed
    case_record = next(item for item in body["schemas"] if item["name"] == "case-record")
    assert case_record["title"]["es"] and case_record["title"]["en"]
    assert case_record["href"] == "/v1/schemas/case-record/1"


def test_show_returns_the_json_schema(client: FlaskClient) -> None:
    response = client.get("/v1/schemas/case-record/1")
    assert response.status_code == 200
    assert response.mimetype == "application/schema+json"
    document = response.get_json(force=True)
    assert document["$id"] == "https://schemas.puente.mx/case-record/1"
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_unknown_schema_or_version_is_not_found(client: FlaskClient) -> None:
    for path in ("/v1/schemas/case-record/99", "/v1/schemas/no-such-schema/1"):
        response = client.get(path, headers={"Accept-Language": "en"})
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        assert response.get_json(force=True)["detail"]
