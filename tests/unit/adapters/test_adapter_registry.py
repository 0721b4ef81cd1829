"""Finding adapters: the built-ins by name, installed packages through the ``puente.adapters``
entry-point group (the example package in example_adapter/ is installed into a temporary
folder on ``sys.path``, with the metadata pip would write)."""

from __future__ import annotations

import io
import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import registry
from adapters.base import Adapter
from adapters.csv_adapter import CsvAdapter
from adapters.errors import AdapterError, AdapterUnavailable, MappingError, UnknownAdapter
from adapters.native import JsonAdapter, NdjsonAdapter

EXAMPLE = Path(__file__).parent / "example_adapter"


def install(site: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """A distribution as ``pip install --target site`` leaves it: ``*.dist-info`` with
    ``METADATA`` and ``entry_points.txt``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"{key} = {value}" for key, value in entry_points.items()]
    (info / "entry_points.txt").write_text("[puente.adapters]\n" + "\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for module in [m for m in sys.modules if m.startswith("puente_example_adapter")]:
        del sys.modules[module]


@pytest.fixture
def example_installed(site: Path) -> Path:
    """The example package installed as its pyproject.toml declares it."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    shutil.copytree(EXAMPLE / "puente_example_adapter", site / "puente_example_adapter")
    install(site, project["name"], project["version"], project["entry-points"]["puente.adapters"])
    return site


def test_builtins_are_registered_explicitly() -> None:
    names = list(registry.available())
    assert names[:5] == ["json", "ndjson", "csv", "primero", "fhir"]
    assert isinstance(registry.get("json"), JsonAdapter)
    assert isinstance(registry.get("ndjson"), NdjsonAdapter)
    assert isinstance(registry.get("csv", mapping="dif-estatal"), CsvAdapter)


def test_descriptions_in_either_language_or_both() -> None:
    assert registry.available("es")["csv"].startswith("Hoja de cálculo CSV")
    assert registry.available("en")["csv"].startswith("CSV spreadsheet")
    both = registry.available()["ndjson"]
    assert "línea" in both and "per line" in both


def test_an_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(UnknownAdapter) as caught:
        registry.get("excel")
    assert "«excel»" in caught.value.message("es") and "'excel'" in caught.value.message("en")
    for name in ("json", "ndjson", "csv", "primero", "fhir"):
        assert name in caught.value.message_en


def test_wrong_options_are_an_adapter_error() -> None:
    with pytest.raises(
        AdapterError, match=r"the adapter 'json' takes no mapping file \(--mapping\)"
    ):
        registry.get("json", mapping="x.yaml")
    with pytest.raises(MappingError, match="--mapping"):
        registry.get("csv")


def test_an_unknown_option_names_the_options_the_adapter_has() -> None:
    with pytest.raises(AdapterError) as caught:
        registry.get("csv", mapping="dif-estatal", foo="bar")
    assert caught.value.message_en == (
        "the adapter 'csv' has no option 'foo'; its options (--option KEY=VALUE): "
        "mapping, delimiter"
    )
    assert "«foo»" in caught.value.message_es and "CLAVE=VALOR" in caught.value.message_es
    assert "__init__" not in caught.value.message_en + caught.value.message_es


def test_an_adapter_without_options_says_so(example_installed: Path) -> None:
    with pytest.raises(AdapterError) as caught:
        registry.get("pipe-list", mapping="x.yaml")
    assert caught.value.message_en == (
        "the adapter 'pipe-list' takes no mapping file (--mapping); its options: state"
    )


def test_an_adapter_that_fails_to_start_is_an_adapter_error(site: Path) -> None:
    (site / "failing_start.py").write_text(
        "class Adapter:\n"
        "    def __init__(self, *, level: str = '1') -> None:\n"
        "        raise ValueError('level must be a number')\n"
    )
    install(site, "failing-start", "0.1", {"failing": "failing_start:Adapter"})
    with pytest.raises(AdapterError) as caught:
        registry.get("failing", level="x")
    assert caught.value.message_en == (
        "the adapter 'failing' could not be set up with those options "
        "(ValueError: level must be a number)"
    )
    sys.modules.pop("failing_start", None)


def test_an_installed_package_is_found_by_its_entry_point(example_installed: Path) -> None:
    assert "pipe-list" in registry.available()
    assert registry.available("es")["pipe-list"].startswith("Lista de texto de ejemplo")
    adapter = registry.get("pipe-list")
    assert isinstance(adapter, Adapter)
    assert registry.registered()["pipe-list"].builtin is False
    items = list(adapter.decode(io.BytesIO(b"F-1|Ana|Ejemplo|02/07/2010|GT\nF-2|Luis\n")))
    assert items[0].ok and items[0].document is not None
    assert items[0].document["data"]["child"]["date_of_birth"] == "2010-07-02"
    assert items[1].position == "2" and not items[1].ok


def test_options_reach_an_installed_adapter(example_installed: Path) -> None:
    adapter = registry.get("pipe-list", state="closed")
    (item,) = adapter.decode(io.BytesIO(b"F-1|Ana|Ejemplo|02/07/2010|GT\n"))
    # A closed case without a closure section is not valid: the option was used.
    assert not item.ok and {p.pointer for p in item.problems} == {""}


def test_a_builtin_name_cannot_be_taken_over(site: Path) -> None:
    install(site, "impostor", "1.0", {"csv": "impostor:Csv", "other-one": "impostor:Other"})
    assert registry.registered()["csv"].builtin
    assert registry.registered()["csv"].target == "adapters.csv_adapter:CsvAdapter"
    assert "other-one" in registry.registered()


def test_an_installed_adapter_that_does_not_load_is_reported(site: Path) -> None:
    install(site, "broken-adapter", "0.1", {"broken": "no_such_module:Adapter"})
    assert "no_such_module" in registry.available("en")["broken"]
    with pytest.raises(AdapterUnavailable) as caught:
        registry.get("broken")
    assert "broken" in caught.value.message_es and "cannot be loaded" in caught.value.message_en


def test_something_that_is_not_an_adapter_is_refused(site: Path) -> None:
    install(site, "not-an-adapter", "0.1", {"nothing": "builtins:dict"})
    with pytest.raises(AdapterError, match="does not produce an adapter"):
        registry.get("nothing")


@pytest.mark.parametrize(
    ("source", "raised"),
    [
        ("raise RuntimeError('license server unreachable')\n", "RuntimeError: license server"),
        ("class Adapter(:\n    pass\n", "SyntaxError: "),
        ("import json\njson.loads('{')\n", "JSONDecodeError: "),
    ],
)
def test_a_package_whose_module_raises_is_said_and_the_others_still_listed(
    site: Path, source: str, raised: str
) -> None:
    (site / "crashing_module.py").write_text(source)
    install(site, "crashing-adapter", "0.3", {"crashing": "crashing_module:Adapter"})
    described = registry.available("en")  # no traceback: every adapter is listed
    assert list(described)[:5] == ["json", "ndjson", "csv", "primero", "fhir"]
    assert described["crashing"].startswith(
        "the installed adapter 'crashing' (package crashing-adapter 0.3, entry point "
        f"crashing_module:Adapter) cannot be loaded: {raised}"
    )
    assert "no se puede cargar" in registry.available("es")["crashing"]
    with pytest.raises(AdapterUnavailable) as caught:
        registry.get("crashing")
    assert raised in caught.value.message_en and "corrija o desinstale" in caught.value.message_es
    assert isinstance(registry.get("ndjson"), NdjsonAdapter)  # the others still work
    sys.modules.pop("crashing_module", None)


def test_a_description_that_cannot_be_read_leaves_the_package_one(site: Path) -> None:
    (site / "odd_description.py").write_text(
        "class Described(dict):\n"
        "    def __contains__(self, key):\n"
        "        raise RuntimeError('no')\n"
        "class Adapter:\n"
        "    description = Described()\n"
    )
    install(site, "odd-description", "0.1", {"odd": "odd_description:Adapter"})
    assert registry.available("en")["odd"] == "Installed adapter (odd-description 0.1)"
    sys.modules.pop("odd_description", None)
