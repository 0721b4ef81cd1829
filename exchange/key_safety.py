"""``puente init`` never makes a key that would orphan what the database already holds, nor
says a hub is ready whose keys it cannot use; and any command may ask which secrets other
users of the machine can read.

``init`` creates whichever hub key is missing, which is right for a new hub. On a hub whose key
folder was lost, or restored from a stale backup, a new key would be worse than none: a new data
key encrypts new records while the old ones stay unreadable, and a new log key signs checkpoints
that oversight bodies, who pinned the old one, cannot verify — a log that looks forged. So when
the database already has rows under data keys the hub does not hold, or signed checkpoints while
the log key file is missing, ``init`` stops and says to restore the keys from the backup.

A key that is there but cannot be used — a file this user may not read, a damaged file, a
setting that holds no key — is no key ``init`` should make again either: it stops, naming each.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path
from typing import NamedTuple

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import db
from exchange.config import INSTANCE_CONFIG_FILE
from exchange.crypto import data_keyring, unloadable_keys
from exchange.keys import (
    INVALID,
    LOADED_AT_START,
    MISSING,
    UNREADABLE,
    HubKeys,
    KeyFault,
    MisnamedKey,
    key_paths,
    load_keys,
    portal_secret_fault,
)
from schemas.errors import BilingualError


class KeysWouldOrphanData(BilingualError):
    """A key ``init`` would create would leave data the hub holds unreadable or unverifiable."""


class KeysUnusable(BilingualError):
    """Keys that are there but cannot be used (unreadable or damaged files, bad settings)."""


def signed_checkpoints(session: Session) -> int:
    from exchange.audit_log import AuditCheckpoint

    return session.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0


class LostKey(NamedTuple):
    """One of the hub's keys the database shows lost: its ``role`` (``data``, ``log``), and
    what was found, with what to do, in Spanish and English."""

    role: str
    spanish: str
    english: str


def lost_keys(app: Flask, *, any_held: bool = False) -> list[LostKey]:
    """The hub's own keys the database shows lost: rows encrypted under data keys the hub does
    not hold — when it holds none, or with ``any_held`` whatever it holds — and signed
    checkpoints while the log key file is missing. ``init`` refuses on these
    (:func:`refuse_keys_that_would_orphan_data`), the commands that run the hub warn of them
    (:func:`start_up_warnings`). Each says what was found and to restore from the backup."""
    if db.current_revision(app) is None:
        return []  # a new database: nothing to orphan
    keyring = data_keyring(app)
    with db.database(app).sessions() as session:
        keyring.reload()
        orphaned = unloadable_keys(session, keyring) if any_held or not keyring.key_ids else {}
        log_key = key_paths(app)["log"]
        checkpoints = 0
        if not app.config.get("AUDIT_LOG_KEY") and not log_key.exists():
            checkpoints = signed_checkpoints(session)
    found = []
    if orphaned:
        keys = ", ".join(f"{key_id} ({n})" for key_id, n in orphaned.items())
        folder = keyring.directory
        if keyring.key_ids:  # (a partial restore, a key file removed by hand)
            restore_es = f": restáurelas en la carpeta {folder} desde la copia de seguridad"
            restore_en = f": restore them to the folder {folder} from the backup"
        else:
            restore_es = (
                f" y la carpeta {folder} no tiene ninguna llave de datos: restáurela desde la "
                "copia de seguridad"
            )
            restore_en = f" and the folder {folder} holds no data key: restore it from the backup"
        found.append(
            LostKey(
                "data",
                "La base de datos tiene filas cifradas con llaves que este nodo no tiene "
                f"({keys}){restore_es}.",
                f"The database has rows encrypted under keys this hub does not hold ({keys})"
                f"{restore_en}.",
            )
        )
    if checkpoints:
        found.append(
            LostKey(
                "log",
                f"El registro de auditoría tiene {checkpoints} puntos de control firmados y "
                f"falta la llave del registro ({log_key}): restáurela desde la copia de "
                "seguridad.",
                f"The audit log has {checkpoints} signed checkpoints and the log key "
                f"({log_key}) is missing: restore it from the backup.",
            )
        )
    return found


#: Why ``init`` made no key in place of one of :func:`lost_keys` (Spanish, English), by role.
_NOTHING_MADE = {
    "data": (
        "No se creó ninguna llave: una nueva no descifraría esas filas.",
        "No key was created: a new one would not decrypt those rows.",
    ),
    "log": (
        "No se creó ninguna llave: con una nueva, los órganos de supervisión verían un "
        "registro firmado por otra llave.",
        "No key was created: with a new one, oversight bodies would see a log signed by "
        "another key.",
    ),
}


def refuse_keys_that_would_orphan_data(app: Flask) -> None:
    """Raise :class:`KeysWouldOrphanData` when ``init`` would create a data key while rows are
    encrypted under keys the hub does not hold, or a log key while the log has checkpoints."""
    found = lost_keys(app)
    if found:
        lost = found[0]
        why_es, why_en = _NOTHING_MADE[lost.role]
        raise KeysWouldOrphanData(f"{lost.spanish} {why_es}", f"{lost.english} {why_en}")


# -- keys that are there but cannot be used ---------------------------------------------------


def key_faults(app: Flask, hub: HubKeys) -> list[KeyFault]:
    """Why each hub key is not there to use: ``hub``'s log and witness keys (as loaded), the
    data keys (as the keyring holds them), the notification signing key and, when the app has
    no portal secret, the portal's file (both read now)."""
    faults = list(hub.faults)
    keyring = data_keyring(app)
    keyring.refresh_if_stale()
    data = keyring.faults
    if not keyring.key_ids and not data:
        data = [KeyFault("data", MISSING, str(keyring.directory))]
    faults += data
    signing = _signing_key_fault(app)
    portal = None if app.secret_key else portal_secret_fault(app)
    return faults + [fault for fault in (signing, portal) if fault is not None]


