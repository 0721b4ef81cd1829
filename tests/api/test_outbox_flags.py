"""What a message's outcome means is kept in columns, written with the outcome (migration 0027).

``readable_when_dead``: a dead message its agency may still read with ``GET /v1/notifications``
(its attempts ran out on failures that may pass, no outcome was recorded, its agency was
disabled). ``refused_by_receiver``: the receiver answered the last attempt with an error status,
and no earlier attempt may have left the message with it (or the message was withheld after
such answers) — what decides whether a transfer's withdrawal is sent. Both were read back from
``last_error`` by patterns until then; the text stays as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text, update
from test_delivery_fix_s18 import (
    POLICY,
    Receiver,
    cli,
    deliver,
    due_now,
    inbox,
    no_answer,
    refused,
    stored,
    unavailable,
    until_given_up,
)
from test_referrals_transfers import CLINIC, OWNER, Hub, refer, transfer
from test_referrals_transfers import hub as transfers_hub  # noqa: F401 - a fixture

from exchange import create_app, db
from exchange.agencies import Agency
from exchange.db import Base
from exchange.outbox import (
    DISABLED_AGENCY,
    OutboxMessage,
    dead_but_readable,
    may_have_taken,
    refused_by_receiver,
    requeue,
)
from exchange.outbox_delivery import EARLIER_ATTEMPT, GAVE_UP, GAVE_UP_ON_PEER, NO_OUTCOME
from exchange.outbox_reading import CONSENT_WITHHELD, NOT_TAKEN
from exchange.transports import PermanentDeliveryError


@pytest.fixture
def hub(transfers_hub: Hub) -> Hub:  # noqa: F811 - the imported fixture, by another name
    return transfers_hub


def flags(message: OutboxMessage) -> tuple[bool, bool]:
    return message.readable_when_dead, message.refused_by_receiver


def bad_request() -> PermanentDeliveryError:
    return PermanentDeliveryError("HTTP 400 (bad request)")


# --- set and cleared by the delivery paths ---------------------------------------------------


def test_a_receiver_down_until_the_attempts_run_out_leaves_it_readable(hub: Hub) -> None:
    refer(hub, hub.push())
    deliver(hub, Receiver(unavailable))
    failed = stored(hub, "record.referred")
    assert (failed.status, failed.last_error) == ("failed", "HTTP 503")
    assert flags(failed) == (False, True)  # a 503 is an error answer: it did not keep it
    due_now(hub)
    deliver(hub, Receiver(unavailable))
    dead = stored(hub, "record.referred")
    assert dead.status == "dead"
    assert dead.last_error == GAVE_UP.format(n=POLICY.max_attempts, error="HTTP 503")
    assert flags(dead) == (True, True) and dead_but_readable(dead)
    assert [n["id"] for n in inbox(hub, CLINIC)] == [dead.id]


def test_a_receiver_never_reached_leaves_it_readable_and_refused_by_no_one(hub: Hub) -> None:
    refer(hub, hub.push())
    until_given_up(hub, Receiver(refused))
    message = stored(hub, "record.referred")
    assert message.status == "dead" and flags(message) == (True, False)


def test_a_receiver_that_answers_400_refused_it(hub: Hub) -> None:
    refer(hub, hub.push())
    deliver(hub, Receiver(bad_request))
    message = stored(hub, "record.referred")
    assert (message.status, message.last_error) == ("dead", "HTTP 400 (bad request)")
    assert flags(message) == (False, True)
    assert not dead_but_readable(message) and refused_by_receiver(message)
    assert message.maybe_reached and not may_have_taken(message)
    assert inbox(hub, CLINIC) == []


def test_a_refusal_after_an_attempt_that_may_have_reached_is_no_refusal(hub: Hub) -> None:
    refer(hub, hub.push())
    deliver(hub, Receiver(no_answer))
    assert flags(stored(hub, "record.referred")) == (False, False)
    due_now(hub)
    deliver(hub, Receiver(bad_request))
    message = stored(hub, "record.referred")
    assert message.last_error == "HTTP 400 (bad request)" + EARLIER_ATTEMPT
    assert flags(message) == (False, False) and may_have_taken(message)


def test_an_attempt_under_way_clears_the_refusal_of_the_one_before(hub: Hub) -> None:
    """A worker that dies mid-send leaves no error: no refusal stands for its attempt."""
    refer(hub, hub.push())
    deliver(hub, Receiver(unavailable))
    due_now(hub)

    class Crash(BaseException):
        pass

    def crash() -> BaseException:
        raise Crash

    with pytest.raises(Crash):
        deliver(hub, Receiver(crash))
    message = stored(hub, "record.referred")
    assert (message.last_error, message.refused_by_receiver) == (None, False)
    assert may_have_taken(message)


def test_requeue_clears_what_made_it_readable_and_a_delivery_the_refusal(hub: Hub) -> None:
    refer(hub, hub.push())
    until_given_up(hub, Receiver(unavailable))
    with db.database(hub.app).sessions.begin() as session:
        assert requeue(session) == 1
    requeued = stored(hub, "record.referred")
    # No longer dead: nothing makes it readable as a dead one. The refusal stays with the
    # error that tells of it, until the next attempt.
    assert requeued.status == "pending" and flags(requeued) == (False, True)
    assert requeued.last_error == GAVE_UP.format(n=POLICY.max_attempts, error="HTTP 503")
    assert not may_have_taken(requeued)
    deliver(hub, Receiver())
    delivered = stored(hub, "record.referred")
    assert delivered.status == "delivered" and flags(delivered) == (False, False)


def test_a_disabled_agency_may_read_what_died_meanwhile(hub: Hub) -> None:
    refer(hub, hub.push())
    with db.database(hub.app).sessions.begin() as session:
        session.get_one(Agency, CLINIC).active = False
    deliver(hub, Receiver())
    message = stored(hub, "record.referred")
    assert (message.status, message.last_error) == ("dead", DISABLED_AGENCY.format(CLINIC))
    assert flags(message) == (True, False)


def test_attempts_that_never_recorded_an_outcome_leave_it_readable(hub: Hub) -> None:
    refer(hub, hub.push())
    deliver(hub, Receiver(unavailable))
    with db.database(hub.app).sessions.begin() as session:
        session.execute(
            update(OutboxMessage).values(attempts=POLICY.max_attempts, next_attempt_at=now())
        )
    deliver(hub, Receiver())
    message = stored(hub, "record.referred")
    assert message.last_error == NO_OUTCOME.format(n=POLICY.max_attempts)
    assert flags(message) == (True, False)


def test_a_request_withheld_after_error_answers_was_not_taken(hub: Hub) -> None:
    share_id = transfer(hub, hub.push()).get_json()["id"]
    deliver(hub, Receiver(unavailable))
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    due_now(hub)
    deliver(hub, Receiver())
    request = stored(hub, "transfer.requested")
    assert request.status == "withheld"
    assert (request.last_error or "").endswith(NOT_TAKEN.format(error="HTTP 503"))
    assert flags(request) == (False, True) and not may_have_taken(request)
    assert stored(hub, "transfer.withdrawn").status == "withheld"


def test_a_request_kept_for_reading_without_its_error_was_refused_by_no_one(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``exchange.agencies`` keeps what waits for an agency whose webhook is removed for it to
    read, clearing the error: the refusal that error told of goes with it."""
    transfer(hub, hub.push())
    deliver(hub, Receiver(unavailable))
    assert cli(hub, monkeypatch, "agency", "set-webhook", CLINIC, "-").exit_code == 0
    request = stored(hub, "transfer.requested")
    assert (request.status, request.last_error) == ("held", None)
    assert not refused_by_receiver(request) and may_have_taken(request)


