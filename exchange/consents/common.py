"""What the consent services share: who may act for a child (jurisdictions and the officer's
role), :class:`ConsentProblem`, their audit entries and the parties their answers name.

Who may act for a child: the consent officers (and agency systems) whose jurisdiction covers
one of the agencies responsible for the child's records — an agency's own jurisdiction covers
the records it is responsible for. National bodies (jurisdiction ``00``) cover every state; a
state (``07``) covers its municipalities (``07089``). A person's jurisdiction may narrow their
agency's (a state Procuraduría's officer for one municipality): then it is theirs that counts,
for the queues and for every single item alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import ConsentError, Review
from consent.parts import ActorRef
from exchange.agencies import AUDIT_SCOPE, OVERSIGHT_KINDS
from exchange.audit_log import record_event
from exchange.auth import Actor, utcnow
from exchange.crypto import data_keyring
from exchange.disclosure import ChildContext, load_child

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
    access requests: a child-protection agency (:data:`CONSENT_AUTHORITY_KINDS`) whose
    jurisdiction — the person's, when a person calls — covers that of an agency responsible
    for one of the child's records. The same test as the queues' (:func:`children_in_jurisdiction`),
    for administrators alike (a national one, ``00``, acts for every child; a state hub's is
    not another state's).

    No "the caller's agency owns a record" shortcut: an agency's jurisdiction always covers
    its own records, so the shortcut only ever let a person whose jurisdiction narrows the
    agency's (an officer for 07089 of a state Procuraduría, 07) act for children outside it —
    read their consents, decide their requests — that never appeared in their queue. The kind
    is checked first for everyone: an agency whose kind changed after its people were
    registered (to immigration enforcement, say) no longer acts for any child through them."""
    if actor.kind not in CONSENT_AUTHORITY_KINDS:
        return False
    return any(covers(actor.jurisdiction, j) for j in child_jurisdictions(session, child))


OFFICER_ROLES = frozenset({"consent_officer", "administrator"})


#: Oversight's scope: an oversight body reads every override (as in ``GET /v1/audit/alerts``),
#: whatever its jurisdiction; the review is not theirs.
OVERSIGHT_SCOPE = AUDIT_SCOPE


def is_oversight(actor: Actor) -> bool:
    """Whether ``actor`` reads as oversight (every child's views and overrides, whatever the
    jurisdiction): :data:`OVERSIGHT_SCOPE` *and* an oversight body's kind now. The registry
    gives the scope to no other kind; checking the kind here too keeps a token issued before
    that rule, or before its agency's kind changed, from reading every state's children."""
    return OVERSIGHT_SCOPE in actor.scopes and actor.kind in OVERSIGHT_KINDS


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


def problems(found: Iterable[Any]) -> list[dict[str, str]]:
    return [
        {"pointer": p.pointer, "code": p.code, "message_es": p.es, "message_en": p.en}
        for p in found
    ]


def format_error(error: ConsentError) -> ConsentProblem:
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


def audit(session: Session, actor: Actor, action: str, child_id: str, **fields: Any) -> str:
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


def officer_row(
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


def add_review(
    session: Session, actor: Actor, model: Any, row_id: str, upheld: bool, reason: str
) -> tuple[Any, ChildContext, dict[str, Any]]:
    """Load a views record or override the caller may review and add the Procuraduría's
    review to its document (the caller seals it and writes the audit entry)."""
    row, child = officer_row(session, actor, model, row_id)
    if row.reviewed_at is not None:
        raise ConsentProblem("conflict", "Ya fue revisado.", "It was already reviewed.")
    document = row.open(data_keyring())
    row.reviewed_at = utcnow()
    document["review"] = Review(row.reviewed_at, upheld, actor_ref(actor), reason).to_json()
    return row, child, document


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


def party(agency_id: str | None, person_id: str | None) -> dict[str, str]:
    """Who acted or asked, as answers name them: ``agency_id`` and ``person_id`` when known."""
    return {
        key: value for key, value in (("agency_id", agency_id), ("person_id", person_id)) if value
    }
