"""``puente person …``: register people, set their portal passwords, disable and enable them,
issue and revoke personal access tokens.

Every command runs in one transaction with its audit entry; refusals (an unknown agency, a scope
the person's roles do not allow, a duplicate e-mail, a token already revoked or a person already
disabled) end with a message in Spanish or English and exit code 1, and write nothing to the
audit log. A token is printed once: only its hash is stored. A password is never an argument
(it would stay in the shell's history and the process list): it is typed at a prompt, twice, or
read from standard input with ``--password-stdin``.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from flask import Flask
from sqlalchemy.orm import Session

from exchange import db
from exchange.agencies import UnknownAgency, get_agency
from exchange.auth import SCOPES
from exchange.cli import language_option, print_json, print_json_or_say, say, with_hub
from exchange.cli.agencies import _transaction, json_option
from exchange.people import (
    DEFAULT_TOKEN_DAYS,
    MAX_TOKEN_DAYS,
    PERSON_ROLES,
    ROLE_SCOPES,
    Person,
    add_person,
    describe,
    disable_person,
    enable_person,
    get_person,
    issue_token,
    list_people,
    list_tokens,
    revoke_token,
    set_password,
)

#: Token ids are the ``access_token`` table's INTEGER key, 32 bits on PostgreSQL: a larger id
#: names no token, and the database would refuse to look it up (SQLite past 64 bits too).
TOKEN_ID = click.IntRange(1, 2**31 - 1)


@click.group("person")
def person_group() -> None:
    """People: legal representatives, consent and override officers, auditors, administrators."""


password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the portal password from the first line of standard input (for scripts).",
)


def read_password(lang: str, from_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice at a prompt that
    does not echo it."""
    if from_stdin:
        # Only the line ending is dropped: spaces may be part of a pass phrase.
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException(
                say(
                    lang,
                    "No llegó ninguna contraseña por la entrada estándar.",
                    "No password came on standard input.",
                )
            )
        return password
    password = click.prompt(say(lang, "Contraseña nueva", "New password"), hide_input=True)
    again = click.prompt(say(lang, "Repita la contraseña", "Repeat the password"), hide_input=True)
    if password != again:
        raise click.ClickException(
            say(
                lang,
                "Las dos contraseñas no coinciden; no se cambió nada.",
                "The two passwords differ; nothing was changed.",
            )
        )
    return str(password)


def described(session: Session, person: Person) -> dict[str, Any]:
    """The person as every ``puente person`` verb's ``--json`` shows them, with the tokens that
    still work: ``set-password`` or ``enable`` must not answer "no tokens" for a person whom
    ``list`` shows holding some (and whose tokens ``disable`` would revoke)."""
    return describe(person, list_tokens(session, person.id))


def _roles_help() -> str:
    return "; ".join(f"{role}: {' '.join(sorted(ROLE_SCOPES[role]))}" for role in PERSON_ROLES)


@person_group.command("add")
@click.option("--name", required=True, help="Full name (shown to people, never audited).")
@click.option("--email", required=True, help="E-mail address; one person per address.")
@click.option("--agency", "agency_id", required=True, help="Id of the agency the person is with.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(PERSON_ROLES),
    help="Repeat for several roles.",
)
@click.option(
    "--jurisdiction",
    help="INEGI code the person covers; default the agency's (may only narrow it).",
)
@click.option("--id", "person_id", help="A readable id (default: a generated per_… id).")
@password_stdin_option
@json_option
@language_option
@with_hub
def add_command(
    app: Flask,
    name: str,
    email: str,
    agency_id: str,
    roles: tuple[str, ...],
    jurisdiction: str | None,
    person_id: str | None,
    password_stdin: bool,
    as_json: bool,
    lang: str,
) -> None:
    """Register a person of an agency with one or more roles (and, with --password-stdin, a
    portal password)."""
    password = read_password(lang, True) if password_stdin else None
    with _transaction(app, lang) as session:
        person = add_person(
            session,
            name=name,
            email=email,
            agency_id=agency_id,
            roles=roles,
            jurisdiction=jurisdiction,
            person_id=person_id,
            password=password,
        )
        answer = described(session, person)
    if as_json:
        print_json(answer)
        return
    click.echo(
        say(lang, f"Persona {answer['id']} registrada.", f"Person {answer['id']} registered.")
    )
    click.echo(f"  {' '.join(answer['roles'])}  {answer['agency_id']}  {answer['jurisdiction']}")


@person_group.command("list")
@click.option("--agency", "agency_id", help="Only the people of this agency.")
@json_option
@language_option
@with_hub
def list_command(app: Flask, agency_id: str | None, as_json: bool, lang: str) -> None:
    """List people with their roles, state and working tokens."""
    with db.database(app).sessions() as session:
        if agency_id is not None:
            try:
                get_agency(session, agency_id)  # an unknown one is a mistake, not "no people"
            except UnknownAgency as error:
                raise click.ClickException(error.message(lang)) from error
        people = [described(session, person) for person in list_people(session, agency_id)]
    if as_json:
        print_json({"people": people})
        return
    if not people:
        click.echo(say(lang, "No hay personas registradas.", "No people registered."))
    for person in people:
        state = (
            say(lang, "activa", "active")
            if person["active"]
            else say(lang, "DESACTIVADA", "DISABLED")
        )
        click.echo(
            f"{person['id']}  {person['agency_id']}  {person['jurisdiction']}  {state}  "
            f"{' '.join(person['roles'])}  "
            + say(lang, f"tokens: {len(person['tokens'])}", f"tokens: {len(person['tokens'])}")
            + f"  {person['name']} <{person['email']}>"
        )


