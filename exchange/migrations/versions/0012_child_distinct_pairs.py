"""child distinct pairs: two children a person found to be different people.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "child_distinct_pair",
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("other_child_id", sa.String(40), nullable=False),
        sa.Column("decided_by", sa.String(80), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"], ["child.id"], name=op.f("fk_child_distinct_pair_child_id_child")
        ),
        sa.ForeignKeyConstraint(
            ["other_child_id"],
            ["child.id"],
            name=op.f("fk_child_distinct_pair_other_child_id_child"),
        ),
        sa.PrimaryKeyConstraint("child_id", "other_child_id", name=op.f("pk_child_distinct_pair")),
    )
    op.create_index(
        op.f("ix_child_distinct_pair_other_child_id"), "child_distinct_pair", ["other_child_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_child_distinct_pair_other_child_id"), table_name="child_distinct_pair")
    op.drop_table("child_distinct_pair")
