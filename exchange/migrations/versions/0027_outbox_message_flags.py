"""outbox message flags: what a message's outcome means, kept beside the reason people read.

Two facts about a message were read back from its ``last_error``, the reason an administrator
reads (``puente outbox list``) and an agency is shown, by patterns: whether a dead message is
still its agency's to read with ``GET /v1/notifications`` (it died only because the agency
could not be reached), and whether its receiver refused the last attempt with an error status
with no earlier attempt that may have reached it (what decides whether a transfer's withdrawal
is sent). The text is cut to a length and worded for people; a change of wording would have
changed what the hub does. The outbox now writes both with the outcome:
``readable_when_dead`` (``exchange.outbox.dead_but_readable``, and its SQL twin
``readable_dead``) and ``refused_by_receiver`` (``exchange.outbox.refused_by_receiver``, read by
``may_have_taken``).

Existing rows get them from their ``last_error`` by the rules of before, so an upgraded hub
decides as it did for every message already stored: readable, a dead message that gave up on
its agency (``gave up after N attempts (its agency may still read it: …): …``), recorded no
outcome (``no outcome recorded after N attempts``), or found its agency disabled (``agency X
is unknown or disabled``, X its own agency); refused, a message whose reason is an error status
(``HTTP 3xx``–``5xx``, also once given up on such answers) not followed by ``; an earlier
attempt may have reached the agency``, or a transfer request withheld after such answers
(``withheld: …; the receiver did not take it (its last answer: …)``). The patterns are kept here
as they were, apart from the code, which no longer has them; rows that may match are picked in
SQL and matched here.

The columns are added in place (``ALTER TABLE … ADD COLUMN``, with their default): a batch
rebuild of ``outbox_message`` on SQLite would drop the trigger that numbers messages (0020).

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-30
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

#: The rules of before (exchange/outbox.py up to revision 0026).
_GAVE_UP_HEAD = (
    r"gave up after \d+ attempts \(its agency may still read it: GET /v1/notifications\): "
)
_GAVE_UP = re.compile(_GAVE_UP_HEAD + r".*", re.DOTALL)
_NO_OUTCOME = re.compile(r"no outcome recorded after \d+ attempts")
_DISABLED_AGENCY = "agency {} is unknown or disabled"
_HTTP_REFUSAL = re.compile(f"(?:{_GAVE_UP_HEAD})?" + r"HTTP [3-5]\d\d\b.*", re.DOTALL)
_NOT_TAKEN = re.compile(
    r"withheld: .*; the receiver did not take it \(its last answer: .*\)", re.DOTALL
)
_EARLIER_ATTEMPT = "; an earlier attempt may have reached the agency"

_MESSAGE = sa.table(
    "outbox_message",
    sa.column("id", sa.String()),
    sa.column("agency_id", sa.String()),
    sa.column("status", sa.String()),
    sa.column("last_error", sa.Text()),
    sa.column("readable_when_dead", sa.Boolean()),
    sa.column("refused_by_receiver", sa.Boolean()),
)
#: Rows updated per statement.
_BATCH = 500


def upgrade() -> None:
    for name in ("readable_when_dead", "refused_by_receiver"):
        op.add_column(
            "outbox_message",
            sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    connection = op.get_bind()
    readable: list[str] = []
    refused: list[str] = []
    for message_id, agency_id, status, error in connection.execute(_candidates()):
        if status == "dead" and _was_readable(error, agency_id):
            readable.append(message_id)
        if _was_refused(error):
            refused.append(message_id)
    _set(connection, "readable_when_dead", readable)
    _set(connection, "refused_by_receiver", refused)


def _candidates() -> sa.Select[Any]:
    """The rows whose reason may match a rule (LIKE is looser than the rules, never
    stricter: they decide)."""
    error = _MESSAGE.c.last_error
    return sa.select(_MESSAGE.c.id, _MESSAGE.c.agency_id, _MESSAGE.c.status, error).where(
        sa.or_(
            error.like("gave up after %"),
            error.like("no outcome recorded after %"),
            error.like("agency % is unknown or disabled"),
            error.like("HTTP %"),
            error.like("withheld: %"),
        )
    )


def _was_readable(error: str, agency_id: str | None) -> bool:
    return (
        _GAVE_UP.fullmatch(error) is not None
        or _NO_OUTCOME.fullmatch(error) is not None
        or (agency_id is not None and error == _DISABLED_AGENCY.format(agency_id))
    )


def _was_refused(error: str) -> bool:
    if error.endswith(_EARLIER_ATTEMPT):
        return False
    return bool(_HTTP_REFUSAL.fullmatch(error) or _NOT_TAKEN.fullmatch(error))


def _set(connection: sa.Connection, column: str, message_ids: list[str]) -> None:
    for start in range(0, len(message_ids), _BATCH):
        chosen = message_ids[start : start + _BATCH]
        connection.execute(
            _MESSAGE.update().where(_MESSAGE.c.id.in_(chosen)).values({column: True})
        )


def downgrade() -> None:
    op.drop_column("outbox_message", "refused_by_receiver")
    op.drop_column("outbox_message", "readable_when_dead")
