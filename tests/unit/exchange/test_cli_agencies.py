"""``puente agency …`` as a hub administrator runs it, on each database backend."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from joserfc import jwt

from exchange import create_app
from exchange.agency_keys import load_private_key
from exchange.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

BASE = ["--name", "DIF Chiapas", "--level", "state", "--kind", "state_dif", "--jurisdiction", "07"]
SCOPES = ["--scope", "records:write", "--scope", "records:read"]


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    instance = tmp_path / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(instance))
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


def refused(result: Result, *fragments: str) -> None:
    """Exit code 1 with a message, never a traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.output, result.output


def token_with_private_key(private_key: Path, agency_id: str) -> Any:
    """What the agency's system does: sign an assertion, ask the hub for a token."""
    app = create_app({"TESTING": True})  # same hub as the commands, without background threads
    key = load_private_key(private_key)
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "EdDSA", "kid": key.thumbprint()},
        {
            "iss": agency_id,
            "sub": agency_id,
            "aud": app.config["PUBLIC_URL"] + "/oauth/token",
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        },
        key,
        algorithms=["EdDSA"],
    )
    try:
        return app.test_client().post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_add_with_generated_key_and_secret(hub: Path) -> None:
    answer = run_json(
        "agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--generate-key", "keys", "--secret"
    )
    assert answer["agency_id"] == answer["client_id"] == "mx.chp.dif"
    assert len(answer["client_secret"]) >= 43
    private_key = Path(answer["private_key"])
    assert private_key == hub / "keys" / "mx.chp.dif.key"
    assert stat.S_IMODE(os.stat(private_key).st_mode) == 0o600
    assert load_private_key(private_key).thumbprint() == answer["key_id"]

    response = token_with_private_key(private_key, "mx.chp.dif")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "records:write records:read"


def test_add_with_a_public_key_file(hub: Path) -> None:
    generated = run_json("keys", "generate", "--out", "agency-keys", "--name", "dif")
    answer = run_json(
        "agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--public-key", generated["public_key"]
    )
    assert answer == {
        "agency_id": "mx.chp.dif",
        "client_id": "mx.chp.dif",
        "key_id": generated["kid"],
    }
    # The .jwk file works as well.
    other = run_json(
        "agency",
        "add",
        "mx.chp.tapachula.dif",
        "--name",
        "DIF Tapachula",
        "--level",
        "municipal",
        "--kind",
        "municipal_dif",
        "--jurisdiction",
        "07089",
        "--scope",
        "records:read",
        "--public-key",
        run_json("keys", "generate", "--out", "agency-keys", "--name", "tap")["public_jwk"],
    )
    assert other["key_id"]
    listed = run_json("agency", "list")["agencies"]
    assert [a["id"] for a in listed] == ["mx.chp.dif", "mx.chp.tapachula.dif"]
    assert listed[0]["has_secret"] is False
    assert listed[1]["level"] == "municipal"
    assert (listed[0]["kind"], listed[1]["kind"]) == ("state_dif", "municipal_dif")
    assert listed[0]["country"] is None
    assert listed[1]["keys"][0]["key_id"] == other["key_id"]


def test_duplicate_agency_is_refused_and_leaves_no_key_files(hub: Path) -> None:
    run_json("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--secret")
    refused(
        run("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--generate-key", "again"),
        "already registered",
    )
    assert not list((hub / "again").glob("*"))
    refused(
        run("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--secret", "--lang", "es"),
        "ya está registrada",
    )


def test_bad_key_files_are_refused(hub: Path) -> None:
    garbage = hub / "garbage.pub"
    garbage.write_text("not a key\n")
    refused(
        run("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--public-key", str(garbage)),
        "not an Ed25519 public key",
    )
    generated = run_json("keys", "generate", "--out", "k", "--name", "dif")
    refused(
        run(
            "agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--public-key", generated["private_key"]
        ),
        "private key",
    )
    assert run_json("agency", "list") == {"agencies": []}


