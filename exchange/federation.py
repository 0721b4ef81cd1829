"""Federation envelopes: signed messages between pinned peer hubs (DESIGN.md, "Federation").

An envelope is a JWT in JWS compact serialisation, signed with the sending hub's signing key
(Ed25519, ``EdDSA``; the ``signing_jwk`` its ``/.well-known/puente-hub`` publishes, which the
receiving hub pinned out of band with ``puente peer add --signing-jwk``). It travels as the body
of ``POST /v1/federation/envelopes`` with ``Content-Type: application/jose``.

- header: ``alg`` ``EdDSA`` (nothing else), ``typ`` ``puente-envelope+jwt`` (so that a webhook
  notification, signed by the same key, can never pass for an envelope), ``kid`` the key's
  RFC 7638 thumbprint;
- claims: ``iss`` the sending hub's id (an active, pinned peer), ``aud`` the receiving hub's id,
  ``iat`` and ``exp`` (at most :data:`MAX_LIFETIME_SECONDS` apart, :data:`LEEWAY_SECONDS` of clock
  skew), ``jti`` (accepted once per peer: a replayed envelope is refused), ``type`` and ``body``.

Types. A **lookup** asks the hub that holds a child's records what one of the asking hub's
agencies may read of them: ``{"requester": {"agency_id", "kind", "level", "jurisdiction",
"country"?}, "purpose", "identifiers": [{"type": "curp" | "unhcr_individual", "value"}]}``,
the requester an agency the asking peer speaks for (under one of its pinned agency prefixes,
:mod:`exchange.peers`) and none of the holding hub's own. The holding hub finds the children
those identifiers link to (exact matches only, as a search by identifier does) and decides a
read of each of their records by the requesting agency, for the purpose, with its own consent
engine — exactly as for one of its own agencies that holds nothing of the record: a consent
naming the agency or its kind lets it read, hard rules apply, and everything else is refused.
Every decision is audited (the actor is the requesting agency, its client ``hub:<peer id>``).
The answer is a **lookup_answer** envelope signed by the holding hub, ``aud`` the asking hub,
``body`` ``{"in_reply_to": <the lookup's jti>, "records": […]}``, returned in the response to
the lookup; it lists only what was permitted, redacted as a read is, so an unknown child and a
child with nothing permitted answer alike.

A lookup may name a **referral** instead of identifiers (``{"requester", "purpose",
"referral": <share id>}``): the holding hub referred one of its records to the requesting
agency (:mod:`exchange.federation_referrals`), and answers that record only, decided with the
referral as its basis — for the referral's own recipient, asking through its hub, for its
purpose; any other lookup naming a referral decides nothing and answers an empty list, as for an
id that names none.

The asking side is :func:`lookup_at_peer` (``POST /v1/federation/lookups``, for an agency of
this hub). A **consent_revoked** envelope tells the asking hub that a consent one of its
agencies read under was revoked (:mod:`exchange.federation_notices`). A **referral** envelope
tells a peer hub that a record of this hub was referred to one of its agencies
(:mod:`exchange.federation_referrals` sends it, :mod:`exchange.federation_received` takes it).
**Transfer** envelopes — responsibility for a case moved to another hub — are not handled by
this version of the hub and are refused as such.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import current_app
from joserfc import jws, jwt
from joserfc.errors import (
    InvalidHeaderValueError,
    JoseError,
    MissingCritHeaderError,
    UnsupportedHeaderError,
)
from sqlalchemy.orm import Session

from exchange.agencies import Agency, identity_errors
from exchange.audit_log import AuditFieldError, record_event
from exchange.auth import PEER_CLIENT_PREFIX, Actor
from exchange.oauth import consume_assertion_id
from exchange.peers import Peer, speaks_for, unreachable_reason
from exchange.problems import negotiated_language
from exchange.transports import load_hub_signing_key
from exchange.witnessing import HttpAnswer, http_post, network_failure
from schemas.errors import BilingualError

if TYPE_CHECKING:
    from exchange.disclosure import ChildContext
    from exchange.records import Record

MEDIA_TYPE = "application/jose"
ENVELOPE_TYP = "puente-envelope+jwt"
MAX_ENVELOPE_BYTES = 64 * 1024
#: The largest lookup answer the asking hub reads (a few dozen redacted records).
MAX_ANSWER_BYTES = 8 * 1024 * 1024
MAX_LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 30
JTI = re.compile(r"^[A-Za-z0-9_-]{16,100}$")
TYPES = ("lookup", "lookup_answer", "consent_revoked", "referral", "transfer")
#: Identifier types a lookup may use: those that link one child, matched exactly.
LOOKUP_IDENTIFIER_TYPES = ("curp", "unhcr_individual")
MAX_IDENTIFIERS = 5
#: Seconds the asking hub waits for a peer's answer, unless ``FEDERATION_TIMEOUT`` says.
DEFAULT_TIMEOUT_SECONDS = 10.0

log = logging.getLogger("puente.federation")


class EnvelopeRefused(BilingualError):
    """An envelope, or a lookup request, refused: ``kind`` is the problem kind to answer with,
    ``pointer`` the place in the envelope at fault, when there is one."""

    def __init__(
        self,
        kind: str,
        message_es: str,
        message_en: str,
        *,
        status: int | None = None,
        pointer: str | None = None,
    ) -> None:
        super().__init__(message_es, message_en)
        self.kind = kind
        self.status = status
        self.pointer = pointer
        #: Set once the envelope's signature verified with a pinned peer's key: a refusal of an
        #: envelope that peer really sent is audited; an unverified one is anyone's and is not.
        self.verified_from: str | None = None
        self.jti: str | None = None
        #: What the verified envelope said (its ``type`` claim and ``body``), unchecked: whom
        #: a refused lookup named as the agency asking is on the log (:func:`audit_refusal`).
        self.claimed: tuple[Any, Any] = (None, None)

    def sent_by(
        self, peer_id: str, jti: str | None, envelope_type: Any = None, body: Any = None
    ) -> EnvelopeRefused:
        """This refusal is of an envelope ``peer_id`` did send (its signature verified), of
        ``envelope_type`` with ``body`` as it claims them: it is audited as a failed receipt."""
        self.verified_from, self.jti = peer_id, jti
        self.claimed = (envelope_type, body)
        return self


class PeerUnavailable(BilingualError):
    """The peer hub could not be reached, or its answer could not be trusted."""


@dataclass(frozen=True)
class Opened:
    """A verified envelope: who sent it and what it says."""

    peer: Peer
    jti: str
    type: str
    body: dict[str, Any]


# -- signing and opening -----------------------------------------------------------------------


def new_envelope_id() -> str:
    return "env_" + secrets.token_hex(16)


def sign_envelope(
    *, audience: str, kind: str, body: Mapping[str, Any], jti: str | None = None
) -> tuple[str, str]:
    """An envelope from this hub to ``audience``: (its jti, the compact JWS)."""
    key = load_hub_signing_key(current_app)
    now = int(time.time())
    jti = jti or new_envelope_id()
    claims = {
        "iss": current_app.config["HUB_ID"],
        "aud": audience,
        "iat": now,
        "exp": now + MAX_LIFETIME_SECONDS,
        "jti": jti,
        "type": kind,
        "body": dict(body),
    }
    header = {"alg": "EdDSA", "typ": ENVELOPE_TYP, "kid": key.thumbprint()}
    return jti, jwt.encode(header, claims, key, algorithms=["EdDSA"])


def _refused_signature(es: str, en: str) -> EnvelopeRefused:
    return EnvelopeRefused(
        "bad-signature",
        f"Sobre de federación rechazado: {es}",
        f"Federation envelope refused: {en}",
    )


#: The JWS header members (RFC 7515 §4.1) an envelope may carry; an envelope signs with
#: ``alg``, ``typ`` and ``kid``.
JWS_HEADER_MEMBERS = frozenset(
    {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty"}
)


def _refused_header(es: str, en: str) -> EnvelopeRefused:
    # Refused before the signature is checked, so that says nothing of it; the same problem
    # type as another algorithm or typ.
    return _refused_signature(
        f"{es} Se rechaza sin comprobar la firma.",
        f"{en} It is refused without checking the signature.",
    )


def _check_header_members(header: Mapping[str, Any]) -> None:
    """Refuse a ``crit`` header (RFC 7515 §4.1.11: extensions the recipient must understand;
    an envelope uses none, so this hub understands none) and members outside RFC 7515's, each
    said as what it is rather than as a signature that does not verify."""
    if "crit" in header:
        named = header["crit"]
        listed = (", ".join(map(str, named)) if isinstance(named, list) else repr(named))[:200]
        raise _refused_header(
            f"la cabecera declara extensiones críticas ('crit': {listed}), y este nodo no "
            "entiende ninguna: un sobre de federación no las usa.",
            f"the header declares critical extensions ('crit': {listed}), and this hub "
            "understands none: a federation envelope uses none.",
        )
    unknown = sorted(set(header) - JWS_HEADER_MEMBERS)
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)[:200]
        raise _refused_header(
            f"la cabecera lleva miembros que este nodo no admite ({listed}); un sobre lleva "
            "alg, typ y kid.",
            f"the header carries members this hub does not support ({listed}); an envelope "
            "carries alg, typ and kid.",
        )


def _jws_registry(max_bytes: int) -> jws.JWSRegistry:
    """EdDSA only, and a payload of up to ``max_bytes``: joserfc's default registry stops at
    128,000 bytes, well under what a lookup answer may be."""
    registry = jws.JWSRegistry(algorithms=["EdDSA"])
    registry.max_payload_length = max_bytes
    return registry


def open_envelope(
    session: Session,
    token: bytes | str,
    *,
    from_peer: Peer | None = None,
    max_bytes: int = MAX_ENVELOPE_BYTES,
) -> Opened:
    """Verify ``token`` as an envelope to this hub from an active pinned peer (``from_peer``
    when the sender is known, as for an answer) of up to ``max_bytes`` (an answer may be
    larger than an envelope received on its own) and consume its ``jti``; raises
    :class:`EnvelopeRefused` saying what is wrong."""
    if not isinstance(token, str | bytes):
        raise EnvelopeRefused(
            "validation",
            "El sobre no es texto: un sobre de federación es un JWS compacto.",
            f"The envelope is {type(token).__name__}, not text: a federation envelope is a "
            "compact JWS.",
        )
    raw = token.encode("ascii", "replace") if isinstance(token, str) else token
    registry = _jws_registry(max_bytes)
    try:
        unverified = jws.extract_compact(raw.strip(), registry=registry)
        header = unverified.headers()
        claims = json.loads(unverified.payload)
    except (JoseError, ValueError, TypeError, RecursionError) as error:
        # RecursionError: JSON nested deeper than the parser goes (anyone may send this, before
        # any signature is checked). joserfc's own messages end with a period, or not.
        said = str(error).rstrip(".")
        raise EnvelopeRefused(
            "validation",
            "El cuerpo no es un sobre de federación (JWS compacto).",
            f"The body is not a federation envelope (compact JWS): {said}.",
        ) from error
    if header.get("alg") != "EdDSA":
        raise _refused_signature(
            f"algoritmo {header.get('alg')!r}; solo se acepta EdDSA.",
            f"algorithm {header.get('alg')!r}; only EdDSA is accepted.",
        )
    if header.get("typ") != ENVELOPE_TYP:
        raise _refused_signature(
            f"typ {header.get('typ')!r}; se espera {ENVELOPE_TYP!r}.",
            f"typ {header.get('typ')!r}; expected {ENVELOPE_TYP!r}.",
        )
    _check_header_members(header)
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    peer = from_peer
    if peer is None:
        peer = session.get(Peer, issuer) if isinstance(issuer, str) else None
    if peer is None or not peer.active or peer.hub_id != issuer:
        raise _refused_signature(
            f"el emisor {issuer!r} no es un nodo par activo registrado en este nodo.",
            f"the issuer {issuer!r} is not an active peer hub pinned on this hub.",
        )
    key = peer.signing_key()
    if key is None:
        raise _refused_signature(
            f"este nodo no tiene registrada la llave de firma del nodo par {peer.hub_id!r} "
            "(puente peer pin-signing-key).",
            f"this hub has not pinned the signing key of peer hub {peer.hub_id!r} "
            "(puente peer pin-signing-key).",
        )
    if "kid" not in header:
        raise _refused_signature(
            f"la cabecera no lleva kid, la huella de la llave de firma de {peer.hub_id!r}; un "
            "sobre de federación lo lleva siempre.",
            f"the header has no kid, the thumbprint of {peer.hub_id!r}'s signing key; a "
            "federation envelope always carries it.",
        )
    if header.get("kid") != key.thumbprint():
        raise _refused_signature(
            f"la llave {header.get('kid')!r} no es la registrada para {peer.hub_id!r}.",
            f"key {header.get('kid')!r} is not the one pinned for {peer.hub_id!r}.",
        )
    try:
        jwt.decode(raw.strip(), key, registry=registry)
    except (InvalidHeaderValueError, UnsupportedHeaderError, MissingCritHeaderError) as error:
        # A header the JWS library does not take: nothing is known of the signature.
        raise _refused_header(
            f"la cabecera no es válida ({error.description or error.error}).",
            f"the header is not valid ({error.description or error.error}).",
        ) from error
    except JoseError as error:
        raise _refused_signature(
            f"la firma no corresponde a la llave registrada para {peer.hub_id!r}.",
            f"the signature does not verify with the key pinned for {peer.hub_id!r}.",
        ) from error
    try:
        jti, kind, body = _checked_claims(claims)
    except EnvelopeRefused as refusal:
        given = claims.get("jti")
        jti_given = given if isinstance(given, str) and JTI.match(given) else None
        refusal.sent_by(peer.hub_id, jti_given, claims.get("type"), claims.get("body"))
        raise
    expires = datetime.fromtimestamp(int(claims["exp"]) + LEEWAY_SECONDS, UTC)
    if not consume_assertion_id(peer.hub_id, "envelope:" + jti, expires):
        raise EnvelopeRefused(
            "replayed",
            f"El sobre {jti} del nodo {peer.hub_id} ya se recibió: cada sobre vale una vez.",
            f"Envelope {jti} from hub {peer.hub_id} was already received: each envelope is "
            "good once.",
        ).sent_by(peer.hub_id, jti, kind, body)
    return Opened(peer, jti, kind, body)


def _checked_claims(claims: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    hub_id = current_app.config["HUB_ID"]
    if not isinstance(claims.get("aud"), str):
        raise EnvelopeRefused(
            "validation",
            "El sobre necesita aud: el id del nodo al que va dirigido.",
            "The envelope needs aud: the id of the hub it is addressed to.",
            pointer="/aud",
        )
    if claims.get("aud") != hub_id:
        raise EnvelopeRefused(
            "forbidden",
            f"El sobre va dirigido a {claims.get('aud')!r}, no a este nodo ({hub_id}).",
            f"The envelope is addressed to {claims.get('aud')!r}, not to this hub ({hub_id}).",
            pointer="/aud",
        )
    issued, expires = claims.get("iat"), claims.get("exp")
    now = time.time()
    if not all(
        isinstance(value, int) and not isinstance(value, bool) for value in (issued, expires)
    ):
        raise EnvelopeRefused(
            "validation",
            "El sobre necesita iat y exp enteros (segundos desde 1970).",
            "The envelope needs integer iat and exp (seconds since 1970).",
            pointer="/exp",
        )
    if expires - issued > MAX_LIFETIME_SECONDS or expires <= issued:
        raise EnvelopeRefused(
            "validation",
            f"exp debe ser posterior a iat y a lo más {MAX_LIFETIME_SECONDS} s después.",
            f"exp must come after iat, and at most {MAX_LIFETIME_SECONDS} s after it.",
            pointer="/exp",
        )
    if expires + LEEWAY_SECONDS < now or issued - LEEWAY_SECONDS > now:
        raise EnvelopeRefused(
            "unauthenticated",
            "El sobre venció o aún no es válido: revise el reloj del nodo que lo envía.",
            "The envelope has expired or is not valid yet: check the sending hub's clock.",
            pointer="/exp",
        )
    jti = claims.get("jti")
    if not isinstance(jti, str) or not JTI.match(jti):
        raise EnvelopeRefused(
            "validation",
            "El jti debe tener de 16 a 100 letras, cifras, '_' o '-'.",
            "The jti must be 16 to 100 letters, digits, '_' or '-'.",
            pointer="/jti",
        )
    kind = claims.get("type")
    if kind not in TYPES:
        raise EnvelopeRefused(
            "validation",
            f"Tipo de sobre {kind!r} desconocido; los tipos son {', '.join(TYPES)}.",
            f"Unknown envelope type {kind!r}; the types are {', '.join(TYPES)}.",
            pointer="/type",
        )
    body = claims.get("body")
    if not isinstance(body, dict):
        raise EnvelopeRefused(
            "validation",
            "El sobre necesita un body (objeto).",
            "The envelope needs a body (object).",
            pointer="/body",
        )
    return jti, kind, body


# -- answering a lookup (the hub that holds the records) ---------------------------------------


@dataclass(frozen=True)
class Lookup:
    requester: Actor
    purpose: str
    identifiers: tuple[tuple[str, str], ...]
    #: A lookup by referral names the referral (its share id) instead of identifiers.
    referral: str | None = None


def _invalid(pointer: str, es: str, en: str) -> EnvelopeRefused:
    return EnvelopeRefused("validation", es, en, pointer=pointer)


#: What a lookup's ``requester`` holds.
REQUESTER_FIELDS = ("agency_id", "kind", "level", "jurisdiction", "country")


def read_lookup(session: Session, peer: Peer, body: Mapping[str, Any]) -> Lookup:
    """The lookup's body checked: who asks (an agency of ``peer``, described as this hub's
    registry would describe its own, and never one of this hub's own agencies), for what
    purpose, by which identifiers (of the right shape)."""
    from exchange.child_search import identifier_shape_error
    from exchange.sharing import purpose_codes

    unknown = set(body) - {"requester", "purpose", "identifiers", "referral"}
    if unknown:
        name = sorted(unknown)[0]
        raise _invalid(f"/body/{name}", f"Campo desconocido {name!r}.", f"Unknown field {name!r}.")
    requester = body.get("requester")
    if not isinstance(requester, dict) or not all(
        isinstance(requester.get(name), str)
        for name in ("agency_id", "kind", "level", "jurisdiction")
    ):
        raise _invalid(
            "/body/requester",
            "requester necesita agency_id, kind, level y jurisdiction (y country para una "
            "autoridad extranjera).",
            "requester needs agency_id, kind, level and jurisdiction (and country for a foreign "
            "authority).",
        )
    extra = sorted(set(requester) - set(REQUESTER_FIELDS))
    if extra:
        raise _invalid(
            f"/body/requester/{extra[0]}",
            f"Campo desconocido {extra[0]!r}: un nodo par habla por sus agencias (sus sistemas), "
            "no por personas ni roles.",
            f"Unknown field {extra[0]!r}: a peer speaks for its agencies (their systems), not "
            "for people or roles.",
        )
    country = requester.get("country")
    if "country" in requester and not isinstance(country, str):
        # Left out when the agency has none. Anything but text (5, null) is a requester the
        # registry would not take (docs/federation.md §3), refused like any malformed one
        # rather than read as "no country".
        raise _invalid(
            "/body/requester/country",
            "country, cuando se da, es la clave ISO 3166-1 de dos letras (texto) del país de "
            "una autoridad extranjera; sin país, se omite.",
            "country, when given, is the two-letter ISO 3166-1 code (text) of a foreign "
            "authority's country; with no country, it is left out.",
        )
    errors = identity_errors(
        requester["agency_id"],
        requester["level"],
        requester["jurisdiction"],
        requester["kind"],
        country,
    )
    if errors:
        first = errors[0]
        # The registry calls the agency's id ``id``; in a requester it is ``agency_id``.
        field = "agency_id" if first.field in (None, "id") else first.field
        raise _invalid(f"/body/requester/{field}", first.message("es"), first.message("en"))
    if session.get(Agency, requester["agency_id"]) is not None:
        # A peer speaks for its own agencies only: one of ours, named by a peer, would read as
        # the agency responsible for its records, and claim the consents and grants given to it.
        raise EnvelopeRefused(
            "forbidden",
            f"{requester['agency_id']} es una agencia de este nodo: un nodo par consulta solo "
            "por sus propias agencias.",
            f"{requester['agency_id']} is an agency of this hub: a peer looks up only for its "
            "own agencies.",
            pointer="/body/requester/agency_id",
        )
    if not speaks_for(peer, requester["agency_id"]):
        # Pinning a peer trusts it to say which of *its* agencies asks, not another hub's: a
        # consent naming an agency of the federal hub is for the federal hub's agency.
        prefixes = ", ".join(peer.agency_prefixes) or "—"
        raise EnvelopeRefused(
            "forbidden",
            f"{requester['agency_id']} no es una agencia por la que hable el nodo {peer.hub_id} "
            f"(sus prefijos de agencia: {prefixes}; puente peer set-agency-prefixes).",
            f"{requester['agency_id']} is not an agency hub {peer.hub_id} speaks for (its agency "
            f"prefixes: {prefixes}; puente peer set-agency-prefixes).",
            pointer="/body/requester/agency_id",
        )
    purpose = body.get("purpose")
    if purpose not in purpose_codes():
        raise _invalid(
            "/body/purpose",
            f"Finalidad {purpose!r} desconocida; use una de: {', '.join(purpose_codes())}.",
            f"Unknown purpose {purpose!r}; use one of: {', '.join(purpose_codes())}.",
        )
    actor = Actor.from_fields(
        client_id=PEER_CLIENT_PREFIX + peer.hub_id,
        scopes=("records:read",),
        agency_id=requester["agency_id"],
        kind=requester["kind"],
        country=country,
        agency_jurisdiction=requester["jurisdiction"],
    )
    if "referral" in body:
        return Lookup(actor, purpose, (), _referral_named(body))
    identifiers = body.get("identifiers")
    if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= MAX_IDENTIFIERS:
        raise _invalid(
            "/body/identifiers",
            f"identifiers es una lista de 1 a {MAX_IDENTIFIERS} identificadores.",
            f"identifiers is a list of 1 to {MAX_IDENTIFIERS} identifiers.",
        )
    found: list[tuple[str, str]] = []
    types = LOOKUP_IDENTIFIER_TYPES
    for index, item in enumerate(identifiers):
        if (
            not isinstance(item, dict)
            or set(item) != {"type", "value"}
            or item["type"] not in LOOKUP_IDENTIFIER_TYPES
            or not isinstance(item["value"], str)
            or not 1 <= len(item["value"].strip()) <= 100
        ):
            raise _invalid(
                f"/body/identifiers/{index}",
                f"Cada identificador es {{type, value}} con type en {', '.join(types)}.",
                f"Each identifier is {{type, value}} with type one of {', '.join(types)}.",
            )
        shape = identifier_shape_error(item["type"], item["value"])
        if shape is not None:
            raise _invalid(f"/body/identifiers/{index}/value", *shape)
        found.append((item["type"], item["value"]))
    return Lookup(actor, purpose, tuple(found))


#: A referral's id as a lookup names it (this hub's share ids, ``shr_`` and hex digits).
REFERRAL_ID = re.compile(r"^shr_[0-9a-f]{8,64}$")


def _referral_named(body: Mapping[str, Any]) -> str:
    """The referral a lookup by referral names: instead of identifiers, never with them."""
    referral = body.get("referral")
    if "identifiers" in body or not isinstance(referral, str) or not REFERRAL_ID.match(referral):
        raise _invalid(
            "/body/referral",
            "Una consulta nombra identificadores o una canalización (referral: el id que dio "
            "el aviso de la canalización, shr_…), no ambos.",
            "A lookup names identifiers or a referral (referral: the id its notice gave, "
            "shr_…), not both.",
        )
    return referral


@dataclass(frozen=True)
class Answered:
    """A lookup answered: the response (``json``), how many records it carries and how many
    identifiers the lookup gave (what the answer floor learns from, ``exchange.api.federation``)."""

    json: dict[str, Any]
    records: int
    identifiers: int


def answer_lookup(session: Session, opened: Opened) -> Answered:
    """Decide and audit every read the lookup asks for, as far as the answer holds
    (:func:`_answer_records`); the signed answer (not yet committed: the caller commits the
    audit entries, then sends the answer)."""
    try:
        lookup = read_lookup(session, opened.peer, opened.body)
    except EnvelopeRefused as refusal:
        refusal.sent_by(opened.peer.hub_id, opened.jti, opened.type, opened.body)
        raise
    audit_envelope(
        session,
        "received",
        opened.peer.hub_id,
        opened.jti,
        "lookup",
        actor=lookup.requester,
        purpose=lookup.purpose,
    )
    records, complete = _answer_records(session, lookup)
    body: dict[str, Any] = {"in_reply_to": opened.jti, "records": records}
    if not complete:
        body["incomplete"] = True
        body["note"] = dict(zip(("es", "en"), _cut_note(len(lookup.identifiers)), strict=True))
    jti, token = sign_envelope(audience=opened.peer.hub_id, kind="lookup_answer", body=body)
    audit_envelope(
        session,
        "sent",
        opened.peer.hub_id,
        jti,
        "lookup_answer",
        actor=lookup.requester,
        purpose=lookup.purpose,
    )
    answer = {"envelope_id": opened.jti, "type": "lookup_answer", "answer": token}
    # Lookups by referral (no identifiers) learn their own answer floor.
    return Answered(answer, len(records), len(lookup.identifiers))


#: What an answer holds besides its records — the claims, the envelope's header and signature,
#: the JSON around the token — with room to spare: the records fill the rest of
#: ``MAX_ANSWER_BYTES``.
ANSWER_OVERHEAD_BYTES = 8 * 1024


def records_budget() -> int:
    """How many bytes of records (as the answer's claims encode them) an answer may carry so
    that the answer, signed and sent, stays within ``MAX_ANSWER_BYTES``, which the asking hub
    discards past (the payload travels in base64url: four bytes for three)."""
    return (MAX_ANSWER_BYTES - ANSWER_OVERHEAD_BYTES) * 3 // 4 - ANSWER_OVERHEAD_BYTES


def encoded_size(value: Any) -> int:
    """The bytes ``value`` takes in the envelope's claims (joserfc encodes them so)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _answer_records(session: Session, lookup: Lookup) -> tuple[list[dict[str, Any]], bool]:
    """The records the lookup may read, decided and audited one by one, and whether all were:
    the answer stops at the first permitted record that would take it past
    :func:`records_budget`, whose decision (audit entry, consents noted as disclosed) is rolled
    back with its savepoint, and nothing after it is decided, so that nothing is audited as
    disclosed that the answer does not carry."""
    from exchange.child_search import search_by_identifier
    from exchange.disclosure import load_child

    if lookup.referral is not None:
        return _answer_referral(session, lookup), True
    child_ids: list[str] = []
    for kind, value in lookup.identifiers:
        for candidate in search_by_identifier(session, kind, value, agency_id=None):
            if candidate.score >= 1.0 and candidate.child_id not in child_ids:
                child_ids.append(candidate.child_id)
    budget = records_budget()
    records: list[dict[str, Any]] = []
    used = 0
    for child_id in child_ids:
        try:
            child = load_child(session, child_id)
        except LookupError:
            continue
        for record in child.records:
            if not _refused_cheaply(session, lookup, child, record):
                answer = _permitted_read(session, lookup, child, record, budget - used)
                if answer is None:
                    continue
                if answer is _CUT:
                    return records, False
                records.append(answer)
                used += encoded_size(answer) + 1  # and its comma
    return records, True


#: What :func:`_permitted_read` gives for a record that does not fit.
_CUT: Any = object()


def _answer_referral(session: Session, lookup: Lookup) -> list[dict[str, Any]]:
    """The record a lookup by referral may read, decided and audited as any looked-up record
    is, the referral its basis (:mod:`exchange.federation_referrals`): only for the
    referral's recipient, hub and purpose; anything else decides nothing and answers empty.
    (One record is far below the answer's limit.)"""
    from exchange.disclosure import load_child
    from exchange.federation_referrals import referred_record

    assert lookup.referral is not None
    record = referred_record(session, lookup.requester, lookup.referral, lookup.purpose)
    if record is None:
        return []
    child = load_child(session, record.child_id)
    if _refused_cheaply(session, lookup, child, record):
        return []
    answer = _permitted_read(session, lookup, child, record, MAX_ANSWER_BYTES)
    return [] if answer is None or answer is _CUT else [answer]


def _refused_cheaply(session: Session, lookup: Lookup, child: ChildContext, record: Record) -> bool:
    """Decide and audit a read the engine refuses, as ``record_json`` would, without what it
    costs to send one: fetching and decrypting the body, and a savepoint. A child a hub holds
    and refuses then costs little more than one it does not know (docs/federation.md §2,
    the answer floor). False, deciding nothing, when the engine would permit something."""
    from exchange.api.record_reads import decide_read, referred_by_basis
    from exchange.disclosure import evaluate_read

    # The decision decide_read makes for a peer's agency: never the owner, and no referral but
    # one made to it on its hub's behalf (exchange.federation_referrals).
    referred = referred_by_basis(session, lookup.requester, record, lookup.purpose)
    if evaluate_read(
        child,
        lookup.requester.for_consent(),
        lookup.purpose,
        referred=referred,
        record_id=record.id,
    ).permitted:
        return False
    disclosure = decide_read(
        session,
        lookup.requester,
        record,
        lookup.purpose,
        "record.read",
        child,
        record_version=record.latest_version,
        body_sha256=record.latest_sha256,
    )
    # Decided again a moment later, a consent may have just come into force: the read is then
    # made as a permitted one (its entry above stays on the log, and the record goes out).
    return not disclosure.permitted


def _permitted_read(
    session: Session, lookup: Lookup, child: ChildContext, record: Record, room: int
) -> dict[str, Any] | None:
    """The record as the peer's agency is given it (None when the decision, made here, permits
    nothing), or :data:`_CUT` when it takes more than ``room`` bytes: then its decision is
    rolled back, audit entry and disclosure included."""
    from exchange.api.record_reads import record_json

    savepoint = session.begin_nested()
    answer, _disclosure = record_json(session, lookup.requester, record, lookup.purpose, child)
    if answer is not None:
        answer = _told_to_a_peer_agency(answer, current_app.config["HUB_ID"])
        if encoded_size(answer) + 1 > room:
            savepoint.rollback()
            return _CUT  # type: ignore[no-any-return]
    savepoint.commit()
    return answer


def _cut_note(identifiers: int) -> tuple[str, str]:
    """What an answer cut short says (Spanish, English), and how to ask for less."""
    limit = MAX_ANSWER_BYTES // (1024 * 1024)
    es = (
        f"La respuesta se recortó para no pasar de {limit} MiB: los expedientes que no lleva no "
        "se decidieron ni se enviaron."
    )
    en = (
        f"The answer was cut so as not to pass {limit} MiB: the records it does not carry were "
        "neither decided nor sent."
    )
    if identifiers > 1:
        return (
            f"{es} Consulte de nuevo con menos identificadores (uno por consulta).",
            f"{en} Ask again with fewer identifiers (one a lookup).",
        )
    return (
        f"{es} Con un solo identificador no se puede pedir menos por consulta.",
        f"{en} With one identifier, a lookup cannot ask for less.",
    )


#: The end of the plain refusal a reader is told (``consent.messages.default_deny``), which
#: points to an access request: a peer hub's agency has no such route on this hub.
_ACCESS_REQUEST_HINT = (
    " Puede solicitar acceso a la Procuraduría.",
    " You may ask the Procuraduría for access.",
)


def _told_to_a_peer_agency(answer: dict[str, Any], hub_id: str) -> dict[str, Any]:
    """``answer`` (a record as ``GET /v1/records/{id}`` shows it) with its plain refusal
    telling a peer hub's agency what it can do instead of an access request: ask the child's
    consent authority on this hub for a consent that names it."""
    decision = answer.get("decision")
    if not isinstance(decision, dict):
        return answer
    for reason in decision.get("reasons") or ():
        if reason.get("code") != "default_deny":
            continue
        for language, hint, instead in zip(
            ("es", "en"), _ACCESS_REQUEST_HINT, _peer_instead(hub_id), strict=True
        ):
            said = reason.get(language)
            if isinstance(said, str) and said.endswith(hint):
                reason[language] = said[: -len(hint)] + instead
    return answer


def _peer_instead(hub_id: str) -> tuple[str, str]:
    return (
        " Una agencia de otro nodo no solicita acceso en este: la autoridad de consentimiento "
        f"del niño en el nodo {hub_id} (la Procuraduría) puede registrar un consentimiento que "
        "nombre a su agencia.",
        " An agency of another hub does not ask for access on this one: the child's consent "
        f"authority on hub {hub_id} (the Procuraduría) may record a consent naming your agency.",
    )


def audit_envelope(
    session: Session,
    direction: str,
    peer_id: str,
    jti: str | None,
    kind: str,
    *,
    actor: Actor | None = None,
    purpose: str | None = None,
    outcome: str = "success",
    verified: bool = True,
) -> str:
    """``federation_envelope_sent`` or ``_received``: the envelope's id and type, the peer hub;
    no content. The actor is ``actor`` when given; else, for an envelope received whose
    signature verified with the peer's pinned key (``verified``, as every envelope
    :func:`open_envelope` returns), the peer hub that sent it (:func:`peer_actor`); else this
    hub itself."""
    entry: dict[str, Any] = {
        "action": f"federation_envelope_{direction}",
        "outcome": outcome,
        "purpose": purpose,
        "object_type": "envelope" if jti else None,
        "object_id": jti,
        "target_hub": peer_id,
        "detail": kind,
    }
    if actor is not None:
        return record_event(
            session,
            **entry,
            actor_agency=actor.agency_id,
            actor_person=actor.person_id,
            actor_role=actor.audit_role,
            actor_client=actor.audit_client,
        )
    if direction == "received" and verified:
        # The peer's signature proves it sent the envelope. One that did not verify stays this
        # hub's own entry: nothing proves who sent it, and no peer is named as having done so.
        return _record_by_first_actor(session, entry, peer_actor(peer_id))
    return record_event(session, **entry)


def peer_actor(peer_id: str) -> dict[str, str]:
    """The audit actor of what a peer hub did on its own account, no agency of its named (a
    ``consent_revoked`` notice, an envelope refused before any requester was read): the hub,
    named as this hub names itself (its id as the agency), as a system, with the client
    ``hub:<peer id>`` that the entries of its agencies' lookups carry. Only for an envelope
    whose signature verified with the peer's pinned key: nothing else proves who sent it."""
    return {
        "actor_agency": peer_id,
        "actor_role": "system",
        "actor_client": PEER_CLIENT_PREFIX + peer_id,
    }


def _record_by_first_actor(session: Session, entry: dict[str, Any], *actors: dict[str, str]) -> str:
    """``entry`` with the first of ``actors`` the audit log can hold (a claimed agency id, or a
    peer hub id not shaped as an agency id, may not be); with none of them, the entry is this
    hub's own, as before (that the envelope was refused is on the log all the same)."""
    for actor in actors:
        try:
            return record_event(session, **entry, **actor)
        except AuditFieldError:
            continue
    return record_event(session, **entry)


def audit_refusal(session: Session, refusal: EnvelopeRefused) -> None:
    """``federation_envelope_received``, outcome ``failure``, reason ``refused.<problem
    type>``, for an envelope its peer did send (``refusal.verified_from``). For a lookup, the
    actor is the agency the envelope named as asking and the purpose it gave, as the peer
    claimed them (the outcome says they were refused), with the client ``hub:<peer id>``:
    oversight sees which peer asked for whom, even when it had no right to."""
    from exchange.sharing import purpose_codes

    peer_id = refusal.verified_from
    if peer_id is None:
        # No pinned key verified it: nothing proves who sent it, so no peer may be named as its
        # actor, and anyone could fill the log with such envelopes. It is only refused.
        return
    entry: dict[str, Any] = {
        "action": "federation_envelope_received",
        "outcome": "failure",
        "object_type": "envelope" if refusal.jti else None,
        "object_id": refusal.jti,
        "target_hub": peer_id,
        "detail": f"refused.{refusal.kind}",
    }
    actors: list[dict[str, str]] = []
    envelope_type, body = refusal.claimed
    if envelope_type == "lookup" and isinstance(body, dict):
        if body.get("purpose") in purpose_codes():
            entry["purpose"] = body["purpose"]
        requester = body.get("requester")
        agency_id = requester.get("agency_id") if isinstance(requester, dict) else None
        if isinstance(agency_id, str):
            actors.append(
                {
                    "actor_agency": agency_id,
                    "actor_role": "system",
                    "actor_client": PEER_CLIENT_PREFIX + peer_id,
                }
            )
    # No agency named, or one the audit log cannot hold (malformed: that may be why it was
    # refused): the peer hub itself, which did send it (its signature verified, as checked
    # above), rather than this hub, which only refused it.
    actors.append(peer_actor(peer_id))
    _record_by_first_actor(session, entry, *actors)


# -- asking a peer (the hub of the agency that asks) -------------------------------------------


def post_envelope(
    url: str, token: str, timeout: float, *, language: str | None = None
) -> HttpAnswer:
    """POST an envelope to a peer hub (tests route it to the peer's test client), asking for
    a refusal in ``language``; raises :class:`OSError` when no answer came."""
    return http_post(
        url,
        token.encode("ascii"),
        timeout,
        content_type=MEDIA_TYPE,
        max_bytes=MAX_ANSWER_BYTES + 1,
        headers={"Accept-Language": language} if language else None,
    )


def lookup_body(
    requester: Agency,
    purpose: str,
    identifiers: list[tuple[str, str]],
    referral: str | None = None,
) -> dict[str, Any]:
    """The lookup an agency of this hub (``requester``, its registry row) sends: by
    ``identifiers``, or by the ``referral`` it received from the peer hub."""
    described: dict[str, Any] = {
        "agency_id": requester.id,
        "kind": requester.kind,
        "level": requester.level,
        "jurisdiction": requester.jurisdiction,
    }
    if requester.country:
        described["country"] = requester.country
    if referral is not None:
        return {"requester": described, "purpose": purpose, "referral": referral}
    return {
        "requester": described,
        "purpose": purpose,
        "identifiers": [{"type": kind, "value": value} for kind, value in identifiers],
    }


def lookup_at_peer(
    session: Session,
    actor: Actor,
    peer: Peer,
    purpose: str,
    identifiers: list[tuple[str, str]],
    referral: str | None = None,
) -> dict[str, Any]:
    """Send a lookup for ``actor``'s agency to ``peer`` (by ``identifiers``, or by the
    ``referral`` the peer made to the agency) and return the records its answer holds, after
    checking the answer is the peer's, to this hub, about this lookup. Both envelopes are
    audited (and committed) whatever happens after the lookup left."""
    unreachable = unreachable_reason(peer)  # disabled, or no URL: which, and what fixes it
    if unreachable is not None:
        raise EnvelopeRefused("conflict", *unreachable)
    assert peer.base_url is not None  # else unreachable_reason named it
    agency = session.get(Agency, actor.agency_id)
    jti, token = sign_envelope(
        audience=peer.hub_id,
        kind="lookup",
        body=lookup_body(agency, purpose, identifiers, referral),
    )
    url = peer.base_url.rstrip("/") + "/v1/federation/envelopes"
    reply: HttpAnswer | None = None
    timeout = float(current_app.config.get("FEDERATION_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS)
    try:
        # A refusal the agency reads, in the language it asked in.
        reply = post_envelope(url, token, timeout, language=negotiated_language())
    except (OSError, http.client.HTTPException) as error:
        # Said in plain words, as `puente audit witness` says it: the agency reads the problem
        # in its language, and Python's own words ("[Errno 111] …") only go to the log.
        failure = network_failure(error, timeout)
        log.warning(
            "lookup to peer hub %s got no answer: %s: %s", peer.hub_id, type(error).__name__, error
        )
    answered = reply is not None and reply.status == 200
    audit_envelope(
        session,
        "sent",
        peer.hub_id,
        jti,
        "lookup",
        actor=actor,
        purpose=purpose,
        outcome="success" if answered else "failure",
    )
    session.commit()
    if reply is None:
        raise PeerUnavailable(
            f"El nodo par {peer.hub_id} no respondió: {failure[0]}. No se recibió nada.",
            f"Peer hub {peer.hub_id} did not answer: {failure[1]}. Nothing was received.",
        )
    if reply.status != 200:
        detail = _peer_problem(reply.body)
        said = f": {detail}" if detail else "."
        raise PeerUnavailable(
            f"El nodo par {peer.hub_id} rechazó la consulta (HTTP {reply.status}){said}",
            f"Peer hub {peer.hub_id} refused the lookup (HTTP {reply.status}){said}",
        )
    try:
        opened, records = _read_answer(session, peer, jti, reply)
    except (PeerUnavailable, EnvelopeRefused) as error:
        # Audited: what came back was not a valid answer, and was discarded.
        audit_envelope(
            session,
            "received",
            peer.hub_id,
            None,
            "lookup_answer",
            actor=actor,
            purpose=purpose,
            outcome="failure",
        )
        session.commit()
        # Each language its own reason, said as one sentence.
        es, en = (error.message(lang).rstrip(".") for lang in ("es", "en"))
        raise PeerUnavailable(
            f"La respuesta del nodo par {peer.hub_id} no es válida y se descartó: {es}.",
            f"Peer hub {peer.hub_id}'s answer is not valid and was discarded: {en}.",
        ) from error
    audit_envelope(
        session, "received", peer.hub_id, opened.jti, "lookup_answer", actor=actor, purpose=purpose
    )
    session.commit()
    answer: dict[str, Any] = {"hub": peer.hub_id, "envelope_id": jti, "records": records}
    if opened.body.get("incomplete") is True:
        # The peer cut its answer to fit (docs/federation.md §2): said in this hub's words.
        answer["incomplete"] = True
        answer["note"] = dict(zip(("es", "en"), _cut_note(max(len(identifiers), 1)), strict=True))
    return answer


def _read_answer(
    session: Session, peer: Peer, jti: str, reply: HttpAnswer
) -> tuple[Opened, list[dict[str, Any]]]:
    """The answer envelope and the records it lists, after checking it is the peer's, to this
    hub, about lookup ``jti``; raises :class:`PeerUnavailable` or :class:`EnvelopeRefused`
    saying why it is not."""
    if len(reply.body) > MAX_ANSWER_BYTES:
        # A hub of this version cuts its answer to fit; another may not. Fewer identifiers
        # (fewer children) make a smaller answer.
        raise PeerUnavailable(
            f"pasa de {MAX_ANSWER_BYTES} bytes; consulte de nuevo con menos identificadores (uno "
            "por consulta)",
            f"it is over {MAX_ANSWER_BYTES} bytes; ask again with fewer identifiers (one a lookup)",
        )
    if reply.content_type != "application/json":
        raise PeerUnavailable(
            f"es {reply.content_type or 'de tipo desconocido'}, no application/json",
            f"it is {reply.content_type or 'of no media type'}, not application/json",
        )
    try:
        answer = json.loads(reply.body)
    except (ValueError, RecursionError) as error:
        raise PeerUnavailable("no es JSON", "it is not JSON") from error
    if not isinstance(answer, dict) or not isinstance(answer.get("answer"), str):
        raise PeerUnavailable(
            "no lleva un sobre (un texto en 'answer')",
            "it holds no envelope (a string under 'answer')",
        )
    opened = open_envelope(session, answer["answer"], from_peer=peer, max_bytes=MAX_ANSWER_BYTES)
    if opened.type != "lookup_answer" or opened.body.get("in_reply_to") != jti:
        raise PeerUnavailable("no responde a esta consulta", "it is not about this lookup")
    records = opened.body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise PeerUnavailable(
            "records no es una lista de objetos", "records is not a list of objects"
        )
    return opened, records


def _peer_problem(content: bytes) -> str | None:
    """What a peer's refusal says, when it is a problem (RFC 9457); nothing of any other body
    (a proxy's or a crashed server's HTML page) is passed on to the agency."""
    try:
        problem = json.loads(content)
    except ValueError:
        return None
    if not isinstance(problem, dict):
        return None
    said = problem.get("detail") or problem.get("title")
    return said[:500] if isinstance(said, str) else None
