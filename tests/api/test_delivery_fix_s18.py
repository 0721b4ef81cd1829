"""Delivery as an outside check found it wanting (round 18).

1. A receiver down longer than the attempts lasted lost its notifications: dead, they were
   listed nowhere the agency could see. A message that died only because its agency could not
   be reached (attempts run out on failures that may pass, the agency disabled) is now the
   agency's to read with ``GET /v1/notifications``, decided again as a held one is, and handed
   out by its shares view too; giving up takes days, not hours; and the sender sees in
   ``GET /v1/shares?role=sent`` whether the recipient has been told (``notice``).
2. The worker's log says why an attempt failed, and warns when it gives up.
3. ``puente outbox list --lang es`` says the commonest failures in Spanish, and a redirect
   names where it pointed.
4. A withdrawal is not sent for a transfer request the receiver answered only with errors.
5. The guide's receiver answers a token of an unknown ``kid`` 503 (retried), not 400.
6. Dropped files are readable by the folder's group whatever the worker's umask.
7. ``puente agency list`` says where each agency's notices go.
8. A notice consent withheld says so in words an administrator understands.
"""

from __future__ import annotations

import http.server
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from joserfc.jwk import OKPKey
from sqlalchemy import select, update
from test_integrator_fixes import doc_receiver, post_to
from test_referrals_transfers import CLINIC, OWNER, SCOPES, SHELTER, Hub, refer, transfer
from test_referrals_transfers import hub as transfers_hub  # noqa: F401 - a fixture

from exchange import db
from exchange.agencies import set_webhook
from exchange.auth import store_token
from exchange.cli import main
from exchange.cli.worker import failure_reason
from exchange.config import DEFAULTS
from exchange.outbox import DISABLED_AGENCY, OutboxMessage
from exchange.outbox_delivery import (
    DEFAULT_MAX_ATTEMPTS,
    EARLIER_ATTEMPT,
    BatchResult,
    DeliveryPolicy,
    backoff_seconds,
    deliver_batch,
)
from exchange.outbox_reading import CONSENT_WITHHELD
from exchange.sharing import NOTICE_STATES, RecordShare
from exchange.transports import (
    FileDropTransport,
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookTransport,
    file_drop_root,
    security_event_token,
)

OPENAPI = Path(__file__).resolve().parents[2] / "exchange" / "openapi" / "sharing.yaml"
#: A message as a transport reads it (id, kind, payload).
NOTE = SimpleNamespace(id="msg_0123456789abcdef01234567", kind="consent.revoked", payload={})
#: Two attempts, then dead: a receiver "down longer than the attempts last" in two passes.
POLICY = DeliveryPolicy(max_attempts=2, backoff_seconds=10, backoff_max_seconds=100)


@pytest.fixture
def hub(transfers_hub: Hub) -> Hub:  # noqa: F811 - the imported fixture, by another name
    """The hub of tests/api/test_referrals_transfers.py: the owner and a clinic with webhooks,
    a shelter without, a disabled agency, and the consent that lets records be shared."""
    return transfers_hub


# --- helpers ---------------------------------------------------------------------------------


class Receiver:
    """A transport standing for the agencies' receivers: each attempt fails with what
    ``answer`` makes, or is taken when it makes nothing."""

    def __init__(self, answer: Callable[[], BaseException | None] = lambda: None) -> None:
        self.answer = answer
        self.sent: list[tuple[str, str]] = []

    def deliver(self, agency: Any, message: Any) -> None:
        self.sent.append((agency.id, message.kind))
        error = self.answer()
        if error is not None:
            raise error


def refused() -> TransientDeliveryError:
    """What the webhook raises when nothing listens: the connection refused, nothing sent."""
    error = TransientDeliveryError(
        "ConnectionRefusedError: [Errno 111] Connection refused", unreachable=True
    )
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


def unavailable() -> TransientDeliveryError:
    return TransientDeliveryError("HTTP 503")


