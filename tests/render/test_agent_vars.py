"""``agent__contract``: the controller fills the agent's contract types; the host's loader accepts the result."""

from __future__ import annotations

import json

import yaml
from ansible.plugins.filter.core import to_nice_json  # type: ignore[import-untyped]

from mailinfra_agent.contract import DEFAULT_SQLITE_PATH, Store, dump_contract, load_contract
from mailinfra_iac import parse_spec, render_files
from mailinfra_iac.render import RenderContext
from mailinfra_iac.render.mta_configs import template_environment
from mailinfra_iac.render.rolevars.agent import AgentVars, host_contract

from ..conftest import AS_OF, BASE, TEST_DKIM, edit


def context(text: str = BASE, addresses: dict[str, str] | None = None) -> RenderContext:
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    return RenderContext(spec.deployment, spec.facts, spec.name, addresses or {}, TEST_DKIM)


def test_host_vars_hold_the_dumped_contract_and_it_loads() -> None:
    ctx = context()
    contract = host_contract(ctx, 'mta1')
    variables = AgentVars().host_vars(ctx, 'mta1')
    assert variables == {'agent__contract': dump_contract(contract)}
    assert load_contract(variables['agent__contract']) == contract
    assert contract.host.roles == ('mta',)
    assert [(stream.name, stream.instance, stream.injection.port) for stream in contract.streams] == [
        ('transactional', 'postfix-transactional', 2525),
        ('marketing', 'postfix-marketing', 2526),
    ]
    assert [(ip.address, ip.stream) for ip in contract.ips] == [
        ('192.0.2.10', 'transactional'),
        ('192.0.2.20', 'marketing'),
        ('192.0.2.21', 'marketing'),
    ]
    assert contract.thresholds.queue.depth_warning == 100
    assert contract.store.path == DEFAULT_SQLITE_PATH


def test_inventory_and_rendered_file_agree() -> None:
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    files = {path: output.content for path, output in render_files(spec, dkim=TEST_DKIM).items()}
    inventory = yaml.safe_load(files['inventory/host_vars/mta1.yml'])
    rendered = json.loads(files['mta/mta1/etc/mailinfra/agent.json'])
    assert inventory['agent__contract'] == rendered
    load_contract(rendered)


def test_stream_overrides_reach_only_their_stream() -> None:
    text = edit(
        '    injection: {port: 2526, networks: [10.0.0.0/8]}\n',
        '    injection: {port: 2526, networks: [10.0.0.0/8]}\n'
        '    isp_overrides:\n'
        '      gmail:\n'
        '        limits: {max_connections: 2}\n'
        '        backoff_rules: [{pattern: "^421 .*slow down", action: suspend, duration: 2h}]\n',
    )
    contract = host_contract(context(text), 'mta1')
    gmail = {
        stream.name: isp.limits.max_connections
        for stream in contract.streams
        for isp in stream.isps
        if isp.isp == 'gmail'
    }
    assert gmail['marketing'] == 2 and gmail['transactional'] != 2
    rules = {
        stream.name: [rule for isp in stream.isps if isp.isp == 'gmail' for rule in isp.backoff_rules]
        for stream in contract.streams
    }
    assert [(rule.action, rule.duration) for rule in rules['marketing'] if rule.pattern == '^421 .*slow down'] == [
        ('suspend', 7200)
    ]
    assert not any(rule.pattern == '^421 .*slow down' for rule in rules['transactional'])


