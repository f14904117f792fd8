"""PowerMtaVars and the rendered /etc/pmta/config: the facts' numbers, pools, sources, keys and notes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra_agent.powermta import check_text, parse, parse_duration, parse_rate
from mailinfra_agent.powermta.checker import Block
from mailinfra_iac import Spec, SpecInvalid, parse_spec
from mailinfra_iac.facts import Limits, StreamFact
from mailinfra_iac.facts.isps import DEFAULTS
from mailinfra_iac.facts.plan import queue_schedule
from mailinfra_iac.render import RenderContext
from mailinfra_iac.render.rolevars.powermta import PowerMtaVars, _distinct, default_stream, duration

from ..conftest import AS_OF, BASE, ROOT, edit
from .helpers import EXAMPLE, example, group_vars, host_vars, render

ROLE = ROOT / 'roles' / 'powermta'


@pytest.fixture(scope='module')
def spec() -> Spec:
    return example()


@pytest.fixture(scope='module')
def files(spec: Spec) -> dict[str, bytes]:
    return render(spec)


def config(files: dict[str, bytes], host: str) -> Block:
    root, problems = parse(files[f'mta/{host}/pmta/config'].decode())
    assert problems == []
    return root


def blocks(root: Block, name: str) -> dict[str, Block]:
    return {block.argument: block for block in root.blocks if block.name == name}


def value(block: Block, directive: str) -> str:
    values = block.values(directive)
    assert len(values) == 1, f'{directive} appears {len(values)} times in <{block.name} {block.argument}>'
    return values[0].value


# --- which hosts, which files -------------------------------------------------------------------------------------


def test_only_powermta_hosts_get_a_configuration(files: dict[str, bytes]) -> None:
    """PowerMTA configurations go to the PowerMTA hosts only; every host also gets its agent contract."""
    mta_files = sorted(path for path in files if path.startswith('mta/') and not path.endswith('/agent.json'))
    assert mta_files == [
        'mta/pmta1/pmta/config',
        'mta/pmta2/pmta/config',
        'mta/pmta3/pmta/config',
    ]
    assert sorted(path for path in files if path.endswith('/agent.json')) == [
        'mta/ops1/etc/mailinfra/agent.json',
        'mta/pmta1/etc/mailinfra/agent.json',
        'mta/pmta2/etc/mailinfra/agent.json',
        'mta/pmta3/etc/mailinfra/agent.json',
    ]


def test_postfix_hosts_and_deployments_get_nothing() -> None:
    spec = example(ROOT / 'examples' / 'newsletter-publisher.yml')
    files = render(spec)
    assert not [path for path in files if path.startswith('mta/') and '/pmta/' in path]
    assert not [key for key in group_vars(files) if key.startswith('powermta__')]
    for host in spec.deployment.hosts:
        assert not [key for key in host_vars(files, host) if key.startswith('powermta__')]


def test_a_postfix_host_in_a_powermta_deployment_gets_nothing(spec: Spec) -> None:
    text = (ROOT / 'examples' / 'high-volume-powermta.yml').read_text()
    text = text.replace('    pools: [reactivation]\n', '    pools: [reactivation]\n    mta: postfix\n')
    mixed = parse_spec(text, 'spec.yml', as_of=AS_OF)
    context = RenderContext(mixed.deployment, mixed.facts)
    assert PowerMtaVars().host_vars(context, 'pmta3') == {}
    assert PowerMtaVars().templates(context, 'pmta3') == []
    assert PowerMtaVars().templates(context, 'pmta1') != []


def test_the_rendered_configurations_pass_the_checker(files: dict[str, bytes]) -> None:
    assert check_text(files['mta/pmta1/pmta/config'].decode()) == []
    assert check_text(files['mta/pmta2/pmta/config'].decode()) == []


def test_a_host_with_unallocated_addresses_is_flagged_and_fails_the_checker(
    spec: Spec, files: dict[str, bytes]
) -> None:
    pmta3 = host_vars(files, 'pmta3')
    assert [ip['ptr'] for ip in pmta3['powermta__unallocated_ips']] == [
        f'rx{n}.mta.shopmax.example' for n in range(1, 5)
    ]
    text = files['mta/pmta3/pmta/config'].decode()
    assert '#   - NOT DEPLOYABLE YET: 4 sending address(es) are not allocated' in text
    rules = {problem.rule for problem in check_text(text)}
    assert rules == {'empty-pool', 'unknown-reference'}  # no VMTA, so no queue for the rollups either
    addresses = {ip.id: f'198.18.0.{n}' for n, ip in enumerate(spec.facts.ips_of_host('pmta3'), 1)}
    allocated = render(spec, addresses)
    assert check_text(allocated['mta/pmta3/pmta/config'].decode()) == []
    assert host_vars(allocated, 'pmta3')['powermta__unallocated_ips'] == []


# --- pools and virtual MTAs ---------------------------------------------------------------------------------------


def test_one_vmta_per_sending_ip_with_its_ptr_as_ehlo(files: dict[str, bytes]) -> None:
    root = config(files, 'pmta1')
    vmtas = blocks(root, 'virtual-mta')
    assert len(vmtas) == 8
    assert value(vmtas['transactional_203_0_113_10'], 'smtp-source-host') == '203.0.113.10 tx1.mta.shopmax.example'
    assert value(vmtas['marketing_203_0_113_23'], 'smtp-source-host') == '203.0.113.23 mk4.mta.shopmax.example'


def test_the_transactional_pool_has_exactly_the_four_transactional_ips(spec: Spec, files: dict[str, bytes]) -> None:
    pools = blocks(config(files, 'pmta1'), 'virtual-mta-pool')
    assert sorted(pools) == ['marketing', 'transactional']
    members = [directive.value for directive in pools['transactional'].values('virtual-mta')]
    vmtas = blocks(config(files, 'pmta1'), 'virtual-mta')
    addresses = sorted(value(vmtas[name], 'smtp-source-host').split()[0] for name in members)
    assert addresses == ['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.13']
    assert addresses == sorted(ip.address for ip in spec.facts.streams['transactional'].ips if ip.address)


def test_a_stream_split_over_hosts_has_its_own_ips_on_each(files: dict[str, bytes]) -> None:
    pmta2 = blocks(config(files, 'pmta2'), 'virtual-mta-pool')
    assert list(pmta2) == ['marketing']
    assert [d.value for d in pmta2['marketing'].values('virtual-mta')] == [
        f'marketing_203_0_113_{n}' for n in range(24, 28)
    ]


def test_sources_select_the_pools(files: dict[str, bytes]) -> None:
    sources = blocks(config(files, 'pmta1'), 'source')
    assert list(sources) == ['10.8.0.0/16']
    assert value(sources['10.8.0.0/16'], 'process-x-virtual-mta') == 'yes'
    # two streams share the network: unlabelled mail must not land on the transactional IPs
    assert value(sources['10.8.0.0/16'], 'default-virtual-mta') == 'marketing'
    pmta3 = blocks(config(files, 'pmta3'), 'source')
    assert value(pmta3['10.8.0.0/16'], 'default-virtual-mta') == 'reactivation'


def test_the_default_pool_of_a_shared_network() -> None:
    kinds = {'tx': 'transactional', 'news': 'marketing', 'cold': 'cold_outreach'}
    assert default_stream(['tx', 'news', 'cold'], kinds) == 'news'
    assert default_stream(['cold', 'tx'], kinds) == 'cold'
    assert default_stream(['tx'], kinds) == 'tx'


def _powermta(text: str = BASE) -> tuple[Spec, dict[str, Any]]:
    """The base spec on PowerMTA: its one host's variables."""
    spec = parse_spec(edit('mta: auto', 'mta: powermta', text), 'spec.yml', as_of=AS_OF)
    return spec, PowerMtaVars().host_vars(RenderContext(spec.deployment, spec.facts), 'mta1')


