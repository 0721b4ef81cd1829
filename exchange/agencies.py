"""The agency registry: who may connect, with which keys and scopes.

Each agency system is an OAuth2 client whose ``client_id`` is the agency id. It authenticates
with ``private_key_jwt`` signed by one of its Ed25519 keys, or with a client secret (stored
hashed) in development.

Key rotation: :func:`rotate_key` makes the new key the agency's current key and schedules the
keys it replaces to retire after a grace period (:data:`ROTATION_GRACE`, seven days by default),
so systems that still sign with the old key keep working while they are redeployed. Until then
every valid key verifies assertions and ``Puente-Signature`` headers; a key retired at once
(:func:`retire_key`, or a rotation with no grace, for a compromised key) stops verifying at once.
An agency with no client secret keeps a key that stays valid: retiring its last one is refused
unless asked for on purpose, as taking away the secret of an agency with no such key is.

The service functions work inside the caller's session and never commit: each records its audit
entry in the same transaction, and the caller commits both or neither.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from joserfc.jwk import OKPKey
from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from consent.vocabulary import ACTOR_KINDS
from exchange import audit_log, db
from exchange.auth import SCOPES, AccessToken, as_utc, utcnow
from exchange.db import Base
from schemas.errors import BilingualError

LEVELS = ("federal", "state", "municipal")

#: What kind of body each agency is (the consent engine's actor kinds: the hard legal rules speak
#: about kinds, such as immigration enforcement or a foreign authority).
KINDS = tuple(ACTOR_KINDS)
#: The only kind that acts for another country, and so the only one with a ``country``.
FOREIGN_KIND = "foreign_authority"
#: ISO 3166-1 alpha-2, upper case ("GT").
COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
#: What programmatic callers that name no kind get, and what migration 0008 gave agencies
#: registered before kinds existed. Only state and municipal bodies are guessed (almost always
#: DIF systems); federal bodies are too diverse (PFPNNA, INM, COMAR, SRE, CNDH) to guess, so they
#: get "other" until an administrator runs ``puente agency set-kind``. The command line always
#: asks for ``--kind``.
DEFAULT_KIND_BY_LEVEL = {"federal": "other", "state": "state_dif", "municipal": "municipal_dif"}

#: The scope that reads the whole hub's signed log (``/v1/audit``), and with it every child's
#: entries, views and override justifications whatever the jurisdiction: oversight's alone.
AUDIT_SCOPE = "audit:read"
#: The kinds of body that may hold :data:`AUDIT_SCOPE`, for their systems or their auditors
#: (:data:`exchange.people.AUDITOR_KINDS`): human-rights commissions, SIPINNA. In a body that
#: handles cases it would let a municipal DIF read every state's children's log.
OVERSIGHT_KINDS = frozenset({"oversight"})

#: How long the keys a rotation replaces keep verifying.
ROTATION_GRACE = timedelta(days=7)

#: ``mx.chp.dif``: two or more lowercase labels separated by dots.
AGENCY_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
#: INEGI codes: "00" federal, "01".."32" a state, state + "001".."999" a municipality.
STATE_CODE = re.compile(r"^(0[1-9]|[12][0-9]|3[0-2])$")
MUNICIPALITY_CODE = re.compile(r"^(0[1-9]|[12][0-9]|3[0-2])(?!000)[0-9]{3}$")
FEDERAL_CODE = "00"

_SECRET_PREFIX = "sha256:"  # noqa: S105 - a label, not a secret


class Agency(Base):
    __tablename__ = "agency"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # mx.chp.dif
    name: Mapped[str] = mapped_column(String(300))
    level: Mapped[str] = mapped_column(String(20))
    #: The consent engine's actor kind (:data:`KINDS`), what the hard legal rules look at.
    kind: Mapped[str] = mapped_column(String(40), server_default="other")
    #: ISO 3166-1 alpha-2 country a foreign authority acts for; None for Mexican bodies.
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    #: INEGI state code ("07") or state+municipality ("07089"); "00" for federal bodies.
    jurisdiction: Mapped[str] = mapped_column(String(10), index=True)
    contact: Mapped[str | None] = mapped_column(String(300), nullable=True)
    scope: Mapped[str] = mapped_column(String(1000), default="")
    #: A disabled agency cannot get tokens, and the tokens it holds stop working at once.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Pushes must carry a Puente-Signature when set.
    require_signature: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``sha256:<hex>`` of the client secret; None when the agency has no secret.
    client_secret_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    keys: Mapped[list[AgencyKey]] = relationship(
        back_populates="agency", cascade="all, delete-orphan", order_by="AgencyKey.created_at"
    )

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()

    def check_client_secret(self, secret: str) -> bool:
        return secret_matches(self.client_secret_hash, secret)


class AgencyKey(Base):
    """An Ed25519 public key of an agency; several at once during rotation."""

    __tablename__ = "agency_key"

    #: RFC 7638 thumbprint of the key: the ``kid`` agencies put in their JWS headers.
    kid: Mapped[str] = mapped_column(String(100), primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agency.id"), index=True)
    #: The public key as an OKP JWK (JSON text).
    public_jwk: Mapped[str] = mapped_column(Text)
    #: False once retired for good; a retired key never verifies again.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: From this moment the key no longer verifies; in the future during a rotation's grace.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    agency: Mapped[Agency] = relationship(back_populates="keys")

    def is_valid(self, now: datetime | None = None) -> bool:
        if not self.active:
            return False
        return self.retired_at is None or as_utc(self.retired_at) > (now or utcnow())

    @property
    def jwk(self) -> dict[str, Any]:
        return json.loads(self.public_jwk)  # type: ignore[no-any-return]


# --- errors -------------------------------------------------------------------------------------


class AgencyError(BilingualError, ValueError):
    """A registry operation refused; the message is in Spanish and English."""

    def __init__(self, spanish: str, english: str, *, field: str = "") -> None:
        super().__init__(spanish, english)
        self.field = field


class InvalidAgency(AgencyError):
    """What was given is not valid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[AgencyError]) -> None:
        super().__init__(
            "; ".join(e.message_es for e in errors), "; ".join(e.message_en for e in errors)
        )
        self.errors = errors


