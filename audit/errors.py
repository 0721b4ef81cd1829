"""Errors raised by the audit package.

Every error is an :class:`AuditError`. Verification functions return nothing (or the
verified value) and raise one of these, with a message that says what was expected and
what was found. The ``puente audit verify`` exit codes map onto the hierarchy:

- 1, bad proof or entry: :class:`ProofError` (and :class:`RootMismatch`), :class:`EntryError`,
  :class:`FormatError`;
- 2, signature or quorum failure: :class:`SignatureError` (and :class:`QuorumError`);
- 3, inconsistent checkpoints: :class:`InconsistentCheckpoints`.

``str(error)`` is English. People read these messages in Spanish too (an oversight officer
runs ``puente audit verify --lang es``): :func:`in_spanish` gives the Spanish text, either
the one the error was raised with (``es=``) or a translation of the fixed phrases below.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable


class AuditError(Exception):
    """Base class of every error raised by :mod:`audit`.

    ``es`` is the message in Spanish, when the code raising the error wrote one; otherwise
    :func:`in_spanish` translates the English message.
    """

    #: The line of an export's ``checkpoints.ndjson`` that the error is about, when it is about
    #: one (set by :mod:`audit.verify_export`; ``puente audit verify --json`` reports it).
    checkpoints_line: int | None = None

    def __init__(self, *args: object, es: str | None = None) -> None:
        super().__init__(*args)
        self.es = es


class ProofError(AuditError):
    """A Merkle proof is malformed or does not prove what it claims."""


class RootMismatch(ProofError):
    """A proof computed a root hash different from the expected one."""

    def __init__(self, calculated: bytes, expected: bytes, what: str = "root") -> None:
        self.calculated = calculated
        self.expected = expected
        super().__init__(
            f"{what} mismatch: calculated {_b64(calculated)}, want {_b64(expected)}",
            es=f"no coincide {_term(what)}: calculada {_b64(calculated)}, se esperaba "
            f"{_b64(expected)}",
        )


class InconsistentCheckpoints(AuditError):
    """Two checkpoints of one log cannot both be right: the log forked or rolled back."""


class SignatureError(AuditError):
    """A signature by a known key failed, or no known key signed."""


class QuorumError(SignatureError):
    """Fewer witnesses than required cosigned a checkpoint."""


class FormatError(AuditError):
    """Text or bytes do not follow the format strictly (parse strictly, print canonically)."""


class NoteFormatError(FormatError):
    """A C2SP signed note, or a signature line in one, is malformed."""


class KeyFormatError(FormatError):
    """A signer (private) key or verifier key string is malformed."""


class CheckpointFormatError(FormatError):
    """A C2SP tlog-checkpoint body is malformed."""


class ProofFileFormatError(FormatError):
    """A C2SP ``.tlog-proof`` file or a tlog-witness request is malformed."""


class EntryError(AuditError):
    """An audit entry cannot be canonicalised, or its bytes are not canonical JSON."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- Spanish -------------------------------------------------------------------------------


def in_spanish(error: BaseException) -> str:
    """The error's message in Spanish.

    The Spanish text the error was raised with, else a translation of the English message
    (:func:`spanish_text`).
    """
    spanish = getattr(error, "es", None)
    return spanish if isinstance(spanish, str) else spanish_text(str(error))


def spanish_cause(error: BaseException) -> str:
    """The Spanish text of an error the package wraps as a cause: its own (:func:`in_spanish`),
    or for the standard library's JSON, UTF-8 and recursion errors, which speak English only,
    a Spanish rendering (``json.JSONDecodeError`` with its line and column)."""
    if isinstance(error, json.JSONDecodeError):
        what = _JSON_MESSAGES.get(error.msg)
        if what is None:
            prefix = next((m for m in _JSON_PREFIXES if error.msg.startswith(m)), None)
            what = f"{_JSON_PREFIXES[prefix]}{error.msg[len(prefix) :]}" if prefix else error.msg
        return f"{what} en la línea {error.lineno}, columna {error.colno} (carácter {error.pos})"
    if isinstance(error, UnicodeDecodeError):
        byte = error.object[error.start : error.start + 1].hex()
        return f"no se puede decodificar el byte 0x{byte} en la posición {error.start}"
    if isinstance(error, RecursionError):
        return "anidamiento demasiado profundo"
    return in_spanish(error)


