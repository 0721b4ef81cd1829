"""A faster, equivalent copy of a schema document for the fast validator's yes/no answer.

``jsonschema_rs`` spends most of a validation on a few keywords: a ``pattern`` costs about as
much as twenty ``type`` checks, and a ``required`` or an ``anyOf`` much more than the
``minProperties`` that can replace it. :func:`fast_copy` rewrites a document into one that
accepts **exactly the same instances** (given that formats are asserted, as both validators
do) but is cheaper to evaluate. The published documents are untouched, and only
:meth:`schemas.validation.Validator.is_valid` uses the copy: errors are still found, located
and explained on the original, so pointers, keywords and messages do not change.

Each rewrite holds for every instance, not just for the shipped examples:

- annotations (``title``, ``description``, ``$comment``, ``examples``, ``x-*``) go: they
  never affect validity;
- ``pattern: ^\\d{4}-\\d{2}-\\d{2}$`` next to ``format: date`` goes: an RFC 3339 full-date
  already has that shape, so the pattern rejects nothing the format accepts
  (tests/unit/schemas/test_fastpath.py checks this against ``jsonschema_rs`` itself);
- ``type: string`` next to an ``enum`` (or ``const``) of strings goes: the enum already
  rejects every other type;
- in an object with ``additionalProperties: false`` and no ``patternProperties``, whose keys
  can therefore only be the names in ``properties``:
  an ``anyOf`` of one-name ``required`` branches naming *every* property becomes
  ``minProperties: 1`` ("at least one of them" = "at least one key"), and a ``required``
  listing every property becomes ``minProperties: <count>``.

Documents using keywords whose meaning depends on where subschemas sit (``unevaluated*``,
``$dynamicRef``, ``$recursiveRef``) are returned as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default"})
DATE_SHAPE = "^\\d{4}-\\d{2}-\\d{2}$"

# Keywords whose value is a schema, a list of schemas, or a map of name -> schema.
_SCHEMA = frozenset(
    {
        "additionalProperties",
        "items",
        "contains",
        "not",
        "if",
        "then",
        "else",
        "propertyNames",
        "additionalItems",
    }
)
_SCHEMA_LIST = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAP = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_POSITION_DEPENDENT = frozenset(
    {"unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"}
)


def fast_copy(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """An equivalent, cheaper copy of ``document`` (or ``document`` itself when it uses a
    keyword the rewrites do not reason about)."""
    if _uses(document, _POSITION_DEPENDENT):
        return document
    rewritten = _rewrite(document)
    assert isinstance(rewritten, Mapping)
    return rewritten


def _uses(node: Any, keywords: frozenset[str]) -> bool:
    if isinstance(node, Mapping):
        return any(key in keywords for key in node) or any(
            _uses(value, keywords) for value in node.values()
        )
    if isinstance(node, list):
        return any(_uses(item, keywords) for item in node)
    return False


def _rewrite(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return schema  # true / false
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATIONS or key.startswith("x-"):
            continue
        if key in _SCHEMA:
            out[key] = _rewrite(value)
        elif key in _SCHEMA_LIST and isinstance(value, list):
            out[key] = [_rewrite(item) for item in value]
        elif key in _SCHEMA_MAP and isinstance(value, Mapping):
            out[key] = {name: _rewrite(item) for name, item in value.items()}
        else:
            out[key] = value
    _drop_date_shape(out)
    _drop_type_implied_by_enum(out)
    _closed_object_counts(out)
    return out


def _drop_date_shape(schema: dict[str, Any]) -> None:
    if schema.get("format") == "date" and schema.get("pattern") == DATE_SHAPE:
        del schema["pattern"]


def _drop_type_implied_by_enum(schema: dict[str, Any]) -> None:
    if "enum" in schema:
        values = schema["enum"]
    elif "const" in schema:
        values = [schema["const"]]
    else:
        return
    if (
        schema.get("type") == "string"
        and isinstance(values, list)
        and values
        and all(isinstance(value, str) for value in values)
    ):
        del schema["type"]


def _closed_object_counts(schema: dict[str, Any]) -> None:
    names = schema.get("properties")
    if (
        schema.get("type") != "object"
        or schema.get("additionalProperties") is not False
        or "patternProperties" in schema
        or not isinstance(names, Mapping)
        or not names
    ):
        return
    minimum = schema.get("minProperties")
    if minimum is not None and (type(minimum) is not int):
        return  # 2.0 or a wrong type: leave it to the validator as written
    every = set(names)
    least = 0
    branches = schema.get("anyOf")
    if isinstance(branches, list) and branches and all(_requires_one(b) for b in branches):
        if {branch["required"][0] for branch in branches} == every:
            del schema["anyOf"]
            least = 1
    required = schema.get("required")
    if isinstance(required, list) and set(required) == every:
        del schema["required"]
        least = len(every)
    if least:
        schema["minProperties"] = least if minimum is None else max(least, minimum)


def _requires_one(branch: Any) -> bool:
    return (
        isinstance(branch, Mapping)
        and set(branch) == {"required"}
        and isinstance(branch["required"], list)
        and len(branch["required"]) == 1
    )
