"""A record an agency read under a consent is not that agency's to push either.

An agency that may read a child's records under a consent (not referred or transferred them)
gets them in its export, each under its owner's local id (or the record id) and its child.
Pushed back, such a line would become a new record of the reader's — the owner's case under
the owner's case number — that outlives the consent. The hub refuses it with ``409 conflict``
as it refuses a referred copy, once the reader has read that record, and still after the
consent is revoked; ``puente import`` counts it among the received copies.

A record the pusher never read is never refused for that: the refusal would tell the pusher
that another agency holds a record of the child under that local id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from exchange import db
from exchange.auth import store_token
from exchange.child_duplicates import merge_children
from exchange.cli import main
from exchange.hot_sql import HotSQL
from exchange.people import add_person
from exchange.received_copies import RECEIVED_COPY
from tests.api import test_referrals_transfers
from tests.api.test_referrals_transfers import CLINIC, OWNER, PROCURADURIA, SHELTER, Hub
from tests.api.test_transfer_updates import case

hub = test_referrals_transfers.hub

PURPOSE = "case_management"
NOT_READ = (
    "your agency's own record of this child needs a local id of your agency's own",
    "el expediente propio de su institución sobre esta niña, niño o adolescente necesita un "
    "id local de su institución",
)


def consent_for_clinic(categories: list[str]) -> dict[str, Any]:
    """CLINIC may read (and be referred) the child's records for case management, only
    ``categories`` of them; health care gives it health data only."""
    return {
        "status": "active",
        "grantor": {
            "type": "procuraduria",
            "representation": "suplencia",
            "agency_id": PROCURADURIA,
            "identity_verified": True,
        },
        "grantee": [{"agency_id": CLINIC}],
        "decision": "deny",
        "period": {"start": "2026-01-01T00:00:00-06:00", "end": "2029-01-01T00:00:00-06:00"},
        "policy_basis": [{"code": "lgdnna_art_106_suplencia"}],
        "provision": [
            {
                "decision": "permit",
                "actor": [{"agency_id": CLINIC}],
                "action": ["read", "refer"],
                "purpose": [PURPOSE],
                "data_category": categories,
            },
            {
                "decision": "permit",
                "actor": [{"agency_id": CLINIC}],
                "action": ["read"],
                "purpose": ["health_care"],
                "data_category": ["health"],
            },
        ],
    }


def owner_records(hub: Hub, count: int = 3) -> tuple[str, list[str]]:
    """OWNER's records EXP-1… of one child: the child's id and the records' ids."""
    first = hub.post(OWNER, "/v1/records", case("EXP-1", "C-1"))
    assert first.status_code == 201, first.get_json()
    child_id = first.get_json()["child_id"]
    record_ids = [first.get_json()["record_id"]]
    for number in range(2, count + 1):
        more = hub.post(
            OWNER, "/v1/records", {**case(f"EXP-{number}", f"C-{number}"), "child_id": child_id}
        )
        assert more.status_code == 201, more.get_json()
        record_ids.append(more.get_json()["record_id"])
    return child_id, record_ids


def consented(hub: Hub, categories: list[str] | None = None) -> tuple[str, list[str]]:
    """The demo's case: OWNER holds three records of a child; the Procuraduría consents that
    CLINIC reads them for case management (identity only, unless ``categories``); OWNER
    refers the first one to CLINIC."""
    child_id, record_ids = owner_records(hub)
    recorded = hub.post(
        PROCURADURIA,
        f"/v1/children/{child_id}/consents",
        consent_for_clinic(categories or ["identity"]),
    )
    assert recorded.status_code == 201, recorded.get_json()
    referral = {"to": CLINIC, "purpose": PURPOSE, "categories": ["identity"]}
    referred = hub.post(OWNER, f"/v1/records/{record_ids[0]}/referrals", referral)
    assert referred.status_code == 201, referred.get_json()
    return child_id, record_ids


