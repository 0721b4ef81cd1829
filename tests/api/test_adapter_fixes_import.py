"""``puente import`` and ``puente export`` with the files of an outside tester (rebuilt here):
a quote left open, a fixed row sent again after a later row of its record was stored, an
export with more placements than the mapping's columns, an adapter that fails midway through
an export. On both backends, through the real command line."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest

from tests.api import test_import
from tests.api.test_import import OWNER, Hub, child_of, envelope, install_package, run, write_ndjson

hub = test_import.hub
site = test_import.site

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

CSV = ["import", "--adapter", "csv", "--mapping", "dif-estatal"]
HEADER = "folio,nombre(s),fecha_nacimiento,nacionalidad"


def sheet(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\r\n" for line in lines), encoding="utf-8")
    return path


def test_a_quote_left_open_stores_nothing_after_it_and_says_where(hub: Hub, tmp_path: Path) -> None:
    file = sheet(
        tmp_path / "q.csv",
        f"{HEADER},alias",
        "Q-1,Ana,01/01/2012,Hondureña,ok",
        'Q-2,Bea,01/01/2012,Hondureña,"La Güera',
        "Q-3,Cira,01/01/2012,Hondureña,ok",
        "Q-4,Dora,01/01/2012,Hondureña,ok",
    )
    result = run(*CSV, file, "--agency", OWNER, "--json")
    assert result.exit_code == 1, result.output  # a problem of the file, after a stored row
    summary = json.loads(result.output)
    assert (summary["read"], summary["stored"], summary["rejected"]) == (2, 1, 1)
    [problem] = summary["file_problems"]
    assert problem["position"] == "3" and "never closed" in problem["message_en"]
    assert hub.records() == 1  # Q-1 only: nothing of Q-3 or Q-4 in Q-2's record
    text = (tmp_path / "q-rejects.csv").read_text(encoding="utf-8")
    assert "Q-3,Cira" in text  # kept, in the rejected row's cell
    told = run(*CSV, file, "--agency", OWNER, "--lang", "en")
    assert "Problems with the file" in told.output and "row 3 opens a quote" in told.output


def test_a_fixed_older_row_is_not_offered_again_over_the_newer_one(
    hub: Hub, tmp_path: Path
) -> None:
    file = sheet(
        tmp_path / "dup.csv",
        f"{HEADER},observaciones",
        "DUP-1,Ana,31/02/2012,Hondureña,versión vieja (enero)",
        "DUP-1,Ana,01/02/2012,Hondureña,versión nueva (marzo)",
    )
    result = run(*CSV, file, "--agency", OWNER, "--json")
    summary = json.loads(result.output)
    assert result.exit_code == 0, result.output  # every record holds its latest version
    assert (summary["stored"], summary["rejected"], summary["superseded"]) == (1, 0, 1)
    assert summary["superseded_items"][0]["superseded_by"] == "3"
    assert summary["rejects_file"] is None and not (tmp_path / "dup-rejects.csv").exists()
    told = run(*CSV, file, "--agency", OWNER, "--lang", "en")
    assert "Older versions, left out of the rejects file: 1" in told.output
    assert "posición 2 (DUP-1): rejected, but position 3, later in the file" in told.output
    assert hub.versions() == 1  # row 3's; the second run found it unchanged


def test_an_export_with_more_placements_than_columns_writes_nothing(
    hub: Hub, tmp_path: Path
) -> None:
    five = envelope("PL-5")
    placement = five["data"]["placements"][0]
    five["data"]["placements"] = [
        {**copy.deepcopy(placement), "start_date": f"2024-0{n}-01", "end_date": f"2024-0{n}-02"}
        for n in range(1, 6)
    ]
    file = write_ndjson(tmp_path / "pl5.ndjson", [five])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    out = tmp_path / "pl5.csv"
    child = child_of(hub, "PL-5")
    args = ["export", "--adapter", "csv", "--mapping", "dif-estatal", "--agency", OWNER,
            "--purpose", "case_management", "--out", out, "--child", child]  # fmt: skip
    result = run(*args, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert "the record 'PL-5' has 5 items in /placements" in result.output
    assert "raise that group's 'repeat' to 5" in result.output
    assert not out.exists()
    # With room for them all, the sheet holds every placement, and imports back the same.
    mapping = Path(test_import.__file__).parents[2] / "adapters/mappings/dif-estatal.yaml"
    roomy = tmp_path / "roomy.yaml"
    roomy.write_text(mapping.read_text(encoding="utf-8").replace("repeat: 3", "repeat: 5"))
    assert "repeat: 5" in roomy.read_text()
    args[4] = str(roomy)
    assert run(*args).exit_code == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0]["albergue_5_fecha_ingreso"] == "01/05/2024"


RAISING_ON_THE_THIRD = '''
from adapters.native import NdjsonAdapter


class Adapter(NdjsonAdapter):
    """The native format, but its writer raises on the third record."""

    name = "boom"

    def encode(self, documents, out):
        for number, _document in enumerate(documents, start=1):
            if number == 3:
                raise KeyError("boom")
            out.write(b"{}\\n")
'''


def test_an_adapter_failing_on_the_third_record_is_said_to_have_written_two(
    hub: Hub, tmp_path: Path, site: Path
) -> None:
    install_package(
        site, "raising_adapter", RAISING_ON_THE_THIRD, {"boom": "raising_adapter:Adapter"}
    )
    records = [envelope(f"E-{n}", f"C-{n}") for n in range(1, 5)]
    file = write_ndjson(tmp_path / "cuatro.ndjson", records)
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    args = ["export", "--adapter", "boom", "--agency", OWNER, "--purpose", "case_management",
            "--out", tmp_path / "out.ndjson"]  # fmt: skip
    english = run(*args, "--lang", "en")
    assert english.exit_code == 2, english.output
    assert "the adapter 'boom' failed on record 3, after writing 2" in english.output
    spanish = run(*args, "--lang", "es")
    assert "el adaptador «boom» falló en el expediente 3, tras escribir 2" in spanish.output
