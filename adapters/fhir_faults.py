"""What the ``fhir.resources`` models (pydantic) find wrong in a resource, said in Spanish
and, for the faults offices meet most (dates), in plain English.

Pydantic words its errors in English only, but names each with a stable ``type`` code; an
office reading its rejects file in Spanish gets these instead. A type not listed here is still
reported: in Spanish in words of our own, pydantic's English detail in the English text
only. Pydantic's English for dates speaks of its parser ("Input should be a valid date or
datetime, day value is outside expected range"; "Value error, DateTime value string does not
match spec regex."): those read as the Spanish does; any other fault keeps pydantic's words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: pydantic-core error type -> Spanish; ``{…}`` placeholders come from the error's ``ctx``.
SPANISH: dict[str, str] = {
    "missing": "falta este elemento, que es obligatorio",
    "extra_forbidden": "este elemento no existe en el recurso",
    "list_type": "debe ser una lista [...]",
    "dict_type": "debe ser un objeto {…}",
    "model_type": "debe ser un objeto {…}",
    "model_attributes_type": "debe ser un objeto {…}",
    "string_type": "debe ser un texto",
    "string_too_short": "debe tener al menos {min_length} caracteres",
    "string_too_long": "debe tener como máximo {max_length} caracteres",
    "string_pattern_mismatch": "no tiene la forma esperada (patrón {pattern})",
    "too_short": "debe tener al menos {min_length} elementos",
    "too_long": "debe tener como máximo {max_length} elementos",
    "int_type": "debe ser un número entero",
    "int_parsing": "debe ser un número entero",
    "int_from_float": "debe ser un número entero, sin decimales",
    "float_type": "debe ser un número",
    "float_parsing": "debe ser un número",
    "decimal_type": "debe ser un número decimal",
    "decimal_parsing": "debe ser un número decimal",
    "bool_type": "debe ser verdadero o falso (true/false)",
    "bool_parsing": "debe ser verdadero o falso (true/false)",
    "date_type": "debe ser una fecha AAAA-MM-DD",
    "date_parsing": "debe ser una fecha AAAA-MM-DD válida",
    "date_from_datetime_parsing": "debe ser una fecha válida ({error})",
    "date_from_datetime_inexact": "debe ser una fecha sin hora",
    "datetime_type": "debe ser una fecha y hora",
    "datetime_parsing": "debe ser una fecha y hora válidas ({error})",
    "datetime_from_date_parsing": "debe ser una fecha y hora válidas ({error})",
    "time_parsing": "debe ser una hora válida ({error})",
    "url_parsing": "debe ser una dirección (URL) válida",
    "url_type": "debe ser una dirección (URL)",
    "literal_error": "debe ser uno de estos valores: {expected}",
    "enum": "debe ser uno de estos valores: {expected}",
    "value_error": "valor no válido",
    "assertion_error": "valor no válido",
    "model_validation_format": "debe ser un objeto {model_class}, no {type}",
}

#: Said in Spanish of a fault pydantic words only in English (its words follow in English).
_DETAIL_IN_ENGLISH = "(el detalle está en el texto en inglés)"
_SEE_ENGLISH = f"no es válido {_DETAIL_IN_ENGLISH}"
#: JSON kinds for the Python types pydantic names in a ``ctx``.
_KINDS_SPANISH = {list: "una lista", str: "un texto", dict: "un objeto", int: "un número"}
_KINDS_ENGLISH = {list: "a list", str: "a string", dict: "an object", int: "a number"}

#: Spanish for ``ctx`` values pydantic writes in English.
_CONTEXT_SPANISH = {
    "day value is outside expected range": "ese día no existe en ese mes",
    "month value is outside expected range": "el mes debe ir de 01 a 12",
    "input is too short": "el texto es demasiado corto",
    "invalid character in year": "el año tiene un carácter no válido",
    "invalid character in month": "el mes tiene un carácter no válido",
    "invalid character in day": "el día tiene un carácter no válido",
}


#: pydantic-core error type -> plain English, for the date faults (the rest read well enough).
ENGLISH: dict[str, str] = {
    "date_type": "must be a YYYY-MM-DD date",
    "date_parsing": "must be a valid YYYY-MM-DD date",
    "date_from_datetime_parsing": "must be a valid date ({error})",
    "date_from_datetime_inexact": "must be a date without a time",
    "datetime_type": "must be a date and time",
    "datetime_parsing": "must be a valid date and time ({error})",
    "datetime_from_date_parsing": "must be a valid date and time ({error})",
}

#: Plainer English for the ``ctx`` values of those.
_CONTEXT_ENGLISH = {
    "day value is outside expected range": "that day does not exist in that month",
    "month value is outside expected range": "the month must be 01 to 12",
}


#: FHIR's primitive types, as the models name them in their own value errors.
_PRIMITIVES = {
    "Date": "una fecha FHIR (AAAA, AAAA-MM o AAAA-MM-DD)",
    "DateTime": "una fecha y hora FHIR (AAAA-MM-DD, o con hora y zona horaria)",
    "Instant": "un instante FHIR (fecha, hora y zona horaria)",
    "Time": "una hora FHIR (hh:mm:ss)",
    "Decimal": "un número decimal FHIR",
}
_PRIMITIVES_ENGLISH = {
    "Date": "a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)",
    "DateTime": "a FHIR dateTime (YYYY-MM-DD, or with a time and time zone)",
    "Instant": "a FHIR instant (date, time and time zone)",
    "Time": "a FHIR time (hh:mm:ss)",
    "Decimal": "a FHIR decimal number",
}
_SPEC_REGEX = re.compile(r"(\w+) value string does not match spec regex")
_VALUE_ERRORS = {
    "must be timezone aware": "debe indicar la zona horaria",
    "does not parse to datetime": "no es una fecha y hora válidas",
}


def _value_error_in_spanish(english: str) -> str | None:
    """The models' own value errors (fhir_core's primitive types) in Spanish."""
    found = _SPEC_REGEX.search(english)
    if found:
        kind = found[1]
        return f"debe ser {_PRIMITIVES.get(kind, kind)}"
    return next((es for en, es in _VALUE_ERRORS.items() if en in english), None)


def in_spanish(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) in Spanish."""
    template = SPANISH.get(str(error.get("type", "")))
    english = str(error.get("msg", ""))
    if template is None:
        return _SEE_ENGLISH
    context = {
        key: _KINDS_SPANISH.get(value, "otro valor")
        if isinstance(value, type)
        else _CONTEXT_SPANISH.get(str(value), value)
        for key, value in (error.get("ctx") or {}).items()
    }
    try:
        text = template.format(**context)
    except (KeyError, IndexError):
        text = template.split(" ({")[0].split(": {")[0]
    if error.get("type") in {"value_error", "assertion_error"} and english:
        # The model's own explanation: in Spanish where it is one of FHIR's primitive types',
        # else as the model gives it.
        return _value_error_in_spanish(english) or f"{text} {_DETAIL_IN_ENGLISH}"
    return text


def in_english(error: Mapping[str, Any]) -> str:
    """One pydantic error in English: plain words for dates and FHIR's primitive types,
    pydantic's own for the rest."""
    english = str(error.get("msg", ""))
    kind = str(error.get("type", ""))
    if kind in {"value_error", "assertion_error"}:
        found = _SPEC_REGEX.search(english)
        if found:
            return f"must be {_PRIMITIVES_ENGLISH.get(found[1], found[1])}"
        return english
    if kind == "model_validation_format":
        stated: Mapping[str, Any] = error.get("ctx") or {}
        given = _KINDS_ENGLISH.get(stated.get("type"), "another value")  # type: ignore[arg-type]
        return f"must be a {stated.get('model_class')} object, not {given}"
    template = ENGLISH.get(kind)
    if template is None:
        return english
    context = {
        key: _CONTEXT_ENGLISH.get(str(value), value)
        for key, value in (error.get("ctx") or {}).items()
    }
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return template.split(" ({")[0]
