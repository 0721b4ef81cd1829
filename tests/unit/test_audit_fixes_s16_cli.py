"""``puente audit export`` never passes an export it knows is incomplete for a good one (a
row missing from ``audit_entry``, or an entry that no longer hashes to its stored leaf hash:
exit 1, the indices named); it says how many witnesses cosigned what it exported; ``verify``
reads a key file saved with a byte order mark; ``witness`` says why a peer did not answer in
plain words; counts are singular or plural as they should be."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import delete, select, update

from exchange import db, witnessing
from exchange.audit_export import IndexList
from exchange.audit_log import AuditEntry, record_event
from exchange.peers import add_peer
from exchange.witnessing import HttpAnswer, http_post, network_failure, request_cosignatures
from tests.api.test_cosignatures import PEER, PEER_URL, WitnessRoute
from tests.conftest import make_hub
from tests.unit.exchange.test_audit_cli import _log, _run, _vkey


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """100 entries under checkpoints 30 and 100; the command line finds it by the environment."""
    app = make_hub(tmp_path, database_url, AUDIT_CHECKPOINT_INTERVAL=0.000001)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    _log(app, 30)
    _log(app, 70)
    yield app
    app.extensions["puente.db"].engine.dispose()


def _export(tmp_path: Path, *extra: str, name: str = "export") -> tuple[Path, Result]:
    out = tmp_path / name
    return out, _run("audit", "export", "--out", str(out), *extra)


def _verify(out: Path, vkey: str) -> Result:
    return _run("audit", "verify", "--full", str(out), "--vkey", vkey, "--lang", "en")


# --- 1. an export that will not verify says so -----------------------------------------------


def test_a_complete_export_exits_0_and_says_it_is_complete(hub: Flask, tmp_path: Path) -> None:
    out, result = _export(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is summary["complete"] is True
    assert (summary["missing_indices"], summary["leaf_hash_mismatches"]) == ([], [])
    assert "incomplete" not in json.loads((out / "manifest.json").read_text())
    assert _verify(out, _vkey(hub)).exit_code == 0


def _delete(app: Flask, *indices: int) -> None:
    with db.database(app).sessions() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.idx.in_(indices)))
        session.commit()


def test_an_entry_missing_from_the_database_fails_the_export(hub: Flask, tmp_path: Path) -> None:
    _delete(hub, 40)
    out, result = _export(tmp_path, "--json", "--lang", "en")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)  # the JSON still comes, and says it
    assert (summary["ok"], summary["complete"]) == (False, False)
    assert (summary["missing_count"], summary["missing_indices"]) == (1, [40])
    assert "FAIL: the export is incomplete" in result.stderr
    assert "missing from the hub's database — 1 entry: 40" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["incomplete"]["missing_indices"] == [40]
    # What the export said is what verify finds.
    verified = _verify(out, _vkey(hub))
    assert verified.exit_code == 1 and "entry 40" in verified.output


def test_the_plain_output_names_the_missing_entries_in_each_language(
    hub: Flask, tmp_path: Path
) -> None:
    _delete(hub, 40, 41, 42, 77)
    english = _export(tmp_path, "--lang", "en", name="en")[1]
    assert english.exit_code == 1
    assert english.stdout.startswith("96 entries and 2 checkpoints exported to")
    assert "FAIL: the export is incomplete: `puente audit verify --full` will reject it" in (
        english.stderr
    )
    assert "missing from the hub's database — 4 entries: 40–42, 77" in english.stderr
    spanish = _export(tmp_path, "--lang", "es", name="es")[1]
    assert spanish.exit_code == 1
    assert "FALLA: la exportación está incompleta" in spanish.stderr
    assert "ausentes de la base de datos del nodo — 4 entradas: 40–42, 77" in spanish.stderr


def test_a_log_cut_short_names_the_range(hub: Flask, tmp_path: Path) -> None:
    with db.database(hub).sessions() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.idx >= 60))
        session.commit()
    result = _export(tmp_path, "--json", "--lang", "en")[1]
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["missing_count"] == 40
    assert summary["missing_indices"] == list(range(60, 100))
    assert "40 entries: 60–99" in result.stderr


def test_an_entry_that_no_longer_matches_its_leaf_hash_fails_the_export(
    hub: Flask, tmp_path: Path
) -> None:
    with db.database(hub).sessions() as session:
        other = session.scalar(select(AuditEntry.entry).where(AuditEntry.idx == 65))
        # Another entry's canonical JSON: valid, but not what was logged at 66.
        session.execute(update(AuditEntry).where(AuditEntry.idx == 66).values(entry=other))
        session.commit()
    out, result = _export(tmp_path, "--json", "--lang", "en")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["complete"] is False and summary["missing_indices"] == []
    assert (summary["leaf_hash_mismatch_count"], summary["leaf_hash_mismatches"]) == (1, [66])
    assert "FAIL: the export is damaged" in result.stderr
    assert "no longer match their stored leaf hash) — 1 entry: 66" in result.stderr
    assert _verify(out, _vkey(hub)).exit_code == 1

    spanish = _export(tmp_path, "--lang", "es", name="es")[1]
    assert spanish.exit_code == 1
    assert "FALLA: la exportación está dañada" in spanish.stderr
    assert "ya no coinciden con su hash de hoja guardado) — 1 entrada: 66" in spanish.stderr


def test_an_index_list_keeps_ranges_and_counts_beyond_what_it_lists() -> None:
    found = IndexList()
    found.add(40)
    found.add(41)
    found.add(77)
    found.add(500, 10_000)
    assert found.count == 3 + 9_501
    assert found.ranges == [(40, 41), (77, 77), (500, 596)]  # 100 listed
    assert len(found.indices()) == 100
    assert found.text() == "40–41, 77, 500–596, …"
    assert not IndexList() and IndexList().text() == ""


# --- 3. a key file with a byte order mark ----------------------------------------------------


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_key_file_saved_with_a_byte_order_mark_is_the_same_key(
    hub: Flask, tmp_path: Path, ending: str
) -> None:
    out, exported = _export(tmp_path)
    assert exported.exit_code == 0, exported.output
    key_file = tmp_path / "hub_bom.vkey"
    key_file.write_bytes(b"\xef\xbb\xbf" + (_vkey(hub) + ending).encode())
    result = _verify(out, str(key_file))
    assert result.exit_code == 0, result.output
    witness_file = tmp_path / "witness_bom.vkey"
    witness_file.write_bytes(b"\xef\xbb\xbf" + (_witness_vkey(hub) + ending).encode())
    with_witness = _run(
        "audit", "verify", "--full", str(out), "--vkey", str(key_file), "--witness",
        str(witness_file),
    )  # fmt: skip
    assert with_witness.exit_code == 0, with_witness.output


def _witness_vkey(app: Flask) -> str:
    vkey = app.test_client().get("/.well-known/puente-hub").get_json()["witness_vkey"]
    assert isinstance(vkey, str)
    return vkey


# --- 4. why a witness did not answer, and what the export carries ----------------------------


@pytest.mark.parametrize(
    ("error", "english", "spanish"),
    [
        (
            urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
            "Connection refused",
            "conexión rechazada",
        ),
        (ConnectionRefusedError(111, "Connection refused"), "Connection refused", "rechazada"),
        (urllib.error.URLError(TimeoutError("timed out")), "Timed out after 10 s", "tiempo"),
        (TimeoutError("The read operation timed out"), "Timed out after 10 s", "(10 s)"),
        (urllib.error.URLError("timed out"), "Timed out", "tiempo de espera"),
        (
            urllib.error.URLError(socket.gaierror(-2, "Name or service not known")),
            "(DNS)",
            "(DNS)",
        ),
        (
            urllib.error.URLError(ssl.SSLCertVerificationError(1, "certificate verify failed")),
            "TLS failed: the server's certificate",
            "certificado TLS",
        ),
        (urllib.error.URLError(ssl.SSLError(1, "wrong version number")), "TLS failed", "TLS"),
        (ConnectionResetError(104, "Connection reset by peer"), "Connection cut", "cortó"),
        (witnessing.http.client.BadStatusLine("garbage"), "Not HTTP", "no es HTTP"),
        (OSError(113, "No route to host"), "Unreachable", "ruta de red"),
        (OSError("something else"), "Could not connect", "no se pudo conectar"),
    ],
)
def test_a_network_failure_is_said_in_plain_words(
    error: BaseException, english: str, spanish: str
) -> None:
    why_es, why_en = network_failure(error, 10.0)
    assert english in why_en and spanish in why_es
    for said in (why_es, why_en):
        assert "Errno" not in said and "urlopen" not in said and "<" not in said


@pytest.fixture
def witnessed(hub: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WitnessRoute:
    """``hub`` pins a peer's witness (a second hub), reached through its test client."""
    peer = make_hub(
        tmp_path / "peer",
        f"sqlite:///{tmp_path / 'peer.db'}",
        HUB_ID=PEER,
        AUDIT_INTEGRATOR_THREAD=False,
    )
    theirs = peer.test_client().get("/.well-known/puente-hub").get_json()
    ours = hub.test_client().get("/.well-known/puente-hub").get_json()
    with hub.app_context(), db.database(hub).sessions.begin() as session:
        add_peer(
            session,
            theirs["hub_id"],
            origin=theirs["audit_origin"],
            log_vkey=theirs["log_vkey"],
            witness_vkey=theirs["witness_vkey"],
            base_url=PEER_URL,
        )
    with peer.app_context(), db.database(peer).sessions.begin() as session:
        add_peer(session, ours["hub_id"], origin=ours["audit_origin"], log_vkey=ours["log_vkey"])
    route = WitnessRoute(peer.test_client())
    monkeypatch.setattr(witnessing, "http_post", route)
    return route