class UnknownAgency(AgencyError):
    def __init__(self, agency_id: str) -> None:
        super().__init__(
            f"No existe la agencia {agency_id!r}.", f"There is no agency {agency_id!r}."
        )


class DuplicateAgency(AgencyError):
    """The agency id, or the key, is already registered."""


# --- validation ---------------------------------------------------------------------------------


def hash_client_secret(secret: str) -> str:
    # The secret is 256 bits from secrets.token_urlsafe, so it cannot be guessed or brute-forced:
    # a fast hash is enough (a memory-hard KDF only matters for low-entropy, human passwords).
    return _SECRET_PREFIX + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(stored_hash: str | None, secret: str) -> bool:
    """Compare in constant time, so timing tells nothing about the stored hash."""
    if not stored_hash:
        return False
    return hmac.compare_digest(stored_hash, hash_client_secret(secret))


def _check_id(agency_id: str) -> list[AgencyError]:
    if len(agency_id) <= 100 and AGENCY_ID.match(agency_id):
        return []
    return [
        AgencyError(
            f"El id {agency_id!r} no es válido: letras minúsculas, cifras y guiones en dos o más "
            "partes separadas por puntos (mx.chp.dif).",
            f"The id {agency_id!r} is not valid: lowercase letters, digits and hyphens in two or "
            "more parts separated by dots (mx.chp.dif).",
            field="id",
        )
    ]


def _check_level_and_jurisdiction(level: str, jurisdiction: str) -> list[AgencyError]:
    if level not in LEVELS:
        return [
            AgencyError(
                f"Nivel {level!r} desconocido; use uno de {', '.join(LEVELS)}.",
                f"Unknown level {level!r}; use one of {', '.join(LEVELS)}.",
                field="level",
            )
        ]
    expected = {
        "federal": (jurisdiction == FEDERAL_CODE, '"00" (federal)', '"00" (federal)'),
        "state": (
            bool(STATE_CODE.match(jurisdiction)),
            "una clave INEGI de estado, 01 a 32",
            "an INEGI state code, 01 to 32",
        ),
        "municipal": (
            bool(MUNICIPALITY_CODE.match(jurisdiction)),
            "una clave INEGI de municipio de 5 cifras (estado + municipio, p. ej. 07089)",
            "a 5-digit INEGI municipality code (state + municipality, e.g. 07089)",
        ),
    }
    ok, spanish, english = expected[level]
    if ok:
        return []
    return [
        AgencyError(
            f"Jurisdicción {jurisdiction!r} no válida para el nivel {level}: se espera {spanish}.",
            f"Jurisdiction {jurisdiction!r} is not valid for level {level}: expected {english}.",
            field="jurisdiction",
        )
    ]


def _check_kind_and_country(kind: str, country: str | None) -> list[AgencyError]:
    if kind not in KINDS:
        return [
            AgencyError(
                f"Tipo de institución {kind!r} desconocido; use uno de: {', '.join(KINDS)}.",
                f"Unknown agency kind {kind!r}; use one of: {', '.join(KINDS)}.",
                field="kind",
            )
        ]
    if kind != FOREIGN_KIND:
        if country is None:
            return []
        return [
            AgencyError(
                f"Solo una autoridad extranjera ({FOREIGN_KIND}) lleva país; quite {country!r}.",
                f"Only a foreign authority ({FOREIGN_KIND}) has a country; remove {country!r}.",
                field="country",
            )
        ]
    if country is None:
        return [
            AgencyError(
                "Una autoridad extranjera necesita el país para el que actúa (--country): clave "
                "ISO 3166-1 de dos letras distinta de MX, como GT, HN o SV.",
                "A foreign authority needs the country it acts for (--country): a two-letter "
                "ISO 3166-1 code other than MX, such as GT, HN or SV.",
                field="country",
            )
        ]
    if not COUNTRY_CODE.match(country) or country == "MX":
        return [
            AgencyError(
                "Una autoridad extranjera necesita el país para el que actúa: clave ISO 3166-1 "
                f"de dos letras distinta de MX (GT, HN, SV…); se recibió {country!r}.",
                "A foreign authority needs the country it acts for: a two-letter ISO 3166-1 "
                f"code other than MX (GT, HN, SV…); got {country!r}.",
                field="country",
            )
        ]
    return []


def _normal_country(country: str | None) -> str | None:
    return (country.strip().upper() or None) if country is not None else None


def _check_scopes(scopes: list[str]) -> list[AgencyError]:
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        return [
            AgencyError(
                f"Alcances desconocidos: {', '.join(unknown)}; válidos: {', '.join(SCOPES)}.",
                f"Unknown scopes: {', '.join(unknown)}; valid: {', '.join(SCOPES)}.",
                field="scopes",
            )
        ]
    if not scopes:
        return [
            AgencyError("Indique al menos un alcance.", "Give at least one scope.", field="scopes")
        ]
    return []


