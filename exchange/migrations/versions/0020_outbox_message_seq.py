"""outbox message sequence: a monotonic cursor for ``GET /v1/notifications``.

Notifications were paged by (``created_at``, ``id``): on SQLite ``created_at`` kept whole
seconds and ids are random, so a poller that passed the last id it had seen skipped the
messages of the same second that sorted before it. ``seq`` numbers messages in the order they
were committed; existing rows get numbers in their old (``created_at``, ``id``) order.

The database assigns it: on PostgreSQL a sequence (``outbox_message_seq``) is the column's
default; on SQLite, whose defaults cannot read the table, a trigger sets it to one more than
the highest after each insert (SQLite runs one writer at a time, so numbers follow commits).
A later migration that rebuilds ``outbox_message`` on SQLite (batch mode) drops the trigger
and must create it again.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

SQLITE_TRIGGER = """
CREATE TRIGGER outbox_message_seq AFTER INSERT ON outbox_message
FOR EACH ROW WHEN NEW.seq IS NULL
BEGIN
    UPDATE outbox_message
    SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox_message)
    WHERE rowid = NEW.rowid;
END
"""


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    ids = connection.execute(sa.text("SELECT id FROM outbox_message ORDER BY created_at, id"))
    numbered = [{"seq": n, "id": message_id} for n, (message_id,) in enumerate(ids, start=1)]
    if numbered:
        connection.execute(sa.text("UPDATE outbox_message SET seq = :seq WHERE id = :id"), numbered)
    op.create_index("ix_outbox_message_seq", "outbox_message", ["seq"], unique=True)
    if connection.dialect.name == "postgresql":
        op.execute(
            f"CREATE SEQUENCE outbox_message_seq START WITH {len(numbered) + 1} "
            "OWNED BY outbox_message.seq"
        )
        op.execute(
            "ALTER TABLE outbox_message ALTER COLUMN seq SET DEFAULT nextval('outbox_message_seq')"
        )
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outbox_message ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE outbox_message_seq")
    else:
        op.execute("DROP TRIGGER outbox_message_seq")
    op.drop_index("ix_outbox_message_seq", table_name="outbox_message")
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("seq")