def no_answer() -> TransientDeliveryError:
    return TransientDeliveryError("TimeoutError: no complete answer within 10 s", unreachable=True)


def deliver(hub: Hub, receiver: Any, policy: DeliveryPolicy = POLICY) -> BatchResult:
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        return deliver_batch(session, receiver, policy, 50)


def due_now(hub: Hub) -> None:
    with db.database(hub.app).sessions.begin() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status.in_(("pending", "failed")))
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def until_given_up(hub: Hub, receiver: Any) -> None:
    """Every attempt the policy allows, each as soon as it is due."""
    for _ in range(POLICY.max_attempts):
        deliver(hub, receiver)
        due_now(hub)


def stored(hub: Hub, kind: str, agency: str = CLINIC) -> OutboxMessage:
    with db.database(hub.app).sessions() as session:
        [found] = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == kind, OutboxMessage.agency_id == agency
            )
        ).all()
        return found


def inbox(hub: Hub, agency: str, token: str | None = None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token or hub.tokens[agency]}"}
    answer = hub.client.get("/v1/notifications", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["notifications"])


def shares(hub: Hub, agency: str, role: str) -> list[dict[str, Any]]:
    answer = hub.client.get(f"/v1/shares?role={role}", headers=hub.headers(agency))
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["shares"])


def notice_for_sender(hub: Hub, share_id: str, sender: str = OWNER) -> Any:
    [share] = [s for s in shares(hub, sender, "sent") if s["id"] == share_id]
    return share["notice"]


