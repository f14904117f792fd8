"""DNS names in the spec: e-mail domains, nameserver keys, and managed zones nested in managed zones."""

from __future__ import annotations

import json

import pytest

from mailinfra_iac import parse_spec
from mailinfra_iac.problems import format_path

from ..conftest import AS_OF, BASE, edit, position, problems

ABUSE = 'abuse: abuse@testco.example'

BAD_ADDRESSES = {
    'fbl@.acme.example': 'with a domain',
    'x@x..example': 'with a domain',
    'x@-x.example': 'with a domain',
    'x@x-.example': 'with a domain',
    'x@x_y.example': 'with a domain',
    'x@' + 'a' * 64 + '.example': 'with a domain',
    'x@' + ('a' * 63 + '.') * 3 + 'b' * 55 + '.example': 'with a domain',  # 255 characters
    'x@acme.example.': 'with a domain',
    'x@acme.e': 'with a domain',
    'x@acme.e1': 'with a domain',
    'x@example': 'with a domain',
    'x@': 'with a domain',
    'acme.example': 'with a local part',
    '@acme.example': 'with a local part',
    '.x@acme.example': 'with a local part',
    'x.@acme.example': 'with a local part',
    'x..y@acme.example': 'with a local part',
    'a' * 65 + '@acme.example': 'with a local part',
}


@pytest.mark.parametrize('address', BAD_ADDRESSES)
def test_bad_address_is_refused_at_its_field(address: str) -> None:
    quoted = json.dumps(address)
    text = edit(ABUSE, f'abuse: {quoted}')
    [problem] = [p for p in problems(text) if p.severity == 'error']
    assert problem.check == 'schema-value-error'
    assert format_path(problem.path) == 'client.abuse'
    assert (problem.line, problem.column) == position(text, quoted)
    assert problem.expected.startswith('local@domain ' + BAD_ADDRESSES[address]), problem.expected


GOOD_ADDRESSES = {
    'abuse@testco.example': 'abuse@testco.example',
    'Abuse.Desk@TestCo.Example': 'Abuse.Desk@testco.example',
    'a_b+c=d%e-f@sub.test-co.example': 'a_b+c=d%e-f@sub.test-co.example',
    'x@' + 'a' * 63 + '.example': 'x@' + 'a' * 63 + '.example',
    'x@' + ('a' * 63 + '.') * 3 + 'b' * 53 + '.example': 'x@' + ('a' * 63 + '.') * 3 + 'b' * 53 + '.example',
    'a' * 64 + '@testco.example': 'a' * 64 + '@testco.example',
}


@pytest.mark.parametrize('address', GOOD_ADDRESSES)
def test_good_address_is_kept(address: str) -> None:
    spec = parse_spec(edit(ABUSE, f'abuse: {json.dumps(address)}'), 'spec.yml', as_of=AS_OF)
    assert spec.deployment.client.abuse == GOOD_ADDRESSES[address]


# --- nameserver_addresses: keys that are one name ---

ADDRESSES = '      nameserver_addresses: {ns.testco.example: [192.0.2.53]}\n'


@pytest.mark.parametrize('second', ['NS.testco.example', 'ns.testco.example.', 'Ns.TestCo.Example.'])
def test_nameserver_given_twice_is_refused(second: str) -> None:
    text = edit(ADDRESSES, f'      nameserver_addresses: {{ns.testco.example: [192.0.2.53], {second}: [192.0.2.54]}}\n')
    [problem] = [p for p in problems(text) if p.severity == 'error']
    assert problem.check == 'schema-value-error'
    assert format_path(problem.path) == 'dns.zones[0].nameserver_addresses'
    assert (problem.line, problem.column) == position(text, '{ns.testco.example: [192.0.2.53]')
    assert f'"ns.testco.example" and "{second}" are the same nameserver ns.testco.example' in problem.message
    assert problem.expected == 'each nameserver once with all its addresses in one list'


def test_nameserver_with_several_addresses_loads() -> None:
    text = edit(ADDRESSES, '      nameserver_addresses: {NS.testco.example.: [192.0.2.53, "2001:db8::53"]}\n')
    [zone] = parse_spec(text, 'spec.yml', as_of=AS_OF).deployment.dns.zones
    assert zone.nameserver_addresses == {'ns.testco.example': ['192.0.2.53', '2001:db8::53']}