def test_streams_on_separate_networks_get_their_own_source() -> None:
    _, variables = _powermta(edit('port: 2526, networks: [10.0.0.0/8]', 'port: 2526, networks: [10.9.0.0/16]'))
    assert variables['powermta__sources'] == [
        {'network': '10.0.0.0/8', 'default_pool': 'transactional', 'streams': ['transactional']},
        {'network': '10.9.0.0/16', 'default_pool': 'marketing', 'streams': ['marketing']},
    ]
    assert not any('X-Virtual-MTA: <stream>' in note for note in variables['powermta__notes'])


def test_a_stream_without_network_is_noted() -> None:
    text = edit('port: 2526, networks: [10.0.0.0/8]', 'port: 2526, sasl_users: [newsletter]')
    _, variables = _powermta(text)
    assert [source['streams'] for source in variables['powermta__sources']] == [['transactional']]
    notes = '\n'.join(variables['powermta__notes'])
    assert 'stream marketing: no injection network: select its pool with "X-Virtual-MTA: marketing"' in notes


# --- injection: listeners, relaying, SMTP AUTH (reference: "PowerMTA directives confirmed ...", 1) -----------------


def test_each_injection_port_gets_a_listener_on_every_address(spec: Spec, files: dict[str, bytes]) -> None:
    for host in ('pmta1', 'pmta2', 'pmta3'):
        root = config(files, host)
        ports = [stream.injection.port for stream in spec.facts.streams_of_host(host)]
        assert [d.value for d in root.values('smtp-listener')] == [f'0/0:{port}' for port in ports], host
    assert [d.value for d in config(files, 'pmta1').values('smtp-listener')] == ['0/0:2525', '0/0:2526']
    text = files['mta/pmta1/pmta/config'].decode()
    assert 'listener directive is not in our reference' not in text
    # the port does not choose the stream (no such directive is confirmed), and the header says so
    assert 'a port does not select a stream' in text


