"""Federation faults an outside check found, fixed:

1. a withhold entry naming a peer hub's agency (``target_hub``) is refused when that hub does
   not speak for the agency (a typo would protect nobody);
2. a lookup whose peer does not answer says why in plain words, in the asking language;
3. ``puente audit witness`` never prints a witness's body that is no problem document;
4. a lookup whose requester's ``country`` is not text is refused as a malformed requester;
5. a peer's envelope refused without a named requester, and a ``consent_revoked`` receipt,
   are audited with the peer hub as actor, when its signature verified.

Two hubs as in :mod:`tests.api.test_federation`: ``fed`` has the holding hub on each backend;
``asking`` is the same pair with the asking hub on each backend instead, for what happens
there. Witnesses as in :mod:`tests.api.test_cosignatures`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consent_support import (
    COMAR,
    OWNER,
    adolescent_record,
    consent_officer,
    entries,
    procuraduria,
)
from flask import Flask
from records_support import add_agency, push

from exchange import db, federation, witnessing
from exchange.peers import Peer
from exchange.witnessing import HttpAnswer, request_cosignatures
from tests.api.test_cosignatures import (
    PEER,
    WitnessRoute,
    grow,
    peer_hub,  # noqa: F401 - a fixture route needs
    run_cli,
)
from tests.api.test_cosignatures import route as witness_route  # noqa: F401 - a fixture
from tests.api.test_federation import (
    ASKER_ID,
    HOLDER_ID,
    HOLDER_URL,
    LOOKUP_SCOPES,
    ROUTE,
    Federation,
    lookup_body,
    notice_to_the_asker,
    pin,
    problem,
    to_the_asker,
)
from tests.api.test_federation import fed as two_hubs  # noqa: F401 - a fixture
from tests.conftest import make_hub

#: The real sender, before any test routes envelopes to a test client.
REAL_POST_ENVELOPE = federation.post_envelope
#: How the log names the asking hub when it acts on its own account, on the holder's log.
ASKER_AS_ACTOR = {"agency_id": ASKER_ID, "role": "system", "client_id": f"hub:{ASKER_ID}"}
HOLDER_AS_ACTOR = {"agency_id": HOLDER_ID, "role": "system", "client_id": f"hub:{HOLDER_ID}"}


@pytest.fixture
def fed(two_hubs: Federation) -> Federation:  # noqa: F811 - the imported fixture, by another name
    return two_hubs


@pytest.fixture
def asking(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Federation]:
    """The pair of :func:`tests.api.test_federation.fed`, the asking hub on each backend and
    the holding hub on SQLite."""
    holder = make_hub(
        tmp_path / "holder",
        f"sqlite:///{tmp_path / 'holder.db'}",
        HUB_ID=HOLDER_ID,
        AUDIT_INTEGRATOR_THREAD=False,
        FEDERATION_ANSWER_FLOOR=0,
    )
    asker = make_hub(
        tmp_path / "asker", database_url, HUB_ID=ASKER_ID, AUDIT_INTEGRATOR_THREAD=False
    )
    pin(holder, asker, agency_prefixes=["mx.fed.", "hn.consulado."])
    pin(asker, holder, url=HOLDER_URL)
    holder_client = holder.test_client()
    sent: list[str] = []

    def to_holder(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
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


# -- 1. a withhold entry for a peer's agency the peer does not speak for ------------------------


@pytest.mark.parametrize("agency_id", ["mx.fde.comar", "mx.oax.dif"])
def test_a_withhold_entry_for_an_agency_the_peer_does_not_speak_for_is_refused(
    fed: Federation, agency_id: str
) -> None:
    officer = consent_officer(fed.holder, "oficial-reserva")
    route = f"/v1/children/{fed.child_id}/withholds"
    entry = {"target": {"agency_id": agency_id}, "target_hub": ASKER_ID, "reason": "typo"}
    for language, words in (
        ("en", f"Peer hub {ASKER_ID} does not speak for '{agency_id}'"),
        ("es", f"El nodo par {ASKER_ID} no habla por '{agency_id}'"),
    ):
        response = fed.holder_client.post(
            route, json=entry, headers={**officer.headers, "Accept-Language": language}
        )
        assert response.status_code == 400, response.get_json()
        [error] = response.get_json()["errors"]
        assert error["pointer"] == "/target/agency_id"
        assert words in error["message"]
        assert "hn.consulado., mx.fed." in error["message"]  # what it does speak for
    listed = fed.holder_client.get(route, headers=officer.headers).get_json()
    assert listed["withholds"] == []
    # The agency the peer does speak for is taken.
    right = {**entry, "target": {"agency_id": COMAR}}
    assert fed.holder_client.post(route, json=right, headers=officer.headers).status_code == 201


# -- 2. a peer that does not answer, said in plain words ----------------------------------------


def point_at(fed: Federation, url: str) -> None:
    with fed.asker.app_context(), db.database(fed.asker).sessions.begin() as session:
        peer = session.get(Peer, HOLDER_ID)
        assert peer is not None
        peer.base_url = url


def test_a_peer_at_a_dead_port_is_said_in_plain_words(
    asking: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Closed: nothing listens there now.
    point_at(asking, f"http://127.0.0.1:{port}")
    monkeypatch.setattr(federation, "post_envelope", REAL_POST_ENVELOPE)
    spanish = problem(asking.lookup(language="es"), 502, "unavailable")["detail"]
    assert f"El nodo par {HOLDER_ID} no respondió: conexión rechazada" in spanish, spanish
    assert "Errno" not in spanish and "refused" not in spanish
    english = problem(asking.lookup(language="en"), 502, "unavailable")["detail"]
    assert f"Peer hub {HOLDER_ID} did not answer: Connection refused" in english, english
    assert "Errno" not in english
    sent = entries(asking.asker, "federation_envelope_sent")
    assert [e["outcome"] for e in sent] == ["failure", "failure"]


def test_a_peer_too_slow_to_answer_is_said_in_plain_words(
    asking: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Listening, never accepting: the connection is made, no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        point_at(asking, f"http://127.0.0.1:{silent.getsockname()[1]}")
        asking.asker.config["FEDERATION_TIMEOUT"] = 0.3
        monkeypatch.setattr(federation, "post_envelope", REAL_POST_ENVELOPE)
        spanish = problem(asking.lookup(language="es"), 502, "unavailable")["detail"]
    assert "no respondió: se agotó el tiempo de espera (0.3 s)" in spanish, spanish
    assert "timed out" not in spanish


# -- 3. a witness's body that is no problem document is never printed ---------------------------


@pytest.fixture
def route(witness_route: WitnessRoute) -> WitnessRoute:  # noqa: F811 - the imported fixture
    return witness_route


@pytest.fixture
def cli_hub(
    app: Flask, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Flask:
    """``puente`` commands run against ``app``."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    return app


