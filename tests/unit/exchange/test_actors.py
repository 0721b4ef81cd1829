"""The caller and the consent engine's actor are derived from an agency's and a person's rows in
one place (``exchange.auth``), and agree with what their own tokens present on a request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, g
from sqlalchemy.orm import Session

import consent
from exchange import db
from exchange.agencies import Agency, register_agency
from exchange.auth import Actor, current_actor, engine_actor, find_bearer_token, store_token
from exchange.disclosure import person_actor, recipient_actor
from exchange.people import Person, add_person, issue_token

CONSULATE = "gt.consulado.tapachula"
PERSON = "gt-consul-tapachula"


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    with app.app_context(), db.database(app).sessions() as session:
        # A foreign authority: the only kind with a country, so every field differs from
        # its default. Its officer covers a municipality inside the agency's state.
        register_agency(
            session,
            CONSULATE,
            "Consulado Ficticio de Guatemala en Tapachula",
            "state",
            "07",
            ["records:read", "consent:read"],
            kind="foreign_authority",
            country="GT",
        )
        add_person(
            session,
            name="Cónsul Ejemplo Ficticio",
            email="consul@consulado.example.org",
            agency_id=CONSULATE,
            roles=["legal_representative"],
            jurisdiction="07089",
            person_id=PERSON,
        )
        session.commit()
        yield session


def _rows(session: Session) -> tuple[Agency, Person]:
    agency, person = session.get(Agency, CONSULATE), session.get(Person, PERSON)
    assert agency is not None and person is not None
    return agency, person


def test_an_agency_system_carries_the_agency_s_kind_country_and_jurisdiction(
    session: Session,
) -> None:
    agency, _person = _rows(session)
    assert Actor.for_agency(agency, scopes=["records:read"]) == Actor(
        client_id=CONSULATE,
        agency_id=CONSULATE,
        person_id=None,
        scopes=frozenset({"records:read"}),
        kind="foreign_authority",
        roles=frozenset(),
        jurisdiction="07",
        country="GT",
    )
    assert engine_actor(agency) == consent.Actor(
        kind="foreign_authority", agency_id=CONSULATE, jurisdiction="07", country="GT"
    )
    assert recipient_actor(session, CONSULATE) == engine_actor(agency)


def test_a_person_carries_their_roles_and_jurisdiction_and_their_agency_s_kind(
    session: Session,
) -> None:
    agency, person = _rows(session)
    assert Actor.for_person(person, agency, scopes={"records:read"}) == Actor(
        client_id=f"person:{PERSON}",
        agency_id=CONSULATE,
        person_id=PERSON,
        scopes=frozenset({"records:read"}),
        kind="foreign_authority",
        roles=frozenset({"legal_representative"}),
        jurisdiction="07089",
        country="GT",
    )
    assert engine_actor(agency, person) == consent.Actor(
        kind="foreign_authority",
        agency_id=CONSULATE,
        person_id=PERSON,
        roles=frozenset({"legal_representative"}),
        jurisdiction="07089",
        country="GT",
    )
    assert person_actor(session, PERSON) == engine_actor(agency, person)


def test_a_person_is_only_built_with_their_own_agency(session: Session) -> None:
    register_agency(
        session, "mx.chp.dif", "DIF Chiapas", "state", "07", ["records:read"], kind="state_dif"
    )
    other = session.get(Agency, "mx.chp.dif")
    _agency, person = _rows(session)
    assert other is not None
    with pytest.raises(ValueError):
        Actor.for_person(person, other, scopes=())


def test_the_rows_make_the_same_caller_as_the_tokens_do(app: Flask, session: Session) -> None:
    agency, person = _rows(session)
    personal = issue_token(session, PERSON, ["access:request", "records:read"])
    system, _row = store_token(
        session, client_id=CONSULATE, agency_id=CONSULATE, scopes=["records:read"]
    )
    session.commit()
    with app.test_request_context():
        g.authlib_server_oauth2_token = find_bearer_token(session, personal.token)
        assert current_actor() == Actor.for_person(
            person, agency, scopes={"access:request", "records:read"}
        )
        g.authlib_server_oauth2_token = find_bearer_token(session, system)
        assert current_actor() == Actor.for_agency(agency, scopes={"records:read"})


def test_the_hub_is_no_agency_and_no_person() -> None:
    hub = Actor.hub()
    assert (hub.client_id, hub.agency_id, hub.person_id, hub.scopes) == (
        "hub",
        None,
        None,
        frozenset(),
    )
    assert hub.audit_role == "system"
