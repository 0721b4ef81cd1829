"""Strict, bounded parsing of JSON documents and NDJSON streams.

Every input a hub or the CLI receives goes through here before it reaches a validator, so a
bad input always becomes a :class:`~schemas.errors.DocumentError` with a stable ``code`` and a
Spanish and English explanation — never a traceback. The accepted language is I-JSON
(RFC 7493): UTF-8 (a leading byte-order mark is tolerated), no duplicate member names, no
``NaN``/``Infinity`` and no numbers too large for a double, no unpaired surrogates.

Error codes: ``too-large``, ``invalid-utf8``, ``malformed-json``, ``duplicate-key``,
``invalid-number``, ``invalid-string``, ``too-deep``, ``not-object``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from schemas.errors import DocumentError

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
"""Largest document (or NDJSON line) accepted, in bytes."""

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted; a bare scalar has depth 0."""

_BOM = "\ufeff"
# Only a ``\uD800``–``\uDFFF`` escape can produce an unpaired surrogate in a decoded string;
# the (rare) documents that contain one are checked string by string.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: The only way JSON text can hold U+0000: no text field may (PostgreSQL's text cannot, and no
#: name, id or note needs it), so it is refused here for every backend alike.
_NUL_ESCAPE = re.compile(r"\\u0000")

# The json module's messages, in the order they are tried, with a Spanish translation.
_JSON_MESSAGES_ES = (
    ("Expecting value", "se esperaba un valor"),
    ("Expecting ',' delimiter", "se esperaba una coma ','"),
    ("Expecting ':' delimiter", "se esperaban dos puntos ':'"),
    (
        "Expecting property name enclosed in double quotes",
        "se esperaba un nombre de campo entre comillas dobles",
    ),
    ("Unterminated string", "cadena de texto sin cerrar"),
    ("Invalid control character", "carácter de control no permitido dentro de una cadena"),
    ("Invalid \\uXXXX escape", "secuencia \\uXXXX no válida"),
    ("Invalid \\escape", "secuencia de escape no válida"),
    ("Extra data", "hay contenido después del final del documento"),
    ("Illegal trailing comma", "coma sobrante antes del cierre"),
)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise DocumentError(
        "invalid-number",
        f"«{name}» no es un número JSON válido",
        f"'{name}' is not a valid JSON number",
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DocumentError(
            "invalid-number",
            f"el número {text[:40]} es demasiado grande para representarse",
            f"the number {text[:40]} is too large to be represented",
        )
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_object, parse_constant=_reject_constant, parse_float=_finite_float
)


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and byte column of ``offset`` in ``data``."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def _size_error(size: int | None, max_bytes: int) -> DocumentError:
    limit_es = f"{max_bytes:,}".replace(",", ".")
    if size is None:
        return DocumentError(
            "too-large",
            f"el documento es demasiado grande (más de {limit_es} bytes)",
            f"the document is too large (over {max_bytes:,} bytes)",
        )
    size_es = f"{size:,}".replace(",", ".")
    return DocumentError(
        "too-large",
        f"el documento es demasiado grande ({size_es} bytes; máximo {limit_es})",
        f"the document is too large ({size:,} bytes; at most {max_bytes:,})",
    )


def depth_error(max_depth: int) -> DocumentError:
    return DocumentError(
        "too-deep",
        f"el documento está anidado a más de {max_depth} niveles",
        f"the document is nested more than {max_depth} levels deep",
    )


def _malformed(error: json.JSONDecodeError, line: int | None) -> DocumentError:
    message_en = error.msg
    message_es = next(
        (es for en, es in _JSON_MESSAGES_ES if error.msg.startswith(en)), "JSON mal formado"
    )
    line = error.lineno if line is None else line
    return DocumentError(
        "malformed-json",
        f"JSON mal formado en la línea {line}, columna {error.colno}: {message_es}",
        f"malformed JSON at line {line}, column {error.colno}: {message_en}",
        line=line,
        column=error.colno,
    )


