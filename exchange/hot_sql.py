"""Statements of the push path, run on the session's DBAPI connection.

On a small push SQLAlchemy's own work per statement (parameter processing, execution context,
result set-up: 60–120 µs) costs several times what SQLite or PostgreSQL take to run it, and a
push runs about ten statements. Here the push path's statements are plain SQL strings, written
with ``?`` placeholders (``%s`` on PostgreSQL), run on the DBAPI connection of the session's
current transaction: they commit or roll back with everything else the session does.

Values are converted the way SQLAlchemy would bind them (:meth:`HotSQL.bind`, from the
columns' own types: on SQLite, datetimes are stored as SQLAlchemy's text), so ORM reads of the
same rows see what they always saw. Driver errors are raised as SQLAlchemy's
(``IntegrityError``, ``OperationalError``), so callers keep one way to catch and retry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from exchange.db import remember_engine

#: Largest number of values in one ``IN (…)`` list or one multi-row ``VALUES`` statement
#: (SQLite allows 32,766 parameters in all).
MAX_PARAMETERS = 30_000


class HotSQL:
    """The DBAPI connection of ``session``'s transaction, and its dialect's conventions."""

    __slots__ = ("_cursor", "dialect", "engine", "is_sqlite", "raw")

    def __init__(self, session: Session) -> None:
        connection = session.connection()  # begins the session's transaction if need be
        self.engine = connection.engine
        self.dialect = connection.dialect
        self.is_sqlite = self.dialect.name == "sqlite"
        self.raw: Any = connection.connection.dbapi_connection
        self._cursor: Any = None

    def cursor(self) -> Any:
        if self._cursor is None:
            self._cursor = self.raw.cursor()
        return self._cursor

    def sql(self, text: str) -> str:
        """``text`` with this driver's placeholders (the ``?`` of the source becomes ``%s``)."""
        return text if self.is_sqlite else _pyformat(text)

    def rows(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self._run(text, params)
        return cursor.fetchall()  # type: ignore[no-any-return]

    def first(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self._run(text, params).fetchone()

    def execute(self, text: str, params: Sequence[Any] = ()) -> int:
        return int(self._run(text, params).rowcount)

    def executemany(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        if len(rows) == 1:
            self._run(text, rows[0])
            return
        statement = self.sql(text)
        try:
            self.cursor().executemany(statement, rows)
        except self.dialect.loaded_dbapi.Error as error:
            raise self._translated(statement, rows, error) from error

    def _run(self, text: str, params: Sequence[Any]) -> Any:
        statement = self.sql(text)
        cursor = self.cursor()
        try:
            cursor.execute(statement, params)
        except self.dialect.loaded_dbapi.Error as error:
            raise self._translated(statement, params, error) from error
        return cursor

    def _translated(self, statement: str, params: Any, error: Exception) -> Exception:
        """The driver's error as SQLAlchemy's, keeping the engine as the engine's own errors
        do (exchange.db remember_engine), so that a missing table or column is explained
        with the database's revision."""
        translated = DBAPIError.instance(
            statement, params, error, self.dialect.loaded_dbapi.Error, dialect=self.dialect
        )
        remember_engine(translated, self.engine)
        return translated

    def binder(self, column: ColumnElement[Any]) -> Callable[[Any], Any]:
        """How SQLAlchemy would send a value of ``column`` to this database."""
        return _binder(self.dialect, column)

    def reader(self, column: ColumnElement[Any]) -> Callable[[Any], Any]:
        """How SQLAlchemy would turn a stored value of ``column`` into a Python value."""
        return _reader(self.dialect, column)

    def rows_in(
        self, template: str, params: Sequence[Any], values: Sequence[Any], *, chunk: int = 2000
    ) -> list[Any]:
        """Rows of ``template`` (``… IN {}``) for ``values``, ``chunk`` values per statement;
        ``params`` go before the values."""
        found: list[Any] = []
        for part in chunks(values, chunk):
            found.extend(self.rows(with_in_list(template, len(part)), (*params, *part)))
        return found

    def execute_in(self, template: str, values: Sequence[Any], *, chunk: int = 2000) -> None:
        for part in chunks(values, chunk):
            self.execute(with_in_list(template, len(part)), part)

    def hold_sqlite_write_lock(self) -> None:
        """SQLite: take its one write lock now, waiting for it up to ``busy_timeout``
        (``BEGIN IMMEDIATE``), so that what the transaction reads next is still true when it
        writes: pysqlite would begin the transaction only at its first write. A transaction
        already begun keeps what it holds. Nothing on PostgreSQL, which locks rows instead."""
        if self.is_sqlite and not self.raw.in_transaction:
            self.raw.execute("BEGIN IMMEDIATE")


@functools.lru_cache(maxsize=256)
def _pyformat(text: str) -> str:
    return text.replace("%", "%%").replace("?", "%s")


@functools.lru_cache(maxsize=1024)
def with_in_list(template: str, count: int) -> str:
    """``template`` with each ``{0}`` (or ``{}``) made a list of ``count`` placeholders:
    ``(?, ?, …)``."""
    return template.format(placeholders(count))


def placeholders(count: int) -> str:
    """A list of ``count`` placeholders for an ``IN``: ``(?, ?, …)``."""
    return "(" + ", ".join(["?"] * count) + ")"


def _identity(value: Any) -> Any:
    return value


@functools.lru_cache(maxsize=256)
def _binder(dialect: Dialect, column: ColumnElement[Any]) -> Callable[[Any], Any]:
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor or _identity


@functools.lru_cache(maxsize=256)
def _reader(dialect: Dialect, column: ColumnElement[Any]) -> Callable[[Any], Any]:
    processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return processor or _identity


def chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _checked(table: Table, columns: Sequence[str]) -> str:
    # Built from the model, so a renamed column fails at import, not on a push.
    return ", ".join(table.c[name].name for name in columns)


def insert_sql(table: Table, columns: Sequence[str], *, rows: int = 1, suffix: str = "") -> str:
    """``INSERT INTO table (columns) VALUES (?, …)`` (``rows`` times) plus ``suffix``
    (``ON CONFLICT …``, ``RETURNING …``)."""
    marks = "(" + ", ".join(["?"] * len(columns)) + ")"
    values = ", ".join([marks] * rows)
    names = _checked(table, columns)
    return f"INSERT INTO {table.name} ({names}) VALUES {values}{suffix}"  # noqa: S608


def update_sql(table: Table, columns: Sequence[str], where: Sequence[str]) -> str:
    """``UPDATE table SET column = ?, … WHERE key = ? AND …``."""
    _checked(table, [*columns, *where])
    assignments = ", ".join(f"{name} = ?" for name in columns)
    condition = " AND ".join(f"{name} = ?" for name in where)
    return f"UPDATE {table.name} SET {assignments} WHERE {condition}"  # noqa: S608
