"""``puente import`` with third-party adapters that bend the contract of ``adapters.base``,
as an outside adapter developer found them (rebuilt here, registered in-process):

- an ``Item.local_id`` that is not the document's (a display folio over the system's id):
  no rejected row may be dropped as an "older version" of another record, and no child's
  data stored as a version of another child's record;
- a package whose module raises on import: every other adapter still listed and usable,
  the broken one said, never a traceback;
- ``decode`` yielding the wrong types (a dict, a document as JSON text, a number for a
  position): the adapter's fault, said with the position, what came before stored and its
  rejects written, exit 2 — never blamed on the rejects writer;
- an item with neither a document nor problems: rejected with a reason.

Through the real command line, direct and through the API, on both backends.
"""

from __future__ import annotations

import copy
import datetime
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import pytest

from adapters import registry
from adapters.base import Item, Problem, contract_breach
from adapters.envelopes import check_data, data_validator, envelope
from exchange.importer import ImportSummary, guarded, pushed_and_rejected, write_rejects
from tests.api import test_import
from tests.api.test_import import OWNER, Hub, api, install_package, run
from tests.unit.exchange.test_import_engine import RecordingSink

hub = test_import.hub
site = test_import.site

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

SCHEMA = "case-record/1"
MODES = ["direct", "api"]


# -- the adapters --------------------------------------------------------------------------------


class Sigeca:
    """One JSON object per line, ``{"expediente", "nombre", "apellido", "nacimiento",
    "pais"}``, as in docs/adapters.md section 7; the item's and the envelope's local id are
    the ``expediente``."""

    name = "sigeca-test"
    media_types = ("application/x-ndjson",)

    def __init__(self) -> None:
        self.validator = data_validator(SCHEMA)

    def decode(self, stream: IO[bytes]) -> Iterator[Any]:
        for number, raw in enumerate(stream, start=1):
            if raw.strip():
                yield self.item(str(number), json.loads(raw))

    def item(self, position: str, case: dict[str, Any]) -> Item:
        data = {
            "case": {"status": "open", "case_number": case.get("expediente")},
            "child": {
                "names": {"given_names": case["nombre"], "first_surname": case["apellido"]},
                "date_of_birth": case["nacimiento"],
                "nationality": [case.get("pais", "GT")],
            },
        }
        problems = check_data(self.validator, data)
        document = None if problems else envelope(SCHEMA, self.stored_id(position, case), data)
        label = self.label(position, case)
        return Item(position, document=document, problems=problems, source=case, local_id=label)

    def stored_id(self, _position: str, case: dict[str, Any]) -> str:
        return str(case["expediente"])

    def label(self, position: str, case: dict[str, Any]) -> str:
        return self.stored_id(position, case)

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        for document in documents:
            out.write(json.dumps({"expediente": document["local_id"]}).encode() + b"\n")

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None:
        for item in items:
            errors = [problem.to_json() for problem in item.problems]
            line = {"position": item.position, **item.source, "errors": errors}
            out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")


class DisplayFolio(Sigeca):
    """``Item.local_id`` is the folio people know; the envelope carries the system's id."""

    name = "dispid"

    def stored_id(self, _position: str, case: dict[str, Any]) -> str:
        return str(case["id"])

    def label(self, _position: str, case: dict[str, Any]) -> str:
        return str(case["expediente"])


class LabelPerLine(Sigeca):
    """``Item.local_id`` names the line; the envelope carries the ``expediente``."""

    name = "mismatch"

    def label(self, position: str, _case: dict[str, Any]) -> str:
        return f"OTHER-{position}"


#: What a line marked ``"breach"`` becomes (``--option breach=NAME``).
BREACHES: dict[str, Callable[[Item], Any]] = {
    "dict": lambda item: {"position": item.position, "document": item.document},
    "json-text": lambda item: replace(item, document=json.dumps(item.document)),
    "int-position": lambda item: replace(item, position=int(item.position)),
    "text-problem": lambda item: replace(item, document=None, problems=("fecha mala",)),
    "int-local-id": lambda item: replace(item, local_id=7),
}


