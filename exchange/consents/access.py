"""Access requests and the grants made on them: asking, deciding (with the approvals that
could never take effect refused), revoking a grant, the decision queue, and the grants a
caller reads under."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, false, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from consent import CATEGORIES, CATEGORY_LABELS, ConsentSet, Decision, Grant, check_grant
from consent import Actor as EngineActor
from consent.parts import ActorRef
from consent.vocabulary import mask_of
from exchange.access_basis import covered_access, granted_access
from exchange.audit_log import record_event
from exchange.auth import HUB_CLIENT_ID, Actor, as_utc, utcnow
from exchange.consent_store import (
    AccessRequestJustification,
    AccessRequestRow,
    ChildInputs,
    GrantRow,
    new_id,
)
from exchange.consents.common import (
    CONSENT_AUTHORITY_KINDS,
    JUSTIFICATION,
    ON_BEHALF_OF_NAME,
    PROCEEDING_REFERENCE,
    QUEUE_LIMIT,
    REASON,
    ConsentProblem,
    acts_for_child,
    audit,
    child_jurisdictions,
    held_in_jurisdiction,
    instant_text,
    officer_row,
    problems,
    read_instant,
    refuse_control_characters,
    require_officer,
    unknown_parties,
)
from exchange.consents.hidden import entries_naming_caller_in
from exchange.crypto import data_keyring
from exchange.disclosure import (
    ChildContext,
    audit_decision,
    evaluate,
    forget_child,
    hard_rules,
    load_child,
    merge_facts,
)
from exchange.written_dates import day_in_both


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


def child_asked_about(session: Session, child_id: str) -> ChildContext:
    """The child an access request names, for :func:`request_access`: the child ``child_id``
    is now (a merged id resolves to its survivor), or — for an id the hub never issued — a
    child with no records, facts, consents or grants.

    Asking is no existence oracle (docs/consent.md §8.5): a request about an unknown id is
    decided, kept, audited and answered like one about a child the requester has no basis
    for — denied at once by the hard rules that look at the request alone, else pending. With
    no records it lies in no jurisdiction, so it reaches no officer's queue."""
    try:
        return load_child(session, child_id)
    except LookupError:
        facts = merge_facts(child_id, [])
        return ChildContext(
            child_id=child_id,
            family=frozenset({child_id}),
            facts=facts,
            inputs=ChildInputs((), (), (), (), ()),
            records=(),
            consent_set=ConsentSet((), child=facts),
        )


def request_access(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> tuple[AccessRequestRow, str]:
    """An access request: granted at once when consent covers every category asked for,
    denied at once when hard rules about the request alone forbid them all
    (:func:`_denied_at_once`), otherwise pending for an officer. ``child`` is
    :func:`child_asked_about` the request's ``child_id``.

    A request granted at once makes no grant: the consent (or grant, or override) that
    already permits stays what permits, so revoking it ends this access too. The request
    keeps, as ``access``, that basis and the instant it ends (:func:`covered_access`)."""
    on_behalf_of = document.get("on_behalf_of")
    refuse_control_characters(
        ("/justification", document.get("justification"), JUSTIFICATION),
        (
            "/on_behalf_of/name",
            on_behalf_of.get("name") if isinstance(on_behalf_of, dict) else None,
            ON_BEHALF_OF_NAME,
        ),
        ("/proceeding_reference", document.get("proceeding_reference"), PROCEEDING_REFERENCE),
    )
    # An agency this hub does not know would tell the officer the request is made for nobody
    # they can check (refused as a consent's unknown ids are). About the registry alone, never
    # the child: it tells nothing of whether the child exists (docs/consent.md §8.5).
    unknown = unknown_parties(session, [("/on_behalf_of", on_behalf_of)])
    if unknown:
        raise ConsentProblem(
            "validation", "La solicitud no es válida.", "The request is not valid.", unknown
        )
    moment = utcnow()
    # In UTC, as every instant is stored and answered; one beyond year 9999 there is refused.
    until = read_instant(document["until"], "/until")
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
        # As asked, whether or not each is one of the child's: a grant covers only the
        # child's records named, so an id that is not one covers nothing — and refusing it
        # would tell the requester which ids are the child's, or that the child exists.
        record_ids=sorted(set(document.get("record_ids", ()))),
        until=until,
        jurisdictions=sorted(child_jurisdictions(session, child)),
        status=status,
        decision=decision.to_json(),
        created_at=moment,
        decided_at=moment if status != "pending" else None,
    )
    session.add(row)
    written = {key: document[key] for key in REQUESTER_WORDS if document.get(key)}
    if written:
        session.flush()  # the request first: its justification's row refers to it
        justification = AccessRequestJustification(id=row.id)
        justification.seal(data_keyring(), written)
        session.add(justification)
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
        try:
            child = load_child(session, row.child_id)
        except LookupError:  # about an id the hub never issued (child_asked_about): no officer's
            return False
        return acts_for_child(session, actor, child)
    return False


