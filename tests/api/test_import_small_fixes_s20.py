"""Small fixes to ``puente import`` and ``puente export`` after an outside check, on both
backends, through the real command line: a Primero export says what Primero cannot carry, as a
spreadsheet's does, and the import of it back says what the new versions dropped and how to get
the earlier ones back; an import through ``--hub`` waits out a hub restart; the worked example
adapter of docs/adapters.md §7 reads a rejects line fixed inside its ``original``."""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Item, PartialFormat
from adapters.conformance import checks_for
from adapters.csv_adapter_coverage import uncarried_of
from adapters.native import NdjsonAdapter
from exchange import hub_client, importer
from exchange.hub_client import Answer, HubError
from exchange.importer import ImportSummary, Outcome, Patience, pushed_and_rejected
from tests.api import test_import
from tests.api.records_support import example
from tests.api.test_import import (
    OWNER,
    Hub,
    api,
    docs_example,
    flask_send,
    install_package,
    run,
    write_ndjson,
)

hub = test_import.hub
site = test_import.site

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

#: What a Primero case has no field for, of the record below (docs/adapters.md §4).
PRIMERO_LOSES = (
    "/health",
    "/education",
    "/child/entry_to_mexico",
    "/child/needs_interpreter",
    "/case/identified_by",
    "/placements/*/facility_name",
    "/placements/*/reason",
)


def whole_record(local_id: str) -> dict[str, Any]:
    """A record with parts a Primero case cannot hold (health, education, entry to Mexico…)."""
    data = copy.deepcopy(example("typical"))
    other = example("guatemalan_child_with_mother_dif_shelter")
    data["health"], data["education"] = other["health"], other["education"]
    data["child"]["entry_to_mexico"] = other["child"]["entry_to_mexico"]
    data["child"]["needs_interpreter"] = True
    data["case"]["identified_by"] = other["case"]["identified_by"]
    data["case"]["case_number"] = f"C-{local_id}"
    return {"schema": "case-record/1", "local_id": local_id, "data": data}


def exported(adapter: str, out: Path, *extra: str) -> Any:
    return run("export", "--adapter", adapter, "--agency", OWNER, "--purpose",
               "case_management", "--out", out, *extra)  # fmt: skip


# -- 1. a Primero export says what Primero cannot carry -------------------------------------


