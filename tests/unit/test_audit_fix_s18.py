"""What an oversight body's outside check of the audit log found (session 18), offline:

1. a damaged ``--consistency`` file is a bad proof (exit 1, naming the file), not a fork: only
   a proof that rebuilds the newer signed root from another root counts against the hub (3);
2. ``puente audit events`` searches a verified export from the signed bytes only, following
   the signed ``child_merged`` entries (the hub's database copies can be edited);
3. checkpoints, proofs and keys saved with a byte order mark, in UTF-16, with CRLF or without
   a final newline read as written; a file that is not text is exit 1, never a traceback or a
   signature failure;
5. ``--json`` of exit 3 gives the two checkpoints as ``{size, origin, root, message}``;
7. success names the witnesses that cosigned the one checkpoint whose cosignatures are checked;
9. ``puente demo --help`` no longer says it runs on SQLite only.

No database: the logs, exports and proofs are built here with the pure ``audit`` package.
"""

from __future__ import annotations

import base64
import codecs
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from audit import (
    Checkpoint,
    ConsistencyNotProven,
    CosignatureSigner,
    InconsistentCheckpoints,
    MemoryTree,
    ProofError,
    Signer,
    Verifier,
    canonical_entry,
    inclusion_proof,
    judge_consistency_proof,
    leaf_hash,
    make_proof_file,
    sign_checkpoint,
    sign_note,
)
from audit.saved_text import UnreadableText, saved_text
from audit.search_export import (
    AUDIT_ACTIONS,
    EventQuery,
    ExportChanged,
    Merge,
    child_family,
    search_export,
)
from audit.verify_export import (
    BadEntry,
    ForkedCheckpoints,
    checkpoint_line,
    verify_kept_against,
)
from exchange.cli import main
from tests.conftest import shared_testdata

VECTORS = shared_testdata("rfc6962") / "consistency"
ORIGIN = "puente.example/audit"
LOG = Signer(ORIGIN, bytes(range(32)))
WITNESS = CosignatureSigner("witness.example/witness", bytes([7]) * 32)
OTHER_WITNESS = CosignatureSigner("other.example/witness", bytes([8]) * 32)


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


# --- 1. a damaged consistency proof is not a fork: the RFC 6962 vectors ------------------------


def _vector(path: Path) -> tuple[Checkpoint, Checkpoint, list[bytes]]:
    v = json.loads(path.read_text())
    old = Checkpoint(ORIGIN, v["size1"], _b64(v["root1"]))
    new = Checkpoint(ORIGIN, v["size2"], _b64(v["root2"]))
    return old, new, [_b64(h) for h in v["proof"] or []]


def _vectors(*names: str) -> list[Any]:
    """The vectors of these kinds (file name prefixes) between two non-empty trees."""
    found = []
    for path in sorted(VECTORS.rglob("*.json")):
        v = json.loads(path.read_text())
        if path.name.startswith(names) and 0 < v["size1"] < v["size2"]:
            found.append(pytest.param(path, id=str(path.relative_to(VECTORS))))
    assert found, names
    return found


#: Vectors whose proof is damaged (a bit flipped, hashes removed, added or emptied) while both
#: roots are right: a damaged file, which must never read as the hub's fork.
DAMAGED_PROOF = (
    "empty-proof",
    "modified-proof",
    "preceding-garbage",
    "trailing-garbage",
    "truncated-proof",
    "preceding-proof",
    "preceding-root",
    "trailing-root",
)


@pytest.mark.parametrize("path", _vectors("happy-path"))
def test_a_right_proof_between_signed_checkpoints_passes(path: Path) -> None:
    judge_consistency_proof(*_vector(path))


@pytest.mark.parametrize("path", _vectors(*DAMAGED_PROOF))
def test_a_damaged_proof_proves_nothing_and_accuses_nobody(path: Path) -> None:
    old, new, proof = _vector(path)
    with pytest.raises(ConsistencyNotProven) as caught:
        judge_consistency_proof(old, new, proof)
    assert not isinstance(caught.value, InconsistentCheckpoints)
    assert (caught.value.old, caught.value.new) == (old, new)
    # Through verify_kept_against too: never a ForkedCheckpoints (exit 3).
    with pytest.raises(ConsistencyNotProven):
        verify_kept_against(old, new, proof)


