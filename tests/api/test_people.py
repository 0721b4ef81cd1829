"""People and their personal access tokens, as the hub's services and API routes see them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from consent.request import Actor as ConsentActor
from exchange import db
from exchange.agencies import (
    UnknownAgency,
    disable_agency,
    get_agency,
    hash_client_secret,
    register_agency,
)
from exchange.audit_log import AuditEntry
from exchange.audit_sequencer import integrate_pending
from exchange.auth import AccessToken, current_actor, require_scope, token_hash, utcnow
from exchange.people import (
    MAX_TOKEN_DAYS,
    ROLE_SCOPES,
    AlreadyDone,
    DuplicatePerson,
    InvalidPerson,
    Person,
    PersonError,
    UnknownPerson,
    add_person,
    allowed_scopes,
    check_password,
    disable_person,
    issue_token,
    revoke_token,
    set_password,
)


@contextmanager
def admin(app: Flask) -> Iterator[Session]:
    """What the command line does: one transaction inside the hub's app context."""
    with app.app_context(), db.database(app).sessions.begin() as session:
        yield session


@pytest.fixture
def hub(app: Flask) -> Flask:
    """Agencies of three kinds, and a route that shows who is calling."""
    with admin(app) as session:
        register_agency(
            session, "mx.fed.cndh", "CNDH", "federal", "00", ["audit:read"], kind="oversight"
        )
        register_agency(
            session,
            "mx.chp.procuraduria",
            "Procuraduría Chiapas",
            "state",
            "07",
            ["consent:read"],
            kind="state_dif",
            with_secret=True,
        )
        register_agency(
            session,
            "gt.consulado",
            "Consulado",
            "state",
            "07",
            ["records:read"],
            kind="foreign_authority",
            country="GT",
            with_secret=True,
        )

    @app.get("/test/whoami")
    @require_scope()
    def _whoami() -> Any:
        actor = current_actor()
        return {
            "client_id": actor.client_id,
            "agency_id": actor.agency_id,
            "person_id": actor.person_id,
            "scopes": sorted(actor.scopes),
            "kind": actor.kind,
            "roles": sorted(actor.roles),
            "jurisdiction": actor.jurisdiction,
            "country": actor.country,
            "for_consent": actor.for_consent().to_json(),
        }

    return app


@pytest.fixture
def web(hub: Flask) -> FlaskClient:
    return hub.test_client()


def person(app: Flask, person_id: str, agency_id: str, *roles: str, **fields: Any) -> Person:
    with admin(app) as session:
        return add_person(
            session,
            person_id=person_id,
            name=f"Persona {person_id}",
            email=fields.pop("email", f"{person_id}@example.org"),
            agency_id=agency_id,
            roles=roles,
            **fields,
        )


def token(app: Flask, person_id: str, *scopes: str, **options: Any) -> dict[str, Any]:
    with admin(app) as session:
        return issue_token(session, person_id, scopes, **options).to_json()


