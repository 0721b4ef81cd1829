"""What an outside-in check of federation found, fixed: a peer never speaks for this hub's own
agencies, a lookup takes the ``federation`` scope, a refused lookup is audited with whom it
named, and a ``crit`` header is refused as what it is.

Two hubs as in :mod:`tests.api.test_federation`: the Chiapas hub holds the child's record, the
federal hub's COMAR looks the child up.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from consent_support import (
    COMAR,
    OWNER,
    consent_document,
    consent_officer,
    entries,
)
from records_support import add_agency

from exchange import db
from exchange.peers import (
    InvalidPeer,
    Peer,
    disable_peer,
    peer_covering_agency,
    peer_speaking_for,
    set_agency_prefixes,
)
from exchange.transports import load_hub_signing_key
from tests.api.test_federation import (
    ASKER_ID,
    Federation,
    lookup_body,
    permit_comar,
    problem,
)
from tests.api.test_federation import fed as two_hubs  # noqa: F401 - a fixture

PEER_CLIENT = f"hub:{ASKER_ID}"


@pytest.fixture
def fed(two_hubs: Federation) -> Federation:  # noqa: F811 - the imported fixture, by another name
    return two_hubs


def refused_receipts(fed: Federation) -> list[dict[str, Any]]:
    return [
        entry
        for entry in entries(fed.holder, "federation_envelope_received")
        if entry["outcome"] == "failure"
    ]


# -- 1. a peer never speaks for this hub's own agencies -----------------------------------------


@pytest.mark.parametrize(
    ("prefixes", "words"),
    [
        (["mx.fed.", "mx.chp."], "'mx.chp.' overlaps 'mx.chp.', the namespace of this hub's own"),
        (["mx.chp.dif."], "'mx.chp.dif.' overlaps 'mx.chp.'"),
    ],
)
def test_a_peers_prefixes_never_cover_this_hubs_namespace(
    fed: Federation, prefixes: list[str], words: str
) -> None:
    with fed.holder.app_context(), db.database(fed.holder).sessions() as session:
        with pytest.raises(InvalidPeer) as refused:
            set_agency_prefixes(session, ASKER_ID, prefixes)
        session.rollback()
    assert words in refused.value.message("en")
    assert "el espacio de las agencias de este mismo nodo" in refused.value.message("es")
    assert refused.value.field == "agency_prefixes"


def test_a_peers_prefixes_never_cover_an_agency_registered_here(fed: Federation) -> None:
    """A foreign consulate registered on this hub is this hub's, whatever its prefix: a peer
    speaks neither for it nor for ids under its own (``mx.ext.consulado-ht.``)."""
    add_agency(
        fed.holder,
        "mx.ext.consulado-ht",
        kind="foreign_authority",
        country="HT",
        scopes=("records:read",),
    )
    for prefix in ("mx.ext.", "mx.ext.consulado-ht.", "mx.ext.consulado-ht.tapachula."):
        with fed.holder.app_context(), db.database(fed.holder).sessions() as session:
            with pytest.raises(InvalidPeer) as refused:
                set_agency_prefixes(session, ASKER_ID, ["mx.fed.", prefix])
            session.rollback()
        english = refused.value.message("en")
        assert "covers 'mx.ext.consulado-ht', an agency registered on this hub" in english
        assert "una agencia registrada en este nodo" in refused.value.message("es")
    with fed.holder.app_context(), db.database(fed.holder).sessions() as session:
        peer = session.get(Peer, ASKER_ID)
        assert peer is not None and peer.agency_prefixes == ["hn.consulado.", "mx.fed."]


def test_a_mistyped_agency_is_never_a_peers_even_under_a_prefix_pinned_before(
    fed: Federation,
) -> None:
    """A peer pinned before such prefixes were refused may still hold this hub's own: neither
    does a consent naming a mistyped agency (``mx.chp.dfi``) pass for its, nor can the peer ask
    as it."""
    with fed.holder.app_context(), db.database(fed.holder).sessions.begin() as session:
        legacy = session.get(Peer, ASKER_ID)
        assert legacy is not None
        legacy.agency_prefixes = ["hn.consulado.", "mx.chp.", "mx.fed."]
    officer = consent_officer(fed.holder, "oficial-typo")
    typo = consent_document("mx.chp.dfi", actions=["read"], purposes=["case_management"])
    refused = fed.holder_client.post(
        f"/v1/children/{fed.child_id}/consents",
        json=typo,
        headers={**officer.headers, "Accept-Language": "en"},
    )
    assert refused.status_code == 400, refused.get_json()
    assert "This hub has no agency 'mx.chp.dfi'" in refused.get_data(as_text=True)
    impostor = lookup_body(
        requester={
            "agency_id": "mx.chp.dfi",
            "kind": "state_dif",
            "level": "state",
            "jurisdiction": "07",
        },
        purpose="case_management",
    )
    body = problem(fed.post(fed.envelope(body=impostor), language="en"), 403, "forbidden")
    assert "mx.chp.dfi is not an agency hub mx.fed.puente speaks for" in body["detail"]
    assert [e for e in entries(fed.holder, "record_read") if e["actor"].get("client_id")] == []
    with fed.holder.app_context(), db.database(fed.holder).sessions() as session:
        assert peer_speaking_for(session, "mx.chp.dfi") is None
        speaker = peer_speaking_for(session, COMAR)
        assert speaker is not None and speaker.hub_id == ASKER_ID
    # puente peer list warns of it, in the CLI's tests; the lookup of COMAR still works.
    permit_comar(fed)
    assert len(fed.lookup().get_json()["records"]) == 1


def test_which_pinned_peer_covers_an_agency_id(fed: Federation) -> None:
    """What ``puente agency add`` needs to refuse an agency a pinned peer speaks for."""
    with fed.holder.app_context(), db.database(fed.holder).sessions.begin() as session:
        for agency_id in ("mx.fed.nueva", "mx.fed", "hn.consulado.tapachula"):
            covering = peer_covering_agency(session, agency_id)
            assert covering is not None and covering.hub_id == ASKER_ID, agency_id
        assert peer_covering_agency(session, "mx.chp.nueva") is None
        assert peer_covering_agency(session, "mx.federal.x") is None
        disable_peer(session, ASKER_ID)  # a disabled peer may be enabled again
        assert peer_covering_agency(session, "mx.fed.nueva") is not None


# -- 2. a lookup takes the federation scope ------------------------------------------------------


def test_reading_here_is_not_enough_to_send_a_childs_identifiers_to_another_hub(
    fed: Federation,
) -> None:
    reader = add_agency(fed.asker, "mx.fed.inm", jurisdiction="00", scopes=("records:read",))
    for language, words in (("en", "lacks the scope"), ("es", "no tiene el alcance")):
        body = problem(fed.lookup(reader, language=language), 403, "forbidden")
        assert words in body["detail"] and "federation" in body["detail"]
    assert fed.sent == []
    assert entries(fed.asker, "federation_envelope_sent") == []
    # The published contract says so too.
    spec = fed.asker_client.get("/openapi.json").get_json()
    operation = spec["paths"]["/v1/federation/lookups"]["post"]
    assert operation["security"] == [{"bearer": ["federation"]}]
    assert "`federation`" in operation["description"]


# -- 4. a refused lookup is audited with whom it named -------------------------------------------


def test_a_refused_lookup_names_the_agency_the_peer_claimed_and_its_purpose(
    fed: Federation,
) -> None:
    """The peer names one of this hub's agencies: refused, and on the log as the peer's claim."""
    impostor = lookup_body(
        requester={"agency_id": OWNER, "kind": "state_dif", "level": "state", "jurisdiction": "07"},
        purpose="case_management",
    )
    problem(fed.post(fed.envelope(body=impostor)), 403, "forbidden")
    [refused] = refused_receipts(fed)
    assert refused["actor"] == {"agency_id": OWNER, "role": "system", "client_id": PEER_CLIENT}
    assert refused["purpose"] == "case_management"
    assert refused["reason_code"] == "refused.forbidden"
    assert refused["target"] == {"hub": ASKER_ID}


def test_an_expired_or_replayed_lookup_names_its_requester_too(fed: Federation) -> None:
    now = int(time.time())
    problem(fed.post(fed.envelope(iat=now - 600, exp=now - 400)), 401, "unauthenticated")
    token = fed.envelope()
    assert fed.post(token).status_code == 200
    problem(fed.post(token), 409, "replayed")
    refused = refused_receipts(fed)
    assert [e["reason_code"] for e in refused] == ["refused.unauthenticated", "refused.replayed"]
    for entry in refused:
        assert entry["actor"] == {"agency_id": COMAR, "role": "system", "client_id": PEER_CLIENT}
        assert entry["purpose"] == "asylum_procedure"


def test_what_the_log_cannot_hold_of_a_claim_is_left_out(fed: Federation) -> None:
    malformed = lookup_body(requester={**lookup_body()["requester"], "agency_id": "MX.FED.X"})
    problem(fed.post(fed.envelope(body=malformed)), 400, "validation")
    problem(fed.post(fed.envelope(body=lookup_body(purpose="curiosity"))), 400, "validation")
    first, second = refused_receipts(fed)
    # No agency the log can name: the peer hub that sent it, with the purpose it gave.
    assert first["actor"] == {"agency_id": ASKER_ID, "role": "system", "client_id": PEER_CLIENT}
    assert first["purpose"] == "asylum_procedure"
    # An unknown purpose is left out; the agency is there.
    assert second["actor"]["agency_id"] == COMAR and "purpose" not in second


def test_a_type_this_hub_does_not_take_is_audited_as_refused(fed: Federation) -> None:
    """A verified envelope refused as a conflict is a refusal of a peer's envelope like any."""
    problem(fed.post(fed.envelope(kind="lookup_answer", body={})), 409, "conflict")
    problem(fed.post(fed.envelope(kind="transfer", body={})), 409, "conflict")
    assert [(e["reason_code"], e["target"]) for e in refused_receipts(fed)] == [
        ("refused.conflict", {"hub": ASKER_ID})
    ] * 2


