"""Federation faults an outside check of three hubs found, fixed:

1. a revocation notice for an agency disabled on its own hub is kept for it (it still holds the
   data), not refused with a 404 its sender's worker takes as final;
3. the holding hub cuts a lookup answer that would pass ``MAX_ANSWER_BYTES`` before deciding
   what would not fit, and says so; the asking hub's message says to ask for less;
4. a withhold entry naming a peer hub's agency carries a warning that the id cannot be checked;
6. a notice is taken only for an agency that took an answer from the sending hub, and the
   refusal says nothing false of an agency that exists;
7. a notice whose peer is down is described as a webhook's failure is, not as urllib's wrapper;
8. messages: an envelope without ``kid``, a lookup to this hub's own id, and the plain refusal a
   peer's agency is told.

Two hubs as in :mod:`tests.api.test_federation`: ``fed`` has the holding hub on each backend;
``asking`` the asking hub on each backend instead, for what happens there.
"""

from __future__ import annotations

import json
import urllib.error
from typing import Any

import pytest
from consent_support import COMAR, adolescent_record, consent_officer, entries
from records_support import issue_token, push
from sqlalchemy import select

from exchange import db, federation
from exchange.agencies import Agency, disable_agency, enable_agency
from exchange.api import federation as federation_routes
from exchange.api import record_reads
from exchange.cli.worker import failure_reason
from exchange.consent_store import ConsentDisclosure
from exchange.federation import MAX_ANSWER_BYTES
from exchange.federation_notices import notice_message_id
from exchange.outbox import dead_while_disabled
from exchange.records import Record
from exchange.witnessing import HttpAnswer
from tests.api.test_federation import (
    ASKER_ID,
    CURP,
    HOLDER_ID,
    LOOKUP_SCOPES,
    Federation,
    deliver,
    lookup_body,
    notice_to_the_asker,
    outbox,
    permit_comar,
    problem,
    revoke_after_a_lookup,
    route_envelopes,
    to_the_asker,
)
from tests.api.test_federation import fed as two_hubs  # noqa: F401 - a fixture
from tests.api.test_federation_fixes_s17 import asking as asking_hubs  # noqa: F401 - a fixture


@pytest.fixture
def fed(two_hubs: Federation) -> Federation:  # noqa: F811 - the imported fixture, by another name
    return two_hubs


@pytest.fixture
def asking(asking_hubs: Federation) -> Federation:  # noqa: F811 - as above
    return asking_hubs


def set_active(fed: Federation, agency_id: str, active: bool) -> None:
    """``puente agency disable`` / ``enable`` on the asking hub."""
    with fed.asker.app_context(), db.database(fed.asker).sessions.begin() as session:
        (enable_agency if active else disable_agency)(session, agency_id)


def comar_inbox(fed: Federation) -> list[dict[str, Any]]:
    """What COMAR reads with GET /v1/notifications, with a token issued now (disabling it
    revoked the ones it had)."""
    token = issue_token(fed.asker, COMAR, LOOKUP_SCOPES)
    response = fed.asker_client.get(
        "/v1/notifications", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["notifications"])


# -- 1. a notice for an agency disabled on its own hub -----------------------------------------


