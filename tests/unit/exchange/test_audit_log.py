"""Audit entries written with their action, sequenced into tlog tiles, checkpoints signed."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, g
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

import audit
from exchange import audit_sequencer, db
from exchange.audit_log import (
    AuditCheckpoint,
    AuditEntry,
    AuditFieldError,
    AuditLogState,
    AuditTile,
    build_entry,
    canonical_bytes,
    record_event,
)
from exchange.audit_sequencer import (
    LogIntegrityError,
    TileStore,
    ensure_integrator,
    integrate_pending,
    stop_integrator,
)
from exchange.keys import audit_origin, hub_keys
from schemas.registry import default_registry

PUSH = {
    "action": "record.pushed",
    "outcome": "success",
    "actor_agency": "mx.chp.dif",
    "actor_role": "system",
    "child_id": "ch-7f3a9d2e",
    "record_id": "rec-000451",
    "record_version": 3,
    "body_sha256": "9f2c4e1a7b3d5f60812a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d",
}


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    with app.app_context():
        s = db.database(app).sessions()
        yield s
        s.close()


def _entries(session: Session) -> list[AuditEntry]:
    session.expire_all()
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _log(app: Flask, session: Session, count: int, **fields: object) -> None:
    for i in range(count):
        record_event(session, **{**PUSH, "record_id": f"rec-{i}", **fields})
    session.commit()


# --- entries -------------------------------------------------------------------------------


def test_entry_is_a_valid_canonical_audit_event(app: Flask, session: Session) -> None:
    with app.test_request_context("/"):
        g.request_id = "req-01HY3K9W5Q4B"
        entry_id = record_event(
            session,
            **PUSH,
            purpose="case_management",
            decision_basis="consent",
            consent_ids=["cons-2", "cons-1"],
            detail="Idempotent replay",
        )
    session.commit()
    (row,) = _entries(session)
    assert row.id == entry_id and row.idx is None
    entry = audit.parse_canonical_entry(row.entry)  # raises unless exactly RFC 8785
    assert row.entry == audit.canonical_entry(entry)
    assert row.leaf_hash == audit.entry_leaf_hash(entry)
    assert entry["action"] == "record_pushed"
    assert entry["hub"] == app.config["HUB_ID"]
    assert entry["request_id"] == "req-01HY3K9W5Q4B"
    assert entry["reason_code"] == "idempotent_replay"
    assert entry["decision"] == {
        "id": entry_id,  # the decision id readers are given is the entry's own id
        "result": "permit",
        "basis": "consent",
        "consent_ids": ["cons-1", "cons-2"],
    }
    assert entry["time"].endswith("Z") and len(entry["time"]) == len("2024-05-20T22:42:01.118Z")
    assert default_registry().validator("audit-event", "1").is_valid(entry)
    assert (row.action, row.outcome, row.actor_agency, row.child_id) == (
        "record_pushed",
        "success",
        "mx.chp.dif",
        "ch-7f3a9d2e",
    )


@pytest.mark.parametrize(
    "fields",
    [
        {
            "action": "record.read",
            "outcome": "denied",
            "actor_person": "inm-0451",
            "actor_role": "caseworker",
            "purpose": "migration_procedure",
            "decision_basis": "hard_rule",
            "rule_ids": ["no_protection_data_to_immigration_enforcement"],
        },
        {"action": "agency.registered", "outcome": "success"},
        {"action": "agency.key_rotated", "outcome": "success", "actor_agency": "mx.chp.dif"},
        {
            "action": "transfer.accepted",
            "outcome": "failure",
            "actor_agency": "mx.cmx.dif",
            "record_id": "rec-9",
            "detail": "recipient unknown: mx.x",
        },
        {
            "action": "child_merged",
            "outcome": "success",
            "actor_person": "proc-1",
            "child_id": "ch-1234",
            "time": datetime(2024, 5, 20, 22, 42, 1, 118999, tzinfo=UTC),
        },
    ],
)
def test_fast_canonical_form_is_rfc8785(app: Flask, fields: dict[str, object]) -> None:
    with app.app_context():
        entry = build_entry(**fields)
    assert canonical_bytes(entry) == audit.canonical_entry(entry)
    assert default_registry().validator("audit-event", "1").is_valid(entry)


def test_the_decision_result_is_the_engines_whatever_the_outcome(app: Flask) -> None:
    # An access request that waits for an officer is recorded (outcome success) on a denying
    # decision: oversight must read "deny", not a "permit" beside a denying basis.
    waiting = {
        "action": "access_requested",
        "outcome": "success",
        "actor_agency": "mx.chp.clinica-juridica",
        "purpose": "legal_representation",
        "decision_basis": "default_deny",
        "detail": "pending",
    }
    with app.app_context():
        assert build_entry(**waiting, decision_result="deny")["decision"]["result"] == "deny"
        # Without it, the outcome says (as before): success is permit, denied is deny.
        assert build_entry(**waiting)["decision"]["result"] == "permit"
        denied = {**waiting, "outcome": "denied"}
        assert build_entry(**denied)["decision"]["result"] == "deny"


def test_hub_acts_when_no_agency_or_person_is_given(app: Flask) -> None:
    with app.app_context():
        entry = build_entry(
            action="agency.registered", outcome="success", actor_role="administrator"
        )
    assert entry["action"] == "agency_changed" and entry["reason_code"] == "registered"
    assert entry["actor"] == {"agency_id": app.config["HUB_ID"], "role": "administrator"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({**PUSH, "child_name": "Kevin Josué"}, "unknown audit fields ['child_name']"),
        ({**PUSH, "action": "record.eaten"}, "/action"),
        ({**PUSH, "child_id": "Kevin Josué Ejemplo"}, "/child_id"),
        ({**PUSH, "purpose": "curiosity"}, "/purpose"),
        ({**PUSH, "outcome": None}, "outcome"),
        ({**PUSH, "consent_ids": ["c-1"]}, "need decision_basis"),
        ({**PUSH, "consent_ids": ["María López"], "decision_basis": "consent"}, "consent_ids"),
        ({**PUSH, "time": datetime(2024, 5, 20)}, "timezone-aware"),
    ],
)
def test_bad_fields_fail_the_action(app: Flask, fields: dict, message: str) -> None:
    with app.app_context(), pytest.raises(AuditFieldError, match=message.replace("[", r"\[")):
        build_entry(**fields)


def test_entry_commits_and_rolls_back_with_its_action(app: Flask, session: Session) -> None:
    record_event(session, **PUSH)
    session.rollback()
    assert _entries(session) == []

    record_event(session, **PUSH, detail="kept")
    with session.begin_nested() as savepoint:
        record_event(session, **PUSH, detail="bad_line")
        savepoint.rollback()
    record_event(session, **PUSH, detail="also_kept")
    session.commit()
    kept = [audit.parse_canonical_entry(row.entry)["reason_code"] for row in _entries(session)]
    assert kept == ["kept", "also_kept"]


def test_entries_follow_savepoints_closes_and_failed_commits(app: Flask, session: Session) -> None:
    from exchange.models import HubSetting

    fresh = db.database(app).sessions()
    record_event(fresh, **PUSH, detail="rolled_back_before_any_sql")
    fresh.rollback()
    fresh.commit()
    record_event(fresh, **PUSH, detail="closed_without_commit")
    fresh.close()
    fresh.commit()

    with session.begin_nested():
        record_event(session, **PUSH, detail="in_released_savepoint")
    with session.begin_nested() as outer:
        with session.begin_nested():
            record_event(session, **PUSH, detail="inner_of_rolled_back")
        outer.rollback()
    session.commit()

    record_event(session, **PUSH, detail="failed_commit")
    session.add(HubSetting(key="hub_id", value="duplicate"))  # `puente init` wrote this key
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    reasons = [audit.parse_canonical_entry(row.entry)["reason_code"] for row in _entries(session)]
    assert reasons == ["in_released_savepoint"]


def test_entries_are_visible_inside_their_own_transaction(app: Flask, session: Session) -> None:
    entry_id = record_event(session, **PUSH)
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1
    assert session.get(AuditEntry, entry_id) is not None


# --- sequencing ------------------------------------------------------------------------------


def test_integrator_sequences_in_insertion_order_and_signs(app: Flask, session: Session) -> None:
    assert integrate_pending(app).checkpoint == 0  # the empty tree is signed first
    _log(app, session, 600)
    result = integrate_pending(app, force_checkpoint=True)
    assert (result.sequenced, result.size, result.checkpoint) == (600, 600, 600)
    rows = _entries(session)
    assert [row.idx for row in rows] == list(range(600))  # ids are creation-ordered
    leaves = [audit.leaf_hash(row.entry) for row in rows]
    state = session.get(AuditLogState, 1)
    assert state is not None and state.root == audit.root_hash(leaves)
    stored = session.get(AuditCheckpoint, 600)
    assert stored is not None
    verifier = audit.Verifier.from_vkey(hub_keys(app).log.vkey)  # type: ignore[union-attr]
    checkpoint = audit.open_checkpoint(stored.note, [verifier], origin=audit_origin(app))
    assert (checkpoint.size, checkpoint.root_hash) == (600, audit.root_hash(leaves))
    assert integrate_pending(app) == type(result)(sequenced=0, size=None, checkpoint=None)


def _insert_raw(session: Session, start: int, count: int) -> None:
    # Bulk rows straight into the table: enough to grow the tree past tile level 2 quickly.
    now = datetime.now(UTC)
    rows = []
    for n in range(start, start + count):
        entry = b'{"n":%d}' % n
        rows.append(
            {
                "id": f"{n:032d}",
                "entry": entry,
                "leaf_hash": audit.leaf_hash(entry),
                "recorded_at": now,
                "action": "record_read",
                "outcome": "success",
            }
        )
    session.execute(AuditEntry.__table__.insert(), rows)
    session.commit()


@pytest.mark.parametrize(
    ("tile_height", "batches"),
    [
        (8, (1, 254, 1, 300, 100)),  # C2SP tiles: full and partial tiles at levels 0 and 1
        (2, (1, 2, 13, 48, 1, 200, 90)),  # 4-hash tiles reach tile level 4 with few entries
    ],
)
def test_tiles_serve_the_same_proofs_as_a_memory_tree(
    app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch, tile_height: int, batches: tuple
) -> None:
    from exchange import audit_sequencer

    monkeypatch.setattr(audit_sequencer, "TILE_HEIGHT", tile_height)
    monkeypatch.setattr(audit_sequencer, "TILE_WIDTH", 1 << tile_height)
    reference = audit.MemoryTree()
    for batch in batches:
        _insert_raw(session, reference.size, batch)
        integrate_pending(app)
        for n in range(reference.size, reference.size + batch):
            reference.append(audit.leaf_hash(b'{"n":%d}' % n))
        store = TileStore(session)
        size = reference.size
        for index in {*range(0, size, 5), size - 1}:
            assert audit.inclusion_proof(index, size, store) == reference.inclusion_proof(
                index, size
            )
        for old in range(1, size + 1, 7):
            assert audit.consistency_proof(old, size, store) == reference.consistency_proof(
                old, size
            )
    width = 1 << tile_height
    tiles = {tuple(row) for row in session.execute(select(AuditTile.level, AuditTile.tile_index))}
    top = max(level for level, _ in tiles)
    assert (size.bit_length() - 1) // tile_height == top  # the top tile level is the root's
    first = session.get(AuditTile, (0, 0))
    assert first is not None
    assert first.hashes == b"".join(reference.get_nodes([audit.NodeId(0, i) for i in range(width)]))


def test_no_checkpoint_is_signed_for_a_tampered_tree(app: Flask, session: Session) -> None:
    _log(app, session, 40)
    integrate_pending(app, force_checkpoint=True)
    # Someone rewrites a stored leaf hash: the next tree no longer extends checkpoint 40.
    tile = session.get(AuditTile, (0, 0))
    assert tile is not None
    session.execute(
        update(AuditTile)
        .where(AuditTile.level == 0, AuditTile.tile_index == 0)
        .values(hashes=bytes(32) + tile.hashes[32:])
    )
    session.commit()
    _log(app, session, 5)
    with pytest.raises(LogIntegrityError, match="does not extend"):
        integrate_pending(app, force_checkpoint=True)
    session.expire_all()
    assert session.scalar(select(func.max(AuditCheckpoint.size))) == 40
    assert session.scalar(select(func.count()).where(AuditEntry.idx.is_(None))) == 5


def test_concurrent_integrators_never_assign_an_index_twice(app: Flask, session: Session) -> None:
    errors: list[BaseException] = []

    def write_and_integrate() -> None:
        try:
            with app.app_context():
                own = db.database(app).sessions()
                for _ in range(5):
                    _log(app, own, 60)
                    integrate_pending(app)
                own.close()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write_and_integrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    integrate_pending(app, force_checkpoint=True)
    assert sorted(row.idx for row in _entries(session)) == list(range(900))


def test_postgresql_integrators_skip_a_locked_log(app: Flask, session: Session) -> None:
    if db.database(app).is_sqlite:
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers instead")
    integrate_pending(app)
    _log(app, session, 3)
    with db.database(app).engine.connect() as other:
        other.execute(text("SELECT size FROM audit_log_state WHERE id = 1 FOR UPDATE"))
        assert integrate_pending(app).skipped
        other.rollback()
    assert integrate_pending(app).sequenced == 3


def test_integrator_thread_runs_only_when_asked(app: Flask, session: Session) -> None:
    app.test_client().get("/healthz")
    assert ensure_integrator(app) is None  # only `puente serve` workers start it by default
    assert ensure_integrator(app, serving=True) is None  # and not under TESTING
    app.config["TESTING"] = False
    app.test_client().get("/healthz")
    assert "puente.audit_integrator" not in app.extensions  # a request alone does not
    app.config["TESTING"] = True
    app.config["AUDIT_INTEGRATOR_THREAD"] = True
    app.config["AUDIT_INTEGRATE_INTERVAL"] = 0.05
    try:
        app.test_client().get("/healthz")  # the first request starts it
        thread = ensure_integrator(app)
        assert thread is not None and thread.is_alive()
        _log(app, session, 10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            session.expire_all()
            if session.scalar(select(func.max(AuditCheckpoint.size))) == 10:
                break
            time.sleep(0.05)
        assert session.scalar(select(func.max(AuditCheckpoint.size))) == 10
    finally:
        stop_integrator(app)


def test_the_integrator_backs_off_with_one_line_while_the_database_is_down(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []
    thread = audit_sequencer.IntegratorThread(app, interval=0.25)

    class Stopped:
        def wait(self, seconds: float) -> bool:
            waits.append(seconds)
            return len(waits) > 5

    def full_batch_then_down(_app: Flask) -> Any:
        if len(waits) == 1:  # a full batch was sequenced: the next run is at once
            return SimpleNamespace(sequenced=audit_sequencer.DEFAULT_BATCH)
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(thread, "_stopped", Stopped())
    monkeypatch.setattr(audit_sequencer, "integrate_pending", full_batch_then_down)
    with caplog.at_level("WARNING", logger=audit_sequencer.log.name):
        thread.run()
    assert waits == [0.25, 0, 0.5, 1.0, 2.0, 4.0]  # never 0 again after a failure
    failures = [r for r in caplog.records if "integrator run failed" in r.getMessage()]
    assert len(failures) == 4
    assert all(r.exc_info is None and "connection refused" in r.getMessage() for r in failures)


_WRITER = """
import sys
from exchange import create_app, db
from exchange.audit_log import record_event
from exchange.audit_sequencer import integrate_pending
app = create_app({"INSTANCE_PATH": sys.argv[1], "DATABASE_URL": sys.argv[2],
                  "AUDIT_CHECKPOINT_INTERVAL": 0.000001, "AUDIT_MAX_PER_RUN": 50})
