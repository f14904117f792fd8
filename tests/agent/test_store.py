"""The store: one interface and the same migrations on SQLite and on a real PostgreSQL from Debian's packages.

The PostgreSQL fixture (``postgres``, in conftest.py) fails the tests when the server cannot start: never skipped.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_agent.cli import main
from mailinfra_agent.contract import Store, load_contract
from mailinfra_agent.store import Database, StoreError, connect, migrate, migrations, status
from mailinfra_agent.store.database import postgresql_sql
from mailinfra_agent.store.listings import Listing, history, observe, open_listings
from mailinfra_agent.store.schema import statements
from tests.agent.conftest import NOT_STORES, Postgres, not_a_store, postgres
from tests.agent.test_contract import minimal

__all__ = ['Postgres', 'postgres']  # the fixture lives in conftest.py; some tests still import it from here

_databases = iter(range(1, 10_000))


@pytest.fixture(params=['sqlite', 'postgresql'])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh, empty store of each backend."""
    if request.param == 'sqlite':
        return Store('sqlite', path=str(tmp_path / 'agent.db'))
    server: Postgres = request.getfixturevalue('postgres')
    name = f'test_{next(_databases)}'
    with connect(server.store('postgres')) as admin:
        admin.execute(f'CREATE DATABASE {name}')
    return server.store(name)


@pytest.fixture
def db(store: Store) -> Iterator[Database]:
    with connect(store) as database:
        yield database


def tables(db: Database) -> set[str]:
    if db.dialect == 'sqlite':
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = db.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    return {str(row[0]) for row in rows}


def test_migrate_applies_every_migration_once(db: Database) -> None:
    known = migrations(db.dialect)
    assert [m.version for m in known] == list(range(1, len(known) + 1))
    before = status(db)
    assert (before.current, before.latest, len(before.pending)) == (0, len(known), len(known))
    assert [m.name for m in migrate(db, now=1_700_000_000)] == [m.name for m in known]
    assert {'schema_migrations', 'listing_state'} <= tables(db)
    assert migrate(db) == []  # idempotent
    after = status(db)
    assert (after.current, after.pending) == (len(known), ())
    assert db.execute('SELECT version, name, applied_at FROM schema_migrations ORDER BY version') == [
        (m.version, m.name, 1_700_000_000) for m in known
    ]


def test_has_tables_is_true_only_when_every_table_exists(db: Database) -> None:
    assert not db.has_tables('schema_migrations')
    migrate(db)
    assert db.has_tables('schema_migrations', 'listing_state')
    assert not db.has_tables('schema_migrations', 'no_such_table')


def test_a_newer_database_is_refused(db: Database) -> None:
    migrate(db)
    db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from_the_future', 0)")
    latest = migrations(db.dialect)[-1].version
    message = f'the database schema is at version 99, newer than this agent knows ({latest}); upgrade mailinfra-agent'
    with pytest.raises(StoreError, match=re.escape(message)):
        migrate(db)
    with pytest.raises(StoreError, match=re.escape(message)):
        status(db)


def test_a_different_history_is_refused(db: Database) -> None:
    migrate(db)
    db.execute("UPDATE schema_migrations SET name = 'something_else' WHERE version = 1")
    with pytest.raises(StoreError, match='migration 1 was applied as "something_else"'):
        migrate(db)


def test_a_failing_migration_leaves_nothing_behind(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / 'broken_migrations'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / '0001_good.sql').write_text('CREATE TABLE good (id INTEGER PRIMARY KEY);')
    (package / '0002_bad.sql').write_text('CREATE TABLE half (id INTEGER);\nCREATE TABLE half (id INTEGER);')
    monkeypatch.syspath_prepend(str(tmp_path))
    import mailinfra_agent.store.schema as module

    original = module.migrations
    monkeypatch.setattr(module, 'migrations', lambda dialect: original(dialect, 'broken_migrations'))
    with pytest.raises(StoreError):
        module.migrate(db)
    assert 'good' in tables(db) and 'half' not in tables(db)
    assert db.execute('SELECT version FROM schema_migrations') == [(1,)]


def test_transactions_commit_and_roll_back(db: Database) -> None:
    migrate(db)
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO listing_state VALUES ('192.0.2.1', 'zone.example', '127.0.0.2', 1, 1, NULL)")
        raise RuntimeError('abort')
    assert db.execute('SELECT count(*) FROM listing_state') == [(0,)]
    db.executemany(
        'INSERT INTO listing_state VALUES (?, ?, ?, ?, ?, NULL)',
        [('192.0.2.1', 'a.example', '127.0.0.2', 1, 2), ('192.0.2.1', 'b.example', '100%', 1, 1)],
    )
    assert db.execute("SELECT codes FROM listing_state WHERE codes LIKE '%\\%' ESCAPE '\\'") == [('100%',)]
    assert db.execute('SELECT count(*) FROM listing_state WHERE codes LIKE ?', ('127%',)) == [(1,)]