def _check_audit_scope(
    scopes: list[str], kind: str, *, changing: bool = False
) -> list[AgencyError]:
    """Only an oversight body's system reads the audit log (:data:`OVERSIGHT_KINDS`);
    ``changing``: the agency holds the scope and would become of ``kind``."""
    if AUDIT_SCOPE not in scopes or kind in OVERSIGHT_KINDS:
        return []
    # There is no verb that takes a scope away: the way out is a new registration.
    es, en = (
        (
            f"esta institución lo tiene y pasaría a ser de tipo {kind}. Desactívela (puente "
            "agency disable) y regístrela de nuevo sin ese alcance.",
            f"this agency holds it and would become of kind {kind}. Disable it (puente agency "
            "disable) and register it again without that scope.",
        )
        if changing
        else (f"esta institución es de tipo {kind}.", f"this agency is of kind {kind}.")
    )
    return [
        AgencyError(
            f"El alcance {AUDIT_SCOPE} lee el registro de auditoría de todo el hub (cada niña, "
            "niño o adolescente, de todos los estados): es solo de los órganos de supervisión "
            f"(tipo oversight); {es}",
            f"The {AUDIT_SCOPE} scope reads the whole hub's audit log (every child, every "
            f"state): it belongs to oversight bodies only (kind oversight); {en}",
            field="scopes",
        )
    ]


_LABELS = {"name": ("el nombre", "The name"), "contact": ("el contacto", "The contact")}


def _check_text(value: str | None, field: str, limit: int, required: bool) -> list[AgencyError]:
    spanish, english = _LABELS[field]
    if value is None or not value.strip():
        if required:
            return [AgencyError(f"Falta {spanish}.", f"{english} is missing.", field=field)]
        return []
    if len(value) > limit:
        return [
            AgencyError(
                f"{spanish.capitalize()} supera {limit} caracteres.",
                f"{english} exceeds {limit} characters.",
                field=field,
            )
        ]
    return []


def check_webhook_url(url: str) -> list[AgencyError]:
    """An http(s) URL, or a file drop: ``file-drop`` (the agency's folder under
    ``FILE_DROP_PATH``) or a ``file:`` URL (checked to lie inside it at delivery)."""
    from exchange.transports import webhook_url_fault

    fault = webhook_url_fault(url) if url.lower().startswith(("http://", "https://")) else None
    if fault is not None:
        # Not the URL itself in the message: it may carry a password.
        return [
            AgencyError(
                f"El webhook no es una URL utilizable: {fault[0]}.",
                f"The webhook is not a usable URL: {fault[1]}.",
                field="webhook_url",
            )
        ]
    parts = urlsplit(url)
    if len(url) <= 1000 and (
        (parts.scheme in ("http", "https") and parts.netloc)
        or url == "file-drop"
        or (parts.scheme == "file" and parts.path)
    ):
        return []
    return [
        AgencyError(
            f"El webhook {url!r} no es una URL http(s) válida ni un buzón de archivos "
            "(file-drop o file:///…).",
            f"The webhook {url!r} is not a valid http(s) URL nor a file drop "
            "(file-drop or file:///…).",
            field="webhook_url",
        )
    ]


