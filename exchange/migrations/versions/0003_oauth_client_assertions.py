"""oauth client assertions: the ``jti`` of every accepted private_key_jwt assertion.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The primary key is the replay protection: two requests with the same assertion race to
    # insert the same row and exactly one wins, on SQLite and PostgreSQL alike.
    op.create_table(
        "oauth_used_assertion",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_oauth_used_assertion")),
    )
    op.create_index(
        op.f("ix_oauth_used_assertion_expires_at"),
        "oauth_used_assertion",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_oauth_used_assertion_expires_at"), table_name="oauth_used_assertion")
    op.drop_table("oauth_used_assertion")
