"""Fixed test keys for the audit unit tests (deterministic seeds; never use these for real)."""

from __future__ import annotations

import pytest

from audit import CosignatureSigner, MemoryTree, Signer, leaf_hash

LOG_ORIGIN = "puente.example/federal"


@pytest.fixture
def log_signer() -> Signer:
    return Signer(LOG_ORIGIN, bytes(range(32)))


@pytest.fixture
def witnesses() -> list[CosignatureSigner]:
    return [CosignatureSigner(f"witness{i}.puente.example", bytes([i + 1]) * 32) for i in range(3)]


@pytest.fixture
def entries() -> list[bytes]:
    return [b'{"action":"record.read","n":%d}' % i for i in range(21)]


@pytest.fixture
def tree(entries: list[bytes]) -> MemoryTree:
    return MemoryTree(leaf_hash(e) for e in entries)
