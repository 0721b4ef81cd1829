"""Running a hub in production (README "Configuration" and "Operations"): a data key never
reaches a message or log line; which data key encrypts when ``PUENTE_DATA_KEY`` is set;
puente.cfg and the instance folder others may change; settings of ``puente.cfg`` named as
written there; the file drop's folder; ``keys generate --out`` under umask 000."""

from __future__ import annotations

import base64
import json
import logging
import logging.handlers
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from gunicorn.config import Config
from sqlalchemy import select

from exchange import create_app, db
from exchange.audit_log import AuditEntry
from exchange.cli import main
from exchange.config import SettingError
from exchange.crypto import DataKeyError, DataKeyring, data_keyring, data_keys_dir, rows_per_key
from exchange.serving import JsonLogger
from tests.unit.exchange.test_crypto import push_records
from tests.unit.exchange.test_serving import detach


def key_text() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def puente(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="puente")


def pieces(text: str, size: int = 8) -> list[str]:
    """Every run of ``size`` characters of a key's text: none may be shown anywhere."""
    return [text[start : start + size] for start in range(len(text) - size + 1)]


def shows_any(said: str, key: str) -> bool:
    return any(piece in said for piece in pieces(key.rstrip("=")))


@pytest.fixture
def records() -> Iterator[logging.handlers.BufferingHandler]:
    """What the hub's loggers (``puente.*``) write."""
    logger = logging.getLogger("puente")
    handler = logging.handlers.BufferingHandler(10_000)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


# -- 1. a data key is never written to a message or the log --------------------------------------


@pytest.mark.parametrize("separator", [";", " ", "=", ""])
def test_a_malformed_entry_is_named_by_its_position_never_by_its_text(
    tmp_path: Path, separator: str
) -> None:
    key = key_text()
    keyring = DataKeyring(tmp_path / "none", f"k0:{key_text()}, k1{separator}{key}")
    [fault] = keyring.faults
    spanish, english = fault.described()
    assert english == "PUENTE_DATA_KEY (entry 2): not a valid key (entries are key_id:base64key)"
    assert spanish == (
        "PUENTE_DATA_KEY (entrada 2): no es una llave válida (cada entrada es "
        "id_de_llave:llave_en_base64)"
    )
    for said in (spanish, english, fault.reason, fault.source, *keyring.problems):
        assert not shows_any(said, key), said


def test_an_entry_with_the_key_where_the_id_goes_does_not_show_it(tmp_path: Path) -> None:
    # The key (without its '=', so a well-formed id) before the ':': the id is not shown.
    key = key_text().rstrip("=")
    keyring = DataKeyring(tmp_path / "none", f"{key}:k1")
    [fault] = keyring.faults
    assert fault.source == "PUENTE_DATA_KEY (entry 1)"
    assert not any(shows_any(said, key) for said in (*fault.described(), fault.reason))


def test_a_well_formed_id_is_named_with_the_position(tmp_path: Path) -> None:
    keyring = DataKeyring(tmp_path / "none", "dk_x:bm8=")
    [fault] = keyring.faults
    assert fault.described() == (
        "PUENTE_DATA_KEY (entrada 1, dk_x): no es una llave válida (2 bytes, se esperaban 32)",
        "PUENTE_DATA_KEY (entry 1, dk_x): not a valid key (2 bytes, want 32)",
    )
    with pytest.raises(DataKeyError) as refused:
        keyring.current()
    assert "PUENTE_DATA_KEY (entry 1, dk_x) is not a valid key" in str(refused.value)


