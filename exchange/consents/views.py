"""The child's views: recording them, the Procuraduría's review of an adolescent's
objection, and the list of a child's views records with where each review stands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import ChildView, ConsentError, check_view
from consent.parts import read_actors
from exchange.auth import Actor, utcnow
from exchange.consent_store import ChildViewRow, new_id
from exchange.consents.common import (
    NOT_HEARD_REASON,
    OFFICER_ROLES,
    VIEWS_SUMMARY,
    ConsentProblem,
    OwnAgency,
    Written,
    acts_for_child,
    add_review,
    audit,
    format_error,
    instant_text,
    is_oversight,
    own_agency,
    party,
    problems,
    refuse_control_characters,
    require_acts_for,
    unknown_parties,
)
from exchange.crypto import data_keyring
from exchange.disclosure import ChildContext, forget_child


def about_own_agency(document: dict[str, Any], agency: OwnAgency) -> bool:
    """Whether a views record (its document) is an objection about ``agency`` or someone of
    it, by name (``about``): its people never see it, nor review it — the Procuraduría's
    review is another institution's (docs/consent.md §8.2). An objection about no one in
    particular (``about`` empty) names no one."""
    if document.get("position") != "objection":
        return False
    return agency.named_by_any(read_actors(document, "about", ""))


def _names_own_agency(row: ChildViewRow, agency: OwnAgency) -> bool:
    return about_own_agency(row.open(data_keyring()), agency)


def store_view(
    session: Session,
    actor: Actor,
    view: ChildView,
    moment: datetime,
    consent_id: str | None = None,
) -> ChildView:
    view_id = new_id("vw")
    stored = ChildView(
        child_id=view.child_id,
        heard_on=view.heard_on,
        position=view.position,
        id=view_id,
        heard_by=view.heard_by,
        not_heard_reason=view.not_heard_reason,
        summary=view.summary,
        categories=view.categories,
        about=view.about,
    )
    row = ChildViewRow(
        id=view_id,
        child_id=view.child_id,
        position=view.position,
        consent_id=consent_id,
        recorded_by_agency=actor.agency_id,
        created_at=moment,
    )
    row.seal(data_keyring(), stored.to_json())
    session.add(row)
    return stored


def _heard_as_an_adult(view: ChildView, child: ChildContext) -> list[dict[str, str]]:
    """Views heard on or after the 18th birthday are no child's views: no objection of theirs
    blocks, no Procuraduría reviews them, and consent is no longer given on their behalf. The
    birthday is the one consents lapse at (:attr:`consent.ChildFacts.eighteenth_birthday`: from
    the date of birth, or an age estimate's latest possible one, and where records disagree the
    latest any gives), so only a day on which the child was an adult by every record counts."""
    majority = child.facts.eighteenth_birthday
    if majority is None or view.heard_on < majority.date():
        return []
    return [
        {
            "pointer": "/heard_on",
            "code": "heard_after_18th_birthday",
            "message_es": f"El {view.heard_on.isoformat()} la persona ya tenía 18 años (los "
            f"cumplió el {majority.date().isoformat()}): ya no se registra su opinión como la "
            "de una niña, niño o adolescente.",
            "message_en": f"On {view.heard_on.isoformat()} the person was already 18 (since "
            f"{majority.date().isoformat()}): their views are no longer recorded as a child's.",
        }
    ]


def views_texts(views: Any, at: str = "") -> list[Written]:
    """The child's own words in a views record (``views``, at the pointer ``at`` of the body),
    as :func:`~exchange.consents.common.refuse_control_characters` checks them."""
    if not isinstance(views, dict):
        return []
    return [
        (f"{at}/summary", views.get("summary"), VIEWS_SUMMARY),
        (f"{at}/not_heard_reason", views.get("not_heard_reason"), NOT_HEARD_REASON),
    ]


def views_parties(views: Any, at: str = "") -> list[tuple[str, Any]]:
    """Whom a views record (``views``, at the pointer ``at`` of the body) names — who heard
    the child, and whom an objection is about — as
    :func:`~exchange.consents.common.unknown_parties` checks them."""
    if not isinstance(views, dict):
        return []
    named: list[tuple[str, Any]] = [(f"{at}/heard_by", views.get("heard_by"))]
    about = views.get("about")
    if isinstance(about, list):
        named.extend((f"{at}/about/{index}", ref) for index, ref in enumerate(about))
    return named


def record_views(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> tuple[ChildView, str]:
    refuse_control_characters(*views_texts(document))
    require_acts_for(session, actor, child)
    try:
        view = ChildView.from_json({**document, "child_id": child.child_id})
    except ConsentError as error:
        raise format_error(error) from error
    moment = utcnow()
    found = problems(check_view(view, moment.date(), child.facts)) + _heard_as_an_adult(view, child)
    # An objection about a mistyped agency would protect nobody, and views heard by nobody
    # registered would be nobody's word: refused as a consent's or withhold entry's ids are.
    found += unknown_parties(session, views_parties(document))
    if found:
        raise ConsentProblem(
            "validation",
            "La opinión no puede registrarse.",
            "The views cannot be recorded.",
            found,
        )
    stored = store_view(session, actor, view, moment)
    entry = audit(
        session,
        actor,
        "child_views_recorded",
        child.child_id,
        object_type="child_views",
        object_id=stored.id,
        detail=view.position,
    )
    forget_child(child.child_id)
    return stored, entry


def review_views(
    session: Session, actor: Actor, view_id: str, upheld: bool, reason: str
) -> tuple[dict[str, Any], str]:
    """The Procuraduría's review of an adolescent's objection (upheld keeps it blocking): not
    by the agency the objection is about, to whose people it does not exist (404)."""
    row, child, document = add_review(
        session, actor, ChildViewRow, view_id, upheld, reason, _names_own_agency
    )
    if document.get("position") != "objection":
        # Only an objection blocks, so only an objection is upheld or set aside; reviewing an
        # assent would write an objection_set_aside entry about no objection at all.
        raise ConsentProblem(
            "conflict",
            "Solo se revisa una oposición; esta opinión no lo es.",
            "Only an objection is reviewed; these views are not one.",
        )
    row.seal(data_keyring(), document)
    entry = audit(
        session,
        actor,
        "child_views_recorded",
        child.child_id,
        object_type="child_views",
        object_id=row.id,
        detail="objection_upheld" if upheld else "objection_set_aside",
    )
    forget_child(child.child_id)
    return document, entry


#: Where the review of a views record stands (``review_state`` in ``GET
#: /v1/children/{id}/views``): an objection nobody has reviewed awaits the Procuraduría; a
#: review upheld the views or set them aside; other views need no review.
VIEWS_REVIEW_STATES = ("awaiting_review", "upheld", "set_aside", "not_required")


def _views_review_state(position: str, review: Any) -> str:
    if isinstance(review, dict):
        return "upheld" if review.get("upheld") else "set_aside"
    return "awaiting_review" if position == "objection" else "not_required"


#: The members of a views record that hold free text about the child: what they said, or why
#: they were not heard.
CHILDS_OWN_WORDS = ("summary", "not_heard_reason")


def list_views(
    session: Session, actor: Actor, child: ChildContext
) -> tuple[list[dict[str, Any]], str]:
    """The child's views records (and those of children merged into it), newest first, each
    with its review state, for a caller who acts for the child (as for recording and reviewing
    them) or oversight (:func:`is_oversight`). Anyone else gets ``LookupError`` (404), as for
    a child that does not exist. An objection about the caller's agency is left out
    (:func:`about_own_agency`), and oversight is not given the child's own words
    (:data:`CHILDS_OWN_WORDS`). The views hold the child's own words, so each reading is an
    audit entry (``consents_read``, detail ``child_views``; ids only)."""
    acts_for = acts_for_child(session, actor, child)
    if not acts_for and not is_oversight(actor):
        raise LookupError(child.child_id)
    # Oversight sees that views were heard, when and by whom, their position and review — not
    # the child's own words, which are case content (no_case_content_to_oversight).
    words_left_out = () if acts_for else CHILDS_OWN_WORDS
    # The same test as review_views applies, without knowing which record: only unreviewed ones.
    reviewer = (
        acts_for
        and "consent:write" in actor.scopes
        and actor.person_id is not None
        and bool(OFFICER_ROLES & actor.roles)
    )
    keyring = data_keyring()
    agency = own_agency(session, actor)
    rows = session.scalars(
        select(ChildViewRow)
        .where(ChildViewRow.child_id.in_(child.family))
        .order_by(ChildViewRow.created_at.desc(), ChildViewRow.id.desc())
    )
    found = []
    for row in rows:
        document = row.open(keyring)
        if about_own_agency(document, agency):
            continue
        for name in words_left_out:
            document.pop(name, None)
        found.append(
            {
                "id": row.id,
                "review_state": _views_review_state(row.position, document.get("review")),
                # Only an objection blocks, so only an objection is reviewed (review_views).
                "may_review": reviewer and row.reviewed_at is None and row.position == "objection",
                "recorded_at": instant_text(row.created_at),
                "recorded_by": party(row.recorded_by_agency, None),
                "consent_id": row.consent_id,
                "views": document,
            }
        )
    entry = audit(session, actor, "consents_read", child.child_id, detail="child_views")
    return found, entry