# Python's json module's messages (json/decoder.py, json/scanner), without the position.
_JSON_MESSAGES = {
    "Expecting value": "se esperaba un valor",
    "Expecting property name enclosed in double quotes": (
        "se esperaba un nombre de propiedad entre comillas dobles"
    ),
    "Expecting ':' delimiter": "se esperaba el delimitador ':'",
    "Expecting ',' delimiter": "se esperaba el delimitador ','",
    "Unterminated string starting at": "cadena sin terminar que empieza",
    "Invalid control character at": "carácter de control no válido",
    "Invalid \\uXXXX escape": "secuencia de escape \\uXXXX no válida",
    "Invalid \\escape": "secuencia de escape no válida",
    "Extra data": "datos de más después del valor JSON",
    "Illegal trailing comma before end of object": "coma sobrante antes del fin del objeto",
    "Illegal trailing comma before end of array": "coma sobrante antes del fin de la lista",
}
_JSON_PREFIXES = {
    "Invalid \\escape: ": "secuencia de escape no válida: ",
    "Invalid control character ": "carácter de control no válido ",
}


def spanish_text(english: str) -> str:
    """Translate a message of the audit package into Spanish.

    The package's messages are fixed phrases with values in them (sizes, hashes, names);
    each phrase has a pattern here. A message that wraps another (``"...: <message>"``) is
    translated part by part. A phrase without a pattern comes back in English rather than
    not at all.
    """
    for pattern, spanish in _PHRASES:
        match = pattern.fullmatch(english)
        if match is not None:
            parts = {
                name: _translate_part(name, value or "")
                for name, value in match.groupdict().items()
            }
            return spanish(parts) if callable(spanish) else spanish.format(**parts)
    return english


def _translate_part(name: str, value: str) -> str:
    if name.startswith("msg"):
        return spanish_text(value)
    if name.startswith("what"):
        return _term(value)
    return value


# What a message is about ("{what} is not valid base64"), with its article.
_TERMS: tuple[tuple[str, str], ...] = (
    (r"root", "la raíz"),
    (r"first root", "la primera raíz"),
    (r"second root", "la segunda raíz"),
    (r"empty tree root", "la raíz del árbol vacío"),
    (r"root hash", "el hash raíz"),
    (r"tree size", "el tamaño del árbol"),
    (r"old size", "el tamaño anterior"),
    (r"index", "el índice"),
    (r"extra data", "los datos extra"),
    (r"verifier key", "la llave verificadora"),
    (r"signer key", "la llave de firma"),
    (r"consistency hash (\d+)", r"el hash de consistencia \1"),
    (r"proof hash (\d+)", r"el hash de prueba \1"),
    (r"signature by (.+)", r"la firma de \1"),
)


def _term(english: str) -> str:
    for pattern, spanish in _TERMS:
        if re.fullmatch(pattern, english):
            return re.sub(f"^{pattern}$", spanish, english)
    return english


def _key_type(parts: dict[str, str]) -> str:
    found = f"tipo {parts['found']}, " if parts["found"] else ""
    return (
        f"{parts['what']} debe ser de tipo {parts['type']} con 32 bytes de llave; se recibió "
        f"{found}{parts['count']} bytes"
    )


def _quorum(parts: dict[str, str]) -> str:
    names = "ninguna" if parts["names"] == "none" else parts["names"]
    return (
        f"{parts['count']} cofirmas de testigos verificadas ({names}); se requieren al menos "
        f"{parts['quorum']}"
    )


