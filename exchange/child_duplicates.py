"""Probable duplicate children, listed for a person, and the merge that person decides.

Nothing here runs on its own: :func:`probable_duplicates` lists pairs (``puente children
duplicates``) and :func:`merge_children` merges one pair when a person says so (``puente
children merge A B``). A merge is recorded in the audit log and can be followed by every read
(:func:`exchange.children.resolve_child_id`).

Listing compares profiles in blocks (:func:`exchange.child_matching.duplicate_block_keys`:
children whose given name and surname sound alike and, at the default threshold, who share a
birth year or an exact birthday), and inside a block only profiles whose birth windows come
within two years — never every pair of children. Only pairs at or above the threshold are
kept in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from exchange.audit_log import record_event
from exchange.auth import as_utc, utcnow
from exchange.child_matching import (
    DUPLICATE_MIN_SCORE,
    YEAR_BLOCKING_MIN_SCORE,
    IdentityProfile,
    Match,
    duplicate_block_keys,
    score_match,
    within_edits,
)
from exchange.child_search import PROFILE_COLUMNS, profile_of
from exchange.children import (
    Child,
    ChildCaseNumber,
    ChildDistinctPair,
    ChildDuplicateSuggestion,
    ChildIdentifier,
    ChildProfile,
)
from exchange.people import Person

#: Birth windows further apart than this cannot score as duplicates (see child_matching).
BIRTH_REACH = timedelta(days=731)


@dataclass(frozen=True)
class DuplicatePair:
    child_id: str
    other_child_id: str
    score: float | None
    reason: str  # "probable" (profiles alike) or "conflict" (identifiers disagreed)
    matched_on: tuple[str, ...] = ()
    identifier_kind: str | None = None
    #: Whom to ask about each child: the agencies responsible for its records now (a transfer
    #: moves that; a merged child's records count for the child it was merged into) and those
    #: whose pushes its index entries come from.
    agencies: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    #: Of those, the agencies responsible for each child's records now.
    responsible: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    #: For a conflict: the agency whose push raised it, and when.
    raised_by: str | None = None
    raised_at: datetime | None = None
    #: Identifiers naming one person that the two children both hold, with no value in
    #: common (``curp``, ``unhcr``): most likely two people; a merge needs ``--force``.
    identifier_conflicts: tuple[str, ...] = ()
    #: Of those, the kinds whose values are a typo apart (``curp``: :func:`near_identifiers`):
    #: shown, not counted against the pair.
    identifier_near: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "child_id": self.child_id,
            "other_child_id": self.other_child_id,
            "score": self.score,
            "reason": self.reason,
            "matched_on": list(self.matched_on),
            "identifier_kind": self.identifier_kind,
            "agencies": [list(self.agencies[0]), list(self.agencies[1])],
            "responsible": [list(self.responsible[0]), list(self.responsible[1])],
            "raised_by": self.raised_by,
            "raised_at": as_utc(self.raised_at).isoformat() if self.raised_at else None,
            "identifier_conflicts": list(self.identifier_conflicts),
            "identifier_near": list(self.identifier_near),
        }


def _active_profiles(session: Session) -> list[tuple[str, IdentityProfile]]:
    rows = session.execute(select(*PROFILE_COLUMNS).order_by(ChildProfile.id))
    return [(row.child_id, profile_of(row)) for row in rows]


def _compare_block(
    members: list[tuple[str, IdentityProfile]],
    best: dict[tuple[str, str], Match],
    min_score: float,
) -> None:
    def keep(a: tuple[str, IdentityProfile], b: tuple[str, IdentityProfile]) -> None:
        if a[0] == b[0]:
            return
        pair = (a[0], b[0]) if a[0] < b[0] else (b[0], a[0])
        match = score_match(a[1], b[1])
        if match.score >= min_score and (pair not in best or match.score > best[pair].score):
            best[pair] = match

    dated = sorted((m for m in members if m[1].birth), key=_earliest)
    undated = [m for m in members if not m[1].birth]
    for i, left in enumerate(dated):
        for right in dated[i + 1 :]:
            if _earliest(right) > _latest(left) + BIRTH_REACH:
                break  # sorted by earliest: every later one is further still
            keep(left, right)
    for i, left in enumerate(undated):
        for right in undated[i + 1 :] + dated:
            keep(left, right)


def _earliest(member: tuple[str, IdentityProfile]) -> date:
    return member[1].birth.earliest  # type: ignore[union-attr]


def _latest(member: tuple[str, IdentityProfile]) -> date:
    return member[1].birth.latest  # type: ignore[union-attr]


def probable_pairs(
    profiles: list[tuple[str, IdentityProfile]], min_score: float
) -> dict[tuple[str, str], Match]:
    """(child, other child) -> their best match, for pairs of different children scoring at
    least ``min_score``, comparing only profiles that share a block."""
    by_year = min_score >= YEAR_BLOCKING_MIN_SCORE
    blocks: dict[tuple[str, ...], list[tuple[str, IdentityProfile]]] = defaultdict(list)
    for child_id, profile in profiles:
        for key in duplicate_block_keys(profile, by_year=by_year):
            blocks[key].append((child_id, profile))
    best: dict[tuple[str, str], Match] = {}
    for members in blocks.values():
        if len(members) > 1:
            _compare_block(members, best, min_score)
    return best


def probable_duplicates(
    session: Session, min_score: float = DUPLICATE_MIN_SCORE
) -> list[DuplicatePair]:
    """Open identifier conflicts first, then pairs scoring at least ``min_score``, best first."""
    profiles = _active_profiles(session)
    by_child: dict[str, list[IdentityProfile]] = defaultdict(list)
    for child_id, profile in profiles:
        by_child[child_id].append(profile)
    best = probable_pairs(profiles, min_score)

    pairs: list[DuplicatePair] = []
    # Pairs a person already found to be different people are never listed again.
    listed: set[tuple[str, str]] = distinct_pairs(session)
    for suggestion in _open_conflicts(session):
        a, b = sorted((suggestion.child_id, suggestion.other_child_id))
        if (a, b) in listed:
            continue
        listed.add((a, b))
        match = _best_between(by_child[a], by_child[b])
        pairs.append(
            DuplicatePair(
                a,
                b,
                match.score if match else None,
                "conflict",
                match.matched_on if match else (),
                suggestion.identifier_kind,
                raised_by=suggestion.agency_id,
                raised_at=suggestion.created_at,
            )
        )
    # Children holding different CURPs or UNHCR individual numbers are most likely two
    # people, however alike their profiles: the pair is marked and scores less — unless the
    # CURPs are a typo apart (one child's CURP mistyped), which is named but costs nothing.
    held = personal_identifiers(
        session,
        {c for pair in best for c in pair}
        | {c for pair in pairs for c in (pair.child_id, pair.other_child_id)},
    )
    probable = []
    for (a, b), match in best.items():
        conflicts, near = _unlike_identifiers(held, a, b)
        score = match.score * (IDENTIFIER_CONFLICT_FACTOR if conflicts else 1)
        if (a, b) not in listed and score >= min_score:
            probable.append(
                DuplicatePair(
                    a,
                    b,
                    score,
                    "probable",
                    match.matched_on,
                    identifier_conflicts=conflicts,
                    identifier_near=near,
                )
            )
    for index, pair in enumerate(pairs):
        conflicts, near = _unlike_identifiers(held, pair.child_id, pair.other_child_id)
        pairs[index] = replace(pair, identifier_conflicts=conflicts, identifier_near=near)
    probable.sort(key=lambda p: (-(p.score or 0), p.child_id, p.other_child_id))
    return _with_agencies(session, pairs + probable)


def _with_agencies(session: Session, pairs: list[DuplicatePair]) -> list[DuplicatePair]:
    """Each pair with whom to ask about each child (:attr:`DuplicatePair.agencies`): the
    agencies responsible for its records now, and those whose records its profiles come from
    — the source of a record it has since transferred may no longer answer for the case."""
    from exchange.records import Record

    children = {c for pair in pairs for c in (pair.child_id, pair.other_child_id)}
    sources: dict[str, set[str]] = defaultdict(set)
    owners: dict[str, set[str]] = defaultdict(set)
    for part in _chunks(sorted(children)):
        rows = session.execute(
            select(ChildProfile.child_id, ChildProfile.agency_id).where(
                ChildProfile.child_id.in_(part)
            )
        )
        for child_id, agency_id in rows:
            sources[child_id].add(agency_id)
        # Records keep the id of a child merged since: theirs are the survivor's.
        held = session.execute(
            select(func.coalesce(Child.merged_into, Child.id), Record.owner_agency)
            .join(Record, Record.child_id == Child.id)
            .where(or_(Child.id.in_(part), Child.merged_into.in_(part)))
        )
        for child_id, agency_id in held:
            owners[child_id].add(agency_id)

    def sides(
        found: dict[str, set[str]], pair: DuplicatePair
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(sorted(found[pair.child_id])), tuple(sorted(found[pair.other_child_id]))

    both = {c: sources[c] | owners[c] for c in children}
    return [
        replace(pair, agencies=sides(both, pair), responsible=sides(owners, pair)) for pair in pairs
    ]


def _chunks(values: list[str], size: int = 1000) -> list[list[str]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


def _best_between(left: list[IdentityProfile], right: list[IdentityProfile]) -> Match | None:
    matches = [score_match(a, b) for a in left for b in right]
    return max(matches, key=lambda m: m.score) if matches else None


def _open_conflicts(session: Session) -> list[ChildDuplicateSuggestion]:
    merged = select(Child.id).where(Child.merged_into.is_not(None))
    return list(
        session.scalars(
            select(ChildDuplicateSuggestion)
            .where(
                ChildDuplicateSuggestion.resolved_at.is_(None),
                ChildDuplicateSuggestion.child_id.not_in(merged),
                ChildDuplicateSuggestion.other_child_id.not_in(merged),
            )
            .order_by(ChildDuplicateSuggestion.id)
        )
    )


# -- merging ----------------------------------------------------------------------------------


class PairRefused(ValueError):
    """A decision about two children that would be wrong; says why in Spanish and English."""

    def __init__(self, message_es: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_es = message_es
        self.message_en = message_en


class MergeRefused(PairRefused):
    """A merge a person asked for that would be wrong."""


@dataclass(frozen=True)
class MergeResult:
    child_id: str
    merged_child_id: str
    already_merged: bool
    identifiers_moved: int = 0
    profiles_moved: int = 0
    audit_entry: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "child_id": self.child_id,
            "merged_child_id": self.merged_child_id,
            "already_merged": self.already_merged,
            "identifiers_moved": self.identifiers_moved,
            "profiles_moved": self.profiles_moved,
            "audit_entry": self.audit_entry,
        }


class MergeConflicts(MergeRefused):
    """The children's records cannot be of one child (:func:`merge_conflicts`); a person who
    knows better merges with ``check_conflicts=False`` (``--force``)."""

    def __init__(self, into: str, merged: str, conflicts: list[tuple[str, str]]) -> None:
        listed_es = "; ".join(es for es, _ in conflicts)
        listed_en = "; ".join(en for _, en in conflicts)
        super().__init__(
            f"Los expedientes de {into} y {merged} no pueden ser de la misma NNA ({listed_es}). "
            "Revíselos; si aun así es la misma (un expediente equivocado), repita con --force. "
            "Nada se fusionó.",
            f"The records of {into} and {merged} cannot be of one child ({listed_en}). Check "
            "them; if it is one child all the same (a record is mistaken), run again with "
            "--force. Nothing was merged.",
        )
        self.conflicts = conflicts


#: Identifiers that name one person (``child_identifier`` kinds, any scope): two children
#: each holding one of a kind, and none in common, are two people.
PERSONAL_KINDS = ("curp", "unhcr")
#: How a merge refusal names an identifier conflict — never the values, which the refusal
#: would otherwise print to a terminal and a shell history.
IDENTIFIER_CONFLICT_WORDS = {
    "curp": ("CURP distintas", "different CURPs"),
    "unhcr": ("números individuales ACNUR distintos", "different UNHCR individual numbers"),
}
#: A probable duplicate whose children hold different CURPs or UNHCR individual numbers
#: scores this much of its profiles' score (as a contradicting sex does in child_matching).
IDENTIFIER_CONFLICT_FACTOR = 0.5


def personal_identifiers(
    session: Session, child_ids: Iterable[str]
) -> dict[str, dict[str, set[str]]]:
    """child -> identifier kind (:data:`PERSONAL_KINDS`) -> the values it holds."""
    held: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for part in _chunks(sorted(set(child_ids))):
        for child_id, kind, value in session.execute(
            select(ChildIdentifier.child_id, ChildIdentifier.kind, ChildIdentifier.value).where(
                ChildIdentifier.child_id.in_(part), ChildIdentifier.kind.in_(PERSONAL_KINDS)
            )
        ):
            held[child_id][kind].add(value)
    return held


def conflicting_identifiers(
    held: dict[str, dict[str, set[str]]], child_id: str, other_child_id: str
) -> tuple[str, ...]:
    """The kinds of :data:`PERSONAL_KINDS` both children hold with no value in common."""
    one, other = held.get(child_id, {}), held.get(other_child_id, {})
    return tuple(
        kind
        for kind in PERSONAL_KINDS
        if one.get(kind) and other.get(kind) and not one[kind] & other[kind]
    )


#: Identifier kinds whose values, of one length and at most this many edits apart (replaced or
#: swapped characters), are taken for a typo rather than another person in the duplicates list.
NEAR_IDENTIFIER_EDITS = {"curp": 2}


def near_identifiers(kind: str, one: Iterable[str], other: Iterable[str]) -> bool:
    """Whether a value of ``one`` and one of ``other`` may be one identifier mistyped."""
    most, others = NEAR_IDENTIFIER_EDITS.get(kind), list(other)
    return most is not None and any(
        len(a) == len(b) and within_edits(a, b, most) for a in one for b in others
    )


def _unlike_identifiers(
    held: dict[str, dict[str, set[str]]], child_id: str, other_child_id: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(conflicting kinds, kinds near): of :func:`conflicting_identifiers`, the kinds whose
    values are not near (:func:`near_identifiers`), and those that are."""
    kinds = conflicting_identifiers(held, child_id, other_child_id)
    one, other = held.get(child_id, {}), held.get(other_child_id, {})
    near = tuple(kind for kind in kinds if near_identifiers(kind, one[kind], other[kind]))
    return tuple(kind for kind in kinds if kind not in near), near


