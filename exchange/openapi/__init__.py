"""``/openapi.json``: the OpenAPI 3.1 description, the contract clients and tests rely on.

Written by hand, one YAML file per area beside this module (``base.yaml`` holds ``info``, the
operations routes and shared components; ``records.yaml``, ``oauth.yaml``… add their ``paths``
and ``components``). A test keeps the merged description equal to the routes the app serves.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, Flask, current_app, jsonify

bp = Blueprint("openapi", __name__)


@functools.cache
def _merged() -> dict[str, Any]:
    folder = resources.files("exchange.openapi")
    document: dict[str, Any] = yaml.safe_load(folder.joinpath("base.yaml").read_text("utf-8"))
    for part in sorted(folder.iterdir(), key=lambda p: p.name):
        if not part.name.endswith(".yaml") or part.name == "base.yaml":
            continue
        area: dict[str, Any] = yaml.safe_load(part.read_text("utf-8")) or {}
        document.setdefault("tags", []).extend(area.get("tags", []))
        for path, item in area.get("paths", {}).items():
            document["paths"].setdefault(path, {}).update(item)
        for section, entries in area.get("components", {}).items():
            document.setdefault("components", {}).setdefault(section, {}).update(entries)
        for name, item in area.get("webhooks", {}).items():
            document.setdefault("webhooks", {})[name] = item
    _add_common_refusals(document)
    return document


#: Routes that answer without the database: liveness, this description, the schemas (files
#: shipped with the code) and the portal's pages that only show them.
WITHOUT_DATABASE = frozenset(
    {
        "/healthz",
        "/openapi.json",
        "/v1/schemas",
        "/v1/schemas/{name}/{version}",
        "/",
        "/schemas",
        "/schemas/{name}/{version}",
    }
)


def _add_common_refusals(document: dict[str, Any]) -> None:
    """Answers every route of a kind may give, listed once here rather than in each file: a
    bearer route refuses a caller that keeps trying unknown tokens (429), every body has a
    size limit (413), and every route that uses the database answers 503 while it cannot
    (``unavailable``; RFC 6749's ``temporarily_unavailable`` under ``/oauth/``)."""
    for path, item in document["paths"].items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if any("bearer" in scheme for scheme in operation.get("security", [])):
                responses.setdefault("429", {"$ref": "#/components/responses/RateLimited"})
            if "requestBody" in operation:
                responses.setdefault("413", {"$ref": "#/components/responses/PayloadTooLarge"})
            if path not in WITHOUT_DATABASE:
                unavailable = "OAuthUnavailable" if path.startswith("/oauth/") else "Unavailable"
                responses.setdefault("503", {"$ref": f"#/components/responses/{unavailable}"})


def description(app: Flask) -> dict[str, Any]:
    document = copy.deepcopy(_merged())
    document["servers"] = [{"url": app.config["PUBLIC_URL"]}]
    return document


@bp.get("/openapi.json")
def openapi_json() -> Any:
    return jsonify(description(current_app))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
