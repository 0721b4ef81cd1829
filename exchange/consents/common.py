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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Subquery, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from consent import ConsentError, Review
from consent.parts import ActorRef
from exchange.agencies import AUDIT_SCOPE, OVERSIGHT_KINDS
from exchange.audit_log import record_event
from exchange.auth import Actor, as_utc, utcnow
from exchange.crypto import data_keyring
from exchange.disclosure import ChildContext, load_child
from schemas.formats import is_date_time
from schemas.wording import FORMAT_HINTS

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
    for one of the child's records. The same test as the queues' (:func:`held_in_jurisdiction`),
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


@dataclass(frozen=True)
class OwnAgency:
    """The caller's agency as a withhold entry's target or an objection's ``about`` may name
    it: its id and kind, its people and the roles they hold.

    No one acts for their own benefit (docs/consent.md §8): the people of an agency an entry
    or an objection restricts never see it — neither in the child's lists, nor in a dry run or
    a request's decision — nor revoke or review it; to them it does not exist (``404``). A
    reader refused because of an entry is not told so, even one acting for the child (§8.8),
    and an agency lifting what restricts it would be granting itself access. A whole agency
    counts, not only the person named: a colleague lifting it is the agency doing so."""

    agency_id: str | None
    kind: str | None
    people: frozenset[str]
    roles: frozenset[str]

    def named_by(self, target: ActorRef | None, actor_kind: str | None = None) -> bool:
        """Whether an entry naming ``target`` and/or ``actor_kind`` (every actor of a kind)
        would withhold from this agency or from someone of it; every part stated must match,
        as in the engine."""
        if actor_kind is not None and actor_kind != self.kind:
            return False
        if target is None:
            return actor_kind is not None
        return (
            (target.agency_id is None or target.agency_id == self.agency_id)
            and (target.person_id is None or target.person_id in self.people)
            and (target.role is None or target.role in self.roles)
        )

    def named_by_any(self, about: Iterable[ActorRef]) -> bool:
        """Whether one of ``about`` (an objection's: empty, it is about anyone, and names no
        one) names this agency."""
        return any(self.named_by(ref) for ref in about)


def own_agency(session: Session, actor: Actor) -> OwnAgency:
    """The caller's agency, its people and their roles (:class:`OwnAgency`)."""
    from exchange.people import Person

    people, roles = set(), set(actor.roles)
    if actor.person_id is not None:
        people.add(actor.person_id)
    if actor.agency_id is not None:
        for person_id, held in session.execute(
            select(Person.id, Person.roles).where(Person.agency_id == actor.agency_id)
        ):
            people.add(person_id)
            roles.update(held.split())
    return OwnAgency(actor.agency_id, actor.kind, frozenset(people), frozenset(roles))


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


# -- what people write ----------------------------------------------------------------------------

#: What a text box sends between lines, and a tab: a written text may hold them.
LINE_CHARACTERS = frozenset("\t\n\r")
#: Invisible format characters that text pasted from a word processor or a PDF carries, and
#: emoji sequences need (a soft hyphen, zero-width spaces and joiners, a word joiner, a BOM):
#: they neither reorder nor hide text, and a reason written with them could not be sent again
#: (the person cannot see what to delete). Bidirectional controls, tag characters and the
#: other format characters stay refused.
INVISIBLE_FORMAT = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")

#: The free texts of the consent area that a person reads, as a message names each.
JUSTIFICATION = ("La justificación", "The justification")
REASON = ("El motivo", "The reason")
VIEWS_SUMMARY = ("El resumen de la opinión", "The summary of views")
NOT_HEARD_REASON = ("El motivo por el que no fue escuchada/o", "Why the child was not heard")
ON_BEHALF_OF_NAME = (
    "El nombre de la institución u organización representada",
    "The name of the institution or organisation represented",
)
PROCEEDING_REFERENCE = ("La referencia del procedimiento", "The proceeding reference")


