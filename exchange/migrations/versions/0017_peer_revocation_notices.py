"""revocation notices to peer hubs: who on another hub received data under a consent, and
outbox messages addressed to a peer hub instead of an agency of this hub.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent_disclosure") as batch:
        batch.add_column(sa.Column("peer_hub", sa.String(100), nullable=True))
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("peer_hub", sa.String(100), nullable=True))
        batch.alter_column("agency_id", existing_type=sa.String(100), nullable=True)


def downgrade() -> None:
    # Messages to peer hubs have no agency of this hub to keep them under.
    op.execute("DELETE FROM outbox_message WHERE agency_id IS NULL")
    with op.batch_alter_table("outbox_message") as batch:
        batch.alter_column("agency_id", existing_type=sa.String(100), nullable=False)
        batch.drop_column("peer_hub")
    with op.batch_alter_table("consent_disclosure") as batch:
        batch.drop_column("peer_hub")
