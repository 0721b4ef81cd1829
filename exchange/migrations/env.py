"""Alembic environment: runs on the connection the hub hands over (see ``exchange.db.upgrade``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from exchange import models  # noqa: F401  (registers every table on Base.metadata)
from exchange.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as fresh:
            _run(fresh)
        return
    _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
