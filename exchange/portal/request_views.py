"""What ``/requests`` says of each request to its reader, beside the API's answer: where it
stands in one line, the automatic check made when it was asked (only where it still says
something, worded for whoever reads it), and — to an officer — who asked and on whose behalf,
by name, and what the officer may not do with it: decide their own request, approve their
agency's, or approve once the child is 18 (exchange.consents.decide_request refuses each)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import CATEGORY_LABELS, PURPOSE_LABELS
from exchange.agencies import Agency
from exchange.auth import Actor
from exchange.consent_store import AccessRequestRow
from exchange.disclosure import load_child
from exchange.people import Person
from exchange.portal.blueprint import Text

# Where a request stands, in one line for its reader.
# To the requester, the same words for every pending request: one about a child id the hub
# never issued reaches no officer's queue and stays pending (docs/consent.md §8.5, so that
# asking tells nobody whether a child exists), so no decision is promised, and what to do when
# none comes is said to everyone alike.
_AWAITS_AN_OFFICER: Text = (
    "Espera la decisión de un oficial de consentimiento. Si se decide, la decisión aparecerá "
    "aquí; el nodo no puede decir cuándo. Si tras varios días no hay decisión, confirme el id "
    "de la niña, niño o adolescente con la institución o la Procuraduría que se lo dio: una "
    "solicitud sobre un id que el nodo no conoce no llega a ningún oficial.",
    "Waiting for a consent officer's decision. If one is made, it will show here; the hub "
    "cannot say when. If none has come after several days, check the child's id with the "
    "agency or the Procuraduría that gave it to you: a request about an id the hub does not "
    "know reaches no officer.",
)
_AWAITS_YOU: Text = (
    "Espera la decisión de un oficial de consentimiento de su jurisdicción.",
    "Waiting for a decision by a consent officer of your jurisdiction.",
)


def as_shown(row: AccessRequestRow, seen: dict[str, Any], *, officer: bool) -> dict[str, Any]:
    """``seen`` (the API's answer) with what the page says of it to its reader:

    - ``state``: where the request stands, in one line: waiting for an officer, or the
      decision as the API words it;
    - ``asked``: the automatic check made when it was asked, where it still says something.
      Always to the officer (worded for them: the engine words a refusal for the requester);
      to the requester only when that check decided the request. Once an officer has
      decided, or while one has not, the check's "nothing permits you; ask the
      Procuraduría" would contradict the decision or ask for what was just done."""
    reasons = (seen.get("decision") or {}).get("reasons") or ()
    decided_at_once = row.status != "pending" and row.decided_by is None
    if row.status == "pending":
        state = _AWAITS_YOU if officer else _AWAITS_AN_OFFICER
    else:
        state = (seen["message"]["es"], seen["message"]["en"])
    asked: list[Text] = []
    if officer:
        asked = [_for_an_officer(reason, row.purpose) for reason in reasons]
    elif decided_at_once:
        # The message may already tell a reason (a hard rule): not twice.
        asked = [(r["es"], r["en"]) for r in reasons if r["es"] not in state[0]]
    return {**seen, "state": state, "asked": asked}


def _for_an_officer(reason: dict[str, Any], purpose: str) -> Text:
    """A reason of the engine as an officer reads it: the plain refusal ("nothing in force
    permits you…; you may ask the Procuraduría") speaks to the requester."""
    if reason.get("code") != "default_deny":
        return reason["es"], reason["en"]
    names = [
        CATEGORY_LABELS[code] for code in reason.get("categories", ()) if code in CATEGORY_LABELS
    ]
    purpose_es, purpose_en = PURPOSE_LABELS.get(purpose, (purpose, purpose))
    return (
        "Nada vigente (consentimiento, autorización ni acceso de emergencia) permitía "
        f"{', '.join(es for es, _ in names)} para «{purpose_es}».",
        "Nothing in force (consent, grant or emergency override) permitted "
        f"{', '.join(en for _, en in names)} for “{purpose_en}”.",
    )


# -- who asked, and what the officer may decide -------------------------------------------------


def names_of(session: Session, shown: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The registered names of the people (``people``) and agencies (``agencies``) that asked
    for or decided the requests ``shown``, or on whose behalf they were asked: an officer
    reads who asks, and for whom, by name. An id no longer registered has no name, and is
    shown alone."""
    ids = {
        found
        for seen in shown
        for found in (
            seen["requester"].get("person_id"),
            seen["requester"].get("agency_id"),
            seen.get("decided_by"),
            (seen.get("on_behalf_of") or {}).get("agency_id"),
        )
        if found
    }
    if not ids:
        return {"people": {}, "agencies": {}}
    wanted = sorted(ids)
    people = session.execute(select(Person.id, Person.name).where(Person.id.in_(wanted)))
    agencies = session.execute(select(Agency.id, Agency.name).where(Agency.id.in_(wanted)))
    return {
        "people": {found: name for found, name in people},
        "agencies": {found: name for found, name in agencies},
    }


def whose(row: AccessRequestRow, actor: Actor) -> str | None:
    """``own`` for the officer's own request, which nobody decides; ``agency`` for one of their
    agency's, which they may deny but not approve (as exchange.consents.decide_request
    refuses); else None. Such requests are in the queue of anyone who both asks and decides
    (an administrator), shown without what cannot be done."""
    if actor.person_id is not None and row.requester_person == actor.person_id:
        return "own"
    if actor.agency_id is not None and row.requester_agency == actor.agency_id:
        return "agency"
    return None


def adult_since(session: Session, row: AccessRequestRow, moment: datetime) -> date | None:
    """The child's 18th birthday when it has passed (no approval can be made: only a denial),
    else None. What the engine already knows of the child, as a decision reads it
    (exchange.disclosure.load_child keeps it between requests until the child's rows change)."""
    try:
        majority = load_child(session, row.child_id).facts.eighteenth_birthday
    except LookupError:
        return None
    return majority.date() if majority is not None and majority <= moment else None