def _signing_key_fault(app: Flask) -> KeyFault | None:
    from exchange.transports import load_hub_signing_key, signing_key_path

    given = bool(app.config.get("HUB_SIGNING_KEY"))
    source = "PUENTE_HUB_SIGNING_KEY" if given else str(signing_key_path(app))
    try:
        load_hub_signing_key(app)
    except FileNotFoundError:
        return KeyFault("signing", MISSING, source)
    except OSError as error:
        return KeyFault("signing", UNREADABLE, source, error.strerror or str(error))
    except Exception as error:  # noqa: BLE001 - whatever the key library says of a non-key
        return KeyFault("signing", INVALID, source, str(error))
    return None


def unusable_keys_message(faults: list[KeyFault]) -> tuple[str, str]:
    """Each key that is there but cannot be used, and what to do (Spanish, English)."""
    listed_es = "; ".join(fault.described()[0] for fault in faults)
    listed_en = "; ".join(fault.described()[1] for fault in faults)
    todo_es, todo_en = [], []
    if any(fault.kind == UNREADABLE for fault in faults):
        user = _user_name()
        todo_es.append(
            f"puente se ejecuta aquí como {user}: ejecútelo como el dueño de esos archivos, o "
            f"déselos a {user} (chown {user} ARCHIVO; chmod 600 ARCHIVO, 700 si es carpeta)"
        )
        todo_en.append(
            f"puente runs here as {user}: run it as the owner of those files, or give them to "
            f"{user} (chown {user} FILE; chmod 600 FILE, 700 for a folder)"
        )
    if any(fault.kind == INVALID and not fault.given for fault in faults):
        todo_es.append("restaure los archivos dañados desde la copia de seguridad")
        todo_en.append("restore the damaged files from the backup")
    misnamed = [fault for fault in faults if isinstance(fault, MisnamedKey)]
    # The origin and the witness's name never change: peers pinned them, oversight bodies
    # verify against them, and the log's entries carry the hub id.
    made_for = ", ".join(
        sorted({fault.made_with for fault in misnamed if fault.setting == "PUENTE_HUB_ID"})
    )
    if made_for:
        todo_es.append(
            f"vuelva a poner PUENTE_HUB_ID={made_for}, el id con que se creó el nodo: el "
            "origen del registro no cambia nunca"
        )
        todo_en.append(
            f"set PUENTE_HUB_ID={made_for} again, the id the hub was made with: the log's "
            "origin never changes"
        )
    origin = ", ".join(
        sorted({fault.made_with for fault in misnamed if fault.setting == "PUENTE_AUDIT_ORIGIN"})
    )
    if origin:
        todo_es.append(
            f"vuelva a poner PUENTE_AUDIT_ORIGIN en {origin}, el origen con que se creó el "
            "registro: el origen del registro no cambia nunca"
        )
        todo_en.append(
            f"set PUENTE_AUDIT_ORIGIN back to {origin}, the origin the log was made with: "
            "the log's origin never changes"
        )
    if any(fault.given for fault in faults):
        todo_es.append("corrija la configuración que da la llave")
        todo_en.append("correct the setting that gives the key")
    # The data key files are read again as they change (exchange.crypto); the rest are not.
    if any(fault.role in LOADED_AT_START or fault.given for fault in faults):
        todo_es.append(
            "después reinicie el nodo si está en marcha (serve y los workers): lee esas "
            "llaves solo al arrancar"
        )
        todo_en.append(
            "then restart the hub if it runs (serve and workers): it reads those keys only as "
            "it starts"
        )
    return (
        f"Estas llaves del nodo existen pero no se pueden usar: {listed_es}. {_sentence(todo_es)}",
        f"These hub keys are there but cannot be used: {listed_en}. {_sentence(todo_en)}",
    )


