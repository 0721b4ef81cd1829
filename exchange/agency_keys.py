"""Ed25519 key pairs for agency systems (``private_key_jwt`` and ``Puente-Signature``).

Private keys are PKCS#8 PEM files readable by their owner only; public keys are PEM and JWK,
named by their RFC 7638 thumbprint (the ``kid`` the agency puts in its JWS headers).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import OKPKey


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


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: an existing key is never overwritten by accident.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def generate_key_files(directory: Path, name: str) -> KeyFiles:
    """Write ``NAME.key`` (private, 0600), ``NAME.pub`` (PEM) and ``NAME.jwk`` (public JWK)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = OKPKey.generate_key("Ed25519")
    jwk = public_jwk(key)
    files = KeyFiles(
        kid=jwk["kid"],
        private_key=directory / f"{name}.key",
        public_key=directory / f"{name}.pub",
        public_jwk=directory / f"{name}.jwk",
    )
    _write_new(files.private_key, key.as_pem(private=True), 0o600)
    _write_new(files.public_key, key.as_pem(private=False), 0o644)
    _write_new(files.public_jwk, json.dumps(jwk, indent=2).encode() + b"\n", 0o644)
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
