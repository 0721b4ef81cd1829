"""``puente export`` when it cannot give a file: an installed adapter that raises is reported
as ``puente import`` reports one (both languages, exit 2, no traceback) and leaves no file
behind; an export of nothing leaves ``--out`` as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange import exporter
from tests.api import test_import
from tests.api.test_import import (
    MODES,
    OWNER,
    Hub,
    api,
    child_of,
    envelope,
    install_package,
    run,
    write_ndjson,
)

# The hub (both backends) and the site-packages folder of the import and export tests.
hub = test_import.hub
site = test_import.site

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

RAISING_ENCODER = '''
from adapters.native import NdjsonAdapter


class Adapter(NdjsonAdapter):
    """The native format, but its writer raises on the second record, half a line written."""

    name = "boom"

    def encode(self, documents, out):
        for number, _document in enumerate(documents, start=1):
            out.write(b'{"half')
            if number == 2:
                raise KeyError("boom")
'''
PREVIOUS = "lo que la oficina ya tenía\n"


def two_records(hub: Hub, tmp_path: Path) -> None:
    file = write_ndjson(tmp_path / "dos.ndjson", [envelope("E-1"), envelope("E-2", "C-9")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0


def export(out: Path, *extra: str) -> Any:
    return run(
        "export", "--agency", OWNER, "--purpose", "case_management", "--out", out, *extra
    )  # fmt: skip


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_an_adapter_whose_writer_raises_is_reported_without_a_traceback(
    hub: Hub, tmp_path: Path, site: Path
) -> None:
    install_package(site, "raising_adapter", RAISING_ENCODER, {"boom": "raising_adapter:Adapter"})
    two_records(hub, tmp_path)
    out = tmp_path / "salida.ndjson"
    out.write_text(PREVIOUS, encoding="utf-8")
    english = export(out, "--adapter", "boom", "--lang", "en")
    assert english.exit_code == 2, english.output
    assert "Traceback" not in english.output and isinstance(english.exception, SystemExit)
    assert (
        "the adapter 'boom' failed on record 2, after writing 1 (KeyError: 'boom'); no file "
        "was written"
    ) in english.output
    spanish = export(out, "--adapter", "boom", "--lang", "es")
    assert spanish.exit_code == 2
    assert (
        "el adaptador «boom» falló en el expediente 2, tras escribir 1 (KeyError: 'boom')"
        in spanish.output
    )
    # Half a file is worse than none: --out is as it was, and no temporary file is left.
    assert out.read_text(encoding="utf-8") == PREVIOUS
    assert leftovers(tmp_path) == []


def test_a_fault_of_the_records_read_is_not_blamed_on_the_adapter(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*_args: Any) -> Iterator[dict[str, Any]]:
        yield envelope("E-1")
        raise RuntimeError("a fault of the hub")

    monkeypatch.setattr(exporter, "readable_directly", failing)
    two_records(hub, tmp_path)
    result = export(tmp_path / "salida.ndjson", "--adapter", "ndjson", "--lang", "en")
    assert isinstance(result.exception, RuntimeError)
    assert "the adapter" not in result.output
    assert not (tmp_path / "salida.ndjson").exists()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("adapter", ["fhir", "ndjson"])
def test_an_export_of_nothing_leaves_out_as_it_was(
    hub: Hub, tmp_path: Path, mode: str, adapter: str
) -> None:
    two_records(hub, tmp_path)
    out = tmp_path / "salida.json"
    out.write_text(PREVIOUS, encoding="utf-8")
    extra = [*api(hub)] if mode == "api" else []
    unknown = "nna_00000000000000000000"
    result = export(out, "--adapter", adapter, "--child", unknown, "--lang", "en", *extra)
    assert result.exit_code == 1, result.output
    assert f"nothing was exported of {unknown}" in result.output
    assert out.read_text(encoding="utf-8") == PREVIOUS
    as_json = export(out, "--adapter", adapter, "--child", unknown, "--json", *extra)
    assert as_json.exit_code == 1
    summary = json.loads(as_json.output)
    assert summary["nothing_for_named_children"] is True and summary["out"] is None
    assert out.read_text(encoding="utf-8") == PREVIOUS
    assert leftovers(tmp_path) == []

    # A child that gives records replaces it, as always.
    child = child_of(hub, "E-1")
    assert export(out, "--adapter", adapter, "--child", child, *extra).exit_code == 0
    assert out.read_text(encoding="utf-8") != PREVIOUS
