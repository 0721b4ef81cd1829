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
its audit entry in the same transaction, and the caller commits both or neither. What a
description must be (ids, keys, URL, prefixes) is checked in :mod:`exchange.peer_checks`; what
depends on the other pinned peers (overlapping prefixes, a signing key pinned twice), here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from joserfc.jwk import OKPKey
from sqlalchemy import JSON, Boolean, DateTime, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit import CosignatureVerifier, Verifier
from exchange import audit_log
from exchange.auth import as_utc, utcnow
from exchange.db import Base
from exchange.peer_checks import (
    MAX_ORIGIN,
    MAX_URL,
    DuplicatePeer,
    InvalidPeer,
    PeerError,
    UnknownPeer,
    check_agency_prefixes,
    check_fields,
    check_log_vkey,
    check_signing_jwk,
    check_witness_vkey,
    colliding_prefixes,
    default_agency_prefixes,
    not_this_hub,
    not_this_hubs_agencies,
    own_agency_prefixes,
)


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


def _usable_url(base_url: str | None) -> None:
    """The URL refused as an agency's webhook is (:func:`exchange.transports.webhook_url_fault`):
    a user name or password in it would be stored, listed and logged in clear, and the request
    would fail as a misleading name lookup. Checked before anything that says the URL itself."""
    from exchange.transports import webhook_url_fault

    fault = None if base_url is None else webhook_url_fault(base_url)
    if fault is not None:
        raise InvalidPeer(
            f"La URL del nodo par no es utilizable: {fault[0]}.",
            f"The peer hub's URL is not usable: {fault[1]}.",
            field="base_url",
        )


def url_fault(peer: Peer) -> tuple[str, str] | None:
    """What makes a URL pinned before :func:`_usable_url` unusable (``puente peer list``
    warns), in Spanish and English, or None."""
    from exchange.transports import webhook_url_fault

    return None if peer.base_url is None else webhook_url_fault(peer.base_url)


def witness_name(hub_id: str) -> str:
    """The key name of a hub's witness, as :func:`exchange.keys.witness_name` gives its own."""
    return f"{hub_id}/witness"


def _checked_witness_key(session: Session, hub_id: str, witness: CosignatureVerifier) -> str:
    """The witness key as stored, refused when another peer's (its cosignatures would count
    for two hubs) or named other than the peer's witness (as a log key must be named after its
    origin: a key of another name is another hub's)."""
    for other in session.scalars(
        select(Peer).where(Peer.hub_id != hub_id, Peer.witness_vkey.is_not(None))
    ):
        if CosignatureVerifier.from_vkey(other.witness_vkey or "").public_key == witness.public_key:
            raise DuplicatePeer(
                f"Esa llave de testigo ya está registrada para el nodo par {other.hub_id!r}: "
                "el testigo de un nodo no cofirma por otro. Compare la llave con los operadores "
                "del nodo.",
                f"That witness key is already pinned for peer hub {other.hub_id!r}: one hub's "
                "witness does not cosign for another. Check the key with the hub's operators.",
                field="witness_vkey",
            )
    if witness.name != witness_name(hub_id):
        raise InvalidPeer(
            f"La llave de testigo se llama {witness.name!r}, pero el testigo de {hub_id!r} se "
            f"llama {witness_name(hub_id)!r}: es la llave de otro nodo (la witness_vkey de su "
            "/.well-known/puente-hub lleva su nombre).",
            f"The witness key is named {witness.name!r}, but the witness of {hub_id!r} is "
            f"named {witness_name(hub_id)!r}: it is another hub's key (the witness_vkey of "
            "its /.well-known/puente-hub bears its name).",
            field="witness_vkey",
        )
    return witness.vkey


