"""Who is calling: bearer tokens checked with Authlib's resource protector, scopes on every route.

Tokens are opaque random strings stored only as SHA-256 hashes. They are issued to agency
systems by the OAuth2 server (``exchange.oauth``) and to people as personal access tokens
(``exchange.people``), both in the ``access_token`` table, so one lookup serves both.
A route names the scope it needs with ``@require_scope("records:write")`` and reads the caller
from :func:`current_actor`, which also carries what the consent engine needs (the agency's kind
and country, the person's roles, the jurisdiction).

A token works only while it is unexpired and unrevoked, its agency (if any) is active and its
person (if any) exists and is active: all checked in the one query of every request.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from authlib.integrations.flask_oauth2 import ResourceProtector, token_authenticated
from authlib.oauth2.rfc6749 import TokenMixin
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import g, request
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from consent.request import Actor as ConsentActor
from exchange import db, ratelimit
from exchange.db import Base
from exchange.hot_sql import HotSQL
from exchange.problems import Problem

if TYPE_CHECKING:
    from exchange.agencies import Agency
    from exchange.people import Person

SCOPES = (
    "records:write",
    "records:read",
    "consent:write",
    "consent:read",
    "access:request",
    "access:decide",
    "override",
    "audit:read",
    "admin",
    "federation",
)

#: Tokens never live longer than this (DESIGN.md: short-lived, at most 15 minutes).
MAX_TOKEN_SECONDS = 15 * 60


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything the hub stores is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AccessToken(Base, TokenMixin):
    """An issued bearer token (hash only), for an agency client or a person."""

    __tablename__ = "access_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(200), index=True)
    agency_id: Mapped[str | None] = mapped_column(
        String(100), ForeignKey("agency.id"), index=True, nullable=True
    )
    person_id: Mapped[str | None] = mapped_column(String(100), index=True, nullable=True)
    scope: Mapped[str] = mapped_column(String(1000), default="")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A person's name for a personal access token ("laptop", "script de informes").
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)

    # Authlib's TokenMixin
    def check_client(self, client: Any) -> bool:
        return bool(self.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((as_utc(self.expires_at) - as_utc(self.issued_at)).total_seconds())

    def is_expired(self) -> bool:
        return as_utc(self.expires_at) <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> Any:
        return self.person_id

    def get_client(self) -> Any:
        return self.client_id


def store_token(
    session: Session,
    *,
    client_id: str,
    scopes: list[str] | tuple[str, ...],
    agency_id: str | None = None,
    person_id: str | None = None,
    seconds: int = MAX_TOKEN_SECONDS,
    secret: str | None = None,
) -> tuple[str, AccessToken]:
    """Create a token; returns the secret (shown once) and its stored row.

    ``secret`` lets the OAuth2 server store the token Authlib generated; by default a new
    256-bit random one is made.
    """
    secret = secret or secrets.token_urlsafe(32)
    now = utcnow()
    row = AccessToken(
        token_hash=token_hash(secret),
        client_id=client_id,
        agency_id=agency_id,
        person_id=person_id,
        scope=" ".join(scopes),
        issued_at=now,
        expires_at=now + timedelta(seconds=min(seconds, MAX_TOKEN_SECONDS)),
        revoked=False,
    )
    session.add(row)
    return secret, row


def find_token(session: Session, secret: str) -> AccessToken | None:
    """The stored token for ``secret``; None if unknown, or its agency or person is disabled.

    Checking the agency and the person here (one joined query) makes a disabled agency's or
    person's tokens stop working at once, on every route and in introspection.
    """
    from exchange.agencies import Agency  # agencies imports this module
    from exchange.people import Person

    return session.scalars(
        select(AccessToken)
        .outerjoin(Agency, Agency.id == AccessToken.agency_id)
        .outerjoin(Person, Person.id == AccessToken.person_id)
        .where(
            AccessToken.token_hash == token_hash(secret),
            or_(AccessToken.agency_id.is_(None), Agency.active.is_(True)),
            or_(AccessToken.person_id.is_(None), Person.active.is_(True)),
        )
    ).first()


#: The kind a caller with no agency gets when asking the consent engine (the engine needs one).
UNAFFILIATED_KIND = "other"


#: The client id the hub itself acts under when it decides again at delivery time.
HUB_CLIENT_ID = "hub"


def person_client_id(person_id: str) -> str:
    """The client id of a person's own tokens (``person:<id>``)."""
    return f"person:{person_id}"


#: ``client_id`` of an actor that is an agency of a peer hub, asking through that hub.
PEER_CLIENT_PREFIX = "hub:"