def test_injection_networks_may_relay(files: dict[str, bytes]) -> None:
    for host in ('pmta1', 'pmta2', 'pmta3'):
        for source in blocks(config(files, host), 'source').values():
            assert value(source, 'smtp-service') == 'yes'
            assert value(source, 'always-allow-relaying') == 'yes'
            assert source.values('require-auth') == []


PASSWORDS = {'app-news': 'news-Passw0rd-123', 'app-news2': 'news2-Passw0rd-12', 'app-tx': 'tx-Passw0rd-12345'}


def _config_with_users(text: str, passwords: dict[str, str] | None, extra: dict[str, Any] | None = None) -> str:
    """The base spec on PowerMTA rendered as the role does (with passwords) or as ``mailinfra render`` does."""
    from mailinfra_iac.render.mta_configs import GENERATED_MARK, template_environment

    spec = parse_spec(edit('mta: auto', 'mta: powermta', text), 'spec.yml', as_of=AS_OF)
    context = RenderContext(spec.deployment, spec.facts)
    variables = {**PowerMtaVars().group_vars(context), **PowerMtaVars().host_vars(context, 'mta1')}
    variables['ansible_managed'] = GENERATED_MARK
    if passwords is not None:
        variables['powermta__smtp_passwords'] = passwords
    variables.update(extra or {})
    template = template_environment().get_template('powermta/templates/etc/pmta/config.j2')
    return template.render(variables)


USERS = edit(
    'port: 2526, networks: [10.0.0.0/8]',
    'port: 2526, networks: [10.0.0.0/8], sasl_users: [app-news, app-news2]',
    edit('port: 2525, networks: [10.0.0.0/8]', 'port: 2525, sasl_users: [app-tx]'),
)


