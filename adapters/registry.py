"""Which adapters exist, and getting one by name.

Built-in adapters are registered here explicitly, as ``"module:attribute"`` strings loaded on
first use (so ``puente adapters list`` does not import the FHIR models). Third-party adapters
are found through the ``puente.adapters`` entry-point group: a package declares

.. code-block:: ini

    [options.entry_points]
    puente.adapters =
        sigeca = sigeca_puente:SigecaAdapter

and, once installed next to Puente, ``puente import --adapter sigeca`` uses it. The entry point
names a class (or any callable) that takes the adapter's options as keyword arguments and
returns an object satisfying :class:`adapters.base.Adapter`. A built-in name cannot be taken
over by an installed package: the built-in wins.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any

from adapters.base import Adapter
from adapters.errors import AdapterError, AdapterUnavailable, UnknownAdapter
from schemas.errors import BilingualError

ENTRY_POINT_GROUP = "puente.adapters"


@dataclass(frozen=True)
class AdapterInfo:
    """One registered adapter: its name, where it is loaded from, what it reads."""

    name: str
    target: str
    description_es: str
    description_en: str
    builtin: bool
    #: The installed distribution that declares it (``sigeca-puente 1.0.0``), for messages.
    package: str = ""

    def description(self, lang: str | None = None) -> str:
        """In ``lang``, or both (``es / en``) when no language is given."""
        if lang == "es":
            return self.description_es
        if lang == "en":
            return self.description_en
        if self.description_es == self.description_en:
            return self.description_en
        return f"{self.description_es} / {self.description_en}"


BUILTINS: Mapping[str, AdapterInfo] = {
    info.name: info
    for info in (
        AdapterInfo(
            "json",
            "adapters.native:JsonAdapter",
            "Formato nativo: un envío JSON o una lista de envíos",
            "Native format: one JSON push envelope or an array of them",
            True,
        ),
        AdapterInfo(
            "ndjson",
            "adapters.native:NdjsonAdapter",
            "Formato nativo: un envío JSON por línea (NDJSON), en flujo",
            "Native format: one JSON push envelope per line (NDJSON), streamed",
            True,
        ),
        AdapterInfo(
            "csv",
            "adapters.csv_adapter:CsvAdapter",
            "Hoja de cálculo CSV con un archivo de correspondencia de columnas (--mapping)",
            "CSV spreadsheet with a column mapping file (--mapping)",
            True,
        ),
        AdapterInfo(
            "primero",
            "adapters.primero:PrimeroAdapter",
            'Casos de Primero (API v2, {"data": [...]})',
            'Primero cases (API v2, {"data": [...]})',
            True,
        ),
        AdapterInfo(
            "fhir",
            "adapters.fhir:FhirAdapter",
            "Bundle HL7 FHIR R4 o R5 (Patient, RelatedPerson, Consent…)",
            "HL7 FHIR R4 or R5 Bundle (Patient, RelatedPerson, Consent…)",
            True,
        ),
    )
}


def _installed() -> dict[str, AdapterInfo]:
    """Adapters declared by installed packages, built-in names excluded."""
    found: dict[str, AdapterInfo] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry, "dist", None)
        package = f"{dist.name} {dist.version}" if dist is not None else entry.value
        if entry.name in BUILTINS:
            _say_builtin_kept(entry.name, package)
            continue
        if entry.name in found:
            continue
        found[entry.name] = AdapterInfo(
            entry.name,
            entry.value,
            f"Adaptador instalado ({package})",
            f"Installed adapter ({package})",
            False,
            package,
        )
    return found


#: Installed packages already told (on stderr) that they cannot take a built-in name.
_TOLD: set[tuple[str, str]] = set()


def _say_builtin_kept(name: str, package: str) -> None:
    """An installed package that names its adapter as a built-in one (``csv``) would be
    ignored without a word, and its author left wondering: said once per process, on
    stderr, in both languages."""
    if (name, package) in _TOLD:
        return
    _TOLD.add((name, package))
    print(
        f"aviso: el paquete instalado {package} registra el adaptador «{name}», nombre de uno "
        f"incorporado que no se puede reemplazar: se usa el incorporado; dé otro nombre al "
        f"suyo (entry point {ENTRY_POINT_GROUP}) / warning: the installed package {package} "
        f"registers the adapter '{name}', the name of a built-in one, which cannot be "
        f"overridden: the built-in is used; give yours another name (entry point "
        f"{ENTRY_POINT_GROUP})",
        file=sys.stderr,
    )


def registered() -> dict[str, AdapterInfo]:
    """Every adapter by name: the built-ins, then installed ones, each group sorted."""
    return {**BUILTINS, **dict(sorted(_installed().items()))}


def available(lang: str | None = None) -> dict[str, str]:
    """Adapter name → what it reads (in ``lang``, or Spanish and English).

    An installed adapter that states its own ``description`` (a string, or a mapping with
    ``es`` and ``en``) is described by it; that loads its module.
    """
    result: dict[str, str] = {}
    for name, info in registered().items():
        if not info.builtin:
            info = _self_described(info)
        result[name] = info.description(lang)
    return result


def _self_described(info: AdapterInfo) -> AdapterInfo:
    """``info`` with the adapter's own description, or with why it cannot be loaded: one
    broken package never stops the others from being listed."""
    try:
        factory = _load(info)
    except AdapterError as error:
        return replace(info, description_es=error.message_es, description_en=error.message_en)
    try:
        stated = getattr(factory, "description", None)
        if isinstance(stated, str):
            return replace(info, description_es=stated, description_en=stated)
        if isinstance(stated, Mapping) and "es" in stated and "en" in stated:
            return replace(info, description_es=str(stated["es"]), description_en=str(stated["en"]))
    except Exception:  # noqa: BLE001 (an installed adapter's attribute may be anything)
        return info  # described by its package, as when it states nothing
    return info


def get(name: str, **options: Any) -> Adapter:
    """A new adapter called ``name``, built with ``options`` (``mapping=Path(...)`` for csv).

    Raises :class:`~adapters.errors.UnknownAdapter` (naming the available ones),
    :class:`~adapters.errors.AdapterUnavailable` when its module cannot be imported, an
    :class:`~adapters.errors.AdapterError` naming the adapter's options for one it does not
    have, or the adapter's own error (any other exception of an installed adapter becomes an
    :class:`~adapters.errors.AdapterError` saying what it raised).
    """
    adapters = registered()
    info = adapters.get(name)
    if info is None:
        raise UnknownAdapter(name, list(adapters))
    factory = _load(info)
    accepted = option_names(factory)
    unknown = [key for key in options if accepted is not None and key not in accepted]
    unknown = [key for key in unknown if key not in NOT_TEXT_OPTIONS]
    if unknown:
        raise _unknown_option(name, unknown[0], accepted or [])
    try:
        adapter = factory(**options)
    except BilingualError:  # the adapter's own reason (a mapping file, a schema): as it is
        raise
    except Exception as error:  # an installed adapter may raise anything: say what and where
        raised = f"{type(error).__name__}: {error}"
        raise AdapterError(
            f"el adaptador «{name}» no se pudo preparar con esas opciones ({raised})",
            f"the adapter '{name}' could not be set up with those options ({raised})",
        ) from error
    if not isinstance(adapter, Adapter):
        raise AdapterError(
            f"«{info.target}» no produce un adaptador (faltan name, media_types, decode o encode)",
            f"'{info.target}' does not produce an adapter (name, media_types, decode or encode "
            "is missing)",
        )
    return adapter


#: Keyword arguments of the built-in adapters that take Python objects, not text: given by
#: code that builds an adapter, never listed as options of the command line.
NOT_TEXT_OPTIONS = frozenset({"registry", "codes"})


def option_names(factory: Callable[..., Any]) -> list[str] | None:
    """The options (keyword arguments) an adapter's factory takes, less
    :data:`NOT_TEXT_OPTIONS`; None when it takes any (``**options``) or cannot be inspected."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    names = []
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            if parameter.name not in NOT_TEXT_OPTIONS:
                names.append(parameter.name)
    return names


