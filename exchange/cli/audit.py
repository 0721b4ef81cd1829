"""``puente audit export``, ``puente audit witness`` and ``puente audit verify`` (and the group's
``events``, in :mod:`exchange.cli.audit_search`, which searches a verified export).

``verify`` works offline with public keys only. This module imports nothing but the standard
library, click and the pure ``audit`` package at import time (tqdm when a progress bar is
shown); ``export`` and ``witness`` load the hub (Flask, SQLAlchemy) inside the command.

Exit codes of ``verify``: 0 ok; 1 bad proof or entry (or a damaged export); 2 signature or
quorum failure (or an export with no signed checkpoint); 3 inconsistent checkpoints; 64 wrong
usage (missing file or option, including a missing ``--vkey``).

Exit codes of ``export``: 0 the export is written and complete; 1 nothing was exported (the
folder is not empty, cannot be written, or the database is unavailable), or — ``verify``'s
"bad entry" — the export is written but incomplete: entries missing from the database or not
matching their stored leaf hash, named on stderr and in ``--json`` (``"complete": false``).
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, NoReturn, TypeVar

import click

from audit import (
    AuditError,
    Checkpoint,
    ConsistencyNotProven,
    Cosignature,
    CosignatureVerifier,
    FormatError,
    InconsistentCheckpoints,
    ProofError,
    SignatureError,
    TlogProof,
    Verifier,
    open_checkpoint,
    verify_proof_file,
)
from audit.errors import in_spanish
from audit.proof_file import EntryNotProven
from audit.saved_text import UnreadableText, saved_text
from audit.verify_export import (
    BadEntry,
    ExportSummary,
    ForkedCheckpoints,
    verify_export,
    verify_kept_against,
)

if TYPE_CHECKING:  # the hub's layers are loaded only inside `export` and `witness`
    from exchange.audit_export import ExportResult

_Key = TypeVar("_Key", Verifier, CosignatureVerifier)

EXIT_OK, EXIT_BAD_ENTRY, EXIT_BAD_SIGNATURE, EXIT_INCONSISTENT, EXIT_USAGE = 0, 1, 2, 3, 64
EXIT_CODES = (
    (SignatureError, EXIT_BAD_SIGNATURE),
    (InconsistentCheckpoints, EXIT_INCONSISTENT),
    (AuditError, EXIT_BAD_ENTRY),  # EntryError, ProofError, FormatError
)
HEADLINES = {
    EXIT_BAD_ENTRY: ("FALLA: prueba o entrada incorrecta", "FAIL: bad proof or entry"),
    EXIT_BAD_SIGNATURE: ("FALLA: firma o quórum", "FAIL: signature or quorum"),
    EXIT_INCONSISTENT: (
        "FALLA: puntos de control inconsistentes",
        "FAIL: inconsistent checkpoints",
    ),
}


class UsageProblem(click.UsageError):
    exit_code = EXIT_USAGE


class _VerifyCommand(click.Command):
    """Click's own usage errors (a ``--full`` folder or a file that does not exist, a value of
    the wrong kind, an unknown option) exit 64 like Puente's: click's 2 is, for ``verify``,
    a signature failure, and a script must not read a mistyped path as the hub's fault."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            error.exit_code = EXIT_USAGE
            if "--json" not in given:
                raise
            echo_usage_failure(error.format_message())
            ctx.exit(EXIT_USAGE)


def echo_usage_failure(message: str) -> None:
    """A script that asked for JSON reads JSON, whatever went wrong: a usage failure as the
    one line a verifying verb prints with ``--json``."""
    click.echo(
        json.dumps({"ok": False, "exit_code": EXIT_USAGE, "error": message}, ensure_ascii=False)
    )


def run_verb(run: Callable[..., None], options: dict[str, Any]) -> None:
    """Run a verifying verb's body; a usage problem is JSON when ``--json`` asked for it."""
    try:
        run(**options)
    except UsageProblem as problem:
        if not options["as_json"]:
            raise
        echo_usage_failure(problem.message)
        raise SystemExit(EXIT_USAGE) from None


# Copies of exchange.cli.default_language and say: this module imports nothing of the hub at
# the top, so an oversight body's `puente audit verify` loads only the `audit` package.
def _lang_default() -> str:
    import os

    lang = os.environ.get("PUENTE_LANG") or os.environ.get("LANG", "")
    return "es" if lang.lower().startswith("es") else "en"


