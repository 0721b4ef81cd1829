"""``puente keys …``: key pairs for agency systems, and the hub's data keys."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import click
from flask import Flask

from exchange.agency_keys import FolderError, generate_key_files
from exchange.cli import language_option, print_json, say, with_hub


@click.group("keys")
def keys_group() -> None:
    """Keys: generate agency key pairs; rotate the hub's data key."""


@keys_group.command("generate")
@click.option(
    "--out",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write the key files to.",
)
@click.option("--name", default="agency", show_default=True, help="Base name of the files.")
@click.option("--json", "as_json", is_flag=True, help="Print the files written as JSON.")
@language_option
def generate_command(directory: Path, name: str, as_json: bool, lang: str) -> None:
    """Write an Ed25519 key pair: NAME.key (private, mode 0600), NAME.pub and NAME.jwk."""
    made = [path for path in (directory, *directory.parents) if not os.path.lexists(path)]
    try:
        files = generate_key_files(directory, name)
    except FileExistsError as error:
        raise click.ClickException(
            f"{error.filename} ya existe / already exists: no se sobrescribe / not overwritten"
        ) from error
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--name") from error
    except FolderError as error:
        raise click.ClickException(error.message(lang)) from error
    for folder in made:
        # Its owner's only, as init's key folders, whatever the umask (000 would leave 0777:
        # anyone could swap the private key for theirs before it is used).
        folder.chmod(stat.S_IMODE(folder.stat().st_mode) & 0o700)
    if as_json:
        print_json(files.to_json())
        return
    click.echo(f"kid: {files.kid}")
    private, public, jwk = files.private_key, files.public_key, files.public_jwk
    click.echo(
        say(
            lang,
            f"llave privada (guárdela en secreto): {private}",
            f"private key (keep secret): {private}",
        )
    )
    click.echo(say(lang, f"llave pública: {public} y {jwk}", f"public key: {public} and {jwk}"))


