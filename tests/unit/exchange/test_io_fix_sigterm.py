"""SIGTERM (``kill``, a service manager stopping it) during ``puente import`` and ``puente
export`` is handled as Ctrl-C is: the batch under way is stored first, the terminal says in
Spanish and English how many records were stored and that running again resumes, exit code
143 (128 + 15), the decoding process stopped, no rejects or export file."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange import exporter, hub_client
from exchange.records import Record, RecordVersion
from tests.unit.exchange import test_import_interrupt
from tests.unit.exchange.test_import_interrupt import (
    AGENCY,
    HUB,
    ROWS,
    Hub,
    assert_process_group_gone,
    bench,
    envelope,
    flask_send,
    run,
    start_direct_import,
    stop_once_rows_are_stored,
    write_ndjson,
)

hub = test_import_interrupt.hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("whom", ["process", "group"])
def test_sigterm_during_a_direct_import_says_what_was_stored_and_exits_143(
    hub: Hub, tmp_path: Path, whom: str
) -> None:
    sheet = tmp_path / "expedientes.csv"
    bench().write_csv(sheet, ROWS)
    process = start_direct_import(hub, sheet, "en")
    # `kill PID` (the import only), or a service manager stopping the whole group (the
    # decoding process too, which simply ends).
    kill = os.kill if whom == "process" else os.killpg
    stdout, stderr = stop_once_rows_are_stored(
        hub, process, lambda: kill(process.pid, signal.SIGTERM)
    )

    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] is True
    stored = summary["stored"]
    assert 0 < stored < ROWS and stored % 50 == 0
    english = stderr.index(f"import interrupted (SIGTERM): {stored} records stored so far")
    spanish = stderr.index(f"importación interrumpida (SIGTERM): {stored} registros guardados")
    assert english < spanish
    assert "run the same command again" in stderr
    assert hub.count(Record) == hub.count(RecordVersion) == stored
    assert not [path for path in tmp_path.iterdir() if "rejects" in path.name]
    assert_process_group_gone(process)  # the decoding process is gone too


def test_sigterm_during_an_import_through_the_api_waits_for_the_batch_under_way(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def on_bulk(calls: int) -> None:
        if calls == 2:
            sigterm()

    monkeypatch.setattr(hub_client, "default_send", lambda: flask_send(hub.app, on_bulk))
    file = write_ndjson(tmp_path / "seis.ndjson", [envelope(f"L-{n}") for n in range(6)])
    result = run("import", "--adapter", "ndjson", file, "--agency", AGENCY, "--batch", "2",
                 "--json", "--hub", HUB, "--client-secret", hub.secret,
                 "--lang", "es")  # fmt: skip
    assert result.exit_code == 143, result.output
    summary = json.loads(result.stdout)
    assert summary["interrupted"] is True and summary["stored"] == 4 == hub.count(Record)
    assert "importación interrumpida (SIGTERM): 4 registros guardados hasta ahora" in result.stderr
    assert "import interrupted (SIGTERM): 4 records stored so far" in result.stderr
    assert "Traceback" not in result.output
    # Sent again, it goes on.
    monkeypatch.setattr(hub_client, "default_send", lambda: flask_send(hub.app))
    again = run("import", "--adapter", "ndjson", file, "--agency", AGENCY, "--json",
                "--hub", HUB, "--client-secret", hub.secret)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (json.loads(again.stdout)["unchanged"], json.loads(again.stdout)["stored"]) == (4, 2)


def test_sigterm_during_an_export_writes_no_file(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write_ndjson(tmp_path / "tres.ndjson", [envelope(f"L-{n}") for n in range(3)])
    assert run("import", "--adapter", "ndjson", file, "--agency", AGENCY).exit_code == 0
    readable = exporter.readable_directly
    before = signal.getsignal(signal.SIGTERM)

    def stopped_after_one(*args: Any) -> Iterator[dict[str, Any]]:
        for number, document in enumerate(readable(*args)):
            if number == 1:
                sigterm()
            yield document

    monkeypatch.setattr(exporter, "readable_directly", stopped_after_one)
    out = tmp_path / "casos.ndjson"
    result = run("export", "--adapter", "ndjson", "--agency", AGENCY, "--purpose",
                 "case_management", "--out", out, "--lang", "en")  # fmt: skip
    assert result.exit_code == 143, result.output
    assert not out.exists()
    assert "export interrupted (SIGTERM) after reading" in result.stderr
    assert "exportación interrumpida (SIGTERM)" in result.stderr
    # The handler is put back once the command is over.
    assert signal.getsignal(signal.SIGTERM) == before
