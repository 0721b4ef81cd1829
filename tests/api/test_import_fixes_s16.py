"""``puente import`` as docs/adapters.md now tells a newcomer to run it, on both backends:
a FHIR Patient sent without its Encounters (the guide's old search) is stored as a version
without its placements — and the import now says so, in Spanish and English; the guide's
search takes every part the adapter reads and follows the pages; the guide's samples, agencies
and worked example work as printed."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters import fhir
from adapters.fhir_grouping import subject_of
from exchange.demo_data import AGENCIES
from exchange.lost_parts import lost_parts
from tests.api import test_import
from tests.api.test_import import MODES, OWNER, Hub, api, docs_example, install_package, run

hub = test_import.hub
site = test_import.site

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "adapters.md"
FIXTURES = REPO / "tests" / "unit" / "adapters" / "fixtures"


def section(number: int) -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index(f"\n## {number}. ")
    end = text.find(f"\n## {number + 1}. ", start)
    return text[start : end if end > 0 else len(text)]


# -- a case sent in part ------------------------------------------------------------------------


def cases_bundle() -> dict[str, Any]:
    """The guide's FHIR sample: two cases with relatives, a case and placements (its Consent
    and another hub's child id left out: they are refused for reasons of their own)."""
    bundle = json.loads((FIXTURES / "fhir" / "bundle_r5_collection.json").read_text("utf-8"))
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Consent"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["identifier"] = [
                i for i in resource["identifier"] if i.get("system") != "urn:puente:child"
            ]
    return bundle


def written(path: Path, bundle: dict[str, Any]) -> Path:
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def patients_only(bundle: dict[str, Any]) -> dict[str, Any]:
    """What a search without ``_revinclude`` answers: the Patients alone."""
    alone = copy.deepcopy(bundle)
    alone["entry"] = [e for e in alone["entry"] if e["resource"]["resourceType"] == "Patient"]
    return alone


def fhir_import(file: Path, *extra: str) -> dict[str, Any]:
    result = run("import", "--adapter", "fhir", file, "--agency", OWNER, "--json", *extra)
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.output)
    return summary


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch", ["500", "1"])
def test_a_patient_sent_without_its_encounters_is_stored_with_a_warning(
    hub: Hub, tmp_path: Path, batch: str, mode: str
) -> None:
    """Straight into the database or through the API (the hub answers ``lost_parts``), in
    batches or one by one under idempotency keys."""
    through = api(hub) if mode == "api" else []
    whole = written(tmp_path / "whole.json", cases_bundle())
    first = fhir_import(whole, "--batch", batch, *through)
    assert (first["stored"], first["lost_parts_records"]) == (2, 0)

    alone = written(tmp_path / "alone.json", patients_only(cases_bundle()))
    summary = fhir_import(alone, "--batch", batch, *through)
    assert summary["stored"] == 2 and hub.versions() == 4  # valid cases: stored, as before
    assert summary["lost_parts_records"] == 2
    assert summary["lost_parts"]["/placements"] == 2
    assert summary["lost_parts"]["/related_persons"] == 2
    by_position = {item["local_id"]: item["parts"] for item in summary["lost_parts_items"]}
    assert "/case/case_number" in by_position["DIF-CHP-TAP-2024-0317"]  # its EpisodeOfCare
    assert by_position["DIF-TAB-2024-0088"] == ["/placements", "/related_persons"]

    # Sent again, the cases equal the version they replace: nothing is replaced, nor said.
    again = fhir_import(alone, "--batch", batch, *through)
    assert (again["stored"], again["lost_parts_records"]) == (0, 0)


def test_the_terminal_says_which_parts_of_which_records(hub: Hub, tmp_path: Path) -> None:
    fhir_import(written(tmp_path / "whole.json", cases_bundle()))
    alone = patients_only(cases_bundle())
    alone["entry"] = alone["entry"][1:]  # the second case only
    file = written(tmp_path / "alone.json", alone)
    told = run("import", "--adapter", "fhir", file, "--agency", OWNER, "--lang", "en")
    assert told.exit_code == 0, told.output  # a warning, not a failure
    assert (
        "Warning: 1 record was stored as a new version without parts its previous version "
        "had: /placements (1), /related_persons (1)."
    ) in told.output
    assert "with --batch 1" in told.output
    assert (
        "Aviso: 1 expediente se guardó como nueva versión sin partes que su versión "
        "anterior tenía: /placements (1), /related_persons (1)."
    ) in told.output
    assert (
        "  position / posición entry[0] (DIF-TAB-2024-0088): stored as a new version without "
        "parts the previous one had: /placements, /related_persons / guardado como nueva "
        "versión sin partes que tenía la anterior: /placements, /related_persons"
    ) in told.output


def test_the_whole_case_sent_again_one_by_one_puts_the_parts_back(hub: Hub, tmp_path: Path) -> None:
    whole = written(tmp_path / "whole.json", cases_bundle())
    fhir_import(whole)
    fhir_import(written(tmp_path / "alone.json", patients_only(cases_bundle())))
    # In batches, a copy of an earlier version is "unchanged": nothing comes back (as the
    # warning says) ...
    assert fhir_import(whole)["stored"] == 0
    # ... one by one, it is stored again, with its parts, and nothing is said lost.
    restored = fhir_import(whole, "--batch", "1")
    assert (restored["stored"], restored["lost_parts_records"]) == (2, 0)


def test_a_change_that_loses_nothing_says_nothing(hub: Hub, tmp_path: Path) -> None:
    bundle = cases_bundle()
    fhir_import(written(tmp_path / "whole.json", bundle))
    bundle["entry"][1]["resource"]["birthDate"] = "2016-05-15"  # a value changed, not lost
    placement = next(
        e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )  # a second placement for the first case: more, not less
    bundle["entry"].append(copy.deepcopy(placement))
    summary = fhir_import(written(tmp_path / "more.json", bundle))
    assert (summary["stored"], summary["lost_parts_records"]) == (2, 0)
    assert summary["lost_parts"] == {} and summary["lost_parts_items"] == []