def bearer(issued: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {issued['token']}"}


def entries(app: Flask) -> list[dict[str, Any]]:
    with db.database(app).sessions() as session:
        rows = session.scalars(select(AuditEntry.entry).order_by(AuditEntry.recorded_at))
        return [json.loads(row) for row in rows]


# --- tokens on the API --------------------------------------------------------------------------


def test_an_auditors_token_reads_the_audit_checkpoint(hub: Flask, web: FlaskClient) -> None:
    person(hub, "cndh-auditoria", "mx.fed.cndh", "auditor")
    issued = token(hub, "cndh-auditoria", "audit:read", name="informes")
    assert issued["token"].startswith("pat_") and len(issued["token"]) >= 47  # 256 bits
    assert issued["person_id"] == "cndh-auditoria" and issued["scopes"] == ["audit:read"]
    integrate_pending(hub, force_checkpoint=True)

    response = web.get("/v1/audit/checkpoint", headers=bearer(issued))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    # Scopes still rule: no records:read in this token.
    refused = web.get("/v1/records/rec-x?purpose=oversight", headers=bearer(issued))
    assert refused.status_code == 403


def test_the_caller_carries_kind_roles_and_jurisdiction(hub: Flask, web: FlaskClient) -> None:
    person(
        hub,
        "chp-consentimientos",
        "mx.chp.procuraduria",
        "consent_officer",
        "override_officer",
        jurisdiction="07089",
    )
    issued = token(hub, "chp-consentimientos", "consent:read", "override")
    who = web.get("/test/whoami", headers=bearer(issued)).get_json()
    assert who == {
        "client_id": "person:chp-consentimientos",
        "agency_id": "mx.chp.procuraduria",
        "person_id": "chp-consentimientos",
        "scopes": ["consent:read", "override"],
        "kind": "state_dif",
        "roles": ["consent_officer", "override_officer"],
        "jurisdiction": "07089",
        "country": None,
        "for_consent": {
            "kind": "state_dif",
            "agency_id": "mx.chp.procuraduria",
            "person_id": "chp-consentimientos",
            "jurisdiction": "07089",
            "roles": ["consent_officer", "override_officer"],
        },
    }


def test_an_agency_system_has_its_kind_country_and_no_roles(hub: Flask, web: FlaskClient) -> None:
    response = web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(hub, "gt.consulado"),
    )
    assert response.status_code == 200, response.get_json()
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    who = web.get("/test/whoami", headers=headers).get_json()
    assert who["person_id"] is None and who["roles"] == []
    assert (who["kind"], who["country"], who["jurisdiction"]) == ("foreign_authority", "GT", "07")
    consent_actor = ConsentActor.from_json(who["for_consent"])
    assert consent_actor == ConsentActor(
        kind="foreign_authority", agency_id="gt.consulado", jurisdiction="07", country="GT"
    )


