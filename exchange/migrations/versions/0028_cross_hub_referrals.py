"""cross-hub referrals: a record referred to an agency of a peer hub, on both hubs.

``peer_referral`` (the hub that holds the record): the referral, the standing basis on which the
peer's agency reads the record through a lookup; not a ``record_share`` row, whose recipient
must be an agency registered on this hub (its foreign key to ``agency``, which every join of
shares to agencies relies on, stays as it is). ``received_referral`` (the peer hub): what the
holding hub announced to one of its agencies, kept once per (sending hub, notice id).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer_referral",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("record_id", sa.String(40), nullable=False),
        sa.Column("from_agency", sa.String(100), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=False),
        sa.Column("peer_hub", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("notice_id", sa.String(40), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"], ["record.id"], name=op.f("fk_peer_referral_record_id_record")
        ),
        sa.ForeignKeyConstraint(
            ["from_agency"], ["agency.id"], name=op.f("fk_peer_referral_from_agency_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer_referral")),
    )
    for column in ("record_id", "from_agency", "peer_hub"):
        op.create_index(op.f(f"ix_peer_referral_{column}"), "peer_referral", [column])
    op.create_table(
        "received_referral",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("peer_hub", sa.String(100), nullable=False),
        sa.Column("notice_id", sa.String(100), nullable=False),
        sa.Column("share_id", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(100), nullable=False),
        sa.Column("from_agency", sa.String(100), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_received_referral_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_referral")),
        sa.UniqueConstraint("peer_hub", "notice_id", name=op.f("uq_received_referral_peer_hub")),
    )
    op.create_index(op.f("ix_received_referral_agency_id"), "received_referral", ["agency_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_received_referral_agency_id"), table_name="received_referral")
    op.drop_table("received_referral")
    for column in ("peer_hub", "from_agency", "record_id"):
        op.drop_index(op.f(f"ix_peer_referral_{column}"), table_name="peer_referral")
    op.drop_table("peer_referral")
