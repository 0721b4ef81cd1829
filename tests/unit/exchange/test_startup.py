"""Building the hub does not compile the schemas: commands that never validate stay quick."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_create_app_leaves_the_schema_registry_for_the_first_validation(tmp_path: Path) -> None:
    code = f"""
from schemas.registry import default_registry
from exchange import create_app
create_app({{"TESTING": True, "INSTANCE_PATH": {str(tmp_path)!r}, "DATABASE_URL": "sqlite://"}})
print(default_registry.cache_info().currsize)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "0"
