"""The ``puente`` command line.

Commands that need the hub (database, keys) build it with :func:`hub_app`; commands that only
read schemas or files (``validate``, ``schemas``, ``audit verify``) never touch the database,
so a data officer or an oversight body can run them anywhere.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask import Flask

F = TypeVar("F", bound=Callable[..., Any])


def default_language() -> str:
    """Spanish or English for what a person reads: ``PUENTE_LANG``, else the locale."""
    lang = os.environ.get("PUENTE_LANG") or os.environ.get("LANG", "")
    return "es" if lang.lower().startswith("es") else "en"


language_option = click.option(
    "--lang",
    type=click.Choice(["es", "en"]),
    default=default_language,
    show_default="PUENTE_LANG or LANG",
    help="Language of messages / idioma de los mensajes.",
)


def hub_app() -> Flask:
    from exchange import create_app

    return create_app()


def with_hub(function: F) -> F:
    """Run the command inside an app context of the hub configured by ``PUENTE_*``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = hub_app()
        with app.app_context():
            return function(app, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, sort_keys=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="puente")
def main() -> None:
    """Puente: interagency data exchange and consent hub for migrant and refugee children."""


def _register_commands() -> None:
    from exchange.cli import agencies, audit, children, hub, keys, schemas, worker

    for area in (hub, keys, agencies, schemas, children, worker, audit):
        area.register(main)


_register_commands()
