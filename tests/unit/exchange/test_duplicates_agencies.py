"""``puente children duplicates`` tells the person deciding to check with each child's
agencies: it names those responsible for the child's records now — after a transfer, the
agency that took the record over; for a child merged into it, the agencies of that child's
records too — beside those whose pushes the child's index entries come from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from flask import Flask
from sqlalchemy.orm import Session

from exchange import db
from exchange.agencies import register_agency
from exchange.child_duplicates import merge_children, probable_duplicates
from exchange.children import link_child
from exchange.cli import main
from exchange.records import Record

AGENCIES = {
    "mx.chp.dif": "07",
    "mx.nl.dif": "19",
    "mx.fed.inm": "00",
    "mx.ver.dif": "30",
    "mx.oax.dif": "20",
}


def child(given: str, first: str, dob: str) -> dict[str, Any]:
    return {
        "child": {
            "names": {"given_names": given, "first_surname": first},
            "date_of_birth": dob,
            "nationality": ["HN"],
        }
    }


def pushed(session: Session, source: str, local_id: str, data: dict[str, Any], owner: str) -> str:
    """The child of a record ``source`` pushed, and the record, which ``owner`` is responsible
    for now (another agency than the source: it accepted the record's transfer)."""
    child_id = link_child(
        session, agency_id=source, local_id=local_id, child_id=None, document=data
    )
    moment = datetime.now(UTC)
    session.add(
        Record(
            id=f"rec_{local_id}",
            source_agency=source,
            local_id=local_id,
            owner_agency=owner,
            child_id=child_id,
            schema_ref="case-record/1",
            latest_version=1,
            latest_sha256="0" * 64,
            created_at=moment,
            updated_at=moment,
        )
    )
    return child_id


def test_duplicates_name_the_agencies_responsible_for_the_records_now(
    app: Flask, tmp_path: Path, database_url: str
) -> None:
    with app.app_context(), db.database(app).sessions.begin() as session:
        for agency_id, jurisdiction in AGENCIES.items():
            level = "federal" if jurisdiction == "00" else "state"
            register_agency(session, agency_id, agency_id, level, jurisdiction, ["records:read"])
        a = pushed(
            session,
            "mx.chp.dif",
            "A-1",
            child("Jonathan", "Hernández López", "2011-02-03"),
            "mx.nl.dif",
        )
        b = pushed(
            session, "mx.fed.inm", "I-1", child("Jhonatan", "Hernandes", "2011-02-03"), "mx.fed.inm"
        )
        # Another record of A's child, under an id merged into A; Oaxaca took it over.
        other = pushed(
            session, "mx.ver.dif", "V-1", child("Jonatán", "Hernández", "2011-02-03"), "mx.oax.dif"
        )
        session.flush()
        merge_children(session, a, other, reason="la misma NNA")

    with app.app_context(), db.database(app).sessions() as session:
        [pair] = [
            p for p in probable_duplicates(session) if {p.child_id, p.other_child_id} == {a, b}
        ]
    side_a = 0 if pair.child_id == a else 1
    assert pair.agencies[side_a] == ("mx.chp.dif", "mx.nl.dif", "mx.oax.dif", "mx.ver.dif")
    assert pair.agencies[1 - side_a] == ("mx.fed.inm",)
    assert pair.responsible[side_a] == ("mx.nl.dif", "mx.oax.dif")
    assert pair.responsible[1 - side_a] == ("mx.fed.inm",)

    env = {
        "PUENTE_INSTANCE_PATH": str(tmp_path / "instance"),
        "PUENTE_DATABASE_URL": database_url,
        "PUENTE_LANG": "en",
    }
    listed = CliRunner().invoke(main, ["children", "duplicates", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    [shown] = [
        p
        for p in json.loads(listed.output)["duplicates"]
        if {p["child_id"], p["other_child_id"]} == {a, b}
    ]
    assert shown["responsible"][side_a] == ["mx.nl.dif", "mx.oax.dif"]
    text = CliRunner().invoke(main, ["children", "duplicates"], env=env)
    assert text.exit_code == 0, text.output
    assert "mx.chp.dif, mx.nl.dif, mx.oax.dif, mx.ver.dif | mx.fed.inm" in text.stdout or (
        "mx.fed.inm | mx.chp.dif, mx.nl.dif, mx.oax.dif, mx.ver.dif" in text.stdout
    )
