"""The Alembic migrations build exactly the tables the models describe, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import inspect, select, text

from exchange import create_app, db
from exchange.db import Base
from exchange.peers import Peer


def test_models_and_migrations_agree(app: Flask) -> None:
    with db.database(app).engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], differences


def test_database_is_at_head(app: Flask) -> None:
    assert db.current_revision(app) == db.head_revision()


def test_a_hub_whose_0009_lacked_record_ids_gets_the_column(
    tmp_path: Path, database_url: str
) -> None:
    """0009 gained ``access_request.record_ids`` after it was first released; 0018 adds it to a
    hub that ran the first 0009, keeping its requests (which named no records)."""
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": tmp_path / "instance", "DATABASE_URL": database_url}
    )
    try:
        db.upgrade(app, "0017")
        engine = db.database(app).engine
        with engine.begin() as connection:
            context = MigrationContext.configure(connection)
            with Operations.context(context) as operations:
                with operations.batch_alter_table("access_request") as batch:
                    batch.drop_column("record_ids")
        db.upgrade(app)
        with engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("access_request")}
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        assert "record_ids" in columns
        db.upgrade(app)  # and again: nothing to do
    finally:
        db.database(app).engine.dispose()


def test_pinned_peers_get_the_agency_prefixes_of_their_hub_id(
    tmp_path: Path, database_url: str
) -> None:
    """0019: each peer speaks for its own jurisdiction's agencies (``mx.fed.puente`` →
    ``mx.fed.``); one whose prefix a peer pinned before it has, or whose id has no two labels,
    speaks for none until an administrator says which."""
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": tmp_path / "instance", "DATABASE_URL": database_url}
    )
    try:
        db.upgrade(app, "0018")
        engine = db.database(app).engine
        insert = text(
            "INSERT INTO peer (hub_id, origin, log_vkey, active, added_at) "
            "VALUES (:hub_id, :origin, 'vkey', :active, :added_at)"
        )
        with engine.begin() as connection:
            for hub_id, day in (
                ("mx.fed.puente", 1),
                ("mx.chp.puente", 2),
                ("mx.fed.respaldo", 3),
                ("puente", 4),
            ):
                connection.execute(
                    insert,
                    {
                        "hub_id": hub_id,
                        "origin": hub_id + "/audit",
                        "active": True,
                        "added_at": datetime(2026, 11, day, tzinfo=UTC),
                    },
                )
        db.upgrade(app)
        with engine.connect() as connection:
            rows = connection.execute(
                select(Peer.hub_id, Peer.agency_prefixes).order_by(Peer.hub_id)
            ).all()
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        assert dict(rows) == {
            "mx.chp.puente": ["mx.chp."],
            "mx.fed.puente": ["mx.fed."],
            "mx.fed.respaldo": [],
            "puente": [],
        }
    finally:
        db.database(app).engine.dispose()
