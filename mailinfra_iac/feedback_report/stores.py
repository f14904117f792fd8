"""Several hosts' SQLite stores read as one: ``mailinfra feedback report --store A --store B ...``.

Each store is attached read-only to an in-memory database, and a temporary view ``feedback_events`` is the
``UNION ALL`` of their ``feedback_events`` tables. Every query that reads one store (the report, the warm-up
history) reads the view unchanged, so the figures equal those of one store holding all the hosts' events: rows
are concatenated, never merged by key, so events of different hosts cannot replace each other. The view is only
read; nothing is written to the store files (no journal-mode change, no migration).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from mailinfra_agent.store import Database, NoStore, StoreError
from mailinfra_agent.store.database import not_a_database, require_store, sqlite_uri

__all__ = ['TABLE', 'open_sqlite_stores']

TABLE = 'feedback_events'


def _check_distinct(paths: Sequence[Path]) -> None:
    """The same file named twice would count its events twice."""
    seen: dict[tuple[int, int], Path] = {}
    for path in paths:
        info = path.stat()
        identity = (info.st_dev, info.st_ino)
        if identity in seen:
            raise StoreError(f'{path} and {seen[identity]} are the same store: each host counts once')
        seen[identity] = path


def open_sqlite_stores(paths: Sequence[Path]) -> Database:
    """One read-only database whose ``feedback_events`` holds the events of every store in ``paths``.

    Raises :class:`StoreError` (its message says which file) for the same file twice, a store without a
    ``feedback_events`` table and more stores than SQLite can attach; :class:`NoStore` for a missing file or one
    that is not a mailinfra store.
    """
    if not paths:
        raise StoreError('no store given')
    for path in paths:
        # sqlite3 would create a missing file: a report never does.
        if not path.is_file():
            raise NoStore(f'no such store: {path}')
    _check_distinct(paths)
    connection = sqlite3.connect(':memory:', uri=True, isolation_level=None)
    try:
        limit = connection.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED)
        if len(paths) > limit:
            raise StoreError(
                f'{len(paths)} stores: SQLite reads at most {limit} at once; report on fewer, '
                'or give the hosts the shared PostgreSQL store'
            )
        columns: list[str] | None = None
        for index, path in enumerate(paths):
            schema = f'store{index}'
            try:
                connection.execute('ATTACH DATABASE ? AS ' + schema, (sqlite_uri(path, 'ro'),))
            except sqlite3.Error as error:
                raise not_a_database(error, path) or StoreError(f'sqlite: cannot read {path}: {error}') from None
            require_store(connection, path, schema)
            try:
                names = [row[1] for row in connection.execute(f'PRAGMA {schema}.table_info({TABLE})')]
            except sqlite3.Error as error:
                raise StoreError(f'sqlite: cannot read {path}: {error}') from None
            if not names:
                raise StoreError(
                    f'{path} has no {TABLE} table: it is not a feedback store, or its schema is older than '
                    'migration 0002 (the ingest service migrates it when it starts)'
                )
            # Stores of different agent versions may differ in later columns: the view keeps the shared ones.
            columns = names if columns is None else [name for name in columns if name in names]
        assert columns is not None
        selected = ', '.join(f'"{name}"' for name in columns)
        union = ' UNION ALL '.join(f'SELECT {selected} FROM store{index}.{TABLE}' for index in range(len(paths)))
        connection.execute(f'CREATE TEMP VIEW {TABLE} AS {union}')
        connection.execute('PRAGMA query_only = ON')
    except BaseException:
        connection.close()
        raise
    return Database(connection, 'sqlite', (sqlite3.Error,))
