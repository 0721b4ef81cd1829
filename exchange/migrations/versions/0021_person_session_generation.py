"""person session generation: portal sessions that logging out, disabling and enabling end.

A portal session was only its signed cookie, so a copy of it outlived logging out, and came
back to life when its person (or agency) was disabled and then enabled again. Each person now
has a ``session_generation``, carried in the cookie and counted up by logging out, disabling,
enabling and a new password; a cookie whose number is not the person's is no session.

Existing people start at 0, and cookies made before this migration carry no number: their
people log in again once.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_column("session_generation")
