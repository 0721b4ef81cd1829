"""``puente audit verify`` mistakes on the command line are wrong usage, exit 64 (docs/audit.md
§4), in the language asked for: never exit 2, which means a signature the hub cannot stand
behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from audit import generate_signer_key
from exchange.cli import main


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="puente", env={"LANG": "C"})


@pytest.fixture
def vkey_file(tmp_path: Path) -> Path:
    _private, vkey = generate_signer_key("mx.chp.puente/audit")
    path = tmp_path / "hub-chp.vkey"
    path.write_text(vkey + "\n", encoding="utf-8")
    return path


# (Click names the kind of path, "Carpeta"/"Directory", once per process, when the command's
# module is first imported; one command line is one process, so only the rest is checked here.)
def test_a_full_folder_that_does_not_exist_is_usage_in_either_language(vkey_file: Path) -> None:
    args = ["audit", "verify", "--full", "nodir", "--vkey", str(vkey_file)]
    spanish = _run(*args, "--lang", "es")
    assert spanish.exit_code == 64, spanish.output
    assert "Error: Valor no válido para '--full': " in spanish.stderr
    assert "'nodir' no existe." in spanish.stderr
    assert spanish.stdout == ""
    english = _run(*args, "--lang", "en")
    assert english.exit_code == 64, english.output
    assert "Error: Invalid value for '--full': " in english.stderr
    assert "'nodir' does not exist." in english.stderr
    scripted = _run(*args, "--lang", "es", "--json")
    assert scripted.exit_code == 64
    report = json.loads(scripted.stdout)
    assert report["ok"] is False and report["exit_code"] == 64
    assert report["error"].startswith("Valor no válido para '--full': ")
    assert report["error"].endswith("'nodir' no existe.")


@pytest.mark.parametrize(
    "mistake",
    [
        ["--proof", "missing.tlog-proof"],
        ["--full", ".", "--since", "missing.checkpoint"],
        ["--full", ".", "--quorum", "many"],
        ["--full", ".", "--no-such-option"],
    ],
)
def test_other_command_line_mistakes_are_usage_not_a_signature_failure(
    vkey_file: Path, mistake: list[str]
) -> None:
    result = _run("audit", "verify", *mistake, "--vkey", str(vkey_file), "--lang", "en")
    assert result.exit_code == 64, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("option", ["--vkey", "--witness"])
def test_a_key_file_that_does_not_exist_says_so(
    tmp_path: Path, vkey_file: Path, option: str
) -> None:
    args = ["audit", "verify", "--full", str(tmp_path)]
    args += [option, "nonexistent.vkey"] if option == "--vkey" else ["--vkey", str(vkey_file)]
    if option == "--witness":
        args += ["--witness", "nonexistent.vkey"]
    spanish = _run(*args, "--lang", "es")
    assert spanish.exit_code == 64, spanish.output
    assert f"Error: {option} nonexistent.vkey: no existe ese archivo; " in spanish.stderr
    assert "como texto, llave no válida: " in spanish.stderr
    english = _run(*args, "--lang", "en", "--json")
    assert english.exit_code == 64, english.output
    assert json.loads(english.stdout)["error"].startswith(
        f"{option} nonexistent.vkey: no such file; as text, bad key: "
    )


def test_a_key_that_is_a_folder_cannot_be_read(tmp_path: Path) -> None:
    result = _run("audit", "verify", "--full", str(tmp_path), "--vkey", str(tmp_path))
    assert result.exit_code == 64, result.output
    assert f"--vkey {tmp_path}: the file cannot be read (it is a folder)" in result.stderr


def test_a_key_file_whose_name_has_a_plus_is_read_as_a_file(
    tmp_path: Path, vkey_file: Path
) -> None:
    named = vkey_file.rename(tmp_path / "hub+chp.vkey")
    empty = tmp_path / "not-an-export"
    empty.mkdir()
    result = _run("audit", "verify", "--full", str(empty), "--vkey", str(named), "--lang", "en")
    # The key was read: what stops the command is the folder, which holds no export.
    assert result.exit_code == 64, result.output
    assert f"{empty / 'entries.ndjson'} not found: is {empty} an export?" in result.stderr
