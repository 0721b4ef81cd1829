"""Asking peers' witnesses to cosign, as an outside-in check found it wanting: a witness that
answers 409 with any size it likes is written to the audit log once, not once per size; and
``puente audit witness --lang`` says everything in the language asked for, a witness's
refusal included (asked for in it, and shown as its problem's title and detail).

Hub A (``app``, on each backend) pins hub B's witness as in :mod:`tests.api.test_cosignatures`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from exchange import db, witnessing
from exchange.audit_queries import AlertWindow, collect_alerts
from exchange.auth import utcnow
from exchange.peers import add_peer
from exchange.witnessing import HttpAnswer, peer_refusal_text, request_cosignatures
from tests.api.test_cosignatures import (
    PEER,
    WitnessRoute,
    conflicts,
    grow,
    outcome,
    peer_hub,  # noqa: F401 - a fixture route needs
    run_cli,
)
from tests.api.test_cosignatures import route as witness_route  # noqa: F401 - a fixture


@pytest.fixture
def route(witness_route: WitnessRoute) -> WitnessRoute:  # noqa: F811 - the imported fixture
    return witness_route


class HostileWitness:
    """A witness that answers every request 409 with a size of its choosing: a number, which
    proves nothing."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, url: str, body: bytes, timeout: float) -> HttpAnswer:
        size = random.randrange(10**6, 10**9)
        self.sizes.append(size)
        return HttpAnswer(409, "text/x.tlog.size", f"{size}\n".encode())


def own_conflict_alerts(app: Flask) -> list[dict[str, object]]:
    with db.database(app).sessions() as session:
        window = AlertWindow(utcnow().replace(year=2000), utcnow().replace(year=2100), 100)
        return [a for a in collect_alerts(session, window) if a["kind"] == "own_log_conflict"]


# -- 3. an unproven conflict is audited once per peer ------------------------------------------


def test_a_witness_naming_a_new_size_at_every_run_is_audited_once(
    app: Flask, route: WitnessRoute, caplog: pytest.LogCaptureFixture
) -> None:
    grow(app, 3)
    hostile = HostileWitness()
    outcomes = []
    for _ in range(5):
        grow(app, 1)
        (peer,) = request_cosignatures(app, post=hostile).peers
        outcomes.append(peer)
    assert [peer.outcome for peer in outcomes] == ["conflict"] * 5
    assert len(set(hostile.sizes)) == 5
    (entry,) = conflicts(app)
    assert entry["reason_code"] == f"size.{hostile.sizes[0]}"
    assert [(a["peer"], a["size"]) for a in own_conflict_alerts(app)] == [(PEER, hostile.sizes[0])]
    # The operator is still told at every run, and why nothing more was written.
    assert "written to the audit log" in (outcomes[0].reason or "")
    for peer, size in zip(outcomes[1:], hostile.sizes[1:], strict=True):
        assert f"says it cosigned size {size}" in (peer.reason or "")
        assert f"already in the audit log (size {hostile.sizes[0]})" in (peer.reason or "")
        assert "ya está en la bitácora de auditoría" in (peer.said("es") or "")


def test_a_cosignature_ends_the_conflict_and_the_next_one_is_audited(
    app: Flask, route: WitnessRoute
) -> None:
    grow(app, 3)
    hostile = HostileWitness()
    request_cosignatures(app, post=hostile)
    request_cosignatures(app, post=hostile)
    assert len(conflicts(app)) == 1
    # The genuine witness cosigns: whatever the conflict was, it is over.
    assert outcome(app, route).outcome == "cosigned"
    grow(app, 1)
    request_cosignatures(app, post=hostile)
    request_cosignatures(app, post=hostile)
    sizes = [entry["reason_code"] for entry in conflicts(app)]
    assert sizes == [f"size.{hostile.sizes[0]}", f"size.{hostile.sizes[2]}"]


# -- 6. puente audit witness in the operator's language ----------------------------------------


