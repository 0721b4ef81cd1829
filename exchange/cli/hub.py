"""Hub set-up and running: ``init``, ``db upgrade``, ``serve``, ``demo``."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask
from sqlalchemy.orm import Session

from exchange import db, listening
from exchange.agency_keys import FolderError, make_folder
from exchange.audit_log import record_key_change
from exchange.cli import language_option, print_json, say, setting_up_hub, with_hub
from exchange.config import DEFAULT_BIND, DEFAULTS, folder_problem, public_url_for_bind
from exchange.crypto import ensure_data_key
from exchange.key_safety import (
    INSTANCE_FOLDER_MODE,
    KeysUnusable,
    KeysWouldOrphanData,
    SecretsOfAnotherUser,
    exposed_secrets,
    private_mode,
    refuse_keys_that_would_orphan_data,
    refuse_unusable_keys,
    start_up_warnings,
    unusable_keys_message,
)
from exchange.keys import (
    MisnamedKey,
    ensure_hub_keys,
    ensure_portal_secret,
    hub_keys,
    key_paths,
)
from exchange.models import HubSetting
from exchange.transports import (
    ensure_hub_signing_key,
    hub_signing_public_jwk,
    signing_key_path,
)


def initialise(app: Flask) -> dict[str, object]:
    """Create what a hub needs (folder, keys, schema); safe to run again. A folder it cannot
    create is a :class:`FolderError`; a key that is there but cannot be used (a file this user
    may not read, a damaged one) is :class:`~exchange.key_safety.KeysUnusable`, and a key that
    would orphan what the database holds (its own key lost) is
    :class:`~exchange.key_safety.KeysWouldOrphanData`: then no key is created. Secrets others
    may read that another user owns are :class:`~exchange.key_safety.SecretsOfAnotherUser`,
    last, when all else is done (:func:`make_private`)."""
    for folder in make_folder(Path(app.instance_path)):
        # Whatever the umask (000 would leave it 0777: anyone could put a puente.cfg there,
        # which runs as Python), but no more open than the umask says.
        folder.chmod(stat.S_IMODE(folder.stat().st_mode) & INSTANCE_FOLDER_MODE)
    # First: a key file that cannot be read looks like none to every check after this one.
    refuse_unusable_keys(app)
    if db.current_revision(app) is not None:
        # An existing hub: its schema first, so that what it holds can be checked against the
        # keys in the folder before any key is made.
        db.upgrade(app)
        refuse_keys_that_would_orphan_data(app)
    try:
        created = ensure_hub_keys(app)
        data_keys = ensure_data_key(app)  # encrypts record bodies at rest
        # Signs webhook notifications (exchange.transports).
        signing_key = ensure_hub_signing_key(app)
        # Signs the portal's session cookies; kept apart from keys_created (it has no public
        # id to audit, and losing it only logs people out of the portal).
        portal_secret = ensure_portal_secret(app)
    except OSError as error:
        if error.filename is None:
            raise
        # An instance folder that exists but takes no files (another user's, read-only).
        raise FolderError(Path(error.filename).parent, error, writing=True) from error
    if signing_key is not None:
        created.append(signing_key)  # a backup of "what init created" must include it
    db.upgrade(app)
    with db.database(app).sessions.begin() as session:
        if session.get(HubSetting, "hub_id") is None:
            session.add(HubSetting(key="hub_id", value=app.config["HUB_ID"]))
            session.add(HubSetting(key="created_at", value=datetime.now(UTC).isoformat()))
        else:
            _audit_created_keys(session, app, created, data_keys)
    keys = hub_keys(app)
    return {
        "hub_id": app.config["HUB_ID"],
        "instance_path": app.instance_path,
        "database_url": db.database(app).url.render_as_string(hide_password=True),
        "keys_created": [str(path) for path in created],
        "data_keys_created": [str(path) for path in data_keys],
        "portal_secret_created": str(portal_secret) if portal_secret else None,
        "log_vkey": keys.log.vkey if keys.log else None,
        "witness_vkey": keys.witness.vkey if keys.witness else None,
        # What webhook receivers pin to verify the hub's notifications.
        "signing_jwk": hub_signing_public_jwk(app),
        # Secrets that anyone on the machine could read (a hub of an earlier version).
        "made_private": [str(path) for path in make_private(app)],
    }


def make_private(app: Flask) -> list[Path]:
    """Make the hub's secrets readable by their owner only, as new ones are made: those of
    :func:`~exchange.key_safety.exposed_secrets` (``init``, safe to rerun, closes them; the
    commands that run the hub warn of them). The paths whose mode changed; those another user
    owns, which this one may not change, are a
    :class:`~exchange.key_safety.SecretsOfAnotherUser` once the others are changed."""
    changed, not_ours = [], []
    for path in exposed_secrets(app):
        try:
            path.chmod(private_mode(app, path))
        except PermissionError:  # EPERM: only the owner (or root) may change the mode
            not_ours.append(path)
            continue
        changed.append(path)
    if not_ours:
        raise SecretsOfAnotherUser(not_ours, app)
    return changed


def refuse_another_hub_id(app: Flask) -> None:
    """End ``serve`` or ``worker`` when the log or witness key was made for another hub id or
    log origin (:class:`~exchange.keys.MisnamedKey`: ``PUENTE_HUB_ID`` or
    ``PUENTE_AUDIT_ORIGIN`` changed after ``puente init``, the message names which).
    Other unusable keys only warn and the hub runs not ready; this one would write entries,
    notices and envelopes under an id no peer or oversight body knows, into a log signed under
    the old one — a setting to put back before anything is written."""
    faults = [fault for fault in hub_keys(app).faults if isinstance(fault, MisnamedKey)]
    if faults:
        es, en = unusable_keys_message(faults)
        raise click.ClickException(f"{es} / {en}")


def warn_of_unsafe_keys(app: Flask) -> None:
    """Say on stderr, as a command that runs the hub starts, which keys it cannot use and which
    secrets others may read (:func:`~exchange.key_safety.start_up_warnings`): a restore that
    skipped ``puente init`` would otherwise serve with them unnoticed. And a file drop folder
    it could not write in (:func:`file_drop_warning`)."""
    warnings = start_up_warnings(app, hub_keys(app))
    drop = file_drop_warning(app)
    for es, en in [*warnings, *([drop] if drop else [])]:
        click.echo(f"aviso / warning: {es} / {en}", err=True)


def file_drop_warning(app: Flask) -> tuple[str, str] | None:
    """When ``FILE_DROP_PATH`` is no folder the hub may write in (``/proc/x``, a file, a
    read-only disk): said as it starts, not at the first notification of an agency with a
    file drop, which would only be retried until it died."""
    from exchange.transports import file_drop_root

    root = file_drop_root(app)
    problem = folder_problem(root)
    if problem is None:
        return None
    return (
        f"la carpeta del buzón de archivos (FILE_DROP_PATH) {root}: {problem[0]}; el worker "
        "no podrá dejar ahí las notificaciones de las agencias con buzón de archivos: elija "
        "una carpeta en la que pueda escribir el usuario que ejecuta el nodo",
        f"the file drop folder (FILE_DROP_PATH) {root}: {problem[1]}; the worker cannot drop "
        "the notifications of agencies with a file drop there: choose a folder the user "
        "running the hub may write in",
    )


def _audit_created_keys(
    session: Session, app: Flask, created: list[Path], data_keys: list[Path]
) -> None:
    """Write a key change (key_changed, ``<kind>_key_created``) for each key ``init`` made for
    a hub that already existed (a lost witness or signing key made again, say), as for a data
    key rotation or an agency's new key. The keys a hub begins with need no entry: the log key
    signs every checkpoint and is published at /.well-known/puente-hub. Each key is named by a
    public id: the note key's name hash, the signing key's JWK thumbprint, the data key's id
    (which every body row carries); never by anything secret."""
    keys, paths = hub_keys(app), key_paths(app)
    made: list[tuple[str, str]] = []
    if keys.log is not None and paths["log"] in created:
        made.append(("log", "log:" + keys.log.vkey.split("+")[1]))
    if keys.witness is not None and paths["witness"] in created:
        made.append(("witness", "witness:" + keys.witness.vkey.split("+")[1]))
    if signing_key_path(app) in created:
        made.append(("signing", "kid:" + hub_signing_public_jwk(app)["kid"]))
    made += [("data", path.stem) for path in data_keys]
    with app.app_context():  # the entries name this hub, as actor and origin
        for kind, key_id in made:
            record_key_change(session, key_id, f"{kind}_key_created")


@click.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print what was set up as JSON.")
@language_option
@setting_up_hub
def init_command(app: Flask, as_json: bool, lang: str) -> None:
    """Set up a hub: instance folder, hub keys, database schema."""
    try:
        result = initialise(app)
    except (FolderError, KeysUnusable, KeysWouldOrphanData, SecretsOfAnotherUser) as error:
        raise click.ClickException(error.message(lang)) from error
    if as_json:
        print_json(result)
        return
    hub, folder = result["hub_id"], result["instance_path"]
    click.echo(say(lang, f"Hub {hub} listo en {folder}", f"Hub {hub} ready in {folder}"))
    click.echo(say(lang, "  base de datos: ", "  database: ") + str(result["database_url"]))
    for path in result["keys_created"]:  # type: ignore[attr-defined]
        click.echo(say(lang, "  llave nueva: ", "  new key: ") + str(path))
    # Secrets too: a backup of what init created must hold them (the data key decrypts every
    # record body; the portal secret signs the portal's sessions).
    for path in result["data_keys_created"]:  # type: ignore[attr-defined]
        click.echo(say(lang, "  llave de datos nueva: ", "  new data key: ") + str(path))
    if result["portal_secret_created"]:
        click.echo(
            say(lang, "  secreto nuevo del portal: ", "  new portal secret: ")
            + str(result["portal_secret_created"])
        )
    click.echo(say(lang, "  llave del registro: ", "  log key: ") + str(result["log_vkey"]))
    for path in result["made_private"]:  # type: ignore[attr-defined]
        if path == folder:  # others lost only the right to write in it (private_mode)
            said = (
                f"  ahora solo su dueño escribe en ella (otros podían): {path}",
                f"  now writable by its owner only (others could write in it): {path}",
            )
        else:
            said = (
                f"  ahora solo su dueño lo lee (lo leía cualquiera en esta máquina): {path}",
                f"  now readable by its owner only (anyone on this machine could read it): {path}",
            )
        click.echo(say(lang, *said))


@click.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@language_option
@with_hub
def db_upgrade(app: Flask, revision: str, lang: str) -> None:
    """Bring the database schema of an existing hub up to date ('puente init' makes a new one).

    A SQLite database that is not there is refused, not created: the README's restore runs
    this on the copy put back, and an empty hub made by a mistyped PUENTE_INSTANCE_PATH would
    then be served. An empty PostgreSQL database is upgraded (its server, not this command,
    made it)."""
    current = db.current_revision(app)
    if current is not None and current not in db.known_revisions():
        # Newer than this code: Alembic would only say it cannot find the revision.
        raise click.ClickException(say(lang, *db.schema_advice(current)))  # type: ignore[misc]
    db.upgrade(app, revision)
    now = db.current_revision(app)
    click.echo(say(lang, f"base de datos en la revisión {now}", f"database at revision {now}"))
    # The README's restore is "db upgrade, then serve": the last command before serving.
    warn_of_unsafe_keys(app)


@db_group.command("current")
@language_option
@with_hub
def db_current(app: Flask, lang: str) -> None:
    """Print the schema revision of the database and the newest one available."""
    current, head = db.current_revision(app), db.head_revision()
    advice = db.schema_advice(current)
    if current is None:
        raise click.ClickException(say(lang, *advice) + f" (head: {head})")  # type: ignore[misc]
    click.echo(
        say(lang, f"actual: {current}  más reciente: {head}", f"current: {current}  head: {head}")
    )
    if advice is not None:
        click.echo(say(lang, *advice), err=True)
        sys.exit(1)


#: Where the servers' metric files go when the machine has it: shared memory, not the disk.
#: prometheus-client maps them into memory and grows them as counters appear; on a full (or
#: read-only) disk that growth kills the worker with SIGBUS on every request, /healthz
#: included, so the hub could not even say it is alive.
SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - a folder of its own, mode 0700, named below


def metrics_root(instance_path: Path, shared_memory: Path | None = None) -> Path:
    """The folder for the metric files of the servers of ``instance_path``: one per instance
    folder in shared memory (named by a hash of its path), else ``prometheus`` inside it."""
    shared_memory = shared_memory or SHARED_MEMORY
    if shared_memory.is_dir() and os.access(shared_memory, os.W_OK | os.X_OK):
        digest = hashlib.sha256(str(instance_path.resolve()).encode()).hexdigest()[:16]
        return shared_memory / f"puente-metrics-{digest}"
    return instance_path / "prometheus"


def metrics_folder(root: Path, pid: int) -> Path:
    """The prometheus-client folder (under ``root``, see :func:`metrics_root`) of the server
    about to start as ``pid`` (this process, replaced by gunicorn): one per server, so a second
    server on the same instance folder leaves the first one's counters alone. Folders of
    servers no longer running are removed (their files would skew nothing now, but would pile
    up)."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in root.iterdir():
        name = entry.name
        if name.startswith("serve-") and name[6:].isdigit():
            if not process_alive(int(name[6:])):
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and entry.suffix == ".db":
            entry.unlink(missing_ok=True)  # the one shared folder of earlier versions
    folder = root / f"serve-{pid}"
    shutil.rmtree(folder, ignore_errors=True)  # a dead server's, whose pid came round again
    folder.mkdir()
    return folder


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def exec_gunicorn(
    bind: str, workers: int | None, instance_path: str, access_log: str | None = None
) -> None:
    """Replace this process with gunicorn serving the hub; ``access_log`` is where access
    lines go unless ``PUENTE_ACCESS_LOG`` says."""
    env = os.environ.copy()
    env["PUENTE_BIND"] = bind
    env["PUENTE_INSTANCE_PATH"] = instance_path
    if access_log is not None:
        env.setdefault("PUENTE_ACCESS_LOG", access_log)
    if workers:
        env["PUENTE_WORKERS"] = str(workers)
    root = metrics_root(Path(instance_path))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_folder(root, os.getpid()))
    # -P: the working directory is not put first on sys.path (see exchange.serving.main and
    # packages_before_working_directory).
    argv = [sys.executable, "-P", "-m", "exchange.serving", "-c", "python:exchange.serving"]
    argv.append("exchange:create_app()")
    sys.stdout.flush()
    os.execvpe(sys.executable, argv, env)  # noqa: S606 - fixed argv, no shell