def merge_conflicts(session: Session, into: str, merged: str) -> list[tuple[str, str]]:
    """What the two children's records say that cannot both be true of one child, in Spanish
    and English: different CURPs or UNHCR individual numbers (none in common; the values are
    not named), every sex stated differs, no nationality in common, or dates of birth more
    than a year apart. A person may still know better (a record mistaken about the sex); the
    command line asks for ``--force`` then, because a wrong merge shows one child's records as
    another's."""
    held = personal_identifiers(session, [into, merged])
    found = [IDENTIFIER_CONFLICT_WORDS[k] for k in conflicting_identifiers(held, into, merged)]
    profiles: dict[str, list[ChildProfile]] = {into: [], merged: []}
    for profile in session.scalars(
        select(ChildProfile).where(ChildProfile.child_id.in_([into, merged]))
    ):
        profiles[profile.child_id].append(profile)
    if not profiles[into] or not profiles[merged]:
        return found

    def stated(child_id: str, attribute: Callable[[ChildProfile], Iterable[str]]) -> set[str]:
        return {value for profile in profiles[child_id] for value in attribute(profile) if value}

    def sexes(profile: ChildProfile) -> Iterable[str]:
        return [profile.sex] if profile.sex in ("male", "female") else []

    def nationalities(profile: ChildProfile) -> Iterable[str]:
        return profile.nationalities.split()

    for name_es, name_en, attribute in (
        ("sexo", "sex", sexes),
        ("nacionalidades", "nationalities", nationalities),
    ):
        one, other = stated(into, attribute), stated(merged, attribute)
        if one and other and not one & other:
            shown = f"{'/'.join(sorted(one))} ≠ {'/'.join(sorted(other))}"
            found.append((f"{name_es}: {shown}", f"{name_en}: {shown}"))
    windows = {
        child_id: [
            (profile.birth_earliest, profile.birth_latest)
            for profile in profiles[child_id]
            if profile.birth_earliest is not None and profile.birth_latest is not None
        ]
        for child_id in (into, merged)
    }
    if windows[into] and windows[merged]:
        year = timedelta(days=366)
        apart = all(
            a_end + year < b_start or b_end + year < a_start
            for a_start, a_end in windows[into]
            for b_start, b_end in windows[merged]
        )
        if apart:
            shown = (
                f"{min(s for s, _ in windows[into]):%Y}–{max(e for _, e in windows[into]):%Y} ≠ "
                f"{min(s for s, _ in windows[merged]):%Y}–{max(e for _, e in windows[merged]):%Y}"
            )
            found.append(
                (f"nacimiento a más de un año: {shown}", f"births over a year apart: {shown}")
            )
    return found


