"""Paging through the lists of ``/overrides`` (the overrides awaiting review, the reviewed
ones), each a page at a time as the API pages it (``after``, the last id of the page before),
each page saying how many its list holds and which of them it shows ("101 to 107").

The same rules for ``/requests`` (exchange.portal.request_paging names its two lists): the API
pages by key, not by offset, so a page between the first and the last is
told its first place by the link that led to it; a place that does not fit the list is not
said, and the page then says only how many it shows. Here each list is a :class:`Listing`, so
that a page holding several lists keeps every other list's place in its links.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import g, request, url_for

from exchange.consents import ConsentProblem
from exchange.consents.access import Page
from exchange.portal.blueprint import Text, page_language

Row = TypeVar("Row")

#: Where the page keeps the lists whose ``after`` named no row of theirs.
_STALE = "list_stale_pages"
NO_SUCH_PAGE: Text = (
    "La página pedida de la lista ya no existe; se muestra desde el principio.",
    "The page of the list asked for does not exist; it is shown from the beginning.",
)


@dataclass(frozen=True)
class Listing:
    """One list of a page: the parameter naming the last id of the page before (the API's
    ``after``), the one naming the place of the page's first row, and the list's anchor."""

    after: str
    place: str
    anchor: str


def page_at(listing: Listing, read: Callable[[str | None], Page[Row]]) -> Page[Row]:
    """The page the address asks for, or the first page when its ``after`` names no row of
    that list (said at the top of the page)."""
    try:
        return read(request.args.get(listing.after) or None)
    except ConsentProblem:
        g.setdefault(_STALE, set()).add(listing.after)
        return read(None)


def stale_pages() -> bool:
    """Whether the address named a page that no longer exists (see :func:`page_at`)."""
    return bool(g.get(_STALE))


def places(listings: Sequence[Listing]) -> dict[str, str]:
    """Where the page stands in each list, as the address gives it (but for lists whose
    ``after`` named no row): kept by its links and forms."""
    stale = g.get(_STALE) or set()
    kept: dict[str, str] = {}
    for listing in listings:
        if listing.after in stale or not (value := request.args.get(listing.after)):
            continue
        kept[listing.after] = value
        if (number := request.args.get(listing.place, "")).isascii() and number.isdigit():
            kept[listing.place] = number
    return kept


def _first_shown(page: Page[Any], paged: bool, carried: str | None) -> int | None:
    """The place in its list of the page's first row, when it is known (module doc)."""
    shown = len(page.rows)
    if shown == 0:
        return None
    if not paged:
        return 1
    if page.next_after is None:
        return max(1, page.total - shown + 1)
    first = int(carried) if carried is not None and len(carried) <= 9 else 0
    # Between the first page and the last: at least one row before it and one after.
    return first if 2 <= first <= page.total - shown else None


def which(total: int, first: int | None, shown: int, *, feminine: bool = False) -> Text:
    """Which rows of the list the page shows, as the end of a sentence; ``feminine`` when
    the Spanish word for the rows is (las solicitudes)."""
    if first is None:
        return f"esta página muestra {shown}", f"this page shows {shown}"
    last = first + shown - 1
    if first == 1 and last == total:
        every = "todas" if feminine else "todos"
        return f"{every} están en esta página", "all are on this page"
    span = f"de la {first} a la {last}" if feminine else f"del {first} al {last}"
    return f"esta página muestra {span}", f"this page shows numbers {first} to {last}"


def paging(
    page: Page[Any] | None,
    listing: Listing,
    listings: Sequence[Listing],
    endpoint: str,
    line: Callable[[int, int | None, int], Text],
) -> dict[str, Any] | None:
    """How many the list holds and which this page shows, in a line, and the addresses of its
    next page and of its first (None where there is none), each keeping the other lists'
    places."""
    if page is None or page.total == 0:
        return None
    kept = places(listings)
    here = kept.pop(listing.after, None)
    first = _first_shown(page, here is not None, kept.pop(listing.place, None))

    def address(**values: str) -> str:
        query: dict[str, Any] = {**kept, **values}
        return url_for(endpoint, lang=page_language(), _anchor=listing.anchor, **query)

    after_this: dict[str, str] = {}
    if page.next_after:
        after_this[listing.after] = page.next_after
        if first is not None:
            after_this[listing.place] = str(first + len(page.rows))
    return {
        "line": line(page.total, first, len(page.rows)),
        "next": address(**after_this) if after_this else None,
        "first": address() if here else None,
    }
