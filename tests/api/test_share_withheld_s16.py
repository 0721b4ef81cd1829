"""A share whose notice was withheld before it could reach its recipient ends, and a notice
that certainly never arrived does not count as having reached the agency.

1. A referral or transfer whose announcing notice (``record.referred``,
   ``transfer.requested``) consent withheld before it may have reached the recipient gave the
   recipient nothing (docs/consent.md §8.7). It used to stay in force for good: the same
   referral was refused as a duplicate (``409``), another transfer of the record as "already
   pending", and nothing could ever tell the recipient. It now ends (``cancelled``, no agency
   named as deciding it, a reason in Spanish and English for the sender), audited as the hub's,
   and may be made again — while the guarantees of an untold share stay: not listed to the
   recipient, ``404`` to it, no reads through it.

2. An attempt that certainly sent nothing — the connection refused, the host name not found,
   the drop folder impossible to write — does not count as possibly reaching the agency
   (``maybe_reached``, read by :func:`exchange.outbox.may_have_reached` and its SQL twin
   :func:`exchange.child_search.told_to_recipient`); a timeout, or any answer, still does.
"""

from __future__ import annotations

import json
import socket
import urllib.error
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text, update
from test_referrals_transfers import (
    CLINIC,
    OWNER,
    PROCURADURIA,
    SHARING_CONSENT,
    SHELTER,
    Hub,
    refer,
    transfer,
)
from test_referrals_transfers import hub as transfers_hub  # noqa: F401 - a fixture
from test_revocation_recipients import POLICY, inbox, revoke, run_worker, statuses

from exchange import create_app, db
from exchange.agencies import Agency
from exchange.audit_log import AuditEntry
from exchange.child_search import told_to_recipient
from exchange.db import Base
from exchange.outbox import OutboxMessage, enqueue, may_have_reached
from exchange.outbox_delivery import BatchResult, deliver_batch, sent_nothing
from exchange.records import Record
from exchange.sharing import RecordShare, told_shares
from exchange.transports import (
    AgencyTransports,
    PermanentDeliveryError,
    TransientDeliveryError,
    file_drop_root,
)

PURPOSE = "health_care"  # what refer() refers the record for


@pytest.fixture
def hub(transfers_hub: Hub) -> Hub:  # noqa: F811 - the imported fixture, by another name
    """The hub of tests/api/test_referrals_transfers.py: the owner, a clinic with a webhook,
    a shelter without, and the consent that lets records be referred and transferred."""
    return transfers_hub


# --- helpers ---------------------------------------------------------------------------------


def shares(hub: Hub, agency: str, role: str) -> list[dict[str, Any]]:
    answer = hub.client.get(f"/v1/shares?role={role}", headers=hub.headers(agency))
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["shares"])


def sent_share(hub: Hub, share_id: str) -> dict[str, Any]:
    [found] = [share for share in shares(hub, OWNER, "sent") if share["id"] == share_id]
    return found


def consent_again(hub: Hub, record_id: str) -> None:
    """The Procuraduría records the sharing consent again, after the revocation."""
    with db.database(hub.app).sessions() as session:
        child_id = session.get_one(Record, record_id).child_id
    answer = hub.post(PROCURADURIA, f"/v1/children/{child_id}/consents", SHARING_CONSENT)
    assert answer.status_code == 201, answer.get_json()


def ended_entries(hub: Hub, action: str) -> list[dict[str, Any]]:
    with db.database(hub.app).sessions() as session:
        found = session.scalars(
            select(AuditEntry.entry).where(
                AuditEntry.action == action, AuditEntry.outcome == "failure"
            )
        ).all()
    return [json.loads(entry) for entry in found]


def notice(hub: Hub, kind: str, agency: str = CLINIC) -> OutboxMessage:
    with db.database(hub.app).sessions() as session:
        [found] = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == kind, OutboxMessage.agency_id == agency
            )
        ).all()
        return found


def due_now(hub: Hub) -> None:
    """Every message waiting out its backoff is due again."""
    with db.database(hub.app).sessions.begin() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "failed")
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def set_webhook(hub: Hub, agency: str, url: str) -> None:
    with db.database(hub.app).sessions.begin() as session:
        session.get_one(Agency, agency).webhook_url = url


def closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return int(closed.getsockname()[1])


def deliver_with(hub: Hub, transport: Any) -> BatchResult:
    """One pass of the worker through ``transport``."""
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        return deliver_batch(session, transport, POLICY, 50)


class Unanswered:
    """A receiver that took the connection and never answered: it may have the notice."""

    def deliver(self, agency: Any, message: Any) -> None:
        raise TransientDeliveryError("TimeoutError: no complete answer", unreachable=True)


# --- 1. a share whose notice was withheld before it reached the recipient ends ---------------


def test_a_referral_whose_notice_consent_withheld_ends_and_may_be_made_again(hub: Hub) -> None:
    record_id = hub.push()
    first = refer(hub, record_id).get_json()["id"]
    revoke(hub, record_id)
    sent, result = run_worker(hub)
    assert sent.sent == [] and result.withheld == 1

    # The sender sees it ended, and why, in both languages; no agency decided it.
    ended = sent_share(hub, first)
    assert (ended["status"], ended["decided_by"]) == ("cancelled", None)
    assert ended["decided_at"] is not None
    assert "Se retuvo el aviso de la canalización" in ended["decision_reason"]
    assert "The referral's notice was withheld" in ended["decision_reason"]
    # The hub audited the end, as its own act, naming the recipient.
    [entry] = ended_entries(hub, "record_referred")
    assert entry["reason_code"] == "notice_withheld"
    assert entry["target"] == {"agency_id": CLINIC}
    assert entry["actor"] == {"agency_id": hub.app.config["HUB_ID"], "role": "system"}
    assert entry["record_id"] == record_id
    # The recipient was told nothing, and is shown nothing.
    assert shares(hub, CLINIC, "received") == []
    assert hub.read(CLINIC, record_id, PURPOSE).status_code == 404

    # A consent permits referring again (not reading): the old referral still gives nothing.
    consent_again(hub, record_id)
    assert hub.read(CLINIC, record_id, PURPOSE).status_code == 404
    again = refer(hub, record_id)
    assert again.status_code == 201, again.get_json()
    second = again.get_json()["id"]
    assert second != first
    sent, _ = run_worker(hub)
    assert sent.sent == [(CLINIC, "record.referred")]
    assert [share["id"] for share in shares(hub, CLINIC, "received")] == [second]
    assert hub.read(CLINIC, record_id, PURPOSE).status_code == 200
    # Once made and told, the same referral is a duplicate again.
    assert refer(hub, record_id).status_code == 409


def test_a_held_referral_withheld_when_its_recipient_reads_ends_too(hub: Hub) -> None:
    """No webhook: the notice is kept for the shelter, and decided when it reads."""
    record_id = hub.push()
    first = refer(hub, record_id, to=SHELTER).get_json()["id"]
    revoke(hub, record_id)
    assert inbox(hub, SHELTER) == []
    assert statuses(hub, SHELTER) == {"record.referred": "withheld"}

    assert sent_share(hub, first)["status"] == "cancelled"
    assert shares(hub, SHELTER, "received") == []
    consent_again(hub, record_id)
    again = refer(hub, record_id, to=SHELTER)
    assert again.status_code == 201, again.get_json()
    assert [share["id"] for share in shares(hub, SHELTER, "received")] == [again.get_json()["id"]]


