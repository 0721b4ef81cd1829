"""Naive RFC 6962 §2.1 reference: MTH, PATH and PROOF written as the RFC states them.

Recursive and quadratic-ish; for tests only, to cross-check :mod:`audit.merkle` and
:mod:`audit.prover` on small trees (a few thousand leaves). Inputs are raw leaf data
``D[n]``, not leaf hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _largest_power_of_two_smaller_than(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(data: Sequence[bytes]) -> bytes:
    """MTH(D[n]), RFC 6962 §2.1."""
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = _largest_power_of_two_smaller_than(n)
    return hashlib.sha256(b"\x01" + mth(data[:k]) + mth(data[k:])).digest()


def path(m: int, data: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), the audit path of leaf ``m`` (RFC 6962 §2.1.1). Requires 0 <= m < n."""
    n = len(data)
    if not 0 <= m < n:
        raise ValueError(f"leaf {m} outside a tree of {n}")
    if n == 1:
        return []
    k = _largest_power_of_two_smaller_than(n)
    if m < k:
        return [*path(m, data[:k]), mth(data[k:])]
    return [*path(m - k, data[k:]), mth(data[:k])]


def proof(m: int, data: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), RFC 6962 §2.1.2. Requires 0 < m <= n."""
    if not 0 < m <= len(data):
        raise ValueError(f"need 0 < m <= n, got {m} and {len(data)}")
    return _subproof(m, data, True)


def _subproof(m: int, data: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if b else [mth(data)]
    k = _largest_power_of_two_smaller_than(n)
    if m <= k:
        return [*_subproof(m, data[:k], b), mth(data[k:])]
    return [*_subproof(m - k, data[k:], False), mth(data[:k])]
