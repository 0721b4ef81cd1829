"""One configuration path: defaults, then the instance file, then PUENTE_* environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange import create_app


def test_defaults_put_sqlite_under_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "hub"))
    app = create_app()
    assert app.instance_path == str(tmp_path / "hub")
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'hub' / 'puente.db'}"


def test_instance_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "puente.cfg").write_text('HUB_ID = "mx.chp.puente"\nLOG_LEVEL = "DEBUG"\n')
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("PUENTE_MAX_CONTENT_LENGTH", "4096")
    app = create_app()
    assert app.config["HUB_ID"] == "mx.chp.puente"  # from the instance file
    assert app.config["LOG_LEVEL"] == "WARNING"  # environment wins over the file
    assert app.config["MAX_CONTENT_LENGTH"] == 4096  # parsed as JSON, so a number


def test_database_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_DATABASE_URL", f"sqlite:///{tmp_path}/other.db")
    assert create_app().config["DATABASE_URL"] == f"sqlite:///{tmp_path}/other.db"


def test_every_setting_is_listed_in_the_readme() -> None:
    from exchange.config import DEFAULTS

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in DEFAULTS if f"PUENTE_{name}" not in readme]
    assert missing == [], f"settings missing from README.md: {missing}"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PUENTE_MAX_CONTENT_LENGTH", "abc", "PUENTE_MAX_CONTENT_LENGTH = 'abc'"),
        ("PUENTE_MAX_CONTENT_LENGTH", "-1", "PUENTE_MAX_CONTENT_LENGTH = -1"),
        ("PUENTE_OUTBOX_BACKOFF_SECONDS", "soon", "PUENTE_OUTBOX_BACKOFF_SECONDS = 'soon'"),
        ("PUENTE_DATABASE_ECHO", "yes", "PUENTE_DATABASE_ECHO = 'yes'"),
        ("PUENTE_HUB_ID", "42", "PUENTE_HUB_ID = 42"),
        ("PUENTE_DEFAULT_LANGUAGE", "fr", "PUENTE_DEFAULT_LANGUAGE = 'fr'"),
        ("PUENTE_WORKERS", "abc", "PUENTE_WORKERS = 'abc'"),
        ("PUENTE_WORKER_TIMEOUT", "1.5", "PUENTE_WORKER_TIMEOUT = 1.5"),
    ],
)
def test_a_setting_of_the_wrong_kind_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    from exchange.config import SettingError

    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError) as caught:
        create_app()
    assert named in caught.value.message("en")
    assert "must be" in caught.value.message("en")
    assert "debe ser" in caught.value.message("es")


def test_the_command_line_names_the_bad_setting_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from exchange.cli import main

    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUENTE_MAX_CONTENT_LENGTH", "abc")
    result = CliRunner().invoke(main, ["db", "current"], env={"PUENTE_LANG": "es"})
    assert result.exit_code == 1
    assert "configuración no válida: PUENTE_MAX_CONTENT_LENGTH = 'abc'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("text", ['DATABASE_URL = "sqlite:///x\n', "X = 1/0\n", "import nada\n"])
def test_a_configuration_file_that_does_not_run_is_named_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    from click.testing import CliRunner

    from exchange.cli import main

    (tmp_path / "puente.cfg").write_text(text)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["db", "current"], env={"PUENTE_LANG": "en"})
    assert result.exit_code == 1, result.output
    assert f"The configuration file {tmp_path}/puente.cfg cannot be read" in result.output
    assert "Traceback" not in result.output


def _warned_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environ: dict[str, str]
) -> list[list[str]]:
    """Build the app with ``environ`` set and return the unknown-settings warnings it logged,
    each setting as the log's English half describes it."""
    from exchange import logs

    warned: list[list[str]] = []
    monkeypatch.setattr(
        logs,
        "warn_unknown_settings",
        lambda unknown: warned.append([setting.described("en") for setting in unknown]),
    )
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    create_app()
    return warned


def test_a_misspelt_setting_is_named_with_the_one_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "puente.cfg").write_text('HUB_ID = "mx.chp.puente"\nPUBLIC_ULR = "https://x"\n')
    warned = _warned_settings(
        monkeypatch, tmp_path, {"PUENTE_DATABSE_URL": "postgresql://elsewhere/db"}
    )
    # Each where it was written, as it is written there: the operator looks in that place.
    assert warned == [
        [
            "PUENTE_DATABSE_URL (environment) → PUENTE_DATABASE_URL?",
            "PUBLIC_ULR (puente.cfg) → PUBLIC_URL?",
        ]
    ]


def test_the_same_misspelling_in_the_file_and_the_environment_is_named_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "puente.cfg").write_text('DATABSE_URL = "sqlite://"\nHUB_NAMEE = "x"\n')
    warned = _warned_settings(monkeypatch, tmp_path, {"PUENTE_DATABSE_URL": "sqlite://"})
    assert warned == [
        [
            "DATABSE_URL (puente.cfg) → DATABASE_URL?",
            "PUENTE_DATABSE_URL (environment) → PUENTE_DATABASE_URL?",
            "HUB_NAMEE (puente.cfg) → HUB_NAME?",
        ]
    ]


def test_the_unknown_setting_warning_speaks_both_languages() -> None:
    import logging
    import logging.handlers

    from exchange.config import unknown_settings
    from exchange.logs import warn_unknown_settings

    unknown = unknown_settings(["DATABSE_URL", "WHATEVER"], environ={"PUENTE_WHATEVER": "1"})
    logger = logging.getLogger("puente.config")
    handler = logging.handlers.BufferingHandler(10)
    logger.addHandler(handler)  # ("puente" may not propagate: exchange.logs)
    try:
        warn_unknown_settings(unknown)
    finally:
        logger.removeHandler(handler)
    [record] = handler.buffer
    assert record.getMessage() == (
        "configuración desconocida, ignorada: DATABSE_URL (puente.cfg) → ¿DATABASE_URL?, "
        "PUENTE_WHATEVER (entorno) / unknown settings, ignored: DATABSE_URL (puente.cfg) → "
        "DATABASE_URL?, PUENTE_WHATEVER (environment)"
    )


def test_every_setting_the_readme_names_is_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`PUENTE_([A-Z][A-Z0-9_]*[A-Z0-9])`", readme))
    # PUENTE_NAME is the README's way of writing "PUENTE_ and a setting's name"
    named.discard("NAME")
    assert len(named) > 40
    from exchange.config import unknown_settings

    assert unknown_settings(named) == []
    # Flask's own settings (DEBUG, SECRET_KEY, …) are settings too.
    assert _warned_settings(monkeypatch, tmp_path, {"PUENTE_TESTING": "false"}) == []


def test_the_command_line_says_which_settings_it_ignores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import os
    import subprocess
    import sys

    environ = {
        **os.environ,
        "PUENTE_INSTANCE_PATH": str(tmp_path),
        "PUENTE_LOG_LEVL": "DEBUG",
        "PUENTE_LANG": "en",
    }
    result = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "init"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line.get("unknown_settings")]
    assert warnings, result.stderr
    assert warnings[0]["unknown_settings"] == ["PUENTE_LOG_LEVL (environment) → PUENTE_LOG_LEVEL?"]
    assert "unknown settings, ignored: PUENTE_LOG_LEVL (environment)" in warnings[0]["message"]
    assert "configuración desconocida" in warnings[0]["message"]
