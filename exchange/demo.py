"""``puente demo``: seed a local hub with fictitious agencies and children's records.

Seeding happens once per instance folder; the demo agencies' client secrets (shown once by the
registry) and the demo people's personal access tokens and portal logins (under ``"people"``) are
kept in ``instance/demo/credentials.json`` (mode 0600) so a rerun can print the same working
example. The portal passwords are random, made for each demo folder (``demo-…``), and only ever
set by the demo. Nothing here is used outside the demo.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import db, demo_consents
from exchange.agencies import Agency, register_agency
from exchange.crypto import data_keyring
from exchange.demo_consents import json_field
from exchange.demo_data import (
    AGENCIES,
    PEOPLE,
    SAMPLE_AGENCY,
    DemoAgency,
    DemoPerson,
    demo_records,
    sample_push,
)
from exchange.people import MAX_TOKEN_DAYS, add_person, get_person, issue_token, set_password
from exchange.record_push import Pusher, PushResult, canonical_body
from exchange.records import Record
from schemas.registry import default_registry


@dataclass(frozen=True)
class DemoHub:
    credentials: dict[str, str]  # agency id -> client secret
    #: Records the hub holds now (the demo's, and whatever was pushed since).
    records: int
    sample_push: Path
    #: person id -> {"token", "token_id", "agency_id", "roles", "scopes", "expires_at",
    #: "email", "password"} (the last two: the demo person's portal login)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The demo consent: {"consent_id", "child_id", "record_id"} (exchange.demo_consents).
    consent: dict[str, str] | None = None
    #: Agencies the hub holds now (the demo's, and any registered since).
    agencies: int = 0
    #: Records this run pushed: the demo's on the run that seeds, none on a rerun.
    records_added: int = 0


def demo_folder(app: Flask) -> Path:
    return Path(app.instance_path) / "demo"


def credentials_path(app: Flask) -> Path:
    """The file (mode 0600) with the demo agencies' client secrets and the people's logins."""
    return demo_folder(app) / "credentials.json"


def _held(session: Session) -> tuple[int, int]:
    """(agencies, records) the hub holds."""
    agencies = session.scalar(select(func.count()).select_from(Agency)) or 0
    records = session.scalar(select(func.count()).select_from(Record)) or 0
    return agencies, records


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that was there keeps its mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def seed_demo(app: Flask) -> DemoHub:
    """Register the demo agencies and people and push the demo records, unless already done."""
    folder = demo_folder(app)
    credentials_file = credentials_path(app)
    sample = folder / "push-example.json"
    consent_file = folder / "consent-example.json"
    records = demo_records()
    with db.database(app).sessions() as session:
        if session.get(Agency, AGENCIES[0].id) is not None and credentials_file.exists():
            credentials = json.loads(credentials_file.read_text(encoding="utf-8"))
            people = credentials.pop("people", None)
            if people is None:  # seeded before the demo had people
                missing = [a for a in AGENCIES if session.get(Agency, a.id) is None]
                credentials.update(register_demo_agencies(session, missing))
                people = seed_demo_people(session)
                session.commit()
                _write_credentials(credentials_file, credentials, people)
            elif newcomers := [person for person in PEOPLE if person.id not in people]:
                # seeded before these people were part of the demo (the PFPNNA officer)
                people.update(seed_demo_people(session, newcomers))
                session.commit()
                _write_credentials(credentials_file, credentials, people)
            if without := [person_id for person_id, p in people.items() if "password" not in p]:
                # seeded before the demo people had portal passwords
                for person_id in without:
                    people[person_id].update(demo_login(session, person_id))
                session.commit()
                _write_credentials(credentials_file, credentials, people)
            _write_sample(sample)
            agencies, held = _held(session)
            return DemoHub(
                credentials,
                held,
                sample,
                people,
                demo_consents.load(consent_file),
                agencies=agencies,
            )
        credentials = register_demo_agencies(session, AGENCIES)
        people = seed_demo_people(session)
        session.commit()
        _write_credentials(credentials_file, credentials, people)
        registry = default_registry()
        keyring = data_keyring(app)
        for agency_id, envelope in records:
            pusher = Pusher(
                session, agency_id, require_signature=False, keyring=keyring, registry=registry
            )
            canonical, sha256 = canonical_body(envelope)
            item = pusher.check(envelope, canonical, sha256, None)
            if isinstance(item, PushResult):
                raise RuntimeError(f"demo record {envelope['local_id']} refused: {item}")
            pusher.store_committed([item])
        consent = demo_consents.seed_demo_consent(app, session)
        demo_consents.save(consent_file, consent)
        agencies, held = _held(session)
    _write_sample(sample)
    return DemoHub(
        credentials,
        held,
        sample,
        people,
        consent,
        agencies=agencies,
        records_added=len(records),
    )


def _write_sample(path: Path) -> None:
    """Write the record the guide pushes (:func:`exchange.demo_data.sample_push`) unless the
    file holds one already; a sample of an earlier demo, a seeded child's copy owned by another
    agency (it made a probable duplicate at each push), is replaced."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        owner = kept["data"]["case"]["owner"]["agency_id"]
    except (OSError, ValueError, KeyError, TypeError):
        owner = None
    if owner != SAMPLE_AGENCY:
        _write_private(path, json.dumps(sample_push(), ensure_ascii=False, indent=2))