def test_smtp_users_select_their_streams_pool_by_login() -> None:
    _, variables = _powermta(USERS)
    assert variables['powermta__auth_sources'] == [
        {'name': '{auth-transactional}', 'pool': 'transactional', 'users': ['app-tx']},
        {'name': '{auth-marketing}', 'pool': 'marketing', 'users': ['app-news', 'app-news2']},
    ]
    assert not any('SMTP AUTH' in note for note in variables['powermta__notes'])
    text = _config_with_users(USERS, PASSWORDS)
    assert check_text(text) == []
    root, _ = parse(text)
    users = blocks(root, 'smtp-user')
    assert {name: value(user, 'source') for name, user in users.items()} == {
        'app-tx': '{auth-transactional}',
        'app-news': '{auth-marketing}',
        'app-news2': '{auth-marketing}',
    }
    assert {name: value(user, 'password') for name, user in users.items()} == PASSWORDS
    sources = blocks(root, 'source')
    for stream in ('transactional', 'marketing'):
        source = sources[f'{{auth-{stream}}}']
        assert value(source, 'default-virtual-mta') == stream  # a pool per login
        assert value(source, 'require-auth') == 'true'
        assert value(source, 'process-x-virtual-mta') == 'no'  # the login, not a header, chooses the pool
        assert value(source, 'always-allow-relaying') == 'yes'


def test_user_source_lines_go_into_every_source() -> None:
    text = _config_with_users(USERS, PASSWORDS, {'powermta__extra_source_lines': ['log-data no']})
    root, problems = parse(text)
    assert problems == []
    assert check_text(text) == []
    sources = blocks(root, 'source')
    assert sorted(sources) == ['10.0.0.0/8', '{auth-marketing}', '{auth-transactional}']
    assert all(value(source, 'log-data') == 'no' for source in sources.values())


def test_passwords_are_never_in_the_generated_files() -> None:
    text = _config_with_users(USERS, None)
    assert check_text(text) == []
    assert not any(password in text for password in PASSWORDS.values())
    root, _ = parse(text)
    assert blocks(root, 'smtp-user') == {}
    assert '# <smtp-user> blocks of app-news, app-news2: written on the host by the role' in text
    spec = parse_spec(edit('mta: auto', 'mta: powermta', USERS), 'spec.yml', as_of=AS_OF)
    files = render(spec)
    assert not any(password.encode() in content for content in files.values() for password in PASSWORDS.values())


def test_a_user_of_two_streams_sends_as_the_first_and_is_noted() -> None:
    both = edit('sasl_users: [app-tx]', 'sasl_users: [app-tx, app-news]', USERS)
    _, variables = _powermta(both)
    assert [source['users'] for source in variables['powermta__auth_sources']] == [
        ['app-tx', 'app-news'],
        ['app-news2'],
    ]
    notes = '\n'.join(variables['powermta__notes'])
    assert (
        'SMTP user app-news: listed by streams transactional and marketing; PowerMTA selects one source per ' in notes
    )
    assert check_text(_config_with_users(both, PASSWORDS)) == []


# --- the facts' numbers, queue by queue ------------------------------------------------------------------------------


def _queues(root: Block, vmta: str) -> dict[str, Block]:
    return {block.argument: block for block in blocks(root, 'virtual-mta')[vmta].blocks}


@pytest.mark.parametrize(
    ('stream', 'vmta'), [('transactional', 'transactional_203_0_113_10'), ('marketing', 'marketing_203_0_113_20')]
)
def test_gmail_max_smtp_out_is_the_streams_effective_max_connections(
    spec: Spec, files: dict[str, bytes], stream: str, vmta: str
) -> None:
    gmail = _queues(config(files, 'pmta1'), vmta)['gmail.queue']
    limits = spec.facts.streams[stream].isps['gmail'].limits
    assert int(value(gmail, 'max-smtp-out')) == limits.max_connections == {'transactional': 5, 'marketing': 10}[stream]
    assert parse_rate(value(gmail, 'max-msg-rate')) == (limits.messages_per_hour, 3600)


