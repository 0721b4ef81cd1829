"""``puente import --key`` / ``export --key`` sign their ``private_key_jwt`` assertion for the
token endpoint the hub names, but only on the address the operator pointed them at (or the one
they pinned with ``--audience``): an address that is not the hub must not get an assertion made
for the real hub, which it could replay there for a token as the agency."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey

from exchange.hub_client import Answer, Credentials, HubClient, HubError

REAL_TOKEN_URL = "https://puente.example.org/oauth/token"
KEY = OKPKey.generate_key("Ed25519")


class FakeServer:
    """What the address ``--hub`` names answers: a hub document naming ``token_url``, and a
    token to any assertion (whose ``aud`` is kept)."""

    def __init__(self, token_url: str | None) -> None:
        self.token_url = token_url
        self.audiences: list[str] = []

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> Answer:
        if url.endswith("/.well-known/puente-hub"):
            document: dict[str, Any] = {"hub_id": "mx.test.puente"}
            if self.token_url is not None:
                document["endpoints"] = {"token": self.token_url}
            return Answer(200, {}, json.dumps(document).encode())
        assert method == "POST" and url.endswith("/oauth/token") and body is not None
        form = dict(pair.split("=", 1) for pair in body.decode().split("&"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            claims = jwt.decode(form["client_assertion"], KEY, algorithms=["EdDSA"]).claims
        self.audiences.append(claims["aud"])
        return Answer(200, {}, b'{"access_token": "t", "expires_in": 900}')


def _client(hub_url: str, server: FakeServer, audience: str | None = None) -> HubClient:
    credentials = Credentials("mx.chp.dif", private_key=KEY, audience=audience)
    return HubClient(hub_url, credentials, scope="records:write", send=server)


def test_an_address_naming_another_hubs_token_endpoint_gets_no_assertion() -> None:
    rogue = FakeServer(REAL_TOKEN_URL)
    with pytest.raises(HubError) as refused:
        _client("http://127.0.0.1:8345", rogue).token()
    assert rogue.audiences == []  # nothing signed was sent
    assert "--audience https://puente.example.org/oauth/token" in refused.value.message("en")
    assert "otra dirección" in refused.value.message("es")


def test_the_hubs_own_token_endpoint_on_the_address_reached_is_the_audience() -> None:
    hub = FakeServer("https://Puente.example.org/puente/oauth/token")  # a path prefix
    assert _client("https://puente.example.org/puente", hub).token() == "t"
    assert hub.audiences == ["https://Puente.example.org/puente/oauth/token"]


def test_a_pinned_audience_lets_a_hub_be_reached_at_another_address() -> None:
    hub = FakeServer(REAL_TOKEN_URL)
    assert _client("http://10.0.0.5:8000", hub, audience=REAL_TOKEN_URL).token() == "t"
    assert hub.audiences == [REAL_TOKEN_URL]
    # A pin names one hub: another token endpoint named there is still refused.
    with pytest.raises(HubError):
        _client(
            "http://10.0.0.5:8000", FakeServer("https://other.example/oauth/token"), REAL_TOKEN_URL
        ).token()


def test_a_hub_that_names_no_endpoint_gets_the_address_reached_or_the_pin() -> None:
    hub = FakeServer(None)
    _client("http://127.0.0.1:8000", hub).token()
    _client("http://10.0.0.5:8000", hub, audience=REAL_TOKEN_URL).token()
    assert hub.audiences == ["http://127.0.0.1:8000/oauth/token", REAL_TOKEN_URL]
