"""Large inputs made on the fly, for the streaming and speed checks.

:class:`GeneratedStream` is a binary stream whose bytes are produced as they are read, so a
test can feed an adapter hundreds of thousands of rows without the input ever being in memory
(the point of the bounded-memory check). :func:`dif_rows` writes rows of the shipped
``dif-estatal`` mapping, varied by their number, every one of them valid.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

DIF_HEADER = (
    "folio,fecha_registro,estatus,canalizado_por,nombre(s),primer_apellido,segundo_apellido,"
    "sexo,fecha_nacimiento,nacionalidad,pais_nacimiento,lengua,curp,folio_inm,no_acompanado,"
    "fecha_ingreso_mexico,tipo_cuidado,entidad,municipio,localidad,nivel_riesgo,"
    "requiere_atencion_medica,inscrito_escuela,observaciones,"
    "albergue_1_tipo,albergue_1_nombre,albergue_1_fecha_ingreso,albergue_1_fecha_egreso,"
    "albergue_1_motivo_ingreso,albergue_2_tipo,albergue_2_nombre,albergue_2_fecha_ingreso,"
    "albergue_2_motivo_ingreso\n"
)
_GIVEN = ["Kevin Josué", "María José", "Wilner", "Yorgelis Andreína", "Brayan", "Dayana"]
_SURNAMES = ["Ejemplo", "Muestra", "Ficticio", "Prueba", "Núñez", "Pérez"]
_NATIONALITY = ["Hondureño", "Guatemalteca", "Haitiana", "Venezolana", "Salvadoreño", "Cubana"]
_COUNTRY = ["Honduras", "Guatemala", "Haití", "Venezuela", "El Salvador", "Cuba"]
_LANGUAGE = ["Español", "Español, Mam", "Criollo haitiano, Francés", "Español", "Español", "Mam"]
_STATE = ["Chiapas", "Tabasco", "Oaxaca", "Veracruz", "Baja California", "Chihuahua"]
_MUNICIPALITY = ["07089", "27004", "20067", "30193", "02004", "08037"]
_SHELTER = ["Albergue de tránsito", "CAS DIF", "Puertas abiertas", "Familia de acogida"]


def dif_row(number: int) -> str:
    """Data row ``number`` (1-based) of a generated DIF export; valid against the mapping."""
    k = number % 6
    day, month, year = 1 + number % 28, 1 + number % 12, 2006 + number % 12
    curp = f"EEFK{year % 100:02d}{month:02d}{day:02d}HNEJCVA{number % 10}"
    second = (
        f"Puertas abiertas,Casa Ejemplo {k} A.C.,{day:02d}/{month:02d}/2024,Medida de protección"
        if number % 3 == 0
        else ",,,"
    )
    return (
        f"DIF-{number:07d},{day:02d}/{month:02d}/2024,Abierto,INM,{_GIVEN[k]},{_SURNAMES[k]},"
        f"{_SURNAMES[(k + 1) % 6]},{'H' if number % 2 else 'M'},{day:02d}/{month:02d}/{year},"
        f'{_NATIONALITY[k]},{_COUNTRY[k]},"{_LANGUAGE[k]}",{curp},INM-{number:08d},'
        f"{'Sí' if number % 4 else 'No'},{month:02d}/2023,Albergue,{_STATE[k]},"
        f"{_MUNICIPALITY[k]},Localidad {k},Alto,No,Sí,Caso ficticio número {number}.,"
        f"{_SHELTER[k % 4]},Albergue {k} (ficticio),{day:02d}/{month:02d}/2024,,"
        f"Canalización INM,{second}\n"
    )


def envelope_line(number: int) -> str:
    """Line ``number`` of a generated NDJSON push file; valid."""
    document = {
        "schema": "case-record/1",
        "local_id": f"L-{number:07d}",
        "data": {
            "case": {"status": "open", "case_number": f"C-{number}"},
            "child": {
                "names": {"given_names": _GIVEN[number % 6], "first_surname": "Ejemplo"},
                "date_of_birth": f"{2006 + number % 12}-0{1 + number % 9}-1{number % 10}",
                "nationality": ["HN"],
            },
        },
    }
    return json.dumps(document, ensure_ascii=False) + "\n"


class GeneratedStream(io.RawIOBase):
    """A read-only binary stream of ``header`` then ``line(1)`` … ``line(count)``, encoded as
    it is read: never more than one ``read`` worth of it exists at a time."""

    def __init__(
        self, header: str, line: Callable[[int], str], count: int, encoding: str = "utf-8"
    ) -> None:
        self._pieces: Iterator[bytes] = (
            piece.encode(encoding)
            for piece in _chain(header, (line(n) for n in range(1, count + 1)))
        )
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            rest, self._buffer = self._buffer + b"".join(self._pieces), b""
            return rest
        pieces, held = [self._buffer], len(self._buffer)
        while held < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            pieces.append(piece)
            held += len(piece)
        joined = b"".join(pieces)
        chunk, self._buffer = joined[:size], joined[size:]
        return chunk

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest
