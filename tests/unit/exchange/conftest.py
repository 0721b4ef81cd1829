"""Fixtures the hub's command-line tests share: the ``puente`` command line pointed at a test
hub, and ``puente serve`` recorded instead of run. A module that needs another shape defines
its own fixture of the same name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from exchange import listening
from exchange.cli import hub as hub_cli


@pytest.fixture
def hub_env(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The ``puente`` command line pointed at ``app``'s instance folder and database."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", app.config["DATABASE_URL"])
    return app


@pytest.fixture
def exec_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[object]]:
    """``puente serve`` without gunicorn: what it would exec is recorded instead."""
    calls: list[object] = []
    monkeypatch.setattr(os, "execvpe", lambda _file, argv, env: calls.append(argv))
    (tmp_path / "shm").mkdir()
    monkeypatch.setattr(hub_cli, "SHARED_MEMORY", tmp_path / "shm")
    monkeypatch.setattr(listening, "cannot_listen", lambda bind: None)
    yield calls
