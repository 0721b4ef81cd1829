"""``audit.verify_export``: whole-log verification from iterables, with public keys only."""

from __future__ import annotations

import json
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
from audit.errors import InconsistentCheckpoints, in_spanish
from audit.verify_export import (
    BadEntry,
    DamagedExport,
    ForkedCheckpoints,
    UnsignedExport,
    checkpoint_line,
    verify_export,
)

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
        return iter(entries)

    seen: list[int] = []
    summary = verify_export(lines, checkpoints, [VERIFIER], origin=ORIGIN, progress=seen.append)
    assert (summary.entries, summary.checkpoints) == (1000, 5)
    assert summary.latest.size == 1000
    assert calls == 1 and sum(seen) == 1000


@pytest.mark.parametrize("extra", [b'{"late":1}\n', b"not json\n", b"\n", b"not json"])
def test_lines_after_the_latest_checkpoint_are_refused(extra: bytes) -> None:
    # The exporter ends every export at the checkpoint it signs: a line after it was added.
    entries, checkpoints, _ = _export(_entries(12), [4, 12])
    with pytest.raises(BadEntry, match="entry 12: not covered by any signature") as caught:
        verify_export(lambda: iter([*entries, extra]), checkpoints, [VERIFIER])
    assert caught.value.index == 12
    assert "line 13 of entries.ndjson" in str(caught.value)
    assert in_spanish(caught.value).startswith("entrada 12: ninguna firma la cubre")


@pytest.mark.parametrize("count", [0, 1, 5])
def test_an_export_without_a_signed_checkpoint_vouches_for_nothing(count: int) -> None:
    entries, _checkpoints, _ = _export(_entries(count), [count])
    with pytest.raises(UnsignedExport, match="no checkpoint signed") as caught:
        verify_export(lambda: iter(entries), [], [VERIFIER])
    assert isinstance(caught.value, SignatureError)
    assert "ningún punto de control firmado" in in_spanish(caught.value)


def test_the_empty_log_has_a_signed_checkpoint_and_verifies() -> None:
    entries, checkpoints, _ = _export([], [0])
    summary = verify_export(lambda: iter(entries), checkpoints, [VERIFIER])
    assert (summary.entries, summary.checkpoints, summary.latest.size) == (0, 1, 0)


def test_unknown_key_and_wrong_origin_are_signature_failures() -> None:
    entries, checkpoints, _ = _export(_entries(10), [10])
    _other_private, other_vkey = generate_signer_key(ORIGIN)
    with pytest.raises(SignatureError, match="checkpoints line 1") as caught:
        verify_export(lambda: entries, checkpoints, [Verifier.from_vkey(other_vkey)])
    assert in_spanish(caught.value).startswith(
        "línea 1 de checkpoints.ndjson: ninguna firma es de una llave conocida; firmas "
        "encontradas: example.org/audit+"
    )
    with pytest.raises(SignatureError, match="origin"):
        verify_export(lambda: entries, checkpoints, [VERIFIER], origin="other.org/log")


def test_a_signed_checkpoint_contradicting_a_later_one_is_a_fork() -> None:
    # Checkpoint 20 matches the entries, so it vouches for them; the signed 15 does not.
    entries, checkpoints, _ = _export(_entries(20), [10, 20])
    forged = sign_checkpoint(Checkpoint(ORIGIN, 15, b"\x05" * 32), [SIGNER])
    checkpoints.insert(1, checkpoint_line(forged, []))
    with pytest.raises(ForkedCheckpoints, match="another tree at size 15") as caught:
        verify_export(lambda: entries, checkpoints, [VERIFIER])
    assert caught.value.first.startswith("checkpoint 15 ")
    assert caught.value.second.startswith("checkpoint 20 ")
    assert in_spanish(caught.value).startswith("el punto de control 15 (")
    assert "y el punto de control 20 (" in in_spanish(caught.value)


def test_a_fork_with_a_valid_proof_from_its_predecessor_is_still_a_fork() -> None:
    # The hub signs another history of size 15 that extends checkpoint 10 (its consistency
    # proof from 10 verifies); the entries are right, as checkpoint 20 proves.
    entries, checkpoints, _ = _export(_entries(20), [10, 20])
    other = _entries(20)
    other[12] = b'{"action":"record_read","n":-12}'
    _, other_lines, _ = _export(other, [10, 15])
    checkpoints.insert(1, other_lines[1])
    with pytest.raises(ForkedCheckpoints) as caught:
        verify_export(lambda: entries, checkpoints, [VERIFIER])
    assert caught.value.first.startswith("checkpoint 15 ")
    assert caught.value.second.startswith("checkpoint 20 ")


def test_a_mismatch_no_later_checkpoint_explains_is_reported_as_the_entries() -> None:
    entries, checkpoints, tree = _export(_entries(20), [10, 20])
    forged = sign_checkpoint(Checkpoint(ORIGIN, 20, b"\x05" * 32), [SIGNER])
    checkpoints[1] = checkpoint_line(forged, [])
    with pytest.raises(BadEntry) as caught:
        verify_export(lambda: entries, checkpoints, [VERIFIER], leaves=_leaves(tree))
    assert caught.value.index == 10


