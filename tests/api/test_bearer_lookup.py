"""The bearer-token lookup of every API request (exchange.auth.find_bearer_token), which runs
as plain SQL on the session's connection: what it keeps from the ORM query it replaced."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from exchange import db
from exchange.auth import find_bearer_token
from exchange.hot_sql import HotSQL
from tests.api.consent_support import CLINIC, legal_representative
from tests.api.records_support import add_agency, execute


def _found(app: Flask, secret: str) -> bool:
    with app.app_context():
        return find_bearer_token(db.session(), secret) is not None


@pytest.mark.parametrize("table", ["agency", "person"])
def test_only_an_active_flag_of_one_is_active_on_sqlite(app: Flask, table: str) -> None:
    # SQLite's boolean column takes any number (SQLAlchemy adds no CHECK constraint); the ORM
    # query compared it with 1, so a row holding 2 — written by hand or by other tooling — was
    # not active. The plain SQL must not take it as a truth value.
    if not db.database(app).is_sqlite:
        pytest.skip("PostgreSQL's boolean column holds only true and false")
    add_agency(app, CLINIC, scopes=("access:request",), kind="civil_society")
    lawyer = legal_representative(app, "abogada-1")
    assert _found(app, lawyer.token)
    execute(app, text(f"UPDATE {table} SET active = 2"))
    assert not _found(app, lawyer.token)
    execute(app, text(f"UPDATE {table} SET active = 1"))
    assert _found(app, lawyer.token)


def test_a_missing_table_is_explained_with_the_databases_revision(app: Flask) -> None:
    # Errors of the plain SQL keep their engine, as the engine's own do, so that a hub started
    # on a database behind the code says "run 'puente db upgrade'" with the revision it is at.
    from exchange.db import unavailable_reason

    execute(app, text("UPDATE alembic_version SET version_num = '0007'"))
    with app.app_context():
        session = db.session()
        with pytest.raises(DBAPIError) as raised:
            HotSQL(session).first("SELECT id FROM no_such_table_of_puente")
        session.rollback()
        reason = unavailable_reason(raised.value)
    assert reason is not None
    assert "0007" in reason[1] and "puente db upgrade" in reason[1], reason
