"""outbox disclosure: the consents a referral's or transfer's notice went out under.

A notice's delivery decision remembered its consents as disclosed to the recipient before the
notice was sent (``consent_disclosure``), and nothing took that back when the attempt certainly
sent nothing (the receiver refused the connection). A revocation then told the agency of a
child it had never heard of. The decision's consents are now kept per message; the revocation
tells the agency when the message may have reached it (``outbox_message.maybe_reached``, 0025)
or was delivered.

Disclosures remembered before this migration stay in ``consent_disclosure``, as they were.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_disclosure",
        sa.Column("message_id", sa.String(40), nullable=False),
        sa.Column("consent_id", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox_message.id"],
            name=op.f("fk_outbox_disclosure_message_id_outbox_message"),
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consent.id"], name=op.f("fk_outbox_disclosure_consent_id_consent")
        ),
        sa.PrimaryKeyConstraint("message_id", "consent_id", name=op.f("pk_outbox_disclosure")),
    )
    op.create_index(op.f("ix_outbox_disclosure_consent_id"), "outbox_disclosure", ["consent_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_disclosure_consent_id"), table_name="outbox_disclosure")
    op.drop_table("outbox_disclosure")
