"""Storage: one SQLAlchemy 2.0 engine per app, one session per request, Alembic migrations.

SQLite (a file under the instance folder) is the embedded default; PostgreSQL is production.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from exchange.config import SettingError
from exchange.wal_checkpoints import DEFAULT_INTERVAL, SERVING_AUTOCHECKPOINT, WalCheckpointer

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    """The engine and session factory of one app (``app.extensions["puente.db"]``)."""

    def __init__(self, url: str, echo: bool = False, create: bool = True) -> None:
        self.url = database_url(url)
        self.engine = build_engine(url, echo=echo, create=create)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.checkpointer: WalCheckpointer | None = None
        self.wal_autocheckpoint: int | None = None  # None: SQLite's default (1,000 pages)
        if self.is_sqlite:
            event.listen(self.engine, "connect", self._set_autocheckpoint)

    def _set_autocheckpoint(self, dbapi_connection: Any, _record: Any) -> None:
        if self.wal_autocheckpoint is not None:
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={int(self.wal_autocheckpoint)}")

    def checkpoint_in_background(self, interval: float = DEFAULT_INTERVAL) -> None:
        """For a serving process: checkpoint the SQLite WAL from a thread of its own, not in
        the commits of pushes (see exchange/wal_checkpoints.py). Nothing for PostgreSQL or an
        in-memory database; once per process."""
        path = self.url.database
        if not self.is_sqlite or not path or path == ":memory:" or path.startswith("file:"):
            return
        if self.checkpointer is not None and self.checkpointer.is_alive():
            return
        self.wal_autocheckpoint = SERVING_AUTOCHECKPOINT
        self.engine.dispose()  # the connections made from now on carry the new limit
        self.checkpointer = WalCheckpointer(path, interval)
        self.checkpointer.start()

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def write_problem(self) -> WriteProblem | None:
        """Why the database would refuse writes now (``/readyz``), or None: a SQLite file on a
        read-only or nearly full disk, or one the hub's user may not write; a PostgreSQL
        server that takes no writes (a standby, or ``default_transaction_read_only``). A full
        PostgreSQL disk shows only when a write fails (``unavailable_reason``)."""
        if not self.is_sqlite:
            with self.engine.connect() as connection:
                read_only = connection.execute(text("SHOW transaction_read_only")).scalar()
            return None if read_only != "on" else _POSTGRESQL_READ_ONLY
        path = self.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return sqlite_write_problem(Path(path))


class WriteProblem(NamedTuple):
    """Why writes would fail: ``state`` for the /readyz check (no path: anyone may ask), what
    to do in Spanish and English, and ``logged``, the server log's line naming the file."""

    state: str
    es: str
    en: str
    logged: str


#: Free space below which a SQLite hub is not ready: SQLite needs room for the WAL and for
#: the pages a push adds, and a push that hits a full disk fails half-way (a bulk push
#: answers 503). A constant, not a setting: 32 MiB is a few thousand records, a margin to
#: alert on, not a quota.
MIN_FREE_BYTES = 32 * 2**20

#: A PostgreSQL server that takes no writes (Spanish, English).
_READ_ONLY_SERVER = (
    "el servidor PostgreSQL no acepta escrituras (es un servidor en espera, o tiene "
    "default_transaction_read_only): apunte PUENTE_DATABASE_URL al servidor principal",
    "the PostgreSQL server takes no writes (a standby, or default_transaction_read_only is "
    "on): point PUENTE_DATABASE_URL at the primary server",
)
_POSTGRESQL_READ_ONLY = WriteProblem(
    "not writable: the server is read-only",
    *_READ_ONLY_SERVER,
    "not ready: the PostgreSQL server takes no writes (transaction_read_only is on)",
)