#: Another root, of the right length: the vectors' own wrong roots ("WrongRoot") are not
#: hashes, and no signed checkpoint can carry them.
OTHER_ROOT = bytes(range(32))


@pytest.mark.parametrize("path", _vectors("happy-path"))
def test_a_proof_that_does_not_rebuild_the_newer_signed_root_proves_nothing(path: Path) -> None:
    old, new, proof = _vector(path)
    with pytest.raises(ConsistencyNotProven, match="second root mismatch"):
        judge_consistency_proof(old, Checkpoint(ORIGIN, new.size, OTHER_ROOT), proof)


@pytest.mark.parametrize("path", _vectors("happy-path"))
def test_a_proof_that_rebuilds_the_newer_root_from_another_older_root_is_a_fork(
    path: Path,
) -> None:
    # As the vectors' wrong-root1: the kept checkpoint's signed root is not the one the proof
    # rebuilds the newer signed root from.
    old, new, proof = _vector(path)
    kept = Checkpoint(ORIGIN, old.size, OTHER_ROOT)
    if old.size & (old.size - 1) == 0:
        # A power of two: RFC 9162 leaves that root out of the proof (the verifier has it),
        # so the proof cannot show another one; it just fails to rebuild the newer root.
        with pytest.raises(ConsistencyNotProven):
            judge_consistency_proof(kept, new, proof)
        return
    with pytest.raises(InconsistentCheckpoints) as caught:
        judge_consistency_proof(kept, new, proof)
    assert "from another root at size" in str(caught.value)
    with pytest.raises(ForkedCheckpoints) as forked:
        verify_kept_against(kept, new, proof)
    assert forked.value.between == (kept, new)


def test_equal_sizes_with_different_signed_roots_are_a_fork_without_any_proof() -> None:
    with pytest.raises(InconsistentCheckpoints, match="same size, different roots"):
        judge_consistency_proof(
            Checkpoint(ORIGIN, 5, b"\x01" * 32), Checkpoint(ORIGIN, 5, b"\x02" * 32), []
        )
    with pytest.raises(ProofError, match="different logs"):
        judge_consistency_proof(
            Checkpoint(ORIGIN, 5, b"\x01" * 32), Checkpoint("other/log", 9, b"\x02" * 32), []
        )


# --- a log, its checkpoints, proof files and exports -------------------------------------------


def _entry(i: int, child: str = "nna_aaaa", **fields: Any) -> bytes:
    document = {
        "action": "record_read",
        "actor": {"agency_id": "mx.chp.dif"},
        "child_id": child,
        "hub": "puente.example",
        "outcome": "success",
        "record_id": f"rec_{i}",
        "time": f"2026-11-2{i // 10}T10:00:{i % 10:02d}.000Z",
        **fields,
    }
    return canonical_entry({k: v for k, v in document.items() if v is not None})


@dataclass
class Log:
    entries: list[bytes]

    @property
    def tree(self) -> MemoryTree:
        return MemoryTree(leaf_hash(e) for e in self.entries)

    def checkpoint(self, size: int) -> Checkpoint:
        return Checkpoint(ORIGIN, size, self.tree.root(size))

    def note(self, size: int, *witnesses: CosignatureSigner) -> str:
        signers = [LOG, *(w.at(1_700_000_000) for w in witnesses)]
        return sign_note(self.checkpoint(size).to_text(), signers)

    def proof_file(self, index: int, size: int, *witnesses: CosignatureSigner) -> str:
        hashes = inclusion_proof(index, size, self.tree)
        return make_proof_file(index, hashes, self.note(size, *witnesses), self.entries[index])

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        hashes = self.tree.consistency_proof(first, second)
        return {
            "first": first,
            "second": second,
            "hashes": [base64.b64encode(h).decode() for h in hashes],
        }

    def export(
        self, folder: Path, sizes: Iterable[int], notes: dict[int, str] | None = None
    ) -> Path:
        """An export as ``puente audit export`` writes it (``notes``: a checkpoint to use
        instead of the right one, by size)."""
        folder.mkdir()
        lines, previous = [], 0
        for size in sizes:
            note = (notes or {}).get(size) or self.note(size)
            proof = self.tree.consistency_proof(previous, size) if previous else []
            lines.append(checkpoint_line(note, proof) + "\n")
            previous = size
        (folder / "entries.ndjson").write_bytes(b"".join(e + b"\n" for e in self.entries))
        (folder / "checkpoints.ndjson").write_text("".join(lines), encoding="utf-8")
        (folder / "leaves.bin").write_bytes(b"".join(leaf_hash(e) for e in self.entries))
        return folder


