"""Settings the hub cannot use stop it at start, named where they were written; and an agency
with no client secret is not locked out by retiring its last valid key.

1. ``PUENTE_HUB_ID=""``, ``PUENTE_PUBLIC_URL="notaurl"``, ``PUENTE_LANG=fr``, a count of 0…
   are refused (exit 1, Spanish and English); a value of puente.cfg names the file.
2. ``puente agency retire-key`` refuses the last valid key of a key-only agency unless
   ``--even-if-last``, and says when an agency with a secret is left with no key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from joserfc.jwk import OKPKey
from sqlalchemy.orm import Session

from exchange import audit_log, create_app, db
from exchange.agencies import AgencyError, AgencyKey, register_agency, retire_key
from exchange.agency_keys import public_jwk
from exchange.cli import main
from exchange.config import SettingError

AGENCY = "mx.oax.dif"
#: Counts and sizes that 0 would break or that the code would quietly replace by its default.
AT_LEAST_ONE = (
    "MAX_CONTENT_LENGTH", "BULK_MAX_CONTENT_LENGTH", "BULK_MAX_LINES", "BULK_BATCH_SIZE",
    "IDEMPOTENCY_KEY_HOURS", "AUDIT_BATCH_SIZE", "AUDIT_MAX_PER_RUN", "AUDIT_ENTRIES_PAGE_MAX",
    "AUDIT_ALERT_DENIALS", "AUDIT_ALERT_ACCESS_REQUESTS", "AUDIT_ALERT_WINDOW_SECONDS",
    "OUTBOX_MAX_ATTEMPTS", "OAUTH2_TOKEN_SECONDS",
)  # fmt: skip
#: Seconds likewise: timeouts, intervals, backoff and leases.
MORE_THAN_ZERO = (
    "AUDIT_INTEGRATE_INTERVAL", "AUDIT_CHECKPOINT_INTERVAL", "AUDIT_WITNESS_INTERVAL",
    "AUDIT_WITNESS_TIMEOUT", "FEDERATION_TIMEOUT", "OUTBOX_BACKOFF_SECONDS",
    "OUTBOX_BACKOFF_MAX_SECONDS", "OUTBOX_LEASE_SECONDS", "WEBHOOK_TIMEOUT_SECONDS",
)  # fmt: skip


# -- 1. settings -----------------------------------------------------------------------------


def refused_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **environ: str
) -> SettingError:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingError) as caught:
        create_app()
    return caught.value


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PUENTE_HUB_ID", '""', "PUENTE_HUB_ID = ''"),
        ("PUENTE_HUB_ID", "MX.Chp", "PUENTE_HUB_ID = 'MX.Chp'"),
        ("PUENTE_HUB_ID", "mx.chp.puente\n", "PUENTE_HUB_ID = 'mx.chp.puente\\n'"),
        ("PUENTE_PUBLIC_URL", '"notaurl"', "PUENTE_PUBLIC_URL = 'notaurl'"),
        ("PUENTE_PUBLIC_URL", "ftp://puente.example.org", "'ftp://puente.example.org'"),
        ("PUENTE_PUBLIC_URL", "https://", "PUENTE_PUBLIC_URL = 'https://'"),
        ("PUENTE_PUBLIC_URL", "https://x.example:port", "'https://x.example:port'"),
        ("PUENTE_PUBLIC_URL", "https://x.example/?a=1", "'https://x.example/?a=1'"),
        ("PUENTE_LANG", "fr", "PUENTE_LANG = 'fr'"),
        ("PUENTE_LANG", "spanish", "PUENTE_LANG = 'spanish'"),
        ("PUENTE_OUTBOX_MAX_ATTEMPTS", "0", "PUENTE_OUTBOX_MAX_ATTEMPTS = 0"),
        ("PUENTE_BULK_BATCH_SIZE", "0", "PUENTE_BULK_BATCH_SIZE = 0"),
        ("PUENTE_BULK_BATCH_SIZE", "-5", "PUENTE_BULK_BATCH_SIZE = -5"),
    ],
)
def test_a_setting_the_hub_cannot_use_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, named: str
) -> None:
    error = refused_setting(monkeypatch, tmp_path, **{variable: value})
    assert f"{named} (environment; must be" in error.message("en")
    assert f"{named} (entorno; debe ser" in error.message("es")


@pytest.mark.parametrize("name", [*AT_LEAST_ONE, *MORE_THAN_ZERO])
def test_no_count_size_or_interval_may_be_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    error = refused_setting(monkeypatch, tmp_path, **{f"PUENTE_{name}": "0"})
    english = error.message("en")
    assert f"PUENTE_{name} = 0 (environment; must be" in english
    assert ("a whole number ≥ 1" if name in AT_LEAST_ONE else "a number > 0") in english


def test_a_public_url_with_a_password_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    error = refused_setting(
        monkeypatch, tmp_path, PUENTE_PUBLIC_URL="https://admin:s3cret@puente.example.org"
    )
    for lang in ("es", "en"):
        assert "PUENTE_PUBLIC_URL = 'https://…@puente.example.org'" in error.message(lang)
        assert "s3cret" not in error.message(lang)


@pytest.mark.parametrize(
    "environ",
    [
        {"PUENTE_LANG": "es"},
        {"PUENTE_LANG": "en"},
        {"PUENTE_LANG": "es_MX.UTF-8"},
        {"PUENTE_LANG": ""},  # unset: LANG decides
        {"PUENTE_HUB_ID": "mx.chp.puente", "PUENTE_PUBLIC_URL": "https://puente.example.org/x/"},
        {"PUENTE_PUBLIC_URL": "http://[::1]:8000"},
        {"PUENTE_READ_REFUSAL_FLOOR": "0", "PUENTE_FEDERATION_ANSWER_FLOOR": "0"},
        {"PUENTE_RATE_LIMIT_PROXY_HOPS": "0", "PUENTE_OUTBOX_MAX_ATTEMPTS": "1"},
    ],
)
def test_usable_settings_still_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environ: dict[str, str]
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    create_app({"TESTING": True})


def test_a_value_of_the_instance_file_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "puente.cfg").write_text('MAX_CONTENT_LENGTH = "abc"\nHUB_ID = ""\n')
    error = refused_setting(monkeypatch, tmp_path)
    where = tmp_path / "puente.cfg"
    for lang, must in (("en", "must be"), ("es", "debe ser")):
        message = error.message(lang)
        assert f"MAX_CONTENT_LENGTH = 'abc' ({where}; {must}" in message
        assert f"HUB_ID = '' ({where}; {must}" in message
        assert "PUENTE_MAX_CONTENT_LENGTH" not in message and "PUENTE_HUB_ID" not in message


def test_the_environment_is_named_when_it_overrides_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "puente.cfg").write_text("BULK_BATCH_SIZE = 100\n")
    error = refused_setting(monkeypatch, tmp_path, PUENTE_BULK_BATCH_SIZE="0")
    assert "PUENTE_BULK_BATCH_SIZE = 0 (environment; must be" in error.message("en")
    assert "puente.cfg" not in error.message("en")


def test_the_command_line_ends_with_exit_1_in_either_language(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_HUB_ID", '""')
    for lang, said in (("en", "settings not valid"), ("es", "configuración no válida")):
        result = CliRunner().invoke(main, ["db", "current", "--lang", lang])
        assert result.exit_code == 1, result.output
        assert f"{said}: PUENTE_HUB_ID = ''" in result.output
        assert "Traceback" not in result.output


# -- 2. retiring keys ------------------------------------------------------------------------


@pytest.fixture
def puente(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``puente …`` against the test hub (each backend), as an administrator runs it."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), prog_name="puente")

    return run


@pytest.fixture
def retired(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The key ids whose retirement reached the audit log."""
    kids: list[str] = []
    real = audit_log.record_event

    def spy(session: Session, **fields: Any) -> Any:
        if fields["action"] == "agency.key_revoked":
            kids.append(fields["object_id"].removeprefix("kid:"))
        return real(session, **fields)

    monkeypatch.setattr(audit_log, "record_event", spy)
    return kids