def normalise_public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """An Ed25519 public JWK with its RFC 7638 thumbprint as ``kid``; private keys refused."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidAgency(
            [AgencyError("La clave no es Ed25519.", "The key is not Ed25519.", field="public_jwk")]
        )
    if "d" in jwk:
        raise InvalidAgency(
            [
                AgencyError(
                    "Se recibió una clave privada; registre solo la pública.",
                    "A private key was given; register the public key only.",
                    field="public_jwk",
                )
            ]
        )
    try:
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": jwk.get("x", "")})
    except Exception as error:  # any parse failure is the same answer
        raise InvalidAgency(
            [
                AgencyError(
                    f"Clave pública no válida: {error}",
                    f"Invalid public key: {error}",
                    field="public_jwk",
                )
            ]
        ) from error
    return {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": key.thumbprint()}


# --- services -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredAgency:
    agency_id: str
    client_id: str
    client_secret: str | None = None  # shown once, never stored
    key_id: str | None = None

    def to_json(self) -> dict[str, str]:
        answer = {"agency_id": self.agency_id, "client_id": self.client_id}
        if self.client_secret is not None:
            answer["client_secret"] = self.client_secret
        if self.key_id is not None:
            answer["key_id"] = self.key_id
        return answer


@dataclass(frozen=True)
class RotatedKey:
    agency_id: str
    key_id: str
    #: kid -> when it stops verifying
    retiring: dict[str, datetime] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "agency_id": self.agency_id,
            "key_id": self.key_id,
            "retiring": [
                {"key_id": kid, "retired_at": moment.isoformat()}
                for kid, moment in self.retiring.items()
            ],
        }


@dataclass(frozen=True)
class RetiredKey:
    agency_id: str
    key_id: str
    retired_at: datetime
    #: The agency's keys that still verify, and how many of them have no end (are not in the
    #: grace period of a rotation): with no secret and none lasting, it will be locked out.
    valid_keys_left: int
    lasting_keys_left: int
    has_secret: bool
    require_signature: bool


def _audit(
    session: Session, action: str, verb: str, agency_id: str, *, kid: str | None = None
) -> None:
    # Audit entries carry codes, not free text: the reason code names what happened and to
    # which agency ("registered.mx.chp.dif"); the actor is the hub's administrator. A key
    # change names the key too, as "kid:<thumbprint>" (a thumbprint may begin with "-" or "_",
    # which an object id may not), so oversight can tell which key was added, rotated in or
    # retired.
    audit_log.record_event(
        session,
        action=action,
        outcome="success",
        actor_role="administrator",
        detail=f"{verb}.{agency_id}",
        **({"object_type": "key", "object_id": f"kid:{kid}"} if kid else {}),
    )


def identity_errors(
    agency_id: str, level: str, jurisdiction: str, kind: str, country: str | None
) -> list[AgencyError]:
    """What is wrong with an agency's description as this registry would check it: also what a
    peer hub says of its own agency in a federation envelope (:mod:`exchange.federation`)."""
    return [
        *_check_id(agency_id),
        *_check_level_and_jurisdiction(level, jurisdiction),
        *_check_kind_and_country(kind, country),
    ]


def register_agency(
    session: Session,
    id: str,
    name: str,
    level: str,
    jurisdiction: str,
    scopes: list[str] | tuple[str, ...],
    contact: str | None = None,
    public_jwk: dict[str, Any] | None = None,
    with_secret: bool = False,
    require_signature: bool = False,
    webhook_url: str | None = None,
    kind: str | None = None,
    country: str | None = None,
    drop_root: Path | None = None,
) -> RegisteredAgency:
    """Add an agency; its client secret, if asked for, is in the answer and nowhere else.

    ``kind`` defaults by level (:data:`DEFAULT_KIND_BY_LEVEL`) for callers that predate kinds;
    ``country`` is required for, and only allowed on, a foreign authority.
    """
    scopes = list(dict.fromkeys(scopes))
    kind = kind if kind is not None else DEFAULT_KIND_BY_LEVEL.get(level, "other")
    country = _normal_country(country)
    errors = [  # in the order of the command line's options
        *_check_id(id),
        *_check_text(name, "name", 300, required=True),
        *_check_level_and_jurisdiction(level, jurisdiction),
        *_check_kind_and_country(kind, country),
        *_check_scopes(scopes),
        *_check_audit_scope(scopes, kind),
        *_check_text(contact, "contact", 300, required=False),
        *(check_webhook_url(webhook_url) if webhook_url else []),
    ]
    if webhook_url and not errors and drop_root is not None:
        errors = check_drop_folder(session, id, webhook_url, drop_root)
    if public_jwk is not None:
        try:
            public_jwk = normalise_public_jwk(public_jwk)
        except InvalidAgency as error:
            errors.extend(error.errors)
    if require_signature and public_jwk is None:
        errors.append(
            AgencyError(
                "Exigir firma requiere una clave pública.",
                "Requiring signatures needs a public key.",
                field="require_signature",
            )
        )
    if not errors:
        errors = _check_not_a_peers(session, id)
    if errors:
        raise InvalidAgency(errors)
    if session.get(Agency, id) is not None:
        raise DuplicateAgency(
            f"La agencia {id!r} ya está registrada.", f"Agency {id!r} is already registered."
        )
    secret = secrets.token_urlsafe(32) if with_secret else None
    agency = Agency(
        id=id,
        name=name.strip(),
        level=level,
        kind=kind,
        country=country,
        jurisdiction=jurisdiction,
        contact=contact.strip() if contact else None,
        scope=" ".join(scopes),
        active=True,
        require_signature=require_signature,
        client_secret_hash=hash_client_secret(secret) if secret else None,
        webhook_url=webhook_url or None,
    )
    session.add(agency)
    session.flush()
    key_id = _add_key_row(session, agency, public_jwk) if public_jwk is not None else None
    _audit(session, "agency.registered", "registered", id)
    if key_id is not None:
        _audit(session, "agency.key_added", "key_added", id, kid=key_id)
    return RegisteredAgency(agency_id=id, client_id=id, client_secret=secret, key_id=key_id)


def _check_not_a_peers(session: Session, agency_id: str) -> list[AgencyError]:
    """An agency id a pinned peer hub speaks for is that hub's: registered here as well, a
    consent naming it would be ambiguous, and the peer could ask in its name."""
    from exchange.peers import peer_covering_agency

    peer = peer_covering_agency(session, agency_id)
    if peer is None:
        return []
    prefixes = ", ".join(peer.agency_prefixes)
    return [
        AgencyError(
            f"{agency_id} queda bajo los prefijos de agencias del nodo par {peer.hub_id} "
            f"({prefixes}): es una de sus agencias. Si es de este nodo, cambie los prefijos del "
            f"par con 'puente peer set-agency-prefixes {peer.hub_id} PREFIJO…'.",
            f"{agency_id} lies under the agency prefixes of peer hub {peer.hub_id} ({prefixes}): "
            "it is one of that hub's agencies. If it belongs to this hub, change the peer's "
            f"prefixes with 'puente peer set-agency-prefixes {peer.hub_id} PREFIX…'.",
            field="id",
        )
    ]


def set_scopes(session: Session, agency_id: str, scopes: list[str] | tuple[str, ...]) -> bool:
    """Give the agency exactly ``scopes``; False when it already had them. Scopes taken away
    end the tokens its systems hold (they carry the scopes they were issued with); people's
    tokens keep only what their roles and the agency's scopes both allow, as always."""
    scopes = list(dict.fromkeys(scopes))
    agency = get_agency(session, agency_id)
    errors = [*_check_scopes(scopes), *_check_audit_scope(scopes, agency.kind)]
    if errors:
        raise InvalidAgency(errors)
    before = agency.scopes
    if set(before) == set(scopes):
        return False
    agency.scope = " ".join(scopes)
    if set(before) - set(scopes):
        end_system_tokens(session, agency_id)
    _audit(session, "agency.updated", "scopes_changed", agency_id)
    return True


