"""The client assertion ``puente import --key`` signs says nothing on stderr."""

from __future__ import annotations

import warnings

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey

from exchange.hub_client import Credentials

TOKEN_URL = "https://puente.example.org/oauth/token"


def test_signing_the_client_assertion_raises_no_eddsa_warning() -> None:
    key = OKPKey.generate_key("Ed25519")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # over pytest's own filter for this warning
        form, _headers = Credentials("mx.chp.dif", private_key=key).token_form(
            TOKEN_URL, "records:write"
        )
    assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        token = jwt.decode(form["client_assertion"], key, algorithms=["EdDSA"])
    assert token.header["alg"] == "EdDSA"
    assert token.claims["aud"] == TOKEN_URL


def test_the_silencing_ends_with_the_signature() -> None:
    key = OKPKey.generate_key("Ed25519")
    Credentials("mx.chp.dif", private_key=key).token_form(TOKEN_URL, "records:write")
    with pytest.warns(SecurityWarning, match="EdDSA is deprecated"):  # elsewhere, as before
        jwt.encode({"alg": "EdDSA"}, {"iss": "x"}, key, algorithms=["EdDSA"])
