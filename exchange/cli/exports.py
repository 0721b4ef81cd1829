"""``puente export``: the records an agency may read, in an adapter's format.

Each record is decided, redacted and audited as ``GET /v1/children/{child_id}/records`` would
(:mod:`exchange.exporter`): on the hub's machine (no ``--hub``) for every child the agency holds
or was sent a record of, or through the API with the agency's credentials, child by child.
The output file is replaced only once it is complete: Ctrl-C writes none (exit 130; SIGTERM
likewise, exit 143), nor does an adapter that fails (exit 2), nor an export that gave nothing of
the children named (exit 1). The error stream says, in Spanish and English, how many of the
records written another agency holds (referred or transferred to this one): imported again,
they are not stored as its own; and, for a format that holds only part of a record (a
spreadsheet's mapping, Primero: :func:`adapters.csv_adapter_coverage.uncarried_of`), which parts
of the records it has no place for (imported back, the file would store versions without them).
On a terminal it shows the records read so far and their rate.

``--portable`` writes a file for another hub, or another agency: without what only this hub
knows (the child ids, a referral's hub id), and without the records another agency holds
(:func:`exchange.exporter.portable_envelope`).
"""

from __future__ import annotations

import contextlib
import sys
import time
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
    signal_label,
    stopping_signal,
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
@click.option(
    "--portable",
    is_flag=True,
    help="For another hub or agency: leave out what only this hub knows (child ids, hub "
    "referral ids) and the records another agency holds.",
)
@hub_options("Read")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Records read and their rate on stderr (default: on a terminal, without --json).",
)
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
    portable: bool,
    hub_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    key_file: Path | None,
    audience: str | None,
    progress: bool | None,
    as_json: bool,
    lang: str,
) -> None:
    """Export the records an agency may read, consent permitting, in an adapter's format
    (each record decided, redacted and audited as an API read) / Exportar expedientes."""
    from adapters.csv_adapter_coverage import uncarried_of
    from exchange import exporter

    if purpose not in _purpose_choices():
        raise click.BadParameter(
            say(lang, "finalidades: ", "purposes: ") + ", ".join(_purpose_choices()),
            param_hint="--purpose",
        )
    credentials = agency_credentials(
        agency_id, hub_url, client_id, client_secret, key_file, audience, lang
    )
    adapter = build_adapter(adapter_name, mapping, adapter_settings, lang)
    counted = {"records": 0}
    held = exporter.HeldElsewhere(agency_id, portable=portable)
    # What the format has no place for, record by record (a spreadsheet's mapping, Primero;
    # None: a format that carries whole records).
    uncarried = uncarried_of(adapter)
    # What the records' source raised (the database, the hub): not the adapter's failure.
    source_faults: list[Exception] = []
    # --progress or --no-progress, else only on a terminal and without --json.
    shown = _Progress(
        lang,
        enabled=progress if progress is not None else not as_json and _is_a_terminal(sys.stderr),
    )

    def counting(documents: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            for document in documents:
                counted["records"] += 1
                shown.update(counted["records"])
                if uncarried is not None and isinstance(document.get("data"), dict):
                    uncarried.note(document["data"])
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
            "portable": portable,
            "held_by_other_agencies": held.count,
            "left_out_held_by_other_agencies": held.count if portable else 0,
            "without_columns": _without_columns(uncarried),
            "out": out,
        }

    try:
        with interruptible(lang), shown:
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
    except KeyboardInterrupt as error:
        summary = {
            **summary_of(children, str(out_path) if replacement.replaced else None),
            "interrupted": True,
        }
        _interrupted(summary, out_path, as_json, lang, stopping_signal(error))
    result = {
        **summary_of(children or 0, str(out_path) if replacement.replaced else None),
        "interrupted": False,
    }
    if held.count and portable:
        _say_left_out(held.count, agency_id, lang)
    elif held.count and replacement.replaced:
        _say_held_elsewhere(held.count, agency_id, lang)
    if uncarried is not None and uncarried.records and replacement.replaced:
        _say_both(lang, *uncarried.warning(counted["records"]))
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


def _say_both(lang: str, spanish: str, english: str) -> None:
    """On stderr, in both languages (``lang`` first)."""
    for line in (spanish, english) if lang == "es" else (english, spanish):
        click.echo(line, err=True)


