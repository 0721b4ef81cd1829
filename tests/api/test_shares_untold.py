"""What a recipient is shown of the shares made to it: only those it was told of. A transfer
whose request notice was withheld before it reached the recipient — consent revoked while it
waited, or the transfer withdrawn before its turn — told it nothing of the child
(docs/consent.md §8.7): ``GET /v1/shares`` does not list it, and the transfer and its record
answer the recipient as if they did not exist (§8.4). The sender still sees it. And the
answers and withdrawals of transfers name the agency system that acted as ``system``, as the
acceptance does."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from test_referrals_transfers import CLINIC, OWNER, SHELTER, Hub, hub, transfer
from test_revocation_recipients import inbox, revoke, statuses

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.outbox_delivery import DeliveryPolicy, deliver_batch

__all__ = ["hub"]  # the fixture this module uses

POLICY = DeliveryPolicy(max_attempts=5, backoff_seconds=10, backoff_max_seconds=100)
#: What the sender writes: free text about the case, for the recipient's eyes only.
REASON = "La niña denunció maltrato del tío; se muda con su abuela a Tapachula."
UNKNOWN_TRANSFER = "shr_000000000000000000000000"
UNKNOWN_RECORD = "rec_00000000000000000000"


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def deliver(self, agency: Any, message: Any) -> None:
        self.sent.append((agency.id, message.kind))


def run_worker(hub: Hub) -> Recording:
    """One pass of ``puente worker --once``."""
    transport = Recording()
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        deliver_batch(session, transport, POLICY, 50)
    return transport


def ask_transfer(hub: Hub, record_id: str, to: str = CLINIC) -> str:
    answer = hub.post(OWNER, f"/v1/records/{record_id}/transfers", {"to": to, "reason": REASON})
    assert answer.status_code == 201, answer.get_json()
    return str(answer.get_json()["id"])


def listed(hub: Hub, agency: str, query: str = "") -> list[dict[str, Any]]:
    answer = hub.client.get(f"/v1/shares{query}", headers=hub.headers(agency))
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["shares"])


def problem(answer: Any) -> tuple[int, str, str]:
    body = answer.get_json()
    return answer.status_code, body["type"], body["detail"]


def assert_unknown_to(hub: Hub, agency: str, share_id: str, record_id: str) -> None:
    """``agency`` is answered about the transfer and its record exactly as about ones that do
    not exist: no 403, no share status, no record id."""
    for action in ("accept", "reject", "withdraw"):
        answer = hub.post(agency, f"/v1/transfers/{share_id}/{action}", {})
        unknown = hub.post(agency, f"/v1/transfers/{UNKNOWN_TRANSFER}/{action}", {})
        assert problem(answer)[:2] == problem(unknown)[:2] == (404, problem(unknown)[1])
        assert problem(answer)[2] == problem(unknown)[2].replace(UNKNOWN_TRANSFER, share_id)
        assert record_id not in answer.get_data(as_text=True)
    for route, body in (
        ("referrals", {"to": SHELTER, "purpose": "health_care", "categories": ["health"]}),
        ("transfers", {"to": SHELTER, "reason": "Otra entidad."}),
    ):
        answer = hub.post(agency, f"/v1/records/{record_id}/{route}", body)
        unknown = hub.post(agency, f"/v1/records/{UNKNOWN_RECORD}/{route}", body)
        assert answer.status_code == 404, answer.get_json()
        assert problem(answer) == problem(unknown)


# --- told nothing: shown nothing ------------------------------------------------------------


def test_a_transfer_the_revocation_stopped_before_its_request_went_out_is_not_shown(
    hub: Hub,
) -> None:
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id)
    assert CLINIC not in revoke(hub, record_id)
    assert run_worker(hub).sent == []
    assert statuses(hub, CLINIC) == {"transfer.requested": "withheld"}
    assert inbox(hub, CLINIC) == []

    assert listed(hub, CLINIC, "?role=received") == []
    assert listed(hub, CLINIC) == []
    assert listed(hub, CLINIC, "?role=received&kind=transfer&status=pending") == []
    assert_unknown_to(hub, CLINIC, share_id, record_id)
    # The sender's view is whole: it made the transfer, which ended as its request was
    # withheld (the record is free for another: tests/api/test_share_withheld_s16.py).
    [sent] = listed(hub, OWNER, "?role=sent")
    assert (sent["id"], sent["status"], sent["reason"]) == (share_id, "cancelled", REASON)
    assert "The transfer's request was withheld" in sent["decision_reason"]
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 409
    assert listed(hub, CLINIC) == []


def test_a_held_transfer_the_revocation_stopped_is_not_shown_nor_handed_out_by_the_list(
    hub: Hub,
) -> None:
    """No webhook: the request is kept for the shelter to read. Listing shares decides it as
    reading the notifications would: consent no longer permits it, so it is withheld."""
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id, to=SHELTER)
    assert SHELTER not in revoke(hub, record_id)

    assert listed(hub, SHELTER, "?role=received") == []
    assert statuses(hub, SHELTER) == {"transfer.requested": "withheld"}
    assert inbox(hub, SHELTER) == []
    assert_unknown_to(hub, SHELTER, share_id, record_id)


def test_a_transfer_withdrawn_before_its_request_went_out_is_not_shown(hub: Hub) -> None:
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id)
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    assert run_worker(hub).sent == []  # neither the request nor its withdrawal

    assert listed(hub, CLINIC) == []
    assert_unknown_to(hub, CLINIC, share_id, record_id)
    assert [s["status"] for s in listed(hub, OWNER, "?role=sent")] == ["cancelled"]


def test_a_held_transfer_withdrawn_unread_is_not_shown(hub: Hub) -> None:
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id, to=SHELTER)
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200

    assert listed(hub, SHELTER) == []
    assert statuses(hub, SHELTER)["transfer.requested"] == "withheld"
    assert_unknown_to(hub, SHELTER, share_id, record_id)


def test_the_list_goes_past_shares_the_recipient_was_not_told_of(hub: Hub) -> None:
    told_record = hub.push(local_id="EXP-1")
    told = ask_transfer(hub, told_record)
    assert run_worker(hub).sent == [(CLINIC, "transfer.requested")]
    untold_record = hub.push(local_id="EXP-2")
    untold = ask_transfer(hub, untold_record)
    assert hub.post(OWNER, f"/v1/transfers/{untold}/withdraw", {}).status_code == 200
    run_worker(hub)

    assert [s["id"] for s in listed(hub, CLINIC, "?role=received&limit=1")] == [told]
    assert [s["id"] for s in listed(hub, OWNER, "?role=sent&limit=1")] == [untold]


# --- told: still shown ----------------------------------------------------------------------


def test_a_transfer_whose_request_was_delivered_stays_shown_after_a_revocation(
    hub: Hub,
) -> None:
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id)
    assert run_worker(hub).sent == [(CLINIC, "transfer.requested")]
    assert CLINIC in revoke(hub, record_id)

    [shown] = listed(hub, CLINIC, "?role=received")
    assert (shown["id"], shown["reason"]) == (share_id, REASON)
    refused = hub.post(CLINIC, f"/v1/transfers/{share_id}/accept", {})
    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["type"].endswith("/consent-denied")


def test_a_held_transfer_the_list_showed_was_told_and_hears_of_the_revocation(
    hub: Hub,
) -> None:
    """Listed before the revocation, the request counts as read (handed out): the shelter
    keeps seeing it and is told of the revocation, as if it had read the notification."""
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id, to=SHELTER)
    assert [s["id"] for s in listed(hub, SHELTER)] == [share_id]

    assert SHELTER in revoke(hub, record_id)
    assert [s["id"] for s in listed(hub, SHELTER)] == [share_id]
    assert hub.post(SHELTER, f"/v1/transfers/{share_id}/accept", {}).status_code == 403
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    assert "transfer.withdrawn" in inbox(hub, SHELTER)


def test_a_held_transfer_is_answered_by_its_id_while_consent_permits_it(hub: Hub) -> None:
    """Its id, not the list: the request is decided and handed out then."""
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id, to=SHELTER)
    rejected = hub.post(SHELTER, f"/v1/transfers/{share_id}/reject", {"reason": "Sin cupo."})
    assert rejected.status_code == 200, rejected.get_json()
    [shown] = listed(hub, SHELTER)
    assert (shown["id"], shown["status"]) == (share_id, "rejected")


def test_a_transfer_the_recipient_answered_before_its_request_went_out_stays_shown(
    hub: Hub,
) -> None:
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id)
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/reject", {}).status_code == 200
    assert run_worker(hub).sent == [(OWNER, "transfer.rejected")]  # the request is withheld

    assert [(s["id"], s["status"]) for s in listed(hub, CLINIC)] == [(share_id, "rejected")]
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept", {}).status_code == 409


def test_the_previous_owner_is_shown_the_referral_a_transfer_leaves_it(hub: Hub) -> None:
    record_id = hub.push()
    share_id = transfer(hub, record_id).get_json()["id"]
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept", {}).status_code == 200
    [continuity] = listed(hub, OWNER, "?role=received")
    assert (continuity["kind"], continuity["from"]) == ("referral", CLINIC)


# --- who answered and withdrew --------------------------------------------------------------


def logged(hub: Hub, action: str) -> list[dict[str, Any]]:
    with db.database(hub.app).sessions() as session:
        return [
            json.loads(entry)
            for entry in session.scalars(
                select(AuditEntry.entry).where(AuditEntry.action == action)
            )
        ]


def test_transfer_answers_and_withdrawals_name_the_agency_system_as_the_acceptance_does(
    hub: Hub,
) -> None:
    rejected_record = hub.push(local_id="EXP-1")
    share_id = transfer(hub, rejected_record).get_json()["id"]
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/reject", {}).status_code == 200
    withdrawn_record = hub.push(local_id="EXP-2")
    share_id = transfer(hub, withdrawn_record).get_json()["id"]
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    accepted_record = hub.push(local_id="EXP-3")
    share_id = transfer(hub, accepted_record).get_json()["id"]
    assert hub.post(CLINIC, f"/v1/transfers/{share_id}/accept", {}).status_code == 200

    [rejected] = logged(hub, "transfer_rejected")
    [withdrawn] = logged(hub, "transfer_withdrawn")
    [accepted] = logged(hub, "transfer_accepted")
    assert accepted["actor"] == {"agency_id": CLINIC, "role": "system"}
    assert rejected["actor"] == {"agency_id": CLINIC, "role": "system"}
    assert withdrawn["actor"] == {"agency_id": OWNER, "role": "system"}
