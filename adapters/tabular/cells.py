"""One spreadsheet cell to one JSON value, and back.

A *converter* takes the trimmed, non-empty text of a cell and returns the value for the shared
document, or raises :class:`CellError` saying why it cannot (in Spanish and English, without
the column name, which the caller adds). A *renderer* does the reverse for ``encode``. Codes are
matched without regard to case, accents or surrounding spaces ("SI", "Sí", " si " are one), and
each column remembers the texts it has seen, so a column of a few codes costs one dictionary
look-up per cell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Converter = Callable[[str], Any]
Renderer = Callable[[Any], str]

_CACHE_LIMIT = 4096
_SPACES = re.compile(r"[\s_]+")
_MONTHS_ES = (
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
).split()
_MONTHS_EN = (
    "January February March April May June July August September October November December"
).split()
_ISO_PARTIAL = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", re.ASCII)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

TRUE_WORDS = ("Sí", "Si", "S", "X", "Yes", "Y", "True", "Verdadero", "1")
FALSE_WORDS = ("No", "N", "False", "Falso", "0")


class CellError(ValueError):
    def __init__(self, message_es: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_es = message_es
        self.message_en = message_en


def normalise(text: str) -> str:
    """The form codes and column names are compared in: no accents, case-folded, single
    underscores for runs of spaces and underscores, trimmed (``" Fecha  Nacimiento"`` →
    ``fecha_nacimiento``)."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub("_", bare.casefold())


# Small words a header may have or leave out: "Fecha de nacimiento" is "fecha_nacimiento".
_CONNECTORS = frozenset("de del la las el los y e of the".split())


def loose(key: str) -> str:
    """A column name as :func:`normalise` gives it, without its small connecting words
    (``de``, ``del``, ``la``, ``y``…): the second way a header is matched to a mapping, used
    only when the name itself is not found and only when it finds one column."""
    words = [word for word in key.split("_") if word and word not in _CONNECTORS]
    return "_".join(words) or key


def remembering(convert: Converter) -> Converter:
    """``convert`` with the answers for the texts already seen kept (at most a few thousand,
    so a free-text column does not grow without bound)."""
    seen: dict[str, Any] = {}

    def converted(text: str) -> Any:
        try:
            return seen[text]
        except KeyError:
            value = convert(text)
            if len(seen) < _CACHE_LIMIT:
                seen[text] = value
            return value

    return converted


def _shown(texts: Iterable[str], limit: int = 12) -> str:
    listed = list(texts)
    more = f" (+{len(listed) - limit})" if len(listed) > limit else ""
    return ", ".join(listed[:limit]) + more


def coded(values: Mapping[str, Any], fallback: Converter | None) -> Converter:
    """Local codes to shared ones. A text already equal to one of the shared codes passes as
    it is; anything else that ``fallback`` (if given) cannot convert is an unknown code."""
    by_key = {normalise(key): value for key, value in values.items()}
    targets = {value for value in values.values() if isinstance(value, str)}

    def convert(text: str) -> Any:
        key = normalise(text)
        if key in by_key:
            return by_key[key]
        if text in targets:
            return text
        if fallback is not None:
            try:
                return fallback(text)
            except CellError:
                pass
        accepted = _shown(values)
        raise CellError(
            f"código desconocido «{text}»; se aceptan: {accepted}",
            f"unknown code '{text}'; accepted: {accepted}",
        )

    return remembering(convert)


def render_coded(values: Mapping[str, Any], fallback: Renderer) -> Renderer:
    """The first local code of each shared value (the spelling the mapping lists first)."""
    first: dict[Any, str] = {}
    for key, value in values.items():
        first.setdefault(_hashable(value), key)

    def render(value: Any) -> str:
        found = first.get(_hashable(value))
        return found if found is not None else fallback(value)

    return render


def _hashable(value: Any) -> Any:
    # True == 1 in Python: keep booleans apart from numbers in the look-up table.
    return (
        (type(value).__name__, value) if isinstance(value, (bool, int, float, str)) else repr(value)
    )


def boolean(
    true_words: Sequence[str] = TRUE_WORDS, false_words: Sequence[str] = FALSE_WORDS
) -> tuple[Converter, Renderer]:
    values: dict[str, bool] = {word: True for word in true_words}
    values.update({word: False for word in false_words})
    by_key = {normalise(key): value for key, value in values.items()}

    def convert(text: str) -> bool:
        try:
            return by_key[normalise(text)]
        except KeyError:
            raise CellError(
                f"«{text}» no es sí ni no; se acepta: {_shown(values)}",
                f"'{text}' is neither yes nor no; accepted: {_shown(values)}",
            ) from None

    def render(value: Any) -> str:
        if value is True:
            return true_words[0]
        if value is False:
            return false_words[0]
        return text(value)

    return remembering(convert), render


