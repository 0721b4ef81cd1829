"""Referrals and transfers within this hub: who may refer or transfer, what each gives the
recipient, that every action is audited and notified in its own transaction, and the refusals."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from audit import generate_signer_key
from exchange import db
from exchange.agencies import disable_agency, register_agency
from exchange.audit_log import AuditEntry
from exchange.auth import store_token
from exchange.outbox import OutboxMessage
from exchange.outbox_delivery import BatchResult, DeliveryPolicy, deliver_message
from exchange.peers import add_peer
from exchange.records import Record
from exchange.sharing import RecordShare

EXAMPLE = Path(__file__).resolve().parents[2] / "schemas/examples/case-record/1/valid/typical.json"

OWNER = "mx.chp.dif"  # state DIF, with a webhook
CLINIC = "mx.chp.tapachula.dif"  # municipal DIF, with a webhook
SHELTER = "mx.tab.dif"  # state DIF, no webhook
CLOSED = "mx.oax.dif"  # disabled
PROCURADURIA = "mx.chp.procuraduria"  # records consents for the children of Chiapas
SCOPES = ["records:write", "records:read"]

SHARING_CONSENT = {
    "status": "active",
    "grantor": {
        "type": "procuraduria",
        "representation": "suplencia",
        "agency_id": PROCURADURIA,
        "identity_verified": True,
    },
    "grantee": [{"agency_id": OWNER}, {"agency_id": CLINIC}, {"agency_id": SHELTER}],
    "decision": "deny",
    "period": {"start": "2026-01-01T00:00:00-06:00", "end": "2029-01-01T00:00:00-06:00"},
    "policy_basis": [{"code": "lgdnna_art_106_suplencia"}],
    "provision": [
        {
            "decision": "permit",
            "actor": [{"agency_id": OWNER}, {"agency_id": CLINIC}, {"agency_id": SHELTER}],
            "action": ["refer", "transfer"],
        }
    ],
}


@dataclass
class Hub:
    app: Flask
    client: FlaskClient
    tokens: dict[str, str]

    def headers(self, agency: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[agency]}", "Accept-Language": "en"}

    def post(self, agency: str, path: str, body: Any = None) -> Any:
        if body is None:
            return self.client.post(path, headers=self.headers(agency))
        return self.client.post(path, json=body, headers=self.headers(agency))

    def read(self, agency: str, record_id: str, purpose: str = "case_management") -> Any:
        return self.client.get(
            f"/v1/records/{record_id}?purpose={purpose}", headers=self.headers(agency)
        )

    def push(self, agency: str = OWNER, local_id: str = "EXP-1", consent: bool = True) -> str:
        """Push a record about a 14-year-old unaccompanied child and, unless ``consent`` is
        False, record the Procuraduría's consent to refer or transfer it among the agencies
        of these tests (reading without a referral stays closed)."""
        data = json.loads(EXAMPLE.read_text())
        data["child"]["date_of_birth"] = "2012-05-10"
        answer = self.post(
            agency, "/v1/records", {"schema": "case-record/1", "local_id": local_id, "data": data}
        )
        assert answer.status_code == 201, answer.get_json()
        if consent:
            recorded = self.post(
                PROCURADURIA,
                f"/v1/children/{answer.get_json()['child_id']}/consents",
                SHARING_CONSENT,
            )
            assert recorded.status_code == 201, recorded.get_json()["errors"]
        return str(answer.get_json()["record_id"])

    def revoke_consent(self, record_id: str) -> Any:
        """The Procuraduría revokes the consent :meth:`push` recorded for the record's child."""
        child_id = self.read(OWNER, record_id).get_json()["child_id"]
        consents = self.client.get(
            f"/v1/children/{child_id}/consents", headers=self.headers(PROCURADURIA)
        ).get_json()["consents"]
        return self.post(
            PROCURADURIA, f"/v1/consents/{consents[0]['id']}/revoke", {"reason": "Revocado."}
        )

    def deliver_unsent(self, kind: str) -> tuple[OutboxMessage, BatchResult]:
        """Deliver now the one queued ``kind`` notification through a transport that fails the
        test if anything is sent: the message as it is after the attempt, and the batch tally."""

        class Unreachable:
            def deliver(self, agency: Any, message: Any) -> None:
                raise AssertionError(f"the {kind} notification must be withheld, not sent")

        with self.app.app_context(), db.database(self.app).sessions() as session:
            [message] = session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == kind)
            ).all()
            message.lease_token, message.lease_until = "t", datetime.now(UTC) + timedelta(minutes=1)
            session.commit()
            result = BatchResult()
            deliver_message(
                session, message, Unreachable(), DeliveryPolicy.from_config(self.app), result
            )
            session.refresh(message)
        return message, result

    def outbox(self) -> list[OutboxMessage]:
        with db.database(self.app).sessions() as session:
            return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))

    def audit(self, entry_id: str) -> dict[str, Any]:
        with db.database(self.app).sessions() as session:
            entry = session.get_one(AuditEntry, entry_id)
            return dict(json.loads(entry.entry))

    def owner_of(self, record_id: str) -> str:
        with db.database(self.app).sessions() as session:
            return session.get_one(Record, record_id).owner_agency