def _expected(stream: StreamFact, limits: Limits) -> dict[str, Any]:
    return {
        'max-smtp-out': limits.max_connections,
        'max-msg-per-connection': limits.messages_per_connection,
        'max-msg-rate': (limits.messages_per_hour, 3600),
        'backoff-max-msg-rate': (limits.backoff_messages_per_hour, 3600),
        'backoff-retry-after': limits.backoff_retry_after,
        'backoff-to-normal-after': limits.backoff_to_normal_after,
        'bounce-after': stream.retry.queue_lifetime,
        'retry-after': list(queue_schedule(stream.categories['other'].retry_after, stream.retry, limits.retry_after)),
    }


def _actual(block: Block) -> dict[str, Any]:
    return {
        'max-smtp-out': int(value(block, 'max-smtp-out')),
        'max-msg-per-connection': int(value(block, 'max-msg-per-connection')),
        'max-msg-rate': parse_rate(value(block, 'max-msg-rate')),
        'backoff-max-msg-rate': parse_rate(value(block, 'backoff-max-msg-rate')),
        'backoff-retry-after': parse_duration(value(block, 'backoff-retry-after')),
        'backoff-to-normal-after': parse_duration(value(block, 'backoff-to-normal-after')),
        'bounce-after': parse_duration(value(block, 'bounce-after')),
        'retry-after': [parse_duration(part) for part in value(block, 'retry-after').split(',')],
    }


@pytest.mark.parametrize('host', ['pmta1', 'pmta2'])
def test_every_queue_carries_the_facts_effective_numbers(spec: Spec, files: dict[str, bytes], host: str) -> None:
    """Read back from the rendered file (not from the variables): what PowerMTA would read."""
    root = config(files, host)
    macros = {d.words[0]: d.words[1].split(',') for d in root.values('domain-macro')}
    rollups = {block.argument[1:]: value(block, 'queue-to') for block in blocks(root, 'domain').values()}
    pools = {
        name: [d.value for d in pool.values('virtual-mta')] for name, pool in blocks(root, 'virtual-mta-pool').items()
    }
    checked = 0
    for stream_name, members in pools.items():
        stream = spec.facts.streams[stream_name]
        for vmta in members:
            queues = _queues(root, vmta)
            for isp_name, isp in stream.isps.items():
                if not isp.recipient_domains:
                    assert f'{isp_name}.queue' not in queues  # MX-only providers fall to <domain *> (see notes)
                    continue
                assert sorted(macros[isp_name]) == sorted(isp.recipient_domains)
                queue = queues[rollups[isp_name]]
                assert value(queue, 'smtp-hosts') == macros[isp_name][0]  # one MX domain per provider and host
                assert _actual(queue) == _expected(stream, isp.limits), (host, vmta, isp_name)
                checked += 1
            assert _actual(queues['*']) == _expected(stream, DEFAULTS)
    assert checked == {'pmta1': 8 * 9, 'pmta2': 4 * 9}[host]


def test_stream_level_overrides_reach_only_that_streams_ips(files: dict[str, bytes]) -> None:
    root = config(files, 'pmta1')
    transactional = _queues(root, 'transactional_203_0_113_11')
    marketing = _queues(root, 'marketing_203_0_113_21')
    assert value(transactional['microsoft.queue'], 'max-smtp-out') == '5'
    assert value(marketing['microsoft.queue'], 'max-smtp-out') == '8'
    assert value(marketing['yahoo.queue'], 'max-msg-rate') == '8000/h'
    assert value(transactional['yahoo.queue'], 'max-msg-rate') == '2000/h'


def test_queue_lifetime_per_stream(files: dict[str, bytes]) -> None:
    pmta1 = config(files, 'pmta1')
    assert value(_queues(pmta1, 'transactional_203_0_113_10')['*'], 'bounce-after') == '4h'
    assert value(_queues(pmta1, 'marketing_203_0_113_20')['*'], 'bounce-after') == '2d'


def test_reactivation_keeps_its_12h_lifetime(spec: Spec) -> None:
    addresses = {ip.id: f'198.18.0.{n}' for n, ip in enumerate(spec.facts.ips_of_host('pmta3'), 1)}
    root = config(render(spec, addresses), 'pmta3')
    queues = _queues(root, 'reactivation_alloc1')
    assert {value(queue, 'bounce-after') for queue in queues.values()} == {'12h'}
    assert value(queues['gmail.queue'], 'max-msg-rate') == '5000/h'


