"""The push envelope: what ``POST /v1/records`` (and each line of a bulk push) carries.

``{"schema": "case-record/1", "local_id": "…", "child_id"?: "…", "data": {…}}`` and nothing
else. :func:`validate_envelope` checks the envelope and then ``data`` against the schema it
names, and reports every failure with a pointer into the envelope (``/data/child/sex``). A
schema the registry does not hold is the failure ``unsupported-schema`` at ``/schema``
(the hub answers it with the problem type of that name).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from schemas.errors import UnknownSchema
from schemas.registry import ID_PREFIX, SchemaRegistry, default_registry
from schemas.validation import ValidationFailure, sort_failures

UNSUPPORTED_SCHEMA = "unsupported-schema"
#: A local id is the agency's own case number: no leading or trailing white space (so "   "
#: is as empty as "", and "EXP-1 " cannot become a second record next to "EXP-1").
LOCAL_ID_PATTERN = r"^\S(?:[\s\S]*\S)?$"

ENVELOPE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"{ID_PREFIX}push-envelope/1",
    "x-title": {"es": "Envío de expediente", "en": "Record push"},
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "local_id", "data"],
    "properties": {
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "x-title": {"es": "esquema", "en": "schema"},
        },
        "local_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": LOCAL_ID_PATTERN,
            "x-title": {"es": "identificador local", "en": "local id"},
        },
        "child_id": {
            "$ref": f"{ID_PREFIX}common/1#/$defs/child_id",
            "x-title": {"es": "identificador de la niña, niño o adolescente", "en": "child id"},
        },
        "data": {"type": "object", "x-title": {"es": "datos", "en": "data"}},
    },
}


@dataclass(frozen=True)
class EnvelopeCheck:
    """The outcome of checking one envelope: the schema it names (when known) and failures."""

    schema: tuple[str, str] | None
    failures: list[ValidationFailure]

    @property
    def valid(self) -> bool:
        return not self.failures


def check_envelope(
    document: Any,
    registry: SchemaRegistry | None = None,
    *,
    allowed: Collection[str] | None = None,
) -> EnvelopeCheck:
    """Check a push envelope and its data. ``allowed`` limits the schema names accepted
    (the records endpoint takes ``{"case-record"}``); the version must always be given."""
    registry = registry or default_registry()
    failures = _readable_local_id(registry.compile(ENVELOPE_SCHEMA).validate(document), document)
    if not isinstance(document, dict) or not isinstance(document.get("schema"), str):
        return EnvelopeCheck(None, failures)
    try:
        name, version = registry.parse_schema_ref(document["schema"], require_version=True)
    except UnknownSchema as error:
        failures.append(
            ValidationFailure("/schema", UNSUPPORTED_SCHEMA, error.message_es, error.message_en)
        )
        return EnvelopeCheck(None, sort_failures(failures))
    if allowed is not None and name not in allowed:
        failures.append(
            ValidationFailure(
                "/schema",
                UNSUPPORTED_SCHEMA,
                f"aquí no se aceptan documentos «{name}»; se aceptan: {', '.join(sorted(allowed))}",
                f"'{name}' documents are not accepted here; accepted: {', '.join(sorted(allowed))}",
            )
        )
        return EnvelopeCheck((name, version), sort_failures(failures))
    data = document.get("data")
    if isinstance(data, dict):
        failures.extend(
            failure.prefixed("/data")
            for failure in registry.validator(name, version).validate(data)
        )
    return EnvelopeCheck((name, version), sort_failures(failures))


def _readable_local_id(failures: list[ValidationFailure], document: Any) -> list[ValidationFailure]:
    """Say what :data:`LOCAL_ID_PATTERN` means instead of showing it; an empty local id is
    told so by ``minLength`` alone."""
    readable = []
    for failure in failures:
        if failure.pointer == "/local_id" and failure.keyword == "pattern":
            if document.get("local_id") == "":
                continue
            failure = ValidationFailure(
                "/local_id",
                "pattern",
                "El campo «identificador local» (local_id) no puede estar en blanco ni empezar "
                "o terminar con espacios",
                "The field 'local id' (local_id) must not be blank, nor begin or end with "
                "white space",
            )
        readable.append(failure)
    return readable


def validate_envelope(
    document: Any,
    registry: SchemaRegistry | None = None,
    *,
    allowed: Collection[str] | None = None,
) -> list[ValidationFailure]:
    """Every failure of a push envelope, pointers into the envelope; ``[]`` when valid."""
    return check_envelope(document, registry, allowed=allowed).failures


def is_envelope(document: Any) -> bool:
    """Whether ``document`` looks like a push envelope: ``schema`` with ``data`` or ``local_id``
    (so an envelope that forgot its ``data`` is told so, not checked as a bare record)."""
    return (
        isinstance(document, dict)
        and "schema" in document
        and ("data" in document or "local_id" in document)
    )
