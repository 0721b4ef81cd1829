"""Tampering with the stored log is caught offline by ``puente audit verify --full``.

Each test builds a hub with 600 entries under three signed checkpoints (200, 400, 600), then
edits the database (or the exported files) the way a dishonest operator could, exports, and
verifies with the hub's public key only: the verifier must fail, name the first bad entry or
the two inconsistent checkpoints, and exit 1 (entry) or 3 (checkpoints). Damage to the parts
of an export nobody signed (stored proofs, the list of checkpoints) must never be blamed on
the hub: exit 1 (or 2 when no signed checkpoint is left), not 3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from audit import Checkpoint, sign_checkpoint
from exchange import db
from exchange.audit_log import (
    AuditCheckpoint,
    AuditEntry,
    AuditLogState,
    AuditTile,
    record_event,
)
from exchange.audit_sequencer import integrate_pending
from exchange.auth import utcnow
from exchange.cli import main
from exchange.keys import audit_origin, hub_keys
from tests.conftest import make_hub

SIZES = (200, 400, 600)


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Flask:
    app = make_hub(tmp_path, database_url, AUDIT_CHECKPOINT_INTERVAL=0.000001)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    with app.app_context():
        session = db.database(app).sessions()
        done = 0
        for size in SIZES:
            for i in range(done, size):
                record_event(
                    session,
                    action="record.read",
                    outcome="success",
                    actor_agency="mx.fed.comar",
                    actor_role="caseworker",
                    purpose="asylum_procedure",
                    child_id=f"ch-{i:05d}",
                    record_id=f"rec-{i}",
                    decision_basis="consent",
                    consent_ids=["cons-1"],
                )
            session.commit()
            assert integrate_pending(app, force_checkpoint=True).checkpoint == size
            done = size
        session.close()
    yield app
    app.extensions["puente.db"].engine.dispose()


def _vkey(app: Flask) -> str:
    signer = hub_keys(app).log
    assert signer is not None
    return signer.vkey


def _tamper(app: Flask) -> Session:
    return db.database(app).sessions()


def _export_and_verify(
    app: Flask, tmp_path: Path, *extra: str, edit: Any = None, damaged: int | None = None
) -> dict:
    """``damaged``: the first index the export itself finds missing from the database or
    changed there, which it names and exits 1 for (writing the export all the same)."""
    out = tmp_path / "export"
    # --force: a test that exports twice over the same folder replaces its own export.
    command = ["audit", "export", "--out", str(out), "--force", "--lang", "en"]
    exported = CliRunner().invoke(main, command)
    assert exported.exit_code == (0 if damaged is None else 1), exported.output
    if damaged is not None:
        assert f": {damaged}" in exported.stderr
    if edit is not None:
        edit(out)
    command = ["audit", "verify", "--full", str(out), "--vkey", _vkey(app), "--json"]
    result = CliRunner().invoke(main, [*command, "--lang", "en", *extra])
    report = json.loads(result.stdout)
    assert result.exit_code == report["exit_code"], result.output
    return report


def _entry_index(session: Session, index: int) -> AuditEntry:
    return session.scalars(select(AuditEntry).where(AuditEntry.idx == index)).one()


def test_an_untouched_log_verifies(hub: Flask, tmp_path: Path) -> None:
    report = _export_and_verify(hub, tmp_path)
    assert report["ok"] and report["entries"] == 600 and report["checkpoints"] == 3


def test_one_changed_byte_is_named(hub: Flask, tmp_path: Path) -> None:
    with _tamper(hub) as session:
        row = _entry_index(session, 123)
        changed = bytes(row.entry).replace(b"ch-00123", b"ch-00124")  # still canonical JSON
        session.execute(update(AuditEntry).where(AuditEntry.idx == 123).values(entry=changed))
        session.commit()
    report = _export_and_verify(hub, tmp_path, damaged=123)
    assert (report["exit_code"], report["entry_index"]) == (1, 123)
    assert "entry 123: changed: checkpoint 200" in report["error"]


def test_a_non_canonical_change_is_explained(hub: Flask, tmp_path: Path) -> None:
    with _tamper(hub) as session:
        row = _entry_index(session, 7)
        changed = bytes(row.entry).replace(b'"outcome":"success"', b'"outcome": "success"')
        session.execute(update(AuditEntry).where(AuditEntry.idx == 7).values(entry=changed))
        session.commit()
    report = _export_and_verify(hub, tmp_path, damaged=7)
    assert (report["exit_code"], report["entry_index"]) == (1, 7)
    assert "not in RFC 8785 canonical form" in report["error"]


def test_a_deleted_entry_is_named(hub: Flask, tmp_path: Path) -> None:
    with _tamper(hub) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.idx == 250))
        session.commit()
    report = _export_and_verify(hub, tmp_path, damaged=250)
    assert (report["exit_code"], report["entry_index"]) == (1, 250)
    assert "removed" in report["error"]


def test_two_swapped_entries_are_named(hub: Flask, tmp_path: Path) -> None:
    with _tamper(hub) as session:
        for index, new in ((300, -1), (301, 300), (-1, 301)):
            session.execute(update(AuditEntry).where(AuditEntry.idx == index).values(idx=new))
        session.commit()
    report = _export_and_verify(hub, tmp_path)
    assert (report["exit_code"], report["entry_index"]) == (1, 300)
    assert "swapped with the entry after it" in report["error"]


def test_an_inserted_entry_is_named(hub: Flask, tmp_path: Path) -> None:
    with _tamper(hub) as session:
        later = session.scalars(select(AuditEntry).where(AuditEntry.idx >= 410)).all()
        for row in sorted(later, key=lambda r: -(r.idx or 0)):
            session.execute(
                update(AuditEntry).where(AuditEntry.id == row.id).values(idx=(row.idx or 0) + 1)
            )
        forged = bytes(_entry_index(session, 409).entry).replace(b"ch-00409", b"ch-99999")
        now = utcnow()
        session.add(
            AuditEntry(
                id="f" * 32,
                idx=410,
                entry=forged,
                leaf_hash=b"\0" * 32,
                recorded_at=now,
                action="record_read",
                outcome="success",
            )
        )
        session.commit()
    report = _export_and_verify(hub, tmp_path, damaged=410)
    assert (report["exit_code"], report["entry_index"]) == (1, 410)
    assert "inserted" in report["error"]


def test_a_line_inserted_into_the_export_is_named(hub: Flask, tmp_path: Path) -> None:
    def insert_line(out: Path) -> None:
        lines = (out / "entries.ndjson").read_bytes().splitlines(keepends=True)
        lines.insert(42, lines[41])
        (out / "entries.ndjson").write_bytes(b"".join(lines))

    report = _export_and_verify(hub, tmp_path, edit=insert_line)
    assert (report["exit_code"], report["entry_index"]) == (1, 42)
    assert "duplicate" in report["error"]


def test_a_truncated_log_is_named(hub: Flask, tmp_path: Path) -> None:
    with _tamper(hub) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.idx >= 550))
        session.commit()
    report = _export_and_verify(hub, tmp_path, damaged=550)
    assert (report["exit_code"], report["entry_index"]) == (1, 550)
    assert "missing" in report["error"]


def test_a_rollback_behind_a_kept_checkpoint_is_caught(hub: Flask, tmp_path: Path) -> None:
    # The auditor saved checkpoint 600 earlier; the operator then cuts the log back to 400,
    # checkpoints included, so the export is consistent in itself.
    kept = tmp_path / "kept.checkpoint"
    with _tamper(hub) as session:
        kept.write_text(session.get(AuditCheckpoint, 600).note)  # type: ignore[union-attr]
        session.execute(delete(AuditEntry).where(AuditEntry.idx >= 400))
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.size > 400))
        # ... and rebuilds the tree of the 400 entries left, as a restored backup would be.
        session.execute(delete(AuditTile))
        session.execute(delete(AuditLogState))
        session.execute(update(AuditEntry).values(idx=None))
        session.commit()
    alone = _export_and_verify(hub, tmp_path)
    assert alone["ok"] and alone["entries"] == 400  # nothing in the export betrays it
    report = _export_and_verify(hub, tmp_path, "--since", str(kept))
    assert report["exit_code"] == 3
    assert report["checkpoints"][0]["size"] == 600
    assert "checkpoint 600" in report["checkpoints"][0]["message"]
    assert "truncated or rolled back" in report["error"]


def test_a_forked_checkpoint_signed_with_the_hub_key_is_named(hub: Flask, tmp_path: Path) -> None:
    signer = hub_keys(hub).log
    assert signer is not None
    forged = Checkpoint(audit_origin(hub), 500, b"\x42" * 32)
    with _tamper(hub) as session:
        session.add(
            AuditCheckpoint(
                size=500,
                root=forged.root_hash,
                note=sign_checkpoint(forged, [signer]),
                signed_at=utcnow(),
            )
        )
        session.commit()
    report = _export_and_verify(hub, tmp_path)
    assert report["exit_code"] == 3
    # Checkpoint 600 matches the entries, so it vouches for them; the signed 500 does not.
    first, second = report["checkpoints"]
    assert (first["size"], second["size"]) == (500, 600)
    assert first["message"].startswith("checkpoint 500 ")
    assert second["message"].startswith("checkpoint 600 ")
    assert "another tree at size 500" in report["error"]


def _edit_checkpoints(edit: Any) -> Any:
    def apply(out: Path) -> None:
        path = out / "checkpoints.ndjson"
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        edit(lines)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    return apply


def _flip_a_proof_hash(lines: list[dict]) -> None:
    first = lines[1]["consistency"][0]
    lines[1]["consistency"][0] = ("A" if first[0] != "A" else "B") + first[1:]


def test_a_damaged_stored_proof_is_not_blamed_on_the_hub(hub: Flask, tmp_path: Path) -> None:
    report = _export_and_verify(hub, tmp_path, edit=_edit_checkpoints(_flip_a_proof_hash))
    assert (report["exit_code"], report["checkpoints_line"]) == (1, 2)
    assert (
        "from checkpoint 200 (the line before) to checkpoint 400 does not verify"
        in (report["error"])
    )


def test_a_removed_checkpoints_line_is_not_blamed_on_the_hub(hub: Flask, tmp_path: Path) -> None:
    report = _export_and_verify(hub, tmp_path, edit=_edit_checkpoints(lambda lines: lines.pop(1)))
    assert (report["exit_code"], report["checkpoints_line"]) == (1, 2)
    assert "file was damaged or edited" in report["error"]


def test_an_export_stripped_of_its_checkpoints_fails(hub: Flask, tmp_path: Path) -> None:
    report = _export_and_verify(hub, tmp_path, edit=_edit_checkpoints(lambda lines: lines.clear()))
    assert (report["exit_code"], report["ok"]) == (2, False)
    assert "nothing was verified" in report["error"]


def test_entries_appended_after_the_signed_checkpoint_fail(hub: Flask, tmp_path: Path) -> None:
    def append(out: Path) -> None:
        with (out / "entries.ndjson").open("ab") as entries:
            entries.write(b"not json\n")

    report = _export_and_verify(hub, tmp_path, edit=append)
    assert (report["exit_code"], report["ok"], report["entry_index"]) == (1, False, 600)


def test_a_split_view_shown_to_the_auditor_is_caught(hub: Flask, tmp_path: Path) -> None:
    # The hub once showed this auditor a different tree of size 300, properly signed.
    signer = hub_keys(hub).log
    assert signer is not None
    kept = tmp_path / "other-view.checkpoint"
    kept.write_text(sign_checkpoint(Checkpoint(audit_origin(hub), 300, b"\x07" * 32), [signer]))
    report = _export_and_verify(hub, tmp_path, "--since", str(kept))
    assert report["exit_code"] == 3
    assert report["checkpoints"][0]["size"] == 300
    assert report["checkpoints"][0]["message"].startswith("the kept checkpoint 300 ")
