"""``/overrides``: emergency best-interest overrides in the portal.

Who reads them is who reads them through the API (``GET /v1/overrides``, ``GET
/v1/overrides/{id}``): their reviewers (``consent:write``: a Procuraduría's consent officers)
and oversight (``audit:read`` at an oversight body); the review, ``POST
/v1/overrides/{id}/review``, is the reviewers' alone. Every step is the API's own: the same
services (exchange.consents.overrides: the queue, one override's reading, the review), the
same request schema and the same refusals (exchange.api.consents), so the portal can do
nothing the API would refuse. A reviewer's list holds the overrides about children of their
jurisdiction that they did not open (nor their agency), oversight's every override.

The list shows what the API's queue shows — never the written justification, which may
describe the child's situation: it is read one override at a time on the override's own page,
and each reading is an audit entry (``consents_read``), as through the API. The overrides
awaiting review come first, oldest first, those still unreviewed 24 h after they were opened
marked as overdue; then the reviewed ones, the latest first; each list paged as the API pages
it. A review that worked answers with a redirect to the list (Post/Redirect/Get); one sent
twice is refused as the API refuses it (409), saying the override was already reviewed.
"""

from __future__ import annotations

from typing import Any

from flask import after_this_request, g, render_template, request, url_for
from werkzeug.wrappers import Response

from consent import CATEGORY_LABELS, PURPOSE_LABELS, ConsentError

# The API's readers, request schema and even-time 404s for these routes: one definition each.
from exchange.api.consents import OVERRIDE_READERS, REVIEW_SCHEMA
from exchange.api.record_reads import answer_refusals_in_even_time
from exchange.auth import utcnow
from exchange.consents import ConsentProblem
from exchange.consents.overrides import override_queue, read_override, review_override
from exchange.db import session as db_session
from exchange.httpbasics import schema_validator
from exchange.portal.blueprint import Text, bp, go, leave_notice, message_page, notice
from exchange.portal.form_fields import reason_error, typed_text
from exchange.portal.list_paging import NO_SUCH_PAGE, Listing, page_at, paging, stale_pages
from exchange.portal.override_views import (
    as_shown,
    basis_labels,
    names_of,
    open_line,
    parties_in,
    reviewed_line,
)
from exchange.portal.sessions import current_actor, login_required
from exchange.problems import KINDS

REVIEWERS = "consent:write"
REVIEWED = "override_reviewed"
#: The two lists of the page: awaiting review (the API's ``status=open``), and reviewed.
WAITING = Listing("after", "from", "waiting")
DONE = Listing("reviewed_after", "reviewed_from", "reviewed")
LISTINGS = (WAITING, DONE)
REASON_LIMIT: int = REVIEW_SCHEMA["properties"]["reason"]["maxLength"]
#: The review's members the form has a field for (the choice is ``upheld``).
_FORM_FIELDS = tuple(REVIEW_SCHEMA["properties"])

_NOT_FOUND: Text = (
    "No existe o no tiene acceso a ello.",
    "It does not exist, or you have no access to it.",
)
_CHOOSE: Text = (
    "Elija si se confirma o no el acceso de emergencia.",
    "Choose whether the emergency override is upheld or not.",
)
_WRITE_A_REASON: Text = ("Escriba el motivo de su revisión.", "Write the reason for your review.")


def _labels() -> dict[str, Any]:
    return {
        "basis_labels": basis_labels(),
        "category_labels": CATEGORY_LABELS,
        "purpose_labels": PURPOSE_LABELS,
    }


# -- the list ----------------------------------------------------------------------------------


@bp.get("/overrides")
@login_required(*OVERRIDE_READERS)
def overrides() -> tuple[str, int]:
    actor, session = current_actor(), db_session()
    # As GET /v1/overrides: the queue is not audited (it holds no justification).
    waiting = page_at(WAITING, lambda after: override_queue(session, actor, "open", after=after))
    done = page_at(DONE, lambda after: override_queue(session, actor, "reviewed", after=after))
    moment = utcnow()
    awaiting = [as_shown(item, moment) for item in waiting.rows]
    reviewed = [as_shown(item, moment) for item in done.rows]
    return render_template(
        "overrides.html",
        waiting=awaiting,
        done=reviewed,
        waiting_paging=paging(waiting, WAITING, LISTINGS, "portal.overrides", open_line),
        done_paging=paging(done, DONE, LISTINGS, "portal.overrides", reviewed_line),
        names=names_of(session, parties_in(item["opened_by"] for item in awaiting + reviewed)),
        reviewed=notice(REVIEWED),
        errors=[NO_SUCH_PAGE] if stale_pages() else [],
        reviewing=REVIEWERS in actor.scopes,
        **_labels(),
    ), (400 if stale_pages() else 200)


