"""``puente audit export`` keeps earlier exports; ``puente audit verify`` names the damaged
checkpoints line in ``--json`` whenever its message does, speaks Spanish in its details, and
says an empty ``--vkey`` is empty."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from audit import Note, NoteSignature
from tests.conftest import make_hub
from tests.unit.exchange.test_audit_cli import _log, _run, _vkey


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A hub with two checkpoints, which the command line finds through the environment."""
    app = make_hub(tmp_path, database_url, AUDIT_CHECKPOINT_INTERVAL=0.000001)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    _log(app, 30)
    _log(app, 70)
    yield app
    app.extensions["puente.db"].engine.dispose()


def _export(tmp_path: Path, name: str = "export", *extra: str) -> Path:
    out = tmp_path / name
    result = _run("audit", "export", "--out", str(out), "--json", *extra)
    assert result.exit_code == 0, result.output
    return out


def _verify(out: Path, vkey: str, lang: str) -> tuple[int, dict]:
    args = ("audit", "verify", "--full", str(out), "--vkey", vkey, "--json", "--lang", lang)
    result = _run(*args)
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.exit_code
    return result.exit_code, report


# --- export ----------------------------------------------------------------------------------


def test_an_earlier_export_is_not_overwritten(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    english = _run("audit", "export", "--out", str(out), "--lang", "en")
    assert english.exit_code == 1
    assert f"the folder {out} is not empty" in english.stderr
    assert "--force" in english.stderr
    spanish = _run("audit", "export", "--out", str(out), "--lang", "es")
    assert spanish.exit_code == 1
    assert f"la carpeta {out} no está vacía" in spanish.stderr
    assert "--force" in spanish.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_a_folder_of_other_files_is_refused(hub: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "minutes.txt").write_text("the operator's own notes\n")
    result = _run("audit", "export", "--out", str(folder), "--lang", "en")
    assert result.exit_code == 1 and "is not empty" in result.stderr
    assert [path.name for path in folder.iterdir()] == ["minutes.txt"]


def test_force_writes_into_a_folder_that_is_not_empty(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    (out / "minutes.txt").write_text("kept\n")
    again = _export(tmp_path, "export", "--force")
    assert (again / "minutes.txt").read_text() == "kept\n"
    assert _verify(again, _vkey(hub), "en")[0] == 0


def test_an_empty_folder_is_fine(hub: Flask, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert _verify(_export(tmp_path, "empty"), _vkey(hub), "en")[0] == 0


# --- verify ----------------------------------------------------------------------------------


def test_a_garbage_checkpoints_line_is_named_in_json(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    lines = (out / "checkpoints.ndjson").read_text().splitlines()
    with (out / "checkpoints.ndjson").open("a") as checkpoints:
        checkpoints.write("garbage\n")
    code, report = _verify(out, _vkey(hub), "en")
    assert code == 1
    assert report["checkpoints_line"] == len(lines) + 1
    assert report["error"] == (
        f"checkpoints line {len(lines) + 1} is malformed: Expecting value: line 1 column 1 (char 0)"
    )
    code, report = _verify(out, _vkey(hub), "es")
    assert report["checkpoints_line"] == len(lines) + 1
    assert report["error"] == (
        f"la línea {len(lines) + 1} de checkpoints.ndjson está mal formada: se esperaba un "
        "valor en la línea 1, columna 1 (carácter 0)"
    )


def test_a_checkpoint_with_a_flipped_signature_byte_is_named_in_json(
    hub: Flask, tmp_path: Path
) -> None:
    out = _export(tmp_path)
    lines = (out / "checkpoints.ndjson").read_text().splitlines()
    damaged = json.loads(lines[-1])
    note = Note.from_text(damaged["note"])
    signature = note.signatures[0]
    flipped = bytes([signature.signature[0] ^ 1]) + signature.signature[1:]
    forged = NoteSignature(signature.name, signature.key_id, flipped)
    damaged["note"] = Note(note.text, (forged,)).to_text()
    lines[-1] = json.dumps(damaged)
    (out / "checkpoints.ndjson").write_text("\n".join(lines) + "\n")
    code, report = _verify(out, _vkey(hub), "en")
    assert code == 2
    assert f"checkpoints line {len(lines)}" in report["error"]
    assert report["checkpoints_line"] == len(lines)


def test_a_checkpoints_line_of_the_wrong_shape_is_malformed_not_a_crash(
    hub: Flask, tmp_path: Path
) -> None:
    out = _export(tmp_path)
    lines = (out / "checkpoints.ndjson").read_text().splitlines()
    first = json.loads(lines[0])
    first["consistency"] = [1]  # a number where a base64 hash belongs
    (out / "checkpoints.ndjson").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    code, report = _verify(out, _vkey(hub), "es")
    assert (code, report["checkpoints_line"]) == (1, 1)
    assert "está mal formada: se esperaba un objeto JSON con" in report["error"]


def test_a_damaged_entry_is_explained_in_spanish_words(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    entries = (out / "entries.ndjson").read_bytes().splitlines(keepends=True)
    entries[5] = b"{'single quotes': 1}\n"
    (out / "entries.ndjson").write_bytes(b"".join(entries))
    code, report = _verify(out, _vkey(hub), "es")
    assert (code, report["entry_index"]) == (1, 5)
    assert (
        "no es JSON UTF-8 válido: se esperaba un nombre de propiedad entre comillas dobles en "
        "la línea 1, columna 2 (carácter 1)"
    ) in report["error"]
    assert "Expecting" not in report["error"]


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_vkey_is_said_to_be_empty(tmp_path: Path, empty: str) -> None:
    (tmp_path / "export").mkdir()
    for lang, said in (("en", "--vkey is empty"), ("es", "--vkey está vacío")):
        args = ("audit", "verify", "--full", str(tmp_path / "export"), "--vkey", empty)
        result = _run(*args, "--lang", lang)
        assert result.exit_code == 64
        assert said in result.stderr
        assert "folder" not in result.stderr and "carpeta" not in result.stderr
