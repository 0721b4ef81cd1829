"""What ``/overrides`` and ``/alerts`` say of an emergency override beside the API's answer:
whether its review is overdue (unreviewed 24 h after it was opened: the ``override_unreviewed``
alert's rule, exchange.consents.overrides.overdue_overrides), its legal basis in words, and
who opened or reviewed it by their registered names."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.agencies import Agency
from exchange.people import Person
from exchange.portal.blueprint import Text
from exchange.portal.list_paging import which
from schemas.registry import default_registry


@functools.cache
def basis_labels() -> Mapping[str, Text]:
    """The override schema's own words for each legal-basis code (read when first needed:
    building the hub does not load the schemas)."""
    labels = default_registry().document("override", 1)["properties"]["basis_code"]["x-labels"]
    return {code: (said["es"], said["en"]) for code, said in labels.items()}


def overdue(item: Mapping[str, Any], moment: datetime) -> bool:
    """Whether an override (as the queue lists it) still awaits its review past the 24 h its
    review is due in: ``review_due_at`` is its opening plus that time."""
    return item["status"] == "open" and datetime.fromisoformat(item["review_due_at"]) <= moment


def as_shown(item: Mapping[str, Any], moment: datetime) -> dict[str, Any]:
    return {**item, "overdue": overdue(item, moment)}


def parties_in(found: Iterable[Mapping[str, Any] | None]) -> set[str]:
    """The agency and person ids of the parties (``{agency_id, person_id}``) in ``found``."""
    return {
        value
        for party in found
        if party
        for value in (party.get("agency_id"), party.get("person_id"))
        if value
    }


def names_of(session: Session, ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """The registered names of the people (``people``) and agencies (``agencies``) among
    ``ids``: oversight and reviewers read who acted by name. An id no longer registered has
    no name, and is shown alone."""
    wanted = sorted(set(ids))
    if not wanted:
        return {"people": {}, "agencies": {}}
    people = session.execute(select(Person.id, Person.name).where(Person.id.in_(wanted)))
    agencies = session.execute(select(Agency.id, Agency.name).where(Agency.id.in_(wanted)))
    return {
        "people": {found: name for found, name in people},
        "agencies": {found: name for found, name in agencies},
    }


# How many each list of /overrides holds, and which of them the page shows.


def open_line(total: int, first: int | None, shown: int) -> Text:
    if total == 1:
        return ("Un acceso de emergencia espera revisión.", "One emergency override awaits review.")
    es, en = which(total, first, shown)
    return (
        f"{total} accesos de emergencia esperan revisión, los más antiguos primero; {es}.",
        f"{total} emergency overrides await review, oldest first; {en}.",
    )


def reviewed_line(total: int, first: int | None, shown: int) -> Text:
    if total == 1:
        return ("Se ha revisado un acceso de emergencia.", "One emergency override was reviewed.")
    es, en = which(total, first, shown)
    return (
        f"Se han revisado {total} accesos de emergencia, los más recientes primero; {es}.",
        f"{total} emergency overrides were reviewed, the latest first; {en}.",
    )
