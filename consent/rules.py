"""Hard legal rules: what no consent, grant or override can open.

A rule is data: which categories it withholds, from which actor kinds, for which purposes and
actions, and under which facts about the child. Every condition stated must hold (an empty list
means "any"); a rule must state at least one. The hub may add rules from its configuration
(:meth:`Rule.from_json`); :data:`DEFAULT_RULES` is the shipped set, explained with its legal
basis in ``docs/consent.md``. The legal references are guidance for the hub operator's legal
team, who own the final text.

"Protection data" in the shipped rules is what the protection system learns about a child:
protection concerns, health, best-interest assessments, family, and where the child lives and
is placed (contact_location, placement). Identity, legal status and legal representation stay
available to consent: a migration or asylum authority needs them to suspend a procedure,
notify the child's lawyer or regularise the child.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from consent.errors import ConsentFormatError
from consent.facts import ChildFacts
from consent.parts import Json, ordered, read_bool, read_codes, read_object, require_text
from consent.request import Request
from consent.vocabulary import (
    ACTIONS,
    ACTOR_KINDS,
    ALL_CATEGORIES_MASK,
    CATEGORIES,
    PURPOSES,
    Text,
    mask_of,
)

RULE_ID_PATTERN = "^[a-z0-9][a-z0-9_.-]{0,79}$"  # audit-event decision.rule_ids


@dataclass(frozen=True)
class Rule:
    """One hard legal rule (see the module documentation)."""

    id: str
    title: Text
    legal_basis: str
    categories: frozenset[str] = frozenset()  # withheld; empty: every category
    actor_kinds: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    #: Only when the child is an asylum seeker or refugee — or that is not known.
    child_international_protection: bool = False
    #: Only when the actor acts for a country the child comes from — or either is not known.
    actor_from_country_of_origin: bool = False
    #: Whether it limits the originating agency reading its own record too.
    applies_to_originating_agency: bool = True

    def __post_init__(self) -> None:
        if not re.match(RULE_ID_PATTERN, self.id):
            raise ValueError(f"rule id {self.id!r} must match {RULE_ID_PATTERN}")
        if not (
            self.actor_kinds
            or self.purposes
            or self.actions
            or self.child_international_protection
            or self.actor_from_country_of_origin
        ):
            raise ValueError(f"rule {self.id!r} states no condition: it would withhold everything")

    @property
    def mask(self) -> int:
        return mask_of(self.categories) if self.categories else ALL_CATEGORIES_MASK

    def applies(self, request: Request, child: ChildFacts) -> bool:
        """Whether the rule's conditions hold for ``request`` about ``child``."""
        actor = request.actor
        if self.actor_kinds and actor.kind not in self.actor_kinds:
            return False
        if self.purposes and request.purpose not in self.purposes:
            return False
        if self.actions and request.action not in self.actions:
            return False
        if self.child_international_protection and child.international_protection is False:
            return False
        if self.actor_from_country_of_origin and not (
            actor.country is None
            or not child.countries_of_origin
            or actor.country in child.countries_of_origin
        ):
            return False
        return self.applies_to_originating_agency or not request.by_originating_agency

    @classmethod
    def from_json(cls, value: Any, pointer: str = "") -> Rule:
        doc = read_object(
            value,
            pointer,
            required=("id", "title", "legal_basis"),
            optional=(
                "categories",
                "actor_kinds",
                "purposes",
                "actions",
                "when",
                "applies_to_originating_agency",
            ),
        )
        title = read_object(doc["title"], f"{pointer}/title", required=("es", "en"))
        when = read_object(
            doc.get("when", {}),
            f"{pointer}/when",
            optional=("child_international_protection", "actor_from_country_of_origin"),
        )
        owner = read_bool(doc, "applies_to_originating_agency", pointer)
        try:
            return cls(
                id=require_text(doc, "id", pointer),
                title=(
                    require_text(title, "es", f"{pointer}/title"),
                    require_text(title, "en", f"{pointer}/title"),
                ),
                legal_basis=require_text(doc, "legal_basis", pointer),
                categories=read_codes(
                    doc.get("categories", []),
                    f"{pointer}/categories",
                    CATEGORIES,
                    "categoría/category",
                ),
                actor_kinds=read_codes(
                    doc.get("actor_kinds", []),
                    f"{pointer}/actor_kinds",
                    tuple(ACTOR_KINDS),
                    "tipo de actor/actor kind",
                ),
                purposes=read_codes(
                    doc.get("purposes", []), f"{pointer}/purposes", PURPOSES, "finalidad/purpose"
                ),
                actions=read_codes(
                    doc.get("actions", []), f"{pointer}/actions", ACTIONS, "acción/action"
                ),
                child_international_protection=bool(
                    read_bool(when, "child_international_protection", f"{pointer}/when")
                ),
                actor_from_country_of_origin=bool(
                    read_bool(when, "actor_from_country_of_origin", f"{pointer}/when")
                ),
                applies_to_originating_agency=True if owner is None else owner,
            )
        except ValueError as error:
            if isinstance(error, ConsentFormatError):
                raise
            raise ConsentFormatError(
                f"Regla no válida: {error}", f"Invalid rule: {error}", pointer=pointer
            ) from error

    def to_json(self) -> Json:
        doc: Json = {
            "id": self.id,
            "title": {"es": self.title[0], "en": self.title[1]},
            "legal_basis": self.legal_basis,
        }
        if self.categories:
            doc["categories"] = ordered(self.categories, CATEGORIES)
        if self.actor_kinds:
            doc["actor_kinds"] = ordered(self.actor_kinds, tuple(ACTOR_KINDS))
        if self.purposes:
            doc["purposes"] = ordered(self.purposes, PURPOSES)
        if self.actions:
            doc["actions"] = ordered(self.actions, ACTIONS)
        when = {
            key: True
            for key in ("child_international_protection", "actor_from_country_of_origin")
            if getattr(self, key)
        }
        if when:
            doc["when"] = when
        if not self.applies_to_originating_agency:
            doc["applies_to_originating_agency"] = False
        return doc