#: How many rows a page of a queue (of requests, of overrides) holds when the caller does not
#: say (at most :data:`QUEUE_LIMIT`, the most any page holds).
QUEUE_PAGE = 100


@dataclass(frozen=True)
class QueueFilter:
    """What an officer narrows a queue to; None is anyone. ``child_id``: one child, under any
    of its ids (a merged id names the child it was merged into, as answers name it);
    ``requester``: an agency (its people's requests too) or a person."""

    child_id: str | None = None
    purpose: str | None = None
    requester: str | None = None


Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page of a list (of requests, of overrides): its ``rows`` in order, the ``total``
    the whole list holds, and ``next_after`` — the id to pass as ``after`` for the next page,
    None on the last one."""

    rows: list[Row]
    total: int
    next_after: str | None


RequestPage = Page[AccessRequestRow]


def _created(row: Any) -> Any:
    return row.created_at


def _decided(row: Any) -> Any:
    # Every decided request has its instant; the creation stands in for any that may not, so
    # that both databases order such a row alike (they place NULL at opposite ends).
    return func.coalesce(row.decided_at, row.created_at)


def request_queue(
    session: Session,
    actor: Actor,
    status: str,
    *,
    limit: int = QUEUE_PAGE,
    after: str | None = None,
    only: QueueFilter = QueueFilter(),
) -> RequestPage:
    """A page of the requests in ``status`` that ``actor`` may decide: about children of its
    jurisdiction now — following transfers and merges (:func:`held_in_jurisdiction`) — for a
    person or system of a kind that acts for children (administrators alike), narrowed to
    ``only``. Pending ones oldest first (the work queue: whoever waits longest comes first),
    decided ones by their decision, newest first (the history: what was decided last is what
    is looked for). At most ``limit`` rows (never more than :data:`QUEUE_LIMIT`), after the
    request ``after`` — any request the actor may decide, also one decided since that page
    was read; another id is a ``validation`` problem about ``/query/after``.

    Chosen in the database, in one query with no parameter per child: anyone may file any
    number of requests about ids the hub never issued (:func:`child_asked_about`), so the
    queue must neither load them nor bind one parameter per child they name."""
    # Administrators too: the queue shows what GET /v1/access-requests/{id} would show them
    # (acts_for_child), so another state's requests are not theirs; a national one sees all.
    jurisdiction = actor.jurisdiction if actor.kind in CONSENT_AUTHORITY_KINDS else None

    def decidable(row: Any) -> ColumnElement[bool]:
        return held_in_jurisdiction(row.child_id, jurisdiction) if jurisdiction else false()

    def cursor(row: Any) -> ColumnElement[bool]:
        # A pending request stays a place in the queue once decided; a decided one stays decided.
        held = decidable(row)
        return held if status == "pending" else and_(held, row.status == status)

    listed = and_(
        AccessRequestRow.status == status,
        decidable(AccessRequestRow),
        *_narrowed_to(session, only),
    )
    key, newest_first = (_created, False) if status == "pending" else (_decided, True)
    return paged(
        session, AccessRequestRow, listed, cursor, key, newest_first, min(limit, QUEUE_LIMIT), after
    )


def pending_queue(session: Session, actor: Actor, status: str) -> list[AccessRequestRow]:
    """The first page of :func:`request_queue`, as large as a page may be."""
    return request_queue(session, actor, status, limit=QUEUE_LIMIT).rows


def own_requests(
    session: Session,
    actor: Actor,
    *,
    limit: int = QUEUE_PAGE,
    after: str | None = None,
    status: str | None = None,
    only: QueueFilter = QueueFilter(),
) -> RequestPage:
    """A page of the requests ``actor`` made — a person's own, or an agency system's (made
    with no person, as :func:`may_see_request` shows them) — newest first, after their
    request ``after`` (another id is a ``validation`` problem about ``/query/after``);
    narrowed to ``status`` (every one when None) and ``only``. ``only.child_id`` is the id
    they asked about, as they asked it: their list never tells them that two ids they asked
    about were merged into one child, as their requests' answers do not."""
    person, agency = actor.person_id, actor.agency_id

    def theirs(row: Any) -> ColumnElement[bool]:
        if person is not None:
            return row.requester_person == person
        if agency is not None:
            return and_(row.requester_person.is_(None), row.requester_agency == agency)
        return false()

    listed = and_(
        theirs(AccessRequestRow),
        *([AccessRequestRow.status == status] if status is not None else []),
        *_narrowed_to(session, only, follow_merges=False),
    )
    return paged(
        session, AccessRequestRow, listed, theirs, _created, True, min(limit, QUEUE_LIMIT), after
    )