# -- 7. a crit header is refused as what it is ----------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed_with_header(fed: Federation, **members: Any) -> str:
    """A lookup envelope of the asking hub, validly signed with its key, whose header has
    ``members`` added (joserfc will not make one with a crit header, so it is signed here)."""
    token = fed.envelope()
    header_part, payload_part, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    signing_input = f"{_b64(json.dumps({**header, **members}).encode())}.{payload_part}"
    with fed.asker.app_context():
        key = load_hub_signing_key(fed.asker)
    signature = key.private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64(signature)}"


def test_a_crit_header_is_refused_as_such_not_as_a_bad_signature(fed: Federation) -> None:
    token = signed_with_header(fed, crit=["exp"], exp=int(time.time()) + 60)
    english = problem(fed.post(token, language="en"), 401, "bad-signature")
    assert "critical extensions ('crit': exp)" in english["detail"]
    assert "without checking the signature" in english["detail"]
    assert "does not verify" not in english["detail"]
    token = signed_with_header(fed, crit=["exp"], exp=int(time.time()) + 60)
    spanish = problem(fed.post(token, language="es"), 401, "bad-signature")
    assert "extensiones críticas" in spanish["detail"]
    assert "no corresponde" not in spanish["detail"]
    # Refused before its signature was checked: anyone's, and not on the log.
    assert entries(fed.holder, "federation_envelope_received") == []


def test_a_header_member_outside_jws_is_refused_as_such(fed: Federation) -> None:
    body = problem(
        fed.post(signed_with_header(fed, zip="DEF"), language="en"), 401, "bad-signature"
    )
    assert "members this hub does not support ('zip')" in body["detail"]
    # The same signing, without the extra member, is taken: the signature was never at fault.
    assert fed.post(signed_with_header(fed)).status_code == 200