def get_agency(session: Session, agency_id: str) -> Agency:
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise UnknownAgency(agency_id)
    return agency


def _add_key_row(session: Session, agency: Agency, public_jwk: dict[str, Any]) -> str:
    jwk = normalise_public_jwk(public_jwk)
    existing = session.get(AgencyKey, jwk["kid"])
    if existing is not None:
        raise DuplicateAgency(
            f"La clave {jwk['kid']} ya está registrada (agencia {existing.agency_id}).",
            f"Key {jwk['kid']} is already registered (agency {existing.agency_id}).",
        )
    # Through the relationship, so ``agency.keys`` includes it at once.
    agency.keys.append(
        AgencyKey(
            kid=jwk["kid"],
            public_jwk=json.dumps(jwk, sort_keys=True),
            active=True,
            created_at=utcnow(),
        )
    )
    session.flush()
    return str(jwk["kid"])


def add_key(session: Session, agency_id: str, public_jwk: dict[str, Any]) -> str:
    """Register one more key for the agency, beside the ones it has; returns its kid."""
    agency = get_agency(session, agency_id)
    kid = _add_key_row(session, agency, public_jwk)
    _audit(session, "agency.key_added", "key_added", agency_id, kid=kid)
    return kid


def rotate_key(
    session: Session,
    agency_id: str,
    public_jwk: dict[str, Any],
    grace: timedelta = ROTATION_GRACE,
) -> RotatedKey:
    """Make ``public_jwk`` the current key; the keys it replaces retire after ``grace``.

    With no grace (a key given up at once, perhaps a compromised one) the tokens the agency's
    systems hold end too, as :func:`retire_key` ends them: a token does not record which key
    obtained it."""
    agency = get_agency(session, agency_id)
    now = utcnow()
    replaced = [key for key in agency.keys if key.is_valid(now)]
    kid = _add_key_row(session, agency, public_jwk)
    retire_at = now + grace
    retiring: dict[str, datetime] = {}
    for key in replaced:
        if key.retired_at is None or as_utc(key.retired_at) > retire_at:
            key.retired_at = retire_at
        if grace <= timedelta(0):
            key.active = False
        retiring[key.kid] = as_utc(key.retired_at)
    if grace <= timedelta(0) and replaced:
        end_system_tokens(session, agency_id)
    _audit(session, "agency.key_rotated", "key_rotated", agency_id, kid=kid)
    return RotatedKey(agency_id=agency_id, key_id=kid, retiring=retiring)


def retire_key(
    session: Session, agency_id: str, kid: str, *, even_if_last: bool = False
) -> RetiredKey:
    """Stop a key verifying at once (for example a compromised one), and end the tokens the
    agency's systems hold: a token does not record which key obtained it, and one obtained
    with a compromised key must not outlive it. A key already retired is left as it was (the
    day it was retired is history).

    Refused, unless ``even_if_last``, when the agency has no client secret and no other key
    that stays valid: it could not authenticate any more (or not once the grace of the keys a
    rotation replaced ends), and nothing but a new key would let it back in."""
    _lock_credentials(session, agency_id)
    key = session.get(AgencyKey, kid)
    if key is None or key.agency_id != agency_id:
        raise AgencyError(
            f"La agencia {agency_id!r} no tiene la clave {kid!r}.",
            f"Agency {agency_id!r} has no key {kid!r}.",
            field="kid",
        )
    if not key.active:
        retired = key.retired_at.date().isoformat() if key.retired_at else "?"
        raise AgencyError(
            f"La clave {kid} ya estaba retirada (desde {retired}); no se cambió nada.",
            f"Key {kid} was already retired (since {retired}); nothing was changed.",
        )
    agency = key.agency
    now = utcnow()
    others = [other for other in agency.keys if other.kid != kid and other.is_valid(now)]
    lasting = [other for other in others if other.retired_at is None]
    if agency.client_secret_hash is None and not lasting and not even_if_last:
        raise _last_key_refusal(agency_id, kid, others)
    key.active = False
    key.retired_at = now
    end_system_tokens(session, agency_id)
    _audit(session, "agency.key_revoked", "key_retired", agency_id, kid=kid)
    return RetiredKey(
        agency_id=agency_id,
        key_id=kid,
        retired_at=now,
        valid_keys_left=len(others),
        lasting_keys_left=len(lasting),
        has_secret=agency.client_secret_hash is not None,
        require_signature=agency.require_signature,
    )


