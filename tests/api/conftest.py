"""Fixtures the API tests share: the state DIF that pushes a child's record, the record, a
child's lawyer and a consent officer of the Procuraduría (tests/api/consent_support.py says
who they are). A module that needs someone else defines its own fixture of the same name."""

from __future__ import annotations

from typing import Any

import pytest
from consent_support import (
    CLINIC,
    OWNER,
    PersonClient,
    consent_officer,
    legal_representative,
    procuraduria,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency


@pytest.fixture
def owner(app: Flask) -> AgencyClient:
    return add_agency(app, OWNER)


@pytest.fixture
def pushed(client: FlaskClient, owner: AgencyClient) -> dict[str, Any]:
    return push_child(client, owner)


@pytest.fixture
def lawyer(app: Flask) -> PersonClient:
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    return legal_representative(app, "lic-ana")


@pytest.fixture
def officer(app: Flask) -> PersonClient:
    procuraduria(app)
    return consent_officer(app, "co-chp-004", "mx.chp.procuraduria")
