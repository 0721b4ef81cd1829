"""What an access request granted at once rests on, and until when (and how the end of a grant
an officer made is told: :func:`granted_access`); and whether the access a granted request
gave still holds (:func:`access_as_of`).

A request is granted at once when the consents, grants or overrides already in force permit
every category it asks for. No grant is made then (what permits stays what permits, so a
revocation ends the access too); instead the request keeps its **basis** — the decision's basis
and the ids that permit — and the instant that basis stops covering the request, which the
requester is told instead of the date they asked for.

That end follows from what the access rests on, never from a restriction the requester may
not be told of: a withhold entry that starts later refuses the reads from its start (every
read is decided then), but does not shorten the ``until`` the requester is told — that would
tell them the entry exists, and when it starts (docs/consent.md §8.5, §8.8).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from consent import Actor as EngineActor
from consent import Decision, Grant
from exchange.auth import as_utc
from exchange.consent_store import ConsentRow, GrantRow, OverrideRow
from exchange.disclosure import ChildContext, evaluate

#: The steps that can grant a request at once, and the decision's id list naming each.
_COVERING_STEPS = {"consent": "consent_ids", "grant": "grant_ids", "override": "override_ids"}


def _permit_basis(decision: Decision) -> frozenset[tuple[str, str | None]]:
    """The steps (and the consent, grant or override ids) that permit something."""
    return frozenset(
        (reason.code, reason.ref) for reason in decision.reasons if reason.result == "permit"
    )


def _boundaries(child: ChildContext, after: datetime, before: datetime) -> list[datetime]:
    """Every instant strictly between ``after`` and ``before`` at which one of the child's
    consents, provisions, grants or overrides starts or ends: the only moments at which a
    decision about the child can change by itself, as its requester may be told it (withhold
    entries, which also start and end, are weighed on every read but never told:
    :func:`_as_told`)."""
    stamps: set[float] = set()
    for node in child.consent_set.nodes:  # periods already capped at the 18th birthday
        stamps.update((node.start, node.end))
    for override in child.inputs.overrides:
        stamps.update((override.starts.timestamp(), override.effective_end().timestamp()))
    low, high = after.timestamp(), before.timestamp()
    return [datetime.fromtimestamp(stamp, UTC) for stamp in sorted(stamps) if low < stamp < high]


def _as_told(child: ChildContext) -> ChildContext:
    """The child without its withhold entries: what an access's end may be worked out from.
    An entry is never told to the reader it refuses (docs/consent.md §8.8), so it must not
    shorten the end the requester is told either — probing one category at a time would
    give away which entry, and the very second it starts. Reads stay decided with it."""
    return replace(child, inputs=replace(child.inputs, withholds=()))


def covered_access(
    child: ChildContext,
    engine_for: EngineActor,
    purpose: str,
    categories: list[str],
    decision: Decision,
    moment: datetime,
    asked_until: datetime,
) -> dict[str, Any]:
    """What a request granted at once rests on, and until when: the decision's basis, the
    consent, grant and override ids that permit, and the first instant before ``asked_until``
    at which the same question would no longer be permitted in full on that same basis —
    the earliest end among what it rests on (a period, a provision's period, a grant's end,
    the 18th birthday, an override's 72 hours), or a deny of the consents and grants in force
    that starts meanwhile. Never a withhold entry (:func:`_as_told`): it refuses the reads
    from its start, while the requester is told the end worked out without it.

    The 18th birthday is told only to a requester the decision permits ``identity`` (where the
    date of birth is): to anyone else an end that depended on it would give it away, even
    one request at a time with different ``until``s. For them the search stops short of the
    birthday, an access that lasts until then is answered with the ``until`` asked for, and
    every answer says it ends at the child's majority at the latest
    (``ends_at_majority_at_latest``), whether or not that comes first.
    """
    basis = _permit_basis(decision)
    majority = child.facts.eighteenth_birthday
    reveal = tells_majority(decision)
    horizon = asked_until if reveal or majority is None else min(asked_until, majority)
    ends = asked_until
    told = _as_told(child)
    for instant in _boundaries(told, moment, horizon):
        later = evaluate(told, engine_for, "read", purpose, categories, now=instant)
        if later.withheld or _permit_basis(later) != basis:
            ends = instant
            break
    access: dict[str, Any] = {"basis": decision.basis}
    for step, key in _COVERING_STEPS.items():
        ids = sorted({ref for code, ref in basis if code == step and ref is not None})
        if ids:
            access[key] = ids
    return {**access, **end_as_told(ends, reveal)}


def tells_majority(decision: Decision) -> bool:
    """Whether an access's end may be the 18th birthday itself: only for a requester the
    decision permits ``identity``, where the date of birth is."""
    return "identity" in decision.categories


def end_as_told(ends: datetime, reveal: bool) -> dict[str, Any]:
    """How an access's end is told to its requester: ``until``, and for a requester who may
    not learn the 18th birthday (:func:`tells_majority`) ``ends_at_majority_at_latest`` —
    their ``ends`` having been worked out without the birthday's cap."""
    told: dict[str, Any] = {"until": _utc_text(ends)}
    if not reveal:
        told["ends_at_majority_at_latest"] = True
    return told


def granted_access(
    grant: Grant, decision: Decision | None, asked_until: datetime
) -> dict[str, Any]:
    """What a request an officer approved rests on: ``grant``, made until ``asked_until`` (the
    earlier of the request's ``until`` and the officer's) but cut at the 18th birthday. As for
    :func:`covered_access`, the cut end is told only to a requester ``decision`` (theirs now,
    with the grant) permits ``identity``; anyone else — and a requester no longer registered,
    ``decision`` None — is told ``asked_until``, and that it ends at the child's majority at
    the latest."""
    reveal = decision is not None and tells_majority(decision)
    ends = grant.until if reveal else asked_until
    return {"basis": "grant", "grant_ids": [grant.id], **end_as_told(ends, reveal)}


#: Why a granted request's access no longer holds (``access.ended_because``).
ENDED_BECAUSE = ("expired", "majority", "revoked", "not_upheld")


def access_as_of(
    session: Session,
    access: dict[str, Any],
    moment: datetime,
    majority: datetime | None = None,
) -> dict[str, Any]:
    """``access`` as a granted request recorded it, and whether it still holds at ``moment``.

    The request's status stays ``granted``: that is how it was decided, and history. What the
    access rested on can end before the request's ``access.until``: a consent or grant revoked,
    an emergency override a review did not uphold. From the first of those instants (or from
    ``access.until``, whichever comes first) the answer says ``active: false``, with
    ``ended_at``, ``ended_because`` (one of :data:`ENDED_BECAUSE`) and ``ended_by``, the ids
    whose revocation or review ended it (none when it simply ran out). Like ``until``, the end
    follows from what the access rests on alone, so it tells the requester nothing else about
    the child (an objection or a new restriction is not named here; the read says no).

    An access told ``ends_at_majority_at_latest`` (its requester may not learn the 18th
    birthday) also ends at ``majority``, the child's 18th birthday, when that comes first:
    then ``ended_because`` is ``majority`` and ``ended_at`` is left out — from then on reads
    are refused anyway, but the instant itself is the date of birth.
    """
    endings: list[tuple[datetime, str, str | None]] = []
    until = access.get("until")
    if until:
        endings.append((as_utc(datetime.fromisoformat(until)), "expired", None))
    if majority is not None:
        # Also for a requester told the birthday: a date of birth corrected since the grant
        # brings the 18th birthday before the stored ``until``, and reads stop there.
        endings.append((as_utc(majority), "majority", None))
    for consent_id in access.get("consent_ids", ()):
        consent_row = session.get(ConsentRow, consent_id)
        if consent_row is not None and consent_row.revoked_at is not None:
            endings.append((as_utc(consent_row.revoked_at), "revoked", consent_id))
    for grant_id in access.get("grant_ids", ()):
        grant_row = session.get(GrantRow, grant_id)
        if grant_row is not None and grant_row.revoked_at is not None:
            endings.append((as_utc(grant_row.revoked_at), "revoked", grant_id))
    for override_id in access.get("override_ids", ()):
        override_row = session.get(OverrideRow, override_id)
        if override_row is not None and override_row.upheld is False:
            endings.append((as_utc(override_row.ends_at), "not_upheld", override_id))
    if until:  # as every instant is answered, whatever offset it was kept with
        access = {**access, "until": _utc_text(as_utc(datetime.fromisoformat(until)))}
    past = [ending for ending in endings if ending[0] <= moment]
    if not past:
        return {**access, "active": True}
    first = min(instant for instant, _why, _ref in past)
    at_first = [(why, ref) for instant, why, ref in past if instant == first]
    because = min(why for why, _ref in at_first)
    return {
        **access,
        "active": False,
        "ended_at": None if because == "majority" else _utc_text(first),
        "ended_because": because,
        "ended_by": sorted({ref for _why, ref in at_first if ref}),
    }


def _utc_text(moment: datetime) -> str:
    """An instant as answers write it: in UTC (exchange.consents.common.instant_text)."""
    return moment.astimezone(UTC).isoformat()
