"""Fixtures shared by every suite: a hub on SQLite and, when configured, on PostgreSQL.

``PUENTE_TEST_DATABASE_URL`` names a PostgreSQL database; each test gets a schema of its own in
it (dropped afterwards), so tests never see each other's rows. Under ``CI=true`` a PostgreSQL run
that cannot happen is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from exchange import create_app

REPO = Path(__file__).resolve().parents[1]
#: The shared test vectors (RFC 6962 proofs, C2SP signed notes): ``../shared/testdata`` beside
#: the checkout, as CI has it, or wherever ``PUENTE_TEST_SHARED_DATA`` says.
SHARED_TESTDATA = Path(
    os.environ.get("PUENTE_TEST_SHARED_DATA") or REPO.parent / "shared" / "testdata"
)
POSTGRES_URL = os.environ.get("PUENTE_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"


def shared_testdata(name: str) -> Path:
    """A folder of the shared test vectors, for a test module to load when it is imported.
    Missing, the module's tests are skipped with a message saying where to put them — except
    under ``CI=true``, where every vector must run."""
    folder = SHARED_TESTDATA / name
    if not folder.is_dir():
        message = (
            f"the shared test vectors are not at {folder}: put the shared folder beside the "
            "checkout (../shared/testdata) or set PUENTE_TEST_SHARED_DATA"
        )
        if IN_CI:
            raise RuntimeError(message)
        pytest.skip(message, allow_module_level=True)
    return folder


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _clean_puente_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own PUENTE_* settings must not leak into tests.
    for name in list(os.environ):
        if name.startswith("PUENTE_") and not name.startswith("PUENTE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def _postgres_or_skip() -> str:
    if not POSTGRES_URL:
        message = "PUENTE_TEST_DATABASE_URL is not set"
        if IN_CI:
            pytest.fail(f"{message}: CI must run the PostgreSQL suite")
        pytest.skip(message)
    return POSTGRES_URL


@contextmanager
def backend_database(backend: str, folder: Path) -> Iterator[str]:
    """An empty database on ``backend``: a SQLite file in ``folder``, or a PostgreSQL schema of
    its own (dropped afterwards), so tests never see each other's rows."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'puente.db'}"
        return
    base = _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # noqa: BLE001
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL at {base} is not usable: {error}")
        pytest.skip(f"PostgreSQL at {base} is not usable: {error}")
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    with backend_database(request.param, tmp_path) as url:
        yield url


def make_hub(tmp_path: Path, database_url: str, **config: object) -> Flask:
    """A hub with keys and a migrated database, as ``puente init`` leaves it."""
    from exchange.cli.hub import initialise

    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": tmp_path / "instance",
            "DATABASE_URL": database_url,
            # Refused reads wait for nothing here; tests/api/test_records_read.py tests the floor.
            "READ_REFUSAL_FLOOR": 0,
            **config,
        }
    )
    initialise(app)
    return app


@pytest.fixture
def hub_factory() -> Callable[..., Flask]:
    """``make_hub`` for tests that need a hub with settings of their own."""
    return make_hub


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    hub = make_hub(tmp_path, database_url)
    yield hub
    hub.extensions["puente.db"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