def read_child(hub: Hub, agency: str, child_id: str, purpose: str = PURPOSE) -> list[Any]:
    answer = hub.client.get(
        f"/v1/children/{child_id}/records?purpose={purpose}", headers=hub.headers(agency)
    )
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["records"])


def copy_of(local_id: str, child_id: str) -> dict[str, Any]:
    """A line of CLINIC's export, its redacted body completed so that it validates."""
    return {**case(local_id, local_id), "child_id": child_id}


def push(hub: Hub, agency: str, body: Any, lang: str = "en") -> Any:
    headers = {**hub.headers(agency), "Accept-Language": lang}
    return hub.client.post("/v1/records", json=body, headers=headers)


def records_of(hub: Hub, agency: str) -> list[tuple[str, str]]:
    with db.database(hub.app).sessions() as session:
        rows = HotSQL(session).rows(
            "SELECT local_id, child_id FROM record WHERE source_agency = ? ORDER BY local_id",
            (agency,),
        )
        return [(str(local_id), str(child)) for local_id, child in rows]


def assert_refused_as_read(answer: Any, record_id: str, holder: str = "another agency") -> None:
    assert answer.status_code == 409, answer.get_json()
    problem = answer.get_json()
    assert problem["type"].endswith("/conflict")
    detail = problem["detail"]
    assert detail.startswith(RECEIVED_COPY[1]), detail
    assert f"it is the record {record_id}, held by {holder}, which your agency read" in detail
    assert NOT_READ[0] in detail
    assert [error["pointer"] for error in problem["errors"]] == ["/local_id"]


def test_a_record_read_under_consent_cannot_be_pushed_back_as_the_readers_own(
    hub: Hub,
) -> None:
    child_id, record_ids = consented(hub)
    read = read_child(hub, CLINIC, child_id)
    # Identity only: the local ids are given, the owner (protection concerns) is not.
    assert sorted(r["local_id"] for r in read) == ["EXP-1", "EXP-2", "EXP-3"]
    assert {r["owner"] for r in read} == {None}

    refer_refused = push(hub, CLINIC, copy_of("EXP-1", child_id))
    assert refer_refused.status_code == 409  # referred: refused as ever
    assert "which mx.chp.dif referred to your agency" in refer_refused.get_json()["detail"]
    for number, record_id in ((2, record_ids[1]), (3, record_ids[2])):
        # Under its local id, and under its record id (what an export writes when the local
        # id is withheld).
        for local_id in (f"EXP-{number}", record_id):
            assert_refused_as_read(push(hub, CLINIC, copy_of(local_id, child_id)), record_id)
    spanish = push(hub, CLINIC, copy_of("EXP-2", child_id), lang="es").get_json()["detail"]
    assert spanish.startswith(RECEIVED_COPY[0])
    assert f"es el expediente {record_ids[1]}, que tiene otra institución y que su" in spanish
    assert NOT_READ[1] in spanish
    assert records_of(hub, CLINIC) == []
    # Its own record of the child, under a local id of its own, is stored as ever.
    own = push(hub, CLINIC, copy_of("TAP-1", child_id))
    assert own.status_code == 201, own.get_json()

    # Revoked, the consent gives CLINIC nothing more to read, and still no copy of its own.
    consents = hub.client.get(
        f"/v1/children/{child_id}/consents", headers=hub.headers(PROCURADURIA)
    ).get_json()["consents"]
    for consent in consents:
        revoked = hub.post(PROCURADURIA, f"/v1/consents/{consent['id']}/revoke", {"reason": "No."})
        assert revoked.status_code == 200, revoked.get_json()
    assert hub.read(CLINIC, record_ids[1]).status_code in (403, 404)
    assert_refused_as_read(push(hub, CLINIC, copy_of("EXP-2", child_id)), record_ids[1])
    assert records_of(hub, CLINIC) == [("TAP-1", child_id)]


