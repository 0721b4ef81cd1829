"""After a transfer is accepted, the recipient updates the record it now answers for.

Accepting gives the recipient an address for the record in its own system (its ``local_id``,
by default the record's): its pushes under it — single, bulk or ``puente import`` — are new
versions of the same record, linked to the same child; the previous owner's pushes are
refused, naming the agency it transferred the record to; a local id that already names
another of the recipient's records is refused at the accept, and nothing changes.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from exchange import db, record_push, sharing
from exchange.agencies import register_agency
from exchange.audit_log import AuditEntry
from exchange.auth import store_token
from exchange.children import Child, ChildIdentifier
from exchange.cli import main
from exchange.records import Record, RecordAddress, RecordVersion
from exchange.sharing import RecordShare

EXAMPLE = Path(__file__).resolve().parents[2] / "schemas/examples/case-record/1/valid/typical.json"

OWNER = "mx.chp.dif"  # pushes the record and transfers it
NEW = "mx.nl.dif"  # accepts the transfer
THIRD = "mx.chp.tapachula.dif"  # takes it over later
PROCURADURIA = "mx.chp.procuraduria"
SCOPES = ["records:write", "records:read"]

CONSENT = {
    "status": "active",
    "grantor": {
        "type": "procuraduria",
        "representation": "suplencia",
        "agency_id": PROCURADURIA,
        "identity_verified": True,
    },
    "grantee": [{"agency_id": OWNER}, {"agency_id": NEW}, {"agency_id": THIRD}],
    "decision": "deny",
    "period": {"start": "2026-01-01T00:00:00-06:00", "end": "2029-01-01T00:00:00-06:00"},
    "policy_basis": [{"code": "lgdnna_art_106_suplencia"}],
    "provision": [
        {
            "decision": "permit",
            "actor": [{"agency_id": OWNER}, {"agency_id": NEW}, {"agency_id": THIRD}],
            "action": ["refer", "transfer"],
        }
    ],
}


def case(local_id: str, case_number: str, *, child_names: tuple[str, str] | None = None) -> Any:
    data = json.loads(EXAMPLE.read_text())
    data["child"]["date_of_birth"] = "2012-05-10"
    data.setdefault("case", {})["case_number"] = case_number
    if child_names is not None:  # another child: no identifier in common with the example's
        del data["child"]["identifiers"]
        given, surname = child_names
        data["child"]["names"] = {"given_names": given, "first_surname": surname}
    return {"schema": "case-record/1", "local_id": local_id, "data": data}


@dataclass
class Hub:
    app: Flask
    client: FlaskClient
    tokens: dict[str, str]

    def headers(self, agency: str, lang: str = "en") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[agency]}", "Accept-Language": lang}

    def post(self, agency: str, path: str, body: Any = None, lang: str = "en") -> Any:
        if body is None:
            return self.client.post(path, headers=self.headers(agency, lang))
        return self.client.post(path, json=body, headers=self.headers(agency, lang))

    def push(self, agency: str, local_id: str, case_number: str, **kwargs: Any) -> Any:
        return self.post(agency, "/v1/records", case(local_id, case_number, **kwargs))

    def bulk(self, agency: str, lines: list[Any]) -> list[dict[str, Any]]:
        answer = self.client.post(
            "/v1/records/bulk",
            data=b"".join(json.dumps(line).encode() + b"\n" for line in lines),
            headers={**self.headers(agency), "Content-Type": "application/x-ndjson"},
        )
        assert answer.status_code == 200, answer.get_data()
        return [json.loads(line) for line in answer.get_data().splitlines() if line.strip()]

    def new_record(self, local_id: str = "EXP-1", **kwargs: Any) -> dict[str, Any]:
        """OWNER's record of the example child (or another), with consent to transfer it."""
        pushed = self.push(OWNER, local_id, "C-1", **kwargs)
        assert pushed.status_code == 201, pushed.get_json()
        answer: dict[str, Any] = pushed.get_json()
        consent = self.post(PROCURADURIA, f"/v1/children/{answer['child_id']}/consents", CONSENT)
        assert consent.status_code == 201, consent.get_json()
        return answer

    def transfer(self, record_id: str, to: str = NEW, by: str = OWNER) -> str:
        body = {"to": to, "reason": "La familia se mudó a Nuevo León."}
        created = self.post(by, f"/v1/records/{record_id}/transfers", body)
        assert created.status_code == 201, created.get_json()
        return str(created.get_json()["id"])

    def accept(self, share_id: str, by: str = NEW, body: Any = None, lang: str = "en") -> Any:
        return self.post(by, f"/v1/transfers/{share_id}/accept", body, lang)

    def handed_over(self, to: str = NEW, local_id: str | None = None) -> dict[str, Any]:
        """A record of OWNER's, transferred to ``to`` and accepted."""
        record = self.new_record()
        share_id = self.transfer(record["record_id"], to)
        accepted = self.accept(share_id, to, {"local_id": local_id} if local_id else None)
        assert accepted.status_code == 200, accepted.get_json()
        return record

    def read(self, agency: str, record_id: str, path: str = "") -> Any:
        return self.client.get(
            f"/v1/records/{record_id}{path}?purpose=case_management", headers=self.headers(agency)
        )

    def count(self, statement: Any) -> int:
        with db.database(self.app).sessions() as session:
            return int(session.scalar(statement) or 0)

    def owner_of(self, record_id: str) -> str:
        with db.database(self.app).sessions() as session:
            return session.get_one(Record, record_id).owner_agency

    def children(self) -> int:
        return self.count(select(func.count()).select_from(Child))

    def records(self) -> int:
        return self.count(select(func.count()).select_from(Record))


