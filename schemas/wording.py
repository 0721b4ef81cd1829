"""Wording shared by the validation messages: hints per shared definition and format, type
names, and how a field is named in a sentence (by its ``x-title`` and its JSON name).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Path = tuple[str | int, ...]
Title = Mapping[str, str] | None

MAX_LISTED = 10
MAX_SHOWN_VALUE = 60


# Hints for values that must match the pattern of a shared definition in common/1.
PATTERN_HINTS: dict[str, tuple[str, str]] = {
    "date": (
        "una fecha con la forma AAAA-MM-DD (por ejemplo 2024-03-15)",
        "a date in the form YYYY-MM-DD (for example 2024-03-15)",
    ),
    "date_time": (
        "una fecha y hora como 2024-03-15T10:30:00-06:00 (con zona horaria o Z)",
        "a date and time such as 2024-03-15T10:30:00-06:00 (with a time zone or Z)",
    ),
    "partial_date": (
        "una fecha AAAA, AAAA-MM o AAAA-MM-DD (por ejemplo 2009 o 2009-05)",
        "a date as YYYY, YYYY-MM or YYYY-MM-DD (for example 2009 or 2009-05)",
    ),
    "country_code": (
        "un código de país de dos letras mayúsculas (ISO 3166-1), como MX, GT o HN",
        "a two-letter upper-case country code (ISO 3166-1) such as MX, GT or HN",
    ),
    "language_code": (
        "un código de idioma ISO 639 en minúsculas, como es, en, mam o hat",
        "a lower-case ISO 639 language code such as es, en, mam or hat",
    ),
    "municipality_code": (
        "una clave de municipio INEGI de cinco dígitos, como 07089 (Tapachula)",
        "a five-digit INEGI municipality key such as 07089 (Tapachula)",
    ),
    "curp": (
        "una CURP de 18 caracteres en mayúsculas, como GOMA090315MCSNRRA5",
        "an 18-character upper-case CURP such as GOMA090315MCSNRRA5",
    ),
    "unhcr_number": (
        "un número ACNUR como 487-21C01234 o MEX-23C012345",
        "a UNHCR number such as 487-21C01234 or MEX-23C012345",
    ),
    "agency_id": (
        "un identificador de agencia como mx.chp.dif (minúsculas separadas por puntos)",
        "an agency id such as mx.chp.dif (lower-case parts separated by dots)",
    ),
    "sha256": (
        "64 caracteres hexadecimales en minúsculas (SHA-256)",
        "64 lower-case hexadecimal characters (SHA-256)",
    ),
    "phone": (
        "un teléfono con dígitos, espacios, guiones o paréntesis, opcionalmente con + al inicio",
        "a phone number of digits, spaces, dashes or brackets, optionally starting with +",
    ),
    "email": ("un correo como nombre@dominio.mx", "an email address such as name@domain.mx"),
}
for _identifier in ("person_id", "child_id", "object_id", "comar_case_number"):
    PATTERN_HINTS[_identifier] = (
        "un identificador de letras y números (se admiten . _ : - /), sin espacios",
        "an identifier of letters and digits (. _ : - / allowed), without spaces",
    )

FORMAT_HINTS: dict[str, tuple[str, str]] = {
    "date": (
        "una fecha válida del calendario AAAA-MM-DD",
        "a valid calendar date YYYY-MM-DD",
    ),
    "date-time": (
        "una fecha y hora válidas (RFC 3339), como 2024-03-15T10:30:00-06:00",
        "a valid date and time (RFC 3339) such as 2024-03-15T10:30:00-06:00",
    ),
    "email": ("un correo electrónico válido", "a valid email address"),
}

TYPE_NAMES = {
    "string": ("un texto", "text"),
    "integer": ("un número entero", "a whole number"),
    "number": ("un número", "a number"),
    "boolean": ("verdadero o falso (true/false)", "true or false"),
    "object": ("un objeto {…}", "an object {…}"),
    "array": ("una lista [...]", "a list [...]"),
    "null": ("null", "null"),
}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shown(value: Any) -> str:
    """The value as JSON, cut to a readable length."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


def _lower_first(text: str) -> str:
    # "Fecha de nacimiento" → "fecha de nacimiento", but "CURP" and "País (ISO…)" keep case
    # where the second letter shows an acronym.
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def field_name(name: str, title: Title) -> tuple[str, str]:
    """``«fecha de nacimiento» (date_of_birth)`` / ``'date of birth' (date_of_birth)``; the
    JSON name is left out where the title is that very word (``'sex'``)."""
    if not title:
        return f"«{name}»", f"'{name}'"
    es, en = _lower_first(title.get("es", name)), _lower_first(title.get("en", name))
    named_es = f"«{es}»" if es.lower() == name else f"«{es}» ({name})"
    named_en = f"'{en}'" if en.lower() == name else f"'{en}' ({name})"
    return named_es, named_en


def subject(path: Path, title: Title, parent_title: Title = None) -> tuple[str, str]:
    """How to name the field at ``path`` in a sentence: ``el campo «fecha…» (date_of_birth)``."""
    if not path:
        return "el documento", "the document"
    last = path[-1]
    if isinstance(last, int):
        parent = path[-2] if len(path) > 1 and isinstance(path[-2], str) else None
        if parent is None:
            return f"el elemento {last + 1}", f"item {last + 1}"
        es, en = field_name(parent, parent_title)
        return f"el elemento {last + 1} de {es}", f"item {last + 1} of {en}"
    es, en = field_name(last, title)
    return f"el campo {es}", f"the field {en}"


def container(path: Path, title: Title) -> tuple[str, str]:
    """``«caso» (case)`` or ``el documento``, for "unknown field … in …"."""
    if not path:
        return "el documento", "the document"
    if isinstance(path[-1], int):
        return subject(path, title)
    return field_name(path[-1], title)


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def listing(items: Sequence[str], lang: str) -> str:
    listed = ", ".join(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        more = len(items) - MAX_LISTED
        listed += f" (y {more} más)" if lang == "es" else f" (and {more} more)"
    return listed


def codes(node: Any, values: Sequence[Any]) -> tuple[str, str]:
    labels = node.get("x-labels", {}) if isinstance(node, Mapping) else {}
    es, en = [], []
    for value in values:
        label = labels.get(value) if isinstance(value, str) else None
        es.append(f"{shown(value)} ({label['es']})" if label else shown(value))
        en.append(f"{shown(value)} ({label['en']})" if label else shown(value))
    return listing(es, "es"), listing(en, "en")
