"""People: the persons who act through the hub, with roles, an agency and personal access tokens.

A person (a legal representative, a Procuraduría consent officer, an auditor at an oversight
body…) belongs to one agency and holds one or more roles (codes of
:data:`consent.vocabulary.ROLES`). Their jurisdiction defaults to the agency's and may only narrow
it (a state agency's officer may cover one municipality of the state, never another state).

People log into the portal (exchange.portal) with their e-mail and password, and call the API
with **personal access tokens** (PATs), made there or by ``puente person token``: random
``pat_…`` strings shown once and stored only as SHA-256 hashes in the same ``access_token``
table as agency systems' OAuth tokens (with ``person_id`` set and ``agency_id`` the person's
agency), so every route authenticates them exactly like OAuth bearer tokens. A PAT carries only
scopes its person's roles allow (:data:`ROLE_SCOPES`), lives 1 to 365 days, and stops working at
once when revoked, when its person is disabled, or when the person's agency is disabled.

Passwords (for the portal) are hashed with Argon2id (libsodium through PyNaCl): a memory-hard
KDF, because people choose guessable passwords. PATs and client secrets are 256-bit random
values, for which a fast hash is enough.

Like :mod:`exchange.agencies`, the services never commit: each writes its audit entry in the
caller's transaction.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import nacl.exceptions
import nacl.pwhash
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from consent.vocabulary import ROLES
from exchange import audit_log, db
from exchange.agencies import (
    AUDIT_SCOPE,
    FEDERAL_CODE,
    MUNICIPALITY_CODE,
    OVERSIGHT_KINDS,
    STATE_CODE,
    Agency,
    AgencyError,
    InvalidAgency,
    get_agency,
)
from exchange.auth import (
    SCOPES,
    AccessToken,
    Actor,
    as_utc,
    person_client_id,
    token_hash,
    utcnow,
)
from exchange.db import Base

#: The roles a person may hold here (codes of the consent vocabulary's ROLES).
PERSON_ROLES = (
    "legal_representative",
    "consent_officer",
    "override_officer",
    "auditor",
    "administrator",
)
assert set(PERSON_ROLES) <= set(ROLES)

_ROLE_SCOPES = {
    "legal_representative": ("records:read", "access:request"),
    "consent_officer": ("consent:read", "consent:write", "access:decide", "records:read"),
    "override_officer": ("override", "records:read"),
    "auditor": ("audit:read",),
}
#: Which scopes a personal access token may carry for each role. An administrator may hold
#: ``admin`` and every scope of the other roles but the auditor's: administrators work at
#: child-protection agencies, and ``audit:read`` reads every state's children's log, which is
#: oversight's alone (:data:`AUDITOR_KINDS`). No person gets ``records:write`` or
#: ``federation``, which belong to agency systems and peer hubs.
ROLE_SCOPES: Mapping[str, frozenset[str]] = {
    **{role: frozenset(scopes) for role, scopes in _ROLE_SCOPES.items()},
    "administrator": frozenset(
        {"admin"}.union(*(scopes for role, scopes in _ROLE_SCOPES.items() if role != "auditor"))
    ),
}
assert set(ROLE_SCOPES) == set(PERSON_ROLES)
assert frozenset().union(*ROLE_SCOPES.values()) <= set(SCOPES)

TOKEN_PREFIX = "pat_"  # noqa: S105 - a label, not a secret
DEFAULT_TOKEN_DAYS = 30
MAX_TOKEN_DAYS = 365
MIN_PASSWORD_LENGTH = 12
#: Longer passwords are refused: nobody types more, and each login hashes what is sent.
MAX_PASSWORD_LENGTH = 1024
#: Fewer different characters than this ("aaaaaaaaaaaa", "123123123123") is no password.
MIN_PASSWORD_DISTINCT = 5
#: Passwords long enough but among the first an attacker tries; compared case-insensitively.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "abcdefghijkl",
        "administrador",
        "contrasena123",
        "contraseña123",
        "iloveyou1234",
        "password1234",
        "password123!",
        "puente123456",
        "qwertyuiop12",
        "qwertyuiopasdf",
    }
)

#: Readable ids ("chp-oficial-consentimientos") or generated ones ("per_3f9a…"): lowercase, so
#: they fit audit reason codes unchanged; at most 40 characters.
PERSON_ID = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,38}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class Person(Base):
    __tablename__ = "person"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    #: Stored lower-case: one account per address whatever its spelling.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    agency_id: Mapped[str] = mapped_column(String(100), ForeignKey("agency.id"), index=True)
    #: Role codes separated by spaces (like token scopes).
    roles: Mapped[str] = mapped_column(String(200))
    #: INEGI code: the agency's, or a narrower one inside it.
    jurisdiction: Mapped[str] = mapped_column(String(10), index=True)
    #: A disabled person's tokens stop working at once.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Argon2id hash in libsodium's string format; None until a password is set.
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Carried in each portal session cookie, which works only while the two agree: logging
    #: out, a disable or an enable (of the person or their agency) and a new password count it
    #: up, so that no copy of an older cookie works again (exchange.portal.sessions).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def role_list(self) -> list[str]:
        return self.roles.split()


# --- errors -------------------------------------------------------------------------------------


class PersonError(AgencyError):
    """A person or token operation refused; the message is in Spanish and English."""


class InvalidPerson(InvalidAgency):
    """What was given is not valid; ``errors`` lists every problem found."""


class UnknownPerson(PersonError):
    def __init__(self, person_id: str) -> None:
        super().__init__(
            f"No existe la persona {person_id!r}.", f"There is no person {person_id!r}."
        )


class DuplicatePerson(PersonError):
    """The person id or e-mail address is already registered."""


class AlreadyDone(PersonError):
    """The person is already disabled (or enabled), or the token already revoked: nothing to
    change (the API answers a repeated revocation with ``409 conflict`` likewise)."""


# --- validation ---------------------------------------------------------------------------------


def allowed_scopes(roles: Iterable[str]) -> frozenset[str]:
    """Every scope a personal access token of a person with ``roles`` may carry."""
    return frozenset().union(*(ROLE_SCOPES.get(role, frozenset()) for role in roles))


def _check_roles(roles: list[str]) -> list[PersonError]:
    unknown = [role for role in roles if role not in PERSON_ROLES]
    if unknown:
        return [
            PersonError(
                f"Roles desconocidos: {', '.join(unknown)}; válidos: {', '.join(PERSON_ROLES)}.",
                f"Unknown roles: {', '.join(unknown)}; valid: {', '.join(PERSON_ROLES)}.",
                field="roles",
            )
        ]
    if not roles:
        return [PersonError("Indique al menos un rol.", "Give at least one role.", field="roles")]
    return []


def control_characters_in(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The control characters ``text`` holds (Unicode category C*: a newline, an escape
    sequence, a bidirectional override, NUL…) but those ``allowed``, as ``U+XXXX``, sorted:
    written where a person reads them, they would forge or hide lines."""
    return sorted(
        {
            f"U+{ord(c):04X}"
            for c in text
            if c not in allowed and unicodedata.category(c).startswith("C")
        }
    )