def verification_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every verb that verifies a log offline takes (``verify``, ``events``): the
    keys to trust, the witnesses and their quorum, the output's form and language."""
    for option in reversed(
        [
            click.option(
                "--vkey",
                "vkeys",
                multiple=True,
                help="Required: the hub's published log public key (vkey string or file), "
                "obtained independently (never the log.vkey inside the export).",
            ),
            click.option(
                "--origin", help="The log's origin line (default: any origin the key signed)."
            ),
            click.option(
                "--witness", "witness_vkeys", multiple=True, help="A witness cosigner vkey."
            ),
            click.option(
                "--quorum",
                type=int,
                default=0,
                show_default=True,
                help="Witness cosignatures required on the (latest) checkpoint.",
            ),
            click.option(
                "--json", "as_json", is_flag=True, help="Print the result as one JSON object."
            ),
            click.option(
                "--lang",
                type=click.Choice(["es", "en"]),
                default=_lang_default,
                help="Language of messages / idioma de los mensajes.",
            ),
        ]
    ):
        command = option(command)
    return command


def _say(lang: str, spanish: str, english: str) -> str:
    return spanish if lang == "es" else english


class _AuditGroup(click.Group):
    """The audit verbs. ``events`` lives in :mod:`exchange.cli.audit_search`, which builds on
    this module's helpers: it is registered here but imported when asked for, so neither
    module imports the other at load time."""

    LAZY: ClassVar[dict[str, tuple[str, str]]] = {
        "events": ("exchange.cli.audit_search", "events_command")
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            import importlib

            module, name = self.LAZY[cmd_name]
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group("audit", cls=_AuditGroup)
def audit_group() -> None:
    """Audit log: export it; verify it offline with public keys only; search an export."""


# --- export ----------------------------------------------------------------------------------


@audit_group.command("export")
@click.option(
    "--out",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the export to (created; it must be empty unless --force).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into a folder that is not empty, replacing an earlier export's files there.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option(
    "--lang",
    type=click.Choice(["es", "en"]),
    default=_lang_default,
    help="Language of messages / idioma de los mensajes.",
)
def export_command(directory: Path, force: bool, as_json: bool, lang: str) -> None:
    """Write entries.ndjson, checkpoints.ndjson, leaves.bin, log.vkey, keys.json, manifest.json.
    Exit 1 when nothing could be exported, or when the export is incomplete (entries missing
    from the database or changed there: named on stderr)."""
    from tqdm import tqdm

    from exchange.audit_export import FolderNotEmpty, export_log
    from exchange.cli import database_errors, hub_app

    app = hub_app(lang)
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="entries", disable=None, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        with database_errors(lang), app.app_context():
            result = export_log(app, directory, progress=progress, force=force)
    except FolderNotEmpty as error:  # checked before anything is sequenced or signed
        raise click.ClickException(error.message(lang)) from error
    except OSError as error:  # the folder cannot be made or written: say which, no traceback
        raise click.ClickException(
            _say(
                lang,
                f"no se puede escribir la exportación en {directory}: {error.strerror or error}",
                f"cannot write the export to {directory}: {error.strerror or error}",
            )
        ) from error
    finally:
        if bar is not None:
            bar.close()
    if not (directory / "log.vkey").exists():
        click.echo(
            _say(
                lang,
                "AVISO: falta la llave del registro de este nodo: la exportación no lleva "
                "log.vkey; verifíquela con la llave que usted fijó (y restaure la del nodo desde "
                "la copia de seguridad)",
                "WARNING: this hub's log key is missing: the export has no log.vkey; verify it "
                "with the key you pinned (and restore the hub's from the backup)",
            ),
            err=True,
        )
    if not as_json:
        _say_exported(result, directory, lang)
    _warn_of_missing_cosignatures(result, lang)
    if not result.complete:
        _say_incomplete(result, lang)
    if as_json:
        click.echo(json.dumps({"ok": result.complete, **result.to_json(lang)}, ensure_ascii=False))
    if not result.complete:
        sys.exit(EXIT_BAD_ENTRY)


def _counted(lang: str, count: int, spanish: tuple[str, str], english: tuple[str, str]) -> str:
    """``count`` with its noun, singular or plural: ``1 entry``, ``2 entries``."""
    singular, plural = spanish if lang == "es" else english
    return f"{count} {singular if count == 1 else plural}"


ENTRY_WORDS = (("entrada", "entradas"), ("entry", "entries"))
CHECKPOINT_WORDS = (("punto de control", "puntos de control"), ("checkpoint", "checkpoints"))
WITNESS_WORDS = (
    ("testigo configurado", "testigos configurados"),
    ("witness configured", "witnesses configured"),
)


def _entries_and_checkpoints(lang: str, entries: int, checkpoints: int) -> str:
    """``1 entry and 2 checkpoints`` / ``1 entrada y 2 puntos de control``."""
    return _say(lang, "{} y {}", "{} and {}").format(
        _counted(lang, entries, *ENTRY_WORDS), _counted(lang, checkpoints, *CHECKPOINT_WORDS)
    )


def _say_exported(result: ExportResult, directory: Path, lang: str) -> None:
    counts = _entries_and_checkpoints(lang, result.entries, result.checkpoints)
    latest = result.latest_checkpoint
    click.echo(
        _say(
            lang,
            f"{counts} exportados a {directory} (último punto de control: {latest})",
            f"{counts} exported to {directory} (latest checkpoint: {latest})",
        )
    )
    if result.witnesses and latest is not None:
        cosigned = [p.hub_id for p in result.witnesses if p.hub_id in result.cosigned_by]
        of = _counted(lang, len(result.witnesses), *WITNESS_WORDS)
        who = f": {', '.join(cosigned)}" if cosigned else ""
        click.echo(
            _say(
                lang,
                f"Punto de control {latest}: cofirmado por {len(cosigned)} de {of}{who}",
                f"Checkpoint {latest}: cosigned by {len(cosigned)} of {of}{who}",
            )
        )


def _warn_of_missing_cosignatures(result: ExportResult, lang: str) -> None:
    """A checkpoint exported without every configured witness's cosignature is one an
    oversight body that requires them (``verify --witness … --quorum N``) will reject: say so
    now, with each witness's answer, rather than only in the log."""
    lacking = result.missing_cosigners()
    if not lacking or result.latest_checkpoint is None:
        return
    latest = result.latest_checkpoint
    cosigned = len(result.witnesses) - len(lacking)
    of = _counted(lang, len(result.witnesses), *WITNESS_WORDS)
    click.echo(
        _say(
            lang,
            f"AVISO: el punto de control {latest} está cofirmado por solo {cosigned} de {of}: "
            "`puente audit verify --witness … --quorum N` de esta exportación fallará con N "
            f"mayor que {cosigned}. Ejecute `puente audit witness` y exporte de nuevo a otra "
            "carpeta. Sin cofirma:",
            f"WARNING: checkpoint {latest} is cosigned by only {cosigned} of {of}: "
            "`puente audit verify --witness … --quorum N` of this export will fail for any N "
            f"above {cosigned}. Run `puente audit witness`, then export again to another "
            "folder. Not cosigned by:",
        ),
        err=True,
    )
    for peer in lacking:
        said = _say(lang, *_WITNESS_OUTCOMES[peer.outcome])
        reason = f" ({peer.said(lang)})" if peer.reason else ""
        click.echo(f"  {peer.hub_id}: {said}{reason}", err=True)


def _say_incomplete(result: ExportResult, lang: str) -> None:
    """An export that ``verify --full`` will reject says so, naming the indices: written all
    the same (it shows the damage), but never reported as a success."""
    damaged = not result.missing
    click.echo(
        _say(
            lang,
            f"FALLA: la exportación está {'dañada' if damaged else 'incompleta'}: "
            "`puente audit verify --full` la rechazará (salida 1).",
            f"FAIL: the export is {'damaged' if damaged else 'incomplete'}: "
            "`puente audit verify --full` will reject it (exit 1).",
        ),
        err=True,
    )
    if result.missing:
        count = _counted(lang, result.missing.count, *ENTRY_WORDS)
        click.echo(
            _say(
                lang,
                f"  ausentes de la base de datos del nodo — {count}: {result.missing.text()}",
                f"  missing from the hub's database — {count}: {result.missing.text()}",
            ),
            err=True,
        )
    if result.mismatched:
        count = _counted(lang, result.mismatched.count, *ENTRY_WORDS)
        click.echo(
            _say(
                lang,
                "  modificadas en la base de datos (ya no coinciden con su hash de hoja "
                f"guardado) — {count}: {result.mismatched.text()}",
                "  changed in the database (they no longer match their stored leaf hash) — "
                f"{count}: {result.mismatched.text()}",
            ),
            err=True,
        )
    click.echo(
        _say(
            lang,
            "  Los archivos se escribieron para que el daño pueda examinarse; la base de datos "
            "del nodo debe investigarse.",
            "  The files were written so the damage can be examined; the hub's database must "
            "be investigated.",
        ),
        err=True,
    )


# --- witness ---------------------------------------------------------------------------------

#: What ``witness`` says of each outcome of :func:`exchange.witnessing.request_cosignatures`.
_WITNESS_OUTCOMES = {
    "cosigned": ("cofirmó el punto de control", "cosigned the checkpoint"),
    "up_to_date": ("ya lo había cofirmado", "had already cosigned it"),
    "unreachable": ("sin respuesta; se reintentará", "no answer; will be retried"),
    "refused": ("no lo cofirmó; se reintentará", "did not cosign it; will be retried"),
    "bad_cosignature": (
        "respondió una cofirma que no verifica: no se guardó",
        "answered a cosignature that does not verify: not kept",
    ),
    "behind": (
        "ya cofirmó un punto de control más reciente",
        "has already cosigned a newer checkpoint",
    ),
    "conflict": (
        "¡DICE HABER VISTO OTRO ÁRBOL DE ESTA BITÁCORA!",
        "SAYS IT SAW ANOTHER TREE OF THIS LOG!",
    ),
}


@audit_group.command("witness")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--lang",
    type=click.Choice(["es", "en"]),
    default=_lang_default,
    help="Language of messages / idioma de los mensajes.",
)
def witness_command(as_json: bool, lang: str) -> None:
    """Ask the peers' witnesses to cosign the latest checkpoint now (`puente worker` does it
    every few seconds). Exit 1 when a witness has not cosigned it."""
    from exchange.cli import database_errors, hub_app
    from exchange.witnessing import request_cosignatures

    app = hub_app(lang)
    with database_errors(lang), app.app_context():
        # A witness's refusal is asked for in the operator's language.
        run = request_cosignatures(app, language=lang)
    done = all(peer.outcome in ("cosigned", "up_to_date") for peer in run.peers)
    if as_json:
        click.echo(json.dumps({"ok": done, **run.to_json(lang)}, ensure_ascii=False))
    elif run.checkpoint_size is None:
        click.echo(
            _say(lang, "Aún no hay un punto de control firmado.", "No checkpoint signed yet.")
        )
    elif not run.peers:
        click.echo(
            _say(
                lang,
                "Ningún nodo par activo tiene llave de testigo y URL (puente peer "
                "set-witness-key HUB_ID LLAVE; puente peer set-url HUB_ID URL).",
                "No active peer has a witness key and a URL (puente peer set-witness-key "
                "HUB_ID VKEY; puente peer set-url HUB_ID URL).",
            )
        )
    else:
        click.echo(
            _say(
                lang,
                f"Punto de control {run.checkpoint_size}:",
                f"Checkpoint {run.checkpoint_size}:",
            )
        )
        for peer in run.peers:
            said = _say(lang, *_WITNESS_OUTCOMES[peer.outcome])
            reason = f" ({peer.said(lang)})" if peer.reason else ""
            click.echo(f"  {peer.hub_id}: {said}{reason}")
    if not done:
        sys.exit(1)


