"""Large inputs made on the fly, for the streaming and speed checks.

:class:`GeneratedStream` (from :mod:`adapters.conformance`) is a binary stream whose bytes are
produced as they are read, so a test can feed an adapter hundreds of thousands of rows without
the input ever being in memory (the point of the bounded-memory check). :func:`dif_row` writes
rows of the shipped ``dif-estatal`` mapping, varied by their number, every one of them valid.
"""

from __future__ import annotations

import json

from adapters.conformance import GeneratedStream

__all__ = ["DIF_HEADER", "GeneratedStream", "dif_row", "envelope_line"]

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