def basic(app: Flask, agency_id: str) -> dict[str, str]:
    """Client credentials of an agency (its secret set to a known value)."""
    with admin(app) as session:
        secret = f"secret-{agency_id}-0123456789abcdef"
        get_agency(session, agency_id).client_secret_hash = hash_client_secret(secret)
    raw = base64.b64encode(f"{agency_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_expired_revoked_and_disabled_tokens_get_401(hub: Flask, web: FlaskClient) -> None:
    person(hub, "auditora-1", "mx.fed.cndh", "auditor")
    person(hub, "auditora-2", "mx.fed.cndh", "auditor")
    person(hub, "oficial-1", "mx.chp.procuraduria", "consent_officer")
    expired, revoked, disabled = (token(hub, "auditora-1", "audit:read") for _ in range(3))
    other_person = token(hub, "auditora-2", "audit:read")
    of_agency = token(hub, "oficial-1", "consent:read")
    for issued in (expired, revoked, disabled, other_person, of_agency):
        assert web.get("/test/whoami", headers=bearer(issued)).status_code == 200

    with admin(hub) as session:
        session.execute(
            update(AccessToken)
            .where(AccessToken.id == expired["token_id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        assert revoke_token(session, revoked["token_id"]) == "auditora-1"
    for issued in (expired, revoked):
        response = web.get("/test/whoami", headers=bearer(issued))
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
    assert web.get("/test/whoami", headers=bearer(disabled)).status_code == 200

    with admin(hub) as session:
        # the working token and the expired one (already revoked: not counted)
        assert disable_person(session, "auditora-1").tokens_revoked == 2
    assert web.get("/test/whoami", headers=bearer(disabled)).status_code == 401
    assert web.get("/test/whoami", headers=bearer(other_person)).status_code == 200

    # Disabling the person's agency stops their tokens at once, and keeps them revoked.
    with admin(hub) as session:
        disable_agency(session, "mx.chp.procuraduria")
    assert web.get("/test/whoami", headers=bearer(of_agency)).status_code == 401


def test_the_bearer_lookup_itself_refuses_a_disabled_person(hub: Flask, web: FlaskClient) -> None:
    # Even with the token row untouched (not revoked), an inactive person does not authenticate:
    # the lookup joins the person on every request.
    person(hub, "auditora-1", "mx.fed.cndh", "auditor")
    issued = token(hub, "auditora-1", "audit:read")
    with admin(hub) as session:
        session.execute(update(Person).where(Person.id == "auditora-1").values(active=False))
    assert web.get("/test/whoami", headers=bearer(issued)).status_code == 401


def test_tokens_are_stored_hashed(hub: Flask) -> None:
    person(hub, "auditora-1", "mx.fed.cndh", "auditor")
    issued = token(hub, "auditora-1", "audit:read", days=7, name="portátil")
    with db.database(hub).sessions() as session:
        row = session.get(AccessToken, issued["token_id"])
        assert row is not None
        assert row.token_hash == token_hash(issued["token"])
        assert (row.person_id, row.agency_id, row.label) == (
            "auditora-1",
            "mx.fed.cndh",
            "portátil",
        )
        lifetime = row.get_expires_in()
        assert timedelta(days=7) - timedelta(seconds=5) <= timedelta(seconds=lifetime)
        assert lifetime <= timedelta(days=7).total_seconds()
        # No column of any token row holds the token.
        for values in session.execute(text("SELECT * FROM access_token")):
            assert issued["token"] not in " ".join(str(value) for value in values)


def test_scopes_must_be_within_the_roles(hub: Flask) -> None:
    person(hub, "representante", "mx.chp.procuraduria", "legal_representative")
    with pytest.raises(InvalidPerson) as refused:
        token(hub, "representante", "records:read", "consent:write")
    assert refused.value.errors[0].field == "scopes"
    assert "consent:write" in refused.value.message_en and "no permiten" in refused.value.message_es
    for scopes, days in (((), 30), (("records:read",), 0), (("records:read",), MAX_TOKEN_DAYS + 1)):
        with pytest.raises(InvalidPerson):
            token(hub, "representante", *scopes, days=days)
    with pytest.raises(InvalidPerson):
        token(hub, "representante", "everything")
    with pytest.raises(UnknownPerson):
        token(hub, "nadie", "records:read")
    assert token(hub, "representante", "records:read", "access:request", days=MAX_TOKEN_DAYS)
    with db.database(hub).sessions() as session:
        assert len(list(session.scalars(select(AccessToken)))) == 1


def test_role_scope_map() -> None:
    assert ROLE_SCOPES["legal_representative"] == {"records:read", "access:request"}
    assert ROLE_SCOPES["consent_officer"] == {
        "consent:read",
        "consent:write",
        "access:decide",
        "records:read",
    }
    assert ROLE_SCOPES["override_officer"] == {"override", "records:read"}
    assert ROLE_SCOPES["auditor"] == {"audit:read"}
    # Every other role's scopes but the auditor's: the whole hub's audit log is oversight's.
    assert ROLE_SCOPES["administrator"] == {"admin"} | allowed_scopes(
        ["legal_representative", "consent_officer", "override_officer"]
    )
    # What belongs to agency systems and peer hubs is no person's.
    assert not allowed_scopes(ROLE_SCOPES) & {"records:write", "federation"}


def test_no_tokens_for_a_disabled_person_or_agency(hub: Flask) -> None:
    person(hub, "auditora-1", "mx.fed.cndh", "auditor")
    with admin(hub) as session:
        disable_person(session, "auditora-1")
    with pytest.raises(PersonError):
        token(hub, "auditora-1", "audit:read")
    person(hub, "oficial-1", "mx.chp.procuraduria", "consent_officer")
    with admin(hub) as session:
        disable_agency(session, "mx.chp.procuraduria")
    with pytest.raises(PersonError):
        token(hub, "oficial-1", "consent:read")
    with pytest.raises(PersonError, match="disabled"):
        person(hub, "oficial-2", "mx.chp.procuraduria", "consent_officer")


def test_introspection_reports_personal_tokens_to_their_agency(
    hub: Flask, web: FlaskClient
) -> None:
    person(hub, "oficial-1", "mx.chp.procuraduria", "consent_officer")
    issued = token(hub, "oficial-1", "consent:read", "records:read")
    answer = web.post(
        "/oauth/introspect",
        data={"token": issued["token"]},
        headers=basic(hub, "mx.chp.procuraduria"),
    ).get_json()
    assert answer["active"] is True
    assert (answer["sub"], answer["agency_id"]) == ("oficial-1", "mx.chp.procuraduria")
    assert answer["scope"] == "consent:read records:read"
    assert answer["client_id"] == "person:oficial-1"
    assert answer["exp"] - answer["iat"] == 30 * 24 * 3600
    # Another agency learns nothing about it.
    elsewhere = web.post(
        "/oauth/introspect", data={"token": issued["token"]}, headers=basic(hub, "gt.consulado")
    ).get_json()
    assert elsewhere == {"active": False}
    with admin(hub) as session:
        revoke_token(session, issued["token_id"])
    revoked = web.post(
        "/oauth/introspect",
        data={"token": issued["token"]},
        headers=basic(hub, "mx.chp.procuraduria"),
    ).get_json()
    assert revoked == {"active": False}


# --- people -------------------------------------------------------------------------------------


def test_a_person_gets_the_agency_jurisdiction_unless_narrowed(hub: Flask) -> None:
    default = person(hub, "oficial-1", "mx.chp.procuraduria", "consent_officer")
    assert default.jurisdiction == "07"
    narrowed = person(
        hub, "oficial-2", "mx.chp.procuraduria", "consent_officer", jurisdiction="07089"
    )
    assert narrowed.jurisdiction == "07089"
    federal = person(hub, "auditora", "mx.fed.cndh", "auditor", jurisdiction="19")
    assert federal.jurisdiction == "19"
    for jurisdiction in ("19", "19039", "7", "00"):
        with pytest.raises(InvalidPerson) as refused:
            person(
                hub,
                "oficial-3",
                "mx.chp.procuraduria",
                "legal_representative",
                jurisdiction=jurisdiction,
            )
        assert [e.field for e in refused.value.errors] == ["jurisdiction"], jurisdiction


def test_bad_people_are_refused_with_every_reason(hub: Flask) -> None:
    with pytest.raises(InvalidPerson) as refused:
        person(hub, "Mal Id", "mx.chp.procuraduria", "judge", email="no-es-correo")
    assert sorted(e.field for e in refused.value.errors) == ["email", "id", "roles"]
    assert all(e.message_es and e.message_en for e in refused.value.errors)
    with pytest.raises(InvalidPerson):
        person(hub, "sin-rol", "mx.chp.procuraduria")
    with pytest.raises(UnknownAgency, match=r"mx\.nadie\.dif"):
        person(hub, "oficial-1", "mx.nadie.dif", "auditor")

    lawyer = "legal_representative"
    person(hub, "oficial-1", "mx.chp.procuraduria", lawyer, email="Oficial@Example.org")
    with pytest.raises(DuplicatePerson, match="already registered"):
        person(hub, "oficial-1", "mx.chp.procuraduria", lawyer, email="otra@example.org")
    with pytest.raises(DuplicatePerson, match=r"oficial@example\.org"):
        person(hub, "oficial-2", "mx.chp.procuraduria", lawyer, email="OFICIAL@example.org")


def test_only_an_oversight_body_has_auditors(hub: Flask) -> None:
    # An auditor reads every child's audit entries and overrides' justifications whatever the
    # jurisdiction: a state DIF caseworker with the role would read other states' children.
    with pytest.raises(InvalidPerson) as refused:
        person(hub, "auditor-dif", "mx.chp.procuraduria", "auditor")
    [error] = refused.value.errors
    assert error.field == "roles"
    assert "oversight bodies" in error.message_en and "supervisión" in error.message_es
    assert person(hub, "auditora-cndh", "mx.fed.cndh", "auditor").roles == "auditor"


def test_a_generated_id_and_the_password_hash(hub: Flask) -> None:
    created = person(hub, None, "mx.chp.procuraduria", "administrator")  # type: ignore[arg-type]
    assert created.id.startswith("per_") and len(created.id) == 20
    assert created.password_hash is None
    with admin(hub) as session:
        set_password(session, created.id, "correct horse battery staple")
        with pytest.raises(InvalidPerson):
            set_password(session, created.id, "corta")
    with db.database(hub).sessions() as session:
        stored = session.get(Person, created.id)
        assert stored is not None and stored.password_hash is not None
        assert stored.password_hash.startswith("$argon2id$")  # memory-hard KDF
        assert "correct horse" not in stored.password_hash
        assert check_password(stored, "correct horse battery staple")
        assert not check_password(stored, "correct horse battery stapler")
        stored.active = False
        assert not check_password(stored, "correct horse battery staple")


def test_every_change_is_an_audit_entry_without_names(hub: Flask) -> None:
    before = len(entries(hub))
    person(hub, "auditora-1", "mx.fed.cndh", "auditor", email="julia@example.org")
    issued = token(hub, "auditora-1", "audit:read")
    with admin(hub) as session:
        revoke_token(session, issued["token_id"])
        disable_person(session, "auditora-1")
    written = entries(hub)[before:]
    assert [(e["action"], e["outcome"], e["reason_code"]) for e in written] == [
        ("person_changed", "success", "registered.auditora-1"),
        ("person_changed", "success", f"token_issued.auditora-1.{issued['token_id']}"),
        ("person_changed", "success", f"token_revoked.auditora-1.{issued['token_id']}"),
        ("person_changed", "success", "disabled.auditora-1"),
    ]
    assert all(e["actor"]["role"] == "administrator" for e in written)
    assert "julia" not in json.dumps(written) and issued["token"] not in json.dumps(written)
    # A refused change leaves no entry, and neither does one that would change nothing: the
    # log must not record a revocation or a disable that did not happen.
    with pytest.raises(DuplicatePerson):
        person(hub, "auditora-1", "mx.fed.cndh", "auditor")
    with pytest.raises(AlreadyDone, match="already revoked"), admin(hub) as session:
        revoke_token(session, issued["token_id"])
    with pytest.raises(AlreadyDone, match="already disabled"), admin(hub) as session:
        disable_person(session, "auditora-1")
    assert len(entries(hub)) == before + 4


@pytest.mark.parametrize("role", ["consent_officer", "override_officer", "administrator"])
def test_officers_who_speak_for_children_belong_to_child_protection(hub: Flask, role: str) -> None:
    for agency_id in ("gt.consulado", "mx.fed.cndh"):
        with pytest.raises(InvalidPerson, match=f"The role {role} belongs to the Procuradurías"):
            person(hub, f"oficial-{agency_id}", agency_id, role)
    assert person(hub, "oficial-chp", "mx.chp.procuraduria", role).roles == role


@pytest.mark.parametrize("name", ["Evil\nfake line", "Ana\r", "Ana\x1b[2J", "Ana\u202eanA", "\x00"])
def test_names_with_control_characters_are_refused(hub: Flask, name: str) -> None:
    # A newline or an escape sequence in a name would forge lines in `puente person list`.
    with pytest.raises(InvalidPerson) as refused:
        with admin(hub) as session:
            add_person(
                session,
                name=name,
                email="ana@example.org",
                agency_id="mx.chp.procuraduria",
                roles=["legal_representative"],
            )
    [error] = refused.value.errors
    assert error.field == "name"
    assert "control" in error.message_en and "control" in error.message_es
    person(hub, "lic-ana", "mx.chp.procuraduria", "legal_representative")
    with pytest.raises(InvalidPerson) as refused, admin(hub) as session:
        issue_token(session, "lic-ana", ["records:read"], name=name)
    [error] = refused.value.errors
    assert error.field == "name" and "control" in error.message_en
    assert token(hub, "lic-ana", "records:read", name="Portátil de Ana")["name"] == (
        "Portátil de Ana"
    )
