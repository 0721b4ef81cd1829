"""Delivery as an outside tester found it wanting: polling ``GET /v1/notifications`` loses
nothing, hands out nothing delivery would withhold; a transfer's withdrawal follows a request
that may have arrived; one receiver that hangs does not hold up the others; webhook addresses
that can never work are refused (and die at once if already stored); receiver text cannot
forge lines; the operator is told what died while an agency was disabled."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner, Result
from sqlalchemy import select, text, update
from test_referrals_transfers import CLINIC, OWNER, SHELTER, Hub, refer, transfer
from test_referrals_transfers import hub as transfers_hub  # noqa: F401 - a fixture

from exchange import create_app, db
from exchange.agencies import Agency, InvalidAgency, set_webhook
from exchange.cli import main
from exchange.db import Base
from exchange.outbox import OutboxMessage, enqueue
from exchange.outbox_delivery import BatchResult, DeliveryPolicy, deliver_batch
from exchange.transports import TransientDeliveryError, WebhookTransport


@pytest.fixture
def hub(transfers_hub: Hub) -> Hub:  # noqa: F811 - the imported fixture, by another name
    """The hub of tests/api/test_referrals_transfers.py: agencies with and without webhooks,
    and the consent that lets records be referred and transferred among them."""
    return transfers_hub


POLICY = DeliveryPolicy(max_attempts=5, backoff_seconds=10, backoff_max_seconds=100)


def messages(hub: Hub, kind: str | None = None) -> list[OutboxMessage]:
    with db.database(hub.app).sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.seq)
        if kind is not None:
            query = query.where(OutboxMessage.kind == kind)
        return list(session.scalars(query))


def inbox(hub: Hub, agency: str, after: str | None = None) -> list[dict[str, Any]]:
    path = "/v1/notifications" + (f"?after={after}" if after else "")
    answer = hub.client.get(path, headers=hub.headers(agency))
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["notifications"])


class Recording:
    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = fail or {}

    def deliver(self, agency: Any, message: Any) -> None:
        self.sent.append((agency.id, message.kind))
        if agency.id in self.fail:
            raise self.fail[agency.id]


def deliver_claimed(hub: Hub, transport: Any, batch: int = 50) -> BatchResult:
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        return deliver_batch(session, transport, POLICY, batch)


def cli(hub: Hub, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", hub.app.config["DATABASE_URL"])
    return CliRunner().invoke(main, list(args))


# --- 1. the cursor of GET /v1/notifications --------------------------------------------------


def test_polling_after_the_last_id_seen_misses_nothing_even_within_one_second(
    hub: Hub,
) -> None:
    """Twelve notices for an agency without a webhook, polled after each with the last id
    seen: all twelve arrive, in order, even when they share their creation time to the
    microsecond (ids are random; the cursor is the commit order)."""
    seen: list[str] = []
    last = None
    for n in range(12):
        with db.database(hub.app).sessions.begin() as session:
            enqueue(session, SHELTER, "consent.revoked", {"consent_id": f"c{n}"}, held=True)
        if n % 3 == 2:  # as if the clock stood still: the same instant for every message
            with db.database(hub.app).sessions.begin() as session:
                session.execute(
                    update(OutboxMessage).values(created_at=datetime(2026, 11, 26, tzinfo=UTC))
                )
        for notice in inbox(hub, SHELTER, last):
            seen.append(notice["payload"]["consent_id"])
            last = notice["id"]
    assert seen == [f"c{n}" for n in range(12)]


def test_created_at_keeps_microseconds(hub: Hub) -> None:
    with db.database(hub.app).sessions.begin() as session:
        for n in range(3):
            enqueue(session, SHELTER, "consent.revoked", {"consent_id": f"c{n}"}, held=True)
    stamps = [message.created_at for message in messages(hub)]
    assert any(stamp.microsecond for stamp in stamps)
    assert [m.seq for m in messages(hub)] == sorted({m.seq for m in messages(hub)})


def test_0020_numbers_existing_messages_in_their_old_order(
    tmp_path: Path, database_url: str
) -> None:
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": tmp_path / "instance", "DATABASE_URL": database_url}
    )
    try:
        db.upgrade(app, "0019")
        engine = db.database(app).engine
        insert = text(
            "INSERT INTO outbox_message (id, peer_hub, kind, payload, status, attempts, "
            "next_attempt_at, created_at) VALUES (:id, 'mx.peer', 'consent.revoked', '{}', "
            "'pending', 0, :at, :at)"
        )
        at = datetime(2026, 11, 1, tzinfo=UTC)
        with engine.begin() as connection:
            for message_id, later in (("msg_b", 0), ("msg_c", 1), ("msg_a", 0)):
                connection.execute(insert, {"id": message_id, "at": at + timedelta(seconds=later)})
        db.upgrade(app)
        with engine.begin() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            connection.execute(
                insert.bindparams(id="msg_0", at=at - timedelta(days=1))  # older, added later
            )
            numbered = connection.execute(
                text("SELECT id, seq FROM outbox_message ORDER BY seq")
            ).all()
        assert numbered == [("msg_a", 1), ("msg_b", 2), ("msg_c", 3), ("msg_0", 4)]
        db.upgrade(app, "0019")  # and back
        db.upgrade(app)
    finally:
        db.database(app).engine.dispose()


# --- 2. a withdrawal follows a request that may have reached the recipient -----------------


def _withdrawn_transfer(hub: Hub) -> str:
    record_id = hub.push()
    share_id = str(transfer(hub, record_id).get_json()["id"])
    return share_id


def _set_request(hub: Hub, **values: Any) -> None:
    with db.database(hub.app).sessions.begin() as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.kind == "transfer.requested").values(**values)
        )


def test_a_withdrawal_waits_for_a_request_being_delivered_then_goes(hub: Hub) -> None:
    share_id = _withdrawn_transfer(hub)
    # Another worker is sending the request right now (slow receiver).
    busy_until = datetime.now(UTC) + timedelta(seconds=30)
    _set_request(hub, lease_token="other", lease_until=busy_until, attempts=1)
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200

    transport = Recording()
    result = deliver_claimed(hub, transport)
    assert transport.sent == [] and result.deferred == 1 and result.withheld == 0
    [withdrawal] = messages(hub, "transfer.withdrawn")
    assert (withdrawal.status, withdrawal.attempts) == ("pending", 0)  # not an attempt
    assert abs((withdrawal.next_attempt_at.replace(tzinfo=UTC) - busy_until).total_seconds()) < 1

    # The request reached the recipient; the withdrawal then goes, after it.
    _set_request(hub, status="delivered", lease_token=None, lease_until=None)
    _set_request(hub, next_attempt_at=datetime.now(UTC))
    with db.database(hub.app).sessions.begin() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.kind == "transfer.withdrawn")
            .values(next_attempt_at=datetime.now(UTC))
        )
    deliver_claimed(hub, transport)
    assert transport.sent == [(CLINIC, "transfer.withdrawn")]


def test_a_withdrawal_is_sent_when_the_request_timed_out_after_it_may_have_arrived(
    hub: Hub,
) -> None:
    share_id = _withdrawn_transfer(hub)
    # The first attempt timed out: the receiver may have taken it and answered too late.
    slow = TransientDeliveryError("TimeoutError: no complete answer within 10 s", unreachable=True)
    first = Recording({CLINIC: slow})
    deliver_claimed(hub, first)
    [request] = messages(hub, "transfer.requested")
    assert (request.status, request.attempts) == ("failed", 1)

    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    _set_request(hub, next_attempt_at=datetime.now(UTC))
    transport = Recording()
    result = deliver_claimed(hub, transport)
    # The request is no longer worth sending; its withdrawal is, since it may have arrived.
    assert transport.sent == [(CLINIC, "transfer.withdrawn")]
    assert result.withheld == 1 and result.delivered == 1
    [request] = messages(hub, "transfer.requested")
    assert request.status == "withheld"


def test_a_withdrawal_of_a_request_never_sent_is_withheld_in_one_batch(hub: Hub) -> None:
    share_id = _withdrawn_transfer(hub)
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    transport = Recording()
    result = deliver_claimed(hub, transport)
    assert transport.sent == [] and result.withheld == 2
    assert {m.status for m in messages(hub)} == {"withheld"}


def test_a_held_withdrawal_is_read_only_if_its_request_was(hub: Hub) -> None:
    """For an agency without a webhook: the withdrawal of a transfer it read about is listed;
    of one it never read about, neither is listed."""
    seen = hub.push(local_id="EXP-SEEN")
    unseen = hub.push(local_id="EXP-UNSEEN")
    first = transfer(hub, seen, to=SHELTER).get_json()["id"]
    [notice] = inbox(hub, SHELTER)
    assert notice["event"] == "transfer.requested"
    assert hub.post(OWNER, f"/v1/transfers/{first}/withdraw", {}).status_code == 200
    second = transfer(hub, unseen, to=SHELTER).get_json()["id"]
    assert hub.post(OWNER, f"/v1/transfers/{second}/withdraw", {}).status_code == 200

    later = inbox(hub, SHELTER, notice["id"])
    assert [(n["event"], n["payload"]["share_id"]) for n in later] == [
        ("transfer.withdrawn", first)
    ]
    statuses = {(m.kind, m.payload["share_id"]): m.status for m in messages(hub)}
    assert statuses[("transfer.requested", second)] == "withheld"
    assert statuses[("transfer.withdrawn", second)] == "withheld"


# --- 3. GET /v1/notifications hands out nothing delivery would withhold ---------------------


def test_a_notification_withheld_by_consent_is_not_listed(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201  # to CLINIC, which has a webhook
    assert hub.revoke_consent(record_id).status_code == 200
    transport = Recording()
    result = deliver_claimed(hub, transport)
    # The referral is withheld, so nothing reached the clinic: no revocation notice either.
    assert result.withheld == 1 and transport.sent == []
    assert inbox(hub, CLINIC) == []


def test_a_held_notification_consent_no_longer_permits_is_withheld_when_read(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id, to=SHELTER).status_code == 201  # held: no webhook
    assert hub.revoke_consent(record_id).status_code == 200
    assert inbox(hub, SHELTER) == []  # the referral was never handed out: nothing to revoke
    [message] = messages(hub, "record.referred")
    assert message.status == "withheld"
    assert "withheld by consent decision" in (message.last_error or "")


def test_held_notifications_still_permitted_are_listed_and_dead_ones_are_not(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id, to=SHELTER).status_code == 201
    [notice] = inbox(hub, SHELTER)
    assert notice["event"] == "record.referred"
    assert notice["payload"]["record_id"] == record_id
    with db.database(hub.app).sessions.begin() as session:
        session.execute(update(OutboxMessage).values(status="dead"))
    assert inbox(hub, SHELTER) == []


# --- 4. one receiver that hangs does not hold up the others ---------------------------------


def test_an_unreachable_receivers_other_messages_wait_and_the_others_go(hub: Hub) -> None:
    with db.database(hub.app).sessions.begin() as session:
        for n in range(6):
            enqueue(session, CLINIC, "consent.revoked", {"consent_id": f"c{n}"})
        enqueue(session, OWNER, "consent.revoked", {"consent_id": "other"})
    hangs = TransientDeliveryError("TimeoutError: no complete answer", unreachable=True)
    transport = Recording({CLINIC: hangs})
    result = deliver_claimed(hub, transport)
    assert transport.sent == [(CLINIC, "consent.revoked"), (OWNER, "consent.revoked")]
    assert (result.retrying, result.delivered, result.deferred) == (1, 1, 5)
    clinic = [m for m in messages(hub) if m.agency_id == CLINIC]
    [tried] = [m for m in clinic if m.attempts]
    rest = [m for m in clinic if m is not tried]
    assert tried.status == "failed"
    assert {(m.status, m.attempts, m.lease_token) for m in rest} == {("pending", 0, None)}
    # They wait for the receiver's next attempt, not a pass each.
    assert {m.next_attempt_at for m in rest} == {tried.next_attempt_at}


def test_an_error_answer_does_not_hold_the_agencys_other_messages(hub: Hub) -> None:
    with db.database(hub.app).sessions.begin() as session:
        for n in range(3):
            enqueue(session, CLINIC, "consent.revoked", {"consent_id": f"c{n}"})
    transport = Recording({CLINIC: TransientDeliveryError("HTTP 503")})
    result = deliver_claimed(hub, transport)
    assert len(transport.sent) == 3 and result.deferred == 0


def test_a_timeout_and_a_refused_connection_say_the_receiver_is_unreachable(
    hub: Hub,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    agency = Agency(id=CLINIC, webhook_url=f"http://127.0.0.1:{port}/")
    note = OutboxMessage(id="msg_x", kind="consent.revoked", payload={})
    with pytest.raises(TransientDeliveryError) as refused:
        WebhookTransport(hub.app).deliver(agency, note)
    assert refused.value.unreachable
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        agency.webhook_url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(TransientDeliveryError) as slow:
            WebhookTransport(hub.app, timeout=0.3).deliver(agency, note)
    assert slow.value.unreachable


# --- 5, 6. webhook addresses ------------------------------------------------------------------

NEVER_WORK = [
    "http://qauser:S3cretPW@127.0.0.1:8131/hook",
    "http://127.0.0.1:abc/h",
    "http://127.0.0.1:99999/h",
    "http://exa mple.org/h",
    "http://127.0.0.1:0/h",
    "https://host.example/h\r\nX: y",
]


@pytest.mark.parametrize("url", NEVER_WORK)
def test_webhook_addresses_that_can_never_work_are_refused(hub: Hub, url: str) -> None:
    with db.database(hub.app).sessions() as session, pytest.raises(InvalidAgency) as refused:
        set_webhook(session, CLINIC, url)
    [error] = refused.value.errors
    assert error.field == "webhook_url"
    assert "S3cretPW" not in str(error)
    assert "webhook" in error.message_en and "webhook" in error.message_es
    assert error.message_es != error.message_en


def test_a_stored_malformed_webhook_is_dead_at_once_without_a_traceback(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    with db.database(hub.app).sessions.begin() as session:
        for n, url in enumerate(NEVER_WORK[:4]):
            session.get_one(Agency, CLINIC).webhook_url = url
            session.flush()
            enqueue(session, CLINIC, "consent.revoked", {"consent_id": f"c{n}"})
            session.flush()
    for url in NEVER_WORK[:4]:
        with db.database(hub.app).sessions.begin() as session:
            session.get_one(Agency, CLINIC).webhook_url = url
        with caplog.at_level(logging.INFO, logger="puente.worker"):
            deliver_claimed(hub, WebhookTransport(hub.app, timeout=2), batch=1)
    dead = messages(hub)
    assert {m.status for m in dead} == {"dead"}
    assert all("malformed webhook URL" in (m.last_error or "") for m in dead)
    assert not any("S3cretPW" in (m.last_error or "") for m in dead)
    assert not [r for r in caplog.records if r.exc_info]


def test_set_webhook_warns_of_plain_http_and_local_addresses(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_PUBLIC_URL", "https://puente.example")
    for url, warned in (
        ("http://hooks.example/h", "plain http"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::1]:8443/h", "this machine"),
        ("https://localhost:8443/h", "this machine"),
    ):
        answer = cli(hub, monkeypatch, "agency", "set-webhook", CLINIC, url, "--lang", "en")
        assert answer.exit_code == 0, answer.output
        assert warned in answer.stderr
        assert answer.stdout.startswith(f"Webhook of {CLINIC}")
    quiet = cli(hub, monkeypatch, "agency", "set-webhook", CLINIC, "https://hooks.example/h")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    spanish = cli(
        hub, monkeypatch, "agency", "set-webhook", CLINIC, "http://10.1.2.3/h", "--lang", "es"
    )
    assert "Aviso:" in spanish.stderr and "red privada" in spanish.stderr


# --- 7. what a receiver says is shown on one line --------------------------------------------


class _Refusing(http.server.BaseHTTPRequestHandler):
    body: ClassVar[bytes] = json.dumps(
        {"err": "invalid_request\r\nmsg_forged  delivered  mx.x  record.referred"}
    ).encode()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_receivers_error_text_cannot_add_lines_to_the_outbox_list(
    hub: Hub, refusing_receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.database(hub.app).sessions.begin() as session:
        session.get_one(Agency, CLINIC).webhook_url = refusing_receiver
        enqueue(session, CLINIC, "consent.revoked", {"consent_id": "c"})
    deliver_claimed(hub, WebhookTransport(hub.app, timeout=5))
    [message] = messages(hub)
    assert message.status == "dead"
    assert "\r" not in (message.last_error or "") and "\n" not in (message.last_error or "")
    assert "invalid_request\\r\\nmsg_forged" in (message.last_error or "")
    # Whatever a stored error holds (rows from before), the list shows one line per message.
    with db.database(hub.app).sessions.begin() as session:
        session.execute(update(OutboxMessage).values(last_error="boom\r\nmsg_fake  \x1b[2J"))
    listed = cli(hub, monkeypatch, "outbox", "list")
    assert listed.exit_code == 0, listed.output
    assert len(listed.stdout.splitlines()) == 1
    assert "boom\\r\\nmsg_fake  \\x1b[2J" in listed.stdout


# --- 8. what the operator is told -------------------------------------------------------------


def test_enabling_an_agency_says_what_died_while_it_was_disabled(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.database(hub.app).sessions.begin() as session:
        for n in range(2):
            enqueue(session, CLINIC, "consent.revoked", {"consent_id": f"c{n}"})
        enqueue(session, OWNER, "consent.revoked", {"consent_id": "other"})
    assert cli(hub, monkeypatch, "agency", "disable", CLINIC).exit_code == 0
    with db.database(hub.app).sessions.begin() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.agency_id == OWNER)
            .values(status="dead", last_error="HTTP 410")
        )
    deliver_claimed(hub, Recording())
    enabled = cli(hub, monkeypatch, "agency", "enable", CLINIC, "--lang", "en")
    assert enabled.exit_code == 0, enabled.output
    assert "2 notifications for it died while it was disabled" in enabled.stdout
    assert f"puente outbox retry --all-dead --agency {CLINIC}" in enabled.stdout

    retried = cli(hub, monkeypatch, "outbox", "retry", "--all-dead", "--agency", CLINIC)
    assert retried.exit_code == 0 and retried.stdout.startswith("2 ")
    statuses = {(m.agency_id, m.status) for m in messages(hub)}
    assert statuses == {(CLINIC, "pending"), (OWNER, "dead")}  # only that agency's
    alone = cli(hub, monkeypatch, "outbox", "retry", "--agency", CLINIC)
    assert alone.exit_code == 2


def test_retrying_a_message_withheld_as_stale_does_not_blame_consent(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    share_id = _withdrawn_transfer(hub)
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/reject", {}).status_code == 200
    request, _ = hub.deliver_unsent("transfer.requested")
    assert "no longer pending" in (request.last_error or "")
    spanish = cli(hub, monkeypatch, "outbox", "retry", request.id, "--lang", "es")
    assert spanish.exit_code == 0
    assert "consentimiento" not in spanish.stdout and "retenido" in spanish.stdout
    english = cli(hub, monkeypatch, "outbox", "retry", request.id, "--lang", "en")
    assert "withheld" in english.stdout
