"""Linking pushed records to children: one record (``exchange.children.link_child``) or a batch
(:func:`link_children`, for bulk pushes) in a handful of statements.

For each record, in order: the ``child_id`` the agency sent (must exist; a merged child
resolves to the child it was merged into), the agency's earlier link for this local id, the
agency's own link for a CURP or UNHCR individual number of the record (or for its own number
for the child), the child such an identifier already names if the agency may know that child,
else a new child. An identifier that names another child than the one chosen stays where it
is, is linked for this agency only to the chosen child, and leaves a "conflict" suggestion for
a person (never a silent merge).

An identifier links a record to a child only if the record does not clearly describe another
child (:func:`exchange.child_matching.clearly_another_child`: another sex, names none of whose
words are near, or a poor match with the date of birth counted) than every profile stored or
linked in the batch for that child: a mistyped CURP, or siblings given one, would otherwise
join two children's records, so that one child's consents, withholds and access requests
decided the other's. Such a record starts a child of its own (the identifier linked to it for
the agency only, so the agency's later records of it join it) with a "conflict" suggestion
naming both, and its push is told so (:class:`LinkNote`, a bilingual warning) — not a record
linked to the child the identifier leads to, such as the rightful holder's of a CURP whose
agency kept a sibling's record apart with it. When every child an identifier leads to is
skipped, the agency's children whose stored records state it are tried (a third sibling given
one CURP: the agency's own link leads to the second). A record whose
CURP codes another date of birth or sex than the record states is told so as well (its CURP
may be mistyped); that alone links and refuses nothing. The check runs only when an
identifier names an existing child for a record not linked by ``child_id`` or local id: one
query a batch reads those children's profiles.
The child's other identifiers (UNHCR/COMAR case numbers, documents, the child's own
agency-local ids) are kept for search only
(:data:`exchange.children.SEARCH_ONLY_IDENTIFIER_TYPES`). The record's identity profile and
name keys are kept current (:mod:`exchange.child_matching`): identity-category data only, no
case content. The profile also keeps the CURP and UNHCR numbers the record states: one a new
version no longer states (a typo corrected) stops linking when no other record of the child
states it (:func:`unlink_dropped_identifiers`), so the old value links no other child's record.

Cost: a batch reads the links of all its identifiers in one query per identifier kind and
the profiles of its known local ids in another, then writes with one ``executemany`` per
table. Statements run on the session's DBAPI connection (:mod:`exchange.hot_sql`): linking
is on every push, and SQLAlchemy's per-statement work used to be a third of a push's time. A
re-push whose identity data did not change writes nothing. A concurrent push that linked one
of the same identifiers first makes the insert fail with ``IntegrityError``: roll back and
retry (the retry sees the committed links).

What search finds a linked record's child by (search-only identifiers, profile, name keys) is
stored by :func:`store_search_index`, which ``puente children reindex``
(:mod:`exchange.children_reindex`) also calls for records pushed before the index kept it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from exchange.auth import utcnow
from exchange.child_matching import (
    BirthWindow,
    IdentityProfile,
    clearly_another_child,
    curp_contradictions,
    index_keys,
    profile_from_child,
)
from exchange.children import (
    PERSONAL_IDENTIFIER_KINDS,
    SEARCH_ONLY_IDENTIFIER_TYPES,
    UNKNOWN_YEAR_FROM,
    UNKNOWN_YEAR_TO,
    Child,
    ChildCaseNumber,
    ChildDuplicateSuggestion,
    ChildIdentifier,
    ChildNameKey,
    ChildProfile,
    merged_child_ids,
    new_child_id,
    normalize_identifier,
    resolve_child_id,
)
from exchange.db import Base
from exchange.hot_sql import (
    MAX_PARAMETERS,
    HotSQL,
    chunks,
    insert_sql,
    update_sql,
    with_in_list,
)

#: Values per ``IN`` list (well under SQLite's 32,766 parameters).
LOOKUP_CHUNK = 2000

Lookup = tuple[str, str, str]  # (kind, scope, value)


@dataclass(frozen=True)
class LinkRequest:
    """One pushed record to link: its local id, the ``child_id`` it names (if any) and its
    data (a ``case-record/1`` document, or a ``child/1`` document)."""

    local_id: str
    child_id: str | None
    document: Mapping[str, Any]


def child_part(document: Mapping[str, Any]) -> Mapping[str, Any]:
    # A case record carries the child under "child"; a child/1 document is the child itself.
    child = document.get("child")
    return child if isinstance(child, Mapping) else document


#: ``child_case_number.value`` holds at most this many characters.
STORED_VALUE_LENGTH = 200


def scoped_value(scope: str, value: str) -> str:
    """How a child's agency-local identifier is stored for search: ``"<agency> <VALUE>"``.

    ``child_case_number`` has no scope column, and an agency-local value means something only
    at the agency that issued it, so the agency goes into the stored value (agency ids and
    normalised values hold no spaces: the pair cannot be read two ways).
    """
    return f"{scope} {value}"


#: The stored kind of a child's ``agency_local`` identifier issued by the pushing agency itself
#: (its own number for the child, as opposed to the record's local id): it links the agency's
#: records of one child, within the agency's own scope only.
OWN_NUMBER = "child_local"


def link_scope(kind: str, agency_id: str) -> str:
    """The scope a personal identifier links in: the agency's own for its own numbers, the
    nation's ("") for CURP and UNHCR individual numbers."""
    return agency_id if kind == OWN_NUMBER else ""


