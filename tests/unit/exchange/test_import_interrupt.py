"""Ctrl-C during ``puente import`` and ``puente export``: a bilingual message on stderr with
what was stored, exit code 130, ``--json`` with ``"interrupted": true``, no traceback, the
decoding process stopped, no rejects or export file, and a second run that goes on where the
first stopped; and the terminal report of an import, which lists the first rejected rows."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import func, select

from exchange import db, exporter, hub_client
from exchange.agencies import register_agency
from exchange.cli import main
from exchange.hub_client import Answer
from exchange.records import Record, RecordVersion
from tests.api.records_support import example
from tests.conftest import REPO, make_hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

AGENCY = "mx.chp.dif"
HUB = "http://localhost"
ROWS = 3000


class Hub:
    def __init__(self, app: Flask, secret: str, env: dict[str, str]) -> None:
        self.app = app
        self.secret = secret
        self.env = env

    def count(self, table: Any) -> int:
        with db.database(self.app).sessions() as session:
            return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    app = make_hub(tmp_path, database_url)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    with app.app_context(), db.database(app).sessions.begin() as session:
        registered = register_agency(
            session, AGENCY, AGENCY, "state", "07", ["records:write", "records:read"],
            with_secret=True,
        )  # fmt: skip
    assert registered.client_secret is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env.update(
        PUENTE_INSTANCE_PATH=app.instance_path,
        PUENTE_DATABASE_URL=database_url,
        PUENTE_LOG_LEVEL="WARNING",
    )
    yield Hub(app, registered.client_secret, env)
    app.extensions["puente.db"].engine.dispose()


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def bench() -> ModuleType:
    """``bench/import.py``: its generator of DIF spreadsheets (about 1 % of rows wrong)."""
    spec = importlib.util.spec_from_file_location("puente_import_bench", REPO / "bench/import.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def envelope(local_id: str, **data_changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(example("typical"))
    data["child"].update(data_changes)
    return {"schema": "case-record/1", "local_id": local_id, "data": data}


def write_ndjson(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def flask_send(app: Flask, after_bulk: Any = lambda calls: None) -> hub_client.Send:
    """The hub's test client in place of the network; ``after_bulk(calls)`` once each bulk
    push is answered."""
    client = app.test_client()
    calls: list[str] = []

    def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = client.open(path, base_url=HUB, method=method, data=body, headers=headers)
        answer = Answer(response.status_code, dict(response.headers), response.get_data())
        if url.endswith("/v1/records/bulk"):
            calls.append(url)
            after_bulk(len(calls))
        return answer

    return send


def ctrl_c() -> None:
    """Ctrl-C, as the terminal sends it."""
    os.kill(os.getpid(), signal.SIGINT)


# -- Ctrl-C in a real process ------------------------------------------------------------------


def start_direct_import(hub: Hub, sheet: Path, lang: str) -> subprocess.Popen[bytes]:
    """``puente import`` of ``sheet`` in direct mode, batches of 50, in a process group of its
    own (as a terminal's, or a service's)."""
    command = [
        sys.executable, "-m", "exchange.cli", "import", "--adapter", "csv", "--mapping",
        "dif-estatal", str(sheet), "--agency", AGENCY, "--batch", "50", "--json",
        "--no-progress", "--lang", lang,
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=hub.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop_once_rows_are_stored(
    hub: Hub, process: subprocess.Popen[bytes], stop: Callable[[], None]
) -> tuple[str, str]:
    """Wait until the import has stored some rows, ``stop`` it, and give its stdout and
    stderr once it ended."""
    try:
        deadline = time.monotonic() + 120
        while hub.count(Record) == 0:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no row was stored"
            time.sleep(0.01)
        stop()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return out.decode(), err.decode()


def assert_process_group_gone(process: subprocess.Popen[bytes]) -> None:
    """No process of the stopped import's group (the decoding process) is left."""
    for _ in range(100):
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail("a process of the stopped import is still running")


