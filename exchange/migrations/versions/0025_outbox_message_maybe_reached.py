"""outbox message maybe_reached: whether the agency may have got the message.

A notice counted as "may have reached" its agency after any attempt, so one that certainly never
arrived (the receiver refused the connection, its name was not found, the agency was disabled)
made its share known to the recipient, and a later withdrawal or revocation was announced to an
agency told nothing before. The outbox now keeps the answer itself: ``maybe_reached`` is set
before a message is sent, and given back by an outcome that certainly sent nothing
(``exchange.outbox.may_have_reached``, and its SQL twin ``told_to_recipient``).

Existing rows are counted as before, which errs on the side of "may have": a message delivered,
or attempted more often than the one turn that withheld it.

The column is added in place (``ALTER TABLE … ADD COLUMN``, with its default): a batch rebuild
of ``outbox_message`` on SQLite would drop the trigger that numbers messages (0020).

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "outbox_message",
        sa.Column("maybe_reached", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    message = sa.table(
        "outbox_message",
        sa.column("status", sa.String()),
        sa.column("attempts", sa.Integer()),
        sa.column("maybe_reached", sa.Boolean()),
    )
    # The rule of before: the turn that withheld a message counted an attempt and sent nothing.
    withholding_turn = sa.case((message.c.status == "withheld", 1), else_=0)
    op.execute(
        message.update()
        .where(sa.or_(message.c.status == "delivered", message.c.attempts > withholding_turn))
        .values(maybe_reached=True)
    )


def downgrade() -> None:
    op.drop_column("outbox_message", "maybe_reached")
