"""``puente peer …`` and ``puente outbox retry`` on the Chiapas hub (``mx.chp.puente``, with
its agencies ``mx.chp.dif`` and ``mx.chp.procuraduria``), on each database backend: a peer is
never pinned to speak for this hub's own agencies, and notices that died while a peer was
disabled are told of, and sent again, by peer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import select

from audit import generate_signer_key
from exchange import create_app, db
from exchange.cli import main
from exchange.federation_notices import DISABLED_PEER, queue_revocation
from exchange.outbox import OutboxMessage, enqueue
from exchange.outbox_delivery import DeliveryPolicy, deliver_batch
from exchange.peers import Peer
from exchange.transports import AgencyTransports

HUB_ID = "mx.chp.puente"
FAKE = "mx.chp.fake"
FAKE_ORIGIN = f"{FAKE}/audit"
FAKE_VKEY = generate_signer_key(FAKE_ORIGIN)[1]
FEDERAL = "mx.fed.puente"
FEDERAL_ORIGIN = f"{FEDERAL}/audit"
FEDERAL_VKEY = generate_signer_key(FEDERAL_ORIGIN)[1]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def add_agency(agency_id: str, *extra: str) -> None:
    result = run(
        "agency", "add", agency_id, "--name", f"Agencia {agency_id}", "--level", "state",
        "--jurisdiction", "07", "--scope", "records:read", "--secret", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.fixture
def chiapas(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setenv("PUENTE_HUB_ID", HUB_ID)
    monkeypatch.chdir(tmp_path)
    result = run("init")
    assert result.exit_code == 0, result.output
    add_agency("mx.chp.dif", "--kind", "state_dif")
    add_agency("mx.chp.procuraduria", "--kind", "state_dif")
    return tmp_path


@contextmanager
def hub() -> Iterator[Flask]:
    app = create_app({"TESTING": True})
    try:
        with app.app_context():
            yield app
    finally:
        app.extensions["puente.db"].engine.dispose()


def pinned_prefixes() -> dict[str, list[str]]:
    with hub() as app, db.database(app).sessions() as session:
        return {peer.hub_id: list(peer.agency_prefixes) for peer in session.scalars(select(Peer))}


# -- 1. a peer's prefixes never cover this hub's agencies ----------------------------------------


def test_a_peer_whose_default_prefix_is_this_hubs_own_is_refused(chiapas: Path) -> None:
    for lang, words in (
        ("en", "'mx.chp.' overlaps 'mx.chp.', the namespace of this hub's own agencies"),
        ("es", "'mx.chp.' se cruza con 'mx.chp.', el espacio de las agencias de este mismo"),
    ):
        result = run(
            "peer", "add", FAKE, "--origin", FAKE_ORIGIN, "--log-vkey", FAKE_VKEY, "--lang", lang
        )
        assert result.exit_code == 2, result.output
        assert words in " ".join(result.output.split()), result.output
        # The default nobody typed: the operator is told to give the prefixes.
        assert "--agency-prefix" in result.output
    assert pinned_prefixes() == {}


@pytest.mark.parametrize("prefix", ["mx.chp.", "mx.chp.dif.", "mx.chp.procuraduria.x."])
def test_a_given_prefix_covering_this_hubs_agencies_is_refused(chiapas: Path, prefix: str) -> None:
    given = run(
        "peer", "add", FAKE, "--origin", FAKE_ORIGIN, "--log-vkey", FAKE_VKEY,
        "--agency-prefix", prefix, "--lang", "en",
    )  # fmt: skip
    assert given.exit_code == 2 and "--agency-prefix" in given.output, given.output
    assert "a peer never speaks for this hub's agencies" in " ".join(given.output.split())
    # Pinned with prefixes of its own, it cannot be given this hub's later.
    added = run(
        "peer", "add", FAKE, "--origin", FAKE_ORIGIN, "--log-vkey", FAKE_VKEY,
        "--agency-prefix", "mx.fake.",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    later = run("peer", "set-agency-prefixes", FAKE, "mx.fake.", prefix, "--lang", "es")
    assert later.exit_code == 2 and "PREFIXES" in later.output, later.output
    assert "nunca habla por las agencias de este nodo" in " ".join(later.output.split())
    assert pinned_prefixes() == {FAKE: ["mx.fake."]}


def test_a_prefix_covering_an_agency_registered_here_is_refused(chiapas: Path) -> None:
    """A consulate registered on the Chiapas hub is the Chiapas hub's, whatever its prefix."""
    add_agency("mx.ext.consulado-gt", "--kind", "foreign_authority", "--country", "GT")
    result = run(
        "peer", "add", FEDERAL, "--origin", FEDERAL_ORIGIN, "--log-vkey", FEDERAL_VKEY,
        "--agency-prefix", "mx.fed.", "--agency-prefix", "mx.ext.", "--lang", "en",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "covers 'mx.ext.consulado-gt', an agency registered on this hub" in " ".join(
        result.output.split()
    )
    assert pinned_prefixes() == {}
    federal = run("peer", "add", FEDERAL, "--origin", FEDERAL_ORIGIN, "--log-vkey", FEDERAL_VKEY)
    assert federal.exit_code == 0, federal.output
    assert pinned_prefixes() == {FEDERAL: ["mx.fed."]}


def test_peer_list_warns_of_a_prefix_pinned_before_the_check(chiapas: Path) -> None:
    assert run("peer", "add", FAKE, "--origin", FAKE_ORIGIN, "--log-vkey", FAKE_VKEY,
               "--agency-prefix", "mx.fake.").exit_code == 0  # fmt: skip
    with hub() as app, db.database(app).sessions.begin() as session:
        legacy = session.get(Peer, FAKE)
        assert legacy is not None
        legacy.agency_prefixes = ["mx.chp.", "mx.fake."]  # as migration 0019 could have left it
    listed = run("peer", "list", "--json", "--lang", "en")
    assert listed.exit_code == 0
    assert json.loads(listed.stdout)["peers"][0]["agency_prefixes"] == ["mx.chp.", "mx.fake."]
    warning = " ".join(listed.stderr.split())
    assert f"Warning: {FAKE} has agency prefixes covering this hub's agencies (mx.chp.)" in warning
    assert f"puente peer set-agency-prefixes {FAKE}" in warning
    fixed = run("peer", "set-agency-prefixes", FAKE, "mx.fake.")
    assert fixed.exit_code == 0, fixed.output
    assert run("peer", "list").stderr == ""


# -- 5. notices that died while a peer was disabled ----------------------------------------------


def dead_notices(count: int) -> list[str]:
    """``count`` revocation notices to the federal hub, while it is disabled, and one worker
    pass: they die, saying why. Also a dead notification of this hub's agency, and a dead
    notice to another peer, which ``--peer`` leaves alone."""
    with hub() as app, db.database(app).sessions.begin() as session:
        for index in range(count):
            queue_revocation(
                session, FEDERAL, "mx.fed.comar", f"cns_{index:024x}", f"chd_{index:024x}",
                datetime.now(UTC),
            )  # fmt: skip
        other = queue_revocation(
            session, FAKE, "mx.fake.dif", "cns_" + "f" * 24, "chd_" + "f" * 24, datetime.now(UTC)
        )
        local = enqueue(session, "mx.chp.dif", "consent.revoked", {"event": "consent.revoked"})
        for message in (other, local):
            message.status, message.last_error = "dead", "refused by its receiver"
    with hub() as app, db.database(app).sessions() as session:
        deliver_batch(session, AgencyTransports.for_hub(app), DeliveryPolicy(), batch=50)
    with hub() as app, db.database(app).sessions() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.peer_hub == FEDERAL))
        found = [(row.id, row.status, row.last_error) for row in rows]
    assert {(status, error) for _id, status, error in found} == {
        ("dead", DISABLED_PEER.format(FEDERAL))
    }
    return [message_id for message_id, _status, _error in found]