def test_the_holder_is_named_only_to_a_reader_given_it(hub: Hub) -> None:
    child_id, record_ids = consented(hub, ["identity", "protection_concerns"])
    assert {r["owner"] for r in read_child(hub, CLINIC, child_id)} == {OWNER}
    english = push(hub, CLINIC, copy_of("EXP-2", child_id))
    assert_refused_as_read(english, record_ids[1], holder=OWNER)
    spanish = push(hub, CLINIC, copy_of("EXP-2", child_id), lang="es").get_json()["detail"]
    assert f"es el expediente {record_ids[1]}, que tiene {OWNER} y que su institución" in spanish


def test_a_record_the_pusher_never_read_tells_it_nothing(hub: Hub) -> None:
    child_id, record_ids = consented(hub)
    # Read for health care only: health data, neither local ids nor owner.
    read = read_child(hub, CLINIC, child_id, purpose="health_care")
    assert {r["local_id"] for r in read} == {None}
    assert {r["record_id"] for r in read} == set(record_ids)
    later = hub.post(OWNER, "/v1/records", {**case("EXP-4", "C-4"), "child_id": child_id})
    assert later.status_code == 201, later.get_json()
    # A read of EXP-4 refused (no consent for that purpose) is no read either.
    refused = hub.read(CLINIC, later.get_json()["record_id"], purpose="legal_representation")
    assert refused.status_code in (403, 404)

    # CLINIC never read EXP-2 under that local id, nor EXP-4 at all: its own records under
    # those local ids are stored, as any other local id is.
    for local_id in ("EXP-2", "EXP-4"):
        stored = push(hub, CLINIC, copy_of(local_id, child_id))
        assert stored.status_code == 201, stored.get_json()
    # The record id it was given stands for the record: refused.
    assert_refused_as_read(push(hub, CLINIC, copy_of(record_ids[2], child_id)), record_ids[2])
    assert records_of(hub, CLINIC) == [("EXP-2", child_id), ("EXP-4", child_id)]

    # An agency that read nothing of the child is answered as for any other local id.
    def answer_to_shelter(local_id: str) -> tuple[int, str]:
        answer = push(hub, SHELTER, copy_of(local_id, child_id))
        return answer.status_code, answer.get_json()["detail"]

    assert answer_to_shelter("EXP-3") == answer_to_shelter("NO-SUCH-1")
    assert answer_to_shelter(record_ids[2]) == answer_to_shelter("NO-SUCH-2")
    assert records_of(hub, SHELTER) == []


def test_a_read_by_one_of_its_people_counts_for_the_agency(hub: Hub) -> None:
    child_id, record_ids = consented(hub)
    with hub.app.app_context(), db.database(hub.app).sessions.begin() as session:
        person = add_person(
            session,
            name="Lic. Ana Pérez",
            email="ana@tapachula.example",
            agency_id=CLINIC,
            roles=["legal_representative"],
        )
        token, _ = store_token(
            session,
            client_id=CLINIC,
            scopes=["records:read"],
            agency_id=CLINIC,
            person_id=person.id,
        )
    answer = hub.client.get(
        f"/v1/records/{record_ids[1]}?purpose={PURPOSE}",
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
    )
    assert answer.status_code == 200, answer.get_json()
    # What the person read, the agency's system may not push as its own; what no one of the
    # agency read (EXP-3) is its own local id to use.
    assert_refused_as_read(push(hub, CLINIC, copy_of("EXP-2", child_id)), record_ids[1])
    assert push(hub, CLINIC, copy_of("EXP-3", child_id)).status_code == 201


def test_a_read_before_a_merge_counts_for_the_child_merged_into(hub: Hub) -> None:
    child_id, record_ids = consented(hub)
    read_child(hub, CLINIC, child_id)  # recorded under child_id
    other = hub.post(OWNER, "/v1/records", case("OTRO-1", "O-1", child_names=("Rosa", "Velázquez")))
    survivor = other.get_json()["child_id"]
    with hub.app.app_context(), db.database(hub.app).sessions() as session:
        merge_children(session, survivor, child_id, reason="la misma niña")
        session.commit()
    for named in (survivor, child_id):
        assert_refused_as_read(push(hub, CLINIC, copy_of("EXP-2", named)), record_ids[1])
    assert records_of(hub, CLINIC) == []


