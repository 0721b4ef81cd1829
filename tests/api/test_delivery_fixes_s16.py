"""Delivery as an outside check found it wanting (round 16): a revocation reaches an agency
disabled since it received data; switching an agency between webhook and polling moves what
waits for it; the file drop clears its own leftovers; a ``Retry-After`` date is honoured; the
worker's summary counts every outcome; ``outbox list`` refuses an unknown agency or peer and
says why deliveries failed in Spanish too; a damaged signing key stops the worker with a
message; ``after`` is pointed at like the other query parameters."""

from __future__ import annotations

import http.server
import json
import os
import string
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update
from test_referrals_transfers import CLINIC, CLOSED, OWNER, SCOPES, SHELTER, Hub, refer
from test_referrals_transfers import hub as transfers_hub  # noqa: F401 - a fixture

from exchange import db
from exchange.agencies import Agency
from exchange.auth import store_token
from exchange.cli import main
from exchange.cli.worker import _REASONS_ES, failure_reason
from exchange.outbox import DISABLED_AGENCY, OutboxMessage, enqueue, new_message_id
from exchange.outbox_delivery import BatchResult, DeliveryPolicy, deliver_batch
from exchange.transports import (
    NO_WEBHOOK,
    STALE_TEMPORARY_SECONDS,
    FileDropTransport,
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookTransport,
    _retry_after,
)


@pytest.fixture
def hub(transfers_hub: Hub) -> Hub:  # noqa: F811 - the imported fixture, by another name
    """The hub of tests/api/test_referrals_transfers.py: the owner and a clinic with webhooks,
    a shelter without, a disabled agency, and the consent that lets records be referred."""
    return transfers_hub


POLICY = DeliveryPolicy(max_attempts=5, backoff_seconds=10, backoff_max_seconds=100)


