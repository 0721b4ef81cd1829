"""A record another agency referred or transferred to an agency is not that agency's to push.

Its own export names such a record by the owner's local id (or the record id) and its child;
pushed back — single, bulk, ``puente import`` in both modes — it would become a new record of
the recipient's, outliving the referral and the consent behind it. The hub refuses it with
``409 conflict``, saying whose record it is; the recipient's own record of the child, under
its own local id, is stored as ever. ``puente export`` says how many such records it wrote,
and ``puente import`` counts them apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from consent.vocabulary import ALL_CATEGORIES
from exchange import db, exporter, hub_client
from exchange.child_duplicates import merge_children
from exchange.cli import main
from exchange.received_copies import RECEIVED_COPY
from exchange.record_push import ANOTHER_CHILD
from exchange.records import Record
from tests.api import test_referrals_transfers
from tests.api.test_import import HUB, flask_send
from tests.api.test_referrals_transfers import CLINIC, OWNER, SHELTER, Hub, refer, transfer
from tests.api.test_transfer_updates import case

hub = test_referrals_transfers.hub

PURPOSE = "health_care"  # what refer() refers the record for


def records_of(hub: Hub, agency_id: str) -> int:
    with db.database(hub.app).sessions() as session:
        statement = select(func.count()).select_from(Record)
        return int(session.scalar(statement.where(Record.source_agency == agency_id)) or 0)


def referred(hub: Hub) -> tuple[str, dict[str, Any]]:
    """OWNER's record EXP-1, referred whole to CLINIC; and the record as CLINIC's export writes
    it."""
    record_id = hub.push()
    assert refer(hub, record_id, categories=sorted(ALL_CATEGORIES)).status_code == 201
    answer = hub.read(CLINIC, record_id, PURPOSE)
    assert answer.status_code == 200, answer.get_json()
    return record_id, exporter.envelope_of(answer.get_json())


def copy_named(written: dict[str, Any], local_id: str, child_id: str | None = None) -> Any:
    return {**written, "local_id": local_id, "child_id": child_id or written["child_id"]}


def push(hub: Hub, agency: str, body: Any, lang: str = "en") -> Any:
    headers = {**hub.headers(agency), "Accept-Language": lang}
    return hub.client.post("/v1/records", json=body, headers=headers)


def bulk(hub: Hub, agency: str, lines: list[Any]) -> list[dict[str, Any]]:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    headers = {**hub.headers(agency), "Content-Type": "application/x-ndjson"}
    answer = hub.client.post("/v1/records/bulk", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_data()
    return [json.loads(line) for line in answer.get_data().splitlines() if line.strip()]


def assert_refused_as_received(answer: Any, record_id: str, how: str) -> None:
    assert answer.status_code == 409, answer.get_json()
    problem = answer.get_json()
    assert problem["type"].endswith("/conflict")
    assert problem["detail"].startswith(RECEIVED_COPY[1])
    assert f"the record {record_id}, which {OWNER} {how} to your agency" in problem["detail"]


def test_the_recipient_of_a_referral_cannot_push_the_record_as_its_own(hub: Hub) -> None:
    record_id, written = referred(hub)
    assert written["local_id"] == "EXP-1"
    # A reader not given the local id gets the record id in its place: refused alike.
    for local_id in ("EXP-1", record_id):
        answer = push(hub, CLINIC, copy_named(written, local_id))
        assert_refused_as_received(answer, record_id, "referred")
        assert (
            "your agency's own record of this child needs a local id"
            in (answer.get_json()["detail"])
        )
    spanish = push(hub, CLINIC, copy_named(written, "EXP-1"), lang="es")
    assert spanish.get_json()["detail"].startswith(RECEIVED_COPY[0])
    assert f"que {OWNER} remitió a su institución" in spanish.get_json()["detail"]
    assert records_of(hub, CLINIC) == 0

    # Once the consent behind the referral is revoked, still nothing of it becomes CLINIC's.
    assert hub.revoke_consent(record_id).status_code == 200
    assert push(hub, CLINIC, copy_named(written, "EXP-1")).status_code == 409
    assert records_of(hub, CLINIC) == 0
    assert hub.read(CLINIC, record_id, PURPOSE).status_code in (403, 404)


def test_a_bulk_push_refuses_the_received_lines_and_stores_the_others(hub: Hub) -> None:
    record_id, written = referred(hub)
    own = case("TAP-9", "TAP-9")
    own["child_id"] = written["child_id"]  # its own record of the child it was referred
    results = bulk(hub, CLINIC, [written, copy_named(written, "EXP-1"), own])
    assert [r["status"] for r in results] == ["rejected", "rejected", "stored"]
    for refused in results[:2]:
        assert refused["problem"] == "conflict"
        [error] = refused["errors"]
        assert error["pointer"] == "/local_id"
        assert error["message_en"].startswith(RECEIVED_COPY[1]) and record_id in error["message_en"]
        assert error["message_es"].startswith(RECEIVED_COPY[0])
    assert results[2]["child_id"] == written["child_id"]
    assert records_of(hub, CLINIC) == 1


def test_a_local_id_the_recipient_also_uses_for_another_child_is_not_called_a_merge(
    hub: Hub,
) -> None:
    record_id, written = referred(hub)
    mine = push(hub, CLINIC, case("EXP-1", "T-1", child_names=("Rosa", "Velázquez")))
    assert mine.status_code == 201 and mine.get_json()["child_id"] != written["child_id"]
    answer = push(hub, CLINIC, copy_named(written, "EXP-1"))
    assert_refused_as_received(answer, record_id, "referred")
    assert "merge" not in answer.get_json()["detail"]
    # Naming another child for its own record of one is still the ordinary refusal, which now
    # says what to do when they are two children.
    other = push(hub, CLINIC, copy_named(case("EXP-1", "T-1"), "EXP-1", "chd_other"))
    assert other.status_code == 400, other.get_json()
    assert other.get_json()["detail"] == ANOTHER_CHILD.message_en
    assert "if it is another child, give its record a local id" in ANOTHER_CHILD.message_en


def test_the_same_local_id_for_another_child_of_the_recipient_is_stored(hub: Hub) -> None:
    _record_id, _written = referred(hub)  # EXP-1 of one child, referred to CLINIC
    mine = push(hub, CLINIC, case("TAP-1", "T-1", child_names=("Rosa", "Velázquez")))
    assert mine.status_code == 201
    own_child = mine.get_json()["child_id"]
    # CLINIC's own numbering happens to give EXP-1 too, for its own child: nothing received.
    again = push(hub, CLINIC, {**case("EXP-1", "T-2", child_names=("Rosa", "Velázquez")),
                               "child_id": own_child})  # fmt: skip
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["child_id"] == own_child


def test_a_transfer_offered_or_accepted_under_another_local_id(hub: Hub) -> None:
    record_id = hub.push()
    offered = transfer(hub, record_id, to=SHELTER)
    assert offered.status_code == 201, offered.get_json()
    child_id = hub.read(OWNER, record_id).get_json()["child_id"]
    envelope = {**case("EXP-1", "C-1"), "child_id": child_id}
    assert_refused_as_received(push(hub, SHELTER, envelope), record_id, "offered to transfer")

    accepted = hub.post(SHELTER, f"/v1/transfers/{offered.get_json()['id']}/accept",
                        {"local_id": "TAB-7"})  # fmt: skip
    assert accepted.status_code == 200, accepted.get_json()
    answer = push(hub, SHELTER, envelope)
    assert_refused_as_received(answer, record_id, "transferred")
    assert (
        "updates it under its local id 'TAB-7': push it under that id"
        in (answer.get_json()["detail"])
    )
    updated = push(hub, SHELTER, {**envelope, "local_id": "TAB-7"})
    assert updated.status_code in (200, 201) and updated.get_json()["record_id"] == record_id
    assert records_of(hub, SHELTER) == 0  # the record it took over, no second one


def test_a_child_merged_since_is_the_same_child(hub: Hub) -> None:
    record_id, written = referred(hub)
    mine = push(hub, CLINIC, case("TAP-2", "T-2", child_names=("Rosa", "Velázquez")))
    survivor = mine.get_json()["child_id"]
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        merge_children(session, survivor, written["child_id"], reason="la misma niña")
        session.commit()
    for named in (survivor, written["child_id"]):
        answer = push(hub, CLINIC, copy_named(written, "EXP-1", named))
        assert_refused_as_received(answer, record_id, "referred")


@pytest.mark.parametrize("mode", ["direct", "api"])
def test_import_and_export_say_what_was_referred(
    hub: Hub, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    record_id, _written = referred(hub)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setattr(hub_client, "default_send", lambda: flask_send(hub.app))
    runner = CliRunner()
    renewed = runner.invoke(main, ["agency", "new-secret", CLINIC, "--json"])
    secret = json.loads(renewed.stdout)["client_secret"]
    api = ["--hub", HUB, "--client-secret", secret] if mode == "api" else []
    child = ["--child", hub.read(OWNER, record_id).get_json()["child_id"]]
    out = tmp_path / "clinica.ndjson"
    exported = runner.invoke(
        main,
        ["export", "--adapter", "ndjson", "--agency", CLINIC, "--purpose", PURPOSE,
         "--out", str(out), "--lang", "en", *child, *api],
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert "1 of the records exported are held by another agency" in exported.stderr
    assert "1 de los expedientes exportados los tiene otra institución" in exported.stderr
    [line] = out.read_text().splitlines()
    own = {**case("TAP-9", "TAP-9"), "child_id": json.loads(line)["child_id"]}
    out.write_text(line + "\n" + json.dumps(own) + "\n")

    imported = runner.invoke(
        main,
        ["import", "--adapter", "ndjson", str(out), "--agency", CLINIC, "--json", *api],
    )
    assert imported.exit_code == 1, imported.output
    summary = json.loads(imported.stdout)
    assert (summary["stored"], summary["rejected_by_hub"], summary["received_copies"]) == (1, 1, 1)
    [rejected] = (tmp_path / "clinica-rejects.ndjson").read_text().splitlines()
    [error] = json.loads(rejected)["errors"]
    assert record_id in error["message_en"] and error["message_en"].startswith(RECEIVED_COPY[1])
    assert records_of(hub, CLINIC) == 1  # its own record only

    told = runner.invoke(
        main, ["import", "--adapter", "ndjson", str(out), "--agency", CLINIC, "--lang", "en", *api]
    )
    assert "Received from another agency, not imported as its own: 1" in told.output