@keys_group.command("rotate-data-key")
@click.option(
    "--resume", is_flag=True, help="Make no new key; finish moving rows to the current one."
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@with_hub
def rotate_data_key_command(app: Flask, resume: bool, batch_size: int, as_json: bool) -> None:
    """Make a new data key and re-encrypt record bodies under it, batch by batch.

    Safe to interrupt: run it again with --resume to go on. Old keys are kept; once no row
    uses one (unused_keys in the output) it may be moved out of the key folder. Within a few
    seconds of a new key, running servers may still encrypt with the old one: the command
    waits for them and sweeps again before it reports. The new key is a key change in the
    audit log (key_changed, data_key_rotated); re-encrypting under it is not.

    When PUENTE_DATA_KEY is set, its last entry encrypts and this makes no key: add the new
    key at the end of the setting, restart the hub's processes, then run it with --resume.

    Rows under a key the hub does not hold (a key file lost, or not restored) are refused
    first: no key is made, as the rows could not be moved to it.
    """
    from sqlalchemy.exc import DBAPIError

    from exchange import db
    from exchange.audit_log import record_key_change
    from exchange.crypto import (
        DataKeyError,
        DataKeySettingBroken,
        DataKeysFromSetting,
        data_keyring,
        generate_data_key,
        key_settling_seconds,
        reencrypt_batches,
        rows_per_key,
        unloadable_keys,
    )

    keyring = data_keyring(app)
    # The database first: a key made for a hub whose database cannot be used would still
    # become the key every server encrypts with (the newest in the folder).
    db.database(app).ping()
    if db.current_revision(app) is None:
        raise click.ClickException(
            "the database is empty: run 'puente init' / "
            "la base de datos está vacía: ejecute 'puente init'"
        )
    sessions = db.database(app).sessions
    if not resume:
        # Before any key is made (as 'puente init' does): re-encrypting stops at the first row
        # it cannot read, so a new key would be made and audited for a rotation that cannot
        # happen. (--resume makes none: the sweep names the key it meets, _key_problem.)
        with sessions() as session:
            lost = unloadable_keys(session, keyring)
        if lost:
            raise click.ClickException(_lost_keys_problem(lost, keyring.problems))

    def audit_the_new_key(key_id: str) -> None:
        # Committed before any server can encrypt with the key: no key change goes unaudited.
        # The entry names the key by its id, which is not secret (every body row carries it).
        with sessions.begin() as session:
            record_key_change(session, key_id, "data_key_rotated")

    try:
        made = None if resume else generate_data_key(app, before_use=audit_the_new_key)[1]
    # A broken setting: the key it should give may be the current one. A working one: the
    # current key is its own, which a key file would not replace (exchange.crypto).
    except (DataKeySettingBroken, DataKeysFromSetting) as error:
        raise click.ClickException(f"{error.message('en')} / {error.message('es')}") from None
    created = str(made) if made else None
    moved = 0

    def sweep() -> None:
        nonlocal moved
        for count in reencrypt_batches(sessions, keyring, batch_size):
            moved += count
            if not as_json:
                click.echo(f"re-encrypted / recifrados: {moved}")

    try:
        sweep()
        # Running servers notice a new key within RELOAD_SECONDS (and a push that began
        # before may still commit a body under the old one): sweep again once they all
        # encrypt with the new key, so that no key is called unused while rows still use it.
        wait = key_settling_seconds(app, keyring.current().id)
        if wait > 0:
            if not as_json:
                click.echo(
                    f"waiting {wait:.0f} s for running servers to take the new key, then "
                    f"sweeping again / esperando {wait:.0f} s a que los servidores en marcha "
                    "tomen la clave nueva, y se revisa de nuevo"
                )
            time.sleep(wait)
            sweep()
    except DataKeyError as error:
        raise click.ClickException(_key_problem(error, keyring.problems)) from None
    except DBAPIError as error:
        reason = db.unavailable_reason(error)
        if reason is None:
            raise
        made = f" {created}" if created else ""
        raise click.ClickException(
            f"{reason[1]}. The new data key{made} already encrypts new bodies; once the "
            "database is back, finish with 'puente keys rotate-data-key --resume'. / "
            f"{reason[0]}. La clave de datos nueva{made} ya cifra los cuerpos nuevos; cuando "
            "la base de datos vuelva, termine con 'puente keys rotate-data-key --resume'."
        ) from None
    with sessions() as session:
        per_key = rows_per_key(session)
    current = keyring.current().id
    result = {
        "current_key": current,
        "created": created,
        "reencrypted": moved,
        "rows_per_key": per_key,
        "unused_keys": [key for key in keyring.key_ids if key not in per_key and key != current],
    }
    if as_json:
        print_json(result)
        return
    click.echo(f"current data key / clave actual: {current}")
    counts = ", ".join(f"{key}: {rows}" for key, rows in per_key.items()) or "-"
    click.echo(f"rows per key / filas por clave: {counts}")
    unused = ", ".join(result["unused_keys"]) or "-"  # type: ignore[arg-type]
    click.echo(
        f"keys no row uses (may be moved out of the key folder) / claves que ninguna fila usa "
        f"(pueden retirarse de la carpeta de claves): {unused}"
    )


def _lost_keys_problem(lost: dict[str, int], unusable: list[str]) -> str:
    """Why no key was made when rows are under keys the hub does not hold (``lost``: each key
    and its rows), in both languages, like :func:`_key_problem`."""
    keys = ", ".join(f"{key_id} ({rows})" for key_id, rows in lost.items())
    files = "; ".join(unusable)
    found_es = f" Archivos de clave que no se pudieron usar: {files}." if files else ""
    found_en = f" Key files that could not be used: {files}." if files else ""
    again = "'puente keys rotate-data-key'"
    return (
        f"rows are encrypted under data keys the hub cannot load: {keys}.{found_en} No key "
        f"was made. Restore those keys from a backup (the key folder, or PUENTE_DATA_KEY) and "
        f"run {again} again / hay filas cifradas con claves de datos que el nodo no puede "
        f"cargar: {keys}.{found_es} No se creó ninguna clave. Restaure esas claves de un "
        f"respaldo (la carpeta de claves, o PUENTE_DATA_KEY) y vuelva a ejecutar {again}"
    )


def _key_problem(error: Exception, unusable: list[str]) -> str:
    """What to do when a stored body cannot be re-encrypted, in both languages (the command
    has no --lang: like its progress lines, it speaks both). ``unusable``: the key files the
    hub could not load, and why."""
    key = getattr(error, "key_id", None)
    files = "; ".join(unusable)
    found_es = f" Archivos de clave que no se pudieron usar: {files}." if files else ""
    found_en = f" Key files that could not be used: {files}." if files else ""
    resume = "'puente keys rotate-data-key --resume'"
    if key is None:  # no usable data key at all
        return (
            f"the hub has no usable data key ({error}).{found_en} Restore the key folder from "
            f"a backup (or set PUENTE_DATA_KEY) and run {resume} / el nodo no tiene ninguna "
            f"clave de datos utilizable ({error}).{found_es} Restaure la carpeta de claves de "
            f"un respaldo (o PUENTE_DATA_KEY) y ejecute {resume}"
        )
    if getattr(error, "missing", False):
        return (
            f"rows are encrypted under data key {key}, which the hub cannot load: its file is "
            f"missing or unusable.{found_en} Restore it from a backup and run {resume} / hay "
            f"filas cifradas con la clave de datos {key}, que el nodo no puede cargar: falta su "
            f"archivo o no se puede usar.{found_es} Restáurelo de un respaldo y ejecute {resume}"
        )
    return (
        f"a stored body does not decrypt with data key {key} ({error}): the key file is "
        f"damaged or another hub's; restore it from a backup and run {resume} / un cuerpo "
        f"guardado no se descifra con la clave de datos {key} ({error}): el archivo de la "
        f"clave está dañado o es de otro nodo; restáurelo de un respaldo y ejecute {resume}"
    )
