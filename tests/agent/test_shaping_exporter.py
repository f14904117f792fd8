"""The exporter's shaping series, read from a real store the shaping engine wrote."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from mailinfra_agent.exporter.shaping import ShapingMetrics, shaping_metrics
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.ingest.service import postfix_parser
from mailinfra_agent.shaping.engine import Engine
from mailinfra_agent.store import connect_sqlite, migrate
from tests.agent.shaping_fixtures import SPAMHAUS, contract, contract_data, delivery, sqlite_store

NOW = time.time()


def _scrape(collector: ShapingMetrics) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def test_active_actions_and_counters(tmp_path: Path) -> None:
    shaped = contract(contract_data(sqlite_store(tmp_path)))
    engine = Engine(shaped, use_warmup=False)
    parser = postfix_parser(shaped)
    lines = [delivery(NOW - 10), delivery(NOW - 5), delivery(NOW - 4, isp='microsoft', reply=SPAMHAUS, dsn='5.7.1')]
    events = [r for n, line in enumerate(lines, 1) for r in parser.parse_line(line, 'x', n) if isinstance(r, Event)]
    with connect_sqlite(tmp_path / 'agent.db') as db:
        migrate(db)
        with db.transaction():
            engine.observe(db, events, NOW)
    text = _scrape(shaping_metrics(shaped))
    gmail = 'action="suspend",ip="198.51.100.10",isp="gmail",stream="transactional"'
    assert f'mailinfra_shaping_active{{{gmail}}} 1.0' in text
    assert 'mailinfra_shaping_active{action="suspend_ip",ip="198.51.100.10",isp="*",stream="transactional"} 1.0' in text
    since = next(
        line for line in text.splitlines() if line.startswith(f'mailinfra_shaping_active_since_seconds{{{gmail}')
    )
    assert abs(float(since.split()[-1]) - (NOW - 10)) < 1
    assert (
        'mailinfra_shaping_actions_total{action="suspend",event="applied",ip="198.51.100.10",isp="gmail",'
        'stream="transactional"} 1.0'
    ) in text
    assert (
        'mailinfra_shaping_actions_total{action="suspend",event="extended",ip="198.51.100.10",isp="gmail",'
        'stream="transactional"} 1.0'
    ) in text
    with connect_sqlite(tmp_path / 'agent.db') as db, db.transaction():
        engine.evaluate(db, NOW + 7200)
    text = _scrape(shaping_metrics(shaped))
    assert 'mailinfra_shaping_active{' not in text
    assert 'event="expired",ip="198.51.100.10",isp="*"' in text


def test_no_store_no_series(tmp_path: Path) -> None:
    shaped = contract(contract_data(sqlite_store(tmp_path)))
    assert 'mailinfra_shaping' not in _scrape(shaping_metrics(shaped))
    connect_sqlite(tmp_path / 'agent.db').close()  # a store without the shaping tables
    assert 'mailinfra_shaping' not in _scrape(shaping_metrics(shaped))