def test_two_roots_for_one_size_are_a_fork() -> None:
    entries, checkpoints, _ = _export(_entries(20), [10, 20])
    other = sign_checkpoint(Checkpoint(ORIGIN, 20, b"\x05" * 32), [SIGNER])
    with pytest.raises(ForkedCheckpoints, match="same size") as caught:
        verify_export(lambda: entries, [*checkpoints, checkpoint_line(other, [])], [VERIFIER])
    assert caught.value.first.startswith("checkpoint 20 ")
    assert caught.value.second.startswith("checkpoint 20 ")


def test_a_line_out_of_order_is_damage_unless_its_checkpoint_contradicts_the_entries() -> None:
    entries, checkpoints, _ = _export(_entries(20), [10, 20])
    with pytest.raises(DamagedExport, match="checkpoints line 3: checkpoint 10 comes after") as e:
        verify_export(lambda: entries, [*checkpoints, checkpoints[0]], [VERIFIER])
    assert e.value.line == 3 and not isinstance(e.value, InconsistentCheckpoints)

    forged = sign_checkpoint(Checkpoint(ORIGIN, 15, b"\x05" * 32), [SIGNER])
    with pytest.raises(ForkedCheckpoints) as caught:
        verify_export(lambda: entries, [*checkpoints, checkpoint_line(forged, [])], [VERIFIER])
    assert caught.value.first.startswith("checkpoint 15 ")
    assert caught.value.second.startswith("checkpoint 20 ")


def _flip_first_proof_hash(line: str) -> str:
    value = json.loads(line)
    first = value["consistency"][0]
    value["consistency"][0] = ("A" if first[0] != "A" else "B") + first[1:]
    return json.dumps(value)


def test_a_damaged_stored_proof_is_damage_to_the_file_not_a_fork() -> None:
    entries, checkpoints, _ = _export(_entries(30), [10, 20, 30])
    checkpoints[1] = _flip_first_proof_hash(checkpoints[1])
    with pytest.raises(DamagedExport, match="checkpoints line 2: the stored consistency") as e:
        verify_export(lambda: entries, checkpoints, [VERIFIER])
    assert e.value.line == 2 and not isinstance(e.value, InconsistentCheckpoints)
    assert "the two checkpoints are consistent" in str(e.value)
    assert in_spanish(e.value).startswith("línea 2 de checkpoints.ndjson: la prueba de")


def test_a_removed_checkpoints_line_is_damage_to_the_file_not_a_fork() -> None:
    entries, checkpoints, _ = _export(_entries(30), [10, 20, 30])
    del checkpoints[1]  # the proof on the next line is from checkpoint 20, now gone
    with pytest.raises(DamagedExport, match=r"from checkpoint 10 .* to checkpoint 30") as e:
        verify_export(lambda: entries, checkpoints, [VERIFIER])
    assert e.value.line == 2


@pytest.mark.parametrize(
    ("edit", "index", "reason", "spanish"),
    [
        (
            lambda e: e.__setitem__(5, e[5].replace(b"5", b"55")),
            5,
            "changed: checkpoint 8",
            "cambiada: el punto de control 8",
        ),
        (lambda e: e.__delitem__(5), 5, "removed", "quitada"),
        (lambda e: e.insert(5, e[4]), 5, "duplicate", "duplicado"),
        (lambda e: e.insert(5, b'{"n":-1}\n'), 5, "inserted", "insertada"),
        (lambda e: e.__setitem__(slice(5, 7), [e[6], e[5]]), 5, "swapped", "intercambiada"),
        (
            lambda e: e.__setitem__(slice(4, 8), [e[7], e[4], e[5], e[6]]),
            4,
            "reordered",
            "reordenada",
        ),
        (lambda e: e.__delitem__(slice(9, None)), 9, "missing", "falta"),
    ],
)
def test_the_first_bad_entry_is_named(edit, index: int, reason: str, spanish: str) -> None:  # type: ignore[no-untyped-def]
    entries, checkpoints, tree = _export(_entries(12), [4, 8, 12])
    edit(entries)
    with pytest.raises(BadEntry, match=reason) as caught:
        verify_export(lambda: iter(entries), checkpoints, [VERIFIER], leaves=_leaves(tree))
    assert caught.value.index == index
    assert isinstance(caught.value, EntryError)
    assert in_spanish(caught.value).startswith(f"entrada {index}: ")
    assert spanish in in_spanish(caught.value)


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
    bad_hash = '{"note": "x", "consistency": ["not base64!"]}'
    with pytest.raises(FormatError, match="checkpoints line 1 is malformed: consistency hash 0"):
        verify_export(lambda: entries, [bad_hash], [VERIFIER])


