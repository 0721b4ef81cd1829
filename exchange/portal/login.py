"""Logging into the portal with e-mail and password, failed logins limited, and logging out.

Every failure gets the same answer, in the same time (exchange.people.verify_login verifies
against a dummy hash when there is no account), so the form tells nobody which addresses have
accounts. Failures are counted per e-mail address and per client address in the hub's rate
limit storage (exchange.ratelimit); past either limit the form refuses before verifying
anything, until the window ends. The audit log has no action for logins (its ``action`` enum
names changes and disclosures, and a login is neither), so logins go to the hub's JSON log
with the person's id only — never the address typed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time

from flask import current_app, g, redirect, render_template, request
from limits import RateLimitItem, parse_many
from werkzeug.wrappers import Response

from exchange import db
from exchange.people import verify_login
from exchange.portal.blueprint import bp, go
from exchange.portal.sessions import begin, end, safe_next
from exchange.ratelimit import RateLimits, client_address

log = logging.getLogger("puente.portal")

#: Counter scopes in the rate limit storage.
FAILURES_PER_EMAIL = "portal-login-email"
FAILURES_PER_ADDRESS = "portal-login-address"


@functools.cache
def _parsed(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text)) if text else ()


def _counters(email: str) -> list[tuple[RateLimitItem, str, str]]:
    """(limit, scope, key) of each counter a login with ``email`` counts against. The address
    is stored as a digest: the storage (Redis, say) need not hold people's e-mail addresses."""
    config = current_app.config
    email_key = hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]
    per_email = _parsed(config["PORTAL_LOGIN_FAILURES"] or "")
    per_address = _parsed(config["PORTAL_LOGIN_FAILURES_ADDRESS"] or "")
    return [
        *((item, FAILURES_PER_EMAIL, email_key) for item in per_email),
        *((item, FAILURES_PER_ADDRESS, client_address()) for item in per_address),
    ]


def _limits() -> RateLimits:
    state: RateLimits = current_app.extensions["puente.ratelimit"]
    return state


def _seconds_to_wait(counters: list[tuple[RateLimitItem, str, str]]) -> int | None:
    """Seconds until another attempt is allowed, when a counter is past its limit."""
    state = _limits()
    strategy = state.limiter.limiter
    try:
        for item, scope, key in counters:
            if not strategy.test(item, state.key_prefix, key, scope):
                reset = strategy.get_window_stats(item, state.key_prefix, key, scope).reset_time
                return max(1, math.ceil(reset - time.time()))
    except Exception:  # as exchange.ratelimit: a storage outage lets logins through
        log.warning("rate limit storage failed; login let through", exc_info=True)
    return None


def _count(counters: list[tuple[RateLimitItem, str, str]], *, failed: bool) -> None:
    """A failure counts against every counter; a success clears the e-mail's (not the
    address's: one's own account must not reset the count of guesses at others')."""
    state = _limits()
    strategy = state.limiter.limiter
    try:
        for item, scope, key in counters:
            if failed:
                strategy.hit(item, state.key_prefix, key, scope)
            elif scope == FAILURES_PER_EMAIL:
                strategy.clear(item, state.key_prefix, key, scope)
    except Exception:  # logged, as above
        log.warning("rate limit storage failed; login not counted", exc_info=True)


def _form(status: int = 200, **context: object) -> tuple[str, int]:
    return render_template(
        "login.html",
        next=safe_next(request.values.get("next")),
        ended=request.args.get("ended") == "1",
        **context,
    ), status


@bp.get("/login")
def login() -> str | tuple[str, int] | Response:
    if g.get("portal_person") is not None:
        return go("portal.index")
    return _form()


@bp.post("/login")
def login_post() -> tuple[str, int] | Response:
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    counters = _counters(email)
    wait = _seconds_to_wait(counters)
    if wait is not None:
        log.info("portal login refused: too many failures", extra={"retry_after": wait})
        return _form(429, email=email, wait=wait)
    session = db.session()
    person = verify_login(session, email, password)
    session.rollback()  # read only
    if person is None:
        _count(counters, failed=True)
        log.info("portal login failed")
        return _form(401, email=email, failed=True)
    _count(counters, failed=False)
    begin(person)
    log.info("portal login", extra={"person_id": person.id})
    target = safe_next(request.form.get("next"))
    return redirect(target, code=303) if target is not None else go("portal.index")


@bp.post("/logout")
def logout() -> Response:
    person = g.get("portal_person")
    end()
    if person is not None:
        log.info("portal logout", extra={"person_id": person.id})
    return go("portal.login")
