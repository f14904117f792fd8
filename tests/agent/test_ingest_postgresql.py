"""Ingest into a real PostgreSQL: two hosts at once with overlapping input, and a server outage in the middle.

The servers come from tests/agent/conftest.py (Debian's PostgreSQL 15 in a temporary directory, never skipped).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mailinfra_agent.contract import Store
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.store import Database, StoreError, connect, migrate
from mailinfra_agent.store.events import EVENT_COLUMNS, events, insert_events
from tests.agent.conftest import Postgres
from tests.agent.ingest_logs import generate, write_contract, write_logs

_databases = iter(range(1, 1000))
SENT = time.time() - 600
"""10 minutes before the test DSNs arrive (through the pipe, without a Received header: when they are read)."""


def _database(server: Postgres) -> Store:
    name = f'ingest_{next(_databases)}'
    with connect(server.store('postgres')) as admin:
        admin.execute(f'CREATE DATABASE {name}')
    return server.store(name)


def _store_data(store: Store) -> dict[str, Any]:
    return {'backend': store.backend, 'dsn': store.dsn, 'password_file': store.password_file, 'path': store.path}


def _signed_contract(tmp_path: Path, store: Store) -> Path:
    """A contract on ``store`` whose VERP signing key is the tests' key (a 0600 file): its path."""
    import json

    from tests.agent.ingest_logs import contract_data
    from tests.agent.postfix_dsn import TEST_KEYS

    key_file = tmp_path / 'signing-key'
    key_file.write_bytes(TEST_KEYS[0] + b'\n')
    key_file.chmod(0o600)
    data = contract_data(_store_data(store), {})
    data['suppression']['signing_key_file'] = str(key_file)
    data['suppression']['old_signing_key_files'] = []
    contract = tmp_path / 'agent.json'
    contract.write_text(json.dumps(data), encoding='utf-8')
    return contract


def _command(contract: Path, *extra: str) -> list[str]:
    return [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract), 'run', '--once', *extra]


