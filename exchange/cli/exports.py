"""``puente export``: the records an agency may read, in an adapter's format.

Each record is decided, redacted and audited as ``GET /v1/children/{child_id}/records`` would
(:mod:`exchange.exporter`): on the hub's machine (no ``--hub``) for every child the agency holds
or was sent a record of, or through the API with the agency's credentials, child by child.
The output file is replaced only once it is complete: Ctrl-C writes none (exit 130), nor does
an adapter that fails (exit 2), nor an export that gave nothing of the children named (exit 1).
The error stream says, in Spanish and English, how many of the records written another agency
holds (referred or transferred to this one): imported again, they are not stored as its own.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from exchange.cli import database_errors, hub_app, language_option, print_json, say
from exchange.cli.imports import (
    EXIT_CANNOT_START,
    CannotStart,
    ReplacedAtTheEnd,
    adapter_options,
    agency_credentials,
    build_adapter,
    connected_client,
    hub_options,
    interrupted,
    interruptible,
)


def _purpose_choices() -> list[str]:
    from exchange.exporter import purposes

    return list(purposes())


@click.command("export")
@click.option("--adapter", "adapter_name", required=True, help="csv, ndjson, json, primero, fhir…")
@click.option("--mapping", help="Column mapping file, or a shipped one by name (csv adapter).")
@adapter_options
@click.option("--agency", "agency_id", required=True, help="The agency that reads.")
@click.option("--child", "child_ids", multiple=True, help="Only this child (repeatable).")
@click.option("--purpose", required=True, help="Purpose of the read (case_management, …).")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (replaced once complete).",
)
@hub_options("Read")
@click.option("--json", "as_json", is_flag=True, help="Print what was exported as one JSON object.")
@language_option
def export_command(
    adapter_name: str,
    mapping: str | None,
    adapter_settings: tuple[str, ...],
    agency_id: str,
    child_ids: tuple[str, ...],
    purpose: str,
    out_path: Path,
    hub_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    key_file: Path | None,
    as_json: bool,
    lang: str,
) -> None:
    """Export the records an agency may read, consent permitting, in an adapter's format
    (each record decided, redacted and audited as an API read) / Exportar expedientes."""
    from exchange import exporter

    if purpose not in _purpose_choices():
        raise click.BadParameter(
            say(lang, "finalidades: ", "purposes: ") + ", ".join(_purpose_choices()),
            param_hint="--purpose",
        )
    credentials = agency_credentials(agency_id, hub_url, client_id, client_secret, key_file, lang)
    adapter = build_adapter(adapter_name, mapping, adapter_settings, lang)
    counted = {"records": 0}
    held = exporter.HeldElsewhere(agency_id)
    # What the records' source raised (the database, the hub): not the adapter's failure.
    source_faults: list[Exception] = []

    def counting(documents: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            for document in documents:
                counted["records"] += 1
                yield document
        except Exception as error:
            source_faults.append(error)
            raise

    def refusals() -> contextlib.AbstractContextManager[None]:
        return adapter_refusals(lang, adapter.name, lambda: counted["records"], source_faults)

    def nothing_for_named() -> bool:
        # Children named on the command line of which nothing could be exported: no such
        # child, or none the agency may read for this purpose (which of the two is not said:
        # no oracle). The file the office has stays as it is.
        return bool(child_ids) and counted["records"] == 0

    if hub_url is not None and not child_ids:
        raise click.UsageError(
            say(
                lang,
                "con --hub indique --child (la API lee expedientes niña por niña)",
                "with --hub give --child (the API reads records child by child)",
            )
        )
    replacement = ReplacedAtTheEnd(out_path, keep=lambda: not nothing_for_named())
    children: int | None = len(child_ids) or None

    def summary_of(children: int | None, out: str | None) -> dict[str, Any]:
        return {
            "adapter": adapter.name,
            "agency": agency_id,
            "purpose": purpose,
            "mode": "api" if hub_url else "direct",
            "children": children,
            "records": counted["records"],
            "held_by_other_agencies": held.count,
            "out": out,
        }

    try:
        with interruptible(lang):
            if hub_url is not None:
                client = connected_client(hub_url, credentials, "records:read", lang)
                with refusals(), replacement as out:
                    adapter.encode(
                        counting(exporter.readable_through_api(client, purpose, child_ids, held)),
                        out,
                    )
            else:
                app = hub_app(lang, EXIT_CANNOT_START)
                # The database unreachable or empty, at the start or midway: nothing is
                # written (the file is replaced only once complete), one line, exit 2.
                with database_errors(lang, EXIT_CANNOT_START), app.app_context():
                    actor = exporter.agency_actor(app, agency_id)
                    if actor is None:
                        raise CannotStart(
                            say(
                                lang,
                                f"no existe la institución activa «{agency_id}» en este nodo",
                                f"there is no active agency '{agency_id}' on this hub",
                            )
                        )
                    chosen = list(child_ids) or exporter.children_of_agency(app, agency_id)
                    children = len(chosen)
                    with refusals(), replacement as out:
                        adapter.encode(
                            counting(exporter.readable_directly(app, actor, purpose, chosen, held)),
                            out,
                        )
    except KeyboardInterrupt:
        summary = {
            **summary_of(children, str(out_path) if replacement.replaced else None),
            "interrupted": True,
        }
        _interrupted(summary, out_path, as_json, lang)
    result = {
        **summary_of(children or 0, str(out_path) if replacement.replaced else None),
        "interrupted": False,
    }
    if held.count and replacement.replaced:
        _say_held_elsewhere(held.count, agency_id, lang)
    if as_json:
        print_json({**result, "nothing_for_named_children": nothing_for_named()})
        if nothing_for_named():
            sys.exit(1)
        return
    if nothing_for_named():
        raise click.ClickException(
            say(
                lang,
                f"no se exportó nada de {', '.join(child_ids)}: no existe en este nodo o su "
                f"institución no puede leer sus expedientes para «{purpose}»",
                f"nothing was exported of {', '.join(child_ids)}: it does not exist on this "
                f"hub or your agency may not read its records for '{purpose}'",
            )
        )
    click.echo(
        say(
            lang,
            f"Exportados {counted['records']} expedientes de {children} niñas, niños y "
            f"adolescentes → {result['out'] or '(nada que exportar)'}",
            f"Exported {counted['records']} records of {children} children → "
            f"{result['out'] or '(nothing to export)'}",
        )
    )


def _say_held_elsewhere(count: int, agency_id: str, lang: str) -> None:
    """On stderr, in both languages (``lang`` first): records written that another agency
    holds are not imported back as the agency's own."""
    spanish = (
        f"{count} de los expedientes exportados los tiene otra institución (los remitió o "
        f"transfirió a {agency_id}, o {agency_id} se los transfirió): si importa este archivo de "
        "nuevo, no se guardan como expedientes propios de su institución (el nodo los rechaza "
        "y van al archivo de rechazos)"
    )
    english = (
        f"{count} of the records exported are held by another agency (it referred or "
        f"transferred them to {agency_id}, or {agency_id} transferred them to it): imported "
        "again, this file does not store them as your agency's own (the hub refuses them and "
        "they go to the rejects file)"
    )
    for line in (spanish, english) if lang == "es" else (english, spanish):
        click.echo(line, err=True)