class Recording:
    """A transport that takes every message and remembers what went to whom."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def deliver(self, agency: Any, message: Any) -> None:
        self.sent.append((agency.id, message.kind, (message.payload or {}).get("consent_id")))


def deliver(hub: Hub, transport: Any | None = None) -> tuple[Recording, BatchResult]:
    """One pass of the worker through ``transport`` (a :class:`Recording` by default)."""
    transport = transport or Recording()
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        result = deliver_batch(session, transport, POLICY, 50)
    return transport, result


def messages(hub: Hub, **where: Any) -> list[OutboxMessage]:
    with db.database(hub.app).sessions() as session:
        query = select(OutboxMessage).filter_by(**where).order_by(OutboxMessage.seq)
        return list(session.scalars(query))


def by_consent(hub: Hub, agency: str) -> dict[str, OutboxMessage]:
    return {m.payload["consent_id"]: m for m in messages(hub, agency_id=agency)}


def queue(hub: Hub, agency: str, name: str, **values: Any) -> str:
    """Queue a notice for ``agency`` named by its ``consent_id``, then set ``values``."""
    with db.database(hub.app).sessions.begin() as session:
        message = enqueue(
            session, agency, "consent.revoked", {"consent_id": name}, held=values.pop("held", False)
        )
        session.flush()
        if values:
            session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values)
            )
        return message.id


def inbox(hub: Hub, agency: str, token: str | None = None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token or hub.tokens[agency]}"}
    answer = hub.client.get("/v1/notifications", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["notifications"])


def cli(hub: Hub, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", hub.app.config["DATABASE_URL"])
    return CliRunner().invoke(main, list(args))


def revoke(hub: Hub, record_id: str) -> list[str]:
    answer = hub.revoke_consent(record_id)
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["notified"])


# --- 1. a revocation reaches an agency disabled since it received data -----------------------


def test_a_disabled_agency_with_a_webhook_is_sent_the_revocation_once_enabled_and_retried(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201  # to the clinic, which has a webhook
    sent, _ = deliver(hub)
    assert [(agency, kind) for agency, kind, _ in sent.sent] == [(CLINIC, "record.referred")]
    assert hub.read(CLINIC, record_id, "health_care").status_code == 200
    assert cli(hub, monkeypatch, "agency", "disable", CLINIC).exit_code == 0

    # Notified: its notice is queued, and dies while the clinic is disabled, as any would.
    assert CLINIC in revoke(hub, record_id)
    sent, result = deliver(hub)
    assert sent.sent == [] and result.dead == 1
    [notice] = messages(hub, agency_id=CLINIC, kind="consent.revoked")
    assert (notice.status, notice.last_error) == ("dead", DISABLED_AGENCY.format(CLINIC))

    enabled = cli(hub, monkeypatch, "agency", "enable", CLINIC, "--json")
    assert enabled.exit_code == 0, enabled.output
    assert json.loads(enabled.stdout)["dead_notifications"] == 1
    retried = cli(hub, monkeypatch, "outbox", "retry", "--all-dead", "--agency", CLINIC)
    assert retried.exit_code == 0 and retried.stdout.startswith("1 "), retried.output
    sent, _ = deliver(hub)
    assert [(agency, kind) for agency, kind, _ in sent.sent] == [(CLINIC, "consent.revoked")]


def test_a_disabled_agency_without_a_webhook_reads_the_revocation_once_enabled(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_id = hub.push()
    assert refer(hub, record_id, to=SHELTER).status_code == 201
    assert [n["event"] for n in inbox(hub, SHELTER)] == ["record.referred"]
    assert cli(hub, monkeypatch, "agency", "disable", SHELTER).exit_code == 0

    assert SHELTER in revoke(hub, record_id)
    sent, _ = deliver(hub)
    assert sent.sent == []  # kept for it to read: never sent, never dead
    assert cli(hub, monkeypatch, "agency", "enable", SHELTER).exit_code == 0
    with db.database(hub.app).sessions.begin() as session:
        token, _ = store_token(session, client_id=SHELTER, scopes=SCOPES, agency_id=SHELTER)
    # (The referral, read before, is decided again as it is read: consent no longer permits it.)
    assert [n["event"] for n in inbox(hub, SHELTER, token)] == ["consent.revoked"]


# --- 2. switching between webhook and polling moves what waits --------------------------------


def test_removing_the_webhook_keeps_what_waits_for_the_agency_to_read(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=1)
    queue(hub, CLINIC, "pending")
    queue(hub, CLINIC, "leased", lease_token="another-worker", lease_until=soon, attempts=1)
    queue(hub, CLINIC, "failed", status="failed", attempts=2, last_error="HTTP 503")
    queue(hub, CLINIC, "no-webhook", status="dead", last_error=NO_WEBHOOK.format(CLINIC))
    queue(hub, CLINIC, "gone", status="dead", attempts=1, last_error="HTTP 410")
    queue(hub, CLINIC, "delivered", status="delivered", attempts=1)
    queue(hub, OWNER, "owner's", status="failed", attempts=1, last_error="HTTP 503")
    queue(hub, OWNER, "owner's-no-webhook", status="dead", last_error=NO_WEBHOOK.format(OWNER))

    answer = cli(hub, monkeypatch, "agency", "set-webhook", CLINIC, "-", "--json")
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout) == {
        "agency_id": CLINIC,
        "webhook_url": None,
        "notifications_held": 4,
        "notifications_queued": 0,
    }
    clinic = by_consent(hub, CLINIC)
    for name in ("pending", "leased", "failed", "no-webhook"):
        message = clinic[name]
        # As if queued for an agency without a webhook: its attempts will count its reads.
        assert (message.status, message.attempts, message.last_error) == ("held", 0, None)
        assert message.lease_token is None and message.lease_until is None
    assert clinic["gone"].status == "dead"  # a refusal is the administrator's to retry
    assert clinic["delivered"].status == "delivered"
    assert {m.status for m in messages(hub, agency_id=OWNER)} == {"failed", "dead"}

    with db.database(hub.app).sessions.begin() as session:  # the failed one is due now
        session.execute(update(OutboxMessage).values(next_attempt_at=datetime.now(UTC)))
    sent, _ = deliver(hub)
    assert [agency for agency, _, _ in sent.sent] == [OWNER]  # nothing pushed to the clinic
    assert [n["payload"]["consent_id"] for n in inbox(hub, CLINIC)] == [
        "pending",
        "leased",
        "failed",
        "no-webhook",
        "delivered",
    ]


def test_setting_a_webhook_sends_what_was_kept_and_never_read(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue(hub, SHELTER, "read", held=True)
    assert [n["payload"]["consent_id"] for n in inbox(hub, SHELTER)] == ["read"]
    queue(hub, SHELTER, "unread", held=True)
    queue(
        hub, SHELTER, "no-webhook", status="dead", attempts=1, last_error=NO_WEBHOOK.format(SHELTER)
    )

    answer = cli(
        hub,
        monkeypatch,
        "agency",
        "set-webhook",
        SHELTER,
        "https://shelter.example/h",
        "--lang",
        "en",
    )
    assert answer.exit_code == 0, answer.output
    assert "2 notifications for it not sent for want of a webhook" in answer.stdout
    shelter = by_consent(hub, SHELTER)
    assert (shelter["unread"].status, shelter["no-webhook"].status) == ("pending", "pending")
    assert shelter["read"].status == "held"  # handed out already: not pushed as well

    sent, _ = deliver(hub)
    assert sorted(name for _, _, name in sent.sent) == ["no-webhook", "unread"]
    assert {m.payload["consent_id"]: m.status for m in messages(hub)} == {
        "read": "held",
        "unread": "delivered",
        "no-webhook": "delivered",
    }


def test_webhook_to_polling_and_back_loses_nothing_and_says_so_in_spanish(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue(hub, CLINIC, "failed", status="failed", attempts=3, last_error="HTTP 503")
    away = cli(hub, monkeypatch, "agency", "set-webhook", CLINIC, "-", "--lang", "es")
    assert away.exit_code == 0, away.output
    assert "1 avisos para ella aún sin entregar" in away.stdout
    assert "GET /v1/notifications" in away.stdout
    back = cli(
        hub,
        monkeypatch,
        "agency",
        "set-webhook",
        CLINIC,
        "https://tapachula.example/h",
        "--lang",
        "es",
    )
    assert back.exit_code == 0, back.output
    assert "1 avisos para ella no enviados por falta de webhook" in back.stdout
    sent, _ = deliver(hub)
    assert [name for _, _, name in sent.sent] == ["failed"]
    # Nothing moved: nothing said.
    again = cli(hub, monkeypatch, "agency", "set-webhook", CLINIC, "https://tapachula.example/h")
    assert again.exit_code == 0 and len(again.stdout.splitlines()) == 1


def test_retrying_a_dead_message_of_a_polling_agency_keeps_it_for_reading(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message that died while the agency had a webhook, requeued once it has none, would
    only die again for want of one: it is kept for the agency to read."""
    gone = queue(hub, CLINIC, "gone", status="dead", attempts=1, last_error="HTTP 410")
    assert cli(hub, monkeypatch, "agency", "set-webhook", CLINIC, "-").exit_code == 0
    retried = cli(hub, monkeypatch, "outbox", "retry", gone, "--lang", "en")
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.startswith("1 ")
    assert "1 of them are kept for their agency" in retried.stdout
    [message] = messages(hub, id=gone)
    assert (message.status, message.attempts) == ("held", 0)
    sent, result = deliver(hub)
    assert sent.sent == [] and result.dead == 0
    assert [n["id"] for n in inbox(hub, CLINIC)] == [gone]