def sqlite_write_problem(path: Path) -> WriteProblem | None:
    """Whether the SQLite database at ``path`` can take writes: its disk mounted read-write
    with at least :data:`MIN_FREE_BYTES` free, and the file, its folder (SQLite writes its
    -wal and -shm files there) and those files writable by this user."""
    folder = path.parent
    try:
        disk = os.statvfs(folder)
    except OSError as error:
        why = error.strerror or str(error)
        return WriteProblem(
            f"not writable: {why}",
            f"no se puede usar la carpeta de la base de datos SQLite ({why}); el registro del "
            "servidor la nombra",
            f"the folder of the SQLite database cannot be used ({why}); the server's log names it",
            f"not ready: the folder {folder} of the database cannot be used: {why}",
        )
    if disk.f_flag & os.ST_RDONLY:
        return WriteProblem(
            "not writable: read-only file system",
            "el disco que guarda la base de datos SQLite es de solo lectura, así que el nodo no "
            "puede guardar nada: vuelva a montarlo con escritura; el registro del servidor "
            "nombra el archivo",
            "the disk holding the SQLite database is read-only, so the hub can store nothing: "
            "mount it read-write again; the server's log names the file",
            f"not ready: the disk holding the database {path} is read-only",
        )
    files = [folder, *(p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())]
    denied = [p for p in files if not os.access(p, os.W_OK | (os.X_OK if p == folder else 0))]
    if denied:
        return WriteProblem(
            "not writable: permission denied",
            "el usuario que ejecuta el nodo no puede escribir la base de datos SQLite o su "
            "carpeta (donde SQLite escribe sus archivos -wal y -shm): deben ser suyos, con modo "
            "600 (la carpeta, 700); el registro del servidor los nombra",
            "the user running the hub may not write the SQLite database or its folder (where "
            "SQLite writes its -wal and -shm files): they must be that user's, mode 600 (the "
            "folder, 700); the server's log names them",
            f"not ready: this user may not write {', '.join(map(str, denied))}",
        )
    free, least = disk.f_bavail * disk.f_frsize // 2**20, MIN_FREE_BYTES // 2**20
    if free < least:
        return WriteProblem(
            f"not writable: disk nearly full ({free} MiB free, needs {least} MiB)",
            f"el disco que guarda la base de datos SQLite está casi lleno ({free} MiB libres; "
            f"el nodo necesita al menos {least} MiB): libere espacio; el registro del servidor "
            "nombra el archivo",
            f"the disk holding the SQLite database is nearly full ({free} MiB free; the hub "
            f"needs at least {least} MiB): free some space; the server's log names the file",
            f"not ready: the disk holding the database {path} has {free} MiB free "
            f"(at least {least} MiB needed)",
        )
    return None


