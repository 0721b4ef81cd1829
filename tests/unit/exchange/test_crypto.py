"""Encryption at rest: data keys from files and the environment, the current key, decryption
under any known key, rotation with ``puente keys rotate-data-key`` (resumable), readiness."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select, update

from exchange import db
from exchange.agencies import register_agency
from exchange.audit_log import AuditEntry, parse_entry
from exchange.auth import store_token
from exchange.cli import keys as keys_cli
from exchange.cli import main
from exchange.crypto import (
    RELOAD_SECONDS,
    SETTLING_MARGIN_SECONDS,
    DataKeyError,
    DataKeyring,
    data_keyring,
    generate_data_key,
    reencrypt_batches,
    rows_per_key,
)
from exchange.records import RecordVersion, decrypt_version


def key_text() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def write_key(directory: Path, key_id: str, text: str | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{key_id}.key").write_text((text or key_text()) + "\n")


def test_the_greatest_key_id_is_current_and_every_key_decrypts(tmp_path: Path) -> None:
    write_key(tmp_path, "dk_20240101T000000000000Z_aaaaaa")
    keyring = DataKeyring(tmp_path)
    old_id, old_box = keyring.encrypt(b"cuerpo")
    write_key(tmp_path, "dk_20250101T000000000000Z_bbbbbb")
    keyring.reload()
    new_id, new_box = keyring.encrypt(b"cuerpo")
    assert (old_id, new_id) == ("dk_20240101T000000000000Z_aaaaaa", keyring.current().id)
    assert new_id == "dk_20250101T000000000000Z_bbbbbb"
    assert keyring.decrypt(old_id, old_box) == keyring.decrypt(new_id, new_box) == b"cuerpo"
    assert b"cuerpo" not in old_box and old_box != keyring.encrypt(b"cuerpo")[1]  # random nonce


def test_keys_from_the_environment(tmp_path: Path) -> None:
    keyring = DataKeyring(tmp_path / "none", f"dk_a:{key_text()}, dk_b:{key_text()}")
    assert keyring.key_ids == ["dk_a", "dk_b"]
    assert keyring.current().id == "dk_b"
    key_id, box = keyring.encrypt(b"x")
    assert keyring.decrypt(key_id, box) == b"x"


@pytest.mark.parametrize(
    "environment", ["dk_a", "dk_a:bm90IGEga2V5", "bad id!:" + "A" * 44, "dk_a:%%%"]
)
def test_unusable_environment_keys_are_reported(tmp_path: Path, environment: str) -> None:
    keyring = DataKeyring(tmp_path / "none", environment)
    assert keyring.problems
    with pytest.raises(DataKeyError, match="no data key"):
        keyring.current()


def test_an_unusable_key_file_is_reported_and_skipped(tmp_path: Path) -> None:
    write_key(tmp_path, "dk_short", base64.b64encode(b"too short").decode())
    write_key(tmp_path, "dk_good")
    keyring = DataKeyring(tmp_path)
    assert keyring.key_ids == ["dk_good"]
    assert "dk_short" in keyring.problems[0]


def test_a_key_made_by_another_process_is_found_when_needed(tmp_path: Path) -> None:
    write_key(tmp_path, "dk_1")
    mine, theirs = DataKeyring(tmp_path), DataKeyring(tmp_path)
    write_key(tmp_path, "dk_2")
    theirs.reload()
    key_id, box = theirs.encrypt(b"rotated")
    assert key_id == "dk_2"
    assert mine.decrypt(key_id, box) == b"rotated"  # reloads on an unknown key id


def test_tampering_and_unknown_keys_are_errors(tmp_path: Path) -> None:
    write_key(tmp_path, "dk_1")
    keyring = DataKeyring(tmp_path)
    key_id, box = keyring.encrypt(b"original")
    with pytest.raises(DataKeyError, match="does not decrypt"):
        keyring.decrypt(key_id, box[:-1] + bytes([box[-1] ^ 1]))
    with pytest.raises(DataKeyError, match="not available"):
        keyring.decrypt("dk_gone", box)


# -- with a hub --------------------------------------------------------------------------------


def push_records(app: Flask, count: int) -> None:
    with app.app_context(), db.database(app).sessions.begin() as session:
        register_agency(session, "mx.chp.dif", "DIF", "state", "07", ["records:write"])
        secret, _ = store_token(
            session, client_id="mx.chp.dif", scopes=["records:write"], agency_id="mx.chp.dif"
        )
    client = app.test_client()
    for number in range(count):
        body = {
            "schema": "case-record/1",
            "local_id": f"EXP-{number}",
            "data": {
                "case": {"status": "open", "case_number": f"N-{number}"},
                "child": {
                    "alias": f"Niña {number}",
                    "age_estimation": {"estimated_age_years": 4 + number % 10},
                    "nationality": ["GT"],
                },
            },
        }
        answer = client.post(
            "/v1/records", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        assert answer.status_code == 201, answer.get_json()


def bodies(app: Flask) -> list[tuple[str, dict]]:
    keyring = data_keyring(app)
    with db.database(app).sessions() as session:
        versions = session.scalars(select(RecordVersion).order_by(RecordVersion.id)).all()
        return [(v.data_key_id, decrypt_version(keyring, v).envelope) for v in versions]


def test_init_makes_a_private_data_key(app: Flask) -> None:
    [path] = Path(app.instance_path, "keys", "data").glob("*.key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert data_keyring(app).current().id == path.stem


def test_a_body_moved_to_another_row_is_caught(app: Flask) -> None:
    push_records(app, 2)
    with db.database(app).sessions() as session:
        first, second = session.scalars(select(RecordVersion).order_by(RecordVersion.id)).all()
        session.execute(
            update(RecordVersion)
            .where(RecordVersion.id == second.id)
            .values(body_ciphertext=first.body_ciphertext)
        )
        session.commit()
        moved = session.get_one(RecordVersion, second.id)
        session.refresh(moved)
        with pytest.raises(DataKeyError, match="does not match its digest"):
            decrypt_version(data_keyring(app), moved)


def run_cli(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    meanwhile: Callable[[float], None] = lambda seconds: None,
) -> dict:
    """The command, its wait for running servers replaced by ``meanwhile``."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setattr(keys_cli, "time", SimpleNamespace(sleep=meanwhile))
    result = CliRunner().invoke(main, ["keys", "rotate-data-key", "--json", *args])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output.strip().splitlines()[-1]))


