"""Ed25519 key pairs for agency systems (``private_key_jwt`` and ``Puente-Signature``).

Private keys are PKCS#8 PEM files readable by their owner only; public keys are PEM and JWK,
named by their RFC 7638 thumbprint (the ``kid`` the agency puts in its JWS headers).
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import OKPKey

from schemas.errors import BilingualError


@dataclass(frozen=True)
class KeyFiles:
    kid: str
    private_key: Path
    public_key: Path
    public_jwk: Path

    def to_json(self) -> dict[str, str]:
        return {
            "kid": self.kid,
            "private_key": str(self.private_key),
            "public_key": str(self.public_key),
            "public_jwk": str(self.public_jwk),
        }


def public_jwk(key: OKPKey) -> dict[str, Any]:
    """The public half as a JWK carrying its thumbprint as ``kid``."""
    jwk = key.as_dict(private=False)
    return {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "kid": key.thumbprint()}


class FolderError(BilingualError):
    """A folder that could not be created or written to: names it and says why."""

    def __init__(self, folder: Path, error: OSError, *, writing: bool = False) -> None:
        cause_es, cause_en = _folder_cause(error, writing)
        if writing:
            super().__init__(
                f"No se puede escribir en la carpeta {folder}: {cause_es}.",
                f"Cannot write to the folder {folder}: {cause_en}.",
            )
        else:
            super().__init__(
                f"No se puede crear la carpeta {folder}: {cause_es}.",
                f"Cannot create the folder {folder}: {cause_en}.",
            )
        self.folder = folder


def _folder_cause(error: OSError, writing: bool) -> tuple[str, str]:
    if isinstance(error, PermissionError):
        return "sin permiso", "permission denied"
    if isinstance(error, NotADirectoryError):
        return "una parte de la ruta es un archivo", "part of the path is a file"
    if isinstance(error, FileExistsError):  # mkdir's: a file has the folder's name
        taken = error.filename or "?"
        return f"{taken} ya existe y no es una carpeta", f"{taken} exists and is not a folder"
    if isinstance(error, FileNotFoundError):  # the parents exist: this place takes no new ones
        if writing:
            return "ahí no se pueden crear archivos", "no file can be created there"
        return "ahí no se pueden crear carpetas", "no folder can be created there"
    if error.errno == errno.EROFS:
        return "el sistema de archivos es de solo lectura", "the file system is read-only"
    if error.errno == errno.ENOSPC:
        return "no queda espacio en el disco", "no space left on the device"
    reason = error.strerror or str(error)
    return reason, reason


def make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the folders made, innermost first.
    On failure (:class:`FolderError`) the parents it made are removed again."""
    missing = [path for path in (folder, *folder.parents) if not os.path.lexists(path)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        remove_folders(missing)
        raise FolderError(folder, error) from error
    return missing


def remove_folders(folders: list[Path]) -> None:
    """Remove the folders :func:`make_folder` made (innermost first), those left empty only."""
    for path in folders:
        if not os.path.isdir(path):
            continue  # the folder that failed: never made
        try:
            path.rmdir()
        except OSError:
            return  # not empty (someone else's now): leave it and its parents


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: an existing key is never overwritten by accident.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


#: A key files' base name: one plain file name, not hidden, not a path.
KEY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")


def generate_key_files(directory: Path, name: str) -> KeyFiles:
    """Write ``NAME.key`` (private, 0600), ``NAME.pub`` (PEM) and ``NAME.jwk`` (public JWK)
    into ``directory`` (absolute paths in the answer). Nothing is written when any of the three
    exists already (:class:`FileExistsError`), ``name`` is not a plain file name
    (:class:`ValueError`) or the folder cannot be made or written to (:class:`FolderError`):
    never a private key without its public halves, never a file outside ``directory``."""
    if not KEY_NAME.match(name):
        raise ValueError(
            f"el nombre {name!r} no es válido: letras, cifras, '.', '_' o '-', sin '/' ni "
            f"punto inicial / the name {name!r} is not valid: letters, digits, '.', '_' or '-', "
            "no '/' and no leading dot"
        )
    directory = directory.resolve()
    key = OKPKey.generate_key("Ed25519")
    jwk = public_jwk(key)
    files = KeyFiles(
        kid=jwk["kid"],
        private_key=directory / f"{name}.key",
        public_key=directory / f"{name}.pub",
        public_jwk=directory / f"{name}.jwk",
    )
    contents = (
        (files.private_key, key.as_pem(private=True), 0o600),
        (files.public_key, key.as_pem(private=False), 0o644),
        (files.public_jwk, json.dumps(jwk, indent=2).encode() + b"\n", 0o644),
    )
    for path, _content, _mode in contents:
        if path.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(path))
    made = make_folder(directory)
    written: list[Path] = []
    try:
        for path, content, mode in contents:
            _write_new(path, content, mode)
            written.append(path)
    except BaseException as error:
        for path in written:  # a file made meanwhile: leave no half of the pair behind
            path.unlink(missing_ok=True)
        remove_folders(made)
        if isinstance(error, OSError) and not isinstance(error, FileExistsError):
            raise FolderError(directory, error, writing=True) from error
        raise
    return files


def load_public_jwk(path: Path) -> dict[str, Any]:
    """Read an Ed25519 public key from a PEM or JWK file; refuse anything else."""
    data = path.read_bytes()
    try:
        if data.lstrip().startswith(b"{"):
            key = OKPKey.import_key(json.loads(data))
        else:
            key = OKPKey.import_key(data)
    except Exception as error:
        raise ValueError(f"{path} is not an Ed25519 public key (PEM or JWK): {error}") from error
    if key.as_dict(private=False).get("crv") != "Ed25519":
        raise ValueError(f"{path} is not an Ed25519 key")
    return public_jwk(key)


def load_private_key(path: Path) -> OKPKey:
    key = OKPKey.import_key(path.read_bytes())
    if not key.is_private:
        raise ValueError(f"{path} holds no private key")
    return key
