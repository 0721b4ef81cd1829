"""A hub whose ``PUENTE_HUB_ID`` changed after ``puente init`` used to sign checkpoints of the
new origin with the log key named for the old one — published side by side at
``/.well-known/puente-hub``, refused by every peer, with ``/readyz`` saying "ok". Its log and
witness keys are now not used (named for another hub), ``/readyz`` says why in both
languages, and ``serve`` and ``worker`` refuse to start until the id is put back."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from exchange import create_app
from exchange.cli import main
from exchange.keys import MISNAMED, MisnamedKey, load_keys

MADE_AS, RENAMED = "mx.chp.puente", "mx.otro.puente"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_HUB_ID", MADE_AS)
    made = CliRunner().invoke(main, ["init"])
    assert made.exit_code == 0, made.output
    monkeypatch.setenv("PUENTE_HUB_ID", RENAMED)
    return tmp_path


def test_keys_named_for_the_old_id_are_not_used(hub: Path) -> None:
    keys = load_keys(create_app())
    assert keys.log is None and keys.witness is None
    faults = {fault.role: fault for fault in keys.faults}
    assert set(faults) == {"log", "witness"}
    log_fault = faults["log"]
    assert isinstance(log_fault, MisnamedKey) and log_fault.kind == MISNAMED
    assert (log_fault.found, log_fault.expected) == (f"{MADE_AS}/audit", f"{RENAMED}/audit")
    es, en = log_fault.described()
    assert f"the key is named '{MADE_AS}/audit', but this hub signs as '{RENAMED}/audit'" in en
    assert f"la llave se llama «{MADE_AS}/audit», pero este nodo firma como" in es


def test_the_same_id_loads_them(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUENTE_HUB_ID", MADE_AS)
    keys = load_keys(create_app())
    assert keys.loaded and keys.faults == ()


def test_readyz_says_the_keys_were_made_for_another_hub_id(hub: Path) -> None:
    client = create_app().test_client()
    for language, words in (
        ("en", "were made for another hub id: PUENTE_HUB_ID changed"),
        ("es", "se crearon para otro id de nodo: PUENTE_HUB_ID cambió"),
    ):
        answer = client.get("/readyz", headers={"Accept-Language": language})
        assert answer.status_code == 503
        body = answer.get_json()
        assert body["checks"]["keys"] == "made for another hub id: log, witness"
        assert words in str(body)


@pytest.mark.parametrize("command", [["serve", "--bind", "127.0.0.1:0"], ["worker", "--once"]])
def test_serve_and_worker_refuse_to_start_naming_the_id_to_put_back(
    hub: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    # Were it not refused, serve would turn this process into gunicorn.
    monkeypatch.setattr("exchange.cli.hub.exec_gunicorn", lambda *args: started.append("serve"))
    result = CliRunner().invoke(main, command)
    assert started == []
    assert result.exit_code == 1, result.output
    assert f"Set PUENTE_HUB_ID={MADE_AS} again, the id the hub was made with" in result.output
    assert f"Vuelva a poner PUENTE_HUB_ID={MADE_AS}, el id con que se creó" in result.output