def _narrowed_to(
    session: Session, only: QueueFilter, *, follow_merges: bool = True
) -> list[ColumnElement[bool]]:
    """What ``only`` narrows a list to; ``follow_merges``: ``child_id`` under any of the
    child's ids (an officer's queue), else the id as the requests carry it."""
    from exchange.children import Child, resolve_child_id

    found: list[ColumnElement[bool]] = []
    if only.child_id is not None and not follow_merges:
        found.append(AccessRequestRow.child_id == only.child_id)
    elif only.child_id is not None:
        try:
            child_id = resolve_child_id(session, only.child_id)
        except LookupError:  # requests about an id the hub never issued carry it as asked
            child_id = only.child_id
        family = select(Child.id).where(or_(Child.id == child_id, Child.merged_into == child_id))
        found.append(
            or_(AccessRequestRow.child_id == child_id, AccessRequestRow.child_id.in_(family))
        )
    if only.purpose is not None:
        found.append(AccessRequestRow.purpose == only.purpose)
    if only.requester is not None:
        found.append(
            or_(
                AccessRequestRow.requester_agency == only.requester,
                AccessRequestRow.requester_person == only.requester,
            )
        )
    return found


def _unknown_after() -> ConsentProblem:
    return ConsentProblem(
        "validation",
        "«after» no es una solicitud de esta lista.",
        "'after' is not a request in this list.",
        [
            {
                "pointer": "/query/after",
                "message_es": "Indique el id de la última solicitud de la página anterior, o "
                "nada para empezar por el principio.",
                "message_en": "Give the id of the last request of the previous page, or "
                "nothing to start from the beginning.",
            }
        ],
    )


def paged(
    session: Session,
    model: type[Row],
    listed: ColumnElement[bool],
    cursor: Callable[[Any], ColumnElement[bool]],
    key: Callable[[Any], Any],
    newest_first: bool,
    limit: int,
    after: str | None,
    unknown_after: Callable[[], ConsentProblem] = _unknown_after,
) -> Page[Row]:
    """The page of the rows of ``model`` that ``listed`` selects, ordered by ``key`` then id,
    after the row ``after`` (which ``cursor`` must select, else ``unknown_after()`` is
    raised). Paged by that key, not by an offset: a row added or changed meanwhile neither
    repeats nor skips any other. Shared by the access-request and the override queues."""
    # Any: the mapped classes' ``id`` columns, which a TypeVar cannot promise.
    table: Any = model
    total = session.scalar(select(func.count()).select_from(table).where(listed))
    query = select(table).where(listed)
    column = key(table)
    if after is not None:
        seen = aliased(table)
        if session.scalar(select(seen.id).where(seen.id == after, cursor(seen))) is None:
            raise unknown_after()
        at = select(key(seen)).where(seen.id == after).scalar_subquery()
        query = query.where(
            or_(column < at, and_(column == at, table.id < after))
            if newest_first
            else or_(column > at, and_(column == at, table.id > after))
        )
    order = (column.desc(), table.id.desc()) if newest_first else (column, table.id)
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    return Page(rows[:limit], total or 0, rows[limit - 1].id if more else None)