bind_option = click.option(
    "--bind",
    envvar="PUENTE_BIND",
    default=DEFAULT_BIND,
    show_default=True,
    help="HOST:PORT to listen on (also the public URL unless PUENTE_PUBLIC_URL is set).",
)
workers_option = click.option(
    "--workers",
    type=click.IntRange(1, 64),
    # Said, not a click default: unset, gunicorn's configuration (exchange.serving) reads
    # PUENTE_WORKERS itself, which a default here would always override.
    help="Worker processes (default: PUENTE_WORKERS, else 2).",
)


def refuse_unusable_bind(bind: str) -> None:
    """End the command with one line in both languages if it could not listen on ``bind``
    (:func:`exchange.listening.cannot_listen`); suggests a free port next to a busy one."""
    refused = listening.cannot_listen(bind)
    if refused is None:
        return
    es, en = refused
    free = listening.free_neighbour(bind) if refused == listening.ADDRESS_IN_USE else None
    raise click.ClickException(
        f"no se puede escuchar en {bind}: {es}; elija otra dirección o un puerto libre con "
        f"PUENTE_BIND o --bind{f' (p. ej. PUENTE_BIND={free})' if free else ''}"
        f" / cannot listen on {bind}: {en}; choose another address or a free port with "
        f"PUENTE_BIND or --bind{f' (e.g. PUENTE_BIND={free})' if free else ''}"
    )