def control_characters_said(text: str, field: tuple[str, str]) -> tuple[str, str] | None:
    """What to say, in Spanish and English, of the text ``field`` names («La justificación»,
    "The justification") when it holds control characters (Unicode category C*: NUL, an escape
    sequence, DEL, a bidirectional override…) but line breaks, tabs and
    :data:`INVISIBLE_FORMAT`, as a token's name is
    refused them (exchange.people): where an officer, a requester or the Procuraduría reads it,
    they would hide or forge text, and PostgreSQL's text cannot hold NUL. None when it holds
    none. Every free text of the consent area is checked by it, from the API or the portal
    (whose forms say it beside the field): :func:`refuse_control_characters`."""
    from exchange.people import control_characters_in  # exchange.people imports this package

    found = control_characters_in(text, LINE_CHARACTERS | INVISIBLE_FORMAT)
    if not found:
        return None
    named = ", ".join(found)
    return (
        f"{field[0]} contiene caracteres de control ({named}): bórrelos y vuelva a enviar el "
        "texto (los saltos de línea y los tabuladores sí se admiten).",
        f"{field[1]} contains control characters ({named}): delete them and send it again "
        "(line breaks and tabs are fine).",
    )


#: A free text as :func:`refuse_control_characters` takes it: its pointer in the request's
#: body, the text (None, or anything else the schema refuses, when absent) and its name.
Written = tuple[str, Any, tuple[str, str]]


def refuse_control_characters(*written: Written) -> None:
    """A validation problem naming each text of ``written`` that holds control characters
    (:func:`control_characters_said`), before anything is looked up or stored."""
    errors = [
        {"pointer": pointer, "message_es": said[0], "message_en": said[1]}
        for pointer, text, field in written
        if isinstance(text, str) and (said := control_characters_said(text, field)) is not None
    ]
    if errors:
        raise ConsentProblem(
            "validation", "La solicitud no es válida.", "The request is not valid.", errors
        )


def unknown_parties(session: Session, named: Iterable[tuple[str, Any]]) -> list[dict[str, str]]:
    """What the hub does not know among ``named`` — ``(pointer, {agency_id?, person_id?})``,
    an agency or person a consent, an objection, who heard the child or on whose behalf access
    is asked for names — one ``{pointer, message_es, message_en}`` per unknown id: a mistyped
    id (``mx.nl.dfi``) in a deny or an objection would protect nobody while the officer
    believes the child protected. An agency of a pinned peer hub (under one of its agency
    prefixes, docs/federation.md) may read here, so it is accepted; a person always belongs to
    this hub, and must belong to the agency named beside them. Anything not an object, or ids
    that are not text, are the schema's to refuse."""
    from exchange.agencies import Agency
    from exchange.peers import peer_speaking_for
    from exchange.people import Person  # exchange.people imports this package

    found = []
    for pointer, ref in named:
        if not isinstance(ref, dict):
            continue
        agency_id, person_id = ref.get("agency_id"), ref.get("person_id")
        if isinstance(agency_id, str) and session.get(Agency, agency_id) is None:
            # The federation's own rule (exchange.peers.speaks_for): never an id under this
            # hub's own namespace, whatever prefix a peer was pinned with before that check.
            if peer_speaking_for(session, agency_id) is None:
                found.append(
                    {
                        "pointer": f"{pointer}/agency_id",
                        "message_es": f"En este nodo no hay ninguna agencia {agency_id!r} (ni "
                        "es de un nodo par registrado).",
                        "message_en": f"This hub has no agency {agency_id!r} (nor is it a "
                        "pinned peer hub's).",
                    }
                )
        if isinstance(person_id, str):
            person = session.get(Person, person_id)
            if person is None:
                found.append(
                    {
                        "pointer": f"{pointer}/person_id",
                        "message_es": f"En este nodo no hay ninguna persona {person_id!r}.",
                        "message_en": f"This hub has no person {person_id!r}.",
                    }
                )
            elif isinstance(agency_id, str) and person.agency_id != agency_id:
                found.append(
                    {
                        "pointer": f"{pointer}/person_id",
                        "message_es": f"{person_id!r} pertenece a {person.agency_id!r}, no a "
                        f"{agency_id!r}: no alcanzaría a nadie.",
                        "message_en": f"{person_id!r} belongs to {person.agency_id!r}, not "
                        f"{agency_id!r}: it would reach nobody.",
                    }
                )
    return found


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