@dataclass(frozen=True)
class Actor:
    """The caller of a request, as the consent engine and the audit log see it.

    ``kind`` and ``country`` are the agency's (None only for a token with no agency);
    ``roles`` are the person's (empty for an agency system); ``jurisdiction`` is the person's
    when a person calls, else the agency's.

    Build one with :meth:`from_fields` or the constructors over it (:meth:`for_agency`,
    :meth:`for_person`, :meth:`hub`, :func:`current_actor`), never field by field, so those
    rules live in one place.
    """

    client_id: str
    agency_id: str | None
    person_id: str | None
    scopes: frozenset[str]
    kind: str | None = None
    roles: frozenset[str] = frozenset()
    jurisdiction: str | None = None
    country: str | None = None

    @classmethod
    def from_fields(
        cls,
        *,
        client_id: str,
        scopes: Iterable[str],
        agency_id: str | None,
        kind: str | None,
        country: str | None,
        agency_jurisdiction: str | None,
        person_id: str | None = None,
        roles: str | None = None,
        person_jurisdiction: str | None = None,
    ) -> Actor:
        """The one place an actor's fields are derived from its agency's and person's columns
        (``roles`` as stored: codes separated by spaces)."""
        return cls(
            client_id=client_id,
            agency_id=agency_id,
            person_id=person_id,
            scopes=frozenset(scopes),
            kind=kind,
            roles=frozenset(roles.split()) if roles else frozenset(),
            jurisdiction=person_jurisdiction or agency_jurisdiction,
            country=country,
        )

    @classmethod
    def for_agency(cls, agency: Agency, *, scopes: Iterable[str]) -> Actor:
        """An agency's own system, as a token issued to it would make it."""
        return cls.from_fields(
            client_id=agency.id,
            scopes=scopes,
            agency_id=agency.id,
            kind=agency.kind,
            country=agency.country,
            agency_jurisdiction=agency.jurisdiction,
        )

    @classmethod
    def for_person(cls, person: Person, agency: Agency, *, scopes: Iterable[str]) -> Actor:
        """A registered person of ``agency`` (their own agency, whose kind and country they
        act with), as one of their personal access tokens would make them."""
        if person.agency_id != agency.id:
            raise ValueError(f"person {person.id} is not of agency {agency.id}")
        return cls.from_fields(
            client_id=person_client_id(person.id),
            scopes=scopes,
            agency_id=agency.id,
            kind=agency.kind,
            country=agency.country,
            agency_jurisdiction=agency.jurisdiction,
            person_id=person.id,
            roles=person.roles,
            person_jurisdiction=person.jurisdiction,
        )

    @classmethod
    def hub(cls) -> Actor:
        """The hub itself (no agency, no person, no scopes): deliveries decided again."""
        return cls(client_id=HUB_CLIENT_ID, agency_id=None, person_id=None, scopes=frozenset())

    @property
    def audit_role(self) -> str | None:
        """The role the audit log records: the person's most specific one, ``system`` for an
        agency's own system."""
        if self.person_id is None:
            return "system"
        for role in (
            "consent_officer",
            "override_officer",
            "legal_representative",
            "auditor",
            "administrator",
        ):
            if role in self.roles:
                return role
        return None

    @property
    def audit_client(self) -> str | None:
        """The client the audit log names: only a peer hub asking for one of its agencies
        (``hub:<peer id>``, :mod:`exchange.federation`), since an agency's own client is the
        agency the entry already names."""
        return self.client_id if self.client_id.startswith(PEER_CLIENT_PREFIX) else None

    def for_consent(self) -> ConsentActor:
        """The caller as :func:`consent.engine.decide` takes it."""
        return ConsentActor(
            kind=self.kind or UNAFFILIATED_KIND,
            agency_id=self.agency_id,
            person_id=self.person_id,
            roles=self.roles,
            jurisdiction=self.jurisdiction,
            country=self.country,
        )


def engine_actor(agency: Agency, person: Person | None = None) -> ConsentActor:
    """The consent engine's view of a registered agency, or of a person of that agency: the
    same actor their own token would present (:meth:`Actor.for_consent`)."""
    caller = (
        Actor.for_agency(agency, scopes=())
        if person is None
        else Actor.for_person(person, agency, scopes=())
    )
    return caller.for_consent()


@dataclass(frozen=True, slots=True)
class BearerToken:
    """What a request's bearer token grants, read from its stored row (Authlib's TokenMixin
    methods over plain values; revocation and introspection use :class:`AccessToken`)."""

    client_id: str
    agency_id: str | None
    person_id: str | None
    scope: str
    expires_at: datetime
    revoked: bool
    kind: str | None
    country: str | None
    agency_jurisdiction: str | None
    roles: str | None
    person_jurisdiction: str | None

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return as_utc(self.expires_at) <= utcnow()

    def is_revoked(self) -> bool:
        return bool(self.revoked)

    def get_user(self) -> Any:
        return self.person_id

    def get_client(self) -> Any:
        return self.client_id