@person_group.command("disable")
@click.argument("person_id")
@json_option
@language_option
@with_hub
def disable_command(app: Flask, person_id: str, as_json: bool, lang: str) -> None:
    """Disable a person: their tokens stop working at once, their pending access requests are
    denied and the grants they hold revoked (enabling them again brings none back)."""
    with _transaction(app, lang) as session:
        tokens, denied, revoked = disable_person(session, person_id)
        answer = {
            **described(session, get_person(session, person_id)),
            "tokens_revoked": tokens,
            "access_requests_denied": denied,
            "grants_revoked": revoked,
        }
    if as_json:
        print_json(answer)
        return
    click.echo(
        say(
            lang,
            f"Persona {person_id} desactivada; {tokens} token(s) revocado(s).",
            f"Person {person_id} disabled; {tokens} token(s) revoked.",
        )
        + " "
        + access_ended(lang, denied, revoked)
    )


def access_ended(lang: str, denied: int, revoked: int) -> str:
    """What disabling a person ended besides their tokens, each count with its own singular or
    plural, and that enabling them again brings none of it back (as ``agency disable`` says)."""
    if lang == "es":
        requests = (
            "1 solicitud de acceso pendiente denegada"
            if denied == 1
            else f"{denied} solicitudes de acceso pendientes denegadas"
        )
        grants = (
            "1 autorización revocada" if revoked == 1 else f"{revoked} autorizaciones revocadas"
        )
        ended = f"{requests} y {grants}."
        if denied or revoked:
            ended += " Reactivar a la persona no las devuelve: harán falta solicitudes nuevas."
        return ended
    requests = (
        "1 pending access request denied"
        if denied == 1
        else f"{denied} pending access requests denied"
    )
    grants = "1 grant revoked" if revoked == 1 else f"{revoked} grants revoked"
    ended = f"{requests} and {grants}."
    if denied or revoked:
        ended += " Enabling the person again brings none back: new requests will be needed."
    return ended


@person_group.command("enable")
@click.argument("person_id")
@json_option
@language_option
@with_hub
def enable_command(app: Flask, person_id: str, as_json: bool, lang: str) -> None:
    """Enable a disabled person again; the tokens they had stay revoked."""
    with _transaction(app, lang) as session:
        answer = described(session, enable_person(session, person_id))
    if as_json:
        print_json(answer)
        return
    click.echo(
        say(
            lang,
            f"Persona {person_id} activada de nuevo. Sus tokens anteriores siguen revocados: "
            "entra al portal con su contraseña y crea tokens nuevos (o: puente person token).",
            f"Person {person_id} enabled again. Their earlier tokens stay revoked: they log "
            "into the portal with their password and make new ones (or: puente person token).",
        )
    )


@person_group.command("set-password")
@click.argument("person_id")
@password_stdin_option
@json_option
@language_option
@with_hub
def set_password_command(
    app: Flask, person_id: str, password_stdin: bool, as_json: bool, lang: str
) -> None:
    """Set a person's portal password (typed twice, or --password-stdin)."""
    with _transaction(app, lang) as session:
        get_person(session, person_id)  # an unknown person before the password is typed
    password = read_password(lang, password_stdin)
    with _transaction(app, lang) as session:
        set_password(session, person_id, password)
        answer = described(session, get_person(session, person_id))
    print_json_or_say(
        as_json,
        answer,
        lang,
        f"Contraseña de {person_id} establecida; sus sesiones abiertas en el portal terminan.",
        f"Password of {person_id} set; their open portal sessions end.",
    )


@person_group.command("token")
@click.argument("person_id")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="Repeat. Allowed by role: " + _roles_help() + ".",
)
@click.option(
    "--days",
    type=click.IntRange(1, MAX_TOKEN_DAYS),
    default=DEFAULT_TOKEN_DAYS,
    show_default=True,
    help=f"Lifetime in days (at most {MAX_TOKEN_DAYS}).",
)
@click.option("--name", help='A label for the token ("portátil", "reports script").')
@json_option
@language_option
@with_hub
def token_command(
    app: Flask,
    person_id: str,
    scopes: tuple[str, ...],
    days: int,
    name: str | None,
    as_json: bool,
    lang: str,
) -> None:
    """Issue a personal access token; it is shown once and stored only as a hash."""
    with _transaction(app, lang) as session:
        issued = issue_token(session, person_id, scopes, days=days, name=name)
    answer = issued.to_json()
    if as_json:
        print_json(answer)
        return
    click.echo(
        say(
            lang,
            f"Token {issued.token_id} para {person_id}, vence {answer['expires_at']}:",
            f"Token {issued.token_id} for {person_id}, expires {answer['expires_at']}:",
        )
    )
    click.echo(f"  {issued.token}")
    click.echo(
        say(
            lang,
            "  Guárdelo ahora: no se vuelve a mostrar.",
            "  Store it now: it is not shown again.",
        )
    )


@person_group.command("revoke-token")
@click.argument("token_id", type=TOKEN_ID)
@language_option
@with_hub
def revoke_token_command(app: Flask, token_id: int, lang: str) -> None:
    """Revoke a personal access token at once."""
    with _transaction(app, lang) as session:
        person_id = revoke_token(session, token_id)
    click.echo(
        say(
            lang,
            f"Token {token_id} de {person_id} revocado.",
            f"Token {token_id} of {person_id} revoked.",
        )
    )
