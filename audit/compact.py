"""Compact ranges: the state of a growing Merkle tree in O(log n) hashes.

A tree of ``size`` leaves is covered, left to right, by one perfect subtree per set bit
of ``size`` (largest first). Their root hashes are all that is needed to append leaves
and to compute the root of the tree at its current size; this is the "compact range"
of transparency-dev/merkle ``compact/range.go``, here always starting at leaf 0.

The offline verifier streams an export through a :class:`CompactRange`, comparing
:meth:`CompactRange.root` with each checkpoint as it reaches that size. The hub's
sequencer persists :attr:`CompactRange.hashes` and stores every node reported to the
``visit`` callback, so proofs can later be served from stored nodes (see
:mod:`audit.prover`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from audit.merkle import EMPTY_ROOT, HASH_SIZE

_NODE_PREFIX = b"\x01"


@dataclass(frozen=True, order=True)
class NodeId:
    """A perfect subtree: leaves ``[index * 2**level, (index + 1) * 2**level)``.

    Level 0 nodes are leaf hashes. The hash of node ``(level, index)`` never changes once
    the tree has grown past its last leaf, which is why nodes can be stored and reused.
    """

    level: int
    index: int

    def __post_init__(self) -> None:
        if self.level < 0 or self.index < 0:
            raise ValueError(f"node level and index must be >= 0, got {self.level}, {self.index}")

    @property
    def start(self) -> int:
        """Index of the first leaf under this node."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """Index one past the last leaf under this node."""
        return (self.index + 1) << self.level


NodeVisitor = Callable[[NodeId, bytes], None]
"""Called with each perfect-subtree node (leaves included) as it becomes complete."""


class CompactRange:
    """Roots of the perfect subtrees covering leaves ``[0, size)``, largest first.

    Mutable builder (not a value): append leaf hashes, read :meth:`root` at any size.
    Memory is ``size.bit_count()`` hashes; appending costs one leaf plus, amortised, one
    node hash.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Resume from a saved state, or start empty.

        Preconditions (else :class:`ValueError`): ``size >= 0``; ``hashes`` are the
        :data:`~audit.merkle.HASH_SIZE`-byte roots of the perfect subtrees of ``size``,
        largest first, so ``len(hashes) == size.bit_count()``.
        """
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a range of size {size} has {size.bit_count()} hashes, got {len(hashes)}"
            )
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"every hash must be {HASH_SIZE} bytes")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots, largest (leftmost) first: the state to persist."""
        return tuple(self._hashes)

    def node_ids(self) -> list[NodeId]:
        """The :class:`NodeId` of each of :attr:`hashes`, in the same order."""
        ids = []
        start = 0
        for level in range(self._size.bit_length() - 1, -1, -1):
            if (self._size >> level) & 1:
                ids.append(NodeId(level, start >> level))
                start += 1 << level
        return ids

    def copy(self) -> CompactRange:
        """Return an independent copy of this range."""
        return CompactRange(self._size, self._hashes)

    def append(self, leaf_hash: bytes, visit: NodeVisitor | None = None) -> None:
        """Append one leaf hash; call ``visit`` for the leaf and each node it completes.

        Precondition: ``leaf_hash`` is a :data:`~audit.merkle.HASH_SIZE`-byte leaf hash.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash has {len(leaf_hash)} bytes, want {HASH_SIZE}")
        hashes = self._hashes
        index = self._size
        h = leaf_hash
        level = 0
        if visit is not None:
            visit(NodeId(0, index), h)
        while index & 1:
            h = hashlib.sha256(_NODE_PREFIX + hashes.pop() + h).digest()
            index >>= 1
            level += 1
            if visit is not None:
                visit(NodeId(level, index), h)
        hashes.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes (fast path, no visitor).

        Precondition: each item is a :data:`~audit.merkle.HASH_SIZE`-byte leaf hash.
        """
        sha256 = hashlib.sha256
        hashes = self._hashes
        size = self._size
        try:
            for h in leaf_hashes:
                if len(h) != HASH_SIZE:
                    raise ValueError(f"leaf hash {size} has {len(h)} bytes, want {HASH_SIZE}")
                carry = size
                while carry & 1:
                    h = sha256(_NODE_PREFIX + hashes.pop() + h).digest()
                    carry >>= 1
                hashes.append(h)
                size += 1
        finally:
            self._size = size

    def root(self) -> bytes:
        """Return MTH of the leaves appended so far (the empty-tree hash if none)."""
        if not self._hashes:
            return EMPTY_ROOT
        root = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            root = hashlib.sha256(_NODE_PREFIX + left + root).digest()
        return root

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size})"
