"""Finding a child's ``child_id``: by identifier, or by name, date of birth and nationality.

An answer is only child ids with a score and what agreed — never names or case content; the
caller then reads records under the normal rules.

How it stays fast with 100,000 children and more (no scan of every child):

* an identifier search is a lookup or two in the unique index of ``child_identifier``
  (kind, scope, value) and in ``ix_child_case_number_lookup`` (kind, value) — the latter holds
  the identifiers linking keeps for search only (case numbers, documents, the child's own
  agency-local ids, see :data:`exchange.children.SEARCH_ONLY_IDENTIFIER_TYPES`);
* a name search turns the query's name tokens into sound keys (``g:`` given names, ``s:``
  surnames, see :func:`exchange.child_matching.query_keys`) and reads the matching rows of
  ``child_name_key`` through the covering index ``ix_child_name_key_lookup`` (key,
  birth_year_to, birth_year_from): one index range scan per key, already restricted to
  profiles whose birth years come within two years of the query's (a date further apart
  cannot reach the threshold). Profiles sharing the most keys (then born closest to the
  query) come first and at most :data:`CANDIDATE_POOL` of them are loaded by primary key
  and scored in Python.

Nationality is not indexed: most children come from a handful of countries, so it would not
narrow the search; it only weighs in the score. A name spelt so differently that no token
sounds alike is not found by a name search (search by identifier then).

Who may know of a child at all (:func:`children_known_to`) is decided here too: a search
answers only those children, and a push may name (``child_id``) only those, so neither is an
existence oracle.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, func, or_, select, union
from sqlalchemy.orm import Session

from consent import Decision
from exchange.auth import Actor, utcnow
from exchange.child_linking import (
    LOOKUP_CHUNK,
    child_part,
    follow_merges,
    identifiers_in,
    scoped_value,
)
from exchange.child_matching import (
    SEARCH_MIN_SCORE,
    BirthWindow,
    IdentityProfile,
    query_keys,
    score_match,
)
from exchange.children import (
    IDENTIFIER_TYPES,
    PERSONAL_IDENTIFIER_KINDS,
    SEARCH_ONLY_IDENTIFIER_TYPES,
    Child,
    ChildCaseNumber,
    ChildNameKey,
    ChildProfile,
    find_by_identifier,
    normalize_identifier,
    resolve_child_id,
)
from exchange.crypto import DataKeyring, data_keyring
from exchange.disclosure import ChildContext, evaluate, load_child
from exchange.hot_sql import HotSQL, chunks
from exchange.records import Record, latest_body, record_named

#: At most this many candidates are answered.
MAX_CANDIDATES = 20
#: Profiles scored per name search (those sharing the most name keys with the query, then
#: those born closest to it).
CANDIDATE_POOL = 200
#: Identifiers kept for search only (case numbers, which may cover several children of a
#: family, and documents a record states but nothing checks): a match says "of this case" or
#: "a record says so", not "this child".
CASE_NUMBER_SCORE = 0.9
#: The identifier types of a case record (``child.identifiers[].type``), as a search takes them.
RECORD_IDENTIFIER_TYPES = IDENTIFIER_TYPES
#: The older short kinds, still taken: ``unhcr`` is an individual or a case number, ``comar``
#: a case number.
LEGACY_IDENTIFIER_KINDS = ("unhcr", "comar")
IDENTIFIER_SEARCH_KINDS = RECORD_IDENTIFIER_TYPES + LEGACY_IDENTIFIER_KINDS
#: Search type -> the ``child_identifier`` kind that links one child by it.
_LINKING_KINDS = {"curp": "curp", "unhcr_individual": "unhcr", "unhcr": "unhcr"}
#: Search type -> the search-only kinds stored for it (``agency_local`` is handled apart).
_SEARCH_ONLY_KINDS = {
    **{kind: (kind,) for kind in SEARCH_ONLY_IDENTIFIER_TYPES - {"agency_local"}},
    "unhcr": ("unhcr_case",),
    "comar": ("comar_case",),
}


@dataclass(frozen=True)
class Candidate:
    child_id: str
    score: float
    matched_on: tuple[str, ...]
    #: What matched, as a record states it (:class:`Statement`): only a record whose
    #: ``identity`` the caller may read can make a candidate of the child for them.
    stated: Statement | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"child_id": self.child_id, "score": self.score, "matched_on": list(self.matched_on)}


@dataclass(frozen=True)
class Statement:
    """Where a match comes from. ``kind`` is ``"profile"`` (``value``: the profile's pushing
    agency and local id, which name its record), ``"local_id"`` (the calling agency's own
    local id for its record: ``value`` is that id), or an identifier kind as the index stores
    it (``curp``, ``unhcr``, ``comar_case``, a scoped ``agency_local``…: ``value`` is the
    stored value, which the record's ``child.identifiers`` must state)."""

    kind: str
    value: str
    agency_id: str = ""


#: What scoring reads of a stored profile (plain rows: no ORM objects on the search path).
PROFILE_COLUMNS = (
    ChildProfile.child_id,
    ChildProfile.given_names,
    ChildProfile.surnames,
    ChildProfile.alias,
    ChildProfile.birth_earliest,
    ChildProfile.birth_latest,
    ChildProfile.birth_exact,
    ChildProfile.sex,
    ChildProfile.nationalities,
)


def profile_of(row: Any) -> IdentityProfile:
    """The stored profile as :func:`~exchange.child_matching.score_match` takes it."""
    birth = None
    if row.birth_earliest is not None and row.birth_latest is not None:
        birth = BirthWindow(row.birth_earliest, row.birth_latest, row.birth_exact)
    return IdentityProfile(
        given=tuple(row.given_names.split()),
        surnames=tuple(row.surnames.split()),
        alias=tuple(row.alias.split()),
        birth=birth,
        sex=row.sex,
        nationalities=frozenset(row.nationalities.split()),
    )


def _ranked(candidates: Iterable[Candidate], limit: int) -> list[Candidate]:
    best: dict[str, Candidate] = {}
    for candidate in candidates:
        if candidate.child_id not in best or candidate.score > best[candidate.child_id].score:
            best[candidate.child_id] = candidate
    return sorted(best.values(), key=lambda c: (-c.score, c.child_id))[:limit]


#: Identifier types whose shape is known (common/1), and the definition that gives it.
IDENTIFIER_SHAPES = {"curp": "curp", "unhcr_individual": "unhcr_number"}
IDENTIFIER_SHAPE_WORDS = {
    "curp": (
        "No es una CURP: 18 caracteres, 4 letras, la fecha de nacimiento (AAMMDD), el sexo, la "
        "entidad (NE si nació en el extranjero), 3 consonantes y 2 caracteres finales.",
        "Not a CURP: 18 characters, 4 letters, the date of birth (YYMMDD), the sex, the state "
        "(NE if born abroad), 3 consonants and 2 final characters.",
    ),
    "unhcr_individual": (
        "No es un número individual ACNUR (como 487-21C01234 o MEX-23C012345).",
        "Not a UNHCR individual number (such as 487-21C01234 or MEX-23C012345).",
    ),
}


def identifier_shape_error(kind: str, value: str) -> tuple[str, str] | None:
    """Why ``value`` cannot be an identifier of ``kind`` (Spanish, English), or None: the same
    shape a record's identifier must have, spaces and case set aside. A value of the wrong shape
    is a typo to fix, not a child the hub does not know."""
    from schemas.registry import default_registry

    definition = IDENTIFIER_SHAPES.get(kind)
    if definition is None:
        return None
    pattern = default_registry().resolve(f"https://schemas.puente.mx/common/1#/$defs/{definition}")[
        "pattern"
    ]
    if re.match(pattern, normalize_identifier(value)):
        return None
    return IDENTIFIER_SHAPE_WORDS[kind]


def search_by_identifier(
    session: Session, kind: str, value: str, *, agency_id: str | None
) -> list[Candidate]:
    """Children carrying the identifier ``value`` of type ``kind`` (one of
    :data:`IDENTIFIER_SEARCH_KINDS`), best first, whoever stated it (the index alone: the
    search route keeps only what the caller may read, see :func:`readable_candidates`).

    ``curp`` and ``unhcr_individual`` find the child they link to (score 1); ``unhcr`` also
    every child of a UNHCR case number. Search-only types (case numbers, documents) find every
    child a record states it for (:data:`CASE_NUMBER_SCORE`). ``agency_local`` finds, for the
    calling agency only, the child of its record with that local id and every child whose
    record carries that agency-local identifier issued by the caller (score 1): another
    agency's local values never match.
    """
    return _ranked(identifier_matches(session, kind, value, agency_id=agency_id), MAX_CANDIDATES)


def identifier_matches(
    session: Session, kind: str, value: str, *, agency_id: str | None
) -> list[Candidate]:
    """Every match of :func:`search_by_identifier`, unranked, each with its :class:`Statement`
    (a child may match more than one way)."""
    found: list[Candidate] = []
    normalized = normalize_identifier(value)
    if kind == "agency_local":
        if agency_id is not None:
            child_id = find_by_identifier(session, "agency_local", value.strip(), agency_id)
            if child_id:
                own = Statement("local_id", value.strip(), agency_id)
                found.append(Candidate(child_id, 1.0, ("agency_local",), own))
            scoped = scoped_value(agency_id, normalized)
            found.extend(
                Candidate(child_id, 1.0, ("agency_local",), Statement("agency_local", scoped))
                for child_id in _stated_children(session, "agency_local", scoped)
            )
    elif kind in _LINKING_KINDS:
        linking_kind = _LINKING_KINDS[kind]
        stated = Statement(linking_kind, normalized)
        child_id = find_by_identifier(session, linking_kind, normalized)
        if child_id:
            found.append(Candidate(child_id, 1.0, (linking_kind,), stated))
        if agency_id is not None:
            # The caller's own child for an identifier another agency's child holds (see
            # exchange.child_linking.link_children).
            own = find_by_identifier(session, linking_kind, normalized, agency_id)
            if own:
                found.append(Candidate(own, 1.0, (linking_kind,), stated))
    for stored_kind in _SEARCH_ONLY_KINDS.get(kind, ()):
        found.extend(
            Candidate(
                child_id, CASE_NUMBER_SCORE, (stored_kind,), Statement(stored_kind, normalized)
            )
            for child_id in _stated_children(session, stored_kind, normalized)
        )
    return [
        Candidate(resolve_child_id(session, c.child_id), c.score, c.matched_on, c.stated)
        for c in found
    ]


def _stated_children(session: Session, kind: str, value: str) -> list[str]:
    """Children a record states the search-only identifier for (``ix_child_case_number_lookup``)."""
    return list(
        session.scalars(
            select(ChildCaseNumber.child_id).where(
                ChildCaseNumber.kind == kind, ChildCaseNumber.value == value
            )
        )
    )


def search_by_profile(
    session: Session,
    query: IdentityProfile,
    *,
    limit: int = MAX_CANDIDATES,
    min_score: float = SEARCH_MIN_SCORE,
) -> list[Candidate]:
    """Children whose profiles score at least ``min_score`` against ``query``, best first
    (the index alone, whoever stated the profiles: see :func:`readable_candidates`)."""
    return _ranked(profile_matches(session, query, min_score=min_score), limit)


def profile_matches(
    session: Session,
    query: IdentityProfile,
    *,
    min_score: float = SEARCH_MIN_SCORE,
    own_agency: str | None = None,
    children: Collection[str] = (),
) -> list[Candidate]:
    """Every profile of the pool scoring at least ``min_score``, unranked, each with the
    record that states it (:class:`Statement`). The pool is the :data:`CANDIDATE_POOL`
    profiles sharing the most name keys with the query (then born closest to it) and as many
    of ``own_agency``'s own and of the ``children`` the caller was granted or referred
    (:func:`children_granted_or_referred`): however many other children share a name and a
    date of birth, they cannot push a child the caller works with out of the pool.
    """
    keys = sorted(query_keys(query))
    if not keys:
        return []
    profile_ids = set(_pool(session, query, keys))
    if own_agency is not None:
        profile_ids.update(_pool(session, query, keys, own_agency=own_agency))
    for part in chunks(sorted(children), LOOKUP_CHUNK):
        profile_ids.update(_pool(session, query, keys, children=part))
    if not profile_ids:
        return []
    # No join to ``child``: a merge moves profiles to the surviving child, so a profile never
    # names a merged child (and SQLite would plan the join as a scan of every child).
    columns = (*PROFILE_COLUMNS, ChildProfile.agency_id, ChildProfile.local_id)
    rows = session.execute(select(*columns).where(ChildProfile.id.in_(sorted(profile_ids))))
    scored = []
    for row in rows:
        match = score_match(query, profile_of(row))
        if match.score >= min_score:
            source = Statement("profile", row.local_id, row.agency_id)
            scored.append(Candidate(row.child_id, match.score, match.matched_on, source))
    return scored


def _pool(
    session: Session,
    query: IdentityProfile,
    keys: list[str],
    *,
    own_agency: str | None = None,
    children: Sequence[str] = (),
) -> list[int]:
    """The ids of the :data:`CANDIDATE_POOL` profiles sharing the most keys with ``query``
    (of ``own_agency``'s records only, or of ``children`` only, when given)."""
    shared = func.count().label("shared")
    pool = select(ChildNameKey.profile_id, shared).where(ChildNameKey.key.in_(keys))
    if own_agency is not None:
        pool = pool.join(ChildProfile, ChildProfile.id == ChildNameKey.profile_id).where(
            ChildProfile.agency_id == own_agency
        )
    elif children:
        pool = pool.join(ChildProfile, ChildProfile.id == ChildNameKey.profile_id).where(
            ChildProfile.child_id.in_(children)
        )
    order: list[Any] = [shared.desc()]
    if query.birth is not None:
        pool = pool.where(
            ChildNameKey.birth_year_to >= query.birth.earliest.year - 2,
            ChildNameKey.birth_year_from <= query.birth.latest.year + 2,
        )
        # Among profiles sharing as many keys, those born closest to the query come first
        # (every key row of a profile carries the same years, so min() is just "the" value).
        middle = query.birth.earliest.year + query.birth.latest.year
        years = func.min(ChildNameKey.birth_year_from) + func.min(ChildNameKey.birth_year_to)
        order.append(func.abs(years - middle))
    pool = (
        pool.group_by(ChildNameKey.profile_id)
        .order_by(*order, ChildNameKey.profile_id)
        .limit(CANDIDATE_POOL)
    )
    return [profile_id for profile_id, _ in session.execute(pool)]


def children_granted_or_referred(session: Session, actor: Actor) -> set[str]:
    """The children (as they now are, after merges) the caller holds a live access grant for,
    as a person or as an agency, or an accepted referral or transfer of a record of: those a
    name search must find however many namesakes the hub holds. Whether the caller may know
    each one is still decided child by child (:func:`children_known_to`); consents, which
    are sealed, are not read here, so a child known through a consent alone is found in the
    common pool only."""
    from exchange.consent_store import GrantRow
    from exchange.sharing import RecordShare

    granted_to = []
    if actor.person_id is not None:
        granted_to.append(GrantRow.grantee_person == actor.person_id)
    if actor.agency_id is not None:
        granted_to.append(GrantRow.grantee_agency == actor.agency_id)
    found: set[str] = set()
    if granted_to:
        found.update(
            session.scalars(
                select(GrantRow.child_id).where(
                    or_(*granted_to), GrantRow.revoked_at.is_(None), GrantRow.until > utcnow()
                )
            )
        )
    if actor.agency_id is not None:
        found.update(
            session.scalars(
                select(Record.child_id)
                .join(RecordShare, RecordShare.record_id == Record.id)
                .where(RecordShare.agency_id == actor.agency_id, RecordShare.status == "accepted")
            )
        )
    survivors = follow_merges(HotSQL(session), session, found) if found else {}
    return {survivors.get(child_id, child_id) for child_id in found}


# -- who may know of a child ------------------------------------------------------------------

#: What knowing of a child discloses: that this child is in the protection system.
KNOWING_CATEGORIES = frozenset({"identity"})
#: Stored identifier kinds named apart from the record's identifier type they come from.
_RECORD_TYPE_OF_KIND = {kind: type_ for type_, kind in PERSONAL_IDENTIFIER_KINDS.items()}


@functools.cache
def _identifier_type_categories() -> Mapping[str, str]:
    from schemas.registry import default_registry

    by_pointer = default_registry().value_categories("case-record", 1)
    return by_pointer.get("/child/identifiers/*/type", {})


def categories_told(stated: Statement | None) -> frozenset[str]:
    """What a match by ``stated`` tells its caller of a child: ``identity``, and the category
    the identifier's type says more of (``x-value-categories``: a COMAR case or UNHCR number
    says the child sought asylum, ``legal_status``). A match by such an identifier counts only
    where the caller may read that category too — where a read would show it the identifier."""
    if stated is None or stated.kind in ("profile", "local_id"):
        return KNOWING_CATEGORIES
    record_type = _RECORD_TYPE_OF_KIND.get(stated.kind, stated.kind)
    told = _identifier_type_categories().get(record_type)
    return KNOWING_CATEGORIES | {told} if told else KNOWING_CATEGORIES


@dataclass(frozen=True)
class KnownChild:
    """A child the caller may know of: the child (after merges), the decision that lets the
    caller know of it, whether the caller's agency holds one of the child's records, and the
    ids of the records whose ``identity`` the caller may read (with ``every_record``, all of
    them; otherwise the first found)."""

    child: ChildContext
    decision: Decision
    holds: bool
    readable: frozenset[str] = frozenset()


def children_known_to(
    session: Session,
    actor: Actor,
    purpose: str | None,
    child_ids: Iterable[str],
    *,
    keyring: DataKeyring | None = None,
    every_record: bool = False,
    knowing: frozenset[str] = KNOWING_CATEGORIES,
) -> dict[str, KnownChild]:
    """Those of ``child_ids`` that ``actor`` may know exist, by the id asked for (a merged
    child's id counts as the child it was merged into); unknown ids and children the caller
    may not know of are left out alike, so a caller cannot tell them apart.

    The caller may know of a child when it may read the ``identity`` of one of the child's
    records, decided per record as a read of that record would be. A caller whose agency is
    responsible for the record (owns it) already knows the child, so, as for the originating
    agency reading its own record, only the hard rules limit the answer. An agency that holds
    a referral of the record — one it was told of (:func:`told_to_recipient`: not one whose
    notice was withheld before it reached it) — knows the child as far as reading that
    referral would show it:
    when the referral names ``identity`` (or every category) and the consent engine permits
    it for the referral (action ``refer``, its purpose) — a referral for health care alone
    does not let its holder confirm the child's name, date of birth or identifiers by
    searching. Anyone else — an agency or a person — only when the consent engine permits
    ``identity`` to them for ``read`` and ``purpose`` (consent, grant or override). The hard
    rules strip ``identity`` for ``statistics`` and for the ``oversight`` purpose or actor.
    Children come from :func:`~exchange.disclosure.load_child`'s per-child cache.

    Child search answers only these children, and only by what their readable records state
    (:func:`readable_candidates`); a push may name only these in ``child_id``. ``purpose``
    None means any purpose: a push has none of its own, and an agency that may find a child
    for one purpose (COMAR for ``asylum_procedure``) must be able to link its record to that
    child rather than start a second one. ``knowing``: what the caller must be permitted of a
    record for it to count — ``identity``, and for a search match by an identifier that tells
    legal status ``legal_status`` too (:func:`categories_told`).
    """
    # Imported when used: this module also serves ``puente import`` and the duplicates
    # listing, which need not load the records-read blueprint.
    from exchange.sharing import RecordShare, purpose_codes

    children: dict[str, ChildContext] = {}
    for child_id in dict.fromkeys(child_ids):
        try:
            children[child_id] = load_child(session, child_id, keyring)
        except LookupError:
            continue  # no such child (or merged away since the index answered)
    # As for reads: the agency's own system knows its children; a person of that agency
    # (a lawyer, an officer) knows what consent, grants and overrides give them.
    system = actor.person_id is None and actor.agency_id is not None
    referrals: dict[str, list[tuple[str, Any]]] = {}
    if system:
        record_ids = [record.id for child in children.values() for record in child.records]
        for record_id, referred_for, categories in session.execute(
            select(RecordShare.record_id, RecordShare.purpose, RecordShare.categories).where(
                RecordShare.record_id.in_(record_ids),
                RecordShare.agency_id == actor.agency_id,
                RecordShare.kind == "referral",
                RecordShare.status == "accepted",
                # A referral whose notice was withheld before it reached the agency told it
                # nothing of the child: it does not let it find the child, nor name it in a
                # push, even once a new consent permits such a referral again.
                told_to_recipient(),
            )
        ):
            referrals.setdefault(record_id, []).append((referred_for, categories))
    engine_actor = actor.for_consent()
    purposes = (purpose,) if purpose else purpose_codes()
    known: dict[str, KnownChild] = {}
    for child_id, child in children.items():
        first: tuple[Decision, bool] | None = None
        readable: set[str] = set()
        # The caller's own records first: the usual case, and the decision that tells most
        # plainly why the caller knows the child (it holds its record).
        for record in sorted(
            child.records, key=lambda r: not (system and r.owner_agency == actor.agency_id)
        ):
            owns = system and record.owner_agency == actor.agency_id
            asked = [("read", weighed) for weighed in purposes]
            if not owns:
                asked += [
                    ("refer", referred_for)
                    for referred_for, categories in referrals.get(record.id, ())
                    if (purpose is None or referred_for == purpose)
                    and (not categories or knowing <= set(categories))
                ]
            for action, weighed in asked:
                decision = evaluate(
                    child,
                    engine_actor,
                    action,
                    weighed,
                    knowing,
                    owner_agency_id=actor.agency_id if owns else None,
                    record_id=record.id,
                )
                if knowing <= set(decision.categories):
                    readable.add(record.id)
                    first = first or (decision, owns or action == "refer")
                    break
            if first is not None and not every_record:
                break
        if first is not None:
            known[child_id] = KnownChild(child, first[0], first[1], frozenset(readable))
    return known


# -- what a caller may match on ---------------------------------------------------------------


def readable_candidates(
    session: Session,
    actor: Actor,
    purpose: str,
    matches: Sequence[Candidate],
    *,
    limit: int = MAX_CANDIDATES,
) -> list[tuple[Candidate, KnownChild]]:
    """The best ``limit`` children of ``matches`` (from :func:`identifier_matches` or
    :func:`profile_matches`) the caller may know of, each scored by its best match that a
    record the caller may read the ``identity`` of states: what another agency's record says
    of a child (its UNHCR or COMAR number, a nationality, an alias) never matches for a caller
    who may not read that record, so a search cannot confirm it.

    Matches are weighed best first, a few children at a time, until ``limit`` are answered:
    children the caller may not know of cannot crowd out one it may, and the work stays
    bounded by the pool a search draws from.

    A match by an identifier that tells more than identity (a COMAR case or UNHCR number
    tells legal status, :func:`categories_told`) counts only where a record the caller may
    read that category of too states it — as a read shows the identifier only then.
    Otherwise the search answers as for a number no child carries: it cannot tell a reader
    denied legal status that the child sought asylum or has a migration file.
    """
    # Children the engine could not let the caller know of are left out without being
    # loaded: loading every namesake in the pool would cost a second, and tell by its time
    # that they exist.
    possible = possibly_known(session, actor, matches)
    ordered = sorted(
        (c for c in matches if c.child_id in possible), key=lambda c: (-c.score, c.child_id)
    )
    # By (what the match tells, child): None when the caller may not know it for that.
    known: dict[tuple[frozenset[str], str], KnownChild | None] = {}
    answered: dict[str, tuple[Candidate, KnownChild]] = {}
    statements = _StatedBy(session, actor)
    for position, candidate in enumerate(ordered):
        if len(answered) >= limit:
            break
        if candidate.child_id in answered:
            continue
        told = categories_told(candidate.stated)
        if (told, candidate.child_id) not in known:
            known.update(_weighed(session, actor, purpose, ordered[position:], told, known))
        child = known[told, candidate.child_id]
        if child is not None and statements.by_readable_record(child, candidate.stated):
            answered[candidate.child_id] = (candidate, child)
    return list(answered.values())


def _weighed(
    session: Session,
    actor: Actor,
    purpose: str,
    upcoming: Sequence[Candidate],
    told: frozenset[str],
    known: Mapping[tuple[frozenset[str], str], KnownChild | None],
) -> dict[tuple[frozenset[str], str], KnownChild | None]:
    """The next :data:`WEIGH_BATCH` children of ``upcoming`` whose matches tell ``told`` and
    that ``known`` has not weighed for it yet, each with what the caller may know of it."""
    ids = dict.fromkeys(c.child_id for c in upcoming if categories_told(c.stated) == told)
    batch = [child_id for child_id in ids if (told, child_id) not in known][:WEIGH_BATCH]
    found = children_known_to(session, actor, purpose, batch, every_record=True, knowing=told)
    return {(told, child_id): found.get(child_id) for child_id in batch}


def possibly_known(session: Session, actor: Actor, candidates: Iterable[Candidate]) -> set[str]:
    """Those of the candidates' children the consent engine could let ``actor`` know of, in a
    few queries whatever their number: the engine permits only to the agency's own system
    reading its record, to the holder of a referral (one it was told of,
    :func:`told_to_recipient`), or by a consent, a grant or an emergency override
    (consent/engine.py; hard rules, withhold entries and objections only refuse).
    A child with none of these for anyone — the many namesakes a name search draws from other
    agencies — is left out without loading it; :func:`children_known_to` decides the rest."""
    child_ids = sorted({candidate.child_id for candidate in candidates})
    if not child_ids:
        return set()
    connection = session.connection()
    # A consent or a record may still name a child merged into a candidate.
    survivor = {child_id: child_id for child_id in child_ids}
    for merged, into in connection.execute(_merged_statement(), {"ids": child_ids}):
        survivor[merged] = into
    system = actor.person_id is None and actor.agency_id is not None
    found = connection.execute(
        _possibly_known_statement(),
        {"ids": sorted(survivor), "agency": actor.agency_id if system else None},
    ).scalars()
    return {survivor[child_id] for child_id in found}


@functools.cache
def _merged_statement() -> Any:
    return select(Child.id, Child.merged_into).where(
        Child.merged_into.in_(bindparam("ids", expanding=True))
    )


@functools.cache
def _possibly_known_statement() -> Any:
    # Built once (a search runs it every time); ``agency`` None matches no record.
    from exchange.consent_store import ConsentRow, GrantRow, OverrideRow
    from exchange.sharing import RecordShare

    ids, agency = bindparam("ids", expanding=True), bindparam("agency")
    return union(
        *(
            select(model.child_id).where(model.child_id.in_(ids))
            for model in (ConsentRow, GrantRow, OverrideRow)
        ),
        select(Record.child_id).where(Record.child_id.in_(ids), Record.owner_agency == agency),
        select(Record.child_id)
        .join(RecordShare, RecordShare.record_id == Record.id)
        .where(Record.child_id.in_(ids), RecordShare.agency_id == agency, told_to_recipient()),
    )


def told_to_recipient() -> ColumnElement[bool]:
    """SQL, about the ``record_share`` row of the statement it is put in: its recipient was
    told of it, or may still be — the rule of :func:`exchange.sharing.told_shares`, as one
    condition a statement can carry: correlated ``EXISTS`` on the recipient's announcing
    notices (through the index on their agency; the share id is read from the payload), run
    for each share the statement reaches, so meant for statements that reach few shares — those
    of a few children's records — not every share of an agency. Told: the recipient answered the
    share itself; no notice announces it; or its notice is delivered, may have reached the
    agency (tried by an attempt that did not certainly send nothing, or handed out: the stored
    ``maybe_reached`` of :func:`exchange.outbox.may_have_reached`), is still queued
    (``pending``, or ``failed`` and due again), is ``held`` for the agency to read, or died
    while still the agency's to read (:func:`exchange.outbox.readable_dead`: its receiver down
    longer than the attempts lasted, the agency disabled). Not told: every announcing notice
    was withheld, or refused by the agency's receiver, before it may have reached the agency.

    A ``held`` notice never handed out (or such a dead one) counts as told here, where
    ``told_shares`` would decide it (and audit that) as ``GET /v1/notifications`` does: a
    search or a push writes nothing about notices. It lets the agency find or name a child
    only through a referral the engine permits now (action ``refer``,
    :func:`children_known_to`), and then the notice would be handed out too if the agency
    read its notifications; in :func:`possibly_known` it only lets the child be weighed."""
    from exchange.outbox import DUE_STATUSES, OutboxMessage, readable_dead
    from exchange.sharing import ANNOUNCING_NOTICES, RecordShare

    announcing = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.agency_id == RecordShare.agency_id,
            OutboxMessage.kind == case(ANNOUNCING_NOTICES, value=RecordShare.kind),
            OutboxMessage.payload["share_id"].as_string() == RecordShare.id,
        )
        .correlate(RecordShare)
    )
    reached = announcing.where(
        or_(
            # Still queued for the worker, delivered, or kept for the agency to read.
            OutboxMessage.status.in_((*DUE_STATUSES, "delivered", "held")),
            readable_dead(),
            # Tried by an attempt that did not certainly send nothing, or handed out: the stored
            # marker may_have_reached reads (a withholding turn, a refused connection set none).
            OutboxMessage.maybe_reached.is_(True),
        )
    )
    return or_(
        RecordShare.decided_by == RecordShare.agency_id,
        ~announcing.exists(),
        reached.exists(),
    )


