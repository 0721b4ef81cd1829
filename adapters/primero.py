"""Primero v2 cases, as ``GET /api/v2/cases`` returns them (``{"data": [...], "metadata"}``).

:class:`PrimeroAdapter` reads the ``data`` array case by case (see :mod:`adapters.json_array`:
one case in memory at a time, whatever the size of the export) and turns each case into a
``case-record/1`` push envelope (the mapping is in :mod:`adapters.primero_decode`, the codes
in :mod:`adapters.primero_codes`). Positions are ``data[0]``, ``data[1]``… as in the file.
The single-case answer of ``GET /api/v2/cases/:id`` (``{"data": {...}}``) is read too, as
position ``data``.

A case with an unknown code, a bad date, or data the schema rejects is rejected with every
reason. A case with fields Puente does not know is **imported without them**: each unknown
field is a warning (:attr:`adapters.items.WarnedItem.warnings`, pointer ``field:<name>``),
so the import summary can list them. Every Primero instance adds fields of its own; rejecting
cases for that would reject whole exports, and an unknown field is not a wrong value. A case
where Primero records a refusal (``disclosure_other_orgs`` or ``consent_for_services``
false) is imported with an **action** (:attr:`adapters.items.WarnedItem.actions`): the
summary names it, so the office records the refusal in Puente as a deny consent.

A file that is not a Primero export at all is one :class:`~adapters.base.FileProblem`; so is
JSON that breaks off (``data[7]``: the cases before it were read). An empty file or ``{"data":
[]}`` holds no cases.

``encode`` writes ``{"data": [...], "metadata": {"total": n}}`` — the same shape, so a file
written by Puente can be read back by this adapter, and each case can be posted to Primero's
``POST /api/v2/cases`` as ``{"data": case}``. ``write_rejects`` writes the rejected cases as
they came, each with an ``errors`` member (each error with the case's position), in the same
shape; that member is ignored when the fixed file is imported again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from adapters.base import FileProblem, Item, Problem, problems_as_json
from adapters.csv_adapter_coverage import parts_lacking
from adapters.envelopes import data_validator, envelope
from adapters.errors import AdapterError, MappingError
from adapters.items import WarnedItem
from adapters.json_array import ArrayReader, JsonStreamError
from adapters.primero_decode import DecodedCase, decode_case
from adapters.primero_encode import encode_case
from adapters.primero_fields import CodeBook
from adapters.primero_required import naming_primero_fields
from schemas.fields import FieldInfo
from schemas.registry import SchemaRegistry, default_registry

SCHEMA = "case-record/1"
REJECTS_MEMBER = "errors"


def load_codes(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """A code-table file (JSON or YAML): ``{table: {primero_code: shared_code}}``, tables
    named by Primero field (``nationality``, ``care_arrangements_type``…) or ``agency`` and
    ``location_current``. Raises :class:`~adapters.errors.MappingError` saying where."""
    where = str(path)
    if not Path(path).is_file():
        raise MappingError(
            where,
            "no existe ese archivo: --mapping de primero es una tabla de códigos "
            "({tabla: {código de Primero: código compartido}}), no una correspondencia de "
            "columnas",
            "there is no such file: --mapping of primero is a code table ({table: {Primero "
            "code: shared code}}), not a column mapping",
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
        loaded = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise MappingError(
            where, f"no se puede leer la tabla de códigos: {error}", f"cannot read: {error}"
        ) from error
    return check_codes(loaded, where)


def check_codes(loaded: Any, where: str = "codes") -> dict[str, dict[str, str]]:
    """``loaded`` as code tables, or :class:`~adapters.errors.MappingError`."""
    if not isinstance(loaded, Mapping):
        raise MappingError(
            where,
            "debe ser un objeto {tabla: {código Primero: código compartido}}",
            "must be an object {table: {Primero code: shared code}}",
        )
    tables: dict[str, dict[str, str]] = {}
    for table, entries in loaded.items():
        if not isinstance(entries, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            raise MappingError(
                f"{where}: {table}",
                "cada tabla debe asociar códigos de texto con códigos de texto",
                "each table must map text codes to text codes",
            )
        tables[str(table)] = dict(entries)
    return tables


class PrimeroAdapter:
    """Primero API v2 case JSON ⇄ ``case-record/1``.

    ``codes`` (or a ``mapping`` file, see :func:`load_codes`) adds the deployment's own codes:
    its agencies (``{"agency": {"dif-tapachula": "mx.chp.tapachula.dif"}}``), its locations
    (``{"location_current": {"TAP": "07089"}}``) and any option it renamed or added.
    """

    name = "primero"
    media_types = ("application/json",)
    #: Its items can be handed to another process (exchange.decode_process).
    picklable_items = True

    def __init__(
        self,
        *,
        codes: Mapping[str, Mapping[str, str]] | None = None,
        mapping: str | os.PathLike[str] | None = None,
        registry: SchemaRegistry | None = None,
    ) -> None:
        tables = dict(check_codes(codes)) if codes is not None else {}
        if mapping is not None:
            tables.update(load_codes(mapping))
        self.registry = registry or default_registry()
        self.book = CodeBook(self.registry, tables)
        self._validator = data_validator(SCHEMA, self.registry)

    # -- reading -------------------------------------------------------------------------

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        reader = ArrayReader(stream, "data")
        index = 0  # the element being read, for the position of a break in the JSON
        try:
            for index, case in reader:
                yield self.decode_case(case, "data" if reader.single else f"data[{index}]")
                index += 1
        except JsonStreamError as error:
            if reader.found:
                yield FileProblem(f"data[{index}]", problems=(_stream_problem(error, index),))
            else:
                yield FileProblem("data", problems=(_not_primero(error),))
            return
        if not reader.found and not reader.blank:
            yield FileProblem(
                "data",
                problems=(
                    Problem(
                        "field:data",
                        "no es una exportación de Primero: falta el arreglo «data» de casos",
                        "not a Primero export: the 'data' array of cases is missing",
                    ),
                ),
            )

    def decode_case(self, case: Any, position: str) -> WarnedItem:
        """One case (an element of ``data``) as an item at ``position``."""
        if isinstance(case, Mapping) and REJECTS_MEMBER in case:
            case = {key: value for key, value in case.items() if key != REJECTS_MEMBER}
        decoded: DecodedCase = decode_case(case, self.book)
        problems = list(decoded.problems)
        if isinstance(case, Mapping) and not self._validator.is_valid(decoded.data):
            # (Not a case at all: its one reason is enough.) A required field left out is
            # said with the Primero fields that give it.
            problems.extend(
                naming_primero_fields(
                    self._validator.errors(decoded.data), decoded.data, self._fields()
                )
            )
        warnings = tuple(decoded.warnings)
        actions = tuple(decoded.actions)
        # A case that is not an object keeps its position in the rejects file (see _rejected).
        source = case if isinstance(case, Mapping) else NotACase(case)
        if problems or decoded.local_id is None:
            return WarnedItem(
                position,
                problems=tuple(problems),
                source=source,
                local_id=decoded.local_id,
                warnings=warnings,
                actions=actions,
            )
        return WarnedItem(
            position,
            document=envelope(SCHEMA, decoded.local_id, decoded.data),
            source=source,
            local_id=decoded.local_id,
            warnings=warnings,
            actions=actions,
        )

    def _fields(self) -> Mapping[str, FieldInfo]:
        return self.registry.fields(*self.registry.parse_schema_ref(SCHEMA))

    # -- writing -------------------------------------------------------------------------

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        """Case-record envelopes as a Primero export; any other schema is an error."""
        total = _write_data(out, (self._encoded(document) for document in documents))
        out.write(b',"metadata":' + _dumps({"total": total, "per": total, "page": 1}) + b"}\n")

    def _encoded(self, document: Mapping[str, Any]) -> dict[str, Any]:
        if document.get("schema") != SCHEMA:
            raise AdapterError(
                f"el adaptador primero solo escribe documentos {SCHEMA}, "
                f"no «{document.get('schema')}»",
                f"the primero adapter writes only {SCHEMA} documents, "
                f"not '{document.get('schema')}'",
            )
        return encode_case(document, self.book)

    def uncarried(self, data: Mapping[str, Any]) -> set[str]:
        """The parts of a record's ``data`` that a case written by :meth:`encode` does not
        give back once imported again (:class:`~adapters.base.PartialFormat`): the case is
        written and read back as an import reads it, and the two compared — so the list
        follows the mapping as it is, and names what the hub's ``lost_parts`` would. A case
        an import would reject replaces nothing: nothing is lost by it."""
        written = encode_case({"schema": SCHEMA, "local_id": "-", "data": data}, self.book)
        read = self.decode_case(written, "data")
        if read.document is None:
            return set()
        return parts_lacking(data, read.document["data"])

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None:
        """The rejected cases as they came, each with an ``errors`` member (each error with
        the case's position, ``data[3]``); nothing at all when there are none. Problems of
        the file as a whole (the export breaks off at ``data[7]``) go in ``metadata.errors``,
        which is ignored when the fixed file is imported again."""
        file_problems: list[dict[str, str]] = []

        def cases() -> Iterator[dict[str, Any]]:
            for item in items:
                if isinstance(item, FileProblem):
                    file_problems.extend(problems_as_json(item.problems, item.position))
                else:
                    yield _rejected(item)

        rejected = cases()
        first = next(rejected, None)
        if first is None:
            return
        total = _write_data(out, _chain(first, rejected))
        metadata: dict[str, Any] = {"total": total}
        if file_problems:
            metadata[REJECTS_MEMBER] = file_problems
        out.write(b',"metadata":' + _dumps(metadata) + b"}\n")


class NotACase:
    """An element of ``data`` that is not a case (not a JSON object), as it came."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _write_data(out: IO[bytes], cases: Iterable[Mapping[str, Any]]) -> int:
    """``{"data": [`` and the cases one per line; returns how many (the object is left open)."""
    out.write(b'{"data":[')
    count = 0
    for case in cases:
        out.write((b",\n" if count else b"\n") + _dumps(case))
        count += 1
    out.write(b"\n]" if count else b"]")
    return count


def _rejected(item: Item) -> dict[str, Any]:
    errors = problems_as_json(item.problems, item.position)
    if isinstance(item.source, Mapping):
        return {**item.source, REJECTS_MEMBER: errors}
    original = item.source.value if isinstance(item.source, NotACase) else item.source
    return {"position": item.position, "original": original, REJECTS_MEMBER: errors}


def _stream_problem(error: JsonStreamError, index: int) -> Problem:
    if index == 0:
        return Problem(
            "",
            f"{error.es} (carácter {error.offset}), en el primer caso",
            f"{error.en} (character {error.offset}), in the first case",
        )
    return Problem(
        "",
        f"{error.es} (carácter {error.offset}); los casos anteriores ({index}) se leyeron, este "
        "y los siguientes no: corrija el archivo e impórtelo de nuevo (nada se duplica)",
        f"{error.en} (character {error.offset}); the cases before it ({index}) were read, this "
        "one and those after it were not: fix the file and import it again (nothing is "
        "stored twice)",
    )


def _not_primero(error: JsonStreamError) -> Problem:
    return Problem(
        "",
        f'no es una exportación de Primero ({{"data": [...]}}): {error.es} '
        f"(carácter {error.offset})",
        f'not a Primero export ({{"data": [...]}}): {error.en} (character {error.offset})',
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