def database_url(url: str) -> URL:
    """``url`` parsed, or a :class:`~exchange.config.SettingError` naming the spellings the
    hub takes (``postgres://``, libpq's, is not one of SQLAlchemy's)."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()  # an unknown kind of database or driver name fails here
    except (ArgumentError, ValueError) as error:  # NoSuchModuleError is an ArgumentError
        raise _unusable_url(url, error) from None
    return parsed


def build_engine(url: str, echo: bool = False, create: bool = True) -> Engine:
    """The engine for ``url``. A SQLite file that does not exist is created (owner only, with
    its folder) when ``create``; otherwise it is a :class:`~exchange.config.SettingError`."""
    parsed = database_url(url)
    options: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        # A file cannot drop a connection: no ping (a round trip on every checkout).
        database = parsed.database
        if database and database != ":memory:" and not create:
            _must_exist(Path(database))
        elif database and database != ":memory:":
            from exchange.agency_keys import FolderError, make_folder
            from exchange.key_safety import INSTANCE_FOLDER_MODE

            folder = Path(database).parent
            try:
                for made in make_folder(folder):
                    # The instance folder by default, made here before 'puente init' gets to
                    # it: the mode init gives a folder it makes (README), whatever the umask,
                    # but no more open than the umask says.
                    made.chmod(stat.S_IMODE(made.stat().st_mode) & INSTANCE_FOLDER_MODE)
                try:
                    _create_private(Path(database))
                except OSError as error:
                    raise FolderError(folder, error, writing=True) from error
            except FolderError as error:
                # The operator's to fix, like an address that is no database: one clear line.
                raise SettingError(
                    f"{error.message_es} Es la carpeta de la base de datos SQLite "
                    "(PUENTE_DATABASE_URL; por omisión, PUENTE_INSTANCE_PATH).",
                    f"{error.message_en} It is the folder of the SQLite database "
                    "(PUENTE_DATABASE_URL; by default, PUENTE_INSTANCE_PATH).",
                ) from None
        options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        engine = _engine(url, parsed, options)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # A server can: test each connection as it is checked out, so a restart is survived.
        options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        engine = _engine(url, parsed, options)
    event.listen(engine, "handle_error", _remember_engine)
    return engine


#: Where an error raised by an engine of build_engine keeps that engine: unavailable_reason
#: gets only the error, and asks the database its revision through it.
_ENGINE_OF_ERROR = "puente_engine"


def _remember_engine(context: ExceptionContext) -> None:
    if context.sqlalchemy_exception is not None:
        remember_engine(context.sqlalchemy_exception, context.engine)


def remember_engine(error: BaseException, engine: Engine) -> None:
    """Keep with ``error`` the engine it came from (:func:`unavailable_reason` reads it)."""
    setattr(error, _ENGINE_OF_ERROR, engine)


def _must_exist(path: Path) -> None:
    """A command about an existing hub, pointed at a SQLite file that is not there: most
    likely the wrong folder, so say so rather than make an empty hub there."""
    if path.is_file() or str(path).startswith("file:"):  # a URI: SQLite's own options decide
        return
    raise SettingError(
        f"No hay un hub en {path.parent}: falta la base de datos {path.name}. Revise "
        "PUENTE_INSTANCE_PATH (o PUENTE_DATABASE_URL), o cree el hub con 'puente init'.",
        f"There is no hub in {path.parent}: the database {path.name} is missing. Check "
        "PUENTE_INSTANCE_PATH (or PUENTE_DATABASE_URL), or create the hub with 'puente init'.",
    )


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (children's index entries are in
    it); SQLite gives its -wal and -shm files the same mode. An existing file is left as it
    is."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _engine(url: str, parsed: URL, options: dict[str, Any]) -> Engine:
    try:
        return create_engine(parsed, **options)
    except ImportError as error:  # the driver the address names is not installed
        raise _unusable_url(url, error) from None


def _unusable_url(url: str, error: Exception) -> SettingError:
    # Only the scheme is shown: the rest of the address may hold a password.
    scheme = url.partition("://")[0] if "://" in url else ""
    shown = f"{scheme}://…" if scheme else "…"
    if isinstance(error, ImportError):
        why_es = f"falta el módulo {error.name or error} de ese controlador"
        why_en = f"the module {error.name or error} of that driver is not installed"
    elif not isinstance(error, NoSuchModuleError):  # not parsed (a port that is no number…)
        why_es, why_en = "no es una dirección de base de datos", "not a database address"
    elif scheme == "postgres":
        why_es = "la forma de libpq, no la de SQLAlchemy"
        why_en = "libpq's spelling, not SQLAlchemy's"
    else:
        why_es, why_en = "tipo de base de datos desconocido", "unknown kind of database"
    return SettingError(
        f"configuración no válida: PUENTE_DATABASE_URL = {shown} ({why_es}); debe ser "
        "postgresql+psycopg://USUARIO@SERVIDOR:5432/BASE para PostgreSQL "
        "o sqlite:///RUTA/puente.db para SQLite",
        f"settings not valid: PUENTE_DATABASE_URL = {shown} ({why_en}); it must be "
        "postgresql+psycopg://USER@HOST:5432/NAME for PostgreSQL "
        "or sqlite:///PATH/puente.db for SQLite",
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; busy_timeout makes writers queue, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def init_app(app: Flask) -> None:
    # DATABASE_CREATE (not a setting of the operator's): whether a SQLite database that is not
    # there is created. Yes for the hub in general (tests, gunicorn's workers, `init`, `demo`);
    # the commands about an existing hub say no, `db upgrade` among them (the README's restore
    # runs it on the copy put back), so that a mistyped instance path is an error and not a
    # new, empty hub.
    app.extensions["puente.db"] = Database(
        app.config["DATABASE_URL"],
        echo=bool(app.config.get("DATABASE_ECHO")),
        create=bool(app.config.get("DATABASE_CREATE", True)),
    )
    app.teardown_appcontext(_close_session)


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["puente.db"]  # type: ignore[no-any-return]


def session() -> Session:
    """The session of the current request or CLI command, created on first use."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    return g.db_session  # type: ignore[no-any-return]


def _close_session(_exc: BaseException | None) -> None:
    current = g.pop("db_session", None)
    if current is not None:
        current.close()


