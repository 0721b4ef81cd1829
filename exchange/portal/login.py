"""Logging into the portal with e-mail and password, failed logins limited, and logging out.

Every failure gets the same answer, in the same time (exchange.people.verify_login verifies
against a dummy hash when there is no account), so the form tells nobody which addresses have
accounts. The audit log has no action for logins (its ``action`` enum names changes and
disclosures, and a login is neither), so logins go to the hub's JSON log with the person's id
only — never the address typed.

Failed logins are counted in the hub's rate limit storage (exchange.ratelimit) so that guessing
is slow, without letting anyone who knows a person's e-mail lock that person out:

- per e-mail *and* client address (``PORTAL_LOGIN_FAILURES``) and per client address
  (``PORTAL_LOGIN_FAILURES_ADDRESS``): past either, that address is refused (429, before any
  password is verified) until the window ends. Other addresses are not: the person logs in
  from theirs while someone guesses from another.
- per e-mail from every address together (``PORTAL_LOGIN_FAILURES_EMAIL``, much higher):
  guessing spread over many addresses. Past it, each address gets one try at that e-mail per
  window (an address that already failed at it is refused), so the person, who has not failed
  from theirs, still gets in, and each guessing address gets one guess in place of many.

A client address counts as itself, but an IPv6 one as its /64 network, which one subscriber
(one attacker) is given whole.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from flask import current_app, g, redirect, render_template, request
from limits import RateLimitItem, parse_many
from werkzeug.wrappers import Response

from exchange import db
from exchange.people import verify_login
from exchange.portal.blueprint import bp, go
from exchange.portal.sessions import FORM_NOT_SENT, begin, end, safe_next
from exchange.ratelimit import RateLimits, client_address

log = logging.getLogger("puente.portal")

#: Counter scopes in the rate limit storage.
FAILURES_PER_EMAIL_AT_ADDRESS = "portal-login-email-address"
FAILURES_PER_ADDRESS = "portal-login-address"
FAILURES_PER_EMAIL = "portal-login-email"
#: That an address failed at an e-mail within a window of the e-mail-wide limit.
FAILED_FROM_ADDRESS = "portal-login-email-address-failed"


@dataclass(frozen=True)
class Counter:
    item: RateLimitItem
    scope: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Counters:
    """What one login attempt counts against: ``own`` refuse the address past their limit;
    each pair of ``spread`` is the e-mail's counter over every address and the mark that this
    address failed at the e-mail in the same window, which refuse it only together."""

    own: tuple[Counter, ...]
    spread: tuple[tuple[Counter, Counter], ...]


@functools.cache
def _parsed(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text)) if text else ()


def client_network() -> str:
    """The client's address, an IPv6 one as its /64 network: counting single IPv6 addresses
    would let one machine try from billions of them."""
    address = client_address()
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


def _counters(email: str) -> Counters:
    """The e-mail is stored as a digest: the storage (Redis, say) need not hold people's
    e-mail addresses."""
    config = current_app.config
    email_key = hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]
    network = client_network()
    return Counters(
        own=(
            *(
                Counter(item, FAILURES_PER_EMAIL_AT_ADDRESS, (email_key, network))
                for item in _parsed(config["PORTAL_LOGIN_FAILURES"] or "")
            ),
            *(
                Counter(item, FAILURES_PER_ADDRESS, (network,))
                for item in _parsed(config["PORTAL_LOGIN_FAILURES_ADDRESS"] or "")
            ),
        ),
        spread=tuple(
            (
                Counter(item, FAILURES_PER_EMAIL, (email_key,)),
                Counter(type(item)(1, item.multiples), FAILED_FROM_ADDRESS, (email_key, network)),
            )
            for item in _parsed(config["PORTAL_LOGIN_FAILURES_EMAIL"] or "")
        ),
    )


def _limits() -> RateLimits:
    state: RateLimits = current_app.extensions["puente.ratelimit"]
    return state


def _seconds_to_wait(counters: Counters) -> int | None:
    """Seconds until this address may try again, when it is refused now."""
    state = _limits()
    strategy = state.limiter.limiter

    def past(counter: Counter) -> bool:
        return not strategy.test(counter.item, state.key_prefix, *counter.keys, counter.scope)

    def reset(counter: Counter) -> float:
        keys = (state.key_prefix, *counter.keys, counter.scope)
        return strategy.get_window_stats(counter.item, *keys).reset_time

    try:
        for counter in counters.own:
            if past(counter):
                return _seconds_until(reset(counter))
        for everywhere, here in counters.spread:
            if past(everywhere) and past(here):
                return _seconds_until(min(reset(everywhere), reset(here)))
    except Exception:  # as exchange.ratelimit: a storage outage lets logins through
        log.warning("rate limit storage failed; login let through", exc_info=True)
    return None


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))


def _count(counters: Counters, *, failed: bool) -> None:
    """A failure counts against every counter; a success clears this address's counts at the
    e-mail (not the address's own: one's own account must not reset the count of guesses at
    others'; nor the e-mail's from every address, which guessing elsewhere may have filled)."""
    state = _limits()
    strategy = state.limiter.limiter
    every = [*counters.own, *(counter for pair in counters.spread for counter in pair)]
    try:
        for counter in every:
            keys = (state.key_prefix, *counter.keys, counter.scope)
            if failed:
                strategy.hit(counter.item, *keys)
            elif counter.scope in (FAILURES_PER_EMAIL_AT_ADDRESS, FAILED_FROM_ADDRESS):
                strategy.clear(counter.item, *keys)
    except Exception:  # logged, as above
        log.warning("rate limit storage failed; login not counted", exc_info=True)


def _form(status: int = 200, **context: object) -> tuple[str, int]:
    """The login page; ``ended=`` says the session ended (``1``), or ended before a form was
    sent (``form``: kept in the form's address, so a mistyped password does not lose it)."""
    ended = request.args.get("ended")
    return render_template(
        "login.html",
        next=safe_next(request.values.get("next")),
        ended=ended == "1",
        unsent=ended == FORM_NOT_SENT,
        **context,
    ), status


@bp.get("/login")
def login() -> str | tuple[str, int] | Response:
    if g.get("portal_person") is not None:
        return go("portal.index")
    return _form()


@bp.post("/login")
def login_post() -> tuple[str, int] | tuple[str, int, dict[str, str]] | Response:
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    counters = _counters(email)
    wait = _seconds_to_wait(counters)
    if wait is not None:
        log.info("portal login refused: too many failures", extra={"retry_after": wait})
        # Said in whole minutes, rounded up: the window is minutes long, and never sooner.
        page, status = _form(429, email=email, wait=wait, wait_minutes=math.ceil(wait / 60))
        return page, status, {"Retry-After": str(wait)}
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


def stale_form() -> tuple[str, int]:
    """The login page again, for a login form whose CSRF token is not this session's (opened
    before a login or logout in another tab, or after the browser lost the cookie): nothing is
    verified nor counted, and the fresh form keeps the e-mail typed."""
    return _form(400, email=request.form.get("email", "").strip(), stale=True)


@bp.post("/logout")
def logout() -> Response:
    person = g.get("portal_person")
    end(person)
    if person is not None:
        log.info("portal logout", extra={"person_id": person.id})
    return go("portal.login")
