"""Fictitious demo data: agencies of a Chiapas-centred hub and a few dozen children's records.

Every name is invented (surnames such as "Ejemplo" and "Ficticio" make that plain). Records are
variations of the shipped valid case-record examples, so they are realistic and always valid.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from schemas.registry import default_registry


@dataclass(frozen=True)
class DemoAgency:
    id: str
    name: str
    level: str
    jurisdiction: str
    scopes: tuple[str, ...]
    #: The consent engine's actor kind (what the hard legal rules look at).
    kind: str
    country: str | None = None


READ_WRITE = ("records:write", "records:read")

AGENCIES = (
    DemoAgency(
        "mx.fed.pfpnna",
        "Procuraduría Federal de Protección de Niñas, Niños y Adolescentes",
        "federal",
        "00",
        (*READ_WRITE, "consent:read"),
        "federal_child_protection",
    ),
    DemoAgency(
        "mx.fed.inm",
        "Instituto Nacional de Migración",
        "federal",
        "00",
        READ_WRITE,
        "immigration_enforcement",
    ),
    DemoAgency(
        "mx.fed.comar",
        "Comisión Mexicana de Ayuda a Refugiados",
        "federal",
        "00",
        READ_WRITE,
        "refugee_commission",
    ),
    DemoAgency("mx.chp.dif", "Sistema DIF Chiapas", "state", "07", READ_WRITE, "state_dif"),
    DemoAgency(
        "mx.chp.procuraduria",
        "Procuraduría de Protección de NNA del Estado de Chiapas",
        "state",
        "07",
        (*READ_WRITE, "consent:write", "consent:read"),
        "state_dif",
    ),
    DemoAgency("mx.nl.dif", "Sistema DIF Nuevo León", "state", "19", READ_WRITE, "state_dif"),
    DemoAgency(
        "mx.chp.tapachula.dif",
        "DIF Municipal de Tapachula",
        "municipal",
        "07089",
        READ_WRITE,
        "municipal_dif",
    ),
    # An oversight body: reads the audit log (who disclosed what, when, why), never case content.
    DemoAgency(
        "mx.fed.cndh",
        "Comisión Nacional de los Derechos Humanos",
        "federal",
        "00",
        ("audit:read",),
        "oversight",
    ),
    # A civil-society legal clinic whose lawyers represent children (a fictitious one).
    DemoAgency(
        "mx.chp.clinica-juridica",
        "Clínica Jurídica Ficticia para la Niñez Migrante (Tapachula)",
        "municipal",
        "07089",
        ("records:read", "access:request"),
        "civil_society",
    ),
)


@dataclass(frozen=True)
class DemoPerson:
    id: str
    name: str
    email: str
    agency_id: str
    roles: tuple[str, ...]
    #: What the demo token carries: every scope the roles allow.
    scopes: tuple[str, ...]


#: People with personal access tokens: each flow of the consent issue has someone to run it.
PEOPLE = (
    DemoPerson(
        "chp-clinica-representante",
        "Lic. Renata Ejemplo Ficticio",
        "representante@clinica-juridica.example.org",
        "mx.chp.clinica-juridica",
        ("legal_representative",),
        ("records:read", "access:request"),
    ),
    DemoPerson(
        "chp-procuraduria-consentimientos",
        "Lic. Tomás Muestra Prueba",
        "consentimientos@procuraduria-chiapas.example.org",
        "mx.chp.procuraduria",
        ("consent_officer",),
        ("consent:read", "consent:write", "access:decide", "records:read"),
    ),
    # The federal Procuraduría's officer reviews the Chiapas Procuraduría's emergency overrides:
    # the opener's own agency may not review them (exchange.consents.review_override).
    DemoPerson(
        "pfpnna-consentimientos",
        "Lic. Andrés Inventado Supuesto",
        "consentimientos@pfpnna.example.org",
        "mx.fed.pfpnna",
        ("consent_officer",),
        ("consent:read", "consent:write", "access:decide", "records:read"),
    ),
    DemoPerson(
        "chp-procuraduria-emergencias",
        "Lic. Itzel Simulado Modelo",
        "emergencias@procuraduria-chiapas.example.org",
        "mx.chp.procuraduria",
        ("override_officer",),
        ("override", "records:read"),
    ),
    DemoPerson(
        "cndh-auditoria",
        "Mtra. Julia Supuesto Imaginario",
        "auditoria@cndh.example.org",
        "mx.fed.cndh",
        ("auditor",),
        ("audit:read",),
    ),
)

#: Which demo agency pushes each shipped example (the example's own case owner).
PUSHING_AGENCIES = ("mx.chp.dif", "mx.chp.tapachula.dif", "mx.nl.dif")

GIVEN_NAMES = {
    "female": [
        "María José",
        "Dulce Belén",
        "Yanelis",
        "Ana Sofía",
        "Keila",
        "Rosa Amelia",
        "Génesis",
        "Nayeli",
        "Wendy Carolina",
        "Esther",
    ],
    "male": [
        "Kevin Josué",
        "Bryan Alexis",
        "Jefferson",
        "Luis Fernando",
        "Wilson",
        "Ángel David",
        "Josué Elías",
        "Carlos Enrique",
        "Dylan",
        "Óscar Iván",
    ],
}
SURNAMES = [
    "Ejemplo",
    "Ficticio",
    "Muestra",
    "Prueba",
    "Demostración",
    "Inventado",
    "Simulado",
    "Modelo",
    "Supuesto",
    "Imaginario",
]


def _templates() -> list[dict[str, Any]]:
    folder = default_registry().example_paths("case-record", "1")
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in folder
        if path.name != "minimal.json"
    ]


def _shift_dates(value: Any, days: int) -> Any:
    """Move every full date (YYYY-MM-DD) in a document by ``days``; keep partial dates."""
    if isinstance(value, dict):
        return {key: _shift_dates(item, days) for key, item in value.items()}
    if isinstance(value, list):
        return [_shift_dates(item, days) for item in value]
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
        except ValueError:
            return value
    return value


#: Nicknames for demo children known only by one (fictitious, common in the region).
ALIASES = ["Chepe", "Toño", "Nena", "Güero", "Chino", "Beto", "Memo", "Lupita", "Pancho", "Nacho"]


def demo_records(count: int = 36, seed: int = 2026) -> list[tuple[str, dict[str, Any]]]:
    """``count`` push envelopes as (pushing agency, envelope), deterministic for a seed."""
    rng = random.Random(seed)  # noqa: S311 - reproducible fictitious data, not secrets
    templates = _templates()
    records = []
    for number in range(count):
        document = copy.deepcopy(templates[number % len(templates)])
        document = _shift_dates(document, -rng.randrange(0, 200))
        child = document["child"]
        sex = (
            child.get("sex") if child.get("sex") in GIVEN_NAMES else rng.choice(["female", "male"])
        )
        child["sex"] = sex
        if "names" in child:
            child["names"] = {
                "given_names": rng.choice(GIVEN_NAMES[sex]),
                "first_surname": rng.choice(SURNAMES),
                "second_surname": rng.choice(SURNAMES),
            }
        elif "alias" in child:
            # Children known only by an alias: each its own, or they all look like duplicates
            # of one another (no draw: the other children's names and dates stay as they were).
            child["alias"] = ALIASES[(number // len(templates)) % len(ALIASES)]
        # The templates' identifiers belong to the template child: each demo child gets its own.
        child["identifiers"] = [{"type": "agency_local", "value": f"DEMO-{number + 1:04d}"}]
        agency = PUSHING_AGENCIES[number % len(PUSHING_AGENCIES)]
        envelope = {
            "schema": "case-record/1",
            "local_id": f"{agency.split('.')[1].upper()}-DEMO-{number + 1:04d}",
            "data": document,
        }
        records.append((agency, envelope))
    return records
