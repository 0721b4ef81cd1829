"""Helpers shared by the records tests: agencies with tokens (and keys), envelopes, pushes."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import OKPKey
from sqlalchemy import insert
from werkzeug.test import TestResponse

from exchange import db
from exchange.agencies import Agency, register_agency
from exchange.agency_keys import public_jwk
from exchange.auth import store_token
from exchange.people import Person, add_person
from exchange.sharing import RecordShare
from exchange.signatures import canonical_json, sign_detached

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "case-record" / "1"
PURPOSE = "case_management"


def example(name: str = "minimal", kind: str = "valid") -> dict[str, Any]:
    return json.loads((EXAMPLES / kind / f"{name}.json").read_text(encoding="utf-8"))


def envelope(local_id: str, data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "schema": "case-record/1",
        "local_id": local_id,
        **extra,
        "data": copy.deepcopy(data) if data is not None else example(),
    }


def changed(data: dict[str, Any], note: str) -> dict[str, Any]:
    """A valid variation of ``data`` (another case number)."""
    variant = copy.deepcopy(data)
    variant.setdefault("case", {})["case_number"] = note
    return variant


@dataclass
class AgencyClient:
    id: str
    token: str
    key: OKPKey | None = None
    kid: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sign(self, body: Any) -> str:
        assert self.key is not None and self.kid is not None
        return sign_detached(canonical_json(body), self.key, self.kid)


def add_agency(
    app: Flask,
    agency_id: str,
    *,
    scopes: tuple[str, ...] = ("records:write", "records:read"),
    signing: bool = False,
    require_signature: bool = False,
    jurisdiction: str = "07",
    kind: str = "state_dif",
    country: str | None = None,
    level: str | None = None,
) -> AgencyClient:
    key = OKPKey.generate_key("Ed25519") if signing or require_signature else None
    jwk = public_jwk(key) if key else None
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            register_agency(
                session,
                agency_id,
                f"Agencia {agency_id}",
                level or ("federal" if jurisdiction == "00" else "state"),
                jurisdiction,
                list(scopes),
                public_jwk=jwk,
                require_signature=require_signature,
                kind=kind,
                country=country,
            )
        token = issue_token(app, agency_id, scopes)
        session.close()
    return AgencyClient(agency_id, token, key, jwk["kid"] if jwk else None)


#: The agency of the people :func:`issue_token` makes up for tests.
PEOPLE_AGENCY = "mx.test.personas"


def _ensure_person(session: Any, person_id: str) -> None:
    """A token names a person only if the person exists and is active (the bearer lookup
    checks), so tests' made-up people are registered, at a civil-society agency of their own."""
    if session.get(Person, person_id) is not None:
        return
    if session.get(Agency, PEOPLE_AGENCY) is None:
        register_agency(
            session,
            PEOPLE_AGENCY,
            "Personas de prueba",
            "state",
            "07",
            ["records:read"],
            kind="civil_society",
        )
    add_person(
        session,
        person_id=person_id,
        name=f"Persona {person_id}",
        email=f"{person_id}@personas.example.org",
        agency_id=PEOPLE_AGENCY,
        roles=["legal_representative"],
    )


def issue_token(
    app: Flask,
    agency_id: str | None,
    scopes: tuple[str, ...] | list[str],
    person_id: str | None = None,
) -> str:
    """A bearer token stored directly (any scopes, no role check): for testing routes."""
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            if person_id is not None:
                _ensure_person(session, person_id)
            secret, _row = store_token(
                session,
                client_id=agency_id or f"person:{person_id}",
                scopes=list(scopes),
                agency_id=agency_id,
                person_id=person_id,
            )
        session.close()
    return secret


def push(client: FlaskClient, agency: AgencyClient, body: Any, **headers: str) -> TestResponse:
    return client.post("/v1/records", json=body, headers={**agency.headers, **headers})


def push_bulk(
    client: FlaskClient, agency: AgencyClient, lines: list[Any] | bytes, **headers: str
) -> tuple[TestResponse, list[dict[str, Any]]]:
    data = lines if isinstance(lines, bytes) else ndjson(lines)
    response = client.post(
        "/v1/records/bulk",
        data=data,
        headers={**agency.headers, "Content-Type": "application/x-ndjson", **headers},
    )
    results = [json.loads(line) for line in response.get_data().splitlines() if line.strip()]
    return response, results


def ndjson(lines: list[Any]) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )


def read(client: FlaskClient, agency: AgencyClient, record_id: str, **params: str) -> TestResponse:
    query = {"purpose": PURPOSE, **params}
    return client.get(f"/v1/records/{record_id}", query_string=query, headers=agency.headers)


def rows(app: Flask, statement: Any) -> list[Any]:
    with app.app_context():
        session = db.database(app).sessions()
        try:
            return list(session.execute(statement).all())
        finally:
            session.close()


def execute(app: Flask, statement: Any) -> None:
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            session.execute(statement)
        session.close()


def share(
    app: Flask,
    record_id: str,
    *,
    from_agency: str,
    to: str,
    kind: str = "referral",
    status: str = "accepted",
    purpose: str = "case_management",
    categories: list[str] | None = None,
) -> None:
    """A referral or transfer of the record, written straight into the hub (no decision);
    ``categories`` are those a referral names (none: every category)."""
    execute(
        app,
        insert(RecordShare).values(
            record_id=record_id,
            from_agency=from_agency,
            agency_id=to,
            kind=kind,
            status=status,
            purpose=purpose,
            categories=categories or [],
        ),
    )