class Breaking(Sigeca):
    """Good items, except that a line marked ``"breach"`` breaks the contract."""

    name = "breaking"

    def __init__(self, *, breach: str = "dict") -> None:
        super().__init__()
        self.breach = BREACHES[breach]

    def decode(self, stream: IO[bytes]) -> Iterator[Any]:
        for number, raw in enumerate(stream, start=1):
            case = json.loads(raw)
            item = self.item(str(number), case)
            yield self.breach(item) if case.get("breach") else item


class BreakingInChild(Breaking):
    """The same, decoded in a second process."""

    name = "breaking-child"
    picklable_items = True


class Silent(Sigeca):
    """Says nothing of a line marked ``"silent"``: no document, no problems."""

    name = "silent"

    def item(self, position: str, case: dict[str, Any]) -> Item:
        if case.get("silent"):
            return Item(position, source=case, local_id=str(case["expediente"]))
        return super().item(position, case)


class Unwritable(Sigeca):
    """A line marked ``"dated"`` carries a date object where JSON has text; one marked
    ``"no_id"`` an envelope without a local id. Both are items as base.py describes them:
    the hub refuses the row, nothing crashes."""

    name = "unwritable"

    def item(self, position: str, case: dict[str, Any]) -> Item:
        item = super().item(position, case)
        if item.document is None:
            return item
        document = copy.deepcopy(dict(item.document))
        if case.get("dated"):
            document["data"]["child"]["date_of_birth"] = datetime.date(2012, 1, 1)
        if case.get("no_id"):
            del document["local_id"]
        return replace(item, document=document)