def test_rotation_reencrypts_every_body_and_keeps_the_old_key(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_records(app, 7)
    before = bodies(app)
    old_key = data_keyring(app).current().id
    result = run_cli(app, monkeypatch, "--batch-size", "3")
    new_key = result["current_key"]
    assert new_key != old_key and result["created"]
    assert result["reencrypted"] == 7
    assert result["rows_per_key"] == {new_key: 7}
    assert result["unused_keys"] == [old_key]  # kept, and now safe to move out
    assert Path(app.instance_path, "keys", "data", f"{old_key}.key").exists()
    data_keyring(app).reload()
    after = bodies(app)
    assert [envelope for _, envelope in after] == [envelope for _, envelope in before]
    assert {key for key, _ in after} == {new_key}
    # Without --json too, the operator reads which keys no row uses any more.
    said = CliRunner().invoke(main, ["keys", "rotate-data-key", "--resume"])
    assert said.exit_code == 0, said.output
    assert f"rows per key / filas por clave: {new_key}: 7" in said.output
    assert "keys no row uses (may be moved out of the key folder)" in said.output
    assert said.output.rstrip().endswith(old_key)


def data_key_changes(app: Flask) -> list[dict[str, Any]]:
    with db.database(app).sessions() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "key_changed").order_by(AuditEntry.id)
        )
        return [parse_entry(bytes(row.entry)) for row in rows]


