"""``puente audit export`` and ``puente audit verify`` as an oversight body runs them."""

from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from audit import (
    Checkpoint,
    checkpoint_of,
    generate_cosigner_key,
    generate_signer_key,
    sign_checkpoint,
)
from exchange import audit_export, db
from exchange.audit_log import record_event
from exchange.audit_sequencer import integrate_pending
from exchange.cli import main
from exchange.keys import audit_origin, hub_keys, key_paths
from tests.api.test_audit_api import oversight_token
from tests.conftest import make_hub

CLI_MODULE = Path(__file__).resolve().parents[3] / "exchange" / "cli" / "audit.py"


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url, AUDIT_CHECKPOINT_INTERVAL=0.000001)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    _log(app, 30)
    _log(app, 70)  # checkpoints 30 and 100
    yield app
    app.extensions["puente.db"].engine.dispose()


def _log(app: Flask, count: int) -> None:
    with app.app_context():
        session = db.database(app).sessions()
        for i in range(count):
            record_event(
                session,
                action="record.pushed",
                outcome="success",
                actor_agency="mx.chp.dif",
                child_id=f"ch-{i:04d}",
                record_id=f"rec-{i}",
                record_version=1,
            )
        session.commit()
        session.close()
        integrate_pending(app, force_checkpoint=True)


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _vkey(app: Flask) -> str:
    signer = hub_keys(app).log
    assert signer is not None
    return signer.vkey


