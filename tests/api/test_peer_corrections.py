"""Correcting pinned peers with ``puente peer …`` on the federal hub (``mx.fed.puente``), on
each database backend: a peer pinned under a mistyped id is removed and pinned again, a witness
key is given to a peer pinned without one, URLs with credentials are refused, a witness key
is the peer's own, and a peer this hub cannot send to says why."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit import generate_cosigner_key, generate_signer_key
from exchange import audit_log, create_app, db
from exchange.audit_log import AuditCheckpoint, AuditEntry
from exchange.cli import main
from exchange.federation_notices import queue_revocation
from exchange.peers import Peer, unreachable_reason
from exchange.witnessing import CheckpointCosignature, PeerCosigning

HUB_ID = "mx.fed.puente"
CHIAPAS = "mx.chp.puente"
TYPO = "mx.chp.puenet"
ORIGIN = f"{CHIAPAS}/audit"
LOG_VKEY = generate_signer_key(ORIGIN)[1]
WITNESS_VKEY = generate_cosigner_key(f"{CHIAPAS}/witness")[1]
OAXACA = "mx.oax.puente"
OAXACA_ORIGIN = f"{OAXACA}/audit"
OAXACA_VKEY = generate_signer_key(OAXACA_ORIGIN)[1]
URL = "http://127.0.0.1:8621"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def said(result: Result) -> str:
    """The output as one line: click wraps long messages."""
    return " ".join(result.output.split())


@pytest.fixture
def federal(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setenv("PUENTE_HUB_ID", HUB_ID)
    monkeypatch.chdir(tmp_path)
    result = run("init")
    assert result.exit_code == 0, result.output
    return tmp_path


@contextmanager
def hub() -> Iterator[Flask]:
    app = create_app({"TESTING": True})
    try:
        with app.app_context():
            yield app
    finally:
        app.extensions["puente.db"].engine.dispose()


def peer_changes() -> list[tuple[str, str]]:
    with hub() as app, db.database(app).sessions() as session:
        rows = session.scalars(select(AuditEntry.entry).order_by(AuditEntry.recorded_at))
        entries = [json.loads(row) for row in rows]
    return [
        (entry["object"]["id"], entry["reason_code"])
        for entry in entries
        if entry["action"] == "peer_changed"
    ]


def pinned() -> dict[str, dict[str, Any]]:
    result = run("peer", "list", "--json")
    assert result.exit_code == 0, result.output
    return {peer["hub_id"]: peer for peer in json.loads(result.stdout)["peers"]}


def add_chiapas(hub_id: str = CHIAPAS, *extra: str) -> Result:
    return run("peer", "add", hub_id, "--origin", ORIGIN, "--log-vkey", LOG_VKEY, *extra)


# -- 1. a peer pinned under a mistyped id --------------------------------------------------------


def test_an_origin_naming_another_hub_is_refused_unless_said(federal: Path) -> None:
    for lang, words in (
        ("en", f"The origin '{ORIGIN}' names '{CHIAPAS}', not hub '{TYPO}': one of the two is "
               "mistyped"),
        ("es", f"El origen '{ORIGIN}' nombra a '{CHIAPAS}', no al nodo '{TYPO}': uno de los dos "
               "está mal escrito"),
    ):  # fmt: skip
        refused = add_chiapas(TYPO, "--url", URL, "--lang", lang)
        assert refused.exit_code == 2, refused.output
        assert words in said(refused) and "--origin-name-differs" in said(refused)
        assert "--origin" in refused.output
    assert pinned() == {} and peer_changes() == []
    # A hub that configured its own PUENTE_AUDIT_ORIGIN is pinned when that is said.
    other = "puente.oax.example/audit"
    accepted = run(
        "peer", "add", OAXACA, "--origin", other, "--log-vkey", generate_signer_key(other)[1],
        "--origin-name-differs",
    )  # fmt: skip
    assert accepted.exit_code == 0, accepted.output


def test_a_peer_pinned_under_a_mistyped_id_is_removed_and_pinned_again(federal: Path) -> None:
    # As it was pinned before the origin's name was checked.
    mistyped = add_chiapas(TYPO, "--url", URL, "--origin-name-differs")
    assert mistyped.exit_code == 0, mistyped.output
    held = add_chiapas(CHIAPAS, "--url", URL, "--lang", "en")
    assert held.exit_code == 1
    assert f"already pinned for hub '{TYPO}'" in said(held)
    assert f"puente peer disable {TYPO}, then puente peer remove {TYPO}" in said(held)

    active = run("peer", "remove", TYPO, "--lang", "en")
    assert active.exit_code == 1
    assert f"is active: disable it first (puente peer disable {TYPO})" in said(active)
    assert run("peer", "disable", TYPO).exit_code == 0
    removed = run("peer", "remove", TYPO, "--lang", "es")
    assert removed.exit_code == 0, removed.output
    assert f"Nodo par {TYPO} quitado del registro" in said(removed)
    assert pinned() == {}
    again = run("peer", "remove", TYPO, "--lang", "en")
    assert again.exit_code == 1 and f"No peer hub '{TYPO}'" in again.output

    repinned = add_chiapas(CHIAPAS, "--url", URL)
    assert repinned.exit_code == 0, repinned.output
    assert list(pinned()) == [CHIAPAS]
    assert peer_changes() == [
        (TYPO, "added"),
        (TYPO, "disabled"),
        (TYPO, "removed"),
        (CHIAPAS, "added"),
    ]


def notice(session: Session) -> None:
    queue_revocation(
        session, TYPO, "mx.chp.dif", "cns_" + "a" * 24, "chd_" + "a" * 24, datetime.now(UTC)
    )


def witness_state(session: Session) -> None:
    session.add(PeerCosigning(peer_hub_id=TYPO, cosigned_size=3, updated_at=datetime.now(UTC)))


def cosignature(session: Session) -> None:
    now = datetime.now(UTC)
    session.add(AuditCheckpoint(size=1, root=b"\0" * 32, note="x", signed_at=now))
    session.flush()
    session.add(
        CheckpointCosignature(
            checkpoint_size=1, peer_hub_id=TYPO, key_name=f"{TYPO}/witness", key_id=1,
            timestamp=0, signature=b"\0" * 64, received_at=now,
        )
    )  # fmt: skip
    witness_state(session)


def envelope(direction: str, outcome: str) -> Callable[[Session], None]:
    def record(session: Session) -> None:
        audit_log.record_event(
            session, action=f"federation_envelope_{direction}", outcome=outcome,
            object_type="envelope", object_id="e" * 20, target_hub=TYPO, detail="lookup",
        )  # fmt: skip

    return record


def log_conflict(session: Session) -> None:
    audit_log.record_event(
        session, action="peer_log_forked", outcome="failure", object_type="peer",
        object_id=TYPO, detail="size.3",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("write", "english", "spanish"),
    [
        (notice, "1 notices to it (puente outbox list --peer", "1 avisos para él"),
        (witness_state, "what its witness said it cosigned", "lo que su testigo dijo"),
        (cosignature, "1 cosignatures by its witness", "1 cofirmas de su testigo"),
        (envelope("received", "success"), "1 audit log entries", "1 entradas de la bitácora"),
        (envelope("received", "failure"), "1 audit log entries", "1 entradas de la bitácora"),
        (envelope("sent", "success"), "1 audit log entries", "1 entradas de la bitácora"),
        (log_conflict, "1 audit log entries", "1 entradas de la bitácora"),
    ],
    ids=[
        "notice",
        "witness-state",
        "cosignature",
        "received",
        "received-refused",
        "sent",
        "log-conflict",
    ],
)
def test_a_peer_something_names_is_not_removed(
    federal: Path, write: Callable[[Session], None], english: str, spanish: str
) -> None:
    assert add_chiapas(TYPO, "--origin-name-differs").exit_code == 0
    assert run("peer", "disable", TYPO).exit_code == 0
    with hub() as app, db.database(app).sessions.begin() as session:
        write(session)
    for lang, words, stays in (
        ("en", english, "It stays pinned and disabled"),
        ("es", spanish, "Queda registrado y desactivado"),
    ):
        refused = run("peer", "remove", TYPO, "--lang", lang)
        assert refused.exit_code == 1, refused.output
        assert words in said(refused) and stays in said(refused), refused.output
        assert "Traceback" not in refused.output
    assert list(pinned()) == [TYPO]
    assert peer_changes() == [(TYPO, "added"), (TYPO, "disabled")]


def test_a_lookup_the_peer_never_took_does_not_keep_it(federal: Path) -> None:
    """The audit entry of an envelope it never took (sent, ``failure``) stands on its own."""
    assert add_chiapas(TYPO, "--origin-name-differs", "--url", URL).exit_code == 0
    assert run("peer", "disable", TYPO).exit_code == 0
    with hub() as app, db.database(app).sessions.begin() as session:
        envelope("sent", "failure")(session)
    removed = run("peer", "remove", TYPO)
    assert removed.exit_code == 0, removed.output
    assert run_json_ok("peer", "list") == {"peers": []}


def run_json_ok(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- 2. a witness key given later, replaced or removed -------------------------------------------


def test_a_witness_key_is_set_replaced_and_removed(federal: Path) -> None:
    assert add_chiapas(CHIAPAS, "--url", URL).exit_code == 0  # as docs/federation.md §1 does
    hint = add_chiapas(CHIAPAS, "--witness-vkey", WITNESS_VKEY, "--lang", "en")
    assert hint.exit_code == 1
    assert f"puente peer set-witness-key {CHIAPAS} VKEY" in said(hint)
    listed = run("peer", "list", "--lang", "en")
    assert "witness: —" in listed.output

    set_ = run_json_ok("peer", "set-witness-key", CHIAPAS, WITNESS_VKEY)
    assert set_["witness_vkey"] == WITNESS_VKEY
    assert "witness: yes" in run("peer", "list", "--lang", "en").output
    assert "testigo: sí" in run("peer", "list", "--lang", "es").output
    same = run("peer", "set-witness-key", CHIAPAS, WITNESS_VKEY, "--lang", "en")
    assert same.exit_code == 1 and "already has that witness key" in same.output
    rotated = generate_cosigner_key(f"{CHIAPAS}/witness")[1]
    replaced = run("peer", "set-witness-key", CHIAPAS, rotated, "--lang", "es")
    assert replaced.exit_code == 0, replaced.output
    assert "Llave de testigo del nodo par mx.chp.puente registrada" in said(replaced)
    assert pinned()[CHIAPAS]["witness_vkey"] == rotated

    both = run("peer", "set-witness-key", CHIAPAS, rotated, "--remove", "--lang", "en")
    assert both.exit_code == 2 and "cannot go together" in said(both)
    neither = run("peer", "set-witness-key", CHIAPAS, "--lang", "es")
    assert neither.exit_code == 2 and "o --remove para quitarla" in said(neither)
    bad = run("peer", "set-witness-key", CHIAPAS, LOG_VKEY, "--lang", "en")
    assert bad.exit_code == 2 and "WITNESS_VKEY" in bad.output
    assert "not a cosignature key" in said(bad)
    unknown = run("peer", "set-witness-key", "mx.zac.puente", rotated, "--lang", "en")
    assert unknown.exit_code == 1 and "No peer hub 'mx.zac.puente'" in unknown.output

    removed = run("peer", "set-witness-key", CHIAPAS, "--remove", "--lang", "en")
    assert removed.exit_code == 0 and "no longer asked to cosign" in said(removed)
    assert pinned()[CHIAPAS]["witness_vkey"] is None
    twice = run("peer", "set-witness-key", CHIAPAS, "--remove", "--lang", "es")
    assert twice.exit_code == 1 and "no tiene llave de testigo" in twice.output
    assert peer_changes() == [
        (CHIAPAS, "added"),
        (CHIAPAS, "witness_key_pinned"),
        (CHIAPAS, "witness_key_pinned"),
        (CHIAPAS, "witness_key_removed"),
    ]


def test_this_hubs_own_witness_key_is_not_set_for_a_peer(federal: Path) -> None:
    assert add_chiapas().exit_code == 0
    with hub() as app:
        own = app.extensions["puente.keys"].witness.vkey
    result = run("peer", "set-witness-key", CHIAPAS, own, "--lang", "en")
    assert result.exit_code == 2 and "a hub does not witness itself" in said(result)


# -- 4. a witness key is the peer's own ----------------------------------------------------------


def test_a_witness_key_of_another_hub_is_refused(federal: Path) -> None:
    oaxaca_witness = generate_cosigner_key(f"{OAXACA}/witness")[1]
    assert run(
        "peer", "add", OAXACA, "--origin", OAXACA_ORIGIN, "--log-vkey", OAXACA_VKEY,
        "--witness-vkey", oaxaca_witness,
    ).exit_code == 0  # fmt: skip
    for lang, words in (
        ("en", f"That witness key is already pinned for peer hub '{OAXACA}'"),
        ("es", f"Esa llave de testigo ya está registrada para el nodo par '{OAXACA}'"),
    ):
        taken = add_chiapas(CHIAPAS, "--witness-vkey", oaxaca_witness, "--lang", lang)
        assert taken.exit_code == 1 and words in said(taken), taken.output
    stranger = generate_cosigner_key(f"{OAXACA}/witness")[1]  # of that name, not pinned
    for lang, words in (
        ("en", f"The witness key is named '{OAXACA}/witness', but the witness of '{CHIAPAS}' "
               f"is named '{CHIAPAS}/witness'"),
        ("es", f"La llave de testigo se llama '{OAXACA}/witness', pero el testigo de "
               f"'{CHIAPAS}' se llama '{CHIAPAS}/witness'"),
    ):  # fmt: skip
        misnamed = add_chiapas(CHIAPAS, "--witness-vkey", stranger, "--lang", lang)
        assert misnamed.exit_code == 2 and words in said(misnamed), misnamed.output
        assert "--witness-vkey" in misnamed.output
    assert list(pinned()) == [OAXACA]
    # Set later, the same checks.
    assert add_chiapas().exit_code == 0
    later = run("peer", "set-witness-key", CHIAPAS, oaxaca_witness, "--lang", "en")
    assert later.exit_code == 1 and f"already pinned for peer hub '{OAXACA}'" in said(later)
    named = run("peer", "set-witness-key", CHIAPAS, stranger, "--lang", "en")
    assert named.exit_code == 2 and f"named '{OAXACA}/witness'" in said(named)
    assert pinned()[CHIAPAS]["witness_vkey"] is None


# -- 3. URLs with credentials --------------------------------------------------------------------


def test_a_url_with_credentials_is_refused_and_never_shown(federal: Path) -> None:
    secret_url = "http://user:pw@127.0.0.1:8621"
    for lang, words in (
        ("en", "it carries a user name or password"),
        ("es", "lleva usuario o contraseña"),
    ):
        at_add = add_chiapas(CHIAPAS, "--url", secret_url, "--lang", lang)
        assert at_add.exit_code == 2 and words in said(at_add), at_add.output
        assert "pw@" not in at_add.output and "--url" in at_add.output
    assert add_chiapas().exit_code == 0
    later = run("peer", "set-url", CHIAPAS, secret_url, "--lang", "en")
    assert later.exit_code == 2 and "user name or password" in said(later)
    assert "pw@" not in later.output
    assert pinned()[CHIAPAS]["base_url"] is None
    # One pinned before they were refused: listed without it, and warned of.
    with hub() as app, db.database(app).sessions.begin() as session:
        session.execute(update(Peer).values(base_url=secret_url))
    listed = run("peer", "list", "--lang", "en")
    assert listed.exit_code == 0
    assert "pw" not in listed.stdout and "…@127.0.0.1:8621" in listed.stdout
    warning = " ".join(listed.stderr.split())
    assert f"Warning: the URL of {CHIAPAS} is not usable" in warning
    assert f"puente peer set-url {CHIAPAS} URL" in warning


def test_set_url_says_a_url_and_remove_do_not_go_together(federal: Path) -> None:
    assert add_chiapas().exit_code == 0
    for lang, words in (
        ("en", "A URL and --remove cannot go together"),
        ("es", "Una URL y --remove no van juntas"),
    ):
        both = run("peer", "set-url", CHIAPAS, URL, "--remove", "--lang", lang)
        assert both.exit_code == 2 and words in said(both), both.output
    neither = run("peer", "set-url", CHIAPAS, "--lang", "en")
    assert neither.exit_code == 2 and "Give a URL, or --remove to remove it." in said(neither)


# -- 5. why a peer cannot be sent to -------------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "url", "english", "spanish"),
    [
        (
            False,
            URL,
            f"Peer hub '{CHIAPAS}' is disabled (puente peer enable {CHIAPAS}).",
            f"El nodo par '{CHIAPAS}' está desactivado (puente peer enable {CHIAPAS}).",
        ),
        (
            True,
            None,
            f"Peer hub '{CHIAPAS}' has no URL pinned (puente peer set-url {CHIAPAS} URL).",
            f"El nodo par '{CHIAPAS}' no tiene URL registrada (puente peer set-url {CHIAPAS} URL).",
        ),
        (
            False,
            None,
            f"Peer hub '{CHIAPAS}' is disabled and has no URL pinned (puente peer enable "
            f"{CHIAPAS}; puente peer set-url {CHIAPAS} URL).",
            f"El nodo par '{CHIAPAS}' está desactivado y no tiene URL registrada (puente peer "
            f"enable {CHIAPAS}; puente peer set-url {CHIAPAS} URL).",
        ),
    ],
    ids=["disabled", "no-url", "both"],
)
def test_why_a_peer_cannot_be_sent_to(
    active: bool, url: str | None, english: str, spanish: str
) -> None:
    peer = Peer(hub_id=CHIAPAS, active=active, base_url=url)
    assert unreachable_reason(peer) == (spanish, english)
    assert unreachable_reason(Peer(hub_id=CHIAPAS, active=True, base_url=URL)) is None


def test_a_hub_id_with_a_final_newline_is_refused() -> None:
    from exchange.peer_checks import InvalidPeer, check_fields

    with pytest.raises(InvalidPeer):
        check_fields("mx.chp.puente\n", "mx.chp.puente/audit", None)
