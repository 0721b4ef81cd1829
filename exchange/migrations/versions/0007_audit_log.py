"""audit log: entries, the integrator's state row, tlog tiles and signed checkpoints.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Oversight filters; the integrator's queue (idx IS NULL) uses the unique index on idx.
INDEXED = ("recorded_at", "actor_agency", "actor_person", "child_id")


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=True),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("actor_agency", sa.String(length=120), nullable=True),
        sa.Column("actor_person", sa.String(length=80), nullable=True),
        sa.Column("child_id", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
        sa.UniqueConstraint("idx", name=op.f("uq_audit_entry_idx")),
    )
    for column in INDEXED:
        op.create_index(op.f(f"ix_audit_entry_{column}"), "audit_entry", [column])
    op.create_table(
        "audit_log_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("compact_hashes", sa.LargeBinary(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log_state")),
    )
    # The integrator's state row exists from the start, so concurrent integrators only ever
    # lock it, never race to create it. The empty tree's root is SHA-256 of nothing.
    state = sa.table(
        "audit_log_state",
        sa.column("id", sa.Integer()),
        sa.column("size", sa.BigInteger()),
        sa.column("compact_hashes", sa.LargeBinary()),
        sa.column("root", sa.LargeBinary()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        state,
        [
            {
                "id": 1,
                "size": 0,
                "compact_hashes": b"",
                "root": hashlib.sha256(b"").digest(),
                "updated_at": datetime.now(UTC),
            }
        ],
    )
    op.create_table(
        "audit_tile",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("tile_index", sa.BigInteger(), nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "tile_index", name=op.f("pk_audit_tile")),
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoint")),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_tile")
    op.drop_table("audit_log_state")
    for column in INDEXED:
        op.drop_index(op.f(f"ix_audit_entry_{column}"), table_name="audit_entry")
    op.drop_table("audit_entry")