def test_a_transfer_whose_request_consent_withheld_ends_and_frees_the_record(hub: Hub) -> None:
    record_id = hub.push()
    first = transfer(hub, record_id).get_json()["id"]
    revoke(hub, record_id)
    sent, result = run_worker(hub)
    assert sent.sent == [] and result.withheld == 1

    ended = sent_share(hub, first)
    assert (ended["status"], ended["decided_by"]) == ("cancelled", None)
    assert "Se retuvo el aviso de la transferencia" in ended["decision_reason"]
    assert "The transfer's request was withheld" in ended["decision_reason"]
    [entry] = ended_entries(hub, "record_transferred")
    assert (entry["reason_code"], entry["target"]) == ("notice_withheld", {"agency_id": CLINIC})
    # Untold: the clinic cannot find it, nor answer it.
    assert shares(hub, CLINIC, "received") == []
    assert hub.post(CLINIC, f"/v1/transfers/{first}/accept", {}).status_code == 404
    # Ended: the sender has nothing to withdraw, and the record is free for a new transfer.
    withdrawn = hub.post(OWNER, f"/v1/transfers/{first}/withdraw", {})
    assert withdrawn.status_code == 409, withdrawn.get_json()
    assert withdrawn.get_json()["share_status"] == "cancelled"
    consent_again(hub, record_id)
    again = transfer(hub, record_id)
    assert again.status_code == 201, again.get_json()
    sent, _ = run_worker(hub)
    assert sent.sent == [(CLINIC, "transfer.requested")]
    second = again.get_json()["id"]
    assert [share["id"] for share in shares(hub, CLINIC, "received")] == [second]
    assert hub.post(CLINIC, f"/v1/transfers/{second}/accept", {}).status_code == 200
    assert hub.owner_of(record_id) == CLINIC


def test_a_share_whose_notice_may_have_reached_its_recipient_stays(hub: Hub) -> None:
    """Tried once with no answer: the clinic may have it. Withheld at its next turn, the
    referral stays, as the clinic was told: listed to it, and still a duplicate."""
    record_id = hub.push()
    share_id = refer(hub, record_id).get_json()["id"]
    assert deliver_with(hub, Unanswered()).retrying == 1
    assert CLINIC in revoke(hub, record_id)
    due_now(hub)
    sent, result = run_worker(hub)
    assert sent.sent == [(CLINIC, "consent.revoked")] and result.withheld == 1

    assert sent_share(hub, share_id)["status"] == "accepted"
    assert [share["id"] for share in shares(hub, CLINIC, "received")] == [share_id]
    assert refer(hub, record_id).status_code == 409
    assert ended_entries(hub, "record_referred") == []


def test_a_transfer_answered_before_its_request_was_withheld_does_not_end(hub: Hub) -> None:
    """The clinic found the transfer (its request was still queued) and refused it: its
    request is withheld as no longer pending, and the refusal stands."""
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    rejected = hub.post(CLINIC, f"/v1/transfers/{share_id}/reject", {"reason": "Sin cupo."})
    assert rejected.status_code == 200, rejected.get_json()
    sent, result = run_worker(hub)
    assert sent.sent == [(OWNER, "transfer.rejected")] and result.withheld == 1
    assert sent_share(hub, share_id)["status"] == "rejected"
    assert ended_entries(hub, "record_transferred") == []


# --- 2. an attempt that certainly sent nothing did not reach the agency ----------------------


def test_a_refused_connection_then_a_withheld_notice_told_the_agency_nothing(hub: Hub) -> None:
    """The checker's case: the receiver is down (connection refused), then consent is revoked.
    The referral was never received: not listed to the clinic, no read, and it ends."""
    set_webhook(hub, CLINIC, f"http://127.0.0.1:{closed_port()}/hook")
    record_id = hub.push()
    share_id = refer(hub, record_id).get_json()["id"]
    with hub.app.app_context():
        transport = AgencyTransports.for_hub(hub.app)
    assert deliver_with(hub, transport).retrying == 1
    tried = notice(hub, "record.referred")
    assert (tried.status, tried.attempts, tried.maybe_reached) == ("failed", 1, False)
    assert "ConnectionRefusedError" in (tried.last_error or "")
    # Still queued for the worker: the clinic may yet be told, so it is shown.
    assert [share["id"] for share in shares(hub, CLINIC, "received")] == [share_id]

    revoke(hub, record_id)
    due_now(hub)
    sent, result = run_worker(hub)
    assert (CLINIC, "record.referred") not in sent.sent and result.withheld == 1
    withheld = notice(hub, "record.referred")
    assert (withheld.status, withheld.attempts, withheld.maybe_reached) == ("withheld", 2, False)
    assert not may_have_reached(withheld)
    assert shares(hub, CLINIC, "received") == []
    assert hub.read(CLINIC, record_id, PURPOSE).status_code == 404
    assert sent_share(hub, share_id)["status"] == "cancelled"


