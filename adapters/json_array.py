"""Reading the elements of one big JSON array without loading the document.

A Primero export (``{"data": [...], "metadata": {...}}``) and a FHIR Bundle (``{"resourceType":
"Bundle", "entry": [...]}``) are single JSON documents that can run to a gigabyte. Both keep
their records in one array under a top-level member. :func:`iter_member_array` reads the
stream in chunks, decodes each element of that array on its own with
:meth:`json.JSONDecoder.raw_decode` and yields it, so memory holds one element (and one chunk)
at a time. The other top-level members are small; they are decoded whole and collected in
:attr:`ArrayReader.members` for the caller to inspect once reading ends.

Only the standard library is used (no ``ijson``): the incremental part is finding where each
element starts and ends, which ``raw_decode`` already does.

An element nested deeper than Python's decoder goes (``raw_decode`` recurses, and stops with
``RecursionError`` some thousand levels down) is a :class:`JsonStreamError` by default; a
reader built with ``too_deep=True`` gets a :class:`TooDeep` in its place instead, found by a
plain scan that does not recurse, and reads on: one such element is then the problem of its
position only.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import IO, Any

CHUNK_SIZE = 1 << 16
_WHITESPACE = " \t\n\r"
_MESSAGES_ES = (
    ("Expecting value", "se esperaba un valor"),
    ("Expecting ',' delimiter", "se esperaba una coma «,»"),
    ("Expecting ':' delimiter", "se esperaban dos puntos «:»"),
    ("Expecting property name", "se esperaba un nombre de campo entre comillas dobles"),
    ("Unterminated string", "cadena de texto sin cerrar"),
    ("Invalid control character", "carácter de control dentro de una cadena"),
    ("Invalid", "secuencia de escape no válida"),
)


def _spanish(message: str) -> str:
    return next((es for en, es in _MESSAGES_ES if message.startswith(en)), "JSON mal formado")


class JsonStreamError(ValueError):
    """The stream is not the JSON document expected; ``offset`` is the character offset."""

    def __init__(self, es: str, en: str, offset: int) -> None:
        super().__init__(en)
        self.es = es
        self.en = en
        self.offset = offset


class TooDeep:
    """An element nested too deep to decode, in place of the element (``too_deep=True``):
    its text as it came, and where it starts (a character offset)."""

    def __init__(self, text: str, offset: int) -> None:
        self.text = text
        self.offset = offset

    def __reduce__(self) -> tuple[type[TooDeep], tuple[str, int]]:
        return (TooDeep, (self.text, self.offset))


#: Said of an element nested too deep (a :class:`JsonStreamError`, or the caller's problem).
TOO_DEEP_ES = "JSON anidado demasiado profundo (más niveles de los que se pueden leer)"
TOO_DEEP_EN = "nested too deep (more levels of JSON than can be read)"


class ArrayReader:
    """Iterates the elements of the array held by top-level member ``member``.

    Yields ``(index, element)``. When the member holds an object instead of an array (Primero's
    ``GET /api/v2/cases/:id`` answers ``{"data": {...}}``), that object is yielded as index 0
    and :attr:`single` is set. An empty stream (nothing but white space) yields nothing and
    sets :attr:`blank`. Raises :class:`JsonStreamError` where the text stops being
    the JSON expected; elements already yielded stay valid.
    """

    def __init__(
        self,
        stream: IO[bytes],
        member: str,
        chunk_size: int = CHUNK_SIZE,
        *,
        too_deep: bool = False,
    ) -> None:
        self._stream = stream
        self._too_deep = too_deep
        self._member = member
        self._chunk_size = chunk_size
        self._text = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0
        self._consumed = 0  # characters dropped from the front of the buffer
        self._eof = False
        self.members: dict[str, Any] = {}
        self.found = False
        self.single = False
        self.blank = False

    # -- low-level buffer handling -------------------------------------------------------

    def _offset(self) -> int:
        return self._consumed + self._pos

    def _fill(self, at_least: int = 0) -> bool:
        """Read another chunk (bigger when one element outgrows the buffer, so a huge element
        costs linear, not quadratic, time). Returns False at end of stream."""
        if self._eof:
            return False
        if self._pos > self._chunk_size:
            self._consumed += self._pos
            self._buffer = self._buffer[self._pos :]
            self._pos = 0
        size = max(self._chunk_size, at_least)
        raw = self._stream.read(size)
        try:
            self._buffer += self._text.decode(raw or b"", final=not raw)
        except UnicodeDecodeError as error:
            raise JsonStreamError(
                "el archivo no está en UTF-8",
                "the file is not UTF-8 text",
                self._offset(),
            ) from error
        if not raw:
            self._eof = True
        return True

    def _peek(self) -> str:
        """The next non-blank character, reading more as needed; '' at end of stream."""
        while True:
            while self._pos < len(self._buffer) and self._buffer[self._pos] in _WHITESPACE:
                self._pos += 1
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if not self._fill():
                return ""

    def _expect(self, char: str, what_es: str, what_en: str) -> None:
        found = self._peek()
        if found != char:
            shown = repr(found) if found else "EOF"
            raise JsonStreamError(
                f"se esperaba {what_es} y se encontró {shown}",
                f"expected {what_en}, found {shown}",
                self._offset(),
            )
        self._pos += 1

    def _value(self) -> Any:
        """Decode one JSON value at the cursor, reading more until it is complete.

        A value is complete when ``raw_decode`` succeeds and a non-blank character follows it
        (so a number cut at the chunk boundary, ``12`` of ``123``, is not taken early)."""
        self._peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as error:
                if self._fill(at_least=len(self._buffer) - self._pos):
                    continue
                raise JsonStreamError(
                    f"JSON inválido: {_spanish(error.msg)}",
                    f"invalid JSON: {error.msg}",
                    self._consumed + error.pos,
                ) from error
            following = end
            while following < len(self._buffer) and self._buffer[following] in _WHITESPACE:
                following += 1
            if following == len(self._buffer) and self._fill(
                at_least=len(self._buffer) - self._pos
            ):
                continue
            self._pos = end
            return value

    def _element(self) -> Any:
        """One element of the array: decoded, or a :class:`TooDeep` (see the module docs)."""
        try:
            return self._value()
        except RecursionError:
            offset = self._offset()
            if not self._too_deep:
                raise JsonStreamError(TOO_DEEP_ES, TOO_DEEP_EN, offset) from None
            return TooDeep(self._skip_nested(), offset)

    def _skip_nested(self) -> str:
        """The text of the array or object at the cursor, found by counting brackets outside
        strings (no recursion), the cursor moved past it."""
        depth = 0
        at = 0  # relative to the cursor: reading more may move the buffer under it
        in_string = escaped = False
        while True:
            if self._pos + at >= len(self._buffer):
                if not self._fill(at_least=len(self._buffer) - self._pos):
                    raise JsonStreamError(
                        "JSON inválido: el documento se corta", "invalid JSON: it breaks off",
                        self._offset() + at,
                    )  # fmt: skip
                continue
            char = self._buffer[self._pos + at]
            at += 1
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth <= 0:
                    text = self._buffer[self._pos : self._pos + at]
                    self._pos += at
                    return text

    # -- the document --------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if self._peek() == "":
            self.blank = True  # an empty file: no document, and nothing wrong to say
            return
        self._expect("{", "un objeto JSON «{»", "a JSON object '{'")
        if self._peek() == "}":
            self._pos += 1
            return
        while True:
            key = self._value()
            if not isinstance(key, str):
                raise JsonStreamError(
                    "se esperaba el nombre de un miembro",
                    "expected a member name",
                    self._offset(),
                )
            self._expect(":", "«:»", "':'")
            if key == self._member and self._peek() == "[":
                self.found = True
                self._pos += 1
                yield from self._elements()
            elif key == self._member and self._peek() == "{":
                self.found = True
                self.single = True
                yield 0, self._value()
            else:
                self.members[key] = self._value()
            if self._peek() == ",":
                self._pos += 1
                continue
            self._expect("}", "«,» o «}»", "',' or '}'")
            break
        if self._peek():
            raise JsonStreamError(
                "hay texto después del documento JSON",
                "there is text after the JSON document",
                self._offset(),
            )

    def _elements(self) -> Iterator[tuple[int, Any]]:
        if self._peek() == "]":
            self._pos += 1
            return
        index = 0
        while True:
            yield index, self._element()
            index += 1
            if self._peek() == ",":
                self._pos += 1
                continue
            self._expect("]", "«,» o «]»", "',' or ']'")
            return


def iter_member_array(
    stream: IO[bytes], member: str, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[int, Any]]:
    """The elements of the array at top-level ``member`` of the JSON object in ``stream``."""
    return iter(ArrayReader(stream, member, chunk_size))
