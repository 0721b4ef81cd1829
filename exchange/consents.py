"""Consent services: recording consents and the child's views, revoking, emergency overrides,
"withhold from" entries, access requests and the grants made on them. Each action is an audit
entry in its own transaction; the routes in :mod:`exchange.api.consents` call these.

Who may act for a child: the consent officers (and agency systems) whose jurisdiction covers
one of the agencies responsible for the child's records, or an agency responsible for one of
them. National bodies (jurisdiction ``00``) cover every state; a state (``07``) covers its
municipalities (``07089``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from consent import (
    CATEGORIES,
    OVERRIDE_REVIEW_DUE,
    ChildView,
    Consent,
    ConsentError,
    ConsentSet,
    Decision,
    Grant,
    Override,
    Review,
    WithholdFrom,
    check_consent,
    check_grant,
    check_override,
    check_view,
)
from consent import Actor as EngineActor
from consent.parts import ActorRef
from consent.vocabulary import mask_of
from exchange.access_basis import covered_access, granted_access
from exchange.audit_log import record_event
from exchange.audit_queries import AlertWindow, register_alert_source
from exchange.auth import Actor, as_utc, utcnow
from exchange.consent_store import (
    AccessRequestRow,
    ChildViewRow,
    ConsentDisclosure,
    ConsentRow,
    GrantRow,
    OverrideRow,
    WithholdRow,
    new_id,
)
from exchange.crypto import data_keyring
from exchange.disclosure import (
    ChildContext,
    audit_decision,
    evaluate,
    forget_child,
    hard_rules,
    load_child,
)
from exchange.outbox import enqueue
from exchange.people import Person

NATIONAL = "00"


class ConsentProblem(Exception):
    """A request the consent rules refuse: ``kind`` is the problem kind, ``errors`` the
    ``[{pointer, message_es, message_en}]`` found, ``es``/``en`` the summary, ``extra`` any
    other members the problem carries."""

    def __init__(
        self,
        kind: str,
        es: str,
        en: str,
        errors: Iterable[dict[str, str]] = (),
        **extra: Any,
    ) -> None:
        super().__init__(en)
        self.kind, self.es, self.en, self.errors = kind, es, en, list(errors)
        #: Further members of the problem answered (``rule_ids``, …).
        self.extra = extra


# -- jurisdiction ------------------------------------------------------------------------------


def child_jurisdictions(session: Session, child: ChildContext) -> set[str]:
    """Jurisdictions of the agencies responsible for the child's records."""
    from exchange.agencies import Agency

    owners = {record.owner_agency for record in child.records}
    if not owners:
        return set()
    return set(session.scalars(select(Agency.jurisdiction).where(Agency.id.in_(owners))))


def covers(actor_jurisdiction: str | None, jurisdiction: str) -> bool:
    if not actor_jurisdiction:
        return False
    return actor_jurisdiction == NATIONAL or jurisdiction.startswith(actor_jurisdiction)


#: Agency kinds that may act as a child's consent authority (DESIGN: the child's Procuraduría
#: de Protección — federal, state or municipal DIF — or a guardian proxy recorded by them).
#: Immigration, refugee and foreign authorities, oversight bodies and NGOs never do, whatever
#: their jurisdiction: a consulate's national reach (00) is no authority over Mexican consent.
CONSENT_AUTHORITY_KINDS = frozenset({"federal_child_protection", "state_dif", "municipal_dif"})


def acts_for_child(session: Session, actor: Actor, child: ChildContext) -> bool:
    """Whether ``actor`` may record consents, views and reviews for the child, or decide its
    access requests: a child-protection agency (:data:`CONSENT_AUTHORITY_KINDS`) responsible
    for one of the child's records or whose jurisdiction covers the child's. An administrator
    of such an agency acts for the children their jurisdiction covers (a national one, ``00``,
    for every child): a state hub's administrator is not another state's. The kind is checked
    first for everyone: an agency whose kind changed after its people were registered (to
    immigration enforcement, say) no longer acts for any child through them."""
    if actor.kind not in CONSENT_AUTHORITY_KINDS:
        return False
    if "administrator" in actor.roles:
        return any(covers(actor.jurisdiction, j) for j in child_jurisdictions(session, child))
    if actor.agency_id is not None and any(
        record.owner_agency == actor.agency_id for record in child.records
    ):
        return True
    return any(covers(actor.jurisdiction, j) for j in child_jurisdictions(session, child))


OFFICER_ROLES = frozenset({"consent_officer", "administrator"})


def _let_in(consent: Consent) -> tuple[set[str], set[str]]:
    """Agencies and people a consent lets in: its grantees and the actors of its permit
    provisions."""
    refs = list(consent.grantees)
    pending = list(consent.provisions)
    while pending:
        provision = pending.pop()
        if provision.decision == "permit":
            refs.extend(provision.actors)
        pending.extend(provision.provisions)
    agencies = {ref.agency_id for ref in refs if ref.agency_id}
    people = {ref.person_id for ref in refs if ref.person_id}
    return agencies, people


def _lets_in_the_recorder(session: Session, actor: Actor, consent: Consent) -> str | None:
    """Whom of the recording side the consent lets in (the agency, the person recording, or
    a colleague of the same agency), or ``None``: nobody records a consent for their own
    benefit, and an agency cannot get round that through one of its people."""
    agencies, people = _let_in(consent)
    if actor.agency_id is not None and actor.agency_id in agencies:
        return actor.agency_id
    if actor.person_id is not None and actor.person_id in people:
        return actor.person_id
    if people and actor.agency_id is not None:
        colleague = session.scalar(
            select(Person.id)
            .where(Person.id.in_(sorted(people)), Person.agency_id == actor.agency_id)
            .order_by(Person.id)
            .limit(1)
        )
        if colleague is not None:
            return colleague
    return None


def require_officer(actor: Actor) -> None:
    """Reviews and decisions on access requests are a consent officer's, never a system's."""
    if actor.person_id is None or not OFFICER_ROLES & actor.roles:
        raise ConsentProblem(
            "forbidden",
            "Solo una persona con el rol de oficial de consentimiento puede hacerlo.",
            "Only a person with the consent officer role can do this.",
        )


def require_acts_for(session: Session, actor: Actor, child: ChildContext) -> None:
    """Outside the caller's jurisdiction a child's consents, views and overrides answer as if
    they did not exist (``LookupError`` → 404): no existence oracle."""
    if not acts_for_child(session, actor, child):
        raise LookupError(child.child_id)


