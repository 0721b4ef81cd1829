"""The ``puente`` command line.

Commands that need the hub (database, keys) build it with :func:`hub_app`; commands that only
read schemas or files (``validate``, ``schemas``, ``audit verify``) never touch the database,
so a data officer or an oversight body can run them anywhere.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from flask import Flask

F = TypeVar("F", bound=Callable[..., Any])


def default_language() -> str:
    """Spanish or English for what a person reads: ``PUENTE_LANG``, else the locale."""
    lang = os.environ.get("PUENTE_LANG") or os.environ.get("LANG", "")
    return "es" if lang.lower().startswith("es") else "en"


def say(lang: str, spanish: str, english: str) -> str:
    """The text in ``lang`` (from :data:`language_option`)."""
    return spanish if lang == "es" else english


language_option = click.option(
    "--lang",
    type=click.Choice(["es", "en"]),
    default=default_language,
    show_default="PUENTE_LANG or LANG",
    help="Language of messages / idioma de los mensajes.",
)


def hub_app(lang: str | None = None, exit_code: int = 1, *, creates: bool = False) -> Flask:
    """The hub configured by ``PUENTE_*``; a setting it cannot use (a number that is not one,
    a database address it cannot open, a SQLite database that is not there unless the
    command ``creates`` the hub) ends the command with one line and ``exit_code``."""
    from exchange import create_app
    from exchange.config import SettingError

    try:
        return create_app({"DATABASE_CREATE": creates})
    except SettingError as error:
        raise _ending(error.message(lang or default_language()), exit_code) from None


@contextlib.contextmanager
def database_errors(lang: str | None = None, exit_code: int = 1) -> Iterator[None]:
    """An unreachable or empty database is the operator's to fix: one line in Spanish or
    English (``lang``, else PUENTE_LANG or LANG), exit ``exit_code``, no traceback. Any other
    database error is a fault and goes on as one."""
    from sqlalchemy.exc import DBAPIError

    from exchange.db import unavailable_reason

    try:
        yield
    except DBAPIError as error:
        reason = unavailable_reason(error)
        if reason is None:
            raise
        raise _ending(say(lang or default_language(), *reason), exit_code) from None


def _ending(message: str, exit_code: int) -> click.ClickException:
    ending = click.ClickException(message)
    ending.exit_code = exit_code
    return ending


def with_hub(function: F) -> F:
    """Run the command inside an app context of the existing hub configured by ``PUENTE_*``
    (a SQLite database that is not there ends the command: see :func:`hub_app`)."""
    return _in_hub(function, creates=False)


def setting_up_hub(function: F) -> F:
    """As :func:`with_hub`, for the commands that create the hub's database when it is not
    there yet (``init``, ``demo``). ``db upgrade`` is not one: it refuses a SQLite database
    that is not there (a mistyped instance path must not become a new, empty hub)."""
    return _in_hub(function, creates=True)


def _in_hub(function: F, *, creates: bool) -> F:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        lang = kwargs.get("lang")
        app = hub_app(lang, creates=creates)
        with database_errors(lang), app.app_context():
            return function(app, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, sort_keys=False))


def print_json_or_say(as_json: bool, value: Any, lang: str, spanish: str, english: str) -> None:
    """What a verb did: ``value`` as JSON for scripts (``--json``), else one sentence for a
    person, in ``lang``."""
    if as_json:
        print_json(value)
    else:
        click.echo(say(lang, spanish, english))


#: command name -> (module in exchange.cli, attribute). Modules load only when their command
#: runs, so ``puente audit verify`` and ``puente validate`` never import the hub (Flask,
#: SQLAlchemy): an oversight body's machine needs only the ``audit`` package and its keys.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("hub", "init_command"),
    "db": ("hub", "db_group"),
    "serve": ("hub", "serve_command"),
    "demo": ("hub", "demo_command"),
    "keys": ("keys", "keys_group"),
    "agency": ("agencies", "agency_group"),
    "person": ("people", "person_group"),
    "peer": ("peers", "peer_group"),
    "schemas": ("schemas", "schemas_group"),
    "validate": ("schemas", "validate_command"),
    "children": ("children", "children_group"),
    "worker": ("worker", "worker_command"),
    "outbox": ("worker", "outbox_group"),
    "audit": ("audit", "audit_group"),
    "import": ("imports", "import_command"),
    "export": ("exports", "export_command"),
    "adapters": ("adapters", "adapters_group"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented pattern)."""

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        # Click reports usage errors (a missing argument, a mistyped option) before any of
        # Puente's own code runs: it speaks the language of the command line from the start.
        import sys

        from exchange.cli.click_spanish import language_of, use_language

        given = list(sys.argv[1:] if args is None else args)
        use_language(language_of(given, default_language()))
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImportError as error:
            # A command that loads a library only when it runs (validate: the schema
            # validator; audit export: the progress bar), on a machine without it.
            if (error.name or "").startswith(("exchange", "adapters", "audit")):
                raise
            raise click.ClickException(_needs_the_hub(ctx.invoked_subcommand, error)) from error

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        try:
            loaded = importlib.import_module(f"exchange.cli.{module}")
        except ImportError as error:
            if (error.name or "").startswith(("exchange", "adapters", "audit")):
                raise  # one of Puente's own modules: a bug, not an installation
            # Installed for offline verification only (docs/audit.md §3): the hub's libraries
            # are not there. `puente --help` still lists every command; this one says so.
            return _not_installed(cmd_name, error)
        command = getattr(loaded, attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise RuntimeError(f"exchange.cli.{module}.{attribute} is not the {cmd_name!r} command")
        return command


def _needs_the_hub(cmd_name: str | None, error: ImportError) -> str:
    missing = error.name or str(error)
    return (
        f"'puente {cmd_name}' necesita el nodo completo instalado (falta {missing}): "
        f"pip install puente / 'puente {cmd_name}' needs the whole hub installed "
        f"({missing} is missing): pip install puente"
    )


def _not_installed(cmd_name: str, error: ImportError) -> click.Command:
    missing = error.name or str(error)

    def refuse(**_: Any) -> None:
        raise click.ClickException(_needs_the_hub(cmd_name, error))

    return click.Command(
        cmd_name,
        callback=refuse,
        help=f"Not installed here: needs the whole hub ({missing} is missing).",
        short_help="(not installed here / no instalado aquí)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="puente")
def main() -> None:
    """Puente: interagency data exchange and consent hub for migrant and refugee children."""
