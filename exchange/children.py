"""The child index: hub-issued pseudonymous ``child_id``s and the identifiers that link to them.

An agency's local id for a child, and CURP or UNHCR individual numbers where they exist, link
to one ``child_id`` (:func:`link_child`, called on every push). A national identifier names
one person, so a new local id carrying a known CURP or UNHCR number joins that child — unless
the agency says otherwise (its own earlier link, or an explicit ``child_id``): then the
agency's link is kept and a "conflict" :class:`ChildDuplicateSuggestion` is left for a person.
UNHCR and COMAR *case* numbers may cover a whole family (siblings share them), so they are kept
as searchable :class:`ChildCaseNumber` rows and never decide which child a record is about.

Modules of the child index: this one (tables, lookups, ``link_child``),
:mod:`exchange.child_linking` (linking pushed records, also in batches),
:mod:`exchange.child_matching` (normalising and scoring identity data, pure),
:mod:`exchange.child_search` (``POST /v1/children/search``) and
:mod:`exchange.child_duplicates` (probable duplicates, listed for a person, and the merge a
person decides — never automatic). Reads follow ``merged_into`` through
:func:`resolve_child_id`.
"""

from __future__ import annotations

import functools
import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from exchange.db import Base

CHILD_ID_PREFIX = "nna_"
#: Identifier types of ``child/1`` that name exactly one person, and the kind stored for them.
PERSONAL_IDENTIFIER_KINDS = {"curp": "curp", "unhcr_individual": "unhcr"}
#: Identifier types that name a case, which may cover several children of one family.
CASE_NUMBER_KINDS = frozenset({"unhcr_case", "comar_case"})


def _identifier_types() -> tuple[str, ...]:
    from schemas.registry import shipped_document

    identifier = shipped_document("common", 1)["$defs"]["identifier"]
    return tuple(identifier["properties"]["type"]["enum"])


#: Every identifier type a record's child may carry (``common/1#/$defs/identifier``).
IDENTIFIER_TYPES = _identifier_types()
#: Identifier types kept for search only: they never decide which child a record is about
#: (case numbers cover families; documents and the child's agency-local ids are the record's
#: statement, which nothing checks names one child). Stored as ``child_case_number`` rows of
#: that kind, so a search finds every child a record says carries the value.
SEARCH_ONLY_IDENTIFIER_TYPES = frozenset(IDENTIFIER_TYPES) - PERSONAL_IDENTIFIER_KINDS.keys()
#: Merges are flattened, so a chain is at most one hop; this only guards against a cycle.
MAX_MERGE_HOPS = 20


def new_child_id() -> str:
    # Random, so the id reveals nothing (not the order of arrival, not the agency).
    return CHILD_ID_PREFIX + secrets.token_hex(10)