def identifiers_in(
    child: Mapping[str, Any], *, agency_id: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(personal identifiers as (stored kind, value), search-only ones as (type, value)).

    A child's ``agency_local`` identifier is scoped to the agency that issued it: its
    ``issuer_agency``, else ``agency_id`` (the agency pushing the record). One the pushing
    agency issued is also personal (:data:`OWN_NUMBER`): the agency's records stating it are
    of one child. Another agency's number, stated by this one, links nothing (it would let an
    agency attach its record to another's child by what it states).
    """
    personal: list[tuple[str, str]] = []
    searchable: list[tuple[str, str]] = []
    items = child.get("identifiers")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping) or not isinstance(item.get("value"), str):
            continue
        value, kind = normalize_identifier(item["value"]), item.get("type")
        if not value:
            continue
        if kind in PERSONAL_IDENTIFIER_KINDS:
            pair = (PERSONAL_IDENTIFIER_KINDS[kind], value)
            if pair not in personal:
                personal.append(pair)
        elif kind in SEARCH_ONLY_IDENTIFIER_TYPES:
            if kind == "agency_local":
                issuer = item.get("issuer_agency")
                issued_by = issuer if isinstance(issuer, str) else agency_id
                if issued_by == agency_id and len(value) <= STORED_VALUE_LENGTH:
                    if (OWN_NUMBER, value) not in personal:
                        personal.append((OWN_NUMBER, value))
                value = scoped_value(issued_by, value)
            pair = (kind, value)
            if len(value) <= STORED_VALUE_LENGTH and pair not in searchable:
                searchable.append(pair)
    return personal, searchable


def source_profile(
    child: Mapping[str, Any], personal: Iterable[tuple[str, str]], today: date
) -> IdentityProfile:
    """The profile stored for a source record: its identity profile and the personal
    identifiers it states (``personal``, as :func:`identifiers_in` gives them)."""
    stated = tuple(sorted({f"{kind}:{value}" for kind, value in personal}))
    return profile_from_child(child, today, identifiers=stated)


def _chunks(items: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterable[Sequence[Any]]:
    return chunks(items, size)


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


_CHILDREN = _table(Child)
_IDENTIFIERS = _table(ChildIdentifier)
_PROFILES = _table(ChildProfile)
_NAME_KEYS = _table(ChildNameKey)
_INSERT_CHILD = insert_sql(_CHILDREN, ("id", "created_at"))
_INSERT_IDENTIFIER = insert_sql(_IDENTIFIERS, ("child_id", "kind", "scope", "value"))
# Case numbers and name keys have no owner to decide: a row already there is fine.
_INSERT_CASE_NUMBER = insert_sql(
    _table(ChildCaseNumber), ("child_id", "kind", "value"), suffix=" ON CONFLICT DO NOTHING"
)
_INSERT_NAME_KEY = insert_sql(_NAME_KEYS, ("profile_id", "key", "birth_year_from", "birth_year_to"))


def owners_of(session: Session, lookups: Iterable[Lookup]) -> dict[Lookup, str]:
    """(kind, scope, value) -> the child each identifier links to (merges followed)."""
    return _owners(HotSQL(session), session, lookups)


#: SQLite: ``kind = ? AND scope = ? AND value IN (...)`` walks the unique index (kind, scope,
#: value); a row-value ``IN`` over all three columns made it scan the table.
_OWNERS_IN = (
    "SELECT value, child_id FROM child_identifier WHERE kind = ? AND scope = ? AND value IN {}"
)
#: PostgreSQL: one probe of the unique index per value, by all three columns. Given the ``IN``
#: list, its planner may walk every identifier of (kind, scope) and filter the values — which it
#: chose whenever the tables' statistics were missing or stale (autovacuum off, a bulk load
#: just done) and always in the generic plan of a prepared statement (psycopg prepares a
#: statement run five times): 1 s a batch at 80,000 identifiers of one agency, against 2 ms
#: probing. A lateral subquery with ``LIMIT`` is not flattened into a join, so equality on
#: all three columns is all its plan can use; one array parameter keeps the text the same.
_OWNERS_PROBED = (
    "SELECT wanted.value, found.child_id FROM unnest(CAST(? AS text[])) AS wanted(value)"
    " CROSS JOIN LATERAL (SELECT child_id FROM child_identifier WHERE kind = ? AND scope = ?"
    " AND value = wanted.value LIMIT 1) AS found"
)


def _owners(sql: HotSQL, session: Session, lookups: Iterable[Lookup]) -> dict[Lookup, str]:
    # One query per (kind, scope), which leads the unique index.
    by_prefix: dict[tuple[str, str], list[str]] = {}
    for kind, scope, value in set(lookups):
        by_prefix.setdefault((kind, scope), []).append(value)
    owners: dict[Lookup, str] = {}
    for (kind, scope), values in sorted(by_prefix.items()):
        if sql.is_sqlite:
            rows = sql.rows_in(_OWNERS_IN, (kind, scope), sorted(values), chunk=LOOKUP_CHUNK)
        else:
            rows = [
                row
                for part in _chunks(sorted(values))
                for row in sql.rows(_OWNERS_PROBED, (list(part), kind, scope))
            ]
        owners.update(((kind, scope, value), child_id) for value, child_id in rows)
    if owners:
        # A merge moves identifiers to the surviving child, so this rarely finds any.
        survivors = follow_merges(sql, session, set(owners.values()))
        if survivors:
            owners = {key: survivors.get(child_id, child_id) for key, child_id in owners.items()}
    return owners


def follow_merges(sql: HotSQL, session: Session, child_ids: set[str]) -> dict[str, str]:
    """merged child id -> the child it now is, for those of ``child_ids`` that were merged
    (found through the index on ``merged_into``, not by reading every child): one query for
    any number of ids, nearly always answered empty. A record keeps the child id it was
    linked to, so whatever reports a record's child reports the child it now is."""
    merged = sql.rows_in(
        "SELECT id FROM child WHERE merged_into IS NOT NULL AND id IN {}",
        (),
        sorted(child_ids),
        chunk=LOOKUP_CHUNK,
    )
    return {child_id: resolve_child_id(session, child_id) for (child_id,) in merged}


def existing_children(sql: HotSQL, session: Session, child_ids: set[str]) -> dict[str, str]:
    """child id -> the child it is now, for the ids that exist."""
    rows = sql.rows_in(
        "SELECT id, merged_into FROM child WHERE id IN {}",
        (),
        sorted(child_ids),
        chunk=LOOKUP_CHUNK,
    )
    return {
        child_id: resolve_child_id(session, child_id) if merged else child_id
        for child_id, merged in rows
    }


def suggest_conflict(
    session: Session, child_id: str, other_child_id: str, *, kind: str, agency_id: str
) -> None:
    """Leave a "conflict" suggestion for a person, once per open pair and identifier kind."""
    pair = or_(
        and_(
            ChildDuplicateSuggestion.child_id == child_id,
            ChildDuplicateSuggestion.other_child_id == other_child_id,
        ),
        and_(
            ChildDuplicateSuggestion.child_id == other_child_id,
            ChildDuplicateSuggestion.other_child_id == child_id,
        ),
    )
    open_already = session.scalars(
        select(ChildDuplicateSuggestion.id).where(
            pair,
            ChildDuplicateSuggestion.identifier_kind == kind,
            ChildDuplicateSuggestion.resolved_at.is_(None),
        )
    ).first()
    if open_already is None:
        session.add(
            ChildDuplicateSuggestion(
                child_id=child_id,
                other_child_id=other_child_id,
                reason="conflict",
                identifier_kind=kind,
                agency_id=agency_id,
                created_at=utcnow(),
            )
        )


class _MayKnow:
    """Which children the pushing agency may know: ``may_know`` asked at most once per child
    (it loads each child it is asked about)."""

    def __init__(self, may_know: Callable[[set[str]], set[str]]) -> None:
        self._ask = may_know
        self._answers: dict[str, bool] = {}

    def learn(self, child_ids: set[str]) -> None:
        unknown = child_ids - self._answers.keys()
        if unknown:
            found = self._ask(unknown)
            self._answers.update((child_id, child_id in found) for child_id in unknown)

    def __call__(self, child_id: str) -> bool:
        self.learn({child_id})
        return self._answers[child_id]

    def own(self, child_id: str) -> None:
        self._answers[child_id] = True  # a child of the agency's own record


def _identifier_candidates(
    parsed: Sequence[tuple[LinkRequest, Any, list[tuple[str, str]], Any]],
    owners: Mapping[Lookup, str],
    agency_id: str,
) -> set[str]:
    """The children records of this batch would link to by identifier: for records not linked
    otherwise (a ``child_id``, an earlier local id, the agency's own identifier link)."""
    candidates: set[str] = set()
    for request, _child, personal, _cases in parsed:
        if request.child_id is not None or ("agency_local", agency_id, request.local_id) in owners:
            continue
        if any((kind, agency_id, value) in owners for kind, value in personal):
            continue
        candidates.update(
            owner for kind, value in personal if (owner := owners.get((kind, "", value)))
        )
    return candidates


#: How a push's warning names an identifier kind (as :func:`link_scope` stores it).
_KIND_WORDS = {
    "curp": ("la CURP", "CURP"),
    "unhcr": ("el número individual ACNUR", "UNHCR individual number"),
    OWN_NUMBER: ("el número de su institución para la NNA", "your agency's number for the child"),
}
_SEX_WORDS = {"female": ("mujer", "female"), "male": ("hombre", "male")}
#: Identifier type -> the kind it links as (an ``agency_local`` one: the agency's own number).
_STORED_KINDS = {**PERSONAL_IDENTIFIER_KINDS, "agency_local": OWN_NUMBER}


@dataclass(frozen=True)
class LinkNote:
    """What a push is told about how its record was linked (a bilingual warning): ``code``
    ``identifier_names_another_child`` (the record was linked apart from the child its
    identifier names, ``other_child_id``) or ``curp_contradicts_record``. ``pointer``: the
    identifier's, in the linked document."""

    code: str
    pointer: str
    es: str
    en: str
    kind: str = ""
    other_child_id: str | None = None

    def warning(self, prefix: str = "") -> dict[str, str]:
        """The warning as answers carry one, its pointer under ``prefix`` (``/data``)."""
        return {"code": self.code, "pointer": prefix + self.pointer, "es": self.es, "en": self.en}

    @property
    def audit_code(self) -> str | None:
        """The push's audit ``reason_code`` (codes only): the kind and the other child."""
        if self.other_child_id is None:
            return None
        return f"linked_apart.{self.kind}.{self.other_child_id}"


def _identifier_pointer(document: Mapping[str, Any], kind: str, value: str) -> str:
    """The JSON pointer of the first identifier of ``document``'s child stored as (``kind``,
    ``value``)."""
    base = "/child/identifiers" if isinstance(document.get("child"), Mapping) else "/identifiers"
    items = child_part(document).get("identifiers")
    for index, item in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(item, Mapping) or not isinstance(item.get("value"), str):
            continue
        stored = (_STORED_KINDS.get(str(item.get("type"))), normalize_identifier(item["value"]))
        if stored == (kind, value):
            return f"{base}/{index}/value"
    return base


def _linked_apart(
    document: Mapping[str, Any], kind: str, value: str, other: str, chosen: str, new: bool
) -> LinkNote:
    what_es, what_en = _KIND_WORDS[kind]
    now_es = f"a una NNA nueva, {chosen}" if new else f"a {chosen}"
    now_en = f"to a new child, {chosen}" if new else f"to {chosen}"
    return LinkNote(
        "identifier_names_another_child",
        _identifier_pointer(document, kind, value),
        f"{what_es} de este expediente ya vincula a otra niña, niño o adolescente ({other}) "
        "cuyos datos (nombre, sexo o fecha de nacimiento) son claramente otros: el expediente "
        f"no se vinculó a {other} sino {now_es}, y queda una sugerencia de duplicado para que "
        "la administración del nodo decida si son la misma persona (fusionar) o no. Revise "
        f"{what_es}: puede estar mal escrita o ser de otra persona.",
        f"this record's {what_en} already links another child ({other}) whose data (name, "
        f"sex or date of birth) clearly differ: the record was linked not to {other} but "
        f"{now_en}, and a duplicate suggestion waits for the hub's administrators to decide "
        f"whether they are one person (merge) or not. Check the {what_en}: it may be mistyped "
        "or another person's.",
        kind,
        other,
    )


def _curp_contradicted(
    document: Mapping[str, Any], value: str, found: Sequence[tuple[str, str, str]]
) -> LinkNote:
    said_es, said_en = [], []
    for field_name, coded, stated in found:
        if field_name == "sex":
            (coded_es, coded_en), (stated_es, stated_en) = _SEX_WORDS[coded], _SEX_WORDS[stated]
            said_es.append(f"sexo {coded_es} (el expediente dice {stated_es})")
            said_en.append(f"sex {coded_en} (the record says {stated_en})")
        else:
            said_es.append(f"fecha de nacimiento {coded} (el expediente dice {stated})")
            said_en.append(f"date of birth {coded} (the record says {stated})")
    return LinkNote(
        "curp_contradicts_record",
        _identifier_pointer(document, "curp", value),
        f"la CURP indica {' y '.join(said_es)}: la CURP o el expediente está mal escrito; "
        "corríjalo, pues una CURP equivocada puede vincular el expediente a otra niña, niño o "
        "adolescente",
        f"the CURP gives {' and '.join(said_en)}: the CURP or the record is mistyped; correct "
        "it, as a wrong CURP may link the record to another child",
    )


_FACTS_SELECT = (
    "SELECT child_id, given_names, surnames, alias, birth_earliest, birth_latest, birth_exact,"
    " sex FROM child_profile WHERE child_id IN {}"
)
#: The agency's children whose stored profiles state an identifier (``kind:value`` as a word
#: of ``identifiers``): read only when every child the identifier links to was skipped.
_HOLDERS_SELECT = (
    "SELECT DISTINCT child_id, identifiers FROM child_profile"
    " WHERE agency_id = ? AND ' ' || identifiers || ' ' LIKE ? ESCAPE '!'"
)


def _like_word(word: str) -> str:
    escaped = word.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"% {escaped} %"


class _RecordedFacts:
    """Who the children records may link to by identifier are, as far as the hub was told:
    the profiles stored for them (read in one query for the children a batch's identifiers
    name, if any) and the records of the batch linked to them so far."""

    def __init__(self, sql: HotSQL, today: date) -> None:
        self._sql, self._today = sql, today
        self._stored: dict[str, list[IdentityProfile]] = {}
        self._batch: dict[str, list[Mapping[str, Any]]] = {}
        self._batch_holders: dict[tuple[str, str], list[str]] = {}
        self._date = sql.reader(_PROFILES.c.birth_exact)

    def read(self, child_ids: Collection[str]) -> None:
        wanted = sorted(set(child_ids) - self._stored.keys())
        if not wanted:
            return
        for child_id in wanted:
            self._stored[child_id] = []
        for row in self._sql.rows_in(_FACTS_SELECT, (), wanted, chunk=LOOKUP_CHUNK):
            child_id, given, surnames, alias, earliest, latest, exact, sex = row
            earliest, latest, exact = self._date(earliest), self._date(latest), self._date(exact)
            birth = BirthWindow(earliest, latest, exact) if earliest and latest else None
            self._stored[child_id].append(
                IdentityProfile(
                    given=tuple(given.split()),
                    surnames=tuple(surnames.split()),
                    alias=tuple(alias.split()),
                    birth=birth,
                    sex=sex,
                )
            )

    def linked(
        self, child_id: str, child: Mapping[str, Any], personal: Iterable[tuple[str, str]]
    ) -> None:
        self._batch.setdefault(child_id, []).append(child)
        for identifier in personal:
            holders = self._batch_holders.setdefault(identifier, [])
            if child_id not in holders:
                holders.append(child_id)

    def holders(self, agency_id: str, kind: str, value: str) -> list[str]:
        """The agency's children whose records state (``kind``, ``value``): stored profiles,
        then the records of the batch linked so far."""
        word = f"{kind}:{value}"
        found = [
            child_id
            for child_id, stated in self._sql.rows(_HOLDERS_SELECT, (agency_id, _like_word(word)))
            if word in (stated or "").split()
        ]
        found += self._batch_holders.get((kind, value), [])
        return list(dict.fromkeys(found))

    def clearly_another(self, child_id: str, record: IdentityProfile) -> bool:
        """Whether ``record`` clearly describes another child than every profile known of
        ``child_id`` (there is at least one)."""
        self.read([child_id])
        known = self._stored[child_id] + [
            profile_from_child(child, self._today) for child in self._batch.get(child_id, ())
        ]
        return bool(known) and all(clearly_another_child(record, other) for other in known)


def _strong_candidates(
    parsed: Sequence[tuple[LinkRequest, Any, list[tuple[str, str]], Any]],
    owners: Mapping[Lookup, str],
    agency_id: str,
) -> set[str]:
    """The existing children records of this batch not linked otherwise (a ``child_id``, an
    earlier local id) would link to by identifier, the agency's own links or the nation's."""
    found: set[str] = set()
    for request, _child, personal, _cases in parsed:
        if request.child_id is not None or ("agency_local", agency_id, request.local_id) in owners:
            continue
        for kind, value in personal:
            for scope in (agency_id, ""):
                owner = owners.get((kind, scope, value))
                if owner is not None:
                    found.add(owner)
    return found


@dataclass
class _ByIdentifier:
    """What :func:`_by_identifier` found: the child (``""`` for none), the identifier that
    led to it, the children skipped as (kind, value, child), and the record's profile if it
    was needed."""

    chosen: str = ""
    via: tuple[str, str] | None = None
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    profile: IdentityProfile | None = None

    def linked_apart(self) -> list[tuple[str, str, str]]:
        """The skipped children the push is told of: not those of the identifier that led
        to the chosen child — the rightful holder of a CURP, say, whose agency kept a
        sibling's record apart with it, is not warned on each push."""
        return [
            (kind, value, other) for kind, value, other in self.skipped if (kind, value) != self.via
        ]


def _by_identifier(
    personal: Sequence[tuple[str, str]],
    owners: Mapping[Lookup, str],
    agency_id: str,
    knows: Callable[[str], bool] | None,
    facts: _RecordedFacts,
    record: tuple[Mapping[str, Any], list[tuple[str, str]], date],
) -> _ByIdentifier:
    """The child a record (:func:`source_profile`'s arguments) links to by identifier — the
    agency's own link for one of its identifiers, else the child one names if the agency may
    know it, else (all of those skipped) another of the agency's children whose records state
    a skipped identifier — skipping children the record clearly is not."""
    found = _ByIdentifier()
    for scope in (agency_id, ""):
        for kind, value in personal:
            owner = owners.get((kind, scope, value))
            if owner is None or any(owner == other for _, _, other in found.skipped):
                continue
            if scope == "" and knows is not None and not knows(owner):
                continue
            if found.profile is None:
                found.profile = source_profile(*record)
            if facts.clearly_another(owner, found.profile):
                found.skipped.append((kind, value, owner))
                continue
            found.chosen, found.via = owner, (kind, value)
            return found
    # The agency's own link leads to the first child kept apart (a sibling): a third child
    # behind the identifier is found among the agency's children whose records state it, or
    # each of its records with a new local id would start yet another child. Rare: only here.
    skipped_children = {other for _, _, other in found.skipped}
    for kind, value in dict.fromkeys((kind, value) for kind, value, _ in found.skipped):
        for holder in facts.holders(agency_id, kind, value):
            if holder not in skipped_children and found.profile is not None:
                if not facts.clearly_another(holder, found.profile):
                    found.chosen, found.via = holder, (kind, value)
                    return found
                skipped_children.add(holder)
    return found


def link_children(
    session: Session,
    *,
    agency_id: str,
    requests: Sequence[LinkRequest],
    may_know: Callable[[set[str]], set[str]] | None = None,
    sql: HotSQL | None = None,
    notes: dict[int, list[LinkNote]] | None = None,
) -> list[str | LookupError]:
    """The ``child_id`` of each pushed record, in order (a ``LookupError`` in place of a
    record naming an unknown ``child_id``). Writes in ``session``'s transaction; no commit.
    ``notes``: filled with what each record's push is to be told (position -> notes), for
    the records that have something (see the module's docstring).

    Records of one batch see each other: the same local id twice is one child, and a CURP
    first seen earlier in the batch links a later record to the same child. ``sql``: the
    session's :class:`~exchange.hot_sql.HotSQL`, when the caller has one.

    ``may_know``: which of the given children the pushing agency may know of
    (:func:`exchange.child_search.children_known_to`). A CURP or UNHCR number links a new
    record only to a child the agency may know; if another agency's child holds it, the
    record starts a child of its own (linked to the identifier for this agency only, so the
    agency's later records of it join that child) and a "conflict" suggestion asks a person
    to merge the two. So a push is no existence oracle for identifiers, and an agency that
    has, or guesses, a CURP cannot attach itself to another agency's child (and act for it).
    ``None``: every child may be known (tests and tools that link on a hub's own behalf).
    """
    if not requests:
        return []
    now = utcnow()
    if sql is None:
        session.flush()  # ORM changes first: the statements below bypass the ORM
        sql = HotSQL(session)
    parsed = []
    lookups: set[Lookup] = set()
    for request in requests:
        child = child_part(request.document)
        personal, cases = identifiers_in(child, agency_id=agency_id)
        parsed.append((request, child, personal, cases))
        lookups.add(("agency_local", agency_id, request.local_id))
        lookups.update((kind, link_scope(kind, agency_id), value) for kind, value in personal)
        lookups.update((kind, agency_id, value) for kind, value in personal)
    owners = _owners(sql, session, lookups)
    known_local_ids = {value for kind, _, value in owners if kind == "agency_local"}
    wanted = {r.child_id for r in requests if r.child_id}
    explicit = existing_children(sql, session, wanted) if wanted else {}
    knows = _MayKnow(may_know) if may_know is not None else None
    if knows is not None:
        knows.learn(_identifier_candidates(parsed, owners, agency_id))  # one question a batch
    facts = _RecordedFacts(sql, now.date())
    if strong := _strong_candidates(parsed, owners, agency_id):
        facts.read(strong)  # one query a batch, only when an identifier names a child

    results: list[str | LookupError] = []
    new_children: list[str] = []
    new_identifiers: list[tuple[str, str, str, str]] = []
    new_cases: set[tuple[str, str, str]] = set()
    conflicts: dict[tuple[str, str, str], None] = {}
    latest: dict[
        str, tuple[str, Mapping[str, Any], list[tuple[str, str]], IdentityProfile | None]
    ] = {}
    today = now.date()
    for position, (request, child, personal, cases) in enumerate(parsed):
        profile: IdentityProfile | None = None  # the record's, made only when needed here
        told: list[LinkNote] = []
        skipped: list[tuple[str, str, str]] = []
        local_key = ("agency_local", agency_id, request.local_id)
        local_owner = owners.get(local_key)
        if request.child_id is not None:
            if request.child_id not in explicit:
                results.append(LookupError(request.child_id))
                continue
            chosen = explicit[request.child_id]
        elif local_owner is not None:
            chosen = local_owner
        else:
            # The agency's own link for an identifier another agency's child holds, else the
            # child the identifier links to, if the agency may know it; else a new child.
            # Not a child the record clearly is not: that one is left to a person.
            found = _by_identifier(
                personal, owners, agency_id, knows, facts, (child, personal, today)
            )
            chosen, skipped, profile = found.chosen, found.skipped, found.profile
            new = not chosen
            if new:
                chosen = new_child_id()
                new_children.append(chosen)
            for kind, _value, other in skipped:
                conflicts[(chosen, other, kind)] = None
            for kind, value, other in found.linked_apart():
                told.append(_linked_apart(request.document, kind, value, other, chosen, new))
        if knows is not None:
            knows.own(chosen)  # the agency's own child: its later records may link to it
        claims = [(local_key, "agency_local")] + [
            ((k, link_scope(k, agency_id), v), k) for k, v in personal
        ]
        for key, kind in claims:
            owner = owners.get(key)
            if owner is None:
                owners[key] = chosen
                new_identifiers.append((chosen, *key))
            elif owner != chosen:
                conflicts[(chosen, owner, kind)] = None
                scoped = (kind, agency_id, key[2])
                # Only an identifier another agency's child holds, or one of a child the
                # record clearly is not, is linked for this agency to its own child: one its
                # own child holds keeps leading there (and a person settles the conflict).
                # Asked only here: conflicts are rare.
                apart = any(owner == other for _, _, other in skipped)
                if (
                    kind != "agency_local"
                    and scoped not in owners
                    and (apart or (knows is not None and not knows(owner)))
                ):
                    owners[scoped] = chosen
                    new_identifiers.append((chosen, *scoped))
        for kind, value in personal:
            if kind == "curp":
                if profile is None:
                    profile = source_profile(child, personal, today)
                if contradicted := curp_contradictions(value, profile):
                    told.append(_curp_contradicted(request.document, value, contradicted))
        if told and notes is not None:
            notes[position] = told
        if personal:
            facts.linked(chosen, child, personal)  # a later record of the batch may name it
        new_cases.update((chosen, kind, value) for kind, value in cases)
        latest[request.local_id] = (chosen, child, personal, profile)
        results.append(chosen)

    if new_children:
        created = sql.binder(_CHILDREN.c.created_at)(now)
        sql.executemany(_INSERT_CHILD, [(child_id, created) for child_id in new_children])
    if new_identifiers:
        sql.executemany(_INSERT_IDENTIFIER, new_identifiers)
    for child_id, other, kind in conflicts:
        suggest_conflict(session, child_id, other, kind=kind, agency_id=agency_id)
    profiles = {
        local_id: (child_id, source_profile(child, personal, today) if made is None else made)
        for local_id, (child_id, child, personal, made) in latest.items()
    }
    stored = store_search_index(sql, agency_id, new_cases, profiles, known=known_local_ids, now=now)
    unlink_dropped_identifiers(sql, session, agency_id, stored.dropped)
    return results


@dataclass
class StoredIndex:
    """What :func:`store_search_index` wrote: how many profiles, and the personal identifiers
    a source record stated before and no longer does, as (profile id, the child its profile
    was of, ``kind:value`` texts), for :func:`unlink_dropped_identifiers`."""

    profiles_written: int = 0
    dropped: list[tuple[int, str, frozenset[str]]] = field(default_factory=list)


def store_search_index(
    sql: HotSQL,
    agency_id: str,
    case_numbers: Collection[tuple[str, str, str]],
    profiles: Mapping[str, tuple[str, IdentityProfile]],
    *,
    known: set[str],
    now: datetime,
    check_name_keys: bool = False,
) -> StoredIndex:
    """Store what search finds children by, for records of ``agency_id`` already linked:
    their search-only identifiers (``case_numbers``: (child id, type, value), as
    :func:`identifiers_in` gives them; rows already there are kept) and their profiles and
    name keys (no writes for a profile that did not change).

    Called by :func:`link_children` on every push, and by ``puente children reindex``
    (:mod:`exchange.children_reindex`) for records pushed before the index kept what it keeps
    now. ``check_name_keys``: also rewrite the name keys of an unchanged profile when they
    differ from what its profile gives (one more query; the push path has no need of it).
    """
    if case_numbers:
        sql.executemany(_INSERT_CASE_NUMBER, sorted(case_numbers))
    return _store_profiles(
        sql, agency_id, profiles, known=known, now=now, check_name_keys=check_name_keys
    )


def profile_columns(profile: IdentityProfile) -> dict[str, Any]:
    birth = profile.birth
    return {
        "given_names": " ".join(profile.given)[:300],
        "surnames": " ".join(profile.surnames)[:300],
        "alias": " ".join(profile.alias)[:300],
        "birth_earliest": birth.earliest if birth else None,
        "birth_latest": birth.latest if birth else None,
        "birth_exact": birth.exact if birth else None,
        "sex": profile.sex,
        "nationalities": " ".join(sorted(profile.nationalities)),
        # NULL in rows written before the column: what those records state is not known.
        "identifiers": " ".join(profile.identifiers),
    }


PROFILE_COLUMN_NAMES = tuple(profile_columns(IdentityProfile()))


_PROFILE_SELECT = (
    f"SELECT id, local_id, child_id, {', '.join(PROFILE_COLUMN_NAMES)}"  # noqa: S608
    " FROM child_profile WHERE agency_id = ? AND local_id IN {}"
)
#: Where a row of :data:`_PROFILE_SELECT` holds the identifiers its record states.
_STATED_AT = 3 + PROFILE_COLUMN_NAMES.index("identifiers")
_PROFILE_INSERT_COLUMNS = ("child_id", "agency_id", "local_id", "updated_at", *PROFILE_COLUMN_NAMES)
_PROFILE_UPDATE = update_sql(_PROFILES, ("child_id", "updated_at", *PROFILE_COLUMN_NAMES), ["id"])


@functools.lru_cache(maxsize=64)
def _profile_insert(rows: int) -> str:
    return insert_sql(
        _PROFILES, _PROFILE_INSERT_COLUMNS, rows=rows, suffix=" RETURNING id, local_id"
    )


def _profile_values(sql: HotSQL, profile: IdentityProfile) -> tuple[Any, ...]:
    """The profile's columns as the database stores them (so they compare with a stored row)."""
    columns = profile_columns(profile)
    for name in _converted_profile_columns(sql.dialect):  # dates, on SQLite
        columns[name] = sql.binder(_PROFILES.c[name])(columns[name])
    return tuple(columns.values())


@functools.cache
def _converted_profile_columns(dialect: Dialect) -> tuple[str, ...]:
    return tuple(
        name
        for name in PROFILE_COLUMN_NAMES
        if _PROFILES.c[name].type.dialect_impl(dialect).bind_processor(dialect) is not None
    )


def _store_profiles(
    sql: HotSQL,
    agency_id: str,
    profiles: Mapping[str, tuple[str, IdentityProfile]],
    *,
    known: set[str],
    now: datetime,
    check_name_keys: bool = False,
) -> StoredIndex:
    stored: dict[str, tuple[Any, ...]] = {}
    local_ids = sorted(known & profiles.keys())
    if local_ids:
        for found in sql.rows_in(_PROFILE_SELECT, (agency_id,), local_ids, chunk=LOOKUP_CHUNK):
            stored[found[1]] = tuple(found)
    updated_at = sql.binder(_PROFILES.c.updated_at)(now)
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    rekeyed: dict[int, IdentityProfile] = {}
    unchanged: dict[int, IdentityProfile] = {}
    result = StoredIndex()
    for local_id, (child_id, profile) in profiles.items():
        values = _profile_values(sql, profile)
        current = stored.get(local_id)
        if current is None:
            inserts.append((child_id, agency_id, local_id, updated_at, *values))
        elif current[2] != child_id or current[3:] != values:
            updates.append((child_id, updated_at, *values, current[0]))
            rekeyed[current[0]] = profile
            stated = current[_STATED_AT]
            was = frozenset(stated.split()) if stated is not None else frozenset()
            if no_longer_stated := was - set(profile.identifiers):
                result.dropped.append((current[0], current[2], no_longer_stated))
        elif check_name_keys:
            unchanged[current[0]] = profile
    if unchanged:
        rekeyed.update(_stale_name_keys(sql, unchanged))
    if updates:
        sql.executemany(_PROFILE_UPDATE, updates)
    if rekeyed:
        sql.execute_in("DELETE FROM child_name_key WHERE profile_id IN {}", sorted(rekeyed))
    # One multi-row INSERT … RETURNING per chunk: the new ids key the profiles' name keys.
    for chunk in _chunks(inserts, MAX_PARAMETERS // len(_PROFILE_INSERT_COLUMNS)):
        statement = _profile_insert(len(chunk))
        for profile_id, local_id in sql.rows(statement, [v for row in chunk for v in row]):
            rekeyed[profile_id] = profiles[local_id][1]
    keys = [
        row for profile_id, profile in rekeyed.items() for row in _name_keys(profile_id, profile)
    ]
    if keys:
        sql.executemany(_INSERT_NAME_KEY, keys)
    result.profiles_written = len(rekeyed)
    return result


_UNLINK_IN_FAMILY = (
    "DELETE FROM child_identifier WHERE kind = ? AND scope = ? AND value = ? AND child_id IN {}"
)


def unlink_dropped_identifiers(
    sql: HotSQL,
    session: Session,
    agency_id: str,
    dropped: Sequence[tuple[int, str, frozenset[str]]],
) -> int:
    """Remove the links of identifiers that source records stopped stating (a corrected CURP),
    when no other record of the child states them: else the old value would go on linking
    every record that carries it — another child's, say — to this child, with this child's
    consents. The national link goes when no record of the child states the identifier; the
    agency's own link (:func:`link_children`) when none of the agency's does. A record written
    before profiles kept their identifiers counts as stating every identifier. ``dropped``: as
    :attr:`StoredIndex.dropped`. Returns how many links were removed."""
    removed = 0
    for profile_id, child_id, identifiers in dropped:
        try:
            family = merged_child_ids(session, child_id)
        except LookupError:
            continue
        others = sql.rows_in(
            "SELECT agency_id, identifiers FROM child_profile WHERE id != ? AND child_id IN {}",
            (profile_id,),
            sorted(family),
            chunk=LOOKUP_CHUNK,
        )
        for stated in sorted(identifiers):
            kind, _, value = stated.partition(":")
            stating = {
                agency for agency, texts in others if texts is None or stated in texts.split()
            }
            # The national link while any record of the child states it; the agency's own
            # while one of the agency's does.
            for scope, still_stated in (("", bool(stating)), (agency_id, agency_id in stating)):
                if not still_stated:
                    removed += sql.execute(
                        with_in_list(_UNLINK_IN_FAMILY, len(family)),
                        (kind, scope, value, *sorted(family)),
                    )
    return removed


def _name_keys(profile_id: int, profile: IdentityProfile) -> list[tuple[int, str, int, int]]:
    """The ``child_name_key`` rows of a profile."""
    start, end = _birth_years(profile)
    return [(profile_id, key, start, end) for key in sorted(index_keys(profile))]


def _stale_name_keys(
    sql: HotSQL, profiles: Mapping[int, IdentityProfile]
) -> dict[int, IdentityProfile]:
    """Those of ``profiles`` (profile id -> profile) whose stored name keys are not the ones
    the profile gives (missing, or made by an earlier version of the keys)."""
    stored: dict[int, set[tuple[int, str, int, int]]] = {}
    for row in sql.rows_in(
        "SELECT profile_id, key, birth_year_from, birth_year_to FROM child_name_key"
        " WHERE profile_id IN {}",
        (),
        sorted(profiles),
        chunk=LOOKUP_CHUNK,
    ):
        stored.setdefault(row[0], set()).add(tuple(row))
    return {
        profile_id: profile
        for profile_id, profile in profiles.items()
        if stored.get(profile_id, set()) != set(_name_keys(profile_id, profile))
    }


def _birth_years(profile: IdentityProfile) -> tuple[int, int]:
    birth = profile.birth
    if birth is None:
        return UNKNOWN_YEAR_FROM, UNKNOWN_YEAR_TO
    return birth.earliest.year, birth.latest.year