@pytest.fixture
def hub(app: Flask) -> Hub:
    tokens = {}
    with app.app_context(), db.database(app).sessions.begin() as session:
        for agency_id, level, jurisdiction, webhook in (
            (OWNER, "state", "07", "https://dif.chiapas.example/puente"),
            (CLINIC, "municipal", "07089", "https://tapachula.example/hooks"),
            (SHELTER, "state", "27", None),
            (CLOSED, "state", "20", "https://oax.example/hooks"),
        ):
            register_agency(
                session, agency_id, agency_id, level, jurisdiction, SCOPES, webhook_url=webhook
            )
            tokens[agency_id], _ = store_token(
                session, client_id=agency_id, scopes=SCOPES, agency_id=agency_id
            )
        register_agency(
            session, PROCURADURIA, PROCURADURIA, "state", "07", ["consent:write", "consent:read"]
        )
        tokens[PROCURADURIA], _ = store_token(
            session,
            client_id=PROCURADURIA,
            scopes=["consent:write", "consent:read"],
            agency_id=PROCURADURIA,
        )
        tokens["reader-only"], _ = store_token(
            session, client_id=OWNER, scopes=["records:read"], agency_id=OWNER
        )
        disable_agency(session, CLOSED)
    return Hub(app, app.test_client(), tokens)


def refer(hub: Hub, record_id: str, to: str = CLINIC, **body: Any) -> Any:
    request = {"to": to, "purpose": "health_care", "categories": ["identity", "health"], **body}
    return hub.post(OWNER, f"/v1/records/{record_id}/referrals", request)


def transfer(hub: Hub, record_id: str, to: str = CLINIC, by: str = OWNER) -> Any:
    body = {"to": to, "reason": "La familia se trasladó."}
    return hub.post(by, f"/v1/records/{record_id}/transfers", body)


# --- referrals -----------------------------------------------------------------------------


def test_referral_shares_the_record_at_once_and_is_audited_and_notified(hub: Hub) -> None:
    record_id = hub.push()
    assert hub.read(CLINIC, record_id).status_code == 404

    answer = refer(hub, record_id)

    assert answer.status_code == 201, answer.get_json()
    share = answer.get_json()
    assert share["id"].startswith("shr_")
    assert share["kind"] == "referral" and share["status"] == "accepted"
    assert (share["record_id"], share["from"], share["to"]) == (record_id, OWNER, CLINIC)
    assert (share["purpose"], share["categories"]) == ("health_care", ["identity", "health"])
    assert hub.read(CLINIC, record_id, "health_care").status_code == 200
    # The referral is for health care: it opens no read for another purpose.
    assert hub.read(CLINIC, record_id).status_code == 403
    assert hub.read(SHELTER, record_id, "health_care").status_code == 404  # nobody else
    assert hub.owner_of(record_id) == OWNER

    entry = hub.audit(share["audit_entry"])
    assert entry["action"] == "record_referred" and entry["outcome"] == "success"
    assert entry["actor"]["agency_id"] == OWNER and entry["record_id"] == record_id
    assert entry["purpose"] == "health_care" and entry["reason_code"] == f"to.{CLINIC}"

    [message] = hub.outbox()
    assert (message.agency_id, message.kind, message.status) == (
        CLINIC,
        "record.referred",
        "pending",
    )
    with db.database(hub.app).sessions() as session:
        record = session.get_one(Record, record_id)
    payload = message.payload
    assert payload["share_id"] == share["id"] and payload["record_id"] == record_id
    assert payload["record_version"] == 1 and payload["child_id"] == record.child_id
    assert payload["purpose"] == "health_care" and payload["kind"] == "referral"
    # Identifiers and codes only: nothing of the case itself travels in a notification.
    assert set(payload) == {
        "event", "share_id", "kind", "status", "record_id", "record_version", "child_id",
        "purpose", "categories", "from", "to", "occurred_at", "record_url",
    }  # fmt: skip
    assert payload["record_url"].endswith(f"/v1/records/{record_id}?purpose=health_care")


