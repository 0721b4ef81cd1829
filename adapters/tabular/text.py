"""Text lines from the bytes of a spreadsheet export, whatever it was saved as.

Offices save CSV from Excel, LibreOffice or their case system as UTF-8 (often with a
byte-order mark) or as Windows-1252/Latin-1 ("Guardar como CSV" on a Spanish Windows), and
sometimes as both at once: a UTF-8 sheet with one cell pasted from another program. The
encoding is decided line by line as the bytes arrive, never by reading the whole file: the
bytes are split at ``\\n`` (a byte that never occurs inside a UTF-8 sequence, nor stands for
anything but a line break in Windows-1252), a line that is valid UTF-8 is read as UTF-8 and a
line that is not as Windows-1252 (its five unassigned bytes as Latin-1). So a file that is
Windows-1252 throughout, or UTF-8 throughout, is decoded exactly, and one stray line does not
garble the lines after it. A file that mixes the two is marked :attr:`TextLines.mixed`: the
lines read as Windows-1252 are a guess a person should check (the CSV adapter says which rows
they were). The delimiter (``,``, ``;``, tab or ``|``) is the one that occurs most often in
the header line, outside quotes.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Protocol

MAX_LINE_CHARACTERS = 1 << 20
"""A longer "line" (counted in bytes, so never more characters) is passed on in pieces (and
the csv module then reports the row), so a file without line breaks cannot fill memory."""
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
    """Iterate over the lines (line endings kept, as :mod:`csv` wants them) of a byte stream,
    each line read as UTF-8 when it is valid UTF-8 and as Windows-1252 when it is not.

    After (or during) iteration, :attr:`encoding` says how to write text back for the office
    (a rejects file): ``utf-8-sig`` when a byte-order mark was present, else ``cp1252`` once a
    line was not UTF-8, else ``utf-8``. :attr:`windows_1252_lines` counts the lines read as
    Windows-1252 so far (it goes up just before such a line is given out, so a reader that
    takes one line at a time knows which were); :attr:`mixed` says some lines were read as
    Windows-1252 while others were UTF-8 with text beyond ASCII (or the file had a byte-order
    mark): the Windows-1252 lines are then a guess to check.
    """

    def __init__(self, stream: ByteSource, *, chunk_size: int = 1 << 16) -> None:
        self._read = stream.read
        self._chunk_size = chunk_size
        self.encoding = UTF8
        self.windows_1252_lines = 0
        self._first = True
        self._utf8_text = False  # a line read as UTF-8 was not ASCII (or there was a BOM)

    @property
    def mixed(self) -> bool:
        return self._utf8_text and self.windows_1252_lines > 0

    def __iter__(self) -> Iterator[str]:
        rest = b""
        while True:
            chunk = self._read(self._chunk_size)
            if not chunk:
                break
            data = rest + chunk
            end = data.rfind(b"\n") + 1
            if end:
                yield from self._lines(data[:end])
            rest = data[end:]
            while len(rest) > MAX_LINE_CHARACTERS:
                end = _whole_characters(rest, MAX_LINE_CHARACTERS)
                yield self._line(rest[:end])
                rest = rest[end:]
        if rest:
            yield self._line(rest)

    def _lines(self, block: bytes) -> Iterator[str]:
        """The lines of ``block`` (whole lines, each ending in ``\\n``)."""
        if self._first:
            block = self._without_bom(block)
        text = _utf8(block)
        if text is None:
            # Line by line; the whole block read as Windows-1252 at once is much faster than
            # line by line, and ``\n`` is a line break in both.
            windows_1252 = block.decode(WINDOWS_1252, _LATIN1_FALLBACK).split("\n")
            for line, as_1252 in zip(block.split(b"\n")[:-1], windows_1252, strict=False):
                yield self._line(line, as_1252) + "\n"
            return
        if not self._utf8_text and not text.isascii():
            self._utf8_text = True
        for decoded in text.split("\n")[:-1]:
            yield decoded + "\n"

    def _line(self, line: bytes, as_1252: str | None = None) -> str:
        """One line (or a piece of an overlong one) in its encoding; ``as_1252``: the line
        read as Windows-1252, when that is known already."""
        if self._first:
            line = self._without_bom(line)
        text = _utf8(line)
        if text is None:
            self.windows_1252_lines += 1
            if self.encoding == UTF8:
                self.encoding = WINDOWS_1252
            return line.decode(WINDOWS_1252, _LATIN1_FALLBACK) if as_1252 is None else as_1252
        if not self._utf8_text and not text.isascii():
            self._utf8_text = True
        return text

    def _without_bom(self, data: bytes) -> bytes:
        self._first = False
        if not data.startswith(codecs.BOM_UTF8):
            return data
        self.encoding = UTF8_BOM
        self._utf8_text = True
        return data[len(codecs.BOM_UTF8) :]


def _utf8(data: bytes) -> str | None:
    """``data`` read as UTF-8, or None when it is not UTF-8. (Decoding with replacement
    characters raises no exception: it is much faster on a Windows-1252 file, line by line.)"""
    text = data.decode(UTF8, "replace")
    if "\ufffd" not in text:
        return text
    if b"\xef\xbf\xbd" not in data:
        return None  # a replacement character the bytes did not hold: not UTF-8
    try:
        return data.decode(UTF8)
    except UnicodeDecodeError:
        return None


def _whole_characters(data: bytes, size: int) -> int:
    """Where to cut ``data`` at or before ``size`` bytes without splitting a UTF-8 sequence
    (so a piece of an overlong UTF-8 line is still read as UTF-8)."""
    for back in range(1, 4):
        byte = data[size - back]
        if byte < 0x80:
            return size  # ASCII: nothing is split
        if byte >= 0xC0:  # the first byte of a sequence, and ``back - 1`` bytes of it follow
            needed = 1 if byte < 0xE0 else 2 if byte < 0xF0 else 3
            return size if back - 1 >= needed else size - back
    return size


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
