"""``puente init`` and ``puente db upgrade`` as an administrator runs them."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from exchange import listening
from exchange.cli import hub as hub_cli
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
    # Every key file init made is listed, the webhook signing key too (backups rely on it).
    assert sorted(Path(path).name for path in created["keys_created"]) == [
        "hub-signing.key",
        "log.key",
        "witness.key",
    ]
    assert all(Path(path).parent == hub_env / "keys" for path in created["keys_created"])
    assert created["log_vkey"].startswith("mx.local.puente/audit+")
    for name in ("log.key", "witness.key", "hub-signing.key"):
        mode = stat.S_IMODE(os.stat(hub_env / "keys" / name).st_mode)
        assert mode == 0o600, oct(mode)
    assert (hub_env / "puente.db").exists()
    # The database holds the child index: its owner alone reads it (the WAL file too).
    for name in ("puente.db", "puente.db-wal"):
        if (hub_env / name).exists():
            assert stat.S_IMODE(os.stat(hub_env / name).st_mode) == 0o600, name

    again = runner.invoke(main, ["init", "--json"])
    assert again.exit_code == 0, again.output
    second = json.loads(again.output)
    assert second["keys_created"] == []
    assert second["log_vkey"] == created["log_vkey"]  # keys are never replaced


def key_changes(instance: Path) -> list[dict[str, object]]:
    with sqlite3.connect(instance / "puente.db") as connection:
        rows = connection.execute(
            "SELECT entry FROM audit_entry WHERE action = 'key_changed' ORDER BY rowid"
        ).fetchall()
    return [json.loads(row[0]) for row in rows]


def test_init_writes_a_key_it_makes_again_to_the_audit_log(hub_env: Path) -> None:
    """A hub's first keys need no entry (the log begins empty, under the published log key);
    a key made later for the same hub is a key change oversight sees, named by a public id."""
    runner = CliRunner()
    created = json.loads(runner.invoke(main, ["init", "--json"]).output)
    assert key_changes(hub_env) == []
    assert runner.invoke(main, ["init"]).exit_code == 0
    assert key_changes(hub_env) == []  # nothing made, nothing written

    witness_hash = created["witness_vkey"].split("+")[1]
    for name in ("witness.key", "hub-signing.key"):
        (hub_env / "keys" / name).unlink()
    again = json.loads(runner.invoke(main, ["init", "--json"]).output)
    new_hash = again["witness_vkey"].split("+")[1]
    assert new_hash != witness_hash
    changes = key_changes(hub_env)
    assert [(e["reason_code"], e["object"]) for e in changes] == [
        ("witness_key_created", {"type": "key", "id": f"witness:{new_hash}"}),
        ("signing_key_created", {"type": "key", "id": f"kid:{again['signing_jwk']['kid']}"}),
    ]
    assert all(e["outcome"] == "success" for e in changes)
    for name in ("witness.key", "hub-signing.key"):  # nothing secret in the entries
        text = (hub_env / "keys" / name).read_text().strip()
        # The whole key: a note key's base64 after its four "+"-separated fields (the base64
        # itself may hold "+"), a PEM key's body.
        if text.startswith("PRIVATE+KEY+"):
            secret = text.split("+", 4)[-1]
        else:
            secret = "".join(text.splitlines()[1:-1])
        assert all(secret not in json.dumps(e) for e in changes)


def test_db_upgrade_and_current(hub_env: Path) -> None:
    # db upgrade upgrades an existing database only (init makes a new hub): an empty one here.
    hub_env.mkdir(mode=0o700, parents=True)
    os.close(os.open(hub_env / "puente.db", os.O_WRONLY | os.O_CREAT, 0o600))
    runner = CliRunner()
    result = runner.invoke(main, ["db", "upgrade", "--lang", "en"])
    assert result.exit_code == 0, result.output
    current = runner.invoke(main, ["db", "current", "--lang", "en"])
    revision = current.output.split()[1]
    assert revision != "None"
    assert current.output.split()[3] == revision
    assert result.output == f"database at revision {revision}\n"
    en_espanol = runner.invoke(main, ["db", "current", "--lang", "es"])
    assert en_espanol.output == f"actual: {revision}  más reciente: {revision}\n"
    upgraded = runner.invoke(main, ["db", "upgrade", "--lang", "es"])
    assert upgraded.output == f"base de datos en la revisión {revision}\n"


def test_db_current_on_an_empty_database_says_to_initialise(hub_env: Path) -> None:
    missing = CliRunner().invoke(main, ["db", "current", "--lang", "en"])
    assert missing.exit_code == 1
    assert f"There is no hub in {hub_env}" in missing.output and "puente init" in missing.output
    assert not (hub_env / "puente.db").exists()  # asking made no hub
    hub_env.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(hub_env / "puente.db").close()
    result = CliRunner().invoke(main, ["db", "current", "--lang", "en"])
    assert result.exit_code == 1
    assert "the database is empty" in result.output and "puente init" in result.output


@pytest.mark.parametrize(
    "command", [["db", "current"], ["db", "upgrade"], ["agency", "list"], ["outbox", "list"]]
)
def test_an_unreachable_database_is_one_line_not_a_traceback(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv(
        "PUENTE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    )
    result = CliRunner().invoke(main, [*command, "--lang", "es"] if command[0] == "db" else command)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "PUENTE_DATABASE_URL" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_init_speaks_the_language_asked_for(hub_env: Path) -> None:
    runner = CliRunner()
    spanish = runner.invoke(main, ["init", "--lang", "es"])
    assert spanish.exit_code == 0, spanish.output
    assert f"listo en {hub_env}" in spanish.output
    assert "  base de datos: sqlite" in spanish.output
    assert "  llave nueva: " in spanish.output
    assert "  llave del registro: mx.local.puente/audit+" in spanish.output
    assert "database:" not in spanish.output and "log key:" not in spanish.output
    english = runner.invoke(main, ["init"], env={"PUENTE_LANG": "en"})
    assert f"ready in {hub_env}" in english.output
    assert "  database: sqlite" in english.output
    assert "  log key: mx.local.puente/audit+" in english.output


def test_keys_generate_speaks_the_language_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    spanish = runner.invoke(main, ["keys", "generate", "--name", "es"], env={"PUENTE_LANG": "es"})
    assert spanish.exit_code == 0, spanish.output
    folder = tmp_path.resolve()
    assert f"llave privada (guárdela en secreto): {folder / 'es.key'}" in spanish.output
    assert f"llave pública: {folder / 'es.pub'} y {folder / 'es.jwk'}" in spanish.output
    assert "keep secret" not in spanish.output
    english = runner.invoke(main, ["keys", "generate", "--name", "en", "--lang", "en"])
    assert f"private key (keep secret): {folder / 'en.key'}" in english.output
    assert f"public key: {folder / 'en.pub'} and {folder / 'en.jwk'}" in english.output


@pytest.mark.parametrize("name", ["", "../escaped", ".hidden", "a/b"])
def test_keys_generate_writes_plain_names_inside_the_folder_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keys").mkdir()
    result = CliRunner().invoke(main, ["keys", "generate", "--out", "keys", "--name", name])
    assert result.exit_code == 2, result.output
    assert "--name" in result.output
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_keys_generate_leaves_no_private_key_when_a_public_file_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "dif.pub").write_text("an older public key\n")
    result = CliRunner().invoke(main, ["keys", "generate", "--out", "keys", "--name", "dif"])
    assert result.exit_code == 1 and "dif.pub" in result.output
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["dif.pub"]
    again = CliRunner().invoke(main, ["keys", "generate", "--out", "keys", "--name", "dif2"])
    assert again.exit_code == 0, again.output


def test_key_from_environment_is_used(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.note import generate_signer_key

    private_key, vkey = generate_signer_key("mx.local.puente/audit")
    monkeypatch.setenv("PUENTE_AUDIT_LOG_KEY", private_key)
    result = CliRunner().invoke(main, ["init", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["log_vkey"] == vkey
    assert not (hub_env / "keys" / "log.key").exists()


@pytest.fixture
def exec_calls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[tuple[list[str], dict[str, str]]]:
    """What ``puente serve``/``demo`` would exec (argv, environment), instead of gunicorn. The
    metric folders a server would remove when it stops go under ``tmp_path``: none is run."""
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execvpe", lambda _file, argv, env: calls.append((argv, env)))
    (tmp_path / "shm").mkdir()
    monkeypatch.setattr(hub_cli, "SHARED_MEMORY", tmp_path / "shm")
    monkeypatch.delenv("PUENTE_ACCESS_LOG", raising=False)
    monkeypatch.delenv("PUENTE_BIND", raising=False)
    # Nothing listens: whether the fixed ports used here are free on this machine is no matter.
    monkeypatch.setattr(listening, "cannot_listen", lambda bind: None)
    return calls


def test_serve_passes_bind_and_instance_to_gunicorn(
    hub_env: Path, exec_calls: list[tuple[list[str], dict[str, str]]]
) -> None:
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    result = CliRunner().invoke(main, ["serve", "--bind", "127.0.0.1:8765"])
    assert result.exit_code == 0, result.output
    [(argv, env)] = exec_calls
    assert argv[-3:] == ["-c", "python:exchange.serving", "exchange:create_app()"]
    assert env["PUENTE_BIND"] == "127.0.0.1:8765"
    assert env["PUENTE_INSTANCE_PATH"] == str(hub_env)
    assert "PUENTE_ACCESS_LOG" not in env  # serving.py's default: stderr


def test_serve_warns_of_a_database_that_needs_puente_init_or_an_upgrade(
    hub_env: Path, exec_calls: list[tuple[list[str], dict[str, str]]]
) -> None:
    missing = CliRunner().invoke(main, ["serve"])  # a mistyped instance folder: no hub there
    assert missing.exit_code == 1 and "There is no hub in" in missing.output
    assert exec_calls == [] and not (hub_env / "puente.db").exists()
    hub_env.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(hub_env / "puente.db").close()
    empty = CliRunner().invoke(main, ["serve"])
    assert empty.exit_code == 0, empty.output
    assert "/ the database is empty: run 'puente init'" in empty.stderr
    assert len(exec_calls) == 1  # it serves anyway: /readyz tells the balancer
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    ready = CliRunner().invoke(main, ["serve"])
    assert ready.exit_code == 0 and "warning" not in ready.stderr


def test_serve_reads_bind_from_the_environment(
    hub_env: Path,
    exec_calls: list[tuple[list[str], dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUENTE_BIND", "127.0.0.1:8766")
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 0, result.output
    assert exec_calls[0][1]["PUENTE_BIND"] == "127.0.0.1:8766"


def test_demo_writes_the_access_log_to_the_instance_folder(
    hub_env: Path, exec_calls: list[tuple[list[str], dict[str, str]]]
) -> None:
    result = CliRunner().invoke(main, ["demo", "--bind", "127.0.0.1:8765"])
    assert result.exit_code == 0, result.output
    [(_argv, env)] = exec_calls
    access_log = str(hub_env / "access.log")
    assert env["PUENTE_ACCESS_LOG"] == access_log
    assert f"registro de accesos / access log:         {access_log}" in result.output
    assert "http://127.0.0.1:8765/openapi.json" in result.output


def test_the_environment_overrides_the_demo_access_log(
    hub_env: Path,
    exec_calls: list[tuple[list[str], dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUENTE_ACCESS_LOG", "-")
    result = CliRunner().invoke(main, ["demo", "--bind", "127.0.0.1:8765"])
    assert result.exit_code == 0, result.output
    assert exec_calls[0][1]["PUENTE_ACCESS_LOG"] == "-"
    assert "registro de accesos / access log:         stderr" in result.output


def test_a_database_newer_than_the_code_says_so_everywhere(hub_env: Path) -> None:
    """The code rolled back after a newer version upgraded the database: upgrading cannot
    help, and every place that advises says which version to run instead."""
    import sqlite3

    from exchange import create_app

    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    with sqlite3.connect(hub_env / "puente.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0999'")
    current = runner.invoke(main, ["db", "current", "--lang", "en"])
    assert current.exit_code == 1
    assert "revision 0999, which this version of Puente does not know" in current.output
    assert "run 'puente db upgrade'" not in current.output
    upgrade = runner.invoke(main, ["db", "upgrade", "--lang", "es"])
    assert upgrade.exit_code == 1 and "Traceback" not in upgrade.output
    assert "la actualizó una versión más nueva" in upgrade.output
    ready = create_app().test_client().get("/readyz", headers={"Accept-Language": "en"})
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["migrations"].startswith("at 0999, newer than")
    assert "a newer version upgraded it" in ready.get_json()["detail"]


def test_init_makes_the_secrets_of_an_older_hub_private(hub_env: Path) -> None:
    # Hubs made before the database and keys were created owner-only keep what they had.
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    opened = [hub_env / "puente.db", hub_env / "keys", hub_env / "keys" / "log.key"]
    for path in opened:
        path.chmod(0o755 if path.is_dir() else 0o644)
    result = CliRunner().invoke(main, ["init", "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)["made_private"]) == {str(p) for p in opened}
    for path in opened:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
    again = CliRunner().invoke(main, ["init", "--lang", "en"])
    assert "now readable by its owner only" not in again.output  # nothing left to close