def _problems(found: Iterable[Any]) -> list[dict[str, str]]:
    return [
        {"pointer": p.pointer, "code": p.code, "message_es": p.es, "message_en": p.en}
        for p in found
    ]


def _format_error(error: ConsentError) -> ConsentProblem:
    return ConsentProblem(
        "validation",
        "El documento no es válido.",
        "The document is not valid.",
        [
            {
                "pointer": error.pointer,
                "message_es": error.message_es,
                "message_en": error.message_en,
            }
        ],
    )


def actor_ref(actor: Actor) -> ActorRef:
    role = next(iter(sorted(actor.roles)), None)
    return ActorRef(agency_id=actor.agency_id, person_id=actor.person_id, role=role)


def _audit(session: Session, actor: Actor, action: str, child_id: str, **fields: Any) -> str:
    return record_event(
        session,
        action=action,
        outcome=fields.pop("outcome", "success"),
        actor_agency=actor.agency_id,
        actor_person=actor.person_id,
        actor_role=actor.audit_role,
        child_id=child_id,
        **fields,
    )


# -- consents ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredConsent:
    id: str
    document: dict[str, Any]
    audit_entry: str


def record_consent(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> StoredConsent:
    """Check and store a consent (``consent/1``, already schema-valid) for ``child``."""
    require_acts_for(session, actor, child)
    moment = utcnow()
    # The document names its subject (``child_id``, FHIR Consent.subject) and the path the child
    # it is posted to. An id of this child, or of one merged into it, speaks for the child it
    # now is; any other id is kept so that ``check_consent`` refuses it (``other_child``): a
    # consent written for one child is never recorded against another over a mistyped id.
    if "revocation" in document:
        # A consent is recorded as given; revoking it is its own act, audited and notified.
        raise ConsentProblem(
            "validation",
            "Un consentimiento se registra sin revocación; para revocarlo use "
            "POST /v1/consents/{id}/revoke.",
            "A consent is recorded without a revocation; to revoke it, use "
            "POST /v1/consents/{id}/revoke.",
            [
                {
                    "pointer": "/revocation",
                    "message_es": "No se admite al registrar.",
                    "message_en": "Not accepted when recording.",
                }
            ],
        )
    named = document.get("child_id")
    subject = named if isinstance(named, str) and named not in child.family else child.child_id
    document = {
        **document,
        "id": new_id("cns"),
        "child_id": subject,
        "recorded_at": moment.isoformat(),
        "recorded_by": actor_ref(actor).to_json(),
    }
    try:
        parsed = Consent.from_json(document)
    except ConsentError as error:
        raise _format_error(error) from error
    grantor_agency = parsed.grantor.agency_id
    if grantor_agency is not None and grantor_agency != actor.agency_id:
        raise ConsentProblem(
            "forbidden",
            "Solo la propia institución registra un consentimiento que ella otorga.",
            "Only the granting institution itself records a consent it grants.",
            [
                {
                    "pointer": "/grantor/agency_id",
                    "message_es": f"Otorga {grantor_agency}; usted actúa por {actor.agency_id}.",
                    "message_en": f"Granted by {grantor_agency}; you act for {actor.agency_id}.",
                }
            ],
        )
    beneficiary = _lets_in_the_recorder(session, actor, parsed)
    if beneficiary is not None:
        # Conflict of interest: whoever records a consent cannot be the one it lets in.
        raise ConsentProblem(
            "forbidden",
            "Una institución no registra un consentimiento que le da acceso a ella misma ni a "
            "su personal; debe registrarlo otra autoridad de consentimiento.",
            "An agency does not record a consent that lets itself or its own people in; "
            "another consent authority must record it.",
            [
                {
                    "pointer": "/provision",
                    "message_es": f"Permite a {actor.agency_id}, que lo registra."
                    if beneficiary == actor.agency_id
                    else f"Permite a {beneficiary}, de {actor.agency_id}, que lo registra.",
                    "message_en": f"The consent permits {actor.agency_id}, which records it."
                    if beneficiary == actor.agency_id
                    else f"The consent permits {beneficiary}, of {actor.agency_id}, which "
                    "records it.",
                }
            ],
        )
    found = check_consent(parsed, child.facts, moment)
    if found:
        raise ConsentProblem(
            "validation",
            "El consentimiento no puede registrarse.",
            "The consent cannot be recorded.",
            _problems(found),
        )
    keyring = data_keyring()
    stored = parsed.to_json()
    if parsed.child_views is not None:
        # Views that come with a consent are recorded on their own too, so an objection gets
        # an id and can be reviewed (POST /v1/views/{id}/review); the consent names that id.
        view = _store_view(session, actor, parsed.child_views, moment, consent_id=parsed.id)
        stored["child_views"]["views_id"] = view.id
    row = ConsentRow(
        id=parsed.id,
        child_id=child.child_id,
        status=parsed.status,
        recorded_by_agency=actor.agency_id,
        recorded_by_person=actor.person_id,
        created_at=moment,
    )
    row.seal(keyring, stored)
    session.add(row)
    entry = _audit(
        session,
        actor,
        "consent_granted",
        child.child_id,
        object_type="consent",
        object_id=parsed.id,
    )
    forget_child(child.child_id)
    assert parsed.id is not None
    return StoredConsent(parsed.id, stored, entry)


def consent_status(consent: Consent, moment: datetime, majority: datetime | None = None) -> str:
    """What a person reading the list needs: active, not_started (its period starts later:
    it permits and denies nothing yet), revoked, expired (its period ended, or the child turned
    18 on ``majority``, the child's :attr:`~consent.ChildFacts.eighteenth_birthday`: a consent
    counts only until the earlier of the two, as the engine caps it) or the stored status."""
    if consent.revocation is not None:
        return "revoked"
    if consent.status != "active":
        return consent.status
    end = consent.period.end
    if majority is not None and (end is None or majority < end):
        end = majority
    return period_state(consent.period.start, end, moment)


def period_state(start: datetime | None, end: datetime | None, moment: datetime) -> str:
    """Where a period stands at ``moment``: expired, not_started or active."""
    if end is not None and end <= moment:
        return "expired"
    if start is not None and moment < start:
        return "not_started"
    return "active"


def list_consents(session: Session, actor: Actor, child: ChildContext) -> list[dict[str, Any]]:
    require_acts_for(session, actor, child)
    keyring = data_keyring()
    moment = utcnow()
    rows = session.scalars(
        select(ConsentRow)
        .where(ConsentRow.child_id.in_(child.family))
        .order_by(ConsentRow.created_at)
    )
    found = []
    for row in rows:
        document = row.open(keyring)
        parsed = Consent.from_json({**document, "child_id": child.child_id})
        state = consent_status(parsed, moment, child.facts.eighteenth_birthday)
        found.append({"id": row.id, "state": state, "consent": document})
    return found


def find_consent(session: Session, consent_id: str) -> tuple[ConsentRow, ChildContext]:
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise LookupError(consent_id)
    return row, load_child(session, row.child_id)


def revoke_consent(
    session: Session, actor: Actor, consent_id: str, reason: str
) -> tuple[dict[str, Any], list[str], str]:
    """Revoke at once; tell every agency that received data under the consent. Returns the
    stored document, the agencies notified and the audit entry."""
    row, child = find_consent(session, consent_id)
    require_acts_for(session, actor, child)
    keyring = data_keyring()
    document = row.open(keyring)
    if document.get("revocation") is not None:
        raise ConsentProblem(
            "conflict",
            "El consentimiento ya fue revocado.",
            "The consent was already revoked.",
        )
    moment = utcnow()
    document["revocation"] = {
        "revoked_at": moment.isoformat(),
        "revoked_by": actor_ref(actor).to_json(),
        "reason": reason,
    }
    # Marked inactive with a revocation: it permits nothing, its denies stay (docs/consent.md).
    document["status"] = "inactive"
    Consent.from_json(document)  # still a valid consent
    row.seal(keyring, document)
    row.status = "inactive"
    row.revoked_at = moment
    entry = _audit(
        session,
        actor,
        "consent_revoked",
        row.child_id,
        object_type="consent",
        object_id=row.id,
    )
    notified = notify_revocation(session, row, child, moment)
    forget_child(child.child_id)
    return document, notified, entry


def notify_revocation(
    session: Session, row: ConsentRow, child: ChildContext, moment: datetime
) -> list[str]:
    """Queue a ``consent.revoked`` notification for every agency that received data under
    the consent (ids only, never content): an agency of this hub through its webhook, file drop
    or ``GET /v1/notifications``; an agency of a peer hub, which read through a federated
    lookup, through its hub (:mod:`exchange.federation_notices`)."""
    from exchange.agencies import Agency
    from exchange.federation_notices import queue_revocation, revocation_payload

    recipients = session.execute(
        select(ConsentDisclosure.agency_id, ConsentDisclosure.peer_hub)
        .where(ConsentDisclosure.consent_id == row.id)
        .order_by(ConsentDisclosure.agency_id)
    ).all()
    notified = []
    for agency_id, peer_hub in recipients:
        if peer_hub is not None:
            queue_revocation(session, peer_hub, agency_id, row.id, child.child_id, moment)
            notified.append(agency_id)
            continue
        agency = session.get(Agency, agency_id)
        if agency is None or not agency.active:
            continue
        # An agency with no webhook or file drop reads it with GET /v1/notifications.
        enqueue(
            session,
            agency_id,
            "consent.revoked",
            revocation_payload(row.id, child.child_id, moment),
            held=not agency.webhook_url,
        )
        notified.append(agency_id)
    return notified


# -- the child's views -------------------------------------------------------------------------


def _store_view(
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


def record_views(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> tuple[ChildView, str]:
    require_acts_for(session, actor, child)
    try:
        view = ChildView.from_json({**document, "child_id": child.child_id})
    except ConsentError as error:
        raise _format_error(error) from error
    moment = utcnow()
    found = _problems(check_view(view, moment.date(), child.facts)) + _heard_as_an_adult(
        view, child
    )
    if found:
        raise ConsentProblem(
            "validation",
            "La opinión no puede registrarse.",
            "The views cannot be recorded.",
            found,
        )
    stored = _store_view(session, actor, view, moment)
    entry = _audit(
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


def _officer_row(
    session: Session, actor: Actor, model: Any, row_id: str
) -> tuple[Any, ChildContext]:
    """The row ``row_id`` of ``model`` and its child, for a consent officer who acts for the
    child (``LookupError`` when there is no such row)."""
    row = session.get(model, row_id)
    if row is None:
        raise LookupError(row_id)
    child = load_child(session, row.child_id)
    require_acts_for(session, actor, child)
    require_officer(actor)
    return row, child


def _add_review(
    session: Session, actor: Actor, model: Any, row_id: str, upheld: bool, reason: str
) -> tuple[Any, ChildContext, dict[str, Any]]:
    """Load a views record or override the caller may review and add the Procuraduría's
    review to its document (the caller seals it and writes the audit entry)."""
    row, child = _officer_row(session, actor, model, row_id)
    if row.reviewed_at is not None:
        raise ConsentProblem("conflict", "Ya fue revisado.", "It was already reviewed.")
    document = row.open(data_keyring())
    row.reviewed_at = utcnow()
    document["review"] = Review(row.reviewed_at, upheld, actor_ref(actor), reason).to_json()
    return row, child, document


def review_views(
    session: Session, actor: Actor, view_id: str, upheld: bool, reason: str
) -> tuple[dict[str, Any], str]:
    """The Procuraduría's review of an adolescent's objection (upheld keeps it blocking)."""
    row, child, document = _add_review(session, actor, ChildViewRow, view_id, upheld, reason)
    if document.get("position") != "objection":
        # Only an objection blocks, so only an objection is upheld or set aside; reviewing an
        # assent would write an objection_set_aside entry about no objection at all.
        raise ConsentProblem(
            "conflict",
            "Solo se revisa una oposición; esta opinión no lo es.",
            "Only an objection is reviewed; these views are not one.",
        )
    row.seal(data_keyring(), document)
    entry = _audit(
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


def list_views(
    session: Session, actor: Actor, child: ChildContext
) -> tuple[list[dict[str, Any]], str]:
    """The child's views records (and those of children merged into it), newest first, each
    with its review state, for a caller who acts for the child (as for recording and reviewing
    them) or oversight (:data:`OVERSIGHT_SCOPE`). Anyone else gets ``LookupError`` (404), as for
    a child that does not exist. The views hold the child's own words, so each reading is an
    audit entry (``consents_read``, detail ``child_views``; ids only)."""
    acts_for = acts_for_child(session, actor, child)
    if not acts_for and OVERSIGHT_SCOPE not in actor.scopes:
        raise LookupError(child.child_id)
    # The same test as review_views applies, without knowing which record: only unreviewed ones.
    reviewer = (
        acts_for
        and "consent:write" in actor.scopes
        and actor.person_id is not None
        and bool(OFFICER_ROLES & actor.roles)
    )
    keyring = data_keyring()
    rows = session.scalars(
        select(ChildViewRow)
        .where(ChildViewRow.child_id.in_(child.family))
        .order_by(ChildViewRow.created_at.desc(), ChildViewRow.id.desc())
    )
    found = []
    for row in rows:
        document = row.open(keyring)
        found.append(
            {
                "id": row.id,
                "review_state": _views_review_state(row.position, document.get("review")),
                # Only an objection blocks, so only an objection is reviewed (review_views).
                "may_review": reviewer and row.reviewed_at is None and row.position == "objection",
                "recorded_at": as_utc(row.created_at).isoformat(),
                "recorded_by": party(row.recorded_by_agency, None),
                "consent_id": row.consent_id,
                "views": document,
            }
        )
    entry = _audit(session, actor, "consents_read", child.child_id, detail="child_views")
    return found, entry


# -- emergency overrides -----------------------------------------------------------------------


def open_override(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Open an emergency override (``override/1``, already schema-valid)."""
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
        raise _format_error(error) from error
    found = check_override(override)
    if found:
        raise ConsentProblem(
            "validation",
            "El acceso de emergencia no puede abrirse.",
            "The emergency override cannot be opened.",
            _problems(found),
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
    entry = _audit(
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
    row, child, document = _add_review(session, actor, OverrideRow, override_id, upheld, reason)
    row.seal(data_keyring(), document)
    row.upheld = upheld
    row.ends_at = Override.from_json(document).effective_end()
    entry = _audit(
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


#: Oversight's scope: an oversight body reads every override (as in ``GET /v1/audit/alerts``),
#: whatever its jurisdiction; the review is not theirs.
OVERSIGHT_SCOPE = "audit:read"

#: The states ``GET /v1/overrides?status=`` lists: not yet reviewed, or reviewed.
OVERRIDE_STATES = ("open", "reviewed")


def _reviewable_by(actor: Actor, row: OverrideRow) -> bool:
    """Whoever opened an override, and their agency, never review it (:func:`review_override`)."""
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
    caller who acts for the child, as for the review) or oversight (:data:`OVERSIGHT_SCOPE`).
    Anyone else gets ``LookupError`` (404), as if it did not exist. The justification may
    describe the child's situation, so each reading is an audit entry (``consents_read``)."""
    row = session.get(OverrideRow, override_id)
    if row is None:
        raise LookupError(override_id)
    acts_for = acts_for_child(session, actor, load_child(session, row.child_id))
    if not acts_for and OVERSIGHT_SCOPE not in actor.scopes:
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
    entry = _audit(
        session,
        actor,
        "consents_read",
        row.child_id,
        object_type="override",
        object_id=row.id,
    )
    return answer, entry


def override_queue(session: Session, actor: Actor, status: str) -> list[dict[str, Any]]:
    """Overrides in ``status`` (:data:`OVERRIDE_STATES`), oldest first: for oversight, all of
    them; for a reviewer (an administrator too), those about children in their jurisdiction
    that they may review (not opened by them or their agency), as :func:`read_override`
    shows them one at a time only to those who act for the child."""
    rows = list(
        session.scalars(
            select(OverrideRow)
            .where(
                OverrideRow.reviewed_at.is_(None)
                if status == "open"
                else OverrideRow.reviewed_at.is_not(None)
            )
            .order_by(OverrideRow.starts_at)
        )
    )
    if OVERSIGHT_SCOPE not in actor.scopes:
        if actor.kind not in CONSENT_AUTHORITY_KINDS:
            return []
        mine = children_in_jurisdiction(session, actor, {row.child_id for row in rows})
        rows = [row for row in rows if row.child_id in mine and _reviewable_by(actor, row)]
    moment = utcnow()
    return [override_summary(row, moment) for row in rows[:QUEUE_LIMIT]]


# -- "withhold from" entries -------------------------------------------------------------------


#: Where a withhold entry stands now (``state`` in ``GET /v1/children/{id}/withholds``).
WITHHOLD_STATES = ("active", "not_started", "expired", "revoked")


def _withhold_state(row: WithholdRow, moment: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    return period_state(
        as_utc(row.starts_at) if row.starts_at else None,
        as_utc(row.ends_at) if row.ends_at else None,
        moment,
    )


def withhold_json(row: WithholdRow, moment: datetime) -> dict[str, Any]:
    """A withhold entry as the consent officers who act for the child read it, written
    reasons included."""
    document = row.open(data_keyring())
    target = row.target()
    revocation = None
    if row.revoked_at is not None:
        revocation = {
            "revoked_at": as_utc(row.revoked_at).isoformat(),
            "revoked_by": party(row.revoked_by_agency, row.revoked_by_person),
            "reason": document.get("revocation_reason"),
        }
    return {
        "id": row.id,
        "state": _withhold_state(row, moment),
        "child_id": row.child_id,
        "target": None if target is None else target.to_json(),
        "target_hub": document.get("target_hub"),
        "actor_kind": row.actor_kind,
        # Every category named, even when the entry was recorded without any: an officer must
        # never read an empty list as "nothing withheld".
        "categories": list(row.categories or CATEGORIES),
        "starts": as_utc(row.starts_at).isoformat() if row.starts_at else None,
        "ends": as_utc(row.ends_at).isoformat() if row.ends_at else None,
        "reason": document.get("reason"),
        "recorded_at": as_utc(row.recorded_at).isoformat(),
        "recorded_by": party(row.recorded_by_agency, row.recorded_by_person),
        "revocation": revocation,
    }


def _unknown_target(
    session: Session, target: ActorRef | None, target_hub: str | None = None
) -> list[dict[str, str]]:
    """What the hub does not know in an entry's target: an entry naming an agency or person
    that is not registered here (a mistyped id) would withhold from nobody while the officer
    believes the child protected. An agency of a pinned peer hub (which may look the child up,
    docs/federation.md) is named with that hub in ``target_hub``: the hub is checked instead."""
    from exchange.agencies import Agency

    if target_hub is not None:
        return _peer_target_problems(session, target, target_hub)
    if target is None:
        return []
    found = []
    if target.agency_id is not None and session.get(Agency, target.agency_id) is None:
        found.append(
            {
                "pointer": "/target/agency_id",
                "message_es": f"En este nodo no hay ninguna agencia {target.agency_id!r}.",
                "message_en": f"This hub has no agency {target.agency_id!r}.",
            }
        )
    if target.person_id is not None:
        person = session.get(Person, target.person_id)
        if person is None:
            found.append(
                {
                    "pointer": "/target/person_id",
                    "message_es": f"En este nodo no hay ninguna persona {target.person_id!r}.",
                    "message_en": f"This hub has no person {target.person_id!r}.",
                }
            )
        elif target.agency_id is not None and person.agency_id != target.agency_id:
            found.append(
                {
                    "pointer": "/target/person_id",
                    "message_es": f"{target.person_id!r} pertenece a {person.agency_id!r}, "
                    f"no a {target.agency_id!r}: la reserva no alcanzaría a nadie.",
                    "message_en": f"{target.person_id!r} belongs to {person.agency_id!r}, "
                    f"not {target.agency_id!r}: the entry would withhold from nobody.",
                }
            )
    return found


def _withhold_period_problems(entry: WithholdFrom, moment: datetime) -> list[dict[str, str]]:
    if entry.ends is None:
        return []
    if entry.starts is not None and entry.ends <= entry.starts:
        return [
            {
                "pointer": "/ends",
                "message_es": "El fin debe ser posterior al inicio («starts»).",
                "message_en": "The end must come after the start ('starts').",
            }
        ]
    if entry.ends <= moment:
        return [
            {
                "pointer": "/ends",
                "message_es": "El fin ya pasó: la reserva no protegería nada.",
                "message_en": "The end is in the past: the entry would protect nothing.",
            }
        ]
    return []


def _peer_target_problems(
    session: Session, target: ActorRef | None, target_hub: str
) -> list[dict[str, str]]:
    """``target_hub`` names the pinned peer whose agency the entry withholds from: only an
    agency, not registered here, of a hub this hub pinned."""
    from exchange.agencies import Agency
    from exchange.peers import Peer

    if target is None or target.agency_id is None or target.person_id is not None:
        return [
            {
                "pointer": "/target_hub",
                "message_es": "target_hub va con target.agency_id (una agencia de ese nodo), "
                "sin persona: las personas de otro nodo no consultan aquí.",
                "message_en": "target_hub goes with target.agency_id (an agency of that hub), "
                "without a person: another hub's people never ask here.",
            }
        ]
    if session.get(Agency, target.agency_id) is not None:
        return [
            {
                "pointer": "/target_hub",
                "message_es": f"{target.agency_id} es una agencia de este nodo: quite target_hub.",
                "message_en": f"{target.agency_id} is an agency of this hub: leave out target_hub.",
            }
        ]
    if session.get(Peer, target_hub) is None:
        return [
            {
                "pointer": "/target_hub",
                "message_es": f"No hay un nodo par {target_hub!r} registrado (puente peer list).",
                "message_en": f"No peer hub {target_hub!r} is pinned (puente peer list).",
            }
        ]
    return []


def record_withhold(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Record a withhold entry (the request body, already schema-valid: ``target`` and/or
    ``actor_kind``, ``categories``, ``starts``, ``ends``, ``reason``). A consent officer's,
    who acts for the child; it counts from the next decision on, in every process."""
    require_acts_for(session, actor, child)
    require_officer(actor)
    moment = utcnow()
    withhold_id = new_id("wth")
    fields = ("target", "actor_kind", "categories", "starts", "ends")
    try:
        entry = WithholdFrom.from_json(
            {
                "child_id": child.child_id,
                "id": withhold_id,
                **{key: document[key] for key in fields if document.get(key) is not None},
            }
        )
    except ConsentError as error:
        raise _format_error(error) from error
    target_hub = document.get("target_hub")
    found = _unknown_target(session, entry.target, target_hub) + _withhold_period_problems(
        entry, moment
    )
    if found:
        raise ConsentProblem(
            "validation",
            "La reserva no puede registrarse.",
            "The withhold entry cannot be recorded.",
            found,
        )
    target = entry.target
    row = WithholdRow(
        id=withhold_id,
        child_id=child.child_id,
        target_agency_id=target.agency_id if target else None,
        target_person_id=target.person_id if target else None,
        target_role=target.role if target else None,
        actor_kind=entry.actor_kind,
        categories=[code for code in CATEGORIES if code in entry.categories],
        # In UTC, as every stored instant is (SQLite keeps no offset).
        starts_at=entry.starts.astimezone(UTC) if entry.starts else None,
        ends_at=entry.ends.astimezone(UTC) if entry.ends else None,
        recorded_by_agency=actor.agency_id,
        recorded_by_person=actor.person_id,
        recorded_at=moment,
    )
    sealed = {"reason": document["reason"]}
    if target_hub is not None:
        sealed["target_hub"] = target_hub
    row.seal(data_keyring(), sealed)
    session.add(row)
    # Codes and ids only: the written reason may describe the child's situation.
    audit_entry = _audit(
        session,
        actor,
        "consent_changed",
        child.child_id,
        object_type="withhold",
        object_id=withhold_id,
        detail="withhold_recorded",
    )
    forget_child(child.child_id)
    return withhold_json(row, moment), audit_entry


def list_withholds(
    session: Session, actor: Actor, child: ChildContext
) -> tuple[list[dict[str, Any]], str]:
    """The child's withhold entries (and those of children merged into it), newest first,
    active and past, each with its ``state``: for a caller who acts for the child, anyone else
    gets ``LookupError`` (404). Each reading is an audit entry (``consents_read``, detail
    ``withholds``; ids only)."""
    require_acts_for(session, actor, child)
    moment = utcnow()
    rows = session.scalars(
        select(WithholdRow)
        .where(WithholdRow.child_id.in_(child.family))
        .order_by(WithholdRow.recorded_at.desc(), WithholdRow.id.desc())
    )
    found = [withhold_json(row, moment) for row in rows]
    entry = _audit(session, actor, "consents_read", child.child_id, detail="withholds")
    return found, entry


def revoke_withhold(
    session: Session, actor: Actor, withhold_id: str, reason: str
) -> tuple[dict[str, Any], str]:
    """End a withhold entry at once (a consent officer's, who acts for the child); a revoked
    entry is kept, with who revoked it, when and why."""
    row, child = _officer_row(session, actor, WithholdRow, withhold_id)
    if row.revoked_at is not None:
        raise ConsentProblem(
            "conflict",
            "La reserva ya fue revocada.",
            "The withhold entry was already revoked.",
        )
    moment = utcnow()
    keyring = data_keyring()
    row.seal(keyring, {**row.open(keyring), "revocation_reason": reason})
    row.revoked_at = moment
    row.revoked_by_agency = actor.agency_id
    row.revoked_by_person = actor.person_id
    entry = _audit(
        session,
        actor,
        "consent_changed",
        child.child_id,
        object_type="withhold",
        object_id=row.id,
        detail="withhold_revoked",
    )
    forget_child(child.child_id)
    return withhold_json(row, moment), entry


# -- access requests and grants ----------------------------------------------------------------


def _denied_at_once(decision: Decision, categories: list[str]) -> bool:
    """Whether the request is refused at once, with no officer to ask: the hard rules that
    look at the request alone (who asks, why, for which action) forbid every category asked
    for, so no officer could open any of them. Decided from those rules only, so that it
    depends on the request and never on the child: rules about the child's own facts (asylum,
    country of origin) may forbid as much, but answering at once on them would tell the
    requester those facts — a consulate would learn from "pending" rather than "denied" that
    the child seeks protection. Nor does a withhold entry deny at once: the reader it refuses is
    not told of it (docs/consent.md §8.5). Such requests wait for an officer like any other."""
    rules = {rule.id: rule for rule in hard_rules().rules}
    forbidden = 0
    for rule_id in decision.rule_ids:
        rule = rules.get(rule_id)
        if rule is not None and not (
            rule.child_international_protection or rule.actor_from_country_of_origin
        ):
            forbidden |= rule.mask
    return mask_of(categories) & ~forbidden == 0


def request_access(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> tuple[AccessRequestRow, str]:
    """An access request: granted at once when consent covers every category asked for,
    denied at once when hard rules about the request alone forbid them all
    (:func:`_denied_at_once`), otherwise pending for an officer.

    A request granted at once makes no grant: the consent (or grant, or override) that
    already permits stays what permits, so revoking it ends this access too. The request
    keeps, as ``access``, that basis and the instant it ends (:func:`covered_access`)."""
    moment = utcnow()
    until = as_utc(datetime.fromisoformat(document["until"]))
    if until <= moment:
        raise ConsentProblem(
            "validation",
            "La fecha límite ya pasó.",
            "The end date is in the past.",
            [{"pointer": "/until", "message_es": "Ya pasó.", "message_en": "In the past."}],
        )
    categories = [code for code in CATEGORIES if code in set(document["categories"])]
    engine_for = actor.for_consent()
    decision = evaluate(child, engine_for, "read", document["purpose"], categories, now=moment)
    access = None
    if decision.permitted and not decision.withheld:
        status = "granted"
        access = covered_access(
            child, engine_for, document["purpose"], categories, decision, moment, until
        )
    elif _denied_at_once(decision, categories):
        status = "denied"
    else:
        status = "pending"
    row = AccessRequestRow(
        id=new_id("acr"),
        # The id asked for: if it was merged, the requester is not told into which child
        # (the hub follows the merge wherever it uses the id).
        child_id=document.get("child_id") or child.child_id,
        requester_agency=actor.agency_id,
        requester_person=actor.person_id,
        purpose=document["purpose"],
        categories=categories,
        record_ids=sorted(set(document.get("record_ids", ()))),
        until=until,
        jurisdictions=sorted(child_jurisdictions(session, child)),
        status=status,
        decision=decision.to_json(),
        created_at=moment,
        decided_at=moment if status != "pending" else None,
    )
    session.add(row)
    entry = audit_decision(
        session,
        actor,
        decision,
        audit_action="access_requested",
        purpose=row.purpose,
        child_id=child.child_id,
        object_type="access_request",
        object_id=row.id,
        detail=status,
        # A request waiting for the consent officer was filed, not refused: counted as a
        # denial, a lawyer's ordinary requests would raise denial-spike alerts to oversight.
        outcome="success" if status == "pending" else None,
    )
    row.decision = _with_access({"id": entry, **decision.to_json()}, access)
    return row, entry


#: Where a granted request keeps what its access rests on and until when, beside the
#: engine's decision (the routes answer it as ``access``, outside ``decision``).
ACCESS_KEY = "access"


def _with_access(decision: dict[str, Any], access: dict[str, Any] | None) -> dict[str, Any]:
    return decision if access is None else {**decision, ACCESS_KEY: access}


def request_access_basis(row: AccessRequestRow) -> dict[str, Any] | None:
    """What a granted request's access rests on (``basis``, the ids, ``until``); None while
    pending, when denied, and for requests granted before this was kept."""
    found = (row.decision or {}).get(ACCESS_KEY)
    return dict(found) if isinstance(found, dict) else None


def may_see_request(session: Session, actor: Actor, row: AccessRequestRow) -> bool:
    if actor.person_id is not None and row.requester_person == actor.person_id:
        return True
    if actor.person_id is None and row.requester_person is None:
        if actor.agency_id == row.requester_agency:
            return True
    if "access:decide" in actor.scopes:
        return acts_for_child(session, actor, load_child(session, row.child_id))
    return False


QUEUE_LIMIT = 500


def children_in_jurisdiction(session: Session, actor: Actor, child_ids: set[str]) -> set[str]:
    """Those of ``child_ids`` whose records lie, now, in ``actor``'s jurisdiction (a transfer
    moves a child's requests and overrides to the new state's queues)."""
    from exchange.agencies import Agency
    from exchange.records import Record

    now_in: dict[str, set[str]] = {}
    for child_id, jurisdiction in session.execute(
        select(Record.child_id, Agency.jurisdiction)
        .join(Agency, Agency.id == Record.owner_agency)
        .where(Record.child_id.in_(child_ids))
    ):
        now_in.setdefault(child_id, set()).add(jurisdiction)
    return {
        child_id
        for child_id, places in now_in.items()
        if any(covers(actor.jurisdiction, j) for j in places)
    }


def pending_queue(session: Session, actor: Actor, status: str) -> list[AccessRequestRow]:
    """Requests in ``status`` that ``actor`` may decide: about children of its jurisdiction,
    for a person or system of a kind that acts for children (administrators alike)."""
    rows = list(
        session.scalars(
            select(AccessRequestRow)
            .where(AccessRequestRow.status == status)
            .order_by(AccessRequestRow.created_at)
        )
    )
    # Administrators too: the queue shows what GET /v1/access-requests/{id} would show them
    # (acts_for_child), so another state's requests are not theirs; a national one sees all.
    if actor.kind not in CONSENT_AUTHORITY_KINDS:
        return []
    mine = children_in_jurisdiction(session, actor, {row.child_id for row in rows})
    return [row for row in rows if row.child_id in mine][:QUEUE_LIMIT]


def _requester_for_engine(session: Session, row: AccessRequestRow) -> EngineActor | None:
    """The engine's view of who asked; None when they are no longer registered and active."""
    from exchange.disclosure import person_actor, recipient_actor

    try:
        if row.requester_person:
            return person_actor(session, row.requester_person)
        if row.requester_agency:
            return recipient_actor(session, row.requester_agency)
    except LookupError:
        pass
    return None


def _refuse_approval_a_hard_rule_forbids(
    session: Session, child: ChildContext, row: AccessRequestRow, moment: datetime
) -> None:
    """A grant weighs only at the consent step and hard legal rules come first, so a grant of
    what a rule forbids could never take effect — yet the requester would be told that access
    was granted while every read is refused. Such an approval is a conflict that names the
    rule; the officer denies instead. Decided for the requester now (facts may have changed
    since the request was made), or on the request's own decision if they can no longer be
    asked about."""
    requester = _requester_for_engine(session, row)
    if requester is not None:
        decision = evaluate(child, requester, "read", row.purpose, row.categories, now=moment)
        reasons = [reason.to_json() for reason in decision.reasons]
    else:
        reasons = list((row.decision or {}).get("reasons", ()))
    forbidding = [r for r in reasons if r.get("code") == "hard_rule" and r.get("result") == "deny"]
    if not forbidding:
        return
    rule_ids = sorted({str(r["ref"]) for r in forbidding if r.get("ref")})
    categories = [c for c in CATEGORIES if any(c in r.get("categories", ()) for r in forbidding)]
    why_es = " ".join(str(r["es"]) for r in forbidding)
    why_en = " ".join(str(r["en"]) for r in forbidding)
    raise ConsentProblem(
        "conflict",
        f"Nadie puede aprobar esta solicitud: {why_es} Una autorización no cambiaría nada "
        "(la regla se aplica antes que cualquier consentimiento o autorización) y la persona "
        "solicitante creería tener un acceso que no tiene. Deniegue la solicitud "
        "(approve: false) con un motivo.",
        f"Nobody can approve this request: {why_en} A grant would change nothing (the rule "
        "applies before any consent or grant) and the requester would believe they have "
        "access they do not have. Deny the request instead (approve: false), with a reason.",
        rule_ids=rule_ids,
        categories=categories,
    )


def _refuse_approval_that_would_not_take_effect(
    child: ChildContext, with_grant: Decision | None
) -> None:
    """A withhold entry and an adolescent's objection (awaiting review, or upheld by it) come
    before grants in the engine's order, so a grant of what they cover could not take effect —
    yet the requester would be told that access was granted while every read is refused.
    ``with_grant`` is the requester's decision as if the grant were stored (None when they can
    no longer be asked about, and then no read is made under it anyway): the engine itself
    says what each covers (its categories, whom it is about, whether a review set it aside).
    Such an approval is a conflict that names them and what to do first; the officer can also
    deny instead."""
    if with_grant is None:
        return
    standing = [r for r in with_grant.reasons if r.code in ("withhold", "objection")]
    if not standing:
        return
    withhold_ids = sorted({str(r.ref) for r in standing if r.code == "withhold" and r.ref})
    view_ids = sorted({str(r.ref) for r in standing if r.code == "objection" and r.ref})
    first_es, first_en = [], []
    if any(r.code == "withhold" for r in standing):
        first_es.append(
            "Revoque primero la reserva (POST /v1/withholds/{id}/revoke) si ya no procede."
        )
        first_en.append(
            "Revoke the withhold entry first (POST /v1/withholds/{id}/revoke) if it no longer "
            "applies."
        )
    reviewed = {view.id for view in child.inputs.views if view.review is not None}
    if any(r.code == "objection" for r in standing):
        if view_ids and reviewed.issuperset(view_ids):
            first_es.append(
                "La Procuraduría confirmó la oposición al revisarla: mientras siga en pie, "
                "ninguna autorización la supera."
            )
            first_en.append(
                "The Procuraduría upheld the objection on review: while it stands, no grant "
                "overcomes it."
            )
        else:
            first_es.append(
                "La oposición debe revisarse antes: hasta que la Procuraduría la revise y la "
                "deje sin efecto (POST /v1/views/{id}/review), ninguna autorización la supera."
            )
            first_en.append(
                "The objection must be reviewed by the Procuraduría first: until a review sets "
                "it aside (POST /v1/views/{id}/review), no grant overcomes it."
            )
    categories = [c for c in CATEGORIES if any(c in r.categories for r in standing)]
    why_es = " ".join(r.es for r in standing)
    why_en = " ".join(r.en for r in standing)
    raise ConsentProblem(
        "conflict",
        f"Esta solicitud no puede aprobarse así: {why_es} Se aplica antes que cualquier "
        "autorización, así que una autorización no cambiaría nada y la persona solicitante "
        f"creería tener un acceso que no tiene. {' '.join(first_es)} Si no, deniegue la "
        "solicitud (approve: false) con un motivo.",
        f"This request cannot be approved as it stands: {why_en} That applies before any "
        "grant, so a grant would change nothing and the requester would believe they have "
        f"access they do not have. {' '.join(first_en)} Otherwise deny the request "
        "(approve: false), with a reason.",
        categories=categories,
        **({"withhold_ids": withhold_ids} if withhold_ids else {}),
        **({"view_ids": view_ids} if view_ids else {}),
    )


def _capped_at_majority(end: datetime, child: ChildContext, moment: datetime) -> datetime:
    """A grant never runs past the 18th birthday (docs/consent.md §2): a later end, whether
    the request's or the officer's, is cut there rather than refused. Not for a child who is
    already 18: no grant can be made then, and ``check_grant`` says why."""
    majority = child.facts.eighteenth_birthday
    if majority is None or majority <= moment:
        return end
    # In UTC, as every stored instant is (SQLite keeps no offset: UTC−05:00 would shift it).
    return min(end, majority.astimezone(UTC))


def _with_grant(child: ChildContext, grant: Grant) -> ChildContext:
    """The child as the engine will see it once ``grant`` is stored."""
    grants = (*child.inputs.grants, grant)
    return replace(
        child,
        inputs=replace(child.inputs, grants=grants),
        consent_set=ConsentSet((*child.inputs.consents, *grants), child=child.facts),
    )


def revoke_grant(
    session: Session, actor: Actor, grant_id: str, reason: str
) -> tuple[GrantRow, str]:
    """End a grant at once (a consent officer acting for the child): an approval made in error,
    a lawyer who left the case. Counts from the next decision in every process (the grant's
    ``revoked_at`` is in the child's stamp); its request then shows the access ``revoked``.
    Returns the grant and the audit entry (``consent_revoked``, object ``grant``)."""
    row, child = _officer_row(session, actor, GrantRow, grant_id)
    moment = utcnow()
    if row.revoked_at is not None or as_utc(row.until) <= moment:
        raise ConsentProblem(
            "conflict",
            "La autorización ya terminó (revocada o vencida).",
            "The grant has already ended (revoked or expired).",
        )
    # Claimed by a conditional update: of two officers revoking at once, one revokes.
    claimed = session.execute(
        update(GrantRow)
        .where(GrantRow.id == row.id, GrantRow.revoked_at.is_(None))
        .values(
            revoked_at=moment,
            revoked_by=actor.person_id or actor.agency_id,
            revocation_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConsentProblem(
            "conflict",
            "La autorización ya fue revocada.",
            "The grant was already revoked.",
        )
    session.refresh(row)
    entry = _audit(
        session,
        actor,
        "consent_revoked",
        child.child_id,
        purpose=row.document.get("purpose"),
        object_type="grant",
        object_id=row.id,
        grant_ids=[row.id],
        detail="grant_revoked",
    )
    forget_child(child.child_id)
    return row, entry


def decide_request(
    session: Session,
    actor: Actor,
    request_id: str,
    approve: bool,
    reason: str,
    until: datetime | None,
) -> tuple[AccessRequestRow, GrantRow | None, str]:
    row = session.get(AccessRequestRow, request_id)
    if row is None:
        raise LookupError(request_id)
    child = load_child(session, row.child_id)
    if not acts_for_child(session, actor, child):
        raise LookupError(request_id)  # not in the caller's queue: as if it did not exist
    require_officer(actor)
    if actor.person_id == row.requester_person or (
        approve and actor.agency_id is not None and actor.agency_id == row.requester_agency
    ):
        # Nor a colleague: an agency's officer approving its own agency's request is the
        # agency granting itself access. Denying one is always allowed.
        raise ConsentProblem(
            "forbidden",
            "Nadie aprueba su propia solicitud ni la de su institución; debe resolverla la "
            "autoridad de consentimiento de otra institución.",
            "Nobody approves their own request or their agency's; a consent authority of "
            "another agency must decide it.",
        )
    moment = utcnow()
    # Claimed by a conditional update before anything else: of two officers deciding at once
    # (SQLite has no row locks) exactly one gets the row; the other gets a conflict.
    claimed = session.execute(
        update(AccessRequestRow)
        .where(AccessRequestRow.id == row.id, AccessRequestRow.status == "pending")
        .values(status="granted" if approve else "denied", decided_at=moment)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(row)
        raise ConsentProblem(
            "conflict",
            f"La solicitud ya fue resuelta ({row.status}).",
            f"The request was already decided ({row.status}).",
        )
    session.refresh(row)
    grant_row = None
    if approve:
        _refuse_approval_a_hard_rule_forbids(session, child, row, moment)
        asked_end = as_utc(row.until) if until is None else min(as_utc(row.until), as_utc(until))
        end = _capped_at_majority(asked_end, child, moment)
        grant_id = new_id("grt")
        grantee = (
            ActorRef(person_id=row.requester_person)
            if row.requester_person
            else ActorRef(agency_id=row.requester_agency)
        )
        grant = Grant(
            child_id=child.child_id,
            grantee=grantee,
            purpose=row.purpose,
            categories=frozenset(row.categories),
            until=end,
            id=grant_id,
            starts=moment,
            record_ids=frozenset(row.record_ids or ()),
        )
        found = check_grant(grant, child.facts, moment)
        if found:
            raise ConsentProblem(
                "validation",
                "La autorización no puede darse así.",
                "The grant cannot be made like this.",
                _problems(found),
            )
        grant_row = GrantRow(
            id=grant_id,
            child_id=child.child_id,
            request_id=row.id,
            grantee_agency=row.requester_agency if not row.requester_person else None,
            grantee_person=row.requester_person,
            document=grant.to_json(),
            until=end,
            created_at=moment,
        )
        requester = _requester_for_engine(session, row)
        with_grant = (
            None
            if requester is None
            else evaluate(
                _with_grant(child, grant),
                requester,
                "read",
                row.purpose,
                row.categories,
                now=moment,
            )
        )
        _refuse_approval_that_would_not_take_effect(child, with_grant)
        session.add(grant_row)
        row.grant_id = grant_id
        # A new dict, so the JSON column sees the change.
        row.decision = _with_access(
            dict(row.decision or {}), granted_access(grant, with_grant, asked_end)
        )
    row.status = "granted" if approve else "denied"
    row.decided_by = actor.person_id or actor.agency_id
    row.decision_reason = reason
    row.decided_at = moment
    entry = _audit(
        session,
        actor,
        "access_granted" if approve else "access_denied",
        child.child_id,
        outcome="success" if approve else "denied",
        purpose=row.purpose,
        object_type="grant" if grant_row else "access_request",
        object_id=grant_row.id if grant_row else row.id,
        decision_basis="grant" if approve else "default_deny",
        grant_ids=[grant_row.id] if grant_row else [],
        decision_categories=list(row.categories) if approve else [],
    )
    forget_child(child.child_id)
    return row, grant_row, entry


def active_grants(session: Session, actor: Actor) -> list[GrantRow]:
    """The grants in force that the caller may read under: a person's own, and their
    agency's (a grant to an agency covers its people too)."""
    query = select(GrantRow).where(GrantRow.revoked_at.is_(None), GrantRow.until > utcnow())
    if actor.person_id is not None:
        query = query.where(
            (GrantRow.grantee_person == actor.person_id)
            | (GrantRow.grantee_person.is_(None) & (GrantRow.grantee_agency == actor.agency_id))
        )
    else:
        query = query.where(
            GrantRow.grantee_agency == actor.agency_id, GrantRow.grantee_person.is_(None)
        )
    return list(session.scalars(query.order_by(GrantRow.until)))


def grant_end_as_told(session: Session, row: GrantRow) -> dict[str, Any]:
    """A grant's end as its grantee is told it (``GET /v1/grants``): as the request it was
    made on tells it (:func:`exchange.access_basis.granted_access`), so a grantee who may not
    learn the 18th birthday is not shown the birthday the grant is capped at."""
    request = session.get(AccessRequestRow, row.request_id)
    access = request_access_basis(request) if request is not None else None
    if access is not None and access.get("ends_at_majority_at_latest"):
        return {"until": access["until"], "ends_at_majority_at_latest": True}
    return {"until": as_utc(row.until).isoformat()}


# -- alerts for oversight ----------------------------------------------------------------------


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


def party(agency_id: str | None, person_id: str | None) -> dict[str, str]:
    """Who acted or asked, as answers name them: ``agency_id`` and ``person_id`` when known."""
    return {
        key: value for key, value in (("agency_id", agency_id), ("person_id", person_id)) if value
    }


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
