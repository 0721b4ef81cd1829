"""What a read tells, and what it carries out, beyond the redacted data.

- A refusal for a hidden reason (a withhold entry naming the reader, an adolescent's objection
  it may not hear of) reads exactly like a refusal by a consent's deny (docs/consent.md §8.4).
- The record's envelope (local id, owner, source, who pushed) follows the categories of the
  data it repeats; an identifier that tells legal status needs ``legal_status``.
- A referral adds to what consent lets an agency read, never narrows it, and the dry run says
  the same as the read.
- Requests that ask something else than they seem to are refused: a repeated ``purpose``, an
  unknown member of a dry run, a consent naming an agency or person the hub does not know.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from consent_support import (
    OWNER,
    PersonClient,
    adolescent_record,
    audit_entry,
    consent_document,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, push, read, share

from consent import CATEGORIES, redact

NL = "mx.nl.dif"
TAPACHULA = "mx.chp.tapachula.dif"
CARE = "alternative_care"
HEARD_ON = "2025-03-14"  # the girl (born 2012-05-10) was 12: her objection counts


# -- helpers -----------------------------------------------------------------------------------


def second_child(client: FlaskClient, owner: AgencyClient) -> dict[str, Any]:
    """Another girl: the typical record without the identifiers that would link it to the
    first."""
    body = adolescent_record("EXP-2")
    body["data"]["child"]["names"]["given_names"] = "Otra Niña"
    body["data"]["child"]["identifiers"] = [{"type": "agency_local", "value": "EXP-2"}]
    response = push(client, owner, body)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def consent(
    client: FlaskClient,
    officer: PersonClient,
    child_id: str,
    grantee: str,
    *,
    purposes: list[str],
    categories: list[str],
    decision: str = "permit",
    actions: list[str] | None = None,
) -> str:
    """A consent whose base decision denies ``grantee``, with one provision that decides
    ``categories`` for ``purposes``."""
    document = consent_document(grantee, purposes=purposes, categories=categories, actions=actions)
    document["provision"][0]["decision"] = decision
    return str(record_consent(client, officer, child_id, document)["id"])


def withhold(
    client: FlaskClient, officer: PersonClient, child_id: str, agency: str, categories: list[str]
) -> str:
    response = client.post(
        f"/v1/children/{child_id}/withholds",
        json={
            "target": {"agency_id": agency},
            "categories": categories,
            "reason": "La niña denunció maltrato en esa institución.",
        },
        headers=officer.headers,
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def objection(
    client: FlaskClient, officer: PersonClient, child_id: str, agency: str, categories: list[str]
) -> str:
    response = client.post(
        f"/v1/children/{child_id}/views",
        json={
            "heard_on": HEARD_ON,
            "position": "objection",
            "heard_by": {"person_id": officer.id},
            "categories": categories,
            "about": [{"agency_id": agency}],
        },
        headers=officer.headers,
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def shape(told: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The told decision with ids replaced by their role (``B``) and the decision id left out:
    what a reader could compare between two children."""

    def plain(value: Any) -> Any:
        text = str(value)
        for real, name in names.items():
            text = text.replace(real, name)
        return re.sub(r"cns_[0-9a-f]+", "<other consent>", text)

    return {
        key: plain(value) if key != "reasons" else [plain(reason) for reason in value]
        for key, value in told.items()
        if key != "id"
    }


def told(client: FlaskClient, reader: AgencyClient, record_id: str, purpose: str) -> Any:
    return read(client, reader, record_id, purpose=purpose)


# -- 1. a refusal for a hidden reason reads like any other ------------------------------------


