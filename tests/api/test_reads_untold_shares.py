"""Reading a record through a share its recipient was never told of. A referral or transfer
whose notice was withheld before it reached the recipient — consent revoked while it waited,
the transfer withdrawn before its turn — told it nothing of the child (docs/consent.md §8.7):
reading the record answers it the same ``404`` as a record that does not exist, after the
same floor, never the ``403`` a holder gets (§8.4); and the share does not let it find the
child by search, nor name it in a push. A share it was told of still counts, and a notice kept
for it to read is decided by the read as ``GET /v1/notifications`` would decide it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from test_referrals_transfers import (
    CLINIC,
    EXAMPLE,
    OWNER,
    PROCURADURIA,
    SHARING_CONSENT,
    SHELTER,
    Hub,
    hub,
    refer,
)
from test_revocation_recipients import inbox, revoke, statuses
from test_shares_untold import UNKNOWN_RECORD, ask_transfer, listed, run_worker

from exchange import db
from exchange.agencies import Agency
from exchange.api.record_reads import DECISION_HEADER
from exchange.audit_log import AuditEntry
from exchange.auth import Actor
from exchange.child_search import Candidate, possibly_known, told_to_recipient
from exchange.outbox import OutboxMessage, enqueue
from exchange.records import Record
from exchange.sharing import RecordShare, told_shares

__all__ = ["hub"]  # the fixture this module uses

CURP = "EEFK080702HNEJCVA9"  # the pushed example's
UNKNOWN_CHILD = "nna_00000000000000000000"
ROUTES = ("/v1/records/{}", "/v1/records/{}/versions")


def child_of(hub: Hub, record_id: str) -> str:
    with db.database(hub.app).sessions() as session:
        return session.get_one(Record, record_id).child_id


def comparable(answer: Any, record_id: str) -> tuple[int, str, str]:
    """The answer as its reader sees it, the id it asked about blanked out."""
    body = {k: v for k, v in answer.get_json().items() if k not in {"instance", "request_id"}}
    shown = json.dumps(body, sort_keys=True, ensure_ascii=False).replace(record_id, "<id>")
    return answer.status_code, answer.mimetype, shown


def assert_read_as_unknown(
    hub: Hub, agency: str, record_id: str, purpose: str = "case_management"
) -> None:
    """``agency`` reads the record, its versions and its child's records exactly as if
    neither existed."""
    for route in ROUTES:
        query = f"?purpose={purpose}"
        answer = hub.client.get(route.format(record_id) + query, headers=hub.headers(agency))
        unknown = hub.client.get(route.format(UNKNOWN_RECORD) + query, headers=hub.headers(agency))
        assert answer.status_code == 404, answer.get_json()
        assert comparable(answer, record_id) == comparable(unknown, UNKNOWN_RECORD)
        assert DECISION_HEADER not in answer.headers
    child_id = child_of(hub, record_id)
    records = hub.client.get(
        f"/v1/children/{child_id}/records?purpose={purpose}", headers=hub.headers(agency)
    )
    assert records.get_json() == {"child_id": child_id, "records": []}


def assert_refused_as_holder(
    hub: Hub, agency: str, record_id: str, purpose: str = "case_management"
) -> None:
    for route in ROUTES:
        answer = hub.client.get(
            route.format(record_id) + f"?purpose={purpose}", headers=hub.headers(agency)
        )
        assert answer.status_code == 403, answer.get_json()
        assert answer.get_json()["type"].endswith("/consent-denied")


def held_notice(hub: Hub, agency: str, kind: str) -> tuple[str, int]:
    with db.database(hub.app).sessions() as session:
        [message] = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.agency_id == agency, OutboxMessage.kind == kind
            )
        ).all()
        return message.status, message.attempts


def deliveries_decided_for(hub: Hub, agency: str) -> list[dict[str, Any]]:
    with db.database(hub.app).sessions() as session:
        entries = [json.loads(entry) for entry in session.scalars(select(AuditEntry.entry))]
    return [
        entry
        for entry in entries
        if str(entry.get("reason_code", "")).startswith("delivery.")
        and str(entry.get("reason_code", "")).endswith(f".to.{agency}")
    ]


def withhold_referral(hub: Hub, record_id: str) -> None:
    """Revoke the consent before the clinic's referral notice goes out: the worker withholds
    it (and the clinic, told nothing, gets no revocation notice either)."""
    revoke(hub, record_id)
    assert (CLINIC, "record.referred") not in run_worker(hub).sent
    assert statuses(hub, CLINIC)["record.referred"] == "withheld"


# --- told nothing: read as an unknown record ------------------------------------------------


def test_a_transfer_the_revocation_stopped_before_its_request_went_out_is_read_as_unknown(
    hub: Hub,
) -> None:
    record_id = hub.push()
    ask_transfer(hub, record_id)
    assert CLINIC not in revoke(hub, record_id)
    assert run_worker(hub).sent == []
    assert statuses(hub, CLINIC) == {"transfer.requested": "withheld"}

    assert_read_as_unknown(hub, CLINIC, record_id)
    # The owner still reads it.
    assert hub.read(OWNER, record_id).status_code == 200


def test_a_transfer_withdrawn_before_its_request_went_out_is_read_as_unknown(hub: Hub) -> None:
    """Consent still permits the transfer, not a read: to an agency told of the transfer the
    refusal would be a 403."""
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id)
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200
    assert run_worker(hub).sent == []

    assert_read_as_unknown(hub, CLINIC, record_id)


def test_a_referral_whose_notice_the_revocation_stopped_is_read_as_unknown(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    withhold_referral(hub, record_id)

    assert_read_as_unknown(hub, CLINIC, record_id, "health_care")
    assert_read_as_unknown(hub, CLINIC, record_id)


def test_the_refusal_takes_the_floor_of_an_unknown_record(hub: Hub) -> None:
    record_id = hub.push()
    ask_transfer(hub, record_id)
    revoke(hub, record_id)
    run_worker(hub)
    hub.app.config["READ_REFUSAL_FLOOR"] = 0.3
    try:
        for path in (f"/v1/records/{record_id}", f"/v1/records/{record_id}/versions"):
            started = time.perf_counter()
            answer = hub.client.get(path + "?purpose=case_management", headers=hub.headers(CLINIC))
            assert answer.status_code == 404, answer.get_json()
            assert time.perf_counter() - started >= 0.3
    finally:
        hub.app.config["READ_REFUSAL_FLOOR"] = 0


def test_a_held_transfer_the_revocation_stopped_is_decided_by_the_read_as_unknown(
    hub: Hub,
) -> None:
    """No webhook: the request is kept for the shelter to read. Its read decides it as reading
    the notifications would — consent no longer permits it, so it is withheld, and the
    decision is audited — and answers as for an unknown record."""
    record_id = hub.push()
    ask_transfer(hub, record_id, to=SHELTER)
    assert SHELTER not in revoke(hub, record_id)
    assert deliveries_decided_for(hub, SHELTER) == []

    assert_read_as_unknown(hub, SHELTER, record_id)
    assert held_notice(hub, SHELTER, "transfer.requested") == ("withheld", 1)
    [decided] = deliveries_decided_for(hub, SHELTER)
    assert decided["decision"]["result"] == "deny"
    assert inbox(hub, SHELTER) == []
    assert listed(hub, SHELTER) == []


# --- told: refused as a holder ----------------------------------------------------------------


def test_a_held_transfer_read_while_consent_permits_it_is_handed_out_by_the_read(
    hub: Hub,
) -> None:
    """The read tells the shelter it holds the transfer (403, not 404): the request counts as
    handed out, as if it had read its notifications, so it is shown the transfer and told of
    the revocation."""
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id, to=SHELTER)

    answer = hub.read(SHELTER, record_id)
    assert answer.status_code == 403, answer.get_json()
    assert held_notice(hub, SHELTER, "transfer.requested") == ("held", 1)
    [decided] = deliveries_decided_for(hub, SHELTER)
    assert decided["decision"]["result"] == "permit"
    assert [share["id"] for share in listed(hub, SHELTER)] == [share_id]
    assert SHELTER in revoke(hub, record_id)
    assert_refused_as_holder(hub, SHELTER, record_id)


def test_a_transfer_whose_request_was_delivered_is_still_refused_as_held(hub: Hub) -> None:
    record_id = hub.push()
    ask_transfer(hub, record_id)
    assert run_worker(hub).sent == [(CLINIC, "transfer.requested")]
    assert CLINIC in revoke(hub, record_id)

    assert_refused_as_holder(hub, CLINIC, record_id)


def test_a_transfer_withdrawn_after_its_request_went_out_is_still_refused_as_known(
    hub: Hub,
) -> None:
    record_id = hub.push()
    share_id = ask_transfer(hub, record_id)
    assert run_worker(hub).sent == [(CLINIC, "transfer.requested")]
    assert hub.post(OWNER, f"/v1/transfers/{share_id}/withdraw", {}).status_code == 200

    assert_refused_as_holder(hub, CLINIC, record_id)


# --- search and push ------------------------------------------------------------------------


def found_by(hub: Hub, agency: str, purpose: str) -> list[str]:
    answer = hub.post(
        agency,
        "/v1/children/search",
        {"purpose": purpose, "identifier": {"type": "curp", "value": CURP}},
    )
    assert answer.status_code == 200, answer.get_json()
    return [candidate["child_id"] for candidate in answer.get_json()["candidates"]]


def names_child(hub: Hub, agency: str, child_id: str) -> int:
    """The status of a push by ``agency`` of a record of its own naming ``child_id``."""
    data = json.loads(EXAMPLE.read_text())
    data["child"]["date_of_birth"] = "2012-05-10"
    body = {"schema": "case-record/1", "local_id": "OWN-1", "child_id": child_id, "data": data}
    return int(hub.post(agency, "/v1/records", body).status_code)


def test_a_referral_whose_notice_was_withheld_finds_no_child_once_consent_is_given_again(
    hub: Hub,
) -> None:
    """The referral names identity: while the clinic may be told of it, it lets the clinic find
    the child. Its notice withheld by the revocation, it told the clinic nothing — and a new
    consent permitting such referrals again does not make it tell anything."""
    record_id = hub.push()
    child_id = child_of(hub, record_id)
    assert found_by(hub, CLINIC, "health_care") == []
    assert refer(hub, record_id).status_code == 201
    assert found_by(hub, CLINIC, "health_care") == [child_id]  # its notice is on its way

    withhold_referral(hub, record_id)
    again = hub.post(PROCURADURIA, f"/v1/children/{child_id}/consents", SHARING_CONSENT)
    assert again.status_code == 201, again.get_json()

    assert found_by(hub, CLINIC, "health_care") == []
    assert names_child(hub, CLINIC, UNKNOWN_CHILD) == names_child(hub, CLINIC, child_id) == 400
    assert_read_as_unknown(hub, CLINIC, record_id)
    # Nor does the untold referral permit a read for its own purpose.
    assert_read_as_unknown(hub, CLINIC, record_id, "health_care")


def test_a_share_the_agency_was_never_told_of_does_not_make_a_child_possibly_known(
    hub: Hub,
) -> None:
    """The search's first sieve: no consent, grant or override names the child, so only the
    agency's shares could let it be weighed — and not one it was never told of."""
    record_id = hub.push(consent=False)
    child_id = child_of(hub, record_id)
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        share = RecordShare(
            record_id=record_id,
            from_agency=OWNER,
            agency_id=CLINIC,
            kind="transfer",
            status="cancelled",
            purpose="case_management",
            categories=[],
        )
        session.add(share)
        session.flush()
        notice = enqueue(
            session,
            CLINIC,
            "transfer.requested",
            {"share_id": share.id, "record_id": record_id},
        )
        notice.status, notice.attempts = "withheld", 1
        session.commit()
        candidate = [Candidate(child_id, 1.0, ("curp",))]
        clinic = Actor.for_agency(session.get_one(Agency, CLINIC), scopes=["records:read"])
        assert possibly_known(session, clinic, candidate) == set()

        notice.status = "delivered"
        session.commit()
        assert possibly_known(session, clinic, candidate) == {child_id}