def _sentence(clauses: list[str]) -> str:
    text = "; ".join(clauses)
    return f"{text[:1].upper()}{text[1:]}."


def _user_name(uid: int | None = None) -> str:
    """The name of the user ``uid`` (who this process runs as by default), or its id when it
    has none."""
    import pwd

    uid = os.geteuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def refuse_unusable_keys(app: Flask) -> None:
    """Raise :class:`KeysUnusable` when a hub key is there but cannot be used: ``init`` would
    make none in its place, and must not report the hub ready without it."""
    data_keyring(app).reload()
    faults = [fault for fault in key_faults(app, load_keys(app)) if fault.kind != MISSING]
    if faults:
        es, en = unusable_keys_message(faults)
        raise KeysUnusable(f"{es} No se creó ninguna llave.", f"{en} No key was created.")


# -- secrets other users may read -------------------------------------------------------------


#: Group and other write permission: whoever may change puente.cfg (run as Python at every
#: start) or put files in the instance folder runs code as the hub.
WRITABLE_BY_OTHERS = 0o022
#: A new instance folder: its owner's, its group may enter it (an office reading a file drop
#: inside it, docs/adapters.md); nobody else.
INSTANCE_FOLDER_MODE = 0o750


def loose_settings(app: Flask) -> list[Path]:
    """puente.cfg when anyone but its owner may read or change it (it may hold
    ``DATA_KEY`` and the database's password), and the instance folder when others may
    write in it: either lets another user of the machine run code as the hub."""
    instance = Path(app.instance_path)
    loose = []
    config_file = instance / INSTANCE_CONFIG_FILE
    for path, bits in ((config_file, 0o077), (instance, WRITABLE_BY_OTHERS)):
        try:
            mode = path.stat().st_mode  # a link: what it points to is what runs
        except OSError:
            continue
        if mode & bits:
            loose.append(path)
    return loose


def private_mode(app: Flask, path: Path) -> int:
    """The mode ``puente init`` gives one of :func:`exposed_secrets`: the instance folder
    loses only the write permission of others (an office may read a file drop in it), other
    folders are 0700, files 0600."""
    mode = path.stat().st_mode
    if path == Path(app.instance_path) and path not in _key_folders(app):
        return stat.S_IMODE(mode) & ~WRITABLE_BY_OTHERS
    return 0o700 if stat.S_ISDIR(mode) else 0o600


def _key_folders(app: Flask) -> list[Path]:
    instance = Path(app.instance_path)
    parents = {path.parent for path in key_paths(app).values()}
    return list(dict.fromkeys([instance / "keys", *parents]))


