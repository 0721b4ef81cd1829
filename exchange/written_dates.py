"""Dates written out for people, in Spanish and English («21 de julio de 2025», "21 July 2025"):
the portal's pages and the messages that name a day. Month names are spelt here, not taken
from the system's locale (``%B``), which a server rarely has in Spanish."""

from __future__ import annotations

from datetime import date

MONTHS = {
    "es": (
        "enero", "febrero", "marzo", "abril", "mayo", "junio",
        "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}  # fmt: skip


def readable_day(day: date, lang: str) -> str:
    """``2025-07-21`` as «21 de julio de 2025» or "21 July 2025"."""
    month = MONTHS[lang][day.month - 1]
    if lang == "es":
        return f"{day.day} de {month} de {day.year}"
    return f"{day.day} {month} {day.year}"


def day_in_both(day: date) -> tuple[str, str]:
    """``day`` written out in Spanish and in English."""
    return readable_day(day, "es"), readable_day(day, "en")
