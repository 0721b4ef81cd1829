"""access_request.record_ids for hubs whose 0009 came before it had that column.

Migration 0009 gained ``access_request.record_ids`` after it was first released; a hub that had
already run the first 0009 never got the column (Alembic goes by revision numbers), and every
access request route then failed on it. This adds the column where it is missing (an empty
list for the requests already there: they named no records) and does nothing elsewhere.
Released migrations are never edited again: a change to the schema is a new revision.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("access_request")}
    if "record_ids" in columns:
        return
    with op.batch_alter_table("access_request") as batch:
        batch.add_column(
            sa.Column("record_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    # The models give the value on insert, as for the hubs that had the column from the start.
    with op.batch_alter_table("access_request") as batch:
        batch.alter_column("record_ids", existing_type=sa.JSON(), server_default=None)


def downgrade() -> None:
    # The column belongs to 0009 on every hub: leave it.
    pass