def new_key_file(folder: Path) -> tuple[Path, str]:
    key = OKPKey.generate_key("Ed25519")
    path = folder / f"{key.thumbprint()[:8]}.jwk"
    path.write_text(json.dumps(public_jwk(key)), encoding="utf-8")
    return path, key.thumbprint()


def add_agency(puente: Any, folder: Path, *, secret: bool = False, signed: bool = False) -> str:
    """The agency, with one key (and a secret if asked); its key id."""
    key_file, kid = new_key_file(folder)
    added = puente(
        "agency", "add", AGENCY, "--name", "DIF Oaxaca", "--level", "state",
        "--kind", "state_dif", "--jurisdiction", "20", "--scope", "records:write",
        "--public-key", str(key_file), *(["--secret"] if secret else []),
        *(["--require-signature"] if signed else []), "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return kid


def keys(app: Flask) -> dict[str, bool]:
    with db.database(app).sessions() as session:
        return {key.kid: key.is_valid() for key in session.query(AgencyKey)}


def test_the_last_key_of_an_agency_without_a_secret_is_kept(
    app: Flask, puente: Any, tmp_path: Path, retired: list[str]
) -> None:
    kid = add_agency(puente, tmp_path)
    for lang, fragments in (
        ("en", ("last valid key", "no client secret", "rotate-key", "--even-if-last")),
        ("es", ("última vigente", "no tiene secreto", "rotate-key", "--even-if-last")),
    ):
        result = puente("agency", "retire-key", "--lang", lang, "--", AGENCY, kid)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        for fragment in fragments:
            assert fragment in result.output, result.output
    assert keys(app) == {kid: True}
    assert retired == []


def test_even_if_last_locks_it_out_on_purpose_and_says_so(
    app: Flask, puente: Any, tmp_path: Path, retired: list[str]
) -> None:
    kid = add_agency(puente, tmp_path)
    result = puente(
        "agency", "retire-key", AGENCY, "--even-if-last", "--json", "--lang", "en", "--", kid
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["valid"] is False and answer["valid_keys_left"] == 0
    assert answer["has_secret"] is False
    assert "no valid key left, and no client secret" in result.stderr
    assert keys(app) == {kid: False}
    assert retired == [kid]  # audited as any retirement


def test_a_new_key_first_then_the_old_one_goes(
    app: Flask, puente: Any, tmp_path: Path, retired: list[str]
) -> None:
    old = add_agency(puente, tmp_path)
    key_file, new = new_key_file(tmp_path)
    rotated = puente("agency", "rotate-key", AGENCY, "--public-key", str(key_file), "--json")
    assert rotated.exit_code == 0, rotated.output
    # The new key stays: the old one verifies only until its grace ends.
    refused = puente("agency", "retire-key", "--lang", "en", "--", AGENCY, new)
    assert refused.exit_code == 1, refused.output
    assert "only verify until" in refused.output and "--even-if-last" in refused.output
    result = puente("agency", "retire-key", "--lang", "en", "--", AGENCY, old)
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output
    assert keys(app) == {old: False, new: True}
    assert retired == [old]


def test_an_agency_with_a_secret_left_without_keys_is_told(
    app: Flask, puente: Any, tmp_path: Path, retired: list[str]
) -> None:
    kid = add_agency(puente, tmp_path, secret=True, signed=True)
    result = puente("agency", "retire-key", "--lang", "es", "--json", "--", AGENCY, kid)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)  # the warnings stay on stderr
    assert answer["valid_keys_left"] == 0 and answer["has_secret"] is True
    assert "no le queda ninguna clave vigente" in result.stderr
    assert "solo con el secreto de cliente" in result.stderr
    assert "require-signature" in result.stderr  # its signed pushes are refused now
    assert retired == [kid]


def test_an_agency_with_a_secret_and_another_key_is_not_warned(puente: Any, tmp_path: Path) -> None:
    first = add_agency(puente, tmp_path, secret=True)
    key_file, _second = new_key_file(tmp_path)
    assert puente("agency", "add-key", AGENCY, "--public-key", str(key_file)).exit_code == 0
    result = puente("agency", "retire-key", "--lang", "en", "--", AGENCY, first)
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output


def test_the_secret_of_an_agency_whose_keys_are_ending_is_kept(puente: Any, tmp_path: Path) -> None:
    # Its first key in a rotation's grace, the new one retired: the secret is all that lasts.
    old = add_agency(puente, tmp_path, secret=True)
    key_file, new = new_key_file(tmp_path)
    assert puente("agency", "rotate-key", AGENCY, "--public-key", str(key_file)).exit_code == 0
    result = puente("agency", "retire-key", "--lang", "en", "--", AGENCY, new)
    assert result.exit_code == 0, result.output
    assert "only keys left that stop verifying" in result.stderr
    removed = puente("agency", "remove-secret", AGENCY, "--lang", "en")
    assert removed.exit_code == 1, removed.output
    assert "no active key that stays valid" in removed.output
    assert old != new


def test_the_service_refuses_too(app: Flask) -> None:
    key = OKPKey.generate_key("Ed25519")
    with app.app_context(), db.database(app).sessions.begin() as session:
        register_agency(
            session, AGENCY, "DIF Oaxaca", "state", "20", ["records:write"],
            public_jwk=public_jwk(key), kind="state_dif",
        )  # fmt: skip
    with (
        app.app_context(),
        db.database(app).sessions.begin() as session,
        pytest.raises(AgencyError) as caught,
    ):
        retire_key(session, AGENCY, key.thumbprint())
    assert "--even-if-last" in caught.value.message("es")
    assert "--even-if-last" in caught.value.message("en")
    with app.app_context(), db.database(app).sessions.begin() as session:
        answer = retire_key(session, AGENCY, key.thumbprint(), even_if_last=True)
    assert answer.valid_keys_left == 0 and not answer.has_secret
    assert keys(app) == {key.thumbprint(): False}