def merge_children(
    session: Session,
    into: str,
    merged: str,
    *,
    reason: str | None = None,
    actor_person: str | None = None,
    actor_role: str = "administrator",
    check_conflicts: bool = False,
) -> MergeResult:
    """Merge child ``merged`` into child ``into``: its identifiers, profiles and case numbers
    move, it keeps ``merged_into`` so its records and old links resolve to ``into``.

    Asking again for a merge already done answers ``already_merged`` and changes nothing.
    Raises ``LookupError`` for an unknown child and :class:`MergeRefused` for a child merged
    into itself, into a merged child, or already merged elsewhere, for a pair recorded as
    different people, and (``check_conflicts``) :class:`MergeConflicts` for children whose
    records cannot be of one child. The caller commits.
    """
    if into == merged:
        raise MergeRefused(
            f"No se puede fusionar {into} consigo mismo.", f"Cannot merge {into} into itself."
        )
    # Locked in id order, so two merges of the same pair cannot deadlock (PostgreSQL).
    children = {
        child.id: child
        for child in session.scalars(
            select(Child).where(Child.id.in_([into, merged])).order_by(Child.id).with_for_update()
        )
    }
    for child_id in (into, merged):
        if child_id not in children:
            raise LookupError(child_id)
    survivor, absorbed = children[into], children[merged]
    if absorbed.merged_into == into:
        return MergeResult(into, merged, already_merged=True)
    if absorbed.merged_into is not None:
        raise MergeRefused(
            f"{merged} ya fue fusionado en {absorbed.merged_into}.",
            f"{merged} was already merged into {absorbed.merged_into}.",
        )
    if survivor.merged_into == merged:
        raise MergeRefused(
            f"{into} ya fue fusionado en {merged}: ya son la misma NNA, nada que fusionar.",
            f"{into} was already merged into {merged}: they are one child already; nothing "
            "to merge.",
        )
    if survivor.merged_into is not None:
        raise MergeRefused(
            f"{into} fue fusionado en {survivor.merged_into}; fusione en ese.",
            f"{into} was merged into {survivor.merged_into}; merge into that one.",
        )
    distinct = session.get(ChildDistinctPair, _ordered(into, merged))
    if distinct is not None:
        raise MergeRefused(
            f"{distinct.decided_by} registró el {distinct.decided_at:%Y-%m-%d} que {into} y "
            f"{merged} son personas distintas; si fue un error, retire ese registro con "
            f"«puente children distinct {into} {merged} --withdraw» y fusione después.",
            f"{distinct.decided_by} recorded on {distinct.decided_at:%Y-%m-%d} that {into} and "
            f"{merged} are different people; if that was a mistake, withdraw it with "
            f"'puente children distinct {into} {merged} --withdraw', then merge.",
        )
    conflicts = merge_conflicts(session, into, merged) if check_conflicts else []
    if conflicts:
        raise MergeConflicts(into, merged, conflicts)

    identifiers = session.execute(
        update(ChildIdentifier).where(ChildIdentifier.child_id == merged).values(child_id=into)
    ).rowcount  # type: ignore[attr-defined]
    profiles = session.execute(
        update(ChildProfile).where(ChildProfile.child_id == merged).values(child_id=into)
    ).rowcount  # type: ignore[attr-defined]
    # A case number both children carry is kept once (unique per child, kind and value).
    survivor_cases = set(
        session.execute(
            select(ChildCaseNumber.kind, ChildCaseNumber.value).where(
                ChildCaseNumber.child_id == into
            )
        )
    )
    shared_cases = [
        case_id
        for case_id, kind, value in session.execute(
            select(ChildCaseNumber.id, ChildCaseNumber.kind, ChildCaseNumber.value).where(
                ChildCaseNumber.child_id == merged
            )
        )
        if (kind, value) in survivor_cases
    ]
    if shared_cases:
        session.execute(delete(ChildCaseNumber).where(ChildCaseNumber.id.in_(shared_cases)))
    session.execute(
        update(ChildCaseNumber).where(ChildCaseNumber.child_id == merged).values(child_id=into)
    )
    # Earlier merges into the absorbed child now point straight at the survivor (one hop).
    session.execute(update(Child).where(Child.merged_into == merged).values(merged_into=into))
    _carry_suggestions(session, into, merged)
    absorbed.merged_into = into
    absorbed.merged_at = utcnow()
    absorbed.merge_reason = (reason or "")[:500] or None
    session.flush()
    entry = record_event(
        session,
        action="child.merged",
        outcome="success",
        actor_agency=_agency_of(session, actor_person),
        actor_person=actor_person,
        actor_role=actor_role,
        child_id=into,
        # Audit entries hold codes, not free text: the reason stays on the child row.
        detail=f"merged_{merged}",
    )
    return MergeResult(into, merged, False, identifiers, profiles, entry)


