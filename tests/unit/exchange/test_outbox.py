"""The delivery outbox: enqueue in the caller's transaction, claim with leases, retry with
backoff, dead after too many attempts (kept), and the signed webhook transport's contract."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import OKPKey
from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError

from exchange import create_app, db, outbox_delivery
from exchange.agencies import Agency
from exchange.auth import as_utc, utcnow
from exchange.logs import JsonFormatter
from exchange.outbox import OutboxMessage, claim_batch, enqueue, requeue
from exchange.outbox_delivery import (
    BatchResult,
    DeliveryPolicy,
    backoff_seconds,
    deliver_batch,
    run_worker,
    worker_lease_seconds,
)
from exchange.transports import (
    SET_MEDIA_TYPE,
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookTransport,
    hub_signing_public_jwk,
)
from tests.conftest import BACKENDS, backend_database, make_hub

FAST = DeliveryPolicy(max_attempts=3, backoff_seconds=10, backoff_max_seconds=100, lease_seconds=60)


def add_agency(
    app: Flask, agency_id: str, webhook_url: str | None = "http://127.0.0.1:9/x"
) -> None:
    with db.database(app).sessions.begin() as session:
        session.add(
            Agency(
                id=agency_id,
                name=agency_id,
                level="state",
                jurisdiction="07",
                scope="records:read",
                active=True,
                require_signature=False,
                webhook_url=webhook_url,
            )
        )


def enqueue_messages(app: Flask, agency_id: str, count: int) -> list[str]:
    with db.database(app).sessions.begin() as session:
        return [
            enqueue(session, agency_id, "record.referred", {"record_id": f"rec_{n}"}).id
            for n in range(count)
        ]


def message(app: Flask, message_id: str) -> OutboxMessage:
    with db.database(app).sessions() as session:
        found = session.get(OutboxMessage, message_id)
        assert found is not None
        return found


class ScriptedTransport:
    """Answers each delivery with the next scripted outcome (None = delivered)."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.seen: list[str] = []

    def deliver(self, agency: Agency, message: OutboxMessage) -> None:
        self.seen.append(message.id)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome


@pytest.fixture(scope="module", params=BACKENDS)
def module_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """One migrated hub per backend for this module (migrating per test would dominate its
    run time); ``hub`` empties the outbox between tests."""
    folder = tmp_path_factory.mktemp("outbox")
    with backend_database(request.param, folder) as url:
        app = make_hub(folder, url)
        add_agency(app, "mx.test.receiver")
        yield app
        app.extensions["puente.db"].engine.dispose()


@pytest.fixture
def hub(module_hub: Flask) -> Flask:
    with db.database(module_hub).sessions.begin() as session:
        session.execute(delete(OutboxMessage))
        session.get_one(Agency, "mx.test.receiver").active = True
    return module_hub


def test_enqueue_belongs_to_the_callers_transaction(hub: Flask) -> None:
    with db.database(hub).sessions() as session:
        enqueue(session, "mx.test.receiver", "record.referred", {"record_id": "rec_1"})
        session.rollback()
    with db.database(hub).sessions() as session:
        assert session.scalars(select(OutboxMessage)).all() == []
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    stored = message(hub, message_id)
    assert (stored.status, stored.attempts, stored.payload) == (
        "pending",
        0,
        {"record_id": "rec_0"},
    )


def test_claim_leases_due_messages_once(hub: Flask) -> None:
    ids = enqueue_messages(hub, "mx.test.receiver", 5)
    sessions = db.database(hub).sessions
    with sessions() as first_worker, sessions() as second_worker:
        first = claim_batch(first_worker, 3)
        second = claim_batch(second_worker, 10)
        third = claim_batch(second_worker, 10)
    assert len(first) == 3 and len(second) == 2 and third == []
    assert sorted(m.id for m in first + second) == sorted(ids)
    assert all(m.attempts == 0 and m.lease_token for m in first + second)


def test_a_crashed_workers_claims_expire(hub: Flask) -> None:
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    sessions = db.database(hub).sessions
    with sessions() as session:
        [claimed] = claim_batch(session, 10)
        first_token = claimed.lease_token
        assert claim_batch(session, 10) == []
        # The worker dies; time passes beyond its lease.
        session.execute(update(OutboxMessage).values(lease_until=utcnow() - timedelta(seconds=1)))
        session.commit()
        [again] = claim_batch(session, 10)
    assert again.id == message_id and again.lease_token not in (None, first_token)
    assert again.attempts == 0


