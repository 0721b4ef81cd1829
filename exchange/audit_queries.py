"""Reading the audit log for oversight: the events query view, alerts, log size.

Alert sources are pluggable: :data:`ALERT_SOURCES` starts with denial and access-request
spikes, and other areas
(emergency overrides, from the consent engine) add theirs with :func:`register_alert_source`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from exchange.audit_log import (
    SCHEMA,
    AuditCheckpoint,
    AuditEntry,
    AuditLogState,
    format_time,
)


def known_actions() -> list[str]:
    """Every action code the audit-event schema allows."""
    from schemas.registry import default_registry

    document = default_registry().document(*SCHEMA)
    return list(document["properties"]["action"]["enum"])


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
    ).first()


def latest_checkpoint_size(session: Session) -> int | None:
    return session.scalar(select(func.max(AuditCheckpoint.size)))


def log_size(session: Session) -> int:
    """Number of entries sequenced into the tree (signed or not yet)."""
    return session.scalar(select(AuditLogState.size).where(AuditLogState.id == 1)) or 0


def child_family(session: Session, child_id: str) -> list[str]:
    """The ids a child's entries may carry: the child it now is, and every child merged into
    it (entries written before a merge keep the id they were written with). An id this hub
    does not know (a peer's, or a typing slip) stands alone."""
    from exchange.children import merged_child_ids

    try:
        return merged_child_ids(session, child_id)
    except LookupError:
        return [child_id]


def find_events(
    session: Session,
    *,
    child_ids: list[str] | None = None,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_index: int = -1,
    before_index: int | None = None,
    newest_first: bool = False,
    limit: int = 100,
) -> list[AuditEntry]:
    """Sequenced entries matching every filter given, by index, after ``after_index`` (and
    before ``before_index``), oldest first unless ``newest_first``; ``child_ids``: entries
    about any of them (see :func:`child_family`); ``since`` and ``until`` are aware datetimes
    in any zone."""
    query = select(AuditEntry).where(AuditEntry.idx.is_not(None), AuditEntry.idx > after_index)
    if before_index is not None:
        query = query.where(AuditEntry.idx < before_index)
    if child_ids is not None:
        query = query.where(AuditEntry.child_id.in_(child_ids))
    if actor is not None:
        query = query.where(or_(AuditEntry.actor_agency == actor, AuditEntry.actor_person == actor))
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if outcome is not None:
        query = query.where(AuditEntry.outcome == outcome)
    # SQLite keeps recorded_at as UTC wall-clock text and compares bound times as text, so
    # a bound in another zone must be turned into UTC first or its offset is lost.
    if since is not None:
        query = query.where(AuditEntry.recorded_at >= since.astimezone(UTC))
    if until is not None:
        query = query.where(AuditEntry.recorded_at < until.astimezone(UTC))
    order = AuditEntry.idx.desc() if newest_first else AuditEntry.idx
    return list(session.scalars(query.order_by(order).limit(limit)))


@dataclass(frozen=True)
class AlertWindow:
    """What alert sources look at: entries recorded in ``[start, end)``."""

    start: datetime
    end: datetime
    denial_threshold: int
    #: Access requests one actor files in the window that make a spike.
    request_threshold: int = 50

    def entries_within(self) -> tuple[Any, Any]:
        """The conditions that select the audit entries recorded in the window."""
        return (AuditEntry.recorded_at >= self.start, AuditEntry.recorded_at < self.end)


AlertSource = Callable[[Session, AlertWindow], list[dict[str, Any]]]


#: Actions whose ``denied`` outcome is the actor's decision about what others get, not a
#: refusal of the actor (see :func:`denial_spikes`).
DECIDING_FOR_OTHERS = ("decision_evaluated", "access_denied")


def denial_spikes(session: Session, window: AlertWindow) -> list[dict[str, Any]]:
    """Actors denied at least ``denial_threshold`` times in the window: entries whose actor was
    refused something. Not counted: a consent officer's dry runs (``decision_evaluated``: what
    others would get) and decisions on someone else's access request (``access_denied``):
    there the actor is who decided — an officer, a Procuraduría's system, the hub denying a
    disabled requester's pending requests — and the entry names only the request, not the
    requester, so it counts against nobody. A requester refused at once (a hard rule, when
    asking) is the actor of that ``access_requested`` entry and counts."""
    return _spikes(
        _counts_by_actor(
            session,
            AuditEntry.outcome == "denied",
            AuditEntry.action.not_in(DECIDING_FOR_OTHERS),
            *window.entries_within(),
        ),
        "denial_spike",
        "denials",
        window.denial_threshold,
    )


def request_denial_spikes(session: Session, window: AlertWindow) -> list[dict[str, Any]]:
    """People who denied at least ``denial_threshold`` access requests in the window: not
    refusals of them (:func:`denial_spikes`), but an officer turning request after request
    down is still one for oversight to look at — access to a child's lawyer is a right. Only
    decisions a person made: not the hub's own denials when it disables a requester, nor a
    Procuraduría system's (no person acting)."""
    return _spikes(
        _counts_by_actor(
            session,
            AuditEntry.action == "access_denied",
            AuditEntry.actor_person.is_not(None),
            *window.entries_within(),
        ),
        "request_denial_spike",
        "denied_requests",
        window.denial_threshold,
    )


def access_request_spikes(session: Session, window: AlertWindow) -> list[dict[str, Any]]:
    """Actors who filed at least ``request_threshold`` access requests in the window. Filing
    is never refused for being many (each request waits for an officer), so a requester
    asking about child after child — fishing for which children the hub holds, or burying the
    officers' queue — shows only here."""
    return _spikes(
        _counts_by_actor(
            session,
            AuditEntry.action == "access_requested",
            *window.entries_within(),
        ),
        "access_request_spike",
        "requests",
        window.request_threshold,
    )


ActorCounts = dict[tuple[str | None, str | None], list[Any]]


def _counts_by_actor(session: Session, *conditions: Any) -> ActorCounts:
    """Per actor (agency, person): how many entries ``conditions`` select, the first and the
    last one's time."""
    counts: ActorCounts = {}
    for agency_id, person_id, count, first, last in session.execute(
        select(
            AuditEntry.actor_agency,
            AuditEntry.actor_person,
            func.count(AuditEntry.id),
            func.min(AuditEntry.recorded_at),
            func.max(AuditEntry.recorded_at),
        )
        .where(*conditions)
        .group_by(AuditEntry.actor_agency, AuditEntry.actor_person)
    ):
        counts[(agency_id, person_id)] = [count, _aware(first), _aware(last)]
    return counts


def _spikes(counts: ActorCounts, kind: str, counted: str, threshold: int) -> list[dict[str, Any]]:
    """An alert of ``kind`` for each actor counted at least ``threshold`` times, most first."""
    alerts = []
    for (agency_id, person_id), (count, first, last) in sorted(
        counts.items(), key=lambda item: -item[1][0]
    ):
        if count < threshold:
            continue
        actor = {"agency_id": agency_id} if agency_id else {}
        if person_id:
            actor["person_id"] = person_id
        alerts.append(
            {
                "kind": kind,
                "actor": actor,
                counted: count,
                "threshold": threshold,
                "first_at": format_time(first),
                "last_at": format_time(last),
            }
        )
    return alerts


#: Everything ``GET /v1/audit/alerts`` reports; other areas add theirs (overrides, …) with
#: :func:`register_alert_source`.
ALERT_SOURCES: list[AlertSource] = [denial_spikes, request_denial_spikes, access_request_spikes]


def register_alert_source(source: AlertSource) -> AlertSource:
    """Add an alert source (usable as a decorator); each returns alerts with a ``kind``."""
    if source not in ALERT_SOURCES:
        ALERT_SOURCES.append(source)
    return source


def collect_alerts(session: Session, window: AlertWindow) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    for source in ALERT_SOURCES:
        alerts.extend(source(session, window))
    return alerts


def _aware(moment: datetime | str) -> datetime:
    if isinstance(moment, str):  # SQLite aggregates come back as text
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
