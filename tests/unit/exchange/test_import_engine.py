"""The import engine on its own: batches, rejects in input order with the hub's reasons added,
a hub that goes away (retried, then the rest written as not sent), the bilingual summary, and
idempotency keys that depend on agency, local id and content only."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from adapters.base import Item, Problem
from exchange import importer
from exchange.hub_client import HubError
from exchange.importer import (
    ImportSummary,
    Outcome,
    idempotency_key,
    pushed_and_rejected,
    write_rejects,
)


def good(n: int) -> Item:
    document = {"schema": "case-record/1", "local_id": f"L{n}", "data": {"n": n}}
    return Item(f"row {n}", document=document, source={"n": str(n)}, local_id=f"L{n}")


def bad(n: int) -> Item:
    problem = Problem("column:fecha", "fecha inválida", "invalid date")
    return Item(f"row {n}", problems=(problem,), source={"n": str(n)})


class RecordingSink:
    """Refuses the local ids it is told to; remembers each batch it was sent."""

    def __init__(self, refuse: set[str] = frozenset(), fail_times: int = 0) -> None:
        self.refuse = refuse
        self.fail_times = fail_times
        self.batches: list[list[str]] = []

    def push(self, documents: list[Mapping[str, Any]]) -> list[Outcome]:
        if self.fail_times:
            self.fail_times -= 1
            raise HubError("caído", "down", transient=True)
        self.batches.append([d["local_id"] for d in documents])
        return [
            Outcome("rejected", (Problem("/local_id", "rechazado", "refused"),))
            if d["local_id"] in self.refuse
            else Outcome("stored")
            for d in documents
        ]


def summary() -> ImportSummary:
    return ImportSummary("test", "file", "mx.chp.dif", "direct")


def run(items: list[Item], sink: RecordingSink, batch: int = 3) -> tuple[list[Item], ImportSummary]:
    totals = summary()
    rejected = list(pushed_and_rejected(iter(items), sink, totals, batch=batch))
    return rejected, totals


def test_good_items_go_in_batches_and_rejects_keep_input_order() -> None:
    items = [good(1), bad(2), good(3), good(4), good(5), bad(6), good(7)]
    sink = RecordingSink(refuse={"L4"})
    rejected, totals = run(items, sink, batch=3)
    assert sink.batches == [["L1", "L3", "L4"], ["L5", "L7"]]
    assert [item.position for item in rejected] == ["row 2", "row 4", "row 6"]
    assert rejected[1].problems[-1].en == "refused"  # the hub's reason, kept with the row
    assert rejected[1].source == {"n": "4"}  # written back as it was read
    assert (totals.read, totals.stored, totals.rejected_by_adapter, totals.rejected_by_hub) == (
        7,
        4,
        2,
        1,
    )


def test_a_window_of_bad_rows_does_not_pile_up() -> None:
    seen: list[int] = []

    def items() -> Iterator[Item]:
        for n in range(100):
            seen.append(n)
            yield bad(n)

    totals = summary()
    rejected = pushed_and_rejected(items(), RecordingSink(), totals, batch=5)
    first = next(rejected)
    assert first.position == "row 0"
    assert len(seen) == importer.WINDOW_FACTOR * 5  # read ahead by one window only
    assert len(list(rejected)) == 99


def test_a_hub_that_comes_back_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer.time, "sleep", lambda _seconds: None)
    sink = RecordingSink(fail_times=2)
    rejected, totals = run([good(1), good(2)], sink)
    assert rejected == [] and totals.stored == 2 and sink.batches == [["L1", "L2"]]


def test_a_hub_that_stays_away_leaves_the_rest_as_not_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer.time, "sleep", lambda _seconds: None)
    sink = RecordingSink(fail_times=importer.SEND_ATTEMPTS)
    items = [good(1), good(2), bad(3), good(4)]
    rejected, totals = run(items, sink, batch=2)
    assert sink.batches == []  # never reached, and not tried again for later batches
    assert [item.position for item in rejected] == ["row 1", "row 2", "row 3", "row 4"]
    assert totals.not_sent == 3 and totals.rejected_by_adapter == 1 and totals.rejected == 4
    assert "not sent" in rejected[0].problems[0].en and "no se envió" in rejected[0].problems[0].es
    assert totals.stopped and "down" in totals.stopped


def test_summary_in_spanish_and_english() -> None:
    totals = ImportSummary("csv", "dif.csv", "mx.chp.dif", "direct", read=12000, stored=11000)
    totals.unchanged, totals.rejected_by_adapter, totals.seconds = 990, 10, 1.2
    totals.rejects_file = "dif-rejects.csv"
    spanish, english, rejects = totals.lines("es")
    assert spanish.startswith("Importación: leídos 12000, guardados 11000, sin cambios 990")
    assert "rechazados 10" in spanish and "10,000 registros/s" in spanish
    assert english.startswith("Import: read 12000, stored 11000, unchanged 990, rejected 10")
    assert totals.lines("en")[0] == english
    assert rejects == "Rechazos / rejects: dif-rejects.csv"
    as_json = totals.to_json()
    assert as_json["rejected"] == 10 and as_json["rows_per_second"] == 10000.0
    json.dumps(as_json)


def test_idempotency_key_names_agency_local_id_and_content() -> None:
    key = idempotency_key("mx.chp.dif", "L1", "a" * 64)
    assert key == idempotency_key("mx.chp.dif", "L1", "a" * 64)
    assert len(key) <= 200 and key.isascii()
    others = {
        idempotency_key("mx.nl.dif", "L1", "a" * 64),
        idempotency_key("mx.chp.dif", "L2", "a" * 64),
        idempotency_key("mx.chp.dif", "L1", "b" * 64),
        idempotency_key("mx.chp.di", "fL1", "a" * 64),  # no ambiguity between the parts
    }
    assert key not in others and len(others) == 4


def test_adapters_without_a_rejects_format_get_ndjson() -> None:
    class Plain:
        name = "plain"
        media_types = ("text/plain",)

        def decode(self, stream: Any) -> Iterator[Item]:
            return iter(())

        def encode(self, documents: Any, out: Any) -> None:
            pass

    out = io.BytesIO()
    write_rejects(Plain(), [bad(1), bad(2)], out)  # type: ignore[arg-type]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["position"] for line in lines] == ["row 1", "row 2"]
    assert lines[0]["source"] == {"n": "1"}
    assert lines[0]["errors"] == [
        {"pointer": "column:fecha", "message_es": "fecha inválida", "message_en": "invalid date"}
    ]


def test_warnings_of_imported_items_are_counted_by_pointer() -> None:
    from adapters.items import WarnedItem

    left_out = Problem("field:religion", "campo desconocido", "unknown field")
    items = [
        WarnedItem(**{**good(n).__dict__, "warnings": (left_out,)}) if n < 3 else good(n)
        for n in range(5)
    ]
    refused = WarnedItem(**{**good(9).__dict__, "warnings": (left_out,)})
    rejected, totals = run([*items, refused], RecordingSink(refuse={"L9"}))
    assert [item.local_id for item in rejected] == ["L9"]
    assert totals.warned == 3 and totals.warnings == {"field:religion": 3}
    assert totals.lines("en")[-1].endswith("left out: field:religion (3)")
    assert totals.to_json()["warnings"] == {"field:religion": 3}
