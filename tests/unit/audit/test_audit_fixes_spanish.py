"""Spanish texts with no English inside them, and ``checkpoints_line`` on every error about a
line of ``checkpoints.ndjson`` (the pure ``audit`` package, no hub)."""

from __future__ import annotations

import json

import pytest

from audit import (
    AddCheckpointRequest,
    Checkpoint,
    MemoryTree,
    Note,
    SignatureError,
    Signer,
    Verifier,
    generate_signer_key,
    leaf_hash,
    parse_canonical_entry,
    sign_checkpoint,
)
from audit.errors import AuditError, FormatError, in_spanish, spanish_cause
from audit.verify_export import ExportedCheckpoint, checkpoint_line, verify_export

ORIGIN = "example.org/audit"
PRIVATE, VKEY = generate_signer_key(ORIGIN)
SIGNER = Signer.from_private_key(PRIVATE)
ENTRIES = [b'{"i":%d}' % i for i in range(4)]
TREE = MemoryTree(leaf_hash(e) for e in ENTRIES)
NOTE = sign_checkpoint(Checkpoint(ORIGIN, 4, TREE.root(4)), [SIGNER])


@pytest.mark.parametrize(
    ("text", "spanish"),
    [
        ("", "se esperaba un valor en la línea 1, columna 1 (carácter 0)"),
        ("{a", "se esperaba un nombre de propiedad entre comillas dobles en la línea 1, columna 2"),
        ('{"a" 1}', "se esperaba el delimitador ':' en la línea 1, columna 6"),
        ("[1 2]", "se esperaba el delimitador ',' en la línea 1, columna 4"),
        ('"abc', "cadena sin terminar que empieza en la línea 1, columna 1"),
        ("1 2", "datos de más después del valor JSON en la línea 1, columna 3"),
        ('"\\q"', "secuencia de escape no válida en la línea 1, columna 2"),
        ("{\n\n  x", "se esperaba un nombre de propiedad entre comillas dobles en la línea 3"),
    ],
)
def test_json_errors_have_spanish_words_and_positions(text: str, spanish: str) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        json.loads(text)
    said = spanish_cause(raised.value)
    assert said.startswith(spanish)
    assert "Expecting" not in said and "line" not in said and "char" not in said


def test_a_utf8_error_has_spanish_words() -> None:
    with pytest.raises(UnicodeDecodeError) as raised:
        b"ok \xff".decode("utf-8")
    assert spanish_cause(raised.value) == "no se puede decodificar el byte 0xff en la posición 3"


def test_an_entry_that_is_not_json_says_why_in_spanish() -> None:
    with pytest.raises(AuditError) as raised:
        parse_canonical_entry(b"{'a': 1}")
    assert "Expecting property name" in str(raised.value)
    assert in_spanish(raised.value) == (
        "la entrada de auditoría no es JSON UTF-8 válido: se esperaba un nombre de propiedad "
        "entre comillas dobles en la línea 1, columna 2 (carácter 1)"
    )


@pytest.mark.parametrize(
    ("line", "spanish"),
    [
        ("garbage", "se esperaba un valor en la línea 1"),
        ("[1, 2]", 'se esperaba un objeto JSON con "note"'),
        ('{"note": "x"}', 'se esperaba un objeto JSON con "note"'),
        ('{"note": "x", "consistency": [1]}', 'se esperaba un objeto JSON con "note"'),
        ('{"note": "x", "consistency": ["!"]}', "el hash de consistencia 0 no es base64 válido"),
        (b'{"note": "\xff"}', "no se puede decodificar el byte 0xff"),
    ],
)
def test_a_malformed_checkpoints_line_names_its_line(line: str | bytes, spanish: str) -> None:
    with pytest.raises(FormatError) as raised:
        ExportedCheckpoint.from_line(line, 7)
    assert raised.value.checkpoints_line == 7
    assert str(raised.value).startswith("checkpoints line 7 is malformed: ")
    assert in_spanish(raised.value).startswith(
        f"la línea 7 de checkpoints.ndjson está mal formada: {spanish}"
    )


def test_a_checkpoint_the_key_did_not_sign_names_its_line() -> None:
    _, stranger = generate_signer_key(ORIGIN)
    lines = [checkpoint_line(NOTE, [])]
    with pytest.raises(SignatureError) as raised:
        verify_export(lambda: iter(ENTRIES), lines, [Verifier.from_vkey(stranger)])
    assert str(raised.value).startswith("checkpoints line 1: ")
    assert raised.value.checkpoints_line == 1


def test_a_kept_checkpoint_has_no_line() -> None:
    other = Signer.from_private_key(generate_signer_key(ORIGIN)[0])
    kept = sign_checkpoint(Checkpoint(ORIGIN, 4, TREE.root(4)), [other])
    with pytest.raises(SignatureError) as raised:
        verify_export(
            lambda: iter(ENTRIES),
            [checkpoint_line(NOTE, [])],
            [Verifier.from_vkey(VKEY)],
            kept=[kept],
        )
    assert raised.value.checkpoints_line is None


def test_witness_request_errors_are_translated() -> None:
    note = Note.from_text(NOTE)
    short = f"{note.text}\n— mx.nobody/audit AAAA\n"
    with pytest.raises(FormatError) as raised:
        AddCheckpointRequest.from_text(f"old 0\n\n{short}")
    assert in_spanish(raised.value) == (
        "punto de control no válido en la solicitud: la firma de 'mx.nobody/audit' tiene "
        "3 bytes; se esperaban al menos 5"
    )
    with pytest.raises(FormatError) as raised:
        AddCheckpointRequest.from_text("old 1\n" + "AAAA\n" * 64 + "\n" + NOTE)
    assert in_spanish(raised.value) == (
        "64 líneas de prueba de consistencia; se permiten como máximo 63"
    )
