"""A database the hub cannot use, as ``puente import``, ``export`` and ``audit export`` report it:
one line in the language asked for, the exit code their docs give, never a traceback. And an
address in libpq's spelling (``postgres://``) is a setting to correct, not a crash."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from exchange import db
from exchange.cli import main

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(folder))
    monkeypatch.setenv("LANG", "C")
    return folder


@pytest.fixture
def pushes(tmp_path: Path) -> Path:
    envelope = {
        "schema": "case-record/1",
        "local_id": "EXP-1",
        "record": {"child": {"alias": "Niño 1"}},
    }
    path = tmp_path / "casos.ndjson"
    path.write_text(json.dumps(envelope) + "\n", encoding="utf-8")
    return path


def _empty_sqlite_file(database_url: str) -> None:
    """db upgrade upgrades an existing database only: a SQLite one is made empty first (as its
    server makes a PostgreSQL one)."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="puente")


def _commands(pushes: Path, out: Path) -> dict[str, tuple[list[str], int]]:
    """Each command that opens the database itself, with the exit code its docs promise for
    "could not start": 2 for import (README, adapters.md) and export (nothing exported, as
    for an unknown agency); audit export has one failure code, 1."""
    return {
        "import": (
            ["import", "--adapter", "ndjson", str(pushes), "--agency", "mx.chp.dif"],
            2,
        ),
        "export": (
            [
                "export",
                "--adapter",
                "ndjson",
                "--agency",
                "mx.chp.dif",
                "--purpose",
                "case_management",
                "--out",
                str(out / "casos-export.ndjson"),
            ],
            2,
        ),
        "audit export": (["audit", "export", "--out", str(out / "audit")], 1),
    }


