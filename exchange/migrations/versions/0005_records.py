"""records: case records, their encrypted versions, and Idempotency-Key answers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("source_agency", sa.String(100), nullable=False),
        sa.Column("local_id", sa.String(200), nullable=False),
        sa.Column("owner_agency", sa.String(100), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("schema_ref", sa.String(100), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("latest_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_agency"], ["agency.id"], name=op.f("fk_record_source_agency_agency")
        ),
        sa.ForeignKeyConstraint(
            ["owner_agency"], ["agency.id"], name=op.f("fk_record_owner_agency_agency")
        ),
        sa.ForeignKeyConstraint(["child_id"], ["child.id"], name=op.f("fk_record_child_id_child")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record")),
        sa.UniqueConstraint("source_agency", "local_id", name=op.f("uq_record_source_agency")),
    )
    op.create_index(op.f("ix_record_owner_agency"), "record", ["owner_agency"])
    op.create_index(op.f("ix_record_child_id"), "record", ["child_id"])

    op.create_table(
        "record_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("schema_ref", sa.String(100), nullable=False),
        sa.Column("body_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_id", sa.String(64), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("signing_kid", sa.String(100), nullable=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pushed_by", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["record.id"], name=op.f("fk_record_version_record_id_record")
        ),
        sa.ForeignKeyConstraint(
            ["pushed_by"], ["agency.id"], name=op.f("fk_record_version_pushed_by_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_version")),
        sa.UniqueConstraint("record_id", "version", name=op.f("uq_record_version_record_id")),
    )
    op.create_index(op.f("ix_record_version_data_key_id"), "record_version", ["data_key_id"])

    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_idempotency_key_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_key")),
        sa.UniqueConstraint("agency_id", "key", name=op.f("uq_idempotency_key_agency_id")),
    )
    op.create_index(op.f("ix_idempotency_key_created_at"), "idempotency_key", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_key")
    op.drop_table("record_version")
    op.drop_table("record")
