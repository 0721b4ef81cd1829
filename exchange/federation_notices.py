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
"revoked_at", "notice_id"}`` — the agency of the receiving hub, the consent and child ids the
lookup answer carried (the holding hub's), when the revocation took effect, and the sending
hub's outbox message id. The worker signs a new envelope for each attempt, so an attempt whose
answer came too late arrives twice: the receiving hub keeps one notification per (sending hub,
``notice_id``). It takes a notice only for an agency that took an answer to a lookup from the
sending hub, as its own audit log shows, whether that agency is active or disabled now: a
disabled agency still holds the data, and reads the notice once enabled again, as it does a
notice of this hub's own (:func:`receive_revocation`). Both hubs audit the envelope
(``federation_envelope_sent`` / ``_received``, reason ``consent_revoked``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import federation
from exchange.agencies import Agency
from exchange.audit_log import AuditEntry
from exchange.auth import utcnow
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
#: What the envelope's body holds: the queued payload's ids, and the outbox message's id as
#: ``notice_id``.
PAYLOAD_FIELDS = ("agency_id", "consent_id", "child_id", "revoked_at")
BODY_FIELDS = (*PAYLOAD_FIELDS, "notice_id")
#: How far ahead of this hub's clock a revocation may say it took effect.
CLOCK_SKEW = timedelta(minutes=5)
#: The last_error of a notice that died because its peer hub was disabled (or not pinned) when
#: its turn came: what :func:`dead_while_peer_disabled` counts.
DISABLED_PEER = "peer hub {0} is not pinned or is disabled (puente peer enable {0})"
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
    body = {name: message.payload.get(name) for name in PAYLOAD_FIELDS}
    # The same id in every attempt: the peer keeps one notification however many arrive.
    body["notice_id"] = message.id
    send_envelope(session, message, ENVELOPE_TYPE, body)


def send_to_peer(session: Session, message: OutboxMessage) -> None:
    """Send ``message``, queued for a peer hub, as the envelope its kind is: a cross-hub
    referral (:mod:`exchange.federation_referrals`) or a revocation notice."""
    from exchange.federation_referrals import REFERRAL_NOTICE, send_referral

    if message.kind == REFERRAL_NOTICE:
        send_referral(session, message)
    else:
        send_revocation(session, message)


def send_envelope(
    session: Session, message: OutboxMessage, envelope_type: str, body: dict[str, Any]
) -> None:
    """One attempt at ``message``: ``body`` signed now as an ``envelope_type`` envelope to its
    peer hub (a new ``jti`` every attempt) and posted; returns when the peer took it, else
    raises :class:`TransientDeliveryError` (no answer, 408, 429, 5xx) or
    :class:`PermanentDeliveryError` (the peer is disabled or has no URL, or refused it). The
    attempt is audited in ``session``; the caller commits."""
    peer_id = message.peer_hub or ""
    peer = session.get(Peer, peer_id)
    # Reasons in English, as every outbox message's last_error (puente outbox list).
    if peer is None or not peer.active:
        raise PermanentDeliveryError(DISABLED_PEER.format(peer_id))
    if not peer.base_url:
        raise PermanentDeliveryError(
            f"peer hub {peer_id} has no URL pinned (puente peer set-url {peer_id} URL)"
        )
    jti, token = sign_envelope(audience=peer_id, kind=envelope_type, body=body)
    url = peer.base_url.rstrip("/") + "/v1/federation/envelopes"
    timeout = float(current_app.config.get("FEDERATION_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS)
    try:
        answer = federation.post_envelope(url, token, timeout)
    except (OSError, http.client.HTTPException) as error:
        audit_envelope(session, "sent", peer_id, jti, envelope_type, outcome="failure")
        raise TransientDeliveryError(unanswered_reason(error)) from error
    taken = 200 <= answer.status < 300
    audit_envelope(
        session, "sent", peer_id, jti, envelope_type, outcome="success" if taken else "failure"
    )
    if taken:
        return
    detail = answer.body[:300].decode("utf-8", "replace")
    if answer.status in (408, 429) or answer.status >= 500:
        raise TransientDeliveryError(f"HTTP {answer.status} from peer hub {peer_id}: {detail}")
    raise PermanentDeliveryError(
        f"peer hub {peer_id} refused the notice (HTTP {answer.status}): {detail}"
    )


def unanswered_reason(error: BaseException) -> str:
    """Why a notice got no answer, as a webhook's failure is written
    (:mod:`exchange.transports`): what the socket said, not urllib's wrapper of it
    (``ConnectionRefusedError: [Errno 111] Connection refused``, not ``URLError: <urlopen
    error …>``). ``puente outbox list`` says such a reason in Spanish
    (``exchange.cli.worker.failure_reason``), and ``last_error`` (``--json``) is the same plain
    English as for an agency's webhook."""
    cause = getattr(error, "reason", None)
    reason = cause if isinstance(cause, BaseException) else error
    return f"{type(reason).__name__}: {reason}"


def dead_while_peer_disabled(session: Session, peer_hub: str) -> int:
    """How many notices to ``peer_hub`` died because it was disabled when their turn came
    (``puente outbox retry --all-dead --peer`` sends them once it is enabled again)."""
    from exchange.outbox import dead_because

    return dead_because(session, OutboxMessage.peer_hub == peer_hub, DISABLED_PEER.format(peer_hub))


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
    for name in ("agency_id", "consent_id", "child_id", "notice_id"):
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
    if revoked_at > utcnow() + CLOCK_SKEW:
        raise _invalid(
            "revoked_at",
            "revoked_at está en el futuro: una revocación se avisa cuando ya surtió efecto "
            "(revise el reloj del nodo que la envía).",
            "revoked_at is in the future: a revocation is notified once it took effect (check "
            "the sending hub's clock).",
        )
    agency = session.get(Agency, body["agency_id"])
    # An agency that never took an answer from the sender read nothing under its consents:
    # the notice is refused as for an agency this hub does not have, in the same words, which
    # say no more than that. A disabled agency is taken (below).
    if agency is None or not took_an_answer(session, agency.id, opened.peer.hub_id):
        raise EnvelopeRefused(
            "not-found",
            f"Este nodo no tiene una agencia {body['agency_id']} que haya recibido una "
            f"respuesta del nodo {opened.peer.hub_id}: no hay a quién avisar.",
            f"This hub has no agency {body['agency_id']} that took an answer from hub "
            f"{opened.peer.hub_id}: there is no one to tell.",
            status=404,
            pointer="/body/agency_id",
        )
    message_id = notice_message_id(opened.peer.hub_id, body["notice_id"])
    # Two copies at the same moment: the second's commit fails on the message id, a 500 the
    # sender's worker retries, and the retry finds the notification here.
    if session.get(OutboxMessage, message_id) is None:
        payload = revocation_payload(body["consent_id"], body["child_id"], revoked_at)
        # The hub that holds the child's records, whose ids these are.
        payload["hub"] = opened.peer.hub_id
        # As a notice of this hub's own (exchange.consents.records.notify_revocation): a
        # disabled agency still holds the data. Without a webhook or file drop it is held for
        # GET /v1/notifications; with one, the worker finds the agency disabled and keeps it
        # dead but readable, which `puente agency enable` counts. Refusing it instead would
        # make the sender's worker give it up for good (a 4xx is final there).
        message = enqueue(session, agency.id, EVENT, payload, held=not agency.webhook_url)
        message.id = message_id
    audit_envelope(session, "received", opened.peer.hub_id, opened.jti, ENVELOPE_TYPE)
    return {"envelope_id": opened.jti, "type": ENVELOPE_TYPE, "status": "accepted"}


def notice_message_id(peer_hub: str, notice_id: str) -> str:
    """The id of the notification a peer's notice gives, the same for every copy of it: the
    agency is told once, and can tell a repeat by its id."""
    digest = hashlib.sha256(f"{peer_hub}\n{notice_id}".encode()).hexdigest()
    return "msg_" + digest[:24]


def took_an_answer(session: Session, agency_id: str, peer_hub: str) -> bool:
    """Whether ``agency_id`` took an answer to a lookup from ``peer_hub``, as this hub's audit
    log says (``federation_envelope_received``, reason ``lookup_answer``, outcome ``success``,
    ``target.hub`` the peer): the indexed columns narrow the entries, and only those are read.

    Not a lookup that got no answer, was refused, or whose answer was discarded: nothing of it
    reached the agency. An answer that listed no record counts all the same: this hub keeps
    nothing of an answer but that entry (docs/federation.md §5), so it cannot tell an empty
    one, or the consents an answer's records were read under, from the rest."""
    received = session.scalars(
        select(AuditEntry.entry).where(
            AuditEntry.actor_agency == agency_id,
            AuditEntry.action == "federation_envelope_received",
            AuditEntry.outcome == "success",
        )
    )
    for raw in received:
        entry = json.loads(raw)
        if (
            entry.get("reason_code") == "lookup_answer"
            and (entry.get("target") or {}).get("hub") == peer_hub
        ):
            return True
    return False