# --- 3. the file drop clears what a killed worker left ---------------------------------------


def test_the_file_drop_removes_its_own_stale_temporary_files_and_nothing_else(
    hub: Hub, tmp_path: Path
) -> None:
    root = tmp_path / "drop"
    folder = root / CLINIC
    folder.mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the hub's")
    long_ago = time.time() - STALE_TEMPORARY_SECONDS - 60
    stale = folder / ".20260101T000000.000000Z-msg_0123456789abcdef01234567.jwt.tmp"
    fresh = folder / ".20260101T000001.000000Z-msg_89abcdef0123456789abcdef.jwt.tmp"
    theirs = [
        folder / ".notes.tmp",
        folder / "20260101T000000.000000Z-msg_0123456789abcdef01234567.jwt",
        folder / ".20260101T000000.000000Z-msg_0123456789abcdef01234567.jwt.tmp.bak",
    ]
    for path in (stale, fresh, *theirs):
        path.write_text("eyJ…")
    for path in (stale, *theirs):
        os.utime(path, (long_ago, long_ago))
    link = folder / ".20260101T000002.000000Z-msg_abcdef.jwt.tmp"
    link.symlink_to(outside)
    os.utime(link, (long_ago, long_ago), follow_symlinks=False)

    transport = FileDropTransport(hub.app, root=root)
    agency = Agency(id=CLINIC, webhook_url="file-drop")
    message = OutboxMessage(id=new_message_id(), kind="consent.revoked", payload={})
    transport.deliver(agency, message)

    assert not stale.exists()
    assert fresh.exists() and link.is_symlink() and outside.exists()
    assert all(path.exists() for path in theirs)
    assert len(list(folder.glob(f"*-{message.id}.jwt"))) == 1

    # Checked again only after a while: a later leftover goes at a later write.
    later = folder / ".20260101T000003.000000Z-msg_fedcba9876543210fedcba98.jwt.tmp"
    later.write_text("eyJ…")
    os.utime(later, (long_ago, long_ago))
    transport.deliver(agency, OutboxMessage(id=new_message_id(), kind="x", payload={}))
    assert later.exists()
    transport._swept[folder.resolve()] -= STALE_TEMPORARY_SECONDS
    transport.deliver(agency, OutboxMessage(id=new_message_id(), kind="x", payload={}))
    assert not later.exists()