#: Whether a row (a withhold entry, a views record) names the caller's agency, which then
#: never sees it (:class:`OwnAgency`).
Naming = Callable[[Any, OwnAgency], bool]


def officer_row(
    session: Session, actor: Actor, model: Any, row_id: str, naming: Naming | None = None
) -> tuple[Any, ChildContext]:
    """The row ``row_id`` of ``model`` and its child, for a consent officer who acts for the
    child (``LookupError`` when there is no such row — or when ``naming`` says the row names
    the caller's agency: to them it does not exist, whatever their role)."""
    row = session.get(model, row_id)
    if row is None:
        raise LookupError(row_id)
    child = load_child(session, row.child_id)
    require_acts_for(session, actor, child)
    if naming is not None and naming(row, own_agency(session, actor)):
        raise LookupError(row_id)
    require_officer(actor)
    return row, child


def add_review(
    session: Session,
    actor: Actor,
    model: Any,
    row_id: str,
    upheld: bool,
    reason: str,
    naming: Naming | None = None,
) -> tuple[Any, ChildContext, dict[str, Any]]:
    """Load a views record or override the caller may review and add the Procuraduría's
    review to its document (the caller seals it and writes the audit entry)."""
    refuse_control_characters(("/reason", reason, REASON))
    row, child = officer_row(session, actor, model, row_id, naming)
    if row.reviewed_at is not None:
        raise ConsentProblem("conflict", "Ya fue revisado.", "It was already reviewed.")
    document = row.open(data_keyring())
    row.reviewed_at = utcnow()
    document["review"] = Review(row.reviewed_at, upheld, actor_ref(actor), reason).to_json()
    return row, child, document


#: The most requests or overrides one page of a queue lists: the largest ``limit`` of the
#: access-request and override queues (they page on with ``after``).
QUEUE_LIMIT = 500


def held_in_jurisdiction(child_id: ColumnElement[str], jurisdiction: str) -> ColumnElement[bool]:
    """Whether the child that ``child_id`` (a column of the query this is used in) names is
    now responsible to an agency in ``jurisdiction`` for one of its records: in SQL, the test
    :func:`acts_for_child` makes on :func:`~exchange.disclosure.load_child`'s child, for the
    queues — one query, however many rows they weigh, with no parameter per child.

    Merges are followed as ``load_child`` follows them: a merged id names the child it was
    merged into, whose records are also those still carrying the id of any child merged into
    it. Merges are flattened (:func:`~exchange.child_duplicates.merge_children` points earlier
    merges straight at the survivor), so each merged child names its survivor directly. An id
    the hub never issued names no child, and lies in no jurisdiction.

    Built from two sets the database works out once for the whole query, not once per row:
    the children with a record in the jurisdiction, and — from the merged children alone,
    few — every id of a merged family one of whose records is there."""
    from exchange.agencies import Agency
    from exchange.children import Child
    from exchange.records import Record

    held = select(Record.child_id).join(Agency, Agency.id == Record.owner_agency).correlate(None)
    if jurisdiction != NATIONAL:
        held = held.where(Agency.jurisdiction.startswith(jurisdiction, autoescape=True))

    def merged_families(name: str) -> Subquery:
        """(member, survivor) of every merged family: its merged children and the survivor."""
        merged = aliased(Child)
        of = merged.merged_into.is_not(None)
        return union_all(
            select(merged.id.label("member"), merged.merged_into.label("survivor")).where(of),
            select(merged.merged_into, merged.merged_into).where(of),
        ).subquery(name)

    families, covered = merged_families("families"), merged_families("covered")
    survivors_held = select(covered.c.survivor).where(covered.c.member.in_(held)).correlate(None)
    in_a_family_held = (
        select(families.c.member).where(families.c.survivor.in_(survivors_held)).correlate(None)
    )
    return or_(child_id.in_(held), child_id.in_(in_a_family_held))