def _closed_port_post() -> witnessing.Post:
    """The real ``http_post``, sent to a local port nothing listens on: a real refused
    connection, whatever the peer's URL."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/witness/add-checkpoint"

    def post(_url: str, body: bytes, timeout: float) -> HttpAnswer:
        return http_post(url, body, timeout)

    return post


def test_witness_says_a_refused_connection_in_words_and_logs_the_detail(
    hub: Flask,
    witnessed: WitnessRoute,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(witnessing, "http_post", _closed_port_post())
    spanish = _run("audit", "witness", "--lang", "es")
    assert spanish.exit_code == 1
    assert f"{PEER}: sin respuesta; se reintentará (sin respuesta de {PEER_URL}" in spanish.output
    assert "conexión rechazada" in spanish.output
    for raw in ("Errno", "urlopen", "Connection refused"):
        assert raw not in spanish.output
    english = _run("audit", "witness", "--json", "--lang", "en")
    (peer,) = json.loads(english.stdout)["peers"]
    assert peer["reason"].startswith(f"no answer from {PEER_URL}/v1/witness/add-checkpoint: ")
    assert "Connection refused (the peer's hub is down" in peer["reason"]
    assert "Errno" not in peer["reason"]
    # The technical detail is for the operator's log only.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="puente.witness"):
        request_cosignatures(hub)
    (record,) = [r for r in caplog.records if r.name == "puente.witness"]
    assert "Errno 111" in record.getMessage() and "URLError" in record.getMessage()


def test_export_says_how_many_witnesses_cosigned(
    hub: Flask, witnessed: WitnessRoute, tmp_path: Path
) -> None:
    english = _export(tmp_path, "--lang", "en", name="en")[1]
    assert english.exit_code == 0, english.output
    size = _latest(english)  # pinning the peer is audited: 101
    assert f"Checkpoint {size}: cosigned by 1 of 1 witness configured: mx.oax.puente" in (
        english.stdout
    )
    assert "WARNING" not in english.output
    spanish = _export(tmp_path, "--lang", "es", name="es")[1]
    assert f"Punto de control {size}: cofirmado por 1 de 1 testigo configurado: {PEER}" in (
        spanish.stdout
    )
    as_json = _export(tmp_path, "--json", name="json")[1]
    summary = json.loads(as_json.stdout)
    assert (summary["witnesses_configured"], summary["cosigned_by"]) == (1, [PEER])
    assert summary["witnesses"][0]["outcome"] == "up_to_date"


def test_export_warns_when_fewer_witnesses_cosigned_than_configured(
    hub: Flask, witnessed: WitnessRoute, tmp_path: Path
) -> None:
    witnessed.down = True
    out, english = _export(tmp_path, "--lang", "en", name="en")
    assert english.exit_code == 0, english.output  # complete: the log itself is whole
    size = _latest(english)
    assert f"Checkpoint {size}: cosigned by 0 of 1 witness configured\n" in english.stdout
    assert (
        f"WARNING: checkpoint {size} is cosigned by only 0 of 1 witness configured: "
        "`puente audit verify --witness … --quorum N` of this export will fail for any N "
        "above 0."
    ) in english.stderr
    assert f"  {PEER}: no answer; will be retried (no answer from {PEER_URL}" in english.stderr
    # ... as the oversight body then finds.
    verified = _run(
        "audit", "verify", "--full", str(out), "--vkey", _vkey(hub),
        "--witness", _witness_vkey_of_peer(witnessed), "--quorum", "1",
    )  # fmt: skip
    assert verified.exit_code == 2, verified.output
    spanish = _export(tmp_path, "--lang", "es", name="es")[1]
    assert (
        f"AVISO: el punto de control {size} está cofirmado por solo 0 de 1 testigo configurado:"
        in spanish.stderr
    )
    assert f"  {PEER}: sin respuesta; se reintentará" in spanish.stderr


def _latest(result: Result) -> int:
    """The latest checkpoint an export's first line names."""
    return int(result.stdout.split("(latest checkpoint: ", 1)[1].split(")", 1)[0])