@pytest.mark.parametrize("stated", [70, "74", 74.0, True])
def test_a_line_whose_size_is_not_its_notes_is_damage(stated: object) -> None:
    # Auditors' scripts read "size" from a verified export: it must be the signed size.
    entries, checkpoints, _ = _export(_entries(74), [74])
    edited = json.dumps({**json.loads(checkpoints[0]), "size": stated})
    with pytest.raises(FormatError, match="checkpoints line 1 is malformed") as caught:
        verify_export(lambda: entries, [edited], [VERIFIER])
    assert "but the signed checkpoint has size 74" in str(caught.value)
    assert "pero el punto de control firmado es de tamaño 74" in in_spanish(caught.value)
    without = json.dumps({k: v for k, v in json.loads(checkpoints[0]).items() if k != "size"})
    assert verify_export(lambda: entries, [without], [VERIFIER]).entries == 74


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


# Entry 7 is the last one checkpoint 8 covers: a tampering there involves entries that only the
# next checkpoint signs, and is named as it is in the middle of a segment.
@pytest.mark.parametrize(
    ("edit", "index", "reason", "spanish"),
    [
        (
            lambda e: e.__setitem__(7, e[7].replace(b"7", b"77")),
            7,
            "changed: checkpoint 8",
            "cambiada: el punto de control 8",
        ),
        (lambda e: e.__delitem__(7), 7, "(removed)", "(quitada)"),
        (lambda e: e.__setitem__(slice(7, 9), [e[8], e[7]]), 7, "swapped", "intercambiada"),
        (lambda e: e.insert(7, b'{"n":-1}\n'), 7, "inserted", "insertada"),
        (lambda e: e.insert(8, e[7]), 8, "duplicate", "duplicado"),
        (lambda e: e.insert(7, e.pop(10)), 7, "at index 10 (reordered)", "índice 10 (reordenada)"),
        (lambda e: e.__setitem__(slice(7, 11), [e[10], e[8], e[9], e[7]]), 7, "reordered", "reord"),
        (lambda e: e.__setitem__(11, e[11].replace(b"11", b"1")), 11, "changed", "cambiada"),
    ],
)
def test_tampering_across_a_checkpoint_boundary_is_named(  # type: ignore[no-untyped-def]
    edit, index: int, reason: str, spanish: str
) -> None:
    entries, checkpoints, tree = _export(_entries(12), [4, 8, 12])
    edit(entries)
    with pytest.raises(BadEntry) as caught:
        verify_export(lambda: iter(entries), checkpoints, [VERIFIER], leaves=_leaves(tree))
    assert caught.value.index == index
    assert reason in str(caught.value)
    assert in_spanish(caught.value).startswith(f"entrada {index}: ")
    assert spanish in in_spanish(caught.value)


def _leaves_damaged_from(tree: MemoryTree, first: int):  # type: ignore[no-untyped-def]
    authentic = _leaves(tree)

    def read(start: int, end: int) -> bytes:
        stored = bytearray(authentic(start, end))
        for index in range(max(start, first), end):
            stored[(index - start) * 32] ^= 1
        return bytes(stored)

    return read


def test_at_a_boundary_without_later_authentic_leaves_only_what_is_known_is_said() -> None:
    # The stored leaf hashes match checkpoint 8 but no later one: the entry after 7 is unknown.
    entries, checkpoints, tree = _export(_entries(12), [4, 8, 12])
    leaves = _leaves_damaged_from(tree, 8)
    removed = entries[:7] + entries[8:]
    with pytest.raises(BadEntry) as caught:
        verify_export(lambda: iter(removed), checkpoints, [VERIFIER], leaves=leaves)
    assert caught.value.index == 7
    assert "changed, or removed" in str(caught.value)
    assert "cambiada, o quitada" in in_spanish(caught.value)
    swapped = [*entries[:7], entries[8], entries[7], *entries[9:]]
    with pytest.raises(BadEntry) as caught:
        verify_export(lambda: iter(swapped), checkpoints, [VERIFIER], leaves=leaves)
    assert caught.value.index == 7
    assert "inserted before it, or the two were swapped" in str(caught.value)
    assert "insertó una entrada antes de ella, o se intercambiaron las dos" in in_spanish(
        caught.value
    )
    # Away from the boundary the damaged later leaves do not matter.
    middle = entries[:5] + entries[6:]
    with pytest.raises(BadEntry, match=r"\(removed\)") as caught:
        verify_export(lambda: iter(middle), checkpoints, [VERIFIER], leaves=leaves)
    assert caught.value.index == 5


def test_stored_leaf_hashes_that_do_not_match_are_said_not_to_match() -> None:
    entries, checkpoints, _ = _export(_entries(12), [4, 8, 12])
    entries[6] = entries[6].replace(b"6", b"7")
    with pytest.raises(BadEntry, match=r"entries 4\.\.7 do not hash") as caught:
        verify_export(
            lambda: entries, checkpoints, [VERIFIER], leaves=lambda a, b: b"\0" * 32 * (b - a)
        )
    assert "leaves.bin" in str(caught.value) and "do not match" in str(caught.value)
    assert "without the stored leaf hashes" not in str(caught.value)
    assert "(leaves.bin) tampoco coinciden" in in_spanish(caught.value)
    with pytest.raises(BadEntry) as caught:
        verify_export(lambda: entries, checkpoints, [VERIFIER])
    assert "without the stored leaf hashes (leaves.bin)" in str(caught.value)
    assert "sin los hashes de hoja guardados (leaves.bin)" in in_spanish(caught.value)
