"""One small database interface over SQLite (the default) and PostgreSQL (psycopg 3, the ``postgres`` extra).

SQL is written once with ``?`` placeholders; the PostgreSQL side turns them into ``%s``. Statements run in
autocommit mode unless they are inside ``with db.transaction():``, which commits on success and rolls back
on an exception.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

from ..contract import SecretFileError, Store, read_secret_file

Dialect = Literal['sqlite', 'postgresql']
Row = tuple[Any, ...]

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite writer waits for another one (another service on the host) before failing."""
CONNECT_TIMEOUT = 10
"""Seconds to wait for a PostgreSQL server."""


class StoreError(Exception):
    """The store cannot be opened or used; the message says why."""


class NoStore(StoreError):
    """A command that only reads (or never creates) was given a SQLite path that holds no mailinfra store."""


BOOKKEEPING_TABLE = 'schema_migrations'
"""What makes a database a mailinfra store: the table every migration records itself in."""


class _Cursor(Protocol):
    description: Any

    def fetchall(self) -> list[Any]: ...


class _Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def close(self) -> None: ...


def postgresql_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s``, and a literal ``%`` doubled; quoted text is left alone."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
            out.append('%%' if char == '%' else char)
        elif char in ('"', "'"):
            quote = char
            out.append(char)
        elif char == '?':
            out.append('%s')
        elif char == '%':
            out.append('%%')
        else:
            out.append(char)
    return ''.join(out)


class Database:
    """A connection to the store. Use :func:`connect`; close it with ``close()`` or a ``with`` block."""

    def __init__(self, connection: _Connection, dialect: Dialect, errors: tuple[type[Exception], ...]) -> None:
        self._connection = connection
        self.dialect: Dialect = dialect
        self._errors = errors
        self._in_transaction = False
        self._many = connection.executemany if isinstance(connection, sqlite3.Connection) else None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def _sql(self, sql: str) -> str:
        return postgresql_sql(sql) if self.dialect == 'postgresql' else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; the rows it returns (empty for statements without a result)."""
        try:
            cursor = self._connection.execute(self._sql(sql), tuple(params))
            return [tuple(row) for row in cursor.fetchall()] if cursor.description is not None else []
        except self._errors as error:
            raise StoreError(f'{self.dialect}: {_first_line(error)} (in: {" ".join(sql.split())[:200]})') from error

    def has_tables(self, *names: str) -> bool:
        """Whether every one of the tables ``names`` exists (the migration that adds them was applied)."""
        if self.dialect == 'sqlite':
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = 'SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?'
        return all(self.execute(sql, (name,)) for name in names)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row (inside one transaction when not already in one)."""
        with self.transaction():
            if self._many is not None:  # sqlite3's own loop: one prepared statement, no Python per row
                try:
                    self._many(sql, rows)
                except self._errors as error:
                    raise StoreError(f'sqlite: {_first_line(error)} (in: {" ".join(sql.split())[:200]})') from error
                return
            for params in rows:
                self.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """Commit when the block ends, roll back when it raises. Nested blocks join the outer transaction."""
        if self._in_transaction:
            yield self
            return
        # SQLite: take the write lock at once, so that two writers wait (busy timeout) instead of deadlocking.
        self.execute('BEGIN IMMEDIATE' if self.dialect == 'sqlite' else 'BEGIN')
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._in_transaction = False
            self.execute('ROLLBACK')
            raise
        self._in_transaction = False
        self.execute('COMMIT')


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def connect(store: Store, *, read_only: bool = False, create: bool = True) -> Database:
    """Open the store the contract names.

    ``read_only``: change nothing (a SQLite file is opened ``mode=ro``, a PostgreSQL session is read-only);
    ``create=False``: open an existing SQLite store only. Either way a SQLite path that holds no mailinfra store
    is a :class:`NoStore` error, and the file is left as it was (same bytes, same modification time).
    """
    if store.backend == 'sqlite':
        if store.path is None:
            raise StoreError('the sqlite store needs a path')
        return connect_sqlite(store.path, read_only=read_only, create=create)
    if store.dsn is None:
        raise StoreError('the postgresql store needs a dsn')
    try:
        password = read_secret_file(store.password_file) if store.password_file is not None else None
    except SecretFileError as error:
        raise StoreError(str(error)) from None
    return connect_postgresql(store.dsn, password, read_only=read_only)