def _witness_vkey_of_peer(route: WitnessRoute) -> str:
    vkey = route.client.get("/.well-known/puente-hub").get_json()["witness_vkey"]
    assert isinstance(vkey, str)
    return vkey


def test_no_witness_line_without_witnesses(hub: Flask, tmp_path: Path) -> None:
    result = _export(tmp_path, "--lang", "en")[1]
    assert result.exit_code == 0
    assert "cosigned" not in result.output and "WARNING" not in result.output


# --- 6. one entry, one checkpoint ------------------------------------------------------------


def test_counts_of_one_are_singular(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_hub(tmp_path, database_url, AUDIT_CHECKPOINT_INTERVAL=0.000001)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    try:
        with app.app_context(), db.database(app).sessions.begin() as session:
            record_event(session, action="child_index_rebuilt", outcome="success")
        out, english = _export(tmp_path, "--lang", "en", name="en")
        assert english.exit_code == 0, english.output
        assert english.stdout.startswith(f"1 entry and 1 checkpoint exported to {out} ")
        verified = _verify(out, _vkey(app))
        assert verified.stdout.startswith("OK: 1 entry and 1 checkpoint verified; latest: 1")
        spanish = _run("audit", "verify", "--full", str(out), "--vkey", _vkey(app), "--lang", "es")
        assert spanish.stdout.startswith(
            "OK: 1 entrada y 1 punto de control verificados; último: 1"
        )
        again = _export(tmp_path, "--lang", "es", name="es")[1]
        # The second export signs no new checkpoint (nothing new was logged).
        assert again.stdout.startswith("1 entrada y 1 punto de control exportados a ")
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_other_counts_are_plural(hub: Flask, tmp_path: Path) -> None:
    out, result = _export(tmp_path, "--lang", "es")
    assert result.stdout.startswith("100 entradas y 2 puntos de control exportados a ")
    assert _verify(out, _vkey(hub)).stdout.startswith("OK: 100 entries and 2 checkpoints verified")
