"""federation peers and witness state: pinned peer logs, and what this hub cosigned of each.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer",
        sa.Column("hub_id", sa.String(length=100), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("base_url", sa.String(length=300), nullable=True),
        sa.Column("log_vkey", sa.Text(), nullable=False),
        sa.Column("witness_vkey", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hub_id", name=op.f("pk_peer")),
        sa.UniqueConstraint("origin", name=op.f("uq_peer_origin")),
    )
    # Keyed by origin, not by peer, and kept when the peer is disabled: a witness never
    # forgets the size it vouched for.
    op.create_table(
        "witness_state",
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_witness_state")),
    )


def downgrade() -> None:
    op.drop_table("witness_state")
    op.drop_table("peer")
