"""Click's own usage errors and help headings follow the command line's language."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from exchange.cli import main
from exchange.cli.click_spanish import SPANISH, language_of

# What click says to developers who declare commands wrongly, never to a person running one.
DEVELOPER_ONLY = {
    "Could not determine name for option with declarations {decls!r}",
    "No options defined but a name was passed ({name}). Did you mean to declare an argument "
    "instead? Did you mean to pass '--{name}'?",
    "Arguments take exactly one parameter declaration, got {length}: {decls}.",
    "Name '{name}' defined twice",
    "Boolean option {decl!r} cannot use the same flag for true/false.",
    "DeprecationWarning: The command {name!r} is deprecated.{extra_message}",
    "DeprecationWarning: The {param_type} {name!r} is deprecated.{extra_message}",
    "Choice({choices})",
    "Unknown color {colour!r}",
}
TRANSLATED_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "termui", "types")


def run(*args: str, env: dict[str, str] | None = None) -> str:
    environment = {"PUENTE_LANG": "", "LANG": "C", **(env or {})}
    result = CliRunner().invoke(main, list(args), env=environment, prog_name="puente")
    assert result.exit_code == 2, result.output
    return result.output


def test_a_missing_argument_is_said_in_spanish_with_lang_es() -> None:
    output = run("agency", "add", "--lang", "es")
    assert "Error: Falta el argumento 'AGENCY_ID'." in output
    assert "Uso: puente agency add" in output
    assert "Pruebe 'puente agency add --help' para ver la ayuda." in output


def test_the_environment_chooses_spanish_too() -> None:
    output = run("agnecy", env={"PUENTE_LANG": "es"})
    assert "No existe la orden 'agnecy'." in output


def test_english_stays_english_after_a_spanish_run() -> None:
    run("agency", "add", "--lang", "es")
    output = run("agency", "add", "--lang", "en")
    assert "Error: Missing argument 'AGENCY_ID'." in output and "Usage:" in output


def test_a_bad_choice_is_explained_in_spanish() -> None:
    output = run("agency", "add", "mx.x", "--level", "planetary", "--lang=es")
    assert "Valor no válido para '--level'" in output
    assert "no es una de" in output


@pytest.mark.parametrize(
    ("args", "lang"),
    [
        (["--lang", "es"], "es"),
        (["x", "--lang=en"], "en"),
        (["--lang"], "fr"),
        (["--lang", "de"], "fr"),
    ],
)
def test_language_of_the_command_line(args: list[str], lang: str) -> None:
    assert language_of(args, "fr") == lang


def click_messages() -> set[str]:
    root = Path(click.__file__).parent
    found: set[str] = set()
    for name in TRANSLATED_MODULES:
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"_", "ngettext"}
            ):
                found.update(
                    arg.value
                    for arg in node.args
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                )
    return found


def test_every_message_click_shows_a_person_has_its_spanish() -> None:
    # Fails when a click release adds or rewords a message: give it its Spanish here.
    missing = click_messages() - DEVELOPER_ONLY - set(SPANISH)
    assert not missing, sorted(missing)