def _one_line(result: Result) -> str:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("command", ["import", "export", "audit export"])
def test_an_unreachable_database_is_one_line_in_the_language_asked_for(
    instance: Path, pushes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.setenv("PUENTE_DATABASE_URL", UNREACHABLE)
    args, code = _commands(pushes, tmp_path)[command]

    english = _run(*args, "--lang", "en")
    assert english.exit_code == code, english.output
    line = _one_line(english)
    assert line.startswith("Error: the database cannot be used (")
    assert line.endswith("check PUENTE_DATABASE_URL and that its server is running")

    spanish = _run(*args, "--lang", "es")
    assert spanish.exit_code == code, spanish.output
    line = _one_line(spanish)
    assert line.startswith("Error: no se puede usar la base de datos (")
    assert line.endswith("revise PUENTE_DATABASE_URL y que el servidor esté en marcha")

    assert not (tmp_path / "casos-export.ndjson").exists()  # nothing half written
    assert not (tmp_path / "casos-rejects.ndjson").exists()


@pytest.mark.parametrize("command", ["import", "export", "audit export"])
def test_a_database_without_tables_says_to_run_init(
    instance: Path, pushes: Path, tmp_path: Path, command: str
) -> None:
    args, code = _commands(pushes, tmp_path)[command]
    instance.mkdir()
    sqlite3.connect(instance / "puente.db").close()  # a SQLite file, never set up
    result = _run(*args, "--lang", "en")
    assert result.exit_code == code, result.output
    assert _one_line(result) == (
        "Error: the database holds no Puente tables: run 'puente init' (or 'puente db upgrade')"
    )


@pytest.mark.parametrize("command", ["import", "export", "audit export", "agency list"])
def test_a_hub_that_is_not_there_is_not_made_by_a_command_about_one(
    instance: Path, pushes: Path, tmp_path: Path, command: str
) -> None:
    # A mistyped PUENTE_INSTANCE_PATH: say so, in either language, and leave no empty hub.
    args, code = _commands(pushes, tmp_path).get(command, (command.split(), 1))
    english = _run(*args, "--lang", "en")
    assert english.exit_code == code, english.output
    assert _one_line(english) == (
        f"Error: There is no hub in {instance}: the database puente.db is missing. Check "
        "PUENTE_INSTANCE_PATH (or PUENTE_DATABASE_URL), or create the hub with 'puente init'."
    )
    spanish = _run(*args, "--lang", "es")
    assert spanish.exit_code == code, spanish.output
    assert _one_line(spanish).startswith(f"Error: No hay un hub en {instance}: falta la base")
    assert not instance.exists()

    assert _run("init").exit_code == 0  # the commands that set a hub up still make it
    assert (instance / "puente.db").is_file()
    assert _run("agency", "list").exit_code == 0


def test_a_database_behind_the_code_says_to_upgrade_it(
    instance: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    # The code was updated before the database: its tables are there, but not the newest.
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    _empty_sqlite_file(database_url)
    assert _run("db", "upgrade", "--revision", "0012").exit_code == 0
    head = db.head_revision()
    args = ["audit", "export", "--out", str(tmp_path / "audit")]  # reads 0013's cosignatures

    english = _run(*args, "--lang", "en")
    assert english.exit_code == 1, english.output
    assert _one_line(english) == (
        f"Error: the database is at revision 0012, the code needs {head}: run 'puente db upgrade'"
    )
    spanish = _run(*args, "--lang", "es")
    assert spanish.exit_code == 1, spanish.output
    assert _one_line(spanish) == (
        f"Error: la base de datos está en la revisión 0012 y el código necesita la {head}: "
        "ejecute 'puente db upgrade'"
    )


@pytest.mark.parametrize(
    ("command", "code"),
    [(["agency", "list"], 1), (["db", "current"], 1), (["init"], 1), ("import", 2)],
)
def test_a_postgres_address_in_libpq_spelling_names_the_one_to_use(
    instance: Path,
    pushes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str] | str,
    code: int,
) -> None:
    monkeypatch.setenv("PUENTE_DATABASE_URL", "postgres://postgres:s3cret@127.0.0.1:5432/puente")
    args = _commands(pushes, tmp_path)[command][0] if isinstance(command, str) else command

    english = _run(*args, "--lang", "en")
    assert english.exit_code == code, english.output
    line = _one_line(english)
    assert line.startswith("Error: settings not valid: PUENTE_DATABASE_URL = postgres://…")
    assert "libpq's spelling, not SQLAlchemy's" in line
    assert "postgresql+psycopg://USER@HOST:5432/NAME" in line
    assert "s3cret" not in line  # the address may hold a password: only its scheme is shown

    spanish = _run(*args, "--lang", "es")
    assert spanish.exit_code == code, spanish.output
    line = _one_line(spanish)
    assert line.startswith("Error: configuración no válida: PUENTE_DATABASE_URL = postgres://…")
    assert "postgresql+psycopg://USUARIO@SERVIDOR:5432/BASE" in line


@pytest.mark.parametrize(
    ("url", "english"),
    [
        ("postgresql+psycopg2://postgres@127.0.0.1/puente", "module psycopg2"),
        ("nosuchdb://x@y/z", "unknown kind of database"),
        ("postgresql+psycopg://postgres@127.0.0.1:port/puente", "not a database address"),
        ("puente.db", "not a database address"),
    ],
)
def test_other_unusable_database_addresses_are_settings_errors(
    instance: Path, monkeypatch: pytest.MonkeyPatch, url: str, english: str
) -> None:
    monkeypatch.setenv("PUENTE_DATABASE_URL", url)
    result = _run("agency", "list", "--lang", "en")
    assert result.exit_code == 1, result.output
    line = _one_line(result)
    assert line.startswith("Error: settings not valid: PUENTE_DATABASE_URL = ")
    assert english in line


@pytest.mark.parametrize("command", ["add", "add-key", "rotate-key"])
def test_a_public_key_file_that_does_not_exist_is_exit_1_in_either_language(
    instance: Path, tmp_path: Path, command: str
) -> None:
    assert _run("init").exit_code == 0
    missing = str(tmp_path / "nope.pub")
    if command == "add":
        args = [
            "agency", "add", "mx.chp.dif", "--name", "DIF Chiapas", "--level", "state",
            "--kind", "state_dif", "--jurisdiction", "07", "--scope", "records:write",
            "--public-key", missing,
        ]  # fmt: skip
    else:
        args = ["agency", command, "mx.chp.dif", "--public-key", missing]
    # docs/agencies.md: "a bad key file ends with a message and exit code 1".
    english = _run(*args, "--lang", "en")
    assert english.exit_code == 1, english.output
    assert _one_line(english) == f"Error: No such file: {missing}."
    spanish = _run(*args, "--lang", "es")
    assert spanish.exit_code == 1, spanish.output
    assert _one_line(spanish) == f"Error: No existe el archivo {missing}."
    folder = _run(*args[:-1], str(tmp_path), "--lang", "es")
    assert folder.exit_code == 1, folder.output
    assert _one_line(folder) == (
        f"Error: {tmp_path} es una carpeta: indique el archivo de la clave pública."
    )


def test_a_column_a_newer_migration_adds_also_says_to_upgrade(
    instance: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    # 0016 adds peer.signing_jwk: the table is there, the column is not.
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    _empty_sqlite_file(database_url)
    assert _run("db", "upgrade", "--revision", "0015").exit_code == 0
    head = db.head_revision()
    english = _run("peer", "list", "--lang", "en")
    assert english.exit_code == 1, english.output
    assert _one_line(english) == (
        f"Error: the database is at revision 0015, the code needs {head}: run 'puente db upgrade'"
    )