class RuleSet:
    """Rules ready for the engine: in order, with the answer for each kind of request
    remembered (a rule depends only on the actor's kind and country, the purpose, the action,
    whether the actor owns the record and the child's protection facts)."""

    __slots__ = ("_memo", "rules")

    MEMO_LIMIT = 4096

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        ids = [rule.id for rule in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate rule ids in {ids}")
        self._memo: dict[tuple[Any, ...], tuple[tuple[Rule, int], ...]] = {}

    def __iter__(self) -> Any:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def applicable(self, request: Request, child: ChildFacts) -> tuple[tuple[Rule, int], ...]:
        """The rules that hold for ``request``, each with the categories it withholds."""
        actor = request.actor
        key = (
            actor.kind,
            actor.country,
            request.purpose,
            request.action,
            request.by_originating_agency,
            child.international_protection,
            child.countries_of_origin,
        )
        found = self._memo.get(key)
        if found is None:
            found = tuple((rule, rule.mask) for rule in self.rules if rule.applies(request, child))
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = found
        return found


_PROTECTION_DATA = [
    "contact_location",
    "family",
    "health",
    "protection_concerns",
    "placement",
    "best_interest",
]

DEFAULT_RULES_JSON: tuple[Mapping[str, Any], ...] = (
    {
        "id": "no_protection_data_to_immigration_enforcement",
        "title": {
            "es": "La autoridad migratoria no recibe datos de protección (riesgos, salud, "
            "interés superior, familia, ubicación ni acogimiento).",
            "en": "Immigration enforcement receives no protection data (concerns, health, "
            "best interests, family, location or placement).",
        },
        "legal_basis": "LGDNNA arts. 76-77 (intimidad y datos personales) y cap. XIX "
        "(niñez migrante: ninguna niña, niño o adolescente es privado de libertad por su "
        "situación migratoria; la Procuraduría, no el INM, asume su protección); "
        "Ley de Migración art. 112.",
        "categories": _PROTECTION_DATA,
        "actor_kinds": ["immigration_enforcement"],
    },
    {
        "id": "no_protection_data_for_migration_procedure",
        "title": {
            "es": "Ningún dato de protección se usa en un procedimiento administrativo "
            "migratorio, quien sea que lo pida.",
            "en": "No protection data is used for a migration procedure, whoever asks.",
        },
        "legal_basis": "LGDNNA arts. 76-77 y cap. XIX; los datos recabados para proteger a "
        "la niña, niño o adolescente no sirven a la ejecución migratoria.",
        "categories": _PROTECTION_DATA,
        "purposes": ["migration_procedure"],
    },
    {
        "id": "no_transfer_to_immigration_enforcement",
        "title": {
            "es": "La responsabilidad de un caso nunca se transfiere a la autoridad migratoria.",
            "en": "Responsibility for a case is never transferred to immigration enforcement.",
        },
        "legal_basis": "LGDNNA cap. XIX y reforma de 2020: la niñez migrante queda bajo la "
        "protección del DIF y la Procuraduría, nunca bajo custodia migratoria.",
        "actor_kinds": ["immigration_enforcement"],
        "actions": ["transfer"],
    },
    {
        "id": "no_asylum_data_to_country_of_origin",
        "title": {
            "es": "Nada sobre una niña, niño o adolescente solicitante de asilo o refugiado "
            "se comunica a autoridades de su país de origen.",
            "en": "Nothing about an asylum-seeking or refugee child is disclosed to "
            "authorities of their country of origin.",
        },
        "legal_basis": "Ley sobre Refugiados, Protección Complementaria y Asilo Político "
        "(confidencialidad del procedimiento y no devolución); LGDNNA cap. XIX; "
        "Convención de 1951. Si la condición o el país no se conocen, se presume el riesgo.",
        "actor_kinds": ["foreign_authority"],
        "when": {"child_international_protection": True, "actor_from_country_of_origin": True},
        # A consulate reading back what it pushed itself learns nothing new, whereas refusing
        # it its own record would tell it that the child sought asylum. Everything else of the
        # child (other agencies' records, anything it did not push) stays withheld.
        "applies_to_originating_agency": False,
    },
    {
        "id": "no_case_content_to_oversight",
        "title": {
            "es": "Los órganos de supervisión ven la bitácora de auditoría, nunca el contenido "
            "del expediente.",
            "en": "Oversight bodies see the audit log, never the content of the record.",
        },
        "legal_basis": "LGDNNA arts. 76-77 (minimización); diseño de Puente: la supervisión se "
        "ejerce sobre la bitácora firmada.",
        "actor_kinds": ["oversight"],
    },
    {
        "id": "no_case_content_for_oversight_purpose",
        "title": {
            "es": "La finalidad de supervisión se atiende con la bitácora de auditoría, no con "
            "el contenido del expediente.",
            "en": "The oversight purpose is served by the audit log, not by record content.",
        },
        "legal_basis": "LGDNNA arts. 76-77 (minimización de datos).",
        "purposes": ["oversight"],
    },
    {
        "id": "no_identifying_data_for_statistics",
        "title": {
            "es": "Para estadística no se divulgan datos que identifiquen o ubiquen a la niña, "
            "niño o adolescente ni a su familia.",
            "en": "No data that identifies or locates the child or their family is disclosed "
            "for statistics.",
        },
        "legal_basis": "LGDNNA arts. 76-77; LGPDPPSO (finalidad y minimización).",
        "categories": ["identity", "contact_location", "family"],
        "purposes": ["statistics"],
    },
)

DEFAULT_RULES: tuple[Rule, ...] = tuple(Rule.from_json(doc) for doc in DEFAULT_RULES_JSON)
DEFAULT_RULE_SET = RuleSet(DEFAULT_RULES)
