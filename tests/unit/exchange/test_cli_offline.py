"""An oversight body verifies an exported log with the ``audit`` package alone: the commands
it runs must not load the hub (Flask, SQLAlchemy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from exchange.cli import main

# Importing a module set to None in sys.modules raises ImportError: the hub cannot load.
WITHOUT_HUB = (
    "import sys\n"
    "for name in ('flask', 'sqlalchemy', 'werkzeug', 'alembic'):\n"
    "    sys.modules[name] = None\n"
    "from exchange.cli import main\n"
    "main(sys.argv[1:], prog_name='puente')\n"
)


def run_without_hub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_HUB, *args], capture_output=True, text=True, check=False
    )


def test_audit_verify_runs_without_flask_or_sqlalchemy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "hub"))
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    added = runner.invoke(
        main,
        [
            "agency",
            "add",
            "mx.chp.dif",
            "--name",
            "DIF Chiapas",
            "--level",
            "state",
            "--kind",
            "state_dif",
            "--jurisdiction",
            "07",
            "--scope",
            "records:write",
            "--secret",
            "--json",
        ],
    )
    assert added.exit_code == 0, added.output
    export = tmp_path / "export"
    exported = runner.invoke(main, ["audit", "export", "--out", str(export)])
    assert exported.exit_code == 0, exported.output
    vkey = (export / "log.vkey").read_text().strip()

    verified = run_without_hub("audit", "verify", "--full", str(export), "--vkey", vkey)
    assert verified.returncode == 0, verified.stderr + verified.stdout

    entries = export / "entries.ndjson"
    entries.write_text(entries.read_text().replace("mx.chp.dif", "mx.chp.dig", 1))
    tampered = run_without_hub("audit", "verify", "--full", str(export), "--vkey", vkey)
    assert tampered.returncode == 1, tampered.stderr + tampered.stdout


def test_validate_runs_without_the_hub(tmp_path: Path) -> None:
    document = tmp_path / "record.json"
    document.write_text('{"case": {}}')
    result = run_without_hub("validate", "--lang", "en", str(document))
    assert result.returncode == 1, result.stderr
    assert "/case" in result.stdout


def test_help_and_hub_commands_say_what_is_not_installed() -> None:
    """An oversight body's verifier install (docs/audit.md §3) has no Flask: `puente --help`
    still lists every command, and a hub command says it needs the whole hub."""
    listed = run_without_hub("--help")
    assert listed.returncode == 0, listed.stderr
    assert "audit" in listed.stdout and "agency    (not installed here" in listed.stdout
    refused = run_without_hub("agency", "list")
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert "'puente agency' needs the whole hub installed (flask is missing)" in refused.stderr
    assert "necesita el nodo completo instalado" in refused.stderr
