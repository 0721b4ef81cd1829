"""Emergency overrides: opening one, the Procuraduría's review, the reviewers' queue and
one override's reading, and the alerts that show oversight each override while it lasts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, select, true
from sqlalchemy.orm import Session

from consent import OVERRIDE_REVIEW_DUE, ConsentError, Override, check_override
from exchange.audit_queries import AlertWindow, register_alert_source
from exchange.auth import Actor, as_utc, utcnow
from exchange.consent_store import OverrideRow, new_id
from exchange.consents.access import QUEUE_PAGE, Page, paged
from exchange.consents.common import (
    CONSENT_AUTHORITY_KINDS,
    JUSTIFICATION,
    OFFICER_ROLES,
    QUEUE_LIMIT,
    ConsentProblem,
    acts_for_child,
    add_review,
    audit,
    format_error,
    held_in_jurisdiction,
    is_oversight,
    party,
    problems,
    refuse_control_characters,
    require_acts_for,
)
from exchange.crypto import data_keyring
from exchange.disclosure import ChildContext, forget_child, load_child


def open_override(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Open an emergency override (``override/1``, already schema-valid)."""
    refuse_control_characters(("/justification", document["justification"], JUSTIFICATION))
    require_acts_for(session, actor, child)
    unknown = set(document.get("record_ids", ())) - {record.id for record in child.records}
    if unknown:
        raise ConsentProblem(
            "validation",
            "Esos expedientes no son de esta niña, niño o adolescente.",
            "Those records are not this child's.",
            [
                {
                    "pointer": "/record_ids",
                    "message_es": ", ".join(sorted(unknown)),
                    "message_en": ", ".join(sorted(unknown)),
                }
            ],
        )
    moment = utcnow()
    override_id = new_id("ovr")
    stored_doc = {
        "id": override_id,
        "child_id": child.child_id,
        "basis_code": document["basis_code"],
        "justification": document["justification"],
        "categories": document["categories"],
        "hours": document["hours"],
        "starts": moment.isoformat(),
        "by": {
            key: value
            for key, value in (("agency_id", actor.agency_id), ("person_id", actor.person_id))
            if value
        },
        "by_roles": sorted(actor.roles),
    }
    for key in ("purpose", "record_ids"):
        if key in document:
            stored_doc[key] = document[key]
    try:
        override = Override.from_json(stored_doc)
    except ConsentError as error:
        raise format_error(error) from error
    found = check_override(override)
    if found:
        raise ConsentProblem(
            "validation",
            "El acceso de emergencia no puede abrirse.",
            "The emergency override cannot be opened.",
            problems(found),
        )
    stored = override.to_json()
    row = OverrideRow(
        id=override_id,
        child_id=child.child_id,
        opened_by_agency=actor.agency_id,
        opened_by_person=actor.person_id,
        basis_code=override.basis_code,
        starts_at=override.starts,
        ends_at=override.effective_end(),
    )
    row.seal(data_keyring(), stored)
    session.add(row)
    entry = audit(
        session,
        actor,
        "override_used",
        child.child_id,
        object_type="override",
        object_id=override_id,
        purpose=override.purpose,
        decision_basis="override",
        override_id=override_id,
        decision_categories=sorted(override.categories),
        detail=override.basis_code,
    )
    forget_child(child.child_id)
    return stored, entry


def review_override(
    session: Session, actor: Actor, override_id: str, upheld: bool, reason: str
) -> tuple[dict[str, Any], str]:
    """The Procuraduría's review of an override; not upheld ends it at once. Whoever opened
    it does not review it."""
    opened = session.get(OverrideRow, override_id)
    if opened is not None and (
        (actor.person_id and opened.opened_by_person == actor.person_id)
        or opened.opened_by_agency == actor.agency_id
    ):
        raise ConsentProblem(
            "forbidden",
            "Ni quien abrió el acceso de emergencia ni su institución pueden revisarlo.",
            "Neither whoever opened the emergency override nor their agency can review it.",
        )
    row, child, document = add_review(session, actor, OverrideRow, override_id, upheld, reason)
    row.seal(data_keyring(), document)
    row.upheld = upheld
    row.ends_at = Override.from_json(document).effective_end()
    entry = audit(
        session,
        actor,
        "override_reviewed",
        child.child_id,
        object_type="override",
        object_id=row.id,
        detail="upheld" if upheld else "not_upheld",
    )
    forget_child(child.child_id)
    return document, entry