def _agency_of(session: Session, person_id: str | None) -> str | None:
    """The agency of the registered person who decides, which the log names with them as it
    does for every person's entry, so oversight finds the agency's acts by its id."""
    person = session.get(Person, person_id) if person_id is not None else None
    return person.agency_id if person is not None else None


def _carry_suggestions(session: Session, into: str, merged: str) -> None:
    """The pair's suggestions are resolved; the absorbed child's others now name the survivor."""
    now = utcnow()
    open_ = ChildDuplicateSuggestion.resolved_at.is_(None)
    S = ChildDuplicateSuggestion
    session.execute(
        update(S)
        .where(
            open_,
            or_(
                and_(S.child_id == into, S.other_child_id == merged),
                and_(S.child_id == merged, S.other_child_id == into),
            ),
        )
        .values(resolved_at=now)
    )
    session.execute(update(S).where(open_, S.child_id == merged).values(child_id=into))
    session.execute(update(S).where(open_, S.other_child_id == merged).values(other_child_id=into))
    _carry_distinct_pairs(session, into, merged)


def _carry_distinct_pairs(session: Session, into: str, merged: str) -> None:
    """What a person said of the absorbed child ("not the same child as X") now holds for the
    survivor, so X is not suggested again as the survivor's duplicate."""
    D = ChildDistinctPair
    for pair in session.scalars(
        select(D).where(or_(D.child_id == merged, D.other_child_id == merged))
    ).all():
        other = pair.other_child_id if pair.child_id == merged else pair.child_id
        key = _ordered(into, other)
        if other != into and session.get(D, key) is None:
            session.add(
                D(
                    child_id=key[0],
                    other_child_id=key[1],
                    decided_by=pair.decided_by,
                    reason=pair.reason,
                    decided_at=pair.decided_at,
                )
            )
        session.delete(pair)
    session.flush()