@pytest.fixture
def log() -> Log:
    return Log([_entry(i) for i in range(100)])


def _files(tmp_path: Path, log: Log) -> dict[str, Path]:
    """A proof file of entry 5 under checkpoint 100, checkpoint 30 kept, and the proof 30→100."""
    files = {
        "proof": tmp_path / "e5.tlog-proof",
        "kept": tmp_path / "kept-30.checkpoint",
        "consistency": tmp_path / "cons.json",
    }
    files["proof"].write_text(log.proof_file(5, 100), encoding="utf-8")
    files["kept"].write_text(log.note(30), encoding="utf-8")
    files["consistency"].write_text(json.dumps(log.consistency(30, 100)), encoding="utf-8")
    return files


def _verify_proof(files: dict[str, Path], *extra: str, lang: str = "en") -> Result:
    return _run(
        "audit",
        "verify",
        "--proof",
        str(files["proof"]),
        "--vkey",
        LOG.vkey,
        "--since",
        str(files["kept"]),
        "--consistency",
        str(files["consistency"]),
        "--lang",
        lang,
        *extra,
    )


# --- 1. at the command line: exit 1 naming the file, not 3 ------------------------------------


def _flip_a_bit(body: dict[str, Any]) -> None:
    first = bytearray(_b64(body["hashes"][2]))
    first[0] ^= 1
    body["hashes"][2] = base64.b64encode(bytes(first)).decode()


