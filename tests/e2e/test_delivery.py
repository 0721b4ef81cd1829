"""Webhook delivery end to end: a real HTTP receiver on 127.0.0.1, the real worker (in a thread
or as ``puente worker`` processes), signed notifications verified with the hub's public key,
retries while the receiver is down, and several workers sharing one outbox."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import func, select

from exchange import db
from exchange.agencies import register_agency
from exchange.audit_log import AuditEntry
from exchange.auth import store_token
from exchange.outbox import OutboxMessage, enqueue
from exchange.outbox_delivery import run_worker
from exchange.transports import SET_MEDIA_TYPE, hub_signing_public_jwk
from tests.conftest import make_hub

pytestmark = pytest.mark.e2e

PUENTE = [sys.executable, "-m", "exchange.cli"]
OWNER, RECIPIENT = "mx.chp.dif", "mx.chp.tapachula.dif"
PROCURADURIA = "mx.chp.procuraduria"
SCOPES = ["records:write", "records:read"]
EXAMPLE_RECORD = (
    Path(__file__).resolve().parents[2] / "schemas/examples/case-record/1/valid/minimal.json"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """A webhook endpoint that verifies every notification with the hub's public key and
    counts them by ``jti``."""

    def __init__(self, public_jwk: dict[str, Any], port: int = 0) -> None:
        self.key = OKPKey.import_key(public_jwk)
        self.kid = public_jwk["kid"]
        self.events: list[dict[str, Any]] = []
        self.bad: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.accept(self.headers.get("Content-Type", ""), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/puente/events"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def accept(self, content_type: str, body: bytes) -> int:
        try:
            token = jwt.decode(body.decode("ascii"), self.key, algorithms=["EdDSA"])
        except (JoseError, ValueError) as error:
            with self.lock:
                self.bad.append(str(error))
            return 400
        ok = content_type == SET_MEDIA_TYPE and token.header.get("kid") == self.kid
        with self.lock:
            if not ok:
                self.bad.append(f"{content_type} {token.header}")
                return 400
            self.events.append(token.claims)
        return 202

    def jtis(self) -> Counter[str]:
        with self.lock:
            return Counter(str(claims["jti"]) for claims in self.events)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def statuses(app: Flask) -> dict[str, int]:
    with db.database(app).sessions() as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    return {status: count for status, count in rows}


def register(app: Flask, webhook_url: str) -> dict[str, str]:
    tokens = {}
    with app.app_context(), db.database(app).sessions.begin() as session:
        for agency_id, level, jurisdiction, url in (
            (OWNER, "state", "07", None),
            (RECIPIENT, "municipal", "07089", webhook_url),
        ):
            register_agency(
                session, agency_id, agency_id, level, jurisdiction, SCOPES, webhook_url=url
            )
            tokens[agency_id], _ = store_token(
                session, client_id=agency_id, scopes=SCOPES, agency_id=agency_id
            )
        register_agency(session, PROCURADURIA, PROCURADURIA, "state", "07", ["consent:write"])
        tokens[PROCURADURIA], _ = store_token(
            session, client_id=PROCURADURIA, scopes=["consent:write"], agency_id=PROCURADURIA
        )
    return tokens


def consent_to_refer(client: Any, token: str, child_id: str) -> None:
    """The Procuraduría's consent (the child is unaccompanied) to refer the case to RECIPIENT."""
    consent = {
        "status": "active",
        "grantor": {
            "type": "procuraduria",
            "representation": "suplencia",
            "agency_id": PROCURADURIA,
            "identity_verified": True,
        },
        "grantee": [{"agency_id": RECIPIENT}],
        "decision": "deny",
        "period": {"start": "2026-01-01T00:00:00-06:00", "end": "2029-01-01T00:00:00-06:00"},
        "policy_basis": [{"code": "lgdnna_art_106_suplencia"}],
        "provision": [
            {"decision": "permit", "actor": [{"agency_id": RECIPIENT}], "action": ["refer"]}
        ],
    }
    answer = client.post(
        f"/v1/children/{child_id}/consents",
        json=consent,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.get_json()


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_hub(
        tmp_path,
        database_url,
        OUTBOX_BACKOFF_SECONDS=0.2,
        OUTBOX_BACKOFF_MAX_SECONDS=1.0,
        WEBHOOK_TIMEOUT_SECONDS=2,
    )
    yield app
    app.extensions["puente.db"].engine.dispose()


def test_referral_reaches_the_webhook_signed_by_the_hub(hub: Flask) -> None:
    receiver = Receiver(hub_signing_public_jwk(hub))
    try:
        tokens = register(hub, receiver.url)
        client = hub.test_client()
        auth = {"Authorization": f"Bearer {tokens[OWNER]}"}
        # An unaccompanied minor, for whom the Procuraduría consents.
        data = json.loads(EXAMPLE_RECORD.with_name("typical.json").read_text())
        data["child"]["date_of_birth"] = "2012-05-10"
        pushed = client.post(
            "/v1/records",
            json={"schema": "case-record/1", "local_id": "E-1", "data": data},
            headers=auth,
        ).get_json()
        consent_to_refer(client, tokens[PROCURADURIA], pushed["child_id"])
        share = client.post(
            f"/v1/records/{pushed['record_id']}/referrals",
            json={"to": RECIPIENT, "purpose": "health_care", "categories": ["health"]},
            headers=auth,
        ).get_json()

        totals = run_worker(hub, once=True)

        assert totals.delivered == 1 and receiver.bad == []
        [claims] = receiver.events
        assert claims["iss"] == hub.config["HUB_ID"] and claims["aud"] == RECIPIENT
        event = claims["events"]["https://puente.mx/events/record.referred"]
        assert event["share_id"] == share["id"] and event["record_id"] == pushed["record_id"]
        assert event["child_id"] == pushed["child_id"] and event["record_version"] == 1
        # The recipient now reads the record itself, through the API.
        reader = {"Authorization": f"Bearer {tokens[RECIPIENT]}"}
        read = client.get(f"/v1/records/{event['record_id']}?purpose=health_care", headers=reader)
        assert read.status_code == 200
        assert statuses(hub) == {"delivered": 1}
        # The decision taken before the delivery is audited naming the attempt and recipient.
        with db.database(hub).sessions() as session:
            codes = [
                json.loads(entry)["reason_code"]
                for entry in session.scalars(
                    select(AuditEntry.entry).where(AuditEntry.action == "record_referred")
                )
            ]
        assert f"delivery.attempt_1.to.{RECIPIENT}" in codes
    finally:
        receiver.stop()


def test_receiver_down_then_back_nothing_lost_delivered_once(hub: Flask) -> None:
    port = free_port()  # nobody listens here yet: connections are refused
    tokens = register(hub, f"http://127.0.0.1:{port}/puente/events")
    del tokens
    with db.database(hub).sessions.begin() as session:
        ids = [enqueue(session, RECIPIENT, "record.referred", {"n": n}).id for n in range(5)]
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker, args=(hub,), kwargs={"stop_event": stop, "poll_seconds": 0.05}
    )
    worker.start()
    receiver = None
    try:
        # Retried with growing delays while the receiver is down; nothing is given up. A
        # receiver that refuses connections costs each pass one attempt: the agency's other
        # messages wait for that one's next try, untried (attempts not counted).
        wait_for(lambda: _total_attempts(hub) >= 3)
        assert set(statuses(hub)) <= {"failed", "pending"}
        receiver = Receiver(hub_signing_public_jwk(hub), port=port)
        wait_for(lambda: statuses(hub) == {"delivered": 5})
    finally:
        stop.set()
        worker.join(10)
        if receiver:
            receiver.stop()
    assert receiver is not None and receiver.bad == []
    assert receiver.jtis() == Counter({message_id: 1 for message_id in ids})


