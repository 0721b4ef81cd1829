"""people and agency kinds: agency.kind and country, the person table, token labels.

Agencies registered before kinds existed get one by level: state bodies ``state_dif``,
municipal bodies ``municipal_dif``, federal bodies ``other`` (too diverse to guess: set each with
``puente agency set-kind``). The column keeps the server default ``other`` so that adding it
needs no table rebuild on SQLite (a rebuild of ``agency`` would fail on its foreign keys).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "agency",
        sa.Column("kind", sa.String(length=40), server_default="other", nullable=False),
    )
    op.add_column("agency", sa.Column("country", sa.String(length=2), nullable=True))
    agency = sa.table("agency", sa.column("level", sa.String()), sa.column("kind", sa.String()))
    for level, kind in (("state", "state_dif"), ("municipal", "municipal_dif")):
        op.execute(agency.update().where(agency.c.level == level).values(kind=kind))

    op.add_column("access_token", sa.Column("label", sa.String(length=100), nullable=True))

    op.create_table(
        "person",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("agency_id", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("jurisdiction", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_person_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("email", name=op.f("uq_person_email")),
    )
    op.create_index(op.f("ix_person_agency_id"), "person", ["agency_id"])
    op.create_index(op.f("ix_person_jurisdiction"), "person", ["jurisdiction"])


def downgrade() -> None:
    op.drop_index(op.f("ix_person_jurisdiction"), table_name="person")
    op.drop_index(op.f("ix_person_agency_id"), table_name="person")
    op.drop_table("person")
    with op.batch_alter_table("access_token") as batch:
        batch.drop_column("label")
    with op.batch_alter_table("agency") as batch:
        batch.drop_column("country")
        batch.drop_column("kind")