def test_sql_errors_are_store_errors_with_the_statement(db: Database) -> None:
    with pytest.raises(StoreError, match=r'\(in: SELECT \* FROM no_such_table\)'):
        db.execute('SELECT * FROM no_such_table')


def test_executemany_errors_are_store_errors_and_roll_back(db: Database) -> None:
    migrate(db)
    rows = [('192.0.2.1', 'a.example', '127.0.0.2', 1, 2), ('192.0.2.1', 'a.example', '127.0.0.3', 1, 2)]
    with pytest.raises(StoreError, match=r'\(in: INSERT INTO listing_state'):
        db.executemany('INSERT INTO listing_state VALUES (?, ?, ?, ?, ?, NULL)', rows)  # the same key twice
    assert db.execute('SELECT count(*) FROM listing_state') == [(0,)]


def test_listing_history(db: Database) -> None:
    migrate(db)
    observe(db, '192.0.2.10', 'zen.spamhaus.org', ['127.0.0.4'], now=100)
    observe(db, '192.0.2.10', 'zen.spamhaus.org', ['127.0.0.4', '127.0.0.2'], now=200)
    observe(db, '192.0.2.11', 'zen.spamhaus.org', [], now=200)  # never listed: no row
    assert open_listings(db) == [Listing('192.0.2.10', 'zen.spamhaus.org', '127.0.0.2,127.0.0.4', 100, 200, None)]
    observe(db, '192.0.2.10', 'zen.spamhaus.org', [], now=300)
    observe(db, '192.0.2.10', 'zen.spamhaus.org', ['127.0.0.2'], now=400)
    assert history(db, '192.0.2.10') == [
        Listing('192.0.2.10', 'zen.spamhaus.org', '127.0.0.2,127.0.0.4', 100, 200, 300),
        Listing('192.0.2.10', 'zen.spamhaus.org', '127.0.0.2', 400, 400, None),
    ]
    assert history(db, '192.0.2.11') == []


def test_at_most_one_open_listing_per_subject_and_zone(db: Database) -> None:
    migrate(db)
    observe(db, 'example.com', 'dbl.spamhaus.org', ['127.0.1.2'], now=10)
    with pytest.raises(StoreError):
        db.execute("INSERT INTO listing_state VALUES ('example.com', 'dbl.spamhaus.org', '127.0.1.2', 20, 20, NULL)")


def test_two_writers_wait_for_each_other(store: Store) -> None:
    with connect(store) as first:
        migrate(first)
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            with connect(store) as database:
                for n in range(start, start + 20):
                    observe(database, f'192.0.2.{n}', 'zone.example', ['127.0.0.2'], now=n)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(start,)) for start in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with connect(store) as database:
        assert database.execute('SELECT count(*) FROM listing_state') == [(40,)]


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    with connect(Store('sqlite', path=str(tmp_path / 'agent.db'))) as database:
        assert database.execute('PRAGMA journal_mode') == [('wal',)]
        assert database.execute('PRAGMA busy_timeout') == [(5000,)]


def test_a_new_sqlite_store_has_16_kib_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    with connect(Store('sqlite', path=str(tmp_path / 'new.db'))) as database:
        migrate(database)
        assert database.execute('PRAGMA page_size') == [(16384,)]
    old = tmp_path / 'old.db'
    raw = sqlite3.connect(old)
    raw.execute('CREATE TABLE t (x)')  # 4 KiB pages, SQLite's default
    raw.close()
    with connect(Store('sqlite', path=str(old))) as database:
        migrate(database)
        assert database.execute('PRAGMA page_size') == [(4096,)]
        assert database.execute('SELECT count(*) FROM feedback_events') == [(0,)]


def test_sqlite_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r'the directory of .* does not exist'):
        connect(Store('sqlite', path=str(tmp_path / 'absent' / 'agent.db')))


def test_postgresql_password_comes_from_the_private_file(postgres: Postgres, tmp_path: Path) -> None:
    wrong = tmp_path / 'wrong-password'
    wrong.write_text('not-it\n', encoding='utf-8')
    wrong.chmod(0o600)
    store = postgres.store('postgres')
    with pytest.raises(StoreError, match=r'postgresql: cannot connect .*password authentication failed'):
        connect(Store('postgresql', dsn=store.dsn, password_file=str(wrong)))
    wrong.chmod(0o644)
    with pytest.raises(StoreError, match='mode 0644 lets group or others read a secret'):
        connect(Store('postgresql', dsn=store.dsn, password_file=str(wrong)))
    with connect(store) as database:
        assert database.execute('SELECT 1') == [(1,)]