DAMAGE: dict[str, Callable[[dict[str, Any]], None]] = {
    "one bit flipped": _flip_a_bit,
    "one hash deleted": lambda body: body["hashes"].pop(),
    "hashes emptied": lambda body: body["hashes"].clear(),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_consistency_file_is_a_bad_proof_naming_the_file(
    tmp_path: Path, log: Log, damage: str
) -> None:
    files = _files(tmp_path, log)
    assert _verify_proof(files).exit_code == 0
    body = json.loads(files["consistency"].read_text())
    DAMAGE[damage](body)
    files["consistency"].write_text(json.dumps(body), encoding="utf-8")

    english = _verify_proof(files)
    assert english.exit_code == 1, english.output
    assert english.stderr.startswith(
        f"FAIL: bad proof or entry: --consistency {files['consistency']}: the consistency proof "
        "from checkpoint 30 "
    )
    assert "proves nothing" in english.stderr and "inconsistent" not in english.stderr
    assert "GET /v1/audit/proofs/consistency?first=30&second=100" in english.stderr

    spanish = _verify_proof(files, "--json", lang="es")
    report = json.loads(spanish.stdout)
    assert (spanish.exit_code, report["exit_code"], report["ok"]) == (1, 1, False)
    assert report["error"].startswith(f"--consistency {files['consistency']}: la prueba de ")
    assert "no prueba nada" in report["error"] and "checkpoints" not in report


# --- 5. exit 3 names both checkpoints as {size, origin, root, message} -------------------------


def test_a_fork_shown_by_the_consistency_proof_is_exit_3_with_both_tree_heads(
    tmp_path: Path, log: Log
) -> None:
    files = _files(tmp_path, log)
    other = Log([_entry(i) for i in range(29)] + [_entry(29, child="nna_otra")])
    files["kept"].write_text(other.note(30), encoding="utf-8")  # the hub signed another tree
    result = _verify_proof(files, "--json")
    report = json.loads(result.stdout)
    assert (result.exit_code, report["exit_code"]) == (3, 3)
    kept, newer = report["checkpoints"]
    assert kept == {
        "size": 30,
        "origin": ORIGIN,
        "root": base64.b64encode(other.checkpoint(30).root_hash).decode(),
        "message": f"the kept checkpoint 30 ({kept['root']})",
    }
    assert (newer["size"], newer["origin"]) == (100, ORIGIN)
    assert newer["root"] == base64.b64encode(log.checkpoint(100).root_hash).decode()
    assert newer["message"].startswith("checkpoint 100 (")
    spanish = json.loads(_verify_proof(files, "--json", lang="es").stdout)
    assert spanish["checkpoints"][0]["message"].startswith("el punto de control 30 (")
    assert spanish["checkpoints"][0]["root"] == kept["root"]


def test_an_export_whose_checkpoints_contradict_each_other_gives_both_tree_heads(
    tmp_path: Path, log: Log
) -> None:
    forged = sign_checkpoint(Checkpoint(ORIGIN, 50, b"\x42" * 32), [LOG])
    out = log.export(tmp_path / "export", [30, 50, 100], notes={50: forged})
    result = _run("audit", "verify", "--full", str(out), "--vkey", LOG.vkey, "--json")
    report = json.loads(result.stdout)
    assert report["exit_code"] == 3, report
    first, second = report["checkpoints"]
    assert (first["size"], first["root"]) == (50, base64.b64encode(b"\x42" * 32).decode())
    assert first["message"].startswith("checkpoint 50 ") and first["origin"] == ORIGIN
    assert (second["size"], second["message"][:15]) == (100, "checkpoint 100 ")


# --- 3. saved files: byte order marks, UTF-16, CRLF, no final newline ---------------------------


SAVED: dict[str, Callable[[str], bytes]] = {
    "UTF-8 with BOM": lambda text: codecs.BOM_UTF8 + text.encode(),
    "UTF-16 LE with BOM": lambda text: text.encode("utf-16"),
    "UTF-16 BE with BOM": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "CRLF": lambda text: text.replace("\n", "\r\n").encode(),
    "no final newline": lambda text: text.rstrip("\n").encode(),
    "Notepad: BOM, CRLF, no final newline": lambda text: (
        codecs.BOM_UTF8 + text.rstrip("\n").replace("\n", "\r\n").encode()
    ),
}


@pytest.mark.parametrize("how", SAVED)
def test_a_kept_checkpoint_and_a_consistency_proof_read_as_saved(
    tmp_path: Path, log: Log, how: str
) -> None:
    files = _files(tmp_path, log)
    for name in ("kept", "consistency", "proof"):
        files[name].write_bytes(SAVED[how](files[name].read_text()))
    result = _verify_proof(files, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kept_checkpoints"] == [30]


@pytest.mark.parametrize("how", SAVED)
def test_a_key_file_reads_as_saved_too(tmp_path: Path, log: Log, how: str) -> None:
    files = _files(tmp_path, log)
    key = tmp_path / "hub.vkey"
    key.write_bytes(SAVED[how](LOG.vkey + "\n"))
    result = _run("audit", "verify", "--proof", str(files["proof"]), "--vkey", str(key))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)), "no BOM".encode("utf-16-le")],
    ids=["binary", "UTF-16 without BOM"],
)
@pytest.mark.parametrize("option", ["kept", "consistency"])
def test_a_file_that_is_not_text_is_exit_1_naming_it(
    tmp_path: Path, log: Log, content: bytes, option: str
) -> None:
    files = _files(tmp_path, log)
    files[option].write_bytes(content)
    flag = {"kept": "--since", "consistency": "--consistency"}[option]
    as_json = _verify_proof(files, "--json", lang="es")
    assert as_json.exit_code == 1, as_json.output
    report = json.loads(as_json.stdout)  # JSON, never a traceback
    assert report["exit_code"] == 1
    assert report["error"].startswith(f"{flag} {files[option]}: el archivo no es texto legible")
    text = _verify_proof(files)
    assert text.exit_code == 1 and "Traceback" not in text.output
    assert "signature" not in text.stderr
    assert f"{flag} {files[option]}: the file is not text that can be read" in text.stderr


