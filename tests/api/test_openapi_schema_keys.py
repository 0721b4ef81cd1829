"""The served ``/openapi.json`` has no schema broken by YAML: a plain description holding ", "
or ": " inside a flow mapping (``{type: string, description: A, b}``) is read as several keys,
so a schema gains keys such as ``"not before birth": null`` that no client understands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from exchange import create_app

#: Schema keywords whose value is data, not a schema: null is a fair value there.
DATA_KEYWORDS = frozenset({"example", "examples", "default", "const", "enum", "x-labels"})


def schemas_in(node: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object under ``node`` (a dict found under ``schema`` or ``schemas``, and
    each one nested in it), with its JSON pointer."""
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            if key not in DATA_KEYWORDS:
                yield from schemas_in(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schemas_in(value, f"{pointer}/{index}")


def served_schemas(document: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("schema", "schemas"):
                yield from schemas_in(value, f"{pointer}/{key}")
            elif key not in DATA_KEYWORDS:
                yield from served_schemas(value, f"{pointer}/{key}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from served_schemas(value, f"{pointer}/{index}")


def test_no_served_schema_has_a_null_key_or_a_property_name_with_a_space() -> None:
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": "/nonexistent", "DATABASE_URL": "sqlite://"}
    )
    document = app.test_client().get("/openapi.json").get_json()
    broken = []
    for pointer, schema in served_schemas(document):
        broken += [f"{pointer}/{key}" for key, value in schema.items() if value is None]
        properties = schema.get("properties")
        if isinstance(properties, dict):
            broken += [f"{pointer}/properties/{name}" for name in properties if " " in name]
    assert broken == []
