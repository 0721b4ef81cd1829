"""Puente's shared JSON Schemas (draft 2020-12): registry, validation, messages, parsing.

Pure: no I/O beyond reading the package's own schema files, no Flask, no SQLAlchemy.

    >>> from schemas import default_registry
    >>> validator = default_registry().validator("case-record", 1)
    >>> validator.validate({"child": {}})  # doctest: +SKIP
    [ValidationFailure(pointer='/case', keyword='required', ...), ...]
"""

from schemas.compat import Incompatibility, check_compatibility, require_compatible
from schemas.envelope import (
    ENVELOPE_SCHEMA,
    UNSUPPORTED_SCHEMA,
    EnvelopeCheck,
    check_envelope,
    is_envelope,
    validate_envelope,
)
from schemas.errors import DocumentError, IncompatibleSchema, SchemaError, UnknownSchema
from schemas.fields import FieldInfo
from schemas.parsing import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    bounded_lines,
    iter_ndjson,
    parse_document,
)
from schemas.registry import SchemaInfo, SchemaRegistry, default_registry
from schemas.validation import ReferenceValidator, ValidationFailure, Validator

__all__ = [
    "ENVELOPE_SCHEMA",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "UNSUPPORTED_SCHEMA",
    "DocumentError",
    "EnvelopeCheck",
    "FieldInfo",
    "Incompatibility",
    "IncompatibleSchema",
    "ReferenceValidator",
    "SchemaError",
    "SchemaInfo",
    "SchemaRegistry",
    "UnknownSchema",
    "ValidationFailure",
    "Validator",
    "bounded_lines",
    "check_compatibility",
    "check_envelope",
    "default_registry",
    "is_envelope",
    "iter_ndjson",
    "parse_document",
    "require_compatible",
    "validate_envelope",
]