def _export(tmp_path: Path) -> Path:
    out = tmp_path / "export"
    result = _run("audit", "export", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entries"] == 100
    return out


def test_export_summary_speaks_the_language_asked_for(hub: Flask, tmp_path: Path) -> None:
    spanish = _run("audit", "export", "--out", str(tmp_path / "es"), "--lang", "es")
    assert spanish.exit_code == 0, spanish.output
    assert spanish.stdout.startswith(
        f"100 entradas y 2 puntos de control exportados a {tmp_path / 'es'} "
        "(último punto de control: "
    )
    english = _run("audit", "export", "--out", str(tmp_path / "en"), "--lang", "en")
    assert english.stdout.startswith(
        f"100 entries and 2 checkpoints exported to {tmp_path / 'en'} (latest checkpoint: "
    )


def test_verify_usage_errors_speak_the_language_asked_for() -> None:
    spanish = _run("audit", "verify", "--lang", "es")
    assert spanish.exit_code == 64
    assert "indique exactamente uno de --full CARPETA y --proof ARCHIVO" in spanish.output
    english = _run("audit", "verify", "--lang", "en")
    assert "give exactly one of --full DIR and --proof FILE" in english.output


def _api(app: Flask, path: str, **headers: str) -> str:
    response = app.test_client().get(path, headers={**oversight_token(app), **headers})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_export_then_verify_with_the_public_key(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    assert {p.name for p in out.iterdir()} == {
        "entries.ndjson",
        "checkpoints.ndjson",
        "leaves.bin",
        "log.vkey",
        "keys.json",
        "manifest.json",
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["origin"] == audit_origin(hub) and manifest["latest_checkpoint_size"] == 100
    assert [
        json.loads(x)["size"] for x in (out / "checkpoints.ndjson").read_text().splitlines()
    ] == [30, 100]

    result = _run("audit", "verify", "--full", str(out), "--vkey", _vkey(hub), "--lang", "en")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: 100 entries and 2 checkpoints verified; latest: 100")
    spanish = _run("audit", "verify", "--full", str(out), "--vkey", _vkey(hub), "--lang", "es")
    assert spanish.stdout.startswith("OK: 100 entradas y 2 puntos de control verificados")


def test_an_export_without_the_log_key_has_no_log_vkey_but_still_verifies(
    hub: Flask, tmp_path: Path
) -> None:
    vkey = _vkey(hub)
    key_paths(hub)["log"].rename(tmp_path / "log.key.aside")
    out = tmp_path / "export"
    result = _run("audit", "export", "--out", str(out), "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "WARNING: this hub's log key is missing" in result.stderr
    assert not (out / "log.vkey").exists()  # never the text "None"
    assert json.loads((out / "keys.json").read_text())["log_vkey"] is None
    # The checkpoints it stored were signed by the key oversight pinned: they still verify.
    verified = _run("audit", "verify", "--full", str(out), "--vkey", vkey, "--lang", "en")
    assert verified.exit_code == 0, verified.output


def test_an_export_cut_short_leaves_the_earlier_export_whole(
    hub: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _export(tmp_path)
    (out / "notes.partial").write_text("an operator's own file\n")
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def database_gone(*_args: object) -> int:
        raise OSError("the database went away")

    monkeypatch.setattr(audit_export, "_write_checkpoints", database_gone)
    with pytest.raises(OSError):
        audit_export.export_log(hub, out, force=True)  # over the earlier one, as asked
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # no .partial
    result = _run("audit", "verify", "--full", str(out), "--vkey", _vkey(hub), "--lang", "en")
    assert result.exit_code == 0, result.output


def test_verifying_without_the_hubs_published_key_is_a_usage_error(
    hub: Flask, tmp_path: Path
) -> None:
    # The export's own log.vkey would "verify" a log re-signed with any key.
    out = str(_export(tmp_path))
    english = _run("audit", "verify", "--full", out, "--lang", "en")
    assert english.exit_code == 64 and english.stdout == ""
    assert "--vkey is missing: pass the hub's published log key" in english.stderr
    assert "/.well-known/puente-hub" in english.stderr
    # A script that asked for JSON gets JSON, not usage text.
    scripted = _run("audit", "verify", "--full", out, "--lang", "en", "--json")
    assert scripted.exit_code == 64
    report = json.loads(scripted.stdout)
    assert report["ok"] is False and report["exit_code"] == 64
    assert report["error"].startswith("--vkey is missing")
    spanish = _run("audit", "verify", "--full", out, "--lang", "es")
    assert spanish.exit_code == 64
    assert "falta --vkey: indique la llave pública del registro del nodo" in spanish.stderr


def _verify_json(out: Path, vkey: str, *extra: str) -> tuple[int, dict]:
    result = _run("audit", "verify", "--full", str(out), "--vkey", vkey, "--json", *extra)
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.exit_code
    return result.exit_code, report


def test_an_export_without_a_signed_checkpoint_fails(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    (out / "checkpoints.ndjson").write_text("")
    code, report = _verify_json(out, _vkey(hub), "--lang", "en")
    assert (code, report["ok"]) == (2, False)
    assert "no checkpoint signed by the hub's log key" in report["error"]
    (out / "entries.ndjson").write_text("")  # an empty export vouches for nothing either
    spanish = _run("audit", "verify", "--full", str(out), "--vkey", _vkey(hub), "--lang", "es")
    assert spanish.exit_code == 2
    assert spanish.stderr.startswith(
        "FALLA: firma o quórum: la exportación no tiene ningún punto de control firmado"
    )


@pytest.mark.parametrize("extra", [b"not json\n", b'{"action":"record_read"}\n'])
def test_lines_added_after_the_latest_checkpoint_fail(
    hub: Flask, tmp_path: Path, extra: bytes
) -> None:
    out = _export(tmp_path)
    with (out / "entries.ndjson").open("ab") as entries:
        entries.write(extra)
    code, report = _verify_json(out, _vkey(hub), "--lang", "en")
    assert (code, report["ok"], report["entry_index"]) == (1, False, 100)
    assert "line 101 of entries.ndjson" in report["error"]
    assert "entries" not in report  # nothing is counted as verified


def test_damage_to_the_unsigned_proofs_is_not_blamed_on_the_hub(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    lines = (out / "checkpoints.ndjson").read_text().splitlines()
    second = json.loads(lines[1])
    first_hash = second["consistency"][0]
    second["consistency"][0] = ("A" if first_hash[0] != "A" else "B") + first_hash[1:]
    (out / "checkpoints.ndjson").write_text(f"{lines[0]}\n{json.dumps(second)}\n")
    code, report = _verify_json(out, _vkey(hub), "--lang", "en")
    assert (code, report["checkpoints_line"]) == (1, 2)
    assert "the two checkpoints are consistent" in report["error"]
    assert "checkpoints" not in report
    spanish = _run("audit", "verify", "--full", str(out), "--vkey", _vkey(hub), "--lang", "es")
    assert spanish.exit_code == 1
    assert spanish.stderr.startswith(
        "FALLA: prueba o entrada incorrecta: línea 2 de checkpoints.ndjson: la prueba de "
        "consistencia guardada del punto de control 30"
    )


def test_the_unsigned_manifest_does_not_decide_the_verdict(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["origin"] = "someone.else/audit"
    (out / "manifest.json").write_text(json.dumps(manifest))
    code, report = _verify_json(out, _vkey(hub))
    assert (code, report["ok"], report["entries"]) == (0, True, 100)
    code, report = _verify_json(out, _vkey(hub), "--origin", "someone.else/audit")
    assert code == 2  # an origin the auditor insists on is checked against the signatures


def test_every_part_of_a_failure_reads_in_spanish(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    vkey = _vkey(hub)
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for path in out.iterdir():
        (swapped / path.name).write_bytes(path.read_bytes())
    lines = (out / "entries.ndjson").read_bytes().splitlines(keepends=True)
    lines[40], lines[41] = lines[41], lines[40]
    (swapped / "entries.ndjson").write_bytes(b"".join(lines))
    bad_entry = _run("audit", "verify", "--full", str(swapped), "--vkey", vkey, "--lang", "es")
    assert bad_entry.exit_code == 1
    assert bad_entry.stderr == (
        "FALLA: prueba o entrada incorrecta: entrada 40: intercambiada con la entrada "
        "siguiente (reordenada)\n"
    )
    report = json.loads(
        _run(
            "audit", "verify", "--full", str(swapped), "--vkey", vkey, "--json", "--lang", "es"
        ).stdout
    )
    assert report["error"].startswith("entrada 40: intercambiada")

    _private, impostor = generate_signer_key(audit_origin(hub))
    signature = _run("audit", "verify", "--full", str(out), "--vkey", impostor, "--lang", "es")
    assert signature.exit_code == 2
    assert signature.stderr.startswith(
        "FALLA: firma o quórum: línea 1 de checkpoints.ndjson: ninguna firma es de una llave "
        "conocida; firmas encontradas: "
    )

    _witness_private, witness = generate_cosigner_key("witness.example")
    quorum = _run(
        *("audit", "verify", "--full", str(out), "--vkey", vkey, "--lang", "es"),
        *("--witness", witness, "--quorum", "1"),
    )
    assert quorum.exit_code == 2
    assert quorum.stderr == (
        "FALLA: firma o quórum: 0 cofirmas de testigos verificadas (ninguna); se requieren al "
        "menos 1\n"
    )

    proof = tmp_path / "entry-42.tlog-proof"
    proof.write_text(_api(hub, "/v1/audit/proofs/inclusion?index=42", Accept="text/x.tlog-proof"))
    # Another entry, canonical and bare (no index to give it away): the root does not match.
    other = tmp_path / "entry-41.json"
    other.write_text(json.loads(_api(hub, "/v1/audit/entries?start=41&end=42"))["entry"])
    wrong_entry = _run(
        *("audit", "verify", "--proof", str(proof), "--entry", str(other)),
        *("--vkey", vkey, "--lang", "es"),
    )
    assert wrong_entry.exit_code == 1
    assert wrong_entry.stderr.startswith(
        "FALLA: prueba o entrada incorrecta: la entrada 42 no queda probada en el punto de "
        f"control 100 de {audit_origin(hub)}: no coincide la raíz: calculada "
    )
    assert "se esperaba" in wrong_entry.stderr

    garbage = _run("audit", "verify", "--full", str(out), "--vkey", "garbage", "--lang", "es")
    assert garbage.exit_code == 64
    assert (
        "llave no válida: la llave verificadora debe tener la forma "
        "<nombre>+<ID de llave>+<llave>" in garbage.stderr
    )


def _tampered(out: Path, tmp_path: Path, edit: Callable[[list[bytes]], None]) -> Path:
    copy = tmp_path / "tampered"
    copy.mkdir()
    for path in out.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    lines = (out / "entries.ndjson").read_bytes().splitlines(keepends=True)
    edit(lines)
    (copy / "entries.ndjson").write_bytes(b"".join(lines))
    return copy


# Entry 29 is the last one checkpoint 30 covers: the kind of tampering there is named as it is
# anywhere else, although the entry after it is only signed by checkpoint 100.
@pytest.mark.parametrize(
    ("edit", "english", "spanish"),
    [
        (
            lambda e: e.__delitem__(29),
            "entry 29: missing from the export: the entry checkpoint 100 ",
            "entrada 29: falta en la exportación: aquí está la entrada que el punto de control "
            "100 ",
        ),
        (
            lambda e: e.__setitem__(slice(29, 31), [e[30], e[29]]),
            "entry 29: swapped with the entry after it (reordered)",
            "entrada 29: intercambiada con la entrada siguiente (reordenada)",
        ),
        (
            lambda e: e.insert(29, e[60]),
            "entry 29: out of order: checkpoint 100 ",
            "entrada 29: fuera de orden: el punto de control 100 ",
        ),
        (
            lambda e: e.insert(30, e[29]),
            "entry 30: a duplicate of the entry before it (inserted)",
            "entrada 30: duplicado de la entrada anterior (insertada)",
        ),
    ],
)
def test_tampering_at_a_checkpoint_boundary_is_named(  # type: ignore[no-untyped-def]
    hub: Flask, tmp_path: Path, edit, english: str, spanish: str
) -> None:
    tampered = _tampered(_export(tmp_path), tmp_path, edit)
    args = ("audit", "verify", "--full", str(tampered), "--vkey", _vkey(hub), "--json")
    report = json.loads(_run(*args, "--lang", "en").stdout)
    assert report["exit_code"] == 1
    assert report["entry_index"] == int(english.split(":")[0].split()[1])
    assert report["error"].startswith(english)
    assert json.loads(_run(*args, "--lang", "es").stdout)["error"].startswith(spanish)


def test_another_key_is_a_signature_failure(hub: Flask, tmp_path: Path) -> None:
    out = _export(tmp_path)
    _private, impostor = generate_signer_key(audit_origin(hub))
    key_file = tmp_path / "impostor.vkey"
    key_file.write_text(impostor + "\n")
    result = _run("audit", "verify", "--full", str(out), "--vkey", str(key_file), "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["exit_code"] == 2 and "checkpoints line 1" in report["error"]


def test_a_proof_file_verifies_offline(hub: Flask, tmp_path: Path) -> None:
    proof = tmp_path / "entry-42.tlog-proof"
    proof.write_text(_api(hub, "/v1/audit/proofs/inclusion?index=42", Accept="text/x.tlog-proof"))
    result = _run("audit", "verify", "--proof", str(proof), "--vkey", _vkey(hub), "--lang", "en")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "OK: entry 42 is in the signed log of size 100"
    assert json.loads(lines[1])["record_id"] == "rec-12"  # the entry carried in the file

    other = tmp_path / "entry-41.ndjson"
    other.write_text(_api(hub, "/v1/audit/entries?start=41&end=42"))
    wrong_entry = _run(
        "audit",
        "verify",
        "--proof",
        str(proof),
        "--entry",
        str(other),
        "--vkey",
        _vkey(hub),
        "--json",
    )
    assert wrong_entry.exit_code == 1
    report = json.loads(wrong_entry.stdout)
    # The line names another entry: said as such, not only as a root that does not match.
    assert report["error"] == (
        f"entry 42 is not proven to be in checkpoint 100 of {audit_origin(hub)}: --entry is "
        "entry 41 (its line says so), the proof is for entry 42"
    )
    assert report["entry_index"] == 42
    # The right entry under another index: the proof holds, but the hub's entries list and its
    # proofs disagree about where the entry is, which the auditor must hear of.
    misplaced = tmp_path / "entry-42-as-12.ndjson"
    line = json.loads(_api(hub, "/v1/audit/entries?start=42&end=43"))
    misplaced.write_text(json.dumps({**line, "index": 12}))
    moved = _run(
        "audit", "verify", "--proof", str(proof), "--entry", str(misplaced),
        "--vkey", _vkey(hub), "--json",
    )  # fmt: skip
    assert moved.exit_code == 1, moved.output
    assert json.loads(moved.stdout)["error"].endswith(
        "--entry is entry 12 (its line says so), the proof is for entry 42"
    )
    # The right entry, pretty-printed: it is the form, not the log, that is wrong.
    pretty = tmp_path / "entry-42-pretty.json"
    entry_text = json.loads(_api(hub, "/v1/audit/entries?start=42&end=43"))["entry"]
    pretty.write_text(json.dumps(json.loads(entry_text), indent=2))
    for lang, words in (
        ("en", "the entry given is not in RFC 8785 canonical form"),
        ("es", "la entrada indicada no está en la forma canónica RFC 8785"),
    ):
        explained = _run(
            "audit", "verify", "--proof", str(proof), "--entry", str(pretty),
            "--vkey", _vkey(hub), "--lang", lang,
        )  # fmt: skip
        assert explained.exit_code == 1 and words in explained.output, explained.output
    assert report["checkpoint"]["size"] == 100
    assert report["checkpoint"]["origin"] == audit_origin(hub)
    right = tmp_path / "entry-42.ndjson"
    right.write_text(_api(hub, "/v1/audit/entries?start=42&end=43"))
    assert (
        _run(
            "audit", "verify", "--proof", str(proof), "--entry", str(right), "--vkey", _vkey(hub)
        ).exit_code
        == 0
    )

    _private, impostor = generate_signer_key(audit_origin(hub))
    assert _run("audit", "verify", "--proof", str(proof), "--vkey", impostor).exit_code == 2


def test_since_a_kept_checkpoint(hub: Flask, tmp_path: Path) -> None:
    kept = tmp_path / "seen-30.checkpoint"
    with hub.app_context():
        from exchange.audit_log import AuditCheckpoint

        session = db.database(hub).sessions()
        kept.write_text(session.get(AuditCheckpoint, 30).note)  # type: ignore[union-attr]
        session.close()
    out = _export(tmp_path)
    full = _run(
        "audit", "verify", "--full", str(out), "--vkey", _vkey(hub), "--since", str(kept), "--json"
    )
    assert full.exit_code == 0 and json.loads(full.stdout)["kept_checkpoints"] == [30]

    proof = tmp_path / "p.tlog-proof"
    proof.write_text(_api(hub, "/v1/audit/proofs/inclusion?index=99", Accept="text/x.tlog-proof"))
    args = ["audit", "verify", "--proof", str(proof), "--vkey", _vkey(hub), "--since", str(kept)]
    assert _run(*args).exit_code == 64  # sizes differ: a consistency proof is needed
    consistency = tmp_path / "c.json"
    consistency.write_text(_api(hub, "/v1/audit/proofs/consistency?first=30&second=100"))
    ok = _run(*args, "--consistency", str(consistency), "--lang", "en")
    assert ok.exit_code == 0, ok.output
    assert "OK: consistent with your checkpoint 30" in ok.stdout

    signer = hub_keys(hub).log
    assert signer is not None
    genuine = checkpoint_of(kept.read_text())
    forked = tmp_path / "forked-30.checkpoint"
    forked.write_text(sign_checkpoint(Checkpoint(genuine.origin, 30, b"\x01" * 32), [signer]))
    bad = _run(
        "audit",
        "verify",
        "--proof",
        str(proof),
        "--vkey",
        _vkey(hub),
        "--since",
        str(forked),
        "--consistency",
        str(consistency),
        "--json",
    )
    assert bad.exit_code == 3
    kept = json.loads(bad.stdout)["checkpoints"][0]
    assert (kept["size"], kept["root"]) == (30, base64.b64encode(b"\x01" * 32).decode())
    assert kept["message"].startswith("the kept checkpoint 30 ")


def test_events_search_only_an_export_that_extends_a_kept_checkpoint(
    hub: Flask, tmp_path: Path
) -> None:
    # The search answers from what the hub signed; a kept checkpoint of another history (a
    # restored backup that signed a fork) means the export is not the log the auditor saw.
    with hub.app_context():
        from exchange.audit_log import AuditCheckpoint

        session = db.database(hub).sessions()
        genuine_note = session.get(AuditCheckpoint, 30).note  # type: ignore[union-attr]
        session.close()
    genuine, forked = tmp_path / "seen-30.checkpoint", tmp_path / "forked-30.checkpoint"
    genuine.write_text(genuine_note)
    signer = hub_keys(hub).log
    assert signer is not None
    origin = checkpoint_of(genuine_note).origin
    forked.write_text(sign_checkpoint(Checkpoint(origin, 30, b"\x01" * 32), [signer]))
    out = _export(tmp_path)
    search = ["audit", "events", str(out), "--vkey", _vkey(hub), "--action", "record_pushed"]
    found = _run(*search, "--kept", str(genuine), "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["events"]
    refused = _run(*search, "--kept", str(forked), "--json")
    assert refused.exit_code == 3, refused.output
    assert "events" not in json.loads(refused.stdout)


def test_wrong_usage_exits_64(hub: Flask, tmp_path: Path) -> None:
    assert _run("audit", "verify", "--vkey", _vkey(hub)).exit_code == 64
    out = _export(tmp_path)
    proof = tmp_path / "p"
    proof.write_text("x")
    assert _run("audit", "verify", "--full", str(out), "--proof", str(proof)).exit_code == 64
    assert _run("audit", "verify", "--proof", str(proof)).exit_code == 64  # no key


def test_the_verify_module_imports_no_hub_layers() -> None:
    allowed = set(sys.stdlib_module_names) | {"click", "audit", "__future__"}
    tree = ast.parse(CLI_MODULE.read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {
        (n.module if isinstance(n, ast.ImportFrom) else n.names[0].name).split(".")[0]
        for n in top_level
    }
    assert names <= allowed, names - allowed


def test_the_pure_verifier_runs_with_flask_and_sqlalchemy_absent(
    hub: Flask, tmp_path: Path
) -> None:
    out = _export(tmp_path)
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("flask", "sqlalchemy", "exchange", "werkzeug"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from pathlib import Path
from audit import Verifier
from audit.verify_export import verify_export
out = Path({str(out)!r})
summary = verify_export(
    lambda: open(out / "entries.ndjson", "rb"),
    open(out / "checkpoints.ndjson", "rb"),
    [Verifier.from_vkey({_vkey(hub)!r})],
)
print(summary.entries, summary.latest.size)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["100", "100"]


def test_puente_audit_verify_needs_only_the_audit_package_and_click(
    hub: Flask, tmp_path: Path
) -> None:
    # What an oversight body installs (docs/audit.md §3): the hub's own libraries, the schemas
    # and the consent engine are not there, and `puente audit verify` still works.
    out = _export(tmp_path)
    vkey = tmp_path / "hub.vkey"
    vkey.write_text(_vkey(hub) + "\n", encoding="utf-8")
    absent = (
        "flask", "sqlalchemy", "werkzeug", "jsonschema", "jsonschema_rs", "schemas", "consent",
        "orjson", "authlib", "alembic", "psycopg", "gunicorn", "tqdm",
    )  # fmt: skip
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {absent!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from exchange.cli import main
main(["audit", "verify", "--full", {str(out)!r}, "--vkey", {str(vkey)!r}, "--lang", "en"])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 100 entries"), result.stdout


def test_an_export_to_a_folder_that_cannot_be_written_says_so(hub: Flask, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    for lang, words in (("en", "cannot write the export to"), ("es", "no se puede escribir")):
        result = CliRunner().invoke(
            main, ["audit", "export", "--out", str(blocker / "export"), "--lang", lang]
        )
        assert result.exit_code == 1, result.output
        assert words in result.output and "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