def test_a_primero_export_warns_of_what_primero_cannot_carry(hub: Hub, tmp_path: Path) -> None:
    file = write_ndjson(tmp_path / "dos.ndjson", [whole_record("W-1"), whole_record("W-2")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0

    out = tmp_path / "casos.json"
    told = exported("primero", out, "--lang", "en")
    assert told.exit_code == 0, told.output
    english = next(line for line in told.stderr.splitlines() if line.startswith("warning:"))
    assert "the primero format has no place for parts of 2 of the 2 records exported" in english
    for part in PRIMERO_LOSES:
        assert f"{part} (2)" in english, (part, english)
    assert "imported back, this file would replace those records" in english
    assert "--adapter ndjson (or json, fhir)" in english
    assert "add columns to the mapping" not in english  # Primero has no mapping to extend
    spanish = told.stderr.index("aviso: el formato primero no tiene lugar para partes de 2")
    assert told.stderr.index("warning:") < spanish  # the language asked for first

    as_json = exported("primero", out, "--json")
    assert as_json.exit_code == 0, as_json.output
    without = json.loads(as_json.stdout)["without_columns"]
    assert without["records"] == 2
    assert {part: without["parts"][part] for part in PRIMERO_LOSES} == dict.fromkeys(
        PRIMERO_LOSES, 2
    )

    # FHIR carries the whole record (each resource's case-record-patch extension): no warning.
    fhir = exported("fhir", tmp_path / "casos-fhir.json", "--json")
    assert fhir.exit_code == 0, fhir.output
    assert json.loads(fhir.stdout)["without_columns"] is None
    assert "warning" not in fhir.stderr and "aviso" not in fhir.stderr


def test_what_the_export_warned_of_is_what_the_import_back_drops(hub: Hub, tmp_path: Path) -> None:
    file = write_ndjson(tmp_path / "dos.ndjson", [whole_record("W-1"), whole_record("W-2")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    out = tmp_path / "casos.json"
    warned = json.loads(exported("primero", out, "--json").stdout)["without_columns"]

    back = run("import", "--adapter", "primero", out, "--agency", OWNER, "--json")
    assert back.exit_code == 0, back.output
    summary = json.loads(back.stdout)
    assert (summary["stored"], summary["lost_parts_records"]) == (2, 2)
    assert summary["lost_parts"] == warned["parts"]  # the export said it before, in full


def test_the_import_summary_says_what_was_dropped_and_how_to_get_it_back(
    hub: Hub, tmp_path: Path
) -> None:
    file = write_ndjson(tmp_path / "dos.ndjson", [whole_record("W-1"), whole_record("W-2")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    out = tmp_path / "casos.json"
    assert exported("primero", out).exit_code == 0

    told = run("import", "--adapter", "primero", out, "--agency", OWNER, "--lang", "en")
    assert told.exit_code == 0, told.output  # a warning, not a failure
    text = " ".join(told.output.split())
    assert (
        "Warning: 2 records were stored as a new version without parts their previous version had: "
    ) in text
    # The commonest parts (all 2 here: the first ten by name), and how many more.
    assert "/case/identified_by (2)" in text and "/child/entry_to_mexico (2)" in text
    assert re.search(r"and \d+ more \(all in --json's lost_parts\)", text), text
    assert "Nothing was deleted: the hub keeps the earlier version" in text
    assert "export in NDJSON, JSON or FHIR made before this import" in text
    assert "with --batch 1" in text
    assert "el nodo guarda la versión anterior" in text
    assert "con --batch 1" in text

    # As it says: the whole records, one by one, put the parts back.
    restored = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--batch", "1",
                   "--json")  # fmt: skip
    assert restored.exit_code == 0, restored.output
    assert (json.loads(restored.stdout)["stored"], hub.versions()) == (2, 6)
    again = json.loads(exported("primero", out, "--json").stdout)["without_columns"]
    assert again["records"] == 2  # the whole records are the latest again


# -- 2. an import waits out a hub restart ------------------------------------------------------


class FakeTime:
    """A clock that moves only when slept on: the waits are taken, never slept for real."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class RestartingSink:
    """Stores every batch, but answers as a hub that is away (connection refused: transient)
    for ``down_for`` seconds of ``clock`` after the first batch; ``refusal``, if given, is the
    answer instead, at once."""

    def __init__(self, clock: FakeTime, down_for: float, refusal: HubError | None = None) -> None:
        self.clock = clock
        self.down_for = down_for
        self.refusal = refusal
        self.down_since: float | None = None
        self.tries = 0
        self.stored: list[str] = []

    def push(self, documents: list[Any]) -> list[Outcome]:
        self.tries += 1
        if self.stored:
            if self.refusal is not None:
                raise self.refusal
            if self.down_since is None:
                self.down_since = self.clock.now
            if self.clock.now - self.down_since < self.down_for:
                raise HubError("conexión rechazada", "connection refused", transient=True)
        self.stored += [document["local_id"] for document in documents]
        return [Outcome("stored") for _ in documents]


def good_items(count: int) -> list[Item]:
    return [
        Item(str(n), document={"schema": "case-record/1", "local_id": f"L{n}", "data": {}})
        for n in range(1, count + 1)
    ]


def pushed(sink: RestartingSink, clock: FakeTime, said: list[str]) -> ImportSummary:
    summary = ImportSummary("test", "file", OWNER, "api")
    patience = Patience(
        waiting=lambda es, en: said.append(f"{en} / {es}"),
        sleep=clock.sleep,
        clock=clock.monotonic,
        jitter=lambda: 1.0,  # the longest wait each time
    )
    list(pushed_and_rejected(iter(good_items(4)), sink, summary, batch=2, patience=patience))
    return summary


def test_a_restart_that_takes_longer_than_the_old_tries_is_waited_out() -> None:
    clock, said = FakeTime(), []
    sink = RestartingSink(clock, down_for=8.0)  # gunicorn took about 8 s to come back
    summary = pushed(sink, clock, said)
    assert (summary.stored, summary.not_sent, summary.stopped) == (4, 0, None)
    assert sink.stored == ["L1", "L2", "L3", "L4"]
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 8.0]  # 7.5 s was not enough: the fifth wait
    assert said[0].startswith("waiting for the hub (connection refused): sending the batch "
                              "again in 0.5 s (try 2; after 120 s without an answer")  # fmt: skip
    assert "esperando al nodo (conexión rechazada): el lote se envía de nuevo en 0.5 s" in said[0]
    assert said[-1] == (
        "the hub answers again: the import goes on / el nodo responde de nuevo: la importación "
        "sigue"
    )


def test_a_hub_away_for_good_is_tried_for_about_two_minutes_then_left() -> None:
    clock, said = FakeTime(), []
    sink = RestartingSink(clock, down_for=float("inf"))
    summary = pushed(sink, clock, said)
    assert (summary.stored, summary.not_sent) == (2, 2)
    assert summary.stopped == "conexión rechazada / connection refused"
    assert max(clock.slept) == importer.LONGEST_WAIT  # capped
    assert 100 <= sum(clock.slept) <= importer.RETRY_SECONDS  # about two minutes, in all
    assert sink.tries == 1 + 1 + len(clock.slept) < importer.SEND_ATTEMPTS  # the clock decides
    assert all(line.startswith("waiting for the hub") for line in said)


def test_the_waits_are_jittered_between_half_and_all_of_the_backoff() -> None:
    waits = [Patience(jitter=lambda: 0.0).wait(n) for n in range(1, 9)]
    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, 7.5, 7.5, 7.5]
    assert Patience(jitter=lambda: 0.5).wait(3) == 1.5


def test_an_answer_that_is_not_transient_stops_at_once() -> None:
    clock, said = FakeTime(), []
    refusal = HubError("credenciales no válidas", "invalid credentials")
    sink = RestartingSink(clock, down_for=0.0, refusal=refusal)
    summary = pushed(sink, clock, said)
    assert (summary.stored, summary.not_sent, sink.tries) == (2, 2, 2)
    assert clock.slept == [] and said == []


def test_an_import_through_the_hub_waits_out_a_restart_and_says_so(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeTime()
    monkeypatch.setattr(importer, "time", clock)
    working = flask_send(hub.app)
    bulk: list[float] = []

    def restarting(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        if url.endswith("/v1/records/bulk"):
            bulk.append(clock.now)
            if len(bulk) > 1 and clock.now - bulk[1] < 8.0:  # down for 8 s after the first
                raise HubError("conexión rechazada", "connection refused", transient=True)
        return working(method, url, body, headers)

    monkeypatch.setattr(hub_client, "default_send", lambda: restarting)
    records = [whole_record(f"R-{n}") for n in range(5)]
    file = write_ndjson(tmp_path / "cinco.ndjson", records)
    result = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--batch", "2",
                 "--lang", "en", *api(hub))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stored 5, unchanged 0, rejected 0 (adapter 0, hub 0, not sent 0)" in result.stdout
    assert hub.versions() == 5
    assert sum(clock.slept) >= 8.0 and len(bulk) == 3 + len(clock.slept)
    lines = result.stderr.splitlines()
    assert lines[0].startswith("waiting for the hub (connection refused): sending the batch")
    assert lines[1].startswith("esperando al nodo (conexión rechazada): el lote se envía")
    assert "the hub answers again: the import goes on" in lines
    assert "el nodo responde de nuevo: la importación sigue" in lines

    # With --json (and no progress bar) stderr stays quiet for a script; it waits all the same.
    bulk.clear()
    waits = len(clock.slept)
    again = write_ndjson(tmp_path / "otros.ndjson", [whole_record(f"S-{n}") for n in range(5)])
    quiet = run("import", "--adapter", "ndjson", again, "--agency", OWNER, "--batch", "2",
                "--json", *api(hub))  # fmt: skip
    assert quiet.exit_code == 0, quiet.output
    assert (json.loads(quiet.stdout)["stored"], quiet.stderr) == (5, "")
    assert len(clock.slept) > waits


# -- 4. the worked example adapter reads a rejects line fixed inside "original" ---------------


def sigeca_line(expediente: str) -> str:
    case = {"expediente": expediente, "nombre": "Ana", "apellido": "S",
            "nacimiento": "2012-01-02", "pais": "GT"}  # fmt: skip
    return json.dumps(case) + "\n"


def rejects_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_docs_example_reads_a_rejects_line_fixed_inside_original(
    hub: Hub, tmp_path: Path, site: Path
) -> None:
    source, entry_points = docs_example()
    install_package(site, "sigeca_puente", source, entry_points)
    file = tmp_path / "export.jsonl"
    file.write_text(sigeca_line("SIG-1") + "{not json\n" + "[1, 2]\n", encoding="utf-8")
    first = run("import", "--adapter", "sigeca", file, "--agency", OWNER, "--json")
    assert json.loads(first.stdout)["stored"] == 1, first.output
    rejects = tmp_path / "export-rejects.jsonl"
    malformed, not_an_object = rejects_of(rejects)
    assert malformed["original"] == "{not json\n" and not_an_object["original"] == "[1, 2]\n"

    # Sent again unfixed: rejected again for the same reasons, not taken for empty cases and
    # not wrapped twice.
    again = tmp_path / "again.jsonl"
    again.write_bytes(rejects.read_bytes())
    unfixed = run("import", "--adapter", "sigeca", again, "--agency", OWNER, "--json")
    assert json.loads(unfixed.stdout)["rejected"] == 2, unfixed.output
    malformed_again, not_an_object_again = rejects_of(tmp_path / "again-rejects.jsonl")
    assert malformed_again["original"] == "{not json\n"
    assert malformed_again["errors"][0]["message_en"].startswith("malformed JSON")
    assert not_an_object_again["original"] == "[1, 2]\n"
    assert not_an_object_again["errors"][0]["message_en"] == "the line is not a JSON object"

    # The office fixes the text inside "original" (the errors left as they are): stored.
    malformed["original"] = sigeca_line("SIG-2")
    not_an_object["original"] = sigeca_line("SIG-3")
    rejects.write_text(json.dumps(malformed) + "\n" + json.dumps(not_an_object) + "\n")
    fixed = run("import", "--adapter", "sigeca", rejects, "--agency", OWNER, "--json")
    assert fixed.exit_code == 0, fixed.output
    summary = json.loads(fixed.stdout)
    assert (summary["stored"], summary["rejected"]) == (2, 0)
    assert hub.records() == 3


def test_the_docs_example_passes_the_conformance_checks_the_docs_show(site: Path) -> None:
    source, entry_points = docs_example()
    install_package(site, "sigeca_puente", source, entry_points)
    text = test_import.DOCS.read_text(encoding="utf-8")
    block = re.search(r"```python\n(import json\n\nimport pytest\n.*?)```", text, re.S)
    assert block is not None and "from sigeca_puente import SigecaAdapter" in block.group(1)
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), "test_sigeca.py", "exec"), namespace)  # the docs' own test
    case = namespace["CASE"]
    adapter_class = namespace["SigecaAdapter"]
    for check in checks_for(case):
        check(adapter_class(**case.options), case)
    # A malformed line's reject, fixed inside "original", decodes to the fixed case.
    wrapped = {"original": sigeca_line("SIG-9"), "errors": [{"position": "2"}]}
    [item] = adapter_class().decode(io.BytesIO((json.dumps(wrapped) + "\n").encode()))
    assert item.ok and item.document["local_id"] == "SIG-9"


def test_any_adapter_saying_what_it_does_not_carry_is_warned_of_the_same_way() -> None:
    class FiveFields(NdjsonAdapter):
        name = "sigeca"

        def uncarried(self, data: Mapping[str, Any]) -> set[str]:
            return {f"/{key}" for key in data if key not in ("case", "child")}

    assert isinstance(FiveFields(), PartialFormat) and not isinstance(
        NdjsonAdapter(), PartialFormat
    )
    found = uncarried_of(FiveFields())
    assert found is not None
    found.note(example("typical"))
    found.note({"case": {"status": "open"}})
    assert found.records == 1 and found.parts["/placements"] == 1
    es, en = found.warning(2)
    assert en.startswith("warning: the sigeca format has no place for parts of 1 of the 2 records")
    assert es.startswith("aviso: el formato sigeca no tiene lugar para partes de 1 de los 2")