def _control_characters(
    text: str, what: tuple[str, str] = ("El nombre", "The name")
) -> list[PersonError]:
    """A name with control characters would forge or hide lines where it is printed, as in
    ``puente person list``; none is ever part of a name."""
    found = control_characters_in(text)
    if not found:
        return []
    return [
        PersonError(
            f"{what[0]} contiene caracteres de control ({', '.join(found)}); escríbalo en una "
            "sola línea, sin ellos.",
            f"{what[1]} contains control characters ({', '.join(found)}); write it on one line, "
            "without them.",
            field="name",
        )
    ]


def _check_name_and_email(name: str, email: str) -> list[PersonError]:
    errors = []
    if not name or not name.strip():
        errors.append(PersonError("Falta el nombre.", "The name is missing.", field="name"))
    elif len(name) > 300:
        errors.append(
            PersonError(
                "El nombre supera 300 caracteres.", "The name exceeds 300 characters.", field="name"
            )
        )
    else:
        errors.extend(_control_characters(name))
    if len(email) > 254 or not EMAIL.match(email):
        errors.append(
            PersonError(
                f"El correo {email!r} no es una dirección válida (nombre@dominio.mx).",
                f"The e-mail {email!r} is not a valid address (name@domain.org).",
                field="email",
            )
        )
    return errors


