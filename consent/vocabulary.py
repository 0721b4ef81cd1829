"""The codes the engine speaks, with their labels in Spanish and English.

Data categories, purposes, actions, roles and grantor types are the enums of
``schemas/documents/common/1.json`` and ``consent/1.json`` (a unit test keeps them equal; this
package may not import :mod:`schemas`). Actor kinds are the engine's own: what *kind* of body
asks, which is what the hard legal rules speak about (an agency id says who, a kind says what
the law lets it receive).

Category sets are handled as bit masks (bit ``i`` is ``CATEGORIES[i]``) so that a decision over
ten categories costs a few integer operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Text = tuple[str, str]
"""A text a person reads: (Spanish, English)."""

CATEGORIES: tuple[str, ...] = (
    "identity",
    "contact_location",
    "family",
    "health",
    "education",
    "protection_concerns",
    "legal_status",
    "placement",
    "best_interest",
    "legal_representation",
)

CATEGORY_LABELS: Mapping[str, Text] = {
    "identity": ("Identidad", "Identity"),
    "contact_location": ("Contacto y ubicación", "Contact and location"),
    "family": ("Familia", "Family"),
    "health": ("Salud", "Health"),
    "education": ("Educación", "Education"),
    "protection_concerns": ("Riesgos y necesidades de protección", "Protection concerns"),
    "legal_status": (
        "Situación jurídica migratoria y de protección internacional",
        "Migration and asylum legal status",
    ),
    "placement": ("Acogimiento y cuidados alternativos", "Placement and alternative care"),
    "best_interest": ("Interés superior de la niñez", "Best interests of the child"),
    "legal_representation": ("Representación jurídica", "Legal representation"),
}

PURPOSES: tuple[str, ...] = (
    "case_management",
    "best_interest_determination",
    "legal_representation",
    "family_tracing_reunification",
    "health_care",
    "education",
    "asylum_procedure",
    "migration_procedure",
    "protection_measure",
    "alternative_care",
    "oversight",
    "statistics",
)

PURPOSE_LABELS: Mapping[str, Text] = {
    "case_management": ("Gestión de caso", "Case management"),
    "best_interest_determination": (
        "Determinación del interés superior",
        "Best-interest determination",
    ),
    "legal_representation": ("Representación jurídica", "Legal representation"),
    "family_tracing_reunification": (
        "Búsqueda y reunificación familiar",
        "Family tracing and reunification",
    ),
    "health_care": ("Atención a la salud", "Health care"),
    "education": ("Educación", "Education"),
    "asylum_procedure": (
        "Procedimiento de reconocimiento de la condición de refugiado",
        "Asylum (refugee status) procedure",
    ),
    "migration_procedure": ("Procedimiento administrativo migratorio", "Migration procedure"),
    "protection_measure": (
        "Medidas de protección y restitución de derechos",
        "Protection and restitution measures",
    ),
    "alternative_care": ("Cuidados alternativos y acogimiento", "Alternative care and placement"),
    "oversight": ("Supervisión y rendición de cuentas", "Oversight"),
    "statistics": ("Estadística (datos agregados)", "Statistics (aggregate data)"),
}

ACTIONS: tuple[str, ...] = ("read", "refer", "transfer")
"""What a recipient does with case data. A delivery from the outbox is decided again with the
action it carries out (``refer`` or ``transfer``), so a revocation in between stops it."""

ACTION_LABELS: Mapping[str, Text] = {
    "read": ("consultar", "read"),
    "refer": ("canalizar (compartir copia)", "refer (share a copy)"),
    "transfer": ("transferir la responsabilidad del caso", "transfer case responsibility"),
}

ROLES: tuple[str, ...] = (
    "caseworker",
    "case_supervisor",
    "consent_officer",
    "procuraduria_lawyer",
    "legal_representative",
    "guardian_ad_litem",
    "override_officer",
    "auditor",
    "administrator",
    "system",
)

ACTOR_KINDS: Mapping[str, Text] = {
    "federal_child_protection": (
        "Protección federal de la niñez (PFPNNA, SNDIF)",
        "Federal child protection (PFPNNA, SNDIF)",
    ),
    "state_dif": (
        "Sistema DIF estatal y su Procuraduría de Protección",
        "State DIF system and its Procuraduría de Protección",
    ),
    "municipal_dif": ("Sistema DIF municipal", "Municipal DIF system"),
    "immigration_enforcement": (
        "Autoridad migratoria (INM)",
        "Immigration enforcement (INM)",
    ),
    "refugee_commission": (
        "Comisión Mexicana de Ayuda a Refugiados (COMAR)",
        "Refugee commission (COMAR)",
    ),
    "foreign_ministry": (
        "Secretaría de Relaciones Exteriores",
        "Mexican foreign ministry (SRE)",
    ),
    "foreign_authority": (
        "Autoridad extranjera (consulado, embajada u otra autoridad de otro país)",
        "Foreign authority (consulate, embassy or other authority of another country)",
    ),
    "health_service": ("Servicio de salud", "Health service"),
    "education_service": ("Servicio educativo", "Education service"),
    "civil_society": (
        "Organización de la sociedad civil (albergue, clínica jurídica)",
        "Civil-society organisation (shelter, legal clinic)",
    ),
    "international_organisation": (
        "Organismo internacional (ACNUR, OIM, UNICEF)",
        "International organisation (UNHCR, IOM, UNICEF)",
    ),
    "legal_representative": (
        "Representante jurídico de la niña, niño o adolescente",
        "The child's legal representative",
    ),
    "judicial": ("Autoridad judicial o ministerial", "Court or prosecutor"),
    "oversight": (
        "Órgano de supervisión (comisiones de derechos humanos, SIPINNA)",
        "Oversight body (human-rights commissions, SIPINNA)",
    ),
    "other": ("Otra institución", "Other institution"),
}

GRANTOR_TYPES: tuple[str, ...] = ("parent", "guardian", "procuraduria", "child", "court")

CONSENT_STATUSES: tuple[str, ...] = ("draft", "active", "inactive", "not_done", "entered_in_error")

DECISIONS: tuple[str, ...] = ("permit", "deny")

VIEW_POSITIONS: tuple[str, ...] = ("assent", "objection", "no_view_expressed", "not_heard")

OVERRIDE_BASIS_CODES: tuple[str, ...] = (
    "imminent_risk_life_integrity",
    "medical_emergency",
    "missing_child",
    "trafficking_exploitation",
    "refoulement_risk",
    "other_urgent_measure",
)

BASES: tuple[str, ...] = (
    "hard_rule",
    "originating_agency",
    "withhold",
    "override",
    "objection",
    "consent",
    "grant",
    "default_deny",
)
"""Decision bases in the order the engine applies them (the audit-event ``decision.basis``
enum). The originating agency's own read is settled right after the hard rules: it is not a
disclosure, so nothing else limits it."""

# --- category bit masks -------------------------------------------------------------------------

CATEGORY_BIT: Mapping[str, int] = {name: 1 << index for index, name in enumerate(CATEGORIES)}
ALL_CATEGORIES_MASK = (1 << len(CATEGORIES)) - 1
ALL_CATEGORIES: frozenset[str] = frozenset(CATEGORIES)


def mask_of(categories: Iterable[str]) -> int:
    """The bit mask of ``categories`` (every name must be a known category)."""
    mask = 0
    for name in categories:
        mask |= CATEGORY_BIT[name]
    return mask


_NAMES_OF_MASK: tuple[tuple[str, ...], ...] = tuple(
    tuple(name for name in CATEGORIES if mask & CATEGORY_BIT[name])
    for mask in range(ALL_CATEGORIES_MASK + 1)
)


def categories_of(mask: int) -> tuple[str, ...]:
    """The category names in ``mask``, in :data:`CATEGORIES` order."""
    return _NAMES_OF_MASK[mask & ALL_CATEGORIES_MASK]


def unknown(values: Iterable[str], known: Iterable[str]) -> list[str]:
    """The values not among ``known``, sorted (for error messages)."""
    allowed = set(known)
    return sorted({value for value in values if value not in allowed})