# --- zone-delegation: a managed zone inside another one ---


def delegation(*zones: str, base: str = BASE) -> list[tuple[str, str, str]]:
    text = edit(ADDRESSES, ADDRESSES + ''.join(f'    - {zone}\n' for zone in zones), base)
    assert [p.check for p in problems(text) if p.severity == 'error'] == []
    return [
        (format_path(p.path), p.message, p.expected)
        for p in problems(text)
        if p.check == 'zone-delegation' and p.severity == 'warning'
    ]


def test_child_zone_at_a_provider_needs_the_providers_nameservers_at_the_parent() -> None:
    [(path, message, expected)] = delegation('{name: sub.testco.example, provider: cloudflare}')
    assert path == 'dns.zones[1].name'
    assert message.startswith('zone sub.testco.example lies inside zone testco.example, whose records we publish')
    assert expected.startswith(
        'at the parent zone testco.example: sub.testco.example. NS records naming the nameservers cloudflare '
        'assigns to it'
    )


def test_child_zone_names_its_nameservers_and_glue() -> None:
    [(path, _, expected)] = delegation(
        '{name: sub.testco.example, provider: rfc2136, nameservers: [ns1.sub.testco.example, ns.other.example],'
        ' nameserver_addresses: {ns1.sub.testco.example: [192.0.2.54]}}'
    )
    assert path == 'dns.zones[1].name'
    assert expected.startswith(
        'at the parent zone testco.example: sub.testco.example. NS ns1.sub.testco.example., '
        'sub.testco.example. NS ns.other.example. with glue (their A/AAAA) for ns1.sub.testco.example;'
    )


def test_nearest_managed_parent_is_named() -> None:
    found = delegation(
        '{name: sub.testco.example, provider: route53, nameservers: [ns-1.awsdns-00.com]}',
        '{name: a.b.sub.testco.example, provider: cloudflare}',
    )
    assert [(path, expected.split(':')[0]) for path, _, expected in found] == [
        ('dns.zones[1].name', 'at the parent zone testco.example'),
        ('dns.zones[2].name', 'at the parent zone sub.testco.example'),
    ]


@pytest.mark.parametrize(
    'zone',
    [
        '{name: sub.testco.example, provider: zonefile, nameservers: [ns.testco.example]}',
        '{name: sub.testco.example, provider: rfc2136, nameservers: [ns.testco.example]}',
        '{name: other.example, provider: cloudflare}',
        '{name: xtestco.example, provider: cloudflare}',
    ],
)
def test_zones_that_need_no_delegation(zone: str) -> None:
    assert delegation(zone) == []


@pytest.mark.parametrize(
    'zone',
    [
        '{name: sub.testco.example, provider: cloudflare, nameservers: [ns.testco.example]}',
        '{name: sub.testco.example, provider: rfc2136, nameservers: [ns.testco.example, ns2.other.example]}',
        '{name: sub.testco.example, provider: rfc2136}',
    ],
)
def test_zones_not_served_by_the_parents_own_servers_need_delegation(zone: str) -> None:
    assert [path for path, _, _ in delegation(zone)] == ['dns.zones[1].name']


RFC2136_PARENT = edit('      provider: zonefile\n', '      provider: rfc2136\n      server: 192.0.2.53\n')


@pytest.mark.parametrize('provider', ['rfc2136', 'zonefile'])
def test_rfc2136_parent_is_told_to_delegate_to_a_child_on_its_own_servers(provider: str) -> None:
    """Terraform's dns_rfc2136 sends the parent's records only: no zone file of ours carries the NS there."""
    zone = f'{{name: sub.testco.example, provider: {provider}, nameservers: [ns.testco.example]}}'
    [(path, message, expected)] = delegation(zone, base=RFC2136_PARENT)
    assert path == 'dns.zones[1].name'
    assert 'answer for sub.testco.example from that zone, but the data of testco.example (sent with RFC' in message
    assert expected.startswith('at the parent zone testco.example: sub.testco.example. NS ns.testco.example.;')
