"""child index: children, their identifiers, case numbers, matching profiles and name keys,
duplicate suggestions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "child",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("merged_into", sa.String(40), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merge_reason", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["child.id"], name=op.f("fk_child_merged_into_child")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_child")),
    )
    op.create_index(op.f("ix_child_merged_into"), "child", ["merged_into"])
    op.create_table(
        "child_identifier",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"], ["child.id"], name=op.f("fk_child_identifier_child_id_child")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_child_identifier")),
        sa.UniqueConstraint("kind", "scope", "value", name=op.f("uq_child_identifier_kind")),
    )
    op.create_index(op.f("ix_child_identifier_child_id"), "child_identifier", ["child_id"])
    op.create_table(
        "child_case_number",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"], ["child.id"], name=op.f("fk_child_case_number_child_id_child")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_child_case_number")),
        sa.UniqueConstraint(
            "child_id", "kind", "value", name=op.f("uq_child_case_number_child_id")
        ),
    )
    op.create_index("ix_child_case_number_lookup", "child_case_number", ["kind", "value"])
    op.create_table(
        "child_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=False),
        sa.Column("local_id", sa.String(200), nullable=False),
        sa.Column("given_names", sa.String(300), nullable=False),
        sa.Column("surnames", sa.String(300), nullable=False),
        sa.Column("alias", sa.String(300), nullable=False),
        sa.Column("birth_earliest", sa.Date(), nullable=True),
        sa.Column("birth_latest", sa.Date(), nullable=True),
        sa.Column("birth_exact", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(10), nullable=True),
        sa.Column("nationalities", sa.String(30), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"], ["child.id"], name=op.f("fk_child_profile_child_id_child")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_child_profile")),
        sa.UniqueConstraint("agency_id", "local_id", name=op.f("uq_child_profile_agency_id")),
    )
    op.create_index(op.f("ix_child_profile_child_id"), "child_profile", ["child_id"])
    op.create_table(
        "child_name_key",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(60), nullable=False),
        sa.Column("birth_year_from", sa.Integer(), nullable=False),
        sa.Column("birth_year_to", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["child_profile.id"],
            name=op.f("fk_child_name_key_profile_id_child_profile"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "key", name=op.f("pk_child_name_key")),
    )
    op.create_index(
        "ix_child_name_key_lookup",
        "child_name_key",
        ["key", "birth_year_to", "birth_year_from"],
    )
    op.create_table(
        "child_duplicate_suggestion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.String(40), nullable=False),
        sa.Column("other_child_id", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("identifier_kind", sa.String(20), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["child_id"], ["child.id"], name=op.f("fk_child_duplicate_suggestion_child_id_child")
        ),
        sa.ForeignKeyConstraint(
            ["other_child_id"],
            ["child.id"],
            name=op.f("fk_child_duplicate_suggestion_other_child_id_child"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_child_duplicate_suggestion")),
    )
    op.create_index(
        op.f("ix_child_duplicate_suggestion_child_id"), "child_duplicate_suggestion", ["child_id"]
    )
    op.create_index(
        op.f("ix_child_duplicate_suggestion_other_child_id"),
        "child_duplicate_suggestion",
        ["other_child_id"],
    )


def downgrade() -> None:
    op.drop_table("child_duplicate_suggestion")
    op.drop_table("child_name_key")
    op.drop_table("child_profile")
    op.drop_table("child_case_number")
    op.drop_table("child_identifier")
    op.drop_table("child")