# -- "not the same child" ---------------------------------------------------------------------


def _ordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def distinct_pairs(session: Session) -> set[tuple[str, str]]:
    """Every pair a person recorded as different people, in id order."""
    return {
        (a, b)
        for a, b in session.execute(
            select(ChildDistinctPair.child_id, ChildDistinctPair.other_child_id)
        )
    }


@dataclass(frozen=True)
class DistinctResult:
    child_id: str
    other_child_id: str
    #: Recorded before (or, for a withdrawal, not recorded): nothing changed.
    unchanged: bool
    withdrawn: bool = False
    suggestions_resolved: int = 0
    audit_entry: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "child_id": self.child_id,
            "other_child_id": self.other_child_id,
            "distinct": not self.withdrawn,
            "unchanged": self.unchanged,
            "suggestions_resolved": self.suggestions_resolved,
            "audit_entry": self.audit_entry,
        }


def _current_pair(session: Session, a: str, b: str) -> tuple[str, str]:
    """``(a, b)`` in id order, both existing and not merged into another child."""
    if a == b:
        raise PairRefused(
            f"{a} es la misma NNA; indique dos distintas.",
            f"{a} is one child; name two different ones.",
        )
    children = {c.id: c for c in session.scalars(select(Child).where(Child.id.in_([a, b])))}
    for child_id in (a, b):
        child = children.get(child_id)
        if child is None:
            raise LookupError(child_id)
        if child.merged_into is not None:
            raise PairRefused(
                f"{child_id} fue fusionado en {child.merged_into}; use ese identificador.",
                f"{child_id} was merged into {child.merged_into}; use that id.",
            )
    return _ordered(a, b)


