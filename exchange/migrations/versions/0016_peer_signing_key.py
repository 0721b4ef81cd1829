"""peer signing key: the pinned key that signs a peer hub's federation envelopes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peer") as batch:
        batch.add_column(sa.Column("signing_jwk", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("peer") as batch:
        batch.drop_column("signing_jwk")