def _without_columns(uncarried: Any) -> dict[str, Any] | None:
    """For ``--json``: the records with parts the format has no place for (a spreadsheet's
    mapping has no column for), and how many records hold each part (None: a format that
    carries whole records)."""
    if uncarried is None:
        return None
    return {"records": uncarried.records, "parts": dict(sorted(uncarried.parts.items()))}


def _say_left_out(count: int, agency_id: str, lang: str) -> None:
    """A portable export leaves out the records another agency holds: said on stderr."""
    _say_both(
        lang,
        f"{count} expedientes que tiene otra institución (remitidos o transferidos a "
        f"{agency_id}, o que {agency_id} transfirió) no se escribieron: con --portable se "
        "exportan solo los expedientes propios de la institución; los de otra no son suyos "
        "para llevarlos a otro nodo o institución",
        f"{count} records held by another agency (referred or transferred to {agency_id}, or "
        f"transferred away by it) were left out: --portable exports only the agency's own "
        "records; another agency's are not its to take to another hub or agency",
    )


class _Progress:
    """The records read so far and their rate, one line on stderr rewritten in place, at most
    twice a second, when ``enabled``. Used as a context manager: the line is ended at the
    end."""

    INTERVAL = 0.5

    def __init__(self, lang: str, *, enabled: bool) -> None:
        self.lang = lang
        self.enabled = enabled
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def __enter__(self) -> _Progress:
        self.started = time.monotonic()
        return self

    def update(self, records: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < self.INTERVAL:
            return
        self.last = now
        self._show(records, now)

    def _show(self, records: int, now: float) -> None:
        rate = records / max(now - self.started, 1e-9)
        text = say(
            self.lang,
            f"exportando: {records:,} expedientes leídos, {rate:,.0f}/s",
            f"exporting: {records:,} records read, {rate:,.0f}/s",
        )
        click.echo(f"\r{text}\x1b[K", err=True, nl=False)
        self.shown = True

    def __exit__(self, *exc: object) -> None:
        if self.shown:
            click.echo("", err=True)


def _is_a_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _say_held_elsewhere(count: int, agency_id: str, lang: str) -> None:
    """On stderr, in both languages (``lang`` first): records written that another agency
    holds — referred or transferred to the agency, read by it under a consent, or transferred
    away by it — are not imported back as the agency's own: the hub refuses each of them
    (:mod:`exchange.received_copies`, or as a record the agency transferred)."""
    spanish = (
        f"{count} de los expedientes exportados los tiene otra institución (remitidos o "
        f"transferidos a {agency_id}, leídos por {agency_id} con un consentimiento, o que "
        f"{agency_id} transfirió): si importa este archivo de nuevo, no se guardan como "
        "expedientes propios de su institución (el nodo los rechaza y van al archivo de "
        "rechazos), aunque el consentimiento se haya revocado"
    )
    english = (
        f"{count} of the records exported are held by another agency (referred or transferred "
        f"to {agency_id}, read by {agency_id} under a consent, or transferred away by "
        f"{agency_id}): imported again, this file does not store them as your agency's own "
        "(the hub refuses them and they go to the rejects file), even once the consent is "
        "revoked"
    )
    for line in (spanish, english) if lang == "es" else (english, spanish):
        click.echo(line, err=True)


def _interrupted(
    summary: dict[str, Any], out_path: Path, as_json: bool, lang: str, signum: int
) -> NoReturn:
    """Ctrl-C (or SIGTERM): no file written (the output is replaced only once complete), said
    in both languages on stderr, with ``--json`` the ``summary`` so far on stdout; exit 130
    (143)."""
    if as_json:
        print_json(summary)
    records = summary["records"]
    how = signal_label(signum)
    if summary["out"] is not None:  # Ctrl-C came once the file was complete
        interrupted(
            lang,
            f"exportación interrumpida ({how}) después de escribir {out_path} completo "
            f"({records} expedientes).",
            f"export interrupted ({how}) after {out_path} was written whole ({records} records).",
            signum,
        )
    interrupted(
        lang,
        f"exportación interrumpida ({how}) tras leer {records} expedientes: no se escribió "
        f"ningún archivo ({out_path} queda como estaba). Ejecute el mismo comando de nuevo "
        "para exportar.",
        f"export interrupted ({how}) after reading {records} records: no file was written "
        f"({out_path} is as it was). Run the same command again to export.",
        signum,
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
