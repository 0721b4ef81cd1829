"""An example adapter a state agency could write for its own system: a text export with one
child per line, ``folio|given names|surname|dd/mm/yyyy|nationality code``.

It satisfies :class:`adapters.base.Adapter` and :class:`adapters.base.RejectsWriter` without
importing anything from Puente but the value types; the registry finds it through the
``puente.adapters`` entry point. test_pipe_list.py, beside this folder, runs Puente's
conformance checks on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, ClassVar

from adapters.base import Item, Problem, problems_as_text
from adapters.envelopes import check_data, data_validator

SCHEMA = "case-record/1"
#: Starts the line of reasons write_rejects puts before each rejected line.
REASONS = "# "


class PipeListAdapter:
    """One child per line: folio|given names|surname|dd/mm/yyyy|nationality."""

    name = "pipe-list"
    media_types = ("text/plain",)
    description: ClassVar[Mapping[str, str]] = {
        "es": "Lista de texto de ejemplo: folio|nombre|apellido|dd/mm/aaaa|país",
        "en": "Example text list: folio|given names|surname|dd/mm/yyyy|country",
    }

    def __init__(self, *, state: str = "open") -> None:
        self.state = state
        self.validator = data_validator(SCHEMA)

    def decode(self, stream: IO[bytes]) -> Iterator[Item]:
        for number, raw in enumerate(stream, start=1):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")  # never raise for a line
            if not line or line.startswith(REASONS):  # a rejects file's reasons: not data
                continue
            fields = line.split("|")
            if len(fields) != 5:
                problem = Problem(
                    "",
                    f"se esperaban 5 campos y hay {len(fields)}",
                    f"expected 5 fields, found {len(fields)}",
                )
                yield Item(str(number), problems=(problem,), source=line)
                continue
            folio, given, surname, born, country = fields
            day, month, year = [*born.split("/"), "", ""][:3]
            data = {
                "case": {"status": self.state, "case_number": folio},
                "child": {
                    "names": {"given_names": given, "first_surname": surname},
                    "date_of_birth": f"{year}-{month}-{day}",
                    "nationality": [country],
                },
            }
            problems = check_data(self.validator, data)
            document = {"schema": SCHEMA, "local_id": folio, "data": data}
            yield Item(
                str(number),
                document=None if problems else document,
                problems=problems,
                source=line,
                local_id=folio,
            )

    def encode(self, documents: Iterable[Mapping[str, Any]], out: IO[bytes]) -> None:
        for document in documents:
            child = document["data"]["child"]
            year, month, day = child["date_of_birth"].split("-")
            fields = [
                document["local_id"],
                child["names"]["given_names"],
                child["names"].get("first_surname", ""),
                f"{day}/{month}/{year}",
                child["nationality"][0],
            ]
            out.write(("|".join(fields) + "\n").encode("utf-8"))

    def write_rejects(self, items: Iterable[Item], out: IO[bytes]) -> None:
        """Each rejected line as it came, after a line with its reasons, which decode skips:
        the office fixes the lines in any text editor and imports the file as it is."""
        for item in items:
            if item.source is None:  # a problem of the whole file: puente import prints it
                continue
            reasons = " ".join(problems_as_text(item.problems).split())  # on one line
            out.write(f"{REASONS}{item.position}: {reasons}\n{item.source}\n".encode())
