"""``puente init`` never makes a key that would orphan what the database already holds.

``init`` creates whichever hub key is missing, which is right for a new hub. On a hub whose key
folder was lost, or restored from a stale backup, a new key would be worse than none: a new data
key encrypts new records while the old ones stay unreadable, and a new log key signs checkpoints
that oversight bodies, who pinned the old one, cannot verify — a log that looks forged. So when
the database already has rows under data keys the hub does not hold, or signed checkpoints while
the log key file is missing, ``init`` stops and says to restore the keys from the backup.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from exchange import db
from exchange.crypto import data_keyring, unloadable_keys
from exchange.keys import key_paths
from schemas.errors import BilingualError


class KeysWouldOrphanData(BilingualError):
    """A key ``init`` would create would leave data the hub holds unreadable or unverifiable."""


def refuse_keys_that_would_orphan_data(app: Flask) -> None:
    """Raise :class:`KeysWouldOrphanData` when ``init`` would create a data key while rows are
    encrypted under keys the hub does not hold, or a log key while the log has checkpoints."""
    if db.current_revision(app) is None:
        return  # a new database: nothing to orphan
    from exchange.audit_log import AuditCheckpoint

    keyring = data_keyring(app)
    with db.database(app).sessions() as session:
        keyring.reload()
        orphaned = unloadable_keys(session, keyring) if not keyring.key_ids else {}
        log_key = key_paths(app)["log"]
        checkpoints = 0
        if not app.config.get("AUDIT_LOG_KEY") and not log_key.exists():
            checkpoints = session.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0
    if orphaned:
        keys = ", ".join(f"{key_id} ({n})" for key_id, n in orphaned.items())
        raise KeysWouldOrphanData(
            f"La base de datos tiene filas cifradas con llaves que este nodo no tiene ({keys}) "
            f"y la carpeta {keyring.directory} está vacía: restáurela desde la copia de "
            "seguridad. No se creó ninguna llave: una nueva no descifraría esas filas.",
            f"The database has rows encrypted under keys this hub does not hold ({keys}) and "
            f"the folder {keyring.directory} is empty: restore it from the backup. No key was "
            "created: a new one would not decrypt those rows.",
        )
    if checkpoints:
        raise KeysWouldOrphanData(
            f"El registro de auditoría tiene {checkpoints} puntos de control firmados y falta "
            f"la llave del registro ({log_key}): restáurela desde la copia de seguridad. No se "
            "creó ninguna llave: con una nueva, los órganos de supervisión verían un registro "
            "firmado por otra llave.",
            f"The audit log has {checkpoints} signed checkpoints and the log key ({log_key}) "
            "is missing: restore it from the backup. No key was created: with a new one, "
            "oversight bodies would see a log signed by another key.",
        )