def _rows(db: Database, host: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    where, params = ('WHERE host = ?', (host,)) if host is not None else ('', ())
    return {
        'events': sorted(db.execute(f'SELECT {", ".join(EVENT_COLUMNS)} FROM feedback_events'), key=repr),
        'messages': sorted(db.execute(f'SELECT * FROM feedback_messages {where}', params), key=repr),
        'problems': sorted(db.execute(f'SELECT host, source_kind, reason, count FROM ingest_problems {where}', params)),
    }


def _slice(lines: dict[str, list[str]], start: float, end: float) -> dict[str, list[str]]:
    return {name: content[int(len(content) * start) : int(len(content) * end)] for name, content in lines.items()}


def test_two_hosts_at_once_lose_and_duplicate_nothing(postgres: Postgres, tmp_path: Path) -> None:
    """mx1 reads the first two thirds of each log, mx2 the last two: the middle third is ingested by both at once."""
    lines = generate(30_000, seed=11)
    inputs = {'mx1': _slice(lines, 0, 2 / 3), 'mx2': _slice(lines, 1 / 3, 1)}
    shared = _database(postgres)
    alone: dict[str, Store] = {}
    contracts: dict[str, Path] = {}
    for host, content in inputs.items():
        directory = tmp_path / host
        directory.mkdir()
        logs = write_logs(directory, content)
        contracts[host] = write_contract(tmp_path / f'{host}.json', _store_data(shared), logs, host=host)
        alone[host] = _database(postgres)
        own = write_contract(tmp_path / f'{host}-alone.json', _store_data(alone[host]), logs, host=host)
        subprocess.run(_command(own), check=True, capture_output=True, timeout=300)
    # Small batches: many transactions of both hosts interleave on the same keys.
    processes = [
        subprocess.Popen(_command(contracts[host], '--batch-lines', '150'), stderr=subprocess.PIPE, text=True)
        for host in inputs
    ]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    with connect(shared) as db:
        together = _rows(db)
        per_host = {host: _rows(db, host) for host in inputs}
        (count,) = db.execute('SELECT COUNT(*), COUNT(DISTINCT key) FROM feedback_events')
    separate: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for host, store in alone.items():
        with connect(store) as db:
            separate[host] = _rows(db)
    keys = {row[0] for row in together['events']}
    wanted = {row[0] for host in inputs for row in separate[host]['events']}
    both = {row[0] for row in separate['mx1']['events']} & {row[0] for row in separate['mx2']['events']}
    assert len(both) > 1000  # the overlap is real
    assert keys == wanted  # nothing lost, nothing extra
    assert count[0] == count[1] == len(wanted)  # nothing twice
    alternatives = {host: set(separate[host]['events']) for host in inputs}
    assert all(row in alternatives['mx1'] or row in alternatives['mx2'] for row in together['events'])
    for host in inputs:
        assert per_host[host]['messages'] == separate[host]['messages']
        assert per_host[host]['problems'] == separate[host]['problems']


def _progress(store: Store) -> int:
    try:
        with connect(store) as db:
            rows = db.execute('SELECT SUM(position) FROM ingest_checkpoints')
    except StoreError:
        return 0
    return int(rows[0][0] or 0)


def test_a_store_outage_is_waited_out_and_nothing_is_lost(postgres_server: Postgres, tmp_path: Path) -> None:
    logs = write_logs(tmp_path, generate(60_000, seed=13))
    total = sum(path.stat().st_size for path in logs.values())
    clean, outage = _database(postgres_server), _database(postgres_server)
    clean_contract = write_contract(tmp_path / 'clean.json', _store_data(clean), logs)
    subprocess.run(_command(clean_contract), check=True, capture_output=True, timeout=300)

    contract = write_contract(tmp_path / 'outage.json', _store_data(outage), logs)
    process = subprocess.Popen(
        _command(contract, '--batch-lines', '500', '--store-wait', '300'), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while _progress(outage) < total // 5:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
        postgres_server.stop()
        time.sleep(4)
        assert process.poll() is None  # still waiting for the store, not failed
        postgres_server.start()
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    assert 'retrying in' in err
    with connect(clean) as a, connect(outage) as b:
        assert _rows(b) == _rows(a)
        assert len(_rows(a)['events']) > 8000


def test_a_store_that_never_comes_back_fails_after_the_wait(postgres_server: Postgres, tmp_path: Path) -> None:
    logs = write_logs(tmp_path, generate(2000, seed=17))
    store = _database(postgres_server)
    contract = write_contract(tmp_path / 'agent.json', _store_data(store), logs)
    postgres_server.stop()
    try:
        result = subprocess.run(_command(contract, '--store-wait', '2'), capture_output=True, text=True, timeout=120)
    finally:
        postgres_server.start()
    assert result.returncode == 2
    assert 'unreachable' in result.stderr
    with connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'feedback_events'") == [
            (0,)
        ]


def test_text_postgresql_refuses_is_stored_with_replacements(postgres: Postgres) -> None:
    """A NUL or a lone surrogate in a log line would make PostgreSQL refuse the batch for ever."""
    store = _database(postgres)
    event = Event('k-nul', 'delivery', 'bounced', 1.0, 'a@example.org', 't', diagnostic='550 bad\x00 \udcff text?')
    with connect(store) as db:
        migrate(db)
        insert_events(db, [event])
        insert_events(db, [event])
        (stored,) = events(db)
    assert stored.diagnostic == '550 bad\ufffd \ufffd text?'


def _merged_messages(db: Database) -> list[tuple[Any, ...]]:
    """Records of one queue id in one call, as one upsert per record would leave them (multi-row upserts)."""
    from mailinfra_agent.store.events import MessageRecord, upsert_messages

    migrate(db)
    upsert_messages(db, 'mx1', [MessageRecord('marketing', 'A1', 20.0, sender='old@example.org')])
    upsert_messages(
        db,
        'mx1',
        [
            MessageRecord('marketing', 'A1', 10.0, message_id='m1@example.org'),  # older: time stays 20
            MessageRecord('marketing', 'A1', 30.0, sender='new@example.org'),
            MessageRecord('marketing', 'A1', 25.0),  # fills nothing
            MessageRecord(None, 'A1', 5.0, sender=''),  # the primary instance: another row
            # Two queue ids that are one after the NUL is replaced: both stored in order, no error.
            MessageRecord(None, 'B\x002', 6.0, sender='x@example.org'),
            MessageRecord(None, 'B\ufffd2', 7.0, message_id='y@example.org'),
        ],
    )
    return sorted(db.execute('SELECT stream, queue_id, sender, message_id, time FROM feedback_messages'))


EXPECTED_MESSAGES = [
    ('', 'A1', '', None, 5.0),
    ('', 'B\ufffd2', 'x@example.org', 'y@example.org', 7.0),
    ('marketing', 'A1', 'new@example.org', 'm1@example.org', 30.0),
]


def test_message_records_merge_in_one_statement_postgresql(postgres: Postgres) -> None:
    with connect(_database(postgres)) as db:
        assert _merged_messages(db) == EXPECTED_MESSAGES


def test_message_records_merge_in_one_statement_sqlite(tmp_path: Path) -> None:
    with connect(Store(backend='sqlite', path=str(tmp_path / 'store.db'))) as db:
        assert _merged_messages(db) == EXPECTED_MESSAGES


def test_dsn_recipients_are_confirmed_and_complaints_resolved_in_postgresql(postgres: Postgres, tmp_path: Path) -> None:
    """The store look-ups of unconfirmed DSN recipients and anonymised complaints, in PostgreSQL's SQL."""

    from mailinfra_agent.store.events import MessageRecord, problem_counts, upsert_messages
    from tests.agent.postfix_dsn import verp_sender
    from tests.agent.test_ingest_messages import LONG, RETURN_PATH, _anonymised_complaint, _dsn

    store = _database(postgres)
    other = verp_sender(segment='8', recipient=LONG)  # its delivery event has no sender: its record gives it
    rewritten = RETURN_PATH.split('@')[0] + '@relay.example'
    with connect(store) as db:
        migrate(db)
        insert_events(
            db,
            [
                Event('d1', 'delivery', 'sent', SENT, LONG, 'log', 'transactional', 'Q1', sender=RETURN_PATH.upper()),
                Event('d2', 'delivery', 'sent', SENT + 1, LONG, 'log', 'transactional', 'Q2'),
                Event(
                    'd3', 'delivery', 'sent', SENT + 2, 'buyer@outlook.test', 'log', 'transactional', message_id='tx.9'
                ),
            ],
        )
        upsert_messages(db, 'mx1', [MessageRecord('transactional', 'Q2', 2.0, sender=other)])
    contract = _signed_contract(tmp_path, store)
    messages = [
        (RETURN_PATH, _dsn(RETURN_PATH, LONG, 'victim@r.test')),
        (other, _dsn(other, LONG, message_id='other@app.example')),
        ('fbl@news.example.com', _anonymised_complaint('tx.9')),
        (rewritten, _dsn(rewritten, LONG, 'v1@r.test', 'v2@r.test')),  # a relay rewrote the domain: the local part
    ]
    for recipient, message in messages:
        command = [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract), 'message']
        result = subprocess.run([*command, '--envelope-recipient', recipient], input=message, capture_output=True)
        assert result.returncode == 0, result.stderr
    with connect(store) as db:
        stored = [(e.kind, e.recipient, e.sender, e.stream) for e in events(db) if e.kind != 'delivery']
        problems = problem_counts(db)
    assert sorted(stored) == [
        ('complaint', 'buyer@outlook.test', 'bounces@app.example', 'transactional'),
        ('dsn', LONG, RETURN_PATH, 'marketing'),
        *sorted([('dsn', LONG, other, 'marketing'), ('dsn', LONG, rewritten, 'marketing')]),
    ]
    assert problems == {('mx1', 'pipe', 'recipient-not-ours'): 3}


