"""Delivery fixes of round 16 with real processes: ``puente worker --once`` and ``puente agency
set-webhook`` as an administrator runs them, a real webhook receiver on 127.0.0.1, and a file
drop left half-written by a worker killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from exchange import db
from exchange.outbox import OutboxMessage, enqueue
from exchange.transports import DROP_TEMPORARY, STALE_TEMPORARY_SECONDS, hub_signing_public_jwk
from tests.conftest import make_hub
from tests.e2e.test_delivery import RECIPIENT, Receiver, free_port, register

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]

PUENTE = [sys.executable, "-m", "exchange.cli"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url, FILE_DROP_PATH=str(tmp_path / "drop"))
    yield app
    app.extensions["puente.db"].engine.dispose()


def puente(app: Flask, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``puente ARGS`` as its own process on ``app``'s instance and database."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    environment.update(
        PUENTE_INSTANCE_PATH=app.instance_path,
        PUENTE_DATABASE_URL=app.config["DATABASE_URL"],
        PUENTE_FILE_DROP_PATH=str(app.config["FILE_DROP_PATH"]),
        PUENTE_WEBHOOK_TIMEOUT_SECONDS="2",
        PYTHONPATH=str(REPO),
        **env,
    )
    return subprocess.run(
        [*PUENTE, *args], env=environment, capture_output=True, text=True, timeout=120
    )


def statuses(app: Flask) -> dict[str, str]:
    with db.database(app).sessions() as session:
        found = session.scalars(select(OutboxMessage).order_by(OutboxMessage.seq))
        return {m.payload["n"]: m.status for m in found}


def summary(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if "entregadas / delivered" in line]
    return line


def test_a_damaged_signing_key_ends_the_worker_with_what_to_do(hub: Flask, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("garbage\n")
    ran = puente(hub, "worker", "--once", PUENTE_HUB_SIGNING_KEY_FILE=str(damaged))
    assert ran.returncode == 1
    assert "entregando / delivering" not in ran.stderr
    ending = ran.stderr.strip().splitlines()[-1]
    assert ending.startswith("Error: puente worker: no se entregó nada")
    assert str(damaged) in ending and "restore it from the backup" in ending


def test_webhook_to_polling_and_back_with_the_worker_loses_nothing(hub: Flask) -> None:
    down = f"http://127.0.0.1:{free_port()}/puente/events"  # nobody listens: refused
    tokens = register(hub, down)
    with db.database(hub).sessions.begin() as session:
        enqueue(session, RECIPIENT, "consent.revoked", {"n": "tried"})
    ran = puente(hub, "worker", "--once")
    assert ran.returncode == 0, ran.stderr
    assert "reintento / retrying 1" in summary(ran.stderr)
    assert statuses(hub) == {"tried": "failed"}

    # The agency now polls: what waited for its webhook is for it to read.
    away = puente(hub, "agency", "set-webhook", RECIPIENT, "-", "--json", "--lang", "en")
    assert away.returncode == 0, away.stderr
    assert '"notifications_held": 1' in away.stdout
    reader = {"Authorization": f"Bearer {tokens[RECIPIENT]}"}
    listed = hub.test_client().get("/v1/notifications", headers=reader).get_json()
    assert [n["payload"]["n"] for n in listed["notifications"]] == ["tried"]
    with db.database(hub).sessions.begin() as session:
        enqueue(session, RECIPIENT, "consent.revoked", {"n": "unread"}, held=True)
    ran = puente(hub, "worker", "--once")
    assert "sin entregar / dead 0" in summary(ran.stderr)
    assert statuses(hub) == {"tried": "held", "unread": "held"}

    # And back to a webhook that answers: what it never read is pushed; what it read is not.
    receiver = Receiver(hub_signing_public_jwk(hub))
    try:
        back = puente(hub, "agency", "set-webhook", RECIPIENT, receiver.url, "--lang", "en")
        assert back.returncode == 0, back.stderr
        assert "1 notifications for it not sent for want of a webhook" in back.stdout
        ran = puente(hub, "worker", "--once")
        assert ran.returncode == 0, ran.stderr
        assert "entregadas / delivered 1" in summary(ran.stderr)
    finally:
        receiver.stop()
    assert receiver.bad == []
    assert [claims["events"] for claims in receiver.events] == [
        {"https://puente.mx/events/consent.revoked": {"n": "unread"}}
    ]
    assert statuses(hub) == {"tried": "held", "unread": "delivered"}


#: A worker that stops for good between writing a notification's temporary file and renaming
#: it into place, as one killed at that moment would (the parent kills it there).
_STUCK_WRITER = """
import os, sys, time
from exchange import create_app
from exchange.agencies import Agency
from exchange.outbox import OutboxMessage
from exchange.transports import FileDropTransport
app = create_app()
os.replace = lambda *args: (print("written", flush=True), time.sleep(600))
FileDropTransport(app).deliver(
    Agency(id=sys.argv[1], webhook_url="file-drop"),
    OutboxMessage(id="msg_" + "ab" * 12, kind="consent.revoked", payload={}),
)
"""


def test_a_worker_killed_mid_write_leaves_a_temporary_file_the_next_one_removes(
    hub: Flask,
) -> None:
    register(hub, "file-drop")
    folder = Path(hub.config["FILE_DROP_PATH"]) / RECIPIENT
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    environment.update(
        PUENTE_INSTANCE_PATH=hub.instance_path,
        PUENTE_DATABASE_URL=hub.config["DATABASE_URL"],
        PUENTE_FILE_DROP_PATH=str(hub.config["FILE_DROP_PATH"]),
        PYTHONPATH=str(REPO),
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", _STUCK_WRITER, RECIPIENT],
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    [leftover] = [path for path in folder.iterdir() if DROP_TEMPORARY.fullmatch(path.name)]
    assert leftover.stat().st_size > 0  # a whole signed token, which nothing else removes

    # Still fresh: a write in progress, for all the next worker knows. Left alone.
    with db.database(hub).sessions.begin() as session:
        enqueue(session, RECIPIENT, "consent.revoked", {"n": "first"})
    ran = puente(hub, "worker", "--once")
    assert ran.returncode == 0 and "entregadas / delivered 1" in summary(ran.stderr)
    assert leftover.exists()

    # Once it is old, the next worker's first write to the folder removes it.
    long_ago = time.time() - STALE_TEMPORARY_SECONDS - 60
    os.utime(leftover, (long_ago, long_ago))
    with db.database(hub).sessions.begin() as session:
        enqueue(session, RECIPIENT, "consent.revoked", {"n": "second"})
    ran = puente(hub, "worker", "--once")
    assert ran.returncode == 0 and "entregadas / delivered 1" in summary(ran.stderr)
    assert not leftover.exists()
    assert sorted(path.suffix for path in folder.iterdir()) == [".jwt", ".jwt"]