def _check_id(person_id: str) -> list[PersonError]:
    if PERSON_ID.match(person_id):
        return []
    return [
        PersonError(
            f"El id {person_id!r} no es válido: hasta 40 letras minúsculas, cifras, '.', '_' o "
            "'-', empezando y terminando con letra o cifra.",
            f"The id {person_id!r} is not valid: up to 40 lowercase letters, digits, '.', '_' "
            "or '-', starting and ending with a letter or digit.",
            field="id",
        )
    ]


def _valid_code(code: str) -> bool:
    return bool(code == FEDERAL_CODE or STATE_CODE.match(code) or MUNICIPALITY_CODE.match(code))


def _check_jurisdiction(jurisdiction: str, agency_jurisdiction: str) -> list[PersonError]:
    if not _valid_code(jurisdiction):
        return [
            PersonError(
                f'Jurisdicción {jurisdiction!r} no válida: "00" (federal), un estado INEGI '
                "(07) o un municipio (07089).",
                f'Jurisdiction {jurisdiction!r} is not valid: "00" (federal), an INEGI state '
                "(07) or a municipality (07089).",
                field="jurisdiction",
            )
        ]
    inside = agency_jurisdiction == FEDERAL_CODE or jurisdiction.startswith(agency_jurisdiction)
    if inside:
        return []
    return [
        PersonError(
            f"La jurisdicción {jurisdiction} queda fuera de la de su agencia "
            f"({agency_jurisdiction}); una persona solo puede cubrir la de su agencia o una "
            "parte de ella.",
            f"Jurisdiction {jurisdiction} lies outside its agency's ({agency_jurisdiction}); a "
            "person may only cover the agency's jurisdiction or a part of it.",
            field="jurisdiction",
        )
    ]


def password_problems(password: str, *about: str) -> list[PersonError]:
    """Why ``password`` is refused (none: it is accepted): too short or too long, too few
    different characters, a well-known one, or the same as one of ``about`` (the person's
    e-mail address, the address's name part, their name or id), which others know."""
    errors = []
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        errors.append(
            PersonError(
                f"La contraseña necesita de {MIN_PASSWORD_LENGTH} a {MAX_PASSWORD_LENGTH} "
                "caracteres.",
                f"The password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
                field="password",
            )
        )
    folded = password.strip().casefold()
    known = {text.strip().casefold() for text in about if text and text.strip()}
    known |= {text.split("@")[0] for text in known if "@" in text}
    if len(set(password)) < MIN_PASSWORD_DISTINCT or folded in COMMON_PASSWORDS:
        errors.append(
            PersonError(
                "La contraseña es demasiado fácil de adivinar; use una frase de varias palabras.",
                "The password is too easy to guess; use a phrase of several words.",
                field="password",
            )
        )
    elif folded in known:
        errors.append(
            PersonError(
                "La contraseña no puede ser el correo, el nombre ni el id de la persona.",
                "The password cannot be the person's e-mail, name or id.",
                field="password",
            )
        )
    return errors


def _check_password(password: str, *about: str) -> None:
    errors = password_problems(password, *about)
    if errors:
        raise InvalidPerson(list(errors))


# --- people -------------------------------------------------------------------------------------


def _audit(
    session: Session,
    verb: str,
    *subject: str,
    by_agency: str | None = None,
    by_person: Actor | None = None,
) -> None:
    # Codes only ("registered.per_3f9a…"): names and e-mail addresses never enter the log.
    # By the hub's administrator (the command line), by an agency's system (``by_agency``), or
    # by the person themselves in the portal (``by_person``).
    if by_person is not None:
        actor = {
            "actor_agency": by_person.agency_id,
            "actor_person": by_person.person_id,
            "actor_role": by_person.audit_role,
        }
    else:
        actor = {
            "actor_agency": by_agency,
            "actor_role": "administrator" if by_agency is None else "system",
        }
    audit_log.record_event(
        session,
        action="person_changed",
        outcome="success",
        detail=".".join((verb, *subject)),
        **actor,
    )


def new_person_id() -> str:
    return "per_" + secrets.token_hex(8)


#: Roles that speak for children (consent, views, emergency overrides): a Procuraduría's. An
#: administrator acts for the children of their jurisdiction (exchange.consents.acts_for_child),
#: so the role belongs where a consent officer's does: at INM or a consulate it would let
#: immigration enforcement or a foreign state read and revoke children's consents.
AUTHORITY_ROLES = ("consent_officer", "override_officer", "administrator")