def test_a_bulk_push_refuses_the_read_lines_and_stores_the_others(hub: Hub) -> None:
    child_id, record_ids = consented(hub)
    read_child(hub, CLINIC, child_id)
    lines = [copy_of("EXP-2", child_id), copy_of("TAP-9", child_id), copy_of("EXP-3", child_id)]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    headers = {**hub.headers(CLINIC), "Content-Type": "application/x-ndjson"}
    answer = hub.client.post("/v1/records/bulk", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_data()
    results = [json.loads(line) for line in answer.get_data().splitlines() if line.strip()]
    assert [r["status"] for r in results] == ["rejected", "stored", "rejected"]
    for refused, record_id in ((results[0], record_ids[1]), (results[2], record_ids[2])):
        assert refused["problem"] == "conflict"
        [error] = refused["errors"]
        assert error["pointer"] == "/local_id"
        assert error["message_en"].startswith(RECEIVED_COPY[1])
        assert record_id in error["message_en"] and error["message_es"].startswith(RECEIVED_COPY[0])
    assert records_of(hub, CLINIC) == [("TAP-9", child_id)]


def test_an_ordinary_push_does_not_look_at_the_audit_log(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    child_id, _record_ids = consented(hub)
    read_child(hub, CLINIC, child_id)
    statements: list[str] = []
    run = HotSQL._run

    def noting(self: HotSQL, text: str, params: Any) -> Any:
        statements.append(text)
        return run(self, text, params)

    monkeypatch.setattr(HotSQL, "_run", noting)
    # A new record of the child under a local id of its own, and an update of it.
    for case_number in ("T-1", "T-2"):
        stored = push(hub, CLINIC, {**case("TAP-1", case_number), "child_id": child_id})
        assert stored.status_code in (200, 201), stored.get_json()
    looked = [text for text in statements if text.lstrip().startswith("SELECT")]
    assert looked and not [text for text in looked if "audit_entry" in text]


def test_export_then_import_counts_the_read_records_as_received(
    hub: Hub, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _child_id, record_ids = consented(hub)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", hub.app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    runner = CliRunner()
    out = tmp_path / "tap.ndjson"
    exported = runner.invoke(
        main,
        ["export", "--adapter", "ndjson", "--agency", CLINIC, "--purpose", PURPOSE,
         "--out", str(out), "--lang", "en"],
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert "3 of the records exported are held by another agency" in exported.stderr
    assert "read by mx.chp.tapachula.dif under a consent" in exported.stderr
    assert "leídos por mx.chp.tapachula.dif con un consentimiento" in exported.stderr
    # The office completes the redacted bodies, as the outside-in check did.
    lines = []
    for line in out.read_text().splitlines():
        document = json.loads(line)
        document["data"].setdefault("case", {})["status"] = "open"
        lines.append(json.dumps(document))
    out.write_text("\n".join(lines) + "\n")

    imported = runner.invoke(
        main, ["import", "--adapter", "ndjson", str(out), "--agency", CLINIC, "--json"]
    )
    assert imported.exit_code == 1, imported.output
    summary = json.loads(imported.stdout)
    assert (summary["stored"], summary["received_copies"]) == (0, 3), summary
    rejected = (tmp_path / "tap-rejects.ndjson").read_text().splitlines()
    messages = sorted(json.loads(line)["errors"][0]["message_en"] for line in rejected)
    assert all(message.startswith(RECEIVED_COPY[1]) for message in messages)
    assert all(any(r in m for r in record_ids) for m in messages)
    assert records_of(hub, CLINIC) == []