#: Children weighed at once by :func:`readable_candidates`.
WEIGH_BATCH = MAX_CANDIDATES


class _StatedBy:
    """Whether a record the caller may read states a match (bodies decrypted only when the
    child also has records the caller may not read, and then only the readable ones)."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self._identifiers: dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]] = {}

    def by_readable_record(self, known: KnownChild, stated: Statement | None) -> bool:
        records = {record.id: record for record in known.child.records}
        readable = [records[record_id] for record_id in sorted(known.readable)]
        if stated is None or not readable:
            return False
        if stated.kind == "profile":
            return any(self._names(record, stated.agency_id, stated.value) for record in readable)
        if stated.kind == "local_id":
            return any(self._names(record, stated.agency_id, stated.value) for record in readable)
        if len(readable) == len(records):
            return True  # every record of the child is readable: whichever states it
        return any(self._states(record, stated) for record in readable)

    def _names(self, record: Any, agency_id: str, local_id: str) -> bool:
        """Whether the push of ``agency_id`` under ``local_id`` is ``record``."""
        if (record.source_agency, record.local_id) == (agency_id, local_id):
            return True
        return record_named(self.session, agency_id, local_id) == record.id

    def _states(self, record: Any, stated: Statement) -> bool:
        found = self._identifiers.get(record.id)
        if found is None:
            body = latest_body(self.session, data_keyring(), record)
            data = body.data if isinstance(body.data, Mapping) else {}
            personal, searchable = identifiers_in(
                child_part(data), agency_id=body.version.pushed_by
            )
            found = self._identifiers[record.id] = (set(personal), set(searchable))
        personal, searchable = found
        return (stated.kind, stated.value) in (personal | searchable)
