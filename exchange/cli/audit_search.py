"""``puente audit events``: a child's history (or any filter) from a verified export, offline.

``GET /v1/audit/events`` is a convenience over the hub's database: it filters on copies of the
child, action and actor kept beside each entry, which no signature covers, so an operator who
edits a copy hides that entry from it while the log still verifies. This verb answers from an
export instead, with the hub's public key only: it verifies the export as ``verify --full``
does (and searches nothing in one that does not verify), follows the signed ``child_merged``
entries to the children merged into the one asked about, and prints the matching entries, by
index, exactly as the log signed them (:mod:`audit.search_export`).

Exit codes are ``verify``'s: 0 the export verifies (whether or not anything matched); 1, 2, 3
it does not (nothing searched); 64 wrong usage. Like ``verify``, it imports only the standard
library, click and the ``audit`` package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from audit import AuditError
from audit.search_export import (
    AUDIT_ACTIONS,
    OUTCOMES,
    EventQuery,
    SearchResult,
    parse_time,
    search_export,
)
from exchange.cli.audit import (
    EXIT_OK,
    ExportFiles,
    UsageProblem,
    _ProgressBar,
    _say,
    _VerifyCommand,
    fail,
    read_saved,
    run_verb,
    say_cosigners,
    summary_json,
    verification_options,
    verifier_keys,
)


@click.command("events", cls=_VerifyCommand)
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="EXPORT"
)
@click.option("--child-id", help="Entries about this child and every child merged into it.")
@click.option("--action", help="An action code of audit-event/1 (record_read or record.read).")
@click.option("--actor", help="An agency id or a person id.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="success, denied or failure.")
@click.option(
    "--since",
    "since_text",
    metavar="TIME",
    help="Entries at or after this RFC 3339 time (2026-11-24T10:00:00Z), inclusive.",
)
@click.option(
    "--until",
    "until_text",
    metavar="TIME",
    help="Entries before this RFC 3339 time, exclusive.",
)
@click.option(
    "--kept",
    "kept_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint you kept earlier: the export must extend it (verify's --since). "
    "Repeatable.",
)
@verification_options
def events_command(**options: Any) -> None:
    """Search an export offline, from the signed entries only, after verifying it as
    `verify --full` does: a child's whole history (--child-id, merged children included), or
    entries by action, actor, outcome and time. Exit: 0 verified (matches or not); 1, 2, 3 as
    `verify` (nothing searched); 64 usage."""
    run_verb(_events, options)


def _events(
    directory: Path,
    child_id: str | None,
    action: str | None,
    actor: str | None,
    outcome: str | None,
    since_text: str | None,
    until_text: str | None,
    kept_files: tuple[Path, ...],
    vkeys: tuple[str, ...],
    origin: str | None,
    witness_vkeys: tuple[str, ...],
    quorum: int,
    as_json: bool,
    lang: str,
) -> None:
    query = EventQuery(
        child_id=child_id,
        action=_action(action, lang),
        actor=actor,
        outcome=outcome,
        since=_time(since_text, "--since", lang),
        until=_time(until_text, "--until", lang),
    )
    if query.since is not None and query.until is not None and query.until < query.since:
        raise UsageProblem(
            _say(
                lang,
                f"--until debe ser igual o posterior a --since ({since_text})",
                f"--until must not be before --since ({since_text})",
            )
        )
    verifiers, witnesses = verifier_keys(vkeys, witness_vkeys, quorum, lang)
    export = ExportFiles.at(directory, lang)
    try:
        kept = [read_saved(path, "--kept", lang) for path in kept_files]
        with _ProgressBar(export.manifest.get("entries")) as progress, export.checkpoints() as cps:
            result = search_export(
                export.entries,
                cps,
                verifiers,
                query,
                origin=origin,
                leaves=export.leaves,
                kept=kept,
                witnesses=witnesses,
                quorum=quorum,
                progress=progress,
            )
    except AuditError as error:
        if not as_json:
            click.echo(
                _say(
                    lang,
                    "La exportación no verifica: no se buscó nada en ella.",
                    "The export does not verify: nothing was searched in it.",
                ),
                err=True,
            )
        fail(error, lang, as_json)
    verified = summary_json(result.summary, witnesses, quorum)
    if as_json:
        click.echo(json.dumps(_as_json(result, query, verified), ensure_ascii=False))
        return
    _say_found(result, verified, lang)


def _action(text: str | None, lang: str) -> str | None:
    """The schema code of an action given as such or dotted (``record.read``); an unknown one
    is wrong usage listing the codes (it would otherwise match nothing, and read as "nothing
    happened")."""
    if text is None:
        return None
    code = text.replace(".", "_")
    if code not in AUDIT_ACTIONS:
        codes = ", ".join(AUDIT_ACTIONS)
        raise UsageProblem(
            _say(
                lang,
                f"--action {text}: acción desconocida; las del esquema audit-event/1 son: {codes}",
                f"--action {text}: unknown action; those of schema audit-event/1 are: {codes}",
            )
        )
    return code


def _time(text: str | None, option: str, lang: str) -> Any:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise UsageProblem(
            _say(
                lang,
                f"{option} {text}: debe ser fecha y hora RFC 3339 con zona (2026-11-24T10:00:00Z)",
                f"{option} {text}: must be an RFC 3339 date-time with offset "
                "(2026-11-24T10:00:00Z)",
            )
        ) from None


def _as_json(result: SearchResult, query: EventQuery, verified: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"ok": True, "exit_code": EXIT_OK, **verified}
    if result.child_ids is not None:
        answer["child_ids"] = list(result.child_ids)
        answer["merges"] = [
            {"index": m.index, "into": m.into, "merged": m.merged} for m in result.merges
        ]
    answer["filters"] = {
        "child_id": query.child_id,
        "action": query.action,
        "actor": query.actor,
        "outcome": query.outcome,
        "since": None if query.since is None else query.since.isoformat(),
        "until": None if query.until is None else query.until.isoformat(),
    }
    answer["count"] = len(result.events)
    # Each entry as the text the log signed, as GET /v1/audit/entries gives it: a line that
    # `puente audit verify --proof … --entry` takes.
    answer["events"] = [
        {"index": found.index, "entry": found.entry.decode("utf-8", "replace")}
        for found in result.events
    ]
    answer["unreadable_indices"] = list(result.unreadable)
    return answer


def _say_found(result: SearchResult, verified: dict[str, Any], lang: str) -> None:
    summary = result.summary
    latest = summary.latest.size
    click.echo(
        _say(
            lang,
            f"OK: exportación verificada: {summary.entries} entradas firmadas con la llave del "
            f"nodo (último punto de control: {latest}); se buscó solo en ellas.",
            f"OK: export verified: {summary.entries} entries signed with the hub's key "
            f"(latest checkpoint: {latest}); only they were searched.",
        )
    )
    say_cosigners(verified["witnesses"], lang)
    if result.child_ids is not None:
        ids = ", ".join(result.child_ids)
        click.echo(_say(lang, f"Identificadores buscados: {ids}", f"Ids searched: {ids}"))
        for merge in result.merges:
            click.echo(
                _say(
                    lang,
                    f"  {merge.merged} se fusionó en {merge.into} (entrada {merge.index})",
                    f"  {merge.merged} was merged into {merge.into} (entry {merge.index})",
                )
            )
    count = len(result.events)
    click.echo(
        _say(
            lang,
            f"{count} {'entrada coincide' if count == 1 else 'entradas coinciden'}:",
            f"{count} {'entry matches' if count == 1 else 'entries match'}:",
        )
    )
    for found in result.events:
        click.echo(f"{found.index} {found.entry.decode('utf-8', 'replace')}")
    if result.unreadable:
        shown = ", ".join(str(i) for i in result.unreadable[:20])
        click.echo(
            _say(
                lang,
                f"AVISO: {len(result.unreadable)} entradas firmadas no se pudieron leer como "
                f"eventos de auditoría y no se buscó en ellas: {shown}",
                f"WARNING: {len(result.unreadable)} signed entries could not be read as audit "
                f"events and were not searched: {shown}",
            ),
            err=True,
        )