PAGE = b"<html><body>502 Bad Gateway nginx</body></html>"


def bad_gateway(url: str, body: bytes, timeout: float) -> HttpAnswer:
    return HttpAnswer(502, "text/html", PAGE)


def test_a_witnesss_error_page_is_said_by_its_status_not_its_body(
    app: Flask, route: WitnessRoute
) -> None:
    grow(app, 3)
    (peer,) = request_cosignatures(app, post=bad_gateway, language="es").peers
    assert peer.outcome == "refused" and peer.status == 502
    english, spanish = peer.said("en") or "", peer.said("es") or ""
    assert "answered 502 (Bad Gateway; the body, text/html, is not shown" in english, english
    assert "respondió 502 (puerta de enlace errónea; el cuerpo, text/html, no se muestra" in (
        spanish
    ), spanish
    for said in (english, spanish):
        assert "<html" not in said and "nginx" not in said


@pytest.mark.parametrize(
    ("content_type", "body", "said"),
    [
        ("text/plain", b"line one\x1b[31m red", " (Internal Server Error; the body, text/plain,"),
        ("application/json", b'["not", "a", "problem"]', " (Internal Server Error; the body,"),
        # A problem document still says its own title and detail.
        ("application/problem+json", b'{"title": "Busy", "detail": "Later."}', ": Busy: Later."),
    ],
)
def test_what_a_refusal_shows_of_a_witnesss_answer(
    app: Flask, route: WitnessRoute, content_type: str, body: bytes, said: str
) -> None:
    grow(app, 3)

    def answer(url: str, sent: bytes, timeout: float) -> HttpAnswer:
        return HttpAnswer(500, content_type, body)

    (peer,) = request_cosignatures(app, post=answer).peers
    reason = peer.reason or ""
    assert f"answered 500{said}" in reason, reason
    assert "line one" not in reason and '"not"' not in reason