def test_a_revocation_does_not_tell_an_agency_only_a_refused_attempt_was_made_for(
    hub: Hub,
) -> None:
    set_webhook(hub, CLINIC, f"http://127.0.0.1:{closed_port()}/hook")
    record_id = hub.push()
    refer(hub, record_id)
    with hub.app.app_context():
        transport = AgencyTransports.for_hub(hub.app)
    assert deliver_with(hub, transport).retrying == 1
    assert CLINIC not in revoke(hub, record_id)


def test_a_revocation_tells_an_agency_a_later_attempt_reached(hub: Hub) -> None:
    """Refused first, delivered on the next turn: the referral reached the clinic."""
    set_webhook(hub, CLINIC, f"http://127.0.0.1:{closed_port()}/hook")
    record_id = hub.push()
    refer(hub, record_id)
    with hub.app.app_context():
        transport = AgencyTransports.for_hub(hub.app)
    assert deliver_with(hub, transport).retrying == 1
    due_now(hub)
    sent, _ = run_worker(hub)
    assert sent.sent == [(CLINIC, "record.referred")]
    assert CLINIC in revoke(hub, record_id)


def test_a_revocation_tells_an_agency_an_unanswered_attempt_may_have_reached(hub: Hub) -> None:
    record_id = hub.push()
    refer(hub, record_id)
    assert deliver_with(hub, Unanswered()).retrying == 1
    assert CLINIC in revoke(hub, record_id)


def test_a_withdrawal_is_not_sent_after_a_request_whose_only_try_was_refused(hub: Hub) -> None:
    set_webhook(hub, CLINIC, f"http://127.0.0.1:{closed_port()}/hook")
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    with hub.app.app_context():
        transport = AgencyTransports.for_hub(hub.app)
    assert deliver_with(hub, transport).retrying == 1
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    due_now(hub)
    sent, result = run_worker(hub)
    assert sent.sent == [] and result.withheld == 2  # the stale request, and its withdrawal
    assert statuses(hub, CLINIC) == {
        "transfer.requested": "withheld",
        "transfer.withdrawn": "withheld",
    }
    assert "never reached" in (notice(hub, "transfer.withdrawn").last_error or "")


def test_a_withdrawal_is_sent_after_a_request_that_timed_out(hub: Hub) -> None:
    """The contrast: a try with no answer may have reached the clinic."""
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    assert deliver_with(hub, Unanswered()).retrying == 1
    assert notice(hub, "transfer.requested").maybe_reached
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    due_now(hub)
    sent, _ = run_worker(hub)
    assert sent.sent == [(CLINIC, "transfer.withdrawn")]


def test_a_drop_folder_that_cannot_be_made_sends_nothing(hub: Hub) -> None:
    """A file where the clinic's drop folder should be: nothing was written."""
    set_webhook(hub, CLINIC, "file-drop")
    root = file_drop_root(hub.app)
    root.mkdir(parents=True, exist_ok=True)
    (root / CLINIC).write_text("not a folder")
    record_id = hub.push()
    refer(hub, record_id)
    with hub.app.app_context():
        transport = AgencyTransports.for_hub(hub.app)
    assert deliver_with(hub, transport).retrying == 1
    tried = notice(hub, "record.referred")
    assert (tried.status, tried.maybe_reached) == ("failed", False)


def test_a_disabled_agency_was_sent_nothing(hub: Hub) -> None:
    record_id = hub.push()
    refer(hub, record_id)
    with db.database(hub.app).sessions.begin() as session:
        session.get_one(Agency, CLINIC).active = False
    assert deliver_with(hub, Unanswered()).dead == 1
    dead = notice(hub, "record.referred")
    assert (dead.status, dead.maybe_reached) == ("dead", False)


def test_a_delivered_notice_reached_the_agency(hub: Hub) -> None:
    record_id = hub.push()
    refer(hub, record_id)
    run_worker(hub)
    delivered = notice(hub, "record.referred")
    assert (delivered.status, delivered.maybe_reached) == ("delivered", True)