# --- 4. Retry-After as an HTTP date ----------------------------------------------------------


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert _retry_after("120", now) == 120
    assert _retry_after("Thu, 26 Nov 2026 12:02:00 GMT", now) == 120
    assert _retry_after("Thursday, 26-Nov-26 12:02:00 GMT", now) == 120  # RFC 850
    assert _retry_after("Thu Nov 26 12:02:00 2026", now) == 120  # asctime
    # Never negative; a date already past asks for no wait at all.
    assert _retry_after("-5", now) == 0
    assert _retry_after("Thu, 26 Nov 2026 11:00:00 GMT", now) is None
    for nothing in (None, "", "  ", "soon", "Thu, 32 Nov 2026 12:02:00 GMT"):
        assert _retry_after(nothing, now) is None


class _Busy(http.server.BaseHTTPRequestHandler):
    retry_after: ClassVar[str] = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(503)
        self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def busy_receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("ahead", "waits"), [(60, 60), (7200, 100)])
def test_a_retry_after_date_is_honoured_up_to_the_same_cap(
    hub: Hub, busy_receiver: str, monkeypatch: pytest.MonkeyPatch, ahead: int, waits: int
) -> None:
    monkeypatch.setattr(
        _Busy, "retry_after", format_datetime(datetime.now(UTC) + timedelta(seconds=ahead), True)
    )
    with db.database(hub.app).sessions.begin() as session:
        session.get_one(Agency, CLINIC).webhook_url = busy_receiver
    with pytest.raises(TransientDeliveryError) as busy:
        WebhookTransport(hub.app, timeout=5).deliver(
            Agency(id=CLINIC, webhook_url=busy_receiver),
            OutboxMessage(id=new_message_id(), kind="x", payload={}),
        )
    assert busy.value.retry_after is not None
    assert ahead - 5 <= busy.value.retry_after <= ahead

    queue(hub, CLINIC, "busy")
    before = datetime.now(UTC)
    deliver(hub, WebhookTransport(hub.app, timeout=5))
    [message] = messages(hub, agency_id=CLINIC)
    assert message.status == "failed"
    # Our own backoff (10 s at most for a first attempt) gives way to the date, capped at
    # OUTBOX_BACKOFF_MAX_SECONDS (100 s here) as the seconds form is.
    wait = (message.next_attempt_at.replace(tzinfo=UTC) - before).total_seconds()
    assert waits - 5 <= wait <= waits + 5


# --- 5. the worker's summary counts every outcome --------------------------------------------