def test_ctrl_c_during_a_direct_import_says_what_was_stored_and_a_rerun_goes_on(
    hub: Hub, tmp_path: Path
) -> None:
    sheet = tmp_path / "expedientes.csv"
    bench().write_csv(sheet, ROWS)
    # A process group of its own, as a terminal's: Ctrl-C reaches the import and the process
    # it decodes the sheet in.
    process = start_direct_import(hub, sheet, "es")
    stdout, stderr = stop_once_rows_are_stored(
        hub, process, lambda: os.killpg(process.pid, signal.SIGINT)
    )

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr
    # Both languages, Spanish first (--lang es), with what was stored and how to go on.
    spanish = stderr.index("importación interrumpida (Ctrl-C)")
    english = stderr.index("import interrupted (Ctrl-C)")
    assert spanish < english
    summary = json.loads(stdout)
    assert summary["interrupted"] is True
    stored = summary["stored"]
    assert 0 < stored < ROWS
    assert f"{stored} registros guardados hasta ahora" in stderr
    assert f"{stored} records stored so far" in stderr
    assert "run the same command again" in stderr and "'unchanged'" in stderr
    assert "ejecute el mismo comando de nuevo" in stderr
    # What the summary says was stored is what is stored: whole batches.
    assert hub.count(Record) == hub.count(RecordVersion) == stored
    assert stored % 50 == 0
    # No rejects file, no temporary file left behind, and the decoding process is gone.
    assert summary["rejects_file"] is None
    assert sorted(path.name for path in tmp_path.iterdir() if "rejects" in path.name) == []
    assert_process_group_gone(process)

    # The same command again: what was stored answers unchanged, the rest is stored.
    again = run("import", "--adapter", "csv", "--mapping", "dif-estatal", sheet,
                "--agency", AGENCY, "--batch", "50", "--json", "--no-progress")  # fmt: skip
    result = json.loads(again.stdout)
    assert again.exit_code == 1  # the generated sheet has wrong rows
    assert result["interrupted"] is False
    assert result["unchanged"] == stored
    assert result["stored"] + result["unchanged"] + result["rejected"] == ROWS
    assert hub.count(RecordVersion) == ROWS - result["rejected"]  # nothing stored twice
    assert Path(result["rejects_file"]).exists()


# -- Ctrl-C in this process (click's runner) -------------------------------------------------


