""" "Withhold from" entries (``POST /v1/children/{child_id}/withholds``, ``GET`` the same path,
``POST /v1/withholds/{id}/revoke``): a consent officer who acts for the child records that some
categories are never disclosed to a person, an agency or a kind of actor — the alleged abuser,
the agency the child fled from. The entry counts from the very next decision, whatever a consent
permits; revoking it restores access at once. The reader it refuses is not told of it, and the
audit log names it by id only, never by its written reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    CLINIC,
    COMAR,
    OWNER,
    PROCURADURIA,
    adolescent_record,
    audit_entry,
    consent_document,
    consent_officer,
    deny,
    entries,
    legal_representative,
    procuraduria,
    push_child,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency, push
from werkzeug.test import TestResponse

from consent import CATEGORIES

PURPOSE = "legal_representation"
CONSENTED = ["identity", "contact_location", "family", "legal_status"]
#: Why the entry is recorded: case content that no reader and no audit entry may carry.
REASON = "El padre, denunciado por maltrato, contrató a este abogado para localizar a la niña."
REVOCATION = "La Fiscalía descartó la denuncia y el abogado dejó el caso."


@pytest.fixture
def pushed(app: Flask, client: FlaskClient) -> dict[str, Any]:
    return push_child(client, add_agency(app, OWNER))


@pytest.fixture
def people(app: Flask) -> dict[str, Any]:
    """The Procuraduría Chiapas (its officer, colleague and system), an officer of another
    state, two lawyers of the clinic and COMAR's system."""
    system = procuraduria(app)
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", kind="state_dif")
    add_agency(app, CLINIC, scopes=("records:read",), kind="civil_society")
    return {
        "officer": consent_officer(app, "co-chp-004"),
        "colleague": consent_officer(app, "co-chp-005"),
        "system": system,
        "elsewhere": consent_officer(app, "co-nl-001", "mx.nl.procuraduria"),
        "ana": legal_representative(app, "lic-ana"),
        "beto": legal_representative(app, "lic-beto"),
        "comar": add_agency(
            app, COMAR, jurisdiction="00", kind="refugee_commission", scopes=("records:read",)
        ),
    }


@pytest.fixture
def consented(client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]) -> None:
    """The Procuraduría's consent lets the clinic's lawyers and COMAR read four categories for
    the child's legal representation."""
    for grantee in (CLINIC, COMAR):
        document = consent_document(grantee, purposes=[PURPOSE], categories=CONSENTED)
        record_consent(client, people["officer"], pushed["child_id"], document)


def withhold(
    client: FlaskClient, caller: Any, child_id: str, **headers: str
) -> Callable[..., TestResponse]:
    """Posts its keyword arguments as a withhold entry for the child, as ``caller``."""

    def post(**body: Any) -> TestResponse:
        return client.post(
            f"/v1/children/{child_id}/withholds",
            json=body,
            headers={**caller.headers, **headers},
        )

    return post


def recorded(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def read(client: FlaskClient, reader: Any, record_id: str, language: str = "en") -> TestResponse:
    return client.get(
        f"/v1/records/{record_id}",
        query_string={"purpose": PURPOSE},
        headers={**reader.headers, "Accept-Language": language},
    )


def permitted(client: FlaskClient, reader: Any, record_id: str) -> list[str]:
    response = read(client, reader, record_id)
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["decision"]["categories"])


def revoke(client: FlaskClient, caller: Any, withhold_id: str, **body: Any) -> TestResponse:
    return client.post(
        f"/v1/withholds/{withhold_id}/revoke",
        json=body or {"reason": REVOCATION},
        headers=caller.headers,
    )


def listed(client: FlaskClient, caller: Any, child_id: str) -> TestResponse:
    return client.get(f"/v1/children/{child_id}/withholds", headers=caller.headers)


def assert_described(client: FlaskClient, name: str, answer: Any) -> None:
    """``answer`` is what ``/openapi.json`` says of it (its schema ``name``)."""
    from jsonschema import Draft202012Validator

    document = client.get("/openapi.json").get_json()
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    Draft202012Validator(schema).validate(answer)


def test_the_openapi_description_takes_the_fields_and_codes_the_route_takes(
    client: FlaskClient,
) -> None:
    import consent
    from exchange.api.consents import WITHHOLD_SCHEMA

    described = client.get("/openapi.json").get_json()["components"]["schemas"]
    request = described["WithholdRequest"]
    assert list(request["properties"]) == list(WITHHOLD_SCHEMA["properties"])
    assert request["properties"]["actor_kind"]["enum"] == list(consent.ACTOR_KINDS)


