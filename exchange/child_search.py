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

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent import Decision
from exchange.auth import Actor
from exchange.child_linking import scoped_value
from exchange.child_matching import (
    SEARCH_MIN_SCORE,
    BirthWindow,
    IdentityProfile,
    query_keys,
    score_match,
)
from exchange.children import (
    IDENTIFIER_TYPES,
    SEARCH_ONLY_IDENTIFIER_TYPES,
    ChildCaseNumber,
    ChildNameKey,
    ChildProfile,
    find_by_identifier,
    normalize_identifier,
    resolve_child_id,
)
from exchange.crypto import DataKeyring
from exchange.disclosure import ChildContext, evaluate, load_child

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

    def to_json(self) -> dict[str, Any]:
        return {"child_id": self.child_id, "score": self.score, "matched_on": list(self.matched_on)}


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
    :data:`IDENTIFIER_SEARCH_KINDS`).

    ``curp`` and ``unhcr_individual`` find the child they link to (score 1); ``unhcr`` also
    every child of a UNHCR case number. Search-only types (case numbers, documents) find every
    child a record states it for (:data:`CASE_NUMBER_SCORE`). ``agency_local`` finds, for the
    calling agency only, the child of its record with that local id and every child whose
    record carries that agency-local identifier issued by the caller (score 1): another
    agency's local values never match.
    """
    found: list[Candidate] = []
    normalized = normalize_identifier(value)
    if kind == "agency_local":
        if agency_id is not None:
            child_id = find_by_identifier(session, "agency_local", value.strip(), agency_id)
            if child_id:
                found.append(Candidate(child_id, 1.0, ("agency_local",)))
            stated = _stated_children(session, "agency_local", scoped_value(agency_id, normalized))
            found.extend(Candidate(child_id, 1.0, ("agency_local",)) for child_id in stated)
    elif kind in _LINKING_KINDS:
        linking_kind = _LINKING_KINDS[kind]
        child_id = find_by_identifier(session, linking_kind, normalized)
        if child_id:
            found.append(Candidate(child_id, 1.0, (linking_kind,)))
        if agency_id is not None:
            # The caller's own child for an identifier another agency's child holds (see
            # exchange.child_linking.link_children).
            own = find_by_identifier(session, linking_kind, normalized, agency_id)
            if own:
                found.append(Candidate(own, 1.0, (linking_kind,)))
    for stored_kind in _SEARCH_ONLY_KINDS.get(kind, ()):
        found.extend(
            Candidate(child_id, CASE_NUMBER_SCORE, (stored_kind,))
            for child_id in _stated_children(session, stored_kind, normalized)
        )
    resolved = (
        Candidate(resolve_child_id(session, c.child_id), c.score, c.matched_on) for c in found
    )
    return _ranked(resolved, MAX_CANDIDATES)


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
    """Children whose profiles score at least ``min_score`` against ``query``, best first."""
    keys = sorted(query_keys(query))
    if not keys:
        return []
    shared = func.count().label("shared")
    pool = select(ChildNameKey.profile_id, shared).where(ChildNameKey.key.in_(keys))
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
    profile_ids = [profile_id for profile_id, _ in session.execute(pool)]
    if not profile_ids:
        return []
    # No join to ``child``: a merge moves profiles to the surviving child, so a profile never
    # names a merged child (and SQLite would plan the join as a scan of every child).
    rows = session.execute(select(*PROFILE_COLUMNS).where(ChildProfile.id.in_(profile_ids)))
    scored = []
    for row in rows:
        match = score_match(query, profile_of(row))
        if match.score >= min_score:
            scored.append(Candidate(row.child_id, match.score, match.matched_on))
    return _ranked(scored, limit)


# -- who may know of a child ------------------------------------------------------------------

#: What knowing of a child discloses: that this child is in the protection system.
KNOWING_CATEGORIES = frozenset({"identity"})


@dataclass(frozen=True)
class KnownChild:
    """A child the caller may know of: the child (after merges), the decision that lets the
    caller know of it, and whether the caller's agency holds one of the child's records."""

    child: ChildContext
    decision: Decision
    holds: bool


def children_known_to(
    session: Session,
    actor: Actor,
    purpose: str | None,
    child_ids: Iterable[str],
    *,
    keyring: DataKeyring | None = None,
) -> dict[str, KnownChild]:
    """Those of ``child_ids`` that ``actor`` may know exist, by the id asked for (a merged
    child's id counts as the child it was merged into); unknown ids and children the caller
    may not know of are left out alike, so a caller cannot tell them apart.

    A caller whose agency is responsible for one of the child's records (owns it) already
    knows the child, so, as for the originating agency reading its own record, only the hard
    rules limit the answer. An agency that holds a referral of one of them knows the child as
    far as reading that referral would show it: when the referral names ``identity`` (or every
    category) and the consent engine permits it for the referral (action ``refer``, its
    purpose) — a referral for health care alone does not let its holder confirm the child's
    name, date of birth or identifiers by searching. Anyone else — an agency or a person — may
    know of the child only when the consent engine permits ``identity`` to them for ``read``
    and ``purpose`` (consent, grant or override). The hard rules strip ``identity`` for
    ``statistics`` and for the ``oversight`` purpose or actor. Children come from
    :func:`~exchange.disclosure.load_child`'s per-child cache.

    Child search answers only these children; a push may name only these in ``child_id``.
    ``purpose`` None means any purpose: a push has none of its own, and an agency that may
    find a child for one purpose (COMAR for ``asylum_procedure``) must be able to link its
    record to that child rather than start a second one.
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
            )
        ):
            referrals.setdefault(record_id, []).append((referred_for, categories))
    engine_actor = actor.for_consent()
    known: dict[str, KnownChild] = {}
    for child_id, child in children.items():
        owns = system and any(record.owner_agency == actor.agency_id for record in child.records)
        asked = [("read", weighed) for weighed in ((purpose,) if purpose else purpose_codes())]
        if not owns:
            asked += [
                ("refer", referred_for)
                for record in child.records
                for referred_for, categories in referrals.get(record.id, ())
                if (purpose is None or referred_for == purpose)
                and (not categories or KNOWING_CATEGORIES <= set(categories))
            ]
        for action, weighed in asked:
            decision = evaluate(
                child,
                engine_actor,
                action,
                weighed,
                KNOWING_CATEGORIES,
                owner_agency_id=actor.agency_id if owns else None,
            )
            if KNOWING_CATEGORIES <= set(decision.categories):
                known[child_id] = KnownChild(child, decision, owns or action == "refer")
                break
    return known
