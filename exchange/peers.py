"""The federation peer registry: other hubs whose audit logs this hub witnesses and whose
federation envelopes it accepts.

A peer is pinned by key, out of band (DESIGN.md, "Federation"): its hub id, the origin line of
its audit log, the C2SP verifier key (vkey) that signs that log's checkpoints and, when known,
the vkey of its witness and the public JWK of its signing key (the ``signing_jwk`` of its
``/.well-known/puente-hub``), and the agency id prefixes it speaks for in a lookup
(``mx.fed.``: its agencies are ``mx.fed.comar``, ``mx.fed.inm``…).
``POST /v1/witness/add-checkpoint`` cosigns only checkpoints of an active peer's origin signed
by its pinned log key (:mod:`exchange.witness_service`); ``POST /v1/federation/envelopes``
accepts only envelopes signed by an active peer's pinned signing key, for its own agencies
(:mod:`exchange.federation`).

The service functions work inside the caller's session and never commit: each change records
its audit entry in the same transaction, and the caller commits both or neither.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import JSON, Boolean, DateTime, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit import CosignatureVerifier, FormatError, Verifier
from audit.errors import in_spanish
from exchange import audit_log
from exchange.auth import as_utc, utcnow
from exchange.db import Base
from schemas.errors import BilingualError

#: The audit-event schema's pattern for a hub id (``mx.chp.puente``).
HUB_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
MAX_ORIGIN = 200
MAX_URL = 300
#: An agency id prefix a peer speaks for: two or more labels of an agency id (lowercase letters,
#: digits, inner hyphens), each followed by a dot, so that ``mx.fed.`` never covers
#: ``mx.federal.x``.
AGENCY_PREFIX = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.){2,}$")
MAX_AGENCY_PREFIX = 99
MAX_AGENCY_PREFIXES = 20
#: An Ed25519 public key (``x``): 32 bytes, base64url without padding.
_ED25519_X = re.compile(r"^[A-Za-z0-9_-]{43}$")


class Peer(Base):
    __tablename__ = "peer"

    hub_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: The origin line of the peer's checkpoints (c2sp.org/tlog-checkpoint): one peer per log.
    origin: Mapped[str] = mapped_column(String(MAX_ORIGIN), unique=True)
    base_url: Mapped[str | None] = mapped_column(String(MAX_URL), nullable=True)
    #: Ed25519 note vkey (type 0x01) whose key name is ``origin``.
    log_vkey: Mapped[str] = mapped_column(Text)
    #: tlog-cosignature vkey (type 0x04) of the peer's witness, for its cosignatures on ours.
    witness_vkey: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Public Ed25519 JWK (``kty``, ``crv``, ``x``, ``kid``) that signs the peer's federation
    #: envelopes; without it the peer's envelopes are refused.
    signing_jwk: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The agency id prefixes the peer speaks for (``["mx.fed."]``): a lookup it sends for an
    #: agency id under none of them is refused. No two peers' prefixes overlap, so an agency
    #: has one hub that may speak for it.
    agency_prefixes: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def log_verifier(self) -> Verifier:
        return Verifier.from_vkey(self.log_vkey)

    def signing_key(self) -> OKPKey | None:
        return None if self.signing_jwk is None else OKPKey.import_key(json.loads(self.signing_jwk))


class PeerError(BilingualError, ValueError):
    """A registry change refused; ``field`` names the input at fault, if one is."""

    def __init__(self, message_es: str, message_en: str, *, field: str | None = None) -> None:
        super().__init__(message_es, message_en)
        self.field = field


class InvalidPeer(PeerError):
    """An argument is malformed (a key, an origin, an id, a URL)."""


class UnknownPeer(PeerError):
    def __init__(self, hub_id: str) -> None:
        super().__init__(
            f"No hay un nodo par {hub_id!r} registrado.", f"No peer hub {hub_id!r} is registered."
        )


class DuplicatePeer(PeerError):
    """The hub id, the log origin or the signing key is already pinned."""


def check_log_vkey(vkey: str, origin: str) -> Verifier:
    """The log's verifier key, refused when malformed or named other than ``origin``.

    c2sp.org/tlog-checkpoint: the log's key name in its signature line should match the origin
    line; pinning a key of another name would trust a key meant for another log.
    """
    try:
        verifier = Verifier.from_vkey(vkey)
    except FormatError as error:
        raise InvalidPeer(
            f"La llave de la bitácora no es una llave verificadora Ed25519 (C2SP vkey): "
            f"{in_spanish(error)}",
            f"The log key is not an Ed25519 verifier key (C2SP vkey): {error}",
            field="log_vkey",
        ) from error
    if verifier.name != origin:
        raise InvalidPeer(
            f"La llave de la bitácora se llama {verifier.name!r}, pero el origen es {origin!r}: "
            "el nombre de la llave que firma los puntos de control debe ser su origen.",
            f"The log key is named {verifier.name!r}, but the origin is {origin!r}: the key "
            "that signs checkpoints must be named after their origin.",
            field="log_vkey",
        )
    return verifier


def check_witness_vkey(vkey: str) -> CosignatureVerifier:
    try:
        return CosignatureVerifier.from_vkey(vkey)
    except FormatError as error:
        raise InvalidPeer(
            "La llave del testigo no es una llave de cofirma (C2SP vkey de tipo 0x04, la "
            f"witness_vkey de /.well-known/puente-hub): {in_spanish(error)}",
            "The witness key is not a cosignature key (a C2SP vkey of type 0x04, the "
            f"witness_vkey of /.well-known/puente-hub): {error}",
            field="witness_vkey",
        ) from error


def check_signing_jwk(text: str) -> str:
    """The peer's signing key as stored: a public Ed25519 JWK, its ``kid`` the key's RFC 7638
    thumbprint (as ``/.well-known/puente-hub`` publishes it), in canonical form."""

    def refused(es: str, en: str) -> InvalidPeer:
        return InvalidPeer(
            f"La llave de firma no es una JWK pública Ed25519 (la signing_jwk de "
            f"/.well-known/puente-hub): {es}",
            f"The signing key is not a public Ed25519 JWK (the signing_jwk of "
            f"/.well-known/puente-hub): {en}",
            field="signing_jwk",
        )

    try:
        given = json.loads(text)
    except ValueError as error:
        raise refused(f"no es JSON ({error}).", f"it is not JSON ({error}).") from error
    if not isinstance(given, dict):
        raise refused(
            "es JSON, pero no un objeto JWK ({...}).", "it is JSON, but not a JWK object ({...})."
        )
    if "d" in given:
        raise refused(
            "contiene una llave privada ('d'); registre solo la pública.",
            "it holds a private key ('d'); pin the public key only.",
        )
    if given.get("kty") != "OKP" or given.get("crv") != "Ed25519":
        raise refused("kty debe ser OKP y crv Ed25519.", "kty must be OKP and crv Ed25519.")
    x = given.get("x")
    if not isinstance(x, str) or not _ED25519_X.match(x):
        raise refused(
            "x debe ser la llave pública de 32 bytes en base64url sin relleno (43 caracteres).",
            "x must be the 32-byte public key in base64url without padding (43 characters).",
        )
    try:
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": x})
    except (ValueError, TypeError, JoseError) as error:
        reason = str(error) or type(error).__name__
        raise refused(
            f"x no es una llave Ed25519 ({reason}).", f"x is not an Ed25519 key ({reason})."
        ) from error
    kid = key.thumbprint()
    if given.get("kid") not in (None, kid):
        raise InvalidPeer(
            f"El kid {given['kid']!r} no es la huella (RFC 7638) de la llave, {kid!r}.",
            f"The kid {given['kid']!r} is not the key's RFC 7638 thumbprint, {kid!r}.",
            field="signing_jwk",
        )
    return json.dumps({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid})


def default_agency_prefixes(hub_id: str) -> list[str]:
    """The agency ids a peer speaks for unless told otherwise: those of its jurisdiction, the
    first two labels of its hub id (``mx.fed.puente`` → ``["mx.fed."]``); none when its id has
    no such two labels."""
    prefix = ".".join(hub_id.split(".")[:2]) + "."
    return [prefix] if AGENCY_PREFIX.match(prefix) else []


def check_agency_prefixes(prefixes: list[str]) -> list[str]:
    """The prefixes as stored (sorted, without repeats), each refused unless lowercase, of two
    or more labels and ending with a dot."""
    if len(prefixes) > MAX_AGENCY_PREFIXES:
        raise InvalidPeer(
            f"A lo más {MAX_AGENCY_PREFIXES} prefijos de agencia por nodo par.",
            f"At most {MAX_AGENCY_PREFIXES} agency prefixes for a peer hub.",
            field="agency_prefixes",
        )
    for prefix in prefixes:
        if len(prefix) > MAX_AGENCY_PREFIX or not AGENCY_PREFIX.match(prefix):
            raise InvalidPeer(
                f"El prefijo de agencia {prefix!r} no es válido: dos o más partes de un id de "
                "agencia en minúsculas, cada una seguida de un punto (mx.fed.).",
                f"The agency prefix {prefix!r} is not valid: two or more parts of an agency id, "
                "lowercase, each followed by a dot (mx.fed.).",
                field="agency_prefixes",
            )
    return sorted(set(prefixes))


def _no_overlap(session: Session, hub_id: str, prefixes: list[str]) -> None:
    """One hub speaks for an agency: prefixes of two peers where one starts the other would
    let both speak for the agencies under the longer one."""
    for other in session.scalars(select(Peer).where(Peer.hub_id != hub_id)):
        for theirs in other.agency_prefixes:
            for ours in prefixes:
                if ours.startswith(theirs) or theirs.startswith(ours):
                    raise InvalidPeer(
                        f"El prefijo de agencia {ours!r} se cruza con {theirs!r}, del nodo par "
                        f"{other.hub_id!r}: solo un nodo habla por cada agencia. Indique los "
                        "prefijos propios de este nodo (--agency-prefix).",
                        f"The agency prefix {ours!r} overlaps {theirs!r}, of peer hub "
                        f"{other.hub_id!r}: one hub only speaks for each agency. Give this "
                        "hub's own prefixes (--agency-prefix).",
                        field="agency_prefixes",
                    )


def _signing_key_not_pinned_elsewhere(session: Session, hub_id: str, signing_jwk: str) -> None:
    """A key pinned for two peers would let one of them sign envelopes as the other."""
    x = json.loads(signing_jwk)["x"]
    for other in session.scalars(
        select(Peer).where(Peer.hub_id != hub_id, Peer.signing_jwk.is_not(None))
    ):
        if json.loads(other.signing_jwk or "{}").get("x") == x:
            raise DuplicatePeer(
                f"Esa llave de firma ya está registrada para el nodo par {other.hub_id!r}: un "
                "nodo no firma como otro. Compare la llave con los operadores del nodo.",
                f"That signing key is already pinned for peer hub {other.hub_id!r}: one hub "
                "does not sign as another. Check the key with the hub's operators.",
                field="signing_jwk",
            )


def _check_fields(hub_id: str, origin: str, base_url: str | None) -> None:
    if not HUB_ID.match(hub_id):
        raise InvalidPeer(
            f"El identificador de nodo {hub_id!r} no es válido: minúsculas, dígitos, '.', '_' "
            "o '-', hasta 100 caracteres.",
            f"The hub id {hub_id!r} is not valid: lowercase letters, digits, '.', '_' or '-', "
            "up to 100 characters.",
            field="hub_id",
        )
    # Checkpoint origins are one non-empty line; Puente's (and the C2SP recommendation) are
    # schema-less URLs, without spaces or '+', so they can also name the log's key.
    if not origin or len(origin) > MAX_ORIGIN or any(c.isspace() or c == "+" for c in origin):
        raise InvalidPeer(
            f"El origen {origin!r} no es válido: una línea sin espacios ni '+', de hasta "
            f"{MAX_ORIGIN} caracteres (el audit_origin de /.well-known/puente-hub).",
            f"The origin {origin!r} is not valid: one line without spaces or '+', up to "
            f"{MAX_ORIGIN} characters (the audit_origin of /.well-known/puente-hub).",
            field="origin",
        )
    if base_url is not None:
        parts = urlsplit(base_url)
        if len(base_url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidPeer(
                f"La URL {base_url!r} no es una URL http(s) válida.",
                f"The URL {base_url!r} is not a valid http(s) URL.",
                field="base_url",
            )
        # Envelopes and witness requests go to the URL followed by their path.
        if "?" in base_url or "#" in base_url:
            raise InvalidPeer(
                f"La URL {base_url!r} lleva consulta ('?') o fragmento ('#'): registre la URL "
                "base del nodo, a la que se añade la ruta de cada envío.",
                f"The URL {base_url!r} has a query ('?') or fragment ('#'): pin the hub's base "
                "URL, to which each request's path is added.",
                field="base_url",
            )


def _not_this_hub(
    hub_id: str,
    origin: str,
    log_vkey: str,
    witness_vkey: str | None,
    signing_jwk: str | None = None,
) -> None:
    """A hub that pinned itself would cosign its own checkpoints (or count its own witness as a
    peer's): a witness that adds no independence, which oversight would take for one."""
    from exchange.keys import audit_origin, hub_keys
    from exchange.transports import hub_signing_public_jwk

    keys = hub_keys(current_app)
    try:
        own_signing: str | None = hub_signing_public_jwk(current_app)["x"]
    except (OSError, ValueError):
        own_signing = None
    own = {
        "hub_id": (hub_id, current_app.config["HUB_ID"]),
        "origin": (origin, audit_origin(current_app)),
        "log_vkey": (log_vkey, keys.log.vkey if keys.log else None),
        "witness_vkey": (witness_vkey, keys.witness.vkey if keys.witness else None),
        "signing_jwk": (json.loads(signing_jwk)["x"] if signing_jwk else None, own_signing),
    }
    for field, (given, ours) in own.items():
        if given is not None and given == ours:
            raise InvalidPeer(
                f"{field} es el de este mismo nodo: un nodo no se atestigua a sí mismo; "
                "registre el de otro nodo.",
                f"{field} is this hub's own: a hub does not witness itself; pin another hub's.",
                field=field,
            )


def add_peer(
    session: Session,
    hub_id: str,
    *,
    origin: str,
    log_vkey: str,
    witness_vkey: str | None = None,
    base_url: str | None = None,
    signing_jwk: str | None = None,
    agency_prefixes: list[str] | None = None,
) -> Peer:
    """Pin a peer hub's audit log (and its witness and signing keys, and the agency prefixes it
    speaks for: by default :func:`default_agency_prefixes`); audited as ``peer_changed``."""
    _check_fields(hub_id, origin, base_url)
    prefixes = check_agency_prefixes(
        default_agency_prefixes(hub_id) if agency_prefixes is None else agency_prefixes
    )
    log_vkey = check_log_vkey(log_vkey, origin).vkey
    if witness_vkey is not None:
        witness_vkey = check_witness_vkey(witness_vkey).vkey
    if signing_jwk is not None:
        signing_jwk = check_signing_jwk(signing_jwk)
    _not_this_hub(hub_id, origin, log_vkey, witness_vkey, signing_jwk)
    if session.get(Peer, hub_id) is not None:
        raise DuplicatePeer(
            f"El nodo par {hub_id!r} ya está registrado.", f"Peer hub {hub_id!r} is already pinned."
        )
    pinned = session.scalar(select(Peer.hub_id).where(Peer.origin == origin))
    if pinned is not None:
        raise DuplicatePeer(
            f"La bitácora {origin!r} ya está registrada para el nodo {pinned!r}.",
            f"The log {origin!r} is already pinned for hub {pinned!r}.",
        )
    if signing_jwk is not None:
        _signing_key_not_pinned_elsewhere(session, hub_id, signing_jwk)
    _no_overlap(session, hub_id, prefixes)
    peer = Peer(
        hub_id=hub_id,
        origin=origin,
        base_url=base_url,
        log_vkey=log_vkey,
        witness_vkey=witness_vkey,
        signing_jwk=signing_jwk,
        agency_prefixes=prefixes,
        active=True,
        added_at=utcnow(),
    )
    session.add(peer)
    session.flush()
    _audit(session, "peer.added", hub_id)
    return peer


def disable_peer(session: Session, hub_id: str) -> Peer:
    """Stop witnessing the peer's log. The witness state of its origin is kept: a witness never
    forgets the size it vouched for."""
    return _set_active(session, hub_id, False)


def enable_peer(session: Session, hub_id: str) -> Peer:
    """Witness a disabled peer's log again, from the size cosigned before it was disabled."""
    return _set_active(session, hub_id, True)


def _set_active(session: Session, hub_id: str, active: bool) -> Peer:
    return _change(
        session,
        get_peer(session, hub_id),
        "active",
        active,
        "enabled" if active else "disabled",
        (
            f"El nodo par {hub_id!r} ya está {'activo' if active else 'desactivado'}.",
            f"Peer hub {hub_id!r} is already {'active' if active else 'disabled'}.",
        ),
    )


def _change(
    session: Session, peer: Peer, field: str, value: Any, detail: str, unchanged: tuple[str, str]
) -> Peer:
    """Set one of the peer's fields, audited as ``peer_changed`` with ``detail``; a value it
    already has is refused with ``unchanged`` (Spanish, English), and nothing is written."""
    if getattr(peer, field) == value:
        raise PeerError(*unchanged)
    setattr(peer, field, value)
    session.flush()
    _audit(session, "peer_changed", peer.hub_id, detail=detail)
    return peer


def pin_signing_key(session: Session, hub_id: str, signing_jwk: str) -> Peer:
    """Pin (or replace, when the peer rotated it) the key that signs the peer's envelopes."""
    peer = get_peer(session, hub_id)
    stored = check_signing_jwk(signing_jwk)
    _not_this_hub(peer.hub_id, peer.origin, peer.log_vkey, peer.witness_vkey, stored)
    _signing_key_not_pinned_elsewhere(session, peer.hub_id, stored)
    return _change(
        session,
        peer,
        "signing_jwk",
        stored,
        "signing_key_pinned",
        (
            f"Esa llave de firma ya está registrada para el nodo par {hub_id!r}.",
            f"That signing key is already pinned for peer hub {hub_id!r}.",
        ),
    )


def set_url(session: Session, hub_id: str, base_url: str | None) -> Peer:
    """Set (or, with None, remove) the address this hub sends to the peer at: lookups, witness
    requests and revocation notices go there."""
    peer = get_peer(session, hub_id)
    _check_fields(peer.hub_id, peer.origin, base_url)
    return _change(
        session,
        peer,
        "base_url",
        base_url,
        "url_set" if base_url else "url_removed",
        (f"El nodo par {hub_id!r} ya tiene esa URL.", f"Peer hub {hub_id!r} already has that URL."),
    )


def set_agency_prefixes(session: Session, hub_id: str, prefixes: list[str]) -> Peer:
    """Set the agency id prefixes the peer speaks for in its lookups (``mx.fed.``, and
    ``mx.ext.`` for the foreign consulates registered on the federal hub)."""
    peer = get_peer(session, hub_id)
    checked = check_agency_prefixes(prefixes)
    _no_overlap(session, peer.hub_id, checked)
    return _change(
        session,
        peer,
        "agency_prefixes",
        checked,
        "agency_prefixes_set",
        (
            f"El nodo par {hub_id!r} ya habla por esos prefijos de agencia.",
            f"Peer hub {hub_id!r} already speaks for those agency prefixes.",
        ),
    )


def speaks_for(peer: Peer, agency_id: str) -> bool:
    """Whether ``peer`` may name ``agency_id`` as the agency that asks."""
    return any(agency_id.startswith(prefix) for prefix in peer.agency_prefixes)


def get_peer(session: Session, hub_id: str) -> Peer:
    peer = session.get(Peer, hub_id)
    if peer is None:
        raise UnknownPeer(hub_id)
    return peer


def active_peer_for_origin(session: Session, origin: str) -> Peer | None:
    return session.scalar(select(Peer).where(Peer.origin == origin, Peer.active.is_(True)))


def list_peers(session: Session) -> list[Peer]:
    return list(session.scalars(select(Peer).order_by(Peer.hub_id)))


def describe(peer: Peer) -> dict[str, Any]:
    """The peer as ``puente peer add --json`` and ``puente peer list --json`` show it."""
    return {
        "hub_id": peer.hub_id,
        "origin": peer.origin,
        "base_url": peer.base_url,
        "log_vkey": peer.log_vkey,
        "witness_vkey": peer.witness_vkey,
        "signing_jwk": json.loads(peer.signing_jwk) if peer.signing_jwk else None,
        "agency_prefixes": list(peer.agency_prefixes),
        "active": peer.active,
        "added_at": as_utc(peer.added_at).isoformat(),
    }


def _audit(session: Session, action: str, hub_id: str, detail: str | None = None) -> None:
    # Codes only: the peer's hub id is the object; the actor is the hub's administrator.
    audit_log.record_event(
        session,
        action=action,
        outcome="success",
        actor_role="administrator",
        object_type="peer",
        object_id=hub_id,
        detail=detail,
    )
