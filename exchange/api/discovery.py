"""``/.well-known/puente-hub``: who this hub is and how to check what it signs.

Peers and oversight bodies pin these keys out of band; this document only says which keys the
hub claims, so a mismatch with the pinned ones is noticed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from exchange.keys import audit_origin, hub_keys
from exchange.transports import hub_signing_public_jwk

bp = Blueprint("discovery", __name__)


@bp.get("/.well-known/puente-hub")
def hub_document() -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    keys = hub_keys(app)
    base = app.config["PUBLIC_URL"].rstrip("/")
    try:
        signing_jwk: dict[str, Any] | None = hub_signing_public_jwk(app)
    except (OSError, ValueError):  # no signing key yet: 'puente init' makes one
        signing_jwk = None
    response = jsonify(
        hub_id=app.config["HUB_ID"],
        name=app.config["HUB_NAME"],
        origin=base,
        audit_origin=audit_origin(app),
        log_vkey=keys.log.vkey if keys.log else None,
        witness_vkey=keys.witness.vkey if keys.witness else None,
        signing_jwk=signing_jwk,
        endpoints={
            "token": f"{base}/oauth/token",
            "introspection": f"{base}/oauth/introspect",
            "revocation": f"{base}/oauth/revoke",
            "records": f"{base}/v1/records",
            "checkpoint": f"{base}/v1/audit/checkpoint",
            # c2sp.org/tlog-witness: peers send their checkpoints here to be cosigned.
            "witness": f"{base}/v1/witness/add-checkpoint",
            # Signed envelopes from pinned peers (exchange.federation).
            "federation": f"{base}/v1/federation/envelopes",
            "openapi": f"{base}/openapi.json",
        },
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
