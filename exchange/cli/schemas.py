"""``puente schemas list|show|check-compat`` and ``puente validate``.

None of these touch the hub or its database: a data officer can check an export on any
machine before pushing it. ``validate`` streams NDJSON line by line (memory stays bounded
whatever the file size), keeps going past bad lines, and prints one line per failure::

    cases.ndjson:12 /child/date_of_birth El campo «fecha de nacimiento» (date_of_birth) debe…
    cases.ndjson:13 - JSON mal formado en la línea 13, columna 7: se esperaba un valor
    3 de 100 documentos con errores

(``-`` stands for "no pointer", ``""`` for the whole document). Exit status: 0 every
document valid, 1 some document invalid, 2 usage error (missing file, unknown schema).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import click

from exchange.cli import language_option, print_json
from schemas import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    DocumentError,
    SchemaError,
    SchemaRegistry,
    ValidationFailure,
    bounded_lines,
    check_compatibility,
    check_envelope,
    default_registry,
    is_envelope,
    iter_ndjson,
    parse_document,
)
from schemas.parsing import check_depth, depth_error, not_object_error

MAX_JSON_FILE_BYTES = 32 * 1024 * 1024
"""Largest plain-JSON file (one document or an array) read whole; NDJSON has no limit."""

PROGRESS_MIN_BYTES = 8 * 1024 * 1024
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
_SNIFF_BYTES = 64 * 1024


def _usage_error(es: str, en: str, lang: str) -> click.UsageError:
    return click.UsageError(es if lang == "es" else en)


def _registry() -> SchemaRegistry:
    return default_registry()


# -- puente schemas ---------------------------------------------------------------------------


@click.group("schemas")
def schemas_group() -> None:
    """The shipped JSON Schemas / los esquemas JSON incluidos."""


@schemas_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@language_option
def list_command(as_json: bool, lang: str) -> None:
    """List schema names and versions."""
    infos = _registry().list()
    if as_json:
        print_json([info.to_json() for info in infos])
        return
    width = max((len(info.ref) for info in infos), default=0)
    for info in infos:
        click.echo(f"{info.ref:<{width}}  {info.title.get(lang, info.name)}")


@schemas_group.command("show")
@click.argument("ref")
@language_option
def show_command(ref: str, lang: str) -> None:
    """Print the JSON Schema document NAME[/VERSION] (latest version without one)."""
    registry = _registry()
    try:
        name, version = registry.parse_schema_ref(ref)
    except SchemaError as error:
        raise click.UsageError(error.message(lang)) from None
    click.echo(json.dumps(registry.document(name, version), indent=2, ensure_ascii=False))


@schemas_group.command("check-compat")
@click.argument("old")
@click.argument("new")
@language_option
def check_compat_command(old: str, new: str, lang: str) -> None:
    """Does NEW accept every document OLD accepts? Each is NAME/VERSION or a schema file.

    Exit 0 when compatible, 1 with each reason when not.
    """
    registry = _registry()
    old_schema, new_schema = _load_schema(old, registry, lang), _load_schema(new, registry, lang)
    found = check_compatibility(old_schema, new_schema, registry)
    for item in found:
        click.echo(f"{item.pointer} {item.reason(lang)}")
    if found:
        count = len(found)
        click.echo(
            f"incompatible: {count} diferencia{'s' if count != 1 else ''}"
            if lang == "es"
            else f"incompatible: {count} difference{'s' if count != 1 else ''}"
        )
        sys.exit(1)
    click.echo("compatible")


def _load_schema(argument: str, registry: SchemaRegistry, lang: str) -> dict[str, Any]:
    path = Path(argument)
    if path.suffix == ".json" or path.is_file():
        try:
            data = path.read_bytes()
        except OSError as error:
            raise _usage_error(
                f"no se puede leer {argument}: {error.strerror}",
                f"cannot read {argument}: {error.strerror}",
                lang,
            ) from None
        try:
            return parse_document(data, require_object=True)  # type: ignore[no-any-return]
        except DocumentError as error:
            raise click.UsageError(f"{argument}: {error.message(lang)}") from None
    try:
        return registry.document(*registry.parse_schema_ref(argument))
    except SchemaError as error:
        raise click.UsageError(error.message(lang)) from None


# -- puente validate --------------------------------------------------------------------------


@click.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--schema",
    "schema_ref",
    default="case-record/1",
    show_default=True,
    help="Schema of bare documents (envelopes name their own).",
)
@language_option
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line.")
def validate_command(files: tuple[str, ...], schema_ref: str, lang: str, quiet: bool) -> None:
    """Validate JSON or NDJSON FILES (``-`` reads standard input).

    A file holds one document, a JSON array of documents, or one document per line (NDJSON:
    by the .ndjson/.jsonl extension or by its content). Each document is either a push
    envelope ({"schema", "local_id", "data"}) or a bare document checked against --schema.
    """
    registry = _registry()
    try:
        schema = registry.parse_schema_ref(schema_ref)
    except SchemaError as error:
        raise click.UsageError(error.message(lang)) from None
    for name in files:
        if name != "-" and Path(name).is_dir():
            raise _usage_error(f"{name} es una carpeta", f"{name} is a directory", lang)
        if name != "-" and not Path(name).exists():  # pipes (<(zcat …)) are files too
            raise _usage_error(f"no existe el archivo {name}", f"no such file: {name}", lang)
    run = _Run(registry, schema, lang, quiet)
    with ExitStack() as stack:
        for name in files:
            try:
                stream: IO[bytes] = (
                    sys.stdin.buffer if name == "-" else stack.enter_context(open(name, "rb"))
                )
            except OSError as error:
                raise _usage_error(
                    f"no se puede leer {name}: {error.strerror}",
                    f"cannot read {name}: {error.strerror}",
                    lang,
                ) from None
            run.file(name, stream)
    if lang == "es":
        summary = f"{run.invalid} de {run.documents} documentos con errores"
        if run.empty_files:
            summary += f"; {run.empty_files} archivo(s) sin documentos"
    else:
        summary = f"{run.invalid} of {run.documents} documents have errors"
        if run.empty_files:
            summary += f"; {run.empty_files} file(s) hold no documents"
    click.echo(summary)
    sys.exit(1 if run.invalid or run.empty_files else 0)


class _Run:
    """Counts and prints as documents are checked."""

    def __init__(
        self, registry: SchemaRegistry, schema: tuple[str, str], lang: str, quiet: bool
    ) -> None:
        self.registry, self.lang, self.quiet = registry, lang, quiet
        self.validator = registry.validator(*schema)
        self.documents = self.invalid = self.empty_files = 0
        self.bar: Any = None  # the progress bar while an NDJSON file is read

    def file(self, name: str, stream: IO[bytes]) -> None:
        shown = "<stdin>" if name == "-" else name
        documents_before = self.documents
        size = _size(stream)
        head = stream.read(_SNIFF_BYTES)
        read = _chain(head, stream.read)
        if name.endswith(NDJSON_SUFFIXES) or _looks_like_ndjson(head):
            with self._progress(size) as bar:
                self.bar = bar
                for line, item in iter_ndjson(
                    _counting(bounded_lines(read), bar.update if bar else None),
                    require_object=True,
                ):
                    self._report(shown, line, item)
                self.bar = None
        else:
            self._json_file(shown, size, head, stream)
        if self.documents == documents_before:  # an empty export is not a valid one
            self.empty_files += 1
            self._say(
                shown,
                1,
                "-",
                ("el archivo no contiene ningún documento", "the file holds no documents"),
            )

    def _json_file(self, shown: str, size: int | None, head: bytes, stream: IO[bytes]) -> None:
        """One document or an array of them; each reported at the line where it starts."""
        too_large = size is not None and size > MAX_JSON_FILE_BYTES
        data = b"" if too_large else head + stream.read(MAX_JSON_FILE_BYTES + 1 - len(head))
        try:
            if too_large or len(data) > MAX_JSON_FILE_BYTES:
                raise DocumentError(
                    "too-large",
                    f"el archivo supera {MAX_JSON_FILE_BYTES // 2**20} MiB; use NDJSON "
                    "(un documento por línea) para archivos grandes",
                    f"the file exceeds {MAX_JSON_FILE_BYTES // 2**20} MiB; use NDJSON "
                    "(one document per line) for large files",
                )
            try:
                # An array's documents sit one level down: the array itself may add one.
                value = parse_document(data, max_bytes=MAX_JSON_FILE_BYTES, max_depth=MAX_DEPTH + 1)
            except DocumentError as error:
                if error.code == "too-deep":
                    raise depth_error(MAX_DEPTH) from None
                raise
            if isinstance(value, list):
                for line, item in zip(_element_lines(data), value, strict=False):
                    self._report(shown, line, _document_checked(item))
            elif len(data) > MAX_DOCUMENT_BYTES:
                parse_document(data)  # raises too-large, with the size
            else:
                self._report(shown, _first_line(data), _document_checked(value))
        except DocumentError as error:
            self._report(shown, error.line or 1, error)

    def _report(self, shown: str, line: int, item: Any) -> None:
        self.documents += 1
        if isinstance(item, DocumentError):
            failures = [("-", item.message(self.lang))]
        else:
            failures = [(f.pointer or '""', f.message(self.lang)) for f in self._check(item)]
        if failures:
            self.invalid += 1
        for pointer, message in failures:
            self._say(shown, line, pointer, message)

    def _say(self, shown: str, line: int, pointer: str, message: str | tuple[str, str]) -> None:
        if self.quiet:
            return
        if isinstance(message, tuple):
            message = message[0] if self.lang == "es" else message[1]
        # Above the progress bar, when there is one, not glued to its end.
        (self.bar.write if self.bar else click.echo)(f"{shown}:{line} {pointer} {message}")

    def _check(self, document: Any) -> list[ValidationFailure]:
        if is_envelope(document):
            return check_envelope(document, self.registry).failures
        return self.validator.validate(document)

    def _progress(self, size: int | None) -> Any:
        show = (
            not self.quiet and sys.stderr.isatty() and (size is None or size > PROGRESS_MIN_BYTES)
        )
        return _Progress(size if show else -1)


def _document_checked(value: Any) -> Any:
    """``value``, or the error that keeps it from being a document (not an object, too deep)."""
    if not isinstance(value, dict):
        return not_object_error(value)
    try:
        check_depth(value, max_depth=MAX_DEPTH)
    except DocumentError as error:
        return error
    return value


def _first_line(data: bytes) -> int:
    """The line of ``data``'s first character that is not blank."""
    stripped = data.lstrip()
    return data.count(b"\n", 0, len(data) - len(stripped)) + 1