def test_messages_not_yet_due_are_not_claimed(hub: Flask) -> None:
    enqueue_messages(hub, "mx.test.receiver", 1)
    with db.database(hub).sessions() as session:
        session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() + timedelta(minutes=5))
        )
        session.commit()
        assert claim_batch(session, 10) == []


def test_delivered_message_is_marked_and_not_delivered_again(hub: Flask) -> None:
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    transport = ScriptedTransport(None)
    with db.database(hub).sessions() as session:
        result = deliver_batch(session, transport, FAST)
        assert result.delivered == 1
        assert deliver_batch(session, transport, FAST).handled == 0
    stored = message(hub, message_id)
    assert stored.status == "delivered" and stored.delivered_at is not None
    assert stored.lease_token is None and transport.seen == [message_id]


def test_transient_failure_is_retried_with_backoff_then_dead_but_kept(hub: Flask) -> None:
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    down = TransientDeliveryError("ConnectionRefusedError: refused")
    transport = ScriptedTransport(down, down, down)
    sessions = db.database(hub).sessions
    for attempt in (1, 2):
        before = utcnow()
        with sessions() as session:
            assert deliver_batch(session, transport, FAST).retrying == 1
        stored = message(hub, message_id)
        assert (stored.status, stored.attempts) == ("failed", attempt)
        delay = (as_utc(stored.next_attempt_at) - before).total_seconds()
        expected = 10 * 2 ** (attempt - 1)
        assert expected / 2 - 1 <= delay <= expected + 1, delay
        assert "refused" in (stored.last_error or "")
        with sessions() as session:  # not due yet: nobody takes it
            assert claim_batch(session, 10) == []
            session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
            session.commit()
    with sessions() as session:
        assert deliver_batch(session, transport, FAST).dead == 1
        session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
        session.commit()
        assert claim_batch(session, 10) == []
    stored = message(hub, message_id)
    assert (stored.status, stored.attempts) == ("dead", 3)
    # Dead is visible and can be requeued by an operator; nothing is deleted.
    with sessions.begin() as session:
        assert requeue(session) == 1
    with sessions() as session:
        assert deliver_batch(session, ScriptedTransport(None), FAST).delivered == 1


def test_retry_after_from_the_receiver_is_honoured(hub: Flask) -> None:
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    before = utcnow()
    with db.database(hub).sessions() as session:
        deliver_batch(session, ScriptedTransport(TransientDeliveryError("429", 90)), FAST)
    delay = (as_utc(message(hub, message_id).next_attempt_at) - before).total_seconds()
    assert 89 <= delay <= 101


def test_permanent_failure_is_dead_at_once(hub: Flask) -> None:
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    with db.database(hub).sessions() as session:
        result = deliver_batch(session, ScriptedTransport(PermanentDeliveryError("HTTP 410")), FAST)
    assert result.dead == 1
    stored = message(hub, message_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("dead", 1, "HTTP 410")


def test_disabled_agency_gets_nothing(hub: Flask) -> None:
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    with db.database(hub).sessions.begin() as session:
        session.get_one(Agency, "mx.test.receiver").active = False
    transport = ScriptedTransport(None)
    with db.database(hub).sessions() as session:
        assert deliver_batch(session, transport, FAST).dead == 1
    assert transport.seen == [] and message(hub, message_id).status == "dead"


def test_result_is_not_written_once_the_lease_was_lost(hub: Flask) -> None:
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    sessions = db.database(hub).sessions

    class SlowTransport:
        def deliver(self, agency: Agency, message: OutboxMessage) -> None:
            # Meanwhile the lease ran out and another worker claimed the message.
            with sessions() as other:
                other.execute(
                    update(OutboxMessage).values(lease_until=utcnow() - timedelta(seconds=1))
                )
                other.commit()
                assert len(claim_batch(other, 10)) == 1

    with sessions() as session:
        assert deliver_batch(session, SlowTransport(), FAST).lost_lease == 1
    stored = message(hub, message_id)
    assert stored.status == "pending" and stored.lease_token is not None


def test_a_stopping_worker_gives_back_what_it_has_not_tried(hub: Flask) -> None:
    enqueue_messages(hub, "mx.test.receiver", 3)
    stop = threading.Event()

    class StopAfterOne(ScriptedTransport):
        def deliver(self, agency: Agency, message: OutboxMessage) -> None:
            super().deliver(agency, message)
            stop.set()  # SIGTERM arrives during the first delivery

    transport = StopAfterOne()
    with db.database(hub).sessions() as session:
        result = deliver_batch(session, transport, FAST, batch=10, stop_event=stop)
        assert result.delivered == 1 and len(transport.seen) == 1
        # The other two are free at once for another worker, their attempt not counted.
        again = claim_batch(session, 10)
    assert len(again) == 2 and all(m.attempts == 0 for m in again)


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    assert backoff_seconds(1, 5, 3600, rng=lambda: 0.0) == 2.5
    assert backoff_seconds(1, 5, 3600, rng=lambda: 0.999999) == pytest.approx(5, rel=1e-3)
    assert backoff_seconds(4, 5, 3600, rng=lambda: 0.0) == 20
    assert backoff_seconds(30, 5, 3600, rng=lambda: 0.0) == 1800
    samples = {backoff_seconds(3, 5, 3600) for _ in range(50)}
    assert len(samples) > 1 and all(10 <= s <= 20 for s in samples)


def test_run_worker_once_and_until_stopped(hub: Flask) -> None:
    enqueue_messages(hub, "mx.test.receiver", 7)
    transport = ScriptedTransport()
    totals = run_worker(hub, once=True, batch=5, transport=transport)
    assert totals.delivered == 5
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(hub,),
        kwargs={"stop_event": stop, "batch": 5, "poll_seconds": 0.05, "transport": transport},
    )
    thread.start()
    enqueue_messages(hub, "mx.test.receiver", 3)
    deadline = utcnow() + timedelta(seconds=10)
    while len(transport.seen) < 10 and utcnow() < deadline:
        stop.wait(0.05)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert len(transport.seen) == len(set(transport.seen)) == 10