def test_placeholders_for_postgresql() -> None:
    assert postgresql_sql("SELECT '?%', ? FROM t WHERE a LIKE 'x%' AND b = ?") == (
        "SELECT '?%%', %s FROM t WHERE a LIKE 'x%%' AND b = %s"
    )


def test_statements_split_outside_quotes_and_comments() -> None:
    sql = "-- a comment; not a split\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nINSERT INTO a VALUES ('--');\n"
    assert statements(sql) == ["CREATE TABLE a (x TEXT DEFAULT ';')", "INSERT INTO a VALUES ('--')"]


def _contract_file(tmp_path: Path, store: Store) -> Path:
    data = minimal()
    data['store'] = {key: value for key, value in dataclasses.asdict(store).items() if value is not None}
    load_contract(data)
    path = tmp_path / 'agent.json'
    path.write_text(json.dumps(data), encoding='utf-8')
    return path


def test_store_command(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contract = str(_contract_file(tmp_path, store))
    # a new host (no SQLite file yet, an empty database): every migration pending, exit 1, as the prometheus role
    # expects before its first migrate; status creates nothing
    assert main(['store', '--contract', contract, 'status']) == 1
    out = capsys.readouterr().out
    assert 'store at schema version 0 of' in out
    assert 'pending 0001 listing_state' in out
    if store.backend == 'sqlite':
        assert not Path(str(store.path)).exists()
    assert main(['store', '--contract', contract, 'migrate']) == 0
    assert 'applied 0001 listing_state' in capsys.readouterr().out
    assert main(['store', '--contract', contract, 'migrate']) == 0
    assert main(['store', '--contract', contract, 'status']) == 0
    latest = migrations(store.backend)[-1].version
    assert f'store at schema version {latest} of {latest}' in capsys.readouterr().out
    assert main(['store', '--contract', str(tmp_path / 'absent.json'), 'status']) == 2


def test_store_command_unusable_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contract = str(_contract_file(tmp_path, Store('sqlite', path=str(tmp_path / 'absent' / 'agent.db'))))
    assert main(['store', '--contract', contract, 'migrate']) == 2
    assert 'does not exist' in capsys.readouterr().err


def _indexes(db: Database, table: str) -> set[str]:
    """The secondary indexes of a table (not those of its primary key)."""
    if db.dialect == 'sqlite':
        rows = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
        )
    else:
        rows = db.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = ? AND indexname NOT LIKE '%_pkey'", (table,)
        )
    return {str(row[0]) for row in rows}


def test_feedback_tables_keep_only_the_indexes_a_query_reads(db: Database) -> None:
    migrate(db)
    # Migration 0005 dropped the recipient, ISP and the message records' Message-ID indexes: no query reads them.
    seq = {'feedback_events_seq'} if db.dialect == 'postgresql' else set()  # the exporter's insert sequence
    assert _indexes(db, 'feedback_events') - seq == {
        'feedback_events_time',
        'feedback_events_stream_time',
        'feedback_events_message_id',
    }
    assert _indexes(db, 'feedback_messages') == set()


@pytest.mark.parametrize(
    ('query', 'index'),
    [
        # Complaint resolution (ingest/store.py Writer._resolve).
        (
            "SELECT DISTINCT recipient FROM feedback_events WHERE kind = 'delivery' AND message_id = ? "
            "AND recipient <> '' ORDER BY recipient",
            'feedback_events_message_id',
        ),
        # Filling in delivery events (store/events.py messages()).
        (
            'SELECT queue_id, sender, message_id FROM feedback_messages WHERE host = ? AND stream = ? '
            'AND queue_id IN (?, ?)',
            'sqlite_autoindex_feedback_messages_1',
        ),
        # Suppression (suppression/service.py stored_events()) and retention read by time.
        (
            "SELECT key FROM feedback_events WHERE time >= ? AND status IN ('bounced', 'expired')",
            'feedback_events_time',
        ),
        ('SELECT key FROM feedback_events WHERE key = ?', 'sqlite_autoindex_feedback_events_1'),
        # An expiry whose deferrals the parser did not see (ingest/store.py expired_recipients()).
        (
            'SELECT key FROM feedback_events WHERE kind = ? AND stream = ? AND queue_id = ? AND source = ? '
            'AND time <= ? AND time > ? ORDER BY time, key',
            'feedback_events_stream_time',
        ),
    ],
)
def test_the_reads_of_feedback_tables_use_an_index(tmp_path: Path, query: str, index: str) -> None:
    with connect(Store('sqlite', path=str(tmp_path / 'agent.db'))) as db:
        migrate(db)
        plan = ' '.join(str(row[-1]) for row in db.execute(f'EXPLAIN QUERY PLAN {query}', (0,) * query.count('?')))
    assert f'USING INDEX {index}' in plan or f'USING COVERING INDEX {index}' in plan, plan


