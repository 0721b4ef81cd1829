"""A hub whose own consent rules (PUENTE_CONSENT_RULES_FILE) cannot be read does not start:
before, it served, answered every read with a 500 and told /readyz it was ready."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from exchange import create_app
from exchange.cli import main
from exchange.config import SettingError

RULE = {
    "id": "no_legal_status_to_refugee_commission_demo",
    "title": {"es": "Regla de prueba.", "en": "A test rule."},
    "legal_basis": "Acuerdo local de prueba.",
    "categories": ["legal_status"],
    "actor_kinds": ["refugee_commission"],
}


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(folder))
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    return folder


@pytest.mark.parametrize(
    ("content", "english"),
    [
        (None, "No such file or directory"),
        ("[{", "not JSON (line 1, column 3)"),
        (json.dumps({"id": "x"}), "expected a JSON list of rules"),
        (json.dumps([{**RULE, "categories": ["secretos"]}]), "/0/categories"),
    ],
)
def test_rules_that_cannot_be_used_stop_the_hub_with_one_line(
    instance: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, english: str
) -> None:
    name = "rules.json"
    if content is not None:
        (instance / name).write_text(content, encoding="utf-8")
    monkeypatch.setenv("PUENTE_CONSENT_RULES_FILE", name)
    with pytest.raises(SettingError) as raised:
        create_app()
    assert english in raised.value.message_en
    assert "docs/consent.md §4" in raised.value.message_es

    listed = CliRunner().invoke(main, ["agency", "list"])  # every command says it, in one line
    assert listed.exit_code == 1 and "PUENTE_CONSENT_RULES_FILE" in listed.output
    assert "Traceback" not in listed.output


def test_rules_that_can_be_used_start_the_hub(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (instance / "rules.json").write_text(json.dumps([RULE]), encoding="utf-8")
    monkeypatch.setenv("PUENTE_CONSENT_RULES_FILE", "rules.json")
    assert create_app().config["CONSENT_RULES_FILE"] == "rules.json"