def register_demo_agencies(
    session: Session, agencies: tuple[DemoAgency, ...] | list[DemoAgency]
) -> dict[str, str]:
    """Register ``agencies`` with their kinds; returns agency id -> client secret."""
    credentials = {}
    for agency in agencies:
        registered = register_agency(
            session,
            agency.id,
            agency.name,
            agency.level,
            agency.jurisdiction,
            list(agency.scopes),
            with_secret=True,
            kind=agency.kind,
            country=agency.country,
        )
        credentials[agency.id] = registered.client_secret or ""
    return credentials


def seed_demo_people(
    session: Session, persons: tuple[DemoPerson, ...] | list[DemoPerson] = PEOPLE
) -> dict[str, dict[str, Any]]:
    """Register the demo people with a personal access token each (valid the longest allowed,
    so a demo folder keeps working) and a portal password; returns what ``credentials.json``
    keeps of them."""
    people = {}
    for demo in persons:
        password = demo_password()
        add_person(
            session,
            person_id=demo.id,
            name=demo.name,
            email=demo.email,
            agency_id=demo.agency_id,
            roles=demo.roles,
            password=password,
        )
        issued = issue_token(session, demo.id, demo.scopes, days=MAX_TOKEN_DAYS, name="demo")
        people[demo.id] = {
            "token": issued.token,
            "token_id": issued.token_id,
            "agency_id": demo.agency_id,
            "roles": list(demo.roles),
            "scopes": list(issued.scopes),
            "expires_at": issued.expires_at.isoformat(),
            "email": demo.email,
            "password": password,
        }
    return people


def demo_password() -> str:
    """A portal password for one demo person of one demo folder: random, marked as the demo's."""
    return "demo-" + secrets.token_urlsafe(12)


def demo_login(session: Session, person_id: str) -> dict[str, str]:
    """Give a demo person a new portal password; their login as ``credentials.json`` keeps it."""
    password = demo_password()
    set_password(session, person_id, password)
    return {"email": get_person(session, person_id).email, "password": password}


def _write_credentials(
    path: Path, credentials: dict[str, str], people: dict[str, dict[str, Any]]
) -> None:
    _write_private(path, json.dumps({**credentials, "people": people}, indent=2))


def curl_example(base: str, hub: DemoHub, agency_id: str = SAMPLE_AGENCY) -> list[str]:
    """The agency gets a token, pushes the sample record (keeping the id the hub answers)
    and reads it back."""
    secret = hub.credentials[agency_id]
    return [
        f"TOKEN=$(curl -s -u {agency_id}:{secret} -d grant_type=client_credentials "
        f"{base}/oauth/token | {json_field('access_token')})",
        f'RECORD=$(curl -s -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        f'-H "Idempotency-Key: demo-$(date +%s)" --data @{hub.sample_push} {base}/v1/records '
        f"| {json_field('record_id')})",
        f'curl -s -H "Authorization: Bearer $TOKEN" '
        f'"{base}/v1/records/$RECORD?purpose=case_management"',
    ]


def oversight_example(base: str, hub: DemoHub, agency_id: str = "mx.fed.cndh") -> list[str]:
    """An oversight body reading the signed checkpoint and the audit events."""
    secret = hub.credentials[agency_id]
    return [
        f"AUDIT=$(curl -s -u {agency_id}:{secret} -d grant_type=client_credentials "
        f"{base}/oauth/token | {json_field('access_token')})",
        f'curl -s -H "Authorization: Bearer $AUDIT" {base}/v1/audit/checkpoint',
        f'curl -s -H "Authorization: Bearer $AUDIT" "{base}/v1/audit/events?limit=5"',
    ]


def people_example(base: str, hub: DemoHub) -> list[str]:
    """Each demo person's personal access token and portal login (e-mail and password, made
    for this demo folder only), and the auditor reading the checkpoint with hers (no token
    request needed: a PAT is used as it is)."""
    lines = [
        f"# portal: {base}/login — correo y contraseña (solo de esta demo) / e-mail and password "
        "(this demo only)"
    ]
    for person_id, person in sorted(hub.people.items()):
        lines.append(
            f"{person_id} ({', '.join(person['roles'])}, {person['agency_id']}): {person['token']}"
        )
        if "password" in person:
            lines.append(f"    portal: {person['email']}  {person['password']}")
    auditors = [person for person in hub.people.values() if "auditor" in person["roles"]]
    if auditors:
        lines.append(
            f'curl -s -H "Authorization: Bearer {auditors[0]["token"]}" {base}/v1/audit/checkpoint'
        )
    return lines


def summary(hub: DemoHub) -> dict[str, Any]:
    return {
        "agencies": sorted(hub.credentials),
        "people": sorted(hub.people),
        "records": hub.records,
    }
