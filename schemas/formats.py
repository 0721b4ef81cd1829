"""The ``format`` and ``pattern`` semantics both validator implementations share.

**Formats are asserted** — ``date``, ``date-time`` and ``email``, the only ones the schemas
use. The schemas give dates and instants a ``pattern`` *and* a ``format``: the pattern fixes
the shape, the format adds what a regular expression cannot say (2024-02-30 is not a date).
The fast validator uses ``jsonschema_rs``'s built-in checks (a Python format callback would
cost 15–70 % of its throughput); the reference validator uses :data:`FORMATS`, which
reproduces them exactly: RFC 3339 ``full-date`` and ``date-time`` on the proleptic Gregorian
calendar, **year 0000 and a leap second at 23:59:60 UTC included** (code that turns a
validated string into a :class:`datetime.date` must still expect ``ValueError``), and, for
``email``, the very same check ``jsonschema_rs`` makes. tests/unit/schemas/test_validation.py
holds the two to each other. A schema using any other format fails to compile
(``ignore_unknown_formats=False``), so a new format is a conscious addition here.

**Patterns follow ECMA-262**, as JSON Schema requires and as ``jsonschema_rs`` does: ``\\d``
and ``\\w`` are ASCII, ``$`` matches only at the very end. Python's ``re`` differs (``\\d``
matches any Unicode digit, ``$`` also matches before a final newline), so the reference
validator compiles patterns through :func:`ecma_pattern`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import jsonschema_rs

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_calendar_date(year: int, month: int, day: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return day <= (29 if month == 2 and leap else _DAYS[month - 1])


def is_date(value: object) -> bool:
    """RFC 3339 ``full-date``: ``YYYY-MM-DD`` naming a real (proleptic Gregorian) day."""
    if not isinstance(value, str):
        return True
    match = _DATE.fullmatch(value)
    return match is not None and _is_calendar_date(*map(int, match.groups()))


def is_date_time(value: object) -> bool:
    """RFC 3339 ``date-time``: a real day, hours ≤ 23, minutes ≤ 59, seconds ≤ 59 — or 60 when
    the time is 23:59 in UTC (a leap second) — and an offset of at most 23:59."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = map(int, match.groups()[:6])
    sign, offset_hour, offset_minute = match.groups()[6:]
    if not _is_calendar_date(year, month, day) or hour > 23 or minute > 59 or second > 60:
        return False
    offset = 0
    if sign is not None:
        if int(offset_hour) > 23 or int(offset_minute) > 59:
            return False
        offset = (int(offset_hour) * 60 + int(offset_minute)) * (1 if sign == "+" else -1)
    if second == 60:
        return (hour * 60 + minute - offset) % (24 * 60) == 23 * 60 + 59
    return True


_RS_EMAIL = jsonschema_rs.validator_for({"format": "email"}, validate_formats=True)


def is_email(value: object) -> bool:
    """An email address as ``jsonschema_rs`` checks it (RFC 5321 mailbox syntax)."""
    return not isinstance(value, str) or bool(_RS_EMAIL.is_valid(value))


FORMATS: dict[str, Callable[[object], bool]] = {
    "date": is_date,
    "date-time": is_date_time,
    "email": is_email,
}
"""Every format the schemas may use, as the reference validator checks it."""


# ECMA-262 ``\s``: WhiteSpace and LineTerminator, as jsonschema_rs implements it.
_ECMA_SPACE = (
    "\\t\\n\\v\\f\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
)
_CLASS_ESCAPES = {"d": "0-9", "w": "A-Za-z0-9_", "s": _ECMA_SPACE}


@functools.cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an ECMA-262 pattern (as used in JSON Schema) into an equivalent Python regex."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            index += 2
            if escaped.lower() in _CLASS_ESCAPES:
                body = _CLASS_ESCAPES[escaped.lower()]
                negate = escaped.isupper()
                if in_class and not negate:
                    out.append(body)
                elif in_class:
                    out.append("\\" + escaped)  # a negated class inside a class: rare, kept
                else:
                    out.append(f"[{'^' if negate else ''}{body}]")
            else:
                out.append("\\" + escaped)
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            out.append(char)
            if pattern.startswith("^", index + 1):
                out.append("^")
                index += 1
            index += 1
            continue
        elif char == "$":
            char = r"\Z"
        out.append(char)
        index += 1
    return re.compile("".join(out))