def test_recipient_without_a_webhook_reads_its_notification_and_finds_the_share(
    hub: Hub,
) -> None:
    record_id = hub.push()
    assert refer(hub, record_id, to=SHELTER).status_code == 201
    # Kept for it to read (held), never sent.
    assert [(m.agency_id, m.kind, m.status) for m in hub.outbox()] == [
        (SHELTER, "record.referred", "held")
    ]
    inbox = hub.client.get("/v1/notifications", headers=hub.headers(SHELTER))
    assert inbox.status_code == 200, inbox.get_json()
    [notice] = inbox.get_json()["notifications"]
    assert notice["event"] == "record.referred"
    assert notice["payload"]["record_id"] == record_id
    listed = hub.client.get("/v1/shares?role=received", headers=hub.headers(SHELTER))
    assert [s["record_id"] for s in listed.get_json()["shares"]] == [record_id]


def test_only_the_owner_may_refer_and_strangers_cannot_tell_the_record_exists(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    # The clinic reads the record through the referral, but may not pass it on.
    onward = hub.post(
        CLINIC,
        f"/v1/records/{record_id}/referrals",
        {"to": SHELTER, "purpose": "health_care", "categories": ["health"]},
    )
    assert onward.status_code == 403
    assert onward.get_json()["type"].endswith("/forbidden")
    # A stranger gets exactly the answer for a record that does not exist.
    body = {"to": CLINIC, "purpose": "health_care", "categories": ["health"]}
    stranger = hub.post(SHELTER, f"/v1/records/{record_id}/referrals", body)
    missing = hub.post(SHELTER, "/v1/records/rec_000000000000000000000000/referrals", body)
    assert stranger.status_code == missing.status_code == 404
    ignore = {"instance", "request_id"}
    assert {k: v for k, v in stranger.get_json().items() if k not in ignore} == {
        k: v for k, v in missing.get_json().items() if k not in ignore
    }
    with db.database(hub.app).sessions() as session:
        shares = session.scalars(select(RecordShare)).all()
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "record_referred", AuditEntry.outcome == "denied"
            )
        ).all()
    assert len(shares) == 1
    assert sorted(e.actor_agency or "" for e in denied) == sorted([CLINIC, SHELTER])


BAD_REFERRALS = [
    ({"to": CLINIC, "purpose": "curiosity", "categories": ["health"]}, "/purpose"),
    ({"to": CLINIC, "purpose": "health_care", "categories": ["diary"]}, "/categories/0"),
    ({"to": CLINIC, "purpose": "health_care", "categories": []}, "/categories"),
    ({"to": CLINIC, "purpose": "health_care"}, ""),
    ({"to": CLINIC, "purpose": "health_care", "categories": ["health"], "x": 1}, ""),
    ({"to": "mx.nowhere.dif", "purpose": "health_care", "categories": ["health"]}, "/to"),
    ({"to": CLOSED, "purpose": "health_care", "categories": ["health"]}, "/to"),
    ({"to": OWNER, "purpose": "health_care", "categories": ["health"]}, "/to"),
]


