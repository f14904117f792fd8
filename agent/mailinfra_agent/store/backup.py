"""A consistent copy of the host's SQLite store, taken while the services keep writing (``store backup``).

SQLite's online backup API copies every page inside one read transaction: the copy is the store as of one
commit, never a file caught mid-write. In WAL mode the services' writers are not blocked meanwhile. The copy is
a single self-contained file (journal mode DELETE, no ``-wal``/``-shm`` beside it), checked with
``PRAGMA quick_check``, mode 0600 (it holds recipients' addresses), and renamed into place whole.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .database import BOOKKEEPING_TABLE, SQLITE_BUSY_TIMEOUT_MS, NoStore, StoreError, require_store, sqlite_uri

__all__ = ['Backup', 'backup_sqlite']

EVENTS_TABLE = 'feedback_events'


@dataclass(frozen=True)
class Backup:
    """What was copied: the schema version and the number of feedback events (None: no such table)."""

    path: Path
    schema_version: int
    events: int | None


def backup_sqlite(source: Path, output: Path) -> Backup:
    """Copy the store at ``source`` to ``output`` (replaced whole); a :class:`StoreError` says why it cannot be."""
    if not source.is_file():
        raise NoStore(f'no such store: {source}: nothing to collect (the services have not written one)')
    if not output.parent.is_dir():
        raise StoreError(f'the directory of {output} does not exist')
    try:
        fd, name = tempfile.mkstemp(prefix=f'.{output.name}.', suffix='.tmp', dir=output.parent)  # mode 0600
    except OSError as error:
        raise StoreError(f'cannot write {output}: {error.strerror or error}') from None
    os.close(fd)
    try:
        try:
            # Read-only: the copy never changes the store (not even its journal mode).
            reader = sqlite3.connect(sqlite_uri(source, 'ro'), uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
            try:
                require_store(reader, source)
                copy = sqlite3.connect(name, isolation_level=None)
                try:
                    reader.backup(copy)
                    copy.execute('PRAGMA journal_mode = DELETE')
                    verdict = copy.execute('PRAGMA quick_check').fetchone()[0]
                    if verdict != 'ok':
                        raise StoreError(f'the copy of {source} fails its check: {verdict}')
                    result = _describe(copy, output)
                finally:
                    copy.close()
            finally:
                reader.close()
        except sqlite3.Error as error:
            raise StoreError(f'sqlite: cannot copy {source}: {error}') from None
        with open(name, 'rb') as handle:
            os.fsync(handle.fileno())
        os.replace(name, output)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return result


def _describe(copy: sqlite3.Connection, output: Path) -> Backup:
    tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    version = 0
    if BOOKKEEPING_TABLE in tables:
        version = int(copy.execute(f'SELECT COALESCE(MAX(version), 0) FROM {BOOKKEEPING_TABLE}').fetchone()[0])
    events = int(copy.execute(f'SELECT COUNT(*) FROM {EVENTS_TABLE}').fetchone()[0]) if EVENTS_TABLE in tables else None
    return Backup(output, version, events)
