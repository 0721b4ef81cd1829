"""The schema registry: loads, resolves and compiles the shipped JSON Schema documents.

Documents live in ``schemas/documents/<name>/<version>.json`` (draft 2020-12) with
``$id`` ``https://schemas.puente.mx/<name>/<version>``; they refer to each other by that
absolute id. One :class:`SchemaRegistry` holds every document and serves:

- listing (:meth:`~SchemaRegistry.list`, :meth:`~SchemaRegistry.names`,
  :meth:`~SchemaRegistry.versions`, :meth:`~SchemaRegistry.latest`) and lookup
  (:meth:`~SchemaRegistry.document`, :meth:`~SchemaRegistry.parse_schema_ref`);
- compiled validators (:meth:`~SchemaRegistry.validator`), built once and cached;
- the resolution registries both validator implementations need (``referencing`` for the
  reference ``jsonschema`` validator, ``jsonschema_rs.Registry`` for the fast one);
- the field map used for messages and schema-driven redaction
  (:meth:`~SchemaRegistry.fields`, :meth:`~SchemaRegistry.leaf_categories`).
"""

from __future__ import annotations

import builtins
import copy
import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs
import referencing
from referencing.jsonschema import DRAFT202012

from schemas.errors import UnknownSchema
from schemas.fastpath import fast_copy
from schemas.fields import FieldInfo, collect_fields, resolve_uri
from schemas.formats import FORMATS

if TYPE_CHECKING:
    from schemas.validation import Validator

ID_PREFIX = "https://schemas.puente.mx/"
DOCUMENTS_DIR = Path(__file__).parent / "documents"
EXAMPLES_DIR = Path(__file__).parent / "examples"

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_REF = re.compile(r"^(?P<name>[a-z][a-z0-9-]{0,62})(?:/(?P<version>[1-9][0-9]{0,5}))?$")


@dataclass(frozen=True)
class SchemaInfo:
    """One schema version, as listed by the registry. ``version`` is the decimal string
    (``"1"``), as it appears in ``$id``, in URLs and in ``case-record/1``."""

    name: str
    version: str
    id: str
    title: Mapping[str, str] = field(hash=False)

    @property
    def ref(self) -> str:
        """``name/version``, the form pushes and the CLI use."""
        return f"{self.name}/{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "id": self.id,
            "title": dict(self.title),
        }


Version = str | int


def schema_id(name: str, version: Version) -> str:
    return f"{ID_PREFIX}{name}/{version}"