def test_bad_referrals_are_refused_with_a_pointer(hub: Hub) -> None:
    record_id = hub.push()
    for body, pointer in BAD_REFERRALS:
        answer = hub.post(OWNER, f"/v1/records/{record_id}/referrals", body)
        assert answer.status_code == 400, (body, answer.get_json())
        problem = answer.get_json()
        assert problem["type"].endswith("/validation")
        assert pointer in [error["pointer"] for error in problem["errors"]], (body, problem)
    assert hub.outbox() == []
    with db.database(hub.app).sessions() as session:
        assert session.scalars(select(RecordShare)).all() == []


def test_referral_needs_a_token_with_the_write_scope(hub: Hub) -> None:
    record_id = hub.push()
    body = {"to": CLINIC, "purpose": "health_care", "categories": ["health"]}
    assert hub.client.post(f"/v1/records/{record_id}/referrals", json=body).status_code == 401
    answer = hub.post("reader-only", f"/v1/records/{record_id}/referrals", body)
    assert answer.status_code == 403


def test_the_same_referral_twice_is_a_conflict(hub: Hub) -> None:
    record_id = hub.push()
    first = refer(hub, record_id).get_json()
    again = refer(hub, record_id)
    assert again.status_code == 409 and again.get_json()["share_id"] == first["id"]
    assert refer(hub, record_id, purpose="education").status_code == 201  # another purpose


# --- transfers -----------------------------------------------------------------------------


def test_transfer_moves_responsibility_only_when_the_recipient_accepts(hub: Hub) -> None:
    record_id = hub.push()
    created = transfer(hub, record_id)
    assert created.status_code == 201, created.get_json()
    share = created.get_json()
    assert (share["kind"], share["status"], share["to"]) == ("transfer", "pending", CLINIC)
    assert hub.audit(share["audit_entry"])["action"] == "record_transferred"
    # Pending: nothing moved, and the recipient may not read yet (it knows of the record
    # from the notification, so it hears why).
    assert hub.owner_of(record_id) == OWNER
    assert hub.read(CLINIC, record_id).status_code == 403
    [requested] = hub.outbox()
    assert (requested.agency_id, requested.kind) == (CLINIC, "transfer.requested")
    assert requested.payload["share_id"] == share["id"]

    accepted = hub.post(CLINIC, f"/v1/transfers/{share['id']}/accept")

    assert accepted.status_code == 200, accepted.get_json()
    body = accepted.get_json()
    assert body["status"] == "accepted" and body["decided_by"] == CLINIC
    assert body["decided_at"] is not None
    # The recipient now pushes the record under this local id (the record's own, by default).
    assert body["local_id"] == "EXP-1"
    entry = hub.audit(body["audit_entry"])
    assert entry["action"] == "transfer_accepted" and entry["actor"]["agency_id"] == CLINIC
    assert hub.owner_of(record_id) == CLINIC
    assert hub.read(CLINIC, record_id).get_json()["owner"] == CLINIC
    # The previous owner keeps reading for continuity, but is no longer responsible.
    assert hub.read(OWNER, record_id).status_code == 200
    assert refer(hub, record_id, to=SHELTER).status_code == 403
    assert transfer(hub, record_id, to=SHELTER).status_code == 403
    # The new owner may now refer and transfer.
    onward = hub.post(
        CLINIC,
        f"/v1/records/{record_id}/referrals",
        {"to": SHELTER, "purpose": "education", "categories": ["education"]},
    )
    assert onward.status_code == 201
    # The sender heard of the acceptance.
    kinds = [(m.agency_id, m.kind) for m in hub.outbox()]
    assert (OWNER, "transfer.accepted") in kinds


