"""Merkle tree hashing and proof verification, after RFC 9162 §2.1 (RFC 6962 §2.1).

The tree is the RFC 6962 Merkle Tree Hash over SHA-256::

    MTH({})     = SHA-256()
    MTH({d(0)}) = SHA-256(0x00 || d(0))                        leaf hash
    MTH(D[n])   = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  node hash,
                  k the largest power of two smaller than n

Verification follows transparency-dev/merkle ``proof/verify.go``: an inclusion proof for
leaf ``index`` in a tree of ``size`` splits into an *inner* part (below the level where the
paths to ``index`` and ``size - 1`` meet, siblings on either side) and a *border* part
(left siblings along the right border of the tree). Knowing the split gives the exact
proof length up front, so a wrong proof is refused before any hashing.

Every function here is pure. Hashes are ``bytes`` of length :data:`HASH_SIZE`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from audit.errors import ProofError, RootMismatch

HASH_SIZE = 32
"""Length in bytes of every leaf hash, node hash, root hash and proof hash (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): the root hash of the empty tree."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return ``SHA-256(0x00 || data)``, the hash of a leaf holding ``data``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``, the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """Return MTH of the leaves whose hashes are given, in order (RFC 9162 §2.1.1).

    Streams the leaves once, keeping only the roots of the perfect subtrees seen so far
    (O(log n) memory). Precondition: each item is a leaf hash (see :func:`leaf_hash`),
    not raw leaf data.
    """
    sha256 = hashlib.sha256
    stack: list[bytes] = []
    size = 0
    for h in leaf_hashes:
        carry = size
        while carry & 1:
            h = sha256(_NODE_PREFIX + stack.pop() + h).digest()
            carry >>= 1
        stack.append(h)
        size += 1
    if not stack:
        return EMPTY_ROOT
    root = stack[-1]
    for left in reversed(stack[:-1]):
        root = sha256(_NODE_PREFIX + left + root).digest()
    return root


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root hash that ``proof`` yields for leaf ``index`` of a tree of ``size``.

    This is RFC 9162 §2.1.3.2 without the final comparison. Preconditions checked (else
    :class:`ProofError`): ``0 <= index < size``; ``leaf_hash`` and every proof hash are
    :data:`HASH_SIZE` bytes; ``len(proof)`` is exactly the audit path length for
    ``(index, size)``. Proof hashes are ordered from the leaf's sibling up to the root's
    child, as in RFC 9162 §2.1.3.1.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside the tree of size {size}")
    _check_hash_size(leaf_hash, "leaf hash")
    inner, border = _decompose_inclusion_proof(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {inner + border}")
    _check_proof_hashes(proof)
    res = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows leaf ``index`` with ``leaf_hash`` in the tree ``(size, root)``.

    Returns nothing on success. Raises :class:`ProofError` for a malformed proof (see
    :func:`root_from_inclusion_proof`) and :class:`RootMismatch` when the proof yields a
    different root.
    """
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if calculated != root:
        raise RootMismatch(calculated, root)


def root_from_consistency_proof(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root of the tree of ``size2`` that ``proof`` extends ``(size1, root1)`` to.

    RFC 9162 §2.1.4.2 without the final comparison against the second root. The first
    root is checked on the way: if the proof does not rebuild ``root1`` this raises
    :class:`RootMismatch`. Preconditions checked (else :class:`ProofError`):

    - ``0 <= size1 <= size2``;
    - if ``size1 == size2`` the proof is empty (and ``root1`` is returned unchanged);
    - otherwise ``size1 > 0``: a proof from the empty tree is meaningless, since every
      tree extends it;
    - every proof hash is :data:`HASH_SIZE` bytes and ``len(proof)`` is exact.
    """
    if size1 < 0 or size2 < size1:
        raise ProofError(f"tree size {size2} is smaller than the earlier size {size1}")
    if size1 == size2:
        if proof:
            raise ProofError(f"wrong proof size {len(proof)}, want 0 for equal tree sizes")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise RootMismatch(root1, EMPTY_ROOT, "empty tree root")
        return root1
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if not proof:
        raise ProofError(f"wrong proof size 0 for sizes {size1} and {size2}")

    inner, border = _decompose_inclusion_proof(size1 - 1, size2)
    shift = _trailing_zeros(size1)
    inner -= shift  # shift < inner when size1 < size2
    # The proof starts with the hash of the perfect subtree of size 2**shift that ends
    # at size1, unless size1 is that very subtree (a power of two): then it is root1.
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    want = start + inner + border
    if len(proof) != want:
        raise ProofError(f"wrong proof size {len(proof)}, want {want}")
    _check_proof_hashes(proof)
    path = proof[start:]  # now a suffix of the inclusion proof of leaf size1 - 1

    mask = (size1 - 1) >> shift  # chaining starts at level `shift`
    hash1 = _chain_inner_right(seed, path[:inner], mask)
    hash1 = _chain_border_right(hash1, path[inner:])
    if hash1 != root1:
        raise RootMismatch(hash1, root1, "first root")
    hash2 = _chain_inner(seed, path[:inner], mask)
    return _chain_border_right(hash2, path[inner:])


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(size2, root2)`` is an append-only extension of ``(size1, root1)``.

    Returns nothing on success. When the sizes are equal the proof must be empty and the
    roots equal byte for byte (and equal to the empty-tree root for size 0). Raises
    :class:`ProofError` for a malformed proof (see :func:`root_from_consistency_proof`)
    and :class:`RootMismatch` when either root does not match.
    """
    calculated = root_from_consistency_proof(size1, size2, root1, proof)
    if calculated != root2:
        raise RootMismatch(calculated, root2, "second root")


def inclusion_proof_size(index: int, size: int) -> int:
    """Return the number of hashes in an inclusion proof for leaf ``index < size``."""
    inner, border = _decompose_inclusion_proof(index, size)
    return inner + border


def _decompose_inclusion_proof(index: int, size: int) -> tuple[int, int]:
    """Split the audit path of ``index`` in a tree of ``size`` into (inner, border) lengths.

    The split is where the paths to ``index`` and ``size - 1`` diverge.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash ``seed`` up through ``proof``, siblings left or right as the bits of ``index`` say."""
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like :func:`_chain_inner` but only with left siblings: the earlier, smaller subtree."""
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Hash ``seed`` up the right border, where every proof hash is a left sibling."""
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1


def _check_hash_size(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} has {len(h)} bytes, want {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        _check_hash_size(h, f"proof hash {i}")