def _total_attempts(app: Flask) -> int:
    with db.database(app).sessions() as session:
        return int(session.scalar(select(func.sum(OutboxMessage.attempts))) or 0)


def test_worker_processes_share_the_outbox_without_double_delivery(
    hub: Flask, database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(hub_signing_public_jwk(hub))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env.update(
        PUENTE_INSTANCE_PATH=hub.instance_path,
        PUENTE_DATABASE_URL=database_url,
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        register(hub, receiver.url)
        # The worker was down while the actions happened: they wait in the outbox.
        with db.database(hub).sessions.begin() as session:
            ids = [enqueue(session, RECIPIENT, "record.referred", {"n": n}).id for n in range(300)]
        for n in range(2):
            # Logs go to files: a full pipe nobody reads would stall the worker.
            log = (tmp_path / f"worker-{n}.log").open("wb")
            workers.append(
                subprocess.Popen(
                    [*PUENTE, "worker", "--batch", "10", "--poll-seconds", "0.1"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        wait_for(lambda: statuses(hub) == {"delivered": 300}, seconds=120)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(timeout=30)
        receiver.stop()
    outputs = [(tmp_path / f"worker-{n}.log").read_bytes() for n in range(len(workers))]
    for process, err in zip(workers, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-2000:]
    assert receiver.bad == []
    assert receiver.jtis() == Counter({message_id: 1 for message_id in ids})
    # Both workers took part (each logs what it delivered on its way out).
    delivered = [_delivered_count(err) for err in outputs]
    assert sum(delivered) == 300 and all(count > 0 for count in delivered), delivered


def _delivered_count(stderr: bytes) -> int:
    for line in stderr.decode().splitlines():
        if line.startswith("puente worker: entregadas / delivered"):
            return int(line.split("delivered", 1)[1].split(",")[0])
    raise AssertionError(f"no summary line in {stderr.decode()[-1000:]}")