# --- the rule in SQL is told_shares' rule -----------------------------------------------------

#: (notice status, attempts, may have reached, answered by the recipient) -> told. ``None``:
#: no notice.
CASES: dict[str, tuple[str | None, int, bool, bool, bool]] = {
    "delivered": ("delivered", 1, True, False, True),
    "queued": ("pending", 0, False, False, True),
    "tried, failed": ("failed", 1, True, False, True),
    "handed out": ("held", 1, True, False, True),
    "withheld at its first turn": ("withheld", 1, False, False, False),
    "withheld after a try": ("withheld", 2, True, False, True),
    "dead untried": ("dead", 0, False, False, False),
    "dead after a try": ("dead", 3, True, False, True),
    "withheld, but answered": ("withheld", 1, False, True, True),
    "no notice": (None, 0, False, False, True),
}


def test_the_sql_rule_agrees_with_told_shares(hub: Hub) -> None:
    record_id = hub.push(consent=False)
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        ids: dict[str, str] = {}
        for name, (status, attempts, reached, answered, _told) in CASES.items():
            share = RecordShare(
                record_id=record_id,
                from_agency=OWNER,
                agency_id=CLINIC,
                kind="transfer",
                status="rejected" if answered else "cancelled",
                purpose="case_management",
                categories=[],
                decided_by=CLINIC if answered else OWNER,
                decided_at=datetime.now(UTC),
            )
            session.add(share)
            session.flush()
            ids[name] = share.id
            if status is not None:
                notice = enqueue(
                    session,
                    CLINIC,
                    "transfer.requested",
                    {"share_id": share.id, "record_id": record_id},
                )
                notice.status, notice.attempts = status, attempts
                notice.maybe_reached = reached
            # A notice of another kind, or to another agency, says nothing of it.
            enqueue(
                session, CLINIC, "transfer.withdrawn", {"share_id": share.id}
            ).status = "delivered"
            enqueue(
                session, SHELTER, "transfer.requested", {"share_id": share.id}
            ).status = "delivered"
        session.commit()

        shares = session.scalars(select(RecordShare).where(RecordShare.id.in_(ids.values())))
        by_python = told_shares(session, CLINIC, shares)
        by_sql = set(session.scalars(select(RecordShare.id).where(told_to_recipient())))
        expected = {ids[name] for name, case in CASES.items() if case[4]}
        assert by_python == expected
        assert by_sql == expected
