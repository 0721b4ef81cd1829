"""Text lines from the bytes of a spreadsheet export, whatever it was saved as.

Offices save CSV from Excel, LibreOffice or their case system as UTF-8 (often with a
byte-order mark) or as Windows-1252/Latin-1 ("Guardar como CSV" on a Spanish Windows). The
encoding is decided as the bytes arrive, never by reading the whole file: the text is read as
UTF-8 until the first byte sequence that is not UTF-8, and from there on as Windows-1252 (its
five unassigned bytes as Latin-1). A file that is Windows-1252 throughout is therefore decoded
exactly — its ASCII start reads the same in both. The delimiter (``,``, ``;``, tab or ``|``)
is the one that occurs most often in the header line, outside quotes.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Protocol

MAX_LINE_CHARACTERS = 1 << 20
"""A longer "line" is passed on in pieces (and the csv module then reports the row), so a
file without line breaks cannot fill memory."""
UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
WINDOWS_1252 = "cp1252"
DELIMITERS = (",", ";", "\t", "|")
_LATIN1_FALLBACK = "adapters.latin1-fallback"


def _latin1(error: UnicodeError) -> tuple[str, int]:
    # The bytes Windows-1252 leaves unassigned (0x81, 0x8D, 0x8F, 0x90, 0x9D) read as Latin-1.
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error(_LATIN1_FALLBACK, _latin1)


class ByteSource(Protocol):
    """What :class:`TextLines` reads from: anything with ``read(size)`` (a binary file)."""

    def read(self, size: int = -1, /) -> bytes: ...


class TextLines:
    """Iterate over the lines (line endings kept, as :mod:`csv` wants them) of a byte stream.

    After (or during) iteration, :attr:`encoding` says how the text was read: ``utf-8``,
    ``utf-8-sig`` (a byte-order mark was present) or ``cp1252`` (a byte was not UTF-8; the
    bytes before it were ASCII unless :attr:`mixed`).
    """

    def __init__(self, stream: ByteSource, *, chunk_size: int = 1 << 16) -> None:
        self._read = stream.read
        self._chunk_size = chunk_size
        self.encoding = UTF8
        self.mixed = False
        self._utf8 = codecs.getincrementaldecoder(UTF8)()
        self._seen_non_ascii = False

    def _decode(self, chunk: bytes, final: bool) -> str:
        if self.encoding != WINDOWS_1252:
            pending = self._utf8.getstate()[0]
            try:
                text = self._utf8.decode(chunk, final)
            except UnicodeDecodeError:
                self.mixed = self._seen_non_ascii
                self.encoding = WINDOWS_1252
                chunk = pending + chunk
            else:
                if not self._seen_non_ascii and not text.isascii():
                    self._seen_non_ascii = True
                return text
        return chunk.decode(WINDOWS_1252, _LATIN1_FALLBACK)

    def __iter__(self) -> Iterator[str]:
        rest = ""
        first = True
        while True:
            chunk = self._read(self._chunk_size)
            text = self._decode(chunk, final=not chunk)
            if first and text:
                first = False
                if text.startswith("\ufeff"):
                    text = text[1:]
                    self.encoding = UTF8_BOM
            if text:
                lines = (rest + text).split("\n")
                rest = lines.pop()
                for line in lines:
                    yield line + "\n"
                if len(rest) > MAX_LINE_CHARACTERS:
                    yield rest
                    rest = ""
            if not chunk:
                break
        if rest:
            yield rest


def sniff_delimiter(header_line: str) -> str:
    """The delimiter used most often in ``header_line`` outside double quotes; ``,`` if none."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for character in header_line:
        if character == '"':
            quoted = not quoted
        elif not quoted and character in counts:
            counts[character] += 1
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","
