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
    lines = totals.lines("en")
    assert lines[2] == "imported with warnings / Importados con avisos: 3 — field:religion (3)"
    # Each item by its position and local id, in both languages, the person's first.
    assert lines[3:] == [
        f"  position / posición row {n} (L{n}): unknown field / campo desconocido" for n in range(3)
    ]
    assert totals.to_json()["warnings"] == {"field:religion": 3}
    assert totals.to_json()["warning_items"][0] == {
        "position": "row 0",
        "local_id": "L0",
        "pointer": "field:religion",
        "message_es": "campo desconocido",
        "message_en": "unknown field",
    }


def test_actions_name_every_imported_item_they_concern() -> None:
    from adapters.items import WarnedItem

    refusal = Problem("field:disclosure_other_orgs", "registre la negativa", "record the refusal")
    items = [WarnedItem(**{**good(n).__dict__, "actions": (refusal,)}) for n in range(12)]
    rejected, totals = run([*items, good(20)], RecordingSink(refuse={"L11"}))
    assert [item.local_id for item in rejected] == ["L11"]  # rejected: nothing to do yet
    assert totals.actions == 11 and len(totals.to_json()["action_items"]) == 11
    lines = totals.lines("es")
    assert lines[2] == (
        "Acción necesaria en Puente para 11 registros importados / "
        "Action needed in Puente for 11 imported records:"
    )
    assert lines[3] == "  posición / position row 0 (L0): registre la negativa / record the refusal"
    assert lines[3 + importer.MAX_SHOWN] == (
        "  … y 1 más (--json da hasta 1000) / … and 1 more (--json gives up to 1000)"
    )
    assert "left out" not in " ".join(lines) and "se omitió" not in " ".join(lines)


def test_a_file_problem_is_said_once_and_is_no_record() -> None:
    from adapters.base import FileProblem

    missing = Problem("column:fecha", "falta la columna", "the column is missing")
    header = FileProblem("1", problems=(missing,))
    rejected, totals = run([header], RecordingSink())
    assert rejected == [header]  # given to the rejects writer, which may say it in the file
    assert (totals.read, totals.rejected) == (0, 0)
    assert totals.unreadable and not totals.empty
    assert totals.to_json()["file_problems"] == [
        {"position": "1", **missing.to_json()},
    ]
    english = totals.lines("en")
    assert english[2] == (
        "The file could not be read; nothing was imported / "
        "No se pudo leer el archivo; nada se importó:"
    )
    assert english[3] == ("  position / posición 1: the column is missing / falta la columna")
    # After records, it is a problem of the file among them: the file was read.
    _rejected, totals = run([good(1), header], RecordingSink())
    assert totals.read == 1 and not totals.unreadable and totals.file_problems
    assert totals.lines("en")[2] == "Problems with the file / Problemas del archivo:"


def test_a_file_with_no_records_says_so() -> None:
    _rejected, totals = run([], RecordingSink())
    assert totals.empty and not totals.unreadable
    assert totals.lines("en")[2] == (
        "the file holds no records: nothing to import / "
        "el archivo no tiene ningún registro: nada que importar"
    )


def test_an_adapter_that_raises_ends_the_items_where_it_was() -> None:
    from exchange.importer import guarded

    def decode() -> Iterator[Item]:
        yield good(1)
        yield bad(2)
        raise AttributeError("'list' object has no attribute 'get'")

    totals = summary()
    sink = RecordingSink()
    rejected = list(pushed_and_rejected(guarded(decode, "sigeca", totals), sink, totals, batch=5))
    assert sink.batches == [["L1"]]  # what came before is stored ...
    assert [item.position for item in rejected] == ["row 2"]  # ... and its rejects written
    failure = totals.adapter_failure
    assert failure is not None and failure["position"] == "row 2"
    assert failure["message_en"].startswith(
        "the adapter 'sigeca' failed after position row 2 (AttributeError: 'list' object has "
        "no attribute 'get')"
    )
    assert "después de la posición row 2" in failure["message_es"]
    assert failure["message_en"] in " ".join(totals.lines("en"))

    def fails_at_once() -> Iterator[Item]:
        raise ValueError("no")

    totals = summary()
    assert list(guarded(fails_at_once, "x", totals)) == []
    assert (
        totals.adapter_failure
        and "before its first position" in (totals.adapter_failure["message_en"])
    )
    assert totals.unreadable


def test_rejected_items_give_position_and_reasons() -> None:
    _rejected, totals = run([good(1), bad(2)], RecordingSink(refuse={"L1"}))
    assert totals.to_json()["rejected_items"] == [
        {
            "position": "row 1",
            "local_id": "L1",
            "errors": [
                {"pointer": "/local_id", "message_es": "rechazado", "message_en": "refused"}
            ],
        },
        {
            "position": "row 2",
            "local_id": None,
            "errors": [
                {
                    "pointer": "column:fecha",
                    "message_es": "fecha inválida",
                    "message_en": "invalid date",
                }
            ],
        },
    ]