class CountingStop(threading.Event):
    """A stop event that records each pause the worker takes (without sleeping) and stops it
    after ``passes`` pauses."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.passes = passes
        self.pauses: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout)
        if len(self.pauses) >= self.passes:
            self.set()
        return self.is_set()


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def worker_log() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("puente.worker")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def scripted_passes(
    monkeypatch: pytest.MonkeyPatch, *outcomes: Exception | None
) -> list[Exception | None]:
    """Make each worker pass raise the next scripted error (None: an empty pass that works)."""
    script = list(outcomes)

    def one_pass(*args: Any, **kwargs: Any) -> BatchResult:
        outcome = script.pop(0) if script else None
        if outcome is not None:
            raise outcome
        return BatchResult()

    monkeypatch.setattr(outbox_delivery, "deliver_batch", one_pass)
    return script


def database_down() -> OperationalError:
    return OperationalError(
        "SELECT outbox_message.id", {}, Exception("connection failed: port 5439 refused\nDETAIL")
    )


def test_worker_backs_off_quietly_while_the_database_is_down(
    hub: Flask, monkeypatch: pytest.MonkeyPatch, worker_log: Captured
) -> None:
    down = database_down
    scripted_passes(monkeypatch, down(), down(), down(), down(), None, down(), down(), None)
    stop = CountingStop(passes=8)
    run_worker(hub, stop_event=stop, poll_seconds=0.5, transport=ScriptedTransport())
    # 0.5, 1, 2, 4 s while it is down; the normal poll once a pass works; again from 0.5.
    assert stop.pauses == [0.5, 1, 2, 4, 0.5, 0.5, 1, 0.5]
    failures = [r for r in worker_log.records if "outbox pass failed" in r.getMessage()]
    assert len(failures) == 6
    for record in failures:
        assert record.exc_info is None  # one line, no traceback
        line = JsonFormatter().format(record)
        assert "\n" not in line and "exception" not in json.loads(line)
        assert "Traceback" not in line
    assert "the database cannot be used (connection failed: port 5439 refused)" in (
        failures[0].getMessage()
    )
    assert "next attempt in 0.5 s" in failures[0].getMessage()
    assert "next attempt in 4.0 s" in failures[3].getMessage()


def test_worker_backoff_has_a_ceiling_and_other_errors_keep_their_traceback(
    hub: Flask, monkeypatch: pytest.MonkeyPatch, worker_log: Captured
) -> None:
    down = database_down
    scripted_passes(monkeypatch, down(), down(), down(), RuntimeError("a bug"), down())
    stop = CountingStop(passes=5)
    run_worker(hub, stop_event=stop, poll_seconds=20, transport=ScriptedTransport())
    assert stop.pauses == [20, 40, 60, 60, 60]
    [bug] = [r for r in worker_log.records if r.exc_info is not None]
    assert bug.exc_info is not None and isinstance(bug.exc_info[1], RuntimeError)
    assert "Traceback" in JsonFormatter().format(bug)
    assert sum(r.exc_info is None for r in worker_log.records if "failed" in r.getMessage()) == 4


# --- the signed webhook transport --------------------------------------------------------


class Receiver(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, dict[str, str]]]] = []
    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), body))
        status, headers = self.answers.pop(0) if self.answers else (202, {})
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("ScriptedReceiver", (Receiver,), {"answers": [], "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/puente", handler
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def signing_hub(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """A hub with only a signing key (the webhook transport needs no database)."""
    instance = tmp_path_factory.mktemp("instance")
    key = OKPKey.generate_key("Ed25519").as_pem(private=True).decode()
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": instance,
            "DATABASE_URL": f"sqlite:///{instance / 'unused.db'}",
            "HUB_SIGNING_KEY": key,
        }
    )


def webhook_case(url: str) -> tuple[Agency, OutboxMessage]:
    agency = Agency(id="mx.test.receiver", name="r", level="state", jurisdiction="07")
    agency.webhook_url = url
    note = OutboxMessage(
        id="msg_0123", agency_id=agency.id, kind="record.referred", payload={"record_id": "rec_9"}
    )
    return agency, note


def test_webhook_posts_a_security_event_token_signed_by_the_hub(
    signing_hub: Flask, receiver: tuple[str, type[Receiver]]
) -> None:
    url, handler = receiver
    WebhookTransport(signing_hub).deliver(*webhook_case(url))
    [(path, headers, body)] = handler.received
    assert path == "/hooks/puente" and headers["Content-Type"] == SET_MEDIA_TYPE
    public = OKPKey.import_key(hub_signing_public_jwk(signing_hub))
    token = jwt.decode(body.decode(), public, algorithms=["EdDSA"])
    assert token.header["typ"] == "secevent+jwt"
    assert token.header["kid"] == hub_signing_public_jwk(signing_hub)["kid"]
    assert token.claims["aud"] == "mx.test.receiver" and token.claims["jti"] == "msg_0123"
    assert token.claims["iss"] == signing_hub.config["HUB_ID"]
    assert token.claims["events"] == {
        "https://puente.mx/events/record.referred": {"record_id": "rec_9"}
    }
    other = OKPKey.generate_key("Ed25519")
    with pytest.raises(BadSignatureError):
        jwt.decode(body.decode(), other, algorithms=["EdDSA"])


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (500, {}, TransientDeliveryError, None),
        (503, {"Retry-After": "30"}, TransientDeliveryError, 30.0),
        (429, {"Retry-After": "7"}, TransientDeliveryError, 7.0),
        (408, {}, TransientDeliveryError, None),
        (400, {}, PermanentDeliveryError, None),
        (404, {}, PermanentDeliveryError, None),
        (302, {"Location": "http://127.0.0.1:9/elsewhere"}, PermanentDeliveryError, None),
    ],
)
def test_webhook_status_decides_retry(
    signing_hub: Flask,
    receiver: tuple[str, type[Receiver]],
    status: int,
    headers: dict[str, str],
    error: type[Exception],
    retry_after: float | None,
) -> None:
    url, handler = receiver
    handler.answers.append((status, headers))
    with pytest.raises(error) as raised:
        WebhookTransport(signing_hub).deliver(*webhook_case(url))
    assert str(status) in str(raised.value)
    if retry_after is not None:
        assert raised.value.retry_after == retry_after  # type: ignore[attr-defined]
    assert len(handler.received) == 1  # a redirect is not followed


def test_webhook_unreachable_or_slow_is_transient(signing_hub: Flask) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(TransientDeliveryError):
        WebhookTransport(signing_hub).deliver(*webhook_case(f"http://127.0.0.1:{port}/"))
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(TransientDeliveryError):
            WebhookTransport(signing_hub, timeout=0.3).deliver(*webhook_case(url))


def test_webhook_without_an_address_is_permanent(signing_hub: Flask) -> None:
    agency, note = webhook_case("")
    agency.webhook_url = None
    with pytest.raises(PermanentDeliveryError):
        WebhookTransport(signing_hub).deliver(agency, note)
    agency.webhook_url = "file:///etc/passwd"
    with pytest.raises(PermanentDeliveryError):
        WebhookTransport(signing_hub).deliver(agency, note)


# --- the command line ----------------------------------------------------------------------


def test_operator_lists_and_requeues_dead_messages(
    hub: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from exchange.cli import main

    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", hub.config["DATABASE_URL"])
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    with db.database(hub).sessions() as session:
        deliver_batch(session, ScriptedTransport(PermanentDeliveryError("HTTP 410")), FAST)
    runner = CliRunner()
    # Nothing of a state: said in words (and no line with --json, as NDJSON of nothing is).
    none = runner.invoke(main, ["outbox", "list", "--status", "delivered"])
    assert none.stdout == "no messages / ningún mensaje\n"
    assert runner.invoke(main, ["outbox", "list", "--status", "delivered", "--json"]).stdout == ""

    listed = runner.invoke(main, ["outbox", "list", "--status", "dead", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["status"], row["last_error"]) == (message_id, "dead", "HTTP 410")
    assert runner.invoke(main, ["outbox", "retry"]).exit_code == 2  # names nothing
    retried = runner.invoke(main, ["outbox", "retry", message_id])
    assert retried.exit_code == 0 and "1" in retried.stdout
    assert message(hub, message_id).status == "pending"
    # The worker then tries it again: the receiver (port 9, discard) is not there.
    worked = runner.invoke(main, ["worker", "--once"])
    assert worked.exit_code == 0, worked.output
    stored = message(hub, message_id)
    assert (stored.status, stored.attempts) == ("failed", 1)


def test_retry_names_unknown_ids_and_still_requeues_the_known_ones(
    hub: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from exchange.cli import main

    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", hub.config["DATABASE_URL"])
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    with db.database(hub).sessions() as session:
        deliver_batch(session, ScriptedTransport(PermanentDeliveryError("HTTP 410")), FAST)
    assert message(hub, message_id).status == "dead"
    runner = CliRunner()

    retried = runner.invoke(
        main, ["outbox", "retry", "msg_nonexistent", message_id, "--lang", "en"]
    )
    assert retried.exit_code == 1, retried.output
    assert "Traceback" not in retried.output
    assert "There is no outbox message msg_nonexistent." in retried.output
    assert message_id not in retried.stderr
    assert message(hub, message_id).status == "pending"  # the known one is still retried

    alone = runner.invoke(main, ["outbox", "retry", "msg_nope1", "msg_nope2", "--lang", "es"])
    assert alone.exit_code == 1
    assert alone.stdout == ""
    assert "No existen los mensajes msg_nope1, msg_nope2" in alone.stderr

    # A known message that is not dead or failed needs no retry: not an error, but said.
    known = runner.invoke(main, ["outbox", "retry", message_id, "--lang", "en"])
    assert known.exit_code == 0
    assert known.stdout == f"0 reencolados / requeued\n{message_id}: pending; nothing to retry\n"


def test_each_delivery_renews_its_lease_so_a_lease_covers_one_delivery(hub: Flask) -> None:
    """A batch is claimed at once but delivered one message after another: each delivery holds
    its message for a whole lease from when it starts, and a message whose claim ran out while
    it waited (no other worker took it) is still delivered, once."""
    ids = enqueue_messages(hub, "mx.test.receiver", 3)
    sessions = db.database(hub).sessions
    held: dict[str, tuple[datetime, datetime]] = {}

    class SlowTransport:
        def deliver(self, agency: Agency, message: OutboxMessage) -> None:
            with sessions() as other:
                stored = other.get_one(OutboxMessage, message.id)
                held[message.id] = (as_utc(stored.lease_until), utcnow())  # type: ignore[arg-type]
                # The claim of the messages still waiting runs out while this one is sent.
                other.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id != message.id, OutboxMessage.status == "pending")
                    .values(lease_until=utcnow() - timedelta(seconds=1))
                )
                other.commit()

    with sessions() as session:
        result = deliver_batch(session, SlowTransport(), FAST)
    assert (result.delivered, result.lost_lease) == (3, 0)
    for lease_until, seen_at in held.values():
        assert timedelta(seconds=55) < lease_until - seen_at <= timedelta(seconds=60)
    assert sorted(held) == sorted(ids)
    assert {message(hub, i).status for i in ids} == {"delivered"}


def test_a_workers_lease_is_one_delivery_not_a_batch(hub: Flask) -> None:
    # The webhook and federation timeouts are 10 s by default.
    assert worker_lease_seconds(hub, 5) == 40
    assert worker_lease_seconds(hub, 120) == 120


def test_the_list_shows_a_message_a_worker_holds(
    hub: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that died holding a message leaves it ``failed`` (its last attempt) with a due
    time in the past: the list says it is held, and until when."""
    from click.testing import CliRunner

    from exchange.cli import main

    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", hub.config["DATABASE_URL"])
    [message_id] = enqueue_messages(hub, "mx.test.receiver", 1)
    with db.database(hub).sessions() as session:
        [claimed] = claim_batch(session, 10, lease_seconds=60)
    listed = CliRunner().invoke(main, ["outbox", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"leased_until={as_utc(claimed.lease_until).isoformat()}" in listed.stdout  # type: ignore[arg-type]
    [row] = [
        json.loads(line)
        for line in CliRunner().invoke(main, ["outbox", "list", "--json"]).stdout.splitlines()
    ]
    assert row["id"] == message_id and row["lease_until"] is not None
