"""Versioned schema migrations, applied in order, each in its own transaction, recorded in ``schema_migrations``.

Migrations are the ``NNNN_name.sql`` files of ``mailinfra_agent/store/sql/``; a file named
``NNNN_name.<dialect>.sql`` replaces the common one for that dialect. A database whose schema is newer than
this code, or whose history differs from it, is refused rather than changed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources

from .database import BOOKKEEPING_TABLE, Database, Dialect, StoreError

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)
"""

_FILE = re.compile(r'^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<dialect>sqlite|postgresql))?\.sql$')


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class Status:
    current: int
    """The newest applied version; 0 for an empty database."""
    latest: int
    """The newest version this code knows."""
    pending: tuple[Migration, ...]


def migrations(dialect: Dialect, package: str = f'{__package__}.sql') -> tuple[Migration, ...]:
    """The migrations for ``dialect``, in version order."""
    common: dict[int, tuple[str, str]] = {}
    specific: dict[int, tuple[str, str]] = {}
    for entry in sorted(resources.files(package).iterdir(), key=lambda item: item.name):
        match = _FILE.match(entry.name)
        if match is None:
            continue
        version = int(match['version'])
        target = common if match['dialect'] is None else specific if match['dialect'] == dialect else None
        if target is None:
            continue
        if version in target:
            raise StoreError(f'two migrations with version {version}: {target[version][0]} and {match["name"]}')
        target[version] = (match['name'], entry.read_text(encoding='utf-8'))
    merged = {**common, **specific}
    found = sorted(merged)
    if found != list(range(1, len(found) + 1)):
        raise StoreError(f'migration versions must be 1, 2, 3... without gaps; found {found}')
    return tuple(Migration(version, *merged[version]) for version in found)


def statements(sql: str) -> list[str]:
    """Split a migration into statements at ``;`` outside quotes and ``--`` comments."""
    result: list[str] = []
    current: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(sql):
        char = sql[index]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in ('"', "'"):
            quote = char
        elif sql.startswith('--', index):
            end = sql.find('\n', index)
            index = len(sql) if end < 0 else end
            continue
        elif char == ';':
            result.append(''.join(current).strip())
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    result.append(''.join(current).strip())
    return [statement for statement in result if statement]


def _applied(db: Database, *, create: bool = True) -> dict[int, str]:
    if create:
        db.execute(BOOKKEEPING)
    elif not db.has_tables(BOOKKEEPING_TABLE):
        return {}
    return {int(version): str(name) for version, name in db.execute('SELECT version, name FROM schema_migrations')}


def _verify(applied: dict[int, str], known: tuple[Migration, ...]) -> None:
    latest = known[-1].version if known else 0
    newer = [version for version in applied if version > latest]
    if newer:
        raise StoreError(
            f'the database schema is at version {max(newer)}, newer than this agent knows ({latest}); '
            'upgrade mailinfra-agent'
        )
    for migration in known:
        name = applied.get(migration.version)
        if name is not None and name != migration.name:
            raise StoreError(
                f'migration {migration.version} was applied as "{name}" but this agent has "{migration.name}"; '
                'the database belongs to a different build'
            )
    gaps = [m.version for m in known if m.version not in applied and any(v > m.version for v in applied)]
    if gaps:
        raise StoreError(f'migration(s) {gaps} are missing below applied ones; the database history is broken')


def status(db: Database) -> Status:
    """Where the database stands against this code; changes nothing (a read-only store will do)."""
    known = migrations(db.dialect)
    applied = _applied(db, create=False)
    _verify(applied, known)
    return Status(
        current=max(applied, default=0),
        latest=known[-1].version if known else 0,
        pending=tuple(migration for migration in known if migration.version not in applied),
    )


def migrate(db: Database, now: int | None = None) -> list[Migration]:
    """Apply every pending migration, each with its bookkeeping row in one transaction; return those applied.

    Safe to run twice, and from two processes at once: each migration re-reads the history under a lock.
    """
    known = migrations(db.dialect)
    done: list[Migration] = []
    for migration in known:
        with db.transaction():
            if db.dialect == 'postgresql':
                db.execute(BOOKKEEPING)
                db.execute('LOCK TABLE schema_migrations IN EXCLUSIVE MODE')
            applied = _applied(db)
            _verify(applied, known)
            if migration.version in applied:
                continue
            for statement in statements(migration.sql):
                db.execute(statement)
            db.execute(
                'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
                (migration.version, migration.name, int(time.time()) if now is None else now),
            )
        done.append(migration)
    if not known:  # nothing to apply, but a newer database must still be refused
        status(db)
    return done