def test_a_held_notice_handed_out_may_have_reached_the_agency(hub: Hub) -> None:
    record_id = hub.push()
    refer(hub, record_id, to=SHELTER)
    assert notice(hub, "record.referred", SHELTER).maybe_reached is False
    assert inbox(hub, SHELTER) == ["record.referred"]
    handed = notice(hub, "record.referred", SHELTER)
    assert (handed.status, handed.attempts, handed.maybe_reached) == ("held", 1, True)


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    """``outer`` as if raised from ``cause`` while handling it, as the transports raise."""
    outer.__cause__ = outer.__context__ = cause
    return outer


def _urlerror(reason: BaseException) -> BaseException:
    """What urllib raises when opening the connection fails with ``reason``."""
    return _chained(urllib.error.URLError(reason), reason)


@pytest.mark.parametrize(
    ("error", "nothing"),
    [
        (
            _chained(TransientDeliveryError("refused"), _urlerror(ConnectionRefusedError(111))),
            True,
        ),
        (
            _chained(
                TransientDeliveryError("no such host"),
                _urlerror(socket.gaierror(-2, "Name or service not known")),
            ),
            True,
        ),
        (_chained(TransientDeliveryError("refused"), ConnectionRefusedError(111)), True),
        (TransientDeliveryError("TimeoutError: no complete answer", unreachable=True), False),
        (_chained(TransientDeliveryError("reset"), _urlerror(ConnectionResetError(104))), False),
        (TransientDeliveryError("HTTP 503"), False),
        (PermanentDeliveryError("HTTP 410"), False),
        (RuntimeError("a transport's own bug"), False),
    ],
    ids=[
        "refused",
        "name not found",
        "refused, unwrapped",
        "timeout",
        "reset",
        "503",
        "410",
        "bug",
    ],
)
def test_what_certainly_sent_nothing(error: BaseException, nothing: bool) -> None:
    message = OutboxMessage(id="msg_x", kind="record.referred", payload={})
    agency = Agency(id=CLINIC, webhook_url="https://tapachula.example/hooks", active=True)
    assert sent_nothing(error, message, agency) is nothing


def test_what_certainly_sent_nothing_by_the_agency_or_the_error_itself(tmp_path: Path) -> None:
    message = OutboxMessage(id="msg_x", kind="record.referred", payload={})
    answered = PermanentDeliveryError("HTTP 410")
    webhook = "https://tapachula.example/hooks"
    assert sent_nothing(answered, message, None)  # unknown agency: the outbox sent nothing
    assert sent_nothing(answered, message, Agency(id=CLINIC, webhook_url=webhook, active=False))
    assert sent_nothing(answered, message, Agency(id=CLINIC, webhook_url=None, active=True))
    agency = Agency(id=CLINIC, webhook_url=webhook, active=True)
    said = TransientDeliveryError("HTTP 503")
    said.nothing_sent = True  # type: ignore[attr-defined]
    assert sent_nothing(said, message, agency)
    said.nothing_sent = False  # type: ignore[attr-defined]
    refused = _chained(said, ConnectionRefusedError(111))
    assert not sent_nothing(refused, message, agency)  # the transport knows best
    # A message to a peer hub has no agency of this hub: only its error speaks.
    to_peer = OutboxMessage(id="msg_y", kind="consent.revoked", payload={}, peer_hub="mx.peer")
    assert not sent_nothing(answered, to_peer, None)
    # The file drop: a failure on a path that is no folder came before the file was placed;
    # one on the folder itself (syncing it after the rename) may come after.
    drop = Agency(id=CLINIC, webhook_url="file-drop", active=True)
    folder = tmp_path / CLINIC
    folder.mkdir()
    temporary = folder / ".20260101T000000.000000Z-msg_x.jwt.tmp"
    unwritable = _chained(
        TransientDeliveryError("cannot write"), PermissionError(13, "no", str(temporary))
    )
    assert sent_nothing(unwritable, message, drop)
    syncing = _chained(
        TransientDeliveryError("cannot write"), PermissionError(13, "no", str(folder))
    )
    assert not sent_nothing(syncing, message, drop)
    full = _chained(TransientDeliveryError("cannot write"), OSError(28, "No space left on device"))
    assert not sent_nothing(full, message, drop)


# --- the rule in SQL is the rule in Python ---------------------------------------------------

