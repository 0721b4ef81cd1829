"""checkpoint cosignatures: peer witnesses' cosignatures on this hub's checkpoints, and the size
each peer's witness last cosigned.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoint_cosignature",
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("peer_hub_id", sa.String(length=100), nullable=False),
        sa.Column("key_name", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_size"],
            ["audit_checkpoint.size"],
            name=op.f("fk_checkpoint_cosignature_checkpoint_size_audit_checkpoint"),
        ),
        sa.ForeignKeyConstraint(
            ["peer_hub_id"],
            ["peer.hub_id"],
            name=op.f("fk_checkpoint_cosignature_peer_hub_id_peer"),
        ),
        sa.PrimaryKeyConstraint(
            "checkpoint_size", "peer_hub_id", name=op.f("pk_checkpoint_cosignature")
        ),
    )
    op.create_table(
        "peer_cosigning",
        sa.Column("peer_hub_id", sa.String(length=100), nullable=False),
        sa.Column("cosigned_size", sa.BigInteger(), nullable=False),
        sa.Column("conflict_size", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_hub_id"], ["peer.hub_id"], name=op.f("fk_peer_cosigning_peer_hub_id_peer")
        ),
        sa.PrimaryKeyConstraint("peer_hub_id", name=op.f("pk_peer_cosigning")),
    )


def downgrade() -> None:
    op.drop_table("peer_cosigning")
    op.drop_table("checkpoint_cosignature")
