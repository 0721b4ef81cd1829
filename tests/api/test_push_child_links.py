"""Pushes naming a child (``child_id``): only a child the pushing agency may know of — the rule
child search answers by — and otherwise the very answer a child id that does not exist gets, so
a push is no existence oracle and attaches no record to another agency's child. Linking by the
child's identifiers (CURP) follows the same rule: a CURP links an agency's first record of a
child it may know; another agency's child's CURP starts a child of the agency's own and a
suggestion for a person to merge. After a merge, push answers name the surviving child, as
reads do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from consent_support import (
    COMAR,
    OWNER,
    adolescent_record,
    consent_document,
    procuraduria,
    push_child,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import (
    AgencyClient,
    add_agency,
    changed,
    envelope,
    example,
    push,
    push_bulk,
    read,
    rows,
    share,
)
from sqlalchemy import func, select

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.child_duplicates import merge_children
from exchange.children import ChildDuplicateSuggestion
from exchange.records import Record, RecordVersion

OTHER = "mx.nl.dif"
NOBODY = "nna_00000000000000000000"
CURP = "EEFK080702HNEJCVA9"  # the typical example's (and adolescent_record's) CURP


@pytest.fixture
def other(app: Flask) -> AgencyClient:
    return add_agency(app, OTHER, jurisdiction="19")


def count(app: Flask, model: type) -> int:
    return int(rows(app, select(func.count()).select_from(model))[0][0])


def comparable(problem: dict[str, Any], child_id: str) -> str:
    """The problem as a client sees it, with the id it named blanked out."""
    kept = {k: v for k, v in problem.items() if k not in {"instance", "request_id"}}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False).replace(child_id, "<child>")


def searched(client: FlaskClient, agency: AgencyClient, purpose: str = "case_management") -> Any:
    response = client.post(
        "/v1/children/search",
        json={"purpose": purpose, "identifier": {"type": "curp", "value": CURP}},
        headers=agency.headers,
    )
    assert response.status_code == 200, response.get_json()
    return [candidate["child_id"] for candidate in response.get_json()["candidates"]]


def minimal(local_id: str, **extra: Any) -> dict[str, Any]:
    return envelope(local_id, example(), **extra)


def refer_to_other(
    app: Flask,
    client: FlaskClient,
    pushed: dict[str, Any],
    categories: list[str] | None = None,
    purpose: str = "case_management",
) -> None:
    """A referral of the record to :data:`OTHER` as the hub makes one: the consent engine
    permits it (here a consent for ``refer``), and the referral names ``categories``."""
    record_consent(
        client,
        procuraduria(app),
        pushed["child_id"],
        consent_document(OTHER, actions=["refer"], purposes=[purpose], categories=categories),
    )
    share(
        app, pushed["record_id"], from_agency=OWNER, to=OTHER, purpose=purpose,
        categories=categories,
    )  # fmt: skip


# -- no existence oracle ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["es", "en"])
def test_another_agencys_child_is_answered_as_a_child_that_does_not_exist(
    app: Flask, client: FlaskClient, owner: AgencyClient, other: AgencyClient, lang: str
) -> None:
    child_id = push_child(client, owner)["child_id"]
    headers = {"Accept-Language": lang}
    theirs = push(client, other, minimal("ORC-1", child_id=child_id), **headers)
    missing = push(client, other, minimal("ORC-2", child_id=NOBODY), **headers)
    assert theirs.status_code == missing.status_code == 400
    assert theirs.mimetype == missing.mimetype == "application/problem+json"
    assert comparable(theirs.get_json(), child_id) == comparable(missing.get_json(), NOBODY)
    assert theirs.get_json()["errors"][0]["pointer"] == "/child_id"
    # Nothing was attached to the child, and the other agency still cannot find it.
    assert count(app, Record) == 1 and count(app, RecordVersion) == 1
    assert searched(client, other) == []


def test_a_bulk_line_naming_another_agencys_child_is_answered_as_a_missing_child(
    app: Flask, client: FlaskClient, owner: AgencyClient, other: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    response, results = push_bulk(
        client,
        other,
        [
            minimal("B-1"),
            minimal("B-2", child_id=child_id),
            minimal("B-3", child_id=NOBODY),
            envelope("B-4", changed(example(), "4")),
        ],
    )
    assert response.status_code == 200
    assert [r["status"] for r in results] == ["stored", "rejected", "rejected", "stored"]
    theirs, missing = results[1], results[2]
    assert {**theirs, "line": 0} == json.loads(
        json.dumps({**missing, "line": 0}).replace(NOBODY, child_id)
    )
    assert child_id not in {r.get("child_id") for r in results}
    assert {local for (local,) in rows(app, select(Record.local_id))} == {"EXP-1", "B-1", "B-4"}
    assert searched(client, other) == []


# -- who may name a child -----------------------------------------------------------------------


def test_an_agency_names_the_child_of_its_own_records(
    client: FlaskClient, owner: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    again = push(client, owner, minimal("EXP-2", child_id=child_id))
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["child_id"] == child_id


def test_a_record_referred_to_an_agency_lets_it_name_the_child(
    app: Flask, client: FlaskClient, owner: AgencyClient, other: AgencyClient
) -> None:
    pushed = push_child(client, owner)
    assert push(client, other, minimal("R-1", child_id=pushed["child_id"])).status_code == 400
    refer_to_other(app, client, pushed)
    linked = push(client, other, minimal("R-1", child_id=pushed["child_id"]))
    assert linked.status_code == 201, linked.get_json()
    assert linked.get_json()["child_id"] == pushed["child_id"]


def test_a_referral_without_identity_does_not_let_its_holder_find_the_child(
    app: Flask, client: FlaskClient, owner: AgencyClient, other: AgencyClient
) -> None:
    """A referral for health care that names only ``health``: reading it shows no name, date
    of birth or identifier, so searching must not confirm them either."""
    pushed = push_child(client, owner)
    refer_to_other(app, client, pushed, categories=["health"], purpose="health_care")
    assert searched(client, other, "health_care") == []
    assert searched(client, other, "case_management") == []
    query = {
        "purpose": "health_care",
        "name": {"given": "Kevin Josué", "family": "Ejemplo Ficticio"},
        "date_of_birth": "2012-05-10",
    }
    by_name = client.post("/v1/children/search", json=query, headers=other.headers)
    assert by_name.status_code == 200 and by_name.get_json()["candidates"] == []
    # The same query finds the child for the agency responsible for it.
    found = client.post("/v1/children/search", json=query, headers=owner.headers).get_json()
    assert [c["child_id"] for c in found["candidates"]] == [pushed["child_id"]]
    assert push(client, other, minimal("R-1", child_id=pushed["child_id"])).status_code == 400


def test_a_referral_naming_identity_lets_its_holder_find_the_child_for_its_purpose(
    app: Flask, client: FlaskClient, owner: AgencyClient, other: AgencyClient
) -> None:
    pushed = push_child(client, owner)
    refer_to_other(app, client, pushed, categories=["identity", "health"], purpose="health_care")
    assert searched(client, other, "health_care") == [pushed["child_id"]]
    assert searched(client, other, "case_management") == []


def test_naming_the_records_own_child_changes_nothing_and_answers_the_stored_version(
    client: FlaskClient, owner: AgencyClient
) -> None:
    first = push(client, owner, minimal("U-1")).get_json()
    again = push(client, owner, minimal("U-1", child_id=first["child_id"]))
    assert again.status_code == 200, again.get_json()
    answer = again.get_json()
    assert answer["status"] == "unchanged" and answer["version"] == 1
    assert answer["body_sha256"] == first["body_sha256"]  # the version stored, not the body sent


def test_consent_for_identity_for_any_purpose_lets_an_agency_name_the_child(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    officer = procuraduria(app)
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    child_id = push_child(client, owner)["child_id"]
    # Without consent COMAR may not know of the child: naming it is refused as unknown.
    refused = push(client, comar, minimal("COM-1", child_id=child_id))
    assert refused.status_code == 400
    assert refused.get_json()["errors"][0]["pointer"] == "/child_id"
    # A consent for its own purpose (asylum) lets COMAR find the child, and so link its own
    # record to it rather than start a second child someone would have to merge.
    record_consent(
        client,
        officer,
        child_id,
        consent_document(COMAR, purposes=["asylum_procedure"], categories=["identity"]),
    )
    assert searched(client, comar, "asylum_procedure") == [child_id]
    linked = push(client, comar, minimal("COM-1", child_id=child_id))
    assert linked.status_code == 201, linked.get_json()
    assert linked.get_json()["child_id"] == child_id


def test_a_curp_of_another_agencys_child_starts_a_child_of_its_own_for_a_person_to_merge(
    app: Flask, client: FlaskClient, owner: AgencyClient, other: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    # Having (or guessing) the CURP tells the other agency nothing and attaches it to nothing:
    # its record starts a child of its own ...
    first = push(client, other, adolescent_record("NL-1"))
    assert first.status_code == 201, first.get_json()
    own = first.get_json()["child_id"]
    assert own != child_id
    assert searched(client, other) == [own]
    # ... which its later records with the same CURP join ...
    second = push(client, other, adolescent_record("NL-2"))
    assert second.get_json()["child_id"] == own
    # ... and a person is asked to merge the two (a conflict on the CURP).
    suggested = rows(
        app,
        select(
            ChildDuplicateSuggestion.child_id,
            ChildDuplicateSuggestion.other_child_id,
            ChildDuplicateSuggestion.reason,
            ChildDuplicateSuggestion.identifier_kind,
        ),
    )
    assert [tuple(row) for row in suggested] == [(own, child_id, "conflict", "curp")]
    # Once merged, both agencies' records are of one child, and the other agency's next
    # record with the CURP links to it.
    merge(app, child_id, own)
    third = push(client, other, adolescent_record("NL-3"))
    assert third.get_json()["child_id"] == child_id


@pytest.mark.parametrize("status", ["rejected", "cancelled"])
def test_a_transfer_refused_or_withdrawn_gives_the_agency_no_hold_on_the_child(
    app: Flask, client: FlaskClient, owner: AgencyClient, other: AgencyClient, status: str
) -> None:
    pushed = push_child(client, owner)
    share(app, pushed["record_id"], from_agency=OWNER, to=OTHER, kind="transfer", status=status)
    assert searched(client, other) == []
    first = push(client, other, adolescent_record("NL-1"))
    assert first.get_json()["child_id"] != pushed["child_id"]
    # It was offered the record, so it knows the record exists (a read says why it may not).
    assert read(client, other, pushed["record_id"]).status_code == 403


def with_identifiers(local_id: str, *identifiers: dict[str, str]) -> dict[str, Any]:
    record = adolescent_record(local_id)
    record["data"]["child"]["identifiers"] = list(identifiers)
    return record


def test_an_identifier_its_own_child_holds_keeps_leading_to_that_child(
    client: FlaskClient, owner: AgencyClient, other: AgencyClient
) -> None:
    unhcr = {"type": "unhcr_individual", "value": "487-21C01234"}
    curp = {"type": "curp", "value": CURP}
    holder = push(client, other, with_identifiers("NL-R1", unhcr)).get_json()["child_id"]
    push_child(client, owner)  # the owner's child holds the CURP
    # The other agency's record with the owner's CURP starts a child of its own ...
    own = push(client, other, with_identifiers("NL-R2", curp)).get_json()["child_id"]
    # ... and one with both numbers joins it (the CURP's own link) with a conflict on the
    # UNHCR number, which its own child NL-R1 holds ...
    both = push(client, other, with_identifiers("NL-R3", curp, unhcr)).get_json()["child_id"]
    assert own == both != holder
    # ... but that number still leads to the child that holds it, not to the newer one.
    later = push(client, other, with_identifiers("NL-R4", unhcr)).get_json()["child_id"]
    assert later == holder


def test_a_bulk_push_with_another_agencys_curp_gives_one_child_of_its_own(
    client: FlaskClient, owner: AgencyClient, other: AgencyClient
) -> None:
    child_id = push_child(client, owner)["child_id"]
    response, results = push_bulk(
        client, other, [adolescent_record("NL-1"), adolescent_record("NL-2")]
    )
    assert response.status_code == 200
    assert [r["status"] for r in results] == ["stored", "stored"]
    assert results[0]["child_id"] == results[1]["child_id"] != child_id


def test_an_agency_that_may_know_the_child_links_its_first_record_by_the_curp(
    app: Flask, client: FlaskClient, owner: AgencyClient, other: AgencyClient
) -> None:
    pushed = push_child(client, owner)
    refer_to_other(app, client, pushed)
    first = push(client, other, adolescent_record("NL-1"))
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["child_id"] == pushed["child_id"]
    assert count(app, ChildDuplicateSuggestion) == 0


# -- after a merge, answers name the surviving child --------------------------------------------


def merge(app: Flask, into: str, merged: str) -> None:
    with app.app_context(), db.database(app).sessions() as session:
        merge_children(session, into, merged, reason="the same child")
        session.commit()


def test_push_answers_name_the_surviving_child_after_a_merge(
    app: Flask, client: FlaskClient, owner: AgencyClient
) -> None:
    keep = push(client, owner, minimal("KEEP")).get_json()
    first = push(client, owner, minimal("GONE"), **{"Idempotency-Key": "gone-v1"}).get_json()
    gone = first["child_id"]
    assert gone != keep["child_id"]
    merge(app, keep["child_id"], gone)
    survivor = keep["child_id"]

    stored = push(client, owner, envelope("GONE", changed(example(), "v2")))
    assert stored.status_code == 201
    assert (stored.get_json()["version"], stored.get_json()["child_id"]) == (2, survivor)
    unchanged = push(client, owner, envelope("GONE", changed(example(), "v2")))
    assert unchanged.get_json()["status"] == "unchanged"
    assert unchanged.get_json()["child_id"] == survivor
    _, lines = push_bulk(
        client,
        owner,
        [envelope("GONE", changed(example(), "v3")), envelope("GONE", changed(example(), "v3"))],
    )
    assert [(r["status"], r["child_id"]) for r in lines] == [
        ("stored", survivor),
        ("unchanged", survivor),
    ]
    # The first answer, given again for its key, names the child the record is now.
    replayed = push(client, owner, minimal("GONE"), **{"Idempotency-Key": "gone-v1"})
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json() == {**first, "child_id": survivor}
    # A new record naming the merged child lands on the survivor.
    named = push(client, owner, minimal("NEW", child_id=gone))
    assert named.status_code == 201, named.get_json()
    assert named.get_json()["child_id"] == survivor
    # As reads and the audit log say.
    read_back = read(client, owner, stored.get_json()["record_id"]).get_json()
    assert read_back["child_id"] == survivor
    [(entry,)] = rows(
        app, select(AuditEntry.entry).where(AuditEntry.id == stored.get_json()["audit_entry"])
    )
    assert json.loads(entry)["child_id"] == survivor
