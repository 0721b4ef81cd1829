"""How an operator runs a hub (README "Configuration" and "Operations"), as an outside check
found it: which data key encrypts (the last entry of ``PUENTE_DATA_KEY``; key files by id, numbers
as numbers); lost keys said as ``serve``, ``worker`` and ``db upgrade`` start; the instance
folder's mode on SQLite; a changed ``PUENTE_AUDIT_ORIGIN`` named as such; switches that are not
true or false; the public URL when listening on 0.0.0.0; ``rotate-data-key`` creating nothing
when rows are under a lost key; ``serve --help`` and ``worker`` at an old schema."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import select, text

from exchange import create_app, db
from exchange.audit_log import AuditEntry
from exchange.audit_sequencer import integrate_pending
from exchange.cli import main
from exchange.config import SettingError
from exchange.crypto import (
    DataKeyring,
    DataKeysFromSetting,
    data_keyring,
    data_keys_dir,
    rows_per_key,
)
from exchange.keys import MisnamedKey, key_paths, load_keys
from tests.unit.exchange.test_crypto import push_records


def key_text() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def puente(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="puente")


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("aviso / warning")]


# -- 1. which data key encrypts -------------------------------------------------------------------


def test_the_last_entry_of_the_setting_encrypts(tmp_path: Path) -> None:
    # README: "add the new key at the end". As text, "prod-key-9" > "prod-key-10".
    nine, ten = key_text(), key_text()
    old = DataKeyring(tmp_path, f"prod-key-9:{nine}")
    row = old.encrypt(b"fila")
    keyring = DataKeyring(tmp_path, f"prod-key-9:{nine},prod-key-10:{ten}")
    assert keyring.current().id == "prod-key-10"
    assert keyring.decrypt(*row) == b"fila"  # the old key still decrypts


def test_a_hub_under_the_key_the_old_rule_chose_still_reads_its_rows(tmp_path: Path) -> None:
    # "b" was the greatest id, so it encrypted; "a", last, encrypts now, and "b" still decrypts.
    a, b = key_text(), key_text()
    under_b = DataKeyring(tmp_path, f"b:{b}").encrypt(b"fila")
    keyring = DataKeyring(tmp_path, f"b:{b},a:{a}")
    assert keyring.current().id == "a"
    assert keyring.decrypt(*under_b) == b"fila"
    assert keyring.key_ids == ["a", "b"]


def test_an_id_given_twice_takes_the_place_of_its_last_entry(tmp_path: Path) -> None:
    first, second, last = key_text(), key_text(), key_text()
    keyring = DataKeyring(tmp_path, f"k1:{first},k2:{second},k1:{last}")
    assert keyring.current().id == "k1"


def test_key_files_compare_the_numbers_in_their_ids_as_numbers(tmp_path: Path) -> None:
    from exchange.crypto import key_order

    for key_id in ("prod-key-9", "prod-key-10", "prod-key-2"):
        (tmp_path / f"{key_id}.key").write_text(key_text() + "\n")
    assert DataKeyring(tmp_path).current().id == "prod-key-10"
    # The ids the hub makes sort by their time, as they did as text.
    made = ["dk_20240101T000000000000Z_f9a8b7", "dk_20250101T000000000000Z_000001"]
    assert sorted(made, key=key_order) == sorted(made)
    assert max(["k01", "k1"], key=key_order) == "k1"  # the same number: the text decides


def test_the_rotation_message_says_the_last_entry_encrypts(tmp_path: Path) -> None:
    error = DataKeysFromSetting("prod-key-9")
    assert "its last entry is the one that encrypts" in error.message("en")
    assert "la última entrada es la que cifra" in error.message("es")
    assert "greater" not in error.message("en") and "mayor" not in error.message("es")


def test_rotate_resume_moves_every_row_to_the_key_added_at_the_end(
    hub_env: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_records(hub_env, 2)
    nine, ten = key_text(), key_text()
    monkeypatch.setenv("PUENTE_DATA_KEY", f"prod-key-9:{nine}")
    assert puente("keys", "rotate-data-key", "--resume", "--json").exit_code == 0
    monkeypatch.setenv("PUENTE_DATA_KEY", f"prod-key-9:{nine},prod-key-10:{ten}")
    resumed = puente("keys", "rotate-data-key", "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    result = json.loads(resumed.output.strip().splitlines()[-1])
    assert result["current_key"] == "prod-key-10"
    assert result["rows_per_key"] == {"prod-key-10": 2}
    assert "prod-key-9" in result["unused_keys"]


# -- 2. lost keys said as serve, worker and db upgrade start ---------------------------------------

COMMANDS = (["serve"], ["worker", "--once"], ["db", "upgrade"])


def test_a_missing_log_key_on_a_signed_log_is_said_at_start(
    hub_env: Flask, exec_calls: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    integrate_pending(hub_env, force_checkpoint=True)
    monkeypatch.setenv("PUENTE_AUDIT_LOG_KEY_FILE", "keys/nothere.key")
    missing = Path(hub_env.instance_path, "keys", "nothere.key")
    for command in COMMANDS:
        result = puente(*command)
        assert result.exit_code == 0, (command, result.output, result.stderr)  # a warning only
        [warning] = [line for line in warnings_of(result) if "signed checkpoints" in line]
        assert f"and the log key ({missing}) is missing: restore it from the backup" in warning
        assert f"falta la llave del registro ({missing}): restáurela" in warning
        assert "Until then the hub signs no checkpoint" in warning
        assert "No key was created" not in warning  # init's words, not serve's
    assert len(exec_calls) == 1  # serve went on to start gunicorn


def test_a_wrong_data_keys_folder_is_said_at_start(
    hub_env: Flask, exec_calls: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    push_records(hub_env, 2)
    [key] = data_keys_dir(hub_env).glob("*.key")
    monkeypatch.setenv("PUENTE_DATA_KEYS_DIR", "keys/elsewhere")
    wrong = Path(hub_env.instance_path, "keys", "elsewhere")
    for command in COMMANDS:
        result = puente(*command)
        assert result.exit_code == 0, (command, result.output, result.stderr)
        [warning] = [line for line in warnings_of(result) if "does not hold" in line]
        assert f"rows encrypted under keys this hub does not hold ({key.stem} (2))" in warning
        assert f"the folder {wrong} holds no data key: restore it from the backup" in warning
        assert "filas cifradas con llaves que este nodo no tiene" in warning
    assert not wrong.exists()  # nothing made there


def test_a_data_key_lost_beside_others_is_said_at_start(
    hub_env: Flask, exec_calls: list[object], tmp_path: Path
) -> None:
    push_records(hub_env, 1)
    folder = data_keys_dir(hub_env)
    [key] = folder.glob("*.key")
    shutil.move(key, tmp_path / key.name)
    (folder / "dk_29990101T000000000000Z_aaaaaa.key").write_text(key_text() + "\n")
    served = puente("serve")
    assert served.exit_code == 0, served.output
    [warning] = [line for line in warnings_of(served) if "does not hold" in line]
    assert f"({key.stem} (1)): restore them to the folder {folder} from the backup" in warning


def test_a_whole_hub_says_nothing_of_lost_keys(hub_env: Flask, exec_calls: list[object]) -> None:
    push_records(hub_env, 1)
    integrate_pending(hub_env, force_checkpoint=True)
    for command in COMMANDS:
        result = puente(*command)
        assert result.exit_code == 0, (command, result.output)
        assert warnings_of(result) == [], result.stderr


def test_init_still_refuses_with_its_own_words(
    hub_env: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    integrate_pending(hub_env, force_checkpoint=True)
    log_key = key_paths(hub_env)["log"]
    monkeypatch.setenv("PUENTE_AUDIT_LOG_KEY_FILE", "keys/nothere.key")
    refused = puente("init", "--lang", "en")
    assert refused.exit_code == 1
    assert "signed checkpoints and the log key" in refused.output
    assert "No key was created: with a new one, oversight bodies" in refused.output
    assert not Path(hub_env.instance_path, "keys", "nothere.key").exists()
    assert log_key.exists()


# -- 4. the instance folder on SQLite --------------------------------------------------------------


def test_init_makes_a_new_sqlite_instance_folder_0750_under_the_usual_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = tmp_path / "srv" / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("PUENTE_DATABASE_URL", raising=False)  # the SQLite file inside it
    before = os.umask(0o022)
    try:
        made = puente("init", "--json")
    finally:
        os.umask(before)
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(instance.stat().st_mode) == 0o750
    assert stat.S_IMODE(instance.parent.stat().st_mode) == 0o750
    assert stat.S_IMODE((instance / "puente.db").stat().st_mode) == 0o600


def test_a_folder_that_was_there_keeps_its_mode(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    app = create_app({"INSTANCE_PATH": instance, "DATABASE_URL": f"sqlite:///{instance}/h.db"})
    db.database(app).ping()
    assert stat.S_IMODE(instance.stat().st_mode) == 0o755
    app.extensions["puente.db"].engine.dispose()


# -- 5. a changed PUENTE_AUDIT_ORIGIN is named -----------------------------------------------------


def test_a_changed_audit_origin_is_named_not_the_hub_id(
    hub_env: Flask, exec_calls: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    made_as = f"{hub_env.config['HUB_ID']}/audit"
    monkeypatch.setenv("PUENTE_AUDIT_ORIGIN", "mx.otro/bitacora")
    app = create_app()
    [fault] = load_keys(app).faults
    assert isinstance(fault, MisnamedKey) and fault.setting == "PUENTE_AUDIT_ORIGIN"
    assert "PUENTE_AUDIT_ORIGIN changed since the key was made" in fault.reason
    for command in (["serve"], ["worker", "--once"]):
        refused = puente(*command)
        assert refused.exit_code == 1, refused.output
        assert "PUENTE_HUB_ID" not in refused.output
        assert "PUENTE_AUDIT_ORIGIN changed since the key was made" in refused.output
        assert f"Set PUENTE_AUDIT_ORIGIN back to {made_as}, the origin the log" in refused.output
        assert f"Vuelva a poner PUENTE_AUDIT_ORIGIN en {made_as}" in refused.output
    assert exec_calls == []
    ready = app.test_client().get("/readyz", headers={"Accept-Language": "en"}).get_json()
    assert ready["checks"]["keys"] == "made for another audit origin: log"
    assert "PUENTE_AUDIT_ORIGIN changed since 'puente init'" in ready["detail"]
    assert "PUENTE_HUB_ID" not in ready["detail"]
    app.extensions["puente.db"].engine.dispose()


def test_a_key_made_under_a_custom_origin_then_unset_names_the_origin(tmp_path: Path) -> None:
    from exchange.cli.hub import initialise

    instance = tmp_path / "instance"
    config = {"INSTANCE_PATH": instance, "DATABASE_URL": f"sqlite:///{tmp_path}/h.db"}
    made = create_app({**config, "AUDIT_ORIGIN": "mx.chp/bitacora"})
    initialise(made)
    made.extensions["puente.db"].engine.dispose()
    [fault] = load_keys(create_app(config)).faults
    assert isinstance(fault, MisnamedKey)
    assert (fault.setting, fault.made_with) == ("PUENTE_AUDIT_ORIGIN", "mx.chp/bitacora")


def test_a_changed_hub_id_is_still_named_as_such(
    hub_env: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    made_as = hub_env.config["HUB_ID"]
    monkeypatch.setenv("PUENTE_HUB_ID", "mx.otro.puente")
    faults = {fault.role: fault for fault in load_keys(create_app()).faults}
    assert all(isinstance(fault, MisnamedKey) for fault in faults.values())
    assert {fault.setting for fault in faults.values()} == {"PUENTE_HUB_ID"}  # type: ignore[attr-defined]
    refused = puente("worker", "--once")
    assert f"Set PUENTE_HUB_ID={made_as} again" in refused.output
    assert "PUENTE_AUDIT_ORIGIN" not in refused.output


# -- 6. switches are true or false ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["maybe", "off", "no", "False", "1", "yes"])
def test_an_integrator_switch_that_is_not_true_or_false_stops_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_AUDIT_INTEGRATOR_THREAD", value)
    with pytest.raises(SettingError) as refused:
        create_app()
    said = refused.value.message("en")
    assert "PUENTE_AUDIT_INTEGRATOR_THREAD = " in said and value in said
    assert "(environment; must be true or false, or unset)" in said
    assert "debe ser true o false, o sin poner" in refused.value.message("es")
    started = puente("worker", "--once")
    assert started.exit_code == 1 and "PUENTE_AUDIT_INTEGRATOR_THREAD" in started.output


@pytest.mark.parametrize(("value", "taken"), [("true", True), ("false", False)])
def test_true_and_false_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, taken: bool
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_AUDIT_INTEGRATOR_THREAD", value)
    assert create_app().config["AUDIT_INTEGRATOR_THREAD"] is taken


@pytest.mark.parametrize("name", ["AUDIT_ORIGIN", "DATA_KEY", "HUB_SIGNING_KEY", "DATABASE_URL"])
def test_a_text_setting_given_a_number_stops_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv(f"PUENTE_{name}", "123")  # read as JSON: a number
    with pytest.raises(SettingError) as refused:
        create_app()
    assert f"PUENTE_{name} = 123 (environment; must be a text, or unset)" in str(refused.value)


# -- 7. the public URL when listening on every address ---------------------------------------------


def test_serve_on_every_address_without_a_public_url_warns(
    hub_env: Flask, exec_calls: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUENTE_PUBLIC_URL", raising=False)
    served = puente("serve", "--bind", "0.0.0.0:8123")
    assert served.exit_code == 0, served.output
    [warning] = [line for line in warnings_of(served) if "PUENTE_PUBLIC_URL" in line]
    assert "it advertises http://127.0.0.1:8123 in /.well-known/puente-hub" in warning
    assert "anuncia http://127.0.0.1:8123 en /.well-known/puente-hub" in warning
    assert "set PUENTE_PUBLIC_URL to the address clients use" in warning


@pytest.mark.parametrize(
    ("bind", "public_url"),
    [("127.0.0.1:8123", None), ("0.0.0.0:8123", "https://puente.example.org")],
)
def test_serve_does_not_warn_when_the_address_is_callable(
    hub_env: Flask,
    exec_calls: list[object],
    monkeypatch: pytest.MonkeyPatch,
    bind: str,
    public_url: str | None,
) -> None:
    if public_url:
        monkeypatch.setenv("PUENTE_PUBLIC_URL", public_url)
    served = puente("serve", "--bind", bind)
    assert served.exit_code == 0, served.output
    assert not [line for line in warnings_of(served) if "PUENTE_PUBLIC_URL" in line]


# -- 8. rotate-data-key checks first --------------------------------------------------------------


@pytest.mark.parametrize("another_key", [False, True])
def test_rotate_data_key_makes_nothing_while_rows_are_under_a_lost_key(
    hub_env: Flask, tmp_path: Path, another_key: bool
) -> None:
    push_records(hub_env, 2)
    folder = data_keys_dir(hub_env)
    [key] = folder.glob("*.key")
    shutil.move(key, tmp_path / key.name)
    if another_key:
        (folder / "dk_29990101T000000000000Z_aaaaaa.key").write_text(key_text() + "\n")
    before = sorted(folder.iterdir())
    refused = puente("keys", "rotate-data-key", "--json")
    assert refused.exit_code == 1, refused.output
    assert f"rows are encrypted under data keys the hub cannot load: {key.stem} (2)" in (
        refused.output
    )
    assert "No key was made" in refused.output and "No se creó ninguna clave" in refused.output
    assert sorted(folder.iterdir()) == before
    with db.database(hub_env).sessions() as session:
        assert "key_changed" not in session.scalars(select(AuditEntry.action)).all()
    # The key put back, the rotation goes through.
    shutil.move(tmp_path / key.name, key)
    data_keyring(hub_env).reload()
    rotated = puente("keys", "rotate-data-key", "--json")
    assert rotated.exit_code == 0, rotated.output
    result = json.loads(rotated.output.strip().splitlines()[-1])
    with db.database(hub_env).sessions() as session:
        assert rows_per_key(session) == {result["current_key"]: 2}


# -- 9. serve --help, and worker at an old schema --------------------------------------------------


def test_serve_help_shows_the_workers_default() -> None:
    helped = puente("serve", "--help")
    assert "default: PUENTE_WORKERS, else 2" in " ".join(helped.output.split())


def test_worker_at_an_old_schema_says_so(hub_env: Flask) -> None:
    head = db.head_revision()
    older = sorted(db.known_revisions() - {head})[0]
    with db.database(hub_env).engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": older})
    worked = puente("worker", "--once")
    warned = [line for line in warnings_of(worked) if "db upgrade" in line]
    assert warned and f"the database is at revision {older}, the code needs {head}" in warned[0]
