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

#: Why a hub key is not there to use, as ``puente init`` and ``/readyz`` tell them apart: no
#: file (``init`` makes one, unless what the hub holds needs the lost one), a file the user
#: running the hub may not read (its owner or mode is wrong: ``init`` cannot help), a text that
#: is not a key (a damaged file, or a setting to correct).
MISSING, UNREADABLE, INVALID = "missing", "unreadable", "invalid"
#: A key named for another hub id than the one configured (:class:`MisnamedKey`).
MISNAMED = "misnamed"

#: The keys a hub process reads only as it starts (the data keys it reads again as they change,
#: exchange.crypto): a file of theirs mended while the hub runs is used after a restart.
LOADED_AT_START = ("log", "witness", "signing", "portal")


@dataclass(frozen=True)
class KeyFault:
    """A hub key that is not loaded: its ``role`` (log, witness, data, signing, portal), the
    ``kind`` of fault, its ``source`` (the file, or the ``PUENTE_*`` setting that gave it) and
    the ``cause`` (the system's or the key parser's words)."""

    role: str
    kind: str
    source: str
    cause: str = ""

    @property
    def given(self) -> bool:
        """Whether the key came from a setting, which only correcting the setting fixes."""
        return self.source.startswith("PUENTE_")

    @property
    def reason(self) -> str:
        """What the server's log says (English, naming the file)."""
        if self.kind == MISSING:
            return f"{self.role} key {self.source} not found"
        if self.kind == UNREADABLE:
            return f"{self.role} key file {self.source} cannot be read: {self.cause}"
        return f"{self.role} key from {self.source} is not a valid key: {self.cause}"

    def described(self) -> tuple[str, str]:
        """The fault for a person (Spanish, English), naming the file or setting."""
        if self.kind == MISSING:
            return f"{self.source}: no existe", f"{self.source}: not there"
        cause_es = _CAUSES_ES.get(self.cause, self.cause)
        if self.kind == UNREADABLE:
            return (
                f"{self.source}: no se puede leer ({cause_es})",
                f"{self.source}: cannot be read ({self.cause})",
            )
        return (
            f"{self.source}: no es una llave válida ({cause_es})",
            f"{self.source}: not a valid key ({self.cause})",
        )


@dataclass(frozen=True)
class MisnamedKey(KeyFault):
    """A log or witness key named for another hub than the configured one (``found`` against
    ``expected``): ``setting`` (``PUENTE_HUB_ID``, or ``PUENTE_AUDIT_ORIGIN`` for the log key
    when the origin is not the hub id's) changed after ``puente init``, and ``made_with`` is
    the value it had then. Used, the key would sign checkpoints of one origin with a key named
    for another, which no peer pins and no verifier accepts — so it is not used, and the hub
    says which setting to put back, and to what."""

    found: str = ""
    expected: str = ""
    setting: str = "PUENTE_HUB_ID"
    made_with: str = ""

    @property
    def reason(self) -> str:
        return (
            f"{self.role} key {self.source} is named {self.found!r}, but this hub signs as "
            f"{self.expected!r}: {self.setting} changed since the key was made"
        )

    def described(self) -> tuple[str, str]:
        return (
            f"{self.source}: la llave se llama «{self.found}», pero este nodo firma como "
            f"«{self.expected}» ({self.setting} cambió desde que se creó la llave)",
            f"{self.source}: the key is named '{self.found}', but this hub signs as "
            f"'{self.expected}' ({self.setting} changed since the key was made)",
        )


#: What the default origin adds to the hub id (:func:`audit_origin`).
_ORIGIN_SUFFIX = "/audit"


def _misnamed(app: Flask, role: str, source: str, found: str, expected: str) -> MisnamedKey:
    """The fault of a ``role`` key named ``found`` where ``expected`` was wanted, naming the
    setting that differs: the witness key is named after the hub id; the log key after
    ``PUENTE_AUDIT_ORIGIN`` when it is set, or was when the key was made (a name that is not
    ``<id>/audit``), else after the hub id too."""
    setting, made_with = "PUENTE_HUB_ID", found.rsplit("/", 1)[0]
    if role == "log" and (app.config.get("AUDIT_ORIGIN") or not found.endswith(_ORIGIN_SUFFIX)):
        setting, made_with = "PUENTE_AUDIT_ORIGIN", found
    return MisnamedKey(
        role, MISNAMED, source, found=found, expected=expected, setting=setting, made_with=made_with
    )


#: The commonest causes in Spanish (the system's and the parsers' own words are English).
_CAUSES_ES = {
    "Permission denied": "permiso denegado",
    "Is a directory": "es una carpeta",
    "not ASCII text": "no es texto ASCII",
    "empty": "vacío",
}


def read_key_file(role: str, path: Path) -> tuple[str | None, KeyFault | None]:
    """The text of a key file, stripped, or why there is none. A file this user may not read
    is a fault of its own: reported, never raised, so every command still starts and says so."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # as Path.exists: no such file
        return None, KeyFault(role, MISSING, str(path))
    except OSError as error:  # permission denied, a folder in its place, an I/O error
        return None, KeyFault(role, UNREADABLE, str(path), error.strerror or str(error))
    try:
        return raw.decode("ascii").strip(), None
    except UnicodeDecodeError:
        return None, KeyFault(role, INVALID, str(path), "not ASCII text")


@dataclass(frozen=True)
class HubKeys:
    log: Signer | None
    witness: CosignatureSigner | None
    faults: tuple[KeyFault, ...] = ()

    @property
    def loaded(self) -> bool:
        return self.log is not None and self.witness is not None

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(fault.reason for fault in self.faults)


def audit_origin(app: Flask) -> str:
    return app.config.get("AUDIT_ORIGIN") or f"{app.config['HUB_ID']}{_ORIGIN_SUFFIX}"


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


def _load(app: Flask, role: str, path: Path) -> tuple[Any, KeyFault | None]:
    text = app.config.get(f"AUDIT_{role.upper()}_KEY")
    source = f"PUENTE_AUDIT_{role.upper()}_KEY"
    if not text:
        text, fault = read_key_file(role, path)
        if text is None:
            return None, fault
        source = str(path)
    try:
        signer = _PARSERS[role](text)
    except Exception as error:  # noqa: BLE001 - a bad key must not stop the hub from starting
        return None, KeyFault(role, INVALID, source, f"not a signed-note key: {error}")
    expected = audit_origin(app) if role == "log" else witness_name(app)
    if signer.name != expected:
        return None, _misnamed(app, role, source, signer.name, expected)
    return signer, None


def load_keys(app: Flask) -> HubKeys:
    paths = key_paths(app)
    log, log_fault = _load(app, "log", paths["log"])
    witness, witness_fault = _load(app, "witness", paths["witness"])
    faults = tuple(fault for fault in (log_fault, witness_fault) if fault)
    return HubKeys(log=log, witness=witness, faults=faults)


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
    ``puente init`` made; None when there is neither, or the file cannot be read (the portal
    then refuses logins; :func:`portal_secret_fault` says why)."""
    configured = app.config.get("PORTAL_SECRET_KEY")
    if configured:
        return str(configured)
    text, _fault = read_key_file("portal", portal_secret_path(app))
    return text or None


def portal_secret_fault(app: Flask) -> KeyFault | None:
    """Why the portal has no secret (read from its file now), or None."""
    if app.config.get("PORTAL_SECRET_KEY"):
        return None
    text, fault = read_key_file("portal", portal_secret_path(app))
    if fault is None and not text:  # an empty file, as a copy that failed leaves it
        fault = KeyFault("portal", INVALID, str(portal_secret_path(app)), "empty")
    return fault


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
