"""Telling a peer hub's agency that a consent it read under was revoked (DESIGN.md, "Consent":
revocation "notifies every agency that received data under it").

An agency of another hub reads through a federated lookup (:mod:`exchange.federation`); the
holding hub notes, as for its own agencies, which consents let it read
(:class:`~exchange.consent_store.ConsentDisclosure`, with the peer hub). When such a consent is
revoked, the holding hub queues an outbox message addressed to the peer hub
(:func:`queue_revocation`); the worker sends it as a signed ``consent_revoked`` envelope
(:func:`send_revocation`), retrying as for a webhook while the peer cannot be reached, so the
notice is not lost. The peer hub checks it (:func:`receive_revocation`) and passes it on to its
agency through its own outbox: the agency's webhook, file drop or ``GET /v1/notifications``.

The envelope's body holds identifiers only: ``{"agency_id", "consent_id", "child_id",
"revoked_at"}`` — the agency of the receiving hub, the consent and child ids the lookup answer
carried (the holding hub's), and when the revocation took effect. Both hubs audit the envelope
(``federation_envelope_sent`` / ``_received``, reason ``consent_revoked``).
"""

from __future__ import annotations

import http.client
import re
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from exchange import federation
from exchange.agencies import Agency
from exchange.federation import (
    DEFAULT_TIMEOUT_SECONDS,
    EnvelopeRefused,
    Opened,
    audit_envelope,
    sign_envelope,
)
from exchange.outbox import OutboxMessage, enqueue
from exchange.peers import Peer
from exchange.transports import PermanentDeliveryError, TransientDeliveryError

ENVELOPE_TYPE = "consent_revoked"
EVENT = "consent.revoked"
INSTRUCTION = {
    "es": "Deje de usar los datos recibidos bajo este consentimiento.",
    "en": "Stop using the data received under this consent.",
}
BODY_FIELDS = ("agency_id", "consent_id", "child_id", "revoked_at")
#: The ids a notice carries: the hub's own (``cns_…``, ``chd_…``), checked loosely so that a
#: peer's next id format still passes, but never free text.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


def revocation_payload(
    consent_id: str, child_id: str, revoked_at: datetime, agency_id: str | None = None
) -> dict[str, Any]:
    """The ``consent.revoked`` notification an agency receives (ids only, never content);
    ``agency_id`` names a peer hub's agency in a message to that hub."""
    payload: dict[str, Any] = {
        "event": EVENT,
        "consent_id": consent_id,
        "child_id": child_id,
        "revoked_at": revoked_at.isoformat(),
        "instruction": dict(INSTRUCTION),
    }
    if agency_id is not None:
        payload["agency_id"] = agency_id
    return payload


def queue_revocation(
    session: Session, peer_hub: str, agency_id: str, consent_id: str, child_id: str, at: datetime
) -> OutboxMessage:
    """An outbox message to ``peer_hub`` for its agency ``agency_id`` (in the caller's
    transaction). Queued even when the peer is disabled or has no URL: the worker then marks
    it dead, saying why, where an administrator sees it (``puente outbox list``) and can send it
    again once the peer is reachable."""
    message = enqueue(session, None, EVENT, revocation_payload(consent_id, child_id, at, agency_id))
    message.peer_hub = peer_hub
    return message


def send_revocation(session: Session, message: OutboxMessage) -> None:
    """Send one queued notice to its peer hub as a signed envelope; returns when the peer took
    it, else raises :class:`TransientDeliveryError` (no answer, 408, 429, 5xx) or
    :class:`PermanentDeliveryError` (the peer is disabled or has no URL, or refused it).
    The attempt is audited in ``session``; the caller commits."""
    peer_id = message.peer_hub or ""
    peer = session.get(Peer, peer_id)
    if peer is None or not peer.active:
        raise PermanentDeliveryError(f"peer hub {peer_id} is not pinned or is disabled")
    if not peer.base_url:
        raise PermanentDeliveryError(
            f"peer hub {peer_id} has no URL pinned (puente peer add --url)"
        )
    body = {name: message.payload.get(name) for name in BODY_FIELDS}
    jti, token = sign_envelope(audience=peer_id, kind=ENVELOPE_TYPE, body=body)
    url = peer.base_url.rstrip("/") + "/v1/federation/envelopes"
    timeout = float(current_app.config.get("FEDERATION_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS)
    try:
        answer = federation.post_envelope(url, token, timeout)
    except (OSError, http.client.HTTPException) as error:
        audit_envelope(session, "sent", peer_id, jti, ENVELOPE_TYPE, outcome="failure")
        raise TransientDeliveryError(f"{type(error).__name__}: {error}") from error
    taken = 200 <= answer.status < 300
    audit_envelope(
        session, "sent", peer_id, jti, ENVELOPE_TYPE, outcome="success" if taken else "failure"
    )
    if taken:
        return
    detail = answer.body[:300].decode("utf-8", "replace")
    if answer.status in (408, 429) or answer.status >= 500:
        raise TransientDeliveryError(f"HTTP {answer.status} from peer hub {peer_id}: {detail}")
    raise PermanentDeliveryError(
        f"peer hub {peer_id} refused the notice (HTTP {answer.status}): {detail}"
    )


def _invalid(name: str, es: str, en: str) -> EnvelopeRefused:
    return EnvelopeRefused("validation", es, en, pointer=f"/body/{name}")


def receive_revocation(session: Session, opened: Opened) -> dict[str, Any]:
    """A peer's notice that a consent one of this hub's agencies read under was revoked: checked,
    audited and queued for the agency (in ``session``; the caller commits)."""
    body = opened.body
    unknown = sorted(set(body) - set(BODY_FIELDS))
    if unknown:
        name = unknown[0]
        raise _invalid(name, f"Campo desconocido {name!r}.", f"Unknown field {name!r}.")
    for name in ("agency_id", "consent_id", "child_id"):
        if not isinstance(body.get(name), str) or not _ID.match(body[name]):
            raise _invalid(
                name,
                f"{name} es obligatorio: un identificador sin espacios.",
                f"{name} is required: an identifier without spaces.",
            )
    try:
        revoked_at = datetime.fromisoformat(str(body.get("revoked_at")))
    except ValueError as error:
        raise _invalid(
            "revoked_at",
            "revoked_at es obligatorio: una fecha y hora ISO 8601 con zona horaria.",
            "revoked_at is required: an ISO 8601 date and time with a time zone.",
        ) from error
    if revoked_at.tzinfo is None:
        raise _invalid(
            "revoked_at",
            "revoked_at necesita zona horaria.",
            "revoked_at needs a time zone.",
        )
    agency = session.get(Agency, body["agency_id"])
    if agency is None or not agency.active:
        raise EnvelopeRefused(
            "not-found",
            f"{body['agency_id']} no es una agencia activa de este nodo.",
            f"{body['agency_id']} is not an active agency of this hub.",
            status=404,
            pointer="/body/agency_id",
        )
    payload = revocation_payload(body["consent_id"], body["child_id"], revoked_at)
    # The hub that holds the child's records, whose ids these are.
    payload["hub"] = opened.peer.hub_id
    # An agency with no webhook or file drop reads it with GET /v1/notifications.
    enqueue(session, agency.id, EVENT, payload, held=not agency.webhook_url)
    audit_envelope(session, "received", opened.peer.hub_id, opened.jti, ENVELOPE_TYPE)
    return {"envelope_id": opened.jti, "type": ENVELOPE_TYPE, "status": "accepted"}
