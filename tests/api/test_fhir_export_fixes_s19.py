"""FHIR exports of two agencies that use one local id: each record keeps its own resources,
so an agency's own export, even beside another agency's record under the same local id,
imports again as unchanged. On both backends, through the real command line."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.api import test_import
from tests.api.test_import import MODES, OTHER, OWNER, Hub, api, envelope, run, write_ndjson

hub = test_import.hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def another_child(local_id: str) -> dict[str, Any]:
    """A record of another child, owned by OTHER, with relatives and placements of its own."""
    document = envelope(local_id, "NL-1")
    data = document["data"]
    data["case"]["owner"] = {"agency_id": OTHER}
    data["child"]["names"] = {"given_names": "Yénifer", "first_surname": "Quiñónez"}
    data["child"]["identifiers"] = [{"type": "curp", "value": "QUSY110909MNEXRN05"}]
    data["child"]["date_of_birth"] = "2011-09-09"
    for person in data.get("related_persons") or []:
        person["person_ref"] = "nl-" + person["person_ref"]
    data["placements"] = [copy.deepcopy(data["placements"][0])]
    data["placements"][0]["facility_name"] = "Casa Nuevo León"
    return document


def export(hub: Hub, agency: str, out: Path, mode: str, *extra: str) -> None:
    options = api(hub, agency) if mode == "api" else []
    child: list[str] = []
    if mode == "api":
        child = ["--child", test_import.child_of(hub, "E-1")] if agency == OWNER else []
    done = run(
        "export", "--adapter", "fhir", "--agency", agency, "--purpose", "case_management",
        "--out", out, *child, *extra, *options,
    )  # fmt: skip
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bundle_type", ["collection", "transaction"])
def test_an_own_export_beside_another_agencys_record_of_one_local_id_is_unchanged(
    hub: Hub, tmp_path: Path, mode: str, bundle_type: str
) -> None:
    own = write_ndjson(tmp_path / "own.ndjson", [envelope("E-1")])
    assert run("import", "--adapter", "ndjson", own, "--agency", OWNER).exit_code == 0
    theirs = write_ndjson(tmp_path / "theirs.ndjson", [another_child("E-1")])
    assert run("import", "--adapter", "ndjson", theirs, "--agency", OTHER).exit_code == 0
    versions = hub.versions()

    option = ["--option", f"bundle_type={bundle_type}"]
    mine, other = tmp_path / "mine.json", tmp_path / "other.json"
    export(hub, OWNER, mine, mode, *option)
    export(hub, OTHER, other, "direct", *option)
    own_bundle = json.loads(mine.read_text(encoding="utf-8"))
    other_bundle = json.loads(other.read_text(encoding="utf-8"))

    # Alone, the agency's own export is unchanged.
    extra = api(hub) if mode == "api" else []
    again = run("import", "--adapter", "fhir", mine, "--agency", OWNER, "--json", *extra)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert summary["stored"] == 0 and summary["unchanged"] + summary["replayed"] == 1, summary

    # Beside the other agency's record of the same local id (as an export holding both is):
    # no fullUrl nor conditional update is shared, and the own record takes none of the
    # other child's relatives or placements.
    both = {**own_bundle, "entry": own_bundle["entry"] + other_bundle["entry"]}
    urls = [entry["fullUrl"] for entry in both["entry"]]
    assert len(urls) == len(set(urls))
    if bundle_type == "transaction":
        requests = [entry["request"]["url"] for entry in both["entry"]]
        assert len(requests) == len(set(requests))
    mixed = tmp_path / "both.json"
    mixed.write_text(json.dumps(both), encoding="utf-8")
    result = run("import", "--adapter", "fhir", mixed, "--agency", OWNER, "--json", *extra)
    summary = json.loads(result.output)
    assert summary["stored"] == 0, summary
    assert summary["unchanged"] + summary["replayed"] == 1, summary
    assert hub.versions() == versions