def test_only_the_recipient_may_accept_and_only_once(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    by_sender = hub.post(OWNER, f"/v1/transfers/{share_id}/accept")
    assert by_sender.status_code == 403
    by_stranger = hub.post(SHELTER, f"/v1/transfers/{share_id}/accept")
    assert by_stranger.status_code == 404
    unknown = hub.post(CLINIC, "/v1/transfers/shr_000000000000000000000000/accept")
    assert unknown.status_code == 404
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept").status_code == 200
    twice = hub.post(CLINIC, f"/v1/transfers/{share_id}/accept")
    assert twice.status_code == 409
    assert twice.get_json()["share_status"] == "accepted"
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/reject").status_code == 409
    assert hub.owner_of(record_id) == CLINIC


def test_each_party_is_refused_in_both_languages_what_only_the_other_may_do(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    recipient_only = (
        "Solo la agencia destinataria puede aceptar o rechazar la transferencia.",
        "Only the recipient agency may accept or reject the transfer.",
    )
    sender_only = (
        "Solo la agencia que pidió la transferencia puede retirarla.",
        "Only the agency that asked for the transfer may withdraw it.",
    )
    for agency, action, (spanish, english) in (
        (OWNER, "accept", recipient_only),
        (OWNER, "reject", recipient_only),
        (CLINIC, "withdraw", sender_only),
    ):
        path = f"/v1/transfers/{share_id}/{action}"
        refused = hub.post(agency, path, {"reason": "Sin cupo."})
        assert refused.status_code == 403
        assert refused.get_json()["type"].endswith("/forbidden")
        assert refused.get_json()["detail"] == english
        in_spanish = hub.client.post(
            path, json={}, headers={**hub.headers(agency), "Accept-Language": "es"}
        )
        assert in_spanish.get_json()["detail"] == spanish
        # The body is checked before the transfer is looked up, whoever asks.
        assert hub.post(SHELTER, path, {"why": "no"}).status_code == 400
    # Only accepting may name the recipient's local id.
    for agency, action in ((CLINIC, "reject"), (OWNER, "withdraw")):
        named = hub.post(agency, f"/v1/transfers/{share_id}/{action}", {"local_id": "EXP-9"})
        assert named.status_code == 400
    # None of it touched the transfer: the recipient can still accept it.
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept").status_code == 200


def test_a_referral_is_not_a_transfer_to_accept(hub: Hub) -> None:
    record_id = hub.push()
    share_id = refer(hub, record_id).get_json()["id"]
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept").status_code == 404


def test_rejected_transfer_changes_nothing_and_can_be_proposed_again(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    assert transfer(hub, record_id, to=SHELTER).status_code == 409  # one pending at a time
    rejected = hub.post(CLINIC, f"/v1/transfers/{share_id}/reject", {"reason": "Sin cupo."})
    assert rejected.status_code == 200
    body = rejected.get_json()
    assert (body["status"], body["decision_reason"]) == ("rejected", "Sin cupo.")
    assert hub.audit(body["audit_entry"])["action"] == "transfer_rejected"
    assert hub.owner_of(record_id) == OWNER
    assert hub.read(CLINIC, record_id).status_code == 403
    assert [(m.agency_id, m.kind) for m in hub.outbox()] == [
        (CLINIC, "transfer.requested"),
        (OWNER, "transfer.rejected"),
    ]
    assert transfer(hub, record_id, to=SHELTER).status_code == 201


def test_bad_transfers_are_refused(hub: Hub) -> None:
    record_id = hub.push()
    for body, pointer in (
        ({"to": CLINIC}, ""),
        ({"to": CLINIC, "reason": "   "}, "/reason"),
        ({"to": CLOSED, "reason": "x"}, "/to"),
        ({"to": OWNER, "reason": "x"}, "/to"),
    ):
        answer = hub.post(OWNER, f"/v1/records/{record_id}/transfers", body)
        assert answer.status_code == 400, (body, answer.get_json())
        assert pointer in [error["pointer"] for error in answer.get_json()["errors"]]
    assert transfer(hub, record_id, by=SHELTER).status_code == 404
    share_id = transfer(hub, record_id).get_json()["id"]
    bad_decision = hub.post(CLINIC, f"/v1/transfers/{share_id}/reject", {"why": "no"})
    assert bad_decision.status_code == 400
    assert hub.owner_of(record_id) == OWNER


def test_an_agency_of_a_pinned_peer_hub_is_named_as_another_hubs_not_as_unknown(
    hub: Hub,
) -> None:
    """Referring or transferring to an agency a peer hub speaks for is refused as a case
    between hubs (not built), not as a mistyped agency of this hub."""
    _, log_vkey = generate_signer_key("puente.fed.example/audit")
    with hub.app.app_context(), db.database(hub.app).sessions.begin() as session:
        add_peer(session, "mx.fed.puente", origin="puente.fed.example/audit", log_vkey=log_vkey)
    record_id = hub.push()
    comar = "mx.fed.comar"
    for path, body in (
        ("referrals", {"to": comar, "purpose": "health_care", "categories": ["health"]}),
        ("transfers", {"to": comar, "reason": "Solicitó asilo."}),
    ):
        for language in ("en", "es"):
            answer = hub.client.post(
                f"/v1/records/{record_id}/{path}",
                json=body,
                headers={**hub.headers(OWNER), "Accept-Language": language},
            )
            assert answer.status_code == 400, answer.get_json()
            (error,) = answer.get_json()["errors"]
            assert error["pointer"] == "/to"
            assert "mx.fed.puente" in error["message"]
            assert ("otro nodo" if language == "es" else "another hub") in error["message"]
    unknown = refer(hub, record_id, to="mx.nowhere.dif").get_json()["errors"][0]["message"]
    assert "mx.fed.puente" not in unknown and "another hub" not in unknown
    assert hub.outbox() == []


def test_concurrent_accepts_succeed_once(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def accept() -> None:
        client = hub.app.test_client()
        barrier.wait()
        answer = client.post(f"/v1/transfers/{share_id}/accept", headers=hub.headers(CLINIC))
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=accept) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200, 409, 409, 409]
    with db.database(hub.app).sessions() as session:
        continuity = session.scalars(
            select(RecordShare).where(RecordShare.agency_id == OWNER)
        ).all()
        accepted_entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "transfer_accepted")
        ).all()
    assert len(continuity) == 1 and len(accepted_entries) == 1
    assert [m.kind for m in hub.outbox()].count("transfer.accepted") == 1


