"""CSV import end to end: ``puente import`` of a realistic DIF spreadsheet into a fresh SQLite hub.

Generates ``--rows`` rows (100,000 by default) of the state DIF case spreadsheet the shipped
mapping ``adapters/mappings/dif-estatal.yaml`` reads — every column of the mapping, Spanish
headers, dd/mm/yyyy dates, up to three shelters per child, about 1 % of rows with the mistakes
offices make (31/02/2015, an unknown nationality, a sex code nobody mapped) — then:

1. ``puente init`` and ``puente agency add`` on a temporary instance folder (SQLite);
2. ``puente import --adapter csv --mapping dif-estatal FILE --agency mx.chp.dif --json`` in
   direct mode, as a child process: wall time, rows/s, CPU time
   (``getrusage(RUSAGE_CHILDREN)``: the import and the process it decodes the file in), each
   process's peak RSS and the peak of their PSS together (pages they share counted once);
3. the same file imported again (every row answered ``unchanged``: nothing stored twice);
4. where the time goes, in this process: decoding alone (the adapter reading, mapping and
   validating every row) and the import engine with a sink that stores nothing, so that
   push = end to end − decode.

    .venv/bin/python bench/import.py                      # 100,000 rows
    .venv/bin/python bench/import.py --rows 20000 --keep /tmp/import-bench
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PUENTE = [sys.executable, "-m", "exchange.cli"]
AGENCY = "mx.chp.dif"

HEADER = [
    "folio", "fecha_registro", "estatus", "canalizado_por", "nombre(s)", "primer_apellido",
    "segundo_apellido", "alias", "sexo", "fecha_nacimiento", "edad_estimada", "nacionalidad",
    "pais_nacimiento", "lengua", "requiere_interprete", "curp", "folio_inm", "expediente_comar",
    "no_acompanado", "fecha_ingreso_mexico", "tipo_cuidado", "entidad", "municipio",
    "localidad", "nivel_riesgo", "requiere_atencion_medica", "embarazo", "inscrito_escuela",
    "observaciones",
    *(
        f"albergue_{n}_{column}"
        for n in (1, 2, 3)
        for column in (
            "tipo", "nombre", "clave", "fecha_ingreso", "fecha_egreso", "motivo_ingreso",
            "motivo_egreso",
        )
    ),
]  # fmt: skip

GIVEN_F = ["María José", "Yorgelis Andreína", "Dayana", "Ana Lucía", "Keila", "Wislande"]
GIVEN_M = ["Kevin Josué", "Brayan", "Wilner", "José Luis", "Anderson", "Jean Pierre"]
SURNAMES = ["Ejemplo", "Muestra", "Ficticio", "Prueba", "Núñez", "Pérez", "López", "Cruz"]
ORIGINS = [  # nationality as offices write it, country of birth, languages, weight
    ("Hondureño", "Honduras", "Español", 30),
    ("Guatemalteca", "Guatemala", "Español, Mam", 20),
    ("Salvadoreño", "El Salvador", "Español", 12),
    ("Venezolana", "Venezuela", "Español", 14),
    ("Haitiana", "Haití", "Criollo haitiano, Francés", 12),
    ("Cubano", "Cuba", "Español", 5),
    ("Colombiana", "Colombia", "Español", 4),
    ("Nicaragüense", "Nicaragua", "Español, Miskito", 3),
]
PLACES = [  # state, INEGI municipality, locality
    ("Chiapas", "07089", "Tapachula de Córdova y Ordóñez"),
    ("Chiapas", "07101", "Tuxtla Gutiérrez"),
    ("Tabasco", "27004", "Villahermosa"),
    ("Oaxaca", "20043", "Juchitán de Zaragoza"),
    ("Veracruz", "30193", "Veracruz"),
    ("Nuevo León", "19039", "Monterrey"),
    ("Baja California", "02004", "Tijuana"),
    ("Chihuahua", "08037", "Ciudad Juárez"),
]
SHELTERS = [
    ("Albergue de tránsito", "Albergue temporal DIF {} (ficticio)"),
    ("CAS DIF", "CAS DIF {} (ficticio)"),
    ("Puertas abiertas", "Casa Ejemplo {} A.C."),
    ("Familia de acogida", "Familia de acogida temporal {}"),
]
STATUSES = ["Abierto", "Activo", "En seguimiento", "En traslado"]  # closed ones need a closure
CHANNELS = ["INM", "COMAR", "DIF", "OSC", "Albergue", "Consulado", "Por su cuenta"]
MISTAKES = [
    ("fecha_nacimiento", "31/02/2015"),
    ("nacionalidad", "Marciana"),
    ("sexo", "Z"),
    ("fecha_registro", "2024-13-45"),
]


def _date(rng: random.Random, first: int, last: int) -> tuple[int, int, int]:
    return rng.randint(1, 28), rng.randint(1, 12), rng.randint(first, last)


def dif_row(number: int, rng: random.Random) -> dict[str, str]:
    """Row ``number`` of a DIF export: varied, fictitious, valid unless a mistake is drawn."""
    female = rng.random() < 0.48
    nationality, country, languages = rng.choices(
        [o[:3] for o in ORIGINS], weights=[o[3] for o in ORIGINS]
    )[0]
    state, municipality, locality = rng.choice(PLACES)
    day, month, year = _date(rng, 2006, 2023)
    opened = _date(rng, 2023, 2025)
    row = dict.fromkeys(HEADER, "")
    row.update(
        {
            "folio": f"DIF-{municipality[:2]}-{opened[2]}-{number:07d}",
            "fecha_registro": f"{opened[0]:02d}/{opened[1]:02d}/{opened[2]}",
            "estatus": rng.choice(STATUSES),
            "canalizado_por": rng.choice(CHANNELS),
            "nombre(s)": rng.choice(GIVEN_F if female else GIVEN_M),
            "primer_apellido": rng.choice(SURNAMES),
            "segundo_apellido": rng.choice(SURNAMES) if rng.random() < 0.7 else "",
            "sexo": rng.choice(["M", "Mujer", "Niña"] if female else ["H", "Hombre", "Niño"]),
            "fecha_nacimiento": f"{day:02d}/{month:02d}/{year}",
            "nacionalidad": nationality,
            "pais_nacimiento": country,
            "lengua": languages,
            "requiere_interprete": "Sí" if "Criollo" in languages or "Mam" in languages else "No",
            "curp": f"EEFK{year % 100:02d}{month:02d}{day:02d}{'M' if female else 'H'}NEJCVA"
            f"{number % 10}"
            if rng.random() < 0.3
            else "",
            "folio_inm": f"INM-{number:08d}" if rng.random() < 0.6 else "",
            "expediente_comar": f"COMAR-{number:08d}" if rng.random() < 0.2 else "",
            "no_acompanado": rng.choice(["Sí", "No", "Separado", "Por determinar"]),
            "fecha_ingreso_mexico": f"{month:02d}/{opened[2]}",
            "tipo_cuidado": rng.choice(["Albergue", "CAS", "Con su familia", "Familia de acogida"]),
            "entidad": state,
            "municipio": municipality,
            "localidad": locality,
            "nivel_riesgo": rng.choice(["Bajo", "Medio", "Alto", "Crítico"]),
            "requiere_atencion_medica": rng.choice(["Sí", "No"]),
            "inscrito_escuela": rng.choice(["Sí", "No", ""]),
            "observaciones": f"Caso ficticio {number}; viajó desde {country}."
            if rng.random() < 0.5
            else "",
        }
    )
    for n in range(1, rng.choice([0, 1, 1, 2, 3]) + 1):
        kind, name = rng.choice(SHELTERS)
        start = _date(rng, 2024, 2025)
        row[f"albergue_{n}_tipo"] = kind
        row[f"albergue_{n}_nombre"] = name.format(locality)
        row[f"albergue_{n}_fecha_ingreso"] = f"{start[0]:02d}/{start[1]:02d}/{start[2]}"
        row[f"albergue_{n}_motivo_ingreso"] = rng.choice(
            ["Canalización INM", "Medida de protección"]
        )
    if rng.random() < 0.01:
        column, value = rng.choice(MISTAKES)
        row[column] = value
    return row


def write_csv(path: Path, rows: int, seed: int = 2026) -> None:
    import csv

    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, HEADER, lineterminator="\r\n")  # as Excel saves it
        writer.writeheader()
        for number in range(1, rows + 1):
            writer.writerow(dif_row(number, rng))


# -- the hub and the import -------------------------------------------------------------------


def run(args: list[str], env: Mapping[str, str], *, sampler: MemorySampler | None = None) -> str:
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if sampler is not None:
        sampler.watch(process.pid)
    stdout, stderr = process.communicate()
    if sampler is not None:
        sampler.stop()
    if process.returncode not in (0, 1) or not stdout.strip():
        raise SystemExit(f"{' '.join(args)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return stdout


class MemorySampler(threading.Thread):
    """Every 0.1 s, the memory of a process and its children (``puente import`` decodes in a
    child process of its own): each one's peak RSS, and the peak of their summed PSS — the
    memory they take together, pages shared between them counted once (Linux ``/proc``)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.pid = 0
        self.peak_rss_kib: dict[int, int] = {}
        self.peak_pss_kib = 0
        self._stopped = threading.Event()

    def watch(self, pid: int) -> None:
        self.pid = pid
        self.start()

    def stop(self) -> None:
        self._stopped.set()
        self.join()

    def run(self) -> None:
        while not self._stopped.wait(0.1):
            total = 0
            for pid in [self.pid, *_children(self.pid)]:
                fields = _proc_fields(pid)
                if "VmHWM" in fields:
                    self.peak_rss_kib[pid] = max(self.peak_rss_kib.get(pid, 0), fields["VmHWM"])
                total += fields.get("Pss", 0)
            self.peak_pss_kib = max(self.peak_pss_kib, total)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _proc_fields(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    for name in ("status", "smaps_rollup"):
        try:
            lines = Path(f"/proc/{pid}/{name}").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "Pss") and value.strip().endswith("kB"):
                fields[key] = int(value.split()[0])
    return fields


