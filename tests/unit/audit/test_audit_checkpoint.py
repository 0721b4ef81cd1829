"""C2SP tlog-checkpoint: canonical round trip, strict parsing, signing, consistency."""

from __future__ import annotations

import base64

import pytest

from audit import (
    EMPTY_ROOT,
    Checkpoint,
    CheckpointFormatError,
    InconsistentCheckpoints,
    MemoryTree,
    SignatureError,
    Signer,
    checkpoint_of,
    generate_signer_key,
    leaf_hash,
    open_checkpoint,
    sign_checkpoint,
    verify_checkpoint_consistency,
)

LOG_ORIGIN = "puente.example/federal"  # the origin of the log_signer fixture
SPEC_EXAMPLE = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def test_spec_example_round_trips() -> None:
    cp = Checkpoint.from_text(SPEC_EXAMPLE)
    assert cp == Checkpoint("example.com/behind-the-sofa", 20852163, ROOT)
    assert cp.to_text() == SPEC_EXAMPLE


def test_extension_lines_round_trip() -> None:
    text = SPEC_EXAMPLE + "ext one\next two\n"
    cp = Checkpoint.from_text(text)
    assert cp.extensions == ("ext one", "ext two")
    assert cp.to_text() == text


def test_empty_tree_checkpoint() -> None:
    cp = Checkpoint(LOG_ORIGIN, 0, EMPTY_ROOT)
    assert Checkpoint.from_text(cp.to_text()) == cp
    assert cp.to_text().split("\n")[1] == "0"


B64_ROOT = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    "text",
    [
        "",
        "origin\n",
        "origin\n5\n",
        f"origin\n5\n{B64_ROOT}",  # no final newline
        f"\n5\n{B64_ROOT}\n",  # empty origin
        f"origin\n05\n{B64_ROOT}\n",  # leading zero
        f"origin\n+5\n{B64_ROOT}\n",
        f"origin\n-5\n{B64_ROOT}\n",
        f"origin\n 5\n{B64_ROOT}\n",
        f"origin\n5 \n{B64_ROOT}\n",
        f"origin\n1_000\n{B64_ROOT}\n",
        f"origin\n\u0665\n{B64_ROOT}\n",  # Arabic-Indic digit five
        f"origin\n{2**64}\n{B64_ROOT}\n",
        "origin\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # no padding
        "origin\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",  # non-canonical bits
        "origin\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx\n",  # 30 bytes
        "origin\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n",  # URL alphabet
        f"origin\n5\n{B64_ROOT}\n\n",  # empty extension line
        f"origin\n5\n{B64_ROOT}\next\r\n",
        f"ori\tgin\n5\n{B64_ROOT}\n",
    ],
)
def test_strict_parse_rejections(text: str) -> None:
    with pytest.raises(CheckpointFormatError):
        Checkpoint.from_text(text)


def test_constructor_validates() -> None:
    with pytest.raises(CheckpointFormatError, match="31 bytes, want 32"):
        Checkpoint(LOG_ORIGIN, 1, ROOT[:31])
    with pytest.raises(CheckpointFormatError):
        Checkpoint(LOG_ORIGIN, -1, ROOT)
    with pytest.raises(CheckpointFormatError):
        Checkpoint("a\nb", 1, ROOT)


def test_sign_and_open(log_signer: Signer, tree: MemoryTree) -> None:
    cp = Checkpoint(LOG_ORIGIN, tree.size, tree.root())
    signed = sign_checkpoint(cp, [log_signer])
    assert signed.startswith(cp.to_text() + "\n\u2014 " + LOG_ORIGIN + " ")
    assert open_checkpoint(signed, [log_signer.verifier()], origin=LOG_ORIGIN) == cp
    assert checkpoint_of(signed) == cp
    with pytest.raises(SignatureError, match="origin"):
        open_checkpoint(signed, [log_signer.verifier()], origin="puente.example/other")
    other = Signer.from_private_key(generate_signer_key(LOG_ORIGIN)[0])
    with pytest.raises(SignatureError):
        open_checkpoint(signed, [other.verifier()])


def test_consistent_checkpoints(tree: MemoryTree) -> None:
    for size1 in range(0, tree.size + 1):
        old = Checkpoint(LOG_ORIGIN, size1, tree.root(size1))
        new = Checkpoint(LOG_ORIGIN, tree.size, tree.root())
        proof = tree.consistency_proof(size1) if size1 else []
        verify_checkpoint_consistency(old, new, proof)


def test_forked_log_is_reported_as_inconsistent(tree: MemoryTree, entries: list[bytes]) -> None:
    fork = MemoryTree(leaf_hash(e) for e in [*entries[:5], b"inserted", *entries[5:-1]])
    old = Checkpoint(LOG_ORIGIN, 10, tree.root(10))
    new = Checkpoint(LOG_ORIGIN, fork.size, fork.root())
    with pytest.raises(InconsistentCheckpoints, match="does not extend checkpoint 10"):
        verify_checkpoint_consistency(old, new, fork.consistency_proof(10))
    same_size = Checkpoint(LOG_ORIGIN, 10, fork.root(10))
    with pytest.raises(InconsistentCheckpoints, match="mismatch"):
        verify_checkpoint_consistency(old, same_size, [])


def test_rollback_and_other_origin_are_inconsistent(tree: MemoryTree) -> None:
    new = Checkpoint(LOG_ORIGIN, tree.size, tree.root())
    old = Checkpoint(LOG_ORIGIN, 5, tree.root(5))
    with pytest.raises(InconsistentCheckpoints, match="smaller"):
        verify_checkpoint_consistency(new, old, [])
    with pytest.raises(InconsistentCheckpoints, match="different logs"):
        verify_checkpoint_consistency(Checkpoint("x.example", 5, tree.root(5)), new, [])
    with pytest.raises(InconsistentCheckpoints, match="want 0 from the empty tree"):
        verify_checkpoint_consistency(Checkpoint(LOG_ORIGIN, 0, EMPTY_ROOT), new, [EMPTY_ROOT])
    with pytest.raises(InconsistentCheckpoints):
        verify_checkpoint_consistency(Checkpoint(LOG_ORIGIN, 0, ROOT), new, [])
