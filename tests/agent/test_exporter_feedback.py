"""The exporter's feedback counters, read from a real SQLite store with the agent's migrations applied."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailinfra_agent.contract import Contract, Store, load_contract
from mailinfra_agent.exporter import build, exposition
from mailinfra_agent.exporter.feedback import (
    DELIVERY_STATUSES,
    OTHER,
    RATE_EVENTS,
    UNKNOWN,
    FeedbackMetrics,
    bounds_for,
    feedback_metrics,
    open_contract_store,
    store_label,
)
from mailinfra_agent.feedback.classify import HARD_CATEGORIES
from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.store import Database, connect, connect_sqlite, migrate
from mailinfra_agent.store.events import insert_events
from mailinfra_agent.store.schema import BOOKKEEPING
from tests.agent.conftest import Postgres
from tests.agent.test_contract import minimal

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

TX_IP = '203.0.113.10'
MK_IP = '203.0.113.20'


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    """The minimal contract (host pmta1, streams transactional and marketing) with a SQLite store in tmp_path."""
    return dataclasses.replace(load_contract(minimal()), store=Store('sqlite', path=str(tmp_path / 'agent.db')))


@pytest.fixture
def db(contract: Contract) -> Iterator[Database]:
    assert contract.store.path is not None
    database = connect_sqlite(contract.store.path)
    migrate(database)
    yield database
    database.close()


_serial = iter(range(10**9))


def event(status: str = 'sent', kind: str = 'delivery', **fields: object) -> Event:
    values: dict[str, object] = {
        'stream': 'marketing',
        'sending_ip': MK_IP,
        'isp': 'gmail',
        'recipient': 'someone@example.com',
        'source': '/var/log/postfix/postfix-marketing.log',
        'time': 1_780_000_000.0,
    }
    values.update(fields)
    return Event(key=event_key('test', next(_serial)), kind=kind, status=status, **values)  # type: ignore[arg-type]


def insert(db: Database, *events: Event) -> None:
    """Store events the way ingest does (one transaction)."""
    with db.transaction():
        insert_events(db, list(events))


def samples(collector: FeedbackMetrics) -> Samples:
    found: Samples = {}
    for family in collector.collect():
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum over the series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, key), v in found.items() if n == name and wanted <= key)


def mixed_events() -> list[Event]:
    return [
        *(event('sent') for _ in range(5)),
        event('deferred', smtp_code='421', dsn='4.7.28', category='policy-related'),
        event('bounced', smtp_code='550', dsn='5.1.1', category='bad-mailbox'),
        event('expired'),
        event('sent', stream='transactional', sending_ip=TX_IP, isp='yahoo'),
        event('bounced', kind='dsn', sending_ip=None, category='bad-domain'),
        event('complaint', kind='complaint', sending_ip=None, feedback_type='abuse'),
        event('unsubscribe', kind='unsubscribe', sending_ip=None),
    ]


def test_counts_by_stream_ip_isp_and_status(contract: Contract, db: Database) -> None:
    insert(db, *mixed_events())
    found = samples(feedback_metrics(contract))
    store = 'sqlite-pmta1'
    where = {'store': store, 'stream': 'marketing', 'sending_ip': MK_IP, 'isp': 'gmail'}
    assert value(found, 'mailinfra_deliveries_total', **where, status='sent') == 5
    assert value(found, 'mailinfra_deliveries_total', **where, status='deferred') == 1
    assert value(found, 'mailinfra_deliveries_total', **where, status='bounced') == 1
    assert value(found, 'mailinfra_deliveries_total', **where, status='expired') == 1
    tx = {'store': store, 'stream': 'transactional', 'sending_ip': TX_IP, 'isp': 'yahoo'}
    assert value(found, 'mailinfra_deliveries_total', **tx, status='sent') == 1
    # a log bounce and a DSN are both bounces, told apart by kind; a DSN is not a delivery attempt
    assert value(found, 'mailinfra_bounces_total', **where, kind='delivery', category='bad-mailbox') == 1
    dsn = {**where, 'sending_ip': UNKNOWN}
    assert value(found, 'mailinfra_bounces_total', **dsn, kind='dsn', category='bad-domain') == 1
    assert total(found, 'mailinfra_bounces_total') == 2
    assert total(found, 'mailinfra_deliveries_total', sending_ip=UNKNOWN) == 0
    assert value(found, 'mailinfra_complaints_total', **dsn) == 1
    assert total(found, 'mailinfra_complaints_total') == 1
    assert total(found, 'mailinfra_deliveries_total') == 9
    assert value(found, 'mailinfra_feedback_up', store=store) == 1
    assert value(found, 'mailinfra_feedback_errors_total', store=store, kind='store') == 0


def test_labels_are_bounded(contract: Contract, db: Database) -> None:
    insert(
        db,
        event(stream='newsletter-2031'),  # not a stream of the host
        event(stream=None),
        event(isp='*'),  # the catch-all ISP is "other"
        event(isp='hotmail-lookalike'),
        event(isp=None),
        event(sending_ip='198.51.100.99'),  # not this host's address
        event(sending_ip='marketing_203_0_113_21'),  # an IP id: reported as its address
        event('bounced', category='made-up-category'),
        event('bounced', category=None),
        event('bounced', category='quota-issues'),
    )
    found = samples(feedback_metrics(contract))
    assert total(found, 'mailinfra_deliveries_total', stream=OTHER) == 1
    assert total(found, 'mailinfra_deliveries_total', stream=UNKNOWN) == 1
    assert total(found, 'mailinfra_deliveries_total', isp=OTHER) == 2
    assert total(found, 'mailinfra_deliveries_total', isp=UNKNOWN) == 1
    assert total(found, 'mailinfra_deliveries_total', sending_ip=OTHER) == 1
    assert total(found, 'mailinfra_deliveries_total', sending_ip='203.0.113.21') == 1
    assert total(found, 'mailinfra_bounces_total', category=OTHER) == 1
    assert total(found, 'mailinfra_bounces_total', category=UNKNOWN) == 1
    assert total(found, 'mailinfra_bounces_total', category='quota-issues') == 1
    streams = {dict(key)['stream'] for name, key in found if name == 'mailinfra_deliveries_total'}
    assert streams == {'marketing', OTHER, UNKNOWN}


RATE = 'mailinfra_feedback_rate_events_total'


def rate_series(found: Samples) -> dict[tuple[str, str, str], float]:
    """(stream, isp, event) -> value of the rate family."""
    series = {}
    for (name, key), number in found.items():
        if name == RATE:
            labels = dict(key)
            assert labels['store'] == 'sqlite-pmta1'
            series[(labels['stream'], labels['isp'], labels['event'])] = number
    return series


def test_rate_series_are_served_from_zero_before_any_event(contract: Contract, db: Database) -> None:
    """increase() ignores a series' first sample: every series the rate rules read exists at 0 before its first event
    (streams x the contract's ISPs, other, unknown x events), while the per-IP families have none."""
    found = samples(feedback_metrics(contract))
    bounds = bounds_for(contract)
    isps = {*bounds.isps, OTHER, UNKNOWN}
    expected = {(stream, isp, event) for stream in bounds.streams for isp in isps for event in RATE_EVENTS}
    assert rate_series(found) == dict.fromkeys(expected, 0)
    assert len(expected) == 2 * (10 + 2) * 6
    assert total(found, 'mailinfra_deliveries_total') == total(found, 'mailinfra_complaints_total') == 0
    assert not [key for key in found if key[0] == 'mailinfra_deliveries_total']


def test_rate_series_are_the_per_ip_families_without_the_ip(contract: Contract, db: Database) -> None:
    """The same counts, from the same aggregate: deliveries by status, hard bounces of the MTAs' own (no DSN, no soft
    category), complaints; null-sender deliveries in none; streams outside the contract as ``other``."""
    insert(
        db,
        *mixed_events(),
        event('sent', sending_ip='203.0.113.21'),
        event('sent', sending_ip='198.51.100.99', isp=None),
        event('bounced', category='bad-domain', sending_ip='203.0.113.21', isp='yahoo'),
        event('bounced', category='quota-issues'),
        event('bounced', category='inactive-mailbox', stream='newsletter-2031'),
        event('complaint', kind='complaint', sending_ip=None, isp='hotmail-lookalike'),
        event('complaint', kind='complaint', sending_ip=TX_IP, stream='transactional'),
        event('sent', sender=''),
    )
    found = samples(feedback_metrics(contract))
    rates = rate_series(found)
    streams = {*bounds_for(contract).streams, OTHER}
    isps = {*bounds_for(contract).isps, OTHER, UNKNOWN}
    for stream in streams:
        for isp in isps:
            where = {'stream': stream, 'isp': isp}
            hard = sum(
                total(found, 'mailinfra_bounces_total', **where, kind='delivery', category=category)
                for category in HARD_CATEGORIES
            )
            expected = {
                **{
                    status: total(found, 'mailinfra_deliveries_total', **where, status=status)
                    for status in DELIVERY_STATUSES
                },
                'hard_bounce': hard,
                'complaint': total(found, 'mailinfra_complaints_total', **where),
            }
            assert {event: rates.get((stream, isp, event), 0) for event in RATE_EVENTS} == expected, where
    assert rates[('marketing', 'gmail', 'sent')] == 5 + 1
    assert rates[('marketing', 'gmail', 'hard_bounce')] == 1  # not the DSN, not quota-issues
    assert rates[('marketing', 'yahoo', 'hard_bounce')] == 1
    assert rates[(OTHER, 'gmail', 'hard_bounce')] == 1
    assert rates[('marketing', OTHER, 'complaint')] == rates[('transactional', 'gmail', 'complaint')] == 1
    assert sum(rates.values()) == (
        total(found, 'mailinfra_deliveries_total')
        + total(found, 'mailinfra_complaints_total')
        + sum(total(found, 'mailinfra_bounces_total', kind='delivery', category=c) for c in HARD_CATEGORIES)
    )


def test_bounds_come_from_the_contract(contract: Contract) -> None:
    bounds = bounds_for(contract)
    assert bounds.streams == {'transactional', 'marketing'}
    assert 'gmail' in bounds.isps and '*' not in bounds.isps
    assert bounds.sending_ip('transactional_203_0_113_10') == bounds.sending_ip(TX_IP) == TX_IP
    assert bounds.stream('') == UNKNOWN


def test_counters_only_grow_and_a_restart_gives_the_same_values(contract: Contract, db: Database) -> None:
    collector = feedback_metrics(contract)
    insert(db, *mixed_events())
    first = samples(collector)
    insert(db, event('sent'), event('sent'), event('bounced', category='bad-mailbox'))
    second = samples(collector)
    counters = [key for key in first if key[0].endswith('_total')]
    assert counters
    assert all(second[key] >= first[key] for key in counters)
    assert (
        total(second, 'mailinfra_deliveries_total', status='sent')
        == total(first, 'mailinfra_deliveries_total', status='sent') + 2
    )
    # rows are read once: the second scrape read only the three new rows
    assert collector.rows_counted == len(mixed_events()) - 1 + 3  # the unsubscribe is not read
    restarted = samples(feedback_metrics(contract))
    assert {k: v for k, v in restarted.items() if k[0] != 'mailinfra_feedback_scrape_duration_seconds'} == {
        k: v for k, v in second.items() if k[0] != 'mailinfra_feedback_scrape_duration_seconds'
    }


def test_a_scrape_while_rows_are_inserted(contract: Contract, db: Database) -> None:
    """Scrapes during ingest never go down, never count a row twice, and the last one has every row."""
    assert contract.store.path is not None
    collector = feedback_metrics(contract)
    batches, per_batch = 40, 250
    done = threading.Event()

    def ingest() -> None:
        writer = connect_sqlite(contract.store.path or '')
        try:
            for _ in range(batches):
                insert(writer, *(event('sent') for _ in range(per_batch)))
        finally:
            writer.close()
            done.set()

    thread = threading.Thread(target=ingest)
    thread.start()
    seen: list[float] = []
    while not done.is_set():
        seen.append(total(samples(collector), 'mailinfra_deliveries_total'))
    thread.join()
    seen.append(total(samples(collector), 'mailinfra_deliveries_total'))
    assert seen == sorted(seen)
    assert seen[-1] == batches * per_batch == collector.rows_counted
    assert len(set(seen)) > 2, 'the scrapes should have seen ingest half-way'


def test_ingest_problems_of_this_host(contract: Contract, db: Database) -> None:
    insert_problem = (
        'INSERT INTO ingest_problems (host, source_kind, reason, count, last_location, last_seen) '
        'VALUES (?, ?, ?, ?, ?, ?)'
    )
    db.execute(insert_problem, ('pmta1', 'log', 'truncated', 3, '/var/log/x.log:7', 1))
    db.execute(insert_problem, ('pmta1', 'maildir', 'no-delivery-status', 2, 'maildir:1.a', 1))
    db.execute(insert_problem, ('pmta1', 'log', 'Bad Reason!', 1, '/var/log/x.log:9', 1))
    db.execute(insert_problem, ('mta2', 'log', 'garbage', 50, '/var/log/x.log:1', 1))  # another host of the store
    found = samples(feedback_metrics(contract))
    assert value(found, 'mailinfra_ingest_problems_total', source_kind='log', reason='truncated') == 3
    assert value(found, 'mailinfra_ingest_problems_total', source_kind='maildir', reason='no-delivery-status') == 2
    assert value(found, 'mailinfra_ingest_problems_total', source_kind='log', reason=OTHER) == 1
    assert total(found, 'mailinfra_ingest_problems_total') == 6


def test_no_store_or_no_table_means_no_series(contract: Contract, tmp_path: Path) -> None:
    assert list(feedback_metrics(contract).collect()) == []
    assert not Path(contract.store.path or '').exists(), 'the exporter must not create the store'
    with connect_sqlite(contract.store.path or '') as db:  # a store without the feedback migration
        db.execute(BOOKKEEPING)
    assert list(feedback_metrics(contract).collect()) == []


def test_a_file_that_is_no_store_is_down_and_left_as_it_was(contract: Contract) -> None:
    path = Path(contract.store.path or '')
    path.write_bytes(b'')
    before = path.stat().st_mtime_ns
    assert value(samples(feedback_metrics(contract)), 'mailinfra_feedback_up', store='sqlite-pmta1') == 0
    assert (path.read_bytes(), path.stat().st_mtime_ns) == (b'', before)


def test_a_broken_store_is_down_and_keeps_its_counts(
    contract: Contract, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    insert(db, event('sent'), event('sent'))
    collector = feedback_metrics(contract)
    assert total(samples(collector), 'mailinfra_deliveries_total') == 2
    db.execute('ALTER TABLE feedback_events RENAME COLUMN status TO state')
    with caplog.at_level(logging.ERROR, logger='mailinfra_agent.exporter'):
        insert_broken = 'INSERT INTO feedback_events (key, kind, state, time, recipient, source) VALUES (?,?,?,?,?,?)'
        db.execute(insert_broken, ('k1', 'delivery', 'sent', 1.0, 'a@example.com', 'x'))
        found = samples(collector)
        samples(collector)
    assert value(found, 'mailinfra_feedback_up', store='sqlite-pmta1') == 0
    assert total(found, 'mailinfra_deliveries_total') == 2, 'counts already read are still served'
    assert total(samples(collector), 'mailinfra_feedback_errors_total') == 3
    assert len([r for r in caplog.records if 'feedback counters' in r.message]) == 1, 'a lasting problem logs once'


def test_a_replaced_store_counts_again(contract: Contract, db: Database) -> None:
    insert(db, *(event('sent') for _ in range(5)))
    collector = feedback_metrics(contract)
    assert total(samples(collector), 'mailinfra_deliveries_total') == 5
    db.execute('DELETE FROM feedback_events')
    insert(db, event('sent'))
    # rowid restarts below what was counted: the store was emptied, so counting starts again (a counter reset)
    found = samples(collector)
    assert total(found, 'mailinfra_deliveries_total') == 1
    assert total(found, RATE, event='sent') == 1  # the rate family starts again too
    rates = [v for (name, _), v in found.items() if name == RATE]
    assert len(rates) > 1 and rates.count(0) == len(rates) - 1, 'its zeros are served again'


def test_postgresql_counts_only_settled_sequence_numbers() -> None:
    """On PostgreSQL a number seen less than settle_seconds ago may still have lower ones uncommitted."""
    now = [0.0]
    collector = FeedbackMetrics(
        lambda: None, bounds_for(load_contract(minimal())), 'pg', 'h', clock=lambda: now[0], settle_seconds=10
    )
    assert collector._settled(100) == 0
    now[0] = 5
    assert collector._settled(150) == 0
    now[0] = 10
    assert collector._settled(180) == 100
    collector.watermark = 100
    now[0] = 30
    assert collector._settled(200) == 180


def test_store_label_never_shows_the_dsn(contract: Contract) -> None:
    pg = load_contract(minimal())
    label = store_label(pg)
    assert label.startswith('postgresql-') and 'shopmax' not in label and len(label) == len('postgresql-') + 12
    assert store_label(contract) == 'sqlite-pmta1'


def test_the_exporter_serves_the_feedback_counters(contract: Contract, db: Database, tmp_path: Path) -> None:
    insert(db, *mixed_events())
    text = exposition(build(contract, collectors=[]))
    names = {family.name for family in text_string_to_metric_families(text.decode())}
    assert {'mailinfra_deliveries', 'mailinfra_bounces', 'mailinfra_complaints', 'mailinfra_feedback_up'} <= names
    metrics_file = tmp_path / 'metrics.txt'
    metrics_file.write_bytes(text)
    checked = subprocess.run(['promtool', 'check', 'metrics'], input=text, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_open_contract_store_does_not_create_a_file(contract: Contract) -> None:
    assert open_contract_store(contract)() is None
    assert not Path(contract.store.path or '').exists()


def test_our_own_bounce_notices_are_not_counted(contract: Contract, db: Database) -> None:
    """Deliveries of locally generated NDRs (null sender) are not mail of the stream."""
    insert(db, event('sent', sender=''), event('sent', sender='bounces+x@news.example.com'), event('sent'))
    assert total(samples(feedback_metrics(contract)), 'mailinfra_deliveries_total') == 2


_databases = iter(range(1, 10_000))


@pytest.fixture
def pg_contract(postgres: Postgres) -> Contract:
    name = f'exporter_feedback_{next(_databases)}'
    with connect(postgres.store('postgres')) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS {name}')
        admin.execute(f'CREATE DATABASE {name}')
    contract = dataclasses.replace(load_contract(minimal()), store=postgres.store(name))
    with connect(contract.store) as database:
        migrate(database)
    return contract


def settling_collector(contract: Contract, now: list[float]) -> FeedbackMetrics:
    """The collector of a PostgreSQL store on a clock the test moves (``now[0]``), 10 s to settle."""
    return FeedbackMetrics(
        open_contract_store(contract),
        bounds_for(contract),
        store_label(contract),
        'pmta1',
        clock=lambda: now[0],
        settle_seconds=10,
    )


def test_postgresql_counts_rows_committed_out_of_order(pg_contract: Contract) -> None:
    """A transaction that took its sequence number first but commits last is still counted once settled."""
    now = [0.0]
    collector = settling_collector(pg_contract, now)
    slow, fast = connect(pg_contract.store), connect(pg_contract.store)
    try:
        with slow.transaction():
            insert_events(slow, [event('bounced', category='bad-mailbox')])  # takes seq 1, not committed yet
            insert(fast, event('sent'), event('sent'))  # seq 2 and 3, committed
            found = samples(collector)
            assert total(found, 'mailinfra_deliveries_total') == 0, 'nothing has settled yet'
            assert value(found, 'mailinfra_feedback_up', store=store_label(pg_contract)) == 1
        now[0] = 15
        found = samples(collector)
        assert total(found, 'mailinfra_deliveries_total') == 3
        assert total(found, 'mailinfra_bounces_total', category='bad-mailbox') == 1
        insert(fast, event('sent'))
        now[0] = 20
        assert total(samples(collector), 'mailinfra_deliveries_total') == 3, 'seen 5 s ago: not settled'
        now[0] = 40
        assert total(samples(collector), 'mailinfra_deliveries_total') == 4
        assert collector.rows_counted == 4
    finally:
        slow.close()
        fast.close()
        collector.close()


def test_postgresql_rate_series_wait_for_the_history(pg_contract: Contract) -> None:
    """Before the rows the store held at the start have settled, no rate series is served: a 0 then would make an
    exporter restart count the store's whole history as an increase."""
    with connect(pg_contract.store) as writer:
        insert(writer, event('sent'), event('sent'), event('complaint', kind='complaint', sending_ip=None))
    now = [0.0]
    collector = settling_collector(pg_contract, now)
    try:
        label = store_label(pg_contract)
        assert not [key for key in samples(collector) if key[0] == RATE], 'nothing settled: no series at all'
        now[0] = 15
        found = samples(collector)
        rates = {key: number for key, number in found.items() if key[0] == RATE}
        assert value(found, RATE, store=label, stream='marketing', isp='gmail', event='sent') == 2
        assert value(found, RATE, store=label, stream='marketing', isp=UNKNOWN, event='complaint') == 0
        # the deployment's 3 streams (the contract's shared labels), not only pmta1's 2
        assert sum(rates.values()) == 3 and len(rates) == 3 * (10 + 2) * 6
    finally:
        collector.close()


def test_postgresql_store_that_stops_answering_is_down(postgres_server: Postgres) -> None:
    with connect(postgres_server.store('postgres')) as admin:
        admin.execute('CREATE DATABASE exporter_feedback_down')
    contract = dataclasses.replace(load_contract(minimal()), store=postgres_server.store('exporter_feedback_down'))
    with connect(contract.store) as database:
        migrate(database)
        insert(database, event('sent'))
    collector = FeedbackMetrics(
        open_contract_store(contract), bounds_for(contract), store_label(contract), 'pmta1', settle_seconds=0
    )
    label = store_label(contract)
    samples(collector)
    assert total(samples(collector), 'mailinfra_deliveries_total') == 1
    postgres_server.stop()
    try:
        found = samples(collector)
        assert value(found, 'mailinfra_feedback_up', store=label) == 0
        assert total(found, 'mailinfra_deliveries_total') == 1
    finally:
        postgres_server.start()
    found = samples(collector)
    assert value(found, 'mailinfra_feedback_up', store=label) == 1, 'reconnects by itself'
    collector.close()
