"""``POST /v1/witness/add-checkpoint``: the C2SP tlog-witness protocol, for federation peers.

No bearer token: as the spec says, the log's signature on the checkpoint is the request's
authentication, checked against the key pinned with ``puente peer add``. The success and 409
answers are the spec's text formats (cosignature lines; the latest cosigned size as
``text/x.tlog.size``); every other refusal is a problem with the spec's status code.
"""

from __future__ import annotations

from flask import Blueprint, Response

from exchange import db
from exchange.httpbasics import request_body
from exchange.keys import hub_keys
from exchange.problems import Problem
from exchange.witness_service import (
    MAX_REQUEST_BYTES,
    RewrittenLog,
    SizeConflict,
    WitnessRefusal,
    add_checkpoint,
)

bp = Blueprint("witness", __name__, url_prefix="/v1/witness")

TLOG_SIZE_MEDIA_TYPE = "text/x.tlog.size"

#: Refusal status -> problem kind (API.md's types).
_PROBLEM_KINDS = {400: "validation", 403: "bad-signature", 404: "not-found", 422: "validation"}


@bp.post("/add-checkpoint")
def add_checkpoint_route() -> Response:
    witness = hub_keys().witness
    if witness is None:
        raise Problem(
            "unavailable",
            (
                "El nodo no tiene cargada su llave de testigo.",
                "The hub has no witness key loaded.",
            ),
        )
    body = request_body(MAX_REQUEST_BYTES)
    database = db.database()
    session = db.session()
    try:
        cosignatures = add_checkpoint(session, body, witness, sqlite=database.is_sqlite)
    except SizeConflict as conflict:
        # Nothing changed but, after a fork, its audit entry: that must stay.
        session.commit()
        return Response(f"{conflict.latest_size}\n", status=409, content_type=TLOG_SIZE_MEDIA_TYPE)
    except RewrittenLog as refusal:
        # A 422, but the fork's audit entry was written: that must stay too.
        session.commit()
        raise _problem(refusal) from refusal
    except WitnessRefusal as refusal:
        session.rollback()
        raise _problem(refusal) from refusal
    session.commit()
    return Response(cosignatures, status=200, content_type="text/plain; charset=utf-8")


def _problem(refusal: WitnessRefusal) -> Problem:
    return Problem(
        _PROBLEM_KINDS[refusal.status],
        (refusal.message_es, refusal.message_en),
        status=refusal.status,
    )
