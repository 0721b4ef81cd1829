"""Referring a record to an agency of another hub (docs/federation.md §6): the holding hub
refers, its worker announces the referral to the peer hub as a signed ``referral`` envelope, the
peer hub tells its agency and lists the referral, and the agency reads the record through a
lookup naming the referral, decided and audited on the holding hub.

Two hubs as in :mod:`tests.api.test_federation`: the holding hub (Chiapas) on each backend, the
federal hub (COMAR's) on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from consent_support import (
    COMAR,
    INM,
    OWNER,
    audit_entry,
    consent_document,
    consent_officer,
    entries,
    record_consent,
)
from records_support import add_agency
from sqlalchemy import select

from exchange import db
from exchange.federation_received import ReceivedReferral
from exchange.federation_referrals import PeerReferral
from exchange.outbox import OutboxMessage
from exchange.peers import disable_peer, set_url
from exchange.records import Record
from tests.api.test_federation import (
    ASKER_ID,
    HOLDER_ID,
    LOOKUP_SCOPES,
    Federation,
    deliver,
    outbox,
    problem,
    route_envelopes,
    signed_by,
    to_the_asker,
)
from tests.api.test_federation import fed as two_hubs  # noqa: F401 - a fixture

PURPOSE = "asylum_procedure"


@pytest.fixture
def fed(two_hubs: Federation) -> Federation:  # noqa: F811 - the imported fixture, by another name
    return two_hubs


def record_id(fed: Federation) -> str:
    with db.database(fed.holder).sessions() as session:
        return str(session.scalars(select(Record.id)).one())


def permit_referral(fed: Federation, categories: list[str] | None = None) -> str:
    """The child's Procuraduría consents to referring the child's data to COMAR (not to reading
    it otherwise: what COMAR reads, it reads through the referral)."""
    officer = consent_officer(fed.holder, "oficial-chp")
    document = consent_document(COMAR, actions=["refer"], purposes=[PURPOSE], categories=categories)
    return str(record_consent(fed.holder_client, officer, fed.child_id, document)["id"])


def refer(fed: Federation, to: str = COMAR, categories: list[str] | None = None) -> Any:
    return fed.holder_client.post(
        f"/v1/records/{record_id(fed)}/referrals",
        json={"to": to, "purpose": PURPOSE, "categories": categories or ["identity"]},
        headers=fed.owner.headers,
    )


def shares(fed: Federation) -> list[dict[str, Any]]:
    response = fed.holder_client.get("/v1/shares", headers=fed.owner.headers)
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["shares"])


def read_by_referral(fed: Federation, share_id: str, **changes: Any) -> Any:
    agency = changes.pop("agency", fed.comar)
    body = {"hub": HOLDER_ID, "purpose": PURPOSE, "referral": share_id, **changes}
    return fed.asker_client.post("/v1/federation/lookups", json=body, headers=agency.headers)


def referred(fed: Federation, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """COMAR is referred the record's identity and legal status, and its hub is told."""
    route_envelopes(fed, monkeypatch)
    permit_referral(fed, ["identity", "legal_status", "health"])
    response = refer(fed, categories=["identity", "legal_status"])
    assert response.status_code == 201, response.get_json()
    assert deliver(fed.holder).delivered == 1
    return dict(response.get_json())


# -- the whole flow ----------------------------------------------------------------------------