def test_durations_in_powermta_notation() -> None:
    assert [duration(s) for s in (30, 600, 5400, 3600, 43200, 86400, 90061)] == [
        '30s',
        '10m',
        '90m',
        '1h',
        '12h',
        '1d',
        '90061s',
    ]


# --- backoff patterns -------------------------------------------------------------------------------------------------


def test_backoff_rules_become_pattern_lists(spec: Spec, files: dict[str, bytes]) -> None:
    root = config(files, 'pmta1')
    lists = blocks(root, 'smtp-pattern-list')
    gmail = [d.value for d in lists['backoff-gmail'].values('reply')]
    assert gmail[:2] == [r'/4\.7\.28/ mode=backoff', r'/4\.7\.0 .*(rate|unusual)/ mode=backoff']
    # the reputation reply rules of the stream ("slow down") follow the provider's own
    assert r'/^4\d\d[ -]4\.7\.\d+/ mode=backoff' in gmail
    queue = _queues(root, 'transactional_203_0_113_10')['gmail.queue']
    assert value(queue, 'smtp-pattern-list') == 'backoff-gmail'
    assert value(_queues(root, 'transactional_203_0_113_10')['*'], 'smtp-pattern-list') == 'backoff-default'
    # suspend_ip (a Spamhaus listing of the IP, for every provider) disables the source IP for the rule's duration
    spamhaus = [d.value for d in lists['backoff-default'].values('reply') if 'spamhaus' in d.value]
    assert len(spamhaus) == 1 and spamhaus[0].endswith('/ disable-source-ip reenable-after=2h')
    assert gmail[3] == spamhaus[0]  # after Gmail's own three rules: a provider's rules come first
    # rules that mean "bounce" are not turned into backoff
    assert not any('user unknown' in d.value for block in lists.values() for d in block.values('reply'))


def test_notes_say_what_powermta_does_differently(files: dict[str, bytes]) -> None:
    notes = host_vars(files, 'pmta1')['powermta__notes']
    text = '\n'.join(notes)
    assert 'yahoo: suspend /\\[TS?S04\\]|TS04/ 2h, /TSS05|IPTS05/ 4h, /\\[TSS09\\]/ 4h' in text
    assert 'yahoo: triggers /TSS05|IPTS05/ after 2 in 1h, ' in text and 'PowerMTA acts on the first match' in text
    assert 'suspend_ip: /(?i:client host ' in text and 'rendered as disable-source-ip reenable-after=<duration>' in text
    assert 'office365: recognised only by MX' in text
    assert 'require_tls (comcast, gmx_webde)' in text
    assert 'streams transactional, marketing: inject from 10.8.0.0/16' in text
    assert 'without it they go to pool marketing' in text
    assert any(note.startswith('stream transactional, stream marketing: reply rule /^4') for note in notes)
    rendered = files['mta/pmta1/pmta/config'].decode()
    for note in notes:
        assert f'#   - {note}\n' in rendered


def test_own_category_schedules_and_expiry_are_reported() -> None:
    text = edit(
        '    pool: tx\n',
        '    pool: tx\n    bounce_policy:\n      categories:\n'
        '        quota-issues: {retry_after: [1h], expire_after: 1d}\n',
    )
    _, variables = _powermta(text)
    notes = variables['powermta__notes']
    assert 'stream transactional: one retry list per queue; own schedules not applied: quota-issues 1h' in notes
    assert 'stream transactional: bounce-after is per queue; own expiry not applied: quota-issues 1d' in notes


def test_ed25519_keys_are_not_used_for_signing() -> None:
    _, variables = _powermta()
    assert [(key['domain'], key['selector']) for key in variables['powermta__dkim_keys']] == [
        ('testco.example', 's2026q4'),
        ('news.testco.example', 's2026q4'),
    ]
    assert any(
        note.startswith('DKIM s2026q4e._domainkey.news.testco.example: ed25519 key published but not used')
        for note in variables['powermta__notes']
    )


