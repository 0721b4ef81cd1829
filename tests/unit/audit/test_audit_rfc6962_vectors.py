"""Golden vectors from transparency-dev/merkle (shared/testdata/rfc6962): every one must pass.

A verifier is right when ``wantErr`` is true exactly where it refuses.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from audit import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from audit.reference import mth
from tests.conftest import shared_testdata

TESTDATA = shared_testdata("rfc6962")


def _vectors(kind: str) -> list[Any]:
    files = sorted((TESTDATA / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {TESTDATA}"
    return [pytest.param(f, id=str(f.relative_to(TESTDATA / kind))) for f in files]


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(h) for h in value or []]


@pytest.mark.parametrize("path", _vectors("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), _proof(v["proof"]), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _vectors("consistency"))
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), _proof(v["proof"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_vector_counts() -> None:
    """Guard against the vectors silently going missing."""
    assert len(_vectors("inclusion")) >= 90
    assert len(_vectors("consistency")) >= 90


ROOTS = json.loads((TESTDATA / "roots.json").read_text())
LEAVES = [bytes.fromhex(h) for h in ROOTS["leaf_inputs_hex"]]


@pytest.mark.parametrize("size", range(len(ROOTS["root_hashes_hex_by_size"])))
def test_root_of_first_n_leaves(size: int) -> None:
    want = bytes.fromhex(ROOTS["root_hashes_hex_by_size"][size])
    assert root_hash(leaf_hash(d) for d in LEAVES[:size]) == want
    assert mth(LEAVES[:size]) == want
    tree = MemoryTree(leaf_hash(d) for d in LEAVES)
    assert tree.root(size) == want


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root_hash([]) == EMPTY_ROOT == bytes.fromhex(ROOTS["root_hashes_hex_by_size"][0])


def test_happy_path_proofs_are_the_ones_the_prover_makes() -> None:
    """The happy-path vectors are proofs in the 8-leaf tree of roots.json; we produce them."""
    tree = MemoryTree(leaf_hash(d) for d in LEAVES)
    checked = 0
    for path in sorted((TESTDATA / "inclusion").glob("[0-9]/happy-path.json")):
        v = json.loads(path.read_text())
        if v["treeSize"] <= len(LEAVES) and _b64(v["root"]) == tree.root(v["treeSize"]):
            assert tree.inclusion_proof(v["leafIdx"], v["treeSize"]) == _proof(v["proof"])
            checked += 1
    for path in sorted((TESTDATA / "consistency").glob("[0-9]/happy-path.json")):
        v = json.loads(path.read_text())
        if v["size2"] <= len(LEAVES) and _b64(v["root2"]) == tree.root(v["size2"]):
            assert tree.consistency_proof(v["size1"], v["size2"]) == _proof(v["proof"])
            checked += 1
    assert checked >= 4