def test_saved_text_gives_back_what_was_written() -> None:
    signed = "origin\n5\nroot\n\n— key sig\n"
    for how, save in SAVED.items():
        assert saved_text(save(signed)) == signed, how
    assert saved_text(b"") == ""
    with pytest.raises(UnreadableText, match="byte 0xff at position 1"):
        saved_text(b"a\xff")
    with pytest.raises(UnreadableText, match="NUL"):
        saved_text(b"a\x00b")


# --- 7. which witnesses cosigned, and on which checkpoint --------------------------------------


def test_success_names_the_witnesses_that_cosigned_the_latest_checkpoint(
    tmp_path: Path, log: Log
) -> None:
    # Only the latest carries a cosignature: the earlier ones are not checked for any.
    out = log.export(tmp_path / "export", [30, 100], notes={100: log.note(100, WITNESS)})
    args = ["audit", "verify", "--full", str(out), "--vkey", LOG.vkey]
    witnesses = ["--witness", WITNESS.vkey, "--witness", OTHER_WITNESS.vkey, "--quorum", "1"]
    english = _run(*args, *witnesses, "--lang", "en")
    assert english.exit_code == 0, english.output
    assert (
        "OK: witnesses that cosigned checkpoint 100: 1 of the 2 given (quorum 1): "
        "witness.example/witness. Cosignatures are checked on that checkpoint only, not on "
        "earlier ones."
    ) in english.stdout
    spanish = _run(*args, *witnesses, "--lang", "es")
    assert "OK: testigos que cofirmaron el punto de control 100: 1 de los 2 indicados" in (
        spanish.stdout
    )
    report = json.loads(_run(*args, *witnesses, "--json").stdout)
    assert report["witnesses"] == {
        "checkpoint": 100,
        "given": 2,
        "quorum": 1,
        "cosigned_by": ["witness.example/witness"],
    }
    plain = _run(*args)
    assert "witnesses" not in plain.stdout  # none given: nothing said
    assert json.loads(_run(*args, "--json").stdout)["witnesses"]["cosigned_by"] == []


