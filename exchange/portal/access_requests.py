"""``/requests``: access requests in the portal.

A legal representative (``access:request``) sees their own requests as the API tells them to
the requester (``GET /v1/access-requests/{id}``: the status, the message and the decision as
told, never its hidden reasons nor the officer's written reason) and makes new ones; a consent
officer (``access:decide``) sees the pending queue of their jurisdiction
(``GET /v1/access-requests?status=pending``, audited the same) and approves or denies with a
reason. Each list is shown a page at a time, as the API pages it (``after``, the last id of the
page before), saying how many it holds in all: nothing is left out unsaid. Every step is the
API's own: the same request schemas, the same services (exchange.consents) and the same answers
(exchange.api.consents), so the portal can do nothing the API would refuse.

What the page adds is wording for a person: one line on where each request stands, the
automatic check made when it was asked only where it still says something (labelled as such,
and worded for whoever reads it), who asked by name, one plain message per problem with a
form, shown beside the request it is about and tied to the field it names. In the queue, a
request the officer cannot approve — their own or their agency's (which someone who both asks
and decides, an administrator, sees there), or about a child who is now 18 — is shown without
the choices that would be refused, saying why. Dates are read and shown in central Mexico time
(exchange.portal.blueprint.PAGE_TIME). A form that worked answers with a redirect to the list
(Post/Redirect/Get), so a reload or a second click asks or decides nothing twice.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, time
from typing import Any

from flask import after_this_request, g, render_template, request, url_for
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.wrappers import Response

from consent import CATEGORIES, CATEGORY_LABELS, PURPOSE_LABELS, PURPOSES, ConsentError

# The API's request schema, answer and audit entry for these routes: one definition each.
from exchange.api.consents import (
    ACCESS_DECISION_SCHEMA,
    access_request_answer,
    audit_consent_read,
    body_instant,
    not_an_instant,
)
from exchange.api.record_reads import answer_in_even_time
from exchange.auth import Actor, utcnow
from exchange.consent_store import AccessRequestRow
from exchange.consents import ConsentProblem, decide_request, request_access
from exchange.consents.access import (
    asked_end_passed,
    child_asked_about,
    own_requests,
    request_queue,
)
from exchange.consents.common import JUSTIFICATION, control_characters_said
from exchange.db import session as db_session
from exchange.httpbasics import schema_validator
from exchange.portal.blueprint import (
    PAGE_TIME,
    Text,
    bp,
    go,
    leave_notice,
    message_page,
    notice,
    page_date,
    readable_day,
)
from exchange.portal.form_fields import reason_error, typed_text
from exchange.portal.request_paging import (
    MINE_AFTER,
    NO_SUCH_PAGE,
    QUEUE_AFTER,
    mine_line,
    page_at,
    paging,
    places,
    queue_line,
    stale_pages,
)
from exchange.portal.request_views import adult_since, as_shown, names_of, whose
from exchange.portal.sessions import current_actor, login_required
from exchange.problems import KINDS
from schemas.registry import default_registry
from schemas.validation import ValidationFailure

REQUESTERS, DECIDERS = "access:request", "access:decide"
MADE, DECIDED = "request_made", "request_decided"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REASON_LIMIT: int = ACCESS_DECISION_SCHEMA["properties"]["reason"]["maxLength"]


@functools.cache
def justification_limits() -> tuple[int, int]:
    """The shortest and longest justification the request schema takes (read when first
    needed: building the hub does not load the schemas)."""
    schema = default_registry().document("access-request", 1)["properties"]["justification"]
    return schema["minLength"], schema["maxLength"]


def _request_fields() -> dict[str, Text]:
    shortest, longest = justification_limits()
    return {
        **_REQUEST_FIELDS,
        "justification": (
            f"La justificación, si la escribe, debe tener entre {shortest} y {longest} caracteres.",
            f"The justification, if you write one, must be {shortest} to {longest} characters "
            "long.",
        ),
    }


_NOT_FOUND: Text = (
    "No existe o no tiene acceso a ello.",
    "It does not exist, or you have no access to it.",
)

# One plain message per field of the request form (the schema's own messages name JSON
# members and patterns).
_REQUEST_FIELDS: dict[str, Text] = {
    "child_id": (
        "Escriba el id de la niña, niño o adolescente (empieza con nna_), sin espacios.",
        "Type the child's id (it begins with nna_), without spaces.",
    ),
    "purpose": ("Elija una finalidad de la lista.", "Choose a purpose from the list."),
    "categories": (
        "Marque al menos una categoría de datos.",
        "Tick at least one data category.",
    ),
    "until": (
        "Elija en el calendario la fecha hasta la que necesita el acceso.",
        "Pick from the calendar the date until which you need access.",
    ),
}


def _today(today: date) -> Text:
    return (
        f"Hoy es {readable_day(today, 'es')} en la hora del centro de México (UTC−06:00).",
        f"Today is {readable_day(today, 'en')} in central Mexico time (UTC−06:00).",
    )


def _request_until_past(today: date) -> Text:
    # Only a day before today (in the time a date is read in) has ended, never today itself:
    # the day that is today there is said, for whoever is elsewhere.
    today_es, today_en = _today(today)
    return (
        f"La fecha límite ya pasó: elija hoy o una fecha posterior. {today_es}",
        f"The end date is in the past: choose today or a later date. {today_en}",
    )


# ... and of the decision form.
_CHOOSE: Text = ("Elija aprobar o denegar.", "Choose approve or deny.")
_WRITE_A_REASON: Text = ("Escriba el motivo de su decisión.", "Write the reason for your decision.")
_DECISION_UNTIL_NOT_A_DATE: Text = (
    "«Vigente hasta» debe ser una fecha (elíjala en el calendario) o quedar vacío.",
    "“Valid until” must be a date (pick it from the calendar), or be left empty.",
)


def _decision_until_past(today: date) -> Text:
    today_es, today_en = _today(today)
    return (
        "«Vigente hasta» ya pasó: elija hoy o una fecha posterior, o déjelo vacío para conceder "
        f"hasta la fecha pedida. {today_es}",
        "“Valid until” has passed: choose today or a later date, or leave it empty to grant "
        f"until the date asked for. {today_en}",
    )


# -- the page ----------------------------------------------------------------------------------


def _page(
    status: int = 200,
    *,
    errors: dict[str, Text] | None = None,
    deciding: tuple[str, dict[str, Text]] | None = None,
) -> tuple[str, int]:
    """The list; with ``errors`` about the request form (by field, ``""`` for the request as a
    whole) shown beside that form, or ``deciding`` (a request id and what was wrong with its
    decision, by field likewise) shown beside that request, with what was typed."""
    actor, session = current_actor(), db_session()
    g.page_path = url_for("portal.access_requests")
    at_the_top: list[Text] = []
    mine: list[dict[str, Any]] = []
    queue: list[dict[str, Any]] = []
    mine_page = queue_page = None
    if REQUESTERS in actor.scopes:
        mine_page = page_at(MINE_AFTER, lambda after: own_requests(session, actor, after=after))
        # Not audited, as the API does not audit a requester following their own request.
        mine = [
            as_shown(row, access_request_answer(session, row, officer=False), officer=False)
            for row in mine_page.rows
        ]
    if DECIDERS in actor.scopes:
        queue_page = page_at(
            QUEUE_AFTER, lambda after: request_queue(session, actor, "pending", after=after)
        )
        pending = queue_page.rows
        answers = [access_request_answer(session, row, officer=True) for row in pending]
        # One entry per request shown, as the API writes for each it lists.
        for row, seen in zip(pending, answers, strict=True):
            audit_consent_read(session, actor, seen["child_id"], row.id, "access_request")
        session.commit()
        moment = utcnow()
        queue = [
            {
                **as_shown(row, seen, officer=True),
                "whose": whose(row, actor),
                "adult_since": adult_since(session, row, moment),
                "end_passed": asked_end_passed(row, moment),
            }
            for row, seen in zip(pending, answers, strict=True)
        ]
    if stale_pages():
        at_the_top.append(NO_SUCH_PAGE)
        status = max(status, 400)
    deciding_id, decision_errors = deciding or (None, {})
    if deciding_id is not None and deciding_id not in {seen["id"] for seen in queue}:
        # No longer in the queue (decided meanwhile): said at the top, naming the request.
        at_the_top.extend(_naming(deciding_id, list(decision_errors.values())))
        deciding_id = None
    made = notice(MADE)
    decided = _just_decided(actor)
    names = names_of(session, [*queue, *([decided] if decided else [])])
    return render_template(
        "requests.html",
        mine=mine,
        queue=queue,
        names=names,
        mine_paging=paging(mine_page, MINE_AFTER, mine_line),
        queue_paging=paging(queue_page, QUEUE_AFTER, queue_line),
        places=places(),
        made=next((seen for seen in mine if made and seen["id"] == made["request_id"]), None),
        decided=decided,
        errors=at_the_top,
        request_errors=errors or {},
        deciding_id=deciding_id,
        decision_errors=decision_errors,
        # What was typed comes back only into the form it was typed in.
        form=request.form if request.endpoint == "portal.create_access_request" else MultiDict(),
        typed=request.form if deciding_id is not None else ImmutableMultiDict(),
        # A date field's earliest choice: today, in the time its dates are read in.
        today=page_date(utcnow()).isoformat(),
        purposes=PURPOSES,
        purpose_labels=PURPOSE_LABELS,
        categories=CATEGORIES,
        category_labels=CATEGORY_LABELS,
        justification_limits=justification_limits(),
    ), status


def _just_decided(actor: Actor) -> dict[str, Any] | None:
    """The request this officer decided just before, as the decision's answer showed it (as
    POST /v1/access-requests/{id}/decision answers: its access_granted or access_denied entry
    records it, and no read is audited)."""
    left = notice(DECIDED)
    if left is None or DECIDERS not in actor.scopes:
        return None
    session = db_session()
    row = session.get(AccessRequestRow, left["request_id"])
    if row is None or row.decided_by != actor.person_id:
        return None
    return as_shown(row, access_request_answer(session, row, officer=True), officer=True)


def _naming(request_id: str, errors: list[Text]) -> list[Text]:
    return [(f"Solicitud {request_id}: {es}", f"Request {request_id}: {en}") for es, en in errors]


@bp.get("/requests")
@login_required(REQUESTERS, DECIDERS)
def access_requests() -> tuple[str, int]:
    return _page()


# -- checking a form ---------------------------------------------------------------------------


def _until(text: str) -> str:
    """A date alone (what a date field sends) is the end of that day in central Mexico time
    (exchange.portal.blueprint.PAGE_TIME), the time the portal shows dates in: whoever picks
    today in the evening there is not told that today has passed (as the end of the day in UTC
    would, six hours earlier)."""
    text = text.strip()
    if _DATE_ONLY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return text  # no day of the calendar (2030-02-30): refused as any other text
        return datetime.combine(day, time(23, 59, 59), PAGE_TIME).isoformat()
    return text


def _instant(text: str) -> datetime | None:
    """The instant a form's date names, in UTC, or None when it names none the API would take
    (the API's own check: an offset is required, years 1 to 9999 in UTC). A date field sends a
    date, which :func:`_until` makes the end of that day."""
    if not_an_instant(text, "until") is not None:
        return None
    try:
        return body_instant({"until": text}, "until")
    except ValueError:
        return None


def _one_per_field(failures: list[ValidationFailure], plain: dict[str, Text]) -> dict[str, Text]:
    """The schema's failures as one message per form field (by the body's member, ``""`` for
    the body as a whole): the field's plain message where the page has one, else the
    schema's first."""
    messages: dict[str, Text] = {}
    for failure in failures:
        field = failure.pointer.split("/")[1] if failure.pointer.count("/") else ""
        messages.setdefault(field, plain.get(field, (failure.message_es, failure.message_en)))
    return messages