def _origin_names_the_hub(hub_id: str, origin: str) -> None:
    """A Puente hub's origin is ``<hub id>/audit`` unless it configured another
    (``PUENTE_AUDIT_ORIGIN``): one naming another hub means the id or the origin is mistyped.
    Refused, not warned of: a pin that then exchanged anything cannot be removed, and holds its
    origin for good (see :func:`remove_peer`)."""
    named = origin.split("/", 1)[0]
    if named != hub_id:
        raise InvalidPeer(
            f"El origen {origin!r} nombra a {named!r}, no al nodo {hub_id!r}: uno de los dos "
            "está mal escrito. Compárelos con el hub_id y el audit_origin de su "
            "/.well-known/puente-hub y con sus operadores; si ese nodo configuró otro origen "
            "(PUENTE_AUDIT_ORIGIN), repita con --origin-name-differs.",
            f"The origin {origin!r} names {named!r}, not hub {hub_id!r}: one of the two is "
            "mistyped. Compare them with the hub_id and audit_origin of its "
            "/.well-known/puente-hub and with its operators; if that hub configured another "
            "origin (PUENTE_AUDIT_ORIGIN), run again with --origin-name-differs.",
            field="origin",
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
    check_origin_name: bool = False,
) -> Peer:
    """Pin a peer hub's audit log (and its witness and signing keys, and the agency prefixes it
    speaks for: by default :func:`default_agency_prefixes`); audited as ``peer_changed``.
    ``check_origin_name`` refuses an origin not named after ``hub_id`` (``puente peer add``
    does, unless told the hub configured another origin)."""
    _usable_url(base_url)
    check_fields(hub_id, origin, base_url)
    defaulted = agency_prefixes is None
    prefixes = check_agency_prefixes(
        default_agency_prefixes(hub_id) if agency_prefixes is None else agency_prefixes
    )
    log_vkey = check_log_vkey(log_vkey, origin).vkey
    witness = None if witness_vkey is None else check_witness_vkey(witness_vkey)
    if signing_jwk is not None:
        signing_jwk = check_signing_jwk(signing_jwk)
    not_this_hub(hub_id, origin, log_vkey, witness and witness.vkey, signing_jwk)
    if session.get(Peer, hub_id) is not None:
        raise DuplicatePeer(
            f"El nodo par {hub_id!r} ya está registrado. Para darle una llave de testigo: "
            f"puente peer set-witness-key {hub_id} LLAVE; una URL: puente peer set-url "
            f"{hub_id} URL; una llave de firma: puente peer pin-signing-key {hub_id} JWK.",
            f"Peer hub {hub_id!r} is already pinned. To give it a witness key: puente peer "
            f"set-witness-key {hub_id} VKEY; a URL: puente peer set-url {hub_id} URL; a "
            f"signing key: puente peer pin-signing-key {hub_id} JWK.",
        )
    pinned = session.scalar(select(Peer.hub_id).where(Peer.origin == origin))
    if pinned is not None:
        raise DuplicatePeer(
            f"La bitácora {origin!r} ya está registrada para el nodo {pinned!r}. Si ese id "
            f"estaba mal escrito: puente peer disable {pinned}, y luego puente peer remove "
            f"{pinned}.",
            f"The log {origin!r} is already pinned for hub {pinned!r}. If that id was "
            f"mistyped: puente peer disable {pinned}, then puente peer remove {pinned}.",
        )
    if witness is not None:
        witness_vkey = _checked_witness_key(session, hub_id, witness)
    if check_origin_name:
        _origin_names_the_hub(hub_id, origin)
    if signing_jwk is not None:
        _signing_key_not_pinned_elsewhere(session, hub_id, signing_jwk)
    not_this_hubs_agencies(session, prefixes, defaulted=defaulted)
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
    not_this_hub(peer.hub_id, peer.origin, peer.log_vkey, peer.witness_vkey, stored)
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
    _usable_url(base_url)
    check_fields(peer.hub_id, peer.origin, base_url)
    return _change(
        session,
        peer,
        "base_url",
        base_url,
        "url_set" if base_url else "url_removed",
        (f"El nodo par {hub_id!r} ya tiene esa URL.", f"Peer hub {hub_id!r} already has that URL."),
    )


def set_witness_key(session: Session, hub_id: str, witness_vkey: str | None) -> Peer:
    """Pin (or replace, or with None remove) the key of the peer's witness, which this hub asks
    to cosign its checkpoints (``puente audit witness``). Cosignatures it gave before stay:
    each carries the name and id of the key that made it."""
    peer = get_peer(session, hub_id)
    stored = None
    if witness_vkey is not None:
        witness = check_witness_vkey(witness_vkey)
        not_this_hub(peer.hub_id, peer.origin, peer.log_vkey, witness.vkey)
        stored = _checked_witness_key(session, peer.hub_id, witness)
    return _change(
        session,
        peer,
        "witness_vkey",
        stored,
        "witness_key_pinned" if stored else "witness_key_removed",
        (
            f"El nodo par {hub_id!r} ya tiene esa llave de testigo."
            if stored
            else f"El nodo par {hub_id!r} no tiene llave de testigo.",
            f"Peer hub {hub_id!r} already has that witness key."
            if stored
            else f"Peer hub {hub_id!r} has no witness key.",
        ),
    )


def set_agency_prefixes(session: Session, hub_id: str, prefixes: list[str]) -> Peer:
    """Set the agency id prefixes the peer speaks for in its lookups (``mx.fed.``, and
    ``mx.ext.`` for the foreign consulates registered on the federal hub)."""
    peer = get_peer(session, hub_id)
    checked = check_agency_prefixes(prefixes)
    not_this_hubs_agencies(session, checked, defaulted=False)
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


