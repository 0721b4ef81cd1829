"""The API keeps to its own OpenAPI description: property-based requests (schemathesis), valid
and invalid, to every operation of ``/openapi.json``.

Every response is checked: never a 5xx; a status, content type, headers and body the
description documents for the operation; invalid requests refused (4xx); every error an
``application/problem+json`` problem whose ``status`` is the response's. The requests carry a
token with every scope, so they get past authentication into the handlers; some valid ones
name a child, record or consent that exists.

The checks a finding not fixed yet fails are skipped for the requests it concerns only
(``fuzz_support.KNOWN``). ``positive_data_acceptance`` is off: the description summarises what
the hub validates against its JSON Schemas and its registry (id patterns, case records,
registered agencies, a signature's validity), so a documented 400 for a request the summary
allows is within the contract.

The description is read over WSGI from the app; the requests go to the app, no network.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from fuzz_support import FuzzHub, known_checks, make_fuzz_hub, problem_json
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckFunction, checks

from exchange import create_app
from tests.conftest import BACKENDS, backend_database

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",
            "deterministic": True,
            # The hub ignores query parameters it does not know, as HTTP APIs do, and the
            # description does not forbid them: sending some proves nothing.
            "allow-extra-parameters": False,
            # Every request carries a token with every scope (``FuzzHub.headers_for``).
            "with-security-parameters": False,
        },
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            # 413 refuses an invalid (too long) body as well as 400 does.
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429]
            },
        },
        # Examples, boundary values (coverage) and random ones (fuzzing), each operation alone.
        "phases": {"stateful": {"enabled": False}},
    }
)

# Bodies the hub reads as text: a compact JWS (federation envelopes) and NDJSON (bulk pushes).
schemathesis.serializer.alias(["application/jose", "application/x-ndjson"], "text/plain")

# Read from a bare hub (no keys, no tables: /openapi.json needs neither) when the module is
# collected; ``schemathesis.pytest.from_fixture`` would read it from the seeded hub, but it does
# not work with pytest 9.2 (it sets ``Function._nodeid``, which pytest no longer has).
schema = schemathesis.openapi.from_wsgi(
    "/openapi.json",
    create_app({"TESTING": True, "INSTANCE_PATH": "/nonexistent", "DATABASE_URL": "sqlite://"}),
    config=CONFIG,
)


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzHub]:
    """One hub per backend for every operation (building one takes a second): what the
    fuzzer writes piles up, as on a hub in use."""
    folder = tmp_path_factory.mktemp("fuzz")
    with backend_database(request.param, folder) as url:
        with pytest.MonkeyPatch.context() as monkeypatch:
            # As tests/conftest.py does for each test: a developer's settings stay out.
            for name in list(os.environ):
                if name.startswith("PUENTE_") and not name.startswith("PUENTE_TEST_"):
                    monkeypatch.delenv(name)
            hub = make_fuzz_hub(folder, url)
        yield hub
        hub.app.extensions["puente.db"].engine.dispose()


def _check(name: str) -> CheckFunction:
    return problem_json if name == "problem_json" else getattr(checks, name)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_every_operation_keeps_to_its_description(case: Case, fuzz_hub: FuzzHub) -> None:
    fuzz_hub.aim(case)
    case.call_and_validate(
        app=fuzz_hub.app,
        headers=fuzz_hub.headers_for(case),
        additional_checks=[problem_json],
        excluded_checks=[_check(name) for name in known_checks(case)],
    )