def test_no_action_without_its_notification(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    record_id = hub.push()

    def broken_enqueue(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr("exchange.sharing.enqueue", broken_enqueue)
    assert refer(hub, record_id).status_code == 500
    with db.database(hub.app).sessions() as session:
        assert session.scalars(select(RecordShare)).all() == []
        assert (
            session.scalars(select(AuditEntry).where(AuditEntry.action == "record_referred")).all()
            == []
        )
    assert hub.read(CLINIC, record_id).status_code == 404


def test_listing_shares(hub: Hub) -> None:
    first = hub.push(local_id="EXP-1")
    second = hub.push(local_id="EXP-2")
    refer(hub, first)
    pending = transfer(hub, second).get_json()["id"]

    def listed(agency: str, query: str) -> list[str]:
        answer = hub.client.get(f"/v1/shares{query}", headers=hub.headers(agency))
        assert answer.status_code == 200, answer.get_json()
        return [share["id"] for share in answer.get_json()["shares"]]

    assert listed(CLINIC, "?role=received&kind=transfer&status=pending") == [pending]
    assert len(listed(CLINIC, "")) == 2 and len(listed(OWNER, "?role=sent")) == 2
    assert listed(OWNER, "?role=received") == [] and listed(SHELTER, "") == []
    bad = hub.client.get("/v1/shares?status=maybe", headers=hub.headers(CLINIC))
    assert bad.status_code == 400


# --- the consent decision for the recipient ------------------------------------------------


def test_without_consent_referrals_and_transfers_are_denied_with_reasons(hub: Hub) -> None:
    record_id = hub.push(consent=False)
    for answer in (refer(hub, record_id), transfer(hub, record_id)):
        assert answer.status_code == 403
        problem = answer.get_json()
        assert problem["type"].endswith("/consent-denied")
        assert problem["decision"]["result"] == "deny"
        entry = hub.audit(problem["decision"]["id"])
        assert entry["outcome"] == "denied"
        assert entry["decision"]["basis"] == "default_deny"
    assert hub.outbox() == []
    with db.database(hub.app).sessions() as session:
        assert session.scalars(select(RecordShare)).all() == []


def test_reads_under_referrals_follow_the_purpose_of_each(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201  # health care: identity, health
    education = hub.post(
        OWNER,
        f"/v1/records/{record_id}/referrals",
        {"to": CLINIC, "purpose": "education", "categories": ["identity", "education"]},
    )
    assert education.status_code == 201, education.get_json()
    health = hub.read(CLINIC, record_id, "health_care").get_json()
    assert set(health["decision"]["categories"]) == {"identity", "health"}
    assert "education" not in health["data"]
    schooling = hub.read(CLINIC, record_id, "education").get_json()
    assert set(schooling["decision"]["categories"]) == {"identity", "education"}
    assert "health" not in schooling["data"]


def test_a_referral_carries_only_the_permitted_categories(hub: Hub) -> None:
    record_id = hub.push(consent=False)
    narrow = json.loads(json.dumps(SHARING_CONSENT))
    narrow["provision"][0]["data_category"] = ["identity"]
    child_id = hub.read(OWNER, record_id).get_json()["child_id"]
    assert hub.post(PROCURADURIA, f"/v1/children/{child_id}/consents", narrow).status_code == 201
    answer = refer(hub, record_id)
    assert answer.status_code == 201
    assert answer.get_json()["categories"] == ["identity"]
    read = hub.read(CLINIC, record_id, "health_care").get_json()
    assert read["decision"]["categories"] == ["identity"]
    assert "health" not in read["data"]
    # A transfer moves the whole case: a consent that covers only part of it is not enough.
    refused = transfer(hub, record_id)
    assert refused.status_code == 403
    assert refused.get_json()["withheld_categories"]


def test_a_revocation_withholds_queued_deliveries(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    assert hub.revoke_consent(record_id).status_code == 200
    assert hub.read(CLINIC, record_id).status_code == 403

    message, result = hub.deliver_unsent("record.referred")
    assert message.status == "withheld"
    assert result.withheld == 1
    with db.database(hub.app).sessions() as session:
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "record_referred", AuditEntry.outcome == "denied"
            )
        ).all()
    # The entry names the attempt and the recipient it was not sent to.
    assert denied and json.loads(denied[-1].entry)["reason_code"] == (
        f"delivery.attempt_1.to.{CLINIC}"
    )


def test_a_transfer_under_partial_consent_is_refused_as_a_whole_and_says_why(hub: Hub) -> None:
    record_id = hub.push(consent=False)
    narrow = json.loads(json.dumps(SHARING_CONSENT))
    narrow["provision"][0]["data_category"] = ["identity"]
    child_id = hub.read(OWNER, record_id).get_json()["child_id"]
    consent = hub.post(PROCURADURIA, f"/v1/children/{child_id}/consents", narrow).get_json()

    refused = transfer(hub, record_id)
    assert refused.status_code == 403
    problem = refused.get_json()
    assert problem["type"].endswith("/consent-denied")
    missing = [
        "contact_location",
        "family",
        "health",
        "education",
        "protection_concerns",
        "legal_status",
        "placement",
        "best_interest",
        "legal_representation",
    ]
    decision = problem["decision"]
    # The transfer's verdict, not the engine's per-category permit: nothing may move.
    assert decision["result"] == "deny"
    assert decision["categories"] == []
    assert decision["withheld"] == missing
    assert decision["needs_every_category"] is True
    assert decision["covered"] == ["identity"]
    assert decision["basis"] == "consent"  # the consent's base decision withholds the rest
    assert decision["consent_ids"] == [consent["id"]]
    assert problem["withheld_categories"] == missing
    assert "whole record" in problem["detail"]
    assert "every data category" in problem["detail"]
    assert "Health" in problem["detail"] and "Identity" in problem["detail"]
    assert refused.headers["Puente-Decision"] == decision["id"]

    # The audit entry says what the answer says.
    entry = hub.audit(decision["id"])
    assert entry["action"] == "record_transferred"
    assert entry["outcome"] == "denied"
    assert entry["decision"]["result"] == "deny"
    assert entry["decision"]["basis"] == "consent"
    assert "categories" not in entry["decision"]

    spanish = hub.client.post(
        f"/v1/records/{record_id}/transfers",
        json={"to": CLINIC, "reason": "La familia se trasladó."},
        headers={**hub.headers(OWNER), "Accept-Language": "es"},
    ).get_json()
    assert "todo el expediente" in spanish["detail"]
    assert "cada categoría" in spanish["detail"]
    assert "Salud" in spanish["detail"]
    with db.database(hub.app).sessions() as session:
        assert session.scalars(select(RecordShare)).all() == []


def test_accepting_a_transfer_after_consent_narrowed_is_refused_as_a_whole(hub: Hub) -> None:
    record_id = hub.push()
    share = transfer(hub, record_id).get_json()
    child_id = hub.read(OWNER, record_id).get_json()["child_id"]
    # The Procuraduría now forbids moving the child's health data anywhere.
    restriction = json.loads(json.dumps(SHARING_CONSENT))
    restriction["provision"] = [{"decision": "deny", "data_category": ["health"]}]
    assert (
        hub.post(PROCURADURIA, f"/v1/children/{child_id}/consents", restriction).status_code == 201
    )
    refused = hub.post(CLINIC, f"/v1/transfers/{share['id']}/accept")
    assert refused.status_code == 403
    decision = refused.get_json()["decision"]
    assert decision["result"] == "deny"
    assert decision["withheld"] == ["health"]
    assert "health" not in decision["covered"] and "identity" in decision["covered"]
    assert "Health" in refused.get_json()["detail"]
    assert hub.audit(decision["id"])["decision"]["result"] == "deny"
    assert hub.owner_of(record_id) == OWNER


def test_the_sender_withdraws_a_transfer_that_can_no_longer_be_accepted(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    # The consent that allowed it is revoked: the recipient can no longer accept ...
    assert hub.revoke_consent(record_id).status_code == 200
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept", {}).status_code == 403
    # ... and the pending transfer would block every other transfer of the record.
    assert transfer(hub, record_id, to=SHELTER).status_code == 409
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 403
    withdrawn = hub.post(
        OWNER, f"/v1/transfers/{share_id}/withdraw", {"reason": "Sin consentimiento."}
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    body = withdrawn.get_json()
    assert (body["status"], body["decision_reason"]) == ("cancelled", "Sin consentimiento.")
    assert hub.audit(body["audit_entry"])["action"] == "transfer_withdrawn"
    assert (CLINIC, "transfer.withdrawn") in [(m.agency_id, m.kind) for m in hub.outbox()]
    assert hub.owner_of(record_id) == OWNER
    again = hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {})
    assert again.status_code == 409
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept", {}).status_code == 409
    # Nothing blocks a new transfer now (refused or not by consent, it is no longer a 409).
    assert transfer(hub, record_id, to=SHELTER).status_code != 409


def test_a_transfer_request_answered_before_delivery_is_not_announced(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/reject", {}).status_code == 200

    message, result = hub.deliver_unsent("transfer.requested")
    assert message.status == "withheld" and result.withheld == 1
    assert "no longer pending" in (message.last_error or "")


def test_a_withdrawal_of_a_transfer_never_announced_is_not_announced_either(hub: Hub) -> None:
    """The recipient was never told of the request (it was withdrawn before the notice went
    out): hearing only that it is off would tell it of a transfer it never saw."""
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200

    requested, _ = hub.deliver_unsent("transfer.requested")
    assert requested.status == "withheld"
    withdrawn, result = hub.deliver_unsent("transfer.withdrawn")
    assert withdrawn.status == "withheld" and result.withheld == 1
    assert "never reached the recipient" in (withdrawn.last_error or "")


def test_a_withdrawal_of_a_transfer_the_recipient_heard_of_is_announced(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    with db.database(hub.app).sessions() as session:  # the request's notice went out
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.kind == "transfer.requested")
            .values(status="delivered")
        )
        session.commit()
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    sent: list[str] = []

    class Recording:
        def deliver(self, agency: Any, message: Any) -> None:
            sent.append(message.kind)

    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        [message] = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "transfer.withdrawn")
        ).all()
        message.lease_token, message.lease_until = "t", datetime.now(UTC) + timedelta(minutes=1)
        session.commit()
        deliver_message(
            session, message, Recording(), DeliveryPolicy.from_config(hub.app), BatchResult()
        )
    assert sent == ["transfer.withdrawn"]