def test_lost_parts_names_the_outermost_part_lost() -> None:
    before = {
        "case": {"status": "open", "owner": {"agency_id": "mx.chp.dif"}},
        "child": {"nationality": ["HN", "GT"], "sex": "female"},
        "placements": [{"type": "dif_cas"}, {"type": "open_door_shelter", "end_date": "x"}],
        "related_persons": [{"person_ref": "rp1", "custody": "patria_potestad"}],
    }
    after = {
        "case": {"status": "closed"},  # changed: not lost; its owner: lost
        "child": {"nationality": ["GT"], "sex": "female"},
        "placements": [{"type": "open_door_shelter"}],
        "related_persons": [{"person_ref": "rp1"}],
    }
    assert lost_parts(before, after) == (
        "/case/owner",
        "/child/nationality/*",
        "/placements/*",
        "/related_persons/*/custody",
    )
    assert lost_parts(before, before) == ()
    assert lost_parts(after, before) == ()


# -- the guide's FHIR search and its pages ------------------------------------------------------


def test_the_guides_search_includes_every_part_the_adapter_reads() -> None:
    text = section(5)
    [query] = re.findall(r'url="\$FHIR/(Patient\?[^"]+)"', text)
    included = set(re.findall(r"_revinclude=([A-Za-z]+:[a-z]+)", query))
    # Each part of a case, by the element the adapter finds its Patient by.
    for kind in fhir.CASE_PARTS:
        [element] = [
            name
            for name in ("patient", "subject")
            if subject_of({"resourceType": kind, name: {"reference": "Patient/x"}})
        ]
        assert f"{kind}:{element}" in included, (kind, query)
    assert "_count=" in query


def test_the_guides_loop_follows_each_page_to_the_last(tmp_path: Path) -> None:
    text = section(5)
    [next_link] = re.findall(r"url=\$\(python3 -c '([^']+)' pagina-\$page\.json\)", text)
    page = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    first = tmp_path / "pagina-1.json"
    first.write_text(json.dumps({**page, "link": [
        {"relation": "self", "url": "https://fhir.example.org/fhir/Patient?_count=1"},
        {"relation": "next", "url": "https://fhir.example.org/fhir/Patient?_count=1&_page=2"},
    ]}))  # fmt: skip
    last = tmp_path / "pagina-2.json"
    last.write_text(json.dumps({**page, "link": [{"relation": "self", "url": "x"}]}))
    python = shutil.which("python3") or sys.executable

    def following(path: Path) -> str:
        done = subprocess.run(
            [python, "-c", next_link, str(path)], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert following(first) == "https://fhir.example.org/fhir/Patient?_count=1&_page=2"
    assert following(last) == ""  # the loop ends


# -- the guide's samples, agencies and worked example --------------------------------------------


def test_every_sample_the_guide_points_to_is_in_the_repository() -> None:
    text = DOCS.read_text(encoding="utf-8")
    named = set(re.findall(r"tests/unit/adapters/fixtures/[\w./-]+\.(?:csv|json|yaml)", text))
    assert {path.rsplit("/", 2)[-2] for path in named} >= {"csv", "primero", "fhir"}
    for path in named:
        assert (REPO / path).is_file(), path


@pytest.mark.parametrize(
    ("sample", "args", "counts"),
    [
        ("csv/dif-estatal.csv", ["--adapter", "csv", "--mapping", "dif-estatal"], (5, 5, 0)),
        (
            "primero/cases_export.json",
            ["--adapter", "primero", "--mapping", str(FIXTURES / "primero" / "codes.yaml")],
            (5, 5, 0),
        ),
        # entry[0]: another hub's child id; entry[7]: a Consent (the guide says both).
        ("fhir/bundle_r5_collection.json", ["--adapter", "fhir"], (3, 1, 2)),
    ],
)
def test_the_guides_samples_import_as_it_says(
    hub: Hub, tmp_path: Path, sample: str, args: list[str], counts: tuple[int, int, int]
) -> None:
    copied = tmp_path / Path(sample).name  # copied first, as the guide says
    shutil.copy(FIXTURES / sample, copied)
    result = run("import", *args, copied, "--agency", OWNER, "--json")
    summary = json.loads(result.output)
    assert (summary["read"], summary["stored"], summary["rejected"]) == counts, result.output


def test_the_guides_commands_name_agencies_the_demo_hub_has() -> None:
    text = DOCS.read_text(encoding="utf-8")
    demo = {agency.id for agency in AGENCIES}
    named = set(re.findall(r"--agency (mx\.[\w.-]+)", text))
    assert named and named <= demo, named - demo
    assert "`webhook_url` column to `file-drop` directly" not in text  # the command does it
    assert "puente agency set-webhook mx.chp.tapachula.dif file-drop" in section(6)


def test_the_worked_examples_option_gives_valid_records(
    hub: Hub, tmp_path: Path, site: Path
) -> None:
    source, entry_points = docs_example()
    [status] = re.findall(r"--option status=(\w+)", source)  # as the example's comment says
    install_package(site, "sigeca_puente", source, entry_points)
    file = tmp_path / "traslados.jsonl"
    line = {"expediente": "SIG-9", "nombre": "Ana", "apellido": "S", "nacimiento": "2012-01-02",
            "pais": "GT"}  # fmt: skip
    file.write_text(json.dumps(line) + "\n", encoding="utf-8")
    result = run("import", "--adapter", "sigeca", "--option", f"status={status}", file,
                 "--agency", OWNER, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["stored"] == 1
