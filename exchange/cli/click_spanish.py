"""Click's own messages in Spanish: usage errors, help headings and prompts.

Puente's messages follow ``--lang`` (else ``PUENTE_LANG`` or the locale), but a mistyped option
or a missing argument is reported by click itself, in English. Click marks those texts for
translation with :mod:`gettext` (``_`` and ``ngettext`` in each of its modules); this catalogue
gives them in Spanish, and :func:`use_language` points click's modules at it before the command
line is parsed. A text missing here stays in English.
"""

from __future__ import annotations

import gettext
import importlib

#: click's message ids (click 8.x, ``_(...)`` in its modules) -> Spanish.
SPANISH: dict[str, str] = {
    # exceptions.py
    "Error: {message}": "Error: {message}",
    "Try '{command} {option}' for help.": "Pruebe '{command} {option}' para ver la ayuda.",
    "Invalid value: {message}": "Valor no válido: {message}",
    "Invalid value for {param_hint}: {message}": "Valor no válido para {param_hint}: {message}",
    "Missing argument": "Falta el argumento",
    "Missing option": "Falta la opción",
    "Missing parameter": "Falta el parámetro",
    "Missing {param_type}": "Falta {param_type}",
    "Missing parameter: {param_name}": "Falta el parámetro: {param_name}",
    "No such option {name!r}.": "No existe la opción {name!r}.",
    "No such command {name!r}.": "No existe la orden {name!r}.",
    "Did you mean {possibility}?": "¿Quiso decir {possibility}?",
    "(Did you mean one of: {possibilities}?)": "(¿Quiso decir una de: {possibilities}?)",
    "Could not open file {filename!r}: {message}": (
        "No se pudo abrir el archivo {filename!r}: {message}"
    ),
    "unknown error": "error desconocido",
    # core.py
    "Aborted!": "¡Cancelado!",
    "Missing command.": "Falta la orden.",
    "Got unexpected extra argument ({args})": "Sobra un argumento ({args})",
    "Got unexpected extra arguments ({args})": "Sobran argumentos ({args})",
    "Takes {nargs} values but 1 was given.": "Requiere {nargs} valores pero se dio 1.",
    "Takes {nargs} values but {len} were given.": (
        "Requiere {nargs} valores pero se dieron {len}."
    ),
    "Options": "Opciones",
    "Commands": "Órdenes",
    "Positional arguments": "Argumentos",
    "default: {default}": "predeterminado: {default}",
    "env var: {var}": "variable de entorno: {var}",
    "(dynamic)": "(dinámico)",
    "deprecated": "obsoleto",
    "Value must be an iterable.": "El valor debe ser una lista.",
    # decorators.py
    "Show this message and exit.": "Muestra esta ayuda y termina.",
    "Show the version and exit.": "Muestra la versión y termina.",
    "%(prog)s, version %(version)s": "%(prog)s, versión %(version)s",
    "Do you want to continue?": "¿Desea continuar?",
    "Confirm the action without prompting.": "Confirma la acción sin preguntar.",
    # formatting.py
    "Usage:": "Uso:",
    # parser.py
    "Option {name!r} does not take a value.": "La opción {name!r} no lleva valor.",
    "Option {name!r} requires an argument.": "La opción {name!r} requiere un valor.",
    "Option {name!r} requires {nargs} arguments.": "La opción {name!r} requiere {nargs} valores.",
    "Argument {name!r} takes {nargs} values.": "El argumento {name!r} lleva {nargs} valores.",
    "Invalid start character for option ({option})": (
        "Carácter inicial no válido para una opción ({option})"
    ),
    # termui.py
    "Repeat for confirmation": "Repita para confirmar",
    "Error: The two entered values do not match.": "Error: los dos valores no coinciden.",
    "Error: invalid input": "Error: entrada no válida",
    "Press any key to continue...": "Pulse una tecla para continuar...",
    # types.py
    "{value!r} is not {choice}.": "{value!r} no es {choice}.",
    "{value!r} is not one of {choices}.": "{value!r} no es una de {choices}.",
    "Choose from:\n\t{choices}": "Elija entre:\n\t{choices}",
    "{value!r} does not match the format {format}.": "{value!r} no tiene el formato {format}.",
    "{value!r} does not match the formats {formats}.": (
        "{value!r} no tiene ninguno de los formatos {formats}."
    ),
    "{value!r} is not a valid {number_type}.": "{value!r} no es un {number_type} válido.",
    "{value} is not in the range {range}.": "{value} no está en el intervalo {range}.",
    "{value!r} is not a valid boolean. Recognized values: {states}": (
        "{value!r} no es un valor lógico válido. Valores reconocidos: {states}"
    ),
    "{value!r} is not a valid UUID.": "{value!r} no es un UUID válido.",
    "{len_type} values are required, but {len_value} was given.": (
        "Se requieren {len_type} valores, pero se dio {len_value}."
    ),
    "{len_type} values are required, but {len_value} were given.": (
        "Se requieren {len_type} valores, pero se dieron {len_value}."
    ),
    "file": "archivo",
    "directory": "carpeta",
    "path": "ruta",
    "{name} {filename!r} does not exist.": "{name} {filename!r} no existe.",
    "{name} {filename!r} is a file.": "{name} {filename!r} es un archivo.",
    "{name} {filename!r} is a directory.": "{name} {filename!r} es una carpeta.",
    "{name} {filename!r} is not readable.": "{name} {filename!r} no se puede leer.",
    "{name} {filename!r} is not writable.": "{name} {filename!r} no se puede escribir.",
    "{name} {filename!r} is not executable.": "{name} {filename!r} no es ejecutable.",
}

#: click's modules that translate what they print.
_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "termui", "types")


def spanish(message: str) -> str:
    return SPANISH.get(message, message)


def spanish_plural(singular: str, plural: str, count: int) -> str:
    return spanish(singular if count == 1 else plural)


def use_language(lang: str) -> None:
    """Make click speak ``lang`` ("es" or "en") from now on in this process."""
    for name in _MODULES:
        module = importlib.import_module(f"click.{name}")
        if hasattr(module, "_"):
            module._ = spanish if lang == "es" else gettext.gettext  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = (  # type: ignore[attr-defined]
                spanish_plural if lang == "es" else gettext.ngettext
            )


def language_of(args: list[str], default: str) -> str:
    """The ``--lang`` given anywhere on the command line, else ``default``."""
    for position, arg in enumerate(args):
        if arg == "--lang" and position + 1 < len(args):
            value = args[position + 1]
        elif arg.startswith("--lang="):
            value = arg.partition("=")[2]
        else:
            continue
        if value in ("es", "en"):
            return value
    return default