#: Agency kinds whose people may hold the ``auditor`` role: oversight bodies (human-rights
#: commissions, SIPINNA). An auditor reads every child's entries, overrides and their written
#: justifications, whatever the jurisdiction; in an agency that handles cases, the role would
#: let a caseworker read other states' children's decisions.
AUDITOR_KINDS = OVERSIGHT_KINDS


def _check_role_homes(roles: list[str], kind: str | None) -> list[PersonError]:
    """Roles that belong to some kinds of agency only: consent and override officers and
    administrators to child-protection agencies (DESIGN: the child's Procuraduría; the kinds
    that may act for a child, :data:`exchange.consents.CONSENT_AUTHORITY_KINDS`), auditors to
    oversight bodies.
    Elsewhere the role would be a promise the hub does not keep, or a window onto every
    child's log."""
    from exchange.consents import CONSENT_AUTHORITY_KINDS  # exchange.consents imports this

    homes = (
        (
            AUTHORITY_ROLES,
            CONSENT_AUTHORITY_KINDS,
            "las Procuradurías de Protección (DIF federal, estatal o municipal)",
            "the Procuradurías de Protección (federal, state or municipal DIF)",
        ),
        (
            ("auditor",),
            AUDITOR_KINDS,
            "los órganos de supervisión (comisiones de derechos humanos, SIPINNA)",
            "oversight bodies (human-rights commissions, SIPINNA)",
        ),
    )
    errors = []
    for home_roles, kinds, home_es, home_en in homes:
        given = [role for role in roles if role in home_roles]
        if given and kind not in kinds:
            errors.append(
                PersonError(
                    f"El rol {', '.join(given)} es de {home_es}; esta institución es de tipo "
                    f"{kind}.",
                    f"The role {', '.join(given)} belongs to {home_en}; this agency is of kind "
                    f"{kind}.",
                    field="roles",
                )
            )
    return errors


def add_person(
    session: Session,
    *,
    name: str,
    email: str,
    agency_id: str,
    roles: Iterable[str],
    jurisdiction: str | None = None,
    person_id: str | None = None,
    password: str | None = None,
) -> Person:
    """Register a person of an active agency; every problem with the input is reported at once."""
    roles = list(dict.fromkeys(roles))
    email = email.strip().lower()
    person_id = person_id or new_person_id()
    agency = get_agency(session, agency_id)
    if not agency.active:
        raise PersonError(
            f"La agencia {agency_id} está desactivada: no se le añaden personas.",
            f"Agency {agency_id} is disabled: no people are added to it.",
            field="agency",
        )
    jurisdiction = jurisdiction or agency.jurisdiction
    errors = [
        *_check_id(person_id),
        *_check_name_and_email(name, email),
        *_check_roles(roles),
        *_check_role_homes(roles, agency.kind),
        *_check_jurisdiction(jurisdiction, agency.jurisdiction),
    ]
    if errors:
        raise InvalidPerson(list(errors))
    if password is not None:
        _check_password(password, email, name, person_id)
    if session.get(Person, person_id) is not None:
        raise DuplicatePerson(
            f"La persona {person_id!r} ya está registrada.",
            f"Person {person_id!r} is already registered.",
            field="id",
        )
    if session.scalar(select(Person.id).where(Person.email == email)) is not None:
        raise DuplicatePerson(
            f"Ya hay una persona con el correo {email}.",
            f"A person with e-mail {email} is already registered.",
            field="email",
        )
    person = Person(
        id=person_id,
        name=name.strip(),
        email=email,
        agency_id=agency_id,
        roles=" ".join(roles),
        jurisdiction=jurisdiction,
        active=True,
        password_hash=hash_password(password) if password is not None else None,
        created_at=utcnow(),
    )
    session.add(person)
    session.flush()
    _audit(session, "registered", person_id)
    return person


def get_person(session: Session, person_id: str) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise UnknownPerson(person_id)
    return person


def list_people(session: Session, agency_id: str | None = None) -> list[Person]:
    query = select(Person).order_by(Person.agency_id, Person.id)
    if agency_id is not None:
        query = query.where(Person.agency_id == agency_id)
    return list(session.scalars(query))


#: The next session generation, counted up by the statement that changes the row (two
#: changes that meet both count).
NEXT_SESSION_GENERATION = Person.session_generation + 1


