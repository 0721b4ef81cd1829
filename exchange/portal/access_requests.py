"""``/requests``: access requests in the portal.

A legal representative (``access:request``) sees their own requests as the API tells them to
the requester (``GET /v1/access-requests/{id}``: the status, the message and the decision as
told, never its hidden reasons) and makes new ones; a consent officer (``access:decide``) sees
the pending queue of their jurisdiction (``GET /v1/access-requests?status=pending``, audited
the same) and approves or denies with a reason. Every step is the API's own: the same request
schemas, the same services (exchange.consents) and the same answers (exchange.api.consents),
so the portal can do nothing the API would refuse.
"""

from __future__ import annotations

import re
from typing import Any

from flask import render_template, request
from sqlalchemy import select

from consent import CATEGORIES, CATEGORY_LABELS, PURPOSE_LABELS, PURPOSES, ConsentError

# The API's request schema, answer and audit entry for these routes: one definition each.
from exchange.api.consents import (
    ACCESS_DECISION_SCHEMA,
    access_request_answer,
    audit_consent_read,
    body_instant,
    not_an_instant,
)
from exchange.consent_store import AccessRequestRow
from exchange.consents import ConsentProblem, decide_request, pending_queue, request_access
from exchange.consents.common import QUEUE_LIMIT
from exchange.db import session as db_session
from exchange.disclosure import load_child
from exchange.httpbasics import schema_validator
from exchange.portal.blueprint import Text, bp, message_page
from exchange.portal.sessions import current_actor, login_required
from exchange.problems import KINDS

REQUESTERS, DECIDERS = "access:request", "access:decide"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NOT_FOUND: Text = (
    "No existe o no tiene acceso a ello.",
    "It does not exist, or you have no access to it.",
)


def _page(status: int = 200, *, errors: list[Text] | None = None, **shown: Any) -> tuple[str, int]:
    actor, session = current_actor(), db_session()
    mine: list[dict[str, Any]] = []
    queue: list[dict[str, Any]] = []
    if REQUESTERS in actor.scopes:
        rows = session.scalars(
            select(AccessRequestRow)
            .where(AccessRequestRow.requester_person == actor.person_id)
            .order_by(AccessRequestRow.created_at.desc())
            .limit(QUEUE_LIMIT)
        )
        # Not audited, as the API does not audit a requester following their own request.
        mine = [access_request_answer(session, row, officer=False) for row in rows]
    if DECIDERS in actor.scopes:
        pending = pending_queue(session, actor, "pending")
        queue = [access_request_answer(session, row, officer=True) for row in pending]
        for row, seen in zip(pending, queue, strict=True):
            audit_consent_read(session, actor, seen["child_id"], row.id, "access_request")
        session.commit()
    return render_template(
        "requests.html",
        mine=mine,
        queue=queue,
        errors=errors or [],
        form=request.form,
        purposes=PURPOSES,
        purpose_labels=PURPOSE_LABELS,
        categories=CATEGORIES,
        category_labels=CATEGORY_LABELS,
        **shown,
    ), status


@bp.get("/requests")
@login_required(REQUESTERS, DECIDERS)
def access_requests() -> tuple[str, int]:
    return _page()


def _until(text: str) -> str:
    """A date alone (what a date field sends) is the end of that day, UTC."""
    text = text.strip()
    return f"{text}T23:59:59Z" if _DATE_ONLY.match(text) else text


def _refusal(error: ConsentProblem | ConsentError) -> tuple[int, list[Text]]:
    """A service's refusal as the API words it: its status and messages."""
    if isinstance(error, ConsentError):
        return 400, [(error.message_es, error.message_en)]
    listed = [(found["message_es"], found["message_en"]) for found in error.errors]
    return KINDS[error.kind][0], [(error.es, error.en), *listed]


@bp.post("/requests")
@login_required(REQUESTERS)
def create_access_request() -> tuple[str, int]:
    actor, session = current_actor(), db_session()
    body: dict[str, Any] = {
        "child_id": request.form.get("child_id", "").strip(),
        "purpose": request.form.get("purpose", ""),
        "categories": request.form.getlist("category"),
        "until": _until(request.form.get("until", "")),
    }
    failures = schema_validator(("access-request", 1)).validate(body)
    if failures:
        return _page(400, errors=[(f.message("es"), f.message("en")) for f in failures])
    try:
        child = load_child(session, body["child_id"])
    except LookupError:
        return _page(404, errors=[_NOT_FOUND])
    try:
        row, _entry = request_access(session, actor, child, body)
    except (ConsentProblem, ConsentError) as error:
        session.rollback()
        status, errors = _refusal(error)
        return _page(status, errors=errors)
    session.commit()
    return _page(201, created=access_request_answer(session, row, officer=False))


@bp.post("/requests/<request_id>/decision")
@login_required(DECIDERS)
def decide_access_request(request_id: str) -> tuple[str, int]:
    actor, session = current_actor(), db_session()
    choice = request.form.get("decision")
    until = request.form.get("until", "").strip()
    body: dict[str, Any] = {
        "approve": choice == "approve",
        "reason": request.form.get("reason", ""),
        **({"until": _until(until)} if until else {}),
    }
    errors = [
        (f.message("es"), f.message("en"))
        for f in schema_validator(ACCESS_DECISION_SCHEMA).validate(body)
    ]
    if choice not in ("approve", "deny"):
        errors.insert(0, ("Elija aprobar o denegar.", "Choose approve or deny."))
    wrong_until = not_an_instant(body.get("until"), "until")
    if wrong_until is not None:
        errors.append(wrong_until)
    if errors:
        return _page(400, errors=errors)
    try:
        row, _grant, _entry = decide_request(
            session, actor, request_id, body["approve"], body["reason"].strip(),
            body_instant(body, "until"),
        )  # fmt: skip
    except LookupError:
        session.rollback()
        return message_page(404, ("No encontrado", "Not found"), _NOT_FOUND)
    except (ConsentProblem, ConsentError) as error:
        session.rollback()
        status, errors = _refusal(error)
        return _page(status, errors=errors)
    session.commit()
    return _page(200, decided=access_request_answer(session, row, officer=True))
