"""Validating documents: a fast validator for the hot path and a reference one to check it.

:class:`Validator` answers :meth:`~Validator.is_valid` with ``jsonschema_rs`` (compiled once,
reused, from an equivalent copy rewritten for speed: :mod:`schemas.fastpath`), and lists
:meth:`~Validator.errors` — every error, each with an RFC 6901 JSON pointer and a message in
Spanish and English, found on the schema as written. :class:`ReferenceValidator` does the same with
``jsonschema`` (``Draft202012Validator`` over a ``referencing`` registry); it is slower and
exists to cross-check the fast one (tests/unit/schemas/test_differential.py). Both use the
same format functions and ECMA-262 pattern semantics (see :mod:`schemas.formats`).

Pointers are instance locations as JSON Schema reports them: an error about a value points
at the value (``/child/date_of_birth``); a missing required field or an unknown field points
at the object that lacks or has it (``/child``), and the message names the field.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import jsonschema
import jsonschema_rs
from jsonschema.validators import extend

from schemas.fastpath import fast_copy
from schemas.fields import collect_fields, find_field, pointer_from_tokens, resolve_uri
from schemas.formats import FORMATS, ecma_pattern
from schemas.messages import MessageContext, RawError, explain
from schemas.wording import Path

if TYPE_CHECKING:
    from schemas.registry import SchemaRegistry


@dataclass(frozen=True)
class ValidationFailure:
    """One reason a document is invalid: where (JSON pointer), which rule, and what to fix."""

    pointer: str
    keyword: str
    message_es: str
    message_en: str

    def message(self, lang: str = "en") -> str:
        return self.message_es if lang == "es" else self.message_en

    def prefixed(self, prefix: str) -> ValidationFailure:
        """The same failure inside a wrapper: ``"/data"`` + ``"/child/sex"``."""
        return ValidationFailure(
            prefix + self.pointer, self.keyword, self.message_es, self.message_en
        )

    def to_json(self, lang: str | None = None) -> dict[str, str]:
        """``{pointer, keyword, message}`` in ``lang``, or both messages when no ``lang``."""
        if lang is None:
            return {
                "pointer": self.pointer,
                "keyword": self.keyword,
                "message_es": self.message_es,
                "message_en": self.message_en,
            }
        return {"pointer": self.pointer, "keyword": self.keyword, "message": self.message(lang)}


def _pointer_key(failure: ValidationFailure) -> tuple[Any, ...]:
    # Numeric tokens sort as numbers, so /items/2 comes before /items/10.
    tokens = tuple(
        (0, int(token), "") if token.isdigit() else (1, 0, token)
        for token in failure.pointer.split("/")[1:]
    )
    return (tokens, failure.keyword, failure.message_en)


def sort_failures(failures: Iterable[ValidationFailure]) -> list[ValidationFailure]:
    """Sorted by pointer (then keyword), duplicates removed."""
    return sorted(set(failures), key=_pointer_key)


def _without_redundant_format(failures: list[ValidationFailure]) -> list[ValidationFailure]:
    # "15/03/2009" fails both the date pattern and the date format; the pattern's message
    # (which says the expected form) is the one to show.
    with_pattern = {failure.pointer for failure in failures if failure.keyword == "pattern"}
    if not with_pattern:
        return failures
    return [f for f in failures if not (f.keyword == "format" and f.pointer in with_pattern)]


def _without_redundant_length(raw_errors: list[RawError]) -> list[RawError]:
    # A CURP of 7 characters fails its length and its pattern; for a value of one fixed length
    # (CURP, SHA-256, a country or municipality code) the pattern's message names that length
    # and the expected form, so it is the one to show.
    fixed = {
        raw.path
        for raw in raw_errors
        if raw.keyword == "pattern"
        and isinstance(raw.node, Mapping)
        and raw.node.get("minLength") is not None
        and raw.node.get("minLength") == raw.node.get("maxLength")
    }
    if not fixed:
        return raw_errors
    return [
        raw
        for raw in raw_errors
        if not (raw.keyword in {"minLength", "maxLength"} and raw.path in fixed)
    ]


class DocumentValidator(Protocol):
    """What both implementations offer."""

    def is_valid(self, document: Any) -> bool: ...

    def errors(self, document: Any) -> list[ValidationFailure]: ...

    def validate(self, document: Any) -> list[ValidationFailure]: ...


class _Base:
    """The schema, its lookups and message context, shared by both implementations."""

    def __init__(self, schema: Mapping[str, Any], registry: SchemaRegistry) -> None:
        self.schema = schema
        self.registry = registry
        own_id = str(schema.get("$id", ""))

        def lookup(uri: str) -> Mapping[str, Any]:
            return schema if uri in (own_id, "") else registry.by_id(uri)

        self._lookup: Callable[[str], Mapping[str, Any]] = lookup
        self._fields: Mapping[str, Any] | None = None

    @property
    def context(self) -> MessageContext:
        if self._fields is None:
            self._fields = collect_fields(self.schema, self._lookup)
        fields = self._fields

        def title_at(path: Path) -> Any:
            info = find_field(fields, path)
            return info.title if info else None

        return MessageContext(title_at, self.registry.definition_name)

    def _explain(self, raw_errors: Iterable[RawError]) -> list[ValidationFailure]:
        context = self.context
        failures: list[ValidationFailure] = []
        for raw in _without_redundant_length(list(raw_errors)):
            explained = explain(raw, context) or [
                (raw.path, raw.keyword, raw.library_message, raw.library_message)
            ]
            failures.extend(
                ValidationFailure(pointer_from_tokens(path), keyword, es, en)
                for path, keyword, es, en in explained
            )
        return sort_failures(_without_redundant_format(failures))

    def validate(self, document: Any) -> list[ValidationFailure]:
        """``[]`` when valid (the fast answer), else every failure."""
        if self.is_valid(document):
            return []
        return self.errors(document)

    def is_valid(self, document: Any) -> bool:
        raise NotImplementedError

    def errors(self, document: Any) -> list[ValidationFailure]:
        raise NotImplementedError


class Validator(_Base):
    """The fast validator (``jsonschema_rs``) of one schema, compiled once and reusable."""

    def __init__(self, schema: Mapping[str, Any], registry: SchemaRegistry) -> None:
        super().__init__(schema, registry)
        # The yes/no answer comes from an equivalent copy rewritten for speed (see
        # schemas.fastpath); errors come from the schema as written, compiled on first need,
        # so their locations and keywords are the document's own.
        self._fast = jsonschema_rs.validator_for(
            dict(fast_copy(schema)),
            registry=registry.rs_fast_registry,
            validate_formats=True,
            ignore_unknown_formats=False,
        )
        self.is_valid = self._fast.is_valid  # type: ignore[method-assign,assignment]
        self._as_written: jsonschema_rs.Validator | None = None
        self._reference: ReferenceValidator | None = None

    @property
    def _compiled(self) -> jsonschema_rs.Validator:
        if self._as_written is None:
            self._as_written = jsonschema_rs.validator_for(
                dict(self.schema),
                registry=self.registry.rs_registry,
                validate_formats=True,
                ignore_unknown_formats=False,
            )
        return self._as_written

    @property
    def reference(self) -> ReferenceValidator:
        """The ``jsonschema`` validator of the same schema."""
        if self._reference is None:
            self._reference = ReferenceValidator(self.schema, self.registry)
        return self._reference

    def errors(self, document: Any) -> list[ValidationFailure]:
        return self._explain(self._raw(error) for error in self._compiled.iter_errors(document))

    def _raw(self, error: jsonschema_rs.ValidationError) -> RawError:
        kind = error.kind
        keyword = {"falseSchema": "false"}.get(kind.name, kind.name)
        schema_path = list(error.schema_path)
        if keyword == "required" and schema_path[-1:] == ["dependentRequired"]:
            keyword = "dependentRequired"
        node_path = schema_path if keyword == "false" else schema_path[:-1]
        location = error.absolute_keyword_location
        node: Any
        if location is not None and keyword != "propertyNames":
            document_uri, _, fragment = location.partition("#")
            tokens = fragment.split("/")
            uri = document_uri + "#" + "/".join(tokens if keyword == "false" else tokens[:-1])
            node = resolve_uri(self._lookup, uri)
        else:
            node = self.schema
            for token in node_path:
                node = node[token]
        params: dict[str, Any] = {}
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            params["property"] = kind.property
        elif isinstance(
            kind,
            (
                jsonschema_rs.ValidationErrorKind.AdditionalProperties,
                jsonschema_rs.ValidationErrorKind.UnevaluatedProperties,
            ),
        ):
            params["unexpected"] = list(kind.unexpected)
        branches: list[list[RawError]] = []
        if keyword in {"anyOf", "oneOf"}:
            branches = [[self._raw(each) for each in branch] for branch in kind.context]  # type: ignore[attr-defined]
        return RawError(
            keyword,
            tuple(error.instance_path),
            error.instance,
            node,
            error.message,
            params,
            branches,
        )


def _ecma_pattern_keyword(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _properties_keyword(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    # jsonschema reports a value under a ``false`` property schema without its path; say
    # where it is, as jsonschema_rs does.
    if not validator.is_type(instance, "object"):
        return
    for name, subschema in properties.items():
        if name not in instance:
            continue
        if subschema is False:
            yield jsonschema.ValidationError(
                f"False schema does not allow {instance[name]!r}",
                validator=None,
                validator_value=None,
                instance=instance[name],
                schema=False,
                path=(name,),
            )
        else:
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)


ReferenceDraft202012 = extend(
    jsonschema.Draft202012Validator,
    {"pattern": _ecma_pattern_keyword, "properties": _properties_keyword},
)
FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
for _name, _function in FORMATS.items():
    FORMAT_CHECKER.checks(_name)(_function)

_REQUIRED = re.compile(r"^(?P<property>.*) is a required property$", re.DOTALL)
_DEPENDENCY = re.compile(r"^(?P<property>.*) is a dependency of .*$", re.DOTALL)


class ReferenceValidator(_Base):
    """The reference implementation: ``jsonschema`` ``Draft202012Validator``."""

    def __init__(self, schema: Mapping[str, Any], registry: SchemaRegistry) -> None:
        super().__init__(schema, registry)
        from schemas.registry import without_dialect

        self._compiled = ReferenceDraft202012(
            without_dialect(schema),
            registry=registry.referencing_registry,
            format_checker=FORMAT_CHECKER,
        )

    def is_valid(self, document: Any) -> bool:
        return bool(self._compiled.is_valid(document))

    def errors(self, document: Any) -> list[ValidationFailure]:
        return self._explain(self._raw(error) for error in self._compiled.iter_errors(document))

    def _raw(self, error: jsonschema.ValidationError) -> RawError:
        keyword = str(error.validator) if error.validator is not None else "false"
        node = error.schema
        params: dict[str, Any] = {}
        if keyword in {"required", "dependentRequired"}:
            match = (_REQUIRED if keyword == "required" else _DEPENDENCY).match(error.message)
            if match:
                params["property"] = ast.literal_eval(match["property"])
        elif keyword == "additionalProperties" and isinstance(error.instance, Mapping):
            known = node.get("properties") or {}
            patterns = [ecma_pattern(each) for each in node.get("patternProperties") or {}]
            params["unexpected"] = [
                name
                for name in error.instance
                if name not in known and not any(each.search(name) for each in patterns)
            ]
        branches: list[list[RawError]] = []
        if keyword in {"anyOf", "oneOf"}:
            grouped: dict[int, list[RawError]] = {}
            for each in error.context or ():
                grouped.setdefault(int(each.relative_schema_path[0]), []).append(self._raw(each))
            branches = [grouped[index] for index in sorted(grouped)]
        return RawError(
            keyword,
            tuple(error.absolute_path),
            error.instance,
            node,
            error.message,
            params,
            branches,
        )