def party(agency_id: str | None, person_id: str | None) -> dict[str, str]:
    """Who acted or asked, as answers name them: ``agency_id`` and ``person_id`` when known."""
    return {
        key: value for key, value in (("agency_id", agency_id), ("person_id", person_id)) if value
    }


# -- instants ----------------------------------------------------------------------------------


def instant_problem(value: Any, name: str) -> tuple[str, str] | None:
    """Why the text ``value`` of the member ``name`` is not an instant the hub takes, in
    Spanish and English; ``None`` when it is one (or is no text: the schema says so).

    An instant is an RFC 3339 date-time *with* an offset (``Z`` or ``-06:00``): a time without
    one would be read in some zone the sender never meant. It must name a real moment (not a
    leap second, which Python cannot hold, nor year 0000) and fall, once in UTC, within years
    1 to 9999: every instant is stored and compared in UTC, and ``9999-12-31T23:59:59-12:00``
    is already in year 10000 there — PostgreSQL would keep it and then fail to hand it back,
    SQLite would cut it. The schemas' ``date-time`` format cannot say this (it mirrors
    ``jsonschema_rs``, which accepts both ends of RFC 3339's range), so every instant a body
    carries is checked here as well (:func:`read_instant`)."""
    if not isinstance(value, str):
        return None
    hint_es, hint_en = FORMAT_HINTS["date-time"]
    if not is_date_time(value):
        if _naive(value):
            return (
                f"«{name}» necesita zona horaria (Z o un desfase como -06:00): {value!r} no dice "
                "en qué hora local está.",
                f"'{name}' needs a time zone (Z or an offset such as -06:00): {value!r} does not "
                "say which local time it is in.",
            )
        return (
            f"«{name}» debe ser {hint_es}; se recibió {value!r}.",
            f"'{name}' must be {hint_en}; got {value!r}.",
        )
    try:
        _parse(value).astimezone(UTC)
    except OverflowError:
        return _out_of_range(value, name)
    except ValueError:
        if value.startswith("0000"):
            return _out_of_range(value, name)
        # is_date_time checked the day and the time: only a leap second is left.
        return (
            f"«{name}» es un segundo intercalar (:60), que el nodo no puede guardar; indique el "
            f"segundo siguiente: {value!r}.",
            f"'{name}' is a leap second (:60), which the hub cannot store; give the next second "
            f"instead: {value!r}.",
        )
    return None


def _out_of_range(value: str, name: str) -> tuple[str, str]:
    return (
        f"«{name}» queda fuera de los años 1 a 9999 al pasarlo a UTC: {value!r}.",
        f"'{name}' falls outside the years 1 to 9999 once in UTC: {value!r}.",
    )


def _naive(value: str) -> bool:
    """Whether ``value`` is a date and time Python reads, without an offset."""
    try:
        return datetime.fromisoformat(value).tzinfo is None and "T" in value.upper()
    except ValueError:
        return False


def _parse(value: str) -> datetime:
    """An RFC 3339 date-time :func:`is_date_time` accepted, as Python reads it (a fraction
    beyond microseconds cut; ``ValueError`` for a leap second or year 0000)."""
    return datetime.fromisoformat(value.upper())


def read_instant(value: str, pointer: str) -> datetime:
    """``value`` as an instant in UTC, or a ``ConsentProblem`` (validation, at ``pointer``)
    saying why it is not one (:func:`instant_problem`)."""
    problem = instant_problem(value, pointer.rsplit("/", 1)[-1] or pointer)
    if problem is not None:
        raise ConsentProblem(
            "validation",
            "La solicitud no es válida.",
            "The request is not valid.",
            [{"pointer": pointer, "message_es": problem[0], "message_en": problem[1]}],
        )
    return _parse(value).astimezone(UTC)


def instant_text(moment: datetime) -> str:
    """How answers write an instant: in UTC, ``2027-06-01T06:00:00+00:00`` — whatever offset
    it was given with, so the same moment always reads the same (docs/consent.md §8)."""
    return as_utc(moment).astimezone(UTC).isoformat()