def check_depth(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`DocumentError` if ``value`` nests arrays and objects deeper than
    ``max_depth``. Iterative, so any depth is safe to check."""
    if type(value) is not dict and type(value) is not list:
        return  # a scalar has depth 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        depth += 1
        if depth > max_depth:
            raise depth_error(max_depth)
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                push((child, depth))


def _check_strings(value: Any) -> None:
    """Refuse the first string of ``value`` (a member's name or a text) that no text may hold,
    naming where it is: a body refused for "a string" somewhere leaves its sender to search
    for it, where ``/reason`` says which field to correct."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        pointer, node = stack.pop()
        if isinstance(node, str):
            _check_string(node, pointer)
        elif isinstance(node, dict):
            for key, item in node.items():
                # A name holding NUL is told at the object that holds it, without the NUL.
                _check_string(key, pointer)
                stack.append((f"{pointer}/{_pointer_token(key)}", item))
        elif isinstance(node, list):
            stack.extend((f"{pointer}/{index}", item) for index, item in enumerate(node))


def _pointer_token(key: str) -> str:
    """``key`` as a JSON pointer token (RFC 6901: ``~`` as ``~0``, ``/`` as ``~1``)."""
    return key.replace("~", "~0").replace("/", "~1")


def _check_string(text: str, pointer: str = "") -> None:
    where_es, where_en = (f"«{pointer}» ", f"'{pointer}' ") if pointer else ("", "")
    if "\x00" in text:
        raise DocumentError(
            "invalid-string",
            f"{where_es or 'una cadena '}contiene el carácter nulo \\u0000, que ningún texto "
            "puede llevar",
            f"{where_en or 'a string '}contains the NUL character \\u0000, which no text may hold",
            pointer=pointer,
        )
    if _SURROGATE.search(text):
        raise DocumentError(
            "invalid-string",
            f"{where_es or 'una cadena '}contiene un carácter \\uD800–\\uDFFF sin pareja (no es "
            "Unicode válido)",
            f"{where_en or 'a string '}contains an unpaired \\uD800–\\uDFFF character (not "
            "valid Unicode)",
            pointer=pointer,
        )


def parse_document(
    data: bytes,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
    require_object: bool = False,
) -> Any:
    """Parse one JSON document from ``data`` or raise :class:`DocumentError`.

    The size is checked before anything is decoded, so an oversized input costs nothing.
    With ``require_object`` the top level must be a JSON object.
    """
    return _parse(data, max_bytes, max_depth, require_object, None)


_NOT_PROVEN = object()


def _parse_fast(data: bytes) -> Any:
    r"""The value of ``data`` as the strict parser would give it, or ``_NOT_PROVEN``.

    orjson (C, ~4x faster than ``json`` with the duplicate-name hook) parses the text, and
    three checks prove the result is what the strict parser returns:

    - no duplicate member names. orjson keeps the last of duplicates, so they are found by
      counting: re-encoded, the value holds one ``:`` per member plus those inside strings;
      the text holds one per member it was written with plus the same ones inside strings —
      unless a string spells one as ``\u003a``, hence text with any ``\u`` escape is left
      to the strict parser. Dropping a duplicate drops at least its own ``:``.
    - no integer beyond 64 bits, which orjson turns into a float: re-encoded it would carry
      an exponent (``e+``), and so would a float from the text of 1e16 or more; both go to
      the strict parser (which keeps big integers exact, and parses such floats the same).
    - everything orjson refuses (BOM, NaN, bad UTF-8, unpaired surrogates, bad syntax) goes
      to the strict parser, which says what is wrong in the hub's words.

    tests/unit/schemas/test_parsing.py holds both parsers to the same answers.
    """
    if b"\\u" in data:
        return _NOT_PROVEN
    try:
        value = orjson.loads(data)
        encoded = orjson.dumps(value)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _NOT_PROVEN
    if encoded.count(b":") != data.count(b":") or b"e+" in encoded:
        return _NOT_PROVEN
    return value


def _parse(
    data: bytes, max_bytes: int, max_depth: int, require_object: bool, line_number: int | None
) -> Any:
    """:func:`parse_document`; ``line_number`` is the NDJSON line ``data`` came from."""
    if len(data) > max_bytes:
        raise _size_error(len(data), max_bytes)
    value = _parse_fast(data)
    if value is _NOT_PROVEN:
        value = _parse_strict(data, max_depth, line_number)
    # The count of "[" and "{" (strings included) bounds the depth: most documents need no walk.
    if (type(value) is dict or type(value) is list) and (
        data.count(b"{") + data.count(b"[") > max_depth
    ):
        check_depth(value, max_depth=max_depth)
    if require_object and type(value) is not dict:
        raise not_object_error(value)
    return value


def not_object_error(value: Any) -> DocumentError:
    """The ``not-object`` error for a document that is ``value`` instead of an object."""
    kind_es, kind_en = _json_kind(value)
    return DocumentError(
        "not-object",
        f"se esperaba un objeto JSON {{…}} y se encontró {kind_es}",
        f"expected a JSON object {{…}} but found {kind_en}",
    )


def _parse_strict(data: bytes, max_depth: int, line_number: int | None) -> Any:
    """Python's own parser with the I-JSON checks; slower, and says what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _position(data, error.start)
        line = line if line_number is None else line_number
        raise DocumentError(
            "invalid-utf8",
            f"el texto no es UTF-8 válido (línea {line}, byte {column} de la línea)",
            f"the text is not valid UTF-8 (line {line}, byte {column} of the line)",
            line=line,
            column=column,
        ) from None
    if text.startswith(_BOM):
        text = text[1:]
    if not text.strip():
        raise DocumentError("malformed-json", "el documento está vacío", "the document is empty")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise _malformed(error, line_number) from None
    except _DuplicateKey as error:
        raise DocumentError(
            "duplicate-key",
            f"el campo «{error.key}» aparece dos veces en el mismo objeto",
            f"the field '{error.key}' appears twice in the same object",
        ) from None
    except RecursionError:
        raise depth_error(max_depth) from None
    except DocumentError:
        raise
    except ValueError:  # an integer with more digits than Python converts (4,300)
        raise DocumentError(
            "invalid-number",
            "hay un número con demasiados dígitos",
            "a number has too many digits",
        ) from None
    if "\\u" in text and (_SURROGATE_ESCAPE.search(text) or _NUL_ESCAPE.search(text)):
        _check_strings(value)
    return value


def _json_kind(value: Any) -> tuple[str, str]:
    if isinstance(value, list):
        return "una lista [...]", "an array [...]"
    if isinstance(value, str):
        return "una cadena de texto", "a string"
    if isinstance(value, bool):
        return "un valor true/false", "a true/false value"
    if isinstance(value, (int, float)):
        return "un número", "a number"
    if value is None:
        return "null", "null"
    return "un objeto", "an object"


def iter_ndjson(
    lines: Iterable[bytes],
    *,
    max_line_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
    require_object: bool = False,
) -> Iterator[tuple[int, Any]]:
    """Parse NDJSON: yield ``(line_number, value_or_DocumentError)`` for each non-blank line.

    Line numbers are 1-based and count blank lines, so they match what an editor shows. A bad
    line yields its :class:`DocumentError` (with ``line`` set) and parsing goes on. Feed it
    :func:`bounded_lines` to keep memory bounded when a line is huge.
    """
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\r\n")
        if len(line) > max_line_bytes:
            # The line may have been cut by bounded_lines: its true size is unknown.
            error = _size_error(None, max_line_bytes)
        elif not line.strip():
            continue
        else:
            try:
                yield number, _parse(line, max_line_bytes, max_depth, require_object, number)
                continue
            except DocumentError as caught:
                error = caught
        error.line = number
        yield number, error


def bounded_lines(
    read: Callable[[int], bytes],
    *,
    max_line_bytes: int = MAX_DOCUMENT_BYTES,
    chunk_size: int = 1 << 16,
) -> Iterator[bytes]:
    """Split a byte stream (given by its ``read(n)`` function) into lines without ever holding
    more than ``max_line_bytes + chunk_size`` bytes. A longer line is yielded cut to
    ``max_line_bytes + 1`` bytes, which :func:`iter_ndjson` reports as ``too-large``.
    """
    buffer = b""
    skipping = False  # inside an overlong line already yielded
    while True:
        chunk = read(chunk_size)
        if not chunk:
            break
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line, buffer = buffer[: end + 1], buffer[end + 1 :]
            if skipping:
                skipping = False
                continue
            yield line
        if not skipping and len(buffer) > max_line_bytes:
            yield buffer[: max_line_bytes + 1]
            skipping = True
        if skipping:
            buffer = b""
    if buffer and not skipping:
        yield buffer