def unreachable_reason(peer: Peer) -> tuple[str, str] | None:
    """Why this hub sends nothing to ``peer`` (no lookup, no notice), with the command that
    fixes it, in Spanish and English; None when it can send."""
    hub_id = peer.hub_id
    enable, set_url_ = f"puente peer enable {hub_id}", f"puente peer set-url {hub_id} URL"
    if not peer.active and peer.base_url is None:
        return (
            f"El nodo par {hub_id!r} está desactivado y no tiene URL registrada ({enable}; "
            f"{set_url_}).",
            f"Peer hub {hub_id!r} is disabled and has no URL pinned ({enable}; {set_url_}).",
        )
    if not peer.active:
        return (
            f"El nodo par {hub_id!r} está desactivado ({enable}).",
            f"Peer hub {hub_id!r} is disabled ({enable}).",
        )
    if peer.base_url is None:
        return (
            f"El nodo par {hub_id!r} no tiene URL registrada ({set_url_}).",
            f"Peer hub {hub_id!r} has no URL pinned ({set_url_}).",
        )
    return None


#: Audit actions that name a peer as a party (``target.hub`` of an envelope, the ``object`` of
#: a log conflict), not as the object of the administrator's own ``peer_changed``.
_ENVELOPE_ACTIONS = ("federation_envelope_sent", "federation_envelope_received")
_CONFLICT_ACTIONS = ("peer_log_forked", "own_log_conflict_reported")


def references(session: Session, peer: Peer) -> list[tuple[str, str]]:
    """What names ``peer`` and must stay resolvable, in Spanish and English: what its witness
    cosigned (published with this hub's checkpoints), notices queued for it, consents its
    agencies read under (a revocation must reach it), and audit entries of what it took part
    in — an envelope it sent or took (it may write back: a notice, a revocation), a conflict
    of its log. An envelope it never took (``federation_envelope_sent``, ``failure``) is on the
    audit log as this hub's attempt, a string that needs no pin to be read."""
    from exchange.audit_log import AuditEntry
    from exchange.consent_store import ConsentDisclosure
    from exchange.outbox import OutboxMessage
    from exchange.witnessing import CheckpointCosignature, PeerCosigning

    hub_id = peer.hub_id

    def count(column: Any) -> int:
        return session.scalar(select(func.count()).where(column == hub_id)) or 0

    found: list[tuple[str, str]] = []
    if cosigned := count(CheckpointCosignature.peer_hub_id):
        found.append(
            (
                f"{cosigned} cofirmas de su testigo sobre puntos de control de este nodo",
                f"{cosigned} cosignatures by its witness on this hub's checkpoints",
            )
        )
    elif count(PeerCosigning.peer_hub_id):
        found.append(
            (
                "lo que su testigo dijo haber cofirmado de la bitácora de este nodo",
                "what its witness said it cosigned of this hub's log",
            )
        )
    if notices := count(OutboxMessage.peer_hub):
        found.append(
            (
                f"{notices} avisos para él (puente outbox list --peer {hub_id})",
                f"{notices} notices to it (puente outbox list --peer {hub_id})",
            )
        )
    if disclosed := count(ConsentDisclosure.peer_hub):
        found.append(
            (
                f"{disclosed} consentimientos bajo los que leyeron sus agencias (su revocación "
                "debe avisarle)",
                f"{disclosed} consents its agencies read under (their revocation must reach it)",
            )
        )
    rows = session.execute(
        select(AuditEntry.action, AuditEntry.outcome, AuditEntry.entry).where(
            AuditEntry.recorded_at >= peer.added_at,
            AuditEntry.action.in_(_ENVELOPE_ACTIONS + _CONFLICT_ACTIONS),
        )
    )
    logged = 0
    for action, outcome, raw in rows:
        entry = json.loads(raw)
        if action in _CONFLICT_ACTIONS:
            logged += (entry.get("object") or {}).get("id") == hub_id
        elif (action, outcome) != ("federation_envelope_sent", "failure"):
            logged += (entry.get("target") or {}).get("hub") == hub_id
    if logged:
        found.append(
            (
                f"{logged} entradas de la bitácora de auditoría de sobres que intercambió con "
                "este nodo o de conflictos de su bitácora",
                f"{logged} audit log entries of envelopes it exchanged with this hub or of "
                "conflicts of its log",
            )
        )
    return found