_Spanish = str | Callable[[dict[str, str]], str]

# English pattern -> Spanish, for every message the audit package raises (the modules are
# named). Groups called msg* are messages themselves, what* are _TERMS; the rest are values.
# More specific patterns come before the general ones they would also match.
_PHRASE_TEXTS: tuple[tuple[str, _Spanish], ...] = (
    # checkpoint.py
    (
        r"checkpoint (?P<new>\d+) (?P<new_root>\S+) does not extend checkpoint (?P<old>\d+) "
        r"(?P<old_root>\S+): (?P<msg>.+)",
        "el punto de control {new} {new_root} no extiende el punto de control {old} "
        "{old_root}: {msg}",
    ),
    (
        r"checkpoints are from different logs: (?P<a>.+) and (?P<b>.+)",
        "los puntos de control son de registros distintos: {a} y {b}",
    ),
    (
        r"checkpoint origin is (?P<got>.+), want (?P<want>.+)",
        "el origen del punto de control es {got}; se esperaba {want}",
    ),
    (
        r"origin must be one non-empty line, got (?P<got>.+)",
        "el origen debe ser una sola línea no vacía; se recibió {got}",
    ),
    (
        r"extension must be one non-empty line, got (?P<got>.+)",
        "cada extensión debe ser una sola línea no vacía; se recibió {got}",
    ),
    (
        r"tree size (?P<size>\S+) is outside 0\.\.2\*\*64-1",
        "el tamaño del árbol {size} está fuera de 0..2**64-1",
    ),
    (
        r"checkpoint text must end with a newline",
        "el texto del punto de control debe terminar en un salto de línea",
    ),
    (
        r"checkpoint has (?P<n>\d+) lines, want at least 3",
        "el punto de control tiene {n} líneas; se esperaban al menos 3",
    ),
    (r"checkpoint origin line is empty", "la línea de origen del punto de control está vacía"),
    (
        r"wrong proof size (?P<n>\d+), want 0 from the empty tree",
        "tamaño de prueba incorrecto {n}; se esperaba 0 desde el árbol vacío",
    ),
    # merkle.py
    (
        r"(?P<what>.+) mismatch: calculated (?P<got>\S+), want (?P<want>\S+)",
        "no coincide {what}: calculada {got}, se esperaba {want}",
    ),
    (
        r"leaf index (?P<i>\d+) is outside the tree of size (?P<n>\d+)",
        "el índice de hoja {i} está fuera del árbol de tamaño {n}",
    ),
    (
        r"wrong proof size (?P<n>\d+), want 0 for equal tree sizes",
        "tamaño de prueba incorrecto {n}; se esperaba 0 para árboles del mismo tamaño",
    ),
    (
        r"wrong proof size 0 for sizes (?P<a>\d+) and (?P<b>\d+)",
        "tamaño de prueba incorrecto 0 para los tamaños {a} y {b}",
    ),
    (
        r"wrong proof size (?P<n>\d+), want (?P<m>\d+)",
        "tamaño de prueba incorrecto {n}; se esperaba {m}",
    ),
    (
        r"tree size (?P<a>\d+) is smaller than the earlier size (?P<b>\d+)",
        "el tamaño del árbol {a} es menor que el tamaño anterior {b}",
    ),
    (
        r"a consistency proof from the empty tree is meaningless",
        "una prueba de consistencia desde el árbol vacío no tiene sentido",
    ),
    # note.py
    (
        r"no signature by a known key; found (?P<found>.*)",
        "ninguna firma es de una llave conocida; firmas encontradas: {found}",
    ),
    (
        r"invalid signature by known key (?P<key>.+)",
        "firma no válida de la llave conocida {key}",
    ),
    (r"ambiguous verifier keys for (?P<key>.+)", "llaves verificadoras ambiguas para {key}"),
    (
        r"invalid key name (?P<name>.+) in signature",
        "nombre de llave no válido {name} en la firma",
    ),
    (r"key ID (?P<id>\S+) does not fit in 32 bits", "el ID de llave {id} no cabe en 32 bits"),
    (r"empty signature", "firma vacía"),
    (
        r"signature line must start with an em dash and a space: (?P<line>.+)",
        "la línea de firma debe empezar con una raya (—) y un espacio: {line}",
    ),
    (r"signature line has no signature: (?P<line>.+)", "la línea de firma no tiene firma: {line}"),
    (
        r"signature by (?P<name>.+) has (?P<n>\d+) bytes, want at least 5",
        "la firma de {name} tiene {n} bytes; se esperaban al menos 5",
    ),
    (
        r"note text must end with a newline",
        "el texto de la nota debe terminar en un salto de línea",
    ),
    (r"a signed note needs at least one signature", "una nota firmada necesita al menos una firma"),
    (
        r"note has (?P<n>\d+) signatures, at most (?P<m>\d+) allowed",
        "la nota tiene {n} firmas; se permiten como máximo {m}",
    ),
    (
        r"no blank line between note text and signatures",
        "falta la línea en blanco entre el texto de la nota y las firmas",
    ),
    (r"note has no signature lines", "la nota no tiene líneas de firma"),
    (
        r"last signature line must end with a newline",
        "la última línea de firma debe terminar en un salto de línea",
    ),
    (
        r"control character or invalid UTF-8 (?P<c>.+) at offset (?P<i>\d+)",
        "carácter de control o UTF-8 no válido {c} en la posición {i}",
    ),
    # cosignature.py
    (
        r"(?P<count>\d+) witness cosignatures verified \((?P<names>.*)\), want at least "
        r"(?P<quorum>\d+)",
        _quorum,
    ),
    (
        r"cosignature timestamp (?P<t>\d+) exceeds 2\*\*63-1",
        "la marca de tiempo de la cofirma {t} excede 2**63-1",
    ),
    (
        r"cosignature has (?P<n>\d+) signature bytes, want 64",
        "la cofirma tiene {n} bytes de firma; se esperaban 64",
    ),
    (
        r"cosignature by (?P<name>.+) has (?P<n>\d+) bytes, want 72",
        "la cofirma de {name} tiene {n} bytes; se esperaban 72",
    ),
    # keys.py
    (
        r"verifier key must be <name>\+<key ID>\+<key>",
        "la llave verificadora debe tener la forma <nombre>+<ID de llave>+<llave>",
    ),
    (
        r"signer key must be PRIVATE\+KEY\+<name>\+<key ID>\+<key>",
        "la llave de firma debe tener la forma PRIVATE+KEY+<nombre>+<ID de llave>+<llave>",
    ),
    (r"invalid key name (?P<name>.+)", "nombre de llave no válido {name}"),
    (r"(?P<what>.+) has an invalid name (?P<name>.+)", "{what} tiene un nombre no válido {name}"),
    (
        r"(?P<what>.+) ID must be 8 lowercase hex digits, got (?P<got>.+)",
        "el ID de {what} debe ser de 8 dígitos hexadecimales en minúscula; se recibió {got}",
    ),
    (
        r"(?P<what>.+) must be type (?P<type>0x[0-9a-f]+) with 32 key bytes, got "
        r"(?:type (?P<found>0x[0-9a-f]+), )?(?P<count>\d+) bytes",
        _key_type,
    ),
    (
        r"key ID (?P<id>\S+) does not match the key, want (?P<want>\S+)",
        "el ID de llave {id} no corresponde a la llave; se esperaba {want}",
    ),
    (
        r"(?P<what>.+) ID (?P<id>\S+) does not match the key, want (?P<want>\S+)",
        "el ID {id} de {what} no corresponde a la llave; se esperaba {want}",
    ),
    (
        r"Ed25519 public key has (?P<n>\d+) bytes, want 32",
        "la llave pública Ed25519 tiene {n} bytes; se esperaban 32",
    ),
    # entry.py
    (
        r"an audit entry must be a JSON object, got (?P<type>\S+)",
        "una entrada de auditoría debe ser un objeto JSON; se recibió {type}",
    ),
    (
        r"audit entry is not canonicalisable JSON: (?P<why>.+)",
        "la entrada de auditoría no es JSON canonicalizable: {why}",
    ),
    (
        r"audit entry is not valid UTF-8 JSON: (?P<why>.+)",
        "la entrada de auditoría no es JSON UTF-8 válido: {why}",
    ),
    (
        r"audit entry is not in RFC 8785 canonical form",
        "la entrada de auditoría no está en la forma canónica de RFC 8785",
    ),
    (
        r"duplicate key (?P<key>.+) in audit entry",
        "clave duplicada {key} en la entrada de auditoría",
    ),
    (r"(?P<name>.+) is not a JSON value", "{name} no es un valor JSON"),
    # proof_file.py and witness.py
    (
        r"index (?P<i>\S+) is outside 0\.\.2\*\*64-1",
        "el índice {i} está fuera de 0..2**64-1",
    ),
    (
        r"proof has (?P<n>\d+) hashes, at most (?P<m>\d+) allowed",
        "la prueba tiene {n} hashes; se permiten como máximo {m}",
    ),
    (
        r"consistency proof has (?P<n>\d+) hashes, at most (?P<m>\d+) allowed",
        "la prueba de consistencia tiene {n} hashes; se permiten como máximo {m}",
    ),
    (
        r"extra data, when present, must not be empty",
        "los datos extra, si los hay, no deben estar vacíos",
    ),
    (
        r"invalid checkpoint in proof: (?P<msg>.+)",
        "punto de control no válido en la prueba: {msg}",
    ),
    (
        r"invalid checkpoint in request: (?P<msg>.+)",
        "punto de control no válido en la solicitud: {msg}",
    ),
    (
        r"(?P<n>\d+) consistency proof lines, at most (?P<m>\d+)",
        "{n} líneas de prueba de consistencia; se permiten como máximo {m}",
    ),
    (r"response must end with a newline", "la respuesta debe terminar en un salto de línea"),
    (
        r"(?P<n>\d+) signature lines, at most (?P<m>\d+)",
        "{n} líneas de firma; se permiten como máximo {m}",
    ),
    (r"no empty line before the checkpoint", "falta la línea vacía antes del punto de control"),
    (
        r"first line must be (?P<want>.+), got (?P<got>.+)",
        "la primera línea debe ser {want}; se recibió {got}",
    ),
    (r"missing 'index <n>' line", "falta la línea 'index <n>'"),
    (r"old size (?P<n>\S+) is negative", "el tamaño anterior {n} es negativo"),
    # _encoding.py, and hash sizes anywhere
    (r"(?P<what>.+) is not valid base64: (?P<text>.+)", "{what} no es base64 válido: {text}"),
    (
        r"(?P<what>.+) is not canonical base64: (?P<text>.+)",
        "{what} no es base64 canónico: {text}",
    ),
    (
        r"(?P<what>.+) must be an ASCII decimal without leading zeroes, got (?P<text>.+)",
        "{what} debe ser un decimal ASCII sin ceros a la izquierda; se recibió {text}",
    ),
    (r"(?P<what>.+?) (?P<value>\d+) does not fit in 64 bits", "{what} {value} no cabe en 64 bits"),
    (
        r"(?P<what>.+) has (?P<n>\d+) bytes, want (?P<m>\d+)",
        "{what} tiene {n} bytes; se esperaban {m}",
    ),
)

_PHRASES: tuple[tuple[re.Pattern[str], _Spanish], ...] = tuple(
    (re.compile(pattern, re.DOTALL), spanish) for pattern, spanish in _PHRASE_TEXTS
)