def integer(value: str) -> int:
    try:
        return int(value.replace(" ", ""))
    except ValueError:
        raise CellError(
            f"«{value}» no es un número entero", f"'{value}' is not a whole number"
        ) from None


def number(value: str) -> float | int:
    cleaned = value.replace(" ", "")
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        return float(
            cleaned.replace(",", ".") if cleaned.count(",") == 1 and "." not in cleaned else cleaned
        )
    except ValueError:
        raise CellError(f"«{value}» no es un número", f"'{value}' is not a number") from None


def text(value: Any) -> str:
    """How a value the mapping does not translate is written to a cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_LAYOUT_TOKEN = re.compile(r"(yyyy|dd|mm|d|m)")
_TOKEN_PART = {"yyyy": "y", "dd": "d", "d": "d", "mm": "m", "m": "m"}


@dataclass(frozen=True)
class DateFormat:
    """A date layout written as people write it: ``dd/mm/yyyy``, ``d-m-yyyy``, ``mm/yyyy``,
    ``yyyy``. ``dd`` and ``mm`` read one or two digits; they write two, ``d`` and ``m`` one
    where one is enough."""

    layout: str
    pattern: re.Pattern[str]
    pieces: tuple[str, ...]  # the layout split into tokens and the literal text between them

    @property
    def parts(self) -> tuple[str, ...]:
        """``"d"``, ``"m"``, ``"y"`` in the order the layout has them."""
        return tuple(_TOKEN_PART[piece] for piece in self.pieces if piece in _TOKEN_PART)

    @classmethod
    def parse(cls, layout: str) -> DateFormat:
        """Raises ValueError unless the layout has a year, each part at most once, and a month
        wherever it has a day."""
        pieces = tuple(piece for piece in _LAYOUT_TOKEN.split(layout) if piece)
        regex = "".join(
            (r"(\d{4})" if piece == "yyyy" else r"(\d{1,2})")
            if piece in _TOKEN_PART
            else re.escape(piece)
            for piece in pieces
        )
        found = cls(layout, re.compile(regex, re.ASCII), pieces)
        parts = found.parts
        if "y" not in parts or len(set(parts)) != len(parts) or ("d" in parts) > ("m" in parts):
            raise ValueError(layout)
        return found

    def render(self, year: int, month: int | None, day: int | None) -> str:
        values = {"y": year, "m": month, "d": day}
        out = []
        for piece in self.pieces:
            part = _TOKEN_PART.get(piece)
            if part is None:
                out.append(piece)
            elif piece == "yyyy":
                out.append(f"{year:04d}")
            else:
                out.append(f"{values[part]:0{len(piece)}d}")
        return "".join(out)


ISO_DATE = DateFormat.parse("yyyy-mm-dd")


def dates(formats: Sequence[DateFormat], *, partial: bool) -> tuple[Converter, Renderer]:
    """Dates in ``formats`` (ISO ``yyyy-mm-dd`` always accepted) to ISO 8601. With
    ``partial``, a layout without the day (``mm/yyyy``) or month gives ``yyyy-mm`` or ``yyyy``;
    otherwise every layout must have all three."""
    accepted = [*formats, ISO_DATE]
    shown = ", ".join(each.layout for each in formats) or ISO_DATE.layout

    def convert(value: str) -> str:
        for layout in accepted:
            match = layout.pattern.fullmatch(value)
            if match is None:
                continue
            found = dict(zip(layout.parts, map(int, match.groups()), strict=True))
            year, month, day = found["y"], found.get("m"), found.get("d")
            if month is not None and not 1 <= month <= 12:
                raise CellError(
                    f"«{value}» no es una fecha: no hay mes {month}",
                    f"'{value}' is not a date: there is no month {month}",
                )
            if day is not None and month is not None and not 1 <= day <= _month_days(year, month):
                raise CellError(
                    f"«{value}» no es una fecha que exista: {_MONTHS_ES[month - 1]} de {year} "
                    f"tiene {_month_days(year, month)} días",
                    f"'{value}' is not a date that exists: {_MONTHS_EN[month - 1]} {year} has "
                    f"{_month_days(year, month)} days",
                )
            if day is None and not partial:
                continue
            iso = f"{year:04d}"
            if month is not None:
                iso += f"-{month:02d}"
            if day is not None:
                iso += f"-{day:02d}"
            return iso
        raise CellError(
            f"«{value}» no es una fecha con la forma {shown}",
            f"'{value}' is not a date written as {shown}",
        )

    def render(value: Any) -> str:
        if not isinstance(value, str):
            return text(value)
        match = _ISO_PARTIAL.fullmatch(value)
        if match is None:
            return value
        year, month, day = (int(group) if group else None for group in match.groups())
        have = {part for part, found in zip("ymd", (year, month, day), strict=True) if found}
        layout = next((each for each in formats if set(each.parts) == have), None)
        return layout.render(year or 0, month, day) if layout else value

    return remembering(convert), render


def _month_days(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _DAYS[month - 1]
