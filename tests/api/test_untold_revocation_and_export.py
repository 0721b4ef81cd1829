"""A recipient never told of a share hears nothing of its child: not from a revocation, not
from its own export.

A referral's recipient learns of it from its ``record.referred`` notice. Revoked before that
notice went out (the worker's turn, or the recipient's read of its notifications), the consent
withholds the notice, and the recipient was told nothing of the child (docs/consent.md §8.7):
the revocation's own ``consent.revoked`` notice, naming the child, must not be the first it
hears of it — as for a transfer whose request never went out. A recipient the notice may have
reached (delivered, handed out) received data under the consent and is told.

And ``puente export`` of an agency lists only the children it holds, or was referred or
transferred a record of and told so (:func:`exchange.sharing.told_shares`): a share whose
notice was withheld adds no child, and the export neither decides nor audits reads of that
child's records as the agency's, nor counts it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from test_reads_untold_shares import held_notice
from test_referrals_transfers import (
    CLINIC,
    PROCURADURIA,
    SHARING_CONSENT,
    SHELTER,
    Hub,
    hub,
    refer,
    transfer,
)
from test_revocation_recipients import POLICY, inbox, revoke, run_worker, statuses

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.cli import main
from exchange.consent_store import ConsentDisclosure
from exchange.outbox_delivery import deliver_batch
from exchange.records import Record
from exchange.transports import TransientDeliveryError

__all__ = ["hub"]  # the fixture this module uses

PURPOSE = "health_care"  # what refer() refers the record for


def child_of(hub: Hub, record_id: str) -> str:
    with db.database(hub.app).sessions() as session:
        return session.get_one(Record, record_id).child_id


def disclosed_to(hub: Hub, agency: str) -> int:
    with db.database(hub.app).sessions() as session:
        statement = select(func.count()).where(ConsentDisclosure.agency_id == agency)
        return int(session.scalar(statement) or 0)


def reads_audited(hub: Hub, agency: str, child_id: str) -> int:
    """Entries of reads decided for ``agency`` (its system) about ``child_id``."""
    with db.database(hub.app).sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.actor_agency == agency, AuditEntry.child_id == child_id
            )
        ).all()
    return sum(1 for action in actions if action == "record_read")


# --- 1. the revocation tells only who received data -----------------------------------------


def test_a_referral_revoked_before_the_worker_sent_its_notice_is_not_told_of_it(
    hub: Hub,
) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    assert disclosed_to(hub, CLINIC) == 0  # made, not yet sent

    assert CLINIC not in revoke(hub, record_id)
    sent, result = run_worker(hub)
    assert sent.sent == [] and result.withheld == 1
    assert statuses(hub, CLINIC) == {"record.referred": "withheld"}
    assert inbox(hub, CLINIC) == []


def test_a_held_referral_revoked_before_its_recipient_read_it_is_not_told_of_it(
    hub: Hub,
) -> None:
    record_id = hub.push()
    assert refer(hub, record_id, to=SHELTER).status_code == 201  # no webhook: held

    assert SHELTER not in revoke(hub, record_id)
    assert inbox(hub, SHELTER) == []
    assert held_notice(hub, SHELTER, "record.referred") == ("withheld", 1)
    assert "consent.revoked" not in statuses(hub, SHELTER)


def test_a_referral_whose_notice_was_delivered_is_told(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    sent, _ = run_worker(hub)
    assert sent.sent == [(CLINIC, "record.referred")]

    assert CLINIC in revoke(hub, record_id)
    sent, _ = run_worker(hub)
    assert sent.sent == [(CLINIC, "consent.revoked")]


def test_a_referral_whose_notice_was_tried_is_told(hub: Hub) -> None:
    """The receiver did not answer: it may have taken the notice all the same."""

    class Unanswered:
        def deliver(self, agency: Any, message: Any) -> None:
            raise TransientDeliveryError("timed out", unreachable=True)

    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        deliver_batch(session, Unanswered(), POLICY, 50)
    assert held_notice(hub, CLINIC, "record.referred") == ("failed", 1)

    assert CLINIC in revoke(hub, record_id)


def test_a_held_referral_its_recipient_read_is_told(hub: Hub) -> None:
    record_id = hub.push()
    assert refer(hub, record_id, to=SHELTER).status_code == 201
    assert inbox(hub, SHELTER) == ["record.referred"]

    assert SHELTER in revoke(hub, record_id)
    # (The referral's notice, decided again, is no longer handed out.)
    assert inbox(hub, SHELTER) == ["consent.revoked"]


def test_a_held_referral_its_recipient_was_shown_in_its_shares_is_told(hub: Hub) -> None:
    """``GET /v1/shares`` hands the held notice out as the notifications route would."""
    record_id = hub.push()
    share_id = refer(hub, record_id, to=SHELTER).get_json()["id"]
    shares = hub.client.get("/v1/shares", headers=hub.headers(SHELTER)).get_json()["shares"]
    assert [share["id"] for share in shares] == [share_id]

    assert SHELTER in revoke(hub, record_id)


def test_a_recipient_that_read_the_record_before_the_notice_went_out_is_told(hub: Hub) -> None:
    """The read itself is a disclosure under the consent, notice or none."""
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    assert hub.read(CLINIC, record_id, PURPOSE).status_code == 200

    assert CLINIC in revoke(hub, record_id)
    sent, _ = run_worker(hub)
    assert (CLINIC, "consent.revoked") in sent.sent


def test_only_the_recipient_told_is_notified(hub: Hub) -> None:
    """Two referrals of the record: the clinic's notice went out, the shelter's did not."""
    record_id = hub.push()
    assert refer(hub, record_id).status_code == 201
    run_worker(hub)
    assert refer(hub, record_id, to=SHELTER).status_code == 201

    assert revoke(hub, record_id) == [CLINIC]


# --- 2. the export lists only children the agency was told of ------------------------------


@pytest.fixture
def export(hub: Hub, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``puente export`` of an agency's every child, on the hub's machine: its summary and the
    records written."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)

    def run(agency: str, purpose: str = PURPOSE) -> tuple[dict[str, Any], list[Any]]:
        out = tmp_path / f"{agency}.ndjson"
        result = CliRunner().invoke(
            main,
            ["export", "--adapter", "ndjson", "--agency", agency, "--purpose", purpose,
             "--out", str(out), "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        written = out.read_text().splitlines() if out.exists() else []
        return json.loads(result.stdout), [json.loads(line) for line in written]

    return run


def test_a_referral_withheld_by_the_revocation_adds_no_child_to_the_export(
    hub: Hub, export: Any
) -> None:
    """Consent given again permits such a referral — a read through it would be permitted —
    but the clinic was never told of this one."""
    record_id = hub.push()
    child_id = child_of(hub, record_id)
    assert refer(hub, record_id).status_code == 201
    revoke(hub, record_id)
    sent, result = run_worker(hub)
    assert sent.sent == [] and result.withheld == 1
    assert statuses(hub, CLINIC) == {"record.referred": "withheld"}
    again = hub.post(PROCURADURIA, f"/v1/children/{child_id}/consents", SHARING_CONSENT)
    assert again.status_code == 201, again.get_json()

    summary, written = export(CLINIC)
    assert (summary["children"], summary["records"], written) == (0, 0, [])
    assert reads_audited(hub, CLINIC, child_id) == 0


def test_a_held_referral_withheld_by_the_revocation_is_decided_by_the_export(
    hub: Hub, export: Any
) -> None:
    record_id = hub.push()
    child_id = child_of(hub, record_id)
    assert refer(hub, record_id, to=SHELTER).status_code == 201
    revoke(hub, record_id)

    summary, _written = export(SHELTER)
    assert (summary["children"], summary["records"]) == (0, 0)
    assert reads_audited(hub, SHELTER, child_id) == 0
    # Decided as reading the notifications would: no longer permitted, withheld for good.
    assert held_notice(hub, SHELTER, "record.referred") == ("withheld", 1)
    assert inbox(hub, SHELTER) == []


def test_a_transfer_withheld_by_the_revocation_adds_no_child_to_the_export(
    hub: Hub, export: Any
) -> None:
    """Still pending (nobody answered it), but its request never went out."""
    record_id = hub.push()
    child_id = child_of(hub, record_id)
    assert transfer(hub, record_id).status_code == 201
    revoke(hub, record_id)
    run_worker(hub)
    assert statuses(hub, CLINIC) == {"transfer.requested": "withheld"}

    summary, _written = export(CLINIC, "case_management")
    assert summary["children"] == 0
    assert reads_audited(hub, CLINIC, child_id) == 0


def test_a_referral_told_is_exported(hub: Hub, export: Any) -> None:
    record_id = hub.push()
    child_id = child_of(hub, record_id)
    assert refer(hub, record_id).status_code == 201
    assert run_worker(hub)[0].sent == [(CLINIC, "record.referred")]

    summary, written = export(CLINIC)
    assert (summary["children"], summary["records"]) == (1, 1)
    assert [document["child_id"] for document in written] == [child_id]
    assert reads_audited(hub, CLINIC, child_id) == 1


def test_a_held_referral_still_permitted_is_exported_and_handed_out(hub: Hub, export: Any) -> None:
    """The export gives the shelter the record: its notice counts as handed out, so the
    shelter is told of a later revocation."""
    record_id = hub.push()
    assert refer(hub, record_id, to=SHELTER).status_code == 201

    summary, _written = export(SHELTER)
    assert (summary["children"], summary["records"]) == (1, 1)
    assert held_notice(hub, SHELTER, "record.referred") == ("held", 1)
    assert SHELTER in revoke(hub, record_id)
