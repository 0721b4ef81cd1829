"""``puente init`` and ``puente db upgrade`` as an administrator runs them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from exchange.cli import main


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    instance = tmp_path / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(instance))
    return instance


def test_init_creates_keys_and_schema_and_is_idempotent(hub_env: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["init", "--json"])
    assert first.exit_code == 0, first.output
    created = json.loads(first.output)
    assert created["instance_path"] == str(hub_env)
    assert len(created["keys_created"]) == 2
    assert created["log_vkey"].startswith("mx.local.puente/audit+")
    for name in ("log.key", "witness.key"):
        mode = stat.S_IMODE(os.stat(hub_env / "keys" / name).st_mode)
        assert mode == 0o600, oct(mode)
    assert (hub_env / "puente.db").exists()

    again = runner.invoke(main, ["init", "--json"])
    assert again.exit_code == 0, again.output
    second = json.loads(again.output)
    assert second["keys_created"] == []
    assert second["log_vkey"] == created["log_vkey"]  # keys are never replaced


def test_db_upgrade_and_current(hub_env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    current = runner.invoke(main, ["db", "current"])
    revision = current.output.split()[1]
    assert revision != "None"
    assert current.output.split()[3] == revision


def test_key_from_environment_is_used(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.note import generate_signer_key

    private_key, vkey = generate_signer_key("mx.local.puente/audit")
    monkeypatch.setenv("PUENTE_AUDIT_LOG_KEY", private_key)
    result = CliRunner().invoke(main, ["init", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["log_vkey"] == vkey
    assert not (hub_env / "keys" / "log.key").exists()