def _interrupted(summary: dict[str, Any], out_path: Path, as_json: bool, lang: str) -> NoReturn:
    """Ctrl-C: no file written (the output is replaced only once complete), said in both
    languages on stderr, with ``--json`` the ``summary`` so far on stdout; exit 130."""
    if as_json:
        print_json(summary)
    records = summary["records"]
    if summary["out"] is not None:  # Ctrl-C came once the file was complete
        interrupted(
            lang,
            f"exportación interrumpida (Ctrl-C) después de escribir {out_path} completo "
            f"({records} expedientes).",
            f"export interrupted (Ctrl-C) after {out_path} was written whole ({records} records).",
        )
    interrupted(
        lang,
        f"exportación interrumpida (Ctrl-C) tras leer {records} expedientes: no se escribió "
        f"ningún archivo ({out_path} queda como estaba). Ejecute el mismo comando de nuevo "
        "para exportar.",
        f"export interrupted (Ctrl-C) after reading {records} records: no file was written "
        f"({out_path} is as it was). Run the same command again to export.",
    )


@contextlib.contextmanager
def adapter_refusals(
    lang: str, adapter_name: str, records: Callable[[], int], source_faults: list[Exception]
) -> Iterator[None]:
    """An adapter that cannot write what was asked (say, FHIR R4) ends the export with its
    reason, exit 2, and no file (``ReplacedAtTheEnd`` inside it leaves none); so does one that
    raises anything else (an installed adapter's fault), said as ``puente import`` says it,
    with the ``records()`` it was handed. What the records' source raised (``source_faults``:
    the database, the hub) goes on as it was."""
    from adapters.errors import AdapterError
    from exchange.exporter import encode_failure

    try:
        yield
    except AdapterError as error:
        raise CannotStart(error.message(lang)) from None
    except Exception as error:
        if any(error is fault for fault in source_faults):
            raise
        failure = encode_failure(adapter_name, records(), error)
        raise CannotStart(say(lang, *failure)) from None
