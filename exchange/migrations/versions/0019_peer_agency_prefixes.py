"""peer agency prefixes: the agency ids a pinned peer hub may speak for in a lookup.

Until now any pinned peer could name any agency id as the one that asks, another hub's agency
included. Each peer is given the prefixes of its own jurisdiction, the first two labels of its
hub id (``mx.fed.puente`` → ``["mx.fed."]``); ``puente peer set-agency-prefixes`` changes them.
A peer whose id has no two such labels, or whose prefix another peer pinned before it already
has (one hub speaks for each agency), gets none: its lookups are refused until an
administrator sets them.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# As exchange.peer_checks.AGENCY_PREFIX at this revision (a migration does not import the app).
_AGENCY_PREFIX = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.){2,}$")


def upgrade() -> None:
    with op.batch_alter_table("peer") as batch:
        batch.add_column(sa.Column("agency_prefixes", sa.JSON(), nullable=True))
    connection = op.get_bind()
    taken: list[str] = []
    peers = connection.execute(sa.text("SELECT hub_id FROM peer ORDER BY added_at, hub_id"))
    for (hub_id,) in list(peers):
        prefix = ".".join(hub_id.split(".")[:2]) + "."
        overlaps = any(prefix.startswith(other) or other.startswith(prefix) for other in taken)
        prefixes = [prefix] if _AGENCY_PREFIX.match(prefix) and not overlaps else []
        taken.extend(prefixes)
        connection.execute(
            sa.text(
                "UPDATE peer SET agency_prefixes = :prefixes WHERE hub_id = :hub_id"
            ).bindparams(sa.bindparam("prefixes", type_=sa.JSON())),
            {"prefixes": prefixes, "hub_id": hub_id},
        )
    with op.batch_alter_table("peer") as batch:
        batch.alter_column("agency_prefixes", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("peer") as batch:
        batch.drop_column("agency_prefixes")
