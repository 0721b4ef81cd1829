"""``audit.verify_export``: whole-log verification from iterables, with public keys only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from audit import (
    Checkpoint,
    EntryError,
    FormatError,
    MemoryTree,
    NodeId,
    SignatureError,
    Signer,
    Verifier,
    generate_signer_key,
    leaf_hash,
    sign_checkpoint,
)
from audit.verify_export import BadEntry, ForkedCheckpoints, checkpoint_line, verify_export

ORIGIN = "example.org/audit"
PRIVATE, VKEY = generate_signer_key(ORIGIN)
SIGNER = Signer.from_private_key(PRIVATE)
VERIFIER = Verifier.from_vkey(VKEY)


def _entries(count: int) -> list[bytes]:
    return [b'{"action":"record_read","n":%d}' % i for i in range(count)]


def _export(entries: list[bytes], sizes: list[int]) -> tuple[list[bytes], list[str], MemoryTree]:
    tree = MemoryTree(leaf_hash(e) for e in entries)
    lines, previous = [], 0
    for size in sizes:
        note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), [SIGNER])
        proof = tree.consistency_proof(previous, size) if previous else []
        lines.append(checkpoint_line(note, proof))
        previous = size
    return [e + b"\n" for e in entries], lines, tree


def _leaves(tree: MemoryTree):  # type: ignore[no-untyped-def]
    def read(start: int, end: int) -> bytes:
        return b"".join(tree.get_nodes([NodeId(0, i) for i in range(start, end)]))

    return read


def test_a_good_export_verifies_in_one_pass() -> None:
    entries, checkpoints, _tree = _export(_entries(1000), [1, 300, 300, 999, 1000])
    calls = 0

    def lines() -> Iterator[bytes]:
        nonlocal calls
        calls += 1
        return iter([*entries, b'{"late":1}\n'])

    seen: list[int] = []
    summary = verify_export(lines, checkpoints, [VERIFIER], origin=ORIGIN, progress=seen.append)
    assert (summary.entries, summary.checkpoints, summary.unsigned_entries) == (1001, 5, 1)
    assert summary.latest is not None and summary.latest.size == 1000
    assert calls == 1 and sum(seen) == 1001


def test_unknown_key_and_wrong_origin_are_signature_failures() -> None:
    entries, checkpoints, _ = _export(_entries(10), [10])
    _other_private, other_vkey = generate_signer_key(ORIGIN)
    with pytest.raises(SignatureError, match="checkpoints line 1"):
        verify_export(lambda: entries, checkpoints, [Verifier.from_vkey(other_vkey)])
    with pytest.raises(SignatureError, match="origin"):
        verify_export(lambda: entries, checkpoints, [VERIFIER], origin="other.org/log")


def test_a_checkpoint_that_does_not_extend_its_predecessor_is_a_fork() -> None:
    entries, checkpoints, _ = _export(_entries(20), [10, 20])
    forged = sign_checkpoint(Checkpoint(ORIGIN, 15, b"\x05" * 32), [SIGNER])
    checkpoints.insert(1, checkpoint_line(forged, []))
    with pytest.raises(ForkedCheckpoints) as caught:
        verify_export(lambda: entries, checkpoints, [VERIFIER])
    assert caught.value.first.startswith("checkpoint 10 ")
    assert caught.value.second.startswith("checkpoint 15 ")
    backwards = [checkpoints[0], checkpoints[2], checkpoints[0]]
    with pytest.raises(ForkedCheckpoints, match="went backwards"):
        verify_export(lambda: entries, backwards, [VERIFIER])


@pytest.mark.parametrize(
    ("edit", "index", "reason"),
    [
        (lambda e: e.__setitem__(5, e[5].replace(b"5", b"55")), 5, "changed: checkpoint 8"),
        (lambda e: e.__delitem__(5), 5, "removed"),
        (lambda e: e.insert(5, e[4]), 5, "duplicate"),
        (lambda e: e.insert(5, b'{"n":-1}\n'), 5, "inserted"),
        (lambda e: e.__setitem__(slice(5, 7), [e[6], e[5]]), 5, "swapped"),
        (lambda e: e.__setitem__(slice(4, 8), [e[7], e[4], e[5], e[6]]), 4, "reordered"),
        (lambda e: e.__delitem__(slice(9, None)), 9, "missing"),
    ],
)
def test_the_first_bad_entry_is_named(edit, index: int, reason: str) -> None:  # type: ignore[no-untyped-def]
    entries, checkpoints, tree = _export(_entries(12), [4, 8, 12])
    edit(entries)
    with pytest.raises(BadEntry, match=reason) as caught:
        verify_export(lambda: iter(entries), checkpoints, [VERIFIER], leaves=_leaves(tree))
    assert caught.value.index == index
    assert isinstance(caught.value, EntryError)


def test_without_authentic_leaf_hashes_the_range_is_named() -> None:
    entries, checkpoints, _ = _export(_entries(12), [4, 8, 12])
    entries[6] = entries[6].replace(b"6", b"7")
    with pytest.raises(BadEntry, match=r"entries 4\.\.7 do not hash") as caught:
        verify_export(
            lambda: entries, checkpoints, [VERIFIER], leaves=lambda a, b: b"\0" * 32 * (b - a)
        )
    assert caught.value.index == 4
    entries[6] = b'{"n": 6}\n'  # not canonical: named even without leaf hashes
    with pytest.raises(BadEntry, match="canonical") as caught:
        verify_export(lambda: entries, checkpoints, [VERIFIER])
    assert caught.value.index == 6


def test_kept_checkpoints_must_agree_with_the_export() -> None:
    entries, checkpoints, tree = _export(_entries(30), [10, 30])
    inside = sign_checkpoint(Checkpoint(ORIGIN, 17, tree.root(17)), [SIGNER])
    same = sign_checkpoint(Checkpoint(ORIGIN, 30, tree.root(30)), [SIGNER])
    summary = verify_export(lambda: entries, checkpoints, [VERIFIER], kept=[same, inside])
    assert [c.size for c in summary.kept] == [17, 30]

    other_view = sign_checkpoint(Checkpoint(ORIGIN, 17, b"\x09" * 32), [SIGNER])
    with pytest.raises(ForkedCheckpoints, match="different tree at size 17"):
        verify_export(lambda: entries, checkpoints, [VERIFIER], kept=[other_view])
    ahead = sign_checkpoint(Checkpoint(ORIGIN, 31, b"\x09" * 32), [SIGNER])
    with pytest.raises(ForkedCheckpoints, match="truncated or rolled back"):
        verify_export(lambda: entries, checkpoints, [VERIFIER], kept=[ahead])
    _p, stranger = generate_signer_key("stranger.example/log")
    unsigned = sign_checkpoint(Checkpoint(ORIGIN, 17, tree.root(17)), [Signer.from_private_key(_p)])
    with pytest.raises(SignatureError, match="the checkpoint you kept"):
        verify_export(lambda: entries, checkpoints, [VERIFIER], kept=[unsigned])
    assert stranger


def test_a_malformed_checkpoints_line_is_a_format_error() -> None:
    entries, _checkpoints, _ = _export(_entries(3), [3])
    with pytest.raises(FormatError, match="checkpoints line 1"):
        verify_export(lambda: entries, ['{"note": 5}'], [VERIFIER])


@pytest.mark.parametrize("start", [0, 1, 3, 8, 255, 1000])
@pytest.mark.parametrize("count", [0, 1, 2, 7, 64, 513, 2049])
def test_fast_append_matches_compact_range_extend(start: int, count: int) -> None:
    from audit import CompactRange
    from audit.verify_export import _append_leaves

    leaves = [leaf_hash(b"%d" % i) for i in range(start + count)]
    reference = CompactRange()
    reference.extend(leaves)
    prefix = CompactRange()
    prefix.extend(leaves[:start])
    fast = _append_leaves(prefix, leaves[start:])
    assert (fast.size, fast.hashes, fast.root()) == (
        reference.size,
        reference.hashes,
        reference.root(),
    )