def exposed_secrets(app: Flask) -> list[Path]:
    """The hub's secrets that users other than their owner may read (any group or other
    permission): the SQLite database (the child index is in it, in clear) with its -wal and
    -shm files, and the key folders with what they hold; and the settings others may read or
    change (:func:`loose_settings`). Hubs made by earlier versions, or files copied in by
    hand (a restore), may be so; ``puente init`` closes them."""
    candidates: list[Path] = []
    database = db.database(app)
    if database.is_sqlite and database.url.database not in (None, "", ":memory:"):
        main = Path(str(database.url.database))
        if not str(main).startswith("file:"):
            candidates += [main, Path(f"{main}-wal"), Path(f"{main}-shm")]
    for folder in _key_folders(app):
        try:
            if folder.is_dir():
                candidates.append(folder)
                candidates += sorted(folder.rglob("*"))
        except OSError:
            continue  # a folder this user may not read: reported as an unreadable key
    exposed = []
    for path in candidates:
        try:
            mode = path.lstat().st_mode
        except OSError:
            continue
        if not stat.S_ISLNK(mode) and mode & 0o077:
            exposed.append(path)
    return list(dict.fromkeys(loose_settings(app) + exposed))


class SecretsOfAnotherUser(BilingualError):
    """Secrets others may read that ``init`` may not make private: another user owns them (a
    restore made as root, say), and only their owner or root may change their mode."""

    def __init__(self, paths: list[Path], app: Flask | None = None) -> None:
        user = _user_name()
        owned_es, owned_en, commands = [], [], []
        for path in paths:
            try:
                owner = _user_name(path.lstat().st_uid)
            except OSError:
                owner = "?"
            owned_es.append(f"{path} (de {owner})")
            owned_en.append(f"{path} (owned by {owner})")
            name, mode = shlex.quote(str(path)), _chmod_argument(path, app)
            commands.append(f"chown {shlex.quote(user)} {name}; chmod {mode} {name}")
        todo = "; ".join(commands)
        super().__init__(
            "Otros usuarios de esta máquina pueden leer estos secretos del nodo y 'puente init' "
            f"no puede cambiarlos, porque son de otro usuario: {', '.join(owned_es)}. Déselos "
            f"al usuario que ejecuta el nodo ({user}) y luego chmod 600 (700 si es carpeta), "
            f"como root: {todo}; después ejecute 'puente init' otra vez.",
            "Other users of this machine can read these hub secrets and 'puente init' may not "
            f"change them, as another user owns them: {', '.join(owned_en)}. Chown them to the "
            f"user the hub runs as ({user}), then chmod 600 (700 for a folder), as root: "
            f"{todo}; then run 'puente init' again.",
        )
        self.paths = paths


def init_would_refuse(app: Flask) -> bool:
    """Whether ``puente init`` would stop on this hub, making nothing private either: a key
    there but unusable, or one it must not make again (a restore drill's copy: signed
    checkpoints, no log key). A database that cannot be asked now: False."""
    from sqlalchemy.exc import DBAPIError

    if any(fault.kind != MISSING for fault in key_faults(app, load_keys(app))):
        return True
    try:
        refuse_keys_that_would_orphan_data(app)
    except KeysWouldOrphanData:
        return True
    except DBAPIError:
        return False
    return False


def exposed_secrets_message(
    paths: list[Path], init_refuses: bool = False, app: Flask | None = None
) -> tuple[str, str]:
    """What to do about :func:`exposed_secrets` (Spanish, English): the commands to run, and
    ``puente init`` unless it would refuse (:func:`init_would_refuse`). With ``app``, the
    instance folder's command is the one init would apply (:func:`private_mode`)."""
    commands = _chmod_commands(paths, app)
    reads_es, reads_en = "leer", "read"
    why_es = "la base de datos guarda el índice de niños en claro; las llaves descifran todo"
    why_en = "the database holds the child index in clear; the keys decrypt everything"
    if any(_is_setting(path, app) for path in paths):
        reads_es, reads_en = "leer (o cambiar)", "read (or change)"
        why_es += (
            "; quien cambia puente.cfg, que se ejecuta como Python, o pone archivos en la "
            "carpeta del nodo, ejecuta código como el nodo"
        )
        why_en += (
            "; whoever changes puente.cfg, run as Python, or puts files in the instance "
            "folder, runs code as the hub"
        )
    if init_refuses:
        return (
            f"otros usuarios de esta máquina pueden {reads_es} secretos del nodo ({why_es}): "
            f"déjelos solo para su dueño: {commands}",
            f"other users of this machine can {reads_en} the hub's secrets ({why_en}): make "
            f"them readable by their owner only: {commands}",
        )
    return (
        f"otros usuarios de esta máquina pueden {reads_es} secretos del nodo ({why_es}): "
        f"ejecute 'puente init', que los deja solo para su dueño, o {commands}",
        f"other users of this machine can {reads_en} the hub's secrets ({why_en}): run "
        f"'puente init', which makes them readable by their owner only, or {commands}",
    )