# --- verify ----------------------------------------------------------------------------------


@audit_group.command("verify", cls=_VerifyCommand)
@click.option(
    "--full",
    "full_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="An export folder: recompute the whole tree and check every checkpoint.",
)
@click.option(
    "--proof",
    "proof_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A .tlog-proof file: check one entry's inclusion under a signed checkpoint.",
)
@click.option(
    "--entry",
    "entry_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The entry the proof is for (default: the entry carried in the proof file).",
)
@click.option(
    "--since",
    "kept_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint you kept earlier: the log must extend it. Repeatable.",
)
@click.option(
    "--consistency",
    "consistency_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --proof and --since: a consistency proof (JSON from the hub's "
    "/v1/audit/proofs/consistency) between your checkpoint and the proof's.",
)
@verification_options
def verify_command(**options: Any) -> None:
    """Verify the audit log offline. Exit: 0 ok, 1 bad proof or entry, 2 signature or quorum,
    3 inconsistent checkpoints (64: usage)."""
    run_verb(_verify, options)


def _verify(
    full_dir: Path | None,
    proof_file: Path | None,
    entry_file: Path | None,
    kept_files: tuple[Path, ...],
    consistency_file: Path | None,
    vkeys: tuple[str, ...],
    origin: str | None,
    witness_vkeys: tuple[str, ...],
    quorum: int,
    as_json: bool,
    lang: str,
) -> None:
    if (full_dir is None) == (proof_file is None):
        raise UsageProblem(
            _say(
                lang,
                "indique exactamente uno de --full CARPETA y --proof ARCHIVO",
                "give exactly one of --full DIR and --proof FILE",
            )
        )
    verifiers, witnesses = verifier_keys(vkeys, witness_vkeys, quorum, lang)
    try:
        kept = [read_saved(path, "--since", lang) for path in kept_files]
        if full_dir is not None:
            result = _verify_full(full_dir, verifiers, origin, kept, witnesses, quorum, lang)
        else:
            assert proof_file is not None
            result = _verify_proof(
                proof_file,
                entry_file,
                verifiers,
                origin,
                kept,
                consistency_file,
                witnesses,
                quorum,
                lang,
            )
    except AuditError as error:
        fail(error, lang, as_json)
    _succeed(result, lang, as_json)


