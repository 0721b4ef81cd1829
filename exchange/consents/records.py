"""Consents: recording, listing, finding and revoking them, the state each is in now, and
the notifications a revocation sends to the agencies that received data under it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from consent import Consent, ConsentError, check_consent, consent_warnings
from exchange.auth import Actor, utcnow
from exchange.consent_store import ConsentDisclosure, ConsentRow, OutboxDisclosure, new_id
from exchange.consents.common import (
    REASON,
    ConsentProblem,
    actor_ref,
    audit,
    format_error,
    problems,
    refuse_control_characters,
    require_acts_for,
    unknown_parties,
)
from exchange.consents.views import store_view, views_parties, views_texts
from exchange.crypto import data_keyring
from exchange.disclosure import ChildContext, forget_child, load_child
from exchange.outbox import OutboxMessage, enqueue
from exchange.people import Person


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


def unknown_actors(session: Session, document: dict[str, Any]) -> list[dict[str, str]]:
    """The grantees, provision actors and the views' ``heard_by`` and ``about`` naming an
    agency or person the hub does not know (:func:`unknown_parties`): a mistyped id
    (``mx.nl.dfi``) in a deny would protect nobody while the officer believes the child
    protected, as a withhold entry's would (exchange.consents.withholds)."""
    return unknown_parties(session, _named_actors(document))


def _named_actors(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The grantees, provision actors and views parties ``document`` names, each with its
    JSON pointer."""
    named: list[tuple[str, dict[str, Any]]] = []
    for index, grantee in enumerate(document.get("grantee") or ()):
        named.append((f"/grantee/{index}", grantee))
    pending = [(f"/provision/{i}", p) for i, p in enumerate(document.get("provision") or ())]
    while pending:
        pointer, provision = pending.pop(0)
        for index, actor in enumerate(provision.get("actor") or ()):
            named.append((f"{pointer}/actor/{index}", actor))
        nested = provision.get("provision") or ()
        pending.extend((f"{pointer}/provision/{i}", p) for i, p in enumerate(nested))
    # The views recorded with the consent: an objection about a mistyped agency would protect
    # nobody, as one recorded on its own (exchange.consents.views.record_views).
    named.extend(views_parties(document.get("child_views"), "/child_views"))
    return named


def peer_agency_warnings(session: Session, document: dict[str, Any]) -> list[dict[str, str]]:
    """A warning for each agency ``document`` names that is a pinned peer hub's
    (:func:`unknown_actors` takes it by the peer's prefixes alone): this hub cannot check that
    the id exists there, and a mistyped one in a deny protects nobody (docs/federation.md §1)."""
    from exchange.agencies import Agency
    from exchange.peers import peer_agency_caution, peer_speaking_for

    warnings = []
    for pointer, ref in _named_actors(document):
        agency_id = ref.get("agency_id")
        if not isinstance(agency_id, str) or session.get(Agency, agency_id) is not None:
            continue
        peer = peer_speaking_for(session, agency_id)
        if peer is not None:
            warnings.append(peer_agency_caution(session, peer, agency_id, f"{pointer}/agency_id"))
    return warnings


@dataclass(frozen=True)
class StoredConsent:
    id: str
    document: dict[str, Any]
    audit_entry: str
    #: What the consent says that its grantor may not mean (:func:`consent.consent_warnings`),
    #: each ``{"code", "pointer", "es", "en"}``: told with the answer, not stored.
    warnings: tuple[dict[str, str], ...] = ()


def record_consent(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> StoredConsent:
    """Check and store a consent (``consent/1``, already schema-valid) for ``child``."""
    refuse_control_characters(*views_texts(document.get("child_views"), "/child_views"))
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
        raise format_error(error) from error
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
    found = problems(check_consent(parsed, child.facts, moment)) + unknown_actors(session, document)
    if found:
        raise ConsentProblem(
            "validation",
            "El consentimiento no puede registrarse.",
            "The consent cannot be recorded.",
            found,
        )
    keyring = data_keyring()
    stored = parsed.to_json()
    if parsed.child_views is not None:
        # Views that come with a consent are recorded on their own too, so an objection gets
        # an id and can be reviewed (POST /v1/views/{id}/review); the consent names that id.
        view = store_view(session, actor, parsed.child_views, moment, consent_id=parsed.id)
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
    entry = audit(
        session,
        actor,
        "consent_granted",
        child.child_id,
        object_type="consent",
        object_id=parsed.id,
    )
    forget_child(child.child_id)
    assert parsed.id is not None
    warnings = tuple(warning.to_json() for warning in consent_warnings(parsed))
    # An agency of a peer hub is taken by that hub's prefixes alone (unknown_actors).
    warnings += tuple(peer_agency_warnings(session, document))
    return StoredConsent(parsed.id, stored, entry, warnings)


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
    refuse_control_characters(("/reason", reason, REASON))
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
    entry = audit(
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
    lookup, through its hub (:mod:`exchange.federation_notices`). Returns the agencies it was
    queued for.

    A disabled agency is queued for too: it still holds the data, and must hear to stop using
    it once it is enabled again. Its notice dies as any notice of a disabled agency does when
    its turn comes (``puente agency enable`` counts it, ``puente outbox retry --all-dead
    --agency`` sends it), or, without a webhook, is kept for it to read. Only an agency that
    no longer exists is skipped."""
    from exchange.agencies import Agency
    from exchange.federation_notices import queue_revocation, revocation_payload

    recipients: set[tuple[str, str | None]] = {
        (agency_id, peer_hub)
        for agency_id, peer_hub in session.execute(
            select(ConsentDisclosure.agency_id, ConsentDisclosure.peer_hub).where(
                ConsentDisclosure.consent_id == row.id
            )
        )
    }
    # A referral's or transfer's notice that went out under the consent, and may have reached
    # its agency (exchange.disclosure.decide_delivery): not one that certainly never arrived.
    recipients.update(
        (agency_id, None)
        for agency_id in session.scalars(
            select(OutboxMessage.agency_id)
            .join(OutboxDisclosure, OutboxDisclosure.message_id == OutboxMessage.id)
            .where(
                OutboxDisclosure.consent_id == row.id,
                OutboxMessage.agency_id.is_not(None),
                or_(OutboxMessage.maybe_reached.is_(True), OutboxMessage.status == "delivered"),
            )
        )
        if agency_id is not None
    )
    notified = []
    for agency_id, peer_hub in sorted(recipients, key=lambda pair: (pair[0], pair[1] or "")):
        if peer_hub is not None:
            queue_revocation(session, peer_hub, agency_id, row.id, child.child_id, moment)
            notified.append(agency_id)
            continue
        agency = session.get(Agency, agency_id)
        if agency is None:
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