@pytest.mark.parametrize("hidden", ["withhold", "objection"])
def test_a_refusal_for_a_hidden_reason_reads_like_a_consents_deny(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    hidden: str,
) -> None:
    # Two girls with the same consents: A's base decision denies the NL DIF everything, B
    # permits it identity, family, contact and placement for alternative care. The first
    # girl's refusal of contact and placement is hidden from the NL DIF (a withhold entry naming
    # it, or her objection about it); the second's comes from a consent C that denies them.
    nl = add_agency(app, NL, jurisdiction="19", scopes=("records:read",))
    other = second_child(client, owner)
    asked = ["identity", "contact_location", "family", "placement"]  # in vocabulary order
    refused = ["contact_location", "placement"]
    answers, names = [], []
    for child, record in ((pushed, pushed), (other, other)):
        a = consent(
            client, officer, child["child_id"], NL, purposes=["health_care"], categories=["health"]
        )
        b = consent(client, officer, child["child_id"], NL, purposes=[CARE], categories=asked)
        names.append({a: "A", b: "B"})
        before = told(client, nl, record["record_id"], CARE)
        assert before.status_code == 200, before.get_json()
        assert before.get_json()["decision"]["categories"] == asked
        answers.append(before)
    # Without any refusal of contact and placement, both girls' reads tell the same.
    assert shape(answers[0].get_json()["decision"], names[0]) == shape(
        answers[1].get_json()["decision"], names[1]
    )
    entry = (withhold if hidden == "withhold" else objection)(
        client, officer, pushed["child_id"], NL, refused
    )
    names[1][
        consent(
            client,
            officer,
            other["child_id"],
            NL,
            purposes=[CARE],
            categories=refused,
            decision="deny",
        )
    ] = "C"

    reads = [told(client, nl, child["record_id"], CARE) for child in (pushed, other)]
    for response in reads:
        assert response.status_code == 200, response.get_json()
        decision = response.get_json()["decision"]
        assert decision["categories"] == ["identity", "family"]
        assert set(refused) <= set(decision["withheld"])
    hidden_told, plain_told = (response.get_json()["decision"] for response in reads)
    assert shape(hidden_told, names[0]) == shape(plain_told, names[1])
    # One plain refusal for everything not permitted, beside B's permit.
    assert [(r["code"], r["result"]) for r in hidden_told["reasons"]] == [
        ("consent", "permit"),
        ("default_deny", "deny"),
    ]
    assert hidden_told["reasons"][1]["categories"] == hidden_told["withheld"]
    text = reads[0].get_data(as_text=True)
    for word in (entry, "withhold", "objection", HEARD_ON, "reserva"):
        assert word not in text, word
    # The audit log keeps the decision whole.
    audited = audit_entry(app, hidden_told["id"])["decision"]
    assert entry in audited.get("withhold_ids", []) + audited.get("view_ids", [])


