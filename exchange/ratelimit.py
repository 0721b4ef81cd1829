"""Rate limits (Flask-Limiter over ``limits``): failed authentication, and a per-client budget.

Three counters, all answered 429 with ``Retry-After``: the ``rate-limited`` problem, except
under ``/oauth/``, where OAuth clients read RFC 6749 errors (``temporarily_unavailable``, as
the hub's other OAuth errors are shaped, :func:`oauth_refusal`):

- Failed client authentication at ``/oauth/*`` (wrong secret, bad assertion, unknown client):
  an address with ``RATE_LIMIT_AUTH_FAILURES`` failures is refused every OAuth request until
  the window ends (checked before the credentials are). Failures are also counted per claimed
  client id; past the limit that client's *failures* are answered 429 instead of 401, but its
  good credentials still get tokens. Secrets are 256 bits and keys Ed25519, so guessing is
  hopeless anyway; refusing a client id outright would let anyone who knows an agency's id
  lock the agency out of its own tokens.
- Unknown bearer tokens, per address: past the limit they are answered 429 instead of 401.
  Only unknown tokens count (not expired or revoked ones, which a client renews), and only
  after the lookup fails, so well-behaved requests never touch the counter's storage.
- ``RATE_LIMIT``: every request of an authenticated client (bearer-token requests and the
  tokens it is issued), off unless configured.

Counters live in ``RATE_LIMIT_STORAGE``: ``memory://`` counts per process (each gunicorn
worker on its own), ``redis://`` shares them between workers and hosts. If the storage is
unreachable the hub logs it and lets requests through: a limiter outage must not stop the
exchange of records.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import token_authenticated
from flask import Blueprint, Flask, Response, current_app, g, json, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many
from limits.storage import SCHEMES

from exchange.problems import Problem, negotiated_language, oauth_error_body, problem_response

log = logging.getLogger("puente.ratelimit")

#: What ``PUENTE_RATE_LIMIT_STRATEGY`` takes (the ``limits`` library's names).
STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")

#: Failures allowed when ``RATE_LIMIT_AUTH_FAILURES`` is unset (and not under ``TESTING``).
DEFAULT_AUTH_FAILURES = "10 per minute"

#: Counter scopes (the last part of each storage key).
AUTH_FAILURES = "auth-failures"
AUTH_FAILURES_CLIENT = "auth-failures-client"
UNKNOWN_TOKENS = "unknown-tokens"
CLIENT_REQUESTS = "client-requests"

_FAILED_FLAG = "puente_authentication_failed"

#: The one blueprint with Flask-Limiter limits: the OAuth server's (``exchange.oauth``).
LIMITED_BLUEPRINT = "oauth"

_MESSAGES: dict[str, tuple[str, str]] = {
    AUTH_FAILURES: (
        "Demasiados intentos de autenticación fallidos desde esta dirección.",
        "Too many failed authentication attempts from this address.",
    ),
    AUTH_FAILURES_CLIENT: (
        "Demasiados intentos de autenticación fallidos para este cliente.",
        "Too many failed authentication attempts for this client.",
    ),
    UNKNOWN_TOKENS: (
        "Demasiados tokens de acceso no válidos desde esta dirección.",
        "Too many invalid access tokens from this address.",
    ),
    CLIENT_REQUESTS: (
        "Este cliente superó su límite de solicitudes.",
        "This client exceeded its request limit.",
    ),
}


@dataclass
class RateLimits:
    """One app's limiter and the limits read from its configuration."""

    limiter: Limiter
    key_prefix: str
    auth_failures: list[RateLimitItem] = field(default_factory=list)
    per_client: list[RateLimitItem] = field(default_factory=list)


def _limits(value: Any, setting: str) -> list[RateLimitItem]:
    """``"10 per minute; 100 per hour"`` as limit items; empty, None or false: no limit. A
    value that is not limits is a :class:`~exchange.config.SettingError` naming ``setting``."""
    if not value:
        return []
    try:
        return parse_many(str(value))
    except ValueError:
        raise _not_valid(
            setting,
            value,
            "límites como «10 per minute; 100 per hour» (per second, minute, hour, day, month "
            "o year), o vacío para ninguno",
            "limits such as '10 per minute; 100 per hour' (per second, minute, hour, day, "
            "month or year), or empty for none",
        ) from None


def _not_valid(setting: str, value: Any, takes_es: str, takes_en: str) -> Exception:
    from exchange.config import SettingError

    return SettingError(
        f"PUENTE_{setting} = {value}: no es válido; se esperan {takes_es}.",
        f"PUENTE_{setting} = {value}: not valid; it takes {takes_en}.",
    )


