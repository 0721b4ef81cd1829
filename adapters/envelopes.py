"""Building and checking push envelopes, for every adapter.

An adapter that maps a foreign format builds the shared document (``data``) and calls
:func:`check_data`; the native adapters read whole envelopes and call :func:`check_envelope`.
Both turn :class:`schemas.validation.ValidationFailure` into :class:`~adapters.base.Problem`.
Validation uses the fast compiled validator and explains failures only for invalid documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapters.base import Problem
from schemas import envelope as envelope_schema
from schemas.registry import SchemaRegistry, default_registry
from schemas.validation import ValidationFailure, Validator


def envelope(schema: str, local_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The push envelope ``POST /v1/records`` takes."""
    return {"schema": schema, "local_id": local_id, "data": data}


def problems_from(failures: Iterable[ValidationFailure]) -> tuple[Problem, ...]:
    return tuple(Problem(f.pointer, f.message_es, f.message_en) for f in failures)


def check_envelope(document: Any, registry: SchemaRegistry | None = None) -> tuple[Problem, ...]:
    """Every problem of a whole push envelope, pointers into the envelope (``/data/child``)."""
    return problems_from(envelope_schema.validate_envelope(document, registry))


def data_validator(schema: str, registry: SchemaRegistry | None = None) -> Validator:
    """The compiled validator of ``schema`` (``"case-record/1"``); raises
    :class:`~schemas.errors.UnknownSchema` naming the schemas that exist."""
    registry = registry or default_registry()
    name, version = registry.parse_schema_ref(schema, require_version=True)
    return registry.validator(name, version)


def check_data(validator: Validator, data: Any) -> tuple[Problem, ...]:
    """Every problem of ``data`` against the validator's schema, pointers into ``data``."""
    if validator.is_valid(data):
        return ()
    return problems_from(validator.errors(data))
