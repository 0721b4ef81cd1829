"""What ``puente import`` says (s18): rows equal to an older version counted apart, named and
explained; one record said in the singular, in both languages; no "in 0.0 s" for a tiny
import; a closed Primero case without its closure naming the Primero fields to fill in."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters import registry
from adapters.base import Item, Problem
from adapters.items import WarnedItem
from exchange.importer import MAX_SHOWN, ImportSummary, Outcome, pushed_and_rejected

PRIMERO = Path(__file__).resolve().parents[1] / "unit" / "adapters" / "fixtures" / "primero"


def good(n: int) -> Item:
    document = {"schema": "case-record/1", "local_id": f"L{n}", "data": {"n": n}}
    return Item(str(n + 1), document=document, source={"n": str(n)}, local_id=f"L{n}")


class AnsweringSink:
    """Answers each document as it is told to (by local id), else ``stored``."""

    def __init__(self, answers: Mapping[str, Outcome]) -> None:
        self.answers = answers

    def push(self, documents: list[Mapping[str, Any]]) -> list[Outcome]:
        return [self.answers.get(d["local_id"], Outcome("stored")) for d in documents]


def imported(items: list[Item], answers: Mapping[str, Outcome]) -> ImportSummary:
    summary = ImportSummary("ndjson", "f.ndjson", "mx.chp.dif", "direct")
    list(pushed_and_rejected(items, AnsweringSink(answers), summary, batch=500))
    return summary


def older() -> Outcome:
    """A row equal to version 1 of its record, whose latest is version 2."""
    return Outcome("unchanged", version=2, older_version=1)


# -- rows equal to an older version ------------------------------------------------------------


def test_rows_equal_to_an_older_version_are_counted_apart_not_as_unchanged() -> None:
    summary = imported(
        [good(0), good(1), good(2)], {"L0": older(), "L1": Outcome("unchanged", version=3)}
    )
    assert (summary.stored, summary.unchanged, summary.older_versions) == (1, 1, 1)
    as_json = summary.to_json()
    assert (as_json["unchanged"], as_json["older_versions"]) == (1, 1)
    assert as_json["older_version_items"] == [
        {
            "position": "1",
            "local_id": "L0",
            "older_version": 1,
            "version": 2,
            "message_es": "igual a la versión 1; el nodo tiene la versión 2",
            "message_en": "equal to version 1; the hub holds version 2",
        }
    ]
    english, spanish = summary.lines("en")[:2]
    assert "unchanged 1, equal to an older version (not applied) 1, rejected 0" in english
    assert "sin cambios 1, iguales a una versión anterior (no aplicados) 1, rechazados 0" in spanish


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_office_is_warned_told_which_rows_and_how_to_apply_them(lang: str) -> None:
    items = [good(n) for n in range(MAX_SHOWN + 3)]
    summary = imported(items, {f"L{n}": older() for n in range(len(items))})
    lines = summary.lines(lang)
    [warning] = [line for line in lines if "Warning:" in line]
    english = "Warning: 13 records equal to an older version, not applied: the hub holds a newer"
    spanish = "Aviso: 13 expedientes iguales a una versión anterior, no aplicados: el nodo tiene"
    first, second = (spanish, english) if lang == "es" else (english, spanish)
    assert warning.startswith(first) and f" / {second}" in warning
    # How to apply them on purpose, and when that does not work either.
    assert "--batch 1" in warning and "PUENTE_IDEMPOTENCY_KEY_HOURS" in warning
    assert "a single push does set a record back to an earlier version" in warning
    assert "un envío individual sí vuelve un expediente a una versión anterior" in warning
    at = lines.index(warning)
    named = lines[at + 1 : at + 1 + MAX_SHOWN + 1]
    assert named[0] in (
        "  position / posición 1 (L0): equal to version 1; the hub holds version 2 / igual a "
        "la versión 1; el nodo tiene la versión 2",
        "  posición / position 1 (L0): igual a la versión 1; el nodo tiene la versión 2 / equal "
        "to version 1; the hub holds version 2",
    )
    assert "3 more" in named[-1] or "3 más" in named[-1]


def test_one_row_equal_to_an_older_version_is_said_in_the_singular() -> None:
    summary = imported([good(0)], {"L0": older()})
    [warning] = [line for line in summary.lines("en") if "Warning:" in line]
    assert warning.startswith("Warning: 1 record equal to an older version, not applied")
    assert "Aviso: 1 expediente igual a una versión anterior, no aplicado:" in warning


# -- singular and plural -----------------------------------------------------------------------


def with_action(n: int) -> WarnedItem:
    action = Problem("field:disclosure_other_orgs", "registre la negativa", "record the refusal")
    document = {"schema": "case-record/1", "local_id": f"L{n}", "data": {"n": n}}
    return WarnedItem(str(n + 1), document=document, local_id=f"L{n}", actions=(action,))


@pytest.mark.parametrize(
    ("count", "spanish", "english"),
    [
        (1, "para 1 registro importado", "for 1 imported record:"),
        (2, "para 2 registros importados", "for 2 imported records:"),
    ],
)
def test_actions_needed_count_records_in_the_singular_and_the_plural(
    count: int, spanish: str, english: str
) -> None:
    summary = imported([with_action(n) for n in range(count)], {})
    [line] = [line for line in summary.lines("es") if line.startswith("Acción necesaria")]
    assert spanish in line and english in line


@pytest.mark.parametrize(
    ("count", "spanish", "english"),
    [
        (
            1,
            "Aviso: 1 expediente se guardó como nueva versión sin partes que su versión",
            "Warning: 1 record was stored as a new version without parts its previous version",
        ),
        (
            2,
            "Aviso: 2 expedientes se guardaron como nueva versión sin partes que su versión",
            "Warning: 2 records were stored as a new version without parts their previous",
        ),
    ],
)
def test_records_stored_without_parts_in_the_singular_and_the_plural(
    count: int, spanish: str, english: str
) -> None:
    lost = Outcome("stored", lost=("/placements",))
    summary = imported([good(n) for n in range(count)], {f"L{n}": lost for n in range(count)})
    [line] = [line for line in summary.lines("en") if line.startswith("Warning:")]
    assert line.startswith(english) and spanish in line


# -- how long it took --------------------------------------------------------------------------


def test_a_tiny_import_is_not_said_to_take_no_time() -> None:
    summary = imported([good(0)], {})
    summary.seconds = 0.008
    english, spanish = summary.lines("en")[:2]
    assert english.endswith("; 125 records/s in < 0.1 s.")
    assert spanish.endswith("; 125 registros/s en < 0.1 s.")


def test_an_import_that_took_time_gives_its_rate() -> None:
    summary = imported([good(n) for n in range(10)], {})
    summary.seconds = 2.0
    english, spanish = summary.lines("en")[:2]
    assert english.endswith("; 5 records/s in 2.0 s.")
    assert spanish.endswith("; 5 registros/s en 2.0 s.")


# -- a closed Primero case without its closure -------------------------------------------------


def test_a_closed_primero_case_without_its_closure_names_both_primero_fields() -> None:
    adapter = registry.get("primero", mapping=str(PRIMERO / "codes.yaml"))
    case = json.loads((PRIMERO / "cases_export.json").read_text(encoding="utf-8"))["data"][0]
    case["status"] = "closed"
    for name in ("date_closure", "closure_reason"):
        case.pop(name, None)
    dated = {**case, "date_closure": "2024-05-01"}
    export = json.dumps({"data": [case, dated]}).encode()
    whole, reason_only = list(adapter.decode(io.BytesIO(export)))
    [problem] = whole.problems
    assert problem.en == (
        "required field 'closure' is missing; fill in the Primero fields that give it: "
        "'date_closure', 'closure_reason'"
    )
    assert problem.es == (
        "falta el campo obligatorio «cierre» (closure); llene en Primero los campos que lo "
        "dan: «date_closure», «closure_reason»"
    )
    # Only the reason missing: only its field, as before.
    [problem] = reason_only.problems
    assert problem.en.endswith("fill in the Primero field that gives it: 'closure_reason'")