def now() -> datetime:
    return datetime.now(UTC)


# --- migration 0027 reads the flags of stored messages as the text said them -----------------

STORED: dict[str, tuple[str | None, str, str | None, bool, bool]] = {
    # id: (agency, status, last_error) -> (readable when dead, refused by receiver)
    "msg_gave_up_503": (CLINIC, "dead", GAVE_UP.format(n=9, error="HTTP 503"), True, True),
    "msg_gave_up_refused": (
        CLINIC,
        "dead",
        GAVE_UP.format(n=9, error="ConnectionRefusedError: [Errno 111] Connection refused"),
        True,
        False,
    ),
    "msg_gave_up_earlier": (
        CLINIC,
        "dead",
        GAVE_UP.format(n=9, error="HTTP 503") + EARLIER_ATTEMPT,
        True,
        False,
    ),
    "msg_no_outcome": (CLINIC, "dead", NO_OUTCOME.format(n=9), True, False),
    "msg_disabled": (CLINIC, "dead", DISABLED_AGENCY.format(CLINIC), True, False),
    "msg_disabled_other": (CLINIC, "dead", DISABLED_AGENCY.format(OWNER), False, False),
    "msg_failed_503": (CLINIC, "failed", "HTTP 503", False, True),
    "msg_failed_lowercase": (CLINIC, "failed", "http 503", False, False),
    "msg_failed_earlier": (CLINIC, "failed", "HTTP 503" + EARLIER_ATTEMPT, False, False),
    "msg_timeout": (CLINIC, "failed", "TimeoutError: no complete answer", False, False),
    "msg_gone": (CLINIC, "dead", "HTTP 410 (gone)", False, True),
    "msg_redirected": (CLINIC, "dead", "HTTP 302: redirects are not followed", False, True),
    "msg_not_taken": (
        CLINIC,
        "withheld",
        "withheld: transfer shr_1 is cancelled, no longer pending"
        + NOT_TAKEN.format(error="HTTP 503"),
        False,
        True,
    ),
    "msg_consent_not_taken": (  # the pattern of before wanted "withheld: …"
        CLINIC,
        "withheld",
        CONSENT_WITHHELD.format(decision="dec_1", basis="revoked")
        + NOT_TAKEN.format(error="HTTP 503"),
        False,
        False,
    ),
    "msg_stale": (CLINIC, "withheld", "withheld: transfer shr_2 is accepted", False, False),
    "msg_peer_gave_up": (
        None,
        "dead",
        GAVE_UP_ON_PEER.format(n=9, error="HTTP 503 from peer hub mx.b: down"),
        False,
        False,
    ),
    "msg_peer_failed": (None, "failed", "HTTP 503 from peer hub mx.b: down", False, True),
    "msg_queued": (CLINIC, "pending", None, False, False),
    "msg_delivered": (CLINIC, "delivered", None, False, False),
}


