"""Agent test fixtures: a real PostgreSQL from Debian's packages (moved here from test_store.py for every test file).

The PostgreSQL cluster is created in a temporary directory, started on a free loopback port and stopped
by the fixture. If it cannot start, the tests fail: they are never skipped. ``postgres_server`` gives a
cluster of one's own that a test may stop and start again (a store outage).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailinfra_agent.contract import Store

NOT_STORES: dict[str, bytes | None] = {
    'empty': b'',
    'one-byte': b'x',
    'text': b'not a database' * 100,
    'other-sqlite': None,
}
"""Files a read-only command must refuse and leave alone (None: a SQLite database without schema_migrations)."""


def not_a_store(path: Path, kind: str) -> tuple[bytes, int]:
    """Write the file ``NOT_STORES[kind]`` at ``path``; its bytes and modification time, to compare afterwards."""
    content = NOT_STORES[kind]
    if content is None:
        sqlite3.connect(path).execute('CREATE TABLE t (x)').connection.close()
    else:
        path.write_bytes(content)
    return path.read_bytes(), path.stat().st_mtime_ns


PG_BIN = Path('/usr/lib/postgresql/15/bin')
PG_USER = 'mailinfra'
PG_PASSWORD = 'test-only-password'


@dataclass(frozen=True)
class Postgres:
    port: int
    directory: Path
    password_file: Path
    owner: str | None = None
    """The system user the server runs as (``postgres`` when the tests run as root)."""

    def store(self, database: str) -> Store:
        dsn = f'host=127.0.0.1 port={self.port} dbname={database} user={PG_USER}'
        return Store('postgresql', dsn=dsn, password_file=str(self.password_file))

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut)."""
        _pg_ctl(self, ['-m', 'fast', '-w', 'stop'], check=True)

    def start(self) -> None:
        options = f'-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory / "run"} -c fsync=off'
        _pg_ctl(self, ['-o', options, '-l', str(self.directory / 'log'), '-w', 'start'], check=True)


def _pg_ctl(server: Postgres, arguments: list[str], check: bool) -> None:
    command = _as_owner([str(PG_BIN / 'pg_ctl'), '-D', str(server.directory / 'data'), *arguments], server.owner)
    subprocess.run(command, check=check, capture_output=True, text=True, cwd=server.directory)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` system user then."""
    return ['runuser', '-u', owner, '--', *command] if owner else command


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster, started; stopped and removed at the end."""
    if not (PG_BIN / 'initdb').exists():
        pytest.fail(f'PostgreSQL is not installed ({PG_BIN}/initdb missing): run script/bootstrap')
    owner = None
    # Not under pytest's temporary directory: that one is private to us, and the server runs as another user.
    root = Path(tempfile.mkdtemp(prefix='mailinfra-test-postgres-'))
    if os.geteuid() == 0:
        owner = 'postgres'
        account = pwd.getpwnam(owner)
        os.chown(root, account.pw_uid, account.pw_gid)
    data, sockets = root / 'data', root / 'run'
    initdb_password = root / 'initdb-password'
    initdb_password.write_text(PG_PASSWORD + '\n', encoding='utf-8')
    sockets.mkdir()
    if owner:
        for path in (initdb_password, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    password_file = root / 'store-password'  # what the contract names: a 0600 file owned by the agent (us)
    password_file.write_text(PG_PASSWORD + '\n', encoding='utf-8')
    password_file.chmod(0o600)
    server = Postgres(_free_port(), root, password_file, owner)
    try:
        subprocess.run(
            _as_owner(
                [
                    str(PG_BIN / 'initdb'),
                    '-D',
                    str(data),
                    '-U',
                    PG_USER,
                    '--auth-local=trust',
                    '--auth-host=scram-sha-256',
                    f'--pwfile={initdb_password}',
                    '--no-sync',
                ],
                owner,
            ),
            check=True,
            capture_output=True,
            text=True,
            cwd=root,
        )
        server.start()
    except subprocess.CalledProcessError as error:
        log = (root / 'log').read_text(errors='replace') if (root / 'log').exists() else ''
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f'PostgreSQL did not start: {error.stderr or error.stdout}\n{log}')
    try:
        yield server
    finally:
        # immediate: no shutdown checkpoint (it wrote a whole session's buffers); the cluster is removed next
        _pg_ctl(server, ['-m', 'immediate', '-w', 'stop'], check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope='session')
def postgres() -> Iterator[Postgres]:
    """The session's PostgreSQL server (shared: create a database of your own in it)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL server of this test alone: it may stop and start it."""
    with running_postgres() as server:
        yield server