@pytest.fixture
def hub(app: Flask) -> Hub:
    tokens = {}
    with app.app_context(), db.database(app).sessions.begin() as session:
        for agency_id, jurisdiction in ((OWNER, "07"), (NEW, "19"), (THIRD, "07")):
            register_agency(session, agency_id, agency_id, "state", jurisdiction, SCOPES)
            tokens[agency_id], _ = store_token(
                session, client_id=agency_id, scopes=SCOPES, agency_id=agency_id
            )
        consent_scopes = ["consent:write", "consent:read"]
        register_agency(session, PROCURADURIA, PROCURADURIA, "state", "07", consent_scopes)
        tokens[PROCURADURIA], _ = store_token(
            session, client_id=PROCURADURIA, scopes=consent_scopes, agency_id=PROCURADURIA
        )
    return Hub(app, app.test_client(), tokens)


def test_the_recipient_updates_the_record_under_its_local_id(hub: Hub) -> None:
    record = hub.new_record()
    record_id, child_id = record["record_id"], record["child_id"]
    share_id = hub.transfer(record_id)

    accepted = hub.accept(share_id)

    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["local_id"] == "EXP-1"  # the record's own, by default
    children, records = hub.children(), hub.records()
    for version, case_number in ((2, "NL-C-2"), (3, "NL-C-3")):
        pushed = hub.push(NEW, "EXP-1", case_number)
        assert pushed.status_code == 201, pushed.get_json()
        answer = pushed.get_json()
        assert (answer["record_id"], answer["version"], answer["child_id"]) == (
            record_id,
            version,
            child_id,
        )
    again = hub.push(NEW, "EXP-1", "NL-C-3")
    assert again.status_code == 200 and again.get_json()["status"] == "unchanged"
    assert again.get_json()["version"] == 3
    # No second record, and above all no second child.
    assert (hub.children(), hub.records()) == (children, records)
    read = hub.read(NEW, record_id)
    assert read.status_code == 200, read.get_json()
    assert (read.get_json()["version"], read.get_json()["owner"]) == (3, NEW)
    assert read.get_json()["child_id"] == child_id
    assert read.get_json()["data"]["case"]["case_number"] == "NL-C-3"
    versions = hub.read(NEW, record_id, "/versions").get_json()["versions"]
    assert [(v["version"], v["pushed_by"]) for v in versions] == [(1, OWNER), (2, NEW), (3, NEW)]
    # The child index knows the recipient's local id as the same child.
    with db.database(hub.app).sessions() as session:
        linked = session.scalars(
            select(ChildIdentifier.child_id).where(
                ChildIdentifier.kind == "agency_local",
                ChildIdentifier.scope == NEW,
                ChildIdentifier.value == "EXP-1",
            )
        ).all()
    assert linked == [child_id]


def test_a_child_without_identifiers_keeps_one_identity(hub: Hub) -> None:
    """Nothing but the record links the recipient's pushes to the child: no CURP, no UNHCR
    number, and a local id the child index has never seen."""
    record = hub.new_record(child_names=("Luz", "Sin Documentos"))
    share_id = hub.transfer(record["record_id"])
    assert hub.accept(share_id, body={"local_id": "NL-1"}).status_code == 200
    children = hub.children()

    pushed = hub.push(NEW, "NL-1", "NL-2", child_names=("Luz", "Sin Documentos"))

    assert pushed.status_code == 201, pushed.get_json()
    answer = pushed.get_json()
    assert (answer["record_id"], answer["version"]) == (record["record_id"], 2)
    assert answer["child_id"] == record["child_id"]
    assert hub.children() == children
    with db.database(hub.app).sessions() as session:
        linked = session.scalars(
            select(ChildIdentifier.child_id).where(
                ChildIdentifier.kind == "agency_local", ChildIdentifier.scope == NEW
            )
        ).all()
    assert linked == [record["child_id"]]


