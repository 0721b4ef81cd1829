"""Paging through the lists of ``/requests``: the officer's queue and a requester's own
requests, each a page at a time as the API pages it (``after``, the last id of the page
before), each page saying how many its list holds and which of them it shows ("101 to 107").

The API pages by key, not by offset, so a page does not know its place from ``after`` alone:
the first page starts at 1, the last ends at the list's total, and a page between them is told
its first place by the link that led to it (``from``). A place that does not fit the list
(an address typed by hand, or a list much shorter since) is not said; the page then says only
how many it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, request, url_for

from exchange.consents import ConsentProblem
from exchange.consents.access import RequestPage
from exchange.portal.blueprint import Text, page_language

#: The parameters that page through the queue (as the API's ``after``) and through the
#: requester's own requests, each keeping the other's place.
QUEUE_AFTER, MINE_AFTER = "after", "mine_after"
#: The place in its list of a page's first request, beside each parameter above.
PLACE_OF = {QUEUE_AFTER: "from", MINE_AFTER: "mine_from"}
#: Where the page keeps the parameters above that named no request of their list.
_STALE = "requests_stale_pages"
NO_SUCH_PAGE: Text = (
    "La página pedida de la lista ya no existe; se muestra desde el principio.",
    "The page of the list asked for does not exist; it is shown from the beginning.",
)


def page_at(parameter: str, read: Callable[[str | None], RequestPage]) -> RequestPage:
    """The page the address asks for with ``parameter`` (the last id of the page before), or
    the first page when it names no request of that list (said at the top of the page)."""
    try:
        return read(request.args.get(parameter) or None)
    except ConsentProblem:
        g.setdefault(_STALE, set()).add(parameter)
        return read(None)


def stale_pages() -> bool:
    """Whether the address named a page that no longer exists (see :func:`page_at`)."""
    return bool(g.get(_STALE))


def places() -> dict[str, str]:
    """Where the page stands in each list (the parameters above as the address gives them,
    but those that named no request, and their places): kept by its links and forms."""
    stale = g.get(_STALE) or set()
    kept: dict[str, str] = {}
    for name, place in PLACE_OF.items():
        if name in stale or not (value := request.args.get(name)):
            continue
        kept[name] = value
        if (number := request.args.get(place, "")).isascii() and number.isdigit():
            kept[place] = number
    return kept


def _first_shown(page: RequestPage, paged: bool, carried: str | None) -> int | None:
    """The place in its list of the page's first request, when it is known (module doc)."""
    shown = len(page.rows)
    if shown == 0:
        return None
    if not paged:
        return 1
    if page.next_after is None:
        return max(1, page.total - shown + 1)
    first = int(carried) if carried is not None and len(carried) <= 9 else 0
    # Between the first page and the last: at least one request before it and one after.
    return first if 2 <= first <= page.total - shown else None


def queue_line(total: int, first: int | None, shown: int) -> Text:
    if total == 1:
        return (
            "Una solicitud espera decisión en su jurisdicción.",
            "One request awaits a decision in your jurisdiction.",
        )
    es, en = _which(total, first, shown)
    return (
        f"{total} solicitudes esperan decisión en su jurisdicción, las más antiguas primero; {es}.",
        f"{total} requests await a decision in your jurisdiction, oldest first; {en}.",
    )


def mine_line(total: int, first: int | None, shown: int) -> Text:
    if total == 1:
        return ("Ha hecho una solicitud.", "You have made one request.")
    es, en = _which(total, first, shown)
    return (
        f"Ha hecho {total} solicitudes, las más recientes primero; {es}.",
        f"You have made {total} requests, newest first; {en}.",
    )


def _which(total: int, first: int | None, shown: int) -> Text:
    if first is None:
        return f"esta página muestra {shown}", f"this page shows {shown}"
    last = first + shown - 1
    if first == 1 and last == total:
        return "todas están en esta página", "all are on this page"
    return (
        f"esta página muestra de la {first} a la {last}",
        f"this page shows numbers {first} to {last}",
    )


def paging(
    page: RequestPage | None, parameter: str, line: Callable[[int, int | None, int], Text]
) -> dict[str, Any] | None:
    """How many the list holds and which this page shows, in a line, and the addresses of its
    next page and of its first (None where there is none), each keeping the other list's
    place."""
    if page is None or page.total == 0:
        return None
    kept = places()
    here = kept.pop(parameter, None)
    first = _first_shown(page, here is not None, kept.pop(PLACE_OF[parameter], None))
    anchor = "queue" if parameter == QUEUE_AFTER else "mine"

    def address(**values: str) -> str:
        return url_for(
            "portal.access_requests", lang=page_language(), **kept, **values, _anchor=anchor
        )

    after_this: dict[str, str] = {}
    if page.next_after:
        after_this[parameter] = page.next_after
        if first is not None:
            after_this[PLACE_OF[parameter]] = str(first + len(page.rows))
    return {
        "line": line(page.total, first, len(page.rows)),
        "next": address(**after_this) if after_this else None,
        "first": address() if here else None,
    }