def test_invalid_fields_are_listed(hub: Path) -> None:
    result = run(
        "agency", "add", "MX.dif", "--name", "X", "--level", "municipal", "--kind", "municipal_dif",
        "--jurisdiction", "07", "--scope", "records:read", "--secret",
    )  # fmt: skip
    refused(result, "MX.dif", "municipality")
    # No credential at all is a usage error.
    usage = run("agency", "add", "mx.chp.dif", *BASE, *SCOPES)
    assert usage.exit_code == 2
    assert "--public-key" in usage.output
    assert (
        run("agency", "add", "mx.chp.dif", *BASE, "--scope", "everything", "--secret").exit_code
        == 2
    )


def test_unknown_agency(hub: Path) -> None:
    refused(run("agency", "disable", "mx.nadie.dif"), "no agency 'mx.nadie.dif'")
    refused(run("agency", "disable", "mx.nadie.dif", "--lang", "es"), "No existe la agencia")
    refused(run("agency", "rotate-key", "mx.nadie.dif", "--generate-key", "k"), "mx.nadie.dif")
    assert not list((hub / "k").glob("*"))
    refused(run("agency", "set-webhook", "mx.nadie.dif", "https://example.org/h"), "mx.nadie.dif")


def test_rotate_key_keeps_the_old_key_for_the_grace_period(hub: Path) -> None:
    first = run_json("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--generate-key", "keys")
    rotated = run_json(
        "agency", "rotate-key", "mx.chp.dif", "--generate-key", "keys", "--grace-hours", "24"
    )
    assert rotated["key_id"] != first["key_id"]
    assert [r["key_id"] for r in rotated["retiring"]] == [first["key_id"]]
    keys = run_json("agency", "list")["agencies"][0]["keys"]
    assert [k["valid"] for k in keys] == [True, True]
    for private_key in (first["private_key"], rotated["private_key"]):
        assert token_with_private_key(Path(private_key), "mx.chp.dif").status_code == 200

    now = run_json(
        "agency", "rotate-key", "mx.chp.dif", "--generate-key", "keys", "--grace-hours", "0"
    )
    keys = run_json("agency", "list")["agencies"][0]["keys"]
    assert [k["valid"] for k in keys] == [False, False, True]
    assert token_with_private_key(Path(rotated["private_key"]), "mx.chp.dif").status_code == 400
    assert token_with_private_key(Path(now["private_key"]), "mx.chp.dif").status_code == 200


def test_disable_enable_and_webhook(hub: Path) -> None:
    added = run_json("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--generate-key", "keys")
    assert run("agency", "set-webhook", "mx.chp.dif", "https://dif.example/puente").exit_code == 0
    assert run_json("agency", "list")["agencies"][0]["webhook_url"] == "https://dif.example/puente"
    refused(run("agency", "set-webhook", "mx.chp.dif", "ftp://dif.example"), "http(s)")
    # Offices that collect files get notifications in a folder (the file drop).
    assert run("agency", "set-webhook", "mx.chp.dif", "file-drop").exit_code == 0
    assert run_json("agency", "list")["agencies"][0]["webhook_url"] == "file-drop"
    removed = run("agency", "set-webhook", "mx.chp.dif", "-", "--lang", "en")
    assert removed.exit_code == 0 and "Webhook of mx.chp.dif removed" in removed.output
    assert run_json("agency", "list")["agencies"][0]["webhook_url"] is None

    disabled = run("agency", "disable", "mx.chp.dif")
    assert disabled.exit_code == 0, disabled.output
    assert run_json("agency", "list")["agencies"][0]["active"] is False
    assert "DISABLED" in run("agency", "list").output
    assert (
        token_with_private_key(Path(added["private_key"]), "mx.chp.dif").get_json()["error"]
        == "invalid_client"
    )
    assert run("agency", "enable", "mx.chp.dif").exit_code == 0
    assert token_with_private_key(Path(added["private_key"]), "mx.chp.dif").status_code == 200


