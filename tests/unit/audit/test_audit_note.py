"""C2SP signed notes: golang/mod known keys and notes, key formats, strict parsing."""

from __future__ import annotations

import base64
import json

import pytest

from audit import (
    KeyFormatError,
    Note,
    NoteFormatError,
    NoteSignature,
    SignatureError,
    Signer,
    Verifier,
    generate_signer_key,
    open_note,
    sign_note,
    verified_signatures,
)
from audit.keys import compute_key_id, decode_vkey, is_valid_key_name
from audit.note import MAX_SIGNATURES
from tests.conftest import shared_testdata

TESTDATA = shared_testdata("signed-note")
V = json.loads((TESTDATA / "golang-note-vectors.json").read_text())
SIG_B64 = V["signed_by_peter"].rsplit(" ", 1)[1].rstrip("\n")
PETER = Verifier.from_vkey(V["verifier_keys"]["PeterNeumann"])
ENOCH = Verifier.from_vkey(V["verifier_keys"]["EnochRoot"])


# Known keys and notes


def test_signer_key_matches_its_verifier_key() -> None:
    signer = Signer.from_private_key(V["signer_key"])
    assert signer.name == "PeterNeumann"
    assert signer.key_id == 0xC74F20A3
    assert signer.vkey == V["verifier_keys"]["PeterNeumann"]
    assert signer.verifier() == PETER


def test_signing_reproduces_the_known_note() -> None:
    signer = Signer.from_private_key(V["signer_key"])
    assert sign_note(V["text"], [signer]) == V["signed_by_peter"]


def test_open_known_notes() -> None:
    note = open_note(V["signed_by_peter"], [PETER])
    assert note.text == V["text"]
    assert [(s.name, s.key_id) for s in note.signatures] == [("PeterNeumann", 0xC74F20A3)]

    both = open_note(V["signed_by_peter_and_enoch"], [PETER, ENOCH])
    assert [s.name for s in both.signatures] == ["PeterNeumann", "EnochRoot"]


def test_signatures_by_unknown_keys_are_ignored() -> None:
    note = open_note(V["signed_by_peter_and_enoch"], [ENOCH])
    assert [s.name for s in note.signatures] == ["EnochRoot"]


def test_note_without_a_known_signer_is_rejected() -> None:
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(V["signed_by_peter"], [ENOCH])
    with pytest.raises(SignatureError):
        open_note(V["signed_by_peter"], [])


def test_key_with_same_name_but_other_id_is_unknown_not_failing() -> None:
    _, vkey = generate_signer_key("PeterNeumann")
    impostor = Verifier.from_vkey(vkey)
    assert impostor.key_id != PETER.key_id
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(V["signed_by_peter"], [impostor])


def test_tampered_text_or_signature_by_known_key_is_rejected() -> None:
    tampered = V["signed_by_peter"].replace("answer", "ANSWER")
    with pytest.raises(SignatureError, match="invalid signature by known key PeterNeumann"):
        open_note(tampered, [PETER])
    note = Note.from_text(V["signed_by_peter"])
    sig = note.signatures[0]
    bad = NoteSignature(sig.name, sig.key_id, bytes([sig.signature[0] ^ 1]) + sig.signature[1:])
    with pytest.raises(SignatureError):
        open_note(Note(note.text, (bad,)).to_text(), [PETER])
    # A failing known key spoils the note even if another known key verifies.
    mixed = Note(note.text, (bad, *Note.from_text(V["signed_by_peter_and_enoch"]).signatures[1:]))
    with pytest.raises(SignatureError):
        open_note(mixed.to_text(), [PETER, ENOCH])


@pytest.mark.parametrize("text", V["malformed"], ids=range(len(V["malformed"])))
def test_malformed_notes_are_rejected(text: str) -> None:
    with pytest.raises(NoteFormatError):
        Note.from_text(text)
    with pytest.raises(NoteFormatError):
        open_note(text, [PETER])


@pytest.mark.parametrize(
    "text",
    [
        V["signed_by_peter"].replace("— Peter", "— Bad Name"),  # space in the name
        V["signed_by_peter"].replace("— Peter", "—Peter"),  # no space after the dash
        V["signed_by_peter"].replace("— Peter", "- Peter"),  # hyphen, not em dash
        V["signed_by_peter"].replace("AM=\n", "AM\n"),  # missing padding
        V["signed_by_peter"].replace("AM=\n", "AN=\n"),  # non-canonical trailing bits
        V["signed_by_peter"].replace("x08go/ZJkuBS9UG/Sf", "x08go/ZJku BS9UG/Sf"),
        V["signed_by_peter"].replace(SIG_B64, "AAAA"),  # key ID only, no signature
        V["signed_by_peter"].replace("— PeterNeumann", "— PeterNeumann "),
        V["signed_by_peter"].replace("problem,\n", "problem,\r\n"),
        V["signed_by_peter"].replace("problem", "pro\ud800blem"),
        V["signed_by_peter"] + "\n",
        "",
        "\n\n",
    ],
)
def test_strict_parse_rejections(text: str) -> None:
    with pytest.raises(NoteFormatError):
        Note.from_text(text)