class Child(Base):
    __tablename__ = "child"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: Set when a person merged this child into another; reads follow it.
    merged_into: Mapped[str | None] = mapped_column(
        ForeignKey("child.id"), nullable=True, index=True
    )
    merged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    merge_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class ChildIdentifier(Base):
    """An identifier linking to one child: ``agency_local`` (scoped by agency), ``curp``,
    ``unhcr`` (a UNHCR individual number)."""

    __tablename__ = "child_identifier"
    __table_args__ = (UniqueConstraint("kind", "scope", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    #: The agency for agency-local ids, "" for national identifiers.
    scope: Mapped[str] = mapped_column(String(100), default="")
    value: Mapped[str] = mapped_column(String(200))


class ChildCaseNumber(Base):
    """A UNHCR or COMAR case number on a child's record; siblings may share one."""

    __tablename__ = "child_case_number"
    __table_args__ = (
        UniqueConstraint("child_id", "kind", "value"),
        Index("ix_child_case_number_lookup", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(200))


class ChildProfile(Base):
    """What matching needs about a child, as one source record (agency, local id) states it.

    Identity-category data only (normalised name tokens, birth window, sex, nationalities) —
    no case content; rewritten on each push of the source record.
    """

    __tablename__ = "child_profile"
    __table_args__ = (UniqueConstraint("agency_id", "local_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    agency_id: Mapped[str] = mapped_column(String(100))
    local_id: Mapped[str] = mapped_column(String(200))
    #: Normalised tokens, space-separated (see exchange.child_matching.name_tokens).
    given_names: Mapped[str] = mapped_column(String(300), default="")
    surnames: Mapped[str] = mapped_column(String(300), default="")
    alias: Mapped[str] = mapped_column(String(300), default="")
    birth_earliest: Mapped[date | None] = mapped_column(Date, nullable=True)
    birth_latest: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: Set when the date of birth is known, not estimated.
    birth_exact: Mapped[date | None] = mapped_column(Date, nullable=True)
    sex: Mapped[str | None] = mapped_column(String(10), nullable=True)
    #: ISO 3166-1 codes, space-separated, "XX" left out.
    nationalities: Mapped[str] = mapped_column(String(30), default="")
    #: The CURP and UNHCR individual numbers the record states, ``kind:value``, space-separated
    #: (NULL: written before this was kept): an identifier no record states stops linking.
    identifiers: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


#: Birth years stored for a profile whose date of birth is unknown: it overlaps every range.
UNKNOWN_YEAR_FROM, UNKNOWN_YEAR_TO = 0, 9999


class ChildNameKey(Base):
    """The index a search uses: one row per (profile, name sound key), with the birth years
    the profile allows, so ``key IN (...) AND birth years overlap`` is one index range scan
    (see exchange.child_search)."""

    __tablename__ = "child_name_key"
    __table_args__ = (Index("ix_child_name_key_lookup", "key", "birth_year_to", "birth_year_from"),)

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("child_profile.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    birth_year_from: Mapped[int] = mapped_column(Integer)
    birth_year_to: Mapped[int] = mapped_column(Integer)


class ChildDuplicateSuggestion(Base):
    """Two children a person should look at: ``conflict`` when a push's identifiers pointed at
    another child than the agency's link. Resolved by a merge; never acted on automatically."""

    __tablename__ = "child_duplicate_suggestion"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    other_child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), index=True)
    reason: Mapped[str] = mapped_column(String(20))
    #: Which identifier disagreed: agency_local, curp, unhcr.
    identifier_kind: Mapped[str] = mapped_column(String(20))
    agency_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ChildDistinctPair(Base):
    """Two children a person found to be different people ("not the same child").

    The pair is kept in id order (``child_id`` < ``other_child_id``). It is never listed as a
    probable duplicate again, its open conflict suggestions are resolved, and a merge of the
    two is refused until the record is withdrawn (``puente children distinct --withdraw``).
    """

    __tablename__ = "child_distinct_pair"

    child_id: Mapped[str] = mapped_column(ForeignKey("child.id"), primary_key=True)
    other_child_id: Mapped[str] = mapped_column(
        ForeignKey("child.id"), primary_key=True, index=True
    )
    #: The person who decided, and why (free text stays here, never in the audit log).
    decided_by: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(String(500))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- lookups ----------------------------------------------------------------------------------


def normalize_identifier(value: str) -> str:
    """CURP and UNHCR/COMAR numbers compare upper case, without spaces."""
    return "".join(value.split()).upper()


def find_by_identifier(session: Session, kind: str, value: str, scope: str = "") -> str | None:
    return session.scalars(
        select(ChildIdentifier.child_id).where(
            ChildIdentifier.kind == kind,
            ChildIdentifier.scope == scope,
            ChildIdentifier.value == value,
        )
    ).first()


def resolve_child_id(session: Session, child_id: str) -> str:
    """The child ``child_id`` now is: itself, or the child it was merged into.

    Raises ``LookupError`` for an unknown child id.
    """
    current = child_id
    connection = session.connection()
    for _ in range(MAX_MERGE_HOPS):
        row = connection.execute(_merge_target_statement(), {"id": current}).first()
        if row is None:
            raise LookupError(child_id)
        if row[0] is None:
            return current
        current = row[0]
    raise RuntimeError(f"merge chain from {child_id} does not end")


@functools.cache
def _merge_target_statement() -> Any:
    return select(Child.merged_into).where(Child.id == bindparam("id"))


def merged_child_ids(session: Session, child_id: str) -> list[str]:
    """``child_id`` resolved, then every child merged into it: the ids its records may carry.

    Runs on every read of a child's data, and merges are rare: one statement answers for a
    child that was neither merged nor merged into (:func:`_unmerged_statement`); the others
    follow the chain as before."""
    connection = session.connection()
    row = connection.execute(_unmerged_statement(), {"id": child_id}).first()
    if row is None:
        raise LookupError(child_id)
    if row[0] is None and not row[1]:
        return [child_id]
    survivor = resolve_child_id(session, child_id)
    found, frontier = [survivor], [survivor]
    while frontier:
        frontier = list(connection.execute(_merged_into_statement(), {"ids": frontier}).scalars())
        found.extend(frontier)
    return found


@functools.cache
def _unmerged_statement() -> Any:
    # The child's merge target and whether any child was merged into it, in one round trip.
    merged = aliased(Child)
    into_it = select(merged.id).where(merged.merged_into == Child.id).exists()
    return select(Child.merged_into, into_it).where(Child.id == bindparam("id"))


@functools.cache
def _merged_into_statement() -> Any:
    # Built once: this runs on every read of a child's data.
    return select(Child.id).where(Child.merged_into.in_(bindparam("ids", expanding=True)))


# -- linking a pushed record (exchange.child_linking does the work) ---------------------------


def link_child(
    session: Session,
    *,
    agency_id: str,
    local_id: str,
    child_id: str | None,
    document: dict[str, Any],
) -> str:
    """The ``child_id`` a pushed record belongs to, creating the child if it is new.

    Order: the child id the agency sent (must exist; a merged child resolves to the child it
    was merged into), the agency's earlier link for this local id, the child a CURP or UNHCR
    individual number of the record already names, then a new child. An identifier naming
    another child stays where it is and leaves a conflict suggestion. Raises ``LookupError``
    for an unknown ``child_id``. For many records at once use
    :func:`exchange.child_linking.link_children` (a few statements per batch).

    A concurrent push that linked one of the same identifiers first makes the insert fail
    with ``IntegrityError``: roll back and retry (the retry sees the committed link).
    """
    from exchange.child_linking import LinkRequest, link_children

    [linked] = link_children(
        session, agency_id=agency_id, requests=[LinkRequest(local_id, child_id, document)]
    )
    if isinstance(linked, LookupError):
        raise linked
    return linked
