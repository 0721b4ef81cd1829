"""Reading one Primero case's fields: text, flags, whole numbers, dates and codes, each
fault recorded as a problem that names the field it comes from (``field:<name>``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.base import Problem
from adapters.primero_fields import CodeBook

_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T[0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")


class CaseReader:
    """Reads one case's fields, recording problems with the field they come from."""

    def __init__(self, case: Mapping[str, Any], book: CodeBook) -> None:
        self.case = case
        self.book = book
        self.problems: list[Problem] = []

    def text(self, name: str, source: Mapping[str, Any] | None = None) -> str | None:
        value = (self.case if source is None else source).get(name)
        if value is None:  # most fields of most cases: the fast way out
            return None
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return None

    def flag(self, name: str, source: Mapping[str, Any] | None = None) -> bool | None:
        value = (self.case if source is None else source).get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "false", "no"):
            return value.lower() in ("true", "yes")
        return None

    def integer(self, name: str, where: str) -> int | None:
        value = self.case.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        self.problem(where, f"«{value}» no es un número entero", f"'{value}' is not a whole number")
        return None

    def date(self, name: str, where: str, source: Mapping[str, Any] | None = None) -> str | None:
        value = self.text(name, source)
        if value is None:
            return None
        match = _DATE.match(value)
        if match is None:
            self.problem(
                where,
                f"«{value}» no es una fecha AAAA-MM-DD",
                f"'{value}' is not a YYYY-MM-DD date",
            )
            return None
        return match.group(1)

    def code(self, name: str, where: str, source: Mapping[str, Any] | None = None) -> str | None:
        """The shared code of the field's value; None when absent, left out, or unknown
        (then a problem)."""
        return self.code_of(name, where, (self.case if source is None else source).get(name))

    def code_of(self, name: str, where: str, value: Any) -> str | None:
        if value is None or value == "":
            return None
        shared = self.book.lookup(name, value)
        if shared is None:
            table = self.book.table(name)
            self.problem(
                where,
                f"código desconocido «{value}» en «{name}»: corríjalo en Primero o agréguelo "
                f"a la tabla de códigos «{table}»",
                f"unknown code '{value}' in '{name}': fix it in Primero or add it to the "
                f"'{table}' code table",
            )
            return None
        return shared or None

    def codes(self, name: str, where: str, source: Mapping[str, Any] | None = None) -> list[str]:
        """A multi-select field (a list, or one value) as shared codes, in order, once each."""
        raw = (self.case if source is None else source).get(name)
        values = raw if isinstance(raw, list) else [] if raw in (None, "") else [raw]
        result: list[str] = []
        for value in values:
            shared = self.code_of(name, where, value)
            if shared is not None and shared not in result:
                result.append(shared)
        return result

    def problem(self, where: str, es: str, en: str) -> None:
        self.problems.append(Problem(where, es, en))


def joined(*parts: str | None) -> str | None:
    text = " ".join(part for part in parts if part)
    return text or None


def compact(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` without its empty members (None, "", [], {}); False and 0 are kept."""
    return {key: each for key, each in value.items() if each or each == 0}


def subform(case: Mapping[str, Any], name: str) -> list[tuple[int, Mapping[str, Any]]]:
    rows = case.get(name)
    if not isinstance(rows, list):
        return []
    return [(i, row) for i, row in enumerate(rows) if isinstance(row, Mapping)]
