"""Retention: old events lose their addresses (hashed or erased), counts stay, message records go."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_agent.contract import Store
from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.store import Database, connect, migrate
from mailinfra_agent.store.events import insert_events
from mailinfra_agent.suppression.retention import HASHED_PREFIX, apply_retention, scrub_addresses
from mailinfra_agent.suppression.suppressions import address_hash

from .test_suppression import write_contract

KEY = b'retention-test-key'
NOW = 1_800_000_000.0
DAY = 86400


def hasher(address: str) -> str:
    return address_hash(KEY, address)


def event(number: int, age_days: float, **fields: object) -> Event:
    values: dict[str, object] = {
        'kind': 'delivery',
        'status': 'bounced',
        'recipient': f'user{number}@example.org',
        'sender': f'b-{number}@bounces.example.com',
        'diagnostic': f'550 5.1.1 <user{number}@example.org>: user unknown',
        'stream': 'marketing',
        'category': 'bad-mailbox',
        **fields,
    }
    return Event(key=event_key('retention', number), time=NOW - age_days * DAY, source='test', **values)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with connect(Store('sqlite', path=str(tmp_path / 'agent.db'))) as database:
        migrate(database)
        yield database


def rows(db: Database) -> dict[str, tuple[object, ...]]:
    found = db.execute('SELECT key, recipient, sender, diagnostic, status, category, stream FROM feedback_events')
    return {str(row[0]): row[1:] for row in found}


def test_old_events_get_a_keyed_hash_and_new_ones_keep_the_address(db: Database) -> None:
    old, new, null_sender = event(1, 200), event(2, 10), event(3, 200, sender='')
    insert_events(db, [old, new, null_sender])
    result = apply_retention(db, now=NOW, keep=180 * DAY, after='hash', hash_address=hasher)
    assert (result.events, result.complete) == (2, True)
    found = rows(db)
    assert found[old.key] == (
        HASHED_PREFIX + address_hash(KEY, 'user1@example.org'),
        None,
        '550 5.1.1 <<address>>: user unknown',
        'bounced',
        'bad-mailbox',
        'marketing',
    )
    assert found[new.key][:3] == ('user2@example.org', 'b-2@bounces.example.com', new.diagnostic)
    assert found[null_sender.key][1] == ''  # the null sender stays what it is: reports leave it out
    # idempotent: a second pass changes nothing
    assert apply_retention(db, now=NOW, keep=180 * DAY, after='hash', hash_address=hasher).events == 0
    assert rows(db) == found


def test_erase_leaves_no_trace_of_the_address(db: Database) -> None:
    old = event(1, 200)
    insert_events(db, [old])
    apply_retention(db, now=NOW, keep=180 * DAY, after='erase', hash_address=hasher)
    recipient, sender, diagnostic = rows(db)[old.key][:3]
    assert (recipient, sender) == ('', None)
    assert 'user1' not in str(diagnostic)


def test_batches_stop_and_the_next_run_goes_on(db: Database) -> None:
    insert_events(db, [event(number, 200 + number) for number in range(25)])
    first = apply_retention(db, now=NOW, keep=180 * DAY, after='hash', hash_address=hasher, max_batches=2, batch=10)
    assert (first.events, first.complete) == (20, False)
    second = apply_retention(db, now=NOW, keep=180 * DAY, after='hash', hash_address=hasher, max_batches=2, batch=10)
    assert (second.events, second.complete) == (5, True)
    assert all(str(row[0]).startswith(HASHED_PREFIX) for row in rows(db).values())


def test_old_message_records_are_deleted(db: Database) -> None:
    db.execute(
        'INSERT INTO feedback_messages (host, stream, queue_id, sender, message_id, time) VALUES (?, ?, ?, ?, ?, ?)',
        ('mx1', 'marketing', 'OLD1', 'b-x@bounces.example.com', 'm1@example.com', NOW - 200 * DAY),
    )
    db.execute(
        'INSERT INTO feedback_messages (host, stream, queue_id, sender, message_id, time) VALUES (?, ?, ?, ?, ?, ?)',
        ('mx1', 'marketing', 'NEW1', 'b-y@bounces.example.com', 'm2@example.com', NOW - DAY),
    )
    result = apply_retention(db, now=NOW, keep=180 * DAY, after='hash', hash_address=hasher)
    assert result.messages == 1
    assert [row[0] for row in db.execute('SELECT queue_id FROM feedback_messages')] == ['NEW1']


def test_old_webhook_rows_and_soft_bounces_outside_the_window_are_deleted(db: Database) -> None:
    for row_id, age, failed in (
        ('given-up-old', 200, NOW - 199 * DAY),
        ('pending-new', 1, None),
        ('given-up-new', 2, NOW),
    ):
        db.execute(
            'INSERT INTO suppression_webhooks (id, body, created, next_attempt, failed) VALUES (?, ?, ?, ?, ?)',
            (row_id, '{"address": "user@example.org"}', NOW - age * DAY, NOW, failed),
        )
    for key, age in (('soft-old', 40), ('soft-new', 3)):
        db.execute(
            'INSERT INTO suppression_soft_bounces (event_key, scope, address_hash, category, message, time) '
            'VALUES (?, ?, ?, ?, ?, ?)',
            (key, 'marketing', hasher('user@example.org'), 'quota-issues', key, NOW - age * DAY),
        )
    result = apply_retention(
        db, now=NOW, keep=180 * DAY, after='hash', hash_address=hasher, soft_bounce_window=30 * DAY
    )
    assert (result.webhooks, result.soft_bounces) == (1, 1)
    assert sorted(row[0] for row in db.execute('SELECT id FROM suppression_webhooks')) == [
        'given-up-new',
        'pending-new',
    ]
    assert [row[0] for row in db.execute('SELECT event_key FROM suppression_soft_bounces')] == ['soft-new']


def test_soft_bounces_stay_without_a_window(db: Database) -> None:
    db.execute(
        'INSERT INTO suppression_soft_bounces (event_key, scope, address_hash, category, message, time) '
        'VALUES (?, ?, ?, ?, ?, ?)',
        ('soft-old', 'marketing', hasher('user@example.org'), 'quota-issues', 'm', NOW - 400 * DAY),
    )
    assert apply_retention(db, now=NOW, keep=180 * DAY, after='hash', hash_address=hasher).soft_bounces == 0
    assert len(db.execute('SELECT event_key FROM suppression_soft_bounces')) == 1


def test_scrub_addresses() -> None:
    assert scrub_addresses('rejected <a.b+c@mail.example.org> and x@y.example') == 'rejected <<address>> and <address>'
    assert scrub_addresses('no address here: 550 5.1.1') == 'no address here: 550 5.1.1'
    assert scrub_addresses(None) is None


def test_suppression_apply_runs_retention(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailinfra_agent.cli import main

    contract = write_contract(tmp_path, events=30 * DAY)
    assert main(['store', '--contract', str(contract), 'migrate']) == 0
    old = event(1, 60, category='quota-issues', status='deferred')
    old = Event(**{**{f: getattr(old, f) for f in old.__dataclass_fields__}, 'time': time.time() - 60 * DAY})
    with connect(Store('sqlite', path=str(tmp_path / 'agent.db'))) as database:
        insert_events(database, [old])
    capsys.readouterr()
    assert main(['suppression', '--contract', str(contract), 'apply']) == 0
    assert 'retention: hashed the addresses of 1 events' in capsys.readouterr().out
    with connect(Store('sqlite', path=str(tmp_path / 'agent.db'))) as database:
        assert str(rows(database)[old.key][0]).startswith(HASHED_PREFIX)
