"""Hosts of one shared PostgreSQL store label its events alike and each serves the per-IP series of its own IPs only,
so the rules' max across hosts then sum is the total, with no copy of a per-IP series on every host.

The contracts are rendered from examples/high-volume-powermta.yml (database host ops1; pmta1 sends transactional and
marketing, pmta2 marketing, pmta3 reactivation), the exporters read a real PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator

import pytest

from mailinfra_agent.contract import Contract, Store, dump_contract, load_contract
from mailinfra_agent.exporter.feedback import bounds_for
from mailinfra_agent.store import connect, migrate
from mailinfra_iac import parse_spec
from mailinfra_iac.render import RenderContext
from mailinfra_iac.render.rolevars.agent import host_contract
from tests.agent.conftest import Postgres
from tests.agent.test_exporter_feedback import Samples, event, insert, samples, settling_collector
from tests.conftest import AS_OF, ROOT, TEST_DKIM

HOSTS = ('pmta1', 'pmta2', 'pmta3')
PMTA1_MARKETING = '203.0.113.20'
PMTA2_MARKETING = '203.0.113.24'
NOBODYS_IP = '192.0.2.99'
PER_IP = ('mailinfra_deliveries_total', 'mailinfra_bounces_total', 'mailinfra_complaints_total')
RATE = 'mailinfra_feedback_rate_events_total'
FAMILIES = (*PER_IP, RATE)


def rendered(postgres: Postgres) -> dict[str, Contract]:
    """Each MTA host's contract as rendered and loaded, on one database of the test server."""
    spec = parse_spec((ROOT / 'examples/high-volume-powermta.yml').read_text(), 'spec.yml', as_of=AS_OF)
    context = RenderContext(spec.deployment, spec.facts, spec.name, {}, TEST_DKIM)
    with connect(postgres.store('postgres')) as admin:
        admin.execute('DROP DATABASE IF EXISTS exporter_shared_store')
        admin.execute('CREATE DATABASE exporter_shared_store')
    store = postgres.store('exporter_shared_store')
    contracts = {}
    for host in HOSTS:
        contract = load_contract(dump_contract(host_contract(context, host)))
        assert contract.store.backend == 'postgresql'
        contracts[host] = dataclasses.replace(contract, store=store)
    return contracts


@pytest.fixture
def contracts(postgres: Postgres) -> dict[str, Contract]:
    found = rendered(postgres)
    with connect(found['pmta1'].store) as database:
        migrate(database)
        insert(
            database,
            *(event('sent', sending_ip=PMTA1_MARKETING) for _ in range(3)),
            *(event('sent', sending_ip=PMTA2_MARKETING) for _ in range(5)),
            event('sent', stream='transactional', sending_ip='203.0.113.10', isp='yahoo'),
            *(event('sent', stream='reactivation', sending_ip='reactivation_alloc1') for _ in range(2)),
            event('complaint', kind='complaint', stream='reactivation', sending_ip=None),
            event('bounced', stream='marketing', sending_ip=PMTA2_MARKETING, category='bad-mailbox'),
            event('sent', stream='marketing', sending_ip=NOBODYS_IP),
        )
    return found


def scraped(contracts: dict[str, Contract]) -> Iterator[tuple[str, Samples]]:
    """What each host's exporter serves, once every row has settled."""
    for host, contract in contracts.items():
        now = [0.0]
        collector = settling_collector(contract, now)
        try:
            samples(collector)
            now[0] = 60
            yield host, {key: number for key, number in samples(collector).items() if key[0] in FAMILIES}
        finally:
            collector.close()


def max_then_sum(by_host: dict[str, Samples], name: str, by: str) -> dict[str, float]:
    """``sum by (by) (max without (job, instance, host) (name))``: the hosts' series carry no target labels here."""
    highest: dict[frozenset[tuple[str, str]], float] = defaultdict(float)
    for found in by_host.values():
        for (metric, labels), number in found.items():
            if metric == name:
                highest[labels] = max(highest[labels], number)
    summed: dict[str, float] = defaultdict(float)
    for labels, number in highest.items():
        summed[dict(labels)[by]] += number
    return dict(summed)