@pytest.mark.parametrize('kind', NOT_STORES)
def test_read_only_commands_leave_a_file_that_is_no_store_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """They opened it read-write: SQLite set WAL mode and a page size on it (and status created its bookkeeping
    table), so a 0-byte file became a store. Now: exit 2 naming the file, the same bytes and modification time."""
    from tests.agent.test_suppression import write_contract

    contract = str(write_contract(tmp_path))
    path = tmp_path / 'agent.db'
    before = not_a_store(path, kind)
    for command in (
        ['store', 'status'],
        ['store', 'backup', str(tmp_path / 'copy.db')],
        ['suppression', 'list'],
        ['suppression', 'export', '--format', 'csv'],
        ['suppression', 'query', 'someone@example.com'],
        ['shaping', 'status'],
    ):
        assert main([command[0], '--contract', contract, *command[1:]]) == 2, command
        err = capsys.readouterr().err
        assert f'{path} is not a mailinfra store' in err and 'Traceback' not in err, (command, err)
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before, command
        assert sorted(p.name for p in tmp_path.iterdir()) == ['agent.db', 'agent.json', 'hash.key'], command


def test_read_only_commands_never_create_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.agent.test_suppression import write_contract

    contract = str(write_contract(tmp_path))
    for command in (['suppression', 'list'], ['suppression', 'query', 'someone@example.com']):
        assert main([command[0], '--contract', contract, *command[1:]]) == 2, command
        assert f'no such store: {tmp_path / "agent.db"}' in capsys.readouterr().err
    assert main(['store', '--contract', contract, 'status']) == 1  # all pending (test_store_command)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['agent.json', 'hash.key']
    assert main(['store', '--contract', contract, 'migrate']) == 0  # a writer still creates it
    assert main(['suppression', '--contract', contract, 'query', 'someone@example.com']) == 0


@pytest.mark.parametrize(
    ('dsn', 'message'),
    [
        ('postgresql://agent:S3cret-pw@127.0.0.1:1/db', 'the dsn holds a password'),
        ('host=127.0.0.1 port=1 user=agent password=S3cret-pw', 'the dsn holds a password'),
        ('postgresql://agent@127.0.0.1:1/db?password=S3cret-pw', 'the dsn holds a password'),
        ('host=127.0.0.1 port=1 pasword=S3cret-pw', 'not a libpq connection string: invalid connection option'),
        ('postgresql://agent:S3cret%zz-pw@127.0.0.1:1/db', 'not a libpq connection string: invalid percent-encoded'),
        ('postgresql://agent:S3cret-pw@[127.0.0.1/db', 'not a libpq connection string'),
    ],
)
def test_postgresql_errors_never_show_a_password_in_the_dsn(dsn: str, message: str) -> None:
    # `mailinfra feedback report --dsn` and `warmup plan --dsn` pass what the user typed; the contract refuses it.
    with pytest.raises(StoreError, match=message) as raised:
        connect(Store('postgresql', dsn=dsn))
    assert 'S3cret' not in str(raised.value)


def test_postgresql_connection_error_names_the_server() -> None:
    with pytest.raises(StoreError) as raised:
        connect(Store('postgresql', dsn='host=127.0.0.1 port=1 dbname=mail user=agent connect_timeout=1'))
    assert str(raised.value).startswith('postgresql: cannot connect (host=127.0.0.1 port=1 dbname=mail user=agent): ')


def test_postgresql_connection_error_with_a_service_says_whose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the dsn names no server itself: libpq reads it from pg_service.conf
    services = tmp_path / 'pg_service.conf'
    services.write_text('[mail]\nhost=127.0.0.1\nport=1\ndbname=mail\nconnect_timeout=1\n', encoding='utf-8')
    monkeypatch.setenv('PGSERVICEFILE', str(services))
    with pytest.raises(StoreError) as raised:
        connect(Store('postgresql', dsn='service=mail'))
    assert str(raised.value).startswith("postgresql: cannot connect (the dsn's server): ")


def test_a_password_in_the_dsn_is_refused_with_where_it_goes() -> None:
    with pytest.raises(StoreError) as raised:
        connect(Store('postgresql', dsn='host=127.0.0.1 port=1 password=S3cret-pw'))
    assert '--password-file' in str(raised.value) and "the contract's password_file" in str(raised.value)
    assert '~/.pgpass (PGPASSFILE)' in str(raised.value)