def _unknown_option(name: str, key: str, accepted: list[str]) -> AdapterError:
    listed_es = ", ".join(accepted) if accepted else "ninguna"
    listed_en = ", ".join(accepted) if accepted else "none"
    if key == "mapping":
        return AdapterError(
            f"el adaptador «{name}» no usa un archivo de correspondencia (--mapping); "
            f"sus opciones: {listed_es}",
            f"the adapter '{name}' takes no mapping file (--mapping); its options: {listed_en}",
        )
    return AdapterError(
        f"el adaptador «{name}» no tiene la opción «{key}»; sus opciones (--option "
        f"CLAVE=VALOR): {listed_es}",
        f"the adapter '{name}' has no option '{key}'; its options (--option KEY=VALUE): "
        f"{listed_en}",
    )


def _load(info: AdapterInfo) -> Callable[..., Any]:
    module_name, _, attribute = info.target.partition(":")
    # An installed package's module may raise anything while it is imported (a SyntaxError,
    # a RuntimeError of its own): said as that adapter's problem, never a traceback that
    # stops every command that looks the adapters up.
    catching = (ImportError, AttributeError) if info.builtin else (Exception,)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except catching as error:
        raised = f"{type(error).__name__}: {error}"
        if info.builtin:
            raise AdapterUnavailable(
                f"el adaptador «{info.name}» ({info.target}) no se puede cargar: {raised}",
                f"the adapter '{info.name}' ({info.target}) cannot be loaded: {raised}",
            ) from error
        package = info.package or "?"
        raise AdapterUnavailable(
            f"el adaptador instalado «{info.name}» (paquete {package}, entry point "
            f"{info.target}) no se puede cargar: {raised}; corrija o desinstale el paquete",
            f"the installed adapter '{info.name}' (package {package}, entry point "
            f"{info.target}) cannot be loaded: {raised}; fix or uninstall the package",
        ) from error
    if not callable(target):
        raise AdapterError(
            f"«{info.target}» no es una clase ni una función",
            f"'{info.target}' is neither a class nor a function",
        )
    return target  # type: ignore[no-any-return]