def overdue_overrides(session: Session, moment: datetime) -> list[OverrideRow]:
    """Overrides unreviewed past :data:`consent.OVERRIDE_REVIEW_DUE` (24 h)."""
    return list(
        session.scalars(
            select(OverrideRow)
            .where(
                OverrideRow.reviewed_at.is_(None),
                OverrideRow.starts_at <= moment - OVERRIDE_REVIEW_DUE,
            )
            .order_by(OverrideRow.starts_at)
        )
    )


#: The states ``GET /v1/overrides?status=`` lists: not yet reviewed, or reviewed.
OVERRIDE_STATES = ("open", "reviewed")


def _reviewable_by(actor: Actor, row: OverrideRow) -> bool:
    """Whoever opened an override, and their agency, never review it (:func:`review_override`).
    :func:`_visible_to` makes the same test in SQL for the queue: change both together."""
    opened_by_them = actor.person_id is not None and row.opened_by_person == actor.person_id
    return not opened_by_them and row.opened_by_agency != actor.agency_id


def override_summary(row: OverrideRow, moment: datetime) -> dict[str, Any]:
    """An override as its reviewers' queue lists it: what was opened, by whom, for how long and
    whether it was reviewed — not the written justification, which is read one override at a
    time (:func:`read_override`, audited)."""
    document = row.open(data_keyring())
    return {
        "id": row.id,
        "child_id": row.child_id,
        "basis_code": row.basis_code,
        "categories": list(document.get("categories", ())),
        "purpose": document.get("purpose"),
        "record_ids": list(document.get("record_ids", ())),
        "opened_by": party(row.opened_by_agency, row.opened_by_person),
        "starts_at": as_utc(row.starts_at).isoformat(),
        "ends_at": as_utc(row.ends_at).isoformat(),
        "in_force": as_utc(row.starts_at) <= moment < as_utc(row.ends_at),
        "status": "reviewed" if row.reviewed_at is not None else "open",
        "review_due_at": (as_utc(row.starts_at) + OVERRIDE_REVIEW_DUE).isoformat(),
        "upheld": row.upheld,
    }


def read_override(session: Session, actor: Actor, override_id: str) -> tuple[dict[str, Any], str]:
    """One override with its written justification and its review, for whoever reviews it (a
    caller who acts for the child, as for the review) or oversight (:func:`is_oversight`).
    Anyone else gets ``LookupError`` (404), as if it did not exist. The justification may
    describe the child's situation, so each reading is an audit entry (``consents_read``)."""
    row = session.get(OverrideRow, override_id)
    if row is None:
        raise LookupError(override_id)
    acts_for = acts_for_child(session, actor, load_child(session, row.child_id))
    if not acts_for and not is_oversight(actor):
        raise LookupError(override_id)
    may_review = (
        row.reviewed_at is None
        and acts_for
        and "consent:write" in actor.scopes
        and actor.person_id is not None
        and bool(OFFICER_ROLES & actor.roles)
        and _reviewable_by(actor, row)
    )
    answer = {
        **override_summary(row, utcnow()),
        "may_review": may_review,
        "override": row.open(data_keyring()),
    }
    entry = audit(
        session,
        actor,
        "consents_read",
        row.child_id,
        object_type="override",
        object_id=row.id,
    )
    return answer, entry


