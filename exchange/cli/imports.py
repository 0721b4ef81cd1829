"""``puente import``: an office's own files into the hub (``puente export``, the other way, is
in :mod:`exchange.cli.exports` and shares the helpers here).

``puente import --adapter csv --mapping dif.yaml expedientes.csv --agency mx.chp.dif`` reads
the file through the adapter as a stream, stores the good records and writes the others,
with the reasons, to a rejects file in the original format (``expedientes-rejects.csv``),
which the office fixes and imports again. Two ways to reach the hub:

- ``--hub URL`` with the agency's credentials (``--client-secret`` or ``PUENTE_CLIENT_SECRET``,
  or ``--key`` for ``private_key_jwt``): through the API, as the agency's system would, anywhere;
- no ``--hub``: on the hub's machine, straight into its database (``PUENTE_INSTANCE_PATH``,
  ``PUENTE_DATABASE_URL``) through the same push service the API uses, for an administrator.

``--key`` also signs every record (for agencies that must sign their pushes).

Exit codes: 0 every record stored (or already there, unchanged); 1 some were rejected (see the
rejects file), the file has a problem of its own, or it holds no records; 2 nothing was
imported because the command could not start (wrong options, unknown adapter or agency, a
mapping file or credentials refused, the hub unreachable, a file the adapter cannot read at
all — then no rejects file is written), or the adapter raised or yielded what is not an
``adapters.base.Item`` (reported with the position it reached; what it read before is stored
and its rejects written); 130 interrupted (Ctrl-C), 143 stopped by SIGTERM (``kill``, a service
manager), handled alike: the batches stored stay stored, no rejects file is written, and the
same command run again goes on where it stopped (what is stored answers ``unchanged``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import click

try:
    import fcntl
except ImportError:  # not POSIX: leftovers of a killed run are not swept
    fcntl = None  # type: ignore[assignment]

from exchange.cli import database_errors, hub_app, language_option, print_json, say

F = TypeVar("F", bound=Callable[..., Any])

EXIT_REJECTED = 1
EXIT_CANNOT_START = 2
#: Ctrl-C: 128 + SIGINT, as a shell reports a command the signal ended.
EXIT_INTERRUPTED = 128 + signal.SIGINT
#: The signals that stop a command as Ctrl-C does: SIGINT (Ctrl-C) and SIGTERM (``kill``, a
#: service manager stopping it). Exit code 128 + the signal's number.
STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A command stopped by the signal ``signum`` (:class:`Interruption`)."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum


def stopping_signal(error: BaseException) -> int:
    """The signal that stopped a command: a ``KeyboardInterrupt`` raised by Python itself
    (no handler of ours) is Ctrl-C."""
    return int(getattr(error, "signum", signal.SIGINT))


def signal_label(signum: int) -> str:
    """How a message names the signal: ``Ctrl-C``, or ``SIGTERM``."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class CannotStart(click.ClickException):
    """Nothing was imported or exported: the command could not start."""

    exit_code = EXIT_CANNOT_START


def build_adapter(name: str, mapping: str | None, options: tuple[str, ...], lang: str) -> Any:
    """The adapter, built with ``--mapping`` and every ``--option KEY=VALUE`` (for example
    ``--option version=R4`` for fhir)."""
    from adapters import registry
    from schemas.errors import BilingualError

    settings: dict[str, Any] = {"mapping": mapping} if mapping else {}
    for option in options:
        key, equals, value = option.partition("=")
        if not equals or not key.strip().isidentifier():
            raise click.BadParameter(
                say(lang, f"se esperaba CLAVE=VALOR: {option}", f"expected KEY=VALUE: {option}"),
                param_hint="--option",
            )
        settings[key.strip()] = value
    try:
        return registry.get(name, **settings)
    except BilingualError as error:  # adapter errors, and a mapping naming an unknown schema
        raise CannotStart(error.message(lang)) from error