def end_sessions(session: Session, person_id: str) -> None:
    """End every portal session of the person, in every browser (logging out, a new
    password): the cookies they hold, and any copy of them, no longer work."""
    _count_sessions_up(session, Person.id == person_id)


def end_agency_sessions(session: Session, agency_id: str) -> None:
    """End the portal sessions of every person of the agency (it is disabled or enabled):
    while it is disabled every request finds it so, and once it is enabled again the sessions
    opened before stay ended."""
    _count_sessions_up(session, Person.agency_id == agency_id)


def _count_sessions_up(session: Session, which: Any) -> None:
    session.execute(
        update(Person)
        .where(which)
        .values(session_generation=NEXT_SESSION_GENERATION)
        .execution_options(synchronize_session=False)
    )


class Disabled(NamedTuple):
    """What disabling a person ended."""

    tokens_revoked: int
    access_requests_denied: int
    grants_revoked: int


def disable_person(session: Session, person_id: str) -> Disabled:
    """Disable a person and revoke their tokens at once; returns what it ended.

    The bearer lookup also checks the person is active; revoking as well keeps the tokens dead
    if the person is ever enabled again. Their pending access requests are denied and the
    grants they hold revoked, each audited
    (:func:`exchange.consents.access.end_access_of_disabled_person`), for the same reason.
    """
    from exchange.consents.access import end_access_of_disabled_person  # it imports this

    _switch_active(session, person_id, False)
    revoked = session.execute(
        update(AccessToken)
        .where(AccessToken.person_id == person_id, AccessToken.revoked.is_(False))
        .values(revoked=True)
    )
    _audit(session, "disabled", person_id)
    denied, grants = end_access_of_disabled_person(session, person_id)
    return Disabled(int(getattr(revoked, "rowcount", 0) or 0), denied, grants)


def enable_person(session: Session, person_id: str) -> Person:
    """Enable a disabled person again. The tokens they had stay revoked (disabling revoked
    them, so that a mistaken disable undone brings back no forgotten token), and the portal
    sessions they had stay ended: they log into the portal again and make new ones."""
    person = _switch_active(session, person_id, True)
    _audit(session, "enabled", person_id)
    return person


def _switch_active(session: Session, person_id: str, active: bool) -> Person:
    """Enable or disable the person, ending their portal sessions; :class:`AlreadyDone` when
    they already were. Claimed by a conditional update, so that of two concurrent (or repeated)
    changes only one happens and is written to the signed log: it must not record a change
    that did not happen."""
    person = get_person(session, person_id)
    if not db.changed_once(
        session,
        update(Person)
        .where(Person.id == person_id, Person.active.is_(not active))
        .values(active=active, session_generation=NEXT_SESSION_GENERATION),
    ):
        state_es, state_en = ("activa", "active") if active else ("desactivada", "disabled")
        raise AlreadyDone(
            f"La persona {person_id} ya estaba {state_es}; no se cambió nada.",
            f"Person {person_id} was already {state_en}; nothing was changed.",
            field="person_id",
        )
    session.refresh(person)
    return person


def hash_password(password: str) -> str:
    _check_password(password)
    return nacl.pwhash.argon2id.str(password.encode("utf-8")).decode("ascii")


def set_password(session: Session, person_id: str, password: str) -> None:
    person = get_person(session, person_id)
    _check_password(password, person.email, person.name, person.id)
    person.password_hash = hash_password(password)
    end_sessions(session, person_id)  # those opened with the old password
    _audit(session, "password_set", person_id)


def check_password(person: Person, password: str) -> bool:
    """True when ``password`` is the person's and the person is active."""
    if not person.active or not person.password_hash:
        return False
    try:
        return bool(
            nacl.pwhash.verify(person.password_hash.encode("ascii"), password.encode("utf-8"))
        )
    except nacl.exceptions.InvalidkeyError:
        return False


_DUMMY_HASH: list[bytes] = []


def _dummy_hash() -> bytes:
    # Made once per process, at the cost of a real one: an address with no account (or no
    # password) costs the same verification as one with.
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(nacl.pwhash.argon2id.str(secrets.token_bytes(32)))
    return _DUMMY_HASH[0]