def test_selected_blocklist_zones_with_their_codes() -> None:
    text = edit(
        '  queue: {depth_warning: 100, depth_critical: 1000}',
        '  queue: {depth_warning: 100, depth_critical: 1000}\n  dnsbl:\n    zones: [zen.spamhaus.org]\n'
        '    nameservers: ["127.0.0.1:5353"]\n    custom_zones:\n      - {zone: rbl.example.net, kind: ip, '
        'operator: Example, listings: {127.0.0.2: listed}, errors: {127.0.0.3: refused}, test_point: 2.0.0.127}',
    )
    blocklists = host_contract(context(text), 'mta1').blocklists
    zen, custom = blocklists.zones
    assert zen.zone == 'zen.spamhaus.org' and zen.listings['127.0.0.4'].startswith('XBL')
    assert zen.errors['127.255.255.254'].startswith('query came through a public')
    assert zen.error_ids['127.255.255.254'] == 'open_resolver'
    assert (zen.severity, zen.test_point, zen.key_zone) == ('critical', '2.0.0.127', 'zen.dq.spamhaus.net')
    assert zen.source.startswith('https://docs.spamhaus.com/')
    assert (custom.zone, custom.decoder, custom.listings, custom.errors) == (
        'rbl.example.net',
        'codes',
        {'127.0.0.2': 'listed'},
        {'127.0.0.3': 'refused'},
    )
    assert blocklists.nameservers == ('127.0.0.1:5353',)
    # subjects only go to monitoring hosts
    assert blocklists.subjects.ips == () and blocklists.subjects.domains == ()


def test_default_blocklist_zones_come_from_the_agent_catalogue() -> None:
    from mailinfra_agent.dnsbl import load_catalogue

    zones = host_contract(context(), 'mta1').blocklists.zones
    assert [zone.zone for zone in zones] == sorted(zone.zone for zone in load_catalogue().default_zones())
    assert {zone.decoder for zone in zones} == {'codes', 'bitmask', 'score'}


def test_allocated_addresses_are_null_until_known() -> None:
    text = edit(
        '  bulk:\n    ips:\n      - address: 192.0.2.20\n        ptr: bulk1.testco.example\n'
        '      - address: 192.0.2.21\n        ptr: bulk2.testco.example\n',
        '  bulk:\n    allocate: {count: 1, ptr_pattern: "bulk{n}.testco.example"}\n',
    )
    text = edit('    provider: static\n', '    provider: hetzner\n', text)  # a static host cannot get allocations
    before = host_contract(context(text), 'mta1')
    assert [(ip.id, ip.address) for ip in before.ips if ip.pool == 'bulk'] == [('bulk_alloc1', None)]
    after = host_contract(context(text, {'bulk_alloc1': '198.51.100.7'}), 'mta1')
    assert [ip.address for ip in after.ips if ip.pool == 'bulk'] == ['198.51.100.7']


def test_to_nice_json_filter_matches_ansible() -> None:
    value = AgentVars().host_vars(context(), 'mta1')['agent__contract']
    value['note'] = 'Grüße, "quoted" \u2713'
    ours = template_environment().from_string('{{ value | to_nice_json(sort_keys=True) }}').render(value=value)
    assert ours == to_nice_json(value, sort_keys=True)
    assert ours == to_nice_json(value)
    # indent=2, as the agent role's template writes it: the fast path (plain ASCII) and the fallback (not)
    for note in ('plain ASCII \u0001 "quoted"', 'Grüße \u2713'):
        value['note'] = note
        ours = template_environment().from_string('{{ value | to_nice_json(indent=2) }}').render(value=value)
        assert ours == to_nice_json(value, indent=2)


def test_a_database_host_makes_the_store_shared() -> None:
    assert host_contract(context(), 'mta1').store == Store('sqlite', path=DEFAULT_SQLITE_PATH)
    text = edit(
        '    pools: [tx, bulk]\n',
        '    pools: [tx, bulk]\n  db1:\n    fqdn: db1.testco.example\n    provider: static\n'
        '    address: 192.0.2.2\n    roles: [database]\n',
    )
    ctx = context(text)
    for host in ('mta1', 'db1'):
        assert host_contract(ctx, host).store == Store(
            'postgresql',
            dsn='host=db1.testco.example port=5432 dbname=mailinfra user=mailinfra_agent',
            password_file='/etc/mailinfra/secrets/store-password',
        )
    database = host_contract(ctx, 'db1')
    assert (database.host.roles, database.host.mta, database.streams, database.ips, database.isps) == (
        ('database',),
        None,
        (),
        (),
        (),
    )
    assert load_contract(dump_contract(database)) == database