#: (notice status, attempts, maybe_reached) -> told. ``None``: no notice.
CASES: dict[str, tuple[str | None, int, bool, bool]] = {
    "queued": ("pending", 0, False, True),
    "refused once, due again": ("failed", 1, False, True),
    "timed out, due again": ("failed", 1, True, True),
    "delivered": ("delivered", 1, True, True),
    "handed out": ("held", 1, True, True),
    "withheld at its first turn": ("withheld", 1, False, False),
    "withheld after a refused try": ("withheld", 2, False, False),
    "withheld after a timeout": ("withheld", 2, True, True),
    "dead, every try refused": ("dead", 12, False, False),
    "dead after a timeout": ("dead", 12, True, True),
    "no notice": (None, 0, False, True),
}


def test_the_sql_rule_agrees_with_told_shares(hub: Hub) -> None:
    record_id = hub.push(consent=False)
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        ids: dict[str, str] = {}
        for name, (status, attempts, reached, _told) in CASES.items():
            share = RecordShare(
                record_id=record_id,
                from_agency=OWNER,
                agency_id=CLINIC,
                kind="transfer",
                status="cancelled",
                purpose="case_management",
                categories=[],
                decided_by=OWNER,
                decided_at=datetime.now(UTC),
            )
            session.add(share)
            session.flush()
            ids[name] = share.id
            if status is not None:
                message = enqueue(
                    session,
                    CLINIC,
                    "transfer.requested",
                    {"share_id": share.id, "record_id": record_id},
                )
                message.status, message.attempts, message.maybe_reached = status, attempts, reached
        session.commit()

        rows = session.scalars(select(RecordShare).where(RecordShare.id.in_(ids.values())))
        by_python = told_shares(session, CLINIC, rows)
        by_sql = set(session.scalars(select(RecordShare.id).where(told_to_recipient())))
        expected = {ids[name] for name, case in CASES.items() if case[3]}
        assert by_python == expected
        assert by_sql == expected


# --- migration 0025 counts existing messages as before ---------------------------------------


def test_0025_counts_existing_messages_as_before(tmp_path: Path, database_url: str) -> None:
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": tmp_path / "instance", "DATABASE_URL": database_url}
    )
    rows = {  # id: (status, attempts) -> may have reached, by the rule of before
        "msg_delivered": ("delivered", 1, True),
        "msg_queued": ("pending", 0, False),
        "msg_failed": ("failed", 1, True),
        "msg_read": ("held", 1, True),
        "msg_unread": ("held", 0, False),
        "msg_withheld_first": ("withheld", 1, False),
        "msg_withheld_later": ("withheld", 2, True),
        "msg_dead_untried": ("dead", 0, False),
        "msg_dead": ("dead", 3, True),
    }
    try:
        db.upgrade(app, "0024")
        engine = db.database(app).engine
        insert = text(
            "INSERT INTO outbox_message (id, peer_hub, kind, payload, status, attempts, "
            "next_attempt_at, created_at) VALUES (:id, 'mx.peer', 'consent.revoked', '{}', "
            ":status, :attempts, :at, :at)"
        )
        at = datetime(2026, 11, 1, tzinfo=UTC)
        with engine.begin() as connection:
            for message_id, (status, attempts, _reached) in rows.items():
                connection.execute(
                    insert, {"id": message_id, "status": status, "attempts": attempts, "at": at}
                )
        db.upgrade(app)
        with engine.begin() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            found = dict(
                connection.execute(text("SELECT id, maybe_reached FROM outbox_message")).all()
            )
            # A message added since gets the default, and its number (the 0020 trigger kept).
            connection.execute(
                insert, {"id": "msg_new", "status": "pending", "attempts": 0, "at": at}
            )
            new = connection.execute(
                text("SELECT seq, maybe_reached FROM outbox_message WHERE id = 'msg_new'")
            ).one()
        assert {key: bool(value) for key, value in found.items()} == {
            key: reached for key, (_status, _attempts, reached) in rows.items()
        }
        assert new[0] == len(rows) + 1 and not new[1]
        db.upgrade(app, "0024")  # and back
        db.upgrade(app)
    finally:
        db.database(app).engine.dispose()