def verify_login(session: Session, email: str, password: str) -> Person | None:
    """The person who logs into the portal with ``email`` and ``password``: active, of an
    active agency; None otherwise. Whatever the reason (no such address, no password set, a
    wrong one, a disabled person), one Argon2id verification is made — against a dummy hash
    when there is no real one — so that neither the answer nor its time tells whether an
    account exists."""
    email = email.strip().lower()
    # No address holds U+0000 (PostgreSQL's text cannot even be asked for one): no one's.
    person = (
        None if "\x00" in email else session.scalar(select(Person).where(Person.email == email))
    )
    real = person.password_hash if person is not None else None
    stored = real.encode("ascii") if real else _dummy_hash()
    if len(password) > MAX_PASSWORD_LENGTH:
        password = ""  # never anyone's (too short to set), verified all the same
    try:
        matches = bool(nacl.pwhash.verify(stored, password.encode("utf-8")))
    except nacl.exceptions.InvalidkeyError:
        matches = False
    if not (matches and real and person is not None and person.active):
        return None
    return person if get_agency(session, person.agency_id).active else None


# --- personal access tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token_id: int
    token: str  # shown once, stored only as a hash
    person_id: str
    scopes: tuple[str, ...]
    expires_at: datetime
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "token_id": self.token_id,
            "token": self.token,
            "person_id": self.person_id,
            "scopes": list(self.scopes),
            "expires_at": self.expires_at.isoformat(),
        }
        if self.name is not None:
            answer["name"] = self.name
        return answer


