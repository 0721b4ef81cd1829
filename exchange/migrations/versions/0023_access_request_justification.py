"""access request justification: why the requester asks, kept (sealed) for the officer.

``POST /v1/access-requests`` took a ``justification`` and dropped it: the consent officer
deciding never saw why access was asked. It is now kept, encrypted under the data keyring
like consents and overrides (it may describe the child's situation), in a table of its own
so requests without one store nothing; ``puente keys rotate-data-key`` re-encrypts it too.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_request_justification",
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("document_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["access_request.id"]),
        sa.PrimaryKeyConstraint("request_id"),
    )


def downgrade() -> None:
    op.drop_table("access_request_justification")
