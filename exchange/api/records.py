"""API blueprint: pushing case records (one or in bulk) and reading them for a purpose.

Pushes need ``records:write`` and come from agency systems; reads need ``records:read`` and a
``purpose``. A record the caller may not read answers exactly like a record that does not
exist (404), so the API never says whether a record exists.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any, NoReturn

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from exchange import db, idempotency
from exchange.auth import Actor, current_actor, require_scope
from exchange.child_linking import follow_merges
from exchange.crypto import data_keyring
from exchange.db import unavailable_reason
from exchange.hot_sql import HotSQL
from exchange.httpbasics import require_json
from exchange.idempotency import StoredAnswer
from exchange.problems import Problem, localized, negotiated_language
from exchange.record_bulk import RawLines, push_lines, too_many_bytes
from exchange.record_push import Pusher, PushResult, canonical_body, push_flags
from schemas.parsing import bounded_lines, iter_ndjson
from schemas.registry import default_registry

bp = Blueprint("records", __name__)

NDJSON = "application/x-ndjson"
SIGNATURE_HEADER = "Puente-Signature"
log = logging.getLogger("puente.http")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
DECISION_HEADER = "Puente-Decision"


# -- pushing -----------------------------------------------------------------------------------


def _pusher(session: Session, actor: Actor) -> Pusher:
    flags = push_flags(session, actor.agency_id) if actor.agency_id else None
    if flags is None or not flags[0]:
        raise Problem(
            "forbidden",
            (
                "Solo los sistemas de una institución activa envían expedientes.",
                "Only the systems of an active agency push records.",
            ),
        )
    assert actor.agency_id is not None
    return Pusher(
        session,
        actor.agency_id,
        require_signature=flags[1],
        keyring=data_keyring(),
        registry=default_registry(),
        actor_person=actor.person_id,
        request_id=g.get("request_id"),
        idempotency_hours=float(current_app.config["IDEMPOTENCY_KEY_HOURS"]),
        actor=actor,
    )


_PROBLEM_DETAILS = {
    "validation": ("El expediente no es válido.", "The record is not valid."),
    "unsupported-schema": ("Esquema no admitido.", "Unsupported schema."),
    "bad-signature": ("La firma no es válida.", "The signature is not valid."),
    "conflict": ("El expediente no admite este envío.", "The record cannot take this push."),
}


def _problem(result: PushResult) -> Problem:
    lang = negotiated_language()
    errors = [each.to_json(lang) for each in result.failures]
    kind = result.problem or "validation"
    detail: tuple[str, str] = _PROBLEM_DETAILS.get(kind, _PROBLEM_DETAILS["validation"])
    if len(result.failures) == 1:
        only = result.failures[0]
        detail = (only.message_es, only.message_en)
    return Problem(kind, detail, errors=errors)


def _idempotency_key() -> str | None:
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    try:
        idempotency.check_key(value)
    except ValueError:
        message = (
            "Idempotency-Key debe tener de 1 a 200 caracteres ASCII imprimibles.",
            "Idempotency-Key must be 1 to 200 printable ASCII characters.",
        )
        raise Problem(
            "validation",
            message,
            errors=[{"pointer": "", "header": IDEMPOTENCY_HEADER, "message": localized(*message)}],
        ) from None
    return value


def _replay(session: Session, earlier: StoredAnswer, sha256: str) -> Response:
    if earlier.request_sha256 != sha256:
        raise Problem(
            "conflict",
            (
                "Esta Idempotency-Key ya se usó con otro cuerpo; use una clave nueva.",
                "This Idempotency-Key was already used with a different body; use a new key.",
            ),
            status=422,
        )
    answer = _naming_the_current_child(session, earlier.response)
    response = Response(answer, status=earlier.status_code, mimetype="application/json")
    response.headers[REPLAYED_HEADER] = "true"
    record_id = json.loads(answer).get("record_id")
    if isinstance(record_id, str):  # the first answer's Location, as every stored push has
        response.headers["Location"] = f"/v1/records/{record_id}"
    return response


def _naming_the_current_child(session: Session, answer: str) -> str:
    """A stored answer names the child its record had then; after a merge, the first answer
    is given again naming the child the record belongs to now, as every other answer does."""
    stored = json.loads(answer)
    child_id = stored.get("child_id") if isinstance(stored, dict) else None
    if not isinstance(child_id, str):
        return answer
    survivor = follow_merges(HotSQL(session), session, {child_id}).get(child_id)
    return answer if survivor is None else json.dumps({**stored, "child_id": survivor})


def _refuse(session: Session, pusher: Pusher, result: PushResult) -> NoReturn:
    if result.problem == "bad-signature":
        pusher.audit_rejection(result)
        session.commit()
    raise _problem(result)


@bp.post("/v1/records")
@require_scope("records:write")
def push_record() -> Any:
    session = db.session()
    pusher = _pusher(session, current_actor())
    document = require_json()
    key = _idempotency_key()
    try:
        canonical, sha256 = canonical_body(document, source=request.get_data(cache=True))
    except ValueError:
        from exchange.canonical_errors import canonical_failure

        failure = canonical_failure(document)
        raise Problem(
            "validation",
            (failure.message_es, failure.message_en),
            errors=[failure.to_json(negotiated_language())],
        ) from None
    signature = request.headers.get(SIGNATURE_HEADER)
    if key:
        earlier = pusher.find_answer(key)
        if earlier is not None:
            # A retry's signature is checked as a first push's is: a bad or missing one is
            # refused and audited, never answered with what the first push stored.
            signed = pusher.check_signature(canonical, signature)
            if isinstance(signed, PushResult):
                _refuse(session, pusher, signed)
            return _replay(session, earlier, sha256)
    checked = pusher.check(document, canonical, sha256, signature)
    if isinstance(checked, PushResult):
        _refuse(session, pusher, checked)
    outcome = pusher.push_one(checked, key)
    if isinstance(outcome, StoredAnswer):
        return _replay(session, outcome, sha256)
    if outcome.status == "rejected":
        raise _problem(outcome)
    response = jsonify(outcome.answer())
    response.status_code = outcome.http_status
    response.headers["Location"] = f"/v1/records/{outcome.record_id}"
    return response


class _BoundedReader:
    """``read(n)`` over the request stream that stops, instead of failing, at the byte limit
    of a body sent without ``Content-Length``: it gives the first ``limit`` bytes, then ends,
    and ``over_limit`` tells whether the client sent more.

    The stream must allow one byte more than ``limit`` (``request.max_content_length``): that
    byte is how a body of exactly ``limit`` bytes is told from a longer one.
    """

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.taken = 0
        self.over_limit = False

    def read(self, size: int) -> bytes:
        if self.over_limit:
            return b""
        try:
            chunk = self.stream.read(size)
        except RequestEntityTooLarge:
            self.over_limit = True
            return b""
        self.taken += len(chunk)
        if self.taken > self.limit:
            self.over_limit = True
            chunk = chunk[: len(chunk) - (self.taken - self.limit)]
        return chunk

    def drain(self) -> None:
        # Read what the client still sends, so it gets to read the answer.
        while self.read(1 << 16):
            pass


def _lost_database_midway(error: DBAPIError, answered: int) -> Problem:
    """503 for a bulk push whose database went away or stopped taking writes (a full disk,
    say: the client is not told which, the server's log is): the batches answered before it
    are stored, and the client is told so, and that sending the file again is safe."""
    reason = unavailable_reason(error)
    log.error(
        "database unavailable during a bulk push after %d lines: %s",
        answered,
        reason[1] if reason else error,
        extra={"request_id": g.get("request_id")},
    )
    return Problem(
        "unavailable",
        (
            f"El nodo dejó de poder usar su base de datos durante el envío. Las primeras "
            f"{answered} líneas ya quedaron procesadas (las válidas, guardadas); el resto no. "
            "Envíe el archivo completo otra vez más tarde: lo ya guardado se responde "
            "«unchanged».",
            f"The hub could no longer use its database during the push. The first {answered} "
            "lines were already handled (the valid ones stored); the rest were not. Send the "
            "whole file again later: what was stored is answered 'unchanged'.",
        ),
        headers={"Retry-After": "30"},
        answered_lines=answered,
    )


@bp.post("/v1/records/bulk")
@require_scope("records:write")
def push_bulk() -> Any:
    config = current_app.config
    limit = int(config["BULK_MAX_CONTENT_LENGTH"])
    if request.mimetype != NDJSON:
        raise Problem(
            "unsupported-media-type",
            (
                f"Se esperaba {NDJSON}, se recibió {request.mimetype or 'nada'}.",
                f"Expected {NDJSON}, got {request.mimetype or 'nothing'}.",
            ),
        )
    if IDEMPOTENCY_HEADER in request.headers:
        # Ignoring it would let a client believe it is protected by it.
        message = (
            "Idempotency-Key es para envíos de un expediente; un envío masivo ya es seguro de "
            "repetir línea por línea: una línea igual a una versión ya guardada de su "
            "expediente se responde «unchanged». Envíe el archivo sin ese encabezado.",
            "Idempotency-Key is for single pushes; a bulk push is already safe to send again, "
            "line by line: a line equal to a version its record already holds is answered "
            "'unchanged'. Send the file without that header.",
        )
        raise Problem(
            "validation",
            message,
            errors=[{"pointer": "", "header": IDEMPOTENCY_HEADER, "message": localized(*message)}],
        )
    if request.content_length is not None and request.content_length > limit:
        raise Problem(
            "payload-too-large",
            (
                f"El envío masivo supera el límite de {limit} bytes.",
                f"The bulk push exceeds the limit of {limit} bytes.",
            ),
            limit=limit,
        )
    request.max_content_length = limit + 1  # see _BoundedReader
    pusher = _pusher(db.session(), current_actor())
    reader = _BoundedReader(request.stream, limit)
    # A line the byte limit cut is not parsed (it would read as malformed JSON): it is
    # answered payload-too-large below, and nothing after it is read.
    raw_lines = RawLines(bounded_lines(reader.read), cut_off=lambda: reader.over_limit)
    lines = iter_ndjson(raw_lines)
    lang = negotiated_language()
    counts: Counter[str] = Counter()
    # The answer is spooled (to disk past 4 MiB) and sent once the whole body is read: a
    # client that writes its body before reading the answer must never block on our output.
    spool = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    past_line_limit = False
    results = push_lines(
        pusher,
        lines,
        max_lines=int(config["BULK_MAX_LINES"]),
        batch_size=int(config["BULK_BATCH_SIZE"]),
        sources=raw_lines,
    )
    try:
        for result in results:
            counts[result.status] += 1
            if result.older_version is not None:
                counts["older_version"] += 1
            # Only the line limit ends push_lines with payload-too-large.
            past_line_limit = result.problem == "payload-too-large"
            spool.write(_LINE_ENCODER.encode(result.line_json(lang)).encode() + b"\n")
    except DBAPIError as error:
        if unavailable_reason(error) is None:
            raise
        raise _lost_database_midway(error, sum(counts.values())) from error
    # The line limit answered first: what the byte limit cut lies after it and is not answered.
    if reader.over_limit and not past_line_limit:
        counts["rejected"] += 1
        cut = too_many_bytes(raw_lines.number + 1, limit)
        spool.write(_LINE_ENCODER.encode(cut.line_json(lang)).encode() + b"\n")
    reader.drain()
    spool.seek(0)
    response = Response(_chunks(spool), mimetype=NDJSON)
    # older_version: of the unchanged lines, those equal to an earlier version (not applied).
    response.headers["Puente-Bulk-Summary"] = ", ".join(
        f"{count}={counts[count]}" for count in ("stored", "unchanged", "rejected", "older_version")
    )
    return response


# One encoder for every answer line (json.dumps with options builds a new one per call).
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False)


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(1 << 16):
            yield chunk
    finally:
        spool.close()
