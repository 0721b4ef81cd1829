"""``puente peer enable`` says one dead notice in the singular, in both languages (the Chiapas
hub of :mod:`tests.unit.exchange.test_fed_fix_peer_cli`, on each database backend)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.exchange.test_fed_fix_peer_cli import (
    FEDERAL,
    FEDERAL_ORIGIN,
    FEDERAL_VKEY,
    dead_notices,
    run,
)
from tests.unit.exchange.test_fed_fix_peer_cli import chiapas as chiapas_hub  # noqa: F401


def test_enable_says_one_dead_notice_in_the_singular(chiapas_hub: Path) -> None:  # noqa: F811
    federal = run("peer", "add", FEDERAL, "--origin", FEDERAL_ORIGIN, "--log-vkey", FEDERAL_VKEY,
                  "--url", "https://puente.fed.example")  # fmt: skip
    assert federal.exit_code == 0, federal.output
    assert run("peer", "disable", FEDERAL).exit_code == 0
    dead_notices(1)
    english = " ".join(run("peer", "enable", FEDERAL, "--lang", "en").output.split())
    retry = f"puente outbox retry --all-dead --peer {FEDERAL}"
    assert f"1 revocation notice for it died while it was disabled; to send it now: {retry}" in (
        english
    )
    assert "notices" not in english
    assert run("peer", "disable", FEDERAL).exit_code == 0
    spanish = " ".join(run("peer", "enable", FEDERAL, "--lang", "es").output.split())
    assert (
        f"1 aviso de revocación para él no se entregó mientras estaba desactivado; para "
        f"enviarlo ahora: {retry}" in spanish
    )
    assert "avisos" not in spanish
