"""The Alembic migrations build exactly the tables the models describe, on every backend."""

from __future__ import annotations

from flask import Flask

from exchange import db
from exchange.db import Base


def test_models_and_migrations_agree(app: Flask) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with db.database(app).engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], differences


def test_database_is_at_head(app: Flask) -> None:
    assert db.current_revision(app) == db.head_revision()