def _last_key_refusal(agency_id: str, kid: str, others: list[AgencyKey]) -> AgencyError:
    """Why retiring ``kid`` would lock the agency out, and the ways on (``others``: its keys
    in a rotation's grace, which stop verifying soon)."""
    if others:
        until = min(as_utc(other.retired_at) for other in others if other.retired_at)
        when = f"{until:%Y-%m-%d %H:%M} UTC"
        es = (
            f"La agencia {agency_id} no tiene secreto de cliente, y sus claves aparte de {kid} "
            f"solo valen hasta el {when} (gracia de una rotación): retirar {kid} la dejaría sin "
            "poder autenticarse cuando venzan."
        )
        en = (
            f"Agency {agency_id} has no client secret, and its keys other than {kid} only "
            f"verify until {when} (a rotation's grace): retiring {kid} would leave it unable "
            "to authenticate once they stop."
        )
    else:
        es = (
            f"La clave {kid} es la última vigente de la agencia {agency_id}, que no tiene "
            "secreto de cliente: retirarla la dejaría sin poder autenticarse."
        )
        en = (
            f"Key {kid} is the last valid key of agency {agency_id}, which has no client "
            "secret: retiring it would leave the agency unable to authenticate."
        )
    return AgencyError(
        f"{es} Registre antes una clave nueva (puente agency rotate-key {agency_id} "
        "--public-key …, con --grace-hours 0 si la clave está comprometida: retira a la vez las "
        "que reemplaza), o, para dejarla sin acceso a propósito, repita con --even-if-last.",
        f"{en} Register a new key first (puente agency rotate-key {agency_id} --public-key …, "
        "with --grace-hours 0 if the key is compromised: that retires the keys it replaces at "
        "once), or, to lock the agency out on purpose, repeat with --even-if-last.",
        field="kid",
    )


def _lock_credentials(session: Session, agency_id: str) -> None:
    """Take the agency's row (PostgreSQL) before counting the credentials it keeps: two
    administrators retiring its last two keys, or one a key and the other its secret, at once
    would each see the other's still there and leave it with none."""
    session.execute(select(Agency.id).where(Agency.id == agency_id).with_for_update())


def end_system_tokens(session: Session, agency_id: str, *, people_too: bool = False) -> None:
    """Revoke the tokens the agency's own systems hold (client credentials); people's personal
    tokens are theirs and stay, unless ``people_too`` (the agency is disabled)."""
    ended = update(AccessToken).where(
        AccessToken.agency_id == agency_id, AccessToken.revoked.is_(False)
    )
    if not people_too:
        ended = ended.where(AccessToken.person_id.is_(None))
    session.execute(ended.values(revoked=True))


def replace_secret(session: Session, agency_id: str) -> str:
    """Give the agency a new client secret (returned, and stored only as a hash): the old one
    stops working and the tokens its systems hold end at once."""
    agency = get_agency(session, agency_id)
    secret = secrets.token_urlsafe(32)
    agency.client_secret_hash = hash_client_secret(secret)
    end_system_tokens(session, agency_id)
    _audit(session, "agency.updated", "secret_replaced", agency_id)
    return secret


def remove_secret(session: Session, agency_id: str) -> None:
    """Take the agency's client secret away (it authenticates with its keys from then on);
    the tokens its systems hold end at once. Refused when it has no secret, or no active key
    to authenticate with instead (disable the agency to shut it out)."""
    _lock_credentials(session, agency_id)
    agency = get_agency(session, agency_id)
    if agency.client_secret_hash is None:
        raise AgencyError(
            f"La agencia {agency_id} no tiene secreto; no se cambió nada.",
            f"Agency {agency_id} has no secret; nothing was changed.",
        )
    # A key in a rotation's grace, or past it (still ``active``, but no longer verifying),
    # would leave the agency without a credential when the grace ends, or at once.
    now = utcnow()
    if not any(key.is_valid(now) and key.retired_at is None for key in agency.keys):
        raise AgencyError(
            f"La agencia {agency_id} no tiene otra credencial (ninguna clave activa que siga "
            "vigente): quitarle el secreto la dejaría sin acceso. Añada una clave (agency "
            "add-key), dele un secreto nuevo (agency new-secret) o desactívela (agency "
            "disable).",
            f"Agency {agency_id} has no other credential (no active key that stays valid): "
            "removing its secret would leave it unable to authenticate. Add a key (agency "
            "add-key), give it a new secret (agency new-secret) or disable it (agency disable).",
        )
    agency.client_secret_hash = None
    end_system_tokens(session, agency_id)
    _audit(session, "agency.updated", "secret_removed", agency_id)


def _switch_active(session: Session, agency_id: str, active: bool) -> None:
    """Set the agency's active flag, only if it changes: by a conditional update, so that of
    two (or a repeated) disables only one happens and reaches the signed log."""
    agency = get_agency(session, agency_id)  # UnknownAgency first
    switched = (
        update(Agency)
        .where(Agency.id == agency_id, Agency.active.is_(not active))
        .values(active=active)
    )
    changed = db.changed_once(session, switched)
    session.expire(agency)  # read the flag again from the row
    if not changed:
        raise AgencyError(
            f"La agencia {agency_id} ya estaba {'activa' if active else 'desactivada'}; "
            "no se cambió nada.",
            f"Agency {agency_id} was already {'enabled' if active else 'disabled'}; "
            "nothing was changed.",
        )


def disable_agency(session: Session, agency_id: str) -> tuple[int, int]:
    """Refuse the agency new tokens and end the ones it holds, at once, with its people's
    tokens and portal sessions; deny the pending access requests it or its people made and
    revoke the grants made to it or to them. Returns (requests denied, grants revoked)."""
    from exchange.consents.access import end_access_of_disabled_agency  # it imports this

    _switch_active(session, agency_id, False)
    # Token validation checks the agency is active; revoking its tokens as well means they stay
    # dead even if the agency is enabled again later.
    end_system_tokens(session, agency_id, people_too=True)
    # And its people's portal sessions, for good: enabling it again must not revive them.
    people.end_agency_sessions(session, agency_id)
    _audit(session, "agency.suspended", "disabled", agency_id)
    # And what they asked for and were given, as disabling a person does: a pending request
    # would wait in the officers' queues for nothing, and a grant would come back into force
    # if the agency were enabled again, with no officer deciding anew.
    return end_access_of_disabled_agency(session, agency_id)


