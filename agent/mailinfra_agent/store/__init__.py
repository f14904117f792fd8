"""The host services' store: SQLite by default, PostgreSQL for many hosts, one interface, versioned migrations.

Later features add tables only as new files in ``sql/`` (and their queries in a module here).
"""

from .database import Database, Dialect, NoStore, StoreError, connect, connect_postgresql, connect_sqlite
from .schema import Migration, Status, migrate, migrations, status

__all__ = [
    'Database',
    'Dialect',
    'Migration',
    'NoStore',
    'Status',
    'StoreError',
    'connect',
    'connect_postgresql',
    'connect_sqlite',
    'migrate',
    'migrations',
    'status',
]
