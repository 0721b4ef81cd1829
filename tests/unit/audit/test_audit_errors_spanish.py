"""``audit.errors.in_spanish``: every audit failure a person reads has a Spanish text.

The errors are raised for real (not written by hand here), so a changed English phrase in
the package shows up as a missing translation.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from audit import (
    Checkpoint,
    CosignatureVerifier,
    MemoryTree,
    Signer,
    TlogProof,
    Verifier,
    generate_cosigner_key,
    generate_signer_key,
    leaf_hash,
    open_checkpoint,
    parse_canonical_entry,
    sign_checkpoint,
    verify_checkpoint_consistency,
    verify_consistency,
    verify_cosignatures,
)
from audit.errors import AuditError, RootMismatch, in_spanish, spanish_text

ORIGIN = "example.org/audit"
PRIVATE, VKEY = generate_signer_key(ORIGIN)
SIGNER = Signer.from_private_key(PRIVATE)
TREE = MemoryTree(leaf_hash(b"%d" % i) for i in range(8))
NOTE = sign_checkpoint(Checkpoint(ORIGIN, 8, TREE.root(8)), [SIGNER])
_, WITNESS = generate_cosigner_key("witness.example")
_, STRANGER = generate_signer_key("stranger.example/log")

CASES: list[tuple[Callable[[], object], str]] = [
    (
        lambda: Verifier.from_vkey("garbage"),
        "la llave verificadora debe tener la forma <nombre>+<ID de llave>+<llave>",
    ),
    (lambda: Verifier.from_vkey(VKEY[:-2]), "la llave verificadora no es base64"),
    (
        lambda: Verifier.from_vkey(VKEY.replace("+", "+0", 1)[:-1]),
        "el ID de la llave verificadora debe ser de 8 dígitos hexadecimales",
    ),
    (
        lambda: open_checkpoint(NOTE, [Verifier.from_vkey(STRANGER)]),
        "ninguna firma es de una llave conocida; firmas encontradas: example.org/audit+",
    ),
    (
        lambda: open_checkpoint(NOTE, [Verifier.from_vkey(VKEY)], origin="other.org/log"),
        "el origen del punto de control es 'example.org/audit'; se esperaba 'other.org/log'",
    ),
    (
        lambda: verify_cosignatures(NOTE, [CosignatureVerifier.from_vkey(WITNESS)], 1),
        "0 cofirmas de testigos verificadas (ninguna); se requieren al menos 1",
    ),
    (
        lambda: verify_consistency(4, 8, TREE.root(4), b"\x01" * 32, TREE.consistency_proof(4, 8)),
        "no coincide la segunda raíz: calculada ",
    ),
    (
        lambda: verify_consistency(3, 8, TREE.root(3), TREE.root(8), []),
        "tamaño de prueba incorrecto 0 para los tamaños 3 y 8",
    ),
    (
        lambda: verify_checkpoint_consistency(
            Checkpoint(ORIGIN, 3, b"\x02" * 32),
            Checkpoint(ORIGIN, 8, TREE.root(8)),
            TREE.consistency_proof(3, 8),
        ),
        "el punto de control 8 ",  # ... no extiende el punto de control 3 ...: no coincide ...
    ),
    (
        lambda: parse_canonical_entry(b'{"a": 1}'),
        "la entrada de auditoría no está en la forma canónica de RFC 8785",
    ),
    (lambda: parse_canonical_entry(b"[1]"), "una entrada de auditoría debe ser un objeto JSON"),
    (
        lambda: parse_canonical_entry(b'{"a":1,"a":2}'),
        "clave duplicada 'a' en la entrada de auditoría",
    ),
    (
        lambda: Checkpoint.from_text("example.org/audit\n8\n"),
        "el punto de control tiene 2 líneas; se esperaban al menos 3",
    ),
    (
        lambda: Checkpoint.from_text("example.org/audit\n08\nAAAA\n"),
        "el tamaño del árbol debe ser un decimal ASCII sin ceros a la izquierda",
    ),
    (lambda: TlogProof.from_text("nope\n"), "falta la línea vacía antes del punto de control"),
    (lambda: TlogProof.from_text("nope\n\n" + NOTE), "la primera línea debe ser "),
    (lambda: open_checkpoint("x\n", [Verifier.from_vkey(VKEY)]), "la nota"),
]


@pytest.mark.parametrize(("fail", "spanish"), CASES)
def test_audit_failures_read_in_spanish(fail: Callable[[], object], spanish: str) -> None:
    with pytest.raises(AuditError) as caught:
        fail()
    assert spanish in in_spanish(caught.value), (str(caught.value), in_spanish(caught.value))


def test_a_wrapped_message_is_translated_part_by_part() -> None:
    english = (
        "checkpoint 45 YrBn= does not extend checkpoint 39 22tP=: first root mismatch: "
        "calculated AAAA, want BBBB"
    )
    assert spanish_text(english) == (
        "el punto de control 45 YrBn= no extiende el punto de control 39 22tP=: no coincide "
        "la primera raíz: calculada AAAA, se esperaba BBBB"
    )


def test_an_error_raised_with_its_spanish_text_keeps_it() -> None:
    assert in_spanish(AuditError("english", es="español")) == "español"
    assert in_spanish(RootMismatch(b"\x00", b"\x01")) == (
        "no coincide la raíz: calculada AA==, se esperaba AQ=="
    )


def test_an_unknown_phrase_stays_in_english_rather_than_disappear() -> None:
    assert spanish_text("something new") == "something new"