def _is_setting(path: Path, app: Flask | None) -> bool:
    """puente.cfg, or (with ``app``) the instance folder: what :func:`loose_settings` finds."""
    return path.name == INSTANCE_CONFIG_FILE or (
        app is not None and path == Path(app.instance_path)
    )


def _chmod_commands(paths: list[Path], app: Flask | None) -> str:
    """``chmod 600 FILES; chmod 700 FOLDERS; chmod go-w INSTANCE_FOLDER``, quoted for a
    shell."""
    by_mode: dict[str, list[str]] = {"600": [], "700": []}
    for path in paths:
        by_mode.setdefault(_chmod_argument(path, app), []).append(shlex.quote(str(path)))
    return "; ".join(f"chmod {mode} {' '.join(names)}" for mode, names in by_mode.items() if names)


def _chmod_argument(path: Path, app: Flask | None) -> str:
    """``600``, ``700``, or ``go-w`` for the instance folder (:func:`private_mode`)."""
    if app is not None and path == Path(app.instance_path):
        try:
            mode = private_mode(app, path)
        except OSError:
            return "go-w"
        return f"{mode:o}" if mode in (0o600, 0o700) else "go-w"
    return "700" if path.is_dir() else "600"


#: What a hub that runs without one of :func:`lost_keys` cannot do (Spanish, English), by role.
_UNTIL_RESTORED = {
    "data": (
        "Hasta entonces el nodo no puede leer esas filas.",
        "Until then the hub cannot read those rows.",
    ),
    "log": (
        "Hasta entonces el nodo no firma ningún punto de control; reinicie serve y los "
        "workers cuando la haya restaurado (la leen solo al arrancar). En la copia de un "
        "simulacro de restauración, que nunca debe tenerla, es lo esperado.",
        "Until then the hub signs no checkpoint; restart serve and the workers once it is "
        "back (they read it only as they start). On a restore drill's copy, which must never "
        "have it, this is expected.",
    ),
}


def start_up_warnings(app: Flask, hub: HubKeys) -> list[tuple[str, str]]:
    """What a command that runs the hub (``serve``, ``worker``, ``db upgrade``) warns of as it
    starts (Spanish, English): keys that are there but cannot be used, keys the database shows
    lost (what ``init`` refuses on: :func:`lost_keys`, a wrong ``PUENTE_DATA_KEYS_DIR`` or
    ``PUENTE_AUDIT_LOG_KEY_FILE`` too), and secrets others may read. The hub runs anyway
    (``/readyz`` reports them; a restore drill serves its copy so), but the operator starting
    it should not have to find out from the clients."""
    from sqlalchemy.exc import SQLAlchemyError

    warnings = []
    faults = [fault for fault in key_faults(app, hub) if fault.kind != MISSING]
    if faults:
        warnings.append(unusable_keys_message(faults))
    try:
        lost = lost_keys(app, any_held=True)
    except SQLAlchemyError:  # a database down now (serve starts anyway) or at an old schema
        lost = []
    for found in lost:
        then_es, then_en = _UNTIL_RESTORED[found.role]
        warnings.append((f"{found.spanish} {then_es}", f"{found.english} {then_en}"))
    exposed = exposed_secrets(app)
    if exposed:
        warnings.append(exposed_secrets_message(exposed, init_would_refuse(app), app))
    return warnings