def warn_of_old_schema(app: Flask) -> None:
    """Say on stderr when the database is not at the schema this code needs (empty, behind,
    or upgraded by a newer version): ``serve`` and ``worker`` run anyway (/readyz says not
    ready, so a balancer sends it nothing), but the operator starting them should not have to
    find out from the clients, nor from a worker that found nothing to do."""
    try:
        advice = db.schema_advice(db.current_revision(app))
    except Exception:  # noqa: BLE001 - the database may be down now and up later: run anyway
        advice = None
    if advice is not None:
        click.echo(f"aviso / warning: {advice[0]} / {advice[1]}", err=True)


def public_url_warning(app: Flask, bind: str) -> tuple[str, str] | None:
    """When ``serve`` listens beyond this machine (``0.0.0.0``, ``[::]``) with no
    ``PUBLIC_URL`` configured: the hub then advertises the loopback address
    (:func:`~exchange.config.public_url_for_bind`) as its token endpoint, the ``iss`` of its
    tokens and the ``aud`` of ``private_key_jwt`` assertions, which no client elsewhere can
    call or use (Spanish, English)."""
    from urllib.parse import urlsplit

    if str(app.config["PUBLIC_URL"]).rstrip("/") != DEFAULTS["PUBLIC_URL"]:
        return None  # configured (the instance file or PUENTE_PUBLIC_URL)
    advertised = public_url_for_bind(bind)
    host = urlsplit(advertised).hostname or ""
    if host != "localhost" and not _is_loopback(host):
        return None  # a network address or name others may reach: what they call
    if not listening.listens_beyond_this_machine(bind):
        return None
    return (
        f"el nodo escucha en {bind}, al alcance de otras máquinas, pero PUENTE_PUBLIC_URL no "
        f"está puesto: anuncia {advertised} en /.well-known/puente-hub (el endpoint de "
        "tokens, el «iss» de los tokens y el «aud» de las aserciones private_key_jwt), que "
        "solo esta máquina puede llamar; ponga PUENTE_PUBLIC_URL con la dirección que usan "
        "los clientes (p. ej. https://puente.example.org)",
        f"the hub listens on {bind}, within reach of other machines, but PUENTE_PUBLIC_URL is "
        f"not set: it advertises {advertised} in /.well-known/puente-hub (the token endpoint, "
        "the 'iss' of tokens and the 'aud' of private_key_jwt assertions), which only this "
        "machine can call; set PUENTE_PUBLIC_URL to the address clients use (e.g. "
        "https://puente.example.org)",
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@bind_option
@workers_option
@with_hub
def serve_command(app: Flask, bind: str, workers: int | None) -> None:
    """Serve the hub with gunicorn."""
    refuse_unusable_bind(bind)
    warn_of_old_schema(app)
    refuse_another_hub_id(app)
    warn_of_unsafe_keys(app)
    unreachable = public_url_warning(app, bind)
    if unreachable is not None:
        click.echo(f"aviso / warning: {unreachable[0]} / {unreachable[1]}", err=True)
    exec_gunicorn(bind, workers, app.instance_path)


def demo_access_log(instance_path: str) -> str:
    """Where the demo's access lines go: ``PUENTE_ACCESS_LOG``, else a file in the instance
    folder, so the terminal keeps the instructions the demo prints."""
    return os.environ.get("PUENTE_ACCESS_LOG") or str(Path(instance_path) / "access.log")


def demo_public_url(app: Flask, bind: str) -> str:
    """The address the guide prints: ``PUBLIC_URL`` when it is configured (the instance file
    or ``PUENTE_PUBLIC_URL``), else the one the served hub takes from ``bind`` (``--bind``
    as well as ``PUENTE_BIND``: exec_gunicorn passes it on), a loopback address for 0.0.0.0.
    ``http://0.0.0.0:PORT`` is nobody's address to call."""
    configured = str(app.config["PUBLIC_URL"]).rstrip("/")
    if configured != DEFAULTS["PUBLIC_URL"]:
        return configured
    return public_url_for_bind(bind)


def demo_exposure_warning(bind: str) -> str:
    """What the demo says on stderr when other machines reach it (one line, both languages)."""
    return (
        f"aviso / warning: la demo escucha en {bind}, al alcance de otras máquinas, por http "
        "sin cifrar, y sus credenciales (secretos de clientes, tokens de acceso personal, "
        "contraseñas del portal) se imprimen: son públicas, no proteja con ellas nada real; "
        "para esta máquina sola use 127.0.0.1 / the demo listens on "
        f"{bind}, within reach of other machines, over plain http, and its credentials "
        "(client secrets, personal access tokens, portal passwords) are printed: they are "
        "public, protect nothing real with them; for this machine alone use 127.0.0.1"
    )


def puente_command() -> str:
    """How to run ``puente`` from wherever the person is: the script installed next to this
    Python (``.venv/bin/puente``), else ``puente`` on the PATH."""
    installed = Path(sys.executable).parent / "puente"
    return str(installed) if installed.exists() else "puente"


@click.command("demo")
@bind_option
@click.option("--no-serve", is_flag=True, help="Set up and seed only; do not serve.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print what was created (agencies and their secrets, people and their tokens, the "
    "demo consent) as one JSON object, for scripts, instead of the guide.",
)
@setting_up_hub
def demo_command(app: Flask, bind: str, no_serve: bool, as_json: bool) -> None:
    """Create a local demo hub, seed it, and serve it. Its database is SQLite in the instance
    folder (puente.db), unless PUENTE_DATABASE_URL (or DATABASE_URL in puente.cfg) names
    another, such as PostgreSQL."""
    from exchange.demo import (
        credentials_path,
        curl_example,
        oversight_example,
        people_example,
        seed_demo,
    )
    from exchange.demo_consents import consent_example, override_example

    if not no_serve:
        # Before anything is seeded or printed: the guide's secrets and tokens must not be
        # aimed at an address another program answers on.
        refuse_unusable_bind(bind)
    try:
        result = initialise(app)
    except (  # both languages
        FolderError,
        KeysUnusable,
        KeysWouldOrphanData,
        SecretsOfAnotherUser,
    ) as error:
        raise click.ClickException(str(error)) from error
    hub = seed_demo(app)
    base = demo_public_url(app, bind)
    access_log = demo_access_log(app.instance_path)
    credentials_file = credentials_path(app)
    if not no_serve and listening.listens_beyond_this_machine(bind):
        click.echo(demo_exposure_warning(bind), err=True)
    if as_json:
        print_json(
            {
                "hub_id": result["hub_id"],
                "instance_path": result["instance_path"],
                "url": base,
                "agencies": {
                    agency_id: {"client_id": agency_id, "client_secret": secret}
                    for agency_id, secret in sorted(hub.credentials.items())
                },
                "people": hub.people,
                "records": hub.records,
                "records_added": hub.records_added,
                "consent": hub.consent,
                "sample_push": str(hub.sample_push),
                "credentials_file": str(credentials_file),
            }
        )
        if not no_serve:
            exec_gunicorn(bind, None, app.instance_path, access_log)
        return
    shown_log = "stderr" if access_log == "-" else access_log
    lines = [
        "",
        "Puente demo",
        f"  hub: {result['hub_id']} ({result['instance_path']})",
        f"  en el nodo / on the hub:                  {hub.agencies} instituciones / agencies, "
        f"{hub.records} expedientes / records",
        f"  agregados ahora / added by this run:      {hub.records_added} expedientes / records"
        + ("" if hub.records_added else " (ya sembrado / already seeded)"),
        f"  portal:                                   {base}/",
        f"  esquemas / schemas:                       {base}/schemas",
        f"  esquemas (JSON) / schemas (JSON):         {base}/v1/schemas",
        f"  API (OpenAPI 3.1):                        {base}/openapi.json",
        f"  salud / health:                           {base}/readyz",
        f"  credenciales demo / demo credentials:     {credentials_file}",
        f"  registro de accesos / access log:         {shown_log}",
        "",
        "Obtener un token, enviar un expediente y leerlo / get a token, push a record, read it:",
        *(f"  {line}" for line in curl_example(base, hub)),
        "",
        "Supervisión: el registro de auditoría firmado / oversight: the signed audit log:",
        *(f"  {line}" for line in oversight_example(base, hub)),
        "",
        "Personas (tokens de acceso personal) / people (personal access tokens):",
        *(f"  {line}" for line in people_example(base, hub)),
        "",
        "Consentimiento (una persona adolescente no acompañada) / "
        "consent (an unaccompanied adolescent):",
        *(
            f"  {line}"
            for line in consent_example(
                base, hub.consent, hub.credentials["mx.fed.comar"], hub.people
            )
        ),
        "",
        "Acceso de emergencia y su revisión / emergency override and its review:",
        *(f"  {line}" for line in override_example(base, hub.consent, hub.people)),
        "",
        "Validar un archivo / validate a file:",
        f"  {puente_command()} validate {hub.sample_push}",
        "",
    ]
    click.echo("\n".join(lines))
    if not no_serve:
        exec_gunicorn(bind, None, app.instance_path, access_log)