def override_queue(
    session: Session,
    actor: Actor,
    status: str,
    *,
    limit: int = QUEUE_PAGE,
    after: str | None = None,
) -> Page[dict[str, Any]]:
    """A page of the overrides in ``status`` (:data:`OVERRIDE_STATES`) as summaries: for
    oversight, all of them; for a reviewer (an administrator too), those about children in
    their jurisdiction now (:func:`held_in_jurisdiction`, transfers and merges followed) that
    they may review (not opened by them or their agency), as :func:`read_override` shows them
    one at a time only to those who act for the child. Open ones oldest first (the reviewers'
    work: whoever waits longest comes first), reviewed ones by their review, newest first
    (what oversight looks for is the latest). At most ``limit`` (never more than
    :data:`QUEUE_LIMIT`), after the override ``after`` — any the caller sees, also one reviewed
    since that page was read; another id is a ``validation`` problem about ``/query/after``.
    Chosen and counted in the database: the table only grows, one row per emergency."""
    visible = _visible_to(actor)

    def cursor(row: Any) -> ColumnElement[bool]:
        # An open override stays a place in the open queue once reviewed; a reviewed one
        # stays reviewed, so an open one is no place in the reviewed list.
        return visible(row) if status == "open" else and_(visible(row), _reviewed(row))

    listed = and_(
        visible(OverrideRow),
        _reviewed(OverrideRow) if status == "reviewed" else OverrideRow.reviewed_at.is_(None),
    )
    key, newest_first = (_started, False) if status == "open" else (_review_time, True)
    page = paged(
        session,
        OverrideRow,
        listed,
        cursor,
        key,
        newest_first,
        min(limit, QUEUE_LIMIT),
        after,
        _unknown_after,
    )
    moment = utcnow()
    return Page([override_summary(row, moment) for row in page.rows], page.total, page.next_after)


def _visible_to(actor: Actor) -> Callable[[Any], ColumnElement[bool]]:
    """Which overrides the queue shows ``actor``, in SQL: the test :func:`_reviewable_by`
    makes, and the jurisdiction's."""
    if is_oversight(actor):
        return lambda row: true()
    if actor.kind not in CONSENT_AUTHORITY_KINDS or not actor.jurisdiction:
        return lambda row: false()
    jurisdiction = actor.jurisdiction

    def visible(row: Any) -> ColumnElement[bool]:
        # IS DISTINCT FROM, not !=: an opener unknown (NULL) is not the caller, as in Python.
        others = row.opened_by_agency.is_distinct_from(actor.agency_id)
        if actor.person_id is not None:
            others = and_(others, row.opened_by_person.is_distinct_from(actor.person_id))
        return and_(held_in_jurisdiction(row.child_id, jurisdiction), others)

    return visible


def _reviewed(row: Any) -> ColumnElement[bool]:
    return row.reviewed_at.is_not(None)


def _started(row: Any) -> Any:
    return row.starts_at


def _review_time(row: Any) -> Any:
    return row.reviewed_at


def _unknown_after() -> ConsentProblem:
    return ConsentProblem(
        "validation",
        "«after» no es un acceso de emergencia de esta lista.",
        "'after' is not an emergency override in this list.",
        [
            {
                "pointer": "/query/after",
                "message_es": "Indique el id del último acceso de emergencia de la página "
                "anterior, o nada para empezar por el principio.",
                "message_en": "Give the id of the last emergency override of the previous "
                "page, or nothing to start from the beginning.",
            }
        ],
    )


@register_alert_source
def override_alerts(session: Session, window: AlertWindow) -> list[dict[str, Any]]:
    """Every override in force at some time during the window — opened before its end and
    ending after its start, so one opened earlier and still running, or ended meanwhile by its
    review, is there too — and every one still unreviewed 24 h after it was opened (whenever
    that was): oversight sees each emergency access while it lasts."""
    alerts: list[dict[str, Any]] = []
    in_force = session.scalars(
        select(OverrideRow)
        .where(OverrideRow.starts_at < window.end, OverrideRow.ends_at > window.start)
        .order_by(OverrideRow.starts_at)
    )
    for row in in_force:
        alerts.append({"kind": "override", **_override_alert(row)})
    for row in overdue_overrides(session, window.end):
        alerts.append(
            {
                "kind": "override_unreviewed",
                **_override_alert(row),
                "review_due_at": (as_utc(row.starts_at) + OVERRIDE_REVIEW_DUE).isoformat(),
            }
        )
    return alerts


def _override_alert(row: OverrideRow) -> dict[str, Any]:
    return {
        "override_id": row.id,
        "child_id": row.child_id,
        "basis_code": row.basis_code,
        "actor": party(row.opened_by_agency, row.opened_by_person),
        "starts_at": as_utc(row.starts_at).isoformat(),
        "ends_at": as_utc(row.ends_at).isoformat(),
        "reviewed": row.reviewed_at is not None,
        "upheld": row.upheld,
        # Not the written justification: it may describe the child's situation (case content,
        # category best_interest). Oversight reads it one override at a time with
        # GET /v1/overrides/{id}, which is audited.
    }
