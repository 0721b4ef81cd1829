"""Generating inclusion and consistency proofs from stored perfect-subtree hashes.

Proofs are RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (PROOF / SUBPROOF), computed by walking
the same recursion iteratively. Each proof hash is the hash of some subtree ``D[a:b]``;
that subtree is perfect except possibly for one on the right border of the tree, which
is rebuilt from the O(log n) perfect subtrees that cover it. So a proof needs O(log n)
stored nodes, fetched in one call to :meth:`HashSource.get_nodes`.

Storage is the hub's business: anything that can return the hash of a perfect subtree
``(level, index)`` is a :class:`HashSource` (database rows, tlog-tiles, or the
:class:`MemoryTree` used in tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from audit.compact import CompactRange, NodeId
from audit.merkle import EMPTY_ROOT, node_hash

Span = tuple[int, int]
"""A subtree ``D[start:end]`` of the RFC 9162 recursion, as leaf indexes."""


class HashSource(Protocol):
    """Returns the hashes of perfect subtrees of one log."""

    def get_nodes(self, ids: Sequence[NodeId]) -> Sequence[bytes]:
        """Return the hash of each node in ``ids``, in the same order.

        Precondition: every node is complete in the stored tree, i.e. ``node.end`` is at
        most the number of leaves stored. The caller only asks for such nodes.
        """
        ...


def inclusion_proof(index: int, size: int, source: HashSource) -> list[bytes]:
    """Return the audit path PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf to root.

    Preconditions (else :class:`ValueError`): ``0 <= index < size``, and ``source``
    holds at least ``size`` leaves.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside the tree of size {size}")
    return _hash_spans(inclusion_spans(index, size), source)


def consistency_proof(size1: int, size2: int, source: HashSource) -> list[bytes]:
    """Return the consistency proof PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1.

    Preconditions (else :class:`ValueError`): ``0 < size1 <= size2`` (equal sizes give an
    empty proof), and ``source`` holds at least ``size2`` leaves.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"need 0 < size1 <= size2, got {size1} and {size2}")
    return _hash_spans(consistency_spans(size1, size2), source)


def inclusion_spans(index: int, size: int) -> list[Span]:
    """Return the subtrees whose hashes form PATH(index, D[size]), leaf to root.

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])        if m < k,
                    PATH(m - k, D[k:n]) : MTH(D[0:k])    otherwise.
    Precondition: ``0 <= index < size``.
    """
    spans: list[Span] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split_point(hi - lo)
        if index < lo + k:
            spans.append((lo + k, hi))
            hi = lo + k
        else:
            spans.append((lo, lo + k))
            lo += k
    spans.reverse()
    return spans


def consistency_spans(size1: int, size2: int) -> list[Span]:
    """Return the subtrees whose hashes form PROOF(size1, D[size2]), in proof order.

    SUBPROOF(m, D[n], b) = [] if m == n and b; [MTH(D[n])] if m == n and not b;
      SUBPROOF(m, D[0:k], b) : MTH(D[k:n])          if m <= k,
      SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])  otherwise.
    Precondition: ``0 < size1 <= size2``.
    """
    spans: list[Span] = []
    lo, hi, whole_old_tree = 0, size2, True
    while size1 != hi:
        k = _split_point(hi - lo)
        if size1 <= lo + k:
            spans.append((lo + k, hi))
            hi = lo + k
        else:
            spans.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    if not whole_old_tree:
        spans.append((lo, hi))
    spans.reverse()
    return spans


def perfect_cover(start: int, end: int) -> list[NodeId]:
    """Return the perfect subtrees covering leaves ``[start, end)``, left to right.

    For a subtree of the RFC 9162 recursion the sizes strictly decrease, so its hash is
    the right fold ``node_hash(n0, node_hash(n1, ...))`` of their hashes.
    """
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, _trailing_zeros(start))
        nodes.append(NodeId(level, start >> level))
        start += 1 << level
    return nodes


def _hash_spans(spans: Sequence[Span], source: HashSource) -> list[bytes]:
    covers = [perfect_cover(a, b) for a, b in spans]
    wanted = sorted({node for cover in covers for node in cover})
    if not wanted:
        return []
    hashes = list(source.get_nodes(wanted))
    if len(hashes) != len(wanted):
        raise ValueError(f"hash source returned {len(hashes)} hashes for {len(wanted)} nodes")
    by_id = dict(zip(wanted, hashes, strict=True))
    proof = []
    for cover in covers:
        h = by_id[cover[-1]]
        for node in reversed(cover[:-1]):
            h = node_hash(by_id[node], h)
        proof.append(h)
    return proof


def _split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1


class MemoryTree:
    """An in-memory log tree that stores every perfect-subtree hash; a :class:`HashSource`.

    For tests and small tools: memory is about two hashes per leaf.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        """Start with the given leaf hashes (each :data:`~audit.merkle.HASH_SIZE` bytes)."""
        self._levels: list[list[bytes]] = []
        self._range = CompactRange()
        for h in leaf_hashes:
            self.append(h)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._range.size

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash."""
        self._range.append(leaf_hash, self._store)

    def _store(self, node: NodeId, h: bytes) -> None:
        if node.level == len(self._levels):
            self._levels.append([])
        self._levels[node.level].append(h)

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """Return the stored hashes of ``ids``; :class:`KeyError` for an incomplete node."""
        out = []
        for node in ids:
            if node.end > self.size:
                raise KeyError(f"node {node} is not complete in a tree of size {self.size}")
            out.append(self._levels[node.level][node.index])
        return out

    def root(self, size: int | None = None) -> bytes:
        """Return MTH of the first ``size`` leaves (all leaves by default)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is outside 0..{self.size}")
        if size == 0:
            return EMPTY_ROOT
        (h,) = _hash_spans([(0, size)], self)
        return h

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof for leaf ``index`` in the tree of ``size`` leaves."""
        return inclusion_proof(index, self.size if size is None else size, self)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Return the consistency proof from ``size1`` to ``size2`` leaves."""
        return consistency_proof(size1, self.size if size2 is None else size2, self)
