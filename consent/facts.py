"""What the engine must know about the child: age, accompaniment, protection status, custody.

The hub passes what it knows (:meth:`ChildFacts.from_record` reads it from a ``case-record/1``
document). Unknown facts are ``None`` and the engine then assumes what protects the child:
an unknown international-protection status counts as an asylum seeker for the
country-of-origin rule, unknown custody entitles no parent or guardian to grant consent.

Age: a date of birth, or an age estimate of *N* years made on a date *D*, which gives the
nominal date of birth *D − N years* — the latest the child can have been born, because while
age is in doubt the law presumes childhood (LGDNNA art. 5). The 18th birthday, at which every
consent lapses, follows from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from consent._time import add_years, full_years_between, start_of_day

ACCOMPANIMENT = ("accompanied", "unaccompanied", "separated", "unknown")
CUSTODIAN_KINDS = ("parent", "guardian")

#: Custody codes of ``related_persons[*].custody`` that make the person a custodian.
_CUSTODY_KIND = {"patria_potestad": "parent", "guarda_custodia": "guardian", "tutela": "guardian"}


@dataclass(frozen=True)
class Custodian:
    """A person with legal custody: ``ref`` is their ``person_ref`` in the case record."""

    ref: str
    kind: str  # parent (patria potestad) | guardian (tutela, guarda y custodia)

    def __post_init__(self) -> None:
        if self.kind not in CUSTODIAN_KINDS:
            raise ValueError(f"custodian kind must be one of {CUSTODIAN_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class ChildFacts:
    """The facts about the child that decisions and consent validity depend on."""

    child_id: str | None = None
    date_of_birth: date | None = None
    estimated_age_years: int | None = None
    age_assessed_on: date | None = None
    accompaniment: str = "unknown"
    #: Asylum seeker, refugee or beneficiary of complementary protection; None: not known.
    international_protection: bool | None = None
    #: ISO 3166-1 codes of the child's nationality and country of birth (XX excluded).
    countries_of_origin: frozenset[str] = frozenset()
    #: Who has legal custody; None: not known.
    custodians: tuple[Custodian, ...] | None = None
    conflict_of_interest: bool = False
    #: The Procuradurías de Protección representing the child (agency ids).
    representing_procuradurias: frozenset[str] = field(default_factory=frozenset)
    #: Where the child's records disagree about the age: the earliest date of birth any of
    #: them gives (stated or estimated). Rights that come with age (an adolescent's objection)
    #: count if any record gives the child that age; everything else reads the child as young
    #: as any record does (``date_of_birth``). None: no disagreement.
    earliest_date_of_birth: date | None = None

    def __post_init__(self) -> None:
        if self.accompaniment not in ACCOMPANIMENT:
            raise ValueError(
                f"accompaniment must be one of {ACCOMPANIMENT}, got {self.accompaniment!r}"
            )
        if (self.estimated_age_years is None) != (self.age_assessed_on is None):
            raise ValueError("an age estimate needs both estimated_age_years and age_assessed_on")

    # -- age ------------------------------------------------------------------------------------

    @cached_property
    def nominal_date_of_birth(self) -> date | None:
        """The date of birth, or the latest one an age estimate allows; None when unknown."""
        if self.date_of_birth is not None:
            return self.date_of_birth
        if self.estimated_age_years is not None and self.age_assessed_on is not None:
            return add_years(self.age_assessed_on, -self.estimated_age_years)
        return None

    @cached_property
    def eighteenth_birthday(self) -> datetime | None:
        """The instant every consent lapses (start of the 18th birthday); None if age unknown."""
        born = self.nominal_date_of_birth
        return None if born is None else start_of_day(add_years(born, 18))

    def age_on(self, day: date) -> int | None:
        """Completed years on ``day``; None when neither birth date nor estimate is known."""
        born = self.nominal_date_of_birth
        return None if born is None else full_years_between(born, day)

    def oldest_age_on(self, day: date) -> int | None:
        """The greatest age any of the child's records gives on ``day`` (see
        :attr:`earliest_date_of_birth`); None when the age is unknown."""
        born = self.earliest_date_of_birth or self.nominal_date_of_birth
        return None if born is None else full_years_between(born, day)

    @property
    def unaccompanied_or_separated(self) -> bool:
        return self.accompaniment in ("unaccompanied", "separated")

    # -- from a case record ---------------------------------------------------------------------

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, child_id: str | None = None) -> ChildFacts:
        """The facts a ``case-record/1`` document states (the hub validates it first)."""
        child = record.get("child") or {}
        estimate = child.get("age_estimation") or {}
        born = child.get("date_of_birth")
        estimated_age = estimate.get("estimated_age_years")
        assessed = estimate.get("assessed_on")
        origin = {code for code in child.get("nationality", ()) if code != "XX"}
        if child.get("birth_country") not in (None, "XX"):
            origin.add(child["birth_country"])
        custody = record.get("custody") or {}
        custodians = _custodians(record.get("related_persons") or (), custody)
        representation = custody.get("procuraduria_representation") or {}
        procuradurias = {representation["agency_id"]} if "agency_id" in representation else set()
        return cls(
            child_id=child_id,
            date_of_birth=date.fromisoformat(born) if born else None,
            estimated_age_years=estimated_age if not born and assessed else None,
            age_assessed_on=date.fromisoformat(assessed) if not born and assessed else None,
            accompaniment=child.get("unaccompanied_status", "unknown"),
            international_protection=_seeks_protection(record),
            countries_of_origin=frozenset(origin),
            custodians=custodians,
            conflict_of_interest=bool(custody.get("conflict_of_interest", False)),
            representing_procuradurias=frozenset(procuradurias),
        )


def _custodians(related: Any, custody: Mapping[str, Any]) -> tuple[Custodian, ...] | None:
    found: dict[str, Custodian] = {}
    for person in related:
        kind = _CUSTODY_KIND.get(person.get("custody", ""))
        if kind and person.get("person_ref") and person.get("alive") != "deceased":
            found.setdefault(person["person_ref"], Custodian(person["person_ref"], kind))
    guardian = custody.get("legal_guardian") or {}
    if guardian.get("person_ref"):
        found.setdefault(guardian["person_ref"], Custodian(guardian["person_ref"], "guardian"))
    if found:
        return tuple(found.values())
    holder = custody.get("holder")
    # The record says plainly that no parent or guardian holds custody: an empty (known) list.
    if holder in ("procuraduria", "dif_institution", "foster_family", "none"):
        return ()
    return None


def _seeks_protection(record: Mapping[str, Any]) -> bool | None:
    """Whether the record shows an asylum claim, at any stage or outcome: once a child has
    asked for asylum, the country of origin must not learn of it (sur place risk). False only
    when a migration file is on record without any claim; None when the record is silent."""
    if record.get("asylum_proceedings"):
        return True
    for identifier in (record.get("child") or {}).get("identifiers", ()):
        if identifier.get("type") in ("comar_case", "unhcr_individual", "unhcr_case"):
            return True
    migration = record.get("migration_proceedings") or ()
    if any(proceeding.get("status") == "suspended_asylum" for proceeding in migration):
        return True
    return False if migration else None