@pytest.mark.usefixtures("consented")
def test_an_entry_naming_the_alleged_abusers_lawyer_withholds_at_once_until_revoked(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id, record_id = pushed["child_id"], pushed["record_id"]
    beto, ana = people["beto"], people["ana"]
    assert permitted(client, beto, record_id) == CONSENTED  # the child is now known to the hub

    entry = recorded(
        withhold(client, people["officer"], child_id)(
            target={"person_id": beto.id},
            categories=["family", "contact_location"],
            reason=REASON,
        )
    )
    withhold_id = entry["id"]
    assert withhold_id.startswith("wth_")
    assert entry["withhold"]["state"] == "active"
    assert_described(client, "WithholdAnswer", entry)

    # The very next read leaves out where the child is and her family, though consent permits
    # them; the lawyer reads what is left without learning why.
    for language in ("es", "en"):
        response = read(client, beto, record_id, language)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        decision = body["decision"]
        assert decision["categories"] == ["identity", "legal_status"]
        assert {"family", "contact_location"} <= set(body["withheld_categories"])
        assert "withhold" not in {reason["code"] for reason in decision["reasons"]}
        assert "withhold_ids" not in decision
        text = response.get_data(as_text=True)
        for told in (withhold_id, REASON, "reserva", "withhold-from", "Withhold"):
            assert told not in text, told
        # The audit log names the entry that withheld them, for oversight (by id only).
        audited = audit_entry(app, decision["id"])
        assert audited["decision"]["withhold_ids"] == [withhold_id]
        assert audited["decision"]["categories"] == ["identity", "legal_status"]
        assert REASON not in str(audited)
    # The engine weighed the entry (the consent officer's dry run says so, with its id).
    dry_run = client.post(
        "/v1/decisions",
        json={"child_id": child_id, "actor": {"person_id": beto.id}, "purpose": PURPOSE},
        headers=people["officer"].headers,
    ).get_json()
    assert dry_run["withhold_ids"] == [withhold_id]
    assert "withhold" in {reason["code"] for reason in dry_run["reasons"]}

    # The other lawyer of the same clinic is not affected.
    assert permitted(client, ana, record_id) == CONSENTED

    # Revoked: the lawyer reads what the consent permits again, at once.
    revoked = revoke(client, people["colleague"], withhold_id)
    assert revoked.status_code == 200, revoked.get_json()
    assert_described(client, "WithholdAnswer", revoked.get_json())
    assert revoked.get_json()["withhold"]["state"] == "revoked"
    assert permitted(client, beto, record_id) == CONSENTED


@pytest.mark.usefixtures("consented")
def test_an_entry_of_every_category_refuses_the_read_without_saying_why(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id, record_id = pushed["child_id"], pushed["record_id"]
    beto = people["beto"]
    entry_id = recorded(
        withhold(client, people["officer"], child_id)(target={"person_id": beto.id}, reason=REASON)
    )["id"]

    # An access request waits for an officer like any other: denied at once, it would tell the
    # lawyer that an entry names them (the officer, who sees the entry, decides).
    asked = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": PURPOSE,
            "categories": ["identity"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=beto.headers,
    )
    assert asked.status_code == 201, asked.get_json()
    assert asked.get_json()["status"] == "pending"
    # The decision as the requester is told it: nothing in force permits this; no entry named.
    told = asked.get_json()["decision"]
    assert told["basis"] == "default_deny" and "withhold_ids" not in told
    assert asked.get_json()["message"]["en"].startswith(
        "The request awaits a consent officer's decision."
    )

    # Pending, it proves nothing (one is taken about any id): the 404 of an unknown record.
    assert read(client, beto, record_id).status_code == 404
    # Denied by the officer, the lawyer knows of the child: the refusal is 403, still silent.
    deny(client, people["officer"], asked.get_json()["id"])
    response = read(client, beto, record_id)
    assert response.status_code == 403, response.get_json()
    problem = response.get_json()
    assert problem["type"].endswith("/consent-denied")
    # Refused as when nothing permits it: the same basis and words, no entry named.
    told = problem["decision"]
    assert told["id"] == response.headers["Puente-Decision"] and told["result"] == "deny"
    assert told["basis"] == "default_deny" and "withhold_ids" not in told
    assert [reason["code"] for reason in told["reasons"]] == ["default_deny"]
    for word in (REASON, entry_id, "withhold", "reserva"):
        assert word not in response.get_data(as_text=True), word
    # The audit log keeps the basis of the refusal, and names the entry.
    refused = audit_entry(app, problem["decision"]["id"])["decision"]
    assert refused["basis"] == "withhold"
    assert refused["withhold_ids"] == [entry_id]


def test_a_request_an_entry_refuses_waits_and_cannot_be_approved_while_the_entry_stands(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id, officer, beto = pushed["child_id"], people["officer"], people["beto"]
    entry_id = recorded(
        withhold(client, officer, child_id)(
            target={"agency_id": CLINIC}, categories=["contact_location"], reason=REASON
        )
    )["id"]
    asked = client.post(
        "/v1/access-requests",
        json={
            "child_id": child_id,
            "purpose": PURPOSE,
            "categories": ["contact_location"],
            "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=beto.headers,
    ).get_json()
    assert asked["status"] == "pending"

    def approve(language: str = "en") -> TestResponse:
        return client.post(
            f"/v1/access-requests/{asked['id']}/decision",
            json={"approve": True, "reason": "Representación acreditada."},
            headers={**people["colleague"].headers, "Accept-Language": language},
        )

    # A grant would come after the entry in the engine's order: "granted" and every read
    # refused. The officer is told to revoke the entry first, or deny.
    refused = approve()
    assert refused.status_code == 409, refused.get_json()
    problem = refused.get_json()
    assert problem["withhold_ids"] == [entry_id] and problem["categories"] == ["contact_location"]
    assert "Revoke the withhold entry first" in problem["detail"]
    assert "Revoque primero la reserva" in approve("es").get_json()["detail"]
    seen = client.get(f"/v1/access-requests/{asked['id']}", headers=beto.headers).get_json()
    assert seen["status"] == "pending" and entry_id not in str(seen)

    assert revoke(client, officer, entry_id).status_code == 200
    approved = approve()
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["access"]["active"] is True


@pytest.mark.usefixtures("consented")
def test_an_entry_naming_an_agency_or_a_kind_of_actor(
    client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id, record_id = pushed["child_id"], pushed["record_id"]
    post = withhold(client, people["officer"], child_id)

    clinic = recorded(post(target={"agency_id": CLINIC}, categories=["family"], reason=REASON))
    for lawyer in (people["ana"], people["beto"]):
        assert "family" not in permitted(client, lawyer, record_id)
    assert permitted(client, people["comar"], record_id) == CONSENTED
    assert revoke(client, people["officer"], clinic["id"]).status_code == 200

    # Every refugee commission: COMAR, not the clinic.
    recorded(post(actor_kind="refugee_commission", categories=["identity"], reason=REASON))
    assert permitted(client, people["comar"], record_id) == [
        "contact_location",
        "family",
        "legal_status",
    ]
    assert permitted(client, people["ana"], record_id) == CONSENTED


def test_an_entry_recorded_for_a_child_merged_into_another_follows_it(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    from exchange import db
    from exchange.child_duplicates import merge_children

    document = adolescent_record("EXP-2")
    document["data"]["child"]["identifiers"] = []
    copy = push(client, add_agency(app, "mx.chp.tapachula.dif"), document).get_json()
    officer = people["officer"]
    entry = recorded(
        withhold(client, officer, copy["child_id"])(target={"person_id": "lic-beto"}, reason=REASON)
    )
    record_consent(
        client,
        officer,
        pushed["child_id"],
        consent_document(CLINIC, purposes=[PURPOSE], categories=CONSENTED),
    )
    assert permitted(client, people["beto"], pushed["record_id"]) == CONSENTED
    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            merge_children(session, pushed["child_id"], copy["child_id"], reason="same child")
        session.close()

    read_after = read(client, people["beto"], pushed["record_id"])
    assert read_after.status_code == 404  # every category withheld, and he never asked
    body = listed(client, officer, copy["child_id"]).get_json()
    assert body["child_id"] == pushed["child_id"]
    assert [item["id"] for item in body["withholds"]] == [entry["id"]]


def test_the_list_shows_active_and_past_entries_with_their_state(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id = pushed["child_id"]
    officer = people["officer"]
    post = withhold(client, officer, child_id)
    now = datetime.now(UTC)
    first = recorded(post(target={"agency_id": CLINIC}, categories=["health"], reason=REASON))
    later = recorded(
        post(
            actor_kind="foreign_authority",
            starts=(now + timedelta(days=2)).isoformat(),
            ends=(now + timedelta(days=30)).isoformat(),
            reason="Huyó del consulado de su país.",
        )
    )
    assert revoke(client, people["colleague"], first["id"]).status_code == 200

    response = listed(client, people["colleague"], child_id)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["child_id"] == child_id
    newest, oldest = body["withholds"]
    assert (newest["id"], oldest["id"]) == (later["id"], first["id"])
    assert newest["state"] == "not_started"
    assert newest["actor_kind"] == "foreign_authority" and newest["target"] is None
    # Recorded without categories: every one is listed, never an empty list.
    assert newest["categories"] == list(CATEGORIES) and newest["revocation"] is None
    assert oldest["state"] == "revoked"
    assert oldest["target"] == {"agency_id": CLINIC} and oldest["categories"] == ["health"]
    assert oldest["reason"] == REASON
    assert oldest["recorded_by"] == {"agency_id": PROCURADURIA, "person_id": officer.id}
    assert oldest["revocation"]["reason"] == REVOCATION
    assert oldest["revocation"]["revoked_by"] == {
        "agency_id": PROCURADURIA,
        "person_id": people["colleague"].id,
    }
    assert_described(client, "WithholdList", body)
    # The Procuraduría's system acts for the child too, and may read the list.
    assert listed(client, people["system"], child_id).status_code == 200

    # A second revocation is a conflict; an unknown entry is not found.
    assert revoke(client, officer, first["id"]).status_code == 409
    assert revoke(client, officer, "wth_000000000000000000000000").status_code == 404


def test_every_write_and_reading_is_audited_without_the_written_reasons(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    from exchange.fhir_audit import audit_entry_to_fhir

    child_id, officer = pushed["child_id"], people["officer"]
    entry = recorded(
        withhold(client, officer, child_id)(target={"person_id": "lic-beto"}, reason=REASON)
    )
    revoked = revoke(client, officer, entry["id"]).get_json()
    reading = listed(client, officer, child_id).get_json()

    made = audit_entry(app, entry["audit_entry"])
    ended = audit_entry(app, revoked["audit_entry"])
    for audited, detail in ((made, "withhold_recorded"), (ended, "withhold_revoked")):
        assert audited["action"] == "consent_changed"
        assert audited["outcome"] == "success"
        assert audited["child_id"] == child_id
        assert audited["object"] == {"type": "withhold", "id": entry["id"]}
        assert audited["reason_code"] == detail
        assert audited["actor"]["person_id"] == officer.id
        assert audit_entry_to_fhir(audited)["resourceType"] == "AuditEvent"
    read_entry = audit_entry(app, reading["audit_entry"])
    assert (read_entry["action"], read_entry["reason_code"]) == ("consents_read", "withholds")
    for audited in (made, ended, read_entry):
        assert REASON not in str(audited) and REVOCATION not in str(audited)
        assert "lic-beto" not in str(audited)  # whom it protects against is not in the log
    assert len(entries(app, "consent_changed")) == 2


def test_only_consent_officers_acting_for_the_child_record_and_revoke(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id = pushed["child_id"]
    missing = "nna_00000000000000000000"
    entry = recorded(
        withhold(client, people["officer"], child_id)(target={"agency_id": CLINIC}, reason=REASON)
    )
    before = len(entries(app, "consent_changed")), len(entries(app, "consents_read"))

    # Another state's officer: the same 404 as for a child (or entry) that does not exist.
    elsewhere = people["elsewhere"]
    for asked in (child_id, missing):
        body = {"target": {"agency_id": CLINIC}, "reason": REASON}
        assert withhold(client, elsewhere, asked)(**body).status_code == 404
        assert listed(client, elsewhere, asked).status_code == 404
    assert revoke(client, elsewhere, entry["id"]).status_code == 404
    assert REASON not in listed(client, elsewhere, child_id).get_data(as_text=True)

    # The Procuraduría's own system acts for the child, but the entry is a person's decision.
    system = people["system"]
    refused = withhold(client, system, child_id)(target={"agency_id": CLINIC}, reason=REASON)
    assert refused.status_code == 403, refused.get_json()
    assert revoke(client, system, entry["id"]).status_code == 403

    # A lawyer has no consent scope at all.
    lawyer = people["ana"]
    assert withhold(client, lawyer, child_id)(actor_kind="oversight", reason="x").status_code == 403
    assert listed(client, lawyer, child_id).status_code == 403
    assert revoke(client, lawyer, entry["id"]).status_code == 403

    after = len(entries(app, "consent_changed")), len(entries(app, "consents_read"))
    assert after == before
    assert listed(client, people["officer"], child_id).get_json()["withholds"][0]["state"] == (
        "active"
    )


def test_a_bad_entry_lists_every_failure_in_both_languages(
    client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    child_id, officer = pushed["child_id"], people["officer"]

    def failures(language: str, **body: Any) -> dict[str, str]:
        response = withhold(client, officer, child_id, **{"Accept-Language": language})(**body)
        assert response.status_code == 400, response.get_json()
        problem = response.get_json()
        assert problem["type"].endswith("/validation")
        found: dict[str, str] = {}
        for error in problem["errors"]:  # several failures may point at the same member
            found[error["pointer"]] = " ".join(
                filter(None, (found.get(error["pointer"]), error["message"]))
            )
        return found

    # Naming nobody: neither a target nor a kind of actor.
    for language, words in (("es", ("tipo de actor", "motivo")), ("en", ("actor kind", "reason"))):
        found = failures(language)
        assert list(found) == [""]
        assert all(word in found[""] for word in words), found
    spanish = failures("es", reason="x")
    english = failures("en", reason="x")
    assert list(spanish) == list(english) == [""]
    assert "al menos uno" in spanish[""] and "at least one" in english[""]

    every = {
        "target": {"agency_id": "Clinica Juridica", "role": "abuser"},
        "actor_kind": "alleged_abuser",
        "categories": ["salud", "health", "health"],
        "starts": "mañana",
        "reason": " ",
        "notes": "—",
    }
    for language in ("es", "en"):
        found = failures(language, **every)
        assert {
            "",
            "/target/agency_id",
            "/target/role",
            "/actor_kind",
            "/categories",
            "/categories/0",
            "/starts",
            "/reason",
        } <= set(found), found
    assert failures("es", **every)["/actor_kind"] != failures("en", **every)["/actor_kind"]

    # What the schema cannot know: an agency or person the hub does not know, a person of
    # another agency, an end before the start or in the past.
    now = datetime.now(UTC)
    for language, unknown in (("es", "no hay ninguna agencia"), ("en", "has no agency")):
        found = failures(language, target={"agency_id": "mx.chp.clinica"}, reason=REASON)
        assert unknown in found["/target/agency_id"]
    assert "/target/person_id" in failures("en", target={"person_id": "nadie"}, reason=REASON)
    other = failures("en", target={"agency_id": COMAR, "person_id": "lic-ana"}, reason=REASON)
    assert "withhold from nobody" in other["/target/person_id"]
    backwards = failures(
        "es",
        actor_kind="oversight",
        starts=(now + timedelta(days=2)).isoformat(),
        ends=(now + timedelta(days=1)).isoformat(),
        reason=REASON,
    )
    assert "posterior" in backwards["/ends"]
    past = failures(
        "en", actor_kind="oversight", ends=(now - timedelta(days=1)).isoformat(), reason=REASON
    )
    assert "past" in past["/ends"]
    assert listed(client, officer, child_id).get_json()["withholds"] == []


def test_a_data_key_rotation_reencrypts_the_written_reasons(
    app: Flask, client: FlaskClient, people: dict[str, Any], pushed: dict[str, Any]
) -> None:
    """Once rotated, the old key is reported unused and may be moved out: no reason may be
    left under it."""
    from exchange import db
    from exchange.consent_store import WithholdRow
    from exchange.crypto import data_keyring, generate_data_key, reencrypt_batches, rows_per_key

    officer = people["officer"]
    entry = recorded(
        withhold(client, officer, pushed["child_id"])(target={"agency_id": CLINIC}, reason=REASON)
    )
    with app.app_context():
        old_key = data_keyring(app).current().id
        new_key, _path = generate_data_key(app)
        assert sum(reencrypt_batches(db.database(app).sessions, data_keyring(app))) >= 2
        with db.database(app).sessions() as session:
            assert session.get_one(WithholdRow, entry["id"]).data_key_id == new_key
            assert old_key not in rows_per_key(session)
    [listed_entry] = listed(client, officer, pushed["child_id"]).get_json()["withholds"]
    assert listed_entry["reason"] == REASON
