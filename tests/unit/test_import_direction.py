"""The functional core stays pure: DESIGN.md's dependency direction, read from the imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "consent": {"flask", "sqlalchemy", "werkzeug", "gunicorn", "alembic", "exchange", "adapters"},
    "audit": {"flask", "sqlalchemy", "werkzeug", "gunicorn", "alembic", "exchange", "adapters"},
    "schemas": {"flask", "sqlalchemy", "werkzeug", "gunicorn", "alembic", "exchange", "adapters"},
}
PURE_SIBLINGS = {
    "consent": {"audit", "schemas"},
    "audit": {"consent", "schemas"},
    "schemas": {"consent", "audit"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def python_files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_pure_packages_import_no_io_nor_hub(package: str) -> None:
    banned = FORBIDDEN[package] | PURE_SIBLINGS[package]
    offenders = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in python_files(package)
        for name in imported_top_levels(path) & banned
    }
    assert not offenders, sorted(offenders)


def test_adapters_depend_only_on_schemas() -> None:
    banned = {"exchange", "consent", "audit", "flask", "sqlalchemy", "werkzeug"}
    offenders = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in python_files("adapters")
        for name in imported_top_levels(path) & banned
    }
    assert not offenders, sorted(offenders)


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import flask.json\nfrom sqlalchemy import orm\nfrom . import sibling\n")
    assert imported_top_levels(module) == {"flask", "sqlalchemy"}
