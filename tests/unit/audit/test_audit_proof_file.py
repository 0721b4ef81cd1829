"""C2SP tlog-proof ``.tlog-proof`` files and the tlog-witness add-checkpoint request."""

from __future__ import annotations

import base64

import pytest

from audit import (
    AddCheckpointRequest,
    Checkpoint,
    CosignatureSigner,
    MemoryTree,
    Note,
    ProofError,
    ProofFileFormatError,
    QuorumError,
    RootMismatch,
    SignatureError,
    Signer,
    TlogProof,
    leaf_hash,
    make_proof_file,
    sign_note,
    verify_proof_file,
)
from audit.errors import in_spanish
from audit.proof_file import EntryNotProven

T = 1_700_000_000


@pytest.fixture
def signed(log_signer: Signer, witnesses: list[CosignatureSigner], tree: MemoryTree) -> str:
    body = Checkpoint(log_signer.name, tree.size, tree.root()).to_text()
    return sign_note(body, [log_signer, witnesses[0].at(T), witnesses[1].at(T)])


def test_spec_layout_and_round_trip(tree: MemoryTree, signed: str) -> None:
    text = make_proof_file(7, tree.inclusion_proof(7), signed, extra=b"context")
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(b"context").decode()
    assert lines[2] == "index 7"
    proof_lines = lines[3 : 3 + len(tree.inclusion_proof(7))]
    assert [base64.b64decode(x) for x in proof_lines] == tree.inclusion_proof(7)
    assert text.endswith("\n\n" + signed)
    parsed = TlogProof.from_text(text)
    assert parsed == TlogProof(7, tuple(tree.inclusion_proof(7)), signed, b"context")
    assert parsed.to_text() == text
    no_extra = make_proof_file(0, tree.inclusion_proof(0), signed)
    assert no_extra.split("\n")[1] == "index 0"
    assert TlogProof.from_text(no_extra).extra is None


def test_single_leaf_tree_has_no_proof_lines(log_signer: Signer) -> None:
    one = MemoryTree([leaf_hash(b"only")])
    signed = sign_note(Checkpoint(log_signer.name, 1, one.root()).to_text(), [log_signer])
    text = make_proof_file(0, [], signed)
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n")
    verify_proof_file(text, b"only", [log_signer.verifier()])


def test_verify_every_entry(
    log_signer: Signer,
    witnesses: list[CosignatureSigner],
    tree: MemoryTree,
    entries: list[bytes],
    signed: str,
) -> None:
    wits = [w.verifier() for w in witnesses]
    for index, entry in enumerate(entries):
        text = make_proof_file(index, tree.inclusion_proof(index), signed)
        result = verify_proof_file(
            text, entry, [log_signer.verifier()], origin=log_signer.name, witnesses=wits, quorum=2
        )
        assert result.index == index
        assert result.checkpoint.size == tree.size
        assert [c.timestamp for c in result.cosignatures] == [T, T]
        verify_proof_file(text, None, [log_signer.verifier()], leaf=leaf_hash(entry))


def test_verification_failures_map_to_their_errors(
    log_signer: Signer,
    witnesses: list[CosignatureSigner],
    tree: MemoryTree,
    entries: list[bytes],
    signed: str,
) -> None:
    log = [log_signer.verifier()]
    text = make_proof_file(3, tree.inclusion_proof(3), signed)
    with pytest.raises(EntryNotProven) as caught:  # modified entry
        verify_proof_file(text, entries[3] + b" ", log)
    assert isinstance(caught.value.__cause__, RootMismatch)
    with pytest.raises(EntryNotProven) as caught:  # another entry's proof
        verify_proof_file(text, entries[4], log)
    assert isinstance(caught.value.__cause__, RootMismatch)
    stranger = Signer("puente.example/federal", bytes(32))
    with pytest.raises(SignatureError):  # unknown log key, even with the same name
        verify_proof_file(text, entries[3], [stranger.verifier()])
    with pytest.raises(SignatureError, match="origin"):
        verify_proof_file(text, entries[3], log, origin="puente.example/other")
    with pytest.raises(QuorumError):
        verify_proof_file(
            text, entries[3], log, witnesses=[w.verifier() for w in witnesses], quorum=3
        )
    beyond = make_proof_file(tree.size, tree.inclusion_proof(3), signed)
    with pytest.raises(ProofError, match="outside the tree of size 21"):
        verify_proof_file(beyond, entries[3], log)
    short = make_proof_file(3, tree.inclusion_proof(3)[:-1], signed)
    with pytest.raises(ProofError, match="wrong proof size 4, want 5"):
        verify_proof_file(short, entries[3], log)
    forged = signed.replace(
        base64.b64encode(tree.root()).decode(), base64.b64encode(tree.root(20)).decode()
    )
    with pytest.raises(SignatureError):
        verify_proof_file(make_proof_file(3, tree.inclusion_proof(3, 20), forged), entries[3], log)
    with pytest.raises(ValueError):
        verify_proof_file(text, entries[3], log, leaf=leaf_hash(entries[3]))