def test_a_new_data_key_is_audited_once_and_resuming_adds_nothing(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_records(app, 2)
    new_key = run_cli(app, monkeypatch)["current_key"]
    [change] = data_key_changes(app)
    assert change["outcome"] == "success" and change["reason_code"] == "data_key_rotated"
    assert change["object"] == {"type": "key", "id": new_key}
    assert change["actor"]["role"] == "administrator"
    run_cli(app, monkeypatch, "--resume")  # moves rows; the key does not change
    assert data_key_changes(app) == [change]


def test_a_key_whose_audit_entry_fails_is_never_used(app: Flask) -> None:
    folder = Path(app.instance_path) / "keys" / "data"
    before = sorted(folder.iterdir())
    current = data_keyring(app).current().id

    def the_database_fails(key_id: str) -> None:
        assert key_id not in data_keyring(app).key_ids  # not loadable before it is audited
        raise RuntimeError("commit failed")

    with pytest.raises(RuntimeError):
        generate_data_key(app, before_use=the_database_fails)
    assert sorted(folder.iterdir()) == before  # nothing left behind, not even half a key
    data_keyring(app).reload()
    assert data_keyring(app).current().id == current


def test_rows_a_running_server_writes_under_the_old_key_meanwhile_are_moved_too(
    app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    push_records(app, 3)
    old_key = data_keyring(app).current().id
    # A server that has not reloaded its key folder yet knows only the old key.
    late = tmp_path / "late-server"
    late.mkdir()
    shutil.copy(Path(app.instance_path, "keys", "data", f"{old_key}.key"), late)
    late_server = DataKeyring(late)
    waited: list[float] = []

    def a_push_commits_under_the_old_key(seconds: float) -> None:
        waited.append(seconds)
        keyring = data_keyring(app)
        with db.database(app).sessions() as session:
            version = session.scalars(select(RecordVersion).order_by(RecordVersion.id)).first()
            assert version is not None
            key_id, ciphertext = late_server.encrypt(
                keyring.decrypt(version.data_key_id, version.body_ciphertext)
            )
            version.data_key_id, version.body_ciphertext = key_id, ciphertext
            session.commit()

    result = run_cli(app, monkeypatch, meanwhile=a_push_commits_under_the_old_key)
    assert len(waited) == 1 and 5 < waited[0] <= RELOAD_SECONDS + SETTLING_MARGIN_SECONDS
    new_key = result["current_key"]
    assert result["reencrypted"] == 4  # three, then the late one
    assert result["rows_per_key"] == {new_key: 3}
    assert result["unused_keys"] == [old_key]


def test_a_row_under_a_key_taken_away_is_explained(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_records(app, 1)
    old_key = data_keyring(app).current().id
    generate_data_key(app)
    Path(app.instance_path, "keys", "data", f"{old_key}.key").unlink()
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])
    result = CliRunner().invoke(main, ["keys", "rotate-data-key", "--resume"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "Restore it from a backup" in result.output and "Restáurelo" in result.output
    assert result.output.count(old_key) == 2  # named in both languages

    # A damaged key file is said to be unusable, with why.
    Path(app.instance_path, "keys", "data", f"{old_key}.key").write_text("not base64!\n")
    damaged = CliRunner().invoke(main, ["keys", "rotate-data-key", "--resume"])
    assert damaged.exit_code == 1 and "Traceback" not in damaged.output
    assert "Key files that could not be used" in damaged.output and "not base64" in damaged.output


def test_an_interrupted_rotation_resumes(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    push_records(app, 5)
    old_key = data_keyring(app).current().id
    new_key, _path = generate_data_key(app)
    batches = reencrypt_batches(db.database(app).sessions, data_keyring(app), batch_size=2)
    assert next(batches) == 2  # then the process stops
    batches.close()
    with db.database(app).sessions() as session:
        assert rows_per_key(session) == {new_key: 2, old_key: 3}
    result = run_cli(app, monkeypatch, "--resume")
    assert result["created"] is None and result["current_key"] == new_key
    assert result["reencrypted"] == 3
    assert result["rows_per_key"] == {new_key: 5}


def test_no_key_is_made_when_the_database_cannot_be_used(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = Path(app.instance_path) / "keys" / "data"
    before = sorted(folder.iterdir())
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv(
        "PUENTE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    )
    result = CliRunner().invoke(main, ["keys", "rotate-data-key"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "PUENTE_DATABASE_URL" in result.output
    assert sorted(folder.iterdir()) == before  # no new key that would encrypt from now on


def test_readiness_needs_a_data_key(app: Flask) -> None:
    for path in Path(app.instance_path, "keys", "data").glob("*.key"):
        path.unlink()
    data_keyring(app).reload()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["keys"] == (
        "missing or unreadable: data (run 'puente init')"
    )


def test_rows_under_a_key_the_hub_lost_make_it_not_ready_and_reads_say_why(
    app: Flask, tmp_path: Path
) -> None:
    """The key folder restored from a stale backup: the hub holds a key, not the one the
    records need."""
    push_records(app, 2)
    folder = Path(app.instance_path, "keys", "data")
    [old] = folder.glob("*.key")
    shutil.move(old, tmp_path / old.name)
    write_key(folder, "dk_29990101T000000000000Z_abcdef")
    data_keyring(app).reload()
    ready = app.test_client().get("/readyz", headers={"Accept-Language": "en"})
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["data_keys"] == (
        f"rows under keys this hub does not hold: {old.stem} (2 rows)"
    )
    assert "restore the key folder from the backup" in ready.get_json()["detail"]
    with app.app_context(), db.database(app).sessions.begin() as session:
        reader, _ = store_token(
            session, client_id="mx.chp.dif", scopes=["records:read"], agency_id="mx.chp.dif"
        )
        record_id = session.scalars(select(RecordVersion.record_id)).first()
    read = app.test_client().get(
        f"/v1/records/{record_id}?purpose=case_management",
        headers={"Authorization": f"Bearer {reader}", "Accept-Language": "es"},
    )
    assert read.status_code == 503
    assert read.get_json()["type"].endswith("unavailable")
    assert "restaurarla desde la copia de seguridad" in read.get_json()["detail"]
    # The key back in its folder: ready again (after the check's minute), and the read works.
    shutil.move(tmp_path / old.name, folder / old.name)
    data_keyring(app).reload()
    app.extensions.pop("puente.unloadable_keys")
    assert app.test_client().get("/readyz").status_code == 200
    again = app.test_client().get(
        f"/v1/records/{record_id}?purpose=case_management",
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert again.status_code == 200


def test_init_makes_no_key_that_would_orphan_what_the_database_holds(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.audit_sequencer import integrate_pending
    from exchange.cli.hub import initialise
    from exchange.key_safety import KeysWouldOrphanData
    from exchange.keys import key_paths

    push_records(app, 1)
    data = Path(app.instance_path, "keys", "data")
    [old] = data.glob("*.key")
    shutil.move(old, tmp_path / old.name)
    with pytest.raises(KeysWouldOrphanData) as refused:
        initialise(app)
    assert f"{old.stem} (1)" in refused.value.message("en")
    assert "restáurela desde la copia de seguridad" in refused.value.message("es")
    assert list(data.glob("*.key")) == []  # no key that would encrypt from now on
    shutil.move(tmp_path / old.name, data / old.name)

    # The log key: once the log has signed checkpoints, a new one would make it unverifiable.
    integrate_pending(app, force_checkpoint=True)
    log_key = key_paths(app)["log"]
    shutil.move(log_key, tmp_path / "log.key")
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])
    result = CliRunner().invoke(main, ["init", "--lang", "en"])
    assert result.exit_code == 1, result.output
    assert "the log key" in result.output and "restore it from the backup" in result.output
    assert not log_key.exists()
    shutil.move(tmp_path / "log.key", log_key)
    assert CliRunner().invoke(main, ["init"]).exit_code == 0


def test_readiness_says_restore_not_init_when_rows_need_the_lost_data_key(app: Flask) -> None:
    # Every data key gone, with rows under one: a new key (puente init) would read none of
    # them, so the only advice is to restore the key folder.
    push_records(app, 1)
    for path in Path(app.instance_path, "keys", "data").glob("*.key"):
        path.unlink()
    data_keyring(app).reload()
    ready = app.test_client().get("/readyz", headers={"Accept-Language": "en"}).get_json()
    assert ready["checks"]["keys"] == "missing or unreadable: data"
    assert "restore the key folder from the backup" in ready["detail"]
    assert "run 'puente init'" not in ready["detail"].replace("do not run 'puente init'", "")


def test_readiness_says_to_correct_a_key_given_in_the_environment(app: Flask) -> None:
    # A malformed PUENTE_DATA_KEY is not fixed by puente init, which writes files.
    app.config["DATA_KEY"] = "no es una llave"
    app.extensions.pop("puente.data_keys")  # made again from the setting
    ready = app.test_client().get("/readyz", headers={"Accept-Language": "en"}).get_json()
    assert ready["checks"]["keys"] == "missing or unreadable: data"
    assert "the key given in PUENTE_DATA_KEY cannot be read: correct it" in ready["detail"]
    assert "puente init" not in ready["detail"]