def test_a_notice_for_a_disabled_agency_is_kept_for_it(
    asking: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = asking
    route_envelopes(fed, monkeypatch)
    consent_id = revoke_after_a_lookup(fed)
    set_active(fed, COMAR, False)
    # Taken: the sender's notice is done, not dead.
    assert deliver(fed.holder).delivered == 1
    [sent] = outbox(fed.holder)
    assert sent.status == "delivered"
    [kept] = outbox(fed.asker)
    assert (kept.agency_id, kept.status) == (COMAR, "held")
    received = [
        e
        for e in entries(fed.asker, "federation_envelope_received")
        if e["reason_code"] == "consent_revoked"
    ]
    assert [e["outcome"] for e in received] == ["success"]
    # The same notice again (the worker's next attempt, or `puente outbox retry`): told once.
    again = notice_to_the_asker(fed, notice_id=sent.id, consent_id=consent_id)
    assert to_the_asker(fed, again).status_code == 200
    assert [m.id for m in outbox(fed.asker)] == [notice_message_id(HOLDER_ID, sent.id)]
    set_active(fed, COMAR, True)
    [notice] = comar_inbox(fed)
    assert notice["event"] == "consent.revoked"
    assert notice["payload"]["consent_id"] == consent_id
    assert notice["payload"]["hub"] == HOLDER_ID


def test_a_disabled_agency_with_a_webhook_is_told_as_for_a_local_notice(
    asking: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its notification dies as any of a disabled agency does: `puente agency enable` counts
    it, and the agency reads it with GET /v1/notifications once enabled."""
    fed = asking
    route_envelopes(fed, monkeypatch)
    revoke_after_a_lookup(fed)
    with fed.asker.app_context(), db.database(fed.asker).sessions.begin() as session:
        agency = session.get(Agency, COMAR)
        assert agency is not None
        agency.webhook_url = "https://comar.example/puente"
    set_active(fed, COMAR, False)
    assert deliver(fed.holder).delivered == 1
    assert deliver(fed.asker).dead == 1
    set_active(fed, COMAR, True)
    with fed.asker.app_context(), db.database(fed.asker).sessions() as session:
        assert dead_while_disabled(session, COMAR) == 1
    assert [n["event"] for n in comar_inbox(fed)] == ["consent.revoked"]


def test_a_notice_for_an_agency_the_hub_does_not_have_is_still_refused(
    asking: Federation,
) -> None:
    fed = asking
    assert fed.lookup().status_code == 200
    response = to_the_asker(fed, notice_to_the_asker(fed, agency_id="mx.fed.nadie"))
    problem(response, 404, "not-found")
    assert outbox(fed.asker) == []


# -- 6. which agency a notice is taken for, and what a refusal says -----------------------------


def test_the_refusal_says_nothing_false_of_an_agency_that_exists(asking: Federation) -> None:
    fed = asking
    unknown = problem(
        to_the_asker(fed, notice_to_the_asker(fed, agency_id="mx.fed.nadie")), 404, "not-found"
    )
    never = problem(to_the_asker(fed, notice_to_the_asker(fed)), 404, "not-found")  # COMAR
    assert never["detail"] == unknown["detail"].replace("mx.fed.nadie", COMAR)
    assert "not an active agency" not in never["detail"]
    assert f"que haya recibido una respuesta del nodo {HOLDER_ID}" in never["detail"]


def test_a_lookup_whose_answer_was_discarded_read_nothing(
    asking: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder answered (HTTP 200), but with nothing the asking hub took: COMAR received
    nothing from it, and a notice for it is refused."""
    fed = asking

    def garbled(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        return HttpAnswer(200, "application/json", b"{}")

    routed = federation.post_envelope
    monkeypatch.setattr(federation, "post_envelope", garbled)
    problem(fed.lookup(), 502, "unavailable")
    [sent] = entries(fed.asker, "federation_envelope_sent")
    assert sent["outcome"] == "success"  # what the old check took as "asked"
    problem(to_the_asker(fed, notice_to_the_asker(fed)), 404, "not-found")
    monkeypatch.setattr(federation, "post_envelope", routed)
    assert fed.lookup().status_code == 200
    assert to_the_asker(fed, notice_to_the_asker(fed)).status_code == 200


# -- 7. a peer that is down, in the outbox's words ----------------------------------------------


def test_a_notice_to_a_peer_that_is_down_says_so_in_both_languages(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_envelopes(fed, monkeypatch)
    revoke_after_a_lookup(fed)

    def refused(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        # What urllib raises for a closed port.
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(federation, "post_envelope", refused)
    assert deliver(fed.holder).retrying == 1
    [waiting] = outbox(fed.holder)
    error = waiting.last_error or ""
    assert error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert "urlopen" not in error and "URLError" not in error
    spanish = failure_reason(error, "es")
    assert spanish.startswith("conexión rechazada"), spanish
    assert "Connection refused" not in spanish


# -- 8. messages ---------------------------------------------------------------------------------


def test_an_envelope_without_kid_is_said_to_have_none(fed: Federation) -> None:
    for language, words in (("en", "the header has no kid"), ("es", "no lleva kid")):
        body = problem(
            fed.post(fed.envelope(header={"kid": None}), language=language), 401, "bad-signature"
        )
        assert words in body["detail"], body
        assert "None" not in body["detail"]


def test_a_lookup_to_this_hubs_own_id_says_it_is_this_hub(asking: Federation) -> None:
    fed = asking
    for language, words in (
        ("en", f"{ASKER_ID} is this hub itself"),
        ("es", f"{ASKER_ID} es este mismo nodo"),
    ):
        body = problem(fed.lookup(language=language, hub=ASKER_ID), 404, "not-found")
        assert words in body["detail"], body
        assert "POST /v1/children/search" in body["detail"]
    assert entries(fed.asker, "federation_envelope_sent") == []


def test_a_peers_agency_is_not_told_to_ask_for_access_here(fed: Federation) -> None:
    permit_comar(fed, categories=["identity"])
    [record] = fed.lookup().get_json()["records"]
    [plain] = [r for r in record["decision"]["reasons"] if r["code"] == "default_deny"]
    assert "Puede solicitar acceso" not in plain["es"]
    assert "ask the Procuraduría for access" not in plain["en"]
    assert f"en el nodo {HOLDER_ID}" in plain["es"] and "consentimiento que" in plain["es"]
    assert f"on hub {HOLDER_ID}" in plain["en"] and "record a consent naming" in plain["en"]


# -- 3. an answer that would pass MAX_ANSWER_BYTES ----------------------------------------------

#: A narrative near the longest the case record schema takes, as in
#: :mod:`tests.api.test_federation_answer_size`.
LONG_NARRATIVE = "Relato de la entrevista inicial con la adolescente. " * 190
#: The limit the tests set on both hubs (the same process): about a dozen long records.
SMALL_LIMIT = 160_000


def push_long_records(fed: Federation, count: int) -> None:
    for number in range(count):
        record = adolescent_record(f"EXP-LARGO-{number}")
        record["data"]["protection_concerns"]["narrative"] = LONG_NARRATIVE
        response = push(fed.holder_client, fed.owner, record)
        assert response.status_code == 201, response.get_json()


def test_the_holder_cuts_an_answer_that_would_not_fit(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    consent_id = permit_comar(fed)
    push_long_records(fed, 20)
    monkeypatch.setattr(federation, "MAX_ANSWER_BYTES", SMALL_LIMIT)
    sizes: list[int] = []
    routed = federation.post_envelope

    def measured(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        reply = routed(url, token, timeout, language)
        sizes.append(len(reply.body))
        return reply

    monkeypatch.setattr(federation, "post_envelope", measured)
    response = fed.lookup(identifiers=[{"type": "curp", "value": CURP}])
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert 0 < len(answer["records"]) < 21
    assert answer["incomplete"] is True
    assert "With one identifier" in answer["note"]["en"] and answer["note"]["es"]
    [size] = sizes
    assert size <= SMALL_LIMIT
    # Audited as read only what the answer carries; nothing after the cut was decided.
    reads = [e for e in entries(fed.holder, "record_read") if e["actor"].get("agency_id") == COMAR]
    carried = sorted(record["record_id"] for record in answer["records"])
    assert sorted(e["record_id"] for e in reads) == carried
    assert all(e["outcome"] == "success" for e in reads)
    with fed.holder.app_context(), db.database(fed.holder).sessions() as session:
        noted = session.scalars(select(ConsentDisclosure.consent_id)).all()
    assert noted == [consent_id]


def test_an_answer_that_fits_is_whole(fed: Federation) -> None:
    permit_comar(fed)
    answer = fed.lookup().get_json()
    assert len(answer["records"]) == 1
    assert "incomplete" not in answer and "note" not in answer


def test_nothing_permitted_is_never_cut(fed: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused reads add nothing to the answer: every one is decided and audited."""
    push_long_records(fed, 12)
    monkeypatch.setattr(federation, "MAX_ANSWER_BYTES", SMALL_LIMIT)
    answer = fed.lookup().get_json()
    assert answer["records"] == [] and "incomplete" not in answer
    reads = [e for e in entries(fed.holder, "record_read") if e["actor"].get("agency_id") == COMAR]
    assert len(reads) == 13 and {e["outcome"] for e in reads} == {"denied"}


def test_an_answer_over_the_limit_says_to_ask_for_less(
    asking: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = asking
    routed = federation.post_envelope

    def padded(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        reply = routed(url, token, timeout, language)
        body = {**json.loads(reply.body), "padding": "x" * MAX_ANSWER_BYTES}
        return HttpAnswer(reply.status, reply.content_type, json.dumps(body).encode())

    monkeypatch.setattr(federation, "post_envelope", padded)
    english = problem(fed.lookup(language="en"), 502, "unavailable")["detail"]
    assert f"it is over {MAX_ANSWER_BYTES} bytes; ask again with fewer identifiers" in english
    spanish = problem(fed.lookup(language="es"), 502, "unavailable")["detail"]
    assert "consulte de nuevo con menos identificadores" in spanish


# -- 4. a peer's agency named in a withhold entry -----------------------------------------------


def test_a_withhold_naming_a_peers_agency_warns_that_its_id_is_unchecked(
    fed: Federation,
) -> None:
    officer = consent_officer(fed.holder, "oficial-reserva")
    route = f"/v1/children/{fed.child_id}/withholds"
    typo = {"target": {"agency_id": "mx.fed.comr"}, "target_hub": ASKER_ID, "reason": "typo"}
    response = fed.holder_client.post(route, json=typo, headers=officer.headers)
    assert response.status_code == 201, response.get_json()
    [warning] = response.get_json()["withhold"]["warnings"]
    assert (warning["code"], warning["pointer"]) == ("peer_agency_unchecked", "/target/agency_id")
    assert f"mx.fed.comr is an agency of peer hub {ASKER_ID}" in warning["en"]
    assert "cannot check that it exists" in warning["en"]
    assert "No lookup of its has reached this hub yet." in warning["en"]
    assert "no puede comprobar que exista" in warning["es"]
    # COMAR did look the child up here: said without that last sentence.
    assert fed.lookup().status_code == 200
    right = {**typo, "target": {"agency_id": COMAR}}
    [seen] = fed.holder_client.post(route, json=right, headers=officer.headers).get_json()[
        "withhold"
    ]["warnings"]
    assert "No lookup of its" not in seen["en"] and "Ninguna consulta" not in seen["es"]
    # An entry by kind names no agency: no warning.
    by_kind = {"actor_kind": "immigration_enforcement", "reason": "x"}
    recorded = fed.holder_client.post(route, json=by_kind, headers=officer.headers).get_json()
    assert "warnings" not in recorded["withhold"]


# -- 2. a child held and refused costs about what one not held does ---------------------------


def count_bodies_fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The records whose body a read fetches and decrypts (``record_json``), from now on."""
    fetched: list[str] = []
    real = record_reads.body_of

    def counted(session: Any, child: Any, record: Any) -> Any:
        fetched.append(record.id)
        return real(session, child, record)

    monkeypatch.setattr(record_reads, "body_of", counted)
    return fetched


def test_a_refused_lookup_fetches_no_body(fed: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    """What took the time (each body fetched and decrypted, a savepoint each) is not spent on
    a read nothing permits; each read is still decided and audited."""
    push_long_records(fed, 5)
    fetched = count_bodies_fetched(monkeypatch)
    assert fed.lookup().get_json()["records"] == []
    assert fetched == []
    reads = [e for e in entries(fed.holder, "record_read") if e["actor"].get("agency_id") == COMAR]
    assert len(reads) == 6 and {e["outcome"] for e in reads} == {"denied"}
    with fed.holder.app_context(), db.database(fed.holder).sessions() as session:
        records = {row.id: row.latest_sha256 for row in session.scalars(select(Record))}
    # The entries name each record's version and digest, as a read that fetched it would.
    assert {e["record_id"]: e["body_sha256"] for e in reads} == records
    # Permitted, each is fetched to be sent.
    permit_comar(fed)
    assert len(fed.lookup().get_json()["records"]) == 6
    assert sorted(fetched) == sorted(records)


def answered(records: int, identifiers: int = 1) -> federation.Answered:
    return federation.Answered({}, records, identifiers)


def test_an_empty_answer_waits_as_long_as_the_slowest_empty_one(fed: Federation) -> None:
    fed.holder.config["FEDERATION_ANSWER_FLOOR"] = 0.25
    with fed.holder.app_context():
        assert federation_routes.answer_floor(answered(0), 0.9) == 0.25  # the first shows
        assert federation_routes.answer_floor(answered(0), 0.01) == 0.9
        assert federation_routes.answer_floor(answered(0), 0.02) == 0.9
        # Another shape (two identifiers) learns on its own.
        assert federation_routes.answer_floor(answered(0, 2), 0.01) == 0.25
        # An answer with records tells that the child is held anyway: not learned from.
        assert federation_routes.answer_floor(answered(3), 4.0) == 0.9
        assert federation_routes.answer_floor(answered(0), 0.01) == 0.9
        # One slow moment never makes every answer wait past the cap.
        federation_routes.answer_floor(answered(0), 60.0)
        assert federation_routes.answer_floor(answered(0), 0.01) == 5.0
    fed.holder.config["FEDERATION_ANSWER_FLOOR"] = 0
    with fed.holder.app_context():
        assert federation_routes.answer_floor(answered(0), 0.01) == 0.0


def test_the_envelope_route_waits_for_the_learned_floor(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed.holder.config["FEDERATION_ANSWER_FLOOR"] = 0.25
    with fed.holder.app_context():
        federation_routes.answer_floor(answered(0), 5.0)  # a slow empty answer, learned
    waits: list[float] = []
    monkeypatch.setattr(federation_routes.time, "sleep", waits.append)
    unknown = lookup_body(identifiers=[{"type": "curp", "value": "XAXX010101HNEXXXA0"}])
    assert fed.post(fed.envelope(body=unknown)).status_code == 200
    [waited] = waits
    assert waited > 4.0  # 5 s from the start, less what the answer took