class SchemaRegistry:
    """Every schema document, keyed by ``(name, version)``. Immutable once built."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]) -> None:
        by_key: dict[tuple[str, int], dict[str, Any]] = {}
        for document in documents:
            name, version = _name_version_of(document)
            if (name, version) in by_key:
                raise ValueError(f"schema {name}/{version} is defined twice")
            by_key[(name, version)] = dict(document)
        self._documents = dict(sorted(by_key.items()))
        for key, document in self._documents.items():
            unknown = _formats_used(document) - FORMATS.keys()
            if unknown:
                raise ValueError(
                    f"schema {key[0]}/{key[1]} uses formats {sorted(unknown)}; "
                    f"supported: {sorted(FORMATS)} (see schemas/formats.py)"
                )
        self._by_id = {schema_id(*key): doc for key, doc in self._documents.items()}
        self._validators: dict[tuple[str, Version], Validator] = {}
        self._fields: dict[tuple[str, int], Mapping[str, FieldInfo]] = {}
        self._compiled: dict[str, Validator] = {}
        self._definition_names = {
            id(node): name
            for document in self._documents.values()
            for name, node in (document.get("$defs") or {}).items()
        }
        self._lock = threading.Lock()
        # Without "$schema": on entering another document jsonschema would otherwise switch to
        # its stock validator class and lose the reference validator's ECMA-262 patterns.
        resources = [
            (uri, DRAFT202012.create_resource(without_dialect(doc)))
            for uri, doc in self._by_id.items()
        ]
        self.referencing_registry: referencing.Registry[Any] = (
            referencing.Registry().with_resources(resources).crawl()
        )
        self.rs_registry = jsonschema_rs.Registry(list(self._by_id.items()))
        # The same documents rewritten for speed (schemas.fastpath), for the yes/no answer only.
        self.rs_fast_registry = jsonschema_rs.Registry(
            [(uri, dict(fast_copy(doc))) for uri, doc in self._by_id.items()]
        )

    @classmethod
    def load(cls, directory: Path | None = None) -> SchemaRegistry:
        """Read every ``<name>/<version>.json`` under ``directory`` (default: the shipped ones)."""
        root = directory or DOCUMENTS_DIR
        documents = []
        for path in sorted(root.glob("*/*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            name, version = _name_version_of(document)
            if (path.parent.name, path.stem) != (name, str(version)):
                raise ValueError(
                    f"{path}: $id {document.get('$id')!r} does not match the file path"
                )
            documents.append(document)
        return cls(documents)

    # -- listing and lookup -------------------------------------------------------------------

    def list(self) -> builtins.list[SchemaInfo]:
        """Every schema version, sorted by name then version."""
        return [
            SchemaInfo(name, str(version), schema_id(name, version), _title(doc, name))
            for (name, version), doc in self._documents.items()
        ]

    def names(self) -> builtins.list[str]:
        return sorted({name for name, _ in self._documents})

    def versions(self, name: str) -> builtins.list[str]:
        """The versions of ``name``, oldest first (numerically: "2" before "10");
        raises :class:`UnknownSchema` if there is none."""
        found = sorted(version for (each, version) in self._documents if each == name)
        if not found:
            raise self._unknown(name)
        return [str(version) for version in found]

    def latest(self, name: str) -> str:
        versions: builtins.list[str] = self.versions(name)
        return versions[-1]

    def __contains__(self, ref: object) -> bool:
        """``"case-record/1" in registry``."""
        try:
            self.parse_schema_ref(str(ref), require_version=True)
        except UnknownSchema:
            return False
        return True

    def document(self, name: str, version: Version) -> dict[str, Any]:
        """A copy of the schema document; raises :class:`UnknownSchema`."""
        return copy.deepcopy(self._document(name, version))

    def _key(self, name: str, version: Version) -> tuple[str, int]:
        text = str(version)
        if not text.isdigit() or str(int(text)) != text or (name, int(text)) not in self._documents:
            raise self._unknown(f"{name}/{version}")
        return name, int(text)

    def _document(self, name: str, version: Version) -> dict[str, Any]:
        return self._documents[self._key(name, version)]

    def by_id(self, uri: str) -> dict[str, Any]:
        """The (shared, do-not-modify) document whose ``$id`` is ``uri``; fragment ignored."""
        try:
            return self._by_id[uri.split("#", 1)[0]]
        except KeyError:
            raise self._unknown(uri) from None

    def parse_schema_ref(self, ref: str, *, require_version: bool = False) -> tuple[str, str]:
        """``"case-record/1"`` → ``("case-record", "1")``; ``"case-record"`` → its latest version
        (unless ``require_version``). Raises :class:`UnknownSchema` naming what exists."""
        match = _REF.match(ref.strip()) if isinstance(ref, str) else None
        if match is None:
            raise self._unknown(ref)
        name, version = match["name"], match["version"]
        if version is None:
            if require_version:
                raise UnknownSchema(
                    f"indique la versión del esquema, por ejemplo «{name}/1» "
                    f"(existen: {self._known()})",
                    f"give the schema version, for example '{name}/1' (known: {self._known()})",
                    ref=ref,
                )
            return name, self.latest(name)
        if (name, int(version)) not in self._documents:
            raise self._unknown(ref)
        return name, version

    def _known(self) -> str:
        return ", ".join(info.ref for info in self.list())

    def _unknown(self, ref: object) -> UnknownSchema:
        return UnknownSchema(
            f"esquema desconocido «{ref}»; los esquemas disponibles son: {self._known()}",
            f"unknown schema '{ref}'; the available schemas are: {self._known()}",
            ref=str(ref),
        )

    # -- compiled validators ------------------------------------------------------------------

    def validator(self, name: str, version: Version) -> Validator:
        """The compiled validator of ``name/version``, built on first use and then reused."""
        cached = self._validators.get((name, version))
        if cached is not None:
            return cached
        from schemas.validation import Validator

        key = self._key(name, version)
        with self._lock:
            cached = self._validators.get(key)
            if cached is None:
                cached = self._validators[key] = Validator(self._documents[key], self)
            self._validators[(name, version)] = cached
        return cached

    def compile(self, schema: Mapping[str, Any]) -> Validator:
        """A validator for a schema that is not a registered document (it may ``$ref`` them),
        cached by its ``$id``, which it must have."""
        from schemas.validation import Validator

        uri = schema["$id"]
        cached = self._compiled.get(uri)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._compiled.get(uri)
            if cached is None:
                cached = self._compiled[uri] = Validator(schema, self)
        return cached

    def definition_name(self, node: object) -> str | None:
        """``"date"`` when ``node`` is the ``$defs/date`` of a registered document."""
        return self._definition_names.get(id(node))

    def resolve(self, uri: str) -> Any:
        """The schema node an absolute URI with a JSON-pointer fragment names."""
        return resolve_uri(self.by_id, uri)

    # -- field map ----------------------------------------------------------------------------

    def fields(self, name: str, version: Version) -> Mapping[str, FieldInfo]:
        """Every field of ``name/version`` by pointer template, in document order (see
        :mod:`schemas.fields`)."""
        key = self._key(name, version)
        found = self._fields.get(key)
        if found is None:
            found = self._fields[key] = collect_fields(self._document(*key), self.by_id)
        return found

    def leaf_categories(self, name: str, version: Version) -> dict[str, str]:
        """Pointer template of every leaf (``"/child/names/given_names"``,
        ``"/child/nationality/*"``) → its ``x-category``. See :mod:`schemas.fields`."""
        return {
            pointer: info.category
            for pointer, info in sorted(self.fields(name, version).items())
            if info.leaf and info.category is not None
        }

    categories = leaf_categories

    def value_categories(self, name: str, version: Version) -> dict[str, dict[str, str]]:
        """Codes that say more than their field's category, from the document's
        ``x-value-categories``: pointer template of a leaf → code → the category that must
        also be permitted to disclose the object holding it (an identifier of type
        ``comar_case`` tells legal status; see :func:`consent.redact`). Each pointer must
        be a leaf of the document, with codes its field allows."""
        stated = self._document(name, version).get("x-value-categories") or {}
        fields = self.fields(name, version)
        found: dict[str, dict[str, str]] = {}
        for pointer, by_value in stated.items():
            if pointer == "$comment":
                continue
            info = fields.get(pointer)
            if info is None or not info.leaf:
                raise ValueError(f"{name}/{version}: x-value-categories names {pointer!r}, no leaf")
            unknown = set(by_value) - set(info.labels)
            if info.labels and unknown:
                raise ValueError(f"{name}/{version}: {pointer!r} has no codes {sorted(unknown)}")
            found[pointer] = dict(by_value)
        return found

    # -- shipped examples ---------------------------------------------------------------------

    def example_paths(
        self, name: str, version: Version, kind: str = "valid"
    ) -> builtins.list[Path]:
        """The shipped example files for ``name/version`` (``kind`` is valid or invalid)."""
        self._document(name, version)
        return sorted((EXAMPLES_DIR / name / str(version) / kind).glob("*.json"))


def _name_version_of(document: Mapping[str, Any]) -> tuple[str, int]:
    uri = document.get("$id")
    if not isinstance(uri, str) or not uri.startswith(ID_PREFIX):
        raise ValueError(f"schema $id must start with {ID_PREFIX}: {uri!r}")
    name, _, version = uri[len(ID_PREFIX) :].partition("/")
    if not _NAME.match(name) or not version.isdigit():
        raise ValueError(f"schema $id must be {ID_PREFIX}<name>/<version>: {uri!r}")
    return name, int(version)


def without_dialect(document: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy without ``$schema`` (the nodes inside stay the same objects)."""
    return {key: value for key, value in document.items() if key != "$schema"}


def _formats_used(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            if isinstance(item.get("format"), str):
                found.add(item["format"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _title(document: Mapping[str, Any], name: str) -> dict[str, str]:
    title = document.get("x-title")
    if isinstance(title, Mapping):
        return {"es": str(title.get("es", name)), "en": str(title.get("en", name))}
    text = str(document.get("title", name))
    return {"es": text, "en": text}


@functools.cache
def shipped_document(name: str, version: int) -> dict[str, Any]:
    """One shipped document as written, read from its file alone (no other document loaded,
    nothing resolved or compiled): for code lists the hub needs when its modules load."""
    path = DOCUMENTS_DIR / name / f"{version}.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@functools.cache
def default_registry() -> SchemaRegistry:
    """The registry of the shipped documents, loaded once per process."""
    return SchemaRegistry.load()
