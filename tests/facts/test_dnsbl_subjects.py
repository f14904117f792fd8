"""Blocklist subjects (``facts.dnsbl``): every sending IP and every domain receivers or URIBLs see."""

from __future__ import annotations

from mailinfra_iac import parse_spec
from mailinfra_iac.facts.dnsbl import DnsblSubjects, dnsbl_subjects

from ..conftest import AS_OF, BASE, edit


def _subjects(text: str = BASE, addresses: dict[str, str] | None = None) -> DnsblSubjects:
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    return dnsbl_subjects(spec.deployment, spec.facts, addresses)


def test_base_spec_subjects() -> None:
    subjects = _subjects()
    assert subjects.ips == ('192.0.2.10', '192.0.2.20', '192.0.2.21')
    assert subjects.domains == (
        'bounces.news.testco.example',
        'bounces.testco.example',
        'news.testco.example',
        'testco.example',
    )
    assert subjects.unresolved == ()


def test_return_path_tracking_and_link_domains_are_subjects_once() -> None:
    text = edit(
        '  - domain: news.testco.example\n',
        '  - domain: news.testco.example\n'
        '    return_path: rp.testco.example\n'
        '    tracking: {hostname: Click.News.testco.example, target: track.esp.example}\n',
    )
    text = edit(
        'monitoring:\n',
        'monitoring:\n  dnsbl: {link_domains: [shop.example, testco.example, Shop.Example]}\n',
        text,
    )
    domains = _subjects(text).domains
    assert domains == (
        'bounces.testco.example',
        'click.news.testco.example',
        'news.testco.example',
        'rp.testco.example',
        'shop.example',
        'testco.example',
    )
    assert 'bounces.news.testco.example' not in domains
    assert 'track.esp.example' not in domains


def test_ips_sorted_numerically_ipv4_first_and_deduplicated() -> None:
    text = edit(
        '      - address: 192.0.2.21\n        ptr: bulk2.testco.example\n',
        '      - address: 192.0.2.21\n        ptr: bulk2.testco.example\n'
        '      - address: 192.0.2.3\n        ptr: bulk3.testco.example\n',
    )
    assert _subjects(text).ips == ('192.0.2.3', '192.0.2.10', '192.0.2.20', '192.0.2.21')


def test_allocated_ips_are_unresolved_until_addresses_are_given() -> None:
    text = edit(
        '  tx:\n    ips:\n      - address: 192.0.2.10\n        ptr: tx1.testco.example\n',
        '  tx:\n    allocate: {count: 2, ptr_pattern: "tx{n}.testco.example"}\n',
    )
    text = edit('    provider: static\n', '    provider: hetzner\n', text)  # a static host cannot get allocations
    subjects = _subjects(text)
    assert subjects.unresolved == ('tx_alloc1', 'tx_alloc2')
    assert '192.0.2.10' not in subjects.ips
    filled = _subjects(text, {'tx_alloc1': '198.51.100.7'})
    assert filled.ips == ('192.0.2.20', '192.0.2.21', '198.51.100.7')
    assert filled.unresolved == ('tx_alloc2',)


def test_deterministic() -> None:
    assert _subjects() == _subjects()