def verifier_keys(
    vkeys: Sequence[str], witness_vkeys: Sequence[str], quorum: int, lang: str
) -> tuple[list[Verifier], list[CosignatureVerifier]]:
    """The log keys (``--vkey``, at least one) and witness keys given, and a ``--quorum``
    within their number; else wrong usage (64)."""
    try:
        witnesses = [
            _key(v, "--witness", lang, CosignatureVerifier.from_vkey) for v in witness_vkeys
        ]
        verifiers = [_key(v, "--vkey", lang, Verifier.from_vkey) for v in vkeys]
    except FormatError as error:
        raise UsageProblem(
            _say(lang, f"llave no válida: {in_spanish(error)}", f"bad key: {error}")
        ) from error
    if not 0 <= quorum <= len(witnesses):
        raise UsageProblem(
            _say(
                lang,
                f"--quorum debe estar entre 0 y las {len(witnesses)} llaves --witness",
                f"--quorum must be between 0 and the {len(witnesses)} --witness keys",
            )
        )
    if not verifiers:
        # The export carries log.vkey, but a key taken from the thing checked proves nothing:
        # whoever rewrote the log could re-sign it with a key of their own.
        raise UsageProblem(
            _say(
                lang,
                "falta --vkey: indique la llave pública del registro del nodo tal como se "
                "publicó, obtenida por su cuenta (de /.well-known/puente-hub o de la copia "
                "propia del órgano de supervisión). Una llave incluida en la exportación no "
                "prueba nada.",
                "--vkey is missing: pass the hub's published log key, obtained independently "
                "(from /.well-known/puente-hub or the oversight body's own copy). A key "
                "included in the export proves nothing.",
            )
        )
    return verifiers, witnesses