def hub_options(verb: str, key_use: str = "") -> Callable[[F], F]:
    """``--hub URL`` with the agency's credentials (``--client-id``, ``--client-secret`` or
    ``--key``): the same for ``import`` and ``export``."""
    options = [
        click.option(
            "--hub", "hub_url", help=f"{verb} through this hub's API (else: this hub's database)."
        ),
        click.option("--client-id", help="The agency's OAuth client id (its agency id)."),
        click.option(
            "--client-secret",
            envvar="PUENTE_CLIENT_SECRET",
            help="The agency's client secret (or PUENTE_CLIENT_SECRET).",
        ),
        click.option(
            "--key",
            "key_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="The agency's private key: private_key_jwt with --hub"
            + (f", {key_use}." if key_use else "."),
        ),
        click.option(
            "--audience",
            metavar="URL",
            help="With --key: the hub's token endpoint (its PUBLIC_URL + /oauth/token) when "
            "--hub reaches it at another address (a proxy, an internal address).",
        ),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


adapter_options = click.option(
    "--option",
    "adapter_settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="An adapter setting, e.g. version=R4 or bundle_type=transaction (fhir).",
)


def agency_credentials(
    agency_id: str,
    hub_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    key_file: Path | None,
    audience: str | None,
    lang: str,
) -> Any:
    """The agency's credentials for ``--hub`` (None without it), after checking the options."""
    from exchange.hub_client import Credentials

    if client_id is not None and client_id != agency_id:
        raise click.UsageError(
            say(
                lang,
                "--client-id es el identificador de la institución: debe ser igual a --agency",
                "--client-id is the agency's id: it must equal --agency",
            )
        )
    if audience is not None and (hub_url is None or key_file is None or not _is_http_url(audience)):
        raise click.UsageError(
            say(
                lang,
                "--audience va con --hub y --key, y es una URL http(s): el punto de tokens del "
                "nodo",
                "--audience goes with --hub and --key, and is an http(s) URL: the hub's token "
                "endpoint",
            )
        )
    if hub_url is None:
        if client_secret is not None and not _from_environment("client_secret"):
            raise click.UsageError(
                say(lang, "--client-secret va con --hub", "--client-secret goes with --hub")
            )
        return None  # PUENTE_CLIENT_SECRET, exported for --hub runs, is not needed here
    if not _is_http_url(hub_url):
        raise click.UsageError(
            say(
                lang,
                f"--hub no es una URL http(s): {hub_url}",
                f"--hub is no http(s) URL: {hub_url}",
            )
        )
    if client_secret is None and key_file is None:
        # All three ways, the environment variable first: it keeps the secret out of the
        # shell's history, which is how docs/adapters.md §3 has it done.
        raise click.UsageError(
            say(
                lang,
                "con --hub, la institución se identifica: exporte PUENTE_CLIENT_SECRET (su "
                "secreto de cliente), o indique --client-secret o --key (su clave privada)",
                "with --hub the agency authenticates: export PUENTE_CLIENT_SECRET (its client "
                "secret), or give --client-secret or --key (its private key)",
            )
        )
    return Credentials(
        agency_id,
        client_secret=client_secret,
        private_key=_private_key(key_file),
        audience=audience,
    )


def _is_http_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _from_environment(parameter: str) -> bool:
    """Whether the current command's ``parameter`` came from an environment variable."""
    context = click.get_current_context(silent=True)
    if context is None:
        return False
    return context.get_parameter_source(parameter) is click.core.ParameterSource.ENVIRONMENT


def _private_key(key_file: Path | None) -> Any:
    if key_file is None:
        return None
    from exchange.agency_keys import load_private_key

    try:
        return load_private_key(key_file)
    except (OSError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--key") from error


def connected_client(hub_url: str, credentials: Any, scope: str, lang: str) -> Any:
    """A client of the hub that already holds a token (so bad credentials stop us at once)."""
    from exchange import hub_client

    client = hub_client.HubClient(
        hub_url, credentials, scope=scope, send=hub_client.default_send(), lang=lang
    )
    try:
        client.token()
    except hub_client.HubError as error:
        raise CannotStart(error.message(lang)) from error
    return client


def default_rejects_path(file: Path, adapter: Any) -> Path:
    """``expedientes.csv`` → ``expedientes-rejects.csv``; a rejects file imported again keeps
    its name (it is replaced only once the import is over)."""
    from adapters.base import RejectsWriter

    suffix = file.suffix if isinstance(adapter, RejectsWriter) else ".ndjson"
    stem = file.stem.removesuffix("-rejects")
    return file.with_name(f"{stem}-rejects{suffix}")


class ReplacedAtTheEnd:
    """A temporary file next to ``path`` that becomes ``path`` if anything was written (and
    ``keep()`` agrees), so a file being imported can also be the rejects file, and a failed
    run leaves no half file. After the block, :attr:`replaced` says whether ``path`` was
    written.

    A run killed outright (``kill -9``, a power cut) cannot remove its temporary file
    (``.expedientes-rejects.csv.k365ke88``): the next run for the same ``path`` does
    (:func:`sweep_leftovers`). A run holds a lock on its own temporary file while it lasts, so
    that one running alongside is never taken for a leftover."""

    def __init__(self, path: Path, keep: Callable[[], bool] = lambda: True) -> None:
        self.path = path
        self.keep = keep
        self.replaced = False
        self._handle: Any = None

    def __enter__(self) -> IO[bytes]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sweep_leftovers(self.path)
        self._handle = tempfile.NamedTemporaryFile(
            dir=self.path.parent, prefix=_temporary_prefix(self.path), delete=False
        )
        _hold(self._handle)
        return self._handle  # type: ignore[no-any-return]

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        handle = self._handle
        try:
            written = handle.tell() > 0
            handle.close()
            if kind is None and written and self.keep():
                os.replace(handle.name, self.path)
                self.replaced = True
        finally:
            Path(handle.name).unlink(missing_ok=True)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


#: The random part :mod:`tempfile` gives a temporary file's name.
_TEMPORARY_SUFFIX = re.compile(r"[a-z0-9_]{8}")


#: Seconds a temporary file must be older than the run sweeping: one just made by a run
#: starting alongside may not be locked yet, nor one just written and closed replaced yet.
LEFTOVER_AGE = 2.0


def sweep_leftovers(path: Path) -> list[Path]:
    """Remove the temporary files earlier runs for ``path`` left beside it when they were
    killed outright: older than this run, and held by no run under way (:func:`_hold`);
    returns them. Where there are no such locks (not POSIX), nothing is removed."""
    if fcntl is None:
        return []
    prefix = _temporary_prefix(path)
    before = time.time() - LEFTOVER_AGE
    try:
        names = [
            each
            for each in path.parent.iterdir()
            if each.name.startswith(prefix)
            and _TEMPORARY_SUFFIX.fullmatch(each.name[len(prefix) :])
        ]
    except OSError:
        return []
    swept = []
    for leftover in names:
        with contextlib.suppress(OSError):
            found = leftover.lstat()
            if not stat.S_ISREG(found.st_mode) or found.st_mtime >= before:
                continue
            with open(leftover, "rb") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a run under way holds it
                leftover.unlink()
                swept.append(leftover)
    return swept


def _hold(handle: IO[bytes]) -> None:
    """Lock the run's temporary file until it is closed: :func:`sweep_leftovers` leaves it."""
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _progress(stream: IO[bytes], enabled: bool | None, lang: str) -> Any:
    """A progress bar on stderr over the bytes of the input (so it has an ETA), with records
    and records per second beside it; off when stderr is not a terminal unless asked."""
    from tqdm import tqdm

    size = os.fstat(stream.fileno()).st_size
    return tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=say(lang, "importando", "importing"),
        file=sys.stderr,
        disable=None if enabled is None else not enabled,
        mininterval=0.5,
        dynamic_ncols=True,
    )


def _bar_updater(
    bar: Any,
    position: Callable[[], int],
    started: float,
    lang: str,
    after_batch: Callable[[], None] = lambda: None,
) -> Callable[[Any], None]:
    """``position()``: how far into the file the items handed to the engine reach (the
    decoding process reads ahead of them). ``after_batch()`` once each batch is counted."""
    unit = say(lang, "registros", "records")

    def update(summary: Any) -> None:
        after_batch()
        if bar.disable:
            return
        bar.update(min(position(), bar.total) - bar.n)
        rate = summary.read / max(time.monotonic() - started, 1e-9)
        bar.set_postfix_str(f"{summary.read} {unit}, {rate:,.0f}/s", refresh=False)

    return update


def _said_beside(bar: Any, lang: str, *, quiet: bool) -> Callable[[str, str], None]:
    """Says a line in both languages (``lang`` first) on stderr, above the progress bar when
    there is one: that the import is waiting for the hub, say, so nobody takes it for hung.
    ``quiet`` (``--json``): only beside a progress bar, as stderr stays otherwise silent for
    a script."""

    def said(spanish: str, english: str) -> None:
        for line in (spanish, english) if lang == "es" else (english, spanish):
            if not bar.disable:
                bar.write(line, file=sys.stderr)
            elif not quiet:
                click.echo(line, err=True)

    return said


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--adapter", "adapter_name", required=True, help="csv, ndjson, json, primero, fhir…")
@click.option(
    "--mapping",
    help="Column mapping file, or a shipped one by name (dif-estatal), for the csv adapter.",
)
@adapter_options
@click.option("--agency", "agency_id", required=True, help="The agency the records belong to.")
@hub_options("Import", "and signs every record")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rejects file (default: FILE-rejects.EXT next to FILE).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Records per push; 1 pushes each alone under its Idempotency-Key.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@language_option
def import_command(
    file: Path,
    adapter_name: str,
    mapping: str | None,
    adapter_settings: tuple[str, ...],
    agency_id: str,
    hub_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    key_file: Path | None,
    audience: str | None,
    rejects_path: Path | None,
    batch: int,
    progress: bool | None,
    as_json: bool,
    lang: str,
) -> None:
    """Import an office's file: store the good records, write the others to a rejects file
    in the original format with the reasons / Importar un archivo de la institución."""
    from exchange.import_sinks import ApiSink, DirectSink, ImportRefused, RecordSigner
    from exchange.importer import ImportSummary, plural

    credentials = agency_credentials(
        agency_id, hub_url, client_id, client_secret, key_file, audience, lang
    )
    adapter = build_adapter(adapter_name, mapping, adapter_settings, lang)
    key = credentials.private_key if credentials is not None else _private_key(key_file)
    signer = RecordSigner(key) if key is not None else None
    rejects = rejects_path or default_rejects_path(file, adapter)
    summary = ImportSummary(adapter.name, str(file), agency_id, "api" if hub_url else "direct")
    started = time.monotonic()
    try:
        with interruptible(lang) as interruption:

            def run(stream: IO[bytes], items: Any, sink: Any) -> None:
                # A batch is stored and counted whole before Ctrl-C stops the import.
                sink = interruption.counted_whole(sink)
                _run(
                    adapter, stream, items, sink, summary, batch, rejects, progress, lang,
                    interruption.settled, as_json,
                )  # fmt: skip

            if hub_url is not None:
                client = connected_client(hub_url, credentials, "records:write", lang)
                sink = ApiSink(client, signer=signer, keyed=batch == 1)
                with _decoding(adapter, file) as (stream, items):
                    run(stream, items, sink)
            else:
                # The file is decoded alongside (exchange.decode_process), by a process forked
                # before the hub's app and database exist: it holds neither.
                with _decoding(adapter, file) as (stream, items):
                    app = hub_app(lang, EXIT_CANNOT_START)
                    with app.app_context():
                        # The database unreachable or empty: nothing imported, one line, exit
                        # 2. (Once running, the sink reports a database that goes away as the
                        # hub not answering.)
                        try:
                            with database_errors(lang, EXIT_CANNOT_START):
                                direct = DirectSink(app, agency_id, signer=signer, keyed=batch == 1)
                        except ImportRefused as error:
                            raise CannotStart(error.message(lang)) from error
                        try:
                            run(stream, items, direct)
                        finally:
                            direct.close()
    except KeyboardInterrupt as error:
        # Ctrl-C or SIGTERM: every batch stored stays (and is counted), the decoding process
        # is stopped and no rejects file was written, as the exception went through their
        # blocks. Said, instead of click's "Aborted!" (or, for SIGTERM, nothing at all).
        summary.seconds = time.monotonic() - started
        if as_json:
            print_json({**summary.to_json(), "interrupted": True})
        stored, already, older = (
            summary.stored,
            summary.unchanged + summary.replayed,
            summary.older_versions,
        )
        signum = stopping_signal(error)
        how = signal_label(signum)
        interrupted(
            lang,
            f"importación interrumpida ({how}): {stored} "
            + plural(stored, "registro guardado", "registros guardados")
            + " hasta ahora"
            + (
                f" ({already} ya "
                + plural(already, "estaba guardado", "estaban guardados")
                + ", sin cambios)"
                if already
                else ""
            )
            + (
                f" ({older} "
                + plural(older, "igual", "iguales")
                + " a una versión anterior, no "
                + plural(older, "aplicado", "aplicados")
                + ")"
                if older
                else ""
            )
            + "; lo guardado queda guardado y no se escribió el archivo de rechazos. Para "
            "continuar, ejecute el mismo comando de nuevo: los registros ya guardados "
            "responden «unchanged» (sin cambios) y nada se guarda dos veces.",
            f"import interrupted ({how}): {stored} "
            + plural(stored, "record", "records")
            + " stored so far"
            + (
                f" ({already} " + plural(already, "was", "were") + " already there, unchanged)"
                if already
                else ""
            )
            + (f" ({older} equal to an older version, not applied)" if older else "")
            + "; what is stored stays stored, and no rejects file was written. To resume, "
            "run the same command again: records already stored answer 'unchanged' and "
            "nothing is stored twice.",
            signum,
        )
    if as_json:
        print_json({**summary.to_json(), "interrupted": False})
    else:
        # The rejected rows first: the counts and the rejects file end the report.
        for line in summary.rejected_lines(lang) + summary.lines(lang):
            click.echo(line)
    sys.exit(exit_code(summary))


class Interruption:
    """Ctrl-C or SIGTERM while a command runs (its handler of both, see
    :func:`interruptible`): it stops the command at once (:class:`Stopped`, a
    ``KeyboardInterrupt``), except while a batch of an import is being stored and counted —
    then once that batch is counted, so that what the summary says was stored is what was
    stored; a second signal does not wait. Once stopping, both are ignored, so that stopping
    (the decoding process, the batch under way rolled back, the temporary rejects or export
    file removed) is never cut short."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.storing = False
        self.requested = False
        self.signum: int = signal.SIGINT

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.storing and not self.requested:
            self.requested = True
            self.signum = signum
            how = signal_label(signum)
            _notice(
                say(
                    self.lang,
                    f"deteniendo al terminar el lote en curso ({how} otra vez: ya)",
                    f"stopping once the batch under way is stored ({how} again: now)",
                )
            )
            return
        if not self.requested:
            self.signum = signum
        self.stop()

    def stop(self) -> NoReturn:
        for each in STOPPING_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Stopped(self.signum)

    def settled(self) -> None:
        """A batch is stored and counted (or failed): a Ctrl-C that waited for it stops now."""
        self.storing = False
        if self.requested:
            self.stop()

    def counted_whole(self, sink: Any) -> Any:
        """``sink``, whose pushes hold Ctrl-C back until :meth:`settled`."""
        return _HeldWhileStoring(sink, self)


class _HeldWhileStoring:
    def __init__(self, sink: Any, interruption: Interruption) -> None:
        self.sink = sink
        self.interruption = interruption

    def push(self, documents: list[Any]) -> list[Any]:
        from exchange.hub_client import HubError

        self.interruption.storing = True
        try:
            return self.sink.push(documents)  # type: ignore[no-any-return]
        except HubError:
            # Not stored (or not known to be): Ctrl-C need not wait for the tries again.
            self.interruption.settled()
            raise


def _notice(text: str) -> None:
    """One line straight to stderr's descriptor (from a signal handler: no buffer of
    Python's is touched, whatever it was writing)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.write(sys.stderr.fileno(), f"\n{text}\n".encode())


@contextlib.contextmanager
def interruptible(lang: str) -> Iterator[Interruption]:
    """The block with :class:`Interruption` as its SIGINT and SIGTERM handler (in the main
    thread only: elsewhere there are no signals, and both stay as they were)."""
    interruption = Interruption(lang)
    if threading.current_thread() is not threading.main_thread():
        yield interruption
        return
    previous = {each: signal.signal(each, interruption) for each in STOPPING_SIGNALS}
    try:
        yield interruption
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def interrupted(lang: str, spanish: str, english: str, signum: int = signal.SIGINT) -> NoReturn:
    """An interruption said in both languages (``lang`` first) on stderr; exit 128 + the
    signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    first, second = (spanish, english) if lang == "es" else (english, spanish)
    click.echo(first, err=True)
    click.echo(second, err=True)
    sys.exit(128 + signum)


def exit_code(summary: Any) -> int:
    """2 when nothing could be read (or the adapter failed), 1 when something was rejected
    or the file has problems or holds no records, else 0."""
    if summary.adapter_failure or summary.unreadable:
        return EXIT_CANNOT_START
    if summary.rejected or summary.file_problems or summary.empty:
        return EXIT_REJECTED
    return 0


@contextlib.contextmanager
def _decoding(adapter: Any, file: Path) -> Iterator[tuple[IO[bytes], Any]]:
    """The open file, and its items as the adapter decodes them (in a second process when
    the adapter allows: :class:`exchange.decode_process.Decoding`)."""
    from exchange.decode_process import Decoding

    global _FORKING_DECODER
    with open(file, "rb") as stream, contextlib.ExitStack() as stack:
        # The decoding process ignores Ctrl-C (this process stops it), from its first line:
        # Ctrl-C waits while it is forked, so that it never reaches it before. SIGTERM waits
        # too, and the decoding process ends on it as a process does (this process ends it
        # so when it stops): it does not take over this process's handler.
        with _sigint_held():
            _FORKING_DECODER = True
            try:
                items = stack.enter_context(Decoding(adapter, stream))
            finally:
                _FORKING_DECODER = False
        yield stream, items


#: Set while :func:`_decoding` forks the decoding process (see :func:`_after_fork_in_child`).
_FORKING_DECODER = False


def _after_fork_in_child() -> None:
    """In the decoding process, just forked: SIGTERM ends it, as it ends any process (the
    importing process stops it with SIGTERM), instead of running the importing process's
    :class:`Interruption`, and is no longer held back."""
    global _FORKING_DECODER
    if not _FORKING_DECODER:
        return
    _FORKING_DECODER = False
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back in this thread (and in what it forks or starts) for the
    block, then delivered."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOPPING_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _run(
    adapter: Any,
    stream: IO[bytes],
    items: Any,
    sink: Any,
    summary: Any,
    batch: int,
    rejects: Path,
    progress: bool | None,
    lang: str,
    after_batch: Callable[[], None],
    as_json: bool = False,
) -> None:
    # What is loaded by now (the hub, the schemas, the adapter's mapping) lives until the end;
    # keeping it out of the collector's scans saves about a tenth of the import's CPU, since
    # every row allocates many short-lived objects and so triggers many collections.
    gc.freeze()
    try:
        _read_and_push(
            adapter, stream, items, sink, summary, batch, rejects, progress, lang, after_batch,
            as_json,
        )  # fmt: skip
    finally:
        gc.unfreeze()


def _read_and_push(
    adapter: Any,
    stream: IO[bytes],
    items: Any,
    sink: Any,
    summary: Any,
    batch: int,
    rejects: Path,
    progress: bool | None,
    lang: str,
    after_batch: Callable[[], None],
    as_json: bool = False,
) -> None:
    from exchange.importer import Patience, pushed_and_rejected, write_rejects

    started = time.monotonic()
    # A file the adapter could not read at all leaves no rejects file: it would only repeat
    # the reason, in the adapter's format, perhaps over a rejects file the office is fixing.
    # Nor does a writer that raised: what it left may be half a file.
    writer_raised = False
    replacement = ReplacedAtTheEnd(
        rejects, keep=lambda: not summary.unreadable and not writer_raised
    )
    with _progress(stream, progress, lang) as bar:
        with replacement as out:
            # The engine runs inside the writer (it reads the rejects as they come): what the
            # engine raises, Puente's own code, must not pass for the writer's failure.
            rejected = _EngineRaised(
                pushed_and_rejected(
                    _failure_recorded(items, summary),
                    sink,
                    summary,
                    batch=batch,
                    progress=_bar_updater(bar, items.bytes_read, started, lang, after_batch),
                    patience=Patience(waiting=_said_beside(bar, lang, quiet=as_json)),
                )
            )
            try:
                # What the writer left unread: a writer that stopped reading early.
                left = write_rejects(adapter, rejected, out, summary)
            except Exception as error:  # noqa: BLE001 (an installed adapter's writer)
                rejected.reraise()
                writer_raised = True
                summary.adapter_failure = _writer_failure(adapter.name, summary, error)
            else:
                rejected.reraise()  # even if the writer caught it
                if left:
                    summary.adapter_failure = _writer_failure(
                        adapter.name, summary, f"{left} rejected items were not written"
                    )
        bar.update(bar.total - bar.n)
    summary.seconds = time.monotonic() - started
    if replacement.replaced:
        summary.rejects_file = str(rejects)


class _EngineRaised:
    """The engine's rejected items, keeping what the engine itself raised (not the writer
    reading them) so that it is raised as it is: a fault of Puente's, not the adapter's."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items = items
        self.raised: Exception | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.items
        except Exception as error:
            self.raised = error
            raise

    def reraise(self) -> None:
        if self.raised is not None:
            raise self.raised


def _failure_recorded(items: Any, summary: Any) -> Iterator[Any]:
    """The decoded items; once they end, an adapter that raised is in the summary."""
    yield from items
    if items.failure is not None:
        summary.adapter_failure = items.failure


def _writer_failure(name: str, summary: Any, error: Exception | str) -> dict[str, str]:
    raised = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {
        "position": "",
        "exception": raised,
        "message_es": (
            f"el adaptador «{name}» no pudo escribir el archivo de rechazos ({raised}); se "
            f"leyeron {summary.read} registros y lo guardado queda guardado; los rechazos se "
            "listan con --json: corrija el adaptador e importe de nuevo (nada se duplica)"
        ),
        "message_en": (
            f"the adapter '{name}' could not write the rejects file ({raised}); {summary.read} "
            "records were read and what was stored stays stored; the rejects are listed by "
            "--json: fix the adapter and import again (nothing is stored twice)"
        ),
    }
