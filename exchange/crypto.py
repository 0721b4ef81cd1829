"""Encryption at rest of record bodies: PyNaCl SecretBox under rotatable data keys.

Data keys live outside the database, like every hub key:

- files ``<instance>/keys/data/<key_id>.key`` (setting ``DATA_KEYS_DIR``), each holding 32
  random bytes in base64, mode 0600; ``puente init`` creates the first one;
- and/or ``PUENTE_DATA_KEY`` = ``key_id:base64key[,key_id:base64key…]`` (setting ``DATA_KEY``).

Every stored body row carries the id of the key that encrypted it. New bodies are encrypted
with the *current* key. When ``PUENTE_DATA_KEY`` is set, only its keys encrypt: the current key
is its last entry (the README tells operators to add a new key at the end), and the key files
only decrypt (a file key must not take over: a hub on several hosts shares its keys through
the setting, and the other hosts would not have the file). Otherwise the current key is the key
file with the greatest id, runs of digits compared as numbers (:func:`key_order`: a
hand-named ``prod-key-10`` follows ``prod-key-9``); key ids made here are ``dk_<UTC
time>_<random>``, so a newer key sorts later. Every key given decrypts, whichever encrypts, so
a hub whose rows are under the key an earlier rule chose still reads them. ``puente keys
rotate-data-key`` writes a new key file and re-encrypts old rows in committed batches (run it
again to resume); while the setting gives the current key it makes no file
(:class:`DataKeysFromSetting` says how to rotate then). Old keys stay until no row uses them,
and the hub never deletes a key by itself.

A key's text is never written into a message or a log line: an entry of ``PUENTE_DATA_KEY``
that is not ``key_id:base64key`` is named by its position (and its id only when that part is
well-formed and cannot itself be a key), as an operator may have put the key where the id goes.

Running hub processes notice a new key file within :data:`RELOAD_SECONDS`, and reload at once
when they meet a row encrypted under a key they do not know yet.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
from flask import Flask, current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from exchange.config import resolve_instance_file
from exchange.keys import INVALID, MISSING, UNREADABLE, KeyFault, read_key_file

#: Under "puente", so its lines are JSON like the rest (exchange.logs).
_log = logging.getLogger("puente.crypto")

RELOAD_SECONDS = 5.0
KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class DataKeyError(Exception):
    """A data key is missing or unusable, or a body does not decrypt. ``key_id`` and
    ``missing`` say which key a body needed and whether the hub has it at all; ``spanish`` is
    the message in Spanish when a person may read it (a key's fault, :class:`DataKeyFault`);
    ``cannot_use`` the kind of fault (:data:`~exchange.keys.UNREADABLE`…) of the keys when no
    key can encrypt, which is not a body that does not decrypt."""

    def __init__(
        self,
        message: str,
        *,
        key_id: str | None = None,
        missing: bool = False,
        spanish: str | None = None,
        cannot_use: str | None = None,
    ):
        super().__init__(message)
        self.key_id = key_id
        self.missing = missing
        self.spanish = spanish or message
        self.cannot_use = cannot_use


class DataKeySettingBroken(DataKeyError):
    """``PUENTE_DATA_KEY`` is set but gives no usable key: no new key is made meanwhile, as the
    key the setting was meant to give may be the newest, the one that encrypts."""

    def __init__(self, faults: list[KeyFault]) -> None:
        es = "; ".join(fault.described()[0] for fault in faults)
        en = "; ".join(fault.described()[1] for fault in faults)
        self.message_es = (
            f"PUENTE_DATA_KEY no da una llave utilizable ({es}): no se crea ninguna llave de "
            "datos nueva mientras tanto. Corrija PUENTE_DATA_KEY (o quítelo) y vuelva a "
            "ejecutar el comando"
        )
        self.message_en = (
            f"PUENTE_DATA_KEY gives no usable key ({en}): no new data key is made meanwhile. "
            "Correct PUENTE_DATA_KEY (or unset it) and run the command again"
        )
        super().__init__(f"{self.message_en} / {self.message_es}", spanish=self.message_es)

    def message(self, lang: str = "en") -> str:
        return self.message_es if lang == "es" else self.message_en


class DataKeysFromSetting(DataKeyError):
    """``PUENTE_DATA_KEY`` gives the key that encrypts (``current``): a new key file would not
    become the current one (:meth:`DataKeyring.current`), and the hub's other hosts, which
    share their keys through the setting, would not have it. So no file is made; the message
    says how to rotate such a key."""

    def __init__(self, current: str) -> None:
        new_key = "$(head -c 32 /dev/urandom | base64)"
        resume = "'puente keys rotate-data-key --resume'"
        self.message_es = (
            f"PUENTE_DATA_KEY da la llave de datos que cifra ({current}): una llave nueva en "
            "la carpeta de llaves no sería la actual, y los demás servidores del nodo no la "
            "tendrían. No se creó ninguna llave. Para rotarla: agregue la llave nueva al final "
            f"de PUENTE_DATA_KEY (la última entrada es la que cifra), con un id nuevo (p. ej. "
            f"…,{current}-2:{new_key}), reinicie todos los procesos del nodo (serve y los "
            f"workers, en cada servidor) y ejecute {resume} para volver a cifrar las filas; "
            "quite la llave vieja solo cuando aparezca en unused_keys. O pase las llaves a "
            "archivos (<carpeta de llaves>/<id>.key, modo 0600) y quite PUENTE_DATA_KEY"
        )
        self.message_en = (
            f"PUENTE_DATA_KEY gives the data key that encrypts ({current}): a new key in the "
            "key folder would not be the current one, and the hub's other servers would not "
            "have it. No key was made. To rotate it: add the new key at the end of "
            f"PUENTE_DATA_KEY (its last entry is the one that encrypts), with a new id (e.g. "
            f"…,{current}-2:{new_key}), restart every hub process (serve and the workers, "
            f"on every server) and run {resume} to re-encrypt the rows; remove the old key "
            "only once it is listed in unused_keys. Or move the keys to files "
            "(<key folder>/<id>.key, mode 0600) and unset PUENTE_DATA_KEY"
        )
        super().__init__(f"{self.message_en} / {self.message_es}", spanish=self.message_es)

    def message(self, lang: str = "en") -> str:
        return self.message_es if lang == "es" else self.message_en


@dataclass(frozen=True)
class DataKeyFault(KeyFault):
    """A data key (file or setting) that is not a key, with its cause in Spanish too: the
    causes are the keyring's own words (:func:`_decode_key`). ``source_es``: the source in
    Spanish, when it has words (an entry of the setting, by its position)."""

    cause_es: str = ""
    source_es: str = ""

    def described(self) -> tuple[str, str]:
        es, en = super().described()
        if self.kind == INVALID and (self.cause_es or self.source_es):
            es = (
                f"{self.source_es or self.source}: no es una llave válida "
                f"({self.cause_es or self.cause})"
            )
        return es, en


@dataclass(frozen=True)
class DataKey:
    id: str
    box: nacl.secret.SecretBox
    source: str


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError("not base64", spanish="no está en base64") from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError(
            f"{len(raw)} bytes, want {KEY_BYTES}",
            spanish=f"{len(raw)} bytes, se esperaban {KEY_BYTES}",
        )
    return raw


def key_order(key_id: str) -> tuple[tuple[str | int, ...], str]:
    """How key files' ids sort, the greatest being the current key: as text, but with each run
    of digits compared as a number (``prod-key-9`` < ``prod-key-10``, which text puts the other
    way round). ``dk_…`` ids, whose times have a fixed width, sort as their text does. Splitting
    on digit runs puts text at even places and numbers at odd ones, so two ids always compare
    like with like; the id itself breaks ties (``k01``, ``k1``)."""
    parts = re.split(r"(\d+)", key_id)
    return tuple(int(part) if place % 2 else part for place, part in enumerate(parts)), key_id


def new_key_id() -> str:
    return f"dk_{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}_{secrets.token_hex(3)}"


#: Ids this long are never shown: a key's text is 43 or 44 characters in base64, and an
#: operator may have put it (or most of it) where the id goes.
_SHOWN_ID_MAX = 39


def _entry_sources(position: int, entry: str) -> tuple[str, str]:
    """How a fault names an entry of ``PUENTE_DATA_KEY`` (English, Spanish): by its position,
    with its id when the entry is ``key_id:…`` with a well-formed id too short to be a key —
    never by its text, which may be the key itself (``k1;<key>`` has no ``:``)."""
    key_id, colon, _text = entry.partition(":")
    shown = colon and _KEY_ID.match(key_id) and len(key_id) <= _SHOWN_ID_MAX
    named = f", {key_id}" if shown else ""
    return (
        f"PUENTE_DATA_KEY (entry {position}{named})",
        f"PUENTE_DATA_KEY (entrada {position}{named})",
    )


def setting_keys(setting: str) -> tuple[dict[str, DataKey], list[KeyFault]]:
    """The keys ``PUENTE_DATA_KEY`` gives (``key_id:base64key[,…]``), in the order of the
    setting (an id given twice takes the place, and the key, of its last entry), and a fault
    for each entry that is not one, naming the entry by its position (:func:`_entry_sources`)."""
    keys: dict[str, DataKey] = {}
    faults: list[KeyFault] = []
    entries = filter(None, (part.strip() for part in setting.split(",")))
    for position, entry in enumerate(entries, start=1):
        key_id, _, text = entry.partition(":")
        try:
            if not _KEY_ID.match(key_id) or not text:
                raise DataKeyError(
                    "entries are key_id:base64key",
                    spanish="cada entrada es id_de_llave:llave_en_base64",
                )
            raw = _decode_key(text)
            keys.pop(key_id, None)  # (the last entry is the current key: keep the order)
            keys[key_id] = DataKey(key_id, nacl.secret.SecretBox(raw), "environment")
        except DataKeyError as error:
            source, source_es = _entry_sources(position, entry)
            faults.append(
                DataKeyFault("data", INVALID, source, str(error), error.spanish, source_es)
            )
    return keys, faults


class DataKeyring:
    """The data keys of one hub: encrypt with the current key, decrypt with any."""

    def __init__(self, directory: Path, environment_keys: str | None = None) -> None:
        self.directory = directory
        self.environment_keys = environment_keys or ""
        self._lock = threading.Lock()
        self._keys: dict[str, DataKey] = {}
        #: The ids PUENTE_DATA_KEY gives, in its order: when it is set, only they encrypt, the
        #: last one first.
        self._given: tuple[str, ...] = ()
        self._faults: list[KeyFault] = []
        self._stamp: float | None = None
        self._checked = 0.0
        self.reload()

    # -- loading ---------------------------------------------------------------------------

    def _directory_stamp(self) -> float | None:
        try:
            return self.directory.stat().st_mtime_ns / 1e9
        except OSError:  # not there, or a folder above it this user may not enter
            return None

    def _key_files(self) -> tuple[list[Path], list[KeyFault]]:
        """The folder's key files, or why it cannot be listed (a folder that is not there has
        none: that is a missing key, not a fault of the folder)."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.directory))
        except (FileNotFoundError, NotADirectoryError):  # ("init" says why it cannot make it)
            return [], []
        except OSError as error:  # glob would say "no files" for a folder it may not read
            cause = error.strerror or str(error)
            return [], [KeyFault("data", UNREADABLE, str(self.directory), cause)]
        return [self.directory / name for name in names if name.endswith(".key")], []

    @property
    def setting_gives_keys(self) -> bool:
        """Whether ``PUENTE_DATA_KEY`` is set: then only its keys encrypt."""
        return bool(self.environment_keys.replace(",", "").strip())

    def reload(self) -> None:
        keys, faults = setting_keys(self.environment_keys)
        given = tuple(keys)
        stamp = self._directory_stamp()
        paths, folder_faults = self._key_files()
        faults += folder_faults
        for path in paths:
            contents, fault = read_key_file("data", path)
            if contents is not None:
                try:
                    box = nacl.secret.SecretBox(_decode_key(contents))
                    keys[path.stem] = DataKey(path.stem, box, str(path))
                except DataKeyError as error:
                    fault = DataKeyFault("data", INVALID, str(path), str(error), error.spanish)
            if fault is not None and fault.kind != MISSING:  # (one removed meanwhile: gone)
                faults.append(fault)
        with self._lock:
            self._keys, self._given, self._faults, self._stamp = keys, given, faults, stamp
            self._checked = time.monotonic()

    def refresh_if_stale(self) -> None:
        """Reload if the folder changed, or while a key did not load, looking at most every
        :data:`RELOAD_SECONDS`: a chmod, chown or restore of a key file leaves the folder's
        mtime as it was, and mending the file must not need a restart."""
        now = time.monotonic()
        if now - self._checked < RELOAD_SECONDS:
            return
        self._checked = now
        if self._faults or self._directory_stamp() != self._stamp:
            self.reload()

    # -- use ---------------------------------------------------------------------------------

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    @property
    def faults(self) -> list[KeyFault]:
        """The key files (or settings) that did not load: each says why."""
        return list(self._faults)

    @property
    def problems(self) -> list[str]:
        return [fault.reason for fault in self._faults]

    def current(self) -> DataKey:
        """The key that encrypts: the last usable entry of ``PUENTE_DATA_KEY`` when it is set
        (its keys alone: a file must not take over, whatever its id), else the key file with
        the greatest id (:func:`key_order`)."""
        self.refresh_if_stale()
        given = self.setting_gives_keys
        if given:
            if not self._given:
                raise self._no_current_key(given)
            return self._keys[self._given[-1]]
        if not self._keys:
            raise self._no_current_key(given)
        return self._keys[max(self._keys, key=key_order)]

    def _no_current_key(self, given: bool) -> DataKeyError:
        """Why no key can encrypt: keys that are there but unusable (only the setting's, when
        it is set), else none at all."""
        unusable = [
            fault for fault in self._faults if fault.kind != MISSING and (fault.given or not given)
        ]
        if unusable:
            # A key is there: 'puente init' would refuse to make one. A file is read again
            # (refresh_if_stale); the setting only as the process starts.
            todo = []
            if any(not fault.given for fault in unusable):
                todo.append(
                    "let the user the hub runs as read the file (chown, chmod 600) or restore "
                    f"a damaged one from the backup: it is loaded within {RELOAD_SECONDS:g} s, "
                    "without a restart"
                )
            if any(fault.given for fault in unusable):
                todo.append("correct PUENTE_DATA_KEY, then restart the hub")
            reasons = "; ".join(fault.reason for fault in unusable)
            kinds = {fault.kind for fault in unusable}
            return DataKeyError(
                f"no data key can be used: {reasons}. To do: {'; '.join(todo)}",
                cannot_use=UNREADABLE if UNREADABLE in kinds else INVALID,
            )
        # Whether 'puente init' may make one depends on what the database holds, which
        # the keyring does not see (exchange.key_safety): both cases, as init decides.
        return DataKeyError(
            f"no data key in {self.directory} or PUENTE_DATA_KEY: 'puente init' makes the "
            "first one, unless rows are encrypted already (then restore the key folder "
            "from the backup)",
            cannot_use=MISSING,
        )

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        """``(key_id, nonce ‖ ciphertext)`` under the current key (random 24-byte nonce)."""
        key = self.current()
        return key.id, bytes(key.box.encrypt(plaintext))

    def decrypt(self, key_id: str, ciphertext: bytes) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            self.reload()  # rotated by another process since we loaded
            key = self._keys.get(key_id)
            if key is None:
                raise DataKeyError(
                    f"data key {key_id} is not available to this hub", key_id=key_id, missing=True
                )
        try:
            return bytes(key.box.decrypt(ciphertext))
        except nacl.exceptions.CryptoError:
            raise DataKeyError(
                f"a body does not decrypt with data key {key_id}", key_id=key_id
            ) from None