def timed_import(csv_path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """``puente import`` as a child process: its summary, wall time, CPU (its own and its
    decoding process's), and memory: peak RSS of each process, peak PSS of both together."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = MemorySampler()
    started = time.perf_counter()
    output = run(
        [*PUENTE, "import", "--adapter", "csv", "--mapping", "dif-estatal", str(csv_path),
         "--agency", AGENCY, "--json", "--no-progress"],
        env,
        sampler=sampler,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(output)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peaks = sorted(sampler.peak_rss_kib.items())
    return {
        "summary": summary,
        "wall_seconds": round(wall, 2),
        "rows_per_second": round(summary["read"] / wall),
        "cpu_seconds": round(cpu, 2),
        # ru_maxrss of children is the largest process so far (KiB on Linux).
        "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
        "peak_rss_mib_import": round(sampler.peak_rss_kib.get(sampler.pid, 0) / 1024, 1),
        "peak_rss_mib_decoding": [round(kib / 1024, 1) for pid, kib in peaks if pid != sampler.pid],
        "peak_pss_mib_together": round(sampler.peak_pss_kib / 1024, 1),
    }


def where_the_time_goes(csv_path: Path) -> dict[str, Any]:
    """Decode alone, and the engine with a sink that stores nothing, in this process: CPU time
    per row (steady on a shared machine, unlike wall time) and the wall-clock rate."""
    from adapters import registry
    from exchange.importer import ImportSummary, Outcome, pushed_and_rejected, write_rejects

    adapter = registry.get("csv", mapping="dif-estatal")
    started, cpu = time.perf_counter(), time.process_time()
    with csv_path.open("rb") as stream:
        rows = sum(1 for _ in adapter.decode(stream))
    decode = time.perf_counter() - started, time.process_time() - cpu

    class NullSink:
        def push(self, documents: list[Any]) -> list[Outcome]:
            return [Outcome("stored")] * len(documents)

    summary = ImportSummary("csv", str(csv_path), AGENCY, "null")
    started, cpu = time.perf_counter(), time.process_time()
    with csv_path.open("rb") as stream, open(os.devnull, "wb") as out:
        write_rejects(
            adapter,
            pushed_and_rejected(adapter.decode(stream), NullSink(), summary, batch=500),
            out,
        )
    engine = time.perf_counter() - started, time.process_time() - cpu
    return {
        "rows": rows,
        "decode_rows_per_second": round(rows / decode[0]),
        "decode_cpu_us_per_row": round(decode[1] / rows * 1e6, 1),
        "engine_without_storing_rows_per_second": round(rows / engine[0]),
        "engine_without_storing_cpu_us_per_row": round(engine[1] / rows * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    options = parser.parse_args()
    folder = options.keep or Path(tempfile.mkdtemp(prefix="puente-import-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    instance = folder / "instance"
    env = {**os.environ, "PUENTE_INSTANCE_PATH": str(instance), "PUENTE_LOG_LEVEL": "WARNING"}
    env.pop("PUENTE_DATABASE_URL", None)
    csv_path = folder / "dif-estatal.csv"

    started = time.perf_counter()
    write_csv(csv_path, options.rows)
    print(f"generated {options.rows} rows, {csv_path.stat().st_size / 2**20:.1f} MiB "
          f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)  # fmt: skip
    if (instance / "puente.db").exists():
        (instance / "puente.db").unlink()
    run([*PUENTE, "init"], env)
    run(
        [*PUENTE, "agency", "add", AGENCY, "--name", "Sistema DIF Chiapas", "--level", "state",
         "--kind", "state_dif", "--jurisdiction", "07", "--scope", "records:write",
         "--scope", "records:read", "--secret"],
        env,
    )  # fmt: skip

    first = timed_import(csv_path, env)
    print(json.dumps({"import": first}), file=sys.stderr)
    again = timed_import(csv_path, env)
    print(json.dumps({"import_again": again}), file=sys.stderr)
    split = where_the_time_goes(csv_path)
    rows = first["summary"]["read"]
    # The import's CPU per row, less what reading the file costs: storing (the push service),
    # plus the process's start (Flask, SQLAlchemy; ~2 s of CPU, spread over the rows).
    split["import_cpu_us_per_row"] = round(first["cpu_seconds"] / rows * 1e6, 1)
    split["push_cpu_us_per_row_derived"] = round(
        split["import_cpu_us_per_row"] - split["engine_without_storing_cpu_us_per_row"], 1
    )
    print(json.dumps({"first": first, "again": again, "split": split}, indent=2))
    try:
        load = os.getloadavg()
        print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", file=sys.stderr)
    except OSError:
        pass


if __name__ == "__main__":
    main()