def alembic_config(db: Database) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", "exchange:migrations")
    # ConfigParser treats "%" as interpolation; URLs carry percent-escapes.
    url = db.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(app: Flask, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (``puente db upgrade``)."""
    db = database(app)
    config = alembic_config(db)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@functools.cache
def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", "exchange:migrations")
    return ScriptDirectory.from_config(config)


def head_revision() -> str | None:
    return _scripts().get_current_head()  # type: ignore[no-any-return]


@functools.cache
def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def schema_advice(current: str | None) -> tuple[str, str] | None:
    """What to do about a database at schema revision ``current`` (Spanish, English), or None
    when it is the one this code needs. A revision this code does not know was made by a newer
    version of Puente: upgrading cannot help, and Puente never downgrades a database."""
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return (
            "la base de datos está vacía: ejecute 'puente init'",
            "the database is empty: run 'puente init'",
        )
    if current not in known_revisions():
        return (
            f"la base de datos está en la revisión {current}, que esta versión de Puente no "
            f"conoce (llega a la {head}): la actualizó una versión más nueva; use esa versión",
            f"the database is at revision {current}, which this version of Puente does not "
            f"know (it goes up to {head}): a newer version upgraded it; run that version",
        )
    return (
        f"la base de datos está en la revisión {current} y el código necesita la {head}: "
        "ejecute 'puente db upgrade'",
        f"the database is at revision {current}, the code needs {head}: run 'puente db upgrade'",
    )


def current_revision(app: Flask) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with database(app).engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _revision_of(engine: Engine | None) -> str | None:
    """The database's schema revision; ``None`` when it has none or cannot say."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import DBAPIError

    if engine is None:
        return None
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError:
        return None


def unavailable_reason(error: BaseException) -> tuple[str, str] | None:
    """Spanish and English words for a database error that is the database's state, not a bug:
    the server cannot be reached (or is busy), it holds no Puente tables yet, its schema is at
    an older revision than the code's, or it takes no writes (a full or read-only disk).
    ``None`` for anything else (a real fault, to be reported as one)."""
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    if not isinstance(error, DBAPIError):
        return None
    text_of_error = str(error.orig or error).lower()
    sqlstate = getattr(error.orig, "sqlstate", None)
    missing_table = "no such table" in text_of_error or sqlstate == "42P01"  # SQLite / PostgreSQL
    # Or a column a newer migration adds (SQLite: "no such column"; PostgreSQL: 42703).
    missing_column = "no such column" in text_of_error or sqlstate == "42703"
    if missing_table or missing_column:
        current = _revision_of(getattr(error, _ENGINE_OF_ERROR, None))
        if current is not None and (advice := schema_advice(current)) is not None:
            return advice
    if missing_table:
        return (
            "la base de datos no tiene las tablas de Puente: ejecute 'puente init' "
            "(o 'puente db upgrade')",
            "the database holds no Puente tables: run 'puente init' (or 'puente db upgrade')",
        )
    refused = _writes_refused(error, text_of_error, sqlstate)
    if refused is not None:
        return refused
    if isinstance(error, OperationalError) and not isinstance(error, ProgrammingError):
        first_line = str(error.orig or error).strip().splitlines()[0][:200]
        return (
            f"no se puede usar la base de datos ({first_line}); revise PUENTE_DATABASE_URL "
            "y que el servidor esté en marcha",
            f"the database cannot be used ({first_line}); check PUENTE_DATABASE_URL and that "
            "its server is running",
        )
    return None


def _writes_refused(
    error: BaseException, text_of_error: str, sqlstate: str | None
) -> tuple[str, str] | None:
    """A database that answers but takes no writes: a full or read-only disk under a SQLite
    file (named: the operator's own, found in the log), a PostgreSQL server whose disk is full
    (53100) or that is read-only (25006, a standby). Advice about PUENTE_DATABASE_URL and a
    server that is not running would send the operator the wrong way."""
    engine = getattr(error, _ENGINE_OF_ERROR, None)
    url = engine.url if engine is not None else None
    name = f" {url.database}" if url is not None and url.get_backend_name() == "sqlite" else ""
    if "database or disk is full" in text_of_error:  # SQLITE_FULL
        return (
            f"el disco que guarda la base de datos{name} está lleno: libere espacio",
            f"the disk holding the database{name} is full: free some space",
        )
    if "readonly database" in text_of_error:  # SQLITE_READONLY
        return (
            f"la base de datos{name}, o el disco que la guarda, es de solo lectura: el usuario "
            "que ejecuta el nodo debe poder escribirla, a ella y a su carpeta",
            f"the database{name}, or the disk holding it, is read-only: the user running the "
            "hub must be able to write it and its folder",
        )
    if sqlstate == "53100":
        return (
            "el disco del servidor PostgreSQL está lleno: libere espacio en él",
            "the PostgreSQL server's disk is full: free some space on it",
        )
    if sqlstate == "25006":
        return _READ_ONLY_SERVER
    return None


def changed_once(session: Session, statement: Any) -> bool:
    """Run a conditional ``UPDATE`` (its ``WHERE`` names the state being left) and say whether
    it changed exactly one row: of two concurrent or repeated changes only one happens, so only
    one reaches the signed log. The session's objects are not refreshed."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return getattr(result, "rowcount", 0) == 1