def test_kind_is_required_checked_and_shown(hub: Path) -> None:
    plain = ["--name", "Consulado", "--level", "state", "--jurisdiction", "07", *SCOPES]
    missing = run("agency", "add", "gt.consulado", *plain, "--secret")
    assert missing.exit_code == 2 and "--kind" in missing.output
    unknown = run("agency", "add", "gt.consulado", *plain, "--kind", "consulate", "--secret")
    assert unknown.exit_code == 2
    assert "unknown kind 'consulate'" in unknown.output
    assert "foreign_authority: Foreign authority" in unknown.output  # each code explained
    spanish = run(
        "agency", "add", "gt.consulado", *plain, "--kind", "consulado", "--secret", "--lang", "es"
    )
    assert "tipo 'consulado' desconocido" in spanish.output
    assert "foreign_authority: Autoridad extranjera" in spanish.output
    # A foreign authority needs its country; nobody else has one.
    foreign = [*plain, "--kind", "foreign_authority", "--secret"]
    without_country = run("agency", "add", "gt.consulado", *foreign, "--lang", "en")
    refused(without_country, "needs the country it acts for (--country)")
    assert "None" not in without_country.output
    sin_pais = run("agency", "add", "gt.consulado", *foreign, "--lang", "es")
    refused(sin_pais, "necesita el país para el que actúa (--country)")
    assert "None" not in sin_pais.output
    refused(run("agency", "add", "gt.consulado", *foreign, "--country", "MX"), "other than MX")
    refused(
        run("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--country", "GT", "--secret"),
        "Only a foreign authority",
    )
    added = run_json("agency", "add", "gt.consulado", *foreign, "--country", "gt")
    assert added["agency_id"] == "gt.consulado"
    listed = run_json("agency", "list")["agencies"]
    assert [(a["kind"], a["country"]) for a in listed] == [("foreign_authority", "GT")]
    assert "foreign_authority (GT)" in run("agency", "list").output
    assert run_json("agency", "list") == {"agencies": listed}


def test_set_kind(hub: Path) -> None:
    run_json("agency", "add", "mx.fed.inm", *BASE, *SCOPES, "--secret")
    changed = run("agency", "set-kind", "mx.fed.inm", "--kind", "immigration_enforcement")
    assert changed.exit_code == 0, changed.output
    assert run_json("agency", "list")["agencies"][0]["kind"] == "immigration_enforcement"
    refused(run("agency", "set-kind", "mx.fed.inm", "--kind", "oversight", "--country", "GT"))
    assert run("agency", "set-kind", "mx.fed.inm", "--kind", "nope").exit_code == 2
    refused(run("agency", "set-kind", "mx.nadie.dif", "--kind", "oversight"), "mx.nadie.dif")
    assert run_json("agency", "list")["agencies"][0]["kind"] == "immigration_enforcement"


def unsigned_push_status(agency_id: str, secret: str) -> int:
    """What the agency's system gets for an unsigned push (token by client secret)."""
    app = create_app({"TESTING": True})
    record = Path(__file__).resolve().parents[3] / "schemas/examples/case-record/1/valid"
    body = {
        "schema": "case-record/1",
        "local_id": f"EXP-{uuid.uuid4().hex[:8]}",
        "data": json.loads((record / "minimal.json").read_text(encoding="utf-8")),
    }
    try:
        client = app.test_client()
        token = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "records:write"},
            auth=(agency_id, secret),
        )
        assert token.status_code == 200, token.get_json()
        pushed = client.post(
            "/v1/records",
            json=body,
            headers={"Authorization": f"Bearer {token.get_json()['access_token']}"},
        )
        return pushed.status_code
    finally:
        app.extensions["puente.db"].engine.dispose()