def test_a_record_referred_to_a_peers_agency_is_read_through_its_own_hub(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = route_envelopes(fed, monkeypatch)
    permit_referral(fed, ["identity", "legal_status", "health"])
    response = refer(fed, categories=["identity", "legal_status"])
    assert response.status_code == 201, response.get_json()
    share = response.get_json()
    assert (share["to"], share["hub"], share["kind"], share["status"]) == (
        COMAR,
        ASKER_ID,
        "referral",
        "accepted",
    )
    assert share["categories"] == ["identity", "legal_status"]
    assert share["withheld_categories"] == []
    # Audited as a local referral, its target the agency and its hub.
    made = audit_entry(fed.holder, share["audit_entry"])
    assert made["target"] == {"agency_id": COMAR, "hub": ASKER_ID}
    assert made["outcome"] == "success" and made["reason_code"] == f"to.{COMAR}"
    # The owner sees it, not yet told to the peer hub.
    [listed] = shares(fed)
    assert (listed["id"], listed["hub"], listed["notice"]) == (share["id"], ASKER_ID, "pending")

    assert deliver(fed.holder).delivered == 1
    [claims] = [c for _url, c in sent if c["type"] == "referral"]
    assert claims["aud"] == ASKER_ID
    [queued] = outbox(fed.holder)
    assert claims["body"] == {
        "share_id": share["id"],
        "record_id": share["record_id"],
        "from": OWNER,
        "to": COMAR,
        "purpose": PURPOSE,
        "categories": ["identity", "legal_status"],
        "created_at": share["created_at"],
        "notice_id": queued.id,
    }
    assert shares(fed)[0]["notice"] == "delivered"

    # The peer hub tells its agency, naming the hub, and lists the referral.
    inbox = fed.asker_client.get("/v1/notifications", headers=fed.comar.headers).get_json()
    [notice] = inbox["notifications"]
    assert notice["event"] == "record.referred"
    assert notice["payload"]["hub"] == HOLDER_ID
    assert notice["payload"]["share_id"] == share["id"]
    assert notice["payload"]["how_to_read"]["es"] and notice["payload"]["how_to_read"]["en"]
    listing = fed.asker_client.get("/v1/federation/referrals", headers=fed.comar.headers)
    [received] = listing.get_json()["referrals"]
    assert {k: received[k] for k in ("hub", "share_id", "record_id", "from", "purpose")} == {
        "hub": HOLDER_ID,
        "share_id": share["id"],
        "record_id": share["record_id"],
        "from": OWNER,
        "purpose": PURPOSE,
    }
    assert received["categories"] == ["identity", "legal_status"] and received["received_at"]
    [got] = [
        e
        for e in entries(fed.asker, "federation_envelope_received")
        if e["reason_code"] == "referral"
    ]
    assert got["target"] == {"hub": HOLDER_ID} and got["actor"]["client_id"] == f"hub:{HOLDER_ID}"

    # COMAR reads the record through its hub: what the referral gives, nothing more.
    answer = read_by_referral(fed, share["id"])
    assert answer.status_code == 200, answer.get_json()
    [record] = answer.get_json()["records"]
    assert record["record_id"] == share["record_id"]
    assert set(record["decision"]["categories"]) == {"identity", "legal_status"}
    assert "health" in record["withheld_categories"] and "health" not in record["data"]
    # The holder audits the read as any lookup's.
    [read] = [e for e in entries(fed.holder, "record_read") if e["actor"].get("agency_id") == COMAR]
    assert read["actor"]["client_id"] == f"hub:{ASKER_ID}" and read["outcome"] == "success"
    assert read["record_id"] == share["record_id"] and read["purpose"] == PURPOSE
    lookups = [
        e
        for e in entries(fed.holder, "federation_envelope_received")
        if e["reason_code"] == "lookup"
    ]
    assert len(lookups) == 1


def test_only_the_referrals_categories_are_given(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_envelopes(fed, monkeypatch)
    permit_referral(fed)  # every category may be referred
    share = refer(fed, categories=["identity"]).get_json()
    deliver(fed.holder)
    [record] = read_by_referral(fed, share["id"]).get_json()["records"]
    assert record["decision"]["categories"] == ["identity"]
    assert "legal_status" in record["withheld_categories"]


# -- sending -----------------------------------------------------------------------------------


def test_consent_refusing_the_referral_keeps_nothing(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_envelopes(fed, monkeypatch)
    body = problem(refer(fed), 403, "consent-denied")
    assert body["decision"]["result"] == "deny"
    with db.database(fed.holder).sessions() as session:
        assert session.scalars(select(PeerReferral)).all() == []
    assert outbox(fed.holder) == [] and shares(fed) == []
    [refused] = entries(fed.holder, "record_referred")
    assert refused["outcome"] == "denied" and refused["target"]["hub"] == ASKER_ID


def test_a_referral_to_an_agency_of_a_disabled_or_unknown_hub_is_refused(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_envelopes(fed, monkeypatch)
    permit_referral(fed)
    unknown = problem(refer(fed, to="mx.zzz.comar"), 400, "validation")
    assert unknown["errors"][0]["pointer"] == "/to"
    with fed.holder.app_context(), db.database(fed.holder).sessions.begin() as session:
        disable_peer(session, ASKER_ID)
    disabled = problem(refer(fed), 400, "validation")
    [error] = disabled["errors"]
    assert error["pointer"] == "/to" and f"puente peer enable {ASKER_ID}" in error["message"]
    assert outbox(fed.holder) == []


def test_a_transfer_to_a_peers_agency_is_still_refused_saying_a_referral_is_possible(
    fed: Federation,
) -> None:
    response = fed.holder_client.post(
        f"/v1/records/{record_id(fed)}/transfers",
        json={"to": COMAR, "reason": "Cambio de residencia."},
        headers={**fed.owner.headers, "Accept-Language": "en"},
    )
    [error] = problem(response, 400, "validation")["errors"]
    assert error["pointer"] == "/to"
    assert "cannot be transferred" in error["message"] and "can be referred" in error["message"]


# -- announcing --------------------------------------------------------------------------------


def test_a_peer_that_is_down_gets_the_referral_later_and_once(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = {"https://fed.puente.test/v1/federation/envelopes"}
    route_envelopes(fed, monkeypatch, down=down)
    permit_referral(fed)
    share = refer(fed).get_json()
    assert deliver(fed.holder).retrying == 1
    assert shares(fed)[0]["notice"] == "failing"
    down.clear()
    assert deliver(fed.holder).delivered == 1
    assert deliver(fed.holder).handled == 0
    assert shares(fed)[0]["notice"] == "delivered"
    inbox = fed.asker_client.get("/v1/notifications", headers=fed.comar.headers).get_json()
    assert [n["payload"]["share_id"] for n in inbox["notifications"]] == [share["id"]]


def test_a_referral_the_peer_refuses_stays_undelivered_for_its_owner(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_envelopes(fed, monkeypatch)
    nobody = "mx.fed.nadie"  # under the federal hub's prefix, but no agency of it
    officer = consent_officer(fed.holder, "oficial-chp")
    record_consent(
        fed.holder_client,
        officer,
        fed.child_id,
        consent_document(nobody, actions=["refer"], purposes=[PURPOSE]),
    )
    assert refer(fed, to=nobody).status_code == 201
    assert deliver(fed.holder).dead == 1
    [dead] = outbox(fed.holder)
    assert "HTTP 404" in (dead.last_error or "")
    [listed] = shares(fed)
    assert (listed["to"], listed["notice"]) == (nobody, "dead")


def test_a_referral_consent_no_longer_permits_is_withheld_and_ends(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = route_envelopes(fed, monkeypatch)
    consent_id = permit_referral(fed)
    assert refer(fed).status_code == 201
    officer = consent_officer(fed.holder, "oficial-chp-2")
    revoked = fed.holder_client.post(
        f"/v1/consents/{consent_id}/revoke",
        json={"reason": "La Procuraduría retira el consentimiento."},
        headers=officer.headers,
    )
    assert revoked.status_code == 200, revoked.get_json()
    assert deliver(fed.holder).withheld == 1
    assert not [c for _url, c in sent if c["type"] == "referral"]
    [listed] = shares(fed)
    assert (listed["status"], listed["notice"]) == ("cancelled", "withheld")
    assert "consent" in listed["decision_reason"]
    # Ended, it no longer stands in the way of referring again.
    assert refer(fed).status_code == 403  # nothing permits it now


# -- receiving ---------------------------------------------------------------------------------


def referral_body(**changes: Any) -> dict[str, Any]:
    return {
        "share_id": "shr_0123456789abcdef01234567",
        "record_id": "rec_0123456789abcdef01234567",
        "from": "mx.chp.dif",
        "to": COMAR,
        "purpose": PURPOSE,
        "categories": ["identity"],
        "created_at": datetime.now(UTC).isoformat(),
        "notice_id": "msg_0123456789abcdef01234567",
        **changes,
    }


def test_a_referral_envelope_is_kept_once_and_a_replay_refused(fed: Federation) -> None:
    token = signed_by(fed.holder, ASKER_ID, "referral", referral_body())
    first = to_the_asker(fed, token)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["status"] == "accepted"
    problem(to_the_asker(fed, token), 409, "replayed")
    # The worker signs every attempt anew: the same notice again is taken, and kept once.
    again = to_the_asker(fed, signed_by(fed.holder, ASKER_ID, "referral", referral_body()))
    assert again.status_code == 200
    with db.database(fed.asker).sessions() as session:
        assert len(session.scalars(select(ReceivedReferral)).all()) == 1
        assert len(session.scalars(select(OutboxMessage)).all()) == 1


def test_a_referral_envelope_naming_what_the_peer_may_not(fed: Federation) -> None:
    for changes, status, kind, pointer in (
        ({"to": "mx.fed.nadie"}, 404, "not-found", "/body/to"),
        ({"from": "mx.fed.inm"}, 403, "forbidden", "/body/from"),  # not the holder's agency
        ({"categories": ["secrets"]}, 400, "validation", "/body/categories"),
        ({"extra": 1}, 400, "validation", "/body/extra"),
    ):
        token = signed_by(fed.holder, ASKER_ID, "referral", referral_body(**changes))
        body = problem(to_the_asker(fed, token), status, kind)
        assert body["errors"][0]["pointer"] == pointer, changes
    with db.database(fed.asker).sessions() as session:
        assert session.scalars(select(ReceivedReferral)).all() == []
    refused = [
        e for e in entries(fed.asker, "federation_envelope_received") if e["outcome"] == "failure"
    ]
    assert len(refused) == 4


def test_transfer_envelopes_are_still_refused(fed: Federation) -> None:
    token = signed_by(fed.holder, ASKER_ID, "transfer", referral_body())
    assert "transfer" in problem(to_the_asker(fed, token), 409, "conflict")["detail"]


def test_the_referrals_listing_pages(fed: Federation) -> None:
    for index in range(3):
        body = referral_body(notice_id=f"msg_{index:024d}", share_id=f"shr_{index:024d}")
        assert (
            to_the_asker(fed, signed_by(fed.holder, ASKER_ID, "referral", body)).status_code == 200
        )
    route = "/v1/federation/referrals"
    page = fed.asker_client.get(route + "?limit=2", headers=fed.comar.headers).get_json()
    assert len(page["referrals"]) == 2 and page["next_after"] == page["referrals"][-1]["id"]
    rest = fed.asker_client.get(
        f"{route}?limit=2&after={page['next_after']}", headers=fed.comar.headers
    ).get_json()
    seen = [r["share_id"] for r in page["referrals"] + rest["referrals"]]
    assert sorted(seen) == [f"shr_{index:024d}" for index in range(3)]
    # Another agency of the hub sees none of them; an agency without the scope is refused.
    inm = add_agency(
        fed.asker, INM, jurisdiction="00", kind="immigration_enforcement", scopes=LOOKUP_SCOPES
    )
    assert fed.asker_client.get(route, headers=inm.headers).get_json()["referrals"] == []
    reader = add_agency(fed.asker, "mx.fed.lector", jurisdiction="00", scopes=("records:read",))
    assert fed.asker_client.get(route, headers=reader.headers).status_code == 403


# -- reading -----------------------------------------------------------------------------------


def test_a_lookup_by_referral_for_another_agency_or_purpose_answers_as_an_unknown_id(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = referred(fed, monkeypatch)
    # INM reads under a consent of its own, but not through COMAR's referral.
    inm = add_agency(
        fed.asker, INM, jurisdiction="00", kind="immigration_enforcement", scopes=LOOKUP_SCOPES
    )
    reads_before = len(entries(fed.holder, "record_read"))
    answers = [
        read_by_referral(fed, share["id"], agency=inm),
        read_by_referral(fed, share["id"], purpose="case_management"),
        read_by_referral(fed, "shr_" + "0" * 24),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.get_json()
        assert {k: v for k, v in answer.get_json().items() if k != "envelope_id"} == {
            "hub": HOLDER_ID,
            "records": [],
        }
    # Nothing was decided: no read to tell one from the other, on the log or in the time taken.
    assert len(entries(fed.holder, "record_read")) == reads_before


def test_a_lookup_names_identifiers_or_a_referral(fed: Federation) -> None:
    response = fed.lookup(referral="shr_" + "0" * 24)
    assert problem(response, 400, "validation")["errors"][0]["pointer"] == "/referral"
    response = read_by_referral(fed, "not-a-share")
    assert problem(response, 400, "validation")["errors"][0]["pointer"] == "/referral"


def test_a_revoked_consent_stops_reads_through_the_referral_and_is_told_to_the_peer(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    officer = consent_officer(fed.holder, "oficial-chp")
    route_envelopes(fed, monkeypatch)
    document = consent_document(COMAR, actions=["refer"], purposes=[PURPOSE])
    consent_id = str(record_consent(fed.holder_client, officer, fed.child_id, document)["id"])
    share = refer(fed).get_json()
    deliver(fed.holder)
    assert len(read_by_referral(fed, share["id"]).get_json()["records"]) == 1
    revoked = fed.holder_client.post(
        f"/v1/consents/{consent_id}/revoke",
        json={"reason": "La Procuraduría retira el consentimiento."},
        headers=officer.headers,
    )
    assert revoked.status_code == 200, revoked.get_json()
    # As for a local referral: it stays, and every read through it is decided again.
    assert revoked.get_json()["notified"] == [COMAR]
    assert shares(fed)[0]["status"] == "accepted"
    assert deliver(fed.holder).delivered == 1
    inbox = fed.asker_client.get("/v1/notifications", headers=fed.comar.headers).get_json()
    assert [n["event"] for n in inbox["notifications"]] == ["record.referred", "consent.revoked"]
    assert inbox["notifications"][1]["payload"]["hub"] == HOLDER_ID
    assert read_by_referral(fed, share["id"]).get_json()["records"] == []
    [refused] = [
        e
        for e in entries(fed.holder, "record_read")
        if e["actor"].get("agency_id") == COMAR and e["outcome"] == "denied"
    ]
    assert refused["record_id"] == share["record_id"]


def test_a_referral_not_yet_delivered_gives_nothing(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_envelopes(fed, monkeypatch)
    permit_referral(fed)
    share = refer(fed).get_json()
    assert read_by_referral(fed, share["id"]).get_json()["records"] == []


def test_the_peer_without_a_url_cannot_be_referred_to(fed: Federation) -> None:
    permit_referral(fed)
    [error] = problem(refer(fed), 400, "validation")["errors"]
    assert f"puente peer set-url {ASKER_ID}" in error["message"]
    with fed.holder.app_context(), db.database(fed.holder).sessions.begin() as session:
        set_url(session, ASKER_ID, "https://fed.puente.test")
    assert refer(fed).status_code == 201
