"""What an outside-in check of federation found, fixed: a lookup answer over joserfc's default
payload bound (128,000 bytes) was discarded by the asking hub although answers up to
``MAX_ANSWER_BYTES`` (8 MiB) are promised, and the Spanish reason for a discarded answer was
the English one.

Two hubs as in :mod:`tests.api.test_federation`: the Chiapas hub holds the child's records, the
federal hub's COMAR looks the child up.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from consent_support import adolescent_record, entries
from records_support import push

from exchange import db, federation
from exchange.federation import MAX_ANSWER_BYTES, MAX_ENVELOPE_BYTES
from exchange.peers import Peer
from exchange.witnessing import HttpAnswer
from tests.api.test_federation import (
    ASKER_ID,
    HOLDER_ID,
    Federation,
    lookup_body,
    permit_comar,
    problem,
)
from tests.api.test_federation import fed as two_hubs  # noqa: F401 - a fixture

#: A narrative near the longest the case record schema takes (10,000 characters), so that a
#: few dozen records make an answer of hundreds of kilobytes.
LONG_NARRATIVE = "Relato de la entrevista inicial con la adolescente. " * 190


@pytest.fixture
def fed(two_hubs: Federation) -> Federation:  # noqa: F811 - the imported fixture, by another name
    return two_hubs


def push_records_of_the_child(fed: Federation, count: int) -> None:
    """``count`` more records of the fixture's child, each with a long narrative."""
    for number in range(count):
        record = adolescent_record(f"EXP-LARGO-{number}")
        record["data"]["protection_concerns"]["narrative"] = LONG_NARRATIVE
        response = push(fed.holder_client, fed.owner, record)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["child_id"] == fed.child_id


def answered_with(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[HttpAnswer], HttpAnswer]
) -> None:
    """The holder's answer reaches the asking hub as ``change`` makes it."""
    routed = federation.post_envelope  # the fixture's route to the holder's test client

    def changed(url: str, token: str, timeout: float, language: str | None = None) -> HttpAnswer:
        return change(routed(url, token, timeout, language))

    monkeypatch.setattr(federation, "post_envelope", changed)


# -- 1. answers up to MAX_ANSWER_BYTES ---------------------------------------------------------


def test_an_answer_of_hundreds_of_kilobytes_reaches_the_agency(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    permit_comar(fed)
    push_records_of_the_child(fed, 30)
    sizes: list[int] = []

    def measured(reply: HttpAnswer) -> HttpAnswer:
        sizes.append(len(reply.body))
        return reply

    answered_with(monkeypatch, measured)
    response = fed.lookup()
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["records"]) == 31
    # Well over joserfc's default bound (128,000 bytes), well under the promised 8 MiB.
    [size] = sizes
    assert 300_000 < size < MAX_ANSWER_BYTES
    [got] = entries(fed.asker, "federation_envelope_received")
    assert got["outcome"] == "success" and got["reason_code"] == "lookup_answer"


def over_the_limit(reply: HttpAnswer) -> HttpAnswer:
    """The answer padded past ``MAX_ANSWER_BYTES`` (what a peer that answers too much sends)."""
    answer = json.loads(reply.body)
    padded = {**answer, "padding": "x" * MAX_ANSWER_BYTES}
    return HttpAnswer(reply.status, reply.content_type, json.dumps(padded).encode())