def data_keys_dir(app: Flask) -> Path:
    return resolve_instance_file(Path(app.instance_path), app.config["DATA_KEYS_DIR"])


def data_keyring(app: Flask | None = None) -> DataKeyring:
    """The app's keyring, loaded on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    keyring = app.extensions.get("puente.data_keys")
    if keyring is None:
        keyring = DataKeyring(data_keys_dir(app), app.config.get("DATA_KEY"))
        app.extensions["puente.data_keys"] = keyring
    return keyring  # type: ignore[no-any-return]


#: What a rotation waits past RELOAD_SECONDS: a push that took the old key just before the
#: reload may still be committing.
SETTLING_MARGIN_SECONDS = 2.0


def key_settling_seconds(app: Flask, key_id: str) -> float:
    """How much longer running servers may still encrypt with the key before ``key_id``: time
    left until every one has reloaded its key folder since the key's file appeared. 0 for a
    key given in the environment (no server reloads it) or long settled."""
    path = data_keys_dir(app) / f"{key_id}.key"
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
    return max(0.0, RELOAD_SECONDS + SETTLING_MARGIN_SECONDS - age)


def generate_data_key(
    app: Flask, *, before_use: Callable[[str], None] | None = None
) -> tuple[str, Path]:
    """Write a new data key file (mode 0600, never overwriting); it becomes the current key.

    ``before_use(key_id)`` runs once the key is written but before any hub process can load
    it (``puente keys rotate-data-key`` commits the key change's audit entry there). If it
    raises, the key file is removed and nothing has changed. While ``PUENTE_DATA_KEY`` is set
    but broken, no key is made (:class:`DataKeySettingBroken`); while it gives the current key
    neither, as a file would not become current (:class:`DataKeysFromSetting`)."""
    keyring = data_keyring(app)
    broken = [fault for fault in keyring.faults if fault.given]
    if broken:
        raise DataKeySettingBroken(broken)
    if keyring.setting_gives_keys:
        raise DataKeysFromSetting(keyring.current().id)
    directory = data_keys_dir(app)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_id = new_key_id()
    path = directory / f"{key_id}.key"
    # Written under a name keyrings skip (they load *.key), then linked to its own name,
    # which fails rather than overwrite: the key is in use only once before_use succeeded.
    staged = directory / f"{key_id}.key.new"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii") + "\n")
        if before_use is not None:
            before_use(key_id)
        os.link(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    data_keyring(app).reload()
    return key_id, path


def ensure_data_key(app: Flask) -> list[Path]:
    """Create the first data key unless one exists (``puente init``); returns files created."""
    keyring = data_keyring(app)
    keyring.reload()
    if keyring.key_ids:
        return []
    return [generate_data_key(app)[1]]


# -- rotation ----------------------------------------------------------------------------------


def _sealed_tables() -> list[tuple[Any, Any, Any]]:
    """Every table holding data encrypted under a data key: (model, key id column, ciphertext
    column). Record bodies, and the consents, views, overrides, withhold entries and access
    requests' justifications of the consent store."""
    from exchange.consent_store import (
        AccessRequestJustification,
        ChildViewRow,
        ConsentRow,
        OverrideRow,
        WithholdRow,
    )
    from exchange.records import RecordVersion

    tables: list[tuple[Any, Any, Any]] = [
        (RecordVersion, RecordVersion.data_key_id, RecordVersion.body_ciphertext)
    ]
    for model in (
        ConsentRow,
        ChildViewRow,
        OverrideRow,
        WithholdRow,
        AccessRequestJustification,
    ):
        tables.append((model, model.data_key_id, model.document_ciphertext))
    return tables


def rows_per_key(session: Session) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _model, key_column, _ciphertext in _sealed_tables():
        for key_id, count in session.execute(select(key_column, func.count()).group_by(key_column)):
            counts[key_id] = counts.get(key_id, 0) + count
    return counts


def unloadable_keys(session: Session, keyring: DataKeyring) -> dict[str, int]:
    """The data keys rows are encrypted under that ``keyring`` does not hold, with how many rows
    each: those rows cannot be read until the key is restored from a backup."""
    keyring.reload()
    held = set(keyring.key_ids)
    return {key_id: n for key_id, n in sorted(rows_per_key(session).items()) if key_id not in held}


#: How long /readyz trusts its last count of rows per key (a count reads every key column).
UNLOADABLE_CHECK_SECONDS = 60.0


def unloadable_keys_problem(app: Flask, sessions: sessionmaker[Session]) -> str | None:
    """For ``/readyz``: which keys rows need that this hub cannot load (say, the key folder was
    restored from a stale backup), checked at most every :data:`UNLOADABLE_CHECK_SECONDS` (a
    session is opened only then)."""
    cached = app.extensions.get("puente.unloadable_keys")
    now = time.monotonic()
    if cached is None or now - cached[0] > UNLOADABLE_CHECK_SECONDS:
        with sessions() as session:
            missing = unloadable_keys(session, data_keyring(app))
        cached = (now, ", ".join(f"{key_id} ({n} rows)" for key_id, n in missing.items()) or None)
        app.extensions["puente.unloadable_keys"] = cached
    return cached[1]  # type: ignore[no-any-return]


def unreadable_problem(error: DataKeyError) -> Any:
    """What a client is told when a row cannot be decrypted (the operator reads the log): a
    503 with ``Retry-After``, as for a database that cannot be used (exchange.httpbasics),
    since the hub itself is at fault and its operator can put the key back."""
    from exchange.problems import Problem, problem_response

    _log.error("data key: %s", error)
    detail = (
        "El nodo no puede descifrar estos datos: falta una de sus llaves de cifrado. El "
        "administrador del nodo debe restaurarla desde la copia de seguridad.",
        "The hub cannot decrypt this data: one of its encryption keys is missing. The "
        "hub's administrator must restore it from the backup.",
    )
    if error.cannot_use == UNREADABLE:  # a push, which only encrypts, on a key it may not read
        detail = (
            "El nodo no puede usar su llave de cifrado de datos: no tiene permiso para leer su "
            "archivo. El administrador del nodo debe dárselo al usuario que ejecuta el nodo.",
            "The hub cannot use its data encryption key: it may not read the key's file. The "
            "hub's administrator must give it to the user running the hub.",
        )
    elif error.cannot_use is not None:
        detail = (
            "El nodo no puede usar su llave de cifrado de datos: falta o está dañada. El "
            "registro del servidor dice a su administrador por qué y qué hacer.",
            "The hub cannot use its data encryption key: it is missing or damaged. The "
            "server's log tells the hub's administrator why and what to do.",
        )
    return problem_response(
        Problem("unavailable", detail, status=503, headers={"Retry-After": "30"})
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(DataKeyError, unreadable_problem)


def reencrypt_batches(
    sessions: sessionmaker[Session], keyring: DataKeyring, batch_size: int = 500
) -> Iterator[int]:
    """Re-encrypt everything not under the current key, one committed batch at a time; yields
    the number of rows moved by each batch. Stopping between batches loses nothing: run again
    to resume."""
    current = keyring.current()
    for model, key_column, ciphertext_column in _sealed_tables():
        while True:
            with sessions() as session:
                rows = session.execute(
                    select(model.id, key_column, ciphertext_column)
                    .where(key_column != current.id)
                    .order_by(model.id)
                    .limit(batch_size)
                ).all()
                if not rows:
                    break
                moved = 0
                for row_id, old_key, ciphertext in rows:
                    plaintext = keyring.decrypt(old_key, ciphertext)
                    result = session.execute(
                        update(model)
                        .where(model.id == row_id, key_column == old_key)
                        .values(
                            {
                                ciphertext_column: bytes(current.box.encrypt(plaintext)),
                                key_column: current.id,
                            }
                        )
                        .execution_options(synchronize_session=False)
                    )
                    moved += result.rowcount  # type: ignore[attr-defined]
                session.commit()
            yield moved