def test_dsn_look_ups_with_a_nul_do_not_stall_postgresql_ingest(postgres: Postgres, tmp_path: Path) -> None:
    """A NUL in a DSN's recipient or returned Message-ID is looked up as it is stored (U+FFFD), not sent to
    PostgreSQL as it is (refused: the store would seem away and Postfix would retry until the queue lifetime)."""

    from mailinfra_agent.store.events import problem_counts
    from tests.agent.test_ingest_messages import LONG, RETURN_PATH, _dsn

    store = _database(postgres)
    with connect(store) as db:
        migrate(db)
        insert_events(
            db,
            [Event('d1', 'delivery', 'sent', SENT, 'a\x00b@r.test', 'log', 'transactional', 'Q1', sender=RETURN_PATH)],
        )
    contract = _signed_contract(tmp_path, store)
    command = [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract), 'message']
    for message in (_dsn(RETURN_PATH, 'a\x00b@r.test'), _dsn(RETURN_PATH, LONG, message_id='tx\x001@app.example')):
        result = subprocess.run(
            [*command, '--envelope-recipient', RETURN_PATH, '--store-wait', '2'], input=message, capture_output=True
        )
        assert result.returncode == 0, result.stderr
    with connect(store) as db:
        stored = [(e.kind, e.recipient) for e in events(db) if e.kind == 'dsn']
        problems = problem_counts(db)
    assert stored == [('dsn', 'a\ufffdb@r.test')]
    assert problems == {('mx1', 'pipe', 'recipient-not-ours'): 1}


def test_dsn_confirmation_works_with_standard_conforming_strings_off(postgres: Postgres, tmp_path: Path) -> None:
    """The scan's LIKE escape is not a backslash: with standard_conforming_strings off PostgreSQL would read
    ``'\\'`` as an unterminated string (a syntax error: the store would seem away)."""

    from tests.agent.test_ingest_messages import LONG, RETURN_PATH, _dsn

    store = _database(postgres)
    with connect(store) as db:
        migrate(db)
        insert_events(
            db, [Event('d1', 'delivery', 'sent', SENT, LONG, 'log', 'transactional', 'Q1', sender=RETURN_PATH)]
        )
    with connect(postgres.store('postgres')) as admin:
        admin.execute(
            f'ALTER DATABASE {store.dsn.split("dbname=")[1].split()[0]} SET standard_conforming_strings = off'
        )
    contract = _signed_contract(tmp_path, store)
    command = [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract), 'message']
    message = _dsn(RETURN_PATH, LONG, message_id='other@relay.example')  # no Message-ID match: the scan finds it
    result = subprocess.run(
        [*command, '--envelope-recipient', RETURN_PATH, '--store-wait', '2'], input=message, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    with connect(store) as db:
        assert [(e.kind, e.recipient) for e in events(db) if e.kind == 'dsn'] == [('dsn', LONG)]