def test_round_trip_is_canonical() -> None:
    for text in (V["signed_by_peter"], V["signed_by_peter_and_enoch"]):
        assert Note.from_text(text).to_text() == text


def test_text_may_contain_blank_lines() -> None:
    signer = Signer.from_private_key(V["signer_key"])
    text = "first\n\nsecond\n\n"
    signed = sign_note(text, [signer])
    assert open_note(signed, [PETER]).text == text


def test_at_least_16_signatures_are_accepted_and_over_100_rejected() -> None:
    signers = [Signer.from_private_key(generate_signer_key(f"w{i}.example")[0]) for i in range(16)]
    signed = sign_note("hello\n", signers)
    note = open_note(signed, [s.verifier() for s in signers])
    assert len(note.signatures) == 16
    sig = note.signatures[0]
    many = "hello\n\n" + (sig.to_line() + "\n") * (MAX_SIGNATURES + 1)
    with pytest.raises(NoteFormatError, match="at most 100"):
        Note.from_text(many)


def test_repeated_signature_by_one_key_counts_once() -> None:
    note = Note.from_text(V["signed_by_peter"])
    doubled = Note(note.text, note.signatures * 2)
    assert len(verified_signatures(doubled, [PETER])) == 1


def test_ambiguous_verifiers_are_refused() -> None:
    with pytest.raises(SignatureError, match="ambiguous"):
        open_note(V["signed_by_peter"], [PETER, PETER])


def test_with_signatures_adds_and_replaces() -> None:
    peter = Note.from_text(V["signed_by_peter"])
    enoch_sig = Note.from_text(V["signed_by_peter_and_enoch"]).signatures[1]
    both = peter.with_signatures([enoch_sig])
    assert both.to_text() == V["signed_by_peter_and_enoch"]
    assert both.with_signatures([enoch_sig]) == both


# Keys


def test_generated_keys_round_trip() -> None:
    skey, vkey = generate_signer_key("puente.example/log")
    signer = Signer.from_private_key(skey)
    assert signer.vkey == vkey
    assert Verifier.from_vkey(vkey).vkey == vkey
    assert skey.startswith(f"PRIVATE+KEY+puente.example/log+{signer.key_id:08x}+")
    assert base64.b64decode(skey.split("+", 4)[4])[0] == 0x01
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x01
    name, key_id, public_key = decode_vkey(vkey, 0x01)
    assert key_id == compute_key_id(name, 0x01, public_key)
    assert open_note(sign_note("x\n", [signer]), [Verifier.from_vkey(vkey)]).text == "x\n"


def test_signer_repr_hides_the_private_key() -> None:
    signer = Signer.from_private_key(V["signer_key"])
    assert "AYEK" not in repr(signer) and "PRIVATE" not in repr(signer)
    assert repr(signer) == "Signer(name='PeterNeumann', key_id=c74f20a3)"


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # uppercase hex
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # 7 hex digits
        "PeterNeumann+c74f20a3+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not type 0x01
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # short key
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "",
    ],
)
def test_bad_verifier_keys_are_rejected(vkey: str) -> None:
    with pytest.raises(KeyFormatError):
        Verifier.from_vkey(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        V["signer_key"].replace("c74f20a3", "c74f20a4"),
        V["signer_key"].replace("PRIVATE+KEY", "PUBLIC+KEY"),
        V["signer_key"].replace("+AYEK", "+BYEK"),
        V["verifier_keys"]["PeterNeumann"],
    ],
)
def test_bad_signer_keys_are_rejected(skey: str) -> None:
    with pytest.raises(KeyFormatError):
        Signer.from_private_key(skey)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("example.com/log", True),
        ("oid/1.3.6.1.4.1", True),
        ("", False),
        ("a b", False),
        ("a+b", False),
        ("a\u00a0b", False),
        ("a\u2003b", False),
        ("a\u3000b", False),
        ("a\tb", False),
        ("a\x01b", False),
    ],
)
def test_key_name_rules(name: str, valid: bool) -> None:
    assert is_valid_key_name(name) is valid


def test_verifier_fields_must_agree() -> None:
    with pytest.raises(KeyFormatError, match="does not match"):
        Verifier(PETER.name, PETER.key_id + 1, PETER.public_key)
    with pytest.raises(KeyFormatError, match="does not match"):
        Verifier("EnochRoot", PETER.key_id, PETER.public_key)
    with pytest.raises(KeyFormatError, match="31 bytes"):
        Verifier(PETER.name, PETER.key_id, PETER.public_key[:31])