# --- DKIM ---------------------------------------------------------------------------------------------------------


def test_dkim_signing_keys_are_references_only(files: dict[str, bytes]) -> None:
    keys = host_vars(files, 'pmta1')['powermta__dkim_keys']
    assert keys == [
        {
            'domain': 'shopmax.example',
            'selector': 's2026q4',
            'key_ref': 'shopmax/shopmax.example/s2026q4.rsa.key',
            'file': 'shopmax.example/s2026q4.rsa.key',
        },
        {
            'domain': 'news.shopmax.example',
            'selector': 's2026q4',
            'key_ref': 'shopmax/news.shopmax.example/s2026q4.rsa.key',
            'file': 'news.shopmax.example/s2026q4.rsa.key',
        },
    ]
    root = config(files, 'pmta1')
    assert [d.value for d in root.values('domain-key')] == [
        's2026q4,shopmax.example,/etc/pmta/dkim/shopmax.example/s2026q4.rsa.key',
        's2026q4,news.shopmax.example,/etc/pmta/dkim/news.shopmax.example/s2026q4.rsa.key',
    ]
    for content in files.values():
        assert b'PRIVATE KEY' not in content
    # the ed25519 companion and the retiring selector are not on the host
    assert 's2026q4e' not in str(keys) and 's2026q3' not in str(keys)


# --- accounting and management --------------------------------------------------------------------------------------


def test_accounting_and_management(files: dict[str, bytes]) -> None:
    root = config(files, 'pmta1')
    acct = blocks(root, 'acct-file')
    main = acct['/var/log/pmta/acct.csv']
    assert value(main, 'records') == 'd,b,f,rb'
    fields = {d.words[0]: d.words[1].split(',') for d in main.values('record-fields')}
    assert sorted(fields) == ['b', 'd']
    for wanted in ('dsnStatus', 'dsnDiag', 'bounceCat', 'dlvSourceIp', 'vmta', 'jobId'):
        assert wanted in fields['b']
    assert value(acct['/var/log/pmta/diag.csv'], 'records') == 't'
    assert value(main, 'move-to') == '/var/log/pmta/acct-archive/'
    assert value(root, 'http-mgmt-port') == '8080'
    assert [d.value for d in root.values('http-access')] == ['127.0.0.1/32 admin', '0.0.0.0/0 none']


# --- the role stays in step with the generator ------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_role_defaults_match_the_generated_deployment_wide_values(files: dict[str, bytes]) -> None:
    defaults = _yaml(ROLE / 'defaults' / 'main.yml')
    generated = {key: item for key, item in group_vars(files).items() if key.startswith('powermta__')}
    assert generated
    for key, item in generated.items():
        assert defaults[key] == item, key
    host_keys = {key for key in host_vars(files, 'pmta1') if key.startswith('powermta__')}
    assert host_keys <= set(defaults)


def test_argument_specs_and_defaults_name_the_same_variables() -> None:
    defaults = _yaml(ROLE / 'defaults' / 'main.yml')
    options = _yaml(ROLE / 'meta' / 'argument_specs.yml')['argument_specs']['main']['options']
    required = {name for name, option in options.items() if option.get('required')}
    assert required == {'powermta__package_file', 'powermta__license_file'}
    assert set(options) - required == set(defaults)
    for name, default in defaults.items():
        if isinstance(default, str) and '{{' in default:
            continue  # templated defaults: compared as text in the file, not after loading
        assert options[name].get('default') == default, name
    assert all(name.startswith('powermta__') for name in options)


def test_the_template_reads_only_documented_variables() -> None:
    import re

    template = (ROLE / 'templates' / 'etc' / 'pmta' / 'config.j2').read_text()
    defaults = _yaml(ROLE / 'defaults' / 'main.yml')
    used = set(re.findall(r'\b(powermta__[a-z_]+)', template))
    assert used <= set(defaults), used - set(defaults)