def remove_peer(session: Session, hub_id: str) -> None:
    """Take a disabled peer off the registry (a hub pinned under a mistyped id, or with a
    mistyped origin), so that its hub, or its log, can be pinned again. Refused while anything
    names it (:func:`references`): it then stays, disabled. Audited as ``peer_changed``
    (``removed``); the audit entries that named it stay, and the witness state of its origin
    too (a witness never forgets the size it vouched for: pinned again, its log goes on from
    there)."""
    peer = session.get(Peer, hub_id, with_for_update=True)
    if peer is None:
        raise UnknownPeer(hub_id)
    if peer.active:
        raise PeerError(
            f"El nodo par {hub_id!r} está activo: desactívelo primero (puente peer disable "
            f"{hub_id}); solo se quita un nodo par desactivado.",
            f"Peer hub {hub_id!r} is active: disable it first (puente peer disable {hub_id}); "
            "only a disabled peer is removed.",
        )
    found = references(session, peer)
    if found:
        said_es = "; ".join(es for es, _ in found)
        said_en = "; ".join(en for _, en in found)
        raise PeerError(
            f"El nodo par {hub_id!r} no se quita: lo nombran {said_es}, que deben seguir "
            "remitiendo a él. Queda registrado y desactivado: nada se intercambia con él. Su "
            f"URL y sus llaves se corrigen sin quitarlo (puente peer set-url {hub_id}, "
            "set-witness-key, pin-signing-key).",
            f"Peer hub {hub_id!r} is not removed: it is named by {said_en}, which must go on "
            "resolving to it. It stays pinned and disabled: nothing is exchanged with it. Its "
            f"URL and keys are corrected without removing it (puente peer set-url {hub_id}, "
            "set-witness-key, pin-signing-key).",
        )
    session.delete(peer)
    session.flush()
    _audit(session, "peer_changed", hub_id, detail="removed")


def speaks_for(peer: Peer, agency_id: str) -> bool:
    """Whether ``peer`` may name ``agency_id`` as the agency that asks: under one of its
    prefixes, and never under this hub's own namespace (a peer pinned before that was refused
    may still hold such a prefix)."""
    if any(agency_id.startswith(own) for own in own_agency_prefixes()):
        return False
    return any(agency_id.startswith(prefix) for prefix in peer.agency_prefixes)


def peer_speaking_for(session: Session, agency_id: str) -> Peer | None:
    """The active pinned peer that speaks for ``agency_id``, if one does: the agency is that
    hub's, not a mistyped one of this hub."""
    for peer in session.scalars(select(Peer).where(Peer.active.is_(True)).order_by(Peer.hub_id)):
        if speaks_for(peer, agency_id):
            return peer
    return None


#: The code of :func:`peer_agency_caution`'s warning, as a consent's warnings carry one.
PEER_AGENCY_UNCHECKED = "peer_agency_unchecked"


def peer_agency_caution(
    session: Session, peer: Peer, agency_id: str, pointer: str
) -> dict[str, str]:
    """The warning (``code``, ``pointer``, Spanish, English) an answer carries when a consent or a
    withhold entry names ``agency_id``, an agency of ``peer``: this hub has no registry of that
    hub's agencies, so it takes any id under its prefixes, and a mistyped one would protect,
    or permit, nobody; whether a lookup of that agency ever reached this hub says a little."""
    entries = audit_log.AuditEntry
    seen = session.scalar(
        select(entries.id)
        .where(
            entries.actor_agency == agency_id,
            entries.action == "federation_envelope_received",
            entries.outcome == "success",
        )
        .limit(1)
    )
    es = (
        f"{agency_id} es una agencia del nodo par {peer.hub_id}: este nodo no tiene su registro "
        "y no puede comprobar que exista. El id debe ser exactamente el que ese nodo le dio "
        f"(confírmelo con los operadores de {peer.hub_id}); uno mal escrito no alcanza a nadie."
    )
    en = (
        f"{agency_id} is an agency of peer hub {peer.hub_id}: this hub has no registry of it and "
        "cannot check that it exists. The id must be exactly the one that hub gave it (confirm "
        f"it with {peer.hub_id}'s operators); a mistyped one reaches nobody."
    )
    if seen is None:
        es += " Ninguna consulta suya ha llegado aún a este nodo."
        en += " No lookup of its has reached this hub yet."
    return {"code": PEER_AGENCY_UNCHECKED, "pointer": pointer, "es": es, "en": en}


def peer_covering_agency(session: Session, agency_id: str) -> Peer | None:
    """A pinned peer, active or not, whose prefixes cover ``agency_id`` or ids under it
    (``mx.fed.`` covers ``mx.fed.nueva``; ``mx.fed.nueva.x.`` lies under it): an agency of that
    id registered here would be one the peer may speak for (``puente agency add`` should refuse
    it, as :func:`add_peer` refuses the converse)."""
    for peer in session.scalars(select(Peer).order_by(Peer.hub_id)):
        for prefix in peer.agency_prefixes:
            if agency_id.startswith(prefix) or prefix.startswith(agency_id + "."):
                return peer
    return None


def prefix_collisions(session: Session, peer: Peer) -> list[str]:
    """The peer's prefixes that cover this hub's own namespace or one of its agencies: none
    can be pinned now, but a peer pinned before that check may hold one
    (``puente peer list`` warns; ``puente peer set-agency-prefixes`` fixes it)."""
    return colliding_prefixes(session, list(peer.agency_prefixes))


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
