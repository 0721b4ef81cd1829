"""withhold entries: "withhold from" entries a consent officer records for a child.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "withhold_entry",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("target_agency_id", sa.String(100), nullable=True),
        sa.Column("target_person_id", sa.String(80), nullable=True),
        sa.Column("target_role", sa.String(40), nullable=True),
        sa.Column("actor_kind", sa.String(40), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by_agency", sa.String(100), nullable=True),
        sa.Column("recorded_by_person", sa.String(80), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_agency", sa.String(100), nullable=True),
        sa.Column("revoked_by_person", sa.String(80), nullable=True),
        sa.Column("document_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"], ["child.id"], name=op.f("fk_withhold_entry_child_id_child")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withhold_entry")),
    )
    op.create_index(op.f("ix_withhold_entry_child_id"), "withhold_entry", ["child_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_withhold_entry_child_id"), table_name="withhold_entry")
    op.drop_table("withhold_entry")
