"""``puente children reindex`` on a hub whose child index predates what a push stores today:
search finds the children again, nothing is relinked, and a second run has nothing to do."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update

from exchange import db
from exchange.agencies import Agency
from exchange.audit_log import AuditEntry
from exchange.auth import store_token
from exchange.child_duplicates import merge_children
from exchange.child_matching import profile_from_child
from exchange.children import (
    CASE_NUMBER_KINDS,
    SEARCH_ONLY_IDENTIFIER_TYPES,
    Child,
    ChildCaseNumber,
    ChildDuplicateSuggestion,
    ChildIdentifier,
    ChildNameKey,
    ChildProfile,
)
from exchange.cli import main
from exchange.records import Record, RecordAddress, RecordVersion
from exchange.sharing import RecordShare

DIF, COMAR = "mx.chp.dif", "mx.fed.comar"
#: The kinds an older hub did not keep for search (it kept case numbers only).
NEWER_KINDS = sorted(SEARCH_ONLY_IDENTIFIER_TYPES - CASE_NUMBER_KINDS)


def case_record(given: str, first: str, dob: str, *identifiers: dict[str, str]) -> dict[str, Any]:
    return {
        "case": {"status": "open"},
        "child": {
            "names": {"given_names": given, "first_surname": first},
            "date_of_birth": dob,
            "nationality": ["GT"],
            "identifiers": list(identifiers),
        },
    }


@pytest.fixture
def hub(app: Flask, tmp_path: Path, database_url: str) -> dict[str, Any]:
    """A hub with pushed records; returns the CLI environment, tokens and child ids."""
    with db.database(app).sessions() as session:
        for agency, kind in ((DIF, "state_dif"), (COMAR, "refugee_commission")):
            session.add(Agency(id=agency, name=agency, level="state", jurisdiction="07", kind=kind))
        session.flush()
        tokens = {
            agency: store_token(
                session,
                client_id=agency,
                scopes=["records:write", "records:read"],
                agency_id=agency,
            )[0]
            for agency in (DIF, COMAR)
        }
        session.commit()
    client = app.test_client()

    def push(agency: str, local_id: str, data: dict[str, Any]) -> str:
        response = client.post(
            "/v1/records",
            json={"schema": "case-record/1", "local_id": local_id, "data": data},
            headers={"Authorization": f"Bearer {tokens[agency]}"},
        )
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["child_id"])

    ids = {
        "trece": push(
            DIF,
            "CHP-13",
            case_record(
                "Trece",
                "Demostración",
                "2012-03-13",
                {"type": "agency_local", "value": "DEMO-0013"},
                {"type": "passport", "value": "G1234567", "issuer_country": "GT"},
                {"type": "unhcr_case", "value": "MEX-24C000451"},
            ),
        ),
        "catorce": push(
            COMAR,
            "COM-14",
            case_record(
                "Catorce",
                "Muestrario",
                "2013-04-14",
                {"type": "agency_local", "value": "INM-EXP-77", "issuer_agency": "mx.fed.inm"},
                {"type": "inm_file", "value": "INM/CHP/2024/0042"},
            ),
        ),
        "quince": push(DIF, "CHP-15", case_record("Quince", "Ejemplar", "2014-05-15")),
        "dieciseis": push(
            DIF,
            "CHP-16",
            case_record(
                "Dieciséis",
                "Prueba",
                "2015-06-16",
                {"type": "birth_certificate", "value": "GT-AC-2015-77"},
            ),
        ),
    }
    env = {"PUENTE_INSTANCE_PATH": str(tmp_path / "instance"), "PUENTE_DATABASE_URL": database_url}
    return {"app": app, "client": client, "tokens": tokens, "ids": ids, "env": env}


def as_older_hub(app: Flask) -> int:
    """Delete the search rows an older hub never stored; returns how many there were."""
    with db.database(app).sessions.begin() as session:
        kinds = ChildCaseNumber.kind.in_(NEWER_KINDS)
        count = len(session.scalars(select(ChildCaseNumber.id).where(kinds)).all())
        session.execute(delete(ChildCaseNumber).where(kinds))
    return count


def reindex(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(
        main, ["children", "reindex", *args], env={**env, "PUENTE_LANG": "en"}
    )


def search(hub: dict[str, Any], body: dict[str, Any], agency: str = DIF) -> list[str]:
    client: FlaskClient = hub["client"]
    response = client.post(
        "/v1/children/search",
        json={"purpose": "case_management", **body},
        headers={"Authorization": f"Bearer {hub['tokens'][agency]}"},
    )
    assert response.status_code == 200, response.get_json()
    return [candidate["child_id"] for candidate in response.get_json()["candidates"]]


def by_identifier(hub: dict[str, Any], kind: str, value: str, agency: str = DIF) -> list[str]:
    return search(hub, {"identifier": {"type": kind, "value": value}}, agency)


def index_state(app: Flask) -> dict[str, Any]:
    """Everything that says which child a record is: links, children, profiles' children,
    suggestions; and the search rows, profiles and name keys (by source record)."""
    with db.database(app).sessions() as session:

        def rows(*columns: Any) -> list[tuple[Any, ...]]:
            return sorted(tuple(row) for row in session.execute(select(*columns)).all())

        profile = (ChildProfile.agency_id, ChildProfile.local_id)
        return {
            "records": rows(Record.id, Record.child_id, Record.latest_version),
            "children": rows(Child.id, Child.merged_into),
            "identifiers": rows(
                ChildIdentifier.child_id,
                ChildIdentifier.kind,
                ChildIdentifier.scope,
                ChildIdentifier.value,
            ),
            "suggestions": rows(ChildDuplicateSuggestion.child_id, ChildDuplicateSuggestion.reason),
            "case_numbers": rows(
                ChildCaseNumber.child_id, ChildCaseNumber.kind, ChildCaseNumber.value
            ),
            "profiles": rows(
                *profile,
                ChildProfile.child_id,
                ChildProfile.given_names,
                ChildProfile.surnames,
                ChildProfile.birth_earliest,
                ChildProfile.birth_latest,
                ChildProfile.nationalities,
            ),
            "name_keys": sorted(
                tuple(row)
                for row in session.execute(
                    select(
                        *profile,
                        ChildNameKey.key,
                        ChildNameKey.birth_year_from,
                        ChildNameKey.birth_year_to,
                    ).join(ChildProfile, ChildProfile.id == ChildNameKey.profile_id)
                ).all()
            ),
        }


def reindex_entries(app: Flask) -> list[AuditEntry]:
    with db.database(app).sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "child_index_rebuilt")
                .order_by(AuditEntry.recorded_at)
            )
        )


def test_reindex_makes_an_older_hubs_children_findable_and_changes_no_link(
    hub: dict[str, Any],
) -> None:
    app, ids = hub["app"], hub["ids"]
    pushed = index_state(app)
    deleted = as_older_hub(app)
    assert deleted == 5  # DEMO-0013, the passport, INM-EXP-77, the INM file, the certificate
    assert by_identifier(hub, "passport", "G1234567") == []
    assert by_identifier(hub, "agency_local", "DEMO-0013") == []
    assert by_identifier(hub, "inm_file", "INM/CHP/2024/0042", agency=COMAR) == []
    # Case numbers were kept before: found all along.
    assert by_identifier(hub, "unhcr_case", "MEX-24C000451") == [ids["trece"]]

    result = reindex(hub["env"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "records_read": 4,
        "identifiers_added": 5,
        "profiles_refreshed": 0,
        "changed": True,
        "audit_entry": json.loads(result.output)["audit_entry"],
    }
    assert by_identifier(hub, "passport", "G1234567") == [ids["trece"]]
    assert by_identifier(hub, "agency_local", "DEMO-0013") == [ids["trece"]]
    assert by_identifier(hub, "inm_file", "INM/CHP/2024/0042", agency=COMAR) == [ids["catorce"]]
    assert by_identifier(hub, "birth_certificate", "GT-AC-2015-77") == [ids["dieciseis"]]
    # Exactly what the pushes had stored: no link, child, profile or suggestion changed.
    assert index_state(app) == pushed

    again = reindex(hub["env"])
    assert again.exit_code == 0, again.output
    assert again.output.strip() == (
        "The child index was already up to date: nothing to do (4 records read)."
    )
    assert index_state(app) == pushed
    first, second = reindex_entries(app)
    assert (first.outcome, first.actor_agency) == ("success", app.config["HUB_ID"])
    assert json.loads(first.entry)["reason_code"] == (
        "children_reindexed.read_4.added_5.refreshed_0"
    )
    assert json.loads(second.entry)["reason_code"] == (
        "children_reindexed.read_4.added_0.refreshed_0"
    )


def test_batches_cover_every_record_and_the_summary_is_in_spanish(hub: dict[str, Any]) -> None:
    as_older_hub(hub["app"])
    result = CliRunner().invoke(
        main,
        ["children", "reindex", "--batch", "1", "--lang", "es"],
        env=hub["env"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Expedientes leídos: 4; identificadores de búsqueda agregados: 5; "
        "perfiles de identidad actualizados: 0."
    )
    again = CliRunner().invoke(
        main, ["children", "reindex", "--batch", "3", "--json"], env=hub["env"]
    )
    summary = json.loads(again.output)
    assert (summary["records_read"], summary["changed"]) == (4, False)


def test_missing_profiles_and_name_keys_are_stored_again(hub: dict[str, Any]) -> None:
    app, ids = hub["app"], hub["ids"]
    pushed = index_state(app)
    name_search = {"name": {"given": "Quince", "family": "Ejemplar"}, "date_of_birth": "2014-05-15"}
    assert search(hub, name_search)[:1] == [ids["quince"]]
    with db.database(app).sessions.begin() as session:
        profile_of = {
            local_id: profile_id
            for profile_id, local_id in session.execute(
                select(ChildProfile.id, ChildProfile.local_id)
            )
        }
        # CHP-15 has no profile at all (pushed before profiles); CHP-16 lost its name keys.
        gone = [profile_of["CHP-15"], profile_of["CHP-16"]]
        session.execute(delete(ChildNameKey).where(ChildNameKey.profile_id.in_(gone)))
        session.execute(delete(ChildProfile).where(ChildProfile.id == profile_of["CHP-15"]))
    assert ids["quince"] not in search(hub, name_search)

    result = reindex(hub["env"], "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["identifiers_added"], summary["profiles_refreshed"]) == (0, 2)
    assert search(hub, name_search)[:1] == [ids["quince"]]
    assert index_state(app) == pushed
    assert json.loads(reindex(hub["env"], "--json").output)["changed"] is False


def test_a_merged_childs_records_are_indexed_on_the_surviving_child(hub: dict[str, Any]) -> None:
    app, ids = hub["app"], hub["ids"]
    with app.app_context(), db.database(app).sessions() as session:
        merge_children(session, ids["quince"], ids["trece"], reason="same child")
        session.commit()
    merged = index_state(app)
    as_older_hub(app)

    result = reindex(hub["env"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["identifiers_added"] == 5
    # The records keep their child ids (reads follow the merge); the rows are the survivor's.
    assert index_state(app) == merged
    assert by_identifier(hub, "passport", "G1234567") == [ids["quince"]]
    with db.database(app).sessions() as session:
        assert (
            session.scalar(select(Record.child_id).where(Record.local_id == "CHP-13"))
            == (ids["trece"])
        )


def test_a_body_that_does_not_decrypt_stops_the_run_and_is_audited(hub: dict[str, Any]) -> None:
    app = hub["app"]
    as_older_hub(app)
    with db.database(app).sessions.begin() as session:
        session.execute(
            update(RecordVersion)
            .where(
                RecordVersion.record_id.in_(select(Record.id).where(Record.local_id == "CHP-16"))
            )
            .values(body_sha256="0" * 64)
        )
    result = reindex(hub["env"])
    assert result.exit_code == 1
    assert "A record could not be decrypted" in result.output
    assert "run it again" in result.output
    [entry] = reindex_entries(app)
    assert entry.outcome == "failure"


def test_entries_stay_with_the_child_the_records_profile_is_on(hub: dict[str, Any]) -> None:
    # An index where CHP-16's entries sit on another child than its record names (as a push
    # with an explicit child_id can leave them): reindexing must not move them back.
    app, ids = hub["app"], hub["ids"]
    with db.database(app).sessions.begin() as session:
        session.execute(
            update(ChildProfile)
            .where(ChildProfile.local_id == "CHP-16")
            .values(child_id=ids["quince"])
        )
    before = index_state(app)
    as_older_hub(app)
    result = reindex(hub["env"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["profiles_refreshed"] == 0
    after = index_state(app)
    assert after["profiles"] == before["profiles"]
    assert (ids["quince"], "birth_certificate", "GT-AC-2015-77") in after["case_numbers"]
    assert (ids["dieciseis"], "birth_certificate", "GT-AC-2015-77") not in after["case_numbers"]


def test_children_help_lists_reindex() -> None:
    result = CliRunner().invoke(main, ["children", "--help"])
    assert result.exit_code == 0, result.output
    assert "reindex" in result.output
    assert "--batch" in CliRunner().invoke(main, ["children", "reindex", "--help"]).output


def test_an_age_estimate_is_taken_as_of_the_push_not_as_of_the_reindex(
    hub: dict[str, Any],
) -> None:
    app, client = hub["app"], hub["client"]
    child = {
        "names": {"given_names": "Diecisiete", "first_surname": "Estimada"},
        "nationality": ["GT"],
        "age_estimation": {"estimated_age_years": 10},
    }
    response = client.post(
        "/v1/records",
        json={
            "schema": "case-record/1",
            "local_id": "CHP-17",
            "data": {"case": {"status": "open"}, "child": child},
        },
        headers={"Authorization": f"Bearer {hub['tokens'][DIF]}"},
    )
    assert response.status_code == 201, response.get_json()
    # The record was pushed three years ago, when a ten-year-old was born three years earlier
    # than one is today.
    pushed_on = date.today() - timedelta(days=3 * 365)
    with db.database(app).sessions.begin() as session:
        record = select(Record.id).where(Record.local_id == "CHP-17").scalar_subquery()
        session.execute(
            update(RecordVersion)
            .where(RecordVersion.record_id == record)
            .values(pushed_at=datetime.combine(pushed_on, time(12), UTC))
        )
    result = reindex(hub["env"], "--json")
    assert json.loads(result.output)["profiles_refreshed"] == 1
    expected = profile_from_child(child, pushed_on).birth
    assert expected is not None
    with db.database(app).sessions() as session:
        stored = session.execute(
            select(ChildProfile.birth_earliest, ChildProfile.birth_latest).where(
                ChildProfile.local_id == "CHP-17"
            )
        ).one()
    assert tuple(stored) == (expected.earliest, expected.latest)
    assert json.loads(reindex(hub["env"], "--json").output)["changed"] is False


def test_a_transferred_records_entries_stay_with_the_agency_that_pushes_it_now(
    hub: dict[str, Any],
) -> None:
    app, client = hub["app"], hub["client"]
    # DIF's CHP-15 was transferred to COMAR, which took it over as COM-TAKEN.
    with db.database(app).sessions.begin() as session:
        record = session.scalars(select(Record).where(Record.local_id == "CHP-15")).one()
        session.execute(update(Record).where(Record.id == record.id).values(owner_agency=COMAR))
        transfer = RecordShare(
            record_id=record.id, from_agency=DIF, agency_id=COMAR, kind="transfer",
            status="accepted", categories=[],
        )  # fmt: skip
        session.add(transfer)
        session.flush()
        # It held the record once before under another case id (it came back): the latest
        # address is the one its pushes use.
        for local_id, age in (("COM-OLD", timedelta(days=30)), ("COM-TAKEN", timedelta(0))):
            session.add(
                RecordAddress(
                    agency_id=COMAR,
                    record_id=record.id,
                    local_id=local_id,
                    transfer_id=transfer.id,
                    created_at=datetime.now(UTC) - age,
                )
            )
    taken = case_record(
        "Quince", "Tomado", "2014-05-15", {"type": "agency_local", "value": "TAP-77"}
    )
    response = client.post(
        "/v1/records",
        json={"schema": "case-record/1", "local_id": "COM-TAKEN", "data": taken},
        headers={"Authorization": f"Bearer {hub['tokens'][COMAR]}"},
    )
    assert response.status_code == 201 and response.get_json()["version"] == 2
    pushed = index_state(app)

    result = reindex(hub["env"])
    assert result.exit_code == 0, result.output
    # The push stored it all, under COMAR: nothing lands under DIF, no profile of DIF's
    # is rewritten with what COMAR pushed.
    assert index_state(app) == pushed
    assert by_identifier(hub, "agency_local", "TAP-77", agency=DIF) == []
