"""``/tokens``: a person's own personal access tokens — listed (never their secrets), made
(shown once, scopes bounded by the person's roles), and revoked at once.

Making and revoking go through the same services as ``puente person token`` and
``revoke-token`` (exchange.people), so the same checks apply and the same ``person_changed``
entries are written, naming the person as the one who acted.
"""

from __future__ import annotations

from flask import render_template, request
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
from exchange.portal.blueprint import Text, bp, go, message_page
from exchange.portal.sessions import current_actor, login_required


def _page(
    status: int = 200, *, issued: IssuedToken | None = None, errors: list[Text] | None = None
) -> tuple[str, int]:
    actor = current_actor()
    assert actor.person_id is not None
    session = db.session()
    tokens = [
        {
            "id": row.id,
            "name": row.label,
            "scopes": row.scope.split(),
            "expires_at": as_utc(row.expires_at).isoformat(timespec="minutes"),
        }
        for row in list_tokens(session, actor.person_id)
    ]
    return render_template(
        "tokens.html",
        tokens=tokens,
        issued=issued,
        errors=errors or [],
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
def create_token() -> tuple[str, int]:
    actor = current_actor()
    assert actor.person_id is not None
    days_text = request.form.get("days", "").strip() or str(DEFAULT_TOKEN_DAYS)
    if not days_text.isdigit():
        return _page(400, errors=[_days_refused(days_text)])
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
        return _page(400, errors=[(e.message_es, e.message_en) for e in found])
    session.commit()
    # Shown in this answer only (no-store, exchange.httpbasics): only its hash is kept.
    return _page(201, issued=issued)


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
        return message_page(
            404,
            ("No encontrado", "Not found"),
            ("No tiene un token con ese número.", "You have no token with that number."),
        )
    if end_token(session, row, by_person=actor):
        session.commit()
    else:
        session.rollback()  # already revoked: nothing changed, nothing audited
    return go("portal.tokens")