@pytest.fixture
def adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapters above, as if installed (the entry points of a package)."""
    installed = {
        adapter.name: registry.AdapterInfo(
            adapter.name,
            f"{__name__}:{adapter.__name__}",
            "Adaptador de prueba",
            "Test adapter",
            False,
            "adapter-tests 1.0",
        )
        for adapter in (DisplayFolio, LabelPerLine, Breaking, BreakingInChild, Silent, Unwritable)
    }
    monkeypatch.setattr(registry, "_installed", lambda: dict(installed))


def lines(path: Path, *cases: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    return path


def case(expediente: str, nombre: str, nacimiento: str, **more: Any) -> dict[str, Any]:
    return {"expediente": expediente, "nombre": nombre, "apellido": "Lima",
            "nacimiento": nacimiento, **more}  # fmt: skip


def imported(hub: Hub, mode: str, adapter: str, file: Path, *more: str) -> Any:
    args = ["import", "--adapter", adapter, file, "--agency", OWNER, *more]
    return run(*args, *(api(hub) if mode == "api" else []))


def rejects_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- 1. the adapter's local id is a label: the hub's is the document's ----------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_display_folio_drops_no_rejected_row_as_an_older_version(
    hub: Hub, tmp_path: Path, adapters: None, mode: str
) -> None:
    # One folio for two records of the system: db-1001 (a date that does not exist), db-1002.
    file = lines(
        tmp_path / "disp.jsonl",
        case("FOL-77", "Rosa", "2012-02-30", id="db-1001"),
        case("FOL-77", "Rosa", "2012-02-28", id="db-1002"),
    )
    result = imported(hub, mode, "dispid", file, "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert (summary["stored"], summary["rejected"], summary["superseded"]) == (1, 1, 0)
    [rejected] = rejects_of(tmp_path / "disp-rejects.jsonl")
    assert (rejected["position"], rejected["id"]) == ("1", "db-1001")  # not lost
    assert summary["rejected_items"][0]["local_id"] == "FOL-77"  # the label people know
    assert hub.records() == 1


@pytest.mark.parametrize("mode", MODES)
def test_two_records_sharing_a_display_folio_are_both_stored(
    hub: Hub, tmp_path: Path, adapters: None, mode: str
) -> None:
    # Two children, two records of the system, one folio: not "another child" of one record.
    file = lines(
        tmp_path / "folio.jsonl",
        case("FOL-80", "Kenia", "2012-04-04", id="db-2001"),
        case("FOL-80", "Brayan", "2015-09-09", id="db-2002"),
    )
    result = imported(hub, mode, "dispid", file, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["stored"], summary["rejected"], summary["other_children"]) == (2, 0, 0)
    assert hub.records() == 2


@pytest.mark.parametrize("mode", MODES)
def test_another_child_under_the_documents_local_id_is_not_stored_as_its_version(
    hub: Hub, tmp_path: Path, adapters: None, mode: str
) -> None:
    # Kenia and Brayan under one expediente, each line labelled apart by the adapter.
    file = lines(
        tmp_path / "sib.jsonl",
        case("MIS-2025-01", "Kenia", "2012-04-04"),
        case("MIS-2025-01", "Brayan", "2015-09-09"),
    )
    result = imported(hub, mode, "mismatch", file, "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert (summary["stored"], summary["rejected"], summary["other_children"]) == (1, 1, 1)
    [rejected] = rejects_of(tmp_path / "sib-rejects.jsonl")
    assert rejected["nombre"] == "Brayan"
    [error] = rejected["errors"]
    assert error["message_en"].startswith("the same local id 'MIS-2025-01' as position 1")
    assert hub.versions() == 1  # Kenia's only


def refused(position: str, label: str) -> Item:
    problem = Problem("/child/date_of_birth", "fecha inexistente", "no such date")
    return Item(position, problems=(problem,), source={}, local_id=label)


def stored(position: str, label: str | None, local_id: str) -> Item:
    document = {"schema": SCHEMA, "local_id": local_id, "data": {}}
    return Item(position, document=document, source={}, local_id=label)


class Given:
    """A rejects writer that keeps the positions it was given."""

    name = "given"
    media_types = ("text/plain",)

    def __init__(self) -> None:
        self.positions: list[str] = []

    def decode(self, stream: Any) -> Any:
        raise NotImplementedError

    def encode(self, documents: Any, out: Any) -> None:
        raise NotImplementedError

    def write_rejects(self, items: Iterable[Item], out: Any) -> None:
        self.positions.extend(item.position for item in items)


def engine(items: list[Item], sink: RecordingSink | None = None) -> tuple[list[str], Any]:
    totals = ImportSummary("test", "file", OWNER, "direct")
    writer = Given()
    rejected = pushed_and_rejected(iter(items), sink or RecordingSink(), totals, batch=1)
    write_rejects(writer, rejected, io.BytesIO(), totals)  # type: ignore[arg-type]
    return writer.positions, totals


def test_a_row_known_by_a_label_is_superseded_only_where_labels_are_the_hubs_ids() -> None:
    # The adapter's labels are its documents' local ids: row 1 is an older version of X.
    given, totals = engine([refused("1", "X"), stored("2", "X", "X")])
    assert (given, totals.superseded) == ([], 1)
    given, totals = engine([refused("1", "X"), stored("2", None, "X")])
    assert (given, totals.superseded) == ([], 1)
    # Row 2's label is not its document's: the adapter's labels are its own, and row 1's X
    # need not be the hub's X. Row 1 stays, to be fixed and sent.
    given, totals = engine([refused("1", "X"), stored("2", "FOL-9", "X")])
    assert (given, totals.superseded, totals.stored) == (["1"], 0, 1)


def test_a_hub_refusal_is_superseded_by_a_later_version_of_its_document_whatever_the_labels() -> (
    None
):
    class RefusingOnce(RecordingSink):
        def push(self, documents: Any) -> Any:
            outcomes = super().push(documents)
            self.refuse = set()
            return outcomes

    items = [stored("1", "FOL-1", "db-1"), stored("2", "FOL-2", "db-1")]
    given, totals = engine(items, RefusingOnce(refuse={"db-1"}))
    assert (given, totals.superseded, totals.stored) == ([], 1, 1)


# -- 2. a package whose module raises on import ----------------------------------------------------

CRASHING = {
    "crashy_adapter": "raise RuntimeError('license server unreachable')\n",
    "typo_adapter": "class Adapter(:\n    pass\n",
}


@pytest.fixture
def crashing(site: Path) -> Iterator[Path]:
    import sys

    for package, source in CRASHING.items():
        install_package(site, package, source, {package.split("_")[0]: f"{package}:Adapter"})
    yield site
    for package in CRASHING:
        sys.modules.pop(package, None)


def test_adapters_list_says_which_package_is_broken_and_lists_the_rest(crashing: Path) -> None:
    result = run("adapters", "list", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    listed = dict(line.split(None, 1) for line in result.output.splitlines())
    assert {"json", "ndjson", "csv", "primero", "fhir", "crashy", "typo"} <= set(listed)
    assert listed["crashy"].startswith(
        "the installed adapter 'crashy' (package crashy_adapter 1.0.0, entry point "
        "crashy_adapter:Adapter) cannot be loaded: RuntimeError: license server unreachable"
    )
    assert "SyntaxError" in listed["typo"]
    described = json.loads(run("adapters", "list", "--json", "--lang", "es").output)
    assert "no se puede cargar: RuntimeError" in described["crashy"]
    assert described["csv"].startswith("Hoja de cálculo CSV")


@pytest.mark.parametrize("name", ["crashy", "typo"])
def test_using_a_broken_adapter_cannot_start(
    hub: Hub, tmp_path: Path, crashing: Path, name: str
) -> None:
    file = lines(tmp_path / "uno.jsonl", case("C-1", "Ana", "2012-01-01"))
    result = run("import", "--adapter", name, file, "--agency", OWNER, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert f"the installed adapter '{name}'" in result.output
    assert "fix or uninstall the package" in result.output
    assert hub.versions() == 0
    out = tmp_path / "out.jsonl"
    result = run("export", "--adapter", name, "--agency", OWNER, "--purpose",
                 "case_management", "--out", out, "--lang", "es")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"el adaptador instalado «{name}»" in result.output and not out.exists()
    # The others still work.
    assert (
        run(
            "import", "--adapter", "ndjson", lines(tmp_path / "v.ndjson"), "--agency", OWNER
        ).exit_code
        == 1
    )  # fmt: skip (a file with no records)


# -- 3. decode yields the wrong types --------------------------------------------------------------

BREACH_SAID = {
    "dict": ("at the item after position 2", "decode must yield adapters.base.Item, not dict"),
    "json-text": (
        "at position 3",
        "document must be the envelope as an object (a Mapping {schema, local_id, data}) or "
        "None, not str",
    ),
    "int-position": (
        "at position 3",
        "position must be text (a str, such as '2' or 'data[3]'), not int 3",
    ),
    "text-problem": (
        "at position 3",
        "problems[0] must be an adapters.base.Problem, not str",
    ),
    "int-local-id": ("at position 3", "local_id must be text (a str) or None, not int 7"),
}


@pytest.mark.parametrize("adapter", ["breaking", "breaking-child"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("breach", list(BREACH_SAID))
def test_a_decode_yielding_the_wrong_types_is_the_adapters_fault_and_loses_nothing_before(
    hub: Hub, tmp_path: Path, adapters: None, mode: str, adapter: str, breach: str
) -> None:
    file = lines(
        tmp_path / "lote.jsonl",
        case("B-1", "Ana", "2012-01-01"),
        case("B-2", "Bea", "2012-02-30"),  # rejected
        case("B-3", "Cira", "2012-03-03", breach=True),
        case("B-4", "Dora", "2012-04-04"),  # after the breach: not read
    )
    result = imported(hub, mode, adapter, file, "--option", f"breach={breach}", "--json")
    assert result.exit_code == 2, result.output
    summary = json.loads(result.output)
    assert (summary["read"], summary["stored"], summary["rejected"]) == (2, 1, 1)
    failure = summary["adapter_failure"]
    where, what = BREACH_SAID[breach]
    assert failure["message_en"] == (
        f"the adapter '{adapter}' broke the adapters.base contract {where}: {what}; what came "
        "before is stored or in the rejects file, what came after was not read: fix the "
        "adapter and import again (what is stored is not stored twice)"
    )
    assert "no cumple el contrato de adapters.base" in failure["message_es"]
    assert failure["position"] == ("2" if breach == "dict" else "3")
    assert [line["expediente"] for line in rejects_of(tmp_path / "lote-rejects.jsonl")] == ["B-2"]
    assert hub.records() == 1
    told = imported(hub, mode, adapter, file, "--option", f"breach={breach}", "--lang", "es")
    assert told.exit_code == 2 and "Traceback" not in told.output
    assert "rechazos" in told.output and "could not write the rejects file" not in told.output
    assert f"el adaptador «{adapter}» no cumple el contrato de adapters.base" in told.output


def test_problems_given_as_a_list_are_taken_as_a_tuple() -> None:
    problem = Problem("/x", "mal", "bad")
    item = Item("1", problems=[problem], local_id="L")  # type: ignore[arg-type]
    totals = ImportSummary("test", "file", OWNER, "direct")
    [given] = guarded(lambda: [item], "lists", totals)
    assert given.problems == (problem,) and totals.adapter_failure is None


def test_the_contract_check_passes_every_item_as_base_describes_it() -> None:
    document = {"schema": SCHEMA, "local_id": "L", "data": {}}
    assert contract_breach(Item("1", document=document, local_id="L")) is None
    assert contract_breach(Item("data[3]", problems=(Problem("", "a", "b"),))) is None
    said = contract_breach(Item("1", document=[document]))  # type: ignore[arg-type]
    assert said is not None and said[0].endswith("no list") and said[1].endswith("not list")
    # What a message shows of a value: its type, never a child's data.
    said = contract_breach({"nombre": "Rosa"})
    assert said is not None and not any("Rosa" in text for text in said)


@pytest.mark.parametrize("mode", MODES)
def test_a_fault_of_puentes_own_is_not_blamed_on_the_rejects_writer(
    hub: Hub, tmp_path: Path, adapters: None, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange import import_sinks

    def broken(_sink: Any, _documents: Any) -> Any:
        raise ZeroDivisionError("a fault of the hub's own code")

    sink = import_sinks.ApiSink if mode == "api" else import_sinks.DirectSink
    monkeypatch.setattr(sink, "push", broken)
    file = lines(tmp_path / "uno.jsonl", case("Z-1", "Ana", "2012-01-01"))
    result = imported(hub, mode, "mismatch", file, "--json")
    assert isinstance(result.exception, ZeroDivisionError)
    assert "could not write the rejects file" not in result.output
    assert not (tmp_path / "uno-rejects.jsonl").exists()


@pytest.mark.parametrize("batch", ["500", "1"])
@pytest.mark.parametrize("mode", MODES)
def test_a_document_json_cannot_carry_is_a_refused_row_in_every_mode(
    hub: Hub, tmp_path: Path, adapters: None, mode: str, batch: str
) -> None:
    file = lines(
        tmp_path / "raro.jsonl",
        case("U-1", "Ana", "2012-01-01"),
        case("U-2", "Bea", "2012-02-02", dated=True),
        case("U-3", "Cira", "2012-03-03", no_id=True),
        case("U-4", "Dora", "2012-04-04"),
    )
    result = imported(hub, mode, "unwritable", file, "--batch", batch, "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert (summary["stored"], summary["rejected_by_hub"], summary["adapter_failure"]) == (
        2,
        2,
        None,
    )
    rejected = rejects_of(tmp_path / "raro-rejects.jsonl")
    assert [line["expediente"] for line in rejected] == ["U-2", "U-3"]
    assert "canonical JSON" in rejected[0]["errors"][0]["message_en"]
    assert hub.records() == 2


# -- 4. an item with neither a document nor problems -------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_an_item_without_document_or_problems_is_rejected_with_a_reason(
    hub: Hub, tmp_path: Path, adapters: None, mode: str
) -> None:
    file = lines(
        tmp_path / "silent.jsonl",
        case("S-1", "Ana", "2012-01-01"),
        case("SILENT-2", "Bea", "2012-02-02", silent=True),
    )
    result = imported(hub, mode, "silent", file, "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert (summary["stored"], summary["rejected_by_adapter"]) == (1, 1)
    [entry] = summary["rejected_items"]
    [error] = entry["errors"]
    assert error["message_en"].startswith(
        "the adapter 'silent' gave neither a document nor a reason for this position"
    )
    assert error["message_es"].startswith("el adaptador «silent» no dio un documento")
    [rejected] = rejects_of(tmp_path / "silent-rejects.jsonl")
    assert rejected["errors"] == [error]
    told = imported(hub, mode, "silent", file, "--lang", "en")
    assert "posición 2 (SILENT-2): the adapter 'silent' gave neither" in told.output