# -- one override ------------------------------------------------------------------------------


def _override_page(
    override_id: str, status: int = 200, *, errors: dict[str, Text] | None = None
) -> tuple[str, int]:
    """The override with its written justification and its review (a reading, audited as
    ``GET /v1/overrides/{id}`` audits it), and its review form when the person may review it;
    with ``errors`` about that form (by field, ``""`` for the review as a whole)."""
    actor, session = current_actor(), db_session()
    g.page_path = url_for("portal.override", override_id=override_id)
    try:
        answer, _entry = read_override(session, actor, override_id)
    except LookupError:
        session.rollback()
        return message_page(404, ("No encontrado", "Not found"), _NOT_FOUND)
    session.commit()
    review = answer["override"].get("review")
    names = names_of(session, parties_in([answer["opened_by"], (review or {}).get("by")]))
    return render_template(
        "override.html",
        seen=as_shown(answer, utcnow()),
        document=answer["override"],
        review=review,
        names=names,
        review_errors=errors or {},
        # What was typed comes back only into the form it was typed in.
        typed=request.form if request.method == "POST" else {},
        reason_limit=REASON_LIMIT,
        **_labels(),
    ), status


@bp.get("/overrides/<override_id>")
@login_required(*OVERRIDE_READERS)
def override(override_id: str) -> tuple[str, int]:
    # As the API: an override the person may not know of answers as one that does not exist,
    # in what is said and in how long it takes.
    after_this_request(answer_refusals_in_even_time)
    return _override_page(override_id)


# -- the review --------------------------------------------------------------------------------


def _review_errors(choice: str | None, body: dict[str, Any]) -> dict[str, Text]:
    """What is wrong with a review form, one message per field (``upheld``, ``reason``)."""
    errors: dict[str, Text] = {}
    if choice not in ("upheld", "not_upheld"):
        errors["upheld"] = _CHOOSE
    if (wrong := reason_error(body["reason"], REASON_LIMIT, _WRITE_A_REASON)) is not None:
        errors["reason"] = wrong
    if errors:
        return errors
    # The API's own schema has the last word on anything the checks above do not name.
    for failure in schema_validator(REVIEW_SCHEMA).validate(body):
        field = failure.pointer.split("/")[1] if failure.pointer.count("/") else ""
        errors.setdefault(field, (failure.message_es, failure.message_en))
    return errors


def _refusal(error: ConsentProblem | ConsentError) -> tuple[int, dict[str, Text]]:
    """A service's refusal with the API's status (409 for a second review), each message
    beside the form's field it names (``/reason``), the others together (``""``)."""
    if isinstance(error, ConsentError):
        return 400, {"": (error.message_es, error.message_en)}
    said: dict[str, Text] = {}
    rest = []
    for found in error.errors:
        field = found.get("pointer", "").removeprefix("/")
        if field in _FORM_FIELDS:
            said.setdefault(field, (found["message_es"], found["message_en"]))
        else:
            rest.append(found)
    if rest or not said:
        es = " ".join([error.es, *(found["message_es"] for found in rest)])
        en = " ".join([error.en, *(found["message_en"] for found in rest)])
        said[""] = (es, en)
    return KINDS[error.kind][0], said


@bp.post("/overrides/<override_id>/review")
@login_required(REVIEWERS)
def review_override_form(override_id: str) -> Response | tuple[str, int]:
    after_this_request(answer_refusals_in_even_time)
    actor, session = current_actor(), db_session()
    choice = request.form.get("review")
    body: dict[str, Any] = {"upheld": choice == "upheld", "reason": typed_text("reason")}
    errors = _review_errors(choice, body)
    if errors:
        return _override_page(override_id, 400, errors=errors)
    try:
        # As the API route: the reason as the schema took it, without its outer spaces.
        review_override(session, actor, override_id, body["upheld"], body["reason"].strip())
    except LookupError:
        session.rollback()
        g.page_path = url_for("portal.overrides")
        return message_page(404, ("No encontrado", "Not found"), _NOT_FOUND)
    except (ConsentProblem, ConsentError) as error:
        session.rollback()
        status, refused = _refusal(error)
        return _override_page(override_id, status, errors=refused)
    session.commit()
    leave_notice(REVIEWED, override_id=override_id, upheld=body["upheld"])
    return go("portal.overrides")
