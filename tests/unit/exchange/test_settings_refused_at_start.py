"""Rate-limit and logging settings the hub cannot use stop it at start with one bilingual line
naming the setting, as the other settings do; before, every command printed a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from exchange.cli import main


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(folder))
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    return folder


@pytest.mark.parametrize(
    ("name", "value", "english"),
    [
        ("PUENTE_RATE_LIMIT_STRATEGY", "bogus", "fixed-window / moving-window"),
        ("PUENTE_RATE_LIMIT_STORAGE", "bogus://x", "memory://, redis://HOST:PORT"),
        ("PUENTE_RATE_LIMIT_STORAGE", "async+memory://", "memory://, redis://HOST:PORT"),
        ("PUENTE_LOG_LEVEL", "LOUD", "must be one of DEBUG, INFO"),
    ],
)
def test_a_setting_the_hub_cannot_use_is_one_line(
    instance: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, english: str
) -> None:
    monkeypatch.setenv(name, value)
    for lang, expected in (("en", english), ("es", name)):
        result = CliRunner().invoke(main, ["agency", "list", "--lang", lang])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and result.exception is not None
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {name} = {value}")
        assert expected in lines[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [("PUENTE_RATE_LIMIT_AUTH_FAILURES", "bogus"), ("PUENTE_RATE_LIMIT", "20 per fortnight")],
)
def test_limits_the_hub_cannot_use_are_named_with_the_other_settings(
    instance: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    # Checked with the other settings (exchange.config.check_settings), which name a value of
    # puente.cfg there (tests/unit/exchange/test_admin_fixes_s19.py).
    monkeypatch.setenv(name, value)
    for lang, expected in (
        ("en", f"settings not valid: {name} = {value!r} (environment; must be a limit such as"),
        ("es", f"configuración no válida: {name} = {value!r} (entorno; debe ser un límite"),
    ):
        result = CliRunner().invoke(main, ["agency", "list", "--lang", lang])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and result.exception is not None
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {expected}"), lines


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUENTE_LOG_LEVEL", "debug"),
        ("PUENTE_RATE_LIMIT", ""),
        ("PUENTE_RATE_LIMIT", "5 per second; 100 per hour"),
        ("PUENTE_RATE_LIMIT_STRATEGY", "moving-window"),
        ("PUENTE_RATE_LIMIT_STORAGE", "redis://127.0.0.1:6379"),  # not reached at start
    ],
)
def test_settings_the_hub_can_use_start_it(
    instance: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["agency", "list", "--lang", "en"])
    assert result.exit_code == 0, result.output
