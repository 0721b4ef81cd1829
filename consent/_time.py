"""Instants and dates: strict RFC 3339 parsing and the 18th birthday."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from consent.errors import ConsentFormatError

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: Quintana Roo's UTC−05:00 is Mexico's easternmost time zone: midnight there is the earliest
#: moment a date begins anywhere in the country, so a consent capped at the start of the 18th
#: birthday in this zone has lapsed before the birthday begins wherever the child is.
BIRTHDAY_ZONE = timezone(timedelta(hours=-5))

FOREVER = float("inf")


def parse_instant(value: object, pointer: str) -> datetime:
    """An RFC 3339 date-time with an offset (``2024-03-14T10:20:00-06:00``)."""
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ConsentFormatError(
            f"Se esperaba fecha y hora con zona horaria (2024-03-14T10:20:00-06:00), "
            f"se recibió {value!r}.",
            f"Expected a date-time with offset (2024-03-14T10:20:00-06:00), got {value!r}.",
            pointer=pointer,
        )
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    head, dot, rest = text.partition(".")
    if dot:  # Python keeps microseconds: cut nanoseconds, keep the offset
        digits = rest[: len(rest) - 6]
        text = f"{head}.{(digits + '000000')[:6]}{rest[-6:]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError as error:
        raise ConsentFormatError(
            f"Fecha y hora inexistente: {value!r}.",
            f"No such date-time: {value!r}.",
            pointer=pointer,
        ) from error


def parse_date(value: object, pointer: str) -> date:
    """A full date (``2024-03-14``)."""
    if not isinstance(value, str) or not _DATE.match(value):
        raise ConsentFormatError(
            f"Se esperaba una fecha AAAA-MM-DD, se recibió {value!r}.",
            f"Expected a date YYYY-MM-DD, got {value!r}.",
            pointer=pointer,
        )
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ConsentFormatError(
            f"Fecha inexistente: {value!r}.", f"No such date: {value!r}.", pointer=pointer
        ) from error


def format_instant(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` (canonical output of ``to_json``)."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def require_aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
    return moment


def add_years(day: date, years: int) -> date:
    """``day`` ``years`` later; 29 February becomes 28 February (the earlier day)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def full_years_between(start: date, end: date) -> int:
    """Completed years from ``start`` to ``end`` (an age)."""
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return years


def start_of_day(day: date) -> datetime:
    """The first instant of ``day`` in :data:`BIRTHDAY_ZONE`."""
    return datetime(day.year, day.month, day.day, tzinfo=BIRTHDAY_ZONE)


def timestamp(moment: datetime | None, default: float) -> float:
    return default if moment is None else moment.timestamp()
