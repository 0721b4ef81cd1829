"""Whether a consent, override, grant or views record may be recorded: a list of problems, each
with a stable code, the JSON pointer it concerns and a message in Spanish and English that
says what to do. An empty list means it may be recorded.

The hub calls these before storing (after schema validation). The engine itself does not
re-check entitlement at decision time: a change of custody is handled by revoking the consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from consent.access import Grant
from consent.facts import ChildFacts
from consent.measures import MAX_OVERRIDE, MIN_JUSTIFICATION, OVERRIDE_ROLE, ChildView, Override
from consent.model import Consent, Provision
from consent.parts import ActorRef, Json

#: The grantor types that may be a parent or guardian with custody.
_CUSTODIAL = {"parent": "parent", "guardian": "guardian"}


@dataclass(frozen=True)
class Problem:
    code: str
    pointer: str
    es: str
    en: str

    def to_json(self) -> Json:
        return {"code": self.code, "pointer": self.pointer, "es": self.es, "en": self.en}


def check_consent(
    consent: Consent, child: ChildFacts, now: datetime | None = None
) -> list[Problem]:
    """Problems that keep ``consent`` from being recorded for ``child`` (at ``now``)."""
    problems: list[Problem] = []
    if child.child_id is not None and consent.child_id != child.child_id:
        problems.append(
            Problem(
                "other_child",
                "/child_id",
                f"El consentimiento es de {consent.child_id!r}, no de {child.child_id!r}.",
                f"The consent is about {consent.child_id!r}, not {child.child_id!r}.",
            )
        )
    problems.extend(_grantor_problems(consent, child))
    problems.extend(_period_problems(consent, child, now))
    problems.extend(_empty_provision_periods(consent))
    problems.extend(_open_permits(consent))
    problems.extend(_role_only_permits(consent))
    return problems


def consent_warnings(consent: Consent) -> list[Problem]:
    """What a valid consent says that its grantor may not mean; it is recorded all the same
    (FHIR allows it), and the warnings go back with the answer.

    ``permit_under_permit``: a top-level ``permit`` provision under a ``permit`` base decision
    limits nothing. The base decision already permits the grantees every action, purpose and
    category (docs/consent.md §2), so "permit identity and health for reading" gives them all
    ten categories for every purpose; the provision only adds what it names for actors who are
    not grantees, or outweighs another consent's base ``deny``. To limit the grantees to what
    the provisions name, the base decision must be ``deny``."""
    if consent.decision != "permit":
        return []
    return [
        Problem(
            "permit_under_permit",
            f"/provision/{index}",
            "Esta disposición 'permit' no limita nada: la decisión base 'permit' ya permite a "
            "los receptores (grantee) todas las acciones, finalidades y categorías. Para "
            "permitirles solo lo que dicen las disposiciones, use 'deny' como decisión base.",
            "This 'permit' provision limits nothing: the 'permit' base decision already "
            "permits the grantees every action, purpose and category. To permit them only what "
            "the provisions say, make the base decision 'deny'.",
        )
        for index, provision in enumerate(consent.provisions)
        if provision.decision == "permit"
    ]


def _grantor_problems(consent: Consent, child: ChildFacts) -> list[Problem]:
    grantor = consent.grantor
    problems: list[Problem] = []
    if grantor.identity_verified is not True:
        problems.append(
            Problem(
                "grantor_not_verified",
                "/grantor/identity_verified",
                "Verifique la identidad y la legitimación de quien otorga y márquelo "
                "(identity_verified: true).",
                "Verify the grantor's identity and standing and mark it (identity_verified: true).",
            )
        )
    if grantor.type in _CUSTODIAL:
        problems.extend(_custodian_problems(consent, child))
    elif grantor.type == "procuraduria":
        problems.extend(_procuraduria_problems(consent, child))
    elif grantor.type == "child" and _permits_anything(consent):
        problems.append(
            Problem(
                "child_grantor_permits",
                "/grantor/type",
                "La o el adolescente puede restringir en nombre propio (decisiones 'deny'), pero "
                "abrir la divulgación requiere a su madre, padre, tutor o a la Procuraduría. "
                "Registre su postura como su opinión.",
                "The adolescent may restrict in their own name ('deny' decisions), but opening "
                "disclosure takes their parent, guardian or the Procuraduría. Record their "
                "position as their views.",
            )
        )
    return problems


def _custodian_problems(consent: Consent, child: ChildFacts) -> list[Problem]:
    grantor = consent.grantor
    if child.unaccompanied_or_separated:
        return [
            Problem(
                "procuraduria_grants_for_unaccompanied",
                "/grantor/type",
                "La niña, niño o adolescente está no acompañado o separado: otorga la "
                "Procuraduría de Protección (LGDNNA art. 106, suplencia).",
                "The child is unaccompanied or separated: the Procuraduría de Protección grants "
                "consent (LGDNNA art. 106, substitute representation).",
            )
        ]
    if child.conflict_of_interest:
        return [
            Problem(
                "conflict_of_interest",
                "/grantor/type",
                "Hay conflicto de interés con quien ejerce la custodia: otorga la Procuraduría "
                "de Protección.",
                "There is a conflict of interest with the custodian: the Procuraduría de "
                "Protección grants consent.",
            )
        ]
    if child.custodians is None:
        return [
            Problem(
                "custody_unknown",
                "/grantor",
                "No consta en el expediente quién tiene la custodia: regístrelo antes de "
                "aceptar el consentimiento de una madre, padre o tutor.",
                "The record does not say who has custody: record it before accepting a "
                "parent's or guardian's consent.",
            )
        ]
    wanted = _CUSTODIAL[grantor.type]
    if not any(
        custodian.ref == grantor.related_person_ref and custodian.kind == wanted
        for custodian in child.custodians
    ):
        known = ", ".join(f"{c.ref} ({c.kind})" for c in child.custodians) or "—"
        return [
            Problem(
                "grantor_not_custodian",
                "/grantor/related_person_ref",
                f"{grantor.related_person_ref or 'La persona otorgante'} no tiene la custodia "
                f"legal como {'madre o padre' if wanted == 'parent' else 'tutor/a'}. "
                f"Personas con custodia: {known}.",
                f"{grantor.related_person_ref or 'The grantor'} does not have legal custody as "
                f"{wanted}. Custodians on record: {known}.",
            )
        ]
    return []


def _procuraduria_problems(consent: Consent, child: ChildFacts) -> list[Problem]:
    grantor = consent.grantor
    problems: list[Problem] = []
    entitled = (
        child.unaccompanied_or_separated
        or child.conflict_of_interest
        or child.custodians == ()  # on record: no parent or guardian holds custody
    )
    if not entitled:
        problems.append(
            Problem(
                "procuraduria_not_entitled",
                "/grantor/type",
                "La niña, niño o adolescente está acompañado por quien tiene su custodia y no "
                "consta conflicto de interés: otorga su madre, padre o tutor. Si hay conflicto "
                "de interés, regístrelo primero.",
                "The child is with a custodian and no conflict of interest is recorded: their "
                "parent or guardian grants consent. If there is a conflict of interest, record "
                "it first.",
            )
        )
    if grantor.agency_id is None:
        problems.append(
            Problem(
                "procuraduria_agency_missing",
                "/grantor/agency_id",
                "Indique la Procuraduría que otorga (agency_id).",
                "Name the granting Procuraduría (agency_id).",
            )
        )
    elif (
        child.representing_procuradurias
        and grantor.agency_id not in child.representing_procuradurias
    ):
        problems.append(
            Problem(
                "procuraduria_not_representing",
                "/grantor/agency_id",
                f"{grantor.agency_id} no representa a la niña, niño o adolescente; lo hace: "
                f"{', '.join(sorted(child.representing_procuradurias))}.",
                f"{grantor.agency_id} does not represent the child; "
                f"{', '.join(sorted(child.representing_procuradurias))} does.",
            )
        )
    return problems


def _empty_provision_periods(consent: Consent) -> list[Problem]:
    """A provision whose period ends before it starts never applies: a permit that was meant
    to hold would silently permit nothing, a deny meant to protect would protect nothing."""
    problems: list[Problem] = []
    pending = [(f"/provision/{i}", p) for i, p in enumerate(consent.provisions)]
    while pending:
        pointer, provision = pending.pop(0)
        period = provision.period
        if period.start is not None and period.end is not None and period.end <= period.start:
            problems.append(
                Problem(
                    "period_empty",
                    f"{pointer}/period/end",
                    "La vigencia de la disposición termina antes de empezar.",
                    "The provision's period ends before it starts.",
                )
            )
        pending.extend(
            (f"{pointer}/provision/{i}", nested) for i, nested in enumerate(provision.provisions)
        )
    return problems


def _period_problems(consent: Consent, child: ChildFacts, now: datetime | None) -> list[Problem]:
    problems: list[Problem] = []
    period = consent.period
    if period.start is not None and period.end is not None and period.end <= period.start:
        problems.append(
            Problem(
                "period_empty",
                "/period/end",
                "La vigencia termina antes de empezar.",
                "The period ends before it starts.",
            )
        )
    adult_on = child.eighteenth_birthday
    if adult_on is None:
        if period.end is None:
            problems.append(
                Problem(
                    "age_unknown_no_end",
                    "/period/end",
                    "No se conoce la edad: indique una fecha de término de la vigencia (o "
                    "registre la fecha de nacimiento o la estimación de edad).",
                    "The age is not known: give an end to the period (or record the date of "
                    "birth or an age estimate).",
                )
            )
        return problems
    if now is not None and now >= adult_on:
        problems.append(
            Problem(
                "already_adult",
                "",
                f"La persona cumplió 18 años el {_day(adult_on)}: ya no se registra "
                f"consentimiento en su nombre.",
                f"The person turned 18 on {_day(adult_on)}: consent is no longer recorded on "
                f"their behalf.",
            )
        )
    if period.end is not None and period.end > adult_on:
        problems.append(
            Problem(
                "period_after_18th_birthday",
                "/period/end",
                f"La vigencia no puede pasar del cumpleaños 18 ({_day(adult_on)}); indique una "
                f"fecha de término igual o anterior.",
                f"The period cannot run past the 18th birthday ({_day(adult_on)}); give an end "
                f"on or before it.",
            )
        )
    return problems


def _open_permits(consent: Consent) -> list[Problem]:
    """A permit that names no actor, in a consent with no grantees, would disclose to any
    agency that asks."""
    if consent.grantees:
        return []
    problems = []
    if consent.decision == "permit":
        problems.append(
            Problem(
                "permit_to_anyone",
                "/decision",
                "Una decisión base 'permit' sin receptores divulgaría a cualquiera: indique los "
                "receptores (grantee) o use 'deny' como base.",
                "A base 'permit' without grantees would disclose to anyone: name the grantees "
                "or use 'deny' as the base decision.",
            )
        )
    for pointer in _actorless_permits(consent.provisions, "/provision", named=False):
        problems.append(
            Problem(
                "permit_to_anyone",
                pointer,
                "Esta disposición 'permit' no nombra actores y el consentimiento no tiene "
                "receptores: divulgaría a cualquiera. Indique los actores.",
                "This 'permit' provision names no actor and the consent has no grantees: it "
                "would disclose to anyone. Name the actors.",
            )
        )
    return problems


def _role_only_permits(consent: Consent) -> list[Problem]:
    """A role alone names every person holding it on the hub — any lawyer of any state, not
    the child's — so a permit must say whose: the role with the agency (``agency_id``) or the
    person (``person_id``). A role alone still restricts: a deny may name one."""
    pointers = []
    if _permits_anything(consent):
        pointers += [
            f"/grantee/{index}" for index, actor in enumerate(consent.grantees) if _role_only(actor)
        ]
    pointers += _role_only_provision_actors(consent.provisions, "/provision")
    return [
        Problem(
            "role_without_agency",
            pointer,
            "Un rol por sí solo abarca a todas las personas que lo tienen en el nodo (por "
            "ejemplo, a cualquier abogada de cualquier estado, no solo a quien representa a la "
            "NNA): indique también la agencia (agency_id) o la persona (person_id).",
            "A role alone covers every person who holds it on the hub (for example any lawyer "
            "of any state, not only the child's): give the agency (agency_id) or the person "
            "(person_id) as well.",
        )
        for pointer in pointers
    ]


def _role_only(actor: ActorRef) -> bool:
    return actor.role is not None and actor.agency_id is None and actor.person_id is None


def _role_only_provision_actors(provisions: tuple[Provision, ...], pointer: str) -> list[str]:
    found = []
    for index, provision in enumerate(provisions):
        here = f"{pointer}/{index}"
        if provision.decision == "permit":
            found += [
                f"{here}/actor/{number}"
                for number, actor in enumerate(provision.actors)
                if _role_only(actor)
            ]
        found.extend(_role_only_provision_actors(provision.provisions, f"{here}/provision"))
    return found


def _actorless_permits(
    provisions: tuple[Provision, ...], pointer: str, *, named: bool
) -> list[str]:
    found = []
    for index, provision in enumerate(provisions):
        here = f"{pointer}/{index}"
        has_actor = named or bool(provision.actors)
        if provision.decision == "permit" and not has_actor:
            found.append(here)
        found.extend(_actorless_permits(provision.provisions, f"{here}/provision", named=has_actor))
    return found


def _permits_anything(consent: Consent) -> bool:
    def walk(provisions: tuple[Provision, ...]) -> bool:
        return any(p.decision == "permit" or walk(p.provisions) for p in provisions)

    return consent.decision == "permit" or walk(consent.provisions)


def check_override(item: Override) -> list[Problem]:
    """Problems that keep an emergency override from being opened."""
    problems: list[Problem] = []
    if len(item.justification.strip()) < MIN_JUSTIFICATION:
        problems.append(
            Problem(
                "justification_required",
                "/justification",
                f"Escriba la justificación (al menos {MIN_JUSTIFICATION} caracteres): qué "
                f"riesgo hay y por qué no puede esperar al consentimiento.",
                f"Write the justification (at least {MIN_JUSTIFICATION} characters): what the "
                f"risk is and why it cannot wait for consent.",
            )
        )
    if item.ends <= item.starts:
        problems.append(
            Problem(
                "period_empty",
                "/hours",
                "La duración debe ser positiva.",
                "The duration must be positive.",
            )
        )
    elif item.ends - item.starts > MAX_OVERRIDE:
        hours = (item.ends - item.starts).total_seconds() / 3600
        problems.append(
            Problem(
                "override_too_long",
                "/hours",
                f"Un acceso de emergencia dura como máximo 72 horas; se pidieron {hours:g}.",
                f"An emergency override lasts at most 72 hours; {hours:g} were asked for.",
            )
        )
    if OVERRIDE_ROLE not in item.by_roles:
        problems.append(
            Problem(
                "override_role_required",
                "/by",
                "Solo una persona con el rol de accesos de emergencia (override_officer) puede "
                "abrirlo.",
                "Only a person with the emergency override role (override_officer) may open it.",
            )
        )
    if item.by.person_id is None:
        problems.append(
            Problem(
                "override_person_required",
                "/by/person_id",
                "Un acceso de emergencia lo abre una persona identificada, no un sistema.",
                "An emergency override is opened by an identified person, not a system.",
            )
        )
    return problems


def check_grant(grant: Grant, child: ChildFacts, now: datetime | None = None) -> list[Problem]:
    """Problems with a grant on an approved access request."""
    problems: list[Problem] = []
    if now is not None and grant.until <= now:
        problems.append(
            Problem("until_past", "/until", "La fecha límite ya pasó.", "The end is in the past.")
        )
    adult_on = child.eighteenth_birthday
    if adult_on is not None and grant.until > adult_on:
        problems.append(
            Problem(
                "period_after_18th_birthday",
                "/until",
                f"La autorización no puede pasar del cumpleaños 18 ({_day(adult_on)}).",
                f"The grant cannot run past the 18th birthday ({_day(adult_on)}).",
            )
        )
    return problems


def check_view(
    view: ChildView, today: date | None = None, child: ChildFacts | None = None
) -> list[Problem]:
    """Problems with a views record: the date heard (not in the future, not before the child
    was born), and why a child was not heard."""
    problems: list[Problem] = []
    # The nominal date of birth when the records agree: for a child whose age is only
    # estimated, ``date_of_birth`` is None, and a date heard decades before birth would pass.
    born = None if child is None else (child.earliest_date_of_birth or child.nominal_date_of_birth)
    if born is not None and child is not None and child.estimated_age_years is not None:
        born -= timedelta(days=366)  # an estimated age: only a date clearly before it
    if born is not None and view.heard_on < born:
        problems.append(
            Problem(
                "heard_before_birth",
                "/heard_on",
                "La fecha en que se escuchó a la niña, niño o adolescente es anterior a su "
                "nacimiento.",
                "The date the child was heard is before the child was born.",
            )
        )
    if today is not None and view.heard_on > today:
        problems.append(
            Problem(
                "heard_in_future",
                "/heard_on",
                "La fecha en que se escuchó a la niña, niño o adolescente está en el futuro.",
                "The date the child was heard is in the future.",
            )
        )
    if view.position == "not_heard" and not view.not_heard_reason:
        problems.append(
            Problem(
                "not_heard_reason_required",
                "/not_heard_reason",
                "Indique por qué no se escuchó a la niña, niño o adolescente.",
                "Say why the child was not heard.",
            )
        )
    return problems


def _day(moment: datetime) -> str:
    """The calendar day of an 18th birthday (kept in the zone it was computed in)."""
    return moment.date().isoformat()
