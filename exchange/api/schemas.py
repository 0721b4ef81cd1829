"""``/v1/schemas``: the shared schemas, for integrators and data officers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, json, jsonify, url_for

from exchange.problems import Problem
from schemas.errors import UnknownSchema
from schemas.registry import default_registry

bp = Blueprint("schemas", __name__, url_prefix="/v1/schemas")

SCHEMA_MEDIA_TYPE = "application/schema+json"


@bp.get("")
def list_schemas() -> Any:
    registry = default_registry()
    return jsonify(
        schemas=[
            {
                "name": info.name,
                "version": info.version,
                "id": info.id,
                "title": info.title,
                "latest": info.version == registry.latest(info.name),
                "href": url_for("schemas.show_schema", name=info.name, version=info.version),
            }
            for info in registry.list()
        ]
    )


@bp.get("/<name>/<version>")
def show_schema(name: str, version: str) -> Response:
    try:
        document = default_registry().document(name, version)
    except UnknownSchema as error:
        raise Problem("not-found", (error.message_es, error.message_en)) from error
    return Response(json.dumps(document, ensure_ascii=False), mimetype=SCHEMA_MEDIA_TYPE)
