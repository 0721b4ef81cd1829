"""What an access request granted at once rests on, and until when.

A request is granted at once when the consents, grants or overrides already in force permit
every category it asks for. No grant is made then (what permits stays what permits, so a
revocation ends the access too); instead the request keeps its **basis** — the decision's basis
and the ids that permit — and the instant that basis stops covering the request, which the
requester is told instead of the date they asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from consent import Actor as EngineActor
from consent import Decision
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
    consents, provisions, grants, overrides or withhold entries starts or ends: the only
    moments at which a decision about the child can change by itself."""
    stamps: set[float] = set()
    for node in child.consent_set.nodes:  # periods already capped at the 18th birthday
        stamps.update((node.start, node.end))
    for override in child.inputs.overrides:
        stamps.update((override.starts.timestamp(), override.effective_end().timestamp()))
    for entry in child.inputs.withholds:
        stamps.update(bound.timestamp() for bound in (entry.starts, entry.ends) if bound)
    low, high = after.timestamp(), before.timestamp()
    return [datetime.fromtimestamp(stamp, UTC) for stamp in sorted(stamps) if low < stamp < high]


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
    the 18th birthday, an override's 72 hours), or a restriction that starts meanwhile.

    The 18th birthday is told only to a requester the decision permits ``identity`` (where the
    date of birth is): to anyone else an end that depended on it would give it away, even
    one request at a time with different ``until``s. For them the search stops short of the
    birthday, an access that lasts until then is answered with the ``until`` asked for, and
    every answer says it ends at the child's majority at the latest
    (``ends_at_majority_at_latest``), whether or not that comes first.
    """
    basis = _permit_basis(decision)
    majority = child.facts.eighteenth_birthday
    reveal = "identity" in decision.categories
    horizon = asked_until if reveal or majority is None else min(asked_until, majority)
    ends = asked_until
    for instant in _boundaries(child, moment, horizon):
        later = evaluate(child, engine_for, "read", purpose, categories, now=instant)
        if later.withheld or _permit_basis(later) != basis:
            ends = instant
            break
    access: dict[str, Any] = {"basis": decision.basis}
    for step, key in _COVERING_STEPS.items():
        ids = sorted({ref for code, ref in basis if code == step and ref is not None})
        if ids:
            access[key] = ids
    access["until"] = ends.isoformat()
    if not reveal:
        access["ends_at_majority_at_latest"] = True
    return access