def test_a_denied_read_for_a_hidden_reason_reads_like_a_consents_deny(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    # Tapachula holds a referral for health care; for case management the consent's base
    # decision denies it everything. A withhold entry on identity must not split that refusal.
    tapachula = add_agency(app, TAPACHULA, scopes=("records:read",))
    other = second_child(client, owner)
    answers = []
    for child, hide in ((pushed, True), (other, False)):
        share(app, child["record_id"], from_agency=OWNER, to=TAPACHULA, purpose="health_care")
        consent(
            client,
            officer,
            child["child_id"],
            TAPACHULA,
            purposes=["health_care"],
            categories=["health"],
        )
        if hide:
            withhold(client, officer, child["child_id"], TAPACHULA, ["identity"])
        response = told(client, tapachula, child["record_id"], "case_management")
        assert response.status_code == 403, response.get_json()
        answers.append(response.get_json())
    for answer in answers:
        decision = answer["decision"]
        assert (decision["result"], decision["basis"]) == ("deny", "default_deny")
        [reason] = decision["reasons"]
        assert (reason["code"], reason["categories"]) == ("default_deny", list(CATEGORIES))
        assert "withhold_ids" not in decision and "consent_ids" not in decision
    assert answers[0]["detail"] == answers[1]["detail"]


# -- 2, 3. the envelope and identifiers follow the data's categories --------------------------


def test_the_envelope_is_given_under_the_categories_of_the_data_it_repeats(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    record_id, child_id = pushed["record_id"], pushed["child_id"]
    nl = add_agency(app, NL, jurisdiction="19", scopes=("records:read",))
    consent(client, officer, child_id, NL, purposes=["statistics"], categories=["health"])
    consent(client, officer, child_id, NL, purposes=[CARE], categories=["identity", "family"])
    # Statistics: never identity (hard rule), nor who handles the case.
    answers = [
        told(client, nl, record_id, "statistics").get_json(),
        client.get(
            f"/v1/children/{child_id}/records",
            query_string={"purpose": "statistics"},
            headers=nl.headers,
        ).get_json()["records"][0],
    ]
    for answer in answers:
        assert answer["decision"]["categories"] == ["health"]
        assert (answer["local_id"], answer["owner"], answer["source"]) == (None, None, None)
        assert "EXP-1" not in str(answer) and OWNER not in str(answer)
    versions = client.get(
        f"/v1/records/{record_id}/versions",
        query_string={"purpose": "statistics"},
        headers=nl.headers,
    ).get_json()["versions"]
    assert [(v["pushed_by"], v["signing_kid"]) for v in versions] == [(None, None)]
    # Identity permitted: the case id, not the agency handling the case.
    answer = told(client, nl, record_id, CARE).get_json()
    assert (answer["local_id"], answer["owner"], answer["source"]) == ("EXP-1", None, None)
    # The owner is given its envelope whole.
    own = read(client, owner, record_id).get_json()
    assert (own["local_id"], own["owner"], own["source"]) == ("EXP-1", OWNER, OWNER)


def test_an_identifier_that_tells_asylum_needs_legal_status(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    nl = add_agency(app, NL, jurisdiction="19", scopes=("records:read",))
    consent(client, officer, pushed["child_id"], NL, purposes=[CARE], categories=["identity"])
    consent(
        client,
        officer,
        pushed["child_id"],
        NL,
        purposes=["protection_measure"],
        categories=["identity", "legal_status"],
    )
    identity_only = told(client, nl, pushed["record_id"], CARE).get_json()
    types = [i["type"] for i in identity_only["data"]["child"]["identifiers"]]
    assert types == ["curp"]
    assert "COMAR-TAP" not in str(identity_only)
    with_status = told(client, nl, pushed["record_id"], "protection_measure").get_json()
    types = [i["type"] for i in with_status["data"]["child"]["identifiers"]]
    assert types == ["curp", "comar_case"]


def test_redaction_drops_an_object_whose_code_needs_a_category_not_permitted() -> None:
    leaves = {"/ids/*/type": "identity", "/ids/*/value": "identity", "/name": "identity"}
    by_value = {"/ids/*/type": {"asylum": "legal_status"}}
    document = {"name": "N", "ids": [{"type": "asylum", "value": "1"}, {"type": "x", "value": "2"}]}
    kept, withheld = redact(document, leaves, ["identity"], by_value)
    assert kept == {"name": "N", "ids": [{"type": "x", "value": "2"}]}
    assert withheld == ("legal_status",)
    kept, withheld = redact(document, leaves, ["identity", "legal_status"], by_value)
    assert kept == document and withheld == ()
    assert redact(document, leaves, ["identity"])[0] == document  # without the map: as before


# -- 4. a referral never narrows a read; the dry run agrees ----------------------------------


def dry_run(
    client: FlaskClient,
    officer: PersonClient,
    child_id: str,
    record_id: str,
    agency: str,
    purpose: str,
) -> dict[str, Any]:
    response = client.post(
        "/v1/decisions",
        json={
            "child_id": child_id,
            "actor": {"agency_id": agency},
            "purpose": purpose,
            "record_id": record_id,
        },
        headers=officer.headers,
    )
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def test_a_referral_of_some_categories_does_not_narrow_what_consent_permits(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    tapachula = add_agency(app, TAPACHULA, scopes=("records:read",))
    consent(
        client,
        officer,
        pushed["child_id"],
        TAPACHULA,
        purposes=["case_management"],
        categories=list(CATEGORIES),
        actions=["read", "refer"],
    )
    share(app, pushed["record_id"], from_agency=OWNER, to=TAPACHULA, categories=["identity"])
    response = told(client, tapachula, pushed["record_id"], "case_management")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["decision"]["categories"] == list(CATEGORIES)
    asked = dry_run(
        client, officer, pushed["child_id"], pushed["record_id"], TAPACHULA, "case_management"
    )
    assert (asked["result"], asked["categories"]) == ("permit", list(CATEGORIES))


def test_a_stale_referral_does_not_block_what_a_new_consent_permits(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # A referral for family tracing whose consent is gone; a new consent lets the NL DIF read
    # identity and family for that purpose (not refer).
    purpose = "family_tracing_reunification"
    nl = add_agency(app, NL, jurisdiction="19", scopes=("records:read",))
    share(app, pushed["record_id"], from_agency=OWNER, to=NL, purpose=purpose)
    consent(
        client,
        officer,
        pushed["child_id"],
        NL,
        purposes=[purpose],
        categories=["identity", "family"],
        actions=["read"],
    )
    response = told(client, nl, pushed["record_id"], purpose)
    assert response.status_code == 200, response.get_json()
    decision = response.get_json()["decision"]
    assert decision["categories"] == ["identity", "family"]
    asked = dry_run(client, officer, pushed["child_id"], pushed["record_id"], NL, purpose)
    assert (asked["result"], asked["categories"]) == ("permit", ["identity", "family"])


def test_what_only_a_live_referral_permits_is_read_and_the_dry_run_says_so(
    app: Flask, client: FlaskClient, officer: PersonClient, pushed: dict[str, Any]
) -> None:
    # Consent lets Tapachula receive a referral of health (refer), not read it directly.
    tapachula = add_agency(app, TAPACHULA, scopes=("records:read",))
    consent(
        client,
        officer,
        pushed["child_id"],
        TAPACHULA,
        purposes=["health_care"],
        categories=["identity", "health"],
        actions=["refer"],
    )
    assert told(client, tapachula, pushed["record_id"], "health_care").status_code == 404
    share(
        app,
        pushed["record_id"],
        from_agency=OWNER,
        to=TAPACHULA,
        purpose="health_care",
        categories=["health"],
    )
    response = told(client, tapachula, pushed["record_id"], "health_care")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["decision"]["categories"] == ["health"]
    asked = dry_run(
        client, officer, pushed["child_id"], pushed["record_id"], TAPACHULA, "health_care"
    )
    assert (asked["result"], asked["categories"]) == ("permit", ["health"])


# -- 5. the refusal floor's default ----------------------------------------------------------


def test_the_default_refusal_floor_covers_a_refused_read_on_postgresql() -> None:
    from exchange.config import DEFAULTS

    assert DEFAULTS["READ_REFUSAL_FLOOR"] >= 0.15


# -- 6, 7, 8. requests that would ask something else than they seem to -----------------------


@pytest.mark.parametrize(
    ("where", "pointer"),
    [
        ("grantee", "/grantee/0/agency_id"),
        ("deny", "/provision/1/actor/0/agency_id"),
        ("person", "/provision/1/actor/0/person_id"),
    ],
)
def test_a_consent_naming_an_unknown_agency_or_person_is_refused(
    app: Flask,
    client: FlaskClient,
    officer: PersonClient,
    pushed: dict[str, Any],
    where: str,
    pointer: str,
) -> None:
    add_agency(app, NL, jurisdiction="19", scopes=("records:read",))
    document = consent_document(NL, purposes=[CARE], categories=["identity"])
    if where == "grantee":
        document["grantee"] = [{"agency_id": "mx.nl.dfi"}]
    else:
        actor = {"agency_id": "mx.nl.dfi"} if where == "deny" else {"person_id": "lic-nadie"}
        document["provision"].append(
            {"decision": "deny", "actor": [actor], "data_category": ["contact_location"]}
        )
    for language, word in (("es", "En este nodo no hay"), ("en", "This hub has no")):
        response = client.post(
            f"/v1/children/{pushed['child_id']}/consents",
            json=document,
            headers={**officer.headers, "Accept-Language": language},
        )
        assert response.status_code == 400, response.get_json()
        [error] = [e for e in response.get_json()["errors"] if e["pointer"] == pointer]
        assert word in error["message"]


@pytest.mark.parametrize("extra", [{"bogus": 1}, {"record_ids": ["rec_x"]}])
def test_a_dry_run_with_an_unknown_member_is_refused(
    client: FlaskClient, officer: PersonClient, pushed: dict[str, Any], extra: dict[str, Any]
) -> None:
    response = client.post(
        "/v1/decisions",
        json={"child_id": pushed["child_id"], "purpose": "case_management", **extra},
        headers=officer.headers,
    )
    assert response.status_code == 400, response.get_json()
    [member] = extra
    assert any(
        member in error["pointer"] + error["message"] for error in response.get_json()["errors"]
    )


def test_a_repeated_purpose_is_refused_on_every_read_route(
    client: FlaskClient, owner: AgencyClient, pushed: dict[str, Any]
) -> None:
    query = "purpose=case_management&purpose=statistics"
    for path in (
        f"/v1/records/{pushed['record_id']}",
        f"/v1/records/{pushed['record_id']}/versions",
        f"/v1/children/{pushed['child_id']}/records",
    ):
        response = client.get(f"{path}?{query}", headers=owner.headers)
        assert response.status_code == 400, (path, response.get_json())
        [error] = response.get_json()["errors"]
        assert error["parameter"] == "purpose"


# -- 9. what a referral and a transfer answer ---------------------------------------------------


def test_a_referral_names_the_categories_it_does_not_carry(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    add_agency(app, TAPACHULA, scopes=("records:read",))
    consent(
        client,
        officer,
        pushed["child_id"],
        TAPACHULA,
        purposes=["health_care"],
        categories=["identity", "placement"],
        actions=["refer"],
    )
    response = client.post(
        f"/v1/records/{pushed['record_id']}/referrals",
        json={
            "to": TAPACHULA,
            "purpose": "health_care",
            "categories": ["identity", "health", "placement"],
        },
        headers=owner.headers,
    )
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["categories"] == ["identity", "placement"]
    assert answer["withheld_categories"] == ["health"]


def test_the_new_owner_reads_the_local_id_it_gave_when_accepting(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    officer: PersonClient,
    pushed: dict[str, Any],
) -> None:
    tapachula = add_agency(app, TAPACHULA)
    consent(
        client,
        officer,
        pushed["child_id"],
        TAPACHULA,
        purposes=["case_management"],
        categories=list(CATEGORIES),
        actions=["read", "transfer"],
    )
    offered = client.post(
        f"/v1/records/{pushed['record_id']}/transfers",
        json={"to": TAPACHULA, "reason": "La familia se trasladó."},
        headers=owner.headers,
    )
    assert offered.status_code == 201, offered.get_json()
    accepted = client.post(
        f"/v1/transfers/{offered.get_json()['id']}/accept",
        json={"local_id": "TAP-2026-77"},
        headers=tapachula.headers,
    )
    assert accepted.status_code == 200, accepted.get_json()
    answer = read(client, tapachula, pushed["record_id"]).get_json()
    assert (answer["local_id"], answer["owner"]) == ("TAP-2026-77", TAPACHULA)
