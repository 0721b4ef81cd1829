"""Text files as people save them: the checkpoints, proofs and keys an auditor keeps.

A signed checkpoint kept for later, or a consistency proof, passes through editors, mail
clients and Windows tools, which add a byte order mark, save in UTF-16, turn newlines into
CRLF or drop the final newline. None of that changes what was signed, and none of it may read
as the hub's fault ("invalid signature by known key"): :func:`saved_text` gives the text back
as it was written.
"""

from __future__ import annotations

import codecs

from audit.errors import FormatError


class UnreadableText(FormatError):
    """A saved file is not text in any encoding :func:`saved_text` reads."""


def saved_text(data: bytes) -> str:
    """The text of a saved file, with what editors add taken away.

    - a UTF-8 byte order mark is dropped; a UTF-16 file (little or big endian) with its byte
      order mark is decoded as such;
    - CRLF line ends become LF, and a missing final newline is added (every format read here
      ends its lines with one; an empty file stays empty).

    Raises :class:`UnreadableText` for bytes that are not UTF-8 (or UTF-16 with its mark), or
    that hold NUL characters (UTF-16 saved without a byte order mark, or a binary file).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data  # the codec reads the mark and drops it
    else:
        encoding, body = "utf-8", data.removeprefix(codecs.BOM_UTF8)
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as error:
        byte = error.object[error.start : error.start + 1].hex()
        raise UnreadableText(
            f"it is not UTF-8 text (nor UTF-16 with a byte order mark): byte 0x{byte} at "
            f"position {error.start}",
            es=f"no es texto UTF-8 (ni UTF-16 con marca de orden de bytes): byte 0x{byte} en la "
            f"posición {error.start}",
        ) from error
    if "\x00" in text:
        raise UnreadableText(
            "it holds NUL characters: not a text file (or UTF-16 saved without a byte order "
            "mark; save it as UTF-8)",
            es="contiene caracteres NUL: no es un archivo de texto (o es UTF-16 guardado sin "
            "marca de orden de bytes; guárdelo como UTF-8)",
        )
    text = text.replace("\r\n", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return text
