"""A small client of a Puente hub's API, as an agency system uses it: what ``puente import``
and ``puente export`` need when they run against a hub over HTTP.

It gets OAuth 2.0 client-credentials tokens (``client_secret_basic``, or ``private_key_jwt``
signed with the agency's Ed25519 key, as ``docs/agencies.md`` shows), renews them before they
run out (and once more on a 401), pushes NDJSON batches to ``POST /v1/records/bulk`` and single
records with an ``Idempotency-Key``, and reads a child's records for a purpose.

Only the standard library speaks HTTP here. The exchange of bytes is one function,
:data:`Send`, so tests can put the hub's Flask test client in its place.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey

from schemas.errors import BilingualError

NDJSON = "application/x-ndjson"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: A token is renewed when it has less than this left.
RENEW_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


#: ``send(method, url, body, headers) -> Answer``: one HTTP exchange, never raising for a status.
Send = Callable[[str, str, bytes | None, dict[str, str]], Answer]


class HubError(BilingualError):
    """The hub could not be reached or refused the client; Spanish and English."""

    def __init__(self, message_es: str, message_en: str, *, transient: bool = False) -> None:
        super().__init__(message_es, message_en)
        self.transient = transient


def urllib_send(timeout: float = 300) -> Send:
    """:data:`Send` over ``urllib`` (no redirects are followed for POSTs by urllib)."""

    def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise HubError(
                f"no se pudo conectar con el nodo {url}: {reason}",
                f"could not reach the hub at {url}: {reason}",
                transient=True,
            ) from error

    return send


def default_send() -> Send:
    """The :data:`Send` the command line uses (tests put the hub's test client here)."""
    return urllib_send()


@dataclass(frozen=True)
class Credentials:
    """How the agency authenticates: a client secret, or its private key (``private_key_jwt``)."""

    agency_id: str
    client_secret: str | None = None
    private_key: OKPKey | None = None
    #: The hub's token endpoint as its operator pinned it (``--audience``): the ``aud`` of
    #: ``private_key_jwt`` assertions when the hub's address as reached is another origin.
    audience: str | None = None

    def token_form(self, token_url: str, scope: str) -> tuple[dict[str, str], dict[str, str]]:
        """The token request's form fields and headers."""
        form = {"grant_type": "client_credentials", "scope": scope}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.private_key is not None:
            now = int(time.time())
            form["client_assertion_type"] = ASSERTION_TYPE
            with warnings.catch_warnings():
                # RFC 9864 deprecates the name "EdDSA" and joserfc warns on every use; the
                # hub's token endpoint (API.md) asks for it, so the warning is noise to the
                # person running ``puente import`` (as in exchange.signatures).
                warnings.filterwarnings(
                    "ignore", message="EdDSA is deprecated", category=SecurityWarning
                )
                form["client_assertion"] = jwt.encode(
                    {"alg": "EdDSA", "kid": self.private_key.thumbprint()},
                    {
                        "iss": self.agency_id,
                        "sub": self.agency_id,
                        "aud": token_url,
                        "iat": now,
                        "exp": now + 60,
                        "jti": uuid.uuid4().hex,
                    },
                    self.private_key,
                    algorithms=["EdDSA"],
                )
        elif self.client_secret is not None:
            pair = f"{self.agency_id}:{self.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return form, headers


class HubClient:
    """An agency's session with one hub."""

    def __init__(
        self,
        hub_url: str,
        credentials: Credentials,
        *,
        scope: str,
        send: Send | None = None,
        lang: str = "en",
    ) -> None:
        self.base = hub_url.rstrip("/")
        self.credentials = credentials
        self.scope = scope
        self.send = send or urllib_send()
        self.lang = lang
        self._token: str | None = None
        self._renew_at = 0.0
        self._audience: str | None = None

    # -- tokens ------------------------------------------------------------------------------

    def token(self) -> str:
        if self._token is None or time.monotonic() >= self._renew_at:
            self._token = self._new_token()
        return self._token

    def _assertion_audience(self, url: str) -> str:
        """What a ``private_key_jwt`` assertion's ``aud`` must be: the token endpoint as the
        hub names it (``/.well-known/puente-hub``), which may differ from ``url`` in its path
        prefix; ``url`` when the hub does not say.

        The hub's word is taken only on the origin (scheme, host, port) this client was
        pointed at, or when it is the audience the operator pinned. Otherwise an address that
        is not the hub (a mistyped or phished ``--hub``) could name the real hub's token
        endpoint, receive an assertion made for it, and replay it there for a token as this
        agency ("audience injection")."""
        if self._audience is None:
            pinned = self.credentials.audience
            answer = self.send("GET", self.base + "/.well-known/puente-hub", None, {})
            document = _json_or_none(answer.body) if answer.status == 200 else None
            endpoints = document.get("endpoints") if isinstance(document, dict) else None
            named = endpoints.get("token") if isinstance(endpoints, dict) else None
            if not isinstance(named, str) or not named:
                named = pinned or url
            if named != pinned and _origin(named) != _origin(url):
                raise HubError(
                    f"el nodo en {self.base} dice que su punto de tokens está en {named}, "
                    "otra dirección; una aserción hecha para esa dirección y enviada a esta "
                    "podría usarse allí en nombre de la institución. Si es el mismo nodo "
                    "alcanzado por otra dirección (un proxy, una dirección interna), indique "
                    f"--audience {named}; si no, revise --hub",
                    f"the hub at {self.base} says its token endpoint is at {named}, another "
                    "address; an assertion made for that address and sent to this one could "
                    "be used there as the agency. If it is the same hub reached at another "
                    f"address (a proxy, an internal address), give --audience {named}; "
                    "otherwise check --hub",
                )
            self._audience = named
        return self._audience

    def _new_token(self) -> str:
        url = self.base + "/oauth/token"
        audience = self._assertion_audience(url) if self.credentials.private_key else url
        form, headers = self.credentials.token_form(audience, self.scope)
        answer = self.send("POST", url, urllib.parse.urlencode(form).encode(), headers)
        body = _json_or_none(answer.body)
        if answer.status != 200 or not isinstance(body, dict) or "access_token" not in body:
            reason_es, reason_en = _token_refusal(body, answer.status)
            raise HubError(
                f"el nodo no dio un token a {self.credentials.agency_id}: {reason_es}",
                f"the hub gave {self.credentials.agency_id} no token: {reason_en}",
                transient=answer.status >= 500,
            )
        seconds = float(body.get("expires_in") or 300)
        self._renew_at = time.monotonic() + max(1.0, seconds - RENEW_MARGIN_SECONDS)
        return str(body["access_token"])

    def _call(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """One API call with a bearer token; a 401 gets one new token and one more try."""
        for attempt in (1, 2):
            answer = self.send(
                method,
                self.base + path,
                body,
                {
                    **headers,
                    "Authorization": f"Bearer {self.token()}",
                    "Accept-Language": self.lang,
                    "User-Agent": "puente-import",
                },
            )
            if answer.status != 401 or attempt == 2:
                return answer
            self._token = None
        raise AssertionError("unreachable")

    # -- records -----------------------------------------------------------------------------

    def push_bulk(self, ndjson: bytes) -> list[dict[str, Any]]:
        """``POST /v1/records/bulk``: one result per line, in order."""
        answer = self._call("POST", "/v1/records/bulk", ndjson, {"Content-Type": NDJSON})
        self._raise_for(answer, "/v1/records/bulk")
        return [json.loads(line) for line in answer.body.splitlines() if line.strip()]

    def push_one(
        self, canonical: bytes, idempotency_key: str, signature: str | None = None
    ) -> tuple[int, Any, bool]:
        """``POST /v1/records`` with an ``Idempotency-Key``: the status, the answer (a problem
        document for a refused record) and whether the hub replayed an earlier answer."""
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        if signature is not None:
            headers["Puente-Signature"] = signature
        answer = self._call("POST", "/v1/records", canonical, headers)
        if answer.status in (401, 403, 408, 429) or answer.status >= 500:
            self._raise_for(answer, "/v1/records")
        replayed = _header(answer.headers, "Idempotent-Replayed") == "true"
        return answer.status, _json_or_none(answer.body), replayed

    def child_records(self, child_id: str, purpose: str) -> list[dict[str, Any]]:
        """``GET /v1/children/{child_id}/records?purpose=…``: what the hub lets the agency read."""
        path = (
            f"/v1/children/{urllib.parse.quote(child_id, safe='')}/records?"
            + urllib.parse.urlencode({"purpose": purpose})
        )
        answer = self._call("GET", path, None, {"Accept": "application/json"})
        self._raise_for(answer, path)
        records = answer.json().get("records", [])
        return [each for each in records if isinstance(each, dict)]

    def _raise_for(self, answer: Answer, path: str) -> None:
        if 200 <= answer.status < 300:
            return
        problem = _json_or_none(answer.body)
        detail = problem.get("detail") if isinstance(problem, dict) else None
        reason = f"HTTP {answer.status}" + (f": {detail}" if detail else "")
        raise HubError(
            f"el nodo rechazó {path}: {reason}",
            f"the hub refused {path}: {reason}",
            transient=answer.status in (408, 429) or answer.status >= 500,
        )


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _origin(url: str) -> tuple[str, str]:
    """Scheme and network location (host and port), lowercased, of ``url``."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _token_refusal(body: Any, status: int) -> tuple[str, str]:
    """Why the hub gave no token, in Spanish and English: the hub's own words for each OAuth
    error (the answer's ``detail`` is in one language only, its ``error_description`` is the
    RFC's ASCII text)."""
    from exchange.oauth import OAUTH_ERRORS

    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return f"respuesta HTTP {status}", f"HTTP answer {status}"
    error = body["error"]
    if error in OAUTH_ERRORS:
        return OAUTH_ERRORS[error]
    described = str(body.get("error_description") or error)
    return described, described
