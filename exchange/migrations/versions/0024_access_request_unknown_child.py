"""access request unknown child: access_request.child_id stops referring to child.id.

``POST /v1/access-requests`` answered ``404`` for a child id the hub never issued and ``201``
for one it did, so anyone holding ``access:request`` could confirm that a child id is real. A
request about an unknown id is now kept and answered like one about a child the requester has
no basis for (docs/consent.md §8.5): the column can no longer be a foreign key to ``child.id``.
Its index stays. It is widened to 80 characters, the longest child id ``access-request/1``
takes, so that every id the route accepts can be kept (PostgreSQL would refuse a longer one).

On SQLite the table is rebuilt (batch mode). The hub enforces foreign keys there, and dropping
the old table with grants and justifications still referring to its rows is refused — inside
the migration's transaction, where the pragma cannot be turned off. Those rows are set aside in
temporary tables for the rebuild and put back after it, in the same transaction.

The downgrade puts the foreign key back; it fails while a request names an unknown child.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

#: The tables whose rows refer to access requests.
DEPENDENTS = ("access_request_justification", "access_grant")
#: The foreign key as 0009 named it (and as batch mode names one SQLite reflects unnamed).
CHILD_FK = "fk_access_request_child_id_child"
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    found = [
        key
        for key in sa.inspect(op.get_bind()).get_foreign_keys("access_request")
        if key["constrained_columns"] == ["child_id"] and key["referred_table"] == "child"
    ]
    with _dependents_aside():
        with op.batch_alter_table("access_request", naming_convention=NAMING) as batch:
            for key in found:
                batch.drop_constraint(key["name"] or CHILD_FK, type_="foreignkey")
            batch.alter_column(
                "child_id",
                existing_type=sa.String(40),
                type_=sa.String(80),
                existing_nullable=False,
            )


def downgrade() -> None:
    with _dependents_aside():
        with op.batch_alter_table("access_request") as batch:
            batch.alter_column(
                "child_id",
                existing_type=sa.String(80),
                type_=sa.String(40),
                existing_nullable=False,
            )
            batch.create_foreign_key(CHILD_FK, "child", ["child_id"], ["id"])


@contextmanager
def _dependents_aside() -> Iterator[None]:
    """On SQLite, the rows referring to access requests out of the way while the table is
    rebuilt; elsewhere the table is altered in place and nothing moves."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    # The table names are this module's constants, never input.
    for table in DEPENDENTS:
        op.execute(f"CREATE TEMPORARY TABLE _0024_{table} AS SELECT * FROM {table}")  # noqa: S608
        op.execute(f"DELETE FROM {table}")  # noqa: S608
    yield
    for table in DEPENDENTS:
        op.execute(f"INSERT INTO {table} SELECT * FROM _0024_{table}")  # noqa: S608
        op.execute(f"DROP TABLE _0024_{table}")