def test_no_key_text_in_serve_s_warning_nor_in_the_readiness_log(
    hub_env: Flask,
    exec_calls: list[object],
    monkeypatch: pytest.MonkeyPatch,
    records: logging.handlers.BufferingHandler,
) -> None:
    key = key_text()
    monkeypatch.setenv("PUENTE_DATA_KEY", f"k1;{key}")
    served = puente("serve")
    assert served.exit_code == 0, served.output
    assert "PUENTE_DATA_KEY (entry 1): not a valid key" in served.stderr
    assert "PUENTE_DATA_KEY (entrada 1): no es una llave válida" in served.stderr
    assert not shows_any(served.output + served.stderr, key)
    # /readyz of a hub started with that setting: its body and every line it logs.
    app = create_app(
        {"TESTING": True, "READ_REFUSAL_FLOOR": 0, "DATABASE_URL": hub_env.config["DATABASE_URL"]}
    )
    for lang in ("en", "es"):
        answer = app.test_client().get("/readyz", headers={"Accept-Language": lang})
        assert answer.status_code == 503
        assert not shows_any(answer.get_data(as_text=True), key)
    logged = [logging.getLogger("puente").handlers[0].format(r) for r in records.buffer]
    logged += [record.getMessage() for record in records.buffer]
    assert any("PUENTE_DATA_KEY (entry 1)" in line for line in logged), logged
    assert not any(shows_any(line, key) for line in logged)
    app.extensions["puente.db"].engine.dispose()


# -- 2. which data key encrypts when PUENTE_DATA_KEY is set ----------------------------------------


def test_the_setting_s_keys_alone_encrypt_whatever_the_file_ids(tmp_path: Path) -> None:
    (tmp_path / "dk_20990101T000000000000Z_ffffff.key").write_text(key_text() + "\n")
    keyring = DataKeyring(tmp_path, f"a-key:{key_text()},b-key:{key_text()}")
    assert keyring.current().id == "b-key"  # not the file's, which sorts after it
    file_id, box = DataKeyring(tmp_path).encrypt(b"fila")
    assert keyring.decrypt(file_id, box) == b"fila"  # the file still decrypts
    assert DataKeyring(tmp_path).current().id == file_id  # without the setting: the files


def test_a_broken_setting_does_not_let_a_key_file_encrypt(tmp_path: Path) -> None:
    # The key the setting was meant to give is the one that encrypts (on every server):
    # a file of this machine must not take its place.
    (tmp_path / "dk_a.key").write_text(key_text() + "\n")
    keyring = DataKeyring(tmp_path, "sin-llave")
    with pytest.raises(DataKeyError) as refused:
        keyring.encrypt(b"fila")
    assert "correct PUENTE_DATA_KEY, then restart the hub" in str(refused.value)
    assert "let the user" not in str(refused.value)  # the file is fine


