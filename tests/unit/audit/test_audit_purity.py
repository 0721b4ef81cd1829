"""The audit package is a functional core: stdlib, PyNaCl and rfc8785 only, no I/O layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import audit

PACKAGE = Path(audit.__file__).resolve().parent
ALLOWED_THIRD_PARTY = {"nacl", "rfc8785"}
FORBIDDEN = {"flask", "sqlalchemy", "werkzeug", "exchange", "requests", "httpx", "socket"}


def _imported_top_level_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_stdlib_nacl_and_rfc8785_are_imported() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        for name in _imported_top_level_modules(path):
            ok = name in sys.stdlib_module_names or name in ALLOWED_THIRD_PARTY or name == "audit"
            assert ok and name not in FORBIDDEN, f"{path.name} imports {name}"


def test_importing_audit_loads_no_web_or_database_layer() -> None:
    code = (
        "import sys, audit, audit.reference\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    assert out.stdout.strip() == ""


def test_public_api_is_exported() -> None:
    for name in audit.__all__:
        assert hasattr(audit, name), name
    assert (PACKAGE / "py.typed").exists()