def statuses() -> dict[str, Any]:
    with hub() as app, db.database(app).sessions() as session:
        return {
            (row.peer_hub or row.agency_id): row.status
            for row in session.scalars(select(OutboxMessage))
        }


def test_enable_says_how_many_notices_died_while_the_peer_was_disabled(chiapas: Path) -> None:
    federal = run("peer", "add", FEDERAL, "--origin", FEDERAL_ORIGIN, "--log-vkey", FEDERAL_VKEY,
                  "--url", "https://puente.fed.example")  # fmt: skip
    assert federal.exit_code == 0, federal.output
    assert run("peer", "add", FAKE, "--origin", FAKE_ORIGIN, "--log-vkey", FAKE_VKEY,
               "--agency-prefix", "mx.fake.").exit_code == 0  # fmt: skip
    assert run("peer", "disable", FEDERAL).exit_code == 0
    dead_notices(2)
    enabled = run("peer", "enable", FEDERAL, "--lang", "en")
    assert enabled.exit_code == 0, enabled.output
    said = " ".join(enabled.output.split())
    assert "its envelopes are accepted" in said
    assert (
        f"2 revocation notices for it died while it was disabled; to send them now: "
        f"puente outbox retry --all-dead --peer {FEDERAL}" in said
    )
    # Not requeued by enabling: the administrator decides.
    assert statuses()[FEDERAL] == "dead"
    assert run("peer", "disable", FEDERAL).exit_code == 0
    spanish = run("peer", "enable", FEDERAL, "--lang", "es")
    assert "2 avisos de revocación para él no se entregaron" in " ".join(spanish.output.split())

    requeued = run("outbox", "retry", "--all-dead", "--peer", FEDERAL)
    assert requeued.exit_code == 0, requeued.output
    assert "2 reencolados / requeued" in requeued.output
    assert statuses() == {FEDERAL: "pending", FAKE: "dead", "mx.chp.dif": "dead"}
    quiet = run("peer", "disable", FEDERAL), run("peer", "enable", FEDERAL, "--lang", "en")
    assert "died while it was disabled" not in quiet[1].output


def test_outbox_retry_by_peer_is_checked_like_by_agency(chiapas: Path) -> None:
    alone = run("outbox", "retry", "--peer", FEDERAL, "--lang", "en")
    assert alone.exit_code == 2 and "--peer goes with --all-dead" in alone.output
    both = run("outbox", "retry", "--all-dead", "--peer", FEDERAL, "--agency", "mx.chp.dif")
    assert both.exit_code == 2, both.output
    unknown = run("outbox", "retry", "--all-dead", "--peer", "mx.zz.puente", "--lang", "en")
    assert unknown.exit_code == 1 and "No peer hub 'mx.zz.puente' is pinned" in unknown.output