def test_a_proof_file_says_which_witnesses_cosigned_its_checkpoint(
    tmp_path: Path, log: Log
) -> None:
    proof = tmp_path / "p.tlog-proof"
    proof.write_text(log.proof_file(5, 100, WITNESS, OTHER_WITNESS), encoding="utf-8")
    result = _run(
        "audit",
        "verify",
        "--proof",
        str(proof),
        "--vkey",
        LOG.vkey,
        "--witness",
        WITNESS.vkey,
        "--witness",
        OTHER_WITNESS.vkey,
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["witnesses"]["cosigned_by"] == [
        "witness.example/witness",
        "other.example/witness",
    ]


# --- 2. a child's history from a verified export -----------------------------------------------


def _merged(i: int, into: str, merged: str) -> bytes:
    return _entry(
        i, child=into, action="child_merged", record_id=None, reason_code=f"merged_{merged}"
    )


@pytest.fixture
def merged_log() -> Log:
    """nna_b merged into nna_a at 6, nna_a into nna_c at 8; nna_d stays apart."""
    children = ["nna_a", "nna_b", "nna_d", "nna_b", "nna_a", "nna_d"]
    entries = [_entry(i, child=c) for i, c in enumerate(children)]
    entries.append(_merged(6, "nna_a", "nna_b"))
    entries.append(_entry(7, child="nna_a", actor={"agency_id": "mx.fed.comar"}))
    entries.append(_merged(8, "nna_c", "nna_a"))
    entries.append(_entry(9, child="nna_c", outcome="denied"))
    entries.append(_entry(10, child=None, action="agency_changed", record_id=None))
    return Log(entries)


def test_a_childs_family_follows_the_signed_merges_as_the_hub_does() -> None:
    merges = [Merge(6, "nna_a", "nna_b"), Merge(8, "nna_c", "nna_a")]
    for asked in ("nna_a", "nna_b", "nna_c"):
        ids, used = child_family(asked, merges)
        assert ids == ("nna_c", "nna_a", "nna_b") and used == tuple(merges), asked
    assert child_family("nna_d", merges) == (("nna_d",), ())


def _search(log: Log, folder: Path, query: EventQuery) -> Any:
    out = log.export(folder, [5, log.tree.size])
    return search_export(
        lambda: iter((out / "entries.ndjson").open("rb")),
        (out / "checkpoints.ndjson").read_text().splitlines(),
        [_verifier()],
        query,
    )


def _verifier() -> Verifier:
    return Verifier.from_vkey(LOG.vkey)


def test_search_returns_the_signed_entries_of_the_whole_family(
    tmp_path: Path, merged_log: Log
) -> None:
    result = _search(merged_log, tmp_path / "x", EventQuery(child_id="nna_b"))
    assert result.child_ids == ("nna_c", "nna_a", "nna_b")
    assert [m.index for m in result.merges] == [6, 8]
    assert [f.index for f in result.events] == [0, 1, 3, 4, 6, 7, 8, 9]
    assert all(f.entry == merged_log.entries[f.index] for f in result.events)
    d = _search(merged_log, tmp_path / "d", EventQuery(child_id="nna_d"))
    assert (d.child_ids, [f.index for f in d.events]) == (("nna_d",), [2, 5])


def test_search_filters_on_the_signed_fields(tmp_path: Path, merged_log: Log) -> None:
    def found(folder: str, **query: Any) -> list[int]:
        return [f.index for f in _search(merged_log, tmp_path / folder, EventQuery(**query)).events]

    assert found("a", child_id="nna_a", actor="mx.fed.comar") == [7]
    assert found("b", action="child_merged") == [6, 8]
    assert found("c", child_id="nna_c", outcome="denied") == [9]
    since, until = datetime(2026, 11, 20, 10, 0, 3, tzinfo=UTC), datetime(2026, 11, 20, 10, 0, 7)
    assert found("d", since=since, until=until.replace(tzinfo=UTC)) == [3, 4, 5, 6]
    assert found("e", action="agency_changed") == [10]


def test_nothing_is_searched_in_an_export_that_does_not_verify(
    tmp_path: Path, merged_log: Log
) -> None:
    out = merged_log.export(tmp_path / "export", [5, merged_log.tree.size])
    lines = (out / "entries.ndjson").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"nna_b", b"nna_z")
    (out / "entries.ndjson").write_bytes(b"".join(lines))
    with pytest.raises(BadEntry):
        search_export(
            lambda: iter((out / "entries.ndjson").open("rb")),
            (out / "checkpoints.ndjson").read_text().splitlines(),
            [_verifier()],
            EventQuery(child_id="nna_z"),
        )


def test_entries_that_change_after_they_were_verified_are_refused(
    tmp_path: Path, merged_log: Log
) -> None:
    out = merged_log.export(tmp_path / "export", [merged_log.tree.size])
    lines = [e + b"\n" for e in merged_log.entries]
    readings = [lines, [*lines[:3], _entry(3, child="nna_x") + b"\n", *lines[4:]]]

    def entries() -> Iterable[bytes]:
        return iter(readings.pop(0) if len(readings) > 1 else readings[0])

    with pytest.raises(ExportChanged):
        search_export(
            entries,
            (out / "checkpoints.ndjson").read_text().splitlines(),
            [_verifier()],
            EventQuery(child_id="nna_x"),
        )


def test_the_actions_known_offline_are_the_schemas() -> None:
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "schemas/documents/audit-event/1.json").read_text()
    )
    assert list(AUDIT_ACTIONS) == schema["properties"]["action"]["enum"]


def _events(out: Path, *args: str) -> Result:
    return _run("audit", "events", str(out), "--vkey", LOG.vkey, *args)