@pytest.fixture
def served_witness(app: Flask, tmp_path: Path) -> Iterator[str]:
    """Hub B served over real HTTP, its witness pinned by A; B does not pin A's log, so it
    refuses with a problem (404). Yields B's URL."""
    from tests.conftest import make_hub

    witness = make_hub(
        tmp_path / "witness",
        f"sqlite:///{tmp_path / 'witness.db'}",
        HUB_ID=PEER,
        AUDIT_INTEGRATOR_THREAD=False,
    )
    server = make_server("127.0.0.1", 0, witness, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    theirs = witness.test_client().get("/.well-known/puente-hub").get_json()
    with app.app_context(), db.database(app).sessions.begin() as session:
        add_peer(
            session,
            PEER,
            origin=theirs["audit_origin"],
            log_vkey=theirs["log_vkey"],
            witness_vkey=theirs["witness_vkey"],
            base_url=url,
        )
    try:
        yield url
    finally:
        server.shutdown()
        witness.extensions["puente.db"].engine.dispose()


@pytest.fixture
def cli_hub(
    app: Flask, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Flask:
    """``puente`` commands run against ``app``."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    return app


def test_a_witnesss_refusal_is_asked_for_and_shown_in_the_operators_language(
    cli_hub: Flask, served_witness: str
) -> None:
    grow(cli_hub, 3)
    origin = f"{cli_hub.config['HUB_ID']}/audit"
    spanish = run_cli("audit", "witness", "--lang", "es")
    assert spanish.exit_code == 1
    said = " ".join(spanish.output.split())
    assert (
        f"{PEER}: no lo cofirmó; se reintentará ({served_witness}/v1/witness/add-checkpoint "
        f"respondió 404: No encontrado: Este nodo no atestigua la bitácora '{origin}'.)" in said
    ), said
    assert '{"' not in said and "answered" not in said
    english = run_cli("audit", "witness", "--lang", "en")
    said = " ".join(english.output.split())
    assert f"answered 404: Not found: This hub does not witness the log '{origin}'.)" in said, said
    as_json = run_cli("audit", "witness", "--lang", "es", "--json")
    assert "respondió 404: No encontrado" in as_json.output


def test_every_reason_is_said_in_spanish(
    cli_hub: Flask, route: WitnessRoute, monkeypatch: pytest.MonkeyPatch
) -> None:
    grow(cli_hub, 3)
    monkeypatch.setattr(witnessing, "http_post", route)
    route.down = True
    down = run_cli("audit", "witness", "--lang", "es")
    assert "sin respuesta de https://" in down.output and "no answer" not in down.output
    route.down = False
    monkeypatch.setattr(witnessing, "http_post", HostileWitness())
    first = " ".join(run_cli("audit", "witness", "--lang", "es").output.split())
    assert "el testigo cofirmó el tamaño" in first and "otro árbol de esta bitácora" in first
    assert "registrado en la bitácora de auditoría" in first
    again = " ".join(run_cli("audit", "witness", "--lang", "es").output.split())
    assert "ya está en la bitácora de auditoría" in again and "another tree" not in again

    def bad_cosignature(url: str, body: bytes, timeout: float) -> HttpAnswer:
        return HttpAnswer(200, "text/plain", b"\xff\n")

    monkeypatch.setattr(witnessing, "http_post", bad_cosignature)
    bad = " ".join(run_cli("audit", "witness", "--lang", "es").output.split())
    assert "la cofirma no verifica: no se puede decodificar el byte 0xff" in bad


@pytest.mark.parametrize(
    ("content_type", "body", "said"),
    [
        (
            "application/problem+json",
            b'{"type": "https://puente.mx/problems/not-found", "title": "Not found", '
            b'"detail": "This hub does not witness the log."}',
            "Not found: This hub does not witness the log.",
        ),
        ("application/problem+json", b'{"title": "Not found"}', "Not found"),
        ("application/json", b'["not", "a", "problem"]', ""),
        # Never a body that is no problem document (docs/audit.md §6): the status says it.
        ("text/html", b"<html>Bad gateway</html>\n<p>nginx</p>", ""),
        ("text/plain", b"line one\x1b[31m red", ""),
    ],
)
def test_what_a_refusal_shows_of_the_witnesss_answer(
    content_type: str, body: bytes, said: str
) -> None:
    assert peer_refusal_text(HttpAnswer(404, content_type, body)) == said