def _element_lines(data: bytes) -> Iterator[int]:
    """The line each element of the JSON array ``data`` (already parsed) starts on."""
    text = data.decode("utf-8-sig")
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    line, counted = 1, 0
    while True:
        position = _skip_blank(text, position)
        if text[position] == "]":
            return
        line += text.count("\n", counted, position)
        counted = position
        yield line
        _, position = decoder.raw_decode(text, position)
        position = _skip_blank(text, position)
        if text[position] == ",":
            position += 1


def _skip_blank(text: str, position: int) -> int:
    while text[position] in " \t\r\n":
        position += 1
    return position


def _size(stream: IO[bytes]) -> int | None:
    try:
        return Path(stream.name).stat().st_size if isinstance(stream.name, str) else None
    except (AttributeError, OSError):
        return None


def _chain(head: bytes, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    pending = [head] if head else []

    def chained(size: int) -> bytes:
        return pending.pop() if pending else read(size)

    return chained


def _looks_like_ndjson(head: bytes) -> bool:
    """One JSON value per line: more than one non-blank line, and the first parses on its own
    or most look like a whole object (``{…}`` on one line) — so a broken first line still
    leaves the rest of an NDJSON export to be checked line by line."""
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    if len(lines) < 2 or lines[0].startswith(b"["):
        return False
    try:
        json.loads(lines[0])
        return True
    except ValueError:
        pass
    whole_objects = sum(1 for line in lines if line.startswith(b"{") and line.endswith(b"}"))
    return whole_objects * 2 >= len(lines)


def _counting(lines: Iterator[bytes], advance: Callable[[int], object] | None) -> Iterator[bytes]:
    for line in lines:
        if advance is not None:
            advance(len(line))
        yield line


class _Progress:
    """A tqdm bar on stderr (``total`` bytes; -1 for none), used as a context manager that
    gives the bar, or ``None`` when there is none."""

    def __init__(self, total: int | None) -> None:
        self.total, self.bar = total, None

    def __enter__(self) -> Any:
        if self.total == -1:
            return None
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="B", unit_scale=True, file=sys.stderr, leave=False)
        return self.bar

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.close()