def test_puente_audit_events_prints_a_childs_signed_history(
    tmp_path: Path, merged_log: Log
) -> None:
    out = merged_log.export(tmp_path / "export", [5, merged_log.tree.size])
    english = _events(out, "--child-id", "nna_a", "--lang", "en")
    assert english.exit_code == 0, english.output
    lines = english.stdout.splitlines()
    assert lines[0] == (
        "OK: export verified: 11 entries signed with the hub's key (latest checkpoint: 11); "
        "only they were searched."
    )
    assert lines[1] == "Ids searched: nna_c, nna_a, nna_b"
    assert lines[2:4] == [
        "  nna_b was merged into nna_a (entry 6)",
        "  nna_a was merged into nna_c (entry 8)",
    ]
    assert lines[4] == "8 entries match:"
    assert lines[5] == f"0 {merged_log.entries[0].decode()}"
    assert len(lines) == 13

    spanish = _events(out, "--child-id", "nna_a", "--lang", "es")
    assert spanish.stdout.splitlines()[1] == "Identificadores buscados: nna_c, nna_a, nna_b"
    assert "  nna_b se fusionó en nna_a (entrada 6)" in spanish.stdout
    assert "8 entradas coinciden:" in spanish.stdout

    report = json.loads(
        _events(out, "--child-id", "nna_b", "--action", "record.read", "--json").stdout
    )
    assert (report["ok"], report["exit_code"], report["entries"]) == (True, 0, 11)
    assert report["child_ids"] == ["nna_c", "nna_a", "nna_b"]
    assert report["merges"][0] == {"index": 6, "into": "nna_a", "merged": "nna_b"}
    assert report["filters"]["action"] == "record_read"
    assert [e["index"] for e in report["events"]] == [0, 1, 3, 4, 7, 9]
    assert report["events"][0]["entry"] == merged_log.entries[0].decode()
    assert report["count"] == 6


def test_puente_audit_events_refuses_to_search_an_export_that_does_not_verify(
    tmp_path: Path, merged_log: Log
) -> None:
    out = merged_log.export(tmp_path / "export", [merged_log.tree.size])
    lines = (out / "entries.ndjson").read_bytes().splitlines(keepends=True)
    del lines[3]
    (out / "entries.ndjson").write_bytes(b"".join(lines))
    result = _events(out, "--child-id", "nna_b", "--lang", "en")
    assert result.exit_code == 1
    assert result.stdout == ""  # no entry shown
    assert "The export does not verify: nothing was searched in it." in result.stderr
    assert "FAIL: bad proof or entry: entry 3" in result.stderr
    report = json.loads(_events(out, "--child-id", "nna_b", "--json").stdout)
    assert (report["exit_code"], report["entry_index"], "events" in report) == (1, 3, False)
    other_key = Signer(ORIGIN, bytes([9]) * 32).vkey
    signed_by_another = _run("audit", "events", str(out), "--vkey", other_key, "--json")
    assert json.loads(signed_by_another.stdout)["exit_code"] == 2


def test_puente_audit_events_wrong_usage(tmp_path: Path, merged_log: Log) -> None:
    out = merged_log.export(tmp_path / "export", [merged_log.tree.size])
    unknown = _events(out, "--action", "record.eaten", "--json", "--lang", "en")
    assert unknown.exit_code == 64
    error = json.loads(unknown.stdout)["error"]
    assert error.startswith("--action record.eaten: unknown action; those of schema")
    assert "record_read" in error and "child_merged" in error
    assert _run("audit", "events", str(out), "--child-id", "x").exit_code == 64  # no --vkey
    bad_time = _events(out, "--since", "2026-11-20", "--lang", "es")
    assert bad_time.exit_code == 64 and "RFC 3339 con zona" in bad_time.output
    backwards = _events(out, "--since", "2026-11-21T00:00:00Z", "--until", "2026-11-20T00:00:00Z")
    assert backwards.exit_code == 64


# --- 9. puente demo --help ----------------------------------------------------------------------


def test_the_demo_help_says_which_database_it_uses() -> None:
    result = _run("demo", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "on SQLite" not in text
    assert "unless PUENTE_DATABASE_URL" in text


def test_puente_audit_events_needs_only_the_audit_package_and_click(
    tmp_path: Path, merged_log: Log
) -> None:
    # What an oversight body installs (docs/audit.md §3): none of the hub's libraries.
    out = merged_log.export(tmp_path / "export", [merged_log.tree.size])
    absent = (
        "flask", "sqlalchemy", "werkzeug", "jsonschema", "jsonschema_rs", "schemas", "consent",
        "orjson", "authlib", "alembic", "psycopg", "gunicorn", "tqdm",
    )  # fmt: skip
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {absent!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from exchange.cli import main
main(["audit", "events", {str(out)!r}, "--vkey", {LOG.vkey!r}, "--child-id", "nna_d",
      "--lang", "en"])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "2 entries match:" in result.stdout, result.stdout
