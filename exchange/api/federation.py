"""Federation routes: envelopes from pinned peer hubs, and lookups this hub's agencies send to
them (:mod:`exchange.federation` says what an envelope is and how a lookup is answered).

``POST /v1/federation/envelopes`` takes no bearer token: as with the witness route, the peer's
signature, checked against the key pinned for it, is the request's authentication.
``POST /v1/federation/lookups`` is for an agency's system of this hub given the ``federation``
scope: reading here (``records:read``) is not enough, since a lookup sends a child's
identifiers to another hub. It looks a child up by identifiers, or reads the record a peer hub
referred to the agency by naming the referral (:mod:`exchange.federation_referrals`);
``GET /v1/federation/referrals`` lists the referrals the agency received from peer hubs
(:mod:`exchange.federation_received`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange import db
from exchange.api.sharing import COMMON
from exchange.auth import current_actor, require_scope
from exchange.child_search import identifier_shape_error
from exchange.federation import (
    LOOKUP_IDENTIFIER_TYPES,
    MAX_ENVELOPE_BYTES,
    MAX_IDENTIFIERS,
    MEDIA_TYPE,
    Answered,
    EnvelopeRefused,
    Opened,
    PeerUnavailable,
    answer_lookup,
    audit_refusal,
    lookup_at_peer,
    open_envelope,
)
from exchange.federation_notices import receive_revocation
from exchange.federation_received import receive_referral, received_by
from exchange.httpbasics import (
    REQUEST_NOT_VALID,
    check_against,
    int_query,
    query_parameters,
    request_body,
    require_json,
)
from exchange.peers import Peer
from exchange.problems import Problem, localized

bp = Blueprint("federation", __name__, url_prefix="/v1/federation")


def _problem(refusal: EnvelopeRefused) -> Problem:
    extra: dict[str, Any] = {}
    if refusal.kind == "validation" or refusal.pointer is not None:
        message = localized(refusal.message_es, refusal.message_en)
        extra["errors"] = [{"pointer": refusal.pointer or "", "message": message}]
    return Problem(
        refusal.kind, (refusal.message_es, refusal.message_en), status=refusal.status, **extra
    )


@bp.post("/envelopes")
def receive_envelope() -> Any:
    if request.mimetype != MEDIA_TYPE:
        raise Problem(
            "unsupported-media-type",
            (
                f"Un sobre de federación se envía como {MEDIA_TYPE} (JWS compacto); se recibió "
                f"{request.mimetype or 'nada'}.",
                f"A federation envelope is sent as {MEDIA_TYPE} (compact JWS); got "
                f"{request.mimetype or 'nothing'}.",
            ),
        )
    body = request_body(MAX_ENVELOPE_BYTES)
    session = db.session()
    started = time.monotonic()
    try:
        opened = open_envelope(session, body)
        if opened.type == "lookup":
            answer = answer_lookup(session, opened)
        elif opened.type == "consent_revoked":
            return jsonify(_take_notice(session, opened, receive_revocation))
        elif opened.type == "referral":
            return jsonify(_take_notice(session, opened, receive_referral))
        elif opened.type == "lookup_answer":
            raise EnvelopeRefused(
                "conflict",
                "Una respuesta de consulta viaja en la respuesta HTTP a la consulta; este nodo no "
                "espera respuestas por separado.",
                "A lookup answer travels in the HTTP response to the lookup; this hub does not "
                "take answers on their own.",
            ).sent_by(opened.peer.hub_id, opened.jti, opened.type, opened.body)
        else:
            raise EnvelopeRefused(
                "conflict",
                f"Este nodo aún no recibe sobres de tipo {opened.type} (transferencias entre "
                "nodos): pida al nodo de origen que canalice el expediente (referral).",
                f"This hub does not take {opened.type} envelopes yet (transfers between hubs): "
                "ask the sending hub to refer the record instead (referral).",
            ).sent_by(opened.peer.hub_id, opened.jti, opened.type, opened.body)
    except EnvelopeRefused as refusal:
        session.rollback()
        if refusal.verified_from is not None:
            # A peer really sent it (its signature verified): oversight sees what was refused,
            # and whom the peer named as asking. An envelope no pinned key verifies is
            # anyone's, and is not written to the log.
            audit_refusal(session, refusal)
            session.commit()
        raise _problem(refusal) from refusal
    session.commit()
    # Every answer takes at least the floor, whether the children were here or not.
    floor = answer_floor(answer, time.monotonic() - started)
    time.sleep(max(0.0, started + floor - time.monotonic()))
    return jsonify(answer.json)


#: How many empty answers of each shape :func:`answer_floor` remembers the time of.
FLOOR_MEMORY = 128
#: The longest a learned floor makes an answer wait: well within an asking hub's default
#: ``PUENTE_FEDERATION_TIMEOUT`` (10 s), whatever one slow moment (a lock, a pause) took.
LEARNED_FLOOR_CAP = 5.0
_FLOOR_LOCK = threading.Lock()


def answer_floor(answer: Answered, worked: float) -> float:
    """How long, at least, ``answer`` takes (``worked``: the seconds it took to make and
    commit): ``FEDERATION_ANSWER_FLOOR``, or the longest an empty answer (no record: a child
    not held, or held and refused) to a lookup of as many identifiers took to make among the
    last :data:`FLOOR_MEMORY` this process gave, when longer. Deciding and auditing the reads
    of a child with many records takes longer than the fixed floor (docs/federation.md §2);
    an empty answer then waits as long as the slowest one, so that its time does not tell a
    child held from one not held. Per process, from its start: the first such answer shows.
    A floor of 0 is no floor, and learns nothing."""
    configured = float(current_app.config.get("FEDERATION_ANSWER_FLOOR") or 0)
    if configured <= 0:
        return 0.0
    with _FLOOR_LOCK:
        slowest = current_app.extensions.setdefault("puente.federation_answer_times", {})
        times = slowest.setdefault(answer.identifiers, deque(maxlen=FLOOR_MEMORY))
        floor = max(configured, min(max(times, default=0.0), LEARNED_FLOOR_CAP))
        if answer.records == 0:
            times.append(worked)
    return floor


def _take_notice(
    session: Session, opened: Opened, receive: Callable[[Session, Opened], dict[str, Any]]
) -> dict[str, Any]:
    """Take a revocation notice or a referral (``receive``) and commit it. Two copies arriving
    at the same moment can both find it not kept yet; the second's commit then fails on the
    notification's id, and it is taken again, finding what the first stored, instead of
    answering a 500. (The envelope's ``jti`` was consumed in a transaction of its own, so it
    stays consumed.)"""
    for attempt in range(2):
        try:
            answer = receive(session, opened)
        except EnvelopeRefused as refusal:
            raise refusal.sent_by(opened.peer.hub_id, opened.jti) from None
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            if attempt:
                raise
        else:
            return answer
    raise AssertionError("unreachable")


LOOKUP_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.puente.mx/api/federated-lookup/1",
    "x-title": {"es": "Consulta federada", "en": "Federated lookup"},
    "type": "object",
    "additionalProperties": False,
    "required": ["hub", "purpose"],
    "properties": {
        "hub": {
            "x-title": {"es": "Nodo", "en": "Hub"},
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9._-]{0,99}$",
        },
        "purpose": {"$ref": COMMON + "purpose", "x-title": {"es": "Finalidad", "en": "Purpose"}},
        "identifiers": {
            "x-title": {"es": "Identificadores", "en": "Identifiers"},
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_IDENTIFIERS,
            "items": {
                "x-title": {"es": "Identificador", "en": "Identifier"},
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "value"],
                "properties": {
                    "type": {
                        "x-title": {"es": "Tipo", "en": "Type"},
                        "enum": list(LOOKUP_IDENTIFIER_TYPES),
                    },
                    "value": {
                        "x-title": {"es": "Valor", "en": "Value"},
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 100,
                        "pattern": r"\S",
                    },
                },
            },
        },
        "referral": {
            "x-title": {"es": "Canalización", "en": "Referral"},
            "type": "string",
            "pattern": "^shr_[0-9a-f]{8,64}$",
        },
    },
}


@bp.post("/lookups")
@require_scope("federation")
def send_lookup() -> Any:
    body = require_json()
    check_against(LOOKUP_SCHEMA, body)
    if ("identifiers" in body) == ("referral" in body):
        message = (
            "Una consulta nombra identificadores (identifiers) o una canalización recibida "
            "(referral: su share_id), una de las dos.",
            "A lookup names identifiers, or a referral received (referral: its share_id): one "
            "of the two.",
        )
        raise Problem(
            "validation",
            REQUEST_NOT_VALID,
            errors=[
                {
                    "pointer": "/referral" if "referral" in body else "/identifiers",
                    "message": localized(*message),
                }
            ],
        )
    shapes = [
        {"pointer": f"/identifiers/{index}/value", "message": localized(*shape)}
        for index, item in enumerate(body.get("identifiers", ()))
        if (shape := identifier_shape_error(item["type"], item["value"])) is not None
    ]
    if shapes:
        raise Problem("validation", REQUEST_NOT_VALID, errors=shapes)
    actor = current_actor()
    if actor.agency_id is None or actor.person_id is not None:
        raise Problem(
            "forbidden",
            (
                "Una consulta federada la hace el sistema de una agencia: el otro nodo decide "
                "lo que la agencia puede leer, no lo que puede una persona.",
                "A federated lookup is made by an agency's system: the other hub decides what "
                "the agency may read, not what a person may.",
            ),
        )
    session = db.session()
    if body["hub"] == current_app.config["HUB_ID"]:
        # Not "no such peer": the agency named the hub it is on, which a lookup never goes to.
        raise Problem(
            "not-found",
            (
                f"{body['hub']} es este mismo nodo: una consulta federada va a otro nodo. Lo que "
                "este nodo tiene se busca con POST /v1/children/search.",
                f"{body['hub']} is this hub itself: a federated lookup goes to another hub. What "
                "this hub holds is found with POST /v1/children/search.",
            ),
        )
    peer = session.get(Peer, body["hub"])
    if peer is None:
        raise Problem(
            "not-found",
            (
                f"No hay un nodo par {body['hub']!r} registrado.",
                f"No peer hub {body['hub']!r} is pinned.",
            ),
        )
    identifiers = [(item["type"], item["value"]) for item in body.get("identifiers", ())]
    try:
        answer = lookup_at_peer(
            session, actor, peer, body["purpose"], identifiers, body.get("referral")
        )
    except EnvelopeRefused as refusal:
        raise _problem(refusal) from refusal
    except PeerUnavailable as error:
        raise Problem("unavailable", (error.message_es, error.message_en), status=502) from error
    return jsonify(answer)


@bp.get("/referrals")
@require_scope("federation")
@query_parameters("limit", "after")
def list_referrals() -> Any:
    """The referrals peer hubs made to the caller's agency, oldest first: each names the hub,
    its share id (to name in a lookup), record id, referring agency, purpose and categories.
    ``after``: the last id seen. An agency's system reads them, as it looks up; a person's
    token is given none."""
    actor = current_actor()
    if actor.agency_id is None or actor.person_id is not None:
        return jsonify(referrals=[], next_after=None)
    limit = int_query("limit", minimum=1, maximum=500, default=100)
    try:
        found = received_by(
            db.session(), actor.agency_id, after=request.args.get("after"), limit=limit
        )
    except LookupError:
        message = (
            "«after» no es una canalización recibida por su agencia.",
            "'after' is not a referral your agency received.",
        )
        raise Problem(
            "validation",
            message,
            errors=[
                {"pointer": "/query/after", "parameter": "after", "message": localized(*message)}
            ],
        ) from None
    listed = [referral.to_json() for referral in found]
    return jsonify(referrals=listed, next_after=listed[-1]["id"] if len(listed) == limit else None)
