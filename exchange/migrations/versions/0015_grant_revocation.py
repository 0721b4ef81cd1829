"""grant revocation: who revoked an access grant, and why.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_grant") as batch:
        batch.add_column(sa.Column("revoked_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("revocation_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_grant") as batch:
        batch.drop_column("revocation_reason")
        batch.drop_column("revoked_by")
