"""How outbox notifications reach agencies: a small transport contract and the signed webhook.

A notification is a Security Event Token (RFC 8417): a JWT signed by the hub's own signing key
(Ed25519, JWS ``EdDSA`` compact serialisation, ``typ: secevent+jwt``, ``kid`` = the key's
RFC 7638 thumbprint), pushed to the agency's webhook as in RFC 8935: ``POST`` with
``Content-Type: application/secevent+jwt``. It carries identifiers only (record id and version,
child id, share id and kind, purpose) — never case content: the recipient reads the record
through the API, where the access rules apply.

Outcomes: any 2xx means delivered; 408, 429, 5xx, timeouts and connection failures are
transient (retried with backoff); other statuses, including redirects (never followed: a
notification must not be carried to an address nobody registered), are permanent.

The hub signing key is its own key (not the audit log key): ``keys/hub-signing.key``
(PKCS#8 PEM, mode 0600) under the instance folder, created by ``puente init``, or its PEM text
in ``PUENTE_HUB_SIGNING_KEY``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask
from joserfc import jwt
from joserfc.jwk import OKPKey

from exchange.config import resolve_instance_file
from exchange.keys import write_private_key

if TYPE_CHECKING:
    from exchange.agencies import Agency
    from exchange.outbox import OutboxMessage

SET_MEDIA_TYPE = "application/secevent+jwt"
SET_TYPE = "secevent+jwt"
EVENT_BASE = "https://puente.mx/events/"


class DeliveryError(Exception):
    """A notification could not be delivered."""


class TransientDeliveryError(DeliveryError):
    """Worth trying again later (receiver down, overloaded, slow)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Trying again will not help (no webhook, receiver refuses the notification)."""


class DeliveryTransport(Protocol):
    """Carries one outbox message to one agency; returns when it was accepted, else raises
    :class:`TransientDeliveryError` or :class:`PermanentDeliveryError`."""

    def deliver(self, agency: Agency, message: OutboxMessage) -> None: ...


# --- the hub signing key -------------------------------------------------------------------


def signing_key_path(app: Flask) -> Path:
    return resolve_instance_file(
        Path(app.instance_path), app.config.get("HUB_SIGNING_KEY_FILE") or "keys/hub-signing.key"
    )


def ensure_hub_signing_key(app: Flask) -> Path | None:
    """Create the hub signing key file unless it (or the environment key) exists."""
    path = signing_key_path(app)
    if app.config.get("HUB_SIGNING_KEY") or path.exists():
        return None
    key = OKPKey.generate_key("Ed25519")
    write_private_key(path, key.as_pem(private=True).decode("ascii").strip())
    return path


def load_hub_signing_key(app: Flask) -> OKPKey:
    text = app.config.get("HUB_SIGNING_KEY")
    if not text:
        path = signing_key_path(app)
        if not path.exists():
            raise FileNotFoundError(
                f"no se encontró la clave de firma del hub / hub signing key {path} not found "
                "(run 'puente init')"
            )
        text = path.read_text(encoding="ascii")
    key = OKPKey.import_key(text.encode("ascii") if isinstance(text, str) else text)
    if not key.is_private or key.as_dict(private=False).get("crv") != "Ed25519":
        raise ValueError("the hub signing key must be an Ed25519 private key")
    return key


def hub_signing_public_jwk(app: Flask) -> dict[str, Any]:
    """The public half of the hub signing key, as a JWK with its thumbprint as ``kid``
    (what receivers pin to verify notifications)."""
    key = load_hub_signing_key(app)
    jwk = key.as_dict(private=False)
    return {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "kid": key.thumbprint()}


# --- the signed webhook --------------------------------------------------------------------


def security_event_token(
    key: OKPKey, *, issuer: str, audience: str, message: OutboxMessage, issued_at: int
) -> str:
    """The RFC 8417 SET for ``message``: ``jti`` is the message id, so a receiver that sees
    the same notification twice (a retry after a lost answer) can tell."""
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": issued_at,
        "jti": message.id,
        "events": {EVENT_BASE + message.kind: message.payload},
    }
    header = {"alg": "EdDSA", "typ": SET_TYPE, "kid": key.thumbprint()}
    return jwt.encode(header, claims, key, algorithms=["EdDSA"])


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx surfaces as an HTTPError, handled as permanent below


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: ignore it, our own backoff applies


class WebhookTransport:
    """POSTs a signed Security Event Token to the agency's ``webhook_url``."""

    def __init__(self, app: Flask, timeout: float | None = None) -> None:
        self.key = load_hub_signing_key(app)
        self.issuer = str(app.config["HUB_ID"])
        self.timeout = float(timeout or app.config.get("WEBHOOK_TIMEOUT_SECONDS") or 10)
        self.opener = urllib.request.build_opener(_NoRedirects)

    def deliver(self, agency: Agency, message: OutboxMessage) -> None:
        url = agency.webhook_url
        if not url or not url.lower().startswith(("https://", "http://")):
            raise PermanentDeliveryError(f"agency {agency.id} has no usable webhook")
        token = security_event_token(
            self.key,
            issuer=self.issuer,
            audience=agency.id,
            message=message,
            issued_at=int(time.time()),
        )
        request = urllib.request.Request(  # noqa: S310 - only http(s), checked above
            url,
            data=token.encode("ascii"),
            method="POST",
            headers={
                "Content-Type": SET_MEDIA_TYPE,
                "Accept": "application/json",
                "User-Agent": "puente-hub",
            },
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                response.read(64 * 1024)
        except urllib.error.HTTPError as error:
            status = error.code
            description = _error_description(error)
            if status in (408, 429) or status >= 500:
                raise TransientDeliveryError(
                    f"HTTP {status}{description}",
                    retry_after=_retry_after(error.headers.get("Retry-After")),
                ) from error
            raise PermanentDeliveryError(f"HTTP {status}{description}") from error
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TransientDeliveryError(f"{type(reason).__name__}: {reason}") from error


def _error_description(error: urllib.error.HTTPError) -> str:
    # RFC 8935 receivers answer errors as {"err": ..., "description": ...}; keep it short.
    try:
        body = json.loads(error.read(4096) or b"{}")
    except (ValueError, OSError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("err"), str):
        return f" ({body['err'][:100]})"
    return ""
