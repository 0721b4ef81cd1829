"""child profile identifiers: an identifier a record stops stating stops linking to its child.

A record's CURP or UNHCR individual number linked its child for good: a record whose new version
corrected a mistyped CURP left the mistyped value linked, and the next record carrying that
value (another child's) was linked to this child, under its consents, without anyone deciding.
Each source record's profile now keeps the personal identifiers it states, so that a link no
record states any more is removed (exchange.child_linking.unlink_dropped_identifiers).

Existing profiles get NULL, read as "states every identifier" (their links stay) until their
record is pushed again or ``puente children reindex`` refreshes them.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("child_profile") as batch:
        batch.add_column(sa.Column("identifiers", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("child_profile") as batch:
        batch.drop_column("identifiers")
