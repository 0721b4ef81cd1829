"""``puente adapters list`` and ``puente adapters template csv``.

Neither touches the hub: an office can see which formats it can import and make a blank
spreadsheet with its mapping on any machine. ``template csv`` writes two files into ``--out``:
``<schema>-<version>.csv`` (the header row only, UTF-8 with a byte-order mark so Excel shows
the accents) and ``<schema>-<version>.yaml`` (the mapping ``puente import --adapter csv
--mapping`` reads), then prints the ``puente import`` command that uses them, with
``--agency AGENCY_ID`` to fill in. Existing files are kept unless ``--force``.
"""

from __future__ import annotations

import csv
import io
import shlex
from pathlib import Path

import click

from exchange.cli import language_option, print_json, say


@click.group("adapters")
def adapters_group() -> None:
    """Format adapters / adaptadores de formato (CSV, Primero, FHIR, JSON…)."""


@adapters_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object name → description.")
@language_option
def list_command(as_json: bool, lang: str) -> None:
    """List the adapters: built-in and installed (entry point ``puente.adapters``)."""
    from adapters import registry

    described = registry.available(lang)
    if as_json:
        print_json(described)
        return
    width = max(map(len, described), default=0)
    for name, description in described.items():
        click.echo(f"{name:<{width}}  {description}")


@adapters_group.command("template")
@click.argument("kind", metavar="FORMAT", type=click.Choice(["csv"]))
@click.option("--schema", "schema_ref", default="case-record/1", show_default=True)
@click.option(
    "--repeat",
    default=2,
    show_default=True,
    type=click.IntRange(1, 20),
    help="Column groups for each list of objects (placements_1_*, placements_2_*…).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the spreadsheet header and the mapping into.",
)
@click.option("--force", is_flag=True, help="Replace files that already exist.")
@click.option("--json", "as_json", is_flag=True, help="Print the paths written as JSON.")
@language_option
def template_command(
    kind: str, schema_ref: str, repeat: int, out_dir: Path, force: bool, as_json: bool, lang: str
) -> None:
    """Write a blank spreadsheet (header row) and its column mapping, derived from the schema."""
    from adapters.template import csv_template
    from schemas.errors import SchemaError

    try:
        template = csv_template(schema_ref, repeat=repeat)
    except SchemaError as error:
        raise click.UsageError(error.message(lang)) from None
    stem = schema_ref.replace("/", "-")
    sheet, mapping = out_dir / f"{stem}.csv", out_dir / f"{stem}.yaml"
    existing = [str(path) for path in (sheet, mapping) if path.exists()]
    if existing and not force:
        raise click.UsageError(
            say(
                lang,
                f"ya existe {', '.join(existing)} (use --force para reemplazarlo)",
                f"{', '.join(existing)} already exists (use --force to replace it)",
            )
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    header = io.StringIO()
    csv.writer(header).writerow(template.header)
    sheet.write_text(header.getvalue(), encoding="utf-8-sig", newline="")
    mapping.write_text(template.mapping_yaml, encoding="utf-8")
    if as_json:
        print_json({"csv": str(sheet), "mapping": str(mapping), "columns": len(template.header)})
        return
    # The hint is a command that runs once its two placeholders are filled in: ``import``
    # requires --agency, and a folder with spaces in its name must reach it as one argument.
    command = f"puente import --adapter csv --mapping {shlex.quote(str(mapping))}"
    click.echo(
        say(
            lang,
            f"{sheet} ({len(template.header)} columnas) y {mapping}: borre las columnas que no "
            f"use y luego:\n  {command} --agency ID_INSTITUCION ARCHIVO.csv\n"
            "(ID_INSTITUCION: el id de su institución en el hub, p. ej. mx.chp.dif; "
            "desde otra máquina, añada --hub URL y las credenciales de la institución: "
            "PUENTE_CLIENT_SECRET, --client-secret o --key)",
            f"{sheet} ({len(template.header)} columns) and {mapping}: delete the columns you do "
            f"not use, then:\n  {command} --agency AGENCY_ID FILE.csv\n"
            "(AGENCY_ID: your agency's id on the hub, e.g. mx.chp.dif; from another machine, "
            "add --hub URL and the agency's credentials: PUENTE_CLIENT_SECRET, --client-secret "
            "or --key)",
        )
    )
