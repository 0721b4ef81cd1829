"""``/tokens``: a person's own personal access tokens — listed (never their secrets), made
(shown once, scopes bounded by the person's roles), and revoked at once.

Making and revoking go through the same services as ``puente person token`` and
``revoke-token`` (exchange.people), so the same checks apply and the same ``person_changed``
entries are written, naming the person as the one who acted.

Both answer with a redirect to the list (Post/Redirect/Get), so a reload or a second click
makes no second token. The new token's secret crosses that redirect in the session cookie,
sealed (encrypted) under a key derived from the portal secret, and the next page takes it out:
it is shown on that one page, and is never in an address, a log or the browser's history.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import nacl.exceptions
import nacl.secret
from flask import current_app, g, render_template, request, url_for
from werkzeug.wrappers import Response

from exchange import db
from exchange.agencies import AgencyError, InvalidAgency
from exchange.auth import AccessToken, as_utc
from exchange.people import (
    DEFAULT_TOKEN_DAYS,
    MAX_TOKEN_DAYS,
    IssuedToken,
    allowed_scopes,
    end_token,
    issue_token,
    list_tokens,
)
from exchange.portal.blueprint import Text, bp, go, leave_notice, message_page, notice
from exchange.portal.sessions import current_actor, login_required

ISSUED, REVOKED = "token_issued", "token_revoked"


def _box() -> nacl.secret.SecretBox:
    """The key that seals a new token's secret in the session cookie: derived from the portal
    secret (which signs the cookie) for this use alone."""
    secret = str(current_app.secret_key).encode("utf-8")
    key = hmac.new(secret, b"puente portal: a new token, shown once", hashlib.sha256).digest()
    return nacl.secret.SecretBox(key)


def _seal(issued: IssuedToken) -> str:
    return base64.b64encode(_box().encrypt(json.dumps(issued.to_json()).encode())).decode()


def _unsealed(person_id: str) -> dict[str, Any] | None:
    """The token this person made just before, from the notice left for this page."""
    left = notice(ISSUED)
    if left is None:
        return None
    try:
        issued: dict[str, Any] = json.loads(_box().decrypt(base64.b64decode(left["sealed"])))
    except (KeyError, ValueError, TypeError, nacl.exceptions.CryptoError):
        return None  # sealed under another portal secret: not shown, nothing else to do
    if issued.get("person_id") != person_id:
        return None
    issued["expires_at"] = datetime.fromisoformat(issued["expires_at"])
    return issued


#: A refusal of the form, by the field it is about (``""``: the form as a whole).
FieldError = tuple[str, Text]


def _by_field(errors: list[FieldError]) -> dict[str, Text]:
    """Each field's messages together, for the field to be described by them."""
    joined: dict[str, Text] = {}
    for field, (es, en) in errors:
        if field:
            before = joined.get(field)
            joined[field] = (f"{before[0]} {es}", f"{before[1]} {en}") if before else (es, en)
    return joined


def _page(status: int = 200, *, errors: list[FieldError] | None = None) -> tuple[str, int]:
    actor = current_actor()
    assert actor.person_id is not None
    g.page_path = url_for("portal.tokens")
    session = db.session()
    tokens = [
        {
            "id": row.id,
            "name": row.label,
            "scopes": row.scope.split(),
            "expires_at": as_utc(row.expires_at),
        }
        for row in list_tokens(session, actor.person_id)
    ]
    return render_template(
        "tokens.html",
        tokens=tokens,
        issued=_unsealed(actor.person_id),
        revoked=notice(REVOKED),
        errors=[said for _field, said in errors or ()],
        field_errors=_by_field(errors or []),
        scopes=sorted(allowed_scopes(actor.roles)),
        chosen=set(request.form.getlist("scope")),
        days=request.form.get("days", str(DEFAULT_TOKEN_DAYS)),
        name=request.form.get("name", ""),
        max_days=MAX_TOKEN_DAYS,
    ), status


@bp.get("/tokens")
@login_required()
def tokens() -> tuple[str, int]:
    return _page()


@bp.post("/tokens")
@login_required()
def create_token() -> Response | tuple[str, int]:
    actor = current_actor()
    assert actor.person_id is not None
    days_text = request.form.get("days", "").strip() or str(DEFAULT_TOKEN_DAYS)
    # ASCII digits only, as revoke reads a token id: str.isdigit() takes ², which int() refuses.
    # Bounded too: int() refuses more than 4,300 digits; the service says what range fits.
    if not (days_text.isascii() and days_text.isdigit() and len(days_text) <= 9):
        return _page(400, errors=[("days", _days_refused(days_text))])
    session = db.session()
    try:
        issued = issue_token(
            session,
            actor.person_id,
            request.form.getlist("scope"),
            days=int(days_text),
            name=request.form.get("name", "").strip() or None,
            by_person=actor,
        )
    except AgencyError as error:
        session.rollback()
        found = error.errors if isinstance(error, InvalidAgency) else [error]
        return _page(400, errors=[_field_error(e) for e in found])
    session.commit()
    # Shown on the next page only (no-store, exchange.httpbasics): only its hash is kept.
    leave_notice(ISSUED, sealed=_seal(issued))
    return go("portal.tokens", _anchor="new-token")


def _field_error(error: AgencyError) -> FieldError:
    # The form's fields: name, scope (the service's ``scopes``) and days.
    field = error.field if error.field in ("name", "scopes", "days") else ""
    return field, (error.message_es, error.message_en)


def _days_refused(days: str) -> Text:
    return (
        f"La vigencia debe ser un número de días de 1 a {MAX_TOKEN_DAYS}; se recibió {days!r}.",
        f"The lifetime must be a number of days from 1 to {MAX_TOKEN_DAYS}; got {days!r}.",
    )


@bp.post("/tokens/<token_id>/revoke")
@login_required()
def revoke(token_id: str) -> Response | tuple[str, int]:
    actor = current_actor()
    session = db.session()
    # Any text routes here, so that whatever is not one of the person's tokens gets the same
    # page; ids are the table's INTEGER key (32 bits on PostgreSQL).
    number = (
        int(token_id)
        if token_id.isascii() and token_id.isdigit() and len(token_id) <= 10
        else 2**31
    )
    row = session.get(AccessToken, number) if number < 2**31 else None
    if row is None or row.person_id is None or row.person_id != actor.person_id:
        # Someone else's token, or none: the same answer, which tells nothing.
        g.page_path = url_for("portal.tokens")
        return message_page(
            404,
            ("No encontrado", "Not found"),
            ("No tiene un token con ese número.", "You have no token with that number."),
        )
    revoked = {"token_id": row.id, "name": row.label}
    if end_token(session, row, by_person=actor):
        session.commit()
    else:
        session.rollback()  # already revoked: nothing changed, nothing audited
    leave_notice(REVOKED, **revoked)
    return go("portal.tokens")