def record_distinct(
    session: Session,
    a: str,
    b: str,
    *,
    reason: str,
    actor_person: str,
    actor_role: str = "administrator",
) -> DistinctResult:
    """Record that children ``a`` and ``b`` are different people: the pair is not listed as
    duplicates again, its open conflict suggestions are resolved, a merge of it is refused.

    Recording it again changes nothing (``unchanged``). Raises ``LookupError`` for an unknown
    child and :class:`PairRefused` for one child twice or a merged child. The caller commits.
    """
    first, second = _current_pair(session, a, b)
    if session.get(ChildDistinctPair, (first, second)) is not None:
        return DistinctResult(first, second, unchanged=True)
    session.add(
        ChildDistinctPair(
            child_id=first,
            other_child_id=second,
            decided_by=actor_person,
            reason=reason[:500],
            decided_at=utcnow(),
        )
    )
    S = ChildDuplicateSuggestion
    resolved = session.execute(
        update(S)
        .where(
            S.resolved_at.is_(None),
            or_(
                and_(S.child_id == first, S.other_child_id == second),
                and_(S.child_id == second, S.other_child_id == first),
            ),
        )
        .values(resolved_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    entry = _audit_pair(session, "child.distinct_recorded", first, second, actor_person, actor_role)
    return DistinctResult(first, second, False, suggestions_resolved=resolved, audit_entry=entry)


def withdraw_distinct(
    session: Session,
    a: str,
    b: str,
    *,
    actor_person: str,
    actor_role: str = "administrator",
) -> DistinctResult:
    """Withdraw a "not the same child" record (it was a mistake): the pair may be listed and
    merged again. Withdrawing a pair not recorded changes nothing (``unchanged``)."""
    first, second = _current_pair(session, a, b)
    pair = session.get(ChildDistinctPair, (first, second))
    if pair is None:
        return DistinctResult(first, second, unchanged=True, withdrawn=True)
    session.delete(pair)
    entry = _audit_pair(
        session, "child.distinct_withdrawn", first, second, actor_person, actor_role
    )
    return DistinctResult(first, second, False, withdrawn=True, audit_entry=entry)


def _audit_pair(
    session: Session, action: str, first: str, second: str, person: str, role: str
) -> str:
    session.flush()
    return record_event(
        session,
        action=action,
        outcome="success",
        actor_agency=_agency_of(session, person),
        actor_person=person,
        actor_role=role,
        child_id=first,
        # Audit entries hold codes, not free text: the reason stays on the pair's row.
        detail=f"distinct_from_{second}",
    )
