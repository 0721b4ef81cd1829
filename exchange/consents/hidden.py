"""Decisions as told to the people of an agency that a withhold entry or an objection names.

An officer who acts for the child sees the engine's whole decision — in a dry run, in the
access-request queue — with the withhold entries and objections it rests on. Not when those
name the officer's own agency: a reader refused because of an entry is not told so, not even
one acting for the child (docs/consent.md §8.8), and no one acts for their own benefit (§8).
To them the entry does not exist: the categories it withholds are refused by the plain
"nothing in force permits you this request" (the default deny), as a reader who does not act
for the child is told them, and its id is named nowhere.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from consent import Reason
from consent.messages import default_deny
from consent.vocabulary import mask_of
from exchange.auth import Actor
from exchange.consent_store import ChildViewRow, WithholdRow
from exchange.consents.common import own_agency
from exchange.consents.views import about_own_agency
from exchange.consents.withholds import names_own_agency
from exchange.crypto import data_keyring
from exchange.disclosure import ChildContext

#: The engine's steps that refuse, in its order (consent/engine.py): the basis of a denial is
#: the first of them that refused something.
_REFUSING_STEPS = ("hard_rule", "withhold", "objection", "consent", "default_deny")
#: The steps whose entries can name an agency, and the decision's id list of each.
_NAMING_STEPS = {"withhold": "withhold_ids", "objection": "view_ids"}


def entries_naming_caller(session: Session, actor: Actor, decision: dict[str, Any]) -> set[str]:
    """The ids, among the withhold entries and objections ``decision`` (as JSON) rests on,
    of those that name the caller's agency or someone of it."""
    withhold_ids = list(decision.get("withhold_ids") or ())
    view_ids = list(decision.get("view_ids") or ())
    if not withhold_ids and not view_ids:
        return set()  # the usual case: nothing to look up
    agency = own_agency(session, actor)
    found = set()
    for withhold_id in withhold_ids:
        row = session.get(WithholdRow, withhold_id)
        if row is not None and names_own_agency(row, agency):
            found.add(withhold_id)
    keyring = data_keyring()
    for view_id in view_ids:
        views = session.get(ChildViewRow, view_id)
        if views is not None and about_own_agency(views.open(keyring), agency):
            found.add(view_id)
    return found


def entries_naming_caller_in(session: Session, actor: Actor, child: ChildContext) -> frozenset[str]:
    """The ids of the child's withhold entries and objections that name the caller's agency
    or someone of it, from what the engine weighs (no row is read again)."""
    if not child.inputs.withholds and not child.inputs.views:
        return frozenset()
    agency = own_agency(session, actor)
    named = {
        entry.id
        for entry in child.inputs.withholds
        if entry.id and agency.named_by(entry.target, entry.actor_kind)
    }
    named.update(
        view.id
        for view in child.inputs.views
        if view.id and view.position == "objection" and agency.named_by_any(view.about)
    )
    return frozenset(named)


def without_entries(decision: dict[str, Any], hidden: set[str], purpose: str) -> dict[str, Any]:
    """``decision`` (as JSON) with the withhold entries and objections ``hidden`` names told
    as nothing permitting: their categories join the default deny's, their reasons and ids
    go, and a denial's basis is the first refusing step left."""
    reasons = [Reason.from_json(reason) for reason in decision.get("reasons", ())]
    if not any(reason.code in _NAMING_STEPS and reason.ref in hidden for reason in reasons):
        return decision
    shown: list[Reason] = []
    plain = 0
    for reason in reasons:
        # The default deny's own categories join the hidden ones: one plain reason for all.
        if reason.code == "default_deny" or (reason.code in _NAMING_STEPS and reason.ref in hidden):
            plain |= mask_of(reason.categories)
        else:
            shown.append(reason)
    shown.append(default_deny(purpose, plain))
    told = {**decision, "reasons": [reason.to_json() for reason in shown]}
    if decision.get("result") == "deny":
        told["basis"] = next(
            code
            for code in _REFUSING_STEPS
            if any(r.code == code and r.result == "deny" for r in shown)
        )
    for key in _NAMING_STEPS.values():
        kept = [ref for ref in decision.get(key, ()) if ref not in hidden]
        if kept:
            told[key] = kept
        else:
            told.pop(key, None)
    return told


def as_told_to(
    session: Session, actor: Actor, decision: dict[str, Any], purpose: str
) -> dict[str, Any]:
    """``decision`` (as JSON) as an officer who acts for the child is told it: whole, but for
    the withhold entries and objections naming the officer's agency (:func:`without_entries`)."""
    hidden = entries_naming_caller(session, actor, decision)
    return without_entries(decision, hidden, purpose) if hidden else decision