def read_saved(path: Path, option: str, lang: str) -> str:
    """A saved text file given as ``option`` (a checkpoint kept, a proof), read as the hub
    wrote it whatever the editor that saved it added (:func:`audit.saved_text.saved_text`: a
    byte order mark, UTF-16, CRLF, no final newline). A file that cannot be opened is wrong
    usage (64); one that is not text is :class:`UnreadableText`, exit 1 — never a signature
    failure, which would blame the hub for a reading problem."""
    try:
        data = path.read_bytes()
    except OSError as error:
        why_es, why_en = _unreadable_because(error)
        raise UsageProblem(
            _say(
                lang,
                f"{option} {path}: no se puede leer el archivo ({why_es})",
                f"{option} {path}: the file cannot be read ({why_en})",
            )
        ) from None
    try:
        return saved_text(data)
    except UnreadableText as error:
        raise UnreadableText(
            f"{option} {path}: the file is not text that can be read: {error}",
            es=f"{option} {path}: el archivo no es texto legible: {in_spanish(error)}",
        ) from error


def _unreadable_because(error: OSError) -> tuple[str, str]:
    """Why a file could not be read, in Spanish and English."""
    if isinstance(error, IsADirectoryError):
        return "es una carpeta", "it is a folder"
    if isinstance(error, PermissionError):
        return "sin permiso de lectura", "no permission to read it"
    why = str(error.strerror or error)
    return why, why


def _verify_full(
    directory: Path,
    verifiers: Sequence[Verifier],
    origin: str | None,
    kept: Sequence[str],
    witnesses: Sequence[CosignatureVerifier],
    quorum: int,
    lang: str,
) -> dict[str, Any]:
    export = ExportFiles.at(directory, lang)
    with _ProgressBar(export.manifest.get("entries")) as progress, export.checkpoints() as cps:
        summary = verify_export(
            export.entries,
            cps,
            verifiers,
            # Not the manifest's origin: it is unsigned, and damage to it must not read as a
            # signature failure. Without --origin, the first signed checkpoint sets it.
            origin=origin,
            leaves=export.leaves,
            kept=kept,
            witnesses=witnesses,
            quorum=quorum,
            progress=progress,
        )
    return summary_json(summary, witnesses, quorum)


@dataclass(frozen=True)
class ExportFiles:
    """An export folder's files, as :func:`audit.verify_export.verify_export` reads them."""

    directory: Path
    manifest: dict[str, Any]

    @classmethod
    def at(cls, directory: Path, lang: str) -> ExportFiles:
        """The export in ``directory``; wrong usage (64) if it has no entries or checkpoints."""
        for name in ("entries.ndjson", "checkpoints.ndjson"):
            path = directory / name
            if not path.is_file():
                raise UsageProblem(
                    _say(
                        lang,
                        f"no se encontró {path}: ¿es {directory} una exportación?",
                        f"{path} not found: is {directory} an export?",
                    )
                )
        return cls(directory, _manifest(directory))

    def entries(self) -> Iterator[bytes]:
        """A fresh reading of ``entries.ndjson``, line by line."""
        return _lines(self.directory / "entries.ndjson")

    def checkpoints(self) -> BinaryIO:
        return (self.directory / "checkpoints.ndjson").open("rb")

    @property
    def leaves(self) -> Callable[[int, int], bytes] | None:
        """Reads the stored leaf hashes of entries ``[start, end)``; None without leaves.bin."""
        path = self.directory / "leaves.bin"
        if not path.is_file():
            return None

        def read_leaves(start: int, end: int) -> bytes:
            with path.open("rb") as handle:
                handle.seek(start * 32)
                return handle.read((end - start) * 32)

        return read_leaves