def test_a_suspension_with_failover_is_rendered_as_backoff_and_noted() -> None:
    text = (ROOT / 'examples' / 'high-volume-powermta.yml').read_text()
    assert text.count('\nisp_profiles:\n') == 1
    text = text.replace(
        '\nisp_profiles:\n',
        '\nisp_profiles:\n'
        '  gmail:\n'
        '    backoff_rules:\n'
        '      - {pattern: "421 4\\\\.7\\\\.0 busy", action: suspend, failover: true, duration: 20m}\n'
        '      - {pattern: "421 4\\\\.7\\\\.0 slow", action: suspend, failover: false, duration: 20m}\n',
    )
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    variables = PowerMtaVars().host_vars(RenderContext(spec.deployment, spec.facts), 'pmta1')
    notes = '\n'.join(variables['powermta__notes'])
    assert 'gmail: failover of /421 4\\.7\\.0 busy/: the queue backs off on its own VMTA' in notes
    assert '/421 4\\.7\\.0 slow/' not in notes.split('failover of')[1]
    gmail = next(item for item in variables['powermta__pattern_lists'] if item['name'] == 'backoff-gmail')
    assert gmail['rules'][0] == {
        'regex': '421 4\\.7\\.0 busy',
        'action': 'mode=backoff',
        'why': 'gmail suspend with failover 20m: ',
    }


def test_distinct_rule_lists_are_told_apart_by_value() -> None:
    """``pattern_lists`` names a list per ISP (``backoff-<isp>``) when every stream has the same rules, by value."""
    rule = {'regex': '/^421/', 'action': 'mode=backoff', 'why': 'x'}
    same = [dict(rule)]
    assert _distinct([[rule], same, [rule]]) == [[rule]]
    other = [{**rule, 'why': 'y'}]
    assert _distinct([[rule], other, same]) == [[rule], other]
    assert _distinct([]) == []


def test_line_breaks_in_free_text_never_become_directives() -> None:
    """A rule's description and a provider's name are comments: a line break there once made a directive."""
    description = json.dumps('why\n<domain *>\nmax-smtp-out 0\n</domain>')
    text = EXAMPLE.read_text().replace(
        'isp_profiles:\n',
        'isp_profiles:\n  yahoo:\n    display_name: "Yahoo\\nhttp-mgmt-port 1"\n    backoff_rules:\n'
        f'      - {{pattern: "421 4.7.0", description: {description}}}\n',
        1,
    )
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    for path, content in render(spec).items():
        if path.endswith('pmta/config'):
            lines = content.decode().splitlines()
            assert not {'max-smtp-out 0', 'http-mgmt-port 1'} & set(lines), path
            assert any(line.lstrip().startswith('# yahoo backoff 1h: why <domain *> max-smtp-out 0') for line in lines)


@pytest.mark.parametrize('char', ['\x00', '\x1b', '\x7f', '\x9b', '\u202e', '\u2066'])
def test_control_and_bidi_characters_in_free_text_are_refused(char: str) -> None:
    """Free text printed into configuration comments: ESC, NUL or a bidi override would hide or rewrite what an
    operator reads there; each is an error at its field, every one reported at once."""
    escaped = json.dumps(f'why {char}[31m red')
    name = json.dumps(f'Yahoo {char}')
    text = EXAMPLE.read_text().replace(
        'isp_profiles:\n',
        f'isp_profiles:\n  yahoo:\n    display_name: {name}\n    backoff_rules:\n'
        f'      - {{pattern: "421 4.7.0", description: {escaped}}}\n',
        1,
    )
    with pytest.raises(SpecInvalid) as raised:
        parse_spec(text, 'spec.yml', as_of=AS_OF)
    messages = [f'{problem.path} {problem.message}' for problem in raised.value.problems]
    assert len([message for message in messages if f'U+{ord(char):04X}' in message]) == 2, messages
    assert any('display_name' in message for message in messages), messages
    assert any('description' in message for message in messages), messages
