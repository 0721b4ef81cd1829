"""What a pinned peer's description must be, checked before the registry stores it
(:mod:`exchange.peers`): its hub id, log origin and URL, its log and witness verifier keys,
its signing key, the agency id prefixes it speaks for — and never this hub's own: neither its
keys nor its agencies (its own namespace, those registered here). The errors the registry
raises live here too, so that the checks and the registry say the same things.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import CosignatureVerifier, FormatError, Verifier
from audit.errors import in_spanish
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


def own_agency_prefixes() -> list[str]:
    """This hub's own agency namespace, derived from its ``HUB_ID`` as a peer's default is
    from its id (``mx.chp.puente`` → ``["mx.chp."]``)."""
    return default_agency_prefixes(current_app.config["HUB_ID"])


def covers_namespace(prefix: str, namespace: str) -> bool:
    """Whether agency ids under ``prefix`` and under ``namespace`` (both ending with a dot)
    can be the same: one starts the other."""
    return prefix.startswith(namespace) or namespace.startswith(prefix)


def local_agency_covered(session: Session, prefix: str) -> str | None:
    """An agency registered on this hub that ``prefix`` covers: one whose id starts with it
    (``mx.chp.`` covers ``mx.chp.dif``), or one whose own ids' namespace it lies in
    (``mx.chp.dif.`` is ``mx.chp.dif``'s)."""
    from exchange.agencies import Agency

    under = session.scalar(
        select(Agency.id)
        .where(Agency.id.startswith(prefix, autoescape=True))
        .order_by(Agency.id)
        .limit(1)
    )
    if under is not None:
        return under
    labels = prefix.rstrip(".").split(".")
    for count in range(1, len(labels) + 1):
        candidate = ".".join(labels[:count])
        if session.get(Agency, candidate) is not None:
            return candidate
    return None


def not_this_hubs_agencies(session: Session, prefixes: list[str], *, defaulted: bool) -> None:
    """A peer never speaks for this hub's agencies: its prefixes cover neither this hub's own
    namespace nor an agency registered here. Were they to, a consent naming a mistyped local
    agency (``mx.chp.dfi``) would pass for one naming the peer's, and the peer could then ask
    as that agency and read under it."""
    hub_id = current_app.config["HUB_ID"]
    # Said when the prefix is the peer's default (from its hub id), which nobody typed.
    if defaulted:
        hint_es = (
            " Es el prefijo por omisión del nodo par (las dos primeras partes de su id): "
            "indique sus prefijos con --agency-prefix PREFIJO (repetible)."
        )
        hint_en = (
            " It is the peer's default prefix (the first two labels of its id): give its "
            "prefixes with --agency-prefix PREFIX (repeatable)."
        )
    else:
        hint_es = hint_en = ""
    for prefix in prefixes:
        for own in own_agency_prefixes():
            if covers_namespace(prefix, own):
                raise InvalidPeer(
                    f"El prefijo de agencia {prefix!r} se cruza con {own!r}, el espacio de las "
                    f"agencias de este mismo nodo ({hub_id}): un nodo par nunca habla por las "
                    f"agencias de este nodo.{hint_es}",
                    f"The agency prefix {prefix!r} overlaps {own!r}, the namespace of this "
                    f"hub's own agencies ({hub_id}): a peer never speaks for this hub's "
                    f"agencies.{hint_en}",
                    field="agency_prefixes",
                )
        agency_id = local_agency_covered(session, prefix)
        if agency_id is not None:
            raise InvalidPeer(
                f"El prefijo de agencia {prefix!r} cubre {agency_id!r}, una agencia registrada "
                f"en este nodo: un nodo par nunca habla por las agencias de este nodo.{hint_es}",
                f"The agency prefix {prefix!r} covers {agency_id!r}, an agency registered on "
                f"this hub: a peer never speaks for this hub's agencies.{hint_en}",
                field="agency_prefixes",
            )


def colliding_prefixes(session: Session, prefixes: list[str]) -> list[str]:
    """Those of ``prefixes`` that cover this hub's own namespace or one of its agencies."""
    return [
        prefix
        for prefix in prefixes
        if any(covers_namespace(prefix, own) for own in own_agency_prefixes())
        or local_agency_covered(session, prefix) is not None
    ]


def check_fields(hub_id: str, origin: str, base_url: str | None) -> None:
    if not HUB_ID.fullmatch(hub_id):  # $ alone would let a final newline through
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


def not_this_hub(
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