def _auth_failures_setting(app: Flask) -> Any:
    value = app.config.get("RATE_LIMIT_AUTH_FAILURES")
    if value is None:
        # Unset: on for a served hub, off in tests that do not ask for it (many tests fail
        # authentication on purpose, and must not depend on each other's counts).
        return None if app.config.get("TESTING") else DEFAULT_AUTH_FAILURES
    return value


def _state(app: Flask | None = None) -> RateLimits:
    return (app or current_app).extensions["puente.ratelimit"]  # type: ignore[no-any-return]


def client_address() -> str:
    """The caller's address: the peer's, or the one ``RATE_LIMIT_PROXY_HOPS`` trusted reverse
    proxies put in ``X-Forwarded-For`` (behind a proxy the peer is always the proxy)."""
    hops = int(current_app.config.get("RATE_LIMIT_PROXY_HOPS") or 0)
    if hops > 0:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.remote_addr or "unknown"


def init_app(app: Flask) -> None:
    """One limiter per app (tests build many apps; each must count on its own)."""
    storage = app.config.get("RATE_LIMIT_STORAGE") or "memory://"
    strategy = app.config.get("RATE_LIMIT_STRATEGY") or "fixed-window"
    if strategy not in STRATEGIES:
        takes = " / ".join(STRATEGIES)
        raise _not_valid("RATE_LIMIT_STRATEGY", strategy, takes, takes)
    scheme = urllib.parse.urlparse(str(storage)).scheme
    if scheme not in SCHEMES or scheme.startswith("async+"):
        raise _not_valid(
            "RATE_LIMIT_STORAGE",
            storage,
            "memory://, redis://SERVIDOR:PUERTO o memcached://SERVIDOR:PUERTO",
            "memory://, redis://HOST:PORT or memcached://HOST:PORT",
        )
    limiter = Limiter(
        key_func=client_address,
        storage_uri=storage,
        strategy=strategy,
        key_prefix=f"puente:{app.config['HUB_ID']}",
        # Fail open: an unreachable storage is logged, and requests go on.
        swallow_errors=True,
        headers_enabled=False,
    )
    hooks: tuple[dict[Any, list[Any]], ...] = (
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
    )
    app_wide = [list(registry[None]) for registry in hooks]
    limiter.init_app(app)
    # Flask-Limiter hooks every request of the app, but its limits are only on the OAuth
    # routes: its hooks move there, so pushes and reads do not pay for them (some 50 µs each).
    for registry, kept in zip(hooks, app_wide, strict=True):
        added = [hook for hook in registry[None] if hook not in kept]
        registry[None] = kept
        registry[LIMITED_BLUEPRINT].extend(added)
    app.extensions["puente.ratelimit"] = RateLimits(
        limiter=limiter,
        key_prefix=f"puente:{app.config['HUB_ID']}",
        auth_failures=_limits(_auth_failures_setting(app), "RATE_LIMIT_AUTH_FAILURES"),
        per_client=_limits(app.config.get("RATE_LIMIT"), "RATE_LIMIT"),
    )
    app.register_error_handler(RateLimitExceeded, _limit_exceeded)
    app.register_error_handler(RateLimited, _rate_limited_response)


def guard_client_authentication(
    app: Flask, blueprint: Blueprint, claimed_client_id: Callable[[], str | None]
) -> None:
    """Limits for the blueprint whose every route authenticates OAuth clients.

    Before a request: refused if its address has too many failures, or if its claimed client
    has used its ``RATE_LIMIT`` budget. After: a failure (see :func:`authentication_failed`)
    counts against the address; a success against the client's budget.
    """
    if blueprint.name != LIMITED_BLUEPRINT:
        raise ValueError(f"Flask-Limiter's hooks run only on {LIMITED_BLUEPRINT!r} routes")
    state = _state(app)
    if state.auth_failures:
        state.limiter.shared_limit(
            "; ".join(str(item) for item in state.auth_failures),
            scope=AUTH_FAILURES,
            key_func=client_address,
            deduct_when=lambda _response: bool(g.get(_FAILED_FLAG)),
        )(blueprint)
    if state.per_client:
        state.limiter.shared_limit(
            "; ".join(str(item) for item in state.per_client),
            scope=CLIENT_REQUESTS,
            key_func=lambda: claimed_client_id() or "",
            deduct_when=lambda response: response.status_code == 200,
        )(blueprint)


def authentication_failed(client_id: str | None) -> None:
    """A client failed to authenticate: counted per address (after the response) and per
    client id (now). Raises the 429 problem once the client id is past its limit."""
    state = _state()
    if not state.auth_failures:
        return
    g.setdefault(_FAILED_FLAG, True)
    if client_id:
        _hit(state, state.auth_failures, client_id, AUTH_FAILURES_CLIENT)


