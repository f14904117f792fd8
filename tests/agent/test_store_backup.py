"""``mailinfra-agent store backup``: a consistent, self-contained 0600 copy of a SQLite store that is being written."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.cli import main
from mailinfra_agent.contract import Store, load_contract
from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.store import NoStore, connect, migrate, migrations
from mailinfra_agent.store.backup import backup_sqlite
from mailinfra_agent.store.events import insert_events
from tests.agent.test_contract import minimal

BATCH = 50


def events(start: int, count: int) -> list[Event]:
    return [
        Event(
            key=event_key('backup-test', number),
            kind='delivery',
            status='sent',
            time=1_790_000_000.0 + number,
            recipient=f'r{number}@example.org',
            source='test',
        )
        for number in range(start, start + count)
    ]


def make_store(path: Path, count: int = 0) -> Path:
    with connect(Store('sqlite', path=str(path))) as db:
        migrate(db)
        if count:
            insert_events(db, events(0, count))
    return path


def contract_file(tmp_path: Path, store: dict[str, Any]) -> Path:
    data = minimal()
    data['store'] = store
    load_contract(data)
    path = tmp_path / 'agent.json'
    path.write_text(json.dumps(data), encoding='utf-8')
    return path


def test_copy_while_a_writer_commits_holds_whole_transactions(tmp_path: Path) -> None:
    source = make_store(tmp_path / 'agent.db', BATCH)
    stop = threading.Event()
    written = [BATCH]

    def writer() -> None:
        with connect(Store('sqlite', path=str(source))) as db:
            while not stop.is_set():
                insert_events(db, events(written[0], BATCH))  # one transaction of BATCH events
                written[0] += BATCH

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        counts = []
        for index in range(5):
            copy = backup_sqlite(source, tmp_path / f'copy{index}.db')
            assert copy.events is not None
            counts.append(copy.events)
    finally:
        stop.set()
        thread.join()
    # Every copy holds whole transactions only, and the writer went on meanwhile.
    assert all(count % BATCH == 0 for count in counts), counts
    assert counts[-1] >= BATCH and written[0] > BATCH
    with sqlite3.connect(tmp_path / 'copy4.db') as check:
        assert check.execute('PRAGMA integrity_check').fetchone() == ('ok',)
        assert check.execute('SELECT COUNT(*) FROM feedback_events').fetchone() == (counts[-1],)


def test_the_copy_is_self_contained_private_and_replaced_whole(tmp_path: Path) -> None:
    source = make_store(tmp_path / 'agent.db', 7)
    output = tmp_path / 'out' / 'store.sqlite'
    output.parent.mkdir()
    output.write_bytes(b'an older copy')
    output.chmod(0o644)
    copy = backup_sqlite(source, output)
    assert (copy.events, copy.schema_version) == (7, migrations('sqlite')[-1].version)
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert sorted(path.name for path in output.parent.iterdir()) == ['store.sqlite']  # no -wal, -shm, temp file
    with sqlite3.connect(output) as check:
        assert check.execute('PRAGMA journal_mode').fetchone() == ('delete',)


def test_no_store_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / 'store.sqlite'
    with pytest.raises(NoStore, match=r'no such store: .*none\.db: nothing to collect'):
        backup_sqlite(tmp_path / 'none.db', output)
    assert list(tmp_path.iterdir()) == []
    garbage = tmp_path / 'garbage.db'
    garbage.write_bytes(b'not a database' * 100)
    with pytest.raises(NoStore, match=f'{garbage} is not a mailinfra store: file is not a database'):
        backup_sqlite(garbage, output)
    empty = tmp_path / 'empty.db'
    empty.write_bytes(b'')  # SQLite would read it as an empty database, and copy it
    with pytest.raises(NoStore, match=f'{empty} is not a mailinfra store: it has no schema_migrations table'):
        backup_sqlite(empty, output)
    assert sorted(path.name for path in tmp_path.iterdir()) == ['empty.db', 'garbage.db']
    assert (empty.read_bytes(), garbage.read_bytes()) == (b'', b'not a database' * 100)


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_store(tmp_path / 'agent.db', 3)
    contract = str(contract_file(tmp_path, {'backend': 'sqlite', 'path': str(source)}))
    output = tmp_path / 'copy.sqlite'
    assert main(['store', '--contract', contract, 'backup', str(output)]) == 0
    version = migrations('sqlite')[-1].version
    assert capsys.readouterr().out == (f'copied {source} to {output}: schema version {version}, 3 feedback events\n')
    source.unlink()
    assert main(['store', '--contract', contract, 'backup', str(tmp_path / 'again.sqlite')]) == 2
    assert f'store: no such store: {source}: nothing to collect' in capsys.readouterr().err
    assert not (tmp_path / 'again.sqlite').exists()


def test_command_on_a_postgresql_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contract = str(contract_file(tmp_path, {'backend': 'postgresql', 'dsn': 'host=127.0.0.1 dbname=mailinfra'}))
    assert main(['store', '--contract', contract, 'backup', str(tmp_path / 'copy.sqlite')]) == 2
    assert 'shared PostgreSQL store: nothing to copy' in capsys.readouterr().err