def cli(hub: Hub, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", hub.app.config["DATABASE_URL"])
    return CliRunner().invoke(main, list(args))


# --- 1a. what died while the receiver was down is the agency's to read ------------------------


def test_a_notification_given_up_on_while_the_receiver_was_down_is_read_later(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_id = hub.push()
    share_id = refer(hub, record_id).get_json()["id"]  # to the clinic, which has a webhook
    until_given_up(hub, Receiver(refused))
    message = stored(hub, "record.referred")
    assert message.status == "dead" and not message.maybe_reached  # nothing was ever sent
    assert (message.last_error or "").startswith("gave up after 2 attempts")

    # The clinic comes back and catches up: nothing was lost.
    [read] = inbox(hub, CLINIC)
    assert (read["id"], read["payload"]["share_id"]) == (message.id, share_id)
    handed = stored(hub, "record.referred")
    assert handed.status == "dead"  # still the administrator's to see (and requeue)
    assert handed.maybe_reached and handed.delivered_at is not None
    assert share_id in [s["id"] for s in shares(hub, CLINIC, "received")]
    assert hub.read(CLINIC, record_id, "health_care").status_code == 200
    # The administrator sees it was read: no need to requeue it.
    listed = cli(hub, monkeypatch, "outbox", "list", "--status", "dead").stdout
    assert f"{message.id}  dead" in listed and "read_at=" in listed


def test_the_recipients_shares_view_hands_such_a_notification_out_as_a_held_one(
    hub: Hub,
) -> None:
    record_id = hub.push()
    share_id = refer(hub, record_id).get_json()["id"]
    until_given_up(hub, Receiver(refused))
    # Not read with GET /v1/notifications first: the shares view decides it and shows it.
    assert [s["id"] for s in shares(hub, CLINIC, "received")] == [share_id]
    assert stored(hub, "record.referred").maybe_reached
    assert notice_for_sender(hub, share_id) == "delivered"


def test_one_consent_no_longer_permits_is_withheld_when_read_and_its_share_ends(
    hub: Hub,
) -> None:
    record_id = hub.push()
    share_id = refer(hub, record_id).get_json()["id"]
    until_given_up(hub, Receiver(refused))
    assert hub.revoke_consent(record_id).status_code == 200

    assert inbox(hub, CLINIC) == []
    message = stored(hub, "record.referred")
    assert message.status == "withheld"
    assert (message.last_error or "").startswith("withheld by consent decision")
    assert shares(hub, CLINIC, "received") == []
    [sent] = [s for s in shares(hub, OWNER, "sent") if s["id"] == share_id]
    assert (sent["status"], sent["notice"]) == ("cancelled", "withheld")


def test_one_the_receiver_refused_is_not_listed(hub: Hub) -> None:
    """The contrast: a 4xx refuses a notification for good, and the agency's own receiver
    said so; only what died for want of a receiver is read later."""
    first = hub.push(local_id="EXP-1")
    second = hub.push(local_id="EXP-2")
    refer(hub, first)
    deliver(hub, Receiver(lambda: PermanentDeliveryError("HTTP 410 (gone)")))
    refer(hub, second)
    until_given_up(hub, Receiver(unavailable))
    listed = inbox(hub, CLINIC)
    assert [n["payload"]["record_id"] for n in listed] == [second]


def test_a_revocation_that_died_while_the_agency_was_disabled_is_read_once_enabled(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_id = hub.push()
    refer(hub, record_id)
    deliver(hub, Receiver())  # delivered: the clinic received the data
    assert cli(hub, monkeypatch, "agency", "disable", CLINIC).exit_code == 0
    assert hub.revoke_consent(record_id).status_code == 200
    deliver(hub, Receiver())
    revocation = stored(hub, "consent.revoked")
    assert (revocation.status, revocation.last_error) == ("dead", DISABLED_AGENCY.format(CLINIC))

    assert cli(hub, monkeypatch, "agency", "enable", CLINIC).exit_code == 0
    with db.database(hub.app).sessions.begin() as session:
        token, _ = store_token(session, client_id=CLINIC, scopes=SCOPES, agency_id=CLINIC)
    # No retry needed: the clinic reads it itself.
    events = [n["event"] for n in inbox(hub, CLINIC, token)]
    assert "consent.revoked" in events


# --- 1b. giving up takes days ----------------------------------------------------------------


def test_giving_up_takes_days_not_hours(hub: Hub) -> None:
    assert DEFAULTS["OUTBOX_MAX_ATTEMPTS"] == DEFAULT_MAX_ATTEMPTS
    assert DeliveryPolicy.from_config(hub.app).max_attempts == DEFAULT_MAX_ATTEMPTS
    waits = range(1, DEFAULT_MAX_ATTEMPTS)  # the waits between the attempts

    def hours(jitter: float) -> float:
        return sum(backoff_seconds(n, rng=lambda: jitter) for n in waits) / 3600

    # At the 1 h ceiling, with the jitter at its least and at its most: two to four days.
    assert 48 <= hours(0.0) and hours(0.999999) <= 4 * 24 + 6


# --- 1c. the sender sees whether the recipient was told ---------------------------------------


def test_the_sender_sees_where_the_notice_of_each_share_stands(hub: Hub) -> None:
    record_id = hub.push()
    share_id = refer(hub, record_id).get_json()["id"]
    assert notice_for_sender(hub, share_id) == "pending"
    deliver(hub, Receiver(unavailable))
    assert notice_for_sender(hub, share_id) == "failing"
    due_now(hub)
    deliver(hub, Receiver(unavailable))
    assert notice_for_sender(hub, share_id) == "dead"
    inbox(hub, CLINIC)  # the clinic catches up
    assert notice_for_sender(hub, share_id) == "delivered"
    # Only the sender is shown it.
    [received] = shares(hub, CLINIC, "received")
    assert "notice" not in received


def test_a_held_notice_is_pending_until_read_and_a_share_with_none_says_none(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id, to=SHELTER).get_json()["id"]  # no webhook: held
    assert notice_for_sender(hub, share_id) == "pending"
    assert [n["event"] for n in inbox(hub, SHELTER)] == ["transfer.requested"]
    assert notice_for_sender(hub, share_id) == "delivered"
    assert hub.post(SHELTER, f"/v1/transfers/{share_id}/accept", {}).status_code == 200
    # The referral the previous owner keeps is announced by no notice.
    [kept] = [s for s in shares(hub, SHELTER, "sent") if s["kind"] == "referral"]
    assert kept["notice"] is None
    assert all("notice" in s for s in shares(hub, SHELTER, "sent"))


def test_the_notice_field_is_described(hub: Hub) -> None:
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    notice = document["components"]["schemas"]["RecordShare"]["properties"]["notice"]
    assert set(notice["enum"]) == {*NOTICE_STATES, None}
    served = hub.client.get("/openapi.json").get_json()
    assert "notice" in served["components"]["schemas"]["RecordShare"]["properties"]


# --- 2. the worker's log says why ------------------------------------------------------------


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def worker_log() -> Iterator[Lines]:
    logger = logging.getLogger("puente.worker")
    lines, level = Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


def test_the_log_says_why_an_attempt_failed_and_warns_when_the_worker_gives_up(
    hub: Hub, worker_log: Lines
) -> None:
    record_id = hub.push()
    refer(hub, record_id)
    until_given_up(hub, Receiver(unavailable))
    failed, dead = [r for r in worker_log.records if r.getMessage() == "outbox delivery"]
    assert (failed.levelno, failed.__dict__["outcome"]) == (logging.INFO, "failed")
    assert failed.__dict__["error"] == "HTTP 503" and failed.__dict__["next_attempt_at"]
    assert (dead.levelno, dead.__dict__["status"]) == (logging.WARNING, "dead")
    assert dead.__dict__["error"] == stored(hub, "record.referred").last_error
    assert "HTTP 503" in dead.__dict__["error"]


# --- 3. the commonest failures in Spanish, and where a redirect pointed -----------------------


@pytest.mark.parametrize(
    ("stored_text", "spanish"),
    [
        (
            "ConnectionRefusedError: [Errno 111] Connection refused",
            "conexión rechazada: nada escucha en esa dirección y puerto "
            "(ConnectionRefusedError, errno 111)",
        ),
        # (the receiver's own words, "oops", stay as it wrote them)
        ("HTTP 500 (oops)", "el receptor respondió HTTP 500 (oops)"),
        ("HTTP 503", "el receptor respondió HTTP 503 (servicio no disponible)"),
        ("HTTP 302", "el receptor respondió HTTP 302 (se encuentra en otra dirección)"),
        (
            "gaierror: [Errno -2] Name or service not known",
            "no se encontró el nombre del servidor (gaierror, errno -2)",
        ),
        (
            "HTTP 503" + EARLIER_ATTEMPT,
            "el receptor respondió HTTP 503 (servicio no disponible); un intento anterior pudo "
            "haber llegado a la agencia",
        ),
    ],
)
def test_the_commonest_failures_in_spanish(stored_text: str, spanish: str) -> None:
    assert failure_reason(stored_text, "es") == spanish
    assert failure_reason(stored_text, "en") == stored_text


class Redirecting(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(302)
        self.send_header("Location", "https://receiver.example/puente")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_redirect_says_it_is_not_followed_and_where_it_pointed(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/puente"
        agency = SimpleNamespace(id=CLINIC, webhook_url=url)
        with pytest.raises(PermanentDeliveryError) as refused_for_good:
            WebhookTransport(hub.app).deliver(agency, NOTE)  # type: ignore[arg-type]
    finally:
        server.shutdown()
        server.server_close()
    said = str(refused_for_good.value)
    assert said.startswith("HTTP 302: redirects are not followed")
    assert "Location: https://receiver.example/puente" in said
    spanish = failure_reason(said, "es")
    assert "no se siguen redirecciones" in spanish
    assert "https://receiver.example/puente" in spanish and "not followed" not in spanish

    # As the administrator reads it.
    record_id = hub.push()
    refer(hub, record_id)
    deliver(hub, Receiver(lambda: PermanentDeliveryError(said)))
    listed = cli(hub, monkeypatch, "outbox", "list", "--status", "dead", "--lang", "es").stdout
    assert "no se siguen redirecciones (Location: https://receiver.example/puente)" in listed


def test_a_given_up_notice_says_so_in_spanish_with_its_last_failure(hub: Hub) -> None:
    record_id = hub.push()
    refer(hub, record_id)
    until_given_up(hub, Receiver(refused))
    spanish = failure_reason(stored(hub, "record.referred").last_error or "", "es")
    assert spanish.startswith("se dejó de intentar tras 2 intentos")
    assert "conexión rechazada" in spanish and "gave up" not in spanish


# --- 4. no withdrawal of a request the receiver never took ------------------------------------


def test_no_withdrawal_follows_a_request_answered_only_with_errors(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    deliver(hub, Receiver(unavailable))  # "503 when your own system cannot take it now"
    request = stored(hub, "transfer.requested")
    assert (request.status, request.maybe_reached) == ("failed", True)
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200

    receiver = Receiver()  # back up: it would take anything now
    result = deliver(hub, receiver)  # the withdrawal's turn (the request waits its backoff)
    assert receiver.sent == [] and result.withheld == 1
    withdrawal = stored(hub, "transfer.withdrawn")
    assert withdrawal.status == "withheld"
    assert "did not take the request" in (withdrawal.last_error or "")
    due_now(hub)
    deliver(hub, receiver)
    assert receiver.sent == []  # the stale request is withheld too
    assert stored(hub, "transfer.requested").status == "withheld"


def test_nor_when_the_stale_request_is_withheld_first(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    deliver(hub, Receiver(unavailable))
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    # The worker was away: both due, the request first.
    with db.database(hub.app).sessions.begin() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.kind == "transfer.requested")
            .values(next_attempt_at=datetime.now(UTC) - timedelta(hours=1))
        )
    receiver = Receiver()
    result = deliver(hub, receiver)
    assert receiver.sent == [] and result.withheld == 2
    request = stored(hub, "transfer.requested")
    assert "the receiver did not take it (its last answer: HTTP 503)" in (request.last_error or "")


def test_a_withdrawal_still_follows_a_request_an_earlier_attempt_may_have_left(hub: Hub) -> None:
    """The contrast: the first attempt got no answer (the receiver may have stored it), the
    second a 503 (down since): the withdrawal goes."""
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    deliver(hub, Receiver(no_answer))
    due_now(hub)
    deliver(hub, Receiver(unavailable))
    request = stored(hub, "transfer.requested")
    assert (request.last_error or "").endswith("HTTP 503" + EARLIER_ATTEMPT)
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    receiver = Receiver()
    deliver(hub, receiver)
    assert receiver.sent == [(CLINIC, "transfer.withdrawn")]


class WorkerCrash(BaseException):
    """A worker that dies while sending: nothing written after."""


def test_a_withdrawal_still_follows_a_request_whose_worker_died_while_sending(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    deliver(hub, Receiver(unavailable))
    due_now(hub)

    def crash() -> BaseException:
        raise WorkerCrash

    with pytest.raises(WorkerCrash):
        deliver(hub, Receiver(crash))  # it may have sent it, and the receiver taken it
    with db.database(hub.app).sessions.begin() as session:
        session.execute(update(OutboxMessage).values(lease_until=datetime.now(UTC)))
    assert stored(hub, "transfer.requested").last_error is None  # no outcome recorded
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    receiver = Receiver()
    deliver(hub, receiver)
    assert (CLINIC, "transfer.withdrawn") in receiver.sent


def test_a_request_given_up_on_and_withdrawn_is_not_read_nor_its_withdrawal(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    until_given_up(hub, Receiver(unavailable))
    assert stored(hub, "transfer.requested").status == "dead"
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    deliver(hub, Receiver())
    assert inbox(hub, CLINIC) == []
    assert stored(hub, "transfer.withdrawn").status == "withheld"
    assert stored(hub, "transfer.requested").status == "withheld"


# --- 5. the guide's receiver: an unknown kid is 503 -------------------------------------------


def test_the_guides_receiver_answers_an_unknown_kid_503_and_a_bad_signature_400(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = doc_receiver(hub.client, monkeypatch)["Receiver"]
    claims = {"issuer": hub.app.config["HUB_ID"], "audience": "mx.chp.tapachula.dif"}
    another_key = OKPKey.generate_key("Ed25519")  # the hub's next key, say
    token = security_event_token(another_key, message=NOTE, issued_at=1, **claims)  # type: ignore[arg-type]
    assert post_to(receiver, token.encode()) == 503
    assert post_to(receiver, b"not a token") == 400


# --- 6. dropped files are the folder group's to read, whatever the umask ----------------------


def test_dropped_files_are_readable_by_the_folders_group_whatever_the_umask(
    hub: Hub, tmp_path: Path
) -> None:
    root = tmp_path / "drop"
    root.mkdir()
    os.chmod(root, 0o2750)  # setgid: what is made inside belongs to the office's group
    agency = SimpleNamespace(id=CLINIC, webhook_url="file-drop")
    umask = os.umask(0o077)
    try:
        FileDropTransport(hub.app, root=root).deliver(agency, NOTE)  # type: ignore[arg-type]
    finally:
        os.umask(umask)
    folder = root / CLINIC
    assert stat.S_IMODE(folder.stat().st_mode) == 0o2750
    [dropped] = folder.glob("*.jwt")
    assert stat.S_IMODE(dropped.stat().st_mode) == 0o640
    assert dropped.stat().st_gid == root.stat().st_gid


# --- 7. agency list says where notices go -----------------------------------------------------


def test_agency_list_says_where_each_agencys_notices_go(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hub.app.app_context(), db.database(hub.app).sessions.begin() as session:
        set_webhook(session, CLINIC, "file-drop", drop_root=file_drop_root(hub.app))
    lines = {
        line.split()[0]: line
        for line in cli(hub, monkeypatch, "agency", "list", "--lang", "en").stdout.splitlines()
    }
    assert "notices: webhook https://dif.chiapas.example/puente" in lines[OWNER]
    assert f"notices: file drop {file_drop_root(hub.app).resolve() / CLINIC}" in lines[CLINIC]
    assert "notices: kept for GET /v1/notifications" in lines[SHELTER]
    spanish = cli(hub, monkeypatch, "agency", "list", "--lang", "es").stdout
    assert "avisos: se guardan para GET /v1/notifications" in spanish
    assert "avisos: buzón de archivos" in spanish


# --- 8. a notice consent withheld, in words --------------------------------------------------


def test_a_notice_consent_withheld_says_so_in_words(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_id = hub.push()
    refer(hub, record_id)
    assert hub.revoke_consent(record_id).status_code == 200
    deliver(hub, Receiver())
    message = stored(hub, "record.referred")
    assert message.status == "withheld"
    with db.database(hub.app).sessions() as session:
        share = session.scalars(select(RecordShare)).one()
    assert share.status == "cancelled"
    reason = message.last_error or ""
    assert reason.startswith("withheld by consent decision ")
    assert "consent no longer permits telling this agency" in reason
    decision, basis = reason.split(" ")[4], reason.split(" ")[5].strip("():")
    assert reason == CONSENT_WITHHELD.format(decision=decision, basis=basis)
    english = cli(hub, monkeypatch, "outbox", "list", "--lang", "en").stdout
    assert "revoked, expired or changed since the notice was queued" in english
    spanish = cli(hub, monkeypatch, "outbox", "list", "--lang", "es").stdout
    assert "el consentimiento ya no permite avisar a esta agencia" in spanish
    assert "no longer permits" not in spanish
