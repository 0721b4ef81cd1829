"""What an outside check of a state DIF office importing files found (s18), on both backends.

- A file sent again whose rows equal an *older* version of their records is not applied (the hub
  keeps the newer version): the bulk line says so (``older_version``), and ``puente import``
  counts such rows apart, names them and says how to apply them on purpose (``--batch 1``).
- On PostgreSQL a large import kept its pace as the agency's identifiers grew only once the
  tables were analysed: the identifier lookup probes the unique index by value whatever the
  statistics, and a direct import analyses the tables it grows as they double.
- Library log lines (psycopg's, SQLAlchemy's warnings) reach the hub's JSON log as JSON.
- Leftovers of an import killed with ``kill -9`` are swept; ``puente init`` lists every secret
  it creates. (The summary's words, and a closed Primero case without its closure:
  tests/unit/test_import_words_s18.py.)
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import flask
import psycopg
import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, SAWarning

from exchange import db, import_sinks, logs
from exchange.child_linking import owners_of
from exchange.hot_sql import HotSQL
from exchange.import_sinks import DirectSink
from exchange.record_push import Pusher
from tests.api import test_import
from tests.api.records_support import add_agency, push, push_bulk
from tests.api.test_import import MODES, OWNER, Hub, api, envelope, run, write_ndjson
from tests.conftest import backend_database, make_hub

hub = test_import.hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


# -- PostgreSQL: the identifier lookup whatever the statistics --------------------------------


@pytest.fixture
def pg_hub(tmp_path: Path) -> Iterator[Flask]:
    with backend_database("postgresql", tmp_path) as url:
        app = make_hub(tmp_path, url)
        yield app
        app.extensions["puente.db"].engine.dispose()


def _numbered(statement: str) -> str:
    """``%s`` placeholders as ``$1``, ``$2``… (a prepared statement's)."""
    parts = statement.split("%s")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for each in plan.get("Plans", ()):
        yield from _nodes(each)


def test_the_identifier_lookup_probes_the_index_by_value_without_statistics(
    pg_hub: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tables were never analysed (autovacuum off, as on the checked server), and the
    # statement runs as a prepared statement's generic plan, as psycopg runs a statement after
    # its fifth time: the old lookup scanned every identifier of the agency for each batch.
    add_agency(pg_hub, OWNER)
    with pg_hub.app_context():
        sink = DirectSink(pg_hub, OWNER)
        try:
            outcomes = sink.push([envelope(f"L-{n}", case_number=f"C-{n}") for n in range(60)])
        finally:
            sink.close()
    assert {outcome.status for outcome in outcomes} == {"stored"}
    captured: list[tuple[str, tuple[Any, ...]]] = []
    rows = HotSQL.rows

    def recording(self: HotSQL, statement: str, params: Any = ()) -> list[Any]:
        if "child_identifier" in statement:
            captured.append((self.sql(statement), tuple(params)))
        return rows(self, statement, params)

    monkeypatch.setattr(HotSQL, "rows", recording)
    lookups = [("agency_local", OWNER, f"L-{n}") for n in range(0, 120, 2)]
    with pg_hub.app_context(), db.database(pg_hub).sessions() as session:
        found = owners_of(session, lookups)
        assert len(found) == 30
        [(statement, params)] = captured
        raw = session.connection().connection.dbapi_connection
        raw.execute("ALTER TABLE child_identifier SET (autovacuum_enabled = false)")
        raw.execute("SET plan_cache_mode = force_generic_plan")
        raw.execute(f"PREPARE probe AS {_numbered(statement)}")
        explain = psycopg.ClientCursor(raw)
        marks = ", ".join(["%s"] * len(params))
        explain.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe({marks})", params)
        [[plan]] = explain.fetchall()
    scans = [n for n in _nodes(plan[0]["Plan"]) if n.get("Relation Name") == "child_identifier"]
    assert scans, plan
    for scan in scans:
        assert "value" in scan.get("Index Cond", ""), scan
        assert scan.get("Rows Removed by Filter", 0) == 0, scan


def pushed_versions(app: Flask, count: int, *, stored_as: str = "A") -> DirectSink:
    """A direct import's sink after pushing ``count`` new records, two a batch."""
    sink = DirectSink(app, OWNER)
    for n in range(0, count, 2):
        batch = [envelope(f"{stored_as}-{m}", case_number=f"C-{m}") for m in (n, n + 1)]
        assert {o.status for o in sink.push(batch[: count - n])} == {"stored"}
    return sink


def table_statistics(app: Flask, table: str) -> tuple[float, int]:
    """(rows PostgreSQL last counted, times the table was analysed)."""
    with app.app_context(), db.database(app).sessions() as session:
        row = session.execute(
            text(
                "SELECT c.reltuples, COALESCE(s.analyze_count, 0) FROM pg_class c"
                " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
                " WHERE c.oid = to_regclass(:table)"
            ),
            {"table": table},
        ).one()
    return float(row[0]), int(row[1])


def test_a_direct_import_analyses_the_tables_it_grows_each_time_they_double(
    pg_hub: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_sinks, "ANALYZE_AFTER", 4)
    add_agency(pg_hub, OWNER)
    with pg_hub.app_context():
        sink = pushed_versions(pg_hub, 14)
        sink.close()
    # At 4 records stored (the first analysis), then at 8 (as many again); 16 is not reached.
    assert sink.statistics.analyses == 2
    for table in import_sinks.GROWN_TABLES:
        _rows, analysed = table_statistics(pg_hub, table)
        assert analysed == 2, table
    assert table_statistics(pg_hub, "record_version")[0] == 8
    assert table_statistics(pg_hub, "child_profile")[0] == 8


def test_a_hub_grown_unanalysed_is_analysed_before_the_first_batch(
    pg_hub: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_agency(pg_hub, OWNER)
    monkeypatch.setattr(import_sinks, "ANALYZE_AFTER", 10**9)
    with pg_hub.app_context():
        pushed_versions(pg_hub, 10).close()
    # PostgreSQL counts the rows changed once the pushing connection reports them.
    db.database(pg_hub).engine.dispose()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with pg_hub.app_context(), db.database(pg_hub).sessions() as session:
            changed = session.execute(
                text(
                    "SELECT n_mod_since_analyze FROM pg_stat_user_tables"
                    " WHERE relid = to_regclass('record_version')"
                )
            ).scalar()
        if changed and changed >= 10:
            break
        time.sleep(0.2)
    assert table_statistics(pg_hub, "record_version") == (-1, 0)  # never analysed
    monkeypatch.setattr(import_sinks, "ANALYZE_AFTER", 5)
    with pg_hub.app_context():
        sink = DirectSink(pg_hub, OWNER)
        sink.close()
    assert sink.statistics.analyses == 1
    assert table_statistics(pg_hub, "record_version") == (10, 1)


def test_a_direct_import_on_sqlite_analyses_nothing(tmp_path: Path) -> None:
    app = make_hub(tmp_path, f"sqlite:///{tmp_path / 'puente.db'}")
    add_agency(app, OWNER)
    try:
        with app.app_context():
            sink = pushed_versions(app, 6)
            sink.close()
        assert not sink.statistics.enabled and sink.statistics.analyses == 0
    finally:
        app.extensions["puente.db"].engine.dispose()


# -- a file sent again whose rows equal older versions -----------------------------------------


def test_a_bulk_line_equal_to_an_older_version_says_which(app: Flask) -> None:
    client, dif = app.test_client(), add_agency(app, OWNER)
    first, second = envelope("V-1", case_number="C-1"), envelope("V-1", case_number="C-2")
    push_bulk(client, dif, [first])
    _, [stored] = push_bulk(client, dif, [second])
    _, [again] = push_bulk(client, dif, [first])
    # Still "unchanged" (nothing stored, the latest version named), and which version it equals.
    assert (again["status"], again["version"], again["older_version"]) == ("unchanged", 2, 1)
    assert again["body_sha256"] == stored["body_sha256"]
    # As an export writes it (with the record's own child): the same.
    _, [exported] = push_bulk(client, dif, [{**first, "child_id": stored["child_id"]}])
    assert (exported["status"], exported["older_version"]) == ("unchanged", 1)
    # Equal to the latest: nothing more to say.
    _, [latest] = push_bulk(client, dif, [second])
    assert latest["status"] == "unchanged" and "older_version" not in latest
    # A single push is compared with the latest only: it sets the record back.
    assert push(client, dif, first).get_json()["version"] == 3
    _, [now] = push_bulk(client, dif, [first])
    assert now["status"] == "unchanged" and "older_version" not in now


def sheet_versions(tmp_path: Path, count: int) -> tuple[Path, Path]:
    """The office's file (risk «Medio»), and the next one (the same records changed)."""
    first = write_ndjson(
        tmp_path / "v1.ndjson", [envelope(f"V-{n}", case_number="C-1") for n in range(count)]
    )
    second = write_ndjson(
        tmp_path / "v2.ndjson", [envelope(f"V-{n}", case_number="C-2") for n in range(count)]
    )
    return first, second


@pytest.mark.parametrize("mode", MODES)
def test_a_file_set_back_to_older_versions_is_not_applied_and_the_summary_says_so(
    hub: Hub, tmp_path: Path, mode: str
) -> None:
    first, second = sheet_versions(tmp_path, 12)
    through = api(hub) if mode == "api" else []

    def imported(file: Path, *more: str) -> Any:
        return run("import", "--adapter", "ndjson", file, "--agency", OWNER, *through, *more)

    assert imported(first).exit_code == 0 and imported(second).exit_code == 0
    again = imported(first, "--json")
    assert again.exit_code == 0, again.output  # a warning, not a failure
    summary = json.loads(again.output)
    assert (summary["stored"], summary["unchanged"], summary["older_versions"]) == (0, 0, 12)
    assert summary["older_version_items"][0] == {
        "position": "1",
        "local_id": "V-0",
        "older_version": 1,
        "version": 2,
        "message_es": "igual a la versión 1; el nodo tiene la versión 2",
        "message_en": "equal to version 1; the hub holds version 2",
    }
    told = imported(first, "--lang", "en").output
    assert "stored 0, unchanged 0, equal to an older version (not applied) 12, rejected 0" in told
    assert "guardados 0, sin cambios 0, iguales a una versión anterior (no aplicados) 12" in told
    assert "Warning: 12 records equal to an older version, not applied" in told
    assert (
        "  position / posición 1 (V-0): equal to version 1; the hub holds version 2 / igual a la "
        "versión 1; el nodo tiene la versión 2"
    ) in told
    assert "… and 2 more (--json gives up to 1000)" in told
    assert hub.versions() == 24
    # Applied on purpose, as the warning says: one by one, each becomes the latest version.
    applied = json.loads(imported(first, "--batch", "1", "--json").output)
    assert (applied["stored"], applied["older_versions"]) == (12, 0)
    assert hub.versions() == 36


@pytest.mark.parametrize("mode", MODES)
def test_a_file_restoring_lost_parts_is_told_it_was_not_applied(
    hub: Hub, tmp_path: Path, mode: str
) -> None:
    through = api(hub) if mode == "api" else []
    whole = envelope("P-1")
    partial = envelope("P-1")
    del partial["data"]["placements"], partial["data"]["related_persons"]

    def imported(lines: list[Any], *more: str) -> dict[str, Any]:
        file = write_ndjson(tmp_path / "p.ndjson", lines)
        result = run(
            "import", "--adapter", "ndjson", file, "--agency", OWNER, "--json", *through, *more
        )
        assert result.exit_code == 0, result.output
        summary: dict[str, Any] = json.loads(result.output)
        return summary

    imported([whole])
    assert imported([partial])["lost_parts_records"] == 1
    back = imported([whole])
    assert (back["stored"], back["unchanged"], back["older_versions"]) == (0, 0, 1)
    restored = imported([whole], "--batch", "1")
    assert (restored["stored"], restored["older_versions"]) == (1, 0)


# -- library log lines as JSON lines -----------------------------------------------------------


@contextmanager
def json_log(name: str) -> Iterator[io.StringIO]:
    """What the hub's JSON handler of logger ``name`` writes, meanwhile."""
    [handler] = [h for h in logging.getLogger(name).handlers if getattr(h, "_puente", False)]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


#: What psycopg logs when a statement in a pipeline raised and the pipeline cannot end cleanly
#: (psycopg/_pipeline.py): on the push path, a batch's insert losing a race to a concurrent
#: push's unique key while psycopg still sends the batch's rows (it depends on timing, so the
#: test logs it as psycopg does, with a real pipeline and psycopg's own exception).
PIPELINE_ABORTED = "error ignored terminating %r: %s"


def test_psycopgs_pipeline_aborted_on_a_lost_race_is_a_json_line_at_debug(pg_hub: Flask) -> None:
    source = Path(psycopg.__file__).with_name("_pipeline.py").read_text(encoding="utf-8")
    assert f'logger.warning("{PIPELINE_ABORTED}", self, exc2)' in source
    written = {}
    try:
        for level in ("INFO", "DEBUG"):
            logs.configure(level)
            with pg_hub.app_context(), db.database(pg_hub).sessions() as session:
                raw = session.connection().connection.dbapi_connection
                with raw.pipeline() as pipeline, json_log("psycopg") as stream:
                    aborted = psycopg.errors.PipelineAborted("pipeline aborted")
                    logging.getLogger("psycopg").warning(PIPELINE_ABORTED, pipeline, aborted)
                session.rollback()
            written[level] = stream.getvalue()
    finally:
        logs.configure("INFO")
    assert written["INFO"] == ""
    [line] = written["DEBUG"].splitlines()
    entry = json.loads(line)
    assert (entry["level"], entry["logger"]) == ("debug", "psycopg")
    assert "pipeline aborted by the error of one of its statements" in entry["message"]
    assert "un envío que perdió una carrera con otro se intenta de nuevo" in entry["message"]
    assert entry["pipeline"].startswith("<psycopg.Pipeline")


def test_other_psycopg_warnings_stay_warnings(app: Flask) -> None:
    with json_log("psycopg") as stream:
        logging.getLogger("psycopg").warning("error ignored exiting %r: %s", "p", "boom")
    [entry] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (entry["level"], entry["message"]) == ("warning", "error ignored exiting 'p': boom")


def test_a_library_line_in_a_request_names_the_request(app: Flask) -> None:
    with app.test_request_context("/"), json_log("sqlalchemy") as stream:
        flask.g.request_id = "req-s18"
        logging.getLogger("sqlalchemy.pool.impl").warning("connection %s invalidated", "c1")
        logging.getLogger("sqlalchemy.engine").info("SELECT 1")  # never: its INFO is SQL
    [entry] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["logger"] == "sqlalchemy.pool.impl" and entry["level"] == "warning"
    assert (entry["message"], entry["request_id"]) == ("connection c1 invalidated", "req-s18")


def test_sqlalchemys_warnings_are_json_lines_once_captured() -> None:
    logging.captureWarnings(False)  # a hub made earlier in this process, not under test, may have
    try:
        with warnings.catch_warnings():
            logs.configure("INFO", capture_warnings=True)
            warnings.simplefilter("always")
            with json_log("py.warnings") as stream:
                warnings.warn("relationship X will copy column Y", SAWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)
    [entry] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (entry["logger"], entry["level"]) == ("py.warnings", "warning")
    assert "SAWarning: relationship X will copy column Y" in entry["message"]


def test_a_hub_captures_pythons_warnings_unless_under_test(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[bool] = []
    monkeypatch.setattr(logging, "captureWarnings", captured.append)
    app = Flask("s18")
    app.config["LOG_LEVEL"] = "INFO"
    logs.init_app(app)
    app.testing = True
    logs.init_app(app)
    assert captured == [True]


def test_a_push_that_lost_a_race_is_said_in_the_log_with_its_request(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, dif = app.test_client(), add_agency(app, OWNER)
    store, lost = Pusher.store, []

    def losing_once(self: Pusher, items: list[Any], **options: Any) -> Any:
        if not lost:
            lost.append(True)
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        return store(self, items, **options)

    monkeypatch.setattr(Pusher, "store", losing_once)
    with json_log("puente") as stream:
        response, [line] = push_bulk(client, dif, [envelope("R-1")])
    assert line["status"] == "stored"
    entries = [json.loads(each) for each in stream.getvalue().splitlines()]
    [retry] = [each for each in entries if each["logger"] == "puente.push"]
    assert (retry["level"], retry["agency"]) == ("info", OWNER)
    assert retry["request_id"] == response.headers["X-Request-Id"]
    won = "a concurrent push won the race (Exception); trying again, attempt 2 of 3"
    assert won in retry["message"]


# -- leftovers of a run killed outright --------------------------------------------------------


def leftover(folder: Path, name: str, *, age: float = 3600) -> Path:
    path = folder / name
    path.write_bytes(b"")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_new_import_sweeps_what_a_killed_one_left_beside_its_file(
    hub: Hub, tmp_path: Path
) -> None:
    file = write_ndjson(tmp_path / "F.ndjson", [envelope("K-1"), {"schema": "nope"}])
    killed = leftover(tmp_path, ".F-rejects.ndjson.k365ke88")
    underscored = leftover(tmp_path, ".F-rejects.ndjson.0xi_f35s")
    just_made = leftover(tmp_path, ".F-rejects.ndjson.abcdefgh", age=0)  # a run starting
    another_file = leftover(tmp_path, ".G-rejects.ndjson.k365ke88")
    not_ours = leftover(tmp_path, ".F-rejects.ndjson.notes")
    running = leftover(tmp_path, ".F-rejects.ndjson.running1")
    with open(running, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # an import under way holds its own
        result = run("import", "--adapter", "ndjson", file, "--agency", OWNER)
    assert result.exit_code == 1, result.output  # the bad line
    assert (tmp_path / "F-rejects.ndjson").exists()
    assert not killed.exists() and not underscored.exists()
    assert just_made.exists() and another_file.exists() and not_ours.exists()
    assert running.exists()
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".F-rejects"))
    assert hidden == [just_made.name, not_ours.name, running.name]


# -- puente init names every secret it makes ---------------------------------------------------


def test_init_lists_the_data_key_and_the_portal_secret_it_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = tmp_path / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("PUENTE_DATABASE_URL", f"sqlite:///{tmp_path / 'puente.db'}")
    english = run("init", "--lang", "en")
    assert english.exit_code == 0, english.output
    [data_key] = sorted((instance / "keys" / "data").glob("*.key"))
    assert f"  new data key: {data_key}" in english.output.splitlines()
    assert f"  new portal secret: {instance / 'keys' / 'portal-secret.key'}" in (
        english.output.splitlines()
    )
    # Run again, nothing is new: nothing is listed.
    again = run("init", "--lang", "es")
    assert "llave de datos nueva" not in again.output and "secreto nuevo" not in again.output
    assert "new key" not in again.output and "llave nueva" not in again.output
