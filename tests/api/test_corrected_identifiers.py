"""A CURP or UNHCR number that a record's new version no longer states (a typo corrected) stops
linking to the record's child, unless another record of the child still states it: else the
next record carrying the old value — another child's — would be linked to this child, under
its consents, with no person deciding (DESIGN.md: duplicates are suggested, never merged)."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from consent_support import adolescent_record
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, push, push_bulk
from sqlalchemy import select, update

from exchange import db
from exchange.children import ChildIdentifier, ChildProfile
from exchange.cli import main

MISTYPED = "TOPA120510MNEBCDA1"
CORRECTED = "TOPA120510MNEBCDA2"


def stating(local_id: str, *curps: str) -> dict[str, Any]:
    record = adolescent_record(local_id)
    record["data"]["child"]["identifiers"] = [{"type": "curp", "value": c} for c in curps]
    return record


def pushed(client: FlaskClient, agency: AgencyClient, record: dict[str, Any]) -> str:
    response = push(client, agency, record)
    assert response.status_code in (200, 201), response.get_json()
    return str(response.get_json()["child_id"])


def found_by_curp(client: FlaskClient, agency: AgencyClient, curp: str) -> list[str]:
    response = client.post(
        "/v1/children/search",
        json={"purpose": "case_management", "identifier": {"type": "curp", "value": curp}},
        headers=agency.headers,
    )
    assert response.status_code == 200, response.get_json()
    return [c["child_id"] for c in response.get_json()["candidates"]]


def links(app: Flask, curp: str) -> list[tuple[str, str]]:
    with db.database(app).sessions() as session:
        found = session.execute(
            select(ChildIdentifier.scope, ChildIdentifier.child_id).where(
                ChildIdentifier.kind == "curp", ChildIdentifier.value == curp
            )
        )
        return sorted((scope, child_id) for scope, child_id in found)


def test_a_corrected_curp_no_longer_links_another_childs_record(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    first = pushed(client, owner, stating("TY-X", MISTYPED))
    assert pushed(client, owner, stating("TY-X", CORRECTED)) == first
    assert links(app, MISTYPED) == []
    assert links(app, CORRECTED) == [("", first)]
    # A different child, whose record carries the value once mistyped, is a child of its own.
    other = pushed(client, owner, stating("TY-Y", MISTYPED))
    assert other != first
    assert found_by_curp(client, owner, MISTYPED) == [other]
    assert found_by_curp(client, owner, CORRECTED) == [first]


def test_a_bulk_push_that_corrects_a_curp_unlinks_the_old_value(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    _, [first] = push_bulk(client, owner, [stating("TY-X", MISTYPED)])
    _, [again] = push_bulk(client, owner, [stating("TY-X", CORRECTED)])
    assert again["child_id"] == first["child_id"]
    assert links(app, MISTYPED) == []
    _, [other] = push_bulk(client, owner, [stating("TY-Y", MISTYPED)])
    assert other["status"] == "stored"
    assert other["child_id"] != first["child_id"]


def test_a_curp_another_record_of_the_child_states_keeps_linking(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    child = pushed(client, owner, stating("TY-X1", MISTYPED))
    assert pushed(client, owner, stating("TY-X2", MISTYPED)) == child
    pushed(client, owner, stating("TY-X1", CORRECTED))  # one record corrects it, one does not
    assert links(app, MISTYPED) == [("", child)]
    assert pushed(client, owner, stating("TY-X3", MISTYPED)) == child
    # Once neither states it, it goes.
    pushed(client, owner, stating("TY-X2", CORRECTED))
    pushed(client, owner, stating("TY-X3", CORRECTED))
    assert links(app, MISTYPED) == []


def test_an_identifier_kept_on_one_record_when_another_is_removed(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    unhcr = {"type": "unhcr_individual", "value": "487-21C01234"}
    record = stating("TY-X", MISTYPED)
    record["data"]["child"]["identifiers"].append(unhcr)
    child = pushed(client, owner, record)
    record["data"]["child"]["identifiers"] = [unhcr]  # the CURP taken out, the number kept
    assert pushed(client, owner, record) == child
    assert links(app, MISTYPED) == []
    with db.database(app).sessions() as session:
        kept = session.scalars(
            select(ChildIdentifier.child_id).where(ChildIdentifier.kind == "unhcr")
        ).all()
    assert kept == [child]


def test_a_profile_from_before_identifiers_were_kept_keeps_its_links_until_reindexed(
    app: Flask, client: FlaskClient, owner: AgencyClient, database_url: str, tmp_path: Any
) -> None:
    child = pushed(client, owner, stating("TY-X1", MISTYPED))
    pushed(client, owner, stating("TY-X2", MISTYPED))
    with db.database(app).sessions.begin() as session:
        session.execute(update(ChildProfile).values(identifiers=None))
    # TY-X2's profile may state anything: the link stays while it is not known.
    pushed(client, owner, stating("TY-X1", CORRECTED))
    assert links(app, MISTYPED) == [("", child)]
    # puente children reindex writes what each record states; then a correction unlinks.
    result = CliRunner().invoke(
        main,
        ["children", "reindex"],
        env={
            "PUENTE_INSTANCE_PATH": app.instance_path,
            "PUENTE_DATABASE_URL": database_url,
            "PUENTE_LANG": "en",
        },
    )
    assert result.exit_code == 0, result.output
    with db.database(app).sessions() as session:
        stated = session.scalars(
            select(ChildProfile.identifiers).order_by(ChildProfile.local_id)
        ).all()
    assert stated == [f"curp:{CORRECTED}", f"curp:{MISTYPED}"]
    pushed(client, owner, stating("TY-X2", CORRECTED))
    assert links(app, MISTYPED) == []


# -- an agency's own number for a child links its records of that child -------------------------


def numbered(local_id: str, number: str, issuer: str | None = None) -> dict[str, Any]:
    record = adolescent_record(local_id)
    identifier = {"type": "agency_local", "value": number}
    if issuer:
        identifier["issuer_agency"] = issuer
    record["data"]["child"]["identifiers"] = [identifier]
    return record


def test_an_agencys_own_number_for_a_child_links_its_records(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    first = pushed(client, owner, numbered("LEGAL-7", "DEMO-0001"))
    # Another record of the agency (say, its legal file) stating its number for the child.
    assert pushed(client, owner, numbered("CASE-7", " demo-0001 ")) == first
    # A record stating another number is another child, until a person merges them.
    assert pushed(client, owner, numbered("CASE-8", "DEMO-0002")) != first


def test_another_agencys_number_links_nothing(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    from records_support import add_agency

    first = pushed(client, owner, numbered("CHP-1", "EXP-77"))
    other = add_agency(app, "mx.nl.dif", jurisdiction="19")
    # Stating the owner's number for the child (issued by it) does not attach to its child,
    theirs = pushed(client, other, numbered("NL-1", "EXP-77", issuer=owner.id))
    assert theirs != first
    # nor does the same text as the other agency's own number: each agency numbers its own.
    assert pushed(client, other, numbered("NL-2", "EXP-77")) not in (first, theirs)
    # And a number stated as another agency's does not link the owner's records either.
    assert pushed(client, owner, numbered("CHP-2", "EXP-77", issuer=other.id)) != first


def test_a_corrected_own_number_stops_linking(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    first = pushed(client, owner, numbered("CHP-1", "EXP-71"))
    assert pushed(client, owner, numbered("CHP-1", "EXP-17")) == first
    assert pushed(client, owner, numbered("CHP-9", "EXP-71")) != first