def test_rotate_data_key_refuses_while_the_setting_gives_the_current_key(
    hub_env: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_records(hub_env, 2)
    [file_key] = data_keys_dir(hub_env).glob("*.key")
    monkeypatch.setenv("PUENTE_DATA_KEY", f"prod-key-1:{key_text()}")
    refused = puente("keys", "rotate-data-key", "--json")
    assert refused.exit_code == 1, refused.output
    assert "PUENTE_DATA_KEY gives the data key that encrypts (prod-key-1)" in refused.output
    assert "PUENTE_DATA_KEY da la llave de datos que cifra (prod-key-1)" in refused.output
    assert "…,prod-key-1-2:$(head -c 32 /dev/urandom | base64)" in refused.output
    assert "'puente keys rotate-data-key --resume'" in refused.output
    assert list(data_keys_dir(hub_env).glob("*")) == [file_key]  # no key made
    with db.database(hub_env).sessions() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
        assert "key_changed" not in actions
    # The way the message gives: the new key in the setting, then --resume.
    monkeypatch.setenv("PUENTE_DATA_KEY", f"prod-key-1:{key_text()},prod-key-1-2:{key_text()}")
    resumed = puente("keys", "rotate-data-key", "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    result = json.loads(resumed.output.strip().splitlines()[-1])
    assert result["current_key"] == "prod-key-1-2"
    assert result["rows_per_key"] == {"prod-key-1-2": 2}
    assert result["unused_keys"] == [file_key.stem, "prod-key-1"]


def test_rotate_data_key_still_rotates_key_files(hub_env: Flask) -> None:
    push_records(hub_env, 1)
    rotated = puente("keys", "rotate-data-key", "--json")
    assert rotated.exit_code == 0, rotated.output
    result = json.loads(rotated.output.strip().splitlines()[-1])
    assert result["created"] and result["reencrypted"] == 1
    data_keyring(hub_env).reload()
    with db.database(hub_env).sessions() as session:
        assert rows_per_key(session) == {result["current_key"]: 1}


# -- 3. puente.cfg and the instance folder -----------------------------------------------------


def test_init_makes_a_new_instance_folder_private_under_umask_000(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = tmp_path / "srv" / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    before = os.umask(0)
    try:
        made = puente("init", "--json")
    finally:
        os.umask(before)
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(instance.stat().st_mode) == 0o750
    assert stat.S_IMODE(instance.parent.stat().st_mode) == 0o750  # made by init too
    assert json.loads(made.output)["made_private"] == []


def loosen(app: Flask) -> tuple[Path, Path]:
    instance = Path(app.instance_path)
    config_file = instance / "puente.cfg"
    config_file.write_text('HUB_NAME = "Puente (prueba)"\n')
    config_file.chmod(0o666)
    instance.chmod(0o777)
    return config_file, instance


def test_serve_worker_and_db_upgrade_warn_of_a_config_file_others_may_change(
    hub_env: Flask, exec_calls: list[object]
) -> None:
    config_file, instance = loosen(hub_env)
    for command in (["serve"], ["worker", "--once"], ["db", "upgrade"]):
        result = puente(*command)
        assert result.exit_code == 0, (command, result.output)
        [warning] = [line for line in result.stderr.splitlines() if "other users" in line]
        assert "can read (or change) the hub's secrets" in warning
        assert "whoever changes puente.cfg, run as Python" in warning
        assert "quien cambia puente.cfg, que se ejecuta como Python" in warning
        assert f"chmod 600 {config_file}" in warning
        assert f"chmod go-w {instance}" in warning


def test_readiness_warns_of_a_config_file_others_may_change(
    hub_env: Flask, records: logging.handlers.BufferingHandler
) -> None:
    client = hub_env.test_client()
    assert "warnings" not in client.get("/readyz").get_json()
    config_file, instance = loosen(hub_env)
    body = client.get("/readyz", headers={"Accept-Language": "en"}).get_json()
    assert "file_permissions" in body["warnings"], body
    logged = [r.getMessage() for r in records.buffer if "hub's secrets" in r.getMessage()]
    assert str(config_file) in logged[-1] and str(instance) in logged[-1]


def test_init_tightens_the_config_file_and_the_instance_folder(
    hub_env: Flask, exec_calls: list[object]
) -> None:
    config_file, instance = loosen(hub_env)
    made = puente("init", "--lang", "en")
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(instance.stat().st_mode) == 0o755  # an office may still pass through
    assert (
        f"now readable by its owner only (anyone on this machine could read it): {config_file}"
        in made.output
    )
    assert f"now writable by its owner only (others could write in it): {instance}" in made.output
    assert "warning" not in puente("serve").stderr
    # A group-writable folder is loose too; a group-readable one is not.
    instance.chmod(0o770)
    assert "go-w" in puente("serve").stderr
    instance.chmod(0o750)
    assert "warning" not in puente("serve").stderr


def test_a_config_file_readable_by_its_group_is_a_secret_others_may_read(
    hub_env: Flask, exec_calls: list[object]
) -> None:
    config_file = Path(hub_env.instance_path, "puente.cfg")
    config_file.write_text('HUB_NAME = "Puente"  # and DATABASE_URL, with its password\n')
    config_file.chmod(0o640)
    said = puente("serve").stderr
    assert f"chmod 600 {config_file}" in said
    assert puente("init").exit_code == 0
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


# -- 4. how long a request may take, and a stop ------------------------------------------------


def gunicorn_settings(instance: Path, **environment: str) -> dict[str, object]:
    """``exchange.serving`` as gunicorn reads it, in a fresh interpreter with ``environment``."""
    code = (
        "import json, exchange.serving as s; "
        "print(json.dumps({'timeout': s.timeout, 'graceful_timeout': s.graceful_timeout}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env.update(environment, PUENTE_INSTANCE_PATH=str(instance))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    loaded: dict[str, object] = json.loads(done.stdout)
    return loaded


def test_a_bulk_push_at_the_limits_fits_the_default_timeouts(tmp_path: Path) -> None:
    # ~42 s measured for BULK_MAX_LINES typical lines; gunicorn's 60 s and a fixed 30 s stop
    # cut such a push (the client got gunicorn's 500, and a restart cut it too).
    assert gunicorn_settings(tmp_path) == {"timeout": 180, "graceful_timeout": 180}
    assert gunicorn_settings(tmp_path, PUENTE_WORKER_TIMEOUT="300") == {
        "timeout": 300,
        "graceful_timeout": 300,
    }
    assert gunicorn_settings(tmp_path, PUENTE_GRACEFUL_TIMEOUT="45") == {
        "timeout": 180,
        "graceful_timeout": 45,
    }


@pytest.mark.parametrize("value", ["abc", "0", "1.5", ""])
def test_a_stop_timeout_that_is_not_a_number_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_GRACEFUL_TIMEOUT", value)
    with pytest.raises(SettingError) as refused:
        create_app()
    assert f"PUENTE_GRACEFUL_TIMEOUT = {value!r}" in refused.value.message("en") or (
        f"PUENTE_GRACEFUL_TIMEOUT = {value}" in refused.value.message("en")
    )
    assert "a whole number > 0" in refused.value.message("en")


def test_a_stop_timeout_is_no_unknown_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: logging.handlers.BufferingHandler
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_GRACEFUL_TIMEOUT", "120")
    create_app({"TESTING": True})
    assert not [r for r in records.buffer if "GRACEFUL" in r.getMessage()]


# -- 5. gunicorn's own lines are JSON too ---------------------------------------------------------


def test_gunicorn_s_error_log_is_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    config = Config()
    config.set("errorlog", "-")
    logger = JsonLogger(config)
    try:
        logger.info("Booting worker with pid: %s", 8916)
        logger.critical("WORKER TIMEOUT (pid:%s)", 8916)
        try:
            raise SystemExit(1)
        except SystemExit:
            logger.exception("Error handling request %s", "/v1/records/bulk")
        lines = capsys.readouterr().err.strip().splitlines()
    finally:
        detach(logger)
    entries = [json.loads(line) for line in lines]  # every line: one JSON object
    assert [(e["level"], e["message"]) for e in entries] == [
        ("info", "Booting worker with pid: 8916"),
        ("critical", "WORKER TIMEOUT (pid:8916)"),
        ("error", "Error handling request /v1/records/bulk"),
    ]
    assert entries[0]["logger"] == "gunicorn.error" and entries[0]["pid"] == os.getpid()
    assert entries[2]["exception"].startswith("Traceback (most recent call last):")
    assert "SystemExit: 1" in entries[2]["exception"]


def test_a_served_hub_writes_only_json_lines(tmp_path: Path) -> None:
    """gunicorn started as ``puente serve`` starts it: what it writes as it boots and stops."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env.update(
        PUENTE_INSTANCE_PATH=str(tmp_path / "instance"),
        PUENTE_BIND="127.0.0.1:0",
        PUENTE_WORKERS="1",
        PUENTE_GRACEFUL_TIMEOUT="5",
    )
    argv = [sys.executable, "-P", "-m", "exchange.serving", "-c", "python:exchange.serving"]
    server = subprocess.Popen(
        [*argv, "exchange:create_app()"], env=env, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "Booting worker" in line:
                break
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=30)
        lines += rest.splitlines()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    said = [line for line in lines if line.strip()]
    assert any("Booting worker" in line for line in said), said
    entries = [json.loads(line) for line in said]  # not one plain-text line
    assert {entry["logger"] for entry in entries} >= {"gunicorn.error"}
    assert any(entry["message"].startswith("Starting gunicorn") for entry in entries)


# -- 6. a setting of puente.cfg named there; the file drop's folder; keys generate --out ----------


def test_a_rate_limit_in_the_config_file_is_named_as_written_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    (tmp_path / "puente.cfg").write_text("RATE_LIMIT = 5\n")
    with pytest.raises(SettingError) as refused:
        create_app()
    english, spanish = refused.value.message("en"), refused.value.message("es")
    assert f"RATE_LIMIT = 5 ({tmp_path / 'puente.cfg'}; must be a limit such as" in english
    assert "PUENTE_RATE_LIMIT" not in english
    assert f"RATE_LIMIT = 5 ({tmp_path / 'puente.cfg'}; debe ser un límite como" in spanish
    monkeypatch.setenv("PUENTE_RATE_LIMIT", "5")
    with pytest.raises(SettingError) as refused:
        create_app()
    assert "PUENTE_RATE_LIMIT = 5 (environment; must be a limit" in refused.value.message("en")


@pytest.mark.parametrize(
    "name", ["RATE_LIMIT_AUTH_FAILURES", "PORTAL_LOGIN_FAILURES", "PORTAL_LOGIN_FAILURES_EMAIL"]
)
def test_every_limit_of_the_config_file_is_named_there(tmp_path: Path, name: str) -> None:
    (tmp_path / "puente.cfg").write_text(f'{name} = "tres por minuto"\n')
    with pytest.raises(SettingError) as refused:
        create_app({"INSTANCE_PATH": tmp_path})
    assert f"{name} = 'tres por minuto' ({tmp_path / 'puente.cfg'};" in refused.value.message("en")


@pytest.mark.parametrize("value", ["", "10 per minute; 100 per hour"])
def test_limits_and_no_limit_are_taken(tmp_path: Path, value: str) -> None:
    (tmp_path / "puente.cfg").write_text(f"RATE_LIMIT = {value!r}\n")
    create_app({"INSTANCE_PATH": tmp_path, "TESTING": True})


def test_a_file_drop_folder_the_hub_cannot_write_in_is_said_at_start(
    hub_env: Flask, exec_calls: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    for command in (["serve"], ["worker", "--once"]):
        assert "FILE_DROP_PATH" not in puente(*command).stderr  # drop/, made when needed
    monkeypatch.setenv("PUENTE_FILE_DROP_PATH", "/proc/x")
    for command in (["serve"], ["worker", "--once"]):
        result = puente(*command)
        assert result.exit_code == 0, result.output
        [warning] = [line for line in result.stderr.splitlines() if "FILE_DROP_PATH" in line]
        assert (
            "the file drop folder (FILE_DROP_PATH) /proc/x: files cannot be written in /proc"
            in warning
        )
        assert "la carpeta del buzón de archivos (FILE_DROP_PATH) /proc/x" in warning
    a_file = Path(hub_env.instance_path, "puente.db-like")
    a_file.write_text("")
    monkeypatch.setenv("PUENTE_FILE_DROP_PATH", str(a_file / "drop"))
    assert f"{a_file} is not a folder" in puente("serve").stderr


def test_keys_generate_makes_its_folder_private_under_umask_000(tmp_path: Path) -> None:
    out = tmp_path / "agency" / "keys"
    before = os.umask(0)
    try:
        made = puente("keys", "generate", "--out", str(out), "--name", "oax")
    finally:
        os.umask(before)
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "oax.key").stat().st_mode) == 0o600
    # A folder that was there is left as its owner made it.
    there = tmp_path / "there"
    there.mkdir(mode=0o755)
    there.chmod(0o755)
    assert puente("keys", "generate", "--out", str(there)).exit_code == 0
    assert stat.S_IMODE(there.stat().st_mode) == 0o755