def issue_token(
    session: Session,
    person_id: str,
    scopes: Iterable[str],
    *,
    days: int = DEFAULT_TOKEN_DAYS,
    name: str | None = None,
    by_person: Actor | None = None,
) -> IssuedToken:
    """A new personal access token for an active person of an active agency; ``by_person``
    when the person makes it themselves (the portal), for the audit entry.

    Every scope must be one the person's roles allow: a token is never silently narrowed.
    """
    person = get_person(session, person_id)
    wanted = list(dict.fromkeys(scopes))
    agency = get_agency(session, person.agency_id)
    errors = [
        *_token_problems(person, wanted, days, name),
        *_audit_scope_problems(person, wanted, agency),
    ]
    if errors:
        raise InvalidPerson(errors)
    if not person.active or not agency.active:
        raise PersonError(
            f"La persona {person_id} o su agencia está desactivada: no recibe tokens.",
            f"Person {person_id} or their agency is disabled: no tokens are issued.",
            field="person",
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = AccessToken(
        token_hash=token_hash(secret),
        client_id=person_client_id(person_id),
        agency_id=person.agency_id,
        person_id=person_id,
        scope=" ".join(wanted),
        issued_at=now,
        expires_at=now + timedelta(days=days),
        revoked=False,
        label=name.strip() if name else None,
    )
    session.add(row)
    session.flush()
    _audit(session, "token_issued", person_id, str(row.id), by_person=by_person)
    return IssuedToken(row.id, secret, person_id, tuple(wanted), as_utc(row.expires_at), row.label)


def _audit_scope_problems(person: Person, scopes: list[str], agency: Agency) -> list[AgencyError]:
    """``audit:read`` only for an auditor of an agency that is an oversight body now: one
    registered before the agency's kind changed (or before this rule) gets no new token.
    (A role that does not allow the scope at all is :func:`_token_problems`' to report.)"""
    if AUDIT_SCOPE not in scopes or agency.kind in AUDITOR_KINDS:
        return []
    if AUDIT_SCOPE not in allowed_scopes(person.role_list):
        return []
    return [
        PersonError(
            f"El alcance {AUDIT_SCOPE} es solo de los auditores de los órganos de supervisión "
            f"(tipo oversight): lee el registro de auditoría de todo el hub. La agencia "
            f"{agency.id} es de tipo {agency.kind}.",
            f"The {AUDIT_SCOPE} scope is only for auditors of oversight bodies (kind "
            f"oversight): it reads the whole hub's audit log. Agency {agency.id} is of kind "
            f"{agency.kind}.",
            field="scopes",
        )
    ]


def _token_problems(
    person: Person, scopes: list[str], days: int, name: str | None
) -> list[AgencyError]:
    errors: list[AgencyError] = []
    unknown = [scope for scope in scopes if scope not in SCOPES]
    beyond = [s for s in scopes if s in SCOPES and s not in allowed_scopes(person.role_list)]
    if not scopes:
        errors.append(
            PersonError("Indique al menos un alcance.", "Give at least one scope.", field="scopes")
        )
    if unknown:
        errors.append(
            PersonError(
                f"Alcances desconocidos: {', '.join(unknown)}.",
                f"Unknown scopes: {', '.join(unknown)}.",
                field="scopes",
            )
        )
    if beyond:
        allowed = ", ".join(sorted(allowed_scopes(person.role_list))) or "-"
        roles = ", ".join(person.role_list)
        errors.append(
            PersonError(
                f"Los roles de {person.id} ({roles}) no permiten: {', '.join(beyond)}; "
                f"permitidos: {allowed}.",
                f"The roles of {person.id} ({roles}) do not allow: {', '.join(beyond)}; "
                f"allowed: {allowed}.",
                field="scopes",
            )
        )
    if not 1 <= days <= MAX_TOKEN_DAYS:
        errors.append(
            PersonError(
                f"La vigencia debe ser de 1 a {MAX_TOKEN_DAYS} días; se pidió {days}.",
                f"The lifetime must be 1 to {MAX_TOKEN_DAYS} days; {days} was asked.",
                field="days",
            )
        )
    if name is not None and len(name) > 100:
        errors.append(
            PersonError(
                "El nombre del token supera 100 caracteres.",
                "The token name exceeds 100 characters.",
                field="name",
            )
        )
    elif name is not None:
        errors.extend(_control_characters(name, ("El nombre del token", "The token name")))
    return errors


def revoke_token(session: Session, token_id: int) -> str:
    """Revoke a personal access token at once (``puente person revoke-token``, by the hub's
    administrator); returns its person's id."""
    row = session.get(AccessToken, token_id)
    if row is None or row.person_id is None:
        raise PersonError(
            f"No existe el token personal {token_id}.",
            f"There is no personal access token {token_id}.",
            field="token_id",
        )
    if not end_token(session, row):
        raise AlreadyDone(
            f"El token personal {token_id} de {row.person_id} ya estaba revocado; no se cambió "
            "nada.",
            f"Personal access token {token_id} of {row.person_id} was already revoked; nothing "
            "was changed.",
            field="token_id",
        )
    return row.person_id


def end_token(
    session: Session,
    token: AccessToken,
    by_agency: str | None = None,
    by_person: Actor | None = None,
) -> bool:
    """Revoke ``token`` at once, by the hub's administrator or, with ``by_agency``, by that
    agency's system (OAuth revocation, RFC 7009), or with ``by_person`` by its own person in
    the portal; whether this call revoked it.

    Conditional, as disabling is: of two revocations (repeated or concurrent) one happens,
    and only that one reaches the signed log — as ``person_changed``,
    ``token_revoked.<person>.<token id>``, the same entry whoever revokes it. An agency's own
    token is no person's change: its issuing is not logged either, and it lasts 15 minutes at
    most."""
    if not db.changed_once(
        session,
        update(AccessToken)
        .where(AccessToken.id == token.id, AccessToken.revoked.is_(False))
        .values(revoked=True),
    ):
        return False
    session.refresh(token)
    if token.person_id is not None:
        _audit(
            session,
            "token_revoked",
            token.person_id,
            str(token.id),
            by_agency=by_agency,
            by_person=by_person,
        )
    return True


def list_tokens(session: Session, person_id: str) -> list[AccessToken]:
    """The person's tokens that still work (not revoked, not expired), newest first."""
    return list(
        session.scalars(
            select(AccessToken)
            .where(
                AccessToken.person_id == person_id,
                AccessToken.revoked.is_(False),
                AccessToken.expires_at > utcnow(),
            )
            .order_by(AccessToken.id.desc())
        )
    )


def describe(person: Person, tokens: Iterable[AccessToken] = ()) -> dict[str, Any]:
    """The person as ``puente person add/list --json`` shows them (no password hash)."""
    return {
        "id": person.id,
        "name": person.name,
        "email": person.email,
        "agency_id": person.agency_id,
        "roles": person.role_list,
        "jurisdiction": person.jurisdiction,
        "active": person.active,
        "has_password": person.password_hash is not None,
        "created_at": as_utc(person.created_at).isoformat() if person.created_at else None,
        "tokens": [
            {
                "token_id": token.id,
                "name": token.label,
                "scopes": token.scope.split(),
                "expires_at": as_utc(token.expires_at).isoformat(),
            }
            for token in tokens
        ],
    }