def sqlite_uri(path: str | Path, mode: Literal['ro', 'rw']) -> str:
    """A URI that opens the existing file ``path`` without creating it (``mode=ro``: nor writing it)."""
    return 'file:' + quote(str(Path(path).resolve())) + f'?mode={mode}'


def not_a_database(error: sqlite3.Error, path: str | Path) -> NoStore | None:
    """SQLite's "file is not a database" as :class:`NoStore`; None for another error (busy, no permission ...)."""
    if getattr(error, 'sqlite_errorcode', None) != sqlite3.SQLITE_NOTADB:
        return None
    return NoStore(f'{path} is not a mailinfra store: {error}')


def require_store(connection: sqlite3.Connection, path: str | Path, schema: str = 'main') -> None:
    """Raise :class:`NoStore` unless the SQLite database ``schema`` of ``connection`` is a mailinfra store."""
    try:
        found = connection.execute(
            f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (BOOKKEEPING_TABLE,)
        ).fetchall()
    except sqlite3.Error as error:
        raise not_a_database(error, path) or StoreError(f'sqlite: cannot read {path}: {error}') from None
    if not found:
        raise NoStore(
            f'{path} is not a mailinfra store: it has no {BOOKKEEPING_TABLE} table '
            '(the services create the store with mailinfra-agent store migrate)'
        )


def connect_sqlite(path: str | Path, *, read_only: bool = False, create: bool = True) -> Database:
    memory = str(path) == ':memory:'
    if not memory and not Path(path).parent.is_dir():
        raise StoreError(f'sqlite: the directory of {path} does not exist')
    existing = (read_only or not create) and not memory
    if existing and not Path(path).is_file():
        raise NoStore(f'no such store: {path}')
    try:
        target = sqlite_uri(path, 'ro' if read_only else 'rw') if existing else str(path)
        connection = sqlite3.connect(target, uri=existing, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as error:
        raise StoreError(f'sqlite: cannot open {path}: {error}') from None
    try:
        connection.execute(f'PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}')
        if existing:
            require_store(connection, path)  # before anything below could turn the file into a database
        if read_only:
            connection.execute('PRAGMA query_only = ON')
        else:
            # A new file only (an existing store keeps its size): a commit writes every page its random keys
            # touched, and fewer, larger pages cost less (the 1,000,000-line feedback benchmark: 0.7 s of system
            # time, not 1.2).
            connection.execute('PRAGMA page_size = 16384')
            connection.execute('PRAGMA journal_mode = WAL')
        connection.execute('PRAGMA foreign_keys = ON')
    except sqlite3.Error as error:
        connection.close()
        raise StoreError(f'sqlite: cannot open {path}: {error}') from None
    except BaseException:
        connection.close()
        raise
    return Database(connection, 'sqlite', (sqlite3.Error,))


def connect_postgresql(dsn: str, password: str | None, *, read_only: bool = False) -> Database:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            'the postgresql store needs psycopg: install mailinfra-agent with the "postgres" extra'
        ) from None
    from psycopg.conninfo import conninfo_to_dict

    try:
        settings = conninfo_to_dict(dsn)
    except psycopg.Error as error:  # libpq quotes the bad part, which can be the password: not shown
        reason = re.sub(r'"[^"]*"', '"..."', _first_line(error))
        raise StoreError(f'postgresql: the dsn is not a libpq connection string: {reason}') from None
    if 'password' in settings:
        raise StoreError(
            'postgresql: the dsn holds a password; put it in a 0600 file named by --password-file (the '
            "contract's password_file), or in libpq's ~/.pgpass (PGPASSFILE)"
        )
    # The dsn is not shown whole: a misspelt option ("pasword=...") could hold the password.
    named = ' '.join(f'{name}={settings[name]}' for name in ('host', 'port', 'dbname', 'user') if name in settings)
    where = named or "the dsn's server"  # service=NAME, or libpq's defaults and PG* variables
    extra: dict[str, Any] = {'password': password} if password is not None else {}
    try:
        connection = psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **extra)
    except psycopg.Error as error:
        raise StoreError(f'postgresql: cannot connect ({where}): {_first_line(error)}') from None
    db = Database(connection, 'postgresql', (psycopg.Error,))
    if read_only:
        try:
            db.execute('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY')
        except BaseException:
            db.close()
            raise
    return db
