"""Specs that crashed, or validated although wrong (issue 11): each class of input, not only the example found."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra_agent.postfix.staged_check import typed_problems, types_of
from mailinfra_iac import SpecInvalid, parse_spec, render_files
from mailinfra_iac.checks.addresses import terraform_address_problems
from mailinfra_iac.cli.main import main
from mailinfra_iac.facts.hosts import POWERMTA_MGMT_PORT
from mailinfra_iac.model import THROTTLE_RANGES
from mailinfra_iac.problems import format_path
from mailinfra_iac.render.rolevars.powermta import HTTP_MGMT_PORT

from ..conftest import AS_OF, BASE, ROOT, TEST_DKIM, edit, position, problems

STREAM_END = 'injection: {port: 2526, networks: [10.0.0.0/8]}'


def errors(text: str) -> list[str]:
    return [p.check for p in problems(text) if p.severity == 'error']


# --- numbers at and below their lower bound never crash (messages_per_hour: 0 divided by zero) ---

BOUNDARY = [0, -1]


@pytest.mark.parametrize('value', BOUNDARY)
@pytest.mark.parametrize('field', sorted(THROTTLE_RANGES))
@pytest.mark.parametrize('where', ['stream', 'deployment'])
def test_throttle_at_or_below_zero_is_a_located_error(field: str, value: int, where: str) -> None:
    limits = f'{{gmail: {{limits: {{{field}: {value}}}}}}}'
    if where == 'stream':
        text = edit(STREAM_END, f'{STREAM_END}\n    isp_overrides: {limits}')
    else:
        text = edit('monitoring:\n', f'isp_profiles: {limits}\nmonitoring:\n')
    found = [p for p in problems(text) if p.severity == 'error']
    # counts are range-checked by throttle-out-of-range, durations by the schema (a duration is positive)
    assert [p.check for p in found] in (['throttle-out-of-range'], ['schema-value-error'])
    assert found[0].path[-1] == field and found[0].line is not None


@pytest.mark.parametrize('end', ['low', 'high'])
@pytest.mark.parametrize('field', sorted(THROTTLE_RANGES))
def test_throttle_at_its_accepted_bounds_renders(field: str, end: str) -> None:
    """The accepted extremes (1 message an hour, 10 million an hour, ...) render: nothing divides by them badly."""
    low, high = THROTTLE_RANGES[field]
    limits = f'{{gmail: {{limits: {{{field}: {low if end == "low" else high}}}}}}}'
    text = edit('peak_hourly: 3000}', 'peak_hourly: 1}', edit(STREAM_END, f'{STREAM_END}\n    isp_overrides: {limits}'))
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    assert render_files(spec, dkim=TEST_DKIM)


NUMBERS = [
    ('volume: {monthly: 30000, peak_hourly: 300}', 'volume: {monthly: {v}, peak_hourly: {v}}'),
    ('volume: {monthly: 300000, peak_hourly: 3000}', 'volume: {monthly: 300000, peak_hourly: {v}}'),
    ('injection: {port: 2525,', 'injection: {port: {v},'),
    ('depth_warning: 100,', 'depth_warning: {v},'),
    ('depth_critical: 1000', 'depth_critical: {v}'),
    ('  zones:\n', '  ttl: {v}\n  zones:\n'),
    ('dkim: {selectors: [s2026q4]}\n    spf', 'dkim: {selectors: [s2026q4], rsa_bits: {v}, rotation: {v}}\n    spf'),
    ('spf: {includes: [_spf.mailer.example]}', 'spf: {includes: [{domain: _spf.x.example, lookups: {v}}]}'),
    (STREAM_END, STREAM_END + '\n    recipient_mix: {gmail: {v}, yahoo: {v}}'),
    (STREAM_END, STREAM_END + '\n    retry: {min_backoff: {v}, max_backoff: {v}, queue_lifetime: {v}}'),
    (
        '  bulk:\n    ips:\n      - address: 192.0.2.20\n        ptr: bulk1.testco.example\n'
        '      - address: 192.0.2.21\n        ptr: bulk2.testco.example\n',
        '  bulk:\n    ips: [{address: 192.0.2.20, ptr: bulk1.testco.example}]\n'
        '    allocate: {count: {v}, ptr_pattern: "b{n}.testco.example"}\n',
    ),
]


@pytest.mark.parametrize('value', [0, -1, 0.5, 10**12])
@pytest.mark.parametrize(('old', 'new'), NUMBERS, ids=[new.split(':')[0].strip() for _, new in NUMBERS])
def test_boundary_numbers_never_crash(old: str, new: str, value: int) -> None:
    """Zero, negative, fractional and huge values: a valid spec or located errors, never another exception."""
    text = edit(old, new.replace('{v}', str(value)))
    try:
        parse_spec(text, 'spec.yml', as_of=AS_OF)
    except SpecInvalid as invalid:
        assert all(p.line is not None for p in invalid.problems), [str(p) for p in invalid.problems]


# --- retry timing Postfix takes (it refuses times over 2**31-1 seconds: the instance would not start) ---


@pytest.mark.parametrize('field', ['min_backoff', 'max_backoff', 'queue_lifetime'])
def test_retry_beyond_its_range_is_a_located_error(field: str) -> None:
    retry = {'min_backoff': '1m', 'max_backoff': '1h', 'queue_lifetime': '1d', field: '365d1s'}
    text = edit(STREAM_END, f'{STREAM_END}\n    retry: {{{", ".join(f"{k}: {v}" for k, v in retry.items())}}}')
    found = [p for p in problems(text) if p.severity == 'error']
    assert [(p.check, p.path[-1]) for p in found] == [('schema-value-error', field)]
    assert found[0].line is not None and 'out of range: 1s to 365d' in found[0].message


def test_retry_at_its_upper_bound_renders_times_postfix_takes(tmp_path: Path) -> None:
    retry = '    retry: {min_backoff: 365d, max_backoff: 365d, queue_lifetime: 365d}'
    spec = parse_spec(edit(STREAM_END, f'{STREAM_END}\n{retry}'), 'spec.yml', as_of=AS_OF)
    instance = 'mta/mta1/etc/postfix-marketing/'
    for path, output in render_files(spec, renderers=['mta'], dkim=TEST_DKIM).items():
        if path.startswith(instance):
            (tmp_path / path.removeprefix(instance)).parent.mkdir(exist_ok=True)
            (tmp_path / path.removeprefix(instance)).write_bytes(output.content)
    found = subprocess.run(['postconf', '-c', str(tmp_path), '-n', '-x'], capture_output=True, text=True, timeout=60)
    values = {name: value.strip() for name, _, value in (line.partition(' =') for line in found.stdout.splitlines())}
    assert values['maximal_queue_lifetime'] == '31536000s'
    assert typed_problems(values, '', types_of(str(tmp_path)), None) == []


# --- addresses the Internet must reach ---

NOT_GLOBAL = [
    '0.0.0.0',
    '0.1.2.3',
    '10.0.0.10',
    '127.0.0.1',
    '100.64.0.1',
    '169.254.1.1',
    '172.16.5.5',
    '172.31.255.254',
    '192.168.1.1',
    '192.0.0.8',
    '224.0.0.5',
    '240.0.0.1',
    '255.255.255.255',
]


@pytest.mark.parametrize('address', NOT_GLOBAL)
def test_sending_ip_that_is_not_global_is_an_error(address: str) -> None:
    text = edit('address: 192.0.2.10', f'address: {address}')
    found = [p for p in problems(text) if p.check == 'ip-not-global']
    assert [(p.severity, p.path) for p in found] == [('error', ('pools', 'tx', 'ips', 0, 'address'))]
    assert address in found[0].message


@pytest.mark.parametrize('address', ['10.1.1.1', '192.168.0.10', '127.0.0.1'])
def test_mta_host_address_that_is_not_global_is_an_error(address: str) -> None:
    found = [p for p in problems(edit('address: 192.0.2.1\n', f'address: {address}\n')) if p.check == 'ip-not-global']
    assert [p.path for p in found] == [('hosts', 'mta1', 'address')]


def test_private_address_of_a_monitoring_host_is_fine() -> None:
    text = edit(
        'pools: [tx, bulk]\n',
        'pools: [tx, bulk]\n  mon1: {fqdn: mon1.testco.example, provider: static, address: 10.0.0.2, '
        'roles: [monitoring]}\n',
    )
    assert 'ip-not-global' not in errors(text)


def test_documentation_addresses_are_fine_in_a_spec_that_uses_nothing_else() -> None:
    assert 'ip-not-global' not in errors(BASE)  # every address of the base spec is RFC 5737


def test_documentation_address_next_to_a_real_one_is_an_error() -> None:
    text = edit('address: 192.0.2.10', 'address: 8.8.8.10')
    found = [p for p in problems(text) if p.check == 'ip-not-global']
    assert {p.path for p in found} == {
        ('pools', 'bulk', 'ips', 0, 'address'),
        ('pools', 'bulk', 'ips', 1, 'address'),
        ('hosts', 'mta1', 'address'),
    }
    assert all('8.8.8.10' in p.message for p in found)


def test_examples_are_examples() -> None:
    for path in sorted((ROOT / 'examples').glob('*.yml')):
        text = path.read_text()
        assert 'ip-not-global' not in errors(text), path


# --- injection ports, allocations, alert targets, empty provider settings ---


def test_same_port_on_different_hosts_is_fine() -> None:
    text = edit(
        'pools: [tx, bulk]\n',
        'pools: [tx]\n  mta2: {fqdn: mta2.testco.example, provider: static, address: 192.0.2.2, pools: [bulk]}\n',
    )
    text = edit('injection: {port: 2526,', 'injection: {port: 2525,', text)
    assert 'injection-port-conflict' not in errors(text)


@pytest.mark.parametrize(
    ('port', 'inbound', 'monitoring', 'reserved'),
    [
        (25, True, False, True),  # the primary instance is the bounce MX on port 25 of an inbound host
        (25, False, False, False),  # elsewhere it has no SMTP listener
        (22, False, False, True),
        (9745, False, False, True),
        (9090, False, True, True),  # Prometheus, where the MTA host is the monitoring host too
        (9090, False, False, False),
        (2527, True, True, False),
        (53, False, True, True),  # unbound, the blocklist resolver of the monitoring host
        (53, False, False, False),
        (8080, False, False, False),  # a Postfix host has no PowerMTA web monitor
    ],
)
def test_injection_port_a_service_of_the_host_holds(port: int, inbound: bool, monitoring: bool, reserved: bool) -> None:
    # stream marketing on mta2; mta1 or mta2 the inbound host
    roles = '[mta, monitoring]' if monitoring else '[mta]'
    mta2 = f'  mta2: {{fqdn: mta2.testco.example, provider: static, address: 192.0.2.2, pools: [bulk], roles: {roles}}}'
    text = edit('pools: [tx, bulk]\n', f'pools: [tx]\n{mta2}\n')
    text = edit('injection: {port: 2526,', f'injection: {{port: {port},', text)
    text = edit('monitoring:\n', f'inbound:\n  hosts: [{"mta2" if inbound else "mta1"}]\nmonitoring:\n', text)
    assert ('injection-port-reserved' in errors(text)) == reserved


@pytest.mark.parametrize(('mta', 'reserved'), [('powermta', True), ('postfix', False)])
def test_injection_port_powermtas_web_monitor_holds(mta: str, reserved: bool) -> None:
    mta2 = f'  mta2: {{fqdn: mta2.testco.example, provider: static, address: 192.0.2.2, pools: [bulk], mta: {mta}}}'
    text = edit('pools: [tx, bulk]\n', f'pools: [tx]\n{mta2}\n')
    text = edit('injection: {port: 2526,', 'injection: {port: 8080,', text)
    assert ('injection-port-reserved' in errors(text)) == reserved


def test_reserved_ports_match_the_roles() -> None:
    powermta = yaml.safe_load((ROOT / 'roles/powermta/defaults/main.yml').read_text())
    prometheus = yaml.safe_load((ROOT / 'roles/prometheus/defaults/main.yml').read_text())
    assert powermta['powermta__http_mgmt_port'] == POWERMTA_MGMT_PORT == HTTP_MGMT_PORT
    assert prometheus['prometheus__unbound_enabled'] is True


@pytest.mark.parametrize(
    ('profiles', 'path'),
    [
        ('  agmail: {display_name: A, recipient_domains: [gmail.com]}\n', 'isp_profiles.agmail.recipient_domains[0]'),
        (
            '  zmail: {display_name: Z, recipient_domains: [z.example, gmail.com]}\n',
            'isp_profiles.zmail.recipient_domains[1]',
        ),
        ('  yahoo: {recipient_domains: [gmail.com]}\n', 'isp_profiles.yahoo.recipient_domains[0]'),
        ('  zmail: {display_name: Z, recipient_domains: [z.example]}\n', None),
    ],
)
def test_a_recipient_domain_of_two_providers_is_an_error(profiles: str, path: str | None) -> None:
    # Postfix routes gmail.com to the first provider in name order: the other's limits would never apply to it
    found = [
        p for p in problems(edit('monitoring:\n', f'isp_profiles:\n{profiles}monitoring:\n')) if p.severity == 'error'
    ]
    assert [(p.check, format_path(p.path)) for p in found] == ([('isp-domain-overlap', path)] if path else [])


@pytest.mark.parametrize(('mta', 'flagged'), [('postfix', True), ('powermta', False)])
def test_ipv6_injection_networks_only_where_the_listener_takes_ipv6(mta: str, flagged: bool) -> None:
    text = edit('mta: auto\n', f'mta: {mta}\n')
    text = edit(STREAM_END, STREAM_END.replace('[10.0.0.0/8]', "[10.0.0.0/8, '2001:db8::/32']"), text)
    assert ('injection-network-ipv6' in errors(text)) == flagged


def test_allocation_on_a_provider_host_is_fine() -> None:
    text = edit(
        '    provider: static\n    address: 192.0.2.1\n',
        '    provider: hetzner\n    region: fsn1\n    size: cx32\n',
    )
    text = edit(
        '  tx:\n    ips:\n      - address: 192.0.2.10\n        ptr: tx1.testco.example\n',
        '  tx:\n    allocate: {count: 1, ptr_pattern: "tx{n}.testco.example"}\n',
        text,
    )
    assert 'allocation-provider' not in errors(text)


@pytest.mark.parametrize(
    ('kind', 'target', 'good'),
    [
        ('email', 'ops@testco.example', True),
        ('email', 'ops', False),
        ('email', 'https://hooks.example.com/x', False),
        ('email', 'ops@localhost', False),
        ('webhook', 'https://hooks.example.com/alerts', True),
        ('webhook', 'http://10.0.0.5:9093/hook', True),
        ('webhook', 'ops@testco.example', False),
        ('webhook', 'ftp://hooks.example.com/x', False),
        ('webhook', 'https://', False),
        ('webhook', 'https://hooks.example.com:99999/x', False),
        ('webhook', 'https://hooks example.com/x', False),
        ('webhook', 'https://[2001:db8::1/alerts', False),
        ('webhook', 'https://hooks.example.com/alerts?to=ops@testco.example', True),
    ],
)
def test_alert_targets(kind: str, target: str, good: bool) -> None:
    text = edit('monitoring:\n', f'monitoring:\n  alerts: [{{kind: {kind}, target: "{target}"}}]\n')
    assert ('alert-target' not in errors(text)) is good


@pytest.mark.parametrize(
    'target',
    ['https://ops:Hook-S3cret@hooks.example.com/alerts', 'https://ops:Hook-S3cret@hooks.example.com:x/alerts'],
)
def test_alert_target_with_credentials_is_refused_unshown(target: str) -> None:
    # it was accepted, and written in clear into alertmanager.yml and the inventory
    text = edit('monitoring:\n', f'monitoring:\n  alerts: [{{kind: webhook, target: "{target}"}}]\n')
    with pytest.raises(SpecInvalid) as raised:
        parse_spec(text, 'spec.yml', as_of=AS_OF)
    [problem] = [problem for problem in raised.value.problems if problem.check == 'alert-target']
    assert 'holds credentials' in problem.message and problem.path == ('monitoring', 'alerts', 0, 'target')
    assert 'Hook-S3cret' not in f'{raised.value.report()} {problem.value}'


@pytest.mark.parametrize('provider', ['hetzner', 'vultr', 'linode', 'ovh', 'aws', 'static'])
@pytest.mark.parametrize('field', ['region', 'size'])
def test_empty_region_or_size_is_an_error(provider: str, field: str) -> None:
    text = edit('    provider: static\n', f'    provider: {provider}\n    region: fsn1\n    size: cx32\n')
    text = edit(f'    {field}: {"fsn1" if field == "region" else "cx32"}\n', f'    {field}: "  "\n', text)
    found = [p for p in problems(text) if p.check == 'host-provisioning' and p.path == ('hosts', 'mta1', field)]
    assert len(found) == 1 and found[0].line is not None


# --- impossible volumes are errors; validate --strict fails on warnings ---


def test_small_shortfall_stays_a_warning() -> None:
    text = edit('peak_hourly: 3000}', 'peak_hourly: 30000}')
    found = [(p.check, p.severity) for p in problems(text) if p.check.startswith('stream-capacity')]
    assert found and set(found) == {('stream-capacity', 'warning')}


def test_peak_equal_to_monthly_is_not_an_error() -> None:
    assert 'volume-consistency' not in errors(
        edit('monthly: 30000, peak_hourly: 300', 'monthly: 300, peak_hourly: 300')
    )


def test_strict_validate_fails_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / 'spec.yml'
    spec.write_text(edit('peak_hourly: 3000}', 'peak_hourly: 30000}'))
    assert main(['validate', str(spec), '--as-of', AS_OF.isoformat()]) == 0
    assert main(['validate', str(spec), '--as-of', AS_OF.isoformat(), '--strict']) == 1
    assert '(--strict)' in capsys.readouterr().out
    assert main(['validate', str(spec), '--as-of', AS_OF.isoformat(), '--strict', '--format', 'json']) == 1
    assert json.loads(capsys.readouterr().out)['valid'] is False
    assert main(['validate', str(spec), '--as-of', AS_OF.isoformat(), '--format', 'json']) == 0
    assert json.loads(capsys.readouterr().out)['valid'] is True
    spec.write_text(BASE)  # advice only
    assert main(['validate', str(spec), '--as-of', AS_OF.isoformat(), '--strict']) == 0


# --- terraform output is validated like the spec ---

ALLOCATING = edit(
    '  tx:\n    ips:\n      - address: 192.0.2.10\n        ptr: tx1.testco.example\n',
    '  tx:\n    allocate: {count: 2, ptr_pattern: "tx{n}.testco.example"}\n',
    edit('    provider: static\n    address: 192.0.2.1\n', '    provider: hetzner\n    region: fsn1\n    size: cx32\n'),
)
GOOD_OUTPUT = {'tx_alloc1': '203.0.113.11', 'tx_alloc2': '203.0.113.12', 'host_mta1': '203.0.113.1'}


def tf_problems(values: Any) -> list[tuple[str | int, str]]:
    spec = parse_spec(ALLOCATING, 'spec.yml', as_of=AS_OF)
    return [
        (p.path[-1], p.message) for p in terraform_address_problems(spec.deployment, spec.facts, values, 'out.json')
    ]


def test_good_terraform_output_passes() -> None:
    assert tf_problems(GOOD_OUTPUT) == []
    # the spec's own addresses may be in the output too, unchanged
    assert tf_problems({**GOOD_OUTPUT, 'bulk_192_0_2_20': '192.0.2.20'}) == []


@pytest.mark.parametrize(
    ('change', 'key', 'words'),
    [
        ({'tx_alloc1': None}, 'tx_alloc1', 'missing'),
        ({'tx_alloc1': 'not-an-ip'}, 'tx_alloc1', 'not an IPv4 address'),
        ({'tx_alloc1': ''}, 'tx_alloc1', 'not an IPv4 address'),
        ({'tx_alloc1': 7}, 'tx_alloc1', 'not an IPv4 address'),
        ({'tx_alloc1': '2001:db8::1'}, 'tx_alloc1', 'not an IPv4 address'),
        ({'tx_alloc1': '10.0.0.5'}, 'tx_alloc1', 'private'),
        ({'tx_alloc1': '127.0.0.1'}, 'tx_alloc1', 'loopback'),
        ({'tx_alloc1': '100.64.1.1'}, 'tx_alloc1', 'carrier-grade NAT'),
        ({'host_mta1': '192.168.1.1'}, 'host_mta1', 'private'),
        ({'tx_alloc2': '203.0.113.11'}, 'tx_alloc2', 'also "tx_alloc1"'),
        ({'tx_alloc9': '203.0.113.19'}, 'tx_alloc9', 'not an address of this spec'),
        ({'bulk_192_0_2_20': '203.0.113.99'}, 'bulk_192_0_2_20', 'differs from the spec'),
    ],
)
def test_bad_terraform_output_is_a_located_error(change: dict[str, Any], key: str, words: str) -> None:
    values = {k: v for k, v in {**GOOD_OUTPUT, **change}.items() if v is not None}
    found = tf_problems(values)
    assert len(found) == 1 and found[0][0] == key and words in found[0][1], found


def test_documentation_address_from_terraform_next_to_real_ones_is_an_error() -> None:
    found = tf_problems({**GOOD_OUTPUT, 'tx_alloc1': '8.8.8.8'})
    assert {key for key, _ in found} == {'tx_alloc2', 'host_mta1'}


@pytest.mark.parametrize('payload', [{}, {'ip_addresses': {'value': {}}}, {'tx_alloc1': 'not-an-ip'}])
def test_render_refuses_bad_terraform_output(
    payload: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(tmp_path / 'keys'))
    spec, output = tmp_path / 'spec.yml', tmp_path / 'out.json'
    spec.write_text(ALLOCATING)
    output.write_text(json.dumps(payload))
    code = main(
        [
            'render',
            str(spec),
            '-o',
            str(tmp_path / 'out'),
            '--only',
            'inventory',
            '--terraform-output',
            str(output),
            '--as-of',
            AS_OF.isoformat(),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1, err
    assert str(output) in err and 'ip_addresses.value.tx_alloc' in err
    assert not (tmp_path / 'out').exists()


# --- messages in YAML terms ---

PYTHONISMS = re.compile(
    r'NoneType|\bNone\b|\bTrue\b|\bFalse\b|instance of|Input should|dictionary|\bdict\b|after validation|'
    r"unable to|Datetimes|[Ee]xpected Expected|'\w[^']*'|\b[A-Z]\w*\(\w+=|"
    r'\b(?:SendingIp|SendingDomain|QueueThresholds|IspLimits|IspOverride|BouncePolicy|CategoryPolicy|ReplyRule|'
    r'RetrySchedule|MtaSts|TlsRpt|SpfInclude|BackoffRule)\b'
)
BAD_VALUES: list[Any] = [None, [], {}, 'x', -1, True, 1.5, [1], {'a': 1}, '', {'a': [None, True]}]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


def test_no_python_terms_in_any_message() -> None:
    """Every value of the base spec replaced by each bad value: messages speak YAML (null, true, mapping, list)."""
    base = yaml.safe_load(BASE)
    base['bounce_policy'] = {'categories': {'bad-mailbox': {'retry': True, 'suppress_after': 1}}}
    base['isp_profiles'] = {'gmail': {'limits': {'max_connections': 2}}}
    base['pools']['tx']['ips'][0]['warmup_started'] = '2026-11-01'
    seen = 0
    for path in _paths(base)[1:]:
        for bad in BAD_VALUES:
            data = copy.deepcopy(base)
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = bad
            for problem in problems(yaml.safe_dump(data)):
                seen += 1
                text = f'{problem.message} | {problem.expected}'
                assert not PYTHONISMS.search(text), (path, bad, text)
    assert seen > 1000


@pytest.mark.parametrize(
    ('old', 'new', 'message', 'expected'),
    [
        ('address: 192.0.2.10', 'address: null', 'invalid IPv4 address null', 'dotted quad'),
        ('address: 192.0.2.10', 'address: [1]', 'invalid IPv4 address [1]', 'dotted quad'),
        ('mta: auto', 'mta: true', 'invalid value true', '"postfix", "powermta" or "auto"'),
        ('client:\n  name: testco', 'client: 7\nxclient:\n  name: testco', 'invalid value 7', 'a mapping with'),
        ('    volume: {monthly: 30000, peak_hourly: 300}\n', '', 'missing required field "volume"', '"volume": '),
        ('peak_hourly: 300}', 'peak_hourly: x}', 'invalid value "x"', 'a whole number'),
    ],
)
def test_message_examples(old: str, new: str, message: str, expected: str) -> None:
    found = [p for p in problems(edit(old, new)) if p.severity == 'error' and p.check.startswith('schema-')]
    assert any(p.message == message and expected in p.expected for p in found), [str(p) for p in found]


# --- ISP profile names ---


@pytest.mark.parametrize('where', ['stream', 'deployment'])
def test_shortened_profile_name_suggests_the_catalogue_name(where: str) -> None:
    limits = '{gmx: {limits: {max_connections: 2}}}'
    if where == 'stream':
        text = edit(STREAM_END, f'{STREAM_END}\n    isp_overrides: {limits}')
    else:
        text = edit('monitoring:\n', f'isp_profiles: {limits}\nmonitoring:\n')
    [problem] = [p for p in problems(text) if p.check == 'unknown-isp-profile']
    assert problem.message == 'unknown ISP profile "gmx" (did you mean "gmx_webde"?)'


def test_spec_reference_lists_the_profile_names() -> None:
    reference = (ROOT / 'docs' / 'spec.md').read_text()
    section = reference.split('## ISP profile names', 1)[1]
    for name in ('gmail', 'gmx_webde', 'microsoft', 'yahoo', 't_online'):
        assert f'`{name}`' in section


# --- SPF mechanisms are RFC 7208 terms (a space, a bad address or a missing domain went into the record as written) ---

SPF_LINE = 'spf: {includes: [_spf.mailer.example]}'
BAD_MECHANISMS = {
    'ip4:192.0.2.1 redirect=other.example': 'printable ASCII without spaces',
    'a:bücher.example': 'printable ASCII without spaces',
    'ip4:999.1.1.1': '"999.1.1.1" is not an IPv4 address',
    'ip4:2001:db8::1': 'is not an IPv4 address',
    'ip6:192.0.2.1': 'is not an IPv6 address',
    'ip4': 'ip4 takes ":ADDRESS"',
    'ip4:192.0.2.0/': 'ip4 takes ":ADDRESS"',
    'ip4:192.0.2.0/024': 'ip4 takes ":ADDRESS"',
    'ip4:192.0.2.0/33': 'prefix length /33 is over 32',
    'ip6:2001:db8::/129': 'prefix length /129 is over 128',
    'a/33': 'prefix length /33 is over 32',
    'mx//129': 'prefix length /129 is over 128',
    'include': 'include takes ":DOMAIN"',
    'exists': 'exists takes ":DOMAIN"',
    'a:': 'a takes an optional ":DOMAIN"',
    'a:x"y.testco.example': 'is not a DNS name',
    'a:x..testco.example': 'is not a DNS name',
    'mx:-mx.testco.example': 'is not a DNS name',
    'a:example': 'does not end in a top-level label',
    'exists:%{x}.testco.example': 'is not a domain or macro string',
    'exists:100%.testco.example': 'is not a domain or macro string',
    'redirect=other.example': 'expected one of a, mx, ptr, exists:, ip4:, ip6: or include:',
    'all': 'expected one of',
    'ip6:fe80::1%eth0': 'is not an IPv6 address',
    'ip4:192.0.2.0/' + '3' * 5000: 'prefix length /3333 is over 32',
    'a/' + '1' * 5000: 'prefix length /1111 is over 32',
    'exists:a.%%_': 'does not end in a top-level label',
    'exists:%{d0}.testco.example': 'is not a domain or macro string',
}


@pytest.mark.parametrize('mechanism', BAD_MECHANISMS)
def test_bad_spf_mechanism_is_refused_at_its_item(mechanism: str) -> None:
    quoted = json.dumps(mechanism)
    text = edit(SPF_LINE, f'spf: {{includes: [_spf.mailer.example], mechanisms: [a, {quoted}]}}')
    [problem] = [p for p in problems(text) if p.severity == 'error']
    assert problem.check == 'schema-value-error'
    assert problem.path == ('sending_domains', 0, 'spf', 'mechanisms', 1)
    assert (problem.line, problem.column) == position(text, quoted)
    assert BAD_MECHANISMS[mechanism] in problem.message, problem.message


GOOD_MECHANISMS = [
    'a',
    '-a/24//64',
    '~mx:mail.testco.example/28',
    '?ptr',
    'ptr:testco.example',
    'ip4:198.51.100.0/24',
    'ip4:198.51.100.7',
    'ip6:2001:db8::/32',
    'ip6:::1',
    'include:_spf.mailer.example.',
    'exists:%{ir}.%{l1r+-}._spf.%{d}',
    'exists:%{d1r.}x.testco.example',
]
# RFC 7208: names and macro letters in any case (4.6.1, 7.3), a toplabel like "1-2" (7.1), "%%" as domain-end
GOOD_MECHANISMS_2 = [
    'exists:%{I}.%{IR}.%{d2R}._spf.testco.example',
    'IP4:198.51.100.8',
    'Include:_spf.other.example',
    'include:x.1-2',
    'exists:%{i}.%%',
]


def _published_spf(mechanisms: list[str]) -> str:
    """The testco.example SPF record rendered from a spec with these mechanisms."""
    quoted = ', '.join(json.dumps(mechanism) for mechanism in mechanisms)
    spec = parse_spec(edit(SPF_LINE, f'spf: {{mechanisms: [{quoted}]}}'), 'spec.yml', as_of=AS_OF)
    files = render_files(spec, renderers=['dns'], dkim=TEST_DKIM)
    records = json.loads(files['dns/records.json'].content)['records']
    [spf] = [r['values'][0] for r in records if r['fqdn'] == 'testco.example' and r['purpose'] == 'spf']
    return str(spf)


def test_good_spf_mechanisms_are_published_as_written() -> None:
    assert _published_spf(GOOD_MECHANISMS) == 'v=spf1 ip4:192.0.2.10 ' + ' '.join(GOOD_MECHANISMS) + ' -all'


def test_good_spf_mechanisms_in_any_case_are_published_and_counted() -> None:
    assert _published_spf(GOOD_MECHANISMS_2) == 'v=spf1 ip4:192.0.2.10 ' + ' '.join(GOOD_MECHANISMS_2) + ' -all'
    # an upper-case lookup term counts as a lookup: ten of them are one too many with the include
    many = ', '.join(json.dumps(f'INCLUDE:s{n}.testco.example') for n in range(10))
    found = problems(edit(SPF_LINE, f'spf: {{includes: [_spf.mailer.example], mechanisms: [{many}]}}'))
    assert 'spf-too-many-lookups' in {p.check for p in found}
