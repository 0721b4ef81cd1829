"""``puente demo``: a consent on one demo child, and the commands that show it at work.

The Chiapas Procuraduría's consent officer records, for an unaccompanied adolescent whose case
the Chiapas DIF pushed, a consent (suplencia) that lets COMAR read what the asylum procedure
needs and lets legal representatives read for legal representation, but never where she lives.
The demo prints commands for COMAR's redacted read, a legal representative's access request
and a dry-run decision, so each consent flow can be tried at once.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import ChildFacts
from exchange.agencies import Agency
from exchange.auth import Actor
from exchange.consents import record_consent
from exchange.crypto import data_keyring
from exchange.disclosure import load_child
from exchange.people import Person
from exchange.records import Record, latest_body

OFFICER = "chp-procuraduria-consentimientos"
PROCURADURIA = "mx.chp.procuraduria"
OWNER = "mx.chp.dif"
COMAR = "mx.fed.comar"
#: The legal clinic that represents the demo's unaccompanied adolescent.
CLINIC = "mx.chp.clinica-juridica"
#: The Chiapas Procuraduría's override officer opens; the PFPNNA's consent officer reviews
#: (the opener's agency may not).
OVERRIDE_OFFICER = "chp-procuraduria-emergencias"
OVERRIDE_REVIEWER = "pfpnna-consentimientos"


def json_field(name: str) -> str:
    """A shell filter printing one field of the JSON on its standard input."""
    return f"python3 -c 'import json,sys; print(json.load(sys.stdin)[\"{name}\"])'"


def _consent(child_id: str, adult_on: date) -> dict[str, Any]:
    end = min(adult_on, date.today().replace(year=date.today().year + 1))
    return {
        "status": "active",
        "child_id": child_id,
        "grantor": {
            "type": "procuraduria",
            "representation": "suplencia",
            "agency_id": PROCURADURIA,
            "person_id": OFFICER,
            "identity_verified": True,
        },
        "grantee": [{"agency_id": COMAR}, {"role": "legal_representative", "agency_id": CLINIC}],
        "decision": "deny",
        "period": {
            "start": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "end": f"{end.isoformat()}T00:00:00-05:00",
        },
        "policy_basis": [
            {"code": "lgdnna_art_106_suplencia", "reference": "Acuerdo PP-CHP-DEMO (ficticio)"}
        ],
        "provision": [
            {
                "decision": "permit",
                "actor": [{"agency_id": COMAR}],
                "action": ["read"],
                "purpose": ["asylum_procedure"],
                "data_category": ["identity", "family", "legal_status", "protection_concerns"],
            },
            {
                "decision": "permit",
                "actor": [{"role": "legal_representative", "agency_id": CLINIC}],
                "action": ["read"],
                "purpose": ["legal_representation"],
                "data_category": ["identity", "legal_status", "legal_representation"],
            },
            {"decision": "deny", "data_category": ["contact_location"]},
        ],
        "child_views": {
            "heard_on": date.today().isoformat(),
            "heard_by": {"person_id": OFFICER},
            "position": "assent",
            "summary": "Está de acuerdo en que COMAR y su abogada vean su expediente.",
        },
        "source_document": {"type": "procuraduria_resolution", "reference": "PP-CHP-DEMO-0001"},
    }


def _demo_child(session: Session, app: Flask) -> tuple[Record, ChildFacts] | None:
    """The first Chiapas DIF record about an unaccompanied or separated child under 17."""
    keyring = data_keyring(app)
    records = session.scalars(
        select(Record).where(Record.source_agency == OWNER).order_by(Record.local_id)
    )
    for record in records:
        facts = ChildFacts.from_record(latest_body(session, keyring, record).data)
        age = facts.age_on(date.today())
        if facts.unaccompanied_or_separated and age is not None and 12 <= age < 17:
            return record, facts
    return None


def _officer(session: Session) -> Actor:
    """The Procuraduría's consent officer (seeded with the demo people), as their token with
    ``consent:write`` would make them."""
    person = session.get(Person, OFFICER)
    agency = session.get(Agency, PROCURADURIA)
    if person is None or agency is None:
        raise LookupError(f"demo {OFFICER} of {PROCURADURIA} is not registered")
    return Actor.for_person(person, agency, scopes={"consent:write"})


def seed_demo_consent(app: Flask, session: Session) -> dict[str, str] | None:
    """Record the demo consent; returns ``{consent_id, child_id, record_id}`` (None when no
    demo child fits)."""
    found = _demo_child(session, app)
    if found is None:
        return None
    record, facts = found
    assert facts.eighteenth_birthday is not None
    officer = _officer(session)
    child = load_child(session, record.child_id, data_keyring(app))
    stored = record_consent(
        session, officer, child, _consent(child.child_id, facts.eighteenth_birthday.date())
    )
    session.commit()
    return {"consent_id": stored.id, "child_id": child.child_id, "record_id": record.id}


def save(path: Path, example: dict[str, str] | None) -> None:
    if example is not None:
        path.write_text(json.dumps(example, indent=2), encoding="utf-8")


def load(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    loaded: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def consent_example(
    base: str, example: dict[str, str] | None, comar_secret: str, people: dict[str, Any]
) -> list[str]:
    """Commands for the consent flows on the demo child."""
    if example is None:
        return []
    lawyer = people.get("chp-clinica-representante", {}).get("token", "PAT")
    officer = people.get(OFFICER, {}).get("token", "PAT")
    record, child = example["record_id"], example["child_id"]
    return [
        "# COMAR lee lo que el consentimiento permite / COMAR reads what the consent permits:",
        f"COMAR=$(curl -s -u {COMAR}:{comar_secret} -d grant_type=client_credentials "
        f"{base}/oauth/token | {json_field('access_token')})",
        f'curl -s -H "Authorization: Bearer $COMAR" '
        f'"{base}/v1/records/{record}?purpose=asylum_procedure"',
        "# la abogada pide acceso / the lawyer asks for access:",
        f'curl -s -H "Authorization: Bearer {lawyer}" -H "Content-Type: application/json" '
        f'-d \'{{"child_id": "{child}", "purpose": "legal_representation", '
        f'"categories": ["identity", "legal_status"], "until": "{_in_a_month()}"}}\' '
        f"{base}/v1/access-requests",
        "# el oficial revisa consentimientos y decisiones / the officer checks consents:",
        f'curl -s -H "Authorization: Bearer {officer}" {base}/v1/children/{child}/consents',
        f'curl -s -H "Authorization: Bearer {officer}" -H "Content-Type: application/json" '
        f'-d \'{{"actor": {{"agency_id": "mx.fed.inm"}}, "child_id": "{child}", '
        f'"action": "read", "purpose": "migration_procedure"}}\' {base}/v1/decisions',
    ]


def override_example(
    base: str, example: dict[str, str] | None, people: dict[str, Any]
) -> list[str]:
    """Commands for an emergency override on the demo child and its review by another agency."""
    if example is None or OVERRIDE_OFFICER not in people or OVERRIDE_REVIEWER not in people:
        return []
    opener, reviewer = people[OVERRIDE_OFFICER]["token"], people[OVERRIDE_REVIEWER]["token"]
    record, child = example["record_id"], example["child_id"]
    override = json.dumps(
        {
            "child_id": child,
            "basis_code": "missing_child",
            "justification": "Salió del albergue sin aviso; se requiere su ubicación.",
            "categories": ["identity", "contact_location", "placement"],
            "hours": 24,
            "record_ids": [record],
        },
        ensure_ascii=False,
    )
    review = json.dumps(
        {"upheld": True, "reason": "Urgencia acreditada por el albergue."}, ensure_ascii=False
    )
    return [
        "# la Procuraduría de Chiapas abre un acceso de emergencia y lee /"
        " the Chiapas Procuraduría opens an emergency override and reads:",
        f'OVERRIDE=$(curl -s -H "Authorization: Bearer {opener}" '
        f"-H \"Content-Type: application/json\" -d '{override}' {base}/v1/overrides "
        f"| {json_field('id')})",
        f'curl -s -H "Authorization: Bearer {opener}" '
        f'"{base}/v1/records/{record}?purpose=protection_measure"',
        "# la PFPNNA lo revisa (la institución que lo abrió no puede) /"
        " the PFPNNA reviews it (the opener's agency may not):",
        f'curl -s -H "Authorization: Bearer {reviewer}" -H "Content-Type: application/json" '
        f"-d '{review}' {base}/v1/overrides/$OVERRIDE/review",
    ]


def _in_a_month() -> str:
    return f"{(date.today() + timedelta(days=30)).isoformat()}T00:00:00Z"
