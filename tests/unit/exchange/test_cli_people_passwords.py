"""``puente person set-password``, ``add --password-stdin`` and ``enable``, as a hub
administrator runs them, and the portal secret ``puente init`` makes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from exchange import create_app, db
from exchange.audit_log import AuditEntry
from exchange.cli import main
from exchange.people import Person, check_password, password_problems

GOOD = "tres tristes tigres trigo"


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert run("init").exit_code == 0
    added = run(
        "agency", "add", "mx.fed.cndh", "--name", "CNDH", "--level", "federal",
        "--kind", "oversight", "--jurisdiction", "00", "--scope", "audit:read", "--secret",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    person = run(
        "person", "add", "--name", "Julia Ejemplo", "--email", "julia@example.org",
        "--agency", "mx.fed.cndh", "--role", "auditor", "--id", "julia",
    )  # fmt: skip
    assert person.exit_code == 0, person.output
    return tmp_path


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def stored(person_id: str = "julia") -> Person:
    app = create_app()
    try:
        with db.database(app).sessions() as session:
            person = session.get(Person, person_id)
            assert person is not None
            session.expunge(person)
            return person
    finally:
        app.extensions["puente.db"].engine.dispose()


def person_entries() -> list[Any]:
    app = create_app()
    try:
        with db.database(app).sessions() as session:
            found = session.scalars(
                select(AuditEntry.entry).where(AuditEntry.action == "person_changed")
            )
            return [json.loads(entry) for entry in found]
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_set_password_at_a_prompt_typed_twice(hub: Path) -> None:
    result = run("person", "set-password", "julia", "--lang", "en", stdin=f"{GOOD}\n{GOOD}\n")
    assert result.exit_code == 0, result.output
    assert GOOD not in result.output  # the prompt does not echo it
    assert "Password of julia set" in result.output
    assert check_password(stored(), GOOD)
    [entry] = [e for e in person_entries() if e["reason_code"] == "password_set.julia"]
    assert entry["actor"]["role"] == "administrator" and "person_id" not in entry["actor"]
    assert "example.org" not in json.dumps(person_entries())


def test_two_different_passwords_change_nothing(hub: Path) -> None:
    result = run("person", "set-password", "julia", "--lang", "es", stdin=f"{GOOD}\notra\n")
    refused(result, "Las dos contraseñas no coinciden")
    assert stored().password_hash is None


def test_set_password_from_stdin_for_scripts(hub: Path) -> None:
    # Only the line ending goes: spaces are part of a pass phrase.
    result = run(
        "person", "set-password", "julia", "--password-stdin", "--json", stdin=f" {GOOD} \n"
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["id"] == "julia" and answer["has_password"] is True
    assert "password" not in json.dumps({k: v for k, v in answer.items() if k != "has_password"})
    assert check_password(stored(), f" {GOOD} ")
    refused(run("person", "set-password", "julia", "--password-stdin", "--lang", "en", stdin=""),
            "No password came on standard input.")  # fmt: skip


@pytest.mark.parametrize(
    ("password", "spanish", "english"),
    [
        ("corta", "al menos", "12 to 1024 characters"),
        ("julia@example.org", "no puede ser el correo", "cannot be the person's e-mail"),
        ("JULIA@EXAMPLE.ORG", "no puede ser el correo", "cannot be the person's e-mail"),
        ("Julia Ejemplo", "no puede ser el correo", "cannot be the person's e-mail"),
        ("aaaaaaaaaaaaaaaa", "demasiado fácil", "too easy to guess"),
        ("123123123123", "demasiado fácil", "too easy to guess"),
        ("Password1234", "demasiado fácil", "too easy to guess"),
    ],
)
def test_weak_passwords_are_refused_in_both_languages(
    hub: Path, password: str, spanish: str, english: str
) -> None:
    if spanish == "al menos":
        spanish = "de 12 a 1024 caracteres"
    for lang, fragment in (("es", spanish), ("en", english)):
        result = run(
            "person", "set-password", "julia", "--password-stdin", "--lang", lang,
            stdin=password + "\n",
        )  # fmt: skip
        refused(result, fragment)
    assert stored().password_hash is None
    assert not [e for e in person_entries() if e["reason_code"].startswith("password_set")]


def test_password_rules() -> None:
    assert password_problems(GOOD, "julia@example.org", "Julia Ejemplo", "julia") == []
    # The address's name part is as known as the address.
    assert password_problems("juliaquintana", "juliaquintana@example.org")
    assert password_problems("x" * 1025)


def test_an_unknown_person_is_refused_before_any_password_is_asked(hub: Path) -> None:
    refused(run("person", "set-password", "nadie", "--lang", "en"), "There is no person 'nadie'")


def test_add_with_a_password_from_stdin(hub: Path) -> None:
    result = run(
        "person", "add", "--name", "Luis Ejemplo", "--email", "luis@example.org",
        "--agency", "mx.fed.cndh", "--role", "auditor", "--id", "luis",
        "--password-stdin", "--json", stdin=GOOD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["has_password"] is True
    assert check_password(stored("luis"), GOOD)
    weak = run(
        "person", "add", "--name", "Otra", "--email", "otra@example.org",
        "--agency", "mx.fed.cndh", "--role", "auditor", "--password-stdin", "--lang", "en",
        stdin="otra@example.org\n",
    )  # fmt: skip
    refused(weak, "cannot be the person's e-mail")


def test_enable_undoes_a_disable_but_brings_no_token_back(hub: Path) -> None:
    issued = run("person", "token", "julia", "--scope", "audit:read", "--json")
    token = json.loads(issued.output)["token"]
    assert run("person", "disable", "julia").exit_code == 0
    refused(run("person", "enable", "nadie", "--lang", "en"), "There is no person 'nadie'")

    enabled = run("person", "enable", "julia", "--lang", "es")
    assert enabled.exit_code == 0, enabled.output
    assert "Persona julia activada de nuevo" in enabled.output
    assert "tokens anteriores siguen revocados" in enabled.output
    assert stored().active is True
    again = run("person", "enable", "julia", "--lang", "en")
    refused(again, "Person julia was already active; nothing was changed.")
    reasons = [e["reason_code"] for e in person_entries()]
    assert reasons.count("enabled.julia") == 1

    app = create_app({"TESTING": True})
    try:
        headers = {"Authorization": f"Bearer {token}"}
        assert app.test_client().get("/v1/audit/events", headers=headers).status_code == 401
    finally:
        app.extensions["puente.db"].engine.dispose()

    assert run("person", "disable", "julia").exit_code == 0
    answer = json.loads(run("person", "enable", "julia", "--json").output)
    assert answer["active"] is True and answer["tokens"] == []


def test_init_makes_the_portal_secret_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = tmp_path / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(instance))
    first = json.loads(run("init", "--json").output)
    secret = instance / "keys" / "portal-secret.key"
    assert first["portal_secret_created"] == str(secret)
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 32
    assert json.loads(run("init", "--json").output)["portal_secret_created"] is None
    # A secret from the environment is used as it is, and no file is made for it.
    other = tmp_path / "other"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(other))
    monkeypatch.setenv("PUENTE_PORTAL_SECRET_KEY", "k" * 40)
    assert json.loads(run("init", "--json").output)["portal_secret_created"] is None
    assert not (other / "keys" / "portal-secret.key").exists()
