"""consents, child views, emergency overrides, access requests, grants, consent disclosures.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _sealed() -> list[sa.Column]:
    return [
        sa.Column("document_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_id", sa.String(64), nullable=False),
    ]


def _child_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["child_id"], ["child.id"], name=op.f(f"fk_{table}_child_id_child")
    )


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("recorded_by_agency", sa.String(100), nullable=True),
        sa.Column("recorded_by_person", sa.String(80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *_sealed(),
        _child_fk("consent"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index(op.f("ix_consent_child_id"), "consent", ["child_id"])

    op.create_table(
        "child_view",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("position", sa.String(30), nullable=False),
        sa.Column("consent_id", sa.String(40), nullable=True),
        sa.Column("recorded_by_agency", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        *_sealed(),
        _child_fk("child_view"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_child_view")),
    )
    op.create_index(op.f("ix_child_view_child_id"), "child_view", ["child_id"])

    op.create_table(
        "emergency_override",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("opened_by_agency", sa.String(100), nullable=True),
        sa.Column("opened_by_person", sa.String(80), nullable=True),
        sa.Column("basis_code", sa.String(60), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("upheld", sa.Boolean(), nullable=True),
        *_sealed(),
        _child_fk("emergency_override"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_override")),
    )
    op.create_index(op.f("ix_emergency_override_child_id"), "emergency_override", ["child_id"])

    op.create_table(
        "access_request",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("requester_agency", sa.String(100), nullable=True),
        sa.Column("requester_person", sa.String(80), nullable=True),
        sa.Column("purpose", sa.String(60), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("record_ids", sa.JSON(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("jurisdictions", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("grant_id", sa.String(40), nullable=True),
        sa.Column("decided_by", sa.String(80), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        _child_fk("access_request"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_request")),
    )
    op.create_index(op.f("ix_access_request_child_id"), "access_request", ["child_id"])
    op.create_index(op.f("ix_access_request_status"), "access_request", ["status"])

    op.create_table(
        "access_grant",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("grantee_agency", sa.String(100), nullable=True),
        sa.Column("grantee_person", sa.String(80), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _child_fk("access_grant"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_request.id"],
            name=op.f("fk_access_grant_request_id_access_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grant")),
    )
    op.create_index(op.f("ix_access_grant_child_id"), "access_grant", ["child_id"])
    op.create_index(op.f("ix_access_grant_grantee_person"), "access_grant", ["grantee_person"])

    op.create_table(
        "consent_disclosure",
        sa.Column("consent_id", sa.String(40), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consent.id"], name=op.f("fk_consent_disclosure_consent_id_consent")
        ),
        sa.PrimaryKeyConstraint("consent_id", "agency_id", name=op.f("pk_consent_disclosure")),
    )


def downgrade() -> None:
    for table in (
        "consent_disclosure",
        "access_grant",
        "access_request",
        "emergency_override",
        "child_view",
        "consent",
    ):
        op.drop_table(table)
