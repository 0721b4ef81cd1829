"""Federation envelopes between two hubs: a state hub that holds a child's record and the federal
hub one of whose agencies looks the child up (``POST /v1/federation/lookups`` on its own hub,
``POST /v1/federation/envelopes`` on the holder's).

The holding hub runs on each backend; the asking hub on SQLite. The asking hub's HTTP to its
peer goes to the holder's test client (``exchange.federation.post_envelope``), except in the
test that serves the holder over real HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from consent_support import (
    COMAR,
    OWNER,
    add_person_client,
    adolescent_record,
    consent_document,
    consent_officer,
    entries,
    honduran_consulate,
    procuraduria,
    record_consent,
)
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws, jwt
from joserfc.jwk import OKPKey
from records_support import AgencyClient, add_agency, push
from sqlalchemy import select
from werkzeug.serving import make_server

from exchange import db, federation
from exchange.api import federation as federation_routes
from exchange.federation_notices import notice_message_id
from exchange.keys import audit_origin, hub_keys
from exchange.outbox import OutboxMessage
from exchange.outbox_delivery import BatchResult, DeliveryPolicy, deliver_batch
from exchange.peers import add_peer, disable_peer, set_agency_prefixes, set_url
from exchange.transports import AgencyTransports, hub_signing_public_jwk, load_hub_signing_key
from exchange.witnessing import HttpAnswer
from tests.conftest import make_hub

HOLDER_ID = "mx.chp.puente"
ASKER_ID = "mx.fed.puente"
HOLDER_URL = "https://chp.puente.test"
ROUTE = "/v1/federation/envelopes"
CURP = "EEFK080702HNEJCVA9"  # the typical example's child
#: What an agency that looks children up on other hubs is given.
LOOKUP_SCOPES = ("records:read", "federation")


def pin(
    app: Flask,
    other: Flask,
    *,
    url: str | None = None,
    signing: bool = True,
    agency_prefixes: list[str] | None = None,
) -> None:
    """``app`` pins ``other`` as ``puente peer add`` with what its operators handed over."""
    with other.app_context():
        keys = hub_keys(other)
        described = {
            "hub_id": other.config["HUB_ID"],
            "origin": audit_origin(other),
            "log_vkey": keys.log.vkey if keys.log else "",
            "signing_jwk": json.dumps(hub_signing_public_jwk(other)) if signing else None,
        }
    with app.app_context(), db.database(app).sessions.begin() as session:
        add_peer(
            session,
            described["hub_id"],
            origin=described["origin"],
            log_vkey=described["log_vkey"],
            signing_jwk=described["signing_jwk"],
            base_url=url,
            agency_prefixes=agency_prefixes,
        )


@dataclass
class Federation:
    holder: Flask
    asker: Flask
    holder_client: FlaskClient
    asker_client: FlaskClient
    owner: AgencyClient  # the state DIF on the holding hub
    comar: AgencyClient  # an agency of the asking hub
    child_id: str
    sent: list[str]

    def lookup(
        self, agency: AgencyClient | None = None, language: str | None = None, **body: Any
    ) -> Any:
        agency = agency or self.comar
        headers = {**agency.headers, **({"Accept-Language": language} if language else {})}
        request = {
            "hub": HOLDER_ID,
            "purpose": "asylum_procedure",
            "identifiers": [{"type": "curp", "value": CURP}],
            **body,
        }
        return self.asker_client.post("/v1/federation/lookups", json=request, headers=headers)

    def envelope(self, kind: str = "lookup", body: Any = None, **claims: Any) -> str:
        """An envelope signed by the asking hub, as it would send it to the holder."""
        with self.asker.test_request_context():
            _jti, token = federation.sign_envelope(
                audience=HOLDER_ID, kind=kind, body=body if body is not None else lookup_body()
            )
        if not claims:
            return token
        with self.asker.app_context():
            key = load_hub_signing_key(self.asker)
        decoded = jwt.decode(token, key, algorithms=["EdDSA"])
        header = {**decoded.header, **claims.pop("header", {})}
        payload = {**decoded.claims, **claims}
        # None removes a header member or claim.
        header = {name: value for name, value in header.items() if value is not None}
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(header, payload, key, algorithms=["EdDSA"])

    def post(
        self,
        token: str | bytes,
        content_type: str = federation.MEDIA_TYPE,
        language: str | None = None,
    ) -> Any:
        headers = {"Accept-Language": language} if language else {}
        return self.holder_client.post(
            ROUTE, data=token, content_type=content_type, headers=headers
        )


def lookup_body(**changes: Any) -> dict[str, Any]:
    body = {
        "requester": {
            "agency_id": COMAR,
            "kind": "refugee_commission",
            "level": "federal",
            "jurisdiction": "00",
        },
        "purpose": "asylum_procedure",
        "identifiers": [{"type": "curp", "value": CURP}],
    }
    body.update(changes)
    return body


@pytest.fixture
def fed(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Federation]:
    holder = make_hub(
        tmp_path / "holder",
        database_url,
        HUB_ID=HOLDER_ID,
        AUDIT_INTEGRATOR_THREAD=False,
        FEDERATION_ANSWER_FLOOR=0,  # the test of the floor sets it
    )
    asker = make_hub(
        tmp_path / "asker",
        f"sqlite:///{tmp_path / 'asker.db'}",
        HUB_ID=ASKER_ID,
        AUDIT_INTEGRATOR_THREAD=False,
    )
    # The federal hub speaks for its agencies and for the foreign consulates registered on it.
    pin(holder, asker, agency_prefixes=["mx.fed.", "hn.consulado."])
    pin(asker, holder, url=HOLDER_URL)
    holder_client = holder.test_client()
    sent: list[str] = []

    def to_holder(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        assert url == HOLDER_URL + ROUTE
        sent.append(token)
        response = holder_client.post(
            ROUTE,
            data=token,
            content_type=federation.MEDIA_TYPE,
            headers={"Accept-Language": language} if language else {},
        )
        return HttpAnswer(response.status_code, response.mimetype or "", response.get_data())

    monkeypatch.setattr(federation, "post_envelope", to_holder)
    owner = add_agency(holder, OWNER)
    procuraduria(holder)
    response = push(holder_client, owner, adolescent_record())
    assert response.status_code == 201, response.get_json()
    # Looking a child up on another hub takes the federation scope, given explicitly.
    comar = add_agency(
        asker, COMAR, jurisdiction="00", kind="refugee_commission", scopes=LOOKUP_SCOPES
    )
    yield Federation(
        holder,
        asker,
        holder_client,
        asker.test_client(),
        owner,
        comar,
        response.get_json()["child_id"],
        sent,
    )
    for hub in (holder, asker):
        hub.extensions["puente.db"].engine.dispose()


def permit_comar(fed: Federation, categories: list[str] | None = None) -> str:
    officer = consent_officer(fed.holder, "oficial-chp")
    document = consent_document(
        COMAR, actions=["read"], purposes=["asylum_procedure"], categories=categories
    )
    return str(record_consent(fed.holder_client, officer, fed.child_id, document)["id"])


# -- a lookup, end to end ----------------------------------------------------------------------


def test_a_consent_naming_the_peers_agency_lets_it_read_what_it_permits(fed: Federation) -> None:
    consent_id = permit_comar(fed, categories=["identity", "legal_status"])
    response = fed.lookup()
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["hub"] == HOLDER_ID
    [record] = answer["records"]
    assert record["child_id"] == fed.child_id
    assert set(record["decision"]["categories"]) == {"identity", "legal_status"}
    assert record["decision"]["consent_ids"] == [consent_id]
    assert "health" in record["withheld_categories"]
    assert record["body_sha256"] is None  # something withheld: no digest to confirm guesses
    assert record["data"]["child"]["identifiers"][0]["value"] == CURP
    assert "health" not in record["data"]


def test_both_hubs_audit_both_envelopes_and_the_holder_audits_the_read(fed: Federation) -> None:
    permit_comar(fed)
    answer = fed.lookup().get_json()
    [read] = [e for e in entries(fed.holder, "record_read") if e["actor"].get("agency_id") == COMAR]
    assert read["actor"] == {"agency_id": COMAR, "role": "system", "client_id": f"hub:{ASKER_ID}"}
    assert read["purpose"] == "asylum_procedure" and read["outcome"] == "success"
    [received] = entries(fed.holder, "federation_envelope_received")
    assert received["actor"]["client_id"] == f"hub:{ASKER_ID}"
    assert received["object"] == {"type": "envelope", "id": answer["envelope_id"]}
    assert received["target"] == {"hub": ASKER_ID} and received["reason_code"] == "lookup"
    [answered] = entries(fed.holder, "federation_envelope_sent")
    assert answered["reason_code"] == "lookup_answer" and answered["purpose"] == "asylum_procedure"
    assert answered["actor"] == {
        "agency_id": COMAR,
        "role": "system",
        "client_id": f"hub:{ASKER_ID}",
    }
    [asked] = entries(fed.asker, "federation_envelope_sent")
    assert asked["actor"]["agency_id"] == COMAR and asked["target"] == {"hub": HOLDER_ID}
    assert asked["object"]["id"] == answer["envelope_id"] and asked["outcome"] == "success"
    [got] = entries(fed.asker, "federation_envelope_received")
    assert got["reason_code"] == "lookup_answer"
    # No case content in any of them.
    for entry in (received, answered, asked, got):
        assert CURP not in json.dumps(entry)


def test_nothing_permitted_and_no_such_child_answer_alike(fed: Federation) -> None:
    nothing = fed.lookup().get_json()
    unknown = fed.lookup(identifiers=[{"type": "curp", "value": "XAXX010101HNEXXXA0"}]).get_json()
    assert nothing["records"] == unknown["records"] == []
    assert set(nothing) == set(unknown) == {"hub", "envelope_id", "records"}
    # The refused read is on the holder's log all the same.
    [denied] = [e for e in entries(fed.holder, "record_read") if e["outcome"] == "denied"]
    assert denied["actor"]["agency_id"] == COMAR


def test_the_holders_hard_rules_apply_to_a_peers_agency(fed: Federation) -> None:
    """The child seeks asylum from Honduras: Honduras's consulate is refused even with a consent
    naming it, whichever hub it asks through."""
    consulate = honduran_consulate(fed.asker, scopes=LOOKUP_SCOPES)
    officer = consent_officer(fed.holder, "oficial-chp")
    document = consent_document(
        consulate.id, actions=["read"], purposes=["family_tracing_reunification"]
    )
    record_consent(fed.holder_client, officer, fed.child_id, document)
    response = fed.lookup(consulate, purpose="family_tracing_reunification")
    assert response.status_code == 200 and response.get_json()["records"] == []
    [read] = [
        e for e in entries(fed.holder, "record_read") if e["actor"]["agency_id"] == consulate.id
    ]
    assert read["outcome"] == "denied" and read["decision"]["basis"] == "hard_rule"


def test_a_lookup_over_real_http(fed: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    permit_comar(fed)
    server = make_server("127.0.0.1", 0, fed.holder, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.undo()  # the real post_envelope
        with fed.asker.app_context(), db.database(fed.asker).sessions.begin() as session:
            from exchange.peers import Peer

            session.get(Peer, HOLDER_ID).base_url = f"http://127.0.0.1:{server.server_port}"  # type: ignore[union-attr]
        response = fed.lookup()
    finally:
        server.shutdown()
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["records"]) == 1


# -- what the receiving hub refuses ------------------------------------------------------------


def problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["type"].endswith("/" + kind), body
    return dict(body)


def test_an_envelope_is_sent_as_application_jose(fed: Federation) -> None:
    body = problem(fed.post(fed.envelope(), content_type="application/json"), 415, "validation")
    assert "application/jose" in body["detail"]


def test_what_is_not_a_compact_jws(fed: Federation) -> None:
    problem(fed.post(b"not a jws"), 400, "validation")


def another_hub(
    tmp_path: Path, hub_id: str, *, pinned_by: Flask | None = None, signing: bool = False
) -> Flask:
    """A third hub, pinned by ``pinned_by`` (with its signing key if ``signing``) when given."""
    other = make_hub(tmp_path / hub_id, f"sqlite:///{tmp_path / hub_id}.db", HUB_ID=hub_id)
    if pinned_by is not None:
        pin(pinned_by, other, signing=signing)
    return other


def signed_by(hub: Flask, audience: str, kind: str, body: dict[str, Any]) -> str:
    with hub.test_request_context():
        return federation.sign_envelope(audience=audience, kind=kind, body=body)[1]


def lookup_from_another_hub(tmp_path: Path, hub_id: str, *, pinned_by: Flask | None = None) -> str:
    """A lookup envelope to the holder from a third hub (pinned by ``pinned_by`` without its
    signing key, when given)."""
    other = another_hub(tmp_path, hub_id, pinned_by=pinned_by)
    token = signed_by(other, HOLDER_ID, "lookup", lookup_body())
    other.extensions["puente.db"].engine.dispose()
    return token


def test_an_envelope_from_a_hub_not_pinned(fed: Federation, tmp_path: Path) -> None:
    token = lookup_from_another_hub(tmp_path, "mx.xx.puente")
    body = problem(fed.post(token), 401, "bad-signature")
    assert "mx.xx.puente" in body["detail"]


def test_an_envelope_signed_with_another_key_than_the_pinned_one(fed: Federation) -> None:
    token = fed.envelope()
    forged = jwt.encode(
        jwt.decode(token, load_hub_signing_key(fed.asker), algorithms=["EdDSA"]).header,
        jwt.decode(token, load_hub_signing_key(fed.asker), algorithms=["EdDSA"]).claims,
        OKPKey.generate_key("Ed25519"),
        algorithms=["EdDSA"],
    )
    problem(fed.post(forged), 401, "bad-signature")


def test_a_webhook_notification_does_not_pass_for_an_envelope(fed: Federation) -> None:
    token = fed.envelope(header={"typ": "secevent+jwt"})
    body = problem(fed.post(token), 401, "bad-signature")
    assert "typ" in body["detail"]


def test_an_envelope_to_another_hub(fed: Federation) -> None:
    problem(fed.post(fed.envelope(aud="mx.oax.puente")), 403, "forbidden")


def test_an_expired_envelope(fed: Federation) -> None:
    now = int(time.time())
    problem(fed.post(fed.envelope(iat=now - 600, exp=now - 400)), 401, "unauthenticated")


def test_an_envelope_valid_too_long(fed: Federation) -> None:
    now = int(time.time())
    problem(fed.post(fed.envelope(iat=now, exp=now + 3600)), 400, "validation")


def test_a_replayed_envelope(fed: Federation) -> None:
    token = fed.envelope()
    assert fed.post(token).status_code == 200
    problem(fed.post(token), 409, "replayed")


def test_a_disabled_peer_and_a_peer_without_a_signing_key(fed: Federation, tmp_path: Path) -> None:
    with fed.holder.app_context(), db.database(fed.holder).sessions.begin() as session:
        disable_peer(session, ASKER_ID)
    problem(fed.post(fed.envelope()), 401, "bad-signature")
    token = lookup_from_another_hub(tmp_path, "mx.oax.puente", pinned_by=fed.holder)
    body = problem(fed.post(token), 401, "bad-signature")
    assert "pin-signing-key" in body["detail"]


def test_unknown_types_and_types_this_hub_does_not_take(fed: Federation) -> None:
    problem(fed.post(fed.envelope(type="gossip")), 400, "validation")
    problem(fed.post(fed.envelope(kind="transfer", body={})), 409, "conflict")
    problem(fed.post(fed.envelope(kind="lookup_answer", body={})), 409, "conflict")


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (lookup_body(purpose="curiosity"), "/body/purpose"),
        (lookup_body(identifiers=[]), "/body/identifiers"),
        (lookup_body(identifiers=[{"type": "name", "value": "Kevin"}]), "/body/identifiers/0"),
        (lookup_body(requester={"agency_id": COMAR}), "/body/requester"),
        (
            lookup_body(
                requester={
                    "agency_id": "gt.consulado",
                    "kind": "foreign_authority",
                    "level": "federal",
                    "jurisdiction": "00",
                }
            ),
            "/body/requester/country",
        ),
        (lookup_body(extra=1), "/body/extra"),
        (
            lookup_body(requester={**lookup_body()["requester"], "agency_id": "MX.FED.COMAR"}),
            "/body/requester/agency_id",
        ),
        (
            lookup_body(requester={**lookup_body()["requester"], "roles": ["consent_officer"]}),
            "/body/requester/roles",
        ),
        (lookup_body(identifiers=[{"type": "curp", "value": "XYZ"}]), "/body/identifiers/0/value"),
        (
            lookup_body(identifiers=[{"type": "unhcr_individual", "value": "%"}]),
            "/body/identifiers/0/value",
        ),
    ],
)
def test_a_lookup_that_is_not_valid(fed: Federation, body: dict[str, Any], pointer: str) -> None:
    answer = problem(fed.post(fed.envelope(body=body)), 400, "validation")
    assert answer["errors"][0]["pointer"] == pointer
    # The asking hub did send it (its signature verified): the refusal is on the log.
    [refused] = entries(fed.holder, "federation_envelope_received")
    assert refused["outcome"] == "failure" and refused["reason_code"] == "refused.validation"
    assert refused["target"] == {"hub": ASKER_ID}


# -- the asking side ---------------------------------------------------------------------------


def test_a_lookup_is_made_by_an_agencys_system_with_the_federation_scope(fed: Federation) -> None:
    writer = add_agency(fed.asker, "mx.fed.inm", jurisdiction="00", scopes=("records:write",))
    assert fed.lookup(writer).status_code == 403
    # Reading here is not enough: a lookup sends a child's identifiers to another hub.
    reader = add_agency(fed.asker, "mx.fed.sre", jurisdiction="00", scopes=("records:read",))
    refused = problem(fed.lookup(reader, language="en"), 403, "forbidden")
    assert "federation" in refused["detail"]
    officer = add_person_client(
        fed.asker, "abogada-comar", COMAR, ["legal_representative"], ["records:read"]
    )
    response = fed.asker_client.post(
        "/v1/federation/lookups",
        json={
            "hub": HOLDER_ID,
            "purpose": "asylum_procedure",
            "identifiers": [{"type": "curp", "value": CURP}],
        },
        headers=officer.headers,
    )
    problem(response, 403, "forbidden")
    assert fed.sent == []


def test_a_lookup_of_an_unknown_hub_or_with_a_bad_body(fed: Federation) -> None:
    problem(fed.lookup(hub="mx.zz.puente"), 404, "not-found")
    body = problem(fed.lookup(purpose="curiosity"), 400, "validation")
    assert body["errors"][0]["pointer"] == "/purpose"
    problem(fed.lookup(identifiers=[{"type": "curp"}]), 400, "validation")
    assert fed.sent == []


def test_a_peer_that_does_not_answer(fed: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(federation, "post_envelope", down)
    body = problem(fed.lookup(), 502, "unavailable")
    assert HOLDER_ID in body["detail"]
    [asked] = entries(fed.asker, "federation_envelope_sent")
    assert asked["outcome"] == "failure"


def test_an_answer_not_signed_by_the_peer_is_discarded(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    permit_comar(fed)
    real = federation.post_envelope

    def tampered(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        reply = real(url, token, timeout)
        answer = json.loads(reply.body)
        claims = jwt.decode(
            answer["answer"], load_hub_signing_key(fed.holder), algorithms=["EdDSA"]
        )
        forged = jwt.encode(
            claims.header, claims.claims, OKPKey.generate_key("Ed25519"), algorithms=["EdDSA"]
        )
        return HttpAnswer(
            200, "application/json", json.dumps({**answer, "answer": forged}).encode()
        )

    monkeypatch.setattr(federation, "post_envelope", tampered)
    problem(fed.lookup(), 502, "unavailable")
    [discarded] = entries(fed.asker, "federation_envelope_received")
    assert discarded["outcome"] == "failure" and discarded["reason_code"] == "lookup_answer"


def test_an_answer_to_another_lookup_is_discarded(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = federation.post_envelope
    earlier: list[HttpAnswer] = []

    def stale(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        reply = real(url, token, timeout)
        earlier.append(reply)
        return earlier[0]

    monkeypatch.setattr(federation, "post_envelope", stale)
    assert fed.lookup().status_code == 200
    body = problem(fed.lookup(), 502, "unavailable")
    assert "discarded" in body["detail"] or "descartó" in body["detail"]


def test_the_hub_document_publishes_the_key_peers_pin(fed: Federation) -> None:
    document = fed.holder_client.get("/.well-known/puente-hub").get_json()
    assert (
        document["endpoints"]["federation"] == fed.holder.config["PUBLIC_URL"].rstrip("/") + ROUTE
    )
    with fed.holder.app_context():
        assert document["signing_jwk"] == hub_signing_public_jwk(fed.holder)


# -- a peer speaks only for its own agencies -----------------------------------------------------


def test_a_peer_cannot_speak_for_one_of_this_hubs_agencies(fed: Federation) -> None:
    """The asking hub registered an agency under the id of the holder's own state DIF: were it
    believed, it would read every record of that DIF as their originating agency."""
    impostor = lookup_body(
        requester={
            "agency_id": OWNER,
            "kind": "state_dif",
            "level": "state",
            "jurisdiction": "07",
        }
    )
    body = problem(fed.post(fed.envelope(body=impostor)), 403, "forbidden")
    assert body["errors"][0]["pointer"] == "/body/requester/agency_id"
    [refused] = entries(fed.holder, "federation_envelope_received")
    assert refused["outcome"] == "failure" and refused["reason_code"] == "refused.forbidden"
    assert [e for e in entries(fed.holder, "record_read") if e["actor"].get("client_id")] == []
    # The asking hub does not even register an agency of that id: the pinned peer speaks for it.
    from exchange.agencies import InvalidAgency

    with pytest.raises(InvalidAgency, match="lies under the agency prefixes of peer hub"):
        add_agency(fed.asker, OWNER, scopes=LOOKUP_SCOPES)


def test_a_peers_agency_is_never_the_owner_whatever_id_it_bears(fed: Federation) -> None:
    from exchange.api.record_reads import record_json
    from exchange.auth import Actor
    from exchange.disclosure import load_child
    from exchange.records import Record

    with fed.holder.test_request_context(), db.database(fed.holder).sessions() as session:
        record = session.query(Record).one()
        impostor = Actor.from_fields(
            client_id=f"hub:{ASKER_ID}",
            scopes=("records:read",),
            agency_id=OWNER,
            kind="state_dif",
            country=None,
            agency_jurisdiction="07",
        )
        answer, disclosure = record_json(
            session, impostor, record, "case_management", load_child(session, record.child_id)
        )
        session.rollback()
    assert answer is None and disclosure.decision.basis != "originating_agency"


def test_an_envelope_without_kid_or_aud(fed: Federation) -> None:
    problem(fed.post(fed.envelope(header={"kid": None})), 401, "bad-signature")
    body = problem(fed.post(fed.envelope(aud=None)), 400, "validation")
    assert body["errors"][0]["pointer"] == "/aud"


def test_an_envelope_nobody_pinned_verifies_is_not_written_to_the_log(fed: Federation) -> None:
    token = fed.envelope()
    forged = jwt.encode(
        jwt.decode(token, load_hub_signing_key(fed.asker), algorithms=["EdDSA"]).header,
        {"iss": ASKER_ID, "aud": HOLDER_ID},
        OKPKey.generate_key("Ed25519"),
        algorithms=["EdDSA"],
    )
    problem(fed.post(forged), 401, "bad-signature")
    assert entries(fed.holder, "federation_envelope_received") == []


def test_a_replay_is_on_the_log_as_refused(fed: Federation) -> None:
    token = fed.envelope()
    assert fed.post(token).status_code == 200
    problem(fed.post(token), 409, "replayed")
    outcomes = [e["outcome"] for e in entries(fed.holder, "federation_envelope_received")]
    assert sorted(outcomes) == ["failure", "success"]


def test_identifiers_of_the_wrong_shape_are_not_sent(fed: Federation) -> None:
    body = problem(fed.lookup(identifiers=[{"type": "curp", "value": "XYZ"}]), 400, "validation")
    assert body["errors"][0]["pointer"] == "/identifiers/0/value"
    assert fed.sent == []


def test_the_wait_for_a_peer_is_configured(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []

    def slow(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        waited.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(federation, "post_envelope", slow)
    fed.asker.config["FEDERATION_TIMEOUT"] = 3.0
    body = problem(fed.lookup(), 502, "unavailable")
    assert waited == [3.0] and "3 s" in body["detail"]


def test_every_answer_takes_the_floor_so_time_tells_nothing(fed: Federation) -> None:
    """A known child costs the holder decisions and audit entries an unknown one does not; the
    answer floor hides the difference."""
    permit_comar(fed)
    fed.holder.config["FEDERATION_ANSWER_FLOOR"] = 0.3
    for identifiers in (
        [{"type": "curp", "value": CURP}],
        [{"type": "curp", "value": "XAXX010101HNEXXXA0"}],
    ):
        started = time.monotonic()
        response = fed.post(fed.envelope(body=lookup_body(identifiers=identifiers)))
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3


def test_a_withhold_entry_names_an_agency_of_a_pinned_peer(fed: Federation) -> None:
    """The child fled from someone at an agency on another hub: the officer withholds from it
    by id, naming its hub, and its lookups read nothing although a consent names it."""
    permit_comar(fed)
    officer = consent_officer(fed.holder, "oficial-reserva")
    route = f"/v1/children/{fed.child_id}/withholds"
    entry = {"target": {"agency_id": COMAR}, "reason": "Conflicto de interés documentado."}
    # Without the hub, an agency this hub does not know is taken for a typo.
    unknown = fed.holder_client.post(route, json=entry, headers=officer.headers)
    assert unknown.status_code == 400
    assert unknown.get_json()["errors"][0]["pointer"] == "/target/agency_id"
    wrong_hub = fed.holder_client.post(
        route, json={**entry, "target_hub": "mx.zz.puente"}, headers=officer.headers
    )
    assert wrong_hub.status_code == 400
    assert wrong_hub.get_json()["errors"][0]["pointer"] == "/target_hub"
    own = fed.holder_client.post(
        route,
        json={"target": {"agency_id": OWNER}, "target_hub": ASKER_ID, "reason": "x"},
        headers=officer.headers,
    )
    assert own.status_code == 400
    assert len(fed.lookup().get_json()["records"]) == 1  # the consent lets COMAR read
    recorded = fed.holder_client.post(
        route, json={**entry, "target_hub": ASKER_ID}, headers=officer.headers
    )
    assert recorded.status_code == 201, recorded.get_json()
    assert recorded.get_json()["withhold"]["target_hub"] == ASKER_ID
    assert fed.lookup().get_json()["records"] == []
    [read] = [
        e
        for e in entries(fed.holder, "record_read")
        if e["actor"].get("agency_id") == COMAR and e["outcome"] == "denied"
    ]
    assert read["decision"]["basis"] == "withhold"


def test_oversight_reads_the_federation_entries_in_both_views(fed: Federation) -> None:
    permit_comar(fed)
    answer = fed.lookup().get_json()
    from exchange.audit_sequencer import integrate_pending

    with fed.holder.app_context():
        integrate_pending(fed.holder)
    cndh = add_agency(  # the state's human-rights commission (mx.fed. is the federal hub's)
        fed.holder, "mx.chp.cedh", jurisdiction="07", kind="oversight", scopes=("audit:read",)
    )
    for view in ("json", "fhir"):
        response = fed.holder_client.get(
            "/v1/audit/events",
            query_string={"action": "federation_envelope_received", "format": view},
            headers=cndh.headers,
        )
        assert response.status_code == 200, response.get_json()
        assert answer["envelope_id"] in response.get_data(as_text=True)
        assert ASKER_ID in response.get_data(as_text=True)


def test_a_peers_child_protection_agency_is_told_what_an_outsider_is(fed: Federation) -> None:
    """Honduras's consulate is refused by the asylum rule; a peer's federal Procuraduría
    (which acts for children on its own hub) is not told that rule's reason here either: the
    consent authority for this hub's child is this hub's."""
    from exchange.api.record_reads import OUTSIDER, reader_standing
    from exchange.auth import Actor
    from exchange.disclosure import load_child
    from exchange.records import Record

    with fed.holder.test_request_context(), db.database(fed.holder).sessions() as session:
        record = session.query(Record).one()
        peer_procuraduria = Actor.from_fields(
            client_id=f"hub:{ASKER_ID}",
            scopes=("records:read",),
            agency_id="mx.fed.pfpnna",
            kind="federal_child_protection",
            country=None,
            agency_jurisdiction="00",
        )
        standing = reader_standing(
            session, peer_procuraduria, record, load_child(session, record.child_id)
        )
    assert standing == OUTSIDER


# -- a revocation reaches the peer hub's agency ------------------------------------------------

ASKER_URL = "https://fed.puente.test"


def route_envelopes(
    fed: Federation, monkeypatch: pytest.MonkeyPatch, down: set[str] | None = None
) -> list[tuple[str, Any]]:
    """Envelopes to either hub go to its test client; a hub in ``down`` does not answer. The
    holder is given the asker's URL, as ``puente peer set-url`` does. Returns what was sent,
    (url, claims), in order."""
    with fed.holder.app_context(), db.database(fed.holder).sessions.begin() as session:
        set_url(session, ASKER_ID, ASKER_URL)
    clients = {HOLDER_URL + ROUTE: fed.holder_client, ASKER_URL + ROUTE: fed.asker_client}
    sent: list[tuple[str, Any]] = []

    def post(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        sent.append((url, json.loads(jws.extract_compact(token.encode()).payload)))
        if url in (down or set()):
            raise ConnectionRefusedError("connection refused")
        response = clients[url].post(ROUTE, data=token, content_type=federation.MEDIA_TYPE)
        return HttpAnswer(response.status_code, response.mimetype or "", response.get_data())

    monkeypatch.setattr(federation, "post_envelope", post)
    return sent


def deliver(app: Flask) -> BatchResult:
    """One pass of ``puente worker``, retrying at once."""
    with app.app_context(), db.database(app).sessions() as session:
        return deliver_batch(
            session,
            AgencyTransports.for_hub(app),
            DeliveryPolicy(backoff_seconds=0, backoff_max_seconds=0, max_attempts=3),
        )


def revoke_after_a_lookup(fed: Federation) -> str:
    """COMAR (of the asking hub) reads under a consent, which the holder's officer revokes;
    returns the consent id."""
    officer = consent_officer(fed.holder, "oficial-chp")
    document = consent_document(COMAR, actions=["read"], purposes=["asylum_procedure"])
    consent_id = str(record_consent(fed.holder_client, officer, fed.child_id, document)["id"])
    assert len(fed.lookup().get_json()["records"]) == 1
    revoked = fed.holder_client.post(
        f"/v1/consents/{consent_id}/revoke",
        json={"reason": "La Procuraduría retira el consentimiento."},
        headers=officer.headers,
    )
    assert revoked.status_code == 200, revoked.get_json()
    assert revoked.get_json()["notified"] == [COMAR]
    return consent_id


def outbox(app: Flask) -> list[OutboxMessage]:
    with db.database(app).sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


def test_a_revocation_is_sent_to_the_peer_hub_of_the_agency_that_read_under_it(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = route_envelopes(fed, monkeypatch)
    consent_id = revoke_after_a_lookup(fed)
    [queued] = outbox(fed.holder)
    assert (queued.peer_hub, queued.agency_id, queued.status) == (ASKER_ID, None, "pending")
    assert deliver(fed.holder).delivered == 1
    url, claims = sent[-1]
    assert url == ASKER_URL + ROUTE and claims["type"] == "consent_revoked"
    assert claims["body"] == {
        "agency_id": COMAR,
        "consent_id": consent_id,
        "child_id": fed.child_id,
        "revoked_at": claims["body"]["revoked_at"],
        "notice_id": queued.id,
    }
    assert outbox(fed.holder)[0].status == "delivered"
    # The asking hub holds it for COMAR (no webhook), with the hub whose ids these are.
    inbox = fed.asker_client.get("/v1/notifications", headers=fed.comar.headers)
    [notice] = inbox.get_json()["notifications"]
    assert notice["event"] == "consent.revoked"
    assert notice["payload"]["hub"] == HOLDER_ID
    assert notice["payload"]["consent_id"] == consent_id
    assert notice["payload"]["child_id"] == fed.child_id
    assert notice["payload"]["instruction"]["es"]
    # Both hubs audit the envelope; no content.
    [sent_entry] = [
        e
        for e in entries(fed.holder, "federation_envelope_sent")
        if e["reason_code"] == "consent_revoked"
    ]
    assert sent_entry["target"] == {"hub": ASKER_ID} and sent_entry["outcome"] == "success"
    [received] = [
        e
        for e in entries(fed.asker, "federation_envelope_received")
        if e["reason_code"] == "consent_revoked"
    ]
    assert received["target"] == {"hub": HOLDER_ID}
    assert received["object"] == {"type": "envelope", "id": claims["jti"]}


def test_a_peer_that_is_down_gets_the_revocation_later(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = {ASKER_URL + ROUTE}
    route_envelopes(fed, monkeypatch, down=down)
    revoke_after_a_lookup(fed)
    assert deliver(fed.holder).retrying == 1
    [waiting] = outbox(fed.holder)
    assert waiting.status == "failed" and "refused" in (waiting.last_error or "")
    [failed] = [
        e
        for e in entries(fed.holder, "federation_envelope_sent")
        if e["reason_code"] == "consent_revoked"
    ]
    assert failed["outcome"] == "failure"
    down.clear()
    assert deliver(fed.holder).delivered == 1
    inbox = fed.asker_client.get("/v1/notifications", headers=fed.comar.headers)
    assert [n["event"] for n in inbox.get_json()["notifications"]] == ["consent.revoked"]


def test_a_revocation_the_peer_refuses_is_dead_with_the_reason(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_envelopes(fed, monkeypatch)
    revoke_after_a_lookup(fed)
    # As if COMAR had taken no answer from the holder (a disabled agency is told all the same:
    # tests/api/test_federation_fixes_s19.py).
    monkeypatch.setattr(
        "exchange.federation_notices.took_an_answer", lambda session, agency, hub: False
    )
    assert deliver(fed.holder).dead == 1
    [dead] = outbox(fed.holder)
    assert "HTTP 404" in (dead.last_error or "") and COMAR in (dead.last_error or "")
    [refused] = [
        e
        for e in entries(fed.asker, "federation_envelope_received")
        if e["reason_code"] == "refused.not-found"
    ]
    assert refused["outcome"] == "failure" and refused["target"] == {"hub": HOLDER_ID}


def test_a_peer_without_a_url_keeps_the_revocation_for_the_administrator(
    fed: Federation,
) -> None:
    revoke_after_a_lookup(fed)
    assert deliver(fed.holder).dead == 1
    [dead] = outbox(fed.holder)
    assert "no URL" in (dead.last_error or "") and dead.peer_hub == ASKER_ID
    assert f"puente peer set-url {ASKER_ID} URL" in (dead.last_error or "")


def notice_to_the_asker(fed: Federation, **changes: Any) -> str:
    """A revocation notice from the holder to the asking hub, for COMAR."""
    body = {
        "agency_id": COMAR,
        "consent_id": "cns_0123456789abcdef01234567",
        "child_id": fed.child_id,
        "revoked_at": datetime.now(UTC).isoformat(),
        "notice_id": "msg_0123456789abcdef01234567",
        **changes,
    }
    return signed_by(fed.holder, ASKER_ID, "consent_revoked", body)


def to_the_asker(fed: Federation, token: str) -> Any:
    return fed.asker_client.post(ROUTE, data=token, content_type=federation.MEDIA_TYPE)


def test_a_revocation_notice_that_is_not_valid(fed: Federation) -> None:
    assert fed.lookup().status_code == 200  # COMAR asked the holder
    soon = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    for changes, pointer in (
        ({"extra": 1}, "/body/extra"),
        ({"consent_id": "no spaces allowed"}, "/body/consent_id"),
        ({"revoked_at": "ayer"}, "/body/revoked_at"),
        ({"revoked_at": "2026-11-24T10:00:00"}, "/body/revoked_at"),
        ({"revoked_at": soon}, "/body/revoked_at"),
        ({"notice_id": None}, "/body/notice_id"),
    ):
        response = to_the_asker(fed, notice_to_the_asker(fed, **changes))
        assert response.status_code == 400, (changes, response.get_json())
        assert response.get_json()["errors"][0]["pointer"] == pointer
    assert to_the_asker(fed, notice_to_the_asker(fed)).status_code == 200
    assert outbox(fed.asker)[0].status == "held"


def test_a_notice_that_arrives_again_tells_the_agency_once(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asking hub takes the notice after the holder stopped waiting: the worker sends it
    again, in a new envelope, and the agency is told once."""
    sent = route_envelopes(fed, monkeypatch)
    revoke_after_a_lookup(fed)
    routed = federation.post_envelope

    def late(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        routed(url, token, timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(federation, "post_envelope", late)
    assert deliver(fed.holder).retrying == 1
    assert deliver(fed.holder).retrying == 1
    monkeypatch.setattr(federation, "post_envelope", routed)
    assert deliver(fed.holder).delivered == 1
    [queued] = outbox(fed.holder)
    notices = [claims for _url, claims in sent if claims["type"] == "consent_revoked"]
    assert len({claims["jti"] for claims in notices}) == 3
    assert {claims["body"]["notice_id"] for claims in notices} == {queued.id}
    [told] = outbox(fed.asker)
    assert told.id == notice_message_id(HOLDER_ID, queued.id)
    inbox = fed.asker_client.get("/v1/notifications", headers=fed.comar.headers)
    assert len(inbox.get_json()["notifications"]) == 1
    received = [
        e
        for e in entries(fed.asker, "federation_envelope_received")
        if e["reason_code"] == "consent_revoked"
    ]
    assert [e["outcome"] for e in received] == ["success"] * 3


def test_two_copies_of_a_notice_at_the_same_moment_tell_the_agency_once(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second copy looked for the notification before the first stored it: its commit
    fails on the notification's id, and it is taken again (finding it) instead of a 500."""
    assert fed.lookup().status_code == 200  # COMAR asked the holder
    assert to_the_asker(fed, notice_to_the_asker(fed)).status_code == 200
    real = federation_routes.receive_revocation
    blinded: list[str] = []

    def looked_before_the_first_was_stored(session: Any, opened: Any) -> Any:
        if blinded:
            return real(session, opened)
        blinded.append(opened.jti)
        session.get = lambda entity, ident, **kw: (
            None if entity is OutboxMessage else type(session).get(session, entity, ident, **kw)
        )
        try:
            return real(session, opened)
        finally:
            del session.get

    monkeypatch.setattr(federation_routes, "receive_revocation", looked_before_the_first_was_stored)
    response = to_the_asker(fed, notice_to_the_asker(fed))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "accepted" and len(blinded) == 1
    assert len(outbox(fed.asker)) == 1
    received = [
        e
        for e in entries(fed.asker, "federation_envelope_received")
        if e["reason_code"] == "consent_revoked"
    ]
    assert [e["outcome"] for e in received] == ["success"] * 2


def test_a_notice_is_taken_only_for_an_agency_that_asked_the_sender(
    fed: Federation, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Any pinned peer could otherwise drop notices on any agency of this hub, one that never
    read anything there included; it is told what it would be told of an agency this hub does
    not have."""
    add_agency(
        fed.asker, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",)
    )
    unknown = problem(
        to_the_asker(fed, notice_to_the_asker(fed, agency_id="mx.fed.nadie")), 404, "not-found"
    )
    never = problem(
        to_the_asker(fed, notice_to_the_asker(fed, agency_id="mx.fed.cndh")), 404, "not-found"
    )
    assert never["detail"] == unknown["detail"].replace("mx.fed.nadie", "mx.fed.cndh")
    problem(to_the_asker(fed, notice_to_the_asker(fed)), 404, "not-found")
    # A lookup the holder did not answer read nothing.
    routed = federation.post_envelope

    def down(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(federation, "post_envelope", down)
    problem(fed.lookup(), 502, "unavailable")
    problem(to_the_asker(fed, notice_to_the_asker(fed)), 404, "not-found")
    monkeypatch.setattr(federation, "post_envelope", routed)
    assert fed.lookup().status_code == 200
    assert to_the_asker(fed, notice_to_the_asker(fed)).status_code == 200
    # COMAR asked the holder, not this third hub, which the asking hub also pins.
    other = another_hub(tmp_path, "mx.nl.puente")
    pin(fed.asker, other)
    body = {
        "agency_id": COMAR,
        "consent_id": "cns_0123456789abcdef01234567",
        "child_id": "chd_0123456789abcdef01234567",
        "revoked_at": datetime.now(UTC).isoformat(),
        "notice_id": "msg_0123456789abcdef01234567",
    }
    problem(
        to_the_asker(fed, signed_by(other, ASKER_ID, "consent_revoked", body)), 404, "not-found"
    )
    other.extensions["puente.db"].engine.dispose()
    assert len(outbox(fed.asker)) == 1


# -- a peer speaks for its own agencies, by their id prefixes ------------------------------------


def test_a_peer_cannot_speak_for_another_hubs_agency(fed: Federation, tmp_path: Path) -> None:
    """A third hub the holder pins names COMAR, an agency of the federal hub, as the one that
    asks: the consent naming COMAR is for the federal hub's COMAR, which the third hub is not."""
    permit_comar(fed)
    other = another_hub(tmp_path, "mx.nl.puente", pinned_by=fed.holder, signing=True)
    for language, words in (
        ("en", "is not an agency hub mx.nl.puente speaks for"),
        ("es", "no es una agencia por la que hable el nodo mx.nl.puente"),
    ):
        token = signed_by(other, HOLDER_ID, "lookup", lookup_body())
        body = problem(fed.post(token, language=language), 403, "forbidden")
        assert words in body["detail"] and "mx.nl." in body["detail"]
        assert body["errors"][0]["pointer"] == "/body/requester/agency_id"
    other.extensions["puente.db"].engine.dispose()
    refused = entries(fed.holder, "federation_envelope_received")
    assert [(e["outcome"], e["reason_code"], e["target"]) for e in refused] == [
        ("failure", "refused.forbidden", {"hub": "mx.nl.puente"})
    ] * 2
    assert entries(fed.holder, "record_read") == []
    # The federal hub does speak for COMAR.
    assert len(fed.lookup().get_json()["records"]) == 1


def test_a_consulate_registered_on_the_federal_hub_needs_its_prefix(fed: Federation) -> None:
    consulate = honduran_consulate(fed.asker, scopes=LOOKUP_SCOPES)
    assert fed.lookup(consulate, purpose="family_tracing_reunification").status_code == 200
    with fed.holder.app_context(), db.database(fed.holder).sessions.begin() as session:
        set_agency_prefixes(session, ASKER_ID, ["mx.fed."])
    problem(fed.lookup(consulate, purpose="family_tracing_reunification"), 502, "unavailable")
    [refused] = [
        e for e in entries(fed.holder, "federation_envelope_received") if e["outcome"] == "failure"
    ]
    assert refused["reason_code"] == "refused.forbidden"


# -- what the asking hub makes of a peer's answer ------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [{"answer": 12}, {"answer": None}, {"answer": []}, {"answer": {}}, [], "lookup_answer"],
)
def test_an_answer_without_an_envelope_is_discarded(
    fed: Federation, monkeypatch: pytest.MonkeyPatch, answer: Any
) -> None:
    def odd(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        return HttpAnswer(200, "application/json", json.dumps(answer).encode())

    monkeypatch.setattr(federation, "post_envelope", odd)
    problem(fed.lookup(), 502, "unavailable")
    [discarded] = entries(fed.asker, "federation_envelope_received")
    assert discarded["outcome"] == "failure" and discarded["reason_code"] == "lookup_answer"


def test_a_peers_refusal_is_passed_on_in_the_askers_language(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An agency the asking hub registered before it refused ids its peers speak for.
    monkeypatch.setattr("exchange.agencies._check_not_a_peers", lambda session, agency_id: [])
    namesake = add_agency(fed.asker, OWNER, scopes=LOOKUP_SCOPES)
    for language, words in (
        ("en", "is an agency of this hub"),
        ("es", "es una agencia de este nodo"),
    ):
        response = fed.lookup(namesake, language=language, purpose="case_management")
        assert words in problem(response, 502, "unavailable")["detail"]


def test_a_peers_error_page_is_not_passed_on(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        page = b"<html><body><h1>Internal Server Error</h1>/srv/puente/app.py</body></html>"
        return HttpAnswer(500, "text/html", page)

    monkeypatch.setattr(federation, "post_envelope", broken)
    detail = problem(fed.lookup(language="en"), 502, "unavailable")["detail"]
    assert "HTTP 500" in detail
    assert "<html>" not in detail and "/srv/puente" not in detail