def test_the_workers_summary_counts_what_it_withheld(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    revoke(hub, record_id)  # the referral is withheld at its turn, before any network
    queue(hub, CLOSED, "to a disabled agency")  # dead at its turn

    ran = cli(hub, monkeypatch, "worker", "--once")
    assert ran.exit_code == 0, ran.output
    [summary] = [line for line in ran.stderr.splitlines() if "entregadas / delivered" in line]
    assert summary == (
        "puente worker: entregadas / delivered 0, reintento / retrying 0, "
        "sin entregar / dead 1, retenidas / withheld 1, aplazadas / deferred 0, "
        "tomadas por otro worker / lost leases 0"
    )


# --- 6. outbox list refuses an unknown agency or peer ----------------------------------------


@pytest.mark.parametrize(
    ("option", "english", "spanish"),
    [
        ("--agency", "There is no agency 'mx.nope'.", "No existe la agencia 'mx.nope'."),
        ("--peer", "No peer hub 'mx.nope' is pinned", "No hay un nodo par 'mx.nope' registrado"),
    ],
)
def test_outbox_list_refuses_an_unknown_agency_or_peer(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, option: str, english: str, spanish: str
) -> None:
    for lang, words in (("en", english), ("es", spanish)):
        for extra in ([], ["--json"]):
            listed = cli(
                hub, monkeypatch, "outbox", "list", option, "mx.nope", "--lang", lang, *extra
            )
            assert listed.exit_code == 1, listed.output
            assert words in listed.stderr and listed.stdout == ""
    # As retry refuses it.
    retried = cli(
        hub, monkeypatch, "outbox", "retry", "--all-dead", option, "mx.nope", "--lang", "en"
    )
    assert retried.exit_code == 1 and english in retried.stderr
    known = cli(hub, monkeypatch, "outbox", "list", "--agency", SHELTER)
    assert known.exit_code == 0 and "no messages" in known.stdout


# --- 7. a damaged signing key; failure reasons in Spanish ------------------------------------


def test_a_damaged_signing_key_stops_the_worker_before_it_announces_delivery(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("garbage\n")
    monkeypatch.setenv("PUENTE_HUB_SIGNING_KEY_FILE", str(damaged))
    ran = cli(hub, monkeypatch, "worker", "--once")
    assert ran.exit_code == 1
    assert "entregando / delivering" not in ran.stderr
    [ending] = [line for line in ran.stderr.splitlines() if line.startswith("Error:")]
    assert str(damaged) in ending
    assert "restáurela desde la copia de seguridad" in ending
    assert "restore it from the backup" in ending
    assert "nothing was delivered" in ending and "no se entregó nada" in ending
    assert not ending.startswith("Error: Could not")

    monkeypatch.setenv("PUENTE_HUB_SIGNING_KEY_FILE", str(tmp_path / "gone.pem"))
    missing = cli(hub, monkeypatch, "worker", "--once")
    assert missing.exit_code == 1 and "entregando" not in missing.stderr
    assert str(tmp_path / "gone.pem") in missing.stderr and "puente init" in missing.stderr


def _reasons_written_by_the_hub(hub: Hub, tmp_path: Path) -> list[str]:
    """What the transports themselves write when a delivery fails."""
    written = []
    message = OutboxMessage(id=new_message_id(), kind="x", payload={})
    try:
        WebhookTransport(hub.app).deliver(Agency(id=CLINIC, webhook_url=None), message)
    except PermanentDeliveryError as error:
        written.append(str(error))
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / CLINIC).write_text("a file where the folder should be")
    try:
        FileDropTransport(hub.app, root=tmp_path / "drop").deliver(
            Agency(id=CLINIC, webhook_url="file-drop"), message
        )
    except TransientDeliveryError as error:
        written.append(str(error))
    return written


def test_outbox_list_says_why_deliveries_failed_in_spanish_and_stores_them_as_written(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_webhook, drop_failed = _reasons_written_by_the_hub(hub, tmp_path)
    assert no_webhook == NO_WEBHOOK.format(CLINIC)
    reasons = {
        "a": no_webhook,
        "b": drop_failed,
        "c": DISABLED_AGENCY.format(CLOSED),
        "d": "HTTP 410 (gone)",  # a receiver's words: as they are
    }
    for name, reason in reasons.items():
        queue(hub, CLINIC, name, status="dead", last_error=reason)

    spanish = cli(hub, monkeypatch, "outbox", "list", "--lang", "es").stdout
    assert f"la agencia {CLINIC} no tiene un webhook utilizable" in spanish
    assert "no se puede escribir en el buzón" in spanish
    assert "un archivo donde debería estar la carpeta" in spanish
    assert f"la agencia {CLOSED} no existe o está desactivada" in spanish
    assert "HTTP 410 (gone)" in spanish
    assert "has no usable webhook" not in spanish and "cannot write" not in spanish
    english = cli(hub, monkeypatch, "outbox", "list", "--lang", "en").stdout
    assert all(reason in english for reason in reasons.values())
    as_json = cli(hub, monkeypatch, "outbox", "list", "--lang", "es", "--json").stdout
    assert {json.loads(line)["last_error"] for line in as_json.splitlines()} == set(
        reasons.values()
    )
    # Stored as written: still counted by what compares them.
    assert {m.last_error for m in messages(hub)} == set(reasons.values())


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("agency mx.a.dif has no file drop", "la agencia mx.a.dif no tiene buzón de archivos"),
        (
            "agency mx.a.dif: malformed webhook URL: it names no host",
            "la agencia mx.a.dif: la URL del webhook está mal formada: it names no host",
        ),
        (
            "TimeoutError: no complete answer within 10 s",
            "TimeoutError: sin respuesta completa en 10 s",
        ),
        (
            "cannot write to the drop folder /d/x: Permission denied (a file where the folder "
            "should be, a missing mount, a permission)",
            "no se puede escribir en el buzón /d/x: permiso denegado (un archivo donde debería "
            "estar la carpeta, un montaje que falta, un permiso)",
        ),
        ("no outcome recorded after 12 attempts", "ningún resultado registrado tras 12 intentos"),
        (
            "withheld by consent decision dec_1 (deny)",
            "retenido por la decisión de consentimiento dec_1 (deny)",
        ),
        (
            "withheld: transfer shr_1 is cancelled, no longer pending",
            "retenido: la transferencia shr_1 está cancelada, ya no pendiente",
        ),
        (
            "withheld: the request of transfer shr_1 never reached the recipient",
            "retenido: la solicitud de la transferencia shr_1 nunca llegó al destinatario",
        ),
        (
            "peer hub mx.b is not pinned or is disabled (puente peer enable mx.b)",
            "el nodo par mx.b no está registrado o está desactivado (puente peer enable mx.b)",
        ),
        (
            "peer hub mx.b refused the notice (HTTP 401): {}",
            "el nodo par mx.b rechazó el aviso (HTTP 401): {}",
        ),
        ("ConnectionRefusedError: [Errno 111]", "ConnectionRefusedError: [Errno 111]"),
    ],
)
def test_known_failure_reasons_in_spanish(stored: str, shown: str) -> None:
    assert failure_reason(stored, "es") == shown
    assert failure_reason(stored, "en") == stored


def test_each_spanish_reason_uses_only_what_its_pattern_captures() -> None:
    for pattern, spanish in _REASONS_ES:
        fields = {name for _, name, _, _ in string.Formatter().parse(spanish) if name}
        assert fields and fields <= set(pattern.groupindex), pattern.pattern


# --- 8. after is pointed at as a query parameter ---------------------------------------------


def test_an_unknown_after_points_at_the_query_parameter(hub: Hub) -> None:
    other = queue(hub, OWNER, "not the shelter's", held=True)
    for after in ("msg_bogus", other):
        answer = hub.client.get(f"/v1/notifications?after={after}", headers=hub.headers(SHELTER))
        assert answer.status_code == 400
        [error] = answer.get_json()["errors"]
        assert error["pointer"] == "/query/after" and error["parameter"] == "after"
    limit = hub.client.get("/v1/notifications?limit=0", headers=hub.headers(SHELTER))
    assert limit.get_json()["errors"][0]["pointer"] == "/query/limit"
