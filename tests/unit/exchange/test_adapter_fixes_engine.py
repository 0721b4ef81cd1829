"""The import engine where an outside tester found it wrong: a rejected row that a later row of
the same record superseded was offered for sending again (and, sent, became the record's
latest version), and a row not sent carried both languages in each half of its reason."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from adapters.base import Item, Problem
from exchange import importer
from exchange.importer import ImportSummary, pushed_and_rejected, write_rejects
from tests.unit.exchange.test_import_engine import RecordingSink, bad, good


def version(n: int, local_id: str) -> Item:
    document = {"schema": "case-record/1", "local_id": local_id, "data": {"n": n}}
    return Item(f"row {n}", document=document, source={"n": str(n)}, local_id=local_id)


def refused(n: int, local_id: str) -> Item:
    problem = Problem("column:fecha", "fecha inválida", "invalid date")
    return Item(f"row {n}", problems=(problem,), source={"n": str(n)}, local_id=local_id)


class Lines:
    """A rejects writer that keeps what it was given."""

    name = "lines"
    media_types = ("text/plain",)

    def __init__(self) -> None:
        self.given: list[str] = []

    def decode(self, stream: Any) -> Any:
        raise NotImplementedError

    def encode(self, documents: Any, out: Any) -> None:
        raise NotImplementedError

    def write_rejects(self, items: Any, out: Any) -> None:
        self.given.extend(item.position for item in items)


def imported(items: list[Item], sink: RecordingSink, batch: int = 2) -> tuple[list[str], Any]:
    totals = ImportSummary("test", "file", "mx.chp.dif", "direct")
    writer = Lines()
    left = write_rejects(
        writer,  # type: ignore[arg-type]
        pushed_and_rejected(iter(items), sink, totals, batch=batch),
        io.BytesIO(),
        totals,
    )
    assert left == 0
    return writer.given, totals


@pytest.mark.parametrize("batch", [1, 2, 500])  # the later row in another batch, or the same
def test_a_rejected_row_a_later_row_stored_is_left_out_of_the_rejects(batch: int) -> None:
    items = [refused(2, "DUP-1"), good(3), version(4, "DUP-1"), bad(5)]
    given, totals = imported(items, RecordingSink(), batch=batch)
    assert given == ["row 5"]  # row 2 is an older version of DUP-1: not to be sent again
    assert (totals.stored, totals.rejected, totals.superseded) == (2, 1, 1)
    assert [entry["position"] for entry in totals.rejected_items] == ["row 5"]
    [entry] = totals.superseded_items
    assert (entry["position"], entry["local_id"], entry["superseded_by"]) == (
        "row 2",
        "DUP-1",
        "row 4",
    )
    assert "do not send it again" in entry["message_en"] and "no la envíe" in entry["message_es"]
    said = "\n".join(totals.lines("en"))
    assert "Older versions, left out of the rejects file: 1" in said
    assert json.loads(json.dumps(totals.to_json()))["superseded"] == 1


def test_a_refusal_of_the_hub_is_superseded_too_and_a_later_reject_is_not() -> None:
    items = [version(2, "D-1"), version(3, "D-1"), refused(4, "D-1")]
    given, totals = imported(items, RecordingSink(refuse={"D-1"}), batch=1)
    assert given == ["row 2", "row 3", "row 4"]  # nothing of D-1 was stored

    class Once(RecordingSink):
        def push(self, documents: Any) -> Any:
            outcomes = super().push(documents)
            self.refuse = set()  # the first push of D-1 refused, then stored
            return outcomes

    given, totals = imported(items, Once(refuse={"D-1"}), batch=1)
    # Row 2 refused, row 3 stored: row 2 is older. Row 4 comes after: it stays, to fix.
    assert given == ["row 4"]
    assert (totals.rejected_by_hub, totals.rejected_by_adapter, totals.superseded) == (0, 1, 1)


def test_a_row_not_sent_says_each_language_in_its_own_half(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer.time, "sleep", lambda _seconds: None)
    sink = RecordingSink(fail_times=importer.SEND_ATTEMPTS)
    totals = ImportSummary("test", "file", "mx.chp.dif", "direct")
    [first, *_rest] = list(pushed_and_rejected(iter([good(1), good(2)]), sink, totals, batch=2))
    [problem] = first.problems
    assert problem.es == "no se envió: caído; envíe este archivo de nuevo"
    assert problem.en == "not sent: down; send this file again"
    assert totals.stopped == "caído / down"
