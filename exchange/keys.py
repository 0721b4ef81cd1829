"""The hub's own Ed25519 keys: the log key (signs checkpoints) and the witness key.

Keys live in files under the instance folder (mode 0600) or in the environment, never in the
database. They are stored as C2SP signed-note private keys, so ``audit`` can use them as they are.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from audit.cosignature import CosignatureSigner, generate_cosigner_key
from audit.errors import KeyFormatError
from audit.keys import ED25519_KEY_TYPE, decode_private_key
from audit.note import Signer, generate_signer_key
from exchange.config import resolve_instance_file


@dataclass(frozen=True)
class HubKeys:
    log: Signer | None
    witness: CosignatureSigner | None
    problems: tuple[str, ...] = ()

    @property
    def loaded(self) -> bool:
        return self.log is not None and self.witness is not None


def audit_origin(app: Flask) -> str:
    return app.config.get("AUDIT_ORIGIN") or f"{app.config['HUB_ID']}/audit"


def witness_name(app: Flask) -> str:
    return f"{app.config['HUB_ID']}/witness"


def key_paths(app: Flask) -> dict[str, Path]:
    instance = Path(app.instance_path)
    return {
        "log": resolve_instance_file(instance, app.config["AUDIT_LOG_KEY_FILE"]),
        "witness": resolve_instance_file(instance, app.config["AUDIT_WITNESS_KEY_FILE"]),
    }


def witness_signer(text: str) -> CosignatureSigner:
    """The witness key: a C2SP tlog-cosignature (cosignature/v1, type 0x04) key. A key written
    as a plain Ed25519 signed-note key (type 0x01, as hubs created before 2026-11-23 did) is
    read as the same seed used for cosignatures, so its published vkey becomes type 0x04."""
    try:
        return CosignatureSigner.from_private_key(text)
    except KeyFormatError:
        name, _key_id, seed = decode_private_key(text, ED25519_KEY_TYPE)
        return CosignatureSigner(name, seed)


_PARSERS = {"log": Signer.from_private_key, "witness": witness_signer}


def _load(app: Flask, role: str, path: Path) -> tuple[Any, str | None]:
    text = app.config.get(f"AUDIT_{role.upper()}_KEY")
    source = f"PUENTE_AUDIT_{role.upper()}_KEY"
    if not text:
        if not path.exists():
            return None, f"{role} key file {path} not found (run 'puente init')"
        text = path.read_text(encoding="ascii").strip()
        source = str(path)
    try:
        return _PARSERS[role](text), None
    except Exception as error:  # noqa: BLE001 - a bad key must not stop the hub from starting
        return None, f"{role} key from {source} is not a valid signed-note key: {error}"


def load_keys(app: Flask) -> HubKeys:
    paths = key_paths(app)
    log, log_problem = _load(app, "log", paths["log"])
    witness, witness_problem = _load(app, "witness", paths["witness"])
    problems = tuple(p for p in (log_problem, witness_problem) if p)
    return HubKeys(log=log, witness=witness, problems=problems)


def write_private_key(path: Path, text: str) -> None:
    """Write a private key readable by its owner only; never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")


def ensure_hub_keys(app: Flask) -> list[Path]:
    """Create whichever hub key file is missing; returns the files created."""
    created = []
    names = {"log": audit_origin(app), "witness": witness_name(app)}
    for role, path in key_paths(app).items():
        if app.config.get(f"AUDIT_{role.upper()}_KEY") or path.exists():
            continue
        generate = generate_cosigner_key if role == "witness" else generate_signer_key
        private_key, _vkey = generate(names[role])
        write_private_key(path, private_key)
        created.append(path)
    app.extensions["puente.keys"] = load_keys(app)
    return created


def portal_secret_path(app: Flask) -> Path:
    return resolve_instance_file(Path(app.instance_path), app.config["PORTAL_SECRET_KEY_FILE"])


def load_portal_secret(app: Flask) -> str | None:
    """The secret that signs the portal's session cookies: ``PORTAL_SECRET_KEY``, else the file
    ``puente init`` made; None when there is neither (the portal then refuses logins)."""
    configured = app.config.get("PORTAL_SECRET_KEY")
    if configured:
        return str(configured)
    path = portal_secret_path(app)
    if not path.exists():
        return None
    return path.read_text(encoding="ascii").strip() or None


def ensure_portal_secret(app: Flask) -> Path | None:
    """Create the portal's secret file unless the configuration or a file already has one;
    returns the file created. A random secret per hub: changing it only logs everyone out."""
    created = None
    path = portal_secret_path(app)
    if not app.config.get("PORTAL_SECRET_KEY") and not path.exists():
        write_private_key(path, secrets.token_urlsafe(48))
        created = path
    app.secret_key = load_portal_secret(app)
    return created


def hub_keys(app: Flask | None = None) -> HubKeys:
    return (app or current_app).extensions["puente.keys"]  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    app.extensions["puente.keys"] = load_keys(app)
