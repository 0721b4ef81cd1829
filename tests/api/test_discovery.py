"""``/.well-known/puente-hub`` publishes the keys an oversight body verifies the log with."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from audit import Verifier
from exchange.keys import hub_keys


def test_hub_document_names_the_hub_and_its_keys(app: Flask, client: FlaskClient) -> None:
    response = client.get("/.well-known/puente-hub")
    assert response.status_code == 200
    body = response.get_json()
    assert body["hub_id"] == app.config["HUB_ID"]
    assert body["audit_origin"] == "mx.local.puente/audit"
    keys = hub_keys(app)
    assert keys.log is not None
    assert body["log_vkey"] == keys.log.vkey
    verifier = Verifier.from_vkey(body["log_vkey"])  # a valid C2SP vkey string
    assert verifier.name == "mx.local.puente/audit"
    assert body["signing_jwk"]["crv"] == "Ed25519"
    assert body["endpoints"]["token"].endswith("/oauth/token")
    assert body["endpoints"]["witness"].endswith("/v1/witness/add-checkpoint")
    assert "d" not in body["signing_jwk"]  # never the private half