def _refusal(error: ConsentProblem | ConsentError) -> tuple[int, list[Text]]:
    """A service's refusal as one message, with the API's status."""
    if isinstance(error, ConsentError):
        return 400, [(error.message_es, error.message_en)]
    es = " ".join([error.es, *(found["message_es"] for found in error.errors)])
    en = " ".join([error.en, *(found["message_en"] for found in error.errors)])
    # The API names the member to send; on the page, that is the Deny choice.
    es, en = (text.replace(" (approve: false)", "") for text in (es, en))
    return KINDS[error.kind][0], [(es, en)]


# -- asking ------------------------------------------------------------------------------------


@bp.post("/requests")
@login_required(REQUESTERS)
def create_access_request() -> Response | tuple[str, int]:
    # As the API route: no existence oracle, in what is said or in how long it takes.
    after_this_request(answer_in_even_time)
    actor, session = current_actor(), db_session()
    body: dict[str, Any] = {
        "child_id": request.form.get("child_id", "").strip(),
        "purpose": request.form.get("purpose", ""),
        "categories": request.form.getlist("category"),
        "until": _until(request.form.get("until", "")),
    }
    justification = typed_text("justification").strip()
    if justification:  # optional: a blank box is no justification
        body["justification"] = justification
    errors = _one_per_field(
        schema_validator(("access-request", 1)).validate(body), _request_fields()
    )
    if (unwritable := control_characters_said(justification, JUSTIFICATION)) is not None:
        errors["justification"] = unwritable  # said before its length: it is what to fix
    if errors:
        return _page(400, errors=errors)
    until = _instant(body["until"])
    if until is None:
        return _page(400, errors={"until": _REQUEST_FIELDS["until"]})
    now = utcnow()
    if until <= now:  # as the service refuses it, in words for the form
        return _page(400, errors={"until": _request_until_past(page_date(now))})
    try:
        row, _entry = request_access(
            session, actor, child_asked_about(session, body["child_id"]), body
        )
    except (ConsentProblem, ConsentError) as error:
        session.rollback()
        status, refused = _refusal(error)
        return _page(status, errors={"": refused[0]})
    session.commit()
    leave_notice(MADE, request_id=row.id)
    return go("portal.access_requests")