def _requester_for_engine(session: Session, row: AccessRequestRow) -> EngineActor | None:
    """The engine's view of who asked; None when they are no longer registered and active (a
    person disabled, or of an agency disabled; an agency's system whose agency is)."""
    from exchange.disclosure import person_actor, recipient_actor

    try:
        if row.requester_person:
            return person_actor(session, row.requester_person)
        if row.requester_agency:
            return recipient_actor(session, row.requester_agency, active=True)
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
    child: ChildContext, with_grant: Decision | None, hidden: frozenset[str] = frozenset()
) -> None:
    """A withhold entry and an adolescent's objection (awaiting review, or upheld by it) come
    before grants in the engine's order, so a grant of what they cover could not take effect —
    yet the requester would be told that access was granted while every read is refused.
    ``with_grant`` is the requester's decision as if the grant were stored (None when they can
    no longer be asked about, and then no read is made under it anyway): the engine itself
    says what each covers (its categories, whom it is about, whether a review set it aside).
    Such an approval is a conflict that names them and what to do first; the officer can also
    deny instead. Those naming the officer's own agency (``hidden``) do not exist for them
    (docs/consent.md §8): the conflict says only that a restriction they cannot consult stands
    in the way, never its id, its kind or what it says."""
    if with_grant is None:
        return
    every = [r for r in with_grant.reasons if r.code in ("withhold", "objection")]
    if not every:
        return
    standing = [r for r in every if r.ref not in hidden]
    unseen = [r for r in every if r.ref in hidden]
    withhold_ids = sorted({str(r.ref) for r in standing if r.code == "withhold" and r.ref})
    view_ids = sorted({str(r.ref) for r in standing if r.code == "objection" and r.ref})
    first_es, first_en = [], []
    if withhold_ids:
        # Named by id, with who may revoke it: the officer reads here which entry it is, and
        # revokes it themselves (they act for the child, as revoking needs) or asks a
        # colleague; an API client has the route to call.
        several = len(withhold_ids) > 1
        named = ", ".join(withhold_ids)
        routes = ", ".join(f"POST /v1/withholds/{entry}/revoke" for entry in withhold_ids)
        first_es.append(
            f"Revoque primero {'las reservas' if several else 'la reserva'} {named} si ya no "
            f"procede{'n' if several else ''}: puede revocar{'las' if several else 'la'} un "
            "oficial de consentimiento de una institución que actúa por la niña, niño o "
            f"adolescente, como usted ({routes})."
        )
        first_en.append(
            f"Revoke the withhold {'entries' if several else 'entry'} first, {named}, if "
            f"{'they no longer apply' if several else 'it no longer applies'}: a consent "
            "officer of an agency that acts for the child, such as you, can revoke "
            f"{'them' if several else 'it'} ({routes})."
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
            routes = ", ".join(f"POST /v1/views/{view}/review" for view in view_ids)
            reviews = f" ({routes})" if routes else ""
            first_es.append(
                "La oposición debe revisarse antes: hasta que la Procuraduría la revise y la "
                f"deje sin efecto{reviews}, ninguna autorización la supera."
            )
            first_en.append(
                "The objection must be reviewed by the Procuraduría first: until a review sets "
                f"it aside{reviews}, no grant overcomes it."
            )
    categories = [c for c in CATEGORIES if any(c in r.categories for r in every)]
    said_es, said_en = [r.es for r in standing], [r.en for r in standing]
    if unseen:
        kept = [c for c in CATEGORIES if any(c in r.categories for r in unseen)]
        es_names = ", ".join(CATEGORY_LABELS[c][0] for c in kept)
        en_names = ", ".join(CATEGORY_LABELS[c][1] for c in kept)
        said_es.append(f"Una restricción que usted no puede consultar reserva: {es_names}.")
        said_en.append(f"A restriction you cannot consult withholds: {en_names}.")
    why_es, why_en = " ".join(said_es), " ".join(said_en)
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


#: A request's status as the Spanish text names it (the English text uses the code itself).
_STATUS_ES = {"granted": "concedida", "denied": "denegada", "pending": "pendiente"}


def _refuse_approval_for_a_disabled_requester(session: Session, row: AccessRequestRow) -> None:
    """Whoever is no longer registered and active (a disabled person or agency, or a person
    of a disabled agency) cannot use a grant, and one made now would come back into force if
    they were enabled again. Disabling a person or an agency ends the pending requests of
    whoever it disables (:func:`end_access_of_disabled_person`,
    :func:`end_access_of_disabled_agency`); this refuses the approval of any left pending from
    before that was so — the officer denies them instead."""
    from exchange.agencies import Agency

    if _requester_for_engine(session, row) is not None:
        return
    agency = session.get(Agency, row.requester_agency) if row.requester_agency else None
    if agency is not None and not agency.active:
        whose_es, whose_en = (
            ("La institución de quien pidió el acceso", "The agency of whoever asked for access")
            if row.requester_person
            else ("La institución que pidió el acceso", "The agency that asked for access")
        )
        raise ConsentProblem(
            "conflict",
            f"{whose_es} ({agency.id}) ya no está activa en el hub (fue desactivada): ni ella "
            "ni su personal podrían usar la autorización, y esta volvería a valer si la "
            "reactivaran. Deniegue la solicitud (approve: false) con un motivo.",
            f"{whose_en} ({agency.id}) is no longer active on the hub (disabled): neither it "
            "nor its people could use the grant, and it would come back into force if the "
            "agency were enabled again. Deny the request instead (approve: false), with a "
            "reason.",
        )
    raise ConsentProblem(
        "conflict",
        "Quien pidió el acceso ya no está activo en el hub (fue desactivado): no podría usar "
        "la autorización, y esta volvería a valer si lo reactivaran. Deniegue la solicitud "
        "(approve: false) con un motivo.",
        "Whoever asked for access is no longer active on the hub (disabled): they could not "
        "use the grant, and it would come back into force if they were enabled again. Deny "
        "the request instead (approve: false), with a reason.",
    )


#: The reason code (in the request's or grant's row and in the audit entry) of what disabling
#: a person or an agency ends: no free text, and the hub's administrator, not an officer,
#: ended it.
REQUESTER_DISABLED = "requester_disabled"


def end_access_of_disabled_person(session: Session, person_id: str) -> tuple[int, int]:
    """When a person is disabled (``puente person disable``), deny their pending access
    requests and revoke the grants they hold, each with an audit entry (``access_denied`` or
    ``consent_revoked``, reason :data:`REQUESTER_DISABLED`, by the hub's administrator).

    Their tokens die with the person, but what they asked for and were given must not: a
    pending request would still sit in the officers' queues, and a grant would come back into
    force if the person were enabled again (a lawyer who left the clinic, re-enabled for
    another case, would read the old case's children). Returns (requests denied, grants
    revoked). In the caller's transaction, never committed here."""
    return _end_access(
        session,
        AccessRequestRow.requester_person == person_id,
        GrantRow.grantee_person == person_id,
    )


def end_access_of_disabled_agency(session: Session, agency_id: str) -> tuple[int, int]:
    """When an agency is disabled (``puente agency disable``), do for it and for every person
    of it what :func:`end_access_of_disabled_person` does for one person: deny the pending
    access requests its systems or its people made and revoke the grants made to it or to
    them, each audited the same way (reason :data:`REQUESTER_DISABLED`, by the hub's
    administrator). Enabling the agency again brings none back: a new request is needed.
    Returns (requests denied, grants revoked). In the caller's transaction, never committed
    here."""
    from exchange.people import Person

    people = select(Person.id).where(Person.agency_id == agency_id)
    return _end_access(
        session,
        (AccessRequestRow.requester_agency == agency_id)
        | AccessRequestRow.requester_person.in_(people),
        (GrantRow.grantee_agency == agency_id) | GrantRow.grantee_person.in_(people),
    )


def _end_access(
    session: Session, requested_by: ColumnElement[bool], granted_to: ColumnElement[bool]
) -> tuple[int, int]:
    """Deny the pending requests ``requested_by`` selects and revoke the grants in force
    ``granted_to`` selects, for a disabled requester (:data:`REQUESTER_DISABLED`), each with
    its audit entry. Returns (requests denied, grants revoked)."""
    from exchange.children import resolve_child_id

    moment = utcnow()
    requests = list(
        session.scalars(
            select(AccessRequestRow)
            .where(requested_by, AccessRequestRow.status == "pending")
            .order_by(AccessRequestRow.created_at, AccessRequestRow.id)
        )
    )
    denied = 0
    for request in requests:
        # Conditional, as an officer's decision is: of the two, exactly one decides it.
        claimed = session.execute(
            update(AccessRequestRow)
            .where(AccessRequestRow.id == request.id, AccessRequestRow.status == "pending")
            .values(
                status="denied",
                decided_at=moment,
                decided_by=HUB_CLIENT_ID,
                decision_reason=REQUESTER_DISABLED,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        denied += 1
        session.expire(request)  # updated in the database, not through the object
        try:
            child_id = resolve_child_id(session, request.child_id)
        except LookupError:  # asked about an id the hub never issued (child_asked_about)
            child_id = request.child_id
        _audit_ended(
            session, "access_denied", child_id, request.purpose, "access_request", request.id
        )
        forget_child(child_id)
    grants = list(
        session.scalars(
            select(GrantRow)
            .where(granted_to, GrantRow.revoked_at.is_(None), GrantRow.until > moment)
            .order_by(GrantRow.created_at, GrantRow.id)
        )
    )
    revoked = 0
    for grant in grants:
        claimed = session.execute(
            update(GrantRow)
            .where(GrantRow.id == grant.id, GrantRow.revoked_at.is_(None))
            .values(
                revoked_at=moment, revoked_by=HUB_CLIENT_ID, revocation_reason=REQUESTER_DISABLED
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        revoked += 1
        session.expire(grant)
        child_id = resolve_child_id(session, grant.child_id)
        purpose = grant.document.get("purpose")
        _audit_ended(session, "consent_revoked", child_id, purpose, "grant", grant.id)
        forget_child(child_id)
    return denied, revoked


def _audit_ended(
    session: Session,
    action: str,
    child_id: str,
    purpose: str | None,
    object_type: str,
    object_id: str,
) -> None:
    # By the hub's administrator (the one who disables people and agencies), as the
    # registry's changes are.
    grant = object_type == "grant"
    record_event(
        session,
        action=action,
        outcome="success" if grant else "denied",
        actor_role="administrator",
        child_id=child_id,
        purpose=purpose,
        object_type=object_type,
        object_id=object_id,
        **({"grant_ids": [object_id]} if grant else {"decision_basis": "default_deny"}),
        detail=REQUESTER_DISABLED,
    )


def _refuse_approval_for_an_adult(child: ChildContext, moment: datetime) -> None:
    """No grant is made once the child is 18 (docs/consent.md §2): the person decides for
    themselves. Said as such, as ``check_consent`` says it (``already_adult``), pointing at the
    request as a whole — not as a grant "past the 18th birthday" at an ``until`` the officer
    may never have sent. The officer acts for the child, who was in their care: the day is
    told."""
    majority = child.facts.eighteenth_birthday
    if majority is None or moment < majority:
        return
    day_es, day_en = day_in_both(majority.date())
    raise ConsentProblem(
        "validation",
        "La autorización no puede darse: la persona ya es mayor de edad.",
        "The grant cannot be made: the person is already an adult.",
        [
            {
                "pointer": "",
                "code": "already_adult",
                "message_es": f"La persona cumplió 18 años el {day_es}: ya no se autoriza "
                "acceso en su nombre. Deniegue la solicitud (approve: false) con un motivo.",
                "message_en": f"The person turned 18 on {day_en}: access is no longer granted "
                "on their behalf. Deny the request instead (approve: false), with a reason.",
            }
        ],
    )


def asked_end_passed(row: AccessRequestRow, moment: datetime) -> bool:
    """Whether the end of the access a pending request asked for has passed: a grant would end
    before it began, so only a denial is left (the requester may ask again)."""
    return as_utc(row.until) <= moment


def _refuse_approval_after_the_end_asked(row: AccessRequestRow, moment: datetime) -> None:
    """A request waits in the queue until someone decides it; once the end it asked for has
    passed, approving it is said as such — not as a grant "whose end is in the past", at an
    ``until`` the officer may never have sent, which they cannot extend either (a decision may
    only shorten what was asked)."""
    if not asked_end_passed(row, moment):
        return
    end = instant_text(row.until)
    raise ConsentProblem(
        "conflict",
        f"El acceso que pedía esta solicitud terminaba el {end}, que ya pasó: ya no puede "
        "aprobarse. Deniéguela (approve: false) con un motivo; quien la hizo puede pedir de "
        "nuevo si aún lo necesita.",
        f"The access this request asked for ended on {end}, which has passed: it can no "
        "longer be approved. Deny it instead (approve: false), with a reason; the requester "
        "may ask again if they still need it.",
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
    refuse_control_characters(("/reason", reason, REASON))
    row, child = officer_row(session, actor, GrantRow, grant_id)
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
    entry = audit(
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
    refuse_control_characters(("/reason", reason, REASON))
    row = session.get(AccessRequestRow, request_id)
    if row is None:
        raise LookupError(request_id)
    child = load_child(session, row.child_id)
    if not acts_for_child(session, actor, child):
        raise LookupError(request_id)  # not in the caller's queue: as if it did not exist
    require_officer(actor)
    if approve and row.status == "pending":  # a decided one is a conflict below, as it was
        _refuse_approval_for_a_disabled_requester(session, row)
    # Two agency systems both have no person id: that is no one deciding their own request.
    own = actor.person_id is not None and actor.person_id == row.requester_person
    if own or (approve and actor.agency_id is not None and actor.agency_id == row.requester_agency):
        # Nor a colleague: an agency's officer approving its own agency's request is the
        # agency granting itself access. Denying one is always allowed; one's own, never.
        if own:
            raise ConsentProblem(
                "forbidden",
                "Nadie resuelve su propia solicitud, ni para aprobarla ni para denegarla; debe "
                "resolverla otro oficial de consentimiento (para aprobarla, uno de otra "
                "institución).",
                "Nobody decides their own request, whether to approve or to deny it; another "
                "consent officer must decide it (to approve it, one of another agency).",
            )
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
            f"La solicitud ya fue resuelta ({_STATUS_ES.get(row.status, row.status)}).",
            f"The request was already decided ({row.status}).",
        )
    session.refresh(row)
    grant_row = None
    if approve:
        _refuse_approval_for_an_adult(child, moment)
        _refuse_approval_after_the_end_asked(row, moment)
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
                problems(found),
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
        _refuse_approval_that_would_not_take_effect(
            child, with_grant, entries_naming_caller_in(session, actor, child)
        )
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
    entry = audit(
        session,
        actor,
        "access_granted" if approve else "access_denied",
        child.child_id,
        outcome="success" if approve else "denied",
        purpose=row.purpose,
        # The request decided, approved or denied alike, so oversight can link the entry to
        # the request (and its justification); an approval's grant is in decision.grant_ids.
        object_type="access_request",
        object_id=row.id,
        decision_basis="grant" if approve else "default_deny",
        grant_ids=[grant_row.id] if grant_row else [],
        decision_categories=list(row.categories) if approve else [],
    )
    forget_child(child.child_id)
    return row, grant_row, entry


def stray_record_warnings(session: Session, row: AccessRequestRow) -> list[dict[str, Any]]:
    """For the officer who approved ``row``: a warning naming the ``record_ids`` it asked for
    that are not the child's records (another child's, or gone). Kept as asked, they cover
    nothing (the grant covers only the child's records it names), and the requester is never
    told which they are — that would tell whether the child exists (docs/consent.md §8.5) —
    but the officer acts for the child and may want to ask the requester which record they
    meant. Whose they are instead is not said: that child may be outside the officer's
    jurisdiction. Empty when every id is the child's, or none was named."""
    asked = list(row.record_ids or ())
    if not asked:
        return []
    childs = {record.id for record in load_child(session, row.child_id).records}
    stray = [record_id for record_id in asked if record_id not in childs]
    if not stray:
        return []
    named = ", ".join(stray)
    several = len(stray) > 1
    return [
        {
            "code": "records_not_the_childs",
            "record_ids": stray,
            "es": f"{'Los expedientes' if several else 'El expediente'} {named} que pide la "
            f"solicitud no {'son' if several else 'es'} de esta niña, niño o adolescente (o ya "
            f"no {'existen' if several else 'existe'}): la autorización no "
            f"{'los' if several else 'lo'} cubre. A quien pidió el acceso no se le dice.",
            "en": f"The {'records' if several else 'record'} {named} the request asks for "
            f"{'are' if several else 'is'} not this child's (or no longer "
            f"{'exist' if several else 'exists'}): the grant does not cover "
            f"{'them' if several else 'it'}. The requester is not told.",
        }
    ]


def active_grants(session: Session, actor: Actor) -> list[GrantRow]:
    """The grants in force that the caller may read under: a person's own, and their
    agency's (a grant to an agency covers its people too). Not revoked, not past their end,
    and their child not yet 18 as the records now say (:func:`_of_age`)."""
    moment = utcnow()
    query = select(GrantRow).where(GrantRow.revoked_at.is_(None), GrantRow.until > moment)
    if actor.person_id is not None:
        query = query.where(
            (GrantRow.grantee_person == actor.person_id)
            | (GrantRow.grantee_person.is_(None) & (GrantRow.grantee_agency == actor.agency_id))
        )
    else:
        query = query.where(
            GrantRow.grantee_agency == actor.agency_id, GrantRow.grantee_person.is_(None)
        )
    rows = list(session.scalars(query.order_by(GrantRow.until)))
    return [row for row in rows if not _of_age(session, row.child_id, moment)]


def _of_age(session: Session, child_id: str, moment: datetime) -> bool:
    """Whether the child is 18 at ``moment``: every grant lapses then, as the engine decides
    reads (it caps grants at the 18th birthday the records state now), though the stored end
    was capped at the birthday known when it was granted — a date of birth corrected since
    counts at once."""
    try:
        majority = load_child(session, child_id).facts.eighteenth_birthday
    except LookupError:  # never for a grant's child; nothing to say it is of age
        return False
    return majority is not None and majority <= moment


def grant_end_as_told(session: Session, row: GrantRow) -> dict[str, Any]:
    """A grant's end as its grantee is told it (``GET /v1/grants``): as the request it was
    made on tells it (:func:`exchange.access_basis.granted_access`), so a grantee who may not
    learn the 18th birthday is not shown the birthday the grant is capped at."""
    request = session.get(AccessRequestRow, row.request_id)
    access = request_access_basis(request) if request is not None else None
    if access is not None and access.get("ends_at_majority_at_latest"):
        told = as_utc(datetime.fromisoformat(access["until"]))
        return {"until": instant_text(told), "ends_at_majority_at_latest": True}
    return {"until": instant_text(row.until)}


def decision_now(session: Session, row: AccessRequestRow) -> Decision | None:
    """The engine's decision for the request's requester, purpose and categories now — with
    the grant the officer just made, once it is in the session — or None when the requester is
    no longer registered and active. What a decided request leaves them, beside the decision
    made when they asked."""
    requester = _requester_for_engine(session, row)
    if requester is None:
        return None
    child = load_child(session, row.child_id)
    return evaluate(child, requester, "read", row.purpose, row.categories)


#: What a requester writes beside what they ask for, sealed together (it may describe the
#: child's situation or name the proceeding the child is in) and shown where the
#: justification is: to the requester and to the officers who decide, never in the audit log
#: (which carries no free text). ``on_behalf_of``: the institution or organisation the
#: requester acts for (``agency_id`` on this hub and/or its ``name``); ``proceeding_reference``:
#: the file or case number of the legal proceeding the access is asked for.
REQUESTER_WORDS = ("justification", "on_behalf_of", "proceeding_reference")


def request_written(session: Session, request_id: str) -> dict[str, Any]:
    """What the requester wrote (:data:`REQUESTER_WORDS`), each None when they wrote none."""
    row = session.get(AccessRequestJustification, request_id)
    document = row.open(data_keyring()) if row is not None else {}
    return {key: document.get(key) for key in REQUESTER_WORDS}