def test_puente_audit_witness_never_prints_the_page(
    cli_hub: Flask, route: WitnessRoute, monkeypatch: pytest.MonkeyPatch
) -> None:
    grow(cli_hub, 3)
    monkeypatch.setattr(witnessing, "http_post", bad_gateway)
    spanish = run_cli("audit", "witness", "--lang", "es")
    said = " ".join(spanish.output.split())
    assert "respondió 502 (puerta de enlace errónea;" in said, said
    as_json = run_cli("audit", "witness", "--lang", "en", "--json")
    [peer] = json.loads(as_json.output)["peers"]
    assert peer["peer"] == PEER and "answered 502 (Bad Gateway;" in peer["reason"]
    for output in (spanish.output, as_json.output):
        assert "<html" not in output and "nginx" not in output


# -- 4. a requester's country that is not text --------------------------------------------------


@pytest.mark.parametrize("country", [5, None, ["GT"]])
def test_a_requester_whose_country_is_not_text_is_refused(fed: Federation, country: Any) -> None:
    requester = {**lookup_body()["requester"], "country": country}
    answer = problem(
        fed.post(fed.envelope(body=lookup_body(requester=requester))), 400, "validation"
    )
    assert answer["errors"][0]["pointer"] == "/body/requester/country"
    assert entries(fed.holder, "record_read") == []
    [refused] = entries(fed.holder, "federation_envelope_received")
    assert refused["outcome"] == "failure" and refused["reason_code"] == "refused.validation"


# -- 5. what a peer hub did on its own account is on the log as the peer's ---------------------


def refused_receipts(app: Flask) -> list[dict[str, Any]]:
    return [e for e in entries(app, "federation_envelope_received") if e["outcome"] == "failure"]


def test_an_envelope_refused_without_a_named_requester_is_the_peers(fed: Federation) -> None:
    problem(fed.post(fed.envelope(kind="transfer", body={})), 409, "conflict")
    malformed = lookup_body(requester={**lookup_body()["requester"], "agency_id": "MX.FED.X"})
    problem(fed.post(fed.envelope(body=malformed)), 400, "validation")
    problem(fed.post(fed.envelope(body={"requester": "nadie"})), 400, "validation")
    refused = refused_receipts(fed.holder)
    assert [e["reason_code"] for e in refused] == ["refused.conflict"] + ["refused.validation"] * 2
    for entry in refused:
        assert entry["actor"] == ASKER_AS_ACTOR, entry
        assert entry["target"] == {"hub": ASKER_ID}
    # A named requester is still the actor of its refusal.
    named = lookup_body(requester={**lookup_body()["requester"], "agency_id": OWNER})
    problem(fed.post(fed.envelope(body=named)), 403, "forbidden")
    assert refused_receipts(fed.holder)[-1]["actor"]["agency_id"] == OWNER


def test_a_revocation_notice_received_is_the_sending_hubs(asking: Federation) -> None:
    assert asking.lookup().status_code == 200  # COMAR asked the holder
    assert to_the_asker(asking, notice_to_the_asker(asking)).status_code == 200
    [received] = [
        e
        for e in entries(asking.asker, "federation_envelope_received")
        if e["reason_code"] == "consent_revoked"
    ]
    assert received["actor"] == HOLDER_AS_ACTOR
    assert received["outcome"] == "success" and received["target"] == {"hub": HOLDER_ID}
    # Refused (for an agency that never asked the holder): the holder's all the same.
    notice = notice_to_the_asker(asking, agency_id="mx.fed.inm")
    problem(to_the_asker(asking, notice), 404, "not-found")
    [refused] = refused_receipts(asking.asker)
    assert refused["actor"] == HOLDER_AS_ACTOR and refused["reason_code"] == "refused.not-found"


def test_an_envelope_that_did_not_verify_names_no_peer(fed: Federation) -> None:
    """Nothing proves who sent it: a refusal is not logged, and an envelope audited as not
    verified stays this hub's own entry."""
    with fed.holder.test_request_context(), db.database(fed.holder).sessions() as session:
        federation.audit_envelope(
            session, "received", ASKER_ID, None, "lookup_answer", outcome="failure", verified=False
        )
        federation.audit_envelope(session, "sent", ASKER_ID, None, "consent_revoked")
        session.commit()
    unverified, sent = (
        entries(fed.holder, "federation_envelope_received")[0],
        entries(fed.holder, "federation_envelope_sent")[0],
    )
    assert unverified["actor"] == sent["actor"] == {"agency_id": HOLDER_ID}
