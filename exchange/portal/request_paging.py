"""Paging through the lists of ``/requests``: the officer's queue and a requester's own
requests, each a page at a time as the API pages it, each keeping the other's place. The rules
(``after``, the place a page is told by the link that led to it) are those of
:mod:`exchange.portal.list_paging`; this module names the two lists and says their lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exchange.consents.access import RequestPage
from exchange.portal import list_paging
from exchange.portal.blueprint import Text
from exchange.portal.list_paging import NO_SUCH_PAGE, Listing, stale_pages

__all__ = [
    "MINE_AFTER",
    "NO_SUCH_PAGE",
    "QUEUE_AFTER",
    "mine_line",
    "page_at",
    "paging",
    "places",
    "queue_line",
    "stale_pages",
]

#: The parameters that page through the queue (as the API's ``after``) and through the
#: requester's own requests.
QUEUE_AFTER, MINE_AFTER = "after", "mine_after"
_LISTS = {
    QUEUE_AFTER: Listing(after=QUEUE_AFTER, place="from", anchor="queue"),
    MINE_AFTER: Listing(after=MINE_AFTER, place="mine_from", anchor="mine"),
}


def page_at(parameter: str, read: Callable[[str | None], RequestPage]) -> RequestPage:
    """The page the address asks for with ``parameter``, or the first page when it names no
    request of that list (said at the top of the page)."""
    return list_paging.page_at(_LISTS[parameter], read)


def places() -> dict[str, str]:
    """Where the page stands in each list: kept by its links and forms."""
    return list_paging.places(tuple(_LISTS.values()))


def paging(
    page: RequestPage | None, parameter: str, line: Callable[[int, int | None, int], Text]
) -> dict[str, Any] | None:
    """How many the list holds and which this page shows, and its next and first pages."""
    return list_paging.paging(
        page, _LISTS[parameter], tuple(_LISTS.values()), "portal.access_requests", line
    )


def queue_line(total: int, first: int | None, shown: int) -> Text:
    if total == 1:
        return (
            "Una solicitud espera decisión en su jurisdicción.",
            "One request awaits a decision in your jurisdiction.",
        )
    es, en = list_paging.which(total, first, shown, feminine=True)
    return (
        f"{total} solicitudes esperan decisión en su jurisdicción, las más antiguas primero; {es}.",
        f"{total} requests await a decision in your jurisdiction, oldest first; {en}.",
    )


def mine_line(total: int, first: int | None, shown: int) -> Text:
    if total == 1:
        return ("Ha hecho una solicitud.", "You have made one request.")
    es, en = list_paging.which(total, first, shown, feminine=True)
    return (
        f"Ha hecho {total} solicitudes, las más recientes primero; {es}.",
        f"You have made {total} requests, newest first; {en}.",
    )
