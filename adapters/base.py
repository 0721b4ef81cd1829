"""The interface every format adapter implements, and what it yields.

An adapter turns an agency's own format (a spreadsheet, a Primero export, a FHIR Bundle) into
shared documents and back. It never talks to the hub: it reads a byte stream and yields, for
each position in the input (a line, a row, a case, a Bundle entry), either one shared document
or the reasons that position could not become one. The caller decides what to do with both:
``puente import`` pushes the documents and writes the failures to a rejects file.

Adapters depend only on :mod:`schemas` (enforced by ``tests/unit/test_import_direction.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Problem:
    """Why one position of the input could not become a shared document.

    ``pointer`` is a JSON pointer into the shared document when the fault is in a value
    (``/child/date_of_birth``), or names the source field (``column:fecha_nacimiento``,
    ``field:nationality``, ``resource:Observation``) when it is not. Messages are Spanish and
    English, like every message a person reads.
    """

    pointer: str
    es: str
    en: str

    def to_json(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message_es": self.es, "message_en": self.en}


@dataclass(frozen=True)
class Item:
    """One position of the input: a shared document, or the problems that stopped it.

    ``position`` is what a person finds the input by: the 1-based line of an NDJSON file, the
    row of a CSV file as a spreadsheet program numbers it (the header is row 1, the first
    data row row 2), ``data[3]`` in a Primero export, ``entry[5]`` in a FHIR Bundle.
    ``document`` is a push envelope (``{"schema", "local_id", "data"}``) as ``POST /v1/records``
    takes it, a mapping (not its JSON text). ``problems`` is a tuple of :class:`Problem` (a
    list is taken as one); an item with neither a document nor problems is rejected all the
    same, with a reason saying the adapter gave none. ``source`` is the original piece of
    input (the raw CSV row as a mapping of column to text, the raw line, the Primero case) so
    a rejects file can be written in the original format.

    ``local_id`` is what people know the position by, shown beside its position in the
    summary. The hub stores a document under the document's own ``local_id``, and so does
    ``puente import`` when it tells versions of one record apart from another child's rows:
    an adapter whose ``local_id`` is a label of its own (a display folio, where the envelope
    carries the system's id) loses nothing by it. For a position without a document it is
    the only id there is: give the one the document would have carried.

    ``puente import`` checks the types of every item (:func:`contract_breach`); one that
    breaks this contract stops the import as an adapter that raised does.
    """

    position: str
    document: Mapping[str, Any] | None = None
    problems: tuple[Problem, ...] = ()
    source: Any = None
    local_id: str | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.document is not None and not self.problems


@dataclass(frozen=True)
class FileProblem(Item):
    """A problem of the input as a whole, not of one of its records: a required CSV column
    that is missing, a file that is not in the adapter's format at all (an Excel workbook
    given to the CSV adapter), JSON that breaks off. ``position`` says where it was found
    (``1`` for a CSV header, ``data[7]`` where a Primero export breaks off).

    It is not a record: ``puente import`` does not count it as read, prints its reasons, and
    when the adapter yields nothing but file problems, stops as unable to start and writes no
    rejects file (so it never writes over a rejects file the office may be fixing). An
    adapter stops reading after a file problem when nothing after it could be read.
    """

    def __post_init__(self) -> None:
        if self.document is not None or self.source is not None:
            raise ValueError("a FileProblem carries no document and no source")


@runtime_checkable
class Adapter(Protocol):
    """A format adapter.

    ``decode`` must stream: it reads the input incrementally and yields items as it goes, so
    memory stays bounded for a file of any size. ``encode`` writes shared documents (push
    envelopes) in the adapter's format to ``out`` (a binary stream).

    Optional: a class attribute ``picklable_items = True`` says every item ``decode`` yields
    (its document, problems and ``source``) can be pickled; ``puente import`` then decodes
    in a second process while it stores (on Linux), which is faster on a machine with more
    than one core. Without it, decoding happens in the importing process. An adapter whose
    rejects writer needs what decoding found (a CSV file's delimiter and encoding) also has
    ``decoding_state()`` (a picklable value) and ``adopt_decoding_state(state)``: the
    importing process adopts the decoding process's state with each chunk of items.
    """

    name: str
    media_types: tuple[str, ...]

    def decode(self, stream: IO[bytes]) -> Iterator[Item]: ...

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None: ...


@runtime_checkable
class RejectsWriter(Protocol):
    """An adapter that can write rejected items back in its own format.

    ``puente import`` gives an office a rejects file it can open in the tool it already uses,
    fix and send again: the original row, line, case or entry of each rejected item, plus the
    reasons (a ``errores/errors`` column in a spreadsheet, an ``errors`` member in JSON).
    ``items`` are items this adapter yielded from ``decode`` (their ``source`` is what gets
    written back); they are consumed lazily, so the caller may pass a generator that runs
    alongside the import. Nothing is written when ``items`` is empty. A :class:`FileProblem`
    (a problem of the file as a whole) has no ``source``: a writer may add its reasons to the
    file (an ``OperationOutcome`` in a FHIR Bundle, the ``metadata`` of a Primero export) or
    leave it out; ``puente import`` prints it either way.

    Optional: check with ``isinstance(adapter, RejectsWriter)``; every built-in adapter is one.
    """

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None: ...


@runtime_checkable
class PartialFormat(Protocol):
    """An adapter whose format holds only part of a shared record (Primero's fields).

    ``uncarried(data)`` names the parts of a record's ``data`` that a file written by its
    ``encode`` would not give back once imported again, by pointer template as the hub's
    ``lost_parts`` names them (``/health``, ``/placements/*/reason``: the outermost of each
    part, ``*`` for a list's index); nothing for a record it carries whole. ``puente export``
    asks it of every record written, and says on its error stream, and in ``--json``'s
    ``without_columns``, which parts of how many records the file lacks: imported back, it
    would store versions of those records without them. A spreadsheet's mapping is asked the
    same through :func:`adapters.csv_adapter_coverage.uncarried_of`.

    Optional: check with ``isinstance(adapter, PartialFormat)``.
    """

    def uncarried(self, data: Mapping[str, Any]) -> Iterable[str]: ...


def problems_as_json(
    problems: Iterable[Problem], position: str | None = None
) -> list[dict[str, str]]:
    """The ``errors`` member of a JSON rejects line: ``[{pointer, message_es, message_en}]``,
    each with the ``position`` of the item in the input when one is given (the line, the
    ``data[N]``), so a person finds the original from the rejects file."""
    if position is None:
        return [problem.to_json() for problem in problems]
    return [{"position": position, **problem.to_json()} for problem in problems]


def problems_as_text(problems: Iterable[Problem]) -> str:
    """One cell of a spreadsheet rejects file: ``es / en`` for each problem, after its JSON
    pointer when it has one (a ``column:`` problem names its column in the message), joined by
    `` | `` so a person reads every reason in one cell."""
    return " | ".join(
        f"{p.pointer}: {p.es} / {p.en}" if p.pointer.startswith("/") else f"{p.es} / {p.en}"
        for p in problems
    )


def contract_breach(item: object) -> tuple[str, str] | None:
    """What makes ``item``, something an adapter's ``decode`` yielded, no :class:`Item` as
    described there, in Spanish and English; None when it is one.

    Only the types are looked at, a few ``isinstance`` calls: ``puente import`` asks it of
    every item, and whether a document is a valid envelope is the hub's to say.
    """
    if not isinstance(item, Item):
        return (
            f"decode debe entregar adapters.base.Item, no {_kind(item)}",
            f"decode must yield adapters.base.Item, not {_kind(item)}",
        )
    if not isinstance(item.position, str):
        return (
            f"position debe ser texto (str, como '2' o 'data[3]'), no {_kind(item.position)}",
            f"position must be text (a str, such as '2' or 'data[3]'), not {_kind(item.position)}",
        )
    document = item.document
    if document is not None and type(document) is not dict and not isinstance(document, Mapping):
        return (
            "document debe ser el envío como objeto (un Mapping {schema, local_id, data}) o "
            f"None, no {_kind(document)}",
            "document must be the envelope as an object (a Mapping {schema, local_id, data}) "
            f"or None, not {_kind(document)}",
        )
    problems = item.problems
    if not isinstance(problems, tuple | list):
        return (
            f"problems debe ser una tupla de adapters.base.Problem, no {_kind(problems)}",
            f"problems must be a tuple of adapters.base.Problem, not {_kind(problems)}",
        )
    for index, problem in enumerate(problems):
        if not isinstance(problem, Problem):
            return (
                f"problems[{index}] debe ser adapters.base.Problem, no {_kind(problem)}",
                f"problems[{index}] must be an adapters.base.Problem, not {_kind(problem)}",
            )
    if item.local_id is not None and not isinstance(item.local_id, str):
        return (
            f"local_id debe ser texto (str) o None, no {_kind(item.local_id)}",
            f"local_id must be text (a str) or None, not {_kind(item.local_id)}",
        )
    return None


def _kind(value: object) -> str:
    """A value's type, and the value itself only for a number (``int 7``): a document or a
    source holds a child's data, which an error message must not repeat."""
    if isinstance(value, int | float):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__