def unknown_bearer_token() -> None:
    """A bearer token matched no valid token: counted per address; past the limit, 429."""
    state = _state()
    if state.auth_failures:
        _hit(state, state.auth_failures, client_address(), UNKNOWN_TOKENS)


def _count_client_request(_sender: Any, token: Any = None, **_extra: Any) -> None:
    # Authlib sends this once a bearer token is valid and carries the route's scopes.
    state = _state()
    client_id = getattr(token, "client_id", None)
    if state.per_client and client_id:
        _hit(state, state.per_client, client_id, CLIENT_REQUESTS)


token_authenticated.connect(_count_client_request)


def _hit(state: RateLimits, items: list[RateLimitItem], key: str, scope: str) -> None:
    """Count one event against every item; raise the 429 problem if one is exhausted."""
    strategy = state.limiter.limiter
    for item in items:
        try:
            within = strategy.hit(item, state.key_prefix, key, scope)
            if within:
                continue
            reset_time = strategy.get_window_stats(item, state.key_prefix, key, scope).reset_time
        except Exception:  # an unreachable storage must not fail requests: logged, let through
            log.warning("rate limit storage failed; request let through", exc_info=True)
            return
        raise _rate_limited(scope, item, reset_time)


#: The limits' units in Spanish (singular, plural).
_UNITS_ES = {
    "second": ("segundo", "segundos"),
    "minute": ("minuto", "minutos"),
    "hour": ("hora", "horas"),
    "day": ("día", "días"),
    "month": ("mes", "meses"),
    "year": ("año", "años"),
}


def _limit_words(item: RateLimitItem) -> tuple[str, str]:
    """``10 per 1 minute`` as people say it: "10 por minuto", "10 per minute"."""
    unit = item.GRANULARITY.name
    one, many = _UNITS_ES.get(unit, (unit, unit))
    if item.multiples == 1:
        return f"{item.amount} por {one}", f"{item.amount} per {unit}"
    return (
        f"{item.amount} cada {item.multiples} {many}",
        f"{item.amount} per {item.multiples} {unit}s",
    )


class RateLimited(Problem):
    """The ``rate-limited`` problem; under ``/oauth/`` answered as an OAuth error instead
    (:func:`_rate_limited_response`)."""


def _rate_limited(scope: str, item: RateLimitItem, reset_time: float) -> RateLimited:
    retry_after = max(1, math.ceil(reset_time - time.time()))
    spanish, english = _MESSAGES[scope]
    limit_es, limit_en = _limit_words(item)
    return RateLimited(
        "rate-limited",
        (
            f"{spanish} Límite: {limit_es}. Reintente en {retry_after} s.",
            f"{english} Limit: {limit_en}. Retry in {retry_after} s.",
        ),
        headers={"Retry-After": str(retry_after)},
        limit=str(item),
        retry_after=retry_after,
    )


def _limit_exceeded(error: RateLimitExceeded) -> Response:
    # Raised by Flask-Limiter before the request, for a limit registered above.
    breached = _state().limiter.current_limit
    scope = error.limit.scope if isinstance(error.limit.scope, str) else ""
    reset_time = breached.window.reset_time if breached is not None else time.time() + 1
    return _rate_limited_response(
        _rate_limited(scope if scope in _MESSAGES else AUTH_FAILURES, error.limit.limit, reset_time)
    )


def _rate_limited_response(refusal: RateLimited) -> Response:
    if request.path.startswith("/oauth/"):
        return oauth_refusal(refusal)
    return problem_response(refusal)


def oauth_refusal(refusal: RateLimited) -> Response:
    """A 429 at ``/oauth/*`` as the hub's other OAuth errors are (RFC 6749 §5.2, see
    ``exchange.oauth``): ``error`` (``temporarily_unavailable``, as for a database outage
    there: the client waits for ``Retry-After`` and tries again), ``error_description`` in
    ASCII English as the RFC requires, ``detail`` in the client's language, ``request_id``,
    and the limit that was reached (``limit``, ``retry_after``)."""
    detail = refusal.detail  # _rate_limited words every refusal in both languages
    spanish, english = detail if isinstance(detail, tuple) else (str(detail), str(detail))
    body = {**oauth_error_body("temporarily_unavailable", spanish, english), **refusal.extra}
    response = Response(
        json.dumps(body, ensure_ascii=False),
        status=refusal.status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
    response.headers["Content-Language"] = negotiated_language()
    response.headers.extend(refusal.headers)
    return response