def test_an_answer_over_the_limit_is_still_discarded(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    permit_comar(fed)
    answered_with(monkeypatch, over_the_limit)
    body = problem(fed.lookup(language="en"), 502, "unavailable")
    assert body["detail"].endswith(
        f"discarded: it is over {MAX_ANSWER_BYTES} bytes; ask again with fewer identifiers "
        "(one a lookup)."
    ), body
    [discarded] = entries(fed.asker, "federation_envelope_received")
    assert discarded["outcome"] == "failure" and discarded["reason_code"] == "lookup_answer"


def test_an_answer_envelope_is_opened_up_to_the_size_it_is_given(fed: Federation) -> None:
    """The bound is the caller's: ``MAX_ANSWER_BYTES`` for an answer, and by default (an
    envelope received on its own) ``MAX_ENVELOPE_BYTES``, not joserfc's 128,000 bytes."""
    body = {"in_reply_to": "env_" + "0" * 32, "records": [{"note": "x" * 80_000}]}
    with fed.holder.test_request_context():
        _jti, token = federation.sign_envelope(audience=ASKER_ID, kind="lookup_answer", body=body)
    assert MAX_ENVELOPE_BYTES < len(token) < 128_000
    with fed.asker.app_context(), db.database(fed.asker).sessions() as session:
        peer = session.get(Peer, HOLDER_ID)
        with pytest.raises(federation.EnvelopeRefused) as refused:
            federation.open_envelope(session, token, from_peer=peer)
        opened = federation.open_envelope(
            session, token, from_peer=peer, max_bytes=MAX_ANSWER_BYTES
        )
        session.rollback()
    assert refused.value.kind == "validation"
    assert opened.body == body


def test_an_envelope_sent_on_its_own_is_still_bound_at_64_kib(fed: Federation) -> None:
    token = fed.envelope(body={**lookup_body(), "padding": "x" * MAX_ENVELOPE_BYTES})
    problem(fed.post(token), 413, "payload-too-large")


# -- 2. the reason a discarded answer gives, in each language ----------------------------------


def not_json(reply: HttpAnswer) -> HttpAnswer:
    return HttpAnswer(reply.status, reply.content_type, b"<html>not json</html>")


def not_compact_jws(reply: HttpAnswer) -> HttpAnswer:
    answer = {**json.loads(reply.body), "answer": "not.a.jws"}
    return HttpAnswer(reply.status, reply.content_type, json.dumps(answer).encode())


@pytest.mark.parametrize(
    ("change", "es", "en"),
    [
        (over_the_limit, f"pasa de {MAX_ANSWER_BYTES} bytes", f"over {MAX_ANSWER_BYTES} bytes"),
        (not_json, "no es JSON", "not JSON"),
        (not_compact_jws, "no es un sobre de federación", "not a federation envelope"),
    ],
)
def test_a_discarded_answer_says_why_in_the_agencys_language(
    fed: Federation,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[HttpAnswer], HttpAnswer],
    es: str,
    en: str,
) -> None:
    answered_with(monkeypatch, change)
    spanish = problem(fed.lookup(language="es"), 502, "unavailable")["detail"]
    english = problem(fed.lookup(language="en"), 502, "unavailable")["detail"]
    assert spanish.startswith(f"La respuesta del nodo par {HOLDER_ID} no es válida y se descartó: ")
    assert es in spanish and en not in spanish
    assert english.startswith(f"Peer hub {HOLDER_ID}'s answer is not valid and was discarded: ")
    assert en in english and es not in english
    for detail in (spanish, english):
        assert detail.endswith(".") and ".." not in detail, detail


def test_a_refused_answer_envelope_is_said_in_spanish(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer the holder sent before, again: :func:`open_envelope` refuses it as replayed,
    and the agency reads that refusal in its own language."""
    earlier: list[HttpAnswer] = []

    def stale(reply: HttpAnswer) -> HttpAnswer:
        earlier.append(reply)
        return earlier[0]

    answered_with(monkeypatch, stale)
    assert fed.lookup().status_code == 200
    spanish = problem(fed.lookup(language="es"), 502, "unavailable")["detail"]
    assert "ya se recibió: cada sobre vale una vez." in spanish, spanish
    assert "already received" not in spanish and ".." not in spanish


@pytest.mark.parametrize(
    ("changes", "es", "en"),
    [
        ({"records": ["not an object"]}, "records no es una lista de objetos", "records is not"),
        ({"in_reply_to": "env_" + "0" * 32}, "no responde a esta consulta", "not about this"),
    ],
)
def test_what_the_holder_signed_is_checked_too(
    fed: Federation,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, Any],
    es: str,
    en: str,
) -> None:
    """An answer signed as it should be, whose body is not a valid answer to this lookup."""
    real_sign = federation.sign_envelope

    def signed_changed(**arguments: Any) -> tuple[str, str]:
        if arguments["kind"] == "lookup_answer":
            arguments["body"] = {**arguments["body"], **changes}
        return real_sign(**arguments)

    monkeypatch.setattr(federation, "sign_envelope", signed_changed)
    spanish = problem(fed.lookup(language="es"), 502, "unavailable")["detail"]
    english = problem(fed.lookup(language="en"), 502, "unavailable")["detail"]
    assert spanish.endswith(f"se descartó: {es}.") and en not in spanish
    assert english.startswith(f"Peer hub {HOLDER_ID}'s answer") and en in english


# -- what anyone may post ----------------------------------------------------------------------


def test_json_nested_too_deep_is_not_an_envelope(fed: Federation) -> None:
    """Parsed before any signature is checked: a 400, not a server error."""
    header = base64.urlsafe_b64encode(b'{"alg":"EdDSA"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(b"[" * 20_000).rstrip(b"=")
    problem(fed.post(header + b"." + payload + b".c2ln"), 400, "validation")