def alembic(app: Any, action: str, revision: str) -> None:
    database = db.database(app)
    config = db.alembic_config(database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_0027_sets_the_flags_of_stored_messages_by_the_rules_of_before(
    tmp_path: Path, database_url: str
) -> None:
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": tmp_path / "instance", "DATABASE_URL": database_url}
    )
    insert = text(
        "INSERT INTO outbox_message (id, agency_id, peer_hub, kind, payload, status, attempts, "
        "last_error, next_attempt_at, created_at) VALUES (:id, :agency, :peer, "
        "'consent.revoked', '{}', :status, 1, :error, :at, :at)"
    )
    at = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        db.upgrade(app, "0026")
        engine = db.database(app).engine
        with db.database(app).sessions.begin() as session:
            session.add(
                Agency(
                    id=CLINIC,
                    name=CLINIC,
                    level="municipal",
                    jurisdiction="07",
                    scope="records:read",
                    active=True,
                    require_signature=False,
                )
            )
        with engine.begin() as connection:
            for message_id, (agency, status, error, _r, _f) in STORED.items():
                peer = None if agency else "mx.b"
                values = {"agency": agency, "peer": peer, "status": status, "error": error}
                connection.execute(insert, {"id": message_id, "at": at, **values})
        db.upgrade(app)
        with engine.begin() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            found = {
                row.id: (bool(row.readable_when_dead), bool(row.refused_by_receiver))
                for row in connection.execute(
                    text("SELECT id, readable_when_dead, refused_by_receiver FROM outbox_message")
                )
            }
            # A message added since gets the defaults, and its number (the 0020 trigger kept).
            connection.execute(
                insert,
                {"id": "msg_new", "agency": CLINIC, "peer": None, "status": "pending"}
                | {"error": None, "at": at},
            )
            new = connection.execute(
                text(
                    "SELECT seq, readable_when_dead, refused_by_receiver FROM outbox_message "
                    "WHERE id = 'msg_new'"
                )
            ).one()
        assert found == {
            message_id: (readable, refused)
            for message_id, (_a, _s, _e, readable, refused) in STORED.items()
        }
        assert new[0] == len(STORED) + 1 and not new[1] and not new[2]

        alembic(app, "downgrade", "0026")
        columns = {column["name"] for column in inspect(engine).get_columns("outbox_message")}
        assert not {"readable_when_dead", "refused_by_receiver"} & columns
        with engine.begin() as connection:
            connection.execute(
                insert,
                {"id": "msg_after", "agency": CLINIC, "peer": None, "status": "pending"}
                | {"error": None, "at": at},
            )
            numbered = connection.execute(
                text("SELECT seq FROM outbox_message WHERE id = 'msg_after'")
            ).scalar_one()
        assert numbered == len(STORED) + 2  # the trigger outlives the downgrade too
        db.upgrade(app)
    finally:
        db.database(app).engine.dispose()
