"""``puente peer …`` as a hub administrator runs it, on each database backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from joserfc.jwk import OKPKey
from sqlalchemy import select

from audit import generate_cosigner_key, generate_signer_key
from exchange import create_app, db
from exchange.audit_log import AuditEntry
from exchange.cli import main

ORIGIN = "mx.oax.puente/audit"
LOG_VKEY = generate_signer_key(ORIGIN)[1]
WITNESS_VKEY = generate_cosigner_key("mx.oax.puente/witness")[1]


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    result = run("init")
    assert result.exit_code == 0, result.output
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def add(hub_id: str = "mx.oax.puente", *extra: str) -> Result:
    return run("peer", "add", hub_id, "--origin", ORIGIN, "--log-vkey", LOG_VKEY, *extra)


def audited_peer_changes() -> list[dict[str, Any]]:
    app = create_app({"TESTING": True})
    try:
        with db.database(app).sessions() as session:
            rows = session.scalars(select(AuditEntry.entry).order_by(AuditEntry.recorded_at))
            entries = [json.loads(row) for row in rows]
    finally:
        app.extensions["puente.db"].engine.dispose()
    return [entry for entry in entries if entry["action"] == "peer_changed"]


def test_add_list_and_disable(hub: Path) -> None:
    added = run_json(
        "peer", "add", "mx.oax.puente", "--origin", ORIGIN, "--log-vkey", LOG_VKEY,
        "--witness-vkey", WITNESS_VKEY, "--url", "https://puente.oax.example",
    )  # fmt: skip
    assert added == {
        "hub_id": "mx.oax.puente",
        "origin": ORIGIN,
        "base_url": "https://puente.oax.example",
        "log_vkey": LOG_VKEY,
        "witness_vkey": WITNESS_VKEY,
        "signing_jwk": None,
        "agency_prefixes": ["mx.oax."],
        "active": True,
        "added_at": added["added_at"],
    }
    assert run_json("peer", "list") == {"peers": [added]}
    listed = run("peer", "list", "--lang", "es")
    assert "mx.oax.puente" in listed.output and "activo" in listed.output

    disabled = run("peer", "disable", "mx.oax.puente", "--lang", "en")
    assert disabled.exit_code == 0, disabled.output
    assert "no longer witnessed" in disabled.output
    assert run_json("peer", "list")["peers"][0]["active"] is False

    changes = audited_peer_changes()
    assert [(c["reason_code"], c["object"]) for c in changes] == [
        ("added", {"type": "peer", "id": "mx.oax.puente"}),
        ("disabled", {"type": "peer", "id": "mx.oax.puente"}),
    ]
    assert all(c["actor"]["role"] == "administrator" for c in changes)


def test_add_without_json_says_what_was_pinned(hub: Path) -> None:
    result = add("mx.oax.puente", "--lang", "es")
    assert result.exit_code == 0, result.output
    assert "Nodo par mx.oax.puente registrado" in result.output


@pytest.mark.parametrize(
    ("options", "option", "english", "spanish"),
    [
        (
            ["--log-vkey", "not a key"],
            "--log-vkey",
            "not an Ed25519 verifier key",
            "no es una llave verificadora Ed25519",
        ),
        (
            ["--log-vkey", generate_signer_key("mx.gro.puente/audit")[1]],
            "--log-vkey",
            "named 'mx.gro.puente/audit', but the origin is 'mx.oax.puente/audit'",
            "se llama 'mx.gro.puente/audit', pero el origen es 'mx.oax.puente/audit'",
        ),
        (
            # A witness key is no log key (type 0x04, not 0x01), even with the right name.
            ["--log-vkey", generate_cosigner_key(ORIGIN)[1]],
            "--log-vkey",
            "not an Ed25519 verifier key",
            "no es una llave verificadora Ed25519",
        ),
        (
            ["--log-vkey", LOG_VKEY, "--witness-vkey", LOG_VKEY],
            "--witness-vkey",
            "not a cosignature key",
            "no es una llave de cofirma",
        ),
        (
            ["--log-vkey", LOG_VKEY, "--url", "ftp://puente.oax.example"],
            "--url",
            "not a valid http(s) URL",
            "no es una URL http(s) válida",
        ),
        (
            # Envelopes are posted to the URL followed by their path.
            ["--log-vkey", LOG_VKEY, "--url", "https://puente.oax.example/?q=x"],
            "--url",
            "has a query ('?') or fragment ('#')",
            "lleva consulta ('?') o fragmento ('#')",
        ),
        (
            ["--log-vkey", LOG_VKEY, "--url", "https://puente.oax.example/#top"],
            "--url",
            "has a query ('?') or fragment ('#')",
            "lleva consulta ('?') o fragmento ('#')",
        ),
        (
            ["--log-vkey", LOG_VKEY, "--agency-prefix", "mx.oax"],
            "--agency-prefix",
            "agency prefix 'mx.oax' is not valid",
            "prefijo de agencia 'mx.oax' no es válido",
        ),
        (
            ["--log-vkey", LOG_VKEY, "--agency-prefix", "mx."],
            "--agency-prefix",
            "two or more parts",
            "dos o más partes",
        ),
        (
            ["--log-vkey", LOG_VKEY, "--agency-prefix", "MX.OAX."],
            "--agency-prefix",
            "lowercase",
            "minúsculas",
        ),
    ],
)
def test_malformed_arguments_are_usage_errors(
    hub: Path, options: list[str], option: str, english: str, spanish: str
) -> None:
    for lang, message in (("en", english), ("es", spanish)):
        result = run("peer", "add", "mx.oax.puente", "--origin", ORIGIN, *options, "--lang", lang)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert option in result.output and message in result.output, result.output
    assert run_json("peer", "list") == {"peers": []}
    assert audited_peer_changes() == []


def test_a_bad_hub_id_or_origin_is_a_usage_error(hub: Path) -> None:
    bad_id = add("MX OAX")
    assert bad_id.exit_code == 2 and "HUB_ID" in bad_id.output
    bad_origin = run("peer", "add", "mx.oax.puente", "--origin", "mx oax", "--log-vkey", LOG_VKEY)
    assert bad_origin.exit_code == 2 and "--origin" in bad_origin.output


def test_duplicates_and_unknown_peers_are_refused(hub: Path) -> None:
    assert add().exit_code == 0
    again = add("mx.oax.puente", "--lang", "en")
    assert again.exit_code == 1 and "already pinned" in again.output
    same_log = add("mx.oax.otro", "--lang", "en")
    assert same_log.exit_code == 1
    assert "already pinned for hub 'mx.oax.puente'" in same_log.output
    unknown = run("peer", "disable", "mx.zac.puente", "--lang", "es")
    assert unknown.exit_code == 1 and "No hay un nodo par 'mx.zac.puente'" in unknown.output
    assert run("peer", "disable", "mx.oax.puente").exit_code == 0
    twice = run("peer", "disable", "mx.oax.puente", "--lang", "en")
    assert twice.exit_code == 1 and "already disabled" in twice.output
    assert len(audited_peer_changes()) == 2  # refusals write nothing


def test_enable_is_the_reverse_of_disable_and_is_audited(hub: Path) -> None:
    assert add().exit_code == 0
    assert run("peer", "disable", "mx.oax.puente").exit_code == 0
    enabled = run("peer", "enable", "mx.oax.puente", "--lang", "es")
    assert enabled.exit_code == 0, enabled.output
    assert "se atestigua de nuevo" in enabled.output
    assert run_json("peer", "list")["peers"][0]["active"] is True
    assert [c["reason_code"] for c in audited_peer_changes()] == ["added", "disabled", "enabled"]

    twice = run("peer", "enable", "mx.oax.puente", "--lang", "en")
    assert twice.exit_code == 1 and "already active" in twice.output
    unknown = run("peer", "enable", "mx.zac.puente", "--lang", "en")
    assert unknown.exit_code == 1 and "No peer hub 'mx.zac.puente'" in unknown.output
    assert len(audited_peer_changes()) == 3  # refusals write nothing


def test_a_hub_does_not_pin_itself_or_its_own_witness(hub: Path) -> None:
    # A hub that pinned itself would cosign its own checkpoints: a witness that adds nothing.
    init = run_json("init")
    own = create_app({"TESTING": True})
    hub_id, origin = own.config["HUB_ID"], f"{own.config['HUB_ID']}/audit"
    keys = own.extensions["puente.keys"]
    attempts = {
        "hub_id": ["peer", "add", hub_id, "--origin", ORIGIN, "--log-vkey", LOG_VKEY],
        "origin": [
            "peer", "add", "mx.oax.puente", "--origin", origin, "--log-vkey", init["log_vkey"],
        ],
        "witness_vkey": [
            "peer", "add", "mx.oax.puente", "--origin", ORIGIN, "--log-vkey", LOG_VKEY,
            "--witness-vkey", keys.witness.vkey,
        ],
    }  # fmt: skip
    for field, arguments in attempts.items():
        for lang, words in (("en", "a hub does not witness itself"), ("es", "no se atestigua")):
            result = run(*arguments, "--lang", lang)
            assert result.exit_code == 2, (field, result.output)
            assert words in result.output and field in result.output, result.output
    assert run_json("peer", "list")["peers"] == []
    assert audited_peer_changes() == []


def public_jwk(key: OKPKey) -> dict[str, str]:
    jwk = key.as_dict(private=False)
    return {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": key.thumbprint()}


def test_the_envelope_signing_key_is_pinned_at_add_or_later(hub: Path) -> None:
    first, second = OKPKey.generate_key("Ed25519"), OKPKey.generate_key("Ed25519")
    key_file = hub / "oax-signing.jwk"
    key_file.write_text(json.dumps(public_jwk(first)))
    added = run_json("peer", "add", "mx.oax.puente", "--origin", ORIGIN, "--log-vkey", LOG_VKEY,
                     "--signing-jwk", str(key_file))  # fmt: skip
    assert added["signing_jwk"] == public_jwk(first)
    # Rotated by the peer: pinned again, as JSON text this time, and audited.
    rotated = run("peer", "pin-signing-key", "mx.oax.puente", json.dumps(public_jwk(second)))
    assert rotated.exit_code == 0, rotated.output
    assert "pinned" in rotated.output or "registrada" in rotated.output
    assert run_json("peer", "list")["peers"][0]["signing_jwk"] == public_jwk(second)
    again = run("peer", "pin-signing-key", "mx.oax.puente", json.dumps(public_jwk(second)))
    assert again.exit_code == 1
    codes = [entry.get("reason_code") for entry in audited_peer_changes()]
    assert codes == ["added", "signing_key_pinned"]


@pytest.mark.parametrize(
    "given",
    [
        "{not json",
        json.dumps({"kty": "EC", "crv": "P-256", "x": "AAAA"}),
        json.dumps({**public_jwk(OKPKey.generate_key("Ed25519")), "kid": "not-its-thumbprint"}),
        json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True)),
        "/no/such/file.jwk",
    ],
)
def test_a_signing_key_that_is_not_a_public_ed25519_jwk_is_a_usage_error(
    hub: Path, given: str
) -> None:
    result = add("mx.oax.puente", "--signing-jwk", given, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert "--signing-jwk" in result.output
    assert run_json("peer", "list") == {"peers": []}


def test_a_hub_does_not_pin_its_own_signing_key(hub: Path) -> None:
    from exchange.transports import hub_signing_public_jwk

    app = create_app({"TESTING": True})
    try:
        own = hub_signing_public_jwk(app)
    finally:
        app.extensions["puente.db"].engine.dispose()
    result = add("mx.oax.puente", "--signing-jwk", json.dumps(own), "--lang", "en")
    assert result.exit_code == 2, result.output
    assert "this hub's own" in result.output


def test_the_url_is_set_changed_and_removed_later(hub: Path) -> None:
    assert add().exit_code == 0
    set_ = run_json("peer", "set-url", "mx.oax.puente", "https://puente.oaxaca.example")
    assert set_["base_url"] == "https://puente.oaxaca.example"
    said = run("peer", "set-url", "mx.oax.puente", "https://otro.oaxaca.example", "--lang", "es")
    assert said.exit_code == 0 and "https://otro.oaxaca.example" in said.output
    again = run("peer", "set-url", "mx.oax.puente", "https://otro.oaxaca.example", "--lang", "en")
    assert again.exit_code == 1 and "already has that URL" in again.output
    bad = run("peer", "set-url", "mx.oax.puente", "ftp://x.example", "--lang", "en")
    assert bad.exit_code == 2 and "http(s)" in bad.output
    # The URL is an argument here, not the --url of peer add.
    assert "URL" in bad.output and "--url" not in bad.output
    query = run("peer", "set-url", "mx.oax.puente", "http://x.example/?q=x", "--lang", "es")
    assert query.exit_code == 2 and "lleva consulta" in query.output
    neither = run("peer", "set-url", "mx.oax.puente", "--lang", "en")
    assert neither.exit_code == 2 and "--remove" in neither.output
    both = run("peer", "set-url", "mx.oax.puente", "https://x.example", "--remove")
    assert both.exit_code == 2
    assert run_json("peer", "set-url", "mx.oax.puente", "--remove")["base_url"] is None
    unknown = run("peer", "set-url", "mx.zac.puente", "https://x.example", "--lang", "en")
    assert unknown.exit_code == 1 and "No peer hub 'mx.zac.puente'" in unknown.output
    assert [c["reason_code"] for c in audited_peer_changes()] == [
        "added",
        "url_set",
        "url_set",
        "url_removed",
    ]


def test_the_agency_prefixes_a_peer_speaks_for(hub: Path) -> None:
    """By default a peer speaks for its jurisdiction's agencies; given, the prefixes replace
    that; no two peers speak for the same agencies."""
    assert run_json("peer", "add", "mx.oax.puente", "--origin", ORIGIN, "--log-vkey", LOG_VKEY)[
        "agency_prefixes"
    ] == ["mx.oax."]
    fed_origin = "mx.fed.puente/audit"
    fed_vkey = generate_signer_key(fed_origin)[1]
    federal = run_json(
        "peer", "add", "mx.fed.puente", "--origin", fed_origin, "--log-vkey", fed_vkey,
        "--agency-prefix", "mx.fed.", "--agency-prefix", "mx.ext.",
    )  # fmt: skip
    assert federal["agency_prefixes"] == ["mx.ext.", "mx.fed."]
    listed = run("peer", "list", "--lang", "en")
    assert "mx.ext.* mx.fed.*" in listed.output and "mx.oax.*" in listed.output
    # Another hub whose default, or given, prefixes overlap a pinned peer's is refused.
    gro_origin = "mx.oax.respaldo/audit"
    gro_vkey = generate_signer_key(gro_origin)[1]
    for lang, words in (
        ("en", "'mx.oax.' overlaps 'mx.oax.', of peer hub 'mx.oax.puente'"),
        ("es", "'mx.oax.' se cruza con 'mx.oax.', del nodo par 'mx.oax.puente'"),
    ):
        overlapping = run(
            "peer", "add", "mx.oax.respaldo", "--origin", gro_origin, "--log-vkey", gro_vkey,
            "--lang", lang,
        )  # fmt: skip
        assert overlapping.exit_code == 2, overlapping.output
        assert words in overlapping.output and "--agency-prefix" in overlapping.output
    nested = run(
        "peer", "add", "mx.oax.respaldo", "--origin", gro_origin, "--log-vkey", gro_vkey,
        "--agency-prefix", "mx.ext.consulado-ht.", "--lang", "en",
    )  # fmt: skip
    assert nested.exit_code == 2 and "of peer hub 'mx.fed.puente'" in nested.output
    # Changed later, audited.
    changed = run_json("peer", "set-agency-prefixes", "mx.oax.puente", "mx.oax.", "mx.oaxdif.")
    assert changed["agency_prefixes"] == ["mx.oax.", "mx.oaxdif."]
    said = run("peer", "set-agency-prefixes", "mx.oax.puente", "mx.oax.", "--lang", "es")
    assert said.exit_code == 0 and "habla por las agencias mx.oax." in said.output
    again = run("peer", "set-agency-prefixes", "mx.oax.puente", "mx.oax.", "--lang", "en")
    assert again.exit_code == 1 and "already speaks for those agency prefixes" in again.output
    taken = run("peer", "set-agency-prefixes", "mx.oax.puente", "mx.fed.inm.", "--lang", "en")
    assert taken.exit_code == 2 and "PREFIXES" in taken.output and "mx.fed.puente" in taken.output
    bad = run("peer", "set-agency-prefixes", "mx.oax.puente", "mx", "--lang", "en")
    assert bad.exit_code == 2 and "is not valid" in bad.output
    unknown = run("peer", "set-agency-prefixes", "mx.zac.puente", "mx.zac.", "--lang", "en")
    assert unknown.exit_code == 1 and "No peer hub 'mx.zac.puente'" in unknown.output
    assert [(c["reason_code"], c["object"]["id"]) for c in audited_peer_changes()] == [
        ("added", "mx.oax.puente"),
        ("added", "mx.fed.puente"),
        ("agency_prefixes_set", "mx.oax.puente"),
        ("agency_prefixes_set", "mx.oax.puente"),
    ]


def test_a_signing_key_is_pinned_for_one_peer_only(hub: Path) -> None:
    """The same key pinned for two peers would let one of them sign envelopes as the other."""
    key = json.dumps(public_jwk(OKPKey.generate_key("Ed25519")))
    assert add("mx.oax.puente", "--signing-jwk", key).exit_code == 0
    other_origin = "mx.gro.puente/audit"
    other_vkey = generate_signer_key(other_origin)[1]
    for lang, words in (
        ("en", "already pinned for peer hub 'mx.oax.puente'"),
        ("es", "ya está registrada para el nodo par 'mx.oax.puente'"),
    ):
        at_add = run(
            "peer", "add", "mx.gro.puente", "--origin", other_origin, "--log-vkey", other_vkey,
            "--signing-jwk", key, "--lang", lang,
        )  # fmt: skip
        assert at_add.exit_code == 1 and words in at_add.output, at_add.output
    added = run("peer", "add", "mx.gro.puente", "--origin", other_origin, "--log-vkey", other_vkey)
    assert added.exit_code == 0, added.output
    later = run("peer", "pin-signing-key", "mx.gro.puente", key, "--lang", "en")
    assert later.exit_code == 1 and "already pinned for peer hub 'mx.oax.puente'" in later.output
    assert run_json("peer", "list")["peers"][0]["signing_jwk"] is None  # mx.gro.puente
    assert [c["reason_code"] for c in audited_peer_changes()] == ["added", "added"]


@pytest.mark.parametrize(
    ("given", "english", "spanish"),
    [
        ("[]", "it is JSON, but not a JWK object", "es JSON, pero no un objeto JWK"),
        ("42", "it is JSON, but not a JWK object", "es JSON, pero no un objeto JWK"),
        (
            json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "A"}),
            "x must be the 32-byte public key in base64url",
            "x debe ser la llave pública de 32 bytes en base64url",
        ),
        (
            json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "AAAAA"}),
            "x must be the 32-byte public key in base64url",
            "x debe ser la llave pública de 32 bytes en base64url",
        ),
    ],
)
def test_pin_signing_key_says_what_is_wrong_with_the_key(
    hub: Path, given: str, english: str, spanish: str
) -> None:
    assert add().exit_code == 0
    for lang, words in (("en", english), ("es", spanish)):
        result = run("peer", "pin-signing-key", "mx.oax.puente", given, "--lang", lang)
        assert result.exit_code == 2, result.output
        assert words in result.output and "SIGNING_JWK" in result.output, result.output
        assert "readable file" not in result.output
