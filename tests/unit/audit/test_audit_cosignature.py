"""C2SP tlog-cosignature (cosignature/v1, Ed25519, key type 0x04)."""

from __future__ import annotations

import base64

import nacl.signing
import pytest

from audit import (
    COSIGNATURE_KEY_TYPE,
    Checkpoint,
    Cosignature,
    CosignatureSigner,
    CosignatureVerifier,
    KeyFormatError,
    MemoryTree,
    Note,
    NoteSignature,
    QuorumError,
    SignatureError,
    Signer,
    Verifier,
    cosigned_message,
    generate_cosigner_key,
    open_checkpoint,
    sign_checkpoint,
    sign_note,
    verify_cosignatures,
)
from audit.keys import compute_key_id
from audit.witness import format_cosignature_response, parse_cosignature_response

SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_COSIGNATURE_LINE = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlr"
    "DJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
T = 1_700_000_000


@pytest.fixture
def signed(log_signer: Signer, tree: MemoryTree) -> str:
    return sign_checkpoint(Checkpoint(log_signer.name, tree.size, tree.root()), [log_signer])


def test_signed_message_is_the_spec_layout() -> None:
    assert cosigned_message(SPEC_CHECKPOINT, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + SPEC_CHECKPOINT.encode()
    )
    with pytest.raises(ValueError):
        cosigned_message(SPEC_CHECKPOINT, 2**63)


def test_spec_example_line_decodes() -> None:
    cosig = Cosignature.from_note_signature(NoteSignature.from_line(SPEC_COSIGNATURE_LINE))
    assert cosig.name == "witness.example.com/w1"
    assert cosig.timestamp == 1679315147  # the time in the spec's example message
    assert len(cosig.signature) == 64
    assert cosig.to_note_signature().to_line() == SPEC_COSIGNATURE_LINE


def test_cosignature_verifies_independently(
    witnesses: list[CosignatureSigner], signed: str
) -> None:
    """Check our output with PyNaCl directly against the message the spec defines."""
    body = Note.from_text(signed).text
    cosig = witnesses[0].cosign(body, T)
    public_key = witnesses[0].verifier().public_key
    assert cosig.key_id == compute_key_id(witnesses[0].name, 0x04, public_key)
    msg = b"cosignature/v1\ntime %d\n" % T + body.encode()
    nacl.signing.VerifyKey(public_key).verify(msg, cosig.signature)
    raw = base64.b64decode(cosig.to_note_signature().to_line().split(" ")[2])
    assert raw[:4] == cosig.key_id.to_bytes(4, "big")
    assert raw[4:12] == T.to_bytes(8, "big")
    assert len(raw) == 76


def test_quorum_of_witnesses(
    log_signer: Signer, witnesses: list[CosignatureSigner], signed: str
) -> None:
    body = Note.from_text(signed).text
    note = Note.from_text(signed).with_signatures(
        w.cosign(body, T + i).to_note_signature() for i, w in enumerate(witnesses[:2])
    )
    text = note.to_text()
    verifiers = [w.verifier() for w in witnesses]
    cosigs = verify_cosignatures(text, verifiers, quorum=2)
    assert [(c.name, c.timestamp) for c in cosigs] == [
        (witnesses[0].name, T),
        (witnesses[1].name, T + 1),
    ]
    with pytest.raises(QuorumError, match=r"2 witness cosignatures verified .*want at least 3"):
        verify_cosignatures(text, verifiers, quorum=3)
    # The log's own signature is still there and still verifies; witnesses don't count for it.
    assert open_checkpoint(text, [log_signer.verifier()]).size == 21
    # Cosignatures alone do not make a checkpoint signed by the log.
    only_witnesses = Note(note.text, note.signatures[1:]).to_text()
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_checkpoint(only_witnesses, [log_signer.verifier()])
    with pytest.raises(ValueError):
        verify_cosignatures(text, verifiers, quorum=4)


def test_sign_note_with_timestamped_signer(
    log_signer: Signer, witnesses: list[CosignatureSigner], tree: MemoryTree
) -> None:
    body = Checkpoint(log_signer.name, tree.size, tree.root()).to_text()
    text = sign_note(body, [log_signer, witnesses[0].at(T), witnesses[1].at(T)])
    assert len(verify_cosignatures(text, [w.verifier() for w in witnesses], 2)) == 2


def test_bad_cosignature_by_known_witness_is_rejected(
    witnesses: list[CosignatureSigner], signed: str
) -> None:
    body = Note.from_text(signed).text
    cosig = witnesses[0].cosign(body, T)
    # Replaying the signature under another timestamp breaks it: the time is signed.
    moved = Cosignature(cosig.name, cosig.key_id, T + 1, cosig.signature)
    text = Note.from_text(signed).with_signatures([moved.to_note_signature()]).to_text()
    with pytest.raises(SignatureError, match="invalid signature by known key"):
        verify_cosignatures(text, [witnesses[0].verifier()], 1)


def test_one_key_under_two_names_counts_once(
    witnesses: list[CosignatureSigner], signed: str
) -> None:
    body = Note.from_text(signed).text
    key = witnesses[0]
    seed_twin = CosignatureSigner("alias.puente.example", bytes([1]) * 32)
    assert seed_twin.verifier().public_key == key.verifier().public_key
    sigs = [key.cosign(body, T).to_note_signature(), seed_twin.cosign(body, T).to_note_signature()]
    text = Note.from_text(signed).with_signatures(sigs).to_text()
    verifiers = [key.verifier(), seed_twin.verifier()]
    assert len(verify_cosignatures(text, verifiers, 1)) == 2
    with pytest.raises(QuorumError):
        verify_cosignatures(text, verifiers, 2)


def test_note_keys_and_cosignature_keys_do_not_mix(log_signer: Signer) -> None:
    skey, vkey = generate_cosigner_key("witness.puente.example")
    assert CosignatureSigner.from_private_key(skey).vkey == vkey
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == COSIGNATURE_KEY_TYPE
    with pytest.raises(KeyFormatError):
        Verifier.from_vkey(vkey)
    with pytest.raises(KeyFormatError):
        Signer.from_private_key(skey)
    with pytest.raises(KeyFormatError):
        CosignatureVerifier.from_vkey(log_signer.vkey)
    # Same Ed25519 key, different type byte: a different key ID.
    assert CosignatureSigner(log_signer.name, bytes(range(32))).key_id != log_signer.key_id


def test_cosigner_repr_hides_the_private_key(witnesses: list[CosignatureSigner]) -> None:
    assert "PRIVATE" not in repr(witnesses[0]) and "AQEB" not in repr(witnesses[0])


def test_cosign_refuses_non_checkpoints(witnesses: list[CosignatureSigner]) -> None:
    with pytest.raises(Exception, match="line"):
        witnesses[0].cosign("not a checkpoint\n", T)


def test_witness_response_round_trip(witnesses: list[CosignatureSigner], signed: str) -> None:
    body = Note.from_text(signed).text
    sigs = [w.cosign(body, T).to_note_signature() for w in witnesses]
    response = format_cosignature_response(sigs)
    assert parse_cosignature_response(response) == tuple(sigs)
    merged = Note.from_text(signed).with_signatures(parse_cosignature_response(response))
    assert len(verify_cosignatures(merged.to_text(), [w.verifier() for w in witnesses], 3)) == 3
