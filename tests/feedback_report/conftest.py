"""Stores of both backends holding a hand-built set of events (migration 0002, store.events.insert_events)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.contract import Store
from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.store import Database, connect, migrate
from mailinfra_agent.store.events import insert_events

try:  # the PostgreSQL fixture moves to tests/agent/conftest.py
    from tests.agent.conftest import Postgres, postgres  # type: ignore[attr-defined,unused-ignore]
except ImportError:
    from tests.agent.test_store import Postgres, postgres

__all__ = ['postgres']

DAY1 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 11, 3, tzinfo=UTC).timestamp()
DAY3 = datetime(2026, 11, 4, tzinfo=UTC).timestamp()
SCRIPT = '<script>alert("x")</script> 450 4.2.0 greylisted'

_serial = iter(range(1, 1_000_000))


def ev(kind: str, status: str, time: float, **fields: Any) -> Event:
    number = next(_serial)
    return Event(
        key=event_key('test', number),
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        time=time,
        recipient=f'r{number}@example.org',
        source='test',
        **fields,
    )


def hand_built() -> list[Event]:
    """Group A (2026-11-02, marketing, 192.0.2.10, gmail, news), group B (2026-11-02, only yahoo known), and
    single deliveries on each side of the day boundaries."""
    a = {'stream': 'marketing', 'sending_ip': '192.0.2.10', 'isp': 'gmail', 'segment': 'news'}
    t = DAY1 + 3600
    events = [ev('delivery', 'sent', t + i, **a) for i in range(6)]
    events += [
        ev(
            'delivery',
            'bounced',
            t,
            category='bad-mailbox',
            diagnostic='550 5.1.1 <ann@example.org>: user unknown',
            **a,
        ),
        ev('delivery', 'bounced', t, category='quota-issues', diagnostic='552 5.2.2 mailbox full (1024000 bytes)', **a),
        ev('delivery', 'bounced', t, category='spam-related', diagnostic='550 5.7.1 spam detected', **a),
        ev('delivery', 'bounced', t, diagnostic='554 5.0.0 other', **a),
        ev(
            'delivery',
            'deferred',
            t,
            category='policy-related',
            diagnostic='421 4.7.0 try later (ann@example.org)',
            **a,
        ),
        ev(
            'delivery',
            'deferred',
            t,
            category='policy-related',
            diagnostic='421 4.7.0 try later (bob@example.net)',
            **a,
        ),
        ev('delivery', 'deferred', t, category='policy-related', diagnostic=SCRIPT, **a),
        ev('delivery', 'expired', t, category='no-answer-from-host', diagnostic='451 4.4.1 timed out', **a),
        ev('dsn', 'bounced', t, category='bad-mailbox', diagnostic='550 5.1.1 <carl@example.org>: user unknown', **a),
        ev('complaint', 'complaint', t + 100, feedback_type='abuse', **a),
        ev('complaint', 'complaint', t + 200, feedback_type='abuse', **a),
        ev('unsubscribe', 'unsubscribe', t + 300, **a),
        # group B: complaints from yahoo, nothing else known
        ev('complaint', 'complaint', t, isp='yahoo'),
        ev('complaint', 'complaint', t + 1, isp='yahoo'),
        # the day boundaries (UTC)
        ev('delivery', 'sent', DAY1 - 0.5, **a),
        ev('delivery', 'sent', DAY3 - 0.5, **a),
        ev('delivery', 'sent', DAY3, **a),
    ]
    return events


_databases = iter(range(1, 10_000))


@pytest.fixture(params=['sqlite', 'postgresql'])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh, migrated store of each backend."""
    if request.param == 'sqlite':
        store = Store('sqlite', path=str(tmp_path / 'feedback.db'))
    else:
        server: Postgres = request.getfixturevalue('postgres')
        name = f'report_{next(_databases)}'
        with connect(server.store('postgres')) as admin:
            admin.execute(f'CREATE DATABASE {name}')
        store = server.store(name)
    with connect(store) as db:
        migrate(db)
    return store


@pytest.fixture
def db(store: Store) -> Iterator[Database]:
    with connect(store) as database:
        insert_events(database, hand_built())
        yield database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    with connect(Store('sqlite', path=str(tmp_path / 'one.db'))) as database:
        migrate(database)
        insert_events(database, hand_built())
        yield database
