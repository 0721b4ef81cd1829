"""record addresses: the local id under which the recipient of a transfer pushes the record.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_address",
        sa.Column("agency_id", sa.String(100), nullable=False),
        sa.Column("local_id", sa.String(200), nullable=False),
        sa.Column("record_id", sa.String(40), nullable=False),
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_record_address_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["record.id"], name=op.f("fk_record_address_record_id_record")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["record_share.id"],
            name=op.f("fk_record_address_transfer_id_record_share"),
        ),
        sa.PrimaryKeyConstraint("agency_id", "local_id", name=op.f("pk_record_address")),
    )


def downgrade() -> None:
    op.drop_table("record_address")