def audited_agency_changes() -> list[str]:
    from sqlalchemy import select

    from exchange import db
    from exchange.audit_log import AuditEntry

    app = create_app({"TESTING": True})
    try:
        with db.database(app).sessions() as session:
            entries = session.scalars(select(AuditEntry.entry).order_by(AuditEntry.recorded_at))
            return [
                json.loads(entry)["reason_code"]
                for entry in entries
                if json.loads(entry)["action"] == "agency_changed"
            ]
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_require_signature_can_be_turned_on_and_off_after_registration(hub: Path) -> None:
    added = run_json(
        "agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--generate-key", "keys", "--secret"
    )
    secret = added["client_secret"]
    assert run_json("agency", "list")["agencies"][0]["require_signature"] is False
    assert unsigned_push_status("mx.chp.dif", secret) == 201

    on = run("agency", "require-signature", "mx.chp.dif", "--lang", "en")
    assert on.exit_code == 0, on.output
    assert on.output == "mx.chp.dif: its pushes must carry Puente-Signature.\n"
    assert run_json("agency", "list")["agencies"][0]["require_signature"] is True
    assert unsigned_push_status("mx.chp.dif", secret) == 401  # from the next push on

    again = run_json("agency", "require-signature", "mx.chp.dif")
    assert again == {"agency_id": "mx.chp.dif", "require_signature": True, "changed": False}
    spanish = run("agency", "require-signature", "mx.chp.dif", "--lang", "es")
    assert "ya estaba así" in spanish.output and "Puente-Signature" in spanish.output

    off = run_json("agency", "require-signature", "mx.chp.dif", "--off")
    assert off == {"agency_id": "mx.chp.dif", "require_signature": False, "changed": True}
    assert run_json("agency", "list")["agencies"][0]["require_signature"] is False
    assert unsigned_push_status("mx.chp.dif", secret) == 201
    apagado = run("agency", "require-signature", "mx.chp.dif", "--off", "--lang", "es")
    assert "ya no necesitan Puente-Signature" in apagado.output

    # Each change is audited once; asking for what is already set records nothing.
    assert audited_agency_changes() == [
        "registered.mx.chp.dif",
        "signature_required.mx.chp.dif",
        "signature_optional.mx.chp.dif",
    ]


def test_require_signature_needs_a_valid_key_and_a_known_agency(hub: Path) -> None:
    run_json("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--secret")  # no key to sign with
    refused(run("agency", "require-signature", "mx.chp.dif", "--lang", "en"), "valid public key")
    refused(
        run("agency", "require-signature", "mx.chp.dif", "--lang", "es"),
        "requiere una clave pública vigente",
    )
    assert run_json("agency", "list")["agencies"][0]["require_signature"] is False
    refused(run("agency", "require-signature", "mx.nadie.dif"), "no agency 'mx.nadie.dif'")
    refused(run("agency", "require-signature", "mx.nadie.dif", "--off"), "mx.nadie.dif")
    assert audited_agency_changes() == ["registered.mx.chp.dif"]


def test_a_file_drop_must_lie_inside_the_drop_root_and_be_no_other_agencys(hub: Path) -> None:
    run_json("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--secret")
    run_json("agency", "add", "mx.chp.tapachula.dif", *BASE, *SCOPES, "--secret")
    root = (hub / "instance" / "drop").resolve()
    inside = (root / "tapachula-buzon").as_uri()
    assert run("agency", "set-webhook", "mx.chp.tapachula.dif", inside).exit_code == 0
    for outside in ("file:///etc/puente", f"file://{root}/../../x", root.as_uri()):
        refused(run("agency", "set-webhook", "mx.chp.tapachula.dif", outside), "FILE_DROP_PATH")
    # Another agency's folder, or one holding it, would hand it Tapachula's notifications.
    for theirs in ((root / "mx.chp.dif").as_uri(), (root / "mx.chp.dif" / "sub").as_uri()):
        refused(run("agency", "set-webhook", "mx.chp.tapachula.dif", theirs), "mx.chp.dif")
    refused(
        run("agency", "set-webhook", "mx.chp.dif", (root / "tapachula-buzon" / "x").as_uri()),
        "mx.chp.tapachula.dif",
    )
    refused(
        run("agency", "add", "mx.nl.dif", *BASE, *SCOPES, "--secret", "--webhook", "file:///etc"),
        "FILE_DROP_PATH",
    )
    assert run_json("agency", "list")["agencies"][1]["webhook_url"] == inside