def test_the_previous_owner_is_refused_and_told_who_holds_the_record(hub: Hub) -> None:
    record_id = hub.handed_over()["record_id"]

    refused = hub.push(OWNER, "EXP-1", "C-2")

    assert refused.status_code == 409
    problem = refused.get_json()
    assert problem["type"].endswith("/conflict")
    assert problem["detail"] == f"the record was transferred to {NEW}, which now updates it"
    assert problem["errors"][0]["pointer"] == "/local_id"
    spanish = hub.client.post(
        "/v1/records", json=case("EXP-1", "C-2"), headers=hub.headers(OWNER, "es")
    ).get_json()
    assert spanish["detail"] == f"el expediente fue transferido a {NEW}, que ahora lo actualiza"
    assert hub.read(OWNER, record_id).get_json()["version"] == 1
    assert hub.read(OWNER, record_id).status_code == 200  # it still follows the case


def test_the_recipient_may_name_its_own_local_id(hub: Hub) -> None:
    record = hub.new_record()
    share_id = hub.transfer(record["record_id"])
    children = hub.children()

    accepted = hub.accept(share_id, body={"local_id": "NL-2026-0077", "reason": "Aceptado."})

    assert accepted.status_code == 200, accepted.get_json()
    body = accepted.get_json()
    assert (body["status"], body["local_id"]) == ("accepted", "NL-2026-0077")
    assert body["decision_reason"] == "Aceptado."
    for version in (2, 3):
        pushed = hub.push(NEW, "NL-2026-0077", f"NL-{version}")
        assert pushed.status_code == 201, pushed.get_json()
        answer = pushed.get_json()
        assert (answer["record_id"], answer["version"]) == (record["record_id"], version)
        assert answer["child_id"] == record["child_id"]
    assert hub.children() == children
    with db.database(hub.app).sessions() as session:
        [address] = session.scalars(select(RecordAddress)).all()
    assert (address.agency_id, address.local_id, address.record_id, address.transfer_id) == (
        NEW,
        "NL-2026-0077",
        record["record_id"],
        share_id,
    )
    # Its reads say which id its pushes use, as the record's local_id too: the one it gave.
    read = hub.read(NEW, record["record_id"]).get_json()
    assert read["your_local_id"] == read["local_id"] == "NL-2026-0077"
    assert "your_local_id" not in hub.read(NEW, record["record_id"], "/versions").get_json()


def test_bulk_pushes_of_the_recipient_update_the_record(hub: Hub) -> None:
    record = hub.handed_over(local_id="NL-7")
    children = hub.children()

    results = hub.bulk(
        NEW,
        [
            case("NL-7", "NL-2"),
            case("NL-8", "own", child_names=("Ana", "Pérez")),
            case("NL-7", "NL-3"),
            case("NL-7", "NL-3"),
        ],
    )

    assert [r["status"] for r in results] == ["stored", "stored", "stored", "unchanged"]
    assert [r["record_id"] == record["record_id"] for r in results] == [True, False, True, True]
    assert [r["version"] for r in results] == [2, 1, 3, 3]
    assert {results[i]["child_id"] for i in (0, 2, 3)} == {record["child_id"]}
    assert hub.children() == children + 1  # the new record's child, and only it
    # The previous owner's line is refused and says who holds the record.
    [refused] = hub.bulk(OWNER, [case("EXP-1", "C-9")])
    assert (refused["status"], refused["problem"]) == ("rejected", "conflict")
    assert refused["errors"][0]["message_en"] == (
        f"the record was transferred to {NEW}, which now updates it"
    )
    assert refused["errors"][0]["message_es"] == (
        f"el expediente fue transferido a {NEW}, que ahora lo actualiza"
    )
    assert hub.read(NEW, record["record_id"]).get_json()["version"] == 3


