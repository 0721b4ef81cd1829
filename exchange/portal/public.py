"""The pages anyone may read: what Puente is, and the shared schemas field by field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import render_template

from consent import CATEGORY_LABELS
from exchange.portal.blueprint import bp, page_language
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