# -- deciding ----------------------------------------------------------------------------------


def _decision_errors(choice: str | None, body: dict[str, Any]) -> dict[str, Text]:
    """What is wrong with a decision form, one message per field (``decision``, ``reason``,
    ``until``; ``""`` for the decision as a whole)."""
    errors: dict[str, Text] = {}
    if choice not in ("approve", "deny"):
        errors["decision"] = _CHOOSE
    if (wrong := reason_error(body["reason"], REASON_LIMIT, _WRITE_A_REASON)) is not None:
        errors["reason"] = wrong
    if "until" in body:
        until, now = _instant(body["until"]), utcnow()
        if until is None:
            errors["until"] = _DECISION_UNTIL_NOT_A_DATE
        elif choice == "approve" and until <= now:  # a denial grants nothing to date
            errors["until"] = _decision_until_past(page_date(now))
    if errors:
        return errors
    # The API's own schema has the last word on anything the checks above do not name (its
    # ``approve`` is the form's choice).
    found = _one_per_field(schema_validator(ACCESS_DECISION_SCHEMA).validate(body), {})
    return {"decision" if field == "approve" else field: said for field, said in found.items()}


@bp.post("/requests/<request_id>/decision")
@login_required(DECIDERS)
def decide_access_request(request_id: str) -> Response | tuple[str, int]:
    actor, session = current_actor(), db_session()
    choice = request.form.get("decision")
    until = request.form.get("until", "").strip()
    body: dict[str, Any] = {
        "approve": choice == "approve",
        "reason": typed_text("reason"),
        **({"until": _until(until)} if until else {}),
    }
    errors = _decision_errors(choice, body)
    if errors:
        return _page(400, deciding=(request_id, errors))
    try:
        row, _grant, _entry = decide_request(
            session, actor, request_id, body["approve"], body["reason"].strip(),
            body_instant(body, "until"),
        )  # fmt: skip
    except LookupError:
        session.rollback()
        g.page_path = url_for("portal.access_requests")
        return message_page(404, ("No encontrado", "Not found"), _NOT_FOUND)
    except (ConsentProblem, ConsentError) as error:
        session.rollback()
        status, refused = _refusal(error)
        return _page(status, deciding=(request_id, {"": refused[0]}))
    session.commit()
    leave_notice(DECIDED, request_id=row.id)
    return go("portal.access_requests", **places())