def test_disabling_or_enabling_twice_says_so_and_logs_once(hub: Path) -> None:
    from sqlalchemy import func, select

    from exchange import db
    from exchange.audit_log import AuditEntry

    run_json("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--secret")
    app = create_app()

    def entries() -> int:
        with db.database(app).sessions() as session:
            return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)

    assert run("agency", "disable", "mx.chp.dif").exit_code == 0
    logged = entries()
    refused(run("agency", "disable", "mx.chp.dif", "--lang", "en"), "was already disabled")
    refused(run("agency", "disable", "mx.chp.dif", "--lang", "es"), "ya estaba desactivada")
    assert entries() == logged  # a change that did not happen is not in the signed log
    assert run("agency", "enable", "mx.chp.dif").exit_code == 0
    refused(run("agency", "enable", "mx.chp.dif", "--lang", "en"), "was already enabled")
    assert entries() == logged + 1
    app.extensions["puente.db"].engine.dispose()


def token_with_secret(agency_id: str, secret: str) -> Any:
    """What an agency's system with a client secret does (client_secret_basic)."""
    app = create_app({"TESTING": True})
    try:
        return app.test_client().post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(agency_id, secret),
        )
    finally:
        app.extensions["puente.db"].engine.dispose()


def token_works(token: str) -> bool:
    app = create_app({"TESTING": True})
    try:
        response = app.test_client().get(
            "/v1/notifications", headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code == 200
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_retiring_a_key_ends_the_agencys_tokens_and_is_done_once(hub: Path) -> None:
    added = run_json(
        "agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--generate-key", "keys", "--secret"
    )
    token = token_with_private_key(Path(added["private_key"]), "mx.chp.dif").get_json()
    assert token_works(token["access_token"])
    # "--": a key id (a base64url thumbprint) may begin with "-".
    retired = run("agency", "retire-key", "--lang", "en", "--", "mx.chp.dif", added["key_id"])
    assert retired.exit_code == 0, retired.output
    assert "tokens" in retired.output
    # A token obtained with the compromised key must not outlive it.
    assert not token_works(token["access_token"])
    before = run_json("agency", "list")["agencies"][0]["keys"][0]
    again = run("agency", "retire-key", "--", "mx.chp.dif", added["key_id"])
    refused(again, "nothing was changed")
    assert run_json("agency", "list")["agencies"][0]["keys"][0] == before
    # The secret still gets new tokens.
    assert token_with_secret("mx.chp.dif", added["client_secret"]).status_code == 200


def test_a_leaked_secret_is_replaced_or_removed(hub: Path) -> None:
    added = run_json(
        "agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--generate-key", "keys", "--secret"
    )
    old = token_with_secret("mx.chp.dif", added["client_secret"]).get_json()["access_token"]
    replaced = run_json("agency", "new-secret", "mx.chp.dif")
    assert (
        replaced["agency_id"] == "mx.chp.dif"
        and replaced["client_secret"] != added["client_secret"]
    )
    assert not token_works(old)
    assert token_with_secret("mx.chp.dif", added["client_secret"]).status_code in (400, 401)
    assert token_with_secret("mx.chp.dif", replaced["client_secret"]).status_code == 200

    removed = run("agency", "remove-secret", "mx.chp.dif", "--lang", "en")
    assert removed.exit_code == 0, removed.output
    assert token_with_secret("mx.chp.dif", replaced["client_secret"]).status_code in (400, 401)
    assert token_with_private_key(Path(added["private_key"]), "mx.chp.dif").status_code == 200
    refused(run("agency", "remove-secret", "mx.chp.dif", "--lang", "en"), "has no secret")


def test_the_only_credential_is_not_removed(hub: Path) -> None:
    run_json("agency", "add", "mx.chp.dif", *BASE, *SCOPES, "--secret")
    refused(run("agency", "remove-secret", "mx.chp.dif", "--lang", "en"), "no active key")
    refused(run("agency", "new-secret", "mx.zz.nadie"), "mx.zz.nadie")
