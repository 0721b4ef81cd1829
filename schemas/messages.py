"""Readable validation messages, in Spanish and English, for each JSON Schema keyword.

Both validator implementations turn their errors into a :class:`RawError` (keyword, instance
path, offending value, the schema node holding the keyword); :func:`explain` turns one into
messages a case worker can act on without knowing JSON Schema: it names the field by its
``x-title`` and its JSON name, shows the value received, lists allowed codes with their
``x-labels`` and says which date form is expected. Any keyword without a dedicated message
falls back to the library's own (English) text.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.wording import (
    FORMAT_HINTS,
    PATTERN_HINTS,
    TYPE_NAMES,
    Path,
    Title,
    cap,
    codes,
    container,
    field_name,
    json_type,
    listing,
    shown,
    subject,
)

Explained = tuple[Path, str, str, str]  # instance path, keyword, message_es, message_en

#: The pattern of a text that must hold something besides spaces: said as such to a person,
#: never as the regular expression. (No schema describes its patterns in words, such as an
#: ``x-pattern-title``: other patterns are named by their definition or format, see below.)
NOT_BLANK = r"\S"


@dataclass
class RawError:
    """One validation error, independent of the library that found it."""

    keyword: str
    path: Path
    instance: Any
    node: Any  # the schema object that holds ``keyword`` (a bool for a false schema)
    library_message: str
    params: Mapping[str, Any] = field(default_factory=dict)
    branches: Sequence[Sequence[RawError]] = ()


@dataclass(frozen=True)
class MessageContext:
    """What messages need from the schema: field titles and names of shared definitions."""

    title_at: Callable[[Path], Title]
    definition_name: Callable[[Any], str | None] = lambda node: None


def explain(error: RawError, context: MessageContext) -> list[Explained]:
    """Messages for ``error``; several when one error concerns several fields."""
    keyword, path, value, node = error.keyword, error.path, error.instance, error.node
    title = context.title_at(path)
    parent_title = context.title_at(path[:-1]) if path and isinstance(path[-1], int) else None
    subj_es, subj_en = subject(path, title, parent_title)
    es_cap, en_cap = cap(subj_es), cap(subj_en)
    params = error.params

    def one(es: str, en: str, at: Path = path) -> list[Explained]:
        return [(at, keyword, es, en)]

    if keyword in {"required", "dependentRequired"}:
        name = str(params.get("property", ""))
        at = (*path, name)
        name_es, name_en = field_name(name, context.title_at(at) or _property_title(node, name))
        return one(f"falta el campo obligatorio {name_es}", f"required field {name_en} is missing")
    if keyword in {"additionalProperties", "unevaluatedProperties"}:
        allowed = sorted((node.get("properties") or {}) if isinstance(node, Mapping) else ())
        where_es, where_en = container(path, title)
        result = []
        for name in params.get("unexpected", ()):
            close = difflib.get_close_matches(str(name), allowed, n=1)
            hint_es = f"; ¿quiso decir «{close[0]}»?" if close else ""
            hint_en = f"; did you mean '{close[0]}'?" if close else ""
            list_es = f" (se admiten: {listing(allowed, 'es')})" if allowed and not close else ""
            list_en = f" (allowed: {listing(allowed, 'en')})" if allowed and not close else ""
            result.append(
                (
                    path,
                    keyword,
                    f"el campo «{name}» no existe en {where_es}{hint_es}{list_es}",
                    f"unknown field '{name}' in {where_en}{hint_en}{list_en}",
                )
            )
        return result
    got_es, got_en = TYPE_NAMES.get(json_type(value), ("?", "?"))
    if keyword == "type":
        expected = node.get("type") if isinstance(node, Mapping) else None
        types = expected if isinstance(expected, list) else [expected]
        want_es = " o ".join(TYPE_NAMES.get(str(each), (str(each), ""))[0] for each in types)
        want_en = " or ".join(TYPE_NAMES.get(str(each), ("", str(each)))[1] for each in types)
        return one(
            f"{es_cap} debe ser {want_es}; se recibió {got_es}: {shown(value)}",
            f"{en_cap} must be {want_en}; got {got_en}: {shown(value)}",
        )
    if keyword == "enum":
        options = node.get("enum", ()) if isinstance(node, Mapping) else ()
        codes_es, codes_en = codes(node, options)
        close = difflib.get_close_matches(
            str(value), [each for each in options if isinstance(each, str)], n=1, cutoff=0.7
        )
        hint_es = f"; ¿quiso decir {shown(close[0])}?" if close else ""
        hint_en = f"; did you mean {shown(close[0])}?" if close else ""
        return one(
            f"{es_cap} tiene un valor no permitido {shown(value)}{hint_es}; "
            f"valores permitidos: {codes_es}",
            f"{en_cap} has a value that is not allowed, {shown(value)}{hint_en}; "
            f"allowed values: {codes_en}",
        )
    if keyword == "const":
        want_es, want_en = codes(node, [node.get("const")] if isinstance(node, Mapping) else [])
        return one(
            f"{es_cap} debe ser exactamente {want_es}; se recibió {shown(value)}",
            f"{en_cap} must be exactly {want_en}; got {shown(value)}",
        )
    if keyword == "pattern":
        hint = PATTERN_HINTS.get(context.definition_name(node) or "")
        if hint is None and isinstance(node, Mapping) and node.get("format") in FORMAT_HINTS:
            hint = FORMAT_HINTS[node["format"]]
        if hint:
            return one(
                f"{es_cap} debe ser {hint[0]}; se recibió {shown(value)}",
                f"{en_cap} must be {hint[1]}; got {shown(value)}",
            )
        pattern = node.get("pattern") if isinstance(node, Mapping) else "?"
        if pattern == NOT_BLANK:
            if value == "" and isinstance(node, Mapping) and node.get("minLength") == 1:
                # The same failure as minLength's, under its keyword, so that the two merge
                # into one message (schemas.validation.sort_failures drops duplicates).
                return [(path, "minLength", *_not_empty(es_cap, en_cap))]
            return one(f"{es_cap} no puede estar en blanco", f"{en_cap} must not be blank")
        return one(
            f"{es_cap} no tiene la forma esperada (patrón {pattern}); se recibió {shown(value)}",
            f"{en_cap} does not have the expected form (pattern {pattern}); got {shown(value)}",
        )
    if keyword == "format":
        fmt = node.get("format") if isinstance(node, Mapping) else "?"
        want_es, want_en = FORMAT_HINTS.get(str(fmt), (f"del formato «{fmt}»", f"a valid '{fmt}'"))
        return one(
            f"{es_cap} debe ser {want_es}; se recibió {shown(value)}",
            f"{en_cap} must be {want_en}; got {shown(value)}",
        )
    limit = node.get(keyword) if isinstance(node, Mapping) else None
    size = len(value) if isinstance(value, (str, list, dict)) else None
    if keyword == "minLength":
        if limit == 1:
            return one(*_not_empty(es_cap, en_cap))
        return one(
            f"{es_cap} debe tener al menos {limit} caracteres (tiene {size})",
            f"{en_cap} must be at least {limit} characters long (it has {size})",
        )
    if keyword == "maxLength":
        return one(
            f"{es_cap} debe tener como máximo {limit} caracteres (tiene {size})",
            f"{en_cap} must be at most {limit} characters long (it has {size})",
        )
    bounds = {
        "minimum": ("mayor o igual que", "at least"),
        "maximum": ("menor o igual que", "at most"),
        "exclusiveMinimum": ("mayor que", "greater than"),
        "exclusiveMaximum": ("menor que", "less than"),
        "multipleOf": ("múltiplo de", "a multiple of"),
    }
    if keyword in bounds:
        rel_es, rel_en = bounds[keyword]
        return one(
            f"{es_cap} debe ser {rel_es} {limit}; se recibió {shown(value)}",
            f"{en_cap} must be {rel_en} {limit}; got {shown(value)}",
        )
    if keyword == "minItems":
        if limit == 1:
            return one(
                f"{es_cap} no puede ser una lista vacía", f"{en_cap} must not be an empty list"
            )
        return one(
            f"{es_cap} debe tener al menos {limit} elementos (tiene {size})",
            f"{en_cap} must have at least {limit} items (it has {size})",
        )
    if keyword == "maxItems":
        return one(
            f"{es_cap} admite como máximo {limit} elementos (tiene {size})",
            f"{en_cap} allows at most {limit} items (it has {size})",
        )
    if keyword in {"minProperties", "maxProperties"}:
        rel_es, rel_en = (
            ("al menos", "at least") if keyword == "minProperties" else ("como máximo", "at most")
        )
        return one(
            f"{es_cap} debe tener {rel_es} {limit} campos (tiene {size})",
            f"{en_cap} must have {rel_en} {limit} fields (it has {size})",
        )
    if keyword == "uniqueItems":
        return one(f"{es_cap} tiene elementos repetidos", f"{en_cap} has repeated items")
    if keyword in {"anyOf", "oneOf"}:
        return one(*_alternatives(error, context, subj_es, subj_en, es_cap, en_cap))
    if keyword in {"false", "not"}:
        return one(
            f"{es_cap} no está permitido aquí ({shown(value)})",
            f"{en_cap} is not allowed here ({shown(value)})",
        )
    if keyword == "contains":
        return one(
            f"{es_cap} debe contener al menos un elemento válido",
            f"{en_cap} must contain at least one valid item",
        )
    return one(
        f"{es_cap} no es válido (regla «{keyword}»): {error.library_message}",
        f"{en_cap} is not valid (rule '{keyword}'): {error.library_message}",
    )


def _not_empty(es_cap: str, en_cap: str) -> tuple[str, str]:
    return f"{es_cap} no puede estar vacío", f"{en_cap} must not be empty"


def _property_title(node: Any, name: str) -> Title:
    if isinstance(node, Mapping):
        sub = (node.get("properties") or {}).get(name)
        title = sub.get("x-title") if isinstance(sub, Mapping) else None
        if isinstance(title, Mapping):
            return title
    return None


def _alternatives(
    error: RawError, context: MessageContext, subj_es: str, subj_en: str, es_cap: str, en_cap: str
) -> tuple[str, str]:
    """anyOf / oneOf: name the fields to supply when the options are "one of these fields"."""
    options = error.node.get(error.keyword, ()) if isinstance(error.node, Mapping) else ()
    required_only = options and all(
        isinstance(option, Mapping) and set(option) == {"required"} for option in options
    )
    if error.keyword == "oneOf" and not any(error.branches):
        return (
            f"{es_cap} cumple más de una de las opciones posibles y debe cumplir exactamente una",
            f"{en_cap} matches more than one of the possible options and must match exactly one",
        )
    if required_only:
        names_es, names_en = [], []
        for option in options:
            group = [(*error.path, name) for name in option["required"] if isinstance(name, str)]
            titled = [field_name(str(at[-1]), context.title_at(at)) for at in group]
            names_es.append(" y ".join(each[0] for each in titled))
            names_en.append(" and ".join(each[1] for each in titled))
        how_es = "al menos uno" if error.keyword == "anyOf" else "exactamente uno"
        how_en = "at least one" if error.keyword == "anyOf" else "exactly one"
        return (
            f"{es_cap} debe incluir {how_es} de estos datos: {', '.join(names_es)}",
            f"{en_cap} must include {how_en} of: {', '.join(names_en)}",
        )
    details_es, details_en = [], []
    for number, branch in enumerate(error.branches[:3], start=1):
        for raw in branch[:1]:
            for _, _, es, en in explain(raw, context)[:1]:
                details_es.append(f"opción {number}: {es}")
                details_en.append(f"option {number}: {en}")
    tail_es = f" ({'; '.join(details_es)})" if details_es else ""
    tail_en = f" ({'; '.join(details_en)})" if details_en else ""
    return (
        f"{es_cap} no cumple ninguna de las opciones posibles{tail_es}",
        f"{en_cap} does not match any of the possible options{tail_en}",
    )