def enable_agency(session: Session, agency_id: str) -> None:
    """Enable a disabled agency again. Nothing disabling ended comes back: its tokens stay
    revoked, its people's portal sessions ended, its and their requests denied and grants
    revoked (a new request is needed)."""
    _switch_active(session, agency_id, True)
    people.end_agency_sessions(session, agency_id)  # as disabling does: no old session back
    _audit(session, "agency.updated", "enabled", agency_id)


def set_kind(session: Session, agency_id: str, kind: str, country: str | None = None) -> None:
    """Say what kind of body the agency is (and for a foreign authority, for which country).

    Takes effect on the next request of its systems and people: the bearer lookup reads the
    kind from the agency row every time. An oversight body that holds :data:`AUDIT_SCOPE`, or
    has active auditors, stays one: another kind would keep reading every child's log.
    """
    country = _normal_country(country)
    errors = _check_kind_and_country(kind, country)
    if errors:
        raise InvalidAgency(errors)
    agency = get_agency(session, agency_id)
    if kind not in OVERSIGHT_KINDS:
        errors = [
            *_check_audit_scope(agency.scopes, kind, changing=True),
            *_auditors_stay(session, agency, kind),
        ]
        if errors:
            raise InvalidAgency(errors)
    agency.kind = kind
    agency.country = country
    _audit(session, "agency.updated", "kind_changed", agency_id)


def _auditors_stay(session: Session, agency: Agency, kind: str) -> list[AgencyError]:
    """Active auditors keep their tokens' audit:read whatever their agency's kind: an agency
    with some does not leave oversight until they are disabled."""
    from exchange.people import Person

    auditors = [
        person.id
        for person in session.scalars(
            select(Person).where(Person.agency_id == agency.id, Person.active.is_(True))
        )
        if "auditor" in person.role_list
    ]
    if not auditors:
        return []
    listed = ", ".join(auditors)
    return [
        AgencyError(
            f"La agencia {agency.id} tiene auditores activos ({listed}), que leen el registro de "
            f"auditoría de todo el hub: no puede pasar a ser de tipo {kind} mientras los tenga. "
            "Desactívelos antes (puente person disable …).",
            f"Agency {agency.id} has active auditors ({listed}), who read the whole hub's audit "
            f"log: it cannot become of kind {kind} while it has them. Disable them first "
            "(puente person disable …).",
            field="kind",
        )
    ]


def check_drop_folder(
    session: Session, agency_id: str, url: str, drop_root: Path
) -> list[AgencyError]:
    """A file-drop ``url`` must name a folder inside ``drop_root`` that is no other agency's:
    checked when it is set, not only when the first delivery fails, and never a folder where
    another agency collects its notifications (or one that holds it)."""
    from exchange.transports import PermanentDeliveryError, drop_folder, uses_file_drop

    if not uses_file_drop(url):
        return []
    root = drop_root.resolve()
    try:
        folder = drop_folder(root, Agency(id=agency_id, webhook_url=url))
    except PermanentDeliveryError:
        return [
            AgencyError(
                f"El buzón {url!r} no es una carpeta dentro de FILE_DROP_PATH ({root}).",
                f"The file drop {url!r} is not a folder inside FILE_DROP_PATH ({root}).",
                field="webhook_url",
            )
        ]
    for other in session.scalars(select(Agency).where(Agency.id != agency_id)):
        theirs = [root / other.id]
        if uses_file_drop(other.webhook_url):
            try:
                theirs.append(drop_folder(root, other))
            except PermanentDeliveryError:
                pass
        if any(folder.is_relative_to(t) or t.is_relative_to(folder) for t in theirs):
            return [
                AgencyError(
                    f"El buzón {url!r} ({folder}) coincide con la carpeta de la agencia "
                    f"{other.id}: una queda dentro de la otra; elija otra carpeta.",
                    f"The file drop {url!r} ({folder}) overlaps agency {other.id}'s folder: "
                    "one lies inside the other; choose another folder.",
                    field="webhook_url",
                )
            ]
    return []


@dataclass(frozen=True)
class NoticesMoved:
    """What changing where an agency gets its notifications did to those not yet delivered:
    ``held``, now kept for it to read with ``GET /v1/notifications`` (it has no webhook or file
    drop any more); ``queued``, kept for it before and now for ``puente worker`` to send."""

    held: int = 0
    queued: int = 0


def set_webhook(
    session: Session, agency_id: str, url: str | None, *, drop_root: Path | None = None
) -> NoticesMoved:
    """Where the hub delivers notifications for the agency; None removes it. With
    ``drop_root`` (the hub's ``FILE_DROP_PATH``), a file drop is checked to lie inside it.

    The agency's notifications not yet delivered follow, in the same transaction: without a
    webhook or file drop, those waiting to be sent (or that died for want of one) are kept for
    it to read (``held``), as if they had been queued then, where the worker would only mark
    them dead; with one, those kept for it and never read, and those that died for want of
    one, are sent. Returns what moved."""
    if url:
        errors = check_webhook_url(url)
        if not errors and drop_root is not None:
            errors = check_drop_folder(session, agency_id, url, drop_root)
        if errors:
            raise InvalidAgency(errors)
    agency = get_agency(session, agency_id)
    agency.webhook_url = url or None
    _audit(session, "agency.updated", "webhook_changed", agency_id)
    session.flush()  # the statements below read the agency's new address
    if url:
        return NoticesMoved(queued=_send_kept_notices(session, agency_id))
    return NoticesMoved(held=keep_notices_for_reading(session, agency_id=agency_id))