def per_ip_labels(found: Samples) -> set[str]:
    return {dict(labels)['sending_ip'] for metric, labels in found if metric in PER_IP}


def test_every_host_of_a_shared_store_labels_its_events_alike(contracts: dict[str, Contract]) -> None:
    """pmta1 knows only its own IPs and streams without the shared labels: pmta2's marketing mail was
    ``sending_ip="other"`` there, and transactional was ``stream="other"`` on pmta2 and pmta3. The rate family (no
    IP label) counts every row on every host."""
    by_host = dict(scraped(contracts))
    rates = [{key: number for key, number in found.items() if key[0] == RATE} for found in by_host.values()]
    assert rates[0] == rates[1] == rates[2]
    assert any(rates[0].values()), 'the exporters served the rate family'


def test_a_host_serves_the_per_ip_series_of_its_own_ips_only(contracts: dict[str, Contract]) -> None:
    """Another host's IP has no per-IP series here (else each series is stored once per host); an IP no host owns
    (``other``) and a missing one (``unknown``) are the same on every host, and max removes their copies."""
    by_host = dict(scraped(contracts))
    assert per_ip_labels(by_host['pmta1']) == {PMTA1_MARKETING, '203.0.113.10', 'other', 'unknown'}
    assert per_ip_labels(by_host['pmta2']) == {PMTA2_MARKETING, 'other', 'unknown'}
    assert per_ip_labels(by_host['pmta3']) == {'reactivation_alloc1', 'other', 'unknown'}
    shared = [
        {key: number for key, number in found.items() if dict(key[1]).get('sending_ip') in {'other', 'unknown'}}
        for found in by_host.values()
    ]
    assert shared[0] == shared[1] == shared[2]


def test_max_across_hosts_then_sum_gives_the_true_totals(contracts: dict[str, Contract]) -> None:
    by_host = dict(scraped(contracts))
    assert max_then_sum(by_host, 'mailinfra_deliveries_total', 'stream') == {
        'marketing': 10,
        'transactional': 1,
        'reactivation': 2,
    }
    assert max_then_sum(by_host, 'mailinfra_deliveries_total', 'sending_ip') == {
        PMTA1_MARKETING: 3,
        PMTA2_MARKETING: 6,
        '203.0.113.10': 1,
        'reactivation_alloc1': 2,
        'other': 1,
    }
    assert max_then_sum(by_host, 'mailinfra_bounces_total', 'sending_ip') == {PMTA2_MARKETING: 1}
    assert max_then_sum(by_host, 'mailinfra_complaints_total', 'stream') == {'reactivation': 1}
    rates = max_then_sum(by_host, RATE, 'stream')
    assert {stream: number for stream, number in rates.items() if number} == {
        'marketing': 11,
        'transactional': 1,
        'reactivation': 3,
    }


def test_a_sqlite_store_keeps_the_hosts_own_labels() -> None:
    """Without a database host each host's store holds its own events: the contract carries no shared labels."""
    spec_text = (ROOT / 'examples/newsletter-publisher.yml').read_text()
    spec = parse_spec(spec_text, 'spec.yml', as_of=AS_OF)
    context = RenderContext(spec.deployment, spec.facts, spec.name, {}, TEST_DKIM)
    for host in spec.facts.host_mta:
        contract = host_contract(context, host)
        assert contract.store.backend == 'sqlite' and contract.exporter.shared_labels is None
        assert bounds_for(contract).streams == {stream.name for stream in contract.streams}


def test_shared_labels_are_ignored_on_a_sqlite_store(postgres: Postgres) -> None:
    """The loader refuses shared labels with a SQLite store; a contract built without it still labels by its own."""
    contract = rendered(postgres)['pmta2']
    assert contract.exporter.shared_labels is not None
    own = dataclasses.replace(contract, store=Store('sqlite', path='/var/lib/mailinfra/feedback.db'))
    bounds = bounds_for(own)
    assert bounds.streams == {'marketing'} and bounds.foreign_ips == frozenset()
    assert set(bounds.ips.values()) == {ip.address for ip in contract.ips}
    shared = bounds_for(contract)
    assert shared.streams == {'transactional', 'marketing', 'reactivation'} and PMTA1_MARKETING in shared.foreign_ips