#: The one query of every API request: the token's row, its agency's and its person's, on the
#: session's DBAPI connection (exchange.hot_sql: SQLAlchemy's own work per statement cost
#: several times the lookup). The row is still read on every request, so a revoked token or a
#: disabled agency or person stops working at once. Both joins are primary-key lookups; the
#: person's must find an active row, so a token naming a person who does not exist never
#: authenticates (a join that finds no row leaves ``active`` NULL, which is not true).
#: ``active`` is compared with true, not taken as a truth value: a SQLite column holds any
#: number, and only 1 is active there (as SQLAlchemy's ``IS 1`` had it).
_BEARER_LOOKUP = (
    "SELECT t.client_id, t.agency_id, t.person_id, t.scope, t.expires_at, t.revoked,"
    " a.kind, a.country, a.jurisdiction, p.roles, p.jurisdiction"
    " FROM access_token t"
    " LEFT OUTER JOIN agency a ON a.id = t.agency_id"
    " LEFT OUTER JOIN person p ON p.id = t.person_id"
    " WHERE t.token_hash = ?"
    " AND (t.agency_id IS NULL OR a.active = ?) AND (t.person_id IS NULL OR p.active = ?)"
)


def find_bearer_token(session: Session, secret: str) -> BearerToken | None:
    """Like :func:`find_token` (same conditions), as a plain value, for checking requests."""
    sql = HotSQL(session)
    row = sql.first(_BEARER_LOOKUP, (token_hash(secret), True, True))
    if row is None:
        return None
    columns = AccessToken.__table__.c
    expires_at = sql.reader(columns.expires_at)(row[4])
    revoked = sql.reader(columns.revoked)(row[5])
    return BearerToken(*row[:4], expires_at, revoked, *row[6:])


class _TokenValidator(BearerTokenValidator):  # type: ignore[misc]
    def authenticate_token(self, token_string: str) -> BearerToken | None:
        token = find_bearer_token(db.session(), token_string)
        if token is None:
            # Counted only once the lookup fails, so valid tokens never touch the counters.
            ratelimit.unknown_bearer_token()
        return token


class _ProblemProtector(ResourceProtector):  # type: ignore[misc]
    """Authlib's protector, answering with RFC 9457 problems instead of OAuth JSON."""

    def acquire_token(self, scopes: str | list[str] | None = None) -> Any:
        # Authlib's own, without its request wrapper: FlaskJsonRequest reads the URL, the
        # form and the JSON body of every API request, and validating a bearer token takes
        # the Authorization header only.
        token = self.validate_request(
            scopes=[scopes] if isinstance(scopes, str) else scopes,
            request=SimpleNamespace(headers=request.headers),
        )
        token_authenticated.send(self, token=token)
        g.authlib_server_oauth2_token = token
        return token

    def raise_error_response(self, error: Any) -> None:
        if error.error == "insufficient_scope":
            raise Problem(
                "forbidden",
                ("El token no tiene el alcance requerido.", "The token lacks the required scope."),
            )
        raise Problem(
            "unauthenticated",
            (
                "Falta un token de acceso válido (Authorization: Bearer …).",
                "A valid access token is required (Authorization: Bearer …).",
            ),
            headers={"WWW-Authenticate": 'Bearer realm="puente"'},
        )


require_oauth = _ProblemProtector()
require_oauth.register_token_validator(_TokenValidator())


def require_scope(*scopes: str) -> Any:
    """Decorator: the route needs a valid token carrying every scope named; a token without
    them is refused with a problem that names them."""
    listed = ", ".join(scopes)
    return _scope_guard(" ".join(scopes) if scopes else None, scopes, (listed, listed))


def require_any_scope(*scopes: str) -> Any:
    """Decorator: the route needs a valid token carrying at least one of ``scopes`` (a route
    several kinds of caller use); a token with none of them is refused with the same problem
    as :func:`require_scope`'s, naming them."""
    if len(scopes) < 2:
        raise ValueError("require_any_scope takes two scopes or more; use require_scope")
    # authlib reads a list of scope strings as alternatives, a single string as all of them.
    return _scope_guard(list(scopes), scopes, (" o ".join(scopes), " or ".join(scopes)))


def _scope_guard(
    needed: str | list[str] | None, scopes: tuple[str, ...], listed: tuple[str, str]
) -> Any:
    from authlib.oauth2 import OAuth2Error
    from authlib.oauth2.rfc6750 import InsufficientScopeError

    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}")
    missing_scope = (
        f"El token no tiene el alcance requerido para esta operación: {listed[0]}.",
        f"The token lacks the scope this operation requires: {listed[1]}.",
    )

    def decorator(view: Any) -> Any:
        # What authlib's ResourceProtector.__call__ does, but the refusal says which scope.
        @functools.wraps(view)
        def protected(*args: Any, **kwargs: Any) -> Any:
            try:
                require_oauth.acquire_token(needed)
            except InsufficientScopeError:
                raise Problem("forbidden", missing_scope) from None
            except OAuth2Error as error:
                require_oauth.raise_error_response(error)
            return view(*args, **kwargs)

        return protected

    return decorator


def current_actor() -> Actor:
    token: BearerToken = g.authlib_server_oauth2_token
    return Actor.from_fields(
        client_id=token.client_id,
        scopes=token.scope.split(),
        agency_id=token.agency_id,
        kind=token.kind,
        country=token.country,
        agency_jurisdiction=token.agency_jurisdiction,
        person_id=token.person_id,
        roles=token.roles,
        person_jurisdiction=token.person_jurisdiction,
    )