def _verify_proof(
    proof_file: Path,
    entry_file: Path | None,
    verifiers: Sequence[Verifier],
    origin: str | None,
    kept: Sequence[str],
    consistency_file: Path | None,
    witnesses: Sequence[CosignatureVerifier],
    quorum: int,
    lang: str,
) -> dict[str, Any]:
    text = read_saved(proof_file, "--proof", lang)
    proof = TlogProof.from_text(text)
    named_index = None
    if entry_file is not None:
        entry, named_index = _entry_bytes(entry_file.read_bytes())
    elif proof.extra is not None:
        entry = proof.extra
    else:
        raise UsageProblem(
            _say(
                lang,
                "el archivo de prueba no trae la entrada: indíquela con --entry ARCHIVO",
                "the proof file carries no entry: pass --entry FILE",
            )
        )
    try:
        verified = verify_proof_file(
            text, entry, verifiers, origin=origin, witnesses=witnesses, quorum=quorum
        )
    except EntryNotProven as error:
        why = _why_not_proven(entry, named_index, proof.index)
        if why is None:
            raise
        raise EntryNotProven(error.index, error.checkpoint, why) from error
    if named_index is not None and named_index != proof.index:
        # The entry is in the log, but not where the line that carried it said: the hub's
        # entries list and its proofs disagree, which an auditor must hear of.
        raise EntryNotProven(
            proof.index, verified.checkpoint, _index_mismatch(named_index, proof.index)
        )
    checked = []
    for kept_text in kept:
        mine = _open_kept(kept_text, verifiers, origin)
        proof_hashes = _consistency_hashes(consistency_file, mine, verified.checkpoint, lang)
        try:
            verify_kept_against(mine, verified.checkpoint, proof_hashes)
        except ConsistencyNotProven as error:
            # The consistency file is not signed: one that proves nothing is a bad proof (exit
            # 1), as a damaged stored proof is for --full, never a fork (3).
            raise _bad_consistency_file(consistency_file, error) from error
        checked.append(mine.size)
    return {
        "index": verified.index,
        "checkpoint": {
            "size": verified.checkpoint.size,
            "root": base64.b64encode(verified.checkpoint.root_hash).decode(),
        },
        "entry": entry.decode("utf-8", "replace"),
        "kept_checkpoints": checked,
        "witnesses": _witnesses_json(verified.checkpoint, verified.cosignatures, witnesses, quorum),
    }


def _bad_consistency_file(path: Path | None, error: ConsistencyNotProven) -> ProofError:
    where = f"GET /v1/audit/proofs/consistency?first={error.old.size}&second={error.new.size}"
    return ProofError(
        f"--consistency {path}: {error}. Get the proof from the hub again ({where}); if a "
        "fresh one does not verify either, the hub cannot show that its newer checkpoint "
        "extends yours: ask its operators why",
        es=f"--consistency {path}: {in_spanish(error)}. Vuelva a pedir la prueba al nodo "
        f"({where}); si una nueva tampoco verifica, el nodo no puede mostrar que su punto de "
        "control más reciente extiende el suyo: pregunte a sus operadores por qué",
    )


def _witnesses_json(
    checkpoint: Checkpoint,
    cosignatures: Sequence[Cosignature],
    witnesses: Sequence[CosignatureVerifier],
    quorum: int,
) -> dict[str, Any]:
    """Which of the witnesses given cosigned the one checkpoint whose cosignatures are
    checked (the latest of an export, a proof file's own)."""
    return {
        "checkpoint": checkpoint.size,
        "given": len(witnesses),
        "quorum": quorum,
        "cosigned_by": list(dict.fromkeys(c.name for c in cosignatures)),
    }


def _open_kept(text: str, verifiers: Sequence[Verifier], origin: str | None) -> Checkpoint:
    try:
        return open_checkpoint(text, verifiers, origin=origin)
    except SignatureError as error:
        raise SignatureError(
            f"the checkpoint you kept: {error}",
            es=f"el punto de control que usted conservó: {in_spanish(error)}",
        ) from error


