"""Cross-check the fast Merkle code against the naive RFC 6962 reference (audit.reference).

Trees up to MAX_LEAVES leaves. One MemoryTree of MAX_LEAVES serves every smaller size,
because a perfect subtree's hash never changes as the tree grows.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from audit import (
    HASH_SIZE,
    CompactRange,
    MemoryTree,
    NodeId,
    ProofError,
    RootMismatch,
    consistency_proof,
    inclusion_proof,
    inclusion_proof_size,
    leaf_hash,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from audit import reference as ref

MAX_LEAVES = 2048
DATA = [b"leaf %d" % i for i in range(MAX_LEAVES)]
LEAF_HASHES = [leaf_hash(d) for d in DATA]
TREE = MemoryTree(LEAF_HASHES)

sizes = st.integers(min_value=1, max_value=MAX_LEAVES)
FAST = settings(max_examples=200, deadline=None)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(sizes)
    return draw(st.integers(1, size2)), size2


def flip(h: bytes, bit: int) -> bytes:
    out = bytearray(h)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# Roots


@FAST
@given(st.integers(0, MAX_LEAVES))
def test_root_hash_matches_reference(size: int) -> None:
    want = ref.mth(DATA[:size])
    assert root_hash(LEAF_HASHES[:size]) == want
    assert TREE.root(size) == want


def test_compact_range_root_at_every_size() -> None:
    cr = CompactRange()
    want = [ref.mth(DATA[:n]) for n in range(300)]
    for n in range(300):
        assert cr.root() == want[n], n
        assert len(cr.hashes) == n.bit_count()
        cr.append(LEAF_HASHES[n])


@FAST
@given(two_sizes())
def test_compact_range_resumes_from_saved_state(sizes: tuple[int, int]) -> None:
    size1, size2 = sizes
    first = CompactRange()
    first.extend(LEAF_HASHES[:size1])
    resumed = CompactRange(first.size, first.hashes)
    resumed.extend(LEAF_HASHES[size1:size2])
    assert resumed.root() == TREE.root(size2)
    assert [TREE.get_nodes([n])[0] for n in first.node_ids()] == list(first.hashes)


def test_compact_range_visits_every_perfect_node() -> None:
    seen: dict[NodeId, bytes] = {}
    cr = CompactRange()
    for h in LEAF_HASHES[:100]:
        cr.append(h, lambda node, value: seen.__setitem__(node, value))
    assert len(seen) == 100 + 50 + 25 + 12 + 6 + 3 + 1
    for node, value in seen.items():
        assert value == ref.mth(DATA[node.start : node.end])


def test_compact_range_rejects_bad_state() -> None:
    with pytest.raises(ValueError, match="has 2 hashes, got 1"):
        CompactRange(3, [b"\x00" * 32])
    with pytest.raises(ValueError, match="bytes"):
        CompactRange().append(b"short")


# Inclusion


@FAST
@given(size_and_index())
@example((MAX_LEAVES, 0))
@example((MAX_LEAVES, MAX_LEAVES - 1))
@example((MAX_LEAVES - 1, 1024))
@example((1025, 1024))
def test_inclusion_proof_matches_reference_and_verifies(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_proof(index, size, TREE)
    assert proof == ref.path(index, DATA[:size])
    assert len(proof) == inclusion_proof_size(index, size)
    root = ref.mth(DATA[:size])
    assert root_from_inclusion_proof(index, size, LEAF_HASHES[index], proof) == root
    verify_inclusion(index, size, LEAF_HASHES[index], proof, root)


def test_all_small_trees_exhaustively() -> None:
    """Every (index, size) and (size1, size2) up to 64 leaves, against the reference."""
    for size in range(1, 65):
        root = ref.mth(DATA[:size])
        for index in range(size):
            proof = inclusion_proof(index, size, TREE)
            assert proof == ref.path(index, DATA[:size])
            verify_inclusion(index, size, LEAF_HASHES[index], proof, root)
        for size1 in range(1, size + 1):
            proof = consistency_proof(size1, size, TREE)
            assert proof == ref.proof(size1, DATA[:size])
            verify_consistency(size1, size, ref.mth(DATA[:size1]), root, proof)


@FAST
@given(size_and_index(), st.data())
def test_any_bit_flip_in_an_inclusion_proof_is_rejected(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    proof = TREE.inclusion_proof(index, size)
    root = TREE.root(size)
    leaf = LEAF_HASHES[index]
    bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1))
    with pytest.raises(RootMismatch):
        verify_inclusion(index, size, flip(leaf, bit), proof, root)
    with pytest.raises(RootMismatch):
        verify_inclusion(index, size, leaf, proof, flip(root, bit))
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
        with pytest.raises(RootMismatch):
            verify_inclusion(index, size, leaf, bad, root)


@pytest.mark.parametrize("size", [1, 2, 5, 8, 13])
def test_every_single_bit_flip_is_rejected_exhaustively(size: int) -> None:
    root = TREE.root(size)
    for index in range(size):
        proof = TREE.inclusion_proof(index, size)
        for i, h in enumerate(proof):
            for bit in range(HASH_SIZE * 8):
                bad = [*proof[:i], flip(h, bit), *proof[i + 1 :]]
                with pytest.raises(RootMismatch):
                    verify_inclusion(index, size, LEAF_HASHES[index], bad, root)
    for size1 in range(1, size):
        proof = TREE.consistency_proof(size1, size)
        for i, h in enumerate(proof):
            for bit in range(0, HASH_SIZE * 8, 7):
                bad = [*proof[:i], flip(h, bit), *proof[i + 1 :]]
                with pytest.raises(RootMismatch):
                    verify_consistency(size1, size, TREE.root(size1), root, bad)


@FAST
@given(size_and_index())
def test_truncated_extended_or_moved_inclusion_proof_is_rejected(case: tuple[int, int]) -> None:
    size, index = case
    proof = TREE.inclusion_proof(index, size)
    root = TREE.root(size)
    leaf = LEAF_HASHES[index]
    with pytest.raises(ProofError, match=f"wrong proof size {len(proof) + 1}, want {len(proof)}"):
        verify_inclusion(index, size, leaf, [*proof, root], root)
    if proof:
        with pytest.raises(ProofError, match="wrong proof size"):
            verify_inclusion(index, size, leaf, proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(size, size, leaf, proof, root)
    if size > 1:  # the same leaf at any other position does not verify
        other = (index + 1) % size
        with pytest.raises(ProofError):
            verify_inclusion(other, size, leaf, proof, root)


def test_inclusion_preconditions() -> None:
    leaf = LEAF_HASHES[0]
    with pytest.raises(ProofError, match="outside the tree of size 0"):
        root_from_inclusion_proof(0, 0, leaf, [])
    with pytest.raises(ProofError, match="outside"):
        root_from_inclusion_proof(-1, 4, leaf, [])
    with pytest.raises(ProofError, match="leaf hash has 31 bytes, want 32"):
        root_from_inclusion_proof(0, 1, leaf[:31], [])
    proof = TREE.inclusion_proof(0, 4)
    with pytest.raises(ProofError, match="proof hash 1 has 33 bytes, want 32"):
        root_from_inclusion_proof(0, 4, leaf, [proof[0], proof[1] + b"\x00"])
    with pytest.raises(ProofError, match="wrong proof size 3, want 2"):
        root_from_inclusion_proof(0, 4, leaf, [*proof, proof[0]])
    with pytest.raises(ValueError):
        inclusion_proof(4, 4, TREE)


# Consistency


@FAST
@given(two_sizes())
@example((1, MAX_LEAVES))
@example((1024, MAX_LEAVES))
@example((1023, MAX_LEAVES - 1))
@example((MAX_LEAVES, MAX_LEAVES))
def test_consistency_proof_matches_reference_and_verifies(sizes: tuple[int, int]) -> None:
    size1, size2 = sizes
    proof = consistency_proof(size1, size2, TREE)
    assert proof == ref.proof(size1, DATA[:size2])
    root1, root2 = ref.mth(DATA[:size1]), ref.mth(DATA[:size2])
    assert root_from_consistency_proof(size1, size2, root1, proof) == root2
    verify_consistency(size1, size2, root1, root2, proof)


@FAST
@given(two_sizes(), st.data())
def test_any_bit_flip_in_a_consistency_proof_is_rejected(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    size1, size2 = sizes
    proof = TREE.consistency_proof(size1, size2)
    root1, root2 = TREE.root(size1), TREE.root(size2)
    bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1))
    with pytest.raises(RootMismatch):
        verify_consistency(size1, size2, flip(root1, bit), root2, proof)
    with pytest.raises(RootMismatch):
        verify_consistency(size1, size2, root1, flip(root2, bit), proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
        with pytest.raises(RootMismatch):
            verify_consistency(size1, size2, root1, root2, bad)


@FAST
@given(two_sizes())
def test_forked_log_is_detected(sizes: tuple[int, int]) -> None:
    """A tree of size2 whose first size1 leaves differ cannot be proven consistent."""
    size1, size2 = sizes
    forked = MemoryTree(
        [*LEAF_HASHES[: size1 - 1], leaf_hash(b"rewritten"), *LEAF_HASHES[size1:size2]]
    )
    proof = forked.consistency_proof(size1, size2)
    with pytest.raises(RootMismatch):
        verify_consistency(size1, size2, TREE.root(size1), forked.root(size2), proof)


def test_consistency_preconditions() -> None:
    r1, r4 = TREE.root(1), TREE.root(4)
    with pytest.raises(ProofError, match="smaller than the earlier size"):
        verify_consistency(4, 1, r4, r1, [])
    with pytest.raises(ProofError, match="empty tree is meaningless"):
        verify_consistency(0, 4, TREE.root(0), r4, [])
    with pytest.raises(ProofError, match="wrong proof size 1, want 0"):
        verify_consistency(4, 4, r4, r4, [r1])
    with pytest.raises(RootMismatch):
        verify_consistency(4, 4, r4, r1, [])
    verify_consistency(0, 0, TREE.root(0), TREE.root(0), [])
    with pytest.raises(ValueError):
        consistency_proof(0, 4, TREE)
    assert consistency_proof(4, 4, TREE) == []


# Proof generation reads O(log n) stored nodes, in one call


class CountingSource:
    def __init__(self, tree: MemoryTree) -> None:
        self.tree = tree
        self.calls: list[Sequence[NodeId]] = []

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        self.calls.append(ids)
        return self.tree.get_nodes(ids)


@FAST
@given(size_and_index(), two_sizes())
def test_proofs_read_logarithmically_many_nodes(
    case: tuple[int, int], sizes: tuple[int, int]
) -> None:
    size, index = case
    bound = 2 * MAX_LEAVES.bit_length() + 2
    for make_proof, args, tree_size in [
        (inclusion_proof, (index, size), size),
        (consistency_proof, sizes, sizes[1]),
    ]:
        source = CountingSource(TREE)
        make_proof(*args, source)
        assert len(source.calls) <= 1  # one batched read (none for an empty proof)
        for ids in source.calls:
            assert len(ids) <= bound
            assert all(node.end <= tree_size for node in ids)