def keep_notices_for_reading(
    session: Session, *, agency_id: str | None = None, message_ids: list[str] | None = None
) -> int:
    """Turn the notifications waiting to be sent (``pending``, ``failed``) to agencies that
    have no webhook or file drop, and those that died for want of one, into ``held``: kept for
    the agency to read with ``GET /v1/notifications``, never sent, as :func:`exchange.outbox.
    enqueue` queues them for such an agency. Only ``agency_id``'s, or only ``message_ids``,
    when given. The attempt count starts again at 0: a held message's attempts count its
    reads (:func:`exchange.outbox_reading.hand_out`). A message a worker holds now loses its lease,
    so its outcome is not written over this. Returns how many were kept."""
    from exchange.outbox import DUE_STATUSES, OutboxMessage
    from exchange.transports import NO_WEBHOOK

    without_channel = select(Agency.id).where(
        (Agency.webhook_url.is_(None)) | (Agency.webhook_url == "")
    )
    if agency_id is not None:
        without_channel = without_channel.where(Agency.id == agency_id)
    # The reason names the agency: compared as stored, with each message's own agency's id.
    died_for_want = func.replace(NO_WEBHOOK, "{}", OutboxMessage.agency_id)
    statement = update(OutboxMessage).where(
        OutboxMessage.agency_id.in_(without_channel),
        OutboxMessage.status.in_(DUE_STATUSES)
        | ((OutboxMessage.status == "dead") & (OutboxMessage.last_error == died_for_want)),
    )
    if message_ids is not None:
        statement = statement.where(OutboxMessage.id.in_(message_ids))
    return _move_notices(session, statement, "held")


def _send_kept_notices(session: Session, agency_id: str) -> int:
    """Turn ``agency_id``'s notifications kept for it to read and never read (a held message's
    attempts count its reads: one read is not pushed as well), and those that died for want of
    a webhook, into ``pending``, for ``puente worker`` to send now that it has one."""
    from exchange.outbox import OutboxMessage
    from exchange.transports import NO_WEBHOOK

    statement = update(OutboxMessage).where(
        OutboxMessage.agency_id == agency_id,
        ((OutboxMessage.status == "held") & (OutboxMessage.attempts == 0))
        | (
            (OutboxMessage.status == "dead")
            & (OutboxMessage.last_error == NO_WEBHOOK.format(agency_id))
        ),
    )
    return _move_notices(session, statement, "pending")


def _move_notices(session: Session, statement: Any, status: str) -> int:
    """Run ``statement`` (an ``UPDATE`` of outbox messages) to make them ``status``, due now,
    with no attempt counted, no lease and no error (nor what the error said: refused by the
    receiver, readable once dead)."""
    result = session.execute(
        statement.values(
            status=status,
            attempts=0,
            next_attempt_at=utcnow(),
            lease_token=None,
            lease_until=None,
            last_error=None,
            refused_by_receiver=False,
            readable_when_dead=False,
        ).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def set_require_signature(session: Session, agency_id: str, required: bool) -> bool:
    """Whether the agency's pushes must carry a ``Puente-Signature``; returns whether the
    setting changed (asking for what is already set changes and audits nothing).

    Takes effect on the agency's next push: the push reads the flag from the agency row every
    time. Requiring signatures needs a key that verifies them now, or every push would fail.
    """
    agency = get_agency(session, agency_id)
    if agency.require_signature == required:
        return False
    if required and not active_keys(agency):
        raise AgencyError(
            f"Exigir firma requiere una clave pública vigente; registre una antes "
            f"(puente agency add-key {agency_id} --public-key …).",
            f"Requiring signatures needs a valid public key; register one first "
            f"(puente agency add-key {agency_id} --public-key …).",
            field="require_signature",
        )
    agency.require_signature = required
    verb = "signature_required" if required else "signature_optional"
    _audit(session, "agency.updated", verb, agency_id)
    return True


def list_agencies(session: Session) -> list[Agency]:
    return list(
        session.scalars(select(Agency).options(selectinload(Agency.keys)).order_by(Agency.id))
    )


def active_keys(agency: Agency, now: datetime | None = None) -> list[dict[str, Any]]:
    """The public JWKs that verify the agency's assertions and signatures now, newest first."""
    moment = now or utcnow()
    valid = [key for key in agency.keys if key.is_valid(moment)]
    return [key.jwk for key in sorted(valid, key=lambda k: as_utc(k.created_at), reverse=True)]


def describe(agency: Agency, now: datetime | None = None) -> dict[str, Any]:
    """The agency as ``puente agency list --json`` shows it (no secret, no hash)."""
    moment = now or utcnow()
    return {
        "id": agency.id,
        "name": agency.name,
        "level": agency.level,
        "kind": agency.kind,
        "country": agency.country,
        "jurisdiction": agency.jurisdiction,
        "contact": agency.contact,
        "scopes": agency.scopes,
        "active": agency.active,
        "require_signature": agency.require_signature,
        "has_secret": agency.client_secret_hash is not None,
        "webhook_url": agency.webhook_url,
        "keys": [
            {
                "key_id": key.kid,
                "valid": key.is_valid(moment),
                "retired_at": as_utc(key.retired_at).isoformat() if key.retired_at else None,
            }
            for key in agency.keys
        ],
    }


# People belong to agencies; importing their module here puts the ``person`` table on the
# metadata wherever agencies are (models, migrations, create_all).
from exchange import people  # noqa: E402
