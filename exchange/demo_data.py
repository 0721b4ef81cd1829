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


def _template(name: str) -> dict[str, Any]:
    """The shipped valid case-record example ``<name>.json``."""
    for path in default_registry().example_paths("case-record", "1"):
        if path.stem == name:
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
    raise LookupError(f"no shipped case-record example {name}.json")


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
        if "case_number" in document["case"]:
            # So is the case number: two demo children never share one (CHP-DEMO-0013 and -0028
            # did, both pushed by the Chiapas DIF).
            document["case"]["case_number"] = demo_case_number(
                document["case"]["case_number"], number + 1
            )
        agency = PUSHING_AGENCIES[number % len(PUSHING_AGENCIES)]
        envelope = {
            "schema": "case-record/1",
            "local_id": f"{agency.split('.')[1].upper()}-DEMO-{number + 1:04d}",
            "data": document,
        }
        records.append((agency, envelope))
    return records


def demo_case_number(template_number: str, demo_number: int) -> str:
    """The template's case number with its last group of digits replaced by the demo child's
    number: ``DIF-CHI-2023-0456`` for child 13 is ``DIF-CHI-2023-0013``. Templates differ in
    their prefixes and demo children in their numbers, so no two demo records share one."""
    prefix = template_number.rstrip("0123456789")
    return f"{prefix}{demo_number:04d}"


#: The agency whose client the guide's first commands use to push :func:`sample_push`.
SAMPLE_AGENCY = "mx.chp.dif"
#: The sample's local id: pushed again, it is the same record (a new version, or nothing new).
SAMPLE_LOCAL_ID = "CHP-DEMO-EJEMPLO-CURL"


def sample_push() -> dict[str, Any]:
    """The envelope the guide pushes as the Chiapas DIF (``instance/demo/push-example.json``).

    A child of the Chiapas DIF's own, in Tapachula, in its shelter (the ``typical`` example,
    whose owner it is), and not one of the seeded children: a name no demo child is given, a
    birth year none has, the agency's own number for the child (``DEMO-EJEMPLO``), its own case
    and COMAR numbers. So the push is a clean new record, not a probable duplicate for
    ``puente children duplicates`` to list, and pushing it again updates that one record.
    """
    document = _template("typical")
    document["case"]["case_number"] = "DIF-CHP-TAP-2024-EJEMPLO"
    document["case"]["owner"]["agency_id"] = SAMPLE_AGENCY
    child = document["child"]
    child["names"] = {
        "given_names": "Ismael Ejemplo",
        "first_surname": "Demostración",
        "second_surname": "Ficticio",
    }
    child["sex"] = "male"
    child["date_of_birth"] = "2010-05-20"
    child["identifiers"] = [{"type": "agency_local", "value": "DEMO-EJEMPLO"}]
    for proceeding in document.get("asylum_proceedings", []):
        proceeding["comar_case_number"] = "COMAR-TAP-2024-EJEMPLO"
    for person in document.get("related_persons", []):
        if person.get("relationship") == "mother":
            person["names"] = {"given_names": "Marta Lidia", "first_surname": "Demostración"}
    return {"schema": "case-record/1", "local_id": SAMPLE_LOCAL_ID, "data": document}