def test_ctrl_c_during_an_import_through_the_api_waits_for_the_batch_under_way(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C arrives while the hub stores the second batch: that batch is counted, then the
    # import stops.
    def on_bulk(calls: int) -> None:
        if calls == 2:
            ctrl_c()

    monkeypatch.setattr(hub_client, "default_send", lambda: flask_send(hub.app, on_bulk))
    file = write_ndjson(tmp_path / "seis.ndjson", [envelope(f"L-{n}") for n in range(6)])
    result = run("import", "--adapter", "ndjson", file, "--agency", AGENCY, "--batch", "2",
                 "--json", "--hub", HUB, "--client-secret", hub.secret)  # fmt: skip
    assert result.exit_code == 130, result.output
    summary = json.loads(result.stdout)
    assert summary["interrupted"] is True and summary["mode"] == "api"
    assert summary["stored"] == 4 == hub.count(Record)
    assert result.stderr.index("import interrupted") < result.stderr.index("importación")
    assert "4 records stored so far" in result.stderr
    assert "Traceback" not in result.output and "Aborted" not in result.output
    assert not (tmp_path / "seis-rejects.ndjson").exists()

    # Sent again: the four answer unchanged, the other two are stored.
    monkeypatch.setattr(hub_client, "default_send", lambda: flask_send(hub.app))
    again = run("import", "--adapter", "ndjson", file, "--agency", AGENCY, "--json",
                "--hub", HUB, "--client-secret", hub.secret)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (json.loads(again.stdout)["unchanged"], json.loads(again.stdout)["stored"]) == (4, 2)
    assert hub.count(RecordVersion) == 6


def test_ctrl_c_during_an_import_without_json_prints_only_the_message(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        hub_client, "default_send", lambda: flask_send(hub.app, lambda calls: ctrl_c())
    )
    file = write_ndjson(tmp_path / "tres.ndjson", [envelope(f"L-{n}") for n in range(3)])
    result = run("import", "--adapter", "ndjson", file, "--agency", AGENCY, "--hub", HUB,
                 "--client-secret", hub.secret, "--lang", "en")  # fmt: skip
    assert result.exit_code == 130, result.output
    assert result.stdout == ""
    assert "import interrupted (Ctrl-C)" in result.stderr
    assert "importación interrumpida (Ctrl-C)" in result.stderr


def test_ctrl_c_during_an_export_writes_no_file(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write_ndjson(tmp_path / "tres.ndjson", [envelope(f"L-{n}") for n in range(3)])
    assert run("import", "--adapter", "ndjson", file, "--agency", AGENCY).exit_code == 0
    readable = exporter.readable_directly

    def interrupted_after_one(*args: Any) -> Iterator[dict[str, Any]]:
        for number, document in enumerate(readable(*args)):
            if number == 1:
                ctrl_c()
            yield document

    monkeypatch.setattr(exporter, "readable_directly", interrupted_after_one)
    out = tmp_path / "casos.ndjson"
    result = run("export", "--adapter", "ndjson", "--agency", AGENCY, "--purpose",
                 "case_management", "--out", out, "--json", "--lang", "es")  # fmt: skip
    assert result.exit_code == 130, result.output
    assert not out.exists()
    assert [path.name for path in tmp_path.iterdir() if "casos" in path.name] == []
    answer = json.loads(result.stdout)
    assert answer["interrupted"] is True and answer["out"] is None
    assert result.stderr.index("exportación interrumpida") < result.stderr.index(
        "export interrupted"
    )
    assert "no file was written" in result.stderr and "no se escribió" in result.stderr
    assert "Traceback" not in result.output and "Aborted" not in result.output

    monkeypatch.setattr(exporter, "readable_directly", readable)
    done = run("export", "--adapter", "ndjson", "--agency", AGENCY, "--purpose",
               "case_management", "--out", out, "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["interrupted"] is False
    assert len(out.read_text().splitlines()) == 3


# -- the terminal report -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "reason", "other_language"),
    [("en", "is not allowed", "valor no permitido"), ("es", "valor no permitido", "not allowed")],
)
def test_the_terminal_report_lists_the_first_ten_rejected_rows(
    hub: Hub, tmp_path: Path, lang: str, reason: str, other_language: str
) -> None:
    lines = [envelope("OK-1")] + [envelope(f"MAL-{n}", sex="zzz") for n in range(12)]
    file = write_ndjson(tmp_path / "expedientes.ndjson", lines)
    result = run("import", "--adapter", "ndjson", file, "--agency", AGENCY, "--lang", lang)
    assert result.exit_code == 1, result.output
    report = result.stdout.splitlines()
    listed = [line for line in report if line.startswith("  ") and "MAL-" in line]
    # Rows 2 to 11 of the file, with their local ids and the reason, in the language asked.
    assert len(listed) == 10
    for number, line in enumerate(listed):
        assert f" {number + 2} (MAL-{number}): " in line
        assert "/data/child/sex" in line and reason in line
        assert other_language not in line
    rejects = tmp_path / "expedientes-rejects.ndjson"
    more = {"en": f"… and 2 more, see {rejects}", "es": f"… y 2 más, vea {rejects}"}[lang]
    assert any(more in line for line in report), report
    # The counts and the rejects file still end the report.
    assert report[-1] == f"Rechazos / rejects: {rejects}"
    assert "rejected 12" in report[-2] + report[-3]