@pytest.mark.parametrize("tamper", ["entry", "proof hash", "index"])
def test_a_failed_inclusion_names_the_entry_and_the_checkpoint(
    log_signer: Signer, tree: MemoryTree, entries: list[bytes], signed: str, tamper: str
) -> None:
    proof = list(tree.inclusion_proof(3))
    index, entry = 3, entries[3]
    if tamper == "entry":
        entry = entries[3] + b" "
    elif tamper == "proof hash":
        proof[1] = bytes(32)
    else:
        index = 5
    text = make_proof_file(index, proof, signed)
    with pytest.raises(EntryNotProven) as caught:
        verify_proof_file(text, entry, [log_signer.verifier()])
    assert caught.value.index == index
    assert caught.value.checkpoint.size == 21
    assert str(caught.value).startswith(
        f"entry {index} is not proven to be in checkpoint 21 of puente.example/federal: "
    )
    assert in_spanish(caught.value).startswith(
        f"la entrada {index} no queda probada en el punto de control 21 de puente.example/federal: "
    )
    assert isinstance(caught.value, ProofError)


def _valid(tree: MemoryTree, signed: str) -> str:
    return make_proof_file(3, tree.inclusion_proof(3), signed, extra=b"x")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("c2sp.org/tlog-proof@v1\n", "c2sp.org/tlog-proof@v2\n"),
        ("c2sp.org/tlog-proof@v1\n", ""),
        ("index 3\n", "index 03\n"),
        ("index 3\n", "index -3\n"),
        ("index 3\n", "index  3\n"),
        ("index 3\n", ""),
        ("extra eA==\n", "extra \n"),
        ("extra eA==\n", "extra eA\n"),
        ("extra eA==\n", "extra  eA==\n"),
        ("extra eA==\nindex 3\n", "index 3\nextra eA==\n"),
        ("\n\n", "\n"),
        ("\n\n", "\nnot base64\n\n"),
        ("\n\n", "\nAAAA\n\n"),  # a 3-byte hash
        ("\n\n", "\n\n\n"),  # blank line before the checkpoint
    ],
)
def test_strict_parse_rejections(tree: MemoryTree, signed: str, old: str, new: str) -> None:
    text = _valid(tree, signed)
    assert old in text
    with pytest.raises(ProofFileFormatError):
        TlogProof.from_text(text.replace(old, new, 1))


def test_checkpoint_must_be_a_signed_checkpoint(tree: MemoryTree, signed: str) -> None:
    text = _valid(tree, signed)
    with pytest.raises(ProofFileFormatError):
        TlogProof.from_text(text.rstrip("\n"))
    body = Note.from_text(signed).text
    with pytest.raises(ProofFileFormatError):
        TlogProof.from_text(text.replace(signed, body))
    with pytest.raises(ProofFileFormatError):
        TlogProof(3, (), signed, b"")


# tlog-witness add-checkpoint request


def test_add_checkpoint_request_round_trip(tree: MemoryTree, signed: str) -> None:
    proof = tree.consistency_proof(13)
    request = AddCheckpointRequest(13, tuple(proof), signed)
    text = request.to_text()
    assert text.startswith("old 13\n" + base64.b64encode(proof[0]).decode() + "\n")
    assert text.endswith("\n\n" + signed)
    assert AddCheckpointRequest.from_text(text) == request
    first = AddCheckpointRequest(0, (), signed).to_text()
    assert first.startswith("old 0\n\n")
    assert AddCheckpointRequest.from_text(first).old_size == 0


@pytest.mark.parametrize("first_line", ["old 013", "old", "old -1", "new 13", "old 1 3"])
def test_add_checkpoint_request_rejections(signed: str, first_line: str) -> None:
    with pytest.raises(ProofFileFormatError):
        AddCheckpointRequest.from_text(f"{first_line}\n\n{signed}")


def test_add_checkpoint_request_proof_limit(signed: str) -> None:
    line = base64.b64encode(bytes(32)).decode()
    ok = "old 5\n" + (line + "\n") * 63 + "\n" + signed
    assert len(AddCheckpointRequest.from_text(ok).consistency_proof) == 63
    with pytest.raises(ProofFileFormatError, match="at most 63"):
        AddCheckpointRequest.from_text("old 5\n" + (line + "\n") * 64 + "\n" + signed)