def _consistency_hashes(
    path: Path | None, kept: Checkpoint, other: Checkpoint, lang: str
) -> list[bytes]:
    if kept.size == other.size or 0 in (kept.size, other.size):
        return []
    first, second = min(kept.size, other.size), max(kept.size, other.size)
    if path is None:
        where = f"GET /v1/audit/proofs/consistency?first={first}&second={second}"
        raise UsageProblem(
            _say(
                lang,
                f"su punto de control tiene tamaño {kept.size} y el de la prueba {other.size}: "
                f"indique --consistency ARCHIVO ({where})",
                f"your checkpoint has size {kept.size} and the proof's {other.size}: pass "
                f"--consistency FILE ({where})",
            )
        )
    try:
        body = json.loads(read_saved(path, "--consistency", lang))
        sizes = (body["first"], body["second"])
        hashes = [base64.b64decode(h, validate=True) for h in body["hashes"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ProofError(
            f"{path} is not a consistency proof: {error!r}",
            es=f"{path} no es una prueba de consistencia: {error!r}",
        ) from error
    if sizes != (first, second):
        raise ProofError(
            f"{path} proves sizes {sizes}, not {kept.size} and {other.size}",
            es=f"{path} prueba los tamaños {sizes}, no {kept.size} y {other.size}",
        )
    return hashes


def _entry_bytes(data: bytes) -> tuple[bytes, int | None]:
    """A canonical entry file, or one line of GET /v1/audit/entries ({index, entry}): the
    entry's bytes, and the index the line names (``None`` for an entry file)."""
    data = data.rstrip(b"\n")
    try:
        value = json.loads(data)
    except ValueError:
        return data, None
    if isinstance(value, dict) and set(value) == {"index", "entry"}:
        index = value["index"] if isinstance(value["index"], int) else None
        return str(value["entry"]).encode("utf-8"), index
    return data, None


def _index_mismatch(named_index: int, index: int) -> ProofError:
    return ProofError(
        f"--entry is entry {named_index} (its line says so), the proof is for entry {index}",
        es=f"--entry es la entrada {named_index} (así lo dice su línea), la prueba es de la "
        f"entrada {index}",
    )


def _why_not_proven(entry: bytes, named_index: int | None, index: int) -> ProofError | None:
    """What is plainly wrong with the entry given for a proof that failed, when something is:
    the root mismatch alone would send the auditor looking at the log, not at the file."""
    from audit import EntryError, parse_canonical_entry

    if named_index is not None and named_index != index:
        return _index_mismatch(named_index, index)
    if not entry.strip():
        return ProofError("the entry given is empty", es="la entrada indicada está vacía")
    try:
        parse_canonical_entry(entry)
    except EntryError as error:
        return ProofError(
            "the entry given is not in RFC 8785 canonical form, byte for byte as "
            f"GET /v1/audit/entries gives it ({error})",
            es="la entrada indicada no está en la forma canónica RFC 8785, byte por byte como "
            f"la da GET /v1/audit/entries ({in_spanish(error)})",
        )
    return None


def _manifest(directory: Path) -> dict[str, Any]:
    try:
        value = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _key(value: str, option: str, lang: str, parse: Callable[[str], _Key]) -> _Key:
    """A key given as its text (``<name>+<key ID>+<key>``) or as a file holding it; a value
    that is neither is wrong usage, said for both readings (a mistyped file name is the usual
    case: the docs keep the key in a file)."""
    if not value.strip():
        # Path("") is the current folder: "cannot be read (it is a folder)" would mislead.
        raise UsageProblem(
            _say(
                lang,
                f"{option} está vacío: indique la llave (texto o archivo)",
                f"{option} is empty: give the key (as text or a file)",
            )
        )
    path = Path(value)
    if "+" in value and not _is_file(path):
        return parse(value.strip())
    try:
        # The same reader as for kept checkpoints: a key saved with a byte order mark, in
        # UTF-16 or with a CRLF is the same key (strip() takes the line end).
        return parse(saved_text(path.read_bytes()).strip())
    except FileNotFoundError:
        try:
            return parse(value.strip())
        except FormatError as error:
            raise UsageProblem(
                _say(
                    lang,
                    f"{option} {value}: no existe ese archivo; como texto, llave no válida: "
                    f"{in_spanish(error)}",
                    f"{option} {value}: no such file; as text, bad key: {error}",
                )
            ) from None
    except (OSError, UnreadableText) as error:
        if isinstance(error, UnreadableText):
            why_es, why_en = in_spanish(error), str(error)
        else:
            why_es, why_en = _unreadable_because(error)
        raise UsageProblem(
            _say(
                lang,
                f"{option} {value}: no se puede leer el archivo ({why_es})",
                f"{option} {value}: the file cannot be read ({why_en})",
            )
        ) from None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a key text too long to be a file name
        return False


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb", buffering=1 << 20) as handle:
        yield from handle


class _ProgressBar:
    """A tqdm bar on a terminal for large logs; a no-op otherwise."""

    def __init__(self, total: Any) -> None:
        self.total = total if isinstance(total, int) else None
        self.bar: Any = None

    def __enter__(self) -> Callable[[int], None] | None:
        if self.total is None or self.total < 100_000 or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="entries", file=sys.stderr)
        return self.bar.update  # type: ignore[no-any-return]

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def summary_json(
    summary: ExportSummary, witnesses: Sequence[CosignatureVerifier], quorum: int
) -> dict[str, Any]:
    latest = summary.latest
    return {
        "entries": summary.entries,
        "checkpoints": summary.checkpoints,
        "latest_checkpoint": {
            "size": latest.size,
            "root": base64.b64encode(latest.root_hash).decode(),
        },
        "kept_checkpoints": [c.size for c in summary.kept],
        "witnesses": _witnesses_json(latest, summary.cosignatures, witnesses, quorum),
    }


def fail(error: AuditError, lang: str, as_json: bool) -> NoReturn:
    code = next(code for kind, code in EXIT_CODES if isinstance(error, kind))
    message = _say(lang, in_spanish(error), str(error))
    details: dict[str, Any] = {"ok": False, "exit_code": code, "error": message}
    if isinstance(error, BadEntry):
        details["entry_index"] = error.index
    if isinstance(error, EntryNotProven):
        details["entry_index"] = error.index
        details["checkpoint"] = checkpoint_json(error.checkpoint)
    if error.checkpoints_line is not None:  # damaged, malformed, or not signed by the key
        details["checkpoints_line"] = error.checkpoints_line
    if isinstance(error, ForkedCheckpoints):
        # The two signed tree heads, for a script to keep or compare; each with its words.
        said = ((error.first_es, error.first), (error.second_es, error.second))
        details["checkpoints"] = [
            {**checkpoint_json(checkpoint), "message": _say(lang, *words)}
            for checkpoint, words in zip(error.between, said, strict=True)
        ]
    if as_json:
        click.echo(json.dumps(details, ensure_ascii=False))
    else:
        click.echo(f"{_say(lang, *HEADLINES[code])}: {message}", err=True)
    sys.exit(code)


def checkpoint_json(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint in ``--json``: its size, origin and root hash (base64)."""
    return {
        "size": checkpoint.size,
        "origin": checkpoint.origin,
        "root": base64.b64encode(checkpoint.root_hash).decode(),
    }


def _succeed(result: dict[str, Any], lang: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": True, "exit_code": EXIT_OK, **result}, ensure_ascii=False))
        return
    if "entries" in result:
        latest = result["latest_checkpoint"]["size"]
        counts = _entries_and_checkpoints(lang, result["entries"], result["checkpoints"])
        click.echo(
            _say(
                lang,
                f"OK: {counts} verificados; último: {latest}",
                f"OK: {counts} verified; latest: {latest}",
            )
        )
    else:
        size = result["checkpoint"]["size"]
        click.echo(
            _say(
                lang,
                f"OK: la entrada {result['index']} está en el registro firmado de tamaño {size}",
                f"OK: entry {result['index']} is in the signed log of size {size}",
            )
        )
        click.echo(result["entry"])
    for size in result.get("kept_checkpoints", []):
        click.echo(
            _say(
                lang,
                f"OK: consistente con su punto de control {size}",
                f"OK: consistent with your checkpoint {size}",
            )
        )
    say_cosigners(result["witnesses"], lang)


def say_cosigners(witnesses: dict[str, Any], lang: str) -> None:
    """Which witnesses given with ``--witness`` cosigned the checkpoint checked, and that it
    is the only one whose cosignatures are checked (nothing when no witness was given)."""
    if not witnesses["given"]:
        return
    size, names = witnesses["checkpoint"], witnesses["cosigned_by"]
    given = witnesses["given"]
    who = ", ".join(names) if names else _say(lang, "ninguno", "none")
    click.echo(
        _say(
            lang,
            f"OK: testigos que cofirmaron el punto de control {size}: {len(names)} de los "
            f"{given} indicados (quórum {witnesses['quorum']}): {who}. Las cofirmas se "
            "verifican solo en ese punto de control, no en los anteriores.",
            f"OK: witnesses that cosigned checkpoint {size}: {len(names)} of the {given} given "
            f"(quorum {witnesses['quorum']}): {who}. Cosignatures are checked on that "
            "checkpoint only, not on earlier ones.",
        )
    )