def test_puente_import_of_the_recipient_updates_the_record(
    hub: Hub, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = hub.handed_over()
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "casos.ndjson"
    source.write_text(json.dumps(case("EXP-1", "NL-import")) + "\n", encoding="utf-8")
    children = hub.children()

    result = CliRunner().invoke(
        main, ["import", "--adapter", "ndjson", str(source), "--agency", NEW, "--json"]
    )

    assert result.exit_code == 0, result.output
    read = hub.read(NEW, record["record_id"]).get_json()
    assert read["version"] == 2 and read["data"]["case"]["case_number"] == "NL-import"
    assert hub.children() == children


def test_the_recipients_export_imported_again_updates_the_same_record(
    hub: Hub, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = hub.handed_over(local_id="NL-2026-0077")
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    exported = tmp_path / "mios.ndjson"
    result = CliRunner().invoke(
        main,
        ["export", "--adapter", "ndjson", "--agency", NEW, "--purpose", "case_management",
         "--out", str(exported)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [line] = [json.loads(text) for text in exported.read_text().splitlines()]
    assert line["local_id"] == "NL-2026-0077"  # the id the recipient's pushes use
    records = hub.count(select(func.count()).select_from(Record))
    children = hub.children()
    again = CliRunner().invoke(
        main, ["import", "--adapter", "ndjson", str(exported), "--agency", NEW, "--json"]
    )
    assert again.exit_code == 0, again.output
    assert hub.count(select(func.count()).select_from(Record)) == records  # no second record
    assert hub.children() == children
    assert hub.read(NEW, record["record_id"]).get_json()["record_id"] == record["record_id"]


def test_a_local_id_that_names_another_record_is_refused_and_nothing_changes(hub: Hub) -> None:
    own = hub.push(NEW, "EXP-1", "own", child_names=("Ana", "Pérez")).get_json()
    record = hub.new_record()
    share_id = hub.transfer(record["record_id"])

    for lang, words in (("en", "another record"), ("es", "otro expediente")):
        refused = hub.accept(share_id, lang=lang)
        assert refused.status_code == 409, refused.get_json()
        problem = refused.get_json()
        assert problem["type"].endswith("/conflict")
        assert words in problem["detail"] and "EXP-1" in problem["detail"]
        assert problem["share_status"] == "pending"
        assert [e["pointer"] for e in problem["errors"]] == ["/local_id"]
    with db.database(hub.app).sessions() as session:
        share = session.get_one(RecordShare, share_id)
        assert share.status == "pending"
        assert session.scalars(select(RecordAddress)).all() == []
        assert (
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == "transfer_accepted")
            ).all()
            == []
        )
    assert hub.owner_of(record["record_id"]) == OWNER

    # Another local id is fine; each of the recipient's local ids keeps its record.
    accepted = hub.accept(share_id, body={"local_id": "NL-9"})
    assert accepted.status_code == 200, accepted.get_json()
    mine = hub.push(NEW, "EXP-1", "own-2", child_names=("Ana", "Pérez")).get_json()
    theirs = hub.push(NEW, "NL-9", "NL-2").get_json()
    assert (mine["record_id"], mine["version"]) == (own["record_id"], 2)
    assert (theirs["record_id"], theirs["version"]) == (record["record_id"], 2)

    # A local id that already addresses another transferred record is refused too.
    second = hub.new_record("EXP-2")
    second_share = hub.transfer(second["record_id"])
    taken = hub.accept(second_share, body={"local_id": "NL-9"})
    assert taken.status_code == 409 and "NL-9" in taken.get_json()["detail"]
    assert hub.owner_of(second["record_id"]) == OWNER


def test_when_the_record_moves_on_each_earlier_holder_is_refused(hub: Hub) -> None:
    record = hub.handed_over()
    record_id = record["record_id"]
    assert hub.push(NEW, "EXP-1", "NL-2").status_code == 201
    onward = hub.transfer(record_id, to=THIRD, by=NEW)
    assert hub.accept(onward, by=THIRD, body={"local_id": "TAP-1"}).status_code == 200
    children = hub.children()

    by_new = hub.push(NEW, "EXP-1", "NL-3").get_json()
    by_owner = hub.push(OWNER, "EXP-1", "C-3").get_json()
    by_third = hub.push(THIRD, "TAP-1", "TAP-2")

    assert by_new["detail"] == f"the record was transferred to {THIRD}, which now updates it"
    # The first owner transferred it to NEW, and is told only that.
    assert by_owner["detail"] == (
        f"the record was transferred to {NEW}; your agency no longer updates it"
    )
    assert by_third.status_code == 201
    assert (by_third.get_json()["record_id"], by_third.get_json()["version"]) == (record_id, 3)

    # Back to the agency that created it: its own local id already names the record.
    home = hub.transfer(record_id, to=OWNER, by=THIRD)
    accepted = hub.accept(home, by=OWNER)
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["local_id"] == "EXP-1"
    again = hub.push(OWNER, "EXP-1", "C-4").get_json()
    assert (again["record_id"], again["version"], again["child_id"]) == (
        record_id,
        4,
        record["child_id"],
    )
    assert hub.children() == children
    with db.database(hub.app).sessions() as session:
        addresses = session.scalars(select(RecordAddress).order_by(RecordAddress.agency_id))
        assert [(a.agency_id, a.local_id) for a in addresses] == [
            (THIRD, "TAP-1"),
            (NEW, "EXP-1"),
        ]
        pushed_by = session.scalars(
            select(RecordVersion.pushed_by)
            .where(RecordVersion.record_id == record_id)
            .order_by(RecordVersion.version)
        ).all()
    assert pushed_by == [OWNER, NEW, THIRD, OWNER]


# --- an accept and a push of the same local id at the same moment ---------------------------
#
# The recipient pushes a record of its own under the very local id it is giving a transfer.
# Whichever comes first wins; the other sees it: never a record of its own and an address both
# under one local id. Each test holds one side open at its most delicate point.


def _state_of(hub: Hub, local_id: str) -> tuple[list[str], list[str]]:
    """(ids of NEW's own records under ``local_id``, records ``local_id`` addresses for NEW)."""
    with db.database(hub.app).sessions() as session:
        own = session.scalars(
            select(Record.id).where(Record.source_agency == NEW, Record.local_id == local_id)
        ).all()
        addressed = session.scalars(
            select(RecordAddress.record_id).where(
                RecordAddress.agency_id == NEW, RecordAddress.local_id == local_id
            )
        ).all()
    return list(own), list(addressed)


def _in_background(hub: Hub, path: str, body: Any) -> tuple[threading.Thread, dict[str, Any]]:
    answers: dict[str, Any] = {}

    def post() -> None:
        client = hub.app.test_client()
        answers["answer"] = client.post(path, json=body, headers=hub.headers(NEW))

    thread = threading.Thread(target=post)
    thread.start()
    return thread, answers


def test_an_accept_waits_for_a_push_creating_the_same_local_id(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = hub.new_record()
    share_id = hub.transfer(record["record_id"])
    looked_up = threading.Event()
    link_children = record_push.link_children

    def slow_link(session: Any, *, agency_id: str, requests: Any, **options: Any) -> Any:
        if agency_id == NEW:  # the push has found no record under NL-1 and will create one
            looked_up.set()
            time.sleep(0.5)
        return link_children(session, agency_id=agency_id, requests=requests, **options)

    monkeypatch.setattr(record_push, "link_children", slow_link)
    own = case("NL-1", "own", child_names=("Ana", "Pérez"))
    thread, pushed = _in_background(hub, "/v1/records", own)
    assert looked_up.wait(10)

    accepted = hub.accept(share_id, body={"local_id": "NL-1"})

    thread.join(30)
    assert pushed["answer"].status_code == 201, pushed["answer"].get_json()
    assert accepted.status_code == 409, accepted.get_json()
    assert _state_of(hub, "NL-1") == ([pushed["answer"].get_json()["record_id"]], [])
    assert hub.owner_of(record["record_id"]) == OWNER


def test_a_push_waits_for_an_accept_giving_its_local_id(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = hub.new_record()
    share_id = hub.transfer(record["record_id"])
    addressed = threading.Event()
    give_address = sharing._give_address

    def slow_address(*args: Any) -> None:
        give_address(*args)
        addressed.set()  # the accept has written the address and is about to commit
        time.sleep(0.5)

    monkeypatch.setattr(sharing, "_give_address", slow_address)
    thread, accepted = _in_background(hub, f"/v1/transfers/{share_id}/accept", {"local_id": "NL-1"})
    assert addressed.wait(10)

    pushed = hub.push(NEW, "NL-1", "NL-2")

    thread.join(30)
    assert accepted["answer"].status_code == 200, accepted["answer"].get_json()
    assert pushed.status_code == 201, pushed.get_json()
    answer = pushed.get_json()
    assert (answer["record_id"], answer["version"]) == (record["record_id"], 2)
    assert _state_of(hub, "NL-1") == ([], [record["record_id"]])


def test_the_accept_body_is_checked(hub: Hub) -> None:
    record = hub.new_record()
    share_id = hub.transfer(record["record_id"])
    for body in ({"local_id": ""}, {"local_id": " NL-1"}, {"local_id": 7}, {"other": 1}):
        answer = hub.accept(share_id, body=copy.deepcopy(body))
        assert answer.status_code == 400, (body, answer.get_json())
    # A rejection takes no local id.
    rejected = hub.post(NEW, f"/v1/transfers/{share_id}/reject", {"local_id": "NL-1"})
    assert rejected.status_code == 400
    with db.database(hub.app).sessions() as session:
        assert session.get_one(RecordShare, share_id).status == "pending"