with app.app_context():
    session = db.database(app).sessions()
    skipped = 0
    for round in range(8):
        for i in range(40):
            record_event(session, action="record.read", outcome="success",
                         actor_agency="mx.fed.comar", child_id=f"ch-{sys.argv[3]}-{round}-{i}")
        session.commit()
        skipped += integrate_pending(app).skipped
    print(skipped)
"""


def test_integrators_in_several_processes_build_one_consistent_log(
    app: Flask, session: Session
) -> None:
    import subprocess
    import sys

    url = str(db.database(app).url.render_as_string(hide_password=False))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, app.instance_path, url, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    while integrate_pending(app, force_checkpoint=True).sequenced:
        pass
    rows = _entries(session)
    assert sorted(row.idx for row in rows) == list(range(960))  # type: ignore[type-var]
    leaves = [audit.leaf_hash(row.entry) for row in sorted(rows, key=lambda r: r.idx or 0)]
    store = TileStore(session)
    notes = list(session.scalars(select(AuditCheckpoint.note).order_by(AuditCheckpoint.size)))
    verifier = audit.Verifier.from_vkey(hub_keys(app).log.vkey)  # type: ignore[union-attr]
    checkpoints = [audit.open_checkpoint(note, [verifier]) for note in notes]
    assert checkpoints[-1].size == 960
    for old, new in itertools.pairwise(checkpoints):
        proof = audit.consistency_proof(old.size, new.size, store) if old.size else []
        audit.verify_checkpoint_consistency(old, new, proof)
        assert new.root_hash == audit.root_hash(leaves[: new.size])
